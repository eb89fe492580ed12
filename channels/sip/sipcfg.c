/* sipcfg.c -- parses and validates the SIP channel's instance config. */
#include "sipcfg.h"

#include <acdm/plugin_util.h>

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ITEMS 1000
#define MAX_STR 4096

static int cfg_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cfg_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool name_ok(const char *s)
{
    if (!*s || strlen(s) > 64) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

static int get_int(json_t *o, const char *key, int def, int lo, int hi, int *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    *out = def;
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return cfg_fail(err, errlen, "%s must be an integer from %d to %d", key, lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_str(json_t *o, const char *key, const char *def, char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) { *out = dup_str(def); return def && !*out ? cfg_fail(err, errlen, "out of memory") : 0; }
    if (!json_is_string(v) || !*json_string_value(v) || strlen(json_string_value(v)) > MAX_STR)
        return cfg_fail(err, errlen, "%s must be a non-empty string", key);
    *out = strdup(json_string_value(v));
    return *out ? 0 : cfg_fail(err, errlen, "out of memory");
}

static int parse_listen(const char *s, sipc_listen *l, char *err, size_t errlen)
{
    const char *p = s;
    memset(l, 0, sizeof *l);
    if (!strncasecmp(p, "udp:", 4)) { l->transport = 0; p += 4; }
    else if (!strncasecmp(p, "tcp:", 4)) { l->transport = 1; p += 4; }
    else return cfg_fail(err, errlen, "listen: \"%.80s\" must start with udp: or tcp: (e.g. \"udp:127.0.0.1:5060\")", s);
    const char *colon = strrchr(p, ':');
    if (!colon || colon == p || (size_t)(colon - p) >= sizeof l->host)
        return cfg_fail(err, errlen, "listen: \"%.80s\" must be transport:address:port", s);
    const char *h = p;
    size_t hl = (size_t)(colon - p);
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') { h++; hl -= 2; }
    memcpy(l->host, h, hl);
    l->host[hl] = 0;
    for (const char *q = l->host; *q; q++)
        if (!((*q >= '0' && *q <= '9') || *q == '.' || *q == ':' || (*q >= 'a' && *q <= 'f') || (*q >= 'A' && *q <= 'F')))
            return cfg_fail(err, errlen, "listen: \"%.80s\": the address must be an IP address", s);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return cfg_fail(err, errlen, "listen: \"%.80s\": the port must be 0..65535", s);
    l->port = (int)port;
    return 0;
}

static int parse_prompt(json_t *v, const char *where, sipc_prompt *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) {
        if (!*json_string_value(v) || strlen(json_string_value(v)) > MAX_STR)
            return cfg_fail(err, errlen, "%s: the text must be 1 to %d characters", where, MAX_STR);
        p->text = strdup(json_string_value(v));
        return p->text ? 0 : cfg_fail(err, errlen, "out of memory");
    }
    if (!json_is_object(v)) return cfg_fail(err, errlen, "%s must be a text or {\"text\": ...} or {\"file\": \"x.wav\"}", where);
    json_t *t = json_object_get(v, "text"), *f = json_object_get(v, "file");
    if ((t != NULL) == (f != NULL)) return cfg_fail(err, errlen, "%s must have exactly one of text or file", where);
    json_t *s = t ? t : f;
    if (!json_is_string(s) || !*json_string_value(s) || strlen(json_string_value(s)) > MAX_STR)
        return cfg_fail(err, errlen, "%s.%s must be a non-empty string", where, t ? "text" : "file");
    char *d = strdup(json_string_value(s));
    if (!d) return cfg_fail(err, errlen, "out of memory");
    if (t) p->text = d;
    else p->file = d;
    return 0;
}

static void prompt_free(sipc_prompt *p)
{
    free(p->text);
    free(p->file);
}

static int parse_target(json_t *v, const char *where, sipc_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    const char *name = NULL;
    if (json_is_string(v)) { t->type = SIPC_T_QUEUE; name = json_string_value(v); }
    else if (json_is_object(v) && json_is_string(json_object_get(v, "queue")) && json_object_size(v) == 1) {
        t->type = SIPC_T_QUEUE; name = json_string_value(json_object_get(v, "queue"));
    } else if (json_is_object(v) && json_is_string(json_object_get(v, "menu")) && json_object_size(v) == 1) {
        t->type = SIPC_T_MENU; name = json_string_value(json_object_get(v, "menu"));
    } else return cfg_fail(err, errlen, "%s must be a queue name, {\"queue\": name} or {\"menu\": name}", where);
    if (!name_ok(name)) return cfg_fail(err, errlen, "%s: \"%.80s\" is not a valid name", where, name);
    t->name = strdup(name);
    return t->name ? 0 : cfg_fail(err, errlen, "out of memory");
}

static int parse_pset(const char *queue, json_t *v, sipc_pset *ps, char *err, size_t errlen)
{
    char where[120];
    memset(ps, 0, sizeof *ps);
    if (!(ps->queue = strdup(queue))) return cfg_fail(err, errlen, "out of memory");
    if (!json_is_object(v)) return cfg_fail(err, errlen, "prompts.%s must be an object", queue);
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x) {
        static const char *const known[] = {"welcome", "wait", "music", "closed", "wait_interval_s",
                                            "position", "estimate", NULL};
        int k = 0;
        while (known[k] && strcmp(known[k], key)) k++;
        if (!known[k]) return cfg_fail(err, errlen, "prompts.%s: unknown key \"%.40s\" (welcome, wait, music, closed, wait_interval_s, position, estimate)", queue, key);
    }
    struct { const char *k; sipc_prompt *p; } pp[] = {
        {"welcome", &ps->welcome}, {"wait", &ps->wait}, {"music", &ps->music}, {"closed", &ps->closed}};
    for (size_t i = 0; i < sizeof pp / sizeof pp[0]; i++) {
        snprintf(where, sizeof where, "prompts.%s.%s", queue, pp[i].k);
        if (parse_prompt(json_object_get(v, pp[i].k), where, pp[i].p, err, errlen) < 0) return -1;
    }
    if (ps->music.text) return cfg_fail(err, errlen, "prompts.%s.music must be a {\"file\": ...} (music is not spoken)", queue);
    snprintf(where, sizeof where, "prompts.%s.wait_interval_s", queue);
    if (get_int(v, "wait_interval_s", 20, 3, 600, &ps->wait_interval_s, err, errlen) < 0) {
        return cfg_fail(err, errlen, "%s must be an integer from 3 to 600", where);
    }
    json_t *b = json_object_get(v, "position");
    if (b && !json_is_boolean(b)) return cfg_fail(err, errlen, "prompts.%s.position must be true or false", queue);
    ps->position = b ? json_is_true(b) : true;
    b = json_object_get(v, "estimate");
    if (b && !json_is_boolean(b)) return cfg_fail(err, errlen, "prompts.%s.estimate must be true or false", queue);
    ps->estimate = json_is_true(b);
    return 0;
}

