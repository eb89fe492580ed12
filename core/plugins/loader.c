/* loader.c -- finding and loading plugins: dlopen of the folder's *.so files, the descriptor
 * and ABI checks, refusals, enable/unload, and the drop-in watch (uv_fs_event, debounced). */
#include "plugins/plugins_int.h"

#define WHO "plugins"

/* ------------------------------------------------------------------ loader */

void acdm_plg_set_refusal(acdm_plugins *p, const char *file, const char *reason)
{
    refusal **rp = &p->refused;
    for (; *rp; rp = &(*rp)->next)
        if (!strcmp((*rp)->file, file)) break;
    if (!reason) {
        if (*rp) { refusal *r = *rp; *rp = r->next; free(r->file); free(r->reason); free(r); }
        return;
    }
    if (*rp) { free((*rp)->reason); (*rp)->reason = strdup(reason); return; }
    refusal *r = calloc(1, sizeof *r);
    if (!r) return;
    r->file = strdup(file);
    r->reason = strdup(reason);
    r->next = p->refused;
    p->refused = r;
}

/* 1: the ELF file is whole (every segment and the section table are inside the file);
 * 0: it is not (yet); -1: not an ELF file at all. Guards dlopen against a half-copied file,
 * whose pages would raise SIGBUS when touched. Checked on the private copy, so what is checked
 * is what is loaded. */
static int elf_complete_fd(int fd)
{
    struct stat st;
    Elf64_Ehdr eh;
    if (fstat(fd, &st) < 0 || pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh) return 0;
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG)) return -1;
    if (eh.e_ident[EI_CLASS] != ELFCLASS64) return 1; /* let dlopen judge */
    uint64_t size = (uint64_t)st.st_size;
    if (eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize > size) return 0;
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 4096) return 0;
    for (int k = 0; k < eh.e_phnum; k++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)k * sizeof ph)) != (ssize_t)sizeof ph)
            return 0;
        if (ph.p_type == PT_LOAD && ph.p_offset + ph.p_filesz > size) return 0;
    }
    return 1;
}

static int elf_complete(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int ok = elf_complete_fd(fd);
    close(fd);
    return ok;
}

#define PLUGIN_FILE_MAX (512u << 20)

/* Copies the file at path into a sealed memfd (what is loaded then never changes, whatever
 * happens to the file). Returns the memfd, or -1 with the reason in why; *st is the file's. */
static int private_copy(const char *path, struct stat *st, char *why, size_t whylen)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) { snprintf(why, whylen, "cannot open: %s", strerror(errno)); return -1; }
    if (fstat(in, st) < 0 || !S_ISREG(st->st_mode)) {
        snprintf(why, whylen, "not a regular file");
        close(in);
        return -1;
    }
    const char *base = strrchr(path, '/');
    char name[96];
    snprintf(name, sizeof name, "acdm-plugin:%s", base ? base + 1 : path);
    int mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) {
        snprintf(why, whylen, "memfd_create: %s", strerror(errno));
        close(in);
        return -1;
    }
    char buf[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { snprintf(why, whylen, "read: %s", strerror(errno)); goto fail; }
        if (n == 0) break;
        total += (size_t)n;
        if (total > PLUGIN_FILE_MAX) {
            snprintf(why, whylen, "larger than %u MiB", PLUGIN_FILE_MAX >> 20);
            goto fail;
        }
        for (ssize_t o = 0; o < n;) {
            ssize_t w = write(mfd, buf + o, (size_t)(n - o));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) { snprintf(why, whylen, "copying: %s", strerror(errno)); goto fail; }
            o += w;
        }
    }
    close(in);
    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    return mfd;
fail:
    close(in);
    close(mfd);
    return -1;
}

/* A readable reason for a dlopen failure: an undefined acdm_* symbol is a core internal the
 * plugin tried to call (acdmd exports nothing to plugins). dlerror names the memfd path; the
 * file's path is put in its place. */
