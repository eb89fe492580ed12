/* bench_http_route.c -- the REST ingest benchmark's acdm side: acdm_http with one route answering POST /api/v1/berichten with a fixed 201. */
#include "net/http.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char REPLY[] = "{\"id\":\"0190a2b4-7c1e-7000-8000-000000000000\",\"state\":\"queued\"}";
static acdm_http *srv;

static void post_bericht(void *user, acdm_req *req)
{
    (void)user;
    size_t len;
    (void)acdm_req_body(req, &len);
    acdm_http_reply(req, 201, "application/json", REPLY, sizeof REPLY - 1);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    acdm_http_destroy(srv);
    uv_signal_stop(s);
    uv_close((uv_handle_t *)s, NULL);
}

int main(int argc, char **argv)
{
    uv_loop_t loop;
    uv_signal_t sig;
    char err[256];
    int port = argc > 1 ? atoi(argv[1]) : 8082;
    uv_loop_init(&loop);
    if (acdm_http_create(&loop, "0.0.0.0", port, NULL, &srv, err, sizeof err)) {
        fprintf(stderr, "bench_http_route: %s\n", err);
        return 1;
    }
    if (acdm_http_route(srv, "POST", "/api/v1/berichten", post_bericht, NULL) <= 0) return 1;
    uv_signal_init(&loop, &sig);
    uv_signal_start(&sig, on_signal, SIGINT);
    printf("bench_http_route: listening on %d\n", acdm_http_port(srv));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
