/* test_sip.c -- the SIP channel's pure parts (channels/sip/audio.c, sipcfg.c): G.711 both ways,
 * WAV prompts in several formats converted to 8 kHz, the resampler keeping a tone's pitch,
 * RFC 4733 deduplication and SIP INFO bodies, and config errors that name the field. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../channels/sip/audio.c"
#include "../../channels/sip/sipcfg.c"

/* Power of freq in x (Goertzel), normalised by length. */
static double power(const int16_t *x, size_t n, double freq)
{
    double k = 2 * cos(2 * M_PI * freq / SIPA_RATE), s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double s0 = x[i] + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    return (s1 * s1 + s2 * s2 - k * s1 * s2) / ((double)n * n);
}

START_TEST(g711_round_trip_is_close_for_both_laws)
{
    for (int pt = 0; pt <= 8; pt += 8)
        for (int v = -32768; v <= 32767; v += 7) {
            uint8_t e;
            int16_t in = (int16_t)v, out;
            sipa_encode(pt, &in, &e, 1);
            sipa_decode(pt, &e, &out, 1);
            int err = abs(out - in), tol = abs(in) / 16 + 40;   /* logarithmic steps */
            ck_assert_msg(err <= tol, "pt %d: %d -> %d", pt, in, out);
        }
}
END_TEST

/* A WAV of a 1 kHz tone at 44.1 kHz stereo 16-bit (what an operator exports from an editor). */
static uint8_t *make_wav(unsigned rate, unsigned ch, unsigned bits, unsigned tag, double secs, size_t *len)
{
    size_t frames = (size_t)(rate * secs), bps = bits / 8, data = frames * ch * bps;
    uint8_t *b = calloc(1, 44 + data);
    memcpy(b, "RIFF", 4);
    uint32_t v = (uint32_t)(36 + data);
    memcpy(b + 4, &v, 4);
    memcpy(b + 8, "WAVEfmt ", 8);
    v = 16;
    memcpy(b + 16, &v, 4);
    uint16_t s = (uint16_t)tag;
    memcpy(b + 20, &s, 2);
    s = (uint16_t)ch;
    memcpy(b + 22, &s, 2);
    memcpy(b + 24, &rate, 4);
    v = (uint32_t)(rate * ch * bps);
    memcpy(b + 28, &v, 4);
    s = (uint16_t)(ch * bps);
    memcpy(b + 32, &s, 2);
    s = (uint16_t)bits;
    memcpy(b + 34, &s, 2);
    memcpy(b + 36, "data", 4);
    v = (uint32_t)data;
    memcpy(b + 40, &v, 4);
    for (size_t f = 0; f < frames; f++) {
        double x = 0.5 * sin(2 * M_PI * 1000 * (double)f / rate);
        for (unsigned c = 0; c < ch; c++) {
            uint8_t *p = b + 44 + (f * ch + c) * bps;
            if (tag == 3) { float y = (float)x; memcpy(p, &y, 4); }
            else if (bits == 16) { int16_t y = (int16_t)(x * 32767); memcpy(p, &y, 2); }
            else if (bits == 8) *p = (uint8_t)(128 + x * 127);
        }
    }
    *len = 44 + data;
    return b;
}

START_TEST(wav_prompts_become_8khz_mono_with_the_same_pitch)
{
    static const struct { unsigned rate, ch, bits, tag; } fmts[] = {
        {44100, 2, 16, 1}, {22050, 1, 16, 1}, {48000, 2, 32, 3}, {16000, 1, 8, 1}, {8000, 1, 16, 1}};
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        size_t len;
        uint8_t *w = make_wav(fmts[i].rate, fmts[i].ch, fmts[i].bits, fmts[i].tag, 0.5, &len);
        sipa_clip c;
        char err[160];
        ck_assert_int_eq(sipa_wav_decode(w, len, &c, err, sizeof err), 0);
        ck_assert_msg(c.n >= 3990 && c.n <= 4010, "%u Hz: %zu samples for 0.5 s", fmts[i].rate, c.n);
        double p1k = power(c.pcm + 400, 3200, 1000), p2k = power(c.pcm + 400, 3200, 2000);
        ck_assert_msg(p1k > 100 * p2k && p1k > 1e5, "%u Hz: the 1 kHz tone is lost (%g vs %g)", fmts[i].rate, p1k, p2k);
        sipa_clip_free(&c);
        free(w);
    }
    sipa_clip c;
    char err[160];
    ck_assert_int_eq(sipa_wav_decode((const uint8_t *)"RIFF....WAVEjunk", 16, &c, err, sizeof err), -1);
    ck_assert_str_eq(err, "WAV file without a fmt chunk");
}
END_TEST

