/* config.c -- reads and validates conf/acdm.json plus its acdm.d fragments, driven by settings tables. */
#include "config/config.h"
#include "base/log.h"
#include "config/schedule.h"

#include <dirent.h>
#include <errno.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_CLOSED_TEXT "Deze wachtrij is op dit moment gesloten. Probeer het later opnieuw."
#define MAX_SECONDS (30 * 86400) /* upper bound of every *_s setting: 30 days */
#define MAX_TEXT 4096            /* longest closed/emergency text, title or label */

/* ------------------------------------------------------------------ the loading context */

/* The top-level lists; every element remembers the file and index it came from. */
enum { L_SCHEDULES, L_QUEUES, L_AGENTS, L_CHANNELS, L_TOPICS, L_REASONS, L_SNIPPETS, L__COUNT, L_NONE = -1 };
static const char *const list_key[L__COUNT] = {
    "schedules", "queues", "agents", "channels", "topics", "reason_codes", "snippets"};

typedef struct { const char *file; size_t index; } origin;

typedef struct {
    char *err;
    size_t errlen, used;
    int nerr, dropped;
    bool oom, syntax;        /* out of memory; some file did not parse */
    const char *file;        /* file being read */
    char path[512];          /* JSON path of the value being read */
    origin *orig[L__COUNT];  /* parallel to the config's arrays */
    size_t norig[L__COUNT];
    const char *set_by[32];  /* top-level setting index -> file that set it */
    char **files;            /* file names owned by the load */
    size_t nfiles;
} ctx;

#define ERR_RESERVE 64 /* room kept for the "N more" note */

static void add_line(ctx *c, const char *line)
{
    c->nerr++;
    if (!c->err || c->errlen == 0) return;
    size_t n = strlen(line), sep = c->used ? 1 : 0;
    if (c->dropped || c->used + sep + n + ERR_RESERVE >= c->errlen) {
        c->dropped++;
        return;
    }
    if (sep) c->err[c->used++] = '\n';
    memcpy(c->err + c->used, line, n);
    c->used += n;
    c->err[c->used] = '\0';
}

static void verr_at(ctx *c, const char *file, const char *path, const char *fmt, va_list ap)
{
    char msg[768], line[1400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (path && *path) snprintf(line, sizeof line, "%s: %s: %s", file, path, msg);
    else snprintf(line, sizeof line, "%s: %s", file, msg);
    for (char *p = line; *p; p++) /* one problem per line, whatever the input holds */
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    add_line(c, line);
}

__attribute__((format(printf, 4, 5)))
static void err_at(ctx *c, const char *file, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr_at(c, file, path, fmt, ap);
    va_end(ap);
}

/* An error at the value being read (c->file, c->path). */
__attribute__((format(printf, 2, 3)))
static void err(ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr_at(c, c->file, c->path[0] ? c->path : "(top level)", fmt, ap);
    va_end(ap);
}

static size_t path_key(ctx *c, const char *key)
{
    size_t len = strlen(c->path);
    snprintf(c->path + len, sizeof c->path - len, "%s%.80s", len ? "." : "", key);
    return len;
}

static size_t path_idx(ctx *c, size_t i)
{
    size_t len = strlen(c->path);
    snprintf(c->path + len, sizeof c->path - len, "[%zu]", i);
    return len;
}

static void path_pop(ctx *c, size_t len) { c->path[len] = '\0'; }

static char *xstrdup(ctx *c, const char *s)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) c->oom = true;
    return d;
}

static void *xcalloc(ctx *c, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) c->oom = true;
    return p;
}

static const char *jtype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Edit distance, for "did you mean" hints. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 99;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The candidate nearest to s, or NULL when none is near enough to be a typo. */
static const char *nearest(const char *s, const char *const *cand, size_t n)
{
    const char *best = NULL;
    size_t bd = 99, len = strlen(s);
    size_t limit = len < 6 ? 2 : len / 3 + 1;
    for (size_t i = 0; i < n; i++) {
        if (!cand[i]) continue;
        size_t d = distance(s, cand[i]);
        if (d < bd) { bd = d; best = cand[i]; }
    }
    return bd <= limit ? best : NULL;
}

static void join(char *out, size_t len, const char *const *names, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < len; i++) {
        int w = snprintf(out + used, len - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
}

/* ------------------------------------------------------------------ value checks */

bool acdm_config_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ACDM_NAME_MAX) return false;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

static bool check_name(ctx *c, const char *s)
{
    if (acdm_config_name_ok(s)) return true;
    if (!*s) err(c, "must not be empty");
    else err(c, "invalid name \"%.80s\": use only letters, digits, '_', '.' and '-', at most %d characters",
             s, ACDM_NAME_MAX);
    return false;
}

static bool check_log_level(ctx *c, const char *s)
{
    if (acdm_log_level_parse(s) >= 0) return true;
    err(c, "unknown log level \"%.80s\" (expected one of: error, warn, notice, info, debug)", s);
    return false;
}

static bool check_log_format(ctx *c, const char *s)
{
    if (acdm_log_format_parse(s) >= 0) return true;
    err(c, "unknown log format \"%.80s\" (expected text or json)", s);
    return false;
}

static bool check_timezone(ctx *c, const char *s)
{
    if (acdm_timezone_exists(s)) return true;
    err(c, "unknown time zone \"%.80s\" (expected a name from /usr/share/zoneinfo, e.g. \"Europe/Amsterdam\")", s);
    return false;
}

static bool check_nonempty(ctx *c, const char *s)
{
    if (*s && strlen(s) <= MAX_TEXT) return true;
    err(c, *s ? "too long (at most %d bytes)" : "must not be empty", MAX_TEXT);
    return false;
}

static bool check_text(ctx *c, const char *s)
{
    if (strlen(s) <= MAX_TEXT) return true;
    err(c, "too long (at most %d bytes)", MAX_TEXT);
    return false;
}

static int two(const char *p)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* "HH:MM" -> minutes, or -1; 24:00 only when end is set. */
static int parse_hhmm(const char *p, bool end)
{
    int h = two(p), m = two(p + 3);
    if (h < 0 || m < 0 || p[2] != ':' || m > 59) return -1;
    if (h == 24 && m == 0 && end) return 1440;
    if (h > 23) return -1;
    return h * 60 + m;
}

static bool date_ok(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return false;
    int y1 = two(s), y2 = two(s + 2), mo = two(s + 5), d = two(s + 8);
    if (y1 < 0 || y2 < 0 || mo < 1 || mo > 12 || d < 1) return false;
    int y = y1 * 100 + y2;
    if (y < 1970) return false;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int max = mdays[mo - 1];
    if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) max = 29;
    return d <= max;
}

/* ------------------------------------------------------------------ settings tables */

typedef enum {
    S_STR,        /* char *; check() may refine */
    S_NAME,       /* char *, [A-Za-z0-9_.-]{1,63} */
    S_INT,        /* int in [min, max] */
    S_BOOL,       /* bool */
    S_STRATEGY,   /* acdm_strategy */
    S_LISTEN,     /* "host:port" or {"host","port"}: char * at off, int at off_n */
    S_SKILLS,     /* acdm_skill * at off, size_t at off_n */
    S_NAMES,      /* char ** at off, size_t at off_n */
    S_CAPACITY,   /* int[ACDM_KIND__COUNT] */
    S_CLOSED_TEXT,/* json_t * object: "default" or kind -> string */
    S_JSON_OBJECT,/* json_t * object, any content */
    S_WEEK,       /* acdm_interval[7][MAX] at off, uint8_t[7] at off_n */
    S_DATES,      /* char (*)[11] at off, size_t at off_n */
    S_LIST,       /* top-level array of objects (table sub) at off, size_t at off_n */
    S_TOPICS,     /* top-level array of strings: char ** at off, size_t at off_n */
    S_OBJECT      /* one object (table sub) embedded in the struct at off */
} stype;

enum { F_REQUIRED = 1 };

typedef struct table table;

typedef struct {
    const char *name;
    stype type;
    size_t off, off_n;
    const char *def_s;       /* default of strings */
    int def_i;               /* default of ints, bools and enums */
    int min, max;            /* range of ints */
    unsigned flags;
    bool (*check)(ctx *c, const char *s); /* extra validator of strings */
    const table *sub;        /* element table of S_LIST */
    int list;                /* L_* of S_LIST and S_TOPICS */
} setting;

struct table {
    const char *what;        /* "queue", "agent", ... for messages */
    const setting *s;
    size_t n;
    size_t size;             /* size of one element */
    void (*post)(ctx *c, void *obj, const bool *seen); /* checks across fields; may set defaults */
};

#define FLD(base, off, T) ((T *)(void *)((char *)(base) + (off)))
typedef acdm_interval week_row[ACDM_MAX_INTERVALS];
typedef char date_str[11];

#define STR(k, st, f, d, chk) {.name = k, .type = S_STR, .off = offsetof(st, f), .def_s = d, .check = chk}
#define NAME(k, st, f, fl) {.name = k, .type = S_NAME, .off = offsetof(st, f), .flags = fl}
#define INT(k, st, f, d, lo, hi) {.name = k, .type = S_INT, .off = offsetof(st, f), .def_i = d, .min = lo, .max = hi}
#define BOOL(k, st, f, d) {.name = k, .type = S_BOOL, .off = offsetof(st, f), .def_i = d}
#define PAIR(k, t, st, f, fn) {.name = k, .type = t, .off = offsetof(st, f), .off_n = offsetof(st, fn)}
#define OF(k, t, st, f) {.name = k, .type = t, .off = offsetof(st, f)}
#define LIST(k, f, fn, tab, l) {.name = k, .type = S_LIST, .off = offsetof(acdm_config, f), \
    .off_n = offsetof(acdm_config, fn), .sub = tab, .list = l}
