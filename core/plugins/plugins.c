/* plugins.c -- the plugin host: loader, instance lifecycle, and the host table plugins call. */
#include "plugins/plugins.h"
#include "net/http.h"
#include "base/log.h"

#include <curl/curl.h>
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WHO "plugins"
#define DEBOUNCE_MS 200
#define DEBOUNCE_TRIES 50           /* 10 s of "still being written" before giving up */
#define MAX_INSTANCE_SIZE (64u << 20)
#define MAX_RESPONSE_BODY (16u << 20)

/* The last field of the descriptor this core reads; a plugin built against an older minor
 * is accepted when its struct_size reaches the end of it. */
#define DESC_NEEDS (offsetof(acdm_plugin, destroy) + sizeof(((acdm_plugin *)0)->destroy))
#define INBOUND_NEEDS (offsetof(acdm_inbound, payload_json) + sizeof(const char *))
#define HTTP_OUT_NEEDS (offsetof(acdm_http_out, timeout_ms) + sizeof(long))

/* The host table only grows at its end (plugins test ACDM_HOST_HAS against struct_size), and
 * acdm_http_response's defer/token come after the fields an older plugin fills. */
_Static_assert(sizeof(acdm_host) == offsetof(acdm_host, end_ago) +
               sizeof(((acdm_host *)0)->end_ago), "end_ago is the host table's last field");
_Static_assert(offsetof(acdm_http_response, defer) >= offsetof(acdm_http_response, body_len) +
               sizeof(size_t), "defer/token come after the 1.0 response fields");

/* ------------------------------------------------------------------ types */

typedef struct plugin {
    struct plugin *next;
    char *file;
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    void *dl;
    const acdm_plugin *d;
    bool enabled;
    int n_instances;            /* instances that are initialised (priv allocated) */
} plugin;

enum { IS_WAITING = 0, IS_STARTING, IS_RUNNING, IS_FAILED, IS_DISABLED, IS_STOPPING };
static const char *const state_names[] = {"waiting", "starting", "running", "failed",
                                          "disabled", "stopping"};

struct acdm_timer {
    struct acdm_timer *prev, *next;
    uv_timer_t h;
    acdm_instance *inst;
    void (*cb)(acdm_instance *, void *, void *);
    void *user;
    bool repeat, closing, firing;
};

struct acdm_watch {
    struct acdm_watch *prev, *next;
    uv_poll_t h;
    acdm_instance *inst;
    void (*cb)(acdm_instance *, void *, void *, int);
    void *user;
    bool closing;
};

typedef struct hroute {
    struct hroute *next;
    acdm_instance *inst;
    acdm_http_handler handler;
    int id;
} hroute;

#define DEFERRED_MAGIC 0xacd3defe

/* One plugin HTTP request while its handler runs and, if it deferred, until http_respond (or
 * the instance's stop, which answers 503). The token a plugin sees is this struct. */
typedef struct deferred {
    struct deferred *prev, *next;   /* inst->deferred */
    unsigned magic;                 /* DEFERRED_MAGIC while pending; catches some misuse */
    acdm_instance *inst;
    acdm_req *req;                  /* the server's request, replied exactly once */
    bool in_handler;                /* route_call still runs: it frees the struct */
    bool answered;                  /* http_respond was called inside the handler */
} deferred;

/* A websocket route. Kept until acdm_plugins_destroy (inst NULL once its instance stopped) so
 * a late callback from the HTTP layer never sees freed memory. */
typedef struct wsroute {
    struct wsroute *next;        /* p->wsroutes */
    acdm_plugins *p;
    acdm_instance *inst;
    acdm_ws_callbacks cb;
    int id;
} wsroute;

struct acdm_wsconn {
    struct acdm_wsconn *prev, *next;  /* inst->conns while attached */
    acdm_ws *ws;
    wsroute *route;              /* NULL: orphaned (instance stopped), freed at the ws close */
    void *user;
};

typedef struct outreq {
    struct outreq *prev, *next;
    acdm_instance *inst;
    CURL *easy;
    struct curl_slist *headers;
    acdm_http_done done;
    void *user;
    char *buf;
    size_t len, cap;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
    acdm_core_http_done core_done;   /* the core's own request (inst NULL): acdm_plugins_core_get */
    size_t max_body;                 /* 0 = MAX_RESPONSE_BODY */
} outreq;

typedef struct curl_sock {
    struct curl_sock *prev, *next;
    uv_poll_t h;
    acdm_plugins *p;
    curl_socket_t fd;
} curl_sock;

/* A submit whose callback the engine still owes. inst NULL once the instance stopped. */
typedef struct pending_submit {
    struct pending_submit *prev, *next;
    acdm_plugins *p;
    acdm_instance *inst;
    acdm_submit_cb cb;
    void *user;
} pending_submit;

typedef struct post_item {
    struct post_item *next;
    acdm_instance *inst;
    void (*fn)(acdm_instance *, void *, void *);
    void *arg;
} post_item;

typedef struct kv_entry {
    struct kv_entry *next;
    char *ns, *key, *val;
    size_t len;
} kv_entry;

typedef struct pending_file {
    struct pending_file *next;
    char *name;
    off_t size;
    struct timespec mtime;
    int tries;
} pending_file;

typedef struct refusal {
    struct refusal *next;
    char *file, *reason;
} refusal;

struct acdm_instance {
    struct acdm_instance *next;
    acdm_plugins *p;
    char *name, *plugin_name, *queue, *config_json;
    char *route_prefix;          /* "/channels/<name>" */
    plugin *pl;                  /* set while initialised */
    void *priv;
    int state;
    bool accept_posts;           /* guarded by p->post_mu */
    bool seen;
    acdm_timer *timers;
    acdm_watch *watches;
    hroute *routes;
    acdm_wsconn *conns;
    outreq *reqs;
    pending_submit *subs;
    deferred *deferred;          /* HTTP responses the plugin still owes */
};

struct acdm_plugins {
    acdm_plugin_env env;
    char *dir;
    plugin *plugins;
    acdm_instance *insts;
    refusal *refused;
    kv_entry *kv;
    wsroute *wsroutes;
    pending_submit *orphans;
    /* post() */
    pthread_mutex_t post_mu;
    post_item *post_head, *post_tail;
    uv_async_t *async;
    /* hot drop */
    uv_fs_event_t *fsev;
    uv_timer_t *debounce;
    pending_file *pending;
    /* outbound HTTP */
    CURLM *multi;
    uv_timer_t *curl_timer;
    curl_sock *socks;
    outreq *core_reqs;           /* the core's own requests (screen-pop) */
    int open_handles;            /* uv handles not yet closed */
};

static const acdm_host host_table;

/* ------------------------------------------------------------------ small helpers */

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static bool streq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && !strcmp(a, b));
}

#define DLIST_ADD(head, e) do { \
        (e)->prev = NULL; (e)->next = (head); \
        if (head) { (head)->prev = (e); } \
        (head) = (e); \
    } while (0)
#define DLIST_DEL(head, e) do { \
        if ((e)->prev) { (e)->prev->next = (e)->next; } else { (head) = (e)->next; } \
        if ((e)->next) { (e)->next->prev = (e)->prev; } \
        (e)->prev = (e)->next = NULL; \
    } while (0)

static void handle_freed(uv_handle_t *h)
{
    acdm_plugins *p = h->data;
    p->open_handles--;
    free(h);
}

static void close_owned(acdm_plugins *p, uv_handle_t *h)
{
    if (!h) return;
    h->data = p;
    uv_close(h, handle_freed);
}

static plugin *find_plugin(acdm_plugins *p, const char *name)
{
    for (plugin *pl = p->plugins; pl; pl = pl->next)
        if (!strcmp(pl->d->name, name)) return pl;
    return NULL;
}

static plugin *find_plugin_file(acdm_plugins *p, const char *file)
{
    for (plugin *pl = p->plugins; pl; pl = pl->next)
        if (!strcmp(pl->file, file)) return pl;
    return NULL;
}

acdm_instance *acdm_plugins_instance(acdm_plugins *p, const char *name)
{
    for (acdm_instance *i = p->insts; i && name; i = i->next)
        if (!strcmp(i->name, name)) return i;
    return NULL;
}

const char *acdm_instance_name_of(const acdm_instance *i) { return i ? i->name : NULL; }
const char *acdm_instance_queue(const acdm_instance *i) { return i ? i->queue : NULL; }
const char *acdm_instance_state(const acdm_instance *i) { return i ? state_names[i->state] : NULL; }

/* Host calls are allowed from init until the plugin's stop returns. */
static bool live(const acdm_instance *i)
{
    return i && i->pl && (i->state == IS_STARTING || i->state == IS_RUNNING ||
                          i->state == IS_STOPPING);
}

/* ------------------------------------------------------------------ post() */

