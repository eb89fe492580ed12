/* model.c -- the ACDM model's state: queues, agents, berichten, their life cycle and timers. */
#include "model/model_int.h"
#include "config/schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTAINER(p, T, f) ((T *)(void *)((char *)(p) - offsetof(T, f)))

static const char *const mevent_names[ACDM_ME__COUNT] = {
    "queued", "offered", "offer_cancelled", "accepted", "rejected", "timeout",
    "transferred", "overflow", "relaxed", "customer_ended", "wrapup_start",
    "wrapup_extended", "done", "abandoned", "agent_state", "agent_join", "agent_leave",
    "queue_open", "queue_closed", "moved", "hold", "resume", "updated", "originated",
    "agent_device"};

const char *acdm_mevent_name(acdm_mevent_type t)
{
    return (unsigned)t < ACDM_ME__COUNT ? mevent_names[t] : "?";
}

static const char *const flow_names[] = {"none", "offered", "answered", "abandoned", "moved"};

const char *acdm_flow_name(acdm_flow f) { return flow_names[(unsigned)f <= ACDM_FLOW_MOVED ? f : 0]; }

acdm_flow acdm_flow_parse(const char *s)
{
    for (int i = 1; s && i <= ACDM_FLOW_MOVED; i++)
        if (!strcmp(s, flow_names[i])) return (acdm_flow)i;
    return ACDM_FLOW_NONE;
}

/* The flow of an event (model.h, acdm_flow) from b's history, which it then updates. */
static void event_flow(acdm_mevent *ev, acdm_bericht *b)
{
    const char *r = ev->reason;
    switch (ev->type) {
    case ACDM_ME_QUEUED:
        /* a new bericht (parked while closed too); one transferred in; a put-back is none, and
         * an overflow was counted by its OVERFLOW event */
        if (r && (!strcmp(r, "new") || !strcmp(r, "closed"))) {
            ev->flow = ev->channel_flow = ACDM_FLOW_OFFERED;
            b->answered_here = b->answered_ever = false;
        } else if (r && !strcmp(r, "transfer")) {
            ev->flow = ACDM_FLOW_OFFERED;
            b->answered_here = false;
        }
        break;
    case ACDM_ME_OVERFLOW: case ACDM_ME_MOVED: case ACDM_ME_UPDATED:
        if (!r || (ev->q && !strcmp(r, ev->q->name)) ||
            (ev->type == ACDM_ME_MOVED && b->state != ACDM_B_QUEUED && b->state != ACDM_B_OFFERED))
            break;   /* an update in the same queue; an active one moved by a reload stays answered */
        ev->flow = b->answered_here ? ACDM_FLOW_OFFERED : ACDM_FLOW_MOVED;
        b->answered_here = false;
        break;
    case ACDM_ME_ACCEPTED:
        if (!b->answered_here) ev->flow = ACDM_FLOW_ANSWERED;
        if (!b->answered_ever) ev->channel_flow = ACDM_FLOW_ANSWERED;
        b->answered_here = b->answered_ever = true;
        break;
    case ACDM_ME_ABANDONED:
        if (!b->answered_here) ev->flow = ACDM_FLOW_ABANDONED;
        if (!b->answered_ever) ev->channel_flow = ACDM_FLOW_ABANDONED;
        break;
    default: break;
    }
    if (b->outbound) ev->flow = ev->channel_flow = ACDM_FLOW_NONE;
}

const char *acdm_agent_state_name(acdm_agent_state s)
{
    switch (s) {
    case ACDM_AGENT_LOGGED_OUT: return "logged_out";
    case ACDM_AGENT_READY: return "ready";
    case ACDM_AGENT_NOT_READY: return "not_ready";
    }
    return "?";
}

void acdm_emit(acdm_model *m, acdm_mevent_type t, int64_t now, acdm_bericht *b,
               acdm_agent *a, acdm_queue *q, const char *reason, int64_t value)
{
    acdm_emit_text(m, t, now, b, a, q, reason, value, NULL);
}

void acdm_emit_text(acdm_model *m, acdm_mevent_type t, int64_t now, acdm_bericht *b,
                    acdm_agent *a, acdm_queue *q, const char *reason, int64_t value,
                    const char *text)
{
    acdm_mevent ev = {.type = t, .ts = now, .b = b, .a = a, .q = q, .reason = reason,
                      .value = value, .text = text};
    if (b) event_flow(&ev, b);   /* keeps b's history even without a hook */
    if (!m->hooks.emit) return;
    if (t == ACDM_ME_ABANDONED && b)
        ev.quick_drop = now - b->enqueued_ms < (int64_t)b->queue->def->quick_drop_s * 1000;
    m->hooks.emit(m->hooks.ctx, &ev);
}

uint32_t acdm_model_rand(acdm_model *m)
{
    uint32_t x = m->rnd_state; /* xorshift32 */
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    return m->rnd_state = x;
}

/* ------------------------------------------------------------------ timers */

static bool tnode_less(const void *a, const void *b, const void *ctx)
{
    (void)ctx;
    return ((const acdm_tnode *)a)->due < ((const acdm_tnode *)b)->due;
}

void acdm_timer_arm(acdm_model *m, acdm_tnode *t, int type, int64_t due)
{
    t->type = (uint8_t)type;
    t->due = due;
    if (t->idx >= 0) acdm_heap_update(&m->timers, t);
    else acdm_heap_push(&m->timers, t);
}

void acdm_timer_disarm(acdm_model *m, acdm_tnode *t)
{
    if (t->idx >= 0) acdm_heap_remove(&m->timers, t);
    t->type = 0;
}

int64_t acdm_model_next_due(const acdm_model *m)
{
    const acdm_tnode *t = acdm_heap_peek(&m->timers);
    return t ? t->due : INT64_MAX;
}

/* ------------------------------------------------------------------ skills */

static int skill_id(acdm_model *m, const char *name)
{
    void *v = acdm_hmap_get(&m->skill_ids, name);
    if (v) return (int)((uintptr_t)v - 1);
    if (m->n_skill_names >= 65535) return -1;
    char **nn = realloc(m->skill_names, (m->n_skill_names + 1) * sizeof *nn);
    if (!nn) return -1;
    m->skill_names = nn;
    char *copy = strdup(name);
    if (!copy) return -1;
    nn[m->n_skill_names] = copy;
    acdm_hmap_put(&m->skill_ids, copy, (void *)(uintptr_t)(m->n_skill_names + 1));
    return (int)m->n_skill_names++;
}

/* Builds a skill list; later entries with the same name raise the level. */
static acdm_skill_ref *skills_make(acdm_model *m, const acdm_skill *s, size_t n,
                                   const acdm_skill *s2, size_t n2, uint8_t *count)
{
    *count = 0;
    if (!n && !n2) return NULL;
    acdm_skill_ref *r = calloc(n + n2, sizeof *r);
    if (!r) return NULL;
    for (size_t i = 0; i < n + n2; i++) {
        const acdm_skill *sk = i < n ? &s[i] : &s2[i - n];
        int id = skill_id(m, sk->name);
        if (id < 0) continue;
        unsigned j = 0;
        while (j < *count && r[j].id != id) j++;
        if (j == *count) { r[j].id = (uint16_t)id; r[j].level = 0; (*count)++; }
        if (sk->level > r[j].level) r[j].level = (uint8_t)(sk->level > 255 ? 255 : sk->level);
        if (*count == 255) break;
    }
    return r;
}

/* ------------------------------------------------------------------ queues */

static bool compute_open(const acdm_queue *q, int64_t now)
{
    const acdm_queue_def *d = q->def;
    if (d->closed || d->emergency) return false;
    if (!d->schedule) return true;
    const acdm_schedule_def *s = acdm_config_schedule(q->model->cfg, d->schedule);
    return s ? acdm_schedule_open_at(s, now) : true;
}

static void queue_arm_schedule(acdm_model *m, acdm_queue *q, int64_t now)
{
    const acdm_schedule_def *s = q->def->schedule ? acdm_config_schedule(m->cfg, q->def->schedule) : NULL;
    if (s && !q->def->closed && !q->def->emergency)
        acdm_timer_arm(m, &q->t_sched, T_SCHED, acdm_schedule_next_change(s, now));
    else
        acdm_timer_disarm(m, &q->t_sched);
}

static void park_unlink(acdm_bericht *b);
static void arm_wait_timers(acdm_model *m, acdm_bericht *b, int64_t now);

/* Re-evaluates open/closed; emits a change. */
static void queue_update_open(acdm_model *m, acdm_queue *q, int64_t now, bool announce)
{
    bool open = compute_open(q, now);
    if (open != q->open) {
        q->open = open;
        if (announce)
            acdm_emit(m, open ? ACDM_ME_QUEUE_OPEN : ACDM_ME_QUEUE_CLOSED, now, NULL, NULL, q,
                      q->def->emergency ? "emergency" : q->def->closed ? "supervisor" : "schedule", 0);
        if (open && q->parked) {
            /* what waited for the opening is offered now, in arrival order, from its original
             * queue time */
            while (q->parked) {
                acdm_bericht *b = q->parked;
                park_unlink(b);
                if (b->state != ACDM_B_QUEUED) continue;
                acdm_wait_push(m, b);
                arm_wait_timers(m, b, now);
            }
            acdm_router_queue(m, q, now);
        }
    }
    queue_arm_schedule(m, q, now);
}

