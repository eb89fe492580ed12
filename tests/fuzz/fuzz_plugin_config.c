/* fuzz_plugin_config.c -- libFuzzer entry point: arbitrary bytes as a channel instance's config
 * through <acdm/plugin_util.h>'s config-spec reader (acdm_cfg_parse) with a spec of every type,
 * and the handoff document builder fed the parsed strings. Invariants: a refusal is one sentence
 * that fits; an accepted config leaves every field NUL-terminated inside its array, lists ended,
 * integers in range, the raw JSON value a JSON value jansson reads (numbers aside), and the
 * handoff document built from the strings is JSON that jansson reads back. */
#include <acdm/plugin_util.h>

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    char s[16];
    char url[64];
    int n;
    long long big;
    bool b;
    int bi;
    char list[48];
    char raw[128];
} fz;

static const acdm_cfg_spec spec[] = {
    ACDM_CFG_STR(fz, "s", s, "\"dflt\"", .min = 1),
    ACDM_CFG_STR(fz, "url", url, NULL, .check = acdm_cfg_check_url),
    ACDM_CFG_INT(fz, "n", n, "5", .min = -100, .max = 100),
    ACDM_CFG_INT(fz, "big", big, NULL),
    ACDM_CFG_BOOL(fz, "b", b, "true"),
    ACDM_CFG_BOOL(fz, "bi", bi, NULL, .required = 0),
    ACDM_CFG_STRLIST(fz, "list", list, "[]", .max = 5),
    ACDM_CFG_JSON(fz, "raw", raw, NULL),
    ACDM_CFG_END
};

static void nul_inside(const char *f, size_t n)
{
    if (!memchr(f, 0, n)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    fz c;
    char err[200];
    memset(err, 'x', sizeof err);
    int rc = acdm_cfg_parse(spec, text, &c, err, sizeof err);
    if (rc < 0) {
        if (!memchr(err, 0, sizeof err) || !err[0]) abort();   /* a sentence, terminated */
        free(text);
        return 0;
    }
    nul_inside(c.s, sizeof c.s);
    nul_inside(c.url, sizeof c.url);
    nul_inside(c.raw, sizeof c.raw);
    if (!c.s[0]) abort();                                        /* min 1 */
    if (c.n < -100 || c.n > 100) abort();
    if (c.bi != 0 && c.bi != 1) abort();
    size_t used = 0, entries = 0;                                /* the list ends inside */
    for (const char *e = c.list; *e; e = acdm_cfg_list_next(e)) {
        size_t l = strnlen(e, sizeof c.list - used);
        if (used + l + 1 >= sizeof c.list) abort();
        used += l + 1;
        entries++;
    }
    if (entries > 5) abort();
    if (c.raw[0]) {
        json_error_t je;
        json_t *j = json_loads(c.raw, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        /* jansson refuses integers past 64 bits and deep nesting that we skip: only a syntax
         * error it reports for a value we took is a bug */
        if (!j && !strstr(je.text, "too big") && !strstr(je.text, "nesting") &&
            !strstr(je.text, "real number")) abort();
        json_decref(j);
    }
    acdm_handoff_doc d;
    acdm_handoff_begin(&d, c.s, c.url[0] ? c.url : NULL);
    acdm_handoff_customer(&d, c.s, c.list[0] ? c.list : NULL, NULL, c.raw);
    acdm_handoff_summary(&d, c.raw, c.s);
    for (const char *e = c.list; *e; e = acdm_cfg_list_next(e))
        acdm_handoff_line(&d, e, NULL, c.raw, c.b ? e : NULL, c.big);
    char *lines = NULL, *doc = acdm_handoff_end(&d, &lines);
    if (!doc || !lines) abort();
    json_t *j = json_loads(doc, 0, NULL);
    if (!j || json_array_size(json_object_get(j, "transcript")) != entries) abort();
    json_decref(j);
    free(doc);
    free(lines);
    free(text);
    return 0;
}
