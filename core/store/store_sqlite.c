/* store_sqlite.c -- the durable store on SQLite (WAL): a writer thread with grouped commits. */
#include "store/store.h"
#include "base/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#define WHO "store"
#define SCHEMA_VERSION 6
#define FLUSH_OPS 512            /* flush at once when this many ops are queued */
/* Under heavy load (this many writes already waiting when the writer turns to them) a group
 * waits up to BUSY_LINGER_US from its oldest write for more, as PostgreSQL's commit_delay does
 * with commit_siblings: every commit costs the same page writes and fsync whatever its size, so
 * bigger groups cut the writer's CPU per bericht and the loop's wake-ups at high ingest rates.
 * At 1,000 berichten/s with agents working them (~9 writes each, ~30 per group) it never
 * lingers, so offers are not delayed (benchmarks 5 and 5c). */
#define BUSY_OPS 64
#define BUSY_LINGER_US 1000
#define BUSY_TIMEOUT_MS 5000
#define KV_BUCKETS 256           /* overlay hash: pending kv writes are few (one group) */

static const char *const bstate_names[ACDM_B__COUNT] = {
    "queued", "offered", "active", "wrapup", "done", "abandoned", "closed"};

const char *acdm_bstate_name(acdm_bstate s)
{
    return (unsigned)s < ACDM_B__COUNT ? bstate_names[s] : "?";
}

static int bstate_parse(const char *s)
{
    for (int i = 0; s && i < ACDM_B__COUNT; i++)
        if (!strcmp(s, bstate_names[i])) return i;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Schema. Each entry of `migrations` takes the database from version i to i + 1; a new version
 * appends an entry (ALTER TABLE ..., CREATE INDEX ...) and bumps SCHEMA_VERSION.
 * States and kinds are stored by name so that the file reads well in the sqlite3 shell and does
 * not depend on the order of the C enums.
 */
static const char *const migrations[SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE berichten ("
    "  id TEXT PRIMARY KEY, channel TEXT NOT NULL, kind TEXT NOT NULL, direction TEXT NOT NULL,"
    "  from_addr TEXT, customer_id TEXT, conversation TEXT, queue TEXT NOT NULL,"
    "  priority INTEGER NOT NULL DEFAULT 0, skills_json TEXT, state TEXT NOT NULL, agent TEXT,"
    "  idem_key TEXT, payload_json TEXT, created_ms INTEGER NOT NULL, queued_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX berichten_idem ON berichten(channel, idem_key) WHERE idem_key IS NOT NULL;"
    /* load_open reads exactly this partial index, already in queued_ms order (no sort) */
    "CREATE INDEX berichten_open ON berichten(queued_ms)"
    "  WHERE state IN ('queued','offered','active');"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, type TEXT NOT NULL,"
    "  bericht TEXT, queue TEXT, agent TEXT, channel TEXT, kind TEXT, detail_json TEXT);"
    "CREATE INDEX events_ts ON events(ts_ms);"
    "CREATE INDEX events_bericht ON events(bericht) WHERE bericht IS NOT NULL;"
    "CREATE TABLE messages ("
    "  bericht TEXT NOT NULL, ts_ms INTEGER NOT NULL, direction TEXT NOT NULL, author TEXT,"
    "  text TEXT, payload_json TEXT);"
    /* not in the brief's list, but get_bericht_json would scan every message without it */
    "CREATE INDEX messages_bericht ON messages(bericht, ts_ms);"
    "CREATE TABLE tokens ("
    "  hash TEXT PRIMARY KEY, role TEXT NOT NULL, name TEXT, created_ms INTEGER NOT NULL,"
    "  revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE kv (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB, PRIMARY KEY(ns, key));",
    /* 1 -> 2: files customers sent through a channel (web chat attachments) */
    "CREATE TABLE attachments ("
    "  id TEXT PRIMARY KEY, bericht TEXT NOT NULL, channel TEXT, filename TEXT NOT NULL,"
    "  content_type TEXT NOT NULL, size INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    "  data BLOB NOT NULL);"
    "CREATE INDEX attachments_bericht ON attachments(bericht);",
    /* 2 -> 3: a customer's berichten across channels (Klantbeeld), newest first by id */
    "CREATE INDEX berichten_from ON berichten(from_addr, id) WHERE from_addr IS NOT NULL;",
    /* 3 -> 4: the audit log by time (partial: the event log's other writes do not pay for it) */
    "CREATE INDEX events_audit ON events(ts_ms) WHERE type = 'audit';",
    /* 4 -> 5: a customer's follow-up keeps its channel's idempotency key, so a redelivered
     * follow-up (IMAP re-fetch, a webhook retry) is stored once */
    "ALTER TABLE messages ADD COLUMN channel TEXT;"
    "ALTER TABLE messages ADD COLUMN idem_key TEXT;"
    "CREATE UNIQUE INDEX messages_idem ON messages(channel, idem_key) WHERE idem_key IS NOT NULL;",
    /* 5 -> 6 (plugin ABI 1.1): file-backed attachments (file: its name under <data>/attachments,
     * data then empty) with a content-id; which channels may read an attachment an agent's reply
     * carried; key/value entries with an expiry (removed in slices by the writer) */
    "ALTER TABLE attachments ADD COLUMN content_id TEXT;"
    "ALTER TABLE attachments ADD COLUMN file TEXT;"
    "CREATE TABLE attachment_refs (attachment TEXT NOT NULL, channel TEXT NOT NULL,"
    "  PRIMARY KEY(attachment, channel)) WITHOUT ROWID;"
    "ALTER TABLE messages ADD COLUMN id TEXT;"
    "ALTER TABLE kv ADD COLUMN expires_ms INTEGER;"
    "CREATE INDEX kv_expires ON kv(expires_ms) WHERE expires_ms IS NOT NULL;",
};

/* ---------------------------------------------------------------------------------------------
 * Queued operations. One malloc per op holds the struct and copies of all its strings.
 */
enum op_type { OP_INSERT, OP_UPDATE, OP_EVENT, OP_MESSAGE, OP_FLUSH, OP_KV_SET, OP_KV_DEL,
               OP_TOKEN, OP_ATTACH, OP_TOKEN_REVOKE, OP_FOLLOWUP, OP_ATTACH_REF, OP_KV_EXPIRE,
               OP_AMEND, OP_CONV, OP_PRUNE };

static const char *const op_names[] = {"insert", "update", "event", "message", "flush",
                                       "kv set", "kv delete", "token", "attachment", "token revoke",
                                       "follow-up", "attachment ref", "kv expiry", "amend", "conversation",
                                       "retention slice"};

/* string slots per op type */
enum { I_ID, I_CHANNEL, I_DIRECTION, I_FROM, I_CUSTOMER, I_CONV, I_QUEUE, I_SKILLS, I_AGENT,
       I_IDEM, I_PAYLOAD, I_TEXT, I__N };
enum { U_ID, U_QUEUE, U_AGENT, U__N };
enum { AM_ID, AM_SKILLS, AM_PATCH, AM__N };
enum { CV_ID, CV_KEY, CV__N };
enum { E_TYPE, E_BERICHT, E_QUEUE, E_AGENT, E_CHANNEL, E_KIND, E_DETAIL, E__N };
enum { M_BERICHT, M_DIRECTION, M_AUTHOR, M_TEXT, M_PAYLOAD, M_ID, M__N };
enum { F_BERICHT, F_CHANNEL, F_IDEM, F_AUTHOR, F_TEXT, F_PAYLOAD, F_QUEUE, F_KIND, F__N };
enum { K_NS, K_KEY, K__N };
enum { T_HASH, T_ROLE, T_NAME, T__N };
enum { TR_AGENT, TR__N };
enum { A_ID, A_BERICHT, A_CHANNEL, A_NAME, A_TYPE, A_CID, A_FILE, A__N };
enum { R_ATTACH, R_CHANNEL, R__N };
#define OP_MAXSTR I__N

/* A synchronous op's waiter (token create/revoke): the loop thread sleeps until done is set. */
struct op_sync {
    int done;
    int status;
    int changes;                /* rows the op changed (token revoke) */
};

struct op {
    struct op *next;            /* queue / done list */
    struct op *kv_next;         /* overlay bucket chain (kv ops only) */
    enum op_type type;
    int status;                 /* result, set by the writer */
    uint64_t seq;               /* enqueue order (1, 2, ...) */
    uint64_t mark;              /* flush: fails when a group with an op after this seq failed */
    int n0, n1;                 /* insert: kind, priority; update: state */
    int state;                  /* insert: state */
    int64_t t0, t1, t2;         /* timestamps (see each op) */
    union {
        acdm_store_insert_cb insert;
        acdm_store_flush_cb flush;
        acdm_store_prune_cb prune;
    } cb;
    void *user;
    struct op_sync *sync;
    const char *s[OP_MAXSTR];   /* copies in data[], NULL where the caller passed NULL */
    const char *value;          /* kv value (binary, NUL-terminated copy) */
    size_t vlen;
    char *existing;             /* insert: room for the existing id on ACDM_EEXIST */
    int64_t changed;            /* prune: rows removed or emptied */
    char *files;                /* prune: attachment files to remove once committed (malloc'd,
                                 * each NUL-terminated, the list ended by an empty one) */
    char data[];
};

struct acdm_store {
    sqlite3 *wdb;               /* writer thread only (after open) */
    sqlite3 *rdb;               /* loop thread only */
    char *path;                 /* the database file */
    char *att_dir;              /* <data>/attachments: file-backed attachments */
    int group_ms;
    void (*wake)(void *);
    void *wake_arg;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_writer;   /* writer waits for work / deadline */
    pthread_cond_t cv_sync;     /* token_create waits for its commit */
    struct op *q_head, *q_tail; /* queued, not yet taken by the writer */
    size_t q_count;
    int64_t q_first_us;         /* monotonic time the oldest queued op arrived */
    acdm_store_figures fig;     /* under mu */
    uint64_t enq_seq;           /* under mu: seq of the last op enqueued */
    uint64_t failed_hi;         /* under mu: the highest seq in a group that failed (0: none) */
    uint64_t inflight_lo;       /* under mu: the first seq of the group being committed (0: none) */
    char werr[200];             /* writer thread: the last failure's text */
    char rerr[200];             /* loop thread: the recovery read's failure */
    int kick;                   /* flush now (a synchronous op is waiting) */
    int stop;
    struct op *d_head, *d_tail; /* committed ops whose callbacks acdm_store_poll runs */
    struct op *kv[KV_BUCKETS];  /* latest pending kv op per (ns, key) */

    /* writer statements */
    sqlite3_stmt *w_amend;
    sqlite3_stmt *w_conv;
    sqlite3_stmt *w_insert, *w_idem, *w_msg_idem, *w_followup, *w_update, *w_event, *w_message, *w_kvset, *w_kvdel,
        *w_token, *w_token_revoke, *w_attach, *w_begin, *w_commit, *w_rollback, *w_attref,
        *w_kvexpire;
    /* reader statements */
    sqlite3_stmt *r_open, *r_get, *r_events, *r_messages, *r_token, *r_kv, *r_attach, *r_attref;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Allocates an op with copies of n strings (and an optional blob, and `extra` spare bytes). */
static struct op *op_new(enum op_type type, const char *const *strs, int n, const void *blob,
                         size_t bloblen, size_t extra)
{
    size_t lens[OP_MAXSTR], total = 0;
    for (int i = 0; i < n; i++) {
        lens[i] = strs[i] ? strlen(strs[i]) + 1 : 0;
        total += lens[i];
    }
    if (blob) total += bloblen + 1;
    struct op *op = malloc(sizeof *op + total + extra);
    if (!op) return NULL;
    memset(op, 0, sizeof *op);
    op->type = type;
    char *p = op->data;
    for (int i = 0; i < n; i++) {
        if (!strs[i]) continue;
        memcpy(p, strs[i], lens[i]);
        op->s[i] = p;
        p += lens[i];
    }
    if (blob) {
        memcpy(p, blob, bloblen);
        p[bloblen] = '\0';
        op->value = p;
        op->vlen = bloblen;
        p += bloblen + 1;
    }
    if (extra) {
        op->existing = p;
        p[0] = '\0';
    }
    return op;
}

static unsigned kv_hash(const char *ns, const char *key)
{
    unsigned h = 2166136261u;   /* FNV-1a over ns, a separator, key */
    for (const unsigned char *p = (const unsigned char *)ns; *p; p++) h = (h ^ *p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) h = (h ^ *p) * 16777619u;
    return h % KV_BUCKETS;
}

/* Under st->mu: the pending op for (ns, key), unlinking it when `unlink` is set. */
static struct op *kv_find(acdm_store *st, const char *ns, const char *key, int unlink)
{
    struct op **pp = &st->kv[kv_hash(ns, key)];
    for (; *pp; pp = &(*pp)->kv_next) {
        struct op *o = *pp;
        if (!strcmp(o->s[K_NS], ns) && !strcmp(o->s[K_KEY], key)) {
            if (unlink) *pp = o->kv_next;
            return o;
        }
    }
    return NULL;
}

/* Loop thread: appends op to the writer's queue and wakes the writer when it has to act. */
static void enqueue(acdm_store *st, struct op *op)
{
    pthread_mutex_lock(&st->mu);
    if (op->type == OP_KV_SET || op->type == OP_KV_DEL) {
        kv_find(st, op->s[K_NS], op->s[K_KEY], 1);   /* the older op stays queued */
        unsigned h = kv_hash(op->s[K_NS], op->s[K_KEY]);
        op->kv_next = st->kv[h];
        st->kv[h] = op;
    }
    int signal = 0;
    if (!st->q_head) {
        st->q_head = op;
        st->q_first_us = mono_us();
        signal = 1;             /* the writer sleeps without deadline while idle */
    } else {
        st->q_tail->next = op;
    }
    st->q_tail = op;
    op->seq = ++st->enq_seq;
    if (++st->q_count == FLUSH_OPS) signal = 1;
    if (op->sync) {
        st->kick = 1;
        signal = 1;
    }
    if (signal) pthread_cond_signal(&st->cv_writer);
    pthread_mutex_unlock(&st->mu);
}

/* ---------------------------------------------------------------------------------------------
 * Writer thread.
 */
static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v) sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else sqlite3_bind_null(s, i);
}