static acdm_queue *queue_new(acdm_model *m, const acdm_queue_def *d, int64_t now)
{
    acdm_queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->name = strdup(d->name);
    q->def = d;
    q->model = m;
    q->strategy = d->strategy;
    q->t_sched.idx = -1;
    for (int k = 0; k < ACDM_KIND__COUNT; k++) {
        acdm_heap_init(&q->waiting[k], offsetof(acdm_bericht, wait_idx), acdm_router_wait_less, q);
        acdm_heap_init(&q->avail[k], offsetof(acdm_member, avail_idx) + (size_t)k * sizeof(int32_t),
                       acdm_router_avail_less, q);
    }
    q->skills = skills_make(m, d->skills, d->n_skills, NULL, 0, &q->n_skills);
    q->open = compute_open(q, now);
    queue_arm_schedule(m, q, now);
    return q;
}

bool acdm_queue_is_open(const acdm_queue *q) { return q->open; }

void acdm_queue_status_of(const acdm_queue *q, int64_t now, acdm_queue_status *st)
{
    const acdm_queue_def *d = q->def;
    const acdm_schedule_def *s = d->schedule ? acdm_config_schedule(q->model->cfg, d->schedule) : NULL;
    memset(st, 0, sizeof *st);
    st->open = q->open;
    st->manual_closed = d->closed;
    st->has_schedule = s != NULL;
    st->schedule_open = s ? acdm_schedule_open_at(s, now) : true;
    st->why = q->open ? NULL : d->emergency ? "emergency" : d->closed ? "manual" : "schedule";
    st->by = d->closed_by;
    st->at_ms = d->closed_at_ms;
    if (s) {
        /* the schedule's next flip: its next possible changes, at most 8 days ahead */
        int64_t t = now;
        for (int i = 0; i < 64 && t < now + 8 * 86400000LL; i++) {
            t = acdm_schedule_next_change(s, t);
            if (acdm_schedule_open_at(s, t) != st->schedule_open) { st->until_ms = t; break; }
        }
    }
}

const char *acdm_queue_closed_text(const acdm_queue *q, acdm_kind k)
{
    if (q->def->emergency && q->def->emergency_text) return q->def->emergency_text;
    return acdm_config_closed_text(q->def, k);
}

uint32_t acdm_queue_position(const acdm_bericht *b)
{
    if (b->wait_idx < 0) return 0;
    const acdm_heap *h = &b->queue->waiting[b->kind];
    uint32_t pos = 1;
    for (uint32_t i = 0; i < h->n; i++)
        if (h->items[i] != b && acdm_router_wait_less(h->items[i], b, NULL)) pos++;
    return pos;
}

/* ------------------------------------------------------------------ agents */

acdm_shown_state acdm_agent_shown(const acdm_agent *a)
{
    if (a->state == ACDM_AGENT_LOGGED_OUT) return ACDM_SHOWN_LOGGED_OUT;
    for (uint32_t i = 0; i < a->n_work; i++)
        if (a->work[i].state == ACDM_W_ACTIVE) return ACDM_SHOWN_BUSY;
    if (a->n_wrapup > 0) return ACDM_SHOWN_WRAPUP;
    return a->state == ACDM_AGENT_READY ? ACDM_SHOWN_READY : ACDM_SHOWN_NOT_READY;
}

bool acdm_agent_available(const acdm_agent *a, acdm_kind k)
{
    if (a->state != ACDM_AGENT_READY || a->n_wrapup || a->removed) return false;
    if (a->load[k] >= a->cap[k] || (a->unreachable & (1u << k))) return false;
    if (a->voice_blocks && k != ACDM_KIND_VOICE && a->load[ACDM_KIND_VOICE] > 0) return false;
    return true;
}

static void agent_occupancy(acdm_agent *a)
{
    uint32_t occ = 0;
    for (int k = 0; k < ACDM_KIND__COUNT; k++)
        if (a->cap[k] > 0) occ += (uint32_t)(a->load[k] * 1000 / a->cap[k]);
    if (occ != a->occupancy) a->key_ver++;
    a->occupancy = occ;
}

acdm_work *acdm_work_add(acdm_agent *a, acdm_bericht *b, acdm_work_state st)
{
    if (a->n_work == a->cap_work) {
        uint32_t nc = a->cap_work ? a->cap_work * 2 : 4;
        acdm_work *nw = realloc(a->work, nc * sizeof *nw);
        if (!nw) abort(); /* out of memory in the routing core: nothing sane to do */
        a->work = nw;
        a->cap_work = nc;
    }
    acdm_work *w = &a->work[a->n_work++];
    w->b = b;
    w->state = (uint8_t)st;
    w->device = false;
    a->load[b->kind]++;
    if (st == ACDM_W_WRAPUP) a->n_wrapup++;
    agent_occupancy(a);
    return w;
}

acdm_work *acdm_agent_work(const acdm_agent *a, const acdm_bericht *b)
{
    for (uint32_t i = 0; i < a->n_work; i++)
        if (a->work[i].b == b) return &a->work[i];
    return NULL;
}

void acdm_work_remove(acdm_agent *a, acdm_bericht *b)
{
    acdm_work *w = acdm_agent_work(a, b);
    if (!w) return;
    if (w->state == ACDM_W_WRAPUP) a->n_wrapup--;
    a->load[b->kind]--;
    *w = a->work[--a->n_work];
    agent_occupancy(a);
}

acdm_member *acdm_agent_member(const acdm_agent *a, const acdm_queue *q)
{
    for (uint32_t i = 0; i < a->n_members; i++)
        if (a->members[i]->queue == q) return a->members[i];
    return NULL;
}

static void member_detach(acdm_member *mb)
{
    acdm_queue *q = mb->queue;
    for (int k = 0; k < ACDM_KIND__COUNT; k++) acdm_heap_remove(&q->avail[k], mb);
    for (uint32_t i = 0; i < q->n_members; i++)
        if (q->members[i] == mb) { q->members[i] = q->members[--q->n_members]; break; }
}

static acdm_member *member_attach(acdm_agent *a, acdm_queue *q, bool joined)
{
    acdm_member *mb = calloc(1, sizeof *mb);
    if (!mb) return NULL;
    mb->agent = a;
    mb->queue = q;
    mb->joined = joined;
    mb->position = a->position;
    for (int k = 0; k < ACDM_KIND__COUNT; k++) mb->avail_idx[k] = -1;
    if (q->n_members == q->cap_members) {
        uint32_t nc = q->cap_members ? q->cap_members * 2 : 8;
        acdm_member **nm = realloc(q->members, nc * sizeof *nm);
        if (!nm) { free(mb); return NULL; }
        q->members = nm;
        q->cap_members = nc;
    }
    q->members[q->n_members++] = mb;
    return mb;
}

/* (Re)builds an agent's settings and memberships from its definition; joined choices stay. */
/* The calls an agent's phone endpoint carries (its channel reports voice; a callback is a call
 * to the agent's phone first). */
static const acdm_kind phone_kinds[] = {ACDM_KIND_VOICE, ACDM_KIND_CALLBACK};

/* An agent's phone changed (or is new): "register" waits for the softphone to register
 * (unreachable until the channel says so); a static URI, or none, is reachable. */
static void agent_phone_changed(acdm_agent *a, const char *phone)
{
    for (size_t i = 0; i < sizeof phone_kinds / sizeof *phone_kinds; i++) {
        acdm_kind k = phone_kinds[i];
        if (phone && !strcmp(phone, "register")) {
            a->unreachable |= (uint8_t)(1u << k);
            snprintf(a->unreach_why[k], sizeof a->unreach_why[k], "%s", "phone not registered");
        } else {
            a->unreachable &= (uint8_t)~(1u << k);
            a->unreach_why[k][0] = 0;
        }
    }
}

static void agent_apply_def(acdm_model *m, acdm_agent *a, const acdm_agent_def *d, uint32_t position)
{
    const char *old_phone = a->def ? acdm_config_agent_endpoint(a->def, "phone") : NULL;
    const char *new_phone = acdm_config_agent_endpoint(d, "phone");
    if (!a->def || !old_phone != !new_phone || (old_phone && strcmp(old_phone, new_phone)))
        agent_phone_changed(a, new_phone);
    a->def = d;
    a->position = position;
    for (int k = 0; k < ACDM_KIND__COUNT; k++) a->cap[k] = d->capacity[k];
    a->voice_blocks = d->voice_blocks;
    free(a->skills);
    a->skills = skills_make(m, d->skills, d->n_skills, NULL, 0, &a->n_skills);
    acdm_member **old = a->members;
    uint32_t n_old = a->n_members;
    a->members = d->n_queues ? calloc(d->n_queues, sizeof *a->members) : NULL;
    a->n_members = 0;
    for (size_t i = 0; i < d->n_queues; i++) {
        acdm_queue *q = acdm_hmap_get(&m->queue_by_name, d->queues[i]);
        if (!q || !a->members) continue;
        acdm_member *mb = NULL;
        for (uint32_t j = 0; j < n_old; j++)
            if (old[j] && old[j]->queue == q) { mb = old[j]; old[j] = NULL; break; }
        if (!mb) mb = member_attach(a, q, true);
        if (!mb) continue;
        mb->position = position;
        a->members[a->n_members++] = mb;
    }
    for (uint32_t j = 0; j < n_old; j++)
        if (old[j]) { member_detach(old[j]); free(old[j]); }
    free(old);
    agent_occupancy(a);
}

