/* screenpop.c -- R50: on every offer, GET the case system's URL (config "screen_pop") with the
 * bericht's details filled in, and send the agent what it answered as `screen_pop`.
 *
 * The request runs on the core's outbound client on the loop (net/outbound.c): the offer
 * itself has been sent before this starts, so a slow or failing case system never delays it. */
#include "api/live.h"
#include "base/log.h"
#include "net/outbound.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO "screen-pop"
#define SCREENPOP_MAX_BODY (64u * 1024u)

typedef struct {
    acdm_engine *e;
    char agent[ACDM_NAME_MAX + 1];
    char bericht[37];
    int64_t started;
    int timeout_ms;
} pop_req;

static void add_encoded(char **out, size_t *n, size_t *cap, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
        if (*n + 4 > *cap) {
            size_t c = *cap * 2;
            char *x = realloc(*out, c);
            if (!x) return;
            *out = x;
            *cap = c;
        }
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            (*out)[(*n)++] = (char)*p;
        } else {
            (*out)[(*n)++] = '%';
            (*out)[(*n)++] = hex[*p >> 4];
            (*out)[(*n)++] = hex[*p & 15];
        }
    }
}

/* The URL with {from}, {channel}, {queue}, {kind}, {bericht}, {conversation} filled in,
 * URL-encoded (malloc'd). */
static char *fill_url(const char *tmpl, const acdm_bericht *b)
{
    size_t cap = strlen(tmpl) + 256, n = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    for (const char *p = tmpl; *p;) {
        const char *val = NULL;
        size_t skip = 0;
        static const char *const names[] = {"{from}", "{channel}", "{queue}", "{kind}", "{bericht}", "{conversation}"};
        if (*p == '{') {
            for (size_t i = 0; i < sizeof names / sizeof *names && !skip; i++)
                if (!strncmp(p, names[i], strlen(names[i]))) {
                    skip = strlen(names[i]);
                    val = i == 0 ? b->from : i == 1 ? b->channel : i == 2 ? b->queue->name
                        : i == 3 ? acdm_kind_name(b->kind) : i == 4 ? b->id : b->conversation;
                }
        }
        if (skip) {
            add_encoded(&out, &n, &cap, val);
            p += skip;
            continue;
        }
        if (n + 2 > cap) {
            char *x = realloc(out, cap * 2);
            if (!x) { free(out); return NULL; }
            out = x;
            cap *= 2;
        }
        out[n++] = *p++;
    }
    out[n] = 0;
    return out;
}

static void pop_done(void *user, int status, const char *body, size_t len, const char *error)
{
    pop_req *r = user;
    acdm_engine *e = r->e;
    if (acdm_engine_stopping(e) || !acdm_engine_model(e)) { free(r); return; }
    acdm_agent *a = acdm_model_agent(acdm_engine_model(e), r->agent);
    acdm_bericht *b = acdm_model_bericht(acdm_engine_model(e), r->bericht);
    char why[128];
    if (status == -28) {   /* CURLE_OPERATION_TIMEDOUT */
        snprintf(why, sizeof why, "timeout: the case system did not answer within %d ms", r->timeout_ms);
        error = why;
    }
    if (status < 0 || status >= 400)
        acdm_log(ACDM_LOG_INFO, WHO, "bericht %s: case system %s after %lld ms", r->bericht,
                 status < 0 ? (error ? error : "failed") : "answered with an error",
                 (long long)(acdm_now_ms() - r->started));
    /* only while the agent still has the offer or the bericht */
    if (!a || !b || !acdm_agent_work(a, b)) { free(r); return; }
    json_t *msg = json_pack("{s:s, s:s}", "type", "screen_pop", "bericht", r->bericht);
    json_object_set_new(msg, "status", status > 0 ? json_integer(status) : json_null());
    json_t *jb = NULL;
    if (status > 0 && len) {
        jb = json_loadb(body, len, JSON_DECODE_ANY, NULL);
        if (!jb) jb = json_stringn(body, len);
        if (!jb) error = "the answer is neither JSON nor UTF-8 text";
    }
    json_object_set_new(msg, "body", jb ? jb : json_null());
    if (error) json_object_set_new(msg, "error", json_string(error));
    acdm_api_push_agent(e, r->agent, msg);
    free(r);
}

void acdm_screenpop_offer(acdm_engine *e, const acdm_bericht *b, const acdm_agent *a)
{
    const acdm_screen_pop_def *sp = &acdm_model_config(acdm_engine_model(e))->screen_pop;
    if (!sp->enabled || !sp->url || !acdm_engine_outbound(e)) return;
    char *url = fill_url(sp->url, b);
    if (!url) return;
    pop_req *r = calloc(1, sizeof *r);
    if (!r) { free(url); return; }
    r->e = e;
    snprintf(r->agent, sizeof r->agent, "%s", a->id);
    snprintf(r->bericht, sizeof r->bericht, "%s", b->id);
    r->started = acdm_now_ms();
    r->timeout_ms = sp->timeout_ms;
    acdm_out_opts o = {.url = url, .timeout_ms = sp->timeout_ms, .max_body = SCREENPOP_MAX_BODY};
    int rc = acdm_out_start(acdm_engine_outbound(e), &o, pop_done, r, NULL, NULL, 0);
    if (rc) {
        acdm_log(ACDM_LOG_WARN, WHO, "bericht %s: cannot start the request: %s", b->id, acdm_strerror(rc));
        free(r);
    }
    free(url);
}
