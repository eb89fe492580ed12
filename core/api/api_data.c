/* api_data.c -- REST routes over stored data: the customer view (Klantbeeld), the event-log
 * export (R29/R65), the reports (R28) and the audit log (R32). */
#include "api/api_super.h"
#include "api/api.h"
#include "store/export.h"
#include "base/log.h"
#include "reports/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO "api"
#define TOPICS_SPAN_MS (183LL * 86400 * 1000)   /* "the last 6 months" */
#define AUDIT_DEFAULT_SPAN_MS (7LL * 86400 * 1000)
#define AUDIT_MAX_ITEMS 10000

/* Bearer check (with the failed-sign-in limit) and role list: api.c's, shared. */
static bool allowed(acdm_engine *e, acdm_req *r, const char *roles, acdm_principal *who)
{
    return acdm_api_authorize(e, r, roles, who);
}

/* An optional integer query parameter in [lo, hi]; false (and a 400 naming it) if bad. */
static bool query_int(acdm_req *r, const char *name, int lo, int hi, int def, int *out)
{
    const char *v = acdm_req_query(r, name);
    *out = def;
    if (!v) return true;
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        acdm_http_problem(r, 400, "Invalid parameter", "%s: expected an integer %d..%d, got \"%.40s\"", name, lo, hi, v);
        return false;
    }
    *out = (int)x;
    return true;
}

/* Is one of the agent's live berichten (offered, active, wrap-up) from address? */
static bool agent_has_customer(acdm_engine *e, const char *agent_id, const char *address)
{
    acdm_agent *a = acdm_model_agent(acdm_engine_model(e), agent_id);
    for (uint32_t i = 0; a && i < a->n_work; i++)
        if (a->work[i].b->from && !strcmp(a->work[i].b->from, address)) return true;
    return false;
}

/* ------------------------------------------------------------------ Klantbeeld */

static void get_customer_history(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!allowed(e, r, "admin supervisor agent", &who)) return;
    /* the route is a prefix: the address is everything between /customers/ and the last
     * /history, so an address with a '/' (sent as %2F: lws decodes the path before routing)
     * is found too */
    const char *rest = acdm_req_rest(r);
    char address_buf[2100];
    const char *address = NULL;
    size_t rl = rest ? strlen(rest) : 0;
    static const char suffix[] = "/history";
    if (rl > sizeof suffix && rl - (sizeof suffix - 1) < sizeof address_buf &&
        !strcmp(rest + rl - (sizeof suffix - 1), suffix)) {
        snprintf(address_buf, sizeof address_buf, "%.*s", (int)(rl - (sizeof suffix - 1) - 1), rest + 1);
        address = address_buf;
    } else {
        acdm_http_problem(r, 404, "Not Found", "no resource at %.200s (expected /api/v1/customers/{address}/history)",
                          acdm_req_path(r));
        return;
    }
    if (!*address || acdm_utf8_chars(address) > 512) {
        acdm_http_problem(r, 400, "Invalid parameter", "address: expected the customer's address (1..512 characters)");
        return;
    }
    if (!strcmp(who.role, "agent") && !agent_has_customer(e, who.name, address)) {
        acdm_http_problem(r, 403, "Forbidden", "agents see the history of a customer whose bericht they have; %s has none from %s",
                          who.name, address);
        return;
    }
    int limit;
    if (!query_int(r, "limit", 1, 200, 50, &limit)) return;
    const char *cursor = acdm_req_query(r, "cursor");
    if (cursor && (!*cursor || strlen(cursor) > 64 || strspn(cursor, "0123456789abcdef-") != strlen(cursor))) {
        acdm_http_problem(r, 400, "Invalid parameter", "cursor: expected the \"next\" value of the previous page");
        return;
    }
    char *hist = NULL, *top = NULL;
    int64_t since = acdm_now_ms() - TOPICS_SPAN_MS;
    if (acdm_store_customer_history(acdm_engine_store(e), address, cursor, limit, &hist) ||
        acdm_store_customer_topics(acdm_engine_store(e), address, since, 10, &top)) {
        free(hist);
        acdm_http_problem(r, 500, "Store error", "the history could not be read (see the log)");
        return;
    }
    json_t *j = json_loads(hist, 0, NULL);
    json_t *t = json_loads(top, 0, NULL);
    free(hist);
    free(top);
    if (!j || !t) {
        json_decref(j);
        json_decref(t);
        acdm_http_problem(r, 500, "Store error", "out of memory");
        return;
    }
    /* the live model is ahead of the store by a group commit: live state and handler win */
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(j, "items"), i, it) {
        char date[48];
        acdm_time_iso(json_integer_value(json_object_get(it, "created_ms")), date);
        json_object_set_new(it, "date", json_string(date));
        acdm_bericht *b = acdm_model_bericht(acdm_engine_model(e), json_string_value(json_object_get(it, "id")));
        if (b) {
            json_object_set_new(it, "state", json_string(acdm_bstate_name(b->state)));
            json_object_set_new(it, "queue", json_string(b->queue->name));
            json_object_set_new(it, "handler", b->agent ? json_string(b->agent->id) : json_null());
        }
        /* the handler as people know them: the configured agent's name (null: none, or an
         * agent no longer configured, whose id is all there is) */
        const char *hid = json_string_value(json_object_get(it, "handler"));
        acdm_agent *ha = hid ? acdm_model_agent(acdm_engine_model(e), hid) : NULL;
        json_object_set_new(it, "handler_name", ha && ha->def->name ? json_string(ha->def->name) : json_null());
    }
    json_object_set_new(j, "address", json_string(address));
    json_object_set_new(j, "top_topics", t);
    json_object_set_new(j, "top_topics_since_ms", json_integer(since));
    acdm_http_reply_json(r, 200, j);
}

