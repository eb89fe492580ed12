"""Hold and resume a call over the agents' websocket (R18): allowed for a voice bericht the
agent has active, refused with a reason for a chat or a second hold; the event log records
the hold and the resume with the held time, supervisors see `held` on the work item."""
import time
import unittest

from acdmtest import AcdmTestCase, wait_until

VOICE = {"queue": "algemeen", "kind": "voice", "from": "+31612345678"}
CHAT = {"queue": "algemeen", "kind": "chat", "from": "+31687654321", "text": "Hallo?"}


class Hold(AcdmTestCase):
    def test_hold_resume_and_errors(self):
        d = self.daemon()
        ws = self.agent_ws(d, "agent1")
        r = d.post_bericht(VOICE)
        self.assertEqual(r.status, 201, r)
        bid = r.json["id"]
        ws.expect("offer", 10, bericht=bid)

        # offered, not accepted yet: no hold
        err = ws.request({"type": "hold", "bericht": bid})
        self.assertEqual((err["type"], err["code"], err["re"], err["bericht"]), ("error", "state", "hold", bid), err)

        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        ws.expect("assigned", 5, bericht=bid)

        # resume when not held
        err = ws.request({"type": "resume", "bericht": bid})
        self.assertEqual((err["type"], err["code"]), ("error", "state"), err)
        self.assertIn("not on hold", err["text"], err)

        # hold: acked, pushed, visible on the agent's work item
        self.assertEqual(ws.request({"type": "hold", "bericht": bid}),
                         {"type": "ack", "re": "hold", "bericht": bid})
        ws.expect("hold", 5, bericht=bid)
        work = d.agent("agent1")["work"]
        self.assertEqual(len(work), 1, work)
        self.assertEqual({k: work[0].get(k) for k in ("bericht", "state", "kind", "held")},
                         {"bericht": bid, "state": "active", "kind": "voice", "held": True}, work)

        # hold twice: refused, says why
        err = ws.request({"type": "hold", "bericht": bid})
        self.assertEqual((err["type"], err["code"], err["bericht"]), ("error", "state", bid), err)
        self.assertIn("already on hold", err["text"], err)

        time.sleep(0.3)
        self.assertEqual(ws.request({"type": "resume", "bericht": bid})["type"], "ack")
        res = ws.expect("resume", 5, bericht=bid)
        self.assertGreaterEqual(res["held_ms"], 250, res)
        self.assertNotIn("reason", res)
        self.assertFalse(d.agent("agent1")["work"][0]["held"])

        # a chat is not a call: invalid, "hold is for calls"
        ws2 = self.agent_ws(d, "agent2")
        cid = d.post_bericht(CHAT).json["id"]
        ws2.expect("offer", 10, bericht=cid)
        self.assertEqual(ws2.request({"type": "accept", "bericht": cid})["type"], "ack")
        err = ws2.request({"type": "hold", "bericht": cid})
        self.assertEqual((err["type"], err["code"], err["re"], err["bericht"]), ("error", "invalid", "hold", cid), err)
        self.assertIn("hold is for calls", err["text"], err)
        self.assertNotIn("held", d.agent("agent2")["work"][0])
        # not the agent's call
        err = ws2.request({"type": "hold", "bericht": bid})
        self.assertEqual((err["type"], err["code"]), ("error", "state"), err)

        # the event log: hold, then resume with held_ms
        def events():
            evs = d.bericht(bid)["events"]
            return evs if "resume" in [e["type"] for e in evs] else None
        evs = wait_until(events, 5, what="event 'resume' in the bericht's event log")
        hr = [e for e in evs if e["type"] in ("hold", "resume")]
        self.assertEqual([e["type"] for e in hr], ["hold", "resume"], evs)
        self.assertEqual([e["agent"] for e in hr], ["agent1", "agent1"], hr)
        self.assertGreaterEqual(hr[1]["detail"]["held_ms"], 250, hr)
        self.assertEqual(hr[1]["detail"]["held_ms"], res["held_ms"], hr)

    def test_complete_while_held_resumes_then_wraps_up(self):
        """(A hang-up while held is the same path: tests/unit/test_model.c; an api bericht has
        no customer end over REST.)"""
        d = self.daemon()
        ws = self.agent_ws(d, "agent1")
        bid = d.post_bericht(VOICE).json["id"]
        ws.expect("offer", 10, bericht=bid)
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        self.assertEqual(ws.request({"type": "hold", "bericht": bid})["type"], "ack")
        ws.expect("hold", 5, bericht=bid)
        # supervisors see the hold on the agent's entry
        sup = d.ws(d.token("supervisor", "sup1"))
        self.sockets.append(sup)

        def held_in_stats():
            m = sup.expect("stats", 3)
            a = [a for a in m["agents"] if a["id"] == "agent1"]
            return a and a[0]["work"] and a[0]["work"][0].get("held") is True
        wait_until(held_in_stats, 10, interval=0, what="held true in the supervisors' stats")
        # the agent ends the held call: resumed first (reason complete), then wrap-up
        self.assertEqual(ws.request({"type": "complete", "bericht": bid})["type"], "ack")
        res = ws.expect("resume", 5, bericht=bid)
        self.assertEqual(res["reason"], "complete", res)
        ws.expect("wrapup", 5, bericht=bid)
        self.assertEqual(d.bericht(bid)["state"], "wrapup")


if __name__ == "__main__":
    unittest.main()
