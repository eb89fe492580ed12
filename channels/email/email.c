/* email.c -- the email channel plugin (name "email", one instance per mailbox): the core-thread
 * side. Mail comes in on the IMAP thread (intake.c) and is handed here through post(); this
 * side finds the conversation, submits the bericht, stores the attachments and tells the IMAP
 * thread when the mail may leave the inbox. Agents' replies are put in a durable outbox (kv)
 * and sent by the SMTP thread (send.c) with retries; automatic replies follow RFC 3834. */
#include "email.h"

#include <acdm/plugin_util.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Instance config ("config" of a channel with "plugin": "email"): see docs/operations.md.
 *   imap      {url, user, password_file, starttls}   url imaps://host/INBOX or imap://...
 *   smtp      {url, user, password_file, starttls}
 *   address   the mailbox's own address (From of every reply)
 *   name      display name for From (optional)
 *   processed_folder "Verwerkt", quarantine_folder "Quarantaine", sent_folder "Sent"
 *   idle true, poll_s 60, rescan_s 600, timeout_s 45, batch 50, max_bytes 25 MB
 *   auto_reply {enabled, text, period_s, queues {queue: text | true | false}}
 *   attachments {max_count, max_bytes, max_total_bytes}
 *   smtp_retries 8, smtp_retry_s 5
 */

/* ---------------------------------------------------------------- config */

static void cfg_free(ecfg *c)
{
    free(c->imap_url); free(c->imap_user); free(c->imap_pass); free(c->mailbox);
    free(c->smtp_url); free(c->smtp_user); free(c->smtp_pass);
    free(c->address); free(c->name); free(c->domain);
    free(c->processed); free(c->quarantine); free(c->sent); free(c->confirm_text);
    json_decref(c->confirm_queues);
    token_free(&c->imap_token);
    token_free(&c->smtp_token);
    memset(c, 0, sizeof *c);
}

static bool loopback_url(const char *url)
{
    const char *h = strstr(url, "://");
    if (!h) return false;
    h += 3;
    const char *at = strchr(h, '@');
    const char *sl = strchr(h, '/');
    if (at && (!sl || at < sl)) h = at + 1;
    return !strncmp(h, "127.", 4) || !strncmp(h, "localhost", 9) || !strncmp(h, "[::1]", 5);
}

static char *read_secret(const char *path, char *err, size_t errlen, const char *field)
{
    FILE *f = fopen(path, "r");
    if (!f) { snprintf(err, errlen, "%s.password_file: cannot read \"%s\"", field, path); return NULL; }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
    return strdup(buf);
}

void token_free(token_file *t)
{
    free(t->path);
    free(t->value);
    memset(t, 0, sizeof *t);
}

const char *token_current(token_file *t, const char *field, char *err, size_t errlen)
{
    struct stat st;
    if (stat(t->path, &st) != 0) {
        snprintf(err, errlen, "%s.token_file: cannot read \"%s\": %s", field, t->path, strerror(errno));
        return NULL;
    }
    if (t->value && st.st_dev == t->dev && st.st_ino == t->ino && st.st_size == t->size &&
        st.st_mtim.tv_sec == t->mtime.tv_sec && st.st_mtim.tv_nsec == t->mtime.tv_nsec)
        return t->value;
    char *v = read_secret(t->path, err, errlen, field);
    if (!v) return NULL;
    bool ok = *v && strlen(v) < 16384;
    for (const unsigned char *p = (const unsigned char *)v; *p && ok; p++)
        if (*p <= 0x20 || *p == 0x7f) ok = false;   /* a bearer token is one word (RFC 6750) */
    if (!ok) {
        snprintf(err, errlen, "%s.token_file \"%s\": not one bearer token on the first line "
                 "(empty, spaces or control characters)", field, t->path);
        free(v);
        return NULL;
    }
    free(t->value);
    t->value = v;
    t->dev = st.st_dev; t->ino = st.st_ino; t->size = st.st_size; t->mtime = st.st_mtim;
    return t->value;
}

static int get_str(json_t *o, const char *k, const char *def, char **out, char *err, size_t errlen,
                   const char *field)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v)) { *out = def ? strdup(def) : NULL; return 0; }
    if (!json_is_string(v) || !*json_string_value(v)) {
        snprintf(err, errlen, "%s%s%s must be a non-empty string", field ? field : "", field ? "." : "", k);
        return -1;
    }
    const char *s = json_string_value(v);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20) { snprintf(err, errlen, "%s%s%s must not contain control characters", field ? field : "", field ? "." : "", k); return -1; }
    *out = strdup(s);
    return 0;
}

