/* api.c -- the REST API under /api/v1 and the agents' websocket at /ws. */
#include "api/api.h"
#include "api/maint.h"
#include "api/api_super.h"
#include "api/api_agents.h"
#include "api/api_desk.h"
#include "api/live.h"
#include "api/outbox.h"
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO "api"

/* The API's own state, kept by the engine for acdm_api_module. */
typedef struct {
    acdm_hmap sessions;      /* agent id -> acdm_session* list */
    acdm_hmap graces;        /* agent id -> pending logout timer after the last socket closed */
    /* sessions opened with an expiring token (a JWT), and one timer for the next expiry */
    acdm_session **expiring; size_t n_expiring, cap_expiring;
    uv_timer_t expiry_timer;
    bool expiry_timer_on;    /* initialised (closed by acdm_api_shutdown) */
    acdm_outbox *ob;         /* answers released after their commit */
} api_state;

static api_state *A(acdm_engine *e) { return acdm_engine_state(e, &acdm_api_module); }

acdm_hmap *acdm_api_sessions(acdm_engine *e) { return &A(e)->sessions; }

void acdm_api_reply_committed(acdm_engine *e, acdm_req *r, int status, json_t *obj)
{
    acdm_outbox_reply(A(e) ? A(e)->ob : NULL, r, status, obj);
}

void acdm_api_send_committed(acdm_engine *e, acdm_session *s, json_t *msg, const char *re,
                             const char *bericht)
{
    char *t = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    acdm_outbox_ws(A(e) ? A(e)->ob : NULL, s, t, re, bericht);
}

static acdm_engine *the_engine;   /* the one engine of this process, for ws_send_json */

static int64_t started_ms;

/* ------------------------------------------------------------------ auth helpers */

static bool role_is(const acdm_principal *p, const char *role) { return !strcmp(p->role, role); }

static const char *req_peer(void *r) { return acdm_req_peer(r); }
static const char *ws_peer(void *ws) { return acdm_ws_peer(ws); }

/* Checks the bearer token and that its role is one of roles ("admin supervisor"...);
 * on failure replies 401/403 (429 after too many failed sign-ins from the peer) and returns false. */
static bool authorize(acdm_engine *e, acdm_req *r, const char *roles, acdm_principal *who)
{
    const char *tok = acdm_req_bearer(r);
    int retry = 0, arc = tok ? acdm_engine_auth_peer(e, tok, req_peer, r, who, &retry) : ACDM_ENOENT;
    if (arc == ACDM_EFULL) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry);
        acdm_http_add_header(r, "Retry-After", ra);
        acdm_http_problem(r, 429, "Too Many Requests", "too many failed sign-ins from %s; retry after %d s",
                          acdm_req_peer(r), retry);
        return false;
    }
    if (arc) {
        acdm_http_add_header(r, "WWW-Authenticate", "Bearer");
        acdm_http_problem(r, 401, "Unauthorized", "a valid bearer token is required (Authorization: Bearer <token>)");
        return false;
    }
    char buf[128];
    snprintf(buf, sizeof buf, "%s", roles);
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (!strcmp(t, who->role)) return true;
        if (!strcmp(t, "channel") && !strncmp(who->role, "channel:", 8)) return true;
    }
    acdm_http_problem(r, 403, "Forbidden", "role %s may not do this (needs one of: %s)", who->role, roles);
    return false;
}

bool acdm_api_authorize(acdm_engine *e, acdm_req *r, const char *roles, acdm_principal *who)
{
    return authorize(e, r, roles, who);
}

/* ------------------------------------------------------------------ REST */

/* What else makes acdmd degraded (a start with --salvage: what was not restored). */
static void health_extra(acdm_engine *e, json_t *health, json_t *reasons)
{
    const char *salvage = acdm_engine_salvage_report(e);
    if (salvage) {
        json_array_append_new(reasons, json_string(salvage));
        json_object_set_new(health, "salvaged", json_true());
    }
}

static void get_health(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_store_figures f;
    acdm_store_figures_get(acdm_engine_store(e), &f);
    json_t *store = json_pack("{s:I, s:I, s:I, s:f, s:f}", "commits", (json_int_t)f.commits,
                              "writes", (json_int_t)f.writes, "queued", (json_int_t)f.queued,
                              "avg_commit_ms", f.commits ? (double)f.commit_us_sum / (double)f.commits / 1000.0 : 0.0,
                              "max_commit_ms", (double)f.commit_us_max / 1000.0);
    json_object_set_new(store, "failed_commits", json_integer((json_int_t)f.failed_groups));
    json_object_set_new(store, "lost_writes", json_integer((json_int_t)f.lost_writes));
    json_object_set_new(store, "last_error", f.last_error[0] ? json_string(f.last_error) : json_null());
    /* a channel instance that is not running, or whose plugin's status says "healthy": false,
     * makes the daemon degraded (still 200: it serves; monitoring reads "status") */
    json_t *degraded = NULL;
    json_t *channels = acdm_engine_plugins(e) ? acdm_plugins_health_json(acdm_engine_plugins(e), &degraded)
                                              : json_array();
    bool ok = !json_array_size(degraded);
    json_t *h = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o}", "status", ok ? "ok" : "degraded",
                          "version", ACDM_VERSION,
                          "uptime_s", (json_int_t)((acdm_now_ms() - started_ms) / 1000),
                          "berichten_live", (json_int_t)acdm_model_n_berichten(acdm_engine_model(e)),
                          "store", store, "channels", channels);
    /* backups and retention (maint.c): a failed last backup makes acdmd degraded, not at risk */
    const char *backup_failing = NULL;
    json_t *maint = acdm_maint_health_json(e, &backup_failing);
    json_object_update(h, maint);
    json_decref(maint);
    if (backup_failing) {
        if (!degraded) degraded = json_array();
        json_array_append_new(degraded, json_string(backup_failing));
        json_object_set_new(h, "status", json_string("degraded"));
        ok = false;
    }
    if (!ok) json_object_set(h, "degraded", degraded);
    json_decref(degraded);
    /* the store's commits fail, or a --salvage start: data is at risk, 503 */
    json_t *reasons = json_array();
    if (f.failing) {
        char why[320];
        snprintf(why, sizeof why, "store: commits fail (%s): changes are not saved", f.last_error);
        json_array_append_new(reasons, json_string(why));
        json_object_set_new(h, "degraded_since_ms", json_integer(f.failing_since_ms));
    }
    health_extra(e, h, reasons);
    bool at_risk = json_array_size(reasons) > 0;
    if (at_risk) json_object_set_new(h, "status", json_string("degraded"));
    json_object_set_new(h, "reasons", reasons);
    /* 503 while data is at risk: monitoring that only looks at the status code notices too */
    acdm_http_reply_json(r, at_risk ? 503 : 200, h);
}

typedef struct { acdm_req *r; } post_ctx;

static void post_done(acdm_engine *e, void *user, acdm_submit_outcome outcome, const char *id,
                      const char *text, int status)
{
    acdm_req *r = user;
    if (outcome == ACDM_SUBMIT_ERROR) {
        acdm_http_problem(r, status, "Not stored", "%s", text ? text : "the bericht could not be stored");
        return;
    }
    /* answered from the live model: no database read, no queue walk, no jansson on the hot path */
    acdm_bericht *b = id ? acdm_model_bericht(acdm_engine_model(e), id) : NULL;
    static const char *const outcomes[] = {"queued", "duplicate", "followup", "closed", "error"};
    bool closed = outcome == ACDM_SUBMIT_CLOSED;
    char buf[1024];
    acdm_jobj o;
    acdm_jobj_init(&o, buf, sizeof buf);
    acdm_jobj_str(&o, "id", b ? b->id : id);
    if (b || closed) acdm_jobj_str(&o, "state", closed ? "closed" : acdm_bstate_name(b->state));
    if (b) {
        acdm_jobj_str(&o, "queue", b->queue->name);
        acdm_jobj_str(&o, "kind", acdm_kind_name(b->kind));
        acdm_jobj_str(&o, "channel", b->channel);
        acdm_jobj_int(&o, "created_ms", b->created_ms);
        acdm_jobj_int(&o, "queued_ms", b->queued_ms);
    }
    acdm_jobj_str(&o, "outcome", outcomes[outcome]);
    if (closed) acdm_jobj_str(&o, "closed_text", text);
    if (id && status == 201) {
        char loc[128];
        snprintf(loc, sizeof loc, "/api/v1/berichten/%s", id);
        acdm_http_add_header(r, "Location", loc);
    }
    const char *body = acdm_jobj_end(&o);
    if (body) acdm_http_reply(r, status, "application/json", body, o.sb.n);
    else acdm_http_problem(r, 500, "Internal Server Error", "out of memory");
    acdm_jobj_free(&o);
}

