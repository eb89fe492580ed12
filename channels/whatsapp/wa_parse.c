/* wa_parse.c -- the WhatsApp webhook payload reader (see wa_parse.h). */
#include "wa_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WA_MAX_ITEMS 1000

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : NULL;
}

static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

void wa_batch_free(wa_batch *b)
{
    for (size_t i = 0; i < b->n_msgs; i++) free(b->msgs[i].text);
    free(b->msgs);
    free(b->sts);
    free(b->errs);
    json_decref(b->root);
    memset(b, 0, sizeof *b);
}

int wa_status_rank(const char *s)
{
    if (!s) return 0;
    if (!strcmp(s, "sent")) return 1;
    if (!strcmp(s, "delivered")) return 2;
    if (!strcmp(s, "read")) return 3;
    if (!strcmp(s, "failed")) return 4;
    return 0;
}

size_t wa_media_cap(wa_type t)
{
    switch (t) {
    case WA_T_IMAGE: return 5u * 1024 * 1024;
    case WA_T_AUDIO: case WA_T_VOICE: case WA_T_VIDEO: return 16u * 1024 * 1024;
    case WA_T_DOCUMENT: return 100u * 1024 * 1024;
    case WA_T_STICKER: return 500u * 1024;
    default: return 0;
    }
}

static const struct { const char *name; wa_type t; const char *label; } types[] = {
    {"text", WA_T_TEXT, NULL}, {"image", WA_T_IMAGE, "Afbeelding"}, {"audio", WA_T_AUDIO, "Audio"},
    {"voice", WA_T_VOICE, "Spraakbericht"}, {"video", WA_T_VIDEO, "Video"},
    {"document", WA_T_DOCUMENT, "Document"}, {"sticker", WA_T_STICKER, "Sticker"},
    {"location", WA_T_LOCATION, "Locatie"}, {"contacts", WA_T_CONTACTS, "Contact"},
    {"interactive", WA_T_INTERACTIVE, "Keuze"}, {"button", WA_T_BUTTON, "Knop"},
    {"reaction", WA_T_REACTION, "Reactie"},
};

static void error_of(json_t *arr, int *code, const char **title, const char **details)
{
    json_t *e = json_array_get(arr, 0);
    json_t *c = json_object_get(e, "code");
    *code = json_is_integer(c) ? (int)json_integer_value(c) : 0;
    *title = str(e, "title");
    if (!*title) *title = str(e, "message");
    *details = str(json_object_get(e, "error_data"), "details");
}