static int get_int(json_t *o, const char *k, long long def, long long lo, long long hi, long long *out,
                   char *err, size_t errlen, const char *field)
{
    json_t *v = json_object_get(o, k);
    *out = def;
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(err, errlen, "%s%s%s must be an integer from %lld to %lld", field ? field : "", field ? "." : "", k, lo, hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int get_bool(json_t *o, const char *k, bool def, bool *out, char *err, size_t errlen, const char *field)
{
    json_t *v = json_object_get(o, k);
    *out = def;
    if (!v) return 0;
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "%s%s%s must be true or false", field ? field : "", field ? "." : "", k);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

static int server_part(json_t *o, const char *field, const char *scheme_plain, const char *scheme_tls,
                       char **url, char **user, char **pass, token_file *tok, bool *tls, bool need_user,
                       bool read_pw, char *err, size_t errlen)
{
    json_t *s = json_object_get(o, field);
    if (!json_is_object(s)) { snprintf(err, errlen, "%s must be an object {url, user, password_file}", field); return -1; }
    char *pwf = NULL, *auth = NULL;
    if (get_str(s, "auth", "password", &auth, err, errlen, field) < 0) return -1;
    bool xoauth2 = !strcmp(auth, "xoauth2");
    if (!xoauth2 && strcmp(auth, "password")) {
        snprintf(err, errlen, "%s.auth must be \"password\" or \"xoauth2\", not \"%.40s\"", field, auth);
        free(auth);
        return -1;
    }
    free(auth);
    json_t *tf = json_object_get(s, "token_file");
    if (tf && !xoauth2) {
        snprintf(err, errlen, "%s.token_file is for %s.auth \"xoauth2\" (a password goes in password_file)", field, field);
        return -1;
    }
    if (get_str(s, "url", NULL, url, err, errlen, field) < 0) return -1;
    if (!*url) { snprintf(err, errlen, "%s.url is required", field); return -1; }
    size_t pl = strlen(scheme_plain), tl = strlen(scheme_tls);
    bool is_tls = !strncmp(*url, scheme_tls, tl), is_plain = !strncmp(*url, scheme_plain, pl);
    if (!is_tls && !is_plain) {
        snprintf(err, errlen, "%s.url must start with %s or %s, not \"%s\"", field, scheme_tls, scheme_plain, *url);
        return -1;
    }
    bool starttls;
    if (get_bool(s, "starttls", !loopback_url(*url), &starttls, err, errlen, field) < 0) return -1;
    if (is_plain && !starttls && !loopback_url(*url)) {
        snprintf(err, errlen, "%s.starttls: a %s server that is not on loopback needs STARTTLS "
                 "(a password never goes in clear)", field, scheme_plain);
        return -1;
    }
    *tls = is_plain && starttls;
    if (get_str(s, "user", NULL, user, err, errlen, field) < 0) return -1;
    if (xoauth2) {
        /* OAuth 2.0 (Microsoft 365, Gmail): the user and a bearer token that a refresher
         * outside acdm keeps current in token_file, read again whenever it changes */
        if (json_object_get(s, "password_file")) {
            snprintf(err, errlen, "%s: auth \"xoauth2\" takes token_file, not password_file", field);
            return -1;
        }
        if (!*user) { snprintf(err, errlen, "%s.user is required with auth \"xoauth2\"", field); return -1; }
        if (get_str(s, "token_file", NULL, &tok->path, err, errlen, field) < 0) return -1;
        if (!tok->path) { snprintf(err, errlen, "%s.token_file is required with auth \"xoauth2\"", field); return -1; }
        if (read_pw && !token_current(tok, field, err, errlen)) return -1;
        return 0;
    }
    if (get_str(s, "password_file", NULL, &pwf, err, errlen, field) < 0) return -1;
    if (need_user && (!*user || !pwf)) {
        snprintf(err, errlen, "%s.user and %s.password_file are required", field, field);
        free(pwf);
        return -1;
    }
    if (pwf && !*user) { snprintf(err, errlen, "%s.user is required with password_file", field); free(pwf); return -1; }
    if (pwf && read_pw) {
        *pass = read_secret(pwf, err, errlen, field);
        free(pwf);
        if (!*pass) return -1;
    } else {
        free(pwf);
    }
    return 0;
}

static char *url_mailbox(const char *url)
{
    const char *h = strstr(url, "://");
    const char *sl = h ? strchr(h + 3, '/') : NULL;
    if (!sl || !sl[1]) return strdup("INBOX");
    char out[512];
    long n = acdm_url_decode(sl + 1, strlen(sl + 1), 0, out, sizeof out);
    if (n <= 0) return strdup("INBOX");
    char *q = strchr(out, ';');
    if (q) *q = 0;
    return strdup(out);
}

static int cfg_parse(const char *text, ecfg *c, bool read_pw, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    json_error_t je;
    json_t *o = json_loads(text ? text : "{}", 0, &je);
    if (!json_is_object(o)) { snprintf(err, errlen, "config must be a JSON object"); json_decref(o); return -1; }
    int rc = -1;
    long long v;
    if (server_part(o, "imap", "imap://", "imaps://", &c->imap_url, &c->imap_user, &c->imap_pass,
                    &c->imap_token, &c->imap_tls, true, read_pw, err, errlen) < 0) goto out;
    if (server_part(o, "smtp", "smtp://", "smtps://", &c->smtp_url, &c->smtp_user, &c->smtp_pass,
                    &c->smtp_token, &c->smtp_tls, false, read_pw, err, errlen) < 0) goto out;
    c->mailbox = url_mailbox(c->imap_url);
    if (get_str(o, "address", NULL, &c->address, err, errlen, NULL) < 0) goto out;
    if (!c->address || !addr_ok(c->address)) {
        snprintf(err, errlen, "address must be the mailbox's own plain address (e.g. kcc@gemeente.nl)");
        goto out;
    }
    for (char *p = c->address; *p; p++) *p = (char)tolower((unsigned char)*p);
    c->domain = strdup(strrchr(c->address, '@') + 1);
    if (get_str(o, "name", NULL, &c->name, err, errlen, NULL) < 0 ||
        get_str(o, "processed_folder", "Verwerkt", &c->processed, err, errlen, NULL) < 0 ||
        get_str(o, "quarantine_folder", "Quarantaine", &c->quarantine, err, errlen, NULL) < 0 ||
        get_str(o, "sent_folder", "Sent", &c->sent, err, errlen, NULL) < 0) goto out;
    if (!strcasecmp(c->processed, c->mailbox) || !strcasecmp(c->quarantine, c->mailbox)) {
        snprintf(err, errlen, "processed_folder and quarantine_folder must differ from the inbox");
        goto out;
    }
    if (get_bool(o, "idle", true, &c->idle, err, errlen, NULL) < 0) goto out;
    if (get_int(o, "poll_s", 60, 1, 86400, &v, err, errlen, NULL) < 0) goto out;
    c->poll_s = (int)v;
    if (get_int(o, "rescan_s", 600, 10, 86400, &v, err, errlen, NULL) < 0) goto out;
    c->rescan_s = (int)v;
    if (get_int(o, "timeout_s", 45, 1, 3600, &v, err, errlen, NULL) < 0) goto out;
    c->timeout_s = (int)v;
    if (get_int(o, "batch", 1000, 1, 5000, &v, err, errlen, NULL) < 0) goto out;
    c->batch = (int)v;
    if (get_int(o, "max_bytes", 25LL * 1024 * 1024, 1024, 1LL << 30, &v, err, errlen, NULL) < 0) goto out;
    c->max_bytes = (size_t)v;
    if (get_int(o, "smtp_retries", 8, 1, 100, &v, err, errlen, NULL) < 0) goto out;
    c->smtp_retries = (int)v;
    if (get_int(o, "smtp_retry_s", 5, 1, 86400, &v, err, errlen, NULL) < 0) goto out;
    c->smtp_retry_s = (int)v;
    json_t *att = json_object_get(o, "attachments");
    if (att && !json_is_object(att)) { snprintf(err, errlen, "attachments must be an object"); goto out; }
    if (get_int(att, "max_count", 20, 0, 1000, &v, err, errlen, "attachments") < 0) goto out;
    c->lim.max_attachments = (size_t)v;
    if (get_int(att, "max_bytes", ACDM_ATTACHMENT_MAX, 1, ACDM_ATTACHMENT_MAX, &v, err, errlen, "attachments") < 0) goto out;
    c->lim.max_attachment_bytes = (size_t)v;
    if (get_int(att, "max_total_bytes", 25LL * 1024 * 1024, 1, 1LL << 30, &v, err, errlen, "attachments") < 0) goto out;
    c->lim.max_total_bytes = (size_t)v;
    json_t *ar = json_object_get(o, "auto_reply");
    if (ar && !json_is_object(ar)) { snprintf(err, errlen, "auto_reply must be an object {enabled, text, period_s, queues}"); goto out; }
    if (get_bool(ar, "enabled", false, &c->confirm, err, errlen, "auto_reply") < 0) goto out;
    if (get_str(ar, "text", "Wij hebben uw e-mail ontvangen en nemen zo snel mogelijk contact met u op.",
                &c->confirm_text, err, errlen, "auto_reply") < 0) goto out;
    if (get_int(ar, "period_s", 4LL * 86400, 60, 365LL * 86400, &v, err, errlen, "auto_reply") < 0) goto out;
    c->auto_period_s = (int)v;
    json_t *qs = json_object_get(ar, "queues");
    if (qs) {
        if (!json_is_object(qs)) {
            snprintf(err, errlen, "auto_reply.queues must be an object {\"queue\": text, true or false}");
            goto out;
        }
        const char *k;
        json_t *t;
        json_object_foreach(qs, k, t) {
            bool name_ok = *k && strlen(k) < 128;
            for (const unsigned char *p = (const unsigned char *)k; *p && name_ok; p++)
                if (*p < 0x21 || *p == 0x7f) name_ok = false;
            if (!name_ok) { snprintf(err, errlen, "auto_reply.queues: \"%.40s\" is not a queue name", k); goto out; }
            if (json_is_boolean(t)) continue;
            const char *ts = json_string_value(t);
            bool ok = ts && *ts;
            for (const unsigned char *p = (const unsigned char *)(ts ? ts : ""); *p && ok; p++)
                if (*p < 0x20 && *p != '\n' && *p != '\t') ok = false;
            if (!ok) {
                snprintf(err, errlen, "auto_reply.queues.%s must be a non-empty text (the confirmation, "
                         "no control characters), true (the default text) or false (none)", k);
                goto out;
            }
        }
        c->confirm_queues = json_incref(qs);
    }
    rc = 0;
out:
    json_decref(o);
    if (rc < 0) cfg_free(c);
    return rc;
}

static int em_check_config(const char *config_json, char *err, size_t errlen)
{
    ecfg c;
    if (cfg_parse(config_json, &c, false, err, errlen) < 0) return -1;
    cfg_free(&c);
    return 0;
}

/* ---------------------------------------------------------------- kv helpers (core thread) */

static void h16(const char *s, char out[17])
{
    char h[65];
    sha256_hex(s, strlen(s), h);
    memcpy(out, h, 16);
    out[16] = 0;
}

static json_t *kv_json(email *em, const char *key)
{
    char *v = NULL;
    size_t len = 0;
    if (em->host->kv_get(em->inst, key, &v, &len) != 0 || !v) return NULL;
    json_t *j = json_loadb(v, len, 0, NULL);
    em->host->free(v);
    return j;
}

static char *kv_str(email *em, const char *key)
{
    char *v = NULL;
    size_t len = 0;
    if (em->host->kv_get(em->inst, key, &v, &len) != 0 || !v) return NULL;
    char *r = strndup(v, len);
    em->host->free(v);
    return r;
}

/* Thread and dedup keys expire (kv_set_ttl, ABI 1.1) so the maps do not grow forever: a
 * conversation, our Message-IDs and the "seen" marks live a year, long past any redelivery. */
#define EMAIL_KV_TTL_S (366u * 86400u)

static void kv_put_ttl(email *em, const char *key, const char *val, uint32_t ttl_s)
{
    if (ttl_s && ACDM_HOST_HAS(em->host, kv_set_ttl) && em->host->kv_set_ttl)
        em->host->kv_set_ttl(em->inst, key, val, strlen(val), ttl_s);
    else
        em->host->kv_set(em->inst, key, val, strlen(val));
}

static void kv_put_str(email *em, const char *key, const char *val)
{
    kv_put_ttl(em, key, val, EMAIL_KV_TTL_S);
}

static void kv_put_json_ttl(email *em, const char *key, json_t *j, uint32_t ttl_s)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s) { kv_put_ttl(em, key, s, ttl_s); free(s); }
}

