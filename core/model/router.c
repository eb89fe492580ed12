/* router.c -- the routing decisions: strategies, skill matching, offers. */
#include "model/model_int.h"

#include <stdlib.h>

bool acdm_router_wait_less(const void *pa, const void *pb, const void *ctx)
{
    (void)ctx;
    const acdm_bericht *a = pa, *b = pb;
    if (a->priority != b->priority) return a->priority > b->priority;
    if (a->queued_ms != b->queued_ms) return a->queued_ms < b->queued_ms;
    return a->seq < b->seq;
}

bool acdm_router_avail_less(const void *pa, const void *pb, const void *ctx)
{
    const acdm_member *x = pa, *y = pb;
    const acdm_queue *q = ctx;
    const acdm_agent *a = x->agent, *b = y->agent;
    switch (q->strategy) {
    case ACDM_STRAT_ROUND_ROBIN:
        if (x->rr_last != y->rr_last) return x->rr_last < y->rr_last;
        break;
    case ACDM_STRAT_LONGEST_IDLE:
        if (a->idle_since != b->idle_since) return a->idle_since < b->idle_since;
        break;
    case ACDM_STRAT_LEAST_OCCUPIED:
        if (a->occupancy != b->occupancy) return a->occupancy < b->occupancy;
        if (a->idle_since != b->idle_since) return a->idle_since < b->idle_since;
        break;
    case ACDM_STRAT_FEWEST_HANDLED:
        if (a->handled != b->handled) return a->handled < b->handled;
        if (a->idle_since != b->idle_since) return a->idle_since < b->idle_since;
        break;
    case ACDM_STRAT_RANDOM:
        if (x->rnd != y->rnd) return x->rnd < y->rnd;
        break;
    default: /* linear, ring-all */
        break;
    }
    return x->position < y->position;
}

bool acdm_router_skills_ok(const acdm_agent *a, const acdm_bericht *b)
{
    if (b->skills_relaxed) return true;
    for (unsigned i = 0; i < b->n_skills; i++) {
        unsigned j = 0;
        while (j < a->n_skills && a->skills[j].id != b->skills[i].id) j++;
        if (j == a->n_skills || a->skills[j].level < b->skills[i].level) return false;
    }
    return true;
}

void acdm_router_refresh(acdm_model *m, acdm_agent *a)
{
    (void)m;
    bool avail[ACDM_KIND__COUNT];
    for (int k = 0; k < ACDM_KIND__COUNT; k++) avail[k] = acdm_agent_available(a, k);
    for (uint32_t i = 0; i < a->n_members; i++) {
        acdm_member *mb = a->members[i];
        acdm_queue *q = mb->queue;
        bool stale = mb->key_seen != a->key_ver;
        for (int k = 0; k < ACDM_KIND__COUNT; k++) {
            bool want = mb->joined && avail[k] && !a->removed;
            bool in = mb->avail_idx[k] >= 0;
            if (want && !in) acdm_heap_push(&q->avail[k], mb);
            else if (!want && in) acdm_heap_remove(&q->avail[k], mb);
            else if (want && stale) acdm_heap_update(&q->avail[k], mb);
        }
        mb->key_seen = a->key_ver;
    }
}

static bool agent_takes(const void *item, const void *arg)
{
    const acdm_bericht *b = item;
    const acdm_agent *a = arg;
    return b->skip != a && acdm_router_skills_ok(a, b);
}

/* Is x a better next bericht than y for an agent in both queues? */
static bool better(const acdm_bericht *x, const acdm_bericht *y)
{
    if (!y) return true;
    if (x->queue->def->priority != y->queue->def->priority)
        return x->queue->def->priority > y->queue->def->priority;
    return acdm_router_wait_less(x, y, NULL);
}

acdm_bericht *acdm_router_best_bericht(const acdm_agent *a)
{
    acdm_bericht *best = NULL;
    for (uint32_t i = 0; i < a->n_members; i++) {
        const acdm_member *mb = a->members[i];
        if (!mb->joined) continue;
        for (int k = 0; k < ACDM_KIND__COUNT; k++) {
            const acdm_heap *w = &mb->queue->waiting[k];
            if (!w->n || !acdm_agent_available(a, k)) continue;
            acdm_bericht *b = acdm_heap_find(w, agent_takes, a);
            if (b && better(b, best)) best = b;
        }
    }
    return best;
}

void acdm_router_agent_free(acdm_model *m, acdm_agent *a, int64_t now)
{
    /* match first, then update the availability heaps once: an agent who finds work at once
     * never enters them */
    acdm_bericht *b;
    /* what was theirs before a restart comes first (acdm_model_reserve), oldest first */
    for (;;) {
        acdm_bericht *best = NULL;
        for (acdm_bericht *r = m->reserved; r; r = r->res_next)
            if (r->reserved == a && r->state == ACDM_B_QUEUED && acdm_agent_available(a, r->kind) &&
                (!best || r->queued_ms < best->queued_ms ||
                 (r->queued_ms == best->queued_ms && r->seq < best->seq)))
                best = r;
        if (!best) break;
        acdm_model_unreserve(m, best, now);
        acdm_router_offer_noref(m, best, a, now);
    }
    while ((b = acdm_router_best_bericht(a))) acdm_router_offer_noref(m, b, a, now);
    acdm_router_refresh(m, a);
}