#define NSET(a) (sizeof(a) / sizeof((a)[0]))

static const int default_capacity[ACDM_KIND__COUNT] = {1, 3, 5, 3, 3, 1};

static const setting skill_settings[] = {
    NAME("name", acdm_skill, name, F_REQUIRED),
    INT("level", acdm_skill, level, 1, 1, 100),
};
static const table skill_table = {"skill", skill_settings, NSET(skill_settings), sizeof(acdm_skill), NULL};

static const setting schedule_settings[] = {
    NAME("name", acdm_schedule_def, name, F_REQUIRED),
    PAIR("week", S_WEEK, acdm_schedule_def, week, n_week),
    PAIR("holidays", S_DATES, acdm_schedule_def, holidays, n_holidays),
};

static void queue_post(ctx *c, void *obj, const bool *seen);
static const setting queue_settings[] = {
    NAME("name", acdm_queue_def, name, F_REQUIRED),
    STR("title", acdm_queue_def, title, NULL, check_text),
    OF("strategy", S_STRATEGY, acdm_queue_def, strategy),
    INT("priority", acdm_queue_def, priority, 0, 0, 100),
    INT("sl_target_pct", acdm_queue_def, sl_target_pct, 80, 0, 100),
    INT("sl_seconds", acdm_queue_def, sl_seconds, 20, 0, MAX_SECONDS),
    BOOL("closed", acdm_queue_def, closed, false),
    BOOL("emergency", acdm_queue_def, emergency, false),
    STR("emergency_text", acdm_queue_def, emergency_text, NULL, check_text),
    NAME("schedule", acdm_queue_def, schedule, 0),
    INT("max_wait_s", acdm_queue_def, max_wait_s, 0, 0, MAX_SECONDS),
    NAME("overflow", acdm_queue_def, overflow, 0),
    NAME("fallback", acdm_queue_def, fallback, 0),
    INT("wrapup_s", acdm_queue_def, wrapup_s, 30, 0, MAX_SECONDS),
    INT("offer_timeout_s", acdm_queue_def, offer_timeout_s, 20, 0, MAX_SECONDS),
    INT("quick_drop_s", acdm_queue_def, quick_drop_s, 5, 0, MAX_SECONDS),
    PAIR("skills", S_SKILLS, acdm_queue_def, skills, n_skills),
    INT("relax_after_s", acdm_queue_def, relax_after_s, 0, 0, MAX_SECONDS),
    OF("closed_text", S_CLOSED_TEXT, acdm_queue_def, closed_text),
};

static void agent_post(ctx *c, void *obj, const bool *seen);
static bool check_phone(ctx *c, const char *s);
static const setting agent_settings[] = {
    NAME("id", acdm_agent_def, id, F_REQUIRED),
    STR("name", acdm_agent_def, name, NULL, check_text),
    PAIR("queues", S_NAMES, acdm_agent_def, queues, n_queues),
    PAIR("skills", S_SKILLS, acdm_agent_def, skills, n_skills),
    OF("capacity", S_CAPACITY, acdm_agent_def, capacity),
    BOOL("voice_blocks", acdm_agent_def, voice_blocks, true),
    STR("phone", acdm_agent_def, phone, NULL, check_phone),
    OF("endpoints", S_JSON_OBJECT, acdm_agent_def, endpoints),
};

static const setting channel_settings[] = {
    NAME("name", acdm_channel_def, name, F_REQUIRED),
    NAME("plugin", acdm_channel_def, plugin, F_REQUIRED),
    NAME("queue", acdm_channel_def, queue, 0),
    OF("config", S_JSON_OBJECT, acdm_channel_def, config),
};

static const setting reason_settings[] = {
    NAME("code", acdm_reason_def, code, F_REQUIRED),
    {.name = "label", .type = S_STR, .off = offsetof(acdm_reason_def, label), .flags = F_REQUIRED,
     .check = check_nonempty},
};

/* A snippet's language: a BCP 47 primary tag such as "nl" or "en" (2 or 3 lower-case letters). */
static bool check_language(ctx *c, const char *s)
{
    size_t n = strlen(s);
    bool ok = n >= 2 && n <= 3;
    for (size_t i = 0; ok && i < n; i++) ok = s[i] >= 'a' && s[i] <= 'z';
    if (!ok) err(c, "expected a language code such as \"nl\" or \"en\", got \"%.40s\"", s);
    return ok;
}

static const setting snippet_settings[] = {
    NAME("id", acdm_snippet_def, id, F_REQUIRED),
    {.name = "title", .type = S_STR, .off = offsetof(acdm_snippet_def, title), .flags = F_REQUIRED,
     .check = check_nonempty},
    {.name = "text", .type = S_STR, .off = offsetof(acdm_snippet_def, text), .flags = F_REQUIRED,
     .check = check_nonempty},
    NAME("queue", acdm_snippet_def, queue, 0),
    STR("language", acdm_snippet_def, language, NULL, check_language),
};

static const table schedule_table = {"schedule", schedule_settings, NSET(schedule_settings),
                                     sizeof(acdm_schedule_def), NULL};
static const table queue_table = {"queue", queue_settings, NSET(queue_settings),
                                  sizeof(acdm_queue_def), queue_post};
static const table agent_table = {"agent", agent_settings, NSET(agent_settings),
                                  sizeof(acdm_agent_def), agent_post};
static const table channel_table = {"channel", channel_settings, NSET(channel_settings),
                                    sizeof(acdm_channel_def), NULL};
static const table reason_table = {"reason code", reason_settings, NSET(reason_settings),
                                   sizeof(acdm_reason_def), NULL};
static const table snippet_table = {"snippet", snippet_settings, NSET(snippet_settings),
                                    sizeof(acdm_snippet_def), NULL};

/* An endpoint's address: printable, no spaces, at most 512 bytes. */
static bool endpoint_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 512) return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f) return false;
    return true;
}

/* An agent's phone: "register" (the softphone registers to acdm) or a SIP URI. */
static bool phone_ok(const char *s)
{
    if (!strcmp(s, "register")) return true;
    const char *rest = !strncmp(s, "sip:", 4) ? s + 4 : !strncmp(s, "sips:", 5) ? s + 5 : NULL;
    return rest && *rest && *rest != '@' && endpoint_ok(s);
}

static bool check_phone(ctx *c, const char *s)
{
    if (phone_ok(s)) return true;
    err(c, "expected \"register\" or a SIP URI such as \"sip:1001@10.0.0.5\", got \"%.80s\"", s);
    return false;
}

static bool check_url(ctx *c, const char *s)
{
    if ((!strncmp(s, "https://", 8) || !strncmp(s, "http://", 7)) && strlen(s) <= MAX_TEXT &&
        !strpbrk(s, " \t\r\n"))
        return true;
    err(c, "invalid URL \"%.80s\" (expected https://... or http://...)", s);
    return false;
}

static bool check_use_token(ctx *c, const char *s)
{
    if (!strcmp(s, "id_token") || !strcmp(s, "access_token")) return true;
    err(c, "expected \"id_token\" or \"access_token\", got \"%.40s\"", s);
    return false;
}

static void oidc_post(ctx *c, void *obj, const bool *seen);
static const setting oidc_settings[] = {
    {.name = "issuer", .type = S_STR, .off = offsetof(acdm_oidc_def, issuer), .flags = F_REQUIRED,
     .check = check_nonempty},
    {.name = "audience", .type = S_STR, .off = offsetof(acdm_oidc_def, audience), .flags = F_REQUIRED,
     .check = check_nonempty},
    STR("jwks_file", acdm_oidc_def, jwks_file, NULL, check_nonempty),
    STR("jwks_url", acdm_oidc_def, jwks_url, NULL, check_url),
    STR("role_claim", acdm_oidc_def, role_claim, "roles", check_nonempty),
    STR("agent_claim", acdm_oidc_def, agent_claim, "preferred_username", check_nonempty),
    {.name = "role_map", .type = S_JSON_OBJECT, .off = offsetof(acdm_oidc_def, role_map), .flags = F_REQUIRED},
    INT("leeway_s", acdm_oidc_def, leeway_s, 60, 0, 3600),
    STR("authorization_endpoint", acdm_oidc_def, authorization_endpoint, NULL, check_url),
    STR("token_endpoint", acdm_oidc_def, token_endpoint, NULL, check_url),
    STR("client_id", acdm_oidc_def, client_id, NULL, check_nonempty),
    STR("scope", acdm_oidc_def, scope, "openid profile", check_nonempty),
    STR("use_token", acdm_oidc_def, use_token, "id_token", check_use_token),
};
static const table oidc_table = {"oidc settings", oidc_settings, NSET(oidc_settings),
                                 sizeof(acdm_oidc_def), oidc_post};

static void screen_pop_post(ctx *c, void *obj, const bool *seen);
static const setting screen_pop_settings[] = {
    {.name = "url", .type = S_STR, .off = offsetof(acdm_screen_pop_def, url), .flags = F_REQUIRED,
     .check = check_url},
    INT("timeout_ms", acdm_screen_pop_def, timeout_ms, 2000, 100, 60000),
};
static const table screen_pop_table = {"screen-pop settings", screen_pop_settings,
                                       NSET(screen_pop_settings), sizeof(acdm_screen_pop_def),
                                       screen_pop_post};