static void dlopen_reason(const char *e, const char *path, char *buf, size_t len)
{
    const char *u = e ? strstr(e, "undefined symbol: ") : NULL;
    if (u) {
        const char *sym = u + strlen("undefined symbol: ");
        size_t n = strcspn(sym, " ,(");
        if (!strncmp(sym, "acdm_", 5)) {
            snprintf(buf, len, "calls %.*s, which is not part of the plugin ABI: acdmd exports "
                     "no functions to plugins; reach the core only through the acdm_host table "
                     "handed to init (<acdm/plugin.h>) and the static-inline helpers of "
                     "<acdm/plugin_util.h>", (int)n, sym);
            return;
        }
        snprintf(buf, len, "undefined symbol %.*s: link the plugin against the library that "
                 "defines it (channels/<name>/plugin.mk <name>_LIBS)", (int)n, sym);
        return;
    }
    const char *colon = e ? strstr(e, ": ") : NULL;   /* "/proc/<pid>/fd/<n>: reason" */
    snprintf(buf, len, "dlopen failed: %s", colon ? colon + 2 : e ? e : "unknown error");
    (void)path;
}

static bool kinds_valid(const char *kinds, char *bad, size_t badlen)
{
    if (!kinds || !*kinds) { snprintf(bad, badlen, "(none)"); return false; }
    const char *s = kinds;
    while (*s) {
        size_t n = strcspn(s, ",");
        char k[32];
        size_t b = 0, e = n;
        while (b < e && s[b] == ' ') b++;
        while (e > b && s[e - 1] == ' ') e--;
        if (e - b >= sizeof k) { snprintf(bad, badlen, "%.*s", (int)n, s); return false; }
        memcpy(k, s + b, e - b);
        k[e - b] = 0;
        if (acdm_kind_parse(k) < 0) { snprintf(bad, badlen, "%s", k); return false; }
        s += n;
        if (*s == ',') s++;
    }
    return true;
}

/* Checks a descriptor; returns NULL or the reason (in buf). */
static const char *check_descriptor(acdm_plugins *p, const acdm_plugin *d, const plugin *ignore,
                                    char *buf, size_t len)
{
    if (!d) return "acdm_plugin_entry() returned NULL";
    if (d->struct_size < offsetof(acdm_plugin, abi_minor) + sizeof d->abi_minor) {
        snprintf(buf, len, "descriptor struct_size %zu is too small to hold an ABI version",
                 d->struct_size);
        return buf;
    }
    if (d->abi_major != ACDM_PLUGIN_ABI_MAJOR) {
        snprintf(buf, len, "built for plugin ABI %u.%u, this core speaks %d.%d: rebuild the "
                 "plugin against this acdm's <acdm/plugin.h>", d->abi_major, d->abi_minor,
                 ACDM_PLUGIN_ABI_MAJOR, ACDM_PLUGIN_ABI_MINOR);
        return buf;
    }
    if (d->abi_minor > ACDM_PLUGIN_ABI_MINOR) {
        snprintf(buf, len, "built for plugin ABI %u.%u, newer than this core's %d.%d: upgrade "
                 "acdm or rebuild the plugin", d->abi_major, d->abi_minor,
                 ACDM_PLUGIN_ABI_MAJOR, ACDM_PLUGIN_ABI_MINOR);
        return buf;
    }
    if (d->struct_size < DESC_NEEDS) {
        snprintf(buf, len, "descriptor struct_size %zu < %zu that ABI %d.%d reads: not binary "
                 "compatible, rebuild the plugin", d->struct_size, (size_t)DESC_NEEDS,
                 ACDM_PLUGIN_ABI_MAJOR, ACDM_PLUGIN_ABI_MINOR);
        return buf;
    }
    if (!d->name || !*d->name) return "the plugin has no name";
    if (strlen(d->name) > ACDM_NAME_MAX) return "the plugin name is longer than 63 characters";
    if (!d->init) return "mandatory callback init is missing";
    if (!d->deliver) return "mandatory callback deliver is missing";
    char bad[64];
    if (!kinds_valid(d->kinds, bad, sizeof bad)) {
        snprintf(buf, len, "unknown kind \"%s\" in kinds \"%s\"", bad, d->kinds ? d->kinds : "");
        return buf;
    }
    if (d->instance_size > MAX_INSTANCE_SIZE) {
        snprintf(buf, len, "instance_size %zu is larger than %u bytes", d->instance_size,
                 MAX_INSTANCE_SIZE);
        return buf;
    }
    plugin *other = acdm_plg_find_plugin(p, d->name);
    if (other && other != ignore) {
        snprintf(buf, len, "plugin name \"%s\" is already taken by %s", d->name, other->file);
        return buf;
    }
    return NULL;
}

