/* whatsapp.c -- the WhatsApp Business channel plugin (Meta's Cloud API). One instance per
 * business phone number. Config keys: docs/operations.md ("WhatsApp channel").
 *
 * Routes under /channels/<instance>:
 *   GET  /webhook   Meta's verification handshake: hub.mode=subscribe and hub.verify_token
 *                   (constant-time) -> 200 with hub.challenge, else 403
 *   POST /webhook   every delivery signed X-Hub-Signature-256 (HMAC-SHA256 of the raw body with
 *                   the app secret, constant-time) else 401 and nothing stored; every entry x
 *                   change x message/status/error processed; answered 200 only after every
 *                   message of the delivery is committed (503 otherwise: Meta redelivers, the
 *                   wamid keeps that from doubling)
 *
 * Inbound media is fetched after the commit, off the request path (GET /{media-id} -> short-lived
 * URL -> GET with the bearer; size cap per type; sha256 checked; a fresh URL once when the first
 * has expired), stored through the host's attachment store and joined to the conversation as a
 * follow-up. Outbound: POST /{version}/{phone-number-id}/messages with the bearer, paced (one
 * message per pair_interval_ms per citizen, rate_per_s for the number), free text only inside
 * the 24-hour customer-service window (opened by the citizen's messages), templates from the
 * config with their parameter count checked. Statuses sent/delivered/read/failed map onto the
 * agent's message through kv "s:<wamid>" and never go backwards. */
#include <acdm/plugin.h>
#include <acdm/plugin_util.h>

#include "bot.h"         /* channels/webchat/bot.h: the web chat's bot protocols (Rasa) */
#include "botstate.h"    /* channels/sms/botstate.h: bot-first state and kv helpers, shared with sms */
#include "jcfg.h"        /* channels/sms/jcfg.h: the config readers (strings, integers, secret files), shared with sms */
#include "outbox.h"      /* channels/sms/outbox.h: the pending-id list in kv and the retry backoff, shared with sms */
#include "sig.h"
#include "wa_parse.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define STATUS_TTL_S (30u * 24u * 3600u)
#define WINDOW_TTL_S (3u * 24u * 3600u)
#define WINDOW_S 86400

typedef struct tmpl {
    char *name, *language, *label;
    int params;
} tmpl;

typedef struct cfg {
    char *phone_number_id, *graph_url, *api_version;
    char *access_token, *app_secret, *verify_token;
    tmpl *templates;
    size_t n_templates;
    int pair_interval_ms, rate_per_s, retries, retry_ms;
    char *bot_url;               /* bot first: the bot's URL (Rasa REST), or NULL */
    const bot_protocol *bot;
    int bot_timeout_ms;
} cfg;

/* An outbound message waiting for its turn (pacing) or its answer. */
typedef struct outq {
    struct outq *next;
    char id[80], bericht[64], to[170];
    char *body;                  /* the Graph API request JSON */
    char *text;                  /* what the agent sees (for delivery reports) */
    int tries;
    int64_t not_before_ms;
    bool in_flight;
    struct sub *ack;             /* bot first: the citizen's message this answers */
} outq;

/* Recently messaged citizens: the pair-rate pacing. */
typedef struct recent {
    struct recent *next;
    char to[170];
    int64_t last_ms;
} recent;

struct wa;

/* A POST /webhook whose messages wait for their commit. */
typedef struct batch {
    struct batch *prev, *next;
    struct wa *w;
    void *token;
    int outstanding;
    bool in_handler, failed, answered;
    char why[600];
} batch;

/* One message of a batch waiting for its submit callback. Messages of one conversation are
 * submitted one after the other (the next after the previous one's callback): a follow-up
 * submitted before the first message of its conversation is committed would become a second
 * bericht. */
typedef struct sub {
    struct sub *next;            /* wa.subs, in arrival order */
    batch *b;
    bool submitted;
    char wamid[260], from[170], conv[200];
    char *text, *payload, *subject, *customer_id;
    char *media_id, *mime, *sha256, *filename, *caption;
    wa_type type;
} sub;

/* A media download after the commit. */
typedef struct mfetch {
    struct mfetch *next;
    struct wa *w;
    char bericht[64], wamid[260], from[170];
    char *media_id, *mime, *sha256, *filename;
    wa_type type;
    int url_tries;
    bool gone;
} mfetch;

typedef struct wa {
    const acdm_host *host;
    acdm_instance *inst;
    cfg c;
    char body[1024];
    char *tbody;                 /* GET /templates answer (the host copies it after the handler) */
    batch *batches;
    sub *subs;
    outq *out;
    recent *recents;
    mfetch *fetches;
    acdm_timer *pump_timer;
    int64_t sec_start_ms;
    int sec_count;
    bool token_bad;
    char last_error[256];
    struct { unsigned long received, rejected, skipped, sent, send_failed, statuses, media, media_failed; } n;
} wa;

/* ---------------------------------------------------------------- helpers */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void new_id(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        int64_t t = now_ms();
        memset(b, 0, sizeof b);
        memcpy(b, &t, sizeof t);
    }
    for (int k = 0; k < 16; k++) snprintf(out + 2 * k, 3, "%02x", b[k]);
}

static bool query_raw_of(const acdm_http_request *req, const char **q)
{
    if (req->struct_size >= offsetof(acdm_http_request, query_raw) + sizeof req->query_raw && req->query_raw) {
        *q = req->query_raw;
        return true;
    }
    *q = req->query;
    return false;
}

/* An argument of the query (raw from an ABI 1.1 host, else as the 1.0 host decoded it). */
static long qarg(const acdm_http_request *req, const char *name, char *out, size_t cap)
{
    const char *q;
    bool raw = query_raw_of(req, &q);
    if (!q) return -1;
    if (raw) return acdm_query_get(q, name, out, cap);
    size_t nl = strlen(name);
    for (const char *p = q; *p;) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > nl && !memcmp(p, name, nl) && p[nl] == '=') {
            size_t vl = (size_t)(end - p - nl - 1);
            if (vl + 1 > cap) return -2;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return (long)vl;
        }
        if (!amp) break;
        p = amp + 1;
    }
    return -1;
}

static int kv_put(wa *w, const char *key, json_t *doc, uint32_t ttl)
{
    return botkv_put(w->host, w->inst, key, doc, ttl);
}

static json_t *kv_json(wa *w, const char *key)
{
    return botkv_get(w->host, w->inst, key);
}

static void report(wa *w, const char *bericht, const char *text, json_t *pl)
{
    char *s = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
    json_decref(pl);
    if (s && bericht && *bericht) w->host->delivery_report(w->inst, bericht, text, s);
    free(s);
}

/* ---------------------------------------------------------------- config */

static void cfg_free(cfg *c)
{
    free(c->phone_number_id); free(c->graph_url); free(c->api_version);
    free(c->access_token); free(c->app_secret); free(c->verify_token); free(c->bot_url);
    for (size_t i = 0; i < c->n_templates; i++) {
        free(c->templates[i].name); free(c->templates[i].language); free(c->templates[i].label);
    }
    free(c->templates);
    memset(c, 0, sizeof *c);
}

