/* test_model.c -- the ACDM model and routing: strategies, capacity, offers, wrap-up, timers, reload. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "config/schedule.h"

/* ------------------------------------------------------------ harness */

#define MAXEV 4096
typedef struct { acdm_mevent_type type; char b[40]; char a[64]; char q[64]; char reason[64]; bool quick; int64_t value; } rec;
static rec evs[MAXEV];
static int n_ev;
static acdm_model *M;
static int64_t T0 = 1767261600000LL; /* 2026-01-01 10:00 UTC, a Thursday */
static int idc;

static void emit(void *ctx, const acdm_mevent *ev)
{
    (void)ctx;
    if (n_ev >= MAXEV) return;
    rec *r = &evs[n_ev++];
    memset(r, 0, sizeof *r);
    r->type = ev->type;
    if (ev->b) snprintf(r->b, sizeof r->b, "%s", ev->b->id);
    if (ev->a) snprintf(r->a, sizeof r->a, "%s", ev->a->id);
    if (ev->q) snprintf(r->q, sizeof r->q, "%s", ev->q->name);
    if (ev->reason) snprintf(r->reason, sizeof r->reason, "%s", ev->reason);
    r->quick = ev->quick_drop;
    r->value = ev->value;
}

static acdm_config *cfg_of(const char *json)
{
    acdm_config *c = NULL;
    char err[4096];
    int rc = acdm_config_parse("test.json", json, &c, err, sizeof err);
    ck_assert_msg(rc == 0, "config rejected: %s", err);
    return c;
}

static void setup_model(const char *json)
{
    n_ev = 0;
    acdm_model_hooks h = {emit, NULL};
    ck_assert_int_eq(acdm_model_create(cfg_of(json), &h, T0, &M), 0);
}

static void teardown(void)
{
    acdm_model_destroy(M);
    M = NULL;
}

static acdm_agent *ready(const char *id, int64_t now)
{
    acdm_agent *a = acdm_model_agent(M, id);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(acdm_agent_login(M, a, now), 0);
    ck_assert_int_eq(acdm_agent_ready(M, a, now), 0);
    return a;
}

static acdm_bericht *submit_k(const char *queue, acdm_kind kind, int prio, int64_t now)
{
    char id[37];
    snprintf(id, sizeof id, "00000000-0000-7000-8000-%012d", ++idc);
    acdm_new_bericht nb = {.id = id, .queue = queue, .kind = kind, .priority = prio, .from = "+31612345678"};
    acdm_bericht *b = NULL;
    int rc = acdm_model_submit(M, &nb, now, &b, NULL);
    ck_assert_int_eq(rc, 0);
    return b;
}
#define submit(q, now) submit_k((q), ACDM_KIND_VOICE, 0, (now))

/* the agent the last offer of b went to ("" if none) */
static const char *offered_to(const acdm_bericht *b)
{
    for (int i = n_ev - 1; i >= 0; i--)
        if (evs[i].type == ACDM_ME_OFFERED && !strcmp(evs[i].b, b->id)) return evs[i].a;
    return "";
}

static int count(acdm_mevent_type t, const char *agent)
{
    int n = 0;
    for (int i = 0; i < n_ev; i++)
        if (evs[i].type == t && (!agent || !strcmp(evs[i].a, agent))) n++;
    return n;
}

/* accept, complete, and (wrap-up 0) done: the agent is free again */
static void handle(acdm_agent *a, acdm_bericht *b, int64_t now)
{
    ck_assert_int_eq(acdm_agent_accept(M, a, b, now), 0);
    ck_assert_int_eq(acdm_agent_complete(M, a, b, now), 0);
}

#define AGENTS3(q) \
    "\"agents\":[{\"id\":\"a\",\"queues\":[\"" q "\"]},{\"id\":\"b\",\"queues\":[\"" q "\"]}," \
    "{\"id\":\"c\",\"queues\":[\"" q "\"]}]"

static char *strategy_cfg(const char *strategy)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"queues\":[{\"name\":\"q\",\"strategy\":\"%s\",\"wrapup_s\":0}]," AGENTS3("q") "}",
             strategy);
    return buf;
}

/* ------------------------------------------------------------ strategies */

START_TEST(linear_fixed_order)
{
    setup_model(strategy_cfg("linear"));
    ready("c", T0); ready("b", T0); ready("a", T0);
    acdm_bericht *b1 = submit("q", T0 + 1);
    ck_assert_str_eq(offered_to(b1), "a");       /* first in config order, not first ready */
    acdm_bericht *b2 = submit("q", T0 + 2);
    ck_assert_str_eq(offered_to(b2), "b");       /* a is busy (voice capacity 1) */
    handle(acdm_model_agent(M, "a"), b1, T0 + 3);
    acdm_bericht *b3 = submit("q", T0 + 4);
    ck_assert_str_eq(offered_to(b3), "a");       /* a again: linear always starts at the top */
    teardown();
}
END_TEST

START_TEST(round_robin_cycles_with_memory)
{
    setup_model(strategy_cfg("round-robin"));
    acdm_agent *a = ready("a", T0), *b = ready("b", T0), *c = ready("c", T0);
    const char *order[6];
    for (int i = 0; i < 6; i++) {
        acdm_bericht *x = submit("q", T0 + 10 * i);
        order[i] = offered_to(x);
        acdm_agent *who = !strcmp(order[i], "a") ? a : !strcmp(order[i], "b") ? b : c;
        handle(who, x, T0 + 10 * i + 1);
    }
    ck_assert_str_eq(order[0], "a"); ck_assert_str_eq(order[1], "b"); ck_assert_str_eq(order[2], "c");
    ck_assert_str_eq(order[3], "a"); ck_assert_str_eq(order[4], "b"); ck_assert_str_eq(order[5], "c");
    teardown();
}
END_TEST

START_TEST(longest_idle_counts_all_queues)
{
    /* R35a: idle time is per agent, over all queues */
    setup_model("{\"queues\":[{\"name\":\"q1\",\"strategy\":\"longest-idle\",\"wrapup_s\":0},"
                "{\"name\":\"q2\",\"strategy\":\"longest-idle\",\"wrapup_s\":0}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q1\",\"q2\"]},{\"id\":\"b\",\"queues\":[\"q1\",\"q2\"]}]}");
    acdm_agent *a = ready("a", T0);
    ready("b", T0 + 1000);                         /* b idle since later */
    acdm_bericht *x = submit("q2", T0 + 2000);
    ck_assert_str_eq(offered_to(x), "a");
    handle(a, x, T0 + 3000);                       /* a worked in q2 and is idle since T0+3000 */
    acdm_bericht *y = submit("q1", T0 + 4000);
    ck_assert_str_eq(offered_to(y), "b");          /* b has been idle longer, though a never worked q1 */
    teardown();
}
END_TEST

START_TEST(least_occupied_prefers_free_capacity)
{
    setup_model("{\"queues\":[{\"name\":\"q\",\"strategy\":\"least-occupied\"}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"]},{\"id\":\"b\",\"queues\":[\"q\"]}]}");
    acdm_agent *a = ready("a", T0), *b = ready("b", T0 + 1);
    acdm_bericht *c1 = submit_k("q", ACDM_KIND_CHAT, 0, T0 + 10);
    ck_assert_str_eq(offered_to(c1), "a");
    acdm_bericht *c2 = submit_k("q", ACDM_KIND_CHAT, 0, T0 + 11);
    ck_assert_str_eq(offered_to(c2), "b");         /* a has 1 of 3 chats, b none */
    acdm_bericht *c3 = submit_k("q", ACDM_KIND_CHAT, 0, T0 + 12);
    ck_assert_str_eq(offered_to(c3), "a");
    (void)a; (void)b;
    teardown();
}
END_TEST

START_TEST(fewest_handled_wins)
{
    setup_model(strategy_cfg("fewest-handled"));
    acdm_agent *a = ready("a", T0);
    ready("b", T0 + 5);
    acdm_bericht *x = submit("q", T0 + 10);
    ck_assert_str_eq(offered_to(x), "a");
    handle(a, x, T0 + 20);                     /* a handled 1, b 0 */
    acdm_bericht *y = submit("q", T0 + 30);
    ck_assert_str_eq(offered_to(y), "b");
    teardown();
}
END_TEST

START_TEST(random_spreads_work)
{
    setup_model(strategy_cfg("random"));
    acdm_agent *ag[3] = {ready("a", T0), ready("b", T0), ready("c", T0)};
    int got[3] = {0};
    for (int i = 0; i < 90; i++) {
        acdm_bericht *x = submit("q", T0 + i);
        const char *w = offered_to(x);
        int k = w[0] - 'a';
        ck_assert(k >= 0 && k < 3);
        got[k]++;
        handle(ag[k], x, T0 + i);
    }
    for (int k = 0; k < 3; k++) ck_assert_msg(got[k] >= 10, "agent %d got only %d of 90", k, got[k]);
    teardown();
}
END_TEST