static int refuse(acdm_plugins *p, const char *path, void *dl, int mfd, const char *reason,
                  char *err, size_t errlen)
{
    acdm_log(ACDM_LOG_ERR, WHO, "refused %s: %s", path, reason);
    acdm_plg_set_refusal(p, path, reason);
    if (err && errlen) snprintf(err, errlen, "%s", reason);
    if (dl) dlclose(dl);
    if (mfd >= 0) close(mfd);
    return ACDM_EABI;
}

static void plugin_free(plugin *pl)
{
    if (!pl) return;
    if (pl->dl) dlclose(pl->dl);
    if (pl->memfd >= 0) close(pl->memfd);
    for (size_t k = 0; k < sizeof pl->strs / sizeof pl->strs[0]; k++) free(pl->strs[k]);
    free(pl->file);
    free(pl);
}

/* The descriptor and its strings copied out of the plugin's mapping. */
static bool copy_descriptor(plugin *pl, const acdm_plugin *d)
{
    size_t n = d->struct_size < sizeof pl->desc ? d->struct_size : sizeof pl->desc;
    memset(&pl->desc, 0, sizeof pl->desc);
    memcpy(&pl->desc, d, n);
    pl->desc.struct_size = n;
    const char **fields[5] = {&pl->desc.name, &pl->desc.version, &pl->desc.description,
                              &pl->desc.kinds, NULL};
    if (ACDM_PLUGIN_HAS(&pl->desc, device_endpoint_key)) fields[4] = &pl->desc.device_endpoint_key;
    for (size_t k = 0; k < 5; k++) {
        if (!fields[k] || !*fields[k]) continue;
        if (!(pl->strs[k] = strdup(*fields[k]))) return false;
        *fields[k] = pl->strs[k];
    }
    pl->d = &pl->desc;
    return true;
}

/* Loads a private copy of path and checks it; the plugin is not linked in (ignore: the plugin
 * it is to replace, whose name it may take). 0 with *out, or negative (refusal recorded). */
static int load_candidate(acdm_plugins *p, const char *path, const plugin *ignore, plugin **out,
                          char *err, size_t errlen)
{
    char buf[768];
    struct stat st;
    *out = NULL;
    int mfd = private_copy(path, &st, buf, sizeof buf);
    if (mfd < 0) {
        int gone = errno == ENOENT;
        refuse(p, path, NULL, -1, buf, err, errlen);
        return gone ? ACDM_ENOENT : ACDM_EABI;
    }
    int elf = elf_complete_fd(mfd);
    if (elf < 0) return refuse(p, path, NULL, mfd, "not an ELF shared object", err, errlen);
    if (elf == 0)
        return refuse(p, path, NULL, mfd, "incomplete ELF file (still being copied?)", err, errlen);
    char mpath[64];
    snprintf(mpath, sizeof mpath, "/proc/%ld/fd/%d", (long)getpid(), mfd);
    void *dl = dlopen(mpath, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        dlopen_reason(dlerror(), path, buf, sizeof buf);
        return refuse(p, path, NULL, mfd, buf, err, errlen);
    }
    dlerror();
    void *sym = dlsym(dl, ACDM_PLUGIN_ENTRY_SYMBOL);
    if (!sym)
        return refuse(p, path, dl, mfd, "no exported symbol acdm_plugin_entry (not an acdm plugin, "
                      "or built without ACDM_PLUGIN_EXPORT)", err, errlen);
    acdm_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);   /* object pointer to function pointer, POSIX-style */
    const acdm_plugin *d = entry();
    const char *why = check_descriptor(p, d, ignore, buf, sizeof buf);
    if (why) return refuse(p, path, dl, mfd, why, err, errlen);
    plugin *pl = calloc(1, sizeof *pl);
    if (!pl || !(pl->file = strdup(path))) {
        free(pl);
        return refuse(p, path, dl, mfd, "out of memory", err, errlen);
    }
    pl->dl = dl; pl->memfd = mfd; pl->enabled = true;
    pl->dev = st.st_dev; pl->ino = st.st_ino; pl->mtime = st.st_mtim;
    if (!copy_descriptor(pl, d)) {
        pl->dl = NULL; pl->memfd = -1;
        plugin_free(pl);
        return refuse(p, path, dl, mfd, "out of memory", err, errlen);
    }
    *out = pl;
    return 0;
}

