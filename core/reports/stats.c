/* stats.c -- live figures: today's counters per queue and channel (from model events) and the
 * live values read from the model. See stats.h for the definitions. */
#include "reports/stats.h"
#include "store/export.h"
#include "base/log.h"
#include "reports/erlang.h"

#include <math.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_QUARTERS 100       /* 15-minute intervals of a local day (25 h with DST: 100) */

typedef struct {
    acdm_stats_counts c;
    uint32_t offered_q[N_QUARTERS];   /* queues: offered per 15 minutes of the day (staffing advice) */
    char name[];
} counter;

struct acdm_stats {
    acdm_hmap queues;         /* queue name -> counter */
    acdm_hmap channels;       /* channel name -> counter */
    int64_t day_end;          /* local midnight that ends the counted day; 0 = not set */
    int64_t day_start;        /* the local midnight that started it */
};

/* The local midnight that starts the day of now (add_days 0) or a later one (1: the midnight
 * that ends it); fallback when mktime cannot say. */
static int64_t local_midnight(int64_t now, int add_days, int64_t fallback)
{
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_mday += add_days;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;          /* let mktime find out (DST changes happen at night) */
    time_t m = mktime(&tm);
    return m == (time_t)-1 ? fallback : (int64_t)m * 1000;
}

acdm_stats *acdm_stats_create(void)
{
    acdm_stats *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    acdm_hmap_init(&s->queues);
    acdm_hmap_init(&s->channels);
    return s;
}

static void clear_map(acdm_hmap *m)
{
    const char *k;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(m, &pos, &k, &v);) free(v);
    acdm_hmap_free(m);
}

void acdm_stats_destroy(acdm_stats *s)
{
    if (!s) return;
    clear_map(&s->queues);
    clear_map(&s->channels);
    acdm_hmap_free(&s->queues);
    acdm_hmap_free(&s->channels);
    free(s);
}

void acdm_stats_roll(acdm_stats *s, int64_t now)
{
    if (s->day_end && now < s->day_end) return;
    if (s->day_end) {
        clear_map(&s->queues);
        clear_map(&s->channels);
    }
    s->day_end = local_midnight(now, 1, now + 86400000);
    s->day_start = local_midnight(now, 0, now);
}

static int quarter_of(const acdm_stats *s, int64_t ts)
{
    int64_t q = (ts - s->day_start) / 900000;
    return q < 0 ? 0 : q >= N_QUARTERS ? N_QUARTERS - 1 : (int)q;
}

static acdm_stats_counts *counts_of(acdm_hmap *m, const char *name)
{
    if (!name) return NULL;
    counter *c = acdm_hmap_get(m, name);
    if (c) return &c->c;
    size_t n = strlen(name);
    c = calloc(1, sizeof *c + n + 1);
    if (!c) return NULL;
    memcpy(c->name, name, n + 1);
    if (acdm_hmap_put(m, c->name, c)) { free(c); return NULL; }
    return &c->c;
}

void acdm_stats_count(acdm_stats_counts *c, acdm_flow flow, acdm_mevent_type type, const char *reason,
                      int64_t wait_ms, bool quick_drop, int sl_seconds, int64_t handle_ms)
{
    if (!c) return;
    switch (flow) {
    case ACDM_FLOW_OFFERED: c->offered++; break;
    case ACDM_FLOW_ANSWERED:
        c->answered++;
        c->wait_sum_ms += wait_ms;
        if (wait_ms <= (int64_t)sl_seconds * 1000) c->answered_in_sl++;
        break;
    case ACDM_FLOW_ABANDONED:
        if (quick_drop) c->quick_drops++;
        else c->abandoned++;
        break;
    case ACDM_FLOW_MOVED: c->moved++; break;
    default: break;
    }
    if (type != ACDM_ME_DONE) return;
    if (reason && !strncmp(reason, "outbound", 8)) {   /* "outbound", "outbound-failed" */
        if (!strcmp(reason, "outbound-failed")) c->outbound_failed++;
        else c->outbound++;
    } else if (handle_ms >= 0) {
        c->handled++;
        c->handle_sum_ms += handle_ms;
    }
}

acdm_flow acdm_stats_legacy_flow(acdm_mevent_type type, const char *reason, bool channel)
{
    switch (type) {
    case ACDM_ME_QUEUED:
        if (!reason || (strcmp(reason, "new") && (channel || (strcmp(reason, "transfer") && strcmp(reason, "overflow")))))
            return ACDM_FLOW_NONE;
        return ACDM_FLOW_OFFERED;
    case ACDM_ME_ACCEPTED: return ACDM_FLOW_ANSWERED;
    case ACDM_ME_ABANDONED: return ACDM_FLOW_ABANDONED;
    default: return ACDM_FLOW_NONE;
    }
}

