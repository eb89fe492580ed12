/* bench_store.c -- store benchmarks: durable grouped ingest vs a bare SQLite loop, and recovery. */
#include "store/store.h"

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

/* The berichten table as store_sqlite.c creates it (schema version 1), for the bare loop. */
static const char *const berichten_sql =
    "CREATE TABLE berichten ("
    "  id TEXT PRIMARY KEY, channel TEXT NOT NULL, kind TEXT NOT NULL, direction TEXT NOT NULL,"
    "  from_addr TEXT, customer_id TEXT, conversation TEXT, queue TEXT NOT NULL,"
    "  priority INTEGER NOT NULL DEFAULT 0, skills_json TEXT, state TEXT NOT NULL, agent TEXT,"
    "  idem_key TEXT, payload_json TEXT, created_ms INTEGER NOT NULL, queued_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX berichten_idem ON berichten(channel, idem_key) WHERE idem_key IS NOT NULL;"
    "CREATE INDEX berichten_open ON berichten(queued_ms)"
    "  WHERE state IN ('queued','offered','active');";

static const char *const insert_sql =
    "INSERT OR IGNORE INTO berichten (id, channel, kind, direction, from_addr, customer_id, "
    "conversation, queue, priority, skills_json, state, agent, idem_key, payload_json, "
    "created_ms, queued_ms, updated_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

#define SKILLS "[{\"name\":\"dutch\",\"level\":2},{\"name\":\"billing\",\"level\":1}]"
#define PAYLOAD "{\"subject\":\"Waar blijft mijn pakket?\",\"text\":\"Goedemiddag, ik wacht " \
                "al drie dagen op bestelling 4711. Kunt u kijken waar die is?\"}"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, why);
    exit(1);
}

static void sq(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) die(sql, msg ? msg : "?");
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

/* The test rows: ids and idempotency keys made up front, so both sides insert the same data. */
typedef struct {
    char id[37];
    char idem[24];
    char from[24];
    int64_t ms;
} bench_row;

static bench_row *make_rows(size_t n)
{
    bench_row *rows = malloc(n * sizeof *rows);
    if (!rows) die("rows", "out of memory");
    int64_t t = acdm_now_ms();
    for (size_t i = 0; i < n; i++) {
        acdm_uuidv7(rows[i].id, t);
        snprintf(rows[i].idem, sizeof rows[i].idem, "msg-%zu", i);
        snprintf(rows[i].from, sizeof rows[i].from, "+3161%07zu", i % 10000000);
        rows[i].ms = t + (int64_t)i;
    }
    return rows;
}

static acdm_bericht_row to_row(const bench_row *b)
{
    return (acdm_bericht_row){
        .id = b->id, .channel = "wa1", .kind = ACDM_KIND_WHATSAPP, .direction = "in",
        .from = b->from, .customer_id = NULL, .conversation = b->from, .queue = "support",
        .priority = 1, .skills_json = SKILLS, .state = ACDM_B_QUEUED, .agent = NULL,
        .idem_key = b->idem, .payload_json = PAYLOAD, .created_ms = b->ms, .queued_ms = b->ms};
}

static void bind_row(sqlite3_stmt *s, const bench_row *b)
{
    sqlite3_bind_text(s, 1, b->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, "wa1", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, "whatsapp", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, "in", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, b->from, -1, SQLITE_STATIC);
    sqlite3_bind_null(s, 6);
    sqlite3_bind_text(s, 7, b->from, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, "support", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 9, 1);
    sqlite3_bind_text(s, 10, SKILLS, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 11, "queued", -1, SQLITE_STATIC);
    sqlite3_bind_null(s, 12);
    sqlite3_bind_text(s, 13, b->idem, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 14, PAYLOAD, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 15, b->ms);
    sqlite3_bind_int64(s, 16, b->ms);
    sqlite3_bind_int64(s, 17, b->ms);
}

/* Inserts rows into db (table created if needed) in transactions of `batch` rows. */
static void bare_insert(sqlite3 *db, const bench_row *rows, size_t n, size_t batch)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, insert_sql, -1, &s, NULL) != SQLITE_OK)
        die("prepare", sqlite3_errmsg(db));
    for (size_t i = 0; i < n; i++) {
        if (i % batch == 0) sq(db, "BEGIN");
        bind_row(s, &rows[i]);
        if (sqlite3_step(s) != SQLITE_DONE) die("insert", sqlite3_errmsg(db));
        sqlite3_reset(s);
        if (i % batch == batch - 1 || i == n - 1) sq(db, "COMMIT");
    }
    sqlite3_finalize(s);
}

/* ---- the store side: a wake pipe stands in for the daemon's uv_async ---- */

static int wake_fd[2];
static size_t acked, failed;

