/* api_authcfg.c -- GET /api/v1/auth/config: what the sign-in page needs for the OpenID Connect
 * authorization-code flow with PKCE (a public SPA client). No authentication: it holds nothing
 * secret (endpoints, the client id, the scope, the issuer). {"oidc": null} when the config has
 * no "oidc" block or no browser sign-in in it (authorization_endpoint/token_endpoint/client_id). */
#include "api/api.h"

static void get_auth_config(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    const acdm_oidc_def *o = &acdm_model_config(acdm_engine_model(e))->oidc;
    json_t *oidc = json_null();
    if (o->enabled && o->authorization_endpoint && o->token_endpoint && o->client_id)
        oidc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
                         "authorization_endpoint", o->authorization_endpoint,
                         "token_endpoint", o->token_endpoint, "client_id", o->client_id,
                         "scope", o->scope ? o->scope : "openid profile", "issuer", o->issuer,
                         "use_token", o->use_token ? o->use_token : "id_token");
    acdm_http_reply_json(r, 200, json_pack("{s:o}", "oidc", oidc ? oidc : json_null()));
}

int acdm_api_authcfg_register(acdm_engine *e)
{
    acdm_http *h = acdm_engine_http(e);
    acdm_http_route(h, "GET", "/api/v1/auth/config", get_auth_config, e);
    return 0;
}
