/* chatbot.c -- the chatbot handoff channel: a bot platform hands a conversation to humans with
 * POST /channels/<instance>/handoff; agents' replies and the end of the conversation go back to
 * the bot platform by callback. See docs/webchat.md ("Chatbot handoff"). */
#include <acdm/plugin.h>
#include <acdm/plugin_util.h>

#include "handoff.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Instance config ("config" of a channel with "plugin": "chatbot"):
 *   reply_url      string  http(s) URL agents' replies are POSTed to: {conversation_id, bericht,
 *                          agent, text} (optional: without it replies are only stored)
 *   return_url     string  http(s) URL told when the agent ended the conversation, so the bot
 *                          takes over again: {conversation_id, bericht, event: "ended"} (optional)
 *   callback_token string  sent as "Authorization: Bearer" with both callbacks (optional)
 *
 * Routes under /channels/<instance> (bearer: an admin token or one for role channel:<instance>):
 *   POST /handoff   the handoff document (handoff.h) -> 201 {bericht, conversation_id, outcome:
 *                   "queued"}; the same conversation_id again -> 200 (outcome "duplicate", the
 *                   same bericht); 400 problem+json naming the field; 401/403
 *   POST /messages  {conversation_id, text}: a later customer message of a handed-off
 *                   conversation -> 200 {bericht, outcome: "followup"}
 */

#define WC_EPERM (-7)

typedef struct cfg {
    char reply_url[1024], return_url[1024], callback_token[512];
    char cb_auth[600];           /* "Authorization: Bearer <callback_token>", or "" */
} cfg;

static const acdm_cfg_spec cfg_spec[] = {
    ACDM_CFG_STR(cfg, "reply_url", reply_url, NULL, .check = acdm_cfg_check_url,
                 .help = "where agents' replies are POSTed"),
    ACDM_CFG_STR(cfg, "return_url", return_url, NULL, .check = acdm_cfg_check_url,
                 .help = "told when the agent ended the conversation"),
    ACDM_CFG_STR(cfg, "callback_token", callback_token, NULL, .min = 1,
                 .help = "sent as Authorization: Bearer with both callbacks"),
    ACDM_CFG_END
};

/* Work in flight: a handoff or message waiting for its commit (token set), or a callback on its
 * way to the bot platform (tag set). After the instance's stop the host calls back for none of
 * them (no submit callback, outbound requests cancelled): destroy frees what is left. */
typedef struct pend {
    struct pend *prev, *next;
    struct chatbot *b;
    void *token;
    char conv[201];
    bool followup;
    char tag[72];                /* "R<bericht>" for a reply, "E<bericht>" for the return */
} pend;

typedef struct chatbot {
    const acdm_host *host;
    acdm_instance *inst;
    cfg c;
    char *body;
    pend *flights;
    unsigned long handoffs, duplicates, replies;
} chatbot;

static pend *pend_new(chatbot *b)
{
    pend *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->b = b;
    p->next = b->flights;
    if (b->flights) b->flights->prev = p;
    b->flights = p;
    return p;
}

static void pend_free(chatbot *b, pend *p)
{
    if (p->prev) p->prev->next = p->next; else b->flights = p->next;
    if (p->next) p->next->prev = p->prev;
    free(p);
}

static int cfg_parse(const char *text, cfg *c, char *err, size_t errlen)
{
    if (acdm_cfg_parse(cfg_spec, text, c, err, errlen) < 0) return -1;
    if (c->callback_token[0])
        snprintf(c->cb_auth, sizeof c->cb_auth, "Authorization: Bearer %s", c->callback_token);
    return 0;
}

static int cb_check_config(const char *config_json, char *err, size_t errlen)
{
    cfg c;
    return cfg_parse(config_json, &c, err, errlen);
}

/* ---------------------------------------------------------------- HTTP helpers */

static void answer(chatbot *b, acdm_http_response *resp, int status, json_t *doc, bool problem)
{
    free(b->body);
    b->body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    resp->status = status;
    resp->content_type = problem ? "application/problem+json" : "application/json";
    resp->body = b->body;
}

static void problem(chatbot *b, acdm_http_response *resp, int status, const char *title, const char *detail)
{
    answer(b, resp, status, json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title", title,
                                      "status", status, "detail", detail), true);
}

