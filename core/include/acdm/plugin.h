/* acdm/plugin.h -- the channel plugin ABI: the one header a plugin includes.
 *
 * Two tables meet here. The plugin exports ONE symbol, acdm_plugin_entry(), returning a
 * static const acdm_plugin descriptor (its callbacks). The core hands every channel instance
 * an acdm_host table (the host functions) at init. One .so may serve several instances (two
 * websites, two WhatsApp numbers): every callback gets the instance, and the instance's own
 * memory (`priv`, instance_size bytes, zeroed) is allocated and freed by the core.
 *
 * Threads: every callback runs on the core thread and must never block. A plugin with a
 * blocking library (SIP stack, IMAP session) runs it in its own thread and calls back into
 * the core only through host->post(), the single thread-safe host function.
 *
 * Strings passed into callbacks are borrowed: valid for the duration of the call only.
 * Strings a plugin passes to the host are copied by the host before it returns.
 *
 * Versioning: abi_major must equal the core's; a plugin built against an older minor is
 * accepted as long as its struct_size covers every field the core reads; a plugin built against
 * a NEWER minor than the core's is refused at load (it could read fields this core does not
 * fill). The ABI only grows by appending: every struct that crosses carries struct_size, and a
 * plugin tests ACDM_HOST_HAS before calling a host function newer than the oldest core it
 * supports. Every minor that appends something bumps ACDM_PLUGIN_ABI_MINOR.
 *
 * ABI 1.1 appended: request headers and the raw query string for route handlers; submit_err
 * (the refusal's sentence); attachments read back, file-backed and with a content-id;
 * key/value entries with an expiry; update of a waiting bericht; device offers (the channel
 * rings the agent's device and reports the outcome) and agents' endpoints; originate (an
 * outbound contact started by the core); status_json per instance; the agent's message
 * payload (subject, cc, attachments, template) carried through to deliver.
 *
 * ABI 1.2 appended: transfer_out (the desk hands a call to an outside phone number) and
 * acdm_inbound.queued_ms (a contact submitted again keeps its original queue time).
 *
 * Media (voice): never drive media from host timers. A plugin that streams audio runs its
 * own clock in its own thread (one shared clock for all calls); host timers are for protocol
 * time-outs, not 20 ms packet pacing.
 */
#ifndef ACDM_PLUGIN_H
#define ACDM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ACDM_PLUGIN_ABI_MAJOR 1
#define ACDM_PLUGIN_ABI_MINOR 2

#if defined(__GNUC__)
#define ACDM_PLUGIN_EXPORT __attribute__((visibility("default")))
#define ACDM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ACDM_PLUGIN_EXPORT
#define ACDM_PRINTF(a, b)
#endif

typedef struct acdm_instance acdm_instance;   /* a running channel instance; core-owned */
typedef struct acdm_timer acdm_timer;         /* core-owned */
typedef struct acdm_watch acdm_watch;         /* core-owned */

enum { ACDM_PLOG_ERR = 0, ACDM_PLOG_WARN, ACDM_PLOG_NOTICE, ACDM_PLOG_INFO, ACDM_PLOG_DEBUG };

/* Return codes of host functions: 0 is success, failures are negative (the core's own codes;
 * acdm_plugin_strerror() in <acdm/plugin_util.h> names them). */
#define ACDM_P_OK        0
#define ACDM_P_EINVAL  (-1)   /* bad argument or input */
#define ACDM_P_ENOENT  (-2)   /* no such bericht, key, attachment, ... */
#define ACDM_P_EEXIST  (-3)   /* already exists */
#define ACDM_P_ESTATE  (-4)   /* not allowed in the bericht's current state */
#define ACDM_P_ECLOSED (-5)   /* queue closed */
#define ACDM_P_ENOMEM  (-6)
#define ACDM_P_EPERM   (-7)   /* not allowed for this instance / token */
#define ACDM_P_EIO     (-8)   /* storage or I/O failure */
#define ACDM_P_EFULL   (-9)   /* no capacity, or a limit reached */
#define ACDM_P_EABI   (-10)   /* struct_size too small for what the call reads */
#define ACDM_P_ETOOBIG (-20)  /* attachment over the core's cap */

/* Kind names a plugin may put in acdm_inbound.kind and its descriptor's kinds. */
#define ACDM_KIND_NAME_VOICE    "voice"
#define ACDM_KIND_NAME_CHAT     "chat"
#define ACDM_KIND_NAME_EMAIL    "email"
#define ACDM_KIND_NAME_SMS      "sms"
#define ACDM_KIND_NAME_WHATSAPP "whatsapp"
#define ACDM_KIND_NAME_CALLBACK "callback"
enum { ACDM_WATCH_READ = 1, ACDM_WATCH_WRITE = 2 };

/* ---------------------------------------------------------------- inbound berichten */

