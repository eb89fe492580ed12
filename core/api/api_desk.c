/* api_desk.c -- what agents do beside the conversation itself (issue 14):
 *  - internal notes on a bericht (contact registration with the topics): event "note" in the
 *    event log, never handed to a channel; on `note`, `complete` and `transfer` over /ws;
 *  - escalation: a transfer with a note (to a second-line or back-office queue); the first line
 *    sees what became of it at GET /api/v1/escalations;
 *  - asking a colleague (consult): a message about a conversation to another agent or a
 *    supervisor, without transferring it: event "consult", pushed to the colleague, who may then
 *    read the bericht (read-only) and answer.
 * Everything is written to the event log before the ack (the outbox sends it after the commit),
 * so an acknowledged note or consult survives kill -9. */
#include "api/api_desk.h"
#include "api/api_super.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO "api"
#define ESCALATIONS_SPAN_MS (31LL * 86400 * 1000)   /* what GET /api/v1/escalations looks back over */
#define ESCALATIONS_MAX 50

/* ------------------------------------------------------------------ small helpers */

static void desk_error(acdm_engine *e, acdm_session *s, const char *re, const char *bericht, const char *code,
                       const char *text)
{
    acdm_api_send_committed(e, s, json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "type", "error", "code", code,
                                            "text", text, "re", re, "bericht", bericht), NULL, NULL);
}

static void desk_ack(acdm_engine *e, acdm_session *s, const char *re, const char *bericht)
{
    acdm_api_send_committed(e, s, json_pack("{s:s, s:s, s:s}", "type", "ack", "re", re, "bericht", bericht),
                            re, bericht);
}

/* The display name of an agent id (the configured name), or the id. */
static const char *agent_name(acdm_engine *e, const char *id)
{
    acdm_agent *a = id ? acdm_model_agent(acdm_engine_model(e), id) : NULL;
    return a && a->def->name ? a->def->name : id;
}

int acdm_api_note_check(json_t *note, char *err, size_t errlen)
{
    if (!note || json_is_null(note)) return 0;
    const char *t = json_string_value(note);
    size_t n = t ? acdm_utf8_chars(t) : 0;
    if (!t || n > ACDM_NOTE_MAX) {
        snprintf(err, errlen, "note: expected a text of at most %d characters", ACDM_NOTE_MAX);
        return ACDM_EINVAL;
    }
    return 0;
}

void acdm_api_note_add(acdm_engine *e, const char *agent_id, const acdm_bericht *b, const char *text,
                       const char *from_queue, const char *to_queue, const char *to_agent)
{
    if (!text || !*text) return;
    json_t *d = json_pack("{s:s, s:s, s:s?}", "text", text, "author_name", agent_name(e, agent_id),
                          "from_queue", from_queue ? from_queue : b->queue->name);
    if (to_queue) json_object_set_new(d, "to_queue", json_string(to_queue));
    if (to_agent) json_object_set_new(d, "to_agent", json_string(to_agent));
    char *dj = json_dumps(d, JSON_COMPACT);
    acdm_event_row ev = {.ts_ms = acdm_now_ms(), .type = "note", .bericht = b->id, .queue = b->queue->name,
                         .agent = agent_id, .channel = b->channel, .kind = acdm_kind_name(b->kind),
                         .detail_json = dj};
    acdm_store_append_event(acdm_engine_store(e), &ev);
    free(dj);
    json_decref(d);
}

