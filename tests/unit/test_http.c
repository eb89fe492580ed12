/* test_http.c -- unit tests of core/net/http.c: routes, bodies, errors, async replies, static files, websockets. */
#include "net/http.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- server on a loop thread */

static struct {
    uv_loop_t loop;
    uv_async_t stop;
    acdm_http *h;
    pthread_t th;
    int port;
    char dir[256];
    int async_dropped;          /* async replies made after the client left (loop thread) */
    int ws_closed;              /* close callbacks seen (loop thread) */
    int flood_rc;               /* first failing acdm_ws_send of a flood */
} S;

typedef struct {
    uv_timer_t t;
    acdm_req *req;
    int slow;
} pending;

static void on_pending_closed(uv_handle_t *hd) { free(hd->data); }

static void on_timer(uv_timer_t *t)
{
    pending *p = t->data;
    if (p->slow) {
        if (!acdm_req_alive(p->req)) S.async_dropped++;
        acdm_http_reply(p->req, 200, "text/plain", "late", 4);   /* client gone: freed */
    } else {
        json_t *o = json_pack("{s:s, s:s}", "async", "yes", "path", acdm_req_path(p->req));
        acdm_http_reply_json(p->req, 200, o);
    }
    uv_close((uv_handle_t *)t, on_pending_closed);
}

static void rt_async(void *user, acdm_req *r)
{
    (void)user;
    pending *p = calloc(1, sizeof *p);
    p->req = r;
    p->slow = acdm_req_query(r, "slow") != NULL;
    uv_timer_init(&S.loop, &p->t);
    p->t.data = p;
    uv_timer_start(&p->t, on_timer, p->slow ? 600 : 100, 0);
}

static void rt_queues(void *user, acdm_req *r)
{
    acdm_http_reply_json(r, 200, json_pack("{s:s, s:s}", "route", (const char *)user,
                                           "method", acdm_req_method(r)));
}

static void rt_bericht(void *user, acdm_req *r)
{
    (void)user;
    acdm_http_reply_json(r, 200, json_pack("{s:s, s:s?}", "id", acdm_req_param(r, "id"),
                                           "ev", acdm_req_param(r, "ev")));
}

static void rt_post(void *user, acdm_req *r)
{
    (void)user;
    size_t len;
    const char *body = acdm_req_body(r, &len);
    json_t *o = json_pack("{s:i, s:s, s:s?, s:s?, s:s?, s:s}", "len", (int)len, "body", body,
                          "ctype", acdm_req_header(r, "Content-Type"), "idem",
                          acdm_req_header(r, "idempotency-key"), "bearer", acdm_req_bearer(r),
                          "peer", acdm_req_peer(r));
    acdm_http_add_header(r, "Location", "/api/v1/berichten/42");
    acdm_http_reply_json(r, 201, o);
}

static void rt_prefix(void *user, acdm_req *r)
{
    (void)user;
    acdm_http_reply_json(r, 200, json_pack("{s:s, s:s}", "rest", acdm_req_rest(r), "method",
                                           acdm_req_method(r)));
}

static void rt_query(void *user, acdm_req *r)
{
    (void)user;
    acdm_http_reply_json(r, 200, json_pack("{s:s?, s:s?, s:s?, s:s?}", "a", acdm_req_query(r, "a"),
                                           "b", acdm_req_query(r, "b"), "none",
                                           acdm_req_query(r, "none"), "raw",
                                           acdm_req_query_string(r)));
}

/* the request as a plugin route sees it (ABI 1.1): raw query, URL, peer, header list */
static void rt_raw(void *user, acdm_req *r)
{
    (void)user;
    const acdm_hdr *h = NULL;
    size_t n = acdm_req_headers(r, &h);
    json_t *hd = json_object();
    for (size_t i = 0; i < n; i++) json_object_set_new(hd, h[i].name, json_string(h[i].value));
    acdm_http_reply_json(r, 200, json_pack("{s:s?, s:s?, s:s, s:o}", "query_raw", acdm_req_query_raw(r),
                                           "url", acdm_req_url(r), "peer", acdm_req_peer(r),
                                           "headers", hd));
}

static void rt_problem(void *user, acdm_req *r)
{
    (void)user;
    acdm_http_problem(r, 409, "Conflict", "bericht %s already %s", "b1", "assigned");
}

static void rt_hold(void *user, acdm_req *r)
{
    (void)user;
    (void)r;    /* never replied: freed by acdm_http_destroy */
}

