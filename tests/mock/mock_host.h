/* mock_host.h -- a mock acdm host for a channel plugin's unit tests: the plugin runs against a
 * real acdm_host table (ABI 1.1) with no daemon code — no loop, no HTTP server, no store — and
 * the test drives it and reads what it did:
 *
 *   - a manual clock: timers fire only when the test advances it (mock_advance);
 *   - HTTP requests and websocket connections come in from the test (mock_http, mock_ws_open),
 *     deferred responses are seen when the plugin completes them;
 *   - submits are held until the test commits them (mock_commit), as the store's group commit
 *     does: a plugin that acknowledges before its submit callback is caught;
 *   - agents' replies, life events and typing go in (mock_deliver, mock_event, ...);
 *   - outbound HTTP requests are recorded and answered by the test (mock_out_complete);
 *   - every host call is recorded (mock_calls, mock_call_last), misuse (a host call after stop,
 *     a token answered twice, timer_stop on a fired one-shot timer, a bad acdm_inbound) is a
 *     problem, and the teardown check (mock_stop, mock_host_check) reports every timer, fd
 *     watch and deferred response the plugin left behind when its stop and destroy returned.
 *
 * Framework-free: use it with check, cmocka, or plain asserts. Single-threaded except
 * host->post(), which a plugin's own threads may call (mock_run_posts runs what they posted).
 * Link: tests/mock/mock_host.c (or -lacdm-mock from an installed kit) and -ldl.
 *
 *   mock_host *h = mock_host_new();
 *   mock_inst *in = mock_start(h, acdm_plugin_entry(), "site", "{\"token\":\"s3cret\"}", err, sizeof err);
 *   mock_resp *r = mock_http(in, "POST", "/messages", "{\"from\":\"x\"}",
 *                            "Authorization: Bearer s3cret\nContent-Type: application/json");
 *   assert(!mock_resp_done(r));                  // deferred until the commit
 *   mock_commit(h, ACDM_SUBMIT_QUEUED, "b1", NULL);
 *   assert(mock_resp_status(r) == 201);
 *   mock_stop(in);
 *   assert(mock_host_check(h, report, sizeof report) == 0);
 *   mock_host_free(h);
 */
#ifndef ACDM_MOCK_HOST_H
#define ACDM_MOCK_HOST_H

#include <acdm/plugin.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mock_host mock_host;
typedef struct acdm_instance mock_inst;       /* one plugin instance run by the mock */
typedef struct acdm_wsconn mock_ws;           /* one websocket connection */
typedef struct mock_resp mock_resp;           /* one HTTP request's response */

/* ---------------------------------------------------------------- the host */

mock_host *mock_host_new(void);
/* Frees everything (instances still running are stopped first, which is a problem). */
void mock_host_free(mock_host *h);
/* The host table handed to init. By default all of ABI 1.1; a smaller size (e.g.
 * offsetof(acdm_host, submit_err)) plays an older core, so ACDM_HOST_HAS is false beyond it. */
void mock_host_table_size(mock_host *h, size_t struct_size);
/* Echo the plugin's log lines to stderr (also with MOCK_HOST_VERBOSE=1 in the environment). */
void mock_host_verbose(mock_host *h, int on);

/* The problems found so far (misuse and what teardown found), one per line in report; returns
 * how many. 0: clean. */
int mock_host_check(mock_host *h, char *report, size_t cap);

/* ---------------------------------------------------------------- the plugin and instances */

/* dlopen's a built plugin (.so) and returns its descriptor (the handle is closed by
 * mock_host_free); NULL with the reason in err. A plugin linked into the test binary passes its
 * acdm_plugin_entry() to mock_start instead. */
const acdm_plugin *mock_plugin_open(mock_host *h, const char *so_path, char *err, size_t errlen);

/* check_config (when the plugin has one), then init and start, as the core does for a channel
 * named name with that instance config (NULL: "{}"). Returns the running instance, or NULL with
 * the plugin's sentence in err (the instance is then gone: stop and destroy ran as the core
 * runs them). queue: the channel's default queue (may be NULL). */
