/* fuzz_config.c -- libFuzzer entry point: arbitrary bytes as a config document through acdm_config_parse. */
#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[4096];
    acdm_config *cfg = NULL;
    int rc = acdm_config_parse("fuzz.json", text, &cfg, err, sizeof err);
    /* the contract: success gives a config, failure gives none and a bounded message */
    if ((rc == 0) != (cfg != NULL) || strlen(err) >= sizeof err) abort();
    if (rc != 0 && err[0] == '\0') abort();
    if (cfg) {
        /* touch what the core reads after a load */
        for (size_t i = 0; i < cfg->n_queues; i++) {
            if (acdm_config_queue(cfg, cfg->queues[i].name) == NULL) abort();
            for (int k = 0; k < ACDM_KIND__COUNT; k++)
                if (!acdm_config_closed_text(&cfg->queues[i], (acdm_kind)k)) abort();
        }
        for (size_t i = 0; i < cfg->n_agents; i++)
            if (acdm_config_agent(cfg, cfg->agents[i].id) == NULL) abort();
        acdm_config_free(cfg);
    }
    free(text);
    return 0;
}
