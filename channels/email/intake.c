/* intake.c -- the IMAP thread of one mailbox: one connection, IDLE (or polling), mail fetched
 * in batches by UID, handed to the core thread, and moved out of the inbox only after the
 * core said the bericht is committed. Every IMAP step has a timeout; a lost server is
 * reconnected with backoff. The thread never calls the host except through post(). */
#include "email.h"
#include "imap.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t wall_s(void) { return (int64_t)time(NULL); }

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void email_set_error(email *em, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&em->mu);
    va_start(ap, fmt);
    vsnprintf(em->st.last_error, sizeof em->st.last_error, fmt, ap);
    va_end(ap);
    em->st.last_error_at = wall_s();
    pthread_mutex_unlock(&em->mu);
}

void email_wake(email *em)
{
    uint64_t one = 1;
    if (write(em->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN) { /* nothing to do */ }
}

static void drain_wake(email *em)
{
    uint64_t v;
    while (read(em->wake_fd, &v, sizeof v) > 0) {}
}

static bool quitting(email *em)
{
    pthread_mutex_lock(&em->mu);
    bool q = em->quit;
    pthread_mutex_unlock(&em->mu);
    return q;
}

/* Sleeps up to ms, woken early by the wake fd. */
static void nap(email *em, long ms)
{
    struct pollfd p = {.fd = em->wake_fd, .events = POLLIN};
    if (poll(&p, 1, (int)ms) > 0) drain_wake(em);
}

/* ---------------------------------------------------------------- a session */

typedef struct uidsize { uint64_t uid; size_t size; } uidsize;

typedef struct session {
    email *em;
    imap *m;
    char delim;
    char *q_inbox, *q_processed, *q_quarantine, *q_sent;
    uint64_t uidvalidity;
    long exists;
    uidsize *list;
    size_t n, cap;
    uint64_t from_uid;
    job **batch;
    size_t nb, bcap;
    bool header_only;
    char err[640];
} session;

static void on_untagged(void *u, const imap_resp *r)
{
    session *s = u;
    const char *t = r->text;
    if (!strncmp(t, "* LIST ", 7) || !strncmp(t, "* LSUB ", 7)) {
        const char *q = strchr(t + 7, ')');
        if (q) {
            q++;
            while (*q == ' ') q++;
            if (q[0] == '"' && q[1] && q[2] == '"') s->delim = q[1];
            else if (q[0] == '"' && q[1] == '\\' && q[3] == '"') s->delim = q[2];
        }
        return;
    }
    if (strstr(t, " EXISTS")) {
        s->exists = strtol(t + 2, NULL, 10);
        return;
    }
    if (!strncmp(t, "* OK [UIDVALIDITY ", 18)) {
        s->uidvalidity = strtoull(t + 18, NULL, 10);
        return;
    }
}

static char *folder_path(const char *name, char delim)
{
    char *r = strdup(name);
    if (r && delim) for (char *p = r; *p; p++) if (*p == '/') *p = delim;
    return r;
}

static int ensure_folder(session *s, const char *quoted)
{
    char err[256];
    int rc = imap_cmd(s->m, NULL, NULL, err, sizeof err, "CREATE %s", quoted);
    if (rc < 0) { snprintf(s->err, sizeof s->err, "CREATE: %s", err); return -1; }
    return 0;                      /* NO: it exists already */
}

static int setup(session *s)
{
    email *em = s->em;
    s->delim = 0;
    if (imap_cmd(s->m, on_untagged, s, s->err, sizeof s->err, "LIST \"\" \"\"") != 0) return -1;
    char *p = folder_path(em->c.processed, s->delim);
    char *q = folder_path(em->c.quarantine, s->delim);
    char *sf = folder_path(em->c.sent, s->delim);
    s->q_processed = p ? imap_quote_mailbox(p) : NULL;
    s->q_quarantine = q ? imap_quote_mailbox(q) : NULL;
    s->q_sent = sf ? imap_quote_mailbox(sf) : NULL;
    s->q_inbox = imap_quote_mailbox(em->c.mailbox);
    free(p); free(q); free(sf);
    if (!s->q_processed || !s->q_quarantine || !s->q_sent || !s->q_inbox) return -1;
    if (ensure_folder(s, s->q_processed) || ensure_folder(s, s->q_quarantine) || ensure_folder(s, s->q_sent))
        return -1;
    s->uidvalidity = 0;
    if (imap_cmd(s->m, on_untagged, s, s->err, sizeof s->err, "SELECT %s", s->q_inbox) != 0) return -1;
    return 0;
}

static void on_sizes(void *u, const imap_resp *r)
{
    session *s = u;
    on_untagged(u, r);
    if (!strstr(r->text, " FETCH ")) return;
    uint64_t uid = imap_resp_num(r, "UID");
    if (!uid || uid < s->from_uid) return;      /* n:* also returns the last one */
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        uidsize *nl = realloc(s->list, nc * sizeof *nl);
        if (!nl) return;
        s->list = nl;
        s->cap = nc;
    }
    s->list[s->n++] = (uidsize){uid, (size_t)imap_resp_num(r, "RFC822.SIZE")};
}

