/* bench_report.c -- cost of a supervisor report (report.c) over a big day: N events (default
 * 1,000,000) of one local day in a real store database (berichten queued, offered, accepted,
 * wrapped up and done, some abandoned and quick drops, agents changing state), then a day
 * report per queue in 15-minute intervals and per agent in hours, read through the read-only
 * connection the daemon's worker thread uses. Baselines in the same run: a bare
 * `SELECT count(*)` over the same rows and reading every row with a no-op callback
 * (acdm_export_read), so the report's own aggregation cost shows.
 * usage: bench_report [events] */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reports/report.h"

static double secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void wake(void *arg) { (void)arg; }

static int nop(void *user, int64_t id, const acdm_event_row *ev)
{
    (void)id;
    (void)ev;
    (*(int *)user)++;
    return 0;
}

typedef struct { const char *type; int64_t dt; const char *agent; const char *detail; } fake;

/* Fills the events of the day from `day` on: 5 events per answered bericht. */
static int fill(const char *db_path, int64_t day, long n_events)
{
    sqlite3 *db;
    if (sqlite3_open(db_path, &db) != SQLITE_OK) return -1;
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "INSERT INTO events(ts_ms,type,bericht,queue,agent,channel,kind,detail_json)"
                           " VALUES(?,?,?,?,?,?,?,?)", -1, &st, NULL);
    long n = 0, b = 0;
    int64_t span = 86400000LL - 3600000;   /* the day, less the last hour for the tails */
    while (n < n_events) {
        char id[48], q[16], a[16], wait[128];
        int64_t t = day + (int64_t)((double)span * (double)n / (double)n_events);
        snprintf(id, sizeof id, "0190d000-0000-7000-8000-%012ld", b);
        snprintf(q, sizeof q, "q%ld", b % 10);
        snprintf(a, sizeof a, "agent%ld", b % 200);
        int w = (int)(b * 7919 % 60000);
        fake evs[5];
        int k = 0;
        if (b % 50 == 0) {   /* an agent changes state */
            evs[k++] = (fake){"agent_state", 0, a, b % 100 ? "{\"state\":\"ready\"}" : "{\"reason\":\"pauze\",\"state\":\"not_ready\"}"};
        }
        /* the details as acdmd writes them (engine.c acdm_engine_event_detail: with the flow) */
        evs[k++] = (fake){"queued", 0, NULL, "{\"reason\":\"new\",\"flow\":\"offered\",\"channel_flow\":\"offered\"}"};
        if (b % 20 == 0) {
            snprintf(wait, sizeof wait, "{\"flow\":\"abandoned\",\"channel_flow\":\"abandoned\",\"wait_ms\":%d,\"quick_drop\":%s}",
                     w, w < 5000 ? "true" : "false");
            evs[k++] = (fake){"abandoned", w, NULL, wait};
        } else {
            snprintf(wait, sizeof wait, "{\"flow\":\"answered\",\"channel_flow\":\"answered\",\"wait_ms\":%d}", w);
            evs[k++] = (fake){"accepted", w, a, wait};
            evs[k++] = (fake){"wrapup_start", w + 180000, a, "{\"flow\":\"none\",\"channel_flow\":\"none\",\"seconds\":30}"};
            evs[k++] = (fake){"done", w + 210000, a, "{\"flow\":\"none\",\"channel_flow\":\"none\"}"};
        }
        for (int i = 0; i < k && n < n_events; i++, n++) {
            sqlite3_bind_int64(st, 1, t + evs[i].dt);
            sqlite3_bind_text(st, 2, evs[i].type, -1, SQLITE_STATIC);
            if (!strcmp(evs[i].type, "agent_state")) sqlite3_bind_null(st, 3), sqlite3_bind_null(st, 4);
            else sqlite3_bind_text(st, 3, id, -1, SQLITE_TRANSIENT), sqlite3_bind_text(st, 4, q, -1, SQLITE_TRANSIENT);
            if (evs[i].agent) sqlite3_bind_text(st, 5, evs[i].agent, -1, SQLITE_TRANSIENT);
            else sqlite3_bind_null(st, 5);
            sqlite3_bind_text(st, 6, "api", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 7, "chat", -1, SQLITE_STATIC);
            if (evs[i].detail) sqlite3_bind_text(st, 8, evs[i].detail, -1, SQLITE_TRANSIENT);
            else sqlite3_bind_null(st, 8);
            sqlite3_step(st);
            sqlite3_reset(st);
        }
        b++;
    }
    sqlite3_finalize(st);
    sqlite3_exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    setenv("TZ", "Europe/Amsterdam", 1);
    tzset();
    char dir[] = "/tmp/acdm-bench-report-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    acdm_store *st;
    char err[512];
    if (acdm_store_open(dir, 0, wake, NULL, &st, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    char db[600];
    snprintf(db, sizeof db, "%s", acdm_store_db_path(st));
    acdm_store_close(st);

    acdm_report_range rg;
    int64_t now = 0;
    acdm_time_parse("2026-11-21T12:00:00+01:00", &now);
    if (acdm_report_params("queues", "2026-11-20", NULL, "day", "15m", now, &rg, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    double t0 = secs();
    fill(db, rg.from_ms, n);
    double t_fill = secs() - t0;

    /* baseline 1: count(*) over the same rows */
    sqlite3 *h;
    sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL);
    sqlite3_stmt *s;
    sqlite3_prepare_v2(h, "SELECT count(*) FROM events WHERE ts_ms >= ?1 AND ts_ms < ?2", -1, &s, NULL);
    sqlite3_bind_int64(s, 1, rg.from_ms - ACDM_REPORT_WARMUP_MS);
    sqlite3_bind_int64(s, 2, rg.until_ms);
    t0 = secs();
    sqlite3_step(s);
    long counted = (long)sqlite3_column_int64(s, 0);
    double t_count = secs() - t0;
    sqlite3_finalize(s);
    sqlite3_close(h);

    /* baseline 2: every row read (all columns), nothing done with it */
    int rows = 0;
    t0 = secs();
    acdm_export_read(db, rg.from_ms - ACDM_REPORT_WARMUP_MS, rg.until_ms, false, nop, &rows, err, sizeof err);
    double t_read = secs() - t0;

    /* the reports */
    double t_rep[3], t_out[3];
    size_t bytes[3], nrows[3];
    static const char *const kinds[] = {"queues", "agents", "topics"}, *const ivs[] = {"15m", "1h", "1d"};
    for (int k = 0; k < 3; k++) {
        acdm_report_range r2;
        acdm_report_params(kinds[k], "2026-11-20", NULL, "day", ivs[k], now, &r2, err, sizeof err);
        acdm_report *r = acdm_report_new(&r2, NULL);
        t0 = secs();
        if (acdm_report_read(r, db, now, err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); return 1; }
        t_rep[k] = secs() - t0;
        acdm_sbuf b = {0};
        t0 = secs();
        acdm_report_write(r, ACDM_REPORT_XLSX, &b, NULL, err, sizeof err);
        t_out[k] = secs() - t0;
        bytes[k] = b.n;
        nrows[k] = acdm_report_n_rows(r, false);
        acdm_sb_free(&b);
        acdm_report_free(r);
    }
    struct stat sb;
    long mb = stat(db, &sb) ? -1 : (long)(sb.st_size / (1024 * 1024));
    printf("bench report_fill: %ld events of one day written in %.1f s (database %ld MiB with its indexes)\n", n, t_fill, mb);
    printf("bench report_day_queues: %d events read, day report per queue in 15 min (10 queues, %zu rows): "
           "%.0f ms (+ xlsx %.0f ms, %zu KB); baseline count(*) %.0f ms (%ld rows), reading the rows %.0f ms\n",
           rows, nrows[0], t_rep[0] * 1e3, t_out[0] * 1e3, bytes[0] / 1024, t_count * 1e3, counted, t_read * 1e3);
    printf("bench report_day_agents: day report per agent in hours (200 agents, %zu rows): %.0f ms (+ xlsx %.0f ms, %zu KB)\n",
           nrows[1], t_rep[1] * 1e3, t_out[1] * 1e3, bytes[1] / 1024);
    printf("bench report_day_topics: day report per topic (no topic events among the %ld: only SQLite's scan of the range): %.0f ms\n",
           n, t_rep[2] * 1e3);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return 1;
    return 0;
}
