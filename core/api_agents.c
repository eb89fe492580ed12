/* api_agents.c -- supervisors and admins add, change and remove agents over REST (R32).
 *
 * API-managed agents are kept in one fragment, acdm.d/50-agents-api.json beside the main config
 * file, and every change takes the same all-or-nothing path as a reload: the new fragment is
 * written atomically (temp file, fsync, rename), acdm_engine_reload validates and applies the
 * whole configuration, and when it refuses, the previous fragment is put back and the caller
 * gets a 422 with the validator's problems. Agents defined in any other file (the main file or
 * another fragment) are not the API's to change: 409 naming that file. All of this runs on the
 * loop thread, so two requests never interleave between the write and the reload. */
#include "api_agents.h"
#include "api_super.h"
#include "log.h"

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

typedef enum { OP_ADD, OP_PUT, OP_DELETE } agent_op;

typedef struct {
    char dir[4096];          /* <folder of the main file>/acdm.d */
    char path[4352];         /* dir/50-agents-api.json */
} frag_paths;

/* ------------------------------------------------------------------ small helpers */


static void paths_of(const acdm_engine *e, frag_paths *p)
{
    const char *slash = strrchr(e->config_path, '/');
    if (slash) snprintf(p->dir, sizeof p->dir, "%.*s/acdm.d", (int)(slash - e->config_path), e->config_path);
    else snprintf(p->dir, sizeof p->dir, "acdm.d");
    snprintf(p->path, sizeof p->path, "%s/%s", p->dir, ACDM_AGENTS_FRAGMENT);
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

/* The index of the agent with this id in arr, or -1. */
static long agent_index(json_t *arr, const char *id)
{
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a) {
        const char *aid = json_string_value(json_object_get(a, "id"));
        if (aid && !strcmp(aid, id)) return (long)i;
    }
    return -1;
}

static int json_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".json");
}

/* Whether a file other than the API fragment defines agent id: the main file first, then the
 * fragments in load order. true with the file's name (as the validator names it) in out. */
