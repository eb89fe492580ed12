/* fuzz_time.c -- libFuzzer entry point: the since/until arguments of the event export and the
 * audit log (acdm_time_parse, acdm_time_range). The input is "since\nuntil" (no newline: since
 * only). */
#include "store/export.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *until = strchr(text, '\n');
    if (until) *until++ = '\0';
    int64_t ms, s, u, now = 1793491200000LL;
    if (acdm_time_parse(text, &ms) == 0) {
        char iso[48];
        acdm_time_iso(ms, iso);
        if (strlen(iso) < 24) abort();
    }
    char err[256] = "";
    for (int64_t span = 0; span <= 7LL * 86400000; span += 7LL * 86400000) {
        int rc = acdm_time_range(*text ? text : NULL, until, now, span, &s, &u, err, sizeof err);
        /* the contract: a valid range of at most 31 days, or a sentence naming the parameter */
        if (rc == 0 && (u <= s || u - s > ACDM_EXPORT_MAX_RANGE_MS)) abort();
        if (rc != 0 && strncmp(err, "since: ", 7) && strncmp(err, "until: ", 7)) abort();
    }
    free(text);
    return 0;
}