static void post_drain(uv_async_t *a)
{
    acdm_plugins *p = a->data;
    for (;;) {
        pthread_mutex_lock(&p->post_mu);
        post_item *it = p->post_head;
        if (it) {
            p->post_head = it->next;
            if (!p->post_head) p->post_tail = NULL;
        }
        pthread_mutex_unlock(&p->post_mu);
        if (!it) break;
        /* items of a stopped instance were purged under the mutex; this one is live */
        if (live(it->inst)) it->fn(it->inst, it->inst->priv, it->arg);
        free(it);
    }
}

static int host_post(acdm_instance *inst, void (*fn)(acdm_instance *, void *, void *), void *arg)
{
    if (!inst || !fn) return ACDM_EINVAL;
    acdm_plugins *p = inst->p;
    post_item *it = malloc(sizeof *it);
    if (!it) return ACDM_ENOMEM;
    it->next = NULL; it->inst = inst; it->fn = fn; it->arg = arg;
    pthread_mutex_lock(&p->post_mu);
    if (!inst->accept_posts) {
        pthread_mutex_unlock(&p->post_mu);
        free(it);
        return ACDM_ESTATE;
    }
    if (p->post_tail) p->post_tail->next = it; else p->post_head = it;
    p->post_tail = it;
    /* under the mutex: p->async is closed only after every instance refuses posts */
    uv_async_send(p->async);
    pthread_mutex_unlock(&p->post_mu);
    return 0;
}

/* Refuses further posts for inst and drops the queued ones (their arg is not freed: the
 * plugin's stop owns whatever its thread allocated). */
static void posts_close(acdm_instance *inst)
{
    acdm_plugins *p = inst->p;
    pthread_mutex_lock(&p->post_mu);
    inst->accept_posts = false;
    post_item **pp = &p->post_head, *last = NULL;
    while (*pp) {
        post_item *it = *pp;
        if (it->inst == inst) { *pp = it->next; free(it); }
        else { last = it; pp = &it->next; }
    }
    p->post_tail = last;
    pthread_mutex_unlock(&p->post_mu);
}

/* ------------------------------------------------------------------ logging, names */

static void host_log(acdm_instance *inst, int level, const char *fmt, ...)
{
    if (level > acdm_log_level) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    acdm_log_raw(level, inst ? inst->name : "plugin", "%s", buf);
}

static const char *host_instance_name(acdm_instance *inst) { return inst ? inst->name : NULL; }

/* ------------------------------------------------------------------ submit, end, delivery_report */

static void submit_done(acdm_instance *inst_unused, void *priv_unused, void *user,
                        acdm_submit_outcome outcome, const char *bericht_id, const char *text)
{
    (void)inst_unused; (void)priv_unused;
    pending_submit *s = user;
    acdm_instance *inst = s->inst;
    if (inst) {
        DLIST_DEL(inst->subs, s);
        if (live(inst) && s->cb) s->cb(inst, inst->priv, s->user, outcome, bericht_id, text);
    } else {
        DLIST_DEL(s->p->orphans, s);
    }
    free(s);
}

static int host_submit(acdm_instance *inst, const acdm_inbound *in, acdm_submit_cb cb, void *user)
{
    if (!live(inst) || !in) return ACDM_EINVAL;
    if (in->struct_size < INBOUND_NEEDS) {
        acdm_log(ACDM_LOG_WARN, inst->name, "submit refused: acdm_inbound.struct_size %zu < %zu",
                 in->struct_size, (size_t)INBOUND_NEEDS);
        return ACDM_EINVAL;
    }
    if (acdm_kind_parse(in->kind) < 0) {
        acdm_log(ACDM_LOG_WARN, inst->name, "submit refused: unknown kind \"%s\"",
                 in->kind ? in->kind : "(null)");
        return ACDM_EINVAL;
    }
    if (!in->from || !*in->from) {
        acdm_log(ACDM_LOG_WARN, inst->name, "submit refused: \"from\" is empty");
        return ACDM_EINVAL;
    }
    if (in->priority < 0 || in->priority > 9) {
        acdm_log(ACDM_LOG_WARN, inst->name, "submit refused: priority %d not in 0..9", in->priority);
        return ACDM_EINVAL;
    }
    if (!inst->p->env.submit) return ACDM_ESTATE;
    pending_submit *s = NULL;
    if (cb) {
        s = calloc(1, sizeof *s);
        if (!s) return ACDM_ENOMEM;
        s->p = inst->p; s->inst = inst; s->cb = cb; s->user = user;
        DLIST_ADD(inst->subs, s);
    }
    int rc = inst->p->env.submit(inst->p->env.engine, inst, in, s ? submit_done : NULL, s);
    if (rc < 0 && s) {   /* an error never calls the callback */
        if (s->inst) { DLIST_DEL(inst->subs, s); } else { DLIST_DEL(inst->p->orphans, s); }
        free(s);
    }
    return rc;
}

static int host_end(acdm_instance *inst, const char *bericht_id, const char *reason)
{
    if (!live(inst) || !bericht_id || !*bericht_id) return ACDM_EINVAL;
    if (!inst->p->env.end) return ACDM_ESTATE;
    return inst->p->env.end(inst->p->env.engine, inst, bericht_id, reason ? reason : "ended");
}

static int host_delivery_report(acdm_instance *inst, const char *bericht_id, const char *text,
                           const char *payload_json)
{
    if (!live(inst) || !bericht_id || !*bericht_id) return ACDM_EINVAL;
    if (!inst->p->env.delivery_report) return ACDM_ESTATE;
    return inst->p->env.delivery_report(inst->p->env.engine, inst, bericht_id, text, payload_json);
}

static int host_typing(acdm_instance *inst, const char *bericht_id)
{
    if (!live(inst) || !bericht_id || !*bericht_id) return ACDM_EINVAL;
    if (!inst->p->env.typing) return ACDM_ESTATE;
    return inst->p->env.typing(inst->p->env.engine, inst, bericht_id);
}

static int host_queue_position(acdm_instance *inst, const char *bericht_id, uint32_t *position,
                               uint32_t *estimate_s)
{
    if (!live(inst) || !bericht_id || !*bericht_id || !position || !estimate_s) return ACDM_EINVAL;
    *position = 0;
    *estimate_s = 0;
    if (!inst->p->env.queue_position) return ACDM_ESTATE;
    return inst->p->env.queue_position(inst->p->env.engine, inst, bericht_id, position, estimate_s);
}

static int host_attachment_put(acdm_instance *inst, const char *bericht_id, const char *filename,
                               const char *content_type, const void *data, size_t len,
                               char id_out[64])
{
    if (!live(inst) || !bericht_id || !*bericht_id || !filename || !*filename || !content_type ||
        !*content_type || !data || !len || !id_out)
        return ACDM_EINVAL;
    if (len > ACDM_ATTACHMENT_MAX) return ACDM_ETOOBIG;
    if (strlen(filename) > 255 || strlen(content_type) > 127) return ACDM_EINVAL;
    if (!inst->p->env.attachment_put) return ACDM_ESTATE;
    return inst->p->env.attachment_put(inst->p->env.engine, inst, bericht_id, filename,
                                       content_type, data, len, id_out);
}

static int host_check_token(acdm_instance *inst, const char *token)
{
    if (!live(inst) || !token || !*token) return ACDM_EINVAL;
    if (!inst->p->env.check_token) return ACDM_ESTATE;
    return inst->p->env.check_token(inst->p->env.engine, inst, token);
}

static int host_end_ago(acdm_instance *inst, const char *bericht_id, const char *reason, uint32_t ago_ms)
{
    if (!live(inst) || !bericht_id || !*bericht_id) return ACDM_EINVAL;
    if (!inst->p->env.end_ago) return host_end(inst, bericht_id, reason);
    return inst->p->env.end_ago(inst->p->env.engine, inst, bericht_id, reason ? reason : "ended", ago_ms);
}

/* ------------------------------------------------------------------ timers */

static void timer_freed(uv_handle_t *h) { free(h->data); }

static void timer_close(acdm_timer *t)
{
    if (t->closing) return;
    t->closing = true;
    if (t->inst) { DLIST_DEL(t->inst->timers, t); }
    uv_close((uv_handle_t *)&t->h, timer_freed);
}

static void timer_fire(uv_timer_t *h)
{
    acdm_timer *t = h->data;
    acdm_instance *inst = t->inst;
    t->firing = true;
    t->cb(inst, inst->priv, t->user);
    t->firing = false;
    if (!t->repeat) timer_close(t);
}

static acdm_timer *host_timer_start(acdm_instance *inst, uint64_t after_ms, uint64_t repeat_ms,
                                    void (*cb)(acdm_instance *, void *, void *), void *user)
{
    if (!live(inst) || !cb) return NULL;
    acdm_timer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    uv_timer_init(inst->p->env.loop, &t->h);
    t->h.data = t;
    t->inst = inst; t->cb = cb; t->user = user; t->repeat = repeat_ms > 0;
    DLIST_ADD(inst->timers, t);
    uv_timer_start(&t->h, timer_fire, after_ms, repeat_ms);
    return t;
}

