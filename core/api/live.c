/* live.c -- supervisors' live figures and commands over /ws, agents' queue_stats/colleagues,
 * audit events. One 1 s uv timer; every message is built once per tick and the same text is
 * sent to every session that gets it (agents with the same queues share one text). */
#include "api/live.h"
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO "live"
#define TICK_MS 1000
#define AGENT_EVERY 2        /* agents' pushes every 2nd tick (2 s) */
#define MAX_COLLEAGUES 25    /* per colleagues message: logged-in ones first; "total" has the count */
#define BUSY_SOCKET (256u * 1024u)  /* a push is skipped for a socket with this much still unsent */
#define RESEND_MS 30000      /* an agent's unchanged queue_stats/colleagues are sent again after this */

struct acdm_live {
    acdm_engine *e;
    acdm_stats *stats;
    uv_timer_t timer;
    acdm_session **sups;
    size_t n_sups, cap_sups;
    uint64_t ticks;
    /* today's figures read from the event log on libuv's thread pool while acdmd serves */
    uv_work_t rebuild_req;
    acdm_stats_rebuild *rebuild;    /* set while the read is under way */
    int rebuild_n;
    int64_t rebuild_t0;
    bool closing, timer_closed;
};

static void on_tick(uv_timer_t *t);
static void live_free(acdm_live *l);

static void rebuild_work(uv_work_t *w)
{
    acdm_live *l = w->data;
    l->rebuild_n = acdm_stats_rebuild_run(l->rebuild);
}

static void rebuild_done(uv_work_t *w, int status)
{
    acdm_live *l = w->data;
    if (status == 0 && l->rebuild_n >= 0 && !l->closing) {
        acdm_stats_rebuild_merge(l->rebuild, l->stats, acdm_now_ms());
        if (l->rebuild_n > 0)
            acdm_log(ACDM_LOG_INFO, WHO, "today's figures rebuilt from %d events in %lld ms (serving meanwhile)",
                     l->rebuild_n, (long long)(acdm_now_ms() - l->rebuild_t0));
    }
    acdm_stats_rebuild_free(l->rebuild);
    l->rebuild = NULL;
    if (l->closing && l->timer_closed) live_free(l);
}

#define LIVE(e) ((acdm_live *)acdm_engine_state(e, &acdm_live_module))

static void live_model_event(acdm_engine *e, void *user, const acdm_mevent *ev)
{
    (void)user;
    acdm_live_event(e, ev);
}

/* ------------------------------------------------------------------ life cycle */

int acdm_live_create(acdm_engine *e)
{
    acdm_live *l = calloc(1, sizeof *l);
    if (!l) return ACDM_ENOMEM;
    l->e = e;
    l->stats = acdm_stats_create();
    if (!l->stats) { free(l); return ACDM_ENOMEM; }
    /* events from now on count live; the day before now is read on the thread pool (a busy
     * day's million events take 1-2 s: restart time, not figures, is what must not wait) */
    l->rebuild_t0 = acdm_now_ms();
    l->rebuild = acdm_stats_rebuild_new(acdm_model_config(acdm_engine_model(e)), acdm_store_db_path(acdm_engine_store(e)),
                                        l->rebuild_t0);
    acdm_stats_roll(l->stats, l->rebuild_t0);
    l->rebuild_req.data = l;
    if (l->rebuild && uv_queue_work(acdm_engine_loop(e), &l->rebuild_req, rebuild_work, rebuild_done)) {
        acdm_log(ACDM_LOG_ERR, WHO, "today's figures not rebuilt: no worker");
        acdm_stats_rebuild_free(l->rebuild);
        l->rebuild = NULL;
    }
    uv_timer_init(acdm_engine_loop(e), &l->timer);
    l->timer.data = l;
    acdm_engine_set_state(e, &acdm_live_module, l);
    uv_timer_start(&l->timer, on_tick, TICK_MS, TICK_MS);
    acdm_engine_subscriber sub = {.order = ACDM_SUB_FIGURES, .model_event = live_model_event};
    return acdm_engine_subscribe(e, &sub);
}

static void live_free(acdm_live *l)
{
    acdm_stats_destroy(l->stats);
    free(l->sups);
    free(l);
}

static void live_closed(uv_handle_t *h)
{
    acdm_live *l = h->data;
    l->timer_closed = true;
    if (!l->rebuild) live_free(l);   /* else when the read returns (told to stop) */
}

void acdm_live_destroy(acdm_engine *e)
{
    acdm_live *l = LIVE(e);
    if (!l) return;
    acdm_engine_set_state(e, &acdm_live_module, NULL);
    l->closing = true;
    acdm_stats_rebuild_stop(l->rebuild);
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, live_closed);
}

acdm_stats *acdm_live_stats(acdm_engine *e) { return LIVE(e) ? LIVE(e)->stats : NULL; }