START_TEST(downsampling_removes_what_8khz_cannot_carry)
{
    /* 6 kHz at 44.1 kHz would alias to 2 kHz at 8 kHz without the low-pass */
    size_t n = 44100;
    int16_t *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (int16_t)(16000 * sin(2 * M_PI * 6000 * (double)i / 44100));
    sipa_clip c;
    ck_assert_int_eq(sipa_resample(x, n, 44100, &c), 0);
    double rms = 0;
    for (size_t i = 100; i < 7100; i++) rms += (double)c.pcm[i] * c.pcm[i];
    rms = sqrt(rms / 7000);
    ck_assert_msg(rms < 800, "6 kHz leaked through as %g RMS", rms);
    sipa_clip_free(&c);
    free(x);
}
END_TEST

START_TEST(rfc4733_one_digit_per_press_and_info_bodies)
{
    sipa_dtmf_dedup d = {0};
    uint8_t start[4] = {5, 10, 0, 160}, upd[4] = {5, 10, 1, 64}, end[4] = {5, 0x80 | 10, 3, 32};
    ck_assert_int_eq(sipa_dtmf_feed(&d, 1000, start, 4), '5');
    ck_assert_int_eq(sipa_dtmf_feed(&d, 1000, upd, 4), 0);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(sipa_dtmf_feed(&d, 1000, end, 4), 0);
    /* the same key again is a new press (new timestamp); an end packet alone counts too */
    ck_assert_int_eq(sipa_dtmf_feed(&d, 2280, end, 4), '5');
    uint8_t star[4] = {10, 0x80, 0, 0}, bad[4] = {16, 0, 0, 0};
    ck_assert_int_eq(sipa_dtmf_feed(&d, 3000, star, 4), '*');
    ck_assert_int_eq(sipa_dtmf_feed(&d, 4000, bad, 4), 0);
    ck_assert_int_eq(sipa_dtmf_feed(&d, 5000, start, 3), 0);
    const char *r = "Signal=5\r\nDuration=160\r\n";
    ck_assert_int_eq(sipa_info_dtmf("application/dtmf-relay", r, strlen(r)), '5');
    r = "Signal= 11\r\n";
    ck_assert_int_eq(sipa_info_dtmf("application/dtmf-relay", r, strlen(r)), '#');
    r = "Duration=100\r\nSignal=*\r\n";
    ck_assert_int_eq(sipa_info_dtmf("application/dtmf-relay", r, strlen(r)), '*');
    ck_assert_int_eq(sipa_info_dtmf("application/dtmf", "7", 1), '7');
    ck_assert_int_eq(sipa_info_dtmf("application/dtmf-relay", "Signal=x", 8), 0);
    ck_assert_int_eq(sipa_info_dtmf("text/plain", "5", 1), 0);
}
END_TEST

static void bad_config(const char *json, const char *want)
{
    sipc_cfg c;
    char err[256];
    ck_assert_msg(sipc_parse(json, &c, err, sizeof err) < 0, "accepted: %s", json);
    ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" does not name \"%s\"", err, want);
}

START_TEST(config_errors_name_the_field)
{
    bad_config("{}", "listen is required");
    bad_config("{\"listen\":\"sctp:1.2.3.4:5\",\"numbers\":{\"1\":\"q\"}}", "listen");
    bad_config("{\"listen\":\"udp:example.org:5060\",\"numbers\":{\"1\":\"q\"}}", "IP address");
    bad_config("{\"listen\":\"udp:127.0.0.1:5060\"}", "numbers is required");
    bad_config("{\"listen\":\"udp:127.0.0.1:5060\",\"numbers\":{\"1\":{\"menu\":\"m\"}}}", "menu \"m\" is not in menus");
    bad_config("{\"listen\":\"udp:127.0.0.1:5060\",\"numbers\":{\"1\":\"q\"},\"codecs\":[\"G729\"]}", "codecs");
    bad_config("{\"listen\":\"udp:127.0.0.1:5060\",\"numbers\":{\"1\":\"q\"},\"rtp_ports\":\"9-8\"}", "rtp_ports");
    bad_config("{\"listen\":\"udp:127.0.0.1:5060\",\"numbers\":{\"1\":\"q\"},\"agents\":{\"a\":\"register\"}}",
               "needs a registrar");
    bad_config("{\"listen\":\"udp:127.0.0.1:5060\",\"numbers\":{\"1\":\"q\"},\"registrar\":{\"users\":{\"a\":\"short\"}}}",
               "at least 8");
    bad_config("{\"listen\":\"udp:127.0.0.1:5060\",\"numbers\":{\"1\":\"q\"},\"prompts\":{\"q\":{\"music\":\"la la\"}}}",
               "prompts.q.music");
    bad_config("{\"listen\":\"udp:127.0.0.1:5060\",\"numbers\":{\"1\":\"q\"},\"max_calls\":0}", "max_calls");
    bad_config("{\"listen\":\"udp:127.0.0.1:5060\",\"numbers\":{\"1\":\"q\"},\"colour\":1}", "unknown key \"colour\"");
    bad_config("{\"listen\":\"udp:127.0.0.1:5060\",\"numbers\":{\"1\":\"q\"},\"outbound\":{\"gateway\":\"x@y\",\"caller_id\":\"020\"}}",
               "outbound.gateway");
    bad_config("{\"listen\":\"udp:127.0.0.1:5060\",\"numbers\":{\"1\":\"q\"},\"outbound\":{\"gateway\":\"10.0.0.1:5060\",\"caller_id\":\"anonymous\"}}",
               "outbound.caller_id");
    sipc_cfg c;
    char err[256];
    ck_assert_int_eq(sipc_parse("{\"listen\":[\"udp:127.0.0.1:5060\",\"tcp:127.0.0.1:5060\"],\"numbers\":{\"1000\":\"algemeen\","
                                "\"*\":\"overig\"},\"prompts\":{\"default\":{\"welcome\":\"Welkom\"}}}", &c, err, sizeof err), 0);
    ck_assert_int_eq(c.n_listen, 2);
    ck_assert_str_eq(sipc_number_find(&c, "1000")->to.name, "algemeen");
    ck_assert_str_eq(sipc_number_find(&c, "5555")->to.name, "overig");
    ck_assert_str_eq(sipc_pset_find(&c, "algemeen")->welcome.text, "Welkom");
    ck_assert_int_eq(c.codecs[0], 8);
    sipc_free(&c);
}
END_TEST

