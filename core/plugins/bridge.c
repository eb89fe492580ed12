/* bridge.c -- the plugins' HTTP bridge: routes under /channels/<instance>/, websocket routes
 * and connections, deferred responses. */
#include "plugins/plugins_int.h"

#define WHO "plugins"

/* ------------------------------------------------------------------ HTTP routes */

/* The request as the plugin sees it; strings borrowed from r (the body is NUL-terminated).
 * *hdrs is the header array handed over (malloc'd: the caller frees it after the call). */
static void fill_request(const acdm_instance *inst, acdm_req *r, acdm_http_request *out,
                         acdm_http_header **hdrs)
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
    out->struct_size = sizeof *out;
    out->query_raw = acdm_req_query_raw(r);
    out->url = acdm_req_url(r);
    out->peer = acdm_req_peer(r);
    const acdm_hdr *list = NULL;
    size_t n = acdm_req_headers(r, &list);
    *hdrs = n ? calloc(n, sizeof **hdrs) : NULL;
    if (*hdrs) {
        for (size_t i = 0; i < n; i++) {
            (*hdrs)[i].name = list[i].name;
            (*hdrs)[i].value = list[i].value;
        }
        out->headers = *hdrs;
        out->n_headers = n;
    }
}

/* A plugin's own 401 (its token check: the webhook's instance token) is a failed sign-in of
 * the client's address, as the core's are, unless check_token counted it already. */
static void count_refusal(acdm_plugins *p, acdm_req *r, int status, bool counted)
{
    if (status == 401 && !counted && p->env.peer_failed) p->env.peer_failed(p->env.engine, acdm_req_peer(r));
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
    acdm_plugins *p = inst->p;
    int retry = 0;
    if (p->env.peer_blocked && p->env.peer_blocked(p->env.engine, acdm_req_peer(r), &retry)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry);
        acdm_http_add_header(r, "Retry-After", ra);
        acdm_http_problem(r, 429, "Too Many Requests", "too many failed sign-ins from %s; retry after %d s",
                          acdm_req_peer(r), retry);
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
    acdm_http_header *hdrs = NULL;
    fill_request(inst, r, &req, &hdrs);
    acdm_http_response resp = {.status = 200, .token = d};
    p->cur_peer = acdm_req_peer(r);
    p->cur_counted = false;
    rt->handler(inst, inst->priv, &req, &resp);
    d->counted = p->cur_counted;
    p->cur_peer = NULL;
    free(hdrs);
    d->in_handler = false;
    if (d->answered) {                      /* http_respond ran inside the handler */
        if (!resp.defer)
            acdm_log(ACDM_LOG_WARN, inst->name, "http_respond called in a handler that did not "
                     "set defer: the handler's own response was dropped");
        deferred_free(d);
    } else if (!resp.defer) {
        count_refusal(p, r, resp.status, d->counted);
        deferred_free(d);
        reply_with(r, &resp);
    }   /* deferred: d stays in inst->deferred until http_respond, or the 503 at stop */
}

int acdm_plg_host_http_respond(void *token, const acdm_http_response *resp)
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
    count_refusal(d->inst->p, d->req, resp->status, d->counted);
    reply_with(d->req, resp);               /* a gone client: dropped, and the request freed */
    d->req = NULL;
    if (d->in_handler) d->answered = true;  /* route_call frees it */
    else deferred_free(d);
    return 0;
}

/* Answers 503 to every response the instance still owes (after its stop). */
void acdm_plg_deferred_close_all(acdm_instance *inst)
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

int acdm_plg_host_http_route(acdm_instance *inst, const char *method, const char *path,
                           acdm_http_handler handler)
{
    if (!acdm_plg_live(inst) || !handler) return ACDM_EINVAL;
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
    acdm_plugins *p = inst->p;
    int retry = 0;
    if (p->env.peer_blocked && p->env.peer_blocked(p->env.engine, acdm_req_peer(upgrade), &retry))
        return -1;   /* a blocked address: the upgrade is refused */
    acdm_wsconn *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->ws = ws; c->route = wr;
    acdm_ws_set_user(ws, c);
    DLIST_ADD(inst->conns, c);
    if (wr->cb.open) {
        acdm_http_request req;
        acdm_http_header *hdrs = NULL;
        fill_request(inst, upgrade, &req, &hdrs);
        p->cur_peer = acdm_req_peer(upgrade);
        p->cur_counted = false;
        int rc = wr->cb.open(inst, inst->priv, c, &req);
        p->cur_peer = NULL;
        free(hdrs);
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
    if (inst->state == IS_RUNNING && c->route->cb.message) {
        inst->p->cur_peer = acdm_ws_peer(ws);
        inst->p->cur_counted = false;
        c->route->cb.message(inst, inst->priv, c, data, len);
        inst->p->cur_peer = NULL;
    }
}

void acdm_plg_ws_closed(void *user, acdm_ws *ws)
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

static const acdm_ws_handlers ws_handlers = {ws_open, ws_message, acdm_plg_ws_closed};

int acdm_plg_host_ws_route(acdm_instance *inst, const char *path, const acdm_ws_callbacks *cb)
{
    if (!acdm_plg_live(inst) || !cb) return ACDM_EINVAL;
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

int acdm_plg_host_ws_send(acdm_wsconn *c, const char *data, size_t len)
{
    if (!c || !c->route || !data) return ACDM_EINVAL;
    return acdm_ws_send(c->ws, data, len) < 0 ? ACDM_EIO : 0;
}

void acdm_plg_host_ws_close(acdm_wsconn *c, int code, const char *reason)
{
    if (c && c->route) acdm_ws_close(c->ws, code, reason);
}

void acdm_plg_host_ws_set_user(acdm_wsconn *c, void *user) { if (c) c->user = user; }
void *acdm_plg_host_ws_user(acdm_wsconn *c) { return c ? c->user : NULL; }
