"""The REST routes for supervisors and agents at work (core/api/api_super.c): bericht search with
pagination, a bericht's thread, topics, the topic and reason-code lists, one agent, a
supervisor's actions on agents and queue memberships. Every route: the roles it allows (agent
tokens 403 on supervisor routes, agents only their own berichten), and bad input answered with
a problem+json naming the field."""
import time
import urllib.parse

from acdmtest import AcdmTestCase, base_config, wait_until


class Routes(AcdmTestCase):
    def setUp(self):
        super().setUp()
        cfg = base_config(self.empty_plugin_dir())
        cfg["queues"].append({"name": "vergunningen", "title": "Vergunningen"})
        cfg["queues"].append({"name": "intern"})
        cfg["agents"][0]["queues"] = ["algemeen", "vergunningen"]
        self.d = self.daemon(cfg)
        self.sup = self.d.token("supervisor", "petra")
        self.agent1 = self.d.token("agent", "agent1")
        self.agent2 = self.d.token("agent", "agent2")
        self.chan = self.d.token("channel:web1", "web1")

    def post(self, frm, text="hoi", queue="algemeen", kind="chat"):
        r = self.d.post_bericht({"queue": queue, "kind": kind, "from": frm, "text": text})
        self.assertEqual(r.status, 201, r)
        return r.json["id"]

    def get(self, path, token="admin"):
        return self.d.request("GET", path, token=token)

    def roles(self, method, path, allowed, body=None):
        """401 without a token; 403 for each role not allowed."""
        self.assertProblem(self.d.request(method, path, body, token=None), 401)
        toks = {"agent": self.agent2, "supervisor": self.sup, "channel": self.chan}
        for role, tok in toks.items():
            if role not in allowed:
                self.assertProblem(self.d.request(method, path, body, token=tok), 403, "role")

    # ------------------------------------------------------------------ search

    def test_search_berichten(self):
        d = self.d
        ids = [self.post("jan@example.nl"), self.post("piet@example.nl"), self.post("jan@example.nl", queue="vergunningen"),
               self.post("+31 6 1234&5678")]
        wait_until(lambda: len(self.get("/api/v1/berichten").json["items"]) == 4, 5, what="4 berichten stored")
        r = self.get("/api/v1/berichten")
        self.assertEqual(r.status, 200, r)
        self.assertEqual([b["id"] for b in r.json["items"]], ids[::-1])   # newest first
        self.assertIsNone(r.json["next"])
        it = r.json["items"][-1]
        for k in ("id", "channel", "kind", "from", "queue", "state", "agent", "created_ms", "queued_ms", "subject"):
            self.assertIn(k, it)
        self.assertEqual((it["from"], it["queue"], it["state"], it["channel"]), ("jan@example.nl", "algemeen", "queued", "api"))
        # filters
        r = self.get("/api/v1/berichten?from=jan%40example.nl")
        self.assertEqual([b["id"] for b in r.json["items"]], [ids[2], ids[0]])
        r = self.get("/api/v1/berichten?from=" + urllib.parse.quote("+31 6 1234&5678", safe=""))
        self.assertEqual([b["id"] for b in r.json["items"]], [ids[3]], r.json)
        r = self.get("/api/v1/berichten?queue=vergunningen&state=queued&channel=api")
        self.assertEqual([b["id"] for b in r.json["items"]], [ids[2]])
        self.assertEqual(self.get("/api/v1/berichten?state=done").json["items"], [])
        created = [d.bericht(i)["created_ms"] for i in ids]
        r = self.get("/api/v1/berichten?since=%d&until=%d" % (created[1], created[2]))
        self.assertEqual([b["id"] for b in r.json["items"]], [ids[2], ids[1]])
        # pages: cursor and offset
        r = self.get("/api/v1/berichten?limit=3")
        self.assertEqual([b["id"] for b in r.json["items"]], ids[:0:-1])
        self.assertEqual(r.json["next"], ids[1])
        r2 = self.get("/api/v1/berichten?limit=3&cursor=" + r.json["next"])
        self.assertEqual(([b["id"] for b in r2.json["items"]], r2.json["next"]), ([ids[0]], None))
        r3 = self.get("/api/v1/berichten?limit=2&offset=2")
        self.assertEqual([b["id"] for b in r3.json["items"]], [ids[1], ids[0]])
        p = self.post("+31612345678")
        wait_until(lambda: self.get("/api/v1/berichten?from=%2B31612345678").json["items"], 5, what="+316 stored")
        r = self.get("/api/v1/berichten?from=+31612345678")          # + not encoded: still found
        self.assertEqual([b["id"] for b in r.json["items"]], [p], r.json)
        # supervisors may search; an agent only their own (none yet), channels not at all
        self.assertEqual(len(self.get("/api/v1/berichten", token=self.sup).json["items"]), 5)
        self.assertEqual(self.get("/api/v1/berichten", token=self.agent1).json["items"], [])
        self.assertProblem(self.get("/api/v1/berichten?agent=agent2", token=self.agent1), 403, "agent")
        self.roles("GET", "/api/v1/berichten", ("supervisor", "agent"))
        # an agent's own berichten
        ws = self.agent_ws(d, "agent1")
        off = ws.expect("offer", 5)
        self.assertEqual(ws.request({"type": "accept", "bericht": off["bericht"]["id"]})["type"], "ack")
        bid = off["bericht"]["id"]
        mine = wait_until(lambda: [b for b in self.get("/api/v1/berichten", token=self.agent1).json["items"]
                                   if b["state"] == "active"], 5, what="agent1's active bericht")
        self.assertEqual([(b["id"], b["agent"]) for b in mine], [(bid, "agent1")])
        items = self.get("/api/v1/berichten?agent=agent1", token=self.agent1).json["items"]
        self.assertTrue(items and all(b["agent"] == "agent1" for b in items), items)   # offers to agent1 too
        self.assertEqual(self.get("/api/v1/berichten", token=self.agent2).json["items"], [])

    def test_search_bad_input(self):
        cases = [
            ("limit=0", "limit"), ("limit=501", "limit"), ("limit=ten", "limit"), ("limit=-1", "limit"),
            ("offset=-3", "offset"), ("offset=x", "offset"),
            ("state=sleeping", "state"), ("since=yesterday", "since"), ("until=1.5", "until"),
            ("since=2000&until=1000", "until"), ("cursor=abc", "cursor"),
            ("cursor=0190f7a2-0000-7000-8000-000000000000&offset=2", "offset"),
            ("queue=" + "q" * 64, "queue"), ("from=" + "x" * 513, "from"), ("state=", "state"),
            ("colour=red", "colour"),
        ]
        for q, field in cases:
            self.assertProblem(self.get("/api/v1/berichten?" + q), 400, field)

    # ------------------------------------------------------------------ thread, topics

    def test_messages_and_topics(self):
        d = self.d
        b = self.post("jan@example.nl", text="Mijn paspoort is verlopen")
        ws = self.agent_ws(d, "agent1")
        ws.expect("offer", 5, bericht=b)
        # offered: agent1 may read the thread, agent2 not
        r = wait_until(lambda: self.get("/api/v1/berichten/%s/messages" % b, token=self.agent1), 5, what="thread")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["bericht"], b)
        self.assertEqual([(m["direction"], m["text"]) for m in r.json["messages"]], [("in", "Mijn paspoort is verlopen")])
        self.assertProblem(self.get("/api/v1/berichten/%s/messages" % b, token=self.agent2), 403, "not yours")
        self.assertProblem(self.get("/api/v1/berichten/%s/messages" % b, token=self.chan), 403, "not yours")
        self.assertEqual(self.get("/api/v1/berichten/%s/messages" % b, token=self.sup).status, 200)
        self.assertProblem(self.get("/api/v1/berichten/0190f7a2-0000-7000-8000-000000000000/messages"), 404, "no such bericht")
        self.assertProblem(self.d.request("GET", "/api/v1/berichten/%s/messages" % b, token=None), 401)
        self.assertEqual(ws.request({"type": "accept", "bericht": b})["type"], "ack")
        self.assertEqual(ws.request({"type": "message", "bericht": b, "text": "Kom langs met een pasfoto."})["type"], "ack")
        r = wait_until(lambda: len(self.get("/api/v1/berichten/%s/messages" % b).json["messages"]) == 2 and
                       self.get("/api/v1/berichten/%s/messages" % b), 5, what="the reply in the thread")
        self.assertEqual([(m["direction"], m["author"]) for m in r.json["messages"]], [("in", "jan@example.nl"), ("out", "agent1")])

        # topics: the agent who has it, checked against the configured list
        path = "/api/v1/berichten/%s/topics" % b
        r = d.request("POST", path, {"topics": ["Paspoort"]}, token=self.agent1)
        self.assertEqual((r.status, r.json), (200, {"bericht": b, "topics": ["Paspoort"]}), r)
        ev = wait_until(lambda: [e for e in d.bericht(b)["events"] if e["type"] == "topics"], 5, what="topics event")
        self.assertEqual((ev[0]["detail"]["topics"], ev[0]["detail"]["by"], ev[0]["agent"]), (["Paspoort"], "agent1", "agent1"))
        self.assertProblem(d.request("POST", path, {"topics": ["Paspoort", "Parkeren"]}, token=self.agent1), 400, "Parkeren", "topics[1]")
        self.assertProblem(d.request("POST", path, {"topics": "Paspoort"}), 400, "topics")
        self.assertProblem(d.request("POST", path, {"topics": []}), 400, "topics")
        self.assertProblem(d.request("POST", path, {"topics": [1]}), 400, "topics[0]")
        self.assertProblem(d.request("POST", path, {}), 400, "topics")
        self.assertProblem(d.request("POST", path, {"topics": ["Afval"], "note": "x"}), 400, "note")
        self.assertProblem(d.request("POST", path, "{topics"), 400, "body")
        self.assertProblem(d.request("POST", path, "[1]"), 400, "body")
        self.assertProblem(d.request("POST", path, {"topics": ["Afval"]}, token=self.agent2), 403, "not yours")
        self.assertProblem(d.request("POST", "/api/v1/berichten/0190f7a2-0000-7000-8000-000000000000/topics",
                                     {"topics": ["Afval"]}), 404)
        self.roles("POST", path, ("supervisor", "agent"), {"topics": ["Afval"]})
        # a supervisor may add topics afterwards, also when the bericht has ended
        self.assertEqual(ws.request({"type": "complete", "bericht": b})["type"], "ack")
        self.assertEqual(ws.request({"type": "wrapup_end", "bericht": b})["type"], "ack")
        r = d.request("POST", path, {"topics": ["Afval", "Rijbewijs"]}, token=self.sup)
        self.assertEqual(r.status, 200, r)
        # the lists
        r = self.get("/api/v1/topics", token=self.agent1)
        self.assertEqual((r.status, r.json), (200, {"topics": ["Paspoort", "Rijbewijs", "Afval"]}), r)
        r = self.get("/api/v1/reason-codes", token=self.agent1)
        self.assertEqual(r.json, {"reason_codes": [{"code": "pauze", "label": "Pauze"}]})
        for p in ("/api/v1/topics", "/api/v1/reason-codes"):
            self.assertEqual(self.get(p, token=self.sup).status, 200)
            self.roles("GET", p, ("supervisor", "agent"))

    # ------------------------------------------------------------------ agents

    def test_agent_record_and_actions(self):
        d = self.d
        r = self.get("/api/v1/agents/agent1", token=self.agent1)
        self.assertEqual((r.status, r.json["id"], r.json["state"]), (200, "agent1", "logged_out"), r)
        self.assertEqual([q["queue"] for q in r.json["queues"]], ["algemeen", "vergunningen"])
        self.assertProblem(self.get("/api/v1/agents/agent2", token=self.agent1), 403, "own")
        self.assertEqual(self.get("/api/v1/agents/agent2", token=self.sup).status, 200)
        self.assertProblem(self.get("/api/v1/agents/nobody"), 404, "nobody")
        self.assertProblem(self.d.request("GET", "/api/v1/agents/agent1", token=None), 401)
        self.assertProblem(self.get("/api/v1/agents/agent1", token=self.chan), 403, "role")

        ws = self.agent_ws(d, "agent1", login=False, ready=False)
        base = "/api/v1/agents/agent1/"
        for action in ("login", "logout", "ready", "not-ready"):
            self.roles("POST", base + action, ("supervisor",))
            self.assertProblem(d.request("POST", base + action, token=self.agent1), 403, "role agent")
            self.assertProblem(d.request("POST", "/api/v1/agents/nobody/" + action, token=self.sup), 404, "nobody")
        # ready while logged out: 409
        self.assertProblem(d.request("POST", base + "ready", token=self.sup), 409, "logged_out")
        r = d.request("POST", base + "login", token=self.sup)
        self.assertEqual((r.status, r.json["state"], r.json["reason"]), (200, "not_ready", "login"), r)
        self.assertEqual(ws.expect("state", 5)["agent"]["state"], "not_ready")
        r = d.request("POST", base + "ready", token=self.sup)
        self.assertEqual(r.json["state"], "ready")
        # not-ready: reason checked, body checked
        self.assertProblem(d.request("POST", base + "not-ready", {"reason": "koffie"}, token=self.sup), 400, "reason", "koffie")
        self.assertProblem(d.request("POST", base + "not-ready", {"reason": 3}, token=self.sup), 400, "reason")
        self.assertProblem(d.request("POST", base + "not-ready", {"why": "pauze"}, token=self.sup), 400, "why")
        self.assertProblem(d.request("POST", base + "not-ready", "{", token=self.sup), 400, "body")
        self.assertProblem(d.request("POST", base + "ready", {"now": True}, token=self.sup), 400, "now")
        r = d.request("POST", base + "not-ready", {"reason": "pauze"}, token=self.sup)
        self.assertEqual((r.status, r.json["state"], r.json["reason"]), (200, "not_ready", "pauze"), r)
        r = d.request("POST", base + "not-ready", token=self.sup)    # no body: no reason
        self.assertEqual((r.status, r.json["reason"]), (200, None), r)
        # logout puts the agent's work back in the queue
        d.request("POST", base + "ready", token=self.sup)
        b = self.post("jan@example.nl")
        ws.expect("offer", 5, bericht=b)
        self.assertEqual(ws.request({"type": "accept", "bericht": b})["type"], "ack")
        r = d.request("POST", base + "logout", token=self.sup)
        self.assertEqual((r.status, r.json["state"], r.json["work"]), (200, "logged_out", []), r)
        wait_until(lambda: d.bericht(b)["state"] == "queued", 5, what="the bericht back in the queue")

    def test_agent_queue_membership(self):
        d = self.d
        ws = self.agent_ws(d, "agent1")
        path = "/api/v1/agents/agent1/queues/vergunningen"
        ws.backlog.clear()
        r = d.request("DELETE", path, token=self.sup)
        self.assertEqual(r.status, 200, r)
        self.assertEqual({q["queue"]: q["joined"] for q in r.json["queues"]}, {"algemeen": True, "vergunningen": False})
        st = ws.expect("state", 5)
        self.assertEqual({q["queue"]: q["joined"] for q in st["agent"]["queues"]}["vergunningen"], False)
        # left: no offers from that queue
        b = self.post("x@example.nl", queue="vergunningen")
        ws.expect_none("offer", 0.7, bericht=b)
        r = d.request("PUT", path, token=self.sup)
        self.assertEqual({q["queue"]: q["joined"] for q in r.json["queues"]}["vergunningen"], True)
        ws.expect("offer", 5, bericht=b)
        # not a configured queue of the agent; unknown agent or queue; roles
        self.assertProblem(d.request("PUT", "/api/v1/agents/agent1/queues/intern", token=self.sup), 422, "intern", "not configured")
        self.assertProblem(d.request("DELETE", "/api/v1/agents/agent2/queues/vergunningen", token=self.sup), 422, "vergunningen")
        self.assertProblem(d.request("PUT", "/api/v1/agents/agent1/queues/nergens", token=self.sup), 404, "nergens")
        self.assertProblem(d.request("PUT", "/api/v1/agents/niemand/queues/algemeen", token=self.sup), 404, "niemand")
        for m in ("PUT", "DELETE"):
            self.roles(m, path, ("supervisor",))
            self.assertProblem(d.request(m, path, token=self.agent1), 403, "role agent")

    def test_queues_carry_todays_figures(self):
        self.post("jan@example.nl")
        q = self.d.queue("algemeen")
        self.assertEqual(q["today"]["offered"], 1)
        self.assertEqual((q["sl_target_pct"], q["sl_seconds"]), (80, 20))
        self.assertEqual(set(q["agents"]), {"logged_in", "ready", "busy", "wrapup", "not_ready"})
        self.assertEqual(self.get("/api/v1/queues", token=self.agent1).status, 200)


if __name__ == "__main__":
    import unittest
    unittest.main()
