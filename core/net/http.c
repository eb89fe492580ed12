/* http.c -- acdmd's HTTP + websocket server: routes, bodies, async replies, static files, on lws + libuv. */
#include "net/http.h"
#include "base/log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/err.h>

#define WHO "http"
/* lws's own write type for a close frame (LWS_WRITE_CLOSE = 4 in its private headers, stable
 * across 4.x); see ws_writeable for why we need it */
#define WRITE_CLOSE ((enum lws_write_protocol)4)
#define MAX_PARAMS 8
#define ARENA_INLINE 1536
#define HDR_SPACE 1024          /* room for the status line and the headers we generate */
#define REQ_POOL_MAX 256        /* recycled request objects kept */
#define BODY_KEEP_MAX (64 * 1024) /* body/out buffers larger than this are freed on recycle */

/* ---------------------------------------------------------------- types */

typedef struct route {
    int id;
    int is_ws;
    int prefix;                 /* pattern ends in "/ *" */
    size_t litlen;              /* literal chars before the first { or * */
    size_t littotal;            /* all literal chars */
    char *method;               /* NULL = any */
    char *pattern;
    acdm_route_fn fn;
    acdm_ws_handlers hd;
    void *user;
} route;

typedef struct ablk { struct ablk *next; } ablk;   /* overflow arena block header */

typedef struct hdrc {          /* cached header lookup */
    struct hdrc *next;
    const char *name, *value;
} hdrc;

typedef struct xhdr {          /* response header added by the route */
    struct xhdr *next;
    const char *name, *value;
} xhdr;

struct pss;

struct acdm_req {
    acdm_http *srv;
    struct lws *wsi;            /* NULL once the client is gone */
    struct pss *pss;
    acdm_req *prev, *next;      /* live list, or free list (next only) */
    const char *method;
    const char *path;
    const char *rest;
    int nparams;
    const char *pname[MAX_PARAMS], *pval[MAX_PARAMS];
    int nquery;
    const char **qname, **qval;
    const char *query_string;
    hdrc *hdrs;
    xhdr *xhdrs;
    char *peer;
    const char *query_raw;      /* acdm_req_query_raw, built on first use */
    const char *url;            /* acdm_req_url, built on first use */
    acdm_hdr *hlist;            /* acdm_req_headers, built on first use */
    size_t nhlist;
    unsigned qraw_done : 1, url_done : 1, hlist_done : 1;
    const char *file_path;      /* acdm_http_reply_file: served by dispatch after the route */
    const char *file_type;
    char *body;
    size_t body_len, body_cap;
    unsigned char *out;         /* LWS_PRE + response */
    size_t out_len, out_cap;
    int content_length_known;
    int64_t t_begin;            /* monotonic ms the headers were in (body deadline, rate) */
    unsigned in_dispatch : 1, replied : 1, dispatched : 1, upgrade : 1, has_cc : 1;
    unsigned client_close : 1;  /* the request said "Connection: close": close after the reply */
    /* bump arena: stable pointers for the request's strings */
    char *ap;
    size_t aleft;
    ablk *blocks;
    char inline_buf[ARENA_INLINE];
};

struct pss {                    /* lws per-session data: one HTTP transaction or one websocket */
    acdm_req *req;
    acdm_ws *ws;
};

typedef struct wsmsg {
    struct wsmsg *next;
    size_t len;
    unsigned char data[];      /* LWS_PRE + text */
} wsmsg;

struct acdm_ws {
    struct pss pss;             /* the wsi's user space once upgraded (lws_set_wsi_user) */
    acdm_http *srv;
    struct lws *wsi;
    acdm_ws *prev, *next;       /* srv->ws_list */
    int route_id;
    acdm_ws_handlers hd;
    void *huser;
    void *user;
    char *path;
    char peer[64];
    wsmsg *qhead, *qtail;
    size_t qbytes;
    char *rx;
    size_t rx_len, rx_cap;
    int close_code;
    char close_reason[124];
    unsigned established : 1, closing : 1, detached : 1, killed : 1;
};

typedef struct {
    const char *name;           /* lowercase, no colon */
    size_t len;
    int token;
} tokname;

struct acdm_http {
    uv_loop_t *loop;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    int port;
    char *ui_dir;               /* realpath, or NULL */
    size_t ui_dir_len;
    char *ui_connect;           /* more CSP connect-src origins for the UI (the OIDC token endpoint) */
    size_t body_limit;
    route **routes;
    int nroutes, cap_routes, next_id;
    acdm_req *live;             /* requests not yet freed (dispatched or being received) */
    acdm_req *pool;             /* recycled */
    int npool;
    acdm_ws *ws_list;
    tokname toks[WSI_TOKEN_COUNT];
    int ntoks;
    struct lws_protocols protos[2];
    char iface[64];
    int destroying;
    uv_timer_t *sweep;          /* 1 s: slow bodies, the log's repeat summaries */
    int64_t last_log_flush;
    acdm_http_early_fn early;
    void *early_user;
    /* connections per client address (accept filter): fd -> address, address -> count */
    int conn_limit;
    char (*fd_addr)[48];        /* by descriptor; "" = not counted */
    int n_fd_addr;
    struct conn_count { char addr[48]; int n; } *cc;
    int n_cc, cap_cc;
    /* responses by route class and status (GET /metrics); [class][status - 100] */
    uint64_t responses[ACDM_HTTP_CLASS_COUNT][500];
    uint64_t ws_opened;         /* websockets accepted since start */
    /* listeners (vhosts of the one context); [0] is vh/port above */
    struct listener {
        struct lws_vhost *vh;
        int port;
        char host[64];
        char vname[16];               /* lws keeps the vhost name's pointer */
        char *cert_file, *key_file;   /* NULL: plain HTTP */
        SSL_CTX *ssl;                 /* the vhost's, caught as lws builds it (rotation) */
        char not_after[40];           /* the served certificate's expiry, for the log */
        char **routes;                /* what it serves (acdm_http_listener.routes); NULL: all */
        size_t n_routes;
    } lst[ACDM_HTTP_MAX_LISTENERS];
    int n_lst;
    int tls;                    /* a listener serves TLS (the context inits OpenSSL) */
};

/* The listener whose vhost lws is creating now (its SSL_CTX arrives in a callback). */
static struct listener *creating;

static const char *const method_names[] = {
    "GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "CONNECT", "HEAD", "GET"};

/* ---------------------------------------------------------------- small helpers */

/* The value of a query argument that had no '=' ("?flag"): "" like an empty value, but told
 * apart by address when the raw query is rebuilt. */
static const char no_equals[] = "";


static int lws_log_mapped(int lws_level)
{
    return (lws_level & LLL_ERR) ? ACDM_LOG_ERR : (lws_level & LLL_WARN) ? ACDM_LOG_WARN
                                                                         : ACDM_LOG_DEBUG;
}

static void lws_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    acdm_log(lws_log_mapped(level), "lws", "%.*s", (int)n, line);
}

static void *arena_alloc(acdm_req *r, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n > r->aleft) {
        size_t sz = n > 4096 ? n : 4096;
        ablk *b = malloc(sizeof(ablk) + sz + 8);
        if (!b) return NULL;
        b->next = r->blocks;
        r->blocks = b;
        r->ap = (char *)(b + 1);
        r->ap += (8 - ((uintptr_t)r->ap & 7)) & 7;
        r->aleft = sz;
    }
    void *p = r->ap;
    r->ap += n;
    r->aleft -= n;
    return p;
}

static char *arena_strndup(acdm_req *r, const char *s, size_t n)
{
    char *d = arena_alloc(r, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void arena_reset(acdm_req *r)
{
    while (r->blocks) {
        ablk *b = r->blocks;
        r->blocks = b->next;
        free(b);
    }
    r->ap = r->inline_buf;
    r->aleft = sizeof r->inline_buf;
}

/* ---------------------------------------------------------------- request objects */

static acdm_req *req_new(acdm_http *h, struct lws *wsi, struct pss *pss)
{
    acdm_req *r = h->pool;
    if (r) {
        h->pool = r->next;
        h->npool--;
    } else {
        r = calloc(1, sizeof *r);
        if (!r) return NULL;
        r->ap = r->inline_buf;
        r->aleft = sizeof r->inline_buf;
    }
    r->srv = h;
    r->wsi = wsi;
    r->pss = pss;
    r->prev = NULL;
    r->next = h->live;
    if (h->live) h->live->prev = r;
    h->live = r;
    return r;
}

static void req_free(acdm_req *r)
{
    acdm_http *h = r->srv;
    if (r->pss && r->pss->req == r) r->pss->req = NULL;
    if (r->prev) r->prev->next = r->next;
    else h->live = r->next;
    if (r->next) r->next->prev = r->prev;
    arena_reset(r);
    if (h->npool >= REQ_POOL_MAX || h->destroying) {
        free(r->body);
        free(r->out);
        free(r);
        return;
    }
    if (r->body_cap > BODY_KEEP_MAX) {
        free(r->body);
        r->body = NULL;
        r->body_cap = 0;
    }
    if (r->out_cap > BODY_KEEP_MAX) {
        free(r->out);
        r->out = NULL;
        r->out_cap = 0;
    }
    char *body = r->body, *ap = r->ap;
    unsigned char *out = r->out;
    size_t body_cap = r->body_cap, out_cap = r->out_cap, aleft = r->aleft;
    /* zero everything but the inline arena */
    memset(r, 0, offsetof(acdm_req, ap));
    r->body = body;
    r->body_cap = body_cap;
    r->out = out;
    r->out_cap = out_cap;
    r->ap = ap;
    r->aleft = aleft;
    r->srv = h;
    r->next = h->pool;
    h->pool = r;
    h->npool++;
}

/* The connection of r is going away: orphan the request (a later reply just frees it). */
static void req_orphan(acdm_req *r)
{
    r->wsi = NULL;
    r->pss = NULL;
    if (!r->dispatched || r->replied) req_free(r);   /* nobody else holds it */
}

static int body_reserve(acdm_req *r, size_t need)
{
    if (need + 1 <= r->body_cap) return 0;
    size_t cap = r->body_cap ? r->body_cap : 1024;
    while (cap < need + 1) cap *= 2;
    char *b = realloc(r->body, cap);
    if (!b) return -1;
    r->body = b;
    r->body_cap = cap;
    return 0;
}

static int out_reserve(acdm_req *r, size_t need)
{
    if (need <= r->out_cap) return 0;
    size_t cap = r->out_cap ? r->out_cap : 2048;
    while (cap < need) cap *= 2;
    unsigned char *b = realloc(r->out, cap);
    if (!b) return -1;
    r->out = b;
    r->out_cap = cap;
    return 0;
}

/* ---------------------------------------------------------------- routes */

static int pattern_check(const char *p, int is_ws, size_t *litlen, size_t *littotal, int *prefix)
{
    size_t n = strlen(p), lit = 0, first = (size_t)-1;
    if (n == 0 || p[0] != '/' || n > 1024) return -1;
    *prefix = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '*') {
            if (is_ws || i + 1 != n || i == 0 || p[i - 1] != '/') return -1;
            *prefix = 1;
            if (first == (size_t)-1) first = i - 1;
            lit--;  /* the '/' before '*' belongs to the wildcard */
        } else if (p[i] == '{') {
            if (is_ws || p[i - 1] != '/') return -1;
            const char *e = strchr(p + i, '}');
            if (!e || e == p + i + 1 || e - (p + i) > 32) return -1;
            if (e[1] && e[1] != '/') return -1;
            for (const char *c = p + i + 1; c < e; c++)
                if (*c == '{' || *c == '/' || *c == '*') return -1;
            if (first == (size_t)-1) first = i;
            i = (size_t)(e - p);
        } else {
            lit++;
        }
    }
    *litlen = first == (size_t)-1 ? n : first;
    *littotal = lit;
    return 0;
}

