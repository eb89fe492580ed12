/* webhook.c -- the reference channel plugin: any system submits berichten over HTTP and gets agents' replies by callback. */
#include <acdm/plugin.h>
#include <acdm/plugin_util.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>

/*
 * Instance config ("config" of a channel with "plugin": "webhook"):
 *   token          string  callers must send "Authorization: Bearer <token>"
 *   token_file     string  instead of token: a file holding it; created with a random token
 *                          (mode 0600) when it does not exist. Relative paths are relative to
 *                          acdmd's working directory. One of token / token_file is required: a
 *                          channel that accepts input never runs open. API tokens the host
 *                          accepts for this instance (admin, role channel:<instance>) work too.
 *   allowed_origins [string] browser origins that may open /events (default none: a websocket
 *                          upgrade carrying an Origin header is refused; servers send none)
 *   callback_url   string  http(s) URL the agents' replies are POSTed to (optional: without it
 *                          replies only go to websocket listeners)
 *   callback_token string  sent as bearer with every callback (optional)
 *   kind           string  default kind of new berichten: chat (default), sms or email
 *   retries        int     delivery attempts per reply, 1..10 (default 3)
 *   retry_ms       int     delay before the 2nd attempt, doubled each time (default 1000)
 *   self_test      bool    start a worker thread that posts a heartbeat every heartbeat_ms
 *   heartbeat_ms   int     default 1000
 *
 * Routes under /channels/<instance>:
 *   Every route needs the bearer token; JSON routes refuse other content types (415), so a web
 *   page's text/plain or form POST cannot inject berichten.
 *   POST /messages        {from, text?, conversation?, kind?, subject?, id?, queue?, priority?}
 *                         answered only once the bericht is committed (deferred response):
 *                         201 {message, bericht, outcome: "queued"}
 *                         200 {message, bericht, outcome: "duplicate" | "followup"}
 *                         200 {message, bericht, outcome: "closed", text}
 *                         400/401/403/415/429 problem+json (refused, nothing stored)
 *                         503 problem+json (not stored, or the channel stopped first: retry
 *                         with the same id, a redelivery never makes a second bericht)
 *   POST /end             {bericht, reason?}: the customer gave up -> 204
 *   GET  /status          counters
 *   GET  /request         the request as the channel saw it: {method, path, query_raw, url,
 *                         peer, headers} (Authorization left out), for setting up a sender
 *   WS   /events          one JSON text per bericht event, reply and heartbeat
 */

#define MAX_LISTENERS 64

typedef struct cfg {
    char *token, *token_file, *callback_url, *callback_auth, *kind;
    json_t *origins;             /* allowed_origins, or NULL */
    int retries, retry_ms, heartbeat_ms;
    bool self_test;
} cfg;

/* An agent's reply waiting to be delivered to callback_url; persisted in kv "outbox". */
typedef struct outmsg {
    struct outmsg *next;
    unsigned long seq;
    json_t *doc;                 /* {seq, bericht, conversation, to, agent, text, payload} */
    int attempts;
    acdm_timer *retry;
    bool in_flight;
} outmsg;

/* A POST /messages whose submit callback is still due; its HTTP response is deferred until
 * then. token is the host's (valid until http_respond, or until our stop returned). */
typedef struct pending {
    struct pending *prev, *next;
    struct webhook *w;
    char ref[132];
    bool in_handler, done;
    acdm_submit_outcome outcome;
    char bericht[64];
    char *text;
    void *token;
} pending;

typedef struct webhook {
    const acdm_host *host;
    acdm_instance *inst;
    cfg c;
    char *body;                  /* last response body (the host copies it after the handler) */
    acdm_wsconn *listeners[MAX_LISTENERS];
    int n_listeners;
    outmsg *outbox;
    unsigned long next_seq;
    pending *pendings;
    struct { unsigned long received, rejected, submitted, delivered, delivery_failed,
             heartbeats, wakeups, events; } n;
    char last_error[160];        /* the last failed callback attempt's reason ("" after a success) */
    /* self_test worker */
    pthread_t worker;
    bool worker_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool quit;                   /* under mu */
    int efd;
    acdm_watch *ewatch;
} webhook;

/* ---------------------------------------------------------------- config */

static void cfg_free(cfg *c)
{
    free(c->token); free(c->token_file); free(c->callback_url); free(c->callback_auth);
    free(c->kind);
    json_decref(c->origins);
    memset(c, 0, sizeof *c);
}

static bool is_http_url(const char *s)
{
    return (!strncmp(s, "http://", 7) && s[7]) || (!strncmp(s, "https://", 8) && s[8]);
}

static bool kind_ok(const char *k)
{
    return !strcmp(k, "chat") || !strcmp(k, "sms") || !strcmp(k, "email");
}

static int opt_string(json_t *o, const char *key, char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) { snprintf(err, errlen, "%s must be a string", key); return -1; }
    *out = strdup(json_string_value(v));
    return *out ? 0 : -1;
}

