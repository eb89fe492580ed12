/* mail.h -- the email channel's parts: the mail-to-bericht parser (GMime), the HTML sanitiser
 * (gumbo), the raw IMAP client (libcurl CONNECT_ONLY) and the outgoing message builder. Each
 * part is independent of the plugin host so the fuzz harnesses and unit tests link it alone. */
#ifndef ACDM_EMAIL_MAIL_H
#define ACDM_EMAIL_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- parsed mail (mime.c) */

typedef struct mail_att {
    char *filename;        /* UTF-8, never NULL ("bijlage" when the part had none) */
    char *content_type;    /* "type/subtype" */
    char *content_id;      /* without <>, or NULL */
    unsigned char *data;   /* decoded bytes */
    size_t len;
    bool inline_part;      /* Content-Disposition inline (or a cid: image) */
} mail_att;

typedef struct mail_limits {
    size_t max_attachments;   /* attachments kept; more are counted in omitted */
    size_t max_attachment_bytes;
    size_t max_total_bytes;
} mail_limits;

typedef struct parsed_mail {
    char *message_id;      /* without <>, or NULL */
    char *idem;            /* idempotency key: "mid:<message-id>" or "hdr:<sha256 of the headers>" */
    char *from_addr;       /* lowercased addr-spec, or NULL */
    char *from_name;       /* display name, UTF-8, or NULL */
    char *return_path;     /* Return-Path addr-spec; "" for <>; NULL when absent */
    char *reply_to;        /* addr-spec or NULL */
    char *to;              /* the To header decoded (display) */
    char *cc;
    char *subject;         /* UTF-8, CR/LF free; "" when missing */
    char *date;            /* raw Date header */
    char *in_reply_to;     /* without <>, or NULL */
    char **refs;           /* References ids (without <>), n_refs long */
    size_t n_refs;
    char *thread_index;    /* Thread-Index header as sent, or NULL */
    char *text;            /* the text as the agent reads it first (quotes/signature folded) */
    char *text_full;       /* the full plain text (or the HTML's text) */
    char *html;            /* sanitised HTML, or NULL */
    bool html_remote;      /* the HTML had remote images (blocked) */
    char *auth_spf, *auth_dkim, *auth_dmarc;   /* verdicts from Authentication-Results, or NULL */
    mail_att *atts;
    size_t n_atts, omitted;
    char **warnings;       /* parse warnings shown to the agent */
    size_t n_warnings;
    /* automatic-mail signals (RFC 3834) */
    bool auto_submitted;   /* Auto-Submitted other than "no" */
    bool precedence_bulk;  /* Precedence bulk/list/junk */
    bool x_loop, suppress, list_mail;
    bool bounce;           /* RFC 3464 report, or mailer-daemon with the original attached */
    char *bounce_orig_id;  /* Message-ID of the bounced original (without <>), or NULL */
    char *bounce_status;   /* e.g. "5.1.1" */
    char *bounce_rcpt;     /* Final-Recipient address */
    bool header_only;      /* parsed from the headers alone (over max_bytes) */
} parsed_mail;

/* GMime's global state: one mime_init per user (instance, harness), mime_shutdown at its end. */
void mime_init(void);
void mime_shutdown(void);
/* Parses a whole message (or only its header block, header_only). Never fails: a broken mail
 * gives warnings and as much as could be read. */
void mime_parse(const char *raw, size_t len, bool header_only, const mail_limits *lim,
                parsed_mail *out);
void mime_free(parsed_mail *m);
/* The bericht's payload JSON object for a parsed mail (malloc'd). */
char *mime_payload_json(const parsed_mail *m, size_t size, const char *extra_warning);
/* Folds quoted history and signatures: the returned text (malloc'd) ends where the first
 * quote or signature marker starts (English and Dutch markers). *folded set when cut. */
char *mail_fold_quotes(const char *text, bool *folded);
/* Subject without leading Re:/Antw:/Fwd:/Doorst:/[tag] prefixes (malloc'd). */
char *mail_base_subject(const char *subject);
/* Finds "[KCC#token]" (token: 12 lowercase hex) in a subject; writes the token (13 bytes). */
bool mail_subject_tag(const char *subject, char token[13]);

/* ---------------------------------------------------------------- HTML sanitiser (html.c) */

/* Sanitises HTML against an allowlist: the result (malloc'd, UTF-8) has no script, style
 * element, event handler, javascript:/vbscript:/data: URL (except cid: images, which become
 * data-cid with no src), and no remote image (dropped; *remote_images counts them). Links get
 * target=_blank rel="noopener noreferrer nofollow". text_out (optional) gets the text content. */
char *html_sanitize(const char *html, size_t len, int *remote_images, char **text_out);

/* ---------------------------------------------------------------- helpers (mime.c) */

/* A header value safe to write: CR, LF and other control characters become spaces. */
char *hdr_clean(const char *s);
/* A plain addr-spec (local@domain, no spaces, quotes, brackets, commas or controls). */
bool addr_ok(const char *a);
void sha256_hex(const void *data, size_t len, char out[65]);
char *b64_encode(const unsigned char *d, size_t n, bool wrap);
unsigned char *b64_decode(const char *s, size_t *n);

/* ---------------------------------------------------------------- outgoing (build.c) */

typedef struct out_att {
    const char *filename, *content_type;
    const unsigned char *data;
    size_t len;
} out_att;

typedef struct out_mail {
    const char *from, *from_name, *to;
    const char *const *cc;          /* NULL-terminated or NULL */
    const char *subject;
    const char *message_id;         /* without <> */
    const char *in_reply_to;        /* without <>, or NULL */
    const char *const *refs;        /* NULL-terminated, without <> */
    const char *thread_index;       /* the new Thread-Index (base64) or NULL */
    const char *text;
    bool auto_reply;                /* Auto-Submitted: auto-replied + X-Auto-Response-Suppress */
    const out_att *atts;
    size_t n_atts;
    int64_t date_s;                 /* 0: now */
} out_mail;

/* The RFC 5322 message (CRLF line ends, 7-bit: headers RFC 2047, body base64), malloc'd.
 * Returns NULL when from/to is not a plain address (header injection refused). */
char *mail_build(const out_mail *m, size_t *len);
/* Outlook's Thread-Index for a reply: the parent's extended by a 5-byte child block, or a new
 * 22-byte index without a parent. malloc'd base64. */
char *thread_index_child(const char *parent_b64, int64_t now_s);

#endif
