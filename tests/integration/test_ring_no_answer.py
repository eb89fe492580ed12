"""4. Ring-no-answer over the real clock: an offer nobody accepts moves on to the next agent."""
import time
import unittest

from acdmtest import AcdmTestCase, base_config, wait_until


class RingNoAnswer(AcdmTestCase):
    def test_offer_timeout_goes_to_next_agent(self):
        cfg = base_config(self.empty_plugin_dir())
        cfg["queues"][0].update(strategy="linear", offer_timeout_s=1)
        d = self.daemon(cfg)
        a1 = self.agent_ws(d, "agent1")
        a2 = self.agent_ws(d, "agent2")
        t0 = time.monotonic()
        bid = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "+31600000001"}).json["id"]
        # linear: agent1 (first in the config) gets it first
        offer1 = a1.expect("offer", 5, bericht=bid)
        self.assertEqual(offer1.get("expires_in"), 1, offer1)
        a2.expect_none("offer", 0.3, bericht=bid)
        # agent1 does not answer
        cancel = a1.expect("offer_cancelled", 5, bericht=bid)
        waited = time.monotonic() - t0
        self.assertEqual(cancel["reason"], "timeout", cancel)
        self.assertGreaterEqual(waited, 0.8, "offer cancelled after %.2fs, before offer_timeout_s 1" % waited)
        offer2 = a2.expect("offer", 5, bericht=bid)
        self.assertEqual(offer2["bericht"]["from"], "+31600000001")
        # agent1 stays logged in and ready, its offer gone
        a = d.agent("agent1")
        self.assertEqual(a["state"], "ready", a)
        self.assertEqual(a["work"], [], a)
        # agent1 can no longer accept it; agent2 can
        self.assertEqual(a1.request({"type": "accept", "bericht": bid})["type"], "error")
        self.assertEqual(a2.request({"type": "accept", "bericht": bid})["type"], "ack")
        a2.expect("assigned", 5, bericht=bid)
        b = d.bericht(bid)
        self.assertEqual((b["state"], b["agent"]), ("active", "agent2"), b)
        wait_until(lambda: "timeout" in [e["type"] for e in d.bericht(bid)["events"]], 5,
                   what="a timeout event in the bericht's event log")


if __name__ == "__main__":
    unittest.main()
