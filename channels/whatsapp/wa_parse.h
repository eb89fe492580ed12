/* wa_parse.h -- the WhatsApp Cloud API webhook payload (POST body, after its signature was
 * checked), read into flat lists: every entry[] x changes[] x messages[] / statuses[] /
 * errors[] (a batch loses nothing). Pure (jansson only): the fuzz harness calls it directly.
 *
 * Payload shape (developers.facebook.com, WhatsApp Cloud API webhooks "messages"):
 *   {"object":"whatsapp_business_account","entry":[{"id":WABA,"changes":[{"field":"messages",
 *    "value":{"metadata":{"phone_number_id":..},"contacts":[{"wa_id":..,"user_id":..,
 *    "profile":{"name":..}}],"messages":[..],"statuses":[..],"errors":[..]}}]}]} */
#ifndef ACDM_WA_PARSE_H
#define ACDM_WA_PARSE_H

#include <jansson.h>
#include <stddef.h>

typedef enum {
    WA_T_TEXT = 0, WA_T_IMAGE, WA_T_AUDIO, WA_T_VOICE, WA_T_VIDEO, WA_T_DOCUMENT, WA_T_STICKER,
    WA_T_LOCATION, WA_T_CONTACTS, WA_T_INTERACTIVE, WA_T_BUTTON, WA_T_REACTION, WA_T_UNSUPPORTED
} wa_type;

/* One inbound message. Strings are borrowed from the batch (its JSON), except text. */
typedef struct {
    const char *id;               /* wamid: the idempotency key */
    const char *from;             /* wa_id (phone), or NULL for a username-only user */
    const char *user_id;          /* the business-scoped user id (BSUID), or NULL */
    const char *name;             /* the contact's profile name, or NULL */
    const char *phone_number_id;  /* metadata: which of our numbers it was sent to, or NULL */
    const char *type_name;        /* as sent ("image", "nfm_reply", ...) */
    wa_type type;
    long long timestamp;          /* seconds, 0 when absent */
    char *text;                   /* what the agent reads (malloc'd, owned by the batch) */
    const char *media_id, *mime_type, *sha256, *filename, *caption;  /* media types */
    const char *context_id;       /* the quoted message (a reply), or NULL */
    const char *reaction_to;      /* reaction: the message reacted to */
    const char *emoji;            /* reaction: "" when the reaction was removed */
    int error_code;               /* unsupported: Meta's code (131051, 131060), else 0 */
    json_t *raw;                  /* the message object (borrowed) */
} wa_message;

typedef struct {
    const char *id;               /* wamid of OUR message */
    const char *status;           /* sent, delivered, read, failed (deleted, ... passed on) */
    const char *recipient;        /* recipient_id, or NULL */
    int error_code;               /* failed: errors[0].code */
    const char *error_title, *error_details;
} wa_status;

typedef struct {
    int code;
    const char *title, *details;
} wa_error;

typedef struct {
    json_t *root;
    wa_message *msgs;
    size_t n_msgs;
    wa_status *sts;
    size_t n_sts;
    wa_error *errs;
    size_t n_errs;
    size_t n_skipped;             /* messages without an id or a sender: logged, not stored */
} wa_batch;

/* 0, or -1 with a sentence in err (not JSON, not a whatsapp_business_account object, too
 * many items). Free with wa_batch_free. */
int wa_parse(const char *body, size_t len, wa_batch *out, char *err, size_t errlen);
void wa_batch_free(wa_batch *b);

/* Status rank for "never backwards": sent 1, delivered 2, read 3, failed 4 (final, but never
 * over delivered/read); 0 for anything else. */
int wa_status_rank(const char *status);

/* Size cap in bytes for a media type (image 5 MB, audio/video/voice 16 MB, document 100 MB,
 * sticker 500 KB); 0 for a type without media. */
size_t wa_media_cap(wa_type t);

#endif
