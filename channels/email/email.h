/* email.h -- the email channel plugin's instance state, shared by the core-thread side
 * (email.c), the IMAP thread (intake.c) and the SMTP thread (send.c). */
#ifndef ACDM_EMAIL_EMAIL_H
#define ACDM_EMAIL_EMAIL_H

#include <acdm/plugin.h>

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "mail.h"

/* A bearer token in a file (auth "xoauth2"): read again whenever the file changes (a token
 * refresher outside acdm rewrites it). Each thread owns its own copy. */
typedef struct token_file {
    char *path;
    char *value;                   /* the last token read, or NULL */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} token_file;

/* The current token (borrowed, valid until the next call), or NULL with err set. */
const char *token_current(token_file *t, const char *field, char *err, size_t errlen);
void token_free(token_file *t);

typedef struct ecfg {
    char *imap_url, *imap_user, *imap_pass, *mailbox;
    token_file imap_token;         /* imap.auth "xoauth2": imap.token_file (path NULL otherwise) */
    token_file smtp_token;
    bool imap_tls;                 /* STARTTLS required (imap:// to a non-loopback host) */
    char *smtp_url, *smtp_user, *smtp_pass;
    bool smtp_tls;
    char *address, *name, *domain;
    char *processed, *quarantine, *sent;
    int poll_s, timeout_s, batch, smtp_retries, smtp_retry_s, rescan_s;
    bool idle;
    size_t max_bytes;
    mail_limits lim;
    bool confirm;                  /* auto_reply.enabled: confirmation of receipt */
    char *confirm_text;            /* default text */
    json_t *confirm_queues;        /* auto_reply.queues {"queue": "text" | true | false} or NULL */
    int auto_period_s;
} ecfg;

/* One mail between the IMAP thread and the core thread. */
typedef struct job {
    struct job *next;              /* em->jobs (all live jobs; stop frees what is left) */
    struct email *em;
    uint64_t uid;
    size_t size;
    bool oversize;
    parsed_mail pm;
    char *raw;                     /* the whole source (NULL when oversize) */
    size_t raw_len;
    char *payload;
    char conv_token[13];
    char bericht[64];
    char idem_hash[17];
    /* under em->mu: 0 waiting, 1 done (move it), 2 failed (leave it in the inbox) */
    int state;
} job;

/* A sent reply waiting to be appended to the Sent folder (IMAP thread). */
typedef struct append_req {
    struct append_req *next;
    char *id;
    char *raw;
    size_t len;
} append_req;

/* A send request for the SMTP thread (a copy of the outbox entry). */
typedef struct send_req {
    struct send_req *next;
    char *id;
    json_t *entry;                 /* owned: the outbox entry (copied) */
    int *fds;                      /* the reply's attachments, opened by the core thread */
    acdm_attachment_meta *metas;
    size_t n_atts;
} send_req;

/* The SMTP thread's answer (posted to the core thread). */
typedef struct send_res {
    char *id;
    bool ok, permanent;
    char err[512];
    char *raw;                     /* the message as sent (for Sent) */
    size_t len;
} send_res;

typedef struct email {
    const acdm_host *host;
    acdm_instance *inst;
    ecfg c;
    const char *iname;

    pthread_mutex_t mu;
    pthread_cond_t cv;             /* job states, send queue */
    bool quit;
    int quit_flag;                 /* quit, read atomically by libcurl's progress callbacks */
    int wake_fd;                   /* eventfd: the IMAP thread wakes (quit, appends) */
    pthread_t imap_thr, smtp_thr;
    bool imap_running, smtp_running;
    job *jobs;
    append_req *appends;
    send_req *sends;

    /* progress (IMAP thread owns; core persists) */
    uint64_t uidvalidity, watermark;

    /* status (under mu) */
    struct {
        bool connected, idling;
        int64_t last_fetch, last_error_at, started;
        char last_error[256];
        long backlog, quarantined;
        unsigned long fetched, moved, submitted, duplicates, auto_replies, bounces, sent, send_failed;
    } st;

    /* core thread only */
    json_t *outbox;                /* array of entries */
    /* an entry is sent only once it is durable: outbox_add numbers it ("_seq") and asks the
     * host to flush; the flush callback raises durable_seq (entries loaded at start are 0) */
    uint64_t out_seq, durable_seq;
    acdm_timer *retry_timer;
    char *status_body;
    bool mime_ready;
    /* the queue of the last new bericht (ACDM_EV_QUEUED "new" comes before its submit callback):
     * the confirmation's text is the one of that queue */
    char newq_bericht[64], newq_queue[128];
} email;

/* Progress of the intake, persisted in kv "progress". */
typedef struct progress { uint64_t uidvalidity, watermark; } progress;

/* intake.c */
void *imap_thread(void *arg);
void email_set_error(email *em, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void email_wake(email *em);
/* send.c */
void *smtp_thread(void *arg);
/* email.c (core thread, called through post) */
void email_on_mail(acdm_instance *inst, void *priv, void *arg);
void email_on_progress(acdm_instance *inst, void *priv, void *arg);
void email_on_sent(acdm_instance *inst, void *priv, void *arg);
void email_on_appended(acdm_instance *inst, void *priv, void *arg);

#endif
