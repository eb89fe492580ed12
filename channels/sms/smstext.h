/* smstext.h -- SMS text encoding: GSM 03.38 (GSM-7, with the usual substitutions) or UCS-2,
 * and the split into concatenated parts. Pure C (no library): the sms plugin sends each part
 * itself (so each part has its own delivery report), the fuzz harness and the unit tests call
 * it directly. The desk's composer counts the same way (core/ui).
 *
 * Sizes: GSM-7 160 septets in one SMS, 153 per part when concatenated (an extension character
 * such as € counts 2 and is never split); UCS-2 70 UTF-16 units, 67 per part (a surrogate pair,
 * e.g. an emoji, counts 2 and is never split). */
#ifndef ACDM_SMSTEXT_H
#define ACDM_SMSTEXT_H

#include <stddef.h>
#include <stdint.h>

#define SMS_MAX_PARTS 16

typedef enum { SMS_GSM7 = 0, SMS_UCS2 = 1 } sms_coding;

typedef struct {
    sms_coding coding;
    char *text;                 /* malloc'd UTF-8 to send: substituted (GSM-7) or as given */
    size_t len;
    size_t units;               /* septets (GSM-7) or UTF-16 units (UCS-2) of the whole text */
    size_t n_parts;             /* 1 for a single SMS */
    size_t part_off[SMS_MAX_PARTS + 1]; /* byte offsets of each part in text; [n_parts] = len */
    long ucs2_cause;            /* byte offset in the input of the first character that forces
                                 * UCS-2, or -1 */
    uint32_t ucs2_char;         /* that character (a code point), or 0 */
} sms_split;

/* Splits a UTF-8 text. 0 on success (free with sms_split_free); -1 when the input is not
 * valid UTF-8 or holds a NUL; -2 when it needs more than max_parts parts (1..SMS_MAX_PARTS). */
int sms_split_text(const char *utf8, size_t len, size_t max_parts, sms_split *out);
void sms_split_free(sms_split *s);

/* The GSM-7 replacement for a code point outside GSM 03.38 (typographic quotes, dashes,
 * accented letters such as ë -> e), as UTF-8, or NULL when there is none. */
const char *sms_gsm7_substitute(uint32_t cp);

/* Septets of one code point in GSM-7: 1 (basic table), 2 (extension table), 0 (not GSM-7). */
int sms_gsm7_septets(uint32_t cp);

/* Encodes UTF-8 into unpacked GSM-7 septet values (escape 0x1B before extension characters).
 * Returns the number of septets, or -1 when a character is not in GSM 03.38 (no substitution
 * here), the UTF-8 is invalid or out is too small. */
long sms_gsm7_encode(const char *utf8, size_t len, unsigned char *out, size_t cap);
/* Decodes unpacked septets back to UTF-8 (NUL-terminated). Length, or -1 (bad septet, no room). */
long sms_gsm7_decode(const unsigned char *sept, size_t n, char *out, size_t cap);

/* Decodes one UTF-8 character at s (n bytes left): its length, or 0 when invalid. */
size_t sms_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

#endif