static int cfg_parse(const char *text, cfg *c, char *err, size_t el)
{
    memset(c, 0, sizeof *c);
    json_t *o = json_loads(text ? text : "{}", 0, NULL);
    int rc = -1;
    if (!json_is_object(o)) { snprintf(err, el, "config must be a JSON object"); goto out; }
    if (jcfg_str(o, "phone_number_id", true, NULL, &c->phone_number_id, err, el) < 0 ||
        jcfg_str(o, "graph_url", false, "https://graph.facebook.com", &c->graph_url, err, el) < 0 ||
        jcfg_str(o, "api_version", false, "v21.0", &c->api_version, err, el) < 0 ||
        jcfg_secret(o, "access_token_file", true, &c->access_token, err, el) < 0 ||
        jcfg_secret(o, "app_secret_file", true, &c->app_secret, err, el) < 0 ||
        jcfg_secret(o, "verify_token_file", true, &c->verify_token, err, el) < 0 ||
        jcfg_int(o, "pair_interval_ms", 6000, 0, 600000, &c->pair_interval_ms, err, el) < 0 ||
        jcfg_int(o, "rate_per_s", 80, 1, 1000, &c->rate_per_s, err, el) < 0 ||
        jcfg_int(o, "retries", 5, 1, 20, &c->retries, err, el) < 0 ||
        jcfg_int(o, "retry_ms", 2000, 10, 3600000, &c->retry_ms, err, el) < 0)
        goto out;
    for (const char *p = c->phone_number_id; *p; p++)
        if (*p < '0' || *p > '9') { snprintf(err, el, "phone_number_id must be digits (Meta's id of the number)"); goto out; }
    if (strncmp(c->graph_url, "https://", 8) && strncmp(c->graph_url, "http://", 7)) {
        snprintf(err, el, "graph_url must be an http:// or https:// URL");
        goto out;
    }
    size_t gl = strlen(c->graph_url);
    if (c->graph_url[gl - 1] == '/') c->graph_url[gl - 1] = '\0';
    if (c->api_version[0] != 'v') { snprintf(err, el, "api_version must look like \"v21.0\""); goto out; }
    json_t *bot = json_object_get(o, "bot");
    if (bot && !json_is_null(bot)) {
        if (!json_is_object(bot)) { snprintf(err, el, "bot must be an object {url, protocol, timeout_ms}"); goto out; }
        if (jcfg_str(bot, "url", true, NULL, &c->bot_url, err, el) < 0 ||
            (strncmp(c->bot_url, "http://", 7) && strncmp(c->bot_url, "https://", 8))) {
            snprintf(err, el, "bot.url: required, the bot's http(s) URL");
            goto out;
        }
        json_t *pn = json_object_get(bot, "protocol");
        if (pn && !json_is_string(pn)) { snprintf(err, el, "bot.protocol must be a string (one of: %s)", bot_protocol_names()); goto out; }
        c->bot = bot_protocol_find(pn ? json_string_value(pn) : "rasa");
        if (!c->bot) { snprintf(err, el, "bot.protocol: unknown (known: %s)", bot_protocol_names()); goto out; }
        if (jcfg_int(bot, "timeout_ms", 5000, 100, 60000, &c->bot_timeout_ms, err, el) < 0) goto out;
    }
    json_t *ts = json_object_get(o, "templates");
    if (ts && !json_is_array(ts)) { snprintf(err, el, "templates must be an array"); goto out; }
    c->templates = calloc(json_array_size(ts) + 1, sizeof *c->templates);
    if (!c->templates) goto out;
    for (size_t i = 0; i < json_array_size(ts); i++) {
        json_t *t = json_array_get(ts, i);
        tmpl *d = &c->templates[c->n_templates++];
        char k[64];
        snprintf(k, sizeof k, "templates[%zu].name", i);
        if (!json_is_object(t)) { snprintf(err, el, "templates[%zu] must be an object", i); goto out; }
        if (jcfg_str(t, "name", true, NULL, &d->name, err, el) < 0 ||
            jcfg_str(t, "language", false, "nl", &d->language, err, el) < 0 ||
            jcfg_str(t, "label", false, json_string_value(json_object_get(t, "name")) ? json_string_value(json_object_get(t, "name")) : "", &d->label, err, el) < 0 ||
            jcfg_int(t, "params", 0, 0, 20, &d->params, err, el) < 0) {
            char inner[200];
            snprintf(inner, sizeof inner, "%s", err);
            snprintf(err, el, "templates[%zu]: %s", i, inner);
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(o);
    if (rc < 0) cfg_free(c);
    return rc;
}

static int wa_check_config(const char *config_json, char *err, size_t el)
{
    cfg c;
    if (cfg_parse(config_json, &c, err, el) < 0) return -1;
    cfg_free(&c);
    return 0;
}

/* ---------------------------------------------------------------- outbound */

static void pump(wa *w);

static void pump_fire(acdm_instance *inst, void *priv, void *user)
{
    (void)inst; (void)user;
    wa *w = priv;
    w->pump_timer = NULL;
    pump(w);
}

static void pump_later(wa *w, int64_t at_ms)
{
    if (w->pump_timer) return;
    int64_t d = at_ms - now_ms();
    w->pump_timer = w->host->timer_start(w->inst, d > 0 ? (uint64_t)d : 1, 0, pump_fire, NULL);
}

static void outq_free(wa *w, outq *m)
{
    for (outq **mp = &w->out; *mp; mp = &(*mp)->next)
        if (*mp == m) { *mp = m->next; break; }
    free(m->body);
    free(m->text);
    free(m);
}

static recent *recent_of(wa *w, const char *to, bool create)
{
    int64_t now = now_ms();
    for (recent **rp = &w->recents; *rp;) {
        recent *r = *rp;
        if (!strcmp(r->to, to)) return r;
        if (now - r->last_ms > 3600000) { *rp = r->next; free(r); continue; }   /* forget */
        rp = &r->next;
    }
    if (!create) return NULL;
    recent *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    snprintf(r->to, sizeof r->to, "%s", to);
    r->next = w->recents;
    w->recents = r;
    return r;
}

static void sub_bot_sent(wa *w, struct sub *s, bool ok);

static void fail_out(wa *w, outq *m, int code, const char *why)
{
    w->n.send_failed++;
    snprintf(w->last_error, sizeof w->last_error, "%s", why);
    json_t *pl = json_pack("{s:s, s:s, s:s, s:i}", "delivery", "failed", "message", m->id, "error", why,
                           "attempts", m->tries);
    if (pl && code) json_object_set_new(pl, "code", json_integer(code));
    report(w, m->bericht, m->text, pl);
    w->host->log(w->inst, ACDM_PLOG_WARN, "WhatsApp message %s for bericht %s not sent: %s", m->id,
                 m->bericht[0] ? m->bericht : "(bot)", why);
    struct sub *ack = m->ack;
    outq_free(w, m);
    if (ack) sub_bot_sent(w, ack, false);
}

/* What the agent should do about a Graph API error code that is never retried. */
static const char *advice(int code)
{
    switch (code) {
    case 131026: return "the number cannot receive WhatsApp messages (not on WhatsApp, old app, terms not accepted): use another channel";
    case 131047: return "more than 24 hours since the citizen's last message: send a template";
    case 132000: return "the template's parameters do not match its definition: check the parameters";
    case 132001: return "the template does not exist (name or language): check the configured templates";
    case 131051: return "unsupported message type";
    case 190: return "the access token expired or was revoked: renew access_token_file and reload";
    default: return NULL;
    }
}

static void sent(acdm_instance *inst, void *priv, void *user, int status, const char *body,
                 size_t len, const char *error)
{
    (void)inst;
    wa *w = priv;
    outq *m = user;
    m->in_flight = false;
    json_t *o = body ? json_loadb(body, len, 0, NULL) : NULL;
    if (status >= 200 && status < 300) {
        const char *wamid = json_string_value(json_object_get(json_array_get(json_object_get(o, "messages"), 0), "id"));
        w->n.sent++;
        w->token_bad = false;
        if (wamid) {
            char key[300];
            snprintf(key, sizeof key, "s:%s", wamid);
            json_t *rec = json_pack("{s:s, s:s, s:i, s:s}", "b", m->bericht, "m", m->id, "r", 0, "t", m->text ? m->text : "");
            if (rec) kv_put(w, key, rec, STATUS_TTL_S);
            json_decref(rec);
        }
        report(w, m->bericht, m->text, json_pack("{s:s, s:s, s:s?}", "delivery", "accepted", "message", m->id,
                                                 "wamid", wamid));
        struct sub *ack = m->ack;
        outq_free(w, m);
        json_decref(o);
        if (ack) sub_bot_sent(w, ack, true);
        pump(w);
        return;
    }
    json_t *e = json_object_get(o, "error");
    int code = (int)json_integer_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *det = json_string_value(json_object_get(json_object_get(e, "error_data"), "details"));
    char why[400];
    if (status < 0) snprintf(why, sizeof why, "Graph API unreachable: %s", error ? error : "transport error");
    else if (code) snprintf(why, sizeof why, "%d: %s%s%s%s", code, msg ? msg : "error", det ? " (" : "",
                            det ? det : "", det ? ")" : "");
    else snprintf(why, sizeof why, "Graph API answered HTTP %d", status);
    if (advice(code)) {
        size_t l = strlen(why);
        snprintf(why + l, sizeof why - l, " -- %s", advice(code));
    }
    json_decref(o);
    if (code == 190 || status == 401) {
        w->token_bad = true;
        w->host->log(w->inst, ACDM_PLOG_ERR, "the Graph API refused the access token (code %d, HTTP %d): "
                     "renew access_token_file", code, status);
        fail_out(w, m, code ? code : 401, why);
        pump(w);
        return;
    }
    bool retry = status < 0 || status >= 500 || code == 130429 || code == 131056 || code == 131000 ||
                 code == 2 || status == 429;
    uint64_t delay;
    if (retry && outbox_retry_delay(w->c.retries, w->c.retry_ms, m->tries, &delay)) {
        if (code == 131056 && delay < (uint64_t)w->c.pair_interval_ms) delay = (uint64_t)w->c.pair_interval_ms;
        m->not_before_ms = now_ms() + (int64_t)delay;
        w->host->log(w->inst, ACDM_PLOG_NOTICE, "WhatsApp message %s: %s; retry in %lld ms", m->id, why, (long long)delay);
        snprintf(w->last_error, sizeof w->last_error, "%s", why);
        pump(w);
        return;
    }
    fail_out(w, m, code ? code : status, why);
    pump(w);
}

/* Sends what may go now: in order per citizen, one per pair_interval_ms per citizen, at most
 * rate_per_s per second for the number. */
static void pump(wa *w)
{
    int64_t now = now_ms(), next = 0;
    if (now - w->sec_start_ms >= 1000) { w->sec_start_ms = now; w->sec_count = 0; }
    for (outq *m = w->out, *nx; m; m = nx) {
        nx = m->next;
        if (m->in_flight) continue;
        bool earlier = false;        /* an earlier message to the same citizen goes first */
        for (outq *e = w->out; e != m; e = e->next)
            if (!strcmp(e->to, m->to)) { earlier = true; break; }
        if (earlier) continue;
        recent *r = recent_of(w, m->to, false);
        int64_t at = m->not_before_ms;
        if (r && r->last_ms + w->c.pair_interval_ms > at) at = r->last_ms + w->c.pair_interval_ms;
        if (w->sec_count >= w->c.rate_per_s && w->sec_start_ms + 1000 > at) at = w->sec_start_ms + 1000;
        if (at > now) { if (!next || at < next) next = at; continue; }
        char url[600], auth[2100];
        snprintf(url, sizeof url, "%s/%s/%s/messages", w->c.graph_url, w->c.api_version, w->c.phone_number_id);
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", w->c.access_token);
        const char *headers[] = {"Content-Type: application/json", auth, NULL};
        acdm_http_out o = {.struct_size = sizeof o, .method = "POST", .url = url, .headers = headers,
                           .body = m->body, .body_len = strlen(m->body), .timeout_ms = 15000};
        m->tries++;
        m->in_flight = true;
        r = recent_of(w, m->to, true);
        if (r) r->last_ms = now;
        w->sec_count++;
        int rc = w->host->http_request(w->inst, &o, sent, m);
        memset(auth, 0, sizeof auth);
        if (rc < 0) {
            m->in_flight = false;
            fail_out(w, m, 0, "the request could not be started");
        }
    }
    if (next) pump_later(w, next);
}

static void enqueue_ack(wa *w, const char *bericht, const char *id, const char *to, json_t *msg,
                        const char *text, struct sub *ack);

static void enqueue(wa *w, const char *bericht, const char *id, const char *to, json_t *msg, const char *text)
{
    enqueue_ack(w, bericht, id, to, msg, text, NULL);
}

static void enqueue_ack(wa *w, const char *bericht, const char *id, const char *to, json_t *msg,
                        const char *text, struct sub *ack)
{
    outq *m = calloc(1, sizeof *m);
    if (msg) {
        json_object_set_new(msg, "messaging_product", json_string("whatsapp"));
        json_object_set_new(msg, "recipient_type", json_string("individual"));
        /* a business-scoped user id (CC.xxx) is addressed as recipient, a number as to */
        json_object_set_new(msg, strchr(to, '.') ? "recipient" : "to", json_string(to));
    }
    char *body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!m || !body) {
        free(m);
        free(body);
        report(w, bericht, text, json_pack("{s:s, s:s, s:s}", "delivery", "failed", "message", id, "error", "out of memory"));
        if (ack) sub_bot_sent(w, ack, false);
        return;
    }
    m->ack = ack;
    snprintf(m->id, sizeof m->id, "%s", id);
    snprintf(m->bericht, sizeof m->bericht, "%s", bericht);
    snprintf(m->to, sizeof m->to, "%s", to);
    m->body = body;
    m->text = strdup(text ? text : "");
    outq **mp = &w->out;
    while (*mp) mp = &(*mp)->next;
    *mp = m;
    pump(w);
}

static void refuse(wa *w, const char *bericht, const char *id, const char *text, const char *why)
{
    report(w, bericht, text, json_pack("{s:s, s:s, s:s}", "delivery", "failed", "message", id, "error", why));
    w->host->log(w->inst, ACDM_PLOG_NOTICE, "WhatsApp reply for bericht %s refused: %s", bericht, why);
}

/* Seconds since the citizen's last message (the window), or -1 when none is known. */
static long long since_last(wa *w, const char *to)
{
    char key[200];
    snprintf(key, sizeof key, "w:%s", to);
    json_t *o = kv_json(w, key);
    if (!o) return -1;
    long long t = (long long)json_integer_value(json_object_get(o, "t"));
    json_decref(o);
    return (long long)time(NULL) - t;
}

static const tmpl *tmpl_find(const wa *w, const char *name, const char *lang)
{
    for (size_t i = 0; i < w->c.n_templates; i++)
        if (!strcmp(w->c.templates[i].name, name) && (!lang || !strcmp(w->c.templates[i].language, lang)))
            return &w->c.templates[i];
    return NULL;
}

static int wa_deliver(acdm_instance *inst, void *priv, const acdm_reply *r)
{
    (void)inst;
    wa *w = priv;
    char id[80];
    if (r->struct_size >= offsetof(acdm_reply, message_id) + sizeof r->message_id && r->message_id &&
        *r->message_id && strlen(r->message_id) < sizeof id)
        snprintf(id, sizeof id, "%s", r->message_id);
    else
        new_id(id);
    const char *text = r->text ? r->text : "";
    if (!r->to || !*r->to || strlen(r->to) >= 170) { refuse(w, r->bericht_id, id, text, "the bericht has no WhatsApp address"); return 0; }
    json_t *pl = r->payload_json ? json_loads(r->payload_json, 0, NULL) : NULL;
    json_t *t = json_object_get(pl, "template");
    char why[300];
    if (json_is_object(t)) {
        const char *name = json_string_value(json_object_get(t, "name"));
        const char *lang = json_string_value(json_object_get(t, "language"));
        json_t *params = json_object_get(t, "params");
        const tmpl *d = name ? tmpl_find(w, name, lang) : NULL;
        if (!d) {
            snprintf(why, sizeof why, "template \"%s\"%s%s is not configured for this number", name ? name : "",
                     lang ? " in " : "", lang ? lang : "");
            refuse(w, r->bericht_id, id, text, why);
        } else if ((params && !json_is_array(params)) || (int)json_array_size(params) != d->params) {
            snprintf(why, sizeof why, "template \"%s\" needs %d parameter%s, got %zu", d->name, d->params,
                     d->params == 1 ? "" : "s", json_array_size(params));
            refuse(w, r->bericht_id, id, text, why);
        } else {
            json_t *ps = json_array();
            bool ok = true;
            for (size_t i = 0; i < json_array_size(params); i++) {
                const char *p = json_string_value(json_array_get(params, i));
                if (!p || !*p) { ok = false; break; }
                json_array_append_new(ps, json_pack("{s:s, s:s}", "type", "text", "text", p));
            }
            if (!ok) {
                json_decref(ps);
                snprintf(why, sizeof why, "template \"%s\": every parameter must be a non-empty text", d->name);
                refuse(w, r->bericht_id, id, text, why);
            } else {
                json_t *tm = json_pack("{s:s, s:{s:s}}", "name", d->name, "language", "code", d->language);
                if (json_array_size(ps))
                    json_object_set_new(tm, "components", json_pack("[{s:s, s:o}]", "type", "body", "parameters", ps));
                else
                    json_decref(ps);
                char shown[600];
                snprintf(shown, sizeof shown, "%s%s[template %s]", text, *text ? " " : "", d->label);
                enqueue(w, r->bericht_id, id, r->to, json_pack("{s:s, s:o}", "type", "template", "template", tm), shown);
            }
        }
        json_decref(pl);
        return 0;
    }
    json_decref(pl);
    if (!*text) { refuse(w, r->bericht_id, id, text, "the message is empty"); return 0; }
    long long ago = since_last(w, r->to);
    if (ago < 0 || ago >= WINDOW_S) {
        refuse(w, r->bericht_id, id, text,
               "outside the 24-hour window (no message from the citizen in the last 24 hours): free text "
               "cannot be sent; send one of the configured templates");
        return 0;
    }
    enqueue(w, r->bericht_id, id, r->to, json_pack("{s:s, s:{s:s, s:b}}", "type", "text", "text", "body", text,
                                                   "preview_url", 0), text);
    return 0;
}

/* ---------------------------------------------------------------- media (after the commit) */

/* Downloads not finished when acdmd stops are resumed at the next start (Meta keeps a media
 * id for 7 days): "mf:<wamid>" holds the fetch, "media" the list of them. */
static void media_list(wa *w, const char *add, const char *remove)
{
    outbox_list(w->host, w->inst, "media", add, remove);
}

static void mfetch_save(wa *w, const struct mfetch *f);

static void mfetch_free(wa *w, mfetch *f)
{
    for (mfetch **fp = &w->fetches; *fp; fp = &(*fp)->next)
        if (*fp == f) { *fp = f->next; break; }
    free(f->media_id); free(f->mime); free(f->sha256); free(f->filename);
    free(f);
}

static const char *type_label(wa_type t)
{
    switch (t) {
    case WA_T_IMAGE: return "Afbeelding";
    case WA_T_AUDIO: return "Audio";
    case WA_T_VOICE: return "Spraakbericht";
    case WA_T_VIDEO: return "Video";
    case WA_T_DOCUMENT: return "Document";
    case WA_T_STICKER: return "Sticker";
    default: return "Bijlage";
    }
}

static void media_submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome o,
                            const char *bid, const char *text)
{
    (void)inst; (void)priv; (void)user; (void)bid;
    if (o == ACDM_SUBMIT_ERROR) {
        wa *w = priv;
        w->host->log(w->inst, ACDM_PLOG_WARN, "a media follow-up was not stored: %s", text ? text : "");
    }
}

