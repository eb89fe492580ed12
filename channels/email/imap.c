/* imap.c -- see imap.h. */
#include "imap.h"

#include <ctype.h>
#include <curl/curl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct imap {
    CURL *c;
    curl_socket_t sock;
    long timeout_ms;
    int wake_fd;
    unsigned tag;
    char *buf;                /* received, not yet consumed: [rpos, wpos) */
    size_t rpos, wpos, cap;
    char caps[2048];
    /* the response being assembled */
    char *text;
    size_t tlen, tcap;
    char **lits;
    size_t *lit_lens;
    int n_lits, lit_cap;
    long exists;              /* messages in the selected mailbox (EXISTS, less EXPUNGEs); -1 */
    bool news;                /* an EXISTS came since imap_take_news */
};

/* Follows the selected mailbox's size in every untagged answer (RFC 3501 7.3.1, 7.4.1). */
static void track(imap *m)
{
    const char *t = m->text;
    if (t[0] != '*' || t[1] != ' ' || !isdigit((unsigned char)t[2])) return;
    char *end;
    long n = strtol(t + 2, &end, 10);
    if (!strncasecmp(end, " EXISTS", 7)) { m->exists = n; m->news = true; }
    else if (!strncasecmp(end, " EXPUNGE", 8) && m->exists > 0) m->exists--;
}

long imap_exists(imap *m) { return m ? m->exists : -1; }

bool imap_take_news(imap *m)
{
    bool n = m->news;
    m->news = false;
    return n;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* -1 error/timeout, 0 socket ready, 1 woken */
static int wait_io(imap *m, bool write, int64_t deadline, bool wakeable)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) return -1;
        struct pollfd p[2] = {{.fd = m->sock, .events = write ? POLLOUT : POLLIN}, {.fd = m->wake_fd, .events = POLLIN}};
        int n = poll(p, wakeable && m->wake_fd >= 0 ? 2 : 1, (int)(left > 1000 ? 1000 : left));
        if (n < 0) continue;
        if (n == 0) continue;
        if (wakeable && m->wake_fd >= 0 && (p[1].revents & POLLIN)) return 1;
        if (p[0].revents) return 0;
    }
}

static int send_all(imap *m, const char *s, size_t len)
{
    int64_t deadline = now_ms() + m->timeout_ms;
    size_t off = 0;
    while (off < len) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(m->c, s + off, len - off, &n);
        if (rc == CURLE_AGAIN) {
            if (wait_io(m, true, deadline, false) < 0) return -1;
            continue;
        }
        if (rc != CURLE_OK) return -1;
        off += n;
        deadline = now_ms() + m->timeout_ms;    /* progress: a big APPEND may take long */
    }
    return 0;
}

/* Reads more bytes into buf. 0 ok, -1 error/timeout/closed, 1 woken (only if wakeable). */
static int fill(imap *m, int64_t deadline, bool wakeable)
{
    if (m->rpos && m->rpos == m->wpos) m->rpos = m->wpos = 0;
    if (m->cap - m->wpos < 65536) {
        if (m->rpos) {
            memmove(m->buf, m->buf + m->rpos, m->wpos - m->rpos);
            m->wpos -= m->rpos;
            m->rpos = 0;
        }
        if (m->cap - m->wpos < 65536) {
            size_t nc = m->cap ? m->cap * 2 : 131072;
            char *nb = realloc(m->buf, nc);
            if (!nb) return -1;
            m->buf = nb;
            m->cap = nc;
        }
    }
    for (;;) {
        size_t n = 0;
        CURLcode rc = curl_easy_recv(m->c, m->buf + m->wpos, m->cap - m->wpos - 1, &n);
        if (rc == CURLE_OK) {
            if (!n) return -1;            /* closed */
            m->wpos += n;
            return 0;
        }
        if (rc != CURLE_AGAIN) return -1;
        int w = wait_io(m, false, deadline, wakeable);
        if (w) return w;
    }
}

static int text_add(imap *m, const char *s, size_t n)
{
    if (m->tlen + n + 1 > m->tcap) {
        size_t c = m->tcap ? m->tcap * 2 : 4096;
        while (c < m->tlen + n + 1) c *= 2;
        char *t = realloc(m->text, c);
        if (!t) return -1;
        m->text = t;
        m->tcap = c;
    }
    memcpy(m->text + m->tlen, s, n);
    m->tlen += n;
    m->text[m->tlen] = 0;
    return 0;
}

static void resp_reset(imap *m)
{
    for (int i = 0; i < m->n_lits; i++) free(m->lits[i]);
    m->n_lits = 0;
    m->tlen = 0;
    if (m->text) m->text[0] = 0;
}

