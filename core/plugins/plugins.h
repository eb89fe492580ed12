/* plugins.h -- the plugin host: loads channel plugins (.so), runs their instances, serves the host table. */
#ifndef ACDM_PLUGINS_H
#define ACDM_PLUGINS_H

#include "base/acdm.h"
#include "config/config.h"
#include "store/store.h"
#include "acdm/plugin.h"

#include <jansson.h>
#include <uv.h>

typedef struct acdm_plugins acdm_plugins;
typedef struct acdm_http acdm_http;

/* What the host needs from the rest of the core. Every function is called on the loop thread. */
typedef struct {
    uv_loop_t *loop;
    acdm_store *store;   /* may be NULL (tests): kv then lives in memory */
    acdm_http *http;     /* may be NULL (tests): http_route/ws_route then return ACDM_ESTATE */
    struct acdm_outbound *outbound; /* the core's outbound client; NULL (tests): http_request
                                     * returns ACDM_ESTATE */
    void *engine;
    /* in is validated by the host (struct_size, kind, from) before this is called; the engine
     * must call cb exactly once later if it returns 0, never if it returns negative (and then
     * writes the reason, a sentence naming the field, into err). */
    int (*submit)(void *engine, acdm_instance *inst, const acdm_inbound *in, acdm_submit_cb cb,
                  void *user, char *err, size_t errlen);
    int (*end)(void *engine, acdm_instance *inst, const char *bericht_id, const char *reason);
    int (*delivery_report)(void *engine, acdm_instance *inst, const char *bericht_id, const char *text,
                      const char *payload_json);
    /* web chat additions (may be NULL: the host call then returns ACDM_ESTATE) */
    int (*typing)(void *engine, acdm_instance *inst, const char *bericht_id);
    int (*queue_position)(void *engine, acdm_instance *inst, const char *bericht_id,
                          uint32_t *position, uint32_t *estimate_s);
    int (*attachment_put)(void *engine, acdm_instance *inst, const char *bericht_id,
                          const char *filename, const char *content_type, const void *data,
                          size_t len, char id_out[64]);
    /* peer: the client address of the plugin request being handled (NULL outside one): a failed
     * check counts towards that address's failed sign-ins, and a blocked address gets ACDM_EFULL */
    int (*check_token)(void *engine, acdm_instance *inst, const char *token, const char *peer);
    /* The failed sign-in limiter for plugin routes (may be NULL): whether peer is blocked now
     * (*retry_after_s then set), and a failure of peer (a plugin answered 401 itself). */
    bool (*peer_blocked)(void *engine, const char *peer, int *retry_after_s);
    void (*peer_failed)(void *engine, const char *peer);
    int (*end_ago)(void *engine, acdm_instance *inst, const char *bericht_id, const char *reason,
                   uint32_t ago_ms);
    /* ABI 1.1 (may be NULL: the host call then returns ACDM_ESTATE). a is validated by the
     * host; fd >= 0 is the open file to copy (the callee owns it and closes it), else a->data. */
    int (*attachment_store)(void *engine, acdm_instance *inst, const acdm_attachment_in *a,
                            int fd, char id_out[64]);
    /* meta is the host's (full size); *fd as in acdm_host.attachment_read */
    int (*attachment_read)(void *engine, acdm_instance *inst, const char *id,
                           acdm_attachment_meta *meta, int *fd);
    /* ABI 1.1, the routing side (may be NULL: the host call then returns ACDM_ESTATE). The host
     * has checked the instance is live and the pointers and struct sizes; u is borrowed. */
    int (*update)(void *engine, acdm_instance *inst, const char *bericht_id, const acdm_update *u,
                  char *err, size_t errlen);
    int (*device_result)(void *engine, acdm_instance *inst, const char *bericht_id,
                         const char *agent_id, acdm_device_outcome outcome, const char *reason);
    int (*device_reachable)(void *engine, acdm_instance *inst, const char *agent_id,
                            const char *kind, int reachable, const char *reason);
    int (*originate_result)(void *engine, acdm_instance *inst, const char *bericht_id,
                            acdm_originate_outcome outcome, const char *reason);
    /* An instance whose plugin rings agents' devices (device_key: its device_endpoint_key) has
     * stopped: what it said of registrations is void (may be NULL). */
    void (*devices_gone)(void *engine, acdm_instance *inst, const char *device_key);
    /* appended within 1.1 (may be NULL: the host call returns ACDM_ESTATE) */
    int (*set_conversation)(void *engine, acdm_instance *inst, const char *bericht_id,
                            const char *conversation);
    char *(*queue_info)(void *engine, acdm_instance *inst, const char *queue, const char *kind);
    int (*feedback)(void *engine, acdm_instance *inst, const char *bericht_id, const char *detail_json,
                    char *err, size_t errlen);
} acdm_plugin_env;