/* The download's outcome joins the conversation as a follow-up (idempotent per wamid). */
static void media_done(wa *w, mfetch *f, const char *att_id, size_t size, const char *why)
{
    char text[512], idem[300], conv[200];
    json_t *pl;
    if (!why) why = "unknown error";
    if (att_id) {
        w->n.media++;
        snprintf(text, sizeof text, "[%s ontvangen%s%s]", type_label(f->type), f->filename ? ": " : "", f->filename ? f->filename : "");
        pl = json_pack("{s:s, s:[{s:s, s:s, s:s, s:I}], s:s}", "wamid", f->wamid, "attachments", "id", att_id,
                       "filename", f->filename ? f->filename : type_label(f->type), "content_type",
                       f->mime ? f->mime : "application/octet-stream", "size", (json_int_t)size, "type", "media");
    } else {
        w->n.media_failed++;
        snprintf(text, sizeof text, "[%s kon niet worden opgehaald: %s]", type_label(f->type), why);
        pl = json_pack("{s:s, s:s, s:s}", "wamid", f->wamid, "media_error", why, "type", "media");
        w->host->log(w->inst, ACDM_PLOG_WARN, "media %s of %s not fetched: %s", f->media_id, f->wamid, why);
    }
    char mk[300];
    snprintf(mk, sizeof mk, "mf:%s", f->wamid);
    w->host->kv_set(w->inst, mk, NULL, 0);
    media_list(w, NULL, f->wamid);
    snprintf(idem, sizeof idem, "%s#media", f->wamid);
    snprintf(conv, sizeof conv, "wa:%s", f->from);
    char *pls = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
    json_decref(pl);
    acdm_inbound in = {.struct_size = sizeof in, .kind = ACDM_KIND_NAME_WHATSAPP, .from = f->from,
                       .conversation = conv, .idempotency_key = idem, .text = text, .payload_json = pls};
    if (w->host->submit(w->inst, &in, media_submitted, NULL) < 0)
        w->host->log(w->inst, ACDM_PLOG_WARN, "media follow-up for %s refused by the core", f->wamid);
    free(pls);
    mfetch_free(w, f);
}

