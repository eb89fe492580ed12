/* test_stats.c -- live figures: today's counters from model events (offered, answered within
 * the service level, abandoned, quick drops, wait and handle time), the JSON the supervisors
 * get, the reset at local midnight and the rebuild from the event log after a restart. */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/model.h"
#include "reports/stats.h"
#include "store/store.h"

static const int64_t T0 = 1767261600000LL; /* 2026-01-01 10:00 UTC */
static acdm_model *M;
static acdm_stats *S;
static acdm_store *ST;   /* when set, events are also written as the engine writes them */
static int idc;

static void emit(void *ctx, const acdm_mevent *ev)
{
    (void)ctx;
    acdm_stats_event(S, ev);
    if (!ST || !ev->b) return;
    json_t *d = json_object();
    if (ev->reason) json_object_set_new(d, "reason", json_string(ev->reason));
    if (ev->type == ACDM_ME_ACCEPTED || ev->type == ACDM_ME_ABANDONED)
        json_object_set_new(d, "wait_ms", json_integer(ev->value));
    if (ev->type == ACDM_ME_ABANDONED) json_object_set_new(d, "quick_drop", json_boolean(ev->quick_drop));
    char *dj = json_dumps(d, JSON_COMPACT);
    acdm_event_row row = {.ts_ms = ev->ts, .type = acdm_mevent_name(ev->type), .bericht = ev->b->id,
                          .queue = ev->q ? ev->q->name : ev->b->queue->name, .channel = ev->b->channel,
                          .kind = acdm_kind_name(ev->b->kind), .detail_json = dj};
    acdm_store_append_event(ST, &row);
    free(dj);
    json_decref(d);
}

static const char *CFG =
    "{\"queues\":[{\"name\":\"q1\",\"title\":\"Vragen\",\"sl_seconds\":10,\"sl_target_pct\":90,"
    "\"quick_drop_s\":5,\"wrapup_s\":0,\"offer_timeout_s\":0},{\"name\":\"q2\"}],"
    "\"agents\":[{\"id\":\"a1\",\"name\":\"Anna\",\"queues\":[\"q1\"]}],"
    "\"channels\":[{\"name\":\"web1\",\"plugin\":\"webchat\",\"queue\":\"q1\"}]}";

static acdm_config *cfg_of(const char *json)
{
    acdm_config *c = NULL;
    char err[4096];
    ck_assert_msg(acdm_config_parse("t.json", json, &c, err, sizeof err) == 0, "%s", err);
    return c;
}

static void setup(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    S = acdm_stats_create();
    ck_assert_ptr_nonnull(S);
    acdm_model_hooks h = {emit, NULL};
    ck_assert_int_eq(acdm_model_create(cfg_of(CFG), &h, T0, &M), 0);
}

static void teardown(void)
{
    acdm_model_destroy(M);
    acdm_stats_destroy(S);
    M = NULL;
    S = NULL;
}

static acdm_bericht *submit(const char *channel, int64_t now)
{
    char id[37];
    snprintf(id, sizeof id, "00000000-0000-7000-8000-%012d", ++idc);
    acdm_new_bericht nb = {.id = id, .queue = "q1", .kind = ACDM_KIND_CHAT, .from = "jan@example.nl",
                           .channel = channel};
    acdm_bericht *b = NULL;
    ck_assert_int_eq(acdm_model_submit(M, &nb, now, &b, NULL), 0);
    return b;
}

/* The day of the scenario: 4 offered; answered in 4 s (in SL) and in 25 s (not); one quick drop
 * (2 s), one abandoned after 30 s. */
static void scenario(void)
{
    acdm_agent *a = acdm_model_agent(M, "a1");
    ck_assert_int_eq(acdm_agent_login(M, a, T0), 0);
    acdm_bericht *b1 = submit("web1", T0);
    ck_assert_int_eq(acdm_agent_ready(M, a, T0 + 3000), 0);          /* offered at once */
    ck_assert_int_eq(b1->state, ACDM_B_OFFERED);
    ck_assert_int_eq(acdm_agent_accept(M, a, b1, T0 + 4000), 0);     /* wait 4 s */
    ck_assert_int_eq(acdm_agent_not_ready(M, a, NULL, T0 + 5000), 0);
    ck_assert_int_eq(acdm_agent_complete(M, a, b1, T0 + 64000), 0);  /* handled 60 s, no wrap-up */

    acdm_bericht *b2 = submit("web1", T0 + 100000);
    ck_assert_int_eq(acdm_model_end(M, b2, "hangup", T0 + 102000), 0);  /* quick drop */
    acdm_bericht *b3 = submit("api", T0 + 200000);
    ck_assert_int_eq(acdm_model_end(M, b3, "hangup", T0 + 230000), 0);  /* abandoned */
    acdm_bericht *b4 = submit("web1", T0 + 300000);
    ck_assert_int_eq(acdm_agent_ready(M, a, T0 + 325000), 0);
    ck_assert_int_eq(acdm_agent_accept(M, a, b4, T0 + 325000), 0);    /* wait 25 s: not in SL */
}

