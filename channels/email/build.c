/* build.c -- outgoing mail: an RFC 5322 message with the reply's threading headers, built from
 * cleaned parts only. Every header value is stripped of CR/LF and control characters and
 * non-ASCII text is RFC 2047-encoded, addresses must be plain addr-specs: a subject or address
 * can never start a header of its own. The body is base64 so any text passes 7-bit relays. */
#include "mail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef struct sb { char *s; size_t n, cap; bool oom; } sb;

static void put(sb *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 4096;
        while (c < b->n + n + 1) c *= 2;
        char *ns = realloc(b->s, c);
        if (!ns) { b->oom = true; return; }
        b->s = ns;
        b->cap = c;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void puts_(sb *b, const char *s) { put(b, s, strlen(s)); }

static bool ascii_printable(const char *s)
{
    for (; *s; s++) if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) return false;
    return true;
}

/* RFC 2047 B-encoded words (UTF-8), each at most ~60 chars, split at character boundaries. */
static void put_encoded(sb *b, const char *s)
{
    size_t n = strlen(s), i = 0;
    bool first = true;
    while (i < n) {
        size_t k = n - i > 42 ? 42 : n - i;
        while (k < n - i && k > 1 && ((unsigned char)s[i + k] & 0xC0) == 0x80) k--;
        char *e = b64_encode((const unsigned char *)s + i, k, false);
        if (!first) puts_(b, "\r\n ");
        puts_(b, "=?UTF-8?B?");
        puts_(b, e ? e : "");
        puts_(b, "?=");
        free(e);
        first = false;
        i += k;
    }
}

static void put_text_header(sb *b, const char *name, const char *value)
{
    char *v = hdr_clean(value);
    if (!v) { b->oom = true; return; }
    if (strlen(v) > 900) v[900] = 0;
    puts_(b, name);
    puts_(b, ": ");
    if (ascii_printable(v)) puts_(b, v);
    else put_encoded(b, v);
    puts_(b, "\r\n");
    free(v);
}

static void put_mailbox(sb *b, const char *name, const char *addr)
{
    if (name && *name) {
        char *v = hdr_clean(name);
        if (v && ascii_printable(v)) {
            puts_(b, "\"");
            for (const char *p = v; *p; p++) {
                if (*p == '"' || *p == '\\') puts_(b, "\\");
                put(b, p, 1);
            }
            puts_(b, "\" ");
        } else if (v) {
            put_encoded(b, v);
            puts_(b, " ");
        }
        free(v);
    }
    puts_(b, "<");
    puts_(b, addr);
    puts_(b, ">");
}

static bool id_ok(const char *id)
{
    if (!id || !*id || strlen(id) > 250) return false;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '<' || *p == '>') return false;
    return true;
}

static void put_date(sb *b, int64_t t)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char d[64];
    snprintf(d, sizeof d, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
             tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    puts_(b, d);
}

static void put_b64_body(sb *b, const unsigned char *d, size_t n)
{
    char *e = b64_encode(d, n, true);
    if (!e) { b->oom = true; return; }
    puts_(b, e);
    free(e);
}

static void put_filename_param(sb *b, const char *fn)
{
    char *v = hdr_clean(fn && *fn ? fn : "bijlage");
    if (!v) return;
    /* ASCII fallback name, then the RFC 2231 form */
    puts_(b, "; name=\"");
    for (const char *p = v; *p; p++) {
        char c = ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e || *p == '"' || *p == '\\') ? '_' : *p;
        put(b, &c, 1);
    }
    puts_(b, "\"");
    if (!ascii_printable(v) || strchr(v, '"') || strchr(v, '\\')) {
        puts_(b, ";\r\n filename*=UTF-8''");
        for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '.' || *p == '-' || *p == '_') put(b, (const char *)p, 1);
            else { char h[4]; snprintf(h, sizeof h, "%%%02X", *p); puts_(b, h); }
        }
    }
    free(v);
}

