/* bench_plugin_request.c -- what the ABI 1.1 request fields (query_raw, url, the header list,
 * peer) cost a plugin route: the real acdm_http on its own loop thread, one keep-alive client
 * sending a webhook-like request (a Kannel-style query, ten headers with a signature) to a
 * route that only replies (the same-run baseline) and to one that first builds every 1.1 field
 * as core/plugins/bridge.c does. Rounds alternate; the median per route counts. The figure
 * is the loop thread's CPU time per request (wall time on a shared machine is mostly other
 * people's load); wall time is printed beside it. */
#include "net/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define N_REQ 20000
#define ROUNDS 5

static uv_loop_t loop;
static acdm_http *srv;
static uv_async_t stop_async;
static volatile size_t sink;

static void rt_plain(void *user, acdm_req *r)
{
    (void)user;
    acdm_http_reply(r, 200, "text/plain", "ok", 2);
}

static void rt_fields(void *user, acdm_req *r)
{
    (void)user;
    const acdm_hdr *h = NULL;
    size_t n = acdm_req_headers(r, &h);
    const char *q = acdm_req_query_raw(r), *u = acdm_req_url(r), *p = acdm_req_peer(r);
    sink += n + (q ? strlen(q) : 0) + (u ? strlen(u) : 0) + strlen(p);
    acdm_http_reply(r, 200, "text/plain", "ok", 2);
}

static void on_stop(uv_async_t *a)
{
    acdm_http_destroy(srv);
    uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static pthread_t loop_th;

static double loop_cpu_s(void)
{
    clockid_t c;
    struct timespec ts;
    if (pthread_getcpuclockid(loop_th, &c) || clock_gettime(c, &ts)) return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* N_REQ requests on one keep-alive connection; the loop thread's CPU seconds (*wall: wall). */
static double run(int port, const char *path, double *wall)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) { perror("connect"); exit(1); }
    char rq[2048];
    int len = snprintf(rq, sizeof rq,
        "GET %s?username=kannel&password=s3cret&from=%%2B31612345678&to=1234"
        "&text=1%%2B1%%3D2+%%26+meer&smsc=smsc1 HTTP/1.1\r\n"
        "Host: acdm.example.nl\r\nUser-Agent: Kannel/1.4.5\r\nAccept: */*\r\n"
        "X-Hub-Signature-256: sha256=6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b\r\n"
        "X-Twilio-Signature: 0/KCTR6DLpKmkAf8muzZqo1nDgQ=\r\nX-Kannel-SMSC: smsc1\r\n"
        "X-Request-Id: 0190a2b4-7c1e-7000-8000-000000000000\r\nX-Forwarded-For: 192.0.2.7\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nAccept-Encoding: gzip\r\n\r\n", path);
    char buf[4096];
    double t0 = now_s(), c0 = loop_cpu_s();
    for (int i = 0; i < N_REQ; i++) {
        if (write(fd, rq, (size_t)len) != len) { perror("write"); exit(1); }
        size_t got = 0;
        for (;;) {   /* one response: headers, then the 2-byte body */
            ssize_t k = read(fd, buf + got, sizeof buf - 1 - got);
            if (k <= 0) { perror("read"); exit(1); }
            got += (size_t)k;
            buf[got] = 0;
            char *e = strstr(buf, "\r\n\r\n");
            if (e && got >= (size_t)(e + 4 - buf) + 2) break;
        }
    }
    double c = loop_cpu_s() - c0;
    if (wall) *wall = now_s() - t0;
    close(fd);
    return c;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    char err[256];
    uv_loop_init(&loop);
    if (acdm_http_create(&loop, "127.0.0.1", 0, NULL, &srv, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    acdm_http_route(srv, "GET", "/channels/hook/plain", rt_plain, NULL);
    acdm_http_route(srv, "GET", "/channels/hook/fields", rt_fields, NULL);
    uv_async_init(&loop, &stop_async, on_stop);
    int port = acdm_http_port(srv);
    pthread_create(&loop_th, NULL, loop_main, NULL);
    double plain[ROUNDS], fields[ROUNDS], wp[ROUNDS], wf[ROUNDS];
    run(port, "/channels/hook/plain", NULL);   /* warm-up */
    for (int r = 0; r < ROUNDS; r++) {
        plain[r] = run(port, "/channels/hook/plain", &wp[r]) / N_REQ * 1e6;
        wp[r] = wp[r] / N_REQ * 1e6;
        fields[r] = run(port, "/channels/hook/fields", &wf[r]) / N_REQ * 1e6;
        wf[r] = wf[r] / N_REQ * 1e6;
    }
    uv_async_send(&stop_async);
    pthread_join(loop_th, NULL);
    uv_loop_close(&loop);
    qsort(plain, ROUNDS, sizeof *plain, cmp);
    qsort(fields, ROUNDS, sizeof *fields, cmp);
    qsort(wp, ROUNDS, sizeof *wp, cmp);
    qsort(wf, ROUNDS, sizeof *wf, cmp);
    printf("bench plugin_request: %d keep-alive requests x %d rounds, median loop-thread CPU per "
           "request: reply only %.2f us, with query_raw+url+headers+peer %.2f us (+%.2f us); "
           "wall %.1f / %.1f us\n", N_REQ, ROUNDS, plain[ROUNDS / 2], fields[ROUNDS / 2],
           fields[ROUNDS / 2] - plain[ROUNDS / 2], wp[ROUNDS / 2], wf[ROUNDS / 2]);
    return 0;
}
