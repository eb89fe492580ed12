/* api_super.c -- REST routes for supervisors and agents at work (registered in api.c). Every
 * route checks the role; agents reach only their own berichten and their own agent record;
 * bad input gets a problem+json naming the field. */
#include "api/api_super.h"
#include "api/live.h"
#include "base/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO "api"

static bool role_is(const acdm_principal *p, const char *role) { return !strcmp(p->role, role); }

/* ------------------------------------------------------------------ helpers */

int acdm_topics_check(const acdm_config *cfg, json_t *topics, char *err, size_t errlen)
{
    if (!json_is_array(topics)) {
        snprintf(err, errlen, "topics: expected an array of topic names");
        return ACDM_EINVAL;
    }
    if (json_array_size(topics) > 50) {
        snprintf(err, errlen, "topics: at most 50 topics");
        return ACDM_EINVAL;
    }
    size_t i;
    json_t *t;
    json_array_foreach(topics, i, t) {
        const char *name = json_string_value(t);
        if (!name) {
            snprintf(err, errlen, "topics[%zu]: expected a topic name (a string)", i);
            return ACDM_EINVAL;
        }
        bool known = false;
        for (size_t k = 0; k < cfg->n_topics && !known; k++) known = !strcmp(cfg->topics[k], name);
        if (!known) {
            int n = snprintf(err, errlen, "topics[%zu]: unknown topic \"%.100s\" (configured:", i, name);
            for (size_t k = 0; k < cfg->n_topics && n > 0 && (size_t)n < errlen; k++)
                n += snprintf(err + n, errlen - (size_t)n, "%s \"%s\"", k ? "," : "", cfg->topics[k]);
            if (n > 0 && (size_t)n < errlen)
                snprintf(err + n, errlen - (size_t)n, "%s)", cfg->n_topics ? "" : " none");
            return ACDM_EINVAL;
        }
    }
    return 0;
}

/* The request body as a JSON object (NULL body or "" -> an empty object when allow_empty);
 * NULL after a 400 reply. known: the accepted field names, NULL-terminated. */
