/* mock_host.c -- the mock acdm host for plugins' unit tests (see mock_host.h). Plain C11 and
 * POSIX (pthread for host->post, dlopen for mock_plugin_open, poll for mock_poll); nothing of
 * acdmd. It keeps the host's contract as plugin.h states it and as the core keeps it: host calls
 * only between init and the end of stop, one-shot timers freed after they fire, a deferred
 * response answered 503 at stop, submits' callbacks only after the commit and never after stop,
 * outbound requests cancelled at stop (done never called). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mock_host.h"

#include <ctype.h>
#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define RESP_MAGIC 0x6d6f636bu

/* ------------------------------------------------------------------ types */

struct acdm_timer {
    struct acdm_timer *next;          /* h->timers: every timer ever made (freed at the end) */
    acdm_instance *inst;
    uint64_t due, repeat;
    void (*cb)(acdm_instance *, void *, void *);
    void *user;
    bool armed, firing;
};

struct acdm_watch {
    struct acdm_watch *next;          /* h->watches, every one ever made */
    acdm_instance *inst;
    int fd, events;
    void (*cb)(acdm_instance *, void *, void *, int);
    void *user;
    bool active;
};

typedef struct route {
    struct route *next;
    char *method, *path;              /* method NULL: any; path "/x" or "/x/ *" */
    acdm_http_handler handler;
} route;

typedef struct wsroute {
    struct wsroute *next;
    char *path;
    acdm_ws_callbacks cb;
} wsroute;

struct acdm_wsconn {
    struct acdm_wsconn *next;         /* h->conns, every one ever made */
    acdm_instance *inst;
    wsroute *r;
    void *user;
    char **msgs;
    int n, cap;
    int closed_code;
    bool open, close_pending;
};

struct mock_resp {
    struct mock_resp *next;
    unsigned magic;
    acdm_instance *inst;
    bool deferred, done, gone;
    int status;
    char ctype[128];
    char *body;
};

typedef struct kv {
    struct kv *next;
    char *key, *val;
    uint64_t expires;                 /* 0: never */
} kv;

typedef struct named {
    struct named *next;
    char *key;
    int rc;
    uint32_t a, b;
} named;

typedef struct msub {
    mock_submit pub;
    acdm_instance *inst;
    acdm_submit_cb cb;
    void *user;
} msub;

typedef struct mout {
    mock_out pub;
    acdm_instance *inst;
    acdm_http_done done;
    void *user;
} mout;

typedef struct post_item {
    struct post_item *next;
    acdm_instance *inst;
    void (*fn)(acdm_instance *, void *, void *);
    void *arg;
} post_item;

struct acdm_instance {
    struct acdm_instance *next;
    mock_host *h;
    const acdm_plugin *d;
    char *name, *queue;
    void *priv;
    bool live;                        /* host calls allowed: from init until stop returned */
    bool accept_posts;                /* guarded by h->mu */
    route *routes;
    wsroute *wsroutes;
    kv *kv;
    int n_timers_made;
};

struct mock_host {
    struct mock_host *next_host;      /* every host alive (http_respond finds its token's) */
    uint64_t now;
    acdm_host table;
    int verbose;
    acdm_instance *insts;
    acdm_instance *dead;              /* stopped instances (their names stay readable) */
    acdm_timer *timers;
    acdm_watch *watches;
    acdm_wsconn *conns;
    mock_resp *resps;
    msub *subs; int nsubs, capsubs;
    int refuse_rc; char *refuse_reason;
    mock_call *calls; int ncalls, capcalls;
    mout *outs; int nouts, capouts;
    named *tokens, *positions;
    named *rated;                     /* berichten feedback was given for */
    char *queue_info;                 /* what queue_info answers (JSON), or NULL */
    pthread_mutex_t mu;
    post_item *ph, *pt;
    void *dls[16]; int ndl;
    char peer[64];
    int att_seq;
    char *problems; size_t plen, pcap; int nproblems;
    char **logs; int nlogs, caplogs;
};

/* ------------------------------------------------------------------ small helpers */

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