START_TEST(ring_all_first_accept_wins)
{
    setup_model(strategy_cfg("ring-all"));
    acdm_agent *a = ready("a", T0), *b = ready("b", T0);
    ready("c", T0);
    acdm_bericht *x = submit("q", T0 + 1);
    ck_assert_int_eq(count(ACDM_ME_OFFERED, NULL), 3);
    ck_assert_int_eq(acdm_agent_accept(M, b, x, T0 + 2), 0);
    ck_assert_int_eq(count(ACDM_ME_OFFER_CANCELLED, "a"), 1);
    ck_assert_int_eq(count(ACDM_ME_OFFER_CANCELLED, "c"), 1);
    ck_assert_int_eq(acdm_agent_accept(M, a, x, T0 + 3), ACDM_ESTATE); /* too late */
    ck_assert_int_eq(x->state, ACDM_B_ACTIVE);
    teardown();
}
END_TEST

/* ------------------------------------------------------------ capacity */

START_TEST(chat_capacity_and_voice_blocks)
{
    setup_model("{\"queues\":[{\"name\":\"q\",\"wrapup_s\":0}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"],\"capacity\":{\"chat\":2}}]}");
    acdm_agent *a = ready("a", T0);
    acdm_bericht *c1 = submit_k("q", ACDM_KIND_CHAT, 0, T0 + 1);
    acdm_bericht *c2 = submit_k("q", ACDM_KIND_CHAT, 0, T0 + 2);
    acdm_bericht *c3 = submit_k("q", ACDM_KIND_CHAT, 0, T0 + 3);
    ck_assert_str_eq(offered_to(c1), "a");
    ck_assert_str_eq(offered_to(c2), "a");
    ck_assert_str_eq(offered_to(c3), "");      /* capacity 2 reached: waits */
    ck_assert_int_eq(c3->state, ACDM_B_QUEUED);
    handle(a, c1, T0 + 4);                     /* a chat is done: the waiting one comes */
    ck_assert_str_eq(offered_to(c3), "a");
    handle(a, c2, T0 + 5);
    handle(a, c3, T0 + 6);
    acdm_bericht *v = submit("q", T0 + 7);     /* a call */
    ck_assert_str_eq(offered_to(v), "a");
    ck_assert_int_eq(acdm_agent_accept(M, a, v, T0 + 8), 0);
    acdm_bericht *c4 = submit_k("q", ACDM_KIND_CHAT, 0, T0 + 9);
    ck_assert_str_eq(offered_to(c4), "");      /* a call blocks other work */
    ck_assert_int_eq(acdm_agent_complete(M, a, v, T0 + 10), 0);
    ck_assert_str_eq(offered_to(c4), "a");
    teardown();
}
END_TEST

/* ------------------------------------------------------------ offers */

START_TEST(ring_no_answer_goes_to_next_and_agent_stays)
{
    setup_model("{\"max_misses\":2,\"queues\":[{\"name\":\"q\",\"strategy\":\"linear\",\"offer_timeout_s\":10,\"wrapup_s\":0}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"]},{\"id\":\"b\",\"queues\":[\"q\"]}]}");
    acdm_agent *a = ready("a", T0), *b = ready("b", T0);
    acdm_bericht *x = submit("q", T0);
    ck_assert_str_eq(offered_to(x), "a");
    ck_assert_int_eq(acdm_model_next_due(M), T0 + 10000);
    acdm_model_tick(M, T0 + 9999);
    ck_assert_int_eq(count(ACDM_ME_TIMEOUT, "a"), 0);
    acdm_model_tick(M, T0 + 10000);
    ck_assert_int_eq(count(ACDM_ME_TIMEOUT, "a"), 1);
    ck_assert_str_eq(offered_to(x), "b");
    ck_assert_int_eq(a->state, ACDM_AGENT_READY);    /* R36: stays logged in and ready */
    ck_assert_int_eq(x->queued_ms, T0);              /* keeps its queue time */
    handle(b, x, T0 + 10500);
    /* a misses a second time in a row: not ready with reason no-answer */
    acdm_bericht *y = submit("q", T0 + 11000);
    ck_assert_str_eq(offered_to(y), "a");
    acdm_model_tick(M, T0 + 21000);
    ck_assert_int_eq(a->state, ACDM_AGENT_NOT_READY);
    ck_assert_str_eq(a->reason, "no-answer");
    ck_assert_str_eq(offered_to(y), "b");
    teardown();
}
END_TEST

START_TEST(reject_offers_next_then_retries)
{
    setup_model("{\"queues\":[{\"name\":\"q\",\"strategy\":\"linear\",\"offer_timeout_s\":10}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"]}]}");
    acdm_agent *a = ready("a", T0);
    acdm_bericht *x = submit("q", T0);
    ck_assert_int_eq(acdm_agent_reject(M, a, x, T0 + 1), 0);
    ck_assert_int_eq(x->state, ACDM_B_QUEUED);       /* nobody else: waits, not straight back */
    ck_assert_int_eq(count(ACDM_ME_OFFERED, "a"), 1);
    acdm_model_tick(M, T0 + 1 + 10000);              /* after a while the only agent gets it again */
    ck_assert_int_eq(count(ACDM_ME_OFFERED, "a"), 2);
    teardown();
}
END_TEST

START_TEST(wrapup_blocks_then_end_early_or_extend)
{
    setup_model("{\"queues\":[{\"name\":\"q\",\"wrapup_s\":30}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"]}]}");
    acdm_agent *a = ready("a", T0);
    acdm_bericht *x = submit_k("q", ACDM_KIND_CHAT, 0, T0);
    ck_assert_int_eq(acdm_agent_accept(M, a, x, T0 + 1), 0);
    ck_assert_int_eq(acdm_agent_complete(M, a, x, T0 + 2), 0);
    ck_assert_int_eq(x->state, ACDM_B_WRAPUP);
    acdm_bericht *y = submit_k("q", ACDM_KIND_CHAT, 0, T0 + 3);
    ck_assert_str_eq(offered_to(y), "");             /* no offers in wrap-up */
    ck_assert_int_eq(acdm_agent_wrapup_extend(M, a, x, 60, T0 + 4), 0);
    acdm_model_tick(M, T0 + 2 + 30000);
    ck_assert_str_eq(offered_to(y), "");             /* extended: still in wrap-up */
    ck_assert_int_eq(acdm_agent_wrapup_end(M, a, x, T0 + 40000), 0); /* ended early */
    ck_assert_int_eq(count(ACDM_ME_DONE, "a"), 1);
    ck_assert_str_eq(offered_to(y), "a");
    ck_assert_int_eq(acdm_agent_accept(M, a, y, T0 + 40001), 0);
    ck_assert_int_eq(acdm_agent_complete(M, a, y, T0 + 40002), 0);
    acdm_model_tick(M, T0 + 40002 + 30000);          /* wrap-up ends by itself */
    ck_assert_int_eq(count(ACDM_ME_DONE, "a"), 2);
    ck_assert_int_eq(a->n_work, 0);
    teardown();
}
END_TEST

/* ------------------------------------------------------------ fairness, overflow, skills */

START_TEST(cross_queue_fairness)
{
    setup_model("{\"queues\":[{\"name\":\"q1\",\"wrapup_s\":0},{\"name\":\"q2\",\"wrapup_s\":0},"
                "{\"name\":\"vip\",\"priority\":50,\"wrapup_s\":0}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q1\",\"q2\",\"vip\"]}]}");
    acdm_bericht *old2 = submit("q2", T0);         /* waiting longest */
    acdm_bericht *new1 = submit("q1", T0 + 1000);
    acdm_bericht *hi1 = submit_k("q1", ACDM_KIND_VOICE, 5, T0 + 2000);
    acdm_bericht *vip = submit("vip", T0 + 3000);
    acdm_agent *a = ready("a", T0 + 4000);
    ck_assert_str_eq(offered_to(vip), "a");        /* queue priority first */
    handle(a, vip, T0 + 4001);
    ck_assert_str_eq(offered_to(hi1), "a");        /* then bericht priority */
    handle(a, hi1, T0 + 4002);
    ck_assert_str_eq(offered_to(old2), "a");       /* then the longest waiter, over queues */
    handle(a, old2, T0 + 4003);
    ck_assert_str_eq(offered_to(new1), "a");
    teardown();
}
END_TEST

START_TEST(overflow_after_max_wait)
{
    setup_model("{\"queues\":[{\"name\":\"q1\",\"max_wait_s\":60,\"overflow\":\"q2\"},{\"name\":\"q2\"}],"
                "\"agents\":[{\"id\":\"b\",\"queues\":[\"q2\"]}]}");
    ready("b", T0);
    acdm_bericht *x = submit("q1", T0);
    ck_assert_str_eq(offered_to(x), "");
    acdm_model_tick(M, T0 + 59999);
    ck_assert_str_eq(x->queue->name, "q1");
    acdm_model_tick(M, T0 + 60000);
    ck_assert_int_eq(count(ACDM_ME_OVERFLOW, NULL), 1);
    ck_assert_str_eq(x->queue->name, "q2");
    ck_assert_str_eq(offered_to(x), "b");
    ck_assert_int_eq(x->queued_ms, T0);            /* keeps its original queue time */
    teardown();
}
END_TEST

