/* botstate.c -- the message channels' bot-first conversation state (see botstate.h). */
#include "botstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int botkv_put(const acdm_host *h, acdm_instance *inst, const char *key, json_t *doc, uint32_t ttl_s)
{
    char *v = json_dumps(doc, JSON_COMPACT);
    if (!v) return ACDM_P_ENOMEM;
    int rc;
    if (ttl_s && ACDM_HOST_HAS(h, kv_set_ttl) && h->kv_set_ttl)
        rc = h->kv_set_ttl(inst, key, v, strlen(v), ttl_s);
    else
        rc = h->kv_set(inst, key, v, strlen(v));
    free(v);
    return rc;
}

json_t *botkv_get(const acdm_host *h, acdm_instance *inst, const char *key)
{
    char *v = NULL;
    size_t n = 0;
    if (h->kv_get(inst, key, &v, &n) != 0) return NULL;
    json_t *o = json_loadb(v, n, 0, NULL);
    h->free(v);
    return o;
}

json_t *bot_state(const acdm_host *h, acdm_instance *inst, const char *who)
{
    char key[300];
    snprintf(key, sizeof key, "bot:%s", who);
    json_t *o = botkv_get(h, inst, key);
    if (!json_is_object(o)) { json_decref(o); o = json_pack("{s:s, s:[]}", "state", "bot", "t"); }
    if (o && !json_is_array(json_object_get(o, "t"))) json_object_set_new(o, "t", json_array());
    return o;
}

void bot_state_put(const acdm_host *h, acdm_instance *inst, const char *who, json_t *st, uint32_t ttl_s)
{
    char key[300];
    snprintf(key, sizeof key, "bot:%s", who);
    botkv_put(h, inst, key, st, ttl_s);
}

void bot_line(json_t *st, const char *from, const char *text)
{
    json_t *t = json_object_get(st, "t");
    json_array_append_new(t, json_pack("{s:s, s:s}", "from", from, "text", text ? text : ""));
    while (json_array_size(t) > 50) json_array_remove(t, 0);
}

void bot_handoff_state(const acdm_host *h, acdm_instance *inst, const char *who, uint32_t ttl_s,
                       const char *summary, char **text, char **payload)
{
    json_t *st = bot_state(h, inst, who);
    if (!st) return;
    json_object_set_new(st, "state", json_string("human"));
    bot_state_put(h, inst, who, st, ttl_s);
    json_t *t = json_object_get(st, "t");
    size_t cap = 64;
    for (size_t i = 0; i < json_array_size(t); i++) {
        const char *tx = json_string_value(json_object_get(json_array_get(t, i), "text"));
        cap += (tx ? strlen(tx) : 0) + 12;
    }
    char *lines = malloc(cap);
    if (lines) {
        size_t o = 0;
        lines[0] = '\0';
        for (size_t i = 0; i < json_array_size(t); i++) {
            json_t *l = json_array_get(t, i);
            const char *from = json_string_value(json_object_get(l, "from"));
            const char *tx = json_string_value(json_object_get(l, "text"));
            o += (size_t)snprintf(lines + o, cap - o, "%s: %s\n",
                                  from && !strcmp(from, "bot") ? "Chatbot" : "Klant", tx ? tx : "");
        }
        if (o) { free(*text); *text = lines; }   /* no transcript: the customer's text stays */
        else free(lines);
    }
    json_t *pl = *payload ? json_loads(*payload, 0, NULL) : NULL;
    if (!json_is_object(pl)) { json_decref(pl); pl = json_object(); }
    json_object_set_new(pl, "source", json_string("bot"));
    json_object_set_new(pl, "summary", json_string(summary));
    json_object_set(pl, "transcript", t);
    free(*payload);
    *payload = json_dumps(pl, JSON_COMPACT);
    json_decref(pl);
    json_decref(st);
}
