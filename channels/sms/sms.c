/* sms.c -- the SMS channel plugin: citizens text the KCC through Kannel (sms-service get-url /
 * post-url in, sendsms out, delivery reports at our dlr-url) or a Twilio-compatible provider
 * (signed form posts in, the Messages REST API out, status callbacks). One instance per sender
 * number. Config keys and the Kannel groups to use: docs/operations.md ("SMS channel").
 *
 * Routes under /channels/<instance>:
 *   GET|POST /mo       Kannel's sms-service calls this (token required: ?token= or a bearer);
 *                      answered 200 (empty) only after the bericht is committed, 503 when it was
 *                      not stored (Kannel retries; its message id keeps a retry from doubling)
 *   GET      /dlr      Kannel's delivery reports for our sendsms (dlr-url, with the token)
 *   POST     /sms      Twilio-compatible inbound (X-Twilio-Signature required) -> <Response/>
 *   POST     /status   Twilio-compatible status callbacks (signed)
 *
 * Outbound: the reply is encoded (GSM-7 after substitutions, else UCS-2) and split into parts
 * by smstext.c; with Kannel every part is its own sendsms (concatenation UDH) with its own
 * dlr-url (our message id and the part), so the message's delivery state is exactly the worst
 * of its parts. Part states only move forward (accepted < sent < delivered; failed is final).
 * Message records live in the instance's kv ("m:<id>", 7 days), undelivered sends in "outbox"
 * (resent at start). Opt-out: STOP / AFMELDEN / UITSCHRIJVEN (and Twilio's 21610) register the
 * number in kv ("optout:<number>") until it texts START. */
#include <acdm/plugin.h>
#include <acdm/plugin_util.h>

#include "bot.h"         /* channels/webchat/bot.h: the web chat's bot protocols (Rasa) */
#include "botstate.h"    /* bot-first state and kv helpers, shared with channels/whatsapp */
#include "jcfg.h"        /* the config readers (strings, integers, secret files), shared with channels/whatsapp */
#include "outbox.h"      /* the pending-send list in kv and the retry backoff, shared with channels/whatsapp */
#include "sig.h"
#include "smsproto.h"
#include "smstext.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define RECORD_TTL_S (7u * 24u * 3600u)

enum { P_KANNEL = 0, P_TWILIO = 1 };

typedef struct cfg {
    int provider;
    char *from, *public_url, *token;
    char *sendsms_url, *username, *password;
    int dlr_mask;
    char *api_url, *account_sid, *auth_token;
    int max_parts, retries, retry_ms;
    char *bot_url;              /* bot first: the bot's URL (Rasa REST), or NULL */
    const bot_protocol *bot;
    int bot_timeout_ms;
} cfg;

/* A reply being handed to the gateway (parts not yet accepted). */
typedef struct outmsg {
    struct outmsg *next;
    char id[80], bericht[64], to[64];
    sms_split sp;
    int tries[SMS_MAX_PARTS];
    bool busy[SMS_MAX_PARTS];
    acdm_timer *retry[SMS_MAX_PARTS];
    struct part_ref { struct outmsg *m; int part; } pref[SMS_MAX_PARTS]; /* timer / request users */
    unsigned char ref;
    bool failed;                 /* a part failed for good */
    struct pending *ack;         /* bot first: the MO acknowledged once this is accepted */
} outmsg;

/* An inbound request waiting for its submit callback (its HTTP answer is deferred). */
/* Messages of one conversation (one number) are submitted one after the other: a follow-up
 * submitted before the first SMS of its conversation is committed would become a second
 * bericht. The list is in arrival order. */
typedef struct pending {
    struct pending *prev, *next;
    struct sms *s;
    bool in_handler, done, twiml, submitted, bot;
    acdm_submit_outcome outcome;
    char bericht[64], from[64], conv[128], idem[200];
    char *text;                  /* the core's text from the callback (closed text, error) */
    char *in_text, *in_payload;  /* the inbound message, until it is submitted */
    void *token;
} pending;

typedef struct sms {
    const acdm_host *host;
    acdm_instance *inst;
    cfg c;
    char body[1024];
    outmsg *out;
    pending *pendings;
    struct { unsigned long mo, mo_rejected, sent_parts, send_failed, dlrs; } n;
    char last_error[256];
    bool unhealthy;
} sms;

/* ---------------------------------------------------------------- small helpers */

typedef struct { char *p; size_t n, cap; bool oom; } sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n + 1) c *= 2;
        char *np = realloc(b->p, c);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_enc(sbuf *b, const char *s, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            sb_add(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hx[c >> 4], hx[c & 15]};
            sb_add(b, e, 3);
        }
    }
}
static void sb_arg(sbuf *b, const char *name, const char *val)
{
    if (b->n && b->p[b->n - 1] != '?') sb_str(b, "&");
    sb_str(b, name);
    sb_str(b, "=");
    sb_enc(b, val, strlen(val));
}

static void new_id(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        memset(b, 0, sizeof b);
        memcpy(b, &ts, sizeof ts < sizeof b ? sizeof ts : sizeof b);
    }
    for (int k = 0; k < 16; k++) snprintf(out + 2 * k, 3, "%02x", b[k]);
}

/* ---------------------------------------------------------------- config */

static void cfg_free(cfg *c)
{
    free(c->from); free(c->public_url); free(c->token); free(c->sendsms_url); free(c->username);
    free(c->password); free(c->api_url); free(c->account_sid); free(c->auth_token); free(c->bot_url);
    memset(c, 0, sizeof *c);
}

static bool http_url(const char *s)
{
    return s && ((!strncmp(s, "http://", 7) && s[7]) || (!strncmp(s, "https://", 8) && s[8]));
}