static job *find_uid(session *s, uint64_t uid)
{
    for (size_t i = 0; i < s->nb; i++) if (s->batch[i]->uid == uid) return s->batch[i];
    return NULL;
}

static void on_body(void *u, const imap_resp *r)
{
    session *s = u;
    on_untagged(u, r);
    if (!strstr(r->text, " FETCH ") || r->n_lits < 1) return;
    uint64_t uid = imap_resp_num(r, "UID");
    job *j = find_uid(s, uid);
    if (!j || j->raw || j->pm.idem) return;
    email *em = s->em;
    const char *data = r->lits[0];
    size_t len = r->lit_lens[0];
    mime_parse(data, len, j->oversize, &em->c.lim, &j->pm);
    char warnbuf[256] = "";
    if (j->oversize)
        snprintf(warnbuf, sizeof warnbuf, "the mail is %zu bytes, over the limit of %zu: not downloaded, "
                 "it is in the folder %s", j->size, em->c.max_bytes, em->c.quarantine);
    j->payload = mime_payload_json(&j->pm, j->size, warnbuf[0] ? warnbuf : NULL);
    if (!j->oversize) {
        j->raw = malloc(len + 1);
        if (j->raw) { memcpy(j->raw, data, len); j->raw[len] = 0; j->raw_len = len; }
    }
}

static void batch_add(session *s, job *j)
{
    if (s->nb == s->bcap) {
        size_t nc = s->bcap ? s->bcap * 2 : 64;
        job **nb = realloc(s->batch, nc * sizeof *nb);
        if (!nb) return;
        s->batch = nb;
        s->bcap = nc;
    }
    s->batch[s->nb++] = j;
}

static void job_free(job *j)
{
    mime_free(&j->pm);
    free(j->raw);
    free(j->payload);
    free(j);
}

static void jobs_unlink_free(email *em, job *j)
{
    pthread_mutex_lock(&em->mu);
    for (job **pp = &em->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) { *pp = j->next; break; }
    pthread_mutex_unlock(&em->mu);
    job_free(j);
}

/* An IMAP sequence set of the uids (ranges joined). */
static char *uid_set(job **js, size_t n, bool (*pick)(const job *), size_t *count)
{
    size_t cap = n * 24 + 16, k = 0;
    char *o = malloc(cap);
    if (!o) return NULL;
    o[0] = 0;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!pick(js[i])) continue;
        k += (size_t)snprintf(o + k, cap - k, "%s%llu", *count ? "," : "", (unsigned long long)js[i]->uid);
        (*count)++;
    }
    return o;
}

static bool pick_processed(const job *j) { return j->state == 1 && !j->oversize; }
static bool pick_quarantine(const job *j) { return j->state == 1 && j->oversize; }

