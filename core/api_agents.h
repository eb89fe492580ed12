/* api_agents.h -- agent management over REST (R32): POST /api/v1/agents, PUT and DELETE
 * /api/v1/agents/{id}. API-managed agents live in the fragment acdm.d/50-agents-api.json beside
 * the main config file; every change goes through acdm_engine_reload (all or nothing). */
#ifndef ACDM_API_AGENTS_H
#define ACDM_API_AGENTS_H

#include "engine.h"

/* The fragment file's name inside acdm.d/. */
#define ACDM_AGENTS_FRAGMENT "50-agents-api.json"

/* Registers the three routes (called from acdm_api_register). */
int acdm_api_agents_register(acdm_engine *e);

#endif
