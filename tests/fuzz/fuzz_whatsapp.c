/* fuzz_whatsapp.c -- libFuzzer entry point: arbitrary bytes as a WhatsApp Cloud API webhook body
 * (channels/whatsapp/wa_parse.c) and as its signature check (channels/sms/sig.c). A parsed batch
 * has only messages with an id, a sender and text; statuses with an id and a status. */
#include "../../channels/whatsapp/wa_parse.c"
#include "../../channels/sms/sig.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wa_batch b;
    char err[200];
    err[0] = '\0';
    if (wa_parse((const char *)data, size, &b, err, sizeof err) == 0) {
        for (size_t i = 0; i < b.n_msgs; i++) {
            const wa_message *m = &b.msgs[i];
            if (!m->id || (!m->from && !m->user_id) || !m->text) abort();
            if (m->type == WA_T_REACTION && !m->emoji) abort();
            (void)wa_media_cap(m->type);
        }
        for (size_t i = 0; i < b.n_sts; i++)
            if (!b.sts[i].id || !b.sts[i].status || wa_status_rank(b.sts[i].status) > 4) abort();
        if (b.n_msgs + b.n_sts + b.n_errs > 1000) abort();
        wa_batch_free(&b);
    } else if (!err[0] || b.root || b.msgs) {
        abort();
    }
    /* the signature: the right one passes, any other byte string does not */
    char hex[65], hdr[80];
    if (sig_hmac_sha256_hex("secret", 6, data, size, hex) == 0) {
        snprintf(hdr, sizeof hdr, "sha256=%s", hex);
        if (!sig_meta_ok(hdr, "secret", data, size)) abort();
        if (sig_meta_ok(hdr, "Secret", data, size)) abort();
    }
    char *h = malloc(size + 1);
    if (h) {
        memcpy(h, data, size);
        h[size] = '\0';
        (void)sig_meta_ok(h, "secret", data, size);
        free(h);
    }
    return 0;
}
