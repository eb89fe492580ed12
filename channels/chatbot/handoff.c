/* handoff.c -- parsing and validating the chatbot handoff document (see handoff.h). */
#include "handoff.h"

#include <acdm/plugin_util.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int str_field(json_t *o, const char *path, const char *key, size_t max, int required,
                     const char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required) { snprintf(err, errlen, "%s%s: required", path, key); return -1; }
        return 0;
    }
    if (!json_is_string(v)) { snprintf(err, errlen, "%s%s: expected a string", path, key); return -1; }
    size_t n = json_string_length(v);
    if (n > max) { snprintf(err, errlen, "%s%s: longer than %zu characters", path, key, max); return -1; }
    if (required && n == 0) { snprintf(err, errlen, "%s%s: must not be empty", path, key); return -1; }
    if (strlen(json_string_value(v)) != n) { snprintf(err, errlen, "%s%s: contains a NUL character", path, key); return -1; }
    *out = json_string_value(v);
    return 0;
}

static int known_keys(json_t *o, const char *path, const char *const *known, char *err, size_t errlen)
{
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(key, known[i]);
        if (!ok) { snprintf(err, errlen, "%s%s: unknown field", path, key); return -1; }
    }
    return 0;
}

int handoff_parse(const char *body, size_t len, handoff *h, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    if (!body || !len) { snprintf(err, errlen, "body: expected a JSON object"); return -1; }
    if (len > HANDOFF_MAX_BODY) { snprintf(err, errlen, "body: larger than %d bytes", HANDOFF_MAX_BODY); return -1; }
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) { snprintf(err, errlen, "body: malformed JSON: %s at line %d column %d", je.text, je.line, je.column); return -1; }
    h->root = o;
    if (!json_is_object(o)) { snprintf(err, errlen, "body: expected a JSON object"); goto bad; }
    static const char *const known[] = {"conversation_id", "customer", "transcript", "summary",
                                        "intent", "queue", "skills", "priority", NULL};
    if (known_keys(o, "", known, err, errlen)) goto bad;
    if (str_field(o, "", "conversation_id", 200, 1, &h->conversation_id, err, errlen)) goto bad;
    json_t *c = json_object_get(o, "customer");
    if (!c) { snprintf(err, errlen, "customer: required ({id, name, address, channel})"); goto bad; }
    if (!json_is_object(c)) { snprintf(err, errlen, "customer: expected an object"); goto bad; }
    static const char *const cknown[] = {"id", "name", "address", "channel", NULL};
    if (known_keys(c, "customer.", cknown, err, errlen) ||
        str_field(c, "customer.", "id", 128, 0, &h->customer_id, err, errlen) ||
        str_field(c, "customer.", "name", 200, 0, &h->customer_name, err, errlen) ||
        str_field(c, "customer.", "address", 512, 0, &h->address, err, errlen) ||
        str_field(c, "customer.", "channel", 64, 0, &h->customer_channel, err, errlen)) goto bad;
    if (!(h->customer_id && *h->customer_id) && !(h->address && *h->address)) {
        snprintf(err, errlen, "customer: needs an id or an address");
        goto bad;
    }
    json_t *t = json_object_get(o, "transcript");
    if (!t) { snprintf(err, errlen, "transcript: required (an array of {text, author, time})"); goto bad; }
    if (!json_is_array(t)) { snprintf(err, errlen, "transcript: expected an array"); goto bad; }
    if (json_array_size(t) > HANDOFF_MAX_TRANSCRIPT) {
        snprintf(err, errlen, "transcript: more than %d entries", HANDOFF_MAX_TRANSCRIPT);
        goto bad;
    }
    static const char *const tknown[] = {"text", "author", "time", NULL};
    for (size_t i = 0; i < json_array_size(t); i++) {
        json_t *m = json_array_get(t, i);
        char path[48];
        snprintf(path, sizeof path, "transcript[%zu].", i);
        if (!json_is_object(m)) { snprintf(err, errlen, "transcript[%zu]: expected an object", i); goto bad; }
        const char *dummy;
        if (known_keys(m, path, tknown, err, errlen) ||
            str_field(m, path, "text", HANDOFF_MAX_TEXT, 1, &dummy, err, errlen) ||
            str_field(m, path, "author", 100, 1, &dummy, err, errlen)) goto bad;
        json_t *tm = json_object_get(m, "time");
        if (tm && !json_is_null(tm) && !json_is_string(tm) && !json_is_integer(tm)) {
            snprintf(err, errlen, "%stime: expected an ISO 8601 string or epoch milliseconds", path);
            goto bad;
        }
        if (json_is_string(tm) && json_string_length(tm) > 64) {
            snprintf(err, errlen, "%stime: longer than 64 characters", path);
            goto bad;
        }
    }
    h->transcript = t;
    if (str_field(o, "", "summary", 1000, 0, &h->summary, err, errlen) ||
        str_field(o, "", "intent", 200, 0, &h->intent, err, errlen) ||
        str_field(o, "", "queue", 63, 0, &h->queue, err, errlen)) goto bad;
    if (!(h->summary && *h->summary) && !(h->intent && *h->intent)) {
        snprintf(err, errlen, "summary: required (a summary or an intent)");
        goto bad;
    }
    json_t *sk = json_object_get(o, "skills");
    if (sk && !json_is_null(sk)) {
        if (!json_is_array(sk)) { snprintf(err, errlen, "skills: expected an array"); goto bad; }
        if (json_array_size(sk) > 32) { snprintf(err, errlen, "skills: at most 32 skills"); goto bad; }
        for (size_t i = 0; i < json_array_size(sk); i++) {
            json_t *s = json_array_get(sk, i);
            json_t *nm = json_is_object(s) ? json_object_get(s, "name") : s;
            json_t *lv = json_is_object(s) ? json_object_get(s, "level") : NULL;
            if (!json_is_string(nm) || json_string_length(nm) == 0 || json_string_length(nm) > 63 ||
                (lv && (!json_is_integer(lv) || json_integer_value(lv) < 1 || json_integer_value(lv) > 100))) {
                snprintf(err, errlen, "skills[%zu]: expected a skill name or {\"name\": string, \"level\": 1..100}", i);
                goto bad;
            }
        }
        h->skills = sk;
    }
    json_t *pr = json_object_get(o, "priority");
    if (pr && !json_is_null(pr)) {
        if (!json_is_integer(pr) || json_integer_value(pr) < 0 || json_integer_value(pr) > 9) {
            snprintf(err, errlen, "priority: expected an integer 0..9");
            goto bad;
        }
        h->priority = (int)json_integer_value(pr);
    }
    return 0;
