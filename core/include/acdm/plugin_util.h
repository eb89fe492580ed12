/* acdm/plugin_util.h -- static-inline helpers for what every channel plugin repeats: request
 * headers, the raw query string, constant-time comparison of secrets, problem+json answers and
 * the names of the host's return codes. Header only: nothing here is a symbol of acdmd, so a
 * plugin that uses it links against nothing but libc.
 */
#ifndef ACDM_PLUGIN_UTIL_H
#define ACDM_PLUGIN_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The value of request header `name` (any case), or NULL. */
static inline const char *acdm_http_header_get(const acdm_http_request *req, const char *name)
{
    if (!req || !name || req->struct_size < offsetof(acdm_http_request, n_headers) + sizeof(size_t))
        return NULL;
    for (size_t i = 0; i < req->n_headers; i++)
        if (req->headers[i].name && strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

static inline int acdm__hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes src[0..n) into out (cap bytes with its NUL); '+' becomes a space when
 * form is set (application/x-www-form-urlencoded and query strings). Returns the decoded
 * length, or -1 when it does not fit or holds a bad escape or a NUL byte. */
static inline long acdm_url_decode(const char *src, size_t n, int form, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= n) return -1;
            h = acdm__hexval((unsigned char)src[i + 1]);
            l = acdm__hexval((unsigned char)src[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = h * 16 + l;
            if (c == 0) return -1;
            i += 2;
        } else if (c == '+' && form) {
            c = ' ';
        }
        if (o + 1 >= cap) return -1;
        out[o++] = (char)c;
    }
    if (cap == 0) return -1;
    out[o] = '\0';
    return (long)o;
}

/* Finds argument `name` in a raw query string or form body (a=1&b=2, percent-encoding intact)
 * and decodes its value into out. Returns the value's length, -1 when absent, -2 when it is
 * present but does not decode or fit. The first occurrence wins. */
static inline long acdm_query_get(const char *raw, const char *name, char *out, size_t cap)
{
    size_t nl = name ? strlen(name) : 0;
    const char *p = raw;
    if (!raw || !name) return -1;
    while (*p) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;
        char key[128];
        long kl = acdm_url_decode(p, (size_t)(kend - p), 1, key, sizeof key);
        if (kl == (long)nl && memcmp(key, name, nl) == 0) {
            long vl;
            if (!eq) { if (cap) out[0] = '\0'; return cap ? 0 : -2; }
            vl = acdm_url_decode(eq + 1, (size_t)(end - eq - 1), 1, out, cap);
            return vl < 0 ? -2 : vl;
        }
        if (!amp) break;
        p = amp + 1;
    }
    return -1;
}

/* Compares two secrets in time that depends only on their lengths (never on where they
 * differ): 1 when equal. For tokens, signatures, verify tokens. */
static inline int acdm_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    const volatile unsigned char *x = (const volatile unsigned char *)a;
    const volatile unsigned char *y = (const volatile unsigned char *)b;
    size_t n = alen > blen ? alen : blen;
    unsigned char d = (unsigned char)(alen != blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char cx = i < alen ? x[i] : 0, cy = i < blen ? y[i] : 0;
        d |= (unsigned char)(cx ^ cy);
    }
    return d == 0;
}

/* Checks "Authorization: Bearer <token>" against the expected token in constant time: 1 when
 * it matches. */
static inline int acdm_bearer_ok(const char *authorization, const char *expected)
{
    const char *t;
    if (!authorization || !expected || !*expected) return 0;
    if (strncasecmp(authorization, "Bearer ", 7) != 0) return 0;
    t = authorization + 7;
    while (*t == ' ') t++;
    return acdm_ct_equal(t, strlen(t), expected, strlen(expected));
}

/* Writes a JSON string body (quoted, escaped) for s into out; returns the length or -1. */
static inline long acdm_json_quote(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    static const char hx[] = "0123456789abcdef";
    if (cap < 3) return -1;
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        char esc[7];
        size_t el = 0;
        if (*p == '"' || *p == '\\') { esc[0] = '\\'; esc[1] = (char)*p; el = 2; }
        else if (*p == '\n') { esc[0] = '\\'; esc[1] = 'n'; el = 2; }
        else if (*p == '\r') { esc[0] = '\\'; esc[1] = 'r'; el = 2; }
        else if (*p == '\t') { esc[0] = '\\'; esc[1] = 't'; el = 2; }
        else if (*p < 0x20) {
            esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hx[*p >> 4]; esc[5] = hx[*p & 15]; el = 6;
        } else { esc[0] = (char)*p; el = 1; }
        if (o + el + 2 > cap) return -1;
        memcpy(out + o, esc, el);
        o += el;
    }
    out[o++] = '"';
    out[o] = '\0';
    return (long)o;
}

/* Fills resp with an RFC 7807 problem+json answer: {"type":"about:blank","title":..,
 * "status":..,"detail":..}. buf (the caller's, e.g. a static or the instance's) holds the
 * body until the host copies it after the handler returns. */
static inline void acdm_problem(acdm_http_response *resp, int status, const char *title,
                                const char *detail, char *buf, size_t cap)
{
    char t[256], d[768];
    if (acdm_json_quote(title ? title : "Error", t, sizeof t) < 0) snprintf(t, sizeof t, "\"Error\"");
    if (acdm_json_quote(detail ? detail : "", d, sizeof d) < 0) snprintf(d, sizeof d, "\"\"");
    snprintf(buf, cap, "{\"type\":\"about:blank\",\"title\":%s,\"status\":%d,\"detail\":%s}",
             t, status, d);
    resp->status = status;
    resp->content_type = "application/problem+json";
    resp->body = buf;
    resp->body_len = 0;
}

/* The name of a host return code (ACDM_P_*). */
static inline const char *acdm_plugin_strerror(int rc)
{
    switch (rc) {
    case ACDM_P_OK: return "ok";
    case ACDM_P_EINVAL: return "invalid argument";
    case ACDM_P_ENOENT: return "not found";
    case ACDM_P_EEXIST: return "already exists";
    case ACDM_P_ESTATE: return "not allowed in this state";
    case ACDM_P_ECLOSED: return "queue closed";
    case ACDM_P_ENOMEM: return "out of memory";
    case ACDM_P_EPERM: return "not permitted";
    case ACDM_P_EIO: return "storage or I/O failure";
    case ACDM_P_EFULL: return "limit reached";
    case ACDM_P_EABI: return "structure too small for this ABI";
    case ACDM_P_ETOOBIG: return "too big";
    default: return "unknown error";
    }
}

#ifdef __cplusplus
}
#endif
#endif
