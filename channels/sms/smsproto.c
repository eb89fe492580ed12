/* smsproto.c -- Kannel and Twilio-compatible inbound parsers (see smsproto.h). */
#include "smsproto.h"
#include "smstext.h"

#include <acdm/plugin_util.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

long sms_arg(const char *query, int raw, const char *name, char *out, size_t cap)
{
    if (!query || !name || !cap) return -1;
    if (raw) return acdm_query_get(query, name, out, cap);
    size_t nl = strlen(name);
    for (const char *p = query; *p;) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) >= nl && !memcmp(p, name, nl) && (p + nl == end || p[nl] == '=')) {
            const char *v = p + nl == end ? end : p + nl + 1;
            size_t vl = (size_t)(end - v);
            if (vl + 1 > cap) return -2;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return (long)vl;
        }
        if (!amp) break;
        p = amp + 1;
    }
    return -1;
}

void kannel_mo_free(kannel_mo *m)
{
    free(m->text);
    m->text = NULL;
}

static int addr_ok(const char *s)
{
    if (!*s) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7F) return 0;
    return 1;
}

/* Windows-1252 0x80..0x9F (the rest of the byte range is ISO-8859-1). */
static const unsigned short cp1252_hi[32] = {
    0x20AC, 0, 0x201A, 0x192, 0x201E, 0x2026, 0x2020, 0x2021, 0x2C6, 0x2030, 0x160, 0x2039, 0x152, 0, 0x17D, 0,
    0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x2DC, 0x2122, 0x161, 0x203A, 0x153, 0, 0x17E, 0x178,
};

static size_t utf8_put(unsigned cp, char *o)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The text as UTF-8: from UTF-8 (checked), WINDOWS-1252 / ISO-8859-1 or UTF-16BE. */
static char *to_utf8(const char *in, size_t n, const char *charset, size_t *outlen, char *err, size_t el)
{
    char *o = malloc(n * 3 + 4);
    size_t k = 0;
    if (!o) { snprintf(err, el, "out of memory"); return NULL; }
    if (!*charset || !strcasecmp(charset, "UTF-8") || !strcasecmp(charset, "GSM")) {
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t l = sms_utf8_next((const unsigned char *)in + i, n - i, &cp);
            if (!l) { free(o); snprintf(err, el, "text: not valid UTF-8 (charset %s)", *charset ? charset : "unset"); return NULL; }
            i += l;
        }
        memcpy(o, in, n);
        k = n;
    } else if (!strcasecmp(charset, "WINDOWS-1252") || !strcasecmp(charset, "ISO-8859-1")) {
        for (size_t i = 0; i < n; i++) {
            unsigned c = (unsigned char)in[i];
            if (c >= 0x80 && c < 0xA0 && !strcasecmp(charset, "WINDOWS-1252")) c = cp1252_hi[c - 0x80] ? cp1252_hi[c - 0x80] : 0xFFFD;
            if (!c) { free(o); snprintf(err, el, "text: holds a NUL byte"); return NULL; }
            k += utf8_put(c, o + k);
        }
    } else if (!strcasecmp(charset, "UTF-16BE") || !strcasecmp(charset, "UCS-2")) {
        if (n % 2) { free(o); snprintf(err, el, "text: odd number of bytes for UTF-16BE"); return NULL; }
        for (size_t i = 0; i < n; i += 2) {
            unsigned u = ((unsigned char)in[i] << 8) | (unsigned char)in[i + 1];
            if (u >= 0xD800 && u < 0xDC00 && i + 3 < n) {
                unsigned lo = ((unsigned char)in[i + 2] << 8) | (unsigned char)in[i + 3];
                if (lo >= 0xDC00 && lo < 0xE000) { u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00); i += 2; }
                else u = 0xFFFD;
            } else if (u >= 0xD800 && u < 0xE000) u = 0xFFFD;
            if (!u) { free(o); snprintf(err, el, "text: holds a NUL character"); return NULL; }
            k += utf8_put(u, o + k);
        }
    } else {
        free(o);
        snprintf(err, el, "charset: %s is not supported (set mo-recode = true in the smsbox group)", charset);
        return NULL;
    }
    o[k] = '\0';
    *outlen = k;
    return o;
}

