/* sip.c -- the SIP voice channel plugin (name "sip"): the core-thread side. A phone call is a
 * `voice` bericht: the engine (sipua.c, libre in its own thread) tells us about a new call, we
 * submit it, and only after the submit callback (the commit) is the caller answered with 200
 * OK. Routing's events drive the agent's leg (ABI 1.0: the agent's accept on the desk calls
 * the agent's phone from the instance's `agents` map; ABI 1.1: offer_device rings the phone
 * and device_result reports the outcome). Config keys: sipcfg.h and docs/operations.md. */
#include "sipint.h"

#include <jansson.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A host function this core has (the table reaches it) and fills (not NULL). */
#define HOST_HAS_FN(h, f) (ACDM_HOST_HAS(h, f) && (h)->f)

typedef struct ccall {
    struct ccall *prev, *next;
    uint32_t id;
    char bericht[64], queue[72], from[72], dialled[48], callid[128], agent[72];
    char accepted_by[72];  /* the agent who has the call (ACCEPTED) */
    bool cb_pending;     /* a submit callback is due (user = this) */
    bool routed;         /* ACDM_SUBMIT_ROUTING came: routed while the commit runs */
    bool sip_gone;       /* the engine freed the call */
    bool ended;          /* the bericht is over for the core (ended, wrap-up, closed) */
    bool waiting;        /* queued, not offered or active: the position is polled */
    bool menu;           /* in the IVR: not submitted yet */
    bool device;         /* the agent's phone was rung through offer_device */
    bool callback;       /* ended by us for a callback: the caller still hears the confirmation */
    bool keep_place;     /* the caller hung up after asking to be called back: the bericht waits on */
    bool transferred_out;/* the caller was transferred to an outside number (REFER or the desk): the bericht is over */
    bool bridged;        /* the agent's phone answered (CM_DEVICE answered) and no requeue since */
    bool xfer_asked;     /* the desk asked a transfer out (MQ_TRANSFER_OUT on its way) */
    int64_t queued_ms;   /* when it was first submitted (epoch ms): kept when it is submitted anew */
    unsigned resubmits;  /* back in the queue after a failed transfer out: the n-th submit */
    char returned_from[64];   /* ... the bericht that was transferred */
    char xfer_why[120];       /* ... and why the number was not reached */
    char callback_to[80];
    char gone_reason[64];
    uint32_t last_pos;
} ccall;

static int call_back(sipp *p, ccall *c, const char *agent, const char *endpoint, uint32_t timeout_ms, bool device);

/* ------------------------------------------------------------ messages */

char *sip_strdup(const char *s) { return s ? strdup(s) : NULL; }

smsg *smsg_new(sipp *p, int type, uint32_t call)
{
    smsg *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->type = type;
    m->call = call;
    pthread_mutex_lock(&p->mu);
    m->next = p->inflight;
    if (p->inflight) p->inflight->prev = m;
    p->inflight = m;
    pthread_mutex_unlock(&p->mu);
    return m;
}

void smsg_take(sipp *p, smsg *m)
{
    pthread_mutex_lock(&p->mu);
    if (m->prev) m->prev->next = m->next;
    else if (p->inflight == m) p->inflight = m->next;
    if (m->next) m->next->prev = m->prev;
    m->prev = m->next = NULL;
    pthread_mutex_unlock(&p->mu);
}

void smsg_free(smsg *m)
{
    if (!m) return;
    if (m->type == MQ_TTS_DONE) tts_job_free(m->ptr);
    free(m->text); free(m->from); free(m->dialled); free(m->queue); free(m->callid); free(m->uri);
    free(m);
}

void smsg_free_all(sipp *p)
{
    pthread_mutex_lock(&p->mu);
    smsg *m = p->inflight;
    p->inflight = NULL;
    pthread_mutex_unlock(&p->mu);
    while (m) {
        smsg *n = m->next;
        smsg_free(m);
        m = n;
    }
}

static void core_run(acdm_instance *inst, void *priv, void *arg);

void core_post(sipp *p, smsg *m)
{
    pthread_mutex_lock(&p->mu);
    bool ok = !p->stopping;
    pthread_mutex_unlock(&p->mu);
    if (!ok || p->host->post(p->inst, core_run, m) < 0) {
        smsg_take(p, m);
        smsg_free(m);
    }
}

/* ------------------------------------------------------------ calls (core side) */

static ccall *cc_find(sipp *p, uint32_t id)
{
    for (ccall *c = p->calls; c; c = c->next)
        if (c->id == id) return c;
    return NULL;
}

static ccall *cc_by_bericht(sipp *p, const char *bid)
{
    if (!bid) return NULL;
    for (ccall *c = p->calls; c; c = c->next)
        if (!strcmp(c->bericht, bid)) return c;
    return NULL;
}

static void cc_free(sipp *p, ccall *c)
{
    if (c->prev) c->prev->next = c->next;
    else p->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
}

/* Frees the record once the engine is done with it and no submit callback is due. */
static void cc_maybe_free(sipp *p, ccall *c)
{
    if (c->sip_gone && !c->cb_pending && !(c->keep_place && !c->ended)) cc_free(p, c);
}

static void push_call(sipp *p, int type, ccall *c, const char *text)
{
    smsg *m = smsg_new(p, type, c->id);
    if (!m) return;
    m->text = sip_strdup(text);
    snprintf(m->bericht, sizeof m->bericht, "%s", c->bericht);
    ua_push(p, m);
}

