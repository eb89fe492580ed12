/* report.c -- supervisor reports from the event log: per queue, channel, agent or topic, in
 * intervals of local time, as JSON, CSV or xlsx. See report.h. */
#include "reports/report_int.h"
#include "reports/erlang.h"
#include "reports/stats.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xlsxwriter.h>

enum { ST_OUT = 0, ST_READY, ST_NOT_READY };

/* One key's figures in one interval (or over the whole report: the totals). */
typedef struct {
    acdm_stats_counts c;       /* queues, channels; agents: answered = accepted, handled */
    uint64_t transfers, offers, rejected, missed, withdrawn, topics;
    int64_t longest_wait_ms, talk_ms, wrapup_ms;
    int64_t state_ms[3];       /* agents: time per state (ST_*) */
    int64_t staffed_ms;        /* queues: agent time logged in and joined (agents_logged_in) */
    int64_t *reason_ms;        /* agents: not-ready time per reason index */
    uint32_t n_reason;
    uint64_t csat_n, csat_scored, csat_score_sum, csat_asked_helped, csat_helped;   /* csat_* below */
} cell;

/* One key (a queue, channel, agent or topic) over the report's intervals. */
typedef struct {
    cell **cells;              /* n_intervals, each allocated on first use */
    cell total;
    bool any;                  /* a cell exists */
    int state, reason;         /* agents: the current state and reason index, since when */
    int64_t since;
    char name[];
} series;

/* A bericht followed through the log (until done or abandoned). */
typedef struct {
    int64_t accepted_ms, wrapup_ms;
    char queue[ACDM_NAME_MAX + 1], agent[ACDM_NAME_MAX + 1];
    char id[];
} track;

typedef struct { series *s; int iv; } rowref;   /* iv < 0: the totals */

/* Queue reports: an agent's logged-in time counts for the queues they are a member of (the
 * config's) and joined (agent_join / agent_leave; joined until they leave). */
typedef struct {
    int state;
    int64_t since;
    size_t n;
    char **queues;             /* n names (in this block) */
    bool *joined;
    char id[];
} staff_agent;

struct acdm_report {
    acdm_report_range rg;
    char tz[64];
    int64_t *bounds;           /* n_iv + 1 interval bounds (epoch ms) */
    int n_iv, cur;             /* cur: the interval of the last event (events come in order) */
    acdm_hmap series;          /* name -> series */
    acdm_hmap sl;              /* queue name -> int sl_seconds (malloc'd {int, name}) */
    acdm_hmap titles;          /* queue / agent name -> malloc'd "name\0title" (the config's title / name) */
    acdm_hmap tracks;          /* bericht id -> track */
    acdm_hmap staff;           /* queue reports: agent id -> staff_agent */
    char **reasons;            /* reason codes, in order of first use (config order first) */
    size_t n_reasons;
    rowref *rows, *totals;     /* built by acdm_report_end */
    size_t n_rows, n_totals;
    bool ended;
    char lang[4];              /* CSV and PDF as the page shows them: "nl", "en"; "" raw (CSV) */
    bool excel;                /* CSV for Excel: ';', a UTF-8 BOM, (nl) decimal commas */
    acdm_hmap reason_labels;   /* agents: reason code -> malloc'd "code\0label" (the config's) */
};

typedef struct { int sl, target; char name[]; } sl_entry;

/* ------------------------------------------------------------------ parameters */

static const char *const kind_names[] = {"queues", "channels", "agents", "topics"};

const char *acdm_report_kind_name(acdm_report_kind k) { return kind_names[k & 3]; }

const char *acdm_report_interval_name(int s) { return s == 900 ? "15m" : s == 3600 ? "1h" : "1d"; }

void acdm_report_local_date(int64_t ms, char out[16])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    snprintf(out, 16, "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100);
}

int acdm_report_format_parse(const char *s)
{
    if (!s || !strcmp(s, "json")) return ACDM_REPORT_JSON;
    if (!strcmp(s, "csv")) return ACDM_REPORT_CSV;
    if (!strcmp(s, "xlsx")) return ACDM_REPORT_XLSX;
    if (!strcmp(s, "pdf")) return ACDM_REPORT_PDF;
    return -1;
}

const char *acdm_report_content_type(acdm_report_format f)
{
    return f == ACDM_REPORT_CSV ? "text/csv; charset=utf-8"
         : f == ACDM_REPORT_XLSX ? "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
         : f == ACDM_REPORT_PDF ? "application/pdf"
         : "application/json";
}

/* Local midnight starting the day of t plus add_days (DST-safe: mktime decides the offset). */
static int64_t local_day(int64_t ms, int add_days, int set_mday, int add_months)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    if (set_mday) tm.tm_mday = set_mday;
    tm.tm_mday += add_days;
    tm.tm_mon += add_months;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    time_t m = mktime(&tm);
    return (int64_t)m * 1000;
}

/* The start of the interval of length s holding t, on the grid of local time. */
static int64_t align(int64_t t, int s)
{
    if (s >= 86400) return local_day(t, 0, 0, 0);
    time_t tt = (time_t)(t / 1000);
    struct tm tm;
    localtime_r(&tt, &tm);
    int64_t local = t + (int64_t)tm.tm_gmtoff * 1000, step = (int64_t)s * 1000;
    return local - (local % step + step) % step - (int64_t)tm.tm_gmtoff * 1000;
}

static int64_t next_bound(int64_t t, int s)
{
    return s >= 86400 ? local_day(t, 1, 0, 0) : t + (int64_t)s * 1000;
}

int acdm_report_params(const char *kind, const char *from, const char *until, const char *period,
                       const char *interval, int64_t now_ms, acdm_report_range *out, char *err, size_t errlen)
{
    static const char form[] = "expected an ISO 8601 time such as 2026-11-01 or 2026-11-01T08:00:00+01:00, or epoch milliseconds";
    memset(out, 0, sizeof *out);
    out->kind = ACDM_REPORT_QUEUES;
    if (kind) {
        int k = -1;
        for (int i = 0; i < 4; i++) if (!strcmp(kind, kind_names[i])) k = i;
        if (k < 0) { snprintf(err, errlen, "kind: expected queues, channels, agents or topics, got \"%.40s\"", kind); return ACDM_EINVAL; }
        out->kind = (acdm_report_kind)k;
    }
    int64_t f = now_ms, u = now_ms;
    if (from && acdm_time_parse(from, &f)) { snprintf(err, errlen, "from: \"%.40s\": %s", from, form); return ACDM_EINVAL; }
    if (period) {
        if (until) { snprintf(err, errlen, "until: not with period (the period is the day, week, month or quarter holding from)"); return ACDM_EINVAL; }
        if (!strcmp(period, "day")) { f = local_day(f, 0, 0, 0); u = local_day(f, 1, 0, 0); }
        else if (!strcmp(period, "week")) {        /* ISO weeks: Monday to Monday */
            time_t t = (time_t)(f / 1000);
            struct tm tm;
            localtime_r(&t, &tm);
            f = local_day(f, -((tm.tm_wday + 6) % 7), 0, 0);
            u = local_day(f, 7, 0, 0);
        } else if (!strcmp(period, "month")) { f = local_day(f, 0, 1, 0); u = local_day(f, 0, 1, 1); }
        else if (!strcmp(period, "quarter")) {
            time_t t = (time_t)(f / 1000);
            struct tm tm;
            localtime_r(&t, &tm);
            f = local_day(f, 0, 1, -(tm.tm_mon % 3));
            u = local_day(f, 0, 1, 3);
        } else { snprintf(err, errlen, "period: expected day, week, month or quarter, got \"%.40s\"", period); return ACDM_EINVAL; }
        snprintf(out->period, sizeof out->period, "%s", period);
    } else {
        if (!from) { snprintf(err, errlen, "from: required unless period is given (%s)", form); return ACDM_EINVAL; }
        if (until && acdm_time_parse(until, &u)) { snprintf(err, errlen, "until: \"%.40s\": %s", until, form); return ACDM_EINVAL; }
        if (u <= f) { snprintf(err, errlen, "until: must be after from"); return ACDM_EINVAL; }
        if (u - f > ACDM_REPORT_MAX_RANGE_MS) {
            snprintf(err, errlen, "until: the range is %.0f days; a report covers at most %lld days",
                     (double)(u - f) / 86400000.0, ACDM_REPORT_MAX_RANGE_MS / 86400000);
            return ACDM_EINVAL;
        }
    }
    int s;
    if (!interval) s = u - f <= 25LL * 3600 * 1000 ? 3600 : 86400;
    else if (!strcmp(interval, "15m")) s = 900;
    else if (!strcmp(interval, "1h")) s = 3600;
    else if (!strcmp(interval, "1d")) s = 86400;
    else { snprintf(err, errlen, "interval: expected 15m, 1h or 1d, got \"%.40s\"", interval); return ACDM_EINVAL; }
    f = align(f, s);
    long n = 0;
    for (int64_t t = f; t < u && n <= ACDM_REPORT_MAX_INTERVALS; t = next_bound(t, s)) n++;
    if (n > ACDM_REPORT_MAX_INTERVALS) {
        snprintf(err, errlen, "interval: %s over this range gives more than %d intervals; choose a larger interval or a shorter range",
                 acdm_report_interval_name(s), ACDM_REPORT_MAX_INTERVALS);
        return ACDM_EINVAL;
    }
    out->from_ms = f;
    out->until_ms = u;
    out->interval_s = s;
    return 0;
}

