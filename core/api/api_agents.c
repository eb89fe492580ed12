/* api_agents.c -- lists of the configuration managed over REST: supervisors and admins add,
 * change and remove agents (R32); admins add and remove topics (R41) and reason codes (R24).
 *
 * API-managed items are kept in a fragment of their own beside the main config file
 * (acdm.d/50-agents-api.json for agents, acdm.d/51-lists-api.json for topics and reason codes),
 * and every change takes the same all-or-nothing path as a reload: the new fragment is written
 * atomically (temp file, fsync, rename), acdm_engine_reload validates and applies the whole
 * configuration, and when it refuses, the previous fragment is put back and the caller gets a
 * 422 with the validator's problems. Items defined in any other file (the main file or another
 * fragment) are not the API's to change: 409 naming that file. All of this runs on the loop
 * thread, so two requests never interleave between the write and the reload. */
#include "api/api_agents.h"
#include "api/api_super.h"
#include "base/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WHO "api"
#define FRAG_MAX (16u * 1024u * 1024u)   /* largest fragment file read back */
#define LIST_MAX 1000                     /* queues/skills per agent accepted in a body */
#define TEXT_MAX 4096                     /* as the config's display texts */

typedef enum { OP_ADD, OP_PUT, OP_DELETE } list_op;

/* One list of the configuration the API manages in a fragment of its own. */
typedef struct managed {
    const char *key;         /* the config's key: "agents", "topics", "reason_codes" */
    const char *what;        /* in messages: "agent", "topic", "reason code" */
    const char *file;        /* the fragment's name inside acdm.d/ */
    const char *id_field;    /* the item's name field; NULL: the item is its name (a string) */
    const char *put_route;   /* "PUT /api/v1/agents/" when items can be changed, else NULL */
    const char *audit[3];    /* the audit actions of add, change, remove */
    /* whether the running configuration has the item (from any file) */
    bool (*running)(const acdm_config *cfg, const char *id);
    /* after a change is applied, before it is audited (may add to the audit's extra) */
    void (*applied)(acdm_engine *e, list_op op, const char *id, json_t *extra);
} managed;

typedef struct {
    char dir[4096];          /* <folder of the main file>/acdm.d */
    char path[4352];         /* dir/<the list's file> */
} frag_paths;

/* ------------------------------------------------------------------ small helpers */


static void paths_of(const acdm_engine *e, const managed *m, frag_paths *p)
{
    const char *slash = strrchr(acdm_engine_config_path(e), '/');
    if (slash) snprintf(p->dir, sizeof p->dir, "%.*s/acdm.d", (int)(slash - acdm_engine_config_path(e)), acdm_engine_config_path(e));
    else snprintf(p->dir, sizeof p->dir, "acdm.d");
    snprintf(p->path, sizeof p->path, "%s/%s", p->dir, m->file);
}

/* A problem+json like acdm_http_problem, plus "errors": the detail's lines (the validator
 * writes one problem per line: "FILE: JSON.path: problem"). */
static void problem_lines(acdm_req *r, int status, const char *title, const char *detail)
{
    json_t *lines = json_array();
    const char *p = detail;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n) json_array_append_new(lines, json_stringn(p, n));
        p += n + (nl ? 1 : 0);
    }
    json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:o}", "type", "about:blank", "title", title,
                          "status", status, "detail", detail, "errors", lines);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s) acdm_http_reply(r, status, "application/problem+json", s, strlen(s));
    else acdm_http_problem(r, status, title, "%s", detail);
    free(s);
}

/* Reads a whole file: 0 with *buf (NUL-terminated, caller frees), ACDM_ENOENT when it does
 * not exist, ACDM_EIO otherwise (err says why). */
static int read_all(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return ACDM_ENOENT;
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return ACDM_EIO;
    }
    size_t cap = 8192, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            if (cap >= FRAG_MAX) { free(b); b = NULL; errno = EFBIG; break; }
            char *nb = realloc(b, cap * 2);
            if (!nb) { free(b); b = NULL; break; }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) { free(b); b = NULL; }
            break;
        }
    }
    int saved = errno;
    fclose(f);
    if (!b) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(saved ? saved : ENOMEM));
        return ACDM_EIO;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