/* Matches path against pattern; on success fills params/rest when r is given. */
static int pattern_match(const char *pat, const char *path, acdm_req *r)
{
    const char *p = pat, *s = path;
    const char *pn[MAX_PARAMS], *pv[MAX_PARAMS];
    size_t pnl[MAX_PARAMS], pvl[MAX_PARAMS];
    int np = 0;
    const char *rest = "";
    while (*p) {
        if (p[0] == '/' && p[1] == '*' && !p[2]) {
            if (*s && *s != '/') return 0;
            rest = s;
            s += strlen(s);
            break;
        }
        if (*p == '{') {
            const char *e = strchr(p, '}');
            const char *v = s;
            while (*s && *s != '/') s++;
            if (s == v) return 0;
            if (np < MAX_PARAMS) {
                pn[np] = p + 1;
                pnl[np] = (size_t)(e - p - 1);
                pv[np] = v;
                pvl[np] = (size_t)(s - v);
                np++;
            }
            p = e + 1;
            continue;
        }
        if (*p != *s) return 0;
        p++;
        s++;
    }
    if (*s) return 0;
    if (r) {
        r->nparams = 0;
        for (int i = 0; i < np; i++) {
            r->pname[i] = arena_strndup(r, pn[i], pnl[i]);
            r->pval[i] = arena_strndup(r, pv[i], pvl[i]);
            if (!r->pname[i] || !r->pval[i]) return 0;
            r->nparams++;
        }
        r->rest = *rest ? arena_strndup(r, rest, strlen(rest)) : "";
        if (!r->rest) return 0;
    }
    return 1;
}

static int route_better(const route *a, const route *b)  /* a more specific than b? */
{
    if (!b) return 1;
    if (a->litlen != b->litlen) return a->litlen > b->litlen;
    if (a->prefix != b->prefix) return !a->prefix;
    if (a->littotal != b->littotal) return a->littotal > b->littotal;
    return (a->method != NULL) > (b->method != NULL);
}

static int route_add(acdm_http *h, int is_ws, const char *method, const char *pattern,
                     acdm_route_fn fn, const acdm_ws_handlers *hd, void *user)
{
    size_t litlen, littotal;
    int prefix;
    if (!h || !pattern || (!is_ws && !fn) || (is_ws && !hd)) return ACDM_EINVAL;
    if (pattern_check(pattern, is_ws, &litlen, &littotal, &prefix)) {
        acdm_log(ACDM_LOG_ERR, WHO, "route pattern \"%s\" is invalid: use /a/b, /a/{name} or /a/*",
                 pattern);
        return ACDM_EINVAL;
    }
    if (method && (!*method || strlen(method) > 15)) return ACDM_EINVAL;
    for (int i = 0; i < h->nroutes; i++) {
        route *o = h->routes[i];
        if (o->is_ws != is_ws || strcmp(o->pattern, pattern)) continue;
        if (is_ws || (!o->method && !method) ||
            (o->method && method && !strcasecmp(o->method, method)))
            return ACDM_EEXIST;
    }
    if (h->nroutes == h->cap_routes) {
        int cap = h->cap_routes ? h->cap_routes * 2 : 16;
        route **nr = realloc(h->routes, (size_t)cap * sizeof *nr);
        if (!nr) return ACDM_ENOMEM;
        h->routes = nr;
        h->cap_routes = cap;
    }
    route *rt = calloc(1, sizeof *rt);
    if (!rt) return ACDM_ENOMEM;
    rt->pattern = strdup(pattern);
    rt->method = method ? strdup(method) : NULL;
    if (!rt->pattern || (method && !rt->method)) {
        free(rt->pattern);
        free(rt->method);
        free(rt);
        return ACDM_ENOMEM;
    }
    if (rt->method)
        for (char *c = rt->method; *c; c++)
            if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
    rt->id = ++h->next_id;
    rt->is_ws = is_ws;
    rt->prefix = prefix;
    rt->litlen = litlen;
    rt->littotal = littotal;
    rt->fn = fn;
    if (hd) rt->hd = *hd;
    rt->user = user;
    h->routes[h->nroutes++] = rt;
    return rt->id;
}

int acdm_http_route(acdm_http *h, const char *method, const char *pattern, acdm_route_fn fn,
                    void *user)
{
    return route_add(h, 0, method, pattern, fn, NULL, user);
}

int acdm_http_ws(acdm_http *h, const char *path, const acdm_ws_handlers *hd, void *user)
{
    return route_add(h, 1, NULL, path, NULL, hd, user);
}

static void ws_kill(acdm_ws *ws, int code, const char *reason);

void acdm_http_unroute(acdm_http *h, int route_id)
{
    if (!h) return;
    for (int i = 0; i < h->nroutes; i++) {
        route *rt = h->routes[i];
        if (rt->id != route_id) continue;
        memmove(&h->routes[i], &h->routes[i + 1], (size_t)(h->nroutes - i - 1) * sizeof *h->routes);
        h->nroutes--;
        if (rt->is_ws) {
            for (acdm_ws *ws = h->ws_list, *nx; ws; ws = nx) {
                nx = ws->next;
                if (ws->route_id != route_id || ws->detached) continue;
                ws->detached = 1;
                if (ws->hd.close) ws->hd.close(ws->huser, ws);
                ws_kill(ws, LWS_CLOSE_STATUS_GOINGAWAY, "endpoint removed");
            }
        }
        free(rt->pattern);
        free(rt->method);
        free(rt);
        return;
    }
}

static route *route_find(acdm_http *h, const char *method, const char *path, int is_ws,
                         int *path_matched)
{
    route *best = NULL;
    *path_matched = 0;
    for (int i = 0; i < h->nroutes; i++) {
        route *rt = h->routes[i];
        if (rt->is_ws != is_ws) continue;
        if (!pattern_match(rt->pattern, path, NULL)) continue;
        *path_matched = 1;
        if (rt->method && strcmp(rt->method, method)) continue;
        if (route_better(rt, best)) best = rt;
    }
    return best;
}

/* ---------------------------------------------------------------- request accessors */

const char *acdm_req_method(const acdm_req *r) { return r->method ? r->method : ""; }
const char *acdm_req_path(const acdm_req *r) { return r->path ? r->path : ""; }
const char *acdm_req_rest(const acdm_req *r) { return r->rest ? r->rest : ""; }
const char *acdm_req_query_string(const acdm_req *r) { return r->query_string; }
int acdm_req_alive(const acdm_req *r) { return r->wsi != NULL; }

const char *acdm_req_param(const acdm_req *r, const char *name)
{
    for (int i = 0; name && i < r->nparams; i++)
        if (!strcmp(r->pname[i], name)) return r->pval[i];
    return NULL;
}

const char *acdm_req_query(const acdm_req *r, const char *name)
{
    for (int i = 0; name && i < r->nquery; i++)
        if (!strcmp(r->qname[i], name)) return r->qval[i];
    return NULL;
}

const char *acdm_req_body(const acdm_req *r, size_t *len)
{
    if (len) *len = r->body ? r->body_len : 0;
    return r->body && r->body_len ? r->body : "";
}

const char *acdm_req_header(acdm_req *r, const char *name)
{
    if (!name || !*name) return NULL;
    for (hdrc *c = r->hdrs; c; c = c->next)
        if (!strcasecmp(c->name, name)) return c->value;
    if (!r->wsi) return NULL;
    acdm_http *h = r->srv;
    size_t nl = strlen(name);
    if (nl > 120) return NULL;
    char lname[128];
    for (size_t i = 0; i < nl; i++) {
        char c = name[i];
        lname[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    lname[nl] = '\0';
    int tok = -1;
    for (int i = 0; i < h->ntoks; i++)
        if (h->toks[i].len == nl && !memcmp(h->toks[i].name, lname, nl)) {
            tok = h->toks[i].token;
            break;
        }
    char *val = NULL;
    if (tok >= 0) {
        int n = lws_hdr_total_length(r->wsi, (enum lws_token_indexes)tok);
        if (n <= 0) return NULL;
        val = arena_alloc(r, (size_t)n + 1);
        if (!val || lws_hdr_copy(r->wsi, val, n + 1, (enum lws_token_indexes)tok) < 0)
            return NULL;
    } else {
        lname[nl] = ':';
        lname[nl + 1] = '\0';
        int n = lws_hdr_custom_length(r->wsi, lname, (int)nl + 1);
        if (n < 0) return NULL;
        val = arena_alloc(r, (size_t)n + 1);
        if (!val || lws_hdr_custom_copy(r->wsi, val, n + 1, lname, (int)nl + 1) < 0)
            return NULL;
        lname[nl] = '\0';
    }
    hdrc *c = arena_alloc(r, sizeof *c);
    char *cn = arena_strndup(r, lname, nl);
    if (!c || !cn) return val;
    c->name = cn;
    c->value = val;
    c->next = r->hdrs;
    r->hdrs = c;
    return val;
}

const char *acdm_req_bearer(acdm_req *r)
{
    const char *a = acdm_req_header(r, "authorization");
    if (!a || strncasecmp(a, "Bearer ", 7)) return NULL;
    a += 7;
    while (*a == ' ') a++;
    return *a ? a : NULL;
}

const char *acdm_req_peer(acdm_req *r)
{
    if (r->peer) return r->peer;
    if (!r->wsi) return "";
    char buf[64];
    if (!lws_get_peer_simple(r->wsi, buf, sizeof buf)) return "";
    r->peer = arena_strndup(r, buf, strlen(buf));
    return r->peer ? r->peer : "";
}

/* ---------------------------------------------------------------- raw query, URL, header list */

/* Appends s[0..n) to out, percent-encoding every byte but RFC 3986's unreserved ones (and
 * '/' when keep_slash). Returns the new length. out must hold 3 * n more bytes. */
static size_t pct_encode(char *out, size_t o, const char *s, size_t n, int keep_slash)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hx[c >> 4];
            out[o++] = hx[c & 15];
        }
    }
    return o;
}

/* lws 4.1 percent-decodes the request URI while it parses it and keeps no copy of the bytes as
 * sent. What it does keep is exact per argument: it splits only at a literal '&' or ';', turns
 * a literal '+' into a space and %2B into '+', and a %26 stays inside its value. So the query
 * is rebuilt from the arguments, each name and value percent-encoded again: every argument
 * decodes to exactly what the client sent, in the client's order. */
const char *acdm_req_query_raw(acdm_req *r)
{
    if (r->qraw_done) return r->query_raw;
    r->qraw_done = 1;
    if (!r->nquery) return NULL;
    size_t need = 1;
    for (int i = 0; i < r->nquery; i++)
        need += 3 * (strlen(r->qname[i]) + strlen(r->qval[i])) + 2;
    char *q = arena_alloc(r, need);
    if (!q) return NULL;
    size_t o = 0;
    for (int i = 0; i < r->nquery; i++) {
        if (i) q[o++] = '&';
        o = pct_encode(q, o, r->qname[i], strlen(r->qname[i]), 0);
        if (r->qval[i] != no_equals) {
            q[o++] = '=';
            o = pct_encode(q, o, r->qval[i], strlen(r->qval[i]), 0);
        }
    }
    q[o] = '\0';
    r->query_raw = q;
    return q;
}

