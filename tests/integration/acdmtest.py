"""acdmtest -- helpers for the integration tests: run the real acdmd as a process.

Standard library only. A test starts a Daemon (the ASan/UBSan build build/san/acdmd, or
$ACDM_BIN) on a free loopback port with a temporary data folder and config, talks to it
over HTTP (Daemon.request) and the agents' websocket (WsClient), and stops it with SIGTERM;
stop() asserts a clean exit: exit code 0 and no sanitizer report in its stderr.
"""
import base64
import copy
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import openapi_check

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _bin(name):
    """The binary to test: $ACDM_BIN (and bin/acdmctl beside it) or the sanitizer build."""
    if os.environ.get("ACDM_BIN"):
        if name == "acdmd":
            return os.path.abspath(os.environ["ACDM_BIN"])
        return os.path.abspath(os.environ.get("ACDM_CTL", os.path.join(REPO, "bin", name)))
    return os.path.join(REPO, "build", "san", name)


ACDMD = _bin("acdmd")
ACDMCTL = _bin("acdmctl")
PLUGINS = os.path.join(REPO, "plugins")
TESTPLUGINS = os.path.join(REPO, "build", "testplugins")
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error", "LeakSanitizer",
                      "AddressSanitizer:", "Assertion `")
START_TIMEOUT = 30.0    # ASan start-up plus schema migration on a busy 2-core box
STOP_TIMEOUT = 30.0

SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    "LSAN_OPTIONS": "",
}


WEBHOOK_TOKEN = "wh-test-token-0123456789"   # the webhook instances' token in the tests


def webhook_channel(name="web1", queue="algemeen", **config):
    """A webhook channel entry for a config; a channel that accepts input always has a token."""
    conf = {"token": WEBHOOK_TOKEN}
    conf.update(config)
    return {"name": name, "plugin": "webhook", "queue": queue, "config": conf}


def base_config(plugin_dir, **top):
    """A small valid config: queue 'algemeen' (linear), agents agent1/agent2 in it."""
    cfg = {
        "ui_dir": os.path.join(REPO, "core", "ui"),
        "plugin_dir": plugin_dir,
        "log_level": "info",
        "group_commit_ms": 2,
        "queues": [
            {"name": "algemeen", "title": "Algemene vragen", "strategy": "linear",
             "wrapup_s": 30, "offer_timeout_s": 20,
             "closed_text": {"default": "Wij zijn gesloten.",
                             "chat": "De chat is gesloten, probeer het later."}},
        ],
        "agents": [
            {"id": "agent1", "name": "Anouk", "queues": ["algemeen"]},
            {"id": "agent2", "name": "Mohammed", "queues": ["algemeen"]},
        ],
        "channels": [],
        "topics": ["Paspoort", "Rijbewijs", "Afval"],
        "reason_codes": [{"code": "pauze", "label": "Pauze"}],
    }
    cfg.update(top)
    return cfg


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # lower-cased names
        self.body = body

    @property
    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise AssertionError("response is not JSON (%s): %r" % (e, self.body[:300]))

    @property
    def content_type(self):
        return self.headers.get("content-type", "")

    def __repr__(self):
        return "<HTTP %d %s %r>" % (self.status, self.content_type, self.body[:400])


def http_request(host, port, method, path, body=None, headers=None, timeout=15.0):
    """One request on a fresh connection. body: bytes, str or a JSON-able object."""
    h = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode("utf-8")
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        resp = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        c.close()
    # every response is checked against docs/openapi.yaml (tests/integration/openapi_check.py)
    openapi_check.enforce(method, path, resp.status, resp.headers, resp.body)
    return resp


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a true value (returned) or raises AssertionError."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last = v
        except (OSError, http.client.HTTPException) as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