/* Reads one whole response (line plus literals) into m->text / m->lits.
 * 0 ok, -1 error, 1 woken before any byte of it arrived. */
static int read_resp(imap *m, long timeout_ms, bool wakeable)
{
    resp_reset(m);
    int64_t deadline = now_ms() + timeout_ms;
    bool started = false;
    for (;;) {
        char *nl = m->wpos > m->rpos ? memchr(m->buf + m->rpos, '\n', m->wpos - m->rpos) : NULL;
        if (!nl) {
            if (m->wpos > m->rpos) started = true;
            int f = fill(m, deadline, wakeable && !started);
            if (f) return f;
            deadline = now_ms() + timeout_ms;
            continue;
        }
        started = true;
        size_t ll = (size_t)(nl - (m->buf + m->rpos));
        const char *line = m->buf + m->rpos;
        size_t tl = ll;
        if (tl && line[tl - 1] == '\r') tl--;
        m->rpos += ll + 1;
        /* a literal announced at the end: {n} or {n+} */
        size_t litlen = 0;
        bool lit = false;
        if (tl >= 3 && line[tl - 1] == '}') {
            size_t i = tl - 2;
            if (line[i] == '+') i--;
            size_t e = i + 1;
            while (i > 0 && isdigit((unsigned char)line[i])) i--;
            if (line[i] == '{' && e - i > 1 && e - i < 12) {
                lit = true;
                litlen = strtoull(line + i + 1, NULL, 10);
                if (text_add(m, line, i) < 0 || text_add(m, "{}", 2) < 0) return -1;
            }
        }
        if (!lit) {
            if (text_add(m, line, tl) < 0) return -1;
            return 0;
        }
        if (litlen > 512u * 1024u * 1024u) return -1;
        while (m->wpos - m->rpos < litlen) {
            /* grow so the whole literal fits */
            if (m->cap - m->rpos < litlen + 65536) {
                size_t have = m->wpos - m->rpos;
                memmove(m->buf, m->buf + m->rpos, have);
                m->rpos = 0;
                m->wpos = have;
                if (m->cap < litlen + 131072) {
                    char *nb = realloc(m->buf, litlen + 131072);
                    if (!nb) return -1;
                    m->buf = nb;
                    m->cap = litlen + 131072;
                }
            }
            if (fill(m, deadline, false)) return -1;
            deadline = now_ms() + timeout_ms;
        }
        if (m->n_lits == m->lit_cap) {
            int nc = m->lit_cap ? m->lit_cap * 2 : 4;
            char **nl2 = realloc(m->lits, (size_t)nc * sizeof *nl2);
            if (!nl2) return -1;
            m->lits = nl2;
            size_t *ln = realloc(m->lit_lens, (size_t)nc * sizeof *ln);
            if (!ln) return -1;
            m->lit_lens = ln;
            m->lit_cap = nc;
        }
        char *l = malloc(litlen + 1);
        if (!l) return -1;
        memcpy(l, m->buf + m->rpos, litlen);
        l[litlen] = 0;
        m->rpos += litlen;
        m->lits[m->n_lits] = l;
        m->lit_lens[m->n_lits++] = litlen;
    }
}

static void deliver(imap *m, imap_untagged_cb cb, void *user)
{
    track(m);
    if (!strncasecmp(m->text, "* CAPABILITY ", 13)) {
        snprintf(m->caps, sizeof m->caps, " %s ", m->text + 13);
    }
    if (!cb) return;
    imap_resp r = {.text = m->text, .text_len = m->tlen, .lits = (const char *const *)m->lits,
                   .lit_lens = m->lit_lens, .n_lits = m->n_lits};
    cb(user, &r);
}

/* Reads until the tagged answer for tag. */
static int until_tagged(imap *m, const char *tag, imap_untagged_cb cb, void *user, char *err,
                        size_t errlen, bool expect_cont)
{
    size_t tl = strlen(tag);
    for (;;) {
        if (read_resp(m, m->timeout_ms, false)) {
            snprintf(err, errlen, "connection lost or no answer within %ld ms", m->timeout_ms);
            return -1;
        }
        if (expect_cont && m->text[0] == '+') return 2;
        if (!strncmp(m->text, tag, tl) && m->text[tl] == ' ') {
            const char *st = m->text + tl + 1;
            if (!strncasecmp(st, "OK", 2)) return 0;
            snprintf(err, errlen, "%s", st);
            return 1;
        }
        if (m->text[0] == '*') deliver(m, cb, user);
        if (!strncasecmp(m->text, "* BYE", 5)) {
            snprintf(err, errlen, "server closed the session: %s", m->text + 2);
            return -1;
        }
    }
}