static void host_timer_stop(acdm_timer *t)
{
    if (t) timer_close(t);
}

/* ------------------------------------------------------------------ fd watches */

static void watch_freed(uv_handle_t *h) { free(h->data); }

static void watch_close(acdm_watch *w)
{
    if (w->closing) return;
    w->closing = true;
    if (w->inst) { DLIST_DEL(w->inst->watches, w); }
    uv_poll_stop(&w->h);
    uv_close((uv_handle_t *)&w->h, watch_freed);
}

static void watch_fire(uv_poll_t *h, int status, int events)
{
    acdm_watch *w = h->data;
    int ev = 0;
    if (events & UV_READABLE) ev |= ACDM_WATCH_READ;
    if (events & UV_WRITABLE) ev |= ACDM_WATCH_WRITE;
    if (status < 0) ev = ACDM_WATCH_READ | ACDM_WATCH_WRITE; /* let the plugin find the error */
    if (!w->closing) w->cb(w->inst, w->inst->priv, w->user, ev);
}

static acdm_watch *host_watch_fd(acdm_instance *inst, int fd, int events,
                                 void (*cb)(acdm_instance *, void *, void *, int), void *user)
{
    if (!live(inst) || !cb || fd < 0 || !(events & (ACDM_WATCH_READ | ACDM_WATCH_WRITE)))
        return NULL;
    acdm_watch *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    if (uv_poll_init(inst->p->env.loop, &w->h, fd) < 0) {
        acdm_log(ACDM_LOG_WARN, inst->name, "watch_fd: fd %d cannot be polled", fd);
        free(w);
        return NULL;
    }
    w->h.data = w;
    w->inst = inst; w->cb = cb; w->user = user;
    DLIST_ADD(inst->watches, w);
    int uvev = ((events & ACDM_WATCH_READ) ? UV_READABLE : 0) |
               ((events & ACDM_WATCH_WRITE) ? UV_WRITABLE : 0);
    uv_poll_start(&w->h, uvev, watch_fire);
    return w;
}

static void host_unwatch_fd(acdm_watch *w)
{
    if (w) watch_close(w);
}

/* ------------------------------------------------------------------ HTTP routes */

/* The request as the plugin sees it; strings borrowed from r (the body is NUL-terminated). */
static void fill_request(const acdm_instance *inst, acdm_req *r, acdm_http_request *out)
{
    const char *path = acdm_req_path(r);
    size_t pl = strlen(inst->route_prefix);
    if (path && !strncmp(path, inst->route_prefix, pl)) path += pl;
    size_t blen = 0;
    const char *body = acdm_req_body(r, &blen);
    memset(out, 0, sizeof *out);
    out->method = acdm_req_method(r);
    out->path = path && *path ? path : "/";
    out->query = acdm_req_query_string(r);
    out->body = body && blen ? body : NULL;
    out->body_len = out->body ? blen : 0;
    out->authorization = acdm_req_header(r, "Authorization");
    out->origin = acdm_req_header(r, "Origin");
    out->content_type = acdm_req_header(r, "Content-Type");
}

static void reply_with(acdm_req *r, const acdm_http_response *resp)
{
    size_t len = resp->body ? (resp->body_len ? resp->body_len : strlen(resp->body)) : 0;
    acdm_http_reply(r, resp->status > 0 ? resp->status : 200,
                    resp->content_type ? resp->content_type : "application/json", resp->body, len);
}

static void deferred_free(deferred *d)
{
    DLIST_DEL(d->inst->deferred, d);
    d->magic = 0;
    free(d);
}

static void route_call(void *user, acdm_req *r)
{
    hroute *rt = user;
    acdm_instance *inst = rt->inst;
    if (!inst || inst->state != IS_RUNNING) {
        acdm_http_problem(r, 503, "Channel not running", "channel instance is not running");
        return;
    }
    deferred *d = calloc(1, sizeof *d);
    if (!d) {
        acdm_http_problem(r, 503, "Out of memory", "the channel cannot take requests now");
        return;
    }
    d->magic = DEFERRED_MAGIC;
    d->inst = inst;
    d->req = r;
    d->in_handler = true;
    DLIST_ADD(inst->deferred, d);
    acdm_http_request req;
    fill_request(inst, r, &req);
    acdm_http_response resp = {.status = 200, .token = d};
    rt->handler(inst, inst->priv, &req, &resp);
    d->in_handler = false;
    if (d->answered) {                      /* http_respond ran inside the handler */
        if (!resp.defer)
            acdm_log(ACDM_LOG_WARN, inst->name, "http_respond called in a handler that did not "
                     "set defer: the handler's own response was dropped");
        deferred_free(d);
    } else if (!resp.defer) {
        deferred_free(d);
        reply_with(r, &resp);
    }   /* deferred: d stays in inst->deferred until http_respond, or the 503 at stop */
}

static int host_http_respond(void *token, const acdm_http_response *resp)
{
    deferred *d = token;
    if (!d || !resp) return ACDM_EINVAL;
    if (d->magic != DEFERRED_MAGIC || d->answered) {
        acdm_log(ACDM_LOG_ERR, WHO, "http_respond with a token that is not pending "
                 "(completed twice, or after the instance stopped?)");
        return ACDM_EINVAL;
    }
    if (!acdm_req_alive(d->req))
        acdm_log(ACDM_LOG_DEBUG, d->inst->name, "deferred HTTP response: the client went away");
    reply_with(d->req, resp);               /* a gone client: dropped, and the request freed */
    d->req = NULL;
    if (d->in_handler) d->answered = true;  /* route_call frees it */
    else deferred_free(d);
    return 0;
}

/* Answers 503 to every response the instance still owes (after its stop). */
static void deferred_close_all(acdm_instance *inst)
{
    int n = 0;
    while (inst->deferred) {
        deferred *d = inst->deferred;
        if (d->req)
            acdm_http_problem(d->req, 503, "Channel stopped",
                              "the channel instance stopped before it could answer; "
                              "retry (with the same idempotency key)");
        deferred_free(d);
        n++;
    }
    if (n) acdm_log(ACDM_LOG_NOTICE, inst->name, "answered %d deferred HTTP response%s with 503 "
                    "at stop", n, n == 1 ? "" : "s");
}

/* "/channels/<instance><path>"; path must start with '/'. */
static char *route_pattern(const acdm_instance *inst, const char *path)
{
    if (!path || path[0] != '/') return NULL;
    size_t n = strlen(inst->route_prefix) + strlen(path) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", inst->route_prefix, path);
    return s;
}

static int host_http_route(acdm_instance *inst, const char *method, const char *path,
                           acdm_http_handler handler)
{
    if (!live(inst) || !handler) return ACDM_EINVAL;
    if (!inst->p->env.http) return ACDM_ESTATE;
    char *pat = route_pattern(inst, path);
    if (!pat) return ACDM_EINVAL;
    hroute *rt = calloc(1, sizeof *rt);
    if (!rt) { free(pat); return ACDM_ENOMEM; }
    rt->inst = inst; rt->handler = handler;
    int id = acdm_http_route(inst->p->env.http, method, pat, route_call, rt);
    if (id <= 0) {
        acdm_log(ACDM_LOG_WARN, inst->name, "http_route %s %s refused by the HTTP server",
                 method ? method : "*", pat);
        free(pat); free(rt);
        return id < 0 ? id : ACDM_EINVAL;
    }
    free(pat);
    rt->id = id;
    rt->next = inst->routes;
    inst->routes = rt;
    return 0;
}

/* ------------------------------------------------------------------ websockets */

static int ws_open(void *user, acdm_ws *ws, acdm_req *upgrade)
{
    wsroute *wr = user;
    acdm_instance *inst = wr->inst;
    if (!inst || inst->state != IS_RUNNING) return -1;
    acdm_wsconn *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->ws = ws; c->route = wr;
    acdm_ws_set_user(ws, c);
    DLIST_ADD(inst->conns, c);
    if (wr->cb.open) {
        acdm_http_request req;
        fill_request(inst, upgrade, &req);
        int rc = wr->cb.open(inst, inst->priv, c, &req);
        if (rc < 0) {
            DLIST_DEL(inst->conns, c);
            acdm_ws_set_user(ws, NULL);
            free(c);
            return -1;
        }
    }
    return 0;
}

static void ws_message(void *user, acdm_ws *ws, const char *data, size_t len)
{
    (void)user;
    acdm_wsconn *c = acdm_ws_user(ws);
    if (!c || !c->route || !c->route->inst) return;
    acdm_instance *inst = c->route->inst;
    if (inst->state == IS_RUNNING && c->route->cb.message)
        c->route->cb.message(inst, inst->priv, c, data, len);
}

