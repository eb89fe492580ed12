/* export.c -- the event log as JSON or CSV, and ISO 8601 time arguments. */
#include "store/export.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int acdm_export_format_parse(const char *s)
{
    if (!s || !strcmp(s, "json")) return ACDM_EXPORT_JSON;
    if (!strcmp(s, "csv")) return ACDM_EXPORT_CSV;
    return -1;
}

const char *acdm_export_content_type(acdm_export_format f)
{
    return f == ACDM_EXPORT_CSV ? "text/csv; charset=utf-8" : "application/json";
}

void acdm_csv_field(acdm_sbuf *b, const char *s)
{
    if (!s) return;
    if (!strpbrk(s, ",\"\r\n")) { acdm_sb_str(b, s); return; }
    acdm_sb_add(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"') acdm_sb_add(b, "\"\"", 2);
        else acdm_sb_add(b, p, 1);
    }
    acdm_sb_add(b, "\"", 1);
}

void acdm_export_begin(acdm_sbuf *b, acdm_export_format f)
{
    acdm_sb_str(b, f == ACDM_EXPORT_CSV ? "id,ts,ts_ms,type,bericht,queue,agent,channel,kind,detail\r\n" : "[");
}

void acdm_export_end(acdm_sbuf *b, acdm_export_format f)
{
    if (f == ACDM_EXPORT_JSON) acdm_sb_str(b, "]\n");
}

void acdm_export_event(acdm_sbuf *b, acdm_export_format f, int64_t id, const acdm_event_row *ev, bool first)
{
    char ts[48], num[32];
    acdm_time_iso(ev->ts_ms, ts);
    if (f == ACDM_EXPORT_CSV) {
        snprintf(num, sizeof num, "%lld,", (long long)id);
        acdm_sb_str(b, num);
        acdm_sb_str(b, ts);
        snprintf(num, sizeof num, ",%lld,", (long long)ev->ts_ms);
        acdm_sb_str(b, num);
        const char *cols[] = {ev->type, ev->bericht, ev->queue, ev->agent, ev->channel, ev->kind, ev->detail_json};
        for (size_t i = 0; i < sizeof cols / sizeof *cols; i++) {
            if (i) acdm_sb_add(b, ",", 1);
            acdm_csv_field(b, cols[i]);
        }
        acdm_sb_add(b, "\r\n", 2);
        return;
    }
    json_t *detail = ev->detail_json ? json_loads(ev->detail_json, JSON_DECODE_ANY, NULL) : NULL;
    if (ev->detail_json && !detail) detail = json_string(ev->detail_json);  /* kept as text */
    json_t *o = json_pack("{s:I, s:s, s:I, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:o?}", "id", (json_int_t)id,
                          "ts", ts, "ts_ms", (json_int_t)ev->ts_ms, "type", ev->type ? ev->type : "",
                          "bericht", ev->bericht, "queue", ev->queue, "agent", ev->agent,
                          "channel", ev->channel, "kind", ev->kind, "detail", detail);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (!first) acdm_sb_add(b, ",\n", 2);
    if (s) acdm_sb_str(b, s);
    else b->oom = true;
    free(s);
    json_decref(o);
}

void acdm_time_iso(int64_t ms, char out[48])
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    int frac = (int)(ms - (int64_t)t * 1000);
    snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* n digits at p as a number, or -1. */
static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

