"""1. The thin path: a bericht in over REST, offered to an agent over the websocket, handled,
wrapped up, done, with its messages and event log; 2. idempotent intake."""
import time
import unittest

from acdmtest import AcdmTestCase, base_config, wait_until

BODY = {"queue": "algemeen", "kind": "chat", "from": "+31612345678",
        "text": "Mijn paspoort is verlopen, wat nu?"}


class ThinPath(AcdmTestCase):
    def test_thin_path(self):
        d = self.daemon()
        r = d.post_bericht(BODY)
        self.assertEqual(r.status, 201, r)
        j = r.json
        bid = j.get("id")
        self.assertTrue(bid, j)
        self.assertEqual(j.get("state"), "queued", j)
        self.assertEqual(j.get("outcome"), "queued", j)
        self.assertEqual(r.headers.get("location"), "/api/v1/berichten/" + bid)
        # acknowledged after its commit: the health figures count that commit and its writes
        st = d.request("GET", "/api/v1/health", token=None).json["store"]
        self.assertGreaterEqual(st["commits"], 1, st)
        self.assertGreaterEqual(st["writes"], 2, st)          # the bericht's row and its text
        self.assertGreater(st["avg_commit_ms"], 0, st)
        self.assertGreaterEqual(st["max_commit_ms"], st["avg_commit_ms"], st)
        self.assertIsInstance(st["queued"], int, st)

        ws = self.agent_ws(d, "agent1")
        offer = ws.expect("offer", 10, bericht=bid)
        b = offer["bericht"]
        self.assertEqual(b["queue"], "algemeen", offer)
        self.assertEqual(b["channel"], "api", offer)
        self.assertEqual(b["from"], "+31612345678", offer)
        self.assertEqual(b["kind"], "chat", offer)
        self.assertEqual(offer.get("queue_title"), "Algemene vragen", offer)

        self.assertEqual(ws.request({"type": "accept", "bericht": bid}), {"type": "ack", "re": "accept", "bericht": bid})
        assigned = ws.expect("assigned", 5, bericht=bid)
        self.assertEqual(assigned["bericht"]["state"], "active", assigned)
        self.assertEqual(d.bericht(bid)["state"], "active")
        self.assertEqual(d.bericht(bid)["agent"], "agent1")

        reply = "U kunt een afspraak maken via de website."
        self.assertEqual(ws.request({"type": "message", "bericht": bid, "text": reply})["type"], "ack")
        msgs = wait_until(lambda: [m for m in d.bericht(bid)["messages"] if m.get("text") == reply],
                          5, what="the reply in GET /api/v1/berichten/{id} messages")
        self.assertEqual(msgs[0]["direction"], "out", msgs)
        self.assertEqual(msgs[0]["author"], "agent1", msgs)
        # the customer's text is in the thread too
        self.assertTrue(any(m.get("text") == BODY["text"] and m.get("direction") == "in"
                            for m in d.bericht(bid)["messages"]), d.bericht(bid)["messages"])

        ack = ws.request({"type": "complete", "bericht": bid, "topics": ["Paspoort", "Afval"]})
        self.assertEqual(ack["type"], "ack", ack)
        wr = ws.expect("wrapup", 5, bericht=bid)
        self.assertEqual(wr["seconds"], 30, wr)
        self.assertEqual(d.bericht(bid)["state"], "wrapup")

        self.assertEqual(ws.request({"type": "wrapup_end", "bericht": bid})["type"], "ack")
        ws.expect("done", 5, bericht=bid)

        def events():
            j = d.bericht(bid)
            types = [e["type"] for e in j["events"]]
            return (j, types) if "done" in types else None
        j, types = wait_until(events, 5, what="event 'done' in the bericht's event log")
        self.assertEqual(j["state"], "done", j)
        for t in ("queued", "offered", "accepted", "wrapup_start", "done", "topics"):
            self.assertIn(t, types, types)
        order = [t for t in types if t in ("queued", "offered", "accepted", "wrapup_start", "done")]
        self.assertEqual(order, ["queued", "offered", "accepted", "wrapup_start", "done"], types)
        topics = [e for e in j["events"] if e["type"] == "topics"]
        self.assertEqual(topics[0]["detail"], {"topics": ["Paspoort", "Afval"]}, topics)
        self.assertEqual(topics[0]["agent"], "agent1", topics)
        # the agent is free again
        a = d.agent("agent1")
        self.assertEqual(a["state"], "ready", a)
        self.assertEqual(a["work"], [], a)
        self.assertEqual(a["handled"], 1, a)
        self.assertEqual(d.queue("algemeen")["waiting"], 0)

    def test_wrapup_ends_by_timer(self):
        """wrapup_s over the real clock: the wrap-up ends by itself, the agent gets `done`."""
        cfg = base_config(self.empty_plugin_dir())
        cfg["queues"][0]["wrapup_s"] = 1
        d = self.daemon(cfg)
        ws = self.agent_ws(d, "agent1")
        bid = d.post_bericht(BODY).json["id"]
        ws.expect("offer", 5, bericht=bid)
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        self.assertEqual(ws.request({"type": "complete", "bericht": bid, "topics": ["Rijbewijs"]})["type"], "ack")
        self.assertEqual(ws.expect("wrapup", 5, bericht=bid)["seconds"], 1)
        t0 = time.monotonic()
        ws.expect("done", 5, bericht=bid)
        self.assertGreaterEqual(time.monotonic() - t0, 0.7)
        j = wait_until(lambda: (lambda j: j if "done" in [e["type"] for e in j["events"]] else None)(d.bericht(bid)),
                       5, what="event 'done' in the bericht's event log")
        types = [e["type"] for e in j["events"]]
        self.assertEqual([t for t in types if t in ("queued", "offered", "accepted", "wrapup_start", "done")],
                         ["queued", "offered", "accepted", "wrapup_start", "done"], types)
        self.assertEqual([e["detail"] for e in j["events"] if e["type"] == "topics"], [{"topics": ["Rijbewijs"]}])
        self.assertEqual(j["state"], "done", j)
        self.assertEqual(d.agent("agent1")["work"], [])


class Idempotency(AcdmTestCase):
    def test_same_key_twice(self):
        d = self.daemon()
        r1 = d.post_bericht(BODY, key="klant-42-bericht-1")
        self.assertEqual(r1.status, 201, r1)
        r2 = d.post_bericht(BODY, key="klant-42-bericht-1")
        self.assertEqual(r2.status, 200, r2)
        self.assertEqual(r2.json["id"], r1.json["id"], (r1.json, r2.json))
        self.assertEqual(r2.json["outcome"], "duplicate", r2.json)
        self.assertEqual(d.queue("algemeen")["waiting"], 1)
        # another key is another bericht
        r3 = d.post_bericht(BODY, key="klant-42-bericht-2")
        self.assertEqual(r3.status, 201, r3)
        self.assertNotEqual(r3.json["id"], r1.json["id"])
        self.assertEqual(d.queue("algemeen")["waiting"], 2)
        # and the duplicate is still a duplicate after the other one
        r4 = d.post_bericht(BODY, key="klant-42-bericht-1")
        self.assertEqual((r4.status, r4.json["id"]), (200, r1.json["id"]), r4)
        self.assertEqual(d.queue("algemeen")["waiting"], 2)


if __name__ == "__main__":
    unittest.main()
