/* report_pdf.c -- a report as PDF (libharu): A4 landscape, the totals over the range first,
 * then the figures per interval, the column header repeated on every page. */
#include "reports/report_int.h"

#include <hpdf.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PAGE_W 842.0f
#define PAGE_H 595.0f
#define MARGIN 28.0f
#define LINE 11.0f

typedef struct {
    acdm_report *r;
    HPDF_Doc pdf;
    HPDF_Font font, bold;
    HPDF_Page page;
    float y, *x, *w;
    bool *right;               /* a column of figures: right-aligned, as on the page */
    size_t *cols, n_cols;      /* the columns shown (interval_end is left out: the next row's start) */
    int page_no;
    jmp_buf fail;
    char err[160];
} pdf_ctx;

static void on_error(HPDF_STATUS code, HPDF_STATUS detail, void *user)
{
    pdf_ctx *c = user;
    snprintf(c->err, sizeof c->err, "pdf: libharu error 0x%04X (%u)", (unsigned)code, (unsigned)detail);
    longjmp(c->fail, 1);
}

/* UTF-8 to WinAnsi (the standard fonts' encoding): Latin-1 as is, anything else '?'. */
static void ansi(const char *s, char *out, size_t len)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && n + 1 < len) {
        unsigned cp;
        if (*p < 0x80) cp = *p++;
        else if ((*p & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80) { cp = ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu); p += 2; }
        else if (p[0] == 0xE2 && p[1] == 0x80 && p[2] == 0x93) { cp = 0x96; p += 3; }   /* en dash: WinAnsi 0x96 */
        else { cp = '?'; p++; while ((*p & 0xC0) == 0x80) p++; }
        out[n++] = (char)(cp == 0x96 || (cp >= 0x20 && cp <= 0xFF && (cp < 0x7F || cp >= 0xA0)) ? cp : '?');
    }
    out[n] = 0;
}

/* Text at (x, y), cut to width w; right: against the cell's right edge (figures, as the page). */
static void cell_al(pdf_ctx *c, HPDF_Font f, float size, float x, float y, float w, const char *utf8, bool right)
{
    char t[256];
    ansi(utf8, t, sizeof t);
    HPDF_Page_SetFontAndSize(c->page, f, size);
    size_t len = strlen(t);
    while (len > 1 && HPDF_Page_TextWidth(c->page, t) > w - 2) t[--len] = 0;
    float tx = right ? x + w - 3 - HPDF_Page_TextWidth(c->page, t) : x;
    HPDF_Page_BeginText(c->page);
    HPDF_Page_TextOut(c->page, tx, y, t);
    HPDF_Page_EndText(c->page);
}

static void cell(pdf_ctx *c, HPDF_Font f, float size, float x, float y, float w, const char *utf8)
{
    cell_al(c, f, size, x, y, w, utf8, false);
}

/* A column's header on one line, or over two broken at the space (or underscore) that makes the
 * wider line narrowest; in a narrow column the font shrinks (down to 4.5 pt) before a word is cut. */
static void header_cell(pdf_ctx *c, float x, float y, float w, size_t col, bool right)
{
    char t[128], lb[128];
    snprintf(t, sizeof t, "%s", acdm_report_label(c->r, col, lb, sizeof lb));
    HPDF_Page_SetFontAndSize(c->page, c->bold, 6.5f);
    float room = w - 4;
    if (HPDF_Page_TextWidth(c->page, t) <= room) { cell_al(c, c->bold, 6.5f, x, y, w, t, right); return; }
    char *best = NULL;
    float best_w = 0;
    for (char *p = t; *p; p++) {
        if (*p != ' ' && *p != '_') continue;
        char was = *p;
        *p = 0;
        float a = HPDF_Page_TextWidth(c->page, t), b = HPDF_Page_TextWidth(c->page, p + 1);
        *p = was;
        float wider = a > b ? a : b;
        if (!best || wider < best_w) { best = p; best_w = wider; }
    }
    if (!best) best_w = HPDF_Page_TextWidth(c->page, t);
    float size = best_w > room ? 6.5f * room / best_w : 6.5f;
    if (size < 4.5f) size = 4.5f;
    if (!best) { cell_al(c, c->bold, size, x, y, w, t, right); return; }
    *best = 0;
    cell_al(c, c->bold, size, x, y + 7, w, t, right);
    cell_al(c, c->bold, size, x, y, w, best + 1, right);
}