static int cfg_parse(const char *text, cfg *c, char *err, size_t el)
{
    memset(c, 0, sizeof *c);
    json_t *o = json_loads(text ? text : "{}", 0, NULL);
    char *prov = NULL;
    int rc = -1;
    if (!json_is_object(o)) { snprintf(err, el, "config must be a JSON object"); goto out; }
    if (jcfg_str(o, "provider", true, NULL, &prov, err, el) < 0) goto out;
    if (!strcmp(prov, "kannel")) c->provider = P_KANNEL;
    else if (!strcmp(prov, "twilio")) c->provider = P_TWILIO;
    else { snprintf(err, el, "provider must be \"kannel\" or \"twilio\", not \"%s\"", prov); goto out; }
    if (jcfg_str(o, "from", true, NULL, &c->from, err, el) < 0 ||
        jcfg_str(o, "public_url", true, NULL, &c->public_url, err, el) < 0 ||
        jcfg_int(o, "max_parts", 6, 1, SMS_MAX_PARTS, &c->max_parts, err, el) < 0 ||
        jcfg_int(o, "retries", 5, 1, 20, &c->retries, err, el) < 0 ||
        jcfg_int(o, "retry_ms", 2000, 10, 3600000, &c->retry_ms, err, el) < 0)
        goto out;
    if (!http_url(c->public_url)) { snprintf(err, el, "public_url must be an http:// or https:// URL"); goto out; }
    json_t *bot = json_object_get(o, "bot");
    if (bot && !json_is_null(bot)) {
        if (!json_is_object(bot)) { snprintf(err, el, "bot must be an object {url, protocol, timeout_ms}"); goto out; }
        if (jcfg_str(bot, "url", true, NULL, &c->bot_url, err, el) < 0) { snprintf(err, el, "bot.url: required, the bot's http(s) URL"); goto out; }
        if (!http_url(c->bot_url)) { snprintf(err, el, "bot.url must be an http:// or https:// URL"); goto out; }
        json_t *pn = json_object_get(bot, "protocol");
        if (pn && !json_is_string(pn)) { snprintf(err, el, "bot.protocol must be a string (one of: %s)", bot_protocol_names()); goto out; }
        c->bot = bot_protocol_find(pn ? json_string_value(pn) : "rasa");
        if (!c->bot) { snprintf(err, el, "bot.protocol: unknown (known: %s)", bot_protocol_names()); goto out; }
        if (jcfg_int(bot, "timeout_ms", 5000, 100, 60000, &c->bot_timeout_ms, err, el) < 0) goto out;
    }
    size_t pl = strlen(c->public_url);
    if (c->public_url[pl - 1] == '/') c->public_url[pl - 1] = '\0';
    if (c->provider == P_KANNEL) {
        if (jcfg_str(o, "sendsms_url", true, NULL, &c->sendsms_url, err, el) < 0 ||
            jcfg_str(o, "username", true, NULL, &c->username, err, el) < 0 ||
            jcfg_secret(o, "password_file", true, &c->password, err, el) < 0 ||
            jcfg_secret(o, "token_file", true, &c->token, err, el) < 0 ||
            jcfg_int(o, "dlr_mask", 27, 0, 63, &c->dlr_mask, err, el) < 0)
            goto out;
        if (!http_url(c->sendsms_url)) { snprintf(err, el, "sendsms_url must be an http:// or https:// URL"); goto out; }
        if (strlen(c->token) < 16) { snprintf(err, el, "token_file: the token must have at least 16 characters"); goto out; }
    } else {
        if (jcfg_str(o, "api_url", false, NULL, &c->api_url, err, el) < 0 ||
            jcfg_str(o, "account_sid", true, NULL, &c->account_sid, err, el) < 0 ||
            jcfg_secret(o, "auth_token_file", true, &c->auth_token, err, el) < 0)
            goto out;
        if (!c->api_url && !(c->api_url = strdup("https://api.twilio.com"))) goto out;
        if (!http_url(c->api_url)) { snprintf(err, el, "api_url must be an http:// or https:// URL"); goto out; }
        size_t al = strlen(c->api_url);
        if (c->api_url[al - 1] == '/') c->api_url[al - 1] = '\0';
    }
    rc = 0;
out:
    free(prov);
    json_decref(o);
    if (rc < 0) cfg_free(c);
    return rc;
}

static int sms_check_config(const char *config_json, char *err, size_t el)
{
    cfg c;
    if (cfg_parse(config_json, &c, err, el) < 0) return -1;
    cfg_free(&c);
    return 0;
}

/* ---------------------------------------------------------------- kv records */

static int kv_put(sms *s, const char *key, json_t *doc, uint32_t ttl)
{
    return botkv_put(s->host, s->inst, key, doc, ttl);
}

static json_t *kv_json(sms *s, const char *key)
{
    return botkv_get(s->host, s->inst, key);
}

static bool opted_out(sms *s, const char *number, char *since, size_t sl)
{
    char key[96];
    snprintf(key, sizeof key, "optout:%s", number);
    json_t *o = kv_json(s, key);
    if (!o) return false;
    snprintf(since, sl, "%s", json_string_value(json_object_get(o, "since")) ?
             json_string_value(json_object_get(o, "since")) : "?");
    json_decref(o);
    return true;
}