static int move_set(session *s, const char *set, const char *dest)
{
    char err[400];
    int rc;
    /* the mail is \Seen already (BODY[] sets it): one command per batch when MOVE exists,
     * since every command that changes the mailbox makes the server resync and rewrite its index */
    if (imap_has_cap(s->m, "MOVE")) {
        rc = imap_cmd(s->m, NULL, NULL, err, sizeof err, "UID MOVE %s %s", set, dest);
    } else {
        rc = imap_cmd(s->m, NULL, NULL, err, sizeof err, "UID COPY %s %s", set, dest);
        if (!rc) rc = imap_cmd(s->m, NULL, NULL, err, sizeof err, "UID STORE %s +FLAGS.SILENT (\\Deleted)", set);
        if (!rc) rc = imap_has_cap(s->m, "UIDPLUS")
                      ? imap_cmd(s->m, NULL, NULL, err, sizeof err, "UID EXPUNGE %s", set)
                      : imap_cmd(s->m, NULL, NULL, err, sizeof err, "EXPUNGE");
    }
    if (rc) {
        snprintf(s->err, sizeof s->err, "moving to %s: %s", dest, err);
        email_set_error(s->em, "%s", s->err);
        return rc < 0 ? -1 : 0;
    }
    return 0;
}

static void post_progress(session *s)
{
    email *em = s->em;
    progress *p = malloc(sizeof *p);
    if (!p) return;
    p->uidvalidity = s->uidvalidity;
    p->watermark = em->watermark;
    if (em->host->post(em->inst, email_on_progress, p) < 0) free(p);
}

/* Fetches, hands over and moves one batch of list[i0..i1). -1: the session is broken. */
static int run_batch(session *s, size_t i0, size_t i1)
{
    email *em = s->em;
    s->nb = 0;
    for (size_t i = i0; i < i1; i++) {
        job *j = calloc(1, sizeof *j);
        if (!j) break;
        j->em = em;
        j->uid = s->list[i].uid;
        j->size = s->list[i].size;
        j->oversize = j->size > em->c.max_bytes;
        pthread_mutex_lock(&em->mu);
        j->next = em->jobs;
        em->jobs = j;
        pthread_mutex_unlock(&em->mu);
        batch_add(s, j);
    }
    /* bodies (or only the headers of mail over max_bytes) */
    char *set = NULL;
    size_t cnt = 0;
    for (int pass = 0; pass < 2; pass++) {
        bool over = pass == 1;
        size_t cap = s->nb * 24 + 16, k = 0;
        set = malloc(cap);
        if (!set) return -1;
        set[0] = 0;
        cnt = 0;
        for (size_t i = 0; i < s->nb; i++)
            if (s->batch[i]->oversize == over) {
                k += (size_t)snprintf(set + k, cap - k, "%s%llu", cnt ? "," : "", (unsigned long long)s->batch[i]->uid);
                cnt++;
            }
        int rc = 0;
        if (cnt) rc = imap_cmd(s->m, on_body, s, s->err, sizeof s->err, "UID FETCH %s (UID %s)",
                               set, over ? "BODY.PEEK[HEADER]" : "BODY[]");
        free(set);
        if (rc < 0) return -1;
    }
    pthread_mutex_lock(&em->mu);
    em->st.last_fetch = wall_s();
    pthread_mutex_unlock(&em->mu);
    /* to the core thread, one post per mail; a mail the server no longer had is skipped */
    size_t posted = 0;
    for (size_t i = 0; i < s->nb; i++) {
        job *j = s->batch[i];
        if (!j->pm.idem) { j->state = 2; continue; }
        if (em->host->post(em->inst, email_on_mail, j) < 0) { j->state = 2; continue; }
        posted++;
    }
    /* wait for the commits (each job's state set by the core thread) */
    int64_t deadline = mono_ms() + 120000;
    pthread_mutex_lock(&em->mu);
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < s->nb; i++) if (s->batch[i]->state == 0) left++;
        if (!left || em->quit) break;
        if (mono_ms() > deadline) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&em->cv, &em->mu, &ts);
    }
    bool q = em->quit;
    size_t waiting = 0;
    for (size_t i = 0; i < s->nb; i++) if (s->batch[i]->state == 0) waiting++;
    pthread_mutex_unlock(&em->mu);
    if (q) return -2;              /* stop frees the jobs */
    if (waiting) {
        /* the core did not answer in time: leave them all for the next round. Jobs still
         * referenced by the core stay in em->jobs (freed at stop). */
        email_set_error(em, "%zu mails not committed within 120 s; left in the inbox", waiting);
        return -1;
    }
    int rc = 0;
    size_t n1 = 0, n2 = 0;
    char *p = uid_set(s->batch, s->nb, pick_processed, &n1);
    char *qq = uid_set(s->batch, s->nb, pick_quarantine, &n2);
    if (p && n1 && move_set(s, p, s->q_processed) < 0) rc = -1;
    if (!rc && qq && n2 && move_set(s, qq, s->q_quarantine) < 0) rc = -1;
    free(p);
    free(qq);
    if (!rc) {
        uint64_t wm = em->watermark;
        for (size_t i = 0; i < s->nb; i++) if (s->batch[i]->uid > wm) wm = s->batch[i]->uid;
        em->watermark = wm;
        pthread_mutex_lock(&em->mu);
        em->st.moved += n1 + n2;
        em->st.fetched += posted;
        pthread_mutex_unlock(&em->mu);
        post_progress(s);
    }
    for (size_t i = 0; i < s->nb; i++) jobs_unlink_free(em, s->batch[i]);
    s->nb = 0;
    return rc;
}

