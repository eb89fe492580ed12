/* test_plugin_auth.c -- issue 9 items 5, 6 and 9 on the plugin kit's mock host, for the bundled
 * channels that accept input (plugins/webhook.so, chatbot.so, webchat.so, dlopen'ed): every
 * token they refuse goes through the host's check_token (where the core's failed-sign-in limiter
 * counts it), a blocked address (ACDM_P_EFULL) gets 429, JSON routes refuse other content types
 * (415, nothing submitted), and the web chat's sessions without a message cost nothing that
 * lasts while each client address has at most max_sessions_per_address. Every test ends with
 * the mock host's teardown check. */
#include <acdm/plugin.h>
#include "mock_host.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static mock_host *H;

static const acdm_plugin *open_plugin(const char *so)
{
    char err[256];
    const acdm_plugin *d = mock_plugin_open(H, so, err, sizeof err);
    ck_assert_msg(d != NULL, "%s", err);
    return d;
}

static mock_inst *start(const acdm_plugin *d, const char *name, const char *conf)
{
    char err[512];
    mock_inst *in = mock_start_queue(H, d, name, "algemeen", conf, err, sizeof err);
    ck_assert_msg(in != NULL, "start refused: %s", err);
    return in;
}

static void done(mock_inst **ins, int n)
{
    char report[2048];
    for (int k = 0; k < n; k++) mock_stop(ins[k]);
    ck_assert_msg(mock_host_check(H, report, sizeof report) == 0, "teardown: %s", report);
    mock_host_free(H);
}

#define JSON "Content-Type: application/json"
#define HANDOFF "{\"conversation_id\":\"c1\",\"customer\":{\"id\":\"k1\"},\"summary\":\"Vraag\"," \
                "\"transcript\":[{\"text\":\"Hoi\",\"author\":\"customer\"}]}"

START_TEST(refused_tokens_reach_the_host_and_a_blocked_address_gets_429)
{
    H = mock_host_new();
    mock_inst *wh = start(open_plugin("plugins/webhook.so"), "wh", "{\"token\":\"own-secret\"}");
    mock_inst *bot = start(open_plugin("plugins/chatbot.so"), "bot", "{}");
    mock_inst *site = start(open_plugin("plugins/webchat.so"), "site",
                            "{\"allowed_origins\":[\"https://www.example.nl\"]}");
    mock_token(H, "good", 0);                    /* an API token for the instance */
    mock_token(H, "blocked", ACDM_P_EFULL);      /* the limiter has blocked the caller */
    mock_token(H, "other", ACDM_P_EPERM);

    /* the webhook's own token is compared by the plugin: no host call */
    mock_resp *r = mock_http(wh, "POST", "/messages", "{\"from\":\"a\"}", "Authorization: Bearer own-secret\n" JSON);
    ck_assert(!mock_resp_done(r));
    ck_assert_int_eq(mock_commit(H, ACDM_SUBMIT_QUEUED, "b-1", NULL), 0);
    ck_assert_int_eq(mock_resp_status(r), 201);
    ck_assert_int_eq(mock_calls(H, "check_token"), 0);
    /* a wrong one goes to the host (the limiter counts it there) */
    r = mock_http(wh, "POST", "/messages", "{\"from\":\"a\"}", "Authorization: Bearer guess\n" JSON);
    ck_assert_int_eq(mock_resp_status(r), 401);
    ck_assert_int_eq(mock_calls(H, "check_token"), 1);
    ck_assert_str_eq(mock_call_last(H, "check_token")->a, "guess");
    /* blocked: 429 on every route of every plugin */
    const struct { mock_inst *in; const char *method, *path, *body; } routes[] = {
        {wh, "POST", "/messages", "{\"from\":\"a\"}"}, {wh, "POST", "/end", "{\"bericht\":\"b-1\"}"},
        {wh, "GET", "/status", NULL}, {bot, "POST", "/handoff", HANDOFF},
        {bot, "POST", "/messages", "{\"conversation_id\":\"c1\",\"text\":\"x\"}"},
        {site, "POST", "/handoff", HANDOFF}};
    for (size_t k = 0; k < sizeof routes / sizeof *routes; k++) {
        r = mock_http(routes[k].in, routes[k].method, routes[k].path, routes[k].body,
                      "Authorization: Bearer blocked\n" JSON);
        ck_assert_msg(mock_resp_status(r) == 429, "%s %s: %d", routes[k].method, routes[k].path,
                      mock_resp_status(r));
        ck_assert_str_eq(mock_resp_content_type(r), "application/problem+json");
        ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "too many failed sign-ins"));
    }
    ck_assert_int_eq(mock_calls(H, "check_token"), 7);
    /* the events websocket too */
    ck_assert_ptr_null(mock_ws_open(wh, "/events", "token=blocked", NULL));
    ck_assert_ptr_nonnull(mock_ws_open(wh, "/events", "token=own-secret", NULL));
    /* an API token for the instance works on the webhook; another instance's is 403 */
    r = mock_http(wh, "POST", "/messages", "{\"from\":\"a\",\"id\":\"m2\"}", "Authorization: Bearer good\n" JSON);
    ck_assert_int_eq(mock_commit(H, ACDM_SUBMIT_QUEUED, "b-2", NULL), 0);
    ck_assert_int_eq(mock_resp_status(r), 201);
    r = mock_http(wh, "GET", "/status", NULL, "Authorization: Bearer other");
    ck_assert_int_eq(mock_resp_status(r), 403);
    ck_assert_int_eq(mock_submits(H), 2);
    mock_inst *all[] = {wh, bot, site};
    done(all, 3);
}
END_TEST