/* One counted fact, for its queue (and, moved, the queue it left: from) and its channel.
 * handle_ms < 0: not known. */
static void count(acdm_stats *s, int64_t ts, acdm_mevent_type type, const char *queue, const char *from,
                  const char *channel, acdm_flow flow, acdm_flow cflow, const char *reason,
                  int64_t value, bool quick_drop, int sl_seconds, int64_t handle_ms)
{
    if (flow == ACDM_FLOW_MOVED) {
        if (from && *from) acdm_stats_count(counts_of(&s->queues, from), ACDM_FLOW_MOVED, type, reason, 0, false, 0, -1);
        flow = ACDM_FLOW_OFFERED;      /* and offered where it went */
    }
    if (flow == ACDM_FLOW_NONE && cflow == ACDM_FLOW_NONE && type != ACDM_ME_DONE) return;
    acdm_stats_counts *qc = counts_of(&s->queues, queue);
    if (qc && flow == ACDM_FLOW_OFFERED) ((counter *)(void *)qc)->offered_q[quarter_of(s, ts)]++;
    acdm_stats_count(qc, flow, type, reason, value, quick_drop, sl_seconds, handle_ms);
    acdm_stats_count(counts_of(&s->channels, channel), cflow, type, reason, value, quick_drop, sl_seconds, handle_ms);
}

void acdm_stats_event(acdm_stats *s, const acdm_mevent *ev)
{
    if (!s || !ev->b) return;
    acdm_stats_roll(s, ev->ts);
    const acdm_bericht *b = ev->b;
    const acdm_queue *q = ev->q ? ev->q : b->queue;
    int64_t handle = ev->type == ACDM_ME_DONE && b->accepted_ms > 0 && ev->ts >= b->accepted_ms
                   ? ev->ts - b->accepted_ms : -1;
    count(s, ev->ts, ev->type, q->name, ev->reason, b->channel, ev->flow, ev->channel_flow, ev->reason,
          ev->type == ACDM_ME_ACCEPTED ? ev->value : 0, ev->quick_drop, q->def->sl_seconds, handle);
}

/* ------------------------------------------------------------------ the event log's detail */

/* The string value of "key":"..." in compact JSON (as engine.c writes it), copied into out;
 * escapes are kept as written (names never hold them). */
static void detail_str(const char *dj, const char *pat, char *out, size_t len)
{
    out[0] = 0;
    const char *p = strstr(dj, pat);
    if (!p) return;
    p += strlen(pat);
    size_t n = 0;
    while (p[n] && p[n] != '"' && n + 2 < len) {
        if (p[n] == '\\' && p[n + 1]) n++;
        n++;
    }
    memcpy(out, p, n);
    out[n] = 0;
}

void acdm_stats_detail(const char *dj, acdm_event_detail *d)
{
    memset(d, 0, sizeof *d);
    if (!dj) return;
    /* read without building a JSON tree: at start and in reports this runs for every event */
    detail_str(dj, "\"reason\":\"", d->reason, sizeof d->reason);
    detail_str(dj, "\"state\":\"", d->state, sizeof d->state);
    detail_str(dj, "\"from\":\"", d->from, sizeof d->from);
    char f[16];
    detail_str(dj, "\"flow\":\"", f, sizeof f);
    d->has_flow = f[0] != 0;
    d->flow = acdm_flow_parse(f);
    detail_str(dj, "\"channel_flow\":\"", f, sizeof f);
    d->has_flow = d->has_flow || f[0];
    d->channel_flow = acdm_flow_parse(f);
    const char *w = strstr(dj, "\"wait_ms\":");
    if (w) d->wait_ms = strtoll(w + 10, NULL, 10);
    d->quick_drop = strstr(dj, "\"quick_drop\":true") != NULL;
}

/* ------------------------------------------------------------------ replay after a restart */

typedef struct { int sl_seconds; char name[]; } queue_sl;
typedef struct { int64_t ts; char id[40]; } accept_mark;