/* Reads an optional string field; false (and a 400 reply) if present but not a string. */
static bool opt_str(acdm_req *r, json_t *body, const char *field, const char **out, size_t maxlen)
{
    json_t *v = json_object_get(body, field);
    *out = NULL;
    if (!v || json_is_null(v)) return true;
    if (!json_is_string(v)) {
        acdm_http_problem(r, 400, "Invalid field", "%s: expected a string", field);
        return false;
    }
    if (acdm_utf8_chars(json_string_value(v)) > maxlen) {   /* characters, as documented */
        acdm_http_problem(r, 400, "Invalid field", "%s: longer than %zu characters", field, maxlen);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static void post_bericht(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!authorize(e, r, "admin channel", &who)) return;
    static const char *const known[] = {"queue", "kind", "from", "customer_id", "conversation",
                                        "subject", "text", "priority", "skills", "payload", NULL};
    json_t *j = acdm_api_body_object(r, false, known);
    if (!j) return;
    const char *queue, *kind, *from, *cust, *conv, *subject, *text;
    if (!opt_str(r, j, "queue", &queue, ACDM_NAME_MAX) || !opt_str(r, j, "kind", &kind, 32) ||
        !opt_str(r, j, "from", &from, 512) || !opt_str(r, j, "customer_id", &cust, 128) ||
        !opt_str(r, j, "conversation", &conv, 256) || !opt_str(r, j, "subject", &subject, 1000) ||
        !opt_str(r, j, "text", &text, 65536)) { json_decref(j); return; }
    if (!kind) { acdm_http_problem(r, 400, "Invalid field", "kind: required (voice, chat, email, sms, whatsapp, callback)"); json_decref(j); return; }
    int k = acdm_kind_parse(kind);
    if (k < 0) { acdm_http_problem(r, 400, "Invalid field", "kind: unknown kind \"%s\" (expected voice, chat, email, sms, whatsapp or callback)", kind); json_decref(j); return; }
    if (!from) { acdm_http_problem(r, 400, "Invalid field", "from: required (the customer's address)"); json_decref(j); return; }
    json_t *pr = json_object_get(j, "priority");
    if (pr && (!json_is_integer(pr) || json_integer_value(pr) < 0 || json_integer_value(pr) > 9)) {
        acdm_http_problem(r, 400, "Invalid field", "priority: expected an integer 0..9");
        json_decref(j);
        return;
    }
    json_t *payload = json_object_get(j, "payload");
    if (payload && !json_is_object(payload)) { acdm_http_problem(r, 400, "Invalid field", "payload: expected an object"); json_decref(j); return; }
    const char *idem = acdm_req_header(r, "idempotency-key");
    const char *channel = strncmp(who.role, "channel:", 8) ? "api" : who.role + 8;
    acdm_intake in = {.channel = channel, .kind = (acdm_kind)k, .queue = queue, .from = from,
                      .customer_id = cust, .conversation = conv, .idem_key = idem,
                      .priority = pr ? (int)json_integer_value(pr) : 0,
                      .skills = json_object_get(j, "skills"), .subject = subject, .text = text,
                      .payload = payload};
    char err[512];
    int rc = acdm_engine_intake(e, &in, post_done, r, err, sizeof err);
    if (rc) acdm_http_problem(r, rc == ACDM_ENOENT ? 404 : 400, rc == ACDM_ENOENT ? "Unknown queue" : "Invalid field", "%s", err);
    json_decref(j);
}

/* What the desk shows of a live bericht and must find again after a reload (docs/websocket.md):
 * since when its agent has it (accepted_ms), when wrap-up began (wrapup_ms) and whether the
 * customer left (customer_ended). Nothing for a bericht no longer live. */
static void live_desk_fields(acdm_engine *e, json_t *j, const char *id)
{
    const acdm_bericht *b = acdm_model_bericht(acdm_engine_model(e), id);
    if (!b || !j) return;
    json_object_set_new(j, "accepted_ms", b->agent && b->accepted_ms > 0 ? json_integer(b->accepted_ms) : json_null());
    json_object_set_new(j, "wrapup_ms", b->agent && b->wrapup_ms > 0 ? json_integer(b->wrapup_ms) : json_null());
    json_object_set_new(j, "customer_ended", json_boolean(b->customer_gone));
    /* when the running wrap-up ends (after extensions): the desk's countdown after a reload */
    json_object_set_new(j, "wrapup_until_ms", b->agent && b->state == ACDM_B_WRAPUP && b->t_wrap.idx >= 0
                        ? json_integer(b->t_wrap.due) : json_null());
}

/* The hello's agent with live_desk_fields on each work item. */
static json_t *hello_agent_json(acdm_engine *e, acdm_agent *a)
{
    json_t *aj = acdm_engine_agent_json(e, a);
    json_t *work = json_object_get(aj, "work");
    for (size_t i = 0; i < json_array_size(work); i++) {
        json_t *item = json_array_get(work, i);
        live_desk_fields(e, item, json_string_value(json_object_get(item, "bericht")));
    }
    return aj;
}

static void get_bericht(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!authorize(e, r, "admin supervisor agent channel", &who)) return;
    const char *id = acdm_req_param(r, "id");
    json_t *j = acdm_engine_bericht_json(e, id);
    if (!j) { acdm_http_problem(r, 404, "Not found", "bericht %s: no such bericht", id); return; }
    live_desk_fields(e, j, id);
    bool mine = true;
    if (role_is(&who, "agent")) {
        /* an agent sees berichten offered to them, that they have, or that they handled last */
        const char *ag = json_string_value(json_object_get(j, "agent"));
        acdm_bericht *b = acdm_model_bericht(acdm_engine_model(e), id);
        acdm_agent *a = acdm_model_agent(acdm_engine_model(e), who.name);
        mine = (ag && !strcmp(ag, who.name)) || (b && a && acdm_agent_work(a, b)) ||
               acdm_api_agent_had_last(j, who.name) ||
               acdm_api_desk_may_read(j, who.name);   /* handed it on with a note, or was consulted */
    } else if (!strncmp(who.role, "channel:", 8)) {
        /* a channel's token sees its own channel's berichten only */
        const char *ch = json_string_value(json_object_get(j, "channel"));
        mine = ch && !strcmp(ch, who.role + 8);
    }
    if (!mine) {
        json_decref(j);
        acdm_http_problem(r, 403, "Forbidden", "bericht %s is not yours", id);
        return;
    }
    if (!strncmp(who.role, "channel:", 8)) acdm_supervise_hide_whispers(j);   /* for the agent only */
    acdm_http_reply_json(r, 200, j);
}

/* A file a customer sent (web chat, mail, WhatsApp...): the agent who has (or last had) its
 * bericht, supervisors and admins. Served as an attachment download, never rendered inline by
 * the browser; a file-backed one is streamed from its file. An inline part's content-id is in
 * the Content-ID header. */