static void rt_stats(void *user, acdm_req *r)
{
    (void)user;
    acdm_http_reply_json(r, 200, json_pack("{s:i, s:i, s:i}", "dropped", S.async_dropped,
                                           "ws_closed", S.ws_closed, "flood_rc", S.flood_rc));
}

static int ws_open(void *user, acdm_ws *ws, acdm_req *req)
{
    (void)user;
    if (acdm_req_query(req, "deny")) return -1;
    acdm_ws_set_user(ws, (void *)"agent-7");
    return acdm_ws_send(ws, "hello", 5);
}

static void ws_message(void *user, acdm_ws *ws, const char *data, size_t len)
{
    (void)user;
    char buf[70000];
    int n = snprintf(buf, sizeof buf, "%s:%.*s", (const char *)acdm_ws_user(ws), (int)len, data);
    if (len == 5 && !memcmp(data, "flood", 5)) {   /* 8 MiB at once: a slow consumer */
        static char chunk[64 * 1024];
        memset(chunk, 'f', sizeof chunk);
        for (int i = 0; i < 128; i++) {
            int rc = acdm_ws_send(ws, chunk, sizeof chunk);
            if (rc) {
                S.flood_rc = rc;
                break;
            }
        }
        return;
    }
    if (len == 5 && !memcmp(data, "close", 5)) {
        acdm_ws_close(ws, 4000, "bye");
        return;
    }
    acdm_ws_send(ws, buf, (size_t)n);
}

static void ws_closecb(void *user, acdm_ws *ws)
{
    (void)user;
    (void)ws;
    S.ws_closed++;
}

static const acdm_ws_handlers WS = {ws_open, ws_message, ws_closecb};