static void optout_set(sms *s, const char *number, const char *via)
{
    char key[96], when[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(key, sizeof key, "optout:%s", number);
    if (!via) { s->host->kv_set(s->inst, key, NULL, 0); return; }
    json_t *o = json_pack("{s:s, s:s}", "since", when, "via", via);
    if (o) kv_put(s, key, o, 0);
    json_decref(o);
    s->host->log(s->inst, ACDM_PLOG_NOTICE, "%s opted out of SMS (%s)", number, via);
}

/* The ids of the sends not yet handed over in full (kv "outbox", resent at start). */
static void outbox_update(sms *s, const char *add, const char *remove)
{
    outbox_list(s->host, s->inst, "outbox", add, remove);
}

/* ---------------------------------------------------------------- delivery states */

static const char *state_name(int st)
{
    switch (st) {
    case SMS_ST_NONE: return "queued";
    case SMS_ST_ACCEPTED: return "accepted";
    case SMS_ST_SENT: return "sent";
    case SMS_ST_DELIVERED: return "delivered";
    default: return "failed";
    }
}

/* The message's state is the worst of its parts: failed if any failed, else the least advanced. */
static int aggregate(json_t *st, int *n_delivered)
{
    int agg = SMS_ST_DELIVERED, failed = 0;
    *n_delivered = 0;
    for (size_t i = 0; i < json_array_size(st); i++) {
        int v = (int)json_integer_value(json_array_get(st, i));
        if (v == SMS_ST_FAILED) failed = 1;
        else if (v < agg) agg = v;
        if (v == SMS_ST_DELIVERED) (*n_delivered)++;
    }
    return failed ? SMS_ST_FAILED : agg;
}

/* Moves part `part` of message record `id` to state `st` (never backwards) and reports the
 * message's state to the desk when it changed. */
static void part_state(sms *s, const char *id, int part, int st, const char *why, int code)
{
    char key[96];
    snprintf(key, sizeof key, "m:%s", id);
    json_t *r = kv_json(s, key);
    if (!r) {
        s->host->log(s->inst, ACDM_PLOG_INFO, "delivery state for unknown or expired message %s", id);
        return;
    }
    json_t *sta = json_object_get(r, "st");
    if (!json_is_array(sta) || part < 0 || (size_t)part >= json_array_size(sta)) {
        s->host->log(s->inst, ACDM_PLOG_WARN, "delivery state for part %d of message %s, which has %zu part(s)",
                     part, id, json_array_size(sta));
        json_decref(r);
        return;
    }
    int cur = (int)json_integer_value(json_array_get(sta, (size_t)part));
    /* never backwards; delivered and failed are final for a part */
    if (cur == SMS_ST_FAILED || cur == SMS_ST_DELIVERED || st <= cur) { json_decref(r); return; }
    json_array_set_new(sta, (size_t)part, json_integer(st));
    if (st == SMS_ST_FAILED && why && !json_string_value(json_object_get(r, "why")))
        json_object_set_new(r, "why", json_string(why));
    int nd = 0;
    int agg = aggregate(sta, &nd);
    int rep = (int)json_integer_value(json_object_get(r, "rep"));
    if (agg != rep) json_object_set_new(r, "rep", json_integer(agg));
    kv_put(s, key, r, RECORD_TTL_S);
    if (agg != rep) {
        const char *b = json_string_value(json_object_get(r, "b"));
        json_t *pl = json_pack("{s:s, s:s, s:I, s:i, s:s?, s:s, s:s?}", "delivery", state_name(agg),
                               "message", id, "parts", (json_int_t)json_array_size(sta),
                               "parts_delivered", nd, "encoding",
                               json_string_value(json_object_get(r, "enc")), "provider",
                               s->c.provider == P_KANNEL ? "kannel" : "twilio",
                               "error", json_string_value(json_object_get(r, "why")));
        if (pl && code >= 0) json_object_set_new(pl, "code", json_integer(code));
        char *pls = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
        json_decref(pl);
        if (b && *b && pls) s->host->delivery_report(s->inst, b, json_string_value(json_object_get(r, "t")), pls);
        free(pls);
        if (agg == SMS_ST_FAILED)
            s->host->log(s->inst, ACDM_PLOG_WARN, "SMS %s for bericht %s not delivered: %s", id,
                         b ? b : "?", why ? why : "");
    }
    json_decref(r);
}

/* A reply that is refused before it is sent: shown to the agent with the reason. */
static void refuse(sms *s, const char *bericht, const char *text, const char *id, const char *why)
{
    json_t *pl = json_pack("{s:s, s:s, s:s, s:s}", "delivery", "failed", "message", id, "error", why,
                           "provider", s->c.provider == P_KANNEL ? "kannel" : "twilio");
    char *pls = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
    json_decref(pl);
    if (pls && bericht && *bericht) s->host->delivery_report(s->inst, bericht, text, pls);
    free(pls);
    s->host->log(s->inst, ACDM_PLOG_NOTICE, "SMS for bericht %s not sent: %s", bericht && *bericht ? bericht : "(bot)", why);
}

/* ---------------------------------------------------------------- sending */

static void send_part(sms *s, outmsg *m, int i);

static void out_free(sms *s, outmsg *m)
{
    for (outmsg **mp = &s->out; *mp; mp = &(*mp)->next)
        if (*mp == m) { *mp = m->next; break; }
    for (size_t i = 0; i < SMS_MAX_PARTS; i++)
        if (m->retry[i]) s->host->timer_stop(m->retry[i]);
    sms_split_free(&m->sp);
    free(m);
}

/* All parts handed over (or failed for good): the send is no longer in the outbox. */
static void bot_sent(sms *s, struct pending *p, bool ok);

static void out_check_done(sms *s, outmsg *m)
{
    for (size_t i = 0; i < m->sp.n_parts; i++)
        if (m->busy[i] || m->retry[i]) return;
    outbox_update(s, NULL, m->id);
    struct pending *ack = m->ack;
    bool ok = !m->failed;
    out_free(s, m);
    if (ack) bot_sent(s, ack, ok);
}

typedef struct part_ref part_ref;

static void retry_fire(acdm_instance *inst, void *priv, void *user)
{
    (void)inst;
    part_ref *pr = user;
    outmsg *m = pr->m;
    int i = pr->part;
    m->retry[i] = NULL;
    send_part(priv, m, i);
}

static void attempt_failed(sms *s, outmsg *m, int i, bool permanent, const char *why, int code)
{
    snprintf(s->last_error, sizeof s->last_error, "%s", why);
    uint64_t delay;
    if (!permanent && outbox_retry_delay(s->c.retries, s->c.retry_ms, m->tries[i], &delay)) {
        m->retry[i] = s->host->timer_start(s->inst, delay, 0, retry_fire, &m->pref[i]);
        if (m->retry[i]) {
            s->host->log(s->inst, ACDM_PLOG_WARN, "SMS %s part %d: %s; retrying in %llu ms", m->id,
                         i + 1, why, (unsigned long long)delay);
            return;
        }
    }
    s->n.send_failed++;
    m->failed = true;
    part_state(s, m->id, i, SMS_ST_FAILED, why, code);
}

static void sent(acdm_instance *inst, void *priv, void *user, int status, const char *body,
                 size_t len, const char *error)
{
    (void)inst;
    sms *s = priv;
    part_ref *pr = user;
    outmsg *m = pr->m;
    int i = pr->part;
    m->busy[i] = false;
    char why[300];
    char ans[160];
    size_t al = len < sizeof ans - 1 ? len : sizeof ans - 1;
    memcpy(ans, body ? body : "", body ? al : 0);
    ans[body ? al : 0] = '\0';
    for (char *p = ans; *p; p++) if (*p == '\n' || *p == '\r') *p = ' ';
    if (status >= 200 && status < 300) {
        s->n.sent_parts++;
        s->unhealthy = false;
        if (s->c.provider == P_TWILIO) {
            json_t *o = json_loadb(body ? body : "", len, 0, NULL);
            const char *st = json_string_value(json_object_get(o, "status"));
            int v = twilio_status_state(st);
            part_state(s, m->id, i, v > SMS_ST_ACCEPTED ? v : SMS_ST_ACCEPTED, NULL, -1);
            json_decref(o);
        } else {
            part_state(s, m->id, i, SMS_ST_ACCEPTED, NULL, -1);
        }
    } else if (status < 0) {
        s->unhealthy = true;
        snprintf(why, sizeof why, "gateway unreachable: %s", error ? error : "transport error");
        attempt_failed(s, m, i, false, why, -1);
    } else if (s->c.provider == P_TWILIO && status >= 400 && status < 500) {
        json_t *o = json_loadb(body ? body : "", len, 0, NULL);
        int code = (int)json_integer_value(json_object_get(o, "code"));
        const char *msg = json_string_value(json_object_get(o, "message"));
        if (code == 21610) {
            optout_set(s, m->to, "21610");
            snprintf(why, sizeof why, "the citizen has opted out (STOP, Twilio 21610): no SMS until they text START");
        } else {
            snprintf(why, sizeof why, "provider refused the message: HTTP %d, code %d: %s", status, code,
                     msg ? msg : ans);
        }
        if (status == 401 || status == 403) s->unhealthy = true;
        json_decref(o);
        attempt_failed(s, m, i, status != 429, why, code ? code : status);
    } else {
        /* Kannel: 4xx a request or config error (403 non-routable / bad password), 5xx temporary */
        snprintf(why, sizeof why, "gateway answered HTTP %d: %s", status, ans);
        if (status == 401 || status == 403) s->unhealthy = true;
        attempt_failed(s, m, i, status >= 400 && status < 500, why, status);
    }
    out_check_done(s, m);
}

static void send_part(sms *s, outmsg *m, int i)
{
    sbuf u = {0}, dl = {0}, body = {0};
    const char *txt = m->sp.text + m->sp.part_off[i];
    size_t tl = m->sp.part_off[i + 1] - m->sp.part_off[i];
    char part[8];
    snprintf(part, sizeof part, "%d", i);
    const char *headers[3] = {NULL, NULL, NULL};
    char authh[400];
    acdm_http_out o = {.struct_size = sizeof o, .timeout_ms = 15000};
    if (s->c.provider == P_KANNEL) {
        /* our id and the part in the dlr-url; %d and %A are Kannel's (the DLR value and the
         * SMSC's answer) */
        sb_str(&dl, s->c.public_url);
        sb_str(&dl, "/dlr?m=");
        sb_str(&dl, m->id);
        sb_str(&dl, "&p=");
        sb_str(&dl, part);
        sb_str(&dl, "&s=%d&a=%A&token=");
        sb_enc(&dl, s->c.token, strlen(s->c.token));
        sb_str(&u, s->c.sendsms_url);
        sb_str(&u, strchr(s->c.sendsms_url, '?') ? "&" : "?");
        sb_arg(&u, "username", s->c.username);
        sb_arg(&u, "password", s->c.password);
        sb_arg(&u, "from", s->c.from);
        sb_arg(&u, "to", m->to);
        sb_str(&u, "&text=");
        sb_enc(&u, txt, tl);
        sb_arg(&u, "charset", "UTF-8");
        sb_arg(&u, "coding", m->sp.coding == SMS_GSM7 ? "0" : "2");
        if (m->sp.n_parts > 1) {
            char udh[40];
            snprintf(udh, sizeof udh, "%%05%%00%%03%%%02X%%%02X%%%02X", m->ref,
                     (unsigned)m->sp.n_parts, (unsigned)(i + 1));
            sb_str(&u, "&udh=");
            sb_str(&u, udh);
        }
        char mask[8];
        snprintf(mask, sizeof mask, "%d", s->c.dlr_mask);
        if (s->c.dlr_mask) {
            sb_arg(&u, "dlr-mask", mask);
            sb_str(&u, "&dlr-url=");
            if (dl.p) sb_enc(&u, dl.p, dl.n);
        }
        o.method = "GET";
    } else {
        /* Twilio: one message (the provider splits it), our id in the StatusCallback */
        sb_str(&u, s->c.api_url);
        sb_str(&u, "/2010-04-01/Accounts/");
        sb_enc(&u, s->c.account_sid, strlen(s->c.account_sid));
        sb_str(&u, "/Messages.json");
        sb_str(&dl, s->c.public_url);
        sb_str(&dl, "/status?m=");
        sb_str(&dl, m->id);
        sb_arg(&body, "To", m->to);
        sb_arg(&body, "From", s->c.from);
        sb_str(&body, "&Body=");
        sb_enc(&body, m->sp.text, m->sp.len);
        if (dl.p) sb_arg(&body, "StatusCallback", dl.p);
        char cred[400], b64[560];
        snprintf(cred, sizeof cred, "%s:%s", s->c.account_sid, s->c.auth_token);
        if (sig_base64(cred, strlen(cred), b64, sizeof b64) < 0) b64[0] = '\0';
        memset(cred, 0, sizeof cred);
        snprintf(authh, sizeof authh, "Authorization: Basic %s", b64);
        headers[0] = "Content-Type: application/x-www-form-urlencoded";
        headers[1] = authh;
        o.method = "POST";
        o.headers = headers;
        o.body = body.p;
        o.body_len = body.n;
    }
    o.url = u.p;
    m->tries[i]++;
    int rc = -1;
    if (u.p && !u.oom && !dl.oom && !body.oom) {
        m->busy[i] = true;
        rc = s->host->http_request(s->inst, &o, sent, &m->pref[i]);
        if (rc < 0) m->busy[i] = false;
    }
    memset(authh, 0, sizeof authh);
    free(u.p);
    free(dl.p);
    free(body.p);
    if (rc < 0) attempt_failed(s, m, i, false, "the request could not be started", -1);
}

static void out_start(sms *s, outmsg *m)
{
    for (int i = 0; i < SMS_MAX_PARTS; i++) { m->pref[i].m = m; m->pref[i].part = i; }
    m->next = s->out;
    s->out = m;
    for (size_t i = 0; i < m->sp.n_parts; i++) send_part(s, m, (int)i);
    out_check_done(s, m);
}

/* Sends text to `to` for bericht `bericht` as message `id`: recorded in kv first (so the DLRs
 * find it and a restart resends what the gateway did not take), then every part. */
static int send_text_ack(sms *s, const char *bericht, const char *id, const char *to, const char *text,
                         struct pending *ack);

static int send_text(sms *s, const char *bericht, const char *id, const char *to, const char *text)
{
    int rc = send_text_ack(s, bericht, id, to, text, NULL);
    return rc > 0 ? 0 : rc;            /* refused: the agent was told why */
}

/* As send_text; ack (bot first) is told when every part was accepted or one failed. */
static int send_text_ack(sms *s, const char *bericht, const char *id, const char *to, const char *text,
                         struct pending *ack)
{
    char since[40], why[300];
    if (opted_out(s, to, since, sizeof since)) {
        snprintf(why, sizeof why, "the citizen has opted out of SMS (STOP, %s): no SMS is sent until "
                 "they text START", since);
        refuse(s, bericht, text, id, why);
        return 1;
    }
    outmsg *m = calloc(1, sizeof *m);
    if (!m) return ACDM_P_ENOMEM;
    int rc = sms_split_text(text ? text : "", text ? strlen(text) : 0, s->c.provider == P_TWILIO ? 10 : (size_t)s->c.max_parts, &m->sp);
    if (rc < 0 || !m->sp.len) {
        if (rc == -2)
            snprintf(why, sizeof why, "the text is too long: more than %d SMS parts", s->c.max_parts);
        else
            snprintf(why, sizeof why, rc == -1 ? "the text is not valid UTF-8" : "the text is empty");
        refuse(s, bericht, text ? text : "", id, why);
        if (!rc) sms_split_free(&m->sp);
        free(m);
        return 1;
    }
    if (s->c.provider == P_TWILIO) {            /* the provider splits; one message, one state */
        m->sp.part_off[1] = m->sp.len;
        m->sp.n_parts = 1;
    }
    snprintf(m->id, sizeof m->id, "%s", id);
    snprintf(m->bericht, sizeof m->bericht, "%s", bericht);
    snprintf(m->to, sizeof m->to, "%s", to);
    unsigned char ref = 0;
    if (getrandom(&ref, 1, 0) != 1) ref = (unsigned char)time(NULL);
    m->ref = ref;
    json_t *st = json_array();
    for (size_t i = 0; i < m->sp.n_parts; i++) json_array_append_new(st, json_integer(SMS_ST_NONE));
    json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:o, s:i, s:s, s:i}", "b", bericht, "to", to, "t",
                          text, "enc", m->sp.coding == SMS_GSM7 ? "gsm7" : "ucs2", "st", st, "rep",
                          SMS_ST_NONE, "at", "", "ref", ref);
    char key[96];
    snprintf(key, sizeof key, "m:%s", id);
    if (!r || kv_put(s, key, r, RECORD_TTL_S) < 0) {
        json_decref(r);
        sms_split_free(&m->sp);
        free(m);
        return ACDM_P_EIO;
    }
    json_decref(r);
    outbox_update(s, id, NULL);
    m->ack = ack;
    out_start(s, m);
    return 0;
}