static void *grow(void *arr, int *cap, int need, size_t elem)
{
    if (need <= *cap) return arr;
    int nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *n = realloc(arr, (size_t)nc * elem);
    if (!n) { fprintf(stderr, "mock_host: out of memory\n"); abort(); }
    memset((char *)n + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *cap = nc;
    return n;
}

static void problem(mock_host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(mock_host *h, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t l = strlen(line);
    if (h->plen + l + 2 > h->pcap) {
        size_t nc = h->pcap ? h->pcap * 2 : 1024;
        while (nc < h->plen + l + 2) nc *= 2;
        char *n = realloc(h->problems, nc);
        if (!n) abort();
        h->problems = n;
        h->pcap = nc;
    }
    memcpy(h->problems + h->plen, line, l);
    h->plen += l;
    h->problems[h->plen++] = '\n';
    h->problems[h->plen] = '\0';
    h->nproblems++;
    if (h->verbose) fprintf(stderr, "mock_host: PROBLEM: %s\n", line);
}

static void record(mock_host *h, const char *name, const char *a, const char *b, const char *c,
                   long long n)
{
    h->calls = grow(h->calls, &h->capcalls, h->ncalls + 1, sizeof *h->calls);
    mock_call *k = &h->calls[h->ncalls++];
    k->name = name;   /* a string literal */
    k->a = dupstr(a); k->b = dupstr(b); k->c = dupstr(c);
    k->n = n;
}

/* A host call is allowed: the instance is between init and the end of its stop. */
static bool live(acdm_instance *in, const char *fn)
{
    if (!in) return false;
    if (!in->live) {
        problem(in->h, "%s: host->%s called after the instance's stop returned (or before init)",
                in->name, fn);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ host functions */

static void h_log(acdm_instance *in, int level, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!in) return;
    mock_host *h = in->h;
    h->logs = grow(h->logs, &h->caplogs, h->nlogs + 1, sizeof *h->logs);
    h->logs[h->nlogs++] = strdup(buf);
    record(h, "log", buf, NULL, NULL, level);
    if (h->verbose) fprintf(stderr, "[%s] %d %s\n", in->name, level, buf);
}

static const char *h_instance_name(acdm_instance *in) { return in ? in->name : NULL; }

static bool kind_ok(const char *k)
{
    static const char *const kinds[] = {"voice", "chat", "email", "sms", "whatsapp", "callback"};
    for (size_t i = 0; k && i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(k, kinds[i])) return true;
    return false;
}

static int h_submit_err(acdm_instance *in, const acdm_inbound *x, acdm_submit_cb cb, void *user,
                        char *err, size_t errlen)
{
    const char *why = NULL;
    if (!live(in, "submit")) return ACDM_P_EINVAL;
    mock_host *h = in->h;
    if (!x) why = "in: NULL";
    else if (x->struct_size < offsetof(acdm_inbound, payload_json) + sizeof(const char *))
        why = "struct_size: smaller than acdm_inbound of ABI 1.0";
    else if (!kind_ok(x->kind)) why = "kind: unknown";
    else if (!x->from || !*x->from) why = "from: required";
    else if (x->priority < 0 || x->priority > 9) why = "priority: not in 0..9";
    if (why) {
        if (err && errlen) snprintf(err, errlen, "%s", why);
        record(h, "submit_refused", why, NULL, NULL, ACDM_P_EINVAL);
        return ACDM_P_EINVAL;
    }
    if (h->refuse_rc) {
        int rc = h->refuse_rc;
        if (err && errlen) snprintf(err, errlen, "%s", h->refuse_reason ? h->refuse_reason : "refused");
        record(h, "submit_refused", h->refuse_reason, NULL, NULL, rc);
        h->refuse_rc = 0;
        free(h->refuse_reason);
        h->refuse_reason = NULL;
        return rc;
    }
    h->subs = grow(h->subs, &h->capsubs, h->nsubs + 1, sizeof *h->subs);
    msub *s = &h->subs[h->nsubs++];
    s->pub.kind = dupstr(x->kind); s->pub.queue = dupstr(x->queue); s->pub.from = dupstr(x->from);
    s->pub.customer_id = dupstr(x->customer_id); s->pub.conversation = dupstr(x->conversation);
    s->pub.idempotency_key = dupstr(x->idempotency_key); s->pub.skills_json = dupstr(x->skills_json);
    s->pub.subject = dupstr(x->subject); s->pub.text = dupstr(x->text);
    s->pub.payload_json = dupstr(x->payload_json); s->pub.priority = x->priority;
    s->pub.pending = 1;
    s->inst = in; s->cb = cb; s->user = user;
    return 0;
}

static int h_submit(acdm_instance *in, const acdm_inbound *x, acdm_submit_cb cb, void *user)
{
    return h_submit_err(in, x, cb, user, NULL, 0);
}

static int h_end(acdm_instance *in, const char *id, const char *reason)
{
    if (!live(in, "end") || !id || !*id) return ACDM_P_EINVAL;
    record(in->h, "end", id, reason, NULL, 0);
    return 0;
}

static int h_end_ago(acdm_instance *in, const char *id, const char *reason, uint32_t ago)
{
    if (!live(in, "end_ago") || !id || !*id) return ACDM_P_EINVAL;
    record(in->h, "end_ago", id, reason, NULL, ago);
    return 0;
}

static int h_post(acdm_instance *in, void (*fn)(acdm_instance *, void *, void *), void *arg)
{
    if (!in || !fn) return ACDM_P_EINVAL;
    mock_host *h = in->h;
    post_item *it = malloc(sizeof *it);
    if (!it) return ACDM_P_ENOMEM;
    it->next = NULL; it->inst = in; it->fn = fn; it->arg = arg;
    pthread_mutex_lock(&h->mu);
    if (!in->accept_posts) {
        pthread_mutex_unlock(&h->mu);
        free(it);
        return ACDM_P_ESTATE;
    }
    if (h->pt) h->pt->next = it; else h->ph = it;
    h->pt = it;
    pthread_mutex_unlock(&h->mu);
    return 0;
}

static acdm_timer *h_timer_start(acdm_instance *in, uint64_t after, uint64_t repeat,
                                 void (*cb)(acdm_instance *, void *, void *), void *user)
{
    if (!live(in, "timer_start") || !cb) return NULL;
    acdm_timer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->inst = in; t->cb = cb; t->user = user; t->repeat = repeat; t->armed = true;
    t->due = in->h->now + after;
    t->next = in->h->timers;
    in->h->timers = t;
    in->n_timers_made++;
    record(in->h, "timer_start", NULL, NULL, NULL, (long long)after);
    return t;
}

static void h_timer_stop(acdm_timer *t)
{
    if (!t) return;
    if (!t->armed) {
        if (t->firing) return;           /* a one-shot timer stopping itself in its callback */
        problem(t->inst->h, "%s: timer_stop on a timer that already fired (one-shot) or was "
                "stopped, or after stop: the core has freed it (a use after free in acdmd)",
                t->inst->name);
        return;
    }
    t->armed = false;
}

static acdm_watch *h_watch_fd(acdm_instance *in, int fd, int events,
                              void (*cb)(acdm_instance *, void *, void *, int), void *user)
{
    if (!live(in, "watch_fd") || !cb || fd < 0 || !(events & (ACDM_WATCH_READ | ACDM_WATCH_WRITE)))
        return NULL;
    acdm_watch *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->inst = in; w->fd = fd; w->events = events; w->cb = cb; w->user = user; w->active = true;
    w->next = in->h->watches;
    in->h->watches = w;
    return w;
}

static void h_unwatch_fd(acdm_watch *w)
{
    if (!w) return;
    if (!w->active) {
        problem(w->inst->h, "%s: unwatch_fd on a watch already removed (a use after free in acdmd)",
                w->inst->name);
        return;
    }
    w->active = false;
}

static int h_http_route(acdm_instance *in, const char *method, const char *path, acdm_http_handler fn)
{
    if (!live(in, "http_route") || !path || path[0] != '/' || !fn) return ACDM_P_EINVAL;
    for (route *r = in->routes; r; r = r->next)
        if (!strcmp(r->path, path) && ((!r->method && !method) || (r->method && method && !strcmp(r->method, method))))
            return ACDM_P_EEXIST;
    route *r = calloc(1, sizeof *r);
    if (!r) return ACDM_P_ENOMEM;
    r->method = dupstr(method); r->path = strdup(path); r->handler = fn;
    r->next = in->routes;
    in->routes = r;
    record(in->h, "http_route", method, path, NULL, 0);
    return 0;
}

static int h_ws_route(acdm_instance *in, const char *path, const acdm_ws_callbacks *cb)
{
    if (!live(in, "ws_route") || !path || path[0] != '/' || !cb) return ACDM_P_EINVAL;
    wsroute *r = calloc(1, sizeof *r);
    if (!r) return ACDM_P_ENOMEM;
    r->path = strdup(path); r->cb = *cb;
    r->next = in->wsroutes;
    in->wsroutes = r;
    record(in->h, "ws_route", path, NULL, NULL, 0);
    return 0;
}

static int h_ws_send(acdm_wsconn *c, const char *data, size_t len)
{
    if (!c || !data) return ACDM_P_EINVAL;
    if (!c->open) return ACDM_P_ESTATE;
    if (!live(c->inst, "ws_send")) return ACDM_P_ESTATE;
    if (c->n + 1 > c->cap) {
        int nc = c->cap ? c->cap * 2 : 16;
        char **n = realloc(c->msgs, (size_t)nc * sizeof *n);
        if (!n) return ACDM_P_ENOMEM;
        c->msgs = n;
        c->cap = nc;
    }
    char *m = malloc(len + 1);
    if (!m) return ACDM_P_ENOMEM;
    memcpy(m, data, len);
    m[len] = 0;
    c->msgs[c->n++] = m;
    return 0;
}

static void h_ws_close(acdm_wsconn *c, int code, const char *reason)
{
    (void)reason;
    if (!c || !c->open || c->close_pending) return;
    c->closed_code = code ? code : 1000;
    c->close_pending = true;          /* the plugin's close runs at the next loop turn */
}

static void h_ws_set_user(acdm_wsconn *c, void *u) { if (c) c->user = u; }
static void *h_ws_user(acdm_wsconn *c) { return c ? c->user : NULL; }

static void join_headers(const char *const *hs, char **out)
{
    size_t n = 1;
    for (size_t i = 0; hs && hs[i]; i++) n += strlen(hs[i]) + 1;
    char *s = malloc(n);
    if (!s) { *out = NULL; return; }
    s[0] = 0;
    for (size_t i = 0; hs && hs[i]; i++) { if (i) strcat(s, "\n"); strcat(s, hs[i]); }
    *out = s;
}

static int h_http_request(acdm_instance *in, const acdm_http_out *req, acdm_http_done done, void *user)
{
    if (!live(in, "http_request") || !req || !done) return ACDM_P_EINVAL;
    if (req->struct_size < offsetof(acdm_http_out, timeout_ms) + sizeof(long) || !req->url ||
        (strncmp(req->url, "http://", 7) && strncmp(req->url, "https://", 8)))
        return ACDM_P_EINVAL;
    mock_host *h = in->h;
    h->outs = grow(h->outs, &h->capouts, h->nouts + 1, sizeof *h->outs);
    mout *o = &h->outs[h->nouts++];
    o->pub.method = strdup(req->method ? req->method : req->body ? "POST" : "GET");
    o->pub.url = strdup(req->url);
    if (req->body) {
        size_t l = req->body_len ? req->body_len : strlen(req->body);
        char *b = malloc(l + 1);
        if (b) { memcpy(b, req->body, l); b[l] = 0; }
        o->pub.body = b;
    }
    char *hs;
    join_headers(req->headers, &hs);
    o->pub.headers = hs;
    o->pub.timeout_ms = req->timeout_ms ? req->timeout_ms : 10000;
    o->pub.pending = 1;
    o->inst = in; o->done = done; o->user = user;
    return 0;
}

static kv **kv_find(acdm_instance *in, const char *key)
{
    kv **pp = &in->kv;
    for (; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->key, key)) break;
    if (*pp && (*pp)->expires && (*pp)->expires <= in->h->now) {   /* expired: gone */
        kv *e = *pp;
        *pp = e->next;
        free(e->key); free(e->val); free(e);
    }
    return pp;
}

static int h_kv_set_ttl(acdm_instance *in, const char *key, const char *value, size_t len, uint32_t ttl)
{
    if (!live(in, "kv_set") || !key || !*key) return ACDM_P_EINVAL;
    kv **pp = kv_find(in, key);
    record(in->h, ttl ? "kv_set_ttl" : "kv_set", key, value, NULL, ttl);
    if (!value) {
        if (*pp) { kv *e = *pp; *pp = e->next; free(e->key); free(e->val); free(e); }
        return 0;
    }
    char *v = malloc(len + 1);
    if (!v) return ACDM_P_ENOMEM;
    memcpy(v, value, len);
    v[len] = 0;
    if (!*pp) {
        kv *e = calloc(1, sizeof *e);
        if (!e) { free(v); return ACDM_P_ENOMEM; }
        e->key = strdup(key);
        *pp = e;
    }
    free((*pp)->val);
    (*pp)->val = v;
    (*pp)->expires = ttl ? in->h->now + (uint64_t)ttl * 1000 : 0;
    return 0;
}

static int h_kv_set(acdm_instance *in, const char *key, const char *value, size_t len)
{
    return h_kv_set_ttl(in, key, value, len, 0);
}

static int h_kv_get(acdm_instance *in, const char *key, char **value, size_t *len)
{
    if (!live(in, "kv_get") || !key || !value) return ACDM_P_EINVAL;
    kv **pp = kv_find(in, key);
    if (!*pp) return ACDM_P_ENOENT;
    *value = strdup((*pp)->val);
    if (len) *len = strlen((*pp)->val);
    return *value ? 0 : ACDM_P_ENOMEM;
}

static void h_free(void *p) { free(p); }

static int h_delivery_report(acdm_instance *in, const char *id, const char *text, const char *payload)
{
    if (!live(in, "delivery_report") || !id || !*id) return ACDM_P_EINVAL;
    record(in->h, "delivery_report", id, text, payload, 0);
    return 0;
}

static mock_resp *resp_of(mock_host *h, void *token)
{
    for (mock_resp *r = h->resps; r; r = r->next)
        if (r == token) return r;
    return NULL;
}

static void resp_answer(mock_resp *r, const acdm_http_response *x)
{
    r->done = true;
    if (r->gone) return;
    r->status = x->status ? x->status : 200;
    snprintf(r->ctype, sizeof r->ctype, "%s", x->content_type ? x->content_type : "application/json");
    size_t l = x->body ? (x->body_len ? x->body_len : strlen(x->body)) : 0;
    free(r->body);
    r->body = malloc(l + 1);
    if (r->body) { if (l) memcpy(r->body, x->body, l); r->body[l] = 0; }
}

/* http_respond has no instance argument: the mock finds the host whose token it is among the
 * hosts alive (tests run single-threaded; several hosts may live at once). */
static mock_host *hosts;

static int h_http_respond(void *token, const acdm_http_response *resp)
{
    if (!token || !resp) return ACDM_P_EINVAL;
    mock_host *h = NULL;
    mock_resp *r = NULL;
    for (mock_host *x = hosts; x && !r; x = x->next_host)
        if ((r = resp_of(x, token))) h = x;
    if (!r || r->magic != RESP_MAGIC) {
        for (mock_host *x = hosts; x; x = x->next_host)
            problem(x, "http_respond with a token no host gave out (or after mock_host_free)");
        return ACDM_P_EINVAL;
    }
    if (r->done) {
        problem(h, "%s: http_respond on a token already answered (a use after free in acdmd)",
                r->inst->name);
        return ACDM_P_EINVAL;
    }
    if (!r->inst->live) {
        problem(h, "%s: http_respond after the instance's stop (the core answered 503 and freed "
                "the token)", r->inst->name);
        return ACDM_P_EINVAL;
    }
    resp_answer(r, resp);
    return 0;
}

static int h_typing(acdm_instance *in, const char *id)
{
    if (!live(in, "typing") || !id || !*id) return ACDM_P_EINVAL;
    record(in->h, "typing", id, NULL, NULL, 0);
    return 0;
}

static named *named_find(named *l, const char *key)
{
    for (; l; l = l->next)
        if (!strcmp(l->key, key)) return l;
    return NULL;
}

static int h_queue_position(acdm_instance *in, const char *id, uint32_t *pos, uint32_t *est)
{
    if (!live(in, "queue_position") || !id || !pos || !est) return ACDM_P_EINVAL;
    named *n = named_find(in->h->positions, id);
    *pos = n ? n->a : 0;
    *est = n ? n->b : 0;
    return n ? 0 : ACDM_P_ENOENT;
}

static int h_attachment_put(acdm_instance *in, const char *id, const char *filename, const char *ct,
                            const void *data, size_t len, char id_out[64])
{
    if (!live(in, "attachment_put") || !id || !*id || !filename || !*filename || !ct || !*ct ||
        !data || !len || !id_out)
        return ACDM_P_EINVAL;
    if (len > ACDM_ATTACHMENT_MAX) return ACDM_P_ETOOBIG;
    snprintf(id_out, 64, "att-%d", ++in->h->att_seq);
    record(in->h, "attachment_put", id, filename, ct, (long long)len);
    return 0;
}

static int h_check_token(acdm_instance *in, const char *token)
{
    if (!live(in, "check_token") || !token || !*token) return ACDM_P_EINVAL;
    named *n = named_find(in->h->tokens, token);
    record(in->h, "check_token", token, NULL, NULL, n ? n->rc : ACDM_P_ENOENT);
    return n ? n->rc : ACDM_P_ENOENT;
}

static int h_attachment_store(acdm_instance *in, const acdm_attachment_in *a, char id_out[64])
{
    if (!live(in, "attachment_store") || !a || !id_out ||
        a->struct_size < offsetof(acdm_attachment_in, path) + sizeof(const char *) ||
        !a->bericht_id || !a->filename || (!a->data == !a->path))
        return ACDM_P_EINVAL;
    if (a->data && a->len > ACDM_ATTACHMENT_MAX) return ACDM_P_ETOOBIG;
    snprintf(id_out, 64, "att-%d", ++in->h->att_seq);
    record(in->h, "attachment_store", a->bericht_id, a->filename, a->content_id, (long long)a->len);
    return 0;
}

static int h_attachment_read(acdm_instance *in, const char *id, acdm_attachment_meta *m, int *fd)
{
    if (!live(in, "attachment_read") || !id || !m || !fd) return ACDM_P_EINVAL;
    record(in->h, "attachment_read", id, NULL, NULL, 0);
    return ACDM_P_ENOENT;
}

static int h_update(acdm_instance *in, const char *id, const acdm_update *u, char *err, size_t errlen)
{
    if (!live(in, "update") || !id || !u) return ACDM_P_EINVAL;
    if (u->struct_size < offsetof(acdm_update, payload_json) + sizeof(const char *)) {
        if (err && errlen) snprintf(err, errlen, "struct_size: too small");
        return ACDM_P_EABI;
    }
    if (u->priority < -1 || u->priority > 9) {
        if (err && errlen) snprintf(err, errlen, "priority: not in 0..9");
        return ACDM_P_EINVAL;
    }
    record(in->h, "update", id, u->queue, u->payload_json, u->priority);
    return 0;
}

static int h_device_result(acdm_instance *in, const char *id, const char *agent,
                           acdm_device_outcome o, const char *reason)
{
    if (!live(in, "device_result") || !id || !agent) return ACDM_P_EINVAL;
    record(in->h, "device_result", id, agent, reason, o);
    return 0;
}

static int h_device_reachable(acdm_instance *in, const char *agent, const char *kind, int reachable,
                              const char *reason)
{
    if (!live(in, "device_reachable") || !agent || !kind) return ACDM_P_EINVAL;
    record(in->h, "device_reachable", agent, kind, reason, reachable);
    return 0;
}

static int h_originate_result(acdm_instance *in, const char *id, acdm_originate_outcome o, const char *reason)
{
    if (!live(in, "originate_result") || !id) return ACDM_P_EINVAL;
    record(in->h, "originate_result", id, reason, NULL, o);
    return 0;
}

/* flush: the mock's writes are in memory, committed at once; cb runs at the next clock step
 * (a 0 ms timer, so it is never called inside the plugin's own call) */
static int h_flush(acdm_instance *in, void (*cb)(acdm_instance *, void *, void *), void *user)
{
    if (!live(in, "flush") || !cb) return ACDM_P_EINVAL;
    record(in->h, "flush", NULL, NULL, NULL, 0);
    return h_timer_start(in, 0, 0, cb, user) ? 0 : ACDM_P_ENOMEM;
}

static int h_set_conversation(acdm_instance *in, const char *id, const char *conversation)
{
    if (!live(in, "set_conversation") || !id || !*id || !conversation || !*conversation)
        return ACDM_P_EINVAL;
    record(in->h, "set_conversation", id, conversation, NULL, 0);
    return 0;
}

static void named_set(named **l, const char *key, int rc, uint32_t a, uint32_t b);

static char *h_queue_info(acdm_instance *in, const char *queue, const char *kind)
{
    if (!live(in, "queue_info")) return NULL;
    record(in->h, "queue_info", queue, kind, NULL, 0);
    return in->h->queue_info ? strdup(in->h->queue_info) : NULL;
}

/* As the core: once per bericht (ACDM_P_EEXIST the second time); the detail is recorded. */
static int h_feedback(acdm_instance *in, const char *id, const char *detail, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!live(in, "feedback") || !id || !*id || !detail) return ACDM_P_EINVAL;
    record(in->h, "feedback", id, detail, NULL, 0);
    if (named_find(in->h->rated, id)) return ACDM_P_EEXIST;
    named_set(&in->h->rated, id, 0, 0, 0);
    return 0;
}

/* ------------------------------------------------------------------ the host */

mock_host *mock_host_new(void)
{
    mock_host *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->now = 1000000;
    pthread_mutex_init(&h->mu, NULL);
    snprintf(h->peer, sizeof h->peer, "127.0.0.1");
    const char *v = getenv("MOCK_HOST_VERBOSE");
    h->verbose = v && *v && strcmp(v, "0");
    acdm_host t = {
        .struct_size = sizeof(acdm_host), .abi_major = ACDM_PLUGIN_ABI_MAJOR,
        .abi_minor = ACDM_PLUGIN_ABI_MINOR, .log = h_log, .instance_name = h_instance_name,
        .submit = h_submit, .end = h_end, .post = h_post, .timer_start = h_timer_start,
        .timer_stop = h_timer_stop, .watch_fd = h_watch_fd, .unwatch_fd = h_unwatch_fd,
        .http_route = h_http_route, .ws_route = h_ws_route, .ws_send = h_ws_send,
        .ws_close = h_ws_close, .ws_set_user = h_ws_set_user, .ws_user = h_ws_user,
        .http_request = h_http_request, .kv_set = h_kv_set, .kv_get = h_kv_get, .free = h_free,
        .delivery_report = h_delivery_report, .http_respond = h_http_respond, .typing = h_typing,
        .queue_position = h_queue_position, .attachment_put = h_attachment_put,
        .check_token = h_check_token, .end_ago = h_end_ago, .submit_err = h_submit_err,
        .attachment_store = h_attachment_store, .attachment_read = h_attachment_read,
        .kv_set_ttl = h_kv_set_ttl, .update = h_update, .device_result = h_device_result,
        .device_reachable = h_device_reachable, .originate_result = h_originate_result,
        .flush = h_flush, .set_conversation = h_set_conversation,
        .queue_info = h_queue_info, .feedback = h_feedback,
    };
    h->table = t;
    h->next_host = hosts;
    hosts = h;
    return h;
}

void mock_host_table_size(mock_host *h, size_t n)
{
    h->table.struct_size = n < sizeof(acdm_host) ? n : sizeof(acdm_host);
}

void mock_host_verbose(mock_host *h, int on) { h->verbose = on; }

int mock_host_check(mock_host *h, char *report, size_t cap)
{
    if (report && cap) snprintf(report, cap, "%s", h->problems ? h->problems : "");
    return h->nproblems;
}

static void free_inst_mem(acdm_instance *in)
{
    while (in->routes) { route *r = in->routes; in->routes = r->next; free(r->method); free(r->path); free(r); }
    while (in->wsroutes) { wsroute *r = in->wsroutes; in->wsroutes = r->next; free(r->path); free(r); }
    while (in->kv) { kv *e = in->kv; in->kv = e->next; free(e->key); free(e->val); free(e); }
}

void mock_host_free(mock_host *h)
{
    if (!h) return;
    while (h->insts) {
        problem(h, "%s: still running at mock_host_free (call mock_stop)", h->insts->name);
        mock_stop(h->insts);
    }
    while (h->dead) {
        acdm_instance *in = h->dead;
        h->dead = in->next;
        free_inst_mem(in);
        free(in->name); free(in->queue); free(in);
    }
    while (h->timers) { acdm_timer *t = h->timers; h->timers = t->next; free(t); }
    while (h->watches) { acdm_watch *w = h->watches; h->watches = w->next; free(w); }
    while (h->conns) {
        acdm_wsconn *c = h->conns;
        h->conns = c->next;
        for (int i = 0; i < c->n; i++) free(c->msgs[i]);
        free(c->msgs);
        free(c);
    }
    while (h->resps) { mock_resp *r = h->resps; h->resps = r->next; free(r->body); free(r); }
    for (int i = 0; i < h->nsubs; i++) {
        mock_submit *s = &h->subs[i].pub;
        free((char *)s->kind); free((char *)s->queue); free((char *)s->from);
        free((char *)s->customer_id); free((char *)s->conversation);
        free((char *)s->idempotency_key); free((char *)s->skills_json);
        free((char *)s->subject); free((char *)s->text); free((char *)s->payload_json);
    }
    free(h->subs);
    for (int i = 0; i < h->ncalls; i++) {
        free((char *)h->calls[i].a); free((char *)h->calls[i].b); free((char *)h->calls[i].c);
    }
    free(h->calls);
    for (int i = 0; i < h->nouts; i++) {
        free((char *)h->outs[i].pub.method); free((char *)h->outs[i].pub.url);
        free((char *)h->outs[i].pub.body); free((char *)h->outs[i].pub.headers);
    }
    free(h->outs);
    for (named *l = h->tokens, *n; l; l = n) { n = l->next; free(l->key); free(l); }
    for (named *l = h->positions, *n; l; l = n) { n = l->next; free(l->key); free(l); }
    for (named *l = h->rated, *n; l; l = n) { n = l->next; free(l->key); free(l); }
    free(h->queue_info);
    while (h->ph) { post_item *it = h->ph; h->ph = it->next; free(it); }
    for (int i = 0; i < h->nlogs; i++) free(h->logs[i]);
    free(h->logs);
    for (int i = 0; i < h->ndl; i++) dlclose(h->dls[i]);
    free(h->refuse_reason);
    free(h->problems);
    pthread_mutex_destroy(&h->mu);
    for (mock_host **pp = &hosts; *pp; pp = &(*pp)->next_host)
        if (*pp == h) { *pp = h->next_host; break; }
    free(h);
}

/* ------------------------------------------------------------------ plugins and instances */

const acdm_plugin *mock_plugin_open(mock_host *h, const char *path, char *err, size_t errlen)
{
    if (h->ndl >= (int)(sizeof h->dls / sizeof h->dls[0])) {
        snprintf(err, errlen, "too many plugins opened");
        return NULL;
    }
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) { snprintf(err, errlen, "dlopen %s: %s", path, dlerror()); return NULL; }
    void *sym = dlsym(dl, ACDM_PLUGIN_ENTRY_SYMBOL);
    if (!sym) { snprintf(err, errlen, "%s: no acdm_plugin_entry", path); dlclose(dl); return NULL; }
    acdm_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    h->dls[h->ndl++] = dl;
    const acdm_plugin *d = entry();
    if (!d || d->abi_major != ACDM_PLUGIN_ABI_MAJOR || d->abi_minor > ACDM_PLUGIN_ABI_MINOR ||
        !d->init || !d->deliver) {
        snprintf(err, errlen, "%s: not a plugin this ABI (%d.%d) loads", path, ACDM_PLUGIN_ABI_MAJOR,
                 ACDM_PLUGIN_ABI_MINOR);
        return NULL;
    }
    return d;
}