/* The attachment r names, when who may read it: 0 with *at filled (with_data: the data of one
 * in the database), or the problem was answered and negative. */
static int attachment_for(acdm_engine *e, acdm_req *r, const acdm_principal *who, bool with_data,
                          acdm_attachment *at)
{
    const char *id = acdm_req_param(r, "id");
    int rc = with_data ? acdm_store_attachment_get(acdm_engine_store(e), id, at)
                       : acdm_store_attachment_meta(acdm_engine_store(e), id, at);
    if (rc) {
        acdm_http_problem(r, rc == ACDM_ENOENT ? 404 : 500, "Not found", "attachment %s: no such attachment", id);
        return rc;
    }
    if (role_is(who, "agent")) {
        json_t *j = acdm_engine_bericht_json(e, at->bericht);
        const char *ag = json_string_value(json_object_get(j, "agent"));
        acdm_bericht *b = acdm_model_bericht(acdm_engine_model(e), at->bericht);
        acdm_agent *a = acdm_model_agent(acdm_engine_model(e), who->name);
        bool mine = (ag && !strcmp(ag, who->name)) || (b && a && acdm_agent_work(a, b)) ||
                    acdm_api_agent_had_last(j, who->name);
        json_decref(j);
        if (!mine) {
            free(at->data);
            at->data = NULL;
            acdm_http_problem(r, 403, "Forbidden", "attachment %s belongs to a bericht that is not yours", id);
            return ACDM_EPERM;
        }
    }
    return 0;
}

static void get_attachment(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!authorize(e, r, "admin supervisor agent", &who)) return;
    acdm_attachment at;
    if (attachment_for(e, r, &who, true, &at)) return;
    char cd[400];
    char safe[256];
    size_t n = 0;
    for (const char *p = at.filename; *p && n < sizeof safe - 1; p++)
        safe[n++] = (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) ? '_' : *p;
    safe[n] = 0;
    snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", safe);
    acdm_http_add_header(r, "Content-Disposition", cd);
    acdm_http_add_header(r, "X-Content-Type-Options", "nosniff");
    if (at.content_id[0]) {
        char cid[300];
        snprintf(cid, sizeof cid, "<%s>", at.content_id);
        acdm_http_add_header(r, "Content-ID", cid);
    }
    if (at.path[0]) acdm_http_reply_file(r, at.path, at.content_type);   /* streamed */
    else acdm_http_reply(r, 200, at.content_type, at.data, at.len);
    free(at.data);
}

/* What an attachment is, without its data: the desk maps an inline part's content-id (a mail's
 * <img src="cid:...">) to the attachment. Same roles as the download. */
static void get_attachment_meta(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!authorize(e, r, "admin supervisor agent", &who)) return;
    acdm_attachment at;
    if (attachment_for(e, r, &who, false, &at)) return;
    acdm_http_reply_json(r, 200, json_pack("{s:s, s:s, s:s, s:s, s:s?, s:I, s:s}",
        "id", acdm_req_param(r, "id"), "bericht", at.bericht, "filename", at.filename,
        "content_type", at.content_type, "content_id", at.content_id[0] ? at.content_id : NULL,
        "size", (json_int_t)at.len, "storage", at.path[0] ? "file" : "database"));
}

static void get_queues(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!authorize(e, r, "admin supervisor agent", &who)) return;
    acdm_http_reply_json(r, 200, json_pack("{s:o}", "queues", acdm_live_queues_json(e)));
}

static void set_queue(acdm_engine *e, acdm_req *r, bool closed)
{
    acdm_principal who;
    if (!authorize(e, r, "admin supervisor", &who)) return;
    const char *name = acdm_req_param(r, "name");
    char err[4096];
    int rc = acdm_engine_queue_set_closed_by(e, name, closed, who.name, err, sizeof err);
    if (rc) { acdm_http_problem(r, rc == ACDM_ENOENT ? 404 : 409, "Not applied", "%s", err); return; }
    acdm_log(ACDM_LOG_NOTICE, WHO, "queue %s %s by %s", name, closed ? "closed" : "opened", who.name);
    acdm_engine_audit(e, &who, closed ? "queue_close" : "queue_open", name, NULL);
    acdm_queue *q = acdm_model_queue(acdm_engine_model(e), name);
    acdm_api_reply_committed(e, r, 200, json_pack("{s:s, s:b}", "name", name, "open", q && acdm_queue_is_open(q)));
}

static void post_queue_open(void *user, acdm_req *r) { set_queue(user, r, false); }
static void post_queue_close(void *user, acdm_req *r) { set_queue(user, r, true); }

static void post_reload(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!authorize(e, r, "admin", &who)) return;
    char err[16384];
    int rc = acdm_engine_reload(e, err, sizeof err);
    if (rc) { acdm_http_problem(r, 422, "Config rejected", "%s", err); return; }
    acdm_engine_audit(e, &who, "reload", NULL, NULL);
    if (acdm_engine_tls_reload(e, err, sizeof err)) {
        acdm_http_problem(r, 422, "Certificate rejected",
                          "the config is reloaded, but %s; the listener keeps serving its current certificate", err);
        return;
    }
    json_t *warn = acdm_engine_plugins(e)
        ? acdm_plugins_warnings(acdm_engine_plugins(e), acdm_model_config(acdm_engine_model(e)))
        : json_array();
    acdm_api_reply_committed(e, r, 200, json_pack("{s:s, s:o}", "status", "reloaded", "warnings", warn));
}

static void get_plugins(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!authorize(e, r, "admin supervisor", &who)) return;
    acdm_http_reply_json(r, 200, json_pack("{s:o, s:o}", "plugins", acdm_plugins_json(acdm_engine_plugins(e)),
                                           "refused", acdm_plugins_refused_json(acdm_engine_plugins(e))));
}

/* POST /api/v1/plugins/{name}/disable|enable|reload: the operator replaces or stops a plugin
 * deliberately (its instances stop as a stop does: deferred responses answered, submits in
 * flight still committed). A refusal says why; the running build is kept. */
static void plugin_action(acdm_engine *e, acdm_req *r, const char *action)
{
    acdm_principal who;
    if (!authorize(e, r, "admin", &who)) return;
    acdm_plugins *ps = acdm_engine_plugins(e);
    const char *name = acdm_req_param(r, "name");
    char err[2048] = "";
    int rc;
    if (!ps) { acdm_http_problem(r, 409, "Not applied", "this acdmd runs no plugin host"); return; }
    if (!strcmp(action, "reload")) {
        rc = acdm_plugins_reload(ps, name, err, sizeof err);
    } else {
        rc = acdm_plugins_enable(ps, name, !strcmp(action, "enable"));
        if (rc == ACDM_ENOENT) snprintf(err, sizeof err, "no plugin named \"%s\" is loaded", name);
    }
    if (rc) {
        acdm_http_problem(r, rc == ACDM_ENOENT ? 404 : 409, "Not applied", "%s", err);
        return;
    }
    char act[32];
    snprintf(act, sizeof act, "plugin_%s", action);
    acdm_log(ACDM_LOG_NOTICE, WHO, "plugin %s: %s by %s", name, action, who.name);
    acdm_engine_audit(e, &who, act, name, NULL);
    json_t *list = acdm_plugins_json(ps), *mine = NULL;
    for (size_t k = 0; k < json_array_size(list); k++) {
        json_t *v = json_array_get(list, k);
        if (!json_is_null(json_object_get(v, "file")) &&
            !strcmp(json_string_value(json_object_get(v, "name")), name))
            mine = json_incref(v);
    }
    json_decref(list);
    acdm_http_reply_json(r, 200, mine ? mine : json_object());
}

static void post_plugin_disable(void *user, acdm_req *r) { plugin_action(user, r, "disable"); }
static void post_plugin_enable(void *user, acdm_req *r) { plugin_action(user, r, "enable"); }
static void post_plugin_reload(void *user, acdm_req *r) { plugin_action(user, r, "reload"); }

