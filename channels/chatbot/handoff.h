/* handoff.h -- the chatbot handoff document (POST /channels/<instance>/handoff), shared by the
 * chatbot and webchat plugins and the fuzz harness. Pure: jansson only, no host calls. */
#ifndef ACDM_HANDOFF_H
#define ACDM_HANDOFF_H

#include <jansson.h>
#include <stddef.h>

#define HANDOFF_MAX_TRANSCRIPT 500     /* entries */
#define HANDOFF_MAX_TEXT 4000          /* characters per transcript entry */
#define HANDOFF_MAX_BODY (512 * 1024)  /* bytes of the whole document */

typedef struct {
    json_t *root;                 /* owns every string below */
    const char *conversation_id;  /* required: the bot's conversation id (idempotency) */
    const char *customer_id, *customer_name, *address, *customer_channel;
    const char *summary, *intent; /* at least one */
    const char *queue;            /* optional target queue */
    json_t *skills;               /* optional array (borrowed from root) */
    int priority;                 /* 0..9, default 0 */
    json_t *transcript;           /* array of {text, author, time} (borrowed from root) */
} handoff;

/* Parses and validates body (len bytes). 0, or -1 with a sentence naming the field in err
 * ("transcript[2].author: expected a string"). On success free with handoff_free. */
int handoff_parse(const char *body, size_t len, handoff *h, char *err, size_t errlen);
void handoff_free(handoff *h);

/* The handoff document stored as the bericht's payload (<acdm/plugin_util.h>'s
 * acdm_handoff_doc: {source, conversation_id, customer, summary, intent, transcript:[{author,
 * text, time}]}) as JSON text, and with lines_out the transcript as readable lines
 * "[time] author: text\n" (both malloc'd; NULL when out of memory). */
char *handoff_document(const handoff *h, const char *source, char **lines_out);

/* The transcript as readable lines "[time] author: text\n" (malloc'd). */
char *handoff_transcript_text(const handoff *h);

/* handoff_document parsed (new reference). */
json_t *handoff_payload(const handoff *h, const char *source);

#endif