static void kv_put_json(email *em, const char *key, json_t *j)
{
    kv_put_json_ttl(em, key, j, EMAIL_KV_TTL_S);
}

/* The bericht id in one of our Message-IDs "<bericht-id>.<n>@<domain>", or false. */
static bool our_bericht(email *em, const char *mid, char out[64])
{
    if (!mid) return false;
    const char *at = strrchr(mid, '@');
    if (!at || strcasecmp(at + 1, em->c.domain)) return false;
    const char *dot = memchr(mid, '.', (size_t)(at - mid));
    if (!dot || dot == mid || dot - mid >= 64) return false;
    memcpy(out, mid, (size_t)(dot - mid));
    out[dot - mid] = 0;
    for (const char *p = out; *p; p++) if (!isxdigit((unsigned char)*p) && *p != '-') return false;
    return true;
}

static bool token_of_bericht(email *em, const char *bid, char token[13])
{
    char key[96];
    snprintf(key, sizeof key, "b:%s", bid);
    char *t = kv_str(em, key);
    if (!t || strlen(t) != 12) { free(t); return false; }
    memcpy(token, t, 13);
    free(t);
    return true;
}

static json_t *conv_get(email *em, const char *token)
{
    char key[32];
    snprintf(key, sizeof key, "conv:%s", token);
    return kv_json(em, key);
}

/* The conversation a mail joins: tag, our Message-IDs, then References + the same subject. */
static bool find_conversation(email *em, const parsed_mail *pm, char token[13])
{
    char t[13];
    if (mail_subject_tag(pm->subject, t)) {
        json_t *c = conv_get(em, t);
        if (c) { json_decref(c); memcpy(token, t, 13); return true; }
    }
    char bid[64];
    if (our_bericht(em, pm->in_reply_to, bid) && token_of_bericht(em, bid, token)) return true;
    for (size_t i = pm->n_refs; i-- > 0;)
        if (our_bericht(em, pm->refs[i], bid) && token_of_bericht(em, bid, token)) return true;
    char *base = mail_base_subject(pm->subject);
    bool found = false;
    for (size_t i = 0; base && *base && i <= pm->n_refs && !found; i++) {
        const char *id = i < pm->n_refs ? pm->refs[i] : pm->in_reply_to;
        if (!id) continue;
        char h[17], key[32];
        h16(id, h);
        snprintf(key, sizeof key, "m:%s", h);
        char *tk = kv_str(em, key);
        if (tk && strlen(tk) == 12) {
            json_t *c = conv_get(em, tk);
            const char *cs = json_string_value(json_object_get(c, "s"));
            if (cs && !strcasecmp(cs, base)) { memcpy(token, tk, 13); found = true; }
            json_decref(c);
        }
        free(tk);
    }
    free(base);
    return found;
}

/* ---------------------------------------------------------------- outbox */

static void originate_done(email *em, json_t *e, bool ok, const char *why);

static void outbox_save(email *em)
{
    kv_put_json_ttl(em, "outbox", em->outbox, 0);
}

static json_t *outbox_find(email *em, const char *id, size_t *idx)
{
    size_t i;
    json_t *e;
    json_array_foreach(em->outbox, i, e)
        if (!strcmp(json_string_value(json_object_get(e, "id")) ?: "", id)) {
            if (idx) *idx = i;
            return e;
        }
    return NULL;
}

static void dispatch(email *em)
{
    int64_t now = (int64_t)time(NULL);
    size_t i;
    json_t *e;
    json_array_foreach(em->outbox, i, e) {
        const char *state = json_string_value(json_object_get(e, "state"));
        if (!state || strcmp(state, "pending")) continue;
        if (json_is_true(json_object_get(e, "_busy"))) continue;
        if ((uint64_t)json_integer_value(json_object_get(e, "_seq")) > em->durable_seq) continue;
        if (json_integer_value(json_object_get(e, "next")) > now) continue;
        send_req *rq = calloc(1, sizeof *rq);
        if (!rq) return;
        rq->id = strdup(json_string_value(json_object_get(e, "id")));
        json_t *atts = json_object_get(e, "atts");
        size_t na = json_array_size(atts);
        bool att_fail = false;
        if (na) {
            rq->fds = calloc(na, sizeof *rq->fds);
            rq->metas = calloc(na, sizeof *rq->metas);
            bool can = ACDM_HOST_HAS(em->host, attachment_read) && em->host->attachment_read;
            for (size_t k = 0; k < na && rq->fds && rq->metas; k++) {
                const char *aid = json_string_value(json_object_get(json_array_get(atts, k), "id"));
                rq->metas[k].struct_size = sizeof rq->metas[k];
                int fd = -1;
                if (!can || !aid || em->host->attachment_read(em->inst, aid, &rq->metas[k], &fd) != 0 || fd < 0) {
                    att_fail = true;
                    break;
                }
                rq->fds[rq->n_atts++] = fd;
            }
        }
        if (att_fail) {
            for (size_t k = 0; k < rq->n_atts; k++) close(rq->fds[k]);
            free(rq->fds); free(rq->metas); free(rq->id); free(rq);
            const char *bid = json_string_value(json_object_get(e, "bericht"));
            if (bid) em->host->delivery_report(em->inst, bid, json_string_value(json_object_get(e, "text")),
                                               "{\"delivery\":\"failed\",\"attempts\":0,\"error\":\"an attachment of the reply could not be read\"}");
            json_array_remove(em->outbox, i);
            outbox_save(em);
            dispatch(em);
            return;
        }
        rq->entry = json_deep_copy(e);
        json_object_set_new(e, "_busy", json_true());
        pthread_mutex_lock(&em->mu);
        send_req **pp = &em->sends;
        while (*pp) pp = &(*pp)->next;
        *pp = rq;
        pthread_cond_broadcast(&em->cv);
        pthread_mutex_unlock(&em->mu);
    }
}

/* Everything queued before flush number `user` is committed: those entries may go out. */
static void outbox_durable(acdm_instance *inst, void *priv, void *user)
{
    (void)inst;
    email *em = priv;
    uint64_t seq = (uint64_t)(uintptr_t)user;
    if (seq > em->durable_seq) em->durable_seq = seq;
    dispatch(em);
}

/* Asks for the commit of the outbox as written so far. Without flush (an older core) an entry
 * is taken as durable at once, as before. */