/* Runs a bound statement to completion; returns the SQLite result code (SQLITE_DONE is OK). */
static int step_reset(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Whether (channel, key) was used by a follow-up message: SQLITE_ROW with the bericht's id in
 * existing, SQLITE_DONE when not, or an error. */
static int msg_idem_lookup(acdm_store *st, const char *channel, const char *key, char *existing)
{
    sqlite3_stmt *s = st->w_msg_idem;
    bind_text(s, 1, channel);
    bind_text(s, 2, key);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        snprintf(existing, ACDM_NAME_MAX + 1, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* The rows a new bericht brings with it: the customer's first text in the thread and, for a
 * closed queue, the `closed` event. Written only when the bericht itself was (a duplicate
 * writes nothing but the answer). */
static int exec_insert_extras(acdm_store *st, struct op *op)
{
    sqlite3_stmt *s;
    int rc = SQLITE_OK;
    if (op->s[I_TEXT]) {
        s = st->w_message;
        bind_text(s, 1, op->s[I_ID]);
        sqlite3_bind_int64(s, 2, op->t0);
        bind_text(s, 3, "in");
        bind_text(s, 4, op->s[I_FROM]);
        bind_text(s, 5, op->s[I_TEXT]);
        bind_text(s, 6, NULL);
        rc = step_reset(s);
    }
    if (rc == SQLITE_OK && op->state == (int)ACDM_B_CLOSED) {
        s = st->w_event;
        sqlite3_bind_int64(s, 1, op->t0);
        const char *ev[E__N] = {[E_TYPE] = "closed", [E_BERICHT] = op->s[I_ID],
                               [E_QUEUE] = op->s[I_QUEUE], [E_CHANNEL] = op->s[I_CHANNEL],
                               [E_KIND] = acdm_kind_name((acdm_kind)op->n0)};
        for (int i = 0; i < E__N; i++) bind_text(s, i + 2, ev[i]);
        rc = step_reset(s);
    }
    return rc;
}

static int exec_insert(acdm_store *st, struct op *op)
{
    sqlite3_stmt *s = st->w_insert;
    if (op->s[I_IDEM]) {
        /* a key a follow-up of this channel already used is a redelivery too */
        int lrc = msg_idem_lookup(st, op->s[I_CHANNEL], op->s[I_IDEM], op->existing);
        if (lrc == SQLITE_ROW) { op->status = ACDM_EEXIST; return SQLITE_OK; }
        if (lrc != SQLITE_DONE) return lrc;
    }
    bind_text(s, 1, op->s[I_ID]);
    bind_text(s, 2, op->s[I_CHANNEL]);
    bind_text(s, 3, acdm_kind_name((acdm_kind)op->n0));
    bind_text(s, 4, op->s[I_DIRECTION]);
    bind_text(s, 5, op->s[I_FROM]);
    bind_text(s, 6, op->s[I_CUSTOMER]);
    bind_text(s, 7, op->s[I_CONV]);
    bind_text(s, 8, op->s[I_QUEUE]);
    sqlite3_bind_int(s, 9, op->n1);
    bind_text(s, 10, op->s[I_SKILLS]);
    bind_text(s, 11, acdm_bstate_name((acdm_bstate)op->state));
    bind_text(s, 12, op->s[I_AGENT]);
    bind_text(s, 13, op->s[I_IDEM]);
    bind_text(s, 14, op->s[I_PAYLOAD]);
    sqlite3_bind_int64(s, 15, op->t0);
    sqlite3_bind_int64(s, 16, op->t1);
    sqlite3_bind_int64(s, 17, op->t2);
    int rc = step_reset(s);
    if (rc != SQLITE_OK) return rc;
    if (sqlite3_changes(st->wdb) == 1) {
        op->status = 0;
        return exec_insert_extras(st, op);
    }
    /* ignored: either the idempotency key (channel, idem_key) or the id itself exists; this
     * transaction sees rows inserted earlier in the same group too */
    op->status = ACDM_EEXIST;
    snprintf(op->existing, ACDM_NAME_MAX + 1, "%s", op->s[I_ID]);
    if (op->s[I_IDEM]) {
        s = st->w_idem;
        bind_text(s, 1, op->s[I_CHANNEL]);
        bind_text(s, 2, op->s[I_IDEM]);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            snprintf(op->existing, ACDM_NAME_MAX + 1, "%s", (const char *)sqlite3_column_text(s, 0));
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return rc;
    }
    return SQLITE_OK;
}

/* A follow-up: stored once per (channel, idempotency key) — a key used by a bericht of the
 * channel or by an earlier follow-up makes it a duplicate that writes nothing. */
static int exec_followup(acdm_store *st, struct op *op)
{
    sqlite3_stmt *s;
    int rc;
    if (op->s[F_IDEM]) {
        s = st->w_idem;
        bind_text(s, 1, op->s[F_CHANNEL]);
        bind_text(s, 2, op->s[F_IDEM]);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            snprintf(op->existing, ACDM_NAME_MAX + 1, "%s", (const char *)sqlite3_column_text(s, 0));
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (rc == SQLITE_ROW) { op->status = ACDM_EEXIST; return SQLITE_OK; }
        if (rc != SQLITE_DONE) return rc;
    }
    s = st->w_followup;
    bind_text(s, 1, op->s[F_BERICHT]);
    sqlite3_bind_int64(s, 2, op->t0);
    bind_text(s, 3, op->s[F_AUTHOR]);
    bind_text(s, 4, op->s[F_TEXT]);
    bind_text(s, 5, op->s[F_PAYLOAD]);
    bind_text(s, 6, op->s[F_CHANNEL]);
    bind_text(s, 7, op->s[F_IDEM]);
    rc = step_reset(s);
    if (rc != SQLITE_OK) return rc;
    if (sqlite3_changes(st->wdb) != 1) {
        op->status = ACDM_EEXIST;
        rc = msg_idem_lookup(st, op->s[F_CHANNEL], op->s[F_IDEM], op->existing);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    op->status = 0;
    s = st->w_event;
    sqlite3_bind_int64(s, 1, op->t0);
    const char *ev[E__N] = {[E_TYPE] = "message_in", [E_BERICHT] = op->s[F_BERICHT],
                           [E_QUEUE] = op->s[F_QUEUE], [E_CHANNEL] = op->s[F_CHANNEL],
                           [E_KIND] = op->s[F_KIND]};
    for (int i = 0; i < E__N; i++) bind_text(s, i + 2, ev[i]);
    return step_reset(s);
}

/* A bericht whose work is over (its thread may go; an open one keeps everything). */
#define FINAL_STATE "state IN ('done','abandoned','closed')"

/* Writer thread: one retention slice (op->n0 what, t0 the cutoff, t1 the cursor, n1 the slice
 * size). Events go by their time index (the audit log stays); the others walk the table by
 * rowid from the cursor, n1 rows at a time (t2: the next cursor, 0 when the table is done). */
static int exec_prune(acdm_store *st, struct op *op)
{
    static const char *const range_sql[] = {
        [ACDM_PRUNE_MESSAGES] = "SELECT max(rowid) FROM (SELECT rowid FROM messages WHERE rowid > ?1 "
                                "ORDER BY rowid LIMIT ?2)",
        [ACDM_PRUNE_PAYLOADS] = "SELECT max(rowid) FROM (SELECT rowid FROM berichten WHERE rowid > ?1 "
                                "ORDER BY rowid LIMIT ?2)",
        [ACDM_PRUNE_ATTACHMENTS] = "SELECT max(rowid) FROM (SELECT rowid FROM attachments WHERE rowid > ?1 "
                                   "ORDER BY rowid LIMIT ?2)",
    };
    static const char *const del_sql[] = {
        [ACDM_PRUNE_EVENTS] = "DELETE FROM events WHERE id IN (SELECT id FROM events INDEXED BY events_ts "
                              "WHERE ts_ms < ?3 AND type <> 'audit' ORDER BY ts_ms LIMIT ?2)",
        [ACDM_PRUNE_MESSAGES] = "DELETE FROM messages WHERE rowid > ?1 AND rowid <= ?4 AND ts_ms < ?3 AND "
                                "EXISTS (SELECT 1 FROM berichten b WHERE b.id = messages.bericht AND b."
                                FINAL_STATE ")",
        [ACDM_PRUNE_PAYLOADS] = "UPDATE berichten SET payload_json = NULL WHERE rowid > ?1 AND rowid <= ?4 "
                                "AND updated_ms < ?3 AND payload_json IS NOT NULL AND " FINAL_STATE,
        [ACDM_PRUNE_ATTACHMENTS] = "DELETE FROM attachments WHERE rowid > ?1 AND rowid <= ?4 AND "
                                   "created_ms < ?3 AND EXISTS (SELECT 1 FROM berichten b WHERE "
                                   "b.id = attachments.bericht AND b." FINAL_STATE ")",
    };
    int what = op->n0, rc;
    sqlite3_stmt *s = NULL;
    int64_t hi = 0;
    op->changed = 0;
    op->t2 = 0;
    free(op->files);
    op->files = NULL;
    if (what < 0 || what > ACDM_PRUNE_ATTACHMENTS) return SQLITE_MISUSE;
    if (what != ACDM_PRUNE_EVENTS) {
        if ((rc = sqlite3_prepare_v2(st->wdb, range_sql[what], -1, &s, NULL)) != SQLITE_OK) return rc;
        sqlite3_bind_int64(s, 1, op->t1);
        sqlite3_bind_int(s, 2, op->n1);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) hi = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        if (rc != SQLITE_ROW) return rc;
        if (!hi) return SQLITE_OK;       /* past the table's end: done */
    }
    if (what == ACDM_PRUNE_ATTACHMENTS) {
        /* the files of the rows this slice removes, and who was granted them */
        rc = sqlite3_prepare_v2(st->wdb, "SELECT a.file FROM attachments a WHERE a.rowid > ?1 AND "
                                "a.rowid <= ?4 AND a.created_ms < ?3 AND a.file IS NOT NULL AND EXISTS "
                                "(SELECT 1 FROM berichten b WHERE b.id = a.bericht AND b." FINAL_STATE ")",
                                -1, &s, NULL);
        if (rc != SQLITE_OK) return rc;
        sqlite3_bind_int64(s, 1, op->t1);
        sqlite3_bind_int64(s, 3, op->t0);
        sqlite3_bind_int64(s, 4, hi);
        size_t len = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            const char *f = (const char *)sqlite3_column_text(s, 0);
            if (!f || !*f || strchr(f, '/')) continue;
            size_t n = strlen(f) + 1;
            char *grown = realloc(op->files, len + n + 1);
            if (!grown) { rc = SQLITE_NOMEM; break; }
            op->files = grown;
            memcpy(op->files + len, f, n);
            len += n;
            op->files[len] = '\0';
        }
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) return rc;
        rc = sqlite3_prepare_v2(st->wdb, "DELETE FROM attachment_refs WHERE attachment IN (SELECT a.id "
                                "FROM attachments a WHERE a.rowid > ?1 AND a.rowid <= ?4 AND "
                                "a.created_ms < ?3 AND EXISTS (SELECT 1 FROM berichten b WHERE "
                                "b.id = a.bericht AND b." FINAL_STATE "))", -1, &s, NULL);
        if (rc != SQLITE_OK) return rc;
        sqlite3_bind_int64(s, 1, op->t1);
        sqlite3_bind_int64(s, 3, op->t0);
        sqlite3_bind_int64(s, 4, hi);
        rc = sqlite3_step(s);
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) return rc;
    }
    if ((rc = sqlite3_prepare_v2(st->wdb, del_sql[what], -1, &s, NULL)) != SQLITE_OK) return rc;
    if (what != ACDM_PRUNE_EVENTS) {
        sqlite3_bind_int64(s, 1, op->t1);
        sqlite3_bind_int64(s, 4, hi);
    } else {
        sqlite3_bind_int(s, 2, op->n1);
    }
    sqlite3_bind_int64(s, 3, op->t0);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) return rc;
    op->changed = sqlite3_changes(st->wdb);
    /* events: another slice while this one was full; the others: the next rowid range */
    op->t2 = what == ACDM_PRUNE_EVENTS ? (op->changed >= op->n1) : hi;
    return SQLITE_OK;
}