static void get_agents(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!authorize(e, r, "admin supervisor", &who)) return;
    json_t *arr = json_array();
    for (size_t i = 0; i < acdm_model_n_agents(acdm_engine_model(e)); i++)
        json_array_append_new(arr, acdm_engine_agent_json(e, acdm_model_agent_at(acdm_engine_model(e), i)));
    acdm_http_reply_json(r, 200, json_pack("{s:o}", "agents", arr));
}

/* ------------------------------------------------------------------ websocket /ws */

static void session_add(acdm_engine *e, acdm_session *s)
{
    acdm_session *head = acdm_hmap_get(&A(e)->sessions, s->who.name);
    s->next_of_agent = head;
    acdm_hmap_put(&A(e)->sessions, s->who.name, s);
}

static void session_del(acdm_engine *e, acdm_session *s)
{
    acdm_session *head = acdm_hmap_get(&A(e)->sessions, s->who.name);
    if (head == s) {
        acdm_hmap_del(&A(e)->sessions, s->who.name);
        if (s->next_of_agent) acdm_hmap_put(&A(e)->sessions, s->next_of_agent->who.name, s->next_of_agent);
        return;
    }
    for (acdm_session *p = head; p; p = p->next_of_agent)
        if (p->next_of_agent == s) { p->next_of_agent = s->next_of_agent; return; }
}

/* Every message on /ws goes out after the commit of what was written before it (outbox.h),
 * so that an ack, a state or an assigned an agent sees is never undone by a crash. */
static void ws_send_ack(acdm_ws *ws, json_t *msg, const char *re, const char *bericht)
{
    acdm_session *s = acdm_ws_user(ws);
    if (!s || !the_engine) {
        char *t = json_dumps(msg, JSON_COMPACT);
        if (t) acdm_ws_send(ws, t, strlen(t));
        free(t);
        json_decref(msg);
        return;
    }
    acdm_api_send_committed(the_engine, s, msg, re, bericht);
}

static void ws_send_json(acdm_ws *ws, json_t *msg) { ws_send_ack(ws, msg, NULL, NULL); }

/* Sent now, not after a commit (the session is being closed: the outbox would drop it). */
static void ws_send_now(acdm_ws *ws, json_t *msg)
{
    char *t = json_dumps(msg, JSON_COMPACT);
    if (t) acdm_ws_send(ws, t, strlen(t));
    free(t);
    json_decref(msg);
}

void acdm_api_push_agent(acdm_engine *e, const char *agent_id, json_t *msg)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    for (acdm_session *p = acdm_hmap_get(&A(e)->sessions, agent_id); p && s; p = p->next_of_agent)
        acdm_outbox_ws(A(e)->ob, p, strdup(s), NULL, NULL);
    free(s);
    json_decref(msg);
}

/* An error reply; re: the type of the message answered, bericht: the id it named (NULL: unknown). */
static void ws_error(acdm_ws *ws, const char *re, const char *bericht, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void ws_error(acdm_ws *ws, const char *re, const char *bericht, const char *code, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_t *m = json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "type", "error", "code", code, "text", text,
                          "re", re, "bericht", bericht);
    ws_send_json(ws, m);
}

/* ------------------------------------------------------------------ reconnect grace */

typedef struct {
    uv_timer_t timer;
    acdm_engine *e;
    char id[ACDM_NAME_MAX + 1];
} grace;

static void grace_closed(uv_handle_t *h) { free(h->data); }

static void grace_cancel(acdm_engine *e, const char *agent_id)
{
    grace *g = acdm_hmap_del(&A(e)->graces, agent_id);
    if (!g) return;
    uv_timer_stop(&g->timer);
    uv_close((uv_handle_t *)&g->timer, grace_closed);
}

static void grace_expired(uv_timer_t *t)
{
    grace *g = t->data;
    acdm_engine *e = g->e;
    acdm_agent *a = acdm_model_agent(acdm_engine_model(e), g->id);
    if (a && !acdm_hmap_get(&A(e)->sessions, g->id) && a->state != ACDM_AGENT_LOGGED_OUT) {
        acdm_log(ACDM_LOG_NOTICE, WHO, "agent %s: no connection for %d s, logged out", g->id,
                 acdm_model_config(acdm_engine_model(e))->agent_grace_s);
        acdm_agent_logout(acdm_engine_model(e), a, "disconnected", acdm_now_ms());
    }
    grace_cancel(e, g->id);
}

/* The agent's last socket closed: keep state and work for agent_grace_s, then log out. */
static void grace_start(acdm_engine *e, const char *agent_id)
{
    acdm_agent *a = acdm_model_agent(acdm_engine_model(e), agent_id);
    if (!a || a->state == ACDM_AGENT_LOGGED_OUT || acdm_hmap_get(&A(e)->graces, agent_id)) return;
    grace *g = calloc(1, sizeof *g);
    if (!g) return;
    g->e = e;
    snprintf(g->id, sizeof g->id, "%s", agent_id);
    uv_timer_init(acdm_engine_loop(e), &g->timer);
    g->timer.data = g;
    acdm_hmap_put(&A(e)->graces, g->id, g);
    uv_timer_start(&g->timer, grace_expired, (uint64_t)acdm_model_config(acdm_engine_model(e))->agent_grace_s * 1000, 0);
}

void acdm_api_shutdown(acdm_engine *e)
{
    if (!A(e)) return;   /* never started */
    acdm_outbox_shutdown(A(e)->ob);   /* the last answers go out with the store's last commit */
    if (A(e)->expiry_timer_on) {
        uv_timer_stop(&A(e)->expiry_timer);
        uv_close((uv_handle_t *)&A(e)->expiry_timer, NULL);
        A(e)->expiry_timer_on = false;
    }
    const char *k;
    void *v;
    char ids[64][ACDM_NAME_MAX + 1];
    for (;;) {
        size_t n = 0;
        for (uint32_t pos = 0; n < 64 && acdm_hmap_next(&A(e)->graces, &pos, &k, &v);)
            snprintf(ids[n++], sizeof ids[0], "%s", k);
        if (!n) break;
        for (size_t i = 0; i < n; i++) grace_cancel(e, ids[i]);
    }
}

static void expiry_track(acdm_engine *e, acdm_session *s);

static int ws_open(void *user, acdm_ws *ws, acdm_req *req)
{
    acdm_engine *e = user;
    const char *tok = acdm_req_query(req, "token");
    if (!tok) tok = acdm_req_bearer(req);
    acdm_principal who;
    int retry = 0;   /* a refused upgrade answers 403, also when the peer is rate-limited */
    if (!tok || acdm_engine_auth_peer(e, tok, req_peer, req, &who, &retry)) return -1;
    if (role_is(&who, "agent") && !acdm_model_agent(acdm_engine_model(e), who.name)) return -1;
    if (role_is(&who, "metrics")) return -1;   /* scrapes GET /metrics, nothing else */
    acdm_session *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->ws = ws;
    s->who = who;
    acdm_ws_set_user(ws, s);
    if (role_is(&who, "agent")) {
        grace_cancel(e, who.name);   /* back within the grace period: same state, same work */
        session_add(e, s);
        /* outbound: the channels the agent may start a contact with (websocket `originate`) */
        acdm_plugins *pl = acdm_engine_plugins(e);
        ws_send_json(ws, json_pack("{s:s, s:o, s:o}", "type", "hello",
                                   "agent", hello_agent_json(e, acdm_model_agent(acdm_engine_model(e), who.name)),
                                   "outbound", pl ? acdm_plugins_outbound_json(pl) : json_array()));
    } else {
        ws_send_json(ws, json_pack("{s:s, s:s, s:s}", "type", "hello", "role", who.role, "name", who.name));
        if (role_is(&who, "supervisor") || role_is(&who, "admin")) acdm_live_ws_open(e, s);  /* snapshot, stats */
    }
    if (who.until_ms) expiry_track(e, s);   /* a JWT: the session ends when it expires (or reauth) */
    return 0;
}

