/* test_auth.c -- unit tests of OpenID Connect sign-in (auth.c): JWKS parsing, RS256/ES256 JWT
 * checks with keys made here by OpenSSL, every refusal reason, and the failed-sign-in limiter. */
#include "auth/auth.h"
#include "config/config.h"

#include <check.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW 1790000000LL
#define ISS "https://login.microsoftonline.com/tenant/v2.0"
#define AUD "api://acdm"

static EVP_PKEY *rsa, *rsa2, *ec;   /* rsa2: not in the key set */
static char jwks[8192];

/* ------------------------------------------------------------------ helpers */

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = t[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = t[v & 63];
    }
    out[o] = 0;
}

static void b64url_str(const char *s, char *out) { b64url((const unsigned char *)s, strlen(s), out); }

static void bn_param(EVP_PKEY *k, const char *name, size_t pad, char *out)
{
    BIGNUM *bn = NULL;
    ck_assert(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
    unsigned char buf[600];
    size_t n = pad ? pad : (size_t)BN_num_bytes(bn);
    ck_assert(BN_bn2binpad(bn, buf, (int)n) == (int)n);
    b64url(buf, n, out);
    BN_free(bn);
}

static void make_jwks(void)
{
    char n[600], e[16], x[64], y[64];
    bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, 0, n);
    bn_param(rsa, OSSL_PKEY_PARAM_RSA_E, 0, e);
    bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_X, 32, x);
    bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_Y, 32, y);
    snprintf(jwks, sizeof jwks,
             "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\",\"kid\":\"rsa1\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"},"
             "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec1\",\"x\":\"%s\",\"y\":\"%s\"},"
             "{\"kty\":\"oct\",\"kid\":\"hmac\",\"k\":\"c2VjcmV0\"},"
             "{\"kty\":\"RSA\",\"use\":\"enc\",\"kid\":\"enc1\",\"n\":\"%s\",\"e\":\"%s\"}]}",
             n, e, x, y, n, e);
}

static void setup(void)
{
    rsa = EVP_RSA_gen(2048);
    rsa2 = EVP_RSA_gen(2048);
    ec = EVP_EC_gen("P-256");
    ck_assert(rsa && rsa2 && ec);
    make_jwks();
}

static void teardown(void)
{
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa2);
    EVP_PKEY_free(ec);
}

/* A token with the header and claims given (JSON texts), signed by key (NULL = no signature). */
static char *sign(const char *header, const char *claims, EVP_PKEY *key)
{
    char *tok = malloc(16384);
    char h[2048], c[4096];
    b64url_str(header, h);
    b64url_str(claims, c);
    snprintf(tok, 16384, "%s.%s", h, c);
    unsigned char sig[600];
    size_t slen = sizeof sig;
    if (key) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ck_assert(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1);
        ck_assert(EVP_DigestSign(md, sig, &slen, (const unsigned char *)tok, strlen(tok)) == 1);
        EVP_MD_CTX_free(md);
        if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {   /* DER -> R || S */
            const unsigned char *p = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
            ck_assert_ptr_nonnull(es);
            BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
            slen = 64;
            ECDSA_SIG_free(es);
        }
    } else {
        slen = 0;
    }
    char s[900];
    b64url(sig, slen, s);
    strcat(tok, ".");
    strcat(tok, key ? s : "");
    return tok;
}

static acdm_config *cfg;
static acdm_jwks *keys;

