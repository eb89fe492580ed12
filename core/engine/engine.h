/* engine.h -- the daemon's core: one loop tying config, model, store, HTTP and plugins together. */
#ifndef ACDM_ENGINE_H
#define ACDM_ENGINE_H

#include <uv.h>
#include <jansson.h>

#include "base/acdm.h"
#include "config/config.h"
#include "net/http.h"
#include "model/model.h"
#include "plugins/plugins.h"
#include "store/store.h"

typedef struct acdm_engine acdm_engine;

typedef struct acdm_engine_module acdm_engine_module;

typedef struct {
    const acdm_engine_module *const *modules;   /* NULL-terminated, started in this order */
    const char *config_path;
    const char *listen;      /* "host:port" overriding the config, or NULL */
    const char *data_dir;    /* overriding the config, or NULL */
    /* --init: start with a new empty store although the data folder held one (its acdm.db is
     * missing or empty); without it that is refused */
    bool init;
    /* --salvage: start although the recovery read of waiting berichten failed (a damaged
     * store), with what could be read; health says what was not restored */
    bool salvage;
    const char *log_format;  /* --log-format: "text" or "json" overriding the config, or NULL */
} acdm_engine_opts;

/* A token's identity once checked. */
typedef struct {
    char role[32];           /* admin, supervisor, agent, channel:<instance> */
    char name[ACDM_NAME_MAX + 1];
    int64_t until_ms;        /* a JWT: refused from this time on (exp + leeway); 0: no expiry (API token) */
} acdm_principal;

/* The engine is opaque above engine/: what the layers above use of it. */
uv_loop_t *acdm_engine_loop(acdm_engine *e);
acdm_model *acdm_engine_model(acdm_engine *e);
acdm_store *acdm_engine_store(acdm_engine *e);   /* NULL once closed (shutdown) */
acdm_http *acdm_engine_http(acdm_engine *e);
acdm_plugins *acdm_engine_plugins(acdm_engine *e);   /* NULL when the plugin folder is unusable */
struct acdm_outbound *acdm_engine_outbound(acdm_engine *e);   /* the one outbound client */
bool acdm_engine_stopping(const acdm_engine *e);
/* Started with --salvage over a damaged store: a sentence saying what was not restored (health
 * shows it while this process runs); NULL after a clean start. */
const char *acdm_engine_salvage_report(const acdm_engine *e);
const char *acdm_engine_config_path(const acdm_engine *e);   /* the main config file */


/* Loads config, opens the store, restores waiting berichten, loads plugins, starts HTTP.
 * On failure returns negative with a sentence in err. */
int acdm_engine_create(const acdm_engine_opts *opts, acdm_engine **out, char *err, size_t errlen);
int acdm_engine_run(acdm_engine *e);      /* until SIGTERM/SIGINT or acdm_engine_stop */
void acdm_engine_stop(acdm_engine *e);
void acdm_engine_destroy(acdm_engine *e);

/* Re-reads the config file and applies it all or nothing. 0, or negative with err. */
int acdm_engine_reload(acdm_engine *e, char *err, size_t errlen);
/* Opens or closes a queue through the same path as a reload (persisted as an override). */
int acdm_engine_queue_set_closed(acdm_engine *e, const char *queue, bool closed, char *err, size_t errlen);
/* The same, remembering who did it (shown on the supervisor dashboard: "closed by petra at 10:12"). */
int acdm_engine_queue_set_closed_by(acdm_engine *e, const char *queue, bool closed, const char *by,
                                    char *err, size_t errlen);

/* Checks a bearer token: 0 and *who filled, or ACDM_ENOENT. A token of three dot-separated
 * parts is an OpenID Connect JWT (config "oidc"), others are API tokens. */
int acdm_engine_auth(acdm_engine *e, const char *token, acdm_principal *who);
/* An agent removed (DELETE /api/v1/agents/{id}): every API token of role agent bound to that
 * id is revoked in the store (committed on return) and dropped from the token cache, so it
 * stays refused even when the same id is added again. *n_revoked (may be NULL): how many. */
int acdm_engine_revoke_agent_tokens(acdm_engine *e, const char *agent_id, int *n_revoked);
/* The same for a request from a peer (an IP address, from peer(ctx), asked only when needed:
 * while no address has failures on record, or the token is good, it is not looked up):
 * ACDM_EFULL with *retry_after_s when that address had more than 10 failed bearer checks within
 * 60 s (answer 429); failures counted. */