static void ws_closed(void *user, acdm_ws *ws)
{
    (void)user;
    acdm_wsconn *c = acdm_ws_user(ws);
    if (!c) return;
    acdm_ws_set_user(ws, NULL);
    if (c->route && c->route->inst) {
        acdm_instance *inst = c->route->inst;
        DLIST_DEL(inst->conns, c);
        if (c->route->cb.close) c->route->cb.close(inst, inst->priv, c);
    }
    free(c);
}

static const acdm_ws_handlers ws_handlers = {ws_open, ws_message, ws_closed};

static int host_ws_route(acdm_instance *inst, const char *path, const acdm_ws_callbacks *cb)
{
    if (!live(inst) || !cb) return ACDM_EINVAL;
    if (!inst->p->env.http) return ACDM_ESTATE;
    char *pat = route_pattern(inst, path);
    if (!pat) return ACDM_EINVAL;
    wsroute *wr = calloc(1, sizeof *wr);
    if (!wr) { free(pat); return ACDM_ENOMEM; }
    wr->p = inst->p; wr->inst = inst; wr->cb = *cb;
    int id = acdm_http_ws(inst->p->env.http, pat, &ws_handlers, wr);
    if (id <= 0) {
        acdm_log(ACDM_LOG_WARN, inst->name, "ws_route %s refused by the HTTP server", pat);
        free(pat); free(wr);
        return id < 0 ? id : ACDM_EINVAL;
    }
    free(pat);
    wr->id = id;
    wr->next = inst->p->wsroutes;
    inst->p->wsroutes = wr;
    return 0;
}

static int host_ws_send(acdm_wsconn *c, const char *data, size_t len)
{
    if (!c || !c->route || !data) return ACDM_EINVAL;
    return acdm_ws_send(c->ws, data, len) < 0 ? ACDM_EIO : 0;
}

static void host_ws_close(acdm_wsconn *c, int code, const char *reason)
{
    if (c && c->route) acdm_ws_close(c->ws, code, reason);
}

static void host_ws_set_user(acdm_wsconn *c, void *user) { if (c) c->user = user; }
static void *host_ws_user(acdm_wsconn *c) { return c ? c->user : NULL; }

/* ------------------------------------------------------------------ outbound HTTP (libcurl multi on uv) */

static void curl_check_done(acdm_plugins *p)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(p->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        outreq *rq = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&rq);
        CURLcode res = m->data.result;
        curl_multi_remove_handle(p->multi, m->easy_handle);
        if (!rq) continue;
        acdm_instance *inst = rq->inst;
        if (inst) DLIST_DEL(inst->reqs, rq);
        else DLIST_DEL(p->core_reqs, rq);
        long status = 0;
        const char *error = NULL;
        if (rq->too_big) { status = -1; error = "response body too large"; }
        else if (res != CURLE_OK) {
            status = -(long)res;
            error = rq->errbuf[0] ? rq->errbuf : curl_easy_strerror(res);
        } else curl_easy_getinfo(rq->easy, CURLINFO_RESPONSE_CODE, &status);
        if (!inst)
            rq->core_done(rq->user, (int)status, rq->buf ? rq->buf : "", rq->len, error);
        else if (live(inst))
            rq->done(inst, inst->priv, rq->user, (int)status, rq->buf ? rq->buf : "",
                     rq->len, error);
        curl_easy_cleanup(rq->easy);
        curl_slist_free_all(rq->headers);
        free(rq->buf);
        free(rq);
    }
}

static void curl_poll_cb(uv_poll_t *h, int status, int events)
{
    curl_sock *cs = h->data;
    acdm_plugins *p = cs->p;
    int flags = 0, running;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(p->multi, cs->fd, flags, &running);
    curl_check_done(p);
}

static void curl_sock_freed(uv_handle_t *h) { free(h->data); }

static void curl_sock_close(acdm_plugins *p, curl_sock *cs)
{
    DLIST_DEL(p->socks, cs);
    uv_poll_stop(&cs->h);
    uv_close((uv_handle_t *)&cs->h, curl_sock_freed);
}

static int curl_socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    acdm_plugins *p = userp;
    curl_sock *cs = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (cs) curl_sock_close(p, cs);   /* libcurl forgets the socket itself */
        return 0;
    }
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs) return -1;
        if (uv_poll_init_socket(p->env.loop, &cs->h, s) < 0) { free(cs); return -1; }
        cs->h.data = cs; cs->p = p; cs->fd = s;
        DLIST_ADD(p->socks, cs);
        curl_multi_assign(p->multi, s, cs);
    }
    int ev = ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
    uv_poll_start(&cs->h, ev, curl_poll_cb);
    return 0;
}

static void curl_timeout_fire(uv_timer_t *t)
{
    acdm_plugins *p = t->data;
    int running;
    curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    curl_check_done(p);
}

static int curl_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    acdm_plugins *p = userp;
    if (timeout_ms < 0) uv_timer_stop(p->curl_timer);
    else uv_timer_start(p->curl_timer, curl_timeout_fire, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t curl_write(char *data, size_t size, size_t n, void *user)
{
    outreq *rq = user;
    size_t add = size * n;
    if (rq->len + add > (rq->max_body ? rq->max_body : MAX_RESPONSE_BODY)) { rq->too_big = true; return 0; }
    if (rq->len + add + 1 > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 1024;
        while (cap < rq->len + add + 1) cap *= 2;
        char *b = realloc(rq->buf, cap);
        if (!b) return 0;
        rq->buf = b; rq->cap = cap;
    }
    memcpy(rq->buf + rq->len, data, add);
    rq->len += add;
    rq->buf[rq->len] = 0;
    return add;
}

static void outreq_free(outreq *rq)
{
    if (rq->easy) curl_easy_cleanup(rq->easy);
    curl_slist_free_all(rq->headers);
    free(rq->buf);
    free(rq);
}

static int host_http_request(acdm_instance *inst, const acdm_http_out *req, acdm_http_done done,
                             void *user)
{
    if (!live(inst) || !req || !done || req->struct_size < HTTP_OUT_NEEDS || !req->url)
        return ACDM_EINVAL;
    if (strncmp(req->url, "http://", 7) && strncmp(req->url, "https://", 8)) return ACDM_EINVAL;
    acdm_plugins *p = inst->p;
    outreq *rq = calloc(1, sizeof *rq);
    if (!rq) return ACDM_ENOMEM;
    rq->inst = inst; rq->done = done; rq->user = user;
    rq->easy = curl_easy_init();
    if (!rq->easy) { free(rq); return ACDM_ENOMEM; }
    CURL *e = rq->easy;
    CURLcode bad = CURLE_OK;
#define SET(opt, val) do { CURLcode c_ = curl_easy_setopt(e, opt, val); if (c_ != CURLE_OK) bad = c_; } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PRIVATE, (void *)rq);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, rq->errbuf);
    SET(CURLOPT_WRITEFUNCTION, curl_write);
    SET(CURLOPT_WRITEDATA, (void *)rq);
    SET(CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 10000L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_USERAGENT, "acdm/" ACDM_VERSION);
    const char *method = req->method ? req->method : (req->body ? "POST" : "GET");
    if (req->body) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE,
            (curl_off_t)(req->body_len ? req->body_len : strlen(req->body)));
        SET(CURLOPT_COPYPOSTFIELDS, req->body);
    } else if (!strcmp(method, "POST")) {
        SET(CURLOPT_POSTFIELDSIZE, 0L);
        SET(CURLOPT_POSTFIELDS, "");
    }
    if (strcmp(method, "GET") && strcmp(method, "POST")) SET(CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD")) SET(CURLOPT_NOBODY, 1L);
    for (const char *const *h = req->headers; h && *h; h++) {
        struct curl_slist *n = curl_slist_append(rq->headers, *h);
        if (!n) { bad = CURLE_OUT_OF_MEMORY; break; }
        rq->headers = n;
    }
    if (rq->headers) SET(CURLOPT_HTTPHEADER, rq->headers);
#undef SET
    if (bad != CURLE_OK) {
        acdm_log(ACDM_LOG_WARN, inst->name, "http_request %s: %s", req->url,
                 curl_easy_strerror(bad));
        outreq_free(rq);
        return ACDM_EINVAL;
    }
    if (curl_multi_add_handle(p->multi, e) != CURLM_OK) { outreq_free(rq); return ACDM_EIO; }
    DLIST_ADD(inst->reqs, rq);
    return 0;
}

