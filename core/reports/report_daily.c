/* report_daily.c -- scheduled reports: the daily export for BI tools (R29: yesterday's reports
 * per queue, channel, agent and topic as JSON and CSV files in reports.daily_export_dir) and the
 * weekly or monthly mail (R28d/R66: last week's or month's reports as attachments, reports.mail).
 * Both run on a worker thread, daily_export_delay_min after local midnight and at start when
 * not done yet (the files missing; the mail's period not in the store's key/value as sent). */
#include "engine/engine.h"
#include "base/log.h"
#include "reports/report.h"
#include "reports/report_daily.h"
#include "reports/report_mail.h"

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
    bool mailing;              /* a mail job is */
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
static int write_file(const char *dir, const char *path, const acdm_sbuf *b, char *err, size_t errlen)
{
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s/.acdm-export-%d.tmp", dir, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) { snprintf(err, errlen, "cannot write %.400s: %s", tmp, strerror(errno)); return ACDM_EIO; }
    bool ok = fwrite(b->p ? b->p : "", 1, b->n, f) == b->n;
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
            acdm_sbuf b = {0};
            char path[1200];
            file_name(path, sizeof path, j->dir, acdm_report_kind_name((acdm_report_kind)k), j->day, out[x].ext);
            int rc = acdm_report_write(j->reports[k], out[x].f, &b, NULL, j->err, sizeof j->err);
            if (!rc) rc = write_file(j->dir, path, &b, j->err, sizeof j->err);
            acdm_sb_free(&b);
            if (rc) return;
            j->files++;
        }
        acdm_report_free(j->reports[k]);   /* on the worker: many cells to free */
        j->reports[k] = NULL;
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
    if (j->d->closed && !j->d->mailing) free(j->d);
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
    const acdm_config *cfg = acdm_model_config(acdm_engine_model(e));
    const char *dir = cfg->reports.daily_export_dir;
    if (!dir || d->running || acdm_engine_stopping(e)) return;
    daily_job *j = calloc(1, sizeof *j);
    if (!j) return;
    yesterday(now, j->day);
    if (all_written(dir, j->day)) { free(j); return; }
    j->d = d;
    j->dir = strdup(dir);
    j->db = strdup(acdm_store_db_path(acdm_engine_store(e)));
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
    if (!ok || uv_queue_work(acdm_engine_loop(e), &j->work, job_run, job_done)) {
        acdm_log(ACDM_LOG_ERR, WHO, "daily export of %s could not start", j->day);
        job_free(j);
        return;
    }
    d->running = true;
}

/* ------------------------------------------------------------------ the mail */

#define MAIL_NS "reports"
#define MAIL_KEY "mail_last"   /* "weekly:2026-11-16": the period last mailed */

typedef struct {
    uv_work_t work;
    struct acdm_report_daily *d;
    char *db, *smtp_url, *from, *to, *username, *password;
    char period_id[48], subject[128], text[512], names[N_KINDS][96];
    acdm_report *reports[N_KINDS];
    acdm_report_format f;
    int rc;
    char err[600];
} mail_job;

static void mail_free(mail_job *j)
{
    for (int k = 0; k < N_KINDS; k++) acdm_report_free(j->reports[k]);
    free(j->db); free(j->smtp_url); free(j->from); free(j->to); free(j->username);
    if (j->password) { memset(j->password, 0, strlen(j->password)); free(j->password); }
    free(j);
}

