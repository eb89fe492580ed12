/* stats.h -- live figures for supervisors: today's counters per queue and per channel, fed from
 * the model's events, plus the live values (waiting, longest wait, agents by state) read from
 * the model when a figure is asked for.
 *
 * Counters are kept in memory, rebuilt from the event log at start (on a worker, while acdmd
 * already serves: see acdm_stats_rebuild_*), and reset at local midnight
 * (the configured timezone; DST-safe).
 * Definitions (docs/websocket.md "Supervisors"; the flow of each event is decided by the model,
 * model.h acdm_flow, and written in the event's detail, so the live figures, their rebuild and
 * the reports count alike):
 * - offered: a bericht entered the queue (new, parked while closed, transferred to it,
 *   overflowed or moved into it); per channel: new berichten only. A bericht put back after a
 *   reject, a ring-no-answer, a logout or a dropped connection is not offered again.
 * - answered: its first acceptance (or pick) in that stay in the queue; wait = from its
 *   original queue time. A second acceptance after a put-back is not counted again.
 * - abandoned: the customer left before an agent took it in that stay, not counting quick
 *   drops (left within the queue's quick_drop_s of entering it: R28f), which are counted apart
 *   in quick_drops.
 * - moved: it left the queue unanswered for another (overflow, an update, a reload).
 * - identity: offered = answered + abandoned + quick_drops + moved + still waiting (per queue
 *   and channel; over intervals: waiting at the start + offered = ... + waiting at the end).
 * - service level = answered within sl_seconds / (answered + abandoned), null when both are 0.
 * - handle time: from acceptance to done (conversation plus wrap-up).
 * - outbound: contacts agents started (originate) that are done, counted apart from the
 *   inbound figures above (never offered, answered or handled); outbound_failed: those whose
 *   contact could not be made.
 */
#ifndef ACDM_STATS_H
#define ACDM_STATS_H

#include <jansson.h>

#include "model/model.h"

typedef struct acdm_stats acdm_stats;

typedef struct {
    uint64_t offered, answered, abandoned, quick_drops, moved, answered_in_sl, handled;
    uint64_t outbound, outbound_failed;   /* outbound contacts done (not in handled), and failed */
    int64_t wait_sum_ms;      /* over answered */
    int64_t handle_sum_ms;    /* over handled (done after an acceptance) */
} acdm_stats_counts;

/* Adds one fact to the counters c (NULL: nothing) by the definitions above: flow is what the
 * event means for c's queue or channel (moved: c is the queue it left). wait_ms: of an
 * acceptance; handle_ms < 0: not known (the acceptance was not seen); DONE counts handled and
 * outbound whatever the flow. Shared by the live figures and the reports (report.c), so both
 * count the same. */
void acdm_stats_count(acdm_stats_counts *c, acdm_flow flow, acdm_mevent_type type, const char *reason,
                      int64_t wait_ms, bool quick_drop, int sl_seconds, int64_t handle_ms);

/* The flow of an event written before events carried one (no "flow" in its detail): the old
 * rules (offered: queued new, transfer or overflow; a channel: new only; every acceptance
 * answered, every abandon abandoned). */
acdm_flow acdm_stats_legacy_flow(acdm_mevent_type type, const char *reason, bool channel);

/* The fields of an event's detail_json as engine.c writes them (compact JSON), read without a
 * JSON tree: reason, state, from ("" when absent), wait_ms (0), quick_drop (false), flow and
 * channel_flow (has_flow when either key is there). */
typedef struct {
    char reason[ACDM_NAME_MAX + 1], state[16], from[ACDM_NAME_MAX + 1];
    int64_t wait_ms;
    bool quick_drop;
    bool has_flow;                 /* written with "flow"/"channel_flow" (else: legacy rules) */
    acdm_flow flow, channel_flow;
} acdm_event_detail;
void acdm_stats_detail(const char *detail_json, acdm_event_detail *d);

acdm_stats *acdm_stats_create(void);
void acdm_stats_destroy(acdm_stats *s);

/* One model event (engine.c's on_model_event). */
void acdm_stats_event(acdm_stats *s, const acdm_mevent *ev);

