/* maint.c -- the store's upkeep beside routing (R80, R67).
 *
 * Backups: at "backup.every" (an interval after the newest backup in backup.dir, or a daily
 * local time) and on POST /api/v1/backup, a worker thread copies the database with SQLite's
 * online backup API (store.h: one read transaction over small steps, so acdmd's commits go on
 * and the copy is the database as of its start), verifies the copy with PRAGMA integrity_check
 * and only then gives it its name acdm-YYYYMMDDTHHMMSSZ.db; the oldest beyond backup.keep are
 * removed. The loop only starts the job and reads its result.
 *
 * Retention: at start, every 24 hours and after a reload that changed "retention", one run
 * prunes in slices (store.h acdm_store_prune: each slice a few hundred rows in a group commit
 * of the writer thread, retention.pause_ms between slices): the event log older than
 * events_months (never under 13, R67; the audit log stays), thread messages and channel
 * payloads of finished berichten older than bodies_days, their attachments older than
 * attachments_days. The bericht rows stay, so reports over the kept period do not change.
 * Each run ends with an audit entry (action "retention") saying what went and how much. */
#include "api/maint.h"
#include "api/api_super.h"
#include "base/log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WHO "maint"
#define RETRY_MS (15 * 60000LL)     /* a failed backup is tried again after this */
#define RECHECK_MS 60000            /* the backup timer looks at the clock at least this often */
#define RETENTION_EVERY_MS (24 * 3600 * 1000LL)
#define NAME_LEN 25                 /* "acdm-20261202T074500Z.db" */

const char *const acdm_maint_pruned_names[4] = {"events", "messages", "payloads", "attachments"};

typedef struct maint maint;

typedef struct {
    uv_work_t work;
    maint *m;
    char *src, *dir;
    char file[64], path[4200];
    int keep, pause_ms;
    int64_t started_ms;
    char trigger[16];
    acdm_backup_info info;
    int rc, removed;
    int cancel;                     /* set (atomically) at shutdown: the copy stops soon */
    char err[512];
} backup_job;

typedef struct {
    int64_t at_ms, snapshot_ms, bytes, duration_ms, copy_ms, verify_ms;
    bool ok;
    char file[64], error[512], dir[1024];
    char trigger[16];               /* "schedule" or "api" */
} backup_result;

struct maint {
    acdm_engine *e;
    uv_timer_t btimer, rtimer;
    int closed_handles;
    bool shut, released;
    /* backup */
    backup_job *job;                /* on the worker thread, or NULL */
    int64_t next_ms;                /* the next scheduled backup, 0: none */
    backup_result last;
    bool have_last;
    int64_t last_ok_ms, newest_ms;  /* newest: the newest backup in the folder (scheduling) */
    uint64_t n_ok, n_failed;
    /* retention */
    bool r_running, r_slice_out;    /* a run is in progress; a slice is with the writer */
    acdm_retention_def r_def;       /* the settings the last run began with */
    bool r_have_def;
    int r_phase;                    /* 0..3: acdm_prune_what being pruned */
    int64_t r_cursor, r_cutoff[4], r_count[4], r_started_ms;
    int64_t r_last_start_ms, r_last_end_ms, r_last_count[4], r_last_cutoff[4];
    char r_last_error[256];
    uint64_t r_runs, r_total[4];
};

static maint *M(acdm_engine *e) { return acdm_engine_state(e, &acdm_maint_module); }
static const acdm_config *cfg_of(maint *m) { return acdm_model_config(acdm_engine_model(m->e)); }

/* ------------------------------------------------------------------ backups: the worker */

static bool backup_name(const char *n)
{
    return strlen(n) == NAME_LEN - 1 && !strncmp(n, "acdm-", 5) && !strcmp(n + NAME_LEN - 5, "Z.db") &&
           n[13] == 'T';
}

static int cmp_desc(const void *a, const void *b) { return strcmp(*(char *const *)b, *(char *const *)a); }

