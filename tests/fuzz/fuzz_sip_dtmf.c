/* fuzz_sip_dtmf.c -- libFuzzer entry point: arbitrary bytes as DTMF the SIP channel reads
 * (channels/sip/audio.c): a SIP INFO body as application/dtmf-relay and application/dtmf, and a
 * stream of RFC 4733 telephone-event payloads through the deduplicator (8 bytes a packet: 4 of
 * RTP timestamp, 4 of payload). A digit is one of 0-9 * # A-D, and one timestamp gives at most
 * one digit. */
#include "../../channels/sip/audio.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_digit(char d)
{
    if (d && !strchr("0123456789*#ABCD", d)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size ? size : 1);
    if (!body) return 0;
    memcpy(body, data, size);
    check_digit(sipa_info_dtmf("application/dtmf-relay", body, size));
    check_digit(sipa_info_dtmf("application/dtmf", body, size));
    check_digit(sipa_info_dtmf("text/plain", body, size));
    free(body);
    sipa_dtmf_dedup dd = {0};
    uint32_t last_ts = 0;
    bool have = false;
    for (size_t off = 0; off + 8 <= size; off += 8) {
        uint32_t ts = (uint32_t)data[off] << 24 | (uint32_t)data[off + 1] << 16 | (uint32_t)data[off + 2] << 8 | data[off + 3];
        char d = sipa_dtmf_feed(&dd, ts, data + off + 4, 4);
        check_digit(d);
        if (d && have && ts == last_ts) abort();      /* a second digit for the same press */
        if (d) { have = true; last_ts = ts; }
    }
    sipa_tev ev;
    (void)sipa_tev_parse(data, size, &ev);
    return 0;
}
