/* fuzz_sip_config.c -- libFuzzer entry point: arbitrary bytes as the SIP channel's instance
 * config (channels/sip/sipcfg.c): listen addresses, RTP range, numbers, IVR menus and their
 * targets, prompts, registrar users, agents. Success gives lookups that work; failure gives a
 * bounded, non-empty sentence and nothing to free. */
#include "../../channels/sip/sipcfg.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char err[256];
    err[0] = 0;
    sipc_cfg c;
    int rc = sipc_parse(text, &c, err, sizeof err);
    if (rc != 0) {
        if (!err[0] || strlen(err) >= sizeof err) abort();
        if (c.numbers || c.menus || c.psets || c.users || c.agents) abort();   /* freed on failure */
    } else {
        if (c.n_listen < 1 || c.rtp_min >= c.rtp_max || c.n_codecs < 1 || c.n_numbers < 1) abort();
        for (int i = 0; i < c.n_numbers; i++) {
            if (!sipc_number_find(&c, c.numbers[i].number)) abort();
            if (c.numbers[i].to.type == SIPC_T_MENU && !sipc_menu_find(&c, c.numbers[i].to.name)) abort();
        }
        for (int i = 0; i < c.n_menus; i++)
            for (int k = 0; k < c.menus[i].n_choices; k++)
                if (c.menus[i].choices[k].to.type == SIPC_T_MENU && !sipc_menu_find(&c, c.menus[i].choices[k].to.name))
                    abort();
        for (int i = 0; i < c.n_agents; i++)
            if (!sipc_agent_find(&c, c.agents[i].id)) abort();
        (void)sipc_pset_find(&c, "algemeen");
        (void)sipc_same_sockets(&c, &c);
        sipc_free(&c);
    }
    free(text);
    return 0;
}