char *mail_build(const out_mail *m, size_t *len)
{
    if (!addr_ok(m->from) || !addr_ok(m->to) || !id_ok(m->message_id)) return NULL;
    for (size_t i = 0; m->cc && m->cc[i]; i++) if (!addr_ok(m->cc[i])) return NULL;
    sb b = {0};
    puts_(&b, "From: ");
    put_mailbox(&b, m->from_name, m->from);
    puts_(&b, "\r\nTo: <");
    puts_(&b, m->to);
    puts_(&b, ">\r\n");
    if (m->cc && m->cc[0]) {
        puts_(&b, "Cc: ");
        for (size_t i = 0; m->cc[i]; i++) {
            if (i) puts_(&b, ",\r\n ");
            puts_(&b, "<");
            puts_(&b, m->cc[i]);
            puts_(&b, ">");
        }
        puts_(&b, "\r\n");
    }
    put_text_header(&b, "Subject", m->subject ? m->subject : "");
    put_date(&b, m->date_s ? m->date_s : (int64_t)time(NULL));
    puts_(&b, "Message-ID: <");
    puts_(&b, m->message_id);
    puts_(&b, ">\r\n");
    if (id_ok(m->in_reply_to)) {
        puts_(&b, "In-Reply-To: <");
        puts_(&b, m->in_reply_to);
        puts_(&b, ">\r\n");
    }
    if (m->refs && m->refs[0]) {
        puts_(&b, "References:");
        for (size_t i = 0; m->refs[i]; i++) {
            if (!id_ok(m->refs[i])) continue;
            puts_(&b, i ? "\r\n <" : " <");
            puts_(&b, m->refs[i]);
            puts_(&b, ">");
        }
        puts_(&b, "\r\n");
    }
    if (m->thread_index && *m->thread_index) {
        bool ok = true;
        for (const char *p = m->thread_index; *p; p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                  *p == '+' || *p == '/' || *p == '=')) ok = false;
        if (ok) { puts_(&b, "Thread-Index: "); puts_(&b, m->thread_index); puts_(&b, "\r\n"); }
    }
    if (m->auto_reply) {
        puts_(&b, "Auto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\n"
                  "Precedence: bulk\r\n");
    }
    puts_(&b, "MIME-Version: 1.0\r\n");
    const char *text = m->text ? m->text : "";
    /* LF -> CRLF in the text before encoding */
    sb t = {0};
    for (const char *p = text; *p; p++) {
        if (*p == '\n' && (p == text || p[-1] != '\r')) puts_(&t, "\r\n");
        else put(&t, p, 1);
    }
    if (!t.s) puts_(&t, "");
    if (!m->n_atts) {
        puts_(&b, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        put_b64_body(&b, (const unsigned char *)t.s, t.n);
    } else {
        unsigned char rnd[12];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) memset(rnd, 0x5a, sizeof rnd);
        char bnd[64];
        int k = snprintf(bnd, sizeof bnd, "=_acdm_");
        for (size_t i = 0; i < sizeof rnd; i++) k += snprintf(bnd + k, sizeof bnd - (size_t)k, "%02x", rnd[i]);
        puts_(&b, "Content-Type: multipart/mixed; boundary=\"");
        puts_(&b, bnd);
        puts_(&b, "\"\r\n\r\nThis is a multi-part message in MIME format.\r\n--");
        puts_(&b, bnd);
        puts_(&b, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        put_b64_body(&b, (const unsigned char *)t.s, t.n);
        for (size_t i = 0; i < m->n_atts; i++) {
            const out_att *a = &m->atts[i];
            char *ct = hdr_clean(a->content_type && *a->content_type ? a->content_type : "application/octet-stream");
            bool ct_ok = ct && strchr(ct, '/') && !strchr(ct, ';') && !strchr(ct, '"') && ascii_printable(ct) && !strchr(ct, ' ');
            puts_(&b, "--");
            puts_(&b, bnd);
            puts_(&b, "\r\nContent-Type: ");
            puts_(&b, ct_ok ? ct : "application/octet-stream");
            free(ct);
            put_filename_param(&b, a->filename);
            puts_(&b, "\r\nContent-Disposition: attachment");
            char *fn = hdr_clean(a->filename && *a->filename ? a->filename : "bijlage");
            if (fn) {
                sb tmp = {0};
                put_filename_param(&tmp, fn);
                /* "; name=..." -> "; filename=..." */
                if (tmp.s) { puts_(&b, "; file"); puts_(&b, tmp.s + 2); }
                free(tmp.s);
            }
            free(fn);
            puts_(&b, "\r\nContent-Transfer-Encoding: base64\r\n\r\n");
            put_b64_body(&b, a->data, a->len);
        }
        puts_(&b, "--");
        puts_(&b, bnd);
        puts_(&b, "--\r\n");
    }
    free(t.s);
    if (b.oom) { free(b.s); return NULL; }
    if (len) *len = b.n;
    return b.s;
}

/* FILETIME: 100 ns ticks since 1601-01-01. */
static uint64_t filetime(int64_t unix_s)
{
    return ((uint64_t)unix_s + 11644473600ull) * 10000000ull;
}

char *thread_index_child(const char *parent_b64, int64_t now_s)
{
    uint64_t now = filetime(now_s);
    size_t n = 0;
    unsigned char *p = NULL;
    if (parent_b64 && *parent_b64) p = b64_decode(parent_b64, &n);
    if (p && n >= 22 && (n - 22) % 5 == 0 && n <= 22 + 5 * 200) {
        unsigned char *q = realloc(p, n + 5);
        if (!q) { free(p); return NULL; }
        p = q;
        uint64_t base = 0;
        for (int i = 0; i < 6; i++) base = (base << 8) | p[i];
        base <<= 16;
        uint64_t delta = now > base ? now - base : 0;
        uint32_t v;
        if (delta >> 49) v = 0x80000000u | (uint32_t)((delta >> 23) & 0x7fffffffu);
        else v = (uint32_t)((delta >> 18) & 0x7fffffffu);
        p[n] = (unsigned char)(v >> 24);
        p[n + 1] = (unsigned char)(v >> 16);
        p[n + 2] = (unsigned char)(v >> 8);
        p[n + 3] = (unsigned char)v;
        unsigned char r = 0;
        if (getrandom(&r, 1, 0) != 1) r = 0x2a;
        p[n + 4] = r;
        char *e = b64_encode(p, n + 5, false);
        free(p);
        return e;
    }
    free(p);
    unsigned char h[22];
    uint64_t t = now >> 16;
    for (int i = 5; i >= 0; i--) { h[i] = (unsigned char)(t & 0xff); t >>= 8; }
    if (getrandom(h + 6, 16, 0) != 16) memset(h + 6, 0x11, 16);
    return b64_encode(h, sizeof h, false);
}
