/* fuzz_gsm7.c -- libFuzzer entry point: arbitrary bytes as an agent's SMS text through the
 * encoder and splitter (channels/sms/smstext.c). Checks what the channel relies on: a GSM-7
 * result encodes and decodes back to itself; parts cover the text exactly, each within its
 * size (153 septets / 67 UTF-16 units, 160 / 70 for one SMS) and never cut a character. */
#include "../../channels/sms/smstext.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t units_of(const sms_split *s, size_t from, size_t to)
{
    size_t u = 0;
    for (size_t i = from; i < to;) {
        uint32_t cp;
        size_t l = sms_utf8_next((const unsigned char *)s->text + i, to - i, &cp);
        if (!l) abort();                       /* a part boundary inside a character */
        u += s->coding == SMS_GSM7 ? (size_t)sms_gsm7_septets(cp) : (cp >= 0x10000 ? 2 : 1);
        i += l;
    }
    return u;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sms_split s;
    int rc = sms_split_text((const char *)data, size, 1 + (size % SMS_MAX_PARTS), &s);
    if (rc == -1 || rc == -2) return 0;
    if (rc != 0 || !s.text || s.n_parts < 1 || s.n_parts > SMS_MAX_PARTS) abort();
    if (s.part_off[0] != 0 || s.part_off[s.n_parts] != s.len || strlen(s.text) != s.len) abort();
    size_t total = 0;
    for (size_t p = 0; p < s.n_parts; p++) {
        if (s.part_off[p] > s.part_off[p + 1]) abort();
        size_t u = units_of(&s, s.part_off[p], s.part_off[p + 1]);
        size_t cap = s.n_parts == 1 ? (s.coding == SMS_GSM7 ? 160 : 70) : (s.coding == SMS_GSM7 ? 153 : 67);
        if (u > cap) abort();
        total += u;
    }
    if (total != s.units) abort();
    if (s.coding == SMS_GSM7) {
        if (s.ucs2_cause != -1) abort();
        unsigned char *sept = malloc(s.len * 2 + 1);
        char *back = malloc(s.len * 2 + 8);
        if (!sept || !back) abort();
        long n = sms_gsm7_encode(s.text, s.len, sept, s.len * 2 + 1);
        if (n < 0 || (size_t)n != s.units) abort();
        long m = sms_gsm7_decode(sept, (size_t)n, back, s.len * 2 + 8);
        if (m < 0 || (size_t)m != s.len || memcmp(back, s.text, s.len)) abort();
        free(sept);
        free(back);
    } else {
        if (s.ucs2_cause < 0 || (size_t)s.ucs2_cause >= size || sms_gsm7_septets(s.ucs2_char)) abort();
        if (s.len != size || memcmp(s.text, data, size)) abort();
    }
    sms_split_free(&s);
    /* the raw bytes as septets */
    char *out = malloc(size * 5 + 8);
    if (out) {
        unsigned char *sp = malloc(size ? size : 1);
        if (sp) {
            for (size_t i = 0; i < size; i++) sp[i] = data[i] & 0x7F;
            long m = sms_gsm7_decode(sp, size, out, size * 5 + 8);
            if (m >= 0 && strlen(out) != (size_t)m) abort();
            free(sp);
        }
        free(out);
    }
    return 0;
}