static int opt_int(json_t *o, const char *key, int def, int lo, int hi, int *out, char *err,
                   size_t errlen)
{
    json_t *v = json_object_get(o, key);
    *out = def;
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(err, errlen, "%s must be an integer from %d to %d", key, lo, hi);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

/* Parses and validates; on error fills err with a sentence naming the field. */
static int cfg_parse(const char *text, cfg *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "config must be a JSON object");
        json_decref(o);
        return -1;
    }
    int rc = -1;
    if (opt_string(o, "token", &c->token, err, errlen) < 0 ||
        opt_string(o, "token_file", &c->token_file, err, errlen) < 0 ||
        opt_string(o, "callback_url", &c->callback_url, err, errlen) < 0 ||
        opt_string(o, "callback_token", &c->callback_auth, err, errlen) < 0 ||
        opt_string(o, "kind", &c->kind, err, errlen) < 0 ||
        opt_int(o, "retries", 3, 1, 10, &c->retries, err, errlen) < 0 ||
        opt_int(o, "retry_ms", 1000, 10, 3600000, &c->retry_ms, err, errlen) < 0 ||
        opt_int(o, "heartbeat_ms", 1000, 10, 3600000, &c->heartbeat_ms, err, errlen) < 0)
        goto out;
    if (c->token && !*c->token) { snprintf(err, errlen, "token must not be empty"); goto out; }
    if (c->token_file && !*c->token_file) { snprintf(err, errlen, "token_file must not be empty"); goto out; }
    if (c->token && c->token_file) {
        snprintf(err, errlen, "token and token_file: set one of them, not both");
        goto out;
    }
    if (!c->token && !c->token_file) {
        snprintf(err, errlen, "token: required (or token_file): this channel accepts berichten, so "
                 "callers must send Authorization: Bearer <token>; set \"token_file\": "
                 "\"var/webhook.token\" to have a random one made at first start");
        goto out;
    }
    json_t *ao = json_object_get(o, "allowed_origins");
    if (ao && !json_is_null(ao)) {
        if (!json_is_array(ao)) {
            snprintf(err, errlen, "allowed_origins must be an array of origins such as \"https://crm.example.nl\"");
            goto out;
        }
        for (size_t i = 0; i < json_array_size(ao); i++) {
            const char *v = json_string_value(json_array_get(ao, i));
            if (!v || (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) || v[strlen(v) - 1] == '/') {
                snprintf(err, errlen, "allowed_origins[%zu]: expected an origin like \"https://crm.example.nl\" "
                         "(scheme and host, no path)", i);
                goto out;
            }
        }
        c->origins = json_incref(ao);
    }
    if (c->callback_url && !is_http_url(c->callback_url)) {
        snprintf(err, errlen, "callback_url must be an http:// or https:// URL, not \"%s\"",
                 c->callback_url);
        goto out;
    }
    if (c->kind && !kind_ok(c->kind)) {
        snprintf(err, errlen, "kind must be chat, sms or email, not \"%s\"", c->kind);
        goto out;
    }
    if (!c->kind && !(c->kind = strdup("chat"))) goto out;
    json_t *st = json_object_get(o, "self_test");
    if (st && !json_is_boolean(st)) { snprintf(err, errlen, "self_test must be true or false"); goto out; }
    c->self_test = json_is_true(st);
    rc = 0;
out:
    json_decref(o);
    if (rc < 0) cfg_free(c);
    return rc;
}

static int wh_check_config(const char *config_json, char *err, size_t errlen)
{
    cfg c;
    if (cfg_parse(config_json, &c, err, errlen) < 0) return -1;
    cfg_free(&c);
    return 0;
}

/* Reads the token from token_file, or creates the file with a new random token (mode 0600,
 * never overwriting one that appeared meanwhile). Fills c->token. */
static int token_file_load(const acdm_host *host, acdm_instance *inst, cfg *c, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(c->token_file, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char buf[512];
            struct stat st;
            ssize_t n = read(fd, buf, sizeof buf - 1);
            int serr = fstat(fd, &st);
            close(fd);
            if (n < 0) { snprintf(err, errlen, "token_file %s: %s", c->token_file, strerror(errno)); return -1; }
            buf[n] = 0;
            buf[strcspn(buf, "\r\n")] = 0;
            if (!buf[0]) {
                snprintf(err, errlen, "token_file %s is empty: put a token on its first line, or "
                         "delete it to have a new one made", c->token_file);
                return -1;
            }
            if (!serr && (st.st_mode & 077))
                host->log(inst, ACDM_PLOG_WARN, "token_file %s can be read by other users "
                          "(mode %03o): chmod 600 it", c->token_file, (unsigned)(st.st_mode & 0777));
            free(c->token);
            c->token = strdup(buf);
            return c->token ? 0 : -1;
        }
        if (errno != ENOENT) { snprintf(err, errlen, "token_file %s: %s", c->token_file, strerror(errno)); return -1; }
        fd = open(c->token_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST) continue;        /* made by someone else meanwhile: read it */
            snprintf(err, errlen, "token_file %s cannot be created: %s", c->token_file, strerror(errno));
            return -1;
        }
        unsigned char b[32];
        char tok[65];
        if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
            close(fd);
            unlink(c->token_file);
            snprintf(err, errlen, "token_file %s: no random bytes for a token", c->token_file);
            return -1;
        }
        for (size_t k = 0; k < sizeof b; k++) snprintf(tok + 2 * k, 3, "%02x", b[k]);
        size_t len = strlen(tok);
        tok[len] = '\n';
        ssize_t wr = write(fd, tok, len + 1);
        int cerr = fsync(fd) | close(fd);
        tok[len] = 0;
        if (wr != (ssize_t)(len + 1) || cerr) {
            unlink(c->token_file);
            snprintf(err, errlen, "token_file %s cannot be written", c->token_file);
            return -1;
        }
        host->log(inst, ACDM_PLOG_NOTICE, "made a new random token in %s (mode 0600): callers send "
                  "Authorization: Bearer <its first line>", c->token_file);
        free(c->token);
        c->token = strdup(tok);
        return c->token ? 0 : -1;
    }
    snprintf(err, errlen, "token_file %s cannot be read", c->token_file);
    return -1;
}