void acdm_live_event(acdm_engine *e, const acdm_mevent *ev)
{
    if (!LIVE(e)) return;
    acdm_stats_event(LIVE(e)->stats, ev);
    if (ev->type == ACDM_ME_OFFERED && ev->b && ev->a) acdm_screenpop_offer(e, ev->b, ev->a);
}

json_t *acdm_live_queues_json(acdm_engine *e)
{
    json_t *arr = acdm_engine_queues_json(e);
    if (LIVE(e)) acdm_stats_decorate_queues(LIVE(e)->stats, acdm_engine_model(e), arr, acdm_now_ms());
    return arr;
}

/* ------------------------------------------------------------------ pushes */

static void send_all_sups(acdm_live *l, const char *txt, size_t len)
{
    for (size_t i = 0; i < l->n_sups; i++)
        if (acdm_ws_queued(l->sups[i]->ws) <= BUSY_SOCKET + len)   /* a slow one skips a tick */
            acdm_ws_send(l->sups[i]->ws, txt, len);
}

/* What agents with the same configured queues get; cached per tick by that set. */
typedef struct {
    char *msg[2];             /* queue_stats, colleagues */
    uint64_t hash[2];
    char key[];
} agent_msgs;

static uint64_t text_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1;
}

static void push_agents(acdm_live *l, int64_t now)
{
    acdm_engine *e = l->e;
    if (!acdm_api_sessions(e)->n) return;
    acdm_model *m = acdm_engine_model(e);
    size_t nq = acdm_model_n_queues(m), na = acdm_model_n_agents(m);
    /* fragments, built once: one per queue, one per agent */
    char **qfrag = calloc(nq ? nq : 1, sizeof *qfrag);
    char **afrag = calloc(na ? na : 1, sizeof *afrag);
    uint32_t *stamp = calloc(na ? na : 1, sizeof *stamp);
    acdm_hmap qidx, aidx, cache;
    acdm_hmap_init(&qidx);
    acdm_hmap_init(&aidx);
    acdm_hmap_init(&cache);
    if (!qfrag || !afrag || !stamp) goto out;
    for (size_t i = 0; i < nq; i++) {
        const acdm_queue *q = acdm_model_queue_at(m, i);
        acdm_sbuf b = {0};
        acdm_stats_queue_brief_text(&b, q, now);
        qfrag[i] = b.oom ? (free(b.p), NULL) : b.p;
        acdm_hmap_put(&qidx, q->name, (void *)(uintptr_t)(i + 1));
    }
    for (size_t i = 0; i < na; i++) {
        const acdm_agent *a = acdm_model_agent_at(m, i);
        acdm_sbuf b = {0};
        acdm_stats_agent_text(&b, a, false);
        afrag[i] = b.oom ? (free(b.p), NULL) : b.p;
        acdm_hmap_put(&aidx, a->id, (void *)(uintptr_t)(i + 1));
    }
    uint32_t stamp_no = 0;
    const char *id;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(acdm_api_sessions(e), &pos, &id, &v);) {
        const acdm_agent *a = acdm_model_agent(m, id);
        if (!a) continue;
        acdm_sbuf key = {0};
        for (uint32_t i = 0; i < a->n_members; i++) {
            acdm_sb_str(&key, a->members[i]->queue->name);
            acdm_sb_add(&key, "\n", 1);
        }
        if (key.oom) { free(key.p); continue; }
        agent_msgs *am = acdm_hmap_get(&cache, key.p ? key.p : "");
        if (!am) {
            size_t kl = key.n;
            am = calloc(1, sizeof *am + kl + 1);
            if (!am) { free(key.p); continue; }
            if (kl) memcpy(am->key, key.p, kl);
            am->key[kl] = 0;
            acdm_sbuf qs = {0}, col = {0};
            acdm_sb_str(&qs, "{\"type\":\"queue_stats\",\"queues\":[");
            stamp_no++;
            bool qfirst = true;
            for (uint32_t i = 0; i < a->n_members; i++) {
                const acdm_queue *q = a->members[i]->queue;
                uintptr_t qi = (uintptr_t)acdm_hmap_get(&qidx, q->name);
                if (qi && qfrag[qi - 1]) {
                    if (!qfirst) acdm_sb_add(&qs, ",", 1);
                    acdm_sb_str(&qs, qfrag[qi - 1]);
                    qfirst = false;
                }
                for (uint32_t k = 0; k < q->n_members; k++) {
                    uintptr_t ai = (uintptr_t)acdm_hmap_get(&aidx, q->members[k]->agent->id);
                    if (ai) stamp[ai - 1] = stamp_no;
                }
            }
            acdm_sb_str(&qs, "]}");
            /* the colleagues: logged-in ones first, then logged out, at most MAX_COLLEAGUES (a
             * big queue would otherwise make this quadratic in the number of agents) */
            acdm_sb_str(&col, "{\"type\":\"colleagues\",\"agents\":[");
            int listed = 0, total = 0;
            for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < na; i++) {
                    if (stamp[i] != stamp_no || !afrag[i]) continue;
                    bool out = acdm_model_agent_at(m, i)->state == ACDM_AGENT_LOGGED_OUT;
                    if (out != (pass == 1)) continue;
                    total++;
                    if (listed == MAX_COLLEAGUES) continue;
                    if (listed) acdm_sb_add(&col, ",", 1);
                    acdm_sb_str(&col, afrag[i]);
                    listed++;
                }
            acdm_sb_str(&col, "],\"total\":");
            acdm_sb_int(&col, total);
            acdm_sb_str(&col, "}");
            am->msg[0] = qs.oom ? (free(qs.p), NULL) : qs.p;
            am->msg[1] = col.oom ? (free(col.p), NULL) : col.p;
            for (int k = 0; k < 2; k++) am->hash[k] = text_hash(am->msg[k]);
            if (acdm_hmap_put(&cache, am->key, am)) {
                free(am->msg[0]); free(am->msg[1]); free(am);
                free(key.p);
                continue;
            }
        }
        free(key.p);
        /* sent when it changed since the last one this session got (and every RESEND_MS) */
        for (acdm_session *s = v; s; s = s->next_of_agent) {
            if (acdm_ws_queued(s->ws) > BUSY_SOCKET) continue;   /* the next one supersedes it */
            for (int k = 0; k < 2; k++) {
                if (!am->msg[k] || (s->live_sent[k] == am->hash[k] && now - s->live_sent_ms[k] < RESEND_MS))
                    continue;
                if (acdm_ws_send(s->ws, am->msg[k], strlen(am->msg[k]))) continue;
                s->live_sent[k] = am->hash[k];
                s->live_sent_ms[k] = now;
            }
        }
    }
