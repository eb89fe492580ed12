/* host.c -- the plugin host: instances and their lifecycle, the acdm_host table plugins call
 * (post, log, submit, end, timers, fd watches, key/value ...), create, list and destroy. */
#include "plugins/plugins_int.h"

#define WHO "plugins"

const char *const acdm_plg_state_names[] = {"waiting", "starting", "running", "failed",
                                            "disabled", "stopping"};

static void handle_freed(uv_handle_t *h)
{
    acdm_plugins *p = h->data;
    p->open_handles--;
    free(h);
}

void acdm_plg_close_owned(acdm_plugins *p, uv_handle_t *h)
{
    if (!h) return;
    h->data = p;
    uv_close(h, handle_freed);
}

plugin *acdm_plg_find_plugin(acdm_plugins *p, const char *name)
{
    for (plugin *pl = p->plugins; pl; pl = pl->next)
        if (!strcmp(pl->d->name, name)) return pl;
    return NULL;
}

plugin *acdm_plg_find_plugin_file(acdm_plugins *p, const char *file)
{
    for (plugin *pl = p->plugins; pl; pl = pl->next)
        if (!strcmp(pl->file, file)) return pl;
    return NULL;
}

acdm_instance *acdm_plugins_instance(acdm_plugins *p, const char *name)
{
    for (acdm_instance *i = p->insts; i && name; i = i->next)
        if (!strcmp(i->name, name)) return i;
    return NULL;
}

const char *acdm_instance_name_of(const acdm_instance *i) { return i ? i->name : NULL; }
const char *acdm_instance_queue(const acdm_instance *i) { return i ? i->queue : NULL; }
const char *acdm_instance_state(const acdm_instance *i) { return i ? acdm_plg_state_names[i->state] : NULL; }

void acdm_plg_set_why(acdm_instance *inst, const char *fmt, ...)
{
    free(inst->why);
    inst->why = NULL;
    if (!fmt) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    inst->why = strdup(buf);
}

/* Why an instance waits for its plugin: no file in the folder holds it. */
static void set_why_waiting(acdm_instance *inst)
{
    acdm_plg_set_why(inst, "plugin \"%s\" is in no .so of the plugin folder %s (it starts when a "
                     "file holding it is dropped in; see \"refused\" for files that did not load)",
                     inst->plugin_name, inst->p->dir);
}

/* Host calls are allowed from init until the plugin's stop returns. */
bool acdm_plg_live(const acdm_instance *i)
{
    return i && i->pl && (i->state == IS_STARTING || i->state == IS_RUNNING ||
                          i->state == IS_STOPPING);
}

/* ------------------------------------------------------------------ post() */

static void post_drain(uv_async_t *a)
{
    acdm_plugins *p = a->data;
    for (;;) {
        pthread_mutex_lock(&p->post_mu);
        post_item *it = p->post_head;
        if (it) {
            p->post_head = it->next;
            if (!p->post_head) p->post_tail = NULL;
        }
        pthread_mutex_unlock(&p->post_mu);
        if (!it) break;
        /* items of a stopped instance were purged under the mutex; this one is live */
        if (acdm_plg_live(it->inst)) it->fn(it->inst, it->inst->priv, it->arg);
        free(it);
    }
}

static int host_post(acdm_instance *inst, void (*fn)(acdm_instance *, void *, void *), void *arg)
{
    if (!inst || !fn) return ACDM_EINVAL;
    acdm_plugins *p = inst->p;
    post_item *it = malloc(sizeof *it);
    if (!it) return ACDM_ENOMEM;
    it->next = NULL; it->inst = inst; it->fn = fn; it->arg = arg;
    pthread_mutex_lock(&p->post_mu);
    if (!inst->accept_posts) {
        pthread_mutex_unlock(&p->post_mu);
        free(it);
        return ACDM_ESTATE;
    }
    if (p->post_tail) p->post_tail->next = it; else p->post_head = it;
    p->post_tail = it;
    /* under the mutex: p->async is closed only after every instance refuses posts */
    uv_async_send(p->async);
    pthread_mutex_unlock(&p->post_mu);
    return 0;
}

/* Refuses further posts for inst and drops the queued ones (their arg is not freed: the
 * plugin's stop owns whatever its thread allocated). */
static void posts_close(acdm_instance *inst)
{
    acdm_plugins *p = inst->p;
    pthread_mutex_lock(&p->post_mu);
    inst->accept_posts = false;
    post_item **pp = &p->post_head, *last = NULL;
    while (*pp) {
        post_item *it = *pp;
        if (it->inst == inst) { *pp = it->next; free(it); }
        else { last = it; pp = &it->next; }
    }
    p->post_tail = last;
    pthread_mutex_unlock(&p->post_mu);
}

/* ------------------------------------------------------------------ logging, names */

static void host_log(acdm_instance *inst, int level, const char *fmt, ...)
{
    if (level > acdm_log_level) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    acdm_log_origin(level, inst ? inst->name : "plugin", fmt, "%s", buf);
}

static const char *host_instance_name(acdm_instance *inst) { return inst ? inst->name : NULL; }

/* ------------------------------------------------------------------ submit, end, delivery_report */

static void submit_done(acdm_instance *inst_unused, void *priv_unused, void *user,
                        acdm_submit_outcome outcome, const char *bericht_id, const char *text)
{
    (void)inst_unused; (void)priv_unused;
    pending_submit *s = user;
    acdm_instance *inst = s->inst;
    if (outcome == ACDM_SUBMIT_ROUTING) {   /* ACDM_IN_ROUTE_AT_ONCE: the final outcome follows */
        if (inst && acdm_plg_live(inst) && s->cb) s->cb(inst, inst->priv, s->user, outcome, bericht_id, text);
        return;
    }
    if (inst) {
        DLIST_DEL(inst->subs, s);
        if (acdm_plg_live(inst) && s->cb) s->cb(inst, inst->priv, s->user, outcome, bericht_id, text);
    } else {
        DLIST_DEL(s->p->orphans, s);
    }
    free(s);
}

/* Writes the refusal's sentence into err (when given) and logs it. */
static int refuse(acdm_instance *inst, int rc, char *err, size_t errlen, const char *fmt, ...)
    ACDM_PRINTF(5, 6);
static int refuse(acdm_instance *inst, int rc, char *err, size_t errlen, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    acdm_log(ACDM_LOG_WARN, inst ? inst->name : WHO, "submit refused: %s", msg);
    return rc;
}