/* ------------------------------------------------------------------ building */

static int reason_index(acdm_report *r, const char *code)
{
    if (!*code) code = "none";
    for (size_t i = 0; i < r->n_reasons; i++)
        if (!strcmp(r->reasons[i], code)) return (int)i;
    char **v = realloc(r->reasons, (r->n_reasons + 1) * sizeof *v);
    if (!v) return -1;
    r->reasons = v;
    if (!(v[r->n_reasons] = strdup(code))) return -1;
    return (int)r->n_reasons++;
}

static series *series_of(acdm_report *r, const char *name)
{
    if (!name || !*name) return NULL;
    series *s = acdm_hmap_get(&r->series, name);
    if (s) return s;
    size_t n = strlen(name);
    s = calloc(1, sizeof *s + n + 1);
    if (!s) return NULL;
    memcpy(s->name, name, n + 1);
    s->cells = calloc((size_t)r->n_iv, sizeof *s->cells);
    s->reason = -1;
    if (!s->cells || acdm_hmap_put(&r->series, s->name, s)) { free(s->cells); free(s); return NULL; }
    return s;
}

static cell *cell_of(series *s, int iv)
{
    if (!s || iv < 0) return NULL;
    if (!s->cells[iv] && !(s->cells[iv] = calloc(1, sizeof(cell)))) return NULL;
    s->any = true;
    return s->cells[iv];
}

static void add_title(acdm_report *r, const char *name, const char *title)
{
    if (!name || !title) return;
    size_t n = strlen(name), t = strlen(title);
    char *e = malloc(n + t + 2);
    if (!e) return;
    memcpy(e, name, n + 1);
    memcpy(e + n + 1, title, t + 1);
    if (acdm_hmap_put(&r->titles, e, e)) free(e);
}

/* A queue's title or an agent's name from the config; the key itself when it has none. */
static const char *title_of(const acdm_report *r, const char *name)
{
    const char *e = acdm_hmap_get(&r->titles, name);
    return e ? e + strlen(e) + 1 : name;
}

acdm_report *acdm_report_new(const acdm_report_range *rg, const acdm_config *cfg)
{
    acdm_report *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->rg = *rg;
    acdm_hmap_init(&r->series);
    acdm_hmap_init(&r->sl);
    acdm_hmap_init(&r->titles);
    acdm_hmap_init(&r->tracks);
    acdm_hmap_init(&r->staff);
    acdm_hmap_init(&r->reason_labels);
    int n = 0;
    for (int64_t t = rg->from_ms; t < rg->until_ms; t = next_bound(t, rg->interval_s)) n++;
    r->bounds = malloc(((size_t)n + 1) * sizeof *r->bounds);
    if (!r->bounds) { acdm_report_free(r); return NULL; }
    int64_t t = rg->from_ms;
    for (int i = 0; i < n; i++, t = next_bound(t, rg->interval_s)) r->bounds[i] = t;
    r->bounds[n] = rg->until_ms;
    r->n_iv = n;
    const char *tz = getenv("TZ");
    snprintf(r->tz, sizeof r->tz, "%s", cfg && cfg->timezone ? cfg->timezone : tz ? tz : "UTC");
    if (!cfg) return r;
    for (size_t i = 0; i < cfg->n_queues; i++) {
        size_t l = strlen(cfg->queues[i].name);
        sl_entry *e = malloc(sizeof *e + l + 1);
        if (!e) continue;
        e->sl = cfg->queues[i].sl_seconds;
        e->target = cfg->queues[i].sl_target_pct;
        memcpy(e->name, cfg->queues[i].name, l + 1);
        if (acdm_hmap_put(&r->sl, e->name, e)) free(e);
        if (rg->kind == ACDM_REPORT_QUEUES) series_of(r, cfg->queues[i].name);
    }
    if (rg->kind == ACDM_REPORT_CHANNELS) {
        for (size_t i = 0; i < cfg->n_channels; i++) series_of(r, cfg->channels[i].name);
        series_of(r, "api");
    }
    if (rg->kind == ACDM_REPORT_AGENTS)
        for (size_t i = 0; i < cfg->n_reasons; i++) {
            reason_index(r, cfg->reasons[i].code);
            if (!cfg->reasons[i].label) continue;
            size_t a = strlen(cfg->reasons[i].code), b = strlen(cfg->reasons[i].label);
            char *e = malloc(a + b + 2);
            if (!e) continue;
            memcpy(e, cfg->reasons[i].code, a + 1);
            memcpy(e + a + 1, cfg->reasons[i].label, b + 1);
            if (acdm_hmap_put(&r->reason_labels, e, e)) free(e);
        }
    for (size_t i = 0; rg->kind == ACDM_REPORT_QUEUES && i < cfg->n_agents; i++) {
        const acdm_agent_def *a = &cfg->agents[i];
        size_t sz = sizeof(staff_agent) + strlen(a->id) + 1 + a->n_queues * (sizeof(char *) + sizeof(bool));
        for (size_t k = 0; k < a->n_queues; k++) sz += strlen(a->queues[k]) + 1;
        sz += sizeof(void *);   /* room to align the pointer array after the id */
        staff_agent *sa = calloc(1, sz);
        if (!sa) continue;
        char *p = sa->id;
        p = stpcpy(p, a->id) + 1;
        sa->n = a->n_queues;
        /* the pointer and flag arrays after the id, aligned, then the names */
        size_t off = (size_t)(p - (char *)sa);
        off = (off + sizeof(char *) - 1) / sizeof(char *) * sizeof(char *);
        sa->queues = (char **)(void *)((char *)sa + off);
        sa->joined = (bool *)(sa->queues + sa->n);
        p = (char *)(sa->joined + sa->n);
        for (size_t k = 0; k < a->n_queues; k++) {
            sa->queues[k] = p;
            sa->joined[k] = true;
            p = stpcpy(p, a->queues[k]) + 1;
        }
        if (acdm_hmap_put(&r->staff, sa->id, sa)) free(sa);
    }
    for (size_t i = 0; rg->kind == ACDM_REPORT_QUEUES && i < cfg->n_queues; i++)
        add_title(r, cfg->queues[i].name, cfg->queues[i].title);
    for (size_t i = 0; rg->kind == ACDM_REPORT_AGENTS && i < cfg->n_agents; i++)
        add_title(r, cfg->agents[i].id, cfg->agents[i].name);
    return r;
}

