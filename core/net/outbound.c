/* outbound.c -- acdmd's one outbound client (libcurl): HTTP on the loop through libcurl multi
 * driven by libuv, and blocking GET and SMTP transfers for worker threads. See outbound.h. */
#include "net/outbound.h"
#include "base/log.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WHO "outbound"

#define DLIST_ADD(head, x) do { \
        (x)->prev = NULL; \
        (x)->next = (head); \
        if (head) (head)->prev = (x); \
        (head) = (x); \
    } while (0)
#define DLIST_DEL(head, x) do { \
        if ((x)->prev) (x)->prev->next = (x)->next; \
        else (head) = (x)->next; \
        if ((x)->next) (x)->next->prev = (x)->prev; \
        (x)->prev = (x)->next = NULL; \
    } while (0)

struct acdm_out_req {
    struct acdm_out_req *prev, *next;
    acdm_outbound *o;
    CURL *easy;
    struct curl_slist *headers;
    acdm_out_done done;
    void *user;
    char *buf;
    size_t len, cap, max_body;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct out_sock {
    struct out_sock *prev, *next;
    uv_poll_t h;
    acdm_outbound *o;
    curl_socket_t fd;
} out_sock;

struct acdm_outbound {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    out_sock *socks;
    acdm_out_req *reqs;
    int open_handles;            /* uv handles not yet closed (timer, sockets) */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_global(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ------------------------------------------------------------------ what every transfer gets */

/* The options every HTTP transfer of acdmd gets, on loop or worker thread. */
static CURLcode common_http(CURL *e, long timeout_ms)
{
    CURLcode bad = CURLE_OK, c;
#define SET(opt, val) do { c = curl_easy_setopt(e, opt, val); if (c != CURLE_OK) bad = c; } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : ACDM_OUT_DEFAULT_TIMEOUT_MS);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_USERAGENT, "acdm/" ACDM_VERSION);
#undef SET
    return bad;
}

static bool http_url(const char *url)
{
    return url && (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8));
}

/* A growable response body with a cap (the write callback of every HTTP transfer). */
typedef struct { char *buf; size_t len, cap, max; bool too_big; } body_buf;

static size_t body_add(body_buf *b, const char *data, size_t add)
{
    if (b->len + add > (b->max ? b->max : ACDM_OUT_DEFAULT_MAX_BODY)) { b->too_big = true; return 0; }
    if (b->len + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + add + 1) cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) return 0;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, add);
    b->len += add;
    b->buf[b->len] = 0;
    return add;
}

/* ------------------------------------------------------------------ on the loop (multi) */

static size_t req_write(char *data, size_t size, size_t n, void *user)
{
    acdm_out_req *r = user;
    body_buf b = {r->buf, r->len, r->cap, r->max_body, false};
    size_t got = body_add(&b, data, size * n);
    r->buf = b.buf; r->len = b.len; r->cap = b.cap;
    if (b.too_big) r->too_big = true;
    return got;
}

static void req_free(acdm_out_req *r)
{
    if (r->easy) curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->buf);
    free(r);
}

static void check_done(acdm_outbound *o)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(o->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        acdm_out_req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode res = m->data.result;
        curl_multi_remove_handle(o->multi, m->easy_handle);
        if (!r) continue;
        DLIST_DEL(o->reqs, r);
        long status = 0;
        const char *error = NULL;
        if (r->too_big) { status = -1; error = "response body too large"; }
        else if (res != CURLE_OK) {
            status = -(long)res;
            error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(res);
        } else curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        r->done(r->user, (int)status, r->buf ? r->buf : "", r->len, error);
        req_free(r);
    }
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    out_sock *cs = h->data;
    acdm_outbound *o = cs->o;
    int flags = 0, running;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(o->multi, cs->fd, flags, &running);
    check_done(o);
}

static void sock_freed(uv_handle_t *h)
{
    out_sock *cs = h->data;
    cs->o->open_handles--;
    free(cs);
}

static void sock_close(acdm_outbound *o, out_sock *cs)
{
    DLIST_DEL(o->socks, cs);
    uv_poll_stop(&cs->h);
    uv_close((uv_handle_t *)&cs->h, sock_freed);
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    acdm_outbound *o = userp;
    out_sock *cs = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (cs) sock_close(o, cs);   /* libcurl forgets the socket itself */
        return 0;
    }
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs) return -1;
        if (uv_poll_init_socket(o->loop, &cs->h, s) < 0) { free(cs); return -1; }
        cs->h.data = cs; cs->o = o; cs->fd = s;
        o->open_handles++;
        DLIST_ADD(o->socks, cs);
        curl_multi_assign(o->multi, s, cs);
    }
    int ev = ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
    uv_poll_start(&cs->h, ev, poll_cb);
    return 0;
}