const char *acdm_req_url(acdm_req *r)
{
    if (r->url_done) return r->url;
    r->url_done = 1;
    const char *host = acdm_req_header(r, "host");
    const char *path = acdm_req_path(r);
    const char *q = acdm_req_query_raw(r);
    size_t hl = host ? strlen(host) : 0, pl = strlen(path), ql = q ? strlen(q) : 0;
    char *u = arena_alloc(r, 7 + hl + 3 * pl + 1 + ql + 1);
    if (!u) return NULL;
    memcpy(u, "http://", 7);
    size_t o = 7;
    if (hl) { memcpy(u + o, host, hl); o += hl; }
    o = pct_encode(u, o, path, pl, 1);
    if (q) {
        u[o++] = '?';
        memcpy(u + o, q, ql);
        o += ql;
    }
    u[o] = '\0';
    r->url = u;
    return u;
}

/* Request headers lws 4.1 has no token for, looked up by name: lws 4.1 keeps custom headers
 * (LWS_WITH_CUSTOM_HEADERS) but offers no way to list them (lws_hdr_custom_name_foreach came
 * in 4.2), so acdm_req_headers can only offer the ones it asks for. Signatures, tokens and
 * ids of the webhooks channels receive, and the usual proxy and tracing headers. */
static const char *const custom_headers[] = {
    "x-hub-signature-256", "x-hub-signature", "x-twilio-signature", "x-twilio-idempotency-token",
    "x-twilio-email-event-webhook-signature", "x-twilio-email-event-webhook-timestamp",
    "x-signature", "x-signature-256", "x-webhook-signature", "x-webhook-timestamp",
    "x-timestamp", "x-request-timestamp", "x-api-key", "x-auth-signature",
    "x-slack-signature", "x-slack-request-timestamp", "stripe-signature",
    "x-line-signature", "x-telegram-bot-api-secret-token", "messagebird-signature",
    "messagebird-signature-jwt", "messagebird-request-timestamp", "x-messagebird-signature",
    "x-vonage-signature", "x-nexmo-signature", "x-mailgun-signature", "x-postmark-signature",
    "x-amz-sns-message-type", "x-amz-sns-message-id", "x-amz-sns-topic-arn",
    "x-github-event", "x-github-delivery", "x-gitlab-token", "x-gitlab-event",
    "idempotency-key", "x-idempotency-key", "x-request-id", "x-correlation-id",
    "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "forwarded",
    "traceparent", "tracestate", "x-requested-with", "x-csrf-token", "x-http-method-override",
    "x-kannel-from", "x-kannel-to", "x-kannel-time", "x-kannel-smsc", "x-kannel-smsc-id",
    "x-kannel-coding", "x-kannel-charset", "x-kannel-udh", "x-kannel-dlr-mask",
    "x-kannel-dlr-url", "x-kannel-service", "x-kannel-account", "x-kannel-binfo",
    "x-kannel-mclass", "x-kannel-mwi", "x-kannel-pid", "x-kannel-alt-dcs",
    "x-kannel-compress", "x-kannel-validity", "x-kannel-deferred", "x-kannel-boxc-id",
    "x-kannel-meta-data", "x-kannel-priority", "x-kannel-id",
};

/* custom_headers with their colon, as lws_hdr_custom_length wants the name ("x-foo:") */
static char custom_colon[sizeof custom_headers / sizeof *custom_headers][48];
static int custom_colon_len[sizeof custom_headers / sizeof *custom_headers];
static pthread_once_t custom_once = PTHREAD_ONCE_INIT;

static void custom_colon_init(void)
{
    for (size_t i = 0; i < sizeof custom_headers / sizeof *custom_headers; i++)
        custom_colon_len[i] = snprintf(custom_colon[i], sizeof custom_colon[i], "%s:", custom_headers[i]);
}

/* Straight from lws (not through acdm_req_header's name lookups: this asks for every header) */
size_t acdm_req_headers(acdm_req *r, const acdm_hdr **out)
{
    if (out) *out = NULL;
    if (!r->hlist_done && r->wsi) {
        r->hlist_done = 1;
        pthread_once(&custom_once, custom_colon_init);
        acdm_http *h = r->srv;
        size_t ncust = sizeof custom_headers / sizeof *custom_headers;
        acdm_hdr *list = arena_alloc(r, sizeof *list * ((size_t)h->ntoks + ncust));
        if (!list) return 0;
        size_t n = 0;
        for (int i = 0; i < h->ntoks; i++) {
            enum lws_token_indexes tok = (enum lws_token_indexes)h->toks[i].token;
            int len = lws_hdr_total_length(r->wsi, tok);
            if (len <= 0) continue;
            char *v = arena_alloc(r, (size_t)len + 1);
            char *nm = arena_strndup(r, h->toks[i].name, h->toks[i].len);
            if (!v || !nm || lws_hdr_copy(r->wsi, v, len + 1, tok) < 0) continue;
            list[n].name = nm;
            list[n].value = v;
            n++;
        }
        for (size_t i = 0; i < ncust; i++) {
            int len = lws_hdr_custom_length(r->wsi, custom_colon[i], custom_colon_len[i]);
            if (len <= 0) continue;
            char *v = arena_alloc(r, (size_t)len + 1);
            if (!v || lws_hdr_custom_copy(r->wsi, v, len + 1, custom_colon[i], custom_colon_len[i]) < 0)
                continue;
            list[n].name = custom_headers[i];
            list[n].value = v;
            n++;
        }
        r->hlist = list;
        r->nhlist = n;
    }
    if (out) *out = r->hlist;
    return r->nhlist;
}

/* ---------------------------------------------------------------- replies */

static int status_ok(int s) { return s >= 100 && s <= 599; }

static const char *const class_names[ACDM_HTTP_CLASS_COUNT] = {"api", "channels", "metrics", "ui"};

const char *acdm_http_class_name(int cls)
{
    return cls >= 0 && cls < ACDM_HTTP_CLASS_COUNT ? class_names[cls] : "";
}

static int path_class(const char *path)
{
    if (!path) return ACDM_HTTP_CLASS_UI;
    if (!strncmp(path, "/api/", 5)) return ACDM_HTTP_CLASS_API;
    if (!strncmp(path, "/channels/", 10)) return ACDM_HTTP_CLASS_CHANNELS;
    if (!strcmp(path, "/metrics")) return ACDM_HTTP_CLASS_METRICS;
    return ACDM_HTTP_CLASS_UI;
}

/* Whether the listener that accepted wsi serves path (its "routes"; none: everything). */
static bool listener_serves(const acdm_http *h, struct lws *wsi, const char *path)
{
    const struct lws_vhost *vh = lws_get_vhost(wsi);
    const struct listener *ls = NULL;
    for (int i = 0; i < h->n_lst && !ls; i++)
        if (h->lst[i].vh == vh) ls = &h->lst[i];
    if (!ls || !ls->n_routes || !path) return true;
    bool ws = !strcmp(path, "/ws") || !strncmp(path, "/ws/", 4);
    for (size_t i = 0; i < ls->n_routes; i++) {
        const char *r = ls->routes[i];
        if (r[0] == '/') {
            size_t n = strlen(r);
            if (!strncmp(path, r, n)) return true;
            if (n > 1 && r[n - 1] == '/' && strlen(path) == n - 1 && !strncmp(path, r, n - 1)) return true;
        } else if (!strcmp(r, "ws")) {
            if (ws) return true;
        } else if (!strcmp(r, "ui")) {
            if (!ws && path_class(path) == ACDM_HTTP_CLASS_UI) return true;
        } else if (!strcmp(r, "api")) {
            if (path_class(path) == ACDM_HTTP_CLASS_API) return true;
        } else if (!strcmp(r, "channels")) {
            if (path_class(path) == ACDM_HTTP_CLASS_CHANNELS) return true;
        } else if (!strcmp(r, "metrics")) {
            if (path_class(path) == ACDM_HTTP_CLASS_METRICS) return true;
        }
    }
    return false;
}

static void count_response(acdm_http *h, const char *path, int status)
{
    if (h && status_ok(status)) h->responses[path_class(path)][status - 100]++;
}

uint64_t acdm_http_responses(const acdm_http *h, int cls, int status)
{
    if (!h || cls < 0 || cls >= ACDM_HTTP_CLASS_COUNT || !status_ok(status)) return 0;
    return h->responses[cls][status - 100];
}

size_t acdm_http_ws_open(const acdm_http *h, uint64_t *opened)
{
    size_t n = 0;
    if (opened) *opened = h ? h->ws_opened : 0;
    for (const acdm_ws *ws = h ? h->ws_list : NULL; ws; ws = ws->next)
        if (!ws->detached) n++;
    return n;
}

