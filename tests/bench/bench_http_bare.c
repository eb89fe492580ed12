/* bench_http_bare.c -- baseline for the REST ingest benchmark: a bare libwebsockets (libuv) server answering POST /api/v1/berichten with a fixed 201. */
#include <libwebsockets.h>
#include <uv.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char REPLY[] = "{\"id\":\"0190a2b4-7c1e-7000-8000-000000000000\",\"state\":\"queued\"}";

struct pss {
    int is_post;        /* POST /api/v1/berichten: answer at body completion */
    size_t body;        /* bytes received (the body is read and dropped) */
};

/* Writes status + fixed body in one write and finishes the transaction. */
static int reply(struct lws *wsi, unsigned status, const char *body, size_t len)
{
    unsigned char buf[LWS_PRE + 512 + sizeof REPLY];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - sizeof REPLY;
    if (lws_add_http_common_headers(wsi, status, "application/json", (lws_filepos_t)len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_http_header(wsi, &p, end))
        return -1;
    memcpy(p, body, len);
    p += len;
    if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_FINAL) < 0) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct pss *pss = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        char *uri;
        int ulen;
        int m = lws_http_get_uri_and_method(wsi, &uri, &ulen);
        pss->body = 0;
        pss->is_post = m == LWSHUMETH_POST && ulen == 17 && !memcmp(uri, "/api/v1/berichten", 17);
        if (m == LWSHUMETH_POST && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
            char cl[24];
            if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 && atol(cl) > 0)
                return 0;   /* wait for the body */
        }
        if (pss->is_post) return reply(wsi, 201, REPLY, sizeof REPLY - 1);
        return reply(wsi, 404, "{\"title\":\"Not Found\"}", 21);
    }
    case LWS_CALLBACK_HTTP_BODY:
        pss->body += len;
        (void)in;
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (pss->is_post) return reply(wsi, 201, REPLY, sizeof REPLY - 1);
        return reply(wsi, 404, "{\"title\":\"Not Found\"}", 21);
    default:
        return 0;
    }
}

static struct lws_protocols protocols[] = {
    {"http", callback, sizeof(struct pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

static struct lws_context *ctx;

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    lws_context_destroy(ctx);
    uv_signal_stop(s);
    uv_close((uv_handle_t *)s, NULL);
}

int main(int argc, char **argv)
{
    uv_loop_t loop;
    uv_signal_t sig;
    int port = argc > 1 ? atoi(argv[1]) : 8081;
    uv_loop_init(&loop);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *loops[1] = {&loop};
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.foreign_loops = loops;
    info.port = port;
    info.protocols = protocols;
    info.keepalive_timeout = 60;
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "bench_http_bare: cannot listen on port %d\n", port);
        return 1;
    }
    uv_signal_init(&loop, &sig);
    uv_signal_start(&sig, on_signal, SIGINT);
    printf("bench_http_bare: listening on %d\n", port);
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    lws_context_destroy(ctx);   /* second stage of lws 4.1's destroy on a foreign loop */
    uv_loop_close(&loop);
    return 0;
}