static int host_submit_err(acdm_instance *inst, const acdm_inbound *in, acdm_submit_cb cb,
                           void *user, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!acdm_plg_live(inst))
        return refuse(inst, ACDM_EINVAL, err, errlen, "the instance is not running");
    if (!in) return refuse(inst, ACDM_EINVAL, err, errlen, "in: required");
    if (in->struct_size < INBOUND_NEEDS)
        return refuse(inst, ACDM_EINVAL, err, errlen, "struct_size: %zu is smaller than "
                      "acdm_inbound (%zu bytes)", in->struct_size, (size_t)INBOUND_NEEDS);
    if (acdm_kind_parse(in->kind) < 0)
        return refuse(inst, ACDM_EINVAL, err, errlen, "kind: unknown kind \"%s\" (voice, chat, "
                      "email, sms, whatsapp or callback)", in->kind ? in->kind : "(null)");
    if (!in->from || !*in->from) return refuse(inst, ACDM_EINVAL, err, errlen, "from: required");
    if (in->priority < 0 || in->priority > 9)
        return refuse(inst, ACDM_EINVAL, err, errlen, "priority: %d is not in 0..9", in->priority);
    if (!inst->p->env.submit)
        return refuse(inst, ACDM_ESTATE, err, errlen, "the core takes no berichten here");
    pending_submit *s = NULL;
    if (cb) {
        s = calloc(1, sizeof *s);
        if (!s) return refuse(inst, ACDM_ENOMEM, err, errlen, "out of memory");
        s->p = inst->p; s->inst = inst; s->cb = cb; s->user = user;
        DLIST_ADD(inst->subs, s);
    }
    char why[512] = "";
    int rc = inst->p->env.submit(inst->p->env.engine, inst, in, s ? submit_done : NULL, s,
                                 why, sizeof why);
    if (rc < 0) {
        if (s) {   /* an error never calls the callback */
            if (s->inst) { DLIST_DEL(inst->subs, s); } else { DLIST_DEL(inst->p->orphans, s); }
            free(s);
        }
        if (err && errlen) snprintf(err, errlen, "%s", why[0] ? why : acdm_strerror(rc));
    }
    return rc;
}

static int host_submit(acdm_instance *inst, const acdm_inbound *in, acdm_submit_cb cb, void *user)
{
    return host_submit_err(inst, in, cb, user, NULL, 0);
}

static int host_end(acdm_instance *inst, const char *bericht_id, const char *reason)
{
    if (!acdm_plg_live(inst) || !bericht_id || !*bericht_id) return ACDM_EINVAL;
    if (!inst->p->env.end) return ACDM_ESTATE;
    return inst->p->env.end(inst->p->env.engine, inst, bericht_id, reason ? reason : "ended");
}

static int host_delivery_report(acdm_instance *inst, const char *bericht_id, const char *text,
                           const char *payload_json)
{
    if (!acdm_plg_live(inst) || !bericht_id || !*bericht_id) return ACDM_EINVAL;
    if (!inst->p->env.delivery_report) return ACDM_ESTATE;
    return inst->p->env.delivery_report(inst->p->env.engine, inst, bericht_id, text, payload_json);
}

static int host_typing(acdm_instance *inst, const char *bericht_id)
{
    if (!acdm_plg_live(inst) || !bericht_id || !*bericht_id) return ACDM_EINVAL;
    if (!inst->p->env.typing) return ACDM_ESTATE;
    return inst->p->env.typing(inst->p->env.engine, inst, bericht_id);
}

static int host_queue_position(acdm_instance *inst, const char *bericht_id, uint32_t *position,
                               uint32_t *estimate_s)
{
    if (!acdm_plg_live(inst) || !bericht_id || !*bericht_id || !position || !estimate_s) return ACDM_EINVAL;
    *position = 0;
    *estimate_s = 0;
    if (!inst->p->env.queue_position) return ACDM_ESTATE;
    return inst->p->env.queue_position(inst->p->env.engine, inst, bericht_id, position, estimate_s);
}

static int host_attachment_put(acdm_instance *inst, const char *bericht_id, const char *filename,
                               const char *content_type, const void *data, size_t len,
                               char id_out[64])
{
    if (!acdm_plg_live(inst) || !bericht_id || !*bericht_id || !filename || !*filename || !content_type ||
        !*content_type || !data || !len || !id_out)
        return ACDM_EINVAL;
    if (len > ACDM_ATTACHMENT_MAX) return ACDM_ETOOBIG;
    if (strlen(filename) > 255 || strlen(content_type) > 127) return ACDM_EINVAL;
    if (!inst->p->env.attachment_put) return ACDM_ESTATE;
    return inst->p->env.attachment_put(inst->p->env.engine, inst, bericht_id, filename,
                                       content_type, data, len, id_out);
}

static bool fits(const char *s, size_t max) { return !s || strlen(s) <= max; }

static int host_attachment_store(acdm_instance *inst, const acdm_attachment_in *a, char id_out[64])
{
    if (!acdm_plg_live(inst) || !a || !id_out) return ACDM_EINVAL;
    id_out[0] = '\0';
    if (a->struct_size < ATTACH_IN_NEEDS) return ACDM_P_EABI;
    if (!a->bericht_id || !*a->bericht_id || !a->filename || !*a->filename ||
        !fits(a->filename, 255) || !fits(a->content_type, 127) || !fits(a->content_id, 255) ||
        (a->content_type && !*a->content_type) || !a->data == !a->path ||
        (a->path && !*a->path) || (a->data && !a->len)) {
        acdm_log(ACDM_LOG_WARN, inst->name, "attachment_store: refused (bericht_id and filename "
                 "are required, exactly one of data and path; filename <= 255, content_type <= "
                 "127, content_id <= 255 bytes)");
        return ACDM_EINVAL;
    }
    if (!inst->p->env.attachment_store) return ACDM_ESTATE;
    if (a->data) {
        if (a->len > ACDM_ATTACHMENT_MAX) return ACDM_ETOOBIG;
        return inst->p->env.attachment_store(inst->p->env.engine, inst, a, -1, id_out);
    }
    int fd = open(a->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        acdm_log(ACDM_LOG_WARN, inst->name, "attachment_store: cannot open %s: %s", a->path,
                 strerror(errno));
        return errno == ENOENT ? ACDM_ENOENT : ACDM_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        acdm_log(ACDM_LOG_WARN, inst->name, "attachment_store: %s is not a regular file", a->path);
        close(fd);
        return ACDM_EINVAL;
    }
    if ((unsigned long long)st.st_size > ACDM_ATTACHMENT_FILE_MAX) {
        close(fd);
        return ACDM_ETOOBIG;
    }
    return inst->p->env.attachment_store(inst->p->env.engine, inst, a, fd, id_out);   /* owns fd */
}