/* Ends a session from the server's side: an error with code (re and bericht null), then the
 * close frame (code, reason). Messages that still arrive before the close are ignored. */
static void session_end(acdm_session *s, const char *code, int close_code, const char *reason, const char *text)
{
    if (s->closing) return;
    s->closing = true;
    ws_error(s->ws, NULL, NULL, code, "%s", text);   /* after what is queued before it */
    acdm_outbox_ws_close(A(the_engine)->ob, s, close_code, reason);
}

void acdm_api_drop_removed_agents(acdm_engine *e)
{
    const char *k;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(&A(e)->sessions, &pos, &k, &v);) {
        if (acdm_model_agent(acdm_engine_model(e), k)) continue;
        char text[ACDM_NAME_MAX + 64];
        snprintf(text, sizeof text, "agent %s was removed from the configuration", k);
        for (acdm_session *s = v; s; s = s->next_of_agent)
            session_end(s, "agent_removed", ACDM_WS_CLOSE_AGENT_REMOVED, "agent removed", text);
    }
}

/* ------------------------------------------------------------------ expiring sessions (JWT) */

/* (Re)arms the one expiry timer for the earliest until_ms of the open expiring sessions. */
static void expiry_arm(acdm_engine *e);

static void expiry_fire(uv_timer_t *t)
{
    acdm_engine *e = t->data;
    int64_t now = acdm_now_ms();
    for (size_t i = 0; i < A(e)->n_expiring; i++) {
        acdm_session *s = A(e)->expiring[i];
        if (s->closing || now < s->who.until_ms) continue;
        acdm_log(ACDM_LOG_NOTICE, WHO, "session of %s %s: the token expired, closing", s->who.role, s->who.name);
        session_end(s, "token_expired", ACDM_WS_CLOSE_TOKEN_EXPIRED, "token expired",
                    "the session's token expired: sign in again (or send reauth with a new token before it expires)");
    }
    expiry_arm(e);
}

static void expiry_arm(acdm_engine *e)
{
    if (acdm_engine_stopping(e)) return;
    if (!A(e)->expiry_timer_on) {
        uv_timer_init(acdm_engine_loop(e), &A(e)->expiry_timer);
        A(e)->expiry_timer.data = e;
        A(e)->expiry_timer_on = true;
    }
    int64_t next = 0;
    for (size_t i = 0; i < A(e)->n_expiring; i++) {
        const acdm_session *s = A(e)->expiring[i];
        if (!s->closing && (!next || s->who.until_ms < next)) next = s->who.until_ms;
    }
    uv_timer_stop(&A(e)->expiry_timer);
    if (!next) return;
    int64_t wait = next - acdm_now_ms();
    uv_timer_start(&A(e)->expiry_timer, expiry_fire, wait > 0 ? (uint64_t)wait : 0, 0);
}

/* Keeps s in the expiring list while its principal has an expiry (until_ms), then re-arms. */
static void expiry_track(acdm_engine *e, acdm_session *s)
{
    size_t i = 0;
    while (i < A(e)->n_expiring && A(e)->expiring[i] != s) i++;
    if (i < A(e)->n_expiring && !s->who.until_ms) A(e)->expiring[i] = A(e)->expiring[--A(e)->n_expiring];
    else if (i == A(e)->n_expiring && s->who.until_ms) {
        if (A(e)->n_expiring == A(e)->cap_expiring) {
            size_t cap = A(e)->cap_expiring ? A(e)->cap_expiring * 2 : 8;
            acdm_session **n = realloc(A(e)->expiring, cap * sizeof *n);
            if (!n) {
                /* cannot watch it: end it now rather than let it outlive its token */
                session_end(s, "token_expired", ACDM_WS_CLOSE_TOKEN_EXPIRED, "token expired", "out of memory");
                return;
            }
            A(e)->expiring = n;
            A(e)->cap_expiring = cap;
        }
        A(e)->expiring[A(e)->n_expiring++] = s;
    }
    expiry_arm(e);
}

/* {"type":"reauth","token":T}: a fresh token for the same role and name extends the session
 * (its expiry becomes the new token's); anything else is refused and the session goes on as
 * it was. Failed checks count towards the peer's sign-in limit, as at the upgrade. */
static void ws_reauth(acdm_engine *e, acdm_session *s, json_t *msg)
{
    const char *tok = json_string_value(json_object_get(msg, "token"));
    if (!tok || !*tok) { ws_error(s->ws, "reauth", NULL, "invalid", "token: required (a JWT or API token)"); return; }
    acdm_principal who;
    int retry = 0;
    int rc = acdm_engine_auth_peer(e, tok, ws_peer, s->ws, &who, &retry);
    if (rc == ACDM_EFULL) {
        ws_error(s->ws, "reauth", NULL, "forbidden", "reauth: too many failed sign-ins from this address; retry after %d s", retry);
        return;
    }
    if (rc) { ws_error(s->ws, "reauth", NULL, "forbidden", "reauth: the token is not accepted (unknown, revoked or expired)"); return; }
    if (strcmp(who.role, s->who.role) || strcmp(who.name, s->who.name)) {
        acdm_log(ACDM_LOG_NOTICE, WHO, "session of %s %s: reauth with a token of %s %s refused", s->who.role,
                 s->who.name, who.role, who.name);
        ws_error(s->ws, "reauth", NULL, "forbidden", "reauth: the token is for %s %s, this session is %s %s",
                 who.role, who.name, s->who.role, s->who.name);
        return;
    }
    s->who.until_ms = who.until_ms;
    expiry_track(e, s);
    ws_send_now(s->ws, json_pack("{s:s, s:s, s:n, s:o}", "type", "ack", "re", "reauth", "bericht",
                                  "expires_ms", who.until_ms ? json_integer(who.until_ms) : json_null()));
}

static void ws_close_cb(void *user, acdm_ws *ws)
{
    acdm_engine *e = user;
    acdm_session *s = acdm_ws_user(ws);
    if (!s) return;
    if (role_is(&s->who, "agent")) {
        session_del(e, s);
        if (!acdm_hmap_get(&A(e)->sessions, s->who.name) && !acdm_engine_stopping(e)) grace_start(e, s->who.name);
    } else {
        acdm_live_ws_close(e, s);
    }
    if (s->who.until_ms) {
        s->who.until_ms = 0;
        expiry_track(e, s);   /* out of the list */
    }
    acdm_outbox_forget(A(e)->ob, s);
    free(s);
}

/* The bericht named in msg, which must be one of this agent's (or waiting, for pick). */
static acdm_bericht *msg_bericht(acdm_engine *e, acdm_ws *ws, json_t *msg, const char *type)
{
    const char *id = json_string_value(json_object_get(msg, "bericht"));
    if (!id) { ws_error(ws, type, NULL, "invalid", "bericht: required (a bericht id)"); return NULL; }
    acdm_bericht *b = acdm_model_bericht(acdm_engine_model(e), id);
    if (!b) ws_error(ws, type, strlen(id) <= 64 ? id : NULL, "not_found", "bericht %.64s: no such live bericht", id);
    return b;
}

static void ws_result(acdm_ws *ws, const char *type, const char *bericht, int rc)
{
    if (!rc) {
        ws_send_ack(ws, json_pack("{s:s, s:s, s:s?}", "type", "ack", "re", type, "bericht", bericht), type, bericht);
        return;
    }
    const char *code = rc == ACDM_ESTATE ? "state" : rc == ACDM_EPERM ? "forbidden"
                     : rc == ACDM_EFULL ? "full" : rc == ACDM_ECLOSED ? "closed"
                     : rc == ACDM_ENOENT ? "not_found" : "invalid";
    ws_error(ws, type, bericht, code, "%s: %s", type, acdm_strerror(rc));
}

