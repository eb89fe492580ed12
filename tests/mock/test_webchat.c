/* test_webchat.c -- unit tests of the web chat plugin (plugins/webchat.so, dlopen'ed) on the
 * plugin kit's mock host (tests/mock/mock_host.h: no daemon code): config refusals, origin check,
 * the visitor protocol, submit ordering (acknowledge after commit; texts typed meanwhile join as
 * follow-ups), events, typing, deliver, a closed queue's leave-a-message; every test ends with
 * the mock host's teardown check. The chatbot's tests are channels/chatbot/tests/. */
#include <acdm/plugin.h>
#include "mock_host.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ the mock host and the visitor */

static mock_host *H;
static mock_inst *I;
static const acdm_plugin *D;

static void host_new(void)
{
    char err[256];
    H = mock_host_new();
    D = mock_plugin_open(H, "plugins/webchat.so", err, sizeof err);
    ck_assert_msg(D != NULL, "%s", err);
}

static void start(const char *conf)
{
    char err[256];
    I = mock_start_queue(H, D, "site", "algemeen", conf, err, sizeof err);
    ck_assert_msg(I != NULL, "start refused: %s", err);
}

static void host_free(void)
{
    char report[2048];
    if (I) mock_stop(I);
    I = NULL;
    ck_assert_msg(mock_host_check(H, report, sizeof report) == 0, "teardown: %s", report);
    mock_host_free(H);
}

static const char *check(const char *conf)
{
    static char err[512];
    return mock_check_config(D, conf, err, sizeof err) < 0 ? err : NULL;
}

/* The last message of type `type` the visitor got (parsed; caller decrefs), or NULL. */
static json_t *got(mock_ws *ws, const char *type)
{
    for (int k = mock_ws_count(ws) - 1; k >= 0; k--) {
        json_t *j = json_loads(mock_ws_msg(ws, k), 0, NULL);
        if (j && !strcmp(json_string_value(json_object_get(j, "type")), type)) return j;
        json_decref(j);
    }
    return NULL;
}

static mock_ws *ws_open_as(const char *origin, const char *query)
{
    char hd[256];
    snprintf(hd, sizeof hd, "Origin: %s", origin ? origin : "");
    return mock_ws_open(I, "/ws", query, origin ? hd : NULL);
}

static const mock_submit *last(void) { return mock_submit_get(H, -1); }

#define SITE "{\"allowed_origins\":[\"https://www.example.nl\"],\"max_message_chars\":20}"

/* ================================================================ tests */

START_TEST(config_errors_name_the_setting)
{
    host_new();
    ck_assert_ptr_nonnull(strstr(check("{}"), "allowed_origins: required"));
    ck_assert_ptr_nonnull(strstr(check("{\"allowed_origins\":[\"example.nl\"]}"), "allowed_origins[0]"));
    ck_assert_ptr_nonnull(strstr(check("{\"allowed_origins\":[\"*\"],\"colour\":1}"), "colour: unknown setting"));
    ck_assert_ptr_nonnull(strstr(check("{\"allowed_origins\":[\"*\"],\"bot\":{\"url\":\"ftp://x\"}}"), "bot.url"));
    ck_assert_ptr_nonnull(strstr(check("{\"allowed_origins\":[\"*\"],\"attachments\":{\"max_bytes\":99999999}}"),
                                 "attachments.max_bytes"));
    ck_assert_ptr_nonnull(strstr(check("{\"allowed_origins\":[\"*\"],\"texts\":{\"nope\":\"x\"}}"), "texts.nope"));
    ck_assert_ptr_nonnull(strstr(check("{\"allowed_origins\":[\"*\"],\"bot\":{\"url\":\"http://b/\",\"protocol\":\"dialogflow\"}}"),
                                 "bot.protocol: unknown protocol \"dialogflow\" (known: rasa)"));
    ck_assert_ptr_nonnull(strstr(check("{\"allowed_origins\":[\"*\"],\"bot\":{\"url\":\"http://b/\",\"timeout\":5}}"),
                                 "bot.timeout: unknown setting"));
    ck_assert_ptr_null(check("{\"allowed_origins\":[\"*\"],\"bot\":{\"url\":\"http://b/\",\"protocol\":\"rasa\"}}"));
    ck_assert_ptr_null(check(SITE));
    host_free();
}
END_TEST

