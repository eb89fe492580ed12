/* report.h -- supervisor reports (R28): figures per queue, channel, agent or topic over a period
 * in 15-minute, hourly or daily intervals of local time, computed from the event log, written
 * as JSON, CSV or Excel (xlsx).
 *
 * The queue and channel figures use the live figures' definitions (stats.h, acdm_stats_count):
 * offered, answered, abandoned, quick drops apart (R28f), service level = answered within the
 * queue's sl_seconds / (answered + abandoned). An event counts in the interval of its own time
 * (an acceptance where it was answered, a done where it was finished). Not tied to the daemon:
 * a report reads the database through a read-only connection of its own (export.c), so it runs
 * on any thread; the unit tests feed events directly (acdm_report_add).
 */
#ifndef ACDM_REPORT_H
#define ACDM_REPORT_H

#include "config/config.h"
#include "store/export.h"
#include "store/store.h"

typedef enum { ACDM_REPORT_QUEUES = 0, ACDM_REPORT_CHANNELS, ACDM_REPORT_AGENTS, ACDM_REPORT_TOPICS } acdm_report_kind;
typedef enum { ACDM_REPORT_JSON = 0, ACDM_REPORT_CSV, ACDM_REPORT_XLSX, ACDM_REPORT_PDF } acdm_report_format;

#define ACDM_REPORT_MAX_INTERVALS 3000                   /* e.g. a month in 15 minutes */
#define ACDM_REPORT_MAX_RANGE_MS (400LL * 86400 * 1000)  /* a year and a bit (R67: 13 months kept) */
#define ACDM_REPORT_WARMUP_MS (12LL * 3600 * 1000)       /* read before `from`: agent states, acceptances */

/* What a report covers. from is aligned to the interval grid of local time. */
typedef struct {
    acdm_report_kind kind;
    int64_t from_ms, until_ms;
    int interval_s;            /* 900, 3600 or 86400 (a local calendar day: 23..25 h) */
    char period[12];           /* "day", "week", "month", "quarter" or "" (from/until given) */
} acdm_report_range;

/* The query parameters of GET /api/v1/reports (any may be NULL): kind (default queues),
 * period day|week|month|quarter (the one holding `from`, default now; until not allowed), else
 * from (required) and until (default now), interval 15m|1h|1d (default 1h up to a day, else 1d).
 * Times as acdm_time_parse (local time without a zone). On failure ACDM_EINVAL and err starts
 * with the parameter's name ("interval: ..."). */
int acdm_report_params(const char *kind, const char *from, const char *until, const char *period,
                       const char *interval, int64_t now_ms, acdm_report_range *out, char *err, size_t errlen);

/* "json" (or NULL), "csv", "xlsx", "pdf" -> format, else -1. */
int acdm_report_format_parse(const char *s);
const char *acdm_report_content_type(acdm_report_format f);
const char *acdm_report_kind_name(acdm_report_kind k);
const char *acdm_report_interval_name(int interval_s);   /* "15m", "1h", "1d" */
/* "YYYY-MM-DD" of the local day (the process time zone: the config's) holding ms: a
 * download's file name carries the date the supervisor chose, not the UTC date of its local
 * midnight (a day early east of UTC). */
void acdm_report_local_date(int64_t ms, char out[16]);

typedef struct acdm_report acdm_report;

/* A report over rg. cfg (read now, on the caller's thread; may be NULL) gives the queues'
 * sl_seconds, the queues, channels and reason codes listed even without events, and the time
 * zone's name for the output. NULL when out of memory. */
acdm_report *acdm_report_new(const acdm_report_range *rg, const acdm_config *cfg);
void acdm_report_free(acdm_report *r);

/* Feeds one event; events come oldest first, from rg.from_ms - ACDM_REPORT_WARMUP_MS on
 * (earlier ones set up agent states and acceptances without being counted). */
void acdm_report_add(acdm_report *r, const acdm_event_row *ev);
/* Ends the feed: agents' current states count up to min(until, now). */
void acdm_report_end(acdm_report *r, int64_t now_ms);

/* Reads the events of the database file db_path (read-only connection, any thread) into r and
 * ends it. Returns the number of events read, or ACDM_EIO with a sentence in err. */
int acdm_report_read(acdm_report *r, const char *db_path, int64_t now_ms, char *err, size_t errlen);

/* The report as JSON ({kind, period, interval, timezone, from, until, from_ms, until_ms,
 * columns, rows, totals}), CSV (the rows; header line first) or xlsx (sheets "Rapport" with the
 * rows and "Totaal" with the totals; written through a temporary file in tmpdir) or PDF (A4
 * landscape: the totals, then the rows; report_pdf.c) into out.
 * 0, or a negative code with a sentence in err. */
int acdm_report_write(acdm_report *r, acdm_report_format f, acdm_sbuf *out, const char *tmpdir,
                      char *err, size_t errlen);

/* The table, for tests and callers that want values: the column names, the number of rows
 * (totals: the totals), and one value as text ("" for null; numbers as in CSV). */
size_t acdm_report_n_columns(const acdm_report *r);
const char *acdm_report_column(const acdm_report *r, size_t i);
size_t acdm_report_n_rows(acdm_report *r, bool totals);
/* The value of column `col` in row `row` (interval rows in order, then key) into out. */
void acdm_report_cell(acdm_report *r, bool totals, size_t row, const char *col, char *out, size_t len);
/* The same by column index. */
void acdm_report_text(acdm_report *r, bool totals, size_t row, size_t col, char *out, size_t len);
const acdm_report_range *acdm_report_range_of(const acdm_report *r);

/* CSV and PDF as the Rapportages page shows the report: lang "nl" or "en" (else: CSV with the
 * column names and raw values, for tools: the daily export) gives the page's headers, local
 * times "dd-mm-yyyy hh:mm", durations m:ss / h:mm:ss, the service level as "85,0%" (nl) or
 * "85.0%"; excel: CSV with ';' between fields and a UTF-8 BOM (what Excel in a Dutch locale
 * opens as columns). JSON and xlsx keep the column names and numbers (seconds) for BI. */
void acdm_report_set_display(acdm_report *r, const char *lang, bool excel);
/* The page's header of column i (Dutch unless set to "en"), in buf when composed. */
const char *acdm_report_label(const acdm_report *r, size_t i, char *buf, size_t len);
/* The page's text of one value (null: "" or, dash, "–"); true when it is a figure (right-aligned). */
bool acdm_report_display(acdm_report *r, bool totals, size_t row, size_t col, bool dash, char *out, size_t len);
const char *acdm_report_timezone(const acdm_report *r);


#endif
