/* test_plugin_util.c -- the plugin kit's static-inline helpers (<acdm/plugin_util.h>), compiled
 * here as a plugin compiles them (C11, -Wall -Wextra -Werror) and run under ASan+UBSan: header
 * and query lookup, URL decoding, constant-time compare, bearer check, problem+json, the text
 * buffer, the config-spec table (types, defaults, ranges, validators, "did you mean") and the
 * handoff document (read back with jansson, as the core and an agent's desk read it). */
#include <acdm/plugin_util.h>

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ request helpers */

START_TEST(content_type_compare)
{
    acdm_http_request req = {.struct_size = sizeof req};
    ck_assert(!acdm_content_type_is(&req, "application/json"));          /* none sent */
    const char *yes[] = {"application/json", "Application/JSON", "application/json; charset=utf-8",
                         " application/json ;charset=UTF-8", "application/json\t;x=1"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        req.content_type = yes[i];
        ck_assert_msg(acdm_content_type_is(&req, "application/json"), "%s", yes[i]);
    }
    const char *no[] = {"", "text/plain", "application/json5", "application/jso",
                        "application/json-seq; x=1", "application/x-www-form-urlencoded",
                        "multipart/form-data; boundary=application/json"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        req.content_type = no[i];
        ck_assert_msg(!acdm_content_type_is(&req, "application/json"), "%s", no[i]);
    }
    req.content_type = "text/plain";
    ck_assert(!acdm_content_type_is(&req, ""));
    ck_assert(!acdm_content_type_is(&req, NULL));
    ck_assert(!acdm_content_type_is(NULL, "text/plain"));
}
END_TEST

START_TEST(header_and_query_lookup)
{
    acdm_http_header hs[] = {{"x-hub-signature-256", "sha256=ab"}, {"content-type", "text/plain"}};
    acdm_http_request req = {.struct_size = sizeof req, .headers = hs, .n_headers = 2};
    ck_assert_str_eq(acdm_http_header_get(&req, "X-Hub-Signature-256"), "sha256=ab");
    ck_assert_ptr_null(acdm_http_header_get(&req, "authorization"));
    acdm_http_request old = {.struct_size = offsetof(acdm_http_request, query_raw)};
    ck_assert_ptr_null(acdm_http_header_get(&old, "content-type"));   /* a 1.0 request: no headers */

    char out[64];
    const char *q = "from=%2B31612345678&text=a%26b+c&flag&empty=&from=second";
    ck_assert_int_eq(acdm_query_get(q, "from", out, sizeof out), 12);
    ck_assert_str_eq(out, "+31612345678");            /* %2B stays a plus: the first wins */
    ck_assert_int_eq(acdm_query_get(q, "text", out, sizeof out), 5);
    ck_assert_str_eq(out, "a&b c");                   /* %26 does not split the value */
    ck_assert_int_eq(acdm_query_get(q, "flag", out, sizeof out), 0);
    ck_assert_int_eq(acdm_query_get(q, "empty", out, sizeof out), 0);
    ck_assert_int_eq(acdm_query_get(q, "nope", out, sizeof out), -1);
    ck_assert_int_eq(acdm_query_get("a=%zz", "a", out, sizeof out), -2);
    ck_assert_int_eq(acdm_query_get("a=%00", "a", out, sizeof out), -2);   /* a NUL byte */
    ck_assert_int_eq(acdm_query_get("a=12345", "a", out, 4), -2);         /* does not fit */
    ck_assert_int_eq(acdm_url_decode("a+b%20c", 7, 0, out, sizeof out), 5);
    ck_assert_str_eq(out, "a+b c");                   /* not form: '+' stays */
    ck_assert_int_eq(acdm_url_decode("%4", 2, 1, out, sizeof out), -1);
}
END_TEST

START_TEST(secrets_compare_and_bearer)
{
    ck_assert(acdm_ct_equal("abc", 3, "abc", 3));
    ck_assert(!acdm_ct_equal("abc", 3, "abd", 3));
    ck_assert(!acdm_ct_equal("abc", 3, "abcd", 4));
    ck_assert(!acdm_ct_equal("", 0, "a", 1));
    ck_assert(acdm_bearer_ok("Bearer s3cret", "s3cret"));
    ck_assert(acdm_bearer_ok("bearer   s3cret", "s3cret"));
    ck_assert(!acdm_bearer_ok("Bearer s3cre", "s3cret"));
    ck_assert(!acdm_bearer_ok("Basic s3cret", "s3cret"));
    ck_assert(!acdm_bearer_ok(NULL, "s3cret"));
    ck_assert(!acdm_bearer_ok("Bearer ", ""));        /* an empty expected token never matches */
}
END_TEST

