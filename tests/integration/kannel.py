"""kannel -- a real Kannel (Debian `kannel`: bearerbox + smsbox) with its fake SMSC, for the SMS
channel's integration tests and benchmark. Standard library only.

Kannel(workdir, mo_url, sendsms_user) writes kannel.conf on free loopback ports, starts bearerbox,
waits for its status page, starts smsbox, and keeps ONE connection to bearerbox's fake-SMSC port
(bearerbox serves one fake client at a time; see /work/shared/recipes/sms/RECIPE.md) for both
directions: mo() writes a line as the operator would deliver a citizen's SMS, and every line
bearerbox sends (our MT parts) is collected in .mt. stop() ends the daemons by pid.

The sms-service group is the one docs/operations.md documents for the sms channel."""
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"


def available():
    return os.access(BEARERBOX, os.X_OK) and os.access(SMSBOX, os.X_OK)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


CONF = """group = core
admin-port = {admin}
admin-interface = 127.0.0.1
admin-password = adminpw
status-password = statuspw
admin-allow-ip = "127.0.0.1"
smsbox-port = {boxc}
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
log-file = "{dir}/bearerbox.log"
log-level = 0
access-log = "{dir}/access.log"
store-type = file
store-location = "{dir}/kannel.store"
dlr-storage = internal
sms-resend-retry = 3

group = smsc
smsc = fake
smsc-id = fake1
port = {fake}
our-host = 127.0.0.1
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {boxc}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{dir}/smsbox.log"
log-level = 0
access-log = "{dir}/smsbox-access.log"
mo-recode = true
http-request-retry = 3
http-queue-delay = 1

group = sendsms-user
username = acdm
password = {password}
user-allow-ip = "127.0.0.1"
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
{url_key} = "{mo_url}&from=%p&to=%P&{text}id=%I&time=%t&smsc=%i&coding=%c&charset=%C"
"""


class Kannel:
    def __init__(self, workdir, mo_url=None, password="kannel-test-pw", post=True):
        """post: the sms-service uses post-url (the text in the body); else get-url (text=%b)."""
        self.dir = os.path.join(workdir, "kannel")
        os.makedirs(self.dir, exist_ok=True)
        self.admin, self.boxc, self.fake, self.sendsms = free_ports(4)
        self.password = password
        self.mo_url = mo_url
        self.post = post
        self.procs = {}
        self.mt = []                 # lines bearerbox sent to the fake SMSC (our MT parts)
        self.sock = None
        self.lock = threading.Lock()

    @property
    def sendsms_url(self):
        return "http://127.0.0.1:%d/cgi-bin/sendsms" % self.sendsms

    def status(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/status.txt?password=statuspw" % self.admin,
                                        timeout=2) as r:
                return r.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _spawn(self, name, argv):
        out = open(os.path.join(self.dir, name + ".out"), "ab")
        self.procs[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        out.close()

    def _alive(self, name):
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def start(self, timeout=20.0):
        if not available():
            raise AssertionError("Kannel is not installed (%s, %s): run scripts/deps.sh test "
                                 "(channels/sms/deps: kannel kannel-extras)" % (BEARERBOX, SMSBOX))
        conf = os.path.join(self.dir, "kannel.conf")
        with open(conf, "w") as f:
            f.write(CONF.format(dir=self.dir, admin=self.admin, boxc=self.boxc, fake=self.fake,
                                sendsms=self.sendsms, password=self.password, mo_url=self.mo_url,
                                url_key="post-url" if self.post else "get-url",
                                text="" if self.post else "text=%b&"))
        deadline = time.monotonic() + timeout
        self._spawn("bearerbox", [BEARERBOX, "-v", "1", conf])
        while not self.status():
            if not self._alive("bearerbox"):
                raise AssertionError("bearerbox exited: %s" % self.log_tail("bearerbox.out"))
            if time.monotonic() > deadline:
                raise AssertionError("bearerbox status page not up")
            time.sleep(0.05)
        self._spawn("smsbox", [SMSBOX, "-v", "1", conf])
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.fake), timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("fake SMSC port not open")
                time.sleep(0.05)
        self.sock.settimeout(None)
        threading.Thread(target=self._reader, daemon=True).start()
        while True:
            st = self.status()
            if "smsbox:(none), IP 127.0.0.1" in st and ("FAKE:%d (online" % self.fake) in st:
                return self
            for n in ("bearerbox", "smsbox"):
                if not self._alive(n):
                    raise AssertionError("%s exited: %s" % (n, self.log_tail(n + ".out")))
            if time.monotonic() > deadline:
                raise AssertionError("Kannel not ready:\n" + st)
            time.sleep(0.05)

    def _reader(self):
        buf = b""
        while True:
            try:
                d = self.sock.recv(65536)
            except OSError:
                return
            if not d:
                return
            buf += d
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                with self.lock:
                    self.mt.append(line.decode("latin-1"))

    def mo(self, sender, receiver, text):
        """A citizen's SMS as the operator delivers it: 7-bit text, or UCS-2 when needed."""
        try:
            text.encode("ascii")
            line = "%s %s text %s\n" % (sender, receiver, text)
        except UnicodeEncodeError:
            line = "%s %s ucs2 %s\n" % (sender, receiver,
                                         urllib.parse.quote_from_bytes(text.encode("utf-16-be")))
        self.sock.sendall(line.encode("latin-1"))

    def mt_lines(self):
        with self.lock:
            return list(self.mt)

    def mt_messages(self):
        """The MT lines joined into messages: (sender, receiver, bytes, parts, ucs2?) by the
        concatenation UDH's reference (a single SMS is its own message)."""
        msgs, parts = [], {}
        for line in self.mt_lines():
            f = line.split(" ", 3)
            if len(f) < 4:
                continue
            sender, receiver, typ, rest = f
            if typ == "udh":
                udh_s, _, data_s = rest.partition(" data ")
                udh = urllib.parse.unquote_to_bytes(udh_s.replace("+", "%20"))
                data = urllib.parse.unquote_to_bytes(data_s.replace("+", "%20"))
                if len(udh) >= 6 and udh[1] == 0:
                    ref, total, seq = udh[3], udh[4], udh[5]
                    parts.setdefault((sender, receiver, ref, total), {})[seq] = data
                    continue
                msgs.append((sender, receiver, data, 1))
            elif typ in ("ucs-2", "data"):
                msgs.append((sender, receiver, urllib.parse.unquote_to_bytes(rest.replace("+", "%20")), 1))
            elif typ == "text":
                msgs.append((sender, receiver, rest.encode("latin-1"), 1))
        for (sender, receiver, ref, total), got in parts.items():
            if len(got) == total:
                msgs.append((sender, receiver, b"".join(got[i] for i in sorted(got)), total))
        return msgs

    def log_tail(self, name, n=20):
        try:
            with open(os.path.join(self.dir, name), "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
        for name in ("smsbox", "bearerbox"):
            p = self.procs.get(name)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
