/* auth.c -- OpenID Connect sign-in: JWKS parsing, RS256/ES256 JWT checks (OpenSSL 3), the live
 * key set (jwks_file or jwks_url through the outbound client), and the failed-sign-in limiter. */
#include "auth/auth.h"
#include "base/hmap.h"
#include "base/log.h"

#include "net/outbound.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO "auth"
#define JWT_MAX 16384            /* longest token looked at */
#define JWKS_MAX (1024 * 1024)   /* largest key set accepted */
#define KID_MAX 256
#define REFRESH_S 3600           /* jwks_url: hourly */
#define RETRY_S 60               /* jwks_url: after a failure, and the least gap between fetches */
#define FETCH_TIMEOUT_S 5
#define PEERS_MAX 20000          /* failure records kept (old ones are swept first) */

/* ------------------------------------------------------------------ base64url */

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Decodes unpadded base64url (RFC 7515 §2). Returns a malloc'd buffer (NUL-terminated) and its
 * length in *outlen, or NULL if the text is not base64url. */
static unsigned char *b64url_decode(const char *in, size_t len, size_t *outlen)
{
    if (len % 4 == 1) return NULL;
    unsigned char *out = malloc(len / 4 * 3 + 3 + 1);
    if (!out) return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0) { free(out); return NULL; }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* the leftover bits of the last character must be zero (one encoding per value) */
    if (bits && (acc & ((1u << bits) - 1))) { free(out); return NULL; }
    out[o] = 0;
    *outlen = o;
    return out;
}

/* ------------------------------------------------------------------ JWKS */

typedef struct {
    char kid[KID_MAX + 1];
    bool has_kid;
    bool ec;                     /* EC P-256 (ES256), else RSA (RS256) */
    char alg[16];                /* the key's "alg", "" if none */
    EVP_PKEY *pkey;
} jwk;

struct acdm_jwks {
    jwk *k;
    size_t n;
};

void acdm_jwks_free(acdm_jwks *ks)
{
    if (!ks) return;
    for (size_t i = 0; i < ks->n; i++) EVP_PKEY_free(ks->k[i].pkey);
    free(ks->k);
    free(ks);
}

size_t acdm_jwks_count(const acdm_jwks *ks) { return ks ? ks->n : 0; }

