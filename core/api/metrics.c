/* metrics.c -- GET /metrics: the daemon's figures in the Prometheus text format (exposition
 * format 0.0.4) for the monitoring operators already run. Role admin or metrics.
 *
 * Counters count since the process started (Prometheus' rate() and increase() handle the
 * reset at a restart); they are kept here, fed by the model's events, and never reset at
 * midnight as today's supervisor figures are. Gauges are read from the model, the store, the
 * HTTP server and /proc when scraped. docs/operations.md ("Metrics") lists every series. */
#include "api/metrics.h"
#include "api/api_super.h"
#include "api/live.h"
#include "api/maint.h"
#include "base/hmap.h"
#include "base/log.h"
#include "plugins/plugins.h"
#include "reports/stats.h"

#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define WHO "metrics"

typedef struct {
    acdm_stats_counts c;     /* offered, answered, abandoned, quick drops (since start) */
    uint64_t offers, ring_no_answers;
    char name[];
} qcount;

typedef struct {
    acdm_hmap queues;        /* queue name -> qcount* (kept when a reload removes the queue) */
    double start_s;          /* the process's start (unix seconds) */
} metrics_state;

static metrics_state *M(acdm_engine *e) { return acdm_engine_state(e, &acdm_metrics_module); }

static qcount *qc_get(metrics_state *m, const char *name)
{
    qcount *q = acdm_hmap_get(&m->queues, name);
    if (q) return q;
    size_t n = strlen(name);
    if (!(q = calloc(1, sizeof *q + n + 1))) return NULL;
    memcpy(q->name, name, n + 1);
    if (acdm_hmap_put(&m->queues, q->name, q)) {
        free(q);
        return NULL;
    }
    return q;
}

static void on_event(acdm_engine *e, void *user, const acdm_mevent *ev)
{
    (void)user;
    metrics_state *m = M(e);
    if (!m || !ev->b) return;
    const acdm_queue *q = ev->q ? ev->q : ev->b->queue;
    if (!q) return;
    qcount *c = qc_get(m, q->name);
    if (!c) return;
    if (ev->flow == ACDM_FLOW_MOVED) {   /* out of the queue it left, into q */
        qcount *from = ev->reason ? qc_get(m, ev->reason) : NULL;
        if (from) from->c.moved++;
    }
    acdm_stats_count(&c->c, ev->flow == ACDM_FLOW_MOVED ? ACDM_FLOW_OFFERED : ev->flow, ev->type, ev->reason,
                     ev->type == ACDM_ME_ACCEPTED ? ev->value : 0, ev->quick_drop, q->def->sl_seconds, -1);
    if (ev->type == ACDM_ME_OFFERED) c->offers++;
    else if (ev->type == ACDM_ME_TIMEOUT) c->ring_no_answers++;
}

/* ------------------------------------------------------------------ the text */

