/* template.c -- the skeleton of an acdm channel plugin, to copy: a sender POSTs a message, it
 * becomes a bericht (acknowledged only after the commit), an agent's reply is POSTed back to the
 * sender's system and its delivery reported, life events are passed on, and the config is
 * reloaded in place. Copy channels/template/ to channels/<yours>/ (or out of the tree: see its
 * Makefile and docs/plugin-guide.md), rename "template", and grow it from here.
 *
 * Instance config ("config" of a channel with "plugin": "template"), read through the
 * config-spec table below (<acdm/plugin_util.h>):
 *   token       string  required, 16..255 bytes: senders send "Authorization: Bearer <token>"
 *                       (never shipped open: an instance without a token does not start)
 *   reply_url   string  http(s) URL agents' replies are POSTed to as {bericht, to, agent, text};
 *                       without it a reply is reported failed
 *   kind        string  the kind of the berichten, default "chat"
 *   notify_ended bool   POST {bericht, event: "ended"} to reply_url when a bericht ends
 *                       (default false)
 *
 * Route (under /channels/<instance>):
 *   POST /messages  {from, text, id?, conversation?} -> 201 {bericht, outcome} once stored
 *                   (200 for a duplicate or follow-up); 400/401/415 problem+json; 503 when the
 *                   core could not store it (retry with the same id)
 */
#include <acdm/plugin.h>
#include <acdm/plugin_util.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- config */

typedef struct {
    char token[256];
    char reply_url[1024];
    char kind[16];
    bool notify_ended;
} tpl_cfg;

static int kind_check(const acdm_cfg_spec *s, const void *field, char *err, size_t errlen)
{
    static const char *const kinds[] = {"chat", "email", "sms", "whatsapp"};
    (void)s;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp((const char *)field, kinds[i])) return 0;
    snprintf(err, errlen, "expected chat, email, sms or whatsapp");
    return -1;
}

static const acdm_cfg_spec tpl_spec[] = {
    ACDM_CFG_STR(tpl_cfg, "token", token, NULL, .required = 1, .min = 16,
                 .help = "the bearer token senders use, at least 16 characters"),
    ACDM_CFG_STR(tpl_cfg, "reply_url", reply_url, NULL, .check = acdm_cfg_check_url),
    ACDM_CFG_STR(tpl_cfg, "kind", kind, "\"chat\"", .check = kind_check),
    ACDM_CFG_BOOL(tpl_cfg, "notify_ended", notify_ended, "false"),
    ACDM_CFG_END
};

/* ---------------------------------------------------------------- the instance */

/* Work in flight: a POST /messages waiting for its commit, or a reply on its way to reply_url.
 * The host never calls back for work in flight once the instance stops (the submit callback
 * is not called, outbound requests are cancelled): destroy frees what is left on the list. */
typedef struct flight {
    struct flight *prev, *next;
    void *token;                 /* a message: the deferred response */
    char bericht[64];            /* a reply: its bericht and message id */
    char message[64];
} flight;

typedef struct {
    const acdm_host *host;
    acdm_instance *inst;
    tpl_cfg c;
    flight *flights;
    unsigned long received, delivered, failed, events;
    char body[1024];             /* the last immediate answer (the host copies it) */
} tpl;

static flight *flight_new(tpl *t)
{
    flight *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->next = t->flights;
    if (t->flights) t->flights->prev = f;
    t->flights = f;
    return f;
}

static void flight_done(tpl *t, flight *f)
{
    if (f->prev) f->prev->next = f->next; else t->flights = f->next;
    if (f->next) f->next->prev = f->prev;
    free(f);
}

static void answer_problem(tpl *t, acdm_http_response *resp, int status, const char *title,
                           const char *detail)
{
    acdm_problem(resp, status, title, detail, t->body, sizeof t->body);
}

/* ---------------------------------------------------------------- POST /messages */

/* The body of POST /messages, read with the same spec table as the config: types, lengths,
 * required keys and unknown keys ("txt: unknown key (did you mean \"text\"?)") checked. */
typedef struct {
    char from[256];
    char text[4096];
    char id[128];
    char conversation[128];
} tpl_msg;

static const acdm_cfg_spec msg_spec[] = {
    ACDM_CFG_STR(tpl_msg, "from", from, NULL, .required = 1, .min = 1),
    ACDM_CFG_STR(tpl_msg, "text", text, NULL),
    ACDM_CFG_STR(tpl_msg, "id", id, NULL),
    ACDM_CFG_STR(tpl_msg, "conversation", conversation, NULL),
    ACDM_CFG_END
};

