/* test_util.c -- the small helpers of the hot paths: the JSON text writer (acdm_sbuf, acdm_jobj)
 * against jansson's parser, acdm_json_text, and bericht ids (acdm_uuidv7). */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/acdm.h"
#include "base/log.h"

#include <unistd.h>

/* Every string a customer may send: quotes, backslashes, control characters, multi-byte UTF-8
 * (é, a euro sign, an emoji), comes back identical through a JSON parser. */
START_TEST(jobj_escapes_every_string_so_a_parser_reads_it_back)
{
    static const char *const tricky[] = {
        "plain", "", "say \"hi\"", "back\\slash", "line\nbreak\r\ttab", "\x01\x02\x1f bell\x07",
        "\b\f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "</script>", "\x7f del",
    };
    for (size_t i = 0; i < sizeof tricky / sizeof *tricky; i++) {
        char buf[64];
        acdm_jobj o;
        acdm_jobj_init(&o, buf, sizeof buf);
        acdm_jobj_str(&o, "text", tricky[i]);
        acdm_jobj_int(&o, "n", -42);
        acdm_jobj_bool(&o, "ok", i % 2);
        acdm_jobj_str(&o, "skipped", NULL);
        const char *txt = acdm_jobj_end(&o);
        ck_assert_ptr_nonnull(txt);
        ck_assert_uint_eq(strlen(txt), o.sb.n);
        json_error_t err;
        json_t *j = json_loads(txt, 0, &err);
        ck_assert_msg(j != NULL, "%s does not parse: %s", txt, err.text);
        ck_assert_str_eq(json_string_value(json_object_get(j, "text")), tricky[i]);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "n")), -42);
        ck_assert(json_is_true(json_object_get(j, "ok")) == (i % 2 == 1));
        ck_assert_ptr_null(json_object_get(j, "skipped"));
        ck_assert_uint_eq(json_object_size(j), 3);
        json_decref(j);
        acdm_jobj_free(&o);
    }
}
END_TEST

/* A text longer than the caller's buffer moves to the heap whole (never cut, never written past
 * the buffer); the buffer is left as it was given. */
START_TEST(jobj_long_text_moves_to_the_heap_whole)
{
    size_t n = 70000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
    big[n / 2] = '"';
    big[n] = '\0';
    char small[128];
    acdm_jobj o;
    acdm_jobj_init(&o, small, sizeof small);
    acdm_jobj_str(&o, "subject", "short");
    ck_assert_ptr_eq(o.sb.p, small);
    acdm_jobj_str(&o, "text", big);
    const char *txt = acdm_jobj_end(&o);
    ck_assert_ptr_nonnull(txt);
    ck_assert_ptr_ne(txt, small);
    ck_assert_uint_eq(strlen(txt), o.sb.n);
    json_t *j = json_loads(txt, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "subject")), "short");
    ck_assert_str_eq(json_string_value(json_object_get(j, "text")), big);
    json_decref(j);
    acdm_jobj_free(&o);
    free(big);
}
END_TEST

START_TEST(json_text_stays_on_the_stack_when_it_fits)
{
    json_t *j = json_pack("{s:s, s:i}", "a", "b", "c", 1);
    char buf[64], *heap;
    const char *t = acdm_json_text(j, buf, sizeof buf, &heap);
    ck_assert_ptr_eq(t, buf);
    ck_assert_ptr_null(heap);
    ck_assert_str_eq(t, "{\"a\":\"b\",\"c\":1}");
    t = acdm_json_text(j, buf, 8, &heap);          /* too small: a heap copy, same text */
    ck_assert_ptr_nonnull(heap);
    ck_assert_str_eq(t, "{\"a\":\"b\",\"c\":1}");
    free(heap);
    ck_assert_ptr_null(acdm_json_text(NULL, buf, sizeof buf, &heap));
    json_decref(j);
}
END_TEST

/* Ids are RFC 9562 version 7, unique and in creation order, also many within one
 * millisecond and across a refill of the random pool (4 KiB = ~400 ids). */
