#!/usr/bin/env python3
"""bench_backup -- an online backup of a ~1 GB store while REST ingest goes on (issue 13, R80).

The store is filled straight through SQLite (a bulk insert into acdmd's own schema: finished
berichten with a payload, a thread message and three events each), not through the API. Then
acdmd serves REST ingest (wrk, POST /api/v1/berichten, 201 after the commit) and a backup is
started (POST /api/v1/backup: copy in one read transaction, PRAGMA integrity_check, rename).
The ingest rate during the backup is compared with the rate in the same run just before it,
both counted from the stored berichten' created_ms (what was acknowledged), so wrk's own
start-up and tail do not count. Goal: during >= 80 % of without.

Usage: bench_backup.py [--acdmd bin/acdmd] [--mb 1024] [--conns 64] [--base-s 10]
"""
import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def http(port, method, path, token=None, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Acdmd:
    def __init__(self, binary, cfg_path, data, log):
        self.cmd = [binary, "-c", cfg_path, "--data-dir", data]
        self.data, self.log, self.proc, self.port = data, log, None, None

    def start(self):
        self.port = free_port()
        self.proc = subprocess.Popen(self.cmd + ["--listen", "127.0.0.1:%d" % self.port], cwd=REPO,
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.time() + 600
        while time.time() < deadline:
            try:
                if http(self.port, "GET", "/api/v1/health")[0] in (200, 503):
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                sys.exit("acdmd exited at start; see %s" % self.log)
            time.sleep(0.05)
        self.token = open(os.path.join(self.data, "admin.token")).read().strip()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)

    def health(self):
        return http(self.port, "GET", "/api/v1/health")[1]


def fill(db_path, mb):
    """Bulk insert finished berichten (payload, one message, three events each) up to mb MiB."""
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA synchronous=OFF")
    text = "Goedemiddag, ik heb een vraag over de aanvraag van mijn paspoort en rijbewijs. " * 6
    payload = json.dumps({"subject": "Vraag over mijn aanvraag", "text": text[:200],
                          "headers": {"x-source": "bulk"}})
    batch, n, t0 = 50000, 0, time.time()
    while os.path.getsize(db_path) < mb * 1024 * 1024:
        db.execute("BEGIN")
        db.execute(
            "WITH RECURSIVE c(i) AS (SELECT ?1 UNION ALL SELECT i+1 FROM c WHERE i < ?1 + ?2 - 1) "
            "INSERT INTO berichten(id,channel,kind,direction,from_addr,queue,priority,state,payload_json,"
            "created_ms,queued_ms,updated_ms) SELECT printf('0180d000-0000-7000-8000-%012d', i),'api','chat',"
            "'in','+3161'||(i % 100000),'algemeen',0,'done',?3,1700000000000+i*60,1700000000000+i*60,"
            "1700000000000+i*60+300000 FROM c", (n, batch, payload))
        db.execute(
            "WITH RECURSIVE c(i) AS (SELECT ?1 UNION ALL SELECT i+1 FROM c WHERE i < ?1 + ?2 - 1) "
            "INSERT INTO messages(bericht,ts_ms,direction,author,text) SELECT "
            "printf('0180d000-0000-7000-8000-%012d', i),1700000000000+i*60,'in','+3161'||(i % 100000),"
            "?3 || i FROM c", (n, batch, text))
        for k, typ in enumerate(("queued", "accepted", "ended")):
            db.execute(
                "WITH RECURSIVE c(i) AS (SELECT ?1 UNION ALL SELECT i+1 FROM c WHERE i < ?1 + ?2 - 1) "
                "INSERT INTO events(ts_ms,type,bericht,queue,agent,channel,kind,detail_json) SELECT "
                "1700000000000+i*60+?4,?3,printf('0180d000-0000-7000-8000-%012d', i),'algemeen',"
                "CASE WHEN ?4 > 0 THEN 'agent1' END,'api','chat','{}' FROM c", (n, batch, typ, k * 100000))
        db.execute("COMMIT")
        n += batch
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return n, time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--acdmd", default="bin/acdmd")
    ap.add_argument("--mb", type=int, default=int(os.environ.get("ACDM_BENCH_BACKUP_MB", "1024")))
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--base-s", type=float, default=10.0)
    ap.add_argument("--pause-ms", type=int, default=0, help="backup.pause_ms")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (scripts/deps.sh bench)")
    tmp = tempfile.mkdtemp(prefix="acdm-bench-backup-")
    try:
        run(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(a, tmp):
    data, bdir = os.path.join(tmp, "data"), os.path.join(tmp, "backups")
    os.makedirs(os.path.join(tmp, "plugins"))
    os.makedirs(bdir)
    cfg = {"plugin_dir": os.path.join(tmp, "plugins"), "ui_dir": "core/ui", "log_level": "notice",
           "queues": [{"name": "algemeen"}], "agents": [],
           "backup": {"dir": bdir, "every": "24h", "keep": 2, "pause_ms": a.pause_ms}}
    cfg_path = os.path.join(tmp, "acdm.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    # a fresh backup in the folder: the schedule waits a day, the benchmark starts its own
    open(os.path.join(bdir, time.strftime("acdm-%Y%m%dT%H%M%SZ.db", time.gmtime())), "w").close()
    d = Acdmd(os.path.abspath(a.acdmd), cfg_path, data, os.path.join(tmp, "acdmd.log"))
    d.start()
    d.stop()
    n, secs = fill(os.path.join(data, "acdm.db"), a.mb)
    size = os.path.getsize(os.path.join(data, "acdm.db"))
    print("store: %d finished berichten (%d messages, %d events) bulk-inserted, %.0f MiB, in %.0f s"
          % (n, n, 3 * n, size / 1048576, secs))
    d.start()

    def backup():
        st, j = http(d.port, "POST", "/api/v1/backup", d.token)
        if st != 202:
            sys.exit("POST /api/v1/backup: %s %s" % (st, j))
        while True:
            time.sleep(0.2)
            b = d.health()["backup"]
            if not b["running"] and b["last"] and b["last"]["at_ms"] >= j["started_ms"]:
                if not b["last"]["ok"]:
                    sys.exit("backup failed: %s" % b["last"]["error"])
                return b["last"]

    idle = backup()
    print("backup without load: %.0f MiB in %.1f s (copy %.1f s, integrity check %.1f s)"
          % (idle["bytes"] / 1048576, idle["duration_ms"] / 1000, idle["copy_ms"] / 1000,
             idle["verify_ms"] / 1000))
    lua = os.path.join(tmp, "post.lua")
    with open(os.path.join(REPO, "tests", "bench", "post.lua")) as f:
        src = f.read().replace("bench-token", d.token).replace('"support"', '"algemeen"')
    with open(lua, "w") as f:
        f.write(src)
    dur = int(2 * a.base_s + 2 * idle["duration_ms"] / 1000 + 10)
    w0 = time.time()
    wrk = subprocess.Popen(["wrk", "-t1", "-c%d" % a.conns, "-d%ds" % dur, "-s", lua,
                            "http://127.0.0.1:%d" % d.port], stdout=subprocess.PIPE, text=True)
    time.sleep(a.base_s)
    loaded = backup()
    out = wrk.communicate()[0]
    w1 = time.time()
    d.stop()
    b0, b1 = loaded["at_ms"], loaded["at_ms"] + loaded["duration_ms"]
    db = sqlite3.connect(os.path.join(data, "acdm.db"))

    def count(lo, hi):
        return db.execute("SELECT count(*) FROM berichten WHERE created_ms >= ? AND created_ms < ?",
                          (int(lo), int(hi))).fetchone()[0]
    # the baseline: from wrk warmed up to just before the backup, and as long again from just
    # after it (the machine's drift over the run hits both sides)
    base_lo, base_hi = w0 * 1000 + 2000, b0 - 200
    span = base_hi - base_lo
    post_lo, post_hi = b1 + 200, min(b1 + 200 + span, w1 * 1000 - 1000)
    n_base = count(base_lo, base_hi) + (count(post_lo, post_hi) if post_hi > post_lo else 0)
    base_rate = n_base / ((span + max(0, post_hi - post_lo)) / 1000)
    during_rate = count(b0, b1) / ((b1 - b0) / 1000)
    if b1 > w1 * 1000 - 500:
        print("warning: wrk ended before the backup did; the figure is over part of it")
    c1 = b0 + loaded["copy_ms"]
    copy_rate = count(b0, c1) / (max(1, c1 - b0) / 1000)
    check_rate = count(c1, b1) / (max(1, b1 - c1) / 1000)
    print("  during the copy %.0f/s (%.2f), during the integrity check %.0f/s (%.2f)"
          % (copy_rate, copy_rate / base_rate if base_rate else 0, check_rate,
             check_rate / base_rate if base_rate else 0))
    non2xx = [ln for ln in out.splitlines() if "Non-2xx" in ln]
    ratio = during_rate / base_rate if base_rate else 0
    print("bench backup_under_ingest: %.0f MiB store, backup %.1f s under load (copy %.1f s, check %.1f s; "
          "%.1f s idle); REST ingest "
          "%.0f berichten/s during the backup vs %.0f/s before and after it, ratio %.2f (goal >= 0.80: %s)%s"
          % (loaded["bytes"] / 1048576, loaded["duration_ms"] / 1000, loaded["copy_ms"] / 1000,
             loaded["verify_ms"] / 1000, idle["duration_ms"] / 1000,
             during_rate, base_rate, ratio, "met" if ratio >= 0.8 else "NOT met",
             ("; " + non2xx[0].strip()) if non2xx else ""))


if __name__ == "__main__":
    main()