static void submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome o, const char *bericht_id,
                      const char *text)
{
    sipp *p = priv;
    ccall *c = user;
    (void)inst;
    if (o == ACDM_SUBMIT_ROUTING) {
        /* queued and routed while the commit runs: offers may name it from now on; the caller
         * is answered on the final outcome (after the commit) */
        if (bericht_id) snprintf(c->bericht, sizeof c->bericht, "%s", bericht_id);
        c->routed = true;
        c->waiting = true;
        return;
    }
    c->cb_pending = false;
    if (bericht_id) snprintf(c->bericht, sizeof c->bericht, "%s", bericht_id);
    if (o == ACDM_SUBMIT_CLOSED || o == ACDM_SUBMIT_ERROR) c->ended = true;
    else if (!c->routed) c->waiting = true;
    if (c->sip_gone) {
        /* the caller hung up while the bericht was being stored: it is abandoned */
        if (!c->ended && c->bericht[0]) p->host->end(p->inst, c->bericht, c->gone_reason[0] ? c->gone_reason : "hangup");
        cc_free(p, c);
        return;
    }
    smsg *m = smsg_new(p, c->menu ? MQ_MENU_QUEUED : MQ_SUBMITTED, c->id);
    if (!m) return;
    m->outcome = (int)o;
    snprintf(m->bericht, sizeof m->bericht, "%s", c->bericht);
    m->text = sip_strdup(text);
    ua_push(p, m);
    c->menu = false;
}