int acdm_time_parse(const char *s, int64_t *ms)
{
    if (!s || !*s || strlen(s) > 40) return ACDM_EINVAL;
    size_t n = strlen(s);
    if (strspn(s, "0123456789") == n) {            /* epoch milliseconds (1973 and later) */
        if (n < 12 || n > 15) return ACDM_EINVAL;
        *ms = strtoll(s, NULL, 10);
        return 0;
    }
    int y = digits(s, 4), mo = n >= 7 ? digits(s + 5, 2) : -1, d = n >= 10 ? digits(s + 8, 2) : -1;
    if (n < 10 || y < 1970 || y > 9999 || s[4] != '-' || s[7] != '-' || mo < 1 || mo > 12 || d < 1) return ACDM_EINVAL;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int maxd = mdays[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100) || y % 400 == 0));
    if (d > maxd) return ACDM_EINVAL;
    int hh = 0, mi = 0, ss = 0, frac = 0;
    const char *p = s + 10;
    if (*p) {
        if (*p != 'T' && *p != 't' && *p != ' ') return ACDM_EINVAL;
        hh = digits(p + 1, 2);
        if (hh < 0 || p[3] != ':' || (mi = digits(p + 4, 2)) < 0) return ACDM_EINVAL;
        p += 6;
        if (*p == ':') {
            if ((ss = digits(p + 1, 2)) < 0) return ACDM_EINVAL;
            p += 3;
            if (*p == '.' || *p == ',') {
                int k = 0;
                for (p++; *p >= '0' && *p <= '9'; p++, k++)
                    if (k < 3) frac = frac * 10 + (*p - '0');
                if (!k) return ACDM_EINVAL;
                for (; k < 3; k++) frac *= 10;
            }
        }
        if (hh > 23 || mi > 59 || ss > 60) return ACDM_EINVAL;
    }
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = hh, .tm_min = mi,
                    .tm_sec = ss, .tm_isdst = -1};
    time_t t;
    if (!*p) {
        t = mktime(&tm);                            /* local time */
    } else if ((*p == 'Z' || *p == 'z') && !p[1]) {
        t = timegm(&tm);
    } else if (*p == '+' || *p == '-' || *p == ' ') {   /* ' ': a '+' decoded from a URL */
        int sign = *p == '-' ? -1 : 1, oh = digits(p + 1, 2), om;
        if (oh < 0) return ACDM_EINVAL;   /* before reading on: p[1] or p[2] may be the end */
        const char *q = p + 3;
        if (*q == ':') q++;
        om = digits(q, 2);
        if (oh < 0 || om < 0 || q[2] || oh > 23 || om > 59) return ACDM_EINVAL;
        t = timegm(&tm) - sign * (oh * 3600 + om * 60);
    } else {
        return ACDM_EINVAL;
    }
    if (t == (time_t)-1) return ACDM_EINVAL;
    *ms = (int64_t)t * 1000 + frac;
    return 0;
}

int acdm_time_range(const char *since, const char *until, int64_t now_ms, int64_t default_span_ms,
                    int64_t *since_ms, int64_t *until_ms, char *err, size_t errlen)
{
    static const char form[] = "expected an ISO 8601 time such as 2026-11-01T00:00:00Z or 2026-11-01, or epoch milliseconds";
    int64_t u = now_ms, s;
    if (until && acdm_time_parse(until, &u)) { snprintf(err, errlen, "until: \"%.40s\": %s", until, form); return ACDM_EINVAL; }
    if (since) {
        if (acdm_time_parse(since, &s)) { snprintf(err, errlen, "since: \"%.40s\": %s", since, form); return ACDM_EINVAL; }
    } else if (default_span_ms > 0) {
        s = u - default_span_ms;
    } else {
        snprintf(err, errlen, "since: required (%s)", form);
        return ACDM_EINVAL;
    }
    if (u <= s) { snprintf(err, errlen, "until: must be after since"); return ACDM_EINVAL; }
    if (u - s > ACDM_EXPORT_MAX_RANGE_MS) {
        snprintf(err, errlen, "until: the range is %.1f days; at most 31 days per call (split the export)",
                 (double)(u - s) / 86400000.0);
        return ACDM_EINVAL;
    }
    *since_ms = s;
    *until_ms = u;
    return 0;
}

int acdm_export_read(const char *db_path, int64_t since_ms, int64_t until_ms, bool audit_only,
                     int (*cb)(void *user, int64_t id, const acdm_event_row *ev), void *user,
                     char *err, size_t errlen)
{
    static const char *const audit[] = {"audit", NULL};
    return acdm_export_read_types(db_path, since_ms, until_ms, audit_only ? audit : NULL, cb, user, err, errlen);
}

int acdm_export_read_types(const char *db_path, int64_t since_ms, int64_t until_ms, const char *const *types,
                           int (*cb)(void *user, int64_t id, const acdm_event_row *ev), void *user,
                           char *err, size_t errlen)
{
    return acdm_store_read_events(db_path, since_ms, until_ms, types, cb, user, err, errlen);
}
