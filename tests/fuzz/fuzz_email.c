/* fuzz_email.c -- libFuzzer entry point: arbitrary bytes as a mail through the email channel's
 * mail-to-bericht parser (GMime walk, charsets, quotes, bounces, Authentication-Results), the
 * bericht payload built from it, the header-only parse used for mail over max_bytes, and the
 * reply built from what a hostile mail supplied (subject, ids, Thread-Index). */
#include "../../channels/email/mime.c"
#include "../../channels/email/html.c"
#include "../../channels/email/build.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_header_safe(const char *raw)
{
    /* every header line of the built reply is one line: no bare CR or LF inside */
    for (const char *p = raw; *p; p++) {
        if (*p == '\r' && p[1] != '\n') abort();
        if (*p == '\n' && (p == raw || p[-1] != '\r')) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) { mime_init(); inited = 1; }
    mail_limits lim = {.max_attachments = 5, .max_attachment_bytes = 65536, .max_total_bytes = 262144};
    for (int header_only = 0; header_only < 2; header_only++) {
        parsed_mail m;
        mime_parse((const char *)data, size, header_only, &lim, &m);
        if (!m.idem || !m.subject || !m.text || !m.text_full) abort();
        if (strchr(m.subject, '\n') || strchr(m.subject, '\r')) abort();
        if (m.from_addr && !addr_ok(m.from_addr)) abort();
        if (m.n_atts > lim.max_attachments) abort();
        char *pj = mime_payload_json(&m, size, header_only ? "over the limit" : NULL);
        if (!pj) abort();
        free(pj);
        char *base = mail_base_subject(m.subject);
        char tok[13];
        (void)mail_subject_tag(m.subject, tok);
        char *ti = thread_index_child(m.thread_index, 1767603600);
        const char *refs[] = {m.message_id ? m.message_id : "x@y", m.in_reply_to ? m.in_reply_to : "a@b", NULL};
        out_mail om = {.from = "kcc@example.nl", .from_name = m.from_name, .to = m.from_addr ? m.from_addr : "a@b.nl",
                       .subject = m.subject, .message_id = "0190f7a2-5c1e-7a3b-9d4e-2f1a0b3c4d5e.1@example.nl",
                       .in_reply_to = m.message_id, .refs = refs, .thread_index = ti, .text = m.text,
                       .auto_reply = header_only};
        size_t len = 0;
        char *raw = mail_build(&om, &len);
        if (raw) { check_header_safe(raw); free(raw); }
        free(ti);
        free(base);
        mime_free(&m);
    }
    /* the raw input (NUL-cut) as the agent's subject, display name and as a cc/to address:
     * header injection must be impossible (an address that is not plain is refused) */
    char *s = strndup((const char *)data, size);
    if (!s) return 0;
    const char *cc[] = {s, NULL};
    out_mail evil = {.from = "kcc@example.nl", .from_name = s, .to = "burger@example.nl", .subject = s,
                     .message_id = "0190f7a2-5c1e-7a3b-9d4e-2f1a0b3c4d5e.2@example.nl", .text = s,
                     .thread_index = s};
    size_t len = 0;
    char *raw = mail_build(&evil, &len);
    if (!raw) abort();                        /* subject/name/text are cleaned, never refused */
    check_header_safe(raw);
    const char *body = strstr(raw, "\r\n\r\n");
    if (!body) abort();
    for (const char *p = raw; p < body; p++)  /* no header line of the sender's making */
        if (p[0] == '\n' && (!strncasecmp(p + 1, "bcc:", 4) || !strncasecmp(p + 1, "x-evil", 6))) abort();
    free(raw);
    evil.cc = cc;
    raw = mail_build(&evil, &len);
    if (raw && !addr_ok(s)) abort();          /* a cc that is not a plain address is refused */
    free(raw);
    evil.cc = NULL;
    evil.to = s;
    raw = mail_build(&evil, &len);
    if (raw && !addr_ok(s)) abort();
    free(raw);
    free(s);
    return 0;
}