static void check_day(acdm_stats *s, int64_t now)
{
    acdm_stats_counts c = acdm_stats_queue(s, "q1", now);
    ck_assert_int_eq(c.offered, 4);
    ck_assert_int_eq(c.answered, 2);
    ck_assert_int_eq(c.answered_in_sl, 1);
    ck_assert_int_eq(c.abandoned, 1);
    ck_assert_int_eq(c.quick_drops, 1);
    ck_assert_int_eq(c.wait_sum_ms, 29000);
    ck_assert_int_eq(c.handled, 1);
    ck_assert_int_eq(c.handle_sum_ms, 60000);
    acdm_stats_counts w = acdm_stats_channel(s, "web1", now);
    ck_assert_int_eq(w.offered, 3);
    ck_assert_int_eq(w.answered, 2);
    ck_assert_int_eq(w.abandoned, 0);   /* its drop was a quick one */
    acdm_stats_counts api = acdm_stats_channel(s, "api", now);
    ck_assert_int_eq(api.offered, 1);
    ck_assert_int_eq(api.abandoned, 1);
}

START_TEST(counters_and_service_level)
{
    scenario();
    check_day(S, T0 + 400000);
    json_t *j = acdm_stats_json(S, M, "stats", T0 + 400000);
    json_t *q = json_array_get(json_object_get(j, "queues"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(q, "name")), "q1");
    ck_assert_str_eq(json_string_value(json_object_get(q, "title")), "Vragen");
    json_t *today = json_object_get(q, "today");
    /* 1 in SL / (2 answered + 1 abandoned): the quick drop does not count */
    ck_assert_double_eq_tol(json_real_value(json_object_get(today, "service_level_pct")), 33.3, 0.001);
    ck_assert_int_eq(json_integer_value(json_object_get(today, "avg_wait_ms")), 14500);
    ck_assert_int_eq(json_integer_value(json_object_get(today, "avg_handle_ms")), 60000);
    ck_assert_int_eq(json_integer_value(json_object_get(today, "quick_drops")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "sl_target_pct")), 90);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "sl_seconds")), 10);
    json_t *ag = json_object_get(q, "agents");
    ck_assert_int_eq(json_integer_value(json_object_get(ag, "logged_in")), 1);
    /* one state per agent (acdm_agent_shown): ready but in a conversation is busy, not available */
    ck_assert_int_eq(json_integer_value(json_object_get(ag, "ready")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(ag, "busy")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(ag, "not_ready")), 0);
    /* q2 had nothing: no service level yet */
    json_t *q2 = json_array_get(json_object_get(j, "queues"), 1);
    ck_assert(json_is_null(json_object_get(json_object_get(q2, "today"), "service_level_pct")));
    /* channels: the configured one, api; b4 is active on web1 */
    json_t *chs = json_object_get(j, "channels");
    ck_assert_int_eq(json_array_size(chs), 2);
    json_t *web = json_array_get(chs, 0);
    ck_assert_str_eq(json_string_value(json_object_get(web, "channel")), "web1");
    ck_assert_int_eq(json_integer_value(json_object_get(web, "active")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(web, "today"), "offered")), 3);
    /* agents: Anna ready, busy with b4 */
    json_t *a = json_array_get(json_object_get(j, "agents"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(a, "state")), "ready");
    ck_assert(json_is_true(json_object_get(a, "busy")));
    json_t *w0 = json_array_get(json_object_get(a, "work"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(w0, "state")), "active");
    ck_assert_str_eq(json_string_value(json_object_get(w0, "queue")), "q1");
    json_decref(j);
}
END_TEST

START_TEST(waiting_and_longest_wait)
{
    submit("web1", T0);
    submit("api", T0 + 5000);
    json_t *q = acdm_stats_queue_json(S, acdm_model_queue(M, "q1"), T0 + 8000);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "waiting")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(q, "waiting_by_kind"), "chat")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "longest_wait_ms")), 8000);
    json_decref(q);
    json_t *j = acdm_stats_json(S, M, "snapshot", T0 + 8000);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "snapshot");
    json_t *chs = json_object_get(j, "channels");
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(chs, 0), "waiting")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(chs, 1), "waiting")), 1);
    json_decref(j);
}
END_TEST