static void free_map(acdm_hmap *m, bool series_map)
{
    const char *k;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(m, &pos, &k, &v);) {
        if (series_map) {
            series *s = v;
            free(s->total.reason_ms);
        }
        free(v);
    }
    acdm_hmap_free(m);
}

void acdm_report_free(acdm_report *r)
{
    if (!r) return;
    const char *k;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(&r->series, &pos, &k, &v);) {
        series *s = v;
        for (int i = 0; i < r->n_iv; i++)
            if (s->cells[i]) { free(s->cells[i]->reason_ms); free(s->cells[i]); }
        free(s->cells);
    }
    free_map(&r->series, true);
    free_map(&r->sl, false);
    free_map(&r->titles, false);
    free_map(&r->tracks, false);
    free_map(&r->staff, false);
    free_map(&r->reason_labels, false);
    for (size_t i = 0; i < r->n_reasons; i++) free(r->reasons[i]);
    free(r->reasons);
    free(r->bounds);
    free(r->rows);
    free(r->totals);
    free(r);
}

/* The interval holding t, or -1 outside the report. */
static int interval_of(acdm_report *r, int64_t t)
{
    if (t < r->rg.from_ms || t >= r->rg.until_ms) return -1;
    int lo = 0, hi = r->n_iv - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (r->bounds[mid] <= t) lo = mid; else hi = mid - 1;
    }
    return lo;
}

static int sl_of(acdm_report *r, const char *queue)
{
    const sl_entry *e = queue ? acdm_hmap_get(&r->sl, queue) : NULL;
    return e ? e->sl : 20;
}

static track *track_of(acdm_report *r, const char *id, bool create)
{
    if (!id) return NULL;
    track *t = acdm_hmap_get(&r->tracks, id);
    if (t || !create) return t;
    size_t n = strlen(id);
    if (!(t = calloc(1, sizeof *t + n + 1))) return NULL;
    memcpy(t->id, id, n + 1);
    if (acdm_hmap_put(&r->tracks, t->id, t)) { free(t); return NULL; }
    return t;
}

static void add_reason_ms(cell *c, int reason, int64_t ms)
{
    if (reason < 0) return;
    if ((uint32_t)reason >= c->n_reason) {
        int64_t *v = realloc(c->reason_ms, ((size_t)reason + 1) * sizeof *v);
        if (!v) return;
        memset(v + c->n_reason, 0, ((size_t)reason + 1 - c->n_reason) * sizeof *v);
        c->reason_ms = v;
        c->n_reason = (uint32_t)reason + 1;
    }
    c->reason_ms[reason] += ms;
}

/* An agent's state from s->since to t, cut at the interval bounds. */
static void agent_segment(acdm_report *r, series *s, int64_t t)
{
    int64_t a = s->since > r->rg.from_ms ? s->since : r->rg.from_ms;
    int64_t b = t < r->rg.until_ms ? t : r->rg.until_ms;
    if (s->state == ST_OUT || b <= a) return;
    for (int iv = interval_of(r, a); iv >= 0 && iv < r->n_iv && r->bounds[iv] < b; iv++) {
        int64_t lo = r->bounds[iv] > a ? r->bounds[iv] : a, hi = r->bounds[iv + 1] < b ? r->bounds[iv + 1] : b;
        cell *c = cell_of(s, iv);
        if (!c || hi <= lo) continue;
        c->state_ms[s->state] += hi - lo;
        if (s->state == ST_NOT_READY) add_reason_ms(c, s->reason, hi - lo);
    }
}

/* A queue report's agent from sa->since to t: their logged-in time, cut at the interval
 * bounds, for each queue they are joined in. */
static void staff_segment(acdm_report *r, staff_agent *sa, int64_t t)
{
    int64_t a = sa->since > r->rg.from_ms ? sa->since : r->rg.from_ms;
    int64_t b = t < r->rg.until_ms ? t : r->rg.until_ms;
    if (sa->state == ST_OUT || b <= a) return;
    for (size_t k = 0; k < sa->n; k++) {
        if (!sa->joined[k]) continue;
        series *s = series_of(r, sa->queues[k]);
        for (int iv = interval_of(r, a); s && iv >= 0 && iv < r->n_iv && r->bounds[iv] < b; iv++) {
            int64_t lo = r->bounds[iv] > a ? r->bounds[iv] : a, hi = r->bounds[iv + 1] < b ? r->bounds[iv + 1] : b;
            cell *c = cell_of(s, iv);
            if (c && hi > lo) c->staffed_ms += hi - lo;
        }
    }
}

static acdm_mevent_type type_of(const char *t)
{
    for (int i = 0; i < ACDM_ME__COUNT; i++)
        if (!strcmp(t, acdm_mevent_name((acdm_mevent_type)i))) return (acdm_mevent_type)i;
    return ACDM_ME__COUNT;
}

static void add_topics(acdm_report *r, const acdm_event_row *ev, int iv)
{
    json_t *d = ev->detail_json ? json_loads(ev->detail_json, 0, NULL) : NULL;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(d, "topics"), i, t) {
        const char *name = json_is_string(t) ? json_string_value(t) : json_string_value(json_object_get(t, "name"));
        cell *c = cell_of(series_of(r, name), iv);
        if (c) c->topics++;
    }
    json_decref(d);
}

/* ------------------------------------------------------------------ CSAT (customer ratings)
 * A "csat" event (host->feedback: the web chat's satisfaction question) counts for the queue,
 * channel and agent it names, in the interval it was given: csat_count (ratings), csat_avg (the
 * mean score 1..5 of those with a score), csat_helped_pct ("Bent u geholpen?" yes / answered). */

static const char *const csat_cols[] = {"csat_count", "csat_avg", "csat_helped_pct"};

static size_t csat_ncols(const acdm_report *r) { return r->rg.kind == ACDM_REPORT_TOPICS ? 0 : 3; }

static void csat_add(acdm_report *r, const acdm_event_row *ev, int iv)
{
    if (iv < 0 || r->rg.kind == ACDM_REPORT_TOPICS) return;
    const char *key = r->rg.kind == ACDM_REPORT_CHANNELS ? ev->channel
                    : r->rg.kind == ACDM_REPORT_AGENTS ? ev->agent : ev->queue;
    if (!key || !*key) return;
    cell *c = cell_of(series_of(r, key), iv);
    json_t *d = ev->detail_json ? json_loads(ev->detail_json, 0, NULL) : NULL;
    if (!c || !json_is_object(d)) { json_decref(d); return; }
    json_t *sc = json_object_get(d, "score"), *hp = json_object_get(d, "helped");
    c->csat_n++;
    if (json_is_integer(sc) && json_integer_value(sc) >= 1 && json_integer_value(sc) <= 5) {
        c->csat_scored++;
        c->csat_score_sum += (uint64_t)json_integer_value(sc);
    }
    if (json_is_boolean(hp)) { c->csat_asked_helped++; c->csat_helped += json_is_true(hp); }
    json_decref(d);
}

static void csat_sum(cell *t, const cell *c)
{
    t->csat_n += c->csat_n;
    t->csat_scored += c->csat_scored;
    t->csat_score_sum += c->csat_score_sum;
    t->csat_asked_helped += c->csat_asked_helped;
    t->csat_helped += c->csat_helped;
}

typedef struct val val;
static void csat_value(const cell *c, size_t i, val *v);

