/* live.h -- live pushes over /ws: supervisors' `snapshot`/`stats` and commands, agents'
 * `queue_stats`/`colleagues`, the screen-pop on offers, and the audit events of supervisors'
 * actions. One uv timer (1 s) builds each message once per tick and sends the same text to
 * every session that gets it. */
#ifndef ACDM_LIVE_H
#define ACDM_LIVE_H

#include "api/api.h"
#include "reports/stats.h"

typedef struct acdm_live acdm_live;

/* The module cmd/main.c hands the engine: acdm_live_create at start (subscribes the figures
 * and the screen-pop to model events), acdm_live_destroy once HTTP is closed. */
extern const acdm_engine_module acdm_live_module;

/* Creates e->live (and its stats) and starts the timer. Call once the model and HTTP exist. */
int acdm_live_create(acdm_engine *e);
/* Stops the timer and frees (the loop runs the close callback afterwards). */
void acdm_live_destroy(acdm_engine *e);

/* Every model event (its subscriber, order ACDM_SUB_FIGURES): today's counters, and the screen-pop on offers. */
void acdm_live_event(acdm_engine *e, const acdm_mevent *ev);

/* The stats of e (NULL before acdm_live_create). */
acdm_stats *acdm_live_stats(acdm_engine *e);

/* A supervisor's or admin's websocket opened (after its hello): subscribes it and sends the
 * snapshot. Closed: unsubscribes. */
void acdm_live_ws_open(acdm_engine *e, acdm_session *s);
void acdm_live_ws_close(acdm_engine *e, acdm_session *s);
/* A message from a supervisor/admin session: handled (ack or error sent) -> true; an unknown
 * type -> false (the caller answers unknown_type). */
bool acdm_live_ws_message(acdm_engine *e, acdm_session *s, json_t *msg, const char *type);

/* api_supervise.c: a supervisor's `reassign` or `whisper` (handled: true; any other type: false). */
bool acdm_supervise_ws_message(acdm_engine *e, acdm_session *s, json_t *msg, const char *type);
/* api_supervise.c: drops the `whisper` events from a bericht's JSON (what a channel's token reads). */
void acdm_supervise_hide_whispers(json_t *bericht);
/* api_supervise.c: POST /api/v1/berichten/{id}/reassign and /whisper. */
int acdm_supervise_register(acdm_engine *e);

/* A supervisor's action on an agent: action "login", "logout", "ready", "not_ready" (or
 * "not-ready"; reason: a configured reason code or NULL). 0, or a negative code with a sentence
 * in err (ACDM_ENOENT unknown agent, ACDM_EINVAL bad reason, ACDM_ESTATE not possible now). */
int acdm_live_agent_action(acdm_engine *e, const char *action, const char *agent_id,
                           const char *reason, char *err, size_t errlen);

/* GET /api/v1/queues: the engine's queue list with today's figures added. */
json_t *acdm_live_queues_json(acdm_engine *e);

/* Appends an audit event {actor, action, target} (+ the fields of extra, stolen, may be NULL). */
void acdm_live_audit(acdm_engine *e, const acdm_principal *actor, const char *action,
                     const char *target, json_t *extra);

/* Pushes a stats message to supervisors and queue_stats/colleagues to agents now (tests, and
 * the timer). */
void acdm_live_push_now(acdm_engine *e, bool agents_too);

/* screenpop.c: GETs the configured case-system URL for an offer and sends the agent `screen_pop`. */
void acdm_screenpop_offer(acdm_engine *e, const acdm_bericht *b, const acdm_agent *a);

#endif
