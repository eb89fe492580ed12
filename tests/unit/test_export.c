/* test_export.c -- unit tests of the export helpers (export.c: times, ranges, CSV and JSON rows)
 * and the store queries behind Klantbeeld, export and audit (store_sqlite.c). */
#include "store/export.h"
#include "config/schedule.h"
#include "store/store.h"

#include <check.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DAY (86400LL * 1000)

/* ------------------------------------------------------------------ times */

static int64_t t(const char *s)
{
    int64_t ms = -1;
    ck_assert_msg(acdm_time_parse(s, &ms) == 0, "refused: %s", s);
    return ms;
}

START_TEST(time_parse_forms)
{
    ck_assert_int_eq(acdm_set_timezone("Europe/Amsterdam"), 0);
    ck_assert_int_eq(t("2026-11-01T00:00:00Z"), 1793491200000LL);
    ck_assert_int_eq(t("2026-11-01T00:00Z"), 1793491200000LL);
    ck_assert_int_eq(t("2026-11-01 00:00:00z"), 1793491200000LL);
    ck_assert_int_eq(t("2026-11-01T01:00:00+01:00"), 1793491200000LL);
    ck_assert_int_eq(t("2026-10-31T19:00:00-0500"), 1793491200000LL);
    ck_assert_int_eq(t("2026-11-01T01:00:00 01:00"), 1793491200000LL);   /* '+' decoded as ' ' */
    ck_assert_int_eq(t("2026-11-01T00:00:00.250Z"), 1793491200250LL);
    ck_assert_int_eq(t("2026-11-01T00:00:00.2Z"), 1793491200200LL);
    ck_assert_int_eq(t("1793491200000"), 1793491200000LL);
    /* without a zone: local time (Amsterdam, CET in November, CEST in July) */
    ck_assert_int_eq(t("2026-11-01"), 1793491200000LL - 3600000);
    ck_assert_int_eq(t("2026-11-01T08:30"), 1793491200000LL - 3600000 + 8 * 3600000 + 30 * 60000);
    ck_assert_int_eq(t("2026-07-01"), t("2026-06-30T22:00:00Z"));
    ck_assert_int_eq(t("2024-02-29T00:00:00Z"), t("2024-02-28T00:00:00Z") + DAY);
}
END_TEST

START_TEST(time_parse_refuses)
{
    static const char *const bad[] = {
        "", "yesterday", "2026", "2026-11", "2026-13-01", "2026-00-10", "2026-02-29", "2026-04-31",
        "1969-12-31", "2026-11-01T", "2026-11-01T24:00", "2026-11-01T12:60", "2026-11-01T12:00:61",
        "2026-11-01T12:00:00.Z", "2026-11-01T12:00:00X", "2026-11-01T12:00:00+25:00",
        "2026-11-01T12:00:00+01", "2026-11-01T12:00:00Zjunk", "2026/11/01", "12345678901234567",
        "-5", "123456", "2026-11-01T1:00", "2026-11-01x", "2026-11-01T12:00+", "2026-07-01t01:00-", "2026-11-01T12:00:00.123456789012345678901234567890Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t ms;
        ck_assert_msg(acdm_time_parse(bad[i], &ms) == ACDM_EINVAL, "accepted \"%s\"", bad[i]);
    }
    int64_t ms;
    ck_assert_int_eq(acdm_time_parse(NULL, &ms), ACDM_EINVAL);
}
END_TEST