int imap_cmd(imap *m, imap_untagged_cb cb, void *user, char *err, size_t errlen,
             const char *fmt, ...)
{
    char tag[16];
    snprintf(tag, sizeof tag, "A%u", ++m->tag);
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL;
    int n = vasprintf(&cmd, fmt, ap);
    va_end(ap);
    if (n < 0) { snprintf(err, errlen, "out of memory"); return -1; }
    char *line = NULL;
    n = asprintf(&line, "%s %s\r\n", tag, cmd);
    free(cmd);
    if (n < 0) { snprintf(err, errlen, "out of memory"); return -1; }
    int rc = send_all(m, line, (size_t)n);
    free(line);
    if (rc) { snprintf(err, errlen, "could not send to the server"); return -1; }
    return until_tagged(m, tag, cb, user, err, errlen, false);
}

int imap_append(imap *m, const char *mailbox_quoted, const char *flags, const char *data,
                size_t len, char *err, size_t errlen)
{
    char tag[16];
    snprintf(tag, sizeof tag, "A%u", ++m->tag);
    char *line = NULL;
    int n = asprintf(&line, "%s APPEND %s (%s) {%zu}\r\n", tag, mailbox_quoted, flags ? flags : "", len);
    if (n < 0) { snprintf(err, errlen, "out of memory"); return -1; }
    int rc = send_all(m, line, (size_t)n);
    free(line);
    if (rc) { snprintf(err, errlen, "could not send to the server"); return -1; }
    rc = until_tagged(m, tag, NULL, NULL, err, errlen, true);
    if (rc != 2) return rc;
    if (send_all(m, data, len) || send_all(m, "\r\n", 2)) {
        snprintf(err, errlen, "could not send to the server");
        return -1;
    }
    return until_tagged(m, tag, NULL, NULL, err, errlen, false);
}

int imap_idle(imap *m, long timeout_ms, char *err, size_t errlen)
{
    char tag[16];
    snprintf(tag, sizeof tag, "A%u", ++m->tag);
    char line[32];
    int n = snprintf(line, sizeof line, "%s IDLE\r\n", tag);
    if (send_all(m, line, (size_t)n)) { snprintf(err, errlen, "could not send IDLE"); return -1; }
    int rc = until_tagged(m, tag, NULL, NULL, err, errlen, true);
    if (rc != 2) return rc == 0 ? 0 : -1;       /* answered without idling */
    int64_t deadline = now_ms() + timeout_ms;
    int result = 0;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) break;
        int r = read_resp(m, (long)left, true);
        if (r == 1) break;                       /* woken */
        if (r < 0) {
            if (now_ms() >= deadline) break;     /* timeout: re-issue */
            snprintf(err, errlen, "connection lost while idling");
            return -1;
        }
        track(m);
        if (strstr(m->text, " EXISTS") || strstr(m->text, " RECENT")) { result = 1; break; }
        if (!strncasecmp(m->text, "* BYE", 5)) {
            snprintf(err, errlen, "server closed the session: %s", m->text + 2);
            return -1;
        }
    }
    if (send_all(m, "DONE\r\n", 6)) { snprintf(err, errlen, "could not send DONE"); return -1; }
    rc = until_tagged(m, tag, NULL, NULL, err, errlen, false);
    if (rc < 0) return -1;
    return result;
}

bool imap_has_cap(imap *m, const char *cap)
{
    char k[64];
    snprintf(k, sizeof k, " %s ", cap);
    return strcasestr(m->caps, k) != NULL;
}

uint64_t imap_resp_num(const imap_resp *r, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = r->text; (p = strcasestr(p, key)); p += kl) {
        if (p != r->text && isalnum((unsigned char)p[-1])) continue;
        const char *q = p + kl;
        if (*q != ' ') continue;
        q++;
        if (!isdigit((unsigned char)*q)) continue;
        return strtoull(q, NULL, 10);
    }
    return 0;
}