/* A base64url member of a JWK, decoded; NULL with err set if absent or bad. */
static unsigned char *jwk_bytes(json_t *key, const char *name, size_t i, size_t *len, char *err, size_t errlen)
{
    const char *s = json_string_value(json_object_get(key, name));
    unsigned char *b = s ? b64url_decode(s, strlen(s), len) : NULL;
    if (!b || !*len) {
        free(b);
        snprintf(err, errlen, "keys[%zu].%s: %s", i, name, s ? "not base64url" : "missing (a base64url string)");
        return NULL;
    }
    return b;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    EVP_PKEY *pkey = NULL;
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_key(json_t *key, size_t i, char *err, size_t errlen)
{
    size_t nl = 0, el = 0;
    unsigned char *n = jwk_bytes(key, "n", i, &nl, err, errlen);
    unsigned char *e = n ? jwk_bytes(key, "e", i, &el, err, errlen) : NULL;
    EVP_PKEY *pkey = NULL;
    if (n && e) {
        BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
            pkey = from_params("RSA", bld);
        OSSL_PARAM_BLD_free(bld);
        BN_free(bn);
        BN_free(be);
        if (!pkey) snprintf(err, errlen, "keys[%zu]: not a valid RSA public key", i);
        else if (EVP_PKEY_get_bits(pkey) < 2048) {
            snprintf(err, errlen, "keys[%zu]: RSA key of %d bits (at least 2048 needed)", i, EVP_PKEY_get_bits(pkey));
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    free(n);
    free(e);
    return pkey;
}

static EVP_PKEY *ec_key(json_t *key, size_t i, char *err, size_t errlen)
{
    size_t xl = 0, yl = 0;
    unsigned char *x = jwk_bytes(key, "x", i, &xl, err, errlen);
    unsigned char *y = x ? jwk_bytes(key, "y", i, &yl, err, errlen) : NULL;
    EVP_PKEY *pkey = NULL;
    if (x && y) {
        if (xl != 32 || yl != 32) {
            snprintf(err, errlen, "keys[%zu]: P-256 coordinates must be 32 bytes (x %zu, y %zu)", i, xl, yl);
        } else {
            unsigned char pub[65];
            pub[0] = 0x04;
            memcpy(pub + 1, x, 32);
            memcpy(pub + 33, y, 32);
            OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
            if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
                OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub))
                pkey = from_params("EC", bld);
            OSSL_PARAM_BLD_free(bld);
            if (!pkey) snprintf(err, errlen, "keys[%zu]: not a point on P-256", i);
        }
    }
    free(x);
    free(y);
    return pkey;
}

int acdm_jwks_parse(const char *text, size_t len, acdm_jwks **out, char *err, size_t errlen)
{
    *out = NULL;
    if (len > JWKS_MAX) { snprintf(err, errlen, "key set larger than %d bytes", JWKS_MAX); return ACDM_EINVAL; }
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root) { snprintf(err, errlen, "not JSON: %s at line %d column %d", je.text, je.line, je.column); return ACDM_EINVAL; }
    json_t *keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        snprintf(err, errlen, "expected an object with a \"keys\" array (a JWK Set)");
        json_decref(root);
        return ACDM_EINVAL;
    }
    acdm_jwks *ks = calloc(1, sizeof *ks);
    if (ks) ks->k = calloc(json_array_size(keys) + 1, sizeof *ks->k);
    if (!ks || !ks->k) {
        if (ks) free(ks->k);
        free(ks);
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return ACDM_ENOMEM;
    }
    int rc = 0;
    size_t i;
    json_t *key;
    json_array_foreach(keys, i, key) {
        const char *kty = json_string_value(json_object_get(key, "kty"));
        const char *use = json_string_value(json_object_get(key, "use"));
        const char *kid = json_string_value(json_object_get(key, "kid"));
        const char *alg = json_string_value(json_object_get(key, "alg"));
        const char *crv = json_string_value(json_object_get(key, "crv"));
        if (!json_is_object(key)) { snprintf(err, errlen, "keys[%zu]: expected an object", i); rc = ACDM_EINVAL; break; }
        if (use && strcmp(use, "sig")) continue;              /* encryption keys */
        bool is_rsa = kty && !strcmp(kty, "RSA"), is_ec = kty && !strcmp(kty, "EC") && crv && !strcmp(crv, "P-256");
        if (!is_rsa && !is_ec) continue;                      /* oct, OKP, other curves */
        if (alg && strcmp(alg, is_rsa ? "RS256" : "ES256")) continue;  /* e.g. RS384: not ours */
        if (kid && strlen(kid) > KID_MAX) { snprintf(err, errlen, "keys[%zu].kid: longer than %d", i, KID_MAX); rc = ACDM_EINVAL; break; }
        EVP_PKEY *pk = is_rsa ? rsa_key(key, i, err, errlen) : ec_key(key, i, err, errlen);
        if (!pk) { rc = ACDM_EINVAL; break; }
        jwk *k = &ks->k[ks->n++];
        k->pkey = pk;
        k->ec = is_ec;
        k->has_kid = kid != NULL;
        snprintf(k->kid, sizeof k->kid, "%s", kid ? kid : "");
        snprintf(k->alg, sizeof k->alg, "%s", alg ? alg : "");
    }
    json_decref(root);
    if (!rc && !ks->n) { snprintf(err, errlen, "no usable signing key (RSA >= 2048 bits or EC P-256)"); rc = ACDM_EINVAL; }
    if (rc) { acdm_jwks_free(ks); return rc; }
    *out = ks;
    return 0;
}

