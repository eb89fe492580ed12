"""The systemd readiness protocol (Type=notify, docs/operations.md "Debian package and service"):
acdmd started with $NOTIFY_SOCKET naming a datagram socket this test owns says READY=1 only when
/api/v1/health already answers, pings WATCHDOG=1 at half of $WATCHDOG_USEC from its loop, wraps
a SIGHUP reload in RELOADING=1 ... READY=1 (the new config is live by then) and says STOPPING=1
on SIGTERM."""
import copy
import os
import re
import signal
import socket
import time

from acdmtest import START_TIMEOUT, AcdmTestCase, base_config, http_request


class Notify(AcdmTestCase):
    def setUp(self):
        super().setUp()
        self.sock_path = os.path.join(self.tmp, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.sockets.append(self.sock)
        self.cfg = base_config(self.empty_plugin_dir())

    def recv(self, timeout):
        """The next datagram as a dict of its KEY=VALUE lines, or None after timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        return dict(line.split("=", 1) for line in data.split("\n") if "=" in line)

    def recv_until(self, key, timeout, skip=("WATCHDOG",)):
        """Datagrams until one carries key; the others seen on the way (besides skip) returned too."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            m = self.recv(max(0.01, deadline - time.monotonic()))
            if m is None:
                break
            if key in m:
                return m, seen
            if not any(k in m for k in skip):
                seen.append(m)
        self.fail("no %s= within %.0f s (seen: %r)" % (key, timeout, seen))

    def start(self, **env):
        d = self.daemon(self.cfg, start=False)
        d.env = dict(NOTIFY_SOCKET=self.sock_path, **env)
        d.start(expect_ok=False)
        ready, before = self.recv_until("READY", START_TIMEOUT)
        self.assertEqual(ready["READY"], "1", ready)
        self.assertEqual(before, [], "datagrams before READY=1")
        # the moment READY=1 arrives, the listener is up and health answers on the first try
        m = re.search(r"listening on http://[0-9.]+:(\d+)/", d.stderr())
        self.assertIsNotNone(m, "READY=1 before the 'listening on' log line:\n" + d.stderr_tail())
        d.port = int(m.group(1))
        r = http_request(d.host, d.port, "GET", "/api/v1/health", timeout=10)
        self.assertEqual(r.status, 200, r)
        with open(os.path.join(d.data_dir, "admin.token")) as f:
            d.admin_token = f.read().strip()
        return d

    def test_ready_only_when_health_answers_then_stopping(self):
        d = self.start()
        # no WatchdogSec= asked: no pings
        self.assertIsNone(self.recv(1.0), "a datagram without WATCHDOG_USEC")
        d.proc.send_signal(signal.SIGTERM)
        stop, _ = self.recv_until("STOPPING", 15)
        self.assertEqual(stop["STOPPING"], "1")
        d.stop()

    def test_watchdog_pings_from_the_loop(self):
        self.start(WATCHDOG_USEC="400000")
        t0 = time.monotonic()
        pings = []
        while len(pings) < 4 and time.monotonic() - t0 < 20:
            m = self.recv(5)
            self.assertIsNotNone(m, "no WATCHDOG=1 within 5 s")
            if m.get("WATCHDOG") == "1":
                pings.append(time.monotonic())
        self.assertEqual(len(pings), 4, pings)
        # half of 400 ms each; a loaded box may be late, but never four at once
        self.assertGreater(pings[-1] - pings[0], 0.3, pings)

    def test_watchdog_for_another_pid_is_not_ours(self):
        self.start(WATCHDOG_USEC="200000", WATCHDOG_PID="1")
        self.assertIsNone(self.recv(1.0), "WATCHDOG=1 although WATCHDOG_PID names another process")

    def test_reload_is_wrapped_in_reloading_and_ready(self):
        d = self.start()
        good = copy.deepcopy(self.cfg)
        good["queues"].append({"name": "extra", "title": "Extra wachtrij", "strategy": "round-robin"})
        d.write_config(good)
        d.proc.send_signal(signal.SIGHUP)
        rel, _ = self.recv_until("RELOADING", 15)
        self.assertEqual(rel["RELOADING"], "1")
        self.assertRegex(rel.get("MONOTONIC_USEC", ""), r"^\d+$", rel)
        ready, _ = self.recv_until("READY", 15)
        self.assertEqual(ready["READY"], "1")
        # systemctl reload returns at READY=1: the new queue is there at once
        names = [q["name"] for q in d.get_json("/api/v1/queues")["queues"]]
        self.assertIn("extra", names)
        # a refused config: still READY again (the old config runs), the status says so
        bad = copy.deepcopy(good)
        bad["queues"][0]["strategy"] = "fastest"
        d.write_config(bad)
        d.proc.send_signal(signal.SIGHUP)
        self.recv_until("RELOADING", 15)
        ready, _ = self.recv_until("READY", 15)
        self.assertIn("refused", ready.get("STATUS", ""), ready)
        self.assertEqual(http_request(d.host, d.port, "GET", "/api/v1/health").status, 200)