static int exec_op(acdm_store *st, struct op *op)
{
    sqlite3_stmt *s;
    switch (op->type) {
    case OP_INSERT:
        return exec_insert(st, op);
    case OP_FOLLOWUP:
        return exec_followup(st, op);
    case OP_UPDATE:
        s = st->w_update;
        bind_text(s, 1, acdm_bstate_name((acdm_bstate)op->n0));
        bind_text(s, 2, op->s[U_QUEUE]);
        bind_text(s, 3, op->s[U_AGENT]);
        sqlite3_bind_int64(s, 4, op->t0);
        sqlite3_bind_int64(s, 5, op->t1);
        bind_text(s, 6, op->s[U_ID]);
        return step_reset(s);
    case OP_AMEND:
        s = st->w_amend;
        if (op->n0 >= 0) sqlite3_bind_int(s, 1, op->n0);
        else sqlite3_bind_null(s, 1);
        bind_text(s, 2, op->s[AM_SKILLS]);
        bind_text(s, 3, op->s[AM_PATCH]);
        sqlite3_bind_int64(s, 4, op->t1);
        bind_text(s, 5, op->s[AM_ID]);
        return step_reset(s);
    case OP_CONV:
        s = st->w_conv;
        bind_text(s, 1, op->s[CV_KEY]);
        sqlite3_bind_int64(s, 2, op->t1);
        bind_text(s, 3, op->s[CV_ID]);
        return step_reset(s);
    case OP_EVENT:
        s = st->w_event;
        sqlite3_bind_int64(s, 1, op->t0);
        for (int i = 0; i < E__N; i++) bind_text(s, i + 2, op->s[i]);
        return step_reset(s);
    case OP_MESSAGE:
        s = st->w_message;
        bind_text(s, 1, op->s[M_BERICHT]);
        sqlite3_bind_int64(s, 2, op->t0);
        bind_text(s, 3, op->s[M_DIRECTION]);
        bind_text(s, 4, op->s[M_AUTHOR]);
        bind_text(s, 5, op->s[M_TEXT]);
        bind_text(s, 6, op->s[M_PAYLOAD]);
        bind_text(s, 7, op->s[M_ID]);
        return step_reset(s);
    case OP_KV_SET:
        s = st->w_kvset;
        bind_text(s, 1, op->s[K_NS]);
        bind_text(s, 2, op->s[K_KEY]);
        sqlite3_bind_blob(s, 3, op->value, (int)op->vlen, SQLITE_STATIC);
        if (op->t0) sqlite3_bind_int64(s, 4, op->t0);
        else sqlite3_bind_null(s, 4);
        return step_reset(s);
    case OP_KV_EXPIRE: {
        s = st->w_kvexpire;
        sqlite3_bind_int64(s, 1, op->t0);
        sqlite3_bind_int(s, 2, op->n0);
        int rc = step_reset(s);
        op->n1 = sqlite3_changes(st->wdb);
        return rc;
    }
    case OP_ATTACH_REF:
        s = st->w_attref;
        bind_text(s, 1, op->s[R_ATTACH]);
        bind_text(s, 2, op->s[R_CHANNEL]);
        return step_reset(s);
    case OP_KV_DEL:
        s = st->w_kvdel;
        bind_text(s, 1, op->s[K_NS]);
        bind_text(s, 2, op->s[K_KEY]);
        return step_reset(s);
    case OP_TOKEN:
        s = st->w_token;
        bind_text(s, 1, op->s[T_HASH]);
        bind_text(s, 2, op->s[T_ROLE]);
        bind_text(s, 3, op->s[T_NAME]);
        sqlite3_bind_int64(s, 4, op->t0);
        return step_reset(s);
    case OP_TOKEN_REVOKE: {
        s = st->w_token_revoke;
        bind_text(s, 1, op->s[TR_AGENT]);
        int rc = step_reset(s);
        op->n0 = sqlite3_changes(st->wdb);
        return rc;
    }
    case OP_ATTACH:
        if (op->n0) {                   /* its file could not be copied: no row */
            op->status = ACDM_EIO;
            return SQLITE_OK;
        }
        s = st->w_attach;
        for (int i = 0; i < A_CID; i++) bind_text(s, i + 1, op->s[i]);
        sqlite3_bind_int64(s, 6, op->s[A_FILE] ? op->t1 : (sqlite3_int64)op->vlen);
        sqlite3_bind_int64(s, 7, op->t0);
        if (op->s[A_FILE]) sqlite3_bind_zeroblob(s, 8, 0);
        else sqlite3_bind_blob(s, 8, op->value, (int)op->vlen, SQLITE_STATIC);
        bind_text(s, 9, op->s[A_CID]);
        bind_text(s, 10, op->s[A_FILE]);
        return step_reset(s);
    case OP_FLUSH:
        return SQLITE_OK;
    case OP_PRUNE:
        return exec_prune(st, op);
    }
    return SQLITE_MISUSE;
}

/* One transaction over the whole group. Returns SQLITE_OK when committed. */
static int run_txn(acdm_store *st, struct op *head)
{
    int rc = step_reset(st->w_begin);
    if (rc != SQLITE_OK) {
        snprintf(st->werr, sizeof st->werr, "begin failed: %s", sqlite3_errmsg(st->wdb));
        return rc;
    }
    for (struct op *op = head; op; op = op->next) {
        op->status = 0;
        rc = exec_op(st, op);
        if (rc != SQLITE_OK) {
            snprintf(st->werr, sizeof st->werr, "%s failed: %s", op_names[op->type],
                     sqlite3_errmsg(st->wdb));
            acdm_log(ACDM_LOG_ERR, WHO, "%s", st->werr);
            break;
        }
    }
    if (rc == SQLITE_OK) {
        rc = step_reset(st->w_commit);
        if (rc == SQLITE_OK) return SQLITE_OK;
        snprintf(st->werr, sizeof st->werr, "commit failed: %s", sqlite3_errmsg(st->wdb));
        acdm_log(ACDM_LOG_ERR, WHO, "%s", st->werr);
    }
    if (!sqlite3_get_autocommit(st->wdb)) step_reset(st->w_rollback);
    return rc;
}

/* Commits a group, retrying once; on a second failure every op is marked ACDM_EIO. */
static int commit_group(acdm_store *st, struct op *head, size_t n)
{
    int rc = run_txn(st, head);
    if (rc == SQLITE_OK) return 0;
    acdm_log(ACDM_LOG_WARN, WHO, "group of %zu writes failed, retrying once", n);
    if (run_txn(st, head) == SQLITE_OK) return 0;
    acdm_log(ACDM_LOG_ERR, WHO, "group of %zu writes failed twice; reporting I/O errors "
             "(callbacks get ACDM_EIO, writes without callback are lost)", n);
    for (struct op *op = head; op; op = op->next) op->status = ACDM_EIO;
    return ACDM_EIO;
}

/* Writer thread: copies an attachment's file (op->n1, owned by the op) to <data>/attachments/
 * <id>, syncs it and the folder. Sets op->n0 on failure; op->t1 is the size copied. The file
 * is streamed with copy_file_range (falling back to read/write), never read whole. */
static void copy_attachment(acdm_store *st, struct op *op)
{
    int src = op->n1, dst = -1, ok = 0;
    op->state = 0;
    op->n1 = -1;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", st->att_dir, op->s[A_FILE]) >= sizeof path)
        goto out;
    if (mkdir(st->att_dir, 0750) != 0 && errno != EEXIST) goto out;
    dst = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (dst < 0) goto out;
    off_t in_off = 0;
    int64_t total = 0;
    for (;;) {
        ssize_t n = copy_file_range(src, &in_off, dst, NULL, 1 << 20, 0);
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
            char buf[65536];
            n = pread(src, buf, sizeof buf, in_off);
            if (n > 0) {
                for (ssize_t w = 0; w < n;) {
                    ssize_t k = write(dst, buf + w, (size_t)(n - w));
                    if (k < 0) { if (errno == EINTR) continue; goto out; }
                    w += k;
                }
                in_off += n;
            }
        }
        if (n < 0) { if (errno == EINTR) continue; goto out; }
        if (n == 0) break;
        total += n;
        if (total > (int64_t)ACDM_STORE_ATTACHMENT_FILE_MAX) { errno = EFBIG; goto out; }
    }
    if (fsync(dst) != 0) goto out;
    int dfd = open(st->att_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    op->t1 = total;
    ok = 1;
out:
    if (!ok) {
        acdm_log(ACDM_LOG_ERR, WHO, "attachment %s: cannot store its file in %s: %s",
                 op->s[A_ID], st->att_dir, strerror(errno));
        op->n0 = 1;
        if (dst >= 0) unlink(path);
    }
    if (dst >= 0) close(dst);
    if (src >= 0) close(src);
}