START_TEST(reset_at_local_midnight)
{
    scenario();
    int64_t before = T0 + 14 * 3600000LL - 1;    /* 23:59:59.999 UTC */
    ck_assert_int_eq(acdm_stats_queue(S, "q1", before).offered, 4);
    acdm_stats_counts c = acdm_stats_queue(S, "q1", before + 1);   /* midnight */
    ck_assert_int_eq(c.offered, 0);
    ck_assert_int_eq(c.answered, 0);
    ck_assert_int_eq(acdm_stats_channel(S, "web1", before + 1).offered, 0);
    /* in Amsterdam the day ended an hour earlier (23:00 UTC) */
    teardown();
    setenv("TZ", "Europe/Amsterdam", 1);
    tzset();
    S = acdm_stats_create();
    acdm_model_hooks h = {emit, NULL};
    ck_assert_int_eq(acdm_model_create(cfg_of(CFG), &h, T0, &M), 0);
    submit("web1", T0);
    ck_assert_int_eq(acdm_stats_queue(S, "q1", T0 + 13 * 3600000LL - 1).offered, 1);
    ck_assert_int_eq(acdm_stats_queue(S, "q1", T0 + 13 * 3600000LL).offered, 0);
}
END_TEST

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void no_wake(void *arg) { (void)arg; }

START_TEST(rebuilt_from_event_log)
{
    char dir[] = "/tmp/acdm-stats-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char err[512];
    ck_assert_int_eq(acdm_store_open(dir, 1, no_wake, NULL, &ST, err, sizeof err), 0);
    scenario();
    acdm_store_close(ST);   /* commits everything */
    ck_assert_int_eq(acdm_store_open(dir, 1, no_wake, NULL, &ST, err, sizeof err), 0);
    acdm_stats *s2 = acdm_stats_create();
    int n = acdm_stats_replay(s2, ST, acdm_model_config(M), T0 + 400000);
    ck_assert_int_eq(n, 9);   /* the scenario's queued, accepted, abandoned and done events */
    check_day(s2, T0 + 400000);
    acdm_stats_destroy(s2);
    /* the next day starts empty */
    s2 = acdm_stats_create();
    ck_assert_int_eq(acdm_stats_replay(s2, ST, acdm_model_config(M), T0 + 86400000LL), 0);
    ck_assert_int_eq(acdm_stats_queue(s2, "q1", T0 + 86400000LL).offered, 0);
    acdm_stats_destroy(s2);

    /* acdmd serves while the day is read on a worker: a live event after the start and the
     * rebuilt day add up; a stopped rebuild adds nothing */
    acdm_stats_rebuild *r = acdm_stats_rebuild_new(acdm_model_config(M), acdm_store_db_path(ST), T0 + 400000);
    ck_assert_ptr_nonnull(r);
    acdm_store *keep = ST;
    acdm_stats *live = acdm_stats_create(), *saved = S;
    ST = NULL;
    S = live;
    submit("web1", T0 + 400500);                       /* counted live */
    S = saved;
    ST = keep;
    ck_assert_int_eq(acdm_stats_queue(live, "q1", T0 + 401000).offered, 1);
    ck_assert_int_eq(acdm_stats_rebuild_run(r), 9);
    acdm_stats_rebuild_merge(r, live, T0 + 401000);
    acdm_stats_counts c = acdm_stats_queue(live, "q1", T0 + 401000);
    ck_assert_int_eq(c.offered, 5);
    ck_assert_int_eq(c.answered, 2);
    ck_assert_int_eq(c.handle_sum_ms, 60000);
    ck_assert_int_eq(acdm_stats_channel(live, "web1", T0 + 401000).offered, 4);
    acdm_stats_rebuild_free(r);
    r = acdm_stats_rebuild_new(acdm_model_config(M), acdm_store_db_path(ST), T0 + 400000);
    acdm_stats_rebuild_stop(r);
    ck_assert_int_lt(acdm_stats_rebuild_run(r), 0);
    acdm_stats_rebuild_merge(r, live, T0 + 401000);
    ck_assert_int_eq(acdm_stats_queue(live, "q1", T0 + 401000).offered, 5);
    acdm_stats_rebuild_free(r);
    /* merged after midnight: yesterday's figures stay out of the new day */
    r = acdm_stats_rebuild_new(acdm_model_config(M), acdm_store_db_path(ST), T0 + 400000);
    ck_assert_int_eq(acdm_stats_rebuild_run(r), 9);
    acdm_stats *next = acdm_stats_create();
    acdm_stats_rebuild_merge(r, next, T0 + 86400000LL);
    ck_assert_int_eq(acdm_stats_queue(next, "q1", T0 + 86400000LL).offered, 0);
    acdm_stats_destroy(next);
    acdm_stats_rebuild_free(r);
    acdm_stats_destroy(live);

    acdm_store_close(ST);
    ST = NULL;
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stats");
    TCase *t = tcase_create("today");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 20);
    tcase_add_test(t, counters_and_service_level);
    tcase_add_test(t, waiting_and_longest_wait);
    tcase_add_test(t, reset_at_local_midnight);
    tcase_add_test(t, rebuilt_from_event_log);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
