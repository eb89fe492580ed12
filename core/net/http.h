/* http.h -- the generic HTTP + websocket server of acdmd (libwebsockets on the daemon's libuv loop). */
#ifndef ACDM_HTTP_H
#define ACDM_HTTP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <jansson.h>

#include "base/acdm.h"

/*
 * The server knows nothing of queues or agents: the engine and plugins register routes and
 * websocket endpoints. Every function here must be called on the loop thread (the thread that
 * runs uv_run on the loop given to acdm_http_create). None is thread-safe.
 *
 * Strings returned by the acdm_req_* and acdm_ws_* accessors are borrowed: they live as long as
 * the request (until it is replied) or the websocket (until its close callback returns).
 */

typedef struct acdm_http acdm_http;
typedef struct acdm_req acdm_req;      /* one HTTP request; valid until replied */
typedef struct acdm_ws acdm_ws;        /* one websocket connection; valid until close returns */

typedef void (*acdm_route_fn)(void *user, acdm_req *req);

#define ACDM_HTTP_BODY_LIMIT_DEFAULT (1024u * 1024u)  /* request bodies; over -> 413 */
#define ACDM_WS_MSG_LIMIT (64u * 1024u)               /* incoming ws message; over -> close 1009 */
#define ACDM_WS_QUEUE_LIMIT (4u * 1024u * 1024u)      /* outgoing ws queue; over -> closed */

/* Creates the server and starts listening on host:port (port 0 = ephemeral; host NULL or "" =
 * all interfaces, "::" = all IPv6+IPv4, "::1", "127.0.0.1"...). ui_dir (may be NULL): files
 * served for GET requests no route matches ("/" -> index.html). Returns 0 and *out, or a
 * negative ACDM_E* code with a sentence in err. */
int acdm_http_create(uv_loop_t *loop, const char *host, int port, const char *ui_dir,
                     acdm_http **out, char *err, size_t errlen);
/* Several listeners (vhosts of one libwebsockets context, the same routes on each): host/port
 * as above; cert_file and key_file (PEM; both or neither) make it serve TLS only: TLS 1.2 at
 * least, a forward-secret AEAD cipher list for 1.2, and Strict-Transport-Security on every
 * response. A certificate that cannot be loaded, whose key does not match, or that is expired
 * or not yet valid is refused with a sentence in err. */
#define ACDM_HTTP_MAX_LISTENERS 8
typedef struct {
    const char *host;
    int port;
    const char *cert_file, *key_file;
    /* what the listener serves (NULL/0: everything): groups "api" (/api/...), "ws" (the /ws
     * websocket), "ui" (the static UI files), "metrics" (/metrics), "channels" (/channels/...),
     * or path prefixes ("/channels/website/", "/api/v1/health"). Anything else: 404. */
    const char *const *routes;
    size_t n_routes;
} acdm_http_listener;
int acdm_http_create_listeners(uv_loop_t *loop, const acdm_http_listener *ls, size_t n,
                               const char *ui_dir, acdm_http **out, char *err, size_t errlen);
/* Adds a listener to a running server: its index, or a negative code with a sentence in err. */
int acdm_http_listen(acdm_http *h, const acdm_http_listener *l, char *err, size_t errlen);
/* Replaces listener i's routes (a reload); n 0: everything. 0, or ACDM_EINVAL/ENOMEM. */
int acdm_http_listener_set_routes(acdm_http *h, size_t i, const char *const *routes, size_t n);
size_t acdm_http_n_listeners(const acdm_http *h);
int acdm_http_listener_port(const acdm_http *h, size_t i);   /* bound port, -1 if none */
bool acdm_http_listener_tls(const acdm_http *h, size_t i);
/* Reads every TLS listener's certificate and key files again (a renewal, SIGHUP): each pair
 * is checked on a context of its own first (loads, key matches, not expired, already valid)
 * and only then put in service: new handshakes get it, open connections stay. A pair that
 * fails is logged and refused, and that listener keeps its certificate. Returns 0, or the
 * first failure's code with its sentence in err; *renewed (may be NULL) counts listeners whose
 * certificate changed. */
int acdm_http_tls_reload(acdm_http *h, int *renewed, char *err, size_t errlen);
/* The check alone: 0 and the expiry text in not_after (may be NULL), or ACDM_EINVAL + err. */
int acdm_http_tls_check(const char *cert_file, const char *key_file, char *not_after, size_t nalen,
                        char *err, size_t errlen);

/* The bound port (useful with port 0) of the first listener. */
int acdm_http_port(const acdm_http *h);
/* More origins the UI may connect to (CSP connect-src), space-separated, e.g. the OpenID
 * Connect token endpoint's "https://login.microsoftonline.com"; NULL for none. Copied. */
