/* html.c -- the HTML sanitiser for mail bodies: libgumbo (a real HTML5 parser, the same tree a
 * browser builds) and an allowlist of tags, attributes, URL schemes and CSS properties. What is
 * not allowed is dropped (dangerous elements with their content, unknown ones unwrapped); the
 * output is serialised from the tree, every text and attribute escaped, so nothing the sender
 * wrote reaches the desk as markup the allowlist did not emit. */
#include "mail.h"

#include <ctype.h>
#include <gumbo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTML_MAX_INPUT (4u * 1024u * 1024u)
#define HTML_MAX_TAGS 20000          /* more '<' than this: shown as plain text */
#define HTML_MAX_DEPTH 128

typedef struct sbuf { char *s; size_t n, cap; bool oom; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 1024;
        while (c < b->n + n + 1) c *= 2;
        char *ns = realloc(b->s, c);
        if (!ns) { b->oom = true; return; }
        b->s = ns;
        b->cap = c;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_esc(sbuf *b, const char *s, bool attr)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_str(b, "&amp;"); break;
        case '<': sb_str(b, "&lt;"); break;
        case '>': sb_str(b, "&gt;"); break;
        case '"': if (attr) { sb_str(b, "&quot;"); break; } /* fall through */
        /* fall through */
        default: sb_put(b, s, 1);
        }
    }
}

static const GumboTag allowed_tags[] = {
    GUMBO_TAG_A, GUMBO_TAG_ABBR, GUMBO_TAG_B, GUMBO_TAG_BLOCKQUOTE, GUMBO_TAG_BR,
    GUMBO_TAG_CAPTION, GUMBO_TAG_CENTER, GUMBO_TAG_CITE, GUMBO_TAG_CODE, GUMBO_TAG_COL,
    GUMBO_TAG_COLGROUP, GUMBO_TAG_DD, GUMBO_TAG_DEL, GUMBO_TAG_DIV, GUMBO_TAG_DL, GUMBO_TAG_DT,
    GUMBO_TAG_EM, GUMBO_TAG_FONT, GUMBO_TAG_H1, GUMBO_TAG_H2, GUMBO_TAG_H3, GUMBO_TAG_H4,
    GUMBO_TAG_H5, GUMBO_TAG_H6, GUMBO_TAG_HR, GUMBO_TAG_I, GUMBO_TAG_IMG, GUMBO_TAG_INS,
    GUMBO_TAG_LI, GUMBO_TAG_OL, GUMBO_TAG_P, GUMBO_TAG_PRE, GUMBO_TAG_Q, GUMBO_TAG_S,
    GUMBO_TAG_SMALL, GUMBO_TAG_SPAN, GUMBO_TAG_STRIKE, GUMBO_TAG_STRONG, GUMBO_TAG_SUB,
    GUMBO_TAG_SUP, GUMBO_TAG_TABLE, GUMBO_TAG_TBODY, GUMBO_TAG_TD, GUMBO_TAG_TFOOT,
    GUMBO_TAG_TH, GUMBO_TAG_THEAD, GUMBO_TAG_TR, GUMBO_TAG_U, GUMBO_TAG_UL, GUMBO_TAG_LAST};

/* dropped with everything inside */
static const GumboTag dropped_tags[] = {
    GUMBO_TAG_SCRIPT, GUMBO_TAG_STYLE, GUMBO_TAG_HEAD, GUMBO_TAG_TITLE, GUMBO_TAG_IFRAME,
    GUMBO_TAG_OBJECT, GUMBO_TAG_EMBED, GUMBO_TAG_APPLET, GUMBO_TAG_NOSCRIPT,
    GUMBO_TAG_TEMPLATE, GUMBO_TAG_SVG, GUMBO_TAG_MATH, GUMBO_TAG_INPUT, GUMBO_TAG_BUTTON,
    GUMBO_TAG_SELECT, GUMBO_TAG_TEXTAREA, GUMBO_TAG_FRAME, GUMBO_TAG_FRAMESET,
    GUMBO_TAG_NOFRAMES, GUMBO_TAG_AUDIO, GUMBO_TAG_VIDEO, GUMBO_TAG_SOURCE, GUMBO_TAG_TRACK,
    GUMBO_TAG_CANVAS, GUMBO_TAG_BASE, GUMBO_TAG_LINK, GUMBO_TAG_META, GUMBO_TAG_PARAM,
    GUMBO_TAG_XMP, GUMBO_TAG_PLAINTEXT, GUMBO_TAG_LAST};

static bool in_list(const GumboTag *l, GumboTag t)
{
    for (; *l != GUMBO_TAG_LAST; l++) if (*l == t) return true;
    return false;
}

static const char *const allowed_attrs[] = {
    "alt", "title", "width", "height", "colspan", "rowspan", "align", "valign", "border",
    "cellpadding", "cellspacing", "color", "face", "size", "dir", "lang", "bgcolor", "start",
    "type", "cite", NULL};

