/* sipua.c -- the SIP channel's engine: a back-to-back user agent on libre 1.1.0 in its own
 * thread. The caller's leg ends here and the agent's leg starts here; media is terminated
 * (announcements, music, DTMF) and, once bridged, relayed packet by packet between the legs.
 * Every call's generated audio runs on ONE 20 ms media clock (struct ua.clock) that walks the
 * calls playing something: never a timer per call (see the recipe: per-call timers collapse
 * at 100 calls/s). A 1 s housekeeping timer handles ring-no-answer, IVR time-outs, RTP
 * inactivity and registrations' expiry. Nothing here calls the host except through
 * core_post(); the core reaches us only through mqueue (ua_push). */
#include <re.h>

#include "sipint.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#define TEV_PT 101
#define CLOCK_MS 20
#define NONCE_LIFE_S 300

enum { P_PENDING = 0, P_READY, P_FAILED };

struct prompt {
    struct le le;
    char *key;
    sipa_clip clip;
    int state;
    char err[200];
};

enum cstate { CS_RINGING = 0, CS_MENU, CS_WAITING, CS_CLOSED, CS_BRIDGED, CS_HELD, CS_GONE, CS_OUTBOUND, CS_XFER };
static const char *const cstate_names[] = {"ringing", "menu", "waiting", "closed", "bridged", "held", "gone", "outbound",
                                           "transferring"};

struct leg {
    struct sipsess *sess;
    struct sdp_session *sdp;
    struct sdp_media *m;
    struct rtp_sock *rtp;
    struct sa raddr;
    int pt, tev_pt;
    uint32_t ts;
    bool marker, estab, have_media;
    uint64_t last_rx;
    sipa_dtmf_dedup dd;
};

struct ua;

struct call {
    struct le le;                 /* ua.calls */
    struct le mle;                /* ua.media: on the clock */
    struct ua *ua;
    uint32_t id;
    enum cstate st;
    struct leg c, a;              /* caller, agent */
    char bericht[64], queue[72], from[72], dialled[48], agent[72], callid[128];
    bool device_offer, closing, outbound, keep;
    bool external;                /* transferred out (REFER): the core is done with it */
    int okind;                    /* outbound: 1 originate, 2 a kept place called back */
    char to[48];                  /* outbound: the customer's number */
    bool out_ringing;             /* the number dialled (outbound, transfer) sent 180/183 */
    uint64_t ring_deadline, answered_at;
    uint64_t t_invite_us;         /* when the INVITE came (routing latency), 0 once measured */
    uint32_t se_s;                /* RFC 4028: the session interval the caller refreshes (refresher=uac); 0 = none */
    uint64_t se_deadline;         /* the session expires then unless a refresh comes */
    /* player */
    struct prompt *cur;
    size_t pos;
    struct prompt *pending[4];
    int npend;
    bool welcome_done, hangup_after;
    uint64_t next_wait, hangup_at;
    size_t music_pos;
    uint32_t last_pos;
    /* IVR */
    char menu[72], ivr_path[40];
    int menu_round;
    uint64_t menu_deadline;
    bool menu_closed;             /* the menu's when_closed variant (its queue was closed on entry) */
};

struct reg {
    struct le le;
    char user[72];
    char *contact;
    uint64_t expires;
};

struct ua {
    sipp *p;
    sipc_cfg cfg;
    struct sip *sip;
    struct sipsess_sock *ssock;
    struct sip_lsnr *lsnr;
    struct udp_helper *uh;
    struct sa laddr;
    char lhost[80];
    uint16_t lport;
    struct list calls, media, prompts, regs;
    struct tmr clock, house;
    uint64_t next_tick;
    uint32_t next_id;
    int ncalls;
    sipa_clip music;              /* the generated default music */
    sipa_clip ringback;           /* 425 Hz, 1 s on, 4 s off: while a transfer rings */
    uint8_t secret[16];
    unsigned long gen;
    /* the queues menus' when_closed name: closed now? (MQ_QUEUE_STATE from the core's poll;
     * a queue not heard of yet counts as open) */
    struct { char queue[72]; bool closed; } qstate[SIPC_MAX_QSTATE];
    int n_qstate;
};

static void call_end(struct call *c, const char *reason, bool by_caller);
static void dial_customer(struct call *c);
static void originate_result(struct call *c, acdm_originate_outcome o, const char *reason);
static void call_destructor(void *arg);
static void caller_info(struct sip *sip, const struct sip_msg *msg, void *arg);
static bool bad_request(struct ua *ua, const struct sip_msg *msg);
static void hook_udp(struct ua *ua, const struct sip_msg *msg);
static const sipc_menu *call_menu(struct call *c);

/* ------------------------------------------------------------ small helpers */

static uint64_t now_ms(void) { return tmr_jiffies(); }

static uint64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static void st_add(sipp *p, unsigned long *field, long d)
{
    pthread_mutex_lock(&p->st_mu);
    *field = (unsigned long)((long)*field + d);
    pthread_mutex_unlock(&p->st_mu);
}
#define ST(ua, f) st_add((ua)->p, &(ua)->p->st.f, 1)

static void pl_copy(const struct pl *pl, char *out, size_t n)
{
    if (!pl || !pl->p || !pl->l) { out[0] = 0; return; }
    size_t l = pl->l < n - 1 ? pl->l : n - 1;
    memcpy(out, pl->p, l);
    out[l] = 0;
}

