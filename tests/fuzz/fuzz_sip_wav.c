/* fuzz_sip_wav.c -- libFuzzer entry point: arbitrary bytes as a prompt's WAV file
 * (channels/sip/audio.c): chunk walking, format checks, sample decoding for every format and
 * the resampler to 8 kHz. The first byte also picks a rate for a direct resample. */
#include "../../channels/sip/audio.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    err[0] = 0;
    sipa_clip c;
    int rc = sipa_wav_decode(data, size, &c, err, sizeof err);
    if (rc != 0) {
        if (!err[0] || c.pcm) abort();
    } else {
        volatile int16_t sink = 0;
        for (size_t i = 0; i < c.n; i++) sink ^= c.pcm[i];
        (void)sink;
        sipa_normalize(&c);
        sipa_clip_free(&c);
    }
    if (size >= 2) {
        static const unsigned rates[] = {8000, 11025, 16000, 22050, 44100, 48000, 1000, 192000};
        size_t n = (size - 1) / 2;
        if (n > 4096) n = 4096;
        int16_t *in = malloc((n ? n : 1) * sizeof *in);
        if (!in) return 0;
        memcpy(in, data + 1, n * sizeof *in);
        sipa_clip o;
        if (sipa_resample(in, n, rates[data[0] & 7], &o) == 0) sipa_clip_free(&o);
        uint8_t enc[4096];
        int16_t dec[4096];
        sipa_encode(data[0] & 1 ? SIPA_PT_PCMA : SIPA_PT_PCMU, in, enc, n);
        sipa_decode(data[0] & 1 ? SIPA_PT_PCMA : SIPA_PT_PCMU, enc, dec, n);
        free(in);
    }
    return 0;
}