START_TEST(skills_filter_and_relax)
{
    setup_model("{\"queues\":[{\"name\":\"q\",\"relax_after_s\":120}],"
                "\"agents\":[{\"id\":\"gen\",\"queues\":[\"q\"]},"
                "{\"id\":\"spec\",\"queues\":[\"q\"],\"skills\":[{\"name\":\"wmo\",\"level\":3}]}]}");
    ready("gen", T0);
    acdm_agent *spec = ready("spec", T0 + 10);
    acdm_skill need = {.name = "wmo", .level = 2};
    acdm_new_bericht nb = {.id = "00000000-0000-7000-8000-00000000aaaa", .queue = "q",
                           .kind = ACDM_KIND_VOICE, .skills = &need, .n_skills = 1};
    acdm_bericht *x;
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0 + 20, &x, NULL), 0);
    ck_assert_str_eq(offered_to(x), "spec");       /* gen idle longer, but lacks the skill */
    ck_assert_int_eq(acdm_agent_accept(M, spec, x, T0 + 21), 0);
    nb.id = "00000000-0000-7000-8000-00000000bbbb";
    need.level = 5;                                /* nobody has wmo 5 */
    acdm_bericht *y;
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0 + 30, &y, NULL), 0);
    ck_assert_str_eq(offered_to(y), "");
    /* a plain bericht behind it is not blocked */
    acdm_bericht *z = submit("q", T0 + 40);
    ck_assert_str_eq(offered_to(z), "gen");
    handle(acdm_model_agent(M, "gen"), z, T0 + 50);
    ck_assert_str_eq(offered_to(y), "");           /* still nobody qualified */
    acdm_model_tick(M, T0 + 30 + 120000);          /* relaxation */
    ck_assert_int_eq(count(ACDM_ME_RELAXED, NULL), 1);
    ck_assert_str_eq(offered_to(y), "gen");
    teardown();
}
END_TEST

/* ------------------------------------------------------------ open/closed */

START_TEST(closed_queue_gives_closed_text)
{
    setup_model("{\"queues\":[{\"name\":\"q\",\"closed\":true,\"closed_text\":{\"voice\":\"Dit nummer is tijdelijk buiten gebruik.\",\"default\":\"Gesloten.\"}},"
                "{\"name\":\"e\",\"emergency\":true,\"emergency_text\":\"Storing: wij zijn niet bereikbaar.\"}],\"agents\":[]}");
    const char *text = NULL;
    acdm_new_bericht nb = {.id = "00000000-0000-7000-8000-000000000001", .queue = "q", .kind = ACDM_KIND_VOICE};
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0, NULL, &text), ACDM_ECLOSED);
    ck_assert_str_eq(text, "Dit nummer is tijdelijk buiten gebruik.");
    nb.kind = ACDM_KIND_EMAIL;
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0, NULL, &text), ACDM_ECLOSED);
    ck_assert_str_eq(text, "Gesloten.");
    nb.queue = "e";
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0, NULL, &text), ACDM_ECLOSED);
    ck_assert_str_eq(text, "Storing: wij zijn niet bereikbaar.");
    ck_assert_int_eq(acdm_model_n_berichten(M), 0);
    teardown();
}
END_TEST

START_TEST(schedule_opens_and_closes_queue)
{
    ck_assert_int_eq(acdm_set_timezone("Europe/Amsterdam"), 0);
    setup_model("{\"schedules\":[{\"name\":\"k\",\"week\":{\"mon\":[\"08:00-17:00\"],\"tue\":[\"08:00-17:00\"],"
                "\"wed\":[\"08:00-17:00\"],\"thu\":[\"08:00-17:00\"],\"fri\":[\"08:00-17:00\"]},\"holidays\":[\"2026-01-01\"]}],"
                "\"queues\":[{\"name\":\"q\",\"schedule\":\"k\"}],\"agents\":[]}");
    /* T0 = Thu 2026-01-01 11:00 Amsterdam: a holiday -> closed */
    acdm_queue *q = acdm_model_queue(M, "q");
    ck_assert(!acdm_queue_is_open(q));
    /* Fri 2026-01-02 08:00 Amsterdam = 07:00 UTC */
    int64_t fri8 = 1767337200000LL;
    acdm_model_tick(M, fri8 - 1);
    ck_assert(!acdm_queue_is_open(q));
    acdm_model_tick(M, fri8);
    ck_assert(acdm_queue_is_open(q));
    ck_assert_int_eq(count(ACDM_ME_QUEUE_OPEN, NULL), 1);
    acdm_model_tick(M, fri8 + 9LL * 3600 * 1000);  /* 17:00 */
    ck_assert(!acdm_queue_is_open(q));
    ck_assert_int_eq(count(ACDM_ME_QUEUE_CLOSED, NULL), 1);
    teardown();
}
END_TEST

START_TEST(queue_status_says_why_and_until_when)
{
    ck_assert_int_eq(acdm_set_timezone("Europe/Amsterdam"), 0);
    setup_model("{\"schedules\":[{\"name\":\"k\",\"week\":{\"mon\":[\"08:00-17:00\"],\"tue\":[\"08:00-17:00\"],"
                "\"wed\":[\"08:00-17:00\"],\"thu\":[\"08:00-17:00\"],\"fri\":[\"08:00-17:00\"]},\"holidays\":[\"2026-01-01\"]}],"
                "\"queues\":[{\"name\":\"q\",\"schedule\":\"k\"},{\"name\":\"r\"}],\"agents\":[]}");
    acdm_queue *q = acdm_model_queue(M, "q"), *r = acdm_model_queue(M, "r");
    int64_t fri8 = 1767337200000LL;                        /* Fri 2026-01-02 08:00 Amsterdam */
    acdm_queue_status st;
    /* Thu 1 Jan (a holiday): closed by schedule until Friday 08:00, past the midnight in between */
    acdm_queue_status_of(q, T0, &st);
    ck_assert(!st.open && !st.manual_closed && st.has_schedule && !st.schedule_open);
    ck_assert_str_eq(st.why, "schedule");
    ck_assert_int_eq(st.until_ms, fri8);
    acdm_model_tick(M, fri8);
    acdm_queue_status_of(q, fri8 + 1000, &st);
    ck_assert(st.open && st.schedule_open);
    ck_assert_ptr_null(st.why);
    ck_assert_int_eq(st.until_ms, fri8 + 9LL * 3600 * 1000);   /* open until 17:00 */
    /* no schedule: open, nothing to flip */
    acdm_queue_status_of(r, fri8, &st);
    ck_assert(st.open && !st.has_schedule && st.schedule_open);
    ck_assert_int_eq(st.until_ms, 0);
    teardown();
}
END_TEST

START_TEST(wait_if_closed_parks_until_the_queue_opens)
{
    ck_assert_int_eq(acdm_set_timezone("Europe/Amsterdam"), 0);
    setup_model("{\"schedules\":[{\"name\":\"k\",\"week\":{\"fri\":[\"08:00-17:00\"]},\"holidays\":[\"2026-01-01\"]}],"
                "\"queues\":[{\"name\":\"q\",\"schedule\":\"k\"},{\"name\":\"r\"}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"]}]}");
    acdm_queue *q = acdm_model_queue(M, "q");
    ck_assert(!acdm_queue_is_open(q));
    acdm_agent *a = ready("a", T0);                       /* logged in to the closed queue */
    acdm_new_bericht nb = {.id = "00000000-0000-7000-8000-00000000aa01", .queue = "q",
                           .kind = ACDM_KIND_EMAIL, .from = "piet@example.nl"};
    const char *text = NULL;
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0, NULL, &text), ACDM_ECLOSED);   /* without the flag */
    nb.wait_if_closed = true;
    acdm_bericht *b = NULL;
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0 + 5, &b, &text), 0);
    ck_assert_int_eq(b->state, ACDM_B_QUEUED);
    ck_assert_int_eq(acdm_queue_n_held(M, q), 1);
    acdm_model_tick(M, T0 + 60000);
    ck_assert_str_eq(offered_to(b), "");                  /* closed: not offered, also not to a */
    int64_t fri8 = 1767337200000LL;                        /* Fri 2026-01-02 08:00 Amsterdam */
    acdm_model_tick(M, fri8);
    ck_assert(acdm_queue_is_open(q));
    ck_assert_str_eq(offered_to(b), "a");                 /* offered once it opened */
    ck_assert_int_eq(b->queued_ms, T0 + 5);                /* with its original queue time */
    ck_assert_int_eq(acdm_queue_n_held(M, q), 0);
    ck_assert_int_eq(acdm_agent_accept(M, a, b, fri8 + 1), 0);
    /* a parked one that ends meanwhile is simply gone */
    acdm_model_tick(M, fri8 + 9LL * 3600 * 1000);
    ck_assert(!acdm_queue_is_open(q));
    nb.id = "00000000-0000-7000-8000-00000000aa02";
    acdm_bericht *c = NULL;
    ck_assert_int_eq(acdm_model_submit(M, &nb, fri8 + 9LL * 3600 * 1000 + 1, &c, &text), 0);
    ck_assert_int_eq(acdm_model_end(M, c, "abandoned", fri8 + 9LL * 3600 * 1000 + 2), 0);
    ck_assert_int_eq(acdm_queue_n_held(M, q), 0);
    teardown();
}
END_TEST