json_t *acdm_api_body_object(acdm_req *r, bool allow_empty, const char *const *known)
{
    size_t len;
    const char *body = acdm_req_body(r, &len);
    if (!len && allow_empty) return json_object();
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        acdm_http_problem(r, 400, "Malformed JSON", "body: %s at line %d column %d", jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        acdm_http_problem(r, 400, "Invalid body", "body: expected a JSON object");
        json_decref(j);
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(key, known[i]);
        if (!ok) {
            char list[512] = "";
            size_t n = 0;
            for (int i = 0; known[i] && n < sizeof list; i++)
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", known[i]);
            acdm_http_problem(r, 400, "Invalid field", "%.100s: unknown field (expected one of: %s)", key, list);
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

bool acdm_api_agent_had_last(json_t *bericht, const char *agent)
{
    /* the last acceptance in its event log (a logout puts the bericht back, unassigned) */
    json_t *evs = json_object_get(bericht, "events");
    for (size_t i = json_array_size(evs); i-- > 0;) {
        json_t *ev = json_array_get(evs, i);
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (!type || strcmp(type, "accepted")) continue;
        const char *ag = json_string_value(json_object_get(ev, "agent"));
        return ag && !strcmp(ag, agent);
    }
    return false;
}

/* The bericht (store, overlaid with the live model) if who may see it; else NULL after a
 * 404/403 reply. Agents: offered to them, theirs now, or theirs last; channels: their own. */
static json_t *visible_bericht(acdm_engine *e, acdm_req *r, const acdm_principal *who, const char *id)
{
    json_t *j = acdm_engine_bericht_json(e, id);
    if (!j) { acdm_http_problem(r, 404, "Not found", "bericht %.64s: no such bericht", id); return NULL; }
    bool mine = true;
    if (role_is(who, "agent")) {
        const char *ag = json_string_value(json_object_get(j, "agent"));
        acdm_bericht *b = acdm_model_bericht(acdm_engine_model(e), id);
        acdm_agent *a = acdm_model_agent(acdm_engine_model(e), who->name);
        mine = (ag && !strcmp(ag, who->name)) || (b && a && acdm_agent_work(a, b)) ||
               acdm_api_agent_had_last(j, who->name);
    } else if (!strncmp(who->role, "channel:", 8)) {
        const char *ch = json_string_value(json_object_get(j, "channel"));
        mine = ch && !strcmp(ch, who->role + 8);
    }
    if (!mine) {
        json_decref(j);
        acdm_http_problem(r, 403, "Forbidden", "bericht %.64s is not yours", id);
        return NULL;
    }
    return j;
}

/* ------------------------------------------------------------------ GET /api/v1/berichten */

static bool q_int(acdm_req *r, const char *name, int64_t lo, int64_t hi, int64_t *out, bool *given)
{
    const char *v = acdm_req_query(r, name);
    *given = v != NULL;
    if (!v) return true;
    char *end = NULL;
    long long x = 0;
    bool ok = *v && isdigit((unsigned char)*v) && strlen(v) <= 19;
    if (ok) x = strtoll(v, &end, 10);
    if (!ok || *end || x < lo || x > hi) {
        acdm_http_problem(r, 400, "Invalid parameter", "%s: expected an integer %lld..%lld, got \"%.40s\"",
                          name, (long long)lo, (long long)hi, v);
        return false;
    }
    *out = x;
    return true;
}

static bool q_str(acdm_req *r, const char *name, size_t maxlen, const char **out)
{
    const char *v = acdm_req_query(r, name);
    *out = NULL;
    if (!v) return true;
    if (!*v || strlen(v) > maxlen) {
        acdm_http_problem(r, 400, "Invalid parameter", "%s: expected 1..%zu characters", name, maxlen);
        return false;
    }
    *out = v;
    return true;
}

void acdm_api_get_berichten(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor agent", &who)) return;
    static const char *const known[] = {"state", "queue", "channel", "from", "agent", "since", "until",
                                        "limit", "cursor", "offset", "source", NULL};
    const char *qs = acdm_req_query_string(r);
    if (qs) {
        char buf[2048];
        snprintf(buf, sizeof buf, "%s", qs);
        for (char *save = NULL, *t = strtok_r(buf, "&", &save); t; t = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(t, '=');
            if (!eq) continue;      /* a '&' inside a decoded value */
            *eq = 0;
            bool ok = false;
            for (int i = 0; known[i] && !ok; i++) ok = !strcmp(t, known[i]);
            if (!ok) {
                acdm_http_problem(r, 400, "Invalid parameter", "%.60s: unknown parameter (expected state, queue, "
                                  "channel, from, agent, since, until, limit, cursor, offset or source)", t);
                return;
            }
        }
    }
    acdm_bericht_query q;
    memset(&q, 0, sizeof q);
    if (!q_str(r, "state", 16, &q.state) || !q_str(r, "queue", ACDM_NAME_MAX, &q.queue) ||
        !q_str(r, "channel", ACDM_NAME_MAX, &q.channel) || !q_str(r, "from", 512, &q.from) ||
        !q_str(r, "agent", ACDM_NAME_MAX, &q.agent) || !q_str(r, "cursor", 36, &q.cursor) ||
        !q_str(r, "source", ACDM_NAME_MAX, &q.source))
        return;
    char from_buf[520];
    if (q.from && q.from[0] == ' ') {
        /* "?from=+3161..." unencoded: the query decoding made the '+' a space; no address starts
         * with a space, so it was meant as a '+' */
        snprintf(from_buf, sizeof from_buf, "+%s", q.from + 1);
        q.from = from_buf;
    }
    if (q.state) {
        bool ok = false;
        for (int s = 0; s < ACDM_B__COUNT && !ok; s++) ok = !strcmp(q.state, acdm_bstate_name((acdm_bstate)s));
        if (!ok) {
            acdm_http_problem(r, 400, "Invalid parameter", "state: unknown state \"%s\" (expected queued, offered, "
                              "active, wrapup, done, abandoned or closed)", q.state);
            return;
        }
    }
    if (q.cursor) {
        bool ok = strlen(q.cursor) == 36;
        for (const char *p = q.cursor; ok && *p; p++) ok = isxdigit((unsigned char)*p) || *p == '-';
        if (!ok) {
            acdm_http_problem(r, 400, "Invalid parameter", "cursor: expected the \"next\" value of the previous page");
            return;
        }
    }
    int64_t limit = 50, offset = 0;
    bool has_since, has_until, has_limit, has_offset;
    if (!q_int(r, "since", 0, INT64_MAX / 2, &q.since_ms, &has_since) ||
        !q_int(r, "until", 0, INT64_MAX / 2, &q.until_ms, &has_until) ||
        !q_int(r, "limit", 1, 500, &limit, &has_limit) ||
        !q_int(r, "offset", 0, 1000000, &offset, &has_offset))
        return;
    if (has_since && has_until && q.since_ms > q.until_ms) {
        acdm_http_problem(r, 400, "Invalid parameter", "until: earlier than since");
        return;
    }
    if (has_offset && q.cursor) {
        acdm_http_problem(r, 400, "Invalid parameter", "offset: give either cursor or offset, not both");
        return;
    }
    if (role_is(&who, "agent")) {
        if (q.agent && strcmp(q.agent, who.name)) {
            acdm_http_problem(r, 403, "Forbidden", "agent: an agent searches only their own berichten");
            return;
        }
        q.agent = who.name;
    }
    q.limit = (int)limit;
    q.offset = (int)offset;
    char *out = NULL;
    int rc = acdm_store_search_berichten(acdm_engine_store(e), &q, &out);
    if (rc) { acdm_http_problem(r, 500, "Search failed", "the search could not be run: %s", acdm_strerror(rc)); return; }
    acdm_http_reply(r, 200, "application/json", out, strlen(out));
    free(out);
}

/* ------------------------------------------------------------------ a bericht's thread, topics */

void acdm_api_get_bericht_messages(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor agent channel", &who)) return;
    const char *id = acdm_req_param(r, "id");
    json_t *j = visible_bericht(e, r, &who, id);
    if (!j) return;
    json_t *msgs = json_object_get(j, "messages");
    acdm_http_reply_json(r, 200, json_pack("{s:s, s:O}", "bericht", id, "messages", msgs ? msgs : json_array()));
    json_decref(j);
}

void acdm_api_post_bericht_topics(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor agent", &who)) return;
    static const char *const known[] = {"topics", NULL};
    json_t *body = acdm_api_body_object(r, false, known);
    if (!body) return;
    json_t *topics = json_object_get(body, "topics");
    char err[1024];
    if (!topics) {
        acdm_http_problem(r, 400, "Invalid field", "topics: required (an array of configured topic names)");
        json_decref(body);
        return;
    }
    if (acdm_topics_check(acdm_model_config(acdm_engine_model(e)), topics, err, sizeof err)) {
        acdm_http_problem(r, 400, "Invalid field", "%s", err);
        json_decref(body);
        return;
    }
    if (!json_array_size(topics)) {
        acdm_http_problem(r, 400, "Invalid field", "topics: empty (name at least one topic)");
        json_decref(body);
        return;
    }
    const char *id = acdm_req_param(r, "id");
    json_t *j = visible_bericht(e, r, &who, id);
    if (!j) { json_decref(body); return; }
    const char *agent = role_is(&who, "agent") ? who.name : json_string_value(json_object_get(j, "agent"));
    json_t *d = json_pack("{s:O, s:s}", "topics", topics, "by", who.name);
    char *dj = json_dumps(d, JSON_COMPACT);
    acdm_event_row ev = {.ts_ms = acdm_now_ms(), .type = "topics", .bericht = id,
                         .queue = json_string_value(json_object_get(j, "queue")), .agent = agent,
                         .channel = json_string_value(json_object_get(j, "channel")),
                         .kind = json_string_value(json_object_get(j, "kind")), .detail_json = dj};
    acdm_store_append_event(acdm_engine_store(e), &ev);
    free(dj);
    json_decref(d);
    acdm_api_reply_committed(e, r, 200, json_pack("{s:s, s:O}", "bericht", id, "topics", topics));
    json_decref(j);
    json_decref(body);
}

/* ------------------------------------------------------------------ configuration lists */

json_t *acdm_api_topics_json(const acdm_config *cfg)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < cfg->n_topics; i++) json_array_append_new(arr, json_string(cfg->topics[i]));
    return json_pack("{s:o}", "topics", arr);
}

void acdm_api_get_topics(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor agent", &who)) return;
    acdm_http_reply_json(r, 200, acdm_api_topics_json(acdm_model_config(acdm_engine_model(e))));
}

void acdm_api_get_reason_codes(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor agent", &who)) return;
    const acdm_config *cfg = acdm_model_config(acdm_engine_model(e));
    json_t *arr = json_array();
    for (size_t i = 0; i < cfg->n_reasons; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "code", cfg->reasons[i].code,
                                             "label", cfg->reasons[i].label));
    acdm_http_reply_json(r, 200, json_pack("{s:o}", "reason_codes", arr));
}