typedef const char *(*acdm_peer_fn)(void *ctx);
/* Whether the address is blocked by the failed sign-in limit now (*retry_after_s then set). */
bool acdm_engine_peer_blocked(acdm_engine *e, const char *peer, int *retry_after_s);
int acdm_engine_auth_peer(acdm_engine *e, const char *token, acdm_peer_fn peer, void *ctx,
                          acdm_principal *who, int *retry_after_s);

/* Audit log (R32): appends an event of type "audit" with detail {actor, role, action, target}
 * for a supervisor/admin action. who may be NULL (a token-less action: signal, CLI on the host;
 * actor "system"). action: a short verb such as "queue_close", "reload", "agent_logout";
 * target: what it acted on (queue, agent id, ...), may be NULL. extra: optional JSON object
 * (borrowed) merged into the detail. Grouped with the event log; never fails the action. */
void acdm_engine_audit(acdm_engine *e, const acdm_principal *who, const char *action,
                       const char *target, json_t *extra);

/* The shared intake of every bericht (REST API and plugins). Validates, stores, and calls
 * done exactly once after the commit (unless it returns negative: then err says why). */
typedef void (*acdm_intake_done)(acdm_engine *e, void *user, acdm_submit_outcome outcome,
                                 const char *bericht_id, const char *text, int http_status);
typedef struct {
    const char *channel;     /* instance name, or "api" */
    acdm_kind kind;
    const char *queue;
    const char *from;
    const char *customer_id;
    const char *conversation;
    const char *idem_key;
    int priority;
    json_t *skills;          /* borrowed array or NULL */
    const char *subject, *text;
    json_t *payload;         /* borrowed object or NULL */
    bool wait_if_closed;     /* a closed queue takes it as queued, offered once it opens */
    bool route_at_once;      /* routed while the commit runs: done() first with
                              * ACDM_SUBMIT_ROUTING, then with the outcome (ACDM_IN_ROUTE_AT_ONCE) */
    int64_t queued_ms;       /* 0: now; else the original queue time (not in the future) */
} acdm_intake;
int acdm_engine_intake(acdm_engine *e, const acdm_intake *in, acdm_intake_done done, void *user,
                       char *err, size_t errlen);

/* The bericht as JSON (live from the model, else from the store); NULL if unknown. */
json_t *acdm_engine_bericht_json(acdm_engine *e, const char *id);
json_t *acdm_engine_queues_json(acdm_engine *e);
json_t *acdm_engine_agent_json(acdm_engine *e, acdm_agent *a);
/* The short subject/summary kept for a live bericht (from its payload at submit), or NULL. */
const char *acdm_engine_subject(acdm_engine *e, const char *id);

/* An agent's reply text: stored in the thread and delivered through the bericht's channel. */
/* The agent's reply text (may be NULL when payload is given) and payload (a JSON object the
 * channel reads: subject, cc, attachments by id, quote, template; borrowed; may be NULL),
 * validated (err names the field), stored in the thread and handed to the channel's deliver.
 * message_id (may be NULL) gets the thread message's id. */
#define ACDM_REPLY_PAYLOAD_MAX 16384u
int acdm_engine_agent_message(acdm_engine *e, acdm_agent *a, acdm_bericht *b, const char *text,
                              json_t *payload, char *err, size_t errlen, char message_id[40]);
/* An outbound contact an agent starts (R21: an SMS, a mail, a WhatsApp message, a call from
 * the desk). */
typedef struct {
    const char *channel;     /* the channel instance that makes the contact; required */
    const char *kind;        /* "voice", "sms", "email", "whatsapp", "chat"; required */
    const char *to;          /* the customer's address; required */
    const char *text;        /* first message, or NULL */
    const char *queue;       /* counted in this queue; NULL: the channel's queue, else the agent's first */
    json_t *payload;         /* borrowed object (subject, attachments, template...), or NULL */
} acdm_outbound_contact;
/* Creates the bericht (direction "out", active with a: capacity counted), stores it, and once
 * it is committed asks the channel's originate; the channel's originate_result follows (a
 * failure ends the bericht "outbound-failed" and is shown to the agent). 0 with id_out, or
 * negative with a sentence in err: ACDM_EINVAL (a field), ACDM_ENOENT (channel), ACDM_EFULL (no
 * room for the kind), ACDM_ESTATE (logged out). */
int acdm_engine_originate(acdm_engine *e, acdm_agent *a, const acdm_outbound_contact *o, char id_out[37],
                          char *err, size_t errlen);

/* The desk's blind transfer of a call to an outside phone number: b must be a call (voice) in
 * conversation with a, its channel's plugin must have transfer_out (ABI 1.2). The channel
 * ends the bericht for a (reason "transferred to <number>", wrap-up) once it has the call.
 * 0, or negative with a sentence in err: ACDM_EINVAL (not a call, not a number, refused by the
 * channel), ACDM_ESTATE (not in conversation with a), ACDM_ENOENT (the channel cannot). */
