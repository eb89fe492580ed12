#!/usr/bin/env python3
"""package_test.py -- `make package-test`: the Debian package in a clean Debian 12 root.

Builds acdm_*.deb (scripts/build-deb.sh), unpacks the cached debootstrap root
(tests/package/mkroot.sh), and in it: installs the .deb with apt (dependencies from the mirror),
checks the layout, the conffiles and the system user; starts acdmd the way acdm.service does
(its ExecStart, User, WorkingDirectory, UMask, with $NOTIFY_SOCKET on a socket this test owns:
systemd is not PID 1 in a chroot); waits for READY=1, checks /api/v1/health and acdmctl status,
takes a bericht through the packaged webhook channel, reloads with the unit's ExecReload
(RELOADING=1 ... READY=1, the new queue live); upgrades to a rebuilt .deb with a higher version
(the bericht and the edited config kept; by default the same build repacked with the new
version, ACDM_PKGTEST_REBUILD=1 for a second dpkg-buildpackage); removes (config and data stay) and purges (both gone,
the user stays). Prints how long each phase took. Standard library only; needs root.
"""
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.path.join(REPO, "build", "pkgtest")
ROOT = os.path.join(WORK, "root")
T0 = time.monotonic()
phases = []
mounts = []


def phase(name):
    phases.append((name, time.monotonic()))
    print("package-test: %s" % name, flush=True)


def report():
    now = time.monotonic()
    for i, (name, t) in enumerate(phases):
        secs = (phases[i + 1][1] if i + 1 < len(phases) else now) - t
        print("package-test: %6.1f s  %s" % (secs, name))


def fail(msg):
    print("package-test: FAILED: %s" % msg, file=sys.stderr, flush=True)
    report()
    raise SystemExit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def run(cmd, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.STDOUT)
    r = subprocess.run(cmd, text=True, **kw)
    if r.returncode != 0:
        fail("%s exited %d:\n%s" % (" ".join(cmd), r.returncode, (r.stdout or "")[-3000:]))
    return r.stdout or ""


