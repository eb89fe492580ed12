/* model.h -- the ACDM model: queues, agents, berichten, and the routing that matches them.
 *
 * Pure and single-threaded: no I/O, no SQL, no clock of its own. Every call takes `now`
 * (epoch ms); timers are kept in one internal heap, the owner arms one real timer at
 * acdm_model_next_due() and calls acdm_model_tick(). Everything that happens is reported
 * through the emit hook (the daemon stores it in the event log and tells agents and plugins),
 * so the same code runs in the daemon, in the unit tests and in the benchmarks.
 *
 * Routing (architecture.md "The ACDM model"):
 * - A bericht waits in its queue's waiting heap for its kind, ordered by bericht priority,
 *   then original queue time. An agent who gets free takes the best waiting bericht over all
 *   queues they joined: queue priority, then bericht priority, then waiting time.
 * - A new bericht goes to the best *available* member of its queue by the queue's strategy;
 *   available members are kept per (queue, kind) in a heap keyed by the strategy, so a
 *   decision never scans all agents. Idle time and handled counts are per agent, over all
 *   queues (R35a).
 * - Skills filter both ways (best-first walk of the heaps); a queue may relax them after a wait.
 */
#ifndef ACDM_MODEL_H
#define ACDM_MODEL_H

#include "base/acdm.h"
#include "config/config.h"
#include "base/heap.h"
#include "base/hmap.h"
#include "store/store.h"

typedef struct acdm_model acdm_model;
typedef struct acdm_queue acdm_queue;
typedef struct acdm_agent acdm_agent;
typedef struct acdm_member acdm_member;
typedef struct acdm_bericht acdm_bericht;

typedef enum { ACDM_AGENT_LOGGED_OUT = 0, ACDM_AGENT_READY, ACDM_AGENT_NOT_READY } acdm_agent_state;
const char *acdm_agent_state_name(acdm_agent_state s);

/* timer node, embedded in its owner */
typedef struct { int64_t due; int32_t idx; uint8_t type; } acdm_tnode;

typedef struct { uint16_t id; uint8_t level; } acdm_skill_ref;

/* Per-interaction state of an agent's work item. */
typedef enum { ACDM_W_OFFERED = 0, ACDM_W_ACTIVE, ACDM_W_WRAPUP } acdm_work_state;
typedef struct {
    acdm_bericht *b;
    uint8_t state;
    bool device;              /* offered: the channel rings the agent's device and reports the
                               * outcome (acdm_agent_device_result); the offer timer is its */
} acdm_work;

struct acdm_bericht {
    char id[37];
    uint8_t kind;             /* acdm_kind */
    uint8_t state;            /* acdm_bstate */
    uint8_t priority;         /* 0..9 */
    uint8_t n_skills;
    bool skills_relaxed;
    bool customer_gone;       /* the customer ended while an agent had it */
    bool held;                /* a call (voice, callback) its agent put on hold */
    bool outbound;            /* started by an agent (acdm_model_originate): direction "out" */
    bool answered_here;       /* accepted since it entered its current queue (the reports' flow) */
    bool answered_ever;       /* accepted at least once (the channel's flow) */
    bool originating;         /* the channel's originate runs: its result is awaited */
    uint16_t n_offers;        /* agents currently offered (ring-all: several) */
    uint16_t cap_offers;
    acdm_agent **offers;      /* those agents: offer_inline, or a heap array for ring-all */
    acdm_agent *offer_inline[1];
    int32_t wait_idx;         /* position in the queue's waiting heap, -1 if not waiting */
    uint64_t seq;             /* arrival order, tie-breaker */
    acdm_queue *queue;
    acdm_agent *agent;        /* the agent working it (active/wrap-up) */
    acdm_agent *preferred;    /* offered first to this agent when available (follow-up, transfer) */
    acdm_agent *skip;         /* just rejected/missed it: not re-offered to them until t_offer */
    acdm_skill_ref *skills;
    int64_t created_ms;
    int64_t queued_ms;        /* original queue time: kept across overflow, transfer, restart */
    int64_t enqueued_ms;      /* entered the current queue (quick-drop and overflow are measured from here) */
    int64_t offered_ms, accepted_ms, wrapup_ms, ended_ms;
    int64_t hold_ms;          /* when the current hold started (valid while held) */
    acdm_tnode t_offer;       /* offer timeout, or retry after a miss */
    acdm_tnode t_wait;        /* max wait -> overflow */
    acdm_tnode t_relax;       /* skill relaxation */
    acdm_tnode t_wrap;        /* wrap-up end */
    const char *channel;      /* interned channel instance name */
    const char *from;         /* customer address (stored after the struct, same block) */
    const char *conversation; /* conversation key or NULL (same block, after conv_scope) */
    const char *conv_scope;   /* "<channel>\x1f<conversation>": the key of bericht_by_conv, so a
                               * conversation is scoped by channel instance (same block) */
    void *user;               /* owner data (the daemon's) */
    char *conv_heap;          /* conv_scope when set later (acdm_model_set_conversation) */
    /* Parked: queued in a closed queue that takes it anyway (wait_if_closed), outside the
     * waiting heap (never offered) until the queue opens: q->parked list. */
    bool parked;
    acdm_bericht *park_prev, *park_next;
    /* Reserved: restored after a restart while active with this agent; kept out of the
     * waiting heap (offered to no one else) until they are available again or t_offer
     * (T_RESERVE) ends the reservation. m->reserved list. */
    acdm_agent *reserved;
    acdm_bericht *res_next;
};