static void outbox_flush(email *em)
{
    if (!ACDM_HOST_HAS(em->host, flush) || !em->host->flush) {
        em->durable_seq = em->out_seq;
        return;
    }
    int rc = em->host->flush(em->inst, outbox_durable, (void *)(uintptr_t)em->out_seq);
    if (rc < 0)   /* retry_tick asks again */
        em->host->log(em->inst, ACDM_PLOG_WARN, "outbox: flush refused (%s); the reply waits for "
                      "its commit", acdm_plugin_strerror(rc));
}

static void retry_tick(acdm_instance *inst, void *priv, void *user)
{
    (void)inst; (void)user;
    email *em = priv;
    /* a flush whose write failed never calls back: ask again (cheap when nothing is queued) */
    if (em->out_seq > em->durable_seq) outbox_flush(em);
    dispatch(em);
}

/* A new entry: stored (kv) first; the SMTP thread gets it only once that write is committed,
 * so nothing reaches the citizen that a kill -9 could make acdm forget (the agent's ack waits
 * for the same commit). */
static void outbox_add(email *em, json_t *entry)
{
    json_object_set_new(entry, "_seq", json_integer((json_int_t)++em->out_seq));
    json_array_append_new(em->outbox, entry);
    outbox_save(em);
    outbox_flush(em);
    dispatch(em);
}

static void report(email *em, json_t *e, const char *state, const char *error)
{
    const char *bid = json_string_value(json_object_get(e, "bericht"));
    if (!bid || json_is_true(json_object_get(e, "auto"))) return;
    json_t *p = json_pack("{s:s, s:I, s:s?}", "delivery", state,
                          "attempts", json_integer_value(json_object_get(e, "attempts")), "error", error);
    json_object_set(p, "message", json_object_get(e, "id"));
    char *s = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    em->host->delivery_report(em->inst, bid, json_string_value(json_object_get(e, "text")), s);
    free(s);
}

void email_on_sent(acdm_instance *inst, void *priv, void *arg)
{
    (void)inst;
    email *em = priv;
    send_res *res = arg;
    size_t idx = 0;
    json_t *e = outbox_find(em, res->id, &idx);
    if (e) {
        json_object_del(e, "_busy");
        json_object_set_new(e, "attempts", json_integer(json_integer_value(json_object_get(e, "attempts")) + 1));
        if (res->ok) {
            pthread_mutex_lock(&em->mu);
            em->st.sent++;
            pthread_mutex_unlock(&em->mu);
            report(em, e, "delivered", NULL);
            originate_done(em, e, true, NULL);
            json_object_set_new(e, "state", json_string("sent"));
            json_object_set_new(e, "raw", json_stringn(res->raw, res->len));
            outbox_save(em);
            append_req *a = calloc(1, sizeof *a);
            if (a) {
                a->id = strdup(res->id);
                a->raw = res->raw;
                a->len = res->len;
                res->raw = NULL;
                pthread_mutex_lock(&em->mu);
                append_req **pp = &em->appends;
                while (*pp) pp = &(*pp)->next;
                *pp = a;
                pthread_mutex_unlock(&em->mu);
                email_wake(em);
            }
        } else {
            long long att = json_integer_value(json_object_get(e, "attempts"));
            em->host->log(em->inst, ACDM_PLOG_WARN, "reply %s: attempt %lld failed: %s", res->id, att, res->err);
            email_set_error(em, "%s", res->err);
            if (res->permanent || att >= em->c.smtp_retries) {
                pthread_mutex_lock(&em->mu);
                em->st.send_failed++;
                pthread_mutex_unlock(&em->mu);
                report(em, e, "failed", res->err);
                originate_done(em, e, false, res->err);
                json_array_remove(em->outbox, idx);
            } else {
                long long d = (long long)em->c.smtp_retry_s << (att - 1 < 12 ? att - 1 : 12);
                if (d > 3600) d = 3600;
                json_object_set_new(e, "next", json_integer((json_int_t)time(NULL) + d));
                report(em, e, "retrying", res->err);
            }
            outbox_save(em);
        }
    }
    free(res->id);
    free(res->raw);
    free(res);
}

void email_on_appended(acdm_instance *inst, void *priv, void *arg)
{
    (void)inst;
    email *em = priv;
    char *id = arg;
    size_t idx;
    if (outbox_find(em, id, &idx)) {
        json_array_remove(em->outbox, idx);
        outbox_save(em);
    }
    free(id);
}

/* ---------------------------------------------------------------- automatic replies (RFC 3834) */

static bool never_auto(const char *addr)
{
    static const char *const pre[] = {"mailer-daemon", "postmaster", "abuse", "root", "noreply",
                                      "no-reply", "no_reply", "donotreply", "do-not-reply",
                                      "bounce", NULL};
    const char *at = strchr(addr, '@');
    size_t ll = at ? (size_t)(at - addr) : strlen(addr);
    for (int i = 0; pre[i]; i++) {
        size_t pl = strlen(pre[i]);
        if (ll >= pl && !strncasecmp(addr, pre[i], pl) && (ll == pl || !isalnum((unsigned char)addr[pl]) || !strcmp(pre[i], "noreply") || !strcmp(pre[i], "no-reply")))
            return true;
    }
    return false;
}

/* Why no automatic reply may go to this mail (NULL: one may). */
static const char *auto_refusal(email *em, const parsed_mail *pm, const char **rcpt)
{
    *rcpt = pm->return_path ? pm->return_path : pm->from_addr;
    if (pm->auto_submitted) return "Auto-Submitted";
    if (pm->precedence_bulk) return "Precedence";
    if (pm->x_loop) return "X-Loop";
    if (pm->suppress) return "X-Auto-Response-Suppress";
    if (pm->list_mail) return "list mail";
    if (pm->bounce) return "bounce";
    if (!*rcpt || !**rcpt) return "null return path";
    if (!addr_ok(*rcpt)) return "no valid address";
    if (never_auto(*rcpt)) return "system sender";
    if (!strcasecmp(*rcpt, em->c.address)) return "our own address";
    const char *at = pm->message_id ? strrchr(pm->message_id, '@') : NULL;
    if (at && !strcasecmp(at + 1, em->c.domain)) return "our own Message-ID";
    if (pm->auth_dmarc && strcmp(pm->auth_dmarc, "pass") && strcmp(pm->auth_dmarc, "none") &&
        strcmp(pm->auth_dmarc, "bestguesspass"))
        return "DMARC not passed";
    return NULL;
}

static char *next_mid(email *em, const char *bid)
{
    char key[96];
    snprintf(key, sizeof key, "n:%s", bid);
    char *v = kv_str(em, key);
    long n = v ? strtol(v, NULL, 10) : 0;
    free(v);
    n++;
    char num[32];
    snprintf(num, sizeof num, "%ld", n);
    kv_put_str(em, key, num);
    char *mid = NULL;
    if (asprintf(&mid, "%s.%ld@%s", bid, n, em->c.domain) < 0) return NULL;
    return mid;
}

static char *tagged_subject(const char *base, const char *prefix, const char *token)
{
    char *s = NULL;
    char tag[24];
    snprintf(tag, sizeof tag, "[KCC#%s]", token);
    if (base && strstr(base, tag)) {
        if (asprintf(&s, "%s%s", prefix, base) < 0) return NULL;
    } else if (asprintf(&s, "%s%s%s%s", prefix, base && *base ? base : "", base && *base ? " " : "", tag) < 0) {
        return NULL;
    }
    return s;
}