static void post_log(struct ua *ua, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void post_log(struct ua *ua, int level, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    smsg *m = smsg_new(ua->p, CM_LOG, 0);
    if (!m) return;
    m->a = (uint32_t)level;
    m->text = sip_strdup(buf);
    core_post(ua->p, m);
}

static struct call *call_find(struct ua *ua, uint32_t id)
{
    for (struct le *le = list_head(&ua->calls); le; le = le->next) {
        struct call *c = le->data;
        if (c->id == id) return c;
    }
    return NULL;
}

/* ------------------------------------------------------------ prompts (cache, rendered by tts.c) */

static void prompt_destructor(void *arg)
{
    struct prompt *pr = arg;
    list_unlink(&pr->le);
    free(pr->key);
    sipa_clip_free(&pr->clip);
}

/* The cached prompt for text (spoken) or file; rendering is requested on first use. The
 * result is referenced by the cache; callers mem_ref what they keep. */
static struct prompt *prompt_get(struct ua *ua, const char *text, const char *file)
{
    if (!text && !file) return NULL;
    char *key = NULL;
    if (text) re_sdprintf(&key, "t|%s|%s", ua->cfg.tts_voice, text);
    else re_sdprintf(&key, "f|%s", file);
    if (!key) return NULL;
    for (struct le *le = list_head(&ua->prompts); le; le = le->next) {
        struct prompt *pr = le->data;
        if (!strcmp(pr->key, key)) { mem_deref(key); return pr; }
    }
    struct prompt *pr = mem_zalloc(sizeof *pr, prompt_destructor);
    tts_job *j = calloc(1, sizeof *j);
    if (!pr || !j || !(pr->key = strdup(key))) { mem_deref(pr); free(j); mem_deref(key); return NULL; }
    mem_deref(key);
    pr->state = P_PENDING;
    list_append(&ua->prompts, &pr->le, pr);
    j->key = strdup(pr->key);
    j->text = sip_strdup(text);
    j->file = sip_strdup(file);
    j->voice = sip_strdup(ua->cfg.tts_voice);
    j->command = sip_strdup(ua->cfg.tts_command);
    tts_submit(ua->p, j);
    return pr;
}

static struct prompt *prompt_of(struct ua *ua, const sipc_prompt *sp)
{
    return sp ? prompt_get(ua, sp->text, sp->file) : NULL;
}

static void tts_done(struct ua *ua, tts_job *j)
{
    for (struct le *le = list_head(&ua->prompts); le; le = le->next) {
        struct prompt *pr = le->data;
        if (strcmp(pr->key, j->key) || pr->state != P_PENDING) continue;
        if (j->rc == 0) {
            pr->clip = j->clip;
            j->clip.pcm = NULL;
            j->clip.n = 0;
            pr->state = P_READY;
            ST(ua, prompts_ready);
        } else {
            pr->state = P_FAILED;
            snprintf(pr->err, sizeof pr->err, "%s", j->err);
            ST(ua, prompts_failed);
            post_log(ua, ACDM_PLOG_ERR, "prompt %s: %s", pr->key, j->err);
        }
        break;
    }
    tts_job_free(j);
}

/* Renders every prompt the config names now ("at config load"), so the first caller hears them. */
static void prompts_prewarm(struct ua *ua)
{
    for (int i = 0; i < ua->cfg.n_psets; i++) {
        sipc_pset *ps = &ua->cfg.psets[i];
        prompt_of(ua, &ps->welcome);
        prompt_of(ua, &ps->wait);
        prompt_of(ua, &ps->music);
        prompt_of(ua, &ps->closed);
    }
    for (int i = 0; i < ua->cfg.n_menus; i++) {
        prompt_of(ua, &ua->cfg.menus[i].prompt);
        if (ua->cfg.menus[i].closed) prompt_of(ua, &ua->cfg.menus[i].closed->prompt);
    }
}

/* ------------------------------------------------------------ the player (on the media clock) */

static const sipc_pset *call_pset(const struct call *c)
{
    return sipc_pset_find(&c->ua->cfg, c->queue[0] ? c->queue : NULL);
}

static void player_clear(struct call *c)
{
    c->cur = mem_deref(c->cur);
    for (int i = 0; i < c->npend; i++) mem_deref(c->pending[i]);
    c->npend = 0;
    c->pos = 0;
}

static void player_enqueue(struct call *c, struct prompt *pr)
{
    if (!pr) return;
    if (c->npend == (int)(sizeof c->pending / sizeof c->pending[0])) {
        mem_deref(c->pending[0]);
        memmove(c->pending, c->pending + 1, (size_t)(c->npend - 1) * sizeof c->pending[0]);
        c->npend--;
    }
    c->pending[c->npend++] = mem_ref(pr);
}

static void clock_add(struct call *c)
{
    if (!c->mle.list) list_append(&c->ua->media, &c->mle, c);
}

static void clock_remove(struct call *c)
{
    list_unlink(&c->mle);
}

/* Picks what plays next when nothing is playing; false = music (or silence) for now. */
static bool player_next(struct call *c, uint64_t now)
{
    struct ua *ua = c->ua;
    const sipc_pset *ps = call_pset(c);
    if (c->st == CS_WAITING && !c->welcome_done) {
        c->welcome_done = true;
        struct prompt *w = ps ? prompt_of(ua, &ps->welcome) : NULL;
        c->next_wait = now + (uint64_t)(ps ? ps->wait_interval_s : 20) * 1000;
        if (w && w->state != P_FAILED) { c->cur = mem_ref(w); c->pos = 0; return true; }
    }
    if (c->npend > 0) {
        struct prompt *pr = c->pending[0];
        if (pr->state == P_PENDING) return false;      /* still rendering: music meanwhile */
        memmove(c->pending, c->pending + 1, (size_t)(c->npend - 1) * sizeof c->pending[0]);
        c->npend--;
        if (pr->state == P_FAILED) { mem_deref(pr); return player_next(c, now); }
        c->cur = pr;
        c->pos = 0;
        return true;
    }
    if (c->st == CS_WAITING && now >= c->next_wait) {
        c->next_wait = now + (uint64_t)(ps ? ps->wait_interval_s : 20) * 1000;
        struct prompt *w = ps ? prompt_of(ua, &ps->wait) : NULL;
        if (!w) w = prompt_get(ua, "Een moment geduld alstublieft.", NULL);
        if (w && w->state == P_READY) { c->cur = mem_ref(w); c->pos = 0; return true; }
    }
    return false;
}

static void music_fill(struct call *c, int16_t *buf, size_t n)
{
    const sipc_pset *ps = call_pset(c);
    struct prompt *m = ps && ps->music.file ? prompt_of(c->ua, &ps->music) : NULL;
    const sipa_clip *clip = m && m->state == P_READY && m->clip.n ? &m->clip : &c->ua->music;
    if (!clip->n) { memset(buf, 0, n * sizeof *buf); return; }
    for (size_t i = 0; i < n; i++) {
        if (c->music_pos >= clip->n) c->music_pos = 0;
        buf[i] = (int16_t)(clip->pcm[c->music_pos++] / 2);    /* music softer than speech */
    }
}

/* One 20 ms frame of what the caller hears. */
static void player_fill(struct call *c, int16_t *buf, uint64_t now)
{
    size_t off = 0;
    for (int guard = 0; off < SIPA_FRAME && guard < 8; guard++) {
        if (c->cur && c->cur->state == P_READY && c->pos < c->cur->clip.n) {
            size_t k = c->cur->clip.n - c->pos;
            if (k > SIPA_FRAME - off) k = SIPA_FRAME - off;
            memcpy(buf + off, c->cur->clip.pcm + c->pos, k * sizeof *buf);
            c->pos += k;
            off += k;
            continue;
        }
        if (c->cur) {                               /* a prompt ended */
            c->cur = mem_deref(c->cur);
            if (c->st == CS_MENU) {
                const sipc_menu *mn = call_menu(c);
                c->menu_deadline = now + (uint64_t)(mn ? mn->timeout_s : 5) * 1000;
            }
            if (c->st == CS_CLOSED && c->npend == 0 && !c->hangup_at) c->hangup_at = now + 400;
        }
        if (c->st == CS_HELD || !player_next(c, now)) break;
    }
    if (c->st == CS_XFER && c->ua->ringback.n) {
        for (size_t i = 0; i < SIPA_FRAME; i++) {
            if (c->music_pos >= c->ua->ringback.n) c->music_pos = 0;
            buf[i] = c->ua->ringback.pcm[c->music_pos++];
        }
        return;
    }
    if (off < SIPA_FRAME) {
        if (c->st == CS_WAITING || c->st == CS_HELD) music_fill(c, buf + off, SIPA_FRAME - off);
        else memset(buf + off, 0, (SIPA_FRAME - off) * sizeof *buf);
    }
}

static void leg_send(struct leg *l, const uint8_t *payload, size_t n, bool relay_marker)
{
    struct mbuf *mb = mbuf_alloc(RTP_HEADER_SIZE + n);
    if (!mb) return;
    mb->pos = mb->end = RTP_HEADER_SIZE;
    mbuf_write_mem(mb, payload, n);
    mb->pos = RTP_HEADER_SIZE;
    (void)rtp_send(l->rtp, &l->raddr, false, l->marker || relay_marker, (uint8_t)l->pt, l->ts, mb);
    l->marker = false;
    l->ts += (uint32_t)n;
    mem_deref(mb);
}

static void call_tick(struct call *c, uint64_t now)
{
    if (!c->c.have_media) return;
    int16_t pcm[SIPA_FRAME];
    uint8_t enc[SIPA_FRAME];
    player_fill(c, pcm, now);
    sipa_encode(c->c.pt, pcm, enc, SIPA_FRAME);
    leg_send(&c->c, enc, SIPA_FRAME, false);
}

static void media_clock(void *arg)
{
    struct ua *ua = arg;
    uint64_t now = now_ms();
    if (now > ua->next_tick + 200) ua->next_tick = now;       /* fell far behind: resync */
    int rounds = 0;
    while (ua->next_tick <= now && rounds++ < 10) {
        for (struct le *le = list_head(&ua->media); le;) {
            struct call *c = le->data;
            le = le->next;
            call_tick(c, now);
        }
        ua->next_tick += CLOCK_MS;
    }
    tmr_start(&ua->clock, ua->next_tick > now ? ua->next_tick - now : 1, media_clock, ua);
}

/* ------------------------------------------------------------ legs */

static void leg_close(struct leg *l)
{
    l->sess = mem_deref(l->sess);
    l->rtp = mem_deref(l->rtp);
    l->sdp = mem_deref(l->sdp);
    l->m = NULL;
    l->estab = l->have_media = false;
}

static void rtp_caller(const struct sa *src, const struct rtp_header *hdr, struct mbuf *mb, void *arg);
static void rtp_agent(const struct sa *src, const struct rtp_header *hdr, struct mbuf *mb, void *arg);

static int leg_media(struct ua *ua, struct leg *l, struct call *c, bool caller)
{
    int err = sdp_session_alloc(&l->sdp, &ua->laddr);
    if (!err) err = rtp_listen(&l->rtp, IPPROTO_UDP, &ua->laddr, (uint16_t)ua->cfg.rtp_min, (uint16_t)ua->cfg.rtp_max,
                               false, caller ? rtp_caller : rtp_agent, NULL, c);
    if (!err) err = sdp_media_add(&l->m, l->sdp, "audio", sa_port(rtp_local(l->rtp)), "RTP/AVP");
    for (int i = 0; !err && i < ua->cfg.n_codecs; i++)
        err = sdp_format_add(NULL, l->m, false, ua->cfg.codecs[i] == 8 ? "8" : "0",
                             ua->cfg.codecs[i] == 8 ? "PCMA" : "PCMU", 8000, 1, NULL, NULL, NULL, false, NULL);
    if (!err) err = sdp_format_add(NULL, l->m, false, "101", telev_rtpfmt, 8000, 1, NULL, NULL, NULL, false, "0-15");
    l->ts = (uint32_t)rand_u32();
    l->marker = true;
    l->pt = -1;
    l->tev_pt = -1;
    return err;
}

/* After the remote SDP is decoded: the codec we send (ours in preference order), DTMF's pt. */
static bool leg_choose(struct ua *ua, struct leg *l)
{
    l->pt = -1;
    for (int i = 0; i < ua->cfg.n_codecs && l->pt < 0; i++) {
        const struct sdp_format *f = sdp_media_rformat(l->m, ua->cfg.codecs[i] == 8 ? "PCMA" : "PCMU");
        if (f) l->pt = ua->cfg.codecs[i];
    }
    const struct sdp_format *t = sdp_media_rformat(l->m, telev_rtpfmt);
    l->tev_pt = t ? t->pt : -1;
    if (l->pt < 0) return false;
    sa_cpy(&l->raddr, sdp_media_raddr(l->m));
    l->have_media = sa_isset(&l->raddr, SA_ALL) != 0;
    return true;
}

static void relay(struct leg *from, struct leg *to, struct mbuf *mb)
{
    if (!to->have_media || to->pt < 0) return;
    size_t n = mbuf_get_left(mb);
    if (n == 0 || n > 1200) return;
    if (from->pt == to->pt) { leg_send(to, mbuf_buf(mb), n, false); return; }
    int16_t pcm[1200];
    uint8_t enc[1200];
    sipa_decode(from->pt, mbuf_buf(mb), pcm, n);
    sipa_encode(to->pt, pcm, enc, n);
    leg_send(to, enc, n, false);
}

/* ------------------------------------------------------------ DTMF and the IVR */

static void menu_start(struct call *c, const char *name);

static bool queue_closed_now(struct ua *ua, const char *queue)
{
    for (int i = 0; i < ua->n_qstate; i++)
        if (!strcmp(ua->qstate[i].queue, queue)) return ua->qstate[i].closed;
    return false;
}

static void on_queue_state(struct ua *ua, const char *queue, bool closed)
{
    if (!queue) return;
    int i = 0;
    while (i < ua->n_qstate && strcmp(ua->qstate[i].queue, queue)) i++;
    if (i < ua->n_qstate && ua->qstate[i].closed == closed) return;
    if (i == ua->n_qstate && ua->n_qstate >= SIPC_MAX_QSTATE) {
        /* full after reloads: forget the queues no menu names any more */
        int n = 0;
        for (int k = 0; k < ua->n_qstate; k++) {
            bool named = false;
            for (int j = 0; j < ua->cfg.n_menus && !named; j++)
                named = ua->cfg.menus[j].closed_queue && !strcmp(ua->cfg.menus[j].closed_queue, ua->qstate[k].queue);
            if (named) ua->qstate[n++] = ua->qstate[k];
        }
        ua->n_qstate = n;
        i = n;
    }
    if (i == ua->n_qstate) {
        if (ua->n_qstate >= SIPC_MAX_QSTATE) return;
        snprintf(ua->qstate[i].queue, sizeof ua->qstate[0].queue, "%s", queue);
        ua->n_qstate++;
    }
    ua->qstate[i].closed = closed;
    post_log(ua, ACDM_PLOG_INFO, "queue %s is %s now: menus with when_closed on it play their %s variant", queue,
             closed ? "closed" : "open", closed ? "when_closed" : "normal");
}

/* The menu the caller is in: its when_closed variant when that was chosen on entry. */
static const sipc_menu *call_menu(struct call *c)
{
    const sipc_menu *mn = sipc_menu_find(&c->ua->cfg, c->menu);
    return mn && c->menu_closed && mn->closed ? mn->closed : mn;
}

static void ivr_choose_queue(struct call *c, const char *queue)
{
    snprintf(c->queue, sizeof c->queue, "%s", queue);
    c->menu[0] = 0;
    player_clear(c);
    smsg *m = smsg_new(c->ua->p, CM_MENU_CHOICE, c->id);
    if (!m) return;
    m->queue = sip_strdup(queue);
    m->text = sip_strdup(c->ivr_path);
    core_post(c->ua->p, m);
    c->st = CS_RINGING;             /* submitting: quiet until the commit says where we stand */
}

static void ivr_target(struct call *c, const sipc_target *t)
{
    if (t->type == SIPC_T_MENU) menu_start(c, t->name);
    else ivr_choose_queue(c, t->name);
}

static void menu_start(struct call *c, const char *name)
{
    const sipc_menu *mn = sipc_menu_find(&c->ua->cfg, name);
    if (!mn) { post_log(c->ua, ACDM_PLOG_ERR, "call %u: menu %s is gone", c->id, name); call_end(c, "no menu", false); return; }
    snprintf(c->menu, sizeof c->menu, "%s", name);
    c->menu_closed = mn->closed && queue_closed_now(c->ua, mn->closed_queue);
    if (c->menu_closed) {
        post_log(c->ua, ACDM_PLOG_INFO, "call %u: menu %s: queue %s is closed: the when_closed menu", c->id, name,
                 mn->closed_queue);
        mn = mn->closed;
    }
    c->st = CS_MENU;
    c->menu_round = 0;
    c->menu_deadline = 0;
    player_clear(c);
    c->cur = mem_ref(prompt_of(c->ua, &mn->prompt));
    c->pos = 0;
    clock_add(c);
}

static void menu_timeout(struct call *c)
{
    const sipc_menu *mn = call_menu(c);
    if (!mn) return;
    if (++c->menu_round > mn->repeats) {
        post_log(c->ua, ACDM_PLOG_INFO, "call %u: menu %s: no choice after %d rounds: default queue %s", c->id, mn->name,
                 c->menu_round, mn->dflt.name);
        ivr_target(c, &mn->dflt);
        return;
    }
    c->menu_deadline = 0;
    player_clear(c);
    c->cur = mem_ref(prompt_of(c->ua, &mn->prompt));
    c->pos = 0;
}

static void on_digit(struct call *c, char d, const char *how)
{
    ST(c->ua, dtmf);
    post_log(c->ua, ACDM_PLOG_INFO, "call %u: DTMF %c (%s) in state %s", c->id, d, how, cstate_names[c->st]);
    if (c->st == CS_WAITING && c->ua->cfg.callback_key && d == c->ua->cfg.callback_key && !c->closing) {
        if (!acdm_phone_number_ok(c->from)) {
            post_log(c->ua, ACDM_PLOG_INFO, "call %u: callback asked, but the caller's number (%s) cannot be called", c->id, c->from);
            return;
        }
        smsg *m = smsg_new(c->ua->p, CM_CALLBACK, c->id);
        if (!m) return;
        m->from = sip_strdup(c->from);
        snprintf(m->bericht, sizeof m->bericht, "%s", c->bericht);
        core_post(c->ua->p, m);
        c->st = CS_CLOSED;          /* quiet until the callback is stored, then the text and BYE */
        player_clear(c);
        c->hangup_at = 0;
        return;
    }
    if (c->st != CS_MENU) return;
    const sipc_menu *mn = call_menu(c);
    if (!mn) return;
    for (int i = 0; i < mn->n_choices; i++)
        if (mn->choices[i].key == d) {
            size_t l = strlen(c->ivr_path);
            if (l + 3 < sizeof c->ivr_path) snprintf(c->ivr_path + l, sizeof c->ivr_path - l, "%s%c", l ? "-" : "", d);
            ivr_target(c, &mn->choices[i].to);
            return;
        }
    post_log(c->ua, ACDM_PLOG_INFO, "call %u: menu %s: key %c is not a choice: the menu again", c->id, mn->name, d);
    menu_timeout(c);
}

/* ------------------------------------------------------------ RTP in */

static void rtp_caller(const struct sa *src, const struct rtp_header *hdr, struct mbuf *mb, void *arg)
{
    struct call *c = arg;
    (void)src;
    c->c.last_rx = now_ms();
    if (c->c.tev_pt >= 0 && hdr->pt == c->c.tev_pt) {
        char d = sipa_dtmf_feed(&c->c.dd, hdr->ts, mbuf_buf(mb), mbuf_get_left(mb));
        if (d) on_digit(c, d, "rfc4733");
        return;
    }
    if (hdr->pt != c->c.pt && !(hdr->pt == 0 || hdr->pt == 8)) return;
    if (c->st == CS_BRIDGED && c->a.estab) {
        int saved = c->c.pt;
        c->c.pt = hdr->pt;          /* decode what arrived */
        relay(&c->c, &c->a, mb);
        c->c.pt = saved;
    }
}

static void rtp_agent(const struct sa *src, const struct rtp_header *hdr, struct mbuf *mb, void *arg)
{
    struct call *c = arg;
    (void)src;
    c->a.last_rx = now_ms();
    if (c->a.tev_pt >= 0 && hdr->pt == c->a.tev_pt) return;
    if (!(hdr->pt == 0 || hdr->pt == 8)) return;
    if (c->st == CS_BRIDGED) {
        int saved = c->a.pt;
        c->a.pt = hdr->pt;
        relay(&c->a, &c->c, mb);
        c->a.pt = saved;
    }
}

/* ------------------------------------------------------------ call life */

static void call_destructor(void *arg)
{
    struct call *c = arg;
    list_unlink(&c->le);
    list_unlink(&c->mle);
    player_clear(c);
    leg_close(&c->a);
    leg_close(&c->c);
}

/* Ends the call (BYE/CANCEL/reject as the state needs) and tells the core. */
static void call_end(struct call *c, const char *reason, bool by_caller)
{
    struct ua *ua = c->ua;
    if (c->closing) return;
    c->closing = true;
    smsg *m = smsg_new(ua->p, CM_CALL_GONE, c->id);
    if (m) {
        m->text = sip_strdup(reason);
        m->a = by_caller ? 1 : c->keep ? 2 : 0;   /* 2: the bericht keeps waiting */
        core_post(ua->p, m);
    }
    if (c->c.sess && !c->c.estab && !by_caller && !c->answered_at)
        (void)sipsess_reject(c->c.sess, 480, "Temporarily Unavailable", "");
    ua->ncalls--;
    st_add(ua->p, &ua->p->st.calls_now, -1);
    mem_deref(c);
}

static void caller_estab(const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    (void)msg;
    c->c.estab = true;
}

static void caller_close(int err, const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    (void)msg;
    c->c.sess = mem_deref(c->c.sess);
    call_end(c, err == ECONNRESET || !err ? "hangup" : "caller leg failed", true);
}

static void caller_info(struct sip *sip, const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    char ct[80] = "";
    if (pl_isset(&msg->ctyp.type)) re_snprintf(ct, sizeof ct, "%r/%r", &msg->ctyp.type, &msg->ctyp.subtype);
    char d = sipa_info_dtmf(ct, (const char *)mbuf_buf(msg->mb), mbuf_get_left(msg->mb));
    if (d) {
        (void)sip_treply(NULL, sip, msg, 200, "OK");
        on_digit(c, d, "SIP INFO");
    } else {
        (void)sip_treply(NULL, sip, msg, 415, "Unsupported Media Type");
        post_log(c->ua, ACDM_PLOG_WARN, "call %u: INFO without DTMF (%s) refused with 415", c->id, ct[0] ? ct : "no body");
    }
}

/* A re-INVITE from the caller (hold from their side, a new address): answer with our SDP. */
static int caller_offer(struct mbuf **descp, const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    if (c->se_s) {
        /* a refresh; libre's 200 to a re-INVITE carries no Session-Expires, which per RFC 4028
         * section 7.2 means no session timer from now on for both sides (the caller stops
         * refreshing): we stop expecting one (the RTP time-out still ends a vanished call) */
        post_log(c->ua, ACDM_PLOG_INFO, "call %u: re-INVITE from the caller: the session timer ends (RFC 4028 7.2)", c->id);
        c->se_s = 0;
        c->se_deadline = 0;
    }
    int err = sdp_decode(c->c.sdp, msg->mb, true);
    if (err) return err;
    if (!leg_choose(c->ua, &c->c)) return EPROTO;
    return sdp_encode(descp, c->c.sdp, false);
}

static int caller_answer(const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    (void)msg;
    (void)c;
    return 0;
}

static void answer_caller(struct call *c)
{
    struct mbuf *desc = NULL;
    char se[96] = "";
    if (c->se_s) {
        snprintf(se, sizeof se, "Session-Expires: %u;refresher=uac\r\nRequire: timer\r\n", c->se_s);
        c->se_deadline = now_ms() + (uint64_t)c->se_s * 1000;
    }
    if (sdp_encode(&desc, c->c.sdp, false) ||
        sipsess_answer(c->c.sess, 200, "OK", desc, "Allow: INVITE, ACK, BYE, CANCEL, INFO, OPTIONS, UPDATE\r\n"
                       "Supported: timer\r\n%s", se)) {
        mem_deref(desc);
        post_log(c->ua, ACDM_PLOG_ERR, "call %u: cannot send 200 OK", c->id);
        call_end(c, "answer failed", false);
        return;
    }
    mem_deref(desc);
    c->answered_at = now_ms();
    c->c.last_rx = c->answered_at;
    ST(c->ua, answered);
}

static bool reply_retry_after(struct ua *ua, const struct sip_msg *msg)
{
    return sip_treplyf(NULL, NULL, ua->sip, msg, false, 503, "Service Unavailable",
                       "Retry-After: %d\r\nContent-Length: 0\r\n\r\n", ua->cfg.retry_after_s) == 0;
}

/* RFC 4028 on a new INVITE: a Session-Expires below our session_min_se_s gets 422 with our
 * Min-SE (false: answered). A caller that supports timers and refreshes itself (refresher=uac
 * or none asked) gets the interval it asked for, or session_expires_s, never below either side's
 * Min-SE; it must refresh by re-INVITE or UPDATE within it, else the call ends (house). A caller
 * that asks us to refresh (refresher=uas) or does not support timers gets none (the RTP
 * time-out still ends a vanished call). */
static bool session_timer(struct ua *ua, const struct sip_msg *msg, const char *dialled, const char *src, uint32_t *se_s)
{
    *se_s = 0;
    const struct sip_hdr *h = sip_msg_hdr(msg, SIP_HDR_SESSION_EXPIRES);
    const struct sip_hdr *mh = sip_msg_hdr(msg, SIP_HDR_MIN_SE);
    struct pl num;
    uint32_t asked = h && !re_regex(h->val.p, h->val.l, "[0-9]+", &num) ? pl_u32(&num) : 0;
    uint32_t their_min = mh && !re_regex(mh->val.p, mh->val.l, "[0-9]+", &num) ? pl_u32(&num) : 0;
    if (h && asked < (uint32_t)ua->cfg.session_min_se_s) {
        ST(ua, rejected_422);
        (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 422, "Session Interval Too Small",
                          "Min-SE: %d\r\nContent-Length: 0\r\n\r\n", ua->cfg.session_min_se_s);
        post_log(ua, ACDM_PLOG_WARN, "INVITE for %s from %s: Session-Expires %u is below our Min-SE %d: 422", dialled, src,
                 asked, ua->cfg.session_min_se_s);
        return false;
    }
    if (!ua->cfg.session_expires_s) return true;
    bool supports = sip_msg_hdr_has_value(msg, SIP_HDR_SUPPORTED, "timer") || sip_msg_hdr_has_value(msg, SIP_HDR_REQUIRE, "timer");
    struct pl r;
    bool they_refresh = !h || re_regex(h->val.p, h->val.l, "refresher=[a-z]+", &r) || !pl_strcasecmp(&r, "uac");
    if (!supports || !they_refresh) return true;
    uint32_t se = asked && asked < (uint32_t)ua->cfg.session_expires_s ? asked : (uint32_t)ua->cfg.session_expires_s;
    if (se < their_min) se = their_min;
    if (se < (uint32_t)ua->cfg.session_min_se_s) se = (uint32_t)ua->cfg.session_min_se_s;
    *se_s = se;
    return true;
}

/* A new INVITE. */
static void conn_h(const struct sip_msg *msg, void *arg)
{
    struct ua *ua = arg;
    char dialled[48], from[72], src[64];
    hook_udp(ua, msg);
    if (bad_request(ua, msg)) return;
    ST(ua, invites);
    pl_copy(&msg->uri.user, dialled, sizeof dialled);
    pl_copy(&msg->from.uri.user, from, sizeof from);
    re_snprintf(src, sizeof src, "%J", &msg->src);
    if (!dialled[0]) {
        ST(ua, rejected_404);
        (void)sip_treply(NULL, ua->sip, msg, 404, "Not Found");
        post_log(ua, ACDM_PLOG_WARN, "INVITE from %s without a number in the Request-URI: 404", src);
        return;
    }
    const sipc_number *num = sipc_number_find(&ua->cfg, dialled);
    if (!num) {
        ST(ua, rejected_404);
        (void)sip_treply(NULL, ua->sip, msg, 404, "Not Found");
        post_log(ua, ACDM_PLOG_WARN, "INVITE for unknown number %s from %s (%s): 404", dialled, from[0] ? from : "anonymous", src);
        return;
    }
    if (ua->ncalls >= ua->cfg.max_calls) {
        ST(ua, rejected_503);
        reply_retry_after(ua, msg);
        post_log(ua, ACDM_PLOG_WARN, "INVITE for %s from %s: %d calls in progress (max_calls): 503, Retry-After %d",
                 dialled, src, ua->ncalls, ua->cfg.retry_after_s);
        return;
    }
    uint32_t se_s = 0;
    if (!session_timer(ua, msg, dialled, src, &se_s)) return;
    if (!mbuf_get_left(msg->mb) || !msg_ctype_cmp(&msg->ctyp, "application", "sdp")) {
        ST(ua, rejected_488);
        (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 488, "Not Acceptable Here",
                          "Warning: 399 acdm \"an SDP offer is required\"\r\nContent-Length: 0\r\n\r\n");
        post_log(ua, ACDM_PLOG_WARN, "INVITE for %s from %s without an SDP offer: 488", dialled, src);
        return;
    }
    struct call *c = mem_zalloc(sizeof *c, call_destructor);
    if (!c) { reply_retry_after(ua, msg); return; }
    c->ua = ua;
    c->id = ++ua->next_id;
    c->t_invite_us = now_us();
    c->se_s = se_s;
    snprintf(c->dialled, sizeof c->dialled, "%s", dialled);
    snprintf(c->from, sizeof c->from, "%s", from[0] ? from : "anonymous");
    pl_copy(&msg->callid, c->callid, sizeof c->callid);
    if (num->to.type == SIPC_T_QUEUE) snprintf(c->queue, sizeof c->queue, "%s", num->to.name);
    int err = leg_media(ua, &c->c, c, true);
    if (err) {
        mem_deref(c);
        ST(ua, rejected_503);
        reply_retry_after(ua, msg);
        post_log(ua, ACDM_PLOG_ERR, "INVITE for %s from %s: no RTP port free in %d-%d (%s): 503", dialled, src,
                 ua->cfg.rtp_min, ua->cfg.rtp_max, strerror(err));
        return;
    }
    err = sdp_decode(c->c.sdp, msg->mb, true);
    if (err) {
        mem_deref(c);
        ST(ua, rejected_400);
        (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 400, "Bad SDP", "Content-Length: 0\r\n\r\n");
        post_log(ua, ACDM_PLOG_WARN, "INVITE for %s from %s: the SDP offer cannot be read (%d): 400", dialled, src, err);
        return;
    }
    if (!leg_choose(ua, &c->c)) {
        mem_deref(c);
        ST(ua, rejected_488);
        (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 488, "Not Acceptable Here",
                          "Warning: 305 acdm \"no common codec: PCMA or PCMU needed\"\r\nContent-Length: 0\r\n\r\n");
        post_log(ua, ACDM_PLOG_WARN, "INVITE for %s from %s: no common codec in the offer (we take PCMA, PCMU): 488", dialled, src);
        return;
    }
    err = sipsess_accept(&c->c.sess, ua->ssock, msg, 180, "Ringing", "acdm", "application/sdp", NULL, NULL, NULL, false,
                         caller_offer, caller_answer, caller_estab, caller_info, NULL, caller_close, c,
                         "Allow: INVITE, ACK, BYE, CANCEL, INFO, OPTIONS\r\n");
    if (err) {
        mem_deref(c);
        post_log(ua, ACDM_PLOG_ERR, "INVITE for %s from %s: cannot accept (%d)", dialled, src, err);
        return;
    }
    list_append(&ua->calls, &c->le, c);
    ua->ncalls++;
    st_add(ua->p, &ua->p->st.calls_now, 1);
    if (num->to.type == SIPC_T_MENU) {
        /* the IVR: nothing is stored before the caller chose; the bericht is submitted with
         * the choice (CM_MENU_CHOICE) */
        answer_caller(c);
        if (c->closing) return;
        menu_start(c, num->to.name);
    }
    smsg *m = smsg_new(ua->p, CM_NEW_CALL, c->id);
    if (!m) return;
    m->from = sip_strdup(c->from);
    m->dialled = sip_strdup(c->dialled);
    m->queue = sip_strdup(c->queue[0] ? c->queue : NULL);
    m->callid = sip_strdup(c->callid);
    m->a = num->to.type == SIPC_T_MENU;
    core_post(ua->p, m);
}

/* The submit's outcome (after the commit): now the caller is answered. */
static void on_submitted(struct ua *ua, smsg *m)
{
    struct call *c = call_find(ua, m->call);
    if (!c) return;
    snprintf(c->bericht, sizeof c->bericht, "%s", m->bericht);
    switch (m->outcome) {
    case ACDM_SUBMIT_QUEUED:
    case ACDM_SUBMIT_DUPLICATE:
    case ACDM_SUBMIT_FOLLOWUP:
        if (!c->answered_at) answer_caller(c);
        if (c->closing) return;
        if (c->st == CS_BRIDGED || c->st == CS_HELD) break;   /* routed before the commit: the agent already answered */
        c->st = CS_WAITING;
        c->next_wait = 0;
        clock_add(c);
        break;
    case ACDM_SUBMIT_CLOSED: {
        if (!c->answered_at) answer_caller(c);
        if (c->closing) return;
        ST(ua, closed_played);
        c->st = CS_CLOSED;
        player_clear(c);
        const sipc_pset *ps = call_pset(c);
        struct prompt *pr = ps && (ps->closed.text || ps->closed.file) ? prompt_of(ua, &ps->closed)
                                                                        : prompt_get(ua, m->text && *m->text ? m->text : "Wij zijn op dit moment gesloten.", NULL);
        player_enqueue(c, pr);
        c->hangup_at = 0;
        clock_add(c);
        post_log(ua, ACDM_PLOG_INFO, "call %u (%s): queue %s is closed: the closed text, then hang up", c->id, c->bericht, c->queue);
        break;
    }
    default:
        post_log(ua, ACDM_PLOG_ERR, "call %u: the core refused the call (%s): 503", c->id, m->text ? m->text : "");
        if (!c->answered_at) {
            (void)sipsess_reject(c->c.sess, 503, "Service Unavailable", "Retry-After: %d\r\n", ua->cfg.retry_after_s);
            c->answered_at = 1;     /* rejected: no second final answer */
        }
        call_end(c, "refused", false);
        break;
    }
}

/* ------------------------------------------------------------ the agent's leg */

static void agent_result(struct call *c, acdm_device_outcome o, const char *reason)
{
    if (c->outbound && c->okind != 2) {
        if (o != ACDM_DEVICE_ANSWERED) {
            originate_result(c, ACDM_ORIG_FAILED, reason);
            call_end(c, "outbound failed", false);
        }
        return;
    }
    smsg *m = smsg_new(c->ua->p, CM_DEVICE, c->id);
    if (!m) return;
    snprintf(m->agent, sizeof m->agent, "%s", c->agent);
    snprintf(m->bericht, sizeof m->bericht, "%s", c->bericht);
    m->a = (uint32_t)o;
    m->b = c->device_offer;
    m->text = sip_strdup(reason);
    core_post(c->ua->p, m);
    if (c->outbound && c->okind == 2 && o != ACDM_DEVICE_ANSWERED) {
        c->keep = true;             /* the citizen keeps their place: the next agent calls back */
        call_end(c, "the agent's phone did not answer the callback", false);
    }
}

static int agent_answer(const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    int err = sdp_decode(c->a.sdp, msg->mb, false);
    if (err) return err;
    if (!leg_choose(c->ua, &c->a)) return EPROTO;
    return 0;
}

static void agent_progress(const struct sip_msg *msg, void *arg)
{
    (void)msg;
    (void)arg;
}

static void agent_estab(const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    (void)msg;
    if (c->a.pt < 0) {
        post_log(c->ua, ACDM_PLOG_ERR, "call %u: agent %s's phone answered without a common codec", c->id, c->agent);
        c->a.sess = mem_deref(c->a.sess);
        leg_close(&c->a);
        agent_result(c, ACDM_DEVICE_FAILED, "no common codec with the phone");
        return;
    }
    c->a.estab = true;
    c->a.last_rx = now_ms();
    c->ring_deadline = 0;
    if (c->outbound) {
        if (c->okind == 2) agent_result(c, ACDM_DEVICE_ANSWERED, NULL);
        dial_customer(c);
        return;
    }
    ST(c->ua, bridged);
    if (c->st == CS_WAITING || c->st == CS_RINGING) {
        c->st = CS_BRIDGED;
        player_clear(c);            /* the announcement stops the moment the agent answers */
        clock_remove(c);
    }
    post_log(c->ua, ACDM_PLOG_INFO, "call %u (%s): agent %s answered: bridged", c->id, c->bericht, c->agent);
    agent_result(c, ACDM_DEVICE_ANSWERED, NULL);
}

/* The outside number's leg of a blind transfer (in the agent leg's place). */
static void xfer_estab(const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    (void)msg;
    if (c->a.pt < 0) {
        post_log(c->ua, ACDM_PLOG_ERR, "call %u: %s answered without a common codec", c->id, c->to);
        call_end(c, "transfer failed", false);
        return;
    }
    c->a.estab = true;
    c->a.last_rx = now_ms();
    c->ring_deadline = 0;
    c->st = CS_BRIDGED;
    player_clear(c);
    clock_remove(c);
    c->c.marker = true;
    post_log(c->ua, ACDM_PLOG_INFO, "call %u: %s answered the transferred caller", c->id, c->to);
}

static void xfer_failed(struct call *c, const char *why);

/* A number acdm dials (a transfer out, an outbound call) may ring outbound.ring_timeout_s from
 * its first 180/183; one that never rings is given that plus 32 s (SIP's own transaction timeout
 * answers first when nothing at all comes back: "could not be reached"). */
static int out_ring_s(const struct ua *ua) { return ua->cfg.out_ring_timeout_s > 0 ? ua->cfg.out_ring_timeout_s : 30; }
static void out_dialled(struct call *c)
{
    c->out_ringing = false;
    c->ring_deadline = now_ms() + (uint64_t)out_ring_s(c->ua) * 1000 + 32000;
}
static void out_progress(const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    if (msg && msg->scode >= 180 && msg->scode < 200 && !c->out_ringing && c->ring_deadline) {
        c->out_ringing = true;
        c->ring_deadline = now_ms() + (uint64_t)out_ring_s(c->ua) * 1000;
    }
}
static void out_no_answer(const struct call *c, char *why, size_t n)
{
    const char *who = c->outbound ? "the number" : c->to;   /* an outbound call's log names it */
    if (c->out_ringing) snprintf(why, n, "%s did not answer in %d s", who, out_ring_s(c->ua));
    else snprintf(why, n, "%s did not ring within %d s", who, out_ring_s(c->ua) + 32);
}

static void xfer_close(int err, const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    bool was_up = c->a.estab;
    char why[120];
    if (msg && msg->scode) re_snprintf(why, sizeof why, "%s answered %u %r", c->to, msg->scode, &msg->reason);
    else re_snprintf(why, sizeof why, "%s %s (%m)", c->to, was_up ? "hung up" : "could not be reached", err);
    c->a.sess = mem_deref(c->a.sess);
    leg_close(&c->a);
    post_log(c->ua, was_up ? ACDM_PLOG_INFO : ACDM_PLOG_WARN, "call %u: transfer: %s", c->id, why);
    if (was_up) call_end(c, "the other party hung up", false);
    else xfer_failed(c, why);
}

/* The number a call was transferred to did not answer (busy, failed, or it rang past
 * outbound.ring_timeout_s): the caller is not dropped but waits in the queue again. */
static void xfer_failed(struct call *c, const char *why)
{
    c->ring_deadline = 0;
    if (!c->closing && c->c.estab) {
        /* the number did not answer (busy, no answer, failed): the caller is not dropped but
         * waits in the queue again; the core submits the call anew with its original queue
         * time (CM_XFER_FAILED) and MQ_SUBMITTED follows as for a new call */
        c->external = false;
        c->st = CS_WAITING;
        c->next_wait = 0;
        c->welcome_done = true;
        c->agent[0] = 0;
        player_clear(c);
        player_enqueue(c, prompt_get(c->ua, "Het nummer is niet bereikbaar. U blijft in de wachtrij.", NULL));
        clock_add(c);
        c->c.marker = true;
        smsg *m = smsg_new(c->ua->p, CM_XFER_FAILED, c->id);
        if (m) {
            m->text = sip_strdup(why);
            core_post(c->ua->p, m);
        }
        return;
    }
    call_end(c, "transfer failed", false);
}

/* Why c cannot be transferred out now (NULL: it can): the same for the phone's REFER and the
 * desk's transfer (MQ_TRANSFER_OUT). A call the desk holds is transferred as well. */
static const char *xfer_refusal(const struct call *c, const char *num)
{
    return !acdm_phone_number_ok(num) ? "no phone number to dial"
         : !c->ua->cfg.out_gateway ? "this channel has no outbound.gateway"
         : c->external ? "the call was transferred already"
         : c->outbound || (c->st != CS_BRIDGED && c->st != CS_HELD) || !c->c.estab || c->closing
             ? "only a bridged inbound call can be transferred"
         : NULL;
}

/* A blind transfer of c's caller to num (xfer_refusal said yes): the bericht ends for the agent
 * (CM_TRANSFER_OUT: wrap-up), the agent's leg is hung up, the caller hears ringback while num
 * is dialled through outbound.gateway; when it answers both talk on (xfer_estab). `by` says
 * who asked, for the log. */
static void xfer_start(struct call *c, const char *num, const char *by)
{
    struct ua *ua = c->ua;
    snprintf(c->to, sizeof c->to, "%s", num);
    ST(ua, transfers_out);
    smsg *m = smsg_new(ua->p, CM_TRANSFER_OUT, c->id);
    if (m) {
        snprintf(m->agent, sizeof m->agent, "%s", c->agent);
        m->text = sip_strdup(num);
        core_post(ua->p, m);
    }
    c->external = true;
    leg_close(&c->a);               /* BYE to the agent's phone */
    out_dialled(c);
    c->st = CS_XFER;
    c->music_pos = 0;
    player_clear(c);
    clock_add(c);
    char uri[160], from_uri[160];
    struct mbuf *desc = NULL;
    re_snprintf(uri, sizeof uri, "sip:%s@%s", num, ua->cfg.out_gateway);
    re_snprintf(from_uri, sizeof from_uri, "sip:%s@%s", ua->cfg.out_caller_id ? ua->cfg.out_caller_id : c->from, ua->lhost);
    int err = leg_media(ua, &c->a, c, false);
    if (!err) err = sdp_encode(&desc, c->a.sdp, true);
    if (!err)
        err = sipsess_connect(&c->a.sess, ua->ssock, uri, ua->cfg.out_caller_id ? ua->cfg.out_caller_id : c->from, from_uri,
                              "acdm", NULL, 0, "application/sdp", desc, NULL, NULL, false, NULL, agent_answer, out_progress,
                              xfer_estab, NULL, NULL, xfer_close, c, "Allow: INVITE, ACK, BYE, CANCEL, INFO, OPTIONS\r\n");
    mem_deref(desc);
    if (err) {
        leg_close(&c->a);
        post_log(ua, ACDM_PLOG_ERR, "call %u: transfer: cannot dial %s (%d)", c->id, uri, err);
        call_end(c, "transfer failed", false);
        return;
    }
    post_log(ua, ACDM_PLOG_INFO, "call %u (%s): agent %s transfers the caller to %s (%s): dialling %s", c->id, c->bericht,
             c->agent, num, by, uri);
}

/* REFER from the agent's phone during the conversation (RFC 3515, a blind transfer): the
 * Refer-To's user part is dialled (xfer_start). No NOTIFY is sent: the phone gets BYE right
 * after 202. */
static void agent_refer(struct sip *sip, const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    struct ua *ua = c->ua;
    const struct sip_hdr *h = sip_msg_hdr(msg, SIP_HDR_REFER_TO);
    struct sip_addr addr;
    char num[48] = "";
    if (h && !sip_addr_decode(&addr, &h->val)) pl_copy(&addr.uri.user, num, sizeof num);
    const char *why = !h ? "no Refer-To" : xfer_refusal(c, num);
    if (why) {
        (void)sip_treplyf(NULL, NULL, sip, msg, false, 403, "Forbidden", "Warning: 399 acdm \"%s\"\r\nContent-Length: 0\r\n\r\n", why);
        post_log(ua, ACDM_PLOG_WARN, "call %u: agent %s's phone asked a transfer (REFER): refused 403: %s", c->id, c->agent, why);
        return;
    }
    (void)sip_treply(NULL, sip, msg, 202, "Accepted");
    xfer_start(c, num, "REFER from the phone");
}

static void agent_close(int err, const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    bool was_up = c->a.estab;
    uint16_t sc = msg ? msg->scode : 0;
    c->a.sess = mem_deref(c->a.sess);
    leg_close(&c->a);
    c->ring_deadline = 0;
    if (c->outbound && !c->c.estab && (c->okind != 2 || was_up)) {
        char why[120];
        if (sc) re_snprintf(why, sizeof why, "the agent's phone answered %u %r", sc, &msg->reason);
        else re_snprintf(why, sizeof why, "the agent's phone %s", was_up ? "hung up before the customer answered" : "could not be reached");
        originate_result(c, ACDM_ORIG_FAILED, why);
        call_end(c, "outbound failed", false);
        return;
    }
    if (was_up) {
        post_log(c->ua, ACDM_PLOG_INFO, "call %u (%s): agent %s hung up", c->id, c->bericht, c->agent);
        smsg *m = smsg_new(c->ua->p, CM_AGENT_BYE, c->id);
        if (m) { snprintf(m->agent, sizeof m->agent, "%s", c->agent); core_post(c->ua->p, m); }
        call_end(c, "agent hung up", false);
        return;
    }
    acdm_device_outcome o = sc == 486 || sc == 600 ? ACDM_DEVICE_BUSY : sc == 603 ? ACDM_DEVICE_DECLINED
                          : sc == 408 || sc == 480 || sc == 487 ? ACDM_DEVICE_NOANSWER : ACDM_DEVICE_FAILED;
    char why[120];
    if (sc) re_snprintf(why, sizeof why, "the phone answered %u %r", sc, &msg->reason);
    else re_snprintf(why, sizeof why, "the phone could not be reached (%m)", err);
    post_log(c->ua, ACDM_PLOG_INFO, "call %u (%s): agent %s: %s", c->id, c->bericht, c->agent, why);
    if (c->st == CS_BRIDGED) { c->st = CS_WAITING; clock_add(c); }
    agent_result(c, o, why);
}

/* ------------------------------------------------------------ outbound (ABI 1.1 originate) */

/* An outbound call (a callback, the desk's call): the agent's phone is called first; when the
 * agent answers, the customer is dialled at outbound.gateway with the configured caller id;
 * when the customer answers, the legs are bridged and originate_result says CONNECTED. The
 * customer's leg is the call's `c` leg from then on, so a hang-up ends the bericht as for any
 * call. */
static void originate_result(struct call *c, acdm_originate_outcome o, const char *reason)
{
    if (c->okind == 2) return;      /* a kept place: the bericht goes on as an inbound call */
    smsg *m = smsg_new(c->ua->p, CM_ORIGINATE, c->id);
    if (!m) return;
    snprintf(m->bericht, sizeof m->bericht, "%s", c->bericht);
    m->a = (uint32_t)o;
    m->text = sip_strdup(reason);
    core_post(c->ua->p, m);
}

static int cust_answer(const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    int err = sdp_decode(c->c.sdp, msg->mb, false);
    if (err) return err;
    return leg_choose(c->ua, &c->c) ? 0 : EPROTO;
}

static void cust_estab(const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    (void)msg;
    c->c.estab = true;
    c->answered_at = now_ms();
    c->c.last_rx = c->answered_at;
    c->ring_deadline = 0;
    c->st = CS_BRIDGED;
    ST(c->ua, bridged);
    post_log(c->ua, ACDM_PLOG_INFO, "outbound call %u (%s): %s answered: bridged to agent %s", c->id, c->bericht, c->to, c->agent);
    originate_result(c, ACDM_ORIG_CONNECTED, NULL);
}

/* The number an outbound call dialled did not answer (busy, failed, or it rang past
 * outbound.ring_timeout_s): the agent's desk gets the reason, the call ends. */
static void cust_failed(struct call *c, const char *why)
{
    c->ring_deadline = 0;
    post_log(c->ua, ACDM_PLOG_INFO, "outbound call %u (%s) to %s: %s", c->id, c->bericht, c->to, why);
    originate_result(c, ACDM_ORIG_FAILED, why);
    call_end(c, c->okind == 2 ? "the citizen did not answer the callback" : "outbound failed", c->okind == 2);
}

static void cust_close(int err, const struct sip_msg *msg, void *arg)
{
    struct call *c = arg;
    uint16_t sc = msg ? msg->scode : 0;
    bool was_up = c->c.estab;
    c->c.sess = mem_deref(c->c.sess);
    if (!was_up) {
        char why[120];
        if (sc) re_snprintf(why, sizeof why, "the number answered %u %r", sc, &msg->reason);
        else re_snprintf(why, sizeof why, "the number could not be reached (%m)", err);
        cust_failed(c, why);
        return;
    }
    call_end(c, "hangup", true);
}

static void dial_customer(struct call *c)
{
    struct ua *ua = c->ua;
    char uri[160], from_uri[160];
    struct mbuf *desc = NULL;
    re_snprintf(uri, sizeof uri, "sip:%s@%s", c->to, ua->cfg.out_gateway);
    re_snprintf(from_uri, sizeof from_uri, "sip:%s@%s", ua->cfg.out_caller_id, ua->lhost);
    int err = leg_media(ua, &c->c, c, true);
    if (!err) err = sdp_encode(&desc, c->c.sdp, true);
    if (!err)
        err = sipsess_connect(&c->c.sess, ua->ssock, uri, ua->cfg.out_caller_id, from_uri, "acdm", NULL, 0,
                              "application/sdp", desc, NULL, NULL, false, NULL, cust_answer, out_progress, cust_estab,
                              caller_info, NULL, cust_close, c, "Allow: INVITE, ACK, BYE, CANCEL, INFO, OPTIONS\r\n");
    mem_deref(desc);
    if (err) {
        post_log(ua, ACDM_PLOG_ERR, "outbound call %u: cannot dial %s (%d)", c->id, uri, err);
        originate_result(c, ACDM_ORIG_FAILED, "the number could not be dialled");
        call_end(c, "outbound failed", false);
        return;
    }
    out_dialled(c);
    post_log(ua, ACDM_PLOG_INFO, "outbound call %u (%s): agent %s answered, dialling %s", c->id, c->bericht, c->agent, uri);
}

static void on_connect_agent(struct ua *ua, smsg *m);

static void on_originate(struct ua *ua, smsg *m)
{
    if (!ua->cfg.out_gateway) {
        struct call tmp = {.ua = ua, .id = m->call};
        snprintf(tmp.bericht, sizeof tmp.bericht, "%s", m->bericht);
        originate_result(&tmp, ACDM_ORIG_FAILED, "no outbound gateway configured");
        return;
    }
    struct call *c = mem_zalloc(sizeof *c, call_destructor);
    if (!c) return;
    c->ua = ua;
    c->id = m->call;
    c->outbound = true;
    c->okind = m->outcome == 2 ? 2 : 1;
    c->st = CS_OUTBOUND;
    snprintf(c->bericht, sizeof c->bericht, "%s", m->bericht);
    snprintf(c->to, sizeof c->to, "%s", m->dialled ? m->dialled : "");
    snprintf(c->from, sizeof c->from, "%s", ua->cfg.out_caller_id);
    list_append(&ua->calls, &c->le, c);
    ua->ncalls++;
    st_add(ua->p, &ua->p->st.calls_now, 1);
    if (c->okind == 1) m->b = 0;    /* a kept place rung through offer_device reports device results */
    on_connect_agent(ua, m);
}

static const struct reg *reg_find(struct ua *ua, const char *user)
{
    uint64_t now = now_ms();
    for (struct le *le = list_head(&ua->regs); le; le = le->next) {
        struct reg *r = le->data;
        if (!strcmp(r->user, user) && r->expires > now) return r;
    }
    return NULL;
}

static void on_connect_agent(struct ua *ua, smsg *m)
{
    struct call *c = call_find(ua, m->call);
    if (!c || c->closing) return;
    if (!c->bericht[0]) snprintf(c->bericht, sizeof c->bericht, "%s", m->bericht);   /* offered before the commit */
    if (c->a.sess) {
        if (!strcmp(c->agent, m->agent)) return;    /* already ringing this agent (offer, then accept on the desk) */
        leg_close(&c->a);
    }
    snprintf(c->agent, sizeof c->agent, "%s", m->agent);
    c->device_offer = m->b != 0;
    const char *uri = m->uri;
    if (uri && !strcmp(uri, "register")) {
        const struct reg *r = reg_find(ua, m->agent);
        if (!r) {
            post_log(ua, ACDM_PLOG_WARN, "call %u: agent %s's phone is not registered", c->id, m->agent);
            agent_result(c, ACDM_DEVICE_FAILED, "the phone is not registered");
            return;
        }
        uri = r->contact;
    }
    if (!uri || strncmp(uri, "sip:", 4)) {
        agent_result(c, ACDM_DEVICE_FAILED, "no phone configured");
        return;
    }
    struct mbuf *desc = NULL;
    char from_uri[160];
    re_snprintf(from_uri, sizeof from_uri, "sip:%s@%s", c->from, ua->lhost);
    int err = leg_media(ua, &c->a, c, false);
    if (!err) err = sdp_encode(&desc, c->a.sdp, true);
    if (!err)
        err = sipsess_connect(&c->a.sess, ua->ssock, uri, c->from, from_uri, "acdm", NULL, 0, "application/sdp", desc,
                              NULL, NULL, false, NULL, agent_answer, agent_progress, agent_estab, NULL, agent_refer,
                              agent_close, c, "Allow: INVITE, ACK, BYE, CANCEL, INFO, OPTIONS, REFER\r\n"
                              "X-Acdm-Bericht: %s\r\nX-Acdm-Queue: %s\r\nX-Acdm-Dialled: %s\r\n",
                              c->bericht, c->queue, c->dialled);
    mem_deref(desc);
    if (err) {
        leg_close(&c->a);
        post_log(ua, ACDM_PLOG_ERR, "call %u: cannot call agent %s at %s (%d)", c->id, m->agent, uri, err);
        agent_result(c, ACDM_DEVICE_FAILED, "the call to the phone failed");
        return;
    }
    ST(ua, agent_calls);
    if (c->t_invite_us) {
        uint64_t b = (now_us() - c->t_invite_us) / 100;
        if (b > 20000) b = 20000;
        pthread_mutex_lock(&ua->p->st_mu);
        ua->p->st.lat[b]++;
        ua->p->st.lat_n++;
        pthread_mutex_unlock(&ua->p->st_mu);
        c->t_invite_us = 0;         /* the first agent's INVITE counts, not a transfer's */
    }
    c->ring_deadline = now_ms() + (m->a ? m->a : (uint32_t)ua->cfg.ring_timeout_s * 1000);
    post_log(ua, ACDM_PLOG_INFO, "call %u (%s): calling agent %s at %s", c->id, c->bericht, m->agent, uri);
}

/* ------------------------------------------------------------ registrar (digest, RFC 3261 §10) */

static void reg_destructor(void *arg)
{
    struct reg *r = arg;
    list_unlink(&r->le);
    free(r->contact);
}

static void post_reachable(struct ua *ua, const char *user, bool up, const char *why)
{
    smsg *m = smsg_new(ua->p, CM_REACHABLE, 0);
    if (!m) return;
    snprintf(m->agent, sizeof m->agent, "%s", user);
    m->a = up;
    m->text = sip_strdup(why);
    core_post(ua->p, m);
}

static void regs_publish(struct ua *ua)
{
    char buf[2048];
    size_t o = 0;
    buf[o++] = '[';
    uint64_t now = now_ms();
    for (struct le *le = list_head(&ua->regs); le && o < sizeof buf - 80; le = le->next) {
        struct reg *r = le->data;
        if (r->expires <= now) continue;
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s\"%s\"", o > 1 ? "," : "", r->user);
    }
    buf[o++] = ']';
    buf[o] = 0;
    pthread_mutex_lock(&ua->p->st_mu);
    memcpy(ua->p->st.registered, buf, o + 1);
    pthread_mutex_unlock(&ua->p->st_mu);
}