/* ------------------------------------------------------------------ export, reports and audit
 *
 * All three read the event log on a worker thread through a read-only connection of their own
 * (a month of events must not hold up routing on the loop thread) and reply from the loop
 * thread when done. At most MAX_JOBS run at once; the answer is built in memory, at most
 * EXPORT_MAX_BYTES (acdmctl export writes as it reads, for anything larger).
 */

#define MAX_JOBS 2
#define EXPORT_MAX_BYTES (256u * 1024 * 1024)

static int jobs_running;

typedef struct {
    uv_work_t work;
    acdm_engine *e;
    acdm_req *r;
    acdm_principal who;
    char *db;
    int64_t since, until;
    acdm_export_format f;
    bool audit;
    bool is_report;           /* a report (else an export or the audit log) */
    acdm_report *report;      /* until the worker has written it */
    acdm_report_format rf;
    acdm_report_kind report_kind;
    int interval_s;
    /* results (worker) */
    acdm_sbuf b;
    json_t *items;
    int n;
    bool too_big, truncated;
    char err[512];
} data_job;

static int export_row(void *user, int64_t id, const acdm_event_row *ev)
{
    data_job *j = user;
    acdm_export_event(&j->b, j->f, id, ev, j->n++ == 0);
    if (j->b.n > EXPORT_MAX_BYTES) j->too_big = true;
    return j->b.oom || j->too_big;
}

static int audit_row(void *user, int64_t id, const acdm_event_row *ev)
{
    data_job *j = user;
    json_t *d = ev->detail_json ? json_loads(ev->detail_json, 0, NULL) : NULL;
    if (!json_is_object(d)) { json_decref(d); d = json_object(); }
    char ts[48];
    acdm_time_iso(ev->ts_ms, ts);
    json_object_set_new(d, "id", json_integer(id));
    json_object_set_new(d, "ts", json_string(ts));
    json_object_set_new(d, "ts_ms", json_integer(ev->ts_ms));
    json_array_append_new(j->items, d);
    j->truncated = json_array_size(j->items) >= AUDIT_MAX_ITEMS;
    return j->truncated;
}

static void job_run(uv_work_t *w)
{
    data_job *j = w->data;
    if (j->is_report) {
        j->n = acdm_report_read(j->report, j->db, acdm_now_ms(), j->err, sizeof j->err);
        if (j->n >= 0 && acdm_report_write(j->report, j->rf, &j->b, NULL, j->err, sizeof j->err)) j->n = ACDM_EIO;
        acdm_report_free(j->report);   /* here: a big report has many cells to free, not the loop's work */
        j->report = NULL;
        if (j->b.n > EXPORT_MAX_BYTES) j->too_big = true;
        return;
    }
    if (j->audit) {
        j->items = json_array();
        j->n = acdm_export_read(j->db, j->since, j->until, true, audit_row, j, j->err, sizeof j->err);
        if (j->n >= 0) {
            json_t *o = json_pack("{s:I, s:I, s:O, s:b}", "since_ms", (json_int_t)j->since,
                                  "until_ms", (json_int_t)j->until, "items", j->items, "truncated", j->truncated);
            char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
            if (txt) acdm_sb_str(&j->b, txt);
            else j->b.oom = true;
            free(txt);
            json_decref(o);
        }
        json_decref(j->items);
        j->items = NULL;
        return;
    }
    acdm_export_begin(&j->b, j->f);
    j->n = acdm_export_read(j->db, j->since, j->until, false, export_row, j, j->err, sizeof j->err);
    acdm_export_end(&j->b, j->f);
}