/* ------------------------------------------------------------------ JWT */

static const char *const status_names[ACDM_JWT__COUNT] = {
    "ok", "malformed", "alg", "unknown_kid", "signature", "expired", "not_yet_valid",
    "issuer", "audience", "role", "agent", "no_keys"};

const char *acdm_jwt_status_name(acdm_jwt_status s)
{
    return (unsigned)s < ACDM_JWT__COUNT ? status_names[s] : "?";
}

bool acdm_jwt_shaped(const char *t)
{
    if (!t || !*t) return false;
    const char *d1 = strchr(t, '.');
    if (!d1 || d1 == t) return false;
    const char *d2 = strchr(d1 + 1, '.');
    return d2 && d2 > d1 + 1 && !strchr(d2 + 1, '.');   /* an empty signature: alg none */
}

__attribute__((format(printf, 4, 5)))
static acdm_jwt_status fail(acdm_jwt_status st, char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && whylen) vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return st;
}

static json_t *decode_json_part(const char *p, size_t len)
{
    size_t n = 0;
    unsigned char *raw = b64url_decode(p, len, &n);
    if (!raw) return NULL;
    json_t *j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (j && !json_is_object(j)) { json_decref(j); return NULL; }
    return j;
}

static bool verify_sig(const jwk *k, const unsigned char *data, size_t dlen, const unsigned char *sig, size_t slen)
{
    unsigned char *der = NULL;
    int derlen = 0;
    if (k->ec) {
        /* JWS carries R || S (32 bytes each); OpenSSL wants DER */
        if (slen != 64) return false;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
        if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return false;
        }
        derlen = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (derlen <= 0) return false;
        sig = der;
        slen = (size_t)derlen;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
              EVP_DigestVerify(md, sig, slen, data, dlen) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok;
}

static int role_rank(const char *r)
{
    return !strcmp(r, "admin") ? 3 : !strcmp(r, "supervisor") ? 2 : !strcmp(r, "agent") ? 1 : 0;
}

