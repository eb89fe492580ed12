/* fuzz_twilio.c -- libFuzzer entry point: arbitrary bytes as a Twilio-compatible form post to
 * the sms channel (channels/sms/smsproto.c, sig.c): the form decoder, the inbound message
 * reader and the X-Twilio-Signature check over the decoded fields. */
#include "../../channels/sms/smsproto.c"
#include "../../channels/sms/smstext.c"
#include "../../channels/sms/sig.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sms_form f;
    if (sms_form_parse((const char *)data, size, &f) < 0) return 0;
    if (f.n > 200) abort();
    twilio_in t;
    char err[200];
    if (twilio_in_parse(&f, &t, err, sizeof err) == 0) {
        if (!t.sid || !t.from || !t.body || t.num_media < 0 || t.num_media > 10) abort();
        for (int i = 0; i < t.num_media; i++) if (!t.media_url[i]) abort();
    }
    char sig[29];
    const char *url = "https://kcc.example.nl/channels/sms1/sms";
    if (sig_twilio_sign("token", url, (const char *const *)f.names, (const char *const *)f.values, f.n, sig) == 0) {
        if (!sig_twilio_ok(sig, "token", url, (const char *const *)f.names, (const char *const *)f.values, f.n)) abort();
        if (sig_twilio_ok(sig, "other", url, (const char *const *)f.names, (const char *const *)f.values, f.n)) abort();
    }
    (void)twilio_status_state(sms_form_get(&f, "MessageStatus"));
    sms_form_free(&f);
    return 0;
}
