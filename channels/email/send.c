/* send.c -- the SMTP thread of one mailbox: builds each queued reply (mail_build) and sends it
 * with libcurl, STARTTLS required unless the server is on loopback. Results go back to the
 * core thread through post(); the retry schedule and the outbox belong to the core side. */
#include "email.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct upload { const char *data; size_t len, off; } upload;

static size_t read_cb(char *buf, size_t size, size_t n, void *u)
{
    upload *up = u;
    size_t want = size * n, left = up->len - up->off;
    if (want > left) want = left;
    memcpy(buf, up->data + up->off, want);
    up->off += want;
    return want;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static char **str_array(json_t *a)
{
    size_t n = json_array_size(a);
    char **r = calloc(n + 1, sizeof *r);
    if (!r) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (s) r[k++] = strdup(s);
    }
    return r;
}

static void str_array_free(char **a)
{
    for (size_t i = 0; a && a[i]; i++) free(a[i]);
    free(a);
}

static unsigned char *read_fd(int fd, size_t *len)
{
    size_t cap = 65536, n = 0;
    unsigned char *b = malloc(cap);
    if (!b) return NULL;
    for (;;) {
        if (n == cap) {
            unsigned char *nb = realloc(b, cap * 2);
            if (!nb) { free(b); return NULL; }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0) { free(b); return NULL; }
        if (r == 0) break;
        n += (size_t)r;
    }
    *len = n;
    return b;
}

static int abort_cb(void *u, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt; (void)dn; (void)ut; (void)un;
    return __atomic_load_n((const int *)u, __ATOMIC_RELAXED) ? 1 : 0;
}

static void do_send(email *em, send_req *rq, send_res *res)
{
    json_t *e = rq->entry;
    char **cc = str_array(json_object_get(e, "cc"));
    char **refs = str_array(json_object_get(e, "refs"));
    out_att *atts = rq->n_atts ? calloc(rq->n_atts, sizeof *atts) : NULL;
    unsigned char **bufs = rq->n_atts ? calloc(rq->n_atts, sizeof *bufs) : NULL;
    size_t na = 0;
    for (size_t i = 0; i < rq->n_atts && atts && bufs; i++) {
        size_t len = 0;
        bufs[i] = read_fd(rq->fds[i], &len);
        if (!bufs[i]) { snprintf(res->err, sizeof res->err, "attachment %s could not be read", rq->metas[i].filename); goto out; }
        atts[na++] = (out_att){rq->metas[i].filename, rq->metas[i].content_type, bufs[i], len};
    }
    bool autor = json_is_true(json_object_get(e, "auto"));
    out_mail m = {.from = em->c.address, .from_name = em->c.name, .to = jstr(e, "to"),
                  .cc = (const char *const *)cc, .subject = jstr(e, "subject"),
                  .message_id = jstr(e, "id"), .in_reply_to = jstr(e, "irt"),
                  .refs = (const char *const *)refs, .thread_index = jstr(e, "ti"),
                  .text = jstr(e, "text"), .auto_reply = autor, .atts = atts, .n_atts = na,
                  .date_s = json_integer_value(json_object_get(e, "date"))};
    size_t len = 0;
    char *raw = mail_build(&m, &len);
    if (!raw) {
        snprintf(res->err, sizeof res->err, "the mail could not be built (an address is not a plain address)");
        res->permanent = true;
        goto out;
    }
    CURL *c = curl_easy_init();
    if (!c) { free(raw); snprintf(res->err, sizeof res->err, "curl_easy_init failed"); goto out; }
    char from[300];
    snprintf(from, sizeof from, autor ? "<>" : "<%s>", em->c.address);
    struct curl_slist *rcpt = NULL;
    char r1[300];
    snprintf(r1, sizeof r1, "<%s>", m.to);
    rcpt = curl_slist_append(rcpt, r1);
    for (size_t i = 0; cc && cc[i]; i++) {
        snprintf(r1, sizeof r1, "<%s>", cc[i]);
        rcpt = curl_slist_append(rcpt, r1);
    }
    upload up = {raw, len, 0};
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, em->c.smtp_url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)em->c.timeout_s * 1000);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)em->c.timeout_s * 4000);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);            /* a stop aborts a hanging send */
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)&em->quit_flag);
    if (em->c.smtp_tls) curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    const char *bearer = NULL;
    if (em->c.smtp_token.path &&         /* xoauth2: the token as the file holds it now */
        !(bearer = token_current(&em->c.smtp_token, "smtp", res->err, sizeof res->err))) {
        curl_slist_free_all(rcpt);
        curl_easy_cleanup(c);
        free(raw);
        goto out;                          /* retried: the refresher may write it meanwhile */
    }
    if (em->c.smtp_user) {
        curl_easy_setopt(c, CURLOPT_USERNAME, em->c.smtp_user);
        if (bearer) {
            curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, bearer);
            curl_easy_setopt(c, CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
        } else {
            curl_easy_setopt(c, CURLOPT_PASSWORD, em->c.smtp_pass ? em->c.smtp_pass : "");
        }
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    if (rc == CURLE_OK) {
        res->ok = true;
        res->raw = raw;
        res->len = len;
    } else {
        snprintf(res->err, sizeof res->err, "SMTP: %s%s%s (code %ld)", curl_easy_strerror(rc),
                 ebuf[0] ? ": " : "", ebuf, code);
        res->permanent = code >= 500 && code < 600;
        free(raw);
    }
out:
    for (size_t i = 0; bufs && i < rq->n_atts; i++) free(bufs[i]);
    free(bufs);
    free(atts);
    str_array_free(cc);
    str_array_free(refs);
}

void *smtp_thread(void *arg)
{
    email *em = arg;
    pthread_mutex_lock(&em->mu);
    for (;;) {
        while (!em->quit && !em->sends) pthread_cond_wait(&em->cv, &em->mu);
        if (em->quit) break;
        send_req *rq = em->sends;
        em->sends = rq->next;
        pthread_mutex_unlock(&em->mu);
        send_res *res = calloc(1, sizeof *res);
        if (res) {
            res->id = strdup(rq->id);
            do_send(em, rq, res);
        }
        for (size_t i = 0; i < rq->n_atts; i++) close(rq->fds[i]);
        free(rq->fds);
        free(rq->metas);
        json_decref(rq->entry);
        free(rq->id);
        free(rq);
        if (res && em->host->post(em->inst, email_on_sent, res) < 0) {
            free(res->id);
            free(res->raw);
            free(res);
        }
        pthread_mutex_lock(&em->mu);
    }
    pthread_mutex_unlock(&em->mu);
    return NULL;
}