int mock_check_config(const acdm_plugin *d, const char *json, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!d->check_config) return 0;
    return d->check_config(json ? json : "{}", err, errlen);
}

static void inst_unlink(acdm_instance *in)
{
    mock_host *h = in->h;
    for (acdm_instance **pp = &h->insts; *pp; pp = &(*pp)->next)
        if (*pp == in) { *pp = in->next; break; }
    in->next = h->dead;
    h->dead = in;
}

mock_inst *mock_start_queue(mock_host *h, const acdm_plugin *d, const char *name, const char *queue,
                            const char *config_json, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) { err = dummy; errlen = sizeof dummy; }
    err[0] = 0;
    if (!d || !name) { snprintf(err, errlen, "no plugin or no name"); return NULL; }
    const char *cfg = config_json ? config_json : "{}";
    int rc = mock_check_config(d, cfg, err, errlen);
    if (rc < 0) return NULL;
    acdm_instance *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->h = h; in->d = d; in->name = strdup(name); in->queue = dupstr(queue);
    in->priv = calloc(1, d->instance_size ? d->instance_size : 1);
    in->next = h->insts;
    h->insts = in;
    in->live = true;
    pthread_mutex_lock(&h->mu);
    in->accept_posts = true;
    pthread_mutex_unlock(&h->mu);
    rc = d->init(in, in->priv, &h->table, cfg, err, errlen);
    if (rc < 0) {
        if (!err[0]) snprintf(err, errlen, "init failed (%d) without a sentence", rc);
        /* as the core: no other callback; what init took is released */
        in->live = false;
        pthread_mutex_lock(&h->mu);
        in->accept_posts = false;
        pthread_mutex_unlock(&h->mu);
        for (acdm_timer *t = h->timers; t; t = t->next) if (t->inst == in) t->armed = false;
        for (acdm_watch *w = h->watches; w; w = w->next) if (w->inst == in) w->active = false;
        free(in->priv);
        in->priv = NULL;
        inst_unlink(in);
        return NULL;
    }
    if (d->start && (rc = d->start(in, in->priv)) < 0) {
        snprintf(err, errlen, "start failed (%d)", rc);
        mock_stop(in);
        return NULL;
    }
    return in;
}