/* Writes data to path atomically: dir/.NAME.tmp, fsync, rename, fsync of the folder. */
static int write_atomic(const char *dir, const char *path, const char *data, size_t len, char *err,
                        size_t errlen)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char tmp[4608];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, base);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        return ACDM_EIO;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    if (off < len || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return ACDM_EIO;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return ACDM_EIO;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);   /* the rename itself is durable */
        close(dfd);
    }
    return 0;
}

/* The index of the item named id in arr, or -1. */
static long item_index(const managed *m, json_t *arr, const char *id)
{
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a) {
        const char *aid = json_string_value(m->id_field ? json_object_get(a, m->id_field) : a);
        if (aid && !strcmp(aid, id)) return (long)i;
    }
    return -1;
}

static bool agent_running(const acdm_config *cfg, const char *id) { return acdm_config_agent(cfg, id) != NULL; }

static bool topic_running(const acdm_config *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->n_topics; i++) if (!strcmp(cfg->topics[i], id)) return true;
    return false;
}

static bool reason_running(const acdm_config *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->n_reasons; i++) if (!strcmp(cfg->reasons[i].code, id)) return true;
    return false;
}

static bool snippet_running(const acdm_config *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->n_snippets; i++) if (!strcmp(cfg->snippets[i].id, id)) return true;
    return false;
}

static int json_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".json");
}

/* Whether a file other than the list's API fragment defines item id: the main file first, then
 * the fragments in load order. true with the file's name (as the validator names it) in out. */
static bool defined_elsewhere(const acdm_engine *e, const managed *m, const frag_paths *fp, const char *id,
                              char *out, size_t outlen)
{
    json_t *doc = json_load_file(acdm_engine_config_path(e), 0, NULL);
    long ix = doc ? item_index(m, json_object_get(doc, m->key), id) : -1;
    json_decref(doc);
    if (ix >= 0) { snprintf(out, outlen, "%s", acdm_engine_config_path(e)); return true; }
    struct dirent **list = NULL;
    int n = scandir(fp->dir, &list, json_file, alphasort);
    bool found = false;
    for (int i = 0; i < n; i++) {
        if (!found && strcmp(list[i]->d_name, m->file)) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", fp->dir, list[i]->d_name);
            doc = json_load_file(path, 0, NULL);
            if (doc && item_index(m, json_object_get(doc, m->key), id) >= 0) {
                snprintf(out, outlen, "%s", path);
                found = true;
            }
            json_decref(doc);
        }
        free(list[i]);
    }
    free(list);
    return found;
}

/* ------------------------------------------------------------------ the request body */

/* The agent definition from the body, checked for the obvious (types, names, sizes); the
 * config validator checks the rest (queues exist, skill levels, capacity keys and ranges).
 * path_id: PUT's {id} (the body's id may be left out, else must be the same). NULL after a 400. */