static void menu_free(sipc_menu *m);

/* A menu's body; `name` is how errors name it ("main", "main.when_closed"). The when_closed
 * variant (sub) may leave out choices (the prompt, then its default) and default (the menu's). */
static int parse_menu_body(const char *name, json_t *v, sipc_menu *m, bool sub, char *err, size_t errlen)
{
    char where[120];
    if (!json_is_object(v)) return cfg_fail(err, errlen, "menus.%s must be an object", name);
    snprintf(where, sizeof where, "menus.%s.prompt", name);
    if (parse_prompt(json_object_get(v, "prompt"), where, &m->prompt, err, errlen) < 0) return -1;
    if (!m->prompt.text && !m->prompt.file) return cfg_fail(err, errlen, "menus.%s.prompt is required", name);
    json_t *ch = json_object_get(v, "choices");
    if (!(sub && !ch) && (!json_is_object(ch) || (!sub && json_object_size(ch) == 0)))
        return cfg_fail(err, errlen, "menus.%s.choices must be an object of key: target", name);
    const char *key;
    json_t *x;
    json_object_foreach(ch, key, x) {
        if (strlen(key) != 1 || !strchr("0123456789*#", key[0]))
            return cfg_fail(err, errlen, "menus.%s.choices: \"%.10s\" is not a key (0-9, * or #)", name, key);
        if (m->n_choices >= 12) return cfg_fail(err, errlen, "menus.%s.choices: at most 12", name);
        snprintf(where, sizeof where, "menus.%s.choices.%s", name, key);
        sipc_choice *c = &m->choices[m->n_choices++];
        c->key = key[0];
        if (parse_target(x, where, &c->to, err, errlen) < 0) return -1;
    }
    snprintf(where, sizeof where, "menus.%s.default", name);
    json_t *d = json_object_get(v, "default");
    if (!d && !sub) return cfg_fail(err, errlen, "%s is required (where a caller goes who presses nothing)", where);
    if (d && parse_target(d, where, &m->dflt, err, errlen) < 0) return -1;
    if (get_int(v, "timeout_s", 5, 1, 60, &m->timeout_s, err, errlen) < 0) return -1;
    if (get_int(v, "repeats", 2, 0, 10, &m->repeats, err, errlen) < 0) return -1;
    return 0;
}

