/* report_fixture.h -- the fixture of the reports' unit tests (test_report.c, test_report_csat.c):
 * the test's config, parsed in Europe/Amsterdam before each test; events at local times of
 * 2026-11-20; a report of a kind over 08:00-09:00 in quarters, made at 12:00 and fed by the test's
 * feed(); the suite run with this fixture. Before including it a test defines CFG_JSON (its
 * config) and after it feed(). Definitions: include it once per test. */
#ifndef ACDM_TEST_REPORT_FIXTURE_H
#define ACDM_TEST_REPORT_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reports/report.h"

static acdm_config *CFG;

static void setup(void)
{
    setenv("TZ", "Europe/Amsterdam", 1);
    tzset();
    char err[4096];
    ck_assert_msg(acdm_config_parse("t.json", CFG_JSON, &CFG, err, sizeof err) == 0, "%s", err);
}

static void teardown(void) { acdm_config_free(CFG); }

/* 2026-11-20 (CET, +01:00) at a local time "HH:MM:SS". */
static int64_t at(const char *hms)
{
    char s[64];
    int64_t ms;
    snprintf(s, sizeof s, "2026-11-20T%s+01:00", hms);
    ck_assert_int_eq(acdm_time_parse(s, &ms), 0);
    return ms;
}

/* An event row at hms; a bericht's events are of kind "chat". */
static void event_at(acdm_report *r, const char *hms, const char *type, const char *b, const char *q,
                     const char *agent, const char *channel, const char *detail)
{
    acdm_event_row e = {.ts_ms = at(hms), .type = type, .bericht = b, .queue = q, .agent = agent,
                        .channel = channel, .kind = b ? "chat" : NULL, .detail_json = detail};
    acdm_report_add(r, &e);
}

/* The test's events (defined after the include). */
static void feed(acdm_report *r);

static acdm_report *make(const char *kind)
{
    acdm_report_range rg;
    char err[256];
    ck_assert_msg(acdm_report_params(kind, "2026-11-20T08:00", "2026-11-20T09:00", NULL, "15m",
                                     at("12:00:00"), &rg, err, sizeof err) == 0, "%s", err);
    acdm_report *r = acdm_report_new(&rg, CFG);
    ck_assert_ptr_nonnull(r);
    feed(r);
    acdm_report_end(r, at("12:00:00"));
    return r;
}

/* Runs the tests (NULL-terminated) as suite `name` with the fixture: the exit status of main. */
static int run_report_tests(const char *name, const TTest *const tests[])
{
    Suite *s = suite_create(name);
    TCase *t = tcase_create("core");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 30);
    for (size_t i = 0; tests[i]; i++) tcase_add_test(t, tests[i]);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