/* Builds the response (headers + body) into r->out. Needs a live wsi. */
static int build_response(acdm_req *r, int status, const char *ctype, const char *body,
                          size_t len, int conn_close)
{
    size_t extra = 0;
    for (xhdr *x = r->xhdrs; x; x = x->next) extra += strlen(x->name) + strlen(x->value) + 8;
    if (out_reserve(r, LWS_PRE + HDR_SPACE + extra + len)) return -1;
    unsigned char *start = r->out + LWS_PRE, *p = start, *end = start + HDR_SPACE + extra;
    if (lws_add_http_common_headers(r->wsi, (unsigned)status, ctype, (lws_filepos_t)len, &p, end))
        return -1;
    count_response(r->srv, r->path, status);
    if (!r->has_cc &&
        lws_add_http_header_by_token(r->wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    for (xhdr *x = r->xhdrs; x; x = x->next) {
        char nm[136];
        snprintf(nm, sizeof nm, "%s:", x->name);
        if (lws_add_http_header_by_name(r->wsi, (const unsigned char *)nm,
                                        (const unsigned char *)x->value, (int)strlen(x->value),
                                        &p, end))
            return -1;
    }
    if ((conn_close || r->client_close) &&
        lws_add_http_header_by_token(r->wsi, WSI_TOKEN_CONNECTION,
                                     (const unsigned char *)"close", 5, &p, end))
        return -1;
    if (lws_finalize_http_header(r->wsi, &p, end)) return -1;
    if (r->method && !strcmp(r->method, "HEAD")) len = 0;   /* Content-Length stays */
    if (len) memcpy(p, body, len);
    r->out_len = (size_t)(p - start) + len;
    return 0;
}

/* Writes r's built response on its wsi and finishes the transaction. Returns the callback's
 * return value (-1 = close the connection: also when no response could be built). Frees r. */
static int write_response(acdm_req *r, int conn_close)
{
    struct lws *wsi = r->wsi;
    if (!r->out_len) {
        req_free(r);
        return -1;
    }
    int n = lws_write(wsi, r->out + LWS_PRE, r->out_len, LWS_WRITE_HTTP_FINAL);
    if (r->client_close) conn_close = 1;
    req_free(r);
    if (n < 0 || conn_close) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void acdm_http_add_header(acdm_req *r, const char *name, const char *value)
{
    if (!r || r->replied || !name || !value || !*name || strlen(name) > 120) return;
    if (strchr(name, ':') || strpbrk(value, "\r\n") || strpbrk(name, "\r\n ")) {
        acdm_log(ACDM_LOG_WARN, WHO, "refusing response header \"%s\" with a bad character", name);
        return;
    }
    xhdr *x = arena_alloc(r, sizeof *x);
    const char *n = arena_strndup(r, name, strlen(name));
    const char *v = arena_strndup(r, value, strlen(value));
    if (!x || !n || !v) return;
    if (!strcasecmp(name, "cache-control")) r->has_cc = 1;
    x->name = n;
    x->value = v;
    x->next = NULL;
    xhdr **pp = &r->xhdrs;
    while (*pp) pp = &(*pp)->next;
    *pp = x;
}

void acdm_http_reply(acdm_req *r, int status, const char *content_type, const char *body,
                     size_t len)
{
    if (!r) return;
    if (r->replied || r->upgrade) {
        acdm_log(ACDM_LOG_ERR, WHO, "second reply to %s %s ignored", acdm_req_method(r),
                 acdm_req_path(r));
        return;
    }
    if (!r->wsi) {          /* client gone: drop */
        req_free(r);
        return;
    }
    if (!status_ok(status)) status = 500;
    if (!body) len = 0;
    if (build_response(r, status, content_type, body, len, 0)) {
        acdm_log(ACDM_LOG_ERR, WHO, "cannot build the response to %s %s", acdm_req_method(r),
                 acdm_req_path(r));
        r->out_len = 0;
    }
    r->replied = 1;
    if (r->in_dispatch) return;     /* dispatch writes it on return */
    if (lws_get_network_wsi(r->wsi) != r->wsi) {
        lws_callback_on_writable(r->wsi);   /* an h2 stream writes only when it has credit */
        return;
    }
    /* A deferred reply (after a commit, a plugin's answer...) is written now, on the loop
     * thread, instead of asking lws for a WRITEABLE callback first: that saves a POLLOUT round
     * (poll changes are epoll_ctl calls, dear on a VM) and a loop pass per request. A reply is
     * small and the client waits for it, so the send rarely blocks; when it does, lws keeps the
     * rest and finishes it on POLLOUT itself (and defers the transaction's end until then). */
    struct lws *wsi = r->wsi;
    if (write_response(r, 0)) {
        /* to close: at once when everything went out; lws 4.1's asynchronous kill (a zero
         * timeout) did not fire for a deferred reply, leaving a "Connection: close" client
         * waiting. With bytes still buffered, lws gets a few seconds to send them. */
        if (lws_partial_buffered(wsi)) lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
        else lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
    }
}

void acdm_http_reply_file(acdm_req *r, const char *path, const char *content_type)
{
    if (!r) return;
    if (r->replied || r->upgrade || !r->in_dispatch || !path) {
        acdm_log(ACDM_LOG_ERR, WHO, "file reply to %s %s outside its route call", acdm_req_method(r),
                 acdm_req_path(r));
        if (!r->replied && !r->upgrade) acdm_http_problem(r, 500, "Internal Server Error", "file reply not possible here");
        return;
    }
    r->file_path = arena_strndup(r, path, strlen(path));
    r->file_type = arena_strndup(r, content_type ? content_type : "application/octet-stream",
                                 strlen(content_type ? content_type : "application/octet-stream"));
    if (!r->file_path || !r->file_type) {
        r->file_path = NULL;
        acdm_http_problem(r, 500, "Internal Server Error", "out of memory");
        return;
    }
    r->replied = 1;
}

/* Streams the file of an acdm_http_reply_file (lws reads and sends it in chunks) with the
 * headers the route added. Frees r. Returns the lws callback's value. */
static int serve_reply_file(acdm_req *r)
{
    struct lws *wsi = r->wsi;
    char path[4096], type[160], hdrs[2048];
    snprintf(path, sizeof path, "%s", r->file_path);
    snprintf(type, sizeof type, "%s", r->file_type);
    size_t hl = 0;
    for (const xhdr *x = r->xhdrs; x; x = x->next) {
        int n = snprintf(hdrs + hl, sizeof hdrs - hl, "%s: %s\r\n", x->name, x->value);
        if (n < 0 || (size_t)n >= sizeof hdrs - hl) break;
        hl += (size_t)n;
    }
    if (!r->has_cc) {
        int n = snprintf(hdrs + hl, sizeof hdrs - hl, "cache-control: no-store\r\n");
        if (n > 0 && (size_t)n < sizeof hdrs - hl) hl += (size_t)n;
    }
    count_response(r->srv, r->path, 200);
    req_free(r);
    int s = lws_serve_http_file(wsi, path, type, hdrs, (int)hl);
    if (s < 0) return -1;
    if (s > 0) return lws_http_transaction_completed(wsi) ? -1 : 0;
    return 0;
}

void acdm_http_reply_json(acdm_req *r, int status, json_t *obj)
{
    /* most replies are small: serialised on the stack, no growing heap buffer */
    char small[2048], *heap;
    const char *s = acdm_json_text(obj, small, sizeof small, &heap);
    json_decref(obj);
    if (!s) s = "null";
    acdm_http_reply(r, status, "application/json", s, strlen(s));
    free(heap);
}

static json_t *problem_json(int status, const char *title, const char *detail)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string("about:blank"));
    json_object_set_new(o, "title", json_string(title ? title : ""));
    json_object_set_new(o, "status", json_integer(status));
    if (detail) json_object_set_new(o, "detail", json_string(detail));
    return o;
}

void acdm_http_problem(acdm_req *r, int status, const char *title, const char *fmt, ...)
{
    char detail[1024];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    json_t *o = problem_json(status, title, fmt ? detail : NULL);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    acdm_http_reply(r, status, "application/problem+json", s ? s : "{}", s ? strlen(s) : 2);
    free(s);
}

/* An immediate error reply from inside an lws callback (404/405/413/...). Returns the
 * callback's return value. */
static int reply_now(acdm_req *r, int status, const char *title, const char *detail,
                     int conn_close)
{
    json_t *o = problem_json(status, title, detail);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int rc = build_response(r, status, "application/problem+json", s ? s : "{}",
                            s ? strlen(s) : 2, conn_close);
    free(s);
    if (rc) {
        req_free(r);
        return -1;
    }
    r->replied = 1;
    return write_response(r, conn_close);
}

/* ---------------------------------------------------------------- static files */

static const char *mime_of(const char *path)
{
    static const struct { const char *ext, *type; } m[] = {
        {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"}, {".svg", "image/svg+xml"},
        {".json", "application/json"}, {".png", "image/png"}, {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"}, {".woff2", "font/woff2"},
        {".webmanifest", "application/manifest+json"}};
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/')) return NULL;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcasecmp(dot, m[i].ext)) return m[i].type;
    return NULL;
}

/* Serves a file under ui_dir. Returns 1 if handled (rc set), 0 if not found. */
static int serve_static(acdm_http *h, acdm_req *r, int *rc)
{
    const char *path = r->path;
    if (!h->ui_dir || path[0] != '/') return 0;
    /* refuse any dot-dot segment or backslash outright; realpath below is the real guard */
    if (strstr(path, "/..") || strchr(path, '\\')) return 0;
    char want[PATH_MAX], real[PATH_MAX];
    size_t pl = strlen(path);
    int n = snprintf(want, sizeof want, "%s%s%s", h->ui_dir, path,
                     path[pl - 1] == '/' ? "index.html" : "");
    if (n < 0 || (size_t)n >= sizeof want) return 0;
    if (!realpath(want, real)) return 0;
    if (strncmp(real, h->ui_dir, h->ui_dir_len) || real[h->ui_dir_len] != '/') return 0;
    struct stat st;
    if (stat(real, &st) || !S_ISREG(st.st_mode)) return 0;
    const char *mt = mime_of(real);
    if (!mt) return 0;
    /* the UI's security headers: scripts and styles only from its own files (no inline script,
     * no eval), never framed by another page (clickjacking), no referrer to other sites */
    char host[256] = "";
    const char *hh = acdm_req_header(r, "host");
    for (size_t i = 0; hh && hh[i] && i < sizeof host - 1; i++) {
        char c = hh[i];
        if (!(isalnum((unsigned char)c) || c == '.' || c == ':' || c == '-' || c == '[' || c == ']')) {
            host[0] = 0;
            break;
        }
        host[i] = c;
        host[i + 1] = 0;
    }
    char hdrs[1536];
    int hl = snprintf(hdrs, sizeof hdrs,
                      "cache-control: no-cache\r\n"
                      "content-security-policy: default-src 'self'; script-src 'self'; style-src 'self'; "
                      "img-src 'self' data:; connect-src 'self'%s%s%s%s%s%s; object-src 'none'; base-uri 'none'; "
                      "form-action 'self'; frame-ancestors 'none'\r\n"
                      "x-frame-options: DENY\r\n"
                      "referrer-policy: no-referrer\r\n"
                      "x-content-type-options: nosniff\r\n",
                      host[0] ? " ws://" : "", host, host[0] ? " wss://" : "", host,
                      h->ui_connect ? " " : "", h->ui_connect ? h->ui_connect : "");
    if (hl < 0 || (size_t)hl >= sizeof hdrs) hl = snprintf(hdrs, sizeof hdrs, "cache-control: no-cache\r\n");
    struct lws *wsi = r->wsi;
    count_response(h, r->path, 200);
    req_free(r);
    int s = lws_serve_http_file(wsi, real, mt, hdrs, hl);
    if (s < 0) *rc = -1;
    else if (s > 0) *rc = lws_http_transaction_completed(wsi) ? -1 : 0;
    else *rc = 0;
    return 1;
}

/* ---------------------------------------------------------------- HTTP dispatch */

static int fill_request(acdm_http *h, acdm_req *r, struct lws *wsi)
{
    char *uri = NULL;
    int ulen = 0;
    int m = lws_http_get_uri_and_method(wsi, &uri, &ulen);
    if (m < 0 || !uri) return -1;
    r->method = method_names[m < (int)(sizeof method_names / sizeof *method_names) ? m : 0];
    r->path = arena_strndup(r, uri, (size_t)ulen);
    if (!r->path) return -1;
    /* "Connection: close" (a token of the header's list): the reply says so and the
     * connection is closed after it (RFC 9112 9.6), so the client is not left waiting */
    char conn[128];
    if (lws_hdr_copy(wsi, conn, sizeof conn, WSI_TOKEN_CONNECTION) > 0) {
        for (char *save = NULL, *t = strtok_r(conn, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ' || *t == '\t') t++;
            size_t n = strlen(t);
            while (n && (t[n - 1] == ' ' || t[n - 1] == '\t')) n--;
            if (n == 5 && !strncasecmp(t, "close", 5)) r->client_close = 1;
        }
    }
    (void)h;
    return 0;
}

static void fill_query(acdm_req *r, struct lws *wsi)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (total <= 0) return;
    char *qs = arena_alloc(r, (size_t)total + 64 + 1);
    if (!qs) return;
    size_t qlen = 0;
    int cap = 8;
    const char **qn = arena_alloc(r, sizeof(char *) * (size_t)cap * 2);
    if (!qn) return;
    int nq = 0;
    for (int f = 0; f < 64; f++) {
        int fl = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, f);
        if (fl <= 0) break;
        char *frag = arena_alloc(r, (size_t)fl + 1);
        if (!frag || lws_hdr_copy_fragment(wsi, frag, fl + 1, WSI_TOKEN_HTTP_URI_ARGS, f) < 0)
            break;
        if (qlen + (size_t)fl + 1 <= (size_t)total + 64) {
            if (qlen) qs[qlen++] = '&';
            memcpy(qs + qlen, frag, (size_t)fl);
            qlen += (size_t)fl;
        }
        if (nq == cap) {
            const char **nn = arena_alloc(r, sizeof(char *) * (size_t)cap * 4);
            if (!nn) break;
            memcpy(nn, qn, sizeof(char *) * (size_t)nq);
            memcpy(nn + cap * 2, qn + cap, sizeof(char *) * (size_t)nq);
            qn = nn;
            cap *= 2;
        }
        char *eq = strchr(frag, '=');
        const char *val = no_equals;
        if (eq) {
            *eq = '\0';
            val = eq + 1;
        }
        qn[nq] = frag;
        qn[cap + nq] = val;
        nq++;
    }
    qs[qlen] = '\0';
    r->query_string = qs;
    r->qname = qn;
    r->qval = qn + cap;
    r->nquery = nq;
}

/* Routes a complete request. Returns the lws callback's return value. */
static int dispatch(acdm_http *h, acdm_req *r)
{
    int matched = 0;
    r->dispatched = 1;
    route *rt = route_find(h, r->method, r->path, 0, &matched);
    if (!rt && !strcmp(r->method, "HEAD")) rt = route_find(h, "GET", r->path, 0, &matched);
    if (rt) {
        if (!pattern_match(rt->pattern, r->path, r))
            return reply_now(r, 500, "Internal Server Error", "out of memory", 1);
        r->in_dispatch = 1;
        rt->fn(rt->user, r);    /* may reply (r freed below) or keep r for later */
        if (!r->replied) {
            r->in_dispatch = 0;
            return 0;           /* async: acdm_http_reply writes it when it comes */
        }
        if (r->file_path) return serve_reply_file(r);
        return write_response(r, 0);
    }
    if (matched) {
        char allow[256] = "";
        size_t al = 0;
        for (int i = 0; i < h->nroutes; i++) {
            route *o = h->routes[i];
            if (o->is_ws || !o->method || !pattern_match(o->pattern, r->path, NULL)) continue;
            if (strstr(allow, o->method)) continue;
            int n = snprintf(allow + al, sizeof allow - al, "%s%s", al ? ", " : "", o->method);
            if (n < 0 || (size_t)n >= sizeof allow - al) break;
            al += (size_t)n;
        }
        acdm_http_add_header(r, "Allow", allow);
        char d[300];
        snprintf(d, sizeof d, "%s is not allowed on %s; allowed: %s", r->method, r->path, allow);
        return reply_now(r, 405, "Method Not Allowed", d, 0);
    }
    if (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD")) {
        int rc = 0;
        if (serve_static(h, r, &rc)) return rc;
    }
    char d[300];
    snprintf(d, sizeof d, "no resource at %.250s", r->path);
    return reply_now(r, 404, "Not Found", d, 0);
}

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int http_begin(acdm_http *h, struct lws *wsi, struct pss *pss)
{
    if (pss->req) req_free(pss->req);   /* leftover: should not happen */
    acdm_req *r = req_new(h, wsi, pss);
    if (!r) return -1;
    pss->req = r;
    if (fill_request(h, r, wsi)) {
        req_free(r);
        return -1;
    }
    fill_query(r, wsi);
    /* sizes: the URL, a bearer token, the other headers (what lws keeps of them) */
    static const int uri_toks[] = {WSI_TOKEN_GET_URI, WSI_TOKEN_POST_URI, WSI_TOKEN_OPTIONS_URI,
                                   WSI_TOKEN_PUT_URI, WSI_TOKEN_PATCH_URI, WSI_TOKEN_DELETE_URI,
                                   WSI_TOKEN_HEAD_URI, WSI_TOKEN_HTTP_URI_ARGS};
    long uri = 0, all = 0;
    for (size_t i = 0; i < sizeof uri_toks / sizeof *uri_toks; i++) {
        int n = lws_hdr_total_length(wsi, (enum lws_token_indexes)uri_toks[i]);
        if (n > 0) uri += n;
    }
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        int n = lws_hdr_total_length(wsi, (enum lws_token_indexes)t);
        if (n > 0) all += n;
    }
    long auth = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (uri > ACDM_HTTP_URI_MAX) {
        char d[160];
        snprintf(d, sizeof d, "the URL is %ld bytes long; at most %d are accepted", uri, ACDM_HTTP_URI_MAX);
        return reply_now(r, 414, "URI Too Long", d, 1);
    }
    if (auth > ACDM_HTTP_HEADERS_MAX) {
        acdm_http_add_header(r, "WWW-Authenticate", "Bearer");
        char d[160];
        snprintf(d, sizeof d, "the Authorization header is %ld bytes long; a token of at most %d is accepted",
                 auth, ACDM_HTTP_HEADERS_MAX);
        return reply_now(r, 401, "Unauthorized", d, 1);
    }
    if (all - uri > ACDM_HTTP_HEADERS_MAX) {
        char d[160];
        snprintf(d, sizeof d, "the request headers are %ld bytes long; at most %d are accepted", all - uri,
                 ACDM_HTTP_HEADERS_MAX);
        return reply_now(r, 431, "Request Header Fields Too Large", d, 1);
    }
    if (!listener_serves(h, wsi, r->path)) {
        /* not on this listener (its "routes"): as if there were no such resource */
        char d[300];
        snprintf(d, sizeof d, "no resource at %.250s", r->path);
        return reply_now(r, 404, "Not Found", d, 1);
    }
    char cl[32];
    int has_cl = lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    if (has_cl) {
        char *e;
        errno = 0;
        unsigned long long v = strtoull(cl, &e, 10);
        if (errno || *e || e == cl || cl[0] < '0' || cl[0] > '9')
            return reply_now(r, 400, "Bad Request", "Content-Length: expected a non-negative number of bytes", 1);
        if (v > h->body_limit) {
            char d[200];
            snprintf(d, sizeof d, "the request body (%llu bytes) exceeds the limit of %zu bytes",
                     v, h->body_limit);
            return reply_now(r, 413, "Content Too Large", d, 1);
        }
        if (v > 0) {
            if (h->early) {
                /* authorisation on the headers, before the body is read */
                r->in_dispatch = 1;
                int stop = h->early(h->early_user, r);
                r->in_dispatch = 0;
                if (stop || r->replied) {
                    if (!r->replied) return reply_now(r, 403, "Forbidden", "refused", 1);
                    return write_response(r, 1);
                }
            }
            if (body_reserve(r, (size_t)v)) return reply_now(r, 500, "Internal Server Error",
                                                             "out of memory", 1);
            r->content_length_known = 1;
            r->t_begin = mono_ms();
            return 0;           /* wait for the body */
        }
    } else if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 &&
               lws_get_network_wsi(wsi) == wsi) {
        return reply_now(r, 411, "Length Required", "send the body with a Content-Length", 1);
    } else if (lws_get_network_wsi(wsi) != wsi &&
               (!strcmp(r->method, "POST") || !strcmp(r->method, "PUT") ||
                !strcmp(r->method, "PATCH"))) {
        return 0;               /* h2: the body (if any) ends with the stream */
    }
    return dispatch(h, r);
}