static int parse_menu(const char *name, json_t *v, sipc_menu *m, char *err, size_t errlen)
{
    char where[120];
    memset(m, 0, sizeof *m);
    if (!(m->name = strdup(name))) return cfg_fail(err, errlen, "out of memory");
    if (!name_ok(name)) return cfg_fail(err, errlen, "menus: \"%.80s\" is not a valid menu name", name);
    if (parse_menu_body(name, v, m, false, err, errlen) < 0) return -1;
    json_t *wc = json_object_get(v, "when_closed");
    if (!wc) return 0;
    if (!json_is_object(wc)) return cfg_fail(err, errlen, "menus.%s.when_closed must be an object with queue and prompt", name);
    const char *key;
    json_t *x;
    json_object_foreach(wc, key, x) {
        static const char *const known[] = {"queue", "prompt", "choices", "default", "timeout_s", "repeats", NULL};
        int k = 0;
        while (known[k] && strcmp(known[k], key)) k++;
        if (!known[k]) return cfg_fail(err, errlen, "menus.%s.when_closed: unknown key \"%.40s\" (queue, prompt, choices, default, timeout_s, repeats)", name, key);
    }
    json_t *q = json_object_get(wc, "queue");
    if (!json_is_string(q) || !name_ok(json_string_value(q)))
        return cfg_fail(err, errlen, "menus.%s.when_closed.queue must be a queue name (the queue whose opening hours pick the variant)", name);
    if (!(m->closed_queue = strdup(json_string_value(q)))) return cfg_fail(err, errlen, "out of memory");
    if (!(m->closed = calloc(1, sizeof *m->closed))) return cfg_fail(err, errlen, "out of memory");
    snprintf(where, sizeof where, "%s.when_closed", name);
    if (!(m->closed->name = strdup(name))) return cfg_fail(err, errlen, "out of memory");
    if (parse_menu_body(where, wc, m->closed, true, err, errlen) < 0) return -1;
    if (!m->closed->dflt.name) {
        m->closed->dflt.type = m->dflt.type;
        if (!(m->closed->dflt.name = strdup(m->dflt.name))) return cfg_fail(err, errlen, "out of memory");
    }
    if (!json_object_get(wc, "timeout_s")) m->closed->timeout_s = m->timeout_s;
    if (!json_object_get(wc, "repeats")) m->closed->repeats = m->repeats;
    return 0;
}

