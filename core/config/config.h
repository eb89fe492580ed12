/* config.h -- the parsed, fully validated configuration (conf/acdm.json + conf/acdm.d/NAME.json fragments). */
#ifndef ACDM_CONFIG_H
#define ACDM_CONFIG_H

#include "base/acdm.h"
#include <jansson.h>

/* One opening interval on a weekday, in minutes from local midnight, [from, to). */
typedef struct { int16_t from_min, to_min; } acdm_interval;

#define ACDM_MAX_INTERVALS 8

typedef struct {
    char *name;
    acdm_interval week[7][ACDM_MAX_INTERVALS]; /* index = tm_wday, 0 = Sunday */
    uint8_t n_week[7];
    char (*holidays)[11];  /* "YYYY-MM-DD", closed all day */
    size_t n_holidays;
} acdm_schedule_def;

/* A skill with a level (1..100). As a requirement: the agent needs level >= level. */
typedef struct { char *name; int level; } acdm_skill;

typedef struct {
    char *name;             /* unique, [A-Za-z0-9_.-], <= ACDM_NAME_MAX */
    char *title;            /* display name, may be NULL */
    acdm_strategy strategy; /* default longest-idle */
    int priority;           /* higher first across queues; default 0 */
    int sl_target_pct;      /* service level: pct answered within sl_seconds; default 80 */
    int sl_seconds;         /* default 20 */
    bool closed;            /* closed by the supervisor (manual); default false */
    char closed_by[ACDM_NAME_MAX + 1];  /* who closed/opened it by hand (runtime override), "" */
    int64_t closed_at_ms;   /* when (epoch ms), 0 when unknown */
    bool emergency;         /* emergency override active: closed with the emergency text */
    char *emergency_text;   /* may be NULL */
    char *schedule;         /* name of a schedule, NULL = always open */
    int max_wait_s;         /* 0 = no limit; else overflow after this wait */
    char *overflow;         /* queue to overflow to; NULL when max_wait_s == 0 */
    char *fallback;         /* queue that takes waiting berichten if this one is removed */
    int wrapup_s;           /* default 30 */
    int offer_timeout_s;    /* ring-no-answer; default 20 */
    int quick_drop_s;       /* default 5 */
    acdm_skill *skills;     /* required of every bericht in this queue, may be 0 */
    size_t n_skills;
    int relax_after_s;      /* drop skill requirements after this wait; 0 = never */
    json_t *closed_text;    /* object: kind name or "default" -> text; owned */
} acdm_queue_def;

typedef struct {
    char *id;               /* agent id (login name), unique */
    char *name;             /* display name */
    char **queues;          /* queues the agent may join (memberships to choose from) */
    size_t n_queues;
    acdm_skill *skills;
    size_t n_skills;
    int capacity[ACDM_KIND__COUNT]; /* defaults: voice 1, chat 3, email 5, sms 3, whatsapp 3, callback 1 */
    bool voice_blocks;      /* a call blocks new work of other kinds; default true */
    char *phone;            /* shorthand of endpoints.phone (as given), may be NULL */
    json_t *endpoints;      /* object: endpoint name -> string (e.g. "phone": "register" or a SIP
                             * URI); a channel plugin names the one it rings (device_endpoint_key);
                             * "phone" set here from the shorthand; owned, never NULL */
} acdm_agent_def;

typedef struct {
    char *name;             /* instance name, unique; used in /channels/<name>/ */
    char *plugin;           /* plugin name (its descriptor's name, not its file name) */
    char *queue;            /* default queue for berichten of this instance, may be NULL */
    json_t *config;         /* instance settings passed to the plugin; owned */
} acdm_channel_def;

typedef struct { char *code; char *label; } acdm_reason_def;

/* A standard answer (snippet) agents insert in the composer: for one queue or all (queue NULL),
 * in one language ("nl", "en", ...) or all (language NULL). The text may hold the placeholders
 * {klant}/{customer}, {agent} and {wachtrij}/{queue}, filled in by the desk. */
typedef struct { char *id; char *title; char *text; char *queue; char *language; } acdm_snippet_def;