struct acdm_stats_rebuild {
    acdm_stats *s;            /* the day before `now`, merged into the live counters */
    acdm_hmap sl;             /* queue name -> queue_sl (a copy: a reload may free the config) */
    acdm_hmap accepted;       /* bericht id -> malloc'd {ts, id} of its last acceptance today */
    char *db_path;
    int64_t since, now;
    atomic_int stop;          /* set by _stop from the loop; read between rows */
};

static int replay_row(void *user, int64_t id, const acdm_event_row *ev)
{
    (void)id;
    acdm_stats_rebuild *c = user;
    if (atomic_load(&c->stop)) return 1;
    static const struct { const char *name; acdm_mevent_type t; } types[] = {
        {"queued", ACDM_ME_QUEUED}, {"accepted", ACDM_ME_ACCEPTED},
        {"abandoned", ACDM_ME_ABANDONED}, {"done", ACDM_ME_DONE}, {"overflow", ACDM_ME_OVERFLOW},
        {"moved", ACDM_ME_MOVED}, {"updated", ACDM_ME_UPDATED}};
    int t = -1;
    for (size_t i = 0; i < sizeof types / sizeof *types && t < 0; i++)
        if (ev->type && !strcmp(ev->type, types[i].name)) t = (int)types[i].t;
    if (t < 0 || !ev->bericht || !ev->queue) return 0;
    acdm_event_detail d;
    acdm_stats_detail(ev->detail_json, &d);
    const queue_sl *qs = acdm_hmap_get(&c->sl, ev->queue);
    int64_t handle = -1;
    if (t == ACDM_ME_ACCEPTED) {
        accept_mark *m = acdm_hmap_get(&c->accepted, ev->bericht);
        if (!m && strlen(ev->bericht) < sizeof m->id && (m = calloc(1, sizeof *m))) {
            snprintf(m->id, sizeof m->id, "%s", ev->bericht);
            if (acdm_hmap_put(&c->accepted, m->id, m)) { free(m); m = NULL; }
        }
        if (m) m->ts = ev->ts_ms;
    } else if (t == ACDM_ME_DONE) {
        accept_mark *m = acdm_hmap_del(&c->accepted, ev->bericht);
        if (m && ev->ts_ms >= m->ts) handle = ev->ts_ms - m->ts;
        free(m);
    }
    const char *reason = d.reason[0] ? d.reason : NULL;
    acdm_flow flow = d.has_flow ? d.flow : acdm_stats_legacy_flow((acdm_mevent_type)t, reason, false);
    acdm_flow cflow = d.has_flow ? d.channel_flow : acdm_stats_legacy_flow((acdm_mevent_type)t, reason, true);
    count(c->s, ev->ts_ms, (acdm_mevent_type)t, ev->queue, t == ACDM_ME_UPDATED ? d.from : reason, ev->channel, flow, cflow,
          reason, d.wait_ms, d.quick_drop, qs ? qs->sl_seconds : 20, handle);
    return 0;
}

static void free_values(acdm_hmap *m)
{
    const char *k;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(m, &pos, &k, &v);) free(v);
    acdm_hmap_free(m);
    acdm_hmap_init(m);
}

void acdm_stats_rebuild_free(acdm_stats_rebuild *r)
{
    if (!r) return;
    acdm_stats_destroy(r->s);
    free_values(&r->sl);
    free_values(&r->accepted);
    free(r->db_path);
    free(r);
}

acdm_stats_rebuild *acdm_stats_rebuild_new(const acdm_config *cfg, const char *db_path, int64_t now)
{
    acdm_stats_rebuild *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    acdm_hmap_init(&r->sl);
    acdm_hmap_init(&r->accepted);
    r->s = acdm_stats_create();
    r->db_path = db_path ? strdup(db_path) : NULL;
    r->now = now;
    if (!r->s || !r->db_path) { acdm_stats_rebuild_free(r); return NULL; }
    acdm_stats_roll(r->s, now);
    for (size_t i = 0; cfg && i < cfg->n_queues; i++) {
        size_t n = strlen(cfg->queues[i].name);
        queue_sl *q = malloc(sizeof *q + n + 1);
        if (!q) continue;
        q->sl_seconds = cfg->queues[i].sl_seconds;
        memcpy(q->name, cfg->queues[i].name, n + 1);
        if (acdm_hmap_put(&r->sl, q->name, q)) free(q);
    }
    r->since = local_midnight(now, 0, now);
    return r;
}