int kannel_mo_parse(const char *query, int raw, const char *body, size_t body_len,
                    kannel_mo *m, char *err, size_t el)
{
    char num[16];
    memset(m, 0, sizeof *m);
    m->coding = -1;
    if (!query) { snprintf(err, el, "no query string: from, to, id are required"); return -1; }
    if (sms_arg(query, raw, "from", m->from, sizeof m->from) < 0 || !addr_ok(m->from)) {
        snprintf(err, el, "from: required, the sender's number (Kannel %%p)");
        return -1;
    }
    if (sms_arg(query, raw, "to", m->to, sizeof m->to) < 0) m->to[0] = '\0';
    if (sms_arg(query, raw, "id", m->id, sizeof m->id) < 0) m->id[0] = '\0';
    if (sms_arg(query, raw, "time", m->time, sizeof m->time) < 0) m->time[0] = '\0';
    if (sms_arg(query, raw, "smsc", m->smsc, sizeof m->smsc) < 0) m->smsc[0] = '\0';
    if (sms_arg(query, raw, "charset", m->charset, sizeof m->charset) < 0) m->charset[0] = '\0';
    if (sms_arg(query, raw, "coding", num, sizeof num) > 0) {
        char *e;
        long c = strtol(num, &e, 10);
        if (*e || c < 0 || c > 2) { snprintf(err, el, "coding: must be 0, 1 or 2"); return -1; }
        m->coding = (int)c;
    }
    if (m->coding == 1 && (!*m->charset || !strcasecmp(m->charset, "binary"))) {
        snprintf(err, el, "coding 1 (8-bit binary data) cannot be shown as text");
        return -1;
    }
    if (m->coding == 2 && !*m->charset) snprintf(m->charset, sizeof m->charset, "UTF-16BE");
    const char *src = NULL;
    size_t sl = 0;
    char *qt = NULL;
    long tl = -1;
    size_t cap = strlen(query) + 1;
    qt = malloc(cap);
    if (!qt) { snprintf(err, el, "out of memory"); return -1; }
    tl = sms_arg(query, raw, "text", qt, cap);
    if (tl == -2) { free(qt); snprintf(err, el, "text: does not decode (bad percent-encoding or a NUL)"); return -1; }
    if (tl >= 0) { src = qt; sl = (size_t)tl; }
    else if (body) { src = body; sl = body_len; }
    else { free(qt); snprintf(err, el, "text: required (in the query for get-url, the body for post-url)"); return -1; }
    if (memchr(src, '\0', sl)) { free(qt); snprintf(err, el, "text: holds a NUL byte"); return -1; }
    m->text = to_utf8(src, sl, m->charset, &m->text_len, err, el);
    free(qt);
    return m->text ? 0 : -1;
}

int kannel_dlr_parse(const char *query, int raw, kannel_dlr *d, char *err, size_t el)
{
    char num[16];
    char *e;
    memset(d, 0, sizeof *d);
    if (!query || sms_arg(query, raw, "m", d->msg, sizeof d->msg) <= 0) {
        snprintf(err, el, "m: the message id is required");
        return -1;
    }
    for (const char *p = d->msg; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-') { snprintf(err, el, "m: not a message id"); return -1; }
    if (sms_arg(query, raw, "p", num, sizeof num) > 0) {
        long v = strtol(num, &e, 10);
        if (*e || v < 0 || v >= SMS_MAX_PARTS) { snprintf(err, el, "p: must be a part number 0..%d", SMS_MAX_PARTS - 1); return -1; }
        d->part = (int)v;
    }
    if (sms_arg(query, raw, "s", num, sizeof num) <= 0) { snprintf(err, el, "s: the DLR status (Kannel %%d) is required"); return -1; }
    long v = strtol(num, &e, 10);
    if (*e || v < 0 || v > 255) { snprintf(err, el, "s: must be Kannel's DLR value (1, 2, 4, 8, 16, 32)"); return -1; }
    d->status = (int)v;
    if (sms_arg(query, raw, "a", d->answer, sizeof d->answer) < 0) d->answer[0] = '\0';
    return 0;
}

int kannel_dlr_state(int s)
{
    if (s & 16) return SMS_ST_FAILED;    /* rejected by the SMSC */
    if (s & 2) return SMS_ST_FAILED;     /* not delivered to the phone */
    if (s & 1) return SMS_ST_DELIVERED;
    if (s & 8) return SMS_ST_SENT;       /* accepted by the SMSC */
    if (s & 4) return SMS_ST_SENT;       /* queued on the SMSC */
    return -1;
}

int twilio_status_state(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "delivered") || !strcmp(s, "read")) return SMS_ST_DELIVERED;
    if (!strcmp(s, "failed") || !strcmp(s, "undelivered") || !strcmp(s, "canceled")) return SMS_ST_FAILED;
    if (!strcmp(s, "sent") || !strcmp(s, "partially_delivered")) return SMS_ST_SENT;
    if (!strcmp(s, "queued") || !strcmp(s, "sending") || !strcmp(s, "accepted") || !strcmp(s, "scheduled"))
        return SMS_ST_ACCEPTED;
    return -1;
}

