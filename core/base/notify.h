/* notify.h -- the service manager's readiness protocol (systemd's sd_notify, $NOTIFY_SOCKET). */
#ifndef ACDM_NOTIFY_H
#define ACDM_NOTIFY_H

#include <stdint.h>

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID once and removes them from the
 * environment (a child a plugin starts must not speak for acdmd). Without $NOTIFY_SOCKET every
 * acdm_notify is a no-op: acdmd started by hand or by a test behaves as before. */
void acdm_notify_init(void);
/* Sends one datagram ("READY=1", "WATCHDOG=1", "RELOADING=1\nMONOTONIC_USEC=...", "STOPPING=1",
 * "STATUS=..."). 0: sent or nobody listens; -1: the send failed (logged once). */
int acdm_notify(const char *state);
/* The watchdog period the manager asked for (WatchdogSec=) in microseconds, 0 when none or when
 * $WATCHDOG_PID names another process. acdmd pings at half of it. */
uint64_t acdm_notify_watchdog_usec(void);
/* CLOCK_MONOTONIC in microseconds, for RELOADING=1's MONOTONIC_USEC. */
uint64_t acdm_notify_monotonic_usec(void);

#endif