struct acdm_member {
    acdm_agent *agent;
    acdm_queue *queue;
    bool joined;              /* the agent chose to take work from this queue */
    uint32_t position;        /* linear order */
    uint64_t rr_last;         /* round-robin: queue clock of this member's last offer */
    uint32_t rnd;             /* random strategy key */
    uint32_t key_seen;        /* agent key_ver when last placed in the availability heaps */
    int32_t avail_idx[ACDM_KIND__COUNT];
};

struct acdm_agent {
    char *id;
    const acdm_agent_def *def;
    uint8_t state;            /* acdm_agent_state */
    char reason[ACDM_NAME_MAX + 1];
    int cap[ACDM_KIND__COUNT];
    int load[ACDM_KIND__COUNT];  /* offered + active + wrap-up items per kind */
    int n_wrapup;
    uint32_t occupancy;       /* sum over kinds of load*1000/cap: the least-occupied key */
    uint32_t key_ver;         /* bumped when a strategy key (idle, handled, occupancy) changes */
    bool voice_blocks;
    acdm_member **members;
    uint32_t n_members;
    acdm_work *work;
    uint32_t n_work, cap_work;
    acdm_skill_ref *skills;
    uint8_t n_skills;
    uint32_t position;
    int64_t idle_since;       /* end of the last work, or login */
    int64_t state_since;
    uint64_t handled;         /* over all queues (R35a) */
    int misses;               /* consecutive ring-no-answers */
    uint8_t unreachable;      /* bit per kind: the agent's device for it cannot be reached
                               * (a softphone not registered): no offers of that kind */
    char unreach_why[ACDM_KIND__COUNT][64];   /* why, per unreachable kind */
    bool removed;
    void *user;               /* owner data */
};

struct acdm_queue {
    char *name;
    const acdm_queue_def *def;
    acdm_model *model;
    acdm_strategy strategy;
    bool open;                /* cached: manual + emergency + schedule */
    acdm_heap waiting[ACDM_KIND__COUNT];
    acdm_heap avail[ACDM_KIND__COUNT];
    acdm_member **members;
    uint32_t n_members, cap_members;
    uint64_t rr_clock;
    acdm_skill_ref *skills;
    uint8_t n_skills;
    uint32_t n_waiting;       /* all kinds */
    acdm_tnode t_sched;       /* next schedule boundary */
    acdm_bericht *parked;     /* waiting for the queue to open (wait_if_closed), oldest first */
    acdm_bericht *parked_tail;
};