/* ------------------------------------------------------------------ agents */

void acdm_api_get_agent(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor agent", &who)) return;
    const char *id = acdm_req_param(r, "id");
    if (role_is(&who, "agent") && strcmp(id, who.name)) {
        acdm_http_problem(r, 403, "Forbidden", "agent %.64s: an agent reads only their own record", id);
        return;
    }
    acdm_agent *a = acdm_model_agent(acdm_engine_model(e), id);
    if (!a) { acdm_http_problem(r, 404, "Not found", "agent %.64s: no such agent", id); return; }
    acdm_http_reply_json(r, 200, acdm_engine_agent_json(e, a));
}

static void agent_action(acdm_engine *e, acdm_req *r, const char *action)
{
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor", &who)) return;
    const char *id = acdm_req_param(r, "id");
    static const char *const known_nr[] = {"reason", NULL};
    static const char *const known_none[] = {NULL};
    bool nr = !strcmp(action, "not_ready");
    json_t *body = acdm_api_body_object(r, true, nr ? known_nr : known_none);
    if (!body) return;
    json_t *rv = json_object_get(body, "reason");
    if (rv && !json_is_null(rv) && !json_is_string(rv)) {
        acdm_http_problem(r, 400, "Invalid field", "reason: expected a string (a configured reason code)");
        json_decref(body);
        return;
    }
    char err[512];
    int rc = acdm_live_agent_action(e, action, id, json_string_value(rv), err, sizeof err);
    if (rc) {
        int st = rc == ACDM_ENOENT ? 404 : rc == ACDM_EINVAL ? 400 : 409;
        acdm_http_problem(r, st, rc == ACDM_ENOENT ? "Not found" : rc == ACDM_EINVAL ? "Invalid field" : "Not possible now",
                          "%s", err);
        json_decref(body);
        return;
    }
    char act[32];
    snprintf(act, sizeof act, "agent_%s", action);
    acdm_live_audit(e, &who, act, id, NULL);
    acdm_log(ACDM_LOG_NOTICE, WHO, "agent %s: %s by %s", id, action, who.name);
    json_decref(body);
    acdm_api_reply_committed(e, r, 200, acdm_engine_agent_json(e, acdm_model_agent(acdm_engine_model(e), id)));
}