/* ---------------------------------------------------------------- HTTP helpers */

static void answer(webhook *w, acdm_http_response *resp, int status, json_t *doc)
{
    free(w->body);
    w->body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = w->body;
}

static void problem(webhook *w, acdm_http_response *resp, int status, const char *title,
                    const char *detail)
{
    answer(w, resp, status, json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title",
                                      title, "status", status, "detail", detail));
    resp->content_type = "application/problem+json";
}

/* The caller's token: the bearer, or (websockets of browsers, which cannot set headers) the
 * query's token argument. Then the instance's own token in constant time, else the host's
 * check (API tokens of this instance; the host's failed-sign-in limiter counts a wrong one
 * against the caller's address and answers ACDM_P_EFULL once it is blocked). Returns 0, or the
 * HTTP status to refuse with (401, 403, 429); *why names the reason. */
static int auth_status(const webhook *w, const acdm_http_request *req, bool ws, const char **why)
{
    const char *a = req->authorization, *given = NULL;
    char q[256];
    if (a && !strncasecmp(a, "Bearer ", 7)) {
        given = a + 7;
        while (*given == ' ') given++;
    } else if (ws && acdm_query_get(req->struct_size >= offsetof(acdm_http_request, query_raw) + sizeof(char *)
                                        ? req->query_raw : NULL, "token", q, sizeof q) > 0) {
        given = q;
    } else if (ws && req->query && !strncmp(req->query, "token=", 6)) {
        snprintf(q, sizeof q, "%.*s", (int)strcspn(req->query + 6, "&"), req->query + 6);
        given = q;
    }
    *why = "send Authorization: Bearer <token of this channel>";
    if (!given || !*given) return 401;
    if (w->c.token && acdm_ct_equal(given, strlen(given), w->c.token, strlen(w->c.token))) return 0;
    if (!ACDM_HOST_HAS(w->host, check_token) || !w->host->check_token) return 401;
    int rc = w->host->check_token(w->inst, given);
    if (rc == 0) return 0;
    if (rc == ACDM_P_EFULL) { *why = "too many failed sign-ins from this address; retry later"; return 429; }
    if (rc == ACDM_P_EPERM) { *why = "this token is not for this channel"; return 403; }
    *why = "unknown token: send Authorization: Bearer <token of this channel>";
    return 401;
}

/* Refuses (fills resp) unless authorized; true when the request may go on. */
static bool authorized(webhook *w, const acdm_http_request *req, acdm_http_response *resp)
{
    const char *why;
    int st = auth_status(w, req, false, &why);
    if (!st) return true;
    problem(w, resp, st, st == 429 ? "Too Many Requests" : st == 403 ? "Forbidden" : "Unauthorized", why);
    return false;
}

/* JSON routes take application/json only (a parameter such as charset may follow): a web
 * page can send text/plain, forms or a type-less body to any address without a CORS
 * preflight, never application/json. */
static bool json_body(webhook *w, const acdm_http_request *req, acdm_http_response *resp)
{
    if (acdm_content_type_is(req, "application/json")) return true;
    problem(w, resp, 415, "Unsupported Media Type", "send the body as Content-Type: application/json");
    return false;
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

static void broadcast(webhook *w, json_t *doc)
{
    if (w->n_listeners == 0) { json_decref(doc); return; }
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!s) return;
    for (int k = 0; k < w->n_listeners; k++) w->host->ws_send(w->listeners[k], s, strlen(s));
    free(s);
}

/* ---------------------------------------------------------------- inbound: POST /messages */

static void pending_free(pending *p)
{
    webhook *w = p->w;
    if (p->prev) p->prev->next = p->next; else w->pendings = p->next;
    if (p->next) p->next->prev = p->prev;
    free(p->text);
    free(p);
}

/* The answer to a POST /messages once the submit callback came. Only here is a 2xx given: the
 * bericht's row is committed (for an error nothing was stored). Fills resp; *owned is the
 * malloc'd body to free after the host copied it. */
