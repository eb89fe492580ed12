/* test_webchat.c -- unit tests of the webchat and chatbot plugins (plugins/webchat.so,
 * plugins/chatbot.so) on the real plugin host with a fake HTTP server and a mock engine, as
 * test_plugins.c does: config refusals, origin check, the visitor protocol, submit ordering
 * (acknowledge after commit; texts typed meanwhile join as follow-ups), events, typing, deliver,
 * the handoff endpoint's auth and validation. */
#include "plugins/plugins.h"
#include "net/http.h"
#include "base/log.h"
#include "fake_http.h"   /* routes and websockets driven directly, instead of core/net/http.c */
#include "plugin_cfg.h"    /* configs of channels for the host */

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define END ((const char *)NULL)

/* ================================================================ the visitor's websocket (fake_http.h) */

/* The last message of type `type` the visitor got (parsed; caller decrefs), or NULL. */
static json_t *got(acdm_ws *ws, const char *type)
{
    for (int k = ws->n - 1; k >= 0; k--) {
        json_t *j = json_loads(ws->msgs[k], 0, NULL);
        if (j && !strcmp(json_string_value(json_object_get(j, "type")), type)) return j;
        json_decref(j);
    }
    return NULL;
}

static int ws_open_as(acdm_ws *ws, const char *origin, const char *query)
{
    memset(ws, 0, sizeof *ws);
    fake_route *r = route("/channels/site/ws");
    struct acdm_req up = {.method = "GET", .path = "/channels/site/ws", .origin = origin, .query = query};
    return r->hd.open(r->user, ws, &up);
}
static void ws_say(acdm_ws *ws, const char *json)
{
    fake_route *r = route("/channels/site/ws");
    r->hd.message(r->user, ws, json, strlen(json));
}
static void ws_gone(acdm_ws *ws)
{
    fake_route *r = route("/channels/site/ws");
    r->hd.close(r->user, ws);
}

/* ================================================================ a mock engine */

typedef struct { acdm_instance *inst; acdm_submit_cb cb; void *user; } owed;
static struct {
    owed owed[16];
    int n_owed, submits, ends, typings, reports;
    char last_from[64], last_kind[16], last_conv[128], last_text[1024], last_subject[256],
         last_payload[2048], last_report[256], last_typing[64];
} eng;

static int mock_submit(void *e, acdm_instance *inst, const acdm_inbound *in, acdm_submit_cb cb, void *user)
{
    (void)e;
    if (in->queue && !strcmp(in->queue, "nope")) return ACDM_ENOENT;
    eng.submits++;
    snprintf(eng.last_from, sizeof eng.last_from, "%s", in->from);
    snprintf(eng.last_kind, sizeof eng.last_kind, "%s", in->kind);
    snprintf(eng.last_conv, sizeof eng.last_conv, "%s", in->conversation ? in->conversation : "");
    snprintf(eng.last_text, sizeof eng.last_text, "%s", in->text ? in->text : "");
    snprintf(eng.last_subject, sizeof eng.last_subject, "%s", in->subject ? in->subject : "");
    snprintf(eng.last_payload, sizeof eng.last_payload, "%s", in->payload_json ? in->payload_json : "");
    if (cb) eng.owed[eng.n_owed++] = (owed){inst, cb, user};
    return 0;
}
static int mock_end(void *e, acdm_instance *inst, const char *id, const char *reason)
{
    (void)e; (void)inst; (void)id; (void)reason;
    eng.ends++;
    return 0;
}
static int mock_report(void *e, acdm_instance *inst, const char *id, const char *text, const char *pl)
{
    (void)e; (void)inst; (void)id; (void)text;
    eng.reports++;
    snprintf(eng.last_report, sizeof eng.last_report, "%s", pl ? pl : "");
    return 0;
}
static int mock_typing(void *e, acdm_instance *inst, const char *id)
{
    (void)e; (void)inst;
    eng.typings++;
    snprintf(eng.last_typing, sizeof eng.last_typing, "%s", id);
    return 0;
}
static int mock_position(void *e, acdm_instance *inst, const char *id, uint32_t *pos, uint32_t *est)
{
    (void)e; (void)inst; (void)id;
    *pos = 3;
    *est = 90;
    return 0;
}
static int mock_check_token(void *e, acdm_instance *inst, const char *tok)
{
    (void)e; (void)inst;
    return !strcmp(tok, "good") ? 0 : !strcmp(tok, "other") ? ACDM_EPERM : ACDM_ENOENT;
}
static void commit_one(acdm_submit_outcome o, const char *id, const char *text)
{
    ck_assert_int_gt(eng.n_owed, 0);
    owed w = eng.owed[0];
    memmove(&eng.owed[0], &eng.owed[1], (size_t)(eng.n_owed - 1) * sizeof w);
    eng.n_owed--;
    w.cb(w.inst, NULL, w.user, o, id, text);
}