static acdm_agent *agent_new(acdm_model *m, const acdm_agent_def *d, uint32_t position)
{
    acdm_agent *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->id = strdup(d->id);
    a->state = ACDM_AGENT_LOGGED_OUT;
    agent_apply_def(m, a, d, position);
    return a;
}

static void agent_free(acdm_agent *a)
{
    for (uint32_t i = 0; i < a->n_members; i++) { member_detach(a->members[i]); free(a->members[i]); }
    free(a->members);
    free(a->work);
    free(a->skills);
    free(a->id);
    free(a);
}

/* ------------------------------------------------------------------ berichten */

static void park_unlink(acdm_bericht *b)
{
    if (!b->parked) return;
    acdm_queue *q = b->queue;
    if (b->park_prev) b->park_prev->park_next = b->park_next; else q->parked = b->park_next;
    if (b->park_next) b->park_next->park_prev = b->park_prev; else q->parked_tail = b->park_prev;
    b->park_prev = b->park_next = NULL;
    b->parked = false;
}

/* b (queued, not in the waiting heap) waits in its closed queue without being offered. */
static void park(acdm_bericht *b)
{
    acdm_queue *q = b->queue;
    b->state = ACDM_B_QUEUED;
    b->parked = true;
    b->park_next = NULL;
    b->park_prev = q->parked_tail;
    if (q->parked_tail) q->parked_tail->park_next = b; else q->parked = b;
    q->parked_tail = b;
}

void acdm_wait_push(acdm_model *m, acdm_bericht *b)
{
    park_unlink(b);
    if (b->reserved) {                    /* moved or updated while kept for its agent */
        for (acdm_bericht **pp = &m->reserved; *pp; pp = &(*pp)->res_next)
            if (*pp == b) { *pp = b->res_next; break; }
        b->reserved = NULL;
        b->res_next = NULL;
        if (b->t_offer.type == T_RESERVE) acdm_timer_disarm(m, &b->t_offer);
    }
    b->state = ACDM_B_QUEUED;
    acdm_heap_push(&b->queue->waiting[b->kind], b);
    b->queue->n_waiting++;
}

void acdm_wait_remove(acdm_bericht *b)
{
    if (b->wait_idx < 0) return;
    acdm_heap_remove(&b->queue->waiting[b->kind], b);
    b->queue->n_waiting--;
}

void acdm_offers_add(acdm_bericht *b, acdm_agent *a)
{
    if (b->n_offers == b->cap_offers) {
        uint16_t nc = (uint16_t)(b->cap_offers * 2);
        acdm_agent **no = malloc(nc * sizeof *no);
        if (!no) abort(); /* out of memory in the routing core */
        memcpy(no, b->offers, b->n_offers * sizeof *no);
        if (b->offers != b->offer_inline) free(b->offers);
        b->offers = no;
        b->cap_offers = nc;
    }
    b->offers[b->n_offers++] = a;
}

void acdm_offers_del(acdm_bericht *b, acdm_agent *a)
{
    for (uint16_t i = 0; i < b->n_offers; i++)
        if (b->offers[i] == a) { b->offers[i] = b->offers[--b->n_offers]; return; }
}

static void bericht_free(acdm_model *m, acdm_bericht *b)
{
    if (b->offers != b->offer_inline) free(b->offers);
    acdm_timer_disarm(m, &b->t_offer);
    acdm_timer_disarm(m, &b->t_wait);
    acdm_timer_disarm(m, &b->t_relax);
    acdm_timer_disarm(m, &b->t_wrap);
    acdm_wait_remove(b);
    park_unlink(b);
    if (b->reserved) {
        for (acdm_bericht **pp = &m->reserved; *pp; pp = &(*pp)->res_next)
            if (*pp == b) { *pp = b->res_next; break; }
        b->reserved = NULL;
    }
    acdm_hmap_del(&m->bericht_by_id, b->id);
    if (b->conv_scope && acdm_hmap_get(&m->bericht_by_conv, b->conv_scope) == b)
        acdm_hmap_del(&m->bericht_by_conv, b->conv_scope);
    free(b->conv_heap);
    m->n_berichten--;
    free(b->skills);
    free(b);
}

static const char *intern_channel(acdm_model *m, const char *name)
{
    if (!name) name = "api";
    char *s = acdm_hmap_get(&m->channels, name);
    if (s) return s;
    s = strdup(name);
    if (!s) return "api";
    acdm_hmap_put(&m->channels, s, s);
    return s;
}

/* Arms the wait-related timers of a bericht that (re)entered q. */
static void arm_wait_timers(acdm_model *m, acdm_bericht *b, int64_t now)
{
    const acdm_queue_def *d = b->queue->def;
    if (d->max_wait_s > 0 && d->overflow)
        acdm_timer_arm(m, &b->t_wait, T_WAIT, b->enqueued_ms + (int64_t)d->max_wait_s * 1000);
    else
        acdm_timer_disarm(m, &b->t_wait);
    if (d->relax_after_s > 0 && b->n_skills && !b->skills_relaxed)
        acdm_timer_arm(m, &b->t_relax, T_RELAX, b->enqueued_ms + (int64_t)d->relax_after_s * 1000);
    else
        acdm_timer_disarm(m, &b->t_relax);
    (void)now;
}

static int bericht_create(acdm_model *m, const acdm_new_bericht *nb, acdm_queue *q, int64_t now,
                          acdm_bericht **out)
{
    if (!nb->id || strlen(nb->id) > 36 || (unsigned)nb->kind >= ACDM_KIND__COUNT)
        return ACDM_EINVAL;
    /* one block: the bericht and its strings (they never change); the conversation key is
     * stored as "<channel>\x1f<key>" with b->conversation pointing past the separator */
    const char *chan = nb->channel ? nb->channel : "";
    size_t lf = nb->from ? strlen(nb->from) + 1 : 0;
    size_t lch = strlen(chan) + 1;
    size_t lc = nb->conversation && *nb->conversation ? lch + strlen(nb->conversation) + 1 : 0;
    acdm_bericht *b = calloc(1, sizeof *b + lf + lc);
    if (!b) return ACDM_ENOMEM;
    strcpy(b->id, nb->id);
    b->kind = (uint8_t)nb->kind;
    b->priority = (uint8_t)(nb->priority < 0 ? 0 : nb->priority > 9 ? 9 : nb->priority);
    b->wait_idx = -1;
    b->offers = b->offer_inline;
    b->cap_offers = 1;
    b->t_offer.idx = b->t_wait.idx = b->t_relax.idx = b->t_wrap.idx = -1;
    b->seq = ++m->seq;
    b->queue = q;
    b->skills = skills_make(m, q->def->skills, q->def->n_skills, nb->skills, nb->n_skills, &b->n_skills);
    b->created_ms = nb->created_ms ? nb->created_ms : now;
    b->queued_ms = nb->queued_ms ? nb->queued_ms : now;
    b->enqueued_ms = now;
    b->answered_here = b->answered_ever = nb->answered;
    b->channel = intern_channel(m, nb->channel);
    char *tail = (char *)(b + 1);
    if (lf) { b->from = memcpy(tail, nb->from, lf); tail += lf; }
    if (lc) {
        memcpy(tail, chan, lch - 1);
        tail[lch - 1] = '\x1f';
        memcpy(tail + lch, nb->conversation, lc - lch);
        b->conv_scope = tail;
        b->conversation = tail + lch;
    }
    if (nb->preferred_agent) b->preferred = acdm_hmap_get(&m->agent_by_id, nb->preferred_agent);
    if (acdm_hmap_insert(&m->bericht_by_id, b->id, b)) {
        free(b->skills);
        free(b);
        return ACDM_EEXIST;
    }
    if (b->conv_scope) acdm_hmap_put(&m->bericht_by_conv, b->conv_scope, b);
    m->n_berichten++;
    *out = b;
    return 0;
}

static void enqueue_and_route(acdm_model *m, acdm_bericht *b, int64_t now, const char *reason)
{
    acdm_wait_push(m, b);
    arm_wait_timers(m, b, now);
    acdm_emit(m, ACDM_ME_QUEUED, now, b, NULL, b->queue, reason, 0);
    acdm_router_place(m, b, now);
}