class Daemon:
    """One acdmd process. config: a dict (written as JSON) or a path to an existing file."""

    def __init__(self, workdir, config, data_dir=None, name="acdmd", cwd=None):
        self.workdir = workdir
        self.cwd = cwd or REPO          # relative paths in the config are relative to this
        self.name = name
        if isinstance(config, dict):
            self.config_path = os.path.join(workdir, name + ".json")
            self.write_config(config)
        else:
            self.config_path = os.path.abspath(config)
        self.data_dir = data_dir or os.path.join(workdir, name + "-data")
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"
        self.admin_token = None
        self.stderr_path = None
        self.runs = 0
        self.extra_args = []        # more acdmd options for the next start (--salvage, --init)
        self.prefix = []            # a command acdmd runs under (e.g. prlimit --nofile=N --)
        self.env = {}               # more environment for the next start (NOTIFY_SOCKET=...)

    # -------------------------------------------------------------- config
    def write_config(self, cfg):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(cfg if isinstance(cfg, str) else json.dumps(cfg, indent=2))
        os.replace(tmp, self.config_path)

    # -------------------------------------------------------------- life cycle
    def start(self, expect_ok=True):
        assert self.proc is None, "already running"
        self.runs += 1
        self.stderr_path = os.path.join(self.workdir, "%s-run%d.stderr" % (self.name, self.runs))
        env = dict(os.environ)
        for k, v in SAN_ENV.items():
            env.setdefault(k, v)
        env.update(self.env)
        self.err_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            list(self.prefix) + [ACDMD, "-c", self.config_path, "--data-dir", self.data_dir, "--listen", "127.0.0.1:0"]
            + list(self.extra_args),
            cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=self.err_file, stderr=self.err_file, env=env)
        if not expect_ok:
            return self
        # the port is only known from the log line (port 0 = the kernel picks a free one)
        rx = re.compile(r"listening on http://([0-9.]+):(\d+)/")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            m = rx.search(self.stderr())
            if m:
                self.port = int(m.group(2))
                break
            if self.proc.poll() is not None:
                raise AssertionError("acdmd exited with %s during start-up:\n%s"
                                     % (self.proc.returncode, self.stderr_tail()))
            if time.monotonic() > deadline:
                raise AssertionError("acdmd did not log 'listening on' within %.0fs:\n%s"
                                     % (START_TIMEOUT, self.stderr_tail()))
            time.sleep(0.02)
        # 503: up but degraded (a --salvage start); the test looks at health itself then
        wait_until(lambda: self.request("GET", "/api/v1/health", token=None).status in (200, 503),
                   START_TIMEOUT, what="GET /api/v1/health answers")
        with open(os.path.join(self.data_dir, "admin.token")) as f:
            self.admin_token = f.read().strip()
        return self

    def start_refused(self, timeout=START_TIMEOUT):
        """Starts acdmd expecting it to refuse: waits for its exit; (exit code, stderr)."""
        self.start(expect_ok=False)
        p, self.proc = self.proc, None
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
            self.err_file.close()
            raise AssertionError("acdmd did not refuse to start within %.0fs:\n%s" % (timeout, self.stderr_tail()))
        self.err_file.close()
        self.assert_no_sanitizer_report()
        return rc, self.stderr()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check=True):
        """SIGTERM, wait, and (check) assert exit code 0 and a clean stderr."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
            self.err_file.close()
            raise AssertionError("acdmd did not stop within %.0fs of SIGTERM:\n%s"
                                 % (STOP_TIMEOUT, self.stderr_tail()))
        self.err_file.close()
        if check:
            self.assert_clean(rc)

    def kill9(self):
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        p.kill()
        p.wait(10)
        self.err_file.close()
        self.assert_no_sanitizer_report()

    def assert_clean(self, rc):
        self.assert_no_sanitizer_report()
        if rc != 0:
            how = ("killed by signal %d (%s)" % (-rc, signal.Signals(-rc).name)) if rc < 0 else "exit code %d" % rc
            raise AssertionError("acdmd did not exit cleanly after SIGTERM: %s\n%s" % (how, self.stderr_tail()))

    def assert_no_sanitizer_report(self):
        err = self.stderr()
        for pat in SANITIZER_PATTERNS:
            if pat in err:
                i = err.index(pat)
                raise AssertionError("acdmd stderr has %r:\n%s" % (pat, err[max(0, i - 1500):i + 3000]))

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    def stderr_tail(self, n=40):
        return "\n".join(self.stderr().splitlines()[-n:])

    # -------------------------------------------------------------- HTTP
    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def request(self, method, path, body=None, token="admin", headers=None, timeout=15.0):
        """token: "admin" (the admin token), None (none) or a token string."""
        h = dict(headers or {})
        if token == "admin":
            token = self.admin_token
        if token:
            h["Authorization"] = "Bearer " + token
        return http_request(self.host, self.port, method, path, body, h, timeout)

    def get_json(self, path, token="admin"):
        r = self.request("GET", path, token=token)
        if r.status != 200:
            raise AssertionError("GET %s: expected 200, got %r" % (path, r))
        return r.json

    def post_bericht(self, body, key=None, token="admin"):
        h = {"Idempotency-Key": key} if key else None
        return self.request("POST", "/api/v1/berichten", body, token=token, headers=h)

    def webhook_message(self, text, mid, channel="web1", sender="+31612345678"):
        """A customer message through the webhook plugin instance `channel` (201 asserted); its bericht id."""
        r = self.request("POST", "/channels/%s/messages" % channel, {"from": sender, "text": text, "id": mid},
                         token=WEBHOOK_TOKEN)
        if r.status != 201:
            raise AssertionError("webhook message: expected 201, got %r" % (r,))
        return r.json["bericht"]

    def webhook_end(self, bid, channel="web1"):
        """The customer leaves (the webhook plugin's /end; 204 asserted)."""
        r = self.request("POST", "/channels/%s/end" % channel, {"bericht": bid}, token=WEBHOOK_TOKEN)
        if r.status != 204:
            raise AssertionError("webhook end: expected 204, got %r" % (r,))

    def queue(self, name):
        for q in self.get_json("/api/v1/queues")["queues"]:
            if q["name"] == name:
                return q
        return None

    def agent(self, agent_id):
        for a in self.get_json("/api/v1/agents")["agents"]:
            if a["id"] == agent_id:
                return a
        return None

    def bericht(self, bid):
        return self.get_json("/api/v1/berichten/" + bid)

    # -------------------------------------------------------------- acdmctl
    def ctl(self, *args, url=True, timeout=60):
        cmd = [ACDMCTL, "-c", self.config_path, "--data-dir", self.data_dir]
        if url and self.port:
            cmd += ["--url", self.url]
        env = dict(os.environ)
        env.pop("ACDM_TOKEN", None)
        for k, v in SAN_ENV.items():
            env.setdefault(k, v)
        return subprocess.run(cmd + list(args), cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, env=env)

    def token(self, role, name, documented_only=False):
        """A new API token through acdmctl. The documented form is
        `acdmctl token create --role R --name N`; when that one fails with a usage error (a
        known acdmctl bug: its second getopt pass is not reset), the options are given before
        "create", which that parser does accept -- unless documented_only."""
        r = self.ctl("token", "create", "--role", role, "--name", name, url=False)
        if r.returncode == 2 and "usage" in r.stderr and not documented_only:
            r = self.ctl("token", "--role", role, "--name", name, "create", url=False)
        if r.returncode != 0:
            raise AssertionError("acdmctl token create --role %s --name %s: exit %d: %s"
                                 % (role, name, r.returncode, r.stderr))
        for pat in SANITIZER_PATTERNS:
            if pat in r.stderr:
                raise AssertionError("acdmctl stderr has %r:\n%s" % (pat, r.stderr))
        return r.stdout.strip()

    def ws(self, token, path="/ws"):
        return WsClient(self.host, self.port, "%s?token=%s" % (path, token))


# ------------------------------------------------------------------ websocket client (RFC 6455)

class WsClosed(Exception):
    pass


class WsClient:
    """A minimal websocket client: handshake, masked text frames out, text frames in, close."""

    def __init__(self, host, port, path, timeout=10.0, headers=None, ssl_context=None, source_address=None):
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=source_address)
        if ssl_context is not None:   # wss: TLS first (server_hostname for SNI and the check)
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname="localhost")
        self.peer_cert = self.sock.getpeercert(binary_form=True) if ssl_context is not None else None
        self.buf = b""
        self.backlog = []          # JSON messages read but not yet expected
        self.closed = False
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
               % (path, host if ":" not in host else "[%s]" % host, port, key, "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())))
        self.sock.sendall(req.encode())
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(4096)
            if not d:
                raise WsClosed("connection closed during the handshake: %r" % self.buf)
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        if self.status != 101:
            raise WsClosed("handshake refused: %s" % lines[0])
        import hashlib
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                             .encode()).digest()).decode()
        hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        if hdrs.get("sec-websocket-accept") != want:
            raise WsClosed("bad Sec-WebSocket-Accept: %r" % hdrs.get("sec-websocket-accept"))

    def _send_frame(self, opcode, payload):
        n = len(payload)
        hdr = bytes([0x80 | opcode])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(hdr + mask + body)

    def send_text(self, text):
        self._send_frame(0x1, text.encode("utf-8") if isinstance(text, str) else text)

    def send(self, obj):
        self.send_text(json.dumps(obj))

    def _read(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                self.closed = True
                raise WsClosed("connection closed by the server")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout):
        """(opcode, payload) of the next whole message; socket.timeout when none arrives."""
        self.sock.settimeout(timeout)
        data, first_op = b"", None
        while True:
            b0, b1 = self._read(2)
            op, fin, n = b0 & 0x0F, b0 & 0x80, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if op == 0x9:                       # ping -> pong
                self._send_frame(0xA, payload)
                continue
            if op == 0xA:
                continue
            if op == 0x8:
                self.closed = True
                return op, payload
            if op != 0x0:
                first_op = op
            data += payload
            if fin:
                return first_op, data

    def recv(self, timeout=5.0):
        """The next JSON message (backlog first); AssertionError on timeout or close."""
        if self.backlog:
            return self.backlog.pop(0)
        try:
            op, data = self.recv_frame(timeout)
        except socket.timeout:
            raise AssertionError("no websocket message within %.1fs" % timeout)
        if op == 0x8:
            code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
            raise WsClosed("server closed the websocket (code %s %r)" % (code, data[2:]))
        return json.loads(data.decode("utf-8"))

    def expect(self, type_, timeout=5.0, **match):
        """Reads until a message of this type (and matching fields) comes; others are kept."""
        deadline = time.monotonic() + timeout
        seen, keep = [], []
        try:
            for i, m in enumerate(list(self.backlog)):
                if self._matches(m, type_, match):
                    self.backlog.pop(i)
                    return m
            keep = list(self.backlog)
            self.backlog = []
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %r message %r within %.1fs; got %r" % (type_, match, timeout, seen))
                try:
                    op, data = self.recv_frame(left)
                except socket.timeout:
                    raise AssertionError("no %r message %r within %.1fs; got %r" % (type_, match, timeout, seen))
                if op == 0x8:
                    raise WsClosed("server closed the websocket while waiting for %r; got %r" % (type_, seen))
                m = json.loads(data.decode("utf-8"))
                seen.append(m)
                if self._matches(m, type_, match):
                    return m
                keep.append(m)
        finally:
            self.backlog = keep + self.backlog

    def expect_close(self, timeout=10.0):
        """(code, reason) of the server's close frame; messages before it are skipped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                op, data = self.recv_frame(max(0.01, deadline - time.monotonic()))
            except socket.timeout:
                break
            if op == 0x8:
                return (struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None), data[2:].decode()
        raise AssertionError("the server did not close the websocket within %.1fs" % timeout)

    def expect_none(self, type_, wait=0.5, **match):
        """Asserts no message of this type arrives within wait seconds."""
        try:
            m = self.expect(type_, wait, **match)
        except AssertionError:
            return
        raise AssertionError("unexpected %r message: %r" % (type_, m))

    @staticmethod
    def _matches(m, type_, match):
        if m.get("type") != type_:
            return False
        for k, v in match.items():
            got = m.get(k)
            if isinstance(got, dict) and not isinstance(v, dict):
                got = got.get("id")
            if got != v:
                return False
        return True

    def request(self, msg, timeout=5.0):
        """Sends msg and returns the reply: the ack (re = its type) or an error."""
        self.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            m = self.expect_any(("ack", "error"), max(0.01, deadline - time.monotonic()))
            if m["type"] == "error" or m.get("re") == msg.get("type"):
                return m

    def expect_any(self, types, timeout):
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.backlog):
                if m.get("type") in types:
                    return self.backlog.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r message within %.1fs; backlog %r" % (types, timeout, self.backlog))
            try:
                op, data = self.recv_frame(left)
            except socket.timeout:
                continue
            if op == 0x8:
                raise WsClosed("server closed the websocket while waiting for %r" % (types,))
            self.backlog.append(json.loads(data.decode("utf-8")))

    def close(self):
        if self.closed:
            try:
                self.sock.close()
            except OSError:
                pass
            return
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
            self.sock.settimeout(2.0)
            end = time.monotonic() + 2.0
            while time.monotonic() < end:       # wait for the server's close frame
                op, _ = self.recv_frame(max(0.01, end - time.monotonic()))
                if op == 0x8:
                    break
        except (OSError, WsClosed, socket.timeout, ValueError):
            pass
        finally:
            self.closed = True
            self.sock.close()


# ------------------------------------------------------------------ test case base

class AcdmTestCase(unittest.TestCase):
    """Gives each test a temp folder and stops (with the clean-exit check) its daemons."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="acdm-it-")
        self.daemons = []
        self.sockets = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        for s in self.sockets:
            try:
                s.close()
            except Exception:
                pass
        errors = []
        for d in self.daemons:
            try:
                d.stop(check=True)
            except AssertionError as e:
                errors.append(str(e))
        if os.environ.get("ACDM_KEEP_TMP") or errors:
            print("\n[kept %s]" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if errors:
            self.fail("\n".join(errors))

    def empty_plugin_dir(self, name="plugins"):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        return d

    def daemon(self, config=None, start=True, **kw):
        """A Daemon on config (default: base_config with an empty plugin folder)."""
        if config is None:
            config = base_config(self.empty_plugin_dir())
        d = Daemon(self.tmp, copy.deepcopy(config) if isinstance(config, dict) else config,
                   name="acdmd%d" % len(self.daemons), **kw)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def agent_ws(self, d, agent_id, login=True, ready=True):
        """An agent's websocket: hello read, then login and ready (acked)."""
        tok = d.token("agent", agent_id)
        ws = d.ws(tok)
        self.sockets.append(ws)
        hello = ws.expect("hello", 10)
        self.assertEqual(hello["agent"]["id"], agent_id)
        if login:
            self.assertEqual(ws.request({"type": "login"})["type"], "ack")
        if ready:
            self.assertEqual(ws.request({"type": "ready"})["type"], "ack")
        return ws

    def assertProblem(self, r, status, *words):
        """A problem+json reply with this status whose detail names every word."""
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.content_type.startswith("application/problem+json"), r)
        j = r.json
        self.assertEqual(j.get("status"), status, j)
        text = "%s %s" % (j.get("title", ""), j.get("detail", ""))
        for w in words:
            self.assertIn(w, text, j)
        return j
