/* erlang.h -- staffing advice by Erlang C: how many agents a queue needs in an interval to
 * answer sl_target of its berichten within sl_seconds, given the arrival rate and the average
 * handling time measured. */
#ifndef ACDM_ERLANG_H
#define ACDM_ERLANG_H

/* The probability that a bericht has to wait (Erlang C) with n agents and a traffic of a
 * Erlangs (arrivals per second x handling time in seconds); 1 when n <= a (the queue grows
 * without bound). Computed through the Erlang B recursion B(k) = a B(k-1) / (k + a B(k-1)),
 * C = n B / (n - a (1 - B)), which stays stable for hundreds of agents. */
double acdm_erlang_c(int n, double a);

/* The service level n agents give: 1 - C(n, a) * exp(-(n - a) * t / aht), 0 when n <= a. */
double acdm_erlang_sl(int n, double a, double aht_s, double t_s);

/* The fewest agents that give at least target (0..1) within t_s seconds at rate arrivals per
 * second and aht_s seconds handling time: 0 when nothing arrives; -1 when the inputs cannot
 * say (aht_s <= 0, target outside (0, 1)) or more than max_agents would be needed. */
int acdm_erlang_agents(double rate_per_s, double aht_s, double target, double t_s, int max_agents);

#endif
