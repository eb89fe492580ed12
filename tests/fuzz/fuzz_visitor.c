/* fuzz_visitor.c -- libFuzzer entry point: arbitrary bytes as a web chat visitor's websocket
 * message (channels/webchat/visitor.c), including the base64 of attachment chunks; the same
 * bytes as a bot's answer through the Rasa protocol reader (channels/webchat/bot.c). */
#include "../../channels/webchat/visitor.c"
#include "../../channels/webchat/bot.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[200];
    err[0] = 0;
    const char *code = NULL;
    visitor_msg m;
    int rc = visitor_parse((const char *)data, size, 50, &m, &code, err, sizeof err);
    if (rc != 0) {
        if (!code || !err[0] || strlen(err) >= sizeof err || m.root) abort();
        if (strcmp(code, VERR_MALFORMED) && strcmp(code, VERR_TOO_LONG) && strcmp(code, VERR_INVALID)) abort();
        return 0;
    }
    switch (m.type) {
    case VM_MESSAGE:
        if (!m.text || visitor_utf8_len(m.text, m.text_len) > 50) abort();
        break;
    case VM_LEAVE_MESSAGE:
        if (!m.text || !m.text_len) abort();
        break;
    case VM_ATTACH_START:
        if (!m.filename || !m.content_type || m.size <= 0 || strchr(m.filename, '/')) abort();
        break;
    case VM_ATTACH_CHUNK: {
        unsigned char *out = malloc(m.data_len / 4 * 3 + 4);
        if (!out) abort();
        long n = visitor_b64_decode(m.data, m.data_len, out);
        if (n > (long)(m.data_len / 4 * 3 + 3)) abort();
        free(out);
        break;
    }
    default:
        break;
    }
    visitor_free(&m);
    /* the bytes as a bot's answer */
    bot_reply br;
    if (bot_protocol_find("rasa")->reply((const char *)data, size, &br) == 0) {
        if (!json_is_array(br.texts) || br.priority < 0 || br.priority > 9) abort();
        bot_reply_free(&br);
    }
    /* the decoder on the raw bytes too */
    unsigned char *out = malloc(size / 4 * 3 + 4);
    if (out) {
        long n = visitor_b64_decode((const char *)data, size, out);
        if (n > (long)(size / 4 * 3 + 3)) abort();
        free(out);
    }
    return 0;
}