static void submit_call(sipp *p, ccall *c, const char *ivr_path)
{
    char subject[160];
    /* what the agent's offer shows; a caller back after a failed transfer says so */
    snprintf(subject, sizeof subject, c->resubmits ? "Gebeld naar %s, terug na mislukt doorverbinden" : "Gebeld naar %s",
             c->dialled);
    json_t *pl = json_pack("{s:s, s:s, s:s}", "dialled", c->dialled, "call_id", c->callid, "caller", c->from);
    if (pl && ivr_path && *ivr_path) json_object_set_new(pl, "ivr", json_string(ivr_path));
    if (pl && c->resubmits) {
        json_object_set_new(pl, "returned_from", json_string(c->returned_from));
        json_object_set_new(pl, "transfer_failed", json_string(c->xfer_why));
    }
    char *pj = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
    json_decref(pl);
    char key[200];
    if (c->resubmits) snprintf(key, sizeof key, "sip:%s#%u", c->callid, c->resubmits);
    else snprintf(key, sizeof key, "sip:%s", c->callid);
    if (!c->queued_ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        c->queued_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    acdm_inbound in = {
        .struct_size = sizeof in,
        .kind = ACDM_KIND_NAME_VOICE,
        .queue = c->queue[0] ? c->queue : NULL,
        .from = c->from,
        .idempotency_key = key,
        .subject = subject,
        .payload_json = pj,
        /* the agent's phone may ring while the commit runs; the 200 OK waits for it */
        .flags = ACDM_IN_ROUTE_AT_ONCE,
        .queued_ms = c->resubmits ? c->queued_ms : 0,   /* back after a failed transfer: its place in time */
    };
    c->cb_pending = true;
    int rc = p->host->submit(p->inst, &in, submitted, c);
    free(pj);
    if (rc < 0) {
        c->cb_pending = false;
        c->ended = true;
        p->host->log(p->inst, ACDM_PLOG_ERR, "call %u from %s to %s: the core refused it (%d): 503", c->id, c->from,
                     c->dialled, rc);
        smsg *m = smsg_new(p, c->menu ? MQ_MENU_QUEUED : MQ_SUBMITTED, c->id);
        if (m) {
            m->outcome = ACDM_SUBMIT_ERROR;
            m->text = sip_strdup("refused");
            ua_push(p, m);
        }
    }
}

static void on_new_call(sipp *p, smsg *m)
{
    ccall *c = calloc(1, sizeof *c);
    if (!c) {
        smsg *h = smsg_new(p, MQ_HANGUP, m->call);
        if (h) { h->text = sip_strdup("out of memory"); ua_push(p, h); }
        return;
    }
    c->id = m->call;
    snprintf(c->from, sizeof c->from, "%s", m->from ? m->from : "anonymous");
    snprintf(c->dialled, sizeof c->dialled, "%s", m->dialled ? m->dialled : "");
    snprintf(c->queue, sizeof c->queue, "%s", m->queue ? m->queue : "");
    snprintf(c->callid, sizeof c->callid, "%s", m->callid ? m->callid : "");
    c->next = p->calls;
    if (p->calls) p->calls->prev = c;
    p->calls = c;
    c->menu = m->a != 0;
    p->host->log(p->inst, ACDM_PLOG_INFO, "call %u from %s to %s%s%s", c->id, c->from, c->dialled,
                 c->menu ? ": the menu" : ": queue ", c->menu ? "" : (c->queue[0] ? c->queue : "(the channel's)"));
    if (!c->menu) submit_call(p, c, NULL);
}

static void on_call_gone(sipp *p, smsg *m)
{
    ccall *c = cc_find(p, m->call);
    if (!c) return;
    c->sip_gone = true;
    snprintf(c->gone_reason, sizeof c->gone_reason, "%s", m->text ? m->text : "hangup");
    if (m->a == 2) c->keep_place = true;           /* the agent's phone missed a kept place's callback */
    if (c->keep_place && !c->ended) {
        p->host->log(p->inst, ACDM_PLOG_INFO, "call %u (%s): the caller left; the bericht keeps its place for a callback to %s",
                     c->id, c->bericht, c->callback_to);
        return;
    }
    if (!c->cb_pending && !c->ended && c->bericht[0]) {
        int rc = p->host->end(p->inst, c->bericht, c->gone_reason);
        if (rc < 0 && rc != ACDM_P_ENOENT && rc != ACDM_P_ESTATE)
            p->host->log(p->inst, ACDM_PLOG_WARN, "call %u (%s): end failed (%d)", c->id, c->bericht, rc);
        c->ended = true;
    }
    p->host->log(p->inst, ACDM_PLOG_INFO, "call %u%s%s ended: %s", c->id, c->bericht[0] ? " " : "", c->bericht,
                 c->gone_reason);
    cc_maybe_free(p, c);
}

static void on_device(sipp *p, smsg *m)
{
    ccall *c = cc_find(p, m->call);
    acdm_device_outcome o = (acdm_device_outcome)m->a;
    if (m->b && HOST_HAS_FN(p->host, device_result)) {
        int rc = p->host->device_result(p->inst, m->bericht, m->agent, o, m->text);
        if (rc == ACDM_P_ESTATE && o == ACDM_DEVICE_ANSWERED && c && !c->ended && strcmp(c->accepted_by, m->agent)) {
            /* the offer is no longer out and not because this agent accepted it on the desk
             * (the caller left, the offer timed out): that phone's leg is hung up */
            push_call(p, MQ_REQUEUED, c, NULL);
        } else if (c && o == ACDM_DEVICE_ANSWERED) c->bridged = true;
        return;
    }
    if (c && o == ACDM_DEVICE_ANSWERED) c->bridged = true;
    if (o != ACDM_DEVICE_ANSWERED)
        p->host->log(p->inst, ACDM_PLOG_WARN, "call %s: agent %s accepted on the desk but the phone did not answer: %s",
                     m->bericht, m->agent, m->text ? m->text : "");
}

/* A waiting caller pressed the callback key: a `callback` bericht for their number in the same
 * queue (its originate calls the agent first, then the citizen); once it is committed the call
 * ends with reason "callback" and the caller hears that they will be called back. The place in
 * the queue is not kept yet: the ABI has no way to hand the voice bericht's queue time over
 * (see the proposed ABI change in the SIP channel's notes). */
static void callback_stored(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome o, const char *bericht_id,
                            const char *text)
{
    sipp *p = priv;
    ccall *c = user;
    (void)inst;
    (void)text;
    c->cb_pending = false;
    if (!c->sip_gone) {
        smsg *m = smsg_new(p, MQ_CALLBACK_OK, c->id);
        if (m) { m->outcome = (int)o; ua_push(p, m); }
    }
    if ((o == ACDM_SUBMIT_QUEUED || o == ACDM_SUBMIT_DUPLICATE) && !c->ended && c->bericht[0]) {
        p->host->log(p->inst, ACDM_PLOG_INFO, "call %u (%s): the caller asked to be called back: %s", c->id, c->bericht,
                     bericht_id ? bericht_id : "");
        c->callback = true;
        p->host->end(p->inst, c->bericht, "callback");
        c->ended = true;
    }
    cc_maybe_free(p, c);
}

static void on_callback(sipp *p, smsg *m)
{
    ccall *c = cc_find(p, m->call);
    if (!c || c->sip_gone || c->cb_pending || c->ended) return;
    if (p->cfg.callback_keep_place && HOST_HAS_FN(p->host, update)) {
        /* keep the place: the bericht waits on (its queue time unchanged) with the number to call */
        char pj[200], err[200];
        snprintf(pj, sizeof pj, "{\"callback_to\":\"%s\"}", m->from ? m->from : c->from);
        acdm_update u = {.struct_size = sizeof u, .priority = -1, .payload_json = pj};
        int rc = p->host->update(p->inst, c->bericht, &u, err, sizeof err);
        smsg *r = smsg_new(p, MQ_CALLBACK_OK, c->id);
        if (r) { r->outcome = rc == 0 ? ACDM_SUBMIT_QUEUED : ACDM_SUBMIT_ERROR; ua_push(p, r); }
        if (rc == 0) {
            c->keep_place = true;
            snprintf(c->callback_to, sizeof c->callback_to, "%s", m->from ? m->from : c->from);
            p->host->log(p->inst, ACDM_PLOG_INFO, "call %u (%s): the caller asked to be called back at %s, keeping the place",
                         c->id, c->bericht, c->callback_to);
        } else
            p->host->log(p->inst, ACDM_PLOG_INFO, "call %u (%s): callback refused (%d %s): the caller stays in the queue",
                         c->id, c->bericht, rc, err);
        return;
    }
    char key[200], pj[400];
    snprintf(key, sizeof key, "sip-callback:%s", c->callid);
    snprintf(pj, sizeof pj, "{\"callback_to\":\"%s\",\"requested_in\":\"%s\",\"dialled\":\"%s\"}", m->from ? m->from : c->from,
             c->bericht, c->dialled);
    acdm_inbound in = {.struct_size = sizeof in, .kind = ACDM_KIND_NAME_CALLBACK, .queue = c->queue[0] ? c->queue : NULL,
                       .from = m->from ? m->from : c->from, .idempotency_key = key, .subject = "Terugbelverzoek",
                       .payload_json = pj};
    c->cb_pending = true;
    if (p->host->submit(p->inst, &in, callback_stored, c) < 0) {
        c->cb_pending = false;
        smsg *r = smsg_new(p, MQ_CALLBACK_OK, c->id);
        if (r) { r->outcome = ACDM_SUBMIT_ERROR; ua_push(p, r); }
    }
}

static void core_run(acdm_instance *inst, void *priv, void *arg)
{
    sipp *p = priv;
    smsg *m = arg;
    (void)inst;
    smsg_take(p, m);
    switch (m->type) {
    case CM_LOG: p->host->log(p->inst, (int)m->a, "%s", m->text ? m->text : ""); break;
    case CM_NEW_CALL: on_new_call(p, m); break;
    case CM_MENU_CHOICE: {
        ccall *c = cc_find(p, m->call);
        if (c && !c->sip_gone) {
            snprintf(c->queue, sizeof c->queue, "%s", m->queue ? m->queue : "");
            p->host->log(p->inst, ACDM_PLOG_INFO, "call %u: menu choice %s: queue %s", c->id, m->text ? m->text : "",
                         c->queue);
            submit_call(p, c, m->text);
        }
        break;
    }
    case CM_CALL_GONE: on_call_gone(p, m); break;
    case CM_DEVICE: on_device(p, m); break;
    case CM_ORIGINATE:
        if (HOST_HAS_FN(p->host, originate_result))
            p->host->originate_result(p->inst, m->bericht, (acdm_originate_outcome)m->a, m->text);
        break;
    case CM_CALLBACK: on_callback(p, m); break;
    case CM_TRANSFER_OUT: {
        /* blind transfer out of acdm: the bericht ends for the agent (wrap-up) while the caller
         * talks on with the number, outside routing */
        ccall *c = cc_find(p, m->call);
        if (!c || c->ended || !c->bericht[0]) break;
        char why[96];
        snprintf(why, sizeof why, "transferred to %s", m->text ? m->text : "?");
        c->transferred_out = true;
        c->waiting = false;
        int rc = p->host->end(p->inst, c->bericht, why);
        c->ended = true;
        p->host->log(p->inst, ACDM_PLOG_INFO, "call %u (%s): agent %s transferred the caller to %s%s", c->id, c->bericht,
                     m->agent, m->text ? m->text : "?", rc < 0 ? " (the bericht could not be ended)" : "");
        break;
    }
    case CM_XFER_FAILED: {
        /* the number was not reached: the caller waits again in the call's queue with the
         * original queue time, as a new bericht that names the transferred one */
        ccall *c = cc_find(p, m->call);
        if (!c || c->sip_gone || !c->transferred_out) break;
        snprintf(c->returned_from, sizeof c->returned_from, "%s", c->bericht);
        snprintf(c->xfer_why, sizeof c->xfer_why, "%s", m->text ? m->text : "");
        c->bericht[0] = 0;       /* the old bericht's events no longer reach the call */
        c->ended = c->transferred_out = c->bridged = c->xfer_asked = c->device = c->routed = c->waiting = false;
        c->accepted_by[0] = c->agent[0] = 0;
        c->resubmits++;
        p->host->log(p->inst, ACDM_PLOG_WARN, "call %u (%s): the transfer failed (%s): the caller goes back to queue %s",
                     c->id, c->returned_from, c->xfer_why, c->queue[0] ? c->queue : "(the channel's)");
        submit_call(p, c, NULL);
        break;
    }
    case CM_AGENT_BYE: break;   /* the engine hangs up the caller too; CM_CALL_GONE follows */
    case CM_REACHABLE:
        if (HOST_HAS_FN(p->host, device_reachable))
            p->host->device_reachable(p->inst, m->agent, ACDM_KIND_NAME_VOICE, (int)m->a, m->text);
        break;
    default: break;
    }
    smsg_free(m);
}

/* ------------------------------------------------------------ events from the core */

static void sip_on_event(acdm_instance *inst, void *priv, const acdm_event_info *ev)
{
    sipp *p = priv;
    (void)inst;
    ccall *c = cc_by_bericht(p, ev->bericht_id);
    if (!c || (c->sip_gone && !c->keep_place) || c->transferred_out) return;
    if (c->sip_gone && (ev->type == ACDM_EV_ENDED || ev->type == ACDM_EV_WRAPUP)) {   /* a kept place ends */
        c->ended = true;
        cc_maybe_free(p, c);
        return;
    }
    if (c->sip_gone && ev->type != ACDM_EV_ACCEPTED) return;
    switch (ev->type) {
    case ACDM_EV_QUEUED: c->waiting = true; break;
    case ACDM_EV_OFFERED: c->waiting = false; break;
    case ACDM_EV_ACCEPTED: {
        c->waiting = false;
        if (!ev->agent) break;
        if (c->keep_place && c->sip_gone) {      /* accepted on the desk: call the agent, then the citizen */
            const sipc_agent *ka = sipc_agent_find(&p->cfg, ev->agent);
            if (ka) call_back(p, c, ev->agent, ka->phone, 0, false);
            else p->host->log(p->inst, ACDM_PLOG_WARN, "call %s: agent %s has no phone for the callback", c->bericht, ev->agent);
            break;
        }
        snprintf(c->agent, sizeof c->agent, "%s", ev->agent);
        snprintf(c->accepted_by, sizeof c->accepted_by, "%s", ev->agent);
        if (ev->queue && *ev->queue) snprintf(c->queue, sizeof c->queue, "%s", ev->queue);   /* after a transfer to a queue */
        const sipc_agent *a = sipc_agent_find(&p->cfg, ev->agent);
        if (!a) {
            if (!c->device)
                p->host->log(p->inst, ACDM_PLOG_WARN, "call %s: agent %s has no phone (agents.%s in the channel's config)",
                             c->bericht, ev->agent, ev->agent);
            break;
        }
        smsg *m = smsg_new(p, MQ_CONNECT_AGENT, c->id);
        if (!m) break;
        snprintf(m->bericht, sizeof m->bericht, "%s", c->bericht);
        snprintf(m->agent, sizeof m->agent, "%s", ev->agent);
        m->uri = sip_strdup(a->phone);
        m->b = 0;
        ua_push(p, m);
        break;
    }
    case ACDM_EV_REQUEUED:
    case ACDM_EV_TRANSFERRED:
        c->waiting = true;
        c->device = false;
        c->bridged = false;
        c->accepted_by[0] = 0;
        push_call(p, MQ_REQUEUED, c, NULL);
        break;
    case ACDM_EV_WRAPUP:
        c->ended = true;
        push_call(p, MQ_HANGUP, c, "completed");
        break;
    case ACDM_EV_ENDED:
        c->ended = true;
        if (!c->callback) push_call(p, MQ_HANGUP, c, "ended");
        break;
    case ACDM_EV_HOLD: push_call(p, MQ_HOLD, c, NULL); break;
    case ACDM_EV_RESUME: push_call(p, MQ_RESUME, c, NULL); break;
    default: break;
    }
}

/* A kept place's turn: the agent's phone first, then the citizen (the engine's outbound call with
 * okind 2: device results as for any offer, the citizen's hang-up ends the bericht). */
static int call_back(sipp *p, ccall *c, const char *agent, const char *endpoint, uint32_t timeout_ms, bool device)
{
    smsg *m = smsg_new(p, MQ_ORIGINATE, c->id);
    if (!m) return ACDM_P_ENOMEM;
    snprintf(m->bericht, sizeof m->bericht, "%s", c->bericht);
    snprintf(m->agent, sizeof m->agent, "%s", agent);
    m->uri = sip_strdup(endpoint);
    m->dialled = sip_strdup(c->callback_to);
    m->a = timeout_ms;
    m->b = device;
    m->outcome = 2;
    if (ua_push(p, m) < 0) return ACDM_P_EIO;
    c->sip_gone = false;
    c->keep_place = false;          /* until the engine says the agent missed it (CM_CALL_GONE a=2) */
    c->device = device;
    c->waiting = false;
    snprintf(c->agent, sizeof c->agent, "%s", agent);
    p->host->log(p->inst, ACDM_PLOG_INFO, "call %s: calling back %s: agent %s first", c->bericht, c->callback_to, agent);
    return 0;
}

/* ABI 1.1: ring the agent's phone for an offer; device_result reports the outcome. */
static int sip_offer_device(acdm_instance *inst, void *priv, const acdm_device_offer *o)
{
    sipp *p = priv;
    (void)inst;
    ccall *c = cc_by_bericht(p, o->bericht_id);
    if (c && c->keep_place && c->sip_gone && o->endpoint) return call_back(p, c, o->agent_id, o->endpoint, o->timeout_ms, true);
    if (!c || c->sip_gone || !o->endpoint) return ACDM_P_ENOENT;
    c->device = true;
    c->waiting = false;
    snprintf(c->agent, sizeof c->agent, "%s", o->agent_id);
    smsg *m = smsg_new(p, MQ_CONNECT_AGENT, c->id);
    if (!m) return ACDM_P_ENOMEM;
    snprintf(m->bericht, sizeof m->bericht, "%s", c->bericht);
    snprintf(m->agent, sizeof m->agent, "%s", o->agent_id);
    m->uri = sip_strdup(o->endpoint);
    m->a = o->timeout_ms;
    m->b = 1;
    return ua_push(p, m) < 0 ? ACDM_P_EIO : 0;
}

/* ABI 1.2: the desk's blind transfer to an outside number. What the core side knows is checked
 * here (the desk shows the sentence); the engine runs the phone's REFER path (xfer_start) and
 * CM_TRANSFER_OUT ends the bericht for the agent as for a REFER. */
static int sip_transfer_out(acdm_instance *inst, void *priv, const char *bericht_id, const char *number, char *err,
                            size_t errlen)
{
    sipp *p = priv;
    (void)inst;
    ccall *c = cc_by_bericht(p, bericht_id);
    if (!c || c->sip_gone || c->ended || c->transferred_out) { snprintf(err, errlen, "the call is over"); return ACDM_P_ENOENT; }
    if (!acdm_phone_number_ok(number)) {
        snprintf(err, errlen, "number: \"%.40s\" is not a phone number", number ? number : "");
        return ACDM_P_EINVAL;
    }
    if (!p->cfg.out_gateway) { snprintf(err, errlen, "this channel has no outbound gateway (outbound.gateway)"); return ACDM_P_EINVAL; }
    if (c->id & 0x80000000u) { snprintf(err, errlen, "only an incoming call can be transferred to a number"); return ACDM_P_EINVAL; }
    if (!c->bridged) { snprintf(err, errlen, "the call is not connected to your phone"); return ACDM_P_ESTATE; }
    if (c->xfer_asked) { snprintf(err, errlen, "a transfer of this call is on its way"); return ACDM_P_ESTATE; }
    smsg *m = smsg_new(p, MQ_TRANSFER_OUT, c->id);
    if (!m) return ACDM_P_ENOMEM;
    snprintf(m->bericht, sizeof m->bericht, "%s", c->bericht);
    snprintf(m->agent, sizeof m->agent, "%s", c->accepted_by);
    m->text = sip_strdup(number);
    if (ua_push(p, m) < 0) { snprintf(err, errlen, "the SIP engine is not running"); return ACDM_P_EIO; }
    c->xfer_asked = true;
    p->host->log(p->inst, ACDM_PLOG_INFO, "call %u (%s): agent %s transfers the caller to %s from the desk", c->id,
                 c->bericht, c->accepted_by, number);
    return 0;
}

/* ABI 1.1: an outbound call (a callback or the desk's call): the agent's phone first, then the
 * customer through outbound.gateway; originate_result reports. The bericht exists and is active
 * with the agent; when the customer hangs up it ends as any call's. */
static int sip_originate(acdm_instance *inst, void *priv, const acdm_originate *o, char *err, size_t errlen)
{
    sipp *p = priv;
    (void)inst;
    if (strcmp(o->kind, ACDM_KIND_NAME_VOICE) && strcmp(o->kind, ACDM_KIND_NAME_CALLBACK)) {
        snprintf(err, errlen, "the sip channel places calls (voice, callback), not %s", o->kind);
        return ACDM_P_EINVAL;
    }
    if (!p->cfg.out_gateway) { snprintf(err, errlen, "this channel has no outbound gateway (outbound.gateway)"); return ACDM_P_EINVAL; }
    if (!acdm_phone_number_ok(o->to)) {
        snprintf(err, errlen, "to: \"%.40s\" is not a phone number", o->to ? o->to : "");
        return ACDM_P_EINVAL;
    }
    const char *ep = o->agent_endpoint;
    const sipc_agent *a = o->agent_id ? sipc_agent_find(&p->cfg, o->agent_id) : NULL;
    if (!ep && a) ep = a->phone;
    if (!ep) { snprintf(err, errlen, "agent %s has no phone", o->agent_id ? o->agent_id : "?"); return ACDM_P_EINVAL; }
    ccall *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, errlen, "out of memory"); return ACDM_P_ENOMEM; }
    c->id = 0x80000000u | (++p->next_out & 0x7fffffffu);   /* the engine numbers inbound calls from 1 */
    snprintf(c->bericht, sizeof c->bericht, "%s", o->bericht_id);
    snprintf(c->from, sizeof c->from, "%s", o->to);
    snprintf(c->agent, sizeof c->agent, "%s", o->agent_id ? o->agent_id : "");
    c->next = p->calls;
    if (p->calls) p->calls->prev = c;
    p->calls = c;
    smsg *m = smsg_new(p, MQ_ORIGINATE, c->id);
    if (!m) { cc_free(p, c); snprintf(err, errlen, "out of memory"); return ACDM_P_ENOMEM; }
    snprintf(m->bericht, sizeof m->bericht, "%s", o->bericht_id);
    snprintf(m->agent, sizeof m->agent, "%s", o->agent_id ? o->agent_id : "");
    m->uri = sip_strdup(ep);
    m->dialled = sip_strdup(o->to);
    if (ua_push(p, m) < 0) { cc_free(p, c); snprintf(err, errlen, "the SIP thread is not running"); return ACDM_P_EIO; }
    p->host->log(p->inst, ACDM_PLOG_INFO, "outbound call for %s: agent %s first, then %s", o->bericht_id,
                 o->agent_id ? o->agent_id : "?", o->to);
    return 0;
}