static bool check_report_interval(ctx *c, const char *s)
{
    if (!strcmp(s, "15m") || !strcmp(s, "1h") || !strcmp(s, "1d")) return true;
    err(c, "expected \"15m\", \"1h\" or \"1d\", got \"%.40s\"", s);
    return false;
}

static bool check_dir(ctx *c, const char *s)
{
    if (!check_nonempty(c, s)) return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20) { err(c, "a folder name without control characters, got \"%.80s\"", s); return false; }
    return true;
}

static bool check_smtp_url(ctx *c, const char *s)
{
    if ((!strncmp(s, "smtp://", 7) || !strncmp(s, "smtps://", 8)) && strlen(s) <= MAX_TEXT && !strpbrk(s, " \t\r\n"))
        return true;
    err(c, "invalid SMTP URL \"%.80s\" (expected smtp://host:port or smtps://host:port)", s);
    return false;
}

/* One address or a comma-separated list: each "local@domain" (spaces around are allowed). */
static bool check_addresses(ctx *c, const char *s)
{
    bool ok = strlen(s) <= MAX_TEXT;
    for (const char *p = s; ok; p++) {
        p += strspn(p, " ");
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ') n--;
        const char *at = memchr(p, '@', n);
        ok = n >= 3 && at && at > p && at < p + n - 1 && !memchr(at + 1, '@', (size_t)(p + n - at - 1));
        for (size_t i = 0; ok && i < n; i++) ok = (unsigned char)p[i] > 0x20 && !strchr("<>\"\\;()", p[i]);
        p += strcspn(p, ",");
        if (!*p) break;
    }
    if (!ok) err(c, "expected e-mail addresses (a@example.nl, comma-separated), got \"%.80s\"", s);
    return ok;
}

static bool check_mail_schedule(ctx *c, const char *s)
{
    if (!strcmp(s, "weekly") || !strcmp(s, "monthly")) return true;
    err(c, "expected \"weekly\" or \"monthly\", got \"%.40s\"", s);
    return false;
}

static bool check_mail_format(ctx *c, const char *s)
{
    if (!strcmp(s, "xlsx") || !strcmp(s, "pdf") || !strcmp(s, "csv")) return true;
    err(c, "expected \"xlsx\", \"pdf\" or \"csv\", got \"%.40s\"", s);
    return false;
}

static void mail_post(ctx *c, void *obj, const bool *seen)
{
    (void)c;
    (void)seen;
    ((acdm_report_mail_def *)obj)->enabled = true;
}

static const setting mail_settings[] = {
    {.name = "smtp_url", .type = S_STR, .off = offsetof(acdm_report_mail_def, smtp_url), .flags = F_REQUIRED,
     .check = check_smtp_url},
    {.name = "from", .type = S_STR, .off = offsetof(acdm_report_mail_def, from), .flags = F_REQUIRED,
     .check = check_addresses},
    {.name = "to", .type = S_STR, .off = offsetof(acdm_report_mail_def, to), .flags = F_REQUIRED,
     .check = check_addresses},
    STR("username", acdm_report_mail_def, username, NULL, check_nonempty),
    STR("password_file", acdm_report_mail_def, password_file, NULL, check_dir),
    STR("schedule", acdm_report_mail_def, schedule, "weekly", check_mail_schedule),
    STR("format", acdm_report_mail_def, format, "xlsx", check_mail_format),
};
static const table mail_table = {"report mail settings", mail_settings, NSET(mail_settings),
                                 sizeof(acdm_report_mail_def), mail_post};

static const setting reports_settings[] = {
    STR("daily_export_dir", acdm_reports_def, daily_export_dir, NULL, check_dir),
    STR("daily_export_interval", acdm_reports_def, daily_export_interval, "1h", check_report_interval),
    INT("daily_export_delay_min", acdm_reports_def, daily_export_delay_min, 5, 0, 720),
    {.name = "mail", .type = S_OBJECT, .off = offsetof(acdm_reports_def, mail), .sub = &mail_table},
};
static const table reports_table = {"report settings", reports_settings, NSET(reports_settings),
                                    sizeof(acdm_reports_def), NULL};

/* "30m", "6h", "24h", "7d" (at least 5 minutes, at most 90 days) or "HH:MM". */
static bool check_backup_every(ctx *c, const char *s)
{
    int h, m, n = 0;
    if (sscanf(s, "%2d:%2d%n", &h, &m, &n) == 2 && n == 5 && s[n] == '\0' && h >= 0 && h < 24 &&
        m >= 0 && m < 60 && s[2] == ':')
        return true;
    char unit = 0, *end = NULL;
    long v = strtol(s, &end, 10);
    if (end && end != s && end[0] && !end[1]) unit = end[0];
    long secs = unit == 'm' ? v * 60 : unit == 'h' ? v * 3600 : unit == 'd' ? v * 86400 : -1;
    if (s[0] >= '0' && s[0] <= '9' && secs >= 300 && secs <= 90L * 86400) return true;
    err(c, "expected an interval (\"30m\", \"6h\", \"24h\", \"7d\"; 5 minutes to 90 days) or a time of "
           "day \"HH:MM\", got \"%.40s\"", s);
    return false;
}

static void backup_post(ctx *c, void *obj, const bool *seen)
{
    (void)c;
    (void)seen;
    acdm_backup_def *b = obj;
    b->enabled = true;
    b->every_s = 0;
    b->at_min = -1;
    if (!b->every) return;
    int h, m;
    if (strchr(b->every, ':') && sscanf(b->every, "%d:%d", &h, &m) == 2) {
        b->at_min = h * 60 + m;
        return;
    }
    char *end = NULL;
    long v = strtol(b->every, &end, 10);
    b->every_s = (int)(end && *end == 'm' ? v * 60 : end && *end == 'h' ? v * 3600 : v * 86400);
}

static const setting backup_settings[] = {
    {.name = "dir", .type = S_STR, .off = offsetof(acdm_backup_def, dir), .flags = F_REQUIRED,
     .check = check_dir},
    STR("every", acdm_backup_def, every, "24h", check_backup_every),
    INT("keep", acdm_backup_def, keep, 7, 1, 1000),
    INT("pause_ms", acdm_backup_def, pause_ms, 0, 0, 1000),
};
static const table backup_table = {"backup settings", backup_settings, NSET(backup_settings),
                                   sizeof(acdm_backup_def), backup_post};

static void retention_post(ctx *c, void *obj, const bool *seen)
{
    (void)seen;
    acdm_retention_def *r = obj;
    r->enabled = true;
    if (r->events_months > 0 && r->events_months < 13) {
        size_t l = path_key(c, "events_months");
        err(c, "%d months is too short: the event log is what the reports are made of, and they must "
               "reach back at least 13 months (R67); use 13 or more, or 0 to keep it for ever",
            r->events_months);
        path_pop(c, l);
    }
}

static const setting retention_settings[] = {
    INT("events_months", acdm_retention_def, events_months, 0, 0, 1200),
    INT("bodies_days", acdm_retention_def, bodies_days, 0, 0, 36500),
    INT("attachments_days", acdm_retention_def, attachments_days, 0, 0, 36500),
    INT("slice_rows", acdm_retention_def, slice_rows, 500, 10, 100000),
    INT("pause_ms", acdm_retention_def, pause_ms, 10, 0, 10000),
};
static const table retention_table = {"retention settings", retention_settings,
                                      NSET(retention_settings), sizeof(acdm_retention_def),
                                      retention_post};

static const setting top_settings[] = {
    {.name = "listen", .type = S_LISTEN, .off = offsetof(acdm_config, listen_host),
     .off_n = offsetof(acdm_config, listen_port), .def_s = "127.0.0.1", .def_i = 8080},
    STR("data_dir", acdm_config, data_dir, "var", check_nonempty),
    STR("plugin_dir", acdm_config, plugin_dir, "plugins", check_nonempty),
    STR("ui_dir", acdm_config, ui_dir, "core/ui", check_nonempty),
    STR("timezone", acdm_config, timezone, "Europe/Amsterdam", check_timezone),
    STR("log_level", acdm_config, log_level, "info", check_log_level),
    STR("log_format", acdm_config, log_format, "text", check_log_format),
    INT("max_misses", acdm_config, max_misses, 0, 0, 1000),
    INT("agent_grace_s", acdm_config, agent_grace_s, 60, 0, 3600),
    INT("group_commit_ms", acdm_config, group_commit_ms, 0, 0, 10000),
    INT("max_connections_per_address", acdm_config, max_conns_per_addr, 256, 0, 100000),
    LIST("schedules", schedules, n_schedules, &schedule_table, L_SCHEDULES),
    LIST("queues", queues, n_queues, &queue_table, L_QUEUES),
    LIST("agents", agents, n_agents, &agent_table, L_AGENTS),
    LIST("channels", channels, n_channels, &channel_table, L_CHANNELS),
    {.name = "topics", .type = S_TOPICS, .off = offsetof(acdm_config, topics),
     .off_n = offsetof(acdm_config, n_topics), .list = L_TOPICS},
    LIST("reason_codes", reasons, n_reasons, &reason_table, L_REASONS),
    LIST("snippets", snippets, n_snippets, &snippet_table, L_SNIPPETS),
    {.name = "oidc", .type = S_OBJECT, .off = offsetof(acdm_config, oidc), .sub = &oidc_table},
    {.name = "screen_pop", .type = S_OBJECT, .off = offsetof(acdm_config, screen_pop), .sub = &screen_pop_table},
    {.name = "reports", .type = S_OBJECT, .off = offsetof(acdm_config, reports), .sub = &reports_table},
    {.name = "backup", .type = S_OBJECT, .off = offsetof(acdm_config, backup), .sub = &backup_table},
    {.name = "retention", .type = S_OBJECT, .off = offsetof(acdm_config, retention), .sub = &retention_table},
};
static const table top_table = {"configuration", top_settings, NSET(top_settings), sizeof(acdm_config), NULL};

