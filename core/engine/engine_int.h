/* engine_int.h -- private to core/engine/: the calls between engine.c, auth_glue.c and audit.c. */
#ifndef ACDM_ENGINE_INT_H
#define ACDM_ENGINE_INT_H

#include "engine/engine.h"

struct acdm_engine {
    uv_loop_t loop;
    acdm_engine_opts opts;
    char *config_path;
    acdm_model *model;
    acdm_store *store;
    acdm_http *http;
    acdm_plugins *plugins;
    struct acdm_outbound *outbound;   /* net/outbound.c: plugins, screen-pop */
    uv_timer_t model_timer;
    uv_async_t store_wake;
    uv_signal_t sig_hup, sig_term, sig_int;
    int64_t armed_due;
    json_t *overrides;       /* runtime queue open/close: {"queue": {"closed": bool}} (kv-persisted) */
    acdm_hmap token_cache;   /* token -> acdm_principal* */
    char admin_token[64];
    bool stopping;
    uint64_t n_ingested;
    struct acdm_auth *auth;  /* auth.c: OIDC sign-in state and failed sign-ins per peer */
    struct engine_mod *mods; size_t n_mods;   /* opts.modules and the state each keeps */
    struct engine_sub *subs; size_t n_subs;   /* subscribers, by order */
    acdm_hmap subjects;      /* bericht id -> short subject/summary shown on the offer (live berichten) */
    char *salvage;           /* started with --salvage over read errors: what was not restored */
    acdm_hmap qwait;         /* queue name -> recent gap between acceptances (wait estimates) */
    acdm_hmap dfail;         /* channel instance -> uint64_t* delivery reports "failed" since start */
    acdm_hmap att_refs;      /* "channel\x1fattachment id" granted by replies since start (the
                              * store's attachment_refs holds them durably) */
    /* plugin calls a model event asks for (offer_device, a callback's originate), run from
     * the loop right after the event, never inside the model (the plugin may answer at once) */
    uv_timer_t defer_timer;
    uv_timer_t watchdog_timer;   /* WATCHDOG=1 to the service manager at half of WatchdogSec= */
    struct engine_job *jobs; size_t n_jobs, cap_jobs;
};


/* auth_glue.c: OIDC at start and reload in two steps (all or nothing), JWT checks. */
struct acdm_oidc_state;
int acdm_engine_oidc_prepare(acdm_engine *e, const acdm_config *cfg, struct acdm_oidc_state **st,
                             char *err, size_t errlen);
void acdm_engine_oidc_commit(acdm_engine *e, struct acdm_oidc_state *st);
void acdm_engine_oidc_discard(struct acdm_oidc_state *st);
void acdm_engine_oidc_shutdown(acdm_engine *e);   /* before the loop's last run */
int acdm_engine_auth_jwt(acdm_engine *e, const char *token, acdm_principal *who);
#endif
