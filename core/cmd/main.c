/* main.c -- acdmd: parse the command line, run the engine until a signal says stop. */
#include "engine/engine.h"
#include "api/api.h"
#include "api/live.h"
#include "api/metrics.h"
#include "api/maint.h"
#include "reports/report_daily.h"
#include "base/log.h"
#include "base/notify.h"
#include "plugins/plugins.h"

#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the Debian package builds with DEFAULT_CONFIG=/etc/acdm/acdm.json (Makefile) */
#ifndef ACDM_DEFAULT_CONFIG
#define ACDM_DEFAULT_CONFIG "conf/acdm.json"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "usage: acdmd [-c FILE] [--listen HOST:PORT] [--data-dir DIR] [--check] [--init] [--salvage]\n"
            "             [--log-format text|json]\n"
            "  -c, --config FILE    config file (default " ACDM_DEFAULT_CONFIG "; fragments in acdm.d/ beside it)\n"
            "  -l, --listen H:P     listen address, overrides the config\n"
            "  -d, --data-dir DIR   data folder (SQLite store, admin token), overrides the config\n"
            "      --log-format F   text (default) or json (one object a line), overrides the config\n"
            "      --check          validate the config and exit (0 = valid)\n"
            "      --init           begin with a new, empty store where the data folder held one\n"
            "                       whose acdm.db is now missing or empty (refused without it)\n"
            "      --salvage        start over a damaged store with what can be read (refused\n"
            "                       without it); health says what was not restored\n"
            "Signals: SIGHUP reloads the config; SIGTERM/SIGINT shut down cleanly.\n");
}

/* --check: the channels against the plugin folder as a start would load it. A plugin's
 * check_config refusal is an error (a reload would refuse it too); a channel whose plugin is in
 * no .so of the folder is a warning (at run time the instance waits for a drop-in). */
static int check_plugins(const acdm_config *cfg, char *err, size_t errlen)
{
    uv_loop_t loop;
    acdm_plugins *p = NULL;
    acdm_plugin_env env = {.loop = &loop};
    int saved = acdm_log_level, rc = 0;
    err[0] = 0;
    if (uv_loop_init(&loop)) return 0;
    acdm_log_level = ACDM_LOG_WARN;   /* refusals are shown, the loaded ones are not */
    if (!acdm_plugins_create(&env, cfg->plugin_dir, &p)) {
        acdm_plugins_load_all(p);
        rc = acdm_plugins_check(p, cfg, err, errlen);
        json_t *warn = acdm_plugins_warnings(p, cfg);
        for (size_t k = 0; k < json_array_size(warn); k++)
            fprintf(stderr, "warning: %s\n", json_string_value(json_array_get(warn, k)));
        json_decref(warn);
        acdm_plugins_destroy(p);
    }
    acdm_log_level = saved;
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return rc;
}

int main(int argc, char **argv)
{
    /* the engine and what acdmd adds beside it, started in this order */
    static const acdm_engine_module *const modules[] = {&acdm_api_module, &acdm_live_module,
                                                        &acdm_report_daily_module, &acdm_metrics_module,
                                                        &acdm_maint_module, NULL};
    acdm_engine_opts opts = {.modules = modules, .config_path = ACDM_DEFAULT_CONFIG};
    bool check = false;
    static const struct option lo[] = {
        {"config", required_argument, 0, 'c'}, {"listen", required_argument, 0, 'l'},
        {"data-dir", required_argument, 0, 'd'}, {"check", no_argument, 0, 'k'},
        {"init", no_argument, 0, 'I'}, {"salvage", no_argument, 0, 'S'},
        {"log-format", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:l:d:h", lo, NULL)) != -1) {
        switch (c) {
        case 'c': opts.config_path = optarg; break;
        case 'l': opts.listen = optarg; break;
        case 'd': opts.data_dir = optarg; break;
        case 'k': check = true; break;
        case 'I': opts.init = true; break;
        case 'S': opts.salvage = true; break;
        case 'L':
            if (acdm_log_format_parse(optarg) < 0) {
                fprintf(stderr, "acdmd: --log-format: expected text or json, got \"%s\"\n", optarg);
                return 2;
            }
            opts.log_format = optarg;
            acdm_log_json = acdm_log_format_parse(optarg);   /* from the first line on */
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) { usage(stderr); return 2; }
    /* grow and keep the heap in large steps: a restart restoring a million berichten makes
     * a million small allocations, and each brk() round trip costs more than the allocation */
    mallopt(M_TOP_PAD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
    static char err[65536];
    if (check) {
        acdm_config *cfg;
        if (acdm_config_load(opts.config_path, &cfg, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        int bad = check_plugins(cfg, err, sizeof err);
        acdm_config_free(cfg);
        if (bad) { fprintf(stderr, "%s\n", err); return 1; }
        printf("%s: valid\n", opts.config_path);
        return 0;
    }
    acdm_log_detect_journal();
    acdm_notify_init();   /* under systemd (Type=notify): READY, WATCHDOG, RELOADING, STOPPING */
    acdm_engine *e = NULL;
    int rc = acdm_engine_create(&opts, &e, err, sizeof err);
    if (rc) {
        acdm_log(ACDM_LOG_ERR, "core", "cannot start: %s", err);
        acdm_engine_destroy(e);
        return 1;
    }
    acdm_engine_run(e);
    acdm_engine_destroy(e);
    acdm_log(ACDM_LOG_NOTICE, "core", "stopped");
    return 0;
}