/* ------------------------------------------------------------------ reading values */

static void parse_object(ctx *c, const table *t, json_t *obj, void *base, bool defaults,
                         const char **set_by);
static void free_object(const table *t, void *base);

static bool want(ctx *c, json_t *v, json_type type, const char *what)
{
    if (json_typeof(v) == type || (type == JSON_TRUE && json_is_boolean(v))) return true;
    err(c, "expected %s, got %s", what, jtype(v));
    return false;
}

static void parse_skills(ctx *c, json_t *v, acdm_skill **out, size_t *n_out)
{
    if (!want(c, v, JSON_ARRAY, "an array of skills ([\"name\"] or [{\"name\": ..., \"level\": 1..100}])"))
        return;
    size_t n = json_array_size(v);
    acdm_skill *sk = xcalloc(c, n, sizeof *sk);
    if (!sk) return;
    *out = sk;
    *n_out = n;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        size_t l = path_idx(c, i);
        if (json_is_string(e)) {
            if (check_name(c, json_string_value(e))) sk[i].name = xstrdup(c, json_string_value(e));
            sk[i].level = 1;
        } else if (json_is_object(e)) {
            parse_object(c, &skill_table, e, &sk[i], true, NULL);
        } else {
            err(c, "expected a skill name or {\"name\": ..., \"level\": 1..100}, got %s", jtype(e));
        }
        for (size_t j = 0; j < i && sk[i].name; j++)
            if (sk[j].name && !strcmp(sk[j].name, sk[i].name))
                err(c, "skill \"%s\" listed twice", sk[i].name);
        path_pop(c, l);
    }
}

static void parse_names(ctx *c, json_t *v, char ***out, size_t *n_out)
{
    if (!want(c, v, JSON_ARRAY, "an array of names")) return;
    size_t n = json_array_size(v);
    char **names = xcalloc(c, n, sizeof *names);
    if (!names) return;
    *out = names;
    *n_out = n;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        size_t l = path_idx(c, i);
        if (want(c, e, JSON_STRING, "a name") && check_name(c, json_string_value(e))) {
            names[i] = xstrdup(c, json_string_value(e));
            for (size_t j = 0; j < i; j++)
                if (names[j] && names[i] && !strcmp(names[j], names[i]))
                    err(c, "\"%s\" listed twice", names[i]);
        }
        path_pop(c, l);
    }
}

static void parse_capacity(ctx *c, json_t *v, int *cap)
{
    if (!want(c, v, JSON_OBJECT, "an object of kind: capacity (e.g. {\"voice\": 1, \"chat\": 3})")) return;
    const char *key;
    json_t *e;
    json_object_foreach(v, key, e) {
        size_t l = path_key(c, key);
        int k = acdm_kind_parse(key);
        if (k < 0) {
            const char *names[ACDM_KIND__COUNT], *hint;
            char all[128];
            for (int i = 0; i < ACDM_KIND__COUNT; i++) names[i] = acdm_kind_name((acdm_kind)i);
            hint = nearest(key, names, ACDM_KIND__COUNT);
            join(all, sizeof all, names, ACDM_KIND__COUNT);
            if (hint) err(c, "unknown kind \"%.80s\" (did you mean \"%s\"?)", key, hint);
            else err(c, "unknown kind \"%.80s\" (expected one of: %s)", key, all);
        } else if (want(c, e, JSON_INTEGER, "an integer")) {
            json_int_t x = json_integer_value(e);
            if (x < 0 || x > 100) err(c, "%" JSON_INTEGER_FORMAT " is out of range (0..100)", x);
            else cap[k] = (int)x;
        }
        path_pop(c, l);
    }
}

static void parse_closed_text(ctx *c, json_t *v, json_t **out)
{
    if (!want(c, v, JSON_OBJECT, "an object of kind or \"default\": text")) return;
    const char *key;
    json_t *e;
    bool ok = true;
    json_object_foreach(v, key, e) {
        size_t l = path_key(c, key);
        if (strcmp(key, "default") && acdm_kind_parse(key) < 0) {
            const char *names[ACDM_KIND__COUNT + 1], *hint;
            char all[160];
            names[0] = "default";
            for (int i = 0; i < ACDM_KIND__COUNT; i++) names[i + 1] = acdm_kind_name((acdm_kind)i);
            hint = nearest(key, names, ACDM_KIND__COUNT + 1);
            join(all, sizeof all, names, ACDM_KIND__COUNT + 1);
            if (hint) err(c, "unknown kind \"%.80s\" (did you mean \"%s\"?)", key, hint);
            else err(c, "unknown kind \"%.80s\" (expected one of: %s)", key, all);
            ok = false;
        } else if (!want(c, e, JSON_STRING, "a text") || !check_nonempty(c, json_string_value(e))) {
            ok = false;
        }
        path_pop(c, l);
    }
    if (ok) {
        json_decref(*out);
        *out = json_deep_copy(v);
        if (!*out) c->oom = true;
    }
}

static int cmp_interval(const void *a, const void *b)
{
    const acdm_interval *x = a, *y = b;
    return x->from_min != y->from_min ? x->from_min - y->from_min : x->to_min - y->to_min;
}