START_TEST(origin_is_checked_and_hello_is_dutch)
{
    host_new();
    start(SITE);
    ck_assert_ptr_null(ws_open_as("https://evil.example.com", NULL));
    ck_assert_ptr_null(ws_open_as(NULL, NULL));
    mock_ws *ws = ws_open_as("https://www.example.nl", NULL);
    ck_assert_ptr_nonnull(ws);
    json_t *h = got(ws, "hello");
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(json_string_value(json_object_get(h, "state")), "new");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(h, "texts"), "send")), "Versturen");
    ck_assert_int_eq(strlen(json_string_value(json_object_get(h, "token"))), 32);
    json_decref(h);
    mock_ws_gone(ws);
    host_free();
}
END_TEST

START_TEST(visitor_messages_become_a_bericht_and_follow_ups)
{
    host_new();
    start(SITE);
    mock_ws *ws = ws_open_as("https://www.example.nl", NULL);
    ck_assert_ptr_nonnull(ws);
    mock_ws_say(ws, "{\"type\":\"message\",\"text\":\"Hallo\"}");
    ck_assert_int_eq(mock_submits(H), 1);
    ck_assert_str_eq(last()->kind, "chat");
    ck_assert(!strncmp(last()->from, "web:", 4));
    ck_assert(!strncmp(last()->conversation, "site:", 5));
    ck_assert_str_eq(last()->text, "Hallo");
    char conv[128];
    snprintf(conv, sizeof conv, "%s", last()->conversation);
    /* typed while the first submit is not committed: held, no second bericht */
    mock_ws_say(ws, "{\"type\":\"message\",\"text\":\"Nog iets\"}");
    ck_assert_int_eq(mock_submits(H), 1);
    ck_assert_int_eq(mock_pending(H), 1);
    mock_queue_position(H, "b-1", 3, 90);
    mock_commit(H, ACDM_SUBMIT_QUEUED, "b-1", NULL);
    ck_assert_int_eq(mock_submits(H), 2);         /* now it joins as a follow-up */
    ck_assert_str_eq(last()->text, "Nog iets");
    ck_assert_str_eq(last()->conversation, conv);
    json_t *q = got(ws, "queue");
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "position")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "estimate_s")), 90);
    json_decref(q);
    mock_commit(H, ACDM_SUBMIT_FOLLOWUP, "b-1", NULL);

    /* too long, malformed, unknown: clear errors, nothing submitted */
    mock_ws_say(ws, "{\"type\":\"message\",\"text\":\"123456789012345678901\"}");
    json_t *e = got(ws, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "too_long");
    ck_assert_str_eq(json_string_value(json_object_get(e, "text")), "Uw bericht is te lang: maximaal 20 tekens.");
    json_decref(e);
    mock_ws_say(ws, "{nope");
    e = got(ws, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "malformed");
    json_decref(e);
    ck_assert_int_eq(mock_submits(H), 2);

    /* the agent accepts, types, replies; the visitor types */
    mock_event(I, ACDM_EV_ACCEPTED, "b-1", conv, "algemeen", "agent1", NULL);
    json_t *st = got(ws, "state");
    ck_assert_str_eq(json_string_value(json_object_get(st, "state")), "active");
    json_decref(st);
    mock_agent_typing(I, "b-1");
    json_t *ty = got(ws, "typing");
    ck_assert_ptr_nonnull(ty);
    json_decref(ty);
    mock_ws_say(ws, "{\"type\":\"typing\"}");
    ck_assert_int_eq(mock_calls(H, "typing"), 1);
    ck_assert_str_eq(mock_call_last(H, "typing")->a, "b-1");
    mock_ws_say(ws, "{\"type\":\"typing\"}");         /* throttled: at most one a second */
    ck_assert_int_eq(mock_calls(H, "typing"), 1);
    ck_assert_int_eq(mock_deliver(I, "b-1", conv, "web:x", "agent1", "Goedemiddag", NULL, NULL), 0);
    json_t *m = got(ws, "message");
    ck_assert_str_eq(json_string_value(json_object_get(m, "from")), "agent");
    ck_assert_str_eq(json_string_value(json_object_get(m, "text")), "Goedemiddag");
    json_decref(m);
    ck_assert_ptr_nonnull(strstr(mock_call_last(H, "delivery_report")->c, "delivered"));

    /* a reload of the page: the resume token brings the same session and its transcript */
    json_t *h = got(ws, "hello");
    char tok[64], q2[80];
    snprintf(tok, sizeof tok, "%s", json_string_value(json_object_get(h, "token")));
    json_decref(h);
    mock_ws_gone(ws);
    snprintf(q2, sizeof q2, "resume=%s", tok);
    mock_ws *ws2 = ws_open_as("https://www.example.nl", q2);
    ck_assert_ptr_nonnull(ws2);
    h = got(ws2, "hello");
    ck_assert_str_eq(json_string_value(json_object_get(h, "token")), tok);
    ck_assert_str_eq(json_string_value(json_object_get(h, "state")), "active");
    ck_assert_int_ge(json_array_size(json_object_get(h, "transcript")), 3);
    json_decref(h);

    /* the visitor ends: the core hears it */
    mock_ws_say(ws2, "{\"type\":\"end\"}");
    ck_assert_int_eq(mock_calls(H, "end") + mock_calls(H, "end_ago"), 1);
    ck_assert_str_eq(mock_call_last(H, mock_calls(H, "end") ? "end" : "end_ago")->a, "b-1");
    mock_ws_gone(ws2);
    host_free();
}
END_TEST