static int host_attachment_read(acdm_instance *inst, const char *id, acdm_attachment_meta *meta,
                                int *fd)
{
    if (!acdm_plg_live(inst) || !id || !*id || !meta || !fd) return ACDM_EINVAL;
    *fd = -1;
    if (meta->struct_size < ATTACH_META_NEEDS) return ACDM_P_EABI;
    if (!inst->p->env.attachment_read) return ACDM_ESTATE;
    acdm_attachment_meta m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    int rc = inst->p->env.attachment_read(inst->p->env.engine, inst, id, &m, fd);
    if (rc == 0) {
        size_t keep = meta->struct_size;
        memcpy(meta, &m, keep < sizeof m ? keep : sizeof m);
        meta->struct_size = keep;
    }
    return rc;
}

static int host_check_token(acdm_instance *inst, const char *token)
{
    if (!acdm_plg_live(inst) || !token || !*token) return ACDM_EINVAL;
    if (!inst->p->env.check_token) return ACDM_ESTATE;
    acdm_plugins *p = inst->p;
    int rc = p->env.check_token(p->env.engine, inst, token, p->cur_peer);
    if (rc == ACDM_ENOENT && p->cur_peer) p->cur_counted = true;   /* counted by the engine */
    return rc;
}

static int host_end_ago(acdm_instance *inst, const char *bericht_id, const char *reason, uint32_t ago_ms)
{
    if (!acdm_plg_live(inst) || !bericht_id || !*bericht_id) return ACDM_EINVAL;
    if (!inst->p->env.end_ago) return host_end(inst, bericht_id, reason);
    return inst->p->env.end_ago(inst->p->env.engine, inst, bericht_id, reason ? reason : "ended", ago_ms);
}

/* ------------------------------------------------------------------ timers */

static void timer_freed(uv_handle_t *h) { free(h->data); }

static void timer_close(acdm_timer *t)
{
    if (t->closing) return;
    t->closing = true;
    if (t->inst) { DLIST_DEL(t->inst->timers, t); }
    uv_close((uv_handle_t *)&t->h, timer_freed);
}

static void timer_fire(uv_timer_t *h)
{
    acdm_timer *t = h->data;
    acdm_instance *inst = t->inst;
    t->firing = true;
    t->cb(inst, inst->priv, t->user);
    t->firing = false;
    if (!t->repeat) timer_close(t);
}

static acdm_timer *host_timer_start(acdm_instance *inst, uint64_t after_ms, uint64_t repeat_ms,
                                    void (*cb)(acdm_instance *, void *, void *), void *user)
{
    if (!acdm_plg_live(inst) || !cb) return NULL;
    acdm_timer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    uv_timer_init(inst->p->env.loop, &t->h);
    t->h.data = t;
    t->inst = inst; t->cb = cb; t->user = user; t->repeat = repeat_ms > 0;
    DLIST_ADD(inst->timers, t);
    uv_timer_start(&t->h, timer_fire, after_ms, repeat_ms);
    return t;
}

static void host_timer_stop(acdm_timer *t)
{
    if (t) timer_close(t);
}

/* ------------------------------------------------------------------ fd watches */

static void watch_freed(uv_handle_t *h) { free(h->data); }

static void watch_close(acdm_watch *w)
{
    if (w->closing) return;
    w->closing = true;
    if (w->inst) { DLIST_DEL(w->inst->watches, w); }
    uv_poll_stop(&w->h);
    uv_close((uv_handle_t *)&w->h, watch_freed);
}

static void watch_fire(uv_poll_t *h, int status, int events)
{
    acdm_watch *w = h->data;
    int ev = 0;
    if (events & UV_READABLE) ev |= ACDM_WATCH_READ;
    if (events & UV_WRITABLE) ev |= ACDM_WATCH_WRITE;
    if (status < 0) ev = ACDM_WATCH_READ | ACDM_WATCH_WRITE; /* let the plugin find the error */
    if (!w->closing) w->cb(w->inst, w->inst->priv, w->user, ev);
}

static acdm_watch *host_watch_fd(acdm_instance *inst, int fd, int events,
                                 void (*cb)(acdm_instance *, void *, void *, int), void *user)
{
    if (!acdm_plg_live(inst) || !cb || fd < 0 || !(events & (ACDM_WATCH_READ | ACDM_WATCH_WRITE)))
        return NULL;
    acdm_watch *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    if (uv_poll_init(inst->p->env.loop, &w->h, fd) < 0) {
        acdm_log(ACDM_LOG_WARN, inst->name, "watch_fd: fd %d cannot be polled", fd);
        free(w);
        return NULL;
    }
    w->h.data = w;
    w->inst = inst; w->cb = cb; w->user = user;
    DLIST_ADD(inst->watches, w);
    int uvev = ((events & ACDM_WATCH_READ) ? UV_READABLE : 0) |
               ((events & ACDM_WATCH_WRITE) ? UV_WRITABLE : 0);
    uv_poll_start(&w->h, uvev, watch_fire);
    return w;
}

static void host_unwatch_fd(acdm_watch *w)
{
    if (w) watch_close(w);
}


/* ------------------------------------------------------------------ key/value */

static void kv_entry_free(kv_entry *e)
{
    free(e->ns); free(e->key); free(e->val); free(e);
}

static int kv_put(acdm_instance *inst, const char *key, const char *value, size_t len,
                  int64_t expires_ms)
{
    if (!acdm_plg_live(inst) || !key || !*key) return ACDM_EINVAL;
    acdm_plugins *p = inst->p;
    if (p->env.store) return acdm_store_kv_set_ttl(p->env.store, inst->name, key, value, len, expires_ms);
    kv_entry **pp = &p->kv;
    for (; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->ns, inst->name) && !strcmp((*pp)->key, key)) break;
    if (!value) {
        if (*pp) {
            kv_entry *e = *pp;
            *pp = e->next;
            kv_entry_free(e);
        }
        return 0;
    }
    char *v = malloc(len + 1);
    if (!v) return ACDM_ENOMEM;
    memcpy(v, value, len);
    v[len] = 0;
    if (*pp) {
        free((*pp)->val);
        (*pp)->val = v; (*pp)->len = len; (*pp)->expires_ms = expires_ms;
        return 0;
    }
    kv_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->ns = strdup(inst->name)) || !(e->key = strdup(key))) {
        if (e) { free(e->ns); free(e); }
        free(v);
        return ACDM_ENOMEM;
    }
    e->val = v; e->len = len; e->expires_ms = expires_ms;
    e->next = p->kv;
    p->kv = e;
    return 0;
}

static int host_kv_set(acdm_instance *inst, const char *key, const char *value, size_t len)
{
    return kv_put(inst, key, value, len, 0);
}

static int host_kv_set_ttl(acdm_instance *inst, const char *key, const char *value, size_t len,
                           uint32_t ttl_s)
{
    return kv_put(inst, key, value, len, ttl_s ? acdm_now_ms() + (int64_t)ttl_s * 1000 : 0);
}

