/* visitor.c -- parsing the widget's websocket messages (see visitor.h). */
#include "visitor.h"

#include <stdio.h>
#include <string.h>

size_t visitor_utf8_len(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
    return n;
}

static int opt_str(json_t *o, const char *key, size_t max, int required, const char **out,
                   size_t *outlen, const char **code, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (outlen) *outlen = 0;
    if (!v || json_is_null(v)) {
        if (!required) return 0;
        *code = VERR_INVALID;
        snprintf(err, errlen, "%s: required", key);
        return -1;
    }
    if (!json_is_string(v)) {
        *code = VERR_INVALID;
        snprintf(err, errlen, "%s: expected a string", key);
        return -1;
    }
    size_t bytes = json_string_length(v);
    if (strlen(json_string_value(v)) != bytes) {
        *code = VERR_INVALID;
        snprintf(err, errlen, "%s: contains a NUL character", key);
        return -1;
    }
    if (max && visitor_utf8_len(json_string_value(v), bytes) > max) {
        *code = VERR_TOO_LONG;
        snprintf(err, errlen, "%s: longer than %zu characters", key, max);
        return -1;
    }
    *out = json_string_value(v);
    if (outlen) *outlen = bytes;
    return 0;
}

int visitor_parse(const char *data, size_t len, size_t max_text, visitor_msg *m,
                  const char **code, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    *code = VERR_MALFORMED;
    json_error_t je;
    json_t *o = json_loadb(data, len, 0, &je);
    if (!o || !json_is_object(o)) {
        snprintf(err, errlen, "malformed message: %s", o ? "expected a JSON object" : je.text);
        json_decref(o);
        return -1;
    }
    m->root = o;
    const char *type = json_string_value(json_object_get(o, "type"));
    *code = VERR_INVALID;
    if (!type) { snprintf(err, errlen, "type: required"); goto bad; }
    if (!strcmp(type, "message")) {
        m->type = VM_MESSAGE;
        if (opt_str(o, "text", max_text, 1, &m->text, &m->text_len, code, err, errlen)) goto bad;
        const char *p = m->text;
        while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
        if (!*p) { *code = VERR_INVALID; snprintf(err, errlen, "text: must not be empty"); goto bad; }
    } else if (!strcmp(type, "typing")) {
        m->type = VM_TYPING;
    } else if (!strcmp(type, "end")) {
        m->type = VM_END;
    } else if (!strcmp(type, "ping")) {
        m->type = VM_PING;
    } else if (!strcmp(type, "leave_message")) {
        m->type = VM_LEAVE_MESSAGE;
        if (opt_str(o, "text", max_text, 1, &m->text, &m->text_len, code, err, errlen) ||
            opt_str(o, "name", 200, 0, &m->name, NULL, code, err, errlen) ||
            opt_str(o, "email", 254, 0, &m->email, NULL, code, err, errlen)) goto bad;
        if (!m->text_len) { *code = VERR_INVALID; snprintf(err, errlen, "text: must not be empty"); goto bad; }
        if (m->email && *m->email && !strchr(m->email, '@')) {
            *code = VERR_INVALID;
            snprintf(err, errlen, "email: not an e-mail address");
            goto bad;
        }
    } else if (!strcmp(type, "attachment_start")) {
        m->type = VM_ATTACH_START;
        if (opt_str(o, "filename", 200, 1, &m->filename, NULL, code, err, errlen) ||
            opt_str(o, "content_type", 127, 1, &m->content_type, NULL, code, err, errlen)) goto bad;
        json_t *sz = json_object_get(o, "size");
        if (!json_is_integer(sz) || json_integer_value(sz) <= 0) {
            *code = VERR_INVALID;
            snprintf(err, errlen, "size: expected a positive integer (bytes)");
            goto bad;
        }
        m->size = (long long)json_integer_value(sz);
        if (!*m->filename || strchr(m->filename, '/') || strchr(m->filename, '\\')) {
            *code = VERR_INVALID;
            snprintf(err, errlen, "filename: expected a plain file name");
            goto bad;
        }
    } else if (!strcmp(type, "attachment_chunk")) {
        m->type = VM_ATTACH_CHUNK;
        if (opt_str(o, "data", 0, 1, &m->data, &m->data_len, code, err, errlen)) goto bad;
    } else if (!strcmp(type, "attachment_end")) {
        m->type = VM_ATTACH_END;
    } else if (!strcmp(type, "new")) {
        m->type = VM_NEW;
    } else if (!strcmp(type, "csat")) {
        m->type = VM_CSAT;
        json_t *sc = json_object_get(o, "score"), *hp = json_object_get(o, "helped");
        m->helped = -1;
        if (sc && !json_is_null(sc)) {
            if (!json_is_integer(sc) || json_integer_value(sc) < 1 || json_integer_value(sc) > 5) {
                snprintf(err, errlen, "score: expected an integer from 1 to 5");
                goto bad;
            }
            m->score = (int)json_integer_value(sc);
        }
        if (hp && !json_is_null(hp)) {
            if (!json_is_boolean(hp)) { snprintf(err, errlen, "helped: expected true or false"); goto bad; }
            m->helped = json_is_true(hp);
        }
        if (!m->score && m->helped < 0) { snprintf(err, errlen, "score or helped: at least one is required"); goto bad; }
    } else {
        snprintf(err, errlen, "type: unknown message type \"%.40s\"", type);
        goto bad;
    }
    return 0;
bad:
    json_decref(o);
    memset(m, 0, sizeof *m);
    return -1;
}

void visitor_free(visitor_msg *m)
{
    json_decref(m->root);
    memset(m, 0, sizeof *m);
}

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long visitor_b64_decode(const char *in, size_t len, unsigned char *out)
{
    unsigned acc = 0;
    int bits = 0;
    long n = 0;
    size_t i = 0;
    for (; i < len && in[i] != '='; i++) {
        int v = b64v((unsigned char)in[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    for (; i < len; i++)
        if (in[i] != '=') return -1;
    return n;
}