def chroot(*cmd, env=None, ok=True):
    e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    e.update(env or {})
    if ok:
        return run(["chroot", ROOT] + list(cmd), env=e)
    return subprocess.run(["chroot", ROOT] + list(cmd), env=e, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def apt_install(*debs):
    for d in debs:
        shutil.copy(d, os.path.join(ROOT, "tmp"))
    args = ["./tmp/" + os.path.basename(d) for d in debs]
    return chroot("sh", "-c", "cd / && apt-get install -y -q -o Dpkg::Options::=--force-confdef "
                  "-o Dpkg::Options::=--force-confold " + " ".join(args))


def mount(*args):
    run(["mount"] + list(args))
    mounts.append(args[-1])


def umount_all():
    while mounts:
        subprocess.run(["umount", "-l", mounts.pop()], stderr=subprocess.DEVNULL)


def rootpath(p):
    return os.path.join(ROOT, p.lstrip("/"))


def unit(path):
    """The [Service] settings of a unit file: {key: [values]}."""
    svc, sec = {}, None
    with open(rootpath(path)) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                sec = line
            elif sec == "[Service]" and "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                svc.setdefault(k, []).append(v)
    return svc


def http(port, method, path, body=None, token=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data, method=method)
    if data:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Service:
    """acdmd started as acdm.service would start it, reporting to our notify socket."""

    def __init__(self):
        self.svc = unit("/lib/systemd/system/acdm.service")
        self.sock_host = rootpath("/run/acdm-notify.sock")
        if os.path.exists(self.sock_host):
            os.unlink(self.sock_host)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_host)
        os.chmod(self.sock_host, 0o666)
        self.proc = None
        self.log = os.path.join(WORK, "acdmd.log")

    def start(self):
        s = self.svc
        check(s.get("Type") == ["notify"], "acdm.service is not Type=notify: %r" % s.get("Type"))
        argv = shlex.split(s["ExecStart"][0])
        user, group = s["User"][0], s.get("Group", s["User"])[0]
        wd, umask = s["WorkingDirectory"][0], s.get("UMask", ["0022"])[0]
        wd_usec = s["WatchdogSec"][0].rstrip("s")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "NOTIFY_SOCKET": "/run/acdm-notify.sock", "WATCHDOG_USEC": str(int(wd_usec) * 1000000)}
        self.logf = open(self.log, "ab")
        # numeric: the names are the root's, not this machine's
        uid = chroot("getent", "passwd", user).split(":")[2]
        gid = chroot("getent", "group", group).split(":")[2]
        self.uid = int(uid)
        self.proc = subprocess.Popen(
            ["chroot", "--userspec=%s:%s" % (uid, gid), "--groups=%s" % gid, ROOT, "/bin/sh", "-c",
             'umask %s && cd %s && exec "$@"' % (umask, shlex.quote(wd)), "acdm"] + argv,
            env=env, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        self.expect("READY", 60)

    def expect(self, key, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail("acdmd exited %s before %s=1:\n%s" % (self.proc.returncode, key, self.tail()))
            self.sock.settimeout(0.5)
            try:
                m = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            if key + "=1" in m.split("\n"):
                return m
        fail("no %s=1 from acdmd within %d s:\n%s" % (key, timeout, self.tail()))

    def reload(self):
        cmd = self.svc["ExecReload"][0].replace("$MAINPID", str(self.proc.pid))
        run(shlex.split(cmd))
        self.expect("RELOADING", 20)
        return self.expect("READY", 20)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.expect("STOPPING", 20)
        rc = self.proc.wait(60)
        check(rc == 0, "acdmd exited %d after SIGTERM:\n%s" % (rc, self.tail()))
        self.logf.close()

    def tail(self):
        with open(self.log, errors="replace") as f:
            return "".join(f.readlines()[-30:])


def set_listen(port, extra_queue=False):
    p = rootpath("/etc/acdm/acdm.json")
    with open(p) as f:
        cfg = json.load(f)
    cfg["listen"] = "127.0.0.1:%d" % port
    if extra_queue:
        cfg["queues"].append({"name": "extra", "title": "Extra"})
    with open(p, "w") as f:
        json.dump(cfg, f, indent=2)


def stat_of(p):
    st = os.stat(rootpath(p))
    return "%s:%s %o" % (chroot("getent", "passwd", str(st.st_uid)).split(":")[0] if st.st_uid else "root",
                         chroot("getent", "group", str(st.st_gid)).split(":")[0] if st.st_gid else "root",
                         st.st_mode & 0o7777)


def main():
    if os.geteuid() != 0:
        fail("needs root (debootstrap, chroot)")
    os.makedirs(WORK, exist_ok=True)
    phase("building the packages")
    debs = run([os.path.join(REPO, "scripts", "build-deb.sh"), os.path.join(WORK, "deb1")]).split()
    deb, dev = [d for d in debs if "/acdm_" in d][0], [d for d in debs if "/acdm-dev_" in d][0]
    version = os.path.basename(deb).split("_")[1]

    phase("the clean Debian 12 root")
    tarball = run([os.path.join(REPO, "tests", "package", "mkroot.sh")]).strip().split("\n")[-1]
    if os.path.exists(ROOT):
        umount_all()
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    run(["tar", "-C", ROOT, "-xf", tarball])
    mount("-t", "proc", "proc", rootpath("/proc"))
    # downloaded dependencies are kept for the next run
    archives = os.path.join(WORK, "apt-archives")
    os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
    mount("--bind", archives, rootpath("/var/cache/apt/archives"))
    shutil.copy("/etc/resolv.conf", rootpath("/etc/resolv.conf"))
    check(chroot("getent", "passwd", "acdm", ok=False).returncode != 0, "the clean root already has a user acdm")

    phase("apt-get install ./acdm_%s.deb ./acdm-dev" % version)
    out = apt_install(deb, dev)
    check("Setting up acdm (%s)" % version in out, "apt did not set up acdm %s:\n%s" % (version, out[-2000:]))
    pw = chroot("getent", "passwd", "acdm").strip().split(":")
    check(pw[5] == "/var/lib/acdm" and pw[6].endswith("nologin"), "user acdm: %r" % pw)
    check(int(pw[2]) < 1000, "acdm is not a system user: uid %s" % pw[2])
    for f in ("/usr/sbin/acdmd", "/usr/bin/acdmctl", "/usr/lib/acdm/plugins/webhook.so",
              "/usr/lib/acdm/plugins/webchat.so", "/usr/share/acdm/ui/agent.html",
              "/lib/systemd/system/acdm.service", "/lib/systemd/system/acdm@.service",
              "/usr/include/acdm/plugin.h", "/usr/lib/libacdm-mock.a"):
        check(os.path.exists(rootpath(f)), "%s not installed" % f)
    conff = chroot("dpkg-query", "-W", "-f=${Conffiles}", "acdm")
    check("/etc/acdm/acdm.json" in conff, "/etc/acdm/acdm.json is not a conffile: %r" % conff)
    check(stat_of("/etc/acdm/acdm.json") == "root:acdm 640", "acdm.json: %s" % stat_of("/etc/acdm/acdm.json"))
    check(stat_of("/var/lib/acdm") == "acdm:acdm 750", "/var/lib/acdm: %s" % stat_of("/var/lib/acdm"))
    check(stat_of("/etc/acdm/acdm.d") == "acdm:acdm 750", "acdm.d: %s" % stat_of("/etc/acdm/acdm.d"))
    pd = chroot("pkg-config", "--variable=plugindir", "acdm-plugin").strip()
    check(pd == "/usr/lib/acdm/plugins", "pkg-config acdm-plugin plugindir: %r" % pd)
    chk = chroot("/usr/sbin/acdmd", "--check", "-c", "/etc/acdm/acdm.json")
    check("valid" in chk, chk)

    phase("start as acdm.service does, health, a bericht, reload")
    port = free_port()
    set_listen(port)
    svc = Service()
    svc.start()
    st, body = http(port, "GET", "/api/v1/health")
    check(st == 200, "health after READY=1: %d %r" % (st, body[:300]))
    # chroot and sh exec acdmd in place: the pid is acdmd's, running as acdm
    with open("/proc/%d/status" % svc.proc.pid) as f:
        uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
    with open("/proc/%d/comm" % svc.proc.pid) as f:
        comm = f.read().strip()
    check(comm == "acdmd" and uids == [str(svc.uid)] * 4, "pid %d is %s with uids %r" % (svc.proc.pid, comm, uids))
    status = chroot("acdmctl", "status")   # /etc/acdm/acdm.json and the admin token without flags
    check('"status"' in status and "algemeen" in status, "acdmctl status: %s" % status[:500])
    with open(rootpath("/var/lib/acdm/webhook.token")) as f:
        wh = f.read().strip()
    st, body = http(port, "POST", "/channels/webhook/messages",
                    {"from": "+31612345678", "text": "Mijn paspoort is verlopen", "id": "pkgtest-1"}, token=wh)
    check(st == 201, "webhook message: %d %r" % (st, body[:300]))
    bid = json.loads(body)["bericht"]
    with open(rootpath("/var/lib/acdm/admin.token")) as f:
        admin = f.read().strip()
    set_listen(port, extra_queue=True)
    svc.reload()
    st, body = http(port, "GET", "/api/v1/queues", token=admin)
    check(st == 200 and '"extra"' in body.decode(), "the reloaded queue is not there: %d %r" % (st, body[:300]))
    svc.stop()

    phase("upgrade to a package with a higher version")
    newver = version + "+pkgtest1"
    if os.environ.get("ACDM_PKGTEST_REBUILD"):
        # a full dpkg-buildpackage with a new changelog entry (about as long as the first build)
        debs2 = run([os.path.join(REPO, "scripts", "build-deb.sh"), os.path.join(WORK, "deb2")],
                    env=dict(os.environ, ACDM_DEB_VERSION=newver)).split()
        deb2 = [d for d in debs2 if "/acdm_" in d][0]
    else:
        # the same build repacked with the higher version: dpkg and the maintainer scripts see
        # an upgrade exactly as from a new build (the binaries do not matter to it)
        tree = os.path.join(WORK, "repack")
        shutil.rmtree(tree, ignore_errors=True)
        run(["dpkg-deb", "-R", deb, tree])
        ctl = os.path.join(tree, "DEBIAN", "control")
        with open(ctl) as f:
            text = f.read()
        with open(ctl, "w") as f:
            f.write(text.replace("Version: %s\n" % version, "Version: %s\n" % newver))
        deb2 = os.path.join(WORK, "acdm_%s_amd64.deb" % newver)
        run(["dpkg-deb", "-b", tree, deb2])
        shutil.rmtree(tree)
    check(newver in deb2, "the rebuilt package is %s" % deb2)
    out = apt_install(deb2)
    check("Unpacking acdm (%s) over (%s)" % (newver, version) in out, "not an upgrade:\n%s" % out[-2000:])
    got = chroot("dpkg-query", "-W", "-f=${Version}", "acdm").strip()
    check(got == newver, "installed version %r" % got)
    with open(rootpath("/etc/acdm/acdm.json")) as f:
        check(("127.0.0.1:%d" % port) in f.read(), "the edited conffile was replaced by the upgrade")
    svc = Service()
    svc.start()
    st, body = http(port, "GET", "/api/v1/berichten/" + bid, token=admin)
    check(st == 200 and "Mijn paspoort" in body.decode(), "the bericht from before the upgrade: %d %r" % (st, body[:300]))
    svc.stop()

    phase("remove, then purge")
    chroot("apt-get", "remove", "-y", "-q", "acdm-dev", "acdm")
    check(not os.path.exists(rootpath("/usr/sbin/acdmd")), "acdmd still there after remove")
    check(os.path.exists(rootpath("/etc/acdm/acdm.json")), "remove took the config (only purge may)")
    check(os.path.exists(rootpath("/var/lib/acdm/acdm.db")), "remove took the data (only purge may)")
    chroot("dpkg", "--purge", "acdm", "acdm-dev")
    for p in ("/etc/acdm", "/var/lib/acdm", "/usr/lib/acdm", "/usr/share/acdm"):
        check(not os.path.exists(rootpath(p)), "%s still there after purge" % p)
    check(chroot("dpkg-query", "-W", "acdm", ok=False).returncode != 0 or
          "not-installed" in chroot("dpkg-query", "-W", "-f=${Status}", "acdm", ok=False).stdout,
          "dpkg still knows acdm after purge")
    # Debian policy: the system user is not removed (files it owned may remain, e.g. backups)
    check(chroot("getent", "passwd", "acdm", ok=False).returncode == 0, "purge removed the user acdm")
    umount_all()
    shutil.rmtree(ROOT)
    report()
    print("package-test: passed in %.1f s" % (time.monotonic() - T0))


if __name__ == "__main__":
    try:
        main()
    finally:
        umount_all()