/* ================================================================ fixture */

static uv_loop_t loop;
static acdm_plugins *P;

static acdm_plugins *host_new(void)
{
    memset(&eng, 0, sizeof eng);
    memset(&fake_http, 0, sizeof fake_http);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    acdm_plugin_env env = {.loop = &loop, .http = &fake_http, .engine = &eng, .submit = mock_submit,
                           .end = mock_end, .delivery_report = mock_report, .typing = mock_typing,
                           .queue_position = mock_position, .check_token = mock_check_token};
    acdm_plugins *p = NULL;
    ck_assert_int_eq(acdm_plugins_create(&env, "plugins", &p), 0);
    char err[256];
    ck_assert_int_eq(acdm_plugins_load_file(p, "plugins/webchat.so", err, sizeof err), 0);
    ck_assert_int_eq(acdm_plugins_load_file(p, "plugins/chatbot.so", err, sizeof err), 0);
    return p;
}

static void host_free(acdm_plugins *p)
{
    acdm_plugins_destroy(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static const char *check(acdm_plugins *p, const char *plugin, const char *conf)
{
    static char err[512];
    acdm_config *c = cfg_make("x", plugin, conf, END);
    err[0] = 0;
    int rc = acdm_plugins_check(p, c, err, sizeof err);
    cfg_free(c);
    return rc ? err : NULL;
}

#define SITE "{\"allowed_origins\":[\"https://www.example.nl\"],\"max_message_chars\":20}"

/* ================================================================ tests */

START_TEST(config_errors_name_the_setting)
{
    P = host_new();
    ck_assert_ptr_nonnull(strstr(check(P, "webchat", "{}"), "allowed_origins: required"));
    ck_assert_ptr_nonnull(strstr(check(P, "webchat", "{\"allowed_origins\":[\"example.nl\"]}"), "allowed_origins[0]"));
    ck_assert_ptr_nonnull(strstr(check(P, "webchat", "{\"allowed_origins\":[\"*\"],\"colour\":1}"), "colour: unknown setting"));
    ck_assert_ptr_nonnull(strstr(check(P, "webchat", "{\"allowed_origins\":[\"*\"],\"bot\":{\"url\":\"ftp://x\"}}"), "bot.url"));
    ck_assert_ptr_nonnull(strstr(check(P, "webchat", "{\"allowed_origins\":[\"*\"],\"attachments\":{\"max_bytes\":99999999}}"),
                                 "attachments.max_bytes"));
    ck_assert_ptr_nonnull(strstr(check(P, "webchat", "{\"allowed_origins\":[\"*\"],\"texts\":{\"nope\":\"x\"}}"), "texts.nope"));
    ck_assert_ptr_nonnull(strstr(check(P, "webchat", "{\"allowed_origins\":[\"*\"],\"bot\":{\"url\":\"http://b/\",\"protocol\":\"dialogflow\"}}"),
                                 "bot.protocol: unknown protocol \"dialogflow\" (known: rasa)"));
    ck_assert_ptr_nonnull(strstr(check(P, "webchat", "{\"allowed_origins\":[\"*\"],\"bot\":{\"url\":\"http://b/\",\"timeout\":5}}"),
                                 "bot.timeout: unknown setting"));
    ck_assert_ptr_null(check(P, "webchat", "{\"allowed_origins\":[\"*\"],\"bot\":{\"url\":\"http://b/\",\"protocol\":\"rasa\"}}"));
    ck_assert_ptr_null(check(P, "webchat", SITE));
    ck_assert_ptr_nonnull(strstr(check(P, "chatbot", "{\"reply_url\":\"x\"}"), "reply_url"));
    ck_assert_ptr_null(check(P, "chatbot", "{}"));
    host_free(P);
}
END_TEST

START_TEST(origin_is_checked_and_hello_is_dutch)
{
    P = host_new();
    ck_assert_int_eq(configure(P, cfg_make("site", "webchat", SITE, END)), 0);
    static acdm_ws ws;
    ck_assert_int_lt(ws_open_as(&ws, "https://evil.example.com", NULL), 0);
    ck_assert_int_lt(ws_open_as(&ws, NULL, NULL), 0);
    ck_assert_int_eq(ws_open_as(&ws, "https://www.example.nl", NULL), 0);
    json_t *h = got(&ws, "hello");
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(json_string_value(json_object_get(h, "state")), "new");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(h, "texts"), "send")), "Versturen");
    ck_assert_int_eq(strlen(json_string_value(json_object_get(h, "token"))), 32);
    json_decref(h);
    ws_gone(&ws);
    host_free(P);
}
END_TEST

