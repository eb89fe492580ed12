/* acdm/plugin_util.h -- static-inline helpers for what every channel plugin repeats: request
 * headers, the raw query string, constant-time comparison of secrets, problem+json answers, the
 * names of the host's return codes, a growable text buffer, the instance config read through a
 * spec table (acdm_cfg_*: key, type, default, validator, "did you mean" for unknown keys) and
 * the handoff document with its transcript (acdm_handoff_*) that a bot or a chat hands to an
 * agent. Header only, C11: nothing here is a symbol of acdmd, so a plugin that uses it links
 * against nothing but libc.
 */
#ifndef ACDM_PLUGIN_UTIL_H
#define ACDM_PLUGIN_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True when `number` is a phone number acdm dials or transfers to: 2..32 characters, digits with
 * an optional leading '+' (no spaces or dashes: a desk strips them before sending). The one rule
 * for the core's transfer to a number, a voice plugin's REFER and outbound calls, and a caller's
 * number that a callback will dial. */
static inline bool acdm_phone_number_ok(const char *number)
{
    size_t n = number ? strlen(number) : 0, d = n && number[0] == '+';
    return n - d >= 2 && n <= 32 && strspn(number + d, "0123456789") == n - d;
}

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

/* True when the request's Content-Type is the media type `type` (e.g. "application/json"):
 * compared ignoring case, surrounding blanks and parameters ("; charset=utf-8"). A missing
 * Content-Type is no type. A JSON route checks it so a web page cannot reach it with a
 * preflight-free text/plain or form POST. */
static inline int acdm_content_type_is(const acdm_http_request *req, const char *type)
{
    if (!req || !req->content_type || !type) return 0;
    const char *ct = req->content_type;
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    size_t tn = strlen(type);
    return tn && n == tn && strncasecmp(ct, type, n) == 0;
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
    char t[256], d[768], st[16];
    const char *parts[7];
    size_t o = 0, need = 0;
    if (acdm_json_quote(title ? title : "Error", t, sizeof t) < 0) memcpy(t, "\"Error\"", 8);
    if (acdm_json_quote(detail ? detail : "", d, sizeof d) < 0) memcpy(d, "\"\"", 3);
    snprintf(st, sizeof st, "%d", status);
    parts[0] = "{\"type\":\"about:blank\",\"title\":"; parts[1] = t; parts[2] = ",\"status\":";
    parts[3] = st; parts[4] = ",\"detail\":"; parts[5] = d; parts[6] = "}";
    for (int k = 0; k < 7; k++) need += strlen(parts[k]);
    if (need + 1 > cap) parts[5] = "\"\"";    /* too small a buffer: the detail is left out */
    for (int k = 0; k < 7; k++) {
        size_t l = strlen(parts[k]);
        if (o + l + 1 > cap) break;
        memcpy(buf + o, parts[k], l);
        o += l;
    }
    if (cap) buf[o] = '\0';
    resp->status = status;
    resp->content_type = "application/problem+json";
    resp->body = buf;
    resp->body_len = 0;
}

/* The length of the well-formed UTF-8 sequence at p (before e): 1..4, or 0 when it is not one
 * (a stray continuation byte, an overlong form, a surrogate, past U+10FFFF, cut short). */
static inline size_t acdm_utf8_seq(const char *p, const char *e)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t left = (size_t)(e - p), n;
    unsigned c;
    if (!left) return 0;
    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) { n = 2; c = s[0] & 0x1Fu; }
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) { n = 3; c = s[0] & 0x0Fu; }
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) { n = 4; c = s[0] & 0x07u; }
    else return 0;
    if (left < n) return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[k] & 0x3Fu);
    }
    if ((n == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)))
        return 0;
    return n;
}

/* ================================================================ a growable text buffer */

/* Text built by appending; oom set (and kept) once an allocation failed. p is NUL-terminated
 * while n > 0. Zero-initialise ({0}); free with acdm_buf_free, or take p. */
typedef struct { char *p; size_t n, cap; int oom; } acdm_buf;

static inline void acdm_buf_add(acdm_buf *b, const char *s, size_t len)
{
    if (b->oom) return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1) cap *= 2;
        char *np = (char *)realloc(b->p, cap);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = cap;
    }
    if (len) memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

static inline void acdm_buf_puts(acdm_buf *b, const char *s) { if (s) acdm_buf_add(b, s, strlen(s)); }