static void mail_run(uv_work_t *w)
{
    mail_job *j = w->data;
    acdm_sbuf b[N_KINDS];
    acdm_mail_part parts[N_KINDS];
    memset(b, 0, sizeof b);
    j->rc = 0;
    for (int k = 0; k < N_KINDS && !j->rc; k++) {
        acdm_report_set_display(j->reports[k], "nl", true);   /* for people: as the page, Dutch Excel's CSV */
        j->rc = acdm_report_read(j->reports[k], j->db, acdm_now_ms(), j->err, sizeof j->err) < 0 ? ACDM_EIO
              : acdm_report_write(j->reports[k], j->f, &b[k], NULL, j->err, sizeof j->err);
        parts[k] = (acdm_mail_part){j->names[k], acdm_report_content_type(j->f), b[k].p ? b[k].p : "", b[k].n};
    }
    if (!j->rc) {
        acdm_mail_msg m = {.smtp_url = j->smtp_url, .from = j->from, .to = j->to, .username = j->username,
                           .password = j->password, .subject = j->subject, .text = j->text, .parts = parts,
                           .n_parts = N_KINDS};
        j->rc = acdm_report_mail_send(&m, j->err, sizeof j->err);
    }
    for (int k = 0; k < N_KINDS; k++) {
        acdm_sb_free(&b[k]);
        acdm_report_free(j->reports[k]);   /* on the worker: many cells to free */
        j->reports[k] = NULL;
    }
}

static void mail_done(uv_work_t *w, int status)
{
    mail_job *j = w->data;
    struct acdm_report_daily *d = j->d;
    d->mailing = false;
    if (status || j->rc) {
        acdm_log(ACDM_LOG_ERR, WHO, "report mail %s: %s (tried again after the next midnight or at start)",
                 j->period_id, j->err[0] ? j->err : "cancelled");
    } else {
        /* at shutdown the store is gone: the period is then mailed again at the next start */
        if (!d->closed && !acdm_engine_stopping(d->e) && acdm_engine_store(d->e))
            acdm_store_kv_set(acdm_engine_store(d->e), MAIL_NS, MAIL_KEY, j->period_id, strlen(j->period_id));
        acdm_log(ACDM_LOG_INFO, WHO, "report mail %s sent to %s", j->period_id, j->to);
    }
    mail_free(j);
    if (d->closed && !d->running) free(d);
}

/* The SMTP password from its file (first line), or NULL. */
static char *read_password(const char *path)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return NULL;
    char line[512] = "";
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    if (!ok) return NULL;
    line[strcspn(line, "\r\n")] = 0;
    char *p = strdup(line);
    memset(line, 0, sizeof line);
    return p;
}