static void maybe_auto_reply(email *em, job *j, const char *text, const char *why)
{
    const char *rcpt = NULL;
    const char *no = auto_refusal(em, &j->pm, &rcpt);
    if (no) {
        em->host->log(em->inst, ACDM_PLOG_INFO, "no %s to %s: %s", why, rcpt ? rcpt : "(none)", no);
        return;
    }
    char h[17], key[40];
    h16(rcpt, h);
    snprintf(key, sizeof key, "ar:%s", h);
    char *last = kv_str(em, key);
    int64_t now = (int64_t)time(NULL);
    if (last && now - strtoll(last, NULL, 10) < em->c.auto_period_s) {
        free(last);
        em->host->log(em->inst, ACDM_PLOG_INFO, "no %s to %s: one was sent within %d s", why, rcpt, em->c.auto_period_s);
        return;
    }
    free(last);
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)now);
    kv_put_str(em, key, num);
    char *mid = next_mid(em, j->bericht);
    char *base = mail_base_subject(j->pm.subject);
    char *subj = tagged_subject(base, "Automatisch antwoord: ", j->conv_token);
    free(base);
    if (!mid || !subj) { free(mid); free(subj); return; }
    json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:i, s:I, s:I}", "id", mid,
                          "bericht", j->bericht, "to", rcpt, "subject", subj, "text", text ? text : "",
                          "auto", 1, "state", "pending", "attempts", 0, "next", (json_int_t)0,
                          "date", (json_int_t)now);
    if (e && j->pm.message_id) {
        json_object_set_new(e, "irt", json_string(j->pm.message_id));
        json_t *r = json_array();
        json_array_append_new(r, json_string(j->pm.message_id));
        json_object_set_new(e, "refs", r);
    }
    free(mid);
    free(subj);
    if (!e) return;
    pthread_mutex_lock(&em->mu);
    em->st.auto_replies++;
    pthread_mutex_unlock(&em->mu);
    outbox_add(em, e);
}

/* The confirmation of receipt for a new bericht, by the queue it was queued in: that queue's
 * entry in auto_reply.queues (a text; true: the default text; false: none), else the default
 * text when auto_reply.enabled. NULL: no confirmation. */
static const char *confirm_text_for(email *em, const char *bericht_id)
{
    json_t *t = NULL;
    if (em->c.confirm_queues && bericht_id && !strcmp(em->newq_bericht, bericht_id))
        t = json_object_get(em->c.confirm_queues, em->newq_queue);
    em->newq_bericht[0] = 0;
    if (json_is_string(t)) return json_string_value(t);
    if (json_is_boolean(t)) return json_is_true(t) ? em->c.confirm_text : NULL;
    return em->c.confirm ? em->c.confirm_text : NULL;
}

static void em_on_event(acdm_instance *inst, void *priv, const acdm_event_info *ev)
{
    (void)inst;
    email *em = priv;
    /* a new bericht is queued (and this event sent) before its submit callback runs */
    if (ev->type != ACDM_EV_QUEUED || !ev->bericht_id || !ev->queue || !ev->detail_json ||
        !strstr(ev->detail_json, "\"reason\":\"new\""))
        return;
    snprintf(em->newq_bericht, sizeof em->newq_bericht, "%s", ev->bericht_id);
    snprintf(em->newq_queue, sizeof em->newq_queue, "%s", ev->queue);
}

/* ---------------------------------------------------------------- intake (core thread) */

static void job_finish(email *em, job *j, int state)
{
    pthread_mutex_lock(&em->mu);
    j->state = state;
    pthread_cond_broadcast(&em->cv);
    pthread_mutex_unlock(&em->mu);
}

static void on_barrier(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome o,
                       const char *bericht_id, const char *text)
{
    (void)inst; (void)bericht_id;
    email *em = priv;
    job *j = user;
    if (o == ACDM_SUBMIT_ERROR)
        em->host->log(em->inst, ACDM_PLOG_WARN, "attachments of %s: %s", j->pm.idem, text ? text : "");
    job_finish(em, j, 1);
}

/* Stores the original and the attachments; returns their list for the payload. */
static json_t *store_parts(email *em, job *j, json_t **cids)
{
    json_t *list = json_array();
    *cids = json_object();
    bool has_store = ACDM_HOST_HAS(em->host, attachment_store) && em->host->attachment_store;
    for (size_t i = 0; i <= j->pm.n_atts; i++) {
        const char *fn, *ct, *cid = NULL;
        const void *data;
        size_t len;
        if (i == 0) {
            if (!j->raw) continue;
            fn = "original.eml"; ct = "message/rfc822"; data = j->raw; len = j->raw_len;
            if (len > ACDM_ATTACHMENT_MAX) continue;
        } else {
            mail_att *a = &j->pm.atts[i - 1];
            fn = a->filename; ct = a->content_type; cid = a->content_id; data = a->data; len = a->len;
        }
        char id[64] = "";
        int rc;
        if (has_store) {
            acdm_attachment_in in = {.struct_size = sizeof in, .bericht_id = j->bericht, .filename = fn,
                                     .content_type = ct, .content_id = cid, .data = data, .len = len};
            rc = em->host->attachment_store(em->inst, &in, id);
        } else {
            rc = em->host->attachment_put(em->inst, j->bericht, fn, ct, data, len ? len : 0, id);
        }
        if (rc != 0) {
            em->host->log(em->inst, ACDM_PLOG_WARN, "attachment %s of %s not stored: %s", fn, j->bericht, acdm_plugin_strerror(rc));
            if (i) j->pm.omitted++;
            continue;
        }
        json_t *a = json_pack("{s:s, s:s, s:s, s:I}", "id", id, "filename", fn, "content_type", ct, "size", (json_int_t)len);
        if (i == 0) json_object_set_new(a, "original", json_true());
        if (cid) { json_object_set_new(a, "content_id", json_string(cid)); json_object_set_new(*cids, cid, json_string(id)); }
        if (i > 0 && j->pm.atts[i - 1].inline_part) json_object_set_new(a, "inline", json_true());
        json_array_append_new(list, a);
    }
    return list;
}

static void conv_update(email *em, job *j)
{
    json_t *c = conv_get(em, j->conv_token);
    if (!c) c = json_object();
    char *base = mail_base_subject(j->pm.subject);
    if (!json_object_get(c, "s")) json_object_set_new(c, "s", json_string(base ? base : ""));
    free(base);
    const char *to = j->pm.reply_to ? j->pm.reply_to : j->pm.from_addr;
    if (to) json_object_set_new(c, "to", json_string(to));
    if (j->pm.message_id) {
        json_object_set_new(c, "last", json_string(j->pm.message_id));
        json_t *refs = json_array();
        for (size_t i = 0; i < j->pm.n_refs; i++) json_array_append_new(refs, json_string(j->pm.refs[i]));
        while (json_array_size(refs) > 19) json_array_remove(refs, 0);
        json_array_append_new(refs, json_string(j->pm.message_id));
        json_object_set_new(c, "refs", refs);
        char h[17], key[32];
        h16(j->pm.message_id, h);
        snprintf(key, sizeof key, "m:%s", h);
        kv_put_str(em, key, j->conv_token);
    }
    if (j->pm.thread_index) json_object_set_new(c, "ti", json_string(j->pm.thread_index));
    else json_object_del(c, "ti");
    json_object_set_new(c, "b", json_string(j->bericht));
    char q[4096];
    snprintf(q, sizeof q, "%s", j->pm.text_full ? j->pm.text_full : "");
    json_object_set_new(c, "q", json_string(q));
    json_object_set_new(c, "qd", json_string(j->pm.date ? j->pm.date : ""));
    json_object_set_new(c, "qf", json_string(j->pm.from_addr ? j->pm.from_addr : ""));
    char key[32];
    snprintf(key, sizeof key, "conv:%s", j->conv_token);
    kv_put_json(em, key, c);
    json_decref(c);
    char bk[96];
    snprintf(bk, sizeof bk, "b:%s", j->bericht);
    kv_put_str(em, bk, j->conv_token);
}

static void conv_key(email *em, const char *token, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%s", em->iname, token);
}

