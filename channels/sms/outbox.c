/* outbox.c -- the message channels' pending-id lists in kv and retry backoff (see outbox.h). */
#include "outbox.h"
#include "botstate.h"    /* botkv_get / botkv_put */

#include <jansson.h>
#include <string.h>

void outbox_list(const acdm_host *h, acdm_instance *inst, const char *key, const char *add,
                 const char *remove)
{
    json_t *arr = botkv_get(h, inst, key);
    if (!json_is_array(arr)) { json_decref(arr); arr = json_array(); }
    if (!arr) return;
    for (size_t i = json_array_size(arr); i-- > 0;) {
        const char *v = json_string_value(json_array_get(arr, i));
        if (v && ((remove && !strcmp(v, remove)) || (add && !strcmp(v, add)))) json_array_remove(arr, i);
    }
    if (add) json_array_append_new(arr, json_string(add));
    if (json_array_size(arr)) botkv_put(h, inst, key, arr, 0);
    else h->kv_set(inst, key, NULL, 0);
    json_decref(arr);
}

bool outbox_retry_delay(int retries, int retry_ms, int tries, uint64_t *delay_ms)
{
    if (tries >= retries) return false;
    *delay_ms = (uint64_t)retry_ms << (tries - 1 < 10 ? tries - 1 : 10);
    return true;
}