void acdm_api_post_agent_login(void *user, acdm_req *r) { agent_action(user, r, "login"); }
void acdm_api_post_agent_logout(void *user, acdm_req *r) { agent_action(user, r, "logout"); }
void acdm_api_post_agent_ready(void *user, acdm_req *r) { agent_action(user, r, "ready"); }
void acdm_api_post_agent_not_ready(void *user, acdm_req *r) { agent_action(user, r, "not_ready"); }

static void agent_queue(acdm_engine *e, acdm_req *r, bool join)
{
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor", &who)) return;
    const char *id = acdm_req_param(r, "id"), *qn = acdm_req_param(r, "queue");
    acdm_agent *a = acdm_model_agent(acdm_engine_model(e), id);
    if (!a) { acdm_http_problem(r, 404, "Not found", "agent %.64s: no such agent", id); return; }
    acdm_queue *q = acdm_model_queue(acdm_engine_model(e), qn);
    if (!q) { acdm_http_problem(r, 404, "Not found", "queue %.64s: no such queue", qn); return; }
    int64_t now = acdm_now_ms();
    int rc = join ? acdm_agent_join(acdm_engine_model(e), a, q, now) : acdm_agent_leave(acdm_engine_model(e), a, q, now);
    if (rc == ACDM_EPERM) {
        acdm_http_problem(r, 422, "Not a configured queue",
                          "queue: agent %s is not configured for queue %s (the agent's queues come from the configuration)",
                          a->id, q->name);
        return;
    }
    if (rc) { acdm_http_problem(r, 409, "Not possible now", "agent %s: %s", a->id, acdm_strerror(rc)); return; }
    acdm_live_audit(e, &who, join ? "agent_join" : "agent_leave", a->id,
                    json_pack("{s:s}", "queue", q->name));
    acdm_log(ACDM_LOG_NOTICE, WHO, "agent %s %s queue %s by %s", a->id, join ? "joined" : "left", q->name, who.name);
    acdm_api_reply_committed(e, r, 200, acdm_engine_agent_json(e, a));
}