out:
    for (uint32_t pos = 0; acdm_hmap_next(&cache, &pos, &id, &v);) {
        agent_msgs *am = v;
        free(am->msg[0]); free(am->msg[1]); free(am);
    }
    for (size_t i = 0; qfrag && i < nq; i++) free(qfrag[i]);
    for (size_t i = 0; afrag && i < na; i++) free(afrag[i]);
    free(qfrag); free(afrag); free(stamp);
    acdm_hmap_free(&qidx);
    acdm_hmap_free(&aidx);
    acdm_hmap_free(&cache);
}

void acdm_live_push_now(acdm_engine *e, bool agents_too)
{
    acdm_live *l = LIVE(e);
    if (!l || acdm_engine_stopping(e)) return;
    int64_t now = acdm_now_ms();
    if (l->n_sups) {
        size_t len;
        char *txt = acdm_stats_text(l->stats, acdm_engine_model(e), "stats", now, &len);
        if (txt) send_all_sups(l, txt, len);
        free(txt);
    }
    if (agents_too) push_agents(l, now);
}

static void on_tick(uv_timer_t *t)
{
    acdm_live *l = t->data;
    l->ticks++;
    acdm_live_push_now(l->e, l->ticks % AGENT_EVERY == 0);
}

/* ------------------------------------------------------------------ supervisor sessions */

void acdm_live_ws_open(acdm_engine *e, acdm_session *s)
{
    acdm_live *l = LIVE(e);
    if (!l) return;
    if (l->n_sups == l->cap_sups) {
        size_t cap = l->cap_sups ? l->cap_sups * 2 : 8;
        acdm_session **n = realloc(l->sups, cap * sizeof *n);
        if (!n) return;
        l->sups = n;
        l->cap_sups = cap;
    }
    l->sups[l->n_sups++] = s;
    size_t len;
    char *txt = acdm_stats_text(l->stats, acdm_engine_model(e), "snapshot", acdm_now_ms(), &len);
    if (txt) acdm_ws_send(s->ws, txt, len);
    free(txt);
}

void acdm_live_ws_close(acdm_engine *e, acdm_session *s)
{
    acdm_live *l = LIVE(e);
    if (!l) return;
    for (size_t i = 0; i < l->n_sups; i++)
        if (l->sups[i] == s) {
            l->sups[i] = l->sups[--l->n_sups];
            return;
        }
}

/* ------------------------------------------------------------------ audit */

void acdm_live_audit(acdm_engine *e, const acdm_principal *actor, const char *action,
                     const char *target, json_t *extra)
{
    acdm_engine_audit(e, actor, action, target, extra);   /* audit.c */
    json_decref(extra);
}

/* ------------------------------------------------------------------ supervisor commands */