int acdm_engine_transfer_out(acdm_engine *e, acdm_agent *a, acdm_bericht *b, const char *number,
                             char *err, size_t errlen);

/* Reads the TLS listeners' certificate files again (SIGHUP, POST /api/v1/reload): a renewed
 * pair is served to new connections, open ones stay; a bad or expired one is refused (logged,
 * and its sentence in err) and the old one keeps serving. 0 or a negative code. */
int acdm_engine_tls_reload(acdm_engine *e, char *err, size_t errlen);

/* Delivery reports of a channel instance that said "failed" since start (GET /metrics). */
uint64_t acdm_engine_deliveries_failed(acdm_engine *e, const char *instance);

/* Topics registered by an agent for a bericht (event log). */
void acdm_engine_topics(acdm_engine *e, acdm_agent *a, acdm_bericht *b, json_t *topics);

/* ---- the layers above the engine (api/, reports/) plug in here; the engine calls none of them */

/* A part of the daemon that lives beside the engine (the REST/websocket API, live figures, the
 * daily export), named in acdm_engine_opts.modules by the program that builds acdmd. Every hook
 * may be NULL; each runs for the modules in their order. */
struct acdm_engine_module {
    const char *name;
    int (*start)(acdm_engine *e);      /* HTTP exists, the model is restored; before plugins load */
    void (*reloaded)(acdm_engine *e);  /* a new config was applied (reload, API change, open/close) */
    void (*shutdown)(acdm_engine *e);  /* first step of acdm_engine_destroy: cancel timers */
    void (*stop)(acdm_engine *e);      /* the store and HTTP are closed (websockets' callbacks ran) */
    void (*release)(acdm_engine *e);   /* the loop has run its last callbacks: free what is left */
};
/* Each module's own state, kept by the engine for it (NULL until set). */
void acdm_engine_set_state(acdm_engine *e, const acdm_engine_module *m, void *state);
void *acdm_engine_state(acdm_engine *e, const acdm_engine_module *m);

/* Something for an agent that is not a model event: a channel's report about a live bericht
 * (b->agent set). */
typedef enum {
    ACDM_NOTE_FOLLOWUP,      /* a customer's follow-up joined b: text, ts, payload (may be NULL) */
    ACDM_NOTE_DELIVERY,      /* the channel's delivery state of an agent's reply: status, and
                              * text = the reply's message id when the channel named it */
    ACDM_NOTE_TYPING,        /* the customer is typing */
    ACDM_NOTE_ORIGINATE,     /* the channel's outcome of an outbound contact: status
                              * "connected" or "failed", text the reason (may be NULL) */
} acdm_note_type;
typedef struct {
    acdm_note_type type;
    const acdm_bericht *b;
    const char *text;
    int64_t ts;
    json_t *payload;         /* borrowed */
    const char *status;
} acdm_note;

/* Who hears of every model event (after the event log and the bericht row are written) and of
 * every note, lowest order first. */
enum {
    ACDM_SUB_AGENTS = 10,    /* the agents' websockets (api.c) */
    ACDM_SUB_CHANNELS = 20,  /* the plugin host (the engine's own) */
    ACDM_SUB_FIGURES = 30,   /* today's figures and the screen-pop (live.c) */
};
typedef struct {
    int order;
    void (*model_event)(acdm_engine *e, void *user, const acdm_mevent *ev);   /* may be NULL */
    void (*note)(acdm_engine *e, void *user, const acdm_note *n);             /* may be NULL */
    void *user;
} acdm_engine_subscriber;
/* Copies s into the list (after those of the same order). 0 or ACDM_ENOMEM. */
int acdm_engine_subscribe(acdm_engine *e, const acdm_engine_subscriber *s);

/* The detail_json of a model event as acdmd writes it in the event log (compact JSON in
 * detail's buffer, NULL when it has no fields): reason (an update's queue and from), text,
 * flow and channel_flow (bericht events: model.h acdm_flow), wait_ms, seconds, held_ms,
 * quick_drop, state. detail: acdm_jobj_init'ed by the caller, who frees it. */
const char *acdm_engine_event_detail(const acdm_mevent *ev, acdm_jobj *detail);

/* The short brief of a bericht the agent's messages carry (id, kind, queue, channel, from,
 * conversation, priority, queued_ms, state). */
json_t *acdm_engine_bericht_brief(const acdm_bericht *b);

#endif