bool acdm_api_desk_may_read(json_t *bericht, const char *name)
{
    json_t *evs = json_object_get(bericht, "events");
    for (size_t i = 0; i < json_array_size(evs); i++) {
        json_t *ev = json_array_get(evs, i);
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *ag = json_string_value(json_object_get(ev, "agent"));
        if (!type) continue;
        /* wrote a note on it (only its handler can): the first line following an escalation */
        if (!strcmp(type, "note") && ag && !strcmp(ag, name)) return true;
        /* a colleague asked them about it */
        if (!strcmp(type, "consult")) {
            const char *to = json_string_value(json_object_get(json_object_get(ev, "detail"), "to"));
            if (to && !strcmp(to, name)) return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ /ws: note, consult */

/* {"type":"note","bericht":ID,"text":T}: a note on a bericht active or in wrap-up with the agent. */
static void ws_note(acdm_engine *e, acdm_session *s, json_t *msg)
{
    const char *id = json_string_value(json_object_get(msg, "bericht"));
    if (!id) { desk_error(e, s, "note", NULL, "invalid", "bericht: required (a bericht id)"); return; }
    acdm_bericht *b = acdm_model_bericht(acdm_engine_model(e), id);
    const char *bid = strlen(id) <= 64 ? id : NULL;
    if (!b) { desk_error(e, s, "note", bid, "not_found", "note: no such live bericht"); return; }
    acdm_agent *a = acdm_model_agent(acdm_engine_model(e), s->who.name);
    acdm_work *w = a ? acdm_agent_work(a, b) : NULL;
    if (!w || w->state == ACDM_W_OFFERED) {
        desk_error(e, s, "note", bid, "forbidden", "note: the bericht is not active or in wrap-up with you");
        return;
    }
    json_t *tv = json_object_get(msg, "text");
    char err[160];
    if (!json_string_length(tv) || acdm_api_note_check(tv, err, sizeof err)) {
        desk_error(e, s, "note", bid, "invalid", json_string_length(tv) ? err : "text: required, the note (1 to 4000 characters)");
        return;
    }
    acdm_api_note_add(e, a->id, b, json_string_value(tv), NULL, NULL, NULL);
    desk_ack(e, s, "note", b->id);
}

/* {"type":"consult","bericht":ID,"to":NAME,"text":T}: to another agent (their id) or a
 * supervisor (their name, signed in now). The sender has the bericht, or was asked about it
 * (the answer), or is a supervisor. */
static void ws_consult(acdm_engine *e, acdm_session *s, json_t *msg)
{
    const char *id = json_string_value(json_object_get(msg, "bericht"));
    const char *to = json_string_value(json_object_get(msg, "to"));
    json_t *tv = json_object_get(msg, "text");
    const char *text = json_string_value(tv);
    if (!id) { desk_error(e, s, "consult", NULL, "invalid", "bericht: required (a bericht id)"); return; }
    const char *bid = strlen(id) <= 64 ? id : NULL;
    if (!to || !*to) { desk_error(e, s, "consult", bid, "invalid", "to: required, the colleague (an agent id or a supervisor's name)"); return; }
    if (!text || !*text || acdm_utf8_chars(text) > ACDM_NOTE_MAX) {
        desk_error(e, s, "consult", bid, "invalid", "text: required, the question or answer (1 to 4000 characters)");
        return;
    }
    if (!strcmp(to, s->who.name)) { desk_error(e, s, "consult", bid, "invalid", "to: that is yourself"); return; }
    json_t *bj = acdm_engine_bericht_json(e, id);
    if (!bj) { desk_error(e, s, "consult", bid, "not_found", "consult: no such bericht"); return; }
    bool agent = !strcmp(s->who.role, "agent");
    acdm_bericht *b = acdm_model_bericht(acdm_engine_model(e), id);
    if (agent) {
        acdm_agent *a = acdm_model_agent(acdm_engine_model(e), s->who.name);
        acdm_work *w = a && b ? acdm_agent_work(a, b) : NULL;
        if (!(w && w->state != ACDM_W_OFFERED) && !acdm_api_desk_may_read(bj, s->who.name)) {
            json_decref(bj);
            desk_error(e, s, "consult", bid, "forbidden", "consult: the bericht is not yours, and nobody asked you about it");
            return;
        }
    }
    bool to_agent = acdm_model_agent(acdm_engine_model(e), to) != NULL;
    if (!to_agent && !acdm_hmap_get(acdm_api_sessions(e), to)) {
        json_decref(bj);
        desk_error(e, s, "consult", bid, "not_found", "to: no agent of that id, and no supervisor of that name signed in");
        return;
    }
    const char *from_name = agent ? agent_name(e, s->who.name) : s->who.name;
    int64_t now = acdm_now_ms();
    char cid[37];
    acdm_uuidv7(cid, now);
    const char *queue = b ? b->queue->name : json_string_value(json_object_get(bj, "queue"));
    const char *from_addr = json_string_value(json_object_get(bj, "from"));
    const char *kind = json_string_value(json_object_get(bj, "kind"));
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", cid, "from", s->who.name, "from_name", from_name,
                          "to", to, "to_name", to_agent ? agent_name(e, to) : to, "text", text);
    char *dj = json_dumps(d, JSON_COMPACT);
    acdm_event_row ev = {.ts_ms = now, .type = "consult", .bericht = id, .queue = queue,
                         .agent = agent ? s->who.name : NULL, .channel = json_string_value(json_object_get(bj, "channel")),
                         .kind = kind, .detail_json = dj};
    acdm_store_append_event(acdm_engine_store(e), &ev);
    free(dj);
    json_decref(d);
    json_t *push = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s?, s:s?, s:s?}", "type", "consult",
                             "id", cid, "bericht", id, "from", s->who.name, "from_name", from_name, "to", to,
                             "text", text, "ts", (json_int_t)now, "customer", from_addr, "kind", kind,
                             "queue", queue);
    acdm_api_push_agent(e, to, push);
    acdm_log(ACDM_LOG_INFO, WHO, "consult about %s from %s to %s", id, s->who.name, to);
    json_decref(bj);
    desk_ack(e, s, "consult", id);
}