void acdm_report_add(acdm_report *r, const acdm_event_row *ev)
{
    if (r->ended || !ev->type) return;
    if (!strcmp(ev->type, "csat")) { csat_add(r, ev, interval_of(r, ev->ts_ms)); return; }
    if (r->rg.kind == ACDM_REPORT_TOPICS) {
        if (!strcmp(ev->type, "topics")) add_topics(r, ev, interval_of(r, ev->ts_ms));
        return;
    }
    acdm_mevent_type type = type_of(ev->type);
    if (type == ACDM_ME__COUNT) return;
    int iv = interval_of(r, ev->ts_ms);   /* -1: before from (warm-up) or after until */
    acdm_event_detail d;
    acdm_stats_detail(ev->detail_json, &d);
    const char *reason = d.reason[0] ? d.reason : NULL;
    bool agents = r->rg.kind == ACDM_REPORT_AGENTS;
    const char *key = r->rg.kind == ACDM_REPORT_CHANNELS ? ev->channel : ev->queue;
    track *tr = NULL;

    if (r->rg.kind == ACDM_REPORT_QUEUES && ev->agent &&
        (type == ACDM_ME_AGENT_STATE || type == ACDM_ME_AGENT_JOIN || type == ACDM_ME_AGENT_LEAVE)) {
        staff_agent *sa = acdm_hmap_get(&r->staff, ev->agent);
        if (!sa) return;
        staff_segment(r, sa, ev->ts_ms);
        sa->since = ev->ts_ms;
        if (type == ACDM_ME_AGENT_STATE) sa->state = !strcmp(d.state, "logged_out") || !d.state[0] ? ST_OUT : ST_READY;
        else
            for (size_t k = 0; k < sa->n; k++)
                if (ev->queue && !strcmp(sa->queues[k], ev->queue)) sa->joined[k] = type == ACDM_ME_AGENT_JOIN;
        return;
    }
    if (type == ACDM_ME_AGENT_STATE) {
        if (!agents || !ev->agent) return;
        series *s = series_of(r, ev->agent);
        if (!s) return;
        agent_segment(r, s, ev->ts_ms);
        s->state = !strcmp(d.state, "ready") ? ST_READY : !strcmp(d.state, "not_ready") ? ST_NOT_READY : ST_OUT;
        s->reason = s->state == ST_NOT_READY ? reason_index(r, d.reason) : -1;
        s->since = ev->ts_ms;
        return;
    }
    if (!ev->bericht) return;

    /* follow the bericht: which queue it is in, who accepted it when */
    int64_t handle = -1, talk = -1, wrapup = 0;
    char agent[ACDM_NAME_MAX + 1] = "", from_queue[ACDM_NAME_MAX + 1] = "";
    switch (type) {
    case ACDM_ME_QUEUED: case ACDM_ME_ACCEPTED: case ACDM_ME_OVERFLOW: case ACDM_ME_MOVED: case ACDM_ME_UPDATED:
        if ((tr = track_of(r, ev->bericht, true))) {
            if (ev->queue) snprintf(tr->queue, sizeof tr->queue, "%s", ev->queue);
            if (type == ACDM_ME_ACCEPTED) {
                tr->accepted_ms = ev->ts_ms;
                tr->wrapup_ms = 0;
                snprintf(tr->agent, sizeof tr->agent, "%s", ev->agent ? ev->agent : "");
            }
        }
        break;
    case ACDM_ME_TRANSFERRED:
        /* counted for the queue it left: the event names the target queue (the source as its
         * reason) for a transfer to a queue, the same queue for one to a colleague */
        if ((tr = track_of(r, ev->bericht, false))) {
            snprintf(from_queue, sizeof from_queue, "%s", tr->queue);
            tr->accepted_ms = 0;
        } else {
            snprintf(from_queue, sizeof from_queue, "%s", reason && acdm_hmap_get(&r->sl, reason) ? reason : ev->queue ? ev->queue : "");
        }
        break;
    case ACDM_ME_WRAPUP_START:
        if ((tr = track_of(r, ev->bericht, false))) tr->wrapup_ms = ev->ts_ms;
        break;
    case ACDM_ME_DONE: case ACDM_ME_ABANDONED:
        if ((tr = acdm_hmap_del(&r->tracks, ev->bericht))) {
            if (type == ACDM_ME_DONE && tr->accepted_ms > 0 && ev->ts_ms >= tr->accepted_ms) {
                handle = ev->ts_ms - tr->accepted_ms;
                talk = tr->wrapup_ms >= tr->accepted_ms ? tr->wrapup_ms - tr->accepted_ms : handle;
                wrapup = handle - talk;
            }
            snprintf(agent, sizeof agent, "%s", tr->agent);
            free(tr);
        }
        break;
    default: break;
    }
    if (iv < 0) return;

    if (agents) {
        const char *who = type == ACDM_ME_DONE ? (agent[0] ? agent : ev->agent) : ev->agent;
        cell *c = cell_of(series_of(r, who), iv);
        if (!c) return;
        switch (type) {
        case ACDM_ME_OFFERED: c->offers++; break;
        case ACDM_ME_REJECTED: c->rejected++; break;
        case ACDM_ME_TIMEOUT: c->missed++; break;
        case ACDM_ME_OFFER_CANCELLED: c->withdrawn++; break;
        case ACDM_ME_TRANSFERRED: c->transfers++; break;
        case ACDM_ME_ACCEPTED: case ACDM_ME_DONE:
            /* an agent's acceptances are each theirs: every one counts (flow answered) */
            acdm_stats_count(&c->c, type == ACDM_ME_ACCEPTED ? ACDM_FLOW_ANSWERED : ACDM_FLOW_NONE, type, reason,
                             d.wait_ms, false, sl_of(r, ev->queue), handle);
            if (handle >= 0) { c->talk_ms += talk; c->wrapup_ms += wrapup; }
            break;
        default: break;
        }
        return;
    }
    if (type == ACDM_ME_TRANSFERRED) {
        const char *k = r->rg.kind == ACDM_REPORT_CHANNELS ? ev->channel : from_queue;
        cell *c = cell_of(series_of(r, k), iv);
        if (c) c->transfers++;
        return;
    }
    bool channels = r->rg.kind == ACDM_REPORT_CHANNELS;
    acdm_flow flow = !d.has_flow ? acdm_stats_legacy_flow(type, reason, channels)
                   : channels ? d.channel_flow : d.flow;
    if (flow == ACDM_FLOW_NONE && type != ACDM_ME_DONE) return;
    if (flow == ACDM_FLOW_MOVED) {   /* out of the queue it left (its name: the reason, an update's from) */
        const char *from = type == ACDM_ME_UPDATED ? d.from : reason;
        cell *fc = cell_of(series_of(r, from), iv);
        if (fc) fc->c.moved++;
        flow = ACDM_FLOW_OFFERED;
    }
    cell *c = cell_of(series_of(r, key), iv);
    if (!c) return;
    acdm_stats_count(&c->c, flow, type, reason, d.wait_ms, d.quick_drop, sl_of(r, ev->queue), handle);
    if ((flow == ACDM_FLOW_ANSWERED || (flow == ACDM_FLOW_ABANDONED && !d.quick_drop)) && d.wait_ms > c->longest_wait_ms)
        c->longest_wait_ms = d.wait_ms;
}