int acdm_plugins_core_get(acdm_plugins *p, const char *url, long timeout_ms, size_t max_body,
                          acdm_core_http_done done, void *user)
{
    if (!p || !url || !done) return ACDM_EINVAL;
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) return ACDM_EINVAL;
    outreq *rq = calloc(1, sizeof *rq);
    if (!rq) return ACDM_ENOMEM;
    rq->core_done = done;
    rq->user = user;
    rq->max_body = max_body;
    if (!(rq->easy = curl_easy_init())) { free(rq); return ACDM_ENOMEM; }
    CURL *e = rq->easy;
    CURLcode bad = CURLE_OK;
#define SET(opt, val) do { CURLcode c_ = curl_easy_setopt(e, opt, val); if (c_ != CURLE_OK) bad = c_; } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PRIVATE, (void *)rq);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, rq->errbuf);
    SET(CURLOPT_WRITEFUNCTION, curl_write);
    SET(CURLOPT_WRITEDATA, (void *)rq);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 10000L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_USERAGENT, "acdm/" ACDM_VERSION);
#undef SET
    if (bad != CURLE_OK) {
        acdm_log(ACDM_LOG_WARN, "core", "GET %s: %s", url, curl_easy_strerror(bad));
        outreq_free(rq);
        return ACDM_EINVAL;
    }
    if (curl_multi_add_handle(p->multi, e) != CURLM_OK) { outreq_free(rq); return ACDM_EIO; }
    DLIST_ADD(p->core_reqs, rq);
    return 0;
}

/* ------------------------------------------------------------------ key/value */

static int host_kv_set(acdm_instance *inst, const char *key, const char *value, size_t len)
{
    if (!live(inst) || !key || !*key) return ACDM_EINVAL;
    acdm_plugins *p = inst->p;
    if (p->env.store) return acdm_store_kv_set(p->env.store, inst->name, key, value, len);
    kv_entry **pp = &p->kv;
    for (; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->ns, inst->name) && !strcmp((*pp)->key, key)) break;
    if (!value) {
        if (*pp) {
            kv_entry *e = *pp;
            *pp = e->next;
            free(e->ns); free(e->key); free(e->val); free(e);
        }
        return 0;
    }
    char *v = malloc(len + 1);
    if (!v) return ACDM_ENOMEM;
    memcpy(v, value, len);
    v[len] = 0;
    if (*pp) { free((*pp)->val); (*pp)->val = v; (*pp)->len = len; return 0; }
    kv_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->ns = strdup(inst->name)) || !(e->key = strdup(key))) {
        if (e) { free(e->ns); free(e); }
        free(v);
        return ACDM_ENOMEM;
    }
    e->val = v; e->len = len;
    e->next = p->kv;
    p->kv = e;
    return 0;
}

static int host_kv_get(acdm_instance *inst, const char *key, char **value, size_t *len)
{
    if (!live(inst) || !key || !value) return ACDM_EINVAL;
    acdm_plugins *p = inst->p;
    size_t dummy;
    if (!len) len = &dummy;
    if (p->env.store) return acdm_store_kv_get(p->env.store, inst->name, key, value, len);
    for (kv_entry *e = p->kv; e; e = e->next)
        if (!strcmp(e->ns, inst->name) && !strcmp(e->key, key)) {
            *value = malloc(e->len + 1);
            if (!*value) return ACDM_ENOMEM;
            memcpy(*value, e->val, e->len + 1);
            *len = e->len;
            return 0;
        }
    return ACDM_ENOENT;
}

static void host_free(void *ptr) { free(ptr); }

static const acdm_host host_table = {
    .struct_size = sizeof(acdm_host),
    .abi_major = ACDM_PLUGIN_ABI_MAJOR,
    .abi_minor = ACDM_PLUGIN_ABI_MINOR,
    .log = host_log,
    .instance_name = host_instance_name,
    .submit = host_submit,
    .end = host_end,
    .post = host_post,
    .timer_start = host_timer_start,
    .timer_stop = host_timer_stop,
    .watch_fd = host_watch_fd,
    .unwatch_fd = host_unwatch_fd,
    .http_route = host_http_route,
    .ws_route = host_ws_route,
    .ws_send = host_ws_send,
    .ws_close = host_ws_close,
    .ws_set_user = host_ws_set_user,
    .ws_user = host_ws_user,
    .http_request = host_http_request,
    .kv_set = host_kv_set,
    .kv_get = host_kv_get,
    .free = host_free,
    .delivery_report = host_delivery_report,
    .http_respond = host_http_respond,
    .typing = host_typing,
    .queue_position = host_queue_position,
    .attachment_put = host_attachment_put,
    .check_token = host_check_token,
    .end_ago = host_end_ago,
};

/* ------------------------------------------------------------------ instance lifecycle */

/* Everything the host holds for the instance is released; the plugin is not called. */
static void release_resources(acdm_instance *inst)
{
    acdm_plugins *p = inst->p;
    posts_close(inst);
    deferred_close_all(inst);
    while (inst->timers) timer_close(inst->timers);
    while (inst->watches) watch_close(inst->watches);
    while (inst->reqs) {                    /* cancelled: done is not called after stop */
        outreq *rq = inst->reqs;
        DLIST_DEL(inst->reqs, rq);
        curl_multi_remove_handle(p->multi, rq->easy);
        outreq_free(rq);
    }
    while (inst->routes) {
        hroute *rt = inst->routes;
        inst->routes = rt->next;
        acdm_http_unroute(p->env.http, rt->id);
        free(rt);
    }
    for (wsroute *wr = p->wsroutes; wr; wr = wr->next)
        if (wr->inst == inst && wr->id > 0) {
            acdm_http_unroute(p->env.http, wr->id);
            wr->id = 0;
            wr->inst = NULL;
        }
    while (inst->subs) {                    /* the engine still owes these: keep them orphaned */
        pending_submit *s = inst->subs;
        DLIST_DEL(inst->subs, s);
        s->inst = NULL;
        DLIST_ADD(p->orphans, s);
    }
}

/* Tells every open websocket of the instance goodbye; the plugin's close runs for each. */
static void close_conns(acdm_instance *inst)
{
    while (inst->conns) {
        acdm_wsconn *c = inst->conns;
        DLIST_DEL(inst->conns, c);
        wsroute *wr = c->route;
        c->route = NULL;                    /* orphaned: ws_closed frees it */
        if (wr && wr->cb.close) wr->cb.close(inst, inst->priv, c);
        acdm_ws_close(c->ws, 1001, "channel stopped");
    }
}

static void inst_stop(acdm_instance *inst, int final_state)
{
    plugin *pl = inst->pl;
    if (!pl) { inst->state = final_state; return; }
    inst->state = IS_STOPPING;
    close_conns(inst);
    if (pl->d->stop) pl->d->stop(inst, inst->priv);
    release_resources(inst);
    if (pl->d->destroy) pl->d->destroy(inst, inst->priv);
    free(inst->priv);
    inst->priv = NULL;
    inst->pl = NULL;
    pl->n_instances--;
    inst->state = final_state;
    acdm_log(ACDM_LOG_INFO, inst->name, "stopped (plugin %s)", pl->d->name);
}

static int inst_start(acdm_instance *inst)
{
    acdm_plugins *p = inst->p;
    plugin *pl = find_plugin(p, inst->plugin_name);
    if (!pl) {
        inst->state = IS_WAITING;
        acdm_log(ACDM_LOG_NOTICE, inst->name, "waiting for plugin \"%s\" to be loaded",
                 inst->plugin_name);
        return 0;
    }
    if (!pl->enabled) { inst->state = IS_DISABLED; return 0; }
    inst->priv = calloc(1, pl->d->instance_size ? pl->d->instance_size : 1);
    if (!inst->priv) { inst->state = IS_FAILED; return ACDM_ENOMEM; }
    inst->pl = pl;
    pl->n_instances++;
    inst->state = IS_STARTING;
    pthread_mutex_lock(&p->post_mu);
    inst->accept_posts = true;
    pthread_mutex_unlock(&p->post_mu);
    char err[512] = "";
    int rc = pl->d->init(inst, inst->priv, &host_table, inst->config_json, err, sizeof err);
    if (rc < 0) {
        acdm_log(ACDM_LOG_ERR, inst->name, "plugin %s: init failed: %s", pl->d->name,
                 err[0] ? err : acdm_strerror(rc));
        release_resources(inst);
        free(inst->priv);
        inst->priv = NULL;
        inst->pl = NULL;
        pl->n_instances--;
        inst->state = IS_FAILED;
        return rc;
    }
    if (pl->d->start && (rc = pl->d->start(inst, inst->priv)) < 0) {
        acdm_log(ACDM_LOG_ERR, inst->name, "plugin %s: start failed (%s)", pl->d->name,
                 acdm_strerror(rc));
        inst_stop(inst, IS_FAILED);
        return rc;
    }
    inst->state = IS_RUNNING;
    acdm_log(ACDM_LOG_INFO, inst->name, "running (plugin %s %s)", pl->d->name,
             pl->d->version ? pl->d->version : "");
    return 0;
}

