/* store.h -- the durable store interface (SQLite today, PostgreSQL later), with grouped commits.
 *
 * Threading: every function here is called on the core (loop) thread only. Writes are queued
 * and committed by the store's own writer thread in groups (one transaction per flush, flushed
 * every group_commit_ms or when the queue is large). When committed work has callbacks to run,
 * the writer thread calls the `wake` function given at open (from the writer thread; it must be
 * thread-safe, e.g. uv_async_send); the core then calls acdm_store_poll() on the loop thread,
 * which runs the completion callbacks there. Reads use a separate connection on the loop thread.
 */
#ifndef ACDM_STORE_H
#define ACDM_STORE_H

#include "base/acdm.h"

typedef struct acdm_store acdm_store;

/* Bericht states as stored (and shown in the API). */
typedef enum {
    ACDM_B_QUEUED = 0,
    ACDM_B_OFFERED,
    ACDM_B_ACTIVE,
    ACDM_B_WRAPUP,
    ACDM_B_DONE,
    ACDM_B_ABANDONED,
    ACDM_B_CLOSED,      /* got the queue's closed response; not routed */
    ACDM_B__COUNT
} acdm_bstate;
const char *acdm_bstate_name(acdm_bstate s);

/* A bericht as a row. Strings are borrowed for the duration of the call (the store copies). */
typedef struct {
    const char *id;            /* UUIDv7 */
    const char *channel;       /* channel instance name, "api" for the REST API */
    acdm_kind kind;
    const char *direction;     /* "in" or "out" */
    const char *from;          /* customer address: CLI, email address, wa_id, ... */
    const char *customer_id;   /* may be NULL */
    const char *conversation;  /* conversation key, may be NULL */
    const char *queue;
    int priority;
    const char *skills_json;   /* JSON array of {"name","level"}, may be NULL */
    acdm_bstate state;
    const char *agent;         /* agent id, may be NULL */
    const char *idem_key;      /* idempotency key, unique per channel; may be NULL */
    const char *payload_json;  /* channel-owned JSON object (subject, text, ...), may be NULL */
    int64_t created_ms;
    int64_t queued_ms;         /* original queue time, kept across overflow/transfer/restart */
    const char *text;          /* insert: the customer's first text, stored in the thread with
                                * the row (and only if the row is: a duplicate writes nothing);
                                * may be NULL. Not filled by reads. */
} acdm_bericht_row;

/* A customer's follow-up message in a live bericht's thread. */
typedef struct {
    const char *bericht_id;
    const char *channel;       /* the channel instance it came in on */
    const char *idem_key;      /* the delivery's idempotency key, or NULL */
    int64_t ts_ms;
    const char *author;        /* the customer's address */
    const char *text;          /* may be NULL */
    const char *payload_json;  /* may be NULL */
    const char *queue, *kind;  /* for its message_in event */
} acdm_followup_row;

/* One event-log entry (append-only; reports are computed from these). */
typedef struct {
    int64_t ts_ms;
    const char *type;          /* "queued", "offered", "accepted", "rejected", "timeout", ... */
    const char *bericht;       /* may be NULL */
    const char *queue;         /* may be NULL */
    const char *agent;         /* may be NULL */
    const char *channel;       /* may be NULL */
    const char *kind;          /* may be NULL */
    const char *detail_json;   /* JSON object with type-specific fields, may be NULL */
} acdm_event_row;

/* Called on the loop thread (from acdm_store_poll) after the insert is committed.
 * status: 0 = inserted; ACDM_EEXIST = the idempotency key was seen before, existing_id is the
 * bericht created then (the new row was not stored); other negative = failure (not stored). */
typedef void (*acdm_store_insert_cb)(void *user, int status, const char *existing_id);

/* Called on the loop thread once everything queued before acdm_store_flush_cb was committed. */
typedef void (*acdm_store_flush_cb)(void *user, int status);

/* Opens (creating if needed) the store in dir (file dir/acdm.db, WAL mode, schema migrated).
 * group_commit_ms: the writer's flush interval. wake(wake_arg) is called from the writer thread
 * whenever acdm_store_poll has work to do. Returns 0, or a negative code with a sentence in err. */