bool acdm_api_desk_ws(acdm_engine *e, acdm_session *s, json_t *msg, const char *type)
{
    bool person = !strcmp(s->who.role, "agent") || !strcmp(s->who.role, "supervisor") || !strcmp(s->who.role, "admin");
    if (!person) return false;   /* a channel's session: unknown_type, as for every agent message */
    if (!strcmp(type, "consult")) { ws_consult(e, s, msg); return true; }
    if (!strcmp(type, "note") && !strcmp(s->who.role, "agent")) { ws_note(e, s, msg); return true; }
    return false;
}

/* ------------------------------------------------------------------ GET /api/v1/escalations */

typedef struct {
    const char *agent;       /* NULL: every agent's */
    json_t *items;
} esc_scan;

static int esc_row(void *user, int64_t id, const acdm_event_row *ev)
{
    (void)id;
    esc_scan *sc = user;
    if (!ev->bericht || (sc->agent && (!ev->agent || strcmp(ev->agent, sc->agent)))) return 0;
    json_t *d = ev->detail_json ? json_loads(ev->detail_json, 0, NULL) : NULL;
    const char *toq = json_string_value(json_object_get(d, "to_queue"));
    const char *toa = json_string_value(json_object_get(d, "to_agent"));
    if (toq || toa) {
        json_array_insert_new(sc->items, 0, json_pack("{s:s, s:I, s:s?, s:s?, s:s?, s:s?, s:s?}",
                              "bericht", ev->bericht, "ts", (json_int_t)ev->ts_ms, "by", ev->agent,
                              "note", json_string_value(json_object_get(d, "text")),
                              "from_queue", json_string_value(json_object_get(d, "from_queue")),
                              "to_queue", toq, "to_agent", toa));
        if (json_array_size(sc->items) > ESCALATIONS_MAX) json_array_remove(sc->items, ESCALATIONS_MAX);
    }
    json_decref(d);
    return 0;
}

/* The berichten an agent handed on with a note (newest first, the last month, at most 50),
 * each with what became of it: its state, queue and handler now. Agents see their own;
 * supervisors and admins every agent's, or one's with ?agent=. */