static void inst_free(acdm_instance *inst)
{
    free(inst->name); free(inst->plugin_name); free(inst->queue);
    free(inst->config_json); free(inst->route_prefix);
    free(inst);
}

static void start_waiting(acdm_plugins *p, const char *plugin_name)
{
    for (acdm_instance *i = p->insts; i; i = i->next)
        if ((i->state == IS_WAITING || i->state == IS_DISABLED) &&
            !strcmp(i->plugin_name, plugin_name))
            inst_start(i);
}

static char *channel_config_json(const acdm_channel_def *ch)
{
    if (!ch->config) return strdup("{}");
    return json_dumps(ch->config, JSON_COMPACT | JSON_SORT_KEYS);
}

int acdm_plugins_check(acdm_plugins *p, const acdm_config *cfg, char *err, size_t errlen)
{
    int rc = 0;
    size_t used = 0;
    if (err && errlen) err[0] = 0;
    for (size_t k = 0; cfg && k < cfg->n_channels; k++) {
        const acdm_channel_def *ch = &cfg->channels[k];
        plugin *pl = ch->plugin ? find_plugin(p, ch->plugin) : NULL;
        if (!pl || !pl->d->check_config) continue;
        char *js = channel_config_json(ch);
        char msg[512] = "";
        int r = js ? pl->d->check_config(js, msg, sizeof msg) : ACDM_ENOMEM;
        free(js);
        if (r < 0) {
            rc = ACDM_EINVAL;
            if (err && used < errlen) {
                int w = snprintf(err + used, errlen - used, "%schannels[%zu] (%s): plugin %s: %s",
                                 used ? "\n" : "", k, ch->name, pl->d->name,
                                 msg[0] ? msg : "config refused");
                if (w > 0) used += (size_t)w;
            }
        }
    }
    return rc;
}

int acdm_plugins_configure(acdm_plugins *p, const acdm_config *cfg)
{
    int first_err = 0;
    for (acdm_instance *i = p->insts; i; i = i->next) i->seen = false;
    for (size_t k = 0; cfg && k < cfg->n_channels; k++) {
        const acdm_channel_def *ch = &cfg->channels[k];
        if (!ch->name || !ch->plugin) continue;
        char *js = channel_config_json(ch);
        if (!js) return ACDM_ENOMEM;
        acdm_instance *inst = acdm_plugins_instance(p, ch->name);
        if (!inst) {
            inst = calloc(1, sizeof *inst);
            size_t n = strlen("/channels/") + strlen(ch->name) + 1;
            if (!inst || !(inst->name = strdup(ch->name)) || !(inst->plugin_name = strdup(ch->plugin))
                || !(inst->route_prefix = malloc(n))) {
                if (inst) inst_free(inst);
                free(js);
                return ACDM_ENOMEM;
            }
            snprintf(inst->route_prefix, n, "/channels/%s", ch->name);
            inst->p = p;
            inst->queue = xstrdup(ch->queue);
            inst->config_json = js;
            inst->seen = true;
            inst->next = p->insts;
            p->insts = inst;
            int rc = inst_start(inst);
            if (rc < 0 && !first_err) first_err = rc;
            continue;
        }
        inst->seen = true;
        if (!streq(inst->queue, ch->queue)) {
            free(inst->queue);
            inst->queue = xstrdup(ch->queue);
        }
        bool same_plugin = !strcmp(inst->plugin_name, ch->plugin);
        if (same_plugin && !strcmp(inst->config_json, js)) { free(js); continue; }
        if (!same_plugin) {
            inst_stop(inst, IS_WAITING);
            free(inst->plugin_name);
            inst->plugin_name = strdup(ch->plugin);
            free(inst->config_json);
            inst->config_json = js;
            int rc = inst->plugin_name ? inst_start(inst) : ACDM_ENOMEM;
            if (rc < 0 && !first_err) first_err = rc;
            continue;
        }
        if (inst->state == IS_RUNNING && inst->pl->d->reload) {
            char err[512] = "";
            int rc = inst->pl->d->reload(inst, inst->priv, js, err, sizeof err);
            if (rc < 0) {
                acdm_log(ACDM_LOG_ERR, inst->name, "reload refused, old config kept: %s",
                         err[0] ? err : acdm_strerror(rc));
                free(js);
                if (!first_err) first_err = rc;
                continue;
            }
            free(inst->config_json);
            inst->config_json = js;
            acdm_log(ACDM_LOG_INFO, inst->name, "config reloaded");
            continue;
        }
        /* no reload callback, or not running: restart with the new config */
        inst_stop(inst, IS_WAITING);
        free(inst->config_json);
        inst->config_json = js;
        int rc = inst_start(inst);
        if (rc < 0 && !first_err) first_err = rc;
    }
    for (acdm_instance **ip = &p->insts; *ip;) {
        acdm_instance *inst = *ip;
        if (inst->seen) { ip = &inst->next; continue; }
        inst_stop(inst, IS_WAITING);
        *ip = inst->next;
        acdm_log(ACDM_LOG_INFO, inst->name, "removed");
        inst_free(inst);
    }
    return first_err;
}

int acdm_plugins_deliver(acdm_plugins *p, const char *instance, const acdm_reply *r)
{
    acdm_instance *inst = acdm_plugins_instance(p, instance);
    if (!inst || inst->state != IS_RUNNING) return ACDM_ENOENT;
    if (!r) return ACDM_EINVAL;
    return inst->pl->d->deliver(inst, inst->priv, r);
}

void acdm_plugins_event(acdm_plugins *p, const char *instance, const acdm_event_info *ev)
{
    acdm_instance *inst = acdm_plugins_instance(p, instance);
    if (inst && ev && inst->state == IS_RUNNING && inst->pl->d->on_event)
        inst->pl->d->on_event(inst, inst->priv, ev);
}

void acdm_plugins_agent_typing(acdm_plugins *p, const char *instance, const char *bericht_id)
{
    acdm_instance *inst = acdm_plugins_instance(p, instance);
    if (inst && bericht_id && inst->state == IS_RUNNING &&
        ACDM_PLUGIN_HAS(inst->pl->d, on_agent_typing) && inst->pl->d->on_agent_typing)
        inst->pl->d->on_agent_typing(inst, inst->priv, bericht_id);
}

/* ------------------------------------------------------------------ loader */

static void set_refusal(acdm_plugins *p, const char *file, const char *reason)
{
    refusal **rp = &p->refused;
    for (; *rp; rp = &(*rp)->next)
        if (!strcmp((*rp)->file, file)) break;
    if (!reason) {
        if (*rp) { refusal *r = *rp; *rp = r->next; free(r->file); free(r->reason); free(r); }
        return;
    }
    if (*rp) { free((*rp)->reason); (*rp)->reason = strdup(reason); return; }
    refusal *r = calloc(1, sizeof *r);
    if (!r) return;
    r->file = strdup(file);
    r->reason = strdup(reason);
    r->next = p->refused;
    p->refused = r;
}

/* 1: the ELF file is whole (every segment and the section table are inside the file);
 * 0: it is not (yet); -1: not an ELF file at all. Guards dlopen against a half-copied file,
 * whose pages would raise SIGBUS when touched. */
static int elf_complete(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat st;
    Elf64_Ehdr eh;
    int ok = 0;
    if (fstat(fd, &st) < 0 || pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh) goto out;
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG)) { ok = -1; goto out; }
    if (eh.e_ident[EI_CLASS] != ELFCLASS64) { ok = 1; goto out; } /* let dlopen judge */
    uint64_t size = (uint64_t)st.st_size;
    if (eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize > size) goto out;
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 4096) goto out;
    for (int k = 0; k < eh.e_phnum; k++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)k * sizeof ph)) != (ssize_t)sizeof ph)
            goto out;
        if (ph.p_type == PT_LOAD && ph.p_offset + ph.p_filesz > size) goto out;
    }
    ok = 1;
out:
    close(fd);
    return ok;
}

static bool kinds_valid(const char *kinds, char *bad, size_t badlen)
{
    if (!kinds || !*kinds) { snprintf(bad, badlen, "(none)"); return false; }
    const char *s = kinds;
    while (*s) {
        size_t n = strcspn(s, ",");
        char k[32];
        size_t b = 0, e = n;
        while (b < e && s[b] == ' ') b++;
        while (e > b && s[e - 1] == ' ') e--;
        if (e - b >= sizeof k) { snprintf(bad, badlen, "%.*s", (int)n, s); return false; }
        memcpy(k, s + b, e - b);
        k[e - b] = 0;
        if (acdm_kind_parse(k) < 0) { snprintf(bad, badlen, "%s", k); return false; }
        s += n;
        if (*s == ',') s++;
    }
    return true;
}

