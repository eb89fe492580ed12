/* outbox.h -- what the message channels (sms, whatsapp) share about outgoing work that must
 * survive a restart and be retried: the list of pending ids kept in the instance's kv store
 * (sms: "outbox", the sends whose parts are not all accepted; whatsapp: "media", the downloads
 * not yet done), and the retry backoff of an outgoing message (config "retries", "retry_ms").
 * Shared by channels/sms and channels/whatsapp (the whatsapp plugin builds this file too: see
 * channels/whatsapp/plugin.mk). */
#ifndef ACDM_OUTBOX_H
#define ACDM_OUTBOX_H

#include <acdm/plugin.h>

#include <stdbool.h>
#include <stdint.h>

/* The id list under kv key: remove (when not NULL) is dropped, add (when not NULL) is appended
 * (once: an earlier copy is dropped); the key is deleted when the list becomes empty. */
void outbox_list(const acdm_host *h, acdm_instance *inst, const char *key, const char *add,
                 const char *remove);

/* After attempt number `tries` (1 = the first) failed in a way that may be retried: true when
 * fewer than `retries` attempts were made, with *delay_ms the wait before the next one (retry_ms,
 * doubled per attempt, at most 1024 times); false when the attempts are spent. */
bool outbox_retry_delay(int retries, int retry_ms, int tries, uint64_t *delay_ms);

#endif
