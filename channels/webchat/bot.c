/* bot.c -- the bot protocols of the web chat's "bot first" (see bot.h). Built in: the Rasa REST
 * channel (https://rasa.com/docs/rasa/connectors/your-own-website/#rest-channels):
 *   request  POST {"sender": "<conversation id>", "message": "<text>"}
 *   answer   [{"recipient_id": .., "text": ".."}, {"custom": {...}}, {"image": ..}, ...]
 * A handoff is an answer element {"custom": {"handoff": true, "summary": "..", "intent": "..",
 * "queue": "..", "skills": [..], "priority": 0..9}} ({"custom": {"action": "handoff"}} too). */
#include "bot.h"

#include <stdlib.h>
#include <string.h>

void bot_reply_free(bot_reply *r)
{
    json_decref(r->root);
    json_decref(r->texts);
    memset(r, 0, sizeof *r);
}

static char *rasa_request(const char *sender, const char *text)
{
    json_t *b = json_pack("{s:s, s:s}", "sender", sender, "message", text);
    char *s = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    return s;
}

static int rasa_reply(const char *body, size_t len, bot_reply *out)
{
    memset(out, 0, sizeof *out);
    json_t *arr = json_loadb(body, len, 0, NULL);
    if (!json_is_array(arr)) { json_decref(arr); return -1; }
    out->root = arr;
    out->texts = json_array();
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *r = json_array_get(arr, i);
        if (!json_is_object(r)) continue;
        json_t *t = json_object_get(r, "text");
        if (json_is_string(t) && json_string_length(t) && strlen(json_string_value(t)) == json_string_length(t))
            json_array_append(out->texts, t);
        json_t *cu = json_object_get(r, "custom");
        if (!json_is_object(cu)) continue;
        const char *action = json_string_value(json_object_get(cu, "action"));
        if (!json_is_true(json_object_get(cu, "handoff")) && !(action && !strcmp(action, "handoff"))) continue;
        out->handoff = true;
        out->summary = json_string_value(json_object_get(cu, "summary"));
        out->intent = json_string_value(json_object_get(cu, "intent"));
        out->queue = json_string_value(json_object_get(cu, "queue"));
        json_t *pr = json_object_get(cu, "priority");
        if (json_is_integer(pr) && json_integer_value(pr) >= 0 && json_integer_value(pr) <= 9)
            out->priority = (int)json_integer_value(pr);
        json_t *sk = json_object_get(cu, "skills");
        out->skills = json_is_array(sk) ? sk : NULL;
    }
    return 0;
}

static const bot_protocol protocols[] = {
    {"rasa", rasa_request, rasa_reply},
};

const bot_protocol *bot_protocol_find(const char *name)
{
    for (size_t i = 0; i < sizeof protocols / sizeof *protocols; i++)
        if (!strcmp(protocols[i].name, name)) return &protocols[i];
    return NULL;
}

const char *bot_protocol_names(void) { return "rasa"; }