static int scan(session *s, bool full)
{
    email *em = s->em;
    s->n = 0;
    s->from_uid = full ? 1 : em->watermark + 1;
    char err[400];
    int rc = imap_cmd(s->m, on_sizes, s, err, sizeof err, "UID FETCH %llu:* (UID RFC822.SIZE)",
                      (unsigned long long)s->from_uid);
    if (rc < 0) { snprintf(s->err, sizeof s->err, "FETCH: %s", err); return -1; }
    if (rc > 0 && s->exists > 0) { snprintf(s->err, sizeof s->err, "FETCH: %s", err); email_set_error(em, "%s", s->err); }
    /* in batches of at most `batch` mails and ~8 MB */
    size_t i = 0;
    while (i < s->n) {
        size_t j = i, bytes = 0;
        while (j < s->n && j - i < (size_t)em->c.batch) {
            size_t sz = s->list[j].size > em->c.max_bytes ? 4096 : s->list[j].size;
            if (j > i && bytes + sz > 8u * 1024u * 1024u) break;
            bytes += sz;
            j++;
        }
        int b = run_batch(s, i, j);
        if (b < 0) return b;
        i = j;
        if (quitting(em)) return -2;
    }
    pthread_mutex_lock(&em->mu);
    em->st.last_fetch = wall_s();
    pthread_mutex_unlock(&em->mu);
    return 0;
}

static void on_status(void *u, const imap_resp *r)
{
    long *n = u;
    if (!strncmp(r->text, "* STATUS ", 9)) *n = (long)imap_resp_num(r, "MESSAGES");
}

static void figures(session *s)
{
    email *em = s->em;
    long q = -1;
    char err[256];
    if (imap_cmd(s->m, on_status, &q, err, sizeof err, "STATUS %s (MESSAGES)", s->q_quarantine) != 0) return;
    pthread_mutex_lock(&em->mu);
    long n = imap_exists(s->m);      /* the moves' EXPUNGEs and IDLE's EXISTS included */
    em->st.backlog = n >= 0 ? n : s->exists;
    if (q >= 0) em->st.quarantined = q;
    pthread_mutex_unlock(&em->mu);
}

static int do_appends(session *s)
{
    email *em = s->em;
    for (;;) {
        pthread_mutex_lock(&em->mu);
        append_req *a = em->appends;
        if (a) em->appends = a->next;
        pthread_mutex_unlock(&em->mu);
        if (!a) return 0;
        char err[400];
        int rc = imap_append(s->m, s->q_sent, "\\Seen", a->raw, a->len, err, sizeof err);
        if (rc < 0) {
            pthread_mutex_lock(&em->mu);   /* put it back: retried after the reconnect */
            a->next = em->appends;
            em->appends = a;
            pthread_mutex_unlock(&em->mu);
            snprintf(s->err, sizeof s->err, "APPEND to Sent: %s", err);
            return -1;
        }
        if (rc > 0) email_set_error(em, "APPEND to %s refused: %s", em->c.sent, err);
        char *id = a->id;
        free(a->raw);
        free(a);
        if (em->host->post(em->inst, email_on_appended, id) < 0) free(id);
    }
}