static void on_stop(uv_async_t *a)
{
    acdm_http_destroy(S.h);
    S.h = NULL;
    uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg)
{
    (void)arg;
    uv_run(&S.loop, UV_RUN_DEFAULT);
    return NULL;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    char err[256], p[512];
    memset(&S, 0, sizeof S);
    snprintf(S.dir, sizeof S.dir, "/tmp/test_http.%d", (int)getpid());
    mkdir(S.dir, 0700);
    snprintf(p, sizeof p, "%s/ui", S.dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/ui/index.html", S.dir);
    write_file(p, "<h1>acdm</h1>\n");
    snprintf(p, sizeof p, "%s/ui/app.js", S.dir);
    write_file(p, "console.log(1);\n");
    snprintf(p, sizeof p, "%s/secret.txt", S.dir);
    write_file(p, "TOPSECRET\n");
    snprintf(p, sizeof p, "%s/ui", S.dir);

    ck_assert_int_eq(uv_loop_init(&S.loop), 0);
    int rc = acdm_http_create(&S.loop, "127.0.0.1", 0, p, &S.h, err, sizeof err);
    ck_assert_msg(rc == 0, "create: %s", err);
    S.port = acdm_http_port(S.h);
    ck_assert_int_gt(S.port, 0);
    ck_assert_int_gt(acdm_http_route(S.h, "GET", "/api/v1/queues", rt_queues, "queues"), 0);
    ck_assert_int_gt(acdm_http_route(S.h, "GET", "/api/v1/berichten/{id}", rt_bericht, NULL), 0);
    ck_assert_int_gt(acdm_http_route(S.h, "GET", "/api/v1/berichten/{id}/events/{ev}", rt_bericht,
                                     NULL), 0);
    ck_assert_int_gt(acdm_http_route(S.h, "GET", "/api/v1/berichten/special", rt_queues,
                                     "special"), 0);
    ck_assert_int_gt(acdm_http_route(S.h, "POST", "/api/v1/berichten", rt_post, NULL), 0);
    ck_assert_int_gt(acdm_http_route(S.h, NULL, "/channels/web1/*", rt_prefix, NULL), 0);
    ck_assert_int_gt(acdm_http_route(S.h, "GET", "/q", rt_query, NULL), 0);
    ck_assert_int_gt(acdm_http_route(S.h, NULL, "/raw/*", rt_raw, NULL), 0);
    ck_assert_int_gt(acdm_http_route(S.h, "GET", "/async", rt_async, NULL), 0);
    ck_assert_int_gt(acdm_http_route(S.h, "GET", "/problem", rt_problem, NULL), 0);
    ck_assert_int_gt(acdm_http_route(S.h, "GET", "/stats", rt_stats, NULL), 0);
    ck_assert_int_gt(acdm_http_route(S.h, "GET", "/hold", rt_hold, NULL), 0);
    ck_assert_int_gt(acdm_http_ws(S.h, "/ws", &WS, NULL), 0);
    ck_assert_int_eq(uv_async_init(&S.loop, &S.stop, on_stop), 0);
    ck_assert_int_eq(pthread_create(&S.th, NULL, loop_main, NULL), 0);
}

static void teardown(void)
{
    char cmd[400];
    uv_async_send(&S.stop);
    pthread_join(S.th, NULL);
    ck_assert_int_eq(uv_loop_close(&S.loop), 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", S.dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---------------------------------------------------------------- HTTP client helpers */

typedef struct {
    long status;
    char *body;
    size_t len;
    char headers[4096];
    size_t hlen;
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *u)
{
    resp *r = u;
    r->body = realloc(r->body, r->len + sz * n + 1);
    memcpy(r->body + r->len, p, sz * n);
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *u)
{
    resp *r = u;
    size_t k = sz * n;
    if (r->hlen + k < sizeof r->headers) {
        memcpy(r->headers + r->hlen, p, k);
        r->hlen += k;
        r->headers[r->hlen] = '\0';
    }
    return k;
}

/* One request on handle c (NULL: a fresh handle). Returns the curl code. */
static CURLcode req_on(CURL *c, const char *method, const char *path, const char *body,
                       size_t blen, const char *const *hdrs, long timeout_ms, resp *out)
{
    char url[512];
    int own = !c;
    if (own) c = curl_easy_init();
    memset(out, 0, sizeof *out);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", S.port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 5000L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
    } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(c, CURLOPT_NOBODY, !strcmp(method, "HEAD") ? 1L : 0L);   /* after HTTPGET */
    struct curl_slist *sl = NULL;
    for (int i = 0; hdrs && hdrs[i]; i++) sl = curl_slist_append(sl, hdrs[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(sl);
    if (own) curl_easy_cleanup(c);
    if (!out->body) out->body = strdup("");
    return rc;
}

static json_t *get_json(const char *method, const char *path, long want_status, resp *r)
{
    ck_assert_int_eq(req_on(NULL, method, path, NULL, 0, NULL, 0, r), CURLE_OK);
    ck_assert_msg(r->status == want_status, "%s %s: status %ld, want %ld; body %s", method, path,
                  r->status, want_status, r->body);
    json_error_t e;
    json_t *j = json_loads(r->body, 0, &e);
    ck_assert_msg(j != NULL, "%s %s: not JSON: %s", method, path, r->body);
    return j;
}

static const char *js(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static int has_header(const resp *r, const char *line)
{
    return strcasestr(r->headers, line) != NULL;
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_routes)
{
    resp r;
    json_t *j = get_json("GET", "/api/v1/queues", 200, &r);
    ck_assert_str_eq(js(j, "route"), "queues");
    ck_assert(has_header(&r, "content-type: application/json"));
    ck_assert(has_header(&r, "cache-control: no-store"));
    ck_assert(has_header(&r, "content-length: "));
    json_decref(j);
    free(r.body);

    j = get_json("GET", "/api/v1/berichten/0190a2b4-77", 200, &r);
    ck_assert_str_eq(js(j, "id"), "0190a2b4-77");
    json_decref(j);
    free(r.body);

    j = get_json("GET", "/api/v1/berichten/b9/events/e3", 200, &r);
    ck_assert_str_eq(js(j, "id"), "b9");
    ck_assert_str_eq(js(j, "ev"), "e3");
    json_decref(j);
    free(r.body);

    /* the literal route is more specific than {id} */
    j = get_json("GET", "/api/v1/berichten/special", 200, &r);
    ck_assert_str_eq(js(j, "route"), "special");
    json_decref(j);
    free(r.body);

    j = get_json("PUT", "/channels/web1/a/b", 200, &r);
    ck_assert_str_eq(js(j, "rest"), "/a/b");
    ck_assert_str_eq(js(j, "method"), "PUT");
    json_decref(j);
    free(r.body);

    j = get_json("GET", "/channels/web1", 200, &r);
    ck_assert_str_eq(js(j, "rest"), "");
    json_decref(j);
    free(r.body);

    /* HEAD runs the GET route: headers with the GET's Content-Length, no body */
    ck_assert_int_eq(req_on(NULL, "HEAD", "/api/v1/queues", NULL, 0, NULL, 0, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert(has_header(&r, "content-length: 3"));   /* {"route":"queues","method":"HEAD"} */
    ck_assert_uint_eq(r.len, 0);
    free(r.body);

    /* "/channels/web1x" is not under "/channels/web1/" */
    j = get_json("GET", "/channels/web1x", 404, &r);
    json_decref(j);
    free(r.body);
}
END_TEST

START_TEST(test_route_registration)
{
    /* runs on the test thread before the loop touches routes: stop the loop thread first */
    uv_async_send(&S.stop);
    pthread_join(S.th, NULL);
    char err[200];
    acdm_http *h;
    ck_assert_int_eq(acdm_http_create(&S.loop, "127.0.0.1", 0, NULL, &h, err, sizeof err), 0);
    int a = acdm_http_route(h, "GET", "/x/{id}", rt_bericht, NULL);
    ck_assert_int_gt(a, 0);
    ck_assert_int_eq(acdm_http_route(h, "GET", "/x/{id}", rt_bericht, NULL), ACDM_EEXIST);
    ck_assert_int_gt(acdm_http_route(h, "POST", "/x/{id}", rt_bericht, NULL), 0);
    ck_assert_int_eq(acdm_http_route(h, "GET", "x", rt_bericht, NULL), ACDM_EINVAL);
    ck_assert_int_eq(acdm_http_route(h, "GET", "/a/*/b", rt_bericht, NULL), ACDM_EINVAL);
    ck_assert_int_eq(acdm_http_route(h, "GET", "/a/{x", rt_bericht, NULL), ACDM_EINVAL);
    acdm_http_unroute(h, a);
    ck_assert_int_gt(acdm_http_route(h, "GET", "/x/{id}", rt_bericht, NULL), 0);
    int w = acdm_http_ws(h, "/ws", &WS, NULL);
    ck_assert_int_gt(w, 0);
    ck_assert_int_eq(acdm_http_ws(h, "/ws", &WS, NULL), ACDM_EEXIST);
    /* a taken port is refused with a sentence */
    acdm_http *h2 = NULL;
    ck_assert_int_eq(acdm_http_create(&S.loop, "127.0.0.1", acdm_http_port(h), NULL, &h2, err,
                                      sizeof err), ACDM_EIO);
    ck_assert_ptr_null(h2);
    ck_assert_ptr_nonnull(strstr(err, "cannot listen"));
    acdm_http_destroy(h);
    /* restart the loop thread so teardown works */
    uv_async_init(&S.loop, &S.stop, on_stop);
    pthread_create(&S.th, NULL, loop_main, NULL);
}
END_TEST

START_TEST(test_query)
{
    resp r;
    json_t *j = get_json("GET", "/q?a=hello%20world&b=x%2By+z%26w&c", 200, &r);
    ck_assert_str_eq(js(j, "a"), "hello world");
    ck_assert_str_eq(js(j, "b"), "x+y z&w");
    ck_assert_ptr_null(js(j, "none"));
    ck_assert_ptr_nonnull(js(j, "raw"));
    ck_assert_ptr_nonnull(strstr(js(j, "raw"), "a="));
    json_decref(j);
    free(r.body);
    j = get_json("GET", "/q", 200, &r);
    ck_assert_ptr_null(js(j, "raw"));
    ck_assert_ptr_null(js(j, "a"));
    json_decref(j);
    free(r.body);
}
END_TEST

static int raw_connect(void);

/* Reads one HTTP response (headers and a Content-Length body) from fd into buf. */
static char *read_response(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        ck_assert_int_gt(k, 0);
        n += (size_t)k;
        buf[n] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strcasestr(buf, "content-length:");
        if (end && cl && n >= (size_t)(end + 4 - buf) + (size_t)atoi(cl + 15)) return end + 4;
    }
}

START_TEST(test_raw_query_url_and_headers)
{
    /* sent byte for byte: %2B is a plus, %26 inside a value, a literal '+' a space, an argument
     * without '=', ';' as a separator, and headers lws has no token for */
    int fd = raw_connect();
    const char *rq = "GET /raw/x?text=1%2B1%3D2+%26+meer&from=%2b31612345678&flag&a=b;c=%7E HTTP/1.1\r\n"
                     "Host: acdm.example:8080\r\nX-Hub-Signature-256: sha256=ab12\r\n"
                     "X-Twilio-Signature: tw+sig/=\r\nUser-Agent: Kannel/1.4.5\r\n"
                     "X-Kannel-SMSC: smsc1\r\nConnection: close\r\n\r\n";
    ck_assert_int_eq(write(fd, rq, strlen(rq)), (ssize_t)strlen(rq));
    char buf[8192];
    char *body = read_response(fd, buf, sizeof buf);
    close(fd);
    json_t *j = json_loads(body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(js(j, "query_raw"),
                     "text=1%2B1%3D2%20%26%20meer&from=%2B31612345678&flag&a=b&c=~");
    ck_assert_str_eq(js(j, "url"), "http://acdm.example:8080/raw/x?text=1%2B1%3D2%20%26%20meer"
                     "&from=%2B31612345678&flag&a=b&c=~");
    ck_assert_str_eq(js(j, "peer"), "127.0.0.1");
    json_t *h = json_object_get(j, "headers");
    ck_assert_str_eq(js(h, "x-hub-signature-256"), "sha256=ab12");
    ck_assert_str_eq(js(h, "x-twilio-signature"), "tw+sig/=");
    ck_assert_str_eq(js(h, "user-agent"), "Kannel/1.4.5");
    ck_assert_str_eq(js(h, "x-kannel-smsc"), "smsc1");
    ck_assert_str_eq(js(h, "host"), "acdm.example:8080");
    json_decref(j);
    /* without a query: NULL, and the URL has no '?' */
    resp r;
    j = get_json("GET", "/raw/y", 200, &r);
    ck_assert_ptr_null(js(j, "query_raw"));
    ck_assert_ptr_nonnull(strstr(js(j, "url"), "/raw/y"));
    ck_assert_ptr_null(strchr(js(j, "url"), '?'));
    json_decref(j);
    free(r.body);
}
END_TEST

START_TEST(test_errors)
{
    resp r;
    json_t *j = get_json("GET", "/nope", 404, &r);
    ck_assert(has_header(&r, "content-type: application/problem+json"));
    ck_assert_str_eq(js(j, "type"), "about:blank");
    ck_assert_str_eq(js(j, "title"), "Not Found");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 404);
    ck_assert_ptr_nonnull(strstr(js(j, "detail"), "/nope"));
    json_decref(j);
    free(r.body);

    j = get_json("DELETE", "/api/v1/queues", 405, &r);
    ck_assert(has_header(&r, "allow: GET"));
    ck_assert_str_eq(js(j, "title"), "Method Not Allowed");
    json_decref(j);
    free(r.body);

    j = get_json("GET", "/problem", 409, &r);
    ck_assert_str_eq(js(j, "detail"), "bericht b1 already assigned");
    ck_assert(has_header(&r, "content-type: application/problem+json"));
    json_decref(j);
    free(r.body);

    /* 413: a body over the limit (1 MiB) */
    size_t big = 2 * 1024 * 1024;
    char *b = malloc(big);
    memset(b, 'x', big);
    ck_assert_int_eq(req_on(NULL, "POST", "/api/v1/berichten", b, big, NULL, 0, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 413);
    ck_assert_ptr_nonnull(strstr(r.body, "1048576"));
    ck_assert_ptr_nonnull(strstr(r.body, "\"status\":413"));
    free(r.body);
    free(b);

    /* the server still serves */
    j = get_json("GET", "/api/v1/queues", 200, &r);
    json_decref(j);
    free(r.body);
}
END_TEST

START_TEST(test_post_body)
{
    size_t n = 300000;
    char *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++) b[i] = (char)('a' + i % 26);
    b[n] = '\0';
    const char *hd[] = {"Content-Type: text/plain", "Idempotency-Key: k-123",
                        "Authorization: Bearer tok.en-1", NULL};
    resp r;
    ck_assert_int_eq(req_on(NULL, "POST", "/api/v1/berichten", b, n, hd, 0, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 201);
    ck_assert(has_header(&r, "location: /api/v1/berichten/42"));
    json_t *j = json_loads(r.body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "len")), (json_int_t)n);
    ck_assert_str_eq(js(j, "body"), b);
    ck_assert_str_eq(js(j, "ctype"), "text/plain");
    ck_assert_str_eq(js(j, "idem"), "k-123");
    ck_assert_str_eq(js(j, "bearer"), "tok.en-1");
    ck_assert_str_eq(js(j, "peer"), "127.0.0.1");
    json_decref(j);
    free(r.body);

    /* an empty POST: body "" */
    ck_assert_int_eq(req_on(NULL, "POST", "/api/v1/berichten", "", 0, NULL, 0, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 201);
    j = json_loads(r.body, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "len")), 0);
    ck_assert_str_eq(js(j, "body"), "");
    ck_assert_ptr_null(js(j, "bearer"));
    json_decref(j);
    free(r.body);
    free(b);
}
END_TEST

START_TEST(test_async)
{
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    resp r;
    json_t *j = get_json("GET", "/async", 200, &r);
    gettimeofday(&t1, NULL);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    ck_assert_int_ge(ms, 90);
    ck_assert_str_eq(js(j, "async"), "yes");
    ck_assert_str_eq(js(j, "path"), "/async");
    json_decref(j);
    free(r.body);
}
END_TEST

static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

START_TEST(test_async_client_gone)
{
    /* the client resets the connection while the reply is pending (reply at 600 ms): the
     * server sees the connection die, and the late reply is a no-op that frees the request */
    int fd = raw_connect();
    const char *rq = "GET /async?slow=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, rq, strlen(rq)), (ssize_t)strlen(rq));
    usleep(100 * 1000);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);   /* RST */
    /* a client that merely times out (FIN: lws waits for the reply, then writes to a dead
     * socket): no crash either */
    resp r;
    ck_assert_int_eq(req_on(NULL, "GET", "/async?slow=1", NULL, 0, NULL, 150, &r),
                     CURLE_OPERATION_TIMEDOUT);
    free(r.body);
    usleep(900 * 1000);
    json_t *j = get_json("GET", "/stats", 200, &r);
    ck_assert_int_ge(json_integer_value(json_object_get(j, "dropped")), 1);
    json_decref(j);
    free(r.body);
    j = get_json("GET", "/api/v1/queues", 200, &r);
    json_decref(j);
    free(r.body);
}
END_TEST

START_TEST(test_unreplied_at_destroy)
{
    /* a route that never replies: the server frees the request at destroy (LSan checks) */
    resp r;
    ck_assert_int_eq(req_on(NULL, "GET", "/hold", NULL, 0, NULL, 100, &r),
                     CURLE_OPERATION_TIMEDOUT);
    free(r.body);
    ck_assert_int_eq(req_on(NULL, "GET", "/hold", NULL, 0, NULL, 0, &r) == CURLE_OK, 0);
    free(r.body);
}
END_TEST

START_TEST(test_keepalive)
{
    CURL *c = curl_easy_init();
    resp r;
    ck_assert_int_eq(req_on(c, "GET", "/api/v1/queues", NULL, 0, NULL, 0, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    free(r.body);
    const char *b = "{\"x\":1}";
    ck_assert_int_eq(req_on(c, "POST", "/api/v1/berichten", b, strlen(b), NULL, 0, &r),
                     CURLE_OK);
    ck_assert_int_eq(r.status, 201);
    free(r.body);
    ck_assert_int_eq(req_on(c, "GET", "/nope", NULL, 0, NULL, 0, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 404);
    free(r.body);
    ck_assert_int_eq(req_on(c, "GET", "/async", NULL, 0, NULL, 0, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"async\":\"yes\""));
    free(r.body);
    ck_assert_int_eq(req_on(c, "GET", "/api/v1/queues", NULL, 0, NULL, 0, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    free(r.body);
    long conns = -1;
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
    ck_assert_int_eq(conns, 0);   /* the last request reused the connection */
    curl_easy_cleanup(c);
}
END_TEST

START_TEST(test_static)
{
    resp r;
    ck_assert_int_eq(req_on(NULL, "GET", "/", NULL, 0, NULL, 0, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "<h1>acdm</h1>\n");
    ck_assert(has_header(&r, "content-type: text/html"));
    free(r.body);
    ck_assert_int_eq(req_on(NULL, "GET", "/app.js", NULL, 0, NULL, 0, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert(has_header(&r, "content-type: text/javascript"));
    free(r.body);
    ck_assert_int_eq(req_on(NULL, "GET", "/missing.css", NULL, 0, NULL, 0, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 404);
    free(r.body);
    const char *bad[] = {"/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
                         "/ui/../../secret.txt", "//secret.txt"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        req_on(NULL, "GET", bad[i], NULL, 0, NULL, 0, &r);
        ck_assert_msg(r.status != 200 && !strstr(r.body, "TOPSECRET"), "%s: %ld %s", bad[i],
                      r.status, r.body);
        free(r.body);
    }
    /* POST to a static path is not a file request */
    ck_assert_int_eq(req_on(NULL, "POST", "/index.html", "x", 1, NULL, 0, &r), CURLE_OK);
    ck_assert_int_eq(r.status, 404);
    free(r.body);
}
END_TEST

/* ---------------------------------------------------------------- a raw websocket client */

static int ws_connect(const char *path, char *resp_hdr, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    size_t got = 0;
    while (got + 1 < cap) {   /* read the response head byte by byte: no over-read */
        ssize_t k = read(fd, resp_hdr + got, 1);
        if (k <= 0) break;
        got++;
        resp_hdr[got] = '\0';
        if (got >= 4 && !memcmp(resp_hdr + got - 4, "\r\n\r\n", 4)) break;
    }
    resp_hdr[got] = '\0';
    return fd;
}

static void ws_send_frame(int fd, int opcode, int fin, const char *data, size_t len)
{
    unsigned char *f = malloc(len + 14);
    size_t o = 0;
    f[o++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        f[o++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        f[o++] = 0x80 | 126;
        f[o++] = (unsigned char)(len >> 8);
        f[o++] = (unsigned char)len;
    } else {
        f[o++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) f[o++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    const unsigned char mask[4] = {1, 2, 3, 4};
    memcpy(f + o, mask, 4);
    o += 4;
    for (size_t i = 0; i < len; i++) f[o + i] = (unsigned char)data[i] ^ mask[i % 4];
    size_t tot = o + len, w = 0;
    while (w < tot) {
        ssize_t k = write(fd, f + w, tot - w);
        if (k <= 0) break;
        w += (size_t)k;
    }
    free(f);
}

static int read_full(int fd, unsigned char *b, size_t n)
{
    size_t g = 0;
    while (g < n) {
        ssize_t k = read(fd, b + g, n - g);
        if (k <= 0) return -1;
        g += (size_t)k;
    }
    return 0;
}

/* Reads one server frame; returns the opcode (-1 on EOF) and the payload in buf. */
static int ws_read_frame(int fd, char *buf, size_t cap, size_t *len)
{
    unsigned char h[2];
    if (read_full(fd, h, 2)) return -1;
    size_t n = h[1] & 0x7f;
    if (n == 126) {
        unsigned char e[2];
        if (read_full(fd, e, 2)) return -1;
        n = (size_t)e[0] << 8 | e[1];
    } else if (n == 127) {
        unsigned char e[8];
        if (read_full(fd, e, 8)) return -1;
        n = 0;
        for (int i = 0; i < 8; i++) n = n << 8 | e[i];
    }
    ck_assert_uint_lt(n, cap);
    if (read_full(fd, (unsigned char *)buf, n)) return -1;
    buf[n] = '\0';
    *len = n;
    return h[0] & 0x0f;
}

START_TEST(test_websocket)
{
    char hdr[1024], buf[2048];
    size_t len;
    int fd = ws_connect("/ws?x=1", hdr, sizeof hdr);
    ck_assert_msg(strstr(hdr, " 101 ") != NULL, "%s", hdr);
    ck_assert_int_eq(ws_read_frame(fd, buf, sizeof buf, &len), 1);
    ck_assert_str_eq(buf, "hello");
    ws_send_frame(fd, 1, 1, "ping-1", 6);
    ck_assert_int_eq(ws_read_frame(fd, buf, sizeof buf, &len), 1);
    ck_assert_str_eq(buf, "agent-7:ping-1");
    /* fragmented: "frag" + "ment" */
    ws_send_frame(fd, 1, 0, "frag", 4);
    ws_send_frame(fd, 0, 1, "ment", 4);
    ck_assert_int_eq(ws_read_frame(fd, buf, sizeof buf, &len), 1);
    ck_assert_str_eq(buf, "agent-7:fragment");
    /* a 1000-byte message (16-bit length) */
    char big[1000];
    memset(big, 'z', sizeof big);
    ws_send_frame(fd, 1, 1, big, sizeof big);
    ck_assert_int_eq(ws_read_frame(fd, buf, sizeof buf, &len), 1);
    ck_assert_uint_eq(len, 8 + sizeof big);
    /* server-initiated close with code 4000 */
    ws_send_frame(fd, 1, 1, "close", 5);
    ck_assert_int_eq(ws_read_frame(fd, buf, sizeof buf, &len), 8);
    ck_assert_uint_ge(len, 2);
    ck_assert_int_eq(((unsigned char)buf[0] << 8) | (unsigned char)buf[1], 4000);
    close(fd);
    usleep(200 * 1000);
    resp r;
    json_t *j = get_json("GET", "/stats", 200, &r);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "ws_closed")), 1);
    json_decref(j);
    free(r.body);
}
END_TEST

START_TEST(test_websocket_refused)
{
    char hdr[1024];
    int fd = ws_connect("/ws?deny=1", hdr, sizeof hdr);
    ck_assert_msg(strstr(hdr, " 403 ") != NULL, "%s", hdr);
    close(fd);
    fd = ws_connect("/nows", hdr, sizeof hdr);
    ck_assert_msg(strstr(hdr, " 404 ") != NULL, "%s", hdr);
    close(fd);
    resp r;
    json_t *j = get_json("GET", "/api/v1/queues", 200, &r);
    json_decref(j);
    free(r.body);
}
END_TEST

START_TEST(test_websocket_too_big)
{
    char hdr[1024], buf[2048];
    size_t len;
    int fd = ws_connect("/ws", hdr, sizeof hdr);
    ck_assert_msg(strstr(hdr, " 101 ") != NULL, "%s", hdr);
    ck_assert_int_eq(ws_read_frame(fd, buf, sizeof buf, &len), 1);   /* hello */
    size_t n = 100000;
    char *b = malloc(n);
    memset(b, 'y', n);
    ws_send_frame(fd, 1, 1, b, n);
    free(b);
    int op = ws_read_frame(fd, buf, sizeof buf, &len);
    ck_assert_int_eq(op, 8);
    ck_assert_int_eq(((unsigned char)buf[0] << 8) | (unsigned char)buf[1], 1009);
    close(fd);
    /* the server keeps serving, websockets included */
    resp r;
    json_t *j = get_json("GET", "/api/v1/queues", 200, &r);
    json_decref(j);
    free(r.body);
    fd = ws_connect("/ws", hdr, sizeof hdr);
    ck_assert_msg(strstr(hdr, " 101 ") != NULL, "%s", hdr);
    close(fd);
}
END_TEST

START_TEST(test_websocket_slow_consumer)
{
    char hdr[1024], buf[2048];
    size_t len;
    int fd = ws_connect("/ws", hdr, sizeof hdr);
    ck_assert_int_eq(ws_read_frame(fd, buf, sizeof buf, &len), 1);
    ws_send_frame(fd, 1, 1, "flood", 5);   /* and never read */
    usleep(3000 * 1000);                    /* the kill timeout is 2 s */
    resp r;
    json_t *j = get_json("GET", "/stats", 200, &r);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "flood_rc")), ACDM_EFULL);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "ws_closed")), 1);
    json_decref(j);
    free(r.body);
    close(fd);
}
END_TEST

START_TEST(test_ws_open_at_destroy)
{
    /* an open websocket when the server is destroyed gets its close callback; no leak */
    char hdr[1024], buf[64];
    size_t len;
    int fd = ws_connect("/ws", hdr, sizeof hdr);
    ck_assert_int_eq(ws_read_frame(fd, buf, sizeof buf, &len), 1);
    uv_async_send(&S.stop);
    pthread_join(S.th, NULL);
    ck_assert_int_eq(S.ws_closed, 1);
    close(fd);
    uv_async_init(&S.loop, &S.stop, on_stop);
    S.h = NULL;
    pthread_create(&S.th, NULL, loop_main, NULL);
}
END_TEST

START_TEST(test_ipv6)
{
    uv_loop_t loop;
    acdm_http *h;
    char err[200];
    uv_loop_init(&loop);
    int rc = acdm_http_create(&loop, "::1", 0, NULL, &h, err, sizeof err);
    if (rc) {   /* no IPv6 on this host */
        fprintf(stderr, "test_ipv6: skipped: %s\n", err);
        uv_loop_close(&loop);
        return;
    }
    ck_assert_int_gt(acdm_http_port(h), 0);
    /* a connection over ::1 is accepted */
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                             .sin6_port = htons((uint16_t)acdm_http_port(h))};
    inet_pton(AF_INET6, "::1", &a.sin6_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
    acdm_http_destroy(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(acdm_http_create(&loop, "::", 0, NULL, &h, err, sizeof err), 0);
    ck_assert_int_gt(acdm_http_port(h), 0);
    acdm_http_destroy(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_routes);
    tcase_add_test(tc, test_route_registration);
    tcase_add_test(tc, test_query);
    tcase_add_test(tc, test_raw_query_url_and_headers);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_post_body);
    tcase_add_test(tc, test_async);
    tcase_add_test(tc, test_async_client_gone);
    tcase_add_test(tc, test_keepalive);
    tcase_add_test(tc, test_unreplied_at_destroy);
    tcase_add_test(tc, test_static);
    tcase_add_test(tc, test_websocket);
    tcase_add_test(tc, test_websocket_refused);
    tcase_add_test(tc, test_websocket_too_big);
    tcase_add_test(tc, test_websocket_slow_consumer);
    tcase_add_test(tc, test_ws_open_at_destroy);
    suite_add_tcase(s, tc);
    TCase *t6 = tcase_create("ipv6");
    tcase_set_timeout(t6, 10);
    tcase_add_test(t6, test_ipv6);
    suite_add_tcase(s, t6);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (getenv("TEST_HTTP_DEBUG")) acdm_log_level = ACDM_LOG_DEBUG;
    SRunner *sr = srunner_create(suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