/* totals: without the interval's start (the totals cover the whole period: no "Van") */
static void header_row(pdf_ctx *c, bool totals)
{
    c->y -= 7;   /* room for a second line above */
    float off = totals ? c->w[0] : 0;
    for (size_t i = totals ? 1 : 0; i < c->n_cols; i++)
        header_cell(c, c->x[i] - off, c->y, c->w[i], c->cols[i], c->right[i]);
    HPDF_Page_SetLineWidth(c->page, 0.5f);
    HPDF_Page_MoveTo(c->page, MARGIN, c->y - 3);
    HPDF_Page_LineTo(c->page, PAGE_W - MARGIN - off, c->y - 3);
    HPDF_Page_Stroke(c->page);
    c->y -= LINE + 2;
}

static void new_page(pdf_ctx *c, const char *title)
{
    c->page = HPDF_AddPage(c->pdf);
    HPDF_Page_SetSize(c->page, HPDF_PAGE_SIZE_A4, HPDF_PAGE_LANDSCAPE);
    c->page_no++;
    char foot[32];
    snprintf(foot, sizeof foot, "%d", c->page_no);
    cell(c, c->font, 7, PAGE_W - MARGIN - 20, MARGIN - 14, 20, foot);
    c->y = PAGE_H - MARGIN;
    if (title) { cell(c, c->bold, 12, MARGIN, c->y - 10, PAGE_W - 2 * MARGIN, title); c->y -= 28; }
}

static void table(pdf_ctx *c, bool totals, const char *heading)
{
    size_t n = acdm_report_n_rows(c->r, totals);
    if (c->y < MARGIN + 4 * LINE) new_page(c, NULL);
    cell(c, c->bold, 10, MARGIN, c->y, PAGE_W - 2 * MARGIN, heading);
    c->y -= LINE + 6;
    header_row(c, totals);
    float off = totals ? c->w[0] : 0;
    for (size_t row = 0; row < n; row++) {
        if (c->y < MARGIN + LINE) { new_page(c, NULL); header_row(c, totals); }
        for (size_t i = totals ? 1 : 0; i < c->n_cols; i++) {
            char v[256];
            bool fig = acdm_report_display(c->r, totals, row, c->cols[i], true, v, sizeof v);
            cell_al(c, c->font, 7, c->x[i] - off, c->y, c->w[i], v, fig);
        }
        c->y -= LINE;
    }
    c->y -= LINE;
}