static void poll_queue_states(sipp *p);

/* Every second: the waiting callers' positions (announced by the engine when they change). */
static void poll_positions(acdm_instance *inst, void *priv, void *user)
{
    sipp *p = priv;
    (void)user;
    poll_queue_states(p);
    if (!HOST_HAS_FN(p->host, queue_position)) return;
    for (ccall *c = p->calls; c; c = c->next) {
        if (!c->waiting || c->ended || c->sip_gone || !c->bericht[0]) continue;
        uint32_t pos = 0, est = 0;
        if (p->host->queue_position(inst, c->bericht, &pos, &est) != 0 || pos == 0) continue;
        if (pos == c->last_pos) continue;
        c->last_pos = pos;
        smsg *m = smsg_new(p, MQ_POSITION, c->id);
        if (!m) continue;
        m->a = pos;
        m->b = est;
        ua_push(p, m);
    }
}

/* Every second (and at start): whether each queue a menu's when_closed names is closed now,
 * as the core shows it to a customer (queue_info: schedule, holiday, supervisor, emergency).
 * Sent every time, so an engine restarted by a reload knows at once. */
static void poll_queue_states(sipp *p)
{
    if (!HOST_HAS_FN(p->host, queue_info)) return;
    for (int i = 0; i < p->cfg.n_menus; i++) {
        const char *q = p->cfg.menus[i].closed_queue;
        if (!q) continue;
        int k = 0;
        while (k < i && (!p->cfg.menus[k].closed_queue || strcmp(p->cfg.menus[k].closed_queue, q))) k++;
        if (k < i) continue;                            /* sent already this round */
        char *t = p->host->queue_info(p->inst, q, "voice");
        if (!t) {
            if (!p->qwarned) p->host->log(p->inst, ACDM_PLOG_WARN, "menus.%s.when_closed.queue: no queue \"%s\" (the menu counts it as open)",
                                          p->cfg.menus[i].name, q);
            p->qwarned = true;
            continue;
        }
        json_t *o = json_loads(t, 0, NULL);
        p->host->free(t);
        json_t *open = json_object_get(o, "open");
        if (json_is_boolean(open)) {
            smsg *m = smsg_new(p, MQ_QUEUE_STATE, 0);
            if (m) {
                m->queue = sip_strdup(q);
                m->a = json_is_false(open);
                ua_push(p, m);
            }
        }
        json_decref(o);
    }
}

