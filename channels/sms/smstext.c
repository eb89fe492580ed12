/* smstext.c -- GSM-7 / UCS-2 encoding and concatenated parts (see smstext.h). */
#include "smstext.h"

#include <stdlib.h>
#include <string.h>

/* GSM 03.38 basic table: septet value -> code point (0x1B is the escape, never a character). */
static const uint32_t gsm_basic[128] = {
    0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0x0A, 0xD8, 0xF8, 0x0D, 0xC5, 0xE5,
    0x394, 0x5F, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, 0, 0xC6, 0xE6, 0xDF, 0xC9,
    0x20, 0x21, 0x22, 0x23, 0xA4, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F,
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F,
    0xA1, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F,
    0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0xC4, 0xD6, 0xD1, 0xDC, 0xA7,
    0xBF, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F,
    0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0xE4, 0xF6, 0xF1, 0xFC, 0xE0,
};

/* The extension table (after 0x1B): septet, code point. */
static const struct { unsigned char sept; uint32_t cp; } gsm_ext[] = {
    {0x0A, 0x0C}, {0x14, 0x5E}, {0x28, 0x7B}, {0x29, 0x7D}, {0x2F, 0x5C},
    {0x3C, 0x5B}, {0x3D, 0x7E}, {0x3E, 0x5D}, {0x40, 0x7C}, {0x65, 0x20AC},
};
#define N_EXT (sizeof gsm_ext / sizeof gsm_ext[0])

/* Substitutions (as courier and most gateways do): typography and accents outside GSM 03.38. */
static const struct { uint32_t cp; const char *to; } gsm_subst[] = {
    {0x09, " "}, {0xA0, " "}, {0x2002, " "}, {0x2003, " "}, {0x2009, " "}, {0x200B, ""},
    {0x2018, "'"}, {0x2019, "'"}, {0x201A, "'"}, {0x201B, "'"}, {0x2032, "'"}, {0xB4, "'"},
    {0x60, "'"}, {0x201C, "\""}, {0x201D, "\""}, {0x201E, "\""}, {0xAB, "\""}, {0xBB, "\""},
    {0x2010, "-"}, {0x2011, "-"}, {0x2012, "-"}, {0x2013, "-"}, {0x2014, "-"}, {0x2212, "-"},
    {0x2026, "..."}, {0x2022, "-"}, {0xB7, "."},
    {0xE1, "a"}, {0xE2, "a"}, {0xE3, "a"}, {0xC0, "A"}, {0xC1, "A"}, {0xC2, "A"}, {0xC3, "A"},
    {0xEB, "e"}, {0xEA, "e"}, {0xC8, "E"}, {0xCA, "E"}, {0xCB, "E"},
    {0xED, "i"}, {0xEE, "i"}, {0xEF, "i"}, {0xCC, "I"}, {0xCD, "I"}, {0xCE, "I"}, {0xCF, "I"},
    {0xF3, "o"}, {0xF4, "o"}, {0xF5, "o"}, {0xD2, "O"}, {0xD3, "O"}, {0xD4, "O"}, {0xD5, "O"},
    {0xFA, "u"}, {0xFB, "u"}, {0xD9, "U"}, {0xDA, "U"}, {0xDB, "U"},
    {0xE7, "\xc3\x87"}, {0xFD, "y"}, {0xFF, "y"}, {0xDD, "Y"}, {0x133, "ij"}, {0x132, "IJ"},
};
#define N_SUBST (sizeof gsm_subst / sizeof gsm_subst[0])

size_t sms_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (!n) return 0;
    unsigned c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) { *cp = c; return c ? 1 : 0; }
    if ((c & 0xE0) == 0xC0) { len = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

static int basic_septet(uint32_t cp)
{
    if (cp >= 0x20 && cp < 0x80 && cp != 0x24 && cp != 0x40 && cp != 0x5B && cp != 0x5C &&
        cp != 0x5D && cp != 0x5E && cp != 0x5F && cp != 0x60 && cp < 0x7B)
        return (int)cp;                     /* the ASCII range that maps to itself */
    for (int i = 0; i < 128; i++)
        if (i != 0x1B && gsm_basic[i] == cp) return i;
    return -1;
}

static int ext_septet(uint32_t cp)
{
    for (size_t i = 0; i < N_EXT; i++)
        if (gsm_ext[i].cp == cp) return gsm_ext[i].sept;
    return -1;
}

int sms_gsm7_septets(uint32_t cp)
{
    if (basic_septet(cp) >= 0) return 1;
    if (ext_septet(cp) >= 0) return 2;
    return 0;
}

const char *sms_gsm7_substitute(uint32_t cp)
{
    for (size_t i = 0; i < N_SUBST; i++)
        if (gsm_subst[i].cp == cp) return gsm_subst[i].to;
    return NULL;
}

long sms_gsm7_encode(const char *utf8, size_t len, unsigned char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)utf8;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = sms_utf8_next(s + i, len - i, &cp);
        if (!l) return -1;
        i += l;
        int b = basic_septet(cp);
        if (b >= 0) {
            if (o + 1 > cap) return -1;
            out[o++] = (unsigned char)b;
            continue;
        }
        int e = ext_septet(cp);
        if (e < 0 || o + 2 > cap) return -1;
        out[o++] = 0x1B;
        out[o++] = (unsigned char)e;
    }
    return (long)o;
}