static void session_free(session *s)
{
    imap_close(s->m);
    free(s->q_inbox); free(s->q_processed); free(s->q_quarantine); free(s->q_sent);
    free(s->list);
    free(s->batch);
}

/* One connected session until an error (-1) or quit (-2). */
static int run_session(session *s)
{
    email *em = s->em;
    if (setup(s) < 0) return -1;
    if (s->uidvalidity != em->uidvalidity) {
        /* a new or recreated mailbox: UIDs start over; idempotency keys keep it duplicate-free */
        em->uidvalidity = s->uidvalidity;
        em->watermark = 0;
        post_progress(s);
    }
    pthread_mutex_lock(&em->mu);
    em->st.connected = true;
    pthread_mutex_unlock(&em->mu);
    bool idle = em->c.idle && imap_has_cap(s->m, "IDLE");
    bool full = true;              /* every session starts with the whole inbox */
    int64_t last_full = mono_ms();
    for (;;) {
        if (quitting(em)) return -2;
        drain_wake(em);
        if (do_appends(s) < 0) return -1;
        imap_take_news(s->m);          /* the scan sees everything in the inbox from here */
        int rc = scan(s, full);
        if (rc < 0) return rc;
        if (full) last_full = mono_ms();
        full = false;
        figures(s);
        if (do_appends(s) < 0) return -1;
        if (quitting(em)) return -2;
        /* mail that came while we fetched and moved was announced (EXISTS) in those commands'
         * answers, not to the IDLE that follows: scan again instead of idling past it */
        if (imap_take_news(s->m)) continue;
        long wait_ms = idle ? (long)(em->c.rescan_s < 25 * 60 ? em->c.rescan_s : 25 * 60) * 1000
                            : (long)em->c.poll_s * 1000;
        if (idle) {
            pthread_mutex_lock(&em->mu);
            em->st.idling = true;
            pthread_mutex_unlock(&em->mu);
            rc = imap_idle(s->m, wait_ms, s->err, sizeof s->err);
            pthread_mutex_lock(&em->mu);
            em->st.idling = false;
            pthread_mutex_unlock(&em->mu);
            if (rc < 0) return -1;
        } else {
            nap(em, wait_ms);
            char err[256];
            if (imap_cmd(s->m, on_untagged, s, err, sizeof err, "NOOP") < 0) {
                snprintf(s->err, sizeof s->err, "NOOP: %s", err);
                return -1;
            }
        }
        if (mono_ms() - last_full > (int64_t)em->c.rescan_s * 1000) full = true;
    }
}

void *imap_thread(void *arg)
{
    email *em = arg;
    long backoff = 1000;
    while (!quitting(em)) {
        session s = {.em = em};
        imap_opts o = {.url = em->c.imap_url, .user = em->c.imap_user, .password = em->c.imap_pass,
                       .require_tls = em->c.imap_tls, .timeout_ms = (long)em->c.timeout_s * 1000,
                       .wake_fd = em->wake_fd, .quit = &em->quit_flag};
        bool have_token = true;
        if (em->c.imap_token.path) {      /* xoauth2: the token as the file holds it now */
            o.bearer = token_current(&em->c.imap_token, "imap", s.err, sizeof s.err);
            have_token = o.bearer != NULL;
        }
        if (have_token) s.m = imap_connect(&o, s.err, sizeof s.err);
        int rc = -1;
        if (s.m) {
            rc = run_session(&s);
            if (rc == -1) backoff = 1000;   /* it did connect: start the backoff over */
        }
        if (rc == -1) email_set_error(em, "IMAP: %s", s.err[0] ? s.err : "session failed");
        session_free(&s);
        pthread_mutex_lock(&em->mu);
        em->st.connected = false;
        pthread_mutex_unlock(&em->mu);
        if (rc == -2 || quitting(em)) break;
        nap(em, backoff);
        backoff = backoff * 2 > 60000 ? 60000 : backoff * 2;
    }
    return NULL;
}