static void load(void)
{
    char err[4096];
    ck_assert_msg(acdm_config_parse("t.json",
        "{\"queues\":[{\"name\":\"q\"}],\"agents\":[{\"id\":\"anna\",\"queues\":[\"q\"]}],"
        "\"oidc\":{\"issuer\":\"" ISS "\",\"audience\":\"" AUD "\",\"jwks_file\":\"x\","
        "\"role_map\":{\"ACDM.Admin\":\"admin\",\"ACDM.Supervisor\":\"supervisor\",\"ACDM.Agent\":\"agent\"}}}",
        &cfg, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(acdm_jwks_parse(jwks, strlen(jwks), &keys, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(acdm_jwks_count(keys), 2);   /* oct and use:enc skipped */
}

static void unload(void)
{
    acdm_jwks_free(keys);
    acdm_config_free(cfg);
    keys = NULL;
    cfg = NULL;
}

static bool agent_exists(void *user, const char *id)
{
    (void)user;
    return acdm_config_agent(cfg, id) != NULL;
}

static char role[32], name[64], why[512];
static int64_t until;   /* the last check's until_s */

static acdm_jwt_status check(const char *tok)
{
    role[0] = name[0] = 0;
    return acdm_jwt_verify(&cfg->oidc, keys, tok, NOW, agent_exists, NULL, role, sizeof role, name,
                           sizeof name, &until, why, sizeof why);
}

/* Signs claims with key under kid/alg and expects status st (and the reason to contain want). */
static void expect(const char *alg, const char *kid, EVP_PKEY *key, const char *claims,
                   acdm_jwt_status st, const char *want)
{
    char hdr[256];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
    char *tok = sign(hdr, claims, key);
    acdm_jwt_status got = check(tok);
    ck_assert_msg(got == st, "%s: got %s (%s), expected %s", claims, acdm_jwt_status_name(got), why,
                  acdm_jwt_status_name(st));
    if (want) ck_assert_msg(strstr(why, want), "reason \"%s\" lacks \"%s\"", why, want);
    free(tok);
}

#define CLAIMS(extra) "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1790000600,\"nbf\":1789999000" extra "}"

/* ------------------------------------------------------------------ accepted */

START_TEST(rs256_admin_accepted)
{
    expect("RS256", "rsa1", rsa, CLAIMS(",\"roles\":[\"ACDM.Admin\"],\"preferred_username\":\"jan@example.nl\""),
           ACDM_JWT_OK, NULL);
    ck_assert_str_eq(role, "admin");
    ck_assert_str_eq(name, "jan@example.nl");
    /* a string role claim, the audience in an array, no agent claim: sub names the principal */
    expect("RS256", "rsa1", rsa,
           "{\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"],\"exp\":1790000600,\"roles\":\"ACDM.Supervisor\",\"sub\":\"s-1\"}",
           ACDM_JWT_OK, NULL);
    ck_assert_str_eq(role, "supervisor");
    ck_assert_str_eq(name, "s-1");
    /* several roles: the most privileged mapped one wins; unmapped values are ignored */
    expect("RS256", "rsa1", rsa, CLAIMS(",\"roles\":[\"Other\",\"ACDM.Agent\",\"ACDM.Supervisor\"],\"preferred_username\":\"x\""),
           ACDM_JWT_OK, NULL);
    ck_assert_str_eq(role, "supervisor");
}
END_TEST

START_TEST(es256_agent_accepted)
{
    expect("ES256", "ec1", ec, CLAIMS(",\"roles\":[\"ACDM.Agent\"],\"preferred_username\":\"anna\""), ACDM_JWT_OK, NULL);
    ck_assert_str_eq(role, "agent");
    ck_assert_str_eq(name, "anna");
    /* expired 30 s ago and nbf 30 s ahead: inside the default leeway of 60 s */
    expect("ES256", "ec1", ec, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1789999970,\"nbf\":1790000030,"
           "\"roles\":[\"ACDM.Agent\"],\"preferred_username\":\"anna\"}", ACDM_JWT_OK, NULL);
    /* the session may last until exp + leeway: refused from that second on */
    ck_assert_int_eq(until, 1789999970 + 60);
    expect("ES256", "ec1", ec, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1790000600.5,"
           "\"roles\":[\"ACDM.Agent\"],\"preferred_username\":\"anna\"}", ACDM_JWT_OK, NULL);
    ck_assert_int_eq(until, 1790000661);   /* rounded up: 1790000660 is still before exp + leeway */
}
END_TEST

/* ------------------------------------------------------------------ refused */

START_TEST(time_claims_refused)
{
    const char *who = ",\"roles\":[\"ACDM.Admin\"],\"preferred_username\":\"jan\"";
    char c[512];
    snprintf(c, sizeof c, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1789999900%s}", who);
    expect("RS256", "rsa1", rsa, c, ACDM_JWT_EXPIRED, "expired 100 s ago (leeway 60 s)");
    snprintf(c, sizeof c, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1790000600,\"nbf\":1790000100%s}", who);
    expect("RS256", "rsa1", rsa, c, ACDM_JWT_NOT_YET_VALID, "not valid for another 100 s");
    snprintf(c, sizeof c, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"%s}", who);
    expect("RS256", "rsa1", rsa, c, ACDM_JWT_MALFORMED, "claim \"exp\": missing");
    snprintf(c, sizeof c, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":\"soon\"%s}", who);
    expect("RS256", "rsa1", rsa, c, ACDM_JWT_MALFORMED, "claim \"exp\"");
    /* no leeway: 30 s past exp is expired */
    cfg->oidc.leeway_s = 0;
    snprintf(c, sizeof c, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1789999970%s}", who);
    expect("RS256", "rsa1", rsa, c, ACDM_JWT_EXPIRED, "expired 30 s ago");
}
END_TEST

START_TEST(issuer_audience_refused)
{
    expect("RS256", "rsa1", rsa, "{\"iss\":\"https://evil.example/v2.0\",\"aud\":\"" AUD "\",\"exp\":1790000600,\"roles\":\"ACDM.Admin\"}",
           ACDM_JWT_ISSUER, "issuer \"https://evil.example/v2.0\" is not");
    expect("RS256", "rsa1", rsa, "{\"aud\":\"" AUD "\",\"exp\":1790000600,\"roles\":\"ACDM.Admin\"}", ACDM_JWT_ISSUER, "(none)");
    expect("RS256", "rsa1", rsa, "{\"iss\":\"" ISS "\",\"aud\":\"api://other\",\"exp\":1790000600,\"roles\":\"ACDM.Admin\"}",
           ACDM_JWT_AUDIENCE, "audience is not \"api://acdm\"");
    expect("RS256", "rsa1", rsa, "{\"iss\":\"" ISS "\",\"aud\":[\"a\",\"b\"],\"exp\":1790000600,\"roles\":\"ACDM.Admin\"}",
           ACDM_JWT_AUDIENCE, NULL);
}
END_TEST

START_TEST(signature_and_keys_refused)
{
    const char *c = CLAIMS(",\"roles\":[\"ACDM.Admin\"]");
    /* signed by a key the issuer does not have, under its kid */
    expect("RS256", "rsa1", rsa2, c, ACDM_JWT_SIGNATURE, "signature does not verify");
    expect("RS256", "nope", rsa, c, ACDM_JWT_UNKNOWN_KID, "kid \"nope\"");
    /* an RSA kid with alg ES256: no EC key of that kid */
    expect("ES256", "rsa1", ec, c, ACDM_JWT_UNKNOWN_KID, NULL);
    /* a valid token whose payload is swapped keeps its signature: refused */
    char *good = sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", c, rsa);
    char *evil = sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", CLAIMS(",\"roles\":[\"ACDM.Admin\"],\"x\":1"), rsa);
    char mixed[16384];
    const char *g1 = strchr(good, '.'), *g2 = strrchr(good, '.'), *e1 = strchr(evil, '.'), *e2 = strrchr(evil, '.');
    snprintf(mixed, sizeof mixed, "%.*s%.*s%s", (int)(g1 - good), good, (int)(e2 - e1), e1, g2);
    ck_assert_int_eq(check(mixed), ACDM_JWT_SIGNATURE);
    /* an ES256 signature of the wrong length */
    char *es = sign("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", c, rsa);
    ck_assert_int_eq(check(es), ACDM_JWT_SIGNATURE);
    free(good); free(evil); free(es);
    /* no key set loaded */
    char tok_role[32];
    ck_assert_int_eq(acdm_jwt_verify(&cfg->oidc, NULL, "a.b.c", NOW, NULL, NULL, tok_role, sizeof tok_role,
                                     name, sizeof name, NULL, why, sizeof why), ACDM_JWT_NO_KEYS);
}
END_TEST

START_TEST(alg_refused)
{
    const char *c = CLAIMS(",\"roles\":[\"ACDM.Admin\"]");
    char *t = sign("{\"alg\":\"none\",\"typ\":\"JWT\"}", c, NULL);
    ck_assert_int_eq(check(t), ACDM_JWT_ALG);
    ck_assert_ptr_nonnull(strstr(why, "alg \"none\""));
    free(t);
    t = sign("{\"alg\":\"HS256\",\"kid\":\"hmac\"}", c, rsa);
    ck_assert_int_eq(check(t), ACDM_JWT_ALG);
    ck_assert_ptr_nonnull(strstr(why, "alg \"HS256\" not accepted"));
    free(t);
    t = sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"exp\"]}", c, rsa);
    ck_assert_int_eq(check(t), ACDM_JWT_ALG);
    free(t);
    t = sign("{\"kid\":\"rsa1\"}", c, rsa);
    ck_assert_int_eq(check(t), ACDM_JWT_MALFORMED);
    ck_assert_ptr_nonnull(strstr(why, "no \"alg\""));
    free(t);
}
END_TEST

