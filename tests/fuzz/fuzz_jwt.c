/* fuzz_jwt.c -- libFuzzer entry point: bytes starting with '{' as a JWK Set through
 * acdm_jwks_parse, anything else as a bearer JWT through acdm_jwt_verify against a fixed key set
 * (the seed corpus holds tokens signed by its private keys, so the claim checks are reached). */
#include "auth/auth.h"
#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char jwks_text[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\",\"kid\":\"rsa1\",\"n\":\"1ArVv1vRckx1bXPt1QfbumI-tDJBTGAXCOmWQQk2VfdDMeimyp2aVr_FtMzqijcX8A_oZCD-gwh3d3w39DzPLEyNwfujLKwbSmHZ0XvkHvLPi5GflhgdLE4qnHDJzpdw6SUpKspOMP89keNijhS472pSbneSarL8NXixM2PVlm612mz5grZQzhexEcZfIR4y0OyYuiw9y5-z830XFwo5RUNVyOTlE0b9BTjyz25_sRlqawXhnwWhBG27sZoUczdcFQFnMOabfw8KsRFrF8B2rReLHj9pQI3jqmC7h-CezYWkbTGEXjpGBXMWvl-gqTFpTX7YvzWfm4_3TsVaylu5CQ\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec1\",\"x\":\"YDuGWEI4oOzliRtosz9OV8Ss4wHgTwzHI-3xoLmRp_0\",\"y\":\"qZxoFHklGGs6BrTtIFbmC-giK5yF8ZmWAWr2rnTN-Tc\"}]}";

static acdm_config *cfg;
static acdm_jwks *keys;

static bool exists(void *user, const char *id)
{
    (void)user;
    return acdm_config_agent(cfg, id) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    if (!cfg) {
        if (acdm_config_parse("fuzz.json",
                "{\"queues\":[{\"name\":\"q\"}],\"agents\":[{\"id\":\"anna\",\"queues\":[\"q\"]}],"
                "\"oidc\":{\"issuer\":\"https://login.microsoftonline.com/t/v2.0\",\"audience\":\"api://acdm\","
                "\"jwks_file\":\"x\",\"role_map\":{\"ACDM.Admin\":\"admin\",\"ACDM.Supervisor\":\"supervisor\","
                "\"ACDM.Agent\":\"agent\"}}}", &cfg, err, sizeof err) ||
            acdm_jwks_parse(jwks_text, strlen(jwks_text), &keys, err, sizeof err))
            abort();
    }
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (size && text[0] == '{') {
        acdm_jwks *k = NULL;
        err[0] = 0;
        int rc = acdm_jwks_parse(text, size, &k, err, sizeof err);
        /* the contract: a key set with at least one key, or an error sentence and none */
        if (rc == 0 ? (!k || acdm_jwks_count(k) == 0) : (k != NULL || !err[0])) abort();
        acdm_jwks_free(k);
    } else {
        char role[32] = "", name[ACDM_NAME_MAX + 1] = "", why[512] = "";
        acdm_jwt_status st = acdm_jwt_verify(&cfg->oidc, keys, text, 1790000000, exists, NULL, role,
                                             sizeof role, name, sizeof name, NULL, why, sizeof why);
        if (st >= ACDM_JWT__COUNT) abort();
        if (st == ACDM_JWT_OK) {
            if (strcmp(role, "admin") && strcmp(role, "supervisor") && strcmp(role, "agent")) abort();
            if (!strcmp(role, "agent") && !exists(NULL, name)) abort();
        } else if (!why[0]) {
            abort();   /* every refusal names its reason */
        }
        (void)acdm_jwt_shaped(text);
    }
    free(text);
    return 0;
}