static void result_response(const pending *p, acdm_http_response *resp, char **owned)
{
    int status;
    json_t *doc;
    resp->content_type = "application/json";
    if (p->outcome == ACDM_SUBMIT_ERROR || (unsigned)p->outcome > ACDM_SUBMIT_ERROR) {
        status = 503;
        resp->content_type = "application/problem+json";
        doc = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank", "title",
                        "Not stored", "status", status, "detail",
                        p->text ? p->text : "the core could not store the message; retry with "
                        "the same id", "message", p->ref);
    } else {
        status = p->outcome == ACDM_SUBMIT_QUEUED ? 201 : 200;
        doc = json_pack("{s:s, s:s?, s:s}", "message", p->ref, "bericht",
                        p->bericht[0] ? p->bericht : NULL, "outcome", outcome_name(p->outcome));
        if (doc && p->outcome == ACDM_SUBMIT_CLOSED)   /* the queue's closed text, for the customer */
            json_object_set_new(doc, "text", p->text ? json_string(p->text) : json_null());
    }
    *owned = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    resp->status = status;
    resp->body = *owned;
    if (!*owned) {                     /* out of memory: still say what happened, minimally */
        resp->content_type = "application/json";
        resp->body = status >= 500 ? "{\"outcome\":\"error\"}" : "{\"outcome\":\"stored\"}";
    }
}

static void submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome outcome,
                      const char *bericht_id, const char *text)
{
    (void)inst;
    webhook *w = priv;
    pending *p = user;
    p->done = true;
    p->outcome = outcome;
    snprintf(p->bericht, sizeof p->bericht, "%s", bericht_id ? bericht_id : "");
    free(p->text);
    p->text = text ? strdup(text) : NULL;
    if (outcome != ACDM_SUBMIT_ERROR) w->n.submitted++;
    if (p->in_handler) return;         /* the core answered within submit: the handler replies */
    char *body = NULL;
    acdm_http_response r = {0};
    result_response(p, &r, &body);
    w->host->http_respond(p->token, &r);   /* a client gone meanwhile: a no-op */
    free(body);
    pending_free(p);
}

static void new_ref(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        memcpy(b, &ts, sizeof b < sizeof ts ? sizeof b : sizeof ts);
    }
    for (int k = 0; k < 16; k++) snprintf(out + 2 * k, 3, "%02x", b[k]);
}