static void make_nonce(struct ua *ua, uint64_t t, char *out, size_t n)
{
    uint8_t d[16];
    char ts[24];
    snprintf(ts, sizeof ts, "%llx", (unsigned long long)t);
    md5_printf(d, "%w:%s", ua->secret, sizeof ua->secret, ts);
    re_snprintf(out, n, "%s.%w", ts, d, (size_t)8);
}

static bool nonce_ok(struct ua *ua, const struct pl *nonce, bool *stale)
{
    char given[80], want[80];
    pl_copy(nonce, given, sizeof given);
    unsigned long long t = strtoull(given, NULL, 16);
    make_nonce(ua, t, want, sizeof want);
    *stale = false;
    if (strcmp(given, want)) return false;
    uint64_t now = (uint64_t)time(NULL);
    if (now > t + NONCE_LIFE_S) { *stale = true; return false; }
    return true;
}

static void challenge(struct ua *ua, const struct sip_msg *msg, bool stale)
{
    char nonce[80];
    make_nonce(ua, (uint64_t)time(NULL), nonce, sizeof nonce);
    (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 401, "Unauthorized",
                      "WWW-Authenticate: Digest realm=\"%s\", nonce=\"%s\", qop=\"auth\", algorithm=MD5%s\r\n"
                      "Content-Length: 0\r\n\r\n", ua->cfg.realm, nonce, stale ? ", stale=true" : "");
}