static void parse_week(ctx *c, json_t *v, acdm_interval (*week)[ACDM_MAX_INTERVALS], uint8_t *n_week)
{
    static const char *const days[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    static const char *const order[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    if (!want(c, v, JSON_OBJECT, "an object of day: [\"HH:MM-HH:MM\", ...]")) return;
    const char *key;
    json_t *e;
    json_object_foreach(v, key, e) {
        size_t l = path_key(c, key);
        int wd = -1;
        for (int i = 0; i < 7; i++)
            if (!strcmp(key, days[i])) wd = i;
        if (wd < 0) {
            const char *hint = nearest(key, order, 7);
            if (hint) err(c, "unknown day \"%.80s\" (did you mean \"%s\"?)", key, hint);
            else err(c, "unknown day \"%.80s\" (expected one of: mon, tue, wed, thu, fri, sat, sun)", key);
        } else if (want(c, e, JSON_ARRAY, "an array of \"HH:MM-HH:MM\" ranges")) {
            size_t n = json_array_size(e);
            if (n > ACDM_MAX_INTERVALS) {
                err(c, "%zu ranges; at most %d per day", n, ACDM_MAX_INTERVALS);
                n = ACDM_MAX_INTERVALS;
            }
            uint8_t k = 0;
            for (size_t i = 0; i < n; i++) {
                json_t *r = json_array_get(e, i);
                size_t l2 = path_idx(c, i);
                if (want(c, r, JSON_STRING, "a \"HH:MM-HH:MM\" range")) {
                    const char *s = json_string_value(r);
                    int from = -1, to = -1;
                    if (strlen(s) == 11 && s[5] == '-') {
                        from = parse_hhmm(s, false);
                        to = parse_hhmm(s + 6, true);
                    }
                    if (from < 0 || to < 0)
                        err(c, "invalid time range \"%.40s\" (expected \"HH:MM-HH:MM\", e.g. \"08:00-17:00\"; "
                               "\"24:00\" only as an end)", s);
                    else if (from >= to)
                        err(c, "\"%s\": the start must be before the end (a range cannot pass midnight; "
                               "split it over two days)", s);
                    else
                        week[wd][k++] = (acdm_interval){(int16_t)from, (int16_t)to};
                }
                path_pop(c, l2);
            }
            qsort(week[wd], k, sizeof week[wd][0], cmp_interval);
            for (uint8_t i = 1; i < k; i++)
                if (week[wd][i].from_min < week[wd][i - 1].to_min)
                    err(c, "ranges %02d:%02d-%02d:%02d and %02d:%02d-%02d:%02d overlap",
                        week[wd][i - 1].from_min / 60, week[wd][i - 1].from_min % 60,
                        week[wd][i - 1].to_min / 60, week[wd][i - 1].to_min % 60,
                        week[wd][i].from_min / 60, week[wd][i].from_min % 60,
                        week[wd][i].to_min / 60, week[wd][i].to_min % 60);
            n_week[wd] = k;
        }
        path_pop(c, l);
    }
}

static int cmp_date(const void *a, const void *b) { return strcmp(a, b); }

static void parse_dates(ctx *c, json_t *v, char (**out)[11], size_t *n_out)
{
    if (!want(c, v, JSON_ARRAY, "an array of \"YYYY-MM-DD\" dates")) return;
    size_t n = json_array_size(v), k = 0;
    char (*d)[11] = xcalloc(c, n, sizeof *d);
    if (!d) return;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        size_t l = path_idx(c, i);
        if (want(c, e, JSON_STRING, "a \"YYYY-MM-DD\" date")) {
            const char *s = json_string_value(e);
            if (date_ok(s)) memcpy(d[k++], s, 11);
            else err(c, "invalid date \"%.40s\" (expected an existing date as \"YYYY-MM-DD\", e.g. \"2026-12-25\")", s);
        }
        path_pop(c, l);
    }
    qsort(d, k, sizeof *d, cmp_date);
    *out = d;
    *n_out = k;
}

static void parse_listen_tls(ctx *c, json_t *v, acdm_listen_def *ld)
{
    if (!json_is_object(v)) { err(c, "expected {\"cert_file\": ..., \"key_file\": ...}, got %s", jtype(v)); return; }
    const char *key;
    json_t *e;
    json_object_foreach(v, key, e) {
        size_t l = path_key(c, key);
        char **dst = !strcmp(key, "cert_file") ? &ld->cert_file : !strcmp(key, "key_file") ? &ld->key_file : NULL;
        if (!dst) {
            static const char *const keys[] = {"cert_file", "key_file"};
            const char *hint = nearest(key, keys, 2);
            if (hint) err(c, "unknown key \"%.80s\" (did you mean \"%s\"?)", key, hint);
            else err(c, "unknown key \"%.80s\" (expected: cert_file, key_file)", key);
        } else if (want(c, e, JSON_STRING, "a file path")) {
            const char *f = json_string_value(e);
            if (!*f) err(c, "must not be empty");
            else if (access(f, R_OK)) err(c, "cannot read \"%.200s\": %s", f, strerror(errno));
            else { free(*dst); *dst = xstrdup(c, f); }
        }
        path_pop(c, l);
    }
    if (!json_object_get(v, "cert_file")) err(c, "missing required key \"cert_file\" (the PEM certificate chain)");
    if (!json_object_get(v, "key_file")) err(c, "missing required key \"key_file\" (the PEM private key)");
}

static void parse_listen_one(ctx *c, json_t *v, char **host, int *port, acdm_listen_def *ld);

/* "routes": what one listener serves, a list of groups or path prefixes. */
static void parse_listen_routes(ctx *c, json_t *v, acdm_listen_def *ld)
{
    static const char *const groups[] = {"api", "ws", "ui", "metrics", "channels"};
    if (!json_is_array(v) || !json_array_size(v)) {
        err(c, "expected a non-empty list of route groups (api, ws, ui, metrics, channels) or path "
               "prefixes such as \"/channels/website/\", got %s", json_is_array(v) ? "an empty list" : jtype(v));
        return;
    }
    size_t n = json_array_size(v), i;
    json_t *e;
    ld->routes = calloc(n, sizeof *ld->routes);
    if (!ld->routes) { err(c, "out of memory"); return; }
    json_array_foreach(v, i, e) {
        size_t l = path_idx(c, i);
        if (want(c, e, JSON_STRING, "a route group or a path prefix")) {
            const char *r = json_string_value(e);
            bool ok = r[0] == '/' && strlen(r) <= 200 && !strstr(r, "..");
            for (size_t g = 0; !ok && g < sizeof groups / sizeof *groups; g++) ok = !strcmp(r, groups[g]);
            if (!ok) {
                const char *hint = nearest(r, groups, sizeof groups / sizeof *groups);
                if (hint) err(c, "unknown route group \"%.80s\" (did you mean \"%s\"?)", r, hint);
                else err(c, "unknown route group \"%.80s\" (expected api, ws, ui, metrics, channels, or a "
                            "path prefix starting with \"/\")", r);
            } else {
                ld->routes[ld->n_routes++] = xstrdup(c, r);
            }
        }
        path_pop(c, l);
    }
}

/* "listen": one listener (a string, {"host","port"}, {"address","tls"}) or a list of them. */
static void parse_listens(ctx *c, json_t *v, acdm_config *cfg)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (json_is_array(v) && !n) { err(c, "is empty (give at least one listener)"); return; }
    acdm_listen_def *ls = calloc(n, sizeof *ls);
    if (!ls) { err(c, "out of memory"); return; }
    for (size_t i = 0; i < n; i++) {
        size_t l = json_is_array(v) ? path_idx(c, i) : 0;
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        ls[i].port = -1;
        parse_listen_one(c, e, &ls[i].host, &ls[i].port, &ls[i]);
        if (json_is_array(v)) path_pop(c, l);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (ls[i].host && ls[j].host && ls[i].port == ls[j].port && ls[i].port > 0 && !strcmp(ls[i].host, ls[j].host))
                err(c, "listeners %zu and %zu both use %s port %d", j, i, ls[i].host, ls[i].port);
    if (ls[0].host) {
        free(cfg->listen_host);
        cfg->listen_host = xstrdup(c, ls[0].host);
        cfg->listen_port = ls[0].port;
    }
    acdm_config_free_listens(cfg);
    cfg->listens = ls;
    cfg->n_listens = n;
}

void acdm_config_free_listens(acdm_config *cfg)
{
    for (size_t i = 0; i < cfg->n_listens; i++) {
        free(cfg->listens[i].host);
        free(cfg->listens[i].cert_file);
        free(cfg->listens[i].key_file);
        for (size_t j = 0; j < cfg->listens[i].n_routes; j++) free(cfg->listens[i].routes[j]);
        free(cfg->listens[i].routes);
    }
    free(cfg->listens);
    cfg->listens = NULL;
    cfg->n_listens = 0;
}

static void parse_listen_one(ctx *c, json_t *v, char **host, int *port, acdm_listen_def *ld)
{
    const char *h = NULL;
    json_int_t p = -1;
    char buf[300];
    if (json_is_string(v)) {
        const char *s = json_string_value(v), *colon;
        if (s[0] == '[') { /* "[::1]:8080" */
            const char *close = strchr(s, ']');
            if (!close || close[1] != ':' || (size_t)(close - s) > 256) {
                err(c, "invalid listen address \"%.80s\" (expected \"host:port\" or \"[ipv6]:port\")", s);
                return;
            }
            snprintf(buf, sizeof buf, "%.*s", (int)(close - s - 1), s + 1);
            colon = close + 1;
        } else {
            colon = strrchr(s, ':');
            if (!colon || strchr(s, ':') != colon || (size_t)(colon - s) > 256) {
                err(c, "invalid listen address \"%.80s\" (expected \"host:port\", e.g. \"127.0.0.1:8080\"; "
                       "IPv6 as \"[::1]:8080\")", s);
                return;
            }
            snprintf(buf, sizeof buf, "%.*s", (int)(colon - s), s);
        }
        h = buf;
        char *end;
        errno = 0;
        long x = strtol(colon + 1, &end, 10);
        if (colon[1] < '0' || colon[1] > '9' || *end || errno) {
            err(c, "invalid port in \"%.80s\" (expected a number 1..65535)", s);
            return;
        }
        p = x;
    } else if (json_is_object(v)) {
        const char *key;
        json_t *e;
        json_object_foreach(v, key, e) {
            size_t l = path_key(c, key);
            if (!strcmp(key, "host")) {
                if (want(c, e, JSON_STRING, "a host name or address")) h = json_string_value(e);
            } else if (!strcmp(key, "port")) {
                if (want(c, e, JSON_INTEGER, "a port number")) p = json_integer_value(e);
                else p = -2;
            } else if (!strcmp(key, "address") && ld) {
                if (json_object_get(v, "host") || json_object_get(v, "port"))
                    err(c, "give \"address\" or \"host\" and \"port\", not both");
                else if (want(c, e, JSON_STRING, "\"host:port\" or \"[ipv6]:port\""))
                    parse_listen_one(c, e, host, port, NULL);
                p = -2;
            } else if (!strcmp(key, "tls") && ld) {
                parse_listen_tls(c, e, ld);
            } else if (!strcmp(key, "routes") && ld) {
                parse_listen_routes(c, e, ld);
            } else {
                static const char *const keys[] = {"host", "port", "address", "tls", "routes"};
                const char *hint = nearest(key, keys, ld ? 5 : 2);
                if (hint) err(c, "unknown key \"%.80s\" (did you mean \"%s\"?)", key, hint);
                else err(c, "unknown key \"%.80s\" (expected: %s)", key, ld ? "address, tls, routes, host, port" : "host, port");
            }
            path_pop(c, l);
        }
        if (!json_object_get(v, "host")) h = "127.0.0.1";
        if (p == -2 && json_object_get(v, "address")) return;
        if (p == -1) { err(c, "missing required key \"port\"%s", ld ? " (or \"address\")" : ""); return; }
        if (p == -2) return;
    } else {
        err(c, "expected \"host:port\"%s or {\"host\": ..., \"port\": ...}, got %s",
            ld ? ", {\"address\": \"host:port\", \"tls\": {...}}" : "", jtype(v));
        return;
    }
    if (!h) return;
    if (!*h || strlen(h) > 253) { err(c, "the host must not be empty"); return; }
    if (p < 1 || p > 65535) {
        err(c, "port %" JSON_INTEGER_FORMAT " is out of range (1..65535)", p);
        return;
    }
    free(*host);
    *host = xstrdup(c, h);
    *port = (int)p;
}

static void parse_topics(ctx *c, json_t *v, void *base, const setting *s)
{
    if (!want(c, v, JSON_ARRAY, "an array of topic names")) return;
    char ***arr = FLD(base, s->off, char **);
    size_t *n = FLD(base, s->off_n, size_t);
    size_t add = json_array_size(v);
    char **grown = realloc(*arr, (*n + add + 1) * sizeof **arr);
    origin *og = realloc(c->orig[s->list], (*n + add + 1) * sizeof *og);
    if (grown) *arr = grown;
    if (og) c->orig[s->list] = og;
    if (!grown || !og) { c->oom = true; return; }
    for (size_t i = 0; i < add; i++) {
        json_t *e = json_array_get(v, i);
        size_t l = path_idx(c, i);
        char *t = NULL;
        if (want(c, e, JSON_STRING, "a topic name") && check_nonempty(c, json_string_value(e)))
            t = xstrdup(c, json_string_value(e));
        (*arr)[*n] = t;
        c->orig[s->list][*n] = (origin){c->file, i};
        (*n)++;
        path_pop(c, l);
    }
    c->norig[s->list] = *n;
}

static void parse_list(ctx *c, json_t *v, void *base, const setting *s)
{
    const table *t = s->sub;
    char what[64];
    snprintf(what, sizeof what, "an array of %s objects", t->what);
    if (!want(c, v, JSON_ARRAY, what)) return;
    void **arr = FLD(base, s->off, void *);
    size_t *n = FLD(base, s->off_n, size_t);
    size_t add = json_array_size(v);
    char *grown = realloc(*arr, (*n + add + 1) * t->size);
    origin *og = realloc(c->orig[s->list], (*n + add + 1) * sizeof *og);
    if (grown) *arr = grown;
    if (og) c->orig[s->list] = og;
    if (!grown || !og) { c->oom = true; return; }
    for (size_t i = 0; i < add; i++) {
        void *elem = grown + *n * t->size;
        memset(elem, 0, t->size);
        size_t l = path_idx(c, i);
        parse_object(c, t, json_array_get(v, i), elem, true, NULL);
        c->orig[s->list][*n] = (origin){c->file, i};
        (*n)++;
        path_pop(c, l);
    }
    c->norig[s->list] = *n;
}

static void parse_value(ctx *c, const setting *s, json_t *v, void *base)
{
    switch (s->type) {
    case S_STR:
    case S_NAME:
        if (!want(c, v, JSON_STRING, s->type == S_NAME ? "a name" : "a string")) break;
        if (s->type == S_NAME && !check_name(c, json_string_value(v))) break;
        if (s->check && !s->check(c, json_string_value(v))) break;
        free(*FLD(base, s->off, char *));
        *FLD(base, s->off, char *) = xstrdup(c, json_string_value(v));
        break;
    case S_INT:
        if (!want(c, v, JSON_INTEGER, "an integer")) break;
        if (json_integer_value(v) < s->min || json_integer_value(v) > s->max) {
            err(c, "%" JSON_INTEGER_FORMAT " is out of range (%d..%d)", json_integer_value(v), s->min, s->max);
            break;
        }
        *FLD(base, s->off, int) = (int)json_integer_value(v);
        break;
    case S_BOOL:
        if (want(c, v, JSON_TRUE, "true or false")) *FLD(base, s->off, bool) = json_is_true(v);
        break;
    case S_STRATEGY: {
        if (!want(c, v, JSON_STRING, "a strategy name")) break;
        int x = acdm_strategy_parse(json_string_value(v));
        if (x < 0) {
            const char *names[ACDM_STRAT__COUNT];
            char all[200];
            for (int i = 0; i < ACDM_STRAT__COUNT; i++) names[i] = acdm_strategy_name((acdm_strategy)i);
            join(all, sizeof all, names, ACDM_STRAT__COUNT);
            err(c, "unknown strategy \"%.80s\" (expected one of: %s)", json_string_value(v), all);
            break;
        }
        *FLD(base, s->off, acdm_strategy) = (acdm_strategy)x;
        break;
    }
    case S_LISTEN:
        parse_listens(c, v, base);
        break;
    case S_SKILLS:
        parse_skills(c, v, FLD(base, s->off, acdm_skill *), FLD(base, s->off_n, size_t));
        break;
    case S_NAMES:
        parse_names(c, v, FLD(base, s->off, char **), FLD(base, s->off_n, size_t));
        break;
    case S_CAPACITY:
        parse_capacity(c, v, FLD(base, s->off, int));
        break;
    case S_CLOSED_TEXT:
        parse_closed_text(c, v, FLD(base, s->off, json_t *));
        break;
    case S_JSON_OBJECT:
        if (want(c, v, JSON_OBJECT, "an object")) {
            json_t **o = FLD(base, s->off, json_t *);
            json_decref(*o);
            *o = json_deep_copy(v);
            if (!*o) c->oom = true;
        }
        break;
    case S_WEEK:
        parse_week(c, v, FLD(base, s->off, week_row), FLD(base, s->off_n, uint8_t));
        break;
    case S_DATES:
        parse_dates(c, v, FLD(base, s->off, date_str *), FLD(base, s->off_n, size_t));
        break;
    case S_LIST:
        parse_list(c, v, base, s);
        break;
    case S_TOPICS:
        parse_topics(c, v, base, s);
        break;
    case S_OBJECT:
        free_object(s->sub, FLD(base, s->off, char));
        memset(FLD(base, s->off, char), 0, s->sub->size);
        parse_object(c, s->sub, v, FLD(base, s->off, char), true, NULL);
        break;
    }
}

static void set_default(ctx *c, const setting *s, void *base)
{
    switch (s->type) {
    case S_STR:
    case S_NAME:
        *FLD(base, s->off, char *) = xstrdup(c, s->def_s);
        break;
    case S_INT:
        *FLD(base, s->off, int) = s->def_i;
        break;
    case S_BOOL:
        *FLD(base, s->off, bool) = s->def_i != 0;
        break;
    case S_STRATEGY:
        *FLD(base, s->off, acdm_strategy) = ACDM_STRAT_LONGEST_IDLE;
        break;
    case S_LISTEN:
        *FLD(base, s->off, char *) = xstrdup(c, s->def_s);
        *FLD(base, s->off_n, int) = s->def_i;
        break;
    case S_CAPACITY:
        memcpy(FLD(base, s->off, int), default_capacity, sizeof default_capacity);
        break;
    case S_CLOSED_TEXT:
    case S_JSON_OBJECT:
        *FLD(base, s->off, json_t *) = json_object();
        if (!*FLD(base, s->off, json_t *)) c->oom = true;
        break;
    default: /* arrays: empty */
        break;
    }
}

static void unknown_key(ctx *c, const table *t, const char *key)
{
    const char *names[32] = {NULL}, *hint;
    char all[400];
    size_t n = t->n < 32 ? t->n : 32;
    for (size_t i = 0; i < n; i++) names[i] = t->s[i].name;
    hint = nearest(key, names, n);
    if (hint) err(c, "unknown key \"%.80s\" (did you mean \"%s\"?)", key, hint);
    else {
        join(all, sizeof all, names, n);
        err(c, "unknown key \"%.80s\" in %s %s (known keys: %s)", key,
            t == &top_table ? "the" : "a", t->what, all);
    }
}

/* Reads obj into base by table t. Values that need a default get it first (so a bad value
 * leaves the default), unless defaults is false (the top level, defaulted after all files).
 * set_by (top level only): which file set each setting; a second file may not set it again. */
static void parse_object(ctx *c, const table *t, json_t *obj, void *base, bool defaults,
                         const char **set_by)
{
    bool seen[32] = {false};
    if (defaults)
        for (size_t i = 0; i < t->n; i++) set_default(c, &t->s[i], base);
    if (!json_is_object(obj)) {
        err(c, "expected %s %s object, got %s", strchr("aeiou", t->what[0]) ? "an" : "a", t->what, jtype(obj));
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        size_t i;
        for (i = 0; i < t->n; i++)
            if (!strcmp(t->s[i].name, key)) break;
        if (i == t->n) {
            unknown_key(c, t, key);
            continue;
        }
        size_t l = path_key(c, key);
        seen[i] = true;
        const setting *s = &t->s[i];
        if (set_by && set_by[i] && s->type != S_LIST && s->type != S_TOPICS) {
            err(c, "already set in %s; a fragment may only add to the lists (%s, %s, %s, %s, %s, %s) "
                   "or set what the main file leaves out", set_by[i], list_key[0], list_key[1],
                list_key[2], list_key[3], list_key[4], list_key[5]);
        } else {
            if (set_by) set_by[i] = c->file;
            parse_value(c, s, v, base);
        }
        path_pop(c, l);
    }
    for (size_t i = 0; i < t->n; i++)
        if (!seen[i] && (t->s[i].flags & F_REQUIRED))
            err(c, "missing required key \"%s\" in %s %s", t->s[i].name,
                strchr("aeiou", t->what[0]) ? "an" : "a", t->what);
    if (t->post) t->post(c, base, seen);
}

static void queue_post(ctx *c, void *obj, const bool *seen)
{
    (void)seen;
    acdm_queue_def *q = obj;
    size_t l;
    if (q->max_wait_s > 0 && !q->overflow) {
        l = path_key(c, "max_wait_s");
        err(c, "is %d but no \"overflow\" queue is set (name the queue to overflow to, or use 0 for no limit)",
            q->max_wait_s);
        path_pop(c, l);
    }
    if (q->overflow && q->max_wait_s == 0) {
        l = path_key(c, "overflow");
        err(c, "needs \"max_wait_s\" > 0 (the wait after which berichten overflow)");
        path_pop(c, l);
    }
    if (q->overflow && q->name && !strcmp(q->overflow, q->name)) {
        l = path_key(c, "overflow");
        err(c, "queue \"%s\" cannot overflow to itself", q->name);
        path_pop(c, l);
    }
    if (q->fallback && q->name && !strcmp(q->fallback, q->name)) {
        l = path_key(c, "fallback");
        err(c, "queue \"%s\" cannot be its own fallback", q->name);
        path_pop(c, l);
    }
}

static void oidc_post(ctx *c, void *obj, const bool *seen)
{
    (void)seen;
    acdm_oidc_def *o = obj;
    o->enabled = true;
    if (!o->jwks_file == !o->jwks_url)
        err(c, "%s", o->jwks_file ? "set either \"jwks_file\" or \"jwks_url\", not both"
                                  : "missing \"jwks_file\" or \"jwks_url\" (where the issuer's signing keys are)");
    if (!o->authorization_endpoint != !o->token_endpoint || !o->authorization_endpoint != !o->client_id)
        err(c, "set \"authorization_endpoint\", \"token_endpoint\" and \"client_id\" together "
               "(the browser sign-in) or none of them");
    if (!o->role_map) return;
    size_t l = path_key(c, "role_map");
    const char *key;
    json_t *v;
    json_object_foreach(o->role_map, key, v) {
        size_t l2 = path_key(c, key);
        const char *r = json_string_value(v);
        if (!r || (strcmp(r, "admin") && strcmp(r, "supervisor") && strcmp(r, "agent")))
            err(c, "expected \"admin\", \"supervisor\" or \"agent\", got %s%.40s%s",
                r ? "\"" : "", r ? r : jtype(v), r ? "\"" : "");
        path_pop(c, l2);
    }
    if (!json_object_size(o->role_map)) err(c, "is empty (map at least one claim value to a role)");
    path_pop(c, l);
}

/* The placeholders a screen-pop URL may hold (filled in URL-encoded at every offer). */
static void screen_pop_post(ctx *c, void *obj, const bool *seen)
{
    static const char *const names[] = {"from", "channel", "queue", "kind", "bericht", "conversation"};
    (void)seen;
    acdm_screen_pop_def *sp = obj;
    sp->enabled = true;
    if (!sp->url) return;
    size_t l = path_key(c, "url");
    for (const char *p = strchr(sp->url, '{'); p; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        size_t n = end ? (size_t)(end - p - 1) : 0;
        bool ok = false;
        for (size_t i = 0; end && i < NSET(names) && !ok; i++)
            ok = strlen(names[i]) == n && !strncmp(p + 1, names[i], n);
        if (!ok) {
            err(c, "unknown placeholder \"%.*s\" (expected {from}, {channel}, {queue}, {kind}, {bericht} or {conversation})",
                end ? (int)(n + 2 > 40 ? 40 : n + 2) : 20, p);
            break;
        }
    }
    path_pop(c, l);
}

static void agent_post(ctx *c, void *obj, const bool *seen)
{
    acdm_agent_def *a = obj;
    (void)seen;
    if (!a->name && a->id) a->name = xstrdup(c, a->id); /* display name defaults to the id */
    if (!a->endpoints) return;
    const char *key;
    json_t *v;
    json_object_foreach(a->endpoints, key, v) {
        size_t l = path_key(c, "endpoints");
        size_t l2 = path_key(c, key);
        if (!acdm_config_name_ok(key))
            err(c, "expected an endpoint name of 1 to %d letters, digits, '_', '.' or '-'", ACDM_NAME_MAX);
        else if (!json_is_string(v) || !endpoint_ok(json_string_value(v)))
            err(c, "expected the endpoint's address as a string without spaces (at most 512 bytes)");
        else if (!strcmp(key, "phone") && !phone_ok(json_string_value(v)))
            err(c, "expected \"register\" or a SIP URI such as \"sip:1001@10.0.0.5\", got \"%.80s\"",
                json_string_value(v));
        path_pop(c, l2);
        path_pop(c, l);
    }
    if (a->phone) {
        const char *ep = json_string_value(json_object_get(a->endpoints, "phone"));
        if (ep && strcmp(ep, a->phone)) {
            size_t l = path_key(c, "phone");
            err(c, "differs from endpoints.phone (\"%.80s\"); give the phone once", ep);
            path_pop(c, l);
        } else if (json_object_set_new(a->endpoints, "phone", json_string(a->phone))) {
            c->oom = true;
        }
    }
}

/* ------------------------------------------------------------------ freeing */

static void free_value(const setting *s, void *base)
{
    switch (s->type) {
    case S_STR:
    case S_NAME:
    case S_LISTEN:
        free(*FLD(base, s->off, char *));
        break;
    case S_SKILLS: {
        acdm_skill *sk = *FLD(base, s->off, acdm_skill *);
        for (size_t i = 0; sk && i < *FLD(base, s->off_n, size_t); i++) free(sk[i].name);
        free(sk);
        break;
    }
    case S_NAMES:
    case S_TOPICS: {
        char **a = *FLD(base, s->off, char **);
        for (size_t i = 0; a && i < *FLD(base, s->off_n, size_t); i++) free(a[i]);
        free(a);
        break;
    }
    case S_CLOSED_TEXT:
    case S_JSON_OBJECT:
        json_decref(*FLD(base, s->off, json_t *));
        break;
    case S_DATES:
        free(*FLD(base, s->off, char *));
        break;
    case S_OBJECT:
        free_object(s->sub, FLD(base, s->off, char));
        break;
    case S_LIST: {
        char *a = *FLD(base, s->off, char *);
        for (size_t i = 0; a && i < *FLD(base, s->off_n, size_t); i++) free_object(s->sub, a + i * s->sub->size);
        free(a);
        break;
    }
    default:
        break;
    }
}

static void free_object(const table *t, void *base)
{
    for (size_t i = 0; i < t->n; i++) free_value(&t->s[i], base);
}

void acdm_config_free(acdm_config *cfg)
{
    if (!cfg) return;
    acdm_config_free_listens(cfg);
    free_object(&top_table, cfg);
    free(cfg->path);
    json_decref(cfg->root);
    free(cfg);
}

/* ------------------------------------------------------------------ checks across the lists */

typedef struct { const char *name; size_t i; } name_ix;

static int cmp_name_ix(const void *a, const void *b)
{
    const name_ix *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    return r ? r : (x->i > y->i) - (x->i < y->i);
}

/* A sorted index of the names of list l (elements without a name are left out). */
static name_ix *index_names(ctx *c, const void *arr, size_t n, size_t size, size_t name_off, size_t *out_n)
{
    name_ix *ix = xcalloc(c, n, sizeof *ix);
    size_t k = 0;
    if (!ix) { *out_n = 0; return NULL; }
    for (size_t i = 0; i < n; i++) {
        const char *name = *(char *const *)(const void *)((const char *)arr + i * size + name_off);
        if (name) ix[k++] = (name_ix){name, i};
    }
    qsort(ix, k, sizeof *ix, cmp_name_ix);
    *out_n = k;
    return ix;
}

static void check_dups(ctx *c, int l, const name_ix *ix, size_t n, const char *field, const char *what)
{
    for (size_t k = 1; k < n; k++) {
        if (strcmp(ix[k].name, ix[k - 1].name)) continue;
        size_t first = k - 1;
        while (first > 0 && !strcmp(ix[first - 1].name, ix[k].name)) first--;
        const origin *o = &c->orig[l][ix[k].i], *f = &c->orig[l][ix[first].i];
        char path[128], fpath[128];
        if (field) {
            snprintf(path, sizeof path, "%s[%zu].%s", list_key[l], o->index, field);
            snprintf(fpath, sizeof fpath, "%s[%zu]", list_key[l], f->index);
        } else {
            snprintf(path, sizeof path, "%s[%zu]", list_key[l], o->index);
            snprintf(fpath, sizeof fpath, "%s[%zu]", list_key[l], f->index);
        }
        err_at(c, o->file, path, "duplicate %s \"%s\" (first defined in %s at %s)", what, ix[k].name,
               f->file, fpath);
    }
}

static void check_ref(ctx *c, const name_ix *ix, size_t n, const char *name, const char *file,
                      const char *path, const char *what)
{
    if (!name) return;
    size_t lo = 0, hi = n;
    while (lo < hi) { /* first entry with that name */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix[mid].name, name) < 0) lo = mid + 1; else hi = mid;
    }
    if (lo < n && !strcmp(ix[lo].name, name)) return;
    const char **names = malloc((n + 1) * sizeof *names);
    const char *hint = NULL;
    if (names) {
        for (size_t i = 0; i < n; i++) names[i] = ix[i].name;
        hint = nearest(name, names, n);
        free(names);
    }
    if (hint) err_at(c, file, path, "unknown %s \"%s\" (did you mean \"%s\"?)", what, name, hint);
    else err_at(c, file, path, "unknown %s \"%s\" (no %s of that name is defined)", what, name, what);
}

