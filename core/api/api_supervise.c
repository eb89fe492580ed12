/* api_supervise.c -- what a supervisor does with berichten (registered in api.c; websocket
 * commands reached through live.c):
 *  - reassign: a waiting or offered bericht offered to a chosen agent (acdm_model_reassign),
 *    websocket `reassign` and POST /api/v1/berichten/{id}/reassign;
 *  - whisper: a message to the agent who has a conversation, never to the customer: stored as a
 *    `whisper` event of the bericht and pushed to the agent's desk as `whisper`; websocket
 *    `whisper` and POST /api/v1/berichten/{id}/whisper.
 * Read-along needs nothing new: GET /api/v1/berichten/{id} has the thread (and the whispers in
 * its events). Both commands are audited; a refusal names its reason in `why` for the UI's
 * sentence (docs/websocket.md "Supervisors"). */
#include "api/api_super.h"
#include "api/live.h"
#include "base/log.h"

#include <stdio.h>
#include <string.h>

#define WHO "api"
#define WHISPER_MAX 2000   /* characters (bytes of UTF-8) */

/* English for the API's readers; the dashboard words it in Dutch from `why`. */
static const char *why_text(const char *why)
{
    static const struct { const char *why, *text; } t[] = {
        {"not_waiting", "the bericht is not waiting or offered (already taken or ended)"},
        {"reserved", "the bericht is kept for its agent after a restart"},
        {"logged_out", "the agent is not logged in"},
        {"kind", "the agent takes no berichten of this kind (capacity 0)"},
        {"same", "the bericht is already offered to this agent"},
        {"unreachable", "the agent's device for this kind cannot be reached"},
        {"wrapup", "the agent is in wrap-up"},
        {"full", "the agent has no free capacity for this kind"},
        {"not_with_agent", "the bericht is not with an agent (whisper needs an active conversation)"},
    };
    for (size_t i = 0; why && i < sizeof t / sizeof *t; i++)
        if (!strcmp(t[i].why, why)) return t[i].text;
    return "not possible now";
}

static const char *code_of(int rc)
{
    return rc == ACDM_ESTATE ? "state" : rc == ACDM_ENOENT ? "not_found" : rc == ACDM_EFULL ? "full" : "invalid";
}

static int http_status_of(int rc)
{
    return rc == ACDM_ENOENT ? 404 : rc == ACDM_EINVAL ? 422 : 409;
}

/* ------------------------------------------------------------------ the two actions */

typedef struct {
    int rc;
    const char *why;         /* machine reason (see why_text) or NULL */
    char text[512];          /* the sentence */
} outcome;

#define FAIL(o, rc_, why_, ...) do { (o)->rc = (rc_); (o)->why = (why_); \
    snprintf((o)->text, sizeof (o)->text, __VA_ARGS__); } while (0)

static void do_reassign(acdm_engine *e, const acdm_principal *who, const char *bid, const char *agent_id, outcome *o)
{
    memset(o, 0, sizeof *o);
    acdm_model *m = acdm_engine_model(e);
    acdm_bericht *b = bid ? acdm_model_bericht(m, bid) : NULL;
    if (!agent_id || !*agent_id) { FAIL(o, ACDM_EINVAL, NULL, "agent: required (the agent to offer it to)"); return; }
    if (!b) { FAIL(o, ACDM_ENOENT, "not_live", "bericht %.64s: no such live bericht", bid); return; }
    acdm_agent *to = acdm_model_agent(m, agent_id);
    if (!to) { FAIL(o, ACDM_ENOENT, "no_agent", "agent: no agent \"%.64s\"", agent_id); return; }
    /* who had it on offer (for the audit) before the model withdraws it */
    json_t *from = json_array();
    for (uint16_t i = 0; i < b->n_offers; i++) json_array_append_new(from, json_string(b->offers[i]->id));
    char queue[ACDM_NAME_MAX + 1];
    snprintf(queue, sizeof queue, "%s", b->queue->name);
    const char *why = NULL;
    int rc = acdm_model_reassign(m, b, to, acdm_now_ms(), &why);
    if (rc) {
        json_decref(from);
        FAIL(o, rc, why, "reassign to %.64s: %s", to->id, why_text(why));
        return;
    }
    acdm_live_audit(e, who, "reassign", bid, json_pack("{s:s, s:o, s:s}", "agent", to->id, "from", from, "queue", queue));
    acdm_log(ACDM_LOG_NOTICE, WHO, "bericht %s reassigned to %s by %s", bid, to->id, who->name);
}