/* A new bericht (or a follow-up message in a conversation) from the outside world. */
typedef struct {
    size_t struct_size;          /* sizeof(acdm_inbound) */
    const char *kind;            /* "voice", "chat", "email", "sms", "whatsapp", "callback" */
    const char *queue;           /* NULL: the instance's configured queue */
    const char *from;            /* customer address (CLI, email, wa_id...); required */
    const char *customer_id;     /* NULL if unknown */
    const char *conversation;    /* conversation key: a follow-up joins the live bericht of THIS
                                  * instance with this key (keys are scoped by instance) */
    const char *idempotency_key; /* e.g. Message-ID, WhatsApp message id: unique per instance over
                                  * berichten and follow-ups; a redelivery (also of a follow-up)
                                  * is ACDM_SUBMIT_DUPLICATE and stores nothing */
    int priority;                /* 0..9, higher first; 0 default */
    const char *skills_json;     /* JSON array of {"name":..,"level":..}, or NULL */
    const char *subject;         /* may be NULL */
    const char *text;            /* may be NULL */
    const char *payload_json;    /* channel-owned JSON object, or NULL */
    /* ---- appended in ABI 1.1 (read only when struct_size covers it) ---- */
    uint32_t flags;              /* ACDM_IN_* */
    /* ---- appended in ABI 1.2 (read only when struct_size covers it) ---- */
    int64_t queued_ms;           /* 0: the queue time starts now. Else (epoch ms, not in the future)
                                  * the time the contact first waited: a caller back in the queue
                                  * after a transfer out that failed keeps their place in time */
} acdm_inbound;

/* acdm_inbound.flags */
#define ACDM_IN_WAIT_IF_CLOSED 0x1u  /* a closed queue takes the bericht anyway: it is stored as
                                      * queued (ACDM_SUBMIT_QUEUED, never _CLOSED) and waits,
                                      * offered to no one, until its queue opens (a supervisor
                                      * opens it, opening hours start); then it is offered with
                                      * its original queue time. For messages a customer leaves
                                      * ("Bericht achterlaten"), which must become work. */
#define ACDM_IN_ROUTE_AT_ONCE 0x2u   /* the bericht is routed while its commit runs, not after it:
                                      * the callback comes first with ACDM_SUBMIT_ROUTING and the
                                      * bericht's id (before any offer, on_event or offer_device
                                      * names it), then once more after the commit with the final
                                      * outcome. Acknowledge the customer only on the final one
                                      * (a voice call: its 200 OK), so an acknowledged bericht is
                                      * still durable; an offer may reach an agent a commit time
                                      * earlier. If the commit fails (or the key was a duplicate)
                                      * the bericht is ended before the final callback. For a
                                      * contact that waits on the line (a call). A core that does
                                      * not know the flag ignores it (one callback, after the
                                      * commit). A closed queue and a follow-up are never early. */

/* Outcome of a submit, given to acdm_submit_cb once the bericht is durable. */
typedef enum {
    ACDM_SUBMIT_QUEUED = 0,   /* new bericht stored and queued */
    ACDM_SUBMIT_DUPLICATE,    /* idempotency key seen before: bericht_id is the existing one */
    ACDM_SUBMIT_FOLLOWUP,     /* joined the live bericht of the same conversation */
    ACDM_SUBMIT_CLOSED,       /* queue closed: stored as closed; answer the customer with `text`
                               * (never with ACDM_IN_WAIT_IF_CLOSED: that one is _QUEUED) */
    ACDM_SUBMIT_ERROR,        /* rejected: `text` says why; nothing stored */
    ACDM_SUBMIT_ROUTING       /* only with ACDM_IN_ROUTE_AT_ONCE: queued and being routed, NOT
                               * durable yet; bericht_id is its id. The final outcome follows. */
} acdm_submit_outcome;

/* Called on the core thread. bericht_id and text are borrowed. */
typedef void (*acdm_submit_cb)(acdm_instance *inst, void *priv, void *user,
                               acdm_submit_outcome outcome, const char *bericht_id,
                               const char *text);

/* ---------------------------------------------------------------- events to the plugin */

typedef enum {
    ACDM_EV_QUEUED = 0,   /* bericht waiting; position/estimate in detail_json */
    ACDM_EV_OFFERED,      /* offered to an agent (agent set) */
    ACDM_EV_ACCEPTED,     /* an agent took it: connect the customer (voice: call the agent) */
    ACDM_EV_REQUEUED,     /* back in the queue (offer timeout, reject, agent gone); also sent
                           * with agent set when an offer is withdrawn because its agent
                           * logged out */
    ACDM_EV_TRANSFERRED,  /* moved to another queue or agent */
    ACDM_EV_ENDED,        /* the agent completed it, or it was abandoned */
    ACDM_EV__UNUSED6,     /* never sent (a closed queue answers through the submit callback:
                           * ACDM_SUBMIT_CLOSED with the closed text); the value is kept */
    ACDM_EV_WRAPUP,       /* the agent completed the conversation; wrap-up runs (ENDED follows
                           * when it is over): for the customer the conversation has ended */
    /* ---- appended (still ABI 1.0): a plugin ignores types it does not know ---- */
    ACDM_EV_HOLD,         /* the agent put the call on hold (voice, callback): play music on
                           * hold to the caller until RESUME */
    ACDM_EV_RESUME,       /* the hold ended: reconnect the caller to the agent. detail_json
                           * {"held_ms":n}, plus "reason" when not the agent's resume:
                           * "transfer" (TRANSFERRED follows), "hangup", "complete", "logout" */
    /* ---- appended in ABI 1.1 ---- */
    ACDM_EV_UPDATED       /* a waiting bericht's queue, priority or skills changed (by update()
                           * or a supervisor); detail_json {"queue":..,"from":..,"priority":..}
                           * ("from": the queue it left, only when moved) */
} acdm_event_type;