static bool sha_matches(const char *want, const void *data, size_t len)
{
    char hex[65];
    if (!want) return true;                 /* Meta always sends one; nothing to check against */
    if (sig_sha256_hex(data, len, hex) < 0) return false;
    size_t wl = strlen(want);
    if (wl == 64) {
        char lw[65];
        for (size_t i = 0; i < 64; i++) lw[i] = (char)((want[i] >= 'A' && want[i] <= 'F') ? want[i] + 32 : want[i]);
        lw[64] = '\0';
        return acdm_ct_equal(lw, 64, hex, 64);
    }
    /* base64 of the 32 bytes */
    unsigned char raw[32];
    for (int i = 0; i < 32; i++) {
        int h = acdm__hexval(hex[2 * i]), l = acdm__hexval(hex[2 * i + 1]);
        raw[i] = (unsigned char)(h * 16 + l);
    }
    char b64[64];
    if (sig_base64(raw, 32, b64, sizeof b64) < 0) return false;
    return acdm_ct_equal(b64, strlen(b64), want, wl);
}

static void media_url_step(wa *w, mfetch *f);

static void media_body(acdm_instance *inst, void *priv, void *user, int status, const char *body,
                       size_t len, const char *error)
{
    (void)inst;
    wa *w = priv;
    mfetch *f = user;
    char why[300];
    if (status == 401) w->token_bad = true;
    if ((status == 403 || status == 404 || status == 410) && f->url_tries < 2) {
        media_url_step(w, f);                /* the short-lived URL expired: ask for a fresh one */
        return;
    }
    if (status < 200 || status >= 300) {
        if (status < 0) snprintf(why, sizeof why, "download failed: %s", error ? error : "transport error");
        else snprintf(why, sizeof why, "download answered HTTP %d", status);
        media_done(w, f, NULL, 0, why);
        return;
    }
    size_t cap = wa_media_cap(f->type);
    if (len > cap) {
        snprintf(why, sizeof why, "%zu bytes is over the %zu byte limit for this type", len, cap);
        media_done(w, f, NULL, 0, why);
        return;
    }
    if (!sha_matches(f->sha256, body, len)) {
        media_done(w, f, NULL, 0, "the file's sha256 does not match the one WhatsApp announced");
        return;
    }
    char id[64] = "";
    char fname[300];
    if (f->filename) snprintf(fname, sizeof fname, "%s", f->filename);
    else snprintf(fname, sizeof fname, "%s-%.40s", type_label(f->type), f->media_id);
    int rc;
    if (ACDM_HOST_HAS(w->host, attachment_store) && w->host->attachment_store) {
        acdm_attachment_in a = {.struct_size = sizeof a, .bericht_id = f->bericht, .filename = fname,
                                .content_type = f->mime, .data = body, .len = len};
        char tmp[] = "/tmp/acdm-wa-XXXXXX";
        int fd = -1;
        if (len > ACDM_ATTACHMENT_MAX && (fd = mkstemp(tmp)) >= 0) {
            /* large documents go in from a file */
            ssize_t wr = write(fd, body, len);
            close(fd);
            a.data = NULL;
            a.len = 0;
            a.path = tmp;
            rc = wr == (ssize_t)len ? w->host->attachment_store(w->inst, &a, id) : ACDM_P_EIO;
            unlink(tmp);
        } else {
            rc = w->host->attachment_store(w->inst, &a, id);
        }
    } else {
        rc = w->host->attachment_put(w->inst, f->bericht, fname, f->mime ? f->mime : "application/octet-stream",
                                     body, len, id);
    }
    if (rc < 0) {
        snprintf(why, sizeof why, "the attachment store refused it: %s", acdm_plugin_strerror(rc));
        media_done(w, f, NULL, 0, why);
        return;
    }
    media_done(w, f, id, len, NULL);
}

