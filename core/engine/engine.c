/* engine.c -- the daemon's core: intake of berichten, the model's events to store/agents/plugins, reload. */
#include "engine/engine_int.h"
#include "auth/auth.h"
#include "base/log.h"
#include "base/notify.h"
#include "config/schedule.h"
#include "net/outbound.h"
#include <acdm/plugin_util.h>   /* acdm_phone_number_ok: one rule with the voice plugins */
#include "model/model_int.h"   /* acdm_router_wait_less: the waiting order, for the position cache */

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WHO "core"

/* ------------------------------------------------------------------ small helpers */

static int mkdir_p(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(tmp, 0750); *p = '/'; }
    return mkdir(tmp, 0750) && errno != EEXIST ? -1 : 0;
}

static void on_model_timer(uv_timer_t *t);

static void rearm(acdm_engine *e)
{
    int64_t due = acdm_model_next_due(e->model);
    if (due == INT64_MAX) return;
    if (uv_is_active((uv_handle_t *)&e->model_timer) && due >= e->armed_due) return;
    int64_t now = acdm_now_ms();
    uint64_t after = due > now ? (uint64_t)(due - now) : 0;
    e->armed_due = due;
    uv_timer_start(&e->model_timer, on_model_timer, after, 0);
}

static void on_model_timer(uv_timer_t *t)
{
    acdm_engine *e = t->data;
    e->armed_due = INT64_MAX;
    acdm_model_tick(e->model, acdm_now_ms());
    rearm(e);
}

static void on_store_wake(uv_async_t *a)
{
    acdm_engine *e = a->data;
    acdm_store_poll(e->store);
}

/* ------------------------------------------------------------------ events of the model */

static acdm_event_type plugin_event_type(acdm_mevent_type t)
{
    switch (t) {
    case ACDM_ME_QUEUED: return ACDM_EV_QUEUED;
    case ACDM_ME_OFFERED: return ACDM_EV_OFFERED;
    case ACDM_ME_ACCEPTED: return ACDM_EV_ACCEPTED;
    case ACDM_ME_TIMEOUT: case ACDM_ME_REJECTED: return ACDM_EV_REQUEUED;
    case ACDM_ME_TRANSFERRED: case ACDM_ME_OVERFLOW: case ACDM_ME_MOVED: return ACDM_EV_TRANSFERRED;
    case ACDM_ME_DONE: case ACDM_ME_ABANDONED: return ACDM_EV_ENDED;
    case ACDM_ME_WRAPUP_START: return ACDM_EV_WRAPUP;
    case ACDM_ME_HOLD: return ACDM_EV_HOLD;
    case ACDM_ME_RESUME: return ACDM_EV_RESUME;
    case ACDM_ME_UPDATED: return ACDM_EV_UPDATED;
    default: return (acdm_event_type)-1;
    }
}

json_t *acdm_engine_bericht_brief(const acdm_bericht *b)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:i, s:I, s:s, s:s}", "id", b->id,
                     "kind", acdm_kind_name(b->kind), "queue", b->queue->name,
                     "channel", b->channel, "from", b->from, "conversation", b->conversation,
                     "priority", b->priority, "queued_ms", (json_int_t)b->queued_ms,
                     "state", acdm_bstate_name(b->state), "direction", b->outbound ? "out" : "in");
}

/* ---- short subject per live bericht (the agent's offer shows it), wait estimates per queue */

#define SUBJECT_MAX 200

typedef struct { char id[37]; char text[]; } bsubject;

static void subject_set(acdm_engine *e, const char *id, const char *text)
{
    if (!text || !*text || acdm_hmap_get(&e->subjects, id)) return;
    size_t n = strlen(text);
    if (n > SUBJECT_MAX) n = SUBJECT_MAX;
    while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80) n--;   /* not inside a UTF-8 char */
    bsubject *s = malloc(sizeof *s + n + 1);
    if (!s) return;
    snprintf(s->id, sizeof s->id, "%s", id);
    memcpy(s->text, text, n);
    s->text[n] = 0;
    if (acdm_hmap_put(&e->subjects, s->id, s)) free(s);
}

static const char *subject_of(acdm_engine *e, const char *id)
{
    bsubject *s = acdm_hmap_get(&e->subjects, id);
    return s ? s->text : NULL;
}

const char *acdm_engine_subject(acdm_engine *e, const char *id) { return subject_of(e, id); }

/* Positions of a queue's waiting berichten of one kind, computed in one sort (n log n) and kept
 * for POSCACHE_MS: visitors poll their position every few seconds, and one O(n) walk per visitor
 * would be O(n^2) per round (5,000 waiting chats: 25M comparisons in one loop turn). */
#define POSCACHE_MS 500
typedef struct { uint64_t seq; uint32_t pos; } seqpos;
typedef struct { int64_t at_ms; size_t n; seqpos *v; } poscache;
typedef struct { int64_t last_ms; double gap_ms; int n; poscache pc[ACDM_KIND__COUNT]; char name[]; } qwait_stat;

static qwait_stat *qstat(acdm_engine *e, const char *q)
{
    qwait_stat *w = acdm_hmap_get(&e->qwait, q);
    if (w) return w;
    size_t n = strlen(q);
    if (!(w = calloc(1, sizeof *w + n + 1))) return NULL;
    memcpy(w->name, q, n + 1);
    if (acdm_hmap_put(&e->qwait, w->name, w)) { free(w); return NULL; }
    return w;
}

static void qstat_free(qwait_stat *w)
{
    for (int k = 0; k < ACDM_KIND__COUNT; k++) free(w->pc[k].v);
    free(w);
}

static int by_wait(const void *a, const void *b)
{
    const void *x = *(const void *const *)a, *y = *(const void *const *)b;
    return acdm_router_wait_less(x, y, NULL) ? -1 : acdm_router_wait_less(y, x, NULL) ? 1 : 0;
}

static int by_seq(const void *a, const void *b)
{
    uint64_t x = ((const seqpos *)a)->seq, y = ((const seqpos *)b)->seq;
    return x < y ? -1 : x > y;
}

static uint32_t cached_position(acdm_engine *e, const acdm_bericht *b, int64_t now)
{
    qwait_stat *w = qstat(e, b->queue->name);
    const acdm_heap *h = &b->queue->waiting[b->kind];
    if (!w || h->n < 64) return acdm_queue_position(b);     /* short queues: walk */
    poscache *pc = &w->pc[b->kind];
    if (now - pc->at_ms >= POSCACHE_MS) {
        void **items = malloc(h->n * sizeof *items);
        seqpos *v = realloc(pc->v, h->n * sizeof *v);
        if (!items || !v) { free(items); if (v) pc->v = v; return acdm_queue_position(b); }
        pc->v = v;
        memcpy(items, h->items, h->n * sizeof *items);
        qsort(items, h->n, sizeof *items, by_wait);
        for (uint32_t i = 0; i < h->n; i++)
            v[i] = (seqpos){((const acdm_bericht *)items[i])->seq, i + 1};
        qsort(v, h->n, sizeof *v, by_seq);
        free(items);
        pc->n = h->n;
        pc->at_ms = now;
    }
    seqpos key = {b->seq, 0};
    const seqpos *hit = bsearch(&key, pc->v, pc->n, sizeof *pc->v, by_seq);
    return hit ? hit->pos : acdm_queue_position(b);          /* arrived since: walk */
}

/* An acceptance in queue q: the gap between acceptances is the pace a waiting visitor moves up. */
static void qwait_accepted(acdm_engine *e, const char *q, int64_t now)
{
    qwait_stat *w = qstat(e, q);
    if (!w) return;
    if (!w->last_ms) { w->last_ms = now; return; }
    double gap = (double)(now - w->last_ms);
    if (gap > 3600000.0) gap = 3600000.0;
    w->gap_ms = w->n ? 0.7 * w->gap_ms + 0.3 * gap : gap;
    w->n++;
    w->last_ms = now;
}

/* ------------------------------------------------------------------ accessors (engine.h) */

uv_loop_t *acdm_engine_loop(acdm_engine *e) { return &e->loop; }
acdm_model *acdm_engine_model(acdm_engine *e) { return e->model; }
acdm_store *acdm_engine_store(acdm_engine *e) { return e->store; }
acdm_http *acdm_engine_http(acdm_engine *e) { return e->http; }
acdm_plugins *acdm_engine_plugins(acdm_engine *e) { return e->plugins; }
struct acdm_outbound *acdm_engine_outbound(acdm_engine *e) { return e->outbound; }
bool acdm_engine_stopping(const acdm_engine *e) { return e->stopping; }
const char *acdm_engine_salvage_report(const acdm_engine *e) { return e->salvage; }
const char *acdm_engine_config_path(const acdm_engine *e) { return e->config_path; }

/* ------------------------------------------------------------------ modules and subscribers */

struct engine_mod { const acdm_engine_module *m; void *state; };
struct engine_sub { acdm_engine_subscriber s; };

void acdm_engine_set_state(acdm_engine *e, const acdm_engine_module *m, void *state)
{
    for (size_t i = 0; i < e->n_mods; i++)
        if (e->mods[i].m == m) { e->mods[i].state = state; return; }
}

void *acdm_engine_state(acdm_engine *e, const acdm_engine_module *m)
{
    for (size_t i = 0; i < e->n_mods; i++)
        if (e->mods[i].m == m) return e->mods[i].state;
    return NULL;
}

int acdm_engine_subscribe(acdm_engine *e, const acdm_engine_subscriber *s)
{
    struct engine_sub *n = realloc(e->subs, (e->n_subs + 1) * sizeof *n);
    if (!n) return ACDM_ENOMEM;
    e->subs = n;
    size_t at = e->n_subs;
    while (at > 0 && e->subs[at - 1].s.order > s->order) at--;
    memmove(&e->subs[at + 1], &e->subs[at], (e->n_subs - at) * sizeof *n);
    e->subs[at].s = *s;
    e->n_subs++;
    return 0;
}

/* Tells the subscribers of order in [from, to) about ev. */
static void dispatch_event(acdm_engine *e, const acdm_mevent *ev, int from, int to)
{
    for (size_t i = 0; i < e->n_subs; i++) {
        const acdm_engine_subscriber *s = &e->subs[i].s;
        if (s->order >= from && s->order < to && s->model_event) s->model_event(e, s->user, ev);
    }
}

static void dispatch_note(acdm_engine *e, const acdm_note *n)
{
    for (size_t i = 0; i < e->n_subs; i++)
        if (e->subs[i].s.note) e->subs[i].s.note(e, e->subs[i].s.user, n);
}

#define EACH_MODULE(e, hook) do { \
        for (size_t i_ = 0; i_ < (e)->n_mods; i_++) \
            if ((e)->mods[i_].m->hook) (e)->mods[i_].m->hook(e); \
    } while (0)

/* ------------------------------------------------------------------ device offers, callbacks */

enum { JOB_OFFER_DEVICE = 1, JOB_CALLBACK };
struct engine_job { int type; char bericht[37]; char agent[ACDM_NAME_MAX + 1]; };

static void run_jobs(uv_timer_t *t);

static void job_push(acdm_engine *e, int type, const acdm_bericht *b, const acdm_agent *a)
{
    if (e->n_jobs == e->cap_jobs) {
        size_t nc = e->cap_jobs ? e->cap_jobs * 2 : 16;
        struct engine_job *nj = realloc(e->jobs, nc * sizeof *nj);
        if (!nj) { acdm_log(ACDM_LOG_ERR, WHO, "out of memory: channel step for %s dropped", b->id); return; }
        e->jobs = nj;
        e->cap_jobs = nc;
    }
    struct engine_job *j = &e->jobs[e->n_jobs++];
    j->type = type;
    snprintf(j->bericht, sizeof j->bericht, "%s", b->id);
    snprintf(j->agent, sizeof j->agent, "%s", a->id);
    if (!uv_is_active((uv_handle_t *)&e->defer_timer)) uv_timer_start(&e->defer_timer, run_jobs, 0, 0);
}

static void originate_note(acdm_engine *e, const acdm_bericht *b, const char *status, const char *why)
{
    acdm_event_row ev = {.ts_ms = acdm_now_ms(), .type = "originate_result", .bericht = b->id,
                         .queue = b->queue->name, .agent = b->agent ? b->agent->id : NULL,
                         .channel = b->channel, .kind = acdm_kind_name(b->kind)};
    json_t *d = json_pack("{s:s, s:s?}", "outcome", status, "reason", why);
    char *dj = d ? json_dumps(d, JSON_COMPACT) : NULL;
    ev.detail_json = dj;
    acdm_store_append_event(e->store, &ev);
    free(dj);
    json_decref(d);
    if (b->agent) {
        acdm_note n = {.type = ACDM_NOTE_ORIGINATE, .b = b, .status = status, .text = why, .ts = ev.ts_ms};
        dispatch_note(e, &n);
    }
}

/* The channel could not make the contact: the agent is told, the bericht ends. */
static void originate_failed(acdm_engine *e, acdm_bericht *b, const char *why)
{
    acdm_log(ACDM_LOG_NOTICE, b->channel, "outbound contact %s failed: %s", b->id, why ? why : "");
    originate_note(e, b, "failed", why);
    acdm_model_fail(e->model, b, acdm_now_ms());
}

/* The agent's endpoint the instance's plugin rings, or NULL. */
static const char *agent_endpoint(acdm_engine *e, const acdm_bericht *b, const acdm_agent *a)
{
    const char *key = acdm_plugins_device_key(e->plugins, b->channel);
    return key ? acdm_config_agent_endpoint(a->def, key) : NULL;
}

static void originate_call(acdm_engine *e, acdm_bericht *b, const char *kind, const char *text,
                           const char *payload_json)
{
    acdm_agent *a = b->agent;
    const char *ep = agent_endpoint(e, b, a);
    if (!ep) ep = acdm_config_agent_endpoint(a->def, "phone");
    acdm_originate o = {.struct_size = sizeof o, .bericht_id = b->id, .kind = kind, .to = b->from,
                        .agent_id = a->id, .agent_endpoint = ep, .text = text,
                        .payload_json = payload_json};
    char err[512], id[37];
    snprintf(id, sizeof id, "%s", b->id);
    int rc = acdm_plugins_originate(e->plugins, b->channel, &o, err, sizeof err);
    /* the plugin may have reported (or ended it) inside originate: look it up again */
    if (rc < 0 && (b = acdm_model_bericht(e->model, id)) && b->originating) originate_failed(e, b, err);
}

