/* api_data.c -- REST routes over stored data: the customer view (Klantbeeld), the event-log
 * export (R29/R65) and the audit log (R32). */
#include "api_super.h"
#include "engine.h"
#include "export.h"
#include "log.h"

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
    acdm_agent *a = acdm_model_agent(e->model, agent_id);
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
    const char *address = acdm_req_param(r, "address");
    if (!address || !*address || strlen(address) > 512) {
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
    if (acdm_store_customer_history(e->store, address, cursor, limit, &hist) ||
        acdm_store_customer_topics(e->store, address, since, 10, &top)) {
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
        acdm_bericht *b = acdm_model_bericht(e->model, json_string_value(json_object_get(it, "id")));
        if (!b) continue;
        json_object_set_new(it, "state", json_string(acdm_bstate_name(b->state)));
        json_object_set_new(it, "queue", json_string(b->queue->name));
        json_object_set_new(it, "handler", b->agent ? json_string(b->agent->id) : json_null());
    }
    json_object_set_new(j, "address", json_string(address));
    json_object_set_new(j, "top_topics", t);
    json_object_set_new(j, "top_topics_since_ms", json_integer(since));
    acdm_http_reply_json(r, 200, j);
}

/* ------------------------------------------------------------------ export */

typedef struct { acdm_buf *b; acdm_export_format f; int n; } export_ctx;

static int export_row(void *user, int64_t id, const acdm_event_row *ev)
{
    export_ctx *x = user;
    acdm_export_event(x->b, x->f, id, ev, x->n++ == 0);
    return x->b->oom;
}

static void get_events(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!allowed(e, r, "admin supervisor", &who)) return;
    const char *fs = acdm_req_query(r, "format");
    int f = acdm_export_format_parse(fs);
    if (f < 0) { acdm_http_problem(r, 400, "Invalid parameter", "format: expected json or csv, got \"%.40s\"", fs); return; }
    int64_t since, until;
    char err[256];
    if (acdm_time_range(acdm_req_query(r, "since"), acdm_req_query(r, "until"), acdm_now_ms(), 0,
                        &since, &until, err, sizeof err)) {
        acdm_http_problem(r, 400, "Invalid parameter", "%s", err);
        return;
    }
    acdm_buf b = {0};
    export_ctx x = {&b, (acdm_export_format)f, 0};
    acdm_export_begin(&b, x.f);
    int n = acdm_store_events_each(e->store, since, until, NULL, export_row, &x);
    acdm_export_end(&b, x.f);
    if (n < 0 || b.oom) {
        acdm_buf_free(&b);
        acdm_http_problem(r, 500, "Export failed", "%s", n < 0 ? "the event log could not be read (see the log)" : "out of memory");
        return;
    }
    char name[160], a[48], z[48];
    acdm_time_iso(since, a);
    acdm_time_iso(until, z);
    snprintf(name, sizeof name, "attachment; filename=\"acdm-events-%.10s-%.10s.%s\"", a, z, f == ACDM_EXPORT_CSV ? "csv" : "json");
    acdm_http_add_header(r, "Content-Disposition", name);
    acdm_log(ACDM_LOG_INFO, WHO, "export of %d events (%s .. %s) by %s", x.n, a, z, who.name);
    char target[112];
    snprintf(target, sizeof target, "%s..%s", a, z);
    acdm_engine_audit(e, &who, "export", target, NULL);
    acdm_http_reply(r, 200, acdm_export_content_type(x.f), b.buf ? b.buf : "", b.len);
    acdm_buf_free(&b);
}

/* ------------------------------------------------------------------ audit */

static int audit_row(void *user, int64_t id, const acdm_event_row *ev)
{
    json_t *items = user;
    json_t *d = ev->detail_json ? json_loads(ev->detail_json, 0, NULL) : NULL;
    if (!json_is_object(d)) { json_decref(d); d = json_object(); }
    char ts[48];
    acdm_time_iso(ev->ts_ms, ts);
    json_object_set_new(d, "id", json_integer(id));
    json_object_set_new(d, "ts", json_string(ts));
    json_object_set_new(d, "ts_ms", json_integer(ev->ts_ms));
    json_array_append_new(items, d);
    return json_array_size(items) >= AUDIT_MAX_ITEMS;
}

static void get_audit(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!allowed(e, r, "admin", &who)) return;
    int64_t since, until;
    char err[256];
    if (acdm_time_range(acdm_req_query(r, "since"), acdm_req_query(r, "until"), acdm_now_ms(),
                        AUDIT_DEFAULT_SPAN_MS, &since, &until, err, sizeof err)) {
        acdm_http_problem(r, 400, "Invalid parameter", "%s", err);
        return;
    }
    json_t *items = json_array();
    int n = acdm_store_events_each(e->store, since, until, "audit", audit_row, items);
    if (n < 0) {
        json_decref(items);
        acdm_http_problem(r, 500, "Store error", "the audit log could not be read (see the log)");
        return;
    }
    acdm_http_reply_json(r, 200, json_pack("{s:I, s:I, s:o, s:b}", "since_ms", (json_int_t)since,
                                           "until_ms", (json_int_t)until, "items", items,
                                           "truncated", json_array_size(items) >= AUDIT_MAX_ITEMS));
}

int acdm_api_data_register(acdm_engine *e)
{
    acdm_http *h = e->http;
    acdm_http_route(h, "GET", "/api/v1/customers/{address}/history", get_customer_history, e);
    acdm_http_route(h, "GET", "/api/v1/events", get_events, e);
    acdm_http_route(h, "GET", "/api/v1/audit", get_audit, e);
    return 0;
}