static const char *mail_from(const job *j)
{
    return j->pm.from_addr ? j->pm.from_addr : (j->pm.return_path && *j->pm.return_path ? j->pm.return_path : "onbekend");
}

static void on_submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome o,
                         const char *bericht_id, const char *text)
{
    (void)inst;
    email *em = priv;
    job *j = user;
    if (o == ACDM_SUBMIT_ERROR || !bericht_id) {
        email_set_error(em, "mail %s not taken in: %s", j->pm.idem, text ? text : "error");
        job_finish(em, j, 2);
        return;
    }
    snprintf(j->bericht, sizeof j->bericht, "%s", bericht_id);
    pthread_mutex_lock(&em->mu);
    if (o == ACDM_SUBMIT_DUPLICATE) em->st.duplicates++;
    else em->st.submitted++;
    pthread_mutex_unlock(&em->mu);
    if (o == ACDM_SUBMIT_DUPLICATE) { job_finish(em, j, 1); return; }
    char key[40];
    snprintf(key, sizeof key, "seen:%s", j->idem_hash);
    kv_put_str(em, key, bericht_id);
    conv_update(em, j);
    if (o == ACDM_SUBMIT_CLOSED) {
        maybe_auto_reply(em, j, text, "out-of-hours reply");
    } else if (o == ACDM_SUBMIT_QUEUED) {
        const char *t = confirm_text_for(em, bericht_id);
        if (t) maybe_auto_reply(em, j, t, "confirmation");
    }
    json_t *cids = NULL;
    json_t *list = store_parts(em, j, &cids);
    if (o == ACDM_SUBMIT_CLOSED || !json_array_size(list)) {
        /* a closed bericht is not live: its redelivery is caught by the idempotency key */
        json_decref(list);
        json_decref(cids);
        job_finish(em, j, 1);
        return;
    }
    /* the parts go to the bericht as a message of their own; its commit also makes the
     * "seen" mark and the attachments durable before the mail leaves the inbox */
    /* {"attachments": [the mail's files], "email_parts": {"original": {..}, "cid": {cid: id}, ...}} */
    json_t *files = json_array(), *original = NULL;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *a = json_array_get(list, i);
        if (json_is_true(json_object_get(a, "original"))) original = a;
        else json_array_append(files, a);
    }
    json_t *parts = json_pack("{s:o}", "cid", cids);
    if (original) json_object_set(parts, "original", original);
    if (j->pm.omitted) json_object_set_new(parts, "omitted", json_integer((json_int_t)j->pm.omitted));
    json_object_set_new(parts, "of", json_string(j->pm.message_id ? j->pm.message_id : ""));
    json_t *payload = json_pack("{s:o, s:o}", "attachments", files, "email_parts", parts);
    char *pj = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    char txt[512] = "";
    size_t n = json_array_size(list), k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(list, i);
        if (json_is_true(json_object_get(a, "original"))) continue;
        k += (size_t)snprintf(txt + k, k < sizeof txt ? sizeof txt - k : 0, "%s%s", k ? ", " : "Bijlagen: ",
                              json_string_value(json_object_get(a, "filename")));
        if (k >= sizeof txt) { k = sizeof txt - 1; break; }
    }
    if (j->pm.omitted) {
        size_t l = strlen(txt);
        snprintf(txt + l, sizeof txt - l, "%s%zu bijlage(n) weggelaten", l ? "; " : "", j->pm.omitted);
    }
    char conv[96], idem[300];
    conv_key(em, j->conv_token, conv, sizeof conv);
    snprintf(idem, sizeof idem, "%s:%s#parts", em->iname, j->pm.idem);
    acdm_inbound in = {.struct_size = sizeof in, .kind = ACDM_KIND_NAME_EMAIL, .from = mail_from(j),
                       .conversation = conv, .idempotency_key = idem,
                       .text = txt[0] ? txt : NULL, .payload_json = pj};
    if (em->host->submit(em->inst, &in, on_barrier, j) < 0) {
        em->host->log(em->inst, ACDM_PLOG_WARN, "attachments message for %s refused", j->bericht);
        job_finish(em, j, 1);
    }
    json_decref(list);
    free(pj);
}

void email_on_mail(acdm_instance *inst, void *priv, void *arg)
{
    (void)inst;
    email *em = priv;
    job *j = arg;
    parsed_mail *pm = &j->pm;
    char bid[64];
    /* a bounce of one of our replies: "not delivered" on that bericht, no new work */
    if (pm->bounce && pm->bounce_orig_id && our_bericht(em, pm->bounce_orig_id, bid)) {
        char text[512];
        snprintf(text, sizeof text, "Niet bezorgd%s%s%s%s", pm->bounce_rcpt ? " aan " : "",
                 pm->bounce_rcpt ? pm->bounce_rcpt : "", pm->bounce_status ? ": status " : "",
                 pm->bounce_status ? pm->bounce_status : "");
        json_t *p = json_pack("{s:s, s:b, s:s?, s:s?, s:s}", "delivery", "failed", "bounce", 1,
                              "status", pm->bounce_status, "recipient", pm->bounce_rcpt,
                              "message", pm->bounce_orig_id);
        char *ps = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        int rc = em->host->delivery_report(em->inst, bid, text, ps);
        free(ps);
        if (rc == 0) {
            pthread_mutex_lock(&em->mu);
            em->st.bounces++;
            pthread_mutex_unlock(&em->mu);
            job_finish(em, j, 1);
            return;
        }
        /* the bericht is unknown here: the bounce becomes a bericht of its own below */
    }
    h16(pm->idem, j->idem_hash);
    char key[40];
    snprintf(key, sizeof key, "seen:%s", j->idem_hash);
    char *seen = kv_str(em, key);
    if (seen) {
        snprintf(j->bericht, sizeof j->bericht, "%s", seen);
        free(seen);
        pthread_mutex_lock(&em->mu);
        em->st.duplicates++;
        pthread_mutex_unlock(&em->mu);
        job_finish(em, j, 1);
        return;
    }
    if (!find_conversation(em, pm, j->conv_token)) {
        char h[65];
        sha256_hex(pm->idem, strlen(pm->idem), h);
        memcpy(j->conv_token, h, 12);
        j->conv_token[12] = 0;
    }
    char conv[96], idem[300];
    conv_key(em, j->conv_token, conv, sizeof conv);
    snprintf(idem, sizeof idem, "%s:%s", em->iname, pm->idem);
    char *text = NULL;
    if (j->oversize) {
        if (asprintf(&text, "Deze e-mail van %s (onderwerp \"%s\", %zu bytes) is groter dan de limiet "
                     "van %zu bytes en is niet opgehaald. Hij staat in de map %s van de mailbox.",
                     mail_from(j), pm->subject, j->size, em->c.max_bytes, em->c.quarantine) < 0)
            text = NULL;
    }
    acdm_inbound in = {.struct_size = sizeof in, .kind = ACDM_KIND_NAME_EMAIL, .from = mail_from(j),
                       .conversation = conv, .idempotency_key = idem,
                       .subject = pm->subject[0] ? pm->subject : "(geen onderwerp)",
                       .text = text ? text : pm->text, .payload_json = j->payload};
    int rc = em->host->submit(em->inst, &in, on_submitted, j);
    free(text);
    if (rc < 0) {
        email_set_error(em, "mail %s refused by the core: %s", pm->idem, acdm_plugin_strerror(rc));
        job_finish(em, j, 2);
    }
}

void email_on_progress(acdm_instance *inst, void *priv, void *arg)
{
    (void)inst;
    email *em = priv;
    progress *p = arg;
    json_t *j = json_pack("{s:I, s:I}", "uidvalidity", (json_int_t)p->uidvalidity, "watermark", (json_int_t)p->watermark);
    kv_put_json_ttl(em, "progress", j, 0);
    json_decref(j);
    free(p);
}

/* ---------------------------------------------------------------- deliver (agent's reply) */