START_TEST(visitor_messages_become_a_bericht_and_follow_ups)
{
    P = host_new();
    ck_assert_int_eq(configure(P, cfg_make("site", "webchat", SITE, END)), 0);
    static acdm_ws ws;
    ck_assert_int_eq(ws_open_as(&ws, "https://www.example.nl", NULL), 0);
    ws_say(&ws, "{\"type\":\"message\",\"text\":\"Hallo\"}");
    ck_assert_int_eq(eng.submits, 1);
    ck_assert_str_eq(eng.last_kind, "chat");
    ck_assert(!strncmp(eng.last_from, "web:", 4));
    ck_assert(!strncmp(eng.last_conv, "site:", 5));
    ck_assert_str_eq(eng.last_text, "Hallo");
    /* typed while the first submit is not committed: held, no second bericht */
    ws_say(&ws, "{\"type\":\"message\",\"text\":\"Nog iets\"}");
    ck_assert_int_eq(eng.submits, 1);
    commit_one(ACDM_SUBMIT_QUEUED, "b-1", NULL);
    ck_assert_int_eq(eng.submits, 2);             /* now it joins as a follow-up */
    ck_assert_str_eq(eng.last_text, "Nog iets");
    json_t *q = got(&ws, "queue");
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "position")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "estimate_s")), 90);
    json_decref(q);
    commit_one(ACDM_SUBMIT_FOLLOWUP, "b-1", NULL);

    /* too long, malformed, unknown: clear errors, nothing submitted */
    ws_say(&ws, "{\"type\":\"message\",\"text\":\"123456789012345678901\"}");
    json_t *e = got(&ws, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "too_long");
    ck_assert_str_eq(json_string_value(json_object_get(e, "text")), "Uw bericht is te lang: maximaal 20 tekens.");
    json_decref(e);
    ws_say(&ws, "{nope");
    e = got(&ws, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "malformed");
    json_decref(e);
    ck_assert_int_eq(eng.submits, 2);

    /* the agent accepts, types, replies; the visitor types */
    acdm_event_info ev = {.struct_size = sizeof ev, .type = ACDM_EV_ACCEPTED, .bericht_id = "b-1",
                          .conversation = eng.last_conv, .queue = "algemeen", .agent = "agent1"};
    acdm_plugins_event(P, "site", &ev);
    json_t *st = got(&ws, "state");
    ck_assert_str_eq(json_string_value(json_object_get(st, "state")), "active");
    json_decref(st);
    acdm_plugins_agent_typing(P, "site", "b-1");
    json_t *ty = got(&ws, "typing");
    ck_assert_ptr_nonnull(ty);
    json_decref(ty);
    ws_say(&ws, "{\"type\":\"typing\"}");
    ck_assert_int_eq(eng.typings, 1);
    ck_assert_str_eq(eng.last_typing, "b-1");
    ws_say(&ws, "{\"type\":\"typing\"}");         /* throttled: at most one a second */
    ck_assert_int_eq(eng.typings, 1);
    acdm_reply r = {.struct_size = sizeof r, .bericht_id = "b-1", .conversation = eng.last_conv,
                    .to = "web:x", .agent = "agent1", .text = "Goedemiddag"};
    ck_assert_int_eq(acdm_plugins_deliver(P, "site", &r), 0);
    json_t *m = got(&ws, "message");
    ck_assert_str_eq(json_string_value(json_object_get(m, "from")), "agent");
    ck_assert_str_eq(json_string_value(json_object_get(m, "text")), "Goedemiddag");
    json_decref(m);
    ck_assert_ptr_nonnull(strstr(eng.last_report, "delivered"));

    /* a reload of the page: the resume token brings the same session and its transcript */
    json_t *h = got(&ws, "hello");
    char tok[64], q2[80];
    snprintf(tok, sizeof tok, "%s", json_string_value(json_object_get(h, "token")));
    json_decref(h);
    ws_gone(&ws);
    static acdm_ws ws2;
    snprintf(q2, sizeof q2, "resume=%s", tok);
    ck_assert_int_eq(ws_open_as(&ws2, "https://www.example.nl", q2), 0);
    h = got(&ws2, "hello");
    ck_assert_str_eq(json_string_value(json_object_get(h, "token")), tok);
    ck_assert_str_eq(json_string_value(json_object_get(h, "state")), "active");
    ck_assert_int_ge(json_array_size(json_object_get(h, "transcript")), 3);
    json_decref(h);

    /* the visitor ends: the core hears it */
    ws_say(&ws2, "{\"type\":\"end\"}");
    ck_assert_int_eq(eng.ends, 1);
    ws_gone(&ws2);
    host_free(P);
}
END_TEST

