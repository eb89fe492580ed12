/* test_erlang.c -- Erlang C against known table values: the probability of waiting (C(2, 1) =
 * 1/3, C(3, 2) = 4/9, C(14, 10) = 0.1741), the classic staffing example (100 calls in half an
 * hour, 3 minutes handling, 80 % in 20 s: 14 agents, 88.8 %), stability for a large centre
 * (a = 400 Erlangs stays within [0, 1] and needs a little over 400 agents) and the edges. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "reports/erlang.h"

START_TEST(table_values)
{
    ck_assert_double_eq_tol(acdm_erlang_c(2, 1.0), 1.0 / 3.0, 1e-12);
    ck_assert_double_eq_tol(acdm_erlang_c(3, 2.0), 4.0 / 9.0, 1e-12);
    ck_assert_double_eq_tol(acdm_erlang_c(14, 10.0), 0.174132, 1e-6);
    ck_assert_double_eq_tol(acdm_erlang_c(13, 10.0), 0.285270, 1e-6);
    ck_assert_int_eq(acdm_erlang_agents(100.0 / 1800.0, 180, 0.8, 20, 1000), 14);
    ck_assert_double_eq_tol(acdm_erlang_sl(14, 10.0, 180, 20), 0.888350, 1e-6);
    ck_assert_double_lt(acdm_erlang_sl(13, 10.0, 180, 20), 0.8);
    ck_assert_int_eq(acdm_erlang_agents(5.0 / 240.0, 240, 0.8, 20, 1000), 8);   /* 5 Erlangs */
}
END_TEST

START_TEST(large_and_edges)
{
    double c = acdm_erlang_c(420, 400.0);
    ck_assert(c > 0 && c < 1);
    int n = acdm_erlang_agents(400.0 / 300.0, 300, 0.8, 20, 2000);
    ck_assert_int_gt(n, 400);
    ck_assert_int_lt(n, 440);
    ck_assert_double_ge(acdm_erlang_sl(n, 400.0, 300, 20), 0.8);
    ck_assert_double_lt(acdm_erlang_sl(n - 1, 400.0, 300, 20), 0.8);
    ck_assert_double_eq(acdm_erlang_c(10, 10.0), 1.0);      /* as many agents as Erlangs: the queue grows */
    ck_assert_int_eq(acdm_erlang_agents(0, 180, 0.8, 20, 100), 0);      /* nothing arrives */
    ck_assert_int_eq(acdm_erlang_agents(0.1, 0, 0.8, 20, 100), -1);     /* no handling time known */
    ck_assert_int_eq(acdm_erlang_agents(10, 180, 0.8, 20, 100), -1);    /* 1800 Erlangs: more than 100 */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("erlang");
    TCase *t = tcase_create("erlang");
    tcase_add_test(t, table_values);
    tcase_add_test(t, large_and_edges);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
