/* bad_abi_major.c -- test plugin built for a future ABI major: the loader must refuse it. */
#include <acdm/plugin.h>

static int t_init(acdm_instance *i, void *p, const acdm_host *h, const char *c, char *e, size_t n)
{ (void)i; (void)p; (void)h; (void)c; (void)e; (void)n; return 0; }
static int t_deliver(acdm_instance *i, void *p, const acdm_reply *r) { (void)i; (void)p; (void)r; return 0; }

static const acdm_plugin desc = {
    .struct_size = sizeof(acdm_plugin), .abi_major = ACDM_PLUGIN_ABI_MAJOR + 1, .abi_minor = 0,
    .name = "bad_abi_major", .version = "1", .kinds = "chat", .init = t_init, .deliver = t_deliver,
};
ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &desc; }