static json_t *agent_from_body(acdm_req *r, const char *path_id)
{
    static const char *const known[] = {"id", "name", "queues", "skills", "capacity", "voice_blocks",
                                        "phone", "endpoints", NULL};
    json_t *j = acdm_api_body_object(r, false, known);
    if (!j) return NULL;
    json_t *id = json_object_get(j, "id");
    if (!id && path_id) {
        id = json_string(path_id);
        json_object_set_new(j, "id", id);
    }
    if (!id) { acdm_http_problem(r, 400, "Invalid field", "id: required (the agent's login name)"); goto bad; }
    if (!json_is_string(id) || !acdm_config_name_ok(json_string_value(id))) {
        acdm_http_problem(r, 400, "Invalid field", "id: expected a name of 1 to %d letters, digits, '_', "
                          "'.' or '-'", ACDM_NAME_MAX);
        goto bad;
    }
    if (path_id && strcmp(json_string_value(id), path_id)) {
        acdm_http_problem(r, 400, "Invalid field", "id: \"%s\" differs from the agent in the path (\"%s\"); "
                          "an agent cannot be renamed: remove it and add the new id", json_string_value(id), path_id);
        goto bad;
    }
    json_t *name = json_object_get(j, "name");
    if (name && (!json_is_string(name) || !json_string_length(name) || acdm_utf8_chars(json_string_value(name)) > TEXT_MAX)) {
        acdm_http_problem(r, 400, "Invalid field", "name: expected a display name (a string of 1 to %d characters)", TEXT_MAX);
        goto bad;
    }
    json_t *queues = json_object_get(j, "queues");
    if (queues) {
        if (!json_is_array(queues) || json_array_size(queues) > LIST_MAX) {
            acdm_http_problem(r, 400, "Invalid field", "queues: expected an array of queue names (at most %d)", LIST_MAX);
            goto bad;
        }
        size_t i;
        json_t *q;
        json_array_foreach(queues, i, q) {
            if (!json_is_string(q) || !acdm_config_name_ok(json_string_value(q))) {
                acdm_http_problem(r, 400, "Invalid field", "queues[%zu]: expected a queue name (a string of 1 to %d "
                                  "letters, digits, '_', '.' or '-')", i, ACDM_NAME_MAX);
                goto bad;
            }
            for (size_t k = 0; k < i; k++)
                if (!strcmp(json_string_value(json_array_get(queues, k)), json_string_value(q))) {
                    acdm_http_problem(r, 400, "Invalid field", "queues[%zu]: \"%s\" named twice (also queues[%zu])",
                                      i, json_string_value(q), k);
                    goto bad;
                }
        }
    }
    json_t *skills = json_object_get(j, "skills");
    if (skills) {
        if (!json_is_array(skills) || json_array_size(skills) > LIST_MAX) {
            acdm_http_problem(r, 400, "Invalid field", "skills: expected an array of skills (\"wmo\" or "
                              "{\"name\": \"wmo\", \"level\": 3}; at most %d)", LIST_MAX);
            goto bad;
        }
        size_t i;
        json_t *s;
        json_array_foreach(skills, i, s) {
            if (!json_is_string(s) && !json_is_object(s)) {
                acdm_http_problem(r, 400, "Invalid field", "skills[%zu]: expected a skill name or "
                                  "{\"name\": ..., \"level\": 1..100}", i);
                goto bad;
            }
        }
    }
    json_t *cap = json_object_get(j, "capacity");
    if (cap) {
        if (!json_is_object(cap)) {
            acdm_http_problem(r, 400, "Invalid field", "capacity: expected an object of kind -> 0..100 "
                              "(voice, chat, email, sms, whatsapp, callback)");
            goto bad;
        }
        const char *key;
        json_t *v;
        json_object_foreach(cap, key, v) {
            if (!json_is_integer(v)) {
                acdm_http_problem(r, 400, "Invalid field", "capacity.%.40s: expected an integer 0..100", key);
                goto bad;
            }
        }
    }
    json_t *ph = json_object_get(j, "phone");
    if (ph && !json_is_string(ph)) {
        acdm_http_problem(r, 400, "Invalid field", "phone: expected \"register\" or a SIP URI (a string)");
        goto bad;
    }
    json_t *eps = json_object_get(j, "endpoints");
    if (eps && !json_is_object(eps)) {
        acdm_http_problem(r, 400, "Invalid field", "endpoints: expected an object of endpoint name -> address");
        goto bad;
    }
    json_t *vb = json_object_get(j, "voice_blocks");
    if (vb && !json_is_boolean(vb)) {
        acdm_http_problem(r, 400, "Invalid field", "voice_blocks: expected true or false");
        goto bad;
    }
    /* stored in a fixed key order, so the file reads the same whatever the client sent */
    json_t *def = json_object();
    for (int i = 0; known[i]; i++) {
        json_t *x = json_object_get(j, known[i]);
        if (x) json_object_set(def, known[i], x);
    }
    json_decref(j);
    return def;
bad:
    json_decref(j);
    return NULL;
}

/* ------------------------------------------------------------------ the change */

/* Applies op for item id of list m (def: the new item for add/put, borrowed) through the list's
 * fragment and a reload. true when applied (the caller replies); false after replying with the
 * problem. */