static void media_meta(acdm_instance *inst, void *priv, void *user, int status, const char *body,
                       size_t len, const char *error)
{
    (void)inst;
    wa *w = priv;
    mfetch *f = user;
    char why[300];
    json_t *o = body ? json_loadb(body, len, 0, NULL) : NULL;
    const char *url = json_string_value(json_object_get(o, "url"));
    if (status == 401) w->token_bad = true;
    if (status < 200 || status >= 300 || !url) {
        if (status < 0) snprintf(why, sizeof why, "GET /%s failed: %s", f->media_id, error ? error : "transport error");
        else snprintf(why, sizeof why, "GET /%s answered HTTP %d%s", f->media_id, status, url ? "" : " without a url");
        json_decref(o);
        media_done(w, f, NULL, 0, why);
        return;
    }
    json_t *fs = json_object_get(o, "file_size");
    long long size = json_is_integer(fs) ? json_integer_value(fs) : (json_is_string(fs) ? atoll(json_string_value(fs)) : 0);
    size_t cap = wa_media_cap(f->type);
    if (size > 0 && (unsigned long long)size > cap) {
        snprintf(why, sizeof why, "%lld bytes is over the %zu byte limit for this type", size, cap);
        json_decref(o);
        media_done(w, f, NULL, 0, why);
        return;
    }
    if (!f->sha256 && json_string_value(json_object_get(o, "sha256")))
        f->sha256 = strdup(json_string_value(json_object_get(o, "sha256")));
    char auth[2100];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", w->c.access_token);
    const char *headers[] = {auth, NULL};
    acdm_http_out req = {.struct_size = sizeof req, .method = "GET", .url = url, .headers = headers, .timeout_ms = 60000};
    int rc = w->host->http_request(w->inst, &req, media_body, f);
    memset(auth, 0, sizeof auth);
    json_decref(o);
    if (rc < 0) media_done(w, f, NULL, 0, "the download could not be started");
}

static void media_url_step(wa *w, mfetch *f)
{
    char url[700], auth[2100];
    f->url_tries++;
    snprintf(url, sizeof url, "%s/%s/%s?phone_number_id=%s", w->c.graph_url, w->c.api_version, f->media_id,
             w->c.phone_number_id);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", w->c.access_token);
    const char *headers[] = {auth, NULL};
    acdm_http_out req = {.struct_size = sizeof req, .method = "GET", .url = url, .headers = headers, .timeout_ms = 15000};
    int rc = w->host->http_request(w->inst, &req, media_meta, f);
    memset(auth, 0, sizeof auth);
    if (rc < 0) media_done(w, f, NULL, 0, "the request for the media URL could not be started");
}

static void media_start(wa *w, const sub *s, const char *bericht)
{
    bool ok_id = s->media_id && strlen(s->media_id) < 200;
    for (const char *p = s->media_id; ok_id && *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == '-')) ok_id = false;
    mfetch *f = calloc(1, sizeof *f);
    if (!f) return;
    f->w = w;
    snprintf(f->bericht, sizeof f->bericht, "%s", bericht);
    snprintf(f->wamid, sizeof f->wamid, "%s", s->wamid);
    snprintf(f->from, sizeof f->from, "%s", s->from);
    f->media_id = s->media_id ? strdup(s->media_id) : NULL;
    f->mime = s->mime ? strdup(s->mime) : NULL;
    f->sha256 = s->sha256 ? strdup(s->sha256) : NULL;
    f->filename = s->filename ? strdup(s->filename) : NULL;
    for (char *p = f->filename; p && *p; p++) if (*p == '/' || *p == '\\') *p = '_';
    f->type = s->type;
    f->next = w->fetches;
    w->fetches = f;
    if (!ok_id) { media_done(w, f, NULL, 0, "the message has no valid media id"); return; }
    mfetch_save(w, f);
    media_url_step(w, f);
}

static void mfetch_save(wa *w, const struct mfetch *f)
{
    char key[300];
    snprintf(key, sizeof key, "mf:%s", f->wamid);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:i}", "b", f->bericht, "w", f->wamid, "f", f->from,
                          "id", f->media_id, "mime", f->mime, "sha", f->sha256, "name", f->filename, "t", (int)f->type);
    if (o) kv_put(w, key, o, 8u * 24u * 3600u);
    json_decref(o);
    media_list(w, f->wamid, NULL);
}

/* The downloads the last run did not finish. */
static void media_resume(wa *w)
{
    json_t *arr = kv_json(w, "media");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *wamid = json_string_value(json_array_get(arr, i));
        char key[300];
        if (!wamid) continue;
        snprintf(key, sizeof key, "mf:%s", wamid);
        json_t *o = kv_json(w, key);
        const char *b = json_string_value(json_object_get(o, "b")), *from = json_string_value(json_object_get(o, "f")),
                   *id = json_string_value(json_object_get(o, "id"));
        if (!b || !from || !id) { json_decref(o); media_list(w, NULL, wamid); continue; }
        sub tmp = {0};
        snprintf(tmp.wamid, sizeof tmp.wamid, "%s", wamid);
        snprintf(tmp.from, sizeof tmp.from, "%s", from);
        tmp.media_id = (char *)id;
        tmp.mime = (char *)json_string_value(json_object_get(o, "mime"));
        tmp.sha256 = (char *)json_string_value(json_object_get(o, "sha"));
        tmp.filename = (char *)json_string_value(json_object_get(o, "name"));
        tmp.type = (wa_type)json_integer_value(json_object_get(o, "t"));
        w->host->log(w->inst, ACDM_PLOG_NOTICE, "resuming the download of media %s (%s)", id, wamid);
        media_start(w, &tmp, b);       /* copies what it keeps */
        json_decref(o);
    }
    json_decref(arr);
}

/* ---------------------------------------------------------------- inbound */

static void batch_free(batch *b)
{
    wa *w = b->w;
    if (b->prev) b->prev->next = b->next; else w->batches = b->next;
    if (b->next) b->next->prev = b->prev;
    free(b);
}

static void batch_answer(wa *w, batch *b, acdm_http_response *resp)
{
    if (b->failed)
        acdm_problem(resp, 503, "Not stored", b->why[0] ? b->why : "a message could not be stored; redeliver",
                     w->body, sizeof w->body);
    else {
        resp->status = 200;
        resp->content_type = "application/json";
        resp->body = "{\"ok\":true}";
    }
}

static void sub_free(sub *s)
{
    free(s->text); free(s->payload); free(s->subject); free(s->customer_id);
    free(s->media_id); free(s->mime); free(s->sha256); free(s->filename); free(s->caption);
    free(s);
}

static void sub_unlink(wa *w, sub *s)
{
    for (sub **sp = &w->subs; *sp; sp = &(*sp)->next)
        if (*sp == s) { *sp = s->next; break; }
}

static void submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome outcome,
                      const char *bericht_id, const char *text);