static void *writer_main(void *arg)
{
    acdm_store *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->q_head && !st->stop) pthread_cond_wait(&st->cv_writer, &st->mu);
        if (!st->q_head) break;        /* stopping and drained */
        /* group commit: wait until the oldest op is group_ms old (BUSY_LINGER_US under heavy
         * load) or enough ops are queued */
        int64_t linger = (int64_t)st->group_ms * 1000;
        if (st->q_count >= BUSY_OPS && linger < BUSY_LINGER_US) linger = BUSY_LINGER_US;
        while (!st->stop && !st->kick && st->q_count < FLUSH_OPS) {
            int64_t deadline = st->q_first_us + linger;
            if (mono_us() >= deadline) break;
            struct timespec ts = {.tv_sec = deadline / 1000000,
                                  .tv_nsec = (long)(deadline % 1000000) * 1000L};
            pthread_cond_timedwait(&st->cv_writer, &st->mu, &ts);
        }
        struct op *head = st->q_head;
        size_t n = st->q_count;
        st->q_head = st->q_tail = NULL;
        st->q_count = 0;
        st->kick = 0;
        st->inflight_lo = head->seq;
        pthread_mutex_unlock(&st->mu);

        /* file-backed attachments are copied (and synced) before the transaction, so a retry of
         * the group does not copy again and the commit does not hold the write lock meanwhile */
        for (struct op *op = head; op; op = op->next)
            if (op->type == OP_ATTACH && op->state) copy_attachment(st, op);

        int64_t c0 = mono_us();
        st->werr[0] = '\0';
        int failed = commit_group(st, head, n);
        int64_t took = mono_us() - c0;
        uint64_t hi = 0;
        for (struct op *op = head; op; op = op->next) hi = op->seq;

        struct op *to_free = NULL;
        int woke_sync = 0, have_done = 0;
        pthread_mutex_lock(&st->mu);
        st->inflight_lo = 0;
        if (failed) {
            st->failed_hi = hi;
            st->fig.failed_groups++;
            st->fig.lost_writes += n;
            if (!st->fig.failing) st->fig.failing_since_ms = acdm_now_ms();
            st->fig.failing = 1;
            snprintf(st->fig.last_error, sizeof st->fig.last_error, "%s",
                     st->werr[0] ? st->werr : "the group could not be committed");
        } else if (st->fig.failing) {
            st->fig.failing = 0;
            st->fig.recovered_ms = acdm_now_ms();
            acdm_log(ACDM_LOG_NOTICE, WHO, "commits succeed again (%" PRIu64 " groups failed)",
                     st->fig.failed_groups);
        }
        st->fig.commits += !failed;
        st->fig.writes += n;
        st->fig.commit_us_sum += took;
        if (took > st->fig.commit_us_max) st->fig.commit_us_max = took;
        static const int64_t bounds[ACDM_STORE_COMMIT_NBUCKETS] = ACDM_STORE_COMMIT_BUCKETS_US;
        int bi = 0;
        while (bi < ACDM_STORE_COMMIT_NBUCKETS && took > bounds[bi]) bi++;
        st->fig.commit_hist[bi]++;
        for (struct op *op = head, *next; op; op = next) {
            next = op->next;
            op->next = NULL;
            if (op->type == OP_KV_SET || op->type == OP_KV_DEL) {
                /* committed (or failed): the overlay entry goes unless a newer write replaced it */
                if (kv_find(st, op->s[K_NS], op->s[K_KEY], 0) == op)
                    kv_find(st, op->s[K_NS], op->s[K_KEY], 1);
            }
            if (op->sync) {
                op->sync->status = op->status;
                op->sync->changes = op->n0;
                op->sync->done = 1;
                woke_sync = 1;
                op->next = to_free;
                to_free = op;
            } else if (((op->type == OP_INSERT || op->type == OP_FOLLOWUP) && op->cb.insert) ||
                       ((op->type == OP_FLUSH || op->type == OP_KV_EXPIRE) && op->cb.flush) ||
                       (op->type == OP_PRUNE && op->cb.prune)) {
                if (st->d_tail) st->d_tail->next = op;
                else st->d_head = op;
                st->d_tail = op;
                have_done = 1;
            } else {
                op->next = to_free;
                to_free = op;
            }
        }
        if (woke_sync) pthread_cond_broadcast(&st->cv_sync);
        pthread_mutex_unlock(&st->mu);
        /* a retention slice's attachment files go once the rows naming them are gone for good
         * (a crash in between leaves files without a row: harmless, see attachments above) */
        for (struct op *op = head; !failed && op; op = op->next)
            if (op->type == OP_PRUNE && op->files)
                for (const char *f = op->files; *f; f += strlen(f) + 1) {
                    char path[4096];
                    if ((size_t)snprintf(path, sizeof path, "%s/%s", st->att_dir, f) < sizeof path &&
                        unlink(path) != 0 && errno != ENOENT)
                        acdm_log(ACDM_LOG_WARN, WHO, "retention: cannot remove %s: %s", path,
                                 strerror(errno));
                }
        while (to_free) {
            struct op *next = to_free->next;
            free(to_free->files);
            free(to_free);
            to_free = next;
        }
        if (have_done && st->wake) st->wake(st->wake_arg);
        pthread_mutex_lock(&st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Open / close.
 */
static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **out, char *err, size_t errlen)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "store: cannot prepare statement: %s", sqlite3_errmsg(db));
    return ACDM_EIO;
}

static int damaged(sqlite3 *db);

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    snprintf(err, errlen, "store: %s failed: %s%s", what, msg ? msg : sqlite3_errmsg(db),
             damaged(db) ? " (the database file is damaged: restore it from the backup, "
                           "docs/operations.md \"Backup and restore\")" : "");
    sqlite3_free(msg);
    return ACDM_EIO;
}

static int open_db(const char *path, sqlite3 **db, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "store: cannot open %s: %s; check that the directory exists and "
                 "is writable", path, *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        return ACDM_EIO;
    }
    sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(*db, 1);
    return 0;
}

/* The operator's next step for a failure SQLite reports on db: a damaged file names the backup. */
static int damaged(sqlite3 *db)
{
    int ec = sqlite3_errcode(db) & 0xff;
    return ec == SQLITE_CORRUPT || ec == SQLITE_NOTADB;
}

/* WAL (readers do not block the writer) and a full fsync per commit on the writer. */
static int set_wal(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int wal = 0, row = 0;
    char mode[32] = "";
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        row = 1;
        snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(s, 0));
        wal = !strcmp(mode, "wal");
    }
    char why[256];
    snprintf(why, sizeof why, "%s", sqlite3_errmsg(db));
    int dmg = !row && damaged(db);
    sqlite3_finalize(s);
    if (!wal) {
        if (dmg)
            snprintf(err, errlen, "store: %s is damaged (%s): restore it from the backup "
                     "(docs/operations.md, \"Backup and restore\")", path, why);
        else if (row)
            snprintf(err, errlen, "store: %s stays in journal mode %s, WAL is refused: put the "
                     "data directory on a local file system (WAL needs shared memory)", path, mode);
        else
            snprintf(err, errlen, "store: cannot switch %s to WAL mode: %s", path, why);
        return ACDM_EIO;
    }
    return exec_sql(db, "PRAGMA synchronous=FULL;", err, errlen, "setting synchronous=FULL");
}

/* Creates the meta table, reads schema_version and applies the missing migrations. */
static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    if (exec_sql(db, "BEGIN IMMEDIATE;"
                 "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
                 err, errlen, "schema check"))
        return ACDM_EIO;
    int version = 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1, &s,
                           NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    int rc = 0;
    if (version > SCHEMA_VERSION) {
        snprintf(err, errlen, "store: %s has schema version %d, newer than this acdm knows (%d); "
                 "run a newer acdmd or restore an older database", path, version, SCHEMA_VERSION);
        rc = ACDM_EIO;
    }
    for (; !rc && version < SCHEMA_VERSION; version++) {
        acdm_log(ACDM_LOG_NOTICE, WHO, "migrating %s to schema version %d", path, version + 1);
        char set[96];
        snprintf(set, sizeof set, "INSERT OR REPLACE INTO meta VALUES('schema_version','%d');",
                 version + 1);
        if (exec_sql(db, migrations[version], err, errlen, "schema migration") ||
            exec_sql(db, set, err, errlen, "schema migration"))
            rc = ACDM_EIO;
    }
    if (rc) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return exec_sql(db, "COMMIT", err, errlen, "schema migration commit");
}

static void free_stmts(acdm_store *st)
{
    sqlite3_stmt *all[] = {st->w_amend, st->w_conv, st->w_insert, st->w_idem, st->w_msg_idem, st->w_followup, st->w_update, st->w_event, st->w_message,
                           st->w_kvset, st->w_kvdel, st->w_token, st->w_token_revoke, st->w_begin, st->w_commit,
                           st->w_rollback, st->r_open, st->r_get, st->r_events, st->r_messages,
                           st->r_token, st->r_kv, st->w_attach, st->r_attach, st->w_attref,
                           st->w_kvexpire, st->r_attref};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sqlite3_finalize(all[i]);
}

