/* api_desk.h -- internal notes, escalation and consults (api_desk.c): the agents' own records
 * about a conversation, beside the conversation itself. */
#ifndef ACDM_API_DESK_H
#define ACDM_API_DESK_H

#include "api/api.h"

/* The longest note or consult text, in characters. */
#define ACDM_NOTE_MAX 4000

/* Registers GET /api/v1/escalations and GET /api/v1/consults (called from acdm_api_register). */
int acdm_api_desk_register(acdm_engine *e);
/* The /ws messages "note" (agents) and "consult" (agents, supervisors): true when msg was one of
 * them (answered: ack or error). */
bool acdm_api_desk_ws(acdm_engine *e, acdm_session *s, json_t *msg, const char *type);
/* A note field (of complete or transfer): 0 when absent, null or a text of at most
 * ACDM_NOTE_MAX characters; else ACDM_EINVAL with a sentence naming it in err. */
int acdm_api_note_check(json_t *note, char *err, size_t errlen);
/* Appends the note event for b by agent_id (nothing for an empty text); from_queue: the queue it
 * was written in (NULL: b's); to_queue / to_agent: the transfer it went with (an escalation),
 * else NULL. */
void acdm_api_note_add(acdm_engine *e, const char *agent_id, const acdm_bericht *b, const char *text,
                       const char *from_queue, const char *to_queue, const char *to_agent);
/* Whether name may read the bericht (its JSON with "events") beside its handlers: they wrote a
 * note on it (handed it on) or a colleague consulted them about it. */
bool acdm_api_desk_may_read(json_t *bericht, const char *name);

#endif
