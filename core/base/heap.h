/* heap.h -- an indexed binary min-heap of pointers: O(log n) push/remove/update, O(1) peek.
 * Each item keeps its own position (an int32_t at idx_off inside the item, -1 when absent),
 * so an item can be removed or re-keyed without a search. */
#ifndef ACDM_HEAP_H
#define ACDM_HEAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef bool (*acdm_heap_less)(const void *a, const void *b, const void *ctx);

typedef struct {
    void **items;
    uint32_t n, cap;
    size_t idx_off;          /* offset of the int32_t position inside an item */
    acdm_heap_less less;
    const void *ctx;         /* passed to less */
} acdm_heap;

void acdm_heap_init(acdm_heap *h, size_t idx_off, acdm_heap_less less, const void *ctx);
void acdm_heap_free(acdm_heap *h);  /* frees the array, not the items */
int acdm_heap_push(acdm_heap *h, void *item);          /* 0 or ACDM_ENOMEM */
void acdm_heap_remove(acdm_heap *h, void *item);       /* no-op if absent */
void acdm_heap_update(acdm_heap *h, void *item);       /* after the item's key changed */
void *acdm_heap_pop(acdm_heap *h);
static inline void *acdm_heap_peek(const acdm_heap *h) { return h->n ? h->items[0] : NULL; }
static inline bool acdm_heap_contains(const acdm_heap *h, const void *item)
{
    return *(const int32_t *)((const char *)item + h->idx_off) >= 0;
}
/* Re-orders everything (after the comparator itself changed). */
void acdm_heap_rebuild(acdm_heap *h);
/* The smallest item for which pred(item, arg) holds, visiting items in heap order
 * best-first (cheap when the best items qualify); NULL if none. */
void *acdm_heap_find(const acdm_heap *h, bool (*pred)(const void *item, const void *arg),
                     const void *arg);

#endif
