/* maint.h -- the store's upkeep beside routing: scheduled online backups (config "backup",
 * POST /api/v1/backup) and retention (config "retention"), both off the loop; their state in
 * GET /api/v1/health and GET /metrics. The module cmd/main.c hands the engine. */
#ifndef ACDM_MAINT_H
#define ACDM_MAINT_H

#include "api/api.h"

extern const acdm_engine_module acdm_maint_module;

/* What GET /metrics shows of it (zeros while nothing is configured). */
typedef struct {
    bool backup_enabled, backup_running;
    uint64_t backups_ok, backups_failed;   /* since start */
    int last_ok;                           /* the last backup: 1 verified, 0 failed, -1 none yet */
    int64_t last_ms, last_ok_ms;           /* when the last (verified) backup was taken, or 0 */
    int64_t last_bytes, last_duration_ms;
    bool retention_enabled, retention_running;
    uint64_t pruned[4];                    /* rows since start: events, messages, payloads, attachments */
    uint64_t retention_runs;
    int64_t retention_last_ms;             /* the last run's end, or 0 */
} acdm_maint_figures;
extern const char *const acdm_maint_pruned_names[4];
void acdm_maint_figures_get(acdm_engine *e, acdm_maint_figures *f);

/* {"backup": {...}, "retention": {...}} for GET /api/v1/health (a new object). *failing is set
 * to a sentence when the last backup failed (health then says degraded), else NULL. */
json_t *acdm_maint_health_json(acdm_engine *e, const char **failing);

#endif
