/* jcfg.c -- the channels' shared JSON config readers (see jcfg.h). */
#include "jcfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int jcfg_str(json_t *o, const char *key, bool required, const char *def, char **out, char *err, size_t el)
{
    json_t *v = json_object_get(o, key);
    const char *s;
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required) { snprintf(err, el, "%s is required", key); return -1; }
        if (!def) return 0;
        s = def;
    } else if (!json_is_string(v) || !json_string_length(v)) {
        snprintf(err, el, "%s must be a non-empty string", key);
        return -1;
    } else {
        s = json_string_value(v);
    }
    *out = strdup(s);
    if (!*out) { snprintf(err, el, "out of memory"); return -1; }
    return 0;
}

int jcfg_int(json_t *o, const char *key, int def, int lo, int hi, int *out, char *err, size_t el)
{
    json_t *v = json_object_get(o, key);
    *out = def;
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(err, el, "%s must be an integer from %d to %d", key, lo, hi);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

/* The first line of the file, trailing blanks cut; the buffer is wiped after the copy. */
static char *read_secret(const char *key, const char *path, char *err, size_t el)
{
    FILE *f = fopen(path, "r");
    if (!f) { snprintf(err, el, "%s: cannot read %s", key, path); return NULL; }
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *nl = strpbrk(buf, "\r\n");
    if (nl) *nl = '\0';
    n = strlen(buf);
    while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\t')) buf[--n] = '\0';
    if (!n) { snprintf(err, el, "%s: %s is empty", key, path); return NULL; }
    char *s = strdup(buf);
    memset(buf, 0, sizeof buf);
    if (!s) snprintf(err, el, "out of memory");
    return s;
}

int jcfg_secret(json_t *o, const char *key, bool required, char **out, char *err, size_t el)
{
    char *path = NULL;
    *out = NULL;
    if (jcfg_str(o, key, required, NULL, &path, err, el) < 0) return -1;
    if (!path) return 0;
    *out = read_secret(key, path, err, el);
    free(path);
    return *out ? 0 : -1;
}