int acdm_store_open(const char *dir, int group_commit_ms, void (*wake)(void *), void *wake_arg,
                    acdm_store **out, char *err, size_t errlen);

/* Flushes everything queued, stops the writer thread, closes. Completion callbacks still pending
 * are run before it returns. */
void acdm_store_close(acdm_store *st);

/* Runs completion callbacks of committed work; call on the loop thread after wake(). */
void acdm_store_poll(acdm_store *st);

/* Queues a new bericht row; cb runs after commit (see acdm_store_insert_cb). */
int acdm_store_insert_bericht(acdm_store *st, const acdm_bericht_row *row,
                              acdm_store_insert_cb cb, void *user);

/* Queues a state/queue/agent change of a bericht (grouped, no callback). agent may be NULL.
 * queued_ms is rewritten too (transfers and overflow keep or set it). */
int acdm_store_update_bericht(acdm_store *st, const char *id, acdm_bstate state,
                              const char *queue, const char *agent, int64_t queued_ms,
                              int64_t ts_ms);

/* Queues a change of a waiting bericht's fields (update): priority (-1: unchanged),
 * skills_json (NULL: unchanged), payload_patch (NULL: unchanged; else a JSON object merged into
 * the stored payload as an RFC 7386 merge patch: keys set, null removes). Grouped, no callback. */
/* Queues setting a bericht's conversation key (an outbound bericht gets one after it started;
 * recovery then restores it with the key). Grouped, no callback. */
int acdm_store_set_conversation(acdm_store *st, const char *id, const char *conversation,
                                int64_t ts_ms);
int acdm_store_amend_bericht(acdm_store *st, const char *id, int priority, const char *skills_json,
                             const char *payload_patch, int64_t ts_ms);

/* Queues an event-log append (grouped, no callback). */
int acdm_store_append_event(acdm_store *st, const acdm_event_row *ev);

/* Queues a message of a bericht's thread (customer or agent text; grouped, no callback).
 * direction "in" (customer) or "out" (agent); author: address or agent id. */
int acdm_store_add_message(acdm_store *st, const char *bericht_id, int64_t ts_ms,
                           const char *direction, const char *author, const char *text,
                           const char *payload_json);
/* As acdm_store_add_message, with the message's id (an agent's reply: the plugin's delivery
 * reports name it); GET .../messages shows it as "id". */
int acdm_store_add_message_id(acdm_store *st, const char *id, const char *bericht_id,
                              int64_t ts_ms, const char *direction, const char *author,
                              const char *text, const char *payload_json);

/* Queues a follow-up with its message_in event. Stored once per (channel, idem_key): a key a
 * bericht of that channel or an earlier follow-up already has makes it a duplicate that writes
 * nothing. cb runs after commit: 0 stored, ACDM_EEXIST a duplicate (existing_id: the bericht
 * the key belongs to), other negative a failure (nothing stored). */
int acdm_store_add_followup(acdm_store *st, const acdm_followup_row *f, acdm_store_insert_cb cb,
                            void *user);

/* cb runs once everything queued so far is committed; status ACDM_EIO when a write queued before
 * it and not yet committed at the call was lost (its group failed). */
int acdm_store_flush(acdm_store *st, acdm_store_flush_cb cb, void *user);
/* The position of the last write queued so far. acdm_store_flush_since(st, mark, ...) runs cb
 * once everything queued is committed, with ACDM_EIO if any group holding a write queued after
 * mark failed: take the mark before an action's writes, flush after them, and the status says
 * whether all of that action's writes are durable (an acknowledgement may then be sent). */
uint64_t acdm_store_mark(acdm_store *st);
int acdm_store_flush_since(acdm_store *st, uint64_t mark, acdm_store_flush_cb cb, void *user);

/* Recovery at start: calls row_cb for every bericht in state queued, offered or active
 * (in-flight work), ordered by queued_ms. Synchronous, on the loop thread, before serving. */
int acdm_store_load_open(acdm_store *st, void (*row_cb)(void *user, const acdm_bericht_row *row),
                         void *user);

