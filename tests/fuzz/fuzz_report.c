/* fuzz_report.c -- libFuzzer entry point: the query parameters of GET /api/v1/reports
 * (acdm_report_params) and a report over them. The input is up to five lines: kind, from,
 * until, period, interval (an empty line: the parameter is absent). */
#include "reports/report.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int tz;
    if (!tz++) { setenv("TZ", "Europe/Amsterdam", 1); }
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *f[5] = {0};
    char *p = text;
    for (int i = 0; i < 5 && p; i++) {
        char *nl = strchr(p, '\n');
        if (nl) *nl++ = '\0';
        f[i] = *p ? p : NULL;
        p = nl;
    }
    acdm_report_range rg;
    char err[256] = "";
    int64_t now = 1793491200000LL;
    int rc = acdm_report_params(f[0], f[1], f[2], f[3], f[4], now, &rg, err, sizeof err);
    /* the contract: a range within the limits, or a sentence naming the parameter */
    if (rc == 0) {
        if (rg.until_ms <= rg.from_ms || rg.until_ms - rg.from_ms > ACDM_REPORT_MAX_RANGE_MS + 86400000LL * 2) abort();
        acdm_report *r = acdm_report_new(&rg, NULL);
        if (!r) abort();
        acdm_report_end(r, now);
        if (rg.kind <= ACDM_REPORT_CHANNELS && acdm_report_n_rows(r, false) != 0) abort();   /* no config: no keys */
        acdm_report_free(r);
    } else {
        static const char *const names[] = {"kind: ", "from: ", "until: ", "period: ", "interval: "};
        int ok = 0;
        for (int i = 0; i < 5; i++) ok |= !strncmp(err, names[i], strlen(names[i]));
        if (!ok) abort();
    }
    free(text);
    return 0;
}