static int host_kv_get(acdm_instance *inst, const char *key, char **value, size_t *len)
{
    if (!acdm_plg_live(inst) || !key || !value) return ACDM_EINVAL;
    acdm_plugins *p = inst->p;
    size_t dummy;
    if (!len) len = &dummy;
    if (p->env.store) return acdm_store_kv_get(p->env.store, inst->name, key, value, len);
    int64_t now = acdm_now_ms();
    for (kv_entry *e = p->kv; e; e = e->next)
        if (!strcmp(e->ns, inst->name) && !strcmp(e->key, key)) {
            if (e->expires_ms && e->expires_ms <= now) return ACDM_ENOENT;
            *value = malloc(e->len + 1);
            if (!*value) return ACDM_ENOMEM;
            memcpy(*value, e->val, e->len + 1);
            *len = e->len;
            return 0;
        }
    return ACDM_ENOENT;
}

/* Expired entries: kv_get no longer sees them; this removes them. With the store the writer
 * thread deletes them, KV_EXPIRE_SLICE per group commit (a full slice queues the next one at
 * once), so neither the loop nor one transaction carries a large backlog. */
static void kv_expired_slice(void *user, int removed);

static void kv_expire_queue(acdm_plugins *p)
{
    acdm_plugins **tok = malloc(sizeof *tok);   /* outlives p if p is destroyed meanwhile */
    if (!tok) return;
    *tok = p;
    if (acdm_store_kv_expire(p->env.store, acdm_now_ms(), KV_EXPIRE_SLICE, kv_expired_slice, tok)) {
        free(tok);
        return;
    }
    p->kv_expiring = tok;
}

static void kv_expired_slice(void *user, int removed)
{
    acdm_plugins **tok = user, *p = *tok;
    free(tok);
    if (!p) return;                          /* the host was destroyed meanwhile */
    p->kv_expiring = NULL;
    if (removed > 0)
        acdm_log(ACDM_LOG_DEBUG, WHO, "removed %d expired key/value entr%s", removed,
                 removed == 1 ? "y" : "ies");
    if (removed == KV_EXPIRE_SLICE) kv_expire_queue(p);
}

void acdm_plg_kv_expire(acdm_plugins *p)
{
    if (p->env.store) {
        if (!p->kv_expiring) kv_expire_queue(p);
        return;
    }
    int64_t now = acdm_now_ms();
    for (kv_entry **pp = &p->kv; *pp;) {
        kv_entry *e = *pp;
        if (e->expires_ms && e->expires_ms <= now) { *pp = e->next; kv_entry_free(e); }
        else pp = &e->next;
    }
}

static void kv_timer_fire(uv_timer_t *t) { acdm_plg_kv_expire(t->data); }

static void host_free(void *ptr) { free(ptr); }

/* ------------------------------------------------------------------ ABI 1.1: routing */

#define UPDATE_NEEDS (offsetof(acdm_update, payload_json) + sizeof(const char *))

static int host_update(acdm_instance *inst, const char *bericht_id, const acdm_update *u,
                       char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) { err = dummy; errlen = sizeof dummy; }
    err[0] = 0;
    if (!acdm_plg_live(inst) || !bericht_id || !*bericht_id || !u) {
        snprintf(err, errlen, "%s", !u ? "update: NULL" : "bericht_id: required");
        return ACDM_EINVAL;
    }
    if (u->struct_size < UPDATE_NEEDS) {
        snprintf(err, errlen, "struct_size: %zu is less than acdm_update of ABI 1.1 (%zu)",
                 u->struct_size, (size_t)UPDATE_NEEDS);
        return ACDM_P_EABI;
    }
    if (!inst->p->env.update) return ACDM_ESTATE;
    return inst->p->env.update(inst->p->env.engine, inst, bericht_id, u, err, errlen);
}

static int host_device_result(acdm_instance *inst, const char *bericht_id, const char *agent_id,
                              acdm_device_outcome outcome, const char *reason)
{
    if (!acdm_plg_live(inst) || !bericht_id || !*bericht_id || !agent_id || !*agent_id ||
        (unsigned)outcome > ACDM_DEVICE_FAILED)
        return ACDM_EINVAL;
    if (!inst->p->env.device_result) return ACDM_ESTATE;
    return inst->p->env.device_result(inst->p->env.engine, inst, bericht_id, agent_id, outcome, reason);
}

static int host_device_reachable(acdm_instance *inst, const char *agent_id, const char *kind,
                                 int reachable, const char *reason)
{
    if (!acdm_plg_live(inst) || !agent_id || !*agent_id || acdm_kind_parse(kind) < 0)
        return ACDM_EINVAL;
    if (!inst->p->env.device_reachable) return ACDM_ESTATE;
    return inst->p->env.device_reachable(inst->p->env.engine, inst, agent_id, kind, reachable, reason);
}

static int host_originate_result(acdm_instance *inst, const char *bericht_id,
                                 acdm_originate_outcome o, const char *reason)
{
    if (!acdm_plg_live(inst) || !bericht_id || !*bericht_id || (unsigned)o > ACDM_ORIG_FAILED)
        return ACDM_EINVAL;
    if (!inst->p->env.originate_result) return ACDM_ESTATE;
    return inst->p->env.originate_result(inst->p->env.engine, inst, bericht_id, o, reason);
}

static int host_set_conversation(acdm_instance *inst, const char *bericht_id, const char *conversation)
{
    if (!acdm_plg_live(inst) || !bericht_id || !*bericht_id || !conversation || !*conversation)
        return ACDM_EINVAL;
    if (!inst->p->env.set_conversation) return ACDM_ESTATE;
    return inst->p->env.set_conversation(inst->p->env.engine, inst, bericht_id, conversation);
}

static char *host_queue_info(acdm_instance *inst, const char *queue, const char *kind)
{
    if (!acdm_plg_live(inst) || !inst->p->env.queue_info) return NULL;
    return inst->p->env.queue_info(inst->p->env.engine, inst, queue ? queue : inst->queue, kind);
}

static int host_feedback(acdm_instance *inst, const char *bericht_id, const char *detail_json,
                         char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) { err = dummy; errlen = sizeof dummy; }
    err[0] = 0;
    if (!acdm_plg_live(inst) || !bericht_id || !*bericht_id || !detail_json) {
        snprintf(err, errlen, "%s", !detail_json ? "detail_json: required" : "bericht_id: required");
        return ACDM_EINVAL;
    }
    if (!inst->p->env.feedback) return ACDM_ESTATE;
    return inst->p->env.feedback(inst->p->env.engine, inst, bericht_id, detail_json, err, errlen);
}

/* flush(): the store's callback finds the request detached (inst NULL) when the instance
 * stopped meanwhile, and then only frees it. */
typedef struct flush_req {
    struct flush_req *next;
    acdm_instance *inst;
    void (*cb)(acdm_instance *, void *, void *);
    void *user;
} flush_req;

