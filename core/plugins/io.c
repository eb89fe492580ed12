/* io.c -- outbound HTTP for plugins and the core (screen-pop): libcurl multi driven by the
 * libuv loop (uv_poll per socket, one uv_timer). */
#include "plugins/plugins_int.h"

#define WHO "plugins"

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
        else if (acdm_plg_live(inst))
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

void acdm_plg_curl_sock_close(acdm_plugins *p, curl_sock *cs)
{
    DLIST_DEL(p->socks, cs);
    uv_poll_stop(&cs->h);
    uv_close((uv_handle_t *)&cs->h, curl_sock_freed);
}

int acdm_plg_curl_socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    acdm_plugins *p = userp;
    curl_sock *cs = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (cs) acdm_plg_curl_sock_close(p, cs);   /* libcurl forgets the socket itself */
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

int acdm_plg_curl_timer_cb(CURLM *m, long timeout_ms, void *userp)
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

void acdm_plg_outreq_free(outreq *rq)
{
    if (rq->easy) curl_easy_cleanup(rq->easy);
    curl_slist_free_all(rq->headers);
    free(rq->buf);
    free(rq);
}

int acdm_plg_host_http_request(acdm_instance *inst, const acdm_http_out *req, acdm_http_done done,
                             void *user)
{
    if (!acdm_plg_live(inst) || !req || !done || req->struct_size < HTTP_OUT_NEEDS || !req->url)
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
        acdm_plg_outreq_free(rq);
        return ACDM_EINVAL;
    }
    if (curl_multi_add_handle(p->multi, e) != CURLM_OK) { acdm_plg_outreq_free(rq); return ACDM_EIO; }
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
        acdm_plg_outreq_free(rq);
        return ACDM_EINVAL;
    }
    if (curl_multi_add_handle(p->multi, e) != CURLM_OK) { acdm_plg_outreq_free(rq); return ACDM_EIO; }
    DLIST_ADD(p->core_reqs, rq);
    return 0;
}
