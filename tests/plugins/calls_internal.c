/* calls_internal.c -- a test plugin that calls a core internal (acdm_log_raw, a function of
 * acdmd outside the plugin ABI) instead of host->log: acdmd exports nothing to plugins, so this
 * plugin must be refused at load with a reason naming the function. */
#include <acdm/plugin.h>

void acdm_log_raw(int level, const char *who, const char *fmt, ...);

static int ci_init(acdm_instance *inst, void *priv, const acdm_host *host, const char *cfg,
                   char *err, size_t errlen)
{
    (void)inst; (void)priv; (void)host; (void)cfg; (void)err; (void)errlen;
    acdm_log_raw(2, "calls_internal", "reaching into the core");
    return 0;
}

static int ci_deliver(acdm_instance *inst, void *priv, const acdm_reply *r)
{
    (void)inst; (void)priv; (void)r;
    return 0;
}

static const acdm_plugin desc = ACDM_PLUGIN_INIT(.name = "calls_internal", .version = "1",
    .kinds = "chat", .init = ci_init, .deliver = ci_deliver);

ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &desc; }