static void flush_done(void *user, int status)
{
    flush_req *f = user;
    acdm_instance *inst = f->inst;
    if (inst) {
        for (flush_req **pp = &inst->flushes; *pp; pp = &(*pp)->next)
            if (*pp == f) { *pp = f->next; break; }
        if (status < 0)
            acdm_log(ACDM_LOG_ERR, inst->name, "flush: a write queued before it was not committed "
                     "(%s); the plugin's flush callback is not called", acdm_strerror(status));
        else if (acdm_plg_live(inst))
            f->cb(inst, inst->priv, f->user);
    }
    free(f);
}

static int host_flush(acdm_instance *inst, void (*cb)(acdm_instance *, void *, void *), void *user)
{
    if (!acdm_plg_live(inst) || !cb) return ACDM_EINVAL;
    acdm_plugins *p = inst->p;
    /* without a store the key/value entries live in memory: committed already */
    if (!p->env.store) return host_timer_start(inst, 0, 0, cb, user) ? 0 : ACDM_ENOMEM;
    flush_req *f = calloc(1, sizeof *f);
    if (!f) return ACDM_ENOMEM;
    f->inst = inst; f->cb = cb; f->user = user;
    if (acdm_store_flush(p->env.store, flush_done, f) < 0) { free(f); return ACDM_EIO; }
    f->next = inst->flushes;
    inst->flushes = f;
    return 0;
}

static const acdm_host host_table = {
    .struct_size = HOST_TABLE_SIZE,
    .abi_major = ACDM_PLUGIN_ABI_MAJOR,
    .abi_minor = ACDM_PLUGIN_ABI_MINOR,
    .log = host_log,
    .instance_name = host_instance_name,
    .submit = host_submit,
    .end = host_end,
    .post = host_post,
    .timer_start = host_timer_start,
    .timer_stop = host_timer_stop,
    .watch_fd = host_watch_fd,
    .unwatch_fd = host_unwatch_fd,
    .http_route = acdm_plg_host_http_route,
    .ws_route = acdm_plg_host_ws_route,
    .ws_send = acdm_plg_host_ws_send,
    .ws_close = acdm_plg_host_ws_close,
    .ws_set_user = acdm_plg_host_ws_set_user,
    .ws_user = acdm_plg_host_ws_user,
    .http_request = acdm_plg_host_http_request,
    .kv_set = host_kv_set,
    .kv_get = host_kv_get,
    .free = host_free,
    .delivery_report = host_delivery_report,
    .http_respond = acdm_plg_host_http_respond,
    .typing = host_typing,
    .queue_position = host_queue_position,
    .attachment_put = host_attachment_put,
    .check_token = host_check_token,
    .end_ago = host_end_ago,
    .submit_err = host_submit_err,
    .attachment_store = host_attachment_store,
    .attachment_read = host_attachment_read,
    .kv_set_ttl = host_kv_set_ttl,
    .update = host_update,
    .device_result = host_device_result,
    .device_reachable = host_device_reachable,
    .originate_result = host_originate_result,
    .flush = host_flush,
    .set_conversation = host_set_conversation,
    .queue_info = host_queue_info,
    .feedback = host_feedback,
};

/* ------------------------------------------------------------------ instance lifecycle */

/* Everything the host holds for the instance is released; the plugin is not called. */
static void release_resources(acdm_instance *inst)
{
    acdm_plugins *p = inst->p;
    posts_close(inst);
    acdm_plg_deferred_close_all(inst);
    while (inst->flushes) {          /* their commit still comes: flush_done only frees them */
        flush_req *f = inst->flushes;
        inst->flushes = f->next;
        f->inst = NULL;
        f->next = NULL;
    }
    while (inst->timers) timer_close(inst->timers);
    while (inst->watches) watch_close(inst->watches);
    while (inst->reqs) acdm_plg_outreq_cancel(inst->reqs);   /* done is not called after stop */
    while (inst->routes) {
        hroute *rt = inst->routes;
        inst->routes = rt->next;
        acdm_http_unroute(p->env.http, rt->id);
        free(rt);
    }
    for (wsroute *wr = p->wsroutes; wr; wr = wr->next)
        if (wr->inst == inst && wr->id > 0) {
            acdm_http_unroute(p->env.http, wr->id);
            wr->id = 0;
            wr->inst = NULL;
        }
    while (inst->subs) {                    /* the engine still owes these: keep them orphaned */
        pending_submit *s = inst->subs;
        DLIST_DEL(inst->subs, s);
        s->inst = NULL;
        DLIST_ADD(p->orphans, s);
    }
}

/* Tells every open websocket of the instance goodbye; the plugin's close runs for each. */
static void close_conns(acdm_instance *inst)
{
    while (inst->conns) {
        acdm_wsconn *c = inst->conns;
        DLIST_DEL(inst->conns, c);
        wsroute *wr = c->route;
        c->route = NULL;                    /* orphaned: acdm_plg_ws_closed frees it */
        if (wr && wr->cb.close) wr->cb.close(inst, inst->priv, c);
        acdm_ws_close(c->ws, 1001, "channel stopped");
    }
}

/* The descriptor's device_endpoint_key when it has offer_device, else NULL. */
static const char *device_key_of(const acdm_plugin *d)
{
    if (!ACDM_PLUGIN_HAS(d, device_endpoint_key) || !d->offer_device || !d->device_endpoint_key ||
        !*d->device_endpoint_key)
        return NULL;
    return d->device_endpoint_key;
}

void acdm_plg_inst_stop(acdm_instance *inst, int final_state)
{
    plugin *pl = inst->pl;
    if (!pl) { inst->state = final_state; return; }
    inst->state = IS_STOPPING;
    close_conns(inst);
    const char *key = device_key_of(pl->d);
    if (pl->d->stop) pl->d->stop(inst, inst->priv);
    /* the registrations it reported are gone with it (the descriptor's strings live until unload) */
    if (key && inst->p->env.devices_gone) inst->p->env.devices_gone(inst->p->env.engine, inst, key);
    release_resources(inst);
    if (pl->d->destroy) pl->d->destroy(inst, inst->priv);
    free(inst->priv);
    inst->priv = NULL;
    inst->pl = NULL;
    pl->n_instances--;
    inst->state = final_state;
    acdm_log(ACDM_LOG_INFO, inst->name, "stopped (plugin %s)", pl->d->name);
    acdm_plg_plugin_idle(inst->p, pl);
}