/* Names defined twice; with refs, also names that refer to nothing (left out when some file
 * did not parse, since its definitions are unknown). */
static void check_lists(ctx *c, acdm_config *cfg, bool refs)
{
    size_t ns, nq, na, nc, nr, nt;
    name_ix *is = index_names(c, cfg->schedules, cfg->n_schedules, sizeof *cfg->schedules,
                              offsetof(acdm_schedule_def, name), &ns);
    name_ix *iq = index_names(c, cfg->queues, cfg->n_queues, sizeof *cfg->queues,
                              offsetof(acdm_queue_def, name), &nq);
    name_ix *ia = index_names(c, cfg->agents, cfg->n_agents, sizeof *cfg->agents,
                              offsetof(acdm_agent_def, id), &na);
    name_ix *ic = index_names(c, cfg->channels, cfg->n_channels, sizeof *cfg->channels,
                              offsetof(acdm_channel_def, name), &nc);
    name_ix *ir = index_names(c, cfg->reasons, cfg->n_reasons, sizeof *cfg->reasons,
                              offsetof(acdm_reason_def, code), &nr);
    name_ix *it = index_names(c, cfg->topics, cfg->n_topics, sizeof *cfg->topics, 0, &nt);
    size_t nsn;
    name_ix *isn = index_names(c, cfg->snippets, cfg->n_snippets, sizeof *cfg->snippets,
                               offsetof(acdm_snippet_def, id), &nsn);
    if (c->oom) goto out;
    check_dups(c, L_SCHEDULES, is, ns, "name", "schedule");
    check_dups(c, L_QUEUES, iq, nq, "name", "queue");
    check_dups(c, L_AGENTS, ia, na, "id", "agent");
    check_dups(c, L_CHANNELS, ic, nc, "name", "channel");
    check_dups(c, L_REASONS, ir, nr, "code", "reason code");
    check_dups(c, L_TOPICS, it, nt, NULL, "topic");
    check_dups(c, L_SNIPPETS, isn, nsn, "id", "snippet");
    if (!refs) goto out;

    char path[160];
    for (size_t i = 0; i < cfg->n_queues; i++) {
        const acdm_queue_def *q = &cfg->queues[i];
        const origin *o = &c->orig[L_QUEUES][i];
        snprintf(path, sizeof path, "queues[%zu].schedule", o->index);
        check_ref(c, is, ns, q->schedule, o->file, path, "schedule");
        snprintf(path, sizeof path, "queues[%zu].overflow", o->index);
        check_ref(c, iq, nq, q->overflow, o->file, path, "queue");
        snprintf(path, sizeof path, "queues[%zu].fallback", o->index);
        check_ref(c, iq, nq, q->fallback, o->file, path, "queue");
    }
    for (size_t i = 0; i < cfg->n_agents; i++) {
        const acdm_agent_def *a = &cfg->agents[i];
        for (size_t j = 0; j < a->n_queues; j++) {
            snprintf(path, sizeof path, "agents[%zu].queues[%zu]", c->orig[L_AGENTS][i].index, j);
            check_ref(c, iq, nq, a->queues[j], c->orig[L_AGENTS][i].file, path, "queue");
        }
    }
    for (size_t i = 0; i < cfg->n_channels; i++) {
        snprintf(path, sizeof path, "channels[%zu].queue", c->orig[L_CHANNELS][i].index);
        check_ref(c, iq, nq, cfg->channels[i].queue, c->orig[L_CHANNELS][i].file, path, "queue");
    }
    for (size_t i = 0; i < cfg->n_snippets; i++) {
        snprintf(path, sizeof path, "snippets[%zu].queue", c->orig[L_SNIPPETS][i].index);
        check_ref(c, iq, nq, cfg->snippets[i].queue, c->orig[L_SNIPPETS][i].file, path, "queue");
    }
out:
    free(is); free(iq); free(ia); free(ic); free(ir); free(it); free(isn);
}