static void run_jobs(uv_timer_t *t)
{
    acdm_engine *e = t->data;
    size_t n = e->n_jobs;
    struct engine_job *jobs = e->jobs;
    e->jobs = NULL;
    e->n_jobs = e->cap_jobs = 0;
    for (size_t i = 0; i < n && e->plugins; i++) {
        acdm_bericht *b = acdm_model_bericht(e->model, jobs[i].bericht);
        acdm_agent *a = acdm_model_agent(e->model, jobs[i].agent);
        if (!b || !a) continue;
        if (jobs[i].type == JOB_OFFER_DEVICE) {
            const acdm_work *w = acdm_agent_work(a, b);
            if (!w || w->state != ACDM_W_OFFERED || !w->device) continue;   /* settled meanwhile */
            const char *subj = subject_of(e, b->id);
            json_t *d = json_pack("{s:s, s:s?}", "queue_title",
                                  b->queue->def->title ? b->queue->def->title : b->queue->name, "subject", subj);
            char *dj = d ? json_dumps(d, JSON_COMPACT) : NULL;
            json_decref(d);
            acdm_device_offer o = {.struct_size = sizeof o, .bericht_id = b->id, .agent_id = a->id,
                                   .agent_name = a->def->name, .kind = acdm_kind_name(b->kind),
                                   .endpoint = agent_endpoint(e, b, a), .from = b->from,
                                   .queue = b->queue->name,
                                   .timeout_ms = (uint32_t)b->queue->def->offer_timeout_s * 1000u,
                                   .detail_json = dj};
            int rc = o.endpoint ? acdm_plugins_offer_device(e->plugins, b->channel, &o) : ACDM_ENOENT;
            free(dj);
            /* the plugin may have answered (or ended the bericht) inside offer_device: look it up
             * again; a settled offer refuses the result */
            if (rc < 0 && (b = acdm_model_bericht(e->model, jobs[i].bericht)))
                acdm_agent_device_result(e->model, a, b, ACDM_DEV_FAILED,
                                         "the channel could not ring the agent's device", acdm_now_ms());
        } else if (jobs[i].type == JOB_CALLBACK) {
            if (b->agent != a || !b->originating || b->state != ACDM_B_ACTIVE) continue;
            originate_call(e, b, ACDM_KIND_NAME_CALLBACK, NULL, NULL);
        }
    }
    free(jobs);
    rearm(e);
}

/* What a model event asks of the bericht's channel beyond on_event: an offer rung on the
 * agent's device (the plugin has offer_device and the agent the endpoint it rings; the model's
 * offer timer then waits for the device, plus 5 s of grace), a callback accepted (the plugin's
 * originate calls the agent first, then the citizen). */
static void channel_steps(acdm_engine *e, const acdm_mevent *ev)
{
    acdm_bericht *b = ev->b;
    if (ev->type == ACDM_ME_OFFERED && ev->a && b->kind != ACDM_KIND_CALLBACK && !b->outbound &&
        agent_endpoint(e, b, ev->a)) {
        int to = b->queue->def->offer_timeout_s;
        int64_t deadline = to > 0 ? ev->ts + (int64_t)to * 1000 + 5000 : 0;
        if (!acdm_agent_offer_device(e->model, ev->a, b, deadline, ev->ts))
            job_push(e, JOB_OFFER_DEVICE, b, ev->a);
    } else if (ev->type == ACDM_ME_ACCEPTED && ev->a && b->kind == ACDM_KIND_CALLBACK && !b->outbound &&
               acdm_plugins_can_originate(e->plugins, b->channel)) {
        b->originating = true;
        job_push(e, JOB_CALLBACK, b, ev->a);
    }
}

const char *acdm_engine_event_detail(const acdm_mevent *ev, acdm_jobj *detail)
{
    const acdm_bericht *b = ev->b;
    const char *qname = ev->q ? ev->q->name : b ? b->queue->name : NULL;
    if (ev->type == ACDM_ME_UPDATED) {
        /* {"queue": now, "from": the queue it left (moved only), "priority": n} */
        acdm_jobj_str(detail, "queue", qname);
        acdm_jobj_str(detail, "from", ev->reason);
        acdm_jobj_int(detail, "priority", ev->value);
    } else {
        acdm_jobj_str(detail, "reason", ev->reason);
    }
    acdm_jobj_str(detail, "text", ev->text);   /* a device offer's outcome, in the channel's words */
    if (b) {   /* what the figures count (model.h, acdm_flow) */
        acdm_jobj_str(detail, "flow", acdm_flow_name(ev->flow));
        acdm_jobj_str(detail, "channel_flow", acdm_flow_name(ev->channel_flow));
    }
    if (ev->type == ACDM_ME_AGENT_DEVICE) {
        acdm_jobj_str(detail, "kind", acdm_kind_name((acdm_kind)ev->value));
        acdm_jobj_bool(detail, "reachable", ev->reason == NULL);
    }
    switch (ev->type) {
    case ACDM_ME_OFFERED: case ACDM_ME_ACCEPTED: case ACDM_ME_ABANDONED: case ACDM_ME_OVERFLOW:
        acdm_jobj_int(detail, "wait_ms", ev->value);
        break;
    case ACDM_ME_WRAPUP_START: case ACDM_ME_WRAPUP_EXTENDED:
        acdm_jobj_int(detail, "seconds", ev->value);
        break;
    case ACDM_ME_RESUME:
        acdm_jobj_int(detail, "held_ms", ev->value);
        break;
    default: break;
    }
    if (ev->type == ACDM_ME_ABANDONED) acdm_jobj_bool(detail, "quick_drop", ev->quick_drop);
    if (ev->type == ACDM_ME_AGENT_STATE && ev->a)
        acdm_jobj_str(detail, "state", acdm_agent_state_name(ev->a->state));
    return detail->fields ? acdm_jobj_end(detail) : NULL;
}

static void on_model_event(void *ctx, const acdm_mevent *ev)
{
    acdm_engine *e = ctx;
    const acdm_bericht *b = ev->b;
    const char *qname = ev->q ? ev->q->name : b ? b->queue->name : NULL;
    const char *agent = ev->a ? ev->a->id : NULL;
    /* the event's detail: a flat object, written without jansson (one per transition) */
    char dbuf[256];
    acdm_jobj detail;
    acdm_jobj_init(&detail, dbuf, sizeof dbuf);
    const char *dj = acdm_engine_event_detail(ev, &detail);
    acdm_event_row row = {.ts_ms = ev->ts, .type = acdm_mevent_name(ev->type),
                          .bericht = b ? b->id : NULL, .queue = qname, .agent = agent,
                          .channel = b ? b->channel : NULL,
                          .kind = b ? acdm_kind_name(b->kind) : NULL, .detail_json = dj};
    acdm_store_append_event(e->store, &row);

    /* the bericht's row follows its state (a new one's row was just inserted as queued in its
     * queue at its queue time: rewriting it would cost the writer a statement per ingest) */
    bool fresh = ev->type == ACDM_ME_QUEUED && ev->reason && !strcmp(ev->reason, "new");
    if (b && !fresh) {
        switch (ev->type) {
        case ACDM_ME_QUEUED: case ACDM_ME_OFFERED: case ACDM_ME_ACCEPTED: case ACDM_ME_TRANSFERRED:
        case ACDM_ME_OVERFLOW: case ACDM_ME_WRAPUP_START: case ACDM_ME_DONE: case ACDM_ME_ABANDONED:
        case ACDM_ME_MOVED: case ACDM_ME_UPDATED: {
            acdm_bstate st = ev->type == ACDM_ME_DONE ? ACDM_B_DONE
                           : ev->type == ACDM_ME_ABANDONED ? ACDM_B_ABANDONED : (acdm_bstate)b->state;
            const char *who = st == ACDM_B_QUEUED ? NULL : (b->agent ? b->agent->id : agent);
            acdm_store_update_bericht(e->store, b->id, st, b->queue->name, who, b->queued_ms, ev->ts);
            break;
        }
        default: break;
        }
    }

    dispatch_event(e, ev, INT_MIN, ACDM_SUB_CHANNELS);   /* the agents */

    /* tell the channel */
    int pt = plugin_event_type(ev->type);
    /* an offer withdrawn because its agent went (logout, removed) is back in the queue for the
     * channel (ACDM_EV_REQUEUED, "agent gone"): a device channel stops ringing that agent */
    if (ev->type == ACDM_ME_OFFER_CANCELLED && ev->reason && !strcmp(ev->reason, "logout"))
        pt = ACDM_EV_REQUEUED;
    if (b && pt >= 0 && e->plugins && strcmp(b->channel, "api")) {
        acdm_event_info info = {.struct_size = sizeof info, .type = (acdm_event_type)pt,
                                .bericht_id = b->id, .conversation = b->conversation,
                                .queue = b->queue->name, .agent = agent, .detail_json = dj};
        acdm_plugins_event(e->plugins, b->channel, &info);
    }
    if (b && e->plugins && strcmp(b->channel, "api")) channel_steps(e, ev);
    acdm_jobj_free(&detail);
    if (b && ev->type == ACDM_ME_ACCEPTED) qwait_accepted(e, b->queue->name, ev->ts);
    if (b && (ev->type == ACDM_ME_DONE || ev->type == ACDM_ME_ABANDONED))
        free(acdm_hmap_del(&e->subjects, b->id));   /* b is freed after this event */
    dispatch_event(e, ev, ACDM_SUB_CHANNELS, INT_MAX);   /* today's figures; the screen-pop on offers */
    rearm(e);
}

/* ------------------------------------------------------------------ intake */

typedef struct {
    acdm_engine *e;
    acdm_intake_done done;
    void *user;
    char id[37];
    char *queue, *from, *conversation, *channel, *preferred;
    acdm_kind kind;
    int priority;
    acdm_skill *skills;
    size_t n_skills;
    int64_t created;
    int64_t queued;          /* the queue time: created, or the intake's original queued_ms */
    bool closed;
    bool wait_if_closed;     /* stored as queued although its queue is closed: parked */
    bool routed;             /* ACDM_IN_ROUTE_AT_ONCE: in the model (and routed) before the commit */
    char *closed_text;
    char *followup_of;
    char *text;
    char *subject;           /* shown on the offer */
    json_t *payload;         /* a follow-up's payload (attachments), pushed with the message */
} intake_job;

static void job_free(intake_job *j)
{
    for (size_t i = 0; i < j->n_skills; i++) free(j->skills[i].name);
    free(j->skills);
    free(j->queue); free(j->from); free(j->conversation); free(j->channel); free(j->preferred);
    free(j->closed_text); free(j->followup_of); free(j->text); free(j->subject);
    json_decref(j->payload);
    free(j);
}

/* The bericht into the model: it is queued and may be offered at once. */
static int intake_model_submit(acdm_engine *e, intake_job *j, const char **text)
{
    acdm_new_bericht nb = {.id = j->id, .queue = j->queue, .kind = j->kind,
                           .priority = j->priority, .channel = j->channel, .from = j->from,
                           .conversation = j->conversation, .skills = j->skills,
                           .n_skills = j->n_skills, .created_ms = j->created,
                           .queued_ms = j->queued, .preferred_agent = j->preferred,
                           .wait_if_closed = j->wait_if_closed};
    subject_set(e, j->id, j->subject);   /* before submit: it may offer at once */
    int rc = acdm_model_submit(e->model, &nb, acdm_now_ms(), NULL, text);
    if (rc) free(acdm_hmap_del(&e->subjects, j->id));
    return rc;
}

/* A bericht routed before its commit whose row did not get stored (a failed group, or its key
 * was a duplicate): it leaves the model (an offer rung meanwhile is withdrawn by the end). */
static void intake_unroute(acdm_engine *e, intake_job *j, const char *reason)
{
    acdm_bericht *b = acdm_model_bericht(e->model, j->id);
    if (b) acdm_model_end(e->model, b, reason, acdm_now_ms());
    acdm_log(ACDM_LOG_WARN, j->channel, "bericht %s was routed before its commit, which %s: ended",
             j->id, strcmp(reason, "duplicate") ? "failed" : "found its key a duplicate");
}

static void intake_committed(void *user, int status, const char *existing_id)
{
    intake_job *j = user;
    acdm_engine *e = j->e;
    if (status == ACDM_EEXIST) {
        if (j->routed) intake_unroute(e, j, "duplicate");
        j->done(e, j->user, ACDM_SUBMIT_DUPLICATE, existing_id, NULL, 200);
        if (j->routed) rearm(e);
    } else if (status) {
        if (j->routed) intake_unroute(e, j, "not stored");
        j->done(e, j->user, ACDM_SUBMIT_ERROR, NULL, "the bericht could not be stored", 503);
        if (j->routed) rearm(e);
    } else if (j->closed) {
        j->done(e, j->user, ACDM_SUBMIT_CLOSED, j->id, j->closed_text, 201);
    } else if (j->routed) {
        e->n_ingested++;
        j->done(e, j->user, ACDM_SUBMIT_QUEUED, j->id, NULL, 201);
    } else {
        const char *text = NULL;
        int rc = intake_model_submit(e, j, &text);
        if (rc == ACDM_ECLOSED) {
            /* closed between the check and the commit: record it as closed */
            acdm_store_update_bericht(e->store, j->id, ACDM_B_CLOSED, j->queue, NULL, j->created, acdm_now_ms());
            j->done(e, j->user, ACDM_SUBMIT_CLOSED, j->id, text, 201);
        } else if (rc) {
            acdm_store_update_bericht(e->store, j->id, ACDM_B_CLOSED, j->queue, NULL, j->created, acdm_now_ms());
            j->done(e, j->user, ACDM_SUBMIT_ERROR, j->id, acdm_strerror(rc), 500);
        } else {
            e->n_ingested++;
            j->done(e, j->user, ACDM_SUBMIT_QUEUED, j->id, NULL, 201);
        }
        rearm(e);
    }
    job_free(j);
}