static void do_whisper(acdm_engine *e, const acdm_principal *who, const char *bid, json_t *tv, outcome *o)
{
    memset(o, 0, sizeof *o);
    const char *text = json_string_value(tv);
    size_t len = text ? strlen(text) : 0;
    if (!text || !len) { FAIL(o, ACDM_EINVAL, NULL, "text: required (the message for the agent)"); return; }
    if (len > WHISPER_MAX) { FAIL(o, ACDM_EINVAL, NULL, "text: at most %d characters", WHISPER_MAX); return; }
    acdm_bericht *b = bid ? acdm_model_bericht(acdm_engine_model(e), bid) : NULL;
    if (!b) { FAIL(o, ACDM_ENOENT, "not_live", "bericht %.64s: no such live bericht", bid); return; }
    if (!b->agent || (b->state != ACDM_B_ACTIVE && b->state != ACDM_B_WRAPUP)) {
        FAIL(o, ACDM_ESTATE, "not_with_agent", "%s", why_text("not_with_agent"));
        return;
    }
    int64_t now = acdm_now_ms();
    /* the thread is the customer's conversation: a whisper lives in the event log only */
    json_t *d = json_pack("{s:s, s:s, s:s}", "text", text, "by", who->name, "role", who->role);
    char *dj = json_dumps(d, JSON_COMPACT);
    acdm_event_row ev = {.ts_ms = now, .type = "whisper", .bericht = b->id, .queue = b->queue->name,
                         .agent = b->agent->id, .channel = b->channel, .kind = acdm_kind_name((acdm_kind)b->kind),
                         .detail_json = dj};
    acdm_store_append_event(acdm_engine_store(e), &ev);
    free(dj);
    json_decref(d);
    acdm_api_push_agent(e, b->agent->id, json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", "whisper", "bericht", b->id,
                                                   "text", text, "from", who->name, "ts", (json_int_t)now));
    acdm_live_audit(e, who, "whisper", b->id, json_pack("{s:s}", "agent", b->agent->id));
}

/* ------------------------------------------------------------------ websocket */

bool acdm_supervise_ws_message(acdm_engine *e, acdm_session *s, json_t *msg, const char *type)
{
    bool reassign = !strcmp(type, "reassign"), whisper = !strcmp(type, "whisper");
    if (!reassign && !whisper) return false;
    json_t *bv = json_object_get(msg, "bericht");
    const char *bid = json_string_value(bv);
    outcome o;
    if (!bid || !*bid || strlen(bid) > 64) {
        memset(&o, 0, sizeof o);
        FAIL(&o, ACDM_EINVAL, NULL, "bericht: required (a bericht id)");
        bid = NULL;
    } else if (reassign) {
        json_t *av = json_object_get(msg, "agent");
        do_reassign(e, &s->who, bid, json_string_value(av), &o);
    } else {
        do_whisper(e, &s->who, bid, json_object_get(msg, "text"), &o);
    }
    json_t *j;
    if (!o.rc) {
        j = json_pack("{s:s, s:s, s:s}", "type", "ack", "re", type, "bericht", bid);
    } else {
        char text[600];
        snprintf(text, sizeof text, "%s: %s", type, o.text);
        j = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?}", "type", "error", "code", code_of(o.rc), "text", text,
                      "re", type, "bericht", bid, "why", o.why);
    }
    acdm_api_send_committed(e, s, j, o.rc ? NULL : type, bid);
    return true;
}

void acdm_supervise_hide_whispers(json_t *bericht)
{
    json_t *evs = json_object_get(bericht, "events");
    for (size_t i = json_array_size(evs); i-- > 0;) {
        const char *type = json_string_value(json_object_get(json_array_get(evs, i), "type"));
        if (type && !strcmp(type, "whisper")) json_array_remove(evs, i);
    }
}

/* ------------------------------------------------------------------ REST */

static void post_action(acdm_engine *e, acdm_req *r, bool reassign)
{
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor", &who)) return;
    static const char *const known_r[] = {"agent", NULL};
    static const char *const known_w[] = {"text", NULL};
    json_t *body = acdm_api_body_object(r, false, reassign ? known_r : known_w);
    if (!body) return;
    const char *bid = acdm_req_param(r, "id");
    json_t *v = json_object_get(body, reassign ? "agent" : "text");
    if (v && !json_is_string(v)) {
        acdm_http_problem(r, 400, "Invalid field", "%s: expected a string", reassign ? "agent" : "text");
        json_decref(body);
        return;
    }
    outcome o;
    if (reassign) do_reassign(e, &who, bid, json_string_value(v), &o);
    else do_whisper(e, &who, bid, v, &o);
    json_decref(body);
    if (o.rc) {
        int st = o.why ? http_status_of(o.rc) : 400;
        acdm_http_problem(r, st, st == 404 ? "Not found" : st == 400 ? "Invalid field" : "Not possible now", "%s", o.text);
        return;
    }
    json_t *bj = acdm_engine_bericht_json(e, bid);
    acdm_api_reply_committed(e, r, 200, bj ? bj : json_pack("{s:s}", "id", bid));
}

static void post_reassign(void *user, acdm_req *r) { post_action(user, r, true); }
static void post_whisper(void *user, acdm_req *r) { post_action(user, r, false); }

int acdm_supervise_register(acdm_engine *e)
{
    acdm_http *h = acdm_engine_http(e);
    acdm_http_route(h, "POST", "/api/v1/berichten/{id}/reassign", post_reassign, e);
    acdm_http_route(h, "POST", "/api/v1/berichten/{id}/whisper", post_whisper, e);
    return 0;
}
