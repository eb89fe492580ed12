/* good_counter.c -- minimal valid test plugin: counts deliveries and runs host calls on command. */
#include <acdm/plugin.h>
#include <acdm/plugin_util.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An agent reply's text is a command ("count", "post", "timer 20", ...); results go back to the
 * core with host->delivery_report(inst, <command>, <result>) so a test's mock engine sees them.
 * Config: {"tag": "a", "trace": "/path" (life-cycle lines appended), "fail_init": true,
 *          "refuse_reload": true, "http": true (routes /hello, /echo/ *, /later, /now, ws /ws)}.
 * Deferred responses: POST /later defers and keeps the token (command "respond <status>"
 * completes it, "respond-null" tries with a NULL response); GET /now defers and completes
 * inside the handler. ABI 1.1: GET /req shows the request fields; POST /file (body: a file
 * path) submits a chat bericht from "tester", stores the file as its attachment (content-id
 * "part1@test") once the bericht is committed and answers {"bericht":..,"attachment":..,
 * "rc":..}; a reply with a payload reads its first attachment back (attachment_read) and
 * reports {"delivery":"delivered","message":<message_id>,"read":<bytes>,"fnv":<hash>} for
 * the bericht; status_json is {"healthy":<not "sick">,"count":n}. */
typedef struct {
    const acdm_host *host;
    acdm_instance *inst;
    char tag[32];
    char trace[256];
    int n;
    int reloads;
    acdm_timer *rep;
    int rep_fired;
    acdm_watch *watch;
    int pipefd[2];
    pthread_t th;
    int ws_open;
    void *later;                 /* token of the deferred POST /later */
    int sick;                    /* config "sick": status_json says healthy false */
} counter;

static void cfg_str(const char *json, const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *s = strstr(json, pat);
    out[0] = 0;
    if (!s) return;
    s += strlen(pat);
    size_t n = strcspn(s, "\"");
    if (n >= len) n = len - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

static int cfg_true(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":true", key);
    return strstr(json, pat) != NULL;
}

static void trace(counter *c, const char *what)
{
    if (!c->trace[0]) return;
    FILE *f = fopen(c->trace, "a");
    if (!f) return;
    fprintf(f, "%s %s\n", what, c->tag);
    fclose(f);
}

static void report(counter *c, const char *what, const char *fmt, ...) ACDM_PRINTF(3, 4);
static void report(counter *c, const char *what, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->host->delivery_report(c->inst, what, buf, NULL);
}

/* ---- HTTP and websocket */

static void on_hello(acdm_instance *inst, void *priv, const acdm_http_request *req,
                     acdm_http_response *resp)
{
    counter *c = priv;
    static char body[256];   /* the host copies the body once the handler returns */
    snprintf(body, sizeof body, "{\"instance\":\"%s\",\"tag\":\"%s\",\"path\":\"%s\"}",
             c->host->instance_name(inst), c->tag, req->path);
    resp->body = body;
}

static void on_echo(acdm_instance *inst, void *priv, const acdm_http_request *req,
                    acdm_http_response *resp)
{
    (void)inst; (void)priv;
    resp->status = 201;
    resp->content_type = "text/plain";
    resp->body = req->body ? req->body : "";
}

static void on_later(acdm_instance *inst, void *priv, const acdm_http_request *req,
                     acdm_http_response *resp)
{
    (void)inst; (void)req;
    counter *c = priv;
    resp->status = 599;          /* ignored: deferred */
    resp->body = "not this";
    resp->defer = 1;
    c->later = resp->token;
}

static void on_now(acdm_instance *inst, void *priv, const acdm_http_request *req,
                   acdm_http_response *resp)
{
    (void)req;
    counter *c = priv;
    resp->defer = 1;
    acdm_http_response r = {.status = 202, .content_type = "text/plain", .body = "now"};
    report(c, "respond-rc", "%d", c->host->http_respond(resp->token, &r));
    (void)inst;
}