static void store_free(acdm_store *st)
{
    free_stmts(st);
    if (st->rdb) sqlite3_close(st->rdb);
    if (st->wdb) sqlite3_close(st->wdb);
    free(st->path);
    free(st->att_dir);
    pthread_cond_destroy(&st->cv_sync);
    pthread_cond_destroy(&st->cv_writer);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

#define BCOLS "id, channel, kind, direction, from_addr, customer_id, conversation, queue, " \
              "priority, skills_json, state, agent, idem_key, payload_json, created_ms, " \
              "queued_ms, updated_ms"

int acdm_store_open(const char *dir, int group_commit_ms, void (*wake)(void *), void *wake_arg,
                    acdm_store **out, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) { err = dummy; errlen = sizeof dummy; }
    err[0] = '\0';
    if (!out) return ACDM_EINVAL;
    *out = NULL;
    if (!dir || !*dir) {
        snprintf(err, errlen, "store: no directory given for the database");
        return ACDM_EINVAL;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "store: cannot create directory %s: %s", dir, strerror(errno));
        return ACDM_EIO;
    }
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/acdm.db", dir) >= sizeof path) {
        snprintf(err, errlen, "store: directory path too long");
        return ACDM_EINVAL;
    }
    acdm_store *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) { free(st); return ACDM_ENOMEM; }
    size_t al = strlen(dir) + sizeof "/attachments";
    if (!(st->att_dir = malloc(al))) { free(st->path); free(st); return ACDM_ENOMEM; }
    snprintf(st->att_dir, al, "%s/attachments", dir);
    st->group_ms = group_commit_ms > 0 ? group_commit_ms : 0;
    st->wake = wake;
    st->wake_arg = wake_arg;
    pthread_mutex_init(&st->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cv_writer, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&st->cv_sync, NULL);

    int rc = open_db(path, &st->wdb, err, errlen);
    if (!rc) rc = set_wal(st->wdb, path, err, errlen);
    if (!rc) rc = migrate(st->wdb, path, err, errlen);
    if (!rc) rc = open_db(path, &st->rdb, err, errlen);
    if (!rc) rc = exec_sql(st->rdb, "PRAGMA query_only=1;", err, errlen, "read connection setup");
    sqlite3 *w = st->wdb, *r = st->rdb;
    if (!rc) rc = prep(w, "INSERT OR IGNORE INTO berichten (" BCOLS ") VALUES "
                       "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", &st->w_insert, err, errlen);
    if (!rc) rc = prep(w, "SELECT id FROM berichten WHERE channel=? AND idem_key=?",
                       &st->w_idem, err, errlen);
    if (!rc) rc = prep(w, "SELECT bericht FROM messages WHERE channel=? AND idem_key=?",
                       &st->w_msg_idem, err, errlen);
    if (!rc) rc = prep(w, "INSERT OR IGNORE INTO messages (bericht, ts_ms, direction, author, text,"
                       " payload_json, channel, idem_key) VALUES (?,?,'in',?,?,?,?,?)",
                       &st->w_followup, err, errlen);
    if (!rc) rc = prep(w, "UPDATE berichten SET state=?1, queue=COALESCE(?2, queue), agent=?3,"
                       " queued_ms=?4, updated_ms=?5 WHERE id=?6", &st->w_update, err, errlen);
    if (!rc) rc = prep(w, "UPDATE berichten SET priority=COALESCE(?1, priority),"
                       " skills_json=COALESCE(?2, skills_json), payload_json=CASE WHEN ?3 IS NULL"
                       " THEN payload_json ELSE json_patch(COALESCE(payload_json, '{}'), ?3) END,"
                       " updated_ms=?4 WHERE id=?5", &st->w_amend, err, errlen);
    if (!rc) rc = prep(w, "UPDATE berichten SET conversation=?1, updated_ms=?2 WHERE id=?3",
                       &st->w_conv, err, errlen);
    if (!rc) rc = prep(w, "INSERT INTO events (ts_ms, type, bericht, queue, agent, channel, kind,"
                       " detail_json) VALUES (?,?,?,?,?,?,?,?)", &st->w_event, err, errlen);
    if (!rc) rc = prep(w, "INSERT INTO messages (bericht, ts_ms, direction, author, text,"
                       " payload_json, id) VALUES (?,?,?,?,?,?,?)", &st->w_message, err, errlen);
    if (!rc) rc = prep(w, "INSERT OR REPLACE INTO kv (ns, key, value, expires_ms) VALUES (?,?,?,?)",
                       &st->w_kvset, err, errlen);
    if (!rc) rc = prep(w, "DELETE FROM kv WHERE rowid IN (SELECT rowid FROM kv WHERE expires_ms"
                       " IS NOT NULL AND expires_ms <= ?1 LIMIT ?2)", &st->w_kvexpire, err, errlen);
    if (!rc) rc = prep(w, "INSERT OR IGNORE INTO attachment_refs (attachment, channel) VALUES (?,?)",
                       &st->w_attref, err, errlen);
    if (!rc) rc = prep(w, "DELETE FROM kv WHERE ns=? AND key=?", &st->w_kvdel, err, errlen);
    if (!rc) rc = prep(w, "INSERT INTO tokens (hash, role, name, created_ms) VALUES (?,?,?,?)",
                       &st->w_token, err, errlen);
    if (!rc) rc = prep(w, "UPDATE tokens SET revoked=1 WHERE role='agent' AND name=? AND revoked=0",
                       &st->w_token_revoke, err, errlen);
    if (!rc) rc = prep(w, "BEGIN IMMEDIATE", &st->w_begin, err, errlen);
    if (!rc) rc = prep(w, "COMMIT", &st->w_commit, err, errlen);
    if (!rc) rc = prep(w, "ROLLBACK", &st->w_rollback, err, errlen);
    if (!rc) rc = prep(r, "SELECT " BCOLS " FROM berichten WHERE state IN "
                       "('queued','offered','active') ORDER BY queued_ms", &st->r_open, err, errlen);
    if (!rc) rc = prep(r, "SELECT " BCOLS " FROM berichten WHERE id=?", &st->r_get, err, errlen);
    if (!rc) rc = prep(r, "SELECT type, ts_ms, queue, agent, detail_json FROM events "
                       "WHERE bericht=? ORDER BY id", &st->r_events, err, errlen);
    if (!rc) rc = prep(r, "SELECT ts_ms, direction, author, text, payload_json, id FROM messages "
                       "WHERE bericht=? ORDER BY ts_ms, rowid", &st->r_messages, err, errlen);
    if (!rc) rc = prep(r, "SELECT role, name FROM tokens WHERE hash=? AND revoked=0",
                       &st->r_token, err, errlen);
    if (!rc) rc = prep(r, "SELECT value, expires_ms FROM kv WHERE ns=? AND key=?", &st->r_kv, err, errlen);
    if (!rc) rc = prep(w, "INSERT INTO attachments (id, bericht, channel, filename, content_type,"
                       " size, created_ms, data, content_id, file) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       &st->w_attach, err, errlen);
    if (!rc) rc = prep(r, "SELECT bericht, channel, filename, content_type, size, content_id, file"
                       " FROM attachments WHERE id=?", &st->r_attach, err, errlen);
    if (!rc) rc = prep(r, "SELECT 1 FROM attachment_refs WHERE attachment=? AND channel=?",
                       &st->r_attref, err, errlen);
    if (!rc && pthread_create(&st->thread, NULL, writer_main, st) != 0) {
        snprintf(err, errlen, "store: cannot start the writer thread");
        rc = ACDM_ENOMEM;
    }
    if (rc) {
        store_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void acdm_store_poll(acdm_store *st)
{
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    struct op *op = st->d_head;
    st->d_head = st->d_tail = NULL;
    pthread_mutex_unlock(&st->mu);
    while (op) {
        struct op *next = op->next;
        if (op->type == OP_INSERT || op->type == OP_FOLLOWUP)
            op->cb.insert(op->user, op->status,
                          op->status == ACDM_EEXIST ? op->existing : NULL);
        else if (op->type == OP_KV_EXPIRE)
            op->cb.flush(op->user, op->status ? op->status : op->n1);
        else if (op->type == OP_PRUNE)
            op->cb.prune(op->user, op->status, op->changed, op->t2);
        else {
            int status = op->status;
            if (!status) {
                /* a group before this one lost a write queued after the caller's mark */
                pthread_mutex_lock(&st->mu);
                if (st->failed_hi > op->mark) status = ACDM_EIO;
                pthread_mutex_unlock(&st->mu);
            }
            op->cb.flush(op->user, status);
        }
        free(op->files);
        free(op);
        op = next;
    }
}

void acdm_store_close(acdm_store *st)
{
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->stop = 1;
    pthread_cond_signal(&st->cv_writer);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->thread, NULL);
    acdm_store_poll(st);        /* callbacks of the final group */
    /* writes queued by those callbacks come after the final commit: they are not stored;
     * a callback waiting on one hears ACDM_EIO */
    struct op *op = st->q_head;
    st->q_head = st->q_tail = NULL;
    while (op) {
        struct op *next = op->next;
        if ((op->type == OP_INSERT || op->type == OP_FOLLOWUP) && op->cb.insert)
            op->cb.insert(op->user, ACDM_EIO, NULL);
        else if ((op->type == OP_FLUSH || op->type == OP_KV_EXPIRE) && op->cb.flush)
            op->cb.flush(op->user, ACDM_EIO);
        else if (op->type == OP_PRUNE && op->cb.prune)
            op->cb.prune(op->user, ACDM_EIO, 0, 0);
        if (op->type == OP_ATTACH && op->state) close(op->n1);
        free(op);
        op = next;
    }
    store_free(st);
}

/* ---------------------------------------------------------------------------------------------
 * Queued writes (loop thread).
 */
static int valid_name(const char *s)
{
    return s && *s && strlen(s) <= ACDM_NAME_MAX;
}

int acdm_store_insert_bericht(acdm_store *st, const acdm_bericht_row *row,
                              acdm_store_insert_cb cb, void *user)
{
    if (!st || !row || !valid_name(row->id) || !row->channel || !*row->channel ||
        !row->queue || (unsigned)row->kind >= ACDM_KIND__COUNT ||
        (unsigned)row->state >= ACDM_B__COUNT)
        return ACDM_EINVAL;
    const char *dir = row->direction ? row->direction : "in";
    if (strcmp(dir, "in") && strcmp(dir, "out")) return ACDM_EINVAL;
    const char *strs[I__N] = {
        [I_ID] = row->id, [I_CHANNEL] = row->channel, [I_DIRECTION] = dir, [I_FROM] = row->from,
        [I_CUSTOMER] = row->customer_id, [I_CONV] = row->conversation, [I_QUEUE] = row->queue,
        [I_SKILLS] = row->skills_json, [I_AGENT] = row->agent, [I_IDEM] = row->idem_key,
        [I_PAYLOAD] = row->payload_json, [I_TEXT] = row->text};
    struct op *op = op_new(OP_INSERT, strs, I__N, NULL, 0, ACDM_NAME_MAX + 1);
    if (!op) return ACDM_ENOMEM;
    op->n0 = (int)row->kind;
    op->n1 = row->priority;
    op->state = (int)row->state;
    op->t0 = row->created_ms;
    op->t1 = row->queued_ms;
    op->t2 = row->created_ms;   /* updated_ms */
    op->cb.insert = cb;
    op->user = user;
    enqueue(st, op);
    return 0;
}

int acdm_store_update_bericht(acdm_store *st, const char *id, acdm_bstate state,
                              const char *queue, const char *agent, int64_t queued_ms,
                              int64_t ts_ms)
{
    if (!st || !valid_name(id) || (unsigned)state >= ACDM_B__COUNT) return ACDM_EINVAL;
    const char *strs[U__N] = {[U_ID] = id, [U_QUEUE] = queue, [U_AGENT] = agent};
    struct op *op = op_new(OP_UPDATE, strs, U__N, NULL, 0, 0);
    if (!op) return ACDM_ENOMEM;
    op->n0 = (int)state;
    op->t0 = queued_ms;
    op->t1 = ts_ms;
    enqueue(st, op);
    return 0;
}

int acdm_store_amend_bericht(acdm_store *st, const char *id, int priority, const char *skills_json,
                             const char *payload_patch, int64_t ts_ms)
{
    if (!st || !valid_name(id) || priority < -1 || priority > 9) return ACDM_EINVAL;
    const char *strs[AM__N] = {[AM_ID] = id, [AM_SKILLS] = skills_json, [AM_PATCH] = payload_patch};
    struct op *op = op_new(OP_AMEND, strs, AM__N, NULL, 0, 0);
    if (!op) return ACDM_ENOMEM;
    op->n0 = priority;
    op->t1 = ts_ms;
    enqueue(st, op);
    return 0;
}

int acdm_store_set_conversation(acdm_store *st, const char *id, const char *conversation,
                                int64_t ts_ms)
{
    if (!st || !valid_name(id) || !conversation || !*conversation) return ACDM_EINVAL;
    const char *strs[CV__N] = {[CV_ID] = id, [CV_KEY] = conversation};
    struct op *op = op_new(OP_CONV, strs, CV__N, NULL, 0, 0);
    if (!op) return ACDM_ENOMEM;
    op->t1 = ts_ms;
    enqueue(st, op);
    return 0;
}

int acdm_store_append_event(acdm_store *st, const acdm_event_row *ev)
{
    if (!st || !ev || !ev->type || !*ev->type) return ACDM_EINVAL;
    const char *strs[E__N] = {[E_TYPE] = ev->type, [E_BERICHT] = ev->bericht,
                              [E_QUEUE] = ev->queue, [E_AGENT] = ev->agent,
                              [E_CHANNEL] = ev->channel, [E_KIND] = ev->kind,
                              [E_DETAIL] = ev->detail_json};
    struct op *op = op_new(OP_EVENT, strs, E__N, NULL, 0, 0);
    if (!op) return ACDM_ENOMEM;
    op->t0 = ev->ts_ms;
    enqueue(st, op);
    return 0;
}

int acdm_store_add_message(acdm_store *st, const char *bericht_id, int64_t ts_ms,
                           const char *direction, const char *author, const char *text,
                           const char *payload_json)
{
    return acdm_store_add_message_id(st, NULL, bericht_id, ts_ms, direction, author, text,
                                     payload_json);
}

int acdm_store_add_message_id(acdm_store *st, const char *id, const char *bericht_id,
                              int64_t ts_ms, const char *direction, const char *author,
                              const char *text, const char *payload_json)
{
    if (!st || !valid_name(bericht_id) || !direction ||
        (strcmp(direction, "in") && strcmp(direction, "out")))
        return ACDM_EINVAL;
    const char *strs[M__N] = {[M_BERICHT] = bericht_id, [M_DIRECTION] = direction,
                              [M_AUTHOR] = author, [M_TEXT] = text, [M_PAYLOAD] = payload_json,
                              [M_ID] = id};
    struct op *op = op_new(OP_MESSAGE, strs, M__N, NULL, 0, 0);
    if (!op) return ACDM_ENOMEM;
    op->t0 = ts_ms;
    enqueue(st, op);
    return 0;
}

int acdm_store_add_followup(acdm_store *st, const acdm_followup_row *f, acdm_store_insert_cb cb,
                            void *user)
{
    if (!st || !f || !valid_name(f->bericht_id) || !f->channel || !*f->channel)
        return ACDM_EINVAL;
    const char *strs[F__N] = {[F_BERICHT] = f->bericht_id, [F_CHANNEL] = f->channel,
                              [F_IDEM] = f->idem_key, [F_AUTHOR] = f->author, [F_TEXT] = f->text,
                              [F_PAYLOAD] = f->payload_json, [F_QUEUE] = f->queue,
                              [F_KIND] = f->kind};
    struct op *op = op_new(OP_FOLLOWUP, strs, F__N, NULL, 0, ACDM_NAME_MAX + 1);
    if (!op) return ACDM_ENOMEM;
    op->t0 = f->ts_ms;
    op->cb.insert = cb;
    op->user = user;
    enqueue(st, op);
    return 0;
}

uint64_t acdm_store_mark(acdm_store *st)
{
    if (!st) return 0;
    pthread_mutex_lock(&st->mu);
    uint64_t m = st->enq_seq;
    pthread_mutex_unlock(&st->mu);
    return m;
}

int acdm_store_flush_since(acdm_store *st, uint64_t mark, acdm_store_flush_cb cb, void *user)
{
    if (!st) return ACDM_EINVAL;
    struct op *op = op_new(OP_FLUSH, NULL, 0, NULL, 0, 0);
    if (!op) return ACDM_ENOMEM;
    op->cb.flush = cb;
    op->user = user;
    op->mark = mark;
    enqueue(st, op);
    return 0;
}

int acdm_store_flush(acdm_store *st, acdm_store_flush_cb cb, void *user)
{
    /* covers every write not yet committed: those queued and the group the writer has taken */
    if (!st) return ACDM_EINVAL;
    pthread_mutex_lock(&st->mu);
    uint64_t mark = st->inflight_lo ? st->inflight_lo - 1 : st->enq_seq - st->q_count;
    pthread_mutex_unlock(&st->mu);
    return acdm_store_flush_since(st, mark, cb, user);
}

int acdm_store_kv_set_ttl(acdm_store *st, const char *ns, const char *key, const char *value,
                          size_t len, int64_t expires_ms)
{
    if (!st || !ns || !*ns || !key || !*key || (value && len > (size_t)1 << 30) || expires_ms < 0)
        return ACDM_EINVAL;
    const char *strs[K__N] = {[K_NS] = ns, [K_KEY] = key};
    struct op *op = value ? op_new(OP_KV_SET, strs, K__N, value, len, 0)
                          : op_new(OP_KV_DEL, strs, K__N, NULL, 0, 0);
    if (!op) return ACDM_ENOMEM;
    op->t0 = value ? expires_ms : 0;
    enqueue(st, op);
    return 0;
}

int acdm_store_kv_set(acdm_store *st, const char *ns, const char *key, const char *value,
                      size_t len)
{
    return acdm_store_kv_set_ttl(st, ns, key, value, len, 0);
}

int acdm_store_kv_expire(acdm_store *st, int64_t now_ms, int limit, acdm_store_flush_cb cb,
                         void *user)
{
    if (!st || limit <= 0) return ACDM_EINVAL;
    struct op *op = op_new(OP_KV_EXPIRE, NULL, 0, NULL, 0, 0);
    if (!op) return ACDM_ENOMEM;
    op->t0 = now_ms;
    op->n0 = limit;
    op->cb.flush = cb;
    op->user = user;
    enqueue(st, op);
    return 0;
}

int acdm_store_prune(acdm_store *st, acdm_prune_what what, int64_t before_ms, int64_t cursor,
                     int limit, acdm_store_prune_cb cb, void *user)
{
    if (!st || limit <= 0 || (int)what < 0 || what > ACDM_PRUNE_ATTACHMENTS) return ACDM_EINVAL;
    struct op *op = op_new(OP_PRUNE, NULL, 0, NULL, 0, 0);
    if (!op) return ACDM_ENOMEM;
    op->n0 = (int)what;
    op->n1 = limit;
    op->t0 = before_ms;
    op->t1 = cursor;
    op->cb.prune = cb;
    op->user = user;
    enqueue(st, op);
    return 0;
}

int acdm_store_attachment_add(acdm_store *st, const acdm_attachment_new *a)
{
    if (!st || !a || !a->id || !a->bericht || !a->filename || !a->content_type ||
        (a->fd < 0 && (!a->data || a->len > (size_t)1 << 30))) {
        if (a && a->fd >= 0) close(a->fd);
        return ACDM_EINVAL;
    }
    const char *strs[A__N] = {[A_ID] = a->id, [A_BERICHT] = a->bericht, [A_CHANNEL] = a->channel,
                              [A_NAME] = a->filename, [A_TYPE] = a->content_type,
                              [A_CID] = a->content_id, [A_FILE] = a->fd >= 0 ? a->id : NULL};
    struct op *op = op_new(OP_ATTACH, strs, A__N, a->fd >= 0 ? NULL : a->data, a->len, 0);
    if (!op) {
        if (a->fd >= 0) close(a->fd);
        return ACDM_ENOMEM;
    }
    op->t0 = a->ts_ms;
    if (a->fd >= 0) { op->state = 1; op->n1 = a->fd; }
    enqueue(st, op);
    return 0;
}

int acdm_store_attachment_put(acdm_store *st, const char *id, const char *bericht,
                              const char *channel, const char *filename, const char *content_type,
                              const void *data, size_t len, int64_t ts_ms)
{
    acdm_attachment_new a = {.id = id, .bericht = bericht, .channel = channel,
                             .filename = filename, .content_type = content_type, .data = data,
                             .len = len, .fd = -1, .ts_ms = ts_ms};
    return acdm_store_attachment_add(st, &a);
}

int acdm_store_attachment_ref(acdm_store *st, const char *id, const char *channel)
{
    if (!st || !id || !*id || !channel || !*channel) return ACDM_EINVAL;
    const char *strs[R__N] = {[R_ATTACH] = id, [R_CHANNEL] = channel};
    struct op *op = op_new(OP_ATTACH_REF, strs, R__N, NULL, 0, 0);
    if (!op) return ACDM_ENOMEM;
    enqueue(st, op);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Reads (loop thread, read connection).
 */
static char *dup_blob(const void *p, size_t len)
{
    char *v = malloc(len + 1);
    if (!v) return NULL;
    if (len) memcpy(v, p, len);
    v[len] = '\0';
    return v;
}

int acdm_store_kv_get(acdm_store *st, const char *ns, const char *key, char **value, size_t *len)
{
    if (!st || !ns || !key || !value) return ACDM_EINVAL;
    *value = NULL;
    if (len) *len = 0;
    /* a pending write wins; the overlay entry is dropped only after its commit, so a miss
     * here followed by the read below cannot fall between queue and database */
    pthread_mutex_lock(&st->mu);
    struct op *op = kv_find(st, ns, key, 0);
    int rc = ACDM_ENOENT;
    int64_t now = acdm_now_ms();
    if (op && op->type == OP_KV_SET && (!op->t0 || op->t0 > now)) {
        *value = dup_blob(op->value, op->vlen);
        rc = *value ? 0 : ACDM_ENOMEM;
        if (!rc && len) *len = op->vlen;
    }
    pthread_mutex_unlock(&st->mu);
    if (op) return rc;
    sqlite3_stmt *s = st->r_kv;
    bind_text(s, 1, ns);
    bind_text(s, 2, key);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW && sqlite3_column_type(s, 1) != SQLITE_NULL &&
        sqlite3_column_int64(s, 1) <= now) {
        rc = ACDM_ENOENT;                /* expired: gone for the reader, removed later */
    } else if (src == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        *value = dup_blob(sqlite3_column_blob(s, 0), n);
        rc = *value ? 0 : ACDM_ENOMEM;
        if (!rc && len) *len = n;
    } else if (src != SQLITE_DONE) {
        acdm_log(ACDM_LOG_ERR, WHO, "kv read failed: %s", sqlite3_errmsg(st->rdb));
        rc = ACDM_EIO;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

int acdm_store_attachment_meta(acdm_store *st, const char *id, acdm_attachment *out)
{
    if (!st || !id || !out) return ACDM_EINVAL;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = st->r_attach;
    bind_text(s, 1, id);
    int src = sqlite3_step(s), rc = ACDM_ENOENT;
    if (src == SQLITE_ROW) {
        const char *b = col_text(s, 0), *c = col_text(s, 1), *f = col_text(s, 2), *t = col_text(s, 3);
        const char *cid = col_text(s, 5), *file = col_text(s, 6);
        snprintf(out->bericht, sizeof out->bericht, "%s", b ? b : "");
        snprintf(out->channel, sizeof out->channel, "%s", c ? c : "");
        snprintf(out->filename, sizeof out->filename, "%s", f ? f : "");
        snprintf(out->content_type, sizeof out->content_type, "%s", t ? t : "");
        snprintf(out->content_id, sizeof out->content_id, "%s", cid ? cid : "");
        out->len = (size_t)sqlite3_column_int64(s, 4);
        if (file && *file) snprintf(out->path, sizeof out->path, "%s/%s", st->att_dir, file);
        rc = 0;
    } else if (src != SQLITE_DONE) {
        acdm_log(ACDM_LOG_ERR, WHO, "attachment read failed: %s", sqlite3_errmsg(st->rdb));
        rc = ACDM_EIO;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* The data of a database-backed attachment (malloc'd into out->data). */
static int attachment_blob(acdm_store *st, const char *id, acdm_attachment *out)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->rdb, "SELECT data FROM attachments WHERE id=?", -1, &s, NULL) != SQLITE_OK)
        return ACDM_EIO;
    bind_text(s, 1, id);
    int rc = ACDM_ENOENT;
    if (sqlite3_step(s) == SQLITE_ROW) {
        out->len = (size_t)sqlite3_column_bytes(s, 0);
        out->data = dup_blob(sqlite3_column_blob(s, 0), out->len);
        rc = out->data ? 0 : ACDM_ENOMEM;
    }
    sqlite3_finalize(s);
    return rc;
}

int acdm_store_attachment_get(acdm_store *st, const char *id, acdm_attachment *out)
{
    int rc = acdm_store_attachment_meta(st, id, out);
    if (rc || out->path[0]) return rc;
    return attachment_blob(st, id, out);
}

int acdm_store_attachment_open(acdm_store *st, const char *id, acdm_attachment *meta, int *fd)
{
    if (!fd) return ACDM_EINVAL;
    *fd = -1;
    int rc = acdm_store_attachment_meta(st, id, meta);
    if (rc) return rc;
    if (meta->path[0]) {
        *fd = open(meta->path, O_RDONLY | O_CLOEXEC);
        if (*fd < 0) {
            acdm_log(ACDM_LOG_ERR, WHO, "attachment %s: cannot open %s: %s", id, meta->path,
                     strerror(errno));
            return errno == ENOENT ? ACDM_ENOENT : ACDM_EIO;
        }
        return 0;
    }
    /* in the database: handed over as an anonymous in-memory file */
    rc = attachment_blob(st, id, meta);
    if (rc) return rc;
    int m = memfd_create("acdm-attachment", MFD_CLOEXEC);
    rc = m < 0 ? ACDM_EIO : 0;
    for (size_t w = 0; !rc && w < meta->len;) {
        ssize_t k = write(m, meta->data + w, meta->len - w);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) rc = ACDM_EIO;
        else w += (size_t)k;
    }
    free(meta->data);
    meta->data = NULL;
    if (!rc && lseek(m, 0, SEEK_SET) != 0) rc = ACDM_EIO;
    if (rc) {
        if (m >= 0) close(m);
        return rc;
    }
    *fd = m;
    return 0;
}

int acdm_store_attachment_ref_has(acdm_store *st, const char *id, const char *channel)
{
    if (!st || !id || !channel) return ACDM_EINVAL;
    sqlite3_stmt *s = st->r_attref;
    bind_text(s, 1, id);
    bind_text(s, 2, channel);
    int src = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return src == SQLITE_ROW ? 1 : src == SQLITE_DONE ? 0 : ACDM_EIO;
}

/* Fills row from a BCOLS result row (strings borrowed from the statement). */
static void row_from_stmt(sqlite3_stmt *s, acdm_bericht_row *row)
{
    int kind = acdm_kind_parse(col_text(s, 2));
    int state = bstate_parse(col_text(s, 10));
    *row = (acdm_bericht_row){
        .id = col_text(s, 0), .channel = col_text(s, 1),
        .kind = kind < 0 ? ACDM_KIND_CHAT : (acdm_kind)kind,
        .direction = col_text(s, 3), .from = col_text(s, 4), .customer_id = col_text(s, 5),
        .conversation = col_text(s, 6), .queue = col_text(s, 7),
        .priority = sqlite3_column_int(s, 8), .skills_json = col_text(s, 9),
        .state = state < 0 ? ACDM_B_QUEUED : (acdm_bstate)state, .agent = col_text(s, 11),
        .idem_key = col_text(s, 12), .payload_json = col_text(s, 13),
        .created_ms = sqlite3_column_int64(s, 14), .queued_ms = sqlite3_column_int64(s, 15)};
}

int acdm_store_load_open(acdm_store *st, void (*row_cb)(void *user, const acdm_bericht_row *row),
                         void *user)
{
    if (!st || !row_cb) return ACDM_EINVAL;
    sqlite3_stmt *s = st->r_open;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        acdm_bericht_row row;
        row_from_stmt(s, &row);
        row_cb(user, &row);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        snprintf(st->rerr, sizeof st->rerr, "%s", sqlite3_errmsg(st->rdb));
        acdm_log(ACDM_LOG_ERR, WHO, "recovery read failed: %s", st->rerr);
        return ACDM_EIO;
    }
    return 0;
}

const char *acdm_store_read_error(const acdm_store *st) { return st ? st->rerr : ""; }

int64_t acdm_store_count_open(acdm_store *st)
{
    sqlite3_stmt *s = NULL;
    int64_t n = -1;
    /* the partial index of open berichten: counted without reading the table's pages */
    if (sqlite3_prepare_v2(st->rdb, "SELECT count(*) FROM berichten INDEXED BY berichten_open "
                           "WHERE state IN ('queued','offered','active')", -1, &s, NULL) != SQLITE_OK)
        return -1;
    if (s && sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

/* A JSON column as a value: parsed when it is JSON, else the text; null when NULL. */
static json_t *json_col(sqlite3_stmt *s, int i)
{
    const char *t = col_text(s, i);
    if (!t) return json_null();
    json_t *v = json_loads(t, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(t);
}

static json_t *str_or_null(const char *t)
{
    return t ? json_string(t) : json_null();
}

int acdm_store_get_bericht_json(acdm_store *st, const char *id, char **json_out)
{
    if (!st || !id || !*id || !json_out) return ACDM_EINVAL;
    *json_out = NULL;
    /* one read transaction, so the row, its events and messages are one snapshot */
    if (sqlite3_exec(st->rdb, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return ACDM_EIO;
    sqlite3_stmt *s = st->r_get;
    bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    json_t *o = NULL;
    if (rc == SQLITE_ROW) {
        o = json_object();
        json_object_set_new(o, "id", str_or_null(col_text(s, 0)));
        json_object_set_new(o, "channel", str_or_null(col_text(s, 1)));
        json_object_set_new(o, "kind", str_or_null(col_text(s, 2)));
        json_object_set_new(o, "direction", str_or_null(col_text(s, 3)));
        json_object_set_new(o, "from", str_or_null(col_text(s, 4)));
        json_object_set_new(o, "customer_id", str_or_null(col_text(s, 5)));
        json_object_set_new(o, "conversation", str_or_null(col_text(s, 6)));
        json_object_set_new(o, "queue", str_or_null(col_text(s, 7)));
        json_object_set_new(o, "priority", json_integer(sqlite3_column_int(s, 8)));
        json_object_set_new(o, "skills", json_col(s, 9));
        json_object_set_new(o, "state", str_or_null(col_text(s, 10)));
        json_object_set_new(o, "agent", str_or_null(col_text(s, 11)));
        json_object_set_new(o, "idem_key", str_or_null(col_text(s, 12)));
        json_object_set_new(o, "payload", json_col(s, 13));
        json_object_set_new(o, "created_ms", json_integer(sqlite3_column_int64(s, 14)));
        json_object_set_new(o, "queued_ms", json_integer(sqlite3_column_int64(s, 15)));
        json_object_set_new(o, "updated_ms", json_integer(sqlite3_column_int64(s, 16)));
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    int ret = o ? 0 : rc == SQLITE_DONE ? ACDM_ENOENT : ACDM_EIO;
    if (o) {
        json_t *evs = json_array();
        s = st->r_events;
        bind_text(s, 1, id);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            json_t *e = json_object();
            json_object_set_new(e, "type", str_or_null(col_text(s, 0)));
            json_object_set_new(e, "ts", json_integer(sqlite3_column_int64(s, 1)));
            json_object_set_new(e, "queue", str_or_null(col_text(s, 2)));
            json_object_set_new(e, "agent", str_or_null(col_text(s, 3)));
            json_object_set_new(e, "detail", json_col(s, 4));
            json_array_append_new(evs, e);
        }
        if (rc != SQLITE_DONE) ret = ACDM_EIO;
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        json_object_set_new(o, "events", evs);

        json_t *msgs = json_array();
        s = st->r_messages;
        bind_text(s, 1, id);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            json_t *m = json_object();
            json_object_set_new(m, "ts", json_integer(sqlite3_column_int64(s, 0)));
            json_object_set_new(m, "direction", str_or_null(col_text(s, 1)));
            json_object_set_new(m, "author", str_or_null(col_text(s, 2)));
            json_object_set_new(m, "text", str_or_null(col_text(s, 3)));
            json_object_set_new(m, "payload", json_col(s, 4));
            if (col_text(s, 5)) json_object_set_new(m, "id", json_string(col_text(s, 5)));
            json_array_append_new(msgs, m);
        }
        if (rc != SQLITE_DONE) ret = ACDM_EIO;
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        json_object_set_new(o, "messages", msgs);
    }
    sqlite3_exec(st->rdb, "COMMIT", NULL, NULL, NULL);
    if (ret == ACDM_EIO)
        acdm_log(ACDM_LOG_ERR, WHO, "reading bericht %s failed: %s", id, sqlite3_errmsg(st->rdb));
    if (o && !ret) {
        *json_out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!*json_out) ret = ACDM_ENOMEM;
    }
    json_decref(o);
    return ret;
}

/* ---------------------------------------------------------------------------------------------
 * Tokens. token_create goes through the writer queue (one writer connection, no lock fights)
 * with a kick so that it does not wait for the group interval, and blocks until committed.
 */
/* ---------------------------------------------------------------------------------------------
 * Customer history (Klantbeeld) and the event log for export/audit (loop thread, read connection).
 */
const char *acdm_store_db_path(const acdm_store *st) { return st ? st->path : NULL; }

void acdm_store_figures_get(acdm_store *st, acdm_store_figures *f)
{
    memset(f, 0, sizeof *f);
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    *f = st->fig;
    f->queued = st->q_count;
    pthread_mutex_unlock(&st->mu);
}

int acdm_store_customer_history(acdm_store *st, const char *address, const char *cursor, int limit,
                                char **json_out)
{
    if (!st || !address || !json_out || limit < 1 || limit > 500) return ACDM_EINVAL;
    *json_out = NULL;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT b.id, b.created_ms, b.channel, b.kind, b.queue, b.state, b.agent,"
             " CASE WHEN json_valid(b.payload_json) THEN json_extract(b.payload_json, '$.subject') END,"
             " (SELECT json_group_array(j.value) FROM events e, json_each(e.detail_json, '$.topics') j"
             "   WHERE e.bericht = b.id AND e.type = 'topics'),"
             " (SELECT json_group_array(json_object('ts', e.ts_ms, 'agent', e.agent,"
             "   'text', json_extract(e.detail_json, '$.text'), 'to_queue', json_extract(e.detail_json, '$.to_queue')))"
             "   FROM events e WHERE e.bericht = b.id AND e.type = 'note' AND json_valid(e.detail_json))"
             " FROM berichten b WHERE b.from_addr = ?1%s ORDER BY b.id DESC LIMIT %d",
             cursor ? " AND b.id < ?2" : "", limit + 1);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->rdb, sql, -1, &s, NULL) != SQLITE_OK) {
        acdm_log(ACDM_LOG_ERR, WHO, "history: %s", sqlite3_errmsg(st->rdb));
        return ACDM_EIO;
    }
    sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
    if (cursor) sqlite3_bind_text(s, 2, cursor, -1, SQLITE_STATIC);
    json_t *items = json_array();
    const char *next = NULL;
    char last[64] = "";
    int n = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (++n > limit) { next = last; break; }
        json_t *topics = json_col(s, 8);
        if (!json_is_array(topics)) { json_decref(topics); topics = json_array(); }
        json_t *notes = json_col(s, 9);   /* internal notes (api_desk.c), oldest first */
        if (!json_is_array(notes)) { json_decref(notes); notes = json_array(); }
        snprintf(last, sizeof last, "%s", col_text(s, 0) ? col_text(s, 0) : "");
        json_array_append_new(items, json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
            "id", last, "created_ms", (json_int_t)sqlite3_column_int64(s, 1),
            "channel", str_or_null(col_text(s, 2)), "kind", str_or_null(col_text(s, 3)),
            "queue", str_or_null(col_text(s, 4)), "state", str_or_null(col_text(s, 5)),
            "handler", str_or_null(col_text(s, 6)), "subject", str_or_null(col_text(s, 7)),
            "topics", topics, "notes", notes));
    }
    int ret = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ACDM_EIO;
    if (ret) acdm_log(ACDM_LOG_ERR, WHO, "history: %s", sqlite3_errmsg(st->rdb));
    sqlite3_finalize(s);
    json_t *o = json_pack("{s:o, s:o}", "items", items, "next", str_or_null(next));
    if (!ret) *json_out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return ret ? ret : *json_out ? 0 : ACDM_ENOMEM;
}