/* A batch whose last message is committed is answered (unless its handler still runs). */
static void batch_check(wa *w, batch *b)
{
    if (b->outstanding > 0 || b->in_handler) return;
    acdm_http_response r = {0};
    batch_answer(w, b, &r);
    w->host->http_respond(b->token, &r);
    batch_free(b);
}

static void sub_start(wa *w, sub *s);

/* Submits s; a refusal marks its batch failed (nothing stored: Meta's redelivery is safe). */
static void sub_submit(wa *w, sub *s)
{
    acdm_inbound in = {.struct_size = sizeof in, .kind = ACDM_KIND_NAME_WHATSAPP, .from = s->from,
                       .customer_id = s->customer_id, .conversation = s->conv, .idempotency_key = s->wamid,
                       .subject = s->subject, .text = s->text, .payload_json = s->payload};
    char serr[200] = "";
    int rc;
    s->submitted = true;
    if (ACDM_HOST_HAS(w->host, submit_err) && w->host->submit_err)
        rc = w->host->submit_err(w->inst, &in, submitted, s, serr, sizeof serr);
    else
        rc = w->host->submit(w->inst, &in, submitted, s);
    if (rc < 0) {
        batch *b = s->b;
        b->failed = true;
        snprintf(b->why, sizeof b->why, "message %s refused: %s", s->wamid, serr[0] ? serr : acdm_plugin_strerror(rc));
        w->host->log(w->inst, ACDM_PLOG_WARN, "%s", b->why);
        char conv[200];
        snprintf(conv, sizeof conv, "%s", s->conv);
        sub_unlink(w, s);
        sub_free(s);
        b->outstanding--;
        for (sub *n = w->subs; n; n = n->next)        /* the next of its conversation */
            if (!strcmp(n->conv, conv)) { if (!n->submitted) sub_start(w, n); break; }
        batch_check(w, b);
    }
}

/* Queues s behind an unfinished message of the same conversation, or submits it now. */
static void sub_add(wa *w, sub *s)
{
    bool wait = false;
    sub **sp = &w->subs;
    for (; *sp; sp = &(*sp)->next)
        if (!strcmp((*sp)->conv, s->conv)) wait = true;
    *sp = s;
    if (!wait) sub_start(w, s);
}

static void submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome outcome,
                      const char *bericht_id, const char *text)
{
    (void)inst;
    wa *w = priv;
    sub *s = user;
    batch *b = s->b;
    if (outcome == ACDM_SUBMIT_ERROR) {
        b->failed = true;
        snprintf(b->why, sizeof b->why, "%s", text ? text : "not stored");
    } else if (bericht_id) {
        if (outcome == ACDM_SUBMIT_CLOSED && text && *text) {
            char id[37];
            new_id(id);       /* the queue is closed: its text once (a redelivery is DUPLICATE) */
            enqueue(w, bericht_id, id, s->from, json_pack("{s:s, s:{s:s}}", "type", "text", "text", "body", text), text);
        }
        if (s->media_id && outcome != ACDM_SUBMIT_DUPLICATE && outcome != ACDM_SUBMIT_CLOSED)
            media_start(w, s, bericht_id);
    }
    char conv[200];
    snprintf(conv, sizeof conv, "%s", s->conv);
    sub_unlink(w, s);
    sub_free(s);
    b->outstanding--;
    for (sub *n = w->subs; n; n = n->next)            /* the next of this conversation */
        if (!strcmp(n->conv, conv)) { if (!n->submitted) sub_start(w, n); break; }
    batch_check(w, b);
}

/* ---------------------------------------------------------------- bot first */

/* Bot first (config "bot", the web chat's bot protocols from channels/webchat/bot.c): a
 * citizen's messages go to the bot until it hands off (a bericht with the transcript), then to
 * humans until that bericht ends. State and transcript in kv "bot:<who>". A message the bot
 * handles counts as done for its delivery's 200 once the bot's answer was accepted by the Graph
 * API ("bw:<wamid>" keeps Meta's redelivery from asking the bot twice). */
/* Done without a bericht (the bot answered): the next of its conversation may go. */
static void sub_finish(wa *w, sub *s)
{
    batch *b = s->b;
    char conv[200];
    snprintf(conv, sizeof conv, "%s", s->conv);
    sub_unlink(w, s);
    sub_free(s);
    b->outstanding--;
    for (sub *n = w->subs; n; n = n->next)
        if (!strcmp(n->conv, conv)) { if (!n->submitted) sub_start(w, n); break; }
    batch_check(w, b);
}

static void bot_handoff(wa *w, sub *s, const char *summary)
{
    bot_handoff_state(w->host, w->inst, s->from, STATUS_TTL_S, summary, &s->text, &s->payload);
    sub_submit(w, s);
}

static void bot_mark(wa *w, const char *wamid)
{
    char key[300];
    snprintf(key, sizeof key, "bw:%s", wamid);
    json_t *o = json_pack("{s:b}", "bot", 1);
    if (o) kv_put(w, key, o, 8u * 24u * 3600u);
    json_decref(o);
}

static void sub_bot_sent(wa *w, struct sub *s, bool ok)
{
    if (!ok) { bot_handoff(w, s, "Het antwoord van de chatbot kon niet worden verstuurd"); return; }
    bot_mark(w, s->wamid);
    sub_finish(w, s);
}

static void bot_done(acdm_instance *inst, void *priv, void *user, int status, const char *body,
                     size_t len, const char *error)
{
    (void)inst;
    wa *w = priv;
    sub *s = user;
    bot_reply br;
    if (status < 200 || status >= 300 || !w->c.bot || w->c.bot->reply(body ? body : "", len, &br) < 0) {
        w->host->log(w->inst, ACDM_PLOG_WARN, "bot %s: %s (HTTP %d): %s goes to an agent", w->c.bot_url ? w->c.bot_url : "?",
                     error ? error : "no valid answer", status, s->from);
        bot_handoff(w, s, "Chatbot niet bereikbaar");
        return;
    }
    json_t *st = bot_state(w->host, w->inst, s->from);
    size_t n = json_array_size(br.texts);
    for (size_t i = 0; i < n; i++) bot_line(st, "bot", json_string_value(json_array_get(br.texts, i)));
    bot_state_put(w->host, w->inst, s->from, st, STATUS_TTL_S);
    json_decref(st);
    char summary[300];
    snprintf(summary, sizeof summary, "%s", br.summary ? br.summary : (br.intent ? br.intent : "Doorverbonden door de chatbot"));
    bool handoff = br.handoff;
    for (size_t i = 0; i < n; i++) {
        char id[37];
        const char *tx = json_string_value(json_array_get(br.texts, i));
        new_id(id);
        enqueue_ack(w, "", id, s->from, json_pack("{s:s, s:{s:s}}", "type", "text", "text", "body", tx), tx,
                    !handoff && i + 1 == n ? s : NULL);
    }
    bot_reply_free(&br);
    if (handoff) bot_handoff(w, s, summary);
    else if (!n) { bot_mark(w, s->wamid); sub_finish(w, s); }
}

/* Starts a message: to the bot (bot first, not handed off) or to the core. */
static void sub_start(wa *w, sub *s)
{
    if (!w->c.bot_url || !w->c.bot) { sub_submit(w, s); return; }
    json_t *st = bot_state(w->host, w->inst, s->from);
    const char *state = json_string_value(json_object_get(st, "state"));
    if (!st || (state && !strcmp(state, "human"))) { json_decref(st); sub_submit(w, s); return; }
    char key[300];
    snprintf(key, sizeof key, "bw:%s", s->wamid);
    json_t *seen = kv_json(w, key);
    if (seen) { json_decref(seen); json_decref(st); s->submitted = true; sub_finish(w, s); return; }
    bot_line(st, "citizen", s->text);
    bot_state_put(w->host, w->inst, s->from, st, STATUS_TTL_S);
    json_decref(st);
    s->submitted = true;
    char *b = w->c.bot->request(s->conv, s->text);
    static const char *const headers[] = {"Content-Type: application/json", "Accept: application/json", NULL};
    acdm_http_out req = {.struct_size = sizeof req, .method = "POST", .url = w->c.bot_url, .headers = headers,
                         .body = b, .body_len = b ? strlen(b) : 0, .timeout_ms = w->c.bot_timeout_ms};
    int rc = b ? w->host->http_request(w->inst, &req, bot_done, s) : -1;
    free(b);
    if (rc < 0) bot_handoff(w, s, "Chatbot niet bereikbaar");
}

