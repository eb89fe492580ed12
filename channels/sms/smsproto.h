/* smsproto.h -- what SMS providers send us, parsed: Kannel's sms-service MO calls (get-url or
 * post-url) and delivery reports (our dlr-url), Twilio-compatible form posts (inbound messages
 * and status callbacks). Pure C, no host calls: the fuzz harnesses call these directly. */
#ifndef ACDM_SMSPROTO_H
#define ACDM_SMSPROTO_H

#include <stddef.h>

/* One argument of a query string: raw (percent-encoding intact, ABI 1.1's query_raw or a form
 * body) is decoded; otherwise the query was decoded by an ABI 1.0 host and is split as it is
 * (ambiguous when a value held '&'). Returns the value's length, -1 when absent, -2 when it
 * does not decode or fit. */
long sms_arg(const char *query, int raw, const char *name, char *out, size_t cap);

/* A mobile-originated SMS from Kannel. */
typedef struct {
    char from[64], to[64], id[128], time[64], charset[32], smsc[64];
    int coding;                 /* 0 7-bit, 1 8-bit, 2 UCS-2; -1 unknown */
    char *text;                 /* malloc'd UTF-8 (converted from the charset Kannel names) */
    size_t text_len;
} kannel_mo;

/* Parses the MO: sender (from), receiver (to), id, time, coding, charset from the query (see
 * the sms-service group in docs/operations.md); the text from `text` in the query (get-url) or
 * the body (post-url). 0, or -1 with a sentence in err. Free with kannel_mo_free. */
int kannel_mo_parse(const char *query, int raw, const char *body, size_t body_len,
                    kannel_mo *out, char *err, size_t errlen);
void kannel_mo_free(kannel_mo *m);

/* A delivery report at our dlr-url: message id (m), part (p, 0-based), Kannel's status (s:
 * 1 delivered, 2 not delivered, 4 queued on SMSC, 8 delivered to SMSC, 16 rejected, 32
 * intermediate) and the SMSC's answer (a). 0 or -1 with err. */
typedef struct {
    char msg[80];
    int part;
    int status;
    char answer[256];
} kannel_dlr;
int kannel_dlr_parse(const char *query, int raw, kannel_dlr *out, char *err, size_t errlen);

/* The delivery state of one part as a number that only grows (see sms.c): */
enum { SMS_ST_NONE = 0, SMS_ST_ACCEPTED = 1, SMS_ST_SENT = 2, SMS_ST_DELIVERED = 3, SMS_ST_FAILED = 4 };
/* Kannel's DLR value -> SMS_ST_*, or -1 for one that says nothing (32, unknown bits). */
int kannel_dlr_state(int status);
/* Twilio's MessageStatus -> SMS_ST_*, or -1 (receiving, received, ...). */
int twilio_status_state(const char *status);

/* A form body (application/x-www-form-urlencoded) decoded into name/value pairs. */
typedef struct {
    size_t n;
    char **names, **values;
} sms_form;
/* 0, or -1 (malformed: a bad escape, a NUL, more than 200 fields). Free with sms_form_free. */
int sms_form_parse(const char *body, size_t len, sms_form *f);
void sms_form_free(sms_form *f);
const char *sms_form_get(const sms_form *f, const char *name);

/* A Twilio-compatible inbound message (fields of the form). */
typedef struct {
    const char *sid, *from, *to, *body;   /* borrowed from the form */
    int num_media;
    const char *media_url[10], *media_type[10];
} twilio_in;
/* 0, or -1 with err (a required field missing, NumMedia out of range). */
int twilio_in_parse(const sms_form *f, twilio_in *out, char *err, size_t errlen);

/* Opt-out keywords (STOP, AFMELDEN, UITSCHRIJVEN, STOPALL, UNSUBSCRIBE) -> 1; opt-in (START,
 * AANMELDEN, UNSTOP) -> 2; anything else 0. Case and surrounding blanks are ignored. */
int sms_keyword(const char *text, size_t len);

#endif