mock_inst *mock_start(mock_host *h, const acdm_plugin *d, const char *name, const char *config_json,
                      char *err, size_t errlen)
{
    return mock_start_queue(h, d, name, NULL, config_json, err, errlen);
}

int mock_reload(mock_inst *in, const char *json, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!in->d->reload) { if (err && errlen) snprintf(err, errlen, "no reload"); return -1; }
    int rc = mock_check_config(in->d, json, err, errlen);
    if (rc < 0) return rc;
    return in->d->reload(in, in->priv, json ? json : "{}", err, errlen);
}

void *mock_priv(mock_inst *in) { return in ? in->priv : NULL; }

static void conn_close_now(acdm_wsconn *c)
{
    acdm_instance *in = c->inst;
    c->open = false;
    c->close_pending = false;
    if (c->r && c->r->cb.close && in->live) c->r->cb.close(in, in->priv, c);
}

void mock_stop(mock_inst *in)
{
    if (!in || !in->priv) return;
    mock_host *h = in->h;
    for (acdm_wsconn *c = h->conns; c; c = c->next)
        if (c->inst == in && c->open) { if (!c->closed_code) c->closed_code = 1001; conn_close_now(c); }
    if (in->d->stop) in->d->stop(in, in->priv);
    pthread_mutex_lock(&h->mu);
    in->accept_posts = false;
    for (post_item **pp = &h->ph; *pp;) {
        post_item *it = *pp;
        if (it->inst == in) { *pp = it->next; free(it); } else pp = &it->next;
    }
    h->pt = NULL;
    for (post_item *it = h->ph; it; it = it->next) h->pt = it;
    pthread_mutex_unlock(&h->mu);
    /* the teardown check: what the plugin left behind when its stop returned */
    int timers = 0, watches = 0, deferred = 0;
    for (acdm_timer *t = h->timers; t; t = t->next)
        if (t->inst == in && t->armed) { timers++; t->armed = false; }
    for (acdm_watch *w = h->watches; w; w = w->next)
        if (w->inst == in && w->active) { watches++; w->active = false; }
    for (mock_resp *r = h->resps; r; r = r->next)
        if (r->inst == in && r->deferred && !r->done) {
            deferred++;
            acdm_http_response x = {.status = 503, .content_type = "application/problem+json",
                .body = "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,"
                        "\"detail\":\"the channel stopped\"}"};
            resp_answer(r, &x);
        }
    if (timers) problem(h, "%s: %d timer(s) still armed when stop returned (stop them in stop)", in->name, timers);
    if (watches) problem(h, "%s: %d fd watch(es) still active when stop returned (unwatch_fd in stop)", in->name, watches);
    if (deferred)
        problem(h, "%s: %d deferred HTTP response(s) never answered (the core answered 503)", in->name, deferred);
    for (int i = 0; i < h->nouts; i++)           /* cancelled, as the core does: done never runs */
        if (h->outs[i].inst == in) h->outs[i].pub.pending = 0;
    in->live = false;                             /* routes released; no host call from here on */
    if (in->d->destroy) in->d->destroy(in, in->priv);
    free(in->priv);
    in->priv = NULL;
    inst_unlink(in);
}