/* A bericht ended: the citizen's next message starts with the bot again. */
static void wa_on_event(acdm_instance *inst, void *priv, const acdm_event_info *ev)
{
    (void)inst;
    wa *w = priv;
    if (ev->type != ACDM_EV_ENDED || !w->c.bot_url || !ev->conversation) return;
    const char *c = strstr(ev->conversation, "wa:");
    if (!c) return;
    char key[200];
    snprintf(key, sizeof key, "bot:%s", c + 3);
    w->host->kv_set(w->inst, key, NULL, 0);
}

/* The customer-service window opens (or is refreshed) with a citizen's message. */
static void window_touch(wa *w, const char *who, long long ts)
{
    long long now = (long long)time(NULL);
    if (ts <= 0 || ts > now + 300) ts = now;
    char key[200];
    snprintf(key, sizeof key, "w:%s", who);
    json_t *o = kv_json(w, key);
    long long prev = o ? (long long)json_integer_value(json_object_get(o, "t")) : 0;
    json_decref(o);
    if (ts <= prev) return;
    o = json_pack("{s:I}", "t", (json_int_t)ts);
    if (o) kv_put(w, key, o, WINDOW_TTL_S);
    json_decref(o);
}

static void on_status(wa *w, const wa_status *st)
{
    w->n.statuses++;
    int rank = wa_status_rank(st->status);
    if (!rank) return;                       /* deleted, warning, ...: nothing to show */
    char key[300];
    snprintf(key, sizeof key, "s:%s", st->id);
    json_t *r = kv_json(w, key);
    if (!r) {
        w->host->log(w->inst, ACDM_PLOG_INFO, "status %s for unknown message %s", st->status, st->id);
        return;
    }
    int cur = (int)json_integer_value(json_object_get(r, "r"));
    /* never backwards: a late delivered never overwrites read; failed only before delivery */
    if (rank <= cur || (rank == 4 && cur >= 2)) { json_decref(r); return; }
    json_object_set_new(r, "r", json_integer(rank));
    kv_put(w, key, r, STATUS_TTL_S);
    char why[400] = "";
    if (rank == 4) {
        snprintf(why, sizeof why, "%d: %s%s%s%s", st->error_code, st->error_title ? st->error_title : "failed",
                 st->error_details ? " (" : "", st->error_details ? st->error_details : "", st->error_details ? ")" : "");
        if (advice(st->error_code)) {
            size_t l = strlen(why);
            snprintf(why + l, sizeof why - l, " -- %s", advice(st->error_code));
        }
    }
    json_t *pl = json_pack("{s:s, s:s?, s:s}", "delivery", st->status, "message",
                           json_string_value(json_object_get(r, "m")), "wamid", st->id);
    if (pl && rank == 4) {
        json_object_set_new(pl, "error", json_string(why));
        json_object_set_new(pl, "code", json_integer(st->error_code));
    }
    report(w, json_string_value(json_object_get(r, "b")), json_string_value(json_object_get(r, "t")), pl);
    json_decref(r);
}

static void on_webhook_get(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    (void)inst;
    wa *w = priv;
    char mode[32], tok[512], ch[300];
    if (qarg(req, "hub.mode", mode, sizeof mode) < 0 || strcmp(mode, "subscribe") ||
        qarg(req, "hub.verify_token", tok, sizeof tok) < 0 ||
        !acdm_ct_equal(tok, strlen(tok), w->c.verify_token, strlen(w->c.verify_token))) {
        acdm_problem(resp, 403, "Forbidden", "hub.mode must be subscribe and hub.verify_token this channel's verify token",
                     w->body, sizeof w->body);
        return;
    }
    long cl = qarg(req, "hub.challenge", ch, sizeof ch);
    if (cl <= 0) { acdm_problem(resp, 400, "Bad request", "hub.challenge: required", w->body, sizeof w->body); return; }
    for (const char *p = ch; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7E) {
            acdm_problem(resp, 400, "Bad request", "hub.challenge: printable characters only", w->body, sizeof w->body);
            return;
        }
    snprintf(w->body, sizeof w->body, "%s", ch);
    resp->status = 200;
    resp->content_type = "text/plain";
    resp->body = w->body;
}

static void on_webhook_post(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    wa *w = priv;
    if (!req->content_type || strncasecmp(req->content_type, "application/json", 16)) {
        w->n.rejected++;
        acdm_problem(resp, 415, "Unsupported Media Type", "Content-Type: application/json required (Meta's webhooks)",
                     w->body, sizeof w->body);
        return;
    }
    const char *sigh = acdm_http_header_get(req, "x-hub-signature-256");
    if (!sig_meta_ok(sigh, w->c.app_secret, req->body, req->body_len)) {
        w->n.rejected++;
        w->host->log(inst, ACDM_PLOG_WARN, "refused a webhook POST: X-Hub-Signature-256 %s", sigh ? "wrong" : "missing");
        acdm_problem(resp, 401, "Unauthorized", "X-Hub-Signature-256: missing or wrong", w->body, sizeof w->body);
        return;
    }
    wa_batch bt;
    char err[200];
    if (wa_parse(req->body, req->body_len, &bt, err, sizeof err) < 0) {
        w->n.rejected++;
        acdm_problem(resp, 400, "Bad payload", err, w->body, sizeof w->body);
        return;
    }
    if (bt.n_skipped) {
        w->n.skipped += bt.n_skipped;
        w->host->log(inst, ACDM_PLOG_WARN, "%zu item(s) of a webhook without an id or a sender were skipped", bt.n_skipped);
    }
    for (size_t i = 0; i < bt.n_errs; i++) {
        snprintf(w->last_error, sizeof w->last_error, "%d: %s", bt.errs[i].code, bt.errs[i].title ? bt.errs[i].title : "");
        if (bt.errs[i].code == 190) w->token_bad = true;
        w->host->log(inst, ACDM_PLOG_WARN, "WhatsApp reports error %d: %s%s%s", bt.errs[i].code,
                     bt.errs[i].title ? bt.errs[i].title : "", bt.errs[i].details ? " -- " : "",
                     bt.errs[i].details ? bt.errs[i].details : "");
    }
    for (size_t i = 0; i < bt.n_sts; i++) on_status(w, &bt.sts[i]);
    batch *b = calloc(1, sizeof *b);
    if (!b) { wa_batch_free(&bt); acdm_problem(resp, 503, "Busy", "out of memory", w->body, sizeof w->body); return; }
    b->w = w;
    b->token = resp->token;
    b->in_handler = true;
    b->next = w->batches;
    if (w->batches) w->batches->prev = b;
    w->batches = b;
    for (size_t i = 0; i < bt.n_msgs; i++) {
        wa_message *m = &bt.msgs[i];
        if (m->phone_number_id && strcmp(m->phone_number_id, w->c.phone_number_id)) {
            w->host->log(inst, ACDM_PLOG_WARN, "message %s is for phone number id %s, not this instance's %s: "
                         "stored anyway (check the app's webhook subscription)", m->id, m->phone_number_id, w->c.phone_number_id);
        }
        const char *who = m->from ? m->from : m->user_id;
        w->n.received++;
        window_touch(w, who, m->timestamp);
        json_t *pl = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?}", "wamid", m->id, "type", m->type_name ? m->type_name : "unknown",
                               "wa_id", m->from, "user_id", m->user_id, "name", m->name, "context", m->context_id);
        if (pl && m->type == WA_T_REACTION)
            json_object_set_new(pl, "reaction", json_pack("{s:s?, s:s}", "message", m->reaction_to, "emoji", m->emoji));
        if (pl && m->media_id)
            json_object_set_new(pl, "media", json_pack("{s:s, s:s?, s:s?, s:s?}", "id", m->media_id, "mime_type", m->mime_type,
                                                       "filename", m->filename, "caption", m->caption));
        if (pl && m->type == WA_T_LOCATION) json_object_set(pl, "location", json_object_get(m->raw, "location"));
        if (pl && m->type == WA_T_CONTACTS) json_object_set(pl, "contacts", json_object_get(m->raw, "contacts"));
        if (pl && m->type == WA_T_INTERACTIVE) json_object_set(pl, "interactive", json_object_get(m->raw, "interactive"));
        if (pl && m->type == WA_T_BUTTON) json_object_set(pl, "button", json_object_get(m->raw, "button"));
        if (pl && m->error_code) json_object_set_new(pl, "error_code", json_integer(m->error_code));
        char *pls = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
        json_decref(pl);
        sub *s = calloc(1, sizeof *s);
        if (!s || !pls) {
            free(s);
            free(pls);
            b->failed = true;
            snprintf(b->why, sizeof b->why, "out of memory");
            continue;
        }
        s->b = b;
        snprintf(s->wamid, sizeof s->wamid, "%s", m->id);
        snprintf(s->from, sizeof s->from, "%s", who);
        snprintf(s->conv, sizeof s->conv, "wa:%s", who);
        s->type = m->type;
        s->payload = pls;
        s->text = strdup(m->text);
        s->subject = m->name ? strdup(m->name) : NULL;
        s->customer_id = m->user_id ? strdup(m->user_id) : NULL;
        if (m->media_id) {
            s->media_id = strdup(m->media_id);
            s->mime = m->mime_type ? strdup(m->mime_type) : NULL;
            s->sha256 = m->sha256 ? strdup(m->sha256) : NULL;
            s->filename = m->filename ? strdup(m->filename) : NULL;
        }
        b->outstanding++;
        sub_add(w, s);
    }
    wa_batch_free(&bt);
    b->in_handler = false;
    if (b->outstanding == 0) {          /* nothing to wait for (statuses only, or answered already) */
        batch_answer(w, b, resp);
        batch_free(b);
        return;
    }
    resp->defer = 1;
}