/* What happened; given to the emit hook. Pointers are valid during the call only. */
typedef enum {
    ACDM_ME_QUEUED = 0,      /* b entered q (new, requeued, transferred, overflowed, restored) */
    ACDM_ME_OFFERED,         /* b offered to a */
    ACDM_ME_OFFER_CANCELLED, /* offer of b to a withdrawn; reason: accepted-elsewhere, ended, logout, transferred */
    ACDM_ME_ACCEPTED,        /* a took b (picked too; reason "pick") */
    ACDM_ME_REJECTED,        /* a declined b */
    ACDM_ME_TIMEOUT,         /* a did not answer b in time (ring-no-answer) */
    ACDM_ME_TRANSFERRED,     /* b moved by a to q (queue) or to agent (reason = target agent) */
    ACDM_ME_OVERFLOW,        /* b moved from its queue to q after the max wait */
    ACDM_ME_RELAXED,         /* b's skill requirements dropped after the wait */
    ACDM_ME_CUSTOMER_ENDED,  /* the customer left while an agent had b */
    ACDM_ME_WRAPUP_START,    /* a finished handling b; wrap-up runs (value = seconds) */
    ACDM_ME_WRAPUP_EXTENDED, /* value = new remaining seconds */
    ACDM_ME_DONE,            /* b finished (after wrap-up); b is freed after this event */
    ACDM_ME_ABANDONED,       /* customer left before an agent took b; quick_drop set if within threshold; b freed after */
    ACDM_ME_AGENT_STATE,     /* a's state changed (reason for not-ready) */
    ACDM_ME_AGENT_JOIN,      /* a joined q */
    ACDM_ME_AGENT_LEAVE,     /* a left q */
    ACDM_ME_QUEUE_OPEN,      /* q opened (schedule, supervisor, reload) */
    ACDM_ME_QUEUE_CLOSED,    /* q closed */
    ACDM_ME_MOVED,           /* b moved to q because its queue was removed by a reload */
    ACDM_ME_HOLD,            /* a put call b on hold */
    ACDM_ME_RESUME,          /* b's hold ended (value = held ms); reason NULL (a resumed), or
                              * "hangup" (customer ended), "complete", "transfer", "logout" */
    ACDM_ME_UPDATED,         /* waiting b changed (acdm_model_update): q its queue now, reason
                              * the queue it left (NULL: same queue), value its priority */
    ACDM_ME_ORIGINATED,      /* a started outbound b (acdm_model_originate): active with a */
    ACDM_ME_AGENT_DEVICE,    /* a's device for a kind became reachable or not (value = kind,
                              * reason NULL when reachable, else why) */
    ACDM_ME__COUNT
} acdm_mevent_type;
const char *acdm_mevent_name(acdm_mevent_type t);

/* What an event means for the figures (stats.h, report.h), decided by the model from the
 * bericht's own history so that every counter and report counts each stay in a queue (or a
 * channel) once. A stay starts when the bericht enters the queue (new, parked while closed,
 * transferred to it, overflowed or moved into it) and has one outcome: answered (its first
 * acceptance in that stay: a later one after a put-back is not counted again), abandoned
 * (the customer left before any acceptance in that stay) or moved (out of the queue the
 * event's reason names, into the event's queue, before an acceptance: overflow, an update
 * that changes the queue, a reload). Identity per queue and channel: offered = answered +
 * abandoned + quick drops + moved + still waiting. A channel's stay is the bericht's life
 * until its first acceptance. */
typedef enum {
    ACDM_FLOW_NONE = 0, ACDM_FLOW_OFFERED, ACDM_FLOW_ANSWERED, ACDM_FLOW_ABANDONED, ACDM_FLOW_MOVED
} acdm_flow;
/* "none", "offered", "answered", "abandoned", "moved"; acdm_flow_parse: the reverse (none for
 * anything else). */
const char *acdm_flow_name(acdm_flow f);
acdm_flow acdm_flow_parse(const char *s);

typedef struct {
    acdm_mevent_type type;
    int64_t ts;
    acdm_bericht *b;
    acdm_agent *a;
    acdm_queue *q;
    const char *reason;
    int64_t value;           /* wait ms for OFFERED/ACCEPTED/ABANDONED; seconds for wrap-up */
    bool quick_drop;
    const char *text;        /* REJECTED/TIMEOUT of a device offer: the channel's sentence, or NULL */
    acdm_flow flow;          /* for the queue (moved: out of `reason`, into q) */
    acdm_flow channel_flow;  /* for b's channel (none, offered, answered, abandoned) */
} acdm_mevent;

typedef struct {
    void (*emit)(void *ctx, const acdm_mevent *ev);
    void *ctx;
} acdm_model_hooks;