static void link_plugin(acdm_plugins *p, plugin *pl, const char *how)
{
    pl->next = p->plugins;
    p->plugins = pl;
    acdm_plg_set_refusal(p, pl->file, NULL);
    acdm_log(ACDM_LOG_NOTICE, WHO, "%s plugin %s %s (ABI %u.%u, kinds %s) from %s", how,
             pl->d->name, pl->d->version ? pl->d->version : "", pl->d->abi_major,
             pl->d->abi_minor, pl->d->kinds, pl->file);
    if (pl->enabled) acdm_plg_start_waiting(p, pl->d->name);
}

int acdm_plugins_load_file(acdm_plugins *p, const char *path, char *err, size_t errlen)
{
    plugin *pl;
    int rc = load_candidate(p, path, NULL, &pl, err, errlen);
    if (rc) return rc;
    link_plugin(p, pl, "loaded");
    return 0;
}

static bool is_so_name(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' && l > 3 && !strcmp(n + l - 3, ".so");
}

static int so_filter(const struct dirent *e) { return is_so_name(e->d_name); }

static char *dir_path(const acdm_plugins *p, const char *name)
{
    size_t n = strlen(p->dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", p->dir, name);
    return s;
}

/* true when the file at path is the one already loaded from it */
static bool same_file_loaded(acdm_plugins *p, const char *path, const struct stat *st)
{
    plugin *pl = acdm_plg_find_plugin_file(p, path);
    return pl && pl->dev == st->st_dev && pl->ino == st->st_ino &&
           pl->mtime.tv_sec == st->st_mtim.tv_sec && pl->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Replaces the loaded plugin old (none of its instances initialised) by cand. */
static void swap_plugin(acdm_plugins *p, plugin *old, plugin *cand)
{
    cand->enabled = old->enabled;
    for (plugin **pp = &p->plugins; *pp; pp = &(*pp)->next)
        if (*pp == old) { *pp = old->next; break; }
    acdm_log(ACDM_LOG_NOTICE, WHO, "unloaded plugin %s (%s)", old->d->name, old->file);
    plugin_free(old);
    link_plugin(p, cand, "replaced by");
}

/* Loads path unless that very file is loaded; a changed file replaces its plugin when none of
 * the plugin's instances is running, and is remembered (applied when they stop) otherwise. */
static int load_or_replace(acdm_plugins *p, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) return ACDM_ENOENT;
    if (same_file_loaded(p, path, &st)) return 1;
    plugin *old = acdm_plg_find_plugin_file(p, path);
    if (!old) return acdm_plugins_load_file(p, path, NULL, 0);
    if (old->n_instances > 0) {
        if (!old->changed)
            acdm_log(ACDM_LOG_WARN, WHO, "%s changed while plugin %s runs %d instance(s): the new "
                     "build is loaded when they stop (or now: acdmctl plugin reload %s)", path,
                     old->d->name, old->n_instances, old->d->name);
        old->changed = true;
        return ACDM_ESTATE;
    }
    plugin *cand;
    int rc = load_candidate(p, path, old, &cand, NULL, 0);
    if (rc) return rc;     /* refused: the old build stays loaded (and listed as refused) */
    swap_plugin(p, old, cand);
    return 0;
}

static void idle_fire(uv_timer_t *t);

void acdm_plg_plugin_idle(acdm_plugins *p, plugin *pl)
{
    if (!pl->changed || pl->n_instances > 0 || !p->idle) return;
    uv_timer_start(p->idle, idle_fire, 0, 0);
}

/* Applies the changes remembered while instances ran, for plugins none of whose instances runs
 * now (run from the loop, never inside an instance's stop). */
static void idle_fire(uv_timer_t *t)
{
    acdm_plugins *p = t->data;
    for (bool again = true; again;) {
        again = false;
        for (plugin *pl = p->plugins; pl; pl = pl->next) {
            if (!pl->changed || pl->n_instances > 0) continue;
            pl->changed = false;
            char *path = strdup(pl->file);
            if (!path) return;
            acdm_log(ACDM_LOG_NOTICE, WHO, "plugin %s has no running instance now: applying the "
                     "change of %s", pl->d->name, path);
            int rc = load_or_replace(p, path);
            free(path);
            if (rc == 0) { again = true; break; }   /* the list changed */
        }
    }
}

int acdm_plugins_reload(acdm_plugins *p, const char *plugin_name, char *err, size_t errlen)
{
    plugin *old = plugin_name ? acdm_plg_find_plugin(p, plugin_name) : NULL;
    if (!old) {
        snprintf(err, errlen, "no plugin named \"%s\" is loaded", plugin_name ? plugin_name : "");
        return ACDM_ENOENT;
    }
    plugin *cand;
    char why[768];
    int rc = load_candidate(p, old->file, old, &cand, why, sizeof why);
    if (rc) {
        snprintf(err, errlen, "%s: %s; plugin %s keeps running the build loaded before", old->file,
                 why, plugin_name);
        return rc == ACDM_ENOENT ? ACDM_ENOENT : ACDM_EINVAL;
    }
    if (strcmp(cand->d->name, old->d->name)) {
        snprintf(err, errlen, "%s now holds plugin \"%s\", not \"%s\": not replaced (load it as a "
                 "new plugin by dropping it into the folder under its own file name)", old->file,
                 cand->d->name, old->d->name);
        plugin_free(cand);
        return ACDM_EINVAL;
    }
    int stopped = 0;
    for (acdm_instance *i = p->insts; i; i = i->next)
        if (i->pl == old) { acdm_plg_inst_stop(i, IS_WAITING); stopped++; }
    old->changed = false;
    acdm_log(ACDM_LOG_NOTICE, WHO, "reloading plugin %s from %s (%d instance(s) stopped)",
             plugin_name, old->file, stopped);
    swap_plugin(p, old, cand);
    return 0;
}

int acdm_plugins_load_all(acdm_plugins *p)
{
    struct dirent **list = NULL;
    int n = scandir(p->dir, &list, so_filter, alphasort);
    if (n < 0) {
        acdm_log(ACDM_LOG_WARN, WHO, "cannot read plugin folder %s: %s", p->dir, strerror(errno));
        return 0;
    }
    int loaded = 0;
    for (int k = 0; k < n; k++) {
        char *path = dir_path(p, list[k]->d_name);
        if (path && load_or_replace(p, path) == 0) loaded++;
        free(path);
        free(list[k]);
    }
    free(list);
    return loaded;
}

int acdm_plugins_unload(acdm_plugins *p, const char *plugin_name)
{
    for (plugin **pp = &p->plugins; *pp; pp = &(*pp)->next) {
        plugin *pl = *pp;
        if (strcmp(pl->d->name, plugin_name)) continue;
        if (pl->n_instances > 0) return ACDM_ESTATE;
        for (acdm_instance *i = p->insts; i; i = i->next)
            if (!strcmp(i->plugin_name, plugin_name) && i->state == IS_DISABLED)
                i->state = IS_WAITING;
        *pp = pl->next;
        acdm_log(ACDM_LOG_NOTICE, WHO, "unloaded plugin %s (%s)", pl->d->name, pl->file);
        plugin_free(pl);
        return 0;
    }
    return ACDM_ENOENT;
}

int acdm_plugins_enable(acdm_plugins *p, const char *plugin_name, bool enabled)
{
    plugin *pl = plugin_name ? acdm_plg_find_plugin(p, plugin_name) : NULL;
    if (!pl) return ACDM_ENOENT;
    if (pl->enabled == enabled) return 0;
    pl->enabled = enabled;
    acdm_log(ACDM_LOG_NOTICE, WHO, "plugin %s %s", plugin_name, enabled ? "enabled" : "disabled");
    if (enabled) { acdm_plg_start_waiting(p, plugin_name); return 0; }
    for (acdm_instance *i = p->insts; i; i = i->next)
        if (!strcmp(i->plugin_name, plugin_name)) {
            if (i->pl) acdm_plg_inst_stop(i, IS_DISABLED);
            else i->state = IS_DISABLED;
            acdm_plg_set_why(i, "plugin %s is disabled (acdmctl plugin enable %s)", plugin_name,
                             plugin_name);
        }
    return 0;
}

/* ------------------------------------------------------------------ hot drop */

static void pending_add(acdm_plugins *p, const char *name)
{
    for (pending_file *f = p->pending; f; f = f->next)
        if (!strcmp(f->name, name)) { f->tries = 0; return; }
    pending_file *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(name))) { free(f); return; }
    f->size = -1;
    f->next = p->pending;
    p->pending = f;
}