/* A request whose body is too slow gets 408 and its connection is closed (from the timer:
 * written now, as a deferred reply is). */
static void body_timeout(acdm_req *r, const char *why)
{
    struct lws *wsi = r->wsi;
    acdm_log(ACDM_LOG_NOTICE, WHO, "%s %s from %s: %s; answered 408 and closed", r->method, r->path,
             acdm_req_peer(r), why);
    json_t *o = problem_json(408, "Request Timeout", why);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int rc = build_response(r, 408, "application/problem+json", s ? s : "{}", s ? strlen(s) : 2, 1);
    free(s);
    r->replied = 1;
    r->dispatched = 1;
    if (!rc && r->out_len) lws_write(wsi, r->out + LWS_PRE, r->out_len, LWS_WRITE_HTTP_FINAL);
    req_free(r);
    lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

static void on_sweep(uv_timer_t *t)
{
    acdm_http *h = t->data;
    int64_t now = mono_ms();
    for (acdm_req *r = h->live, *next; r; r = next) {
        next = r->next;
        if (r->dispatched || r->replied || !r->wsi || !r->t_begin || !r->content_length_known) continue;
        int64_t el = now - r->t_begin;
        char why[200];
        if (el > (int64_t)ACDM_HTTP_BODY_S * 1000) {
            snprintf(why, sizeof why, "the request body did not arrive within %d s", ACDM_HTTP_BODY_S);
            body_timeout(r, why);
        } else if (el > (int64_t)ACDM_HTTP_RATE_GRACE_S * 1000 &&
                   (int64_t)r->body_len * 1000 < (el - ACDM_HTTP_RATE_GRACE_S * 1000) * ACDM_HTTP_MIN_RATE) {
            snprintf(why, sizeof why, "the request body arrives slower than %d bytes/s (%zu bytes in %lld ms)",
                     ACDM_HTTP_MIN_RATE, r->body_len, (long long)el);
            body_timeout(r, why);
        }
    }
    if (now - h->last_log_flush >= 10000) {
        h->last_log_flush = now;
        acdm_log_flush_repeats();
    }
}

void acdm_http_set_early(acdm_http *h, acdm_http_early_fn fn, void *user)
{
    h->early = fn;
    h->early_user = user;
}

/* ---------------------------------------------------------------- connections per address */

static struct conn_count *cc_find(acdm_http *h, const char *addr, int add)
{
    for (int i = 0; i < h->n_cc; i++)
        if (!strcmp(h->cc[i].addr, addr)) return &h->cc[i];
    if (!add) return NULL;
    if (h->n_cc == h->cap_cc) {
        int cap = h->cap_cc ? h->cap_cc * 2 : 64;
        struct conn_count *n = realloc(h->cc, (size_t)cap * sizeof *n);
        if (!n) return NULL;
        h->cc = n;
        h->cap_cc = cap;
    }
    struct conn_count *c = &h->cc[h->n_cc++];
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    c->n = 0;
    return c;
}

static void cc_drop(acdm_http *h, struct conn_count *c)
{
    if (--c->n > 0) return;
    *c = h->cc[--h->n_cc];
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t n)
{
    out[0] = 0;
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)n);
    else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)n);
        else
            inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)n);
    }
}

/* Whether descriptor fd still is a connection from addr (a closed one was not uncounted: lws
 * tells its user of no close before the descriptor is gone; the count is checked lazily). */
static int fd_still(int fd, const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl)) return 0;
    char a[48];
    addr_text(&ss, a, sizeof a);
    return !strcmp(a, addr);
}

/* The accept filter: 0 to keep the new connection fd from ss, 1 to close it. */
static int conn_filter(acdm_http *h, int fd, const struct sockaddr_storage *ss)
{
    if (fd < 0) return 0;
    if (fd >= h->n_fd_addr) {
        int n = h->n_fd_addr ? h->n_fd_addr : 1024;
        while (n <= fd) n *= 2;
        char (*t)[48] = realloc(h->fd_addr, (size_t)n * sizeof *t);
        if (!t) return 0;
        memset(t + h->n_fd_addr, 0, (size_t)(n - h->n_fd_addr) * sizeof *t);
        h->fd_addr = t;
        h->n_fd_addr = n;
    }
    /* the descriptor's previous connection is closed (the number is reused) */
    if (h->fd_addr[fd][0]) {
        struct conn_count *old = cc_find(h, h->fd_addr[fd], 0);
        if (old) cc_drop(h, old);
        h->fd_addr[fd][0] = 0;
    }
    if (!h->conn_limit) return 0;
    char addr[48];
    addr_text(ss, addr, sizeof addr);
    if (!addr[0]) return 0;
    struct conn_count *c = cc_find(h, addr, 1);
    if (!c) return 0;
    if (c->n >= h->conn_limit) {
        /* recount: connections closed since are not open any more */
        int n = 0;
        for (int i = 0; i < h->n_fd_addr; i++) {
            if (strcmp(h->fd_addr[i], addr)) continue;
            if (i != fd && fd_still(i, addr)) n++;
            else h->fd_addr[i][0] = 0;
        }
        c->n = n;
        if (c->n >= h->conn_limit) {
            if (!c->n) cc_drop(h, c);
            acdm_log(ACDM_LOG_WARN, WHO, "%s holds %d connections (max_connections_per_address): "
                     "a new one is closed", addr, h->conn_limit);
            return 1;
        }
    }
    c->n++;
    snprintf(h->fd_addr[fd], sizeof h->fd_addr[fd], "%s", addr);
    return 0;
}