START_TEST(problem_json_is_valid_json)
{
    char buf[1024];
    acdm_http_response resp = {0};
    acdm_problem(&resp, 400, "Bad \"input\"", "from: required\n(line 2)", buf, sizeof buf);
    ck_assert_int_eq(resp.status, 400);
    ck_assert_str_eq(resp.content_type, "application/problem+json");
    json_t *j = json_loads(resp.body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "title")), "Bad \"input\"");
    ck_assert_str_eq(json_string_value(json_object_get(j, "detail")), "from: required\n(line 2)");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 400);
    json_decref(j);
    ck_assert_str_eq(acdm_plugin_strerror(ACDM_P_ESTATE), "not allowed in this state");
}
END_TEST

START_TEST(buffer_grows_and_escapes)
{
    acdm_buf b = {0, 0, 0, 0};
    for (int i = 0; i < 1000; i++) acdm_buf_printf(&b, "%d,", i);
    ck_assert(!b.oom);
    ck_assert_uint_eq(b.n, strlen(b.p));
    ck_assert(strstr(b.p, "998,999,"));
    b.n = 0;
    acdm_buf_json_str(&b, "caf\xc3\xa9 \"q\" \\ \x01\n");
    json_t *j = json_loads(b.p, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(j), "caf\xc3\xa9 \"q\" \\ \x01\n");
    json_decref(j);
    char *big = malloc(5000);
    memset(big, 'x', 4999);
    big[4999] = 0;
    b.n = 0;
    acdm_buf_printf(&b, "<%s>", big);                 /* longer than printf's small buffer */
    ck_assert_uint_eq(b.n, 5001);
    free(big);
    acdm_buf_free(&b);
}
END_TEST

/* ================================================================ config spec */

typedef struct {
    char url[64];
    char token[32];
    int retry_ms;
    long long max_bytes;
    bool verbose;
    int legacy;
    char origins[128];
    char texts[256];
} tcfg;

static int even_only(const acdm_cfg_spec *s, const void *field, char *err, size_t errlen)
{
    (void)s;
    int v;
    memcpy(&v, field, sizeof v);
    if (v % 2) { snprintf(err, errlen, "must be even, got %d", v); return -1; }
    return 0;
}

static const acdm_cfg_spec spec[] = {
    ACDM_CFG_STR(tcfg, "url", url, NULL, .required = 1, .check = acdm_cfg_check_url),
    ACDM_CFG_STR(tcfg, "token", token, NULL, .min = 8, .help = "the bearer token senders use"),
    ACDM_CFG_INT(tcfg, "retry_ms", retry_ms, "1000", .min = 10, .max = 60000, .check = even_only),
    ACDM_CFG_INT(tcfg, "max_bytes", max_bytes, "10485760", .min = 1, .max = 1LL << 40),
    ACDM_CFG_BOOL(tcfg, "verbose", verbose, "false"),
    ACDM_CFG_BOOL(tcfg, "legacy", legacy, "true"),
    ACDM_CFG_STRLIST(tcfg, "allowed_origins", origins, "[\"https://a.example\"]", .max = 4),
    ACDM_CFG_JSON(tcfg, "texts", texts, "{}"),
    ACDM_CFG_END
};

static const char *parse_err(const char *json)
{
    static char err[512];
    tcfg c;
    ck_assert_msg(acdm_cfg_parse(spec, json, &c, err, sizeof err) < 0, "%s was accepted", json);
    return err;
}