static void debounce_fire(uv_timer_t *t)
{
    acdm_plugins *p = t->data;
    bool again = false;
    for (pending_file **fp = &p->pending; *fp;) {
        pending_file *f = *fp;
        char *path = dir_path(p, f->name);
        struct stat st;
        bool done = true;
        if (path && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            bool changed = st.st_size != f->size || st.st_mtim.tv_sec != f->mtime.tv_sec ||
                           st.st_mtim.tv_nsec != f->mtime.tv_nsec;
            f->size = st.st_size;
            f->mtime = st.st_mtim;
            if (same_file_loaded(p, path, &st)) done = true;
            else if ((changed || elf_complete(path) == 0) && ++f->tries < DEBOUNCE_TRIES)
                done = false;   /* still being written: look again after the next quiet spell */
            else
                load_or_replace(p, path);
        }
        free(path);
        if (done) { *fp = f->next; free(f->name); free(f); }
        else { again = true; fp = &f->next; }
    }
    if (again) uv_timer_start(p->debounce, debounce_fire, DEBOUNCE_MS, 0);
}

static void fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)events;
    acdm_plugins *p = h->data;
    if (status < 0) {
        acdm_log(ACDM_LOG_WARN, WHO, "watching %s: %s", p->dir, uv_strerror(status));
        return;
    }
    if (filename) {
        if (!is_so_name(filename)) return;
        pending_add(p, filename);
    } else {                                /* no name given: look at every .so */
        struct dirent **list = NULL;
        int n = scandir(p->dir, &list, so_filter, alphasort);
        for (int k = 0; k < n; k++) { pending_add(p, list[k]->d_name); free(list[k]); }
        free(list);
    }
    /* every event restarts the quiet period */
    uv_timer_start(p->debounce, debounce_fire, DEBOUNCE_MS, 0);
}

int acdm_plugins_watch(acdm_plugins *p)
{
    if (p->fsev) return 0;
    p->fsev = calloc(1, sizeof *p->fsev);
    p->debounce = calloc(1, sizeof *p->debounce);
    if (!p->fsev || !p->debounce) {
        free(p->fsev); free(p->debounce);
        p->fsev = NULL; p->debounce = NULL;
        return ACDM_ENOMEM;
    }
    uv_fs_event_init(p->env.loop, p->fsev);
    uv_timer_init(p->env.loop, p->debounce);
    p->fsev->data = p;
    p->debounce->data = p;
    p->open_handles += 2;
    int rc = uv_fs_event_start(p->fsev, fs_event, p->dir, 0);
    if (rc < 0) {
        acdm_log(ACDM_LOG_ERR, WHO, "cannot watch plugin folder %s: %s", p->dir, uv_strerror(rc));
        acdm_plg_close_owned(p, (uv_handle_t *)p->fsev);
        acdm_plg_close_owned(p, (uv_handle_t *)p->debounce);
        p->fsev = NULL; p->debounce = NULL;
        return ACDM_EIO;
    }
    acdm_log(ACDM_LOG_INFO, WHO, "watching %s for new plugins", p->dir);
    return 0;
}
