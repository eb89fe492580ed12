/* small_struct.c -- test plugin whose descriptor struct_size stops before fields the core reads. */
#include <acdm/plugin.h>

static int t_init(acdm_instance *i, void *p, const acdm_host *h, const char *c, char *e, size_t n)
{ (void)i; (void)p; (void)h; (void)c; (void)e; (void)n; return 0; }
static int t_deliver(acdm_instance *i, void *p, const acdm_reply *r) { (void)i; (void)p; (void)r; return 0; }

/* as if built against an older header that ended at deliver */
static const acdm_plugin desc = {
    .struct_size = offsetof(acdm_plugin, on_event), .abi_major = ACDM_PLUGIN_ABI_MAJOR,
    .abi_minor = ACDM_PLUGIN_ABI_MINOR, .name = "small_struct", .version = "1", .kinds = "chat",
    .init = t_init, .deliver = t_deliver,
};
ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &desc; }