/* After acdm_store_load_open failed: SQLite's words for why ("database disk image is malformed"). */
const char *acdm_store_read_error(const acdm_store *st);
/* How many berichten are in state queued, offered or active by the state index (read without
 * the table's pages, so it often answers when the recovery read hit a damaged page); -1 if not. */
int64_t acdm_store_count_open(acdm_store *st);

/* Reads one bericht as a JSON object text (malloc'd, caller frees), with its fields, state,
 * timestamps of every transition (from the event log) and its messages. ACDM_ENOENT if absent. */
int acdm_store_get_bericht_json(acdm_store *st, const char *id, char **json_out);

/* --- API tokens (stored as SHA-256 hashes; the token itself is shown once) --- */

/* Creates a token for role ("admin", "supervisor", "agent", or "channel:<instance>") and name
 * (an agent id for role agent). Writes the new token text (43 chars, base64url) into token_out. */
int acdm_store_token_create(acdm_store *st, const char *role, const char *name,
                            char token_out[64]);
/* Revokes every token of role "agent" bound to agent (an agent removed from the configuration):
 * committed before it returns; *n_revoked (may be NULL) says how many were still valid. */
int acdm_store_token_revoke_agent(acdm_store *st, const char *agent, int *n_revoked);
/* Looks a token up: on success fills role and name (caller buffers) and returns 0;
 * ACDM_ENOENT if unknown or revoked. */
int acdm_store_token_check(acdm_store *st, const char *token, char *role, size_t rolelen,
                           char *name, size_t namelen);

/* --- customer view (Klantbeeld) and the event log (export, audit); loop thread, read connection --- */

/* Every bericht from address (the customer's CLI, e-mail address, wa_id...), newest first:
 * *json_out (malloc'd) is {"items":[{id, created_ms, channel, kind, queue, state, handler,
 * subject, topics:[...], notes:[{ts, agent, text, to_queue}]}], "next": id or null}; pass next as cursor for the following page.
 * limit 1..500. */
int acdm_store_customer_history(acdm_store *st, const char *address, const char *cursor, int limit,
                                char **json_out);
/* The address's most registered topics since since_ms: [{"topic", "count"}], most first. */
int acdm_store_customer_topics(acdm_store *st, const char *address, int64_t since_ms, int limit,
                               char **json_out);
/* The database file (e.g. for a read-only connection of its own on a worker thread). */
const char *acdm_store_db_path(const acdm_store *st);

#define ACDM_STORE_COMMIT_NBUCKETS 12
#define ACDM_STORE_COMMIT_BUCKETS_US {250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, \
                                      250000, 500000, 1000000}
/* The writer's figures since the store was opened (GET /api/v1/health): whether the disk keeps
 * up shows in the commit times and in writes still queued. */
typedef struct {
    uint64_t commits, writes;      /* transactions committed, writes in them */
    int64_t commit_us_sum, commit_us_max;
    size_t queued;                 /* writes waiting for the writer now */
    uint64_t failed_groups;        /* groups that could not be committed (their writes lost) */
    uint64_t lost_writes;          /* writes in those groups */
    int failing;                   /* the last group failed: the store is degraded */
    int64_t failing_since_ms;      /* when the current run of failures began */
    int64_t recovered_ms;          /* when commits last succeeded again after failures (0: never) */
    char last_error[200];          /* the last failure, e.g. "commit failed: database or disk is full" */
    /* commit times: commit_hist[i] counts groups that took <= ACDM_STORE_COMMIT_BUCKETS_US[i]
     * (and more than the bucket before); the last slot those over the last bound */
    uint64_t commit_hist[ACDM_STORE_COMMIT_NBUCKETS + 1];
} acdm_store_figures;
void acdm_store_figures_get(acdm_store *st, acdm_store_figures *f);
/* Calls cb for every event with since_ms <= ts_ms < until_ms (of type, or any if NULL), oldest
 * first; the row's strings are borrowed for the call. cb returns non-zero to stop. Returns the
 * number of rows passed to cb, or ACDM_EIO. */
int acdm_store_events_each(acdm_store *st, int64_t since_ms, int64_t until_ms, const char *type,
                           int (*cb)(void *user, int64_t id, const acdm_event_row *ev), void *user);

