/* plugin_cfg.h -- configs for the plugin host's unit tests (test_plugins.c, test_webchat.c):
 * channels given as name, plugin, config-json triples. Definitions: include it once per test. */
#ifndef ACDM_TEST_PLUGIN_CFG_H
#define ACDM_TEST_PLUGIN_CFG_H

#include <check.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "plugins/plugins.h"

/* A config with channels given as name, plugin, config-json triples (NULL-terminated); each
 * channel's queue is "algemeen". */
static acdm_config *cfg_make(const char *first, ...)
{
    acdm_config *c = calloc(1, sizeof *c);
    c->channels = calloc(8, sizeof *c->channels);
    va_list ap;
    va_start(ap, first);
    for (const char *name = first; name; name = va_arg(ap, const char *)) {
        ck_assert_uint_lt(c->n_channels, 8);
        acdm_channel_def *ch = &c->channels[c->n_channels++];
        ch->name = strdup(name);
        ch->plugin = strdup(va_arg(ap, const char *));
        ch->queue = strdup("algemeen");
        ch->config = json_loads(va_arg(ap, const char *), 0, NULL);
        ck_assert_ptr_nonnull(ch->config);
    }
    va_end(ap);
    return c;
}

static void cfg_free(acdm_config *c)
{
    for (size_t k = 0; k < c->n_channels; k++) {
        free(c->channels[k].name); free(c->channels[k].plugin); free(c->channels[k].queue);
        json_decref(c->channels[k].config);
    }
    free(c->channels);
    free(c);
}

/* Applies c to the host (as a reload does) and frees it. */
static int configure(acdm_plugins *p, acdm_config *c)
{
    int rc = acdm_plugins_configure(p, c);
    cfg_free(c);
    return rc;
}

#endif