static inline void acdm_buf_printf(acdm_buf *b, const char *fmt, ...) ACDM_PRINTF(2, 3);
static inline void acdm_buf_printf(acdm_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) { b->oom = 1; return; }
    if ((size_t)n < sizeof small) { acdm_buf_add(b, small, (size_t)n); return; }
    char *big = (char *)malloc((size_t)n + 1);
    if (!big) { b->oom = 1; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    acdm_buf_add(b, big, (size_t)n);
    free(big);
}

/* Appends s as a JSON string (quoted, escaped; NULL as null). Bytes that are not well-formed
 * UTF-8 become U+FFFD, so the result is always valid JSON. */
static inline void acdm_buf_json_str(acdm_buf *b, const char *s)
{
    static const char hx[] = "0123456789abcdef";
    if (!s) { acdm_buf_add(b, "null", 4); return; }
    const char *e = s + strlen(s);
    acdm_buf_add(b, "\"", 1);
    for (const char *p = s; p < e;) {
        const char *run = p;
        size_t l;
        while (p < e && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20 &&
               (l = acdm_utf8_seq(p, e)) > 0)
            p += l;
        if (p > run) acdm_buf_add(b, run, (size_t)(p - run));
        if (p >= e) break;
        unsigned char c = (unsigned char)*p;
        char esc[6] = {'\\', 'u', '0', '0', hx[c >> 4], hx[c & 15]};
        if (c == '"' || c == '\\') { esc[1] = (char)c; acdm_buf_add(b, esc, 2); }
        else if (c == '\n') acdm_buf_add(b, "\\n", 2);
        else if (c == '\r') acdm_buf_add(b, "\\r", 2);
        else if (c == '\t') acdm_buf_add(b, "\\t", 2);
        else if (c < 0x20) acdm_buf_add(b, esc, 6);
        else acdm_buf_add(b, "\xef\xbf\xbd", 3);   /* not UTF-8: U+FFFD */
        p++;
    }
    acdm_buf_add(b, "\"", 1);
}

static inline void acdm_buf_free(acdm_buf *b) { free(b->p); b->p = NULL; b->n = b->cap = 0; b->oom = 0; }

/* ================================================================ JSON reading (small, strict) */

/* The reader behind acdm_cfg_parse: RFC 8259 values, at most ACDM_JSON_DEPTH deep. */
#define ACDM_JSON_DEPTH 32