START_TEST(time_range_checks)
{
    int64_t s, u, now = 1793491200000LL;
    char err[256];
    ck_assert_int_eq(acdm_time_range("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", now, 0, &s, &u, err, sizeof err), 0);
    ck_assert_int_eq(u - s, 31 * DAY);
    ck_assert_int_eq(acdm_time_range("2026-10-25T00:00:00Z", NULL, now, 0, &s, &u, err, sizeof err), 0);
    ck_assert_int_eq(u, now);
    ck_assert_int_eq(acdm_time_range(NULL, NULL, now, 7 * DAY, &s, &u, err, sizeof err), 0);
    ck_assert_int_eq(s, now - 7 * DAY);
    ck_assert_int_eq(acdm_time_range(NULL, NULL, now, 0, &s, &u, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "since: required"));
    ck_assert_int_eq(acdm_time_range("2026-09-30T23:59:59Z", "2026-11-01T00:00:00Z", now, 0, &s, &u, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "until: the range is 31.0 days; at most 31 days"));
    ck_assert_int_eq(acdm_time_range("2026-11-01", "2026-11-01", now, 0, &s, &u, err, sizeof err), ACDM_EINVAL);
    ck_assert_str_eq(err, "until: must be after since");
    ck_assert_int_eq(acdm_time_range("soon", NULL, now, 0, &s, &u, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "since: \"soon\": expected an ISO 8601 time"));
    ck_assert_int_eq(acdm_time_range("2026-11-01", "later", now, 0, &s, &u, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "until: \"later\""));
}
END_TEST

START_TEST(time_iso)
{
    char out[48];
    acdm_time_iso(1793491200250LL, out);
    ck_assert_str_eq(out, "2026-11-01T00:00:00.250Z");
    acdm_time_iso(0, out);
    ck_assert_str_eq(out, "1970-01-01T00:00:00.000Z");
}
END_TEST

/* ------------------------------------------------------------------ rows */

START_TEST(csv_quoting)
{
    acdm_sbuf b = {0};
    acdm_csv_field(&b, "plain");
    acdm_sb_str(&b, "|");
    acdm_csv_field(&b, "a,b");
    acdm_sb_str(&b, "|");
    acdm_csv_field(&b, "say \"hi\"");
    acdm_sb_str(&b, "|");
    acdm_csv_field(&b, "two\nlines\r");
    acdm_sb_str(&b, "|");
    acdm_csv_field(&b, NULL);
    acdm_sb_str(&b, "|");
    acdm_csv_field(&b, "");
    ck_assert_str_eq(b.p, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\r\"||");
    acdm_sb_free(&b);
}
END_TEST

START_TEST(export_rows)
{
    acdm_event_row ev = {.ts_ms = 1793491200250LL, .type = "topics", .bericht = "b1", .queue = "q",
                         .agent = "anna", .channel = "api", .kind = "chat",
                         .detail_json = "{\"topics\":[\"Paspoort\",\"Afval, groen\"]}"};
    acdm_event_row ev2 = {.ts_ms = 1793491201000LL, .type = "config_reload", .detail_json = "not json"};
    acdm_sbuf b = {0};
    acdm_export_begin(&b, ACDM_EXPORT_CSV);
    acdm_export_event(&b, ACDM_EXPORT_CSV, 7, &ev, true);
    acdm_export_event(&b, ACDM_EXPORT_CSV, 8, &ev2, false);
    acdm_export_end(&b, ACDM_EXPORT_CSV);
    ck_assert_str_eq(b.p,
        "id,ts,ts_ms,type,bericht,queue,agent,channel,kind,detail\r\n"
        "7,2026-11-01T00:00:00.250Z,1793491200250,topics,b1,q,anna,api,chat,"
        "\"{\"\"topics\"\":[\"\"Paspoort\"\",\"\"Afval, groen\"\"]}\"\r\n"
        "8,2026-11-01T00:00:01.000Z,1793491201000,config_reload,,,,,,not json\r\n");
    acdm_sb_free(&b);

    acdm_export_begin(&b, ACDM_EXPORT_JSON);
    acdm_export_event(&b, ACDM_EXPORT_JSON, 7, &ev, true);
    acdm_export_event(&b, ACDM_EXPORT_JSON, 8, &ev2, false);
    acdm_export_end(&b, ACDM_EXPORT_JSON);
    json_error_t je;
    json_t *arr = json_loads(b.p, 0, &je);
    ck_assert_msg(json_is_array(arr), "%s: %s", b.p, je.text);
    ck_assert_int_eq(json_array_size(arr), 2);
    json_t *e0 = json_array_get(arr, 0), *e1 = json_array_get(arr, 1);
    ck_assert_int_eq(json_integer_value(json_object_get(e0, "id")), 7);
    ck_assert_str_eq(json_string_value(json_object_get(e0, "ts")), "2026-11-01T00:00:00.250Z");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(json_object_get(e0, "detail"), "topics"), 1)), "Afval, groen");
    ck_assert_str_eq(json_string_value(json_object_get(e1, "detail")), "not json");   /* kept as text */
    ck_assert(json_is_null(json_object_get(e1, "bericht")));
    json_decref(arr);
    acdm_sb_free(&b);
    ck_assert_int_eq(acdm_export_format_parse("csv"), ACDM_EXPORT_CSV);
    ck_assert_int_eq(acdm_export_format_parse(NULL), ACDM_EXPORT_JSON);
    ck_assert_int_eq(acdm_export_format_parse("xml"), -1);
}
END_TEST