bad:
    json_decref(o);
    memset(h, 0, sizeof *h);
    return -1;
}

void handoff_free(handoff *h)
{
    json_decref(h->root);
    memset(h, 0, sizeof *h);
}

char *handoff_document(const handoff *h, const char *source, char **lines_out)
{
    acdm_handoff_doc d;
    acdm_handoff_begin(&d, source, h->conversation_id);
    acdm_handoff_customer(&d, h->customer_id, h->customer_name, h->address, h->customer_channel);
    acdm_handoff_summary(&d, h->summary, h->intent);
    for (size_t i = 0; i < json_array_size(h->transcript); i++) {
        json_t *m = json_array_get(h->transcript, i);
        json_t *tm = json_object_get(m, "time");
        acdm_handoff_line(&d, json_string_value(json_object_get(m, "author")), NULL,
                          json_string_value(json_object_get(m, "text")), json_string_value(tm),
                          json_is_integer(tm) ? (long long)json_integer_value(tm) : -1);
    }
    return acdm_handoff_end(&d, lines_out);
}

char *handoff_transcript_text(const handoff *h)
{
    char *lines = NULL;
    free(handoff_document(h, "chatbot", &lines));
    return lines;
}

json_t *handoff_payload(const handoff *h, const char *source)
{
    char *doc = handoff_document(h, source, NULL);
    json_t *j = doc ? json_loads(doc, 0, NULL) : NULL;
    free(doc);
    return j;
}
