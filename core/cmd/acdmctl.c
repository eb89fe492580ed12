/* acdmctl.c -- the operators' command-line client: status, reload, queue open/close, plugins, tokens,
 * export and reports from the store. */
#include "base/acdm.h"
#include "config/config.h"
#include "store/export.h"
#include "reports/report.h"
#include "config/schedule.h"
#include "store/store.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: acdmctl [-c FILE] [--url URL] [--data-dir DIR] COMMAND\n"
            "commands:\n"
            "  status                       health and queue figures\n"
            "  reload                       re-read the config (all or nothing; errors are printed)\n"
            "  queue open|close NAME        open or close a queue (same path as a reload)\n"
            "  plugins                      loaded plugins, their instances (with the reason when one\n"
            "                               is not running), refused files\n"
            "  plugin disable|enable|reload NAME\n"
            "                               stop a plugin's instances / start them again / replace the\n"
            "                               plugin by what its .so file holds now (instances stopped,\n"
            "                               work in flight answered, restarted on the new build)\n"
            "  agents                       agents and their states\n"
            "  backup FILE                  online copy of the store (acdmd keeps running)\n"
            "  export --since TIME [--until TIME] [--format csv|json] [FILE]\n"
            "                               the event log (at most 31 days) from the store, to FILE or\n"
            "                               stdout; TIME is ISO 8601 (2026-11-01, 2026-11-01T08:00:00Z)\n"
            "                               or epoch ms; works with or without a running acdmd\n"
            "  report [--kind queues|channels|agents|topics] [--period day|week|month|quarter]\n"
            "         [--from TIME] [--until TIME] [--interval 15m|1h|1d] [--format json|csv|xlsx|pdf]\n"
            "         [--lang nl|en] [--excel true|false] [--style page|raw] [FILE]\n"
            "                               a report (as GET /api/v1/reports) from the store, to FILE\n"
            "                               or stdout; with or without a running acdmd\n"
            "  token create --role ROLE --name NAME\n"
            "                               print a new API token (roles: admin, supervisor, agent,\n"
            "                               metrics, channel:<instance>; for agent, NAME is the agent id)\n"
            "The admin token is read from $ACDM_TOKEN or DATA_DIR/admin.token (written by acdmd).\n");
}

typedef struct { char *buf; size_t len; } membuf;

static size_t on_data(char *p, size_t sz, size_t n, void *u)
{
    membuf *m = u;
    char *nb = realloc(m->buf, m->len + sz * n + 1);
    if (!nb) return 0;
    memcpy(nb + m->len, p, sz * n);
    m->len += sz * n;
    nb[m->len] = 0;
    m->buf = nb;
    return sz * n;
}

static int call(const char *base, const char *token, const char *method, const char *path)
{
    char url[1024], auth[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, auth);
    membuf m = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "POST")) curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    int ret = 0;
    if (rc != CURLE_OK) {
        fprintf(stderr, "acdmctl: %s: %s (is acdmd running?)\n", url, curl_easy_strerror(rc));
        ret = 1;
    } else {
        json_t *j = m.buf ? json_loads(m.buf, 0, NULL) : NULL;
        if (status >= 400) {
            const char *detail = json_string_value(json_object_get(j, "detail"));
            fprintf(stderr, "acdmctl: %ld %s\n", status, detail ? detail : (m.buf ? m.buf : ""));
            ret = 1;
        } else if (j) {
            char *s = json_dumps(j, JSON_INDENT(2));
            printf("%s\n", s);
            free(s);
        }
        json_decref(j);
    }
    free(m.buf);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return ret;
}

/* An audit event for an action on the host (no token): the actor is the OS user. */
static void host_audit(acdm_store *st, const char *action, const char *target)
{
    const char *user = getenv("SUDO_USER");
    if (!user) user = getenv("USER");
    json_t *d = json_pack("{s:s, s:s, s:s, s:s?}", "actor", user ? user : "unknown", "role", "host",
                          "action", action, "target", target);
    char *dj = d ? json_dumps(d, JSON_COMPACT) : NULL;
    acdm_event_row ev = {.ts_ms = acdm_now_ms(), .type = "audit", .detail_json = dj};
    if (dj) acdm_store_append_event(st, &ev);
    free(dj);
    json_decref(d);
}

/* The event log from the store itself (no daemon needed), written out in chunks. */
typedef struct { acdm_sbuf b; acdm_export_format f; int n; FILE *out; int werr; } export_out;

static int export_row(void *user, int64_t id, const acdm_event_row *ev)
{
    export_out *x = user;
    acdm_export_event(&x->b, x->f, id, ev, x->n++ == 0);
    if (x->b.n >= 65536) {
        if (fwrite(x->b.p, 1, x->b.n, x->out) != x->b.n) x->werr = 1;
        x->b.n = 0;
    }
    return x->b.oom || x->werr;
}