static bool member_takes(const void *item, const void *arg)
{
    const acdm_member *mb = item;
    const acdm_bericht *b = arg;
    return mb->agent != b->skip && acdm_router_skills_ok(mb->agent, b);
}

acdm_agent *acdm_router_best_agent(acdm_model *m, const acdm_bericht *b)
{
    acdm_agent *p = b->preferred;
    if (p && p != b->skip && acdm_agent_available(p, b->kind) && acdm_router_skills_ok(p, b))
        return p;
    const acdm_heap *h = &b->queue->avail[b->kind];
    if (!h->n) return NULL;
    acdm_member *mb;
    if (b->queue->strategy == ACDM_STRAT_RANDOM) {
        /* uniform over the available members; the heap order is only the fallback when the
         * drawn one cannot take it (skills) */
        mb = h->items[acdm_model_rand(m) % h->n];
        if (!member_takes(mb, b)) mb = acdm_heap_find(h, member_takes, b);
    } else {
        mb = acdm_heap_find(h, member_takes, b);
    }
    return mb ? mb->agent : NULL;
}

void acdm_router_place(acdm_model *m, acdm_bericht *b, int64_t now)
{
    acdm_queue *q = b->queue;
    if (q->strategy != ACDM_STRAT_RING_ALL || (b->preferred && acdm_agent_available(b->preferred, b->kind))) {
        acdm_agent *a = acdm_router_best_agent(m, b);
        if (a) acdm_router_offer(m, b, a, now);
        return;
    }
    /* ring-all: offer to every available member at once; first to accept wins */
    acdm_heap *h = &q->avail[b->kind];
    if (!h->n) return;
    acdm_agent **all = malloc(h->n * sizeof *all);
    if (!all) return;
    uint32_t n = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        acdm_member *mb = h->items[i];
        if (member_takes(mb, b)) all[n++] = mb->agent;
    }
    for (uint32_t i = 0; i < n; i++) acdm_router_offer(m, b, all[i], now);
    free(all);
}

static int cmp_members(const void *x, const void *y, void *ctx)
{
    const acdm_member *a = *(acdm_member *const *)x, *b = *(acdm_member *const *)y;
    if (acdm_router_avail_less(a, b, ctx)) return -1;
    if (acdm_router_avail_less(b, a, ctx)) return 1;
    return 0;
}

void acdm_router_queue(acdm_model *m, acdm_queue *q, int64_t now)
{
    if (!q->n_waiting) return;
    /* the available members, best first by the queue's strategy, each take what they can */
    uint32_t total = 0;
    for (int k = 0; k < ACDM_KIND__COUNT; k++) total += q->avail[k].n;
    if (!total) return;
    acdm_member **list = malloc(total * sizeof *list);
    if (!list) return;
    uint32_t n = 0;
    for (int k = 0; k < ACDM_KIND__COUNT; k++)
        for (uint32_t i = 0; i < q->avail[k].n; i++) {
            acdm_member *mb = q->avail[k].items[i];
            bool dup = false;
            for (uint32_t j = 0; j < n && !dup; j++) dup = list[j] == mb;
            if (!dup) list[n++] = mb;
        }
    qsort_r(list, n, sizeof *list, cmp_members, q);
    for (uint32_t i = 0; i < n; i++) acdm_router_agent_free(m, list[i]->agent, now);
    free(list);
}

void acdm_router_offer(acdm_model *m, acdm_bericht *b, acdm_agent *a, int64_t now)
{
    acdm_router_offer_noref(m, b, a, now);
    acdm_router_refresh(m, a);
}

void acdm_router_offer_noref(acdm_model *m, acdm_bericht *b, acdm_agent *a, int64_t now)
{
    acdm_queue *q = b->queue;
    if (b->wait_idx >= 0) acdm_wait_remove(b);
    if (b->t_offer.type == T_RETRY) acdm_timer_disarm(m, &b->t_offer);
    b->state = ACDM_B_OFFERED;
    acdm_offers_add(b, a);
    b->offered_ms = now;
    b->skip = NULL;
    acdm_work_add(a, b, ACDM_W_OFFERED);
    acdm_member *mb = acdm_agent_member(a, q);
    if (mb) {
        mb->rr_last = ++q->rr_clock;
        if (q->strategy == ACDM_STRAT_ROUND_ROBIN)
            for (int k = 0; k < ACDM_KIND__COUNT; k++) acdm_heap_update(&q->avail[k], mb);
    }
    if (b->t_offer.idx < 0 && q->def->offer_timeout_s > 0)
        acdm_timer_arm(m, &b->t_offer, T_OFFER, now + (int64_t)q->def->offer_timeout_s * 1000);
    acdm_emit(m, ACDM_ME_OFFERED, now, b, a, q, NULL, now - b->queued_ms);
}