int acdm_model_submit(acdm_model *m, const acdm_new_bericht *nb, int64_t now,
                      acdm_bericht **out, const char **closed_text)
{
    if (!nb || !nb->queue) return ACDM_EINVAL;
    acdm_queue *q = acdm_hmap_get(&m->queue_by_name, nb->queue);
    if (!q) return ACDM_ENOENT;
    if ((unsigned)nb->kind >= ACDM_KIND__COUNT) return ACDM_EINVAL;
    if (!q->open && !nb->wait_if_closed) {
        if (closed_text) *closed_text = acdm_queue_closed_text(q, nb->kind);
        return ACDM_ECLOSED;
    }
    acdm_bericht *b;
    int rc = bericht_create(m, nb, q, now, &b);
    if (rc) return rc;
    if (out) *out = b;
    if (!q->open) {
        park(b);
        acdm_emit(m, ACDM_ME_QUEUED, now, b, NULL, b->queue, "closed", 0);
        return 0;
    }
    enqueue_and_route(m, b, now, "new");
    return 0;
}

int acdm_model_restore(acdm_model *m, const acdm_new_bericht *nb, int64_t now, acdm_bericht **out)
{
    if (!nb || !nb->queue) return ACDM_EINVAL;
    acdm_queue *q = acdm_hmap_get(&m->queue_by_name, nb->queue);
    if (!q) {
        /* its queue is gone from the config: fall back to the first queue */
        if (!m->n_queues) return ACDM_ENOENT;
        q = m->queues[0];
    }
    acdm_bericht *b;
    int rc = bericht_create(m, nb, q, now, &b);
    if (rc) return rc;
    if (out) *out = b;
    /* restored without routing: the owner routes once everything is loaded (agents are
     * logged out after a restart anyway) */
    acdm_wait_push(m, b);
    arm_wait_timers(m, b, now);
    return 0;
}

acdm_bericht *acdm_model_bericht(const acdm_model *m, const char *id)
{
    return id ? acdm_hmap_get(&m->bericht_by_id, id) : NULL;
}

acdm_bericht *acdm_model_conversation(const acdm_model *m, const char *channel, const char *key)
{
    char buf[512];
    if (!key || !*key) return NULL;
    int n = snprintf(buf, sizeof buf, "%s\x1f%s", channel ? channel : "", key);
    if (n < 0 || (size_t)n >= sizeof buf) return NULL;   /* longer than any stored key */
    return acdm_hmap_get(&m->bericht_by_conv, buf);
}

int acdm_model_set_conversation(acdm_model *m, acdm_bericht *b, const char *key)
{
    if (!b || !key || !*key) return ACDM_EINVAL;
    if (b->conversation) return strcmp(b->conversation, key) ? ACDM_ESTATE : 0;
    size_t lch = strlen(b->channel) + 1, lk = strlen(key) + 1;
    if (lch + lk > 512) return ACDM_EINVAL;   /* acdm_model_conversation's lookup limit */
    if (acdm_model_conversation(m, b->channel, key)) return ACDM_EEXIST;
    char *s = malloc(lch + lk);
    if (!s) return ACDM_ENOMEM;
    memcpy(s, b->channel, lch - 1);
    s[lch - 1] = '\x1f';
    memcpy(s + lch, key, lk);
    if (acdm_hmap_put(&m->bericht_by_conv, s, b)) { free(s); return ACDM_ENOMEM; }
    b->conv_heap = s;
    b->conv_scope = s;
    b->conversation = s + lch;
    return 0;
}

int acdm_model_reserve(acdm_model *m, acdm_bericht *b, const char *agent_id, int64_t until_ms)
{
    acdm_agent *a = agent_id ? acdm_hmap_get(&m->agent_by_id, agent_id) : NULL;
    if (!a) return ACDM_ENOENT;
    if (!b || b->state != ACDM_B_QUEUED || b->wait_idx < 0 || b->reserved) return ACDM_ESTATE;
    acdm_wait_remove(b);
    acdm_timer_disarm(m, &b->t_wait);
    acdm_timer_disarm(m, &b->t_relax);
    b->reserved = a;
    b->preferred = a;
    b->res_next = m->reserved;
    m->reserved = b;
    acdm_timer_arm(m, &b->t_offer, T_RESERVE, until_ms);
    return 0;
}

void acdm_model_unreserve(acdm_model *m, acdm_bericht *b, int64_t now)
{
    if (!b->reserved) return;
    for (acdm_bericht **pp = &m->reserved; *pp; pp = &(*pp)->res_next)
        if (*pp == b) { *pp = b->res_next; break; }
    b->reserved = NULL;
    b->res_next = NULL;
    if (b->t_offer.type == T_RESERVE) acdm_timer_disarm(m, &b->t_offer);
    if (b->state != ACDM_B_QUEUED) return;
    acdm_wait_push(m, b);
    arm_wait_timers(m, b, now);
}

uint32_t acdm_queue_n_held(const acdm_model *m, const acdm_queue *q)
{
    uint32_t n = 0;
    for (const acdm_bericht *b = q->parked; b; b = b->park_next) n++;
    for (const acdm_bericht *b = m->reserved; b; b = b->res_next) n += b->queue == q;
    return n;
}

size_t acdm_model_n_berichten(const acdm_model *m) { return m->n_berichten; }

/* Withdraws every outstanding offer of b (ring-all may have several) except except's;
 * the agents withdrawn from are appended to freed (room for b->n_offers) or refreshed. */
static void cancel_offers(acdm_model *m, acdm_bericht *b, acdm_agent *except, const char *reason,
                          int64_t now, acdm_agent **freed, uint32_t *n_freed)
{
    for (uint16_t i = 0; i < b->n_offers;) {
        acdm_agent *a = b->offers[i];
        if (a == except) { i++; continue; }
        acdm_offers_del(b, a);
        acdm_work_remove(a, b);
        acdm_emit(m, ACDM_ME_OFFER_CANCELLED, now, b, a, b->queue, reason, 0);
        if (freed) freed[(*n_freed)++] = a;
        else acdm_router_refresh(m, a);
    }
    if (!b->n_offers) acdm_timer_disarm(m, &b->t_offer);
}

/* Frees agents after their offer/work ended: they may take new work now. */
static void free_agents(acdm_model *m, acdm_agent **list, uint32_t n, int64_t now)
{
    for (uint32_t i = 0; i < n; i++) acdm_router_agent_free(m, list[i], now);
}

static void done_why(acdm_model *m, acdm_bericht *b, const char *reason, int64_t now)
{
    b->state = ACDM_B_DONE;
    b->ended_ms = now;
    acdm_emit(m, ACDM_ME_DONE, now, b, b->agent, b->queue, reason, 0);
    bericht_free(m, b);
}

/* An outbound contact's DONE says so: the reports count it as outbound, not as handled. */
static void done(acdm_model *m, acdm_bericht *b, int64_t now)
{
    done_why(m, b, b->outbound ? "outbound" : NULL, now);
}

/* Ends b's hold, if any: RESUME with the held time (reason NULL: the agent resumed). */
static void hold_end(acdm_model *m, acdm_bericht *b, acdm_agent *a, const char *reason, int64_t now)
{
    if (!b->held) return;
    b->held = false;
    acdm_emit(m, ACDM_ME_RESUME, now, b, a, b->queue, reason, now - b->hold_ms);
}

int acdm_model_end(acdm_model *m, acdm_bericht *b, const char *reason, int64_t now)
{
    if (!b) return ACDM_EINVAL;
    if (b->state == ACDM_B_QUEUED || b->state == ACDM_B_OFFERED) {
        uint32_t n = 0;
        acdm_agent *freed[64];
        acdm_agent **list = b->n_offers > 64 ? malloc(b->n_offers * sizeof *list) : freed;
        cancel_offers(m, b, NULL, "ended", now, list, &n);
        acdm_wait_remove(b);
        b->state = ACDM_B_ABANDONED;
        b->ended_ms = now;
        acdm_emit(m, ACDM_ME_ABANDONED, now, b, NULL, b->queue, reason, now - b->queued_ms);
        bericht_free(m, b);
        if (list) free_agents(m, list, n, now);
        if (list && list != freed) free(list);
        return 0;
    }
    if (b->state == ACDM_B_ACTIVE) {
        if (b->customer_gone) return 0;
        b->customer_gone = true;
        acdm_emit(m, ACDM_ME_CUSTOMER_ENDED, now, b, b->agent, b->queue, reason, 0);
        hold_end(m, b, b->agent, "hangup", now);   /* nobody is left on hold */
        /* a call is over when the caller hangs up: its wrap-up starts; other kinds wait for
         * the agent to complete (topics) */
        if (b->kind == ACDM_KIND_VOICE) return acdm_agent_complete(m, b->agent, b, now);
        return 0;
    }
    return 0; /* wrap-up: the customer's leaving changes nothing */
}

/* ------------------------------------------------------------------ agent actions */

int acdm_agent_login(acdm_model *m, acdm_agent *a, int64_t now)
{
    if (a->state != ACDM_AGENT_LOGGED_OUT) return 0;
    a->state = ACDM_AGENT_NOT_READY;
    snprintf(a->reason, sizeof a->reason, "%s", "login");
    a->state_since = now;
    acdm_agent_set_idle(a, now);
    a->misses = 0;
    acdm_emit(m, ACDM_ME_AGENT_STATE, now, NULL, a, NULL, a->reason, 0);
    return 0;
}