START_TEST(a_restored_bericht_is_kept_for_its_agent_until_the_grace_ends)
{
    setup_model("{\"queues\":[{\"name\":\"q\",\"wrapup_s\":0}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"]},{\"id\":\"b\",\"queues\":[\"q\"]}]}");
    acdm_queue *q = acdm_model_queue(M, "q");
    acdm_new_bericht nb = {.id = "00000000-0000-7000-8000-00000000bb01", .queue = "q",
                           .kind = ACDM_KIND_VOICE, .from = "+31611", .queued_ms = T0 - 5000};
    acdm_bericht *x = NULL, *y = NULL;
    ck_assert_int_eq(acdm_model_restore(M, &nb, T0, &x), 0);
    ck_assert_int_eq(acdm_model_reserve(M, x, "nobody", T0 + 60000), ACDM_ENOENT);
    ck_assert_int_eq(acdm_model_reserve(M, x, "a", T0 + 60000), 0);
    nb.id = "00000000-0000-7000-8000-00000000bb02";
    ck_assert_int_eq(acdm_model_restore(M, &nb, T0, &y), 0);
    ck_assert_int_eq(acdm_model_reserve(M, y, "a", T0 + 60000), 0);
    ck_assert_int_eq(acdm_queue_n_held(M, q), 2);
    ready("b", T0 + 10);                                    /* another agent: not theirs */
    ck_assert_str_eq(offered_to(x), "");
    ck_assert_str_eq(offered_to(y), "");
    acdm_agent *a = ready("a", T0 + 20);                    /* back within the grace */
    ck_assert_str_eq(offered_to(x), "a");
    ck_assert_int_eq(acdm_agent_accept(M, a, x, T0 + 30), 0);
    /* y: a is busy (voice capacity 1): it stays a's until the grace ends, then b gets it */
    ck_assert_str_eq(offered_to(y), "");
    acdm_model_tick(M, T0 + 59999);
    ck_assert_str_eq(offered_to(y), "");
    acdm_model_tick(M, T0 + 60000);
    ck_assert_str_eq(offered_to(y), "b");
    ck_assert_int_eq(y->queued_ms, T0 - 5000);
    ck_assert_int_eq(acdm_queue_n_held(M, q), 0);
    teardown();
}
END_TEST

/* ------------------------------------------------------------ agent actions */

START_TEST(pick_transfer_and_abandon)
{
    setup_model("{\"queues\":[{\"name\":\"q\",\"quick_drop_s\":5,\"wrapup_s\":0},{\"name\":\"q2\",\"wrapup_s\":0}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"]},{\"id\":\"b\",\"queues\":[\"q2\"]}]}");
    acdm_bericht *x = submit_k("q", ACDM_KIND_EMAIL, 0, T0);
    acdm_bericht *y = submit_k("q", ACDM_KIND_EMAIL, 0, T0 + 1);
    acdm_agent *a = acdm_model_agent(M, "a");
    acdm_agent_login(M, a, T0 + 2);                /* logged in, not ready: no offers */
    ck_assert_int_eq(acdm_agent_pick(M, a, y, T0 + 3), 0);   /* picks the second one */
    ck_assert_int_eq(y->state, ACDM_B_ACTIVE);
    ck_assert_int_eq(x->state, ACDM_B_QUEUED);
    acdm_agent *b = ready("b", T0 + 4);
    ck_assert_int_eq(acdm_agent_transfer_queue(M, a, y, acdm_model_queue(M, "q2"), T0 + 5), 0);
    ck_assert_str_eq(offered_to(y), "b");
    ck_assert_int_eq(count(ACDM_ME_TRANSFERRED, "a"), 1);
    ck_assert_int_eq(acdm_agent_accept(M, b, y, T0 + 6), 0);
    /* customer gives up: within 5 s is a quick drop */
    acdm_bericht *v = submit("q", T0 + 10);
    ck_assert_int_eq(acdm_model_end(M, v, "hangup", T0 + 3000), 0);
    acdm_bericht *w = submit("q", T0 + 20);
    ck_assert_int_eq(acdm_model_end(M, w, "hangup", T0 + 20 + 30000), 0);
    int ab = 0, quick = 0;
    for (int i = 0; i < n_ev; i++)
        if (evs[i].type == ACDM_ME_ABANDONED) { ab++; quick += evs[i].quick; }
    ck_assert_int_eq(ab, 2);
    ck_assert_int_eq(quick, 1);
    teardown();
}
END_TEST

START_TEST(logout_returns_work_and_conversation_lookup)
{
    setup_model("{\"queues\":[{\"name\":\"q\"}],\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"]},{\"id\":\"b\",\"queues\":[\"q\"]}]}");
    acdm_agent *a = ready("a", T0);
    acdm_new_bericht nb = {.id = "00000000-0000-7000-8000-0000000000c1", .queue = "q",
                           .kind = ACDM_KIND_CHAT, .conversation = "chat-42", .from = "bezoeker",
                           .channel = "site1"};
    acdm_bericht *x;
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0 + 1, &x, NULL), 0);
    ck_assert_ptr_eq(acdm_model_conversation(M, "site1", "chat-42"), x);
    ck_assert_str_eq(x->conversation, "chat-42");
    /* the same key on another channel instance is another conversation */
    ck_assert_ptr_null(acdm_model_conversation(M, "site2", "chat-42"));
    acdm_new_bericht nb2 = nb;
    nb2.id = "00000000-0000-7000-8000-0000000000c2";
    nb2.channel = "site2";
    acdm_bericht *y;
    ck_assert_int_eq(acdm_model_submit(M, &nb2, T0 + 1, &y, NULL), 0);
    ck_assert_ptr_eq(acdm_model_conversation(M, "site1", "chat-42"), x);
    ck_assert_ptr_eq(acdm_model_conversation(M, "site2", "chat-42"), y);
    ck_assert_int_eq(acdm_agent_accept(M, a, x, T0 + 2), 0);
    acdm_agent_logout(M, a, NULL, T0 + 3);
    ck_assert_int_eq(x->state, ACDM_B_QUEUED);     /* back in the queue, not lost */
    ck_assert_int_eq(x->queued_ms, T0 + 1);
    ready("b", T0 + 4);
    ck_assert_str_eq(offered_to(x), "b");
    teardown();
}
END_TEST

START_TEST(join_leave_membership)
{
    setup_model("{\"queues\":[{\"name\":\"q1\"},{\"name\":\"q2\"}],\"agents\":[{\"id\":\"a\",\"queues\":[\"q1\",\"q2\"]}]}");
    acdm_agent *a = ready("a", T0);
    ck_assert_int_eq(acdm_agent_leave(M, a, acdm_model_queue(M, "q1"), T0 + 1), 0);
    acdm_bericht *x = submit("q1", T0 + 2);
    ck_assert_str_eq(offered_to(x), "");
    ck_assert_int_eq(acdm_agent_join(M, a, acdm_model_queue(M, "q1"), T0 + 3), 0);
    ck_assert_str_eq(offered_to(x), "a");
    teardown();
}
END_TEST

/* ------------------------------------------------------------ reload */

START_TEST(reload_moves_berichten_of_removed_queue)
{
    setup_model("{\"queues\":[{\"name\":\"old\",\"fallback\":\"main\"},{\"name\":\"main\",\"strategy\":\"linear\"}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"main\"]}]}");
    acdm_bericht *x = submit("old", T0);
    acdm_model_configure(M, cfg_of("{\"queues\":[{\"name\":\"main\",\"strategy\":\"round-robin\"}],"
                                   "\"agents\":[{\"id\":\"a\",\"queues\":[\"main\"]}]}"), T0 + 1, NULL, 0);
    ck_assert_ptr_eq(acdm_model_bericht(M, x->id), x);
    ck_assert_str_eq(x->queue->name, "main");
    ck_assert_int_eq(acdm_model_queue(M, "main")->strategy, ACDM_STRAT_ROUND_ROBIN);
    ck_assert_ptr_null(acdm_model_queue(M, "old"));
    ready("a", T0 + 2);
    ck_assert_str_eq(offered_to(x), "a");
    teardown();
}
END_TEST

START_TEST(reload_refused_without_fallback_changes_nothing)
{
    setup_model("{\"queues\":[{\"name\":\"old\"},{\"name\":\"main\"}],\"agents\":[]}");
    acdm_bericht *x = submit("old", T0);
    acdm_config *c = cfg_of("{\"queues\":[{\"name\":\"main\",\"closed\":true}],\"agents\":[]}");
    char err[512] = "";
    ck_assert_int_eq(acdm_model_configure(M, c, T0 + 1, err, sizeof err), ACDM_EINVAL);
    ck_assert_msg(strstr(err, "\"old\"") && strstr(err, "fallback"), "%s", err);
    acdm_config_free(c);
    ck_assert_str_eq(x->queue->name, "old");
    ck_assert(acdm_queue_is_open(acdm_model_queue(M, "main")));  /* the closing was not applied */
    teardown();
}
END_TEST

START_TEST(reload_closes_queue_and_removes_agent)
{
    setup_model("{\"queues\":[{\"name\":\"q\"}],\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"]},{\"id\":\"b\",\"queues\":[\"q\"]}]}");
    acdm_agent *a = ready("a", T0);
    acdm_bericht *x = submit("q", T0 + 1);
    ck_assert_int_eq(acdm_agent_accept(M, a, x, T0 + 2), 0);
    ready("b", T0 + 3);
    char err[256];
    ck_assert_int_eq(acdm_model_configure(M, cfg_of("{\"queues\":[{\"name\":\"q\",\"closed\":true}],"
                                                  "\"agents\":[{\"id\":\"b\",\"queues\":[\"q\"]}]}"),
                                          T0 + 4, err, sizeof err), 0);
    ck_assert_ptr_null(acdm_model_agent(M, "a"));
    ck_assert_int_eq(count(ACDM_ME_QUEUE_CLOSED, NULL), 1);
    ck_assert_str_eq(offered_to(x), "b");          /* a's call went back and on to b */
    const char *text = NULL;
    acdm_new_bericht nb = {.id = "00000000-0000-7000-8000-00000000dddd", .queue = "q", .kind = ACDM_KIND_VOICE};
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0 + 5, NULL, &text), ACDM_ECLOSED);
    teardown();
}
END_TEST