static void ws_message(void *user, acdm_ws *ws, const char *data, size_t len)
{
    acdm_engine *e = user;
    acdm_session *s = acdm_ws_user(ws);
    json_error_t jerr;
    json_t *msg = json_loadb(data, len, 0, &jerr);
    if (!msg || !json_is_object(msg)) {
        ws_error(ws, NULL, NULL, "malformed", "malformed JSON: %s", msg ? "expected an object" : jerr.text);
        json_decref(msg);
        return;
    }
    if (s->closing) { json_decref(msg); return; }   /* ended by the server: the close is on its way */
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (!type) { ws_error(ws, NULL, NULL, "invalid", "type: required"); json_decref(msg); return; }
    if (!strcmp(type, "reauth")) { ws_reauth(e, s, msg); json_decref(msg); return; }   /* every role */
    if (acdm_api_desk_ws(e, s, msg, type)) { json_decref(msg); return; }   /* note, consult: api_desk.c */
    if (!role_is(&s->who, "agent")) {
        /* supervisors' and admins' commands (queue_open, agent_logout, ...): live.c */
        if ((role_is(&s->who, "supervisor") || role_is(&s->who, "admin")) && acdm_live_ws_message(e, s, msg, type)) {
            json_decref(msg);
            return;
        }
        ws_error(ws, type, NULL, "unknown_type", "%s: not available for role %s", type, s->who.role);
        json_decref(msg);
        return;
    }
    acdm_agent *a = acdm_model_agent(acdm_engine_model(e), s->who.name);
    if (!a) { ws_error(ws, type, NULL, "not_found", "agent %s is no longer configured", s->who.name); json_decref(msg); return; }
    int64_t now = acdm_now_ms();
    int rc = 0;
    acdm_bericht *b = NULL;
    char bid[37] = "";   /* the id outlives b: completing or ending frees the bericht */
    if (!strcmp(type, "login")) rc = acdm_agent_login(acdm_engine_model(e), a, now);
    else if (!strcmp(type, "logout")) rc = acdm_agent_logout(acdm_engine_model(e), a, "logout", now);
    else if (!strcmp(type, "ready")) rc = acdm_agent_ready(acdm_engine_model(e), a, now);
    else if (!strcmp(type, "not_ready")) rc = acdm_agent_not_ready(acdm_engine_model(e), a, json_string_value(json_object_get(msg, "reason")), now);
    else if (!strcmp(type, "join") || !strcmp(type, "leave")) {
        acdm_queue *q = acdm_model_queue(acdm_engine_model(e), json_string_value(json_object_get(msg, "queue")));
        if (!q) rc = ACDM_ENOENT;
        else rc = type[0] == 'j' ? acdm_agent_join(acdm_engine_model(e), a, q, now) : acdm_agent_leave(acdm_engine_model(e), a, q, now);
    } else if (!strcmp(type, "accept") || !strcmp(type, "reject") || !strcmp(type, "pick") ||
               !strcmp(type, "complete") || !strcmp(type, "wrapup_end") || !strcmp(type, "wrapup_extend") ||
               !strcmp(type, "message") || !strcmp(type, "transfer") || !strcmp(type, "typing") ||
               !strcmp(type, "hold") || !strcmp(type, "resume")) {
        if (!(b = msg_bericht(e, ws, msg, type))) { json_decref(msg); return; }
        snprintf(bid, sizeof bid, "%s", b->id);
        if (!strcmp(type, "accept")) rc = acdm_agent_accept(acdm_engine_model(e), a, b, now);
        else if (!strcmp(type, "reject")) rc = acdm_agent_reject(acdm_engine_model(e), a, b, now);
        else if (!strcmp(type, "pick")) rc = acdm_agent_pick(acdm_engine_model(e), a, b, now);
        else if (!strcmp(type, "complete")) {
            json_t *topics = json_object_get(msg, "topics");
            char terr[1024];
            if ((topics && acdm_topics_check(acdm_model_config(acdm_engine_model(e)), topics, terr, sizeof terr)) ||
                acdm_api_note_check(json_object_get(msg, "note"), terr, sizeof terr)) {
                ws_error(ws, type, bid, "invalid", "complete: %s", terr);   /* names the unknown topic */
                json_decref(msg);
                return;
            } else {
                acdm_work *cw = acdm_agent_work(a, b);
                if (cw && cw->state == ACDM_W_ACTIVE)   /* the contact registration: note beside the topics */
                    acdm_api_note_add(e, a->id, b, json_string_value(json_object_get(msg, "note")), NULL, NULL, NULL);
                if (topics && json_array_size(topics)) acdm_engine_topics(e, a, b, topics);
                rc = acdm_agent_complete(acdm_engine_model(e), a, b, now);
            }
        } else if (!strcmp(type, "wrapup_end")) rc = acdm_agent_wrapup_end(acdm_engine_model(e), a, b, now);
        else if (!strcmp(type, "wrapup_extend")) {
            json_t *sec = json_object_get(msg, "seconds");
            rc = json_is_integer(sec) ? acdm_agent_wrapup_extend(acdm_engine_model(e), a, b, (int)json_integer_value(sec), now) : ACDM_EINVAL;
        } else if (!strcmp(type, "typing")) {
            /* the agent types a reply: the channel shows "typing..." to the customer */
            acdm_work *w = acdm_agent_work(a, b);
            if (!w || w->state == ACDM_W_OFFERED) rc = ACDM_EPERM;
            else if (strcmp(b->channel, "api")) acdm_plugins_agent_typing(acdm_engine_plugins(e), b->channel, b->id);
        } else if (!strcmp(type, "hold") || !strcmp(type, "resume")) {
            /* calls only (R18); the error names why: "hold is for calls", "already on hold" */
            const char *why = NULL;
            rc = type[0] == 'h' ? acdm_agent_hold(acdm_engine_model(e), a, b, now, &why)
                                : acdm_agent_resume(acdm_engine_model(e), a, b, now, &why);
            if (rc && why) {
                ws_error(ws, type, bid, rc == ACDM_EINVAL ? "invalid" : "state", "%s: %s", type, why);
                json_decref(msg);
                return;
            }
        } else if (!strcmp(type, "message")) {
            json_t *tv = json_object_get(msg, "text"), *pl = json_object_get(msg, "payload");
            const char *text = json_string_value(tv);
            char why[300] = "", mid[40] = "";
            if (tv && !text) { rc = ACDM_EINVAL; snprintf(why, sizeof why, "text: must be a string"); }
            else if (pl && json_is_null(pl)) pl = NULL;
            if (!rc) rc = acdm_engine_agent_message(e, a, b, text, pl, why, sizeof why, mid);
            if (rc && why[0]) {
                const char *code = rc == ACDM_EPERM ? "forbidden" : rc == ACDM_ENOENT ? "not_found" : "invalid";
                ws_error(ws, type, bid, code, "message: %s", why);
                json_decref(msg);
                return;
            }
            if (!rc) {
                ws_send_json(ws, json_pack("{s:s, s:s, s:s, s:s}", "type", "ack", "re", type,
                                           "bericht", bid, "message", mid));
                json_decref(msg);
                return;
            }
        } else {
            const char *toq = json_string_value(json_object_get(msg, "queue"));
            const char *toa = json_string_value(json_object_get(msg, "agent"));
            char nerr[160];
            if (acdm_api_note_check(json_object_get(msg, "note"), nerr, sizeof nerr)) {
                ws_error(ws, type, bid, "invalid", "transfer: %s", nerr);
                json_decref(msg);
                return;
            }
            bool to_q = toq && acdm_model_queue(acdm_engine_model(e), toq);
            const char *fromq = b->queue->name;   /* queues outlive the transfer */
            json_t *tonv = json_object_get(msg, "number");
            bool to_n = tonv && !toq && !toa;
            if (to_n) {
                /* a blind transfer of a call to an outside number: the channel dials it and ends
                 * the bericht for this agent once it has the call (wrap-up) */
                char terr[512] = "number: must be a string";
                rc = json_is_string(tonv) ? acdm_engine_transfer_out(e, a, b, json_string_value(tonv), terr, sizeof terr)
                                          : ACDM_EINVAL;
                if (rc) {
                    ws_error(ws, type, bid, rc == ACDM_ESTATE ? "state" : rc == ACDM_ENOENT ? "not_found" : "invalid",
                             "transfer: %s", terr);
                    json_decref(msg);
                    return;
                }
            } else if (to_q) rc = acdm_agent_transfer_queue(acdm_engine_model(e), a, b, acdm_model_queue(acdm_engine_model(e), toq), now);
            else if (toa && acdm_model_agent(acdm_engine_model(e), toa)) rc = acdm_agent_transfer_agent(acdm_engine_model(e), a, b, acdm_model_agent(acdm_engine_model(e), toa), now);
            else rc = ACDM_ENOENT;
            /* a note with the transfer travels with the bericht (an escalation to the second line) */
            if (!rc && acdm_model_bericht(acdm_engine_model(e), bid))
                acdm_api_note_add(e, a->id, b, json_string_value(json_object_get(msg, "note")), fromq,
                                  to_q ? toq : NULL, to_q || to_n ? NULL : toa);
        }
    } else if (!strcmp(type, "originate")) {
        /* an outbound contact from the desk: ack carries the new bericht's id ("assigned" came
         * before it), an error says which field */
        json_t *pl = json_object_get(msg, "payload");
        acdm_outbound_contact o = {.channel = json_string_value(json_object_get(msg, "channel")),
                           .kind = json_string_value(json_object_get(msg, "kind")),
                           .to = json_string_value(json_object_get(msg, "to")),
                           .text = json_string_value(json_object_get(msg, "text")),
                           .queue = json_string_value(json_object_get(msg, "queue")),
                           .payload = json_is_null(pl) ? NULL : pl};
        char err[512];
        rc = acdm_engine_originate(e, a, &o, bid, err, sizeof err);
        if (rc) {
            const char *code = rc == ACDM_ESTATE ? "state" : rc == ACDM_EFULL ? "full"
                             : rc == ACDM_ENOENT ? "not_found" : "invalid";
            ws_error(ws, type, NULL, code, "originate: %s", err);
            json_decref(msg);
            return;
        }
    } else {
        ws_error(ws, type, NULL, "unknown_type", "unknown message type \"%.64s\"", type);
        json_decref(msg);
        return;
    }
    ws_result(ws, type, bid[0] ? bid : NULL, rc);
    json_decref(msg);
}