static inline const char *acdm__ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static inline int acdm__hex4(const char *p, const char *e, unsigned *out)
{
    unsigned v = 0;
    if (e - p < 4) return -1;
    for (int k = 0; k < 4; k++) {
        int h = acdm__hexval((unsigned char)p[k]);
        if (h < 0) return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

/* Reads the JSON string at p (at its opening quote) up to e. With out, writes it decoded as
 * UTF-8 (at most cap-1 bytes and a NUL; *len the decoded length even when it does not fit, so
 * the caller can say "longer than"). Returns the position after the closing quote, or NULL
 * for a malformed string or one holding a NUL character (\u0000). */
static inline const char *acdm__json_string(const char *p, const char *e, char *out, size_t cap,
                                            size_t *len)
{
    size_t o = 0;
    if (p >= e || *p != '"') return NULL;
    for (p++; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        unsigned char u8[4];
        size_t ul = 1;
        if (c == '"') {
            if (out && cap) out[o < cap ? o : cap - 1] = '\0';
            if (len) *len = o;
            return p + 1;
        }
        if (c < 0x20) return NULL;
        u8[0] = c;
        if (c >= 0x80) {                      /* raw UTF-8: well-formed, copied whole */
            ul = acdm_utf8_seq(p, e);
            if (!ul) return NULL;
            memcpy(u8, p, ul);
            p += ul - 1;
        } else if (c == '\\') {
            if (++p >= e) return NULL;
            switch (*p) {
            case '"': u8[0] = '"'; break;
            case '\\': u8[0] = '\\'; break;
            case '/': u8[0] = '/'; break;
            case 'b': u8[0] = '\b'; break;
            case 'f': u8[0] = '\f'; break;
            case 'n': u8[0] = '\n'; break;
            case 'r': u8[0] = '\r'; break;
            case 't': u8[0] = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (acdm__hex4(p + 1, e, &cp)) return NULL;
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (e - p < 7 || p[1] != '\\' || p[2] != 'u' || acdm__hex4(p + 3, e, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF) return NULL;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return NULL;
                }
                if (cp == 0) return NULL;
                if (cp < 0x80) { u8[0] = (unsigned char)cp; }
                else if (cp < 0x800) { u8[0] = (unsigned char)(0xC0 | (cp >> 6));
                    u8[1] = (unsigned char)(0x80 | (cp & 0x3F)); ul = 2; }
                else if (cp < 0x10000) { u8[0] = (unsigned char)(0xE0 | (cp >> 12));
                    u8[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    u8[2] = (unsigned char)(0x80 | (cp & 0x3F)); ul = 3; }
                else { u8[0] = (unsigned char)(0xF0 | (cp >> 18));
                    u8[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                    u8[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    u8[3] = (unsigned char)(0x80 | (cp & 0x3F)); ul = 4; }
                break;
            }
            default: return NULL;
            }
        }
        for (size_t k = 0; k < ul; k++, o++)
            if (out && o + 1 < cap) out[o] = (char)u8[k];
    }
    return NULL;
}

/* Skips one JSON value at p (after white space); returns the position after it or NULL. */
static inline const char *acdm__json_skip(const char *p, const char *e, int depth)
{
    p = acdm__ws(p, e);
    if (p >= e || depth > ACDM_JSON_DEPTH) return NULL;
    if (*p == '"') return acdm__json_string(p, e, NULL, 0, NULL);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p = acdm__ws(p + 1, e);
        if (p < e && *p == close) return p + 1;
        for (;;) {
            if (obj) {
                p = acdm__json_string(acdm__ws(p, e), e, NULL, 0, NULL);
                if (!p) return NULL;
                p = acdm__ws(p, e);
                if (p >= e || *p != ':') return NULL;
                p++;
            }
            p = acdm__json_skip(p, e, depth + 1);
            if (!p) return NULL;
            p = acdm__ws(p, e);
            if (p < e && *p == ',') { p++; continue; }
            if (p < e && *p == close) return p + 1;
            return NULL;
        }
    }
    if (e - p >= 4 && !memcmp(p, "true", 4)) return p + 4;
    if (e - p >= 5 && !memcmp(p, "false", 5)) return p + 5;
    if (e - p >= 4 && !memcmp(p, "null", 4)) return p + 4;
    {   /* a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
        const char *s = p;
        if (p < e && *p == '-') p++;
        if (p >= e || *p < '0' || *p > '9') return NULL;
        if (*p == '0') p++; else while (p < e && *p >= '0' && *p <= '9') p++;
        if (p < e && *p == '.') {
            p++;
            if (p >= e || *p < '0' || *p > '9') return NULL;
            while (p < e && *p >= '0' && *p <= '9') p++;
        }
        if (p < e && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < e && (*p == '+' || *p == '-')) p++;
            if (p >= e || *p < '0' || *p > '9') return NULL;
            while (p < e && *p >= '0' && *p <= '9') p++;
        }
        return p > s ? p : NULL;
    }
}

/* snprintf for the error sentences: through vsnprintf, so a plugin's small err buffer never
 * trips -Werror=format-truncation (a cut sentence is still a sentence). */
static inline void acdm__errf(char *err, size_t errlen, const char *fmt, ...) ACDM_PRINTF(3, 4);
static inline void acdm__errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ================================================================ the config-spec table */

/* A plugin describes its instance config once, as a table, and reads it with acdm_cfg_parse
 * into its own struct: types checked, defaults filled, ranges and validators applied, and an
 * unknown key refused with the nearest known one ("tokn: unknown key (did you mean
 * \"token\"?)"), every error a sentence naming the key, fit for init's and check_config's err.
 *
 *   typedef struct { char url[256]; char token[128]; int retry_ms; bool verbose; } my_cfg;
 *   static const acdm_cfg_spec my_spec[] = {
 *       ACDM_CFG_STR(my_cfg, "url", url, NULL, .required = 1, .check = acdm_cfg_check_url),
 *       ACDM_CFG_STR(my_cfg, "token", token, NULL, .required = 1, .min = 16),
 *       ACDM_CFG_INT(my_cfg, "retry_ms", retry_ms, "1000", .min = 10, .max = 60000),
 *       ACDM_CFG_BOOL(my_cfg, "verbose", verbose, "false"),
 *       ACDM_CFG_END
 *   };
 *   my_cfg c;
 *   if (acdm_cfg_parse(my_spec, config_json, &c, err, errlen) < 0) return -1;
 *
 * Types (the field each writes):
 *   ACDM_CFG_T_STR      a string into char[N]; .min/.max bound its length in bytes (max 0:
 *                       N-1); longer than N-1 is an error, never a silent cut
 *   ACDM_CFG_T_INT      an integer into int, long or long long (by the field's size); .min/.max
 *                       the range (both 0: the type's range)
 *   ACDM_CFG_T_BOOL     true/false into bool or int
 *   ACDM_CFG_T_STRLIST  an array of strings into char[N], each NUL-terminated, the list ended
 *                       by an empty string (walk it with acdm_cfg_list_next); .max: at most
 *                       that many entries (0: any); an empty string in the array is an error
 *   ACDM_CFG_T_JSON     any JSON value, its text as written, into char[N] (an object of texts,
 *                       a nested block the plugin reads itself)
 * def is the default as JSON text ("\"https://x\"", "30", "true", "[\"a\"]", "{}"); NULL: a
 * required key is an error when absent, another is left zero ("" / 0 / false / empty list).
 * null in the config is the same as an absent key. check runs after the value is stored, on
 * defaults too. */
typedef enum {
    ACDM_CFG_T_STR = 1,
    ACDM_CFG_T_INT,
    ACDM_CFG_T_BOOL,
    ACDM_CFG_T_STRLIST,
    ACDM_CFG_T_JSON
} acdm_cfg_type;

typedef struct acdm_cfg_spec acdm_cfg_spec;
struct acdm_cfg_spec {
    const char *key;            /* NULL ends the table */
    acdm_cfg_type type;
    size_t offset;              /* offsetof(struct, field) */
    size_t size;                /* sizeof the field */
    const char *def;            /* default as JSON text, or NULL */
    int required;
    long long min, max;
    /* Optional: 0, or negative with a sentence (without the key: it is put in front) in err. */
    int (*check)(const acdm_cfg_spec *s, const void *field, char *err, size_t errlen);
    const char *help;           /* a short description (for a plugin's own docs or errors) */
};

#define ACDM_CFG_STR(st, k, f, d, ...) { .key = (k), .type = ACDM_CFG_T_STR, .offset = offsetof(st, f), \
    .size = sizeof(((st *)0)->f), .def = (d), __VA_ARGS__ }
#define ACDM_CFG_INT(st, k, f, d, ...) { .key = (k), .type = ACDM_CFG_T_INT, .offset = offsetof(st, f), \
    .size = sizeof(((st *)0)->f), .def = (d), __VA_ARGS__ }
#define ACDM_CFG_BOOL(st, k, f, d, ...) { .key = (k), .type = ACDM_CFG_T_BOOL, .offset = offsetof(st, f), \
    .size = sizeof(((st *)0)->f), .def = (d), __VA_ARGS__ }
#define ACDM_CFG_STRLIST(st, k, f, d, ...) { .key = (k), .type = ACDM_CFG_T_STRLIST, \
    .offset = offsetof(st, f), .size = sizeof(((st *)0)->f), .def = (d), __VA_ARGS__ }
#define ACDM_CFG_JSON(st, k, f, d, ...) { .key = (k), .type = ACDM_CFG_T_JSON, .offset = offsetof(st, f), \
    .size = sizeof(((st *)0)->f), .def = (d), __VA_ARGS__ }
