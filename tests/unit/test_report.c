/* test_report.c -- supervisor reports: a known event sequence across 15-minute boundaries (a
 * quick drop, an abandon, a transfer, not-ready with reasons, topics) gives exact figures per
 * interval and in the totals; periods and intervals in local time (Europe/Amsterdam, DST);
 * parameter errors name the parameter; CSV, JSON and xlsx output. */
static const char *CFG_JSON =
    "{\"queues\":[{\"name\":\"q1\",\"title\":\"Vragen, algemeen\",\"sl_seconds\":10},{\"name\":\"q2\",\"sl_seconds\":20}],"
    "\"agents\":[{\"id\":\"a1\",\"name\":\"Anna\",\"queues\":[\"q1\"]},{\"id\":\"a2\",\"queues\":[\"q2\"]}],"
    "\"reason_codes\":[{\"code\":\"pauze\",\"label\":\"Pauze\"},{\"code\":\"overleg\",\"label\":\"Overleg\"}],"
    "\"channels\":[{\"name\":\"web1\",\"plugin\":\"webchat\",\"queue\":\"q1\"}]}";

#include "report_fixture.h"   /* setup/teardown, at(), event_at(), make(), run_report_tests() */

/* A bericht's events come in through web1. */
static void ev(acdm_report *r, const char *hms, const char *type, const char *b, const char *q,
               const char *agent, const char *detail)
{
    event_at(r, hms, type, b, q, agent, b ? "web1" : NULL, detail);
}

/* The sequence of the tests below, as engine.c writes it. */
static void feed(acdm_report *r)
{
    ev(r, "07:50:00", "agent_state", NULL, NULL, "a1", "{\"reason\":\"login\",\"state\":\"not_ready\"}");
    ev(r, "08:05:00", "agent_state", NULL, NULL, "a1", "{\"state\":\"ready\"}");
    /* b1: answered within the service level, wrap-up, done in the first quarter */
    ev(r, "08:10:00", "queued", "b1", "q1", NULL, "{\"reason\":\"new\"}");
    ev(r, "08:10:00", "offered", "b1", "q1", "a1", "{\"wait_ms\":0}");
    ev(r, "08:10:08", "accepted", "b1", "q1", "a1", "{\"wait_ms\":8000}");
    ev(r, "08:13:00", "wrapup_start", "b1", "q1", "a1", "{\"seconds\":60}");
    ev(r, "08:14:00", "done", "b1", "q1", "a1", NULL);
    ev(r, "08:14:00", "topics", "b1", "q1", "a1", "{\"topics\":[\"factuur\",\"adres\"]}");
    /* b2: offered before 08:15, answered after; transferred by a1 to q2, answered there */
    ev(r, "08:14:50", "queued", "b2", "q1", NULL, "{\"reason\":\"new\"}");
    ev(r, "08:15:20", "accepted", "b2", "q1", "a1", "{\"wait_ms\":30000}");
    ev(r, "08:16:00", "transferred", "b2", "q2", "a1", "{\"reason\":\"q1\"}");
    ev(r, "08:16:00", "queued", "b2", "q2", NULL, "{\"reason\":\"transfer\"}");
    ev(r, "08:17:00", "accepted", "b2", "q2", "a2", "{\"wait_ms\":130000}");
    ev(r, "08:20:00", "done", "b2", "q2", "a2", NULL);
    ev(r, "08:20:00", "agent_state", NULL, NULL, "a1", "{\"reason\":\"pauze\",\"state\":\"not_ready\"}");
    /* b3 a quick drop, b4 abandoned, b5 put back after a restart (not a new offer) */
    ev(r, "08:31:00", "queued", "b3", "q1", NULL, "{\"reason\":\"new\"}");
    ev(r, "08:31:03", "abandoned", "b3", "q1", NULL, "{\"wait_ms\":3000,\"quick_drop\":true}");
    ev(r, "08:32:00", "queued", "b4", "q1", NULL, "{\"reason\":\"new\"}");
    ev(r, "08:33:00", "abandoned", "b4", "q1", NULL, "{\"wait_ms\":60000,\"quick_drop\":false}");
    ev(r, "08:33:30", "queued", "b5", "q1", NULL, "{\"reason\":\"restart\"}");
    ev(r, "08:40:00", "agent_state", NULL, NULL, "a1", "{\"state\":\"ready\"}");
    /* b6 an outbound contact of a1 (wrap-up, done as outbound), b7 one whose contact failed:
     * counted as outbound, never as offered, answered or handled */
    ev(r, "08:41:00", "originated", "b6", "q1", "a1", NULL);
    ev(r, "08:44:00", "wrapup_start", "b6", "q1", "a1", "{\"seconds\":60}");
    ev(r, "08:45:00", "done", "b6", "q1", "a1", "{\"reason\":\"outbound\"}");
    ev(r, "08:46:00", "originated", "b7", "q1", "a1", NULL);
    ev(r, "08:46:30", "done", "b7", "q1", "a1", "{\"reason\":\"outbound-failed\"}");
    ev(r, "09:10:00", "accepted", "b5", "q1", "a1", "{\"wait_ms\":9999}");   /* after until */
}