static int export_events(const char *data_dir, const char *since, const char *until, const char *format,
                         const char *file)
{
    int f = acdm_export_format_parse(format);
    if (f < 0) { fprintf(stderr, "acdmctl: --format: expected csv or json, got \"%s\"\n", format); return 2; }
    int64_t s, u;
    char err[512];
    if (acdm_time_range(since, until, acdm_now_ms(), 0, &s, &u, err, sizeof err)) {
        fprintf(stderr, "acdmctl: --%s\n", err);
        return 2;
    }
    char db[1024];
    struct stat stt;
    snprintf(db, sizeof db, "%s/acdm.db", data_dir);
    if (stat(db, &stt)) { fprintf(stderr, "acdmctl: export: no store at %s\n", db); return 1; }
    export_out x = {.f = (acdm_export_format)f, .out = file ? fopen(file, "w") : stdout};
    if (!x.out) {
        fprintf(stderr, "acdmctl: export: cannot write %s\n", file);
        return 1;
    }
    /* read-only, on a connection of its own (like backup): acdmd may keep running */
    acdm_export_begin(&x.b, x.f);
    int n = acdm_export_read(db, s, u, false, export_row, &x, err, sizeof err);
    acdm_export_end(&x.b, x.f);
    if (x.b.n && fwrite(x.b.p, 1, x.b.n, x.out) != x.b.n) x.werr = 1;
    if (file && fclose(x.out)) x.werr = 1;
    else if (!file) fflush(stdout);
    int ret = 0;
    if (n < 0 || x.b.oom || x.werr) {
        fprintf(stderr, "acdmctl: export failed: %s\n", n < 0 ? err : x.werr ? "write error" : "out of memory");
        ret = 1;
    } else if (file) {
        printf("%d events written to %s\n", n, file);
    }
    acdm_sb_free(&x.b);
    acdm_store *st;
    if (!ret && !acdm_store_open(data_dir, 1, NULL, NULL, &st, err, sizeof err)) {
        char target[128], a[48], z[48];
        acdm_time_iso(s, a);
        acdm_time_iso(u, z);
        snprintf(target, sizeof target, "%s..%s", a, z);
        host_audit(st, "export", target);
        acdm_store_close(st);
    } else if (!ret) {
        fprintf(stderr, "acdmctl: warning: the export was not audited: %s\n", err);
    }
    return ret;
}

/* A report (report.h) from the store itself, like export_events. */
static int report_file(const acdm_config *cfg, const char *data_dir, const char *kind, const char *period,
                       const char *from, const char *until, const char *interval, const char *format,
                       const char *lang, const char *excel, const char *style, const char *file)
{
    /* CSV and PDF as the page shows them, by default Dutch for Excel (as the REST route) */
    if (lang && strcmp(lang, "nl") && strcmp(lang, "en")) { fprintf(stderr, "acdmctl: --lang: expected nl or en, got \"%s\"\n", lang); return 2; }
    if (excel && strcmp(excel, "true") && strcmp(excel, "false")) { fprintf(stderr, "acdmctl: --excel: expected true or false, got \"%s\"\n", excel); return 2; }
    if (style && strcmp(style, "page") && strcmp(style, "raw")) { fprintf(stderr, "acdmctl: --style: expected page or raw, got \"%s\"\n", style); return 2; }
    if (!lang) lang = "nl";
    int f = acdm_report_format_parse(format);
    if (f < 0) { fprintf(stderr, "acdmctl: --format: expected json, csv, xlsx or pdf, got \"%s\"\n", format); return 2; }
    if ((f == ACDM_REPORT_XLSX || f == ACDM_REPORT_PDF) && !file) { fprintf(stderr, "acdmctl: --format %s: give a FILE to write\n", format); return 2; }
    acdm_report_range rg;
    char err[512];
    if (acdm_report_params(kind, from, until, period, interval, acdm_now_ms(), &rg, err, sizeof err)) {
        fprintf(stderr, "acdmctl: --%s\n", err);
        return 2;
    }
    char db[1024];
    struct stat stt;
    snprintf(db, sizeof db, "%s/acdm.db", data_dir);
    if (stat(db, &stt)) { fprintf(stderr, "acdmctl: report: no store at %s\n", db); return 1; }
    acdm_report *r = acdm_report_new(&rg, cfg);
    if (r && (!style || strcmp(style, "raw"))) acdm_report_set_display(r, lang, excel ? !strcmp(excel, "true") : !strcmp(lang, "nl"));
    acdm_sbuf b = {0};
    int n = r ? acdm_report_read(r, db, acdm_now_ms(), err, sizeof err) : ACDM_ENOMEM;
    if (n >= 0 && acdm_report_write(r, (acdm_report_format)f, &b, NULL, err, sizeof err)) n = ACDM_EIO;
    acdm_report_free(r);
    FILE *out = n >= 0 ? (file ? fopen(file, "wb") : stdout) : NULL;
    bool ok = out && fwrite(b.p ? b.p : "", 1, b.n, out) == b.n;
    if (out && file) ok = fclose(out) == 0 && ok;
    else if (out) fflush(stdout);
    acdm_sb_free(&b);
    if (n < 0) { fprintf(stderr, "acdmctl: report failed: %s\n", n == ACDM_ENOMEM ? "out of memory" : err); return 1; }
    if (!ok) { fprintf(stderr, "acdmctl: report: cannot write %s\n", file ? file : "stdout"); return 1; }
    if (file) printf("report over %d events written to %s\n", n, file);
    return 0;
}