#define ACDM_CFG_END { .key = NULL }

/* The entry after s in an ACDM_CFG_T_STRLIST field; walk one with
 *   for (const char *s = c.origins; *s; s = acdm_cfg_list_next(s)) ... */
static inline const char *acdm_cfg_list_next(const char *s) { return s + strlen(s) + 1; }

/* How many entries an ACDM_CFG_T_STRLIST field holds. */
static inline size_t acdm_cfg_list_len(const char *f)
{
    size_t n = 0;
    for (const char *s = f; *s; s = acdm_cfg_list_next(s)) n++;
    return n;
}

/* 1 when the list field holds s. */
static inline int acdm_cfg_list_has(const char *f, const char *s)
{
    for (const char *x = f; *x; x = acdm_cfg_list_next(x))
        if (!strcmp(x, s)) return 1;
    return 0;
}

/* Validators for .check. */
static inline int acdm_cfg_check_url(const acdm_cfg_spec *s, const void *field, char *err, size_t errlen)
{
    const char *v = (const char *)field;
    (void)s;
    if (!*v) return 0;   /* absent and optional */
    if ((strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) || strpbrk(v, " \t\r\n")) {
        acdm__errf(err, errlen, "expected an http:// or https:// URL, got \"%.80s\"", v);
        return -1;
    }
    return 0;
}