static bool defined_elsewhere(const acdm_engine *e, const frag_paths *fp, const char *id, char *out,
                              size_t outlen)
{
    json_t *doc = json_load_file(e->config_path, 0, NULL);
    long ix = doc ? agent_index(json_object_get(doc, "agents"), id) : -1;
    json_decref(doc);
    if (ix >= 0) { snprintf(out, outlen, "%s", e->config_path); return true; }
    struct dirent **list = NULL;
    int n = scandir(fp->dir, &list, json_file, alphasort);
    bool found = false;
    for (int i = 0; i < n; i++) {
        if (!found && strcmp(list[i]->d_name, ACDM_AGENTS_FRAGMENT)) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", fp->dir, list[i]->d_name);
            doc = json_load_file(path, 0, NULL);
            if (doc && agent_index(json_object_get(doc, "agents"), id) >= 0) {
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
    static const char *const known[] = {"id", "name", "queues", "skills", "capacity", "voice_blocks", NULL};
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
    if (name && (!json_is_string(name) || !json_string_length(name) || json_string_length(name) > TEXT_MAX)) {
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

/* Applies op for agent id (def: the new definition for add/put, borrowed) through the fragment
 * and a reload; replies in every case. */
static void change(acdm_engine *e, acdm_req *r, const acdm_principal *who, agent_op op, const char *id,
                   json_t *def)
{
    frag_paths fp;
    paths_of(e, &fp);
    char err[16384];
    err[0] = 0;

    /* the fragment as it is now */
    char *old = NULL;
    size_t old_len = 0;
    int rc = read_all(fp.path, &old, &old_len, err, sizeof err);
    bool existed = rc == 0;
    if (rc && rc != ACDM_ENOENT) { acdm_http_problem(r, 500, "Fragment unreadable", "%s", err); return; }
    json_t *doc;
    if (existed) {
        json_error_t jerr;
        doc = json_loadb(old, old_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc || !json_is_object(doc) ||
            (json_object_get(doc, "agents") && !json_is_array(json_object_get(doc, "agents")))) {
            acdm_http_problem(r, 409, "Fragment not usable",
                              "%s: %s; the API manages this file: fix or remove it by hand (and reload)", fp.path,
                              doc ? "expected an object with an \"agents\" array" : jerr.text);
            json_decref(doc);
            free(old);
            return;
        }
    } else {
        doc = json_object();
    }
    json_t *arr = json_object_get(doc, "agents");
    if (!arr) {
        arr = json_array();
        json_object_set_new(doc, "agents", arr);
    }

    /* who owns the agent */
    long ix = agent_index(arr, id);
    char other[8192];
    bool elsewhere = defined_elsewhere(e, &fp, id, other, sizeof other);
    bool running = acdm_config_agent(acdm_model_config(e->model), id) != NULL;
    const char *verb = op == OP_DELETE ? "removed" : "changed";
    int st = 0;
    if (op == OP_ADD && ix >= 0) {
        st = 409;
        snprintf(err, sizeof err, "agent %s already exists (defined in %s); change it with PUT /api/v1/agents/%s",
                 id, fp.path, id);
    } else if (op == OP_ADD && (elsewhere || running)) {
        st = 409;
        snprintf(err, sizeof err, "agent %s already exists (defined in %s)", id,
                 elsewhere ? other : "the running configuration");
    } else if (op != OP_ADD && ix < 0 && elsewhere) {
        st = 409;
        snprintf(err, sizeof err, "agent %s is defined in %s, not through the API: it cannot be %s here; "
                 "edit that file and reload", id, other, verb);
    } else if (op != OP_ADD && ix < 0 && running) {
        st = 409;
        snprintf(err, sizeof err, "agent %s is not an API-managed agent (not in %s): it cannot be %s here",
                 id, fp.path, verb);
    } else if (op != OP_ADD && ix < 0) {
        st = 404;
        snprintf(err, sizeof err, "agent %s: no such agent", id);
    }
    if (st) {
        acdm_http_problem(r, st, st == 404 ? "Not found" : "Conflict", "%s", err);
        json_decref(doc);
        free(old);
        return;
    }

    /* the new fragment */
    if (op == OP_ADD) json_array_append(arr, def);
    else if (op == OP_PUT) json_array_set(arr, (size_t)ix, def);
    else json_array_remove(arr, (size_t)ix);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!text) { free(old); acdm_http_problem(r, 500, "Not stored", "out of memory"); return; }
    size_t tl = strlen(text);
    char *nt = realloc(text, tl + 2);
    if (nt) { text = nt; text[tl++] = '\n'; text[tl] = 0; }

    bool made_dir = false;
    if (mkdir(fp.dir, 0755) == 0) made_dir = true;
    else if (errno != EEXIST) {
        acdm_http_problem(r, 500, "Not stored", "%s: cannot create the fragment folder: %s", fp.dir, strerror(errno));
        free(text);
        free(old);
        return;
    }
    if (write_atomic(fp.dir, fp.path, text, tl, err, sizeof err)) {
        if (made_dir) rmdir(fp.dir);
        acdm_http_problem(r, 500, "Not stored", "%s", err);
        free(text);
        free(old);
        return;
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
            acdm_log(ACDM_LOG_ERR, WHO, "agent %s: the refused fragment could not be taken back: %s", id, rerr);
            size_t n = strlen(err);
            snprintf(err + n, sizeof err - n, "\n%s (the refused file is still in place: fix it by hand)", rerr);
        }
        acdm_log(ACDM_LOG_NOTICE, WHO, "agent %s not %s by %s: the configuration was refused", id,
                 op == OP_ADD ? "added" : verb, who->name);
        problem_lines(r, 422, "Config rejected", err);
        return;
    }
    if (existed) {
        /* the version before this change, for an operator's undo (hidden: never loaded) */
        char prev[4608], perr[8192];
        snprintf(prev, sizeof prev, "%s/.%s.prev", fp.dir, ACDM_AGENTS_FRAGMENT);
        if (write_atomic(fp.dir, prev, old, old_len, perr, sizeof perr))
            acdm_log(ACDM_LOG_WARN, WHO, "%s", perr);
    }
    free(old);

    /* a removed agent's API tokens stop working, also if the same id is added again later
     * (their sockets were closed by the reload: acdm_api_drop_removed_agents) */
    int revoked = 0;
    if (op == OP_DELETE && acdm_engine_revoke_agent_tokens(e, id, &revoked))
        acdm_log(ACDM_LOG_ERR, WHO, "agent %s removed, but revoking their tokens failed", id);
    static const char *const actions[] = {"agent_add", "agent_update", "agent_remove"};
    json_t *extra = json_pack("{s:s}", "file", fp.path);
    if (def) json_object_set(extra, "definition", def);
    if (op == OP_DELETE) json_object_set_new(extra, "tokens_revoked", json_integer(revoked));
    acdm_engine_audit(e, who, actions[op], id, extra);
    json_decref(extra);
    acdm_log(ACDM_LOG_NOTICE, WHO, "agent %s %s by %s (%s)", id,
             op == OP_ADD ? "added" : op == OP_PUT ? "changed" : "removed", who->name, fp.path);

    if (op == OP_DELETE) { acdm_http_reply(r, 204, NULL, NULL, 0); return; }
    acdm_agent *a = acdm_model_agent(e->model, id);
    if (op == OP_ADD) {
        char loc[128];
        snprintf(loc, sizeof loc, "/api/v1/agents/%s", id);
        acdm_http_add_header(r, "Location", loc);
    }
    acdm_http_reply_json(r, op == OP_ADD ? 201 : 200, a ? acdm_engine_agent_json(e, a) : json_pack("{s:s}", "id", id));
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
    change(e, r, &who, OP_ADD, id, def);
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
    change(e, r, &who, OP_PUT, id, def);
    json_decref(def);
}

static void delete_agent(void *user, acdm_req *r)
{
    acdm_engine *e = user;
    acdm_principal who;
    if (!acdm_api_authorize(e, r, "admin supervisor", &who)) return;
    const char *id = acdm_req_param(r, "id");
    if (!acdm_config_name_ok(id)) { acdm_http_problem(r, 404, "Not found", "agent %.64s: no such agent", id); return; }
    change(e, r, &who, OP_DELETE, id, NULL);
}

int acdm_api_agents_register(acdm_engine *e)
{
    acdm_http *h = e->http;
    acdm_http_route(h, "POST", "/api/v1/agents", post_agent, e);
    acdm_http_route(h, "PUT", "/api/v1/agents/{id}", put_agent, e);
    acdm_http_route(h, "DELETE", "/api/v1/agents/{id}", delete_agent, e);
    return 0;
}
