/* notify.c -- sd_notify without libsystemd: one datagram per state change to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace), as documented in
 * sd_notify(3) and systemd's "notify" protocol description (stable interface). */
#include "base/notify.h"
#include "base/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_un notify_addr;
static socklen_t notify_len;        /* 0: no manager listens */
static int notify_fd = -1;
static uint64_t watchdog_usec;
static int notify_failed_logged;

void acdm_notify_init(void)
{
    const char *s = getenv("NOTIFY_SOCKET");
    size_t l = s ? strlen(s) : 0;
    if (l >= 2 && l < sizeof notify_addr.sun_path && (s[0] == '/' || s[0] == '@')) {
        memset(&notify_addr, 0, sizeof notify_addr);
        notify_addr.sun_family = AF_UNIX;
        memcpy(notify_addr.sun_path, s, l);
        if (s[0] == '@') notify_addr.sun_path[0] = 0;   /* abstract: no terminating NUL counted */
        notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l + (s[0] == '/'));
        notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (notify_fd < 0) {
            acdm_log(ACDM_LOG_WARN, "core", "NOTIFY_SOCKET %s: socket: %s", s, strerror(errno));
            notify_len = 0;
        }
    } else if (s) {
        acdm_log(ACDM_LOG_WARN, "core", "NOTIFY_SOCKET \"%s\" is neither a path nor @abstract: ignored", s);
    }
    const char *w = getenv("WATCHDOG_USEC"), *p = getenv("WATCHDOG_PID");
    if (w && notify_len) {
        char *end;
        unsigned long long v = strtoull(w, &end, 10);
        bool mine = !p || strtol(p, NULL, 10) == (long)getpid();
        if (*end == 0 && v > 0 && mine) watchdog_usec = v;
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

int acdm_notify(const char *state)
{
    if (!notify_len) return 0;
    ssize_t n;
    do n = sendto(notify_fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&notify_addr, notify_len);
    while (n < 0 && errno == EINTR);
    if (n >= 0) return 0;
    if (!notify_failed_logged++)
        acdm_log(ACDM_LOG_WARN, "core", "sd_notify \"%.20s\": %s (later failures are not logged)", state, strerror(errno));
    return -1;
}

uint64_t acdm_notify_watchdog_usec(void)
{
    return watchdog_usec;
}

uint64_t acdm_notify_monotonic_usec(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}
