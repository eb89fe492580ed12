/* report_daily.h -- the daily export of yesterday's reports for BI tools (R29); see report_daily.c. */
#ifndef ACDM_REPORT_DAILY_H
#define ACDM_REPORT_DAILY_H

#include "engine/engine.h"

/* The module cmd/main.c hands the engine: acdm_report_daily_start at start, _stop once HTTP
 * is closed. */
extern const acdm_engine_module acdm_report_daily_module;

/* Arms the daily timer of e (a first run at once: yesterday's files when missing). Does
 * nothing while the config has no reports.daily_export_dir. 0 or ACDM_ENOMEM. */
int acdm_report_daily_start(acdm_engine *e);
/* Closes the timer; an export in progress finishes on its worker thread. */
void acdm_report_daily_stop(acdm_engine *e);

#endif