/* Creates the host for plugin_dir (copied; env copied). Nothing is loaded yet. */
int acdm_plugins_create(const acdm_plugin_env *env, const char *plugin_dir, acdm_plugins **out);

/* Loads every *.so in the folder (sorted by file name). A refusal is one log line naming the
 * file and the reason, never fatal. Returns the number of plugins loaded by this call. Waiting
 * instances of newly loaded plugins start. */
int acdm_plugins_load_all(acdm_plugins *p);

/* Loads one file (path) now. 0, or negative with the reason in err (also logged). */
int acdm_plugins_load_file(acdm_plugins *p, const char *path, char *err, size_t errlen);

/* Watches the folder: a .so dropped in (renamed into place or copied in steps) is loaded once it
 * has stopped changing (200 ms debounce, retried while it still grows or fails to load as a
 * truncated ELF), and its configured instances start. */
int acdm_plugins_watch(acdm_plugins *p);

/* For reload: runs every channel's plugin check_config (when the plugin is loaded and has one).
 * Nothing is applied. 0, or ACDM_EINVAL with one line per problem in err. */
int acdm_plugins_check(acdm_plugins *p, const acdm_config *cfg, char *err, size_t errlen);

/* Applies cfg->channels as a diff: new instances init+start, changed ones (config JSON or
 * plugin differs) reload (or restart when the plugin has no reload), removed ones stop+destroy.
 * Instances whose plugin is not loaded (yet) wait and start when it loads. cfg is not kept.
 * Returns 0, or the first negative code of an instance that failed (every failure is logged). */
int acdm_plugins_configure(acdm_plugins *p, const acdm_config *cfg);

/* Enables/disables a plugin by its name (not its file): disabling stops its instances (state
 * "disabled"), enabling starts them again. ACDM_ENOENT if no such plugin is loaded. */
int acdm_plugins_enable(acdm_plugins *p, const char *plugin_name, bool enabled);

/* Replaces a loaded plugin by what its file holds now, deliberately (the operator's `acdmctl
 * plugin reload NAME`): the file is loaded (a private copy) and checked first; only when it is
 * fine are the plugin's instances stopped (deferred responses answered 503, submits in flight
 * still committed, as a stop does), the plugin swapped and the instances started on the new
 * build (enabled or not as before). 0, or negative with a sentence in err, the old build kept:
 * ACDM_ENOENT (no such plugin loaded, or its file is gone), ACDM_EINVAL (the file is refused). */
int acdm_plugins_reload(acdm_plugins *p, const char *plugin_name, char *err, size_t errlen);

/* Warnings about cfg that are not errors: a channel whose plugin is in no .so of the plugin
 * folder (its instance waits for a drop-in). A JSON array of sentences (new reference). */
json_t *acdm_plugins_warnings(acdm_plugins *p, const acdm_config *cfg);

/* Unloads a plugin by name. ACDM_ESTATE while any of its instances runs (stop them first by
 * removing them from the config or disabling the plugin). */
int acdm_plugins_unload(acdm_plugins *p, const char *plugin_name);