static void wake_fn(void *arg)
{
    (void)arg;
    char c = 1;
    ssize_t r = write(wake_fd[1], &c, 1);
    (void)r;
}

static void ack_cb(void *user, int status, const char *existing_id)
{
    (void)user; (void)existing_id;
    if (status) failed++;
    acked++;
}

static void run_loop_once(acdm_store *st, int timeout_ms)
{
    struct pollfd p = {.fd = wake_fd[0], .events = POLLIN};
    if (poll(&p, 1, timeout_ms) > 0) {
        char buf[256];
        while (read(wake_fd[0], buf, sizeof buf) > 0) {}
    }
    acdm_store_poll(st);
}

static acdm_store *open_store(const char *dir, int group_ms)
{
    acdm_store *st = NULL;
    char err[256];
    if (acdm_store_open(dir, group_ms, wake_fn, NULL, &st, err, sizeof err)) die("open", err);
    return st;
}

static void bench_ingest(const char *base, size_t n, int group_ms)
{
    bench_row *rows = make_rows(n);
    char path[512];

    /* bare SQLite: WAL, synchronous=FULL, transactions of 512 */
    snprintf(path, sizeof path, "%s/bare.db", base);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) die(path, sqlite3_errmsg(db));
    sq(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    sq(db, berichten_sql);
    double t0 = now_s();
    bare_insert(db, rows, n, 512);
    double bare_s = now_s() - t0;
    sqlite3_close(db);

    /* the store: every insert through the queue, timed until the last callback ran */
    snprintf(path, sizeof path, "%s/ingest", base);
    acdm_store *st = open_store(path, group_ms);
    acked = failed = 0;
    t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        acdm_bericht_row r = to_row(&rows[i]);
        if (acdm_store_insert_bericht(st, &r, ack_cb, NULL)) die("insert", "refused");
        if (i % 256 == 255) run_loop_once(st, 0);   /* a loop turn now and then */
    }
    while (acked < n) run_loop_once(st, 100);
    double store_s = now_s() - t0;
    acdm_store_close(st);
    if (failed) die("ingest", "some inserts failed");

    double store_rate = (double)n / store_s, bare_rate = (double)n / bare_s;
    printf("bench store_ingest: %.0f berichten/s (bare sqlite %.0f/s, ratio %.2f) "
           "[%zu rows, group_commit_ms %d, %.2f s vs %.2f s]\n",
           store_rate, bare_rate, store_rate / bare_rate, n, group_ms, store_s, bare_s);
    free(rows);
}

static size_t open_rows;
static int64_t open_last_ms;
static int open_unordered;

static void open_cb(void *user, const acdm_bericht_row *row)
{
    (void)user;
    if (row->queued_ms < open_last_ms) open_unordered = 1;
    open_last_ms = row->queued_ms;
    open_rows++;
}

static void bench_recovery(const char *base, size_t n)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/recovery", base);
    acdm_store_close(open_store(dir, 5));     /* creates the schema */
    snprintf(path, sizeof path, "%s/acdm.db", dir);

    /* bulk load, not timed: one transaction, no fsync */
    bench_row *rows = make_rows(n);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) die(path, sqlite3_errmsg(db));
    sq(db, "PRAGMA synchronous=OFF; PRAGMA cache_size=-200000;");
    bare_insert(db, rows, n, n);
    sq(db, "PRAGMA wal_checkpoint(TRUNCATE);");
    sqlite3_close(db);
    free(rows);

    double t0 = now_s();
    acdm_store *st = open_store(dir, 5);
    double open_s = now_s() - t0;
    open_rows = 0;
    open_last_ms = 0;
    open_unordered = 0;
    t0 = now_s();
    if (acdm_store_load_open(st, open_cb, NULL)) die("load_open", "failed");
    double load_s = now_s() - t0;
    acdm_store_close(st);
    if (open_unordered) die("load_open", "rows not ordered by queued_ms");
    printf("bench store_load_open: %zu rows in %.2f s (%.0f rows/s; open %.3f s; %zu rows in db)\n",
           open_rows, load_s, (double)open_rows / load_s, open_s, n);
}

int main(int argc, char **argv)
{
    size_t n_ingest = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    size_t n_open = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
    int group_ms = argc > 3 ? atoi(argv[3]) : 5;
    if (!n_ingest || !n_open) {
        fprintf(stderr, "usage: bench_store [ingest_rows [recovery_rows [group_commit_ms]]]\n");
        return 2;
    }
    if (pipe2(wake_fd, O_NONBLOCK | O_CLOEXEC)) die("pipe", "failed");
    char base[] = "/tmp/acdm-bench-store-XXXXXX";
    if (!mkdtemp(base)) die("mkdtemp", "failed");
    bench_ingest(base, n_ingest, group_ms);
    bench_recovery(base, n_open);
    nftw(base, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}