static void submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome outcome,
                      const char *bericht_id, const char *text)
{
    (void)inst;
    tpl *t = priv;
    flight *p = user;
    char body[512];
    acdm_http_response r = {.status = 201, .content_type = "application/json", .body = body};
    static const char *const names[] = {"queued", "duplicate", "followup", "closed", "error"};
    if (outcome == ACDM_SUBMIT_ERROR) {
        acdm_problem(&r, 503, "Not stored", text ? text : "the message could not be stored; retry "
                     "with the same id", body, sizeof body);
    } else {
        acdm_buf b = {0, 0, 0, 0};
        acdm_buf_puts(&b, "{\"bericht\":");
        acdm_buf_json_str(&b, bericht_id);
        acdm_buf_printf(&b, ",\"outcome\":\"%s\"", names[outcome]);
        if (outcome == ACDM_SUBMIT_CLOSED && text) {
            acdm_buf_puts(&b, ",\"closed_text\":");
            acdm_buf_json_str(&b, text);
        }
        acdm_buf_add(&b, "}", 1);
        snprintf(body, sizeof body, "%s", b.p && !b.oom ? b.p : "{}");
        acdm_buf_free(&b);
        if (outcome == ACDM_SUBMIT_DUPLICATE || outcome == ACDM_SUBMIT_FOLLOWUP) r.status = 200;
    }
    /* acknowledged only now: the bericht is committed (plugin.h, "Acknowledgement rule") */
    t->host->http_respond(p->token, &r);
    flight_done(t, p);
}

static void post_message(acdm_instance *inst, void *priv, const acdm_http_request *req,
                         acdm_http_response *resp)
{
    tpl *t = priv;
    if (!acdm_bearer_ok(req->authorization, t->c.token)) {
        answer_problem(t, resp, 401, "Unauthorized", "send Authorization: Bearer <the instance's token>");
        return;
    }
    if (!req->content_type || strncmp(req->content_type, "application/json", 16)) {
        answer_problem(t, resp, 415, "Unsupported Media Type", "send Content-Type: application/json");
        return;
    }
    tpl_msg m;
    char why[256] = "";
    if (!req->body || strlen(req->body) != req->body_len) {
        answer_problem(t, resp, 400, "Invalid message", "body: expected a JSON object {from, text, id, conversation}");
        return;
    }
    if (acdm_cfg_parse(msg_spec, req->body, &m, why, sizeof why) < 0) {
        answer_problem(t, resp, 400, "Invalid message", why);
        return;
    }
    flight *p = flight_new(t);
    if (!p) { answer_problem(t, resp, 503, "Busy", "out of memory"); return; }
    p->token = resp->token;
    acdm_inbound in = {.struct_size = sizeof in, .kind = t->c.kind, .from = m.from,
                       .conversation = m.conversation[0] ? m.conversation : NULL,
                       .idempotency_key = m.id[0] ? m.id : NULL, .text = m.text[0] ? m.text : NULL};
    int rc = ACDM_HOST_HAS(t->host, submit_err)
        ? t->host->submit_err(inst, &in, submitted, p, why, sizeof why)
        : t->host->submit(inst, &in, submitted, p);
    if (rc < 0) {
        flight_done(t, p);
        answer_problem(t, resp, 400, "Invalid message", why[0] ? why : acdm_plugin_strerror(rc));
        return;
    }
    t->received++;
    resp->defer = 1;             /* answered from submitted(), after the commit */
}

/* ---------------------------------------------------------------- replies out */

static void reply_done(acdm_instance *inst, void *priv, void *user, int status, const char *body,
                       size_t len, const char *error)
{
    (void)body; (void)len;
    tpl *t = priv;
    flight *o = user;
    bool ok = status >= 200 && status < 300;
    acdm_buf pj = {0, 0, 0, 0};
    acdm_buf_printf(&pj, "{\"delivery\":\"%s\",\"attempts\":1", ok ? "delivered" : "failed");
    if (o->message[0]) { acdm_buf_puts(&pj, ",\"message\":"); acdm_buf_json_str(&pj, o->message); }
    if (!ok) {
        char e[160];
        if (status < 0) snprintf(e, sizeof e, "%s", error ? error : "transport error");
        else snprintf(e, sizeof e, "HTTP %d from reply_url", status);
        acdm_buf_puts(&pj, ",\"error\":");
        acdm_buf_json_str(&pj, e);
    }
    acdm_buf_add(&pj, "}", 1);
    if (!pj.oom) t->host->delivery_report(inst, o->bericht, NULL, pj.p);
    acdm_buf_free(&pj);
    if (ok) t->delivered++; else t->failed++;
    flight_done(t, o);
}

static int post_json(tpl *t, const char *doc, void *user)
{
    char auth[300];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", t->c.token);
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    acdm_http_out req = {.struct_size = sizeof req, .method = "POST", .url = t->c.reply_url,
                         .headers = headers, .body = doc, .body_len = strlen(doc), .timeout_ms = 10000};
    return t->host->http_request(t->inst, &req, reply_done, user);
}

