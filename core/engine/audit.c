/* audit.c -- the audit log (R32): supervisor and admin actions as events of type "audit". */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

void acdm_engine_audit(acdm_engine *e, const acdm_principal *who, const char *action,
                       const char *target, json_t *extra)
{
    if (!e || !e->store || !action) return;
    const char *actor = who && who->name[0] ? who->name : "system";
    const char *role = who && who->role[0] ? who->role : "system";
    json_t *d = json_object();
    if (json_is_object(extra)) json_object_update(d, extra);
    json_object_set_new(d, "actor", json_string(actor));
    json_object_set_new(d, "role", json_string(role));
    json_object_set_new(d, "action", json_string(action));
    json_object_set_new(d, "target", target ? json_string(target) : json_null());
    char *dj = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    const char *agent = who && !strcmp(who->role, "agent") ? who->name : NULL;
    acdm_event_row ev = {.ts_ms = acdm_now_ms(), .type = "audit", .agent = agent, .detail_json = dj};
    acdm_store_append_event(e->store, &ev);
    free(dj);
}