/* Levenshtein distance of a and b, capped: anything over 8 is 9 (keys are short). */
static inline int acdm__edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int row[65];
    if (la > 64 || lb > 64) return 9;
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] > 8 ? 9 : row[lb];
}

/* The known key nearest to key (a typo: at most 2 edits, or 1 for keys of 4 or fewer
 * characters; or the same letters in another case), or NULL. */
static inline const char *acdm_cfg_did_you_mean(const acdm_cfg_spec *spec, const char *key)
{
    const char *best = NULL;
    int bd = 99;
    for (const acdm_cfg_spec *s = spec; s->key; s++) {
        int d = strcasecmp(s->key, key) == 0 ? 0 : acdm__edit_distance(s->key, key);
        int limit = strlen(s->key) <= 4 ? 1 : 2;
        if (d <= limit && d < bd) { bd = d; best = s->key; }
    }
    return best;
}

/* Stores one value (text [p, e) of one JSON value) into the field of s. */
static inline int acdm__cfg_store(const acdm_cfg_spec *s, const char *p, const char *e, void *out,
                                  char *err, size_t errlen)
{
    char *f = (char *)out + s->offset;
    const char *end;
    p = acdm__ws(p, e);
    switch (s->type) {
    case ACDM_CFG_T_STR: {
        size_t len = 0, max = s->max > 0 ? (size_t)s->max : s->size - 1;
        if (p >= e || *p != '"') { acdm__errf(err, errlen, "%s: expected a string", s->key); return -1; }
        if (max > s->size - 1) max = s->size - 1;
        end = acdm__json_string(p, e, f, s->size, &len);
        if (!end) { acdm__errf(err, errlen, "%s: malformed string (or a NUL character)", s->key); return -1; }
        if (len > max) {
            f[0] = '\0';
            acdm__errf(err, errlen, "%s: longer than %zu bytes", s->key, max);
            return -1;
        }
        if (s->min > 0 && len < (size_t)s->min) {
            if (len) acdm__errf(err, errlen, "%s: shorter than %lld bytes", s->key, s->min);
            else acdm__errf(err, errlen, "%s: must not be empty", s->key);
            return -1;
        }
        return 0;
    }
    case ACDM_CFG_T_INT: {
        long long v = 0, lo, hi;
        int neg = 0;
        const char *q = p;
        if (q < e && *q == '-') { neg = 1; q++; }
        if (q >= e || *q < '0' || *q > '9') { acdm__errf(err, errlen, "%s: expected an integer", s->key); return -1; }
        for (; q < e && *q >= '0' && *q <= '9'; q++) {
            if (v > (LLONG_MAX - (*q - '0')) / 10) { acdm__errf(err, errlen, "%s: out of range", s->key); return -1; }
            v = v * 10 + (*q - '0');
        }
        if (q < e && (*q == '.' || *q == 'e' || *q == 'E')) {
            acdm__errf(err, errlen, "%s: expected an integer, not a fraction", s->key);
            return -1;
        }
        if (neg) v = -v;
        if (s->size == sizeof(int)) { lo = INT_MIN; hi = INT_MAX; }
        else { lo = LLONG_MIN; hi = LLONG_MAX; }
        if (s->min || s->max) { lo = s->min; hi = s->max; }
        if (v < lo || v > hi) {
            acdm__errf(err, errlen, "%s: %lld is not in %lld..%lld", s->key, v, lo, hi);
            return -1;
        }
        if (s->size == sizeof(int)) { int iv = (int)v; memcpy(f, &iv, sizeof iv); }
        else if (s->size == sizeof(long long)) memcpy(f, &v, sizeof v);
        else { acdm__errf(err, errlen, "%s: the plugin's field is not an int or long long", s->key); return -1; }
        return 0;
    }
    case ACDM_CFG_T_BOOL: {
        int v;
        if (e - p >= 4 && !memcmp(p, "true", 4)) v = 1;
        else if (e - p >= 5 && !memcmp(p, "false", 5)) v = 0;
        else { acdm__errf(err, errlen, "%s: expected true or false", s->key); return -1; }
        if (s->size == sizeof(bool)) { bool bv = v != 0; memcpy(f, &bv, sizeof bv); }
        else if (s->size == sizeof(int)) memcpy(f, &v, sizeof v);
        else { acdm__errf(err, errlen, "%s: the plugin's field is not a bool or int", s->key); return -1; }
        return 0;
    }
    case ACDM_CFG_T_STRLIST: {
        size_t o = 0, n = 0;
        if (p >= e || *p != '[') { acdm__errf(err, errlen, "%s: expected an array of strings", s->key); return -1; }
        p = acdm__ws(p + 1, e);
        if (p < e && *p == ']') { f[0] = '\0'; return 0; }
        for (;;) {
            size_t len = 0;
            if (p >= e || *p != '"') {
                acdm__errf(err, errlen, "%s[%zu]: expected a string", s->key, n);
                return -1;
            }
            end = acdm__json_string(p, e, o + 2 <= s->size ? f + o : NULL, s->size - o - 1, &len);
            if (!end) { acdm__errf(err, errlen, "%s[%zu]: malformed string", s->key, n); return -1; }
            if (!len) { acdm__errf(err, errlen, "%s[%zu]: must not be empty", s->key, n); return -1; }
            if (o + len + 2 > s->size) {
                f[0] = '\0';
                acdm__errf(err, errlen, "%s: the list is longer than %zu bytes", s->key, s->size - 2);
                return -1;
            }
            o += len + 1;
            n++;
            if (s->max > 0 && n > (size_t)s->max) {
                f[0] = '\0';
                acdm__errf(err, errlen, "%s: more than %lld entries", s->key, s->max);
                return -1;
            }
            p = acdm__ws(end, e);
            if (p < e && *p == ',') { p = acdm__ws(p + 1, e); continue; }
            if (p < e && *p == ']') break;
            acdm__errf(err, errlen, "%s: malformed array", s->key);
            return -1;
        }
        f[o] = '\0';
        return 0;
    }
    case ACDM_CFG_T_JSON: {
        end = acdm__json_skip(p, e, 1);
        if (!end) { acdm__errf(err, errlen, "%s: malformed JSON value", s->key); return -1; }
        if ((size_t)(end - p) + 1 > s->size) {
            acdm__errf(err, errlen, "%s: longer than %zu bytes", s->key, s->size - 1);
            return -1;
        }
        memcpy(f, p, (size_t)(end - p));
        f[end - p] = '\0';
        return 0;
    }
    }
    acdm__errf(err, errlen, "%s: unknown type in the plugin's config spec", s->key);
    return -1;
}

