/* fuzz_kannel.c -- libFuzzer entry point: arbitrary bytes as what Kannel sends the sms channel
 * (channels/sms/smsproto.c): the first line is the query string (raw, then as an ABI 1.0 host
 * passes it), the rest the post-url body; the same query as a delivery report. A parsed MO
 * always has a sender and valid UTF-8 text; a DLR a message id and a part in range. */
#include "../../channels/sms/smsproto.c"
#include "../../channels/sms/smstext.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_mo(const kannel_mo *m)
{
    if (!m->from[0] || !m->text || strlen(m->text) != m->text_len) abort();
    for (size_t i = 0; i < m->text_len;) {
        uint32_t cp;
        size_t l = sms_utf8_next((const unsigned char *)m->text + i, m->text_len - i, &cp);
        if (!l) abort();
        i += l;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ql = nl ? (size_t)(nl - data) : size;
    char *q = malloc(ql + 1);
    if (!q) return 0;
    memcpy(q, data, ql);
    q[ql] = '\0';
    const char *body = nl ? (const char *)nl + 1 : NULL;
    size_t bl = nl ? size - ql - 1 : 0;
    char err[200];
    for (int raw = 0; raw < 2; raw++) {
        kannel_mo m;
        err[0] = '\0';
        if (kannel_mo_parse(q, raw, body, bl, &m, err, sizeof err) == 0) {
            check_mo(&m);
            (void)sms_keyword(m.text, m.text_len);
            kannel_mo_free(&m);
        } else if (!err[0] || m.text) {
            abort();
        }
        kannel_dlr d;
        if (kannel_dlr_parse(q, raw, &d, err, sizeof err) == 0) {
            if (!d.msg[0] || d.part < 0 || d.part >= SMS_MAX_PARTS) abort();
            (void)kannel_dlr_state(d.status);
        }
    }
    free(q);
    return 0;
}
