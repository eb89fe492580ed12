/* report_mail.c -- reports by e-mail (R28d, R66): one message with the reports as attachments,
 * sent over SMTP with libcurl (blocking: call it on a worker thread). */
#include "reports/report_mail.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Adds "<addr>" for each comma-separated address of list to *rcpt. */
static bool add_rcpts(struct curl_slist **rcpt, const char *list)
{
    for (const char *p = list; *p;) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ') n--;
        if (n) {
            char a[320];
            snprintf(a, sizeof a, "<%.*s>", (int)(n < 300 ? n : 300), p);
            struct curl_slist *l = curl_slist_append(*rcpt, a);
            if (!l) return false;
            *rcpt = l;
        }
        p += strcspn(p, ",");
    }
    return *rcpt != NULL;
}

int acdm_report_mail_send(const acdm_mail_msg *m, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    if (!c) { snprintf(err, errlen, "mail: out of memory"); return ACDM_ENOMEM; }
    struct curl_slist *rcpt = NULL, *hdr = NULL;
    curl_mime *mime = curl_mime_init(c);
    char from[320], line[600], date[64];
    snprintf(from, sizeof from, "<%s>", m->from);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "Date: %a, %d %b %Y %H:%M:%S %z", &tm);   /* C locale: English names, as RFC 5322 wants */
    bool ok = mime && add_rcpts(&rcpt, m->to);
    snprintf(line, sizeof line, "Subject: %s", m->subject);
    ok = ok && (hdr = curl_slist_append(hdr, line));
    snprintf(line, sizeof line, "From: %s", m->from);
    ok = ok && curl_slist_append(hdr, line) && curl_slist_append(hdr, date);
    snprintf(line, sizeof line, "To: %s", m->to);
    ok = ok && curl_slist_append(hdr, line);
    curl_mimepart *part = ok ? curl_mime_addpart(mime) : NULL;
    ok = part && !curl_mime_data(part, m->text, CURL_ZERO_TERMINATED) &&
         !curl_mime_type(part, "text/plain; charset=utf-8");
    for (size_t i = 0; ok && i < m->n_parts; i++) {
        part = curl_mime_addpart(mime);
        ok = part && !curl_mime_data(part, m->parts[i].data, m->parts[i].len) &&
             !curl_mime_type(part, m->parts[i].content_type) && !curl_mime_filename(part, m->parts[i].name) &&
             !curl_mime_encoder(part, "base64");
    }
    if (!ok) {
        snprintf(err, errlen, "mail: out of memory");
    } else {
        curl_easy_setopt(c, CURLOPT_URL, m->smtp_url);
        curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
        curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
        /* STARTTLS when the server offers it; required when signing in (no password in clear) */
        curl_easy_setopt(c, CURLOPT_USE_SSL, (long)(m->username || m->password ? CURLUSESSL_ALL : CURLUSESSL_TRY));
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        if (m->username) curl_easy_setopt(c, CURLOPT_USERNAME, m->username);
        if (m->password) curl_easy_setopt(c, CURLOPT_PASSWORD, m->password);
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK) {
            snprintf(err, errlen, "mail to %.200s via %.200s: %s", m->to, m->smtp_url, curl_easy_strerror(rc));
            ok = false;
        }
    }
    curl_mime_free(mime);
    curl_slist_free_all(rcpt);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return ok ? 0 : ACDM_EIO;
}
