"""Scheduled online backups (verified, pruned to "keep", in health and /metrics), a restore of a
backup taken under REST load into a second acdmd, and the retention jobs (issue 13, R67, R80)."""
import json
import os
import sqlite3
import subprocess
import threading
import time
import unittest

from acdmtest import ACDMD, AcdmTestCase, base_config, wait_until
from test_metrics import PROMTOOL, parse, val

DAY_MS = 86400000


def backups_in(d):
    return sorted(n for n in os.listdir(d) if n.startswith("acdm-") and n.endswith("Z.db"))


def integrity(path):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def fill_done(db_path, n, text_len=2000):
    """n finished berichten straight into the store (the schema acdmd made), with a long message."""
    db = sqlite3.connect(db_path)
    db.execute("WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i < ?1 - 1) "
               "INSERT INTO berichten(id,channel,kind,direction,from_addr,queue,priority,state,created_ms,"
               "queued_ms,updated_ms) SELECT printf('0180d000-0000-7000-8000-%012d', i),'api','chat','in',"
               "'+3161'||i,'algemeen',0,'done',1700000000000+i,1700000000000+i,1700000000000+i FROM c", (n,))
    db.execute("WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i < ?1 - 1) "
               "INSERT INTO messages(bericht,ts_ms,direction,author,text) SELECT "
               "printf('0180d000-0000-7000-8000-%012d', i),1700000000000+i,'in','+3161'||i,?2 FROM c",
               (n, "x" * text_len))
    db.commit()
    db.close()


