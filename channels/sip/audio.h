/* audio.h -- the SIP channel's pure audio parts (no libre, no host): G.711, WAV reading and
 * resampling to 8 kHz, generated hold music, RFC 4733 and SIP INFO DTMF parsing with
 * deduplication. Fuzzed by tests/fuzz/fuzz_sip_wav.c and fuzz_sip_dtmf.c. */
#ifndef ACDM_SIP_AUDIO_H
#define ACDM_SIP_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIPA_RATE 8000
#define SIPA_FRAME 160           /* samples per 20 ms packet */
#define SIPA_PT_PCMU 0
#define SIPA_PT_PCMA 8

uint8_t sipa_lin2ulaw(int16_t s);
int16_t sipa_ulaw2lin(uint8_t u);
uint8_t sipa_lin2alaw(int16_t s);
int16_t sipa_alaw2lin(uint8_t a);
/* Encodes n samples as PCMU (pt 0) or PCMA (pt 8) into out (n bytes). */
void sipa_encode(int pt, const int16_t *in, uint8_t *out, size_t n);
void sipa_decode(int pt, const uint8_t *in, int16_t *out, size_t n);

/* 8 kHz mono 16-bit audio, malloc'd samples. */
typedef struct {
    int16_t *pcm;
    size_t n;
} sipa_clip;

void sipa_clip_free(sipa_clip *c);

/* Reads a WAV file's bytes (PCM 8/16/24/32-bit, IEEE float 32/64, A-law, mu-law; any channel
 * count (mixed down) and any rate from 1 kHz to 192 kHz (resampled to 8 kHz)). 0, or -1 with a
 * sentence in err. Never reads outside [data, data+len). Longest accepted: 10 minutes. */
int sipa_wav_decode(const uint8_t *data, size_t len, sipa_clip *out, char *err, size_t errlen);

/* Resamples mono 16-bit samples from rate to 8 kHz (windowed sinc, low-passed). */
int sipa_resample(const int16_t *in, size_t n, unsigned rate, sipa_clip *out);

/* Generated music on hold: a calm melody of soft tones, seconds long, never silent > 0.2 s. */
int sipa_music(sipa_clip *out, unsigned seconds);

/* Ringback as a caller in Europe knows it: 425 Hz, 1 s on, 4 s off (one 5 s cycle). */
int sipa_ringback(sipa_clip *out);

/* Peak-normalises a clip to about -6 dBFS (espeak-ng speaks quietly). */
void sipa_normalize(sipa_clip *c);

/* ------------------------------------------------------------ DTMF */

/* An RFC 4733 telephone-event payload: the digit ('0'..'9', '*', '#', 'A'..'D') or 0 when the
 * payload is not a DTMF event (shorter than 4 bytes, event > 15). */
typedef struct {
    char digit;
    bool end;
    uint16_t duration;
} sipa_tev;

int sipa_tev_parse(const uint8_t *p, size_t len, sipa_tev *ev);

/* Deduplicates RFC 4733: one key press is many packets with one RTP timestamp (updates, and
 * the end packet sent three times). Returns the digit once per press, else 0. */
typedef struct {
    bool have;
    uint32_t ts;
} sipa_dtmf_dedup;

char sipa_dtmf_feed(sipa_dtmf_dedup *d, uint32_t rtp_ts, const uint8_t *p, size_t len);

/* A SIP INFO body with DTMF: application/dtmf-relay ("Signal=5\r\nDuration=160") or
 * application/dtmf ("5"). The digit, or 0 when the body holds none. */
char sipa_info_dtmf(const char *ctype, const char *body, size_t len);

#endif