/* The agent's text for one message (Dutch placeholders for what is not text). */
static char *render(wa_message *m)
{
    json_t *raw = m->raw;
    const char *label = "Bericht";
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (types[i].t == m->type && types[i].label) label = types[i].label;
    switch (m->type) {
    case WA_T_TEXT: {
        const char *b = str(json_object_get(raw, "text"), "body");
        return strdup(b ? b : "");
    }
    case WA_T_IMAGE: case WA_T_AUDIO: case WA_T_VOICE: case WA_T_VIDEO: case WA_T_DOCUMENT: case WA_T_STICKER:
        if (m->caption && m->filename) return fmt("[%s: %s] %s", label, m->filename, m->caption);
        if (m->caption) return fmt("[%s] %s", label, m->caption);
        if (m->filename) return fmt("[%s: %s]", label, m->filename);
        return fmt("[%s]", label);
    case WA_T_LOCATION: {
        json_t *l = json_object_get(raw, "location");
        json_t *la = json_object_get(l, "latitude"), *lo = json_object_get(l, "longitude");
        const char *n = str(l, "name"), *a = str(l, "address");
        return fmt("[Locatie%s%s%s%s] %.6f, %.6f", n ? ": " : "", n ? n : "", a ? ", " : "", a ? a : "",
                   json_is_number(la) ? json_number_value(la) : 0.0,
                   json_is_number(lo) ? json_number_value(lo) : 0.0);
    }
    case WA_T_CONTACTS: {
        json_t *c = json_array_get(json_object_get(raw, "contacts"), 0);
        const char *n = str(json_object_get(c, "name"), "formatted_name");
        const char *p = str(json_array_get(json_object_get(c, "phones"), 0), "phone");
        size_t k = json_array_size(json_object_get(raw, "contacts"));
        return fmt("[Contact%s%s%s%s]%s", n ? ": " : "", n ? n : "", p ? ", " : "", p ? p : "",
                   k > 1 ? " (en meer)" : "");
    }
    case WA_T_INTERACTIVE: {
        json_t *it = json_object_get(raw, "interactive");
        json_t *r = json_object_get(it, "button_reply");
        if (!r) r = json_object_get(it, "list_reply");
        if (r) return fmt("[Keuze] %s", str(r, "title") ? str(r, "title") : (str(r, "id") ? str(r, "id") : ""));
        json_t *nfm = json_object_get(it, "nfm_reply");
        if (nfm) return fmt("[Formulier%s%s] %s", str(nfm, "name") ? ": " : "", str(nfm, "name") ? str(nfm, "name") : "",
                            str(nfm, "response_json") ? str(nfm, "response_json") : "");
        return strdup("[Keuze]");
    }
    case WA_T_BUTTON: {
        json_t *b = json_object_get(raw, "button");
        return fmt("[Knop] %s", str(b, "text") ? str(b, "text") : (str(b, "payload") ? str(b, "payload") : ""));
    }
    case WA_T_REACTION:
        if (m->emoji && *m->emoji) return fmt("[Reactie %s]", m->emoji);
        return strdup("[Reactie verwijderd]");
    default:
        if (m->error_code == 131060) return strdup("[Bericht op dit moment niet beschikbaar (WhatsApp 131060)]");
        if (m->error_code)
            return fmt("[Bericht dat WhatsApp niet doorgeeft: %s (WhatsApp %d)]",
                       m->type_name ? m->type_name : "onbekend", m->error_code);
        return fmt("[Bericht dat WhatsApp niet doorgeeft: %s]", m->type_name ? m->type_name : "onbekend");
    }
}

static int add_message(wa_batch *b, json_t *msg, json_t *contacts, const char *pnid)
{
    wa_message *m = &b->msgs[b->n_msgs];
    memset(m, 0, sizeof *m);
    m->raw = msg;
    m->id = str(msg, "id");
    m->from = str(msg, "from");
    m->user_id = str(msg, "from_user_id");
    m->phone_number_id = pnid;
    /* the contact: by wa_id, or by user id, or the only one */
    json_t *c = NULL;
    for (size_t i = 0; i < json_array_size(contacts); i++) {
        json_t *x = json_array_get(contacts, i);
        if ((m->from && str(x, "wa_id") && !strcmp(str(x, "wa_id"), m->from)) ||
            (m->user_id && str(x, "user_id") && !strcmp(str(x, "user_id"), m->user_id))) { c = x; break; }
    }
    if (!c && json_array_size(contacts) == 1) c = json_array_get(contacts, 0);
    if (c) {
        if (!m->user_id) m->user_id = str(c, "user_id");
        if (!m->from) m->from = str(c, "wa_id");
        m->name = str(json_object_get(c, "profile"), "name");
    }
    if (!m->id || strlen(m->id) > 256 || (!m->from && !m->user_id) ||
        (m->from && strlen(m->from) > 64) || (m->user_id && strlen(m->user_id) > 160)) {
        b->n_skipped++;
        return 0;
    }
    const char *ts = str(msg, "timestamp");
    m->timestamp = ts ? strtoll(ts, NULL, 10) : 0;
    m->type_name = str(msg, "type");
    m->type = WA_T_UNSUPPORTED;
    for (size_t i = 0; m->type_name && i < sizeof types / sizeof *types; i++)
        if (!strcmp(types[i].name, m->type_name)) m->type = types[i].t;
    m->context_id = str(json_object_get(msg, "context"), "id");
    if (m->type >= WA_T_IMAGE && m->type <= WA_T_STICKER) {
        json_t *md = json_object_get(msg, m->type_name);
        m->media_id = str(md, "id");
        m->mime_type = str(md, "mime_type");
        m->sha256 = str(md, "sha256");
        m->filename = str(md, "filename");
        m->caption = str(md, "caption");
    } else if (m->type == WA_T_REACTION) {
        json_t *r = json_object_get(msg, "reaction");
        m->reaction_to = str(r, "message_id");
        m->emoji = json_string_value(json_object_get(r, "emoji"));
        if (!m->emoji) m->emoji = "";
    } else if (m->type == WA_T_UNSUPPORTED) {
        const char *t, *d;
        error_of(json_object_get(msg, "errors"), &m->error_code, &t, &d);
    }
    m->text = render(m);
    if (!m->text) return -1;
    b->n_msgs++;
    return 0;
}