static void expect(acdm_report *r, bool totals, size_t row, const char *col, const char *want)
{
    char got[128];
    acdm_report_cell(r, totals, row, col, got, sizeof got);
    ck_assert_msg(!strcmp(got, want), "%s row %zu %s: got \"%s\", want \"%s\"", totals ? "totals" : "rows",
                  row, col, got, want);
}

START_TEST(queues_per_quarter)
{
    acdm_report *r = make("queues");
    /* every quarter for both configured queues, interval first */
    ck_assert_uint_eq(acdm_report_n_rows(r, false), 8);
    expect(r, false, 0, "interval_start", "2026-11-20T08:00:00+01:00");
    expect(r, false, 0, "interval_end", "2026-11-20T08:15:00+01:00");
    expect(r, false, 0, "queue", "q1");
    expect(r, false, 0, "title", "Vragen, algemeen");   /* the config's title; the name without one */
    expect(r, false, 1, "title", "q2");
    expect(r, false, 0, "offered", "2");
    expect(r, false, 0, "answered", "1");
    expect(r, false, 0, "answered_in_sl", "1");
    expect(r, false, 0, "service_level_pct", "100.0");
    expect(r, false, 0, "asa_s", "8.0");
    expect(r, false, 0, "longest_wait_s", "8.0");
    expect(r, false, 0, "handled", "1");
    expect(r, false, 0, "aht_s", "232.0");
    expect(r, false, 0, "handle_time_s", "232.0");
    expect(r, false, 0, "outbound", "0");
    expect(r, false, 6, "queue", "q1");
    expect(r, false, 6, "interval_start", "2026-11-20T08:45:00+01:00");
    expect(r, false, 6, "outbound", "1");
    expect(r, false, 6, "outbound_failed", "1");
    expect(r, false, 6, "handled", "0");
    expect(r, false, 6, "offered", "0");
    expect(r, false, 1, "queue", "q2");
    expect(r, false, 1, "offered", "0");
    expect(r, false, 1, "service_level_pct", "");       /* nothing to measure: null */
    /* 08:15 q1: b2 answered after 30 s (outside 10 s), transferred away */
    expect(r, false, 2, "queue", "q1");
    expect(r, false, 2, "offered", "0");
    expect(r, false, 2, "answered", "1");
    expect(r, false, 2, "answered_in_sl", "0");
    expect(r, false, 2, "service_level_pct", "0.0");
    expect(r, false, 2, "transfers", "1");
    expect(r, false, 2, "asa_s", "30.0");
    expect(r, false, 2, "handled", "0");
    expect(r, false, 2, "aht_s", "");
    /* 08:15 q2: the transfer is an offer there; the wait runs from the original queue time */
    expect(r, false, 3, "offered", "1");
    expect(r, false, 3, "answered", "1");
    expect(r, false, 3, "asa_s", "130.0");
    expect(r, false, 3, "handled", "1");
    expect(r, false, 3, "aht_s", "180.0");
    expect(r, false, 3, "transfers", "0");
    /* 08:30 q1: a quick drop apart, not in the service level; a put-back is no offer */
    expect(r, false, 4, "offered", "2");
    expect(r, false, 4, "abandoned", "1");
    expect(r, false, 4, "quick_drops", "1");
    expect(r, false, 4, "service_level_pct", "0.0");
    expect(r, false, 4, "longest_wait_s", "60.0");
    expect(r, false, 4, "asa_s", "");
    expect(r, false, 6, "interval_start", "2026-11-20T08:45:00+01:00");
    expect(r, false, 6, "offered", "0");                /* b5's acceptance is after until */
    expect(r, false, 6, "answered", "0");
    /* totals: q1 and q2 */
    ck_assert_uint_eq(acdm_report_n_rows(r, true), 2);
    expect(r, true, 0, "interval_start", "2026-11-20T08:00:00+01:00");
    expect(r, true, 0, "interval_end", "2026-11-20T09:00:00+01:00");
    expect(r, true, 0, "offered", "4");
    expect(r, true, 0, "answered", "2");
    expect(r, true, 0, "abandoned", "1");
    expect(r, true, 0, "quick_drops", "1");
    expect(r, true, 0, "transfers", "1");
    expect(r, true, 0, "service_level_pct", "33.3");    /* 1 in time of 2 answered + 1 abandoned */
    expect(r, true, 0, "asa_s", "19.0");
    expect(r, true, 0, "longest_wait_s", "60.0");
    expect(r, true, 1, "offered", "1");
    acdm_report_free(r);
}
END_TEST

