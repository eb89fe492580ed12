/* log.h -- one logging macro; the level is checked before arguments are evaluated. */
#ifndef ACDM_LOG_H
#define ACDM_LOG_H

enum { ACDM_LOG_ERR = 0, ACDM_LOG_WARN, ACDM_LOG_NOTICE, ACDM_LOG_INFO, ACDM_LOG_DEBUG };

extern int acdm_log_level;
/* Output format: 0 text ("2026-11-02 08:00:00.123 INF [who] message"), 1 JSON, one object a
 * line with the same fields: {"ts":"2026-11-02T08:00:00.123+01:00","level":"info",
 * "priority":6,"who":"core","msg":"..."} (priority: syslog's, for journald and log shippers). */
extern int acdm_log_json;
int acdm_log_format_parse(const char *s); /* "text" -> 0, "json" -> 1, else -1 */
/* stderr is the journal's stream ($JOURNAL_STREAM names its device and inode, as systemd sets
 * it): every line then starts with "<N>" (N: syslog priority), which journald takes as the
 * entry's PRIORITY and strips, so `journalctl -p warning` filters acdm's lines. */
void acdm_log_detect_journal(void);
void acdm_log_raw(int level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int acdm_log_level_parse(const char *s); /* "error".."debug" -> level or -1 */
/* A line of the same origin (who and format) is printed at most 20 times per 10 s; the rest
 * are counted and summarised ("... the line above repeated N more times in 10 s") when the
 * next window starts or at acdm_log_flush_repeats (the daemon calls it every 10 s and at exit). */
/* As acdm_log_raw, with the repeat limit keyed on `origin` (the caller's own format) instead
 * of fmt: the plugin host prints a plugin's formatted line with "%s" and keys it on the
 * plugin's format, so each plugin call site has its own limit. */
void acdm_log_origin(int level, const char *who, const char *origin, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void acdm_log_flush_repeats(void);

/* who: the subsystem or plugin instance name, printed in every line. */
#define acdm_log(level, who, ...) \
    do { if ((level) <= acdm_log_level) acdm_log_raw((level), (who), __VA_ARGS__); } while (0)

#endif