/* Names of the event types as the event log and the agent protocol spell them. */
#define ACDM_EV_NAMES { "queued", "offered", "accepted", "requeued", "transferred", "ended", \
                        NULL, "wrapup", "hold", "resume", "updated" }

typedef struct {
    size_t struct_size;
    acdm_event_type type;
    const char *bericht_id;
    const char *conversation;  /* may be NULL */
    const char *queue;
    const char *agent;         /* may be NULL */
    const char *detail_json;   /* may be NULL */
} acdm_event_info;

/* An agent's reply to the customer (chat text, email answer, SMS...). */
typedef struct {
    size_t struct_size;
    const char *bericht_id;
    const char *conversation;  /* may be NULL */
    const char *to;            /* customer address */
    const char *agent;         /* agent id */
    const char *text;
    /* The agent's message payload as the desk sent it (websocket `message` or REST), a JSON
     * object the channel reads, or NULL. Keys the bundled channels use: "subject", "cc" (array
     * of addresses), "attachments" (array of {"id":..} — read each with attachment_read),
     * "quote" (bool: include the quoted history), "template" ({"name":..,"language":..,
     * "params":[..]}). The core passes unknown keys through untouched. */
    const char *payload_json;
    /* ---- appended in ABI 1.1 ---- */
    const char *message_id;    /* the id of this reply in the thread (delivery_report refers to
                                * it with {"message":id}); NULL from an older core */
} acdm_reply;

/* ---------------------------------------------------------------- HTTP for plugins */

/* One request header: name lowercased, value as sent (borrowed). */
typedef struct {
    const char *name;
    const char *value;
} acdm_http_header;

typedef struct {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* the part after /channels/<instance>, e.g. "/handoff" */
    const char *query;         /* the query's arguments, each percent-decoded, joined with '&'
                                * (ABI 1.0; ambiguous when a value holds '&' or '+': use
                                * query_raw), or NULL */
    const char *body;          /* NUL-terminated body or NULL */
    size_t body_len;
    const char *authorization; /* Authorization header or NULL */
    const char *origin;        /* Origin header or NULL */
    const char *content_type;  /* Content-Type header or NULL */
    /* ---- appended in ABI 1.1 (always filled by a 1.1 core; a plugin of minor 1 is refused by
     * a 1.0 core, so it may read these without a check) ---- */
    size_t struct_size;        /* sizeof(acdm_http_request) of the core that built it */
    const char *query_raw;     /* the query (after '?') with each argument's name and value
                                * percent-encoded (RFC 3986 unreserved bytes as they are, every
                                * other byte %XX), in the client's order, or NULL: every argument
                                * decodes to exactly what the client sent (%2B a '+', %26 inside
                                * its value); the host's HTTP library keeps no copy of the bytes
                                * as sent, so the spelling is canonical. Decode with
                                * acdm_query_get() */
    const acdm_http_header *headers; /* the request headers (lowercase names), n_headers long:
                                * every header the HTTP library has a name for and the custom
                                * headers on the host's list (webhook signatures such as
                                * x-hub-signature-256 and x-twilio-signature, ids, x-forwarded-*,
                                * x-kannel-*; docs/plugin-guide.md §11) */
    size_t n_headers;
    const char *url;           /* the full URL the client asked for, as scheme://host/path?query
                                * from the Host header (X-Forwarded-Proto/Host are NOT trusted):
                                * what Twilio signs; a plugin with a public URL behind a proxy
                                * configures its own */
    const char *peer;          /* the client's IP address */
} acdm_http_request;

/* What the handler answers. The struct is the host's (on its stack): valid only during the
 * handler call. The host copies body after the handler returns.
 *
 * Deferred responses. A handler that cannot answer yet (typically: it submitted a bericht and
 * must wait for the submit callback) sets defer = 1 and keeps token; status, content_type and
 * body are then ignored and nothing is sent when the handler returns. It completes the response
 * later, on the core thread, with exactly one host->http_respond(token, &resp). Ownership:
 *   - token is filled by the host before the handler is called; it is the host's and stays
 *     valid until http_respond is called with it, or until the instance's stop has returned
 *     (the host then answers every response still deferred with 503 and frees it). After
 *     either, the token is dangling: forget it (a second http_respond is a use after free).
 *   - If the client went away meanwhile, http_respond still returns 0 and frees the pending
 *     state; nothing is sent.
 *   - Without defer the token is freed when the handler returns.
 *   - http_respond may also be called inside the handler (with defer set); the response is
 *     then sent at once.
 *
 * Acknowledgement rule (acdm's durability contract): a bericht is acknowledged to its sender
 * (HTTP 2xx, a protocol ACK, "200 OK" to a webhook, a delivery receipt) only after the submit
 * callback said ACDM_SUBMIT_QUEUED, _DUPLICATE, _FOLLOWUP or _CLOSED: only then is its row
 * committed and sure to survive a kill -9. Never answer 2xx from the handler that called
 * submit; defer, and answer from the submit callback. ACDM_SUBMIT_ERROR is answered with an
 * error (nothing was stored; a retry with the same idempotency key is safe).
 *
 * defer and token are the last fields: a host whose acdm_host lacks http_respond (see
 * ACDM_HOST_HAS) does not fill them; check before deferring. */