mock_inst *mock_start(mock_host *h, const acdm_plugin *d, const char *name, const char *config_json,
                      char *err, size_t errlen);
mock_inst *mock_start_queue(mock_host *h, const acdm_plugin *d, const char *name, const char *queue,
                            const char *config_json, char *err, size_t errlen);
/* The plugin's check_config alone: 0 (also without one), or negative with err. */
int mock_check_config(const acdm_plugin *d, const char *config_json, char *err, size_t errlen);
/* The plugin's reload (a plugin without one: -1 "no reload"). */
int mock_reload(mock_inst *in, const char *config_json, char *err, size_t errlen);
/* Stops the instance as the core does: every websocket closed (the plugin's close runs), stop,
 * then what the plugin left is recorded as problems (timers still armed, fds still watched,
 * deferred responses not answered: those are answered 503 as the core does), the host's routes
 * released, destroy; the instance's memory is freed. No host call is allowed afterwards. */
void mock_stop(mock_inst *in);
void *mock_priv(mock_inst *in);               /* the plugin's instance memory */

/* ---------------------------------------------------------------- the loop and the clock */

uint64_t mock_now(mock_host *h);              /* ms on the manual clock (starts at 1,000,000) */
/* Moves the clock forward by ms, firing every timer that comes due in order (a repeating one as
 * often as it comes due), running posted work and delivering websocket closes first. Returns how
 * many timer callbacks ran. */
int mock_advance(mock_host *h, uint64_t ms);
/* One turn of the loop without moving the clock: posted work, websocket closes the plugin asked
 * for (its close callback), timers due now. Returns how many callbacks ran. */
int mock_run(mock_host *h);
/* Runs what the plugin's threads posted with host->post; returns how many ran. */
int mock_run_posts(mock_host *h);
/* How many timers the instance has armed now. */
int mock_timers(mock_inst *in);

/* fd watches: the test says an fd is ready (calls the plugin's callback; 0 when none watches
 * it), or polls every watched fd for real for up to timeout_ms (plugins with pipes/sockets). */
int mock_fd_ready(mock_host *h, int fd, int events);
int mock_poll(mock_host *h, int timeout_ms);
int mock_watches(mock_inst *in);

/* ---------------------------------------------------------------- HTTP and websockets in */

/* A request to /channels/<instance><path_query> ("/messages?x=1"). headers: "Name: value" lines
 * separated by '\n' (NULL: none); Authorization, Origin and Content-Type fill the 1.0 fields.
 * The response is owned by the host (until mock_host_free). No route: 404 from the host. */
mock_resp *mock_http(mock_inst *in, const char *method, const char *path_query, const char *body,
                     const char *headers);
int mock_resp_done(const mock_resp *r);       /* answered (at once or by http_respond) */
int mock_resp_status(const mock_resp *r);     /* 0 while deferred */
const char *mock_resp_body(const mock_resp *r);          /* "" before the answer */
const char *mock_resp_content_type(const mock_resp *r);
int mock_resp_deferred(const mock_resp *r);   /* the handler deferred it */
void mock_resp_gone(mock_resp *r);            /* the client went away (the answer is dropped) */
/* The peer address the next requests come from (default "127.0.0.1"). */
void mock_http_peer(mock_host *h, const char *peer);

/* A websocket upgrade to the instance's ws route at path (query may be NULL). NULL when there is
 * no such route or the plugin's open refused it. */
mock_ws *mock_ws_open(mock_inst *in, const char *path, const char *query, const char *headers);
void mock_ws_say(mock_ws *c, const char *text);          /* one text message from the client */
void mock_ws_gone(mock_ws *c);                /* the client closed: the plugin's close runs */
int mock_ws_count(const mock_ws *c);          /* messages the plugin sent on c */
const char *mock_ws_msg(const mock_ws *c, int i);        /* the i-th (negative: from the end) */
const char *mock_ws_last(const mock_ws *c);   /* "" before the first */
int mock_ws_closed(const mock_ws *c);         /* the close code the plugin sent (0: none) */