/* Online backup (the store's backup: a consistent copy while acdmd keeps writing, verified
 * with PRAGMA integrity_check before it gets its name). */
static int backup(const char *src, const char *dst)
{
    char err[512];
    acdm_backup_info info;
    if (acdm_store_backup(src, dst, NULL, &info, err, sizeof err)) {
        fprintf(stderr, "acdmctl: backup: %s\n", err);
        return 1;
    }
    printf("backup of %s written to %s (%lld bytes, integrity check ok)\n", src, dst,
           (long long)info.bytes);
    return 0;
}

/* the Debian package builds with DEFAULT_CONFIG=/etc/acdm/acdm.json (Makefile) */
#ifndef ACDM_DEFAULT_CONFIG
#define ACDM_DEFAULT_CONFIG "conf/acdm.json"
#endif

int main(int argc, char **argv)
{
    const char *config = ACDM_DEFAULT_CONFIG, *url = NULL, *data_dir = NULL, *role = NULL, *name = NULL;
    const char *since = NULL, *until = NULL, *format = "json", *kind = NULL, *period = NULL, *from = NULL,
               *interval = NULL, *lang = NULL, *excel = NULL, *style = NULL;
    static const struct option lo[] = {
        {"config", required_argument, 0, 'c'}, {"url", required_argument, 0, 'u'},
        {"data-dir", required_argument, 0, 'd'}, {"role", required_argument, 0, 'r'},
        {"name", required_argument, 0, 'n'}, {"help", no_argument, 0, 'h'},
        {"since", required_argument, 0, 'S'}, {"until", required_argument, 0, 'U'},
        {"format", required_argument, 0, 'F'}, {"kind", required_argument, 0, 'K'},
        {"period", required_argument, 0, 'P'}, {"from", required_argument, 0, 'R'},
        {"interval", required_argument, 0, 'I'}, {"lang", required_argument, 0, 'L'},
        {"excel", required_argument, 0, 'X'}, {"style", required_argument, 0, 'Y'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "+c:u:d:h", lo, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'u': url = optarg; break;
        case 'd': data_dir = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) { usage(stderr); return 2; }
    const char *cmd = argv[optind++];
    /* options after the command (token create --role R --name N) */
    optind--;
    argv[optind] = (char *)"acdmctl";
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    const char *sub = sub_argc > 1 ? sub_argv[1] : NULL;
    optind = 0;   /* 0, not 1: glibc then re-initialises (the first pass stopped at the command) */
    while ((c = getopt_long(sub_argc, sub_argv, "r:n:", lo, NULL)) != -1) {
        if (c == 'r') role = optarg;
        else if (c == 'n') name = optarg;
        else if (c == 'c') config = optarg;
        else if (c == 'u') url = optarg;
        else if (c == 'd') data_dir = optarg;
        else if (c == 'S') since = optarg;
        else if (c == 'U') until = optarg;
        else if (c == 'F') format = optarg;
        else if (c == 'K') kind = optarg;
        else if (c == 'P') period = optarg;
        else if (c == 'R') from = optarg;
        else if (c == 'I') interval = optarg;
        else if (c == 'L') lang = optarg;
        else if (c == 'X') excel = optarg;
        else if (c == 'Y') style = optarg;
    }
    const char *arg2 = optind < sub_argc ? sub_argv[optind] : NULL;
    const char *arg3 = optind + 1 < sub_argc ? sub_argv[optind + 1] : NULL;
    (void)sub;

    static char err[65536];
    acdm_config *cfg = NULL;
    if (acdm_config_load(config, &cfg, err, sizeof err)) {
        fprintf(stderr, "acdmctl: %s\n", err);
        return 1;
    }
    if (!data_dir) data_dir = cfg->data_dir;
    char base[512];
    if (url) snprintf(base, sizeof base, "%s", url);
    else if (strchr(cfg->listen_host, ':')) snprintf(base, sizeof base, "http://[%s]:%d", cfg->listen_host, cfg->listen_port);
    else snprintf(base, sizeof base, "http://%s:%d",
                  strcmp(cfg->listen_host, "0.0.0.0") ? cfg->listen_host : "127.0.0.1", cfg->listen_port);

    int ret = 0;
    if (!strcmp(cmd, "token")) {
        if (!arg2 || strcmp(arg2, "create") || !role || !name) {
            fprintf(stderr, "acdmctl: usage: token create --role ROLE --name NAME\n");
            ret = 2;
        } else if (strcmp(role, "admin") && strcmp(role, "supervisor") && strcmp(role, "agent") &&
                   strcmp(role, "metrics") && strncmp(role, "channel:", 8)) {
            fprintf(stderr, "acdmctl: --role: unknown role \"%s\" (admin, supervisor, agent, metrics, channel:<instance>)\n", role);
            ret = 2;
        } else if (!strcmp(role, "agent") && !acdm_config_agent(cfg, name)) {
            fprintf(stderr, "acdmctl: --name: no agent \"%s\" in %s\n", name, config);
            ret = 2;
        } else {
            acdm_store *st;
            if (acdm_store_open(data_dir, 1, NULL, NULL, &st, err, sizeof err)) {
                fprintf(stderr, "acdmctl: %s\n", err);
                ret = 1;
            } else {
                char tok[64];
                if (acdm_store_token_create(st, role, name, tok)) { fprintf(stderr, "acdmctl: could not store the token\n"); ret = 1; }
                else {
                    char target[160];
                    snprintf(target, sizeof target, "%s:%s", role, name);
                    host_audit(st, "token_create", target);
                    printf("%s\n", tok);
                }
                acdm_store_close(st);
            }
        }
        acdm_config_free(cfg);
        return ret;
    }

    if (!strcmp(cmd, "export")) {
        if (acdm_set_timezone(cfg->timezone)) fprintf(stderr, "acdmctl: unknown timezone %s; times without a zone are UTC\n", cfg->timezone);
        ret = export_events(data_dir, since, until, format, arg2);
        acdm_config_free(cfg);
        return ret;
    }

    if (!strcmp(cmd, "report")) {
        if (acdm_set_timezone(cfg->timezone)) fprintf(stderr, "acdmctl: unknown timezone %s; times are UTC\n", cfg->timezone);
        ret = report_file(cfg, data_dir, kind, period, from, until, interval, format, lang, excel, style, arg2);
        acdm_config_free(cfg);
        return ret;
    }

    if (!strcmp(cmd, "backup")) {
        if (!arg2) { fprintf(stderr, "acdmctl: usage: backup FILE\n"); acdm_config_free(cfg); return 2; }
        char src[1024];
        snprintf(src, sizeof src, "%s/acdm.db", data_dir);
        ret = backup(src, arg2);
        acdm_config_free(cfg);
        return ret;
    }

    char tokbuf[128] = "";
    const char *token = getenv("ACDM_TOKEN");
    if (!token) {
        char path[1024];
        snprintf(path, sizeof path, "%s/admin.token", data_dir);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(tokbuf, sizeof tokbuf, f)) tokbuf[strcspn(tokbuf, "\r\n")] = 0;
            fclose(f);
        }
        token = tokbuf;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!strcmp(cmd, "status")) {
        ret = call(base, token, "GET", "/api/v1/health") || call(base, token, "GET", "/api/v1/queues");
    } else if (!strcmp(cmd, "reload")) {
        ret = call(base, token, "POST", "/api/v1/reload");
    } else if (!strcmp(cmd, "plugins")) {
        ret = call(base, token, "GET", "/api/v1/plugins");
    } else if (!strcmp(cmd, "plugin") && arg2 && arg3 &&
               (!strcmp(arg2, "disable") || !strcmp(arg2, "enable") || !strcmp(arg2, "reload"))) {
        char *esc = curl_easy_escape(NULL, arg3, 0);
        char path[512];
        snprintf(path, sizeof path, "/api/v1/plugins/%s/%s", esc, arg2);
        curl_free(esc);
        ret = call(base, token, "POST", path);
    } else if (!strcmp(cmd, "agents")) {
        ret = call(base, token, "GET", "/api/v1/agents");
    } else if (!strcmp(cmd, "queue") && arg2 && arg3 && (!strcmp(arg2, "open") || !strcmp(arg2, "close"))) {
        char *esc = curl_easy_escape(NULL, arg3, 0);
        char path[512];
        snprintf(path, sizeof path, "/api/v1/queues/%s/%s", esc, arg2);
        curl_free(esc);
        ret = call(base, token, "POST", path);
    } else {
        usage(stderr);
        ret = 2;
    }
    curl_global_cleanup();
    acdm_config_free(cfg);
    return ret;
}
