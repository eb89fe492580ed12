/* sipint.h -- what the plugin glue (sip.c, core thread) and the SIP engine (sipua.c, its own
 * thread on libre) share: the instance, and the messages they pass each other. The core thread
 * talks to the engine only through mqueue_push (ua_push); the engine talks to the core only
 * through host->post (core_post). Every message is a `smsg` linked in the instance's in-flight
 * list until its receiver takes it, so a stop frees what never arrived. */
#ifndef ACDM_SIP_INT_H
#define ACDM_SIP_INT_H

#include <acdm/plugin.h>
#include <acdm/plugin_util.h>

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>

#include "audio.h"
#include "sipcfg.h"

/* core -> engine */
enum {
    MQ_QUIT = 1,
    MQ_CONF,          /* text: the new config JSON (same sockets) */
    MQ_SUBMITTED,     /* call, outcome, bericht, text (closed text) */
    MQ_CONNECT_AGENT, /* call, agent, uri (endpoint), a = ring timeout ms, b = 1: device offer */
    MQ_HANGUP,        /* call, text = reason */
    MQ_POSITION,      /* call, a = position, b = estimate s */
    MQ_HOLD,          /* call */
    MQ_RESUME,        /* call */
    MQ_REQUEUED,      /* call: the agent leg is dropped, the caller waits again */
    MQ_TTS_DONE,      /* ptr = tts job (from the TTS worker) */
    MQ_MENU_QUEUED,   /* call, outcome, bericht, text: the submit after an IVR choice */
    MQ_ORIGINATE,     /* call (a new id), bericht, agent, uri (the agent's phone), dialled (the customer) */
    MQ_CALLBACK_OK,   /* call, outcome: the callback bericht's submit (the caller hears the text, then BYE) */
    MQ_QUEUE_STATE,   /* queue, a = 1: closed now (a queue a menu's when_closed names; every poll) */
    MQ_TRANSFER_OUT,  /* call, agent, text = the number: the desk's blind transfer (as the phone's REFER) */
};

/* engine -> core */
enum {
    CM_LOG = 1,       /* a = level, text */
    CM_NEW_CALL,      /* call, from, dialled, queue, callid, a = 1: menu (submitted later) */
    CM_MENU_CHOICE,   /* call, queue, text = the IVR path ("1-2") */
    CM_CALL_GONE,     /* call, text = reason, a = 1: the caller hung up (else we did) */
    CM_DEVICE,        /* call, agent, a = acdm_device_outcome, text = reason */
    CM_AGENT_BYE,     /* call, agent: the agent's phone hung up during the conversation */
    CM_REACHABLE,     /* agent, a = reachable, text = reason */
    CM_READY,         /* the engine applied a config (a = generation) */
    CM_ORIGINATE,     /* call, bericht, a = acdm_originate_outcome, text = reason */
    CM_CALLBACK,      /* call: the waiting caller asked to be called back (from = the number) */
    CM_TRANSFER_OUT,  /* call, agent, text = the number: the caller was transferred out (REFER or the desk) */
    CM_XFER_FAILED,   /* call, text = why: the number did not answer; the caller waits again (submit anew) */
};

typedef struct smsg {
    struct smsg *prev, *next;
    int type;
    uint32_t call;
    int outcome;
    uint32_t a, b;
    char bericht[64];
    char agent[72];
    char *text, *from, *dialled, *queue, *callid, *uri;
    void *ptr;
} smsg;

/* Figures the engine keeps for GET /status (under st_mu). */
typedef struct {
    unsigned long invites, answered, closed_played, rejected_404, rejected_488, rejected_503,
        rejected_400, malformed, agent_calls, bridged, dtmf, registers, register_denied,
        rtp_timeouts, session_expired, rejected_422, transfers_out, positions, calls_now, prompts_ready, prompts_failed, conf_gen;
    char registered[2048];     /* JSON array of user names registered */
    /* routing latency: the caller's INVITE received -> the INVITE to the agent's phone sent,
     * in 100 us buckets up to 2 s (the last bucket: longer) */
    unsigned long lat_n;
    uint32_t lat[20001];
} sip_stats;

struct ua;            /* the engine's state, sipua.c (SIP thread only) */
struct ccall;         /* a call as the core side knows it, sip.c */

typedef struct sipp {
    const acdm_host *host;
    acdm_instance *inst;
    sipc_cfg cfg;                /* core thread's copy */
    char *cfg_json;
    /* in-flight messages (both directions) */
    pthread_mutex_t mu;
    smsg *inflight;
    bool stopping;               /* under mu: no more posts */
    /* the engine */
    pthread_t thread;
    bool running;
    sem_t ready;
    int start_rc;
    char start_err[256];
    struct mqueue *mq;           /* created in the engine thread */
    struct ua *ua;
    char *kept_regs;             /* the phones' registrations across an engine restart (a reload
                                  * that changed the sockets): "user\tcontact\texpires_ms\n"... */
    /* the TTS worker */
    pthread_t tts_thread;
    bool tts_running;
    pthread_cond_t tts_cv;
    struct tts_job *tts_jobs;    /* under mu */
    bool tts_quit;               /* under mu */
    /* figures */
    pthread_mutex_t st_mu;
    sip_stats st;
    /* core side */
    struct ccall *calls;
    acdm_timer *poll;
    bool qwarned;                /* a when_closed queue is unknown: said once */
    char *status_body;
    unsigned long conf_gen;
    uint32_t next_out;           /* ids of outbound calls (high bit set) */
} sipp;

/* A prompt to render (TTS worker): text with voice, or a WAV file. */
typedef struct tts_job {
    struct tts_job *next;
    char *key;                   /* cache key */
    char *text, *file, *voice, *command;
    sipa_clip clip;              /* result */
    int rc;
    char err[200];
} tts_job;

smsg *smsg_new(sipp *p, int type, uint32_t call);
void smsg_free(smsg *m);
void smsg_take(sipp *p, smsg *m);             /* unlink from in-flight */
void smsg_free_all(sipp *p);
char *sip_strdup(const char *s);

/* engine (sipua.c) */
int ua_start(sipp *p, char *err, size_t errlen);   /* starts the thread, waits until it listens */
void ua_stop(sipp *p);
int ua_push(sipp *p, smsg *m);                     /* core -> engine; frees m on failure */

/* TTS worker (tts.c) */
int tts_start(sipp *p);
void tts_stop(sipp *p);
void tts_submit(sipp *p, tts_job *j);              /* any thread; the result comes as MQ_TTS_DONE */
void tts_job_free(tts_job *j);
int tts_render(const tts_job *j, sipa_clip *out, char *err, size_t errlen);  /* blocking */

/* core side (sip.c): from the engine thread */
void core_post(sipp *p, smsg *m);
void core_log(sipp *p, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