static int parse_codecs(json_t *v, sipc_cfg *c, char *err, size_t errlen)
{
    c->n_codecs = 0;
    if (!v) { c->codecs[0] = 8; c->codecs[1] = 0; c->n_codecs = 2; return 0; }
    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > SIPC_MAX_CODECS)
        return cfg_fail(err, errlen, "codecs must be a list of PCMA and/or PCMU");
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        const char *s = json_is_string(x) ? json_string_value(x) : "";
        int pt = !strcasecmp(s, "PCMA") ? 8 : !strcasecmp(s, "PCMU") ? 0 : -1;
        if (pt < 0) return cfg_fail(err, errlen, "codecs: \"%.20s\" is not supported (PCMA, PCMU)", s);
        for (int k = 0; k < c->n_codecs; k++)
            if (c->codecs[k] == pt) return cfg_fail(err, errlen, "codecs: %s listed twice", s);
        c->codecs[c->n_codecs++] = pt;
    }
    return 0;
}

static int parse_rtp_ports(json_t *v, sipc_cfg *c, char *err, size_t errlen)
{
    c->rtp_min = 40000;
    c->rtp_max = 49999;
    if (!v) return 0;
    long lo = -1, hi = -1;
    if (json_is_string(v)) {
        char *end;
        lo = strtol(json_string_value(v), &end, 10);
        if (*end != '-') lo = -1;
        else {
            char *e2;
            hi = strtol(end + 1, &e2, 10);
            if (*e2 || e2 == end + 1) hi = -1;
        }
    } else if (json_is_array(v) && json_array_size(v) == 2 && json_is_integer(json_array_get(v, 0)) &&
               json_is_integer(json_array_get(v, 1))) {
        lo = (long)json_integer_value(json_array_get(v, 0));
        hi = (long)json_integer_value(json_array_get(v, 1));
    }
    if (lo < 1024 || hi > 65535 || hi < lo + 1)
        return cfg_fail(err, errlen, "rtp_ports must be \"min-max\" (1024..65535, at least 2 ports), e.g. \"40000-40999\"");
    c->rtp_min = (int)lo;
    c->rtp_max = (int)hi;
    return 0;
}

