/* fuzz_email_html.c -- libFuzzer entry point: arbitrary bytes as a mail's HTML through the
 * email channel's sanitiser (gumbo + allowlist). The output must never carry a script, an
 * event handler, a javascript:/vbscript: URL or a remote image, and sanitising it again must
 * not find anything more to remove. */
#include "../../channels/email/html.c"

#include <ctype.h>
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
    if (strstr(l, "<script") || strstr(l, "<iframe") || strstr(l, "<object") || strstr(l, "<svg") ||
        strstr(l, "<style") || strstr(l, "<form") || strstr(l, "src=") || strstr(l, "<base"))
        abort();
    /* an attribute named on... can only come from us: we emit none */
    for (const char *p = l; (p = strstr(p, " on")); p++) {
        const char *q = p + 3;
        while (isalpha((unsigned char)*q)) q++;
        if (*q == '=' && (p == l || !strchr("&;", p[-1]))) {
            /* inside a text node " onx=" is escaped text, never inside a tag: check the tag */
            const char *lt = p, *gt = p;
            while (lt > l && *lt != '<' && *lt != '>') lt--;
            while (*gt && *gt != '>' && *gt != '<') gt++;
            if (*lt == '<' && *gt == '>') abort();
        }
    }
    if (strstr(l, "href=\"javascript") || strstr(l, "href=\"vbscript") || strstr(l, "href=\"data")) abort();
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
