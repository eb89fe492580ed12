/* auth.h -- OpenID Connect sign-in (JWTs signed RS256/ES256 by the issuer's JWKS) and the
 * failed-sign-in limiter. The verifier (acdm_jwks_*, acdm_jwt_*) has no state of its own and
 * is usable without a daemon (tests, fuzzing); acdm_auth holds the live key set (file or URL,
 * refreshed) and the per-peer failure counts. Loop thread only. */
#ifndef ACDM_AUTH_H
#define ACDM_AUTH_H

#include <jansson.h>
#include <uv.h>

#include "base/acdm.h"
#include "config/config.h"

/* ---------------------------------------------------------------- JWKS */

typedef struct acdm_jwks acdm_jwks;

/* Parses a JWK Set ({"keys": [...]}): kty RSA (n, e; >= 2048 bits) and kty EC (crv P-256, x, y)
 * with use "sig" or no use. Other keys (kty oct, other curves, use "enc") are skipped. Returns 0
 * and *out (free with acdm_jwks_free), or ACDM_EINVAL with a sentence in err (bad JSON, no
 * "keys" array, a supported key with broken fields, or no usable key at all). */
int acdm_jwks_parse(const char *text, size_t len, acdm_jwks **out, char *err, size_t errlen);
void acdm_jwks_free(acdm_jwks *k);
size_t acdm_jwks_count(const acdm_jwks *k);

/* ---------------------------------------------------------------- JWT */

typedef enum {
    ACDM_JWT_OK = 0,
    ACDM_JWT_MALFORMED,     /* not three base64url parts, bad JSON, missing/ill-typed claims */
    ACDM_JWT_ALG,           /* alg none, or other than RS256/ES256, or key type mismatch, crit */
    ACDM_JWT_UNKNOWN_KID,   /* no key with that kid (a refresh of jwks_url may help) */
    ACDM_JWT_SIGNATURE,     /* signature does not verify */
    ACDM_JWT_EXPIRED,       /* exp + leeway <= now */
    ACDM_JWT_NOT_YET_VALID, /* nbf - leeway > now */
    ACDM_JWT_ISSUER,        /* iss differs */
    ACDM_JWT_AUDIENCE,      /* aud does not contain the audience */
    ACDM_JWT_ROLE,          /* no value of the role claim is in role_map */
    ACDM_JWT_AGENT,         /* role agent without an agent claim naming a configured agent */
    ACDM_JWT_NO_KEYS,       /* OIDC off, or the key set is not loaded (yet) */
    ACDM_JWT__COUNT
} acdm_jwt_status;

/* "ok", "malformed", "alg", "unknown_kid", "signature", "expired", ... */
const char *acdm_jwt_status_name(acdm_jwt_status s);

/* true if token has the shape of a JWT (three dot-separated parts; only the last may be empty). */
bool acdm_jwt_shaped(const char *token);

/* Checks a JWT against def and keys at now_s (seconds since the epoch). On ACDM_JWT_OK fills
 * role ("admin", "supervisor" or "agent") and name (the agent claim; for admin/supervisor the
 * agent claim, else "sub", truncated to ACDM_NAME_MAX), and *until_s (may be NULL): the first
 * second at which this token is refused as expired (exp + leeway, rounded up), so that a
 * session opened with it can end then. agent_exists (may be NULL = any) says whether an agent
 * id is configured. On failure why holds one sentence naming the reason. */
acdm_jwt_status acdm_jwt_verify(const acdm_oidc_def *def, const acdm_jwks *keys, const char *token,
                                int64_t now_s, bool (*agent_exists)(void *user, const char *id),
                                void *user, char *role, size_t rolelen, char *name, size_t namelen,
                                int64_t *until_s, char *why, size_t whylen);

/* ---------------------------------------------------------------- the daemon's state */

typedef struct acdm_auth acdm_auth;
typedef struct acdm_oidc_state acdm_oidc_state;   /* a prepared OIDC setting (see prepare) */

/* loop may be NULL (no jwks_url fetching, no timers). */
acdm_auth *acdm_auth_create(uv_loop_t *loop);
/* Stops timers (closed on the loop: run the loop afterwards), frees. An in-flight JWKS fetch
 * finishes on its worker thread and is dropped. */
void acdm_auth_destroy(acdm_auth *a);

/* Reload in two steps, all or nothing: prepare copies def and reads jwks_file (a bad file is
 * an error: ACDM_EINVAL with err); commit installs it (and fetches jwks_url: at once and
 * synchronously the first time that URL is seen, then hourly and on an unknown kid, at most
 * once a minute); discard drops a prepared state. def disabled = OIDC off. */
int acdm_auth_prepare(acdm_auth *a, const acdm_oidc_def *def, acdm_oidc_state **out, char *err,
                      size_t errlen);
void acdm_auth_commit(acdm_auth *a, acdm_oidc_state *st);
void acdm_auth_discard(acdm_oidc_state *st);

/* Checks a JWT with the installed setting (logs the reason of a refusal at notice level).
 * 0 and role, name and *until_s (as acdm_jwt_verify; until_s may be NULL), or ACDM_ENOENT. */
int acdm_auth_jwt(acdm_auth *a, const char *token, bool (*agent_exists)(void *user, const char *id),
                  void *user, char *role, size_t rolelen, char *name, size_t namelen, int64_t *until_s);

/* Failed sign-ins: more than ACDM_AUTH_MAX_FAILS failures from one peer address within
 * ACDM_AUTH_WINDOW_S seconds blocks that address until the window has room again. */
#define ACDM_AUTH_MAX_FAILS 10
#define ACDM_AUTH_WINDOW_S 60
/* true if peer is blocked now; *retry_after_s then says for how long (>= 1). */
/* True while any address has failures on record (a request then needs its peer looked up). */
bool acdm_auth_watching(const acdm_auth *a);
bool acdm_auth_blocked(acdm_auth *a, const char *peer, int64_t now_ms, int *retry_after_s);
void acdm_auth_failed(acdm_auth *a, const char *peer, int64_t now_ms);

#endif