int sipc_parse(const char *json_text, sipc_cfg *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    json_error_t je;
    json_t *o = json_loads(json_text ? json_text : "", 0, &je);
    int rc = -1;
    if (!json_is_object(o)) { cfg_fail(err, errlen, "config must be a JSON object"); goto out; }
    {
        const char *key;
        json_t *x;
        static const char *const known[] = {"listen", "rtp_ports", "numbers", "menus", "codecs", "prompts",
                                            "registrar", "agents", "max_calls", "retry_after_s",
                                            "ring_timeout_s", "rtp_timeout_s", "session_expires_s", "session_min_se_s",
                                            "tts", "user_agent", "outbound", "callback", NULL};
        json_object_foreach(o, key, x) {
            int k = 0;
            while (known[k] && strcmp(known[k], key)) k++;
            if (!known[k]) { cfg_fail(err, errlen, "unknown key \"%.40s\"", key); goto out; }
        }
    }
    /* listen */
    json_t *l = json_object_get(o, "listen");
    if (!l) { cfg_fail(err, errlen, "listen is required (e.g. \"udp:127.0.0.1:5060\")"); goto out; }
    if (json_is_string(l)) {
        if (parse_listen(json_string_value(l), &c->listen[0], err, errlen) < 0) goto out;
        c->n_listen = 1;
    } else if (json_is_array(l) && json_array_size(l) >= 1 && json_array_size(l) <= SIPC_MAX_LISTEN) {
        size_t i;
        json_t *x;
        json_array_foreach(l, i, x) {
            if (!json_is_string(x)) { cfg_fail(err, errlen, "listen must be a string or a list of strings"); goto out; }
            if (parse_listen(json_string_value(x), &c->listen[c->n_listen], err, errlen) < 0) goto out;
            for (int k = 0; k < c->n_listen; k++)
                if (c->listen[k].transport == c->listen[c->n_listen].transport) {
                    cfg_fail(err, errlen, "listen: one address per transport (udp, tcp)");
                    goto out;
                }
            c->n_listen++;
        }
    } else { cfg_fail(err, errlen, "listen must be a string or a list of 1 to %d strings", SIPC_MAX_LISTEN); goto out; }
    if (parse_rtp_ports(json_object_get(o, "rtp_ports"), c, err, errlen) < 0) goto out;
    if (parse_codecs(json_object_get(o, "codecs"), c, err, errlen) < 0) goto out;
    /* menus before numbers: numbers may name them */
    json_t *mn = json_object_get(o, "menus");
    if (mn) {
        if (!json_is_object(mn) || json_object_size(mn) > MAX_ITEMS) { cfg_fail(err, errlen, "menus must be an object of name: menu"); goto out; }
        c->menus = calloc(json_object_size(mn) + 1, sizeof *c->menus);
        if (!c->menus) { cfg_fail(err, errlen, "out of memory"); goto out; }
        const char *key;
        json_t *x;
        json_object_foreach(mn, key, x) {
            if (parse_menu(key, x, &c->menus[c->n_menus++], err, errlen) < 0) goto out;
        }
    }
    json_t *nu = json_object_get(o, "numbers");
    if (!json_is_object(nu) || json_object_size(nu) == 0 || json_object_size(nu) > MAX_ITEMS) {
        cfg_fail(err, errlen, "numbers is required: an object of dialled number: queue or {\"menu\": name}");
        goto out;
    }
    c->numbers = calloc(json_object_size(nu), sizeof *c->numbers);
    if (!c->numbers) { cfg_fail(err, errlen, "out of memory"); goto out; }
    {
        const char *key;
        json_t *x;
        json_object_foreach(nu, key, x) {
            char where[120];
            snprintf(where, sizeof where, "numbers.%.60s", key);
            bool ok = *key && strlen(key) <= 32;
            for (const char *p = key; *p && ok; p++) ok = (*p >= '0' && *p <= '9') || *p == '+' || *p == '*' || *p == '#' ||
                                                            (*p >= 'a' && *p <= 'z');
            if (!ok || (strchr(key, '*') && strcmp(key, "*"))) {
                cfg_fail(err, errlen, "numbers: \"%.40s\" is not a number (digits, + * #, or \"*\" for any)", key);
                goto out;
            }
            sipc_number *n = &c->numbers[c->n_numbers++];
            if (!(n->number = strdup(key))) { cfg_fail(err, errlen, "out of memory"); goto out; }
            if (parse_target(x, where, &n->to, err, errlen) < 0) goto out;
        }
    }
    /* every menu target names a menu that exists */
    for (int i = 0; i < c->n_numbers; i++)
        if (c->numbers[i].to.type == SIPC_T_MENU && !sipc_menu_find(c, c->numbers[i].to.name)) {
            cfg_fail(err, errlen, "numbers.%s: menu \"%s\" is not in menus", c->numbers[i].number, c->numbers[i].to.name);
            goto out;
        }
    for (int i = 0; i < 2 * c->n_menus; i++) {
        sipc_menu *m = i < c->n_menus ? &c->menus[i] : c->menus[i - c->n_menus].closed;
        if (!m) continue;
        for (int k = 0; k <= m->n_choices; k++) {
            sipc_target *t = k < m->n_choices ? &m->choices[k].to : &m->dflt;
            if (t->type == SIPC_T_MENU && !sipc_menu_find(c, t->name)) {
                cfg_fail(err, errlen, "menus.%s%s: menu \"%s\" is not in menus", m->name, i < c->n_menus ? "" : ".when_closed", t->name);
                goto out;
            }
        }
        if (m->dflt.type == SIPC_T_MENU) {
            cfg_fail(err, errlen, "menus.%s%s.default must be a queue (a caller who presses nothing reaches a person)", m->name, i < c->n_menus ? "" : ".when_closed");
            goto out;
        }
    }
    {
        int nq = 0;
        for (int i = 0; i < c->n_menus; i++) {
            if (!c->menus[i].closed_queue) continue;
            int k = 0;
            while (k < i && (!c->menus[k].closed_queue || strcmp(c->menus[k].closed_queue, c->menus[i].closed_queue))) k++;
            if (k == i && ++nq > SIPC_MAX_QSTATE) {
                cfg_fail(err, errlen, "menus.%s.when_closed.queue: at most %d different queues in when_closed", c->menus[i].name, SIPC_MAX_QSTATE);
                goto out;
            }
        }
    }
    /* prompts */
    json_t *pr = json_object_get(o, "prompts");
    if (pr) {
        if (!json_is_object(pr) || json_object_size(pr) > MAX_ITEMS) { cfg_fail(err, errlen, "prompts must be an object of queue (or \"default\"): announcements"); goto out; }
        c->psets = calloc(json_object_size(pr) + 1, sizeof *c->psets);
        if (!c->psets) { cfg_fail(err, errlen, "out of memory"); goto out; }
        const char *key;
        json_t *x;
        json_object_foreach(pr, key, x) {
            if (!name_ok(key)) { cfg_fail(err, errlen, "prompts: \"%.40s\" is not a queue name", key); goto out; }
            if (parse_pset(key, x, &c->psets[c->n_psets++], err, errlen) < 0) goto out;
        }
    }
    /* registrar */
    json_t *rg = json_object_get(o, "registrar");
    if (rg) {
        if (!json_is_object(rg)) { cfg_fail(err, errlen, "registrar must be an object {realm, users}"); goto out; }
        if (get_str(rg, "realm", "acdm", &c->realm, err, errlen) < 0) goto out;
        if (get_int(rg, "max_expires_s", 3600, 60, 86400, &c->reg_max_expires, err, errlen) < 0) goto out;
        json_t *us = json_object_get(rg, "users");
        if (!json_is_object(us) || json_object_size(us) > MAX_ITEMS) {
            cfg_fail(err, errlen, "registrar.users must be an object of user: password");
            goto out;
        }
        c->users = calloc(json_object_size(us) + 1, sizeof *c->users);
        if (!c->users) { cfg_fail(err, errlen, "out of memory"); goto out; }
        const char *key;
        json_t *x;
        json_object_foreach(us, key, x) {
            if (!name_ok(key)) { cfg_fail(err, errlen, "registrar.users: \"%.40s\" is not a user name", key); goto out; }
            if (!json_is_string(x) || strlen(json_string_value(x)) < 8) {
                cfg_fail(err, errlen, "registrar.users.%s: the password must be a string of at least 8 characters", key);
                goto out;
            }
            sipc_user *u = &c->users[c->n_users++];
            u->user = strdup(key);
            u->password = strdup(json_string_value(x));
            if (!u->user || !u->password) { cfg_fail(err, errlen, "out of memory"); goto out; }
        }
    }
    /* agents (until the core carries the agents' "phone") */
    json_t *ag = json_object_get(o, "agents");
    if (ag) {
        if (!json_is_object(ag) || json_object_size(ag) > MAX_ITEMS) { cfg_fail(err, errlen, "agents must be an object of agent id: phone"); goto out; }
        c->agents = calloc(json_object_size(ag) + 1, sizeof *c->agents);
        if (!c->agents) { cfg_fail(err, errlen, "out of memory"); goto out; }
        const char *key;
        json_t *x;
        json_object_foreach(ag, key, x) {
            json_t *ph = json_is_object(x) ? json_object_get(x, "phone") : x;
            const char *s = json_is_string(ph) ? json_string_value(ph) : "";
            if (!name_ok(key)) { cfg_fail(err, errlen, "agents: \"%.40s\" is not an agent id", key); goto out; }
            if (strcmp(s, "register") && strncmp(s, "sip:", 4)) {
                cfg_fail(err, errlen, "agents.%s: phone must be \"register\" or a sip: URI", key);
                goto out;
            }
            if (strlen(s) > 256 || strpbrk(s, " \t\r\n<>\"")) { cfg_fail(err, errlen, "agents.%s: phone is not a valid URI", key); goto out; }
            if (!strcmp(s, "register") && !rg) {
                cfg_fail(err, errlen, "agents.%s: phone \"register\" needs a registrar", key);
                goto out;
            }
            sipc_agent *a = &c->agents[c->n_agents++];
            a->id = strdup(key);
            a->phone = strdup(s);
            if (!a->id || !a->phone) { cfg_fail(err, errlen, "out of memory"); goto out; }
        }
    }
    if (get_int(o, "max_calls", 200, 1, 100000, &c->max_calls, err, errlen) < 0 ||
        get_int(o, "retry_after_s", 30, 1, 3600, &c->retry_after_s, err, errlen) < 0 ||
        get_int(o, "ring_timeout_s", 20, 2, 300, &c->ring_timeout_s, err, errlen) < 0 ||
        get_int(o, "rtp_timeout_s", 30, 0, 3600, &c->rtp_timeout_s, err, errlen) < 0 ||
        get_int(o, "session_expires_s", 1800, 0, 86400, &c->session_expires_s, err, errlen) < 0 ||
        get_int(o, "session_min_se_s", 90, 1, 86400, &c->session_min_se_s, err, errlen) < 0 ||
        get_str(o, "user_agent", "acdm", &c->user_agent, err, errlen) < 0)
        goto out;
    if (c->session_expires_s && c->session_expires_s < c->session_min_se_s) {
        cfg_fail(err, errlen, "session_expires_s (%d) must be 0 (off) or at least session_min_se_s (%d)", c->session_expires_s,
                 c->session_min_se_s);
        goto out;
    }
    json_t *ob = json_object_get(o, "outbound");
    if (ob) {
        if (!json_is_object(ob)) { cfg_fail(err, errlen, "outbound must be an object {gateway, caller_id}"); goto out; }
        if (get_str(ob, "gateway", NULL, &c->out_gateway, err, errlen) < 0 ||
            get_str(ob, "caller_id", NULL, &c->out_caller_id, err, errlen) < 0 ||
            get_int(ob, "ring_timeout_s", 30, 5, 300, &c->out_ring_timeout_s, err, errlen) < 0)
            goto out;
        if (!c->out_gateway || strpbrk(c->out_gateway, " \t\r\n<>\"@;") || !strchr(c->out_gateway, ':')) {
            cfg_fail(err, errlen, "outbound.gateway must be host:port (numbers are dialled as sip:<number>@gateway)");
            goto out;
        }
        if (!c->out_caller_id || !acdm_phone_number_ok(c->out_caller_id)) {
            cfg_fail(err, errlen, "outbound.caller_id must be a phone number (digits, a leading +)");
            goto out;
        }
    }
    json_t *cb = json_object_get(o, "callback");
    if (cb) {
        json_t *k = json_is_object(cb) ? json_object_get(cb, "key") : NULL;
        const char *ks = json_is_string(k) ? json_string_value(k) : "";
        if (strlen(ks) != 1 || !strchr("0123456789*#", ks[0])) {
            cfg_fail(err, errlen, "callback.key must be one key: 0-9, * or #");
            goto out;
        }
        c->callback_key = ks[0];
        if (get_str(cb, "text", "U wordt teruggebeld op het nummer waarmee u nu belt. U kunt ophangen.",
                    &c->callback_text, err, errlen) < 0)
            goto out;
        if (!c->out_gateway) { cfg_fail(err, errlen, "callback needs outbound (the call back is an outbound call)"); goto out; }
        json_t *kp = json_object_get(cb, "keep_place");
        if (kp && !json_is_boolean(kp)) { cfg_fail(err, errlen, "callback.keep_place must be true or false"); goto out; }
        c->callback_keep_place = kp ? json_is_true(kp) : true;
    }
    json_t *tts = json_object_get(o, "tts");
    if (tts && !json_is_object(tts)) { cfg_fail(err, errlen, "tts must be an object {voice, command}"); goto out; }
    if (get_str(tts, "voice", "nl", &c->tts_voice, err, errlen) < 0 ||
        get_str(tts, "command", "espeak-ng", &c->tts_command, err, errlen) < 0)
        goto out;
    if (!name_ok(c->tts_voice) && !strchr(c->tts_voice, '+')) { cfg_fail(err, errlen, "tts.voice: \"%.40s\" is not a voice name", c->tts_voice); goto out; }
    rc = 0;
out:
    json_decref(o);
    if (rc < 0) sipc_free(c);
    return rc;
}