/* Every check goes through the host's check_token, so its failed-sign-in limiter covers these
 * routes: a wrong token counts against the caller's address, and a blocked address gets 429
 * (ACDM_P_EFULL) whatever it sends. Then the body must be application/json (415 otherwise: a
 * web page can send text/plain or a form anywhere without a CORS preflight). */
static bool authorized(chatbot *b, acdm_instance *inst, const acdm_http_request *req, acdm_http_response *resp)
{
    const char *a = req->authorization;
    if (!a || strncasecmp(a, "Bearer ", 7) || !a[7]) {
        problem(b, resp, 401, "Unauthorized", "a bearer token is required (admin, or one issued for "
                "this chatbot instance: acdmctl token create --role channel:<instance>)");
        return false;
    }
    if (!ACDM_HOST_HAS(b->host, check_token) || !b->host->check_token) {
        problem(b, resp, 503, "Not supported", "this acdm core cannot check tokens for plugins");
        return false;
    }
    int rc = b->host->check_token(inst, a + 7);
    if (rc == ACDM_P_EFULL) {
        problem(b, resp, 429, "Too Many Requests", "too many failed sign-ins from this address; retry later");
        return false;
    }
    if (rc == WC_EPERM) { problem(b, resp, 403, "Forbidden", "this token is not for this chatbot instance"); return false; }
    if (rc < 0) { problem(b, resp, 401, "Unauthorized", "unknown or revoked token"); return false; }
    if (!acdm_content_type_is(req, "application/json")) {
        problem(b, resp, 415, "Unsupported Media Type", "send the body as Content-Type: application/json");
        return false;
    }
    return true;
}

static const char *outcome_name(acdm_submit_outcome o)
{
    switch (o) {
    case ACDM_SUBMIT_QUEUED: return "queued";
    case ACDM_SUBMIT_DUPLICATE: return "duplicate";
    case ACDM_SUBMIT_FOLLOWUP: return "followup";
    case ACDM_SUBMIT_CLOSED: return "closed";
    default: return "error";
    }
}

static void submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome outcome,
                      const char *bericht_id, const char *text)
{
    (void)inst;
    chatbot *b = priv;
    pend *p = user;
    json_t *d;
    int status;
    bool prob = false;
    if (outcome == ACDM_SUBMIT_ERROR) {
        status = 503;
        prob = true;
        d = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title", "Not stored", "status", 503,
                      "detail", text ? text : "the handoff could not be stored; retry with the same conversation_id");
    } else {
        status = outcome == ACDM_SUBMIT_QUEUED || outcome == ACDM_SUBMIT_CLOSED ? 201 : 200;
        if (p->followup && outcome == ACDM_SUBMIT_QUEUED) status = 201;
        d = json_pack("{s:s?, s:s, s:s}", "bericht", bericht_id, "conversation_id", p->conv,
                      "outcome", outcome_name(outcome));
        if (outcome == ACDM_SUBMIT_CLOSED && text) json_object_set_new(d, "closed_text", json_string(text));
        if (outcome == ACDM_SUBMIT_DUPLICATE) b->duplicates++;
        else if (!p->followup) b->handoffs++;
        if (!p->followup && bericht_id) {   /* a redelivery is answered from here, even later */
            char key[220];
            snprintf(key, sizeof key, "handoff:%s", p->conv);
            b->host->kv_set(b->inst, key, bericht_id, strlen(bericht_id));
        }
    }
    char *s = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    acdm_http_response r = {.status = status, .body = s,
                            .content_type = prob ? "application/problem+json" : "application/json"};
    b->host->http_respond(p->token, &r);
    free(s);
    pend_free(b, p);
}

/* ---------------------------------------------------------------- POST /handoff, /messages */

