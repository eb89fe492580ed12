/* schedule.h -- opening hours: is a schedule open at an instant, when may that change, and the process time zone. */
#ifndef ACDM_SCHEDULE_H
#define ACDM_SCHEDULE_H

#include "config/config.h"

/* True when schedule s is open at epoch_ms, judged in the local time of the process time
 * zone (TZ, see acdm_set_timezone): open when the local minute of the day lies in one of the
 * intervals of that weekday and the local date is not a holiday (holidays are closed all
 * day). A NULL schedule is always open. */
bool acdm_schedule_open_at(const acdm_schedule_def *s, int64_t epoch_ms);

/* The next instant (epoch ms, > epoch_ms) at which acdm_schedule_open_at(s, .) may change:
 * an interval start or end, a local midnight (holiday or weekday change) or a DST
 * transition that opens or closes it, whichever comes first, but never more than 24 h
 * after epoch_ms. Meant to arm a timer: when it fires, re-evaluate acdm_schedule_open_at
 * and call this again. Exact across DST changes (local times that do not exist or occur
 * twice). */
int64_t acdm_schedule_next_change(const acdm_schedule_def *s, int64_t epoch_ms);

/* True when tz names a time zone file /usr/share/zoneinfo/<tz> (no "..", not absolute). */
bool acdm_timezone_exists(const char *tz);

/* Sets the process time zone (setenv TZ + tzset). Returns 0, or ACDM_EINVAL (and changes
 * nothing) when the zone does not exist (see acdm_timezone_exists). */
int acdm_set_timezone(const char *tz);

#endif