static void cell_sum(cell *t, const cell *c)
{
    t->c.offered += c->c.offered;
    t->c.answered += c->c.answered;
    t->c.abandoned += c->c.abandoned;
    t->c.quick_drops += c->c.quick_drops;
    t->c.moved += c->c.moved;
    t->c.answered_in_sl += c->c.answered_in_sl;
    t->c.handled += c->c.handled;
    t->c.outbound += c->c.outbound;
    t->c.outbound_failed += c->c.outbound_failed;
    t->c.wait_sum_ms += c->c.wait_sum_ms;
    t->c.handle_sum_ms += c->c.handle_sum_ms;
    t->transfers += c->transfers;
    t->offers += c->offers;
    t->rejected += c->rejected;
    t->missed += c->missed;
    t->withdrawn += c->withdrawn;
    t->topics += c->topics;
    if (c->longest_wait_ms > t->longest_wait_ms) t->longest_wait_ms = c->longest_wait_ms;
    t->talk_ms += c->talk_ms;
    t->wrapup_ms += c->wrapup_ms;
    for (int i = 0; i < 3; i++) t->state_ms[i] += c->state_ms[i];
    for (uint32_t i = 0; i < c->n_reason; i++) add_reason_ms(t, (int)i, c->reason_ms[i]);
    csat_sum(t, c);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(series *const *)a)->name, (*(series *const *)b)->name);
}

void acdm_report_end(acdm_report *r, int64_t now_ms)
{
    if (r->ended) return;
    r->ended = true;
    size_t n = 0;
    series **all = malloc((r->series.n + 1) * sizeof *all);
    if (!all) return;
    const char *k;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(&r->series, &pos, &k, &v);) {
        series *s = v;
        if (r->rg.kind == ACDM_REPORT_AGENTS) agent_segment(r, s, now_ms < r->rg.until_ms ? now_ms : r->rg.until_ms);
    }
    for (uint32_t pos = 0; acdm_hmap_next(&r->staff, &pos, &k, &v);)
        staff_segment(r, v, now_ms < r->rg.until_ms ? now_ms : r->rg.until_ms);
    for (uint32_t pos = 0; acdm_hmap_next(&r->series, &pos, &k, &v);) all[n++] = v;
    qsort(all, n, sizeof *all, by_name);
    /* queues and channels: every interval of every key (zeros too); agents and topics: the
     * intervals with something to say */
    bool dense = r->rg.kind == ACDM_REPORT_QUEUES || r->rg.kind == ACDM_REPORT_CHANNELS;
    r->rows = malloc(((size_t)r->n_iv * n + 1) * sizeof *r->rows);
    r->totals = malloc((n + 1) * sizeof *r->totals);
    if (!r->rows || !r->totals) { free(all); return; }
    for (int iv = 0; iv < r->n_iv; iv++)
        for (size_t i = 0; i < n; i++)
            if (dense || all[i]->cells[iv]) r->rows[r->n_rows++] = (rowref){all[i], iv};
    for (size_t i = 0; i < n; i++) {
        if (!dense && !all[i]->any) continue;
        for (int iv = 0; iv < r->n_iv; iv++)
            if (all[i]->cells[iv]) cell_sum(&all[i]->total, all[i]->cells[iv]);
        r->totals[r->n_totals++] = (rowref){all[i], -1};
    }
    free(all);
}

typedef struct { acdm_report *r; int n; } read_ctx;

static int read_row(void *user, int64_t id, const acdm_event_row *ev)
{
    (void)id;
    read_ctx *c = user;
    acdm_report_add(c->r, ev);
    c->n++;
    return 0;
}

int acdm_report_read(acdm_report *r, const char *db_path, int64_t now_ms, char *err, size_t errlen)
{
    /* only the events a kind counts from (what acdm_report_add looks at) */
    static const char *const q_types[] = {"queued", "accepted", "transferred", "done", "abandoned", "overflow",
                                          "moved", "updated", "agent_state", "agent_join", "agent_leave", "csat", NULL};
    static const char *const a_types[] = {"queued", "offered", "offer_cancelled", "accepted", "rejected", "timeout", "transferred",
                                          "wrapup_start", "done", "abandoned", "agent_state", "csat", NULL};
    static const char *const t_types[] = {"topics", NULL};
    const char *const *types = r->rg.kind == ACDM_REPORT_AGENTS ? a_types : r->rg.kind == ACDM_REPORT_TOPICS ? t_types : q_types;
    read_ctx c = {r, 0};
    int n = acdm_export_read_types(db_path, r->rg.from_ms - ACDM_REPORT_WARMUP_MS, r->rg.until_ms, types,
                                   read_row, &c, err, errlen);
    if (n < 0) return n;
    acdm_report_end(r, now_ms);
    return n;
}

/* ------------------------------------------------------------------ the table */

typedef enum { V_NULL, V_INT, V_NUM, V_STR } vtype;
struct val { vtype t; int64_t i; double d; const char *s; char buf[48]; };   /* s: buf or a key's name */

static const char *const queue_cols[] = {
    "interval_start", "interval_end", "#", "offered", "answered", "abandoned", "quick_drops",
    "moved", "transfers", "answered_in_sl", "service_level_pct", "asa_s", "longest_wait_s", "handled",
    "aht_s", "handle_time_s", "outbound", "outbound_failed", "agents_needed", "agents_logged_in"};
static const char *const agent_cols[] = {
    "interval_start", "interval_end", "agent", "offered", "accepted", "rejected", "missed",
    "withdrawn", "transfers", "handled", "handle_time_s", "aht_s", "talk_time_s", "wrapup_time_s",
    "logged_in_s", "ready_s", "not_ready_s", "outbound", "outbound_failed"};
static const char *const topic_cols[] = {"interval_start", "interval_end", "topic", "count"};
#define NCOL(a) (sizeof(a) / sizeof *(a))

static const char *const *fixed_cols(const acdm_report *r, size_t *n)
{
    switch (r->rg.kind) {
    case ACDM_REPORT_AGENTS: *n = NCOL(agent_cols); return agent_cols;
    case ACDM_REPORT_TOPICS: *n = NCOL(topic_cols); return topic_cols;
    default: *n = NCOL(queue_cols); return queue_cols;
    }
}

/* Queues and agents have their title / name from the config as column 3 (after the key). */
static bool titled(const acdm_report *r)
{
    return r->rg.kind == ACDM_REPORT_QUEUES || r->rg.kind == ACDM_REPORT_AGENTS;
}

/* The columns before the CSAT ones (which come last). */
static size_t base_columns(const acdm_report *r)
{
    size_t n;
    fixed_cols(r, &n);
    return n + titled(r) + (r->rg.kind == ACDM_REPORT_AGENTS ? r->n_reasons : 0);
}

size_t acdm_report_n_columns(const acdm_report *r)
{
    return base_columns(r) + csat_ncols(r);
}

const char *acdm_report_column(const acdm_report *r, size_t i)
{
    static _Thread_local char name[96];
    size_t n;
    const char *const *c = fixed_cols(r, &n);
    if (i >= base_columns(r)) return i - base_columns(r) < csat_ncols(r) ? csat_cols[i - base_columns(r)] : "";
    if (titled(r) && i == 3) return r->rg.kind == ACDM_REPORT_AGENTS ? "name" : "title";
    if (titled(r) && i > 3) i--;
    if (i < n) {
        if (strcmp(c[i], "#")) return c[i];
        return r->rg.kind == ACDM_REPORT_CHANNELS ? "channel" : "queue";
    }
    snprintf(name, sizeof name, "not_ready_%s_s", r->reasons[i - n]);
    return name;
}

static void v_int(val *v, int64_t i) { v->t = V_INT; v->i = i; }
static void v_sec(val *v, int64_t ms) { v->t = V_NUM; v->d = round((double)ms / 100.0) / 10.0; }
static void v_avg(val *v, int64_t sum, uint64_t n)
{
    if (!n) { v->t = V_NULL; return; }
    v_sec(v, (int64_t)llround((double)sum / (double)n));
}

static void local_iso(int64_t ms, char out[48])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    int off = (int)(tm.tm_gmtoff / 60), aoff = abs(off) % 1440;
    snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, off < 0 ? '-' : '+', aoff / 60, aoff % 60);
}

