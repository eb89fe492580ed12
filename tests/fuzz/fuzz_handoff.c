/* fuzz_handoff.c -- libFuzzer entry point: arbitrary bytes as a chatbot handoff document
 * (POST /channels/<instance>/handoff) through handoff_parse and what the plugins do with a
 * parsed one (transcript text, stored payload). */
#include "../../channels/chatbot/handoff.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[300];
    err[0] = 0;
    handoff h;
    int rc = handoff_parse((const char *)data, size, &h, err, sizeof err);
    if (rc != 0) {
        /* refused: a message naming the field, nothing held */
        if (!err[0] || strlen(err) >= sizeof err || h.root) abort();
        return 0;
    }
    if (!h.conversation_id || !*h.conversation_id || !h.transcript || !json_is_array(h.transcript)) abort();
    if (!((h.summary && *h.summary) || (h.intent && *h.intent))) abort();
    if (h.priority < 0 || h.priority > 9) abort();
    char *text = handoff_transcript_text(&h);
    if (!text) abort();
    free(text);
    json_t *p = handoff_payload(&h, "fuzz");
    if (!p) abort();
    char *s = json_dumps(p, JSON_COMPACT);
    free(s);
    json_decref(p);
    handoff_free(&h);
    return 0;
}