/* Checks a descriptor; returns NULL or the reason (in buf). */
static const char *check_descriptor(acdm_plugins *p, const acdm_plugin *d, char *buf, size_t len)
{
    if (!d) return "acdm_plugin_entry() returned NULL";
    if (d->struct_size < offsetof(acdm_plugin, abi_minor) + sizeof d->abi_minor) {
        snprintf(buf, len, "descriptor struct_size %zu is too small to hold an ABI version",
                 d->struct_size);
        return buf;
    }
    if (d->abi_major != ACDM_PLUGIN_ABI_MAJOR) {
        snprintf(buf, len, "built for plugin ABI %u.%u, this core speaks %d.%d: rebuild the "
                 "plugin against this acdm's <acdm/plugin.h>", d->abi_major, d->abi_minor,
                 ACDM_PLUGIN_ABI_MAJOR, ACDM_PLUGIN_ABI_MINOR);
        return buf;
    }
    if (d->abi_minor > ACDM_PLUGIN_ABI_MINOR) {
        snprintf(buf, len, "built for plugin ABI %u.%u, newer than this core's %d.%d: upgrade "
                 "acdm or rebuild the plugin", d->abi_major, d->abi_minor,
                 ACDM_PLUGIN_ABI_MAJOR, ACDM_PLUGIN_ABI_MINOR);
        return buf;
    }
    if (d->struct_size < DESC_NEEDS) {
        snprintf(buf, len, "descriptor struct_size %zu < %zu that ABI %d.%d reads: not binary "
                 "compatible, rebuild the plugin", d->struct_size, (size_t)DESC_NEEDS,
                 ACDM_PLUGIN_ABI_MAJOR, ACDM_PLUGIN_ABI_MINOR);
        return buf;
    }
    if (!d->name || !*d->name) return "the plugin has no name";
    if (strlen(d->name) > ACDM_NAME_MAX) return "the plugin name is longer than 63 characters";
    if (!d->init) return "mandatory callback init is missing";
    if (!d->deliver) return "mandatory callback deliver is missing";
    char bad[64];
    if (!kinds_valid(d->kinds, bad, sizeof bad)) {
        snprintf(buf, len, "unknown kind \"%s\" in kinds \"%s\"", bad, d->kinds ? d->kinds : "");
        return buf;
    }
    if (d->instance_size > MAX_INSTANCE_SIZE) {
        snprintf(buf, len, "instance_size %zu is larger than %u bytes", d->instance_size,
                 MAX_INSTANCE_SIZE);
        return buf;
    }
    plugin *other = find_plugin(p, d->name);
    if (other) {
        snprintf(buf, len, "plugin name \"%s\" is already taken by %s", d->name, other->file);
        return buf;
    }
    return NULL;
}

static int refuse(acdm_plugins *p, const char *path, void *dl, const char *reason, char *err,
                  size_t errlen)
{
    acdm_log(ACDM_LOG_ERR, WHO, "refused %s: %s", path, reason);
    set_refusal(p, path, reason);
    if (err && errlen) snprintf(err, errlen, "%s", reason);
    if (dl) dlclose(dl);
    return ACDM_EABI;
}

int acdm_plugins_load_file(acdm_plugins *p, const char *path, char *err, size_t errlen)
{
    char buf[512];
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(buf, sizeof buf, "cannot stat: %s", strerror(errno));
        refuse(p, path, NULL, buf, err, errlen);
        return ACDM_ENOENT;
    }
    int elf = elf_complete(path);
    if (elf < 0) return refuse(p, path, NULL, "not an ELF shared object", err, errlen);
    if (elf == 0)
        return refuse(p, path, NULL, "incomplete ELF file (still being copied?)", err, errlen);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        snprintf(buf, sizeof buf, "dlopen failed: %s", e ? e : "unknown error");
        return refuse(p, path, NULL, buf, err, errlen);
    }
    dlerror();
    void *sym = dlsym(dl, ACDM_PLUGIN_ENTRY_SYMBOL);
    if (!sym)
        return refuse(p, path, dl, "no exported symbol acdm_plugin_entry (not an acdm plugin, "
                      "or built without ACDM_PLUGIN_EXPORT)", err, errlen);
    acdm_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);   /* object pointer to function pointer, POSIX-style */
    const acdm_plugin *d = entry();
    const char *why = check_descriptor(p, d, buf, sizeof buf);
    if (why) return refuse(p, path, dl, why, err, errlen);
    plugin *pl = calloc(1, sizeof *pl);
    if (!pl || !(pl->file = strdup(path))) {
        free(pl);
        return refuse(p, path, dl, "out of memory", err, errlen);
    }
    pl->dl = dl; pl->d = d; pl->enabled = true;
    pl->dev = st.st_dev; pl->ino = st.st_ino; pl->mtime = st.st_mtim;
    pl->next = p->plugins;
    p->plugins = pl;
    set_refusal(p, path, NULL);
    acdm_log(ACDM_LOG_NOTICE, WHO, "loaded plugin %s %s (ABI %u.%u, kinds %s) from %s", d->name,
             d->version ? d->version : "", d->abi_major, d->abi_minor, d->kinds, path);
    start_waiting(p, d->name);
    return 0;
}

static bool is_so_name(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' && l > 3 && !strcmp(n + l - 3, ".so");
}

static int so_filter(const struct dirent *e) { return is_so_name(e->d_name); }

static char *dir_path(const acdm_plugins *p, const char *name)
{
    size_t n = strlen(p->dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", p->dir, name);
    return s;
}

/* true when the file at path is the one already loaded from it */
static bool same_file_loaded(acdm_plugins *p, const char *path, const struct stat *st)
{
    plugin *pl = find_plugin_file(p, path);
    return pl && pl->dev == st->st_dev && pl->ino == st->st_ino &&
           pl->mtime.tv_sec == st->st_mtim.tv_sec && pl->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Loads path unless that very file is loaded; a changed file replaces its plugin when none of
 * the plugin's instances is running. */
static int load_or_replace(acdm_plugins *p, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) return ACDM_ENOENT;
    if (same_file_loaded(p, path, &st)) return 1;
    plugin *old = find_plugin_file(p, path);
    if (old) {
        if (old->n_instances > 0) {
            acdm_log(ACDM_LOG_WARN, WHO, "%s changed, but plugin %s still runs %d instance(s): "
                     "not replaced (disable the plugin or restart acdmd)", path, old->d->name,
                     old->n_instances);
            return ACDM_ESTATE;
        }
        acdm_plugins_unload(p, old->d->name);
    }
    return acdm_plugins_load_file(p, path, NULL, 0);
}

int acdm_plugins_load_all(acdm_plugins *p)
{
    struct dirent **list = NULL;
    int n = scandir(p->dir, &list, so_filter, alphasort);
    if (n < 0) {
        acdm_log(ACDM_LOG_WARN, WHO, "cannot read plugin folder %s: %s", p->dir, strerror(errno));
        return 0;
    }
    int loaded = 0;
    for (int k = 0; k < n; k++) {
        char *path = dir_path(p, list[k]->d_name);
        if (path && load_or_replace(p, path) == 0) loaded++;
        free(path);
        free(list[k]);
    }
    free(list);
    return loaded;
}

int acdm_plugins_unload(acdm_plugins *p, const char *plugin_name)
{
    for (plugin **pp = &p->plugins; *pp; pp = &(*pp)->next) {
        plugin *pl = *pp;
        if (strcmp(pl->d->name, plugin_name)) continue;
        if (pl->n_instances > 0) return ACDM_ESTATE;
        for (acdm_instance *i = p->insts; i; i = i->next)
            if (!strcmp(i->plugin_name, plugin_name) && i->state == IS_DISABLED)
                i->state = IS_WAITING;
        *pp = pl->next;
        acdm_log(ACDM_LOG_NOTICE, WHO, "unloaded plugin %s (%s)", pl->d->name, pl->file);
        dlclose(pl->dl);
        free(pl->file);
        free(pl);
        return 0;
    }
    return ACDM_ENOENT;
}

int acdm_plugins_enable(acdm_plugins *p, const char *plugin_name, bool enabled)
{
    plugin *pl = plugin_name ? find_plugin(p, plugin_name) : NULL;
    if (!pl) return ACDM_ENOENT;
    if (pl->enabled == enabled) return 0;
    pl->enabled = enabled;
    acdm_log(ACDM_LOG_NOTICE, WHO, "plugin %s %s", plugin_name, enabled ? "enabled" : "disabled");
    if (enabled) { start_waiting(p, plugin_name); return 0; }
    for (acdm_instance *i = p->insts; i; i = i->next)
        if (!strcmp(i->plugin_name, plugin_name)) {
            if (i->pl) inst_stop(i, IS_DISABLED);
            else i->state = IS_DISABLED;
        }
    return 0;
}

/* ------------------------------------------------------------------ hot drop */

static void pending_add(acdm_plugins *p, const char *name)
{
    for (pending_file *f = p->pending; f; f = f->next)
        if (!strcmp(f->name, name)) { f->tries = 0; return; }
    pending_file *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(name))) { free(f); return; }
    f->size = -1;
    f->next = p->pending;
    p->pending = f;
}

