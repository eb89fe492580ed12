/* util.c -- names of kinds and strategies, error strings, time and UUIDv7. */
#include "base/acdm.h"
#include "base/log.h"
#include <jansson.h>

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <time.h>
#include <sys/random.h>
#include <sys/stat.h>

static const char *const kind_names[ACDM_KIND__COUNT] = {
    "voice", "chat", "email", "sms", "whatsapp", "callback"};
static const char *const strat_names[ACDM_STRAT__COUNT] = {
    "linear", "round-robin", "longest-idle", "least-occupied",
    "fewest-handled", "random", "ring-all"};

const char *acdm_kind_name(acdm_kind k)
{
    return (unsigned)k < ACDM_KIND__COUNT ? kind_names[k] : "?";
}

int acdm_kind_parse(const char *s)
{
    for (int i = 0; s && i < ACDM_KIND__COUNT; i++)
        if (!strcmp(s, kind_names[i])) return i;
    return -1;
}

const char *acdm_strategy_name(acdm_strategy s)
{
    return (unsigned)s < ACDM_STRAT__COUNT ? strat_names[s] : "?";
}

int acdm_strategy_parse(const char *s)
{
    for (int i = 0; s && i < ACDM_STRAT__COUNT; i++)
        if (!strcmp(s, strat_names[i])) return i;
    return -1;
}

const char *acdm_strerror(int err)
{
    switch (err) {
    case ACDM_OK: return "success";
    case ACDM_EINVAL: return "invalid argument";
    case ACDM_ENOENT: return "not found";
    case ACDM_EEXIST: return "already exists";
    case ACDM_ESTATE: return "not allowed in the current state";
    case ACDM_ECLOSED: return "queue closed";
    case ACDM_ENOMEM: return "out of memory";
    case ACDM_EPERM: return "permission denied";
    case ACDM_EIO: return "storage or I/O error";
    case ACDM_EFULL: return "no capacity";
    case ACDM_EABI: return "plugin ABI mismatch";
    case ACDM_EPENDING: return "pending";
    default: return "unknown error";
    }
}