/* A follow-up is shown to the agent and acknowledged to the customer once it is committed —
 * and only if it was not a redelivery (a duplicate key writes nothing and is answered
 * `duplicate`, so the customer's text never appears twice in the thread). */
static void followup_committed(void *user, int status, const char *existing_id)
{
    intake_job *j = user;
    acdm_engine *e = j->e;
    if (status == ACDM_EEXIST) {
        j->done(e, j->user, ACDM_SUBMIT_DUPLICATE, existing_id ? existing_id : j->followup_of, NULL, 200);
    } else if (status) {
        j->done(e, j->user, ACDM_SUBMIT_ERROR, NULL, "the message could not be stored", 503);
    } else {
        acdm_bericht *live = acdm_model_bericht(e->model, j->followup_of);
        if (live && live->agent) {
            acdm_note n = {.type = ACDM_NOTE_FOLLOWUP, .b = live, .text = j->text, .ts = j->created,
                           .payload = j->payload};
            dispatch_note(e, &n);
        }
        j->done(e, j->user, ACDM_SUBMIT_FOLLOWUP, j->followup_of, NULL, 200);
    }
    job_free(j);
}

static int parse_skills(json_t *arr, acdm_skill **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) { snprintf(err, errlen, "skills: expected an array"); return ACDM_EINVAL; }
    size_t cnt = json_array_size(arr);
    if (cnt > 32) { snprintf(err, errlen, "skills: at most 32 skills"); return ACDM_EINVAL; }
    *out = calloc(cnt ? cnt : 1, sizeof **out);
    for (size_t i = 0; i < cnt; i++) {
        json_t *s = json_array_get(arr, i);
        const char *name = json_is_string(s) ? json_string_value(s)
                         : json_string_value(json_object_get(s, "name"));
        json_t *lv = json_is_object(s) ? json_object_get(s, "level") : NULL;
        int level = lv ? (int)json_integer_value(lv) : 1;
        if (!name || !*name || strlen(name) > ACDM_NAME_MAX || (lv && !json_is_integer(lv)) ||
            level < 1 || level > 100) {
            snprintf(err, errlen, "skills[%zu]: expected a skill name or {\"name\": string, \"level\": 1..100}", i);
            for (size_t k = 0; k < *n; k++) free((*out)[k].name);
            free(*out);
            *out = NULL;
            *n = 0;
            return ACDM_EINVAL;
        }
        (*out)[(*n)++] = (acdm_skill){strdup(name), level};
    }
    return 0;
}