static void post_handoff(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    chatbot *b = priv;
    if (!authorized(b, inst, req, resp)) return;
    handoff h;
    char err[300];
    if (handoff_parse(req->body, req->body_len, &h, err, sizeof err)) {
        problem(b, resp, 400, "Invalid handoff", err);
        return;
    }
    char conv[300], from[600], idem[220];
    snprintf(conv, sizeof conv, "%s:%s", b->host->instance_name(inst), h.conversation_id);
    snprintf(idem, sizeof idem, "handoff:%s", h.conversation_id);
    char *known = NULL;
    size_t klen = 0;
    if (b->host->kv_get(inst, idem, &known, &klen) == 0 && known) {
        /* redelivery of a handoff we stored: the same bericht, never a second one */
        b->duplicates++;
        answer(b, resp, 200, json_pack("{s:s, s:s, s:s}", "bericht", known, "conversation_id",
                                       h.conversation_id, "outcome", "duplicate"), false);
        b->host->free(known);
        handoff_free(&h);
        return;
    }
    if (h.address && *h.address) snprintf(from, sizeof from, "%s", h.address);
    else snprintf(from, sizeof from, "bot:%s", h.customer_id);
    char *lines = NULL;
    char *pj = handoff_document(&h, "chatbot", &lines);
    char *sk = h.skills ? json_dumps(h.skills, JSON_COMPACT) : NULL;
    pend *p = pj ? pend_new(b) : NULL;
    int rc = -1;
    if (p) {
        p->token = resp->token;
        snprintf(p->conv, sizeof p->conv, "%s", h.conversation_id);
        acdm_inbound in = {.struct_size = sizeof in, .kind = "chat", .queue = h.queue, .from = from,
                           .customer_id = h.customer_id, .conversation = conv, .idempotency_key = idem,
                           .priority = h.priority, .skills_json = sk,
                           .subject = h.summary && *h.summary ? h.summary : h.intent,
                           .text = lines && *lines ? lines : NULL, .payload_json = pj};
        rc = b->host->submit(inst, &in, submitted, p);
    }
    if (rc < 0) {
        if (p) pend_free(b, p);
        problem(b, resp, 400, "Invalid handoff", rc == -2 ? "queue: no such queue" :
                "the core refused the handoff (see the log); check queue and skills");
    } else {
        resp->defer = 1;
    }
    free(pj); free(lines); free(sk);
    handoff_free(&h);
}

static void post_message(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    chatbot *b = priv;
    if (!authorized(b, inst, req, resp)) return;
    json_error_t je;
    json_t *o = req->body ? json_loadb(req->body, req->body_len, 0, &je) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        problem(b, resp, 400, "Invalid message", "body: expected a JSON object {conversation_id, text}");
        return;
    }
    const char *conv_id = json_string_value(json_object_get(o, "conversation_id"));
    const char *text = json_string_value(json_object_get(o, "text"));
    const char *why = !conv_id || !*conv_id ? "conversation_id: required string"
                    : strlen(conv_id) > 200 ? "conversation_id: longer than 200 characters"
                    : !text || !*text ? "text: required string"
                    : strlen(text) > HANDOFF_MAX_TEXT ? "text: too long" : NULL;
    if (why) { json_decref(o); problem(b, resp, 400, "Invalid message", why); return; }
    char conv[300], from[220];
    snprintf(conv, sizeof conv, "%s:%s", b->host->instance_name(inst), conv_id);
    snprintf(from, sizeof from, "bot:%s", conv_id);
    pend *p = pend_new(b);
    int rc = -1;
    if (p) {
        p->token = resp->token;
        p->followup = true;
        snprintf(p->conv, sizeof p->conv, "%s", conv_id);
        acdm_inbound in = {.struct_size = sizeof in, .kind = "chat", .from = from, .conversation = conv,
                           .text = text};
        rc = b->host->submit(inst, &in, submitted, p);
    }
    if (rc < 0) { if (p) pend_free(b, p); problem(b, resp, 400, "Invalid message", "the core refused the message"); }
    else resp->defer = 1;
    json_decref(o);
}

/* ---------------------------------------------------------------- callbacks to the bot platform */

static void callback_done(acdm_instance *inst, void *priv, void *user, int status, const char *body,
                          size_t body_len, const char *error)
{
    (void)body; (void)body_len;
    chatbot *b = priv;
    pend *p = user;
    const char *bericht = p->tag;
    if (bericht[0] == 'R') {
        char pj[300];
        bool ok = status >= 200 && status < 300;
        snprintf(pj, sizeof pj, "{\"delivery\":\"%s\",\"attempts\":1%s%s%s}", ok ? "delivered" : "failed",
                 ok ? "" : ",\"error\":\"", ok ? "" : (error ? "transport error" : "HTTP error"), ok ? "" : "\"");
        b->host->delivery_report(inst, bericht + 1, NULL, pj);
    } else if (status < 200 || status >= 300) {
        b->host->log(inst, ACDM_PLOG_WARN, "return_url: the bot platform did not take conversation of "
                     "bericht %s back (status %d%s%s)", bericht + 1, status, error ? ": " : "", error ? error : "");
    }
    pend_free(b, p);
}

