/* visitor.h -- the visitor's websocket messages (widget -> plugin), parsed and validated. Pure:
 * jansson only, shared by webchat.c, the unit tests and the fuzz harness. */
#ifndef ACDM_WEBCHAT_VISITOR_H
#define ACDM_WEBCHAT_VISITOR_H

#include <jansson.h>
#include <stddef.h>

typedef enum {
    VM_MESSAGE = 0,       /* {type:"message", text} */
    VM_TYPING,            /* {type:"typing"} */
    VM_END,               /* {type:"end"} */
    VM_LEAVE_MESSAGE,     /* {type:"leave_message", text, name?, email?} */
    VM_ATTACH_START,      /* {type:"attachment_start", filename, content_type, size} */
    VM_ATTACH_CHUNK,      /* {type:"attachment_chunk", data (base64)} */
    VM_ATTACH_END,        /* {type:"attachment_end"} */
    VM_PING,              /* {type:"ping"} */
    VM_CSAT,              /* {type:"csat", score?: 1..5, helped?: bool} (at least one) */
    VM_NEW                /* {type:"new"}: a fresh conversation after the end */
} visitor_type;

typedef struct {
    json_t *root;               /* owns the strings below */
    visitor_type type;
    const char *text, *name, *email, *filename, *content_type, *data;
    size_t text_len, data_len;
    long long size;
    int score;                  /* VM_CSAT: 1..5, 0 when not given */
    int helped;                 /* VM_CSAT: 1 yes, 0 no, -1 not given */
} visitor_msg;

/* Error codes the widget shows a text for. */
#define VERR_MALFORMED "malformed"
#define VERR_TOO_LONG "too_long"
#define VERR_INVALID "invalid"

/* Parses one websocket text message. max_text: the instance's message limit in characters
 * (UTF-8 code points). 0, or -1 with *code (one of VERR_*) and a sentence naming the field in
 * err. On success free with visitor_free. */
int visitor_parse(const char *data, size_t len, size_t max_text, visitor_msg *m,
                  const char **code, char *err, size_t errlen);
void visitor_free(visitor_msg *m);

/* Decodes base64 (standard alphabet, padding optional) into out (room for len*3/4+3 bytes).
 * Returns the decoded length or -1 on a bad character. */
long visitor_b64_decode(const char *in, size_t len, unsigned char *out);

/* Number of UTF-8 code points in s (len bytes). */
size_t visitor_utf8_len(const char *s, size_t len);

#endif