/* The backups in dir, newest first (malloc'd names; *n set). Leftover .partial files of an
 * interrupted backup are removed when clean is set. */
static char **list_backups(const char *dir, size_t *n, bool clean)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **v = NULL;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (clean && len == NAME_LEN - 1 + 8 && !strcmp(de->d_name + NAME_LEN - 1, ".partial")) {
            char p[1400];
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
            continue;
        }
        if (!backup_name(de->d_name)) continue;
        if (*n == cap) {
            char **g = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *v);
            if (!g) break;
            v = g;
        }
        if (!(v[*n] = strdup(de->d_name))) break;
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(v, *n, sizeof *v, cmp_desc);
    return v;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static int mkdirs(const char *dir)
{
    char p[1200];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0750) != 0 && errno != EEXIST) return -1;
            *s = '/';
        }
    return mkdir(p, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

static void backup_copy(backup_job *j)
{
    if (mkdirs(j->dir) != 0) {
        snprintf(j->err, sizeof j->err, "cannot create the backup folder %.400s: %s", j->dir, strerror(errno));
        j->rc = ACDM_EIO;
        return;
    }
    size_t n;
    char **old = list_backups(j->dir, &n, true);   /* removes leftover .partial files */
    free_names(old, n);
    acdm_backup_opts o = {.pause_ms = j->pause_ms, .cancel = &j->cancel};
    j->rc = acdm_store_backup(j->src, j->path, &o, &j->info, j->err, sizeof j->err);
    if (j->rc) return;
    /* verified: now the oldest beyond keep may go */
    char **v = list_backups(j->dir, &n, false);
    for (size_t i = (size_t)j->keep; i < n; i++) {
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", j->dir, v[i]);
        if (unlink(p) == 0) j->removed++;
    }
    free_names(v, n);
}

/* The backup's own thread, at the lowest CPU (nice 19) and I/O (idle class) priority: the copy
 * and its integrity check use what routing leaves over, never the other way round. */
static void *backup_thread(void *arg)
{
    backup_job *j = arg;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (setpriority(PRIO_PROCESS, (id_t)tid, 19) != 0)
        acdm_log(ACDM_LOG_DEBUG, WHO, "backup thread: nice 19: %s", strerror(errno));
    /* ioprio_set(IOPRIO_WHO_PROCESS, tid, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0)) */
    syscall(SYS_ioprio_set, 1, (int)tid, 3 << 13);
    backup_copy(j);
    return NULL;
}

static void backup_run(uv_work_t *w)
{
    backup_job *j = w->data;
    pthread_t t;
    if (pthread_create(&t, NULL, backup_thread, j) != 0) {
        backup_copy(j);       /* no thread to spare: here, at normal priority */
        return;
    }
    pthread_join(t, NULL);
}

static void backup_schedule(maint *m);

static void backup_done(uv_work_t *w, int status)
{
    backup_job *j = w->data;
    maint *m = j->m;
    m->job = NULL;
    backup_result *r = &m->last;
    memset(r, 0, sizeof *r);
    r->at_ms = j->started_ms;
    r->snapshot_ms = j->info.snapshot_ms;
    r->ok = status == 0 && j->rc == 0;
    r->bytes = j->info.bytes;
    r->duration_ms = acdm_now_ms() - j->started_ms;
    r->verify_ms = j->info.verify_ms;
    r->copy_ms = j->info.copy_ms;
    snprintf(r->file, sizeof r->file, "%s", j->file);
    snprintf(r->dir, sizeof r->dir, "%s", j->dir);
    snprintf(r->trigger, sizeof r->trigger, "%s", j->trigger);
    m->have_last = true;
    if (r->ok) {
        m->n_ok++;
        m->last_ok_ms = j->started_ms;
        m->newest_ms = j->started_ms;
        acdm_log(ACDM_LOG_NOTICE, WHO, "backup %s/%s written and verified: %lld bytes in %lld ms "
                 "(check %lld ms); %d older removed (keep %d)", j->dir, j->file, (long long)r->bytes,
                 (long long)r->duration_ms, (long long)r->verify_ms, j->removed, j->keep);
    } else {
        m->n_failed++;
        snprintf(r->error, sizeof r->error, "%s", status ? "the backup job was cancelled" : j->err);
        acdm_log(ACDM_LOG_ERR, WHO, "backup to %s failed: %s", j->dir, r->error);
    }
    free(j->src);
    free(j->dir);
    free(j);
    if (m->released) { free(m); return; }
    if (!m->shut) backup_schedule(m);
}

/* Starts a backup now. 0, ACDM_EEXIST when one runs, ACDM_ENOENT without "backup". */
static int backup_start(maint *m, const char *trigger, char *file_out, size_t filelen)
{
    const acdm_config *cfg = cfg_of(m);
    if (!cfg->backup.enabled || !cfg->backup.dir) return ACDM_ENOENT;
    if (m->job) return ACDM_EEXIST;
    acdm_store *st = acdm_engine_store(m->e);
    if (!st || acdm_engine_stopping(m->e)) return ACDM_ESTATE;
    backup_job *j = calloc(1, sizeof *j);
    if (!j) return ACDM_ENOMEM;
    j->m = m;
    j->src = strdup(acdm_store_db_path(st));
    j->dir = strdup(cfg->backup.dir);
    j->keep = cfg->backup.keep;
    j->pause_ms = cfg->backup.pause_ms;
    j->started_ms = acdm_now_ms();
    snprintf(j->trigger, sizeof j->trigger, "%s", trigger);
    time_t t = (time_t)(j->started_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(j->file, sizeof j->file, "acdm-%Y%m%dT%H%M%SZ.db", &tm);
    snprintf(j->path, sizeof j->path, "%s/%s", j->dir ? j->dir : "", j->file);
    j->work.data = j;
    if (!j->src || !j->dir || uv_queue_work(acdm_engine_loop(m->e), &j->work, backup_run, backup_done)) {
        free(j->src);
        free(j->dir);
        free(j);
        return ACDM_ENOMEM;
    }
    m->job = j;
    if (file_out) snprintf(file_out, filelen, "%s", j->file);
    acdm_log(ACDM_LOG_INFO, WHO, "backup to %s/%s started (%s)", j->dir, j->file, trigger);
    return 0;
}

/* ------------------------------------------------------------------ backups: the schedule */

/* The first local HH:MM (at_min) strictly after after_ms. */
static int64_t next_time_of_day(int64_t after_ms, int at_min)
{
    time_t t = (time_t)(after_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_hour = at_min / 60;
    tm.tm_min = at_min % 60;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    int64_t c = (int64_t)mktime(&tm) * 1000;
    for (int i = 0; c <= after_ms && i < 3; i++) {
        tm.tm_mday++;
        tm.tm_hour = at_min / 60;
        tm.tm_min = at_min % 60;
        tm.tm_isdst = -1;
        c = (int64_t)mktime(&tm) * 1000;
    }
    return c;
}

/* The newest backup in dir by its name (UTC time), 0 when none. */
static int64_t newest_in(const char *dir)
{
    size_t n;
    char **v = list_backups(dir, &n, false);
    int64_t ms = 0;
    if (n) {
        struct tm tm = {0};
        if (strptime(v[0] + 5, "%Y%m%dT%H%M%SZ", &tm)) ms = (int64_t)timegm(&tm) * 1000;
    }
    free_names(v, n);
    return ms;
}

static void btimer_fire(uv_timer_t *t);

static void backup_schedule(maint *m)
{
    const acdm_backup_def *b = &cfg_of(m)->backup;
    uv_timer_stop(&m->btimer);
    m->next_ms = 0;
    if (!b->enabled || m->shut) return;
    int64_t now = acdm_now_ms();
    /* no backup yet: the first one now; else an interval after the newest, or the next
     * daily time after it (one missed while acdmd was down is taken at once) */
    if (!m->newest_ms) m->next_ms = now;
    else if (b->at_min >= 0) m->next_ms = next_time_of_day(m->newest_ms, b->at_min);
    else m->next_ms = m->newest_ms + (int64_t)b->every_s * 1000;
    /* after a failure: again in RETRY_MS (or the interval, when shorter), not at once */
    if (m->have_last && !m->last.ok) {
        int64_t retry = b->every_s > 0 && (int64_t)b->every_s * 1000 < RETRY_MS ? (int64_t)b->every_s * 1000 : RETRY_MS;
        if (m->next_ms < m->last.at_ms + retry) m->next_ms = m->last.at_ms + retry;
    }
    if (m->job) return;             /* rescheduled when it ends */
    int64_t wait = m->next_ms - now;
    if (wait < 0) wait = 0;
    if (wait > RECHECK_MS) wait = RECHECK_MS;
    uv_timer_start(&m->btimer, btimer_fire, (uint64_t)wait, 0);
}

static void btimer_fire(uv_timer_t *t)
{
    maint *m = t->data;
    if (m->shut) return;
    if (m->next_ms && acdm_now_ms() >= m->next_ms && !m->job) {
        if (backup_start(m, "schedule", NULL, 0) == 0) return;   /* its end reschedules */
    }
    backup_schedule(m);
}

/* ------------------------------------------------------------------ retention */

static void retention_arm(maint *m, int64_t ms);

/* Local midnight months back from now. */
static int64_t months_back(int64_t now, int months)
{
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_mon -= months;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * 1000;
}

static void retention_end(maint *m, const char *error)
{
    m->r_running = false;
    m->r_last_start_ms = m->r_started_ms;
    m->r_last_end_ms = acdm_now_ms();
    memcpy(m->r_last_count, m->r_count, sizeof m->r_count);
    memcpy(m->r_last_cutoff, m->r_cutoff, sizeof m->r_cutoff);
    snprintf(m->r_last_error, sizeof m->r_last_error, "%s", error ? error : "");
    m->r_runs++;
    json_t *x = json_object(), *pr = json_object(), *cut = json_object();
    for (int i = 0; i < 4; i++) {
        json_object_set_new(pr, acdm_maint_pruned_names[i], json_integer(m->r_count[i]));
        json_object_set_new(cut, acdm_maint_pruned_names[i],
                            m->r_cutoff[i] ? json_integer(m->r_cutoff[i]) : json_null());
    }
    json_object_set_new(x, "pruned", pr);
    json_object_set_new(x, "before_ms", cut);
    json_object_set_new(x, "duration_ms", json_integer(m->r_last_end_ms - m->r_started_ms));
    if (error) json_object_set_new(x, "error", json_string(error));
    acdm_engine_audit(m->e, NULL, "retention", NULL, x);
    json_decref(x);
    acdm_log(error ? ACDM_LOG_ERR : ACDM_LOG_NOTICE, WHO,
             "retention run %s: %lld events, %lld messages, %lld payloads, %lld attachments pruned in %lld ms%s%s",
             error ? "stopped" : "done", (long long)m->r_count[0], (long long)m->r_count[1],
             (long long)m->r_count[2], (long long)m->r_count[3],
             (long long)(m->r_last_end_ms - m->r_started_ms), error ? ": " : "", error ? error : "");
    retention_arm(m, RETENTION_EVERY_MS);   /* the next run */
}

static void rtimer_fire(uv_timer_t *t);

static void retention_arm(maint *m, int64_t ms)
{
    if (m->shut) return;
    uv_timer_stop(&m->rtimer);
    uv_timer_start(&m->rtimer, rtimer_fire, (uint64_t)(ms < 0 ? 0 : ms), 0);
}

static void slice_done(void *user, int status, int64_t changed, int64_t next)
{
    maint *m = user;
    m->r_slice_out = false;
    if (m->released) { free(m); return; }
    if (!m->r_running) return;
    if (status) {
        retention_end(m, "a slice could not be committed (see the store in GET /api/v1/health)");
        return;
    }
    m->r_count[m->r_phase] += changed;
    m->r_total[m->r_phase] += (uint64_t)changed;
    if (next) m->r_cursor = next;
    else {
        m->r_phase++;
        m->r_cursor = 0;
    }
    if (m->shut) { m->r_running = false; return; }
    retention_arm(m, cfg_of(m)->retention.pause_ms);
}

static void retention_slice(maint *m)
{
    while (m->r_phase < 4 && !m->r_cutoff[m->r_phase]) m->r_phase++;
    if (m->r_phase >= 4) {
        retention_end(m, NULL);
        return;
    }
    acdm_store *st = acdm_engine_store(m->e);
    int limit = m->r_def.slice_rows > 0 ? m->r_def.slice_rows : 500;
    if (!st || acdm_store_prune(st, (acdm_prune_what)m->r_phase, m->r_cutoff[m->r_phase], m->r_cursor,
                                limit, slice_done, m)) {
        retention_end(m, "the store refused the slice");
        return;
    }
    m->r_slice_out = true;
}

static void retention_begin(maint *m)
{
    const acdm_retention_def *r = &cfg_of(m)->retention;
    m->r_def = *r;
    m->r_have_def = true;
    if (!r->enabled || m->r_running) return;
    int64_t now = acdm_now_ms();
    memset(m->r_count, 0, sizeof m->r_count);
    memset(m->r_cutoff, 0, sizeof m->r_cutoff);
    if (r->events_months >= 13) m->r_cutoff[ACDM_PRUNE_EVENTS] = months_back(now, r->events_months);
    if (r->bodies_days > 0)
        m->r_cutoff[ACDM_PRUNE_MESSAGES] = m->r_cutoff[ACDM_PRUNE_PAYLOADS] = now - (int64_t)r->bodies_days * 86400000;
    if (r->attachments_days > 0)
        m->r_cutoff[ACDM_PRUNE_ATTACHMENTS] = now - (int64_t)r->attachments_days * 86400000;
    m->r_running = true;
    m->r_phase = 0;
    m->r_cursor = 0;
    m->r_started_ms = now;
    acdm_log(ACDM_LOG_INFO, WHO, "retention run started");
    retention_slice(m);
}

static void rtimer_fire(uv_timer_t *t)
{
    maint *m = t->data;
    if (m->shut || m->r_slice_out) return;
    if (m->r_running) retention_slice(m);
    else retention_begin(m);
}

/* ------------------------------------------------------------------ what it shows */

void acdm_maint_figures_get(acdm_engine *e, acdm_maint_figures *f)
{
    memset(f, 0, sizeof *f);
    f->last_ok = -1;
    maint *m = M(e);
    if (!m) return;
    const acdm_config *cfg = cfg_of(m);
    f->backup_enabled = cfg->backup.enabled;
    f->backup_running = m->job != NULL;
    f->backups_ok = m->n_ok;
    f->backups_failed = m->n_failed;
    if (m->have_last) {
        f->last_ok = m->last.ok;
        f->last_ms = m->last.at_ms;
        f->last_bytes = m->last.bytes;
        f->last_duration_ms = m->last.duration_ms;
    }
    f->last_ok_ms = m->last_ok_ms;
    f->retention_enabled = cfg->retention.enabled;
    f->retention_running = m->r_running;
    for (int i = 0; i < 4; i++) f->pruned[i] = m->r_total[i];
    f->retention_runs = m->r_runs;
    f->retention_last_ms = m->r_last_end_ms;
}

json_t *acdm_maint_health_json(acdm_engine *e, const char **failing)
{
    static char why[700];
    *failing = NULL;
    maint *m = M(e);
    json_t *o = json_object();
    if (!m) return o;
    const acdm_config *cfg = cfg_of(m);
    json_t *b = json_object();
    json_object_set_new(b, "enabled", json_boolean(cfg->backup.enabled));
    if (cfg->backup.enabled) {
        json_object_set_new(b, "dir", json_string(cfg->backup.dir));
        json_object_set_new(b, "every", json_string(cfg->backup.every));
        json_object_set_new(b, "keep", json_integer(cfg->backup.keep));
        json_object_set_new(b, "next_ms", m->next_ms ? json_integer(m->next_ms) : json_null());
    }
    json_object_set_new(b, "running", json_boolean(m->job != NULL));
    json_object_set_new(b, "ok_total", json_integer((json_int_t)m->n_ok));
    json_object_set_new(b, "failed_total", json_integer((json_int_t)m->n_failed));
    json_object_set_new(b, "last_ok_ms", m->last_ok_ms ? json_integer(m->last_ok_ms) : json_null());
    if (m->have_last) {
        const backup_result *r = &m->last;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", r->dir, r->file);
        json_t *l = json_pack("{s:I, s:s, s:b, s:I, s:I}", "at_ms", (json_int_t)r->at_ms,
                              "file", path, "ok", r->ok, "bytes", (json_int_t)r->bytes,
                              "duration_ms", (json_int_t)r->duration_ms);
        json_object_set_new(l, "snapshot_ms", r->snapshot_ms ? json_integer(r->snapshot_ms) : json_null());
        json_object_set_new(l, "verified", json_boolean(r->ok));
        json_object_set_new(l, "copy_ms", json_integer(r->copy_ms));
        json_object_set_new(l, "verify_ms", json_integer(r->verify_ms));
        json_object_set_new(l, "trigger", json_string(r->trigger));
        json_object_set_new(l, "error", r->ok ? json_null() : json_string(r->error));
        json_object_set_new(b, "last", l);
        if (!r->ok) {
            snprintf(why, sizeof why, "backup: the last backup failed: %.600s", r->error);
            *failing = why;
        }
    } else {
        json_object_set_new(b, "last", json_null());
    }
    json_object_set_new(o, "backup", b);

    const acdm_retention_def *rd = &cfg->retention;
    json_t *r = json_pack("{s:b, s:b}", "enabled", rd->enabled, "running", m->r_running);
    if (rd->enabled) {
        json_object_set_new(r, "events_months", json_integer(rd->events_months));
        json_object_set_new(r, "bodies_days", json_integer(rd->bodies_days));
        json_object_set_new(r, "attachments_days", json_integer(rd->attachments_days));
    }
    if (m->r_runs) {
        json_t *pr = json_object();
        for (int i = 0; i < 4; i++)
            json_object_set_new(pr, acdm_maint_pruned_names[i], json_integer(m->r_last_count[i]));
        json_t *l = json_pack("{s:I, s:I, s:o}", "started_ms", (json_int_t)m->r_last_start_ms,
                              "finished_ms", (json_int_t)m->r_last_end_ms, "pruned", pr);
        json_object_set_new(l, "error", m->r_last_error[0] ? json_string(m->r_last_error) : json_null());
        json_object_set_new(r, "last_run", l);
    } else {
        json_object_set_new(r, "last_run", json_null());
    }
    json_object_set_new(o, "retention", r);
    return o;
}

/* ------------------------------------------------------------------ POST /api/v1/backup */

static void post_backup(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin", &who)) return;
    maint *m = M(e);
    char file[64] = "";
    int rc = m ? backup_start(m, "api", file, sizeof file) : ACDM_ESTATE;
    if (rc == ACDM_ENOENT) {
        acdm_http_problem(r, 409, "No backup folder", "no backups are configured: set \"backup\": "
                          "{\"dir\": ...} in the config (docs/operations.md, \"Backup and restore\"), "
                          "or use acdmctl backup FILE");
        return;
    }
    if (rc == ACDM_EEXIST) {
        acdm_http_problem(r, 409, "Backup running", "a backup is being taken now; its result shows in "
                          "GET /api/v1/health (backup.last) when it ends");
        return;
    }
    if (rc) {
        acdm_http_problem(r, 503, "Backup not started", "the backup could not be started (%s)",
                          rc == ACDM_ESTATE ? "acdmd is stopping" : "out of memory");
        return;
    }
    acdm_engine_audit(e, &who, "backup", file, NULL);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", cfg_of(m)->backup.dir, file);
    acdm_http_reply_json(r, 202, json_pack("{s:s, s:s, s:I}", "status", "started", "file", path,
                                           "started_ms", (json_int_t)m->job->started_ms));
}

/* ------------------------------------------------------------------ the module */

static int maint_start(acdm_engine *e)
{
    maint *m = calloc(1, sizeof *m);
    if (!m) return ACDM_ENOMEM;
    m->e = e;
    uv_timer_init(acdm_engine_loop(e), &m->btimer);
    uv_timer_init(acdm_engine_loop(e), &m->rtimer);
    m->btimer.data = m->rtimer.data = m;
    acdm_engine_set_state(e, &acdm_maint_module, m);
    const acdm_config *cfg = cfg_of(m);
    if (cfg->backup.enabled) m->newest_ms = newest_in(cfg->backup.dir);
    backup_schedule(m);
    if (cfg->retention.enabled) retention_arm(m, 0);
    acdm_http *h = acdm_engine_http(e);
    int rc = acdm_http_route(h, "POST", "/api/v1/backup", post_backup, e);
    return rc < 0 ? rc : 0;
}

static bool retention_changed(const acdm_retention_def *a, const acdm_retention_def *b)
{
    return a->enabled != b->enabled || a->events_months != b->events_months ||
           a->bodies_days != b->bodies_days || a->attachments_days != b->attachments_days;
}

static void maint_reloaded(acdm_engine *e)
{
    maint *m = M(e);
    if (!m || m->shut) return;
    const acdm_config *cfg = cfg_of(m);
    /* the folder may be another now: schedule from the newest backup there */
    if (cfg->backup.enabled) m->newest_ms = newest_in(cfg->backup.dir);
    backup_schedule(m);
    const acdm_retention_def *r = &cfg->retention;
    if (!r->enabled) uv_timer_stop(&m->rtimer);
    else if (!m->r_running && (!m->r_have_def || retention_changed(r, &m->r_def))) retention_arm(m, 0);
    else if (!m->r_running && !uv_is_active((uv_handle_t *)&m->rtimer)) retention_arm(m, RETENTION_EVERY_MS);
}

static void maint_shutdown(acdm_engine *e)
{
    maint *m = M(e);
    if (!m) return;
    m->shut = true;
    /* a backup in progress stops at its next step: a stop does not wait for a whole copy */
    if (m->job) __atomic_store_n(&m->job->cancel, 1, __ATOMIC_RELAXED);
    uv_close((uv_handle_t *)&m->btimer, NULL);
    uv_close((uv_handle_t *)&m->rtimer, NULL);
}

static void maint_release(acdm_engine *e)
{
    maint *m = M(e);
    if (!m) return;
    acdm_engine_set_state(e, &acdm_maint_module, NULL);
    /* a backup still on a worker thread, or a slice with the writer: its end frees m */
    if (m->job || m->r_slice_out) { m->released = true; return; }
    free(m);
}

const acdm_engine_module acdm_maint_module = {
    .name = "maint", .start = maint_start, .reloaded = maint_reloaded,
    .shutdown = maint_shutdown, .release = maint_release,
};
