/* fuzz_utf8.c -- libFuzzer entry point: arbitrary bytes through acdm_utf8_valid (the check a
 * websocket text message passes before it is handed on) and acdm_utf8_chars. */
#include "base/acdm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool ok = acdm_utf8_valid((const char *)data, size);
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t chars = acdm_utf8_chars(text);
    size_t nul = strlen(text);
    /* the contract: never more characters than bytes; valid text without NUL has at least
     * one character per 4 bytes; a valid prefix split at a character boundary stays valid */
    if (chars > nul) abort();
    if (ok && nul == size && chars * 4 < size) abort();
    if (ok) {
        size_t cut = size / 2;
        while (cut > 0 && ((unsigned char)text[cut] & 0xc0) == 0x80) cut--;
        if (!acdm_utf8_valid(text, cut)) abort();
    }
    free(text);
    return 0;
}
