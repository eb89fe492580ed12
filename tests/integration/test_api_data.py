"""Stored data over REST against the real daemon: the customer view (Klantbeeld: history across
channels with topics, top topics, paging, who may see it), the event-log export (JSON and CSV,
31 days per call, acdmctl export with and without a running daemon) and the audit log."""
import csv
import io
import json
import os
import signal
import time
import urllib.parse

from acdmtest import AcdmTestCase, wait_until

JAN = "jan@example.nl"
PIET = "+31600000000"


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def handle(test, d, ws, body, topics):
    """Posts a bericht; agent ws accepts, completes with topics and ends wrap-up."""
    r = d.post_bericht(body)
    test.assertEqual(r.status, 201, r)
    bid = r.json["id"]
    ws.expect("offer", 10, bericht=bid)
    test.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
    test.assertEqual(ws.request({"type": "complete", "bericht": bid, "topics": topics})["type"], "ack")
    test.assertEqual(ws.request({"type": "wrapup_end", "bericht": bid})["type"], "ack")
    ws.expect("done", 5, bericht=bid)
    return bid


class ApiData(AcdmTestCase):
    def setUp(self):
        super().setUp()
        self.t0 = time.time()
        self.d = self.daemon()
        self.ws = self.agent_ws(self.d, "agent1")

    def history(self, address, token="admin", query=""):
        return self.d.request("GET", "/api/v1/customers/%s/history%s" % (urllib.parse.quote(address, safe=""), query),
                              token=token)

    def test_customer_history_and_top_topics(self):
        d, ws = self.d, self.ws
        p = handle(self, d, ws, {"queue": "algemeen", "kind": "voice", "from": PIET}, ["Rijbewijs"])
        b1 = handle(self, d, ws, {"queue": "algemeen", "kind": "chat", "from": JAN, "text": "paspoort?"},
                    ["Paspoort", "Afval"])
        b2 = handle(self, d, ws, {"queue": "algemeen", "kind": "email", "from": JAN, "subject": "Verlopen paspoort"},
                    ["Paspoort"])
        r = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": JAN})
        b3 = r.json["id"]
        ws.expect("offer", 10, bericht=b3)
        self.assertEqual(ws.request({"type": "accept", "bericht": b3})["type"], "ack")

        def full():
            j = self.history(JAN).json
            return j if len(j["items"]) == 3 and j["items"][1]["topics"] else None
        j = wait_until(full, 10, what="three berichten in the history")
        self.assertEqual(j["address"], JAN)
        items = j["items"]
        self.assertEqual([i["id"] for i in items], [b3, b2, b1])          # newest first
        self.assertEqual([i["kind"] for i in items], ["chat", "email", "chat"])
        self.assertEqual([i["state"] for i in items], ["active", "done", "done"])
        self.assertEqual({i["handler"] for i in items}, {"agent1"})
        self.assertEqual({i["channel"] for i in items}, {"api"})
        self.assertEqual({i["queue"] for i in items}, {"algemeen"})
        self.assertEqual(items[1]["topics"], ["Paspoort"])
        self.assertEqual(sorted(items[2]["topics"]), ["Afval", "Paspoort"])
        self.assertEqual(items[1]["subject"], "Verlopen paspoort")
        self.assertTrue(items[0]["created_ms"] >= items[1]["created_ms"] >= items[2]["created_ms"])
        self.assertEqual(items[2]["date"], time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(items[2]["created_ms"] // 1000))
                         + ".%03dZ" % (items[2]["created_ms"] % 1000))
        self.assertEqual(j["top_topics"], [{"topic": "Paspoort", "count": 2}, {"topic": "Afval", "count": 1}])
        self.assertIsNone(j["next"])
        # paging
        page1 = self.history(JAN, query="?limit=2").json
        self.assertEqual([i["id"] for i in page1["items"]], [b3, b2])
        self.assertTrue(page1["next"])
        page2 = self.history(JAN, query="?limit=2&cursor=" + page1["next"]).json
        self.assertEqual([i["id"] for i in page2["items"]], [b1])
        self.assertIsNone(page2["next"])
        # another customer's history holds only theirs; an unknown address is empty, not an error
        self.assertEqual([i["id"] for i in self.history(PIET).json["items"]], [p])
        self.assertEqual(self.history("nobody@example.nl").json["items"], [])

        # who may see it: supervisors; agents only for a customer whose bericht they have now
        sup = d.token("supervisor", "sanne")
        self.assertEqual(self.history(JAN, token=sup).status, 200)
        a1 = d.token("agent", "agent1")
        self.assertEqual(self.history(JAN, token=a1).status, 200)
        self.assertProblem(self.history(PIET, token=a1), 403, "agent1 has none from " + PIET)
        a2 = d.token("agent", "agent2")
        self.assertProblem(self.history(JAN, token=a2), 403, "agent2")
        self.assertProblem(self.history(JAN, token=None), 401)
        self.assertProblem(self.history(JAN, token=d.token("channel:web1", "web1")), 403, "role channel:web1")
        # bad input names the parameter
        self.assertProblem(self.history(JAN, query="?limit=0"), 400, "limit", "1..200")
        self.assertProblem(self.history(JAN, query="?limit=abc"), 400, "limit")
        self.assertProblem(self.history(JAN, query="?cursor=XYZ"), 400, "cursor")
        self.assertProblem(self.history("x" * 600), 400, "address")

    def test_export_json_csv_and_acdmctl(self):
        d, ws = self.d, self.ws
        bid = handle(self, d, ws, {"queue": "algemeen", "kind": "chat", "from": JAN, "text": 'a "quoted", text'},
                     ["Paspoort", "Afval"])
        since, until = iso(self.t0 - 60), iso(time.time() + 60)
        q = "?since=%s&until=%s" % (since, until)
        wait_until(lambda: any(e["type"] == "topics" for e in
                               d.get_json("/api/v1/events" + q)), 10, what="the topics event")
        r = d.request("GET", "/api/v1/events" + q + "&format=json")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.content_type.startswith("application/json"))
        self.assertIn("attachment", r.headers.get("content-disposition", ""))
        events = r.json
        mine = [e for e in events if e.get("bericht") == bid]
        types = [e["type"] for e in mine]
        for t in ("queued", "offered", "accepted", "topics", "done"):
            self.assertIn(t, types)
        self.assertEqual([e["ts_ms"] for e in events], sorted(e["ts_ms"] for e in events))
        topics = [e for e in mine if e["type"] == "topics"][0]
        self.assertEqual(topics["detail"], {"topics": ["Paspoort", "Afval"]})
        self.assertEqual((topics["agent"], topics["queue"], topics["kind"]), ("agent1", "algemeen", "chat"))
        self.assertTrue(topics["ts"].endswith("Z"))

        r = d.request("GET", "/api/v1/events" + q + "&format=csv")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.content_type.startswith("text/csv"), r)
        text = r.body.decode()
        self.assertTrue(text.startswith("id,ts,ts_ms,type,bericht,queue,agent,channel,kind,detail\r\n"), text[:200])
        self.assertIn('"{""topics"":[""Paspoort"",""Afval""]}"', text)     # RFC 4180 quoting
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        by_id = {int(row["id"]): row for row in rows}
        for e in events:                          # CSV holds what JSON holds
            row = by_id[e["id"]]
            self.assertEqual(row["type"], e["type"])
            self.assertEqual(row["bericht"] or None, e.get("bericht"))
            if e.get("detail") is not None:
                self.assertEqual(json.loads(row["detail"]), e["detail"])

        # supervisors may export, agents may not
        sup = d.token("supervisor", "sanne")
        self.assertEqual(d.request("GET", "/api/v1/events" + q, token=sup).status, 200)
        self.assertProblem(d.request("GET", "/api/v1/events" + q, token=d.token("agent", "agent2")), 403, "role agent")
        # bad input names the parameter
        self.assertProblem(d.request("GET", "/api/v1/events"), 400, "since: required")
        self.assertProblem(d.request("GET", "/api/v1/events?since=yesterday"), 400, "since", "ISO 8601")
        self.assertProblem(d.request("GET", "/api/v1/events" + q + "&format=xml"), 400, "format", "json or csv")
        self.assertProblem(d.request("GET", "/api/v1/events?since=2026-01-01T00:00:00Z&until=2026-02-15T00:00:00Z"),
                           400, "until", "31 days")
        self.assertProblem(d.request("GET", "/api/v1/events?since=2026-02-01&until=2026-01-01"), 400, "until", "after since")
        self.assertProblem(d.request("GET", "/api/v1/events?since=2026-02-30"), 400, "since")

        # acdmctl export: the same rows, with the daemon running and without it
        out = os.path.join(self.tmp, "events.csv")
        res = d.ctl("export", "--since", since, "--until", until, "--format", "csv", out)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("events written to", res.stdout)
        with open(out, newline="") as f:
            ctl_rows = list(csv.DictReader(f))
        self.assertTrue({e["id"] for e in events} <= {int(x["id"]) for x in ctl_rows})
        d.stop()
        res = d.ctl("export", "--since", since, "--until", until, url=False)
        self.assertEqual(res.returncode, 0, res.stderr)
        offline = json.loads(res.stdout)
        self.assertTrue({e["id"] for e in events} <= {e["id"] for e in offline})
        self.assertEqual([e for e in offline if e["id"] == topics["id"]][0], topics)
        res = d.ctl("export", "--until", until, url=False)
        self.assertEqual(res.returncode, 2)
        self.assertIn("since: required", res.stderr)
        res = d.ctl("export", "--since", since, "--format", "xml", url=False)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--format", res.stderr)
        res = d.ctl("export", "--since", "2020-01-01", "--until", "2020-03-01", url=False)
        self.assertEqual(res.returncode, 2)
        self.assertIn("31 days", res.stderr)

    def test_audit_log(self):
        d = self.d
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/close").status, 200)
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/open").status, 200)
        self.assertEqual(d.request("POST", "/api/v1/reload").status, 200)
        d.proc.send_signal(signal.SIGHUP)

        def actions():
            items = [i for i in d.get_json("/api/v1/audit")["items"] if i["action"] != "token_create"]
            return items if len(items) >= 4 else None
        items = wait_until(actions, 10, what="four audit entries")
        got = [(i["actor"], i["role"], i["action"], i["target"]) for i in items]
        self.assertEqual(got[:4], [("local", "admin", "queue_close", "algemeen"),
                                   ("local", "admin", "queue_open", "algemeen"),
                                   ("local", "admin", "reload", None),
                                   ("system", "system", "reload", "SIGHUP")])
        self.assertTrue(all(i["ts"].endswith("Z") and i["ts_ms"] > 0 for i in items))
        # actions on the host without a token: acdmctl token create (setUp made agent1's)
        everything = d.get_json("/api/v1/audit")["items"]
        tc = [i for i in everything if i["action"] == "token_create"]
        self.assertEqual([(i["role"], i["target"]) for i in tc], [("host", "agent:agent1")])
        self.assertTrue(tc[0]["actor"])
        # exports are audited too (API and acdmctl)
        self.assertEqual(d.request("GET", "/api/v1/events?since=%s" % iso(self.t0 - 60)).status, 200)
        res = d.ctl("export", "--since", iso(self.t0 - 60), url=False)
        self.assertEqual(res.returncode, 0, res.stderr)
        ex = wait_until(lambda: [i for i in d.get_json("/api/v1/audit")["items"] if i["action"] == "export"]
                        if len([i for i in d.get_json("/api/v1/audit")["items"] if i["action"] == "export"]) == 2
                        else None, 10, what="two export audit entries")
        self.assertEqual([(i["actor"], i["role"]) for i in ex][0], ("local", "admin"))
        self.assertEqual(ex[1]["role"], "host")
        self.assertRegex(ex[0]["target"], r"^\d{4}-\d\d-\d\dT.*Z\.\.\d{4}-.*Z$")
        # a range before these actions is empty; the range is checked like the export's
        j = d.get_json("/api/v1/audit?since=2020-01-01&until=2020-01-02")
        self.assertEqual(j["items"], [])
        self.assertProblem(d.request("GET", "/api/v1/audit?since=soon"), 400, "since")
        self.assertProblem(d.request("GET", "/api/v1/audit?since=2020-01-01&until=2020-06-01"), 400, "31 days")
        # admins only
        self.assertProblem(d.request("GET", "/api/v1/audit", token=d.token("supervisor", "sanne")), 403, "role supervisor")
        self.assertProblem(d.request("GET", "/api/v1/audit", token=None), 401)
