/* mime.c -- a mail as the agent reads it: GMime parses the MIME structure, decodes every
 * charset and encoded header to UTF-8 (never failing on a bad one: what is not valid UTF-8 is
 * repaired), finds the text and HTML parts, the attachments and inline images, the automatic-
 * mail signals (RFC 3834), bounces (RFC 3464) and the receiving server's Authentication-Results. */
#include "mail.h"

#include <ctype.h>
#include <gmime/gmime.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- small helpers */

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

/* Valid UTF-8 with control characters (except tab/newline when keep_nl) replaced. */
static char *utf8_clean(const char *s, bool keep_nl)
{
    if (!s) return NULL;
    gchar *v = g_utf8_make_valid(s, -1);
    char *out = strdup(v);
    g_free(v);
    if (!out) return NULL;
    for (unsigned char *p = (unsigned char *)out; *p; p++)
        if (*p < 0x20 && !(keep_nl && (*p == '\n' || *p == '\t'))) *p = ' ';
        else if (*p == 0x7f) *p = ' ';
    return out;
}

char *hdr_clean(const char *s)
{
    return utf8_clean(s ? s : "", false);
}

bool addr_ok(const char *a)
{
    if (!a || !*a || strlen(a) > 254) return false;
    const char *at = strrchr(a, '@');
    if (!at || at == a || !at[1]) return false;
    for (const unsigned char *p = (const unsigned char *)a; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f) return false;
        if (strchr("<>()[]\\,;:\"", *p)) return false;
        if (*p == '@' && (const char *)p != at) return false;
    }
    return true;
}

void sha256_hex(const void *data, size_t len, char out[65])
{
    GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
    g_checksum_update(c, data, (gssize)len);
    snprintf(out, 65, "%s", g_checksum_get_string(c));
    g_checksum_free(c);
}

char *b64_encode(const unsigned char *d, size_t n, bool wrap)
{
    gchar *e = g_base64_encode(d, n);
    size_t el = strlen(e);
    if (!wrap) {
        char *r = strdup(e);
        g_free(e);
        return r;
    }
    char *r = malloc(el + (el / 76 + 2) * 2 + 1), *w = r;
    if (r) {
        for (size_t i = 0; i < el; i += 76) {
            size_t k = el - i < 76 ? el - i : 76;
            memcpy(w, e + i, k);
            w += k;
            *w++ = '\r';
            *w++ = '\n';
        }
        *w = 0;
    }
    g_free(e);
    return r;
}

unsigned char *b64_decode(const char *s, size_t *n)
{
    gsize gn = 0;
    guchar *d = g_base64_decode(s, &gn);
    unsigned char *r = malloc(gn + 1);
    if (r) { memcpy(r, d, gn); r[gn] = 0; }
    g_free(d);
    *n = r ? gn : 0;
    return r;
}

static void warn(parsed_mail *m, const char *w)
{
    char **nw = realloc(m->warnings, (m->n_warnings + 1) * sizeof *nw);
    if (!nw) return;
    m->warnings = nw;
    if ((m->warnings[m->n_warnings] = strdup(w))) m->n_warnings++;
}

static char *strip_angle(const char *s)
{
    if (!s) return NULL;
    while (*s == ' ' || *s == '\t' || *s == '<') s++;
    char *r = strdup(s);
    if (!r) return NULL;
    size_t n = strlen(r);
    while (n && (r[n - 1] == '>' || isspace((unsigned char)r[n - 1]))) r[--n] = 0;
    if (!*r) { free(r); return NULL; }
    char *c = hdr_clean(r);
    free(r);
    return c;
}

static char *lower_dup(const char *s)
{
    char *r = xstrdup(s);
    for (char *p = r; p && *p; p++) *p = (char)tolower((unsigned char)*p);
    return r;
}

/* ---------------------------------------------------------------- quotes and subjects */

static bool starts_ci(const char *s, const char *p)
{
    return !strncasecmp(s, p, strlen(p));
}