/* ------------------------------------------------------------ GET /status */

static void status_route(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    sipp *p = priv;
    const char *tok = req->authorization && !strncasecmp(req->authorization, "Bearer ", 7) ? req->authorization + 7 : NULL;
    resp->content_type = "application/json";
    if (!tok || !HOST_HAS_FN(p->host, check_token) || p->host->check_token(inst, tok) != 0) {
        resp->status = 401;
        resp->content_type = "application/problem+json";
        resp->body = "{\"type\":\"about:blank\",\"title\":\"Unauthorized\",\"status\":401,"
                     "\"detail\":\"an admin token or a token with role channel:<instance> is required\"}";
        return;
    }
    static const double qs[] = {0.5, 0.9, 0.99, 1.0};
    double qv[4] = {0, 0, 0, 0};
    sip_stats s;
    pthread_mutex_lock(&p->st_mu);
    memcpy(&s, &p->st, offsetof(sip_stats, lat));
    unsigned long cum = 0, need[4];
    for (int k = 0; k < 4; k++) need[k] = (unsigned long)(qs[k] * (double)p->st.lat_n + 0.999999);
    for (int b = 0, k = 0; b <= 20000 && k < 4 && p->st.lat_n; b++) {
        cum += p->st.lat[b];
        while (k < 4 && cum >= need[k] && need[k]) qv[k++] = (b + 1) * 0.1;   /* upper edge, ms */
    }
    pthread_mutex_unlock(&p->st_mu);
    unsigned long n = 0;
    for (ccall *c = p->calls; c; c = c->next) n++;
    json_error_t je;
    json_t *reg = json_loads(s.registered[0] ? s.registered : "[]", 0, &je);
    json_t *o = json_object();
    struct { const char *k; unsigned long v; } f[] = {
        {"invites", s.invites}, {"answered", s.answered}, {"closed_played", s.closed_played},
        {"rejected_404", s.rejected_404}, {"rejected_488", s.rejected_488}, {"rejected_503", s.rejected_503},
        {"rejected_400", s.rejected_400}, {"malformed", s.malformed}, {"agent_calls", s.agent_calls},
        {"bridged", s.bridged}, {"dtmf", s.dtmf}, {"registers", s.registers}, {"register_denied", s.register_denied},
        {"rtp_timeouts", s.rtp_timeouts}, {"session_expired", s.session_expired}, {"transfers_out", s.transfers_out}, {"rejected_422", s.rejected_422}, {"positions", s.positions}, {"calls", s.calls_now}, {"core_calls", n},
        {"prompts_ready", s.prompts_ready}, {"prompts_failed", s.prompts_failed}, {"config_generation", s.conf_gen}};
    for (size_t i = 0; o && i < sizeof f / sizeof f[0]; i++) json_object_set_new(o, f[i].k, json_integer((json_int_t)f[i].v));
    if (o) json_object_set_new(o, "registered", reg ? reg : json_array());
    if (o) json_object_set_new(o, "route_latency_ms", json_pack("{s:I, s:f, s:f, s:f, s:f}", "n", (json_int_t)s.lat_n,
                                                               "p50", qv[0], "p90", qv[1], "p99", qv[2], "max", qv[3]));
    else json_decref(reg);
    free(p->status_body);
    p->status_body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    resp->status = p->status_body ? 200 : 500;
    resp->body = p->status_body;
}