START_TEST(restore_keeps_queue_time)
{
    setup_model("{\"queues\":[{\"name\":\"q\"}],\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"]}]}");
    acdm_new_bericht nb = {.id = "00000000-0000-7000-8000-0000000000f1", .queue = "q",
                           .kind = ACDM_KIND_VOICE, .queued_ms = T0 - 60000, .created_ms = T0 - 60000};
    acdm_bericht *x;
    ck_assert_int_eq(acdm_model_restore(M, &nb, T0, &x), 0);
    nb.id = "00000000-0000-7000-8000-0000000000f2";
    nb.queued_ms = T0 - 120000;
    acdm_bericht *y;
    ck_assert_int_eq(acdm_model_restore(M, &nb, T0, &y), 0);
    ck_assert_int_eq(acdm_queue_position(y), 1);   /* the older one is first */
    ck_assert_int_eq(acdm_queue_position(x), 2);
    ready("a", T0 + 1);
    ck_assert_str_eq(offered_to(y), "a");
    teardown();
}
END_TEST

START_TEST(bad_input_is_refused)
{
    setup_model("{\"queues\":[{\"name\":\"q\"}],\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"]}]}");
    acdm_new_bericht nb = {.id = "x", .queue = "nope", .kind = ACDM_KIND_VOICE};
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0, NULL, NULL), ACDM_ENOENT);
    nb.queue = "q";
    nb.kind = (acdm_kind)42;
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0, NULL, NULL), ACDM_EINVAL);
    nb.kind = ACDM_KIND_VOICE;
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0, NULL, NULL), 0);
    ck_assert_int_eq(acdm_model_submit(M, &nb, T0, NULL, NULL), ACDM_EEXIST);
    acdm_agent *a = acdm_model_agent(M, "a");
    ck_assert_int_eq(acdm_agent_ready(M, a, T0), ACDM_ESTATE);       /* not logged in */
    acdm_agent_login(M, a, T0);
    ck_assert_int_eq(acdm_agent_not_ready(M, a, "no-such-reason", T0), ACDM_EINVAL);
    ck_assert_int_eq(acdm_agent_complete(M, a, acdm_model_bericht(M, "x"), T0), ACDM_ESTATE);
    teardown();
}
END_TEST

/* ------------------------------------------------------------ hold / resume (R18) */

/* the index of the last event of type t for bericht b, -1 if none */
static int last_ev(acdm_mevent_type t, const acdm_bericht *b)
{
    for (int i = n_ev - 1; i >= 0; i--)
        if (evs[i].type == t && !strcmp(evs[i].b, b->id)) return i;
    return -1;
}

