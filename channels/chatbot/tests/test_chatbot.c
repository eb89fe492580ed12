/* test_chatbot.c -- the chatbot handoff channel's unit tests on the plugin kit's mock host, with
 * the plugin's sources linked in (no daemon code): config through the spec table, the handoff's
 * auth and validation, the acknowledgement after the commit, the handoff document (transcript
 * lines and payload), redelivery, follow-up messages, replies and the return to the bot
 * platform with their delivery reports, and work in flight when the instance stops. Every test
 * ends with the mock host's teardown check. */
#include <acdm/plugin.h>
#include "mock_host.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const acdm_plugin *acdm_plugin_entry(void);

static mock_host *h;
static mock_inst *in;

static void start(const char *cfg)
{
    char err[256];
    h = mock_host_new();
    mock_token(h, "good", 0);
    mock_token(h, "other", ACDM_P_EPERM);
    in = mock_start(h, acdm_plugin_entry(), "bot", cfg, err, sizeof err);
    ck_assert_msg(in != NULL, "start refused: %s", err);
}

static void done(void)
{
    char report[2048];
    if (in) mock_stop(in);
    in = NULL;
    ck_assert_msg(mock_host_check(h, report, sizeof report) == 0, "teardown: %s", report);
    mock_host_free(h);
}

static const char *refused(const char *cfg)
{
    static char err[256];
    return mock_check_config(acdm_plugin_entry(), cfg, err, sizeof err) < 0 ? err : NULL;
}

#define DOC "{\"conversation_id\":\"c1\",\"customer\":{\"id\":\"k1\",\"name\":\"Jan\"},\"transcript\":" \
            "[{\"text\":\"Hoi\",\"author\":\"customer\",\"time\":\"2026-12-01T09:00:00Z\"}," \
            "{\"text\":\"Waarmee kan ik helpen?\",\"author\":\"bot\",\"time\":1764579600000}]," \
            "\"summary\":\"Vraag over afval\",\"skills\":[\"afval\"],\"priority\":2}"
#define JSON_AUTH(tok) "Authorization: Bearer " tok "\nContent-Type: application/json"

START_TEST(config_through_the_spec_table)
{
    ck_assert_ptr_null(refused("{}"));
    ck_assert_ptr_null(refused("{\"reply_url\":\"https://bot.example/r\",\"return_url\":\"http://b/\","
                               "\"callback_token\":\"t\"}"));
    ck_assert_str_eq(refused("{\"reply_url\":\"x\"}"), "reply_url: expected an http:// or https:// URL, got \"x\"");
    ck_assert_str_eq(refused("{\"reply-url\":\"https://x\"}"), "reply-url: unknown key (did you mean \"reply_url\"?)");
    ck_assert_str_eq(refused("{\"callback_token\":\"\"}"), "callback_token: must not be empty");
    ck_assert_str_eq(refused("{\"callback_token\":5}"), "callback_token: expected a string");
}
END_TEST

START_TEST(handoff_auth_validation_and_ack_after_commit)
{
    start("{}");
    ck_assert_int_eq(mock_resp_status(mock_http(in, "POST", "/handoff", DOC, "Content-Type: application/json")), 401);
    ck_assert_int_eq(mock_resp_status(mock_http(in, "POST", "/handoff", DOC, JSON_AUTH("bad"))), 401);
    ck_assert_int_eq(mock_resp_status(mock_http(in, "POST", "/handoff", DOC, JSON_AUTH("other"))), 403);
    mock_resp *r = mock_http(in, "POST", "/handoff", "{\"conversation_id\":\"c1\"}", JSON_AUTH("good"));
    ck_assert_int_eq(mock_resp_status(r), 400);
    ck_assert_str_eq(mock_resp_content_type(r), "application/problem+json");
    ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "customer: required"));
    ck_assert_int_eq(mock_submits(h), 0);

    r = mock_http(in, "POST", "/handoff", DOC, JSON_AUTH("good"));
    ck_assert(!mock_resp_done(r));                 /* acknowledged only after the commit */
    const mock_submit *s = mock_submit_get(h, -1);
    ck_assert_str_eq(s->kind, "chat");
    ck_assert_str_eq(s->subject, "Vraag over afval");
    ck_assert_str_eq(s->conversation, "bot:c1");
    ck_assert_str_eq(s->idempotency_key, "handoff:c1");
    ck_assert_str_eq(s->from, "bot:k1");
    ck_assert_str_eq(s->customer_id, "k1");
    ck_assert_int_eq(s->priority, 2);
    ck_assert_str_eq(s->skills_json, "[\"afval\"]");
    ck_assert_str_eq(s->text, "[2026-12-01T09:00:00Z] customer: Hoi\n[1764579600000] bot: Waarmee kan ik helpen?\n");
    json_t *p = json_loads(s->payload_json, 0, NULL);   /* the handoff document (plugin_util.h) */
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(json_string_value(json_object_get(p, "source")), "chatbot");
    ck_assert_str_eq(json_string_value(json_object_get(p, "conversation_id")), "c1");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(p, "customer"), "name")), "Jan");
    ck_assert_uint_eq(json_array_size(json_object_get(p, "transcript")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(p, "transcript"), 1),
                                                       "author")), "bot");
    json_decref(p);
    mock_commit(h, ACDM_SUBMIT_QUEUED, "b-7", NULL);
    ck_assert_int_eq(mock_resp_status(r), 201);
    ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "\"bericht\":\"b-7\""));
    ck_assert_str_eq(mock_kv(in, "handoff:c1"), "b-7");

    /* redelivery: answered from the plugin's memory of the handoff, no second submit */
    r = mock_http(in, "POST", "/handoff", DOC, JSON_AUTH("good"));
    ck_assert_int_eq(mock_resp_status(r), 200);
    ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "\"outcome\":\"duplicate\""));
    ck_assert_int_eq(mock_submits(h), 1);

    /* a later customer message joins; a failed commit is a 503 to retry */
    r = mock_http(in, "POST", "/messages", "{\"conversation_id\":\"c1\",\"text\":\"Nog een vraag\"}", JSON_AUTH("good"));
    ck_assert_str_eq(mock_submit_get(h, -1)->conversation, "bot:c1");
    mock_commit(h, ACDM_SUBMIT_FOLLOWUP, "b-7", NULL);
    ck_assert_int_eq(mock_resp_status(r), 200);
    ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "\"outcome\":\"followup\""));
    r = mock_http(in, "POST", "/messages", "{\"conversation_id\":\"c1\",\"text\":\"x\"}", JSON_AUTH("good"));
    mock_commit(h, ACDM_SUBMIT_ERROR, NULL, "the store is not writable");
    ck_assert_int_eq(mock_resp_status(r), 503);
    ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "the store is not writable"));
    done();
}
END_TEST