void acdm_http_set_ui_connect(acdm_http *h, const char *origins);
/* Open connections (HTTP and websocket) one client address may hold; more are closed at
 * accept. 0 = no limit (the default until set). */
void acdm_http_set_conn_limit(acdm_http *h, int per_address);
/* Called for a request with a body once its headers are in, before the body is read (so a
 * stranger cannot hold a connection with a slow body): return 0 to go on, or reply to r
 * (401, 429, ...) and return 1: the connection is then closed without reading the body. */
typedef int (*acdm_http_early_fn)(void *user, acdm_req *r);
void acdm_http_set_early(acdm_http *h, acdm_http_early_fn fn, void *user);
/* Bounds of a request (docs/operations.md, "Limits"): its headers within ACDM_HTTP_HEADER_S,
 * its body within ACDM_HTTP_BODY_S of the headers and at least ACDM_HTTP_MIN_RATE bytes/s after
 * the first ACDM_HTTP_RATE_GRACE_S seconds; else 408 and the connection is closed. */
#define ACDM_HTTP_HEADER_S 10
/* A URL over ACDM_HTTP_URI_MAX bytes gets 414, headers over ACDM_HTTP_HEADERS_MAX 431 (an
 * Authorization header over it: 401); lws's buffer for them is ACDM_HTTP_HEADER_BUF (beyond it
 * the connection is dropped). */
#define ACDM_HTTP_URI_MAX 8192
#define ACDM_HTTP_HEADERS_MAX 8192
#define ACDM_HTTP_HEADER_BUF (128 * 1024)
#define ACDM_HTTP_BODY_S 30
#define ACDM_HTTP_RATE_GRACE_S 3
#define ACDM_HTTP_MIN_RATE 512
/* Request body limit in bytes (default ACDM_HTTP_BODY_LIMIT_DEFAULT). */
void acdm_http_set_body_limit(acdm_http *h, size_t limit);
/* Closes every connection (open websockets get their close callback now), frees every request
 * still unreplied (a later reply to one of them is a use-after-free: don't), and the server.
 * libwebsockets closes its uv handles asynchronously: after this, run the loop
 * (uv_run(loop, UV_RUN_DEFAULT)) until it returns before uv_loop_close. */
void acdm_http_destroy(acdm_http *h);

/* Registers a route. pattern: exact "/api/v1/queues", with parameters "/api/v1/berichten/{id}"
 * ({name} matches one non-empty path segment), or prefix "/channels/web1/ *" (no space; a
 * trailing "/ *" matches the path itself and everything below it). method NULL = any method.
 * The most specific route wins (longest literal text before the first { or *; then exact over
 * prefix; then most literal characters). Registering the same method+pattern twice is
 * ACDM_EEXIST. pattern and method are copied; user is borrowed. Returns route id > 0 or a
 * negative ACDM_E* code. */
int acdm_http_route(acdm_http *h, const char *method, const char *pattern, acdm_route_fn fn,
                    void *user);
/* Removes a route or websocket endpoint. Requests already dispatched are unaffected; websockets
 * opened on a removed endpoint get their close callback now and are closed (1001). */
void acdm_http_unroute(acdm_http *h, int route_id);

/* Request accessors. All return borrowed strings valid until the request is replied. */
const char *acdm_req_method(const acdm_req *r);                     /* "GET", "POST", ... */
const char *acdm_req_path(const acdm_req *r);                       /* decoded path, no query */
const char *acdm_req_param(const acdm_req *r, const char *name);    /* {name}; NULL if none */
const char *acdm_req_rest(const acdm_req *r);                       /* what "/ *" matched, "" or "/..." */
const char *acdm_req_query(const acdm_req *r, const char *name);    /* URL-decoded arg or NULL */
/* The query string as lws hands it over: "a=1&b=2", already percent-decoded (lws decodes the
 * whole URI), so use acdm_req_query for values. NULL if there is none. */
const char *acdm_req_query_string(const acdm_req *r);
/* Case-insensitive header lookup (authorization, content-type, origin, idempotency-key, ...).
 * NULL if absent, or if the client has gone away while an async reply was pending. */
const char *acdm_req_header(acdm_req *r, const char *name);
const char *acdm_req_body(const acdm_req *r, size_t *len);          /* NUL-terminated; "" if none */
const char *acdm_req_bearer(acdm_req *r);                           /* "Authorization: Bearer X" -> X */
const char *acdm_req_peer(acdm_req *r);                             /* client IP text, or "" */
/* The query rebuilt from its arguments, each name and value percent-encoded again (RFC 3986
 * unreserved bytes kept, every other byte %XX): lws decodes the URI as it parses and keeps no
 * copy of the bytes as sent, but it splits arguments only at a literal '&' or ';' and keeps
 * %2B ('+') and %26 ('&') inside their value, so every argument decodes to exactly what the
 * client sent. NULL if there is no query. */