/* GET /req: the ABI 1.1 request fields as the plugin sees them. */
static void on_req(acdm_instance *inst, void *priv, const acdm_http_request *req,
                   acdm_http_response *resp)
{
    (void)inst; (void)priv;
    static char body[1024];
    char text[128] = "";
    const char *sig = acdm_http_header_get(req, "X-Hub-Signature-256");
    long tl = acdm_query_get(req->query_raw, "text", text, sizeof text);
    snprintf(body, sizeof body, "size=%d raw=%s url=%s peer=%s n=%zu sig=%s text=%ld:%s",
             req->struct_size == sizeof *req, req->query_raw ? req->query_raw : "-",
             req->url ? req->url : "-", req->peer ? req->peer : "-", req->n_headers,
             sig ? sig : "-", tl, text);
    resp->content_type = "text/plain";
    resp->body = body;
}

/* POST /file: the file is stored once its bericht is committed (attachment_store needs the
 * bericht); the response waits for that. */
typedef struct { void *token; char path[512]; } file_job;

static void file_submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome o,
                           const char *bericht_id, const char *text)
{
    (void)text;
    counter *c = priv;
    file_job *j = user;
    static char body[512];
    char id[64] = "";
    int rc = -99;
    if (o == ACDM_SUBMIT_QUEUED && ACDM_HOST_HAS(c->host, attachment_store)) {
        acdm_attachment_in a = {.struct_size = sizeof a, .bericht_id = bericht_id,
                                .filename = "scan.bin", .content_type = "application/octet-stream",
                                .content_id = "part1@test", .path = j->path};
        rc = c->host->attachment_store(inst, &a, id);
    }
    snprintf(body, sizeof body, "{\"bericht\":\"%s\",\"attachment\":\"%s\",\"rc\":%d}",
             bericht_id ? bericht_id : "", id, rc);
    acdm_http_response r = {.status = rc == 0 ? 201 : 500, .body = body};
    c->host->http_respond(j->token, &r);
    free(j);
}

static void on_file(acdm_instance *inst, void *priv, const acdm_http_request *req,
                    acdm_http_response *resp)
{
    counter *c = priv;
    file_job *j = calloc(1, sizeof *j);
    if (!j || !req->body) { free(j); resp->status = 400; resp->body = "{}"; return; }
    snprintf(j->path, sizeof j->path, "%.*s", (int)req->body_len, req->body);
    j->token = resp->token;
    acdm_inbound in = {.struct_size = sizeof in, .kind = "chat", .from = "tester",
                       .text = "a file for you"};
    char err[200] = "";
    if (c->host->submit_err(inst, &in, file_submitted, j, err, sizeof err) < 0) {
        free(j);
        static char body[300];
        snprintf(body, sizeof body, "{\"error\":\"%s\"}", err);
        resp->status = 400;
        resp->body = body;
        return;
    }
    resp->defer = 1;
}

static int ws_open(acdm_instance *inst, void *priv, acdm_wsconn *conn, const acdm_http_request *req)
{
    (void)inst;
    counter *c = priv;
    if (req->query && strstr(req->query, "deny")) return -1;
    c->ws_open++;
    c->host->ws_set_user(conn, c);
    return 0;
}

static void ws_message(acdm_instance *inst, void *priv, acdm_wsconn *conn, const char *d, size_t n)
{
    (void)inst; (void)priv;
    counter *c = ((const counter *)priv)->host->ws_user(conn);
    c->host->ws_send(conn, d, n);
}

static void ws_close(acdm_instance *inst, void *priv, acdm_wsconn *conn)
{
    (void)inst; (void)conn;
    counter *c = priv;
    c->ws_open--;
}

/* ---- lifecycle */