/* ------------------------------------------------------------------ store queries */

static char dir[64];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static acdm_store *open_store(void)
{
    char err[512];
    acdm_store *st = NULL;
    ck_assert_msg(acdm_store_open(dir, 1, NULL, NULL, &st, err, sizeof err) == 0, "%s", err);
    return st;
}

static void add(acdm_store *st, const char *id, const char *from, acdm_kind k, int64_t at, const char *topics)
{
    acdm_bericht_row row = {.id = id, .channel = "api", .kind = k, .direction = "in", .from = from,
                            .queue = "algemeen", .state = ACDM_B_DONE, .agent = "anna",
                            .payload_json = "{\"subject\":\"s\"}", .created_ms = at, .queued_ms = at};
    ck_assert_int_eq(acdm_store_insert_bericht(st, &row, NULL, NULL), 0);
    if (topics) {
        acdm_event_row ev = {.ts_ms = at + 1000, .type = "topics", .bericht = id, .queue = "algemeen",
                             .agent = "anna", .channel = "api", .kind = acdm_kind_name(k), .detail_json = topics};
        ck_assert_int_eq(acdm_store_append_event(st, &ev), 0);
    }
}

typedef struct { int n; int64_t last_ts; char types[512]; } seen;

static int each(void *user, int64_t id, const acdm_event_row *ev)
{
    seen *s = user;
    ck_assert_int_gt(id, 0);
    ck_assert_int_ge(ev->ts_ms, s->last_ts);
    s->last_ts = ev->ts_ms;
    s->n++;
    strncat(s->types, ev->type, sizeof s->types - strlen(s->types) - 2);
    strcat(s->types, " ");
    return s->n >= 100;
}

