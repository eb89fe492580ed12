/* bench_stats.c -- cost of the supervisors' live figures: building the `stats` message (every
 * queue, channel and agent, live values walked from the model) once per tick, as the timer does
 * (acdm_stats_text), and feeding the counters from model events. Baseline in the same run: only
 * the message's agents part built as a jansson tree and dumped (the first implementation).
 * usage: bench_stats [agents queues waiting ticks] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model_int.h"
#include "reports/stats.h"

static acdm_stats *S;
static uint64_t n_events;

static double secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* the baseline: one agent as a jansson object */
static json_t *agent_jansson(const acdm_agent *a)
{
    static const char *const ws[] = {"offered", "active", "wrapup"};
    json_t *work = json_array();
    bool busy = false;
    for (uint32_t i = 0; i < a->n_work; i++) {
        const acdm_bericht *b = a->work[i].b;
        busy |= a->work[i].state == ACDM_W_ACTIVE;
        json_array_append_new(work, json_pack("{s:s, s:s, s:s, s:s}", "bericht", b->id, "state",
                                              ws[a->work[i].state % 3], "kind", acdm_kind_name(b->kind),
                                              "queue", b->queue->name));
    }
    return json_pack("{s:s, s:s, s:s, s:s?, s:I, s:b, s:b, s:o, s:I}", "id", a->id, "name",
                     a->def->name ? a->def->name : a->id, "state", acdm_agent_state_name(a->state),
                     "reason", a->reason[0] ? a->reason : NULL, "since", (json_int_t)a->state_since,
                     "busy", busy, "wrapup", a->n_wrapup > 0, "work", work, "handled", (json_int_t)a->handled);
}

static void emit(void *ctx, const acdm_mevent *ev)
{
    (void)ctx;
    n_events++;
    acdm_stats_event(S, ev);
}

static char *make_config(int n_queues, int n_agents)
{
    size_t cap = (size_t)n_agents * 200 + (size_t)n_queues * 120 + 1024;
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "{\"channels\":[{\"name\":\"web1\",\"plugin\":\"webchat\"},{\"name\":\"mail\",\"plugin\":\"email\"}],\"queues\":[");
    for (int q = 0; q < n_queues; q++)
        p += sprintf(p, "%s{\"name\":\"q%d\",\"title\":\"Queue %d\",\"wrapup_s\":30,\"offer_timeout_s\":0}",
                     q ? "," : "", q, q);
    p += sprintf(p, "],\"agents\":[");
    for (int a = 0; a < n_agents; a++)
        p += sprintf(p, "%s{\"id\":\"agent%d\",\"name\":\"Agent %d\",\"queues\":[\"q%d\",\"q%d\",\"q%d\"]}",
                     a ? "," : "", a, a, a % n_queues, (a + 7) % n_queues, (a + 13) % n_queues);
    p += sprintf(p, "]}");
    return s;
}