typedef struct {
    int status;                /* default 200 */
    const char *content_type;  /* default "application/json" */
    const char *body;          /* may be NULL */
    size_t body_len;           /* 0 with body set: strlen(body) */
    int defer;                 /* set by the handler: no response now, http_respond(token) later */
    void *token;               /* filled by the host before the handler; see above */
} acdm_http_response;

typedef void (*acdm_http_handler)(acdm_instance *inst, void *priv,
                                  const acdm_http_request *req, acdm_http_response *resp);

/* A websocket connection under /channels/<instance>/...; core-owned. */
typedef struct acdm_wsconn acdm_wsconn;

typedef struct {
    /* A client connects. req carries path, query, origin, authorization. Return 0 to accept,
     * negative to refuse (the upgrade gets 403). */
    int (*open)(acdm_instance *inst, void *priv, acdm_wsconn *c, const acdm_http_request *req);
    /* One complete text message (borrowed). */
    void (*message)(acdm_instance *inst, void *priv, acdm_wsconn *c, const char *data, size_t len);
    /* The connection is gone; c is invalid after this returns. */
    void (*close)(acdm_instance *inst, void *priv, acdm_wsconn *c);
} acdm_ws_callbacks;

/* Result of an outbound HTTP request. status = HTTP status, or negative on transport error
 * (error then says why). body is borrowed. */
typedef void (*acdm_http_done)(acdm_instance *inst, void *priv, void *user, int status,
                               const char *body, size_t body_len, const char *error);

typedef struct {
    size_t struct_size;
    const char *method;        /* default "GET" (or "POST" when body is set) */
    const char *url;
    const char *const *headers;/* NULL-terminated "Name: value" list, or NULL */
    const char *body;          /* may be NULL */
    size_t body_len;
    long timeout_ms;           /* 0 = 10000 */
} acdm_http_out;

/* ---------------------------------------------------------------- ABI 1.1 types */

/* An attachment to store (attachment_store). Exactly one of data or path. */
typedef struct {
    size_t struct_size;        /* sizeof(acdm_attachment_in) */
    const char *bericht_id;    /* the bericht it belongs to (this instance's) */
    const char *filename;      /* as the customer named it (sanitised by the core for display) */
    const char *content_type;  /* e.g. "image/png"; NULL: application/octet-stream */
    const char *content_id;    /* an inline part's Content-ID without <>, or NULL */
    const void *data;          /* in memory, len bytes, or NULL */
    size_t len;
    const char *path;          /* a file the host copies (the plugin may delete it after), or NULL */
} acdm_attachment_in;

/* What attachment_read tells about an attachment. */
typedef struct {
    size_t struct_size;        /* set by the plugin: sizeof(acdm_attachment_meta) */
    char bericht_id[64];
    char filename[256];
    char content_type[128];
    char content_id[256];      /* "" when none */
    uint64_t size;
} acdm_attachment_meta;

/* A change to a waiting bericht (update). NULL / -1 leave a field as it is. */
typedef struct {
    size_t struct_size;        /* sizeof(acdm_update) */
    const char *queue;         /* move to this queue (original queue time kept), or NULL */
    int priority;              /* 0..9, or -1 */
    const char *skills_json;   /* replaces the required skills, or NULL */
    const char *payload_json;  /* object merged into the payload (e.g. {"ivr":"1-2"}), or NULL */
} acdm_update;

typedef enum {
    ACDM_DEVICE_ANSWERED = 0,  /* the agent answered: the offer is accepted */
    ACDM_DEVICE_DECLINED,      /* the agent refused on the device: rejected */
    ACDM_DEVICE_BUSY,          /* busy: as ring-no-answer */
    ACDM_DEVICE_NOANSWER,      /* rang out */
    ACDM_DEVICE_FAILED         /* unreachable, error: as ring-no-answer, reason shown */
} acdm_device_outcome;

/* An offer to be rung on the agent's device (offer_device). */
typedef struct {
    size_t struct_size;
    const char *bericht_id;
    const char *agent_id;
    const char *agent_name;    /* display name */
    const char *kind;          /* the bericht's kind, e.g. "voice" */
    const char *endpoint;      /* the agent's endpoint for this plugin from the config, e.g. the
                                * agent's "phone": "register" or "sip:1001@10.0.0.5" */
    const char *from;          /* the customer's address (CLI) */
    const char *queue;
    uint32_t timeout_ms;       /* the queue's offer timeout: report NOANSWER by then (the core
                                * answers for the plugin 5 s later if it has not); 0 = no
                                * limit (the queue has no offer timeout) */
    const char *detail_json;   /* the offer as the desk gets it (subject, dialled number), or NULL */
} acdm_device_offer;

typedef enum {
    ACDM_ORIG_CONNECTED = 0,
    ACDM_ORIG_FAILED
} acdm_originate_outcome;

/* An outbound contact the core asks a plugin to start (originate): a callback call, an
 * agent's new mail, SMS or WhatsApp message. The bericht exists (direction "out") and is
 * already active with the agent; the plugin reports back with originate_result. */