START_TEST(malformed_refused)
{
    ck_assert_int_eq(check("abc"), ACDM_JWT_MALFORMED);
    ck_assert_int_eq(check("a.b"), ACDM_JWT_MALFORMED);
    ck_assert_int_eq(check("a.b.c.d"), ACDM_JWT_MALFORMED);
    ck_assert_int_eq(check("..."), ACDM_JWT_MALFORMED);
    ck_assert(!acdm_jwt_shaped("a..c"));
    ck_assert(acdm_jwt_shaped("a.b.c"));
    ck_assert(acdm_jwt_shaped("a.b."));    /* alg none: refused for its alg, not its shape */
    /* bad base64url: '+', '=' padding, a lone trailing character */
    ck_assert_int_eq(check("eyJhbGciOiJSUzI1NiJ9+.e30.c2ln"), ACDM_JWT_MALFORMED);
    ck_assert_ptr_nonnull(strstr(why, "header: not base64url"));
    ck_assert_int_eq(check("eyJhbGciOiJSUzI1NiJ9=.e30.c2ln"), ACDM_JWT_MALFORMED);
    ck_assert_int_eq(check("eyJhbGciOiJSUzI1NiJ9A.e30.c2ln"), ACDM_JWT_MALFORMED);
    /* header base64 of bad JSON and of a JSON array */
    char h[64], tok[256];
    b64url_str("{\"alg\":\"RS256\"", h);
    snprintf(tok, sizeof tok, "%s.e30.c2ln", h);
    ck_assert_int_eq(check(tok), ACDM_JWT_MALFORMED);
    b64url_str("[1]", h);
    snprintf(tok, sizeof tok, "%s.e30.c2ln", h);
    ck_assert_int_eq(check(tok), ACDM_JWT_MALFORMED);
    /* a valid signature over a payload that is not JSON */
    char *t = sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", "not json", rsa);
    ck_assert_int_eq(check(t), ACDM_JWT_MALFORMED);
    ck_assert_ptr_nonnull(strstr(why, "payload"));
    free(t);
    /* signature part not base64url */
    t = sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", CLAIMS(""), rsa);
    t[strlen(t) - 2] = '*';
    ck_assert_int_eq(check(t), ACDM_JWT_MALFORMED);
    free(t);
    /* too long */
    char *big = malloc(20000);
    memset(big, 'a', 19999);
    big[19999] = 0;
    big[10] = big[20] = '.';
    ck_assert_int_eq(check(big), ACDM_JWT_MALFORMED);
    free(big);
}
END_TEST