/* ------------------------------------------------------------ lifecycle */

static int sip_check_config(const char *config_json, char *err, size_t errlen)
{
    sipc_cfg c;
    if (sipc_parse(config_json, &c, err, errlen) < 0) return -1;
    sipc_free(&c);
    return 0;
}

static int sip_init(acdm_instance *inst, void *priv, const acdm_host *host, const char *config_json, char *err,
                    size_t errlen)
{
    sipp *p = priv;
    p->host = host;
    p->inst = inst;
    if (!HOST_HAS_FN(host, end_ago)) {
        snprintf(err, errlen, "this acdm core is too old for the sip plugin (it needs post, submit and end)");
        return -1;
    }
    if (sipc_parse(config_json, &p->cfg, err, errlen) < 0) return -1;
    if (!(p->cfg_json = strdup(config_json))) { sipc_free(&p->cfg); snprintf(err, errlen, "out of memory"); return -1; }
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->st_mu, NULL);
    pthread_cond_init(&p->tts_cv, NULL);
    sem_init(&p->ready, 0, 0);
    return 0;
}

static int sip_start(acdm_instance *inst, void *priv)
{
    sipp *p = priv;
    char err[300];
    p->stopping = false;
    if (tts_start(p) < 0) { p->host->log(inst, ACDM_PLOG_ERR, "cannot start the prompt worker"); return -1; }
    if (ua_start(p, err, sizeof err) < 0) {
        p->host->log(inst, ACDM_PLOG_ERR, "%s", err);
        tts_stop(p);
        return -1;
    }
    p->host->http_route(inst, "GET", "/status", status_route);
    p->poll = p->host->timer_start(inst, 1000, 1000, poll_positions, NULL);
    poll_queue_states(p);
    for (int i = 0; i < p->cfg.n_listen; i++)
        p->host->log(inst, ACDM_PLOG_NOTICE, "SIP on %s:%s:%d, RTP %d-%d, %d numbers, max %d calls",
                     p->cfg.listen[i].transport ? "tcp" : "udp", p->cfg.listen[i].host, p->cfg.listen[i].port,
                     p->cfg.rtp_min, p->cfg.rtp_max, p->cfg.n_numbers, p->cfg.max_calls);
    return 0;
}

