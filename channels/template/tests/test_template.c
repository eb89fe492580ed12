/* test_template.c -- the template channel's unit tests on the mock host (tests/mock/mock_host.h,
 * installed as <acdm/mock_host.h> with the plugin kit): the plugin's own sources are linked in,
 * no daemon code. Each test ends with the mock host's teardown check (no timer, watch or
 * deferred response left behind; no host call after stop). Build and run: `make unit` in the
 * acdm tree, or `make check` with the out-of-tree Makefile beside this folder. */
#include <acdm/plugin.h>
#include "mock_host.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const acdm_plugin *acdm_plugin_entry(void);

#define TOKEN "0123456789abcdef-token"
#define AUTH "Authorization: Bearer " TOKEN "\nContent-Type: application/json"

static mock_host *h;
static mock_inst *in;

static void start(const char *cfg)
{
    char err[256];
    h = mock_host_new();
    in = mock_start(h, acdm_plugin_entry(), "site", cfg, err, sizeof err);
    ck_assert_msg(in != NULL, "start refused: %s", err);
}

static void teardown_clean(void)
{
    char report[2048];
    if (in) mock_stop(in);
    in = NULL;
    ck_assert_msg(mock_host_check(h, report, sizeof report) == 0, "teardown: %s", report);
    mock_host_free(h);
    h = NULL;
}

static const char *refusal(const char *cfg)
{
    static char err[256];
    mock_host *x = mock_host_new();
    ck_assert_ptr_null(mock_start(x, acdm_plugin_entry(), "site", cfg, err, sizeof err));
    mock_host_free(x);
    return err;
}

START_TEST(config_is_checked_and_never_open)
{
    ck_assert_str_eq(refusal("{}"), "token: required (the bearer token senders use, at least 16 characters)");
    ck_assert_str_eq(refusal("{\"token\":\"short\"}"), "token: shorter than 16 bytes");
    ck_assert_str_eq(refusal("{\"token\":\"" TOKEN "\",\"reply_ur\":\"https://x\"}"),
                     "reply_ur: unknown key (did you mean \"reply_url\"?)");
    ck_assert_str_eq(refusal("{\"token\":\"" TOKEN "\",\"reply_url\":\"ftp://x\"}"),
                     "reply_url: expected an http:// or https:// URL, got \"ftp://x\"");
    ck_assert_str_eq(refusal("{\"token\":\"" TOKEN "\",\"kind\":\"voice\"}"),
                     "kind: expected chat, email, sms or whatsapp");
    char err[128];
    ck_assert_int_eq(mock_check_config(acdm_plugin_entry(), "{\"token\":\"" TOKEN "\"}", err, sizeof err), 0);
}
END_TEST