/* ------------------------------------------------------------------ documents and files */

static const char *keep_name(ctx *c, const char *name)
{
    char **grown = realloc(c->files, (c->nfiles + 1) * sizeof *grown);
    if (!grown) { c->oom = true; return name; }
    c->files = grown;
    c->files[c->nfiles] = xstrdup(c, name);
    return c->files[c->nfiles] ? c->files[c->nfiles++] : name;
}

static void syntax_error(ctx *c, const char *file, const json_error_t *je)
{
    c->syntax = true;
    if (je->line > 0) {
        char line[900];
        snprintf(line, sizeof line, "%.500s:%d:%d: %s", file, je->line, je->column, je->text);
        for (char *p = line; *p; p++)
            if ((unsigned char)*p < 0x20) *p = '?';
        add_line(c, line);
    } else {
        err_at(c, file, NULL, "%s", je->text);
    }
}

/* Reads one parsed document into cfg; the main file first, then each fragment. */
static void read_doc(ctx *c, acdm_config *cfg, const char *file, json_t *root)
{
    c->file = file;
    c->path[0] = '\0';
    parse_object(c, &top_table, root, cfg, false, c->set_by);
}

/* Adds a fragment's document to the merged one: lists are appended, other keys added. */
static void merge_doc(ctx *c, json_t *merged, json_t *frag)
{
    if (!json_is_object(merged) || !json_is_object(frag)) return;
    const char *key;
    json_t *v;
    json_object_foreach(frag, key, v) {
        json_t *have = json_object_get(merged, key);
        if (json_is_array(have) && json_is_array(v)) {
            if (json_array_extend(have, v)) c->oom = true;
        } else if (!have) {
            if (json_object_set(merged, key, v)) c->oom = true;
        }
    }
}