static int inst_start(acdm_instance *inst)
{
    acdm_plugins *p = inst->p;
    plugin *pl = acdm_plg_find_plugin(p, inst->plugin_name);
    if (!pl) {
        inst->state = IS_WAITING;
        set_why_waiting(inst);
        acdm_log(ACDM_LOG_NOTICE, inst->name, "waiting for plugin \"%s\" to be loaded",
                 inst->plugin_name);
        return 0;
    }
    if (!pl->enabled) {
        inst->state = IS_DISABLED;
        acdm_plg_set_why(inst, "plugin %s is disabled (acdmctl plugin enable %s)", pl->d->name,
                         pl->d->name);
        return 0;
    }
    inst->priv = calloc(1, pl->d->instance_size ? pl->d->instance_size : 1);
    if (!inst->priv) { inst->state = IS_FAILED; return ACDM_ENOMEM; }
    inst->pl = pl;
    pl->n_instances++;
    inst->state = IS_STARTING;
    pthread_mutex_lock(&p->post_mu);
    inst->accept_posts = true;
    pthread_mutex_unlock(&p->post_mu);
    char err[512] = "";
    int rc = pl->d->init(inst, inst->priv, &host_table, inst->config_json, err, sizeof err);
    if (rc < 0) {
        acdm_log(ACDM_LOG_ERR, inst->name, "plugin %s: init failed: %s", pl->d->name,
                 err[0] ? err : acdm_strerror(rc));
        acdm_plg_set_why(inst, "init failed: %s", err[0] ? err : acdm_strerror(rc));
        release_resources(inst);
        free(inst->priv);
        inst->priv = NULL;
        inst->pl = NULL;
        pl->n_instances--;
        inst->state = IS_FAILED;
        return rc;
    }
    if (pl->d->start && (rc = pl->d->start(inst, inst->priv)) < 0) {
        acdm_log(ACDM_LOG_ERR, inst->name, "plugin %s: start failed (%s)", pl->d->name,
                 acdm_strerror(rc));
        acdm_plg_inst_stop(inst, IS_FAILED);
        acdm_plg_set_why(inst, "start failed: %s", acdm_strerror(rc));
        return rc;
    }
    inst->state = IS_RUNNING;
    acdm_plg_set_why(inst, NULL);
    acdm_log(ACDM_LOG_INFO, inst->name, "running (plugin %s %s)", pl->d->name,
             pl->d->version ? pl->d->version : "");
    return 0;
}

static void inst_free(acdm_instance *inst)
{
    free(inst->name); free(inst->plugin_name); free(inst->queue);
    free(inst->config_json); free(inst->route_prefix); free(inst->why);
    free(inst);
}

void acdm_plg_start_waiting(acdm_plugins *p, const char *plugin_name)
{
    for (acdm_instance *i = p->insts; i; i = i->next)
        if ((i->state == IS_WAITING || i->state == IS_DISABLED) &&
            !strcmp(i->plugin_name, plugin_name))
            inst_start(i);
}

static char *channel_config_json(const acdm_channel_def *ch)
{
    if (!ch->config) return strdup("{}");
    return json_dumps(ch->config, JSON_COMPACT | JSON_SORT_KEYS);
}

int acdm_plugins_check(acdm_plugins *p, const acdm_config *cfg, char *err, size_t errlen)
{
    int rc = 0;
    size_t used = 0;
    if (err && errlen) err[0] = 0;
    for (size_t k = 0; cfg && k < cfg->n_channels; k++) {
        const acdm_channel_def *ch = &cfg->channels[k];
        plugin *pl = ch->plugin ? acdm_plg_find_plugin(p, ch->plugin) : NULL;
        if (!pl || !pl->d->check_config) continue;
        char *js = channel_config_json(ch);
        char msg[512] = "";
        int r = js ? pl->d->check_config(js, msg, sizeof msg) : ACDM_ENOMEM;
        free(js);
        if (r < 0) {
            rc = ACDM_EINVAL;
            if (err && used < errlen) {
                int w = snprintf(err + used, errlen - used, "%schannels[%zu] (%s): plugin %s: %s",
                                 used ? "\n" : "", k, ch->name, pl->d->name,
                                 msg[0] ? msg : "config refused");
                if (w > 0) used += (size_t)w;
            }
        }
    }
    return rc;
}

int acdm_plugins_configure(acdm_plugins *p, const acdm_config *cfg)
{
    int first_err = 0;
    for (acdm_instance *i = p->insts; i; i = i->next) i->seen = false;
    for (size_t k = 0; cfg && k < cfg->n_channels; k++) {
        const acdm_channel_def *ch = &cfg->channels[k];
        if (!ch->name || !ch->plugin) continue;
        char *js = channel_config_json(ch);
        if (!js) return ACDM_ENOMEM;
        acdm_instance *inst = acdm_plugins_instance(p, ch->name);
        if (!inst) {
            inst = calloc(1, sizeof *inst);
            size_t n = strlen("/channels/") + strlen(ch->name) + 1;
            if (!inst || !(inst->name = strdup(ch->name)) || !(inst->plugin_name = strdup(ch->plugin))
                || !(inst->route_prefix = malloc(n))) {
                if (inst) inst_free(inst);
                free(js);
                return ACDM_ENOMEM;
            }
            snprintf(inst->route_prefix, n, "/channels/%s", ch->name);
            inst->p = p;
            inst->queue = xstrdup(ch->queue);
            inst->config_json = js;
            inst->seen = true;
            inst->next = p->insts;
            p->insts = inst;
            int rc = inst_start(inst);
            if (rc < 0 && !first_err) first_err = rc;
            continue;
        }
        inst->seen = true;
        if (!streq(inst->queue, ch->queue)) {
            free(inst->queue);
            inst->queue = xstrdup(ch->queue);
        }
        bool same_plugin = !strcmp(inst->plugin_name, ch->plugin);
        if (same_plugin && !strcmp(inst->config_json, js)) { free(js); continue; }
        if (!same_plugin) {
            acdm_plg_inst_stop(inst, IS_WAITING);
            free(inst->plugin_name);
            inst->plugin_name = strdup(ch->plugin);
            free(inst->config_json);
            inst->config_json = js;
            int rc = inst->plugin_name ? inst_start(inst) : ACDM_ENOMEM;
            if (rc < 0 && !first_err) first_err = rc;
            continue;
        }
        if (inst->state == IS_RUNNING && inst->pl->d->reload) {
            char err[512] = "";
            int rc = inst->pl->d->reload(inst, inst->priv, js, err, sizeof err);
            if (rc < 0) {
                acdm_log(ACDM_LOG_ERR, inst->name, "reload refused, old config kept: %s",
                         err[0] ? err : acdm_strerror(rc));
                free(js);
                if (!first_err) first_err = rc;
                continue;
            }
            free(inst->config_json);
            inst->config_json = js;
            acdm_log(ACDM_LOG_INFO, inst->name, "config reloaded");
            continue;
        }
        /* no reload callback, or not running: restart with the new config */
        acdm_plg_inst_stop(inst, IS_WAITING);
        free(inst->config_json);
        inst->config_json = js;
        int rc = inst_start(inst);
        if (rc < 0 && !first_err) first_err = rc;
    }
    for (acdm_instance **ip = &p->insts; *ip;) {
        acdm_instance *inst = *ip;
        if (inst->seen) { ip = &inst->next; continue; }
        acdm_plg_inst_stop(inst, IS_WAITING);
        *ip = inst->next;
        acdm_log(ACDM_LOG_INFO, inst->name, "removed");
        inst_free(inst);
    }
    return first_err;
}