static void on_register(struct ua *ua, const struct sip_msg *msg)
{
    char src[64], user[72];
    re_snprintf(src, sizeof src, "%J", &msg->src);
    ST(ua, registers);
    if (!ua->cfg.realm) {
        (void)sip_treply(NULL, ua->sip, msg, 403, "Forbidden");
        post_log(ua, ACDM_PLOG_WARN, "REGISTER from %s: this instance has no registrar: 403", src);
        ST(ua, register_denied);
        return;
    }
    const struct sip_hdr *ah = sip_msg_hdr(msg, SIP_HDR_AUTHORIZATION);
    if (!ah) { challenge(ua, msg, false); return; }
    struct httpauth_digest_resp r;
    if (httpauth_digest_response_decode(&r, &ah->val)) {
        (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 400, "Bad Authorization", "Content-Length: 0\r\n\r\n");
        post_log(ua, ACDM_PLOG_WARN, "REGISTER from %s: unreadable Authorization header: 400", src);
        ST(ua, register_denied);
        return;
    }
    pl_copy(&r.username, user, sizeof user);
    bool stale = false;
    if (!nonce_ok(ua, &r.nonce, &stale)) { challenge(ua, msg, stale); return; }
    const sipc_user *u = sipc_user_find(&ua->cfg, user);
    uint8_t ha1[MD5_SIZE];
    char to_user[72];
    pl_copy(&msg->to.uri.user, to_user, sizeof to_user);
    if (!u || pl_strcmp(&r.realm, ua->cfg.realm) || md5_printf(ha1, "%s:%s:%s", u->user, ua->cfg.realm, u->password) ||
        httpauth_digest_response_auth(&r, &msg->met, ha1)) {
        (void)sip_treply(NULL, ua->sip, msg, 403, "Forbidden");
        post_log(ua, ACDM_PLOG_WARN, "REGISTER from %s as %s: wrong user name or password: 403", src, user[0] ? user : "?");
        ST(ua, register_denied);
        return;
    }
    if (strcmp(to_user, user)) {
        (void)sip_treply(NULL, ua->sip, msg, 403, "Forbidden");
        post_log(ua, ACDM_PLOG_WARN, "REGISTER from %s: %s may not register %s: 403", src, user, to_user);
        ST(ua, register_denied);
        return;
    }
    /* the binding */
    const struct sip_hdr *ch = sip_msg_hdr(msg, SIP_HDR_CONTACT);
    uint32_t expires = pl_isset(&msg->expires) ? pl_u32(&msg->expires) : 3600;
    struct sip_addr addr;
    bool have_contact = ch && pl_strcmp(&ch->val, "*") && !sip_addr_decode(&addr, &ch->val);
    if (have_contact) {
        struct pl ev;
        if (!msg_param_decode(&addr.params, "expires", &ev)) expires = pl_u32(&ev);
    }
    if (expires > (uint32_t)ua->cfg.reg_max_expires) expires = (uint32_t)ua->cfg.reg_max_expires;
    struct reg *old = NULL;
    for (struct le *le = list_head(&ua->regs); le; le = le->next)
        if (!strcmp(((struct reg *)le->data)->user, user)) old = le->data;
    if (!ch) {                      /* a query: the current binding */
        if (old && old->expires > now_ms())
            (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 200, "OK", "Contact: <%s>;expires=%llu\r\nContent-Length: 0\r\n\r\n",
                              old->contact, (unsigned long long)((old->expires - now_ms()) / 1000));
        else (void)sip_treply(NULL, ua->sip, msg, 200, "OK");
        return;
    }
    if (expires == 0 || !have_contact) {
        if (old) { mem_deref(old); post_reachable(ua, user, false, "the phone unregistered"); }
        (void)sip_treply(NULL, ua->sip, msg, 200, "OK");
        post_log(ua, ACDM_PLOG_INFO, "registrar: %s unregistered (%s)", user, src);
        regs_publish(ua);
        return;
    }
    char contact[300];
    pl_copy(&addr.auri, contact, sizeof contact);
    if (strncmp(contact, "sip:", 4)) {
        (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 400, "Bad Contact", "Content-Length: 0\r\n\r\n");
        post_log(ua, ACDM_PLOG_WARN, "REGISTER from %s as %s: Contact is not a sip: URI: 400", src, user);
        return;
    }
    bool fresh = !old || old->expires <= now_ms() || strcmp(old->contact, contact);
    if (!old) {
        old = mem_zalloc(sizeof *old, reg_destructor);
        if (!old) { (void)sip_treply(NULL, ua->sip, msg, 500, "Server Internal Error"); return; }
        snprintf(old->user, sizeof old->user, "%s", user);
        list_append(&ua->regs, &old->le, old);
    }
    free(old->contact);
    old->contact = strdup(contact);
    old->expires = now_ms() + (uint64_t)expires * 1000;
    (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 200, "OK", "Contact: <%s>;expires=%u\r\nContent-Length: 0\r\n\r\n",
                      contact, expires);
    if (fresh) {
        post_log(ua, ACDM_PLOG_INFO, "registrar: %s registered at %s for %u s (%s)", user, contact, expires, src);
        post_reachable(ua, user, true, NULL);
    }
    regs_publish(ua);
}