int wa_parse(const char *body, size_t len, wa_batch *b, char *err, size_t el)
{
    memset(b, 0, sizeof *b);
    json_error_t je;
    b->root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(b->root)) {
        snprintf(err, el, "the body is not a JSON object");
        wa_batch_free(b);
        return -1;
    }
    const char *obj = str(b->root, "object");
    if (!obj || strcmp(obj, "whatsapp_business_account")) {
        snprintf(err, el, "object: must be \"whatsapp_business_account\"");
        wa_batch_free(b);
        return -1;
    }
    json_t *entries = json_object_get(b->root, "entry");
    if (!json_is_array(entries)) {
        snprintf(err, el, "entry: must be an array");
        wa_batch_free(b);
        return -1;
    }
    size_t nm = 0, ns = 0, ne = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < json_array_size(entries); i++) {
            json_t *changes = json_object_get(json_array_get(entries, i), "changes");
            for (size_t j = 0; j < json_array_size(changes); j++) {
                json_t *v = json_object_get(json_array_get(changes, j), "value");
                json_t *msgs = json_object_get(v, "messages"), *sts = json_object_get(v, "statuses"),
                       *errs = json_object_get(v, "errors");
                if (pass == 0) {
                    nm += json_array_size(msgs);
                    ns += json_array_size(sts);
                    ne += json_array_size(errs);
                    continue;
                }
                const char *pnid = str(json_object_get(v, "metadata"), "phone_number_id");
                json_t *contacts = json_object_get(v, "contacts");
                for (size_t k = 0; k < json_array_size(msgs); k++)
                    if (add_message(b, json_array_get(msgs, k), contacts, pnid) < 0) {
                        snprintf(err, el, "out of memory");
                        wa_batch_free(b);
                        return -1;
                    }
                for (size_t k = 0; k < json_array_size(sts); k++) {
                    json_t *s = json_array_get(sts, k);
                    wa_status *st = &b->sts[b->n_sts];
                    memset(st, 0, sizeof *st);
                    st->id = str(s, "id");
                    st->status = str(s, "status");
                    st->recipient = str(s, "recipient_id");
                    if (!st->id || !st->status || strlen(st->id) > 256) { b->n_skipped++; continue; }
                    error_of(json_object_get(s, "errors"), &st->error_code, &st->error_title, &st->error_details);
                    b->n_sts++;
                }
                for (size_t k = 0; k < json_array_size(errs); k++) {
                    wa_error *e = &b->errs[b->n_errs++];
                    json_t *one = json_array();
                    json_array_append(one, json_array_get(errs, k));
                    error_of(one, &e->code, &e->title, &e->details);
                    json_decref(one);    /* the strings stay: the error object is in root */
                }
            }
        }
        if (pass == 0) {
            if (nm + ns + ne > WA_MAX_ITEMS) {
                snprintf(err, el, "more than %d messages, statuses and errors in one delivery", WA_MAX_ITEMS);
                wa_batch_free(b);
                return -1;
            }
            b->msgs = calloc(nm ? nm : 1, sizeof *b->msgs);
            b->sts = calloc(ns ? ns : 1, sizeof *b->sts);
            b->errs = calloc(ne ? ne : 1, sizeof *b->errs);
            if (!b->msgs || !b->sts || !b->errs) {
                snprintf(err, el, "out of memory");
                wa_batch_free(b);
                return -1;
            }
        }
    }
    return 0;
}
