/* bench_route.c -- routing engine alone: decisions/s, restore speed and memory per waiting bericht. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model_int.h"

static double secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static acdm_agent **offered_to; /* per bericht seq: who got it (set by the hook) */
static acdm_bericht **agent_job; /* per agent position: the bericht offered to it */
static uint64_t n_offers;

static void emit(void *ctx, const acdm_mevent *ev)
{
    (void)ctx;
    if (ev->type == ACDM_ME_OFFERED) {
        agent_job[ev->a->position] = ev->b;
        n_offers++;
    }
}

static char *make_config(int n_queues, int n_agents, int per_agent, const char *strategy)
{
    size_t cap = (size_t)n_agents * 200 + (size_t)n_queues * 100 + 1024;
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "{\"queues\":[");
    for (int q = 0; q < n_queues; q++)
        p += sprintf(p, "%s{\"name\":\"q%d\",\"strategy\":\"%s\",\"wrapup_s\":0,\"offer_timeout_s\":0}",
                     q ? "," : "", q, strategy);
    p += sprintf(p, "],\"agents\":[");
    unsigned r = 12345;
    for (int a = 0; a < n_agents; a++) {
        p += sprintf(p, "%s{\"id\":\"agent%d\",\"queues\":[", a ? "," : "", a);
        for (int j = 0; j < per_agent; j++) {
            r = r * 1103515245u + 12345u;
            p += sprintf(p, "%s\"q%u\"", j ? "," : "", (unsigned)((a + j * 37 + (r >> 16) % 7) % n_queues));
        }
        p += sprintf(p, "]}");
    }
    p += sprintf(p, "]}");
    return s;
}