/* Puts an agent's work back: offers withdrawn, active berichten back in the queue with their
 * original queue time, wrap-ups finished. */
static void agent_release_work(acdm_model *m, acdm_agent *a, const char *reason, int64_t now)
{
    while (a->n_work) {
        acdm_work w = a->work[a->n_work - 1];
        acdm_bericht *b = w.b;
        acdm_work_remove(a, b);
        if (w.state == ACDM_W_OFFERED) {
            acdm_offers_del(b, a);
            acdm_emit(m, ACDM_ME_OFFER_CANCELLED, now, b, a, b->queue, reason, 0);
            if (!b->n_offers) {
                acdm_timer_disarm(m, &b->t_offer);
                enqueue_and_route(m, b, now, reason);
            }
        } else if (w.state == ACDM_W_ACTIVE) {
            hold_end(m, b, a, "logout", now);
            b->agent = NULL;
            /* an outbound contact is the agent's own: it ends with them */
            if (b->customer_gone || b->outbound) { done(m, b, now); continue; }
            enqueue_and_route(m, b, now, reason);
        } else {
            acdm_timer_disarm(m, &b->t_wrap);
            done(m, b, now);
        }
    }
}

int acdm_agent_logout(acdm_model *m, acdm_agent *a, const char *reason, int64_t now)
{
    if (a->state == ACDM_AGENT_LOGGED_OUT) return 0;
    a->state = ACDM_AGENT_LOGGED_OUT;
    snprintf(a->reason, sizeof a->reason, "%s", reason ? reason : "logout");
    a->state_since = now;
    acdm_router_refresh(m, a);
    acdm_emit(m, ACDM_ME_AGENT_STATE, now, NULL, a, NULL, a->reason, 0);
    agent_release_work(m, a, "logout", now);
    return 0;
}

int acdm_agent_ready(acdm_model *m, acdm_agent *a, int64_t now)
{
    if (a->state == ACDM_AGENT_LOGGED_OUT) return ACDM_ESTATE;
    if (a->state == ACDM_AGENT_READY) return 0;
    a->state = ACDM_AGENT_READY;
    a->reason[0] = 0;
    a->state_since = now;
    a->misses = 0;
    if (!a->n_work) acdm_agent_set_idle(a, now);
    acdm_emit(m, ACDM_ME_AGENT_STATE, now, NULL, a, NULL, NULL, 0);
    acdm_router_agent_free(m, a, now);
    return 0;
}

int acdm_agent_not_ready(acdm_model *m, acdm_agent *a, const char *reason, int64_t now)
{
    if (a->state == ACDM_AGENT_LOGGED_OUT) return ACDM_ESTATE;
    if (reason && !acdm_config_reason_valid(m->cfg, reason)) return ACDM_EINVAL;
    a->state = ACDM_AGENT_NOT_READY;
    snprintf(a->reason, sizeof a->reason, "%s", reason ? reason : "");
    a->state_since = now;
    acdm_router_refresh(m, a);
    acdm_emit(m, ACDM_ME_AGENT_STATE, now, NULL, a, NULL, a->reason, 0);
    return 0;
}

int acdm_agent_join(acdm_model *m, acdm_agent *a, acdm_queue *q, int64_t now)
{
    acdm_member *mb = acdm_agent_member(a, q);
    if (!mb) return ACDM_EPERM;
    if (mb->joined) return 0;
    mb->joined = true;
    acdm_emit(m, ACDM_ME_AGENT_JOIN, now, NULL, a, q, NULL, 0);
    acdm_router_agent_free(m, a, now);
    return 0;
}

int acdm_agent_leave(acdm_model *m, acdm_agent *a, acdm_queue *q, int64_t now)
{
    acdm_member *mb = acdm_agent_member(a, q);
    if (!mb) return ACDM_EPERM;
    if (!mb->joined) return 0;
    mb->joined = false;
    acdm_router_refresh(m, a);
    acdm_emit(m, ACDM_ME_AGENT_LEAVE, now, NULL, a, q, NULL, 0);
    return 0;
}

int acdm_agent_accept(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now)
{
    acdm_work *w = acdm_agent_work(a, b);
    if (!w || w->state != ACDM_W_OFFERED) return ACDM_ESTATE;
    w->state = ACDM_W_ACTIVE;
    acdm_offers_del(b, a);
    b->state = ACDM_B_ACTIVE;
    b->agent = a;
    b->accepted_ms = now;
    a->misses = 0;
    acdm_timer_disarm(m, &b->t_wait);
    acdm_timer_disarm(m, &b->t_relax);
    uint32_t n = 0;
    acdm_agent *freed[64];
    acdm_agent **list = b->n_offers > 64 ? malloc(b->n_offers * sizeof *list) : freed;
    cancel_offers(m, b, a, "accepted-elsewhere", now, list, &n);
    acdm_timer_disarm(m, &b->t_offer);
    acdm_emit(m, ACDM_ME_ACCEPTED, now, b, a, b->queue, NULL, now - b->queued_ms);
    if (list) free_agents(m, list, n, now);
    if (list && list != freed) free(list);
    return 0;
}

/* An offer to a ended without acceptance (reject or ring-no-answer). reason/text: a device
 * offer's outcome ("busy", ...) and the channel's sentence, else NULL. */
static void offer_failed(acdm_model *m, acdm_agent *a, acdm_bericht *b, bool timeout,
                         const char *reason, const char *text, int64_t now)
{
    acdm_work_remove(a, b);
    acdm_offers_del(b, a);
    acdm_emit_text(m, timeout ? ACDM_ME_TIMEOUT : ACDM_ME_REJECTED, now, b, a, b->queue, reason, 0, text);
    if (timeout) {
        a->misses++;
        if (m->cfg->max_misses > 0 && a->misses >= m->cfg->max_misses &&
            a->state == ACDM_AGENT_READY) {
            a->state = ACDM_AGENT_NOT_READY;
            snprintf(a->reason, sizeof a->reason, "%s", "no-answer");
            a->state_since = now;
            acdm_emit(m, ACDM_ME_AGENT_STATE, now, NULL, a, NULL, a->reason, 0);
        }
    }
    if (!b->n_offers) {
        /* back in the queue with its original queue time; not straight back to this agent */
        acdm_timer_disarm(m, &b->t_offer);
        if (b->preferred == a) b->preferred = NULL;
        b->skip = a;
        acdm_wait_push(m, b);
        acdm_emit(m, ACDM_ME_QUEUED, now, b, NULL, b->queue, timeout ? "timeout" : "rejected", 0);
        int64_t retry = (int64_t)(b->queue->def->offer_timeout_s > 0 ? b->queue->def->offer_timeout_s : 5) * 1000;
        acdm_timer_arm(m, &b->t_offer, T_RETRY, now + retry);
        acdm_router_place(m, b, now);
    }
    acdm_router_agent_free(m, a, now);
}

int acdm_agent_reject(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now)
{
    acdm_work *w = acdm_agent_work(a, b);
    if (!w || w->state != ACDM_W_OFFERED) return ACDM_ESTATE;
    offer_failed(m, a, b, false, NULL, NULL, now);
    return 0;
}

int acdm_agent_pick(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now)
{
    acdm_member *mb = acdm_agent_member(a, b->queue);
    if (!mb || !mb->joined) return ACDM_EPERM;
    if (b->state != ACDM_B_QUEUED) return ACDM_ESTATE;
    if (a->state == ACDM_AGENT_LOGGED_OUT) return ACDM_ESTATE;
    if (a->load[b->kind] >= a->cap[b->kind] || a->n_wrapup) return ACDM_EFULL;
    if (!acdm_agent_reachable(a, b->kind)) return ACDM_ESTATE;
    acdm_router_offer(m, b, a, now);
    return acdm_agent_accept(m, a, b, now);
}

int acdm_agent_complete(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now)
{
    acdm_work *w = a ? acdm_agent_work(a, b) : NULL;
    if (!w || w->state != ACDM_W_ACTIVE) return ACDM_ESTATE;
    hold_end(m, b, a, "complete", now);
    a->handled++;
    a->key_ver++;
    int wrap = b->queue->def->wrapup_s;
    if (wrap <= 0) {
        acdm_work_remove(a, b);
        acdm_agent_set_idle(a, now);
        done(m, b, now);
        acdm_router_agent_free(m, a, now);
        return 0;
    }
    w->state = ACDM_W_WRAPUP;
    a->n_wrapup++;
    b->state = ACDM_B_WRAPUP;
    b->wrapup_ms = now;
    acdm_timer_arm(m, &b->t_wrap, T_WRAP, now + (int64_t)wrap * 1000);
    acdm_router_refresh(m, a);
    acdm_emit(m, ACDM_ME_WRAPUP_START, now, b, a, b->queue, NULL, wrap);
    return 0;
}

