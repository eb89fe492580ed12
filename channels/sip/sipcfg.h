/* sipcfg.h -- the SIP channel's instance config, parsed and validated (pure: jansson only;
 * fuzzed by tests/fuzz/fuzz_sip_config.c). docs/operations.md describes every key. */
#ifndef ACDM_SIP_CFG_H
#define ACDM_SIP_CFG_H

#include <stdbool.h>
#include <stddef.h>

#define SIPC_MAX_LISTEN 8
#define SIPC_MAX_CODECS 2

/* A prompt: typed text (spoken by espeak-ng) or a WAV file. Both NULL: none. */
typedef struct {
    char *text;
    char *file;
} sipc_prompt;

/* The announcements of one queue ("default": every queue without its own). */
typedef struct {
    char *queue;
    sipc_prompt welcome, wait, music, closed;
    int wait_interval_s;       /* music between two "een moment geduld" */
    bool position;             /* announce the caller's position when it changes */
    bool estimate;             /* ... and the expected wait in time boxes */
} sipc_pset;

/* Where a dialled number or a menu choice leads. */
typedef enum { SIPC_T_QUEUE = 0, SIPC_T_MENU } sipc_ttype;
typedef struct {
    sipc_ttype type;
    char *name;
} sipc_target;

typedef struct {
    char key;                  /* '0'..'9', '*', '#' */
    sipc_target to;
} sipc_choice;

#define SIPC_MAX_QSTATE 32    /* distinct queues the menus' when_closed may name */

typedef struct sipc_menu {
    char *name;
    sipc_prompt prompt;
    sipc_choice choices[12];
    int n_choices;
    sipc_target dflt;          /* after `repeats` rounds without a valid key */
    int timeout_s, repeats;
    /* the time-table variant: while `closed_queue` is closed (by its schedule, a holiday or a
     * person, as host->queue_info says), a caller reaching the menu gets `closed` instead */
    char *closed_queue;
    struct sipc_menu *closed;
} sipc_menu;

typedef struct {
    char *number;              /* the dialled number (Request-URI user), or "*" for any */
    sipc_target to;
} sipc_number;

typedef struct {
    char *id;                  /* agent id */
    char *phone;               /* "register" or a sip: URI */
} sipc_agent;

typedef struct {
    char *user, *password;
} sipc_user;

typedef struct {
    int transport;             /* 0 udp, 1 tcp */
    char host[64];
    int port;
} sipc_listen;

typedef struct {
    sipc_listen listen[SIPC_MAX_LISTEN];
    int n_listen;
    int rtp_min, rtp_max;
    sipc_number *numbers;
    int n_numbers;
    sipc_menu *menus;
    int n_menus;
    int codecs[SIPC_MAX_CODECS];   /* payload types in preference order: 8 PCMA, 0 PCMU */
    int n_codecs;
    sipc_pset *psets;
    int n_psets;
    char *realm;
    sipc_user *users;
    int n_users;
    int reg_max_expires;
    sipc_agent *agents;
    int n_agents;
    int max_calls, retry_after_s, ring_timeout_s, rtp_timeout_s, session_expires_s, session_min_se_s;
    char *tts_voice;           /* espeak-ng voice, default "nl" */
    char *tts_command;         /* default "espeak-ng" */
    char *user_agent;
    char *out_gateway;         /* outbound: "host:port" numbers are dialled at (sip:<number>@gateway) */
    char *out_caller_id;       /* outbound: the From number (the municipality's), never anonymous */
    int out_ring_timeout_s;    /* outbound: how long a number a call is transferred to may ring */
    char callback_key;         /* the key a waiting caller presses to be called back, or 0 */
    char *callback_text;       /* what they hear then, before acdm hangs up */
    bool callback_keep_place;  /* the call's bericht keeps waiting (original queue time) and is called back */
} sipc_cfg;

/* 0, or -1 with a sentence naming the field in err. */
int sipc_parse(const char *json_text, sipc_cfg *c, char *err, size_t errlen);
void sipc_free(sipc_cfg *c);

const sipc_number *sipc_number_find(const sipc_cfg *c, const char *dialled);
const sipc_menu *sipc_menu_find(const sipc_cfg *c, const char *name);
const sipc_pset *sipc_pset_find(const sipc_cfg *c, const char *queue);
const sipc_agent *sipc_agent_find(const sipc_cfg *c, const char *id);
const sipc_user *sipc_user_find(const sipc_cfg *c, const char *user);

/* True when two configs need the same sockets (listen, rtp_ports): a reload then applies in place. */
bool sipc_same_sockets(const sipc_cfg *a, const sipc_cfg *b);

#endif