/* Staffing per quarter (Erlang C): 20 berichten in 09:00-09:15 handled in 180 s each are 4
 * Erlangs; q1's norm 80 % within 10 s needs 7 agents (an independent Erlang C: 1 - C(7, 4)
 * e^(-3 * 10 / 180) = 0.886, with 6 agents 0.745); a1 logged in and joined for 10 of the 15
 * minutes is 0.7 agents logged in. */
START_TEST(staffing_per_quarter)
{
    acdm_report_range rg;
    char err[256];
    ck_assert_msg(acdm_report_params("queues", "2026-11-20T09:00", "2026-11-20T09:30", NULL, "15m",
                                     at("12:00:00"), &rg, err, sizeof err) == 0, "%s", err);
    acdm_report *r = acdm_report_new(&rg, CFG);
    ev(r, "08:50:00", "agent_state", NULL, NULL, "a1", "{\"state\":\"ready\"}");
    char id[32], t0[32], t1[32], t2[32];
    for (unsigned i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "s%u", i);
        snprintf(t0, sizeof t0, "09:%02u:%02u", i / 2, i % 2 * 30);
        snprintf(t1, sizeof t1, "09:%02u:%02u", i / 2, i % 2 * 30 + 5);
        snprintf(t2, sizeof t2, "09:%02u:%02u", i / 2 + 3, i % 2 * 30 + 5);
        ev(r, t0, "queued", id, "q1", NULL, "{\"reason\":\"new\",\"flow\":\"offered\",\"channel_flow\":\"offered\"}");
        ev(r, t1, "accepted", id, "q1", "a1", "{\"flow\":\"answered\",\"channel_flow\":\"answered\",\"wait_ms\":5000}");
        ev(r, t2, "done", id, "q1", "a1", "{\"flow\":\"none\",\"channel_flow\":\"none\"}");
    }
    acdm_event_row leave = {.ts_ms = at("09:10:00"), .type = "agent_leave", .queue = "q1", .agent = "a1"};
    acdm_report_add(r, &leave);
    acdm_report_end(r, at("12:00:00"));
    expect(r, false, 0, "queue", "q1");
    expect(r, false, 0, "offered", "20");
    expect(r, false, 0, "aht_s", "180.0");
    expect(r, false, 0, "agents_needed", "7");
    expect(r, false, 0, "agents_logged_in", "0.7");
    expect(r, false, 2, "queue", "q1");            /* 09:15: nothing offered, a1 not joined */
    expect(r, false, 2, "agents_needed", "0");
    expect(r, false, 2, "agents_logged_in", "0.0");
    expect(r, true, 0, "agents_needed", "");       /* not over a whole period */
    acdm_report_free(r);
}
END_TEST

