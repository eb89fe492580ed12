/* schedule.c -- opening hours and holidays in local time, exact across DST changes. */
#include "config/schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DAY_MS ((int64_t)86400 * 1000)

static time_t floor_sec(int64_t ms)
{
    int64_t s = ms / 1000;
    if (ms % 1000 < 0) s--;
    return (time_t)s;
}

static bool is_holiday(const acdm_schedule_def *s, const struct tm *tm)
{
    char d[40];
    snprintf(d, sizeof d, "%04d-%02d-%02d", tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday);
    for (size_t i = 0; i < s->n_holidays; i++)
        if (!strncmp(s->holidays[i], d, 10)) return true;
    return false;
}

bool acdm_schedule_open_at(const acdm_schedule_def *s, int64_t epoch_ms)
{
    if (!s) return true;
    time_t t = floor_sec(epoch_ms);
    struct tm tm;
    if (!localtime_r(&t, &tm)) return false;
    if (is_holiday(s, &tm)) return false;
    int wd = tm.tm_wday, min = tm.tm_hour * 60 + tm.tm_min;
    for (unsigned i = 0; i < s->n_week[wd] && i < ACDM_MAX_INTERVALS; i++)
        if (min >= s->week[wd][i].from_min && min < s->week[wd][i].to_min) return true;
    return false;
}

/* Adds to *best every instant after t at which the local clock reads day (y, mon, mday + add)
 * at minute `minute` (may be 1440 = next midnight); tries both DST readings so a wall time
 * that occurs twice gives both instants, and one that does not exist gives none. */
static void consider_wall(time_t t, const struct tm *base, int add_days, int minute, time_t *best)
{
    for (int dst = -1; dst <= 1; dst++) {
        struct tm w = {0};
        w.tm_year = base->tm_year;
        w.tm_mon = base->tm_mon;
        w.tm_mday = base->tm_mday + add_days + minute / 1440;
        w.tm_hour = (minute % 1440) / 60;
        w.tm_min = minute % 60;
        w.tm_isdst = dst;
        struct tm want = w; /* the wanted calendar date, normalised at noon */
        want.tm_hour = 12;
        want.tm_min = 0;
        want.tm_isdst = -1;
        if (mktime(&want) == (time_t)-1) continue;
        time_t c = mktime(&w);
        if (c == (time_t)-1) continue;
        struct tm back;
        if (!localtime_r(&c, &back)) continue;
        if (back.tm_year != want.tm_year || back.tm_mon != want.tm_mon ||
            back.tm_mday != want.tm_mday || back.tm_hour != (minute % 1440) / 60 ||
            back.tm_min != minute % 60)
            continue; /* that wall time does not exist with this DST reading */
        if (c > t && c < *best) *best = c;
    }
}

int64_t acdm_schedule_next_change(const acdm_schedule_def *s, int64_t epoch_ms)
{
    int64_t limit = epoch_ms + DAY_MS;
    if (!s) return limit;
    time_t t = floor_sec(epoch_ms);
    time_t best = floor_sec(limit) + 1;
    struct tm now;
    if (!localtime_r(&t, &now)) return limit;

    /* today and tomorrow (a 24 h window never reaches further on the local calendar) */
    for (int add = 0; add <= 1; add++) {
        struct tm day = {0};
        day.tm_year = now.tm_year;
        day.tm_mon = now.tm_mon;
        day.tm_mday = now.tm_mday + add;
        day.tm_hour = 12;
        day.tm_isdst = -1;
        if (mktime(&day) == (time_t)-1) continue;
        consider_wall(t, &now, add, 1440, &best); /* midnight ending this day */
        for (unsigned i = 0; i < s->n_week[day.tm_wday] && i < ACDM_MAX_INTERVALS; i++) {
            consider_wall(t, &now, add, s->week[day.tm_wday][i].from_min, &best);
            consider_wall(t, &now, add, s->week[day.tm_wday][i].to_min, &best);
        }
    }

    /* a DST transition within the window: the local clock jumps, which may open or close */
    struct tm a, b;
    time_t hi = floor_sec(limit);
    if (localtime_r(&t, &a) && localtime_r(&hi, &b) && a.tm_gmtoff != b.tm_gmtoff) {
        time_t lo = t; /* offset(lo) == a.tm_gmtoff, offset(hi) differs */
        while (hi - lo > 1) {
            time_t mid = lo + (hi - lo) / 2;
            struct tm m;
            if (!localtime_r(&mid, &m)) break;
            if (m.tm_gmtoff == a.tm_gmtoff) lo = mid; else hi = mid;
        }
        /* only when the jump itself opens or closes (else the wall boundaries cover it) */
        if (hi > t && hi < best &&
            acdm_schedule_open_at(s, (int64_t)hi * 1000) != acdm_schedule_open_at(s, (int64_t)hi * 1000 - 1))
            best = hi;
    }

    int64_t r = (int64_t)best * 1000;
    if (r > limit) r = limit;
    if (r <= epoch_ms) r = epoch_ms + 1;
    return r;
}

bool acdm_timezone_exists(const char *tz)
{
    if (!tz || !*tz || tz[0] == '/' || strstr(tz, "..") || strlen(tz) > 200) return false;
    for (const char *p = tz; *p; p++) {
        char ch = *p;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '/' || ch == '_' || ch == '-' || ch == '+'))
            return false;
    }
    char path[256];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int acdm_set_timezone(const char *tz)
{
    if (!acdm_timezone_exists(tz)) return ACDM_EINVAL;
    if (setenv("TZ", tz, 1) != 0) return ACDM_ENOMEM;
    tzset();
    return ACDM_OK;
}