/* The value of column i of a row. */
static void value(acdm_report *r, const rowref *row, size_t i, val *v)
{
    memset(v, 0, sizeof *v);
    static const cell zero;
    const cell *c = row->iv < 0 ? &row->s->total : row->s->cells[row->iv] ? row->s->cells[row->iv] : &zero;
    if (i < 2) {
        v->t = V_STR;
        int64_t t = row->iv < 0 ? (i ? r->rg.until_ms : r->rg.from_ms) : r->bounds[row->iv + (int)i];
        local_iso(t, v->buf);
        v->s = v->buf;
        return;
    }
    if (i == 2) { v->t = V_STR; v->s = row->s->name; return; }
    if (i >= base_columns(r)) { csat_value(c, i - base_columns(r), v); return; }
    if (titled(r) && i == 3) { v->t = V_STR; v->s = title_of(r, row->s->name); return; }
    if (titled(r) && i > 3) i--;      /* the figures' numbering below is without the title */
    switch (r->rg.kind) {
    case ACDM_REPORT_TOPICS: v_int(v, (int64_t)c->topics); return;
    case ACDM_REPORT_AGENTS:
        switch (i) {
        case 3: v_int(v, (int64_t)c->offers); return;
        case 4: v_int(v, (int64_t)c->c.answered); return;
        case 5: v_int(v, (int64_t)c->rejected); return;
        case 6: v_int(v, (int64_t)c->missed); return;
        case 7: v_int(v, (int64_t)c->withdrawn); return;
        case 8: v_int(v, (int64_t)c->transfers); return;
        case 9: v_int(v, (int64_t)c->c.handled); return;
        case 10: v_sec(v, c->c.handle_sum_ms); return;
        case 11: v_avg(v, c->c.handle_sum_ms, c->c.handled); return;
        case 12: v_sec(v, c->talk_ms); return;
        case 13: v_sec(v, c->wrapup_ms); return;
        case 14: v_sec(v, c->state_ms[ST_READY] + c->state_ms[ST_NOT_READY]); return;
        case 15: v_sec(v, c->state_ms[ST_READY]); return;
        case 16: v_sec(v, c->state_ms[ST_NOT_READY]); return;
        case 17: v_int(v, (int64_t)c->c.outbound); return;
        case 18: v_int(v, (int64_t)c->c.outbound_failed); return;
        default: {
            size_t ri = i - NCOL(agent_cols);
            v_sec(v, ri < c->n_reason ? c->reason_ms[ri] : 0);
            return;
        }
        }
    default:
        switch (i) {
        case 3: v_int(v, (int64_t)c->c.offered); return;
        case 4: v_int(v, (int64_t)c->c.answered); return;
        case 5: v_int(v, (int64_t)c->c.abandoned); return;
        case 6: v_int(v, (int64_t)c->c.quick_drops); return;
        case 7: v_int(v, (int64_t)c->c.moved); return;
        case 8: v_int(v, (int64_t)c->transfers); return;
        case 9: v_int(v, (int64_t)c->c.answered_in_sl); return;
        case 10: {
            int64_t sl = acdm_stats_sl_tenths(&c->c);
            if (sl < 0) v->t = V_NULL;
            else { v->t = V_NUM; v->d = (double)sl / 10.0; }
            return;
        }
        case 11: v_avg(v, c->c.wait_sum_ms, c->c.answered); return;
        case 12: v_sec(v, c->longest_wait_ms); return;
        case 13: v_int(v, (int64_t)c->c.handled); return;
        case 14: v_avg(v, c->c.handle_sum_ms, c->c.handled); return;
        case 15: v_sec(v, c->c.handle_sum_ms); return;
        case 16: v_int(v, (int64_t)c->c.outbound); return;
        case 17: v_int(v, (int64_t)c->c.outbound_failed); return;
        case 18: case 19: {
            /* staffing per 15 minutes or hour of a queue (not totals, days or channels) */
            if (r->rg.kind != ACDM_REPORT_QUEUES || row->iv < 0 || r->rg.interval_s >= 86400) { v->t = V_NULL; return; }
            int64_t len = r->bounds[row->iv + 1] - r->bounds[row->iv];
            if (i == 19) { v->t = V_NUM; v->d = round((double)c->staffed_ms / (double)len * 10) / 10; return; }
            const cell *aht_of = c->c.handled ? c : &row->s->total;
            double aht = aht_of->c.handled ? (double)aht_of->c.handle_sum_ms / (double)aht_of->c.handled / 1000.0 : 0;
            const sl_entry *e = acdm_hmap_get(&r->sl, row->s->name);
            int n = acdm_erlang_agents((double)c->c.offered / ((double)len / 1000.0), aht,
                                       (e ? e->target : 80) / 100.0, e ? e->sl : 20, 10000);
            if (n < 0) v->t = V_NULL;
            else v_int(v, n);
            return;
        }
        default: v->t = V_NULL; return;
        }
    }
}

static void csat_value(const cell *c, size_t i, val *v)
{
    if (i == 0) { v_int(v, (int64_t)c->csat_n); return; }
    uint64_t n = i == 1 ? c->csat_scored : c->csat_asked_helped;
    if (!n) { v->t = V_NULL; return; }
    v->t = V_NUM;
    v->d = i == 1 ? round((double)c->csat_score_sum * 10.0 / (double)n) / 10.0
                  : round((double)c->csat_helped * 1000.0 / (double)n) / 10.0;
}

static void val_text(const val *v, char *out, size_t len)
{
    switch (v->t) {
    case V_NULL: out[0] = 0; break;
    case V_INT: snprintf(out, len, "%lld", (long long)v->i); break;
    case V_NUM: snprintf(out, len, "%.1f", v->d); break;
    case V_STR: snprintf(out, len, "%s", v->s); break;
    }
}

size_t acdm_report_n_rows(acdm_report *r, bool totals) { return totals ? r->n_totals : r->n_rows; }

void acdm_report_text(acdm_report *r, bool totals, size_t row, size_t col, char *out, size_t len)
{
    out[0] = 0;
    if (row >= (totals ? r->n_totals : r->n_rows) || col >= acdm_report_n_columns(r)) return;
    val v;
    value(r, totals ? &r->totals[row] : &r->rows[row], col, &v);
    val_text(&v, out, len);
}

const acdm_report_range *acdm_report_range_of(const acdm_report *r) { return &r->rg; }
const char *acdm_report_timezone(const acdm_report *r) { return r->tz; }

void acdm_report_cell(acdm_report *r, bool totals, size_t row, const char *col, char *out, size_t len)
{
    out[0] = 0;
    if (row >= (totals ? r->n_totals : r->n_rows)) return;
    for (size_t i = 0; i < acdm_report_n_columns(r); i++)
        if (!strcmp(acdm_report_column(r, i), col)) {
            val v;
            value(r, totals ? &r->totals[row] : &r->rows[row], i, &v);
            val_text(&v, out, len);
            return;
        }
}

/* ------------------------------------------------------------------ as the page shows it */

void acdm_report_set_display(acdm_report *r, const char *lang, bool excel)
{
    snprintf(r->lang, sizeof r->lang, "%s", lang && (!strcmp(lang, "nl") || !strcmp(lang, "en")) ? lang : "");
    r->excel = r->lang[0] && excel;
}