START_TEST(channels)
{
    acdm_report *r = make("channels");
    /* web1 (configured), "api" (always listed): 4 intervals each */
    ck_assert_uint_eq(acdm_report_n_rows(r, false), 8);
    ck_assert_uint_eq(acdm_report_n_rows(r, true), 2);
    expect(r, true, 0, "channel", "api");
    expect(r, true, 0, "offered", "0");
    expect(r, true, 1, "channel", "web1");
    expect(r, true, 1, "offered", "4");                 /* new berichten only, not the transfer */
    expect(r, true, 1, "answered", "3");                /* b2 was answered twice (live figures do the same) */
    expect(r, true, 1, "abandoned", "1");
    expect(r, true, 1, "quick_drops", "1");
    expect(r, true, 1, "transfers", "1");
    acdm_report_free(r);
}
END_TEST

START_TEST(agents_and_not_ready_reasons)
{
    acdm_report *r = make("agents");
    /* the configured reasons first, then the ones seen */
    size_t n = acdm_report_n_columns(r) - 3;      /* the CSAT columns come last (test_report_csat.c) */
    ck_assert_str_eq(acdm_report_column(r, n - 3), "not_ready_pauze_s");
    ck_assert_str_eq(acdm_report_column(r, n - 2), "not_ready_overleg_s");
    ck_assert_str_eq(acdm_report_column(r, n - 1), "not_ready_login_s");
    /* a1 in all four quarters (state time), a2 in the second (b2) */
    ck_assert_uint_eq(acdm_report_n_rows(r, false), 5);
    expect(r, false, 0, "agent", "a1");
    expect(r, false, 0, "name", "Anna");
    expect(r, false, 0, "offered", "1");
    expect(r, false, 0, "accepted", "1");
    expect(r, false, 0, "handled", "1");
    expect(r, false, 0, "handle_time_s", "232.0");
    expect(r, false, 0, "talk_time_s", "172.0");
    expect(r, false, 0, "wrapup_time_s", "60.0");
    expect(r, false, 0, "not_ready_login_s", "300.0");  /* from before `from` (warm-up) to 08:05 */
    expect(r, false, 0, "ready_s", "600.0");
    expect(r, false, 0, "logged_in_s", "900.0");
    expect(r, false, 1, "agent", "a1");
    expect(r, false, 1, "interval_start", "2026-11-20T08:15:00+01:00");
    expect(r, false, 1, "accepted", "1");
    expect(r, false, 1, "transfers", "1");
    expect(r, false, 1, "handled", "0");
    expect(r, false, 1, "ready_s", "300.0");
    expect(r, false, 1, "not_ready_pauze_s", "600.0");
    expect(r, false, 2, "agent", "a2");
    expect(r, false, 2, "accepted", "1");
    expect(r, false, 2, "handled", "1");
    expect(r, false, 2, "aht_s", "180.0");
    expect(r, false, 2, "logged_in_s", "0.0");          /* a2 never logged in in this log */
    expect(r, false, 3, "not_ready_pauze_s", "600.0");
    expect(r, false, 3, "ready_s", "300.0");
    expect(r, false, 4, "ready_s", "900.0");            /* still ready at the end: up to until */
    expect(r, true, 0, "agent", "a1");
    expect(r, true, 0, "not_ready_s", "1500.0");
    expect(r, true, 0, "not_ready_pauze_s", "1200.0");
    expect(r, true, 0, "not_ready_overleg_s", "0.0");
    expect(r, true, 0, "ready_s", "2100.0");
    acdm_report_free(r);
}
END_TEST