char *imap_quote_mailbox(const char *name)
{
    /* modified UTF-7 (RFC 3501 5.1.3) for non-ASCII, then an IMAP quoted string */
    size_t n = strlen(name);
    char *out = malloc(n * 6 + 8);
    if (!out) return NULL;
    char *w = out;
    *w++ = '"';
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    const unsigned char *p = (const unsigned char *)name;
    while (*p) {
        if (*p >= 0x20 && *p < 0x7f) {
            if (*p == '&') { *w++ = '&'; *w++ = '-'; p++; continue; }
            if (*p == '"' || *p == '\\') *w++ = '\\';
            *w++ = (char)*p++;
            continue;
        }
        /* a run of non-ASCII: UTF-8 -> UTF-16 -> modified base64 */
        *w++ = '&';
        uint32_t bits = 0;
        int nb = 0;
        while (*p && !(*p >= 0x20 && *p < 0x7f)) {
            uint32_t cp = *p++;
            int extra = cp >= 0xF0 ? 3 : cp >= 0xE0 ? 2 : cp >= 0xC0 ? 1 : 0;
            cp &= extra == 3 ? 0x07 : extra == 2 ? 0x0F : extra == 1 ? 0x1F : 0x7F;
            while (extra-- > 0 && (*p & 0xC0) == 0x80) cp = (cp << 6) | (*p++ & 0x3F);
            uint16_t u[2];
            int nu = 1;
            if (cp >= 0x10000) { cp -= 0x10000; u[0] = (uint16_t)(0xD800 | (cp >> 10)); u[1] = (uint16_t)(0xDC00 | (cp & 0x3FF)); nu = 2; }
            else u[0] = (uint16_t)cp;
            for (int i = 0; i < nu; i++) {
                bits = (bits << 16) | u[i];
                nb += 16;
                while (nb >= 6) { nb -= 6; *w++ = b64[(bits >> nb) & 0x3F]; }
            }
        }
        if (nb) *w++ = b64[(bits << (6 - nb)) & 0x3F];
        *w++ = '-';
    }
    *w++ = '"';
    *w = 0;
    return out;
}

static int abort_cb(void *u, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt; (void)dn; (void)ut; (void)un;
    const int *quit = u;
    return quit && __atomic_load_n(quit, __ATOMIC_RELAXED) ? 1 : 0;
}

imap *imap_connect(const imap_opts *o, char *err, size_t errlen)
{
    imap *m = calloc(1, sizeof *m);
    if (!m) { snprintf(err, errlen, "out of memory"); return NULL; }
    m->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 45000;
    m->exists = -1;
    m->wake_fd = o->wake_fd;
    m->c = curl_easy_init();
    if (!m->c) { free(m); snprintf(err, errlen, "curl_easy_init failed"); return NULL; }
    /* connect to the server root: the mailbox is SELECTed by us */
    char url[1024];
    snprintf(url, sizeof url, "%s", o->url);
    char *scheme_end = strstr(url, "://");
    if (scheme_end) {
        char *slash = strchr(scheme_end + 3, '/');
        if (slash) slash[1] = 0;
    }
    curl_easy_setopt(m->c, CURLOPT_URL, url);
    curl_easy_setopt(m->c, CURLOPT_USERNAME, o->user ? o->user : "");
    if (o->bearer) {
        curl_easy_setopt(m->c, CURLOPT_XOAUTH2_BEARER, o->bearer);
        curl_easy_setopt(m->c, CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
    } else {
        curl_easy_setopt(m->c, CURLOPT_PASSWORD, o->password ? o->password : "");
    }
    curl_easy_setopt(m->c, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(m->c, CURLOPT_CONNECTTIMEOUT_MS, m->timeout_ms);
    curl_easy_setopt(m->c, CURLOPT_TIMEOUT_MS, m->timeout_ms);
    curl_easy_setopt(m->c, CURLOPT_NOSIGNAL, 1L);
    if (o->require_tls) curl_easy_setopt(m->c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (o->quit) {                          /* a stop does not wait for a hanging connect */
        curl_easy_setopt(m->c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(m->c, CURLOPT_XFERINFOFUNCTION, abort_cb);
        curl_easy_setopt(m->c, CURLOPT_XFERINFODATA, (void *)o->quit);
    }
    CURLcode rc = curl_easy_perform(m->c);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "connect/login to %s: %s", url, curl_easy_strerror(rc));
        imap_close(m);
        return NULL;
    }
    curl_socket_t s = CURL_SOCKET_BAD;
    if (curl_easy_getinfo(m->c, CURLINFO_ACTIVESOCKET, &s) != CURLE_OK || s == CURL_SOCKET_BAD) {
        snprintf(err, errlen, "no socket after login");
        imap_close(m);
        return NULL;
    }
    m->sock = s;
    if (imap_cmd(m, NULL, NULL, err, errlen, "CAPABILITY") != 0) {
        imap_close(m);
        return NULL;
    }
    return m;
}

void imap_close(imap *m)
{
    if (!m) return;
    if (m->c) curl_easy_cleanup(m->c);
    resp_reset(m);
    free(m->lits);
    free(m->lit_lens);
    free(m->text);
    free(m->buf);
    free(m);
}