static const char *const css_props[] = {
    "color", "background-color", "font-weight", "font-style", "font-size", "font-family",
    "text-align", "text-decoration", "margin", "margin-left", "margin-right", "margin-top",
    "margin-bottom", "padding", "padding-left", "padding-right", "padding-top",
    "padding-bottom", "border", "border-left", "border-right", "border-top", "border-bottom",
    "border-collapse", "border-color", "border-style", "border-width", "width", "height",
    "max-width", "line-height", "vertical-align", "white-space", "list-style-type",
    "text-indent", "display", NULL};

static bool str_in(const char *const *l, const char *s)
{
    for (; *l; l++) if (!strcasecmp(*l, s)) return true;
    return false;
}

/* The value with whitespace and control characters removed, lowercased (for scheme checks). */
static void squash(const char *v, char *out, size_t cap)
{
    size_t k = 0;
    for (; *v && k + 1 < cap; v++)
        if ((unsigned char)*v > 0x20) out[k++] = (char)tolower((unsigned char)*v);
    out[k] = 0;
}

static bool url_ok(const char *v)
{
    char s[64];
    squash(v, s, sizeof s);
    return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) || !strncmp(s, "mailto:", 7);
}

/* A style attribute filtered to allowed properties with harmless values. */
static void filter_css(const char *style, sbuf *out)
{
    char *s = strdup(style);
    if (!s) return;
    char *save = NULL;
    for (char *decl = strtok_r(s, ";", &save); decl; decl = strtok_r(NULL, ";", &save)) {
        char *colon = strchr(decl, ':');
        if (!colon) continue;
        *colon = 0;
        char *name = decl, *val = colon + 1;
        while (isspace((unsigned char)*name)) name++;
        size_t nl = strlen(name);
        while (nl && isspace((unsigned char)name[nl - 1])) name[--nl] = 0;
        while (isspace((unsigned char)*val)) val++;
        if (!str_in(css_props, name)) continue;
        char sq[512];
        squash(val, sq, sizeof sq);
        if (strlen(val) > 200 || strstr(sq, "url(") || strstr(sq, "expression") ||
            strstr(sq, "javascript") || strstr(sq, "behavio") || strchr(val, '\\') ||
            strchr(val, '<') || strchr(val, '@') || strstr(val, "/*") || strstr(sq, "-moz-binding"))
            continue;
        bool ok = true;
        for (const char *p = val; *p; p++)
            if (!(isalnum((unsigned char)*p) || strchr(" #%.,-'\"!()", *p))) { ok = false; break; }
        if (!ok) continue;
        if (out->n) sb_str(out, "; ");
        sb_str(out, name);
        sb_str(out, ": ");
        sb_str(out, val);
    }
    free(s);
}

typedef struct ctx {
    sbuf out, text;
    int remote;
} ctx;

static void text_nl(ctx *c)
{
    if (c->text.n && c->text.s[c->text.n - 1] != '\n') sb_str(&c->text, "\n");
}

static bool is_block(GumboTag t)
{
    return t == GUMBO_TAG_P || t == GUMBO_TAG_DIV || t == GUMBO_TAG_BR || t == GUMBO_TAG_TR ||
           t == GUMBO_TAG_LI || t == GUMBO_TAG_BLOCKQUOTE || t == GUMBO_TAG_TABLE ||
           (t >= GUMBO_TAG_H1 && t <= GUMBO_TAG_H6) || t == GUMBO_TAG_HR || t == GUMBO_TAG_PRE;
}

static void h_walk(ctx *c, const GumboNode *n, int depth);

static void h_children(ctx *c, const GumboVector *v, int depth)
{
    for (unsigned i = 0; i < v->length; i++) h_walk(c, v->data[i], depth + 1);
}