static bool line_is_marker(const char *l, size_t n, const char *next, size_t nn)
{
    while (n && (*l == ' ' || *l == '\t')) { l++; n--; }
    while (n && isspace((unsigned char)l[n - 1])) n--;
    if (!n) return false;
    char buf[512];
    size_t k = n < sizeof buf - 1 ? n : sizeof buf - 1;
    memcpy(buf, l, k);
    buf[k] = 0;
    if (buf[0] == '>') return true;
    if (!strcmp(buf, "--") || !strcmp(buf, "-- ")) return true;
    static const char *const exact_prefix[] = {
        "-----Oorspronkelijk bericht-----", "-----Original Message-----",
        "-----Origineel bericht-----", "________________________________",
        "Verzonden vanaf mijn ", "Verstuurd vanaf mijn ", "Verzonden vanuit ",
        "Verzonden met ", "Sent from my ", "Sent from Outlook", "Get Outlook for ",
        "Begin forwarded message", "Begin doorgestuurd bericht", NULL};
    for (int i = 0; exact_prefix[i]; i++)
        if (starts_ci(buf, exact_prefix[i])) return true;
    /* "Op <datum> schreef <naam> <adres>:" / "On <date>, <name> wrote:" (may wrap once) */
    if ((starts_ci(buf, "Op ") && strstr(buf, "schreef")) || (starts_ci(buf, "On ") && strstr(buf, "wrote"))) {
        if (buf[k - 1] == ':') return true;
        if (next && nn) {
            while (nn && isspace((unsigned char)next[nn - 1])) nn--;
            if (nn && next[nn - 1] == ':') return true;
        }
    }
    if (starts_ci(buf, "Op ") && next && nn) {
        char b2[256];
        size_t k2 = nn < sizeof b2 - 1 ? nn : sizeof b2 - 1;
        memcpy(b2, next, k2);
        b2[k2] = 0;
        size_t e = strlen(b2);
        while (e && isspace((unsigned char)b2[e - 1])) b2[--e] = 0;
        if (strstr(b2, "schreef") && e && b2[e - 1] == ':') return true;
    }
    /* an Outlook header block: "Van: ..." / "From: ..." followed by Verzonden:/Sent:/Date: */
    if ((starts_ci(buf, "Van:") || starts_ci(buf, "From:")) && next &&
        (starts_ci(next, "Verzonden:") || starts_ci(next, "Sent:") || starts_ci(next, "Date:") ||
         starts_ci(next, "Datum:") || starts_ci(next, "Aan:") || starts_ci(next, "To:")))
        return true;
    if (starts_ci(buf, "Van:") && strchr(buf, '@')) return true;
    return false;
}

char *mail_fold_quotes(const char *text, bool *folded)
{
    if (folded) *folded = false;
    if (!text) return NULL;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *next = e ? e + 1 : NULL;
        size_t nn = 0;
        if (next) {
            const char *e2 = strchr(next, '\n');
            nn = e2 ? (size_t)(e2 - next) : strlen(next);
        }
        if (line_is_marker(p, n, next, nn)) break;
        if (!e) { p += n; break; }
        p = e + 1;
    }
    size_t cut = (size_t)(p - text);
    while (cut && isspace((unsigned char)text[cut - 1])) cut--;
    if (!cut || !text[p - text]) {            /* nothing before the marker, or no marker */
        char *r = strdup(text);
        size_t n = r ? strlen(r) : 0;
        while (n && isspace((unsigned char)r[n - 1])) r[--n] = 0;
        return r;
    }
    char *r = strndup(text, cut);
    if (folded) *folded = true;
    return r;
}