START_TEST(closed_queue_offers_leave_a_message)
{
    host_new();
    start(SITE);
    mock_ws *ws = ws_open_as("https://www.example.nl", NULL);
    ck_assert_ptr_nonnull(ws);
    mock_ws_say(ws, "{\"type\":\"message\",\"text\":\"Hallo\"}");
    mock_commit(H, ACDM_SUBMIT_CLOSED, "b-9", "Wij zijn gesloten.");
    json_t *c = got(ws, "closed");
    ck_assert_str_eq(json_string_value(json_object_get(c, "text")), "Wij zijn gesloten.");
    json_decref(c);
    mock_ws_say(ws, "{\"type\":\"leave_message\",\"email\":\"a@b.nl\",\"text\":\"Bel mij\"}");
    ck_assert_str_eq(last()->kind, "email");
    ck_assert_str_eq(last()->from, "a@b.nl");
    ck_assert_str_eq(last()->text, "Bel mij");
    mock_commit(H, ACDM_SUBMIT_QUEUED, "b-10", NULL);
    json_t *l = got(ws, "left_message");
    ck_assert_ptr_nonnull(l);
    json_decref(l);
    mock_ws_gone(ws);
    host_free();
}
END_TEST

/* Nobody logged in to the queue (host->queue_info): the hello says so, the waiting estimate is
 * 0; once an agent logs in the widgets are told (queue_info push) and the estimate comes back.
 * After the agent's conversation ends the visitor is asked once (host->feedback). */