static int tpl_deliver(acdm_instance *inst, void *priv, const acdm_reply *r)
{
    tpl *t = priv;
    const char *mid = r->struct_size >= offsetof(acdm_reply, message_id) + sizeof r->message_id
                      ? r->message_id : NULL;
    if (!t->c.reply_url[0]) {
        t->failed++;
        return t->host->delivery_report(inst, r->bericht_id, NULL,
            "{\"delivery\":\"failed\",\"error\":\"no reply_url configured for this instance\"}");
    }
    flight *o = flight_new(t);
    if (!o) return ACDM_P_ENOMEM;
    snprintf(o->bericht, sizeof o->bericht, "%s", r->bericht_id);
    snprintf(o->message, sizeof o->message, "%s", mid ? mid : "");
    acdm_buf doc = {0, 0, 0, 0};
    acdm_buf_puts(&doc, "{\"bericht\":");
    acdm_buf_json_str(&doc, r->bericht_id);
    acdm_buf_puts(&doc, ",\"to\":");
    acdm_buf_json_str(&doc, r->to);
    acdm_buf_puts(&doc, ",\"agent\":");
    acdm_buf_json_str(&doc, r->agent);
    acdm_buf_puts(&doc, ",\"text\":");
    acdm_buf_json_str(&doc, r->text);
    acdm_buf_add(&doc, "}", 1);
    int rc = doc.oom ? ACDM_P_ENOMEM : post_json(t, doc.p, o);
    acdm_buf_free(&doc);
    if (rc < 0) flight_done(t, o);
    return rc < 0 ? rc : 0;      /* 0: queued for sending; the delivery report follows */
}

/* ---------------------------------------------------------------- events */

static void tpl_event(acdm_instance *inst, void *priv, const acdm_event_info *ev)
{
    tpl *t = priv;
    t->events++;
    if (ev->type != ACDM_EV_ENDED) return;
    t->host->log(inst, ACDM_PLOG_INFO, "bericht %s ended", ev->bericht_id);
    if (!t->c.notify_ended || !t->c.reply_url[0]) return;
    flight *o = flight_new(t);
    if (!o) return;
    snprintf(o->bericht, sizeof o->bericht, "%s", ev->bericht_id);
    snprintf(o->message, sizeof o->message, "ended");
    acdm_buf doc = {0, 0, 0, 0};
    acdm_buf_puts(&doc, "{\"bericht\":");
    acdm_buf_json_str(&doc, ev->bericht_id);
    acdm_buf_puts(&doc, ",\"event\":\"ended\"}");
    if (doc.oom || post_json(t, doc.p, o) < 0) flight_done(t, o);
    acdm_buf_free(&doc);
}

/* ---------------------------------------------------------------- life cycle */

static int tpl_check_config(const char *config_json, char *err, size_t errlen)
{
    tpl_cfg c;
    return acdm_cfg_parse(tpl_spec, config_json, &c, err, errlen);
}

static int tpl_init(acdm_instance *inst, void *priv, const acdm_host *host, const char *config_json,
                    char *err, size_t errlen)
{
    tpl *t = priv;
    t->host = host;
    t->inst = inst;
    if (acdm_cfg_parse(tpl_spec, config_json, &t->c, err, errlen) < 0) return -1;
    if (!ACDM_HOST_HAS(host, http_respond)) {
        snprintf(err, errlen, "this acdm core cannot defer HTTP responses: upgrade acdm");
        return -1;
    }
    return 0;
}

static int tpl_start(acdm_instance *inst, void *priv)
{
    tpl *t = priv;
    if (t->host->http_route(inst, "POST", "/messages", post_message) < 0) return -1;
    t->host->log(inst, ACDM_PLOG_INFO, "messages at POST /channels/%s/messages",
                 t->host->instance_name(inst));
    return 0;
}

static int tpl_reload(acdm_instance *inst, void *priv, const char *config_json, char *err, size_t errlen)
{
    tpl *t = priv;
    tpl_cfg c;
    if (acdm_cfg_parse(tpl_spec, config_json, &c, err, errlen) < 0) return -1;   /* old one kept */
    t->c = c;
    t->host->log(inst, ACDM_PLOG_INFO, "config reloaded");
    return 0;
}

static char *tpl_status(acdm_instance *inst, void *priv)
{
    (void)inst;
    tpl *t = priv;
    acdm_buf b = {0, 0, 0, 0};
    acdm_buf_printf(&b, "{\"healthy\":true,\"received\":%lu,\"delivered\":%lu,\"failed\":%lu,"
                    "\"events\":%lu}", t->received, t->delivered, t->failed, t->events);
    if (b.oom) { acdm_buf_free(&b); return NULL; }
    return b.p;
}

static void tpl_destroy(acdm_instance *inst, void *priv)
{
    (void)inst;
    tpl *t = priv;
    while (t->flights) flight_done(t, t->flights);   /* never called back after stop */
}

static const acdm_plugin descriptor = ACDM_PLUGIN_INIT(
    .name = "template",
    .version = "1.0.0",
    .description = "Channel skeleton: POST /messages in, replies to reply_url out",
    .kinds = "chat,email,sms,whatsapp",
    .instance_size = sizeof(tpl),
    .check_config = tpl_check_config,
    .init = tpl_init,
    .start = tpl_start,
    .reload = tpl_reload,
    .deliver = tpl_deliver,
    .on_event = tpl_event,
    .destroy = tpl_destroy,
    .status_json = tpl_status,
);

ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &descriptor; }