START_TEST(replies_and_return_go_to_the_bot_platform)
{
    start("{\"reply_url\":\"https://bot.example/reply\",\"return_url\":\"https://bot.example/return\","
          "\"callback_token\":\"cb-secret\"}");
    ck_assert_int_eq(mock_deliver(in, "b-7", "bot:c1", "bot:k1", "agent1", "Dinsdag", NULL, NULL), 0);
    const mock_out *o = mock_out_get(h, -1);
    ck_assert_str_eq(o->url, "https://bot.example/reply");
    ck_assert_ptr_nonnull(strstr(o->headers, "Authorization: Bearer cb-secret"));
    json_t *j = json_loads(o->body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "conversation_id")), "c1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "text")), "Dinsdag");
    json_decref(j);
    mock_out_complete(h, -1, 204, NULL, NULL);
    ck_assert_ptr_nonnull(strstr(mock_call_last(h, "delivery_report")->c, "\"delivered\""));
    mock_deliver(in, "b-7", "bot:c1", "bot:k1", "agent1", "Nog iets", NULL, NULL);
    mock_out_complete(h, -1, -1, NULL, "connection refused");
    ck_assert_ptr_nonnull(strstr(mock_call_last(h, "delivery_report")->c, "\"failed\""));
    /* the agent ended it: the bot takes over again */
    mock_event(in, ACDM_EV_ENDED, "b-7", "bot:c1", "algemeen", "agent1", NULL);
    o = mock_out_get(h, -1);
    ck_assert_str_eq(o->url, "https://bot.example/return");
    ck_assert_ptr_nonnull(strstr(o->body, "\"event\":\"ended\""));
    mock_out_complete(h, -1, 500, "", NULL);
    ck_assert(mock_log_has(h, "did not take conversation of bericht b-7 back (status 500)"));
    done();
}
END_TEST

/* Stopped with a handoff waiting for its commit and a reply on its way: the host answers the
 * handoff 503 and cancels the request; the plugin frees both (ASan's leak check would fail). */
START_TEST(work_in_flight_when_the_instance_stops)
{
    start("{\"reply_url\":\"https://bot.example/reply\"}");
    mock_resp *r = mock_http(in, "POST", "/handoff", DOC, JSON_AUTH("good"));
    ck_assert_int_eq(mock_deliver(in, "b-1", "bot:c1", "bot:k1", "agent1", "x", NULL, NULL), 0);
    mock_stop(in);
    in = NULL;
    ck_assert_int_eq(mock_resp_status(r), 503);
    ck_assert_int_eq(mock_commit(h, ACDM_SUBMIT_QUEUED, "b-1", NULL), 0);   /* not called after stop */
    ck_assert_int_eq(mock_out_complete(h, -1, 200, "", NULL), -1);
    char report[1024];
    ck_assert_int_eq(mock_host_check(h, report, sizeof report), 1);      /* the handoff it owed */
    ck_assert_ptr_nonnull(strstr(report, "deferred HTTP response(s) never answered"));
    mock_host_free(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chatbot");
    TCase *tc = tcase_create("chatbot");
    tcase_add_test(tc, config_through_the_spec_table);
    tcase_add_test(tc, handoff_auth_validation_and_ack_after_commit);
    tcase_add_test(tc, replies_and_return_go_to_the_bot_platform);
    tcase_add_test(tc, work_in_flight_when_the_instance_stops);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