static void debounce_fire(uv_timer_t *t)
{
    acdm_plugins *p = t->data;
    bool again = false;
    for (pending_file **fp = &p->pending; *fp;) {
        pending_file *f = *fp;
        char *path = dir_path(p, f->name);
        struct stat st;
        bool done = true;
        if (path && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            bool changed = st.st_size != f->size || st.st_mtim.tv_sec != f->mtime.tv_sec ||
                           st.st_mtim.tv_nsec != f->mtime.tv_nsec;
            f->size = st.st_size;
            f->mtime = st.st_mtim;
            if (same_file_loaded(p, path, &st)) done = true;
            else if ((changed || elf_complete(path) == 0) && ++f->tries < DEBOUNCE_TRIES)
                done = false;   /* still being written: look again after the next quiet spell */
            else
                load_or_replace(p, path);
        }
        free(path);
        if (done) { *fp = f->next; free(f->name); free(f); }
        else { again = true; fp = &f->next; }
    }
    if (again) uv_timer_start(p->debounce, debounce_fire, DEBOUNCE_MS, 0);
}

static void fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)events;
    acdm_plugins *p = h->data;
    if (status < 0) {
        acdm_log(ACDM_LOG_WARN, WHO, "watching %s: %s", p->dir, uv_strerror(status));
        return;
    }
    if (filename) {
        if (!is_so_name(filename)) return;
        pending_add(p, filename);
    } else {                                /* no name given: look at every .so */
        struct dirent **list = NULL;
        int n = scandir(p->dir, &list, so_filter, alphasort);
        for (int k = 0; k < n; k++) { pending_add(p, list[k]->d_name); free(list[k]); }
        free(list);
    }
    /* every event restarts the quiet period */
    uv_timer_start(p->debounce, debounce_fire, DEBOUNCE_MS, 0);
}

int acdm_plugins_watch(acdm_plugins *p)
{
    if (p->fsev) return 0;
    p->fsev = calloc(1, sizeof *p->fsev);
    p->debounce = calloc(1, sizeof *p->debounce);
    if (!p->fsev || !p->debounce) {
        free(p->fsev); free(p->debounce);
        p->fsev = NULL; p->debounce = NULL;
        return ACDM_ENOMEM;
    }
    uv_fs_event_init(p->env.loop, p->fsev);
    uv_timer_init(p->env.loop, p->debounce);
    p->fsev->data = p;
    p->debounce->data = p;
    p->open_handles += 2;
    int rc = uv_fs_event_start(p->fsev, fs_event, p->dir, 0);
    if (rc < 0) {
        acdm_log(ACDM_LOG_ERR, WHO, "cannot watch plugin folder %s: %s", p->dir, uv_strerror(rc));
        close_owned(p, (uv_handle_t *)p->fsev);
        close_owned(p, (uv_handle_t *)p->debounce);
        p->fsev = NULL; p->debounce = NULL;
        return ACDM_EIO;
    }
    acdm_log(ACDM_LOG_INFO, WHO, "watching %s for new plugins", p->dir);
    return 0;
}

/* ------------------------------------------------------------------ create, list, destroy */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_global(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int acdm_plugins_create(const acdm_plugin_env *env, const char *plugin_dir, acdm_plugins **out)
{
    if (!env || !env->loop || !plugin_dir || !out) return ACDM_EINVAL;
    pthread_once(&curl_once, curl_global);
    acdm_plugins *p = calloc(1, sizeof *p);
    if (!p) return ACDM_ENOMEM;
    p->env = *env;
    p->dir = strdup(plugin_dir);
    p->async = calloc(1, sizeof *p->async);
    p->curl_timer = calloc(1, sizeof *p->curl_timer);
    p->multi = curl_multi_init();
    if (!p->dir || !p->async || !p->curl_timer || !p->multi) {
        if (p->multi) curl_multi_cleanup(p->multi);
        free(p->dir); free(p->async); free(p->curl_timer); free(p);
        return ACDM_ENOMEM;
    }
    size_t l = strlen(p->dir);
    while (l > 1 && p->dir[l - 1] == '/') p->dir[--l] = 0;
    pthread_mutex_init(&p->post_mu, NULL);
    uv_async_init(env->loop, p->async, post_drain);
    p->async->data = p;
    uv_timer_init(env->loop, p->curl_timer);
    p->curl_timer->data = p;
    p->open_handles = 2;
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
    *out = p;
    return 0;
}

json_t *acdm_plugins_json(acdm_plugins *p)
{
    json_t *arr = json_array();
    for (plugin *pl = p->plugins; pl; pl = pl->next) {
        json_t *insts = json_array();
        for (acdm_instance *i = p->insts; i; i = i->next)
            if (!strcmp(i->plugin_name, pl->d->name))
                json_array_append_new(insts, json_pack("{s:s, s:s, s:s?}", "name", i->name,
                                                       "state", state_names[i->state],
                                                       "queue", i->queue));
        char abi[32];
        snprintf(abi, sizeof abi, "%u.%u", pl->d->abi_major, pl->d->abi_minor);
        json_array_append_new(arr, json_pack("{s:s, s:s?, s:s?, s:s, s:s, s:s, s:b, s:o}",
            "name", pl->d->name, "version", pl->d->version, "description", pl->d->description,
            "file", pl->file, "abi", abi, "kinds", pl->d->kinds, "enabled", pl->enabled,
            "instances", insts));
    }
    /* instances whose plugin is not loaded, grouped by the plugin name they wait for */
    for (acdm_instance *i = p->insts; i; i = i->next) {
        if (find_plugin(p, i->plugin_name)) continue;
        json_t *entry = NULL;
        for (size_t k = 0; k < json_array_size(arr); k++) {
            json_t *v = json_array_get(arr, k);
            if (json_is_null(json_object_get(v, "file")) &&
                !strcmp(json_string_value(json_object_get(v, "name")), i->plugin_name))
                entry = v;
        }
        if (!entry) {
            entry = json_pack("{s:s, s:n, s:b, s:[]}", "name", i->plugin_name, "file",
                              "enabled", 0, "instances");
            json_array_append_new(arr, entry);
        }
        json_array_append_new(json_object_get(entry, "instances"),
                              json_pack("{s:s, s:s, s:s?}", "name", i->name, "state",
                                        state_names[i->state], "queue", i->queue));
    }
    return arr;
}

json_t *acdm_plugins_refused_json(acdm_plugins *p)
{
    json_t *arr = json_array();
    for (refusal *r = p->refused; r; r = r->next)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "file", r->file, "reason", r->reason));
    return arr;
}

void acdm_plugins_destroy(acdm_plugins *p)
{
    if (!p) return;
    while (p->insts) {
        acdm_instance *inst = p->insts;
        p->insts = inst->next;
        inst_stop(inst, IS_WAITING);
        inst_free(inst);
    }
    while (p->plugins) acdm_plugins_unload(p, p->plugins->d->name);
    while (p->orphans) {
        pending_submit *s = p->orphans;
        DLIST_DEL(p->orphans, s);
        free(s);
    }
    while (p->wsroutes) { wsroute *w = p->wsroutes; p->wsroutes = w->next; free(w); }
    while (p->kv) {
        kv_entry *e = p->kv;
        p->kv = e->next;
        free(e->ns); free(e->key); free(e->val); free(e);
    }
    while (p->refused) set_refusal(p, p->refused->file, NULL);
    while (p->pending) {
        pending_file *f = p->pending;
        p->pending = f->next;
        free(f->name); free(f);
    }
    while (p->core_reqs) {                  /* the core hears "cancelled" and frees its context */
        outreq *rq = p->core_reqs;
        DLIST_DEL(p->core_reqs, rq);
        curl_multi_remove_handle(p->multi, rq->easy);
        rq->core_done(rq->user, -1, "", 0, "cancelled");
        outreq_free(rq);
    }
    curl_multi_cleanup(p->multi);
    while (p->socks) curl_sock_close(p, p->socks);
    close_owned(p, (uv_handle_t *)p->async);
    close_owned(p, (uv_handle_t *)p->curl_timer);
    if (p->fsev) {
        uv_fs_event_stop(p->fsev);
        close_owned(p, (uv_handle_t *)p->fsev);
        close_owned(p, (uv_handle_t *)p->debounce);
    }
    /* let the close callbacks of our handles run; they touch p */
    while (p->open_handles > 0) uv_run(p->env.loop, UV_RUN_NOWAIT);
    pthread_mutex_destroy(&p->post_mu);
    free(p->dir);
    free(p);
}