START_TEST(cfg_defaults_types_and_values)
{
    tcfg c;
    char err[256];
    ck_assert_int_eq(acdm_cfg_parse(spec, "{\"url\":\"https://bot.example/x\"}", &c, err, sizeof err), 0);
    ck_assert_str_eq(c.url, "https://bot.example/x");
    ck_assert_str_eq(c.token, "");
    ck_assert_int_eq(c.retry_ms, 1000);
    ck_assert(c.max_bytes == 10485760LL);
    ck_assert(!c.verbose);
    ck_assert_int_eq(c.legacy, 1);
    ck_assert_uint_eq(acdm_cfg_list_len(c.origins), 1);
    ck_assert_str_eq(c.origins, "https://a.example");
    ck_assert_str_eq(c.texts, "{}");

    const char *full =
        " {\"url\": \"http://h/\\u00e9\", \"token\": \"0123456789\", \"retry_ms\": 250,\n"
        "  \"max_bytes\": 1099511627776, \"verbose\": true, \"legacy\": false,\n"
        "  \"allowed_origins\": [\"https://x\", \"https://y\"],\n"
        "  \"texts\": {\"welcome\": \"Hallo \\\"daar\\\"\", \"n\": [1, 2.5e3, null]}} ";
    ck_assert_int_eq(acdm_cfg_parse(spec, full, &c, err, sizeof err), 0);
    ck_assert_str_eq(c.url, "http://h/\xc3\xa9");
    ck_assert_str_eq(c.token, "0123456789");
    ck_assert_int_eq(c.retry_ms, 250);
    ck_assert(c.max_bytes == 1099511627776LL);
    ck_assert(c.verbose);
    ck_assert_int_eq(c.legacy, 0);
    ck_assert_uint_eq(acdm_cfg_list_len(c.origins), 2);
    ck_assert(acdm_cfg_list_has(c.origins, "https://y"));
    ck_assert(!acdm_cfg_list_has(c.origins, "https://z"));
    json_t *t = json_loads(c.texts, 0, NULL);         /* the raw value is the JSON as written */
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(json_string_value(json_object_get(t, "welcome")), "Hallo \"daar\"");
    json_decref(t);
    /* null is absent: the default stays; an empty list is allowed */
    ck_assert_int_eq(acdm_cfg_parse(spec, "{\"url\":\"https://u\",\"retry_ms\":null,\"allowed_origins\":[]}",
                                    &c, err, sizeof err), 0);
    ck_assert_int_eq(c.retry_ms, 1000);
    ck_assert_uint_eq(acdm_cfg_list_len(c.origins), 0);
    /* a surrogate pair becomes one 4-byte UTF-8 character */
    ck_assert_int_eq(acdm_cfg_parse(spec, "{\"url\":\"https://u/\\ud83d\\ude00\"}", &c, err, sizeof err), 0);
    ck_assert_str_eq(c.url, "https://u/\xf0\x9f\x98\x80");
}
END_TEST

START_TEST(cfg_errors_name_the_key)
{
    ck_assert_str_eq(parse_err("{}"), "url: required");
    ck_assert_str_eq(parse_err("{\"url\":null}"), "url: required");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"tokn\":\"x\"}"), "tokn: unknown key (did you mean \"token\"?)");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"Retry_MS\":5}"), "Retry_MS: unknown key (did you mean \"retry_ms\"?)");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"colour\":1}"),
                     "colour: unknown key (known: url, token, retry_ms, max_bytes, verbose, legacy, allowed_origins, texts)");
    ck_assert_str_eq(parse_err("{\"url\":\"ftp://u\"}"), "url: expected an http:// or https:// URL, got \"ftp://u\"");
    ck_assert_str_eq(parse_err("{\"url\":5}"), "url: expected a string");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"token\":\"short\"}"), "token: shorter than 8 bytes");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"token\":\"\"}"), "token: must not be empty");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"token\":\"0123456789012345678901234567890123\"}"),
                     "token: longer than 31 bytes");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"retry_ms\":5}"), "retry_ms: 5 is not in 10..60000");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"retry_ms\":251}"), "retry_ms: must be even, got 251");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"retry_ms\":2.5}"), "retry_ms: expected an integer, not a fraction");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"retry_ms\":\"250\"}"), "retry_ms: expected an integer");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"max_bytes\":99999999999999999999}"), "max_bytes: out of range");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"verbose\":1}"), "verbose: expected true or false");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"allowed_origins\":\"https://x\"}"),
                     "allowed_origins: expected an array of strings");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"allowed_origins\":[\"a\",2]}"), "allowed_origins[1]: expected a string");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"allowed_origins\":[\"\"]}"), "allowed_origins[0]: must not be empty");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"allowed_origins\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}"),
                     "allowed_origins: more than 4 entries");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"texts\":{\"a\":}}"), "texts: malformed JSON value");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\",\"url\":\"https://v\"}"), "url: given twice");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\\u0000x\"}"), "url: malformed JSON value");
    ck_assert_str_eq(parse_err("[1]"), "config: expected a JSON object");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\"} x"), "config: text after the JSON object");
    ck_assert_str_eq(parse_err("{\"url\":\"https://u\""), "url: malformed JSON (expected ',' or '}')");
    ck_assert_str_eq(parse_err("{\"url\" \"https://u\"}"), "url: malformed JSON (expected ':')");
}
END_TEST