typedef struct {
    size_t struct_size;
    const char *bericht_id;
    const char *kind;          /* "voice", "callback", "email", "sms", "whatsapp" */
    const char *to;            /* the customer's address */
    const char *agent_id;
    const char *agent_endpoint;/* the agent's endpoint for this plugin (voice: call the agent
                                * first, then the customer), or NULL */
    const char *text;          /* first message (mail body, SMS text), or NULL for a call */
    const char *payload_json;  /* subject, attachments, template... as in acdm_reply, or NULL */
} acdm_originate;

/* ---------------------------------------------------------------- the host table */

typedef struct acdm_host {
    size_t struct_size;
    uint32_t abi_major, abi_minor;

    /* Logging; the instance name is in every line. */
    void (*log)(acdm_instance *inst, int level, const char *fmt, ...) ACDM_PRINTF(3, 4);

    /* The instance's name (borrowed, lives as long as the instance). */
    const char *(*instance_name)(acdm_instance *inst);

    /* Submits a bericht or follow-up. Returns 0 and calls cb exactly once later (after
     * commit); returns a negative code (and never calls cb) if `in` is invalid. cb may be NULL. */
    int (*submit)(acdm_instance *inst, const acdm_inbound *in, acdm_submit_cb cb, void *user);

    /* The customer ended the bericht (hung up, closed the chat): reason e.g. "hangup". */
    int (*end)(acdm_instance *inst, const char *bericht_id, const char *reason);

    /* Thread-safe: runs fn(inst, priv, arg) on the core thread soon. Returns 0 or negative. */
    int (*post)(acdm_instance *inst, void (*fn)(acdm_instance *inst, void *priv, void *arg), void *arg);

    /* One-shot (repeat_ms 0) or repeating timer. Stop it with timer_stop (also frees it);
     * a one-shot timer frees itself after firing. */
    acdm_timer *(*timer_start)(acdm_instance *inst, uint64_t after_ms, uint64_t repeat_ms,
                               void (*cb)(acdm_instance *inst, void *priv, void *user), void *user);
    void (*timer_stop)(acdm_timer *t);

    /* Watches fd for ACDM_WATCH_READ/WRITE; cb gets the ready events. */
    acdm_watch *(*watch_fd)(acdm_instance *inst, int fd, int events,
                            void (*cb)(acdm_instance *inst, void *priv, void *user, int events),
                            void *user);
    void (*unwatch_fd)(acdm_watch *w);

    /* Registers an HTTP route under /channels/<instance><path>; path "/x" or prefix "/x/ *"
     * (a trailing "*" matches the rest). Method NULL = any. */
    int (*http_route)(acdm_instance *inst, const char *method, const char *path,
                      acdm_http_handler handler);

    /* Registers a websocket endpoint under /channels/<instance><path> (exact path). */
    int (*ws_route)(acdm_instance *inst, const char *path, const acdm_ws_callbacks *cb);
    /* Queues a text message (copied). 0 or negative if the connection is gone. */
    int (*ws_send)(acdm_wsconn *c, const char *data, size_t len);
    void (*ws_close)(acdm_wsconn *c, int code, const char *reason);
    /* One pointer of plugin data per connection. */
    void (*ws_set_user)(acdm_wsconn *c, void *user);
    void *(*ws_user)(acdm_wsconn *c);

    /* Outbound HTTP (libcurl, driven by the core loop). Returns 0 and calls done exactly once,
     * or returns negative (done never called). */
    int (*http_request)(acdm_instance *inst, const acdm_http_out *req, acdm_http_done done,
                        void *user);

    /* Per-instance key/value store (durable). value NULL deletes. get: *value malloc'd,
     * caller frees with host->free; ACDM_ENOENT (-2) if absent. */
    int (*kv_set)(acdm_instance *inst, const char *key, const char *value, size_t len);
    int (*kv_get)(acdm_instance *inst, const char *key, char **value, size_t *len);
    void (*free)(void *p);

    /* Reports the outcome of delivering an agent's reply (acdm_plugin.deliver): text is the
     * reply, payload_json e.g. {"delivery":"delivered"|"failed","attempts":n,"error":...}.
     * Recorded in the event log ("delivery") and shown to the agent; not a customer message
     * (those come in through submit with the conversation key). */
    int (*delivery_report)(acdm_instance *inst, const char *bericht_id, const char *text,
                      const char *payload_json);

    /* Completes a deferred HTTP response (acdm_http_response.defer) exactly once, on the core
     * thread (from another thread: post() first). resp is borrowed: status (default 200),
     * content_type (default "application/json"), body and body_len are read and the body is
     * copied before this returns; resp's defer and token are ignored. Frees the token. If the
     * client went away meanwhile nothing is sent and 0 is still returned. Returns ACDM_EINVAL
     * (-1) for a NULL token or resp (the token then stays pending). A response still deferred
     * when the instance's stop returns is answered 503 by the host. */
    int (*http_respond)(void *token, const acdm_http_response *resp);

    /* ---- appended for the web chat and chatbot channels (still ABI 1.0, unreleased) ---- */

    /* The customer is typing in bericht_id: the agent who has it gets a `typing` push
     * ({"type":"typing","bericht":id}). Cheap; call it at most every second or so.
     * ACDM_ENOENT if the bericht is not live or not this instance's. */
    int (*typing)(acdm_instance *inst, const char *bericht_id);

    /* Where a waiting bericht stands: *position (1 = next) among its queue's waiting berichten
     * of its kind, *estimate_s the expected wait in seconds (position x the queue's recent
     * gap between acceptances; 0 when the queue has no history yet). Pull, not push:
     * the plugin polls for the visitors it shows a position to (e.g. every 3 s from a timer).
     * 0, or ACDM_ENOENT when the bericht is not waiting (offered, active, ended, unknown). */
    int (*queue_position)(acdm_instance *inst, const char *bericht_id, uint32_t *position,
                          uint32_t *estimate_s);

    /* Stores a file the customer sent with bericht_id (copied) and writes its id into id_out.
     * The agent fetches it at GET /api/v1/attachments/{id}. The plugin enforces its own
     * per-instance size and type limits; the core refuses anything over its hard cap
     * (ACDM_ATTACHMENT_MAX bytes) with ACDM_ETOOBIG, and a bericht that is not this
     * instance's with ACDM_ENOENT. Durable at the next group commit, which comes before any
     * later submit's callback: refer to the id in the follow-up's payload_json, e.g.
     * {"attachments":[{"id":..,"filename":..,"content_type":..,"size":..}]}. */
    int (*attachment_put)(acdm_instance *inst, const char *bericht_id, const char *filename,
                          const char *content_type, const void *data, size_t len,
                          char id_out[64]);

    /* Checks an API bearer token (the value after "Bearer ") for a plugin's own HTTP routes:
     * 0 when it is an admin token or a token issued for this instance (role
     * "channel:<instance>", `acdmctl token create --role channel:<instance>`), ACDM_EPERM for
     * another valid token, ACDM_ENOENT for an unknown or revoked one. */
    int (*check_token)(acdm_instance *inst, const char *token);

    /* As end(), for a customer found gone later than they left (a web chat visitor whose page
     * closed is known to be gone only after the reconnect grace): a bericht still waiting
     * unoffered is recorded as abandoned ago_ms milliseconds ago (never before it was queued),
     * so its wait and the queue's quick-drop test count from when the customer really left.
     * Otherwise (offered, active) exactly end(). */
    int (*end_ago)(acdm_instance *inst, const char *bericht_id, const char *reason, uint32_t ago_ms);

    /* ---- appended in ABI 1.1 ---- */

    /* As submit(), and when it refuses (negative return; cb never called) it writes the
     * reason as a sentence naming the field into err, e.g. "from: required". err may be NULL. */
    int (*submit_err)(acdm_instance *inst, const acdm_inbound *in, acdm_submit_cb cb, void *user,
                      char *err, size_t errlen);

    /* Stores an attachment: from memory (data/len) or from a file the host copies (path; for
     * large files: mail 25 MB, WhatsApp documents 100 MB, recordings — never read whole into
     * memory). Cap: ACDM_ATTACHMENT_MAX in memory, ACDM_ATTACHMENT_FILE_MAX from a file
     * (ACDM_P_ETOOBIG). Durable before the next submit's callback, as attachment_put. */
    int (*attachment_store)(acdm_instance *inst, const acdm_attachment_in *a, char id_out[64]);
    /* Reads an attachment back (e.g. the files of an agent's reply, by the ids in the reply's
     * payload "attachments"): fills *meta and returns a readable file descriptor positioned at
     * 0 in *fd (the plugin closes it; read it on any thread). ACDM_P_ENOENT for an unknown id,
     * ACDM_P_EPERM for an attachment of another instance's bericht that is not in a reply to
     * one of this instance's berichten. */
    int (*attachment_read)(acdm_instance *inst, const char *id, acdm_attachment_meta *meta, int *fd);

    /* As kv_set with an expiry: the entry is gone ttl_s seconds from now (ttl_s 0: never).
     * Expired entries are removed by the core in the background (maps such as message id →
     * bericht for delivery states do not grow forever). */
    int (*kv_set_ttl)(acdm_instance *inst, const char *key, const char *value, size_t len,
                      uint32_t ttl_s);

    /* Changes a bericht of this instance that is still waiting (not offered, not active):
     * queue (keeps the original queue time), priority, skills; payload_json is merged into the
     * bericht's payload. An IVR choice uses it. 0, ACDM_P_ESTATE when it is no longer waiting,
     * ACDM_P_ENOENT unknown, ACDM_P_EINVAL with err naming the field, ACDM_P_ECLOSED with the
     * target queue's closed text in err when the target queue is closed (nothing changes),
     * ACDM_P_EABI when u->struct_size is shorter than acdm_update of ABI 1.1. */
    int (*update)(acdm_instance *inst, const char *bericht_id, const acdm_update *u,
                  char *err, size_t errlen);

    /* Device offers (a plugin whose descriptor has offer_device): the outcome of ringing the
     * agent's device for an offer it got through offer_device. ANSWERED is the agent's accept;
     * DECLINED the reject; BUSY, NOANSWER and FAILED the offer timing out (ring-no-answer:
     * the next agent is tried, the max_misses rule applies). reason (may be NULL) is logged
     * and shown on the desk. ACDM_P_ESTATE when the offer is no longer out (the agent accepted
     * on the desk, the customer left): the plugin then hangs up the device leg. */
    int (*device_result)(acdm_instance *inst, const char *bericht_id, const char *agent_id,
                         acdm_device_outcome outcome, const char *reason);
    /* Whether the agent's device for `kind` can be reached now (a softphone registered or
     * not). An agent whose device is unreachable gets no offers of that kind; the desk shows
     * reason. Agents start reachable only if their endpoint needs no registration. kind
     * "voice" also covers "callback". When the instance stops, agents whose endpoint is
     * "register" become unreachable again (until a new start reports them). */
    int (*device_reachable)(acdm_instance *inst, const char *agent_id, const char *kind,
                            int reachable, const char *reason);

    /* Reports an outbound contact started by originate (below): ACDM_ORIG_CONNECTED when the
     * customer is reached (voice: answered; mail/SMS: accepted by the server), FAILED with a
     * reason otherwise. The bericht then goes on as any other (end() when the customer hangs
     * up, delivery_report for the message). */
    int (*originate_result)(acdm_instance *inst, const char *bericht_id, acdm_originate_outcome o,
                            const char *reason);

    /* cb(inst, priv, user) runs once, on the core thread, when everything this instance queued
     * so far (kv_set/kv_set_ttl writes, attachments) is committed: e.g. answer a sender only
     * once an outbox entry written with kv_set is durable. 0, or negative (cb never called).
     * cb is NOT called when a write queued before the flush failed to commit (a full disk: the
     * instance log says so) nor after the instance stopped: keep `user` owned by the plugin's
     * own state (the outbox entry) so a call that never comes leaks nothing, and retry. */
    int (*flush)(acdm_instance *inst, void (*cb)(acdm_instance *inst, void *priv, void *user),
                 void *user);

    /* Gives one of this instance's live berichten a conversation key, typically an outbound one
     * (originate: an SMS, WhatsApp message or mail started from the desk) once the channel
     * knows it (the customer's number, the mail's Message-ID): the customer's reply submitted
     * with that key joins it as a follow-up (ACDM_SUBMIT_FOLLOWUP). Keys are scoped by instance,
     * as in acdm_inbound. Stored with the bericht (a restart keeps it). 0 (also when the bericht
     * has this key already); ACDM_P_ENOENT (not a live bericht of this instance); ACDM_P_ESTATE
     * (it has another key, or it ended); ACDM_P_EEXIST (another live bericht of this instance
     * has the key); ACDM_P_EINVAL (empty, or over 256 characters). */
    int (*set_conversation)(acdm_instance *inst, const char *bericht_id, const char *conversation);

    /* A queue as a customer-facing channel shows it before the customer writes (the web chat
     * widget: closed with the opening hours, nobody logged in): a JSON object (malloc'd; free
     * with host->free), or NULL for an unknown queue. queue NULL: the instance's queue; kind
     * (e.g. "chat", NULL: the instance's first kind) picks the closed text:
     *   {"queue","title","open":bool,
     *    "closed_by":null|"supervisor"|"emergency"|"schedule","closed_text":"..." (the queue's
     *    text for kind, also when open),
     *    "agents":{"logged_in":n,"available":n} (members who joined the queue; available:
     *    ready, not busy, not in wrap-up, as the dashboard and wallboard count them),
     *    "hours":null (no schedule: always open, unless closed by a person) or
     *      {"mon":[["08:00","17:00"]],...,"sun":[]} (local time of the core's time zone),
     *    "next_open_ms":epoch ms when the schedule opens next (only when closed by the
     *      schedule, within 14 days), "holiday":bool (today is one of the schedule's holidays)}
     * Cheap (no I/O): a plugin may call it every few seconds. */
    char *(*queue_info)(acdm_instance *inst, const char *queue, const char *kind);

    /* The customer's rating of one of this instance's berichten after the conversation (a
     * satisfaction question): detail_json {"score":1..5 and/or "helped":true|false} (at least
     * one; unknown keys refused). Recorded durably at most once per bericht: merged into its
     * payload as {"csat":{"score","helped","ts"}} and written to the event log as a "csat"
     * event with the bericht's queue, agent, channel and kind (the reports count it per queue,
     * channel and agent). 0; ACDM_P_ENOENT (not a bericht of this instance); ACDM_P_EEXIST
     * (rated already); ACDM_P_EINVAL with err naming the field. Allowed in any state (the
     * bericht has usually ended: the question comes after the conversation). */
    int (*feedback)(acdm_instance *inst, const char *bericht_id, const char *detail_json,
                    char *err, size_t errlen);

    /* New host functions are appended here; a plugin tests ACDM_HOST_HAS before calling one. */
} acdm_host;

