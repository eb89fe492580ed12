/* metrics.h -- GET /metrics (Prometheus text format 0.0.4; role admin or metrics): the module
 * cmd/main.c hands the engine. It counts model events since start and reads the rest when
 * scraped; docs/operations.md "Metrics" lists the series. */
#ifndef ACDM_METRICS_H
#define ACDM_METRICS_H

#include "api/api.h"

extern const acdm_engine_module acdm_metrics_module;

#endif