static bool change(acdm_engine *e, acdm_req *r, const acdm_principal *who, const managed *m, list_op op,
                   const char *id, json_t *def)
{
    frag_paths fp;
    paths_of(e, m, &fp);
    char err[16384];
    err[0] = 0;

    /* the fragment as it is now */
    char *old = NULL;
    size_t old_len = 0;
    int rc = read_all(fp.path, &old, &old_len, err, sizeof err);
    bool existed = rc == 0;
    if (rc && rc != ACDM_ENOENT) { acdm_http_problem(r, 500, "Fragment unreadable", "%s", err); return false; }
    json_t *doc;
    if (existed) {
        json_error_t jerr;
        doc = json_loadb(old, old_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc || !json_is_object(doc) ||
            (json_object_get(doc, m->key) && !json_is_array(json_object_get(doc, m->key)))) {
            acdm_http_problem(r, 409, "Fragment not usable",
                              "%s: %s%s%s; the API manages this file: fix or remove it by hand (and reload)", fp.path,
                              doc ? "expected an object with an array \"" : jerr.text, doc ? m->key : "",
                              doc ? "\"" : "");
            json_decref(doc);
            free(old);
            return false;
        }
    } else {
        doc = json_object();
    }
    json_t *arr = json_object_get(doc, m->key);
    if (!arr) {
        arr = json_array();
        json_object_set_new(doc, m->key, arr);
    }

    /* who owns the item */
    long ix = item_index(m, arr, id);
    char other[8192];
    bool elsewhere = defined_elsewhere(e, m, &fp, id, other, sizeof other);
    bool running = m->running(acdm_model_config(acdm_engine_model(e)), id);
    const char *verb = op == OP_DELETE ? "removed" : "changed";
    int st = 0;
    if (op == OP_ADD && ix >= 0) {
        st = 409;
        int n = snprintf(err, sizeof err, "%s %s already exists (defined in %s)", m->what, id, fp.path);
        if (m->put_route && n > 0 && (size_t)n < sizeof err)
            snprintf(err + n, sizeof err - (size_t)n, "; change it with %s%s", m->put_route, id);
    } else if (op == OP_ADD && (elsewhere || running)) {
        st = 409;
        snprintf(err, sizeof err, "%s %s already exists (defined in %s)", m->what, id,
                 elsewhere ? other : "the running configuration");
    } else if (op != OP_ADD && ix < 0 && elsewhere) {
        st = 409;
        snprintf(err, sizeof err, "%s %s is defined in %s, not through the API: it cannot be %s here; "
                 "edit that file and reload", m->what, id, other, verb);
    } else if (op != OP_ADD && ix < 0 && running) {
        st = 409;
        snprintf(err, sizeof err, "%s %s is not API-managed (not in %s): it cannot be %s here",
                 m->what, id, fp.path, verb);
    } else if (op != OP_ADD && ix < 0) {
        st = 404;
        snprintf(err, sizeof err, "%s %s: no such %s", m->what, id, m->what);
    }
    if (st) {
        acdm_http_problem(r, st, st == 404 ? "Not found" : "Conflict", "%s", err);
        json_decref(doc);
        free(old);
        return false;
    }

    /* the new fragment */
    if (op == OP_ADD) json_array_append(arr, def);
    else if (op == OP_PUT) json_array_set(arr, (size_t)ix, def);
    else json_array_remove(arr, (size_t)ix);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!text) { free(old); acdm_http_problem(r, 500, "Not stored", "out of memory"); return false; }
    size_t tl = strlen(text);
    char *nt = realloc(text, tl + 2);
    if (nt) { text = nt; text[tl++] = '\n'; text[tl] = 0; }

    bool made_dir = false;
    if (mkdir(fp.dir, 0755) == 0) made_dir = true;
    else if (errno != EEXIST) {
        acdm_http_problem(r, 500, "Not stored", "%s: cannot create the fragment folder: %s", fp.dir, strerror(errno));
        free(text);
        free(old);
        return false;
    }
    if (write_atomic(fp.dir, fp.path, text, tl, err, sizeof err)) {
        if (made_dir) rmdir(fp.dir);
        acdm_http_problem(r, 500, "Not stored", "%s", err);
        free(text);
        free(old);
        return false;
    }
    free(text);

    /* all or nothing: the reload validates everything; on refusal the old fragment returns */
    rc = acdm_engine_reload(e, err, sizeof err);
    if (rc) {
        char rerr[8192] = "";
        int wrc = existed ? write_atomic(fp.dir, fp.path, old, old_len, rerr, sizeof rerr)
                          : (unlink(fp.path) && errno != ENOENT ? ACDM_EIO : 0);
        if (!existed && wrc) snprintf(rerr, sizeof rerr, "%s: cannot remove: %s", fp.path, strerror(errno));
        if (made_dir) rmdir(fp.dir);
        free(old);
        if (wrc) {
            acdm_log(ACDM_LOG_ERR, WHO, "%s %s: the refused fragment could not be taken back: %s", m->what, id, rerr);
            size_t n = strlen(err);
            snprintf(err + n, sizeof err - n, "\n%s (the refused file is still in place: fix it by hand)", rerr);
        }
        acdm_log(ACDM_LOG_NOTICE, WHO, "%s %s not %s by %s: the configuration was refused", m->what, id,
                 op == OP_ADD ? "added" : verb, who->name);
        problem_lines(r, 422, "Config rejected", err);
        return false;
    }
    if (existed) {
        /* the version before this change, for an operator's undo (hidden: never loaded) */
        char prev[4608], perr[8192];
        snprintf(prev, sizeof prev, "%s/.%s.prev", fp.dir, m->file);
        if (write_atomic(fp.dir, prev, old, old_len, perr, sizeof perr))
            acdm_log(ACDM_LOG_WARN, WHO, "%s", perr);
    }
    free(old);

    json_t *extra = json_pack("{s:s}", "file", fp.path);
    if (def) json_object_set(extra, "definition", def);
    if (m->applied) m->applied(e, op, id, extra);
    acdm_engine_audit(e, who, m->audit[op], id, extra);
    json_decref(extra);
    acdm_log(ACDM_LOG_NOTICE, WHO, "%s %s %s by %s (%s)", m->what, id,
             op == OP_ADD ? "added" : op == OP_PUT ? "changed" : "removed", who->name, fp.path);
    return true;
}