#define ACDM_ATTACHMENT_MAX (10u * 1024u * 1024u)   /* the core's hard cap per attachment */
#define ACDM_ATTACHMENT_FILE_MAX (256ull * 1024u * 1024u) /* ... stored from a file */
#define ACDM_ETOOBIG (-20)                          /* attachment_put: over the core's cap */

/* True when the host table handed to init has `field` (a newer field than the core that runs
 * the plugin knows is simply not there: struct_size says how far the table goes). */
#define ACDM_HOST_HAS(host, field) \
    ((host)->struct_size >= offsetof(acdm_host, field) + sizeof((host)->field))

/* ---------------------------------------------------------------- the plugin descriptor */

typedef struct acdm_plugin {
    size_t struct_size;        /* sizeof(acdm_plugin) */
    uint32_t abi_major;        /* ACDM_PLUGIN_ABI_MAJOR */
    uint32_t abi_minor;        /* ACDM_PLUGIN_ABI_MINOR */
    const char *name;          /* unique plugin name, used by channel config "plugin" */
    const char *version;
    const char *description;
    const char *kinds;         /* comma-separated kinds it serves, e.g. "chat" */
    size_t instance_size;      /* bytes of per-instance memory (priv) the core allocates */

    /* Optional: validate an instance config without applying it (used before a reload is
     * applied, so a reload is all or nothing). 0 = fine, negative with a sentence in err. */
    int (*check_config)(const char *config_json, char *err, size_t errlen);

    /* Mandatory. config_json: the instance's "config" object (borrowed). Return 0, or
     * negative with a sentence in err; then no other callback is called for the instance. */
    int (*init)(acdm_instance *inst, void *priv, const acdm_host *host, const char *config_json,
                char *err, size_t errlen);
    /* Optional: start listening, threads, timers. Negative = failed (stop/destroy follow). */
    int (*start)(acdm_instance *inst, void *priv);
    /* Optional: apply a changed instance config; negative keeps the old (err says why). */
    int (*reload)(acdm_instance *inst, void *priv, const char *config_json, char *err, size_t errlen);
    /* Mandatory: send an agent's reply to the customer. 0 = sent or queued for sending. */
    int (*deliver)(acdm_instance *inst, void *priv, const acdm_reply *reply);
    /* Optional: life events of the instance's berichten. */
    void (*on_event)(acdm_instance *inst, void *priv, const acdm_event_info *ev);
    /* Optional: stop threads and I/O; after this no host call may be made. */
    void (*stop)(acdm_instance *inst, void *priv);
    /* Optional: free what init allocated (priv itself is freed by the core). */
    void (*destroy)(acdm_instance *inst, void *priv);

    /* ---- appended later: a plugin built before has a shorter struct_size (ACDM_PLUGIN_HAS) ---- */

    /* Optional: the agent who has bericht_id is typing (the agent desk sends `typing`). */
    void (*on_agent_typing)(acdm_instance *inst, void *priv, const char *bericht_id);

    /* ---- appended in ABI 1.1 ---- */

    /* Optional: the plugin rings agents' devices for its berichten. When set, every offer of
     * one of this instance's berichten to an agent who has an endpoint for this plugin (the
     * agent's config key named by device_endpoint_key, e.g. "phone") is handed here; the
     * offer timer then belongs to the device: the plugin reports with host->device_result.
     * The desk still shows the offer, and an accept there stands (the plugin gets
     * ACDM_EV_ACCEPTED as usual; voice: call the agent's auto-answering phone).
     * Not called for callback or outbound (originated) berichten: those are already with
     * their agent. Return 0, or negative: the offer is treated as FAILED at once. */
    int (*offer_device)(acdm_instance *inst, void *priv, const acdm_device_offer *o);
    /* The agents' config key whose value is passed as endpoint (e.g. "phone"); NULL: none. */
    const char *device_endpoint_key;

    /* Optional: start an outbound contact (see acdm_originate). 0 = started (originate_result
     * follows), negative with a sentence in err = refused (the desk shows it). */
    int (*originate)(acdm_instance *inst, void *priv, const acdm_originate *o, char *err,
                     size_t errlen);

    /* Optional: the instance's own figures as a JSON object (malloc'd; the host frees it with
     * free()), shown under "status" in GET /api/v1/plugins, GET /api/v1/health's channels and
     * `acdmctl plugins`: e.g. {"healthy":true,"last_fetch":"...","backlog":3,"last_error":null}.
     * A "healthy": false makes health report the instance degraded. Called on the core thread;
     * must be cheap (no I/O). */
    char *(*status_json)(acdm_instance *inst, void *priv);

    /* ---- appended in ABI 1.2 ---- */

    /* Optional (voice): a blind transfer of bericht_id's caller to an outside phone number, asked
     * on the desk by the agent who has the call in conversation (the core checked that, and that
     * the bericht is a call). The channel dials number and, once it has taken the call over,
     * ends the bericht for the agent with host->end (reason "transferred to <number>": wrap-up);
     * the caller talks on with the number outside routing. number: digits with an optional
     * leading '+'. 0 = started; negative with a sentence in err = refused (no outbound route,
     * not connected, not a number the channel can dial): the desk shows it and the call stays. */
    int (*transfer_out)(acdm_instance *inst, void *priv, const char *bericht_id, const char *number,
                        char *err, size_t errlen);
} acdm_plugin;

/* True when the descriptor d has `field` (a plugin built against an older minor lacks it). */
#define ACDM_PLUGIN_HAS(d, field) \
    ((d)->struct_size >= offsetof(acdm_plugin, field) + sizeof((d)->field))

/* Fills the fixed fields; optional callbacks default to NULL. */
#define ACDM_PLUGIN_INIT(...) \
    { .struct_size = sizeof(acdm_plugin), .abi_major = ACDM_PLUGIN_ABI_MAJOR, \
      .abi_minor = ACDM_PLUGIN_ABI_MINOR, __VA_ARGS__ }

#define ACDM_PLUGIN_ENTRY_SYMBOL "acdm_plugin_entry"
typedef const acdm_plugin *(*acdm_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif
