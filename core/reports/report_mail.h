/* report_mail.h -- reports by e-mail (R28d, R66); see report_mail.c. */
#ifndef ACDM_REPORT_MAIL_H
#define ACDM_REPORT_MAIL_H

#include "base/acdm.h"

#include "net/outbound.h"

typedef acdm_out_part acdm_mail_part;   /* an attachment: name, content_type, data, len */

typedef struct {
    const char *smtp_url, *from, *to;    /* to: comma-separated */
    const char *username, *password;     /* may be NULL */
    const char *subject, *text;          /* subject: ASCII */
    const acdm_mail_part *parts;
    size_t n_parts;
} acdm_mail_msg;

/* Sends m over SMTP (blocking, up to 2 minutes: a worker thread's call). 0, or ACDM_EIO /
 * ACDM_ENOMEM with a sentence in err naming the recipients and the server. */
int acdm_report_mail_send(const acdm_mail_msg *m, char *err, size_t errlen);

#endif