/* ------------------------------------------------------------------ agents */

/* A removed agent's API tokens stop working, also if the same id is added again later (their
 * sockets were closed by the reload: acdm_api_drop_removed_agents). */
static void agent_applied(acdm_engine *e, list_op op, const char *id, json_t *extra)
{
    if (op != OP_DELETE) return;
    int revoked = 0;
    if (acdm_engine_revoke_agent_tokens(e, id, &revoked))
        acdm_log(ACDM_LOG_ERR, WHO, "agent %s removed, but revoking their tokens failed", id);
    json_object_set_new(extra, "tokens_revoked", json_integer(revoked));
}

static const managed AGENTS = {"agents", "agent", ACDM_AGENTS_FRAGMENT, "id", "PUT /api/v1/agents/",
                               {"agent_add", "agent_update", "agent_remove"}, agent_running, agent_applied};

/* The agent after a change, as GET /api/v1/agents/{id} has it. */
static void reply_agent(acdm_engine *e, acdm_req *r, list_op op, const char *id)
{
    if (op == OP_DELETE) { acdm_api_reply_committed(e, r, 204, NULL); return; }
    acdm_agent *a = acdm_model_agent(acdm_engine_model(e), id);
    if (op == OP_ADD) {
        char loc[128];
        snprintf(loc, sizeof loc, "/api/v1/agents/%s", id);
        acdm_http_add_header(r, "Location", loc);
    }
    acdm_api_reply_committed(e, r, op == OP_ADD ? 201 : 200, a ? acdm_engine_agent_json(e, a) : json_pack("{s:s}", "id", id));
}

/* ------------------------------------------------------------------ routes */

static void post_agent(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor", &who)) return;
    json_t *def = agent_from_body(r, NULL);
    if (!def) return;
    char id[ACDM_NAME_MAX + 1];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(def, "id")));
    if (change(e, r, &who, &AGENTS, OP_ADD, id, def)) reply_agent(e, r, OP_ADD, id);
    json_decref(def);
}