static int em_deliver(acdm_instance *inst, void *priv, const acdm_reply *r)
{
    (void)inst;
    email *em = priv;
    json_t *pl = r->payload_json ? json_loads(r->payload_json, 0, NULL) : NULL;
    char token[13] = "";
    const char *conv = r->conversation;
    size_t il = strlen(em->iname);
    if (conv && !strncmp(conv, em->iname, il) && conv[il] == ':' && strlen(conv + il + 1) == 12)
        memcpy(token, conv + il + 1, 13);
    else if (!token_of_bericht(em, r->bericht_id, token))
        token[0] = 0;
    json_t *c = token[0] ? conv_get(em, token) : NULL;
    const char *to = json_string_value(json_object_get(c, "to"));
    if (!to) to = r->to;
    const char *err = NULL;
    if (!to || !addr_ok(to)) err = "the customer's address is not a plain mail address";
    json_t *cc = json_object_get(pl, "cc");
    json_t *ccs = json_array();
    for (size_t i = 0; !err && i < json_array_size(cc); i++) {
        const char *a = json_string_value(json_array_get(cc, i));
        if (!a || !addr_ok(a)) err = "cc: every address must be a plain mail address";
        else json_array_append_new(ccs, json_string(a));
    }
    if (err) {
        char *ps = NULL;
        json_t *p = json_pack("{s:s, s:i, s:s}", "delivery", "failed", "attempts", 0, "error", err);
        ps = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        em->host->delivery_report(em->inst, r->bericht_id, r->text, ps);
        free(ps);
        json_decref(ccs);
        json_decref(c);
        json_decref(pl);
        return ACDM_P_EINVAL;
    }
    char *mid = next_mid(em, r->bericht_id);
    const char *psubj = json_string_value(json_object_get(pl, "subject"));
    char *subj;
    if (psubj && *psubj) {
        subj = token[0] ? tagged_subject(psubj, "", token) : strdup(psubj);
    } else {
        const char *base = json_string_value(json_object_get(c, "s"));
        subj = token[0] ? tagged_subject(base, "Re: ", token) : strdup(base ? base : "Uw bericht");
    }
    char *text = strdup(r->text ? r->text : "");
    if (json_is_true(json_object_get(pl, "quote")) && c) {
        const char *q = json_string_value(json_object_get(c, "q"));
        if (q && *q) {
            size_t n = strlen(text) + strlen(q) * 2 + 512;
            char *t = malloc(n);
            if (t) {
                size_t k = (size_t)snprintf(t, n, "%s\n\nOp %s schreef %s:\n", text,
                                            json_string_value(json_object_get(c, "qd")) ?: "",
                                            json_string_value(json_object_get(c, "qf")) ?: "");
                const char *p = q;
                while (*p && k + 4 < n) {
                    t[k++] = '>';
                    t[k++] = ' ';
                    while (*p && *p != '\n' && k + 2 < n) t[k++] = *p++;
                    if (*p == '\n') p++;
                    t[k++] = '\n';
                }
                t[k] = 0;
                free(text);
                text = t;
            }
        }
    }
    char *ti = thread_index_child(json_string_value(json_object_get(c, "ti")), (int64_t)time(NULL));
    json_t *e = json_pack("{s:s?, s:s, s:s, s:s?, s:s?, s:s, s:I, s:I, s:I, s:o}",
                          "id", mid, "bericht", r->bericht_id, "to", to, "subject", subj,
                          "text", text, "state", "pending", "attempts", (json_int_t)0,
                          "next", (json_int_t)0, "date", (json_int_t)time(NULL), "cc", ccs);
    if (e) {
        if (r->struct_size >= offsetof(acdm_reply, message_id) + sizeof(r->message_id) && r->message_id)
            json_object_set_new(e, "reply", json_string(r->message_id));
        const char *last = json_string_value(json_object_get(c, "last"));
        if (last) json_object_set_new(e, "irt", json_string(last));
        json_t *refs = json_object_get(c, "refs");
        if (refs) json_object_set(e, "refs", refs);
        if (ti) json_object_set_new(e, "ti", json_string(ti));
        json_t *atts = json_object_get(pl, "attachments");
        if (json_is_array(atts) && json_array_size(atts)) json_object_set(e, "atts", atts);
    }
    free(mid); free(subj); free(text); free(ti);
    json_decref(c);
    json_decref(pl);
    if (!e) return ACDM_P_ENOMEM;
    outbox_add(em, e);
    return 0;
}

/* ---------------------------------------------------------------- originate (ABI 1.1) */

/* A new mail from the desk (R21): the bericht exists (direction out, with the agent); its
 * thread starts here, so the citizen's answer finds it by the tag or our Message-ID. */
static int em_originate(acdm_instance *inst, void *priv, const acdm_originate *o, char *err,
                        size_t errlen)
{
    (void)inst;
    email *em = priv;
    if (!o->to || !addr_ok(o->to)) {
        snprintf(err, errlen, "to: \"%s\" is not a plain mail address", o->to ? o->to : "");
        return ACDM_P_EINVAL;
    }
    json_t *pl = o->payload_json ? json_loads(o->payload_json, 0, NULL) : NULL;
    const char *psubj = json_string_value(json_object_get(pl, "subject"));
    char h[65], token[13];
    sha256_hex(o->bericht_id, strlen(o->bericht_id), h);
    memcpy(token, h, 12);
    token[12] = 0;
    json_t *c = json_pack("{s:s, s:s, s:s}", "s", psubj && *psubj ? psubj : "Bericht van de gemeente",
                          "to", o->to, "b", o->bericht_id);
    char key[32];
    snprintf(key, sizeof key, "conv:%s", token);
    kv_put_json(em, key, c);
    json_decref(c);
    char bk[96];
    snprintf(bk, sizeof bk, "b:%s", o->bericht_id);
    kv_put_str(em, bk, token);
    /* the outbound bericht gets the thread's conversation key, so the citizen's answer (found
     * by the tag or our Message-ID) joins it as a follow-up while it is live */
    if (ACDM_HOST_HAS(em->host, set_conversation) && em->host->set_conversation) {
        char conv[96];
        conv_key(em, token, conv, sizeof conv);
        int rc = em->host->set_conversation(em->inst, o->bericht_id, conv);
        if (rc < 0)
            em->host->log(em->inst, ACDM_PLOG_WARN, "bericht %s: no conversation key (%s); an answer "
                          "will start a bericht of its own", o->bericht_id, acdm_plugin_strerror(rc));
    }
    char *mid = next_mid(em, o->bericht_id);
    char *subj = tagged_subject(psubj && *psubj ? psubj : "Bericht van de gemeente", "", token);
    json_t *cc = json_object_get(pl, "cc");
    json_t *ccs = json_array();
    for (size_t i = 0; i < json_array_size(cc); i++) {
        const char *a = json_string_value(json_array_get(cc, i));
        if (!a || !addr_ok(a)) {
            snprintf(err, errlen, "cc: every address must be a plain mail address");
            free(mid); free(subj); json_decref(ccs); json_decref(pl);
            return ACDM_P_EINVAL;
        }
        json_array_append_new(ccs, json_string(a));
    }
    char *ti = thread_index_child(NULL, (int64_t)time(NULL));
    json_t *e = json_pack("{s:s?, s:s, s:s, s:s?, s:s, s:s, s:I, s:I, s:I, s:o, s:b, s:s?}",
                          "id", mid, "bericht", o->bericht_id, "to", o->to, "subject", subj,
                          "text", o->text ? o->text : "", "state", "pending", "attempts", (json_int_t)0,
                          "next", (json_int_t)0, "date", (json_int_t)time(NULL), "cc", ccs,
                          "orig", 1, "ti", ti);
    json_t *atts = json_object_get(pl, "attachments");
    if (e && json_is_array(atts) && json_array_size(atts)) json_object_set(e, "atts", atts);
    free(mid); free(subj); free(ti);
    json_decref(pl);
    if (!e) { snprintf(err, errlen, "out of memory"); return ACDM_P_ENOMEM; }
    outbox_add(em, e);
    return 0;
}