static acdm_model *build(int n_queues, int n_agents, const char *strategy)
{
    char *json = make_config(n_queues, n_agents, 3, strategy);
    acdm_config *cfg;
    char err[1024];
    if (acdm_config_parse("bench", json, &cfg, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    free(json);
    acdm_model_hooks h = {emit, NULL};
    acdm_model *m;
    if (acdm_model_create(cfg, &h, 1, &m)) exit(1);
    return m;
}

static uint64_t idn;
static acdm_bericht *submit(acdm_model *m, int q, int64_t now)
{
    char id[37], qn[16];
    snprintf(id, sizeof id, "%036llu", (unsigned long long)++idn);
    snprintf(qn, sizeof qn, "q%d", q);
    acdm_new_bericht nb = {.id = id, .queue = qn, .kind = ACDM_KIND_VOICE, .from = "+31201234567"};
    acdm_bericht *b = NULL;
    if (acdm_model_submit(m, &nb, now, &b, NULL)) { fprintf(stderr, "submit failed\n"); exit(1); }
    return b;
}

int main(int argc, char **argv)
{
    int n_agents = argc > 1 ? atoi(argv[1]) : 10000;
    int n_queues = argc > 2 ? atoi(argv[2]) : 100;
    int n_wait = argc > 3 ? atoi(argv[3]) : 100000;
    long iters = argc > 4 ? atol(argv[4]) : 2000000;
    offered_to = NULL;
    agent_job = calloc((size_t)n_agents, sizeof *agent_job);

    /* 0. the decisions alone (no state change), on 100k waiting berichten and 10k available
     *    agents: "which bericht for this freed agent" and "which agent for this bericht" */
    {
        acdm_model *m0 = build(n_queues, n_agents, "longest-idle");
        int64_t t = 1000;
        acdm_bericht **bs = malloc((size_t)n_wait * sizeof *bs);
        for (int i = 0; i < n_wait; i++) bs[i] = submit(m0, i % n_queues, t + i);
        for (int a = 0; a < n_agents; a++) {
            acdm_agent *ag = acdm_model_agent_at(m0, (size_t)a);
            ag->state = ACDM_AGENT_READY;      /* ready without matching: both sides stay full */
            acdm_agent_set_idle(ag, t + (a * 7919) % n_agents);
            acdm_router_refresh(m0, ag);
        }
        long nd = iters;
        uintptr_t sink = 0;
        double d0 = secs();
        for (long i = 0; i < nd; i++)
            sink += (uintptr_t)acdm_router_best_bericht(acdm_model_agent_at(m0, (size_t)(i % n_agents)));
        double d1 = secs();
        for (long i = 0; i < nd; i++)
            sink += (uintptr_t)acdm_router_best_agent(m0, bs[i % n_wait]);
        double d2 = secs();
        printf("bench route_decide_bericht_for_agent: %.0f decisions/s (%d agents in 3 queues each, %d queues, %d waiting)\n",
               nd / (d1 - d0), n_agents, n_queues, n_wait);
        printf("bench route_decide_agent_for_bericht: %.0f decisions/s (longest-idle over ~%d available members per queue)%s\n",
               nd / (d2 - d1), n_agents * 3 / n_queues, sink == 1 ? " " : "");
        free(bs);
        acdm_model_destroy(m0);
    }

    /* 1. agent-frees path: 100k waiting, every agent busy; each turn an agent completes and
     *    the router picks the best waiting bericht over the agent's queues */
    acdm_model *m = build(n_queues, n_agents, "longest-idle");
    int64_t now = 1000;
    size_t before = heap_used();
    for (int i = 0; i < n_wait; i++) submit(m, i % n_queues, now);
    size_t after = heap_used();
    printf("bench route_memory: %.0f bytes per waiting bericht (%d waiting, excl. payload)\n",
           (double)(after - before) / n_wait, n_wait);
    for (int a = 0; a < n_agents; a++) {
        acdm_agent *ag = acdm_model_agent_at(m, (size_t)a);
        acdm_agent_login(m, ag, now);
        acdm_agent_ready(m, ag, now);
    }
    double t0 = secs();
    uint64_t start = n_offers;
    for (long i = 0; i < iters; i++) {
        acdm_agent *ag = acdm_model_agent_at(m, (size_t)(i % n_agents));
        acdm_bericht *b = agent_job[ag->position];
        if (!b) continue;
        agent_job[ag->position] = NULL;
        now++;
        acdm_agent_accept(m, ag, b, now);
        acdm_agent_complete(m, ag, b, now);       /* -> done -> next bericht offered */
        submit(m, (int)(i % n_queues), now);      /* keep the queues full */
    }
    double dt = secs() - t0;
    uint64_t dec = n_offers - start;
    printf("bench route_agent_free: %.0f decisions/s (%llu decisions, %d agents, %d queues, %zu waiting; "
           "each turn = accept + complete + offer + new arrival)\n",
           dec / dt, (unsigned long long)dec, n_agents, n_queues, acdm_model_n_berichten(m) - (size_t)n_agents);
    acdm_model_destroy(m);

    /* 2. arrival path: agents idle; each new bericht is matched by the queue strategy */
    const char *strats[] = {"longest-idle", "round-robin", "least-occupied", "fewest-handled", "linear", "random"};
    for (size_t s = 0; s < sizeof strats / sizeof *strats; s++) {
        memset(agent_job, 0, (size_t)n_agents * sizeof *agent_job);
        m = build(n_queues, n_agents, strats[s]);
        for (int a = 0; a < n_agents; a++) {
            acdm_agent *ag = acdm_model_agent_at(m, (size_t)a);
            acdm_agent_login(m, ag, now);
            acdm_agent_ready(m, ag, now);
        }
        long n = iters / 4;
        t0 = secs();
        start = n_offers;
        for (long i = 0; i < n; i++) {
            now++;
            acdm_bericht *b = submit(m, (int)(i % n_queues), now);
            if (b->state != ACDM_B_OFFERED) continue;
            acdm_agent *ag = NULL;
            for (int a = 0; a < 1 && !ag; a++) ag = b->offers[0];
            acdm_agent_accept(m, ag, b, now);
            acdm_agent_complete(m, ag, b, now);
        }
        dt = secs() - t0;
        printf("bench route_arrival_%s: %.0f decisions/s (%llu decisions, each = submit + offer + accept + complete)\n",
               strats[s], (n_offers - start) / dt, (unsigned long long)(n_offers - start));
        acdm_model_destroy(m);
    }

    /* 3. restore 1,000,000 berichten into the model (the in-memory half of restart recovery) */
    m = build(n_queues, n_agents, "longest-idle");
    int n_restore = argc > 5 ? atoi(argv[5]) : 1000000;
    t0 = secs();
    for (int i = 0; i < n_restore; i++) {
        char id[37], qn[16];
        snprintf(id, sizeof id, "%036d", i);
        snprintf(qn, sizeof qn, "q%d", i % n_queues);
        acdm_new_bericht nb = {.id = id, .queue = qn, .kind = ACDM_KIND_VOICE, .from = "+31201234567",
                               .queued_ms = 1000 + i, .created_ms = 1000 + i};
        acdm_model_restore(m, &nb, now, NULL);
    }
    dt = secs() - t0;
    printf("bench route_restore: %d berichten restored into the model in %.2f s\n", n_restore, dt);
    acdm_model_destroy(m);
    free(agent_job);
    return 0;
}