static void menu_free(sipc_menu *m)
{
    free(m->name);
    prompt_free(&m->prompt);
    for (int k = 0; k < m->n_choices; k++) free(m->choices[k].to.name);
    free(m->dflt.name);
    free(m->closed_queue);
    if (m->closed) menu_free(m->closed);
    free(m->closed);
}

void sipc_free(sipc_cfg *c)
{
    for (int i = 0; i < c->n_numbers; i++) { free(c->numbers[i].number); free(c->numbers[i].to.name); }
    free(c->numbers);
    for (int i = 0; i < c->n_menus; i++) menu_free(&c->menus[i]);
    free(c->menus);
    for (int i = 0; i < c->n_psets; i++) {
        sipc_pset *p = &c->psets[i];
        free(p->queue);
        prompt_free(&p->welcome); prompt_free(&p->wait); prompt_free(&p->music); prompt_free(&p->closed);
    }
    free(c->psets);
    for (int i = 0; i < c->n_users; i++) { free(c->users[i].user); free(c->users[i].password); }
    free(c->users);
    for (int i = 0; i < c->n_agents; i++) { free(c->agents[i].id); free(c->agents[i].phone); }
    free(c->agents);
    free(c->realm);
    free(c->tts_voice);
    free(c->tts_command);
    free(c->user_agent);
    free(c->out_gateway);
    free(c->out_caller_id);
    free(c->callback_text);
    memset(c, 0, sizeof *c);
}

