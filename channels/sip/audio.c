/* audio.c -- G.711, WAV reading, resampling, hold music and DTMF parsing for the SIP channel. */
#include "audio.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ------------------------------------------------------------ G.711 (ITU-T G.711) */

uint8_t sipa_lin2ulaw(int16_t s16)
{
    int s = s16, sign = 0, exp = 7;
    if (s < 0) { sign = 0x80; s = -s; }
    if (s > 32635) s = 32635;
    s += 0x84;
    for (int m = 0x4000; !(s & m) && exp > 0; m >>= 1) exp--;
    return (uint8_t)~(sign | (exp << 4) | ((s >> (exp + 3)) & 0x0f));
}

int16_t sipa_ulaw2lin(uint8_t u)
{
    u = (uint8_t)~u;
    int t = ((u & 0x0f) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    return (int16_t)((u & 0x80) ? (0x84 - t) : (t - 0x84));
}

uint8_t sipa_lin2alaw(int16_t s16)
{
    int s = s16 >> 3, mask;
    if (s >= 0) mask = 0xd5;
    else { mask = 0x55; s = -s - 1; }
    static const int seg_end[8] = {0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff};
    int seg = 0;
    while (seg < 8 && s > seg_end[seg]) seg++;
    if (seg >= 8) return (uint8_t)(0x7f ^ mask);
    int a = seg << 4;
    a |= seg < 2 ? (s >> 1) & 0x0f : (s >> seg) & 0x0f;
    return (uint8_t)(a ^ mask);
}

int16_t sipa_alaw2lin(uint8_t a)
{
    a ^= 0x55;
    int t = (a & 0x0f) << 4;
    int seg = (a & 0x70) >> 4;
    if (seg == 0) t += 8;
    else if (seg == 1) t += 0x108;
    else { t += 0x108; t <<= seg - 1; }
    return (int16_t)((a & 0x80) ? t : -t);
}

void sipa_encode(int pt, const int16_t *in, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = pt == SIPA_PT_PCMA ? sipa_lin2alaw(in[i]) : sipa_lin2ulaw(in[i]);
}

void sipa_decode(int pt, const uint8_t *in, int16_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = pt == SIPA_PT_PCMA ? sipa_alaw2lin(in[i]) : sipa_ulaw2lin(in[i]);
}

void sipa_clip_free(sipa_clip *c)
{
    free(c->pcm);
    c->pcm = NULL;
    c->n = 0;
}

/* ------------------------------------------------------------ resampling */

int sipa_resample(const int16_t *in, size_t n, unsigned rate, sipa_clip *out)
{
    out->pcm = NULL;
    out->n = 0;
    if (rate < 1000 || rate > 192000) return -1;
    if (rate == SIPA_RATE) {
        out->pcm = malloc((n ? n : 1) * sizeof *out->pcm);
        if (!out->pcm) return -1;
        if (n) memcpy(out->pcm, in, n * sizeof *in);
        out->n = n;
        return 0;
    }
    size_t m = (size_t)((double)n * SIPA_RATE / rate);
    out->pcm = malloc((m ? m : 1) * sizeof *out->pcm);
    if (!out->pcm) return -1;
    double step = (double)rate / SIPA_RATE;
    /* cut-off below the new Nyquist when downsampling; the kernel widens with the ratio */
    double fc = rate > SIPA_RATE ? 0.45 * SIPA_RATE / rate : 0.45;
    int half = (int)ceil(8.0 / (2.0 * fc));
    if (half > 400) half = 400;
    for (size_t j = 0; j < m; j++) {
        double t = (double)j * step;
        long c = (long)floor(t);
        double acc = 0, wsum = 0;
        for (long i = c - half + 1; i <= c + half; i++) {
            if (i < 0 || (size_t)i >= n) continue;
            double x = t - (double)i;
            double s = x == 0 ? 1.0 : sin(2 * M_PI * fc * x) / (M_PI * x) / (2 * fc);
            double w = 0.5 + 0.5 * cos(M_PI * x / half);          /* Hann window */
            acc += in[i] * s * w;
            wsum += s * w;
        }
        double v = wsum != 0 ? acc / wsum : 0;
        if (v > 32767) v = 32767;
        if (v < -32768) v = -32768;
        out->pcm[j] = (int16_t)lrint(v);
    }
    out->n = m;
    return 0;
}

/* ------------------------------------------------------------ WAV */

static uint32_t le32(const uint8_t *p) { return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24); }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

#define WAV_MAX_SECONDS 600