/* One char[] list too small for what is given is an error, never a silent cut. */
START_TEST(cfg_list_that_does_not_fit_is_refused)
{
    typedef struct { char l[8]; } small;
    static const acdm_cfg_spec sp[] = {ACDM_CFG_STRLIST(small, "l", l, NULL), ACDM_CFG_END};
    small c;
    char err[128];
    ck_assert_int_eq(acdm_cfg_parse(sp, "{\"l\":[\"ab\",\"cd\"]}", &c, err, sizeof err), 0);
    ck_assert_str_eq(c.l, "ab");
    ck_assert_str_eq(acdm_cfg_list_next(c.l), "cd");
    ck_assert_int_lt(acdm_cfg_parse(sp, "{\"l\":[\"ab\",\"cd\",\"e\"]}", &c, err, sizeof err), 0);
    ck_assert_str_eq(err, "l: the list is longer than 6 bytes");
    ck_assert_int_eq(acdm_cfg_parse(sp, NULL, &c, err, sizeof err), 0);       /* no config: {} */
    ck_assert_int_eq(acdm_cfg_parse(sp, "  ", &c, err, sizeof err), 0);
}
END_TEST

/* A nested object (an ACDM_CFG_T_JSON field) read with its own table; errors carry the path. */
START_TEST(cfg_nested_object_names_the_path)
{
    typedef struct { char bot[512]; } outer;
    typedef struct { char url[128]; int timeout_ms; } botcfg;
    static const acdm_cfg_spec osp[] = {ACDM_CFG_JSON(outer, "bot", bot, NULL), ACDM_CFG_END};
    static const acdm_cfg_spec bsp[] = {
        ACDM_CFG_STR(botcfg, "url", url, NULL, .required = 1, .check = acdm_cfg_check_url),
        ACDM_CFG_INT(botcfg, "timeout_ms", timeout_ms, "5000", .min = 100, .max = 60000),
        ACDM_CFG_END};
    outer o;
    botcfg b;
    char err[256];
    ck_assert_int_eq(acdm_cfg_parse(osp, "{\"bot\":{\"url\":\"http://b/\",\"timeout_ms\":250}}", &o, err, sizeof err), 0);
    ck_assert_int_eq(acdm_cfg_parse_in(bsp, o.bot, &b, "bot", err, sizeof err), 0);
    ck_assert_str_eq(b.url, "http://b/");
    ck_assert_int_eq(b.timeout_ms, 250);
    ck_assert_int_eq(acdm_cfg_parse(osp, "{\"bot\":{\"url\":\"http://b/\",\"timout_ms\":1}}", &o, err, sizeof err), 0);
    ck_assert_int_lt(acdm_cfg_parse_in(bsp, o.bot, &b, "bot", err, sizeof err), 0);
    ck_assert_str_eq(err, "bot.timout_ms: unknown key (did you mean \"timeout_ms\"?)");
    ck_assert_int_lt(acdm_cfg_parse_in(bsp, "", &b, "bot", err, sizeof err), 0);
    ck_assert_str_eq(err, "bot.url: required");
    ck_assert_int_lt(acdm_cfg_parse_in(bsp, "[1]", &b, "bot", err, sizeof err), 0);
    ck_assert_str_eq(err, "bot: expected a JSON object");
}
END_TEST

/* ================================================================ the handoff document */