acdm_jwt_status acdm_jwt_verify(const acdm_oidc_def *def, const acdm_jwks *keys, const char *token,
                                int64_t now_s, bool (*agent_exists)(void *user, const char *id),
                                void *user, char *role, size_t rolelen, char *name, size_t namelen,
                                int64_t *until_s, char *why, size_t whylen)
{
    if (why && whylen) why[0] = 0;
    if (!def || !def->enabled) return fail(ACDM_JWT_NO_KEYS, why, whylen, "OpenID Connect sign-in is not configured");
    if (!keys || !keys->n) return fail(ACDM_JWT_NO_KEYS, why, whylen, "the issuer's signing keys are not loaded");
    if (!token || strlen(token) > JWT_MAX) return fail(ACDM_JWT_MALFORMED, why, whylen, "token longer than %d bytes", JWT_MAX);
    if (!acdm_jwt_shaped(token)) return fail(ACDM_JWT_MALFORMED, why, whylen, "not three dot-separated parts");
    const char *d1 = strchr(token, '.'), *d2 = strchr(d1 + 1, '.');
    json_t *hdr = decode_json_part(token, (size_t)(d1 - token));
    if (!hdr) return fail(ACDM_JWT_MALFORMED, why, whylen, "header: not base64url of a JSON object");
    json_t *claims = NULL;
    acdm_jwt_status st = ACDM_JWT_OK;
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    if (!alg) { st = fail(ACDM_JWT_MALFORMED, why, whylen, "header: no \"alg\""); goto out; }
    if (!strcmp(alg, "none") || !strcmp(alg, "None") || !strcmp(alg, "NONE")) {
        st = fail(ACDM_JWT_ALG, why, whylen, "alg \"none\" (unsigned tokens) refused");
        goto out;
    }
    bool ec = !strcmp(alg, "ES256");
    if (!ec && strcmp(alg, "RS256")) {
        st = fail(ACDM_JWT_ALG, why, whylen, "alg \"%.20s\" not accepted (RS256 or ES256)", alg);
        goto out;
    }
    if (json_object_get(hdr, "crit")) { st = fail(ACDM_JWT_ALG, why, whylen, "header: \"crit\" extensions not supported"); goto out; }
    json_t *kidv = json_object_get(hdr, "kid");
    if (kidv && !json_is_string(kidv)) { st = fail(ACDM_JWT_MALFORMED, why, whylen, "header: \"kid\" is not a string"); goto out; }
    const char *kid = json_string_value(kidv);
    const jwk *k = NULL;
    size_t same_type = 0;
    for (size_t i = 0; i < keys->n; i++) {
        if (keys->k[i].ec != ec) continue;
        same_type++;
        if (kid ? keys->k[i].has_kid && !strcmp(keys->k[i].kid, kid) : !k) k = &keys->k[i];
    }
    if (!kid && same_type > 1) k = NULL;   /* ambiguous without a kid */
    if (!k) {
        st = fail(ACDM_JWT_UNKNOWN_KID, why, whylen, "no %s key with kid \"%.80s\" in the key set", alg, kid ? kid : "(none)");
        goto out;
    }
    size_t slen = 0;
    unsigned char *sig = b64url_decode(d2 + 1, strlen(d2 + 1), &slen);
    if (!sig) { st = fail(ACDM_JWT_MALFORMED, why, whylen, "signature: not base64url"); goto out; }
    bool ok = verify_sig(k, (const unsigned char *)token, (size_t)(d2 - token), sig, slen);
    free(sig);
    if (!ok) { st = fail(ACDM_JWT_SIGNATURE, why, whylen, "signature does not verify with key \"%.80s\"", k->kid); goto out; }

    /* signed by the issuer: now the claims */
    claims = decode_json_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!claims) { st = fail(ACDM_JWT_MALFORMED, why, whylen, "payload: not base64url of a JSON object"); goto out; }
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    if (!json_is_number(exp)) { st = fail(ACDM_JWT_MALFORMED, why, whylen, "claim \"exp\": missing or not a number"); goto out; }
    if (nbf && !json_is_number(nbf)) { st = fail(ACDM_JWT_MALFORMED, why, whylen, "claim \"nbf\": not a number"); goto out; }
    double lee = def->leeway_s;
    if ((double)now_s >= json_number_value(exp) + lee) {
        st = fail(ACDM_JWT_EXPIRED, why, whylen, "expired %.0f s ago (leeway %d s)", (double)now_s - json_number_value(exp), def->leeway_s);
        goto out;
    }
    if (nbf && (double)now_s + lee < json_number_value(nbf)) {
        st = fail(ACDM_JWT_NOT_YET_VALID, why, whylen, "not valid for another %.0f s (leeway %d s)", json_number_value(nbf) - (double)now_s, def->leeway_s);
        goto out;
    }
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (!iss || strcmp(iss, def->issuer)) {
        st = fail(ACDM_JWT_ISSUER, why, whylen, "issuer \"%.120s\" is not \"%.120s\"", iss ? iss : "(none)", def->issuer);
        goto out;
    }
    json_t *aud = json_object_get(claims, "aud");
    bool aud_ok = json_is_string(aud) && !strcmp(json_string_value(aud), def->audience);
    size_t ai;
    json_t *av;
    if (json_is_array(aud))
        json_array_foreach(aud, ai, av)
            if (json_is_string(av) && !strcmp(json_string_value(av), def->audience)) aud_ok = true;
    if (!aud_ok) {
        st = fail(ACDM_JWT_AUDIENCE, why, whylen, "audience is not \"%.120s\"", def->audience);
        goto out;
    }
    /* role: the most privileged mapped value of the role claim (a string or an array) */
    json_t *rc = json_object_get(claims, def->role_claim);
    const char *best = NULL;
    json_t *one[1] = {rc};
    size_t nvals = json_is_array(rc) ? json_array_size(rc) : 1;
    for (size_t i = 0; i < nvals && i < 256; i++) {
        json_t *v = json_is_array(rc) ? json_array_get(rc, i) : one[0];
        const char *mapped = json_is_string(v) ? json_string_value(json_object_get(def->role_map, json_string_value(v))) : NULL;
        if (mapped && (!best || role_rank(mapped) > role_rank(best))) best = mapped;
    }
    if (!best) {
        st = fail(ACDM_JWT_ROLE, why, whylen, "claim \"%.60s\": no value maps to a role (see oidc.role_map)", def->role_claim);
        goto out;
    }
    const char *who = json_string_value(json_object_get(claims, def->agent_claim));
    if (!strcmp(best, "agent")) {
        if (!who) { st = fail(ACDM_JWT_AGENT, why, whylen, "role agent but no \"%.60s\" claim", def->agent_claim); goto out; }
        if (strlen(who) > ACDM_NAME_MAX || (agent_exists && !agent_exists(user, who))) {
            st = fail(ACDM_JWT_AGENT, why, whylen, "claim \"%.60s\": no agent \"%.80s\" in the configuration", def->agent_claim, who);
            goto out;
        }
    }
    if (!who) who = json_string_value(json_object_get(claims, "sub"));
    if (!who) who = "oidc";
    snprintf(role, rolelen, "%s", best);
    snprintf(name, namelen < ACDM_NAME_MAX + 1 ? namelen : ACDM_NAME_MAX + 1, "%s", who);
    if (until_s) {
        /* refused above from now_s >= exp + leeway on: the smallest such second */
        double u = ceil(json_number_value(exp) + lee);
        *until_s = u > 9e15 ? (int64_t)9e15 : u < 0 ? 0 : (int64_t)u;
    }