/* Reads an optional string field; false (and a 400) if it is there but not a fitting string. */
static bool field_str(json_t *o, const char *key, size_t max, const char **out, char *why, size_t wl)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return true;
    if (!json_is_string(v)) { snprintf(why, wl, "\"%s\" must be a string", key); return false; }
    if (strlen(json_string_value(v)) > max) {
        snprintf(why, wl, "\"%s\" is longer than %zu characters", key, max);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static void on_messages_post(acdm_instance *inst, void *priv, const acdm_http_request *req,
                             acdm_http_response *resp)
{
    webhook *w = priv;
    w->n.received++;
    if (!authorized(w, req, resp) || !json_body(w, req, resp)) {
        w->n.rejected++;
        return;
    }
    json_error_t je;
    json_t *o = req->body ? json_loadb(req->body, req->body_len, 0, &je) : NULL;
    char why[200] = "";
    const char *from, *text, *conv, *kind, *subject, *id, *queue;
    int priority = 0;
    if (!json_is_object(o)) snprintf(why, sizeof why, "the body must be a JSON object");
    else if (!field_str(o, "from", 256, &from, why, sizeof why)) ;
    else if (!from || !*from) snprintf(why, sizeof why, "\"from\" is required");
    else if (!field_str(o, "text", 65536, &text, why, sizeof why)) ;
    else if (!field_str(o, "conversation", 128, &conv, why, sizeof why)) ;
    else if (!field_str(o, "kind", 16, &kind, why, sizeof why)) ;
    else if (kind && !kind_ok(kind)) snprintf(why, sizeof why, "\"kind\" must be chat, sms or email");
    else if (!field_str(o, "subject", 998, &subject, why, sizeof why)) ;
    else if (!field_str(o, "id", 128, &id, why, sizeof why)) ;
    else if (!field_str(o, "queue", 63, &queue, why, sizeof why)) ;
    else {
        json_t *pv = json_object_get(o, "priority");
        if (pv && (!json_is_integer(pv) || json_integer_value(pv) < 0 || json_integer_value(pv) > 9))
            snprintf(why, sizeof why, "\"priority\" must be an integer from 0 to 9");
        else if (pv) priority = (int)json_integer_value(pv);
    }
    if (why[0]) {
        w->n.rejected++;
        problem(w, resp, 400, "Bad message", why);
        json_decref(o);
        return;
    }
    pending *p = calloc(1, sizeof *p);
    if (!p) { json_decref(o); problem(w, resp, 503, "Busy", "out of memory"); return; }
    p->w = w;
    p->in_handler = true;
    p->token = resp->token;
    if (id) snprintf(p->ref, sizeof p->ref, "%s", id);
    else new_ref(p->ref);
    p->next = w->pendings;
    if (w->pendings) w->pendings->prev = p;
    w->pendings = p;
    json_t *payload = json_pack("{s:s?, s:s?}", "subject", subject, "text", text);
    char *payload_s = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    acdm_inbound in = {.struct_size = sizeof in, .kind = kind ? kind : w->c.kind, .queue = queue,
                       .from = from, .conversation = conv, .idempotency_key = p->ref,
                       .priority = priority, .subject = subject, .text = text,
                       .payload_json = payload_s};
    char refusal[256] = "";
    int rc = ACDM_HOST_HAS(w->host, submit_err)
                 ? w->host->submit_err(inst, &in, submitted, p, refusal, sizeof refusal)
                 : w->host->submit(inst, &in, submitted, p);
    free(payload_s);
    json_decref(o);
    p->in_handler = false;
    if (rc < 0) {
        /* invalid or unknown (queue...): the caller's fault; anything else is ours */
        w->n.rejected++;
        if (rc == ACDM_P_EINVAL || rc == ACDM_P_ENOENT)
            problem(w, resp, 400, "Bad message", refusal[0] ? refusal
                                                 : "the core refused the message (see the log)");
        else
            problem(w, resp, 503, "Not stored", refusal[0] ? refusal
                                                : "the core cannot take messages now; retry");
        pending_free(p);
        return;
    }
    if (p->done) {           /* the core answered (after its commit) within the call */
        free(w->body);
        result_response(p, resp, &w->body);   /* the host copies it after we return */
        pending_free(p);
        return;
    }
    /* Not committed yet: no answer now. submitted() answers through http_respond; if the
     * instance stops first the host answers 503. */
    resp->defer = 1;
}

static void on_end(acdm_instance *inst, void *priv, const acdm_http_request *req,
                   acdm_http_response *resp)
{
    webhook *w = priv;
    if (!authorized(w, req, resp) || !json_body(w, req, resp)) return;
    json_error_t je;
    json_t *o = req->body ? json_loadb(req->body, req->body_len, 0, &je) : NULL;
    const char *b = json_string_value(json_object_get(o, "bericht"));
    const char *reason = json_string_value(json_object_get(o, "reason"));
    if (!b || !*b) problem(w, resp, 400, "Bad request", "\"bericht\" is required");
    else if (w->host->end(inst, b, reason ? reason : "customer-ended") < 0)
        problem(w, resp, 404, "Unknown bericht", "no live bericht with this id");
    else answer(w, resp, 204, NULL);
    json_decref(o);
}

static void on_status(acdm_instance *inst, void *priv, const acdm_http_request *req,
                      acdm_http_response *resp)
{
    webhook *w = priv;
    if (!authorized(w, req, resp)) return;
    int pending_out = 0;
    for (outmsg *m = w->outbox; m; m = m->next) pending_out++;
    int awaiting = 0;
    for (const pending *p = w->pendings; p; p = p->next) awaiting++;
    answer(w, resp, 200, json_pack("{s:s, s:I, s:I, s:I, s:i, s:I, s:I, s:i, s:i, s:I, s:I, s:I, s:b}",
        "instance", w->host->instance_name(inst),
        "received", (json_int_t)w->n.received, "rejected", (json_int_t)w->n.rejected,
        "submitted", (json_int_t)w->n.submitted, "awaiting_commit", awaiting, "delivered", (json_int_t)w->n.delivered,
        "delivery_failed", (json_int_t)w->n.delivery_failed, "pending_replies", pending_out,
        "listeners", w->n_listeners, "events", (json_int_t)w->n.events,
        "heartbeats", (json_int_t)w->n.heartbeats, "wakeups", (json_int_t)w->n.wakeups,
        "callback", w->c.callback_url != NULL));
}

/* GET /request: the request as this channel received it (URL, raw query, peer, headers), for
 * setting up a sender: which URL does a signature cover behind this proxy, which headers
 * arrive. Behind the channel's token like every route. */
static void on_request(acdm_instance *inst, void *priv, const acdm_http_request *req,
                       acdm_http_response *resp)
{
    (void)inst;
    webhook *w = priv;
    if (!authorized(w, req, resp)) return;
    json_t *h = json_object();
    for (size_t k = 0; k < req->n_headers; k++) {
        if (!strcmp(req->headers[k].name, "authorization")) continue;   /* never echo the secret */
        json_object_set_new(h, req->headers[k].name, json_string(req->headers[k].value));
    }
    answer(w, resp, 200, json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:o}", "method", req->method,
                                   "path", req->path, "query_raw", req->query_raw, "url", req->url,
                                   "peer", req->peer, "headers", h));
}

/* ---------------------------------------------------------------- websocket /events */

static int ev_open(acdm_instance *inst, void *priv, acdm_wsconn *c, const acdm_http_request *req)
{
    webhook *w = priv;
    const char *why;
    if (req->origin) {                 /* a browser: only from the configured origins */
        bool ok = false;
        for (size_t i = 0; i < json_array_size(w->c.origins) && !ok; i++)
            ok = !strcasecmp(json_string_value(json_array_get(w->c.origins, i)), req->origin);
        if (!ok) {
            w->host->log(inst, ACDM_PLOG_NOTICE, "/events refused: origin %s is not in allowed_origins",
                         req->origin);
            return -1;
        }
    }
    if (auth_status(w, req, true, &why) || w->n_listeners >= MAX_LISTENERS) return -1;
    w->listeners[w->n_listeners++] = c;
    return 0;
}

static void ev_message(acdm_instance *inst, void *priv, acdm_wsconn *c, const char *d, size_t n)
{
    (void)inst; (void)d; (void)n;
    webhook *w = priv;
    static const char pong[] = "{\"type\":\"pong\"}";   /* listeners only listen */
    w->host->ws_send(c, pong, sizeof pong - 1);
}