int acdm_plugins_deliver(acdm_plugins *p, const char *instance, const acdm_reply *r)
{
    acdm_instance *inst = acdm_plugins_instance(p, instance);
    if (!inst || inst->state != IS_RUNNING) return ACDM_ENOENT;
    if (!r) return ACDM_EINVAL;
    return inst->pl->d->deliver(inst, inst->priv, r);
}

void acdm_plugins_event(acdm_plugins *p, const char *instance, const acdm_event_info *ev)
{
    acdm_instance *inst = acdm_plugins_instance(p, instance);
    if (inst && ev && inst->state == IS_RUNNING && inst->pl->d->on_event)
        inst->pl->d->on_event(inst, inst->priv, ev);
}

const char *acdm_plugins_device_key(acdm_plugins *p, const char *instance)
{
    acdm_instance *inst = acdm_plugins_instance(p, instance);
    if (!inst || inst->state != IS_RUNNING) return NULL;
    return device_key_of(inst->pl->d);
}

int acdm_plugins_offer_device(acdm_plugins *p, const char *instance, const acdm_device_offer *o)
{
    if (!acdm_plugins_device_key(p, instance) || !o) return ACDM_ENOENT;
    acdm_instance *inst = acdm_plugins_instance(p, instance);
    return inst->pl->d->offer_device(inst, inst->priv, o);
}

bool acdm_plugins_can_originate(acdm_plugins *p, const char *instance)
{
    acdm_instance *inst = acdm_plugins_instance(p, instance);
    return inst && inst->state == IS_RUNNING && ACDM_PLUGIN_HAS(inst->pl->d, originate) &&
           inst->pl->d->originate;
}

int acdm_plugins_originate(acdm_plugins *p, const char *instance, const acdm_originate *o,
                           char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!acdm_plugins_can_originate(p, instance)) {
        if (err) snprintf(err, errlen, "channel \"%s\" is not running or cannot start outbound contacts",
                          instance ? instance : "");
        return ACDM_ENOENT;
    }
    acdm_instance *inst = acdm_plugins_instance(p, instance);
    char buf[512] = "";
    int rc = inst->pl->d->originate(inst, inst->priv, o, buf, sizeof buf);
    if (rc < 0 && err) snprintf(err, errlen, "%s", buf[0] ? buf : "the channel refused the contact");
    return rc < 0 ? rc : 0;
}

bool acdm_plugins_can_transfer_out(acdm_plugins *p, const char *instance)
{
    acdm_instance *inst = acdm_plugins_instance(p, instance);
    return inst && inst->state == IS_RUNNING && ACDM_PLUGIN_HAS(inst->pl->d, transfer_out) &&
           inst->pl->d->transfer_out;
}

int acdm_plugins_transfer_out(acdm_plugins *p, const char *instance, const char *bericht_id,
                              const char *number, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!acdm_plugins_can_transfer_out(p, instance)) {
        if (err) snprintf(err, errlen, "channel \"%s\" is not running or cannot transfer calls to a number",
                          instance ? instance : "");
        return ACDM_ENOENT;
    }
    acdm_instance *inst = acdm_plugins_instance(p, instance);
    char buf[512] = "";
    int rc = inst->pl->d->transfer_out(inst, inst->priv, bericht_id, number, buf, sizeof buf);
    if (rc < 0 && err) snprintf(err, errlen, "%s", buf[0] ? buf : "the channel refused the transfer");
    return rc < 0 ? rc : 0;
}

json_t *acdm_plugins_outbound_json(acdm_plugins *p)
{
    json_t *arr = json_array();
    for (acdm_instance *i = p ? p->insts : NULL; i; i = i->next) {
        if (!acdm_plugins_can_originate(p, i->name)) continue;
        json_t *kinds = json_array();
        const char *k = i->pl->d->kinds ? i->pl->d->kinds : "";
        while (*k) {
            size_t n = strcspn(k, ",");
            char name[32];
            snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), k);
            if (acdm_kind_parse(name) >= 0 && strcmp(name, ACDM_KIND_NAME_CALLBACK))
                json_array_append_new(kinds, json_string(name));
            k += n + (k[n] == ',');
        }
        json_array_append_new(arr, json_pack("{s:s, s:o}", "channel", i->name, "kinds", kinds));
    }
    return arr;
}

void acdm_plugins_agent_typing(acdm_plugins *p, const char *instance, const char *bericht_id)
{
    acdm_instance *inst = acdm_plugins_instance(p, instance);
    if (inst && bericht_id && inst->state == IS_RUNNING &&
        ACDM_PLUGIN_HAS(inst->pl->d, on_agent_typing) && inst->pl->d->on_agent_typing)
        inst->pl->d->on_agent_typing(inst, inst->priv, bericht_id);
}


/* ------------------------------------------------------------------ create, list, destroy */

int acdm_plugins_create(const acdm_plugin_env *env, const char *plugin_dir, acdm_plugins **out)
{
    if (!env || !env->loop || !plugin_dir || !out) return ACDM_EINVAL;
    acdm_plugins *p = calloc(1, sizeof *p);
    if (!p) return ACDM_ENOMEM;
    p->env = *env;
    p->dir = strdup(plugin_dir);
    p->async = calloc(1, sizeof *p->async);
    p->kv_timer = calloc(1, sizeof *p->kv_timer);
    p->idle = calloc(1, sizeof *p->idle);
    if (!p->dir || !p->async || !p->kv_timer || !p->idle) {
        free(p->dir); free(p->async); free(p->kv_timer); free(p->idle); free(p);
        return ACDM_ENOMEM;
    }
    size_t l = strlen(p->dir);
    while (l > 1 && p->dir[l - 1] == '/') p->dir[--l] = 0;
    pthread_mutex_init(&p->post_mu, NULL);
    uv_async_init(env->loop, p->async, post_drain);
    p->async->data = p;
    uv_timer_init(env->loop, p->kv_timer);
    p->kv_timer->data = p;
    uv_timer_start(p->kv_timer, kv_timer_fire, KV_EXPIRE_EVERY_MS, KV_EXPIRE_EVERY_MS);
    uv_unref((uv_handle_t *)p->kv_timer);   /* housekeeping never keeps the loop alive */
    uv_timer_init(env->loop, p->idle);
    p->idle->data = p;
    p->open_handles = 3;
    *out = p;
    return 0;
}