static void h_element(ctx *c, const GumboNode *n, int depth)
{
    const GumboElement *e = &n->v.element;
    GumboTag t = e->tag;
    if (in_list(dropped_tags, t) || e->tag_namespace != GUMBO_NAMESPACE_HTML) return;
    if (!in_list(allowed_tags, t)) {            /* html, body, form, unknown: unwrap */
        if (is_block(t)) text_nl(c);
        h_children(c, &e->children, depth);
        return;
    }
    if (t == GUMBO_TAG_IMG) {
        const GumboAttribute *src = gumbo_get_attribute(&e->attributes, "src");
        char sq[32];
        squash(src ? src->value : "", sq, sizeof sq);
        if (!src || strncmp(sq, "cid:", 4)) {   /* remote, data:, javascript: ... never loaded */
            if (src && *src->value) c->remote++;
            return;
        }
    }
    sb_str(&c->out, "<");
    sb_str(&c->out, gumbo_normalized_tagname(t));
    for (unsigned i = 0; i < e->attributes.length; i++) {
        const GumboAttribute *a = e->attributes.data[i];
        const char *name = a->name;
        if (t == GUMBO_TAG_A && !strcasecmp(name, "href")) {
            if (!url_ok(a->value)) continue;
            sb_str(&c->out, " href=\"");
            sb_esc(&c->out, a->value, true);
            sb_str(&c->out, "\"");
            continue;
        }
        if (t == GUMBO_TAG_IMG && !strcasecmp(name, "src")) {
            const char *v = a->value;
            while (isspace((unsigned char)*v)) v++;
            sb_str(&c->out, " data-cid=\"");
            sb_esc(&c->out, v + 4, true);
            sb_str(&c->out, "\"");
            continue;
        }
        if (!strcasecmp(name, "style")) {
            sbuf css = {0};
            filter_css(a->value, &css);
            if (css.n) {
                sb_str(&c->out, " style=\"");
                sb_esc(&c->out, css.s, true);
                sb_str(&c->out, "\"");
            }
            free(css.s);
            continue;
        }
        if (!str_in(allowed_attrs, name)) continue;
        char sq[64];
        squash(a->value, sq, sizeof sq);
        if (strstr(sq, "javascript:") || strstr(sq, "vbscript:") || strstr(sq, "data:")) continue;
        sb_str(&c->out, " ");
        sb_str(&c->out, name);
        sb_str(&c->out, "=\"");
        sb_esc(&c->out, a->value, true);
        sb_str(&c->out, "\"");
    }
    if (t == GUMBO_TAG_A) sb_str(&c->out, " target=\"_blank\" rel=\"noopener noreferrer nofollow\"");
    sb_str(&c->out, ">");
    if (t == GUMBO_TAG_BR || t == GUMBO_TAG_HR || t == GUMBO_TAG_IMG || t == GUMBO_TAG_COL) {
        if (t == GUMBO_TAG_BR || t == GUMBO_TAG_HR) text_nl(c);
        return;
    }
    if (is_block(t)) text_nl(c);
    h_children(c, &e->children, depth);
    if (is_block(t)) text_nl(c);
    sb_str(&c->out, "</");
    sb_str(&c->out, gumbo_normalized_tagname(t));
    sb_str(&c->out, ">");
}

static void h_walk(ctx *c, const GumboNode *n, int depth)
{
    if (depth > HTML_MAX_DEPTH) return;
    switch (n->type) {
    case GUMBO_NODE_DOCUMENT:
        h_children(c, &n->v.document.children, depth);
        break;
    case GUMBO_NODE_ELEMENT:
        h_element(c, n, depth);
        break;
    case GUMBO_NODE_TEXT:
    case GUMBO_NODE_WHITESPACE:
    case GUMBO_NODE_CDATA:
        sb_esc(&c->out, n->v.text.text, false);
        sb_str(&c->text, n->v.text.text);
        break;
    default:                                      /* comments, templates */
        break;
    }
}

char *html_sanitize(const char *html, size_t len, int *remote_images, char **text_out)
{
    if (remote_images) *remote_images = 0;
    if (text_out) *text_out = NULL;
    ctx c = {0};
    size_t tags = 0;
    for (size_t i = 0; i < len; i++) if (html[i] == '<') tags++;
    if (len > HTML_MAX_INPUT || tags > HTML_MAX_TAGS) {
        /* too big or too deeply built to render safely: the text, escaped */
        sb_str(&c.out, "<pre>");
        char *t = strndup(html, len > HTML_MAX_INPUT ? HTML_MAX_INPUT : len);
        if (t) { sb_esc(&c.out, t, false); sb_str(&c.text, t); }
        free(t);
        sb_str(&c.out, "</pre>");
    } else {
        GumboOptions o = kGumboDefaultOptions;
        o.max_errors = 1000;
        GumboOutput *g = gumbo_parse_with_options(&o, html, len);
        if (g) {
            h_walk(&c, g->document, 0);
            gumbo_destroy_output(&o, g);
        }
    }
    if (remote_images) *remote_images = c.remote;
    if (c.out.oom || c.text.oom) { free(c.out.s); free(c.text.s); return NULL; }
    if (!c.out.s) c.out.s = strdup("");
    if (text_out) {
        /* collapse runs of blank lines and trim */
        char *t = c.text.s ? c.text.s : strdup("");
        if (t) {
            char *o = t;
            int nl = 0;
            for (char *i = t; *i; i++) {
                if (*i == '\r') continue;
                if (*i == '\n') { if (++nl > 2) continue; }
                else if (!isspace((unsigned char)*i)) nl = 0;
                *o++ = *i;
            }
            *o = 0;
            while (o > t && isspace((unsigned char)o[-1])) *--o = 0;
            char *s = t;
            while (isspace((unsigned char)*s)) s++;
            memmove(t, s, strlen(s) + 1);
        }
        *text_out = t;
    } else {
        free(c.text.s);
    }
    char *result = c.out.s;       /* the caller owns it */
    // cppcheck-suppress memleak ; c.out.s is returned (result)
    return result;
}