START_TEST(store_history_topics_events)
{
    snprintf(dir, sizeof dir, "/tmp/acdm-export-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    acdm_store *st = open_store();
    int64_t now = acdm_now_ms();
    /* UUIDv7-like ids, time-ordered */
    add(st, "0190f7a2-0000-7000-8000-000000000001", "jan@example.nl", ACDM_KIND_EMAIL, now - 300 * DAY, "{\"topics\":[\"Oud\"]}");
    add(st, "0190f7a2-0000-7000-8000-000000000002", "jan@example.nl", ACDM_KIND_CHAT, now - 3 * DAY, "{\"topics\":[\"Paspoort\",\"Afval\"]}");
    add(st, "0190f7a2-0000-7000-8000-000000000003", "+31600000000", ACDM_KIND_VOICE, now - 2 * DAY, "{\"topics\":[\"Afval\"]}");
    add(st, "0190f7a2-0000-7000-8000-000000000004", "jan@example.nl", ACDM_KIND_WHATSAPP, now - DAY, "{\"topics\":[\"Paspoort\"]}");
    add(st, "0190f7a2-0000-7000-8000-000000000005", "jan@example.nl", ACDM_KIND_CHAT, now - 1000, NULL);
    acdm_event_row audit = {.ts_ms = now - 500, .type = "audit", .detail_json = "{\"actor\":\"local\",\"action\":\"reload\"}"};
    acdm_store_append_event(st, &audit);
    acdm_store_close(st);
    st = open_store();

    char *js = NULL;
    ck_assert_int_eq(acdm_store_customer_history(st, "jan@example.nl", NULL, 3, &js), 0);
    json_t *j = json_loads(js, 0, NULL);
    free(js);
    json_t *items = json_object_get(j, "items");
    ck_assert_int_eq(json_array_size(items), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "id")), "0190f7a2-0000-7000-8000-000000000005");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "kind")), "whatsapp");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "handler")), "anna");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "state")), "done");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "subject")), "s");
    ck_assert_int_eq(json_array_size(json_object_get(json_array_get(items, 0), "topics")), 0);
    ck_assert_int_eq(json_array_size(json_object_get(json_array_get(items, 2), "topics")), 2);
    const char *next = json_string_value(json_object_get(j, "next"));
    ck_assert_str_eq(next, "0190f7a2-0000-7000-8000-000000000002");
    ck_assert_int_eq(acdm_store_customer_history(st, "jan@example.nl", next, 3, &js), 0);
    json_t *j2 = json_loads(js, 0, NULL);
    free(js);
    ck_assert_int_eq(json_array_size(json_object_get(j2, "items")), 1);
    ck_assert(json_is_null(json_object_get(j2, "next")));
    json_decref(j);
    json_decref(j2);
    ck_assert_int_eq(acdm_store_customer_history(st, "jan@example.nl", NULL, 0, &js), ACDM_EINVAL);

    /* top topics of the last 183 days: "Oud" (300 days ago) and the other customer's are left out */
    ck_assert_int_eq(acdm_store_customer_topics(st, "jan@example.nl", now - 183 * DAY, 10, &js), 0);
    ck_assert_str_eq(js, "[{\"topic\":\"Paspoort\",\"count\":2},{\"topic\":\"Afval\",\"count\":1}]");
    free(js);

    seen s = {0};
    ck_assert_int_eq(acdm_store_events_each(st, now - 400 * DAY, now + 1, NULL, each, &s), 5);
    ck_assert_str_eq(s.types, "topics topics topics topics audit ");
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(acdm_store_events_each(st, now - 400 * DAY, now + 1, "audit", each, &s), 1);
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(acdm_store_events_each(st, now - 2 * DAY, now - DAY + 1000, NULL, each, &s), 1); /* [since, until) */
    /* the same through a read-only connection of its own (worker threads, acdmctl) */
    char err[256];
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(acdm_export_read(acdm_store_db_path(st), now - 400 * DAY, now + 1, false, each, &s, err, sizeof err), 5);
    ck_assert_str_eq(s.types, "topics topics topics topics audit ");
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(acdm_export_read(acdm_store_db_path(st), now - 400 * DAY, now + 1, true, each, &s, err, sizeof err), 1);
    ck_assert_str_eq(s.types, "audit ");
    ck_assert_int_eq(acdm_export_read("/nonexistent/acdm.db", 0, now, false, each, &s, err, sizeof err), ACDM_EIO);
    ck_assert_ptr_nonnull(strstr(err, "cannot open /nonexistent/acdm.db"));
    acdm_store_close(st);
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}
END_TEST

static Suite *export_suite(void)
{
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("export");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, time_parse_forms);
    tcase_add_test(tc, time_parse_refuses);
    tcase_add_test(tc, time_range_checks);
    tcase_add_test(tc, time_iso);
    tcase_add_test(tc, csv_quoting);
    tcase_add_test(tc, export_rows);
    tcase_add_test(tc, store_history_topics_events);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(export_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
