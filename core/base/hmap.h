/* hmap.h -- open-addressing hash map from C strings to pointers. Keys are NOT copied: they
 * must live as long as their entry (usually a field of the value itself). */
#ifndef ACDM_HMAP_H
#define ACDM_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *key;   /* NULL = empty; (const char *)1 = deleted */
    void *val;
    uint32_t hash;
} acdm_hmap_entry;

typedef struct {
    acdm_hmap_entry *e;
    uint32_t cap, n, used;  /* used counts live + deleted slots */
} acdm_hmap;

void acdm_hmap_init(acdm_hmap *m);
void acdm_hmap_free(acdm_hmap *m);
void *acdm_hmap_get(const acdm_hmap *m, const char *key);
/* Inserts or replaces; 0 or ACDM_ENOMEM. */
int acdm_hmap_put(acdm_hmap *m, const char *key, void *val);
/* Inserts only if the key is absent: 0, ACDM_EEXIST (nothing changed) or ACDM_ENOMEM. */
int acdm_hmap_insert(acdm_hmap *m, const char *key, void *val);
/* Removes and returns the value, or NULL. */
void *acdm_hmap_del(acdm_hmap *m, const char *key);
/* Iteration: for (uint32_t i = 0; acdm_hmap_next(m, &i, &k, &v);) ... (no changes while iterating) */
int acdm_hmap_next(const acdm_hmap *m, uint32_t *pos, const char **key, void **val);

#endif