#define HOLD_CFG \
    "{\"queues\":[{\"name\":\"q\",\"wrapup_s\":10},{\"name\":\"q2\",\"wrapup_s\":0}]," \
    "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"]},{\"id\":\"b\",\"queues\":[\"q\",\"q2\"]}]}"

START_TEST(hold_resume_rules_and_events)
{
    setup_model(HOLD_CFG);
    acdm_agent *a = ready("a", T0);
    acdm_bericht *x = submit("q", T0 + 1);
    ck_assert_str_eq(offered_to(x), "a");
    const char *why = NULL;
    /* offered, not accepted: no hold */
    ck_assert_int_eq(acdm_agent_hold(M, a, x, T0 + 2, &why), ACDM_ESTATE);
    ck_assert_ptr_nonnull(why);
    ck_assert_int_eq(acdm_agent_accept(M, a, x, T0 + 3), 0);
    /* resume when not held */
    ck_assert_int_eq(acdm_agent_resume(M, a, x, T0 + 4, &why), ACDM_ESTATE);
    ck_assert_str_eq(why, "the call is not on hold");
    /* hold: flag, start, event */
    ck_assert_int_eq(acdm_agent_hold(M, a, x, T0 + 1000, &why), 0);
    ck_assert(x->held);
    ck_assert_int_eq(x->hold_ms, T0 + 1000);
    int h = last_ev(ACDM_ME_HOLD, x);
    ck_assert_int_ge(h, 0);
    ck_assert_str_eq(evs[h].a, "a");
    /* twice: refused, nothing emitted */
    int n = n_ev;
    ck_assert_int_eq(acdm_agent_hold(M, a, x, T0 + 1100, &why), ACDM_ESTATE);
    ck_assert_str_eq(why, "the call is already on hold");
    ck_assert_int_eq(n_ev, n);
    ck_assert(x->held);
    /* a colleague cannot take it back */
    acdm_agent *b = ready("b", T0 + 1200);
    ck_assert_int_eq(acdm_agent_resume(M, b, x, T0 + 1300, &why), ACDM_ESTATE);
    ck_assert(x->held);
    /* resume: held time in the event value */
    ck_assert_int_eq(acdm_agent_resume(M, a, x, T0 + 6000, NULL), 0);
    ck_assert(!x->held);
    int r = last_ev(ACDM_ME_RESUME, x);
    ck_assert_int_gt(r, h);
    ck_assert_int_eq(evs[r].value, 5000);
    ck_assert_str_eq(evs[r].reason, "");
    ck_assert_str_eq(acdm_mevent_name(ACDM_ME_HOLD), "hold");
    ck_assert_str_eq(acdm_mevent_name(ACDM_ME_RESUME), "resume");
    /* a second hold after a resume is fine; completing a held call resumes it first */
    ck_assert_int_eq(acdm_agent_hold(M, a, x, T0 + 7000, NULL), 0);
    ck_assert_int_eq(acdm_agent_complete(M, a, x, T0 + 7500), 0);
    r = last_ev(ACDM_ME_RESUME, x);
    ck_assert_str_eq(evs[r].reason, "complete");
    ck_assert_int_eq(evs[r].value, 500);
    ck_assert_int_lt(r, last_ev(ACDM_ME_WRAPUP_START, x));
    ck_assert(!x->held);
    /* in wrap-up: no hold */
    ck_assert_int_eq(acdm_agent_hold(M, a, x, T0 + 8000, &why), ACDM_ESTATE);
    ck_assert_int_eq(count(ACDM_ME_HOLD, NULL), 2);
    /* a chat is not a call: invalid, says why */
    acdm_bericht *c = submit_k("q2", ACDM_KIND_CHAT, 0, T0 + 9000);
    ck_assert_str_eq(offered_to(c), "b");
    ck_assert_int_eq(acdm_agent_accept(M, b, c, T0 + 9001), 0);
    ck_assert_int_eq(acdm_agent_hold(M, b, c, T0 + 9002, &why), ACDM_EINVAL);
    ck_assert_str_eq(why, "hold is for calls (voice, callback)");
    ck_assert_int_eq(acdm_agent_resume(M, b, c, T0 + 9003, &why), ACDM_EINVAL);
    ck_assert(!c->held);
    /* a callback is a call */
    acdm_bericht *cb = submit_k("q2", ACDM_KIND_CALLBACK, 0, T0 + 9100);
    ck_assert_str_eq(offered_to(cb), "b");
    ck_assert_int_eq(acdm_agent_accept(M, b, cb, T0 + 9101), 0);
    ck_assert_int_eq(acdm_agent_hold(M, b, cb, T0 + 9102, NULL), 0);
    ck_assert_int_eq(acdm_agent_resume(M, b, cb, T0 + 9202, NULL), 0);
    ck_assert_int_eq(evs[last_ev(ACDM_ME_RESUME, cb)].value, 100);
    teardown();
}
END_TEST

START_TEST(hold_then_hangup_goes_to_wrapup)
{
    setup_model(HOLD_CFG);
    acdm_agent *a = ready("a", T0);
    acdm_bericht *x = submit("q", T0 + 1);
    ck_assert_int_eq(acdm_agent_accept(M, a, x, T0 + 2), 0);
    ck_assert_int_eq(acdm_agent_hold(M, a, x, T0 + 1000, NULL), 0);
    ck_assert_int_eq(acdm_model_end(M, x, "hangup", T0 + 4000), 0);
    /* customer_ended, resume (hangup, 3 s held), wrap-up: the call ends as usual */
    int ce = last_ev(ACDM_ME_CUSTOMER_ENDED, x), r = last_ev(ACDM_ME_RESUME, x),
        wr = last_ev(ACDM_ME_WRAPUP_START, x);
    ck_assert_int_ge(ce, 0);
    ck_assert_int_gt(r, ce);
    ck_assert_int_gt(wr, r);
    ck_assert_str_eq(evs[r].reason, "hangup");
    ck_assert_int_eq(evs[r].value, 3000);
    ck_assert_int_eq(x->state, ACDM_B_WRAPUP);
    ck_assert(!x->held);
    ck_assert_int_eq(acdm_agent_resume(M, a, x, T0 + 4100, NULL), ACDM_ESTATE);
    char id[37];
    snprintf(id, sizeof id, "%s", x->id);
    acdm_model_tick(M, T0 + 4000 + 10000);           /* wrap-up over: done, x freed */
    ck_assert_ptr_null(acdm_model_bericht(M, id));
    ck_assert_int_eq(evs[n_ev - 1].type, ACDM_ME_DONE);
    ck_assert_str_eq(evs[n_ev - 1].b, id);
    teardown();
}
END_TEST

START_TEST(hold_then_transfer_resumes_first)
{
    setup_model(HOLD_CFG);
    acdm_agent *a = ready("a", T0);
    acdm_bericht *x = submit("q", T0 + 1);
    ck_assert_int_eq(acdm_agent_accept(M, a, x, T0 + 2), 0);
    ck_assert_int_eq(acdm_agent_hold(M, a, x, T0 + 100, NULL), 0);
    /* b is not there yet: the transfer is refused and the call stays on hold */
    acdm_agent *b = acdm_model_agent(M, "b");
    ck_assert_int_eq(acdm_agent_transfer_agent(M, a, x, b, T0 + 200), ACDM_EFULL);
    ck_assert(x->held);
    ck_assert_int_eq(last_ev(ACDM_ME_RESUME, x), -1);
    ready("b", T0 + 300);
    ck_assert_int_eq(acdm_agent_transfer_agent(M, a, x, b, T0 + 600), 0);
    int r = last_ev(ACDM_ME_RESUME, x), t = last_ev(ACDM_ME_TRANSFERRED, x);
    ck_assert_int_ge(r, 0);
    ck_assert_int_gt(t, r);
    ck_assert_str_eq(evs[r].reason, "transfer");
    ck_assert_str_eq(evs[r].a, "a");
    ck_assert_int_eq(evs[r].value, 500);
    ck_assert(!x->held);
    ck_assert_str_eq(offered_to(x), "b");
    /* the colleague takes it and may hold it again; a queue transfer resumes too */
    ck_assert_int_eq(acdm_agent_accept(M, b, x, T0 + 700), 0);
    ck_assert_int_eq(acdm_agent_hold(M, b, x, T0 + 800, NULL), 0);
    ck_assert_int_eq(acdm_agent_transfer_queue(M, b, x, acdm_model_queue(M, "q2"), T0 + 900), 0);
    ck_assert_str_eq(evs[last_ev(ACDM_ME_RESUME, x)].reason, "transfer");
    ck_assert(!x->held);
    /* a logout returns a held call to the queue resumed */
    ck_assert_int_eq(acdm_agent_pick(M, b, x, T0 + 1000), 0);    /* not re-offered to b: b picks it */
    ck_assert_int_eq(acdm_agent_hold(M, b, x, T0 + 1100, NULL), 0);
    acdm_agent_logout(M, b, NULL, T0 + 1400);
    r = last_ev(ACDM_ME_RESUME, x);
    ck_assert_str_eq(evs[r].reason, "logout");
    ck_assert_int_eq(evs[r].value, 300);
    ck_assert(!x->held);
    ck_assert_int_eq(x->state, ACDM_B_QUEUED);
    teardown();
}
END_TEST

/* ------------------------------------------------------------ reassign (supervisor) */

START_TEST(reassign_offered_and_waiting_keeps_invariants)
{
    setup_model("{\"queues\":[{\"name\":\"q\",\"wrapup_s\":10,\"offer_timeout_s\":20},{\"name\":\"q2\"}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"],\"capacity\":{\"chat\":1}},"
                "{\"id\":\"b\",\"queues\":[\"q2\"],\"capacity\":{\"chat\":1,\"email\":0}},"
                "{\"id\":\"c\",\"queues\":[\"q\"]}]}");
    acdm_agent *a = ready("a", T0);
    acdm_agent *b = acdm_model_agent(M, "b"), *c = acdm_model_agent(M, "c");
    acdm_bericht *x = submit_k("q", ACDM_KIND_CHAT, 0, T0 + 10);
    ck_assert_str_eq(offered_to(x), "a");
    const char *why = NULL;
    /* b is logged out: refused, nothing changes */
    ck_assert_int_eq(acdm_model_reassign(M, x, b, T0 + 20, &why), ACDM_ESTATE);
    ck_assert_str_eq(why, "logged_out");
    ck_assert_int_eq(x->state, ACDM_B_OFFERED);
    ck_assert_ptr_nonnull(acdm_agent_work(a, x));
    /* logged in but not ready, not a member of q: still allowed; the offer to a is withdrawn */
    ck_assert_int_eq(acdm_agent_login(M, b, T0 + 30), 0);
    ck_assert_int_eq(acdm_model_reassign(M, x, b, T0 + 40, &why), 0);
    ck_assert_ptr_null(acdm_agent_work(a, x));
    ck_assert_int_eq(a->load[ACDM_KIND_CHAT], 0);
    ck_assert_int_eq(b->load[ACDM_KIND_CHAT], 1);
    ck_assert_str_eq(offered_to(x), "b");
    int cancel = -1;
    for (int i = 0; i < n_ev; i++)
        if (evs[i].type == ACDM_ME_OFFER_CANCELLED && !strcmp(evs[i].b, x->id)) cancel = i;
    ck_assert_int_ge(cancel, 0);
    ck_assert_str_eq(evs[cancel].a, "a");
    ck_assert_str_eq(evs[cancel].reason, "reassigned");
    ck_assert_int_eq(x->queued_ms, T0 + 10);                 /* original queue time kept */
    /* already offered to b: refused; b has no room for a second chat */
    ck_assert_int_eq(acdm_model_reassign(M, x, b, T0 + 50, &why), ACDM_EINVAL);
    ck_assert_str_eq(why, "same");
    acdm_bericht *y = submit_k("q", ACDM_KIND_CHAT, 0, T0 + 60);
    ck_assert_str_eq(offered_to(y), "a");
    ck_assert_int_eq(acdm_model_reassign(M, y, b, T0 + 70, &why), ACDM_EFULL);
    ck_assert_str_eq(why, "full");
    ck_assert_str_eq(offered_to(y), "a");
    /* the wrong kind: b takes no e-mail */
    acdm_bericht *z = submit_k("q2", ACDM_KIND_EMAIL, 0, T0 + 80);
    ck_assert_int_eq(acdm_model_reassign(M, z, b, T0 + 90, &why), ACDM_EINVAL);
    ck_assert_str_eq(why, "kind");
    /* a waiting one (nobody free in q2) goes to c; b rejects x: back in q, with its queue time */
    ck_assert_int_eq(z->state, ACDM_B_QUEUED);
    ck_assert_int_eq(acdm_agent_login(M, c, T0 + 100), 0);
    ck_assert_int_eq(acdm_model_reassign(M, z, c, T0 + 110, &why), 0);
    ck_assert_int_eq(z->state, ACDM_B_OFFERED);
    ck_assert_int_eq(acdm_agent_accept(M, c, z, T0 + 120), 0);
    ck_assert_int_eq(z->queued_ms, T0 + 80);
    ck_assert_int_eq(acdm_agent_reject(M, b, x, T0 + 130), 0);
    ck_assert_int_eq(b->load[ACDM_KIND_CHAT], 0);
    ck_assert_int_eq(x->queued_ms, T0 + 10);
    /* an active one is no longer waiting */
    ck_assert_int_eq(acdm_model_reassign(M, z, b, T0 + 140, &why), ACDM_ESTATE);
    ck_assert_str_eq(why, "not_waiting");
    teardown();
}
END_TEST

/* ------------------------------------------------------------ device offers, reachability */

#define DEV_CFG \
    "{\"max_misses\":2,\"queues\":[{\"name\":\"q\",\"strategy\":\"linear\",\"offer_timeout_s\":20,\"wrapup_s\":0}]," \
    "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"],\"phone\":\"sip:1001@127.0.0.1\"}," \
    "{\"id\":\"b\",\"queues\":[\"q\"],\"endpoints\":{\"phone\":\"sip:1002@127.0.0.1\"}}]}"

START_TEST(device_offer_answered_accepts)
{
    setup_model(DEV_CFG);
    acdm_agent *a = ready("a", T0);
    ready("b", T0);
    acdm_bericht *x = submit("q", T0 + 1);
    ck_assert_str_eq(offered_to(x), "a");
    /* not rung on a device yet: a result is refused */
    ck_assert_int_eq(acdm_agent_device_result(M, a, x, ACDM_DEV_ANSWERED, NULL, T0 + 2), ACDM_ESTATE);
    ck_assert_int_eq(acdm_agent_offer_device(M, a, x, T0 + 1 + 25000, T0 + 1), 0);
    ck_assert(acdm_agent_work(a, x)->device);
    ck_assert_int_eq(acdm_agent_device_result(M, a, x, ACDM_DEV_ANSWERED, "200 OK", T0 + 3000), 0);
    ck_assert_int_eq(x->state, ACDM_B_ACTIVE);
    ck_assert_ptr_eq(x->agent, a);
    ck_assert_int_ge(last_ev(ACDM_ME_ACCEPTED, x), 0);
    /* once accepted, another result is too late */
    ck_assert_int_eq(acdm_agent_device_result(M, a, x, ACDM_DEV_NOANSWER, NULL, T0 + 3001), ACDM_ESTATE);
    /* the device's timer went with the offer: nothing fires later */
    acdm_model_tick(M, T0 + 60000);
    ck_assert_int_eq(x->state, ACDM_B_ACTIVE);
    teardown();
}
END_TEST