/* A new bericht as the model needs it (strings copied). */
typedef struct {
    const char *id;           /* UUIDv7 made by the caller */
    const char *queue;
    acdm_kind kind;
    int priority;
    const char *channel;
    const char *from;
    const char *conversation;
    const acdm_skill *skills; size_t n_skills;
    int64_t created_ms;
    int64_t queued_ms;        /* 0: now */
    const char *preferred_agent; /* may be NULL */
    bool wait_if_closed;      /* a closed queue takes it: parked until the queue opens */
    bool answered;            /* restore: it was accepted in its queue before (active at a restart) */
} acdm_new_bericht;

/* Creates a model on cfg (stolen: the model frees it). */
int acdm_model_create(acdm_config *cfg, const acdm_model_hooks *hooks, int64_t now,
                      acdm_model **out);
void acdm_model_destroy(acdm_model *m);
const acdm_config *acdm_model_config(const acdm_model *m);

/* Applies a new config as a diff: queues created/changed/removed (a removed queue's berichten
 * move to its fallback), agents created/changed/removed (removed ones are logged out first).
 * Checks first; on error nothing changes, err says why and cfg is NOT taken. On success cfg
 * is stolen. */
int acdm_model_configure(acdm_model *m, acdm_config *cfg, int64_t now, char *err, size_t errlen);

/* Lookups */
acdm_queue *acdm_model_queue(const acdm_model *m, const char *name);
acdm_agent *acdm_model_agent(const acdm_model *m, const char *id);
acdm_bericht *acdm_model_bericht(const acdm_model *m, const char *id);
/* The live bericht of a conversation key on one channel instance, or NULL: the same key on
 * another instance (the same citizen's number on two SMS numbers, or on SMS and WhatsApp) is
 * another conversation. */
acdm_bericht *acdm_model_conversation(const acdm_model *m, const char *channel, const char *key);
/* Gives a live bericht without one a conversation key on its channel (an outbound bericht: the
 * customer's reply joins it). 0 (also when it has this key already); ACDM_ESTATE when it has
 * another key; ACDM_EEXIST when another live bericht of the channel has the key. */
int acdm_model_set_conversation(acdm_model *m, acdm_bericht *b, const char *key);
/* After acdm_model_restore: keeps the waiting bericht b for agent_id until until_ms (their
 * reconnect grace): offered to them first when they are available again, to no one else before
 * until_ms; then it waits in its queue as any other, with its original queue time. 0, or
 * ACDM_ENOENT (no such agent) / ACDM_ESTATE (b is not waiting). */
int acdm_model_reserve(acdm_model *m, acdm_bericht *b, const char *agent_id, int64_t until_ms);
/* Waiting berichten of q outside its waiting heap: parked until it opens, or kept for their
 * agent after a restart. They wait (state queued) and count as waiting in the queue's figures. */
uint32_t acdm_queue_n_held(const acdm_model *m, const acdm_queue *q);
size_t acdm_model_n_berichten(const acdm_model *m);
/* Iterate queues / agents in config order. */
size_t acdm_model_n_queues(const acdm_model *m);
acdm_queue *acdm_model_queue_at(const acdm_model *m, size_t i);
size_t acdm_model_n_agents(const acdm_model *m);
acdm_agent *acdm_model_agent_at(const acdm_model *m, size_t i);

/* Berichten */
/* Queues a new bericht and routes it. Returns 0 (queued or offered; *out set),
 * ACDM_ECLOSED (queue closed: nothing kept; *closed_text set when non-NULL),
 * ACDM_ENOENT (no such queue), ACDM_EEXIST (id in use), ACDM_EINVAL. */
int acdm_model_submit(acdm_model *m, const acdm_new_bericht *nb, int64_t now,
                      acdm_bericht **out, const char **closed_text);
/* Puts back a bericht found in the store at start-up (state queued, offered or active before
 * the crash): it waits again with its original queue time, even if the queue is closed now. */
int acdm_model_restore(acdm_model *m, const acdm_new_bericht *nb, int64_t now, acdm_bericht **out);
/* Changes a waiting bericht (queued, no offer out): to (NULL: same queue) keeps its original
 * queue time (the current queue's wait timers count from now), priority (-1: unchanged),
 * skills (set_skills: the new required skills beside the queue's; else a move keeps the
 * bericht's own). Emits ACDM_ME_UPDATED and routes it again. ACDM_ESTATE when it is not waiting,
 * ACDM_ECLOSED when to is closed, ACDM_EINVAL for a priority out of 0..9. */