int acdm_stats_rebuild_run(acdm_stats_rebuild *r)
{
    static const char *const types[] = {"queued", "accepted", "abandoned", "done", "overflow", "moved", "updated", NULL};
    char err[512];
    if (r->since >= r->now) return 0;
    int n = acdm_export_read_types(r->db_path, r->since, r->now, types, replay_row, r, err, sizeof err);
    if (n < 0) acdm_log(ACDM_LOG_ERR, "stats", "today's figures not rebuilt: %s", err);
    return atomic_load(&r->stop) ? ACDM_EINVAL : n;
}

void acdm_stats_rebuild_stop(acdm_stats_rebuild *r) { if (r) atomic_store(&r->stop, 1); }

static void add_counts(acdm_stats_counts *d, const acdm_stats_counts *c)
{
    if (!d) return;
    d->offered += c->offered;
    d->answered += c->answered;
    d->abandoned += c->abandoned;
    d->quick_drops += c->quick_drops;
    d->moved += c->moved;
    d->answered_in_sl += c->answered_in_sl;
    d->handled += c->handled;
    d->wait_sum_ms += c->wait_sum_ms;
    d->handle_sum_ms += c->handle_sum_ms;
    d->outbound += c->outbound;
    d->outbound_failed += c->outbound_failed;
}

void acdm_stats_rebuild_merge(acdm_stats_rebuild *r, acdm_stats *s, int64_t now)
{
    if (!r || !s || atomic_load(&r->stop)) return;
    acdm_stats_roll(s, now);
    if (s->day_end != r->s->day_end) return;   /* midnight passed: that day is over */
    acdm_hmap *from[2] = {&r->s->queues, &r->s->channels}, *to[2] = {&s->queues, &s->channels};
    for (int i = 0; i < 2; i++) {
        const char *k;
        void *v;
        for (uint32_t pos = 0; acdm_hmap_next(from[i], &pos, &k, &v);) {
            acdm_stats_counts *d = counts_of(to[i], k);
            add_counts(d, &((counter *)v)->c);
            for (int x = 0; d && x < N_QUARTERS; x++) ((counter *)(void *)d)->offered_q[x] += ((counter *)v)->offered_q[x];
        }
    }
}


int acdm_stats_replay(acdm_stats *s, acdm_store *st, const acdm_config *cfg, int64_t now)
{
    acdm_stats_rebuild *r = acdm_stats_rebuild_new(cfg, acdm_store_db_path(st), now);
    if (!r) return ACDM_ENOMEM;
    int n = acdm_stats_rebuild_run(r);
    if (n > 0) acdm_stats_rebuild_merge(r, s, now);
    else acdm_stats_roll(s, now);
    acdm_stats_rebuild_free(r);
    return n;
}

static acdm_stats_counts lookup(acdm_stats *s, acdm_hmap *m, const char *name, int64_t now)
{
    acdm_stats_roll(s, now);
    counter *c = name ? acdm_hmap_get(m, name) : NULL;
    if (c) return c->c;
    acdm_stats_counts z;
    memset(&z, 0, sizeof z);
    return z;
}

acdm_stats_counts acdm_stats_queue(acdm_stats *s, const char *queue, int64_t now)
{
    return lookup(s, &s->queues, queue, now);
}

acdm_stats_counts acdm_stats_channel(acdm_stats *s, const char *channel, int64_t now)
{
    return lookup(s, &s->channels, channel, now);
}

/* ------------------------------------------------------------------ a text writer */

#define LIT(b, s) acdm_sb_add((b), (s), sizeof(s) - 1)

/* ------------------------------------------------------------------ figures */

int64_t acdm_stats_sl_tenths(const acdm_stats_counts *c)
{
    uint64_t base = c->answered + c->abandoned;
    return base ? (int64_t)((double)c->answered_in_sl * 1000.0 / (double)base + 0.5) : -1;
}

static void today_text(acdm_sbuf *b, const acdm_stats_counts *c)
{
    LIT(b, "{\"offered\":"); acdm_sb_int(b, (int64_t)c->offered);
    LIT(b, ",\"answered\":"); acdm_sb_int(b, (int64_t)c->answered);
    LIT(b, ",\"abandoned\":"); acdm_sb_int(b, (int64_t)c->abandoned);
    LIT(b, ",\"quick_drops\":"); acdm_sb_int(b, (int64_t)c->quick_drops);
    LIT(b, ",\"moved\":"); acdm_sb_int(b, (int64_t)c->moved);
    LIT(b, ",\"avg_wait_ms\":"); acdm_sb_int(b, c->answered ? c->wait_sum_ms / (int64_t)c->answered : 0);
    LIT(b, ",\"avg_handle_ms\":"); acdm_sb_int(b, c->handled ? c->handle_sum_ms / (int64_t)c->handled : 0);
    LIT(b, ",\"service_level_pct\":");
    int64_t sl = acdm_stats_sl_tenths(c);
    if (sl < 0) LIT(b, "null");
    else {
        acdm_sb_int(b, sl / 10);
        if (sl % 10) { char d[3] = {'.', (char)('0' + sl % 10), 0}; acdm_sb_str(b, d); }
    }
    LIT(b, "}");
}