static void ev_close(acdm_instance *inst, void *priv, acdm_wsconn *c)
{
    (void)inst;
    webhook *w = priv;
    for (int k = 0; k < w->n_listeners; k++)
        if (w->listeners[k] == c) { w->listeners[k] = w->listeners[--w->n_listeners]; break; }
}

/* ---------------------------------------------------------------- outbound: replies */

static void outbox_save(webhook *w)
{
    json_t *arr = json_array();
    for (outmsg *m = w->outbox; m; m = m->next) json_array_append(arr, m->doc);
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!s) return;
    if (!strcmp(s, "[]")) w->host->kv_set(w->inst, "outbox", NULL, 0);
    else w->host->kv_set(w->inst, "outbox", s, strlen(s));
    free(s);
}

static void outmsg_drop(webhook *w, outmsg *m, bool delivered, const char *why)
{
    for (outmsg **mp = &w->outbox; *mp; mp = &(*mp)->next)
        if (*mp == m) { *mp = m->next; break; }
    if (m->retry) w->host->timer_stop(m->retry);
    const char *bericht = json_string_value(json_object_get(m->doc, "bericht"));
    const char *text = json_string_value(json_object_get(m->doc, "text"));
    json_t *pl = json_pack("{s:s, s:i, s:s?, s:s?}", "delivery", delivered ? "delivered" : "failed",
                           "attempts", m->attempts, "error", why,
                           "message", json_string_value(json_object_get(m->doc, "message")));
    char *pls = json_dumps(pl, JSON_COMPACT);
    json_decref(pl);
    if (bericht) w->host->delivery_report(w->inst, bericht, text, pls);
    free(pls);
    if (delivered) w->n.delivered++;
    else {
        w->n.delivery_failed++;
        w->host->log(w->inst, ACDM_PLOG_WARN, "reply for bericht %s not delivered after %d "
                     "attempt(s): %s", bericht ? bericht : "?", m->attempts, why ? why : "");
    }
    json_decref(m->doc);
    free(m);
    outbox_save(w);
}

static void send_one(webhook *w, outmsg *m);

static void retry_fire(acdm_instance *inst, void *priv, void *user)
{
    (void)inst;
    outmsg *m = user;
    m->retry = NULL;   /* a one-shot timer frees itself */
    send_one(priv, m);
}

static void failed_attempt(webhook *w, outmsg *m, const char *why)
{
    if (m->attempts >= w->c.retries) { outmsg_drop(w, m, false, why); return; }
    uint64_t delay = (uint64_t)w->c.retry_ms << (m->attempts - 1);
    m->retry = w->host->timer_start(w->inst, delay, 0, retry_fire, m);
    if (!m->retry) outmsg_drop(w, m, false, why);
}

static void sent(acdm_instance *inst, void *priv, void *user, int status, const char *body,
                 size_t len, const char *error)
{
    (void)inst; (void)body; (void)len;
    webhook *w = priv;
    outmsg *m = user;
    m->in_flight = false;
    char why[160];
    if (status >= 200 && status < 300) {
        w->last_error[0] = '\0';
        outmsg_drop(w, m, true, NULL);
        return;
    }
    if (status < 0) snprintf(why, sizeof why, "%s", error ? error : "transport error");
    else snprintf(why, sizeof why, "callback answered HTTP %d", status);
    snprintf(w->last_error, sizeof w->last_error, "%s", why);
    failed_attempt(w, m, why);
}

static void send_one(webhook *w, outmsg *m)
{
    if (!w->c.callback_url) { outmsg_drop(w, m, false, "no callback_url configured"); return; }
    char *body = json_dumps(m->doc, JSON_COMPACT);
    char auth[512];
    const char *headers[3] = {"Content-Type: application/json", NULL, NULL};
    if (w->c.callback_auth) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", w->c.callback_auth);
        headers[1] = auth;
    }
    acdm_http_out o = {.struct_size = sizeof o, .method = "POST", .url = w->c.callback_url,
                       .headers = headers, .body = body, .body_len = body ? strlen(body) : 0,
                       .timeout_ms = 10000};
    m->attempts++;
    int rc = body ? w->host->http_request(w->inst, &o, sent, m) : -1;
    free(body);
    if (rc < 0) failed_attempt(w, m, "request could not be started");
    else m->in_flight = true;
}

static outmsg *outmsg_add(webhook *w, json_t *doc)
{
    outmsg *m = calloc(1, sizeof *m);
    if (!m) { json_decref(doc); return NULL; }
    m->doc = doc;
    json_int_t seq = json_integer_value(json_object_get(doc, "seq"));
    m->seq = seq > 0 ? (unsigned long)seq : ++w->next_seq;
    if (m->seq > w->next_seq) w->next_seq = m->seq;
    json_object_set_new(doc, "seq", json_integer((json_int_t)m->seq));
    outmsg **mp = &w->outbox;          /* keep the order of the replies */
    while (*mp) mp = &(*mp)->next;
    *mp = m;
    return m;
}