void sms_form_free(sms_form *f)
{
    for (size_t i = 0; i < f->n; i++) { free(f->names[i]); free(f->values[i]); }
    free(f->names);
    free(f->values);
    memset(f, 0, sizeof *f);
}

static char *decode_part(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    if (!o) return NULL;
    if (acdm_url_decode(s, n, 1, o, n + 1) < 0) { free(o); return NULL; }
    return o;
}

int sms_form_parse(const char *body, size_t len, sms_form *f)
{
    memset(f, 0, sizeof *f);
    if (!body || !len) return 0;
    f->names = calloc(200, sizeof *f->names);
    f->values = calloc(200, sizeof *f->values);
    if (!f->names || !f->values) { sms_form_free(f); return -1; }
    const char *end = body + len;
    for (const char *p = body; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if (e > p) {
            if (f->n >= 200) { sms_form_free(f); return -1; }
            const char *eq = memchr(p, '=', (size_t)(e - p));
            const char *ke = eq ? eq : e;
            char *k = decode_part(p, (size_t)(ke - p));
            char *v = eq ? decode_part(eq + 1, (size_t)(e - eq - 1)) : strdup("");
            if (!k || !v) { free(k); free(v); sms_form_free(f); return -1; }
            f->names[f->n] = k;
            f->values[f->n] = v;
            f->n++;
        }
        if (!amp) break;
        p = amp + 1;
    }
    return 0;
}

const char *sms_form_get(const sms_form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) return f->values[i];
    return NULL;
}

int twilio_in_parse(const sms_form *f, twilio_in *t, char *err, size_t el)
{
    memset(t, 0, sizeof *t);
    t->sid = sms_form_get(f, "MessageSid");
    if (!t->sid) t->sid = sms_form_get(f, "SmsSid");
    t->from = sms_form_get(f, "From");
    t->to = sms_form_get(f, "To");
    t->body = sms_form_get(f, "Body");
    if (!t->sid || !*t->sid || strlen(t->sid) > 64) { snprintf(err, el, "MessageSid: required"); return -1; }
    if (!t->from || !addr_ok(t->from) || strlen(t->from) > 63) { snprintf(err, el, "From: required, the sender's number"); return -1; }
    const char *nm = sms_form_get(f, "NumMedia");
    if (nm && *nm) {
        char *e;
        long v = strtol(nm, &e, 10);
        if (*e || v < 0 || v > 10) { snprintf(err, el, "NumMedia: must be 0..10"); return -1; }
        t->num_media = (int)v;
    }
    for (int i = 0; i < t->num_media; i++) {
        char k[32];
        snprintf(k, sizeof k, "MediaUrl%d", i);
        t->media_url[i] = sms_form_get(f, k);
        snprintf(k, sizeof k, "MediaContentType%d", i);
        t->media_type[i] = sms_form_get(f, k);
        if (!t->media_url[i]) { snprintf(err, el, "MediaUrl%d: missing (NumMedia is %d)", i, t->num_media); return -1; }
    }
    if (!t->body) t->body = "";
    for (const unsigned char *p = (const unsigned char *)t->body; *p;) {
        uint32_t cp;
        size_t l = sms_utf8_next(p, strlen((const char *)p), &cp);
        if (!l) { snprintf(err, el, "Body: not valid UTF-8"); return -1; }
        p += l;
    }
    if (!*t->body && !t->num_media) { snprintf(err, el, "Body: empty and no media"); return -1; }
    return 0;
}

int sms_keyword(const char *text, size_t len)
{
    while (len && isspace((unsigned char)*text)) { text++; len--; }
    while (len && (isspace((unsigned char)text[len - 1]) || text[len - 1] == '.' || text[len - 1] == '!')) len--;
    static const char *const out[] = {"STOP", "AFMELDEN", "UITSCHRIJVEN", "STOPALL", "UNSUBSCRIBE"};
    static const char *const in[] = {"START", "AANMELDEN", "UNSTOP"};
    for (size_t i = 0; i < sizeof out / sizeof *out; i++)
        if (strlen(out[i]) == len && !strncasecmp(text, out[i], len)) return 1;
    for (size_t i = 0; i < sizeof in / sizeof *in; i++)
        if (strlen(in[i]) == len && !strncasecmp(text, in[i], len)) return 2;
    return 0;
}
