/* api.h -- the REST API under /api/v1 and the /ws endpoint (api.c and the api_*.c beside it):
 * a module of the engine (acdm_api_module) that pushes model events to agents' websockets. */
#ifndef ACDM_API_H
#define ACDM_API_H

#include "engine/engine.h"

/* An agent's websocket session (several per agent possible: two tabs). */
typedef struct acdm_session {
    acdm_ws *ws;
    acdm_principal who;
    struct acdm_session *next_of_agent;
    uint64_t live_sent[2];   /* live.c: hash of the last queue_stats / colleagues sent (0: none yet) */
    int64_t live_sent_ms[2]; /* and when */
    bool closing;            /* closed by the server (agent removed, token expired): messages ignored */
    unsigned ob_pending;     /* outbox.c: messages held for this session until their commit */
} acdm_session;

/* Close codes of /ws sessions the server ends (docs/websocket.md, "Connecting"). */
#define ACDM_WS_CLOSE_TOKEN_EXPIRED 4001   /* the session's JWT expired (after an error token_expired) */
#define ACDM_WS_CLOSE_AGENT_REMOVED 4004   /* the agent was removed (after an error agent_removed) */

/* The module cmd/main.c hands the engine: registers the routes at start, subscribes the
 * agents' push, closes removed agents' sessions after every reload, cancels timers at shutdown. */
extern const acdm_engine_module acdm_api_module;

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
/* Sends msg (stolen) to every websocket session of the agent. */
void acdm_api_push_agent(acdm_engine *e, const char *agent_id, json_t *msg);
/* The agents' sessions: agent id -> acdm_session* list (live.c sends them their figures). */
acdm_hmap *acdm_api_sessions(acdm_engine *e);
/* A write route's answer, sent only after everything it wrote is committed (outbox.h): obj
 * (stolen; NULL: no body, e.g. 204) with status, or 503 "Not stored" when the commit failed. */
void acdm_api_reply_committed(acdm_engine *e, acdm_req *r, int status, json_t *obj);
/* A websocket message (stolen) to session s after the commit; re: the acknowledged type if it
 * is an ack (an error "unsaved" replaces it when the commit failed), else NULL. */
void acdm_api_send_committed(acdm_engine *e, acdm_session *s, json_t *msg, const char *re,
                             const char *bericht);

#endif