static const acdm_ws_handlers ws_handlers = {ws_open, ws_message, ws_close_cb};

int acdm_api_register(acdm_engine *e)
{
    started_ms = acdm_now_ms();
    acdm_http *h = acdm_engine_http(e);
    acdm_http_route(h, "GET", "/api/v1/health", get_health, e);
    acdm_http_route(h, "POST", "/api/v1/berichten", post_bericht, e);
    acdm_http_route(h, "GET", "/api/v1/berichten/{id}", get_bericht, e);
    acdm_http_route(h, "GET", "/api/v1/queues", get_queues, e);
    acdm_http_route(h, "GET", "/api/v1/attachments/{id}", get_attachment, e);
    acdm_http_route(h, "GET", "/api/v1/attachments/{id}/meta", get_attachment_meta, e);
    acdm_http_route(h, "POST", "/api/v1/queues/{name}/open", post_queue_open, e);
    acdm_http_route(h, "POST", "/api/v1/queues/{name}/close", post_queue_close, e);
    acdm_http_route(h, "POST", "/api/v1/reload", post_reload, e);
    acdm_http_route(h, "GET", "/api/v1/plugins", get_plugins, e);
    acdm_http_route(h, "POST", "/api/v1/plugins/{name}/disable", post_plugin_disable, e);
    acdm_http_route(h, "POST", "/api/v1/plugins/{name}/enable", post_plugin_enable, e);
    acdm_http_route(h, "POST", "/api/v1/plugins/{name}/reload", post_plugin_reload, e);
    acdm_http_route(h, "GET", "/api/v1/agents", get_agents, e);
    /* api_super.c: supervisors and agents at work */
    acdm_http_route(h, "GET", "/api/v1/berichten", acdm_api_get_berichten, e);
    acdm_http_route(h, "GET", "/api/v1/berichten/{id}/messages", acdm_api_get_bericht_messages, e);
    acdm_http_route(h, "POST", "/api/v1/berichten/{id}/topics", acdm_api_post_bericht_topics, e);
    acdm_http_route(h, "POST", "/api/v1/berichten/outbound", acdm_api_post_outbound, e);
    acdm_http_route(h, "GET", "/api/v1/topics", acdm_api_get_topics, e);
    acdm_http_route(h, "GET", "/api/v1/reason-codes", acdm_api_get_reason_codes, e);
    acdm_http_route(h, "GET", "/api/v1/agents/{id}", acdm_api_get_agent, e);
    acdm_http_route(h, "POST", "/api/v1/agents/{id}/login", acdm_api_post_agent_login, e);
    acdm_http_route(h, "POST", "/api/v1/agents/{id}/logout", acdm_api_post_agent_logout, e);
    acdm_http_route(h, "POST", "/api/v1/agents/{id}/ready", acdm_api_post_agent_ready, e);
    acdm_http_route(h, "POST", "/api/v1/agents/{id}/not-ready", acdm_api_post_agent_not_ready, e);
    acdm_http_route(h, "PUT", "/api/v1/agents/{id}/queues/{queue}", acdm_api_put_agent_queue, e);
    acdm_http_route(h, "DELETE", "/api/v1/agents/{id}/queues/{queue}", acdm_api_delete_agent_queue, e);
    acdm_http_route(h, "GET", "/api/v1/queues/{name}/waiting", acdm_api_get_queue_waiting, e);  /* api_waiting.c */
    acdm_http_ws(h, "/ws", &ws_handlers, e);
    acdm_api_data_register(e);   /* api_data.c: customer history, event export, audit log */
    acdm_api_agents_register(e);   /* api_agents.c: POST /api/v1/agents, PUT/DELETE /api/v1/agents/{id} */
    acdm_api_authcfg_register(e);   /* api_authcfg.c: GET /api/v1/auth/config (no auth) */
    acdm_supervise_register(e);   /* api_supervise.c: reassign, whisper, read-along, left messages */
    acdm_api_desk_register(e);   /* api_desk.c: GET /api/v1/escalations */
    return 0;
}

/* ------------------------------------------------------------------ the agents' push, the module */