static size_t put_utf8(uint32_t cp, char *out)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

long sms_gsm7_decode(const unsigned char *sept, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = 0;
        if (sept[i] > 0x7F) return -1;
        if (sept[i] == 0x1B) {
            if (i + 1 >= n) return -1;
            for (size_t k = 0; k < N_EXT; k++)
                if (gsm_ext[k].sept == sept[i + 1]) cp = gsm_ext[k].cp;
            if (!cp) return -1;
            i++;
        } else {
            cp = gsm_basic[sept[i]];
        }
        if (o + 5 > cap) return -1;
        o += put_utf8(cp, out + o);
    }
    if (o >= cap) return -1;
    out[o] = '\0';
    return (long)o;
}

void sms_split_free(sms_split *s)
{
    free(s->text);
    memset(s, 0, sizeof *s);
}

/* Cuts text into parts of at most `per` units; unit_of gives a character's units. */
static int cut_parts(sms_split *s, size_t single, size_t per, size_t max_parts)
{
    const unsigned char *t = (const unsigned char *)s->text;
    s->n_parts = 1;
    s->part_off[0] = 0;
    if (s->units <= single) { s->part_off[1] = s->len; return 0; }
    size_t used = 0;
    for (size_t i = 0; i < s->len;) {
        uint32_t cp;
        size_t l = sms_utf8_next(t + i, s->len - i, &cp);
        size_t u = s->coding == SMS_GSM7 ? (size_t)sms_gsm7_septets(cp) : (cp >= 0x10000 ? 2 : 1);
        if (used + u > per) {
            if (s->n_parts >= max_parts) return -2;
            s->part_off[s->n_parts++] = i;
            used = 0;
        }
        used += u;
        i += l;
    }
    s->part_off[s->n_parts] = s->len;
    return 0;
}

int sms_split_text(const char *utf8, size_t len, size_t max_parts, sms_split *out)
{
    memset(out, 0, sizeof *out);
    out->ucs2_cause = -1;
    if (max_parts < 1) max_parts = 1;
    if (max_parts > SMS_MAX_PARTS) max_parts = SMS_MAX_PARTS;
    const unsigned char *s = (const unsigned char *)utf8;
    /* pass 1: is it GSM-7 after substitutions? (a substitution is at most 3 bytes from >= 1) */
    char *sub = malloc(len * 3 + 1);
    if (!sub) return -1;
    size_t o = 0, septets = 0, u16 = 0;
    int gsm = 1;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = sms_utf8_next(s + i, len - i, &cp);
        if (!l) { free(sub); return -1; }
        u16 += cp >= 0x10000 ? 2 : 1;
        int n = sms_gsm7_septets(cp);
        if (n) {
            memcpy(sub + o, s + i, l);
            o += l;
            septets += (size_t)n;
        } else {
            const char *r = sms_gsm7_substitute(cp);
            if (r) {
                size_t rl = strlen(r);
                memcpy(sub + o, r, rl);
                o += rl;
                for (size_t k = 0; k < rl;) {
                    uint32_t rc;
                    size_t q = sms_utf8_next((const unsigned char *)r + k, rl - k, &rc);
                    septets += (size_t)sms_gsm7_septets(rc);
                    k += q;
                }
            } else if (gsm) {
                gsm = 0;
                out->ucs2_cause = (long)i;
                out->ucs2_char = cp;
            }
        }
        i += l;
    }
    if (gsm) {
        sub[o] = '\0';
        out->coding = SMS_GSM7;
        out->text = sub;
        out->len = o;
        out->units = septets;
        int rc = cut_parts(out, 160, 153, max_parts);
        if (rc) sms_split_free(out);
        return rc;
    }
    memcpy(sub, utf8, len);
    sub[len] = '\0';
    out->coding = SMS_UCS2;
    out->text = sub;
    out->len = len;
    out->units = u16;
    long cause = out->ucs2_cause;
    uint32_t cch = out->ucs2_char;
    int rc = cut_parts(out, 70, 67, max_parts);
    if (rc) { sms_split_free(out); return rc; }
    out->ucs2_cause = cause;
    out->ucs2_char = cch;
    return 0;
}