START_TEST(device_offer_declined_goes_to_next)
{
    setup_model(DEV_CFG);
    acdm_agent *a = ready("a", T0);
    ready("b", T0);
    acdm_bericht *x = submit("q", T0 + 1);
    ck_assert_int_eq(acdm_agent_offer_device(M, a, x, T0 + 25001, T0 + 1), 0);
    ck_assert_int_eq(acdm_agent_device_result(M, a, x, ACDM_DEV_DECLINED, "603 Decline", T0 + 2000), 0);
    int r = last_ev(ACDM_ME_REJECTED, x);
    ck_assert_int_ge(r, 0);
    ck_assert_str_eq(evs[r].a, "a");
    ck_assert_str_eq(evs[r].reason, "declined");
    ck_assert_str_eq(offered_to(x), "b");           /* the next agent at once */
    ck_assert_int_eq(a->misses, 0);                 /* a decline is no miss */
    ck_assert_int_eq(a->state, ACDM_AGENT_READY);
    teardown();
}
END_TEST

START_TEST(device_offer_busy_and_no_answer_are_misses)
{
    setup_model(DEV_CFG);
    acdm_agent *a = ready("a", T0), *b = ready("b", T0);
    acdm_bericht *x = submit("q", T0 + 1);
    ck_assert_int_eq(acdm_agent_offer_device(M, a, x, T0 + 25001, T0 + 1), 0);
    ck_assert_int_eq(acdm_agent_device_result(M, a, x, ACDM_DEV_BUSY, "486 Busy Here", T0 + 500), 0);
    int r = last_ev(ACDM_ME_TIMEOUT, x);
    ck_assert_str_eq(evs[r].reason, "busy");
    ck_assert_int_eq(a->misses, 1);
    ck_assert_str_eq(offered_to(x), "b");
    ck_assert_int_eq(acdm_agent_offer_device(M, b, x, T0 + 25500, T0 + 500), 0);
    ck_assert_int_eq(acdm_agent_device_result(M, b, x, ACDM_DEV_NOANSWER, NULL, T0 + 20500), 0);
    ck_assert_str_eq(evs[last_ev(ACDM_ME_TIMEOUT, x)].reason, "no-answer");
    /* back to a at once (only b is skipped now); a second miss puts a on not-ready (max_misses 2) */
    ck_assert_str_eq(offered_to(x), "a");
    ck_assert_int_eq(acdm_agent_offer_device(M, a, x, T0 + 45500, T0 + 20500), 0);
    ck_assert_int_eq(acdm_agent_device_result(M, a, x, ACDM_DEV_FAILED, "no route", T0 + 20600), 0);
    ck_assert_int_eq(a->state, ACDM_AGENT_NOT_READY);
    ck_assert_str_eq(a->reason, "no-answer");
    ck_assert_int_eq(acdm_agent_device_result(M, a, x, 99, NULL, T0 + 20700), ACDM_ESTATE);
    teardown();
}
END_TEST

START_TEST(device_offer_core_answers_when_channel_is_silent)
{
    setup_model(DEV_CFG);
    acdm_agent *a = ready("a", T0);
    acdm_bericht *x = submit("q", T0);
    ck_assert_int_eq(acdm_agent_offer_device(M, a, x, T0 + 25000, T0), 0);
    /* the queue's offer timeout passes: the offer belongs to the device now */
    acdm_model_tick(M, T0 + 20001);
    ck_assert_int_eq(x->state, ACDM_B_OFFERED);
    ck_assert_int_eq(last_ev(ACDM_ME_TIMEOUT, x), -1);
    /* timeout + 5 s: the core answers NOANSWER for the channel */
    ck_assert_int_eq(acdm_model_next_due(M), T0 + 25000);
    acdm_model_tick(M, T0 + 25000);
    int r = last_ev(ACDM_ME_TIMEOUT, x);
    ck_assert_int_ge(r, 0);
    ck_assert_str_eq(evs[r].reason, "no-answer");
    ck_assert_int_eq(a->misses, 1);
    ck_assert_int_eq(x->state, ACDM_B_QUEUED);
    teardown();
}
END_TEST

START_TEST(device_offer_desk_accept_stands)
{
    setup_model(DEV_CFG);
    acdm_agent *a = ready("a", T0);
    acdm_bericht *x = submit("q", T0);
    ck_assert_int_eq(acdm_agent_offer_device(M, a, x, T0 + 25000, T0), 0);
    ck_assert_int_eq(acdm_agent_accept(M, a, x, T0 + 1000), 0);    /* on the desk */
    ck_assert_int_eq(x->state, ACDM_B_ACTIVE);
    ck_assert_int_eq(acdm_agent_device_result(M, a, x, ACDM_DEV_NOANSWER, NULL, T0 + 2000), ACDM_ESTATE);
    ck_assert_int_eq(acdm_agent_device_result(M, a, x, ACDM_DEV_ANSWERED, NULL, T0 + 2000), ACDM_ESTATE);
    ck_assert_int_eq(x->state, ACDM_B_ACTIVE);
    ck_assert_int_eq(a->misses, 0);
    teardown();
}
END_TEST

START_TEST(unreachable_agent_is_skipped)
{
    setup_model("{\"queues\":[{\"name\":\"q\",\"strategy\":\"linear\",\"wrapup_s\":0}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"],\"phone\":\"register\"},"
                "{\"id\":\"b\",\"queues\":[\"q\"],\"phone\":\"sip:1002@127.0.0.1\"},"
                "{\"id\":\"c\",\"queues\":[\"q\"]}]}");
    acdm_agent *a = ready("a", T0), *b = ready("b", T0);
    /* "register" starts unreachable for calls; a static URI and no phone are reachable */
    ck_assert(!acdm_agent_reachable(a, ACDM_KIND_VOICE));
    ck_assert(!acdm_agent_reachable(a, ACDM_KIND_CALLBACK));
    ck_assert(acdm_agent_reachable(a, ACDM_KIND_CHAT));
    ck_assert_str_eq(a->unreach_why[ACDM_KIND_VOICE], "phone not registered");
    ck_assert(acdm_agent_reachable(b, ACDM_KIND_VOICE));
    ck_assert(acdm_agent_reachable(acdm_model_agent(M, "c"), ACDM_KIND_VOICE));
    acdm_bericht *x = submit("q", T0 + 1);
    ck_assert_str_eq(offered_to(x), "b");              /* linear would pick a first */
    acdm_bericht *chat = submit_k("q", ACDM_KIND_CHAT, 0, T0 + 2);
    ck_assert_str_eq(offered_to(chat), "a");           /* chats still reach a */
    acdm_bericht *y = submit("q", T0 + 3);
    ck_assert_str_eq(offered_to(y), "");               /* b busy, a unreachable: waits */
    ck_assert_int_eq(acdm_agent_pick(M, a, y, T0 + 4), ACDM_ESTATE);
    /* the softphone registers: the waiting call goes to a at once */
    ck_assert_int_eq(acdm_agent_set_reachable(M, a, ACDM_KIND_VOICE, true, NULL, T0 + 5), 0);
    ck_assert_str_eq(offered_to(y), "a");
    ck_assert_int_eq(count(ACDM_ME_AGENT_DEVICE, "a"), 1);
    /* the same state again is no event */
    ck_assert_int_eq(acdm_agent_set_reachable(M, a, ACDM_KIND_VOICE, true, NULL, T0 + 6), 0);
    ck_assert_int_eq(count(ACDM_ME_AGENT_DEVICE, "a"), 1);
    ck_assert_int_eq(acdm_agent_set_reachable(M, a, ACDM_KIND_VOICE, false, "expired", T0 + 7), 0);
    ck_assert_str_eq(a->unreach_why[ACDM_KIND_VOICE], "expired");
    ck_assert_int_eq(count(ACDM_ME_AGENT_DEVICE, "a"), 2);
    teardown();
}
END_TEST

START_TEST(reload_changes_phone_reachability)
{
    setup_model("{\"queues\":[{\"name\":\"q\"}],\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"],\"phone\":\"register\"}]}");
    acdm_agent *a = acdm_model_agent(M, "a");
    ck_assert(!acdm_agent_reachable(a, ACDM_KIND_VOICE));
    acdm_agent_set_reachable(M, a, ACDM_KIND_VOICE, true, NULL, T0);
    char err[512];
    /* the same phone: the registration stands */
    ck_assert_int_eq(acdm_model_configure(M, cfg_of("{\"queues\":[{\"name\":\"q\"}],\"agents\":[{\"id\":\"a\","
                     "\"queues\":[\"q\"],\"name\":\"A\",\"phone\":\"register\"}]}"), T0 + 1, err, sizeof err), 0);
    ck_assert(acdm_agent_reachable(a, ACDM_KIND_VOICE));
    /* a static URI: reachable; back to register: unreachable until it registers */
    ck_assert_int_eq(acdm_model_configure(M, cfg_of("{\"queues\":[{\"name\":\"q\"}],\"agents\":[{\"id\":\"a\","
                     "\"queues\":[\"q\"],\"phone\":\"sips:a@pbx.example\"}]}"), T0 + 2, err, sizeof err), 0);
    ck_assert(acdm_agent_reachable(a, ACDM_KIND_VOICE));
    ck_assert_int_eq(acdm_model_configure(M, cfg_of("{\"queues\":[{\"name\":\"q\"}],\"agents\":[{\"id\":\"a\","
                     "\"queues\":[\"q\"],\"endpoints\":{\"phone\":\"register\"}}]}"), T0 + 3, err, sizeof err), 0);
    ck_assert(!acdm_agent_reachable(a, ACDM_KIND_VOICE));
    teardown();
}
END_TEST