/* OpenID Connect sign-in (Entra ID): bearer JWTs checked against the issuer's keys. */
typedef struct {
    bool enabled;           /* the "oidc" block is present */
    char *issuer;           /* required: the "iss" claim, exactly */
    char *audience;         /* required: must be "aud" or one of its elements */
    char *jwks_file;        /* the issuer's JWKS as a file, or */
    char *jwks_url;         /* fetched at start, hourly, and when a token names an unknown kid */
    char *role_claim;       /* default "roles" (a string or an array of strings) */
    char *agent_claim;      /* default "preferred_username": the agent id for role agent */
    json_t *role_map;       /* claim value -> "admin" | "supervisor" | "agent"; owned */
    int leeway_s;           /* clock skew allowed on exp/nbf; default 60 */
    /* the browser sign-in (authorization code + PKCE, a public SPA client); all three or none */
    char *authorization_endpoint; /* http(s) URL */
    char *token_endpoint;   /* http(s) URL, called by the browser (CORS) */
    char *client_id;
    char *scope;            /* default "openid profile" */
    char *use_token;        /* "id_token" (default) or "access_token": the bearer token the UI keeps */
} acdm_oidc_def;

/* Screen-pop (R50): a case system's URL fetched on every offer; the answer goes to the agent. */
typedef struct {
    bool enabled;           /* the "screen_pop" block is present */
    char *url;              /* required, http(s); placeholders {from} {channel} {queue} {kind} {bericht} {conversation} */
    int timeout_ms;         /* default 2000 */
} acdm_screen_pop_def;

/* Reports mailed weekly or monthly (R28d, R66). */
typedef struct {
    bool enabled;                /* the "mail" block is present */
    char *smtp_url;              /* required: smtp://host:port or smtps://host:port */
    char *from;                  /* required: the sender address */
    char *to;                    /* required: recipients, comma-separated */
    char *username;              /* SMTP sign-in, optional */
    char *password_file;         /* the SMTP password in a file of its own (not in the config) */
    char *schedule;              /* "weekly" (default: last week, on Mondays) or "monthly" (on the 1st) */
    char *format;                /* "xlsx" (default), "pdf" or "csv": one attachment per kind */
} acdm_report_mail_def;

/* Reports (R28, R29): the daily export of yesterday's reports for BI tools. */
typedef struct {
    char *daily_export_dir;      /* NULL = no daily export; created when missing */
    char *daily_export_interval; /* "15m", "1h" (default) or "1d" */
    int daily_export_delay_min;  /* minutes after local midnight (also the mail's); default 5 */
    acdm_report_mail_def mail;   /* mail.enabled false = no mail */
} acdm_reports_def;

/* Scheduled online backups (R80): "backup": {"dir", "every", "keep"}. */
typedef struct {
    bool enabled;                /* the "backup" block is present */
    char *dir;                   /* required: the folder the backups go to (created when missing) */
    char *every;                 /* as given: an interval "30m", "6h", "24h", "7d" (default "24h")
                                  * or a local time of day "HH:MM" (daily at that time) */
    int every_s;                 /* the interval in seconds; 0 when at_min is used */
    int at_min;                  /* minutes after local midnight of the daily time; -1 with every_s */
    int keep;                    /* backups kept in dir, the oldest removed first; default 7 */
    int pause_ms;                /* pause between copy steps (spares the disk); default 0 */
} acdm_backup_def;

/* Retention (R67): what the store keeps, pruned in slices. 0 = kept for ever. */
typedef struct {
    bool enabled;                /* the "retention" block is present */
    int events_months;           /* the event log (reports): 0, or at least 13 (R67) */
    int bodies_days;             /* thread messages and the channel payload of finished berichten */
    int attachments_days;        /* attachments of finished berichten */
    int slice_rows;              /* rows per slice; default 500 */
    int pause_ms;                /* pause between slices; default 10 */
} acdm_retention_def;