/* POST /api/v1/berichten/outbound: an outbound contact (R21). An agent starts their own; an
 * admin or supervisor names the agent (an agent's client, a dialler integration). */
void acdm_api_post_outbound(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor agent", &who)) return;
    static const char *const known[] = {"agent", "channel", "kind", "to", "text", "queue", "payload", NULL};
    json_t *body = acdm_api_body_object(r, false, known);
    if (!body) return;
    const char *fields[] = {"agent", "channel", "kind", "to", "text", "queue"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        json_t *v = json_object_get(body, fields[i]);
        if (v && !json_is_string(v)) {
            acdm_http_problem(r, 400, "Invalid field", "%s: expected a string", fields[i]);
            json_decref(body);
            return;
        }
    }
    json_t *pl = json_object_get(body, "payload");
    if (pl && !json_is_object(pl) && !json_is_null(pl)) {
        acdm_http_problem(r, 400, "Invalid field", "payload: expected an object");
        json_decref(body);
        return;
    }
    const char *aid = json_string_value(json_object_get(body, "agent"));
    bool is_agent = !strcmp(who.role, "agent");
    if (is_agent && aid && strcmp(aid, who.name)) {
        acdm_http_problem(r, 403, "Forbidden", "agent: an agent starts contacts as themselves (%s)", who.name);
        json_decref(body);
        return;
    }
    if (is_agent) aid = who.name;
    if (!aid) {
        acdm_http_problem(r, 400, "Invalid field", "agent: required (the agent who makes the contact)");
        json_decref(body);
        return;
    }
    acdm_agent *a = acdm_model_agent(acdm_engine_model(e), aid);
    if (!a) {
        acdm_http_problem(r, 404, "Not found", "agent %.64s: no such agent", aid);
        json_decref(body);
        return;
    }
    acdm_outbound_contact o = {.channel = json_string_value(json_object_get(body, "channel")),
                       .kind = json_string_value(json_object_get(body, "kind")),
                       .to = json_string_value(json_object_get(body, "to")),
                       .text = json_string_value(json_object_get(body, "text")),
                       .queue = json_string_value(json_object_get(body, "queue")),
                       .payload = json_is_object(pl) ? pl : NULL};
    char err[512], id[37];
    int rc = acdm_engine_originate(e, a, &o, id, err, sizeof err);
    if (rc) {
        int st = rc == ACDM_ENOENT ? 404 : rc == ACDM_EINVAL ? 400 : 409;
        acdm_http_problem(r, st, rc == ACDM_ENOENT ? "Not found" : rc == ACDM_EINVAL ? "Invalid field"
                          : "Not possible now", "%s", err);
        json_decref(body);
        return;
    }
    json_decref(body);
    json_t *bj = acdm_engine_bericht_json(e, id);
    acdm_http_reply_json(r, 201, bj ? bj : json_pack("{s:s}", "id", id));
}

void acdm_api_put_agent_queue(void *user, acdm_req *r) { agent_queue(user, r, true); }
void acdm_api_delete_agent_queue(void *user, acdm_req *r) { agent_queue(user, r, false); }
