/* bot.h -- bot protocols for "bot first" in the web chat: how a visitor's text is sent to a bot
 * and how its answer is read. Pure (jansson only); the HTTP call itself is webchat.c's.
 *
 * Adding a protocol: write its two functions in bot.c (or a new bot_<name>.c in this folder),
 * add an entry to the `protocols` table in bot.c, and select it per instance with
 * "bot": {"protocol": "<name>", "url": ...}. See docs/webchat.md ("Other bot protocols"). */
#ifndef ACDM_WEBCHAT_BOT_H
#define ACDM_WEBCHAT_BOT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* What the bot answered to one visitor text. */
typedef struct {
    json_t *root;            /* owns everything below */
    json_t *texts;           /* array of strings to show the visitor (in order) */
    bool handoff;            /* hand the visitor to humans now */
    const char *summary, *intent, *queue;   /* optional, with a handoff */
    json_t *skills;          /* optional array, with a handoff */
    int priority;            /* 0..9 */
} bot_reply;

typedef struct {
    const char *name;
    /* The POST body (malloc'd) for one visitor text; sender is the conversation id. */
    char *(*request)(const char *sender, const char *text);
    /* Reads the bot's HTTP 2xx body. 0, or -1 when it is not a valid answer (the visitor then
     * goes to humans at once). On 0 free with bot_reply_free. */
    int (*reply)(const char *body, size_t len, bot_reply *out);
} bot_protocol;

/* The protocol with this name ("rasa"), or NULL. */
const bot_protocol *bot_protocol_find(const char *name);
/* "rasa, ..." for error messages. */
const char *bot_protocol_names(void);
void bot_reply_free(bot_reply *r);

#endif