const char *acdm_req_query_raw(acdm_req *r);
/* "http://" Host path ["?" acdm_req_query_raw] (path percent-encoded the same way). */
const char *acdm_req_url(acdm_req *r);
/* One request header: lowercase name, value as sent (borrowed, as the request). */
typedef struct { const char *name; const char *value; } acdm_hdr;
/* The request's headers: every header lws 4.1 has a token for, and the custom headers of a
 * fixed list (webhook signatures such as x-hub-signature-256 and x-twilio-signature, ids,
 * x-forwarded-*, x-kannel-*; see custom_headers in http.c): lws 4.1 stores other custom
 * headers but cannot list them. *out is the array (NULL when none); returns its length. */
size_t acdm_req_headers(acdm_req *r, const acdm_hdr **out);
/* true while the client is still connected (an async reply would be delivered). */
int acdm_req_alive(const acdm_req *r);

/* Exactly one reply per request: now (inside the route fn) or later on the loop thread (async,
 * e.g. after a database commit). After the reply call r is invalid. If the client went away
 * meanwhile, the reply is dropped and r freed. Every response carries Content-Length and
 * Cache-Control: no-store (unless set with acdm_http_add_header). */
void acdm_http_reply(acdm_req *r, int status, const char *content_type, const char *body,
                     size_t len);                                   /* body copied */
void acdm_http_reply_json(acdm_req *r, int status, json_t *obj);   /* steals obj (NULL -> null) */
/* 200 with the file at path as the body, streamed by lws in chunks (never read whole), with the
 * headers added before (Content-Length from the file). Only inside the route fn (not async);
 * a file that cannot be opened is a 404. */
void acdm_http_reply_file(acdm_req *r, const char *path, const char *content_type);
/* RFC 9457 application/problem+json {type:"about:blank", title, status, detail}. */
void acdm_http_problem(acdm_req *r, int status, const char *title, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds a response header (copied), before the reply, e.g. Location. */
void acdm_http_add_header(acdm_req *r, const char *name, const char *value);

/* Responses sent since start, by route class (the path's: /api/… "api", /channels/… "channels",
 * /metrics "metrics", anything else "ui") and status (100-599), for GET /metrics. */
enum { ACDM_HTTP_CLASS_API, ACDM_HTTP_CLASS_CHANNELS, ACDM_HTTP_CLASS_METRICS, ACDM_HTTP_CLASS_UI,
       ACDM_HTTP_CLASS_COUNT };
const char *acdm_http_class_name(int cls);
uint64_t acdm_http_responses(const acdm_http *h, int cls, int status);
/* Websockets open now (returned) and accepted since start (*opened, may be NULL). */
size_t acdm_http_ws_open(const acdm_http *h, uint64_t *opened);

/* ---------------------------------------------------------------- websockets */

typedef struct {
    /* A client asks to upgrade. upgrade_req (path, query, headers, bearer, peer) is valid only
     * during the call; it must not be replied. Return 0 to accept, negative to refuse (403).
     * ws may be used (set_user, send: queued until the handshake is done) from here on. */
    int (*open)(void *user, acdm_ws *ws, acdm_req *upgrade_req);
    /* One complete message (fragments reassembled), borrowed, NUL-terminated. */
    void (*message)(void *user, acdm_ws *ws, const char *data, size_t len);
    /* The connection is gone; ws is invalid after this returns. */
    void (*close)(void *user, acdm_ws *ws);
} acdm_ws_handlers;

/* Registers a websocket endpoint at an exact path ("/ws", "/channels/web1/ws"). hd is copied,
 * user borrowed. Returns an id (remove with acdm_http_unroute) or negative (ACDM_EEXIST). */
int acdm_http_ws(acdm_http *h, const char *path, const acdm_ws_handlers *hd, void *user);
/* Queues a text message (copied); it is written when the socket is writeable. Returns 0, or
 * ACDM_ECLOSED if the connection is closing, or ACDM_EFULL when the queue would exceed
 * ACDM_WS_QUEUE_LIMIT: the slow consumer is then disconnected (close callback follows). */
int acdm_ws_send(acdm_ws *ws, const char *text, size_t len);
/* Bytes queued for ws and not yet written (pushes that a newer one supersedes may skip a busy
 * socket). */
size_t acdm_ws_queued(const acdm_ws *ws);
/* Sends what is queued, then closes with code (e.g. 1000) and reason (<= 123 bytes). The close
 * callback follows. */
void acdm_ws_close(acdm_ws *ws, int code, const char *reason);
void acdm_ws_set_user(acdm_ws *ws, void *p);
void *acdm_ws_user(const acdm_ws *ws);
const char *acdm_ws_peer(const acdm_ws *ws);
const char *acdm_ws_path(const acdm_ws *ws);

#endif