/* ---------------------------------------------------------------- submits and commits */

/* A submit as the plugin made it (strings copied). */
typedef struct {
    const char *kind, *queue, *from, *customer_id, *conversation, *idempotency_key, *skills_json,
               *subject, *text, *payload_json;
    int priority;
    int pending;                 /* its callback is still owed */
} mock_submit;

int mock_submits(mock_host *h);               /* how many submits were accepted so far */
const mock_submit *mock_submit_get(mock_host *h, int i);  /* the i-th (negative: from the end) */
int mock_pending(mock_host *h);               /* submits whose callback is owed */
/* Completes the oldest owed submit with outcome (the store committed it); bericht_id and text as
 * the core gives them (text: the closed text or the error). -1 when none is owed. */
int mock_commit(mock_host *h, acdm_submit_outcome outcome, const char *bericht_id, const char *text);
/* The next submit is refused with rc (negative) and reason (submit_err's sentence). */
void mock_refuse_next_submit(mock_host *h, int rc, const char *reason);

/* ---------------------------------------------------------------- the core's side */

/* An agent's reply to the plugin's deliver (payload_json, message_id may be NULL). */
int mock_deliver(mock_inst *in, const char *bericht_id, const char *conversation, const char *to,
                 const char *agent, const char *text, const char *payload_json,
                 const char *message_id);
/* A life event of one of the instance's berichten. */
void mock_event(mock_inst *in, acdm_event_type type, const char *bericht_id, const char *conversation,
                const char *queue, const char *agent, const char *detail_json);
void mock_agent_typing(mock_inst *in, const char *bericht_id);
/* What check_token answers for token (default: ACDM_P_ENOENT for every token). */
void mock_token(mock_host *h, const char *token, int rc);
/* What queue_position answers for bericht_id (default: ACDM_P_ENOENT). */
void mock_queue_position(mock_host *h, const char *bericht_id, uint32_t position, uint32_t estimate_s);
/* What queue_info answers (a JSON object as the core's, see plugin.h; NULL: NULL, the default).
 * feedback records each call ("feedback": a = bericht, b = detail) and answers 0 the first time
 * per bericht, ACDM_P_EEXIST after, as the core. */
void mock_queue_info(mock_host *h, const char *json);
/* The status_json of the plugin (malloc'd; free it), or NULL. */
char *mock_status_json(mock_inst *in);

/* ---------------------------------------------------------------- outbound HTTP */

typedef struct {
    const char *method, *url, *body, *headers;  /* headers: the lines joined with '\n' */
    long timeout_ms;
    int pending;
} mock_out;

int mock_outs(mock_host *h);
const mock_out *mock_out_get(mock_host *h, int i);        /* negative: from the end */
/* Answers the i-th request: status (negative: a transport error with error), body. */
int mock_out_complete(mock_host *h, int i, int status, const char *body, const char *error);

/* ---------------------------------------------------------------- recorded host calls */

/* One host call: name is the acdm_host field ("end", "delivery_report", "typing", "log",
 * "attachment_put", "update", "device_result", "originate_result", "kv_set", ...); a and b its
 * first two string arguments (bericht id, reason / text ...), c a third (payload JSON, file
 * name), n a number (log level, ago_ms, outcome, length). "flush" runs its callback at the next
 * clock step (a 0 ms timer: a "timer_start" is recorded too); "set_conversation" records (a: id,
 * b: key) and returns 0. */
typedef struct {
    const char *name, *a, *b, *c;
    long long n;
} mock_call;

int mock_calls(mock_host *h, const char *name);           /* how many calls of that name */
const mock_call *mock_call_last(mock_host *h, const char *name);  /* NULL: none */
/* 1 when a log line of the plugin contains text. */
int mock_log_has(mock_host *h, const char *text);
/* The key/value store of an instance (NULL: absent or expired); borrowed. */
const char *mock_kv(mock_inst *in, const char *key);

#ifdef __cplusplus
}
#endif
#endif