int acdm_engine_intake(acdm_engine *e, const acdm_intake *in, acdm_intake_done done, void *user,
                       char *err, size_t errlen)
{
    if (!in->from || !*in->from) { snprintf(err, errlen, "from: the customer's address is required"); return ACDM_EINVAL; }
    if (acdm_utf8_chars(in->from) > 512) { snprintf(err, errlen, "from: longer than 512 characters"); return ACDM_EINVAL; }
    if ((unsigned)in->kind >= ACDM_KIND__COUNT) { snprintf(err, errlen, "kind: unknown kind"); return ACDM_EINVAL; }
    if (in->priority < 0 || in->priority > 9) { snprintf(err, errlen, "priority: must be 0..9"); return ACDM_EINVAL; }
    if (in->idem_key && acdm_utf8_chars(in->idem_key) > 256) { snprintf(err, errlen, "idempotency key: longer than 256 characters"); return ACDM_EINVAL; }
    if (in->conversation && acdm_utf8_chars(in->conversation) > 256) { snprintf(err, errlen, "conversation: longer than 256 characters"); return ACDM_EINVAL; }

    intake_job *j = calloc(1, sizeof *j);
    if (!j) { snprintf(err, errlen, "out of memory"); return ACDM_ENOMEM; }
    j->e = e;
    j->done = done;
    j->user = user;
    j->created = acdm_now_ms();
    j->queued = in->queued_ms > 0 && in->queued_ms <= j->created ? in->queued_ms : j->created;

    /* a follow-up of a live conversation joins its bericht */
    const char *chan = in->channel ? in->channel : "api";
    acdm_bericht *live = in->conversation ? acdm_model_conversation(e->model, chan, in->conversation) : NULL;
    if (live) {
        j->followup_of = strdup(live->id);
        j->text = in->text ? strdup(in->text) : NULL;
        j->payload = json_is_object(in->payload) && json_object_size(in->payload) ? json_deep_copy(in->payload) : NULL;
        char *pj = in->payload ? json_dumps(in->payload, JSON_COMPACT) : NULL;
        acdm_followup_row f = {.bericht_id = live->id, .channel = live->channel,
                               .idem_key = in->idem_key, .ts_ms = j->created, .author = in->from,
                               .text = in->text, .payload_json = pj, .queue = live->queue->name,
                               .kind = acdm_kind_name(live->kind)};
        int rc = acdm_store_add_followup(e->store, &f, followup_committed, j);
        free(pj);
        if (rc) { job_free(j); snprintf(err, errlen, "the message could not be queued for storage: %s", acdm_strerror(rc)); return rc; }
        return 0;
    }

    acdm_queue *q = acdm_model_queue(e->model, in->queue);
    if (!in->queue || !*in->queue) { job_free(j); snprintf(err, errlen, "queue: required (no default queue for this channel)"); return ACDM_EINVAL; }
    if (!q) { job_free(j); snprintf(err, errlen, "queue: no queue named \"%s\"", in->queue); return ACDM_ENOENT; }
    if (parse_skills(in->skills, &j->skills, &j->n_skills, err, errlen)) { job_free(j); return ACDM_EINVAL; }
    acdm_uuidv7(j->id, j->created);
    j->queue = strdup(in->queue);
    j->from = strdup(in->from);
    j->conversation = in->conversation ? strdup(in->conversation) : NULL;
    j->channel = strdup(in->channel ? in->channel : "api");
    j->kind = in->kind;
    j->priority = in->priority;
    j->wait_if_closed = in->wait_if_closed;
    if (!acdm_queue_is_open(q) && !in->wait_if_closed) {
        j->closed = true;
        j->closed_text = strdup(acdm_queue_closed_text(q, in->kind));
    }
    if (in->subject && *in->subject) {
        j->subject = strdup(in->subject);
    }
    /* payload: the channel's JSON plus subject/text (without channel JSON, written directly) */
    json_t *payload = NULL;
    char pbuf[4096], sbuf[1024], *pheap = NULL, *sheap;
    acdm_jobj po = {0};   /* freeing it unused is a no-op */
    const char *pj;
    if (!in->payload) {
        acdm_jobj_init(&po, pbuf, sizeof pbuf);
        acdm_jobj_str(&po, "subject", in->subject);
        acdm_jobj_str(&po, "text", in->text);
        pj = acdm_jobj_end(&po);
    } else {
        payload = json_deep_copy(in->payload);
        if (in->subject) json_object_set_new(payload, "subject", json_string(in->subject));
        if (in->text) json_object_set_new(payload, "text", json_string(in->text));
        pj = acdm_json_text(payload, pbuf, sizeof pbuf, &pheap);
    }
    const char *sj = acdm_json_text(in->skills, sbuf, sizeof sbuf, &sheap);
    acdm_bericht_row row = {.id = j->id, .channel = j->channel, .kind = in->kind, .direction = "in",
                            .from = in->from, .customer_id = in->customer_id,
                            .conversation = in->conversation, .queue = in->queue,
                            .priority = in->priority, .skills_json = sj,
                            .state = j->closed ? ACDM_B_CLOSED : ACDM_B_QUEUED,
                            .idem_key = in->idem_key, .payload_json = pj,
                            .created_ms = j->created, .queued_ms = j->queued, .text = in->text};
    /* the first text and a closed queue's `closed` event are written with the row, and only
     * if it is (a duplicate writes nothing but the answer) */
    int rc = acdm_store_insert_bericht(e->store, &row, intake_committed, j);
    json_decref(payload);
    acdm_jobj_free(&po);
    free(pheap);
    free(sheap);
    if (rc) { job_free(j); snprintf(err, errlen, "the bericht could not be queued for storage: %s", acdm_strerror(rc)); return rc; }
    if (in->route_at_once && !j->closed) {
        /* routed while the commit runs (the insert is queued first, so every event the model
         * writes for it lands in the same group or a later one); the channel acknowledges the
         * customer only on the final outcome after the commit. A model refusal (closed in the
         * meantime) leaves it to the commit's path. */
        j->done(e, j->user, ACDM_SUBMIT_ROUTING, j->id, NULL, 0);
        const char *text = NULL;
        if (!intake_model_submit(e, j, &text)) {
            j->routed = true;
            rearm(e);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ plugin env */

typedef struct { acdm_instance *inst; acdm_submit_cb cb; void *user; } plugin_submit;

static void plugin_intake_done(acdm_engine *e, void *user, acdm_submit_outcome outcome,
                               const char *id, const char *text, int http_status)
{
    (void)e; (void)http_status;
    plugin_submit *ps = user;
    /* the host wraps cb so that priv is passed (see plugins.c); after shutdown of the plugin
     * host (late store completions at exit) there is nobody left to tell */
    if (ps->cb && e->plugins) ps->cb(ps->inst, NULL, ps->user, outcome, id, text);
    if (outcome != ACDM_SUBMIT_ROUTING) free(ps);   /* the final outcome follows a ROUTING */
}

static int env_submit(void *engine, acdm_instance *inst, const acdm_inbound *in, acdm_submit_cb cb,
                      void *user, char *err, size_t errlen)
{
    acdm_engine *e = engine;
    json_t *skills = NULL, *payload = NULL;
    const char *iname = acdm_instance_name_of(inst);
    json_error_t je;
    if (in->skills_json && !(skills = json_loads(in->skills_json, 0, &je))) {
        snprintf(err, errlen, "skills_json: not valid JSON (%s)", je.text);
        acdm_log(ACDM_LOG_WARN, iname, "bericht refused: %s", err);
        return ACDM_EINVAL;
    }
    if (in->payload_json && (!(payload = json_loads(in->payload_json, 0, &je)) || !json_is_object(payload))) {
        if (payload) snprintf(err, errlen, "payload_json: not a JSON object");
        else snprintf(err, errlen, "payload_json: not valid JSON (%s)", je.text);
        acdm_log(ACDM_LOG_WARN, iname, "bericht refused: %s", err);
        json_decref(skills);
        json_decref(payload);
        return ACDM_EINVAL;
    }
    acdm_intake it = {.channel = iname, .kind = acdm_kind_parse(in->kind),
                      .queue = in->queue ? in->queue : acdm_instance_queue(inst), .from = in->from,
                      .customer_id = in->customer_id, .conversation = in->conversation,
                      .idem_key = in->idempotency_key, .priority = in->priority, .skills = skills,
                      .subject = in->subject, .text = in->text, .payload = payload,
                      .wait_if_closed = in->struct_size >= offsetof(acdm_inbound, flags) + sizeof in->flags &&
                                        (in->flags & ACDM_IN_WAIT_IF_CLOSED),
                      .route_at_once = in->struct_size >= offsetof(acdm_inbound, flags) + sizeof in->flags &&
                                       (in->flags & ACDM_IN_ROUTE_AT_ONCE),
                      .queued_ms = in->struct_size >= offsetof(acdm_inbound, queued_ms) + sizeof in->queued_ms
                                   ? in->queued_ms : 0};
    plugin_submit *ps = malloc(sizeof *ps);
    int rc = ACDM_ENOMEM;
    if (!ps) snprintf(err, errlen, "out of memory");
    else {
        *ps = (plugin_submit){inst, cb, user};
        rc = acdm_engine_intake(e, &it, plugin_intake_done, ps, err, errlen);
    }
    if (rc) {
        acdm_log(ACDM_LOG_WARN, iname, "bericht refused: %s", err);
        free(ps);
    }
    json_decref(skills);
    json_decref(payload);
    return rc;
}

static int env_end(void *engine, acdm_instance *inst, const char *bericht_id, const char *reason)
{
    acdm_engine *e = engine;
    acdm_bericht *b = acdm_model_bericht(e->model, bericht_id);
    if (!b || strcmp(b->channel, acdm_instance_name_of(inst))) return ACDM_ENOENT;
    int rc = acdm_model_end(e->model, b, reason ? reason : "ended", acdm_now_ms());
    rearm(e);
    return rc;
}

static int env_end_ago(void *engine, acdm_instance *inst, const char *bericht_id, const char *reason,
                       uint32_t ago_ms)
{
    acdm_engine *e = engine;
    acdm_bericht *b = acdm_model_bericht(e->model, bericht_id);
    if (!b || strcmp(b->channel, acdm_instance_name_of(inst))) return ACDM_ENOENT;
    int64_t now = acdm_now_ms(), at = now;
    /* only a waiting, unoffered bericht is ended in the past: no offer or timer depends on it */
    if (b->state == ACDM_B_QUEUED && !b->n_offers) {
        at = now - (int64_t)ago_ms;
        if (at < b->enqueued_ms) at = b->enqueued_ms;
    }
    int rc = acdm_model_end(e->model, b, reason, at);
    rearm(e);
    return rc;
}

/* ---- ABI 1.1, the routing side */

static int env_set_conversation(void *engine, acdm_instance *inst, const char *bericht_id,
                                const char *conversation)
{
    acdm_engine *e = engine;
    acdm_bericht *b = acdm_model_bericht(e->model, bericht_id);
    if (!b || strcmp(b->channel, acdm_instance_name_of(inst))) return ACDM_ENOENT;
    if (b->state == ACDM_B_DONE || b->state == ACDM_B_ABANDONED) return ACDM_ESTATE;
    if (acdm_utf8_chars(conversation) > 256) return ACDM_EINVAL;
    bool had = b->conversation != NULL;
    int rc = acdm_model_set_conversation(e->model, b, conversation);
    if (rc || had) return rc;
    rc = acdm_store_set_conversation(e->store, b->id, conversation, acdm_now_ms());
    if (rc) acdm_log(ACDM_LOG_ERR, acdm_instance_name_of(inst), "bericht %s: its conversation key "
                     "could not be queued for storage (%s)", b->id, acdm_strerror(rc));
    return 0;
}

static int env_update(void *engine, acdm_instance *inst, const char *bericht_id, const acdm_update *u,
                      char *err, size_t errlen)
{
    acdm_engine *e = engine;
    acdm_bericht *b = acdm_model_bericht(e->model, bericht_id);
    if (!b || strcmp(b->channel, acdm_instance_name_of(inst))) {
        snprintf(err, errlen, "bericht_id: no live bericht %.40s of this instance", bericht_id);
        return ACDM_ENOENT;
    }
    acdm_queue *to = NULL;
    if (u->queue && !(to = acdm_model_queue(e->model, u->queue))) {
        snprintf(err, errlen, "queue: no queue named \"%.80s\"", u->queue);
        return ACDM_EINVAL;
    }
    if (u->priority < -1 || u->priority > 9) {
        snprintf(err, errlen, "priority: %d is not 0..9 (or -1: unchanged)", u->priority);
        return ACDM_EINVAL;
    }
    json_t *sj = NULL, *pj = NULL;
    acdm_skill *skills = NULL;
    size_t n_skills = 0;
    int rc = 0;
    if (u->skills_json) {
        sj = json_loads(u->skills_json, 0, NULL);
        if (!json_is_array(sj)) { snprintf(err, errlen, "skills_json: expected a JSON array"); rc = ACDM_EINVAL; goto out; }
        if (parse_skills(sj, &skills, &n_skills, err, errlen)) { rc = ACDM_EINVAL; goto out; }
    }
    if (u->payload_json) {
        pj = json_loads(u->payload_json, 0, NULL);
        if (!json_is_object(pj)) { snprintf(err, errlen, "payload_json: expected a JSON object"); rc = ACDM_EINVAL; goto out; }
    }
    rc = acdm_model_update(e->model, b, to, u->priority, skills, n_skills, u->skills_json != NULL, acdm_now_ms());
    if (rc == ACDM_ESTATE) {
        snprintf(err, errlen, "the bericht is no longer waiting (it is %s)", acdm_bstate_name(b->state));
    } else if (rc == ACDM_ECLOSED) {
        /* the closed text, for the customer (an IVR plays it) */
        snprintf(err, errlen, "%s", acdm_queue_closed_text(to, b->kind));
    } else if (!rc && (u->priority >= 0 || sj || pj)) {
        char *skills_text = sj ? json_dumps(sj, JSON_COMPACT) : NULL;
        char *patch = pj ? json_dumps(pj, JSON_COMPACT) : NULL;
        acdm_store_amend_bericht(e->store, bericht_id, u->priority, skills_text, patch, acdm_now_ms());
        free(skills_text);
        free(patch);
    }
    rearm(e);
out:
    for (size_t i = 0; i < n_skills; i++) free(skills[i].name);
    free(skills);
    json_decref(sj);
    json_decref(pj);
    return rc;
}

static int env_device_result(void *engine, acdm_instance *inst, const char *bericht_id,
                             const char *agent_id, acdm_device_outcome outcome, const char *reason)
{
    acdm_engine *e = engine;
    acdm_bericht *b = acdm_model_bericht(e->model, bericht_id);
    acdm_agent *a = acdm_model_agent(e->model, agent_id);
    if (!b || strcmp(b->channel, acdm_instance_name_of(inst))) return ACDM_ENOENT;
    if (!a) return ACDM_ENOENT;
    int rc = acdm_agent_device_result(e->model, a, b, (acdm_dev_outcome)outcome, reason, acdm_now_ms());
    rearm(e);
    return rc;
}

static int env_device_reachable(void *engine, acdm_instance *inst, const char *agent_id,
                                const char *kind, int reachable, const char *reason)
{
    acdm_engine *e = engine;
    (void)inst;
    acdm_agent *a = acdm_model_agent(e->model, agent_id);
    int k = acdm_kind_parse(kind);
    if (!a) return ACDM_ENOENT;
    if (k < 0) return ACDM_EINVAL;
    int64_t now = acdm_now_ms();
    int rc = acdm_agent_set_reachable(e->model, a, (acdm_kind)k, reachable != 0, reason, now);
    /* a callback is a call to the agent's phone first: the phone's reachability covers both */
    if (!rc && k == ACDM_KIND_VOICE)
        rc = acdm_agent_set_reachable(e->model, a, ACDM_KIND_CALLBACK, reachable != 0, reason, now);
    rearm(e);
    return rc;
}

static int env_originate_result(void *engine, acdm_instance *inst, const char *bericht_id,
                                acdm_originate_outcome outcome, const char *reason)
{
    acdm_engine *e = engine;
    acdm_bericht *b = acdm_model_bericht(e->model, bericht_id);
    if (!b || strcmp(b->channel, acdm_instance_name_of(inst))) return ACDM_ENOENT;
    if (!b->originating || b->state != ACDM_B_ACTIVE) return ACDM_ESTATE;
    if (outcome == ACDM_ORIG_CONNECTED) {
        b->originating = false;
        originate_note(e, b, "connected", reason);
    } else {
        originate_failed(e, b, reason && *reason ? reason : "the contact could not be made");
    }
    rearm(e);
    return 0;
}

/* A channel that rang agents' phones stopped (reload, disable, shutdown): the registrations it
 * reported went with it, so agents whose endpoint registers are unreachable again until the
 * channel, started anew, hears from their softphones. */
static void env_devices_gone(void *engine, acdm_instance *inst, const char *key)
{
    acdm_engine *e = engine;
    (void)inst;
    if (e->stopping) return;
    int64_t now = acdm_now_ms();
    for (size_t i = 0; i < acdm_model_n_agents(e->model); i++) {
        acdm_agent *a = acdm_model_agent_at(e->model, i);
        const char *ep = acdm_config_agent_endpoint(a->def, key);
        if (!ep || strcmp(ep, "register")) continue;
        acdm_agent_set_reachable(e->model, a, ACDM_KIND_VOICE, false, "phone not registered", now);
        acdm_agent_set_reachable(e->model, a, ACDM_KIND_CALLBACK, false, "phone not registered", now);
    }
    rearm(e);
}

/* ---- outbound contacts from the desk */

typedef struct { acdm_engine *e; char id[37]; char *text; char *payload; char kind[16]; } orig_job;

static void originate_committed(void *user, int status, const char *existing_id)
{
    (void)existing_id;
    orig_job *j = user;
    acdm_engine *e = j->e;
    acdm_bericht *b = e->model ? acdm_model_bericht(e->model, j->id) : NULL;
    if (b && b->originating && b->state == ACDM_B_ACTIVE && e->plugins && !e->stopping) {
        if (status) originate_failed(e, b, "the contact could not be stored");
        else originate_call(e, b, j->kind, j->text, j->payload);
        rearm(e);
    }
    free(j->text);
    free(j->payload);
    free(j);
}

int acdm_engine_transfer_out(acdm_engine *e, acdm_agent *a, acdm_bericht *b, const char *number,
                             char *err, size_t errlen)
{
    if (b->kind != ACDM_KIND_VOICE) {
        snprintf(err, errlen, "number: only a call can be transferred to a phone number (this is %s %s)",
                 b->kind == ACDM_KIND_EMAIL ? "an" : "a", acdm_kind_name((acdm_kind)b->kind));
        return ACDM_EINVAL;
    }
    acdm_work *w = acdm_agent_work(a, b);
    if (!w || w->state != ACDM_W_ACTIVE) {
        snprintf(err, errlen, "the call is not in conversation with you");
        return ACDM_ESTATE;
    }
    if (!acdm_phone_number_ok(number)) {
        snprintf(err, errlen, "number: \"%.40s\" is not a phone number (digits, optionally a leading +)",
                 number ? number : "");
        return ACDM_EINVAL;
    }
    if (!e->plugins || !acdm_plugins_can_transfer_out(e->plugins, b->channel)) {
        snprintf(err, errlen, "channel \"%.64s\" cannot transfer calls to a phone number", b->channel);
        return ACDM_ENOENT;
    }
    return acdm_plugins_transfer_out(e->plugins, b->channel, b->id, number, err, errlen);
}

int acdm_engine_originate(acdm_engine *e, acdm_agent *a, const acdm_outbound_contact *o, char id_out[37],
                          char *err, size_t errlen)
{
    int k = o->kind ? acdm_kind_parse(o->kind) : -1;
    if (k < 0 || k == ACDM_KIND_CALLBACK) {
        snprintf(err, errlen, "kind: expected voice, chat, email, sms or whatsapp");
        return ACDM_EINVAL;
    }
    if (!o->channel || !*o->channel) { snprintf(err, errlen, "channel: required (the channel instance)"); return ACDM_EINVAL; }
    if (!e->plugins || !acdm_plugins_can_originate(e->plugins, o->channel)) {
        snprintf(err, errlen, "channel: \"%.64s\" is not a running channel that starts outbound contacts", o->channel);
        return ACDM_ENOENT;
    }
    if (!o->to || !*o->to || strlen(o->to) > 512 || strpbrk(o->to, "\r\n")) {
        snprintf(err, errlen, "to: the customer's address is required (at most 512 characters, one line)");
        return ACDM_EINVAL;
    }
    if (o->payload && !json_is_object(o->payload)) { snprintf(err, errlen, "payload: expected an object"); return ACDM_EINVAL; }
    const char *queue = o->queue;
    if (!queue) queue = acdm_instance_queue(acdm_plugins_instance(e->plugins, o->channel));
    if (!queue && a->n_members) queue = a->members[0]->queue->name;
    if (!queue || !acdm_model_queue(e->model, queue)) {
        snprintf(err, errlen, "queue: %s%.64s%s", queue ? "no queue named \"" : "required (the channel has no queue)",
                 queue ? queue : "", queue ? "\"" : "");
        return ACDM_EINVAL;
    }
    int64_t now = acdm_now_ms();
    char id[37];
    acdm_uuidv7(id, now);
    acdm_new_bericht nb = {.id = id, .queue = queue, .kind = (acdm_kind)k, .channel = o->channel,
                           .from = o->to, .created_ms = now, .queued_ms = now};
    acdm_bericht *b = NULL;
    int rc = acdm_model_originate(e->model, &nb, a, now, &b);
    if (rc == ACDM_EFULL) { snprintf(err, errlen, "no room: %s capacity is full", acdm_kind_name((acdm_kind)k)); return rc; }
    if (rc == ACDM_ESTATE) { snprintf(err, errlen, "log in first"); return rc; }
    if (rc) { snprintf(err, errlen, "%s", acdm_strerror(rc)); return rc; }
    b->originating = true;
    json_t *payload = o->payload ? json_deep_copy(o->payload) : json_object();
    if (o->text) json_object_set_new(payload, "text", json_string(o->text));
    json_object_set_new(payload, "to", json_string(o->to));
    char *pj = json_dumps(payload, JSON_COMPACT);
    char *cpj = o->payload ? json_dumps(o->payload, JSON_COMPACT) : NULL;
    json_decref(payload);
    orig_job *j = calloc(1, sizeof *j);
    if (j) {
        j->e = e;
        snprintf(j->id, sizeof j->id, "%s", id);
        snprintf(j->kind, sizeof j->kind, "%s", acdm_kind_name((acdm_kind)k));
        j->text = o->text ? strdup(o->text) : NULL;
        j->payload = cpj;
        cpj = NULL;
    }
    acdm_bericht_row row = {.id = id, .channel = o->channel, .kind = (acdm_kind)k, .direction = "out",
                            .from = o->to, .queue = queue, .state = ACDM_B_ACTIVE, .agent = a->id,
                            .payload_json = pj, .created_ms = now, .queued_ms = now};
    rc = j ? acdm_store_insert_bericht(e->store, &row, originate_committed, j) : ACDM_ENOMEM;
    free(pj);
    free(cpj);
    if (rc) {
        if (j) { free(j->text); free(j->payload); free(j); }
        snprintf(err, errlen, "the contact could not be stored: %s", acdm_strerror(rc));
        acdm_model_fail(e->model, b, now);
        return rc;
    }
    if (o->text) acdm_store_add_message(e->store, id, now, "out", a->id, o->text, NULL);
    snprintf(id_out, 37, "%s", id);
    rearm(e);
    return 0;
}

static int env_delivery_report(void *engine, acdm_instance *inst, const char *bericht_id,
                               const char *text, const char *payload_json)
{
    acdm_engine *e = engine;
    (void)text;
    acdm_bericht *b = acdm_model_bericht(e->model, bericht_id);
    const char *iname = acdm_instance_name_of(inst);
    json_t *pl = payload_json ? json_loads(payload_json, 0, NULL) : NULL;
    const char *status = json_string_value(json_object_get(pl, "delivery"));
    if (status && !strcmp(status, "failed") && iname) {
        uint64_t *n = acdm_hmap_get(&e->dfail, iname);
        if (!n) {
            size_t l = strlen(iname);
            char *blob = calloc(1, sizeof *n + l + 1);
            if (blob) {
                memcpy(blob + sizeof *n, iname, l + 1);
                if (acdm_hmap_put(&e->dfail, blob + sizeof *n, blob)) free(blob);
                else n = (uint64_t *)(void *)blob;
            }
        }
        if (n) (*n)++;
    }
    acdm_event_row ev = {.ts_ms = acdm_now_ms(), .type = "delivery", .bericht = bericht_id,
                         .queue = b ? b->queue->name : NULL, .agent = b && b->agent ? b->agent->id : NULL,
                         .channel = iname, .detail_json = payload_json};
    acdm_store_append_event(e->store, &ev);
    if (b && b->agent) {
        acdm_note n = {.type = ACDM_NOTE_DELIVERY, .b = b, .status = status ? status : "unknown",
                       .text = json_string_value(json_object_get(pl, "message"))};
        dispatch_note(e, &n);
    }
    json_decref(pl);
    return 0;
}

uint64_t acdm_engine_deliveries_failed(acdm_engine *e, const char *instance)
{
    const uint64_t *n = e && instance ? acdm_hmap_get(&e->dfail, instance) : NULL;
    return n ? *n : 0;
}

static int env_typing(void *engine, acdm_instance *inst, const char *bericht_id)
{
    acdm_engine *e = engine;
    acdm_bericht *b = acdm_model_bericht(e->model, bericht_id);
    if (!b || strcmp(b->channel, acdm_instance_name_of(inst))) return ACDM_ENOENT;
    if (b->agent) {
        acdm_note n = {.type = ACDM_NOTE_TYPING, .b = b};
        dispatch_note(e, &n);
    }
    return 0;
}

static int env_queue_position(void *engine, acdm_instance *inst, const char *bericht_id,
                              uint32_t *position, uint32_t *estimate_s)
{
    acdm_engine *e = engine;
    acdm_bericht *b = acdm_model_bericht(e->model, bericht_id);
    if (!b || strcmp(b->channel, acdm_instance_name_of(inst))) return ACDM_ENOENT;
    uint32_t pos = cached_position(e, b, acdm_now_ms());
    if (!pos) return ACDM_ENOENT;
    *position = pos;
    const qwait_stat *w = acdm_hmap_get(&e->qwait, b->queue->name);
    *estimate_s = w && w->n ? (uint32_t)((double)pos * w->gap_ms / 1000.0 + 0.5) : 0;
    return 0;
}

/* host->queue_info: the queue as a customer-facing channel shows it (plugin.h). */
static char *env_queue_info(void *engine, acdm_instance *inst, const char *queue, const char *kind)
{
    (void)inst;
    acdm_engine *e = engine;
    acdm_queue *q = queue ? acdm_model_queue(e->model, queue) : NULL;
    if (!q) return NULL;
    int k = kind ? acdm_kind_parse(kind) : ACDM_KIND_CHAT;
    if (k < 0) k = ACDM_KIND_CHAT;
    int64_t now = acdm_now_ms();
    const acdm_schedule_def *sd = q->def->schedule
        ? acdm_config_schedule(acdm_model_config(e->model), q->def->schedule) : NULL;
    bool open = acdm_queue_is_open(q);
    const char *by = open ? NULL : q->def->emergency ? "emergency" : q->def->closed ? "supervisor" : "schedule";
    int logged_in = 0, available = 0;
    for (uint32_t j = 0; j < q->n_members; j++) {
        acdm_shown_state st = acdm_agent_shown(q->members[j]->agent);
        if (!q->members[j]->joined || st == ACDM_SHOWN_LOGGED_OUT) continue;
        logged_in++;
        if (st == ACDM_SHOWN_READY) available++;
    }
    json_t *o = json_pack("{s:s, s:s, s:b, s:s?, s:s, s:{s:i, s:i}}", "queue", q->name,
                          "title", q->def->title ? q->def->title : q->name, "open", open,
                          "closed_by", by, "closed_text", acdm_queue_closed_text(q, (acdm_kind)k),
                          "agents", "logged_in", logged_in, "available", available);
    if (!o) return NULL;
    if (sd) {
        static const char *const days[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
        json_t *h = json_object();
        for (int d = 0; d < 7; d++) {
            json_t *a = json_array();
            for (int i = 0; i < sd->n_week[d]; i++) {
                char f[8], t[8];
                snprintf(f, sizeof f, "%02d:%02d", sd->week[d][i].from_min / 60 % 100, sd->week[d][i].from_min % 60);
                snprintf(t, sizeof t, "%02d:%02d", sd->week[d][i].to_min / 60 % 100, sd->week[d][i].to_min % 60);
                json_array_append_new(a, json_pack("[s,s]", f, t));
            }
            json_object_set_new(h, days[d], a);
        }
        json_object_set_new(o, "hours", h);
        time_t tt = (time_t)(now / 1000);
        struct tm tm;
        localtime_r(&tt, &tm);
        char today[16];
        snprintf(today, sizeof today, "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100);
        bool holiday = false;
        for (size_t i = 0; i < sd->n_holidays; i++) holiday |= !strcmp(sd->holidays[i], today);
        json_object_set_new(o, "holiday", json_boolean(holiday));
        if (!open && !strcmp(by, "schedule")) {
            int64_t t = now;
            for (int i = 0; i < 64 && t < now + 14LL * 86400000; i++) {
                t = acdm_schedule_next_change(sd, t);
                if (acdm_schedule_open_at(sd, t)) { json_object_set_new(o, "next_open_ms", json_integer(t)); break; }
            }
        }
    } else {
        json_object_set_new(o, "hours", json_null());
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* host->feedback: the customer's rating of a bericht (the satisfaction question after a chat),
 * once per bericht: on its payload ("csat") and as a "csat" event the reports count. */
static int env_feedback(void *engine, acdm_instance *inst, const char *bericht_id, const char *detail_json,
                        char *err, size_t errlen)
{
    acdm_engine *e = engine;
    const char *iname = acdm_instance_name_of(inst);
    json_t *d = json_loads(detail_json, 0, NULL);
    int rc = 0;
    if (!json_is_object(d)) { snprintf(err, errlen, "detail_json: expected a JSON object"); rc = ACDM_EINVAL; goto out; }
    const char *key;
    json_t *v;
    json_object_foreach(d, key, v) {
        if (strcmp(key, "score") && strcmp(key, "helped")) {
            snprintf(err, errlen, "%.60s: unknown field (known: score, helped)", key);
            rc = ACDM_EINVAL;
            goto out;
        }
    }
    json_t *score = json_object_get(d, "score"), *helped = json_object_get(d, "helped");
    if (score && (!json_is_integer(score) || json_integer_value(score) < 1 || json_integer_value(score) > 5)) {
        snprintf(err, errlen, "score: expected an integer from 1 to 5");
        rc = ACDM_EINVAL;
        goto out;
    }
    if (helped && !json_is_boolean(helped)) { snprintf(err, errlen, "helped: expected true or false"); rc = ACDM_EINVAL; goto out; }
    if (!score && !helped) { snprintf(err, errlen, "score or helped: at least one is required"); rc = ACDM_EINVAL; goto out; }
    /* the bericht as stored (it has usually ended and left the model) */
    char *bj = NULL;
    if (acdm_store_get_bericht_json(e->store, bericht_id, &bj) < 0 || !bj) {
        snprintf(err, errlen, "bericht_id: no bericht %.40s", bericht_id);
        rc = ACDM_ENOENT;
        goto out;
    }
    json_t *b = json_loads(bj, 0, NULL);
    free(bj);
    const char *ch = json_string_value(json_object_get(b, "channel"));
    if (!ch || strcmp(ch, iname)) {
        json_decref(b);
        snprintf(err, errlen, "bericht_id: no bericht %.40s of this instance", bericht_id);
        rc = ACDM_ENOENT;
        goto out;
    }
    bool rated = json_object_get(json_object_get(b, "payload"), "csat") != NULL;
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(b, "events"), i, ev)
        rated |= json_string_value(json_object_get(ev, "type")) && !strcmp(json_string_value(json_object_get(ev, "type")), "csat");
    const acdm_bericht *live = acdm_model_bericht(e->model, bericht_id);
    if (rated) {
        snprintf(err, errlen, "bericht %.40s has been rated already", bericht_id);
        rc = ACDM_EEXIST;
    } else {
        int64_t now = acdm_now_ms();
        const char *queue = live ? live->queue->name : json_string_value(json_object_get(b, "queue"));
        const char *agent = live && live->agent ? live->agent->id : json_string_value(json_object_get(b, "agent"));
        json_t *rec = json_deep_copy(d);
        char *detail = json_dumps(rec, JSON_COMPACT);
        json_object_set_new(rec, "ts", json_integer(now));
        json_t *patch = json_pack("{s:o}", "csat", rec);
        char *ptext = json_dumps(patch, JSON_COMPACT);
        json_decref(patch);
        acdm_store_amend_bericht(e->store, bericht_id, -1, NULL, ptext, now);
        acdm_event_row row = {.ts_ms = now, .type = "csat", .bericht = bericht_id, .queue = queue,
                              .agent = agent, .channel = iname,
                              .kind = json_string_value(json_object_get(b, "kind")), .detail_json = detail};
        acdm_store_append_event(e->store, &row);
        free(ptext);
        free(detail);
    }
    json_decref(b);
out:
    json_decref(d);
    return rc;
}

static int env_attachment_put(void *engine, acdm_instance *inst, const char *bericht_id,
                              const char *filename, const char *content_type, const void *data,
                              size_t len, char id_out[64])
{
    acdm_engine *e = engine;
    acdm_bericht *b = acdm_model_bericht(e->model, bericht_id);
    const char *iname = acdm_instance_name_of(inst);
    if (!b || strcmp(b->channel, iname)) return ACDM_ENOENT;
    int64_t now = acdm_now_ms();
    char id[37];
    acdm_uuidv7(id, now);
    int rc = acdm_store_attachment_put(e->store, id, b->id, iname, filename, content_type, data, len, now);
    if (!rc) snprintf(id_out, 64, "%s", id);
    return rc;
}

static int env_attachment_store(void *engine, acdm_instance *inst, const acdm_attachment_in *a,
                                int fd, char id_out[64])
{
    acdm_engine *e = engine;
    acdm_bericht *b = acdm_model_bericht(e->model, a->bericht_id);
    const char *iname = acdm_instance_name_of(inst);
    if (!b || strcmp(b->channel, iname)) {
        if (fd >= 0) close(fd);
        return ACDM_ENOENT;
    }
    int64_t now = acdm_now_ms();
    char id[37];
    acdm_uuidv7(id, now);
    acdm_attachment_new row = {.id = id, .bericht = b->id, .channel = iname,
                               .filename = a->filename,
                               .content_type = a->content_type ? a->content_type : "application/octet-stream",
                               .content_id = a->content_id && *a->content_id ? a->content_id : NULL,
                               .data = a->data, .len = a->len, .fd = fd, .ts_ms = now};
    int rc = acdm_store_attachment_add(e->store, &row);   /* closes fd */
    if (!rc) snprintf(id_out, 64, "%s", id);
    return rc;
}

/* An instance may read the attachments of its own berichten, and those an agent's reply to
 * one of its berichten carried (acdm_engine_agent_message records them). */
static int env_attachment_read(void *engine, acdm_instance *inst, const char *id,
                               acdm_attachment_meta *meta, int *fd)
{
    acdm_engine *e = engine;
    const char *iname = acdm_instance_name_of(inst);
    acdm_attachment at;
    int rc = acdm_store_attachment_meta(e->store, id, &at);
    if (rc) return rc;
    if (strcmp(at.channel, iname)) {
        char key[200];
        snprintf(key, sizeof key, "%s\x1f%s", iname, id);
        if (!acdm_hmap_get(&e->att_refs, key) && acdm_store_attachment_ref_has(e->store, id, iname) != 1)
            return ACDM_EPERM;
    }
    rc = acdm_store_attachment_open(e->store, id, &at, fd);
    if (rc) return rc;
    snprintf(meta->bericht_id, sizeof meta->bericht_id, "%s", at.bericht);
    snprintf(meta->filename, sizeof meta->filename, "%s", at.filename);
    snprintf(meta->content_type, sizeof meta->content_type, "%s", at.content_type);
    snprintf(meta->content_id, sizeof meta->content_id, "%s", at.content_id);
    meta->size = at.len;
    return 0;
}

/* Lets instance `channel` read attachment id (it goes out with an agent's reply). */
static void grant_attachment(acdm_engine *e, const char *channel, const char *id)
{
    size_t n = strlen(channel) + 1 + strlen(id) + 1;
    char *key = malloc(n);
    if (!key) return;
    snprintf(key, n, "%s\x1f%s", channel, id);
    if (acdm_hmap_insert(&e->att_refs, key, key)) { free(key); return; }
    acdm_store_attachment_ref(e->store, id, channel);
}

static const char *peer_text(void *ctx) { return ctx; }

static int env_check_token(void *engine, acdm_instance *inst, const char *token, const char *peer)
{
    acdm_principal who;
    int retry = 0;
    /* during a plugin request: the same per-address limiter as the core's routes */
    int rc = peer ? acdm_engine_auth_peer(engine, token, peer_text, (void *)peer, &who, &retry)
                  : acdm_engine_auth(engine, token, &who);
    if (rc == ACDM_EFULL) return ACDM_EFULL;
    if (rc) return ACDM_ENOENT;
    if (!strcmp(who.role, "admin")) return 0;
    if (!strncmp(who.role, "channel:", 8) && !strcmp(who.role + 8, acdm_instance_name_of(inst))) return 0;
    return ACDM_EPERM;
}

static bool env_peer_blocked_(acdm_engine *e, const char *peer, int *retry_after_s);

bool acdm_engine_peer_blocked(acdm_engine *e, const char *peer, int *retry_after_s)
{
    return env_peer_blocked_(e, peer, retry_after_s);
}

static bool env_peer_blocked(void *engine, const char *peer, int *retry_after_s)
{
    return env_peer_blocked_(engine, peer, retry_after_s);
}

static bool env_peer_blocked_(acdm_engine *e, const char *peer, int *retry_after_s)
{
    if (!peer || !*peer || !e->auth || !acdm_auth_watching(e->auth)) return false;
    return acdm_auth_blocked(e->auth, peer, acdm_now_ms(), retry_after_s);
}

static void env_peer_failed(void *engine, const char *peer)
{
    acdm_engine *e = engine;
    if (!peer || !*peer) return;
    if (!e->auth && !(e->auth = acdm_auth_create(&e->loop))) return;
    acdm_auth_failed(e->auth, peer, acdm_now_ms());
}

/* ------------------------------------------------------------------ agent side */

/* Whether agent a may hand attachment `at` on: it belongs to a bericht the agent has (or last
 * had), as for GET /api/v1/attachments/{id}. */
static bool agent_may_read(acdm_engine *e, acdm_agent *a, const acdm_attachment *at)
{
    acdm_bericht *ab = acdm_model_bericht(e->model, at->bericht);
    if (ab && acdm_agent_work(a, ab)) return true;
    json_t *j = acdm_engine_bericht_json(e, at->bericht);
    const char *ag = json_string_value(json_object_get(j, "agent"));
    bool mine = ag && !strcmp(ag, a->id);
    json_decref(j);
    return mine;
}

/* The agent's message payload: an object of at most ACDM_REPLY_PAYLOAD_MAX bytes; the keys
 * the bundled channels read have their types; every attachment exists and is the agent's to
 * send. 0, or ACDM_EINVAL / ACDM_ENOENT / ACDM_EPERM with a sentence naming the field. */
static int check_reply_payload(acdm_engine *e, acdm_agent *a, json_t *pl, char *err, size_t errlen)
{
    if (!json_is_object(pl)) { snprintf(err, errlen, "payload: must be a JSON object"); return ACDM_EINVAL; }
    char *dump = json_dumps(pl, JSON_COMPACT);
    size_t n = dump ? strlen(dump) : 0;
    free(dump);
    if (!n || n > ACDM_REPLY_PAYLOAD_MAX) {
        snprintf(err, errlen, "payload: larger than %u bytes", ACDM_REPLY_PAYLOAD_MAX);
        return ACDM_EINVAL;
    }
    json_t *v;
    if ((v = json_object_get(pl, "subject")) && !json_is_string(v)) { snprintf(err, errlen, "payload.subject: must be a string"); return ACDM_EINVAL; }
    if ((v = json_object_get(pl, "quote")) && !json_is_boolean(v)) { snprintf(err, errlen, "payload.quote: must be true or false"); return ACDM_EINVAL; }
    if ((v = json_object_get(pl, "template")) && !json_is_object(v)) { snprintf(err, errlen, "payload.template: must be an object"); return ACDM_EINVAL; }
    if ((v = json_object_get(pl, "cc"))) {
        if (!json_is_array(v)) { snprintf(err, errlen, "payload.cc: must be an array of addresses"); return ACDM_EINVAL; }
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_string(json_array_get(v, i)) || !*json_string_value(json_array_get(v, i))) {
                snprintf(err, errlen, "payload.cc[%zu]: must be an address (a non-empty string)", i);
                return ACDM_EINVAL;
            }
    }
    json_t *atts = json_object_get(pl, "attachments");
    if (atts && !json_is_array(atts)) { snprintf(err, errlen, "payload.attachments: must be an array of {\"id\":..}"); return ACDM_EINVAL; }
    for (size_t i = 0; i < json_array_size(atts); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(atts, i), "id"));
        if (!id || !*id) { snprintf(err, errlen, "payload.attachments[%zu].id: required", i); return ACDM_EINVAL; }
        acdm_attachment at;
        int rc = acdm_store_attachment_meta(e->store, id, &at);
        if (rc == ACDM_ENOENT) { snprintf(err, errlen, "payload.attachments[%zu]: no attachment %s", i, id); return rc; }
        if (rc) { snprintf(err, errlen, "payload.attachments[%zu]: cannot read attachment %s", i, id); return rc; }
        if (!agent_may_read(e, a, &at)) {
            snprintf(err, errlen, "payload.attachments[%zu]: attachment %s belongs to a bericht that is not yours", i, id);
            return ACDM_EPERM;
        }
    }
    return 0;
}

int acdm_engine_agent_message(acdm_engine *e, acdm_agent *a, acdm_bericht *b, const char *text,
                              json_t *payload, char *err, size_t errlen, char message_id[40])
{
    if (message_id) message_id[0] = '\0';
    if (err && errlen) err[0] = '\0';
    char dummy[8];
    if (!err || !errlen) { err = dummy; errlen = sizeof dummy; }
    acdm_work *w = acdm_agent_work(a, b);
    if (!w || w->state == ACDM_W_OFFERED) return ACDM_EPERM;
    if (!text && !payload) { snprintf(err, errlen, "text: required"); return ACDM_EINVAL; }
    if (payload) {
        int rc = check_reply_payload(e, a, payload, err, errlen);
        if (rc) return rc;
    }
    int64_t now = acdm_now_ms();
    char mid[37];
    acdm_uuidv7(mid, now);
    char *pj = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    acdm_store_add_message_id(e->store, mid, b->id, now, "out", a->id, text, pj);
    if (message_id) snprintf(message_id, 40, "%s", mid);
    if (!strcmp(b->channel, "api")) { free(pj); return 0; }
    /* the channel may read the files it sends (attachment_read) */
    json_t *atts = json_object_get(payload, "attachments");
    for (size_t i = 0; i < json_array_size(atts); i++)
        grant_attachment(e, b->channel, json_string_value(json_object_get(json_array_get(atts, i), "id")));
    acdm_reply r = {.struct_size = sizeof r, .bericht_id = b->id, .conversation = b->conversation,
                    .to = b->from, .agent = a->id, .text = text ? text : "", .payload_json = pj,
                    .message_id = mid};
    int rc = acdm_plugins_deliver(e->plugins, b->channel, &r);
    free(pj);
    return rc;
}

void acdm_engine_topics(acdm_engine *e, acdm_agent *a, acdm_bericht *b, json_t *topics)
{
    json_t *d = json_pack("{s:O}", "topics", topics);
    char *dj = json_dumps(d, JSON_COMPACT);
    acdm_event_row ev = {.ts_ms = acdm_now_ms(), .type = "topics", .bericht = b->id,
                         .queue = b->queue->name, .agent = a->id, .channel = b->channel,
                         .kind = acdm_kind_name(b->kind), .detail_json = dj};
    acdm_store_append_event(e->store, &ev);
    free(dj);
    json_decref(d);
}

/* ------------------------------------------------------------------ views */

json_t *acdm_engine_agent_json(acdm_engine *e, acdm_agent *a)
{
    (void)e;
    json_t *queues = json_array();
    for (uint32_t i = 0; i < a->n_members; i++)
        json_array_append_new(queues, json_pack("{s:s, s:b}", "queue", a->members[i]->queue->name,
                                                "joined", a->members[i]->joined));
    json_t *work = json_array();
    static const char *const ws[] = {"offered", "active", "wrapup"};
    for (uint32_t i = 0; i < a->n_work; i++) {
        const acdm_bericht *wb = a->work[i].b;
        json_t *item = json_pack("{s:s, s:s, s:s}", "bericht", wb->id, "state",
                                 ws[a->work[i].state], "kind", acdm_kind_name(wb->kind));
        if (wb->kind == ACDM_KIND_VOICE || wb->kind == ACDM_KIND_CALLBACK)
            json_object_set_new(item, "held", json_boolean(wb->held));   /* calls only */
        if (a->work[i].device) json_object_set_new(item, "device", json_true());   /* rung on the device */
        if (wb->outbound) json_object_set_new(item, "direction", json_string("out"));
        /* what a supervisor sees of it (also in the stats push): queue, channel, customer, and
         * since when the agent has it in this state */
        int64_t since = a->work[i].state == ACDM_W_OFFERED ? wb->offered_ms
                      : a->work[i].state == ACDM_W_WRAPUP ? wb->wrapup_ms : wb->accepted_ms;
        json_object_set_new(item, "queue", json_string(wb->queue->name));
        json_object_set_new(item, "channel", json_string(wb->channel));
        json_object_set_new(item, "from", wb->from ? json_string(wb->from) : json_null());
        json_object_set_new(item, "since_ms", since > 0 ? json_integer(since) : json_null());
        json_array_append_new(work, item);
    }
    /* the kinds the agent is not offered because their device cannot be reached, and why */
    json_t *unreach = json_object();
    for (int k = 0; k < ACDM_KIND__COUNT; k++)
        if (!acdm_agent_reachable(a, (acdm_kind)k))
            json_object_set_new(unreach, acdm_kind_name((acdm_kind)k), json_string(a->unreach_why[k]));
    /* since: null while the agent's state has not changed since acdmd started (unknown) */
    json_t *ep = a->def->endpoints ? json_deep_copy(a->def->endpoints) : json_object();
    return json_pack("{s:s, s:s?, s:s, s:s?, s:o, s:o, s:o, s:I, s:o, s:o}", "id", a->id, "name", a->def->name,
                     "state", acdm_agent_state_name(a->state), "reason", a->reason[0] ? a->reason : NULL,
                     "since", a->state_since > 0 ? json_integer(a->state_since) : json_null(),
                     "queues", queues, "work", work, "handled", (json_int_t)a->handled,
                     "endpoints", ep, "unreachable", unreach);
}

json_t *acdm_engine_queues_json(acdm_engine *e)
{
    json_t *arr = json_array();
    int64_t now = acdm_now_ms();
    for (size_t i = 0; i < acdm_model_n_queues(e->model); i++) {
        acdm_queue *q = acdm_model_queue_at(e->model, i);
        int logged_in = 0, ready = 0;
        for (uint32_t j = 0; j < q->n_members; j++) {
            acdm_agent *a = q->members[j]->agent;
            if (!q->members[j]->joined || a->state == ACDM_AGENT_LOGGED_OUT) continue;
            logged_in++;
            if (a->state == ACDM_AGENT_READY) ready++;
        }
        int64_t longest = 0;
        json_t *per_kind = json_object();
        for (int k = 0; k < ACDM_KIND__COUNT; k++) {
            if (!q->waiting[k].n) continue;
            json_object_set_new(per_kind, acdm_kind_name(k), json_integer(q->waiting[k].n));
            for (uint32_t x = 0; x < q->waiting[k].n; x++) {
                const acdm_bericht *b = q->waiting[k].items[x];
                if (now - b->queued_ms > longest) longest = now - b->queued_ms;
            }
        }
        json_array_append_new(arr, json_pack("{s:s, s:s?, s:s, s:b, s:i, s:o, s:I, s:i, s:i, s:i, s:i}",
            "name", q->name, "title", q->def->title, "strategy", acdm_strategy_name(q->strategy),
            "open", q->open, "waiting", (int)(q->n_waiting + acdm_queue_n_held(e->model, q)),
            "waiting_by_kind", per_kind,
            "longest_wait_ms", (json_int_t)longest, "agents_logged_in", logged_in,
            "agents_ready", ready, "members", (int)q->n_members, "priority", q->def->priority));
    }
    return arr;
}

json_t *acdm_engine_bericht_json(acdm_engine *e, const char *id)
{
    char *stored = NULL;
    json_t *j = NULL;
    if (!acdm_store_get_bericht_json(e->store, id, &stored)) {
        j = json_loads(stored, 0, NULL);
        free(stored);
    }
    acdm_bericht *b = acdm_model_bericht(e->model, id);
    if (b) {
        /* live state beats the stored row, which may lag by a group commit */
        if (!j) {
            /* not committed yet (an outbound contact just started, a call routed while its commit runs): the model's facts, in the
             * document's shape; payload, idem_key, events and messages follow with the row */
            j = json_object();
            json_object_set_new(j, "channel", json_string(b->channel ? b->channel : ""));
            json_object_set_new(j, "kind", json_string(acdm_kind_name(b->kind)));
            json_object_set_new(j, "from", json_string(b->from ? b->from : ""));
            json_object_set_new(j, "customer_id", json_null());
            json_object_set_new(j, "conversation", b->conversation ? json_string(b->conversation) : json_null());
            json_object_set_new(j, "skills", json_null());
            json_object_set_new(j, "idem_key", json_null());
            json_object_set_new(j, "payload", json_null());
            json_object_set_new(j, "created_ms", json_integer(b->created_ms));
            json_object_set_new(j, "queued_ms", json_integer(b->queued_ms));
            json_object_set_new(j, "updated_ms", json_integer(acdm_now_ms()));
            json_object_set_new(j, "events", json_array());
            json_object_set_new(j, "messages", json_array());
        }
        json_object_set_new(j, "id", json_string(b->id));
        json_object_set_new(j, "state", json_string(acdm_bstate_name(b->state)));
        json_object_set_new(j, "queue", json_string(b->queue->name));
        json_object_set_new(j, "agent", b->agent ? json_string(b->agent->id) : json_null());
        json_object_set_new(j, "priority", json_integer(b->priority));
        json_object_set_new(j, "direction", json_string(b->outbound ? "out" : "in"));
        json_object_set_new(j, "position", json_integer(acdm_queue_position(b)));
    }
    return j;
}

/* ------------------------------------------------------------------ auth */

int acdm_engine_auth(acdm_engine *e, const char *token, acdm_principal *who)
{
    if (token && acdm_jwt_shaped(token)) return acdm_engine_auth_jwt(e, token, who);
    if (!token || !*token || strlen(token) > 128) return ACDM_ENOENT;
    acdm_principal *p = acdm_hmap_get(&e->token_cache, token);
    if (p) { *who = *p; return 0; }
    acdm_principal np;
    memset(&np, 0, sizeof np);
    if (acdm_store_token_check(e->store, token, np.role, sizeof np.role, np.name, sizeof np.name))
        return ACDM_ENOENT;
    if (e->token_cache.n < 100000) {
        /* the key lives with the value */
        size_t tl = strlen(token);
        char *blob = malloc(sizeof(acdm_principal) + tl + 1);
        if (blob) {
            memcpy(blob, &np, sizeof np);
            memcpy(blob + sizeof np, token, tl + 1);
            acdm_hmap_put(&e->token_cache, blob + sizeof np, blob);
        }
    }
    *who = np;
    return 0;
}

/* Empties the cache of checked API tokens (each value holds its key); it stays usable. */
static void token_cache_clear(acdm_engine *e)
{
    const char *k;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(&e->token_cache, &pos, &k, &v);) free(v);
    acdm_hmap_free(&e->token_cache);   /* leaves an empty map */
}

int acdm_engine_revoke_agent_tokens(acdm_engine *e, const char *agent_id, int *n_revoked)
{
    int rc = acdm_store_token_revoke_agent(e->store, agent_id, n_revoked);
    /* and out of the cache, whatever the store said: a cached token is checked nowhere else.
     * The whole cache goes (an agent's removal is rare; the others are looked up again once). */
    token_cache_clear(e);
    return rc;
}

/* ------------------------------------------------------------------ config, reload */

/* Applies runtime overrides (queue open/close by supervisors) to a freshly loaded config. */
static void apply_overrides(acdm_engine *e, acdm_config *cfg)
{
    const char *name;
    json_t *v;
    json_object_foreach(e->overrides, name, v) {
        for (size_t i = 0; i < cfg->n_queues; i++)
            if (!strcmp(cfg->queues[i].name, name)) {
                json_t *c = json_object_get(v, "closed");
                if (json_is_boolean(c)) cfg->queues[i].closed = json_is_true(c);
                /* who closed or opened it by hand, and when (the dashboard says so) */
                const char *by = json_string_value(json_object_get(v, "by"));
                snprintf(cfg->queues[i].closed_by, sizeof cfg->queues[i].closed_by, "%s", by ? by : "");
                json_t *at = json_object_get(v, "at");
                cfg->queues[i].closed_at_ms = json_is_integer(at) ? (int64_t)json_integer_value(at) : 0;
            }
    }
}

static int load_config(acdm_engine *e, acdm_config **out, char *err, size_t errlen)
{
    int rc = acdm_config_load(e->config_path, out, err, errlen);
    if (rc) return rc;
    apply_overrides(e, *out);
    return 0;
}

static int apply_config(acdm_engine *e, acdm_config *cfg, const char *why, char *err, size_t errlen)
{
    const acdm_config *cur = acdm_model_config(e->model);
    if (cfg->listen_port != cur->listen_port || strcmp(cfg->listen_host, cur->listen_host) ||
        strcmp(cfg->data_dir, cur->data_dir))
        acdm_log(ACDM_LOG_WARN, WHO, "listen and data_dir changes take effect at the next restart");
    if (e->plugins && acdm_plugins_check(e->plugins, cfg, err, errlen)) return ACDM_EINVAL;
    struct acdm_oidc_state *oidc = NULL;
    if (acdm_engine_oidc_prepare(e, cfg, &oidc, err, errlen)) return ACDM_EINVAL;
    int64_t now = acdm_now_ms();
    int rc = acdm_model_configure(e->model, cfg, now, err, errlen);
    if (rc) { acdm_engine_oidc_discard(oidc); return rc; }
    acdm_engine_oidc_commit(e, oidc);
    EACH_MODULE(e, reloaded);   /* the api: removed agents' sockets closed, not left open and logged out */
    if (e->http) {
        /* each running listener serves what the new config's listener of that place lists */
        const acdm_config *nc = acdm_model_config(e->model);
        for (size_t i = 0; i < acdm_http_n_listeners(e->http); i++) {
            const acdm_listen_def *d = i < nc->n_listens ? &nc->listens[i] : NULL;
            if (acdm_http_listener_set_routes(e->http, i, d ? (const char *const *)d->routes : NULL,
                                              d ? d->n_routes : 0))
                acdm_log(ACDM_LOG_ERR, WHO, "reload: listener %zu keeps its routes (out of memory)", i);
        }
    }
    if (e->plugins) {
        acdm_plugins_configure(e->plugins, acdm_model_config(e->model));
        json_t *warn = acdm_plugins_warnings(e->plugins, acdm_model_config(e->model));
        for (size_t k = 0; k < json_array_size(warn); k++)
            acdm_log(ACDM_LOG_WARN, WHO, "reload: %s", json_string_value(json_array_get(warn, k)));
        json_decref(warn);
    }
    json_t *d = json_pack("{s:s}", "reason", why);
    char *dj = json_dumps(d, JSON_COMPACT);
    acdm_event_row ev = {.ts_ms = now, .type = "config_reload", .detail_json = dj};
    acdm_store_append_event(e->store, &ev);
    free(dj);
    json_decref(d);
    rearm(e);
    return 0;
}

int acdm_engine_reload(acdm_engine *e, char *err, size_t errlen)
{
    acdm_config *cfg;
    int rc = load_config(e, &cfg, err, errlen);
    if (!rc) {
        rc = apply_config(e, cfg, "reload", err, errlen);
        if (rc) acdm_config_free(cfg);
    }
    if (rc) acdm_log(ACDM_LOG_ERR, WHO, "reload rejected, the running config stays:\n%s", err);
    else acdm_log(ACDM_LOG_NOTICE, WHO, "config reloaded from %s", e->config_path);
    return rc;
}

int acdm_engine_tls_reload(acdm_engine *e, char *err, size_t errlen)
{
    int renewed = 0;
    return acdm_http_tls_reload(e->http, &renewed, err, errlen);
}

int acdm_engine_queue_set_closed(acdm_engine *e, const char *queue, bool closed, char *err, size_t errlen)
{
    return acdm_engine_queue_set_closed_by(e, queue, closed, NULL, err, errlen);
}

int acdm_engine_queue_set_closed_by(acdm_engine *e, const char *queue, bool closed, const char *by,
                                    char *err, size_t errlen)
{
    if (!acdm_model_queue(e->model, queue)) {
        snprintf(err, errlen, "no queue named \"%s\"", queue);
        return ACDM_ENOENT;
    }
    json_t *old = json_deep_copy(e->overrides);
    json_t *ov = json_pack("{s:b, s:I}", "closed", closed, "at", (json_int_t)acdm_now_ms());
    if (by && *by) json_object_set_new(ov, "by", json_string(by));
    json_object_set_new(e->overrides, queue, ov);
    int rc = acdm_engine_reload(e, err, errlen);
    if (rc) {
        json_decref(e->overrides);
        e->overrides = old;
        return rc;
    }
    json_decref(old);
    char *s = json_dumps(e->overrides, JSON_COMPACT);
    acdm_store_kv_set(e->store, "core", "queue_overrides", s, strlen(s));
    free(s);
    return 0;
}

/* ------------------------------------------------------------------ life cycle */

static void on_signal(uv_signal_t *s, int signum)
{
    acdm_engine *e = s->data;
    if (signum == SIGHUP) {
        char err[8192], st[96];
        /* systemctl reload waits between RELOADING=1 and the next READY=1 (a refused config
         * keeps the old one running, so it is READY again either way; the log says why) */
        snprintf(st, sizeof st, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)acdm_notify_monotonic_usec());
        acdm_notify(st);
        int rc = acdm_engine_reload(e, err, sizeof err);
        if (!rc) acdm_engine_audit(e, NULL, "reload", "SIGHUP", NULL);
        acdm_engine_tls_reload(e, err, sizeof err);   /* a renewed certificate (certbot's deploy hook) */
        acdm_notify(rc ? "READY=1\nSTATUS=running; the last reload was refused (see the log)" : "READY=1\nSTATUS=running");
        return;
    }
    acdm_log(ACDM_LOG_NOTICE, WHO, "signal %d: shutting down", signum);
    acdm_engine_stop(e);
}

static void restore_row(void *user, const acdm_bericht_row *row)
{
    acdm_engine *e = user;
    if (row->direction && !strcmp(row->direction, "out")) {
        /* an outbound contact was its agent's, and they are logged out by the restart: it ends */
        int64_t now = acdm_now_ms();
        acdm_store_update_bericht(e->store, row->id, ACDM_B_DONE, row->queue, row->agent, row->queued_ms, now);
        acdm_event_row ev = {.ts_ms = now, .type = "done", .bericht = row->id, .queue = row->queue,
                             .agent = row->agent, .channel = row->channel, .kind = acdm_kind_name(row->kind),
                             .detail_json = "{\"reason\":\"outbound\"}"};
        acdm_store_append_event(e->store, &ev);
        return;
    }
    acdm_skill *skills = NULL;
    size_t n = 0;
    if (row->skills_json) {
        json_t *sj = json_loads(row->skills_json, 0, NULL);
        char err[128];
        parse_skills(sj, &skills, &n, err, sizeof err);
        json_decref(sj);
    }
    acdm_new_bericht nb = {.id = row->id, .queue = row->queue, .kind = row->kind,
                           .priority = row->priority, .channel = row->channel, .from = row->from,
                           .conversation = row->conversation, .skills = skills, .n_skills = n,
                           .created_ms = row->created_ms, .queued_ms = row->queued_ms,
                           .answered = row->state == ACDM_B_ACTIVE || row->state == ACDM_B_WRAPUP};
    int64_t now = acdm_now_ms();
    acdm_bericht *b = NULL;
    if (row->payload_json && strstr(row->payload_json, "\"subject\"")) {
        json_t *pj = json_loads(row->payload_json, 0, NULL);
        subject_set(e, row->id, json_string_value(json_object_get(pj, "subject")));
        json_decref(pj);
    }
    if (acdm_model_restore(e->model, &nb, now, &b) == 0 && row->state != ACDM_B_QUEUED) {
        /* an offer or a conversation in progress at the crash goes back to the queue; one that
         * was active with (or in wrap-up of) an agent is kept for that agent for agent_grace_s,
         * as a dropped websocket is: offered to them first when they are back, to nobody else
         * before the grace ends */
        int grace = acdm_model_config(e->model)->agent_grace_s;
        bool keep = (row->state == ACDM_B_ACTIVE || row->state == ACDM_B_WRAPUP) && row->agent &&
                    grace > 0 && acdm_model_reserve(e->model, b, row->agent, now + (int64_t)grace * 1000) == 0;
        char detail[160];
        if (keep) snprintf(detail, sizeof detail, "{\"reason\":\"restart\",\"reserved_for\":\"%.64s\"}", row->agent);
        else snprintf(detail, sizeof detail, "{\"reason\":\"restart\"}");
        acdm_store_update_bericht(e->store, b->id, ACDM_B_QUEUED, b->queue->name, NULL, b->queued_ms, now);
        acdm_event_row ev = {.ts_ms = now, .type = "queued", .bericht = b->id, .queue = b->queue->name,
                             .channel = b->channel, .kind = acdm_kind_name(b->kind),
                             .detail_json = detail};
        acdm_store_append_event(e->store, &ev);
    }
    for (size_t i = 0; i < n; i++) free(skills[i].name);
    free(skills);
}

static int admin_token_file(acdm_engine *e, const char *data_dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/admin.token", data_dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char tok[64] = "";
        if (fgets(tok, sizeof tok, f)) tok[strcspn(tok, "\r\n")] = 0;
        fclose(f);
        acdm_principal who;
        if (!acdm_engine_auth(e, tok, &who) && !strcmp(who.role, "admin")) {
            snprintf(e->admin_token, sizeof e->admin_token, "%s", tok);
            return 0;
        }
    }
    if (acdm_store_token_create(e->store, "admin", "local", e->admin_token)) return ACDM_EIO;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return ACDM_EIO;
    dprintf(fd, "%s\n", e->admin_token);
    close(fd);
    return 0;
}