START_TEST(topics)
{
    acdm_report *r = make("topics");
    ck_assert_uint_eq(acdm_report_n_rows(r, false), 2);
    expect(r, false, 0, "topic", "adres");
    expect(r, false, 0, "count", "1");
    expect(r, false, 1, "topic", "factuur");
    expect(r, true, 1, "count", "1");
    acdm_report_free(r);
}
END_TEST

START_TEST(long_topic_whole_in_csv)
{
    acdm_report_range rg;
    char err[256];
    ck_assert_int_eq(acdm_report_params("topics", "2026-11-20", NULL, "day", "1d", at("12:00:00"), &rg, err, sizeof err), 0);
    acdm_report *r = acdm_report_new(&rg, CFG);
    static const char topic[] = "Vergunning, aanvraag en verlenging van een standplaats op de \"weekmarkt\" (ambulante handel)";
    json_t *d = json_pack("{s:[s]}", "topics", topic);
    char *dj = json_dumps(d, JSON_COMPACT);
    ev(r, "10:00:00", "topics", "b9", "q1", "a1", dj);
    free(dj);
    json_decref(d);
    acdm_report_end(r, at("12:00:00"));
    acdm_sbuf b = {0};
    ck_assert_int_eq(acdm_report_write(r, ACDM_REPORT_CSV, &b, NULL, err, sizeof err), 0);
    ck_assert_msg(strstr(b.p, ",\"Vergunning, aanvraag en verlenging van een standplaats op de \"\"weekmarkt\"\" (ambulante handel)\",1\r\n"),
                  "%s", b.p);
    acdm_sb_free(&b);
    ck_assert_int_eq(acdm_report_write(r, ACDM_REPORT_JSON, &b, NULL, err, sizeof err), 0);
    json_t *j = json_loads(b.p, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(j, "totals"), 0), "topic")), topic);
    json_decref(j);
    acdm_sb_free(&b);
    acdm_report_free(r);
}
END_TEST

START_TEST(periods_in_local_time)
{
    /* a download is named by the local date: local midnight is 23:00 UTC the day before */
    char day[16];
    acdm_report_local_date(at("00:00:00"), day);
    ck_assert_str_eq(day, "2026-11-20");
    acdm_report_local_date(at("23:59:59"), day);
    ck_assert_str_eq(day, "2026-11-20");
    acdm_report_range rg;
    char err[256], a[48];
    int64_t now = at("12:00:00");
    /* a day: local midnight to midnight, hourly by default */
    ck_assert_int_eq(acdm_report_params(NULL, "2026-11-20T15:00", NULL, "day", NULL, now, &rg, err, sizeof err), 0);
    ck_assert_int_eq(rg.kind, ACDM_REPORT_QUEUES);
    ck_assert_int_eq(rg.interval_s, 3600);
    acdm_time_iso(rg.from_ms, a);
    ck_assert_str_eq(a, "2026-11-19T23:00:00.000Z");
    ck_assert_int_eq(rg.until_ms - rg.from_ms, 86400000);
    /* the week holding Friday 20 November starts on Monday 16 November; daily by default */
    ck_assert_int_eq(acdm_report_params("agents", "2026-11-20", NULL, "week", NULL, now, &rg, err, sizeof err), 0);
    acdm_time_iso(rg.from_ms, a);
    ck_assert_str_eq(a, "2026-11-15T23:00:00.000Z");
    ck_assert_int_eq(rg.interval_s, 86400);
    /* a quarter: October 1 (CEST) to January 1 (CET) */
    ck_assert_int_eq(acdm_report_params(NULL, "2026-11-20", NULL, "quarter", "1d", now, &rg, err, sizeof err), 0);
    acdm_time_iso(rg.from_ms, a);
    ck_assert_str_eq(a, "2026-09-30T22:00:00.000Z");
    acdm_time_iso(rg.until_ms, a);
    ck_assert_str_eq(a, "2026-12-31T23:00:00.000Z");
    /* the day the clocks go back has 25 hours: 25 hourly rows per queue */
    ck_assert_int_eq(acdm_report_params(NULL, "2026-10-25", NULL, "day", "1h", now, &rg, err, sizeof err), 0);
    acdm_report *r = acdm_report_new(&rg, CFG);
    acdm_report_end(r, now);
    ck_assert_uint_eq(acdm_report_n_rows(r, false), 50);
    expect(r, false, 4, "interval_start", "2026-10-25T02:00:00+02:00");
    expect(r, false, 6, "interval_start", "2026-10-25T02:00:00+01:00");
    acdm_report_free(r);
    /* the day the clocks go forward has 23 hours: 92 quarters per queue, 02:00 never shows */
    ck_assert_int_eq(acdm_report_params(NULL, "2026-03-29", NULL, "day", "15m", now, &rg, err, sizeof err), 0);
    r = acdm_report_new(&rg, CFG);
    acdm_report_end(r, now);
    ck_assert_uint_eq(acdm_report_n_rows(r, false), 184);
    expect(r, false, 14, "interval_start", "2026-03-29T01:45:00+01:00");
    expect(r, false, 16, "interval_start", "2026-03-29T03:00:00+02:00");
    acdm_report_free(r);
    /* a from that is not on the grid starts at its interval */
    ck_assert_int_eq(acdm_report_params(NULL, "2026-11-20T08:07", "2026-11-20T09:00", NULL, "15m", now, &rg, err, sizeof err), 0);
    ck_assert_int_eq(rg.from_ms, at("08:00:00"));
}
END_TEST

