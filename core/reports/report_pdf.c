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
        else { cp = '?'; p++; while ((*p & 0xC0) == 0x80) p++; }
        out[n++] = (char)(cp >= 0x20 && cp <= 0xFF && (cp < 0x7F || cp >= 0xA0) ? cp : '?');
    }
    out[n] = 0;
}

/* Text at (x, y), cut to width w. */
static void cell(pdf_ctx *c, HPDF_Font f, float size, float x, float y, float w, const char *utf8)
{
    char t[256];
    ansi(utf8, t, sizeof t);
    HPDF_Page_SetFontAndSize(c->page, f, size);
    size_t len = strlen(t);
    while (len > 1 && HPDF_Page_TextWidth(c->page, t) > w - 2) t[--len] = 0;
    HPDF_Page_BeginText(c->page);
    HPDF_Page_TextOut(c->page, x, y, t);
    HPDF_Page_EndText(c->page);
}

/* The Dutch header of a column (the page is for people; CSV, Excel and JSON keep the column
 * names for tools). As the Rapportages page labels them (core/ui/i18n.js, rep.col.*). */
static const char *column_label(const char *col, char *buf, size_t len)
{
    static const struct { const char *col, *label; } labels[] = {
        {"interval_start", "Van"}, {"queue", "Wachtrij"}, {"channel", "Kanaal"}, {"agent", "Agent"},
        {"topic", "Onderwerp"}, {"title", "Naam"}, {"name", "Naam"}, {"offered", "Aangeboden"},
        {"answered", "Beantwoord"}, {"abandoned", "Afgebroken"}, {"quick_drops", "Snel opgehangen"},
        {"transfers", "Doorgezet"}, {"answered_in_sl", "Binnen norm"},
        {"service_level_pct", "Service level %"}, {"asa_s", "Gem. wachttijd"},
        {"longest_wait_s", "Langste wachttijd"}, {"handled", "Afgehandeld"},
        {"aht_s", "Gem. afhandeltijd"}, {"handle_time_s", "Totale afhandeltijd"},
        {"accepted", "Aangenomen"}, {"rejected", "Geweigerd"}, {"missed", "Niet opgenomen"},
        {"talk_time_s", "Gesprekstijd"}, {"wrapup_time_s", "Nawerktijd"}, {"logged_in_s", "Ingelogd"},
        {"ready_s", "Beschikbaar"}, {"not_ready_s", "Niet beschikbaar"}, {"count", "Aantal"},
        {"outbound", "Uitgaand"}, {"outbound_failed", "Uitgaand mislukt"},
    };
    for (size_t i = 0; i < sizeof labels / sizeof *labels; i++)
        if (!strcmp(col, labels[i].col)) return labels[i].label;
    size_t n = strlen(col);
    if (n > 12 && !strncmp(col, "not_ready_", 10) && !strcmp(col + n - 2, "_s")) {
        snprintf(buf, len, "NB %.*s", (int)(n - 12), col + 10);   /* NB: see the note under the title */
        return buf;
    }
    return col;
}

/* A column's header on one line, or over two broken at the space (or underscore) that makes the
 * wider line narrowest; in a narrow column the font shrinks (down to 4.5 pt) before a word is cut. */
static void header_cell(pdf_ctx *c, float x, float y, float w, const char *col)
{
    char t[128], lb[128];
    snprintf(t, sizeof t, "%s", column_label(col, lb, sizeof lb));
    HPDF_Page_SetFontAndSize(c->page, c->bold, 6.5f);
    float room = w - 2;
    if (HPDF_Page_TextWidth(c->page, t) <= room) { cell(c, c->bold, 6.5f, x, y, w, t); return; }
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
    if (!best) { cell(c, c->bold, size, x, y, w, t); return; }
    *best = 0;
    cell(c, c->bold, size, x, y + 7, w, t);
    cell(c, c->bold, size, x, y, w, best + 1);
}

static void header_row(pdf_ctx *c)
{
    c->y -= 7;   /* room for a second line above */
    for (size_t i = 0; i < c->n_cols; i++)
        header_cell(c, c->x[i], c->y, c->w[i], acdm_report_column(c->r, c->cols[i]));
    HPDF_Page_SetLineWidth(c->page, 0.5f);
    HPDF_Page_MoveTo(c->page, MARGIN, c->y - 3);
    HPDF_Page_LineTo(c->page, PAGE_W - MARGIN, c->y - 3);
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
    header_row(c);
    for (size_t row = 0; row < n; row++) {
        if (c->y < MARGIN + LINE) { new_page(c, NULL); header_row(c); }
        for (size_t i = 0; i < c->n_cols; i++) {
            char v[256];
            acdm_report_text(c->r, totals, row, c->cols[i], v, sizeof v);
            if (c->cols[i] == 0 && strlen(v) >= 16) {   /* "2026-11-20T08:00:00+01:00" -> "2026-11-20 08:00" */
                v[10] = ' ';
                v[16] = 0;
            }
            cell(c, c->font, 7, c->x[i], c->y, c->w[i], v);
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
    /* interval_end is the next row's start; outbound_failed is in the CSV, Excel and JSON (the
     * page keeps its figures wide enough to read) */
    for (size_t i = 0; i < nc && c.n_cols < 64; i++)
        if (i != 1 && strcmp(acdm_report_column(r, i), "outbound_failed") &&
            strncmp(acdm_report_column(r, i), "csat_", 5))   /* ratings: on the page, CSV, Excel, JSON */
            cols[c.n_cols++] = i;
    c.cols = cols;
    c.x = xs;
    c.w = ws;
    /* the time, the key and its title get room; the figures share the rest */
    float fixed = 0;
    size_t n_fixed = 0;
    for (size_t i = 0; i < c.n_cols; i++) {
        const char *name = acdm_report_column(r, cols[i]);
        ws[i] = i < 2 ? 70 : (!strcmp(name, "title") || !strcmp(name, "name")) ? 90 : 0;
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
    static const char *const kinds[] = {"per wachtrij", "per kanaal", "per agent", "per onderwerp"};
    int iv = rg->interval_s;
    snprintf(title, sizeof title, "acdm rapport %s, van %s tot %s (%s), interval %s",
             kinds[(unsigned)rg->kind < 4 ? rg->kind : 0], a, z, acdm_report_timezone(r),
             iv == 900 ? "kwartier" : iv == 3600 ? "uur" : iv == 86400 ? "dag" : acdm_report_interval_name(iv));
    HPDF_SetInfoAttr(c.pdf, HPDF_INFO_TITLE, title);
    HPDF_SetInfoAttr(c.pdf, HPDF_INFO_CREATOR, "acdm");
    new_page(&c, title);
    if (rg->kind != ACDM_REPORT_TOPICS) {
        cell(&c, c.font, 7, MARGIN, c.y + 8, PAGE_W - 2 * MARGIN, rg->kind == ACDM_REPORT_AGENTS
             ? "Tijden in seconden; NB = niet beschikbaar, per reden" : "Tijden in seconden");
        c.y -= 4;
    }
    table(&c, true, "Totaal");
    table(&c, false, "Per interval");
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