static void store_wake_cb(void *arg) { uv_async_send(arg); }

#define STORE_MARKER "store.marker"   /* in data_dir: this folder holds a store (acdm.db) */

/* Before the store opens: a data folder that held a store (its marker file) whose acdm.db is
 * now missing or empty is refused unless the operator says --init (a lost or truncated database
 * would otherwise start silently as a new empty one). With --init an empty acdm.db and its
 * WAL files are removed first. */
static int store_precheck(const char *dir, bool init, char *err, size_t errlen)
{
    char db[4096], marker[4096];
    snprintf(db, sizeof db, "%s/acdm.db", dir);
    snprintf(marker, sizeof marker, "%s/%s", dir, STORE_MARKER);
    struct stat sb;
    bool have_db = stat(db, &sb) == 0, empty = have_db && sb.st_size == 0;
    bool had = access(marker, F_OK) == 0;
    if (have_db && !empty) return 0;
    if (had && !init) {
        snprintf(err, errlen, "store: %s is %s, but this data folder held a store (%s says so): "
                 "restore acdm.db from the backup (docs/operations.md, \"Backup and restore\"), or "
                 "start once with --init to begin with a new, empty store",
                 db, empty ? "empty (0 bytes)" : "missing", marker);
        return ACDM_EIO;
    }
    if (empty) {
        if (!init) {
            snprintf(err, errlen, "store: %s is empty (0 bytes): restore it from the backup, or "
                     "start with --init to begin with a new, empty store", db);
            return ACDM_EIO;
        }
        static const char *const sfx[] = {"", "-wal", "-shm"};
        for (size_t i = 0; i < 3; i++) {
            char p[4200];
            snprintf(p, sizeof p, "%s%s", db, sfx[i]);
            if (unlink(p) && errno != ENOENT) {
                snprintf(err, errlen, "store: --init: cannot remove %s: %s", p, strerror(errno));
                return ACDM_EIO;
            }
        }
    }
    if (init && (had || empty)) acdm_log(ACDM_LOG_WARN, WHO, "--init: starting with a new, empty store in %s", dir);
    return 0;
}