int acdm_store_customer_topics(acdm_store *st, const char *address, int64_t since_ms, int limit,
                               char **json_out)
{
    if (!st || !address || !json_out || limit < 1 || limit > 100) return ACDM_EINVAL;
    *json_out = NULL;
    static const char sql[] =
        "SELECT j.value, count(*) AS n FROM berichten b"
        " JOIN events e ON e.bericht = b.id AND e.type = 'topics' AND e.ts_ms >= ?2,"
        " json_each(e.detail_json, '$.topics') j"
        " WHERE b.from_addr = ?1 AND j.type = 'text'"
        " GROUP BY j.value ORDER BY n DESC, j.value LIMIT ?3";
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->rdb, sql, -1, &s, NULL) != SQLITE_OK) {
        acdm_log(ACDM_LOG_ERR, WHO, "topics: %s", sqlite3_errmsg(st->rdb));
        return ACDM_EIO;
    }
    sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, since_ms);
    sqlite3_bind_int(s, 3, limit);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(arr, json_pack("{s:s, s:I}", "topic", col_text(s, 0) ? col_text(s, 0) : "",
                                             "count", (json_int_t)sqlite3_column_int64(s, 1)));
    int ret = rc == SQLITE_DONE ? 0 : ACDM_EIO;
    if (ret) acdm_log(ACDM_LOG_ERR, WHO, "topics: %s", sqlite3_errmsg(st->rdb));
    sqlite3_finalize(s);
    if (!ret) *json_out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return ret ? ret : *json_out ? 0 : ACDM_ENOMEM;
}