char *mail_base_subject(const char *subject)
{
    const char *s = subject ? subject : "";
    for (;;) {
        while (*s == ' ' || *s == '\t') s++;
        static const char *const pre[] = {"re:", "aw:", "antw:", "antwoord:", "fw:", "fwd:",
                                          "doorst:", "wg:", "tr:", NULL};
        bool hit = false;
        for (int i = 0; pre[i]; i++)
            if (starts_ci(s, pre[i])) { s += strlen(pre[i]); hit = true; break; }
        if (!hit && starts_ci(s, "re[")) {
            const char *q = strchr(s, ']');
            if (q && q[1] == ':') { s = q + 2; hit = true; }
        }
        if (!hit && *s == '[') {
            const char *q = strchr(s, ']');
            if (q && starts_ci(s, "[KCC#")) { s = q + 1; hit = true; }
        }
        if (!hit) break;
    }
    char *r = strdup(s);
    if (!r) return NULL;
    /* a trailing tag too */
    char *t = strstr(r, "[KCC#");
    if (t && strchr(t, ']')) {
        char *q = strchr(t, ']') + 1;
        memmove(t, q, strlen(q) + 1);
    }
    size_t n = strlen(r);
    while (n && isspace((unsigned char)r[n - 1])) r[--n] = 0;
    return r;
}