/* Sent after the commit of what the command wrote (the override, the audit event). */
static void sup_reply(acdm_engine *e, acdm_session *s, const char *re, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void sup_reply(acdm_engine *e, acdm_session *s, const char *re, const char *code, const char *fmt, ...)
{
    json_t *j;
    if (!code) {
        j = json_pack("{s:s, s:s}", "type", "ack", "re", re);
    } else {
        char text[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        j = json_pack("{s:s, s:s, s:s, s:s, s:n}", "type", "error", "code", code, "text", text,
                      "re", re, "bericht");
    }
    acdm_api_send_committed(e, s, j, code ? NULL : re, NULL);
}

static const char *code_of(int rc)
{
    return rc == ACDM_ESTATE ? "state" : rc == ACDM_EPERM ? "forbidden" : rc == ACDM_ENOENT ? "not_found"
         : rc == ACDM_EFULL ? "full" : rc == ACDM_ECLOSED ? "closed" : "invalid";
}

bool acdm_live_ws_message(acdm_engine *e, acdm_session *s, json_t *msg, const char *type)
{
    bool queue_cmd = !strcmp(type, "queue_open") || !strcmp(type, "queue_close");
    bool agent_cmd = !strcmp(type, "agent_login") || !strcmp(type, "agent_logout") ||
                     !strcmp(type, "agent_ready") || !strcmp(type, "agent_not_ready");
    if (!queue_cmd && !agent_cmd) return acdm_supervise_ws_message(e, s, msg, type);   /* api_supervise.c */
    const char *field = queue_cmd ? "queue" : "agent";
    json_t *jv = json_object_get(msg, field);
    if (!json_is_string(jv) || !*json_string_value(jv)) {
        sup_reply(e, s, type, "invalid", "%s: required (a%s %s name)", field, queue_cmd ? "" : "n", field);
        return true;
    }
    const char *target = json_string_value(jv);
    char err[4096];
    int rc;
    if (queue_cmd) {
        bool close = !strcmp(type, "queue_close");
        rc = acdm_engine_queue_set_closed_by(e, target, close, s->who.name, err, sizeof err);
        if (rc) {
            sup_reply(e, s, type, code_of(rc), "%s: %s", type, err);
            return true;
        }
        acdm_log(ACDM_LOG_NOTICE, WHO, "queue %s %s by %s", target, close ? "closed" : "opened", s->who.name);
    } else {
        const char *reason = NULL;
        json_t *rv = json_object_get(msg, "reason");
        if (rv && !json_is_null(rv) && !json_is_string(rv)) {
            sup_reply(e, s, type, "invalid", "reason: expected a string (a configured reason code)");
            return true;
        }
        reason = json_string_value(rv);
        rc = acdm_live_agent_action(e, type + 6, target, reason, err, sizeof err);
        if (rc) {
            sup_reply(e, s, type, code_of(rc), "%s: %s", type, err);
            return true;
        }
    }
    acdm_live_audit(e, &s->who, type, target, NULL);
    sup_reply(e, s, type, NULL, NULL);
    return true;
}

int acdm_live_agent_action(acdm_engine *e, const char *action, const char *agent_id,
                           const char *reason, char *err, size_t errlen)
{
    acdm_agent *a = acdm_model_agent(acdm_engine_model(e), agent_id);
    if (!a) { snprintf(err, errlen, "agent: no agent \"%s\"", agent_id); return ACDM_ENOENT; }
    int64_t now = acdm_now_ms();
    int rc;
    if (!strcmp(action, "login")) rc = acdm_agent_login(acdm_engine_model(e), a, now);
    else if (!strcmp(action, "logout")) rc = acdm_agent_logout(acdm_engine_model(e), a, "supervisor", now);
    else if (!strcmp(action, "ready")) rc = acdm_agent_ready(acdm_engine_model(e), a, now);
    else if (!strcmp(action, "not_ready") || !strcmp(action, "not-ready")) {
        if (reason && !acdm_config_reason_valid(acdm_model_config(acdm_engine_model(e)), reason)) {
            snprintf(err, errlen, "reason: unknown reason code \"%.80s\"", reason);
            return ACDM_EINVAL;
        }
        rc = acdm_agent_not_ready(acdm_engine_model(e), a, reason, now);
    } else {
        snprintf(err, errlen, "unknown action \"%s\"", action);
        return ACDM_EINVAL;
    }
    if (rc == ACDM_ESTATE)
        snprintf(err, errlen, "agent %s is %s: not possible now", a->id, acdm_agent_state_name(a->state));
    else if (rc)
        snprintf(err, errlen, "agent %s: %s", a->id, acdm_strerror(rc));
    return rc;
}

const acdm_engine_module acdm_live_module = {
    .name = "live", .start = acdm_live_create, .stop = acdm_live_destroy,
};
