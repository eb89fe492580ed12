/* auth_glue.c -- the engine's side of sign-in: OIDC set up at start and reload, JWT bearer
 * tokens checked against the live agents, failed sign-ins counted per peer address. */
#include "auth/auth.h"
#include "engine/engine_int.h"

#include <string.h>

int acdm_engine_oidc_prepare(acdm_engine *e, const acdm_config *cfg, struct acdm_oidc_state **st,
                             char *err, size_t errlen)
{
    if (!e->auth && !(e->auth = acdm_auth_create(&e->loop))) {
        snprintf(err, errlen, "out of memory");
        return ACDM_ENOMEM;
    }
    return acdm_auth_prepare(e->auth, &cfg->oidc, st, err, errlen);
}

void acdm_engine_oidc_commit(acdm_engine *e, struct acdm_oidc_state *st)
{
    if (st) acdm_auth_commit(e->auth, st);
}

void acdm_engine_oidc_discard(struct acdm_oidc_state *st) { acdm_auth_discard(st); }

void acdm_engine_oidc_shutdown(acdm_engine *e)
{
    acdm_auth_destroy(e->auth);
    e->auth = NULL;
}

static bool agent_exists(void *user, const char *id)
{
    acdm_engine *e = user;
    return acdm_model_agent(e->model, id) != NULL;
}

int acdm_engine_auth_jwt(acdm_engine *e, const char *token, acdm_principal *who)
{
    acdm_principal np;
    memset(&np, 0, sizeof np);
    int64_t until_s = 0;
    if (acdm_auth_jwt(e->auth, token, agent_exists, e, np.role, sizeof np.role, np.name, sizeof np.name,
                      &until_s))
        return ACDM_ENOENT;
    np.until_ms = until_s * 1000;   /* a websocket session opened with it ends then (api.c) */
    *who = np;
    return 0;
}

int acdm_engine_auth_peer(acdm_engine *e, const char *token, acdm_peer_fn peer, void *ctx,
                          acdm_principal *who, int *retry_after_s)
{
    int64_t now = acdm_now_ms();
    if (!e->auth && !(e->auth = acdm_auth_create(&e->loop))) return ACDM_ENOMEM;
    const char *addr = acdm_auth_watching(e->auth) ? peer(ctx) : NULL;
    if (addr && acdm_auth_blocked(e->auth, addr, now, retry_after_s)) return ACDM_EFULL;
    int rc = acdm_engine_auth(e, token, who);
    if (rc && token && *token) acdm_auth_failed(e->auth, addr ? addr : peer(ctx), now);
    return rc;
}