static void drop_calls(sipp *p, const char *reason)
{
    while (p->calls) {
        ccall *c = p->calls;
        if (!c->ended && c->bericht[0] && !c->cb_pending) p->host->end(p->inst, c->bericht, reason);
        if (c->cb_pending) {
            /* the submit callback still comes and frees it */
            c->sip_gone = true;
            snprintf(c->gone_reason, sizeof c->gone_reason, "%s", reason);
            if (c->prev) c->prev->next = c->next;
            else p->calls = c->next;
            if (c->next) c->next->prev = c->prev;
            c->prev = c->next = NULL;
            continue;
        }
        cc_free(p, c);
    }
}

static void engine_stop(sipp *p)
{
    tts_stop(p);
    ua_stop(p);
}

static int sip_reload(acdm_instance *inst, void *priv, const char *config_json, char *err, size_t errlen)
{
    sipp *p = priv;
    sipc_cfg nc;
    if (sipc_parse(config_json, &nc, err, errlen) < 0) return -1;
    char *js = strdup(config_json);
    if (!js) { sipc_free(&nc); snprintf(err, errlen, "out of memory"); return -1; }
    bool same = sipc_same_sockets(&p->cfg, &nc) && nc.max_calls == p->cfg.max_calls;
    sipc_free(&p->cfg);
    p->cfg = nc;
    free(p->cfg_json);
    p->cfg_json = js;
    if (same) {
        smsg *m = smsg_new(p, MQ_CONF, 0);
        if (!m || !(m->text = strdup(js)) || ua_push(p, m) < 0) {
            snprintf(err, errlen, "the SIP thread did not take the new config");
            return -1;
        }
        p->host->log(inst, ACDM_PLOG_INFO, "config applied in place (prompts render now)");
        return 0;
    }
    p->host->log(inst, ACDM_PLOG_NOTICE, "listen, rtp_ports or max_calls changed: the SIP stack restarts (calls in progress end)");
    engine_stop(p);
    smsg_free_all(p);
    drop_calls(p, "restart");
    if (tts_start(p) < 0 || ua_start(p, err, errlen) < 0) {
        tts_stop(p);
        return -1;
    }
    return 0;
}