json_t *acdm_stats_today_json(const acdm_stats_counts *c)
{
    acdm_sbuf b = {0};
    today_text(&b, c);
    json_t *j = b.oom ? NULL : json_loads(b.p, 0, NULL);
    free(b.p);
    return j;
}

int64_t acdm_stats_longest_wait(const acdm_queue *q, int64_t now)
{
    int64_t longest = 0;
    for (int k = 0; k < ACDM_KIND__COUNT; k++)
        for (uint32_t x = 0; x < q->waiting[k].n; x++) {
            const acdm_bericht *b = q->waiting[k].items[x];
            if (now - b->queued_ms > longest) longest = now - b->queued_ms;
        }
    return longest;
}

static bool agent_busy(const acdm_agent *a)
{
    for (uint32_t i = 0; i < a->n_work; i++)
        if (a->work[i].state == ACDM_W_ACTIVE) return true;
    return false;
}

static void queue_agents_text(acdm_sbuf *b, const acdm_queue *q)
{
    /* exclusive counts, one state per agent (acdm_agent_shown), as the agents table shows
     * them: logged_in = ready + busy + wrapup + not_ready */
    int logged_in = 0, ready = 0, busy = 0, wrapup = 0, not_ready = 0;
    for (uint32_t j = 0; j < q->n_members; j++) {
        const acdm_agent *a = q->members[j]->agent;
        acdm_shown_state st = acdm_agent_shown(a);
        if (!q->members[j]->joined || st == ACDM_SHOWN_LOGGED_OUT) continue;
        logged_in++;
        if (st == ACDM_SHOWN_READY) ready++;
        else if (st == ACDM_SHOWN_BUSY) busy++;
        else if (st == ACDM_SHOWN_WRAPUP) wrapup++;
        else not_ready++;
    }
    LIT(b, "{\"logged_in\":"); acdm_sb_int(b, logged_in);
    LIT(b, ",\"ready\":"); acdm_sb_int(b, ready);
    LIT(b, ",\"busy\":"); acdm_sb_int(b, busy);
    LIT(b, ",\"wrapup\":"); acdm_sb_int(b, wrapup);
    LIT(b, ",\"not_ready\":"); acdm_sb_int(b, not_ready);
    LIT(b, "}");
}

static int logged_in_of(const acdm_queue *q)
{
    int n = 0;
    for (uint32_t j = 0; j < q->n_members; j++)
        n += q->members[j]->joined && q->members[j]->agent->state != ACDM_AGENT_LOGGED_OUT;
    return n;
}

static void num1(acdm_sbuf *b, double v)
{
    char t[32];
    snprintf(t, sizeof t, "%.1f", round(v * 10) / 10);
    acdm_sb_str(b, t);
}

/* The staffing advice of q now (stats.h): the arrivals of the last 15 minutes (the current
 * quarter and the part of the one before that the window still covers), today's average
 * handling time, the Erlang C agents for the norm, beside the agents logged in. */
