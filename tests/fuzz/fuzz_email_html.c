/* fuzz_email_html.c -- libFuzzer entry point: arbitrary bytes as a mail's HTML through the
 * email channel's sanitiser (gumbo + allowlist). The output must never carry a script, an
 * event handler, a javascript:/vbscript: URL or a remote image, and sanitising it again must
 * not find anything more to remove. */
#include "../../channels/email/html.c"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void lower(char *s) { for (; *s; s++) *s = (char)tolower((unsigned char)*s); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int remote = 0;
    char *text = NULL;
    char *out = html_sanitize((const char *)data, size, &remote, &text);
    if (!out) return 0;                       /* out of memory only */
    char *l = strdup(out);
    if (!l) abort();
    lower(l);
    /* the output escapes < and > in text and attribute values: every raw '<' starts a tag
     * the sanitiser emitted. Check each tag. */
    for (char *p = strchr(l, '<'); p; p = strchr(p + 1, '<')) {
        char *gt = strchr(p, '>');
        if (!gt) abort();                     /* an unterminated tag */
        char save = gt[1];
        gt[1] = 0;
        /* the tag without its quoted attribute values: names only */
        char names[4096];
        size_t k = 0;
        bool inq = false;
        for (const char *c = p; *c && k + 1 < sizeof names; c++) {
            if (*c == '"') { inq = !inq; continue; }
            if (!inq) names[k++] = *c;
        }
        names[k] = 0;
        if (strstr(names, "<script") || strstr(names, "<iframe") || strstr(names, "<object") ||
            strstr(names, "<svg") || strstr(names, "<style") || strstr(names, "<form") ||
            strstr(names, "<base") || strstr(names, "<meta") || strstr(names, " src="))
            abort();
        for (const char *q = names; (q = strstr(q, " on")); q++) {   /* no event handler */
            const char *e = q + 3;
            while (isalpha((unsigned char)*e)) e++;
            if (*e == '=') abort();
        }
        /* attribute values (outside other values): href only http(s)/mailto, style harmless */
        inq = false;
        for (const char *c = p; *c; c++) {
            if (*c == '"') { inq = !inq; continue; }
            if (inq) continue;
            if (!strncmp(c, " href=\"", 7)) {
                const char *v = c + 7;
                if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8) && strncmp(v, "mailto:", 7)) abort();
            }
            if (!strncmp(c, " style=\"", 8)) {
                const char *v = c + 8, *e = strchr(v, '"');
                if (!e) abort();
                char val[1024];
                size_t vl = (size_t)(e - v) < sizeof val - 1 ? (size_t)(e - v) : sizeof val - 1;
                memcpy(val, v, vl);
                val[vl] = 0;
                if (strstr(val, "url(") || strstr(val, "expression") || strstr(val, "javascript")) abort();
            }
        }
        gt[1] = save;
    }
    /* idempotent: a second pass removes nothing more */
    int r2 = 0;
    char *again = html_sanitize(out, strlen(out), &r2, NULL);
    if (again && r2 != 0) abort();
    free(again);
    free(l);
    free(out);
    free(text);
    return 0;
}