static void sb_printf(acdm_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(acdm_sbuf *b, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    acdm_sb_add(b, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* A label value: backslash, double quote and newline escaped (exposition format 0.0.4). */
static void label(acdm_sbuf *b, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\') acdm_sb_add(b, "\\\\", 2);
        else if (*p == '"') acdm_sb_add(b, "\\\"", 2);
        else if (*p == '\n') acdm_sb_add(b, "\\n", 2);
        else acdm_sb_add(b, p, 1);
    }
}

static void head(acdm_sbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_q(acdm_sbuf *b, const char *name, const char *queue, double v)
{
    sb_printf(b, "%s{queue=\"", name);
    label(b, queue);
    sb_printf(b, "\"} %.17g\n", v);
}

static void queue_counter(acdm_sbuf *b, metrics_state *m, const char *name, const char *help,
                          size_t off)
{
    head(b, name, "counter", help);
    const char *k;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(&m->queues, &pos, &k, &v);) {
        const qcount *q = v;
        sample_q(b, name, q->name, (double)*(const uint64_t *)(const void *)((const char *)q + off));
    }
}

static bool agent_active(const acdm_agent *a)
{
    for (uint32_t i = 0; i < a->n_work; i++)
        if (a->work[i].state == ACDM_W_ACTIVE) return true;
    return false;
}

/* Process figures from /proc (Linux); a figure that cannot be read is left out. */
static void process_figures(acdm_sbuf *b, const metrics_state *m)
{
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long vsz = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &vsz, &rss) == 2 && page > 0) {
            head(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
            sb_printf(b, "process_resident_memory_bytes %lu\n", rss * (unsigned long)page);
            head(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
            sb_printf(b, "process_virtual_memory_bytes %lu\n", vsz * (unsigned long)page);
        }
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        for (const struct dirent *de; (de = readdir(d));)
            if (de->d_name[0] != '.') n++;
        closedir(d);
        head(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        sb_printf(b, "process_open_fds %ld\n", n - 1);   /* less the one opendir holds */
    }
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY) {
        head(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        sb_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
    struct rusage ru;
    if (!getrusage(RUSAGE_SELF, &ru)) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        head(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        sb_printf(b, "process_cpu_seconds_total %.6f\n", cpu);
    }
    head(b, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
    sb_printf(b, "process_start_time_seconds %.3f\n", m->start_s);
}

static void render(acdm_engine *e, metrics_state *m, acdm_sbuf *b)
{
    acdm_model *model = acdm_engine_model(e);
    int64_t now = acdm_now_ms();
    head(b, "acdm_build_info", "gauge", "Always 1; the version of acdmd in a label.");
    sb_printf(b, "acdm_build_info{version=\"%s\"} 1\n", ACDM_VERSION);

    /* queues: every configured queue shows, also before its first event */
    size_t nq = acdm_model_n_queues(model);
    for (size_t i = 0; i < nq; i++) qc_get(m, acdm_model_queue_at(model, i)->name);
    head(b, "acdm_queue_waiting", "gauge", "Berichten waiting in the queue now.");
    for (size_t i = 0; i < nq; i++) {
        const acdm_queue *q = acdm_model_queue_at(model, i);
        sample_q(b, "acdm_queue_waiting", q->name, (double)q->n_waiting);
    }
    head(b, "acdm_queue_longest_wait_seconds", "gauge", "The longest current wait in the queue (0 when nobody waits).");
    for (size_t i = 0; i < nq; i++) {
        const acdm_queue *q = acdm_model_queue_at(model, i);
        sample_q(b, "acdm_queue_longest_wait_seconds", q->name,
                 (double)acdm_stats_longest_wait(q, now) / 1000.0);
    }
    head(b, "acdm_queue_open", "gauge", "1 when the queue is open, 0 when closed.");
    for (size_t i = 0; i < nq; i++) {
        const acdm_queue *q = acdm_model_queue_at(model, i);
        sample_q(b, "acdm_queue_open", q->name, q->open ? 1 : 0);
    }
    queue_counter(b, m, "acdm_queue_offered_total", "Berichten that entered the queue (new, parked while closed, transferred, overflowed, moved) since start.",
                  offsetof(qcount, c.offered));
    queue_counter(b, m, "acdm_queue_answered_total", "Berichten an agent accepted or picked since start (each stay in the queue once).",
                  offsetof(qcount, c.answered));
    queue_counter(b, m, "acdm_queue_answered_in_sl_total", "Answered within the queue's sl_seconds since start.",
                  offsetof(qcount, c.answered_in_sl));
    queue_counter(b, m, "acdm_queue_abandoned_total", "Customers who left before an agent took the bericht (quick drops not included) since start.",
                  offsetof(qcount, c.abandoned));
    queue_counter(b, m, "acdm_queue_quick_drops_total", "Customers who left within the queue's quick_drop_s since start.",
                  offsetof(qcount, c.quick_drops));
    queue_counter(b, m, "acdm_queue_offers_total", "Offers of a bericht to an agent since start.",
                  offsetof(qcount, offers));
    queue_counter(b, m, "acdm_queue_ring_no_answers_total", "Offers the agent did not answer in time since start.",
                  offsetof(qcount, ring_no_answers));
    acdm_stats *st = acdm_live_stats(e);
    head(b, "acdm_queue_service_level_ratio", "gauge",
         "Today's service level (answered within sl_seconds / (answered + abandoned)); absent while both are 0.");
    for (size_t i = 0; st && i < nq; i++) {
        const acdm_queue *q = acdm_model_queue_at(model, i);
        acdm_stats_counts c = acdm_stats_queue(st, q->name, now);
        int64_t t = acdm_stats_sl_tenths(&c);
        if (t >= 0) sample_q(b, "acdm_queue_service_level_ratio", q->name, (double)t / 1000.0);
    }
    head(b, "acdm_queue_service_level_target_ratio", "gauge", "The queue's configured service level target.");
    for (size_t i = 0; i < nq; i++) {
        const acdm_queue *q = acdm_model_queue_at(model, i);
        sample_q(b, "acdm_queue_service_level_target_ratio", q->name, (double)q->def->sl_target_pct / 100.0);
    }

    /* agents, each in exactly one state */
    static const char *const states[] = {"logged_out", "ready", "not_ready", "busy", "wrapup"};
    long n_state[5] = {0};
    for (size_t i = 0, na = acdm_model_n_agents(model); i < na; i++) {
        const acdm_agent *a = acdm_model_agent_at(model, i);
        int s = a->state == ACDM_AGENT_LOGGED_OUT ? 0 : agent_active(a) ? 3 : a->n_wrapup > 0 ? 4
              : a->state == ACDM_AGENT_READY ? 1 : 2;
        n_state[s]++;
    }
    head(b, "acdm_agents", "gauge", "Configured agents by state (busy: handling a bericht; wrapup: in wrap-up only).");
    for (int s = 0; s < 5; s++) sb_printf(b, "acdm_agents{state=\"%s\"} %ld\n", states[s], n_state[s]);

    /* channel instances */
    json_t *chans = acdm_engine_plugins(e) ? acdm_plugins_health_json(acdm_engine_plugins(e), NULL) : NULL;
    size_t ci;
    json_t *c;
    head(b, "acdm_channel_healthy", "gauge", "1 when the channel instance runs and its status does not say healthy: false.");
    json_array_foreach(chans, ci, c) {
        acdm_sb_add(b, "acdm_channel_healthy{instance=\"", 31);
        label(b, json_string_value(json_object_get(c, "name")));
        acdm_sb_add(b, "\",plugin=\"", 10);
        label(b, json_string_value(json_object_get(c, "plugin")));
        sb_printf(b, "\"} %d\n", json_is_true(json_object_get(c, "healthy")) ? 1 : 0);
    }
    head(b, "acdm_channel_deliveries_failed_total", "counter", "Delivery reports of agents' replies that said failed, since start.");
    json_array_foreach(chans, ci, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        acdm_sb_add(b, "acdm_channel_deliveries_failed_total{instance=\"", 47);
        label(b, name);
        sb_printf(b, "\"} %" PRIu64 "\n", acdm_engine_deliveries_failed(e, name));
    }
    json_decref(chans);

    /* the store */
    acdm_store_figures f;
    acdm_store_figures_get(acdm_engine_store(e), &f);
    static const int64_t bounds[ACDM_STORE_COMMIT_NBUCKETS] = ACDM_STORE_COMMIT_BUCKETS_US;
    head(b, "acdm_store_commit_seconds", "histogram", "Time the store's writer took per group commit.");
    uint64_t cum = 0;
    for (int i = 0; i < ACDM_STORE_COMMIT_NBUCKETS; i++) {
        cum += f.commit_hist[i];
        sb_printf(b, "acdm_store_commit_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", (double)bounds[i] / 1e6, cum);
    }
    cum += f.commit_hist[ACDM_STORE_COMMIT_NBUCKETS];
    sb_printf(b, "acdm_store_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    sb_printf(b, "acdm_store_commit_seconds_sum %.6f\n", (double)f.commit_us_sum / 1e6);
    sb_printf(b, "acdm_store_commit_seconds_count %" PRIu64 "\n", cum);
    head(b, "acdm_store_queued_writes", "gauge", "Writes waiting for the store's writer now.");
    sb_printf(b, "acdm_store_queued_writes %zu\n", f.queued);
    head(b, "acdm_store_writes_total", "counter", "Writes the store's writer handled since start.");
    sb_printf(b, "acdm_store_writes_total %" PRIu64 "\n", f.writes);
    head(b, "acdm_store_failed_commits_total", "counter", "Groups that could not be committed (their writes lost) since start.");
    sb_printf(b, "acdm_store_failed_commits_total %" PRIu64 "\n", f.failed_groups);
    head(b, "acdm_store_failing", "gauge", "1 while the last group commit failed (the store is degraded).");
    sb_printf(b, "acdm_store_failing %d\n", f.failing ? 1 : 0);

    /* backups and retention (maint.c) */
    acdm_maint_figures mf;
    acdm_maint_figures_get(e, &mf);
    head(b, "acdm_backups_total", "counter", "Backups taken since start, by result (ok: written and verified).");
    sb_printf(b, "acdm_backups_total{result=\"ok\"} %" PRIu64 "\n", mf.backups_ok);
    sb_printf(b, "acdm_backups_total{result=\"failed\"} %" PRIu64 "\n", mf.backups_failed);
    head(b, "acdm_backup_running", "gauge", "1 while a backup is being taken.");
    sb_printf(b, "acdm_backup_running %d\n", mf.backup_running ? 1 : 0);
    if (mf.last_ok >= 0) {
        head(b, "acdm_backup_last_ok", "gauge", "1 when the last backup was written and verified, 0 when it failed.");
        sb_printf(b, "acdm_backup_last_ok %d\n", mf.last_ok);
        head(b, "acdm_backup_last_timestamp_seconds", "gauge", "When the last backup (ok or not) began.");
        sb_printf(b, "acdm_backup_last_timestamp_seconds %.3f\n", (double)mf.last_ms / 1e3);
        head(b, "acdm_backup_last_duration_seconds", "gauge", "How long the last backup took, copy and check.");
        sb_printf(b, "acdm_backup_last_duration_seconds %.3f\n", (double)mf.last_duration_ms / 1e3);
        head(b, "acdm_backup_last_size_bytes", "gauge", "The last backup file's size (0 when it failed).");
        sb_printf(b, "acdm_backup_last_size_bytes %" PRId64 "\n", mf.last_bytes);
    }
    if (mf.last_ok_ms) {
        head(b, "acdm_backup_last_success_timestamp_seconds", "gauge", "When the last verified backup began.");
        sb_printf(b, "acdm_backup_last_success_timestamp_seconds %.3f\n", (double)mf.last_ok_ms / 1e3);
    }
    head(b, "acdm_retention_pruned_total", "counter", "Rows the retention runs removed or emptied since start, by what.");
    for (int i = 0; i < 4; i++)
        sb_printf(b, "acdm_retention_pruned_total{what=\"%s\"} %" PRIu64 "\n", acdm_maint_pruned_names[i], mf.pruned[i]);
    head(b, "acdm_retention_runs_total", "counter", "Retention runs finished since start.");
    sb_printf(b, "acdm_retention_runs_total %" PRIu64 "\n", mf.retention_runs);
    head(b, "acdm_retention_running", "gauge", "1 while a retention run is in progress.");
    sb_printf(b, "acdm_retention_running %d\n", mf.retention_running ? 1 : 0);
    if (mf.retention_last_ms) {
        head(b, "acdm_retention_last_run_timestamp_seconds", "gauge", "When the last retention run ended.");
        sb_printf(b, "acdm_retention_last_run_timestamp_seconds %.3f\n", (double)mf.retention_last_ms / 1e3);
    }

    /* HTTP and websockets */
    acdm_http *h = acdm_engine_http(e);
    head(b, "acdm_http_requests_total", "counter", "HTTP responses sent since start, by route class and status code.");
    for (int cls = 0; cls < ACDM_HTTP_CLASS_COUNT; cls++)
        for (int s = 100; s <= 599; s++) {
            uint64_t n = acdm_http_responses(h, cls, s);
            if (n) sb_printf(b, "acdm_http_requests_total{class=\"%s\",code=\"%d\"} %" PRIu64 "\n",
                                  acdm_http_class_name(cls), s, n);
        }
    uint64_t opened = 0;
    size_t open_now = acdm_http_ws_open(h, &opened);
    head(b, "acdm_websocket_sessions", "gauge", "Websockets open now (agents, supervisors, web chat visitors).");
    sb_printf(b, "acdm_websocket_sessions %zu\n", open_now);
    head(b, "acdm_websocket_sessions_opened_total", "counter", "Websockets accepted since start.");
    sb_printf(b, "acdm_websocket_sessions_opened_total %" PRIu64 "\n", opened);
    head(b, "acdm_berichten_live", "gauge", "Berichten in the live model (waiting, offered, active, in wrap-up).");
    sb_printf(b, "acdm_berichten_live %zu\n", acdm_model_n_berichten(model));

    process_figures(b, m);
}

static void get_metrics(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin metrics", &who)) return;
    metrics_state *m = M(e);
    acdm_sbuf b = {0};
    if (m) render(e, m, &b);
    if (!m || b.oom) {
        acdm_sb_free(&b);
        acdm_http_problem(r, 500, "Internal Server Error", "out of memory");
        return;
    }
    acdm_http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p ? b.p : "", b.n);
    acdm_sb_free(&b);
}

/* ------------------------------------------------------------------ the module */

static int metrics_start(acdm_engine *e)
{
    metrics_state *m = calloc(1, sizeof *m);
    if (!m) return ACDM_ENOMEM;
    acdm_hmap_init(&m->queues);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    acdm_engine_set_state(e, &acdm_metrics_module, m);
    acdm_engine_subscriber sub = {.order = ACDM_SUB_FIGURES + 5, .model_event = on_event};
    int rc = acdm_engine_subscribe(e, &sub);
    if (rc) return rc;
    acdm_http *h = acdm_engine_http(e);
    rc = acdm_http_route(h, "GET", "/metrics", get_metrics, e);
    return rc < 0 ? rc : 0;
}

static void metrics_release(acdm_engine *e)
{
    metrics_state *m = M(e);
    if (!m) return;
    const char *k;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(&m->queues, &pos, &k, &v);) free(v);
    acdm_hmap_free(&m->queues);
    free(m);
    acdm_engine_set_state(e, &acdm_metrics_module, NULL);
}

const acdm_engine_module acdm_metrics_module = {
    .name = "metrics", .start = metrics_start, .release = metrics_release,
};
