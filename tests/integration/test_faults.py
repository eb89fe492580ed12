"""The fault suite (issue 9): acdmd probed as an attacker and as a failing machine would treat it.

Each test asserts what a user notices: the right answer, and nothing acknowledged lost.
  - kill -9 at random moments during bursts of agent work: every acknowledged pick, reply,
    completion and wrap-up end is in the store after the restart
  - a full disk: writes answer errors (not 200), health says degraded and recovers
  - a damaged store at start: refused (or --salvage), an emptied database refused unless --init
  - duplicates write nothing but the answer
  - hostile requests, slow clients and websocket frames get answers within bounds
Runtime: about two minutes on a busy 2-core machine (ASan build).
"""
import http.client
import json
import os
import random
import socket
import sqlite3
import struct
import subprocess
import threading
import time
import unittest

from acdmtest import AcdmTestCase, WsClient, WsClosed, base_config, wait_until

AGENTS = 4


def agents_config(plugin_dir, n=AGENTS, **top):
    cfg = base_config(plugin_dir, **top)
    cfg["agents"] = [{"id": "agent%d" % i, "name": "Agent %d" % i, "queues": ["algemeen"],
                      "capacity": {"email": 1}} for i in range(1, n + 1)]
    return cfg


def post_many(d, n, prefix, queue="algemeen", threads=8):
    """n berichten posted by parallel clients (201 asserted); their ids in order."""
    ids = [None] * n
    errs = []

    def run(k):
        for i in range(k, n, threads):
            r = d.post_bericht({"queue": queue, "kind": "email", "from": "k%d@example.nl" % i,
                                "subject": "Vraag %d" % i}, key="%s-%d" % (prefix, i))
            if r.status != 201:
                errs.append(r)
            else:
                ids[i] = r.json["id"]
    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errs, errs[:3]
    return ids


class AgentWorker:
    """One agent's websocket: picks waiting berichten and works them (pick, message, complete,
    wrapup_end), recording every action acknowledged by the server."""

    def __init__(self, ws, pool, lock):
        self.ws, self.pool, self.lock = ws, pool, lock
        self.acked = []           # (action, bericht, text)
        self.errors = []
        self.t = threading.Thread(target=self.run, daemon=True)

    def step(self, msg):
        r = self.ws.request(msg, timeout=10)
        if r["type"] == "ack":
            self.acked.append((msg["type"], msg["bericht"], msg.get("text")))
            return True
        self.errors.append(r)
        return False

    def run(self):
        n = 0
        try:
            while True:
                with self.lock:
                    if not self.pool:
                        return
                    bid = self.pool.pop()
                if not self.step({"type": "pick", "bericht": bid}):
                    continue
                for _ in range(3):
                    n += 1
                    self.step({"type": "message", "bericht": bid, "text": "antwoord %s %d" % (bid[-8:], n)})
                if self.step({"type": "complete", "bericht": bid}):
                    self.step({"type": "wrapup_end", "bericht": bid})
        except (OSError, WsClosed, AssertionError, ValueError):
            return                # the daemon was killed


