/* plugins_int.h -- private to core/plugins/: the host's types and the calls between its files
 * (loader.c: dlopen, discovery, drop-in watch, ABI checks; host.c: instances and the acdm_host
 * table; bridge.c: plugin HTTP and websocket routes, deferred responses; io.c: plugins' outbound
 * HTTP on the core's outbound client, net/outbound.c). Nothing outside core/plugins/ includes it. */
#ifndef ACDM_PLUGINS_INT_H
#define ACDM_PLUGINS_INT_H

#include "plugins/plugins.h"
#include "net/http.h"
#include "base/log.h"


#include "net/outbound.h"
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEBOUNCE_MS 200
#define DEBOUNCE_TRIES 50           /* 10 s of "still being written" before giving up */
#define MAX_INSTANCE_SIZE (64u << 20)
#define MAX_RESPONSE_BODY (16u << 20)

/* The last field of the descriptor this core reads; a plugin built against an older minor
 * is accepted when its struct_size reaches the end of it. */
#define DESC_NEEDS (offsetof(acdm_plugin, destroy) + sizeof(((acdm_plugin *)0)->destroy))
#define INBOUND_NEEDS (offsetof(acdm_inbound, payload_json) + sizeof(const char *))
#define ATTACH_IN_NEEDS (offsetof(acdm_attachment_in, path) + sizeof(const char *))
#define ATTACH_META_NEEDS (offsetof(acdm_attachment_meta, size) + sizeof(uint64_t))
#define HTTP_OUT_NEEDS (offsetof(acdm_http_out, timeout_ms) + sizeof(long))

/* The host table only grows at its end (plugins test ACDM_HOST_HAS against struct_size), and
 * acdm_http_response's defer/token come after the fields an older plugin fills. */
_Static_assert(sizeof(acdm_host) == offsetof(acdm_host, feedback) +
               sizeof(((acdm_host *)0)->feedback),
               "feedback is the host table's last field");
/* How far the host table handed to plugins goes: all of it (every ABI 1.1 function is filled). */
#define HOST_TABLE_SIZE sizeof(acdm_host)
_Static_assert(offsetof(acdm_http_response, defer) >= offsetof(acdm_http_response, body_len) +
               sizeof(size_t), "defer/token come after the 1.0 response fields");

/* ------------------------------------------------------------------ types */

typedef struct plugin {
    struct plugin *next;
    char *file;                 /* the watched file in the plugin folder */
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    void *dl;
    /* The .so is loaded from a private copy (a sealed memfd, opened as /proc/<pid>/fd/<n>) and
     * the descriptor and its strings are copied out of it, so the watched file may be
     * overwritten, truncated or deleted while the plugin is loaded. The memfd stays open while
     * the plugin is loaded: its path is unique among the loaded objects. */
    int memfd;
    const acdm_plugin *d;       /* = &desc */
    acdm_plugin desc;           /* the plugin's descriptor, copied (struct_size as the plugin's) */
    char *strs[5];              /* desc's strings, copied: name, version, description, kinds,
                                 * device_endpoint_key */
    bool enabled;
    bool changed;               /* the file changed while instances ran: applied once they stop */
    int n_instances;            /* instances that are initialised (priv allocated) */
} plugin;

enum { IS_WAITING = 0, IS_STARTING, IS_RUNNING, IS_FAILED, IS_DISABLED, IS_STOPPING };
extern const char *const acdm_plg_state_names[];   /* by IS_* (host.c) */

struct acdm_timer {
    struct acdm_timer *prev, *next;
    uv_timer_t h;
    acdm_instance *inst;
    void (*cb)(acdm_instance *, void *, void *);
    void *user;
    bool repeat, closing, firing;
};

struct acdm_watch {
    struct acdm_watch *prev, *next;
    uv_poll_t h;
    acdm_instance *inst;
    void (*cb)(acdm_instance *, void *, void *, int);
    void *user;
    bool closing;
};

typedef struct hroute {
    struct hroute *next;
    acdm_instance *inst;
    acdm_http_handler handler;
    int id;
} hroute;

#define DEFERRED_MAGIC 0xacd3defe

/* One plugin HTTP request while its handler runs and, if it deferred, until http_respond (or
 * the instance's stop, which answers 503). The token a plugin sees is this struct. */
typedef struct deferred {
    struct deferred *prev, *next;   /* inst->deferred */
    unsigned magic;                 /* DEFERRED_MAGIC while pending; catches some misuse */
    acdm_instance *inst;
    acdm_req *req;                  /* the server's request, replied exactly once */
    bool in_handler;                /* route_call still runs: it frees the struct */
    bool answered;                  /* http_respond was called inside the handler */
    bool counted;                   /* a failed check_token already counted for the peer */
} deferred;

/* A websocket route. Kept until acdm_plugins_destroy (inst NULL once its instance stopped) so
 * a late callback from the HTTP layer never sees freed memory. */
typedef struct wsroute {
    struct wsroute *next;        /* p->wsroutes */
    acdm_plugins *p;
    acdm_instance *inst;
    acdm_ws_callbacks cb;
    int id;
} wsroute;

struct acdm_wsconn {
    struct acdm_wsconn *prev, *next;  /* inst->conns while attached */
    acdm_ws *ws;
    wsroute *route;              /* NULL: orphaned (instance stopped), freed at the ws close */
    void *user;
};

/* A plugin's outbound HTTP request while it is in flight (inst->reqs). */
typedef struct outreq {
    struct outreq *prev, *next;
    acdm_instance *inst;
    acdm_out_req *req;           /* the outbound client's request */
    acdm_http_done done;
    void *user;
} outreq;