int sipa_wav_decode(const uint8_t *data, size_t len, sipa_clip *out, char *err, size_t errlen)
{
    out->pcm = NULL;
    out->n = 0;
    if (len < 12 || memcmp(data, "RIFF", 4) || memcmp(data + 8, "WAVE", 4)) {
        snprintf(err, errlen, "not a WAV file (no RIFF/WAVE header)");
        return -1;
    }
    const uint8_t *fmt = NULL, *pcm = NULL;
    size_t fmt_len = 0, pcm_len = 0;
    size_t off = 12;
    while (off + 8 <= len) {
        uint32_t clen = le32(data + off + 4);
        size_t avail = len - off - 8;
        if (!memcmp(data + off, "fmt ", 4)) {
            if (clen > avail) { snprintf(err, errlen, "WAV fmt chunk is truncated"); return -1; }
            fmt = data + off + 8;
            fmt_len = clen;
        } else if (!memcmp(data + off, "data", 4)) {
            pcm = data + off + 8;
            pcm_len = clen > avail ? avail : clen;     /* streamed WAVs (espeak-ng) say 0x7fffffff */
            if (fmt) break;
        }
        if (clen > avail) break;
        off += 8 + (size_t)clen + (clen & 1);
    }
    if (!fmt || fmt_len < 16) { snprintf(err, errlen, "WAV file without a fmt chunk"); return -1; }
    if (!pcm) { snprintf(err, errlen, "WAV file without a data chunk"); return -1; }
    unsigned tag = le16(fmt), ch = le16(fmt + 2), bits = le16(fmt + 14);
    uint32_t rate = le32(fmt + 4);
    if (tag == 0xFFFE && fmt_len >= 26) tag = le16(fmt + 24);   /* WAVE_FORMAT_EXTENSIBLE */
    if (ch < 1 || ch > 16) { snprintf(err, errlen, "WAV file with %u channels", ch); return -1; }
    if (rate < 1000 || rate > 192000) { snprintf(err, errlen, "WAV sample rate %u Hz is not supported", (unsigned)rate); return -1; }
    bool ok = (tag == 1 && (bits == 8 || bits == 16 || bits == 24 || bits == 32)) ||
              (tag == 3 && (bits == 32 || bits == 64)) || ((tag == 6 || tag == 7) && bits == 8);
    if (!ok) {
        snprintf(err, errlen, "WAV format %u with %u bits is not supported (PCM, float, A-law, mu-law)", tag, bits);
        return -1;
    }
    size_t bps = bits / 8, frame = bps * ch;
    size_t frames = pcm_len / frame;
    if (frames > (size_t)rate * WAV_MAX_SECONDS) { snprintf(err, errlen, "WAV file longer than %d s", WAV_MAX_SECONDS); return -1; }
    int16_t *mono = malloc((frames ? frames : 1) * sizeof *mono);
    if (!mono) { snprintf(err, errlen, "out of memory"); return -1; }
    for (size_t f = 0; f < frames; f++) {
        double acc = 0;
        for (unsigned c = 0; c < ch; c++) {
            const uint8_t *p = pcm + f * frame + c * bps;
            double v;
            if (tag == 6) v = sipa_alaw2lin(*p) / 32768.0;
            else if (tag == 7) v = sipa_ulaw2lin(*p) / 32768.0;
            else if (tag == 3 && bits == 32) { float x; memcpy(&x, p, 4); v = x; }
            else if (tag == 3) { double x; memcpy(&x, p, 8); v = x; }
            else if (bits == 8) v = (p[0] - 128) / 128.0;
            else if (bits == 16) v = (int16_t)le16(p) / 32768.0;
            else if (bits == 24) v = (double)((int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24) >> 8) / 8388608.0;
            else v = (int32_t)le32(p) / 2147483648.0;
            if (!(v == v)) v = 0;                                  /* NaN */
            acc += v;
        }
        double m = acc / ch * 32767.0;
        if (m > 32767) m = 32767;
        if (m < -32768) m = -32768;
        mono[f] = (int16_t)m;
    }
    int rc = sipa_resample(mono, frames, rate, out);
    free(mono);
    if (rc < 0) { snprintf(err, errlen, "out of memory"); return -1; }
    return 0;
}