const sipc_number *sipc_number_find(const sipc_cfg *c, const char *dialled)
{
    const sipc_number *any = NULL;
    for (int i = 0; i < c->n_numbers; i++) {
        if (!strcmp(c->numbers[i].number, dialled)) return &c->numbers[i];
        if (!strcmp(c->numbers[i].number, "*")) any = &c->numbers[i];
    }
    return any;
}

const sipc_menu *sipc_menu_find(const sipc_cfg *c, const char *name)
{
    for (int i = 0; i < c->n_menus; i++)
        if (!strcmp(c->menus[i].name, name)) return &c->menus[i];
    return NULL;
}

const sipc_pset *sipc_pset_find(const sipc_cfg *c, const char *queue)
{
    const sipc_pset *d = NULL;
    for (int i = 0; i < c->n_psets; i++) {
        if (queue && !strcmp(c->psets[i].queue, queue)) return &c->psets[i];
        if (!strcmp(c->psets[i].queue, "default")) d = &c->psets[i];
    }
    return d;
}

const sipc_agent *sipc_agent_find(const sipc_cfg *c, const char *id)
{
    for (int i = 0; i < c->n_agents; i++)
        if (!strcmp(c->agents[i].id, id)) return &c->agents[i];
    return NULL;
}

const sipc_user *sipc_user_find(const sipc_cfg *c, const char *user)
{
    for (int i = 0; i < c->n_users; i++)
        if (!strcmp(c->users[i].user, user)) return &c->users[i];
    return NULL;
}

bool sipc_same_sockets(const sipc_cfg *a, const sipc_cfg *b)
{
    if (a->n_listen != b->n_listen || a->rtp_min != b->rtp_min || a->rtp_max != b->rtp_max) return false;
    for (int i = 0; i < a->n_listen; i++)
        if (a->listen[i].transport != b->listen[i].transport || a->listen[i].port != b->listen[i].port ||
            strcmp(a->listen[i].host, b->listen[i].host))
            return false;
    return true;
}