/* Mails last week's or month's reports unless that period was mailed already. */
static void mail_if_due(struct acdm_report_daily *d, int64_t now)
{
    acdm_engine *e = d->e;
    const acdm_config *cfg = acdm_model_config(acdm_engine_model(e));
    const acdm_report_mail_def *md = &cfg->reports.mail;
    if (!md->enabled || d->mailing || acdm_engine_stopping(e)) return;
    bool monthly = md->schedule && !strcmp(md->schedule, "monthly");
    /* a day in the last complete period: 7 days ago, or the day before this month's first */
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    if (monthly) tm.tm_mday = 0; else tm.tm_mday -= 7;
    tm.tm_hour = 12;
    tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    t = mktime(&tm);
    localtime_r(&t, &tm);
    char day[16];
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    mail_job *j = calloc(1, sizeof *j);
    if (!j) return;
    snprintf(j->period_id, sizeof j->period_id, "%s:", monthly ? "monthly" : "weekly");
    acdm_report_range rg;
    char err[256];
    if (acdm_report_params("queues", day, NULL, monthly ? "month" : "week", "1d", now, &rg, err, sizeof err)) {
        free(j);
        return;
    }
    time_t f0 = (time_t)(rg.from_ms / 1000), f1 = (time_t)(rg.until_ms / 1000 - 1);
    struct tm a, z;
    localtime_r(&f0, &a);
    localtime_r(&f1, &z);
    size_t l = strlen(j->period_id);
    strftime(j->period_id + l, sizeof j->period_id - l, "%Y-%m-%d", &a);
    char *last = NULL;
    size_t len;
    if (!acdm_store_kv_get(acdm_engine_store(e), MAIL_NS, MAIL_KEY, &last, &len) && !strcmp(last, j->period_id)) {
        free(last);
        free(j);
        return;
    }
    free(last);
    char from_s[16], until_s[16], label[32];
    strftime(from_s, sizeof from_s, "%d-%m-%Y", &a);
    strftime(until_s, sizeof until_s, "%d-%m-%Y", &z);
    strftime(label, sizeof label, monthly ? "%Y-%m" : "week %G-W%V", &a);
    snprintf(j->subject, sizeof j->subject, "acdm rapportage %s", label);
    snprintf(j->text, sizeof j->text,
             "Bijgevoegd: de rapportages van acdm over %s (%s t/m %s, tijdzone %s), per dag: "
             "per wachtrij, per kanaal, per agent en per onderwerp.\r\n\r\n"
             "Attached: acdm's reports for %s (%s to %s inclusive), per day: per queue, channel, agent and topic.\r\n",
             label, from_s, until_s, cfg->timezone, label, from_s, until_s);
    int f = acdm_report_format_parse(md->format ? md->format : "xlsx");
    j->f = f < 0 ? ACDM_REPORT_XLSX : (acdm_report_format)f;
    static const char *const ext[] = {"json", "csv", "xlsx", "pdf"};
    bool ok = true;
    for (int k = 0; k < N_KINDS && ok; k++) {
        acdm_report_range rk = rg;
        rk.kind = (acdm_report_kind)k;
        ok = (j->reports[k] = acdm_report_new(&rk, cfg)) != NULL;
        snprintf(j->names[k], sizeof j->names[k], "acdm-%s-%s-%s.%s", acdm_report_kind_name(rk.kind),
                 j->period_id + strlen(monthly ? "monthly:" : "weekly:"), monthly ? "maand" : "week", ext[j->f & 3]);
    }
    j->d = d;
    j->db = strdup(acdm_store_db_path(acdm_engine_store(e)));
    j->smtp_url = strdup(md->smtp_url);
    j->from = strdup(md->from);
    j->to = strdup(md->to);
    j->username = md->username ? strdup(md->username) : NULL;
    j->password = read_password(md->password_file);
    if (md->password_file && !j->password)
        acdm_log(ACDM_LOG_WARN, WHO, "report mail: cannot read the password from %s; trying without", md->password_file);
    j->work.data = j;
    if (!ok || !j->db || !j->smtp_url || !j->from || !j->to || uv_queue_work(acdm_engine_loop(e), &j->work, mail_run, mail_done)) {
        acdm_log(ACDM_LOG_ERR, WHO, "report mail %s could not start", j->period_id);
        mail_free(j);
        return;
    }
    d->mailing = true;
}

static void on_timer(uv_timer_t *t)
{
    struct acdm_report_daily *d = t->data;
    int64_t now = acdm_now_ms();
    export_if_missing(d, now);
    mail_if_due(d, now);
    /* again daily_export_delay_min after the next local midnight (DST-safe: mktime) */
    time_t tt = (time_t)(now / 1000);
    struct tm tm;
    localtime_r(&tt, &tm);
    tm.tm_mday += 1;
    tm.tm_hour = tm.tm_sec = 0;
    tm.tm_min = acdm_model_config(acdm_engine_model(d->e))->reports.daily_export_delay_min;
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
    uv_timer_init(acdm_engine_loop(e), &d->timer);
    d->timer.data = d;
    acdm_engine_set_state(e, &acdm_report_daily_module, d);
    uv_timer_start(&d->timer, on_timer, 0, 0);   /* at start: yesterday's files if missing */
    return 0;
}

static void closed(uv_handle_t *h)
{
    struct acdm_report_daily *d = h->data;
    d->closed = true;
    if (!d->running && !d->mailing) free(d);
}

void acdm_report_daily_stop(acdm_engine *e)
{
    struct acdm_report_daily *d = acdm_engine_state(e, &acdm_report_daily_module);
    if (!d) return;
    uv_close((uv_handle_t *)&d->timer, closed);
    acdm_engine_set_state(e, &acdm_report_daily_module, NULL);
}

const acdm_engine_module acdm_report_daily_module = {
    .name = "report_daily", .start = acdm_report_daily_start, .stop = acdm_report_daily_stop,
};
