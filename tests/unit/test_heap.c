/* test_heap.c -- the indexed heap and the hash map against simple reference models. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/acdm.h"
#include "base/heap.h"
#include "base/hmap.h"

typedef struct { int key; int32_t idx; } item;

static bool less(const void *a, const void *b, const void *ctx)
{
    (void)ctx;
    return ((const item *)a)->key < ((const item *)b)->key;
}

static bool even(const void *it, const void *arg)
{
    (void)arg;
    return ((const item *)it)->key % 2 == 0;
}

START_TEST(heap_matches_a_sorted_reference)
{
    enum { N = 2000 };
    static item items[N];
    acdm_heap h;
    acdm_heap_init(&h, offsetof(item, idx), less, NULL);
    unsigned r = 7;
    for (int i = 0; i < N; i++) items[i] = (item){.key = 0, .idx = -1};
    for (int round = 0; round < 20000; round++) {
        r = r * 1103515245u + 12345u;
        item *it = &items[(r >> 8) % N];
        int op = (int)((r >> 20) % 3);
        if (op == 0 && !acdm_heap_contains(&h, it)) { it->key = (int)(r >> 4) % 1000; acdm_heap_push(&h, it); }
        else if (op == 1) acdm_heap_remove(&h, it);
        else if (acdm_heap_contains(&h, it)) { it->key = (int)(r >> 3) % 1000; acdm_heap_update(&h, it); }
        /* the top is the minimum of everything in the heap */
        if (h.n) {
            int min = 1 << 30;
            for (int i = 0; i < N; i++) if (items[i].idx >= 0 && items[i].key < min) min = items[i].key;
            ck_assert_int_eq(((item *)acdm_heap_peek(&h))->key, min);
        }
        if (round % 1000 == 0) {
            /* find returns the smallest item that qualifies */
            item *f = acdm_heap_find(&h, even, NULL);
            int best = 1 << 30;
            for (int i = 0; i < N; i++) if (items[i].idx >= 0 && items[i].key % 2 == 0 && items[i].key < best) best = items[i].key;
            if (best == 1 << 30) ck_assert_ptr_null(f);
            else ck_assert_int_eq(f->key, best);
        }
    }
    /* popping gives ascending order */
    int last = -1;
    item *it;
    while ((it = acdm_heap_pop(&h))) { ck_assert_int_ge(it->key, last); last = it->key; ck_assert_int_eq(it->idx, -1); }
    acdm_heap_free(&h);
}
END_TEST

START_TEST(hmap_matches_a_reference)
{
    enum { N = 5000 };
    static char keys[N][24];
    static int present[N];
    acdm_hmap m;
    acdm_hmap_init(&m);
    for (int i = 0; i < N; i++) snprintf(keys[i], sizeof keys[i], "0190d000-%06d", i);
    unsigned r = 3;
    for (int round = 0; round < 100000; round++) {
        r = r * 1103515245u + 12345u;
        int k = (int)((r >> 8) % N);
        switch ((r >> 20) % 3) {
        case 0: ck_assert_int_eq(acdm_hmap_insert(&m, keys[k], &present[k]), present[k] ? ACDM_EEXIST : 0); present[k] = 1; break;
        case 1: ck_assert_ptr_eq(acdm_hmap_del(&m, keys[k]), present[k] ? &present[k] : NULL); present[k] = 0; break;
        default: ck_assert_ptr_eq(acdm_hmap_get(&m, keys[k]), present[k] ? &present[k] : NULL); break;
        }
    }
    uint32_t n = 0, live = 0;
    for (int i = 0; i < N; i++) live += (uint32_t)present[i];
    const char *key;
    void *val;
    for (uint32_t pos = 0; acdm_hmap_next(&m, &pos, &key, &val);) { n++; ck_assert_ptr_eq(acdm_hmap_get(&m, key), val); }
    ck_assert_uint_eq(n, live);
    ck_assert_uint_eq(m.n, live);
    acdm_hmap_free(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("heap");
    TCase *t = tcase_create("structures");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, heap_matches_a_sorted_reference);
    tcase_add_test(t, hmap_matches_a_reference);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