/* ------------------------------------------------------------------ loop and clock */

uint64_t mock_now(mock_host *h) { return h->now; }

int mock_run_posts(mock_host *h)
{
    int n = 0;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        post_item *it = h->ph;
        if (it) { h->ph = it->next; if (!h->ph) h->pt = NULL; }
        pthread_mutex_unlock(&h->mu);
        if (!it) break;
        if (it->inst->live) { it->fn(it->inst, it->inst->priv, it->arg); n++; }
        free(it);
    }
    return n;
}

static int fire_due(mock_host *h)
{
    int n = 0;
    for (;;) {
        acdm_timer *best = NULL;
        for (acdm_timer *t = h->timers; t; t = t->next)
            if (t->armed && t->due <= h->now && (!best || t->due < best->due)) best = t;
        if (!best) return n;
        acdm_instance *in = best->inst;
        if (best->repeat) best->due += best->repeat; else best->armed = false;
        best->firing = true;
        best->cb(in, in->priv, best->user);
        best->firing = false;
        n++;
    }
}

int mock_run(mock_host *h)
{
    int n = mock_run_posts(h);
    for (acdm_wsconn *c = h->conns; c; c = c->next)
        if (c->close_pending && c->open) { conn_close_now(c); n++; }
    return n + fire_due(h);
}

