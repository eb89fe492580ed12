/* export.h -- the event log as JSON or CSV (REST /api/v1/events and acdmctl export), and the
 * time arguments they take (ISO 8601 or epoch milliseconds). */
#ifndef ACDM_EXPORT_H
#define ACDM_EXPORT_H

#include "base/acdm.h"
#include "store/store.h"

#define ACDM_EXPORT_MAX_RANGE_MS (31LL * 86400 * 1000)   /* one call covers at most 31 days */

/* The export and the reports write into acdm_sbuf (acdm.h), the project's one text buffer. */

typedef enum { ACDM_EXPORT_JSON = 0, ACDM_EXPORT_CSV } acdm_export_format;
int acdm_export_format_parse(const char *s);   /* "json" / "csv" -> format, else -1 */
const char *acdm_export_content_type(acdm_export_format f);

/* Reads the event log of the database file db_path through a read-only connection of its own
 * (any thread; beside a running acdmd; nothing is created or migrated): calls cb for every
 * event with since_ms <= ts_ms < until_ms (only type "audit" if audit_only), oldest first; the
 * row's strings are borrowed for the call; cb returns non-zero to stop. Returns the number of
 * rows passed to cb, or ACDM_EIO with a sentence in err. */
int acdm_export_read(const char *db_path, int64_t since_ms, int64_t until_ms, bool audit_only,
                     int (*cb)(void *user, int64_t id, const acdm_event_row *ev), void *user,
                     char *err, size_t errlen);

/* The same for the event types listed (NULL-terminated, at most 16; NULL = every type). */
int acdm_export_read_types(const char *db_path, int64_t since_ms, int64_t until_ms, const char *const *types,
                           int (*cb)(void *user, int64_t id, const acdm_event_row *ev), void *user,
                           char *err, size_t errlen);

/* Writes the opening ("[" or the CSV header row), one event (first: the first one), the end. */
void acdm_export_begin(acdm_sbuf *b, acdm_export_format f);
void acdm_export_event(acdm_sbuf *b, acdm_export_format f, int64_t id, const acdm_event_row *ev, bool first);
void acdm_export_end(acdm_sbuf *b, acdm_export_format f);
/* One CSV field, RFC 4180: quoted when it holds a comma, quote, CR or LF; quotes doubled. */
void acdm_csv_field(acdm_sbuf *b, const char *s);

/* "2026-11-01", "2026-11-01T08:30", "2026-11-01T08:30:00Z", "...+01:00", "...-0500", fractions
 * of a second, ' ' instead of 'T'; without a zone: local time (the configured timezone). Or an
 * integer of epoch milliseconds (12..15 digits). 0 and *ms, or ACDM_EINVAL. */
int acdm_time_parse(const char *s, int64_t *ms);
/* UTC, "2026-11-01T07:30:00.000Z". */
void acdm_time_iso(int64_t ms, char out[48]);

/* since/until of an export: since required unless default_span_ms > 0 (then until - span);
 * until defaults to now; until > since; at most ACDM_EXPORT_MAX_RANGE_MS apart. On failure
 * ACDM_EINVAL and err names the parameter ("since: ..."). */
int acdm_time_range(const char *since, const char *until, int64_t now_ms, int64_t default_span_ms,
                    int64_t *since_ms, int64_t *until_ms, char *err, size_t errlen);

#endif