int acdm_store_events_each(acdm_store *st, int64_t since_ms, int64_t until_ms, const char *type,
                           int (*cb)(void *user, int64_t id, const acdm_event_row *ev), void *user)
{
    if (!st || !cb) return ACDM_EINVAL;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT id, ts_ms, type, bericht, queue, agent, channel, kind, detail_json FROM events"
             " WHERE ts_ms >= ?1 AND ts_ms < ?2%s ORDER BY ts_ms, id", type ? " AND type = ?3" : "");
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->rdb, sql, -1, &s, NULL) != SQLITE_OK) {
        acdm_log(ACDM_LOG_ERR, WHO, "events: %s", sqlite3_errmsg(st->rdb));
        return ACDM_EIO;
    }
    sqlite3_bind_int64(s, 1, since_ms);
    sqlite3_bind_int64(s, 2, until_ms);
    if (type) sqlite3_bind_text(s, 3, type, -1, SQLITE_STATIC);
    int rc, n = 0, stop = 0;
    while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        acdm_event_row ev = {.ts_ms = sqlite3_column_int64(s, 1), .type = col_text(s, 2),
                             .bericht = col_text(s, 3), .queue = col_text(s, 4), .agent = col_text(s, 5),
                             .channel = col_text(s, 6), .kind = col_text(s, 7), .detail_json = col_text(s, 8)};
        if (!ev.type) ev.type = "";
        stop = cb(user, sqlite3_column_int64(s, 0), &ev);
        n++;
    }
    int ret = stop || rc == SQLITE_DONE ? n : ACDM_EIO;
    if (ret < 0) acdm_log(ACDM_LOG_ERR, WHO, "events: %s", sqlite3_errmsg(st->rdb));
    sqlite3_finalize(s);
    return ret;
}

static int sha256_hex(const char *text, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return ACDM_EIO;
    for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static void base64url(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i = 0, o = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
    }
    out[o] = '\0';
}

/* Queues op with a kick and blocks until it is committed: its status, and in *changes (may be
 * NULL) the rows it changed. */
static int run_sync(acdm_store *st, struct op *op, int *changes)
{
    struct op_sync sync = {0, 0, 0};
    /* the writer sets sync.done last and never touches it again; we wait for that below */
    // cppcheck-suppress autoVariables
    op->sync = &sync;
    enqueue(st, op);
    pthread_mutex_lock(&st->mu);
    while (!sync.done) pthread_cond_wait(&st->cv_sync, &st->mu);
    pthread_mutex_unlock(&st->mu);
    if (changes) *changes = sync.changes;
    return sync.status;
}

int acdm_store_token_create(acdm_store *st, const char *role, const char *name,
                            char token_out[64])
{
    if (!st || !role || !*role || !token_out) return ACDM_EINVAL;
    unsigned char rnd[32];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return ACDM_EIO;
    char token[64], hash[65];
    base64url(rnd, sizeof rnd, token);     /* 43 chars */
    if (sha256_hex(token, hash)) return ACDM_EIO;
    const char *strs[T__N] = {[T_HASH] = hash, [T_ROLE] = role, [T_NAME] = name};
    struct op *op = op_new(OP_TOKEN, strs, T__N, NULL, 0, 0);
    if (!op) return ACDM_ENOMEM;
    op->t0 = acdm_now_ms();
    int rc = run_sync(st, op, NULL);
    if (rc) return rc;
    memcpy(token_out, token, strlen(token) + 1);
    return 0;
}

int acdm_store_token_revoke_agent(acdm_store *st, const char *agent, int *n_revoked)
{
    if (n_revoked) *n_revoked = 0;
    if (!st || !agent || !*agent) return ACDM_EINVAL;
    const char *strs[TR__N] = {[TR_AGENT] = agent};
    struct op *op = op_new(OP_TOKEN_REVOKE, strs, TR__N, NULL, 0, 0);
    if (!op) return ACDM_ENOMEM;
    return run_sync(st, op, n_revoked);
}

static void copy_out(char *dst, size_t len, const char *src)
{
    if (dst && len) snprintf(dst, len, "%s", src ? src : "");
}