static void put_agent(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor", &who)) return;
    const char *id = acdm_req_param(r, "id");
    if (!acdm_config_name_ok(id)) { acdm_http_problem(r, 404, "Not found", "agent %.64s: no such agent", id); return; }
    json_t *def = agent_from_body(r, id);
    if (!def) return;
    if (change(e, r, &who, &AGENTS, OP_PUT, id, def)) reply_agent(e, r, OP_PUT, id);
    json_decref(def);
}

static void delete_agent(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor", &who)) return;
    const char *id = acdm_req_param(r, "id");
    if (!acdm_config_name_ok(id)) { acdm_http_problem(r, 404, "Not found", "agent %.64s: no such agent", id); return; }
    if (change(e, r, &who, &AGENTS, OP_DELETE, id, NULL)) reply_agent(e, r, OP_DELETE, id);
}

/* ------------------------------------------------------------------ topics and reason codes */

static const managed TOPICS = {"topics", "topic", ACDM_LISTS_FRAGMENT, NULL, NULL,
                               {"topic_add", "topic_update", "topic_remove"}, topic_running, NULL};
static const managed REASONS = {"reason_codes", "reason code", ACDM_LISTS_FRAGMENT, "code",
                                "PUT /api/v1/reason-codes/",
                                {"reason_code_add", "reason_code_update", "reason_code_remove"},
                                reason_running, NULL};

/* POST /api/v1/topics {"name": "..."}: a topic agents can register (R41). */
static void post_topic(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin", &who)) return;
    static const char *const known[] = {"name", NULL};
    json_t *j = acdm_api_body_object(r, false, known);
    if (!j) return;
    json_t *name = json_object_get(j, "name");
    if (!json_is_string(name) || !json_string_length(name) || acdm_utf8_chars(json_string_value(name)) > TEXT_MAX) {
        acdm_http_problem(r, 400, "Invalid field", "name: required, the topic (a string of 1 to %d characters)", TEXT_MAX);
        json_decref(j);
        return;
    }
    json_t *def = json_string(json_string_value(name));
    if (change(e, r, &who, &TOPICS, OP_ADD, json_string_value(name), def)) {
        acdm_http_add_header(r, "Location", "/api/v1/topics");
        acdm_api_reply_committed(e, r, 201, acdm_api_topics_json(acdm_model_config(acdm_engine_model(e))));
    }
    json_decref(def);
    json_decref(j);
}

/* DELETE /api/v1/topics/{name}: berichten keep the topics they were given. */
static void delete_topic(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin", &who)) return;
    if (change(e, r, &who, &TOPICS, OP_DELETE, acdm_req_param(r, "name"), NULL))
        acdm_api_reply_committed(e, r, 204, NULL);
}

/* A reason code from the body: {"code", "label"}; on PUT the code comes from the path (the
 * body's, if any, must be the same). NULL after a 400. */
static json_t *reason_from_body(acdm_req *r, const char *path_code)
{
    static const char *const known[] = {"code", "label", NULL};
    json_t *j = acdm_api_body_object(r, false, known);
    if (!j) return NULL;
    json_t *code = json_object_get(j, "code");
    json_t *label = json_object_get(j, "label");
    const char *c = code ? json_string_value(code) : path_code;
    if (!c || !acdm_config_name_ok(c)) {
        acdm_http_problem(r, 400, "Invalid field", "code: required, a name of 1 to %d letters, digits, '_', '.' or '-'",
                          ACDM_NAME_MAX);
    } else if (path_code && strcmp(c, path_code)) {
        acdm_http_problem(r, 400, "Invalid field", "code: \"%s\" differs from the code in the path (\"%s\"); "
                          "remove it and add the new code", c, path_code);
    } else if (!json_is_string(label) || !json_string_length(label) || acdm_utf8_chars(json_string_value(label)) > TEXT_MAX) {
        acdm_http_problem(r, 400, "Invalid field", "label: required, what agents see (a string of 1 to %d characters)",
                          TEXT_MAX);
    } else {
        json_t *def = json_pack("{s:s, s:O}", "code", c, "label", label);
        json_decref(j);
        return def;
    }
    json_decref(j);
    return NULL;
}