/* Today's counters from the event log after a restart, in three steps so the reading can run
 * on a worker thread while acdmd already serves (a busy day's million events take 1-2 s):
 * _new on the loop (copies what it needs of cfg: each queue's sl_seconds), _run anywhere (reads
 * events of the day before `now` through its own read-only connection to db_path; returns the
 * number read, or a negative code), _merge on the loop (adds them to s, whose live events count
 * from its `now` on; nothing when the merge's now is past the day's midnight). _stop makes a running _run return
 * early; _free after _run has returned. */
typedef struct acdm_stats_rebuild acdm_stats_rebuild;
acdm_stats_rebuild *acdm_stats_rebuild_new(const acdm_config *cfg, const char *db_path, int64_t now);
int acdm_stats_rebuild_run(acdm_stats_rebuild *r);
void acdm_stats_rebuild_merge(acdm_stats_rebuild *r, acdm_stats *s, int64_t now);
void acdm_stats_rebuild_stop(acdm_stats_rebuild *r);
void acdm_stats_rebuild_free(acdm_stats_rebuild *r);
/* All three at once (tests, tools). Returns the number of events read, or a negative code. */
int acdm_stats_replay(acdm_stats *s, acdm_store *st, const acdm_config *cfg, int64_t now);

/* Resets the counters when now is past the local midnight that ended the counted day. Every
 * reader below calls it; exposed for tests. */
void acdm_stats_roll(acdm_stats *s, int64_t now);

/* Today's counters of a queue / a channel by name (zeros when none). */
acdm_stats_counts acdm_stats_queue(acdm_stats *s, const char *queue, int64_t now);
acdm_stats_counts acdm_stats_channel(acdm_stats *s, const char *channel, int64_t now);

/* The service level in tenths of a percent (rounded), or -1 when answered + abandoned is 0. */
int64_t acdm_stats_sl_tenths(const acdm_stats_counts *c);

/* {"offered","answered","abandoned","quick_drops","avg_wait_ms","avg_handle_ms","service_level_pct"} */
json_t *acdm_stats_today_json(const acdm_stats_counts *c);

/* The figures of one queue as in the supervisor's `stats` message:
 * {name,title,open,strategy,waiting,waiting_by_kind,longest_wait_ms,today,sl_target_pct,
 *  sl_seconds,agents:{logged_in,ready,busy,wrapup,not_ready}} */
json_t *acdm_stats_queue_json(acdm_stats *s, const acdm_queue *q, int64_t now);

/* Adds today, sl_target_pct, sl_seconds and agents to each object of the GET /api/v1/queues
 * array (matched by "name"). */
void acdm_stats_decorate_queues(acdm_stats *s, acdm_model *m, json_t *queues, int64_t now);

/* The whole message: {"type":type,"ts":now,"queues":[...],"channels":[...],"agents":[...]}. */
json_t *acdm_stats_json(acdm_stats *s, acdm_model *m, const char *type, int64_t now);

/* One agent as in stats.agents[]: {id,name,state,reason,since,busy,wrapup,work,handled}. */
json_t *acdm_stats_agent_json(const acdm_agent *a);

/* The longest current wait in q (ms, from the original queue time), 0 when nobody waits. */
int64_t acdm_stats_longest_wait(const acdm_queue *q, int64_t now);

/* The messages are written directly with acdm_sbuf (acdm.h): no JSON tree per tick. */

/* The whole message as text (malloc'd; *len set), as acdm_stats_json; NULL when out of memory. */
char *acdm_stats_text(acdm_stats *s, acdm_model *m, const char *type, int64_t now, size_t *len);
/* One queue as in stats.queues[]. */
void acdm_stats_queue_text(acdm_sbuf *b, acdm_stats *s, const acdm_queue *q, int64_t now);
/* One queue as in the agents' queue_stats: {name,title,open,waiting,longest_wait_ms}. */
void acdm_stats_queue_brief_text(acdm_sbuf *b, const acdm_queue *q, int64_t now);
/* One agent: full as in stats.agents[], else as in colleagues (without work and handled). */
void acdm_stats_agent_text(acdm_sbuf *b, const acdm_agent *a, bool full);

#endif
