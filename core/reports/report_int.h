/* report_int.h -- private to core/reports/: what report.c asks of report_pdf.c (which reads the
 * report through report.h's public accessors only, so the pair has no cycle). */
#ifndef ACDM_REPORT_INT_H
#define ACDM_REPORT_INT_H

#include "reports/report.h"

/* The ended report r as PDF into out (report_pdf.c); 0 or a negative code with err. */
int acdm_report_pdf(acdm_report *r, acdm_sbuf *out, char *err, size_t errlen);

#endif
