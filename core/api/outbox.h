/* outbox.h -- what the API tells a client only once the writes before it are committed.
 *
 * An acknowledgement is a promise that the action survives a crash. Every answer to an agent's or
 * supervisor's websocket (acks, errors, the pushes that follow a change: state, assigned, done,
 * offers) and every successful answer of a REST route that writes goes through the outbox: it is
 * queued in order and released after the store has committed every write queued before it (one
 * flush per loop turn, whatever the number of messages). When those writes failed, an ack becomes
 * an error "unsaved" and a REST answer a 503: the caller hears that the action was not stored.
 */
#ifndef ACDM_OUTBOX_H
#define ACDM_OUTBOX_H

#include "api/api.h"

typedef struct acdm_outbox acdm_outbox;

acdm_outbox *acdm_outbox_create(acdm_engine *e);
/* A websocket message (text stolen, malloc'd) for session s. re: when the message is an "ack",
 * the type it acknowledges (on a failed commit an error "unsaved" is sent instead); else NULL.
 * bericht: the ack's bericht id or NULL. */
void acdm_outbox_ws(acdm_outbox *ob, acdm_session *s, char *text, const char *re, const char *bericht);
/* Closes s's websocket (code, reason) after what was queued for it before. */
void acdm_outbox_ws_close(acdm_outbox *ob, acdm_session *s, int code, const char *reason);
/* A notification that acknowledges nothing (an offer): sent at once when nothing is held for
 * s (the order of its messages stays), else queued behind what is. text stolen. */
void acdm_outbox_ws_notify(acdm_outbox *ob, acdm_session *s, char *text);
/* The reply to r (obj stolen) once committed; 503 problem+json when the writes failed. */
void acdm_outbox_reply(acdm_outbox *ob, acdm_req *r, int status, json_t *obj);
/* The same with an empty body (204). */
void acdm_outbox_reply_empty(acdm_outbox *ob, acdm_req *r, int status);
/* The session is closing: its queued messages are dropped. */
void acdm_outbox_forget(acdm_outbox *ob, acdm_session *s);
/* Shutdown: asks for a last flush now (the store's close runs it while HTTP can answer). */
void acdm_outbox_shutdown(acdm_outbox *ob);
/* After HTTP is closed: frees what is left without sending it. */
void acdm_outbox_free(acdm_outbox *ob);

#endif