START_TEST(handoff_document_reads_back)
{
    acdm_handoff_doc d;
    acdm_handoff_begin(&d, "chatbot", "c-17");
    acdm_handoff_customer(&d, NULL, "Jan \"de\" Vries", "+31612345678", "whatsapp");
    acdm_handoff_summary(&d, "Vraagt naar paspoort", NULL);
    acdm_handoff_line(&d, "bot", "Chatbot", "Waarmee kan ik helpen?", "2026-12-01T09:00:00Z", -1);
    acdm_handoff_line(&d, "visitor", "Klant", "Mijn paspoort\nis verlopen", NULL, 1764579600000LL);
    acdm_handoff_line(&d, "bot", NULL, NULL, NULL, -1);          /* no text: skipped */
    acdm_handoff_line(&d, "agent", NULL, "Ik help u", NULL, -1);
    char *lines, *json = acdm_handoff_end(&d, &lines);
    ck_assert_ptr_nonnull(json);
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    ck_assert_msg(j != NULL, "%s: %s", json, je.text);
    ck_assert_str_eq(json_string_value(json_object_get(j, "source")), "chatbot");
    ck_assert_str_eq(json_string_value(json_object_get(j, "conversation_id")), "c-17");
    json_t *c = json_object_get(j, "customer");
    ck_assert_str_eq(json_string_value(json_object_get(c, "name")), "Jan \"de\" Vries");
    ck_assert_ptr_null(json_object_get(c, "id"));
    ck_assert_str_eq(json_string_value(json_object_get(j, "summary")), "Vraagt naar paspoort");
    ck_assert_ptr_null(json_object_get(j, "intent"));
    json_t *t = json_object_get(j, "transcript");
    ck_assert_uint_eq(json_array_size(t), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(t, 1), "text")), "Mijn paspoort\nis verlopen");
    ck_assert(json_integer_value(json_object_get(json_array_get(t, 1), "time")) == 1764579600000LL);
    ck_assert_ptr_null(json_object_get(json_array_get(t, 2), "time"));
    ck_assert_str_eq(lines, "[2026-12-01T09:00:00Z] Chatbot: Waarmee kan ik helpen?\n"
                            "[1764579600000] Klant: Mijn paspoort\nis verlopen\n"
                            "agent: Ik help u\n");
    json_decref(j);
    free(json);
    free(lines);

    acdm_handoff_begin(&d, NULL, NULL);                           /* the least: an empty transcript */
    json = acdm_handoff_end(&d, &lines);
    ck_assert_str_eq(json, "{\"source\":\"plugin\",\"transcript\":[]}");
    ck_assert_str_eq(lines, "");
    free(json);
    free(lines);
}
END_TEST

/* a phone number acdm dials or transfers to (the desk's transfer, a phone's REFER, an outbound
 * call, a callback): what is dialled, what is refused */
START_TEST(transfer_targets_are_digits_with_an_optional_leading_plus)
{
    ck_assert(acdm_phone_number_ok("0301112233"));
    ck_assert(acdm_phone_number_ok("+31201234567"));
    ck_assert(acdm_phone_number_ok("112"));
    ck_assert(acdm_phone_number_ok("12345678901234567890123456789012"));   /* 32 */
    ck_assert(!acdm_phone_number_ok("123456789012345678901234567890123"));  /* 33 */
    ck_assert(!acdm_phone_number_ok(NULL));
    ck_assert(!acdm_phone_number_ok(""));
    ck_assert(!acdm_phone_number_ok("1"));
    ck_assert(!acdm_phone_number_ok("+1"));
    ck_assert(!acdm_phone_number_ok("+"));
    ck_assert(!acdm_phone_number_ok("0612+34"));       /* '+' only in front */
    ck_assert(!acdm_phone_number_ok("++31201234567"));
    ck_assert(!acdm_phone_number_ok("020 123 45 67")); /* the desk strips spaces before sending */
    ck_assert(!acdm_phone_number_ok("06-12"));
    ck_assert(!acdm_phone_number_ok("agent2"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("plugin_util");
    TCase *tc = tcase_create("helpers");
    tcase_add_test(tc, header_and_query_lookup);
    tcase_add_test(tc, transfer_targets_are_digits_with_an_optional_leading_plus);
    tcase_add_test(tc, secrets_compare_and_bearer);
    tcase_add_test(tc, problem_json_is_valid_json);
    tcase_add_test(tc, buffer_grows_and_escapes);
    tcase_add_test(tc, cfg_defaults_types_and_values);
    tcase_add_test(tc, cfg_errors_name_the_key);
    tcase_add_test(tc, cfg_list_that_does_not_fit_is_refused);
    tcase_add_test(tc, cfg_nested_object_names_the_path);
    tcase_add_test(tc, handoff_document_reads_back);
    tcase_add_test(tc, content_type_compare);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