static void staffing_text(acdm_sbuf *b, acdm_stats *s, const acdm_queue *q, int64_t now)
{
    acdm_stats_roll(s, now);
    const counter *c = acdm_hmap_get(&s->queues, q->name);
    int iv = quarter_of(s, now);
    int64_t iv_start = s->day_start + (int64_t)iv * 900000;
    double frac = (double)(now - iv_start) / 900000.0;
    if (frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    double arrivals = c ? c->offered_q[iv] + (iv > 0 ? c->offered_q[iv - 1] * (1 - frac) : 0) : 0;
    double aht = c && c->c.handled ? (double)c->c.handle_sum_ms / (double)c->c.handled / 1000.0 : 0;
    int need = acdm_erlang_agents(arrivals / 900.0, aht, q->def->sl_target_pct / 100.0, q->def->sl_seconds, 10000);
    LIT(b, "{\"interval_start\":"); acdm_sb_int(b, iv_start);
    LIT(b, ",\"arrivals_15m\":"); num1(b, arrivals);
    LIT(b, ",\"aht_s\":");
    if (aht > 0) num1(b, aht); else LIT(b, "null");
    LIT(b, ",\"agents_needed\":");
    if (need >= 0) acdm_sb_int(b, need); else LIT(b, "null");
    LIT(b, ",\"agents_logged_in\":"); acdm_sb_int(b, logged_in_of(q));
    LIT(b, "}");
}

static const char *qtitle(const acdm_queue *q) { return q->def->title ? q->def->title : q->name; }

/* Why the queue is open or closed and what the schedule says (acdm_queue_status_of): the
 * dashboard's "Open tot 17:00 volgens rooster" / "Handmatig gesloten door petra om 10:12". */
static void queue_status_text(acdm_sbuf *b, const acdm_queue *q, int64_t now)
{
    acdm_queue_status st;
    acdm_queue_status_of(q, now, &st);
    LIT(b, "{\"why\":"); acdm_sb_jstr(b, st.why);
    LIT(b, ",\"manual_closed\":"); acdm_sb_bool(b, st.manual_closed);
    LIT(b, ",\"schedule\":"); acdm_sb_jstr(b, q->def->schedule);
    LIT(b, ",\"schedule_open\":"); acdm_sb_bool(b, st.schedule_open);
    LIT(b, ",\"until_ms\":");
    if (st.until_ms > 0) acdm_sb_int(b, st.until_ms); else LIT(b, "null");
    LIT(b, ",\"by\":"); acdm_sb_jstr(b, st.by && *st.by ? st.by : NULL);
    LIT(b, ",\"at_ms\":");
    if (st.at_ms > 0) acdm_sb_int(b, st.at_ms); else LIT(b, "null");
    LIT(b, "}");
}

void acdm_stats_queue_text(acdm_sbuf *b, acdm_stats *s, const acdm_queue *q, int64_t now)
{
    LIT(b, "{\"name\":"); acdm_sb_jstr(b, q->name);
    LIT(b, ",\"title\":"); acdm_sb_jstr(b, qtitle(q));
    LIT(b, ",\"open\":"); acdm_sb_bool(b, acdm_queue_is_open(q));
    LIT(b, ",\"strategy\":"); acdm_sb_jstr(b, acdm_strategy_name(q->strategy));
    LIT(b, ",\"waiting\":"); acdm_sb_int(b, q->n_waiting);
    LIT(b, ",\"waiting_by_kind\":{");
    bool first = true;
    for (int k = 0; k < ACDM_KIND__COUNT; k++) {
        if (!q->waiting[k].n) continue;
        if (!first) LIT(b, ",");
        first = false;
        acdm_sb_jstr(b, acdm_kind_name((acdm_kind)k));
        LIT(b, ":");
        acdm_sb_int(b, q->waiting[k].n);
    }
    LIT(b, "},\"longest_wait_ms\":"); acdm_sb_int(b, acdm_stats_longest_wait(q, now));
    LIT(b, ",\"today\":");
    acdm_stats_counts c = acdm_stats_queue(s, q->name, now);
    today_text(b, &c);
    LIT(b, ",\"sl_target_pct\":"); acdm_sb_int(b, q->def->sl_target_pct);
    LIT(b, ",\"sl_seconds\":"); acdm_sb_int(b, q->def->sl_seconds);
    LIT(b, ",\"agents\":"); queue_agents_text(b, q);
    LIT(b, ",\"staffing\":"); staffing_text(b, s, q, now);
    LIT(b, ",\"status\":"); queue_status_text(b, q, now);
    LIT(b, "}");
}

void acdm_stats_queue_brief_text(acdm_sbuf *b, const acdm_queue *q, int64_t now)
{
    LIT(b, "{\"name\":"); acdm_sb_jstr(b, q->name);
    LIT(b, ",\"title\":"); acdm_sb_jstr(b, qtitle(q));
    LIT(b, ",\"open\":"); acdm_sb_bool(b, acdm_queue_is_open(q));
    LIT(b, ",\"waiting\":"); acdm_sb_int(b, q->n_waiting);
    LIT(b, ",\"longest_wait_ms\":"); acdm_sb_int(b, acdm_stats_longest_wait(q, now));
    LIT(b, "}");
}

static json_t *loads_free(acdm_sbuf *b)
{
    json_t *j = b->oom || !b->p ? NULL : json_loads(b->p, 0, NULL);
    free(b->p);
    return j;
}

json_t *acdm_stats_queue_json(acdm_stats *s, const acdm_queue *q, int64_t now)
{
    acdm_sbuf b = {0};
    acdm_stats_queue_text(&b, s, q, now);
    return loads_free(&b);
}

void acdm_stats_decorate_queues(acdm_stats *s, acdm_model *m, json_t *queues, int64_t now)
{
    size_t i;
    json_t *o;
    json_array_foreach(queues, i, o) {
        const acdm_queue *q = acdm_model_queue(m, json_string_value(json_object_get(o, "name")));
        if (!q) continue;
        acdm_stats_counts c = acdm_stats_queue(s, q->name, now);
        json_object_set_new(o, "today", acdm_stats_today_json(&c));
        json_object_set_new(o, "sl_target_pct", json_integer(q->def->sl_target_pct));
        json_object_set_new(o, "sl_seconds", json_integer(q->def->sl_seconds));
        acdm_sbuf b = {0};
        queue_agents_text(&b, q);
        json_object_set_new(o, "agents", loads_free(&b));
        acdm_sbuf sb = {0};
        staffing_text(&sb, s, q, now);
        json_object_set_new(o, "staffing", loads_free(&sb));
        acdm_sbuf st = {0};
        queue_status_text(&st, q, now);
        json_object_set_new(o, "status", loads_free(&st));
    }
}

void acdm_stats_agent_text(acdm_sbuf *b, const acdm_agent *a, bool full)
{
    static const char *const ws[] = {"offered", "active", "wrapup"};
    LIT(b, "{\"id\":"); acdm_sb_jstr(b, a->id);
    LIT(b, ",\"name\":"); acdm_sb_jstr(b, a->def->name ? a->def->name : a->id);
    LIT(b, ",\"state\":"); acdm_sb_jstr(b, acdm_agent_state_name(a->state));
    LIT(b, ",\"reason\":"); acdm_sb_jstr(b, a->reason[0] ? a->reason : NULL);
    LIT(b, ",\"since\":");
    if (a->state_since > 0) acdm_sb_int(b, a->state_since);
    else LIT(b, "null");   /* no state change since acdmd started: unknown, not 1970 */
    LIT(b, ",\"busy\":"); acdm_sb_bool(b, agent_busy(a));
    LIT(b, ",\"wrapup\":"); acdm_sb_bool(b, a->n_wrapup > 0);
    if (full) {
        LIT(b, ",\"work\":[");
        for (uint32_t i = 0; i < a->n_work; i++) {
            const acdm_bericht *w = a->work[i].b;
            if (i) LIT(b, ",");
            LIT(b, "{\"bericht\":"); acdm_sb_jstr(b, w->id);
            LIT(b, ",\"state\":"); acdm_sb_jstr(b, ws[a->work[i].state % 3]);
            LIT(b, ",\"kind\":"); acdm_sb_jstr(b, acdm_kind_name((acdm_kind)w->kind));
            LIT(b, ",\"queue\":"); acdm_sb_jstr(b, w->queue->name);
            /* what the dashboard shows of it: the customer, the channel, since when this agent
             * has it in this state (offer, acceptance, start of wrap-up) */
            LIT(b, ",\"channel\":"); acdm_sb_jstr(b, w->channel);
            LIT(b, ",\"from\":"); acdm_sb_jstr(b, w->from);
            int64_t since = a->work[i].state == ACDM_W_OFFERED ? w->offered_ms
                          : a->work[i].state == ACDM_W_WRAPUP ? w->wrapup_ms : w->accepted_ms;
            LIT(b, ",\"since_ms\":");
            if (since > 0) acdm_sb_int(b, since); else LIT(b, "null");
            if (w->kind == ACDM_KIND_VOICE || w->kind == ACDM_KIND_CALLBACK) {
                LIT(b, ",\"held\":"); acdm_sb_bool(b, w->held);   /* calls only */
            }
            LIT(b, "}");
        }
        LIT(b, "],\"handled\":"); acdm_sb_int(b, (int64_t)a->handled);
    }
    LIT(b, "}");
}

json_t *acdm_stats_agent_json(const acdm_agent *a)
{
    acdm_sbuf b = {0};
    acdm_stats_agent_text(&b, a, true);
    return loads_free(&b);
}

/* ------------------------------------------------------------------ channels */

typedef struct {
    const char *name;         /* the config's, "api", a counter's key, or the model's interned one */
    const char *interned;     /* the model's interned pointer once seen (pointer compare) */
    uint32_t waiting, active;
} chan_row;

typedef struct {
    chan_row *rows;
    size_t n, cap;
} chan_list;

static chan_row *chan_find(chan_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->rows[i].interned == name) return &l->rows[i];
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->rows[i].name, name)) {
            l->rows[i].interned = name;   /* model berichten share one pointer per channel */
            return &l->rows[i];
        }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        chan_row *r = realloc(l->rows, cap * sizeof *r);
        if (!r) return NULL;
        l->rows = r;
        l->cap = cap;
    }
    l->rows[l->n] = (chan_row){name, NULL, 0, 0};
    return &l->rows[l->n++];
}