START_TEST(nobody_logged_in_and_the_rating)
{
    host_new();
    mock_queue_info(H, "{\"queue\":\"algemeen\",\"open\":true,\"closed_by\":null,\"closed_text\":\"Dicht.\","
                       "\"agents\":{\"logged_in\":0,\"available\":0},\"hours\":null}");
    start(SITE);
    mock_advance(H, 3100);                        /* the sweep reads the queue */
    mock_ws *ws = ws_open_as("https://www.example.nl", NULL);
    ck_assert_ptr_nonnull(ws);
    json_t *h = got(ws, "hello");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(json_object_get(h, "queue"), "agents"), "logged_in")), 0);
    ck_assert_ptr_null(json_object_get(h, "csat"));
    json_decref(h);
    mock_ws_say(ws, "{\"type\":\"message\",\"text\":\"Hallo\"}");
    char conv[128];
    snprintf(conv, sizeof conv, "%s", last()->conversation);
    mock_queue_position(H, "b-1", 1, 90);
    mock_commit(H, ACDM_SUBMIT_QUEUED, "b-1", NULL);
    json_t *q = got(ws, "queue");
    ck_assert_int_eq(json_integer_value(json_object_get(q, "position")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "estimate_s")), 0);   /* nobody: no estimate */
    json_decref(q);
    /* an agent logs in: pushed, and the estimate is given again */
    mock_queue_info(H, "{\"queue\":\"algemeen\",\"open\":true,\"closed_by\":null,\"closed_text\":\"Dicht.\","
                       "\"agents\":{\"logged_in\":1,\"available\":0},\"hours\":null}");
    mock_queue_position(H, "b-1", 1, 60);
    mock_advance(H, 3100);
    json_t *qi = got(ws, "queue_info");
    ck_assert_ptr_nonnull(qi);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(json_object_get(qi, "queue"), "agents"), "logged_in")), 1);
    json_decref(qi);
    q = got(ws, "queue");
    ck_assert_int_eq(json_integer_value(json_object_get(q, "estimate_s")), 60);
    json_decref(q);
    /* nothing to rate yet */
    mock_ws_say(ws, "{\"type\":\"csat\",\"score\":4}");
    json_t *e = got(ws, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "state");
    json_decref(e);
    ck_assert_int_eq(mock_calls(H, "feedback"), 0);
    mock_event(I, ACDM_EV_ACCEPTED, "b-1", conv, "algemeen", "agent1", NULL);
    mock_event(I, ACDM_EV_WRAPUP, "b-1", conv, "algemeen", "agent1", NULL);
    json_t *en = got(ws, "ended");
    ck_assert(json_is_true(json_object_get(en, "csat")));
    json_decref(en);
    mock_ws_say(ws, "{\"type\":\"csat\",\"score\":4,\"helped\":true}");
    ck_assert_int_eq(mock_calls(H, "feedback"), 1);
    ck_assert_str_eq(mock_call_last(H, "feedback")->a, "b-1");
    json_t *d = json_loads(mock_call_last(H, "feedback")->b, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "score")), 4);
    ck_assert(json_is_true(json_object_get(d, "helped")));
    json_decref(d);
    json_t *th = got(ws, "csat_thanks");
    ck_assert_ptr_nonnull(th);
    json_decref(th);
    mock_ws_say(ws, "{\"type\":\"csat\",\"score\":1}");        /* once per conversation */
    e = got(ws, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "rated");
    json_decref(e);
    ck_assert_int_eq(mock_calls(H, "feedback"), 1);
    /* a new conversation: a fresh hello with a new key for the next bericht */
    mock_ws_say(ws, "{\"type\":\"new\"}");
    h = got(ws, "hello");
    ck_assert_int_eq(json_array_size(json_object_get(h, "transcript")), 0);
    json_decref(h);
    mock_ws_say(ws, "{\"type\":\"message\",\"text\":\"Nog een vraag\"}");
    ck_assert_str_ne(last()->conversation, conv);
    mock_commit(H, ACDM_SUBMIT_QUEUED, "b-2", NULL);
    mock_ws_gone(ws);
    host_free();
}
END_TEST

static Suite *webchat_suite(void)
{
    Suite *s = suite_create("webchat");
    TCase *tc = tcase_create("plugins");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, config_errors_name_the_setting);
    tcase_add_test(tc, origin_is_checked_and_hello_is_dutch);
    tcase_add_test(tc, visitor_messages_become_a_bericht_and_follow_ups);
    tcase_add_test(tc, closed_queue_offers_leave_a_message);
    tcase_add_test(tc, nobody_logged_in_and_the_rating);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(webchat_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
