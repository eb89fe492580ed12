/* api_agents.h -- lists of the configuration managed over REST: agents (R32: POST /api/v1/agents,
 * PUT and DELETE /api/v1/agents/{id}), topics (R41: POST /api/v1/topics, DELETE
 * /api/v1/topics/{name}) and reason codes (R24: POST /api/v1/reason-codes, PUT and DELETE
 * /api/v1/reason-codes/{code}). API-managed items live in fragments beside the main config file;
 * every change goes through acdm_engine_reload (all or nothing). */
#ifndef ACDM_API_AGENTS_H
#define ACDM_API_AGENTS_H

#include "api/api.h"

/* The fragment file's name inside acdm.d/. */
#define ACDM_AGENTS_FRAGMENT "50-agents-api.json"
/* Topics and reason codes added over the API. */
#define ACDM_LISTS_FRAGMENT "51-lists-api.json"

/* Registers the routes (called from acdm_api_register). */
int acdm_api_agents_register(acdm_engine *e);

#endif