bool mail_subject_tag(const char *subject, char token[13])
{
    for (const char *s = subject ? subject : ""; (s = strstr(s, "[KCC#")); s++) {
        const char *t = s + 5;
        int i = 0;
        while (i < 12 && isxdigit((unsigned char)t[i])) i++;
        if (i == 12 && t[12] == ']') {
            for (int k = 0; k < 12; k++) token[k] = (char)tolower((unsigned char)t[k]);
            token[12] = 0;
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------- GMime walk */

static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
static int init_count;

void mime_init(void)
{
    pthread_mutex_lock(&init_mu);
    if (init_count++ == 0) g_mime_init();
    pthread_mutex_unlock(&init_mu);
}

void mime_shutdown(void)
{
    pthread_mutex_lock(&init_mu);
    if (init_count > 0 && --init_count == 0) g_mime_shutdown();
    pthread_mutex_unlock(&init_mu);
}

typedef struct walk {
    parsed_mail *m;
    const mail_limits *lim;
    GString *text, *html;
    size_t total;
    bool saw_report;
} walk;

static void add_att(walk *w, GMimePart *part, GMimeContentType *ct)
{
    parsed_mail *m = w->m;
    if (m->n_atts >= w->lim->max_attachments) { m->omitted++; return; }
    GMimeDataWrapper *dw = g_mime_part_get_content(part);
    if (!dw) return;
    GMimeStream *ms = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(dw, ms);
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
    size_t len = ba ? ba->len : 0;
    if (len > w->lim->max_attachment_bytes || w->total + len > w->lim->max_total_bytes) {
        m->omitted++;
        g_object_unref(ms);
        return;
    }
    mail_att *na = realloc(m->atts, (m->n_atts + 1) * sizeof *na);
    if (!na) { g_object_unref(ms); return; }
    m->atts = na;
    mail_att *a = &m->atts[m->n_atts];
    memset(a, 0, sizeof *a);
    a->data = malloc(len ? len : 1);
    if (!a->data) { g_object_unref(ms); return; }
    if (len) memcpy(a->data, ba->data, len);
    a->len = len;
    g_object_unref(ms);
    const char *fn = g_mime_part_get_filename(part);
    a->filename = fn && *fn ? hdr_clean(fn) : strdup("bijlage");
    /* no path parts in a filename */
    for (char *p = a->filename; p && *p; p++) if (*p == '/' || *p == '\\') *p = '_';
    gchar *mt = g_mime_content_type_get_mime_type(ct);
    a->content_type = hdr_clean(mt ? mt : "application/octet-stream");
    g_free(mt);
    const char *cid = g_mime_object_get_content_id(GMIME_OBJECT(part));
    a->content_id = cid && *cid ? strip_angle(cid) : NULL;
    GMimeContentDisposition *d = g_mime_object_get_content_disposition(GMIME_OBJECT(part));
    a->inline_part = (d && !g_mime_content_disposition_is_attachment(d)) || (a->content_id && !d);
    w->total += len;
    m->n_atts++;
}

static char *part_text(GMimePart *part)
{
    if (!GMIME_IS_TEXT_PART(part)) return NULL;
    char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
    if (!t) return NULL;
    char *r = utf8_clean(t, true);
    g_free(t);
    /* CRLF -> LF */
    if (r) {
        char *o = r;
        for (char *i = r; *i; i++) if (*i != '\r') *o++ = *i;
        *o = 0;
    }
    return r;
}

static void each_part(GMimeObject *parent, GMimeObject *part, gpointer data)
{
    (void)parent;
    walk *w = data;
    GMimeContentType *ct = g_mime_object_get_content_type(part);
    if (GMIME_IS_MESSAGE_PART(part)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(part));
        if (inner && w->saw_report && !w->m->bounce_orig_id) {
            const char *id = g_mime_message_get_message_id(inner);
            if (id) w->m->bounce_orig_id = strip_angle(id);
        }
        return;
    }
    if (!GMIME_IS_PART(part)) return;
    GMimePart *p = GMIME_PART(part);
    bool is_att = g_mime_part_is_attachment(p);
    if (ct && g_mime_content_type_is_type(ct, "message", "delivery-status")) {
        char *t = part_text(p);
        if (!t) {
            GMimeDataWrapper *dw = g_mime_part_get_content(p);
            if (dw) {
                GMimeStream *ms = g_mime_stream_mem_new();
                g_mime_data_wrapper_write_to_stream(dw, ms);
                GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
                t = ba ? strndup((const char *)ba->data, ba->len) : NULL;
                g_object_unref(ms);
            }
        }
        for (char *l = t; l && *l;) {
            char *e = strchr(l, '\n');
            if (e) *e = 0;
            if (starts_ci(l, "Status:") && !w->m->bounce_status) {
                char *v = l + 7;
                while (*v == ' ') v++;
                w->m->bounce_status = hdr_clean(v);
                for (char *q = w->m->bounce_status; *q; q++) if (*q == ' ' || *q == '\r') { *q = 0; break; }
            }
            if (starts_ci(l, "Final-Recipient:") && !w->m->bounce_rcpt) {
                char *v = strchr(l, ';');
                v = v ? v + 1 : l + 16;
                while (*v == ' ') v++;
                w->m->bounce_rcpt = hdr_clean(v);
                for (char *q = w->m->bounce_rcpt; *q; q++) if (*q == ' ' || *q == '\r') { *q = 0; break; }
            }
            l = e ? e + 1 : NULL;
        }
        free(t);
        return;
    }
    if (ct && g_mime_content_type_is_type(ct, "text", "rfc822-headers")) {
        char *t = part_text(p);
        for (char *l = t; l && *l && !w->m->bounce_orig_id;) {
            char *e = strchr(l, '\n');
            if (e) *e = 0;
            if (starts_ci(l, "Message-ID:")) w->m->bounce_orig_id = strip_angle(l + 11);
            l = e ? e + 1 : NULL;
        }
        free(t);
        return;
    }
    if (!is_att && ct && g_mime_content_type_is_type(ct, "text", "plain") && !w->text->len) {
        char *t = part_text(p);
        if (t) g_string_append(w->text, t);
        free(t);
        return;
    }
    if (!is_att && ct && g_mime_content_type_is_type(ct, "text", "html") && !w->html->len) {
        char *t = part_text(p);
        if (t) g_string_append(w->html, t);
        free(t);
        return;
    }
    add_att(w, p, ct);
}

/* ---------------------------------------------------------------- headers */

static const char *hget(GMimeObject *o, const char *name)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(o);
    GMimeHeader *h = hl ? g_mime_header_list_get_header(hl, name) : NULL;
    return h ? g_mime_header_get_value(h) : NULL;
}

static void first_mailbox(InternetAddressList *l, char **addr, char **name)
{
    if (!l) return;
    for (int i = 0; i < internet_address_list_length(l); i++) {
        InternetAddress *ia = internet_address_list_get_address(l, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
            if (a && addr_ok(a)) {
                *addr = lower_dup(a);
                const char *n = internet_address_get_name(ia);
                if (name && n && *n) *name = hdr_clean(n);
                return;
            }
        }
    }
}

static char *list_display(InternetAddressList *l)
{
    if (!l || !internet_address_list_length(l)) return NULL;
    char *s = internet_address_list_to_string(l, NULL, FALSE);
    char *r = hdr_clean(s);
    g_free(s);
    return r;
}

static char *auth_verdict(const char *ar, const char *method)
{
    if (!ar) return NULL;
    size_t ml = strlen(method);
    for (const char *p = ar; (p = strcasestr(p, method)); p += ml) {
        if (p != ar && isalnum((unsigned char)p[-1])) continue;
        const char *q = p + ml;
        while (*q == ' ') q++;
        if (*q != '=') continue;
        q++;
        while (*q == ' ') q++;
        char v[32];
        size_t k = 0;
        while (k < sizeof v - 1 && isalpha((unsigned char)q[k])) { v[k] = (char)tolower((unsigned char)q[k]); k++; }
        v[k] = 0;
        return k ? strdup(v) : NULL;
    }
    return NULL;
}

static size_t header_block_len(const char *raw, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (raw[i] == '\n' && raw[i + 1] == '\n') return i + 1;
        if (raw[i] == '\n' && raw[i + 1] == '\r' && i + 2 < len && raw[i + 2] == '\n') return i + 1;
    }
    return len;
}