static int c_init(acdm_instance *inst, void *priv, const acdm_host *host, const char *cfg,
                  char *err, size_t errlen)
{
    counter *c = priv;
    c->host = host;
    c->inst = inst;
    cfg_str(cfg, "tag", c->tag, sizeof c->tag);
    cfg_str(cfg, "trace", c->trace, sizeof c->trace);
    c->sick = cfg_true(cfg, "sick");
    c->pipefd[0] = c->pipefd[1] = -1;
    trace(c, "init");
    if (cfg_true(cfg, "fail_init")) {
        snprintf(err, errlen, "fail_init is set");
        return -1;
    }
    if (cfg_true(cfg, "http")) {
        static const acdm_ws_callbacks wscb = {ws_open, ws_message, ws_close};
        if (host->http_route(inst, "GET", "/hello", on_hello) < 0 ||
            host->http_route(inst, NULL, "/echo/*", on_echo) < 0 ||
            host->http_route(inst, "POST", "/later", on_later) < 0 ||
            host->http_route(inst, "GET", "/now", on_now) < 0 ||
            host->http_route(inst, "GET", "/req", on_req) < 0 ||
            host->http_route(inst, "POST", "/file", on_file) < 0 ||
            host->ws_route(inst, "/ws", &wscb) < 0) {
            snprintf(err, errlen, "routes refused");
            return -1;
        }
    }
    return 0;
}

static int c_start(acdm_instance *inst, void *priv)
{
    (void)inst;
    trace(priv, "start");
    return 0;
}

static int c_reload(acdm_instance *inst, void *priv, const char *cfg, char *err, size_t errlen)
{
    (void)inst;
    counter *c = priv;
    if (cfg_true(cfg, "refuse_reload")) {
        snprintf(err, errlen, "refuse_reload is set");
        return -1;
    }
    cfg_str(cfg, "tag", c->tag, sizeof c->tag);
    c->reloads++;
    trace(c, "reload");
    return 0;
}

static void c_stop(acdm_instance *inst, void *priv)
{
    (void)inst;
    counter *c = priv;
    if (c->rep) { c->host->timer_stop(c->rep); c->rep = NULL; }
    if (c->watch) { c->host->unwatch_fd(c->watch); c->watch = NULL; }
    trace(c, "stop");
}

static void c_destroy(acdm_instance *inst, void *priv)
{
    (void)inst;
    counter *c = priv;
    if (c->pipefd[0] >= 0) { close(c->pipefd[0]); close(c->pipefd[1]); }
    trace(c, "destroy");
}

static int c_check(const char *cfg, char *err, size_t errlen)
{
    if (cfg_true(cfg, "bad")) {
        snprintf(err, errlen, "\"bad\" must not be true");
        return -1;
    }
    return 0;
}

/* ---- commands */

static void posted(acdm_instance *inst, void *priv, void *arg)
{
    (void)inst;
    report(priv, "post", "%s", (const char *)arg);
}

static void *post_thread(void *arg)
{
    counter *c = arg;
    c->host->post(c->inst, posted, (void *)"ran");
    return NULL;
}

static void *burst_thread(void *arg)
{
    counter *c = arg;
    for (int k = 0; k < 100; k++) c->host->post(c->inst, posted, (void *)"burst");
    return NULL;
}

static void *pipe_thread(void *arg)
{
    counter *c = arg;
    usleep(20000);
    if (write(c->pipefd[1], "x", 1) != 1) return NULL;
    return NULL;
}

static void on_flushed(acdm_instance *inst, void *priv, void *user)
{
    (void)inst; (void)user;
    report(priv, "flushed", "ok");
}

static void on_timer(acdm_instance *inst, void *priv, void *user)
{
    (void)inst; (void)user;
    report(priv, "timer", "fired");
}

static void on_repeat(acdm_instance *inst, void *priv, void *user)
{
    (void)inst; (void)user;
    counter *c = priv;
    if (++c->rep_fired == 3) {
        c->host->timer_stop(c->rep);
        c->rep = NULL;
        report(c, "repeat", "3");
    }
}