static void timeout_fire(uv_timer_t *t)
{
    acdm_outbound *o = t->data;
    int running;
    curl_multi_socket_action(o->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(o);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    acdm_outbound *o = userp;
    if (timeout_ms < 0) uv_timer_stop(&o->timer);
    else uv_timer_start(&o->timer, timeout_fire, (uint64_t)timeout_ms, 0);
    return 0;
}

int acdm_outbound_create(uv_loop_t *loop, acdm_outbound **out)
{
    if (!loop || !out) return ACDM_EINVAL;
    pthread_once(&curl_once, curl_global);
    acdm_outbound *o = calloc(1, sizeof *o);
    if (!o) return ACDM_ENOMEM;
    o->loop = loop;
    o->multi = curl_multi_init();
    if (!o->multi) { free(o); return ACDM_ENOMEM; }
    uv_timer_init(loop, &o->timer);
    o->timer.data = o;
    o->open_handles = 1;
    curl_multi_setopt(o->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(o->multi, CURLMOPT_SOCKETDATA, o);
    curl_multi_setopt(o->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(o->multi, CURLMOPT_TIMERDATA, o);
    *out = o;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    acdm_outbound *o = h->data;
    o->open_handles--;
}

void acdm_outbound_destroy(acdm_outbound *o)
{
    if (!o) return;
    while (o->reqs) {                  /* the owner hears "cancelled" and frees its context */
        acdm_out_req *r = o->reqs;
        DLIST_DEL(o->reqs, r);
        curl_multi_remove_handle(o->multi, r->easy);
        r->done(r->user, -1, "", 0, "cancelled");
        req_free(r);
    }
    curl_multi_cleanup(o->multi);
    while (o->socks) sock_close(o, o->socks);
    uv_timer_stop(&o->timer);
    uv_close((uv_handle_t *)&o->timer, timer_closed);
    while (o->open_handles > 0) uv_run(o->loop, UV_RUN_NOWAIT);
    free(o);
}

int acdm_out_start(acdm_outbound *o, const acdm_out_opts *opts, acdm_out_done done, void *user,
                   acdm_out_req **req, char *err, size_t errlen)
{
    if (req) *req = NULL;
    if (!o || !opts || !done) return ACDM_EINVAL;
    if (!http_url(opts->url)) {
        if (err) snprintf(err, errlen, "only http:// and https:// URLs");
        return ACDM_EINVAL;
    }
    acdm_out_req *r = calloc(1, sizeof *r);
    if (!r) return ACDM_ENOMEM;
    r->o = o; r->done = done; r->user = user; r->max_body = opts->max_body;
    if (!(r->easy = curl_easy_init())) { free(r); return ACDM_ENOMEM; }
    CURL *e = r->easy;
    CURLcode bad = common_http(e, opts->timeout_ms), c;
#define SET(opt, val) do { c = curl_easy_setopt(e, opt, val); if (c != CURLE_OK) bad = c; } while (0)
    SET(CURLOPT_URL, opts->url);
    SET(CURLOPT_PRIVATE, (void *)r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_WRITEFUNCTION, req_write);
    SET(CURLOPT_WRITEDATA, (void *)r);
    const char *method = opts->method ? opts->method : (opts->body ? "POST" : "GET");
    if (opts->body) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE,
            (curl_off_t)(opts->body_len ? opts->body_len : strlen(opts->body)));
        SET(CURLOPT_COPYPOSTFIELDS, opts->body);
    } else if (!strcmp(method, "POST")) {
        SET(CURLOPT_POSTFIELDSIZE, 0L);
        SET(CURLOPT_POSTFIELDS, "");
    }
    if (strcmp(method, "GET") && strcmp(method, "POST")) SET(CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD")) SET(CURLOPT_NOBODY, 1L);
    for (const char *const *h = opts->headers; h && *h; h++) {
        struct curl_slist *n = curl_slist_append(r->headers, *h);
        if (!n) { bad = CURLE_OUT_OF_MEMORY; break; }
        r->headers = n;
    }
    if (r->headers) SET(CURLOPT_HTTPHEADER, r->headers);
#undef SET
    if (bad != CURLE_OK) {
        if (err) snprintf(err, errlen, "%s", curl_easy_strerror(bad));
        req_free(r);
        return ACDM_EINVAL;
    }
    if (curl_multi_add_handle(o->multi, e) != CURLM_OK) { req_free(r); return ACDM_EIO; }
    DLIST_ADD(o->reqs, r);
    if (req) *req = r;
    return 0;
}

void acdm_out_cancel(acdm_out_req *r)
{
    if (!r) return;
    acdm_outbound *o = r->o;
    DLIST_DEL(o->reqs, r);
    curl_multi_remove_handle(o->multi, r->easy);
    req_free(r);
}

/* ------------------------------------------------------------------ blocking, worker threads */

static size_t sync_write(char *data, size_t size, size_t n, void *user)
{
    return body_add(user, data, size * n);
}

int acdm_out_get_sync(const char *url, long timeout_ms, size_t max_body, char **body, size_t *len,
                      long *status, char *err, size_t errlen)
{
    *body = NULL;
    *len = 0;
    *status = 0;
    if (!http_url(url)) { snprintf(err, errlen, "only http:// and https:// URLs"); return ACDM_EINVAL; }
    pthread_once(&curl_once, curl_global);
    CURL *c = curl_easy_init();
    if (!c) { snprintf(err, errlen, "out of memory"); return ACDM_ENOMEM; }
    body_buf b = {.max = max_body};
    CURLcode rc = common_http(c, timeout_ms);
    if (rc == CURLE_OK) rc = curl_easy_setopt(c, CURLOPT_URL, url);
    if (rc == CURLE_OK) rc = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sync_write);
    if (rc == CURLE_OK) rc = curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (rc == CURLE_OK) rc = curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    if (rc == CURLE_OK) rc = curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
    if (rc == CURLE_OK) rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    if (b.too_big) { free(b.buf); snprintf(err, errlen, "response body too large"); return ACDM_EIO; }
    if (rc != CURLE_OK) { free(b.buf); snprintf(err, errlen, "%s", curl_easy_strerror(rc)); return ACDM_EIO; }
    *body = b.buf;
    *len = b.len;
    return 0;
}

/* Adds "<addr>" for each comma-separated address of list to *rcpt. */
static bool add_rcpts(struct curl_slist **rcpt, const char *list)
{
    for (const char *p = list; *p;) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ') n--;
        if (n) {
            char a[320];
            snprintf(a, sizeof a, "<%.*s>", (int)(n < 300 ? n : 300), p);
            struct curl_slist *l = curl_slist_append(*rcpt, a);
            if (!l) return false;
            *rcpt = l;
        }
        p += strcspn(p, ",");
    }
    return *rcpt != NULL;
}