static void originate_done(email *em, json_t *e, bool ok, const char *why)
{
    if (!json_is_true(json_object_get(e, "orig"))) return;
    const char *bid = json_string_value(json_object_get(e, "bericht"));
    if (bid && ACDM_HOST_HAS(em->host, originate_result) && em->host->originate_result)
        em->host->originate_result(em->inst, bid, ok ? ACDM_ORIG_CONNECTED : ACDM_ORIG_FAILED, why);
}

/* ---------------------------------------------------------------- status */

static json_t *status_doc(email *em)
{
    pthread_mutex_lock(&em->mu);
    json_t *s = json_pack("{s:b, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                          "healthy", em->st.connected && !(em->st.last_error_at && em->st.last_error_at > em->st.last_fetch),
                          "connected", em->st.connected, "idle", em->st.idling,
                          "backlog", (json_int_t)em->st.backlog, "quarantined", (json_int_t)em->st.quarantined,
                          "fetched", (json_int_t)em->st.fetched, "moved", (json_int_t)em->st.moved,
                          "submitted", (json_int_t)em->st.submitted, "duplicates", (json_int_t)em->st.duplicates,
                          "auto_replies", (json_int_t)em->st.auto_replies, "bounces", (json_int_t)em->st.bounces,
                          "sent", (json_int_t)em->st.sent, "send_failed", (json_int_t)em->st.send_failed);
    char t[32];
    if (em->st.last_fetch) {
        time_t tt = (time_t)em->st.last_fetch;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(s, "last_fetch", json_string(t));
    } else {
        json_object_set_new(s, "last_fetch", json_null());
    }
    json_object_set_new(s, "last_error", em->st.last_error[0] ? json_string(em->st.last_error) : json_null());
    pthread_mutex_unlock(&em->mu);
    json_object_set_new(s, "outbox", json_integer((json_int_t)json_array_size(em->outbox)));
    json_object_set_new(s, "address", json_string(em->c.address));
    return s;
}

static char *em_status_json(acdm_instance *inst, void *priv)
{
    (void)inst;
    json_t *s = status_doc(priv);
    char *r = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    return r;
}

static void on_status_route(acdm_instance *inst, void *priv, const acdm_http_request *req,
                            acdm_http_response *resp)
{
    email *em = priv;
    const char *a = req->authorization;
    if (!a || strncmp(a, "Bearer ", 7) || em->host->check_token(inst, a + 7) != 0) {
        free(em->status_body);
        em->status_body = malloc(1024);
        if (em->status_body)
            acdm_problem(resp, 401, "Unauthorized", "a bearer token of an admin or of this channel is required",
                         em->status_body, 1024);
        else resp->status = 401;
        return;
    }
    free(em->status_body);
    em->status_body = em_status_json(inst, priv);
    resp->status = 200;
    resp->content_type = "application/json";
    resp->body = em->status_body;
}

/* ---------------------------------------------------------------- lifecycle */

static int em_init(acdm_instance *inst, void *priv, const acdm_host *host, const char *config_json,
                   char *err, size_t errlen)
{
    email *em = priv;
    em->host = host;
    em->inst = inst;
    em->iname = host->instance_name(inst);
    em->wake_fd = -1;
    if (!host->attachment_put || !host->kv_get || !host->delivery_report) {
        snprintf(err, errlen, "this acdm core lacks attachment_put/kv/delivery_report: upgrade acdm");
        return -1;
    }
    if (cfg_parse(config_json, &em->c, true, err, errlen) < 0) return -1;
    mime_init();
    em->mime_ready = true;
    pthread_mutex_init(&em->mu, NULL);
    pthread_cond_init(&em->cv, NULL);
    em->outbox = json_array();
    return 0;
}

static int em_start(acdm_instance *inst, void *priv)
{
    email *em = priv;
    em->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (em->wake_fd < 0) return -1;
    json_t *p = kv_json(em, "progress");
    em->uidvalidity = (uint64_t)json_integer_value(json_object_get(p, "uidvalidity"));
    em->watermark = (uint64_t)json_integer_value(json_object_get(p, "watermark"));
    json_decref(p);
    json_t *ob = kv_json(em, "outbox");
    if (json_is_array(ob)) {
        json_decref(em->outbox);
        em->outbox = ob;
        size_t i;
        json_t *e;
        json_array_foreach(em->outbox, i, e) {
            json_object_del(e, "_busy");
            json_object_del(e, "_seq");       /* loaded from the store: durable */
            const char *st = json_string_value(json_object_get(e, "state"));
            const char *raw = json_string_value(json_object_get(e, "raw"));
            if (st && !strcmp(st, "sent") && raw) {   /* sent before the restart: only the Sent copy is due */
                append_req *a = calloc(1, sizeof *a);
                if (a) {
                    a->id = strdup(json_string_value(json_object_get(e, "id")));
                    a->raw = strdup(raw);
                    a->len = strlen(raw);
                    a->next = em->appends;
                    em->appends = a;
                }
            }
        }
    } else {
        json_decref(ob);
    }
    em->st.started = (int64_t)time(NULL);
    em->host->http_route(inst, "GET", "/status", on_status_route);
    em->retry_timer = em->host->timer_start(inst, 1000, 1000, retry_tick, NULL);
    if (pthread_create(&em->imap_thr, NULL, imap_thread, em) != 0) return -1;
    em->imap_running = true;
    if (pthread_create(&em->smtp_thr, NULL, smtp_thread, em) != 0) return -1;
    em->smtp_running = true;
    dispatch(em);
    return 0;
}

static void em_stop(acdm_instance *inst, void *priv)
{
    (void)inst;
    email *em = priv;
    pthread_mutex_lock(&em->mu);
    em->quit = true;
    __atomic_store_n(&em->quit_flag, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&em->cv);
    pthread_mutex_unlock(&em->mu);
    if (em->wake_fd >= 0) email_wake(em);
    if (em->imap_running) pthread_join(em->imap_thr, NULL);
    if (em->smtp_running) pthread_join(em->smtp_thr, NULL);
    em->imap_running = em->smtp_running = false;
    if (em->retry_timer) em->host->timer_stop(em->retry_timer);
    em->retry_timer = NULL;
}

static void em_destroy(acdm_instance *inst, void *priv)
{
    (void)inst;
    email *em = priv;
    while (em->jobs) {
        job *j = em->jobs;
        em->jobs = j->next;
        mime_free(&j->pm);
        free(j->raw);
        free(j->payload);
        free(j);
    }
    while (em->appends) {
        append_req *a = em->appends;
        em->appends = a->next;
        free(a->id); free(a->raw); free(a);
    }
    while (em->sends) {
        send_req *s = em->sends;
        em->sends = s->next;
        for (size_t i = 0; i < s->n_atts; i++) close(s->fds[i]);
        free(s->fds); free(s->metas); json_decref(s->entry); free(s->id); free(s);
    }
    json_decref(em->outbox);
    free(em->status_body);
    if (em->wake_fd >= 0) close(em->wake_fd);
    pthread_mutex_destroy(&em->mu);
    pthread_cond_destroy(&em->cv);
    cfg_free(&em->c);
    if (em->mime_ready) mime_shutdown();
}

static const acdm_plugin email_plugin = ACDM_PLUGIN_INIT(
    .name = "email", .version = "1.0.0",
    .description = "Email: IMAP intake (IDLE, polling), SMTP replies, threads, RFC 3834",
    .kinds = "email", .instance_size = sizeof(email),
    .check_config = em_check_config, .init = em_init, .start = em_start,
    .deliver = em_deliver, .stop = em_stop, .destroy = em_destroy,
    .originate = em_originate, .status_json = em_status_json, .on_event = em_on_event);

ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &email_plugin; }