class KillDuringAgentWork(AcdmTestCase):
    def test_kill9_keeps_every_acknowledged_agent_action(self):
        # a long group-commit interval widens the window between an action and its commit:
        # an ack sent before the commit is then lost by nearly every kill
        cfg = agents_config(self.empty_plugin_dir(), group_commit_ms=40)
        d = self.daemon(cfg)
        ids = post_many(d, 240, "aw")
        rnd = random.Random(os.getpid())
        total = {"pick": 0, "message": 0, "complete": 0, "wrapup_end": 0}
        for rounds in range(2):
            pool = list(ids)
            rnd.shuffle(pool)
            lock = threading.Lock()
            workers = []
            for i in range(1, AGENTS + 1):
                ws = self.agent_ws(d, "agent%d" % i, ready=False)   # picks, no offers
                workers.append(AgentWorker(ws, pool, lock))
            for w in workers:
                w.t.start()
            # mid-burst: once some work is acknowledged, at a random moment
            wait_until(lambda: sum(len(w.acked) for w in workers) >= 30, 30, what="agent work acknowledged")
            time.sleep(rnd.uniform(0.0, 1.0))
            d.kill9()
            for w in workers:
                w.t.join(15)
            acked = [a for w in workers for a in w.acked]
            for a in acked:
                total[a[0]] += 1
            d.start()
            lost = []
            for action, bid, text in acked:
                j = d.bericht(bid)
                if action in ("complete", "wrapup_end") and j["state"] not in ("wrapup", "done"):
                    lost.append((action, bid, j["state"]))
                if action == "message" and text not in [
                        m.get("text") for m in d.get_json("/api/v1/berichten/%s/messages" % bid)["messages"]]:
                    lost.append((action, bid, text))
            self.assertEqual(lost, [], "acknowledged agent actions lost by kill -9 (round %d, %d acked)"
                             % (rounds + 1, len(acked)))
            ids = [b for b in ids if d.bericht(b)["state"] == "queued"]
        print("\n  [agent work] acknowledged before the kills: %r" % total, end=" ", flush=True)
        self.assertGreater(total["message"], 10, "too little work acknowledged to test anything")
        self.assertGreater(total["complete"], 3, "too few completions acknowledged to test anything")


if __name__ == "__main__":
    unittest.main()