/* A submit whose callback the engine still owes. inst NULL once the instance stopped. */
typedef struct pending_submit {
    struct pending_submit *prev, *next;
    acdm_plugins *p;
    acdm_instance *inst;
    acdm_submit_cb cb;
    void *user;
} pending_submit;

typedef struct post_item {
    struct post_item *next;
    acdm_instance *inst;
    void (*fn)(acdm_instance *, void *, void *);
    void *arg;
} post_item;

typedef struct kv_entry {
    struct kv_entry *next;
    char *ns, *key, *val;
    size_t len;
    int64_t expires_ms;          /* 0: never */
} kv_entry;

#define KV_EXPIRE_EVERY_MS 60000 /* how often expired kv entries are removed */
#define KV_EXPIRE_SLICE 500      /* at most this many per writer group; a full slice goes on */

typedef struct pending_file {
    struct pending_file *next;
    char *name;
    off_t size;
    struct timespec mtime;
    int tries;
} pending_file;

typedef struct refusal {
    struct refusal *next;
    char *file, *reason;
} refusal;

struct acdm_instance {
    struct acdm_instance *next;
    acdm_plugins *p;
    char *name, *plugin_name, *queue, *config_json;
    char *route_prefix;          /* "/channels/<name>" */
    plugin *pl;                  /* set while initialised */
    void *priv;
    int state;
    bool accept_posts;           /* guarded by p->post_mu */
    char *why;                   /* why it is not running (waiting, failed, disabled), or NULL */
    bool seen;
    acdm_timer *timers;
    acdm_watch *watches;
    hroute *routes;
    acdm_wsconn *conns;
    outreq *reqs;
    pending_submit *subs;
    deferred *deferred;          /* HTTP responses the plugin still owes */
    struct flush_req *flushes;   /* flush() calls waiting for their commit */
};

struct acdm_plugins {
    acdm_plugin_env env;
    char *dir;
    plugin *plugins;
    acdm_instance *insts;
    refusal *refused;
    kv_entry *kv;
    uv_timer_t *kv_timer;        /* removes expired kv entries */
    acdm_plugins **kv_expiring;  /* a slice queued in the store: its callback's token */
    wsroute *wsroutes;
    pending_submit *orphans;
    /* post() */
    pthread_mutex_t post_mu;
    post_item *post_head, *post_tail;
    uv_async_t *async;
    /* hot drop */
    uv_fs_event_t *fsev;
    uv_timer_t *debounce;
    pending_file *pending;
    uv_timer_t *idle;            /* applies file changes remembered while instances ran */
    int open_handles;            /* uv handles not yet closed */
    /* the plugin request being handled now (route handler, ws open/message): its peer for
     * check_token's limiter, and whether a failure was counted for it already */
    const char *cur_peer;
    bool cur_counted;
};

/* ------------------------------------------------------------------ small helpers */

static inline char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static inline bool streq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && !strcmp(a, b));
}
#define DLIST_ADD(head, e) do { \
        (e)->prev = NULL; (e)->next = (head); \
        if (head) { (head)->prev = (e); } \
        (head) = (e); \
    } while (0)
#define DLIST_DEL(head, e) do { \
        if ((e)->prev) { (e)->prev->next = (e)->next; } else { (head) = (e)->next; } \
        if ((e)->next) { (e)->next->prev = (e)->prev; } \
        (e)->prev = (e)->next = NULL; \
    } while (0)

/* ------------------------------------------------------------------ between the files */

/* host.c */
void acdm_plg_kv_expire(acdm_plugins *p);   /* one round of removing expired kv entries */
void acdm_plg_close_owned(acdm_plugins *p, uv_handle_t *h);
plugin *acdm_plg_find_plugin(acdm_plugins *p, const char *name);
plugin *acdm_plg_find_plugin_file(acdm_plugins *p, const char *file);
bool acdm_plg_live(const acdm_instance *i);
void acdm_plg_inst_stop(acdm_instance *inst, int final_state);
void acdm_plg_start_waiting(acdm_plugins *p, const char *plugin_name);
/* bridge.c */
int acdm_plg_host_http_respond(void *token, const acdm_http_response *resp);
void acdm_plg_deferred_close_all(acdm_instance *inst);
int acdm_plg_host_http_route(acdm_instance *inst, const char *method, const char *path, acdm_http_handler handler);
void acdm_plg_ws_closed(void *user, acdm_ws *ws);
int acdm_plg_host_ws_route(acdm_instance *inst, const char *path, const acdm_ws_callbacks *cb);
int acdm_plg_host_ws_send(acdm_wsconn *c, const char *data, size_t len);
void acdm_plg_host_ws_close(acdm_wsconn *c, int code, const char *reason);
void acdm_plg_host_ws_set_user(acdm_wsconn *c, void *user);
void *acdm_plg_host_ws_user(acdm_wsconn *c);
/* io.c */
void acdm_plg_outreq_cancel(outreq *rq);   /* done is not called */
int acdm_plg_host_http_request(acdm_instance *inst, const acdm_http_out *req, acdm_http_done done, void *user);
void acdm_plg_set_why(acdm_instance *inst, const char *fmt, ...) ACDM_PRINTF(2, 3);
/* loader.c */
void acdm_plg_set_refusal(acdm_plugins *p, const char *file, const char *reason);
const char *acdm_plg_refusal_of(acdm_plugins *p, const char *file);
/* the loaded plugin's instances all stopped: apply a change of its file seen meanwhile */
void acdm_plg_plugin_idle(acdm_plugins *p, plugin *pl);

#endif
