/* no_entry.c -- test plugin that exports no acdm_plugin_entry symbol: refused at load. */
#include <acdm/plugin.h>

ACDM_PLUGIN_EXPORT int acdm_plugin_entry_misspelled(void);
ACDM_PLUGIN_EXPORT int acdm_plugin_entry_misspelled(void) { return 42; }