class FullDisk(AcdmTestCase):
    """The data folder on a small tmpfs the test mounts (needs root), filled up."""

    def mount_small(self, mb):
        d = os.path.join(self.tmp, "small")
        os.makedirs(d)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % mb, "tmpfs", d], capture_output=True, text=True)
        if r.returncode:
            self.skipTest("cannot mount a tmpfs (needs root): %s" % r.stderr.strip())
        self.addCleanup(lambda: subprocess.run(["umount", "-l", d]))
        return d

    @staticmethod
    def fill(path):
        """Fills the file system of path up to the last byte; the filler file's name."""
        filler = os.path.join(path, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (1 << 20, 65536, 512, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError:
                    pass
        finally:
            os.close(fd)
        return filler

    def test_full_disk_answers_errors_and_health_degrades_then_recovers(self):
        small = self.mount_small(8)
        cfg = base_config(self.empty_plugin_dir())
        d = self.daemon(cfg, data_dir=os.path.join(small, "data"))
        sup = d.token("supervisor", "sup1")
        ws = self.agent_ws(d, "agent1", ready=False)
        filler = self.fill(small)
        # write until the store cannot commit any more (the WAL may still have room at first)
        big = "x" * 30000
        status = None
        for i in range(400):
            r = d.post_bericht({"queue": "algemeen", "kind": "email", "from": "vol%d@example.nl" % i,
                                "text": big}, key="full-%d" % i)
            status = r.status
            if r.status != 201:
                break
        self.assertEqual(status, 503, "a bericht that cannot be stored is refused with 503")
        h = d.request("GET", "/api/v1/health", token=None)
        self.assertEqual(h.status, 503, h)
        self.assertEqual(h.json["status"], "degraded", h.json)
        self.assertTrue(any("full" in x for x in h.json["reasons"]), h.json)
        # every write's failure reaches its caller
        r = d.request("POST", "/api/v1/queues/algemeen/close", token=sup)
        self.assertProblem(r, 503, "not be saved")
        r = d.request("POST", "/api/v1/agents/agent2/login", token=sup)
        self.assertProblem(r, 503, "not be saved")
        m = ws.request({"type": "ready"})
        self.assertEqual((m["type"], m.get("code")), ("error", "unsaved"), m)
        # room again: the next commit succeeds and health recovers
        os.unlink(filler)
        r = d.request("POST", "/api/v1/queues/algemeen/open", token=sup)
        self.assertEqual(r.status, 200, r)
        h = d.request("GET", "/api/v1/health", token=None)
        self.assertEqual((h.status, h.json["status"]), (200, "ok"), h.json)
        self.assertGreater(h.json["store"]["failed_commits"], 0)
        r = d.request("POST", "/api/v1/queues/algemeen/close", token=sup)
        self.assertEqual(r.status, 200, r)
        d.stop()
        d.start()
        self.assertFalse(d.queue("algemeen")["open"], "an acknowledged close survives the restart")


class DamagedStore(AcdmTestCase):
    def filled_store(self, n):
        d = self.daemon()
        post_many(d, n, "dmg")
        d.stop()                      # a clean stop checkpoints the WAL into acdm.db
        return d

    def test_garbled_pages_refuse_start_and_salvage_says_what_is_missing(self):
        d = self.filled_store(1500)
        db = os.path.join(d.data_dir, "acdm.db")
        c = sqlite3.connect(db)
        pages = [p for (p,) in c.execute(
            "SELECT pageno FROM dbstat WHERE name = 'berichten' AND pagetype = 'leaf' ORDER BY pageno")]
        psize = c.execute("PRAGMA page_size").fetchone()[0]
        c.close()
        self.assertGreater(len(pages), 40)
        rnd = random.Random(7)
        with open(db, "r+b") as f:
            for p in rnd.sample(pages[len(pages) // 3:], 20):      # 20 garbled table pages
                f.seek((p - 1) * psize)
                f.write(bytes(rnd.getrandbits(8) for _ in range(psize)))
        rc, err = d.start_refused()
        self.assertNotEqual(rc, 0)
        self.assertIn("damaged", err)
        self.assertIn("--salvage", err)
        self.assertNotIn("local file system", err)
        d.extra_args = ["--salvage"]
        d.start()
        h = d.request("GET", "/api/v1/health", token=None)
        self.assertEqual((h.status, h.json["status"]), (503, "degraded"), h.json)
        why = " ".join(h.json["reasons"])
        self.assertIn("--salvage", why)
        self.assertIn("of the 1500 waiting berichten", why)
        self.assertIn("not restored", why)
        waiting = d.queue("algemeen")["waiting"]
        self.assertLess(waiting, 1500)
        self.assertIn("%d of the 1500" % waiting, why)

    def test_empty_or_missing_database_is_refused_unless_init(self):
        d = self.filled_store(3)
        db = os.path.join(d.data_dir, "acdm.db")
        for sfx in ("-wal", "-shm"):
            if os.path.exists(db + sfx):
                os.unlink(db + sfx)
        open(db, "w").close()                             # truncated to zero bytes
        rc, err = d.start_refused()
        self.assertNotEqual(rc, 0)
        self.assertIn("empty (0 bytes)", err)
        self.assertIn("--init", err)
        os.unlink(db)                                     # missing altogether
        rc, err = d.start_refused()
        self.assertNotEqual(rc, 0)
        self.assertIn("missing", err)
        self.assertIn("backup", err)
        d.extra_args = ["--init"]
        d.start()
        self.assertEqual(d.queue("algemeen")["waiting"], 0)
        d.stop()
        d.extra_args = []
        d.start()                                          # the new store is the store now
        self.assertEqual(d.get_json("/api/v1/health", token=None)["status"], "ok")


def db_rows(d, sql, *args):
    """Rows of a read-only query on the running daemon's store (WAL: readers do not block)."""
    c = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.data_dir, "acdm.db"), uri=True, timeout=10)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


class Duplicates(AcdmTestCase):
    def test_duplicate_writes_nothing_but_the_answer(self):
        d = self.daemon()
        body = {"queue": "algemeen", "kind": "email", "from": "dup@example.nl", "text": "Mijn vraag"}
        first = d.post_bericht(body, key="dup-1")
        self.assertEqual(first.status, 201, first)
        for _ in range(3):
            r = d.post_bericht(body, key="dup-1")
            self.assertEqual((r.status, r.json["outcome"], r.json["id"]), (200, "duplicate", first.json["id"]), r)
        # into a closed queue: one bericht, one "closed" event, however often it is redelivered
        sup = d.token("supervisor", "sup1")
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/close", token=sup).status, 200)
        c1 = d.post_bericht(body, key="dup-closed")
        self.assertEqual((c1.status, c1.json["outcome"]), (201, "closed"), c1)
        for _ in range(3):
            r = d.post_bericht(body, key="dup-closed")
            self.assertEqual((r.status, r.json["outcome"], r.json["id"]), (200, "duplicate", c1.json["id"]), r)
        wait_until(lambda: d.get_json("/api/v1/health", token=None)["store"]["queued"] == 0, 5, what="writes committed")
        orphans = db_rows(d, "SELECT bericht, text FROM messages WHERE bericht NOT IN (SELECT id FROM berichten)")
        self.assertEqual(orphans, [], "message rows of duplicates (no such bericht)")
        self.assertEqual(db_rows(d, "SELECT count(*) FROM messages")[0][0], 2)
        closed = db_rows(d, "SELECT bericht FROM events WHERE type = 'closed'")
        self.assertEqual(closed, [(c1.json["id"],)], "one closed event, naming the stored bericht")

    def test_concurrent_redeliveries_store_one_bericht(self):
        d = self.daemon()
        results = []

        def post():
            r = d.post_bericht({"queue": "algemeen", "kind": "sms", "from": "+31611112222", "text": "tegelijk"},
                               key="race-1")
            results.append((r.status, r.json.get("id")))
        ts = [threading.Thread(target=post) for _ in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        self.assertEqual(sorted(s for s, _ in results), [200] * 11 + [201], results)
        self.assertEqual(len({i for _, i in results}), 1, results)
        self.assertEqual(d.queue("algemeen")["waiting"], 1)
        wait_until(lambda: d.get_json("/api/v1/health", token=None)["store"]["queued"] == 0, 5, what="writes committed")
        self.assertEqual(db_rows(d, "SELECT count(*) FROM messages")[0][0], 1)

    def test_pick_race_one_agent_wins(self):
        cfg = agents_config(self.empty_plugin_dir())
        d = self.daemon(cfg)
        bid = d.post_bericht({"queue": "algemeen", "kind": "email", "from": "pick@example.nl"}).json["id"]
        wss = [self.agent_ws(d, "agent%d" % i, ready=False) for i in range(1, AGENTS + 1)]
        replies = [None] * len(wss)

        def pick(i):
            replies[i] = wss[i].request({"type": "pick", "bericht": bid})
        ts = [threading.Thread(target=pick, args=(i,)) for i in range(len(wss))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(20)
        acks = [r for r in replies if r["type"] == "ack"]
        self.assertEqual(len(acks), 1, replies)
        self.assertTrue(all(r["code"] in ("state", "not_found") for r in replies if r["type"] == "error"), replies)
        winner = "agent%d" % (replies.index(acks[0]) + 1)
        self.assertEqual(d.bericht(bid)["agent"], winner)


class PluginRouteLimiter(AcdmTestCase):
    """The failed sign-in limit covers the channels' routes: the webhook's own token check and
    the chatbot handoff's host token check (host->check_token) count per address, and a blocked
    address is refused on /channels/... as on /api/v1."""

    def config(self):
        from acdmtest import PLUGINS
        return base_config(PLUGINS, channels=[
            {"name": "web1", "plugin": "webhook", "queue": "algemeen", "config": {"token": "goed-geheim-token-1"}},
            {"name": "bot", "plugin": "chatbot", "queue": "algemeen", "config": {}}])

    def test_bad_tokens_on_plugin_routes_end_in_429(self):
        d = self.daemon(self.config())
        seen = []
        for i in range(14):
            r = d.request("POST", "/channels/web1/messages", {"from": "+31600000001", "text": "x", "id": "m%d" % i},
                          token="fout-%d" % i)
            seen.append(r.status)
        self.assertEqual(seen[:10], [401] * 10, seen)
        self.assertEqual(seen[-1], 429, seen)
        self.assertIn("retry-after", r.headers)
        # blocked everywhere: the core's routes, another plugin's routes, even with a good token
        self.assertEqual(d.request("GET", "/api/v1/queues").status, 429)
        r = d.request("POST", "/channels/bot/handoff", {"conversation_id": "c1"})
        self.assertEqual(r.status, 429, r)
        r = d.request("POST", "/channels/web1/messages", {"from": "+31600000001", "text": "x", "id": "ok"},
                      token="goed-geheim-token-1")
        self.assertEqual(r.status, 429, r)

    def test_handoff_host_token_check_counts(self):
        d = self.daemon(self.config())
        seen = [d.request("POST", "/channels/bot/handoff", {"conversation_id": "c%d" % i}, token="nep-%d" % i).status
                for i in range(13)]
        self.assertIn(429, seen, seen)
        self.assertEqual(seen[0], 401, seen)
        self.assertEqual(d.request("GET", "/api/v1/queues").status, 429)


class SecurityHeaders(AcdmTestCase):
    PAGES = ["/", "/index.html", "/agent.html", "/supervisor.html", "/reports.html", "/wallboard.html",
             "/agent.js", "/style.css"]

    def test_every_ui_response_carries_them(self):
        d = self.daemon()
        for p in self.PAGES:
            r = d.request("GET", p, token=None)
            self.assertEqual(r.status, 200, (p, r))
            csp = r.headers.get("content-security-policy", "")
            self.assertIn("frame-ancestors 'none'", csp, p)
            self.assertIn("script-src 'self'", csp, p)
            self.assertNotIn("unsafe-inline", csp, p)
            self.assertNotIn("unsafe-eval", csp, p)
            self.assertIn("ws://127.0.0.1:%d" % d.port, csp, p)    # the agents' websocket
            self.assertEqual(r.headers.get("x-frame-options"), "DENY", p)
            self.assertEqual(r.headers.get("referrer-policy"), "no-referrer", p)
            self.assertEqual(r.headers.get("x-content-type-options"), "nosniff", p)

    def test_pages_have_no_inline_script_or_handlers(self):
        import glob
        import re
        from acdmtest import REPO
        for f in glob.glob(os.path.join(REPO, "core", "ui", "*.html")):
            html = open(f, encoding="utf-8").read()
            for m in re.finditer(r"<script\b([^>]*)>(.*?)</script>", html, re.S):
                attrs, body = m.group(1), m.group(2)
                if "application/json" in attrs:
                    continue                      # a data block, not run (CSP allows it)
                self.assertIn("src=", attrs, "%s: inline script" % f)
                self.assertEqual(body.strip(), "", "%s: inline script" % f)
            self.assertIsNone(re.search(r"\son[a-z]+\s*=", html), "%s: inline event handler" % f)
            self.assertIsNone(re.search(r"\sstyle\s*=", html), "%s: inline style (blocked by style-src 'self')" % f)

    def test_oidc_token_endpoint_may_be_called(self):
        cfg = base_config(self.empty_plugin_dir())
        cfg["oidc"] = {"issuer": "https://login.example.nl/tenant/v2.0", "audience": "api://acdm",
                       "jwks_file": os.path.join(self.tmp, "jwks.json"),
                       "role_map": {"Acdm.Agent": "agent"},
                       "authorization_endpoint": "https://login.example.nl/tenant/oauth2/v2.0/authorize",
                       "token_endpoint": "https://login.example.nl/tenant/oauth2/v2.0/token",
                       "client_id": "abc"}
        from test_auth_oidc import genkey, jwk_ec
        with open(os.path.join(self.tmp, "jwks.json"), "w") as f:
            json.dump({"keys": [jwk_ec(genkey(os.path.join(self.tmp, "ec.pem"), ec=True), "ec1")]}, f)
        d = self.daemon(cfg)
        csp = d.request("GET", "/", token=None).headers.get("content-security-policy", "")
        self.assertIn("connect-src 'self' ws://127.0.0.1:%d wss://127.0.0.1:%d https://login.example.nl;" % (d.port, d.port), csp)


def raw_conn(d, source=None, timeout=5):
    s = socket.create_connection((d.host, d.port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    return s


def read_status(s, timeout):
    """The status of the reply on socket s (None if it closed without one)."""
    s.settimeout(timeout)
    buf = b""
    try:
        while b"\r\n" not in buf:
            c = s.recv(4096)
            if not c:
                break
            buf += c
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        return None
    if not buf:
        return None
    return int(buf.split(b" ", 2)[1])


class SlowClients(AcdmTestCase):
    def test_body_is_not_waited_for_without_a_valid_token(self):
        d = self.daemon()
        s = raw_conn(d)
        self.sockets.append(s)
        s.sendall(b"POST /api/v1/berichten HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n{")
        t0 = time.monotonic()
        self.assertEqual(read_status(s, 5), 401)
        self.assertLess(time.monotonic() - t0, 3)
        s2 = raw_conn(d)
        self.sockets.append(s2)
        s2.sendall(b"POST /api/v1/berichten HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nep\r\n"
                   b"Content-Length: 100000\r\n\r\n{")
        self.assertEqual(read_status(s2, 5), 401)

    def test_slow_body_gets_408_within_bounds(self):
        d = self.daemon()
        s = raw_conn(d)
        self.sockets.append(s)
        s.sendall(("POST /api/v1/berichten HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n" % d.admin_token).encode())
        t0 = time.monotonic()
        s.settimeout(0.2)
        status = None
        while time.monotonic() - t0 < 15:
            try:
                s.sendall(b" ")                # a byte every half second: far below the minimum rate
            except OSError:
                break
            try:
                data = s.recv(4096)
                if data:
                    status = int(data.split(b" ", 2)[1])
                break
            except socket.timeout:
                time.sleep(0.3)
        took = time.monotonic() - t0
        self.assertEqual(status, 408)
        self.assertLess(took, 8, "the slow body was cut off after %.1f s" % took)
        self.assertEqual(d.request("GET", "/api/v1/health", token=None).status, 200)

    def test_slow_headers_are_cut_off(self):
        d = self.daemon()
        s = raw_conn(d)
        self.sockets.append(s)
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        closed = False
        s.settimeout(0.5)
        while time.monotonic() - t0 < 25:
            try:
                s.sendall(b"X")                # one header byte at a time, never finishing
                if s.recv(4096) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
        took = time.monotonic() - t0
        self.assertTrue(closed, "a client sending its headers byte by byte was held for %.0f s" % took)
        self.assertLess(took, 16)

    def test_connections_per_address_are_limited(self):
        cfg = base_config(self.empty_plugin_dir(), max_connections_per_address=12)
        d = self.daemon(cfg)

        def sockets_open():
            fds = os.listdir("/proc/%d/fd" % d.proc.pid)
            return sum(1 for f in fds if os.readlink("/proc/%d/fd/%s" % (d.proc.pid, f)).startswith("socket:"))
        # the start's health probe may still be closing on the server side: count once it settled
        base, stable_since = sockets_open(), time.monotonic()
        deadline = stable_since + 5
        while time.monotonic() - stable_since < 0.6 and time.monotonic() < deadline:
            time.sleep(0.1)
            now = sockets_open()
            if now != base:
                base, stable_since = now, time.monotonic()
        held = [raw_conn(d) for _ in range(12)]
        self.sockets.extend(held)
        for s in held:             # each is served (keep-alive: it stays open and counted)
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_status(s, 5), 200)
        extra = raw_conn(d)
        self.sockets.append(extra)
        extra.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIsNone(read_status(extra, 5), "the 13th connection of one address is closed")
        # another address is served meanwhile
        other = raw_conn(d, source="127.0.0.2")
        self.sockets.append(other)
        other.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(read_status(other, 5), 200)
        for s in held:
            s.close()
        wait_until(lambda: d.request("GET", "/api/v1/health", token=None).status == 200, 5,
                   what="the address is served again once its connections closed")

    def test_out_of_descriptors_backs_off_without_spinning(self):
        cfg = base_config(self.empty_plugin_dir(), max_connections_per_address=0)
        d = self.daemon(cfg, start=False)
        d.prefix = ["prlimit", "--nofile=256", "--"]
        d.start()
        held = []
        for _ in range(400):
            try:
                held.append(raw_conn(d, timeout=2))
            except OSError:
                break
        self.sockets.extend(held)
        time.sleep(0.5)
        pid = d.proc.pid

        def cpu():
            with open("/proc/%d/stat" % pid) as f:
                parts = f.read().rsplit(")", 1)[1].split()
            return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
        lines0 = d.stderr().count("\n")
        c0 = cpu()
        time.sleep(3)
        used = cpu() - c0
        lines = d.stderr().count("\n") - lines0
        self.assertLess(used, 1.0, "acdmd used %.2f s of CPU in 3 s with its descriptors exhausted" % used)
        self.assertLess(lines, 100, "%d log lines in 3 s with the descriptors exhausted" % lines)
        for s in held:
            s.close()
        wait_until(lambda: d.request("GET", "/api/v1/health", token=None).status == 200, 10,
                   what="served again once descriptors are free")


class HostileRequests(AcdmTestCase):
    """Bad input gets a clear answer, never a dropped connection or a crash."""

    def raw(self, d, data, timeout=5):
        s = raw_conn(d)
        self.sockets.append(s)
        s.sendall(data)
        return read_status(s, timeout)

    def test_bad_sizes_get_answers(self):
        d = self.daemon()
        self.assertEqual(self.raw(d, b"POST /api/v1/berichten HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), 400)
        self.assertEqual(self.raw(d, b"POST /api/v1/berichten HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n"), 400)
        self.assertEqual(self.raw(d, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n"
                                  b"Referer: " + b"b" * 9000 + b"\r\n\r\n"), 431)
        self.assertEqual(self.raw(d, b"GET /api/v1/health?" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"), 414)
        self.assertEqual(self.raw(d, b"GET /api/v1/queues HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a.b."
                                  + b"c" * 20000 + b"\r\n\r\n"), 401)
        self.assertEqual(d.request("GET", "/api/v1/health", token=None).status, 200)

    def test_text_limits_count_characters(self):
        d = self.daemon()
        subject = "é" * 1000                   # 1000 characters, 2000 bytes: allowed
        r = d.post_bericht({"queue": "algemeen", "kind": "email", "from": "ü@example.nl", "subject": subject})
        self.assertEqual(r.status, 201, r)
        r = d.post_bericht({"queue": "algemeen", "kind": "email", "from": "ü@example.nl", "subject": subject + "é"})
        self.assertProblem(r, 400, "subject", "1000 characters")

    def test_address_with_a_slash_has_history(self):
        d = self.daemon()
        addr = "afdeling/balie@example.nl"
        bid = d.post_bericht({"queue": "algemeen", "kind": "email", "from": addr}).json["id"]
        r = d.request("GET", "/api/v1/customers/%s/history" % addr.replace("/", "%2F").replace("@", "%40"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual([b["id"] for b in r.json["items"]], [bid])
        r = d.request("GET", "/api/v1/customers/jan%40example.nl/history")
        self.assertEqual((r.status, r.json["items"]), (200, []))

    def test_agent_keeps_read_access_to_what_they_handled_last(self):
        d = self.daemon()
        tok = d.token("agent", "agent1")
        ws = self.agent_ws(d, "agent1")
        bid = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "+31600000099", "text": "Hallo"}).json["id"]
        ws.expect("offer", 5, bericht=bid)
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        self.assertEqual(ws.request({"type": "message", "bericht": bid, "text": "Goedemiddag"})["type"], "ack")
        self.assertEqual(ws.request({"type": "logout"})["type"], "ack")      # the chat goes back to the queue
        self.assertEqual(d.bericht(bid)["agent"], None)
        r = d.request("GET", "/api/v1/berichten/%s" % bid, token=tok)
        self.assertEqual(r.status, 200, r)
        r = d.request("GET", "/api/v1/berichten/%s/messages" % bid, token=tok)
        self.assertEqual(r.status, 200, r)
        other = d.token("agent", "agent2")
        self.assertEqual(d.request("GET", "/api/v1/berichten/%s" % bid, token=other).status, 403)


class HostileFrames(AcdmTestCase):
    def frame(self, ws, opcode, payload, masked=True):
        n = len(payload)
        hdr = bytes([0x80 | opcode])
        mbit = 0x80 if masked else 0
        if n < 126:
            hdr += bytes([mbit | n])
        else:
            hdr += bytes([mbit | 126]) + struct.pack("!H", n)
        if masked:
            key = os.urandom(4)
            hdr += key
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        ws.sock.sendall(hdr + payload)

    def closed_with(self, ws, timeout=5):
        try:
            return ws.expect_close(timeout)[0]
        except (OSError, WsClosed):
            return "dropped"

    def test_invalid_utf8_closes_with_1007(self):
        d = self.daemon()
        ws = self.agent_ws(d, "agent1", login=False, ready=False)
        self.frame(ws, 0x1, b'{"type":"login","x":"\xc3\x28"}')
        self.assertEqual(self.closed_with(ws), 1007)
        self.assertEqual(d.request("GET", "/api/v1/health", token=None).status, 200)

    def test_garbage_frames_on_every_websocket(self):
        d = self.daemon()
        for payload in (b"", b"null", b"[]", b'{"type": 5}', b'{"type":"pick"}', b'{"type":"x"' * 50,
                        json.dumps({"type": "message", "bericht": "0" * 5000, "text": "x"}).encode()):
            ws = self.agent_ws(d, "agent1", login=False, ready=False)
            self.frame(ws, 0x1, payload)
            m = ws.expect("error", 5)
            self.assertIn(m["code"], ("malformed", "invalid", "not_found", "unknown_type"), m)
            ws.close()
        self.assertEqual(d.request("GET", "/api/v1/health", token=None).status, 200)


class KillDuringReload(AcdmTestCase):
    def test_kill9_during_reloads_and_queue_changes_keeps_the_acknowledged_state(self):
        d = self.daemon(base_config(self.empty_plugin_dir(), group_commit_ms=20))
        sup = d.token("supervisor", "sup1")
        state = {"acked": None, "sent": None, "n": 0}
        stop = threading.Event()

        def toggle():
            closed = False
            while not stop.is_set():
                closed = not closed
                state["sent"] = closed
                try:
                    r = d.request("POST", "/api/v1/queues/algemeen/%s" % ("close" if closed else "open"),
                                  token=sup, timeout=5)
                except OSError:
                    return
                if r.status == 200:
                    state["acked"] = closed
                    state["n"] += 1

        def reload():
            while not stop.is_set():
                try:
                    d.request("POST", "/api/v1/reload", timeout=5)
                except OSError:
                    return
        ts = [threading.Thread(target=toggle, daemon=True), threading.Thread(target=reload, daemon=True)]
        for t in ts:
            t.start()
        wait_until(lambda: state["n"] >= 6, 20, what="queue changes acknowledged")
        time.sleep(random.uniform(0, 0.5))
        d.kill9()
        stop.set()
        for t in ts:
            t.join(10)
        d.start()
        is_closed = not d.queue("algemeen")["open"]
        # the last acknowledged state, or the one in flight at the kill (stored, not yet answered)
        self.assertIn(is_closed, {state["acked"], state["sent"]}, state)
        if state["acked"] == state["sent"]:
            self.assertEqual(is_closed, state["acked"], state)