static inline int acdm__cfg_checked(const acdm_cfg_spec *s, void *out, char *err, size_t errlen)
{
    char why[384] = "";
    if (!s->check || s->check(s, (char *)out + s->offset, why, sizeof why) >= 0) return 0;
    acdm__errf(err, errlen, "%s: %s", s->key, why[0] ? why : "invalid value");
    return -1;
}

/* Reads config_json (a JSON object; NULL or "" as {}) into out through spec (ended by
 * ACDM_CFG_END). out is zeroed first, then every default is stored. 0, or -1 with one sentence
 * naming the key in err (the first problem found). */
static inline int acdm_cfg_parse(const acdm_cfg_spec *spec, const char *config_json, void *out,
                                 char *err, size_t errlen)
{
    size_t n_spec = 0, total = 0;
    const char *p, *e;
    unsigned char seen[128];
    char dummy[2];
    if (!err || !errlen) { err = dummy; errlen = sizeof dummy; }
    err[0] = '\0';
    for (const acdm_cfg_spec *s = spec; s->key; s++) {
        n_spec++;
        if (s->offset + s->size > total) total = s->offset + s->size;
    }
    if (n_spec > sizeof seen) { acdm__errf(err, errlen, "config spec: more than %zu keys", sizeof seen); return -1; }
    memset(seen, 0, sizeof seen);
    memset(out, 0, total);
    for (const acdm_cfg_spec *s = spec; s->key; s++)
        if (s->def && acdm__cfg_store(s, s->def, s->def + strlen(s->def), out, err, errlen) < 0) return -1;
    p = config_json ? config_json : "{}";
    e = p + strlen(p);
    p = acdm__ws(p, e);
    if (p == e) { p = "{}"; e = p + 2; }
    if (*p != '{') { acdm__errf(err, errlen, "config: expected a JSON object"); return -1; }
    p = acdm__ws(p + 1, e);
    if (p < e && *p == '}') p = acdm__ws(p + 1, e) - 1;
    else for (;;) {
        char key[128];
        size_t kl = 0;
        const char *v, *ve;
        const acdm_cfg_spec *s;
        p = acdm__json_string(p, e, key, sizeof key, &kl);
        if (!p) { acdm__errf(err, errlen, "config: malformed JSON (expected a key)"); return -1; }
        if (kl >= sizeof key) { acdm__errf(err, errlen, "config: a key longer than %zu bytes", sizeof key - 1); return -1; }
        p = acdm__ws(p, e);
        if (p >= e || *p != ':') { acdm__errf(err, errlen, "%s: malformed JSON (expected ':')", key); return -1; }
        v = acdm__ws(p + 1, e);
        ve = acdm__json_skip(v, e, 1);
        if (!ve) { acdm__errf(err, errlen, "%s: malformed JSON value", key); return -1; }
        for (s = spec; s->key && strcmp(s->key, key); s++) {}
        if (!s->key) {
            const char *near = acdm_cfg_did_you_mean(spec, key);
            if (near) { acdm__errf(err, errlen, "%s: unknown key (did you mean \"%s\"?)", key, near); return -1; }
            acdm_buf known = {0, 0, 0, 0};
            for (const acdm_cfg_spec *k = spec; k->key; k++) {
                if (k != spec) acdm_buf_add(&known, ", ", 2);
                acdm_buf_puts(&known, k->key);
            }
            acdm__errf(err, errlen, "%s: unknown key (known: %s)", key, known.p ? known.p : "none");
            acdm_buf_free(&known);
            return -1;
        }
        if (seen[s - spec]) { acdm__errf(err, errlen, "%s: given twice", key); return -1; }
        seen[s - spec] = 1;
        if (!(ve - v == 4 && !memcmp(v, "null", 4))) {
            if (acdm__cfg_store(s, v, ve, out, err, errlen) < 0) return -1;
        } else {
            seen[s - spec] = 0;   /* null: absent (the default stays) */
            if (s->def && acdm__cfg_store(s, s->def, s->def + strlen(s->def), out, err, errlen) < 0) return -1;
        }
        p = acdm__ws(ve, e);
        if (p < e && *p == ',') { p = acdm__ws(p + 1, e); continue; }
        if (p < e && *p == '}') break;
        acdm__errf(err, errlen, "%s: malformed JSON (expected ',' or '}')", key);
        return -1;
    }
    if (acdm__ws(p + 1, e) != e) { acdm__errf(err, errlen, "config: text after the JSON object"); return -1; }
    for (const acdm_cfg_spec *s = spec; s->key; s++) {
        if (s->required && !seen[s - spec] && !s->def) {
            acdm__errf(err, errlen, "%s: required%s%s", s->key, s->help ? " (" : "", s->help ? s->help : "");
            if (s->help) { size_t l = strlen(err); if (l + 1 < errlen) { err[l] = ')'; err[l + 1] = '\0'; } }
            return -1;
        }
        if (acdm__cfg_checked(s, out, err, errlen) < 0) return -1;
    }
    return 0;
}

