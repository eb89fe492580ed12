/* api_super.h -- REST routes for supervisors and agents at work (registered in api.c):
 * bericht search and thread, topics, reason codes, one agent, supervisors' actions on agents. */
#ifndef ACDM_API_SUPER_H
#define ACDM_API_SUPER_H

#include "api/api.h"

/* api.c's role check: replies 401/403 and returns false when the token's role is not in roles
 * ("admin supervisor agent channel"). */
bool acdm_api_authorize(acdm_engine *e, acdm_req *r, const char *roles, acdm_principal *who);

/* Parses a request body as a JSON object whose keys are all in known (NULL-terminated); an
 * empty body is {} when allow_empty. NULL after a 400 problem+json naming what is wrong
 * (malformed JSON with line and column, not an object, an unknown field with the list). */
json_t *acdm_api_body_object(acdm_req *r, bool allow_empty, const char *const *known);

/* Checks topics (a JSON array) against the configured list: 0, or ACDM_EINVAL with a sentence
 * naming the first bad entry in err. */
int acdm_topics_check(const acdm_config *cfg, json_t *topics, char *err, size_t errlen);

void acdm_api_get_berichten(void *user, acdm_req *r);
void acdm_api_get_bericht_messages(void *user, acdm_req *r);
void acdm_api_post_bericht_topics(void *user, acdm_req *r);
void acdm_api_get_topics(void *user, acdm_req *r);
/* {"topics": [...]}: the configured topics in order (GET /api/v1/topics, after a POST). */
json_t *acdm_api_topics_json(const acdm_config *cfg);
void acdm_api_get_reason_codes(void *user, acdm_req *r);
void acdm_api_get_agent(void *user, acdm_req *r);
void acdm_api_post_agent_login(void *user, acdm_req *r);
void acdm_api_post_agent_logout(void *user, acdm_req *r);
void acdm_api_post_agent_ready(void *user, acdm_req *r);
void acdm_api_post_agent_not_ready(void *user, acdm_req *r);
void acdm_api_put_agent_queue(void *user, acdm_req *r);
void acdm_api_delete_agent_queue(void *user, acdm_req *r);
/* api_waiting.c: GET /api/v1/queues/{name}/waiting */
void acdm_api_get_queue_waiting(void *user, acdm_req *r);

/* Whether agent accepted the bericht (its JSON with "events") last: "have or had last". */
bool acdm_api_agent_had_last(json_t *bericht, const char *agent);

void acdm_api_post_outbound(void *user, acdm_req *r);

#endif