START_TEST(role_and_agent_refused)
{
    expect("RS256", "rsa1", rsa, CLAIMS(",\"roles\":[\"Guest\"]"), ACDM_JWT_ROLE, "claim \"roles\": no value maps");
    expect("RS256", "rsa1", rsa, CLAIMS(""), ACDM_JWT_ROLE, NULL);
    expect("RS256", "rsa1", rsa, CLAIMS(",\"roles\":[\"ACDM.Agent\"]"), ACDM_JWT_AGENT, "no \"preferred_username\" claim");
    expect("ES256", "ec1", ec, CLAIMS(",\"roles\":[\"ACDM.Agent\"],\"preferred_username\":\"bob\""), ACDM_JWT_AGENT,
           "no agent \"bob\" in the configuration");
}
END_TEST

/* ------------------------------------------------------------------ JWKS */

START_TEST(jwks_errors)
{
    acdm_jwks *k = NULL;
    char err[512];
    ck_assert_int_eq(acdm_jwks_parse("nope", 4, &k, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not JSON"));
    ck_assert_int_eq(acdm_jwks_parse("{}", 2, &k, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "\"keys\" array"));
    ck_assert_int_eq(acdm_jwks_parse("{\"keys\":[]}", 11, &k, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "no usable signing key"));
    const char *t = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"!!\",\"e\":\"AQAB\"}]}";
    ck_assert_int_eq(acdm_jwks_parse(t, strlen(t), &k, err, sizeof err), ACDM_EINVAL);
    ck_assert_str_eq(err, "keys[0].n: not base64url");
    t = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"e\":\"AQAB\"}]}";
    ck_assert_int_eq(acdm_jwks_parse(t, strlen(t), &k, err, sizeof err), ACDM_EINVAL);
    ck_assert_str_eq(err, "keys[0].n: missing (a base64url string)");
    t = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}";
    ck_assert_int_eq(acdm_jwks_parse(t, strlen(t), &k, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "at least 2048 needed"));
    t = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"a\",\"x\":\"AQAB\",\"y\":\"AQAB\"}]}";
    ck_assert_int_eq(acdm_jwks_parse(t, strlen(t), &k, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "32 bytes"));
    /* 32 bytes each but not a point on the curve */
    t = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"a\",\"x\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\","
        "\"y\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\"}]}";
    ck_assert_int_eq(acdm_jwks_parse(t, strlen(t), &k, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a point on P-256"));
    ck_assert_ptr_null(k);
}
END_TEST

/* ------------------------------------------------------------------ acdm_auth */

START_TEST(auth_state_file)
{
    char path[] = "/tmp/acdm-jwks-XXXXXX", err[1024];
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, jwks, strlen(jwks)), (ssize_t)strlen(jwks));
    close(fd);
    acdm_auth *a = acdm_auth_create(NULL);
    acdm_oidc_def def = cfg->oidc;
    def.jwks_file = (char *)"/nonexistent/jwks.json";
    acdm_oidc_state *st = NULL;
    ck_assert_int_eq(acdm_auth_prepare(a, &def, &st, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "oidc.jwks_file: cannot read /nonexistent/jwks.json"));
    def.jwks_file = path;
    ck_assert_msg(acdm_auth_prepare(a, &def, &st, err, sizeof err) == 0, "%s", err);
    acdm_auth_commit(a, st);
    /* a token valid now */
    char claims[512];
    long long now = (long long)(acdm_now_ms() / 1000);
    snprintf(claims, sizeof claims, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%lld,\"roles\":\"ACDM.Agent\",\"preferred_username\":\"anna\"}", now + 300);
    char *t = sign("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", claims, ec);
    ck_assert_int_eq(acdm_auth_jwt(a, t, agent_exists, NULL, role, sizeof role, name, sizeof name, NULL), 0);
    ck_assert_str_eq(role, "agent");
    ck_assert_str_eq(name, "anna");
    /* OIDC switched off by a reload: the same token is refused */
    acdm_oidc_def off = {0};
    ck_assert_int_eq(acdm_auth_prepare(a, &off, &st, err, sizeof err), 0);
    acdm_auth_commit(a, st);
    ck_assert_int_eq(acdm_auth_jwt(a, t, agent_exists, NULL, role, sizeof role, name, sizeof name, NULL), ACDM_ENOENT);
    free(t);
    acdm_auth_destroy(a);
    unlink(path);
}
END_TEST

START_TEST(failed_sign_ins_limited)
{
    acdm_auth *a = acdm_auth_create(NULL);
    int retry = 0;
    int64_t t0 = 1000000;
    for (int i = 0; i < 10; i++) acdm_auth_failed(a, "10.0.0.1", t0 + i * 1000);
    ck_assert(!acdm_auth_blocked(a, "10.0.0.1", t0 + 10000, &retry));   /* 10: still allowed */
    acdm_auth_failed(a, "10.0.0.1", t0 + 10000);
    ck_assert(acdm_auth_blocked(a, "10.0.0.1", t0 + 10000, &retry));    /* the 11th within 60 s */
    ck_assert_int_eq(retry, 50);             /* the first failure leaves the window at t0 + 60 s */
    ck_assert(!acdm_auth_blocked(a, "10.0.0.2", t0 + 10000, &retry));   /* per address */
    ck_assert(acdm_auth_blocked(a, "10.0.0.1", t0 + 59999, &retry));
    ck_assert_int_eq(retry, 1);
    ck_assert(!acdm_auth_blocked(a, "10.0.0.1", t0 + 60000, &retry));
    /* slow guessing (one every 7 s) never reaches 11 within a minute */
    for (int i = 0; i < 40; i++) {
        acdm_auth_failed(a, "10.0.0.3", t0 + i * 7000);
        ck_assert(!acdm_auth_blocked(a, "10.0.0.3", t0 + i * 7000, &retry));
    }
    acdm_auth_destroy(a);
}
END_TEST

static Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("jwt");
    tcase_set_timeout(tc, 30);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_checked_fixture(tc, load, unload);
    tcase_add_test(tc, rs256_admin_accepted);
    tcase_add_test(tc, es256_agent_accepted);
    tcase_add_test(tc, time_claims_refused);
    tcase_add_test(tc, issuer_audience_refused);
    tcase_add_test(tc, signature_and_keys_refused);
    tcase_add_test(tc, alg_refused);
    tcase_add_test(tc, malformed_refused);
    tcase_add_test(tc, role_and_agent_refused);
    tcase_add_test(tc, jwks_errors);
    tcase_add_test(tc, auth_state_file);
    tcase_add_test(tc, failed_sign_ins_limited);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(auth_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
