"""The supervisor websocket (docs/websocket.md "Supervisors"): hello, snapshot, a `stats`
message every second that follows a day of work (created, offered, answered, abandoned, a
quick drop left out of the service level); queue_open/queue_close and agent_* commands with
their acks, errors and audit events; the agents' queue_stats/colleagues pushes; websocket
errors that carry `re` and `bericht`; today's figures surviving a restart."""
import os
import shutil
import sqlite3
import time

from acdmtest import AcdmTestCase, PLUGINS, base_config, wait_until, WEBHOOK_TOKEN, webhook_channel


def find(items, key, value):
    for it in items:
        if it.get(key) == value:
            return it
    raise AssertionError("no %s=%r in %r" % (key, value, items))


class SupervisorSocket(AcdmTestCase):
    def start(self, **queue):
        pdir = self.empty_plugin_dir()
        shutil.copy(os.path.join(PLUGINS, "webhook.so"), pdir)
        cfg = base_config(pdir, channels=[webhook_channel("web1")])
        cfg["queues"][0].update({"sl_seconds": 20, "sl_target_pct": 80, "quick_drop_s": 2}, **queue)
        cfg["queues"].append({"name": "vergunningen", "title": "Vergunningen"})
        cfg["agents"][0]["queues"] = ["algemeen", "vergunningen"]
        self.d = self.daemon(cfg)
        return self.d

    def sup(self, role="supervisor", name="petra"):
        tok = self.d.token(role, name)
        ws = self.d.ws(tok)
        self.sockets.append(ws)
        hello = ws.expect("hello", 10)
        self.assertEqual((hello["role"], hello["name"]), (role, name), hello)
        snap = ws.expect("snapshot", 5)
        return ws, snap

    def wait_stats(self, ws, pred, what, timeout=6.0):
        """Reads stats messages until pred(queue algemeen, whole message) holds."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            m = ws.expect("stats", max(0.1, deadline - time.monotonic()) + 1.5)
            last = m
            q = find(m["queues"], "name", "algemeen")
            if pred(q, m):
                return m
        raise AssertionError("stats never showed %s; last: %r" % (what, last))

    def webhook(self, text, mid):
        return self.d.webhook_message(text, mid)

    def end(self, bid):
        self.d.webhook_end(bid)

    def test_snapshot_and_stats_follow_the_day(self):
        d = self.start()
        ws, snap = self.sup()
        # the snapshot: every queue, the channels, every agent
        self.assertEqual([q["name"] for q in snap["queues"]], ["algemeen", "vergunningen"])
        q = snap["queues"][0]
        for k in ("name", "title", "open", "strategy", "waiting", "waiting_by_kind", "longest_wait_ms", "today",
                  "sl_target_pct", "sl_seconds", "agents"):
            self.assertIn(k, q)
        self.assertEqual(q["today"], {"offered": 0, "answered": 0, "abandoned": 0, "quick_drops": 0, "moved": 0,
                                      "avg_wait_ms": 0, "avg_handle_ms": 0, "service_level_pct": None})
        self.assertEqual(q["staffing"]["agents_needed"], 0)       # nothing arrived: nobody needed
        self.assertEqual((q["sl_target_pct"], q["sl_seconds"], q["title"]), (80, 20, "Algemene vragen"))
        self.assertEqual([c["channel"] for c in snap["channels"]], ["web1", "api"])
        self.assertEqual([a["id"] for a in snap["agents"]], ["agent1", "agent2"])
        a1 = snap["agents"][0]
        self.assertEqual((a1["name"], a1["state"], a1["busy"], a1["wrapup"], a1["work"]),
                         ("Anouk", "logged_out", False, False, []))
        # a stats message comes every second, with a fresh ts
        s1 = ws.expect("stats", 3)
        s2 = ws.expect("stats", 3)
        self.assertGreaterEqual(s2["ts"] - s1["ts"], 800)
        self.assertLessEqual(s2["ts"] - s1["ts"], 2000)

        # created: waiting, offered
        b1 = self.webhook("Mijn paspoort is verlopen", "m1")
        m = self.wait_stats(ws, lambda q, m: q["waiting"] == 1 and q["today"]["offered"] == 1, "b1 waiting")
        q = find(m["queues"], "name", "algemeen")
        self.assertEqual(q["waiting_by_kind"], {"chat": 1})
        self.assertGreaterEqual(q["longest_wait_ms"], 0)
        web1 = find(m["channels"], "channel", "web1")
        self.assertEqual((web1["waiting"], web1["today"]["offered"]), (1, 1))

        # offered to an agent: no longer waiting, the agent has it as an offer
        agent = self.agent_ws(d, "agent1")
        agent.expect("offer", 5, bericht=b1)
        m = self.wait_stats(ws, lambda q, m: q["waiting"] == 0 and
                            [{k: w[k] for k in ("bericht", "state", "kind", "queue", "channel", "from")}
                             for w in find(m["agents"], "id", "agent1")["work"]] == [
                                {"bericht": b1, "state": "offered", "kind": "chat", "queue": "algemeen",
                                 "channel": "web1", "from": "+31612345678"}],
                            "b1 offered to agent1")
        q = find(m["queues"], "name", "algemeen")
        self.assertEqual((q["agents"]["logged_in"], q["agents"]["ready"]), (1, 1), q)

        # answered within the service level
        self.assertEqual(agent.request({"type": "accept", "bericht": b1})["type"], "ack")
        m = self.wait_stats(ws, lambda q, m: q["today"]["answered"] == 1, "b1 answered")
        q = find(m["queues"], "name", "algemeen")
        self.assertEqual(q["today"]["service_level_pct"], 100)
        self.assertEqual(q["agents"]["busy"], 1)
        a1 = find(m["agents"], "id", "agent1")
        self.assertTrue(a1["busy"], a1)
        self.assertEqual(find(m["channels"], "channel", "web1")["active"], 1)

        # a quick drop: counted apart, not in the service level
        self.assertEqual(agent.request({"type": "not_ready", "reason": "pauze"})["type"], "ack")
        b2 = self.webhook("Hallo?", "m2")
        self.end(b2)
        m = self.wait_stats(ws, lambda q, m: q["today"]["quick_drops"] == 1, "b2 a quick drop")
        q = find(m["queues"], "name", "algemeen")
        self.assertEqual((q["today"]["abandoned"], q["today"]["service_level_pct"], q["today"]["offered"]),
                         (0, 100, 2), q)
        self.assertEqual(find(m["agents"], "id", "agent1")["reason"], "pauze")

        # abandoned after the quick-drop time: the service level drops to 1 / (1 + 1)
        b3 = self.webhook("Is er iemand?", "m3")
        time.sleep(2.3)
        self.end(b3)
        m = self.wait_stats(ws, lambda q, m: q["today"]["abandoned"] == 1, "b3 abandoned")
        q = find(m["queues"], "name", "algemeen")
        self.assertEqual((q["today"]["quick_drops"], q["today"]["service_level_pct"]), (1, 50), q)
        self.assertEqual(find(m["channels"], "channel", "web1")["today"],
                         {"offered": 3, "answered": 1, "abandoned": 1, "quick_drops": 1})

        # handled: complete (wrap-up), the average handle time appears
        self.assertEqual(agent.request({"type": "complete", "bericht": b1, "topics": ["Paspoort"]})["type"], "ack")
        m = self.wait_stats(ws, lambda q, m: q["agents"]["wrapup"] == 1, "agent1 in wrap-up")
        self.assertTrue(find(m["agents"], "id", "agent1")["wrapup"])
        self.assertEqual(agent.request({"type": "wrapup_end", "bericht": b1})["type"], "ack")
        m = self.wait_stats(ws, lambda q, m: q["today"]["avg_handle_ms"] > 0, "a handle time")

        # GET /api/v1/queues carries the same figures
        q = d.queue("algemeen")
        self.assertEqual((q["today"]["offered"], q["today"]["answered"], q["today"]["abandoned"],
                          q["today"]["quick_drops"], q["today"]["service_level_pct"]), (3, 1, 1, 1, 50), q)
        self.assertEqual(q["agents"]["not_ready"], 1, q)

        # today's figures survive a restart (rebuilt from the event log)
        for s in (ws, agent):
            s.close()
        d.stop()
        d.start()
        # (read on a worker while acdmd already serves: the figures arrive within a tick or two)
        ws, snap = self.sup()
        m = self.wait_stats(ws, lambda q, m: q["today"]["offered"] == 3, "today's figures rebuilt")
        q = find(m["queues"], "name", "algemeen")
        self.assertEqual((q["today"]["offered"], q["today"]["answered"], q["today"]["abandoned"],
                          q["today"]["quick_drops"], q["today"]["service_level_pct"]), (3, 1, 1, 1, 50), q)
        self.assertRegex(d.stderr(), r"today's figures rebuilt from \d+ events in \d+ ms \(serving meanwhile\)")

    def test_put_back_after_a_logout_is_answered_once(self):
        """Issue 14, defect 6: the agent who had it logs out, it goes back to the queue and a
        colleague takes it: offered 1, answered 1 (not 2), live, in the report and after a restart."""
        d = self.start()
        ws, _ = self.sup()
        a1 = self.agent_ws(d, "agent1")
        b1 = self.webhook("Mijn rijbewijs", "r1")
        a1.expect("offer", 5, bericht=b1)
        self.assertEqual(a1.request({"type": "accept", "bericht": b1})["type"], "ack")
        self.wait_stats(ws, lambda q, m: q["today"]["answered"] == 1, "b1 answered")
        self.assertEqual(a1.request({"type": "logout"})["type"], "ack")          # b1 back in the queue
        self.wait_stats(ws, lambda q, m: q["waiting"] == 1, "b1 waiting again")
        a2 = self.agent_ws(d, "agent2")
        a2.expect("offer", 5, bericht=b1)
        self.assertEqual(a2.request({"type": "accept", "bericht": b1})["type"], "ack")
        m = self.wait_stats(ws, lambda q, m: find(m["agents"], "id", "agent2")["busy"], "agent2 has b1")
        q = find(m["queues"], "name", "algemeen")
        self.assertEqual((q["today"]["offered"], q["today"]["answered"], q["today"]["service_level_pct"]), (1, 1, 100), q)
        self.assertEqual(find(m["channels"], "channel", "web1")["today"]["answered"], 1)
        sup = d.token("supervisor", "petra")
        rep = d.request("GET", "/api/v1/reports?kind=queues&period=day&interval=1d", token=sup).json
        alg = find(rep["totals"], "queue", "algemeen")
        self.assertEqual((alg["offered"], alg["answered"]), (1, 1), alg)
        ag = d.request("GET", "/api/v1/reports?kind=agents&period=day&interval=1d", token=sup).json
        self.assertEqual([(t["agent"], t["offered"], t["accepted"]) for t in ag["totals"]],
                         [("agent1", 1, 1), ("agent2", 1, 1)])   # each agent did take it
        for s in (ws, a1, a2):
            s.close()
        d.stop()
        d.start()
        ws, _ = self.sup()
        m = self.wait_stats(ws, lambda q, m: q["today"]["offered"] == 1, "today's figures rebuilt")
        q = find(m["queues"], "name", "algemeen")
        self.assertEqual((q["today"]["offered"], q["today"]["answered"]), (1, 1), q)

    def test_queue_close_and_open(self):
        d = self.start()
        ws, _ = self.sup()
        self.assertEqual(ws.request({"type": "queue_close", "queue": "algemeen"}), {"type": "ack", "re": "queue_close"})
        r = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "jan@example.nl", "text": "hoi"})
        self.assertEqual((r.status, r.json["outcome"], r.json["state"]), (201, "closed", "closed"), r)
        self.assertEqual(r.json["closed_text"], "De chat is gesloten, probeer het later.")
        m = self.wait_stats(ws, lambda q, m: q["open"] is False, "algemeen closed")
        self.assertEqual(ws.request({"type": "queue_open", "queue": "algemeen"})["type"], "ack")
        r = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "jan@example.nl", "text": "hoi"})
        self.assertEqual(r.json["outcome"], "queued", r)
        self.wait_stats(ws, lambda q, m: q["open"] is True, "algemeen open again")
        # bad input: each answered with an error naming the problem, re = the request
        e = ws.request({"type": "queue_close", "queue": "algmeen"})
        self.assertEqual((e["type"], e["code"], e["re"]), ("error", "not_found", "queue_close"), e)
        self.assertIn("algmeen", e["text"])
        e = ws.request({"type": "queue_open"})
        self.assertEqual((e["code"], e["re"]), ("invalid", "queue_open"), e)
        self.assertIn("queue", e["text"])
        e = ws.request({"type": "queue_open", "queue": 7})
        self.assertEqual(e["code"], "invalid", e)
        e = ws.request({"type": "reboot"})
        self.assertEqual((e["code"], e["re"]), ("unknown_type", "reboot"), e)
        # the audit trail: who did what to which queue
        rows = self.audit_rows(d, [("queue_close", "algemeen"), ("queue_open", "algemeen")])
        acts = [(r["action"], r["target"], r["actor"]) for r in rows]
        self.assertIn(("queue_close", "algemeen", "petra"), acts)
        self.assertIn(("queue_open", "algemeen", "petra"), acts)
        self.assertNotIn("algmeen", [r["target"] for r in rows])

    def audit_rows(self, d, want=()):
        """The audit events' details, once every (action, target) of want is among them."""
        import json
        path = os.path.join(d.data_dir, "acdm.db")

        def rows():
            c = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
            try:
                got = [json.loads(x[0]) for x in
                       c.execute("SELECT detail_json FROM events WHERE type='audit' ORDER BY id")]
            finally:
                c.close()
            acts = {(r.get("action"), r.get("target")) for r in got}
            return got if got and all(w in acts for w in want) else None
        return wait_until(rows, 5, what="audit events %r in the event log" % (want,))

    def test_agent_commands(self):
        d = self.start()
        ws, _ = self.sup()
        agent = self.agent_ws(d, "agent1", login=False, ready=False)
        # login, ready from the supervisor: the agent hears it
        self.assertEqual(ws.request({"type": "agent_login", "agent": "agent1"})["type"], "ack")
        st = agent.expect("state", 5)
        self.assertEqual((st["agent"]["state"], st["agent"]["reason"]), ("not_ready", "login"))
        self.assertEqual(ws.request({"type": "agent_ready", "agent": "agent1"})["type"], "ack")
        self.assertEqual(agent.expect("state", 5)["agent"]["state"], "ready")
        # work in hand: offered and accepted
        b = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "jan@example.nl", "text": "hoi"}).json["id"]
        agent.expect("offer", 5, bericht=b)
        self.assertEqual(agent.request({"type": "accept", "bericht": b})["type"], "ack")
        # not ready with a reason; a bad reason is refused naming it
        e = ws.request({"type": "agent_not_ready", "agent": "agent1", "reason": "koffie"})
        self.assertEqual((e["type"], e["code"], e["re"]), ("error", "invalid", "agent_not_ready"), e)
        self.assertIn("koffie", e["text"])
        self.assertEqual(ws.request({"type": "agent_not_ready", "agent": "agent1", "reason": "pauze"})["type"], "ack")
        st = agent.expect("state", 5)
        self.assertEqual((st["agent"]["state"], st["agent"]["reason"]), ("not_ready", "pauze"))
        # logout from the supervisor: the agent's bericht goes back to the queue
        self.assertEqual(ws.request({"type": "agent_logout", "agent": "agent1"})["type"], "ack")
        st = agent.expect("state", 5)
        self.assertEqual(st["agent"]["state"], "logged_out")
        wait_until(lambda: d.bericht(b)["state"] == "queued", 5, what="the bericht back in its queue")
        self.assertEqual(d.queue("algemeen")["waiting"], 1)
        self.wait_stats(ws, lambda q, m: q["waiting"] == 1 and find(m["agents"], "id", "agent1")["state"] == "logged_out",
                        "the bericht waiting again")
        # a colleague logged in by the supervisor gets it
        agent2 = self.agent_ws(d, "agent2", login=False, ready=False)
        self.assertEqual(ws.request({"type": "agent_login", "agent": "agent2"})["type"], "ack")
        self.assertEqual(ws.request({"type": "agent_ready", "agent": "agent2"})["type"], "ack")
        agent2.expect("offer", 5, bericht=b)
        # errors: not possible now, unknown agent, missing or bad field
        e = ws.request({"type": "agent_ready", "agent": "agent1"})
        self.assertEqual((e["code"], e["re"]), ("state", "agent_ready"), e)
        self.assertIn("logged_out", e["text"])
        e = ws.request({"type": "agent_logout", "agent": "nobody"})
        self.assertEqual(e["code"], "not_found", e)
        self.assertIn("nobody", e["text"])
        e = ws.request({"type": "agent_login"})
        self.assertEqual((e["code"], e["re"]), ("invalid", "agent_login"), e)
        self.assertIn("agent", e["text"])
        e = ws.request({"type": "agent_not_ready", "agent": "agent1", "reason": 5})
        self.assertEqual(e["code"], "invalid", e)
        # an agent may not use supervisor commands
        e = agent.request({"type": "agent_logout", "agent": "agent2"})
        self.assertEqual((e["type"], e["code"], e["re"]), ("error", "unknown_type", "agent_logout"), e)
        e = agent.request({"type": "queue_close", "queue": "algemeen"})
        self.assertEqual(e["code"], "unknown_type", e)
        self.assertTrue(d.queue("algemeen")["open"])
        # audit
        want = [("agent_login", "agent1"), ("agent_ready", "agent1"), ("agent_not_ready", "agent1"),
                ("agent_logout", "agent1"), ("agent_login", "agent2"), ("agent_ready", "agent2")]
        rows = [r for r in self.audit_rows(d, want) if r["action"].startswith("agent_")]
        self.assertEqual({r["actor"] for r in rows}, {"petra"})
        self.assertEqual(len(rows), len(want))   # refused commands leave no audit event

    def test_admin_gets_stats_channel_token_does_not(self):
        d = self.start()
        ws, snap = self.sup("admin", "beheer")
        self.assertEqual(snap["type"], "snapshot")
        ws.expect("stats", 3)
        tok = d.token("channel:web1", "web1")
        ch = d.ws(tok)
        self.sockets.append(ch)
        self.assertEqual(ch.expect("hello", 5)["role"], "channel:web1")
        ch.expect_none("snapshot", 1.5)
        ch.expect_none("stats", 0.1)
        e = ch.request({"type": "queue_close", "queue": "algemeen"})
        self.assertEqual((e["code"], e["re"]), ("unknown_type", "queue_close"), e)

    def test_agent_pushes_queue_stats_and_colleagues(self):
        d = self.start()
        a1 = self.agent_ws(d, "agent1", ready=False)   # so that the email waits
        a2 = self.agent_ws(d, "agent2", ready=False)
        d.post_bericht({"queue": "vergunningen", "kind": "email", "from": "x@example.nl", "text": "vraag"})
        qs = a1.expect("queue_stats", 4)
        self.assertEqual([q["name"] for q in qs["queues"]], ["algemeen", "vergunningen"])
        for q in qs["queues"]:
            self.assertEqual(set(q), {"name", "title", "open", "waiting", "longest_wait_ms"})
        qs2 = a2.expect("queue_stats", 4)
        self.assertEqual([q["name"] for q in qs2["queues"]], ["algemeen"])   # only their own queues
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:    # until it shows both logged in (then it stays)
            c2 = a2.expect("colleagues", 4)
            if all(a["state"] == "not_ready" for a in c2["agents"]):
                break
        # (the first one may predate agent2's login: wait for the one that shows it)
        deadline = time.monotonic() + 6
        while True:
            col = a1.expect("colleagues", 4)
            ids = {a["id"]: a for a in col["agents"]}
            if ids.get("agent2", {}).get("state") == "not_ready" or time.monotonic() > deadline:
                break
        self.assertEqual(set(ids), {"agent1", "agent2"})
        self.assertEqual(col["total"], 2)
        self.assertEqual(set(ids["agent2"]), {"id", "name", "state", "reason", "since", "busy", "wrapup"})
        self.assertEqual((ids["agent2"]["state"], ids["agent2"]["reason"]), ("not_ready", "login"))
        # every 2 s while it changes (someone waits in vergunningen: the longest wait grows)
        t0 = time.monotonic()
        w1 = a1.expect("queue_stats", 4)
        w2 = a1.expect("queue_stats", 4)
        self.assertGreater(time.monotonic() - t0, 1.5)
        self.assertGreater(w2["queues"][1]["longest_wait_ms"], w1["queues"][1]["longest_wait_ms"])
        # unchanged: not sent again (nothing waits in algemeen, nobody changed)
        a2.expect_none("queue_stats", 2.5)
        a2.expect_none("colleagues", 0.1)
        # a colleague changes: agent2 hears it within 2 s
        self.assertEqual(a1.request({"type": "not_ready", "reason": "pauze"})["type"], "ack")
        col = a2.expect("colleagues", 3)
        self.assertEqual(find(col["agents"], "id", "agent1")["reason"], "pauze")

    def test_since_is_null_until_the_first_state_change(self):
        """An agent who has not logged in since acdmd started has no known `since`: null in the
        hello, GET /api/v1/agents and the supervisors' stats (not 0, which desks showed as a
        duration counted from 1970); after a state change it is the epoch ms of that change."""
        d = self.start()
        sup, snap = self.sup()
        self.assertIsNone(find(snap["agents"], "id", "agent2")["since"], snap)
        self.assertIsNone(d.agent("agent2")["since"])
        ws = d.ws(d.token("agent", "agent2"))
        self.sockets.append(ws)
        self.assertIsNone(ws.expect("hello", 10)["agent"]["since"])
        t0 = int(time.time() * 1000)
        self.assertEqual(ws.request({"type": "login"})["type"], "ack")
        since = d.agent("agent2")["since"]
        self.assertIsInstance(since, int)
        self.assertLess(abs(since - t0), 5000)
        st = wait_until(lambda: (lambda m: m if find(m["agents"], "id", "agent2")["since"] else None)(
            sup.expect("stats", 3)), 5, what="stats with agent2's since")
        self.assertEqual(find(st["agents"], "id", "agent2")["since"], since)

    def test_ws_errors_carry_re_and_bericht(self):
        d = self.start()
        agent = self.agent_ws(d, "agent1")
        e = agent.request({"type": "accept", "bericht": "0190f7a2-0000-7000-8000-000000000000"})
        self.assertEqual((e["type"], e["code"], e["re"], e["bericht"]),
                         ("error", "not_found", "accept", "0190f7a2-0000-7000-8000-000000000000"), e)
        e = agent.request({"type": "accept"})
        self.assertEqual((e["code"], e["re"], e["bericht"]), ("invalid", "accept", None), e)
        b = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "jan@example.nl", "text": "hoi"}).json["id"]
        agent.expect("offer", 5, bericht=b)
        e = agent.request({"type": "complete", "bericht": b})
        self.assertEqual((e["code"], e["re"], e["bericht"]), ("state", "complete", b), e)
        self.assertEqual(agent.request({"type": "accept", "bericht": b})["type"], "ack")
        # complete checks the topics against the configured list and names the unknown one
        e = agent.request({"type": "complete", "bericht": b, "topics": ["Paspoort", "Parkeren"]})
        self.assertEqual((e["code"], e["re"], e["bericht"]), ("invalid", "complete", b), e)
        self.assertIn('"Parkeren"', e["text"])
        e = agent.request({"type": "complete", "bericht": b, "topics": "Paspoort"})
        self.assertEqual(e["code"], "invalid", e)
        e = agent.request({"type": "complete", "bericht": b, "topics": [3]})
        self.assertEqual(e["code"], "invalid", e)
        self.assertIn("topics[0]", e["text"])
        self.assertEqual(d.bericht(b)["state"], "active")      # nothing happened
        self.assertEqual(agent.request({"type": "complete", "bericht": b, "topics": ["Paspoort", "Afval"]})["type"], "ack")
        ev = wait_until(lambda: [x for x in d.bericht(b)["events"] if x["type"] == "topics"], 5, what="topics event")
        self.assertEqual(ev[0]["detail"]["topics"], ["Paspoort", "Afval"])
        e = agent.request({"type": "frobnicate"})
        self.assertEqual((e["code"], e["re"]), ("unknown_type", "frobnicate"), e)
        agent.send_text("{not json")
        e = agent.expect("error", 5)
        self.assertEqual((e["code"], e["re"], e["bericht"]), ("malformed", None, None), e)


if __name__ == "__main__":
    import unittest
    unittest.main()