static int sms_deliver(acdm_instance *inst, void *priv, const acdm_reply *r)
{
    (void)inst;
    sms *s = priv;
    char id[80];
    if (r->struct_size >= offsetof(acdm_reply, message_id) + sizeof r->message_id && r->message_id &&
        *r->message_id && strlen(r->message_id) < sizeof id) {
        snprintf(id, sizeof id, "%s", r->message_id);
        for (char *p = id; *p; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-')) *p = '-';
    } else {
        new_id(id);
    }
    if (!r->to || !*r->to) { refuse(s, r->bericht_id, r->text ? r->text : "", id, "the bericht has no number to answer"); return 0; }
    return send_text(s, r->bericht_id, id, r->to, r->text);
}

/* ---------------------------------------------------------------- inbound */

static bool query_raw_of(const acdm_http_request *req, const char **q)
{
    if (req->struct_size >= offsetof(acdm_http_request, query_raw) + sizeof req->query_raw && req->query_raw) {
        *q = req->query_raw;
        return true;
    }
    *q = req->query;
    return false;
}

static void pending_free(pending *p)
{
    sms *s = p->s;
    if (p->prev) p->prev->next = p->next; else s->pendings = p->next;
    if (p->next) p->next->prev = p->prev;
    free(p->text);
    free(p->in_text);
    free(p->in_payload);
    free(p);
}

static void result_response(sms *s, pending *p, acdm_http_response *resp)
{
    if (p->outcome == ACDM_SUBMIT_ERROR || (unsigned)p->outcome > ACDM_SUBMIT_ERROR) {
        acdm_problem(resp, 503, "Not stored", p->text ? p->text : "the message could not be stored; retry",
                     s->body, sizeof s->body);
        return;
    }
    resp->status = 200;
    if (p->twiml) {
        resp->content_type = "text/xml";
        resp->body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";
    } else {
        resp->content_type = "text/plain";   /* empty: Kannel sends nothing back (max-messages 0) */
        resp->body = "";
    }
}

static void submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome outcome,
                      const char *bericht_id, const char *text);

static int pend_submit(sms *s, pending *p, char *err, size_t el)
{
    acdm_inbound in = {.struct_size = sizeof in, .kind = ACDM_KIND_NAME_SMS, .from = p->from,
                       .conversation = p->conv, .idempotency_key = p->idem, .text = p->in_text,
                       .payload_json = p->in_payload};
    p->submitted = true;
    if (ACDM_HOST_HAS(s->host, submit_err) && s->host->submit_err)
        return s->host->submit_err(s->inst, &in, submitted, p, err, el);
    return s->host->submit(s->inst, &in, submitted, p);
}

