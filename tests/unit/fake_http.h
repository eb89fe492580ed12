/* fake_http.h -- a fake HTTP server for the unit tests of the plugin host (test_plugins.c,
 * test_webchat.c). It defines acdm_http_route, acdm_req_*, acdm_http_reply, acdm_ws_* etc., so a
 * test binary that includes it is linked against these instead of libacdm.a's core/net/http.c, and
 * routes and websockets are driven directly (the real server is covered by the integration tests).
 * Holds definitions, not just declarations: include it from one test file per binary only. */
#ifndef ACDM_TESTS_FAKE_HTTP_H
#define ACDM_TESTS_FAKE_HTTP_H

#include "net/http.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FAKE_ROUTES 32   /* routes (and websocket paths) one fake server holds */
#define FAKE_WS_LOG 32   /* messages one fake websocket keeps */

/* A route or websocket path as the plugin host registered it; kept by value, so the
 * handlers outlive whatever the host passed (a websocket's close comes after its stop). */
typedef struct { int id; char method[16]; char pattern[128]; acdm_route_fn fn;
                 acdm_ws_handlers hd; void *user; bool gone; } fake_route;
struct acdm_http { fake_route r[FAKE_ROUTES]; int n; int unrouted; };
struct acdm_req { const char *method, *path, *query, *body, *auth, *origin, *ctype_in;
                  const char *query_raw, *url, *peer;   /* as the real server would give them */
                  acdm_hdr hdrs[8]; size_t n_hdrs;
                  int status; char ctype[64]; char out[4096]; bool replied;
                  bool gone, dropped; /* client went away: the reply is dropped (real server: r freed) */ };
struct acdm_ws { void *user; char msgs[FAKE_WS_LOG][8192]; int n; int closed_code; };

static struct acdm_http fake_http;

int acdm_http_route(acdm_http *h, const char *method, const char *pattern, acdm_route_fn fn, void *user)
{
    ck_assert_int_lt(h->n, FAKE_ROUTES);
    fake_route *r = &h->r[h->n++];
    r->id = h->n;
    snprintf(r->method, sizeof r->method, "%s", method ? method : "*");
    snprintf(r->pattern, sizeof r->pattern, "%s", pattern);
    r->fn = fn; r->user = user;
    return r->id;
}
int acdm_http_ws(acdm_http *h, const char *path, const acdm_ws_handlers *hd, void *user)
{
    ck_assert_int_lt(h->n, FAKE_ROUTES);
    fake_route *r = &h->r[h->n++];
    r->id = h->n;
    snprintf(r->method, sizeof r->method, "WS");
    snprintf(r->pattern, sizeof r->pattern, "%s", path);
    r->hd = *hd; r->user = user;
    return r->id;
}
void acdm_http_unroute(acdm_http *h, int id)
{
    ck_assert_int_gt(id, 0);
    ck_assert(!h->r[id - 1].gone);
    h->r[id - 1].gone = true;
    h->unrouted++;
}
const char *acdm_req_method(const acdm_req *r) { return r->method; }
const char *acdm_req_path(const acdm_req *r) { return r->path; }
const char *acdm_req_query_string(const acdm_req *r) { return r->query; }
const char *acdm_req_header(acdm_req *r, const char *name)
{
    if (!strcasecmp(name, "Authorization")) return r->auth;
    if (!strcasecmp(name, "Origin")) return r->origin;
    if (!strcasecmp(name, "Content-Type") && r->ctype_in) return r->ctype_in;
    for (size_t i = 0; i < r->n_hdrs; i++)
        if (!strcasecmp(r->hdrs[i].name, name)) return r->hdrs[i].value;
    return NULL;
}
const char *acdm_req_query_raw(acdm_req *r) { return r->query_raw; }
const char *acdm_req_url(acdm_req *r) { return r->url; }
const char *acdm_req_peer(acdm_req *r) { return r->peer ? r->peer : ""; }
size_t acdm_req_headers(acdm_req *r, const acdm_hdr **out)
{
    *out = r->n_hdrs ? r->hdrs : NULL;
    return r->n_hdrs;
}
const char *acdm_req_body(const acdm_req *r, size_t *len)
{
    *len = r->body ? strlen(r->body) : 0;
    return r->body ? r->body : "";
}
int acdm_req_alive(const acdm_req *r) { return !r->gone; }
void acdm_http_reply(acdm_req *r, int status, const char *ct, const char *body, size_t len)
{
    ck_assert(!r->replied);
    r->replied = true;
    if (r->gone) { r->dropped = true; return; }
    r->status = status;
    snprintf(r->ctype, sizeof r->ctype, "%s", ct ? ct : "");
    snprintf(r->out, sizeof r->out, "%.*s", (int)len, body ? body : "");
}
void acdm_http_problem(acdm_req *r, int status, const char *title, const char *fmt, ...)
{
    (void)fmt;
    acdm_http_reply(r, status, "application/problem+json", title, strlen(title));
}
int acdm_ws_send(acdm_ws *ws, const char *text, size_t len)
{
    ck_assert_int_lt(ws->n, FAKE_WS_LOG);
    snprintf(ws->msgs[ws->n++], sizeof ws->msgs[0], "%.*s", (int)len, text);
    return 0;
}
void acdm_ws_close(acdm_ws *ws, int code, const char *reason) { (void)reason; ws->closed_code = code; }
void acdm_ws_set_user(acdm_ws *ws, void *p) { ws->user = p; }
void *acdm_ws_user(const acdm_ws *ws) { return ws->user; }
/* the plugin bridge's failed sign-in limiter asks for the peer (acdm_req_peer above: the
 * test's peer, or "") and may add Retry-After */
const char *acdm_ws_peer(const acdm_ws *ws) { (void)ws; return "127.0.0.1"; }
void acdm_http_add_header(acdm_req *r, const char *name, const char *value) { (void)r; (void)name; (void)value; }

/* The last message sent on ws ("" before the first). */
static inline const char *fake_ws_last(const acdm_ws *ws)
{
    return ws->n ? ws->msgs[ws->n - 1] : "";
}

/* The live (not unrouted) route registered for exactly `pattern`, or NULL. */
static inline fake_route *find_route(acdm_http *h, const char *pattern)
{
    for (int k = 0; k < h->n; k++)
        if (!strcmp(h->r[k].pattern, pattern) && !h->r[k].gone) return &h->r[k];
    return NULL;
}

/* The live route of fake_http for `pattern`; the test fails when there is none. */
static inline fake_route *route(const char *pattern)
{
    fake_route *r = find_route(&fake_http, pattern);
    ck_assert_msg(r != NULL, "no route %s", pattern);
    return r;
}

#endif