static void on_readable(acdm_instance *inst, void *priv, void *user, int events)
{
    (void)inst; (void)user;
    counter *c = priv;
    char b;
    if ((events & ACDM_WATCH_READ) && read(c->pipefd[0], &b, 1) == 1) {
        c->host->unwatch_fd(c->watch);
        c->watch = NULL;
        pthread_join(c->th, NULL);
        report(c, "watch", "%c", b);
    }
}

static void on_http(acdm_instance *inst, void *priv, void *user, int status, const char *body,
                    size_t len, const char *error)
{
    (void)inst; (void)user;
    report(priv, "http", "%d %.*s%s", status, (int)len, body, error ? "error" : "");
}

static void on_submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome o,
                         const char *bericht_id, const char *text)
{
    (void)inst; (void)user;
    report(priv, "submit-cb", "%d %s %s", (int)o, bericht_id ? bericht_id : "-", text ? text : "-");
}

/* A reply carrying attachments: read the first back and report what arrived. */
static int deliver_payload(acdm_instance *inst, counter *c, const acdm_reply *r)
{
    const char *p = strstr(r->payload_json, "\"attachments\"");
    const char *q = p ? strstr(p, "\"id\":\"") : NULL;
    char id[64] = "", out[512];
    if (q) sscanf(q + 6, "%63[^\"]", id);
    unsigned long long n = 0;
    unsigned h = 2166136261u;
    int rc = -99;
    acdm_attachment_meta meta = {.struct_size = sizeof meta};
    if (id[0] && ACDM_HOST_HAS(c->host, attachment_read)) {
        int fd = -1;
        rc = c->host->attachment_read(inst, id, &meta, &fd);
        if (rc == 0) {
            char buf[65536];
            ssize_t k;
            while ((k = read(fd, buf, sizeof buf)) > 0)
                for (ssize_t i = 0; i < k; i++) { h = (h ^ (unsigned char)buf[i]) * 16777619u; n++; }
            close(fd);
        }
    }
    snprintf(out, sizeof out, "{\"delivery\":\"delivered\",\"message\":\"%s\",\"rc\":%d,"
             "\"read\":%llu,\"fnv\":\"%08x\",\"size\":%llu,\"content_id\":\"%s\"}",
             r->message_id ? r->message_id : "", rc, n, h, (unsigned long long)meta.size,
             meta.content_id);
    c->host->delivery_report(inst, r->bericht_id, r->text, out);
    return 0;
}

static char *c_status(acdm_instance *inst, void *priv)
{
    (void)inst;
    const counter *c = priv;
    char *s = malloc(64);
    if (s) snprintf(s, 64, "{\"healthy\":%s,\"count\":%d}", c->sick ? "false" : "true", c->n);
    return s;
}