int acdm_agent_wrapup_end(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now)
{
    acdm_work *w = acdm_agent_work(a, b);
    if (!w || w->state != ACDM_W_WRAPUP) return ACDM_ESTATE;
    acdm_timer_disarm(m, &b->t_wrap);
    acdm_work_remove(a, b);
    acdm_agent_set_idle(a, now);
    done(m, b, now);
    acdm_router_agent_free(m, a, now);
    return 0;
}

int acdm_agent_wrapup_extend(acdm_model *m, acdm_agent *a, acdm_bericht *b, int seconds, int64_t now)
{
    acdm_work *w = acdm_agent_work(a, b);
    if (!w || w->state != ACDM_W_WRAPUP) return ACDM_ESTATE;
    if (seconds <= 0 || seconds > 3600) return ACDM_EINVAL;
    acdm_timer_arm(m, &b->t_wrap, T_WRAP, b->t_wrap.due + (int64_t)seconds * 1000);
    acdm_emit(m, ACDM_ME_WRAPUP_EXTENDED, now, b, a, b->queue, NULL, (b->t_wrap.due - now) / 1000);
    return 0;
}

int acdm_agent_transfer_queue(acdm_model *m, acdm_agent *a, acdm_bericht *b, acdm_queue *to, int64_t now)
{
    acdm_work *w = acdm_agent_work(a, b);
    if (!w || w->state != ACDM_W_ACTIVE) return ACDM_ESTATE;
    if (!to->open) return ACDM_ECLOSED;
    hold_end(m, b, a, "transfer", now);
    acdm_work_remove(a, b);
    b->agent = NULL;
    acdm_queue *from = b->queue;
    b->queue = to;
    b->enqueued_ms = now;
    free(b->skills);
    b->skills = skills_make(m, to->def->skills, to->def->n_skills, NULL, 0, &b->n_skills);
    b->skills_relaxed = false;
    b->skip = a;
    acdm_emit(m, ACDM_ME_TRANSFERRED, now, b, a, to, from->name, 0);
    enqueue_and_route(m, b, now, "transfer");
    acdm_agent_set_idle(a, now);
    acdm_router_agent_free(m, a, now);
    return 0;
}

int acdm_agent_transfer_agent(acdm_model *m, acdm_agent *a, acdm_bericht *b, acdm_agent *to, int64_t now)
{
    acdm_work *w = acdm_agent_work(a, b);
    if (!w || w->state != ACDM_W_ACTIVE) return ACDM_ESTATE;
    if (to == a) return ACDM_EINVAL;
    if (!acdm_agent_available(to, b->kind)) return ACDM_EFULL;
    hold_end(m, b, a, "transfer", now);
    acdm_work_remove(a, b);
    b->agent = NULL;
    b->preferred = to;
    acdm_emit(m, ACDM_ME_TRANSFERRED, now, b, a, b->queue, to->id, 0);
    acdm_router_offer(m, b, to, now);
    acdm_agent_set_idle(a, now);
    acdm_router_agent_free(m, a, now);
    return 0;
}

/* The checks hold and resume share; NULL when a may put b on hold / take it back. */
static int hold_check(const acdm_agent *a, const acdm_bericht *b, const char **why)
{
    const acdm_work *w = acdm_agent_work(a, b);
    if (!w || w->state != ACDM_W_ACTIVE) {
        *why = w && w->state == ACDM_W_OFFERED ? "the bericht is offered, not accepted yet"
             : w ? "the call is in wrap-up" : "not a bericht you have active";
        return ACDM_ESTATE;
    }
    if (b->kind != ACDM_KIND_VOICE && b->kind != ACDM_KIND_CALLBACK) {
        *why = "hold is for calls (voice, callback)";
        return ACDM_EINVAL;
    }
    if (b->customer_gone) { *why = "the caller has hung up"; return ACDM_ESTATE; }
    return 0;
}

int acdm_agent_hold(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    if (!a || !b) { *why = "no such agent or bericht"; return ACDM_EINVAL; }
    int rc = hold_check(a, b, why);
    if (rc) return rc;
    if (b->held) { *why = "the call is already on hold"; return ACDM_ESTATE; }
    b->held = true;
    b->hold_ms = now;
    acdm_emit(m, ACDM_ME_HOLD, now, b, a, b->queue, NULL, 0);
    return 0;
}

int acdm_agent_resume(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t now, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    if (!a || !b) { *why = "no such agent or bericht"; return ACDM_EINVAL; }
    int rc = hold_check(a, b, why);
    if (rc) return rc;
    if (!b->held) { *why = "the call is not on hold"; return ACDM_ESTATE; }
    hold_end(m, b, a, NULL, now);
    return 0;
}

/* ------------------------------------------------------------------ device offers */

int acdm_agent_offer_device(acdm_model *m, acdm_agent *a, acdm_bericht *b, int64_t deadline, int64_t now)
{
    (void)now;
    acdm_work *w = a && b ? acdm_agent_work(a, b) : NULL;
    if (!w || w->state != ACDM_W_OFFERED) return ACDM_ESTATE;
    w->device = true;
    /* one timer per bericht (ring-all shares it): only ever pushed later */
    if (deadline > 0 && (b->t_offer.idx < 0 || b->t_offer.type != T_OFFER || b->t_offer.due < deadline))
        acdm_timer_arm(m, &b->t_offer, T_OFFER, deadline);
    return 0;
}

int acdm_agent_device_result(acdm_model *m, acdm_agent *a, acdm_bericht *b, acdm_dev_outcome o,
                             const char *reason, int64_t now)
{
    acdm_work *w = a && b ? acdm_agent_work(a, b) : NULL;
    if (!w || w->state != ACDM_W_OFFERED || !w->device) return ACDM_ESTATE;
    static const char *const names[ACDM_DEV__COUNT] = {"answered", "declined", "busy",
                                                       "no-answer", "failed"};
    if ((unsigned)o >= ACDM_DEV__COUNT) return ACDM_EINVAL;
    if (o == ACDM_DEV_ANSWERED) return acdm_agent_accept(m, a, b, now);
    offer_failed(m, a, b, o != ACDM_DEV_DECLINED, names[o], reason, now);
    return 0;
}

int acdm_agent_set_reachable(acdm_model *m, acdm_agent *a, acdm_kind k, bool reachable,
                             const char *why, int64_t now)
{
    if (!a || (unsigned)k >= ACDM_KIND__COUNT) return ACDM_EINVAL;
    uint8_t bit = (uint8_t)(1u << k);
    bool was = !(a->unreachable & bit);
    if (reachable) {
        a->unreachable &= (uint8_t)~bit;
        a->unreach_why[k][0] = 0;
    } else {
        a->unreachable |= bit;
        snprintf(a->unreach_why[k], sizeof a->unreach_why[k], "%s",
                 why && *why ? why : "device not reachable");
    }
    if (was == reachable) return 0;
    acdm_emit(m, ACDM_ME_AGENT_DEVICE, now, NULL, a, NULL, reachable ? NULL : a->unreach_why[k], k);
    if (reachable) acdm_router_agent_free(m, a, now);   /* waiting calls may go to them now */
    else acdm_router_refresh(m, a);
    return 0;
}

/* ------------------------------------------------------------------ update, outbound */

/* The skill list of b moved from queue `from` to `to`: to's requirements plus b's own (those
 * b has above what from required). */
static acdm_skill_ref *skills_move(const acdm_bericht *b, const acdm_queue *from, const acdm_queue *to,
                                   uint8_t *count)
{
    *count = 0;
    size_t cap = (size_t)b->n_skills + to->n_skills;
    if (!cap) return NULL;
    acdm_skill_ref *r = calloc(cap, sizeof *r);
    if (!r) return NULL;
    for (unsigned i = 0; i < to->n_skills; i++) r[(*count)++] = to->skills[i];
    for (unsigned i = 0; i < b->n_skills; i++) {
        const acdm_skill_ref *s = &b->skills[i];
        bool from_queue = false;
        for (unsigned j = 0; j < from->n_skills && !from_queue; j++)
            from_queue = from->skills[j].id == s->id && from->skills[j].level >= s->level;
        if (from_queue) continue;
        unsigned j = 0;
        while (j < *count && r[j].id != s->id) j++;
        if (j == *count) { r[j] = *s; (*count)++; }
        else if (s->level > r[j].level) r[j].level = s->level;
    }
    return r;
}

int acdm_model_update(acdm_model *m, acdm_bericht *b, acdm_queue *to, int priority,
                      const acdm_skill *skills, size_t n_skills, bool set_skills, int64_t now)
{
    if (!b) return ACDM_EINVAL;
    if (b->state != ACDM_B_QUEUED || b->n_offers || b->wait_idx < 0) return ACDM_ESTATE;
    if (priority > 9 || priority < -1) return ACDM_EINVAL;
    acdm_queue *from = b->queue;
    if (to == from) to = NULL;
    if (to && !to->open) return ACDM_ECLOSED;
    acdm_wait_remove(b);
    if (set_skills) {
        const acdm_queue *q = to ? to : from;
        acdm_skill_ref *ns = skills_make(m, q->def->skills, q->def->n_skills, skills, n_skills, &b->n_skills);
        free(b->skills);
        b->skills = ns;
        b->skills_relaxed = false;
    } else if (to) {
        uint8_t n;
        acdm_skill_ref *ns = skills_move(b, from, to, &n);
        free(b->skills);
        b->skills = ns;
        b->n_skills = n;
        b->skills_relaxed = false;
    }
    if (to) {
        b->queue = to;
        b->enqueued_ms = now;   /* quick drop and overflow count in the queue it waits in */
    }
    if (priority >= 0) b->priority = (uint8_t)priority;
    acdm_wait_push(m, b);
    arm_wait_timers(m, b, now);
    acdm_emit(m, ACDM_ME_UPDATED, now, b, NULL, b->queue, to ? from->name : NULL, b->priority);
    acdm_router_place(m, b, now);
    return 0;
}

