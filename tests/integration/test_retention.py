"""Retention (issue 13, R67): the event log kept >= 13 months and pruned after the configured
period, thread messages, payloads and attachments of finished berichten after theirs, in slices,
with an audit entry per run; the bericht rows stay, so reports over the kept period do not change.
The old data is the real work of this run copied back in time (backdated rows)."""
import json
import os
import sqlite3
import time
import unittest

from acdmtest import AcdmTestCase, base_config, wait_until
from test_metrics import parse, val

DAY_MS = 86400000
OLD_DAYS = 430        # beyond 13 months: its events go
MID_DAYS = 60         # within 13 months, beyond the 30 days of bodies and attachments
NEW_DAYS = 10         # within every period


def local_day(days_back):
    return time.strftime("%Y-%m-%d", time.localtime(time.time() - days_back * 86400))


class Retention(AcdmTestCase):
    def report(self, d, kind, days_back):
        r = d.request("GET", "/api/v1/reports?kind=%s&period=day&interval=1d&from=%s" % (kind, local_day(days_back)))
        self.assertEqual(r.status, 200, r)
        j = r.json
        return {"rows": j["rows"], "totals": j["totals"]}

    def test_prunes_old_data_in_slices_keeps_reports_and_audits_the_run(self):
        cfg = base_config(self.empty_plugin_dir())
        cfg["queues"][0]["wrapup_s"] = 0
        d = self.daemon(cfg)
        # real work today: two chats answered, handled, completed with a topic
        agent = self.agent_ws(d, "agent1")
        bids = [d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "+3161234567%d" % i,
                                "text": "Mijn paspoort is verlopen (%d)" % i}).json["id"] for i in range(2)]
        for bid in bids:
            agent.expect("offer", 5, bericht=bid)
            self.assertEqual(agent.request({"type": "accept", "bericht": bid})["type"], "ack")
        for bid in bids:
            self.assertEqual(agent.request({"type": "complete", "bericht": bid, "topics": ["Paspoort"]})["type"], "ack")
            agent.expect("done", 5, bericht=bid)
        agent.close()
        wait_until(lambda: d.bericht(bids[1])["state"] in ("wrapup", "done"), 5, what="completed")
        d.stop()

        # ... copied back in time: OLD_DAYS, MID_DAYS and NEW_DAYS ago, as finished berichten with
        # their thread, payload and events; plus attachments, an old audit entry, an open one
        db_path = os.path.join(d.data_dir, "acdm.db")
        db = sqlite3.connect(db_path)
        events = db.execute("SELECT ts_ms,type,bericht,queue,agent,channel,kind,detail_json FROM events "
                            "WHERE type <> 'audit' AND bericht IS NOT NULL").fetchall()
        self.assertGreater(len(events), 6)
        cols = [r[1] for r in db.execute("PRAGMA table_info(berichten)")]
        rows = db.execute("SELECT * FROM berichten").fetchall()
        msgs = db.execute("SELECT bericht,ts_ms,direction,author,text,payload_json FROM messages").fetchall()
        self.assertEqual(len(rows), 2)
        self.assertGreaterEqual(len(msgs), 2)
        att_dir = os.path.join(d.data_dir, "attachments")
        os.makedirs(att_dir, exist_ok=True)
        ids = {}
        for days in (OLD_DAYS, MID_DAYS, NEW_DAYS):
            shift = days * DAY_MS
            for row in rows:
                r = dict(zip(cols, row))
                nid = "%s-%d" % (r["id"][:28], days)
                ids.setdefault(days, []).append(nid)
                r.update(id=nid, created_ms=r["created_ms"] - shift, queued_ms=r["queued_ms"] - shift,
                         updated_ms=r["updated_ms"] - shift, state="done", idem_key=None,
                         payload_json=json.dumps({"subject": "Paspoort verlopen"}))
                db.execute("INSERT INTO berichten(%s) VALUES (%s)" % (",".join(r), ",".join("?" * len(r))),
                           list(r.values()))
            for e in events:
                db.execute("INSERT INTO events(ts_ms,type,bericht,queue,agent,channel,kind,detail_json) "
                           "VALUES (?,?,?,?,?,?,?,?)",
                           (e[0] - shift, e[1], "%s-%d" % (e[2][:28], days)) + tuple(e[3:]))
            for m in msgs:
                db.execute("INSERT INTO messages(bericht,ts_ms,direction,author,text,payload_json) "
                           "VALUES (?,?,?,?,?,?)", ("%s-%d" % (m[0][:28], days), m[1] - shift) + tuple(m[2:]))
            # two attachments on the first one: one in the database, one a file
            at = ids[days][0]
            db.execute("INSERT INTO attachments(id,bericht,channel,filename,content_type,size,created_ms,data) "
                       "VALUES (?,?,'api','scan.pdf','application/pdf',5,?,?)",
                       ("att-db-%d" % days, at, int(time.time() * 1000) - shift, b"%PDF-"))
            with open(os.path.join(att_dir, "att-file-%d" % days), "wb") as f:
                f.write(b"JPEG" * 100)
            db.execute("INSERT INTO attachments(id,bericht,channel,filename,content_type,size,created_ms,data,file) "
                       "VALUES (?,?,'api','foto.jpg','image/jpeg',400,?,zeroblob(0),?)",
                       ("att-file-%d" % days, at, int(time.time() * 1000) - shift, "att-file-%d" % days))
        # many more old events (slices of 10 rows: dozens of slices)
        old_ts = int(time.time() * 1000) - OLD_DAYS * DAY_MS
        for i in range(300):
            db.execute("INSERT INTO events(ts_ms,type,bericht,queue,channel,kind) VALUES (?,?,?,?,?,?)",
                       (old_ts + i, "message_in", ids[OLD_DAYS][0], "algemeen", "api", "chat"))
        db.execute("INSERT INTO events(ts_ms,type,detail_json) VALUES (?, 'audit', ?)",
                   (old_ts, json.dumps({"actor": "local", "role": "admin", "action": "reload", "target": None})))
        # an open bericht from long ago: its thread stays whatever its age
        db.execute("INSERT INTO berichten(id,channel,kind,direction,from_addr,queue,priority,state,payload_json,"
                   "created_ms,queued_ms,updated_ms) VALUES ('open-mid','api','email','in','o@example.nl',"
                   "'algemeen',0,'queued','{\"subject\":\"Nog open\"}',?,?,?)", (old_ts,) * 3)
        db.execute("INSERT INTO messages(bericht,ts_ms,direction,author,text) VALUES "
                   "('open-mid',?,'in','o@example.nl','Ik wacht nog')", (old_ts,))
        db.commit()
        n_old_events = db.execute("SELECT count(*) FROM events WHERE ts_ms < ? AND type <> 'audit'",
                                  (old_ts + DAY_MS,)).fetchone()[0]
        n_old_msgs = db.execute("SELECT count(*) FROM messages WHERE bericht LIKE ? OR bericht LIKE ?",
                                ("%%-%d" % OLD_DAYS, "%%-%d" % MID_DAYS)).fetchone()[0]
        db.close()

        # reports before: the kept day and the day beyond 13 months
        d.start()
        before = {k: self.report(d, k, MID_DAYS) for k in ("queues", "channels", "agents", "topics")}
        self.assertEqual(before["queues"]["totals"][0]["offered"], 2, before)
        self.assertEqual([(t["topic"], t["count"]) for t in before["topics"]["totals"]], [("Paspoort", 2)])
        self.assertEqual(self.report(d, "queues", OLD_DAYS)["totals"][0]["offered"], 2)
        mid = ids[MID_DAYS][0]
        self.assertTrue(d.get_json("/api/v1/berichten/%s/messages" % mid)["messages"])
        self.assertEqual(d.request("GET", "/api/v1/attachments/att-file-%d/meta" % MID_DAYS).status, 200)
        d.stop()

        # retention on: slices of 10 rows
        cfg["retention"] = {"events_months": 13, "bodies_days": 30, "attachments_days": 30,
                            "slice_rows": 10, "pause_ms": 0}
        d.write_config(cfg)
        d.start()
        h = wait_until(lambda: (lambda h: h if h["retention"]["last_run"] else None)(d.get_json("/api/v1/health")),
                       60, what="the retention run")
        run = h["retention"]["last_run"]
        self.assertIsNone(run["error"])
        self.assertEqual(run["pruned"], {"events": n_old_events, "messages": n_old_msgs, "payloads": 4,
                                         "attachments": 4}, run)
        # the audit log says what went
        # (the entry is written behind the run's end, as every event: it shows within moments)
        audit = wait_until(lambda: [i for i in d.get_json("/api/v1/audit")["items"] if i["action"] == "retention"],
                           5, what="the retention audit entry")
        self.assertEqual(len(audit), 1, audit)
        self.assertEqual((audit[0]["actor"], audit[0]["pruned"]), ("system", run["pruned"]), audit[0])
        m = parse(d.request("GET", "/metrics").body.decode())
        self.assertEqual(val(m, "acdm_retention_pruned_total", what="events"), n_old_events)
        self.assertEqual(val(m, "acdm_retention_runs_total"), 1)

        # reports over the kept period: unchanged; beyond 13 months: gone
        after = {k: self.report(d, k, MID_DAYS) for k in before}
        self.assertEqual(after, before)
        self.assertEqual(self.report(d, "queues", OLD_DAYS)["totals"][0]["offered"], 0)
        self.assertEqual(self.report(d, "queues", NEW_DAYS)["totals"][0]["offered"], 2)
        # the bericht stays with its metadata; its thread, payload and attachments are gone
        b = d.bericht(mid)
        self.assertEqual((b["state"], b["queue"], b["channel"], b["kind"]), ("done", "algemeen", "api", "chat"))
        self.assertEqual(d.get_json("/api/v1/berichten/%s/messages" % mid)["messages"], [])
        for a in ("att-file-%d" % MID_DAYS, "att-db-%d" % MID_DAYS, "att-file-%d" % OLD_DAYS):
            self.assertEqual(d.request("GET", "/api/v1/attachments/%s/meta" % a).status, 404, a)
        self.assertFalse(os.path.exists(os.path.join(att_dir, "att-file-%d" % MID_DAYS)))
        # within every period, or still open: all kept
        new = ids[NEW_DAYS][0]
        self.assertTrue(d.get_json("/api/v1/berichten/%s/messages" % new)["messages"])
        self.assertEqual(d.request("GET", "/api/v1/attachments/att-file-%d/meta" % NEW_DAYS).status, 200)
        self.assertTrue(os.path.exists(os.path.join(att_dir, "att-file-%d" % NEW_DAYS)))
        self.assertTrue(d.get_json("/api/v1/berichten/open-mid/messages")["messages"])
        self.assertEqual(d.bericht("open-mid")["state"], "queued")
        d.stop()
        db = sqlite3.connect(db_path)
        self.assertEqual(db.execute("SELECT count(*) FROM events WHERE type='audit' AND ts_ms=?",
                                    (old_ts,)).fetchone()[0], 1)       # the audit log is not pruned
        self.assertEqual(db.execute("SELECT count(*) FROM events WHERE ts_ms < ? AND type <> 'audit'",
                                    (old_ts + DAY_MS,)).fetchone()[0], 0)
        self.assertEqual(db.execute("SELECT payload_json FROM berichten WHERE id=?", (new,)).fetchone()[0],
                         json.dumps({"subject": "Paspoort verlopen"}))
        db.close()

    def test_events_kept_less_than_13_months_is_refused(self):
        cfg = base_config(self.empty_plugin_dir(), retention={"events_months": 6})
        d = self.daemon(cfg, start=False)
        rc, err = d.start_refused()
        self.assertNotEqual(rc, 0)
        self.assertIn("retention.events_months: 6 months is too short", err)
        self.assertIn("13 months (R67)", err)


if __name__ == "__main__":
    unittest.main()