/* After the store opened: the marker says from now on that this folder holds a store. */
static int store_mark_dir(const char *dir, char *err, size_t errlen)
{
    char marker[4096];
    snprintf(marker, sizeof marker, "%s/%s", dir, STORE_MARKER);
    if (access(marker, F_OK) == 0) return 0;
    int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "store: cannot write %s: %s", marker, strerror(errno));
        return ACDM_EIO;
    }
    char ts[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    dprintf(fd, "acdm.db in this folder is acdmd's store (created %s); acdmd refuses to start "
            "without it unless --init is given. Do not remove.\n", ts);
    int rc = fsync(fd);
    close(fd);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { rc |= fsync(dfd); close(dfd); }
    if (rc) {
        snprintf(err, errlen, "store: cannot sync %s: %s", marker, strerror(errno));
        return ACDM_EIO;
    }
    return 0;
}

int acdm_engine_create(const acdm_engine_opts *opts, acdm_engine **out, char *err, size_t errlen)
{
    acdm_engine *e = calloc(1, sizeof *e);
    if (!e) return ACDM_ENOMEM;
    e->opts = *opts;
    e->config_path = strdup(opts->config_path);
    e->overrides = json_object();
    e->armed_due = INT64_MAX;
    acdm_hmap_init(&e->token_cache);
    acdm_hmap_init(&e->subjects);
    acdm_hmap_init(&e->qwait);
    acdm_hmap_init(&e->dfail);
    acdm_hmap_init(&e->att_refs);
    uv_loop_init(&e->loop);
    /* the model's timer exists before anything can call rearm (a plugin instance that fails to
     * start during start-up stops at once, and its devices_gone reroutes) */
    uv_timer_init(&e->loop, &e->model_timer);
    e->model_timer.data = e;
    uv_timer_init(&e->loop, &e->defer_timer);
    e->defer_timer.data = e;
    uv_timer_init(&e->loop, &e->watchdog_timer);
    e->watchdog_timer.data = e;
    *out = e;
    for (const acdm_engine_module *const *m = opts->modules; m && *m; m++) e->n_mods++;
    e->mods = e->n_mods ? calloc(e->n_mods, sizeof *e->mods) : NULL;
    if (e->n_mods && !e->mods) { e->n_mods = 0; return ACDM_ENOMEM; }
    for (size_t i = 0; i < e->n_mods; i++) e->mods[i].m = opts->modules[i];

    acdm_config *cfg;
    int rc = acdm_config_load(e->config_path, &cfg, err, errlen);
    if (rc) return rc;
    if (opts->data_dir) { free(cfg->data_dir); cfg->data_dir = strdup(opts->data_dir); }
    if (opts->listen) {
        const char *colon = strrchr(opts->listen, ':');
        if (!colon || atoi(colon + 1) < 0 || atoi(colon + 1) > 65535) {
            snprintf(err, errlen, "--listen: expected HOST:PORT, got \"%s\"", opts->listen);
            acdm_config_free(cfg);
            return ACDM_EINVAL;
        }
        free(cfg->listen_host);
        cfg->listen_host = strndup(opts->listen, (size_t)(colon - opts->listen));
        if (cfg->listen_host[0] == '[') { /* [::1]:8080 */
            size_t l = strlen(cfg->listen_host);
            memmove(cfg->listen_host, cfg->listen_host + 1, l);
            if (l >= 2 && cfg->listen_host[l - 2] == ']') cfg->listen_host[l - 2] = 0;
        }
        cfg->listen_port = atoi(colon + 1);
    }
    int lvl = acdm_log_level_parse(cfg->log_level);
    if (lvl >= 0) acdm_log_level = lvl;
    int fmt = acdm_log_format_parse(opts->log_format ? opts->log_format : cfg->log_format);
    if (fmt >= 0) acdm_log_json = fmt;
    if (acdm_set_timezone(cfg->timezone)) acdm_log(ACDM_LOG_WARN, WHO, "unknown timezone %s", cfg->timezone);

    if (mkdir_p(cfg->data_dir)) {
        snprintf(err, errlen, "data_dir: cannot create %s: %s", cfg->data_dir, strerror(errno));
        acdm_config_free(cfg);
        return ACDM_EIO;
    }
    uv_async_init(&e->loop, &e->store_wake, on_store_wake);
    e->store_wake.data = e;
    rc = store_precheck(cfg->data_dir, opts->init, err, errlen);
    if (!rc) rc = acdm_store_open(cfg->data_dir, cfg->group_commit_ms, store_wake_cb, &e->store_wake, &e->store, err, errlen);
    if (!rc) rc = store_mark_dir(cfg->data_dir, err, errlen);
    if (rc) { acdm_config_free(cfg); return rc; }

    char *ov = NULL;
    size_t ovl;
    if (!acdm_store_kv_get(e->store, "core", "queue_overrides", &ov, &ovl)) {
        json_t *j = json_loads(ov, 0, NULL);
        if (json_is_object(j)) { json_decref(e->overrides); e->overrides = j; } else json_decref(j);
        free(ov);
    }
    apply_overrides(e, cfg);

    char *data_dir = strdup(cfg->data_dir), *host = strdup(cfg->listen_host), *ui = strdup(cfg->ui_dir),
         *pdir = strdup(cfg->plugin_dir);
    int port = cfg->listen_port;
    acdm_model_hooks hooks = {on_model_event, e};
    rc = acdm_model_create(cfg, &hooks, acdm_now_ms(), &e->model);
    if (rc) { snprintf(err, errlen, "config could not be applied: %s", acdm_strerror(rc)); goto fail; }
    struct acdm_oidc_state *oidc = NULL;
    rc = acdm_engine_oidc_prepare(e, acdm_model_config(e->model), &oidc, err, errlen);
    if (rc) goto fail;
    acdm_engine_oidc_commit(e, oidc);

    /* recovery: every bericht that was waiting or in progress waits again */
    int64_t t0 = acdm_now_ms();
    if (acdm_store_load_open(e->store, restore_row, e)) {
        size_t got = acdm_model_n_berichten(e->model);
        int64_t want = acdm_store_count_open(e->store);
        char what[160];
        if (want >= 0) snprintf(what, sizeof what, "%zu of the %lld waiting berichten the index lists were read", got, (long long)want);
        else snprintf(what, sizeof what, "%zu waiting berichten were read, the rest could not be", got);
        if (!opts->salvage) {
            snprintf(err, errlen, "store: the recovery read of waiting berichten failed (%s): %s/acdm.db "
                     "is damaged; %s. Restore it from the backup (docs/operations.md, \"Backup and restore\"), "
                     "or start with --salvage to run with what can be read", acdm_store_read_error(e->store),
                     data_dir, what);
            rc = ACDM_EIO;
            goto fail;
        }
        char rep[512];
        snprintf(rep, sizeof rep, "started with --salvage over a damaged store (%s): %s; %s",
                 acdm_store_read_error(e->store), what,
                 want >= 0 && (int64_t)got < want ? "the others were not restored" : "berichten after the damage were not restored");
        e->salvage = strdup(rep);
        acdm_log(ACDM_LOG_ERR, WHO, "%s", rep);
    }
    if (acdm_model_n_berichten(e->model))
        acdm_log(ACDM_LOG_NOTICE, WHO, "restored %zu waiting berichten in %lld ms",
                 acdm_model_n_berichten(e->model), (long long)(acdm_now_ms() - t0));

    if (admin_token_file(e, data_dir)) { snprintf(err, errlen, "cannot write %s/admin.token", data_dir); rc = ACDM_EIO; goto fail; }

    {
        /* the first listener is listen_host/port (--listen overrides its address, keeps its
         * TLS); the others as configured */
        const acdm_config *lc = acdm_model_config(e->model);
        acdm_http_listener ls[ACDM_HTTP_MAX_LISTENERS];
        size_t nl = lc->n_listens ? lc->n_listens : 1;
        if (nl > ACDM_HTTP_MAX_LISTENERS) {
            snprintf(err, errlen, "listen: at most %d listeners", ACDM_HTTP_MAX_LISTENERS);
            rc = ACDM_EINVAL;
            goto fail;
        }
        for (size_t i = 0; i < nl; i++) {
            const acdm_listen_def *d = lc->n_listens ? &lc->listens[i] : NULL;
            ls[i] = (acdm_http_listener){.host = i ? d->host : host, .port = i ? d->port : port,
                                         .cert_file = d ? d->cert_file : NULL, .key_file = d ? d->key_file : NULL,
                                         .routes = d ? (const char *const *)d->routes : NULL,
                                         .n_routes = d ? d->n_routes : 0};
        }
        rc = acdm_http_create_listeners(&e->loop, ls, nl, ui, &e->http, err, errlen);
        if (rc) goto fail;
    }
    EACH_MODULE(e, start);   /* acdmd's: the API's routes, live figures, the daily export */

    rc = acdm_outbound_create(&e->loop, &e->outbound);
    if (rc) { snprintf(err, errlen, "cannot create the outbound HTTP client: %s", acdm_strerror(rc)); goto fail; }
    acdm_plugin_env env = {.loop = &e->loop, .store = e->store, .http = e->http, .engine = e,
                           .outbound = e->outbound,
                           .submit = env_submit, .end = env_end, .delivery_report = env_delivery_report,
                           .typing = env_typing, .queue_position = env_queue_position,
                           .attachment_put = env_attachment_put, .check_token = env_check_token,
                           .end_ago = env_end_ago,
                           .peer_blocked = env_peer_blocked, .peer_failed = env_peer_failed, .attachment_store = env_attachment_store,
                           .attachment_read = env_attachment_read, .update = env_update,
                           .set_conversation = env_set_conversation,
                           .queue_info = env_queue_info, .feedback = env_feedback,
                           .device_result = env_device_result,
                           .device_reachable = env_device_reachable,
                           .originate_result = env_originate_result,
                           .devices_gone = env_devices_gone};
    if (!acdm_plugins_create(&env, pdir, &e->plugins)) {
        acdm_plugins_load_all(e->plugins);
        acdm_plugins_configure(e->plugins, acdm_model_config(e->model));
        acdm_plugins_watch(e->plugins);
    }

    uv_signal_init(&e->loop, &e->sig_hup);
    uv_signal_init(&e->loop, &e->sig_term);
    uv_signal_init(&e->loop, &e->sig_int);
    e->sig_hup.data = e->sig_term.data = e->sig_int.data = e;
    uv_signal_start(&e->sig_hup, on_signal, SIGHUP);
    uv_signal_start(&e->sig_term, on_signal, SIGTERM);
    uv_signal_start(&e->sig_int, on_signal, SIGINT);
    rearm(e);
    {
        const acdm_config *lc = acdm_model_config(e->model);
        for (size_t i = 0; i < acdm_http_n_listeners(e->http); i++) {
            const char *lh = i ? lc->listens[i].host : host;
            bool v6 = strchr(lh, ':') != NULL;
            acdm_log(ACDM_LOG_NOTICE, WHO, "acdmd %s listening on %s://%s%s%s:%d/ (data %s, plugins %s)",
                     ACDM_VERSION, acdm_http_listener_tls(e->http, i) ? "https" : "http", v6 ? "[" : "",
                     lh, v6 ? "]" : "", acdm_http_listener_port(e->http, i), data_dir, pdir);
        }
    }
    rc = 0;
fail:
    free(data_dir); free(host); free(ui); free(pdir);
    return rc;
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    acdm_notify("WATCHDOG=1");   /* from the loop: a stuck loop stops the pings and systemd restarts */
}