/* ------------------------------------------------------------------ reassign (supervisor) */

int acdm_model_reassign(acdm_model *m, acdm_bericht *b, acdm_agent *to, int64_t now, const char **why)
{
    const char *w = NULL;
    int rc = 0;
    if (b->state != ACDM_B_QUEUED && b->state != ACDM_B_OFFERED) { w = "not_waiting"; rc = ACDM_ESTATE; }
    else if (b->reserved) { w = "reserved"; rc = ACDM_ESTATE; }
    else if (to->state == ACDM_AGENT_LOGGED_OUT || to->removed) { w = "logged_out"; rc = ACDM_ESTATE; }
    else if (to->cap[b->kind] <= 0) { w = "kind"; rc = ACDM_EINVAL; }
    else if (acdm_agent_work(to, b)) { w = "same"; rc = ACDM_EINVAL; }
    else if (!acdm_agent_reachable(to, (acdm_kind)b->kind)) { w = "unreachable"; rc = ACDM_ESTATE; }
    else if (to->n_wrapup) { w = "wrapup"; rc = ACDM_EFULL; }
    else if (to->load[b->kind] >= to->cap[b->kind]) { w = "full"; rc = ACDM_EFULL; }
    if (why) *why = w;
    if (rc) return rc;
    uint32_t n = 0;
    acdm_agent *freed[64];
    acdm_agent **list = b->n_offers > 64 ? malloc(b->n_offers * sizeof *list) : freed;
    cancel_offers(m, b, NULL, "reassigned", now, list, &n);
    if (b->parked) park_unlink(b);   /* waiting in a closed queue: the supervisor chose someone */
    if (b->state == ACDM_B_OFFERED) {
        /* was offered: it counts as waiting again for the moment between the two offers */
        b->state = ACDM_B_QUEUED;
    }
    b->preferred = to;
    b->skip = NULL;
    acdm_router_offer(m, b, to, now);
    if (list) free_agents(m, list, n, now);
    if (list && list != freed) free(list);
    return 0;
}

int acdm_model_originate(acdm_model *m, const acdm_new_bericht *nb, acdm_agent *a, int64_t now,
                         acdm_bericht **out)
{
    if (!nb || !nb->queue || !a || (unsigned)nb->kind >= ACDM_KIND__COUNT) return ACDM_EINVAL;
    acdm_queue *q = acdm_hmap_get(&m->queue_by_name, nb->queue);
    if (!q) return ACDM_ENOENT;
    if (a->state == ACDM_AGENT_LOGGED_OUT || a->removed) return ACDM_ESTATE;
    if (a->load[nb->kind] >= a->cap[nb->kind]) return ACDM_EFULL;
    acdm_bericht *b;
    int rc = bericht_create(m, nb, q, now, &b);
    if (rc) return rc;
    b->outbound = true;
    b->state = ACDM_B_ACTIVE;
    b->agent = a;
    b->offered_ms = b->accepted_ms = now;
    acdm_work_add(a, b, ACDM_W_ACTIVE);
    acdm_router_refresh(m, a);
    if (out) *out = b;
    acdm_emit(m, ACDM_ME_ORIGINATED, now, b, a, q, NULL, 0);
    return 0;
}

int acdm_model_fail(acdm_model *m, acdm_bericht *b, int64_t now)
{
    if (!b || b->state != ACDM_B_ACTIVE || !b->agent) return ACDM_ESTATE;
    acdm_agent *a = b->agent;
    b->originating = false;
    hold_end(m, b, a, "complete", now);
    acdm_work_remove(a, b);
    acdm_agent_set_idle(a, now);
    done_why(m, b, b->outbound ? "outbound-failed" : "failed", now);
    acdm_router_agent_free(m, a, now);
    return 0;
}

/* ------------------------------------------------------------------ ticks */

void acdm_model_tick(acdm_model *m, int64_t now)
{
    acdm_tnode *t;
    while ((t = acdm_heap_peek(&m->timers)) && t->due <= now) {
        acdm_heap_remove(&m->timers, t);
        int type = t->type;
        t->type = 0;
        switch (type) {
        case T_OFFER: {
            acdm_bericht *b = CONTAINER(t, acdm_bericht, t_offer);
            /* every outstanding offer timed out (ring-all: all of them) */
            uint16_t n = b->n_offers;
            acdm_agent *inl[8], **list = n > 8 ? malloc(n * sizeof *list) : inl;
            if (!list) abort();
            memcpy(list, b->offers, n * sizeof *list);
            for (uint16_t i = 0; i < n; i++) {
                /* a device offer whose channel did not report in time: the core answers NOANSWER */
                const acdm_work *w = acdm_agent_work(list[i], b);
                bool dev = w && w->device;
                offer_failed(m, list[i], b, true, dev ? "no-answer" : NULL,
                             dev ? "the channel did not report the device's answer in time" : NULL, now);
            }
            if (list != inl) free(list);
            break;
        }
        case T_RETRY: {
            acdm_bericht *b = CONTAINER(t, acdm_bericht, t_offer);
            b->skip = NULL;
            if (b->state == ACDM_B_QUEUED) acdm_router_place(m, b, now);
            break;
        }
        case T_WAIT: {
            acdm_bericht *b = CONTAINER(t, acdm_bericht, t_wait);
            if (b->state != ACDM_B_QUEUED) break;
            acdm_queue *to = acdm_hmap_get(&m->queue_by_name, b->queue->def->overflow);
            if (!to || to == b->queue) break;
            acdm_queue *from = b->queue;
            acdm_wait_remove(b);
            b->queue = to;
            b->enqueued_ms = now;
            acdm_emit(m, ACDM_ME_OVERFLOW, now, b, NULL, to, from->name, now - b->queued_ms);
            enqueue_and_route(m, b, now, "overflow");
            break;
        }
        case T_RELAX: {
            acdm_bericht *b = CONTAINER(t, acdm_bericht, t_relax);
            b->skills_relaxed = true;
            acdm_emit(m, ACDM_ME_RELAXED, now, b, NULL, b->queue, NULL, now - b->enqueued_ms);
            if (b->state == ACDM_B_QUEUED) acdm_router_place(m, b, now);
            break;
        }
        case T_WRAP: {
            acdm_bericht *b = CONTAINER(t, acdm_bericht, t_wrap);
            acdm_agent *a = b->agent;
            acdm_work_remove(a, b);
            acdm_agent_set_idle(a, now);
            done(m, b, now);
            acdm_router_agent_free(m, a, now);
            break;
        }
        case T_RESERVE: {
            /* the agent did not come back within the grace: anyone of the queue may take it */
            acdm_bericht *b = CONTAINER(t, acdm_bericht, t_offer);
            if (b->preferred == b->reserved) b->preferred = NULL;
            acdm_model_unreserve(m, b, now);
            if (b->state == ACDM_B_QUEUED && b->wait_idx >= 0) acdm_router_place(m, b, now);
            break;
        }
        case T_SCHED: {
            acdm_queue *q = CONTAINER(t, acdm_queue, t_sched);
            queue_update_open(m, q, now, true);
            break;
        }
        default:
            break;
        }
    }
}

/* ------------------------------------------------------------------ configuration */

acdm_queue *acdm_model_queue(const acdm_model *m, const char *name)
{
    return name ? acdm_hmap_get(&m->queue_by_name, name) : NULL;
}

acdm_agent *acdm_model_agent(const acdm_model *m, const char *id)
{
    return id ? acdm_hmap_get(&m->agent_by_id, id) : NULL;
}

size_t acdm_model_n_queues(const acdm_model *m) { return m->n_queues; }
acdm_queue *acdm_model_queue_at(const acdm_model *m, size_t i) { return i < m->n_queues ? m->queues[i] : NULL; }
size_t acdm_model_n_agents(const acdm_model *m) { return m->n_agents; }
acdm_agent *acdm_model_agent_at(const acdm_model *m, size_t i) { return i < m->n_agents ? m->agents[i] : NULL; }
const acdm_config *acdm_model_config(const acdm_model *m) { return m->cfg; }