out:
    json_decref(hdr);
    json_decref(claims);
    return st;
}

/* ------------------------------------------------------------------ the daemon's state */

struct acdm_oidc_state {
    acdm_oidc_def def;           /* deep copy */
    acdm_jwks *keys;             /* from jwks_file, or carried over for the same jwks_url */
};

typedef struct fetch fetch;

typedef struct {
    char peer[64];
    int64_t t[ACDM_AUTH_MAX_FAILS + 1];   /* ring of the latest failure times */
    int n, head;
} peer_rec;

struct acdm_auth {
    uv_loop_t *loop;
    acdm_oidc_state *cur;
    uv_timer_t timer;            /* jwks_url refresh */
    bool timer_on;
    fetch *inflight;
    int64_t last_fetch_ms;       /* start of the latest fetch */
    int64_t last_kid_fetch_ms;   /* the latest refresh for an unknown kid (one per RETRY_S) */
    acdm_hmap peers;
};

static void state_free(acdm_oidc_state *st)
{
    if (!st) return;
    free(st->def.issuer); free(st->def.audience); free(st->def.jwks_file); free(st->def.jwks_url);
    free(st->def.role_claim); free(st->def.agent_claim);
    json_decref(st->def.role_map);
    acdm_jwks_free(st->keys);
    free(st);
}

void acdm_auth_discard(acdm_oidc_state *st) { state_free(st); }

acdm_auth *acdm_auth_create(uv_loop_t *loop)
{
    acdm_auth *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->loop = loop;
    acdm_hmap_init(&a->peers);
    if (loop) {
        uv_timer_init(loop, &a->timer);
        a->timer.data = a;
        a->timer_on = true;
        uv_unref((uv_handle_t *)&a->timer);
    }
    return a;
}

static void free_auth(acdm_auth *a)
{
    state_free(a->cur);
    const char *k;
    void *v;
    for (uint32_t pos = 0; acdm_hmap_next(&a->peers, &pos, &k, &v);) free(v);
    acdm_hmap_free(&a->peers);
    free(a);
}