/* The Rapportages page's headers (core/ui/i18n.js, rep.col.*), Dutch and English. */
static const struct { const char *col, *nl, *en; } labels[] = {
    {"interval_start", "Van", "From"}, {"interval_end", "Tot", "To"},
    {"queue", "Wachtrij", "Queue"}, {"channel", "Kanaal", "Channel"}, {"agent", "Agent", "Agent"},
    {"topic", "Onderwerp", "Topic"}, {"title", "Naam", "Title"}, {"name", "Naam", "Name"},
    {"offered", "Aangeboden", "Offered"}, {"answered", "Beantwoord", "Answered"},
    {"abandoned", "Afgebroken", "Abandoned"}, {"quick_drops", "Snel opgehangen", "Quick drops"},
    {"transfers", "Doorverbonden", "Transfers"}, {"answered_in_sl", "Binnen norm beantwoord", "Answered within target"},
    {"service_level_pct", "Service level", "Service level"}, {"asa_s", "Gem. wachttijd", "Avg. speed of answer"},
    {"longest_wait_s", "Langste wachttijd", "Longest wait"}, {"handled", "Afgehandeld", "Handled"},
    {"aht_s", "Gem. afhandeltijd", "Avg. handling time"}, {"handle_time_s", "Totale afhandeltijd", "Total handling time"},
    {"accepted", "Aangenomen", "Accepted"}, {"rejected", "Geweigerd", "Rejected"}, {"missed", "Niet opgenomen", "Missed"},
    {"talk_time_s", "Gesprekstijd", "Talk time"}, {"wrapup_time_s", "Nawerktijd", "Wrap-up time"},
    {"logged_in_s", "Ingelogd", "Logged in"}, {"ready_s", "Beschikbaar", "Ready"},
    {"not_ready_s", "Niet beschikbaar", "Not ready"}, {"count", "Aantal", "Count"},
    {"outbound", "Uitgaand", "Outbound"}, {"outbound_failed", "Uitgaand mislukt", "Outbound failed"},
    {"moved", "Verplaatst", "Moved"}, {"withdrawn", "Ingetrokken", "Withdrawn"},
    {"agents_needed", "Agents nodig (Erlang C)", "Agents needed (Erlang C)"},
    {"agents_logged_in", "Agents ingelogd (gem.)", "Agents logged in (avg.)"},
    {"csat_count", "Beoordelingen", "Ratings"}, {"csat_avg", "Gem. tevredenheid (1–5)", "Avg. satisfaction (1–5)"},
    {"csat_helped_pct", "Geholpen", "Helped"},
};
/* The built-in reasons' words (i18n.js reason.*), before the config's labels. */
static const struct { const char *code, *nl, *en; } reason_words[] = {
    {"none", "zonder reden", "no reason"}, {"login", "net aangemeld", "just logged in"},
    {"no-answer", "niet beantwoord", "no answer"}, {"logout", "afgemeld", "logged out"},
    {"removed", "verwijderd", "removed"}, {"supervisor", "door supervisor", "by a supervisor"},
};

static bool english(const acdm_report *r) { return !strcmp(r->lang, "en"); }

const char *acdm_report_label(const acdm_report *r, size_t i, char *buf, size_t len)
{
    const char *col = acdm_report_column(r, i);
    bool en = english(r);
    for (size_t k = 0; k < sizeof labels / sizeof *labels; k++)
        if (!strcmp(col, labels[k].col)) return en ? labels[k].en : labels[k].nl;
    size_t n = strlen(col);
    if (n > 12 && !strncmp(col, "not_ready_", 10) && !strcmp(col + n - 2, "_s")) {
        char code[96];
        snprintf(code, sizeof code, "%.*s", (int)(n - 12), col + 10);
        const char *word = NULL;
        for (size_t k = 0; k < sizeof reason_words / sizeof *reason_words && !word; k++)
            if (!strcmp(code, reason_words[k].code)) word = en ? reason_words[k].en : reason_words[k].nl;
        const char *e = word ? NULL : acdm_hmap_get(&r->reason_labels, code);
        snprintf(buf, len, "%s: %s", en ? "Not ready" : "Niet beschikbaar", word ? word : e ? e + strlen(e) + 1 : code);
        return buf;
    }
    return col;
}

/* m:ss or h:mm:ss of whole seconds (common.js dur). */
static void duration(double s, char *out, size_t len)
{
    long long t = s > 0 ? (long long)floor(s + 1e-9) : 0;
    if (t >= 3600) snprintf(out, len, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, len, "%lld:%02lld", t / 60, t % 60);
}

/* A number as the page's toLocaleString: no decimals when whole, else one; nl a comma. */
static void decimal(const acdm_report *r, double d, int decimals, char *out, size_t len)
{
    if (decimals == 0 && d == floor(d)) snprintf(out, len, "%.0f", d);
    else snprintf(out, len, "%.1f", d);
    char *dot = strchr(out, '.');
    if (dot && !english(r)) *dot = ',';
}

bool acdm_report_display(acdm_report *r, bool totals, size_t row, size_t col, bool dash, char *out, size_t len)
{
    out[0] = 0;
    if (row >= (totals ? r->n_totals : r->n_rows) || col >= acdm_report_n_columns(r)) return false;
    val v;
    value(r, totals ? &r->totals[row] : &r->rows[row], col, &v);
    const char *name = acdm_report_column(r, col);
    size_t n = strlen(name);
    if (v.t == V_NULL) { snprintf(out, len, "%s", dash ? "\xE2\x80\x93" : ""); return true; }
    if (col < 2) {   /* "2026-11-20T08:00:00+01:00" -> "20-11-2026 08:00" ("20-11-2026" for days) */
        const char *t = v.s;
        if (strlen(t) >= 16) {
            if (r->rg.interval_s >= 86400) snprintf(out, len, "%.2s-%.2s-%.4s", t + 8, t + 5, t);
            else snprintf(out, len, "%.2s-%.2s-%.4s %.5s", t + 8, t + 5, t, t + 11);
            return false;
        }
    }
    if (v.t == V_STR) { snprintf(out, len, "%s", v.s); return false; }
    if (v.t == V_INT) { snprintf(out, len, "%lld", (long long)v.i); return true; }
    if (n > 4 && !strcmp(name + n - 4, "_pct")) {   /* service_level_pct, csat_helped_pct */
        decimal(r, v.d, 1, out, len);   /* always one decimal, as the page */
        snprintf(out + strlen(out), len - strlen(out), "%%");
        return true;
    }
    if (n > 2 && !strcmp(name + n - 2, "_s")) { duration(v.d, out, len); return true; }
    decimal(r, v.d, 0, out, len);
    return true;
}

/* ------------------------------------------------------------------ writers */

static void json_rows(acdm_report *r, acdm_sbuf *b, const rowref *rows, size_t n)
{
    size_t nc = acdm_report_n_columns(r);
    acdm_sb_str(b, "[");
    for (size_t x = 0; x < n; x++) {
        acdm_sb_str(b, x ? ",\n{" : "\n{");
        for (size_t i = 0; i < nc; i++) {
            val v;
            char t[64];
            value(r, &rows[x], i, &v);
            if (i) acdm_sb_str(b, ",");
            acdm_sb_jstr(b, acdm_report_column(r, i));
            acdm_sb_str(b, ":");
            if (v.t == V_STR) acdm_sb_jstr(b, v.s);
            else if (v.t == V_NULL) acdm_sb_str(b, "null");
            else { val_text(&v, t, sizeof t); acdm_sb_str(b, t); }
        }
        acdm_sb_str(b, "}");
    }
    acdm_sb_str(b, "]");
}

