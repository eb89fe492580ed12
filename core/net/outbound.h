/* outbound.h -- acdmd's one outbound client (libcurl). Everything acdmd sends out goes through
 * here, so one place sets what every transfer gets (protocols allowed, time-outs, body caps,
 * user agent, no signals):
 *   - HTTP requests on the loop: libcurl multi driven by libuv (a uv_poll per socket, one
 *     uv_timer) — plugins' http_request, screen-pop, the OIDC key-set fetch;
 *   - blocking transfers for worker threads: an HTTP GET and an SMTP send (the report mail).
 */
#ifndef ACDM_OUTBOUND_H
#define ACDM_OUTBOUND_H

#include <stddef.h>
#include <uv.h>

#include "base/acdm.h"

#define ACDM_OUT_DEFAULT_TIMEOUT_MS 10000L
#define ACDM_OUT_DEFAULT_MAX_BODY (16u << 20)

typedef struct acdm_outbound acdm_outbound;   /* one per loop */
typedef struct acdm_out_req acdm_out_req;     /* a request in flight */

/* Runs on the loop exactly once per started request (unless it was cancelled with
 * acdm_out_cancel): status is the HTTP status, or negative with error set (a connection
 * failure, the time-out, "response body too large", or "cancelled" at acdm_outbound_destroy).
 * body is borrowed for the call. */
typedef void (*acdm_out_done)(void *user, int status, const char *body, size_t len,
                              const char *error);

typedef struct {
    const char *method;          /* default GET, or POST when body is set */
    const char *url;             /* http:// or https:// only */
    const char *const *headers;  /* NULL-terminated "Name: value" list, or NULL */
    const char *body;            /* may be NULL */
    size_t body_len;             /* 0 with body set: strlen(body) */
    long timeout_ms;             /* total; 0 = ACDM_OUT_DEFAULT_TIMEOUT_MS */
    size_t max_body;             /* response cap; 0 = ACDM_OUT_DEFAULT_MAX_BODY */
} acdm_out_opts;

int acdm_outbound_create(uv_loop_t *loop, acdm_outbound **out);
/* Every request still in flight hears "cancelled"; the handles are closed (the loop is run
 * until their close callbacks have). */
void acdm_outbound_destroy(acdm_outbound *o);

/* Starts a request. 0 (and *req, if req is not NULL, until done runs), ACDM_EINVAL for a bad
 * URL, method or option (err names it when errbuf is given), ACDM_ENOMEM, ACDM_EIO. */
int acdm_out_start(acdm_outbound *o, const acdm_out_opts *opts, acdm_out_done done, void *user,
                   acdm_out_req **req, char *err, size_t errlen);
/* Drops a request in flight: done is not called. */
void acdm_out_cancel(acdm_out_req *r);

/* Blocking (worker threads): GET url with the same defaults. 0 with *body (malloc'd,
 * NUL-terminated; the caller frees) and *status, or negative with err. A status other than
 * 2xx is not an error here: the caller reads *status. */
int acdm_out_get_sync(const char *url, long timeout_ms, size_t max_body, char **body, size_t *len,
                      long *status, char *err, size_t errlen);

/* Blocking (worker threads): sends one mail over SMTP (plain text and attachments, built by
 * libcurl's MIME API). url smtp:// or smtps://; STARTTLS is required when a user name or
 * password is given (a password never goes in clear) and tried otherwise. 0, or ACDM_EIO /
 * ACDM_ENOMEM with a sentence in err naming the recipients and the server. */
typedef struct {
    const char *name;            /* the attachment's file name */
    const char *content_type;
    const char *data;
    size_t len;
} acdm_out_part;

typedef struct {
    const char *url, *from, *to;           /* to: comma-separated addresses */
    const char *username, *password;       /* may be NULL */
    const char *subject, *text;            /* subject: ASCII */
    const acdm_out_part *parts;
    size_t n_parts;
    long timeout_ms;                       /* 0 = 120 s */
} acdm_out_mail;
int acdm_out_smtp_send(const acdm_out_mail *m, char *err, size_t errlen);

#endif