void acdm_http_set_conn_limit(acdm_http *h, int per_address)
{
    h->conn_limit = per_address > 0 ? per_address : 0;
}

static int http_body(acdm_http *h, struct pss *pss, const void *in, size_t len)
{
    acdm_req *r = pss->req;
    if (!r || r->dispatched) return 0;
    if (r->body_len + len > h->body_limit) {
        char d[200];
        snprintf(d, sizeof d, "the request body exceeds the limit of %zu bytes", h->body_limit);
        return reply_now(r, 413, "Content Too Large", d, 1);
    }
    if (body_reserve(r, r->body_len + len))
        return reply_now(r, 500, "Internal Server Error", "out of memory", 1);
    memcpy(r->body + r->body_len, in, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- websockets */

static void ws_unlink(acdm_ws *ws)
{
    acdm_http *h = ws->srv;
    if (ws->prev) ws->prev->next = ws->next;
    else if (h->ws_list == ws) h->ws_list = ws->next;
    if (ws->next) ws->next->prev = ws->prev;
    ws->prev = ws->next = NULL;
}

static void ws_free(acdm_ws *ws)
{
    while (ws->qhead) {
        wsmsg *m = ws->qhead;
        ws->qhead = m->next;
        free(m);
    }
    free(ws->rx);
    free(ws->path);
    free(ws);
}

/* Drops the queue and makes lws close the connection soon, even if it never becomes writeable. */
static void ws_kill(acdm_ws *ws, int code, const char *reason)
{
    while (ws->qhead) {
        wsmsg *m = ws->qhead;
        ws->qhead = m->next;
        free(m);
    }
    ws->qtail = NULL;
    ws->qbytes = 0;
    ws->closing = 1;
    ws->close_code = code;
    snprintf(ws->close_reason, sizeof ws->close_reason, "%s", reason ? reason : "");
    if (ws->wsi && !ws->killed) {
        ws->killed = 1;
        if (ws->established) lws_callback_on_writable(ws->wsi);
        lws_set_timeout(ws->wsi, PENDING_TIMEOUT_CLOSE_SEND, 2);
    }
}

int acdm_ws_send(acdm_ws *ws, const char *text, size_t len)
{
    if (!ws || (!text && len)) return ACDM_EINVAL;
    if (ws->closing || !ws->wsi) return ACDM_ECLOSED;
    if (ws->qbytes + len > ACDM_WS_QUEUE_LIMIT) {
        acdm_log(ACDM_LOG_WARN, WHO, "websocket %s from %s: slow consumer (%zu bytes queued), "
                 "disconnecting", ws->path, ws->peer, ws->qbytes);
        ws_kill(ws, LWS_CLOSE_STATUS_POLICY_VIOLATION, "slow consumer");
        return ACDM_EFULL;
    }
    wsmsg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m) return ACDM_ENOMEM;
    m->next = NULL;
    m->len = len;
    if (len) memcpy(m->data + LWS_PRE, text, len);
    if (ws->qtail) ws->qtail->next = m;
    else ws->qhead = m;
    ws->qtail = m;
    ws->qbytes += len;
    if (ws->established && m == ws->qhead) lws_callback_on_writable(ws->wsi);
    return 0;
}

void acdm_ws_close(acdm_ws *ws, int code, const char *reason)
{
    if (!ws || ws->closing) return;
    ws->closing = 1;
    ws->close_code = code ? code : LWS_CLOSE_STATUS_NORMAL;
    snprintf(ws->close_reason, sizeof ws->close_reason, "%s", reason ? reason : "");
    if (ws->wsi && ws->established) lws_callback_on_writable(ws->wsi);
}

size_t acdm_ws_queued(const acdm_ws *ws) { return ws ? ws->qbytes : 0; }
void acdm_ws_set_user(acdm_ws *ws, void *p) { ws->user = p; }
void *acdm_ws_user(const acdm_ws *ws) { return ws->user; }
const char *acdm_ws_peer(const acdm_ws *ws) { return ws->peer; }
const char *acdm_ws_path(const acdm_ws *ws) { return ws->path; }

/* The upgrade request arrived: find the endpoint and ask its open handler. Returns the
 * CONFIRM_UPGRADE answer: 0 proceed, 1 refused (we replied), -1 hang up. */
static int ws_confirm(acdm_http *h, struct lws *wsi, const char *proto)
{
    if (!proto || strcmp(proto, "websocket")) return -1;
    acdm_req *r = req_new(h, wsi, NULL);
    if (!r) return -1;
    if (fill_request(h, r, wsi)) {
        req_free(r);
        return -1;
    }
    fill_query(r, wsi);
    r->dispatched = 1;
    int matched;
    route *rt = listener_serves(h, wsi, r->path) ? route_find(h, "GET", r->path, 1, &matched) : NULL;
    if (!rt) {
        char d[300];
        snprintf(d, sizeof d, "no websocket endpoint at %.250s", r->path);
        return reply_now(r, 404, "Not Found", d, 1) < 0 ? -1 : 1;
    }
    acdm_ws *ws = calloc(1, sizeof *ws);
    if (!ws || !(ws->path = strdup(r->path))) {
        free(ws);
        req_free(r);
        return -1;
    }
    ws->srv = h;
    ws->wsi = wsi;
    ws->route_id = rt->id;
    ws->hd = rt->hd;
    ws->huser = rt->user;
    snprintf(ws->peer, sizeof ws->peer, "%s", acdm_req_peer(r));
    ws->next = h->ws_list;
    if (h->ws_list) h->ws_list->prev = ws;
    h->ws_list = ws;
    r->upgrade = 1;
    r->in_dispatch = 1;
    int ok = ws->hd.open ? ws->hd.open(ws->huser, ws, r) : 0;
    r->upgrade = 0;
    if (ok < 0) {
        ws_unlink(ws);
        ws_free(ws);
        char d[300];
        snprintf(d, sizeof d, "the websocket at %.250s refused the connection", r->path);
        return reply_now(r, 403, "Forbidden", d, 1) < 0 ? -1 : 1;
    }
    req_free(r);
    h->ws_opened++;
    /* lws has no user space for the wsi yet: ours lives in ws, lws won't free it */
    ws->pss.ws = ws;
    lws_set_wsi_user(wsi, &ws->pss);
    return 0;
}

static acdm_ws *ws_of(struct lws *wsi, struct pss *pss)
{
    acdm_ws *ws = pss ? pss->ws : NULL;
    return ws && ws->wsi == wsi ? ws : NULL;
}

static void ws_gone(acdm_ws *ws)
{
    if (ws->wsi) lws_set_wsi_user(ws->wsi, NULL);   /* later callbacks must not see freed ws */
    if (!ws->detached && ws->hd.close) {
        ws->detached = 1;
        ws->hd.close(ws->huser, ws);
    }
    ws_unlink(ws);
    ws_free(ws);
}

static int ws_writeable(acdm_ws *ws)
{
    if (ws->qhead) {
        wsmsg *m = ws->qhead;
        int n = lws_write(ws->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
        ws->qhead = m->next;
        if (!ws->qhead) ws->qtail = NULL;
        ws->qbytes -= m->len;
        free(m);
        if (n < 0) return -1;
        if (ws->qhead || ws->closing) lws_callback_on_writable(ws->wsi);
        return 0;
    }
    if (ws->closing) {
        /* send the close frame ourselves: lws 4.1.6 drops the one prepared by
         * lws_close_reason() when the close starts from a WRITEABLE callback */
        unsigned char buf[LWS_PRE + 2 + sizeof ws->close_reason];
        size_t rl = strlen(ws->close_reason);
        buf[LWS_PRE] = (unsigned char)(ws->close_code >> 8);
        buf[LWS_PRE + 1] = (unsigned char)ws->close_code;
        memcpy(buf + LWS_PRE + 2, ws->close_reason, rl);
        lws_write(ws->wsi, buf + LWS_PRE, 2 + rl, WRITE_CLOSE);
        return -1;
    }
    return 0;
}

static int ws_receive(acdm_ws *ws, struct lws *wsi, const void *in, size_t len)
{
    if (ws->closing) return 0;
    if (ws->rx_len + len > ACDM_WS_MSG_LIMIT) {
        acdm_log(ACDM_LOG_INFO, WHO, "websocket %s from %s: message over %u bytes, closing",
                 ws->path, ws->peer, ACDM_WS_MSG_LIMIT);
        static const char why[] = "message too big";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                         sizeof why - 1);
        ws->closing = 1;
        return -1;
    }
    int final = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
    if (final && !lws_frame_is_binary(wsi)) {
        /* a text message must be UTF-8 (RFC 6455 8.1): otherwise close with 1007 */
        int ok = ws->rx_len ? 0 : acdm_utf8_valid(in, len);
        if (ws->rx_len) {
            if (ws->rx_len + len + 1 > ws->rx_cap) {
                size_t cap = ws->rx_cap;
                while (cap < ws->rx_len + len + 1) cap *= 2;
                char *b = realloc(ws->rx, cap);
                if (!b) return -1;
                ws->rx = b;
                ws->rx_cap = cap;
            }
            memcpy(ws->rx + ws->rx_len, in, len);
            ok = acdm_utf8_valid(ws->rx, ws->rx_len + len);
        }
        if (!ok) {
            acdm_log(ACDM_LOG_INFO, WHO, "websocket %s from %s: a text message that is not UTF-8, closing (1007)",
                     ws->path, ws->peer);
            static const char why[] = "invalid UTF-8";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_INVALID_PAYLOAD, (unsigned char *)why, sizeof why - 1);
            ws->closing = 1;
            ws->rx_len = 0;
            return -1;
        }
    }
    if (final && ws->rx_len == 0) {
        /* common case: the whole message in one piece; lws's buffer is not NUL-terminated */
        if (len + 1 > ws->rx_cap) {
            size_t cap = len + 1 < 256 ? 256 : len + 1;
            char *b = realloc(ws->rx, cap);
            if (!b) return -1;
            ws->rx = b;
            ws->rx_cap = cap;
        }
        memcpy(ws->rx, in, len);
        ws->rx[len] = '\0';
        if (!ws->detached && ws->hd.message) ws->hd.message(ws->huser, ws, ws->rx, len);
        return 0;
    }
    if (ws->rx_len + len + 1 > ws->rx_cap) {
        size_t cap = ws->rx_cap ? ws->rx_cap : 256;
        while (cap < ws->rx_len + len + 1) cap *= 2;
        char *b = realloc(ws->rx, cap);
        if (!b) return -1;
        ws->rx = b;
        ws->rx_cap = cap;
    }
    memcpy(ws->rx + ws->rx_len, in, len);
    ws->rx_len += len;
    ws->rx[ws->rx_len] = '\0';
    if (final) {
        size_t n = ws->rx_len;
        ws->rx_len = 0;
        if (!ws->detached && ws->hd.message) ws->hd.message(ws->huser, ws, ws->rx, n);
        if (ws->rx_cap > 4096) {   /* don't keep a big buffer per idle connection */
            free(ws->rx);
            ws->rx = NULL;
            ws->rx_cap = 0;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- the lws callback */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct pss *pss = user;
    acdm_http *h;

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        /* user is the vhost's SSL_CTX: TLS 1.2 at least (1.3 preferred by OpenSSL) */
        if (user) SSL_CTX_set_min_proto_version(user, TLS1_2_VERSION);
        if (creating && user) creating->ssl = user;
        return 0;
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: {
        h = lws_context_user(lws_get_context(wsi));
        const struct lws_filter_network_conn_args *fa = user;
        return fa ? conn_filter(h, (int)fa->accept_fd, &fa->cli_addr) : 0;
    }

    case LWS_CALLBACK_HTTP:
        h = lws_context_user(lws_get_context(wsi));
        if (!pss) return -1;
        return http_begin(h, wsi, pss);

    case LWS_CALLBACK_HTTP_BODY:
        if (!pss) return -1;
        h = lws_context_user(lws_get_context(wsi));
        return http_body(h, pss, in, len);

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!pss || !pss->req || pss->req->dispatched) return 0;
        h = lws_context_user(lws_get_context(wsi));
        if (!pss->req->body) {
            if (body_reserve(pss->req, 0)) return -1;
            pss->req->body[0] = '\0';
        }
        return dispatch(h, pss->req);

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (pss && pss->req && pss->req->replied && pss->req->wsi == wsi) {
            return write_response(pss->req, 0);   /* an h2 stream's deferred reply */
        }
        return 0;

    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return lws_http_transaction_completed(wsi) ? -1 : 0;

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        h = lws_context_user(lws_get_context(wsi));
        return ws_confirm(h, wsi, in);

    case LWS_CALLBACK_ESTABLISHED: {
        acdm_ws *ws = ws_of(wsi, pss);
        if (!ws) return -1;
        ws->established = 1;
        if (ws->qhead || ws->closing) lws_callback_on_writable(wsi);
        return 0;
    }

    case LWS_CALLBACK_RECEIVE: {
        acdm_ws *ws = ws_of(wsi, pss);
        if (!ws) return -1;
        return ws_receive(ws, wsi, in, len);
    }

    case LWS_CALLBACK_SERVER_WRITEABLE: {
        acdm_ws *ws = ws_of(wsi, pss);
        if (!ws) return -1;
        return ws_writeable(ws);
    }

    case LWS_CALLBACK_CLOSED: {
        acdm_ws *ws = ws_of(wsi, pss);
        if (ws) {
            pss->ws = NULL;
            ws_gone(ws);
        }
        return 0;
    }

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_WSI_DESTROY:
        if (pss && pss->req) {
            acdm_req *r = pss->req;
            pss->req = NULL;
            req_orphan(r);
        }
        if (pss && reason != LWS_CALLBACK_HTTP_DROP_PROTOCOL) {
            /* an upgrade accepted by open but never established */
            acdm_ws *ws = ws_of(wsi, pss);
            if (ws && !ws->established) {
                pss->ws = NULL;
                ws_gone(ws);
            }
        }
        return 0;

    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- create / destroy */

static void build_token_names(acdm_http *h)
{
    h->ntoks = 0;
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        const unsigned char *s = lws_token_to_string((enum lws_token_indexes)t);
        if (!s) continue;
        size_t n = strlen((const char *)s);
        if (n < 2 || s[n - 1] != ':' || s[0] == ':') continue;
        h->toks[h->ntoks].name = (const char *)s;   /* lws's names are lowercase */
        h->toks[h->ntoks].len = n - 1;
        h->toks[h->ntoks].token = t;
        h->ntoks++;
    }
}

/* lws 4.1.6 on a foreign libuv loop destroys a context in two stages: the first call closes the
 * connections and uv handles; a second call, once those handles have closed on the loop, frees
 * the rest (calling it earlier crashes, never calling it leaks ~330 KB). The reaper is an idle
 * handle that waits until no handle of the loop is closing, then makes the second call. */
typedef struct {
    uv_idle_t idle;
    struct lws_context *ctx;
} ctx_reaper;

static void reaper_closed(uv_handle_t *hd) { free(hd->data); }

static void count_closing(uv_handle_t *hd, void *arg)
{
    if (uv_is_closing(hd)) (*(int *)arg)++;
}

static void reaper_idle(uv_idle_t *i)
{
    ctx_reaper *rp = i->data;
    int closing = 0;
    uv_walk(i->loop, count_closing, &closing);
    if (closing) return;
    lws_context_destroy(rp->ctx);
    uv_idle_stop(i);
    uv_close((uv_handle_t *)i, reaper_closed);
}

static void ctx_destroy(uv_loop_t *loop, struct lws_context *ctx)
{
    lws_context_destroy(ctx);
    ctx_reaper *rp = calloc(1, sizeof *rp);
    if (!rp || uv_idle_init(loop, &rp->idle)) {
        free(rp);   /* lws keeps ~330 KB: better than a crash */
        return;
    }
    rp->idle.data = rp;
    rp->ctx = ctx;
    uv_idle_start(&rp->idle, reaper_idle);
}

/* lws reports a port in use only in its log: try the bind ourselves first for a clear error. */
static int probe_port(const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char ps[16];
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    snprintf(ps, sizeof ps, "%d", port);
    const char *node = host && *host && strcmp(host, "*") ? host : NULL;
    if (getaddrinfo(node, ps, &hints, &res)) return 0;   /* an interface name: let lws judge */
    int rc = 0;
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, res->ai_addr, res->ai_addrlen)) {
            if (err) snprintf(err, errlen, "http: cannot listen on %s port %d: %s",
                              node ? node : "*", port, strerror(errno));
            rc = -1;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return rc;
}

