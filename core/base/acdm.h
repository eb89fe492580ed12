/* acdm.h -- the words every core file shares: kinds, strategies, error codes, time. */
#ifndef ACDM_H
#define ACDM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define ACDM_VERSION "0.1.0"

/* Error codes: 0 is success, failures are negative. */
enum {
    ACDM_OK = 0,
    ACDM_EINVAL = -1,   /* bad argument or input */
    ACDM_ENOENT = -2,   /* no such bericht, agent, queue, ... */
    ACDM_EEXIST = -3,   /* already exists (e.g. idempotency key seen before) */
    ACDM_ESTATE = -4,   /* not allowed in the current state */
    ACDM_ECLOSED = -5,  /* queue closed */
    ACDM_ENOMEM = -6,
    ACDM_EPERM = -7,    /* not allowed for this role / agent */
    ACDM_EIO = -8,      /* storage or I/O failure */
    ACDM_EFULL = -9,    /* no capacity */
    ACDM_EABI = -10,    /* plugin ABI mismatch */
    ACDM_EPENDING = -11 /* not an error: the answer comes later via a callback */
};
const char *acdm_strerror(int err);

/* Interaction kinds. Each has its own agent capacity. */
typedef enum {
    ACDM_KIND_VOICE = 0,
    ACDM_KIND_CHAT,
    ACDM_KIND_EMAIL,
    ACDM_KIND_SMS,
    ACDM_KIND_WHATSAPP,
    ACDM_KIND_CALLBACK,
    ACDM_KIND__COUNT
} acdm_kind;
const char *acdm_kind_name(acdm_kind k);
int acdm_kind_parse(const char *s); /* returns kind or -1 */

/* Agent-selection strategies of a queue. */
typedef enum {
    ACDM_STRAT_LINEAR = 0,
    ACDM_STRAT_ROUND_ROBIN,
    ACDM_STRAT_LONGEST_IDLE,
    ACDM_STRAT_LEAST_OCCUPIED,
    ACDM_STRAT_FEWEST_HANDLED,
    ACDM_STRAT_RANDOM,
    ACDM_STRAT_RING_ALL,
    ACDM_STRAT__COUNT
} acdm_strategy;
const char *acdm_strategy_name(acdm_strategy s);
int acdm_strategy_parse(const char *s); /* returns strategy or -1 */

/* UTF-8: whether s[0..n) is well-formed (no overlong forms, surrogates or code points above
 * U+10FFFF), and the number of characters (code points) in a NUL-terminated string: text
 * limits are counted in characters, as the API documents them. */
bool acdm_utf8_valid(const char *s, size_t n);
size_t acdm_utf8_chars(const char *s);

/* Wall-clock milliseconds since the epoch (used for every timestamp). */
int64_t acdm_now_ms(void);

/* Writes a new time-ordered UUIDv7 (36 chars + NUL) into out[37]. */
void acdm_uuidv7(char out[37], int64_t now_ms);

/* Compact JSON text of j (NULL for NULL): in buf when it fits in cap bytes with its NUL (no heap
 * use: the hot paths serialise small documents), else a malloc'd string also left in *heap for
 * the caller to free (*heap is NULL otherwise). */
struct json_t;
const char *acdm_json_text(const struct json_t *j, char *buf, size_t cap, char **heap);

/* A growable text for JSON written directly, where building a jansson tree and dumping it costs
 * more than the work (the supervisors' stats every second, the per-bericht hot paths: jansson's
 * dump keeps a loop-detection hashtable keyed by printed pointers for every container).
 * Start it zeroed (heap from the first byte; the caller frees p or takes it) or on caller storage
 * with acdm_sb_on (moved to the heap only if it outgrows it; release with acdm_sb_free).
 * Strings are escaped per RFC 8259 (input is valid UTF-8: parsed by jansson or validated). */
typedef struct { char *p; size_t n, cap; bool oom, borrowed; } acdm_sbuf;
void acdm_sb_on(acdm_sbuf *b, char *buf, size_t cap);
void acdm_sb_add(acdm_sbuf *b, const char *s, size_t n);
void acdm_sb_str(acdm_sbuf *b, const char *s);      /* as is */
void acdm_sb_jstr(acdm_sbuf *b, const char *s);     /* a JSON string (quoted, escaped); null if NULL */
void acdm_sb_int(acdm_sbuf *b, int64_t v);
void acdm_sb_bool(acdm_sbuf *b, bool v);
void acdm_sb_free(acdm_sbuf *b);

/* A flat JSON object on an acdm_sbuf (event details, the ingest reply, a plain payload). */
typedef struct { acdm_sbuf sb; int fields; } acdm_jobj;
void acdm_jobj_init(acdm_jobj *o, char *buf, size_t cap);           /* buf: first storage */
void acdm_jobj_str(acdm_jobj *o, const char *key, const char *val);   /* val NULL: skipped */
void acdm_jobj_int(acdm_jobj *o, const char *key, int64_t v);
void acdm_jobj_bool(acdm_jobj *o, const char *key, bool v);
/* The text ("{...}", NUL-terminated; o->sb.n bytes), or NULL when out of memory. */
const char *acdm_jobj_end(acdm_jobj *o);
static inline void acdm_jobj_free(acdm_jobj *o) { acdm_sb_free(&o->sb); }

/* Max length of an id, a queue name or an agent id (excluding NUL). */
#define ACDM_NAME_MAX 63

#endif