static void callback(chatbot *b, const char *url, const char *tag_bericht, json_t *doc)
{
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    const char *headers[3] = {"Content-Type: application/json", b->c.cb_auth[0] ? b->c.cb_auth : NULL, NULL};
    acdm_http_out req = {.struct_size = sizeof req, .method = "POST", .url = url, .headers = headers,
                         .body = body, .body_len = body ? strlen(body) : 0, .timeout_ms = 10000};
    pend *p = body ? pend_new(b) : NULL;
    if (p) snprintf(p->tag, sizeof p->tag, "%s", tag_bericht);
    if (p && b->host->http_request(b->inst, &req, callback_done, p) < 0) pend_free(b, p);
    free(body);
}

static const char *conv_id_of(chatbot *b, const char *conv)
{
    const char *iname = b->host->instance_name(b->inst);
    size_t n = strlen(iname);
    return conv && !strncmp(conv, iname, n) && conv[n] == ':' ? conv + n + 1 : conv;
}

static int cb_deliver(acdm_instance *inst, void *priv, const acdm_reply *r)
{
    chatbot *b = priv;
    b->replies++;
    if (!b->c.reply_url[0]) {
        b->host->delivery_report(inst, r->bericht_id, r->text,
                                 "{\"delivery\":\"failed\",\"error\":\"no reply_url configured for this chatbot instance\"}");
        return 0;
    }
    char tag[64];
    snprintf(tag, sizeof tag, "R%s", r->bericht_id);
    callback(b, b->c.reply_url, tag, json_pack("{s:s?, s:s, s:s?, s:s?}", "conversation_id",
             conv_id_of(b, r->conversation), "bericht", r->bericht_id, "agent", r->agent, "text", r->text));
    return 0;
}

static void cb_event(acdm_instance *inst, void *priv, const acdm_event_info *ev)
{
    (void)inst;
    chatbot *b = priv;
    if (ev->type != ACDM_EV_ENDED || !b->c.return_url[0]) return;
    char tag[64];
    snprintf(tag, sizeof tag, "E%s", ev->bericht_id);
    callback(b, b->c.return_url, tag, json_pack("{s:s?, s:s, s:s}", "conversation_id",
             conv_id_of(b, ev->conversation), "bericht", ev->bericht_id, "event", "ended"));
}

/* ---------------------------------------------------------------- life cycle */

static int cb_init(acdm_instance *inst, void *priv, const acdm_host *host, const char *config_json,
                   char *err, size_t errlen)
{
    chatbot *b = priv;
    b->host = host;
    b->inst = inst;
    return cfg_parse(config_json, &b->c, err, errlen);
}

static int cb_start(acdm_instance *inst, void *priv)
{
    chatbot *b = priv;
    if (b->host->http_route(inst, "POST", "/handoff", post_handoff) < 0 ||
        b->host->http_route(inst, "POST", "/messages", post_message) < 0)
        return -1;
    b->host->log(inst, ACDM_PLOG_INFO, "chatbot handoff at POST /channels/%s/handoff", b->host->instance_name(inst));
    return 0;
}

static int cb_reload(acdm_instance *inst, void *priv, const char *config_json, char *err, size_t errlen)
{
    (void)inst;
    chatbot *b = priv;
    cfg c;
    if (cfg_parse(config_json, &c, err, errlen)) return -1;
    b->c = c;
    return 0;
}

static void cb_destroy(acdm_instance *inst, void *priv)
{
    (void)inst;
    chatbot *b = priv;
    free(b->body);
    while (b->flights) pend_free(b, b->flights);   /* never called back after stop */
}

static const acdm_plugin descriptor = ACDM_PLUGIN_INIT(
    .name = "chatbot",
    .version = "1.0.0",
    .description = "Chatbot handoff: a bot hands a conversation (transcript, summary) to an agent",
    .kinds = "chat",
    .instance_size = sizeof(chatbot),
    .check_config = cb_check_config,
    .init = cb_init,
    .start = cb_start,
    .reload = cb_reload,
    .deliver = cb_deliver,
    .on_event = cb_event,
    .destroy = cb_destroy,
);

ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &descriptor; }