int main(int argc, char **argv)
{
    int n_agents = argc > 1 ? atoi(argv[1]) : 2000;
    int n_queues = argc > 2 ? atoi(argv[2]) : 50;
    int n_waiting = argc > 3 ? atoi(argv[3]) : 20000;
    int ticks = argc > 4 ? atoi(argv[4]) : 50;
    int64_t now = 1767261600000LL;
    char *json = make_config(n_queues, n_agents);
    acdm_config *cfg = NULL;
    char err[4096];
    if (acdm_config_parse("bench.json", json, &cfg, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    free(json);
    S = acdm_stats_create();
    acdm_model_hooks h = {emit, NULL};
    acdm_model *m;
    if (acdm_model_create(cfg, &h, now, &m)) return 1;
    static const char *const chans[] = {"web1", "mail", "api"};
    /* half the agents ready and busy with a chat each, the rest not ready; then the waiting ones */
    char id[40];
    int seq = 0;
    for (int a = 0; a < n_agents; a++) {
        acdm_agent *ag = acdm_model_agent_at(m, (size_t)a);
        acdm_agent_login(m, ag, now);
        if (a % 2) continue;
        acdm_agent_ready(m, ag, now);
    }
    double t0 = secs();
    for (int i = 0; i < n_agents / 2 + n_waiting; i++) {
        snprintf(id, sizeof id, "0190d000-0000-7000-8000-%012d", ++seq);
        char qn[16];
        snprintf(qn, sizeof qn, "q%d", i % n_queues);
        acdm_new_bericht nb = {.id = id, .queue = qn, .kind = ACDM_KIND_VOICE, .channel = chans[i % 3],
                               .from = "+31612345678"};
        acdm_bericht *b = NULL;
        acdm_model_submit(m, &nb, now + i, &b, NULL);
        if (b && b->state == ACDM_B_OFFERED && b->n_offers) acdm_agent_accept(m, b->offers[0], b, now + i);
    }
    double t_feed = secs() - t0;
    for (int a = 0; a < n_agents; a += 2) acdm_agent_not_ready(m, acdm_model_agent_at(m, (size_t)a), NULL, now);

    /* the message as the timer builds it: once per tick */
    size_t bytes = 0;
    t0 = secs();
    for (int t = 0; t < ticks; t++) {
        char *txt = acdm_stats_text(S, m, "stats", now + 1000 * t, &bytes);
        free(txt);
    }
    double per_tick = (secs() - t0) / ticks;
    /* baseline: only the agents part, as per-session JSON would have to redo it */
    t0 = secs();
    for (int t = 0; t < ticks; t++) {
        json_t *arr = json_array();
        for (size_t i = 0; i < acdm_model_n_agents(m); i++)
            json_array_append_new(arr, agent_jansson(acdm_model_agent_at(m, i)));
        char *txt = json_dumps(arr, JSON_COMPACT);
        free(txt);
        json_decref(arr);
    }
    double agents_only = (secs() - t0) / ticks;
    /* the counters alone: one accepted event, as on_model_event passes it */
    acdm_bericht *anyb = NULL;
    for (size_t i = 0; i < acdm_model_n_queues(m) && !anyb; i++)
        if (acdm_model_queue_at(m, i)->waiting[ACDM_KIND_VOICE].n)
            anyb = acdm_model_queue_at(m, i)->waiting[ACDM_KIND_VOICE].items[0];
    int n_direct = 5000000;
    t0 = secs();
    for (int i = 0; i < n_direct && anyb; i++) {
        acdm_mevent ev = {.type = i % 2 ? ACDM_ME_ACCEPTED : ACDM_ME_QUEUED, .ts = now + i / 1000, .b = anyb,
                          .q = anyb->queue, .reason = "new", .value = 1234};
        acdm_stats_event(S, &ev);
    }
    double per_event = (secs() - t0) / n_direct;
    acdm_stats_counts c = acdm_stats_queue(S, "q0", now);
    printf("bench stats_tick: %d agents, %d queues, %zu waiting, %zu live: one stats message %.2f ms "
           "(%zu bytes); baseline, its agents part alone with jansson: %.2f ms; one core spends %.2f%% of each second on it\n",
           n_agents, n_queues, (size_t)acdm_model_queue(m, "q0")->n_waiting * (size_t)n_queues,
           acdm_model_n_berichten(m), per_tick * 1e3, bytes, agents_only * 1e3, per_tick * 100.0);
    printf("bench stats_feed: counting one model event %.0f ns (queued/accepted, hash lookups by queue and "
           "channel name); whole submit+route path with counting %.0f ns per event over %llu events; q0 offered %llu\n",
           per_event * 1e9, t_feed * 1e9 / (double)n_events, (unsigned long long)n_events, (unsigned long long)c.offered);
    acdm_model_destroy(m);
    acdm_stats_destroy(S);
    return 0;
}