int mock_advance(mock_host *h, uint64_t ms)
{
    mock_run(h);
    uint64_t until = h->now + ms;
    int n = 0;
    for (;;) {
        acdm_timer *next = NULL;
        for (acdm_timer *t = h->timers; t; t = t->next)
            if (t->armed && t->due <= until && (!next || t->due < next->due)) next = t;
        if (!next) break;
        if (next->due > h->now) h->now = next->due;
        n += fire_due(h);
        mock_run_posts(h);
    }
    h->now = until;
    return n;
}

int mock_timers(mock_inst *in)
{
    int n = 0;
    for (acdm_timer *t = in->h->timers; t; t = t->next) n += t->inst == in && t->armed;
    return n;
}

int mock_watches(mock_inst *in)
{
    int n = 0;
    for (acdm_watch *w = in->h->watches; w; w = w->next) n += w->inst == in && w->active;
    return n;
}

int mock_fd_ready(mock_host *h, int fd, int events)
{
    int n = 0;
    for (acdm_watch *w = h->watches; w; w = w->next)
        if (w->active && w->fd == fd && (w->events & events) && w->inst->live) {
            w->cb(w->inst, w->inst->priv, w->user, w->events & events);
            n++;
        }
    return n;
}

int mock_poll(mock_host *h, int timeout_ms)
{
    struct pollfd fds[64];
    acdm_watch *ws[64];
    nfds_t n = 0;
    for (acdm_watch *w = h->watches; w && n < 64; w = w->next)
        if (w->active) {
            fds[n].fd = w->fd;
            fds[n].events = (short)(((w->events & ACDM_WATCH_READ) ? POLLIN : 0) |
                                    ((w->events & ACDM_WATCH_WRITE) ? POLLOUT : 0));
            fds[n].revents = 0;
            ws[n++] = w;
        }
    if (!n) return 0;
    int r = poll(fds, n, timeout_ms), ran = 0;
    if (r <= 0) return 0;
    for (nfds_t i = 0; i < n; i++) {
        int ev = ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) ? ACDM_WATCH_READ : 0) |
                 ((fds[i].revents & POLLOUT) ? ACDM_WATCH_WRITE : 0);
        if (ev && ws[i]->active && ws[i]->inst->live) {
            ws[i]->cb(ws[i]->inst, ws[i]->inst->priv, ws[i]->user, ev);
            ran++;
        }
    }
    return ran;
}

