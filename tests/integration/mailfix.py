"""mailfix -- a throw-away mail system for the email channel's integration tests (the recipe in
shared/recipes/mail, in Python): Dovecot IMAP (IDLE, MOVE) and LMTP, and msmtpd as the SMTP
front that pipes each mail synchronously through msmtp into Dovecot's LMTP, all on free
loopback ports in a temp folder. Every address has a mailbox; kcc@example.nl's password is
"secret", every other address logs in with "secret" too. Processes are stopped by pid only.
"""
import email
import email.message
import email.policy
import email.utils
import imaplib
import os
import pwd
import grp
import shutil
import signal
import smtplib
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "mail")
DOVECOT = "/usr/sbin/dovecot"
MSMTPD = "/usr/bin/msmtpd"
MSMTP = "/usr/bin/msmtp"


def available():
    return all(os.path.exists(p) for p in (DOVECOT, MSMTPD, MSMTP))


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


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _greets(port, prefix, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).startswith(prefix)
    except OSError:
        return False


class MailServer:
    """start() / stop(); imap(user) gives a logged-in imaplib client."""

    def __init__(self, base):
        self.dir = os.path.join(base, "mail")
        os.makedirs(os.path.join(self.dir, "log"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "mail"), exist_ok=True)
        self.imap_port, self.lmtp_port, self.smtp_port = free_ports(3)
        self.msmtpd = None
        self.dovecot_pid = None
        if os.getuid() == 0:
            self.user = "nobody"
            self.group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
            self.runas = ["setpriv", "--reuid=nobody", "--regid=%s" % self.group, "--clear-groups"]
        else:
            self.user = pwd.getpwuid(os.getuid()).pw_name
            self.group = grp.getgrgid(os.getgid()).gr_name
            self.runas = []
        self._write_configs()

    def _fill(self, name):
        with open(os.path.join(TEMPLATES, name)) as f:
            t = f.read()
        for k, v in (("@DIR@", self.dir), ("@USER@", self.user), ("@GROUP@", self.group),
                     ("@IMAP_PORT@", str(self.imap_port)), ("@LMTP_PORT@", str(self.lmtp_port))):
            t = t.replace(k, v)
        return t

    def _write_configs(self):
        with open(os.path.join(self.dir, "users"), "w") as f:
            f.write("kcc@example.nl:{PLAIN}secret\n")
        with open(os.path.join(self.dir, "dovecot.conf"), "w") as f:
            f.write(self._fill("dovecot.conf.in"))
        p = os.path.join(self.dir, "msmtprc")
        with open(p, "w") as f:
            f.write(self._fill("msmtprc.in"))
        os.chmod(p, 0o600)
        if os.getuid() == 0:
            uid = pwd.getpwnam(self.user).pw_uid
            gid = grp.getgrnam(self.group).gr_gid
            for root, dirs, files in os.walk(self.dir):
                for n in dirs + files:
                    os.chown(os.path.join(root, n), uid, gid)
            os.chown(self.dir, uid, gid)
            # nobody must be able to reach the folder
            d = self.dir
            while d != "/" and d:
                os.chmod(d, os.stat(d).st_mode | 0o711)
                d = os.path.dirname(d)

    # ------------------------------------------------------------ life cycle
    def start_dovecot(self):
        # dovecot daemonizes: its output goes to a file (a pipe would stay open in the daemon)
        with open(os.path.join(self.dir, "log", "dovecot.out"), "ab") as out:
            r = subprocess.run(self.runas + [DOVECOT, "-c", os.path.join(self.dir, "dovecot.conf")],
                               stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=30)
        if r.returncode != 0:
            raise AssertionError("dovecot did not start: %s %s" % (self.log("dovecot.out"), self.log("dovecot.log")))
        pidf = os.path.join(self.dir, "run", "master.pid")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if os.path.exists(pidf) and _greets(self.imap_port, b"* OK"):
                with open(pidf) as f:
                    self.dovecot_pid = int(f.read().strip())
                return
            time.sleep(0.05)
        raise AssertionError("dovecot not ready: %s" % self.log("dovecot.log"))

    def start(self):
        self.start_dovecot()
        return self.start_smtp()

    def start_smtp(self):
        out = open(os.path.join(self.dir, "log", "msmtpd.out"), "ab")
        self.msmtpd = subprocess.Popen(
            self.runas + [MSMTPD, "--interface=127.0.0.1", "--port=%d" % self.smtp_port,
                          "--log=%s" % os.path.join(self.dir, "log", "msmtpd.log"),
                          "--command=%s -C %s -f %%F --" % (MSMTP, os.path.join(self.dir, "msmtprc"))],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        out.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.msmtpd.poll() is not None:
                raise AssertionError("msmtpd died: %s" % self.log("msmtpd.out"))
            if _greets(self.smtp_port, b"220") and _greets(self.lmtp_port, b"220"):
                if self.msmtpd.poll() is None:
                    return self
            time.sleep(0.05)
        raise AssertionError("msmtpd not ready")

    def _stop_pid(self, pid, sig=signal.SIGTERM):
        if not pid or not _alive(pid):
            return
        os.kill(pid, sig)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def stop_dovecot(self):
        self._stop_pid(self.dovecot_pid)
        self.dovecot_pid = None
        # the listener is gone once the master exits; wait for the port to be free
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and _greets(self.imap_port, b"* OK", 0.2):
            time.sleep(0.05)

    def stop_smtp(self):
        if self.msmtpd is not None:
            self._stop_pid(self.msmtpd.pid)
            try:
                self.msmtpd.wait(5)
            except subprocess.TimeoutExpired:
                pass
            self.msmtpd = None

    def stop(self):
        if self.msmtpd is not None:
            self._stop_pid(self.msmtpd.pid)
            try:
                self.msmtpd.wait(5)
            except subprocess.TimeoutExpired:
                pass
            self.msmtpd = None
        self.stop_dovecot()

    def log(self, name):
        try:
            with open(os.path.join(self.dir, "log", name), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    # ------------------------------------------------------------ helpers
    @property
    def imap_url(self):
        return "imap://127.0.0.1:%d/INBOX" % self.imap_port

    @property
    def smtp_url(self):
        return "smtp://127.0.0.1:%d" % self.smtp_port

    def password_file(self, base):
        p = os.path.join(base, "imap.secret")
        with open(p, "w") as f:
            f.write("secret\n")
        os.chmod(p, 0o600)
        return p

    def channel(self, base, name="mail1", queue="algemeen", **extra):
        cfg = {"imap": {"url": self.imap_url, "user": "kcc@example.nl",
                        "password_file": self.password_file(base)},
               "smtp": {"url": self.smtp_url},
               "address": "kcc@example.nl", "name": "Gemeente Voorbeeld",
               "poll_s": 2}
        cfg.update(extra)
        return {"name": name, "plugin": "email", "queue": queue, "config": cfg}

    def send(self, raw, sender="customer@example.com", rcpt="kcc@example.nl"):
        """Delivers a message through the SMTP front (it is in the Maildir when this returns)."""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=15) as s:
            s.sendmail(sender, [rcpt], raw)

    def imap(self, user="kcc@example.nl"):
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=15)
        m.login(user, "secret")
        return m

    def append(self, raw, folder="INBOX", user="kcc@example.nl"):
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        m = self.imap(user)
        try:
            typ, _ = m.append(folder, "", None, raw)
            assert typ == "OK", typ
        finally:
            m.logout()

    def messages(self, folder="INBOX", user="kcc@example.nl"):
        """Every message in folder as email.message.EmailMessage (not marking them seen)."""
        m = self.imap(user)
        try:
            typ, _ = m.select('"%s"' % folder, readonly=True)
            if typ != "OK":
                return []
            typ, data = m.uid("SEARCH", None, "ALL")
            out = []
            for uid in (data[0] or b"").split():
                typ, d = m.uid("FETCH", uid, "(BODY.PEEK[])")
                for part in d:
                    if isinstance(part, tuple):
                        out.append(email.message_from_bytes(part[1], policy=email.policy.default))
            return out
        finally:
            try:
                m.logout()
            except Exception:
                pass

    def count(self, folder="INBOX", user="kcc@example.nl"):
        m = self.imap(user)
        try:
            typ, data = m.status('"%s"' % folder, "(MESSAGES)")
            if typ != "OK":
                return 0
            return int(data[0].decode().split("MESSAGES")[1].strip(" )"))
        finally:
            m.logout()

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def mail(subject="Paspoort kwijt", body="Ik ben mijn paspoort kwijt. Wat moet ik doen?",
         sender="Jan Jansen <customer@example.com>", to="kcc@example.nl", message_id=None,
         headers=None):
    """A simple text/plain mail (UTF-8, quoted-printable)."""
    msg = email.message.EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=False)
    if message_id:
        msg["Message-ID"] = message_id
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    return msg.as_bytes(policy=email.policy.SMTP)


if __name__ == "__main__":
    # serve DIR [MAILFILE...]: start the mail system in DIR, append each file to kcc's inbox,
    # print one JSON line {imap_url, smtp_url, password_file, dir}, stop when stdin closes
    # (the browser tests in tests/ui start it this way).
    import json
    import sys
    if len(sys.argv) < 3 or sys.argv[1] != "serve":
        sys.exit("usage: mailfix.py serve DIR [MAILFILE...]")
    srv = MailServer(sys.argv[2])
    srv.start()
    try:
        for f in sys.argv[3:]:
            with open(f, "rb") as fh:
                srv.append(fh.read())
        print(json.dumps({"imap_url": srv.imap_url, "smtp_url": srv.smtp_url, "dir": srv.dir,
                          "password_file": srv.password_file(sys.argv[2]),
                          "imap_port": srv.imap_port}), flush=True)
        sys.stdin.read()
    finally:
        srv.stop()