/* Every model event that concerns an agent becomes a message on the agent's websockets. */
static void agents_model_event(acdm_engine *e, void *user, const acdm_mevent *ev)
{
    (void)user;
    const acdm_bericht *b = ev->b;
    if (ev->a) {
        json_t *msg = NULL;
        switch (ev->type) {
        case ACDM_ME_OFFERED: {
            json_t *brief = acdm_engine_bericht_brief(b);
            const char *subj = acdm_engine_subject(e, b->id);
            if (subj) json_object_set_new(brief, "subject", json_string(subj));
            msg = json_pack("{s:s, s:o}", "type", "offer", "bericht", brief);
            int to = b->queue->def->offer_timeout_s;
            if (to > 0) json_object_set_new(msg, "expires_in", json_integer(to));
            json_object_set_new(msg, "queue_title", json_string(b->queue->def->title ? b->queue->def->title : b->queue->name));
            break;
        }
        case ACDM_ME_OFFER_CANCELLED: case ACDM_ME_TIMEOUT:
            /* a device offer's outcome names itself ("busy", "no-answer", "failed") and carries the
             * channel's sentence in "text" */
            msg = json_pack("{s:s, s:s, s:s, s:s?}", "type", "offer_cancelled", "bericht", b->id,
                            "reason", ev->type == ACDM_ME_TIMEOUT ? (ev->reason ? ev->reason : "timeout")
                                      : ev->reason ? ev->reason : "", "text", ev->text);
            break;
        case ACDM_ME_REJECTED:
            /* the agent's own reject needs no word; a decline on the device does (the desk still
             * shows the offer) */
            if (ev->reason)
                msg = json_pack("{s:s, s:s, s:s, s:s?}", "type", "offer_cancelled", "bericht", b->id,
                                "reason", ev->reason, "text", ev->text);
            break;
        case ACDM_ME_ACCEPTED: case ACDM_ME_ORIGINATED:
            msg = json_pack("{s:s, s:o}", "type", "assigned", "bericht", acdm_engine_bericht_brief(b));
            break;
        case ACDM_ME_WRAPUP_START: case ACDM_ME_WRAPUP_EXTENDED:
            msg = json_pack("{s:s, s:s, s:I}", "type", "wrapup", "bericht", b->id, "seconds", (json_int_t)ev->value);
            break;
        case ACDM_ME_DONE:
            msg = json_pack("{s:s, s:s}", "type", "done", "bericht", b->id);
            break;
        case ACDM_ME_CUSTOMER_ENDED:
            msg = json_pack("{s:s, s:s}", "type", "customer_ended", "bericht", b->id);
            break;
        case ACDM_ME_HOLD:
            msg = json_pack("{s:s, s:s}", "type", "hold", "bericht", b->id);
            break;
        case ACDM_ME_RESUME:
            msg = json_pack("{s:s, s:s, s:I}", "type", "resume", "bericht", b->id,
                            "held_ms", (json_int_t)ev->value);
            if (ev->reason) json_object_set_new(msg, "reason", json_string(ev->reason));
            break;
        case ACDM_ME_AGENT_STATE: case ACDM_ME_AGENT_JOIN: case ACDM_ME_AGENT_LEAVE:
        case ACDM_ME_AGENT_DEVICE:
            msg = json_pack("{s:s, s:o}", "type", "state", "agent", acdm_engine_agent_json(e, ev->a));
            break;
        default: break;
        }
        if (msg && ev->type == ACDM_ME_OFFERED) {
            /* an offer acknowledges nothing (after a crash the bericht waits again): it goes
             * out at once unless something is held for the session, so offers are not delayed
             * by a commit */
            char *s = json_dumps(msg, JSON_COMPACT);
            json_decref(msg);
            for (acdm_session *p = acdm_hmap_get(&A(e)->sessions, ev->a->id); p && s; p = p->next_of_agent)
                acdm_outbox_ws_notify(A(e)->ob, p, strdup(s));
            free(s);
        } else if (msg) {
            acdm_api_push_agent(e, ev->a->id, msg);
        }
    }
}


/* A channel's follow-up, delivery state or typing, for the agent who has the bericht. */
static void agents_note(acdm_engine *e, void *user, const acdm_note *n)
{
    (void)user;
    const acdm_bericht *b = n->b;
    json_t *msg = NULL;
    switch (n->type) {
    case ACDM_NOTE_FOLLOWUP:
        msg = json_pack("{s:s, s:s, s:s, s:s?, s:I}", "type", "message", "bericht", b->id,
                        "direction", "in", "text", n->text, "ts", (json_int_t)n->ts);
        if (n->payload) json_object_set(msg, "payload", n->payload);
        break;
    case ACDM_NOTE_DELIVERY:
        msg = json_pack("{s:s, s:s, s:s, s:s?}", "type", "delivery", "bericht", b->id,
                        "status", n->status, "message", n->text);
        break;
    case ACDM_NOTE_TYPING:
        msg = json_pack("{s:s, s:s}", "type", "typing", "bericht", b->id);
        break;
    case ACDM_NOTE_ORIGINATE:
        msg = json_pack("{s:s, s:s, s:s, s:s?}", "type", "originate_result", "bericht", b->id,
                        "outcome", n->status, "reason", n->text);
        break;
    }
    acdm_api_push_agent(e, b->agent->id, msg);
}

static void ui_connect_set(acdm_engine *e);
static void http_limits_set(acdm_engine *e);
static int api_early(void *user, acdm_req *r);

static int api_start(acdm_engine *e)
{
    api_state *st = calloc(1, sizeof *st);
    if (!st) return ACDM_ENOMEM;
    acdm_hmap_init(&st->sessions);
    acdm_hmap_init(&st->graces);
    acdm_engine_set_state(e, &acdm_api_module, st);
    the_engine = e;
    st->ob = acdm_outbox_create(e);
    if (!st->ob) return ACDM_ENOMEM;
    acdm_engine_subscriber sub = {.order = ACDM_SUB_AGENTS, .model_event = agents_model_event,
                                  .note = agents_note};
    acdm_engine_subscribe(e, &sub);
    ui_connect_set(e);
    http_limits_set(e);
    acdm_http_set_early(acdm_engine_http(e), api_early, e);
    return acdm_api_register(e);
}

/* The UI's CSP lets the sign-in page call the OpenID Connect token endpoint (its origin). */
static void ui_connect_set(acdm_engine *e)
{
    const acdm_oidc_def *o = &acdm_model_config(acdm_engine_model(e))->oidc;
    char origin[512] = "";
    const char *u = o->enabled ? o->token_endpoint : NULL;
    const char *sep = u ? strstr(u, "://") : NULL;
    if (sep) {
        size_t n = strcspn(sep + 3, "/?#");
        snprintf(origin, sizeof origin, "%.*s", (int)((size_t)(sep - u) + 3 + n), u);
    }
    acdm_http_set_ui_connect(acdm_engine_http(e), origin[0] ? origin : NULL);
}

/* Before a request's body is read: a token good for some role on /api/v1 (the route checks
 * which), a blocked address refused on /channels/... too; a stranger's slow body is then never
 * waited for. */
static int api_early(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    const char *p = acdm_req_path(r);
    if (!strncmp(p, "/api/v1/", 8)) {
        if (!strcmp(p, "/api/v1/health") || !strcmp(p, "/api/v1/auth/config")) return 0;
        acdm_principal who;
        return authorize(e, r, "admin supervisor agent channel", &who) ? 0 : 1;
    }
    int retry = 0;
    if (!strncmp(p, "/channels/", 10) && acdm_engine_peer_blocked(e, acdm_req_peer(r), &retry)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry);
        acdm_http_add_header(r, "Retry-After", ra);
        acdm_http_problem(r, 429, "Too Many Requests", "too many failed sign-ins from %s; retry after %d s",
                          acdm_req_peer(r), retry);
        return 1;
    }
    return 0;
}

static void http_limits_set(acdm_engine *e)
{
    acdm_http_set_conn_limit(acdm_engine_http(e), acdm_model_config(acdm_engine_model(e))->max_conns_per_addr);
}

static void api_reloaded(acdm_engine *e)
{
    if (A(e)) acdm_api_drop_removed_agents(e);
    ui_connect_set(e);
    http_limits_set(e);
}

static void api_release(acdm_engine *e)
{
    api_state *st = A(e);
    if (!st) return;
    acdm_hmap_free(&st->sessions);
    acdm_hmap_free(&st->graces);
    free(st->expiring);
    acdm_outbox_free(st->ob);
    if (the_engine == e) the_engine = NULL;
    free(st);
    acdm_engine_set_state(e, &acdm_api_module, NULL);
}

const acdm_engine_module acdm_api_module = {
    .name = "api", .start = api_start, .reloaded = api_reloaded, .shutdown = acdm_api_shutdown,
    .release = api_release,
};