static void timer_closed(uv_handle_t *h) { free_auth(h->data); }

/* ---- jwks_url fetching (the outbound client's blocking GET, on a worker thread) */

struct fetch {
    uv_work_t work;
    acdm_auth *a;                /* NULL once the auth is gone */
    char *url;
    char *body;
    size_t len;
    char err[256];
    long status;
};

static void fetch_run(uv_work_t *w)
{
    fetch *f = w->data;
    char *body = NULL;
    size_t len = 0;
    if (acdm_out_get_sync(f->url, (long)FETCH_TIMEOUT_S * 1000, JWKS_MAX, &body, &len, &f->status,
                          f->err, sizeof f->err))
        return;
    f->body = body;
    f->len = len;
    if (f->status != 200) snprintf(f->err, sizeof f->err, "HTTP status %ld", f->status);
}

static void fetch_free(fetch *f)
{
    free(f->url);
    free(f->body);
    free(f);
}

static void on_timer(uv_timer_t *t);

static void arm(acdm_auth *a, int seconds)
{
    if (a->timer_on) uv_timer_start(&a->timer, on_timer, (uint64_t)seconds * 1000, 0);
}

/* Installs a fetched key set if it still belongs to the current URL. */
static void fetch_apply(acdm_auth *a, fetch *f)
{
    acdm_oidc_state *cur = a->cur;
    if (!cur || !cur->def.jwks_url || strcmp(cur->def.jwks_url, f->url)) return;
    acdm_jwks *ks = NULL;
    char err[512] = "";
    if (!f->err[0] && !acdm_jwks_parse(f->body ? f->body : "", f->len, &ks, err, sizeof err)) {
        acdm_jwks_free(cur->keys);
        cur->keys = ks;
        acdm_log(ACDM_LOG_INFO, WHO, "oidc: %zu signing keys loaded from %s", acdm_jwks_count(ks), f->url);
        arm(a, REFRESH_S);
    } else {
        acdm_log(ACDM_LOG_ERR, WHO, "oidc: cannot load the keys from %s: %s%s (keeping %zu keys; retry in %d s)",
                 f->url, f->err[0] ? f->err : "invalid key set: ", f->err[0] ? "" : err,
                 acdm_jwks_count(cur->keys), RETRY_S);
        arm(a, RETRY_S);
    }
}

static void fetch_done(uv_work_t *w, int status)
{
    fetch *f = w->data;
    (void)status;
    if (f->a) {
        f->a->inflight = NULL;
        fetch_apply(f->a, f);
    }
    fetch_free(f);
}

static void fetch_start(acdm_auth *a, bool sync)
{
    if (!a->cur || !a->cur->def.jwks_url || a->inflight) return;
    fetch *f = calloc(1, sizeof *f);
    if (!f || !(f->url = strdup(a->cur->def.jwks_url))) { free(f); return; }
    f->a = a;
    f->work.data = f;
    a->last_fetch_ms = acdm_now_ms();
    if (sync || !a->loop) {
        fetch_run(&f->work);
        fetch_apply(a, f);
        fetch_free(f);
        return;
    }
    a->inflight = f;
    if (uv_queue_work(a->loop, &f->work, fetch_run, fetch_done)) {
        a->inflight = NULL;
        fetch_free(f);
    }
}

static void on_timer(uv_timer_t *t) { fetch_start(t->data, false); }