static void reason_change(acdm_engine *e, acdm_req *r, list_op op)
{
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin", &who)) return;
    const char *path_code = op == OP_ADD ? NULL : acdm_req_param(r, "code");
    json_t *def = op == OP_DELETE ? NULL : reason_from_body(r, path_code);
    if (op != OP_DELETE && !def) return;
    const char *code = def ? json_string_value(json_object_get(def, "code")) : path_code;
    if (change(e, r, &who, &REASONS, op, code, def)) {
        if (op == OP_DELETE) acdm_api_reply_committed(e, r, 204, NULL);
        else {
            if (op == OP_ADD) acdm_http_add_header(r, "Location", "/api/v1/reason-codes");
            acdm_api_reply_committed(e, r, op == OP_ADD ? 201 : 200, json_incref(def));
        }
    }
    json_decref(def);
}

static void post_reason(void *user, acdm_req *r) { reason_change(user, r, OP_ADD); }
static void put_reason(void *user, acdm_req *r) { reason_change(user, r, OP_PUT); }
static void delete_reason(void *user, acdm_req *r) { reason_change(user, r, OP_DELETE); }

/* ------------------------------------------------------------------ standard answers (snippets)
 *
 * The functional admin keeps the desk's standard answers like the topics: in the same fragment
 * (acdm.d/51-lists-api.json, key "snippets"), through the same all-or-nothing change. */

static const managed SNIPPETS = {"snippets", "snippet", ACDM_LISTS_FRAGMENT, "id", "PUT /api/v1/snippets/",
                                 {"snippet_add", "snippet_update", "snippet_remove"}, snippet_running, NULL};

static json_t *snippet_json(const acdm_snippet_def *d)
{
    return json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "id", d->id, "title", d->title, "text", d->text,
                     "queue", d->queue, "language", d->language);
}

/* GET /api/v1/snippets[?queue=Q][&language=L]: every standard answer, or those usable in queue Q
 * (its own and those for every queue) and language L (its own and those for every language). */
static void get_snippets(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor agent", &who)) return;
    const acdm_config *cfg = acdm_model_config(acdm_engine_model(e));
    const char *q = acdm_req_query(r, "queue"), *lang = acdm_req_query(r, "language");
    if (q && !acdm_config_queue(cfg, q)) {
        acdm_http_problem(r, 400, "Invalid parameter", "queue: no queue named \"%.64s\"", q);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < cfg->n_snippets; i++) {
        const acdm_snippet_def *d = &cfg->snippets[i];
        if (q && d->queue && strcmp(d->queue, q)) continue;
        if (lang && d->language && strcmp(d->language, lang)) continue;
        json_array_append_new(arr, snippet_json(d));
    }
    acdm_http_reply_json(r, 200, json_pack("{s:o}", "snippets", arr));
}

/* A snippet from the body: {"id", "title", "text", "queue"?, "language"?}; on PUT the id comes
 * from the path (the body's, if any, must be the same). The validator checks the queue exists
 * and the language's form. NULL after a 400. */