class ScheduledBackups(AcdmTestCase):
    def backup_cfg(self, **b):
        cfg = base_config(self.empty_plugin_dir())
        cfg["backup"] = b
        return cfg

    def health(self, d):
        r = d.request("GET", "/api/v1/health", token=None)
        self.assertIn(r.status, (200, 503), r)
        return r.json

    def metrics(self, d):
        r = d.request("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        text = r.body.decode()
        if not PROMTOOL:
            self.fail("promtool not found: install Debian's prometheus package (scripts/deps.sh test)")
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual((p.returncode, (p.stdout + p.stderr).strip()), (0, ""), "promtool check metrics")
        return parse(text)

    def test_scheduled_backup_is_verified_shown_and_pruned_to_keep(self):
        bdir = os.path.join(self.tmp, "backups")
        os.makedirs(bdir)
        old = ["acdm-20200101T020000Z.db", "acdm-20200102T020000Z.db", "acdm-20200103T020000Z.db"]
        for n in old:
            open(os.path.join(bdir, n), "w").write("an old backup")
        open(os.path.join(bdir, "acdm-20200104T020000Z.db.partial"), "w").write("interrupted")
        open(os.path.join(bdir, "notes.txt"), "w").write("not a backup: left alone")
        # the newest backup is years old: the first one is due at once
        d = self.daemon(self.backup_cfg(dir=bdir, every="24h", keep=2))
        h = wait_until(lambda: (lambda h: h if h["backup"]["ok_total"] == 1 else None)(self.health(d)), 30,
                       what="the first scheduled backup")
        last = h["backup"]["last"]
        self.assertEqual((last["ok"], last["verified"], last["trigger"], last["error"]), (True, True, "schedule", None))
        self.assertEqual(h["status"], "ok", h)
        new = os.path.basename(last["file"])
        # kept: the new one and the newest old one; the interrupted copy is cleaned up
        self.assertEqual(backups_in(bdir), sorted([old[2], new]))
        self.assertEqual(sorted(os.listdir(bdir)), sorted([old[2], new, "notes.txt"]))
        self.assertEqual(last["bytes"], os.path.getsize(last["file"]))
        self.assertEqual(integrity(last["file"]), "ok")
        # the next one a day after this one
        self.assertAlmostEqual(h["backup"]["next_ms"] - last["at_ms"], DAY_MS, delta=1000)

        # on demand: what was acknowledged before is in the copy; only the newest two stay
        bid = d.post_bericht({"queue": "algemeen", "kind": "email", "from": "a@example.nl"}).json["id"]
        time.sleep(1.1)   # another second: another file name
        r = d.request("POST", "/api/v1/backup")
        self.assertEqual(r.status, 202, r)
        wait_until(lambda: self.health(d)["backup"]["ok_total"] == 2, 30, what="the second backup")
        h = self.health(d)
        self.assertEqual(h["backup"]["last"]["trigger"], "api")
        self.assertEqual(backups_in(bdir), sorted([new, os.path.basename(r.json["file"])]))
        db = sqlite3.connect("file:%s?mode=ro" % r.json["file"], uri=True)
        self.assertEqual(db.execute("SELECT state FROM berichten WHERE id=?", (bid,)).fetchone(), ("queued",))
        db.close()

        m = self.metrics(d)
        self.assertEqual(val(m, "acdm_backups_total", result="ok"), 2)
        self.assertEqual(val(m, "acdm_backups_total", result="failed"), 0)
        self.assertEqual(val(m, "acdm_backup_last_ok"), 1)
        self.assertEqual(val(m, "acdm_backup_last_size_bytes"), h["backup"]["last"]["bytes"])
        self.assertAlmostEqual(val(m, "acdm_backup_last_success_timestamp_seconds"),
                               h["backup"]["last"]["at_ms"] / 1000, delta=0.01)
        self.assertEqual(val(m, "acdm_backup_running"), 0)

        # the audit log says who asked for it
        audit = [(i["actor"], i["action"], i["target"]) for i in d.get_json("/api/v1/audit")["items"]]
        self.assertIn(("local", "backup", os.path.basename(r.json["file"])), audit)

    def test_a_failed_backup_degrades_health_and_leaves_no_file(self):
        where = os.path.join(self.tmp, "not-a-folder")
        open(where, "w").write("a file where the backup folder should be")
        d = self.daemon(self.backup_cfg(dir=where + "/sub", keep=3))
        h = wait_until(lambda: (lambda h: h if h["backup"]["failed_total"] == 1 else None)(self.health(d)), 30,
                       what="the failed backup")
        r = d.request("GET", "/api/v1/health", token=None)
        self.assertEqual(r.status, 200, r)            # it serves: degraded, not at risk
        self.assertEqual(h["status"], "degraded")
        self.assertEqual(h["backup"]["last"]["ok"], False)
        self.assertIn("cannot create the backup folder", h["backup"]["last"]["error"])
        self.assertTrue(any("backup" in x and "not-a-folder" in x for x in h["degraded"]), h)
        m = self.metrics(d)
        self.assertEqual(val(m, "acdm_backups_total", result="failed"), 1)
        self.assertEqual(val(m, "acdm_backup_last_ok"), 0)
        self.assertIsNone(val(m, "acdm_backup_last_success_timestamp_seconds"))

    def test_on_demand_needs_a_folder_and_the_admin(self):
        d = self.daemon()
        self.assertProblem(d.request("POST", "/api/v1/backup"), 409, "backup", "dir")
        self.assertProblem(d.request("POST", "/api/v1/backup", token=d.token("agent", "agent1")), 403)
        self.assertEqual(d.request("POST", "/api/v1/backup", token=None).status, 401)
        # acdmctl backup stays the way without a schedule, and checks its copy too
        out = os.path.join(self.tmp, "hand.db")
        res = d.ctl("backup", out)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("integrity check ok", res.stdout)
        self.assertEqual(integrity(out), "ok")
        self.assertFalse(os.path.exists(out + ".partial"))

    def test_config_errors_name_the_key_and_reload_is_all_or_nothing(self):
        bdir = os.path.join(self.tmp, "b")
        cfg = self.backup_cfg(dir=bdir, every="03:30", keep=3)
        d = self.daemon(cfg)
        self.assertEqual(self.health(d)["backup"]["every"], "03:30")
        bad = json.loads(json.dumps(cfg))
        bad["backup"]["keep"] = 5
        bad["retention"] = {"events_months": 12}
        d.write_config(bad)
        r = d.request("POST", "/api/v1/reload")
        self.assertProblem(r, 422, "retention.events_months", "13 months", "R67")
        h = self.health(d)
        self.assertEqual((h["backup"]["keep"], h["retention"]["enabled"]), (3, False))   # nothing applied
        res = subprocess.run([ACDMD, "--check", "-c", d.config_path], capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 1)
        self.assertIn("retention.events_months: 12 months is too short", res.stderr)
        for b, words in (({"dir": bdir, "every": "25x"}, ("backup.every", "HH:MM")),
                         ({"dir": bdir, "every": "24:00"}, ("backup.every",)),
                         ({"dir": bdir, "every": "1m"}, ("backup.every", "5 minutes")),
                         ({"every": "24h"}, ("missing required key \"dir\"",)),
                         ({"dir": bdir, "keep": 0}, ("backup.keep", "out of range"))):
            bad["retention"] = {"events_months": 13}
            bad["backup"] = b
            d.write_config(bad)
            r = d.request("POST", "/api/v1/reload")
            self.assertProblem(r, 422, *words)
            self.assertEqual(self.health(d)["backup"]["keep"], 3)
        good = json.loads(json.dumps(cfg))
        good["backup"]["keep"] = 5
        good["retention"] = {"events_months": 13}
        d.write_config(good)
        self.assertEqual(d.request("POST", "/api/v1/reload").status, 200)
        h = self.health(d)
        self.assertEqual((h["backup"]["keep"], h["retention"]["enabled"], h["retention"]["events_months"]),
                         (5, True, 13))


class RestoreUnderLoad(AcdmTestCase):
    def test_backup_under_rest_load_restores_into_a_second_acdmd(self):
        bdir = os.path.join(self.tmp, "backups")
        cfg = base_config(self.empty_plugin_dir(), backup={"dir": bdir, "every": "24h", "keep": 3})
        d1 = self.daemon(cfg, start=False)
        d1.start()        # the schema, and a first backup (none in the folder yet)
        wait_until(lambda: d1.get_json("/api/v1/health")["backup"]["ok_total"] == 1, 60,
                   what="the backup at start")
        d1.stop()
        fill_done(os.path.join(d1.data_dir, "acdm.db"), 15000)    # ~35 MB: the copy takes a while
        d1.start()        # a backup from just now in the folder: the next one is due in 24 h
        self.assertEqual(d1.get_json("/api/v1/health")["backup"]["ok_total"], 0)
        acked, stop, errors = [], threading.Event(), []

        def ingest(k):
            i = 0
            while not stop.is_set():
                r = d1.post_bericht({"queue": "algemeen", "kind": "chat", "from": "load%d-%d@example.nl" % (k, i),
                                     "text": "bericht %d van klant %d" % (i, k)})
                if r.status != 201:
                    errors.append(r)
                    return
                acked.append((time.time(), r.json["id"], r.json["created_ms"]))
                i += 1
        threads = [threading.Thread(target=ingest, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: len(acked) >= 40 or errors, 60, what="ingest under way")
            t_before = time.time()        # everything acknowledged by now must be in the backup
            r = d1.request("POST", "/api/v1/backup")
            self.assertEqual(r.status, 202, r)
            backup_file = r.json["file"]
            wait_until(lambda: d1.get_json("/api/v1/health")["backup"]["ok_total"] == 1, 120,
                       what="the backup under load")
            n_after = len(acked)
            wait_until(lambda: len(acked) >= n_after + 10 or errors, 60, what="ingest after the backup")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(errors, [])
        last = d1.get_json("/api/v1/health")["backup"]["last"]
        self.assertEqual((last["ok"], last["file"]), (True, backup_file))
        end_ms = last["at_ms"] + last["duration_ms"]
        before = [bid for (t, bid, _) in acked if t < t_before]
        during = [bid for (_, bid, c) in acked if last["at_ms"] <= c <= end_ms]
        later = [bid for (_, bid, c) in acked if c > end_ms + 50]
        self.assertGreaterEqual(len(before), 40)
        self.assertTrue(during, "ingest went on while the backup was taken (%d ms)" % last["duration_ms"])
        self.assertTrue(later)

        # the restore, as docs/operations.md says: the copy becomes DATA_DIR/acdm.db of a stopped
        # acdmd (here a second one, with its own data folder and port), no -wal/-shm beside it
        d2 = self.daemon(base_config(self.empty_plugin_dir("plugins2")), start=False)
        os.makedirs(d2.data_dir)
        subprocess.run(["install", "-m", "0640", backup_file, os.path.join(d2.data_dir, "acdm.db")], check=True)
        for ext in ("-wal", "-shm"):
            self.assertFalse(os.path.exists(os.path.join(d2.data_dir, "acdm.db" + ext)))
        d2.start()
        for bid in before:
            self.assertEqual(d2.bericht(bid)["state"], "queued", bid)
        for bid in later:
            self.assertEqual(d2.request("GET", "/api/v1/berichten/" + bid).status, 404, bid)
        restored = d2.queue("algemeen")["waiting"]
        self.assertGreaterEqual(restored, len(before))
        self.assertLess(restored, len(acked))
        # and it routes them: the longest waiting first, to an agent of the restored acdmd
        first = min(acked, key=lambda x: x[2])[1]
        self.assertIn(first, before)
        ws = self.agent_ws(d2, "agent1")
        ws.expect("offer", 10, bericht=first)
        bid = first
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        self.assertEqual(d2.bericht(bid)["state"], "active")


if __name__ == "__main__":
    unittest.main()