static int pend_start(sms *s, pending *p, char *err, size_t el);

static void refused_response(sms *s, int rc, const char *err, acdm_http_response *resp)
{
    s->n.mo_rejected++;
    if (rc == ACDM_P_EINVAL || rc == ACDM_P_ENOENT)
        acdm_problem(resp, 400, "Refused", err[0] ? err : acdm_plugin_strerror(rc), s->body, sizeof s->body);
    else
        acdm_problem(resp, 503, "Not stored", err[0] ? err : acdm_plugin_strerror(rc), s->body, sizeof s->body);
}

/* The next waiting message of conversation conv goes to the core. */
static void kick(sms *s, const char *conv)
{
    for (;;) {
        pending *n = s->pendings;
        while (n && (n->submitted || strcmp(n->conv, conv))) n = n->next;
        if (!n) return;
        char err[200] = "";
        int rc = pend_start(s, n, err, sizeof err);
        if (rc >= 0) return;          /* n may be answered and freed already */
        acdm_http_response r = {0};
        refused_response(s, rc, err, &r);
        s->host->http_respond(n->token, &r);
        pending_free(n);
    }
}

/* ---------------------------------------------------------------- Twilio media (after the commit) */

#define TWILIO_MEDIA_MAX (5u * 1024u * 1024u)

typedef struct tmedia {
    char bericht[64], from[64], idem[220];
    char *ctype;
} tmedia;

static void media_followup_done(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome o,
                                const char *bid, const char *text)
{
    (void)inst; (void)user; (void)bid;
    sms *s = priv;
    if (o == ACDM_SUBMIT_ERROR) s->host->log(s->inst, ACDM_PLOG_WARN, "a media follow-up was not stored: %s", text ? text : "");
}

/* The file joins the conversation as a follow-up (idempotent per MessageSid and index). */
static void tmedia_fetched(acdm_instance *inst, void *priv, void *user, int status, const char *body,
                           size_t len, const char *error)
{
    (void)inst;
    sms *s = priv;
    tmedia *t = user;
    char text[400], why[300] = "", id[64] = "";
    const char *ct = t->ctype ? t->ctype : "application/octet-stream";
    if (status < 200 || status >= 300) {
        if (status < 0) snprintf(why, sizeof why, "download failed: %s", error ? error : "transport error");
        else snprintf(why, sizeof why, "download answered HTTP %d", status);
    } else if (len > TWILIO_MEDIA_MAX) {
        snprintf(why, sizeof why, "%zu bytes is over the 5 MB limit", len);
    } else {
        char fname[80];
        snprintf(fname, sizeof fname, "bijlage-%s", strrchr(t->idem, '#') ? strrchr(t->idem, '#') + 1 : "1");
        int rc;
        if (ACDM_HOST_HAS(s->host, attachment_store) && s->host->attachment_store) {
            acdm_attachment_in a = {.struct_size = sizeof a, .bericht_id = t->bericht, .filename = fname,
                                    .content_type = ct, .data = body, .len = len};
            rc = s->host->attachment_store(s->inst, &a, id);
        } else {
            rc = s->host->attachment_put(s->inst, t->bericht, fname, ct, body, len, id);
        }
        if (rc < 0) snprintf(why, sizeof why, "the attachment store refused it: %s", acdm_plugin_strerror(rc));
    }
    json_t *pl;
    if (!why[0]) {
        snprintf(text, sizeof text, "[Bijlage ontvangen: %s]", ct);
        pl = json_pack("{s:[{s:s, s:s, s:s, s:I}]}", "attachments", "id", id, "filename", "bijlage", "content_type", ct,
                       "size", (json_int_t)len);
    } else {
        snprintf(text, sizeof text, "[Bijlage kon niet worden opgehaald: %s]", why);
        pl = json_pack("{s:s}", "media_error", why);
        s->host->log(s->inst, ACDM_PLOG_WARN, "media of %s not fetched: %s", t->idem, why);
    }
    char conv[128], *pls = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
    json_decref(pl);
    snprintf(conv, sizeof conv, "sms:%s", t->from);
    acdm_inbound in = {.struct_size = sizeof in, .kind = ACDM_KIND_NAME_SMS, .from = t->from, .conversation = conv,
                       .idempotency_key = t->idem, .text = text, .payload_json = pls};
    if (s->host->submit(s->inst, &in, media_followup_done, NULL) < 0)
        s->host->log(s->inst, ACDM_PLOG_WARN, "media follow-up for %s refused by the core", t->idem);
    free(pls);
    free(t->ctype);
    free(t);
}

/* MediaUrl{n} of a Twilio inbound, fetched with the account's Basic credentials. */
static void tmedia_start(sms *s, const pending *p, const char *bericht)
{
    json_t *pl = p->in_payload ? json_loads(p->in_payload, 0, NULL) : NULL;
    json_t *media = json_object_get(pl, "media");
    const char *sid = json_string_value(json_object_get(pl, "sid"));
    for (size_t i = 0; sid && i < json_array_size(media); i++) {
        const char *url = json_string_value(json_object_get(json_array_get(media, i), "url"));
        const char *ct = json_string_value(json_object_get(json_array_get(media, i), "content_type"));
        if (!url || !http_url(url)) continue;
        tmedia *t = calloc(1, sizeof *t);
        if (!t) break;
        snprintf(t->bericht, sizeof t->bericht, "%s", bericht);
        snprintf(t->from, sizeof t->from, "%s", p->from);
        snprintf(t->idem, sizeof t->idem, "twilio:%s#%zu", sid, i);
        t->ctype = ct ? strdup(ct) : NULL;
        char cred[400], b64[560], auth[600];
        snprintf(cred, sizeof cred, "%s:%s", s->c.account_sid, s->c.auth_token);
        if (sig_base64(cred, strlen(cred), b64, sizeof b64) < 0) b64[0] = '\0';
        memset(cred, 0, sizeof cred);
        snprintf(auth, sizeof auth, "Authorization: Basic %s", b64);
        const char *headers[] = {auth, NULL};
        acdm_http_out o = {.struct_size = sizeof o, .method = "GET", .url = url, .headers = headers, .timeout_ms = 30000};
        if (s->host->http_request(s->inst, &o, tmedia_fetched, t) < 0) tmedia_fetched(s->inst, s, t, -1, NULL, 0, "not started");
        memset(auth, 0, sizeof auth);
    }
    json_decref(pl);
}

static void submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome outcome,
                      const char *bericht_id, const char *text)
{
    (void)inst;
    sms *s = priv;
    pending *p = user;
    p->done = true;
    if (p->twiml && bericht_id && (outcome == ACDM_SUBMIT_QUEUED || outcome == ACDM_SUBMIT_FOLLOWUP))
        tmedia_start(s, p, bericht_id);
    p->outcome = outcome;
    snprintf(p->bericht, sizeof p->bericht, "%s", bericht_id ? bericht_id : "");
    free(p->text);
    p->text = text ? strdup(text) : NULL;
    if (outcome == ACDM_SUBMIT_CLOSED && bericht_id && text && *text) {
        /* the queue is closed: its text goes to the citizen once (a redelivery is DUPLICATE) */
        char id[37];
        new_id(id);
        send_text(s, bericht_id, id, p->from, text);
    }
    if (p->in_handler) return;       /* the handler answers (it is the newest: nothing waits) */
    acdm_http_response r = {0};
    result_response(s, p, &r);
    s->host->http_respond(p->token, &r);
    char conv[128];
    snprintf(conv, sizeof conv, "%s", p->conv);
    pending_free(p);
    kick(s, conv);
}