static int c_deliver(acdm_instance *inst, void *priv, const acdm_reply *r)
{
    counter *c = priv;
    const char *t = r->text ? r->text : "";
    char a[64] = "", b[64] = "";
    if (r->payload_json && strstr(r->payload_json, "\"attachments\"")) return deliver_payload(inst, c, r);
    if (!strcmp(t, "reply-id")) {
        report(c, "reply-id", "%s|%s", r->message_id ? r->message_id : "-",
               r->payload_json ? r->payload_json : "-");
    } else if (!strcmp(t, "count")) {
        c->n++;
        report(c, "count", "%s/%s:%d", c->host->instance_name(inst), c->tag, c->n);
    } else if (sscanf(t, "submit-err %63s %63s", a, b) == 2) {
        /* from "-": empty; a queue after the from: "submit-err chat alice nope" */
        char q[64] = "";
        sscanf(t, "submit-err %*s %*s %63s", q);
        acdm_inbound in = {.struct_size = sizeof in, .kind = a, .from = strcmp(b, "-") ? b : "",
                           .queue = q[0] ? q : NULL, .text = "hello"};
        char err[128] = "untouched";
        int rc = ACDM_HOST_HAS(c->host, submit_err)
                     ? c->host->submit_err(inst, &in, on_submitted, NULL, err, sizeof err) : -99;
        report(c, "submit-err", "%d %s", rc, err);
    } else if (sscanf(t, "submit %63s %63s", a, b) == 2) {
        acdm_inbound in = {.struct_size = sizeof in, .kind = a, .from = strcmp(b, "-") ? b : "",
                           .text = "hello", .conversation = "conv-1"};
        int rc = c->host->submit(inst, &in, on_submitted, NULL);
        report(c, "submit-rc", "%d", rc);
    } else if (!strcmp(t, "host-has")) {
        /* the ABI 1.1 host functions this core hands over, in table order */
        char has[256] = "";
#define HAS(f) if (ACDM_HOST_HAS(c->host, f)) snprintf(has + strlen(has), sizeof has - strlen(has), \
                                                       "%s%s", has[0] ? " " : "", #f)
        HAS(submit_err); HAS(attachment_store); HAS(attachment_read); HAS(kv_set_ttl);
        HAS(update); HAS(device_result); HAS(device_reachable); HAS(originate_result);
        HAS(flush); HAS(set_conversation);
#undef HAS
        report(c, "host-has", "%s", has);
    } else if (!strcmp(t, "submit-small")) {
        acdm_inbound in = {.struct_size = sizeof(size_t), .kind = "chat", .from = "x"};
        report(c, "submit-rc", "%d", c->host->submit(inst, &in, on_submitted, NULL));
    } else if (!strcmp(t, "post")) {
        pthread_t th;
        if (pthread_create(&th, NULL, post_thread, c) == 0) pthread_join(th, NULL);
    } else if (!strcmp(t, "burst")) {
        pthread_t th;
        if (pthread_create(&th, NULL, burst_thread, c) == 0) pthread_join(th, NULL);
    } else if (sscanf(t, "timer %63s", a) == 1) {
        c->host->timer_start(inst, (uint64_t)atoi(a), 0, on_timer, NULL);
    } else if (sscanf(t, "repeat %63s", a) == 1) {
        c->rep = c->host->timer_start(inst, (uint64_t)atoi(a), (uint64_t)atoi(a), on_repeat, NULL);
    } else if (sscanf(t, "kv-set %63s %63s", a, b) == 2) {
        report(c, "kv", "%d", c->host->kv_set(inst, a, strcmp(b, "-") ? b : NULL, strlen(b)));
    } else if (!strcmp(t, "flush")) {
        report(c, "flush-rc", "%d", ACDM_HOST_HAS(c->host, flush) ?
               c->host->flush(inst, on_flushed, NULL) : -99);
    } else if (sscanf(t, "kv-ttl %63s %63s", a, b) == 2) {
        char ttl[16] = "0";
        sscanf(t, "kv-ttl %*s %*s %15s", ttl);
        report(c, "kv", "%d", ACDM_HOST_HAS(c->host, kv_set_ttl)
               ? c->host->kv_set_ttl(inst, a, b, strlen(b), (uint32_t)atoi(ttl)) : -99);
    } else if (sscanf(t, "att-mem %63s %63s", a, b) == 2) {
        /* att-mem <bericht> <data>: stored from memory */
        acdm_attachment_in in = {.struct_size = sizeof in, .bericht_id = a, .filename = "m.txt",
                                 .content_type = "text/plain", .data = b, .len = strlen(b)};
        char id[64] = "";
        int rc = c->host->attachment_store(inst, &in, id);
        report(c, "att", "%d %s", rc, id);
    } else if (sscanf(t, "att-path %63s %63s", a, b) == 2) {
        /* att-path <bericht> <path>: stored from a file */
        acdm_attachment_in in = {.struct_size = sizeof in, .bericht_id = a, .filename = "f.bin",
                                 .content_id = "cid-1", .path = b};
        char id[64] = "";
        int rc = c->host->attachment_store(inst, &in, id);
        report(c, "att", "%d %s", rc, id);
    } else if (sscanf(t, "att-both %63s", a) == 1) {
        acdm_attachment_in in = {.struct_size = sizeof in, .bericht_id = a, .filename = "x",
                                 .data = "x", .len = 1, .path = "/etc/hostname"};
        char id[64] = "";
        report(c, "att", "%d", c->host->attachment_store(inst, &in, id));
    } else if (sscanf(t, "att-read-small %63s", a) == 1) {
        acdm_attachment_meta meta = {.struct_size = 8};
        int fd = -1;
        report(c, "att-read", "%d %d", c->host->attachment_read(inst, a, &meta, &fd), fd);
    } else if (sscanf(t, "att-read %63s", a) == 1) {
        acdm_attachment_meta meta = {.struct_size = sizeof meta};
        int fd = -1;
        int rc = c->host->attachment_read(inst, a, &meta, &fd);
        char buf[64] = "";
        ssize_t k = fd >= 0 ? read(fd, buf, sizeof buf - 1) : 0;
        if (k > 0) buf[k] = 0;
        if (fd >= 0) close(fd);
        report(c, "att-read", "%d %s %s %s %llu %s", rc, meta.bericht_id, meta.filename,
               meta.content_id, (unsigned long long)meta.size, buf);
    } else if (sscanf(t, "kv-get %63s", a) == 1) {
        char *v = NULL;
        size_t n = 0;
        int rc = c->host->kv_get(inst, a, &v, &n);
        report(c, "kv", "%s", rc == 0 ? v : "ENOENT");
        c->host->free(v);
    } else if (!strcmp(t, "watch")) {
        if (pipe(c->pipefd) < 0) return -1;
        c->watch = c->host->watch_fd(inst, c->pipefd[0], ACDM_WATCH_READ, on_readable, NULL);
        if (!c->watch || pthread_create(&c->th, NULL, pipe_thread, c) != 0) return -1;
    } else if (sscanf(t, "http %63s", a) == 1) {
        acdm_http_out o = {.struct_size = sizeof o, .url = a, .body = "ping", .timeout_ms = 3000};
        report(c, "http-rc", "%d", c->host->http_request(inst, &o, on_http, NULL));
    } else if (!strcmp(t, "respond-null")) {   /* before "respond %s", which would match */
        report(c, "respond-rc", "%d", c->host->http_respond(c->later, NULL));
    } else if (sscanf(t, "respond %63s", a) == 1) {
        acdm_http_response resp = {.status = atoi(a), .body = "later"};
        report(c, "respond-rc", "%d", c->host->http_respond(c->later, &resp));
        c->later = NULL;
    } else if (sscanf(t, "end %63s", a) == 1) {
        report(c, "end-rc", "%d", c->host->end(inst, a, "hangup"));
    } else {
        return -1;
    }
    return 0;
}

static void c_event(acdm_instance *inst, void *priv, const acdm_event_info *ev)
{
    (void)inst;
    report(priv, "event", "%d %s", (int)ev->type, ev->bericht_id ? ev->bericht_id : "-");
}

#ifndef GOOD_COUNTER_VERSION
#define GOOD_COUNTER_VERSION "1.0"
#endif
static const acdm_plugin desc = ACDM_PLUGIN_INIT(
    .name = "good_counter", .version = GOOD_COUNTER_VERSION, .description = "test plugin", .kinds = "chat,sms",
    .instance_size = sizeof(counter), .check_config = c_check, .init = c_init, .start = c_start,
    .reload = c_reload, .deliver = c_deliver, .on_event = c_event, .stop = c_stop,
    .destroy = c_destroy, .status_json = c_status);

ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &desc; }