static void channels_text(acdm_sbuf *b, acdm_stats *s, acdm_model *m, int64_t now)
{
    chan_list l = {NULL, 0, 0};
    const acdm_config *cfg = acdm_model_config(m);
    for (size_t i = 0; i < cfg->n_channels; i++) chan_find(&l, cfg->channels[i].name);
    chan_find(&l, "api");
    const char *k;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(&s->channels, &pos, &k, &v);) chan_find(&l, k);
    /* live: waiting berichten per channel, and those an agent has (active or wrap-up) */
    for (size_t i = 0; i < acdm_model_n_queues(m); i++) {
        const acdm_queue *q = acdm_model_queue_at(m, i);
        for (int kd = 0; kd < ACDM_KIND__COUNT; kd++)
            for (uint32_t x = 0; x < q->waiting[kd].n; x++) {
                chan_row *r = chan_find(&l, ((const acdm_bericht *)q->waiting[kd].items[x])->channel);
                if (r) r->waiting++;
            }
    }
    for (size_t i = 0; i < acdm_model_n_agents(m); i++) {
        const acdm_agent *a = acdm_model_agent_at(m, i);
        for (uint32_t w = 0; w < a->n_work; w++) {
            if (a->work[w].state == ACDM_W_OFFERED) continue;
            chan_row *r = chan_find(&l, a->work[w].b->channel);
            if (r) r->active++;
        }
    }
    LIT(b, "[");
    for (size_t i = 0; i < l.n; i++) {
        acdm_stats_counts c = acdm_stats_channel(s, l.rows[i].name, now);
        if (i) LIT(b, ",");
        LIT(b, "{\"channel\":"); acdm_sb_jstr(b, l.rows[i].name);
        LIT(b, ",\"waiting\":"); acdm_sb_int(b, l.rows[i].waiting);
        LIT(b, ",\"active\":"); acdm_sb_int(b, l.rows[i].active);
        LIT(b, ",\"today\":{\"offered\":"); acdm_sb_int(b, (int64_t)c.offered);
        LIT(b, ",\"answered\":"); acdm_sb_int(b, (int64_t)c.answered);
        LIT(b, ",\"abandoned\":"); acdm_sb_int(b, (int64_t)c.abandoned);
        LIT(b, ",\"quick_drops\":"); acdm_sb_int(b, (int64_t)c.quick_drops);
        LIT(b, "}}");
    }
    LIT(b, "]");
    free(l.rows);
}