/* ---------------------------------------------------------------- bot first */

/* Bot first (config "bot", the web chat's bot protocols from channels/webchat/bot.c): a
 * number's texts go to the bot until it hands off, then to humans until the bericht ends. The
 * conversation's state and transcript live in kv "bot:<number>". An MO the bot handles is
 * acknowledged once the bot's answer was accepted by the gateway (so an acknowledged SMS has
 * been answered); a handoff is a bericht with the transcript, acknowledged after its commit. */
static void mo_ack(sms *s, pending *p)
{
    acdm_http_response r = {0};
    p->outcome = ACDM_SUBMIT_QUEUED;
    result_response(s, p, &r);
    s->host->http_respond(p->token, &r);
    char conv[128];
    snprintf(conv, sizeof conv, "%s", p->conv);
    pending_free(p);
    kick(s, conv);
}

/* From the bot to humans: the bericht carries the transcript; acknowledged after its commit. */
static void bot_handoff_prepare(sms *s, pending *p, const char *summary)
{
    bot_handoff_state(s->host, s->inst, p->from, RECORD_TTL_S, summary, &p->in_text, &p->in_payload);
    p->bot = false;
}

static void bot_handoff(sms *s, pending *p, const char *summary)
{
    bot_handoff_prepare(s, p, summary);
    char err[200] = "";
    int rc = pend_submit(s, p, err, sizeof err);
    if (rc < 0) {
        acdm_http_response r = {0};
        refused_response(s, rc, err, &r);
        s->host->http_respond(p->token, &r);
        char conv[128];
        snprintf(conv, sizeof conv, "%s", p->conv);
        pending_free(p);
        kick(s, conv);
    }
}

/* The bot's last reply was accepted by the gateway (ok) or not (then humans take over). */
static void bot_sent(sms *s, pending *p, bool ok)
{
    if (ok) mo_ack(s, p);
    else bot_handoff(s, p, "Het antwoord van de chatbot kon niet worden verstuurd");
}

static void bot_done(acdm_instance *inst, void *priv, void *user, int status, const char *body,
                     size_t len, const char *error)
{
    (void)inst;
    sms *s = priv;
    pending *p = user;
    bot_reply br;
    if (status < 200 || status >= 300 || !s->c.bot || s->c.bot->reply(body ? body : "", len, &br) < 0) {
        s->host->log(s->inst, ACDM_PLOG_WARN, "bot %s: %s (HTTP %d): %s goes to an agent", s->c.bot_url ? s->c.bot_url : "?",
                     error ? error : "no valid answer", status, p->from);
        bot_handoff(s, p, "Chatbot niet bereikbaar");
        return;
    }
    json_t *st = bot_state(s->host, s->inst, p->from);
    size_t n = json_array_size(br.texts);
    for (size_t i = 0; i < n; i++) bot_line(st, "bot", json_string_value(json_array_get(br.texts, i)));
    bot_state_put(s->host, s->inst, p->from, st, RECORD_TTL_S);
    json_decref(st);
    bool handoff = br.handoff;
    char summary[300];
    snprintf(summary, sizeof summary, "%s", br.summary ? br.summary : (br.intent ? br.intent : "Doorverbonden door de chatbot"));
    pending *ack = handoff ? NULL : p;
    int last_rc = 0;
    for (size_t i = 0; i < n; i++) {
        char id[37];
        new_id(id);
        last_rc = send_text_ack(s, "", id, p->from, json_string_value(json_array_get(br.texts, i)),
                                i + 1 == n ? ack : NULL);
    }
    bot_reply_free(&br);
    if (handoff) bot_handoff(s, p, summary);
    else if (!n) mo_ack(s, p);                      /* the bot chose to say nothing */
    else if (last_rc != 0) bot_handoff(s, p, "Het antwoord van de chatbot kon niet worden verstuurd");
}

/* Starts a waiting MO: to the bot (bot first, not yet handed off) or to the core. */
static int pend_start(sms *s, pending *p, char *err, size_t el)
{
    if (!s->c.bot_url || !s->c.bot) return pend_submit(s, p, err, el);
    json_t *st = bot_state(s->host, s->inst, p->from);
    if (!st) return pend_submit(s, p, err, el);
    if (!strcmp(json_string_value(json_object_get(st, "state")) ? json_string_value(json_object_get(st, "state")) : "", "human")) {
        json_decref(st);
        return pend_submit(s, p, err, el);
    }
    bot_line(st, "citizen", p->in_text);
    bot_state_put(s->host, s->inst, p->from, st, RECORD_TTL_S);
    json_decref(st);
    p->bot = true;
    p->submitted = true;                            /* in progress (with the bot) */
    char *b = s->c.bot->request(p->conv, p->in_text);
    static const char *const headers[] = {"Content-Type: application/json", "Accept: application/json", NULL};
    acdm_http_out req = {.struct_size = sizeof req, .method = "POST", .url = s->c.bot_url, .headers = headers,
                         .body = b, .body_len = b ? strlen(b) : 0, .timeout_ms = s->c.bot_timeout_ms};
    int rc = b ? s->host->http_request(s->inst, &req, bot_done, p) : -1;
    free(b);
    if (rc < 0) {                /* within the handler: the caller answers a refusal */
        bot_handoff_prepare(s, p, "Chatbot niet bereikbaar");
        return pend_submit(s, p, err, el);
    }
    return 0;
}

/* A bericht ended: the number's next text starts with the bot again. */
static void sms_on_event(acdm_instance *inst, void *priv, const acdm_event_info *ev)
{
    (void)inst;
    sms *s = priv;
    if (ev->type != ACDM_EV_ENDED || !s->c.bot_url || !ev->conversation) return;
    const char *c = strstr(ev->conversation, "sms:");
    if (!c) return;
    char key[96];
    snprintf(key, sizeof key, "bot:%s", c + 4);
    s->host->kv_set(s->inst, key, NULL, 0);
}

/* Submits an inbound SMS; the HTTP answer waits for the commit (resp deferred). */
static void submit_mo(sms *s, acdm_http_response *resp, const char *from, const char *to,
                      const char *idem, const char *text, json_t *payload, bool twiml)
{
    int kw = sms_keyword(text, strlen(text));
    if (kw == 1) {
        optout_set(s, from, "STOP");
        json_object_set_new(payload, "optout", json_true());
    } else if (kw == 2) {
        optout_set(s, from, NULL);
        json_object_set_new(payload, "optin", json_true());
    }
    (void)to;
    pending *p = calloc(1, sizeof *p);
    if (p) {
        p->in_text = strdup(text);
        p->in_payload = json_dumps(payload, JSON_COMPACT);
    }
    if (!p || !p->in_text || !p->in_payload) {
        if (p) { free(p->in_text); free(p->in_payload); free(p); }
        acdm_problem(resp, 503, "Busy", "out of memory", s->body, sizeof s->body);
        return;
    }
    p->s = s;
    p->in_handler = true;
    p->twiml = twiml;
    p->token = resp->token;
    snprintf(p->from, sizeof p->from, "%s", from);
    snprintf(p->conv, sizeof p->conv, "sms:%s", from);
    snprintf(p->idem, sizeof p->idem, "%s", idem);
    bool wait = false;
    pending **tail = &s->pendings, *prev = NULL;
    for (; *tail; prev = *tail, tail = &(*tail)->next)
        if (!(*tail)->done && !strcmp((*tail)->conv, p->conv)) wait = true;
    p->prev = prev;
    *tail = p;
    s->n.mo++;
    if (!wait) {
        char err[200] = "";
        int rc = pend_start(s, p, err, sizeof err);
        if (rc < 0) {
            s->n.mo--;
            refused_response(s, rc, err, resp);
            p->in_handler = false;
            pending_free(p);
            return;
        }
    }
    p->in_handler = false;
    if (p->done) { result_response(s, p, resp); pending_free(p); return; }
    resp->defer = 1;
}