/* An engine restart (a reload that changed listen, rtp_ports or max_calls) keeps the phones'
 * bindings: they are written out when the old engine stops and read back by the new one, so an
 * agent's phone stays reachable (its contact is its own address, which did not change). A user
 * the new registrar no longer has loses the binding, and the core hears it. */
static void regs_keep(struct ua *ua)
{
    size_t cap = 256, o = 0;
    char *buf = malloc(cap);
    uint64_t now = now_ms();
    for (struct le *le = list_head(&ua->regs); buf && le; le = le->next) {
        const struct reg *r = le->data;
        if (r->expires <= now || !r->contact) continue;
        size_t need = strlen(r->user) + strlen(r->contact) + 32;
        if (o + need >= cap) {
            char *nb = realloc(buf, cap = (o + need) * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
        }
        o += (size_t)snprintf(buf + o, cap - o, "%s\t%s\t%llu\n", r->user, r->contact, (unsigned long long)r->expires);
    }
    if (buf) buf[o] = 0;
    pthread_mutex_lock(&ua->p->mu);
    free(ua->p->kept_regs);
    ua->p->kept_regs = buf;
    pthread_mutex_unlock(&ua->p->mu);
}

static void regs_restore(struct ua *ua)
{
    pthread_mutex_lock(&ua->p->mu);
    char *buf = ua->p->kept_regs;
    ua->p->kept_regs = NULL;
    pthread_mutex_unlock(&ua->p->mu);
    if (!buf) return;
    uint64_t now = now_ms();
    int n = 0;
    for (char *line = buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        char *contact = strchr(line, '\t'), *exp = contact ? strchr(contact + 1, '\t') : NULL;
        if (!exp) continue;
        *contact++ = 0;
        *exp++ = 0;
        uint64_t expires = strtoull(exp, NULL, 10);
        if (expires <= now) continue;
        if (!ua->cfg.realm || !sipc_user_find(&ua->cfg, line)) {
            post_reachable(ua, line, false, "the registrar no longer has this user");
            continue;
        }
        struct reg *r = mem_zalloc(sizeof *r, reg_destructor);
        if (!r) break;
        snprintf(r->user, sizeof r->user, "%s", line);
        r->contact = strdup(contact);
        r->expires = expires;
        list_append(&ua->regs, &r->le, r);
        n++;
    }
    free(buf);
    if (n) post_log(ua, ACDM_PLOG_INFO, "registrar: %d registration%s kept across the restart", n, n == 1 ? "" : "s");
    regs_publish(ua);
}

/* UPDATE (RFC 3311) from a caller: a session refresh (RFC 4028) without an offer; one with an
 * SDP offer is refused (488: we change media only by re-INVITE). */
static void on_update(struct ua *ua, const struct sip_msg *msg)
{
    struct call *c = NULL;
    for (struct le *le = list_head(&ua->calls); le && !c; le = le->next) {
        struct call *k = le->data;
        if (!k->closing && k->c.sess && !pl_strcmp(&msg->callid, k->callid)) c = k;
    }
    if (!c || !pl_isset(&msg->to.tag)) {
        (void)sip_treply(NULL, ua->sip, msg, 481, "Call/Transaction Does Not Exist");
        return;
    }
    if (mbuf_get_left(msg->mb)) {
        (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 488, "Not Acceptable Here",
                          "Warning: 399 acdm \"UPDATE refreshes the session only; change media by re-INVITE\"\r\n"
                          "Content-Length: 0\r\n\r\n");
        return;
    }
    if (c->se_s) {
        c->se_deadline = now_ms() + (uint64_t)c->se_s * 1000;
        (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 200, "OK",
                          "Session-Expires: %u;refresher=uac\r\nRequire: timer\r\nContent-Length: 0\r\n\r\n", c->se_s);
    } else {
        (void)sip_treply(NULL, ua->sip, msg, 200, "OK");
    }
}

static bool req_h(const struct sip_msg *msg, void *arg)
{
    struct ua *ua = arg;
    hook_udp(ua, msg);
    if (bad_request(ua, msg)) return true;
    if (!pl_strcmp(&msg->met, "REGISTER")) { on_register(ua, msg); return true; }
    if (!pl_strcmp(&msg->met, "UPDATE")) { on_update(ua, msg); return true; }
    if (!pl_strcmp(&msg->met, "OPTIONS")) {
        (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 200, "OK",
                          "Allow: INVITE, ACK, BYE, CANCEL, INFO, OPTIONS, REGISTER\r\nAccept: application/sdp\r\n"
                          "Content-Length: 0\r\n\r\n");
        return true;
    }
    return false;
}

/* Malformed messages never reach a handler: libre drops what it cannot parse, silently. So a
 * UDP helper on the SIP socket (found through the first request's msg->sock: libre does not
 * hand it out otherwise; the engine sends itself an OPTIONS at start for that) sees every
 * datagram first; one that does not decode is counted and logged, then left to libre. A
 * request that decodes but lacks a mandatory header is answered 400 (bad_request). */
static bool udp_rx_h(struct sa *src, struct mbuf *mb, void *arg)
{
    struct ua *ua = arg;
    size_t len = mbuf_get_left(mb);
    const uint8_t *pkt = mbuf_buf(mb);
    if (len <= 4) return false;                                   /* keep-alives */
    struct sip_msg *m = NULL;
    size_t pos = mb->pos;
    int derr = sip_msg_decode(&m, mb);
    mb->pos = pos;
    mem_deref(m);
    if (!derr) return false;
    ST(ua, malformed);
    char first[80], from[64];
    size_t k = 0;
    while (k < len && k < sizeof first - 1 && pkt[k] != '\r' && pkt[k] != '\n') {
        first[k] = pkt[k] >= 32 && pkt[k] < 127 ? (char)pkt[k] : '?';
        k++;
    }
    first[k] = 0;
    re_snprintf(from, sizeof from, "%J", src);
    post_log(ua, ACDM_PLOG_WARN, "malformed SIP message from %s (%zu bytes, \"%s\"): dropped", from, len, first);
    return false;
}

static void hook_udp(struct ua *ua, const struct sip_msg *msg)
{
    if (ua->uh || msg->tp != SIP_TRANSP_UDP || !msg->sock) return;
    (void)udp_register_helper(&ua->uh, msg->sock, -1000, NULL, udp_rx_h, ua);
}

static void self_options(struct ua *ua)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    struct sa dst, me;
    socklen_t ml = sizeof me.u;
    /* a throwaway socket of our own: the 200 goes there (and is dropped), not to the stack */
    if (sa_set_str(&dst, ua->cfg.listen[0].host, ua->lport) == 0 && sa_set_str(&me, ua->cfg.listen[0].host, 0) == 0 &&
        bind(fd, &me.u.sa, me.len) == 0 && getsockname(fd, &me.u.sa, &ml) == 0) {
        me.len = ml;
        char buf[400];
        int n = re_snprintf(buf, sizeof buf,
                            "OPTIONS sip:acdm@%J SIP/2.0\r\nVia: SIP/2.0/UDP %J;branch=z9hG4bKselfcheck%u\r\n"
                            "From: <sip:acdm@%J>;tag=self\r\nTo: <sip:acdm@%J>\r\nCall-ID: selfcheck%u@acdm\r\n"
                            "CSeq: 1 OPTIONS\r\nMax-Forwards: 1\r\nContent-Length: 0\r\n\r\n",
                            &dst, &me, rand_u32(), &dst, &dst, rand_u32());
        if (n > 0) (void)sendto(fd, buf, (size_t)n, 0, &dst.u.sa, dst.len);
    }
    close(fd);
}

