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
    void *engine;
    /* in is validated by the host (struct_size, kind, from) before this is called; the engine
     * must call cb exactly once later if it returns 0, never if it returns negative. */
    int (*submit)(void *engine, acdm_instance *inst, const acdm_inbound *in, acdm_submit_cb cb,
                  void *user);
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
    int (*check_token)(void *engine, acdm_instance *inst, const char *token);
    int (*end_ago)(void *engine, acdm_instance *inst, const char *bericht_id, const char *reason,
                   uint32_t ago_ms);
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

/* Unloads a plugin by name. ACDM_ESTATE while any of its instances runs (stop them first by
 * removing them from the config or disabling the plugin). */
int acdm_plugins_unload(acdm_plugins *p, const char *plugin_name);

/* Hands an agent's reply to the running instance's deliver(). ACDM_ENOENT if no such running
 * instance; otherwise deliver's return. r is borrowed. */
int acdm_plugins_deliver(acdm_plugins *p, const char *instance, const acdm_reply *r);

/* The agent who has bericht_id is typing: the running instance's on_agent_typing (if any). */
void acdm_plugins_agent_typing(acdm_plugins *p, const char *instance, const char *bericht_id);

/* Outbound HTTP for the core itself (screen-pop), on the same libcurl multi and loop as the
 * plugins' http_request. A GET of url (http or https) with a total timeout; a body over
 * max_body bytes (0 = 16 MiB) fails with status -1 "response body too large". done runs on the
 * loop exactly once unless this returns negative: status is the HTTP status, or negative with
 * error set (a connection failure, the timeout, or "cancelled" when the host is destroyed). */
typedef void (*acdm_core_http_done)(void *user, int status, const char *body, size_t len,
                                    const char *error);
int acdm_plugins_core_get(acdm_plugins *p, const char *url, long timeout_ms, size_t max_body,
                          acdm_core_http_done done, void *user);

/* Passes a life event to the running instance's on_event (if any). ev is borrowed. */
void acdm_plugins_event(acdm_plugins *p, const char *instance, const acdm_event_info *ev);

/* The configured instance (running or not) with that name, or NULL. Core-owned. */
acdm_instance *acdm_plugins_instance(acdm_plugins *p, const char *name);
const char *acdm_instance_name_of(const acdm_instance *i);
const char *acdm_instance_queue(const acdm_instance *i);   /* default queue, may be NULL */
const char *acdm_instance_state(const acdm_instance *i);   /* "running", "waiting", ... */

/* [{name, version, description, file, abi, kinds, enabled, instances:[{name, state, queue}]}]
 * (new reference), for the API and acdmctl. Instances waiting for a plugin that is not loaded
 * are listed under a pseudo-entry with "file": null. */
json_t *acdm_plugins_json(acdm_plugins *p);

/* [{file, reason}] of the files refused by the last load attempt of each file (new reference). */
json_t *acdm_plugins_refused_json(acdm_plugins *p);

/* Stops and destroys every instance, unloads every plugin, frees p. Closes its uv handles;
 * the caller runs the loop afterwards (or before closing it) so the close callbacks complete. */
void acdm_plugins_destroy(acdm_plugins *p);

#endif