/* --- small key/value store per channel instance (for plugins) --- */
/* set with value == NULL deletes. Visible to kv_get at once; durable at the next group commit. */
int acdm_store_kv_set(acdm_store *st, const char *ns, const char *key, const char *value, size_t len);
/* As kv_set; the entry expires at expires_ms (wall clock; 0 = never): kv_get no longer sees it
 * from then on, and acdm_store_kv_expire removes it. */
int acdm_store_kv_set_ttl(acdm_store *st, const char *ns, const char *key, const char *value,
                          size_t len, int64_t expires_ms);
/* On success *value is malloc'd (caller frees, NUL-terminated) and *len set; ACDM_ENOENT if
 * absent or expired. */
int acdm_store_kv_get(acdm_store *st, const char *ns, const char *key, char **value, size_t *len);
/* Queues the removal of at most `limit` entries expired by now_ms (the writer thread deletes
 * them in its next group). cb (may be NULL) runs on the loop with the number removed, or a
 * negative code: a full slice (== limit) means more may be left. */
int acdm_store_kv_expire(acdm_store *st, int64_t now_ms, int limit, acdm_store_flush_cb cb,
                         void *user);

/* --- attachments: files customers send through a channel, stored with the bericht --- */
/* The largest attachment stored from a file (plugin ABI ACDM_ATTACHMENT_FILE_MAX). */
#define ACDM_STORE_ATTACHMENT_FILE_MAX (256ull * 1024u * 1024u)
typedef struct {
    const char *id, *bericht, *channel, *filename, *content_type;
    const char *content_id;    /* may be NULL */
    const void *data;          /* in memory (stored in the database), len bytes; or */
    size_t len;
    int fd;                    /* >= 0: a readable file the writer thread copies to
                                * <data>/attachments/<id> (synced before its row commits),
                                * streamed, never read whole; the store closes fd. -1: data */
    int64_t ts_ms;
} acdm_attachment_new;
/* Queues the attachment (grouped commit like messages: committed before any write queued
 * after it). id: the caller's unique id. */
int acdm_store_attachment_add(acdm_store *st, const acdm_attachment_new *a);
/* acdm_store_attachment_add from memory. */
int acdm_store_attachment_put(acdm_store *st, const char *id, const char *bericht,
                              const char *channel, const char *filename, const char *content_type,
                              const void *data, size_t len, int64_t ts_ms);
typedef struct {
    char bericht[64], channel[64], filename[256], content_type[128], content_id[256];
    char path[4096];           /* the file of a file-backed attachment, "" when in the database */
    char *data;                /* get: malloc'd (caller frees) for one in the database, else NULL */
    size_t len;                /* its size */
} acdm_attachment;
/* A committed attachment's metadata (no data); ACDM_ENOENT if unknown. */
int acdm_store_attachment_meta(acdm_store *st, const char *id, acdm_attachment *out);
/* Metadata, and the data of one in the database (a file-backed one: path set, data NULL). */
int acdm_store_attachment_get(acdm_store *st, const char *id, acdm_attachment *out);
/* Metadata and a readable fd at offset 0 (the file, or an in-memory copy of a database one);
 * the caller closes it. */
int acdm_store_attachment_open(acdm_store *st, const char *id, acdm_attachment *meta, int *fd);
/* Records that channel may read attachment id (an agent's reply to one of its berichten
 * carried it); durable at the next group commit. */
int acdm_store_attachment_ref(acdm_store *st, const char *id, const char *channel);
/* 1 when acdm_store_attachment_ref(id, channel) was committed, 0 when not, negative on error. */
int acdm_store_attachment_ref_has(acdm_store *st, const char *id, const char *channel);

