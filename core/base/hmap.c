/* hmap.c -- open-addressing string hash map with linear probing (see hmap.h). */
#include "base/hmap.h"
#include "base/acdm.h"

#include <stdlib.h>
#include <string.h>

#define DELETED ((const char *)1)

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    while (*s) { h ^= (unsigned char)*s++; h *= 16777619u; }
    /* finalizer (murmur3 fmix32): ids differ in their last characters, and linear probing
     * needs the low bits well mixed */
    h ^= h >> 16; h *= 0x85ebca6bu; h ^= h >> 13; h *= 0xc2b2ae35u; h ^= h >> 16;
    return h ? h : 1;
}

void acdm_hmap_init(acdm_hmap *m) { memset(m, 0, sizeof *m); }

void acdm_hmap_free(acdm_hmap *m) { free(m->e); memset(m, 0, sizeof *m); }

static acdm_hmap_entry *lookup(const acdm_hmap *m, const char *key, uint32_t h)
{
    if (!m->cap) return NULL;
    for (uint32_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        acdm_hmap_entry *e = &m->e[i];
        if (!e->key) return NULL;
        if (e->key != DELETED && e->hash == h && !strcmp(e->key, key)) return e;
    }
}

void *acdm_hmap_get(const acdm_hmap *m, const char *key)
{
    acdm_hmap_entry *e = lookup(m, key, hash_str(key));
    return e ? e->val : NULL;
}

static int grow(acdm_hmap *m)
{
    uint32_t nc = m->cap ? m->cap : 16;
    while (m->n * 10 >= nc * 3) nc *= 2;  /* after growth: load <= 0.3 */
    acdm_hmap_entry *ne = calloc(nc, sizeof *ne);
    if (!ne) return ACDM_ENOMEM;
    for (uint32_t i = 0; i < m->cap; i++) {
        acdm_hmap_entry *e = &m->e[i];
        if (!e->key || e->key == DELETED) continue;
        uint32_t j = e->hash & (nc - 1);
        while (ne[j].key) j = (j + 1) & (nc - 1);
        ne[j] = *e;
    }
    free(m->e);
    m->e = ne;
    m->cap = nc;
    m->used = m->n;
    return 0;
}

/* One probe sequence: finds key, or the slot to put it in. */
static int upsert(acdm_hmap *m, const char *key, void *val, int replace)
{
    if ((m->used + 1) * 5 > m->cap * 3 && grow(m)) return ACDM_ENOMEM; /* load <= 0.6 */
    uint32_t h = hash_str(key);
    acdm_hmap_entry *slot = NULL;
    for (uint32_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        acdm_hmap_entry *e = &m->e[i];
        if (!e->key) { if (!slot) slot = e; break; }
        if (e->key == DELETED) { if (!slot) slot = e; continue; }
        if (e->hash == h && !strcmp(e->key, key)) {
            if (!replace) return ACDM_EEXIST;
            e->key = key;
            e->val = val;
            return 0;
        }
    }
    if (!slot->key) m->used++;
    *slot = (acdm_hmap_entry){key, val, h};
    m->n++;
    return 0;
}

int acdm_hmap_put(acdm_hmap *m, const char *key, void *val) { return upsert(m, key, val, 1); }

int acdm_hmap_insert(acdm_hmap *m, const char *key, void *val) { return upsert(m, key, val, 0); }

void *acdm_hmap_del(acdm_hmap *m, const char *key)
{
    acdm_hmap_entry *e = lookup(m, key, hash_str(key));
    if (!e) return NULL;
    void *v = e->val;
    e->key = DELETED;
    e->val = NULL;
    m->n--;
    return v;
}

int acdm_hmap_next(const acdm_hmap *m, uint32_t *pos, const char **key, void **val)
{
    for (; *pos < m->cap; (*pos)++) {
        const acdm_hmap_entry *e = &m->e[*pos];
        if (e->key && e->key != DELETED) {
            if (key) *key = e->key;
            if (val) *val = e->val;
            (*pos)++;
            return 1;
        }
    }
    return 0;
}