/* Hands an agent's reply to the running instance's deliver(). ACDM_ENOENT if no such running
 * instance; otherwise deliver's return. r is borrowed. */
int acdm_plugins_deliver(acdm_plugins *p, const char *instance, const acdm_reply *r);

/* The agent who has bericht_id is typing: the running instance's on_agent_typing (if any). */
void acdm_plugins_agent_typing(acdm_plugins *p, const char *instance, const char *bericht_id);


/* Device offers: the running instance's device_endpoint_key when its plugin has offer_device
 * (the agents' endpoint it rings), else NULL. Borrowed from the plugin's descriptor. */
const char *acdm_plugins_device_key(acdm_plugins *p, const char *instance);
/* Hands an offer to the running instance's offer_device: its return, ACDM_ENOENT when the
 * instance is not running or has none. o is borrowed. */
int acdm_plugins_offer_device(acdm_plugins *p, const char *instance, const acdm_device_offer *o);
/* Whether the running instance's plugin has originate. */
bool acdm_plugins_can_originate(acdm_plugins *p, const char *instance);
/* Asks the running instance to start an outbound contact: 0 (originate_result follows), or
 * negative with a sentence in err (the plugin's, or why it was not asked). */
int acdm_plugins_originate(acdm_plugins *p, const char *instance, const acdm_originate *o,
                           char *err, size_t errlen);

/* Whether the running instance's plugin has transfer_out (ABI 1.2). */
bool acdm_plugins_can_transfer_out(acdm_plugins *p, const char *instance);
/* Asks the running instance to transfer bericht_id's caller to number: 0 (the channel ends the
 * bericht once it has the call), or negative with a sentence in err. */
int acdm_plugins_transfer_out(acdm_plugins *p, const char *instance, const char *bericht_id,
                              const char *number, char *err, size_t errlen);

/* [{channel, kinds:[..]}] of the running instances whose plugin has originate: what an agent
 * may start an outbound contact with (kinds from the descriptor, without "callback"). New
 * reference. */
json_t *acdm_plugins_outbound_json(acdm_plugins *p);

/* Passes a life event to the running instance's on_event (if any). ev is borrowed. */
void acdm_plugins_event(acdm_plugins *p, const char *instance, const acdm_event_info *ev);

/* The configured instance (running or not) with that name, or NULL. Core-owned. */
acdm_instance *acdm_plugins_instance(acdm_plugins *p, const char *name);
const char *acdm_instance_name_of(const acdm_instance *i);
const char *acdm_instance_queue(const acdm_instance *i);   /* default queue, may be NULL */
const char *acdm_instance_state(const acdm_instance *i);   /* "running", "waiting", ... */

/* [{name, version, description, file, abi, kinds, enabled, changed, instances:[{name, state,
 * queue, reason, status?}]}] (reason: why an instance is not running; changed: the file changed
 * while instances ran, applied when they stop; status: a running instance's status_json object,
 * when its plugin has one)
 * (new reference), for the API and acdmctl. Instances waiting for a plugin that is not loaded
 * are listed under a pseudo-entry with "file": null. */
json_t *acdm_plugins_json(acdm_plugins *p);

/* Every configured instance: [{name, plugin, state, healthy, status?}] (new reference), for
 * GET /api/v1/health. healthy: running and its status_json (if any) does not say
 * "healthy": false. *degraded (may be NULL) gets a new array of the unhealthy instances' names. */
json_t *acdm_plugins_health_json(acdm_plugins *p, json_t **degraded);

/* [{file, reason}] of the files refused by the last load attempt of each file (new reference). */
json_t *acdm_plugins_refused_json(acdm_plugins *p);

/* Stops and destroys every instance, unloads every plugin, frees p. Closes its uv handles;
 * the caller runs the loop afterwards (or before closing it) so the close callbacks complete. */
void acdm_plugins_destroy(acdm_plugins *p);

#endif
