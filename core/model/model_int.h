/* model_int.h -- what model.c and router.c share inside the model; not for other files. */
#ifndef ACDM_MODEL_INT_H
#define ACDM_MODEL_INT_H

#include "model/model.h"

enum { T_OFFER = 1, T_RETRY, T_WAIT, T_RELAX, T_WRAP, T_SCHED, T_RESERVE };

struct acdm_model {
    acdm_config *cfg;
    acdm_model_hooks hooks;
    acdm_queue **queues; size_t n_queues;
    acdm_agent **agents; size_t n_agents;
    acdm_hmap queue_by_name, agent_by_id, bericht_by_id, bericht_by_conv, channels;
    acdm_hmap skill_ids;       /* name -> (void*)(uintptr_t)(id + 1) */
    char **skill_names; size_t n_skill_names;
    acdm_heap timers;
    uint64_t seq;
    uint32_t rnd_state;
    size_t n_berichten;
    acdm_bericht *reserved;   /* berichten kept for their agent after a restart (res_next) */
};

void acdm_emit(acdm_model *m, acdm_mevent_type t, int64_t now, acdm_bericht *b,
               acdm_agent *a, acdm_queue *q, const char *reason, int64_t value);
void acdm_timer_arm(acdm_model *m, acdm_tnode *t, int type, int64_t due);
void acdm_timer_disarm(acdm_model *m, acdm_tnode *t);
void acdm_emit_text(acdm_model *m, acdm_mevent_type t, int64_t now, acdm_bericht *b,
                    acdm_agent *a, acdm_queue *q, const char *reason, int64_t value,
                    const char *text);
uint32_t acdm_model_rand(acdm_model *m);

static inline void acdm_agent_set_idle(acdm_agent *a, int64_t now)
{
    a->idle_since = now;
    a->key_ver++;
}

/* router.c */
bool acdm_router_wait_less(const void *a, const void *b, const void *ctx);
bool acdm_router_avail_less(const void *a, const void *b, const void *ctx);
/* re-evaluates a's place in every (queue, kind) availability heap */
void acdm_router_refresh(acdm_model *m, acdm_agent *a);
/* The routing decisions themselves (no state change): the best waiting bericht for an agent
 * who has room (queue priority, bericht priority, wait; skills), and the best available agent
 * for a waiting bericht (preference, then the queue's strategy; skills). NULL if none. */
acdm_bericht *acdm_router_best_bericht(const acdm_agent *a);
acdm_agent *acdm_router_best_agent(acdm_model *m, const acdm_bericht *b);
/* give a as much waiting work as they can take now, then refresh a's availability */
void acdm_router_agent_free(acdm_model *m, acdm_agent *a, int64_t now);
/* b is waiting in its queue: offer it to the best available agent if there is one */
void acdm_router_place(acdm_model *m, acdm_bericht *b, int64_t now);
/* matches everything matchable in q (after open, join, strategy change) */
void acdm_router_queue(acdm_model *m, acdm_queue *q, int64_t now);
/* Ends b's reservation (see acdm_model_reserve): back in its queue's waiting heap. */
void acdm_model_unreserve(acdm_model *m, acdm_bericht *b, int64_t now);
bool acdm_router_skills_ok(const acdm_agent *a, const acdm_bericht *b);
void acdm_router_offer(acdm_model *m, acdm_bericht *b, acdm_agent *a, int64_t now);
/* the same without updating a's availability (the caller refreshes a afterwards) */
void acdm_router_offer_noref(acdm_model *m, acdm_bericht *b, acdm_agent *a, int64_t now);

/* model.c helpers used by the router */
void acdm_offers_add(acdm_bericht *b, acdm_agent *a);
void acdm_offers_del(acdm_bericht *b, acdm_agent *a);
void acdm_wait_push(acdm_model *m, acdm_bericht *b);
void acdm_wait_remove(acdm_bericht *b);
acdm_work *acdm_work_add(acdm_agent *a, acdm_bericht *b, acdm_work_state st);
void acdm_work_remove(acdm_agent *a, acdm_bericht *b);

#endif