static void get_escalations(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor agent", &who)) return;
    const char *agent = acdm_req_query(r, "agent");
    if (!strcmp(who.role, "agent")) {
        if (agent && strcmp(agent, who.name)) {
            acdm_http_problem(r, 403, "Forbidden", "agent: agents see their own escalations (%s), not %.64s's", who.name, agent);
            return;
        }
        agent = who.name;
    }
    int64_t now = acdm_now_ms();
    esc_scan sc = {agent, json_array()};
    if (acdm_store_events_each(acdm_engine_store(e), now - ESCALATIONS_SPAN_MS, now + 1, "note", esc_row, &sc) < 0) {
        json_decref(sc.items);
        acdm_http_problem(r, 500, "Store error", "the event log could not be read (see the log)");
        return;
    }
    size_t i;
    json_t *it;
    json_array_foreach(sc.items, i, it) {
        const char *bid = json_string_value(json_object_get(it, "bericht"));
        json_t *bj = acdm_engine_bericht_json(e, bid);
        const char *handler = bj ? json_string_value(json_object_get(bj, "agent")) : NULL;
        json_object_set_new(it, "state", bj ? json_incref(json_object_get(bj, "state")) : json_null());
        json_object_set_new(it, "queue", bj ? json_incref(json_object_get(bj, "queue")) : json_null());
        json_object_set_new(it, "from", bj ? json_incref(json_object_get(bj, "from")) : json_null());
        json_object_set_new(it, "kind", bj ? json_incref(json_object_get(bj, "kind")) : json_null());
        json_object_set_new(it, "subject", bj && json_is_string(json_object_get(json_object_get(bj, "payload"), "subject"))
                            ? json_incref(json_object_get(json_object_get(bj, "payload"), "subject")) : json_null());
        json_object_set_new(it, "handler", handler ? json_string(handler) : json_null());
        acdm_agent *ha = handler ? acdm_model_agent(acdm_engine_model(e), handler) : NULL;
        json_object_set_new(it, "handler_name", ha && ha->def->name ? json_string(ha->def->name) : json_null());
        json_decref(bj);
    }
    acdm_http_reply_json(r, 200, json_pack("{s:o}", "items", sc.items));
}

/* ------------------------------------------------------------------ GET /api/v1/consults */

#define CONSULTS_SPAN_MS (7LL * 86400 * 1000)
#define CONSULTS_MAX 200

typedef struct {
    const char *name;
    json_t *items;
} cons_scan;

static int cons_row(void *user, int64_t id, const acdm_event_row *ev)
{
    (void)id;
    cons_scan *sc = user;
    json_t *d = ev->detail_json && ev->bericht ? json_loads(ev->detail_json, 0, NULL) : NULL;
    const char *from = json_string_value(json_object_get(d, "from"));
    const char *to = json_string_value(json_object_get(d, "to"));
    if (from && to && (!strcmp(from, sc->name) || !strcmp(to, sc->name))) {
        json_object_set_new(d, "bericht", json_string(ev->bericht));
        json_object_set_new(d, "ts", json_integer(ev->ts_ms));
        json_object_set_new(d, "queue", ev->queue ? json_string(ev->queue) : json_null());
        json_object_set_new(d, "kind", ev->kind ? json_string(ev->kind) : json_null());
        json_array_append(sc->items, d);
        if (json_array_size(sc->items) > CONSULTS_MAX) json_array_remove(sc->items, 0);
    }
    json_decref(d);
    return 0;
}

/* The consults the caller sent or got in the last 7 days (oldest first, at most 200), each with
 * the bericht's customer address: what the desk's "Overleg" panel shows again after a reload. */
static void get_consults(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor agent", &who)) return;
    int64_t now = acdm_now_ms();
    cons_scan sc = {who.name, json_array()};
    if (acdm_store_events_each(acdm_engine_store(e), now - CONSULTS_SPAN_MS, now + 1, "consult", cons_row, &sc) < 0) {
        json_decref(sc.items);
        acdm_http_problem(r, 500, "Store error", "the event log could not be read (see the log)");
        return;
    }
    size_t i;
    json_t *it;
    json_array_foreach(sc.items, i, it) {
        json_t *bj = acdm_engine_bericht_json(e, json_string_value(json_object_get(it, "bericht")));
        json_object_set_new(it, "customer", bj ? json_incref(json_object_get(bj, "from")) : json_null());
        json_decref(bj);
    }
    acdm_http_reply_json(r, 200, json_pack("{s:o}", "items", sc.items));
}

int acdm_api_desk_register(acdm_engine *e)
{
    acdm_http *h = acdm_engine_http(e);
    acdm_http_route(h, "GET", "/api/v1/escalations", get_escalations, e);
    acdm_http_route(h, "GET", "/api/v1/consults", get_consults, e);
    return 0;
}