START_TEST(closed_queue_offers_leave_a_message)
{
    P = host_new();
    ck_assert_int_eq(configure(P, cfg_make("site", "webchat", SITE, END)), 0);
    static acdm_ws ws;
    ck_assert_int_eq(ws_open_as(&ws, "https://www.example.nl", NULL), 0);
    ws_say(&ws, "{\"type\":\"message\",\"text\":\"Hallo\"}");
    commit_one(ACDM_SUBMIT_CLOSED, "b-9", "Wij zijn gesloten.");
    json_t *c = got(&ws, "closed");
    ck_assert_str_eq(json_string_value(json_object_get(c, "text")), "Wij zijn gesloten.");
    json_decref(c);
    ws_say(&ws, "{\"type\":\"leave_message\",\"email\":\"a@b.nl\",\"text\":\"Bel mij\"}");
    ck_assert_str_eq(eng.last_kind, "email");
    ck_assert_str_eq(eng.last_from, "a@b.nl");
    ck_assert_str_eq(eng.last_text, "Bel mij");
    commit_one(ACDM_SUBMIT_QUEUED, "b-10", NULL);
    json_t *l = got(&ws, "left_message");
    ck_assert_ptr_nonnull(l);
    json_decref(l);
    ws_gone(&ws);
    host_free(P);
}
END_TEST

static struct acdm_req *post(const char *path, const char *auth, const char *body)
{
    static struct acdm_req r;
    memset(&r, 0, sizeof r);
    r.method = "POST"; r.path = path; r.auth = auth; r.body = body;
    fake_route *rt = route(path);
    rt->fn(rt->user, &r);
    return &r;
}

START_TEST(chatbot_handoff_auth_validation_and_ack_after_commit)
{
    P = host_new();
    ck_assert_int_eq(configure(P, cfg_make("bot", "chatbot", "{}", END)), 0);
    const char *doc = "{\"conversation_id\":\"c1\",\"customer\":{\"id\":\"k1\"},\"transcript\":"
                      "[{\"text\":\"Hoi\",\"author\":\"customer\"}],\"summary\":\"Vraag over afval\"}";
    ck_assert_int_eq(post("/channels/bot/handoff", NULL, doc)->status, 401);
    ck_assert_int_eq(post("/channels/bot/handoff", "Bearer bad", doc)->status, 401);
    ck_assert_int_eq(post("/channels/bot/handoff", "Bearer other", doc)->status, 403);
    struct acdm_req *r = post("/channels/bot/handoff", "Bearer good", "{\"conversation_id\":\"c1\"}");
    ck_assert_int_eq(r->status, 400);
    ck_assert_str_eq(r->ctype, "application/problem+json");
    ck_assert_ptr_nonnull(strstr(r->out, "customer: required"));
    ck_assert_int_eq(eng.submits, 0);
    r = post("/channels/bot/handoff", "Bearer good", doc);
    ck_assert(!r->replied);                        /* acknowledged only after the commit */
    ck_assert_int_eq(eng.submits, 1);
    ck_assert_str_eq(eng.last_subject, "Vraag over afval");
    ck_assert_ptr_nonnull(strstr(eng.last_text, "customer: Hoi"));
    ck_assert_ptr_nonnull(strstr(eng.last_payload, "\"transcript\""));
    ck_assert_str_eq(eng.last_conv, "bot:c1");
    commit_one(ACDM_SUBMIT_QUEUED, "b-7", NULL);
    ck_assert(r->replied);
    ck_assert_int_eq(r->status, 201);
    ck_assert_ptr_nonnull(strstr(r->out, "\"bericht\":\"b-7\""));
    /* redelivery: answered from the plugin's memory of the handoff, no second submit */
    r = post("/channels/bot/handoff", "Bearer good", doc);
    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_nonnull(strstr(r->out, "\"outcome\":\"duplicate\""));
    ck_assert_ptr_nonnull(strstr(r->out, "b-7"));
    ck_assert_int_eq(eng.submits, 1);
    host_free(P);
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
    tcase_add_test(tc, chatbot_handoff_auth_validation_and_ack_after_commit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    acdm_log_level = ACDM_LOG_WARN;
    SRunner *sr = srunner_create(webchat_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