START_TEST(message_is_acknowledged_only_after_the_commit)
{
    start("{\"token\":\"" TOKEN "\"}");
    /* refusals answered at once, nothing submitted */
    mock_resp *r = mock_http(in, "POST", "/messages", "{\"from\":\"a\"}", "Content-Type: application/json");
    ck_assert_int_eq(mock_resp_status(r), 401);
    ck_assert_str_eq(mock_resp_content_type(r), "application/problem+json");
    r = mock_http(in, "POST", "/messages", "{\"from\":\"a\"}", "Authorization: Bearer " TOKEN);
    ck_assert_int_eq(mock_resp_status(r), 415);
    r = mock_http(in, "POST", "/messages", "{\"text\":\"hoi\"}", AUTH);
    ck_assert_int_eq(mock_resp_status(r), 400);
    ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "from: required"));
    r = mock_http(in, "POST", "/messages", "{\"from\":\"a\",\"txt\":\"hoi\"}", AUTH);
    ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "did you mean \\\"text\\\""));
    ck_assert_int_eq(mock_submits(h), 0);
    ck_assert_int_eq(mock_resp_status(mock_http(in, "GET", "/messages", NULL, AUTH)), 404);

    /* a good one waits for the commit */
    r = mock_http(in, "POST", "/messages",
                  "{\"from\":\"+31612345678\",\"text\":\"Mijn container is niet geleegd\",\"id\":\"m-1\"}", AUTH);
    ck_assert(mock_resp_deferred(r));
    ck_assert(!mock_resp_done(r));
    const mock_submit *s = mock_submit_get(h, -1);
    ck_assert_str_eq(s->kind, "chat");
    ck_assert_str_eq(s->from, "+31612345678");
    ck_assert_str_eq(s->idempotency_key, "m-1");
    ck_assert_str_eq(s->text, "Mijn container is niet geleegd");
    ck_assert_ptr_null(s->conversation);
    ck_assert_int_eq(mock_commit(h, ACDM_SUBMIT_QUEUED, "b-1", NULL), 0);
    ck_assert_int_eq(mock_resp_status(r), 201);
    ck_assert_str_eq(mock_resp_body(r), "{\"bericht\":\"b-1\",\"outcome\":\"queued\"}");

    /* a redelivery: 200 with the same bericht; a store failure: 503, safe to retry */
    r = mock_http(in, "POST", "/messages", "{\"from\":\"+31612345678\",\"text\":\"x\",\"id\":\"m-1\"}", AUTH);
    mock_commit(h, ACDM_SUBMIT_DUPLICATE, "b-1", NULL);
    ck_assert_int_eq(mock_resp_status(r), 200);
    ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "\"duplicate\""));
    r = mock_http(in, "POST", "/messages", "{\"from\":\"x\",\"text\":\"y\"}", AUTH);
    mock_commit(h, ACDM_SUBMIT_ERROR, NULL, "disk full");
    ck_assert_int_eq(mock_resp_status(r), 503);
    ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "disk full"));
    /* a closed queue: stored, the closed text goes back */
    r = mock_http(in, "POST", "/messages", "{\"from\":\"x\",\"text\":\"y\"}", AUTH);
    mock_commit(h, ACDM_SUBMIT_CLOSED, "b-3", "Wij zijn gesloten.");
    ck_assert_int_eq(mock_resp_status(r), 201);
    ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "\"closed_text\":\"Wij zijn gesloten.\""));
    /* the core refuses the submit: 400 with its sentence */
    mock_refuse_next_submit(h, ACDM_P_ENOENT, "queue: no such queue");
    r = mock_http(in, "POST", "/messages", "{\"from\":\"x\"}", AUTH);
    ck_assert_int_eq(mock_resp_status(r), 400);
    ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "queue: no such queue"));
    teardown_clean();
}
END_TEST

START_TEST(reply_is_delivered_and_reported)
{
    start("{\"token\":\"" TOKEN "\",\"reply_url\":\"https://crm.example/replies\"}");
    ck_assert_int_eq(mock_deliver(in, "b-1", NULL, "+31612345678", "agent1", "Wij komen \"morgen\"",
                                  NULL, "msg-7"), 0);
    const mock_out *o = mock_out_get(h, -1);
    ck_assert_str_eq(o->method, "POST");
    ck_assert_str_eq(o->url, "https://crm.example/replies");
    ck_assert_str_eq(o->body, "{\"bericht\":\"b-1\",\"to\":\"+31612345678\",\"agent\":\"agent1\","
                              "\"text\":\"Wij komen \\\"morgen\\\"\"}");
    ck_assert_ptr_nonnull(strstr(o->headers, "Authorization: Bearer " TOKEN));
    ck_assert_int_eq(mock_calls(h, "delivery_report"), 0);       /* not before the answer */
    mock_out_complete(h, -1, 200, "", NULL);
    const mock_call *c = mock_call_last(h, "delivery_report");
    ck_assert_str_eq(c->a, "b-1");
    ck_assert_str_eq(c->c, "{\"delivery\":\"delivered\",\"attempts\":1,\"message\":\"msg-7\"}");
    mock_deliver(in, "b-2", NULL, "x", "agent1", "t", NULL, NULL);
    mock_out_complete(h, -1, 502, "", NULL);
    ck_assert_str_eq(mock_call_last(h, "delivery_report")->c,
                     "{\"delivery\":\"failed\",\"attempts\":1,\"error\":\"HTTP 502 from reply_url\"}");
    mock_deliver(in, "b-3", NULL, "x", "agent1", "t", NULL, NULL);
    mock_out_complete(h, -1, -1, NULL, "connection refused");
    ck_assert_ptr_nonnull(strstr(mock_call_last(h, "delivery_report")->c, "connection refused"));
    char *st = mock_status_json(in);
    ck_assert_str_eq(st, "{\"healthy\":true,\"received\":0,\"delivered\":1,\"failed\":2,\"events\":0}");
    free(st);
    /* a reply still on its way when the instance stops is cancelled: no report after stop */
    mock_deliver(in, "b-4", NULL, "x", "agent1", "t", NULL, NULL);
    int before = mock_calls(h, "delivery_report");
    mock_stop(in);
    in = NULL;
    ck_assert_int_eq(mock_out_complete(h, -1, 200, "", NULL), -1);
    ck_assert_int_eq(mock_calls(h, "delivery_report"), before);
    teardown_clean();
}
END_TEST

