/* sig.h -- the signatures providers put on their webhooks, and digests, on libcrypto (OpenSSL):
 * Meta's X-Hub-Signature-256 (hex HMAC-SHA256 of the raw body with the app secret), Twilio's
 * X-Twilio-Signature (base64 HMAC-SHA1 over the URL and the sorted POST parameters with the
 * auth token), SHA-256 of downloaded media. Shared by channels/sms and channels/whatsapp (the
 * whatsapp plugin builds this file too: see channels/whatsapp/plugin.mk). Every comparison of
 * a secret-derived value is constant-time. */
#ifndef ACDM_SIG_H
#define ACDM_SIG_H

#include <stddef.h>

/* hex (lowercase) HMAC-SHA256 of data with key into out (65 bytes with the NUL). 0 or -1. */
int sig_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len, char out[65]);
/* base64 HMAC-SHA1 of data with key into out (29 bytes with the NUL). 0 or -1. */
int sig_hmac_sha1_b64(const void *key, size_t keylen, const void *data, size_t len, char out[29]);
/* hex SHA-256 of data into out (65 bytes). 0 or -1. */
int sig_sha256_hex(const void *data, size_t len, char out[65]);

/* Standard base64 of data into out (cap bytes with the NUL): length, or -1. */
long sig_base64(const void *data, size_t len, char *out, size_t cap);

/* Meta: header is the X-Hub-Signature-256 value ("sha256=<hex>", hex in any case). 1 when it
 * is the HMAC of exactly these body bytes under secret, else 0 (missing, malformed, wrong). */
int sig_meta_ok(const char *header, const char *secret, const void *body, size_t len);

/* Twilio: the string to sign is url followed by name+value of every POST parameter sorted by
 * name (byte order), no separators. names/values are the decoded parameters (n of them).
 * 1 when header (X-Twilio-Signature) is its base64 HMAC-SHA1 under auth_token, else 0. */
int sig_twilio_ok(const char *header, const char *auth_token, const char *url,
                  const char *const *names, const char *const *values, size_t n);
/* The signature itself (what a test or a fake computes): 0, or -1. */
int sig_twilio_sign(const char *auth_token, const char *url, const char *const *names,
                    const char *const *values, size_t n, char out[29]);

#endif
