/* engine_int.h -- private to core/engine/: the calls between engine.c, auth_glue.c and audit.c. */
#ifndef ACDM_ENGINE_INT_H
#define ACDM_ENGINE_INT_H

#include "engine/engine.h"

/* auth_glue.c: OIDC at start and reload in two steps (all or nothing), JWT checks. */
struct acdm_oidc_state;
int acdm_engine_oidc_prepare(acdm_engine *e, const acdm_config *cfg, struct acdm_oidc_state **st,
                             char *err, size_t errlen);
void acdm_engine_oidc_commit(acdm_engine *e, struct acdm_oidc_state *st);
void acdm_engine_oidc_discard(struct acdm_oidc_state *st);
void acdm_engine_oidc_shutdown(acdm_engine *e);   /* before the loop's last run */
int acdm_engine_auth_jwt(acdm_engine *e, const char *token, acdm_principal *who);
#endif
