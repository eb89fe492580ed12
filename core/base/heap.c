/* heap.c -- indexed binary min-heap (see heap.h). */
#include "base/heap.h"
#include "base/acdm.h"

#include <stdlib.h>

#define IDX(h, it) (*(int32_t *)((char *)(it) + (h)->idx_off))

void acdm_heap_init(acdm_heap *h, size_t idx_off, acdm_heap_less less, const void *ctx)
{
    h->items = NULL;
    h->n = h->cap = 0;
    h->idx_off = idx_off;
    h->less = less;
    h->ctx = ctx;
}

void acdm_heap_free(acdm_heap *h)
{
    for (uint32_t i = 0; i < h->n; i++) IDX(h, h->items[i]) = -1;
    free(h->items);
    h->items = NULL;
    h->n = h->cap = 0;
}

static void set(acdm_heap *h, uint32_t i, void *it)
{
    h->items[i] = it;
    IDX(h, it) = (int32_t)i;
}

static void sift_up(acdm_heap *h, uint32_t i)
{
    void *it = h->items[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!h->less(it, h->items[p], h->ctx)) break;
        set(h, i, h->items[p]);
        i = p;
    }
    set(h, i, it);
}

static void sift_down(acdm_heap *h, uint32_t i)
{
    void *it = h->items[i];
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        void *best = it;
        if (l < h->n && h->less(h->items[l], best, h->ctx)) { m = l; best = h->items[l]; }
        if (r < h->n && h->less(h->items[r], best, h->ctx)) { m = r; }
        if (m == i) break;
        set(h, i, h->items[m]);
        i = m;
    }
    set(h, i, it);
}

int acdm_heap_push(acdm_heap *h, void *item)
{
    if (h->n == h->cap) {
        uint32_t nc = h->cap ? h->cap * 2 : 8;
        void **ni = realloc(h->items, nc * sizeof *ni);
        if (!ni) return ACDM_ENOMEM;
        h->items = ni;
        h->cap = nc;
    }
    set(h, h->n, item);
    h->n++;
    sift_up(h, h->n - 1);
    return 0;
}

void acdm_heap_remove(acdm_heap *h, void *item)
{
    int32_t i = IDX(h, item);
    if (i < 0 || (uint32_t)i >= h->n || h->items[i] != item) return;
    IDX(h, item) = -1;
    h->n--;
    if ((uint32_t)i == h->n) return;
    void *moved = h->items[h->n];
    set(h, (uint32_t)i, moved);
    sift_up(h, (uint32_t)i);
    sift_down(h, (uint32_t)IDX(h, moved));
}

void acdm_heap_update(acdm_heap *h, void *item)
{
    int32_t i = IDX(h, item);
    if (i < 0) return;
    sift_up(h, (uint32_t)i);
    sift_down(h, (uint32_t)IDX(h, item));
}

void *acdm_heap_pop(acdm_heap *h)
{
    void *top = acdm_heap_peek(h);
    if (top) acdm_heap_remove(h, top);
    return top;
}

void acdm_heap_rebuild(acdm_heap *h)
{
    for (uint32_t i = h->n / 2; i-- > 0;) sift_down(h, i);
}

/* frontier of heap positions for acdm_heap_find, itself a small min-heap */
typedef struct {
    const acdm_heap *h;
    uint32_t *a, n, cap;
    uint32_t inline_buf[64];
} frontier;

static bool fr_less(const frontier *f, uint32_t x, uint32_t y)
{
    return f->h->less(f->h->items[f->a[x]], f->h->items[f->a[y]], f->h->ctx);
}

static void fr_swap(frontier *f, uint32_t x, uint32_t y)
{
    uint32_t t = f->a[x];
    f->a[x] = f->a[y];
    f->a[y] = t;
}

static int fr_push(frontier *f, uint32_t pos)
{
    if (pos >= f->h->n) return 0;
    if (f->n == f->cap) {
        uint32_t *na = malloc(2 * (size_t)f->cap * sizeof *na);
        if (!na) return ACDM_ENOMEM;
        for (uint32_t i = 0; i < f->n; i++) na[i] = f->a[i];
        if (f->a != f->inline_buf) free(f->a);
        f->a = na;
        f->cap *= 2;
    }
    uint32_t c = f->n++;
    f->a[c] = pos;
    while (c > 0 && fr_less(f, c, (c - 1) / 2)) { fr_swap(f, c, (c - 1) / 2); c = (c - 1) / 2; }
    return 0;
}

static uint32_t fr_pop(frontier *f)
{
    uint32_t top = f->a[0];
    f->a[0] = f->a[--f->n];
    for (uint32_t c = 0;;) {
        uint32_t l = 2 * c + 1, r = l + 1, m = c;
        if (l < f->n && fr_less(f, l, m)) m = l;
        if (r < f->n && fr_less(f, r, m)) m = r;
        if (m == c) break;
        fr_swap(f, c, m);
        c = m;
    }
    return top;
}

void *acdm_heap_find(const acdm_heap *h, bool (*pred)(const void *item, const void *arg),
                     const void *arg)
{
    if (!h->n) return NULL;
    if (pred(h->items[0], arg)) return h->items[0];
    frontier f = {.h = h, .n = 0, .cap = 64};
    f.a = f.inline_buf;
    void *found = NULL;
    if (fr_push(&f, 1) || fr_push(&f, 2)) goto out;
    while (f.n) {
        uint32_t pos = fr_pop(&f);
        if (pred(h->items[pos], arg)) { found = h->items[pos]; break; }
        if (fr_push(&f, 2 * pos + 1) || fr_push(&f, 2 * pos + 2)) break;
    }
out:
    if (f.a != f.inline_buf) free(f.a);
    return found;
}
