/* imap.h -- a blocking IMAP client for the email channel's own thread: libcurl connects and
 * logs in (TLS, STARTTLS, SASL), then raw commands go over curl_easy_send/recv (libcurl has
 * no IDLE, no BODY.PEEK with literals, no MOVE). Every wait has a timeout and can be woken. */
#ifndef ACDM_EMAIL_IMAP_H
#define ACDM_EMAIL_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct imap imap;

/* One untagged response: its text with each literal replaced by "{}", and the literals. */
typedef struct imap_resp {
    const char *text;
    size_t text_len;
    const char *const *lits;
    const size_t *lit_lens;
    int n_lits;
} imap_resp;

typedef void (*imap_untagged_cb)(void *user, const imap_resp *r);

typedef struct imap_opts {
    const char *url;           /* imap://host:port/ or imaps://host:port/ (mailbox ignored) */
    const char *user, *password;
    const char *bearer;        /* non-NULL: log in with SASL XOAUTH2 and this token, no password */
    bool require_tls;          /* STARTTLS required on imap:// */
    long timeout_ms;           /* per step */
    int wake_fd;               /* readable: abort the current wait (stop, or work to do); -1 */
    const int *quit;           /* non-zero (atomic): abort a connect/login in progress; or NULL */
} imap_opts;

imap *imap_connect(const imap_opts *o, char *err, size_t errlen);
void imap_close(imap *m);
/* Sends one command (tag added) and reads until its tagged answer; untagged responses go to
 * cb. 0 = OK, 1 = NO/BAD (err has the server's text), -1 = I/O error or timeout (reconnect). */
int imap_cmd(imap *m, imap_untagged_cb cb, void *user, char *err, size_t errlen,
             const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* APPEND mailbox (flags) with the message as a literal. Same returns. */
int imap_append(imap *m, const char *mailbox_quoted, const char *flags, const char *data,
                size_t len, char *err, size_t errlen);
/* IDLE until the server reports EXISTS/RECENT (returns 1), wake_fd becomes readable or
 * timeout_ms passes (0), or an error (-1). Sends DONE and reads the tagged answer. */
int imap_idle(imap *m, long timeout_ms, char *err, size_t errlen);
bool imap_has_cap(imap *m, const char *cap);
/* Messages in the selected mailbox as the server last said (EXISTS less EXPUNGEs), or -1. */
long imap_exists(imap *m);
/* Whether an EXISTS (new mail) came in any answer since the last call; clears it. */
bool imap_take_news(imap *m);
/* A mailbox name as an IMAP quoted string (modified UTF-7 for non-ASCII), malloc'd. */
char *imap_quote_mailbox(const char *name);
/* Parses "UID n" etc.: the number after `key` in r->text, or 0. */
uint64_t imap_resp_num(const imap_resp *r, const char *key);

#endif