int acdm_report_pdf(acdm_report *r, acdm_sbuf *out, char *err, size_t errlen)
{
    pdf_ctx c;
    memset(&c, 0, sizeof c);
    c.r = r;
    size_t nc = acdm_report_n_columns(r);
    float xs[64], ws[64];
    size_t cols[64];
    bool right[64];
    /* interval_end is the next row's start; outbound_failed is in the CSV, Excel and JSON (the
     * page keeps its figures wide enough to read) */
    for (size_t i = 0; i < nc && c.n_cols < 64; i++)
        if (i != 1 && strcmp(acdm_report_column(r, i), "outbound_failed") &&
            strncmp(acdm_report_column(r, i), "csat_", 5))   /* ratings: on the page, CSV, Excel, JSON */
            cols[c.n_cols++] = i;
    c.cols = cols;
    c.right = right;
    for (size_t i = 0; i < c.n_cols; i++) {
        const char *name = acdm_report_column(r, cols[i]);
        right[i] = cols[i] > 2 && strcmp(name, "title") && strcmp(name, "name");
    }
    c.x = xs;
    c.w = ws;
    /* the time, the key and its title get room; the figures share the rest */
    float fixed = 0;
    size_t n_fixed = 0;
    for (size_t i = 0; i < c.n_cols; i++) {
        const char *name = acdm_report_column(r, cols[i]);
        ws[i] = i < 2 ? 62 : (!strcmp(name, "title") || !strcmp(name, "name")) ? 80 : 0;
        if (ws[i] > 0) { fixed += ws[i]; n_fixed++; }
    }
    float each = c.n_cols > n_fixed ? (PAGE_W - 2 * MARGIN - fixed) / (float)(c.n_cols - n_fixed) : 0;
    float x = MARGIN;
    for (size_t i = 0; i < c.n_cols; i++) {
        if (ws[i] <= 0) ws[i] = each;
        xs[i] = x;
        x += ws[i];
    }
    c.pdf = HPDF_New(on_error, &c);
    if (!c.pdf) { snprintf(err, errlen, "pdf: out of memory"); return ACDM_ENOMEM; }
    if (setjmp(c.fail)) {
        HPDF_Free(c.pdf);
        snprintf(err, errlen, "%s", c.err);
        return ACDM_EIO;
    }
    c.font = HPDF_GetFont(c.pdf, "Helvetica", "WinAnsiEncoding");
    c.bold = HPDF_GetFont(c.pdf, "Helvetica-Bold", "WinAnsiEncoding");
    const acdm_report_range *rg = acdm_report_range_of(r);
    char title[256], a[48], z[48];
    time_t t0 = (time_t)(rg->from_ms / 1000), t1 = (time_t)(rg->until_ms / 1000);
    struct tm tm0, tm1;
    localtime_r(&t0, &tm0);
    localtime_r(&t1, &tm1);
    strftime(a, sizeof a, "%Y-%m-%d %H:%M", &tm0);
    strftime(z, sizeof z, "%Y-%m-%d %H:%M", &tm1);
    char probe[8];
    acdm_report_label(r, 0, probe, sizeof probe);
    bool en = !strcmp(probe, "From");   /* set to English (acdm_report_set_display) */
    static const char *const kinds[] = {"per wachtrij", "per kanaal", "per agent", "per onderwerp"};
    static const char *const kinds_en[] = {"per queue", "per channel", "per agent", "per topic"};
    int iv = rg->interval_s;
    unsigned k = (unsigned)rg->kind < 4 ? (unsigned)rg->kind : 0;
    if (en)
        snprintf(title, sizeof title, "acdm report %s, from %s to %s (%s), interval %s", kinds_en[k], a, z,
                 acdm_report_timezone(r), iv == 900 ? "quarter" : iv == 3600 ? "hour" : iv == 86400 ? "day" : acdm_report_interval_name(iv));
    else
        snprintf(title, sizeof title, "acdm rapport %s, van %s tot %s (%s), interval %s", kinds[k], a, z,
                 acdm_report_timezone(r), iv == 900 ? "kwartier" : iv == 3600 ? "uur" : iv == 86400 ? "dag" : acdm_report_interval_name(iv));
    HPDF_SetInfoAttr(c.pdf, HPDF_INFO_TITLE, title);
    HPDF_SetInfoAttr(c.pdf, HPDF_INFO_CREATOR, "acdm");
    new_page(&c, title);
    if (rg->kind != ACDM_REPORT_TOPICS) {
        cell(&c, c.font, 7, MARGIN, c.y + 8, PAGE_W - 2 * MARGIN, en ? "Times as m:ss or h:mm:ss"
             : "Tijden in m:ss of u:mm:ss");
        c.y -= 4;
    }
    table(&c, true, en ? "Totals" : "Totaal");
    table(&c, false, en ? "Per interval" : "Per interval");
    HPDF_SaveToStream(c.pdf);
    HPDF_UINT32 size = HPDF_GetStreamSize(c.pdf);
    HPDF_ResetStream(c.pdf);
    char buf[65536];
    for (HPDF_UINT32 done = 0; done < size;) {
        HPDF_UINT32 n = sizeof buf;
        HPDF_STATUS st = HPDF_ReadFromStream(c.pdf, (HPDF_BYTE *)buf, &n);
        if (n) acdm_sb_add(out, buf, n);
        done += n;
        if (st == HPDF_STREAM_EOF || !n) break;
    }
    HPDF_Free(c.pdf);
    if (out->oom) { snprintf(err, errlen, "out of memory"); return ACDM_ENOMEM; }
    return 0;
}