/* A request libre decoded without a header every request needs: 400 naming it. */
static bool bad_request(struct ua *ua, const struct sip_msg *msg)
{
    const char *missing = !pl_isset(&msg->callid) ? "Call-ID" : !pl_isset(&msg->from.auri) ? "From"
                        : !pl_isset(&msg->to.auri) ? "To" : !pl_isset(&msg->cseq.met) ? "CSeq" : NULL;
    if (!missing) return false;
    ST(ua, malformed);
    ST(ua, rejected_400);
    char src[64];
    re_snprintf(src, sizeof src, "%J", &msg->src);
    (void)sip_treplyf(NULL, NULL, ua->sip, msg, false, 400, "Bad Request",
                      "Warning: 399 acdm \"missing %s header\"\r\nContent-Length: 0\r\n\r\n", missing);
    post_log(ua, ACDM_PLOG_WARN, "malformed %.*s from %s: no %s header: 400", (int)msg->met.l, msg->met.p, src, missing);
    return true;
}

/* ------------------------------------------------------------ housekeeping (1 s) */

static void house(void *arg)
{
    struct ua *ua = arg;
    uint64_t now = now_ms();
    tmr_start(&ua->house, 250, house, ua);
    for (struct le *le = list_head(&ua->calls); le;) {
        struct call *c = le->data;
        le = le->next;
        if (c->closing) continue;
        if (c->st == CS_CLOSED && c->hangup_at && now >= c->hangup_at) { call_end(c, "closed", false); continue; }
        if (c->st == CS_MENU && c->menu_deadline && now >= c->menu_deadline) { menu_timeout(c); continue; }
        if (c->st == CS_XFER && c->a.sess && !c->a.estab && c->ring_deadline && now >= c->ring_deadline) {
            char why[120];
            out_no_answer(c, why, sizeof why);
            post_log(ua, ACDM_PLOG_WARN, "call %u: transfer: %s", c->id, why);
            leg_close(&c->a);       /* CANCEL */
            xfer_failed(c, why);
            continue;
        }
        if (c->outbound && c->a.estab && c->c.sess && !c->c.estab && c->ring_deadline && now >= c->ring_deadline) {
            char why[120];
            out_no_answer(c, why, sizeof why);
            leg_close(&c->c);       /* CANCEL */
            cust_failed(c, why);
            continue;
        }
        if (c->a.sess && !c->a.estab && c->ring_deadline && now >= c->ring_deadline) {
            post_log(ua, ACDM_PLOG_INFO, "call %u (%s): agent %s did not answer in time", c->id, c->bericht, c->agent);
            leg_close(&c->a);
            c->ring_deadline = 0;
            agent_result(c, ACDM_DEVICE_NOANSWER, "no answer");
            continue;
        }
        if (c->se_s && c->se_deadline) {
            uint64_t early = (uint64_t)(c->se_s / 3 < 32 ? c->se_s / 3 : 32) * 1000;
            if (now + early >= c->se_deadline) {
                ST(ua, session_expired);
                post_log(ua, ACDM_PLOG_WARN, "call %u (%s): the caller did not refresh the session (Session-Expires %u s): hung up",
                         c->id, c->bericht, c->se_s);
                call_end(c, "session expired", true);
                continue;
            }
        }
        if (ua->cfg.rtp_timeout_s && c->answered_at && c->c.have_media &&
            now - c->c.last_rx > (uint64_t)ua->cfg.rtp_timeout_s * 1000) {
            ST(ua, rtp_timeouts);
            post_log(ua, ACDM_PLOG_WARN, "call %u (%s): no RTP from the caller for %d s: hung up", c->id, c->bericht,
                     ua->cfg.rtp_timeout_s);
            call_end(c, "rtp timeout", true);
            continue;
        }
        if (ua->cfg.rtp_timeout_s && c->a.estab && now - c->a.last_rx > (uint64_t)ua->cfg.rtp_timeout_s * 1000) {
            post_log(ua, ACDM_PLOG_WARN, "call %u (%s): no RTP from agent %s's phone for %d s: hung up", c->id,
                     c->bericht, c->agent, ua->cfg.rtp_timeout_s);
            call_end(c, "agent rtp timeout", false);
            continue;
        }
    }
    bool changed = false;
    for (struct le *le = list_head(&ua->regs); le;) {
        struct reg *r = le->data;
        le = le->next;
        if (r->expires <= now) {
            post_log(ua, ACDM_PLOG_INFO, "registrar: %s's registration expired", r->user);
            post_reachable(ua, r->user, false, "the phone's registration expired");
            mem_deref(r);
            changed = true;
        }
    }
    if (changed) regs_publish(ua);
}