void sipa_normalize(sipa_clip *c)
{
    int peak = 1;
    for (size_t i = 0; i < c->n; i++) {
        int v = c->pcm[i] < 0 ? -c->pcm[i] : c->pcm[i];
        if (v > peak) peak = v;
    }
    double g = 16000.0 / peak;
    if (g > 8) g = 8;
    for (size_t i = 0; i < c->n; i++) {
        double v = c->pcm[i] * g;
        c->pcm[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
    }
}

/* ------------------------------------------------------------ music on hold */

int sipa_music(sipa_clip *out, unsigned seconds)
{
    /* a slow arpeggio (C major, A minor, F major, G major), each note 0.5 s with a soft
     * attack and decay, two harmonics: pleasant enough, and never silent */
    static const double notes[] = {261.6, 329.6, 392.0, 329.6, 220.0, 261.6, 329.6, 261.6,
                                   174.6, 220.0, 261.6, 220.0, 196.0, 246.9, 293.7, 246.9};
    size_t n = (size_t)seconds * SIPA_RATE, note_len = SIPA_RATE / 2;
    out->pcm = malloc((n ? n : 1) * sizeof *out->pcm);
    out->n = 0;
    if (!out->pcm) return -1;
    for (size_t i = 0; i < n; i++) {
        size_t k = (i / note_len) % (sizeof notes / sizeof notes[0]);
        double t = (double)(i % note_len) / SIPA_RATE, f = notes[k];
        double env = t < 0.03 ? t / 0.03 : exp(-(t - 0.03) * 2.5);
        env = 0.35 + 0.65 * env;
        double v = sin(2 * M_PI * f * (double)i / SIPA_RATE) + 0.3 * sin(4 * M_PI * f * (double)i / SIPA_RATE);
        out->pcm[i] = (int16_t)(v * env * 5000);
    }
    out->n = n;
    return 0;
}

int sipa_ringback(sipa_clip *out)
{
    size_t n = 5 * SIPA_RATE;
    out->pcm = calloc(n, sizeof *out->pcm);
    out->n = 0;
    if (!out->pcm) return -1;
    for (size_t i = 0; i < SIPA_RATE; i++) out->pcm[i] = (int16_t)(sin(2 * M_PI * 425.0 * (double)i / SIPA_RATE) * 8000);
    out->n = n;
    return 0;
}

/* ------------------------------------------------------------ DTMF */

static const char tev_digits[] = "0123456789*#ABCD";

int sipa_tev_parse(const uint8_t *p, size_t len, sipa_tev *ev)
{
    memset(ev, 0, sizeof *ev);
    if (!p || len < 4 || p[0] > 15) return -1;
    ev->digit = tev_digits[p[0]];
    ev->end = (p[1] & 0x80) != 0;
    ev->duration = (uint16_t)(p[2] << 8 | p[3]);
    return 0;
}

char sipa_dtmf_feed(sipa_dtmf_dedup *d, uint32_t rtp_ts, const uint8_t *p, size_t len)
{
    sipa_tev ev;
    if (sipa_tev_parse(p, len, &ev) < 0) return 0;
    if (d->have && d->ts == rtp_ts) return 0;        /* an update or a repeated end of this press */
    d->have = true;
    d->ts = rtp_ts;
    return ev.digit;
}

static char dtmf_char(int c)
{
    c = toupper(c);
    return strchr(tev_digits, c) && c ? (char)c : 0;
}

char sipa_info_dtmf(const char *ctype, const char *body, size_t len)
{
    if (!ctype || !body) return 0;
    if (!strncasecmp(ctype, "application/dtmf-relay", 22)) {
        for (size_t i = 0; i + 7 <= len; i++) {
            if ((i == 0 || body[i - 1] == '\n' || body[i - 1] == '\r') && !strncasecmp(body + i, "signal", 6)) {
                size_t j = i + 6;
                while (j < len && (body[j] == ' ' || body[j] == '\t')) j++;
                if (j >= len || body[j] != '=') return 0;
                j++;
                while (j < len && (body[j] == ' ' || body[j] == '\t')) j++;
                if (j >= len) return 0;
                if (j + 1 < len && body[j] == '1' && body[j + 1] >= '0' && body[j + 1] <= '5' &&
                    (j + 2 >= len || !isalnum((unsigned char)body[j + 2])))
                    return tev_digits[10 + body[j + 1] - '0'];      /* Signal=10 .. 15 */
                return dtmf_char((unsigned char)body[j]);
            }
        }
        return 0;
    }
    if (!strncasecmp(ctype, "application/dtmf", 16)) {
        size_t i = 0;
        while (i < len && isspace((unsigned char)body[i])) i++;
        return i < len ? dtmf_char((unsigned char)body[i]) : 0;
    }
    return 0;
}
