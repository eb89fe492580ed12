/* test_report_csat.c -- customer ratings in the reports: "csat" events (written by the core for
 * host->feedback, the web chat's satisfaction question) are counted per queue, channel and agent
 * in the interval they were given: csat_count, csat_avg (mean score of those with a score) and
 * csat_helped_pct ("Bent u geholpen?" yes of those who answered it), in the rows and the
 * totals, and in the CSV header; the topics report has no CSAT columns. */
static const char *CFG_JSON =
    "{\"queues\":[{\"name\":\"q1\",\"title\":\"Algemeen\"},{\"name\":\"q2\"}],"
    "\"agents\":[{\"id\":\"a1\",\"name\":\"Anna\",\"queues\":[\"q1\",\"q2\"]},{\"id\":\"a2\",\"queues\":[\"q2\"]}],"
    "\"channels\":[{\"name\":\"web1\",\"plugin\":\"webchat\",\"queue\":\"q1\"},"
    "{\"name\":\"web2\",\"plugin\":\"webchat\",\"queue\":\"q2\"}]}";

#include "report_fixture.h"   /* setup/teardown, at(), event_at(), make(), run_report_tests() */

static void rating(acdm_report *r, const char *hms, const char *b, const char *q, const char *agent,
                   const char *channel, const char *detail)
{
    event_at(r, hms, "csat", b, q, agent, channel, detail);
}

static void feed(acdm_report *r)
{
    rating(r, "07:30:00", "b0", "q1", "a1", "web1", "{\"score\":1,\"helped\":false}");   /* before: not counted */
    rating(r, "08:05:00", "b1", "q1", "a1", "web1", "{\"score\":5,\"helped\":true}");
    rating(r, "08:10:00", "b2", "q1", "a1", "web1", "{\"score\":2}");
    rating(r, "08:20:00", "b3", "q1", "a1", "web1", "{\"helped\":false}");
    rating(r, "08:25:00", "b4", "q2", "a2", "web2", "{\"score\":4,\"helped\":true}");
}

/* The value of col in the row whose key column is key (interval_start prefix `from`, or the
 * totals when from is NULL). */
static void expect(acdm_report *r, const char *from, const char *key, const char *col, const char *want)
{
    bool totals = from == NULL;
    char k[64], f[64], got[64];
    const char *keycol = acdm_report_column(r, 2);
    for (size_t i = 0; i < acdm_report_n_rows(r, totals); i++) {
        acdm_report_cell(r, totals, i, keycol, k, sizeof k);
        acdm_report_cell(r, totals, i, "interval_start", f, sizeof f);
        if (strcmp(k, key) || (from && strncmp(f, from, strlen(from)))) continue;
        acdm_report_cell(r, totals, i, col, got, sizeof got);
        ck_assert_msg(!strcmp(got, want), "%s %s %s: got \"%s\", want \"%s\"", from ? from : "totals", key, col, got, want);
        return;
    }
    ck_abort_msg("no row %s %s", from ? from : "totals", key);
}

START_TEST(per_queue)
{
    acdm_report *r = make("queues");
    expect(r, "2026-11-20T08:00", "q1", "csat_count", "2");
    expect(r, "2026-11-20T08:00", "q1", "csat_avg", "3.5");
    expect(r, "2026-11-20T08:00", "q1", "csat_helped_pct", "100.0");
    expect(r, "2026-11-20T08:15", "q1", "csat_count", "1");
    expect(r, "2026-11-20T08:15", "q1", "csat_avg", "");          /* no score given */
    expect(r, "2026-11-20T08:15", "q1", "csat_helped_pct", "0.0");
    expect(r, "2026-11-20T08:30", "q1", "csat_count", "0");
    expect(r, NULL, "q1", "csat_count", "3");
    expect(r, NULL, "q1", "csat_avg", "3.5");
    expect(r, NULL, "q1", "csat_helped_pct", "50.0");
    expect(r, NULL, "q2", "csat_count", "1");
    expect(r, NULL, "q2", "csat_avg", "4.0");
    acdm_report_free(r);
}
END_TEST

START_TEST(per_agent_and_channel)
{
    acdm_report *r = make("agents");
    expect(r, NULL, "a1", "csat_count", "3");
    expect(r, NULL, "a1", "csat_avg", "3.5");
    expect(r, NULL, "a2", "csat_count", "1");
    expect(r, NULL, "a2", "csat_helped_pct", "100.0");
    acdm_report_free(r);
    r = make("channels");
    expect(r, NULL, "web1", "csat_count", "3");
    expect(r, NULL, "web2", "csat_avg", "4.0");
    acdm_report_free(r);
}
END_TEST

START_TEST(columns)
{
    acdm_report *r = make("queues");
    acdm_sbuf b = {0};
    char err[256];
    ck_assert_int_eq(acdm_report_write(r, ACDM_REPORT_CSV, &b, NULL, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(b.p, ",csat_count,csat_avg,csat_helped_pct\r\n"));
    acdm_sb_free(&b);
    acdm_report_free(r);
    r = make("topics");
    for (size_t i = 0; i < acdm_report_n_columns(r); i++)
        ck_assert_msg(strncmp(acdm_report_column(r, i), "csat", 4), "topics: %s", acdm_report_column(r, i));
    acdm_report_free(r);
}
END_TEST

int main(void)
{
    const TTest *const tests[] = {per_queue, per_agent_and_channel, columns, NULL};
    return run_report_tests("report_csat", tests);
}