static int write_json(acdm_report *r, acdm_sbuf *out)
{
    acdm_sbuf b = {0};
    char a[48], z[48];
    local_iso(r->rg.from_ms, a);
    local_iso(r->rg.until_ms, z);
    acdm_sb_str(&b, "{\"kind\":"); acdm_sb_jstr(&b, acdm_report_kind_name(r->rg.kind));
    acdm_sb_str(&b, ",\"period\":"); acdm_sb_jstr(&b, r->rg.period[0] ? r->rg.period : NULL);
    acdm_sb_str(&b, ",\"interval\":"); acdm_sb_jstr(&b, acdm_report_interval_name(r->rg.interval_s));
    acdm_sb_str(&b, ",\"timezone\":"); acdm_sb_jstr(&b, r->tz);
    acdm_sb_str(&b, ",\"from\":"); acdm_sb_jstr(&b, a);
    acdm_sb_str(&b, ",\"until\":"); acdm_sb_jstr(&b, z);
    acdm_sb_str(&b, ",\"from_ms\":"); acdm_sb_int(&b, r->rg.from_ms);
    acdm_sb_str(&b, ",\"until_ms\":"); acdm_sb_int(&b, r->rg.until_ms);
    acdm_sb_str(&b, ",\"columns\":[");
    for (size_t i = 0; i < acdm_report_n_columns(r); i++) {
        if (i) acdm_sb_str(&b, ",");
        acdm_sb_jstr(&b, acdm_report_column(r, i));
    }
    acdm_sb_str(&b, "],\"rows\":");
    json_rows(r, &b, r->rows, r->n_rows);
    acdm_sb_str(&b, ",\"totals\":");
    json_rows(r, &b, r->totals, r->n_totals);
    acdm_sb_str(&b, "}\n");
    if (b.oom) { free(b.p); return ACDM_ENOMEM; }
    acdm_sb_add(out, b.p, b.n);
    free(b.p);
    return out->oom ? ACDM_ENOMEM : 0;
}

/* The CSV as the page shows it (acdm_report_set_display): its headers and values, the rows'
 * interval as "dd-mm-yyyy hh:mm"; for Excel ';' between fields and a BOM (Excel then reads
 * UTF-8 and, in a Dutch locale, the decimal commas). */
static int write_csv_display(acdm_report *r, acdm_sbuf *out)
{
    size_t nc = acdm_report_n_columns(r);
    const char *sep = r->excel ? ";" : ",";
    if (r->excel) acdm_sb_add(out, "\xEF\xBB\xBF", 3);
    char buf[256];
    for (size_t i = 0; i < nc; i++) {
        if (i) acdm_sb_add(out, sep, 1);
        acdm_csv_field(out, acdm_report_label(r, i, buf, sizeof buf));
    }
    acdm_sb_add(out, "\r\n", 2);
    for (size_t x = 0; x < r->n_rows; x++) {
        for (size_t i = 0; i < nc; i++) {
            char t[512];
            bool fig = acdm_report_display(r, false, x, i, false, t, sizeof t);
            if (i) acdm_sb_add(out, sep, 1);
            if (r->excel && !fig && strchr("=+-@\t\r", t[0]) && t[0]) {   /* a name is never a formula in Excel */
                memmove(t + 1, t, strnlen(t, sizeof t - 2) + 1);
                t[0] = '\'';
                t[sizeof t - 1] = 0;
            }
            if (r->excel && strchr(t, ';') && !strpbrk(t, ",\"\r\n")) {   /* acdm_csv_field quotes for ',' */
                acdm_sb_add(out, "\"", 1);
                acdm_sb_str(out, t);
                acdm_sb_add(out, "\"", 1);
            } else {
                acdm_csv_field(out, t);
            }
        }
        acdm_sb_add(out, "\r\n", 2);
    }
    return out->oom ? ACDM_ENOMEM : 0;
}

static int write_csv(acdm_report *r, acdm_sbuf *out)
{
    if (r->lang[0]) return write_csv_display(r, out);
    size_t nc = acdm_report_n_columns(r);
    for (size_t i = 0; i < nc; i++) {
        if (i) acdm_sb_add(out, ",", 1);
        acdm_csv_field(out, acdm_report_column(r, i));
    }
    acdm_sb_add(out, "\r\n", 2);
    for (size_t x = 0; x < r->n_rows; x++) {
        for (size_t i = 0; i < nc; i++) {
            val v;
            char t[64];
            value(r, &r->rows[x], i, &v);
            val_text(&v, t, sizeof t);
            if (i) acdm_sb_add(out, ",", 1);
            acdm_csv_field(out, v.t == V_STR ? v.s : t);   /* a name whole, however long */
        }
        acdm_sb_add(out, "\r\n", 2);
    }
    return out->oom ? ACDM_ENOMEM : 0;
}

static void xlsx_sheet(acdm_report *r, lxw_workbook *wb, const char *name, const rowref *rows, size_t n,
                       lxw_format *bold)
{
    lxw_worksheet *ws = workbook_add_worksheet(wb, name);
    if (!ws) return;
    size_t nc = acdm_report_n_columns(r);
    for (size_t i = 0; i < nc; i++)
        worksheet_write_string(ws, 0, (lxw_col_t)i, acdm_report_column(r, i), bold);
    worksheet_set_column(ws, 0, 1, 26, NULL);
    worksheet_set_column(ws, 2, 2, 18, NULL);
    worksheet_freeze_panes(ws, 1, 3);
    for (size_t x = 0; x < n; x++)
        for (size_t i = 0; i < nc; i++) {
            val v;
            value(r, &rows[x], i, &v);
            lxw_row_t row = (lxw_row_t)(x + 1);
            if (v.t == V_STR) worksheet_write_string(ws, row, (lxw_col_t)i, v.s, NULL);
            else if (v.t == V_INT) worksheet_write_number(ws, row, (lxw_col_t)i, (double)v.i, NULL);
            else if (v.t == V_NUM) worksheet_write_number(ws, row, (lxw_col_t)i, v.d, NULL);
        }
}

static int write_xlsx(acdm_report *r, acdm_sbuf *out, const char *tmpdir, char *err, size_t errlen)
{
    if (r->n_rows + 1 > 1048576) { snprintf(err, errlen, "interval: more rows than an Excel sheet holds"); return ACDM_EINVAL; }
    char path[512];
    snprintf(path, sizeof path, "%s/acdm-report-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) { snprintf(err, errlen, "cannot create a temporary file in %s", tmpdir ? tmpdir : "/tmp"); return ACDM_EIO; }
    close(fd);
    /* constant memory: rows go to the file as they are written (a big report stays small in
     * memory); strings are then written inline */
    lxw_workbook_options opt = {.constant_memory = LXW_TRUE, .tmpdir = (char *)(tmpdir && *tmpdir ? tmpdir : "/tmp")};
    lxw_workbook *wb = workbook_new_opt(path, &opt);
    int rc = 0;
    if (!wb) { unlink(path); snprintf(err, errlen, "xlsx: cannot start the workbook"); return ACDM_EIO; }
    lxw_format *bold = workbook_add_format(wb);
    format_set_bold(bold);
    xlsx_sheet(r, wb, "Rapport", r->rows, r->n_rows, bold);
    xlsx_sheet(r, wb, "Totaal", r->totals, r->n_totals, bold);
    lxw_error e = workbook_close(wb);
    if (e != LXW_NO_ERROR) { snprintf(err, errlen, "xlsx: %s", lxw_strerror(e)); rc = ACDM_EIO; }
    FILE *f = rc ? NULL : fopen(path, "rb");
    if (f) {
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) acdm_sb_add(out, buf, n);
        fclose(f);
    } else if (!rc) {
        snprintf(err, errlen, "xlsx: cannot read %s back", path);
        rc = ACDM_EIO;
    }
    unlink(path);
    return rc ? rc : out->oom ? ACDM_ENOMEM : 0;
}

int acdm_report_write(acdm_report *r, acdm_report_format f, acdm_sbuf *out, const char *tmpdir,
                      char *err, size_t errlen)
{
    if (!r->ended || !r->rows || !r->totals) { snprintf(err, errlen, "out of memory"); return ACDM_ENOMEM; }
    int rc = f == ACDM_REPORT_CSV ? write_csv(r, out)
           : f == ACDM_REPORT_XLSX ? write_xlsx(r, out, tmpdir, err, errlen)
           : f == ACDM_REPORT_PDF ? acdm_report_pdf(r, out, err, errlen)
           : write_json(r, out);
    if (rc == ACDM_ENOMEM) snprintf(err, errlen, "out of memory");
    return rc;
}