START_TEST(json_routes_refuse_other_content_types)
{
    H = mock_host_new();
    mock_inst *wh = start(open_plugin("plugins/webhook.so"), "wh", "{\"token\":\"t\"}");
    mock_inst *bot = start(open_plugin("plugins/chatbot.so"), "bot", "{}");
    mock_inst *site = start(open_plugin("plugins/webchat.so"), "site",
                            "{\"allowed_origins\":[\"https://www.example.nl\"]}");
    mock_token(H, "good", 0);
    /* what a web page can send anywhere without a CORS preflight */
    const char *types[] = {"Content-Type: text/plain", "Content-Type: application/x-www-form-urlencoded",
                           "Content-Type: multipart/form-data; boundary=x", ""};
    const struct { mock_inst *in; const char *path, *auth, *body; } routes[] = {
        {wh, "/messages", "Authorization: Bearer t", "{\"from\":\"a\",\"text\":\"hoi\"}"},
        {wh, "/end", "Authorization: Bearer t", "{\"bericht\":\"b-1\"}"},
        {bot, "/handoff", "Authorization: Bearer good", HANDOFF},
        {site, "/handoff", "Authorization: Bearer good", HANDOFF}};
    for (size_t k = 0; k < sizeof routes / sizeof *routes; k++)
        for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
            char hd[256];
            snprintf(hd, sizeof hd, "%s\n%s", routes[k].auth, types[t]);
            mock_resp *r = mock_http(routes[k].in, "POST", routes[k].path, routes[k].body, hd);
            ck_assert_msg(mock_resp_status(r) == 415, "%s with %s: %d", routes[k].path, types[t],
                          mock_resp_status(r));
            ck_assert_ptr_nonnull(strstr(mock_resp_body(r), "application/json"));
        }
    ck_assert_int_eq(mock_submits(H), 0);
    /* application/json with a charset goes through */
    mock_resp *r = mock_http(wh, "POST", "/messages", "{\"from\":\"a\"}",
                             "Authorization: Bearer t\nContent-Type: Application/JSON; charset=utf-8");
    ck_assert_int_eq(mock_submits(H), 1);
    mock_commit(H, ACDM_SUBMIT_QUEUED, "b-1", NULL);
    ck_assert_int_eq(mock_resp_status(r), 201);
    mock_inst *all[] = {wh, bot, site};
    done(all, 3);
}
END_TEST

#define ORIGIN "Origin: https://www.example.nl"

START_TEST(webchat_sessions_per_address_and_empty_sessions)
{
    H = mock_host_new();
    mock_inst *site = start(open_plugin("plugins/webchat.so"), "site",
                            "{\"allowed_origins\":[\"https://www.example.nl\"],\"max_sessions\":3,"
                            "\"max_sessions_per_address\":2}");
    /* open-then-close from one address, far more often than max_sessions: nothing stays */
    mock_http_peer(H, "192.0.2.1");
    for (int k = 0; k < 50; k++) {
        mock_ws *c = mock_ws_open(site, "/ws", NULL, ORIGIN);
        ck_assert_msg(c != NULL, "upgrade %d refused", k);
        mock_ws_gone(c);
    }
    ck_assert_int_eq(mock_submits(H), 0);                  /* no message, no bericht */
    /* two held open from that address, the third is refused; another address gets in */
    mock_ws *a = mock_ws_open(site, "/ws", NULL, ORIGIN);
    mock_ws *b = mock_ws_open(site, "/ws", NULL, ORIGIN);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(mock_ws_open(site, "/ws", NULL, ORIGIN));
    mock_http_peer(H, "192.0.2.2");
    mock_ws *c = mock_ws_open(site, "/ws", NULL, ORIGIN);
    ck_assert_ptr_nonnull(c);
    ck_assert(mock_log_has(H, "max_sessions_per_address reached"));
    /* an empty session is gone with its connection: the address has room again */
    mock_http_peer(H, "192.0.2.1");
    mock_ws_gone(a);
    mock_ws *a2 = mock_ws_open(site, "/ws", NULL, ORIGIN);
    ck_assert_ptr_nonnull(a2);
    /* only the first message makes a bericht */
    mock_ws_say(b, "{\"type\":\"message\",\"text\":\"Hallo\"}");
    ck_assert_int_eq(mock_submits(H), 1);
    mock_commit(H, ACDM_SUBMIT_QUEUED, "b-1", NULL);
    mock_inst *all[] = {site};
    done(all, 1);
}
END_TEST

static Suite *auth_suite(void)
{
    Suite *s = suite_create("plugin_auth");
    TCase *tc = tcase_create("auth");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, refused_tokens_reach_the_host_and_a_blocked_address_gets_429);
    tcase_add_test(tc, json_routes_refuse_other_content_types);
    tcase_add_test(tc, webchat_sessions_per_address_and_empty_sessions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(auth_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
