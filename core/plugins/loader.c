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
 * whose pages would raise SIGBUS when touched. */
static int elf_complete(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat st;
    Elf64_Ehdr eh;
    int ok = 0;
    if (fstat(fd, &st) < 0 || pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh) goto out;
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG)) { ok = -1; goto out; }
    if (eh.e_ident[EI_CLASS] != ELFCLASS64) { ok = 1; goto out; } /* let dlopen judge */
    uint64_t size = (uint64_t)st.st_size;
    if (eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize > size) goto out;
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 4096) goto out;
    for (int k = 0; k < eh.e_phnum; k++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)k * sizeof ph)) != (ssize_t)sizeof ph)
            goto out;
        if (ph.p_type == PT_LOAD && ph.p_offset + ph.p_filesz > size) goto out;
    }
    ok = 1;
out:
    close(fd);
    return ok;
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
static const char *check_descriptor(acdm_plugins *p, const acdm_plugin *d, char *buf, size_t len)
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
    if (other) {
        snprintf(buf, len, "plugin name \"%s\" is already taken by %s", d->name, other->file);
        return buf;
    }
    return NULL;
}

static int refuse(acdm_plugins *p, const char *path, void *dl, const char *reason, char *err,
                  size_t errlen)
{
    acdm_log(ACDM_LOG_ERR, WHO, "refused %s: %s", path, reason);
    acdm_plg_set_refusal(p, path, reason);
    if (err && errlen) snprintf(err, errlen, "%s", reason);
    if (dl) dlclose(dl);
    return ACDM_EABI;
}

int acdm_plugins_load_file(acdm_plugins *p, const char *path, char *err, size_t errlen)
{
    char buf[512];
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(buf, sizeof buf, "cannot stat: %s", strerror(errno));
        refuse(p, path, NULL, buf, err, errlen);
        return ACDM_ENOENT;
    }
    int elf = elf_complete(path);
    if (elf < 0) return refuse(p, path, NULL, "not an ELF shared object", err, errlen);
    if (elf == 0)
        return refuse(p, path, NULL, "incomplete ELF file (still being copied?)", err, errlen);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        snprintf(buf, sizeof buf, "dlopen failed: %s", e ? e : "unknown error");
        return refuse(p, path, NULL, buf, err, errlen);
    }
    dlerror();
    void *sym = dlsym(dl, ACDM_PLUGIN_ENTRY_SYMBOL);
    if (!sym)
        return refuse(p, path, dl, "no exported symbol acdm_plugin_entry (not an acdm plugin, "
                      "or built without ACDM_PLUGIN_EXPORT)", err, errlen);
    acdm_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);   /* object pointer to function pointer, POSIX-style */
    const acdm_plugin *d = entry();
    const char *why = check_descriptor(p, d, buf, sizeof buf);
    if (why) return refuse(p, path, dl, why, err, errlen);
    plugin *pl = calloc(1, sizeof *pl);
    if (!pl || !(pl->file = strdup(path))) {
        free(pl);
        return refuse(p, path, dl, "out of memory", err, errlen);
    }
    pl->dl = dl; pl->d = d; pl->enabled = true;
    pl->dev = st.st_dev; pl->ino = st.st_ino; pl->mtime = st.st_mtim;
    pl->next = p->plugins;
    p->plugins = pl;
    acdm_plg_set_refusal(p, path, NULL);
    acdm_log(ACDM_LOG_NOTICE, WHO, "loaded plugin %s %s (ABI %u.%u, kinds %s) from %s", d->name,
             d->version ? d->version : "", d->abi_major, d->abi_minor, d->kinds, path);
    acdm_plg_start_waiting(p, d->name);
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

/* Loads path unless that very file is loaded; a changed file replaces its plugin when none of
 * the plugin's instances is running. */
static int load_or_replace(acdm_plugins *p, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) return ACDM_ENOENT;
    if (same_file_loaded(p, path, &st)) return 1;
    plugin *old = acdm_plg_find_plugin_file(p, path);
    if (old) {
        if (old->n_instances > 0) {
            acdm_log(ACDM_LOG_WARN, WHO, "%s changed, but plugin %s still runs %d instance(s): "
                     "not replaced (disable the plugin or restart acdmd)", path, old->d->name,
                     old->n_instances);
            return ACDM_ESTATE;
        }
        acdm_plugins_unload(p, old->d->name);
    }
    return acdm_plugins_load_file(p, path, NULL, 0);
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
        dlclose(pl->dl);
        free(pl->file);
        free(pl);
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