/* --- search (REST GET /api/v1/berichten) --- */
typedef struct {
    const char *state, *queue, *channel, *from, *agent;  /* exact matches; NULL = any */
    int64_t since_ms, until_ms;    /* created_ms within [since, until]; 0 = unbounded */
    const char *cursor;            /* the "next" of the previous page (an id), or NULL */
    int offset;                    /* rows to skip (used without a cursor) */
    int limit;                     /* 1..500 */
    const char *source;            /* payload's "source" (e.g. "webchat-leave-message"), or NULL */
} acdm_bericht_query;
/* Berichten matching q, newest first (by id: UUIDv7 is time-ordered). *json_out (malloc'd) is
 * {"items":[{id, channel, kind, from, customer_id, conversation, queue, priority, state, agent,
 * subject, created_ms, queued_ms, updated_ms}], "next": id or null}. ACDM_EINVAL on a bad q. */
int acdm_store_search_berichten(acdm_store *st, const acdm_bericht_query *q, char **json_out);

/* Reads the event log of the database file db_path through a read-only connection of its own
 * (any thread; beside a running acdmd; nothing is created or migrated): calls cb for every
 * event with since_ms <= ts_ms < until_ms of the types listed (NULL-terminated, at most 16;
 * NULL = every type), oldest first; the row's strings are borrowed for the call; cb returns
 * non-zero to stop. Returns the number of rows passed to cb, or ACDM_EIO with a sentence in
 * err. (The event export, the reports and today's figures read through this.) */
int acdm_store_read_events(const char *db_path, int64_t since_ms, int64_t until_ms,
                           const char *const *types,
                           int (*cb)(void *user, int64_t id, const acdm_event_row *ev), void *user,
                           char *err, size_t errlen);

/* An online, consistent copy of the database file src into dst while acdmd keeps writing
 * (SQLite's backup API, in steps, all in one read transaction: the copy is the database as of
 * the backup's start, and acdmd's commits go on meanwhile). Written as dst.partial, synced,
 * verified with PRAGMA integrity_check, then renamed to dst (a failed backup leaves no dst).
 * Any thread. 0, or ACDM_EIO with a sentence in err. */
typedef struct {
    int step_pages;            /* pages per step (default 1024) */
    int pause_ms;              /* sleep between steps (default 0), to spare the disk */
    const int *cancel;         /* may be NULL; non-zero (read atomically) stops the copy or its
                                * check soon: ACDM_EIO, "cancelled", no file left */
} acdm_backup_opts;
typedef struct {
    int64_t snapshot_ms;       /* wall clock when the copy's snapshot was taken */
    int64_t bytes;             /* the copy's size */
    int64_t copy_ms, verify_ms;
    int pages;
} acdm_backup_info;
int acdm_store_backup(const char *src, const char *dst, const acdm_backup_opts *o,
                      acdm_backup_info *info, char *err, size_t errlen);
/* acdm_store_backup with the default steps. */
int acdm_store_backup_file(const char *src, const char *dst, char *err, size_t errlen);
/* PRAGMA integrity_check of the database file path (read-only): 0 when "ok", else ACDM_EIO
 * with SQLite's first complaint in err. */
int acdm_store_verify_file(const char *path, char *err, size_t errlen);

/* --- retention (docs/operations.md "Retention"): one slice at a time, on the writer thread --- */
typedef enum {
    ACDM_PRUNE_EVENTS,         /* event-log rows older than the cutoff (never the audit log) */
    ACDM_PRUNE_MESSAGES,       /* thread messages older than the cutoff, of finished berichten */
    ACDM_PRUNE_PAYLOADS,       /* the channel payload (subject, headers) of finished berichten
                                * last changed before the cutoff; the row itself stays */
    ACDM_PRUNE_ATTACHMENTS,    /* attachments (rows and files) of finished berichten */
} acdm_prune_what;
/* Runs on the loop: status 0 or ACDM_EIO; changed: rows removed/emptied by the slice; next:
 * the cursor for the following slice, 0 when this kind is done. */
typedef void (*acdm_store_prune_cb)(void *user, int status, int64_t changed, int64_t next);
/* Queues one slice of at most limit rows (committed in a group with other writes: routing is
 * held up by one small slice at most). cursor: 0 at first, then the previous slice's next. */
int acdm_store_prune(acdm_store *st, acdm_prune_what what, int64_t before_ms, int64_t cursor,
                     int limit, acdm_store_prune_cb cb, void *user);

#endif