/* A Mozilla "intermediate" list for TLS 1.2 (forward secrecy, AEAD only); TLS 1.3 keeps
 * OpenSSL's own suites (all modern). */
#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static void asn1_text(const ASN1_TIME *t, char *out, size_t n)
{
    out[0] = 0;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b) return;
    if (ASN1_TIME_print(b, t) > 0) {
        int k = BIO_read(b, out, (int)n - 1);
        out[k > 0 ? k : 0] = 0;
    }
    BIO_free(b);
}

static void ssl_err(char *out, size_t n)
{
    unsigned long e = ERR_get_error();
    if (e) ERR_error_string_n(e, out, n);
    else snprintf(out, n, "unknown error");
    ERR_clear_error();
}

int acdm_http_tls_check(const char *cert_file, const char *key_file, char *not_after, size_t nalen,
                        char *err, size_t errlen)
{
    char why[256];
    int rc = ACDM_EINVAL;
    ERR_clear_error();
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    if (!c) { snprintf(err, errlen, "tls: out of memory"); return ACDM_ENOMEM; }
    if (SSL_CTX_use_certificate_chain_file(c, cert_file) != 1) {
        ssl_err(why, sizeof why);
        snprintf(err, errlen, "tls: cannot load the certificate chain %s (%s)", cert_file, why);
    } else if (SSL_CTX_use_PrivateKey_file(c, key_file, SSL_FILETYPE_PEM) != 1) {
        ssl_err(why, sizeof why);
        snprintf(err, errlen, "tls: cannot load the private key %s (%s)", key_file, why);
    } else if (SSL_CTX_check_private_key(c) != 1) {
        snprintf(err, errlen, "tls: the private key %s does not belong to the certificate %s", key_file, cert_file);
    } else {
        X509 *x = SSL_CTX_get0_certificate(c);
        char na[40], nb[40];
        asn1_text(X509_get0_notAfter(x), na, sizeof na);
        asn1_text(X509_get0_notBefore(x), nb, sizeof nb);
        if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
            snprintf(err, errlen, "tls: the certificate %s expired on %s", cert_file, na);
        else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
            snprintf(err, errlen, "tls: the certificate %s is not valid before %s", cert_file, nb);
        else {
            if (not_after) snprintf(not_after, nalen, "%s", na);
            rc = 0;
        }
    }
    SSL_CTX_free(c);
    return rc;
}

/* The settings every vhost shares; host/port/TLS are set by the caller. */
static void vhost_info(acdm_http *h, struct lws_context_creation_info *info, void **loops)
{
    memset(info, 0, sizeof *info);
    /* OpenSSL is set up by lws only when a listener serves TLS (h->tls) */
    info->options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                    (h->tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
    info->foreign_loops = loops;
    info->protocols = h->protos;
    info->user = h;
    info->server_string = "acdm";
    /* lws drops a connection whose headers overflow its buffer without an answer: the buffer
     * is large, and http_begin answers 414/431/401 beyond the limits that acdmd accepts */
    info->max_http_header_data = 0;
    info->max_http_header_data2 = ACDM_HTTP_HEADER_BUF;
    info->keepalive_timeout = 60;
    info->timeout_secs = 30;
    info->timeout_secs_ah_idle = ACDM_HTTP_HEADER_S;   /* a client's headers: all within this */
    /* lws stops accepting (takes the listening socket out of its poll set) when its own
     * descriptors near fd_limit_per_thread and resumes when some close. Its default is the whole
     * process limit, which the store, outbound HTTP and plugins share: accept would then fail
     * with EMFILE first and the loop spin on the still-readable listening socket. Leave room. */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 96) {
        rlim_t reserve = rl.rlim_cur / 8 > 64 ? rl.rlim_cur / 8 : 64;
        if (reserve > 1024) reserve = 1024;
        info->fd_limit_per_thread = (unsigned)(rl.rlim_cur - reserve);
    }
}