static void sip_stop(acdm_instance *inst, void *priv)
{
    sipp *p = priv;
    (void)inst;
    if (p->poll) { p->host->timer_stop(p->poll); p->poll = NULL; }
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_mutex_unlock(&p->mu);
    engine_stop(p);
    smsg_free_all(p);
    while (p->calls) cc_free(p, p->calls);
    free(p->kept_regs);            /* a stopped instance keeps no bindings (a new start registers anew) */
    p->kept_regs = NULL;
}

static void sip_destroy(acdm_instance *inst, void *priv)
{
    sipp *p = priv;
    (void)inst;
    while (p->calls) cc_free(p, p->calls);
    smsg_free_all(p);
    sipc_free(&p->cfg);
    free(p->cfg_json);
    free(p->status_body);
    free(p->kept_regs);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->st_mu);
    pthread_cond_destroy(&p->tts_cv);
    sem_destroy(&p->ready);
}

static int sip_deliver(acdm_instance *inst, void *priv, const acdm_reply *reply)
{
    sipp *p = priv;
    p->host->log(inst, ACDM_PLOG_WARN, "bericht %s: a voice call takes no written reply (dropped)", reply->bericht_id);
    return ACDM_P_EINVAL;
}

static const acdm_plugin sip_plugin = ACDM_PLUGIN_INIT(
    .name = "sip",
    .version = "1.0.0",
    .description = "SIP voice: a B2BUA on libre; calls wait in acdm's queues with announcements and reach the agents' phones",
    .kinds = "voice",
    .instance_size = sizeof(sipp),
    .check_config = sip_check_config,
    .init = sip_init,
    .start = sip_start,
    .reload = sip_reload,
    .deliver = sip_deliver,
    .on_event = sip_on_event,
    .stop = sip_stop,
    .destroy = sip_destroy,
    .offer_device = sip_offer_device,
    .originate = sip_originate,
    .device_endpoint_key = "phone",
    .transfer_out = sip_transfer_out);

ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &sip_plugin; }

/* log helper for the other files (core thread only) */
void core_log(sipp *p, int level, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    p->host->log(p->inst, level, "%s", buf);
}