/* ------------------------------------------------------------ messages from the core */

static void apply_conf(struct ua *ua, const char *json)
{
    sipc_cfg nc;
    char err[256];
    if (sipc_parse(json, &nc, err, sizeof err) < 0) {
        post_log(ua, ACDM_PLOG_ERR, "config not applied: %s", err);
        return;
    }
    sipc_free(&ua->cfg);
    ua->cfg = nc;
    /* prompts of the old config that nobody plays any more are dropped; the new ones render now */
    for (struct le *le = list_head(&ua->prompts); le;) {
        struct prompt *pr = le->data;
        le = le->next;
        mem_deref(pr);              /* a call playing it keeps its own reference */
    }
    pthread_mutex_lock(&ua->p->st_mu);
    ua->p->st.prompts_ready = ua->p->st.prompts_failed = 0;
    ua->p->st.conf_gen++;
    pthread_mutex_unlock(&ua->p->st_mu);
    prompts_prewarm(ua);
}

static void mq_h(int id, void *data, void *arg)
{
    struct ua *ua = arg;
    smsg *m = data;
    if (m) smsg_take(ua->p, m);
    struct call *c = m && m->call ? call_find(ua, m->call) : NULL;
    switch (id) {
    case MQ_QUIT:
        /* every call hangs up (BYE, CANCEL) before the stack closes; no posts any more */
        for (struct le *le = list_head(&ua->calls); le;) {
            struct call *k = le->data;
            le = le->next;
            mem_deref(k);
        }
        sip_close(ua->sip, false);
        tmr_cancel(&ua->clock);
        tmr_cancel(&ua->house);
        re_cancel();
        break;
    case MQ_CONF: apply_conf(ua, m->text); break;
    case MQ_QUEUE_STATE: on_queue_state(ua, m->queue, m->a != 0); break;
    case MQ_SUBMITTED:
    case MQ_MENU_QUEUED: on_submitted(ua, m); break;
    case MQ_CONNECT_AGENT: on_connect_agent(ua, m); break;
    case MQ_ORIGINATE: on_originate(ua, m); break;
    case MQ_CALLBACK_OK:
        if (c && !c->closing) {
            if (m->outcome == ACDM_SUBMIT_QUEUED || m->outcome == ACDM_SUBMIT_DUPLICATE) {
                player_enqueue(c, prompt_get(ua, ua->cfg.callback_text, NULL));
            } else {
                /* not stored: the caller keeps waiting */
                c->st = CS_WAITING;
                player_enqueue(c, prompt_get(ua, "Terugbellen is nu niet mogelijk. U blijft in de wachtrij.", NULL));
            }
        }
        break;
    case MQ_HANGUP:
        if (c && !c->external) call_end(c, m->text ? m->text : "ended", false);
        break;
    case MQ_POSITION:
        if (c && c->st == CS_WAITING && m->a && m->a != c->last_pos) {
            const sipc_pset *ps = call_pset(c);
            if (ps && !ps->position) break;
            c->last_pos = m->a;
            char text[200];
            int n = snprintf(text, sizeof text, "U bent nummer %u in de wachtrij.", m->a);
            if (ps && ps->estimate && m->b) {
                unsigned mins = (m->b + 59) / 60;
                unsigned box = mins <= 2 ? 2 : mins <= 5 ? 5 : mins <= 10 ? 10 : mins <= 15 ? 15 : mins <= 30 ? 30 : 0;
                if (box) snprintf(text + n, sizeof text - (size_t)n, " De wachttijd is minder dan %u minuten.", box);
                else snprintf(text + n, sizeof text - (size_t)n, " De wachttijd is meer dan een half uur.");
            }
            /* a newer position replaces one not yet played */
            for (int i = 0; i < c->npend; i++)
                if (!strncmp(c->pending[i]->key + 2 + strlen(ua->cfg.tts_voice) + 1, "U bent nummer", 13)) {
                    mem_deref(c->pending[i]);
                    memmove(c->pending + i, c->pending + i + 1, (size_t)(c->npend - i - 1) * sizeof c->pending[0]);
                    c->npend--;
                    break;
                }
            player_enqueue(c, prompt_get(ua, text, NULL));
            ST(ua, positions);
            post_log(ua, ACDM_PLOG_INFO, "call %u (%s): announcing \"%s\"", c->id, c->bericht, text);
        }
        break;
    case MQ_HOLD:
        if (c && c->st == CS_BRIDGED) { c->st = CS_HELD; clock_add(c); }
        break;
    case MQ_TRANSFER_OUT: {
        /* the desk's transfer: sip.c checked what it knows; the call's own state is checked here */
        const char *num = m->text ? m->text : "";
        const char *why = !c ? "the call is gone" : xfer_refusal(c, num);
        if (why) post_log(ua, ACDM_PLOG_WARN, "call %u: the desk's transfer to %s refused: %s", m->call, num, why);
        else xfer_start(c, num, "from the desk");
        break;
    }
    case MQ_RESUME:
        if (c && c->st == CS_HELD) { c->st = CS_BRIDGED; clock_remove(c); c->c.marker = true; }
        break;
    case MQ_REQUEUED:
        if (c && !c->closing) {
            if (c->a.sess) leg_close(&c->a);
            c->ring_deadline = 0;
            if (c->st == CS_BRIDGED || c->st == CS_HELD) {
                c->st = CS_WAITING;
                c->next_wait = 0;
                c->c.marker = true;
                clock_add(c);
            }
        }
        break;
    case MQ_TTS_DONE:
        tts_done(ua, m->ptr);
        m->ptr = NULL;
        break;
    default: break;
    }
    smsg_free(m);
}

