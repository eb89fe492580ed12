/* report_mail.c -- reports by e-mail (R28d, R66): one message with the reports as attachments,
 * sent over SMTP by the core's outbound client (blocking: call it on a worker thread). */
#include "reports/report_mail.h"
#include "net/outbound.h"

int acdm_report_mail_send(const acdm_mail_msg *m, char *err, size_t errlen)
{
    acdm_out_mail om = {.url = m->smtp_url, .from = m->from, .to = m->to, .username = m->username,
                        .password = m->password, .subject = m->subject, .text = m->text,
                        .parts = (const acdm_out_part *)m->parts, .n_parts = m->n_parts};
    return acdm_out_smtp_send(&om, err, errlen);
}