static json_t *snippet_from_body(acdm_req *r, const char *path_id)
{
    static const char *const known[] = {"id", "title", "text", "queue", "language", NULL};
    json_t *j = acdm_api_body_object(r, false, known);
    if (!j) return NULL;
    json_t *idv = json_object_get(j, "id");
    const char *id = idv ? json_string_value(idv) : path_id;
    json_t *title = json_object_get(j, "title"), *text = json_object_get(j, "text");
    json_t *queue = json_object_get(j, "queue"), *lang = json_object_get(j, "language");
    if (!id || !acdm_config_name_ok(id)) {
        acdm_http_problem(r, 400, "Invalid field", "id: required, a name of 1 to %d letters, digits, '_', '.' or '-'",
                          ACDM_NAME_MAX);
    } else if (path_id && strcmp(id, path_id)) {
        acdm_http_problem(r, 400, "Invalid field", "id: \"%s\" differs from the snippet in the path (\"%s\"); "
                          "remove it and add the new id", id, path_id);
    } else if (!json_is_string(title) || !json_string_length(title) || acdm_utf8_chars(json_string_value(title)) > 200) {
        acdm_http_problem(r, 400, "Invalid field", "title: required, what agents search for (a string of 1 to 200 characters)");
    } else if (!json_is_string(text) || !json_string_length(text) || json_string_length(text) > TEXT_MAX) {
        acdm_http_problem(r, 400, "Invalid field", "text: required, the answer (a string of 1 to %d bytes; "
                          "placeholders {klant}, {agent}, {wachtrij})", TEXT_MAX);
    } else if (queue && !json_is_null(queue) && !json_is_string(queue)) {
        acdm_http_problem(r, 400, "Invalid field", "queue: expected a queue name, or null for every queue");
    } else if (lang && !json_is_null(lang) && !json_is_string(lang)) {
        acdm_http_problem(r, 400, "Invalid field", "language: expected a language code such as \"nl\", or null for every language");
    } else {
        json_t *def = json_pack("{s:s, s:O, s:O}", "id", id, "title", title, "text", text);
        if (json_is_string(queue)) json_object_set(def, "queue", queue);
        if (json_is_string(lang)) json_object_set(def, "language", lang);
        json_decref(j);
        return def;
    }
    json_decref(j);
    return NULL;
}

static void snippet_change(acdm_engine *e, acdm_req *r, list_op op)
{
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin", &who)) return;
    const char *path_id = op == OP_ADD ? NULL : acdm_req_param(r, "id");
    if (path_id && !acdm_config_name_ok(path_id)) {
        acdm_http_problem(r, 404, "Not found", "snippet %.64s: no such snippet", path_id);
        return;
    }
    json_t *def = op == OP_DELETE ? NULL : snippet_from_body(r, path_id);
    if (op != OP_DELETE && !def) return;
    char id[ACDM_NAME_MAX + 1];
    snprintf(id, sizeof id, "%s", def ? json_string_value(json_object_get(def, "id")) : path_id);
    if (change(e, r, &who, &SNIPPETS, op, id, def)) {
        if (op == OP_DELETE) acdm_api_reply_committed(e, r, 204, NULL);
        else {
            char loc[128];
            snprintf(loc, sizeof loc, "/api/v1/snippets/%s", id);
            if (op == OP_ADD) acdm_http_add_header(r, "Location", loc);
            acdm_api_reply_committed(e, r, op == OP_ADD ? 201 : 200, json_incref(def));
        }
    }
    json_decref(def);
}

static void post_snippet(void *user, acdm_req *r) { snippet_change(user, r, OP_ADD); }
static void put_snippet(void *user, acdm_req *r) { snippet_change(user, r, OP_PUT); }
static void delete_snippet(void *user, acdm_req *r) { snippet_change(user, r, OP_DELETE); }

int acdm_api_agents_register(acdm_engine *e)
{
    acdm_http *h = acdm_engine_http(e);
    acdm_http_route(h, "POST", "/api/v1/agents", post_agent, e);
    acdm_http_route(h, "PUT", "/api/v1/agents/{id}", put_agent, e);
    acdm_http_route(h, "DELETE", "/api/v1/agents/{id}", delete_agent, e);
    acdm_http_route(h, "POST", "/api/v1/topics", post_topic, e);
    acdm_http_route(h, "DELETE", "/api/v1/topics/{name}", delete_topic, e);
    acdm_http_route(h, "POST", "/api/v1/reason-codes", post_reason, e);
    acdm_http_route(h, "PUT", "/api/v1/reason-codes/{code}", put_reason, e);
    acdm_http_route(h, "DELETE", "/api/v1/reason-codes/{code}", delete_reason, e);
    acdm_http_route(h, "GET", "/api/v1/snippets", get_snippets, e);
    acdm_http_route(h, "POST", "/api/v1/snippets", post_snippet, e);
    acdm_http_route(h, "PUT", "/api/v1/snippets/{id}", put_snippet, e);
    acdm_http_route(h, "DELETE", "/api/v1/snippets/{id}", delete_snippet, e);
    return 0;
}