void mime_parse(const char *raw, size_t len, bool header_only, const mail_limits *lim,
                parsed_mail *out)
{
    memset(out, 0, sizeof *out);
    out->header_only = header_only;
    size_t hlen = header_block_len(raw, len);
    GMimeParserOptions *opts = g_mime_parser_options_new();
    const char *fallback[] = {"UTF-8", "windows-1252", NULL};
    g_mime_parser_options_set_fallback_charsets(opts, fallback);
    g_mime_parser_options_set_rfc2047_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(raw, header_only ? hlen : len);
    GMimeParser *p = g_mime_parser_new_with_stream(st);
    g_mime_parser_set_format(p, GMIME_FORMAT_MESSAGE);
    GMimeMessage *msg = g_mime_parser_construct_message(p, opts);
    g_object_unref(p);

    if (!msg) {
        warn(out, "the mail could not be parsed as MIME: shown as raw text");
        out->subject = strdup("");
        char *t = strndup(raw, len > 65536 ? 65536 : len);
        out->text_full = utf8_clean(t, true);
        free(t);
        out->text = xstrdup(out->text_full);
    } else {
        GMimeObject *mo = GMIME_OBJECT(msg);
        const char *s = g_mime_message_get_subject(msg);
        out->subject = hdr_clean(s ? s : "");
        const char *mid = g_mime_message_get_message_id(msg);
        out->message_id = mid && *mid ? strip_angle(mid) : NULL;
        first_mailbox(g_mime_message_get_from(msg), &out->from_addr, &out->from_name);
        if (!out->from_addr) first_mailbox(g_mime_message_get_sender(msg), &out->from_addr, &out->from_name);
        char *rt = NULL;
        first_mailbox(g_mime_message_get_reply_to(msg), &rt, NULL);
        out->reply_to = rt;
        const char *rp = hget(mo, "Return-Path");
        if (rp) {
            char *a = strip_angle(rp);
            out->return_path = a ? (addr_ok(a) ? lower_dup(a) : strdup("")) : strdup("");
            free(a);
        }
        out->to = list_display(g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_TO));
        out->cc = list_display(g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_CC));
        const char *d = hget(mo, "Date");
        out->date = d ? hdr_clean(d) : NULL;
        const char *irt = hget(mo, "In-Reply-To");
        if (irt) {
            GMimeReferences *r = g_mime_references_parse(NULL, irt);
            if (r && g_mime_references_length(r) > 0)
                out->in_reply_to = strip_angle(g_mime_references_get_message_id(r, 0));
            if (r) g_mime_references_free(r);
        }
        const char *refs = hget(mo, "References");
        if (refs) {
            GMimeReferences *r = g_mime_references_parse(NULL, refs);
            int n = r ? g_mime_references_length(r) : 0;
            if (n > 100) n = 100;
            out->refs = n > 0 ? calloc((size_t)n, sizeof *out->refs) : NULL;
            for (int i = 0; out->refs && i < n; i++) {
                char *x = strip_angle(g_mime_references_get_message_id(r, i));
                if (x) out->refs[out->n_refs++] = x;
            }
            if (r) g_mime_references_free(r);
        }
        const char *ti = hget(mo, "Thread-Index");
        out->thread_index = ti ? hdr_clean(ti) : NULL;
        const char *ar = hget(mo, "Authentication-Results");
        out->auth_spf = auth_verdict(ar, "spf");
        out->auth_dkim = auth_verdict(ar, "dkim");
        out->auth_dmarc = auth_verdict(ar, "dmarc");

        const char *as = hget(mo, "Auto-Submitted");
        if (as) {
            char *v = lower_dup(as);
            char *t = v;
            while (*t == ' ') t++;
            out->auto_submitted = strncmp(t, "no", 2) || isalnum((unsigned char)t[2]);
            free(v);
        }
        const char *prec = hget(mo, "Precedence");
        if (prec && (strcasestr(prec, "bulk") || strcasestr(prec, "list") || strcasestr(prec, "junk")))
            out->precedence_bulk = true;
        out->x_loop = hget(mo, "X-Loop") != NULL;
        out->suppress = hget(mo, "X-Auto-Response-Suppress") != NULL;
        out->list_mail = hget(mo, "List-Id") || hget(mo, "List-Unsubscribe");
        if (hget(mo, "X-Autoreply") || hget(mo, "X-Autorespond")) out->auto_submitted = true;

        GMimeObject *body = g_mime_message_get_mime_part(msg);
        GMimeContentType *bct = body ? g_mime_object_get_content_type(body) : NULL;
        walk w = {.m = out, .lim = lim, .text = g_string_new(NULL), .html = g_string_new(NULL)};
        if (bct && g_mime_content_type_is_type(bct, "multipart", "report")) {
            const char *rt2 = g_mime_content_type_get_parameter(bct, "report-type");
            if (rt2 && !strcasecmp(rt2, "delivery-status")) { out->bounce = true; w.saw_report = true; }
        }
        if (out->from_addr && (!strncmp(out->from_addr, "mailer-daemon@", 14) ||
                               !strncmp(out->from_addr, "postmaster@", 11)))
            w.saw_report = true;     /* look for the original's id in any attached message */
        if (!header_only) {
            if (body && GMIME_IS_MULTIPART(body)) {
                GMimeMultipart *mp = GMIME_MULTIPART(body);
                const char *boundary = g_mime_multipart_get_boundary(mp);
                if (!boundary || !*boundary) warn(out, "multipart without a boundary");
                else if (g_mime_multipart_get_count(mp) == 0)
                    warn(out, "broken MIME structure: no part found under the boundary");
            }
            g_mime_message_foreach(msg, each_part, &w);
        }
        if (w.saw_report && !out->bounce && out->bounce_orig_id) out->bounce = true;
        if (w.html->len) {
            int remote = 0;
            char *htext = NULL;
            out->html = html_sanitize(w.html->str, w.html->len, &remote, &htext);
            out->html_remote = remote > 0;
            if (!w.text->len && htext) g_string_append(w.text, htext);
            free(htext);
        }
        if (header_only) {
            out->text_full = strdup("");
        } else {
            out->text_full = strdup(w.text->str);
        }
        g_string_free(w.text, TRUE);
        g_string_free(w.html, TRUE);
        bool folded = false;
        out->text = mail_fold_quotes(out->text_full, &folded);
        g_object_unref(msg);
    }
    g_object_unref(st);
    g_mime_parser_options_free(opts);

    /* mail that is not MIME at all still counts: headers without a From are suspicious */
    if (!out->from_addr) warn(out, "no valid sender address (From)");
    if (out->message_id) {
        size_t n = strlen(out->message_id) + 5;
        out->idem = malloc(n);
        if (out->idem) snprintf(out->idem, n, "mid:%s", out->message_id);
        if (out->idem && strlen(out->idem) > 250) out->idem[250] = 0;
    } else {
        char h[65];
        sha256_hex(raw, hlen, h);
        out->idem = malloc(70);
        if (out->idem) snprintf(out->idem, 70, "hdr:%s", h);
        warn(out, "the mail has no Message-ID: recognised by a hash of its headers");
    }
    if (!out->subject) out->subject = strdup("");
    if (!out->text) out->text = strdup("");
    if (!out->text_full) out->text_full = strdup("");
}