int acdm_out_smtp_send(const acdm_out_mail *m, char *err, size_t errlen)
{
    pthread_once(&curl_once, curl_global);
    CURL *c = curl_easy_init();
    if (!c) { snprintf(err, errlen, "mail: out of memory"); return ACDM_ENOMEM; }
    struct curl_slist *rcpt = NULL, *hdr = NULL;
    curl_mime *mime = curl_mime_init(c);
    char from[320], line[600], date[64];
    snprintf(from, sizeof from, "<%s>", m->from);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "Date: %a, %d %b %Y %H:%M:%S %z", &tm);   /* C locale: English names, as RFC 5322 wants */
    bool ok = mime && add_rcpts(&rcpt, m->to);
    snprintf(line, sizeof line, "Subject: %s", m->subject);
    ok = ok && (hdr = curl_slist_append(hdr, line));
    snprintf(line, sizeof line, "From: %s", m->from);
    ok = ok && curl_slist_append(hdr, line) && curl_slist_append(hdr, date);
    snprintf(line, sizeof line, "To: %s", m->to);
    ok = ok && curl_slist_append(hdr, line);
    curl_mimepart *part = ok ? curl_mime_addpart(mime) : NULL;
    ok = part && !curl_mime_data(part, m->text, CURL_ZERO_TERMINATED) &&
         !curl_mime_type(part, "text/plain; charset=utf-8");
    for (size_t i = 0; ok && i < m->n_parts; i++) {
        part = curl_mime_addpart(mime);
        ok = part && !curl_mime_data(part, m->parts[i].data, m->parts[i].len) &&
             !curl_mime_type(part, m->parts[i].content_type) && !curl_mime_filename(part, m->parts[i].name) &&
             !curl_mime_encoder(part, "base64");
    }
    if (!ok) {
        snprintf(err, errlen, "mail: out of memory");
    } else {
        curl_easy_setopt(c, CURLOPT_URL, m->url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
        curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
        /* STARTTLS when the server offers it; required when signing in (no password in clear) */
        curl_easy_setopt(c, CURLOPT_USE_SSL, (long)(m->username || m->password ? CURLUSESSL_ALL : CURLUSESSL_TRY));
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, m->timeout_ms > 0 ? m->timeout_ms : 120000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        if (m->username) curl_easy_setopt(c, CURLOPT_USERNAME, m->username);
        if (m->password) curl_easy_setopt(c, CURLOPT_PASSWORD, m->password);
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK) {
            snprintf(err, errlen, "mail to %.200s via %.200s: %s", m->to, m->url, curl_easy_strerror(rc));
            ok = false;
        }
    }
    curl_mime_free(mime);
    curl_slist_free_all(rcpt);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return ok ? 0 : ACDM_EIO;
}