int acdm_engine_run(acdm_engine *e)
{
    /* the listeners are bound and the store open (acdm_engine_create): a connection made after
     * READY=1 waits in the backlog until this loop serves it */
    uint64_t wd = acdm_notify_watchdog_usec();
    if (wd) {
        uint64_t ms = wd / 2000 ? wd / 2000 : 1;
        uv_timer_start(&e->watchdog_timer, on_watchdog, ms, ms);
        uv_unref((uv_handle_t *)&e->watchdog_timer);
    }
    acdm_notify("READY=1\nSTATUS=running");
    return uv_run(&e->loop, UV_RUN_DEFAULT);
}

void acdm_engine_stop(acdm_engine *e)
{
    if (!e->stopping) acdm_notify("STOPPING=1");
    e->stopping = true;
    uv_stop(&e->loop);
}

static void drained(void *user, int status)
{
    (void)status;
    *(bool *)user = true;
}

void acdm_engine_destroy(acdm_engine *e)
{
    if (!e) return;
    e->stopping = true;
    EACH_MODULE(e, shutdown);   /* the API's reconnect-grace and expiry timers */
    acdm_engine_oidc_shutdown(e);
    /* everything submitted so far is committed and its callbacks run while the plugins that
     * wait for them still exist (they acknowledge their senders and free their state) */
    if (e->store && e->plugins) {
        bool flushed = false;
        if (!acdm_store_flush(e->store, drained, &flushed))
            while (!flushed) uv_run(&e->loop, UV_RUN_ONCE);
    }
    if (e->plugins) acdm_plugins_destroy(e->plugins);
    e->plugins = NULL;
    /* requests of the core's own still in flight (screen-pop) hear "cancelled" */
    if (e->outbound) acdm_outbound_destroy(e->outbound);
    e->outbound = NULL;
    /* the store's last group commits and runs its callbacks while HTTP can still answer; writes
     * those callbacks queue are dropped (their berichten are stored as queued and restored at
     * the next start) */
    if (e->store) acdm_store_close(e->store);
    e->store = NULL;
    if (e->http) acdm_http_destroy(e->http);
    e->http = NULL;
    EACH_MODULE(e, stop);   /* after the websockets' close callbacks: live figures, daily export */
    if (e->model) acdm_model_destroy(e->model);
    /* close only our own handles: libwebsockets closes its own (a second close aborts) */
    uv_handle_t *mine[] = {(uv_handle_t *)&e->model_timer, (uv_handle_t *)&e->defer_timer,
                           (uv_handle_t *)&e->watchdog_timer,
                           (uv_handle_t *)&e->store_wake,
                           (uv_handle_t *)&e->sig_hup, (uv_handle_t *)&e->sig_term,
                           (uv_handle_t *)&e->sig_int};
    for (size_t i = 0; i < sizeof mine / sizeof *mine; i++)
        if (mine[i]->type != UV_UNKNOWN_HANDLE && !uv_is_closing(mine[i])) uv_close(mine[i], NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_loop_close(&e->loop);
    token_cache_clear(e);
    const char *k;
    void *v;
    EACH_MODULE(e, release);   /* the API's sessions */
    for (uint32_t pos = 0; acdm_hmap_next(&e->subjects, &pos, &k, &v);) free(v);
    acdm_hmap_free(&e->subjects);
    for (uint32_t pos = 0; acdm_hmap_next(&e->qwait, &pos, &k, &v);) qstat_free(v);
    acdm_hmap_free(&e->qwait);
    for (uint32_t pos = 0; acdm_hmap_next(&e->dfail, &pos, &k, &v);) free(v);
    acdm_hmap_free(&e->dfail);
    {
        const char *k;
        void *v;
        for (uint32_t i = 0; acdm_hmap_next(&e->att_refs, &i, &k, &v);) free(v);
        acdm_hmap_free(&e->att_refs);
    }
    free(e->subs);
    free(e->mods);
    free(e->jobs);
    json_decref(e->overrides);
    free(e->config_path);
    free(e->salvage);
    free(e);
}