/* The MO and DLR routes' shared secret: ?token= (Kannel's get-url / dlr-url) or a bearer. */
static bool token_ok(sms *s, const acdm_http_request *req)
{
    const char *q;
    bool raw = query_raw_of(req, &q);
    char given[256];
    if (acdm_bearer_ok(req->authorization, s->c.token)) return true;
    if (!q || sms_arg(q, raw, "token", given, sizeof given) < 0) return false;
    return acdm_ct_equal(given, strlen(given), s->c.token, strlen(s->c.token));
}

static void on_mo(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    (void)inst;
    sms *s = priv;
    if (s->c.provider != P_KANNEL) {
        acdm_problem(resp, 404, "Not here", "this instance's provider is twilio: inbound is POST /sms", s->body, sizeof s->body);
        return;
    }
    if (!token_ok(s, req)) {
        s->n.mo_rejected++;
        acdm_problem(resp, 401, "Unauthorized", "token: missing or wrong (see the sms-service get-url)", s->body, sizeof s->body);
        return;
    }
    const char *q;
    bool raw = query_raw_of(req, &q);
    kannel_mo m;
    char err[200];
    if (kannel_mo_parse(q, raw, req->body, req->body_len, &m, err, sizeof err) < 0) {
        s->n.mo_rejected++;
        s->host->log(inst, ACDM_PLOG_WARN, "refused an MO from Kannel: %s", err);
        acdm_problem(resp, 400, "Bad MO", err, s->body, sizeof s->body);
        return;
    }
    char idem[200];
    if (m.id[0]) {
        snprintf(idem, sizeof idem, "kannel:%s", m.id);
    } else {              /* no %I in the get-url: a stable hash of what identifies the SMS */
        sbuf h = {0};
        sb_str(&h, m.from); sb_str(&h, "\n"); sb_str(&h, m.to); sb_str(&h, "\n");
        sb_str(&h, m.time); sb_str(&h, "\n"); sb_add(&h, m.text, m.text_len);
        char hex[65];
        if (h.oom || sig_sha256_hex(h.p ? h.p : "", h.n, hex) < 0) hex[0] = '\0';
        free(h.p);
        snprintf(idem, sizeof idem, "kannel:h:%s", hex);
    }
    json_t *pl = json_pack("{s:s, s:s, s:s, s:s, s:s}", "provider", "kannel", "to", m.to, "time",
                           m.time, "smsc", m.smsc, "text", m.text);
    if (!pl) { kannel_mo_free(&m); acdm_problem(resp, 503, "Busy", "out of memory", s->body, sizeof s->body); return; }
    submit_mo(s, resp, m.from, m.to, idem, m.text, pl, false);
    json_decref(pl);
    kannel_mo_free(&m);
}

static void on_dlr(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    (void)inst;
    sms *s = priv;
    if (!token_ok(s, req)) {
        acdm_problem(resp, 401, "Unauthorized", "token: missing or wrong", s->body, sizeof s->body);
        return;
    }
    const char *q;
    bool raw = query_raw_of(req, &q);
    kannel_dlr d;
    char err[200];
    if (kannel_dlr_parse(q, raw, &d, err, sizeof err) < 0) {
        acdm_problem(resp, 400, "Bad DLR", err, s->body, sizeof s->body);
        return;
    }
    s->n.dlrs++;
    int st = kannel_dlr_state(d.status);
    if (st >= 0) {
        char why[320];
        snprintf(why, sizeof why, "%s (Kannel DLR %d%s%s)", d.status & 16 ? "rejected by the SMSC" :
                 "not delivered to the phone", d.status, d.answer[0] ? ": " : "", d.answer);
        part_state(s, d.msg, d.part, st, st == SMS_ST_FAILED ? why : NULL, d.status);
    }
    resp->status = 200;
    resp->content_type = "text/plain";
    resp->body = "";
}

/* Twilio signs the URL it called: our public_url, the path, and the query as on the wire. */
static bool twilio_signed(sms *s, const acdm_http_request *req, const char *path, const sms_form *f)
{
    const char *sigh = acdm_http_header_get(req, "x-twilio-signature");
    if (!sigh) return false;
    sbuf u = {0};
    sb_str(&u, s->c.public_url);
    sb_str(&u, path);
    const char *q;
    /* an ABI 1.0 host passes the query decoded: the same as on the wire for our own
     * StatusCallback (?m=<hex id>) */
    query_raw_of(req, &q);
    if (q && *q) { sb_str(&u, "?"); sb_str(&u, q); }
    bool ok = !u.oom && sig_twilio_ok(sigh, s->c.auth_token, u.p, (const char *const *)f->names,
                                      (const char *const *)f->values, f->n);
    free(u.p);
    return ok;
}

static void on_twilio_sms(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    sms *s = priv;
    if (s->c.provider != P_TWILIO) {
        acdm_problem(resp, 404, "Not here", "this instance's provider is kannel: inbound is /mo", s->body, sizeof s->body);
        return;
    }
    sms_form f;
    if (sms_form_parse(req->body, req->body_len, &f) < 0) {
        acdm_problem(resp, 400, "Bad form", "the body is not a valid form (application/x-www-form-urlencoded)", s->body, sizeof s->body);
        return;
    }
    if (!twilio_signed(s, req, "/sms", &f)) {
        s->n.mo_rejected++;
        sms_form_free(&f);
        s->host->log(inst, ACDM_PLOG_WARN, "refused an inbound SMS post: X-Twilio-Signature missing or wrong");
        acdm_problem(resp, 403, "Forbidden", "X-Twilio-Signature: missing or wrong", s->body, sizeof s->body);
        return;
    }
    twilio_in t;
    char err[200];
    if (twilio_in_parse(&f, &t, err, sizeof err) < 0) {
        s->n.mo_rejected++;
        acdm_problem(resp, 400, "Bad message", err, s->body, sizeof s->body);
        sms_form_free(&f);
        return;
    }
    char idem[100];
    snprintf(idem, sizeof idem, "twilio:%s", t.sid);
    json_t *pl = json_pack("{s:s, s:s, s:s?, s:s}", "provider", "twilio", "sid", t.sid, "to", t.to, "text", t.body);
    if (pl && t.num_media) {
        json_t *media = json_array();
        for (int i = 0; i < t.num_media; i++)
            json_array_append_new(media, json_pack("{s:s, s:s?}", "url", t.media_url[i], "content_type", t.media_type[i]));
        json_object_set_new(pl, "media", media);
    }
    if (!pl) acdm_problem(resp, 503, "Busy", "out of memory", s->body, sizeof s->body);
    else submit_mo(s, resp, t.from, t.to, idem, t.body, pl, true);
    json_decref(pl);
    sms_form_free(&f);
}