/* ------------------------------------------------------------ update, outbound */

START_TEST(update_moves_queue_keeping_queue_time)
{
    setup_model("{\"queues\":[{\"name\":\"ivr\",\"wrapup_s\":0},{\"name\":\"q2\",\"wrapup_s\":0,\"skills\":[\"nl\"]},"
                "{\"name\":\"shut\",\"closed\":true}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q2\"],\"skills\":[\"nl\",{\"name\":\"wmo\",\"level\":3}]}]}");
    acdm_bericht *x = submit("ivr", T0);              /* in the IVR: nobody takes it there */
    acdm_bericht *y = submit("q2", T0 + 5000);
    ck_assert_int_eq(acdm_model_update(M, x, acdm_model_queue(M, "shut"), -1, NULL, 0, false, T0 + 9000), ACDM_ECLOSED);
    ck_assert_int_eq(acdm_model_update(M, x, NULL, 10, NULL, 0, false, T0 + 9000), ACDM_EINVAL);
    acdm_skill sk[] = {{"wmo", 2}};
    ck_assert_int_eq(acdm_model_update(M, x, acdm_model_queue(M, "q2"), 3, sk, 1, true, T0 + 10000), 0);
    ck_assert_str_eq(x->queue->name, "q2");
    ck_assert_int_eq(x->queued_ms, T0);              /* original queue time kept */
    ck_assert_int_eq(x->enqueued_ms, T0 + 10000);
    ck_assert_int_eq(x->priority, 3);
    ck_assert_int_eq(x->n_skills, 2);                /* q2's nl and its own wmo */
    int r = last_ev(ACDM_ME_UPDATED, x);
    ck_assert_int_ge(r, 0);
    ck_assert_str_eq(evs[r].q, "q2");
    ck_assert_str_eq(evs[r].reason, "ivr");
    ck_assert_int_eq(evs[r].value, 3);
    /* x now goes before y (priority, then its older queue time) */
    ready("a", T0 + 11000);
    ck_assert_str_eq(offered_to(x), "a");
    ck_assert_str_eq(offered_to(y), "");
    /* offered: no longer waiting */
    ck_assert_int_eq(acdm_model_update(M, x, NULL, 1, NULL, 0, false, T0 + 12000), ACDM_ESTATE);
    /* the same queue, priority only */
    ck_assert_int_eq(acdm_model_update(M, y, NULL, 7, NULL, 0, false, T0 + 12000), 0);
    ck_assert_str_eq(evs[last_ev(ACDM_ME_UPDATED, y)].reason, "");
    ck_assert_int_eq(y->priority, 7);
    teardown();
}
END_TEST

START_TEST(originate_creates_active_outbound_bericht)
{
    setup_model("{\"queues\":[{\"name\":\"q\",\"wrapup_s\":10}],"
                "\"agents\":[{\"id\":\"a\",\"queues\":[\"q\"],\"capacity\":{\"sms\":1,\"voice\":1}}]}");
    acdm_agent *a = acdm_model_agent(M, "a");
    acdm_new_bericht nb = {.id = "00000000-0000-7000-8000-0000000000a1", .queue = "q", .kind = ACDM_KIND_SMS,
                           .channel = "sms1", .from = "+31611111111"};
    acdm_bericht *x = NULL;
    ck_assert_int_eq(acdm_model_originate(M, &nb, a, T0, &x), ACDM_ESTATE);   /* logged out */
    acdm_agent_login(M, a, T0);                                               /* not ready is fine */
    ck_assert_int_eq(acdm_model_originate(M, &nb, a, T0 + 1, &x), 0);
    ck_assert(x->outbound);
    ck_assert_int_eq(x->state, ACDM_B_ACTIVE);
    ck_assert_ptr_eq(x->agent, a);
    ck_assert_int_eq(a->load[ACDM_KIND_SMS], 1);
    ck_assert_int_ge(last_ev(ACDM_ME_ORIGINATED, x), 0);
    ck_assert_int_eq(last_ev(ACDM_ME_QUEUED, x), -1);                         /* never waited */
    nb.id = "00000000-0000-7000-8000-0000000000a2";
    acdm_bericht *y = NULL;
    ck_assert_int_eq(acdm_model_originate(M, &nb, a, T0 + 2, &y), ACDM_EFULL); /* sms capacity 1 */
    /* an inbound sms waits: a has no room for it */
    acdm_agent_ready(M, a, T0 + 3);
    acdm_bericht *in = submit_k("q", ACDM_KIND_SMS, 0, T0 + 4);
    ck_assert_str_eq(offered_to(in), "");
    /* completed: wrap-up, then done as outbound (the reports count it apart) */
    ck_assert_int_eq(acdm_agent_complete(M, a, x, T0 + 5), 0);
    acdm_bericht xid = {.id = "00000000-0000-7000-8000-0000000000a1"};   /* x is freed when done */
    acdm_model_tick(M, T0 + 5 + 10000);
    int r = last_ev(ACDM_ME_DONE, &xid);
    ck_assert_int_ge(r, 0);
    ck_assert_str_eq(evs[r].reason, "outbound");
    ck_assert_str_eq(offered_to(in), "a");
    /* a failed contact ends at once, without wrap-up */
    handle(a, in, T0 + 20000);
    acdm_model_tick(M, T0 + 40000);
    nb.id = "00000000-0000-7000-8000-0000000000a3";
    ck_assert_int_eq(acdm_model_originate(M, &nb, a, T0 + 40001, &y), 0);
    ck_assert_int_eq(acdm_model_fail(M, y, T0 + 40002), 0);
    ck_assert_int_eq(a->load[ACDM_KIND_SMS], 0);
    ck_assert_ptr_null(acdm_model_bericht(M, "00000000-0000-7000-8000-0000000000a3"));
    /* a logout ends an outbound contact instead of queueing it */
    nb.id = "00000000-0000-7000-8000-0000000000a4";
    ck_assert_int_eq(acdm_model_originate(M, &nb, a, T0 + 50000, &y), 0);
    acdm_agent_logout(M, a, NULL, T0 + 50001);
    ck_assert_ptr_null(acdm_model_bericht(M, "00000000-0000-7000-8000-0000000000a4"));
    teardown();
}
END_TEST

Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *t = tcase_create("routing");
    tcase_set_timeout(t, 10);
    tcase_add_test(t, linear_fixed_order);
    tcase_add_test(t, round_robin_cycles_with_memory);
    tcase_add_test(t, longest_idle_counts_all_queues);
    tcase_add_test(t, least_occupied_prefers_free_capacity);
    tcase_add_test(t, fewest_handled_wins);
    tcase_add_test(t, random_spreads_work);
    tcase_add_test(t, ring_all_first_accept_wins);
    tcase_add_test(t, chat_capacity_and_voice_blocks);
    tcase_add_test(t, ring_no_answer_goes_to_next_and_agent_stays);
    tcase_add_test(t, reject_offers_next_then_retries);
    tcase_add_test(t, wrapup_blocks_then_end_early_or_extend);
    tcase_add_test(t, cross_queue_fairness);
    tcase_add_test(t, overflow_after_max_wait);
    tcase_add_test(t, skills_filter_and_relax);
    tcase_add_test(t, closed_queue_gives_closed_text);
    tcase_add_test(t, schedule_opens_and_closes_queue);
    tcase_add_test(t, queue_status_says_why_and_until_when);
    tcase_add_test(t, wait_if_closed_parks_until_the_queue_opens);
    tcase_add_test(t, a_restored_bericht_is_kept_for_its_agent_until_the_grace_ends);
    tcase_add_test(t, pick_transfer_and_abandon);
    tcase_add_test(t, reassign_offered_and_waiting_keeps_invariants);
    tcase_add_test(t, logout_returns_work_and_conversation_lookup);
    tcase_add_test(t, join_leave_membership);
    tcase_add_test(t, reload_moves_berichten_of_removed_queue);
    tcase_add_test(t, reload_refused_without_fallback_changes_nothing);
    tcase_add_test(t, reload_closes_queue_and_removes_agent);
    tcase_add_test(t, restore_keeps_queue_time);
    tcase_add_test(t, bad_input_is_refused);
    tcase_add_test(t, hold_resume_rules_and_events);
    tcase_add_test(t, hold_then_hangup_goes_to_wrapup);
    tcase_add_test(t, hold_then_transfer_resumes_first);
    tcase_add_test(t, device_offer_answered_accepts);
    tcase_add_test(t, device_offer_declined_goes_to_next);
    tcase_add_test(t, device_offer_busy_and_no_answer_are_misses);
    tcase_add_test(t, device_offer_core_answers_when_channel_is_silent);
    tcase_add_test(t, device_offer_desk_accept_stands);
    tcase_add_test(t, unreachable_agent_is_skipped);
    tcase_add_test(t, reload_changes_phone_reachability);
    tcase_add_test(t, update_moves_queue_keeping_queue_time);
    tcase_add_test(t, originate_creates_active_outbound_bericht);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(model_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