static acdm_config *begin(ctx *c, const char *path, char *errbuf, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->err = errbuf;
    c->errlen = errlen;
    if (errbuf && errlen) errbuf[0] = '\0';
    acdm_config *cfg = xcalloc(c, 1, sizeof *cfg);
    if (cfg) cfg->path = xstrdup(c, path);
    return cfg;
}

static int finish(ctx *c, acdm_config *cfg, json_t *root, acdm_config **out)
{
    /* top-level defaults for whatever no file set */
    for (size_t i = 0; i < top_table.n; i++)
        if (!c->set_by[i]) set_default(c, &top_settings[i], cfg);
    if (!c->oom) check_lists(c, cfg, !c->syntax);
    cfg->root = root;
    for (int l = 0; l < L__COUNT; l++) free(c->orig[l]);
    for (size_t i = 0; i < c->nfiles; i++) free(c->files[i]);
    free(c->files);
    if (c->oom) {
        acdm_config_free(cfg);
        if (c->err && c->errlen) snprintf(c->err, c->errlen, "out of memory while reading the configuration");
        return ACDM_ENOMEM;
    }
    if (c->nerr) {
        if (c->dropped && c->err && c->errlen > c->used + 1)
            snprintf(c->err + c->used, c->errlen - c->used, "%s(%d more problems not shown)",
                     c->used ? "\n" : "", c->dropped);
        acdm_config_free(cfg);
        return ACDM_EINVAL;
    }
    *out = cfg;
    return ACDM_OK;
}

int acdm_config_parse(const char *name, const char *text, acdm_config **out, char *errbuf, size_t errlen)
{
    ctx c;
    if (out) *out = NULL;
    if (!name) name = "(config)";
    acdm_config *cfg = begin(&c, name, errbuf, errlen);
    if (!cfg || !text || !out) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "%s", cfg ? "invalid argument" : "out of memory");
        acdm_config_free(cfg);
        return cfg ? ACDM_EINVAL : ACDM_ENOMEM;
    }
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!root) syntax_error(&c, name, &je);
    else read_doc(&c, cfg, name, root);
    return finish(&c, cfg, root, out);
}

static int json_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".json");
}

int acdm_config_load(const char *path, acdm_config **out, char *errbuf, size_t errlen)
{
    ctx c;
    if (out) *out = NULL;
    acdm_config *cfg = begin(&c, path ? path : "", errbuf, errlen);
    if (!cfg || !path || !out) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "%s", cfg ? "invalid argument" : "out of memory");
        acdm_config_free(cfg);
        return cfg ? ACDM_EINVAL : ACDM_ENOMEM;
    }
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) syntax_error(&c, path, &je);
    else read_doc(&c, cfg, path, root);

    /* fragments: <dir of path>/acdm.d/ *.json, sorted by name */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s/acdm.d", (int)(slash - path), path);
    else snprintf(dir, sizeof dir, "acdm.d");
    struct dirent **list = NULL;
    int n = scandir(dir, &list, json_file, alphasort);
    if (n < 0 && errno != ENOENT && errno != ENOTDIR)
        err_at(&c, dir, NULL, "cannot read the fragment folder: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        char fpath[8192];
        struct stat st;
        snprintf(fpath, sizeof fpath, "%s/%s", dir, list[i]->d_name);
        free(list[i]);
        if (stat(fpath, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        const char *fname = keep_name(&c, fpath);
        json_t *frag = json_load_file(fpath, JSON_REJECT_DUPLICATES, &je);
        if (!frag) {
            syntax_error(&c, fname, &je);
            continue;
        }
        read_doc(&c, cfg, fname, frag);
        merge_doc(&c, root, frag);
        json_decref(frag);
    }
    free(list);
    return finish(&c, cfg, root, out);
}

/* ------------------------------------------------------------------ lookups */

const acdm_queue_def *acdm_config_queue(const acdm_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_queues; i++)
        if (cfg->queues[i].name && !strcmp(cfg->queues[i].name, name)) return &cfg->queues[i];
    return NULL;
}

const acdm_schedule_def *acdm_config_schedule(const acdm_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_schedules; i++)
        if (cfg->schedules[i].name && !strcmp(cfg->schedules[i].name, name)) return &cfg->schedules[i];
    return NULL;
}

const char *acdm_config_agent_endpoint(const acdm_agent_def *a, const char *key)
{
    return a && a->endpoints && key ? json_string_value(json_object_get(a->endpoints, key)) : NULL;
}

const acdm_agent_def *acdm_config_agent(const acdm_config *cfg, const char *id)
{
    for (size_t i = 0; cfg && id && i < cfg->n_agents; i++)
        if (cfg->agents[i].id && !strcmp(cfg->agents[i].id, id)) return &cfg->agents[i];
    return NULL;
}

bool acdm_config_reason_valid(const acdm_config *cfg, const char *code)
{
    for (size_t i = 0; cfg && code && i < cfg->n_reasons; i++)
        if (cfg->reasons[i].code && !strcmp(cfg->reasons[i].code, code)) return true;
    return false;
}

const char *acdm_config_closed_text(const acdm_queue_def *q, acdm_kind kind)
{
    if (q && q->closed_text) {
        json_t *t = json_object_get(q->closed_text, acdm_kind_name(kind));
        if (json_is_string(t)) return json_string_value(t);
        t = json_object_get(q->closed_text, "default");
        if (json_is_string(t)) return json_string_value(t);
    }
    return DEFAULT_CLOSED_TEXT;
}