START_TEST(bad_parameters_named)
{
    acdm_report_range rg;
    char err[256];
    int64_t now = at("12:00:00");
    struct { const char *kind, *from, *until, *period, *interval, *name; } bad[] = {
        {"calls", "2026-11-20", NULL, NULL, NULL, "kind: "},
        {NULL, NULL, NULL, NULL, NULL, "from: "},
        {NULL, "yesterday", NULL, NULL, NULL, "from: "},
        {NULL, "2026-11-20", "2026-11-19", NULL, NULL, "until: "},
        {NULL, "2025-01-01", "2026-11-19", NULL, NULL, "until: "},
        {NULL, "2026-11-20", "2026-11-21", "day", NULL, "until: "},
        {NULL, "2026-11-20", NULL, "year", NULL, "period: "},
        {NULL, "2026-11-20", NULL, "day", "5m", "interval: "},
        {NULL, "2026-11-20", NULL, "quarter", "15m", "interval: "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        ck_assert_int_eq(acdm_report_params(bad[i].kind, bad[i].from, bad[i].until, bad[i].period, bad[i].interval,
                                            now, &rg, err, sizeof err), ACDM_EINVAL);
        ck_assert_msg(!strncmp(err, bad[i].name, strlen(bad[i].name)), "case %zu: \"%s\"", i, err);
    }
    ck_assert_int_eq(acdm_report_format_parse("pdf"), ACDM_REPORT_PDF);
    ck_assert_int_eq(acdm_report_format_parse("docx"), -1);
    ck_assert_int_eq(acdm_report_format_parse(NULL), ACDM_REPORT_JSON);
}
END_TEST

START_TEST(written_as_csv_json_xlsx_pdf)
{
    acdm_report *r = make("queues");
    acdm_sbuf b = {0};
    char err[256];
    ck_assert_int_eq(acdm_report_write(r, ACDM_REPORT_CSV, &b, NULL, err, sizeof err), 0);
    static const char head[] = "interval_start,interval_end,queue,title,offered,answered,abandoned,quick_drops,"
                               "moved,transfers,answered_in_sl,service_level_pct,asa_s,longest_wait_s,handled,aht_s,"
                               "handle_time_s,outbound,outbound_failed,agents_needed,agents_logged_in,csat_count,csat_avg,csat_helped_pct\r\n";
    ck_assert_msg(!strncmp(b.p, head, sizeof head - 1), "%s", b.p);
    ck_assert_ptr_nonnull(strstr(b.p, "\r\n2026-11-20T08:00:00+01:00,2026-11-20T08:15:00+01:00,q1,\"Vragen, algemeen\",2,1,0,0,0,0,1,100.0,8.0,8.0,1,232.0,232.0,0,0,2,1.0,0,,\r\n"));
    ck_assert_ptr_nonnull(strstr(b.p, "\r\n2026-11-20T08:00:00+01:00,2026-11-20T08:15:00+01:00,q2,q2,0,0,0,0,0,0,0,,,0.0,0,,0.0,0,0,0,0.0,0,,\r\n"));
    acdm_sb_free(&b);

    ck_assert_int_eq(acdm_report_write(r, ACDM_REPORT_JSON, &b, NULL, err, sizeof err), 0);
    json_t *j = json_loads(b.p, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "timezone")), "Europe/Amsterdam");
    ck_assert_str_eq(json_string_value(json_object_get(j, "interval")), "15m");
    ck_assert_str_eq(json_string_value(json_object_get(j, "from")), "2026-11-20T08:00:00+01:00");
    ck_assert_uint_eq(json_array_size(json_object_get(j, "rows")), 8);
    json_t *t0 = json_array_get(json_object_get(j, "totals"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(t0, "offered")), 4);
    ck_assert(json_is_null(json_object_get(json_array_get(json_object_get(j, "rows"), 1), "service_level_pct")));
    ck_assert(json_real_value(json_object_get(t0, "service_level_pct")) > 33.29);
    json_decref(j);
    acdm_sb_free(&b);

    ck_assert_int_eq(acdm_report_write(r, ACDM_REPORT_XLSX, &b, NULL, err, sizeof err), 0);
    ck_assert(b.n > 1000);
    ck_assert(!memcmp(b.p, "PK\x03\x04", 4));        /* a zip: the sheets are checked in the integration test */
    acdm_sb_free(&b);

    /* PDF: the text is in the (uncompressed) page content, with the totals' figures */
    ck_assert_int_eq(acdm_report_write(r, ACDM_REPORT_PDF, &b, NULL, err, sizeof err), 0);
    ck_assert(!memcmp(b.p, "%PDF-", 5));
    ck_assert_ptr_nonnull(memmem(b.p, b.n, "(Totaal) Tj", 11));
    ck_assert_ptr_nonnull(memmem(b.p, b.n, "(Aangeboden) Tj", 15));     /* Dutch headers for people */
    ck_assert_ptr_null(memmem(b.p, b.n, "(offered) Tj", 12));
    /* as the page shows it: the service level with its unit and a decimal comma, durations m:ss,
     * local dates as dd-mm-yyyy, and "Van" only over the intervals (not in the totals) */
    ck_assert_ptr_nonnull(memmem(b.p, b.n, "(33,3\\045) Tj", 13));    /* libharu writes % as \045 */
    ck_assert_ptr_nonnull(memmem(b.p, b.n, "(Beantwoord) Tj", 15));   /* a header whole, not cut */
    ck_assert_ptr_nonnull(memmem(b.p, b.n, "(\\226) Tj", 9));           /* null: the page's en dash (WinAnsi 0x96) */
    ck_assert_ptr_nonnull(memmem(b.p, b.n, "(3:52) Tj", 9));            /* AHT 232 s */
    ck_assert_ptr_nonnull(memmem(b.p, b.n, "(20-11-2026 08:15) Tj", 21));
    const char *van = memmem(b.p, b.n, "(Van) Tj", 8);
    ck_assert_ptr_nonnull(van);
    ck_assert_ptr_null(memmem(van + 1, b.n - (size_t)(van + 1 - b.p), "(Van) Tj", 8));
    ck_assert_ptr_null(memmem(b.p, b.n, "seconden", 8));
    acdm_sb_free(&b);
    acdm_report_free(r);
}
END_TEST

int main(void)
{
    const TTest *const tests[] = {queues_per_quarter, staffing_per_quarter, channels,
                                         agents_and_not_ready_reasons, topics, long_topic_whole_in_csv,
                                         periods_in_local_time, bad_parameters_named,
                                         written_as_csv_json_xlsx_pdf, NULL};
    return run_report_tests("report", tests);
}