int64_t acdm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Random bytes for ids, fetched from the kernel 4 KiB at a time: one getrandom per ~400 ids
 * instead of one syscall per bericht (the ingest path's cost). Loop thread only, like the ids. */
static void id_random(unsigned char *dst, size_t n)
{
    static unsigned char pool[4096];
    static size_t left;
    if (left < n) {
        ssize_t got = getrandom(pool, sizeof pool, 0);
        /* getrandom on Linux >= 3.17 does not fail for this size; keep ids unique anyway */
        if (got != (ssize_t)sizeof pool) memset(pool, 0, sizeof pool);
        left = sizeof pool;
    }
    memcpy(dst, pool + sizeof pool - left, n);
    left -= n;
}

void acdm_uuidv7(char out[37], int64_t now_ms)
{
    static int64_t last_ms;
    static uint16_t seq;
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    id_random(b + 6, 10);
    /* monotonic within a millisecond: a 12-bit counter in rand_a (RFC 9562 method 1) */
    if (now_ms <= last_ms) { now_ms = last_ms; seq++; if (seq > 0xfff) { now_ms++; seq = 0; } }
    else seq = (uint16_t)((b[6] << 4 | b[7] >> 4) & 0x7ff);
    last_ms = now_ms;
    for (int i = 0; i < 6; i++) b[i] = (unsigned char)((uint64_t)now_ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | ((seq >> 8) & 0x0f));
    b[7] = (unsigned char)(seq & 0xff);
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

const char *acdm_json_text(const json_t *j, char *buf, size_t cap, char **heap)
{
    *heap = NULL;
    if (!j) return NULL;
    size_t n = cap ? json_dumpb(j, buf, cap - 1, JSON_COMPACT) : 0;
    if (n && n < cap) {
        buf[n] = '\0';
        return buf;
    }
    return *heap = json_dumps(j, JSON_COMPACT);
}

void acdm_sb_on(acdm_sbuf *b, char *buf, size_t cap)
{
    memset(b, 0, sizeof *b);
    if (!buf || !cap) return;
    b->p = buf;
    b->cap = cap;
    b->borrowed = true;
    buf[0] = '\0';
}

void acdm_sb_add(acdm_sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = b->borrowed ? malloc(cap) : realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        if (b->borrowed) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
        b->borrowed = false;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void acdm_sb_str(acdm_sbuf *b, const char *s) { acdm_sb_add(b, s, strlen(s)); }

#define LIT(b, s) acdm_sb_add((b), (s), sizeof(s) - 1)

void acdm_sb_jstr(acdm_sbuf *b, const char *s)
{
    if (!s) { LIT(b, "null"); return; }
    static const char hex[] = "0123456789abcdef";
    LIT(b, "\"");
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        acdm_sb_add(b, run, (size_t)(p - run));
        char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
        if (c == '"' || c == '\\') { esc[1] = (char)c; esc[2] = 0; }
        acdm_sb_str(b, esc);
        run = p + 1;
    }
    acdm_sb_str(b, run);
    LIT(b, "\"");
}

void acdm_sb_int(acdm_sbuf *b, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%lld", (long long)v);
    acdm_sb_add(b, t, (size_t)n);
}

void acdm_sb_bool(acdm_sbuf *b, bool v) { if (v) LIT(b, "true"); else LIT(b, "false"); }

void acdm_sb_free(acdm_sbuf *b)
{
    if (!b->borrowed) free(b->p);
    memset(b, 0, sizeof *b);
}

void acdm_jobj_init(acdm_jobj *o, char *buf, size_t cap)
{
    acdm_sb_on(&o->sb, buf, cap);
    o->fields = 0;
    LIT(&o->sb, "{");
}

static void jobj_key(acdm_jobj *o, const char *key)
{
    if (o->fields++) LIT(&o->sb, ",");
    acdm_sb_jstr(&o->sb, key);
    LIT(&o->sb, ":");
}

void acdm_jobj_str(acdm_jobj *o, const char *key, const char *val)
{
    if (!val) return;
    jobj_key(o, key);
    acdm_sb_jstr(&o->sb, val);
}

void acdm_jobj_int(acdm_jobj *o, const char *key, int64_t v)
{
    jobj_key(o, key);
    acdm_sb_int(&o->sb, v);
}

void acdm_jobj_bool(acdm_jobj *o, const char *key, bool v)
{
    jobj_key(o, key);
    acdm_sb_bool(&o->sb, v);
}

const char *acdm_jobj_end(acdm_jobj *o)
{
    LIT(&o->sb, "}");
    return o->sb.oom ? NULL : o->sb.p;
}

bool acdm_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) { p++; continue; }
        int k;
        unsigned cp, min;
        if ((c & 0xe0) == 0xc0) { k = 1; cp = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { k = 2; cp = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { k = 3; cp = c & 0x07; min = 0x10000; }
        else return false;
        if (end - p <= k) return false;
        for (int i = 1; i <= k; i++) {
            if ((p[i] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        p += k + 1;
    }
    return true;
}

size_t acdm_utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        n += (*p & 0xc0) != 0x80;
    return n;
}

int acdm_log_level = ACDM_LOG_INFO;

int acdm_log_json;
static int log_journal;   /* "<N>" priority prefixes for journald */

void acdm_log_detect_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    log_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && !fstat(2, &st) &&
                  (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int acdm_log_format_parse(const char *s)
{
    if (s && !strcmp(s, "text")) return 0;
    if (s && !strcmp(s, "json")) return 1;
    return -1;
}

int acdm_log_level_parse(const char *s)
{
    static const char *const n[] = {"error", "warn", "notice", "info", "debug"};
    for (int i = 0; s && i < 5; i++)
        if (!strcasecmp(s, n[i])) return i;
    return -1;
}

/* Repeated lines: a line of the same origin (subsystem and format) is printed at most
 * LOG_BURST times per LOG_WINDOW_MS; the rest are counted and summarised once the window is
 * over ("... repeated N times"), so a client or a failing disk cannot fill the disk with logs. */
#define LOG_BURST 20
#define LOG_WINDOW_MS 10000
#define LOG_SLOTS 128
typedef struct {
    const char *fmt;            /* NULL: free */
    char who[48];
    int level;
    int64_t win_start;
    unsigned n;                 /* lines printed in this window */
    unsigned long long suppressed;
} log_slot;
static log_slot log_slots[LOG_SLOTS];
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t log_mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* One JSON line: the message formatted, then escaped (json_dumps of a string would pull jansson
 * into every caller's log path; this is the whole of JSON string escaping). */
static void log_json(const char *ts, const char *tz, long ms, int lv, const char *who, const char *fmt, va_list ap)
{
    static const char *const name[] = {"error", "warn", "notice", "info", "debug"};
    static const int prio[] = {3, 4, 5, 6, 7};   /* syslog: err, warning, notice, info, debug */
    char msg[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "{\"ts\":\"%s.%03ld%s\",\"level\":\"%s\",\"priority\":%d,\"who\":\"", ts, ms, tz, name[lv], prio[lv]);
    for (int part = 0; part < 2; part++) {
        for (const unsigned char *p = (const unsigned char *)(part ? msg : who); *p; p++) {
            if (*p == '"' || *p == '\\') fprintf(stderr, "\\%c", *p);
            else if (*p == '\n') fputs("\\n", stderr);
            else if (*p == '\t') fputs("\\t", stderr);
            else if (*p < 0x20 || *p == 0x7f) fprintf(stderr, "\\u%04x", *p);
            else fputc(*p, stderr);
        }
        fputs(part ? "\"}\n" : "\",\"msg\":\"", stderr);
    }
}

static void log_line(int level, const char *who, const char *fmt, va_list ap)
{
    static const char *const tag[] = {"ERR", "WRN", "NOT", "INF", "DBG"};
    char ts[32];
    struct timespec now;
    struct tm tm;
    int lv = level < 0 ? 0 : level > 4 ? 4 : level;
    clock_gettime(CLOCK_REALTIME, &now);
    localtime_r(&now.tv_sec, &tm);
    flockfile(stderr);
    if (log_journal) fprintf(stderr, "<%d>", lv + 3);   /* ERR=3 .. DEBUG=7, as syslog */
    if (acdm_log_json) {
        char tz[8];
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        strftime(tz, sizeof tz, "%z", &tm);   /* +0100 -> +01:00 (RFC 3339) */
        if (strlen(tz) == 5) { tz[6] = 0; tz[5] = tz[4]; tz[4] = tz[3]; tz[3] = ':'; }
        log_json(ts, tz, now.tv_nsec / 1000000, lv, who ? who : "core", fmt, ap);
    } else {
        strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ld %s [%s] ", ts, now.tv_nsec / 1000000, tag[lv], who ? who : "core");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
    funlockfile(stderr);
}

static void log_plain(int level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_plain(int level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(level, who, fmt, ap);
    va_end(ap);
}

/* Under log_mu: prints the summary of what slot x held back. */
static void log_summary(log_slot *x)
{
    if (!x->suppressed) return;
    log_plain(x->level, x->who, "... the line above repeated %llu more times in %d s (\"%.80s\")",
              x->suppressed, LOG_WINDOW_MS / 1000, x->fmt);
    x->suppressed = 0;
}

/* One line, limited per origin: `origin` is the format the line's caller wrote (a plugin's
 * own format when the host prints the line it formatted), so one noisy call site is held back
 * without silencing the other lines of the same subsystem. */
static void log_limited(int level, const char *who, const char *origin, const char *fmt, va_list ap)
{
    const char *w = who ? who : "core";
    uintptr_t hv = (uintptr_t)origin;
    for (const char *p = w; *p; p++) hv = hv * 31u + (unsigned char)*p;
    int64_t now = log_mono_ms();
    pthread_mutex_lock(&log_mu);
    log_slot *x = &log_slots[(hv >> 3) % LOG_SLOTS];
    if (x->fmt != origin || strncmp(x->who, w, sizeof x->who - 1)) {
        if (x->fmt) log_summary(x);
        x->fmt = origin;
        snprintf(x->who, sizeof x->who, "%s", w);
        x->win_start = now;
        x->n = 0;
    } else if (now - x->win_start >= LOG_WINDOW_MS) {
        log_summary(x);
        x->win_start = now;
        x->n = 0;
    }
    x->level = level;
    if (x->n >= LOG_BURST) {
        x->suppressed++;
        pthread_mutex_unlock(&log_mu);
        return;
    }
    x->n++;
    log_line(level, who, fmt, ap);
    pthread_mutex_unlock(&log_mu);
}

void acdm_log_raw(int level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_limited(level, who, fmt, fmt, ap);
    va_end(ap);
}

void acdm_log_origin(int level, const char *who, const char *origin, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_limited(level, who, origin ? origin : fmt, fmt, ap);
    va_end(ap);
}

void acdm_log_flush_repeats(void)
{
    pthread_mutex_lock(&log_mu);
    for (size_t i = 0; i < LOG_SLOTS; i++)
        if (log_slots[i].fmt) log_summary(&log_slots[i]);
    pthread_mutex_unlock(&log_mu);
}