int acdm_model_update(acdm_model *m, acdm_bericht *b, acdm_queue *to, int priority,
                      const acdm_skill *skills, size_t n_skills, bool set_skills, int64_t now);
/* A supervisor hands a waiting or offered bericht to agent `to` (reassign): every outstanding
 * offer is withdrawn (OFFER_CANCELLED reason "reassigned"), and it is offered to `to` at once
 * with its original queue time; `to` becomes its preferred agent, so a reject or a miss puts it
 * back in its queue as any offer. `to` need not be a member of its queue; capacity counts as for
 * any offer. Refusals, with *why (may be NULL) naming the reason for people ("logged_out",
 * "kind", "full", "wrapup", "unreachable", "same", "not_waiting", "reserved"):
 * ACDM_ESTATE b is not queued or offered (or kept for its agent after a restart), or `to` is
 * logged out or cannot be reached for the kind; ACDM_EINVAL `to` takes no berichten of b's kind
 * (capacity 0), or already has this offer; ACDM_EFULL `to` has no free capacity for the kind or is
 * in wrap-up. Nothing changes on a refusal. */
int acdm_model_reassign(acdm_model *m, acdm_bericht *b, acdm_agent *to, int64_t now, const char **why);

/* An outbound contact an agent starts: the bericht is created active with a (capacity counted:
 * ACDM_EFULL when a has no room for the kind; ACDM_ESTATE when a is logged out) in nb->queue,
 * b->outbound set; emits ACDM_ME_ORIGINATED. Completing it runs the queue's wrap-up; its DONE
 * has reason "outbound". */
int acdm_model_originate(acdm_model *m, const acdm_new_bericht *nb, acdm_agent *a, int64_t now,
                         acdm_bericht **out);
/* An active bericht whose contact could not be made (originate failed): it ends now, without
 * wrap-up (DONE reason "outbound-failed" for an outbound one, "failed" otherwise). */
int acdm_model_fail(acdm_model *m, acdm_bericht *b, int64_t now);
/* The customer ended it (hang-up, left the chat). */
int acdm_model_end(acdm_model *m, acdm_bericht *b, const char *reason, int64_t now);

/* Agents */
int acdm_agent_login(acdm_model *m, acdm_agent *a, int64_t now);
int acdm_agent_logout(acdm_model *m, acdm_agent *a, const char *reason, int64_t now);
int acdm_agent_ready(acdm_model *m, acdm_agent *a, int64_t now);
int acdm_agent_not_ready(acdm_model *m, acdm_agent *a, const char *reason, int64_t now);
int acdm_agent_join(acdm_model *m, acdm_agent *a, acdm_queue *q, int64_t now);
int acdm_agent_leave(acdm_model *m, acdm_agent *a, acdm_queue *q, int64_t now);
acdm_member *acdm_agent_member(const acdm_agent *a, const acdm_queue *q);
int acdm_agent_accept(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now);
int acdm_agent_reject(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now);
/* Take a specific waiting bericht from a joined queue (skips the strategy). */
int acdm_agent_pick(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now);
/* Handling finished: wrap-up starts (or done at once when the queue's wrap-up is 0). */
int acdm_agent_complete(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now);
int acdm_agent_wrapup_end(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now);
int acdm_agent_wrapup_extend(acdm_model *m, acdm_agent *a, acdm_bericht *b, int seconds, int64_t now);
/* A transfer of a held call resumes it first (RESUME "transfer", then TRANSFERRED). */
int acdm_agent_transfer_queue(acdm_model *m, acdm_agent *a, acdm_bericht *b, acdm_queue *to, int64_t now);
/* Blind transfer to a colleague who is ready with capacity now (else ACDM_EFULL, nothing changes). */
int acdm_agent_transfer_agent(acdm_model *m, acdm_agent *a, acdm_bericht *b, acdm_agent *to, int64_t now);
/* Hold and resume a call (R18): only a voice or callback bericht a has active.
 * ACDM_EINVAL: not a call; ACDM_ESTATE: not a's active work, already held (hold) or not held
 * (resume). *why (may be NULL) gets a sentence saying which. A held call that is completed,
 * hung up, transferred or returned by a logout is resumed first (RESUME with that reason). */
