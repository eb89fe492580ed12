/* dup_name_b.c -- one of two test plugins with the same name: the second one loaded is refused. */
#include <acdm/plugin.h>

static int t_init(acdm_instance *i, void *p, const acdm_host *h, const char *c, char *e, size_t n)
{ (void)i; (void)p; (void)h; (void)c; (void)e; (void)n; return 0; }
static int t_deliver(acdm_instance *i, void *p, const acdm_reply *r) { (void)i; (void)p; (void)r; return 0; }

static const acdm_plugin desc = ACDM_PLUGIN_INIT(.name = "dup_name", .version = "b",
                                                 .kinds = "sms", .init = t_init,
                                                 .deliver = t_deliver);
ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &desc; }