static int wh_deliver(acdm_instance *inst, void *priv, const acdm_reply *r)
{
    (void)inst;
    webhook *w = priv;
    json_t *payload = r->payload_json ? json_loads(r->payload_json, 0, NULL) : NULL;
    /* the files the agent sent along: what the receiver needs to know of each (it fetches the
     * data with a token at GET /api/v1/attachments/{id}) */
    json_t *atts = json_object_get(payload, "attachments");
    for (size_t k = 0; ACDM_HOST_HAS(w->host, attachment_read) && k < json_array_size(atts); k++) {
        json_t *a = json_array_get(atts, k);
        const char *id = json_string_value(json_object_get(a, "id"));
        acdm_attachment_meta meta = {.struct_size = sizeof meta};
        int fd = -1;
        if (!id || w->host->attachment_read(inst, id, &meta, &fd) < 0) continue;
        close(fd);
        json_object_set_new(a, "filename", json_string(meta.filename));
        json_object_set_new(a, "content_type", json_string(meta.content_type));
        json_object_set_new(a, "size", json_integer((json_int_t)meta.size));
        if (meta.content_id[0]) json_object_set_new(a, "content_id", json_string(meta.content_id));
    }
    json_t *doc = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:o?, s:s?}", "bericht", r->bericht_id,
                            "conversation", r->conversation, "to", r->to, "agent", r->agent,
                            "text", r->text, "payload", payload, "message", r->message_id);
    if (!doc) return -1;
    json_t *ev = json_deep_copy(doc);
    json_object_set_new(ev, "type", json_string("reply"));
    broadcast(w, ev);
    if (!w->c.callback_url) {          /* websocket listeners only */
        json_decref(doc);
        if (w->n_listeners == 0) return -1;
        w->n.delivered++;
        return 0;
    }
    outmsg *m = outmsg_add(w, doc);
    if (!m) return -1;
    outbox_save(w);                    /* durable before we try */
    send_one(w, m);
    return 0;
}

/* What GET /api/v1/plugins, /api/v1/health and `acdmctl plugins` show of this instance:
 * unhealthy while replies wait because the callback fails. */
static char *wh_status_json(acdm_instance *inst, void *priv)
{
    (void)inst;
    const webhook *w = priv;
    int pending_out = 0;
    for (const outmsg *m = w->outbox; m; m = m->next) pending_out++;
    bool healthy = !(pending_out > 0 && w->last_error[0]);
    json_t *o = json_pack("{s:b, s:i, s:I, s:I, s:s?}", "healthy", healthy,
                          "pending_replies", pending_out, "delivered", (json_int_t)w->n.delivered,
                          "delivery_failed", (json_int_t)w->n.delivery_failed,
                          "last_error", w->last_error[0] ? w->last_error : NULL);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;   /* malloc'd: the host frees it */
    json_decref(o);
    return s;
}

/* ---------------------------------------------------------------- events */

static const char *const ev_names[] = {"queued", "offered", "accepted", "requeued",
                                       "transferred", "ended", "closed", "wrapup",
                                       "hold", "resume"};
#define N_EV_NAMES (sizeof ev_names / sizeof ev_names[0])

static void wh_on_event(acdm_instance *inst, void *priv, const acdm_event_info *ev)
{
    (void)inst;
    webhook *w = priv;
    w->n.events++;
    json_t *detail = ev->detail_json ? json_loads(ev->detail_json, 0, NULL) : NULL;
    broadcast(w, json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:o?}", "type",
                           (unsigned)ev->type < N_EV_NAMES ? ev_names[ev->type] : "unknown",
                           "bericht", ev->bericht_id ? ev->bericht_id : "", "conversation",
                           ev->conversation, "queue", ev->queue, "agent", ev->agent,
                           "detail", detail));
}

/* ---------------------------------------------------------------- self_test worker */

static void heartbeat(acdm_instance *inst, void *priv, void *arg)
{
    (void)inst; (void)arg;
    webhook *w = priv;
    w->n.heartbeats++;
    broadcast(w, json_pack("{s:s, s:I}", "type", "heartbeat", "n", (json_int_t)w->n.heartbeats));
}

static void woken(acdm_instance *inst, void *priv, void *user, int events)
{
    (void)inst; (void)user; (void)events;
    webhook *w = priv;
    uint64_t v;
    if (read(w->efd, &v, sizeof v) == (ssize_t)sizeof v) w->n.wakeups += v;
}

/* The worker stands for a blocking library in its own thread: it talks to the core only
 * through post() (and by signalling an eventfd the core watches). */
static void *worker(void *arg)
{
    webhook *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->quit) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += w->c.heartbeat_ms / 1000;
        t.tv_nsec += (long)(w->c.heartbeat_ms % 1000) * 1000000L;
        if (t.tv_nsec >= 1000000000L) { t.tv_sec++; t.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&w->cv, &w->mu, &t);
        if (w->quit) break;
        uint64_t one = 1;
        if (write(w->efd, &one, sizeof one) < 0) { /* counter full: the core is behind */ }
        w->host->post(w->inst, heartbeat, NULL);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int worker_start(webhook *w)
{
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) return -1;
    w->ewatch = w->host->watch_fd(w->inst, w->efd, ACDM_WATCH_READ, woken, NULL);
    w->quit = false;
    if (!w->ewatch || pthread_create(&w->worker, NULL, worker, w) != 0) {
        if (w->ewatch) w->host->unwatch_fd(w->ewatch);
        w->ewatch = NULL;
        close(w->efd);
        w->efd = -1;
        return -1;
    }
    w->worker_running = true;
    return 0;
}