void acdm_auth_destroy(acdm_auth *a)
{
    if (!a) return;
    if (a->inflight) a->inflight->a = NULL;
    if (a->timer_on) {
        uv_timer_stop(&a->timer);
        uv_close((uv_handle_t *)&a->timer, timer_closed);
        return;
    }
    free_auth(a);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int acdm_auth_prepare(acdm_auth *a, const acdm_oidc_def *def, acdm_oidc_state **out, char *err, size_t errlen)
{
    *out = NULL;
    acdm_oidc_state *st = calloc(1, sizeof *st);
    if (!st) return ACDM_ENOMEM;
    if (!def || !def->enabled) { *out = st; return 0; }
    st->def.enabled = true;
    st->def.issuer = dup_or_null(def->issuer);
    st->def.audience = dup_or_null(def->audience);
    st->def.jwks_file = dup_or_null(def->jwks_file);
    st->def.jwks_url = dup_or_null(def->jwks_url);
    st->def.role_claim = dup_or_null(def->role_claim ? def->role_claim : "roles");
    st->def.agent_claim = dup_or_null(def->agent_claim ? def->agent_claim : "preferred_username");
    st->def.role_map = def->role_map ? json_deep_copy(def->role_map) : json_object();
    st->def.leeway_s = def->leeway_s;
    if (!st->def.issuer || !st->def.audience || !st->def.role_claim || !st->def.agent_claim || !st->def.role_map) {
        state_free(st);
        snprintf(err, errlen, "oidc: out of memory");
        return ACDM_ENOMEM;
    }
    if (st->def.jwks_file) {
        FILE *f = fopen(st->def.jwks_file, "rb");
        char *buf = malloc(JWKS_MAX + 1);
        size_t n = f && buf ? fread(buf, 1, JWKS_MAX + 1, f) : 0;
        char perr[512];
        int rc = 0;
        if (!f) { snprintf(err, errlen, "oidc.jwks_file: cannot read %s: %s", st->def.jwks_file, strerror(errno)); rc = ACDM_EINVAL; }
        else if (!buf) { snprintf(err, errlen, "oidc: out of memory"); rc = ACDM_ENOMEM; }
        else if (acdm_jwks_parse(buf, n, &st->keys, perr, sizeof perr)) {
            snprintf(err, errlen, "oidc.jwks_file: %s: %s", st->def.jwks_file, perr);
            rc = ACDM_EINVAL;
        }
        if (f) fclose(f);
        free(buf);
        if (rc) { state_free(st); return rc; }
    }
    (void)a;   /* for the same jwks_url, commit carries the fetched keys over */
    *out = st;
    return 0;
}

void acdm_auth_commit(acdm_auth *a, acdm_oidc_state *st)
{
    if (!a || !st) { state_free(st); return; }
    bool same_url = st->def.jwks_url && a->cur && a->cur->def.jwks_url && !strcmp(a->cur->def.jwks_url, st->def.jwks_url);
    if (same_url && !st->keys) { st->keys = a->cur->keys; a->cur->keys = NULL; }
    state_free(a->cur);
    a->cur = st;
    if (a->timer_on) uv_timer_stop(&a->timer);
    if (!st->def.enabled) return;
    acdm_log(ACDM_LOG_NOTICE, WHO, "oidc: sign-in with JWTs of %s for audience %s (keys from %s)",
             st->def.issuer, st->def.audience, st->def.jwks_file ? st->def.jwks_file : st->def.jwks_url);
    if (!st->def.jwks_url) return;
    if (!same_url || !st->keys) fetch_start(a, true);   /* a new URL: fetched before serving */
    else arm(a, REFRESH_S);
}

int acdm_auth_jwt(acdm_auth *a, const char *token, bool (*agent_exists)(void *user, const char *id),
                  void *user, char *role, size_t rolelen, char *name, size_t namelen, int64_t *until_s)
{
    if (!a || !a->cur) return ACDM_ENOENT;
    char why[512];
    acdm_jwt_status st = acdm_jwt_verify(&a->cur->def, a->cur->keys, token, acdm_now_ms() / 1000,
                                         agent_exists, user, role, rolelen, name, namelen, until_s,
                                         why, sizeof why);
    if (st == ACDM_JWT_OK) return 0;
    for (char *p = why; *p; p++)   /* claims are the client's text: one log line, whatever they hold */
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    if (st == ACDM_JWT_UNKNOWN_KID && a->cur->def.jwks_url && !a->inflight &&
        (!a->last_kid_fetch_ms || acdm_now_ms() - a->last_kid_fetch_ms >= RETRY_S * 1000)) {
        /* a new key of the issuer (rotation): one refresh, at most once a minute */
        acdm_log(ACDM_LOG_NOTICE, WHO, "oidc: %s; refreshing the keys from %s", why, a->cur->def.jwks_url);
        a->last_kid_fetch_ms = acdm_now_ms();
        fetch_start(a, false);
    }
    acdm_log(ACDM_LOG_NOTICE, WHO, "oidc: token refused (%s): %s", acdm_jwt_status_name(st), why);
    return ACDM_ENOENT;
}

/* ------------------------------------------------------------------ failed sign-ins */

static int fails_in_window(const peer_rec *p, int64_t now_ms, int64_t *oldest)
{
    int n = 0;
    *oldest = INT64_MAX;
    for (int i = 0; i < p->n; i++) {
        int64_t t = p->t[i];
        if (now_ms - t < ACDM_AUTH_WINDOW_S * 1000) {
            n++;
            if (t < *oldest) *oldest = t;
        }
    }
    return n;
}

bool acdm_auth_watching(const acdm_auth *a) { return a && a->peers.n > 0; }

bool acdm_auth_blocked(acdm_auth *a, const char *peer, int64_t now_ms, int *retry_after_s)
{
    if (!a || !peer) return false;
    peer_rec *p = acdm_hmap_get(&a->peers, peer);
    if (!p) return false;
    int64_t oldest;
    if (fails_in_window(p, now_ms, &oldest) <= ACDM_AUTH_MAX_FAILS) return false;
    /* the ring holds the latest MAX+1 failures: room again when the oldest leaves the window */
    int64_t wait = oldest + ACDM_AUTH_WINDOW_S * 1000 - now_ms;
    if (retry_after_s) *retry_after_s = (int)((wait + 999) / 1000) > 0 ? (int)((wait + 999) / 1000) : 1;
    return true;
}

static void sweep(acdm_auth *a, int64_t now_ms)
{
    const char *k;
    void *v;
    char (*gone)[64] = malloc(sizeof *gone * 256);
    if (!gone) return;
    for (;;) {
        size_t n = 0;
        int64_t oldest;
        for (uint32_t pos = 0; n < 256 && acdm_hmap_next(&a->peers, &pos, &k, &v);)
            if (!fails_in_window(v, now_ms, &oldest)) snprintf(gone[n++], 64, "%s", k);
        for (size_t i = 0; i < n; i++) free(acdm_hmap_del(&a->peers, gone[i]));
        if (n < 256) break;
    }
    free(gone);
}

void acdm_auth_failed(acdm_auth *a, const char *peer, int64_t now_ms)
{
    if (!a || !peer) return;
    peer_rec *p = acdm_hmap_get(&a->peers, peer);
    if (!p) {
        if (a->peers.n >= PEERS_MAX) sweep(a, now_ms);
        if (a->peers.n >= PEERS_MAX) return;
        if (!(p = calloc(1, sizeof *p))) return;
        snprintf(p->peer, sizeof p->peer, "%s", peer);
        if (acdm_hmap_put(&a->peers, p->peer, p)) { free(p); return; }
    }
    int cap = ACDM_AUTH_MAX_FAILS + 1;
    p->t[p->head] = now_ms;
    p->head = (p->head + 1) % cap;
    if (p->n < cap) p->n++;
    int64_t oldest;
    if (fails_in_window(p, now_ms, &oldest) == cap)
        acdm_log(ACDM_LOG_WARN, WHO, "%d failed sign-ins from %s within %d s: refused for a while",
                 cap, peer, ACDM_AUTH_WINDOW_S);
}
