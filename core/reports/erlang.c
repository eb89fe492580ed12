/* erlang.c -- Erlang C staffing advice; see erlang.h. */
#include "reports/erlang.h"

#include <math.h>

double acdm_erlang_c(int n, double a)
{
    if (a <= 0) return 0;
    if (n <= 0 || (double)n <= a) return 1;
    double b = 1;   /* Erlang B with 0 agents */
    for (int k = 1; k <= n; k++) b = a * b / ((double)k + a * b);
    return (double)n * b / ((double)n - a * (1 - b));
}

double acdm_erlang_sl(int n, double a, double aht_s, double t_s)
{
    if (a <= 0) return 1;
    if ((double)n <= a || aht_s <= 0) return 0;
    return 1 - acdm_erlang_c(n, a) * exp(-((double)n - a) * t_s / aht_s);
}

int acdm_erlang_agents(double rate_per_s, double aht_s, double target, double t_s, int max_agents)
{
    if (rate_per_s <= 0) return 0;
    if (aht_s <= 0 || !(target > 0 && target < 1) || t_s < 0) return -1;
    double a = rate_per_s * aht_s;
    for (int n = (int)floor(a) + 1; n <= max_agents; n++)
        if (acdm_erlang_sl(n, a, aht_s, t_s) >= target) return n;
    return -1;
}