/* ------------------------------------------------------------ the thread */

static pthread_once_t libre_once = PTHREAD_ONCE_INIT;
static int libre_rc;
static void libre_start(void) { libre_rc = libre_init(); }

static void *ua_main(void *arg)
{
    sipp *p = arg;
    struct ua *ua = calloc(1, sizeof *ua);
    struct mqueue *mq = NULL;
    int err = 0;
    if (!ua) { p->start_rc = -1; snprintf(p->start_err, sizeof p->start_err, "out of memory"); sem_post(&p->ready); return NULL; }
    ua->p = p;
    re_thread_init();
    if (sipc_parse(p->cfg_json, &ua->cfg, p->start_err, sizeof p->start_err) < 0) { err = -1; goto fail; }
    (void)fd_setsize(ua->cfg.max_calls * 4 + 256);
    if (getrandom(ua->secret, sizeof ua->secret, 0) != (ssize_t)sizeof ua->secret) {
        snprintf(p->start_err, sizeof p->start_err, "getrandom: %s", strerror(errno));
        err = -1;
        goto fail;
    }
    if (sipa_music(&ua->music, 8) < 0 || sipa_ringback(&ua->ringback) < 0) { snprintf(p->start_err, sizeof p->start_err, "out of memory"); err = -1; goto fail; }
    if ((err = sip_alloc(&ua->sip, NULL, 32, 32, 32, ua->cfg.user_agent, NULL, NULL))) {
        snprintf(p->start_err, sizeof p->start_err, "sip_alloc failed (%d)", err);
        goto fail;
    }
    for (int i = 0; i < ua->cfg.n_listen; i++) {
        struct sa sa;
        const sipc_listen *l = &ua->cfg.listen[i];
        if (sa_set_str(&sa, l->host, (uint16_t)l->port)) {
            snprintf(p->start_err, sizeof p->start_err, "listen: bad address %s", l->host);
            err = -1;
            goto fail;
        }
        if (i == 0) { ua->laddr = sa; sa_set_port(&ua->laddr, 0); }
        err = sip_transp_add(ua->sip, l->transport ? SIP_TRANSP_TCP : SIP_TRANSP_UDP, &sa);
        if (err) {
            snprintf(p->start_err, sizeof p->start_err, "listen: cannot bind %s:%s:%d (%s)", l->transport ? "tcp" : "udp",
                     l->host, l->port, strerror(err));
            goto fail;
        }
    }
    {
        struct sa la;
        if (!sip_transp_laddr(ua->sip, &la, ua->cfg.listen[0].transport ? SIP_TRANSP_TCP : SIP_TRANSP_UDP, NULL)) {
            ua->lport = sa_port(&la);
            re_snprintf(ua->lhost, sizeof ua->lhost, "%J", &la);
        }
    }
    if ((err = sipsess_listen(&ua->ssock, ua->sip, 32, conn_h, ua)) || (err = sip_listen(&ua->lsnr, ua->sip, true, req_h, ua)) ||
        (err = mqueue_alloc(&mq, mq_h, ua))) {
        snprintf(p->start_err, sizeof p->start_err, "SIP stack set-up failed (%d)", err);
        goto fail;
    }
    pthread_mutex_lock(&p->mu);
    p->mq = mq;
    p->running = true;
    pthread_mutex_unlock(&p->mu);
    ua->next_tick = now_ms();
    tmr_start(&ua->clock, CLOCK_MS, media_clock, ua);
    tmr_start(&ua->house, 250, house, ua);
    p->ua = ua;
    regs_restore(ua);
    prompts_prewarm(ua);
    self_options(ua);
    p->start_rc = 0;
    sem_post(&p->ready);
    re_main(NULL);
    goto out;
fail:
    p->start_rc = -1;
    sem_post(&p->ready);
out:
    tmr_cancel(&ua->clock);
    tmr_cancel(&ua->house);
    for (struct le *le = list_head(&ua->calls); le;) {
        struct call *c = le->data;
        le = le->next;
        mem_deref(c);
    }
    if (p->start_rc == 0) regs_keep(ua);
    list_flush(&ua->regs);
    list_flush(&ua->prompts);
    ua->uh = mem_deref(ua->uh);
    ua->lsnr = mem_deref(ua->lsnr);
    ua->ssock = mem_deref(ua->ssock);
    if (ua->sip) sip_close(ua->sip, true);
    ua->sip = mem_deref(ua->sip);
    pthread_mutex_lock(&p->mu);
    p->mq = NULL;
    pthread_mutex_unlock(&p->mu);
    mq = mem_deref(mq);
    sipa_clip_free(&ua->music);
    sipa_clip_free(&ua->ringback);
    sipc_free(&ua->cfg);
    re_thread_close();
    p->ua = NULL;
    free(ua);
    return NULL;
}

int ua_start(sipp *p, char *err, size_t errlen)
{
    pthread_once(&libre_once, libre_start);
    if (libre_rc) { snprintf(err, errlen, "libre_init failed (%d)", libre_rc); return -1; }
    p->start_rc = -1;
    p->start_err[0] = 0;
    if (pthread_create(&p->thread, NULL, ua_main, p)) { snprintf(err, errlen, "cannot start the SIP thread"); return -1; }
    while (sem_wait(&p->ready) < 0) {}
    if (p->start_rc < 0) {
        pthread_join(p->thread, NULL);
        snprintf(err, errlen, "%s", p->start_err[0] ? p->start_err : "the SIP stack did not start");
        return -1;
    }
    return 0;
}

void ua_stop(sipp *p)
{
    if (!p->running) return;
    smsg *m = smsg_new(p, MQ_QUIT, 0);
    pthread_mutex_lock(&p->mu);
    int rc = m && p->mq ? mqueue_push(p->mq, MQ_QUIT, m) : -1;
    p->running = false;             /* nothing else is pushed */
    pthread_mutex_unlock(&p->mu);
    if (rc) {
        /* only without memory: the thread cannot be told, so it is left (and leaks) */
        if (m) { smsg_take(p, m); smsg_free(m); }
        pthread_detach(p->thread);
        return;
    }
    pthread_join(p->thread, NULL);
}

int ua_push(sipp *p, smsg *m)
{
    if (!m) return -1;
    pthread_mutex_lock(&p->mu);
    bool ok = p->running && p->mq;
    int rc = ok ? mqueue_push(p->mq, m->type, m) : -1;
    pthread_mutex_unlock(&p->mu);
    if (rc) { smsg_take(p, m); smsg_free(m); return -1; }
    return 0;
}
