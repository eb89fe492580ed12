/* botstate.h -- "bot first" for the message channels (sms, whatsapp): a customer's conversation
 * with the bot kept in the instance's kv store, and the JSON kv helpers it rests on. Shared by
 * channels/sms and channels/whatsapp (the whatsapp plugin builds this file too: see
 * channels/whatsapp/plugin.mk); the bot protocols themselves are channels/webchat/bot.c.
 *
 * The state of one customer (kv "bot:<who>"): {"state": "bot"|"human", "t": [{"from": "bot"|
 * "citizen", "text": ..}, ... at most 50]}. "human" after a handoff, until the channel deletes
 * the key when the bericht ends. */
#ifndef ACDM_BOTSTATE_H
#define ACDM_BOTSTATE_H

#include <acdm/plugin.h>

#include <jansson.h>
#include <stdint.h>

/* doc as compact JSON under key; ttl_s 0 = no expiry (or no kv_set_ttl in this core). */
int botkv_put(const acdm_host *h, acdm_instance *inst, const char *key, json_t *doc, uint32_t ttl_s);
/* The JSON under key (new reference), or NULL when absent or not JSON. */
json_t *botkv_get(const acdm_host *h, acdm_instance *inst, const char *key);

/* The customer's state; a fresh {"state": "bot", "t": []} when there is none. */
json_t *bot_state(const acdm_host *h, acdm_instance *inst, const char *who);
void bot_state_put(const acdm_host *h, acdm_instance *inst, const char *who, json_t *st, uint32_t ttl_s);
/* Appends a line to the transcript (the oldest dropped past 50). */
void bot_line(json_t *st, const char *from, const char *text);
/* The handoff to humans: the state becomes "human" (stored); *text becomes the transcript as
 * lines "Chatbot: ..\n" / "Klant: ..\n" and *payload (a JSON object text, or NULL) gets
 * "source": "bot", "summary" and "transcript" (both malloc'd, the old ones freed). */
void bot_handoff_state(const acdm_host *h, acdm_instance *inst, const char *who, uint32_t ttl_s,
                       const char *summary, char **text, char **payload);

#endif
