/* api_waiting.c -- GET /api/v1/queues/{name}/waiting (R40): the berichten waiting in one queue,
 * in waiting order (bericht priority, then original queue time), for the agent desk's queue panel
 * (an agent picks one with the websocket's `pick`) and for supervisors. Registered in api.c.
 *
 * Cheap: it copies the pointers of the queue's waiting heaps (one per kind) and sorts the copy in
 * the router's waiting order (router.c acdm_router_wait_less); nothing is read from the store (the subject comes from the engine's
 * in-memory table of live berichten' subjects). */
#include "api/api_super.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define WAITING_LIMIT_DEFAULT 50
#define WAITING_LIMIT_MAX 200

static int wait_cmp(const void *pa, const void *pb)
{
    const acdm_bericht *a = *(acdm_bericht *const *)pa, *b = *(acdm_bericht *const *)pb;
    if (a->priority != b->priority) return a->priority > b->priority ? -1 : 1;
    if (a->queued_ms != b->queued_ms) return a->queued_ms < b->queued_ms ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* limit: absent -> the default; else an integer 1..WAITING_LIMIT_MAX, or 400 naming it. */
static bool parse_limit(acdm_req *r, int *out)
{
    const char *v = acdm_req_query(r, "limit");
    *out = WAITING_LIMIT_DEFAULT;
    if (!v) return true;
    bool ok = *v && strlen(v) <= 4;
    for (const char *p = v; ok && *p; p++) ok = isdigit((unsigned char)*p);
    long x = ok ? strtol(v, NULL, 10) : 0;
    if (!ok || x < 1 || x > WAITING_LIMIT_MAX) {
        acdm_http_problem(r, 400, "Invalid parameter", "limit: expected an integer 1..%d, got \"%.40s\"",
                          WAITING_LIMIT_MAX, v);
        return false;
    }
    *out = (int)x;
    return true;
}

void acdm_api_get_queue_waiting(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor agent", &who)) return;
    const char *name = acdm_req_param(r, "name");
    acdm_queue *q = name ? acdm_model_queue(acdm_engine_model(e), name) : NULL;
    if (!q) {
        acdm_http_problem(r, 404, "Not found", "queue %.64s: no such queue", name ? name : "");
        return;
    }
    if (!strcmp(who.role, "agent")) {
        acdm_agent *a = acdm_model_agent(acdm_engine_model(e), who.name);
        if (!a || !acdm_agent_member(a, q)) {
            acdm_http_problem(r, 403, "Forbidden", "queue %s: agent %s is not a member of it", q->name, who.name);
            return;
        }
    }
    int limit;
    if (!parse_limit(r, &limit)) return;

    size_t n = 0;
    for (int k = 0; k < ACDM_KIND__COUNT; k++) n += q->waiting[k].n;
    acdm_bericht **all = n ? malloc(n * sizeof *all) : NULL;
    if (n && !all) { acdm_http_problem(r, 503, "Out of memory", "queue %s: try again", q->name); return; }
    size_t i = 0;
    for (int k = 0; k < ACDM_KIND__COUNT; k++)
        for (uint32_t j = 0; j < q->waiting[k].n; j++) all[i++] = q->waiting[k].items[j];
    if (n > 1) qsort(all, n, sizeof *all, wait_cmp);

    int64_t now = acdm_now_ms();
    json_t *arr = json_array();
    for (i = 0; i < n && i < (size_t)limit; i++) {
        const acdm_bericht *b = all[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:I}", "id", b->id,
                              "kind", acdm_kind_name((acdm_kind)b->kind), "channel", b->channel ? b->channel : "",
                              "from", b->from ? b->from : "", "priority", (int)b->priority,
                              "queued_ms", (json_int_t)b->queued_ms,
                              "wait_ms", (json_int_t)(now > b->queued_ms ? now - b->queued_ms : 0));
        if (!o) continue;
        const char *subj = acdm_engine_subject(e, b->id);
        if (subj) json_object_set_new(o, "subject", json_string(subj));
        json_array_append_new(arr, o);
    }
    free(all);
    acdm_http_reply_json(r, 200, json_pack("{s:s, s:I, s:i, s:o}", "queue", q->name, "total", (json_int_t)n,
                                           "limit", limit, "berichten", arr));
}
