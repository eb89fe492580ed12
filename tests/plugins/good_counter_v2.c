/* good_counter_v2.c -- good_counter.c built as version 2.0: a second build of the same plugin,
 * for the tests that replace a loaded plugin (overwritten file, acdmctl plugin reload). */
#define GOOD_COUNTER_VERSION "2.0"
#include "good_counter.c"