int acdm_agent_hold(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now, const char **why);
int acdm_agent_resume(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now, const char **why);
/* Device offers. a's offer of b is rung on a's device by its channel: from now on the outcome
 * comes from acdm_agent_device_result, and the offer timer runs until deadline (absolute ms;
 * 0: no timer) instead of the queue's offer timeout, extended only (ring-all shares one timer).
 * ACDM_ESTATE when a has no offer of b. */
int acdm_agent_offer_device(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t deadline, int64_t now);
typedef enum { ACDM_DEV_ANSWERED = 0, ACDM_DEV_DECLINED, ACDM_DEV_BUSY, ACDM_DEV_NOANSWER,
               ACDM_DEV_FAILED, ACDM_DEV__COUNT } acdm_dev_outcome;   /* as acdm_device_outcome */
/* The outcome of ringing a's device for its offer of b: ANSWERED accepts, DECLINED rejects,
 * BUSY/NOANSWER/FAILED are a ring-no-answer (misses count, max_misses applies). reason (may be
 * NULL) rides on the REJECTED/TIMEOUT event as its text. ACDM_ESTATE when the offer is not
 * out on a's device (accepted on the desk, withdrawn, never rung there). */
int acdm_agent_device_result(acdm_model *m, acdm_agent *a, acdm_bericht *b, acdm_dev_outcome o,
                             const char *reason, int64_t now);
/* Whether a's device for kind k can be reached. Unreachable works as zero capacity for k in
 * the availability heaps (no scan at routing time); why (unreachable only) is shown. Emits
 * ACDM_ME_AGENT_DEVICE when it changes. Offers already out stay (the channel reports them). */
int acdm_agent_set_reachable(acdm_model *m, acdm_agent *a, acdm_kind k, bool reachable,
                             const char *why, int64_t now);
static inline bool acdm_agent_reachable(const acdm_agent *a, acdm_kind k)
{
    return !(a->unreachable & (1u << k));
}

/* The agent's work item for b, or NULL. */
acdm_work *acdm_agent_work(const acdm_agent *a, const acdm_bericht *b);
bool acdm_agent_available(const acdm_agent *a, acdm_kind k);
/* What the dashboard, the wallboard and a channel's "is anyone there" show of an agent: one
 * state each, exclusive: logged out; else busy (in a conversation), else in wrap-up, else
 * ready ("available") or not ready. */
typedef enum { ACDM_SHOWN_LOGGED_OUT = 0, ACDM_SHOWN_READY, ACDM_SHOWN_NOT_READY, ACDM_SHOWN_BUSY,
               ACDM_SHOWN_WRAPUP } acdm_shown_state;
acdm_shown_state acdm_agent_shown(const acdm_agent *a);

/* Queues */
bool acdm_queue_is_open(const acdm_queue *q);
/* Why q is open or closed now, for people (the supervisor dashboard): `why` is "emergency"
 * (the config's emergency override), "manual" (closed by hand: a supervisor, acdmctl or the
 * config's "closed"), "schedule" (outside its opening hours) or NULL (open). `manual_closed`:
 * closed by hand (what "open" lifts); `schedule_open`: what the schedule alone says now (true
 * without one); `has_schedule`; `until_ms`: when the schedule's verdict next flips (0: no schedule,
 * or not within 8 days); by/at: who closed or opened it by hand and when (from the runtime
 * override; "" / 0 when unknown). */
typedef struct {
    bool open, manual_closed, schedule_open, has_schedule;
    const char *why;
    int64_t until_ms;
    const char *by;
    int64_t at_ms;
} acdm_queue_status;
void acdm_queue_status_of(const acdm_queue *q, int64_t now, acdm_queue_status *st);
/* The text a channel gives a customer when q is closed (emergency text if that is why). */
const char *acdm_queue_closed_text(const acdm_queue *q, acdm_kind k);
/* 1-based position of a waiting bericht among its queue's waiting berichten of its kind
 * (an estimate for a visitor; O(n) in the queue length), 0 if not waiting. */
uint32_t acdm_queue_position(const acdm_bericht *b);

/* Timers */
int64_t acdm_model_next_due(const acdm_model *m);  /* INT64_MAX when none */
void acdm_model_tick(acdm_model *m, int64_t now);

#endif
