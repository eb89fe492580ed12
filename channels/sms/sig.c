/* sig.c -- webhook signatures and digests on libcrypto (see sig.h). */
#include "sig.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <acdm/plugin_util.h>

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int sig_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, md, &mdlen) || mdlen != 32) return -1;
    to_hex(md, 32, out);
    return 0;
}

int sig_hmac_sha1_b64(const void *key, size_t keylen, const void *data, size_t len, char out[29])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!HMAC(EVP_sha1(), key, (int)keylen, data, len, md, &mdlen) || mdlen != 20) return -1;
    return EVP_EncodeBlock((unsigned char *)out, md, 20) == 28 ? 0 : -1;
}

int sig_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) return -1;
    to_hex(md, 32, out);
    return 0;
}

long sig_base64(const void *data, size_t len, char *out, size_t cap)
{
    if (cap < (len + 2) / 3 * 4 + 1) return -1;
    return EVP_EncodeBlock((unsigned char *)out, data, (int)len);
}

int sig_meta_ok(const char *header, const char *secret, const void *body, size_t len)
{
    char want[65], given[65];
    if (!header || !secret || !*secret || strncasecmp(header, "sha256=", 7)) return 0;
    const char *h = header + 7;
    size_t hl = strlen(h);
    if (hl != 64) return 0;
    for (size_t i = 0; i < 64; i++) {              /* hex in either case */
        char c = h[i];
        if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
        given[i] = c;
    }
    given[64] = '\0';
    if (sig_hmac_sha256_hex(secret, strlen(secret), body ? body : "", len, want) < 0) return 0;
    return acdm_ct_equal(want, 64, given, 64);
}

typedef struct { const char *n, *v; } kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->n, y->n);
    return c ? c : strcmp(x->v, y->v);
}

int sig_twilio_sign(const char *auth_token, const char *url, const char *const *names,
                    const char *const *values, size_t n, char out[29])
{
    if (!auth_token || !url) return -1;
    kv *p = n ? malloc(n * sizeof *p) : NULL;
    if (n && !p) return -1;
    size_t total = strlen(url) + 1;
    for (size_t i = 0; i < n; i++) {
        p[i].n = names[i] ? names[i] : "";
        p[i].v = values[i] ? values[i] : "";
        total += strlen(p[i].n) + strlen(p[i].v);
    }
    if (n) qsort(p, n, sizeof *p, kv_cmp);
    char *s = malloc(total);
    if (!s) { free(p); return -1; }
    size_t o = strlen(url);
    memcpy(s, url, o);
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(p[i].n), b = strlen(p[i].v);
        memcpy(s + o, p[i].n, a); o += a;
        memcpy(s + o, p[i].v, b); o += b;
    }
    int rc = sig_hmac_sha1_b64(auth_token, strlen(auth_token), s, o, out);
    free(s);
    free(p);
    return rc;
}

int sig_twilio_ok(const char *header, const char *auth_token, const char *url,
                  const char *const *names, const char *const *values, size_t n)
{
    char want[29];
    if (!header || !auth_token || !*auth_token) return 0;
    if (sig_twilio_sign(auth_token, url, names, values, n, want) < 0) return 0;
    return acdm_ct_equal(want, strlen(want), header, strlen(header));
}