int acdm_store_token_check(acdm_store *st, const char *token, char *role, size_t rolelen,
                           char *name, size_t namelen)
{
    if (!st || !token) return ACDM_EINVAL;
    if (strlen(token) != 43) return ACDM_ENOENT;
    char hash[65];
    if (sha256_hex(token, hash)) return ACDM_EIO;
    sqlite3_stmt *s = st->r_token;
    bind_text(s, 1, hash);
    int rc = sqlite3_step(s), ret;
    if (rc == SQLITE_ROW) {
        copy_out(role, rolelen, col_text(s, 0));
        copy_out(name, namelen, col_text(s, 1));
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        ret = ACDM_ENOENT;
    } else {
        acdm_log(ACDM_LOG_ERR, WHO, "token read failed: %s", sqlite3_errmsg(st->rdb));
        ret = ACDM_EIO;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return ret;
}

/* ---------------------------------------------------------------------------------------------
 * Search (loop thread, read connection). Newest first by id (UUIDv7: time-ordered), walking the
 * primary key backwards; the cursor is the last id returned.
 */
int acdm_store_search_berichten(acdm_store *st, const acdm_bericht_query *q, char **json_out)
{
    if (!st || !q || !json_out || q->limit < 1 || q->limit > 500 || q->offset < 0) return ACDM_EINVAL;
    *json_out = NULL;
    char sql[1024];
    size_t n = (size_t)snprintf(sql, sizeof sql,
        "SELECT id, channel, kind, from_addr, customer_id, conversation, queue, priority, state, agent,"
        " CASE WHEN json_valid(payload_json) THEN json_extract(payload_json, '$.subject') END,"
        " created_ms, queued_ms, updated_ms FROM berichten WHERE 1");
    const char *binds[8];
    int nb = 0;
#define COND(field, col) do { if (q->field) { n += (size_t)snprintf(sql + n, sizeof sql - n, " AND " col "=?%d", nb + 1); binds[nb++] = q->field; } } while (0)
    COND(state, "state");
    COND(queue, "queue");
    COND(channel, "channel");
    COND(from, "from_addr");
    COND(agent, "agent");
    COND(source, "CASE WHEN json_valid(payload_json) THEN json_extract(payload_json, '$.source') END");
#undef COND
    if (q->cursor) {
        n += (size_t)snprintf(sql + n, sizeof sql - n, " AND id < ?%d", nb + 1);
        binds[nb++] = q->cursor;
    }
    if (q->since_ms > 0) {
        /* ids are UUIDv7 made at creation: their first 48 bits are the creation ms, so a lower
         * bound on the primary key (a minute early: the id's clock is monotonic, may run ahead)
         * lets SQLite read only the berichten since then instead of the whole table */
        uint64_t lo = q->since_ms > 60000 ? (uint64_t)(q->since_ms - 60000) : 0;
        n += (size_t)snprintf(sql + n, sizeof sql - n, " AND id >= '%08llx-%04llx' AND created_ms >= %lld",
                              (unsigned long long)(lo >> 16), (unsigned long long)(lo & 0xffff), (long long)q->since_ms);
    }
    if (q->until_ms > 0) n += (size_t)snprintf(sql + n, sizeof sql - n, " AND created_ms <= %lld", (long long)q->until_ms);
    snprintf(sql + n, sizeof sql - n, " ORDER BY id DESC LIMIT %d OFFSET %d", q->limit + 1, q->cursor ? 0 : q->offset);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->rdb, sql, -1, &s, NULL) != SQLITE_OK) {
        acdm_log(ACDM_LOG_ERR, WHO, "search: %s", sqlite3_errmsg(st->rdb));
        return ACDM_EIO;
    }
    for (int i = 0; i < nb; i++) sqlite3_bind_text(s, i + 1, binds[i], -1, SQLITE_TRANSIENT);
    json_t *items = json_array();
    json_t *next = json_null();
    int rc, count = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (count == q->limit) {      /* one more than asked: there is a next page */
            json_decref(next);
            json_t *last = json_array_get(items, json_array_size(items) - 1);
            next = json_incref(json_object_get(last, "id"));
            break;
        }
        json_t *o = json_object();
        static const char *const names[] = {"id", "channel", "kind", "from", "customer_id",
                                            "conversation", "queue"};
        for (int i = 0; i < 7; i++) json_object_set_new(o, names[i], str_or_null(col_text(s, i)));
        json_object_set_new(o, "priority", json_integer(sqlite3_column_int(s, 7)));
        json_object_set_new(o, "state", str_or_null(col_text(s, 8)));
        json_object_set_new(o, "agent", str_or_null(col_text(s, 9)));
        json_object_set_new(o, "subject", sqlite3_column_type(s, 10) == SQLITE_TEXT ? json_string(col_text(s, 10)) : json_null());
        json_object_set_new(o, "created_ms", json_integer(sqlite3_column_int64(s, 11)));
        json_object_set_new(o, "queued_ms", json_integer(sqlite3_column_int64(s, 12)));
        json_object_set_new(o, "updated_ms", json_integer(sqlite3_column_int64(s, 13)));
        json_array_append_new(items, o);
        count++;
    }
    int ret = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ACDM_EIO;
    if (ret) acdm_log(ACDM_LOG_ERR, WHO, "search: %s", sqlite3_errmsg(st->rdb));
    sqlite3_finalize(s);
    json_t *o = json_pack("{s:o, s:o}", "items", items, "next", next);
    if (!ret && !(*json_out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER))) ret = ACDM_ENOMEM;
    json_decref(o);
    return ret;
}

/* ---------------------------------------------------------------------------------------------
 * Reads and copies beside a running acdmd, on a connection of their own (any thread, any
 * process: the event export, the reports, today's figures at start, acdmctl).
 */
int acdm_store_read_events(const char *db_path, int64_t since_ms, int64_t until_ms,
                           const char *const *types,
                           int (*cb)(void *user, int64_t id, const acdm_event_row *ev), void *user,
                           char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", db_path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return ACDM_EIO;
    }
    sqlite3_busy_timeout(db, 5000);
    /* the literal 'audit' lets SQLite use the partial index events_audit; other type lists are
     * bound (?3, ?4, ...) */
    bool audit_only = types && types[0] && !types[1] && !strcmp(types[0], "audit");
    char sql[600];
    size_t n_types = 0;
    while (types && types[n_types] && n_types < 16) n_types++;
    int l = snprintf(sql, sizeof sql, "SELECT id, ts_ms, type, bericht, queue, agent, channel, kind, detail_json FROM events"
                     " WHERE %sts_ms >= ?1 AND ts_ms < ?2", audit_only ? "type = 'audit' AND " : "");
    if (!audit_only && n_types) {
        l += snprintf(sql + l, sizeof sql - (size_t)l, " AND type IN (");
        for (size_t i = 0; i < n_types; i++) l += snprintf(sql + l, sizeof sql - (size_t)l, "%s?%zu", i ? "," : "", i + 3);
        l += snprintf(sql + l, sizeof sql - (size_t)l, ")");
    }
    snprintf(sql + l, sizeof sql - (size_t)l, " ORDER BY ts_ms, id");
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", db_path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return ACDM_EIO;
    }
    sqlite3_bind_int64(s, 1, since_ms);
    sqlite3_bind_int64(s, 2, until_ms);
    for (size_t i = 0; !audit_only && i < n_types; i++) sqlite3_bind_text(s, (int)i + 3, types[i], -1, SQLITE_STATIC);
    int rc = SQLITE_DONE, n = 0, stop = 0;
    while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        acdm_event_row ev = {.ts_ms = sqlite3_column_int64(s, 1),
                             .type = (const char *)sqlite3_column_text(s, 2),
                             .bericht = (const char *)sqlite3_column_text(s, 3),
                             .queue = (const char *)sqlite3_column_text(s, 4),
                             .agent = (const char *)sqlite3_column_text(s, 5),
                             .channel = (const char *)sqlite3_column_text(s, 6),
                             .kind = (const char *)sqlite3_column_text(s, 7),
                             .detail_json = (const char *)sqlite3_column_text(s, 8)};
        if (!ev.type) ev.type = "";
        stop = cb(user, sqlite3_column_int64(s, 0), &ev);
        n++;
    }
    int ret = n;
    if (!stop && rc != SQLITE_DONE) {
        snprintf(err, errlen, "%s: %s", db_path, sqlite3_errmsg(db));
        ret = ACDM_EIO;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return ret;
}

static int cancelled(const int *cancel) { return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED); }

static int check_progress(void *arg) { return cancelled(arg); }

/* PRAGMA integrity_check on path through a read-only connection: 0 when it says "ok". */
static int verify_file(const char *path, const int *cancel, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK && cancel) sqlite3_progress_handler(db, 10000, check_progress, (void *)cancel);
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return ACDM_EIO;
    }
    int ret = 0;
    rc = sqlite3_step(s);
    const char *first = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
    if (cancelled(cancel)) {
        snprintf(err, errlen, "%s: cancelled (acdmd is stopping)", path);
        ret = ACDM_EIO;
    } else if (!first || strcmp(first, "ok")) {
        snprintf(err, errlen, "%s: integrity check failed: %.300s", path,
                 first ? first : sqlite3_errmsg(db));
        ret = ACDM_EIO;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return ret;
}

int acdm_store_verify_file(const char *path, char *err, size_t errlen)
{
    return verify_file(path, NULL, err, errlen);
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int acdm_store_backup(const char *src, const char *dst, const acdm_backup_opts *o,
                      acdm_backup_info *info, char *err, size_t errlen)
{
    acdm_backup_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    int step_pages = o && o->step_pages > 0 ? o->step_pages : 1024;
    int pause_ms = o && o->pause_ms > 0 ? o->pause_ms : 0;
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.partial", dst) >= sizeof tmp) {
        snprintf(err, errlen, "%.200s: name too long", dst);
        return ACDM_EINVAL;
    }
    int64_t t0 = acdm_now_ms();
    unlink(tmp);
    sqlite3 *from = NULL, *to = NULL;
    int rc = sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", src, from ? sqlite3_errmsg(from) : "cannot open");
        sqlite3_close(from);
        return ACDM_EIO;
    }
    rc = sqlite3_open(tmp, &to);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", tmp, to ? sqlite3_errmsg(to) : "cannot open");
        sqlite3_close(from);
        sqlite3_close(to);
        return ACDM_EIO;
    }
    sqlite3_busy_timeout(from, BUSY_TIMEOUT_MS);
    /* The copy's pages are written once into a new file: no journal needed (a failed copy is
     * removed); it is synced below before it gets its name. */
    sqlite3_exec(to, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF", NULL, NULL, NULL);
    /* One read transaction over every step: the copy is the database as of its start (the
     * snapshot a WAL reader keeps), and acdmd's commits meanwhile neither wait for it nor
     * make it start over, as they would between steps of their own transactions. */
    rc = sqlite3_exec(from, "BEGIN; SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    info->snapshot_ms = acdm_now_ms();
    sqlite3_backup *b = rc == SQLITE_OK ? sqlite3_backup_init(to, "main", from, "main") : NULL;
    if (b) {
        do {
            rc = sqlite3_backup_step(b, step_pages);
            if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(20);
            else if (rc == SQLITE_OK && pause_ms) sqlite3_sleep(pause_ms);
        } while ((rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && !cancelled(o ? o->cancel : NULL));
        info->pages = sqlite3_backup_pagecount(b);
        sqlite3_backup_finish(b);
    }
    int ret = 0;
    if (rc != SQLITE_DONE && cancelled(o ? o->cancel : NULL)) {
        snprintf(err, errlen, "%s: cancelled (acdmd is stopping)", dst);
        ret = ACDM_EIO;
    } else if (rc != SQLITE_DONE) {
        const char *why = b ? sqlite3_errmsg(to) : sqlite3_errmsg(rc == SQLITE_OK ? to : from);
        snprintf(err, errlen, "%s: %s", b ? dst : src, why);
        ret = ACDM_EIO;
    }
    sqlite3_exec(from, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(from);
    /* the copy's header says WAL like its source's: a plain file is what a backup should be
     * (one file to copy or check; acdmd turns WAL on again when it opens a restored one) */
    if (!ret && sqlite3_exec(to, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", dst, sqlite3_errmsg(to));
        ret = ACDM_EIO;
    }
    if (sqlite3_close(to) != SQLITE_OK && !ret) {
        snprintf(err, errlen, "%s: cannot close the copy", dst);
        ret = ACDM_EIO;
    }
    info->copy_ms = acdm_now_ms() - t0;
    if (!ret && fsync_path(tmp, 0) != 0) {
        snprintf(err, errlen, "%s: cannot sync the copy: %s", dst, strerror(errno));
        ret = ACDM_EIO;
    }
    int64_t t1 = acdm_now_ms();
    if (!ret && verify_file(tmp, o ? o->cancel : NULL, err, errlen) != 0) ret = ACDM_EIO;
    info->verify_ms = acdm_now_ms() - t1;
    struct stat sb;
    if (!ret && stat(tmp, &sb) == 0) info->bytes = (int64_t)sb.st_size;
    if (!ret && rename(tmp, dst) != 0) {
        snprintf(err, errlen, "%s: %s", dst, strerror(errno));
        ret = ACDM_EIO;
    }
    if (ret) {
        unlink(tmp);
        return ret;
    }
    /* the new name durable too */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", dst);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    fsync_path(dir, 1);
    return 0;
}

int acdm_store_backup_file(const char *src, const char *dst, char *err, size_t errlen)
{
    return acdm_store_backup(src, dst, NULL, NULL, err, errlen);
}