int acdm_model_create(acdm_config *cfg, const acdm_model_hooks *hooks, int64_t now, acdm_model **out)
{
    acdm_model *m = calloc(1, sizeof *m);
    if (!m) return ACDM_ENOMEM;
    if (hooks) m->hooks = *hooks;
    m->rnd_state = (uint32_t)now | 1u;
    acdm_hmap_init(&m->queue_by_name);
    acdm_hmap_init(&m->agent_by_id);
    acdm_hmap_init(&m->bericht_by_id);
    acdm_hmap_init(&m->bericht_by_conv);
    acdm_hmap_init(&m->channels);
    acdm_hmap_init(&m->skill_ids);
    acdm_heap_init(&m->timers, offsetof(acdm_tnode, idx), tnode_less, NULL);
    char err[256];
    int rc = acdm_model_configure(m, cfg, now, err, sizeof err);
    if (rc) { acdm_model_destroy(m); return rc; }
    *out = m;
    return 0;
}

static void queue_free(acdm_model *m, acdm_queue *q)
{
    acdm_timer_disarm(m, &q->t_sched);
    for (int k = 0; k < ACDM_KIND__COUNT; k++) {
        acdm_heap_free(&q->waiting[k]);
        acdm_heap_free(&q->avail[k]);
    }
    free(q->members);
    free(q->skills);
    free(q->name);
    free(q);
}

void acdm_model_destroy(acdm_model *m)
{
    if (!m) return;
    /* free berichten */
    const char *k;
    void *v;
    acdm_bericht **all = m->n_berichten ? malloc(m->n_berichten * sizeof *all) : NULL;
    size_t n = 0;
    for (uint32_t pos = 0; all && acdm_hmap_next(&m->bericht_by_id, &pos, &k, &v);) all[n++] = v;
    for (size_t i = 0; i < n; i++) bericht_free(m, all[i]);
    free(all);
    for (size_t i = 0; i < m->n_agents; i++) agent_free(m->agents[i]);
    for (size_t i = 0; i < m->n_queues; i++) queue_free(m, m->queues[i]);
    free(m->agents);
    free(m->queues);
    for (uint32_t pos = 0; acdm_hmap_next(&m->channels, &pos, &k, &v);) free(v);
    for (size_t i = 0; i < m->n_skill_names; i++) free(m->skill_names[i]);
    free(m->skill_names);
    acdm_hmap_free(&m->queue_by_name);
    acdm_hmap_free(&m->agent_by_id);
    acdm_hmap_free(&m->bericht_by_id);
    acdm_hmap_free(&m->bericht_by_conv);
    acdm_hmap_free(&m->channels);
    acdm_hmap_free(&m->skill_ids);
    acdm_heap_free(&m->timers);
    acdm_config_free(m->cfg);
    free(m);
}

/* Moves every bericht of a queue that is going away to dest (waiting ones wait there with
 * their original queue time; offered/active ones just belong to dest from now on). */
static void queue_move_all(acdm_model *m, acdm_queue *q, acdm_queue *dest, int64_t now)
{
    while (q->parked) {
        acdm_bericht *b = q->parked;
        park_unlink(b);
        b->queue = dest;
        acdm_emit(m, ACDM_ME_MOVED, now, b, NULL, dest, q->name, 0);
        if (!dest->open) park(b);
        else { acdm_wait_push(m, b); arm_wait_timers(m, b, now); }
    }
    for (int k = 0; k < ACDM_KIND__COUNT; k++) {
        acdm_bericht *b;
        while ((b = acdm_heap_pop(&q->waiting[k]))) {
            q->n_waiting--;
            b->queue = dest;
            acdm_emit(m, ACDM_ME_MOVED, now, b, NULL, dest, q->name, 0);
            acdm_wait_push(m, b);
            arm_wait_timers(m, b, now);
        }
    }
    const char *key;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(&m->bericht_by_id, &pos, &key, &v);) {
        acdm_bericht *b = v;
        if (b->queue == q) { b->queue = dest; acdm_emit(m, ACDM_ME_MOVED, now, b, NULL, dest, q->name, 0); }
    }
}

int acdm_model_configure(acdm_model *m, acdm_config *cfg, int64_t now, char *err, size_t errlen)
{
    if (!cfg) return ACDM_EINVAL;
    /* 1. check: a removed queue that still has berichten needs a fallback in the new config */
    for (size_t i = 0; i < m->n_queues; i++) {
        acdm_queue *q = m->queues[i];
        if (acdm_config_queue(cfg, q->name)) continue;
        bool busy = q->n_waiting > 0;
        const char *key;
        void *v;
        for (uint32_t pos = 0; !busy && acdm_hmap_next(&m->bericht_by_id, &pos, &key, &v);)
            busy = ((acdm_bericht *)v)->queue == q;
        if (!busy) continue;
        if (!q->def->fallback || !acdm_config_queue(cfg, q->def->fallback)) {
            snprintf(err, errlen, "queue \"%s\" is removed but still has berichten, and its "
                     "fallback queue %s%s%s is not in the new config; keep the queue or give it "
                     "a \"fallback\" that exists", q->name, q->def->fallback ? "\"" : "",
                     q->def->fallback ? q->def->fallback : "(none)", q->def->fallback ? "\"" : "");
            return ACDM_EINVAL;
        }
    }
    /* 2. queues: keep (re-pointed), create, and collect the removed ones */
    acdm_queue **nq = calloc(cfg->n_queues ? cfg->n_queues : 1, sizeof *nq);
    acdm_agent **na = calloc(cfg->n_agents ? cfg->n_agents : 1, sizeof *na);
    if (!nq || !na) { free(nq); free(na); snprintf(err, errlen, "out of memory"); return ACDM_ENOMEM; }
    acdm_config *old = m->cfg;
    m->cfg = cfg;
    for (size_t i = 0; i < cfg->n_queues; i++) {
        const acdm_queue_def *d = &cfg->queues[i];
        acdm_queue *q = acdm_hmap_get(&m->queue_by_name, d->name);
        if (!q) {
            q = queue_new(m, d, now);
            if (!q) abort();
            acdm_hmap_put(&m->queue_by_name, q->name, q);
        } else {
            q->def = d;
            free(q->skills);
            q->skills = skills_make(m, d->skills, d->n_skills, NULL, 0, &q->n_skills);
            if (q->strategy != d->strategy) {
                q->strategy = d->strategy;
                for (int k = 0; k < ACDM_KIND__COUNT; k++) acdm_heap_rebuild(&q->avail[k]);
            }
        }
        nq[i] = q;
    }
    /* removed queues: berichten to the fallback, members detached, queue freed */
    for (size_t i = 0; i < m->n_queues; i++) {
        acdm_queue *q = m->queues[i];
        if (acdm_config_queue(cfg, q->name)) continue;
        acdm_queue *dest = q->def->fallback ? acdm_hmap_get(&m->queue_by_name, q->def->fallback) : NULL;
        if (dest && dest != q) queue_move_all(m, q, dest, now);
        while (q->n_members) {
            acdm_member *mb = q->members[0];
            acdm_agent *a = mb->agent;
            member_detach(mb);
            for (uint32_t j = 0; j < a->n_members; j++)
                if (a->members[j] == mb) { a->members[j] = a->members[--a->n_members]; break; }
            free(mb);
        }
        acdm_hmap_del(&m->queue_by_name, q->name);
        queue_free(m, q);
    }
    free(m->queues);
    m->queues = nq;
    m->n_queues = cfg->n_queues;
    /* 3. agents */
    for (size_t i = 0; i < cfg->n_agents; i++) {
        const acdm_agent_def *d = &cfg->agents[i];
        acdm_agent *a = acdm_hmap_get(&m->agent_by_id, d->id);
        if (!a) {
            a = agent_new(m, d, (uint32_t)i);
            if (!a) abort();
            acdm_hmap_put(&m->agent_by_id, a->id, a);
        } else {
            agent_apply_def(m, a, d, (uint32_t)i);
        }
        na[i] = a;
    }
    for (size_t i = 0; i < m->n_agents; i++) {
        acdm_agent *a = m->agents[i];
        if (acdm_config_agent(cfg, a->id)) continue;
        acdm_agent_logout(m, a, "removed", now);
        a->removed = true;
        acdm_hmap_del(&m->agent_by_id, a->id);
        /* no bericht points at a logged-out agent any more, except as a preference */
        const char *key;
        void *v;
        for (uint32_t pos = 0; acdm_hmap_next(&m->bericht_by_id, &pos, &key, &v);) {
            acdm_bericht *b = v;
            if (b->preferred == a) b->preferred = NULL;
            if (b->skip == a) b->skip = NULL;
            if (b->reserved == a) {
                acdm_model_unreserve(m, b, now);
                if (b->state == ACDM_B_QUEUED && b->wait_idx >= 0) acdm_router_place(m, b, now);
            }
        }
        agent_free(a);
    }
    free(m->agents);
    m->agents = na;
    m->n_agents = cfg->n_agents;
    if (old) acdm_config_free(old);
    /* 4. open/closed and routing under the new settings */
    for (size_t i = 0; i < m->n_queues; i++) queue_update_open(m, m->queues[i], now, true);
    for (size_t i = 0; i < m->n_agents; i++) acdm_router_refresh(m, m->agents[i]);
    for (size_t i = 0; i < m->n_queues; i++) acdm_router_queue(m, m->queues[i], now);
    return 0;
}