/* GET /templates[?to=<citizen>]: the configured templates for the desk's template picker and,
 * with to, when that citizen last wrote ("last_in", epoch seconds: the window's start). Any
 * valid acdm token (an agent's too: the desk needs it). */
static void on_templates(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    wa *w = priv;
    const char *a = req->authorization;
    int rc = ACDM_P_ENOENT;
    if (a && !strncasecmp(a, "Bearer ", 7) && ACDM_HOST_HAS(w->host, check_token) && w->host->check_token)
        rc = w->host->check_token(inst, a + 7);
    if (rc == ACDM_P_EFULL) {             /* this address is blocked by the failed sign-in limit */
        acdm_problem(resp, 429, "Too Many Requests", "too many failed sign-ins from this address", w->body, sizeof w->body);
        return;
    }
    if (rc != 0 && rc != ACDM_P_EPERM) {
        acdm_problem(resp, 401, "Unauthorized", "send Authorization: Bearer <an acdm token>", w->body, sizeof w->body);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < w->c.n_templates; i++) {
        const tmpl *t = &w->c.templates[i];
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i}", "name", t->name, "language", t->language,
                                             "label", t->label, "params", t->params));
    }
    json_t *doc = json_pack("{s:o, s:i}", "templates", arr, "window_s", WINDOW_S);
    char to[170];
    if (doc && qarg(req, "to", to, sizeof to) > 0) {    /* the window of one citizen */
        long long ago = since_last(w, to);
        json_object_set_new(doc, "last_in", ago >= 0 ? json_integer((json_int_t)((long long)time(NULL) - ago)) : json_null());
    }
    free(w->tbody);
    w->tbody = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    resp->status = 200;
    resp->content_type = "application/json";
    resp->body = w->tbody ? w->tbody : "{\"templates\":[]}";
}

/* ---------------------------------------------------------------- lifecycle */

static int wa_init(acdm_instance *inst, void *priv, const acdm_host *host, const char *config_json,
                   char *err, size_t el)
{
    wa *w = priv;
    if (host->abi_major != ACDM_PLUGIN_ABI_MAJOR || !ACDM_HOST_HAS(host, http_respond)) {
        snprintf(err, el, "host table too old for this plugin (needs http_respond)");
        return -1;
    }
    w->host = host;
    w->inst = inst;
    return cfg_parse(config_json, &w->c, err, el);
}

static int wa_start(acdm_instance *inst, void *priv)
{
    wa *w = priv;
    if (w->host->http_route(inst, "GET", "/webhook", on_webhook_get) < 0 ||
        w->host->http_route(inst, "POST", "/webhook", on_webhook_post) < 0 ||
        w->host->http_route(inst, "GET", "/templates", on_templates) < 0) {
        w->host->log(inst, ACDM_PLOG_ERR, "cannot register /channels/%s/webhook", w->host->instance_name(inst));
        return -1;
    }
    media_resume(w);
    w->host->log(inst, ACDM_PLOG_INFO, "WhatsApp number %s via %s/%s (%zu template%s)", w->c.phone_number_id,
                 w->c.graph_url, w->c.api_version, w->c.n_templates, w->c.n_templates == 1 ? "" : "s");
    return 0;
}

static int wa_reload(acdm_instance *inst, void *priv, const char *config_json, char *err, size_t el)
{
    (void)inst;
    wa *w = priv;
    cfg c;
    if (cfg_parse(config_json, &c, err, el) < 0) return -1;
    cfg_free(&w->c);
    w->c = c;
    w->token_bad = false;      /* a renewed token gets its chance */
    return 0;
}

static void wa_stop(acdm_instance *inst, void *priv)
{
    (void)inst;
    wa *w = priv;
    if (w->pump_timer) { w->host->timer_stop(w->pump_timer); w->pump_timer = NULL; }
}

static void wa_destroy(acdm_instance *inst, void *priv)
{
    (void)inst;
    wa *w = priv;
    while (w->out) outq_free(w, w->out);
    while (w->fetches) mfetch_free(w, w->fetches);
    while (w->recents) { recent *r = w->recents; w->recents = r->next; free(r); }
    while (w->subs) { sub *x = w->subs; w->subs = x->next; sub_free(x); }
    while (w->batches) batch_free(w->batches);   /* the host answered them 503 at stop */
    cfg_free(&w->c);
    free(w->tbody);
}

static char *wa_status_json(acdm_instance *inst, void *priv)
{
    (void)inst;
    wa *w = priv;
    int q = 0;
    for (outq *m = w->out; m; m = m->next) q++;
    json_t *o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:s?}", "healthy", !w->token_bad,
                          "received", (json_int_t)w->n.received, "rejected", (json_int_t)w->n.rejected,
                          "skipped", (json_int_t)w->n.skipped, "sent", (json_int_t)w->n.sent,
                          "send_failed", (json_int_t)w->n.send_failed, "statuses", (json_int_t)w->n.statuses,
                          "media", (json_int_t)w->n.media, "media_failed", (json_int_t)w->n.media_failed,
                          "sending", q, "last_error", w->last_error[0] ? w->last_error : NULL);
    if (o && w->token_bad)
        json_object_set_new(o, "reason", json_string("the Graph API refused the access token: renew access_token_file"));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static const acdm_plugin whatsapp_plugin = ACDM_PLUGIN_INIT(
    .name = "whatsapp",
    .version = "1.0.0",
    .description = "WhatsApp Business (Meta Cloud API): signed webhooks in, replies and templates out, statuses",
    .kinds = "whatsapp",
    .instance_size = sizeof(wa),
    .check_config = wa_check_config,
    .init = wa_init,
    .start = wa_start,
    .reload = wa_reload,
    .deliver = wa_deliver,
    .on_event = wa_on_event,
    .stop = wa_stop,
    .destroy = wa_destroy,
    .status_json = wa_status_json);

ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &whatsapp_plugin; }