static void job_free(data_job *j)
{
    acdm_report_free(j->report);
    acdm_sb_free(&j->b);
    free(j->db);
    free(j);
}

static void job_done(uv_work_t *w, int status)
{
    data_job *j = w->data;
    acdm_engine *e = j->e;
    jobs_running--;
    if (acdm_engine_stopping(e)) {          /* the HTTP server is gone (or going): no reply */
        job_free(j);
        return;
    }
    acdm_req *r = j->r;
    const char *what = j->is_report ? "report" : j->audit ? "audit" : "export";
    if (status || j->n < 0 || j->b.oom) {
        if (j->n < 0) acdm_log(ACDM_LOG_ERR, WHO, "%s: %s", what, j->err);
        acdm_http_problem(r, 500, j->is_report ? "Report failed" : j->audit ? "Audit log not read" : "Export failed", "%s",
                          j->b.oom ? "out of memory" : "the event log could not be read (see the log)");
        job_free(j);
        return;
    }
    if (j->too_big) {
        if (j->is_report)
            acdm_http_problem(r, 413, "Content Too Large",
                              "interval: the report is larger than %u MiB; choose a larger interval or a shorter range",
                              EXPORT_MAX_BYTES / (1024 * 1024));
        else
            acdm_http_problem(r, 413, "Content Too Large",
                              "until: the export is larger than %u MiB; narrow the range, or use acdmctl export (it writes as it reads)",
                              EXPORT_MAX_BYTES / (1024 * 1024));
        job_free(j);
        return;
    }
    if (j->audit) {
        acdm_http_reply(r, 200, "application/json", j->b.p ? j->b.p : "{}", j->b.n);
        job_free(j);
        return;
    }
    char name[160], a[48], z[48], target[112];
    if (j->is_report) {
        static const char *const ext[] = {"json", "csv", "xlsx", "pdf"};
        acdm_report_local_date(j->since, a);   /* the local date chosen, not UTC's */
        snprintf(name, sizeof name, "attachment; filename=\"acdm-%s-%.10s-%s.%s\"", acdm_report_kind_name(j->report_kind),
                 a, acdm_report_interval_name(j->interval_s), ext[j->rf & 3]);
        acdm_http_add_header(r, "Content-Disposition", name);
        acdm_log(ACDM_LOG_INFO, WHO, "report %s over %d events by %s", acdm_report_kind_name(j->report_kind), j->n, j->who.name);
        acdm_http_reply(r, 200, acdm_report_content_type(j->rf), j->b.p ? j->b.p : "", j->b.n);
        job_free(j);
        return;
    }
    acdm_time_iso(j->since, a);
    acdm_time_iso(j->until, z);
    snprintf(name, sizeof name, "attachment; filename=\"acdm-events-%.10s-%.10s.%s\"", a, z,
             j->f == ACDM_EXPORT_CSV ? "csv" : "json");
    acdm_http_add_header(r, "Content-Disposition", name);
    acdm_log(ACDM_LOG_INFO, WHO, "export of %d events (%s .. %s) by %s", j->n, a, z, j->who.name);
    snprintf(target, sizeof target, "%s..%s", a, z);
    acdm_engine_audit(e, &j->who, "export", target, NULL);
    acdm_http_reply(r, 200, acdm_export_content_type(j->f), j->b.p ? j->b.p : "", j->b.n);
    job_free(j);
}

/* Queues the job j (its range and report set); replies itself when busy or on failure. */
static void job_queue(acdm_engine *e, acdm_req *r, data_job *j)
{
    if (jobs_running >= MAX_JOBS) {
        acdm_http_add_header(r, "Retry-After", "5");
        acdm_http_problem(r, 503, "Busy", "%d exports or reports are running; retry in a few seconds", jobs_running);
        job_free(j);
        return;
    }
    j->e = e;
    j->r = r;
    j->db = strdup(acdm_store_db_path(acdm_engine_store(e)));
    j->work.data = j;
    if (!j->db || uv_queue_work(acdm_engine_loop(e), &j->work, job_run, job_done)) {
        acdm_http_problem(r, 500, "Export failed", "could not start the export");
        job_free(j);
        return;
    }
    jobs_running++;
}

