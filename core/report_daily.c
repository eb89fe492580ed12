/* report_daily.c -- the daily export for BI tools (R29): yesterday's reports (queues, channels,
 * agents, topics) as JSON and CSV files in reports.daily_export_dir, written on a worker thread
 * once a day, daily_export_delay_min after local midnight, and at start when they are missing. */
#include "engine.h"
#include "log.h"
#include "report.h"
#include "report_daily.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WHO "reports"
#define N_KINDS 4

struct acdm_report_daily {
    acdm_engine *e;
    uv_timer_t timer;
    bool running;              /* a job is on the worker thread */
    bool closed;               /* the timer is closed: the job's end frees this */
};

typedef struct {
    uv_work_t work;
    struct acdm_report_daily *d;
    char *db, *dir;
    char day[16];
    acdm_report *reports[N_KINDS];
    int files, events;
    char err[512];
} daily_job;

/* "YYYY-MM-DD" of the local day before the one holding now. */
static void yesterday(int64_t now, char out[16])
{
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_mday -= 1;
    tm.tm_hour = 12;
    tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    t = mktime(&tm);
    localtime_r(&t, &tm);
    snprintf(out, 16, "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100);
}

static void file_name(char *out, size_t len, const char *dir, const char *kind, const char *day, const char *ext)
{
    snprintf(out, len, "%s/acdm-%s-%s.%s", dir, kind, day, ext);
}

static bool all_written(const char *dir, const char *day)
{
    static const char *const ext[] = {"json", "csv"};
    char path[1200];
    for (int k = 0; k < N_KINDS; k++)
        for (int x = 0; x < 2; x++) {
            file_name(path, sizeof path, dir, acdm_report_kind_name((acdm_report_kind)k), day, ext[x]);
            if (access(path, F_OK)) return false;
        }
    return true;
}

/* Writes buf to path through a hidden temporary file beside it (a reader never sees half). */
static int write_file(const char *dir, const char *path, const acdm_buf *b, char *err, size_t errlen)
{
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s/.acdm-export-%d.tmp", dir, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) { snprintf(err, errlen, "cannot write %.400s: %s", tmp, strerror(errno)); return ACDM_EIO; }
    bool ok = fwrite(b->buf ? b->buf : "", 1, b->len, f) == b->len;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path)) {
        snprintf(err, errlen, "cannot write %.400s: %s", path, strerror(errno));
        unlink(tmp);
        return ACDM_EIO;
    }
    return 0;
}

static void job_run(uv_work_t *w)
{
    daily_job *j = w->data;
    if (mkdir(j->dir, 0750) && errno != EEXIST) {
        snprintf(j->err, sizeof j->err, "cannot create %s: %s", j->dir, strerror(errno));
        return;
    }
    static const struct { acdm_report_format f; const char *ext; } out[] = {{ACDM_REPORT_JSON, "json"}, {ACDM_REPORT_CSV, "csv"}};
    for (int k = 0; k < N_KINDS; k++) {
        int n = acdm_report_read(j->reports[k], j->db, acdm_now_ms(), j->err, sizeof j->err);
        if (n < 0) return;
        j->events += n;
        for (int x = 0; x < 2; x++) {
            acdm_buf b = {0};
            char path[1200];
            file_name(path, sizeof path, j->dir, acdm_report_kind_name((acdm_report_kind)k), j->day, out[x].ext);
            int rc = acdm_report_write(j->reports[k], out[x].f, &b, NULL, j->err, sizeof j->err);
            if (!rc) rc = write_file(j->dir, path, &b, j->err, sizeof j->err);
            acdm_buf_free(&b);
            if (rc) return;
            j->files++;
        }
    }
}

static void job_free(daily_job *j)
{
    for (int k = 0; k < N_KINDS; k++) acdm_report_free(j->reports[k]);
    free(j->db);
    free(j->dir);
    free(j);
}

static void job_done(uv_work_t *w, int status)
{
    daily_job *j = w->data;
    j->d->running = false;
    if (j->d->closed) free(j->d);
    if (status || j->files < N_KINDS * 2)
        acdm_log(ACDM_LOG_ERR, WHO, "daily export of %s: %s", j->day, j->err[0] ? j->err : "cancelled");
    else
        acdm_log(ACDM_LOG_INFO, WHO, "daily export of %s: %d files in %s (%d events read)", j->day, j->files,
                 j->dir, j->events);
    job_free(j);
}

/* Starts yesterday's export if the files are not all there. */
static void export_if_missing(struct acdm_report_daily *d, int64_t now)
{
    acdm_engine *e = d->e;
    const acdm_config *cfg = acdm_model_config(e->model);
    const char *dir = cfg->reports.daily_export_dir;
    if (!dir || d->running || e->stopping) return;
    daily_job *j = calloc(1, sizeof *j);
    if (!j) return;
    yesterday(now, j->day);
    if (all_written(dir, j->day)) { free(j); return; }
    j->d = d;
    j->dir = strdup(dir);
    j->db = strdup(acdm_store_db_path(e->store));
    bool ok = j->dir && j->db;
    for (int k = 0; k < N_KINDS && ok; k++) {
        acdm_report_range rg;
        char err[256];
        const char *iv = cfg->reports.daily_export_interval ? cfg->reports.daily_export_interval : "1h";
        ok = !acdm_report_params(acdm_report_kind_name((acdm_report_kind)k), j->day, NULL, "day", iv, now, &rg,
                                 err, sizeof err) &&
             (j->reports[k] = acdm_report_new(&rg, cfg)) != NULL;
    }
    j->work.data = j;
    if (!ok || uv_queue_work(&e->loop, &j->work, job_run, job_done)) {
        acdm_log(ACDM_LOG_ERR, WHO, "daily export of %s could not start", j->day);
        job_free(j);
        return;
    }
    d->running = true;
}

static void on_timer(uv_timer_t *t)
{
    struct acdm_report_daily *d = t->data;
    int64_t now = acdm_now_ms();
    export_if_missing(d, now);
    /* again daily_export_delay_min after the next local midnight (DST-safe: mktime) */
    time_t tt = (time_t)(now / 1000);
    struct tm tm;
    localtime_r(&tt, &tm);
    tm.tm_mday += 1;
    tm.tm_hour = tm.tm_sec = 0;
    tm.tm_min = acdm_model_config(d->e->model)->reports.daily_export_delay_min;
    tm.tm_isdst = -1;
    time_t next = mktime(&tm);
    int64_t wait = next == (time_t)-1 ? 3600000 : (int64_t)next * 1000 - now;
    uv_timer_start(&d->timer, on_timer, (uint64_t)(wait > 1000 ? wait : 1000), 0);
}

int acdm_report_daily_start(acdm_engine *e)
{
    struct acdm_report_daily *d = calloc(1, sizeof *d);
    if (!d) return ACDM_ENOMEM;
    d->e = e;
    uv_timer_init(&e->loop, &d->timer);
    d->timer.data = d;
    e->daily = d;
    uv_timer_start(&d->timer, on_timer, 0, 0);   /* at start: yesterday's files if missing */
    return 0;
}

static void closed(uv_handle_t *h)
{
    struct acdm_report_daily *d = h->data;
    d->closed = true;
    if (!d->running) free(d);
}

void acdm_report_daily_stop(acdm_engine *e)
{
    if (!e->daily) return;
    uv_close((uv_handle_t *)&e->daily->timer, closed);
    e->daily = NULL;
}