char *acdm_stats_text(acdm_stats *s, acdm_model *m, const char *type, int64_t now, size_t *len)
{
    acdm_stats_roll(s, now);
    acdm_sbuf b = {0};
    LIT(&b, "{\"type\":"); acdm_sb_jstr(&b, type);
    LIT(&b, ",\"ts\":"); acdm_sb_int(&b, now);
    LIT(&b, ",\"queues\":[");
    for (size_t i = 0; i < acdm_model_n_queues(m); i++) {
        if (i) LIT(&b, ",");
        acdm_stats_queue_text(&b, s, acdm_model_queue_at(m, i), now);
    }
    LIT(&b, "],\"channels\":");
    channels_text(&b, s, m, now);
    LIT(&b, ",\"agents\":[");
    for (size_t i = 0; i < acdm_model_n_agents(m); i++) {
        if (i) LIT(&b, ",");
        acdm_stats_agent_text(&b, acdm_model_agent_at(m, i), true);
    }
    LIT(&b, "]}");
    if (b.oom) { free(b.p); return NULL; }
    if (len) *len = b.n;
    return b.p;
}

json_t *acdm_stats_json(acdm_stats *s, acdm_model *m, const char *type, int64_t now)
{
    size_t n;
    char *t = acdm_stats_text(s, m, type, now, &n);
    json_t *j = t ? json_loadb(t, n, 0, NULL) : NULL;
    free(t);
    return j;
}