/* As acdm_cfg_parse for a nested object of the config (the raw text of an ACDM_CFG_T_JSON
 * field, e.g. "bot"): every error names the key with its path, "bot.url: required",
 * "bot.timout: unknown key (did you mean \"timeout\"?)". An empty raw text reads as {}. */
static inline int acdm_cfg_parse_in(const acdm_cfg_spec *spec, const char *raw, void *out,
                                    const char *path, char *err, size_t errlen)
{
    char inner[512];
    if (acdm_cfg_parse(spec, raw && *raw ? raw : "{}", out, inner, sizeof inner) == 0) return 0;
    if (!strncmp(inner, "config: ", 8)) acdm__errf(err, errlen, "%s: %s", path, inner + 8);
    else acdm__errf(err, errlen, "%s.%s", path, inner);
    return -1;
}

/* ================================================================ the handoff document */

/* What a bot or a chat hands to an agent: the bericht's payload document and the readable
 * transcript lines for the bericht's text. The chatbot channel (a bot platform's handoff) and
 * the web chat (its own bot's conversation) build the same document:
 *
 *   {"source":"chatbot","conversation_id":"c-17",
 *    "customer":{"id":..,"name":..,"address":..,"channel":..},
 *    "summary":"..","intent":"..",
 *    "transcript":[{"author":"bot","text":"..","time":"2026-12-01T09:00:00Z"}, ...]}
 *
 * ("customer", "summary", "intent" and an entry's "time" only when given; "time" is the ISO
 * string as given, or epoch milliseconds) and the lines "[time] Label: text\n" per entry.
 * Calls in this order: begin, customer (optional), summary (optional), line (any number), end.
 *
 *   acdm_handoff_doc d;
 *   acdm_handoff_begin(&d, "chatbot", "c-17");
 *   acdm_handoff_summary(&d, "Vraagt naar paspoort", NULL);
 *   acdm_handoff_line(&d, "bot", "Chatbot", "Waarmee kan ik helpen?", NULL, -1);
 *   char *lines, *json = acdm_handoff_end(&d, &lines);   (both malloc'd; NULL: out of memory) */