/* ------------------------------------------------------------------ HTTP and websockets in */

typedef struct {
    acdm_http_header hs[64];
    size_t n;
    char *buf;
    char *query_dec;
    char url[2048];
    acdm_http_request req;
} built_req;

static void parse_headers(built_req *b, const char *headers)
{
    b->buf = strdup(headers ? headers : "");
    b->n = 0;
    for (char *line = b->buf, *next; line && *line && b->n < 64; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ') v++;
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ')) v[--vl] = 0;
        for (char *c = line; *c; c++) *c = (char)tolower((unsigned char)*c);
        b->hs[b->n].name = line;
        b->hs[b->n].value = v;
        b->n++;
    }
}

static const char *hget(const built_req *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (!strcasecmp(b->hs[i].name, name)) return b->hs[i].value;
    return NULL;
}

static int hexv(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* ABI 1.0's query: every argument percent-decoded ('+' a space), joined with '&'. */
static char *decode_query(const char *raw)
{
    char *out = malloc(strlen(raw) + 1), *o = out;
    if (!out) return NULL;
    for (const char *p = raw; *p; p++) {
        if (*p == '+') *o++ = ' ';
        else if (*p == '%' && hexv((unsigned char)p[1]) >= 0 && hexv((unsigned char)p[2]) >= 0) {
            *o++ = (char)(hexv((unsigned char)p[1]) * 16 + hexv((unsigned char)p[2]));
            p += 2;
        } else *o++ = *p;
    }
    *o = 0;
    return out;
}

static void build(built_req *b, acdm_instance *in, const char *method, const char *path,
                  const char *query, const char *body, const char *headers)
{
    memset(b, 0, sizeof *b);
    parse_headers(b, headers);
    b->query_dec = query ? decode_query(query) : NULL;
    snprintf(b->url, sizeof b->url, "http://%s/channels/%s%s%s%s", hget(b, "host") ? hget(b, "host") : "127.0.0.1",
             in->name, path, query ? "?" : "", query ? query : "");
    b->req = (acdm_http_request){
        .method = method, .path = path, .query = b->query_dec, .body = body,
        .body_len = body ? strlen(body) : 0, .authorization = hget(b, "authorization"),
        .origin = hget(b, "origin"), .content_type = hget(b, "content-type"),
        .struct_size = sizeof(acdm_http_request), .query_raw = query, .headers = b->hs,
        .n_headers = b->n, .url = b->url, .peer = in->h->peer};
}

static void unbuild(built_req *b) { free(b->buf); free(b->query_dec); }

static bool path_match(const char *pattern, const char *path)
{
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*') return !strncmp(pattern, path, n - 1);
    return !strcmp(pattern, path);
}

mock_resp *mock_http(mock_inst *in, const char *method, const char *path_query, const char *body,
                     const char *headers)
{
    mock_host *h = in->h;
    mock_resp *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->magic = RESP_MAGIC;
    r->inst = in;
    r->next = h->resps;
    h->resps = r;
    char *path = strdup(path_query ? path_query : "/");
    char *q = strchr(path, '?');
    if (q) *q++ = 0;
    route *rt = NULL;
    for (route *x = in->live ? in->routes : NULL; x; x = x->next)
        if (path_match(x->path, path) && (!x->method || !strcmp(x->method, method))) { rt = x; break; }
    if (!rt) {
        acdm_http_response x = {.status = 404, .content_type = "application/problem+json",
                                .body = "{\"title\":\"Not Found\",\"status\":404}"};
        resp_answer(r, &x);
        free(path);
        return r;
    }
    built_req b;
    build(&b, in, method, path, q, body, headers);
    acdm_http_response x = {.status = 200, .token = r};
    rt->handler(in, in->priv, &b.req, &x);
    if (x.defer) r->deferred = true;
    else if (!r->done) resp_answer(r, &x);
    unbuild(&b);
    free(path);
    return r;
}

int mock_resp_done(const mock_resp *r) { return r && r->done; }
int mock_resp_status(const mock_resp *r) { return r && r->done ? r->status : 0; }
const char *mock_resp_body(const mock_resp *r) { return r && r->body ? r->body : ""; }
const char *mock_resp_content_type(const mock_resp *r) { return r ? r->ctype : ""; }
int mock_resp_deferred(const mock_resp *r) { return r && r->deferred; }
void mock_resp_gone(mock_resp *r) { if (r) r->gone = true; }
void mock_http_peer(mock_host *h, const char *peer) { snprintf(h->peer, sizeof h->peer, "%s", peer ? peer : ""); }

mock_ws *mock_ws_open(mock_inst *in, const char *path, const char *query, const char *headers)
{
    wsroute *r = NULL;
    for (wsroute *x = in->live ? in->wsroutes : NULL; x; x = x->next)
        if (!strcmp(x->path, path)) { r = x; break; }
    if (!r) return NULL;
    acdm_wsconn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->inst = in; c->r = r; c->open = true;
    c->next = in->h->conns;
    in->h->conns = c;
    built_req b;
    build(&b, in, "GET", path, query, NULL, headers);
    int rc = r->cb.open ? r->cb.open(in, in->priv, c, &b.req) : 0;
    unbuild(&b);
    if (rc < 0) { c->open = false; c->closed_code = 403; return NULL; }
    return c;
}

void mock_ws_say(mock_ws *c, const char *text)
{
    if (!c || !c->open || !c->inst->live) return;
    if (c->r->cb.message) c->r->cb.message(c->inst, c->inst->priv, c, text, strlen(text));
}

void mock_ws_gone(mock_ws *c)
{
    if (c && c->open) conn_close_now(c);
}

int mock_ws_count(const mock_ws *c) { return c ? c->n : 0; }
const char *mock_ws_msg(const mock_ws *c, int i)
{
    if (!c) return NULL;
    if (i < 0) i += c->n;
    return i >= 0 && i < c->n ? c->msgs[i] : NULL;
}
const char *mock_ws_last(const mock_ws *c) { return c && c->n ? c->msgs[c->n - 1] : ""; }
int mock_ws_closed(const mock_ws *c) { return c ? c->closed_code : 0; }

/* ------------------------------------------------------------------ submits */

int mock_submits(mock_host *h) { return h->nsubs; }
const mock_submit *mock_submit_get(mock_host *h, int i)
{
    if (i < 0) i += h->nsubs;
    return i >= 0 && i < h->nsubs ? &h->subs[i].pub : NULL;
}

int mock_pending(mock_host *h)
{
    int n = 0;
    for (int i = 0; i < h->nsubs; i++) n += h->subs[i].pub.pending;
    return n;
}

int mock_commit(mock_host *h, acdm_submit_outcome outcome, const char *bericht_id, const char *text)
{
    for (int i = 0; i < h->nsubs; i++) {
        msub *s = &h->subs[i];
        if (!s->pub.pending) continue;
        s->pub.pending = 0;
        /* as the core: a stopped instance's callback is never called */
        if (s->cb && s->inst->live) s->cb(s->inst, s->inst->priv, s->user, outcome, bericht_id, text);
        return 0;
    }
    return -1;
}

void mock_refuse_next_submit(mock_host *h, int rc, const char *reason)
{
    h->refuse_rc = rc < 0 ? rc : ACDM_P_EINVAL;
    free(h->refuse_reason);
    h->refuse_reason = dupstr(reason);
}

/* ------------------------------------------------------------------ the core's side */

int mock_deliver(mock_inst *in, const char *bericht_id, const char *conversation, const char *to,
                 const char *agent, const char *text, const char *payload_json, const char *message_id)
{
    if (!in->live) return ACDM_P_ENOENT;
    acdm_reply r = {.struct_size = sizeof r, .bericht_id = bericht_id, .conversation = conversation,
                    .to = to, .agent = agent, .text = text, .payload_json = payload_json,
                    .message_id = message_id};
    return in->d->deliver(in, in->priv, &r);
}

void mock_event(mock_inst *in, acdm_event_type type, const char *bericht_id, const char *conversation,
                const char *queue, const char *agent, const char *detail_json)
{
    if (!in->live || !in->d->on_event) return;
    acdm_event_info ev = {.struct_size = sizeof ev, .type = type, .bericht_id = bericht_id,
                          .conversation = conversation, .queue = queue ? queue : in->queue,
                          .agent = agent, .detail_json = detail_json};
    in->d->on_event(in, in->priv, &ev);
}

void mock_agent_typing(mock_inst *in, const char *bericht_id)
{
    if (in->live && ACDM_PLUGIN_HAS(in->d, on_agent_typing) && in->d->on_agent_typing)
        in->d->on_agent_typing(in, in->priv, bericht_id);
}

static void named_set(named **l, const char *key, int rc, uint32_t a, uint32_t b)
{
    named *n = named_find(*l, key);
    if (!n) {
        n = calloc(1, sizeof *n);
        if (!n) return;
        n->key = strdup(key);
        n->next = *l;
        *l = n;
    }
    n->rc = rc; n->a = a; n->b = b;
}

void mock_token(mock_host *h, const char *token, int rc) { named_set(&h->tokens, token, rc, 0, 0); }
void mock_queue_position(mock_host *h, const char *id, uint32_t pos, uint32_t est)
{
    named_set(&h->positions, id, 0, pos, est);
}

void mock_queue_info(mock_host *h, const char *json)
{
    free(h->queue_info);
    h->queue_info = json ? strdup(json) : NULL;
}

char *mock_status_json(mock_inst *in)
{
    if (!in->live || !ACDM_PLUGIN_HAS(in->d, status_json) || !in->d->status_json) return NULL;
    return in->d->status_json(in, in->priv);
}

/* ------------------------------------------------------------------ outbound HTTP */

int mock_outs(mock_host *h) { return h->nouts; }
const mock_out *mock_out_get(mock_host *h, int i)
{
    if (i < 0) i += h->nouts;
    return i >= 0 && i < h->nouts ? &h->outs[i].pub : NULL;
}

int mock_out_complete(mock_host *h, int i, int status, const char *body, const char *error)
{
    if (i < 0) i += h->nouts;
    if (i < 0 || i >= h->nouts || !h->outs[i].pub.pending) return -1;
    mout *o = &h->outs[i];
    o->pub.pending = 0;
    if (!o->inst->live) return -1;
    o->done(o->inst, o->inst->priv, o->user, status, body ? body : "", body ? strlen(body) : 0,
            status < 0 ? (error ? error : "transport error") : NULL);
    return 0;
}

/* ------------------------------------------------------------------ recorded calls */

int mock_calls(mock_host *h, const char *name)
{
    int n = 0;
    for (int i = 0; i < h->ncalls; i++) n += !strcmp(h->calls[i].name, name);
    return n;
}

const mock_call *mock_call_last(mock_host *h, const char *name)
{
    for (int i = h->ncalls - 1; i >= 0; i--)
        if (!strcmp(h->calls[i].name, name)) return &h->calls[i];
    return NULL;
}

int mock_log_has(mock_host *h, const char *text)
{
    for (int i = 0; i < h->nlogs; i++)
        if (strstr(h->logs[i], text)) return 1;
    return 0;
}

const char *mock_kv(mock_inst *in, const char *key)
{
    kv **pp = kv_find(in, key);
    return *pp ? (*pp)->val : NULL;
}