START_TEST(events_and_reload)
{
    start("{\"token\":\"" TOKEN "\"}");
    ck_assert_int_eq(mock_deliver(in, "b-1", NULL, "x", "agent1", "t", NULL, NULL), 0);
    ck_assert_str_eq(mock_call_last(h, "delivery_report")->c,
                     "{\"delivery\":\"failed\",\"error\":\"no reply_url configured for this instance\"}");
    mock_event(in, ACDM_EV_ENDED, "b-1", NULL, NULL, "agent1", NULL);
    ck_assert(mock_log_has(h, "bericht b-1 ended"));
    ck_assert_int_eq(mock_outs(h), 0);                            /* notify_ended is off */
    char err[256];
    ck_assert_int_lt(mock_reload(in, "{\"token\":\"" TOKEN "\",\"notify_ended\":\"yes\"}", err, sizeof err), 0);
    ck_assert_str_eq(err, "notify_ended: expected true or false");
    ck_assert_int_eq(mock_reload(in, "{\"token\":\"" TOKEN "\",\"notify_ended\":true,"
                                     "\"reply_url\":\"http://bot.example/cb\"}", err, sizeof err), 0);
    mock_event(in, ACDM_EV_ENDED, "b-2", NULL, NULL, "agent1", NULL);
    ck_assert_str_eq(mock_out_get(h, -1)->body, "{\"bericht\":\"b-2\",\"event\":\"ended\"}");
    ck_assert_str_eq(mock_out_get(h, -1)->url, "http://bot.example/cb");
    mock_event(in, ACDM_EV_QUEUED, "b-3", NULL, NULL, NULL, "{\"position\":1}");
    ck_assert_int_eq(mock_outs(h), 1);
    teardown_clean();
}
END_TEST

/* The mock host's own teardown check catches a plugin that leaves a response unanswered: here
 * the instance stops while a message waits for its commit (the core answers 503 then). */
START_TEST(teardown_check_sees_an_unanswered_response)
{
    start("{\"token\":\"" TOKEN "\"}");
    mock_resp *r = mock_http(in, "POST", "/messages", "{\"from\":\"x\",\"text\":\"y\"}", AUTH);
    ck_assert(!mock_resp_done(r));
    mock_stop(in);
    in = NULL;
    ck_assert_int_eq(mock_resp_status(r), 503);
    ck_assert_int_eq(mock_commit(h, ACDM_SUBMIT_QUEUED, "b-1", NULL), 0);   /* too late: not called */
    char report[1024];
    ck_assert_int_eq(mock_host_check(h, report, sizeof report), 1);
    ck_assert_ptr_nonnull(strstr(report, "site: 1 deferred HTTP response(s) never answered"));
    mock_host_free(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("template");
    TCase *tc = tcase_create("template");
    tcase_add_test(tc, config_is_checked_and_never_open);
    tcase_add_test(tc, message_is_acknowledged_only_after_the_commit);
    tcase_add_test(tc, reply_is_delivered_and_reported);
    tcase_add_test(tc, events_and_reload);
    tcase_add_test(tc, teardown_check_sees_an_unanswered_response);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