/* Validates the range and queues an export or audit job; replies itself on bad input. */
static void job_start(acdm_engine *e, acdm_req *r, const acdm_principal *who, bool audit, acdm_export_format f)
{
    data_job *j = calloc(1, sizeof *j);
    char err[256];
    if (!j) { acdm_http_problem(r, 500, "Out of memory", "try again"); return; }
    if (acdm_time_range(acdm_req_query(r, "since"), acdm_req_query(r, "until"), acdm_now_ms(),
                        audit ? AUDIT_DEFAULT_SPAN_MS : 0, &j->since, &j->until, err, sizeof err)) {
        acdm_http_problem(r, 400, "Invalid parameter", "%s", err);
        free(j);
        return;
    }
    j->who = *who;
    j->f = f;
    j->audit = audit;
    job_queue(e, r, j);
}

static void get_events(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!allowed(e, r, "admin supervisor", &who)) return;
    const char *fs = acdm_req_query(r, "format");
    int f = acdm_export_format_parse(fs);
    if (f < 0) { acdm_http_problem(r, 400, "Invalid parameter", "format: expected json or csv, got \"%.40s\"", fs); return; }
    job_start(e, r, &who, false, (acdm_export_format)f);
}

/* GET /api/v1/reports: figures per queue, channel, agent or topic (report.h), computed on a
 * worker thread like the export. */
static void get_reports(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!allowed(e, r, "admin supervisor", &who)) return;
    const char *fs = acdm_req_query(r, "format");
    int f = acdm_report_format_parse(fs);
    if (f < 0) { acdm_http_problem(r, 400, "Invalid parameter", "format: expected json, csv, xlsx or pdf, got \"%.40s\"", fs); return; }
    acdm_report_range rg;
    char err[256];
    if (acdm_report_params(acdm_req_query(r, "kind"), acdm_req_query(r, "from"), acdm_req_query(r, "until"),
                           acdm_req_query(r, "period"), acdm_req_query(r, "interval"), acdm_now_ms(), &rg,
                           err, sizeof err)) {
        acdm_http_problem(r, 400, "Invalid parameter", "%s", err);
        return;
    }
    /* CSV and PDF as the page shows them (lang, Excel's ';' and BOM by default for Dutch), or
     * the column names and raw values for tools (style=raw) */
    const char *lang = acdm_req_query(r, "lang"), *excel = acdm_req_query(r, "excel"), *style = acdm_req_query(r, "style");
    if (lang && strcmp(lang, "nl") && strcmp(lang, "en")) {
        acdm_http_problem(r, 400, "Invalid parameter", "lang: expected nl or en, got \"%.40s\"", lang);
        return;
    }
    if (excel && strcmp(excel, "true") && strcmp(excel, "false")) {
        acdm_http_problem(r, 400, "Invalid parameter", "excel: expected true or false, got \"%.40s\"", excel);
        return;
    }
    if (style && strcmp(style, "page") && strcmp(style, "raw")) {
        acdm_http_problem(r, 400, "Invalid parameter", "style: expected page or raw, got \"%.40s\"", style);
        return;
    }
    if (!lang) lang = "nl";
    data_job *j = calloc(1, sizeof *j);
    if (j) j->report = acdm_report_new(&rg, acdm_model_config(acdm_engine_model(e)));   /* the config read here, on the loop */
    if (!j || !j->report) { free(j); acdm_http_problem(r, 500, "Out of memory", "try again"); return; }
    if (!style || strcmp(style, "raw"))
        acdm_report_set_display(j->report, lang, excel ? !strcmp(excel, "true") : !strcmp(lang, "nl"));
    j->who = who;
    j->is_report = true;
    j->rf = (acdm_report_format)f;
    j->report_kind = rg.kind;
    j->interval_s = rg.interval_s;
    j->since = rg.from_ms;
    j->until = rg.until_ms;
    job_queue(e, r, j);
}

static void get_audit(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!allowed(e, r, "admin", &who)) return;
    job_start(e, r, &who, true, ACDM_EXPORT_JSON);
}

int acdm_api_data_register(acdm_engine *e)
{
    acdm_http *h = acdm_engine_http(e);
    acdm_http_route(h, "GET", "/api/v1/customers/*", get_customer_history, e);   /* {address}/history */
    acdm_http_route(h, "GET", "/api/v1/events", get_events, e);
    acdm_http_route(h, "GET", "/api/v1/reports", get_reports, e);
    acdm_http_route(h, "GET", "/api/v1/audit", get_audit, e);
    return 0;
}