/* One listener of "listen" (a list, or one): its address, and TLS when cert_file is set. */
typedef struct {
    char *host;
    int port;
    char *cert_file, *key_file;   /* PEM chain and key; both NULL: plain HTTP */
    char **routes;                /* what the listener serves: groups ("api", "ws", "ui", "metrics",
                                   * "channels") or path prefixes ("/channels/website/"); */
    size_t n_routes;              /* 0: everything */
} acdm_listen_def;

typedef struct {
    char *path;             /* main file */
    char *listen_host;      /* default 127.0.0.1; the first listener */
    int listen_port;        /* default 8080 */
    acdm_listen_def *listens;   /* every listener as configured ([0] = listen_host/port), or */
    size_t n_listens;           /* 0 when "listen" is absent (listen_host/port, plain) */
    char *data_dir;         /* default "var" (relative to the working directory) */
    char *plugin_dir;       /* default "plugins" */
    char *ui_dir;           /* default "core/ui" */
    char *timezone;         /* default "Europe/Amsterdam" */
    char *log_level;        /* default "info" */
    char *log_format;       /* "text" (default) or "json" */
    int max_misses;         /* consecutive ring-no-answers before not-ready "no-answer"; 0 = off */
    int agent_grace_s;      /* an agent whose last websocket closed is logged out after this; default 60 */
    int group_commit_ms;    /* extra wait before a group commit (ms); default 0: commit as soon as the writer is free */
    int max_conns_per_addr; /* open connections one client address may hold; default 256, 0 = no limit */

    acdm_schedule_def *schedules; size_t n_schedules;
    acdm_queue_def *queues;       size_t n_queues;
    acdm_agent_def *agents;       size_t n_agents;
    acdm_channel_def *channels;   size_t n_channels;
    char **topics;                size_t n_topics;
    acdm_reason_def *reasons;     size_t n_reasons;
    acdm_snippet_def *snippets;   size_t n_snippets;
    acdm_oidc_def oidc;           /* sign-in with JWTs; oidc.enabled false = API tokens only */
    acdm_screen_pop_def screen_pop; /* screen_pop.enabled false = no screen-pop */
    acdm_reports_def reports;
    acdm_backup_def backup;       /* backup.enabled false = no scheduled backups */
    acdm_retention_def retention; /* retention.enabled false = everything kept */

    json_t *root;           /* the merged document; owned */
} acdm_config;

/* Reads and validates path plus every path-dir "acdm.d/ *.json" fragment beside it
 * (fragments add to the arrays; a name defined twice is an error).
 * On success stores a new config in *out (caller frees with acdm_config_free) and returns 0.
 * On failure returns ACDM_EINVAL and writes every problem found, one per line, each naming
 * the file, the JSON path and the problem, e.g.
 *   "conf/acdm.json: queues[2].strategy: unknown strategy \"fastest\" (expected one of: linear, ...)".
 * Nothing is applied anywhere by this call. */
int acdm_config_load(const char *path, acdm_config **out, char *err, size_t errlen);

/* Same, from a string (name is used in messages); fragments are not read. */
int acdm_config_parse(const char *name, const char *text, acdm_config **out, char *err, size_t errlen);

void acdm_config_free(acdm_config *cfg);
/* Frees cfg->listens (n_listens 0 after). */
void acdm_config_free_listens(acdm_config *cfg);

const acdm_queue_def *acdm_config_queue(const acdm_config *cfg, const char *name);
const acdm_schedule_def *acdm_config_schedule(const acdm_config *cfg, const char *name);
const acdm_agent_def *acdm_config_agent(const acdm_config *cfg, const char *id);
/* The agent's endpoint named key (e.g. "phone"), or NULL. */
const char *acdm_config_agent_endpoint(const acdm_agent_def *a, const char *key);
bool acdm_config_reason_valid(const acdm_config *cfg, const char *code);
/* A valid name (queue, agent, channel, schedule): 1..ACDM_NAME_MAX of [A-Za-z0-9_.-]. */
bool acdm_config_name_ok(const char *s);

/* Text for a closed queue and kind: closed_text[kind] or closed_text["default"] or a built-in Dutch text. */
const char *acdm_config_closed_text(const acdm_queue_def *q, acdm_kind kind);

#endif