START_TEST(uuidv7_ids_are_unique_ordered_and_well_formed)
{
    enum { N = 5000 };
    static char ids[N][37];
    int64_t t = 1700000000000;
    for (int i = 0; i < N; i++) acdm_uuidv7(ids[i], t + i / 1000);   /* 1000 per ms */
    for (int i = 0; i < N; i++) {
        ck_assert_uint_eq(strlen(ids[i]), 36);
        ck_assert(ids[i][8] == '-' && ids[i][13] == '-' && ids[i][18] == '-' && ids[i][23] == '-');
        ck_assert_int_eq(ids[i][14], '7');
        ck_assert(strchr("89ab", ids[i][19]) != NULL);
        for (int k = 0; k < 36; k++)
            ck_assert(ids[i][k] == '-' || strchr("0123456789abcdef", ids[i][k]));
        if (i) ck_assert_msg(strcmp(ids[i - 1], ids[i]) < 0, "%s !< %s", ids[i - 1], ids[i]);
    }
    /* the random tail differs between ids of the same millisecond */
    ck_assert_str_ne(ids[0] + 24, ids[1] + 24);
}
END_TEST

START_TEST(utf8_validation_refuses_what_rfc3629_refuses)
{
    static const struct { const char *s; bool ok; } cases[] = {
        {"", true}, {"plain ascii", true}, {"caf\xc3\xa9", true}, {"\xe2\x82\xac", true},
        {"\xf0\x9f\x98\x80", true}, {"\xf4\x8f\xbf\xbf", true},            /* U+10FFFF */
        {"\xc3\x28", false}, {"\xc3", false}, {"\x80", false}, {"\xff", false},
        {"\xc0\xaf", false}, {"\xe0\x80\xaf", false},                       /* overlong '/' */
        {"\xed\xa0\x80", false},                                             /* a surrogate */
        {"\xf4\x90\x80\x80", false}, {"\xf8\x88\x80\x80\x80", false},     /* > U+10FFFF */
        {"ok\xe2\x82", false},                                                /* cut short */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        ck_assert_msg(acdm_utf8_valid(cases[i].s, strlen(cases[i].s)) == cases[i].ok, "case %zu", i);
    ck_assert_uint_eq(acdm_utf8_chars("caf\xc3\xa9 \xf0\x9f\x98\x80"), 6);
    ck_assert_uint_eq(acdm_utf8_chars(""), 0);
}
END_TEST

/* A flood of one line is cut after 20 per window and summarised with its count. */
START_TEST(repeated_log_lines_are_summarised)
{
    char path[] = "/tmp/acdm-logtest-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    for (int i = 0; i < 5000; i++) acdm_log(ACDM_LOG_ERR, "test", "accept failed: %d", i);
    acdm_log(ACDM_LOG_ERR, "test", "another line");
    acdm_log_flush_repeats();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int n = 0, summary = 0, other = 0;
    while (fgets(line, sizeof line, f)) {
        n++;
        if (strstr(line, "repeated 4980 more times")) summary++;
        if (strstr(line, "another line")) other++;
    }
    fclose(f);
    unlink(path);
    close(fd);
    ck_assert_int_eq(summary, 1);
    ck_assert_int_eq(other, 1);
    ck_assert_int_eq(n, 20 + 1 + 1);
}
END_TEST

/* Lines formatted elsewhere and printed with "%s" (the plugin host's) are limited per origin:
 * a plugin's noisy line does not silence its other lines. */
START_TEST(plugin_lines_are_limited_per_origin)
{
    char path[] = "/tmp/acdm-logtest-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    static const char noisy[] = "dlr for %s", quiet[] = "call %s answered";
    for (int i = 0; i < 100; i++) acdm_log_origin(ACDM_LOG_INFO, "sms1", noisy, "%s", "dlr for x");
    for (int i = 0; i < 10; i++) acdm_log_origin(ACDM_LOG_INFO, "sms1", quiet, "%s", "call y answered");
    acdm_log_flush_repeats();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int dlr = 0, answered = 0, summary = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "repeated 80 more times")) summary++;
        else if (strstr(line, "dlr for x")) dlr++;
        else if (strstr(line, "call y answered")) answered++;
    }
    fclose(f);
    unlink(path);
    close(fd);
    ck_assert_int_eq(dlr, 20);
    ck_assert_int_eq(summary, 1);
    ck_assert_int_eq(answered, 10);   /* all of them: its own limit, not the noisy line's */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("util");
    tcase_add_test(tc, jobj_escapes_every_string_so_a_parser_reads_it_back);
    tcase_add_test(tc, jobj_long_text_moves_to_the_heap_whole);
    tcase_add_test(tc, json_text_stays_on_the_stack_when_it_fits);
    tcase_add_test(tc, uuidv7_ids_are_unique_ordered_and_well_formed);
    tcase_add_test(tc, utf8_validation_refuses_what_rfc3629_refuses);
    tcase_add_test(tc, repeated_log_lines_are_summarised);
    tcase_add_test(tc, plugin_lines_are_limited_per_origin);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