void mime_free(parsed_mail *m)
{
    free(m->message_id); free(m->idem); free(m->from_addr); free(m->from_name);
    free(m->return_path); free(m->reply_to); free(m->to); free(m->cc); free(m->subject);
    free(m->date); free(m->in_reply_to); free(m->thread_index); free(m->text);
    free(m->text_full); free(m->html); free(m->auth_spf); free(m->auth_dkim);
    free(m->auth_dmarc); free(m->bounce_orig_id); free(m->bounce_status); free(m->bounce_rcpt);
    for (size_t i = 0; i < m->n_refs; i++) free(m->refs[i]);
    free(m->refs);
    for (size_t i = 0; i < m->n_atts; i++) {
        free(m->atts[i].filename); free(m->atts[i].content_type);
        free(m->atts[i].content_id); free(m->atts[i].data);
    }
    free(m->atts);
    for (size_t i = 0; i < m->n_warnings; i++) free(m->warnings[i]);
    free(m->warnings);
    memset(m, 0, sizeof *m);
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v) json_object_set_new(o, k, json_string(v));
}

char *mime_payload_json(const parsed_mail *m, size_t size, const char *extra_warning)
{
    json_t *e = json_object();
    set_str(e, "message_id", m->message_id);
    set_str(e, "from_name", m->from_name);
    set_str(e, "to", m->to);
    set_str(e, "cc", m->cc);
    set_str(e, "date", m->date);
    set_str(e, "in_reply_to", m->in_reply_to);
    if (m->n_refs) {
        json_t *a = json_array();
        for (size_t i = 0; i < m->n_refs; i++) json_array_append_new(a, json_string(m->refs[i]));
        json_object_set_new(e, "references", a);
    }
    if (m->text_full && m->text && strcmp(m->text, m->text_full)) {
        json_object_set_new(e, "text_full", json_string(m->text_full));
        json_object_set_new(e, "folded", json_true());
    }
    set_str(e, "html", m->html);
    if (m->html_remote) json_object_set_new(e, "remote_images_blocked", json_true());
    if (m->auth_spf || m->auth_dkim || m->auth_dmarc) {
        json_t *a = json_object();
        set_str(a, "spf", m->auth_spf);
        set_str(a, "dkim", m->auth_dkim);
        set_str(a, "dmarc", m->auth_dmarc);
        json_object_set_new(e, "auth", a);
    }
    json_object_set_new(e, "size", json_integer((json_int_t)size));
    if (m->omitted) json_object_set_new(e, "attachments_omitted", json_integer((json_int_t)m->omitted));
    json_t *w = json_array();
    for (size_t i = 0; i < m->n_warnings; i++) json_array_append_new(w, json_string(m->warnings[i]));
    if (extra_warning) json_array_append_new(w, json_string(extra_warning));
    if (json_array_size(w)) json_object_set_new(e, "warnings", w);
    else json_decref(w);
    json_t *root = json_object();
    json_object_set_new(root, "email", e);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}