/* The running instance's status_json as an object (new reference), or NULL when it has none.
 * Not an object: {"healthy": false, "error": ...} (a plugin bug shows, it does not hide). */
static json_t *inst_status(const acdm_instance *i)
{
    if (i->state != IS_RUNNING || !i->pl || !ACDM_PLUGIN_HAS(i->pl->d, status_json) ||
        !i->pl->d->status_json)
        return NULL;
    char *txt = i->pl->d->status_json((acdm_instance *)i, i->priv);
    if (!txt) return NULL;
    json_error_t je;
    json_t *o = json_loads(txt, 0, &je);
    free(txt);
    if (json_is_object(o)) return o;
    json_decref(o);
    acdm_log(ACDM_LOG_WARN, i->name, "status_json did not return a JSON object");
    return json_pack("{s:b, s:s}", "healthy", 0, "error", "status_json did not return a JSON object");
}

static json_t *inst_json(const acdm_instance *i)
{
    json_t *o = json_pack("{s:s, s:s, s:s?, s:s?}", "name", i->name, "state",
                          acdm_plg_state_names[i->state], "queue", i->queue, "reason", i->why);
    json_t *st = inst_status(i);
    if (st) json_object_set_new(o, "status", st);
    return o;
}

json_t *acdm_plugins_health_json(acdm_plugins *p, json_t **degraded)
{
    json_t *arr = json_array();
    if (degraded) *degraded = json_array();
    for (const acdm_instance *i = p->insts; i; i = i->next) {
        json_t *st = inst_status(i);
        bool healthy = i->state == IS_RUNNING && !json_is_false(json_object_get(st, "healthy"));
        json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "name", i->name, "plugin", i->plugin_name,
                              "state", acdm_plg_state_names[i->state], "healthy", healthy);
        if (st) json_object_set_new(o, "status", st);
        json_array_append_new(arr, o);
        if (!healthy && degraded) json_array_append_new(*degraded, json_string(i->name));
    }
    return arr;
}

json_t *acdm_plugins_json(acdm_plugins *p)
{
    json_t *arr = json_array();
    for (plugin *pl = p->plugins; pl; pl = pl->next) {
        json_t *insts = json_array();
        for (acdm_instance *i = p->insts; i; i = i->next)
            if (!strcmp(i->plugin_name, pl->d->name))
                json_array_append_new(insts, inst_json(i));
        char abi[32];
        snprintf(abi, sizeof abi, "%u.%u", pl->d->abi_major, pl->d->abi_minor);
        json_array_append_new(arr, json_pack("{s:s, s:s?, s:s?, s:s, s:s, s:s, s:b, s:b, s:o}",
            "name", pl->d->name, "version", pl->d->version, "description", pl->d->description,
            "file", pl->file, "abi", abi, "kinds", pl->d->kinds, "enabled", pl->enabled,
            "changed", pl->changed, "instances", insts));
    }
    /* instances whose plugin is not loaded, grouped by the plugin name they wait for */
    for (acdm_instance *i = p->insts; i; i = i->next) {
        if (acdm_plg_find_plugin(p, i->plugin_name)) continue;
        json_t *entry = NULL;
        for (size_t k = 0; k < json_array_size(arr); k++) {
            json_t *v = json_array_get(arr, k);
            if (json_is_null(json_object_get(v, "file")) &&
                !strcmp(json_string_value(json_object_get(v, "name")), i->plugin_name))
                entry = v;
        }
        if (!entry) {
            entry = json_pack("{s:s, s:n, s:b, s:[]}", "name", i->plugin_name, "file",
                              "enabled", 0, "instances");
            json_array_append_new(arr, entry);
        }
        json_array_append_new(json_object_get(entry, "instances"),
                              json_pack("{s:s, s:s, s:s?, s:s?}", "name", i->name, "state",
                                        acdm_plg_state_names[i->state], "queue", i->queue,
                                        "reason", i->why));
    }
    return arr;
}

json_t *acdm_plugins_warnings(acdm_plugins *p, const acdm_config *cfg)
{
    json_t *arr = json_array();
    for (size_t k = 0; cfg && k < cfg->n_channels; k++) {
        const acdm_channel_def *ch = &cfg->channels[k];
        if (!ch->name || !ch->plugin || acdm_plg_find_plugin(p, ch->plugin)) continue;
        char buf[1024];
        snprintf(buf, sizeof buf, "channels[%zu] (%s): plugin \"%s\" is in no .so of the plugin "
                 "folder %s: the instance waits until a file holding it is dropped in", k,
                 ch->name, ch->plugin, p->dir);
        json_array_append_new(arr, json_string(buf));
    }
    return arr;
}

json_t *acdm_plugins_refused_json(acdm_plugins *p)
{
    json_t *arr = json_array();
    for (refusal *r = p->refused; r; r = r->next)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "file", r->file, "reason", r->reason));
    return arr;
}

void acdm_plugins_destroy(acdm_plugins *p)
{
    if (!p) return;
    while (p->insts) {
        acdm_instance *inst = p->insts;
        p->insts = inst->next;
        acdm_plg_inst_stop(inst, IS_WAITING);
        inst_free(inst);
    }
    while (p->plugins) acdm_plugins_unload(p, p->plugins->d->name);
    while (p->orphans) {
        pending_submit *s = p->orphans;
        DLIST_DEL(p->orphans, s);
        free(s);
    }
    while (p->wsroutes) { wsroute *w = p->wsroutes; p->wsroutes = w->next; free(w); }
    while (p->kv) {
        kv_entry *e = p->kv;
        p->kv = e->next;
        kv_entry_free(e);
    }
    if (p->kv_expiring) *p->kv_expiring = NULL;   /* its store callback finds no host */
    while (p->refused) acdm_plg_set_refusal(p, p->refused->file, NULL);
    while (p->pending) {
        pending_file *f = p->pending;
        p->pending = f->next;
        free(f->name); free(f);
    }
    acdm_plg_close_owned(p, (uv_handle_t *)p->async);
    acdm_plg_close_owned(p, (uv_handle_t *)p->kv_timer);
    acdm_plg_close_owned(p, (uv_handle_t *)p->idle);
    p->idle = NULL;
    if (p->fsev) {
        uv_fs_event_stop(p->fsev);
        acdm_plg_close_owned(p, (uv_handle_t *)p->fsev);
        acdm_plg_close_owned(p, (uv_handle_t *)p->debounce);
    }
    /* let the close callbacks of our handles run; they touch p */
    while (p->open_handles > 0) uv_run(p->env.loop, UV_RUN_NOWAIT);
    pthread_mutex_destroy(&p->post_mu);
    free(p->dir);
    free(p);
}