#define WC_HEAD "{\"listen\":\"udp:127.0.0.1:5060\",\"numbers\":{\"1\":{\"menu\":\"m\"}},\"menus\":{\"m\":{\"prompt\":\"Kies 1.\"," \
                "\"choices\":{\"1\":\"paspoort\"},\"default\":\"algemeen\",\"repeats\":3,"


START_TEST(menu_when_closed_variant_parses_inherits_and_names_its_errors)
{
    bad_config(WC_HEAD "\"when_closed\":{\"prompt\":\"Gesloten.\"}}}}", "menus.m.when_closed.queue must be a queue name");
    bad_config(WC_HEAD "\"when_closed\":{\"queue\":\"algemeen\"}}}}", "menus.m.when_closed.prompt is required");
    bad_config(WC_HEAD "\"when_closed\":{\"queue\":\"algemeen\",\"prompt\":\"G.\",\"colour\":1}}}}",
               "menus.m.when_closed: unknown key \"colour\"");
    bad_config(WC_HEAD "\"when_closed\":{\"queue\":\"algemeen\",\"prompt\":\"G.\",\"choices\":{\"x\":\"q\"}}}}}",
               "menus.m.when_closed.choices: \"x\" is not a key");
    bad_config(WC_HEAD "\"when_closed\":{\"queue\":\"algemeen\",\"prompt\":\"G.\",\"choices\":{\"1\":{\"menu\":\"nee\"}}}}}}",
               "menus.m.when_closed: menu \"nee\" is not in menus");
    bad_config(WC_HEAD "\"when_closed\":{\"queue\":\"algemeen\",\"prompt\":\"G.\",\"default\":{\"menu\":\"m\"}}}}}",
               "menus.m.when_closed.default must be a queue");
    bad_config(WC_HEAD "\"when_closed\":\"algemeen\"}}}", "menus.m.when_closed must be an object");
    sipc_cfg c;
    char err[256];
    ck_assert_msg(sipc_parse(WC_HEAD "\"when_closed\":{\"queue\":\"algemeen\",\"prompt\":\"Gesloten.\","
                             "\"choices\":{\"1\":\"terugbellen\"}}}}}", &c, err, sizeof err) == 0, "%s", err);
    const sipc_menu *m = sipc_menu_find(&c, "m");
    ck_assert_ptr_nonnull(m->closed);
    ck_assert_str_eq(m->closed_queue, "algemeen");
    ck_assert_str_eq(m->closed->prompt.text, "Gesloten.");
    ck_assert_int_eq(m->closed->n_choices, 1);
    ck_assert_str_eq(m->closed->choices[0].to.name, "terugbellen");
    ck_assert_str_eq(m->closed->dflt.name, "algemeen");   /* the menu's default */
    ck_assert_int_eq(m->closed->repeats, 3);
    ck_assert_int_eq(m->closed->timeout_s, 5);
    sipc_free(&c);
    /* no choices: the closed text, then the default */
    ck_assert_msg(sipc_parse(WC_HEAD "\"when_closed\":{\"queue\":\"algemeen\",\"prompt\":\"Gesloten.\",\"default\":\"x\"}}}}",
                             &c, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(sipc_menu_find(&c, "m")->closed->n_choices, 0);
    ck_assert_str_eq(sipc_menu_find(&c, "m")->closed->dflt.name, "x");
    sipc_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sip");
    TCase *tc = tcase_create("sip");
    tcase_add_test(tc, g711_round_trip_is_close_for_both_laws);
    tcase_add_test(tc, wav_prompts_become_8khz_mono_with_the_same_pitch);
    tcase_add_test(tc, downsampling_removes_what_8khz_cannot_carry);
    tcase_add_test(tc, rfc4733_one_digit_per_press_and_info_bodies);
    tcase_add_test(tc, config_errors_name_the_field);
    tcase_add_test(tc, menu_when_closed_variant_parses_inherits_and_names_its_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