/* Adds listener l as a vhost of h->ctx. 0 or ACDM_EIO/EINVAL with a sentence in err. */
static int listener_add(acdm_http *h, const acdm_http_listener *l, char *err, size_t errlen)
{
    if (h->n_lst >= ACDM_HTTP_MAX_LISTENERS) {
        snprintf(err, errlen, "http: at most %d listeners", ACDM_HTTP_MAX_LISTENERS);
        return ACDM_EINVAL;
    }
    if (l->port < 0 || l->port > 65535) {
        snprintf(err, errlen, "http: bad port %d (0..65535)", l->port);
        return ACDM_EINVAL;
    }
    struct listener *ls = &h->lst[h->n_lst];
    memset(ls, 0, sizeof *ls);
    const char *host = l->host;
    snprintf(ls->host, sizeof ls->host, "%s", host && *host ? host : "*");
    if (l->cert_file || l->key_file) {
        if (!l->cert_file || !l->key_file) {
            snprintf(err, errlen, "tls: set cert_file and key_file together");
            return ACDM_EINVAL;
        }
        if (!h->tls) {   /* the context was made without OpenSSL */
            snprintf(err, errlen, "tls: a TLS listener must be given to acdm_http_create_listeners");
            return ACDM_EINVAL;
        }
        int rc = acdm_http_tls_check(l->cert_file, l->key_file, ls->not_after, sizeof ls->not_after, err, errlen);
        if (rc) return rc;
    }
    if (l->port && probe_port(host, l->port, err, errlen)) return ACDM_EIO;
    void *loops[1] = {h->loop};
    struct lws_context_creation_info info;
    vhost_info(h, &info, loops);
    snprintf(ls->vname, sizeof ls->vname, "acdm%d", h->n_lst);
    info.vhost_name = ls->vname;
    info.port = l->port;
    if (host && *host && strcmp(host, "*") && strcmp(host, "0.0.0.0")) {
        info.iface = ls->host;
        if (!strchr(host, ':')) info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    } else if (host && !strcmp(host, "0.0.0.0")) {
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    }
    if (l->cert_file) {
        ls->cert_file = strdup(l->cert_file);
        ls->key_file = strdup(l->key_file);
        if (!ls->cert_file || !ls->key_file) {
            free(ls->cert_file); free(ls->key_file);
            snprintf(err, errlen, "http: out of memory");
            return ACDM_ENOMEM;
        }
        info.ssl_cert_filepath = ls->cert_file;
        info.ssl_private_key_filepath = ls->key_file;
        info.ssl_cipher_list = TLS12_CIPHERS;
        info.ssl_options_set = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION;
        info.options |= LWS_SERVER_OPTION_STS;   /* Strict-Transport-Security on every response */
        /* HTTP/1.1 only: the request layer reads lws's HTTP/1 header tokens (an h2 request
         * carries :path instead, and lws 4.1 then reports "Missing URI") */
        info.alpn = "http/1.1";
    }
    creating = ls;
    ls->vh = lws_create_vhost(h->ctx, &info);
    creating = NULL;
    ls->port = ls->vh ? lws_get_vhost_listen_port(ls->vh) : -1;
    if (ls->port <= 0) {
        snprintf(err, errlen, "http: cannot listen on %s port %d (in use, or a bad address?)", ls->host, l->port);
        free(ls->cert_file); free(ls->key_file);
        ls->cert_file = ls->key_file = NULL;
        return ACDM_EIO;
    }
    if (ls->cert_file && ls->ssl) SSL_CTX_set_min_proto_version(ls->ssl, TLS1_2_VERSION);
    if (ls->cert_file && !ls->ssl)
        acdm_log(ACDM_LOG_WARN, WHO, "tls on %s port %d: the SSL context was not handed over; a "
                 "renewed certificate needs a restart", ls->host, ls->port);
    h->n_lst++;
    if (acdm_http_listener_set_routes(h, (size_t)h->n_lst - 1, l->routes, l->n_routes)) {
        snprintf(err, errlen, "http: out of memory");
        return ACDM_ENOMEM;
    }
    return 0;
}

static void routes_free(struct listener *ls)
{
    for (size_t i = 0; i < ls->n_routes; i++) free(ls->routes[i]);
    free(ls->routes);
    ls->routes = NULL;
    ls->n_routes = 0;
}

int acdm_http_listener_set_routes(acdm_http *h, size_t i, const char *const *routes, size_t n)
{
    if (!h || i >= (size_t)h->n_lst || (n && !routes)) return ACDM_EINVAL;
    char **nr = n ? calloc(n, sizeof *nr) : NULL;
    if (n && !nr) return ACDM_ENOMEM;
    for (size_t k = 0; k < n; k++)
        if (!(nr[k] = strdup(routes[k]))) {
            while (k--) free(nr[k]);
            free(nr);
            return ACDM_ENOMEM;
        }
    routes_free(&h->lst[i]);
    h->lst[i].routes = nr;
    h->lst[i].n_routes = n;
    return 0;
}

int acdm_http_listen(acdm_http *h, const acdm_http_listener *l, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    char e2[512];
    int rc = listener_add(h, l, e2, sizeof e2);
    if (rc && err) snprintf(err, errlen, "%s", e2);
    return rc ? rc : h->n_lst - 1;
}

size_t acdm_http_n_listeners(const acdm_http *h) { return h ? (size_t)h->n_lst : 0; }
int acdm_http_listener_port(const acdm_http *h, size_t i) { return h && i < (size_t)h->n_lst ? h->lst[i].port : -1; }
bool acdm_http_listener_tls(const acdm_http *h, size_t i) { return h && i < (size_t)h->n_lst && h->lst[i].cert_file; }

int acdm_http_tls_reload(acdm_http *h, int *renewed, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (renewed) *renewed = 0;
    int rc = 0;
    for (int i = 0; h && i < h->n_lst; i++) {
        struct listener *ls = &h->lst[i];
        if (!ls->cert_file) continue;
        char na[40], e2[512];
        int r = acdm_http_tls_check(ls->cert_file, ls->key_file, na, sizeof na, e2, sizeof e2);
        if (!r && !ls->ssl) {
            snprintf(e2, sizeof e2, "tls: the SSL context of %s port %d is not reachable: restart to serve the new certificate",
                     ls->host, ls->port);
            r = ACDM_ESTATE;
        }
        if (!r) {
            /* checked on a context of its own first: the live one cannot be left half-loaded */
            ERR_clear_error();
            if (SSL_CTX_use_certificate_chain_file(ls->ssl, ls->cert_file) != 1 ||
                SSL_CTX_use_PrivateKey_file(ls->ssl, ls->key_file, SSL_FILETYPE_PEM) != 1 ||
                SSL_CTX_check_private_key(ls->ssl) != 1) {
                char why[256];
                ssl_err(why, sizeof why);
                snprintf(e2, sizeof e2, "tls: the certificate %s could not be put in service (%s)", ls->cert_file, why);
                r = ACDM_EIO;
            }
        }
        if (r) {
            acdm_log(ACDM_LOG_ERR, WHO, "%s; %s port %d keeps serving the certificate it had (valid until %s)",
                     e2, ls->host, ls->port, ls->not_after);
            if (!rc && err) snprintf(err, errlen, "%s", e2);
            if (!rc) rc = r;
            continue;
        }
        if (strcmp(na, ls->not_after)) {
            acdm_log(ACDM_LOG_NOTICE, WHO, "tls on %s port %d: serving the renewed certificate %s (valid until %s)",
                     ls->host, ls->port, ls->cert_file, na);
            if (renewed) (*renewed)++;
        }
        snprintf(ls->not_after, sizeof ls->not_after, "%s", na);
    }
    return rc;
}

int acdm_http_create_listeners(uv_loop_t *loop, const acdm_http_listener *ls, size_t n,
                               const char *ui_dir, acdm_http **out, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!loop || !out || !ls || !n) {
        if (err) snprintf(err, errlen, "http: bad arguments (loop, out, at least one listener)");
        return ACDM_EINVAL;
    }
    *out = NULL;
    acdm_http *h = calloc(1, sizeof *h);
    if (!h) return ACDM_ENOMEM;
    h->loop = loop;
    h->body_limit = ACDM_HTTP_BODY_LIMIT_DEFAULT;
    if (ui_dir && *ui_dir) {
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(ui_dir, real) || stat(real, &st) || !S_ISDIR(st.st_mode)) {
            if (err) snprintf(err, errlen, "http: ui folder \"%s\" is not a readable folder: %s",
                              ui_dir, strerror(errno ? errno : ENOTDIR));
            free(h);
            return ACDM_EINVAL;
        }
        h->ui_dir = strdup(real);
        if (!h->ui_dir) {
            free(h);
            return ACDM_ENOMEM;
        }
        h->ui_dir_len = strlen(h->ui_dir);
        if (h->ui_dir_len == 1) h->ui_dir_len = 0;   /* "/" */
    }
    build_token_names(h);

    int lvl = LLL_ERR | LLL_WARN;
    if (acdm_log_level >= ACDM_LOG_DEBUG) lvl |= LLL_NOTICE | LLL_INFO;
    lws_set_log_level(lvl, lws_emit);

    h->protos[0].name = "acdm";
    h->protos[0].callback = callback;
    h->protos[0].per_session_data_size = sizeof(struct pss);
    h->protos[0].rx_buffer_size = 0;

    /* explicit vhosts: a failed listen then leaves a sane context to destroy (with the default
     * vhost, lws 4.1.6 crashes on the loop after destroying a context whose vhost failed) */
    for (size_t i = 0; i < n; i++)
        if (ls[i].cert_file || ls[i].key_file) h->tls = 1;
    struct lws_context_creation_info info;
    void *loops[1] = {loop};
    vhost_info(h, &info, loops);
    info.port = CONTEXT_PORT_NO_LISTEN;
    char e2[512] = "";
    int rc = ACDM_EIO;
    h->ctx = lws_create_context(&info);
    if (!h->ctx) snprintf(e2, sizeof e2, "http: cannot create the libwebsockets context");
    else
        for (size_t i = 0; i < n && !(rc = listener_add(h, &ls[i], e2, sizeof e2)); i++) ;
    if (rc) {
        if (err) snprintf(err, errlen, "%s", e2);
        h->destroying = 1;
        if (h->ctx) ctx_destroy(loop, h->ctx);
        for (int i = 0; i < h->n_lst; i++) { free(h->lst[i].cert_file); free(h->lst[i].key_file); routes_free(&h->lst[i]); }
        free(h->ui_dir);
        free(h);
        return rc;
    }
    h->vh = h->lst[0].vh;
    h->port = h->lst[0].port;
    h->sweep = calloc(1, sizeof *h->sweep);
    if (h->sweep) {
        uv_timer_init(loop, h->sweep);
        h->sweep->data = h;
        uv_timer_start(h->sweep, on_sweep, 1000, 1000);
        uv_unref((uv_handle_t *)h->sweep);
    }
    h->last_log_flush = mono_ms();
    *out = h;
    return 0;
}

int acdm_http_create(uv_loop_t *loop, const char *host, int port, const char *ui_dir,
                     acdm_http **out, char *err, size_t errlen)
{
    acdm_http_listener l = {.host = host, .port = port};
    return acdm_http_create_listeners(loop, &l, 1, ui_dir, out, err, errlen);
}

int acdm_http_port(const acdm_http *h) { return h ? h->port : -1; }

void acdm_http_set_ui_connect(acdm_http *h, const char *origins)
{
    free(h->ui_connect);
    h->ui_connect = NULL;
    if (!origins || !*origins) return;
    for (const char *p = origins; *p; p++)   /* one header line: no control characters, no ';' */
        if ((unsigned char)*p < 0x20 || *p == ';' || *p == ',' || *p == '\'' || *p == '"') return;
    h->ui_connect = strdup(origins);
}

void acdm_http_set_body_limit(acdm_http *h, size_t limit)
{
    if (h) h->body_limit = limit;
}

static void sweep_closed(uv_handle_t *hd) { free(hd); }

void acdm_http_destroy(acdm_http *h)
{
    if (!h) return;
    if (h->sweep) {
        uv_timer_stop(h->sweep);
        uv_close((uv_handle_t *)h->sweep, sweep_closed);
        h->sweep = NULL;
    }
    ctx_destroy(h->loop, h->ctx);  /* closes every wsi: ws close handlers run, reqs orphaned */
    h->destroying = 1;
    while (h->ws_list) {           /* none expected; belt and braces */
        acdm_ws *ws = h->ws_list;
        ws->wsi = NULL;
        ws_gone(ws);
    }
    while (h->live) req_free(h->live);
    while (h->pool) {
        acdm_req *r = h->pool;
        h->pool = r->next;
        arena_reset(r);
        free(r->body);
        free(r->out);
        free(r);
    }
    for (int i = 0; i < h->nroutes; i++) {
        free(h->routes[i]->pattern);
        free(h->routes[i]->method);
        free(h->routes[i]);
    }
    free(h->routes);
    for (int i = 0; i < h->n_lst; i++) { free(h->lst[i].cert_file); free(h->lst[i].key_file); routes_free(&h->lst[i]); }
    free(h->ui_dir);
    free(h->ui_connect);
    free(h->fd_addr);
    free(h->cc);
    free(h);
}