static void worker_stop(webhook *w)
{
    if (!w->worker_running) return;
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->worker, NULL);
    w->worker_running = false;
    w->host->unwatch_fd(w->ewatch);
    w->ewatch = NULL;
    close(w->efd);
    w->efd = -1;
}

/* ---------------------------------------------------------------- lifecycle */

static int wh_init(acdm_instance *inst, void *priv, const acdm_host *host, const char *config_json,
                   char *err, size_t errlen)
{
    webhook *w = priv;
    if (host->abi_major != ACDM_PLUGIN_ABI_MAJOR || !ACDM_HOST_HAS(host, http_respond)) {
        snprintf(err, errlen, "host table too old for this plugin (needs http_respond)");
        return -1;
    }
    w->host = host;
    w->inst = inst;
    w->efd = -1;
    if (cfg_parse(config_json, &w->c, err, errlen) < 0) return -1;
    if (w->c.token_file && token_file_load(host, inst, &w->c, err, errlen) < 0) {
        cfg_free(&w->c);
        return -1;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    return 0;
}

static int wh_start(acdm_instance *inst, void *priv)
{
    webhook *w = priv;
    static const acdm_ws_callbacks events = {ev_open, ev_message, ev_close};
    if (w->host->http_route(inst, "POST", "/messages", on_messages_post) < 0 ||
        w->host->http_route(inst, "POST", "/end", on_end) < 0 ||
        w->host->http_route(inst, "GET", "/status", on_status) < 0 ||
        w->host->http_route(inst, "GET", "/request", on_request) < 0 ||
        w->host->ws_route(inst, "/events", &events) < 0) {
        w->host->log(inst, ACDM_PLOG_ERR, "cannot register the routes under /channels/%s",
                     w->host->instance_name(inst));
        return -1;
    }
    /* replies still undelivered when the instance last stopped */
    char *saved = NULL;
    size_t len = 0;
    if (w->host->kv_get(inst, "outbox", &saved, &len) == 0) {
        json_t *arr = json_loadb(saved, len, 0, NULL);
        w->host->free(saved);
        for (size_t k = 0; k < json_array_size(arr); k++)
            outmsg_add(w, json_incref(json_array_get(arr, k)));
        json_decref(arr);
        int n = 0;
        for (outmsg *m = w->outbox; m; m = m->next) n++;
        if (n) w->host->log(inst, ACDM_PLOG_NOTICE, "resending %d undelivered repl%s", n,
                            n == 1 ? "y" : "ies");
        for (outmsg *m = w->outbox, *next; m; m = next) { next = m->next; send_one(w, m); }
    }
    if (w->c.self_test && worker_start(w) < 0) {
        w->host->log(inst, ACDM_PLOG_ERR, "self_test: cannot start the worker thread");
        return -1;
    }
    w->host->log(inst, ACDM_PLOG_INFO, "accepting POST /channels/%s/messages (bearer token%s%s required)",
                 w->host->instance_name(inst), w->c.token_file ? " from " : "",
                 w->c.token_file ? w->c.token_file : "");
    return 0;
}

static int wh_reload(acdm_instance *inst, void *priv, const char *config_json, char *err,
                     size_t errlen)
{
    webhook *w = priv;
    cfg c;
    if (cfg_parse(config_json, &c, err, errlen) < 0) return -1;
    if (c.token_file && token_file_load(w->host, inst, &c, err, errlen) < 0) {
        cfg_free(&c);
        return -1;
    }
    bool had_worker = w->worker_running;
    if (had_worker) worker_stop(w);
    cfg_free(&w->c);
    w->c = c;
    if (w->c.self_test && worker_start(w) < 0)
        w->host->log(inst, ACDM_PLOG_ERR, "self_test: cannot start the worker thread");
    return 0;
}

static void wh_stop(acdm_instance *inst, void *priv)
{
    (void)inst;
    webhook *w = priv;
    worker_stop(w);
    for (outmsg *m = w->outbox; m; m = m->next)
        if (m->retry) { w->host->timer_stop(m->retry); m->retry = NULL; }
    w->n_listeners = 0;   /* the host closes the websockets */
}

static void wh_destroy(acdm_instance *inst, void *priv)
{
    (void)inst;
    webhook *w = priv;
    while (w->outbox) {                /* still in kv: resent at the next start */
        outmsg *m = w->outbox;
        w->outbox = m->next;
        json_decref(m->doc);
        free(m);
    }
    while (w->pendings) pending_free(w->pendings);
    cfg_free(&w->c);
    free(w->body);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static const acdm_plugin webhook_plugin = ACDM_PLUGIN_INIT(
    .name = "webhook",
    .version = "1.0.0",
    .description = "Generic HTTP channel: POST berichten in, agents' replies out to a callback URL",
    .kinds = "chat,sms,email",
    .instance_size = sizeof(webhook),
    .check_config = wh_check_config,
    .init = wh_init,
    .start = wh_start,
    .reload = wh_reload,
    .deliver = wh_deliver,
    .on_event = wh_on_event,
    .stop = wh_stop,
    .status_json = wh_status_json,
    .destroy = wh_destroy);

ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &webhook_plugin; }
