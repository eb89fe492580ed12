/* missing_deliver.c -- test plugin without the mandatory deliver callback: refused at load. */
#include <acdm/plugin.h>

static int t_init(acdm_instance *i, void *p, const acdm_host *h, const char *c, char *e, size_t n)
{ (void)i; (void)p; (void)h; (void)c; (void)e; (void)n; return 0; }

static const acdm_plugin desc = ACDM_PLUGIN_INIT(.name = "missing_deliver", .version = "1",
                                                 .kinds = "chat", .init = t_init);
ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &desc; }