static void on_twilio_status(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    (void)inst;
    sms *s = priv;
    sms_form f;
    if (s->c.provider != P_TWILIO || sms_form_parse(req->body, req->body_len, &f) < 0) {
        acdm_problem(resp, 400, "Bad form", "not a status callback of this instance", s->body, sizeof s->body);
        return;
    }
    if (!twilio_signed(s, req, "/status", &f)) {
        sms_form_free(&f);
        acdm_problem(resp, 403, "Forbidden", "X-Twilio-Signature: missing or wrong", s->body, sizeof s->body);
        return;
    }
    const char *q;
    bool raw = query_raw_of(req, &q);
    char id[80];
    const char *st = sms_form_get(&f, "MessageStatus");
    if (!st) st = sms_form_get(&f, "SmsStatus");
    if (!q || sms_arg(q, raw, "m", id, sizeof id) <= 0 || !st) {
        sms_form_free(&f);
        acdm_problem(resp, 400, "Bad status", "m (in the URL) and MessageStatus are required", s->body, sizeof s->body);
        return;
    }
    s->n.dlrs++;
    int v = twilio_status_state(st);
    const char *ec = sms_form_get(&f, "ErrorCode");
    int code = ec && *ec ? atoi(ec) : -1;
    if (code == 21610) optout_set(s, sms_form_get(&f, "To") ? sms_form_get(&f, "To") : "?", "21610");
    if (v >= 0) {
        char why[200];
        if (code == 21610) snprintf(why, sizeof why, "the citizen has opted out (STOP, Twilio 21610)");
        else snprintf(why, sizeof why, "%s (Twilio%s%s)", st, code >= 0 ? " error " : "", code >= 0 ? ec : "");
        part_state(s, id, 0, v, v == SMS_ST_FAILED ? why : NULL, code);
    }
    sms_form_free(&f);
    resp->status = 200;
    resp->content_type = "text/xml";
    resp->body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";
}

/* ---------------------------------------------------------------- lifecycle */

static int sms_init(acdm_instance *inst, void *priv, const acdm_host *host, const char *config_json,
                    char *err, size_t el)
{
    sms *s = priv;
    if (host->abi_major != ACDM_PLUGIN_ABI_MAJOR || !ACDM_HOST_HAS(host, http_respond)) {
        snprintf(err, el, "host table too old for this plugin (needs http_respond)");
        return -1;
    }
    s->host = host;
    s->inst = inst;
    return cfg_parse(config_json, &s->c, err, el);
}

/* Sends still in the outbox when the instance last stopped: their parts not yet accepted. */
static void resume_outbox(sms *s)
{
    json_t *arr = kv_json(s, "outbox");
    for (size_t k = 0; k < json_array_size(arr); k++) {
        const char *id = json_string_value(json_array_get(arr, k));
        char key[96];
        if (!id) continue;
        snprintf(key, sizeof key, "m:%s", id);
        json_t *r = kv_json(s, key);
        const char *t = json_string_value(json_object_get(r, "t"));
        const char *to = json_string_value(json_object_get(r, "to"));
        const char *b = json_string_value(json_object_get(r, "b"));
        json_t *st = json_object_get(r, "st");
        outmsg *m = t && to && b ? calloc(1, sizeof *m) : NULL;
        if (m && sms_split_text(t, strlen(t), SMS_MAX_PARTS, &m->sp) == 0 &&
            (s->c.provider == P_TWILIO || m->sp.n_parts == json_array_size(st))) {
            if (s->c.provider == P_TWILIO) { m->sp.n_parts = 1; m->sp.part_off[1] = m->sp.len; }
            snprintf(m->id, sizeof m->id, "%s", id);
            snprintf(m->bericht, sizeof m->bericht, "%s", b);
            snprintf(m->to, sizeof m->to, "%s", to);
            m->ref = (unsigned char)json_integer_value(json_object_get(r, "ref"));
            for (int i = 0; i < SMS_MAX_PARTS; i++) { m->pref[i].m = m; m->pref[i].part = i; }
            m->next = s->out;
            s->out = m;
            int n = 0;
            for (size_t i = 0; i < m->sp.n_parts; i++)
                if (json_integer_value(json_array_get(st, i)) == SMS_ST_NONE) { send_part(s, m, (int)i); n++; }
            s->host->log(s->inst, ACDM_PLOG_NOTICE, "resending %d part(s) of SMS %s", n, id);
            out_check_done(s, m);
        } else {
            if (m) { sms_split_free(&m->sp); free(m); }
            outbox_update(s, NULL, id);
        }
        json_decref(r);
    }
    json_decref(arr);
}

static int sms_start(acdm_instance *inst, void *priv)
{
    sms *s = priv;
    int rc = 0;
    if (s->c.provider == P_KANNEL) {
        rc |= s->host->http_route(inst, "GET", "/mo", on_mo);
        rc |= s->host->http_route(inst, "POST", "/mo", on_mo);
        rc |= s->host->http_route(inst, "GET", "/dlr", on_dlr);
    } else {
        rc |= s->host->http_route(inst, "POST", "/sms", on_twilio_sms);
        rc |= s->host->http_route(inst, "POST", "/status", on_twilio_status);
    }
    if (rc < 0) {
        s->host->log(inst, ACDM_PLOG_ERR, "cannot register the routes under /channels/%s", s->host->instance_name(inst));
        return -1;
    }
    resume_outbox(s);
    s->host->log(inst, ACDM_PLOG_INFO, "SMS via %s as %s", s->c.provider == P_KANNEL ? "Kannel" : "a Twilio-compatible API",
                 s->c.from);
    return 0;
}

static int sms_reload(acdm_instance *inst, void *priv, const char *config_json, char *err, size_t el)
{
    (void)inst;
    sms *s = priv;
    cfg c;
    if (cfg_parse(config_json, &c, err, el) < 0) return -1;
    if (c.provider != s->c.provider) {
        cfg_free(&c);
        snprintf(err, el, "provider cannot change on a reload (its routes differ): restart the instance");
        return -1;
    }
    cfg_free(&s->c);
    s->c = c;
    return 0;
}

static void sms_stop(acdm_instance *inst, void *priv)
{
    (void)inst;
    sms *s = priv;
    for (outmsg *m = s->out; m; m = m->next)
        for (size_t i = 0; i < SMS_MAX_PARTS; i++)
            if (m->retry[i]) {
                /* the timer's part_ref is freed with it: it never fires */
                s->host->timer_stop(m->retry[i]);
                m->retry[i] = NULL;
            }
}

static void sms_destroy(acdm_instance *inst, void *priv)
{
    (void)inst;
    sms *s = priv;
    while (s->out) out_free(s, s->out);    /* still in the outbox: resent at the next start */
    while (s->pendings) pending_free(s->pendings);
    cfg_free(&s->c);
}

static char *sms_status_json(acdm_instance *inst, void *priv)
{
    (void)inst;
    sms *s = priv;
    int outbox = 0;
    for (outmsg *m = s->out; m; m = m->next) outbox++;
    json_t *o = json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:s?}", "healthy", !s->unhealthy,
                          "provider", s->c.provider == P_KANNEL ? "kannel" : "twilio",
                          "received", (json_int_t)s->n.mo, "rejected", (json_int_t)s->n.mo_rejected,
                          "parts_sent", (json_int_t)s->n.sent_parts, "send_failed", (json_int_t)s->n.send_failed,
                          "delivery_reports", (json_int_t)s->n.dlrs, "sending", outbox,
                          "last_error", s->last_error[0] ? s->last_error : NULL);
    char *r = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return r;
}

static const acdm_plugin sms_plugin = ACDM_PLUGIN_INIT(
    .name = "sms",
    .version = "1.0.0",
    .description = "SMS through Kannel or a Twilio-compatible provider: MO in, replies out, delivery reports",
    .kinds = "sms",
    .instance_size = sizeof(sms),
    .check_config = sms_check_config,
    .init = sms_init,
    .start = sms_start,
    .reload = sms_reload,
    .deliver = sms_deliver,
    .on_event = sms_on_event,
    .stop = sms_stop,
    .destroy = sms_destroy,
    .status_json = sms_status_json);

ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &sms_plugin; }
