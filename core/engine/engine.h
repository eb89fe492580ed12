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

typedef struct {
    const char *config_path;
    const char *listen;      /* "host:port" overriding the config, or NULL */
    const char *data_dir;    /* overriding the config, or NULL */
} acdm_engine_opts;

/* A token's identity once checked. */
typedef struct {
    char role[32];           /* admin, supervisor, agent, channel:<instance> */
    char name[ACDM_NAME_MAX + 1];
    int64_t until_ms;        /* a JWT: refused from this time on (exp + leeway); 0: no expiry (API token) */
} acdm_principal;

/* An agent's websocket session (several per agent possible: two tabs). */
typedef struct acdm_session {
    acdm_ws *ws;
    acdm_principal who;
    struct acdm_session *next_of_agent;
    uint64_t live_sent[2];   /* live.c: hash of the last queue_stats / colleagues sent (0: none yet) */
    int64_t live_sent_ms[2]; /* and when */
    bool closing;            /* closed by the server (agent removed, token expired): messages ignored */
} acdm_session;

/* Close codes of /ws sessions the server ends (docs/websocket.md, "Connecting"). */
#define ACDM_WS_CLOSE_TOKEN_EXPIRED 4001   /* the session's JWT expired (after an error token_expired) */
#define ACDM_WS_CLOSE_AGENT_REMOVED 4004   /* the agent was removed (after an error agent_removed) */

struct acdm_engine {
    uv_loop_t loop;
    acdm_engine_opts opts;
    char *config_path;
    acdm_model *model;
    acdm_store *store;
    acdm_http *http;
    acdm_plugins *plugins;
    uv_timer_t model_timer;
    uv_async_t store_wake;
    uv_signal_t sig_hup, sig_term, sig_int;
    int64_t armed_due;
    json_t *overrides;       /* runtime queue open/close: {"queue": {"closed": bool}} (kv-persisted) */
    acdm_hmap token_cache;   /* token -> acdm_principal* */
    acdm_hmap sessions;      /* agent id -> acdm_session* list */
    acdm_hmap graces;        /* agent id -> pending logout timer after the last socket closed */
    /* api.c: sessions opened with an expiring token (a JWT), and one timer for the next expiry */
    acdm_session **expiring; size_t n_expiring, cap_expiring;
    uv_timer_t expiry_timer;
    bool expiry_timer_on;    /* initialised (closed by acdm_api_shutdown) */
    char admin_token[64];
    bool stopping;
    uint64_t n_ingested;
    struct acdm_auth *auth;  /* auth.c: OIDC sign-in state and failed sign-ins per peer */
    struct acdm_live *live;  /* live.c: supervisors' figures, agents' pushes, screen-pop */
    struct acdm_report_daily *daily; /* report_daily.c: the daily export for BI tools */
    acdm_hmap subjects;      /* bericht id -> short subject/summary shown on the offer (live berichten) */
    acdm_hmap qwait;         /* queue name -> recent gap between acceptances (wait estimates) */
};

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
int acdm_engine_auth_peer(acdm_engine *e, const char *token, acdm_peer_fn peer, void *ctx,
                          acdm_principal *who, int *retry_after_s);

/* auth_glue.c: OIDC at start and reload in two steps (all or nothing), JWT checks. */
struct acdm_oidc_state;
int acdm_engine_oidc_prepare(acdm_engine *e, const acdm_config *cfg, struct acdm_oidc_state **st,
                             char *err, size_t errlen);
void acdm_engine_oidc_commit(acdm_engine *e, struct acdm_oidc_state *st);
void acdm_engine_oidc_discard(struct acdm_oidc_state *st);
void acdm_engine_oidc_shutdown(acdm_engine *e);   /* before the loop's last run */
int acdm_engine_auth_jwt(acdm_engine *e, const char *token, acdm_principal *who);

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
int acdm_engine_agent_message(acdm_engine *e, acdm_agent *a, acdm_bericht *b, const char *text);
/* Topics registered by an agent for a bericht (event log). */
void acdm_engine_topics(acdm_engine *e, acdm_agent *a, acdm_bericht *b, json_t *topics);

/* api.c: registers the REST routes and the /ws endpoint. */
int acdm_api_register(acdm_engine *e);
/* api_data.c: GET /api/v1/customers/{address}/history, /api/v1/events, /api/v1/audit */
int acdm_api_data_register(acdm_engine *e);
/* api_authcfg.c: GET /api/v1/auth/config (the browser's OIDC sign-in settings, no auth) */
int acdm_api_authcfg_register(acdm_engine *e);
/* Closes the sessions of agents no longer in the running configuration (after a reload or
 * DELETE /api/v1/agents/{id}): an error agent_removed, then close code 4004. */
void acdm_api_drop_removed_agents(acdm_engine *e);
/* cancels pending reconnect-grace timers (at shutdown, before the loop's last run) */
void acdm_api_shutdown(acdm_engine *e);
/* ws.c-side pushes, called from the engine's event handler */
void acdm_api_push_agent(acdm_engine *e, const char *agent_id, json_t *msg); /* steals msg */

#endif