typedef struct {
    acdm_buf json, lines;
    size_t n;            /* transcript entries so far */
    int stage;           /* 0 fields, 1 in the transcript, 2 ended */
} acdm_handoff_doc;

static inline void acdm__doc_field(acdm_buf *b, const char *key, const char *val)
{
    if (!val) return;
    acdm_buf_add(b, ",", 1);
    acdm_buf_json_str(b, key);
    acdm_buf_add(b, ":", 1);
    acdm_buf_json_str(b, val);
}

static inline void acdm_handoff_begin(acdm_handoff_doc *d, const char *source, const char *conversation_id)
{
    memset(d, 0, sizeof *d);
    acdm_buf_puts(&d->json, "{\"source\":");
    acdm_buf_json_str(&d->json, source ? source : "plugin");
    acdm__doc_field(&d->json, "conversation_id", conversation_id);
    acdm_buf_add(&d->lines, "", 0);
}

/* The customer as the bot knew them; every argument may be NULL (no object when all are). */
static inline void acdm_handoff_customer(acdm_handoff_doc *d, const char *id, const char *name,
                                         const char *address, const char *channel)
{
    if (d->stage || (!id && !name && !address && !channel)) return;
    acdm_buf b = {0, 0, 0, 0};
    acdm__doc_field(&b, "id", id);
    acdm__doc_field(&b, "name", name);
    acdm__doc_field(&b, "address", address);
    acdm__doc_field(&b, "channel", channel);
    acdm_buf_puts(&d->json, ",\"customer\":{");
    if (b.p) acdm_buf_puts(&d->json, b.p + 1);
    if (b.oom) d->json.oom = 1;
    acdm_buf_add(&d->json, "}", 1);
    acdm_buf_free(&b);
}

static inline void acdm_handoff_summary(acdm_handoff_doc *d, const char *summary, const char *intent)
{
    if (d->stage) return;
    acdm__doc_field(&d->json, "summary", summary);
    acdm__doc_field(&d->json, "intent", intent);
}

/* One transcript entry: author as the document records it ("bot", "visitor", "agent", a
 * name), label as the agent reads it in the lines (NULL: author), time as an ISO string or
 * (time NULL) time_ms epoch milliseconds (negative: none). NULL text or author: skipped. */
static inline void acdm_handoff_line(acdm_handoff_doc *d, const char *author, const char *label,
                                     const char *text, const char *time, long long time_ms)
{
    if (d->stage > 1 || !author || !text) return;
    acdm_buf_puts(&d->json, d->stage == 0 ? ",\"transcript\":[" : ",");
    d->stage = 1;
    acdm_buf_puts(&d->json, "{\"author\":");
    acdm_buf_json_str(&d->json, author);
    acdm_buf_puts(&d->json, ",\"text\":");
    acdm_buf_json_str(&d->json, text);
    if (time) { acdm_buf_puts(&d->json, ",\"time\":"); acdm_buf_json_str(&d->json, time); }
    else if (time_ms >= 0) acdm_buf_printf(&d->json, ",\"time\":%lld", time_ms);
    acdm_buf_add(&d->json, "}", 1);
    if (time) acdm_buf_printf(&d->lines, "[%s] ", time);
    else if (time_ms >= 0) acdm_buf_printf(&d->lines, "[%lld] ", time_ms);
    acdm_buf_printf(&d->lines, "%s: %s\n", label ? label : author, text);
    d->n++;
}

/* Ends the document: returns it (malloc'd JSON object text) and, with lines_out, the lines
 * (malloc'd; "" without entries). NULL (and *lines_out NULL) when out of memory. */
static inline char *acdm_handoff_end(acdm_handoff_doc *d, char **lines_out)
{
    acdm_buf_puts(&d->json, d->stage == 1 ? "]}" : ",\"transcript\":[]}");
    d->stage = 2;
    if (d->json.oom || d->lines.oom) {
        acdm_buf_free(&d->json);
        acdm_buf_free(&d->lines);
        if (lines_out) *lines_out = NULL;
        return NULL;
    }
    if (lines_out) *lines_out = d->lines.p;
    else acdm_buf_free(&d->lines);
    return d->json.p;
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
