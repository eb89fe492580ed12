"""Redelivered input never duplicates, on every path, and a conversation belongs to one channel
instance:
- the same Idempotency-Key sent again with a conversation key while its bericht is live is a
  duplicate (not a follow-up), and a redelivered follow-up is stored once — the customer's text
  appears once in the thread and once on the agent's screen;
- a duplicate writes nothing but the answer (no orphan thread row, no second `closed` event);
- the same customer address on two channel instances is two conversations, and each instance's
  follow-ups keep joining its own bericht (no ping-pong into new berichten)."""
import os
import shutil
import time
import unittest

from acdmtest import AcdmTestCase, PLUGINS, base_config

TOKEN1 = "tok-web1-0123456789abcdef"
TOKEN2 = "tok-web2-0123456789abcdef"


def in_texts(b):
    return [m.get("text") for m in b.get("messages", []) if m.get("direction") == "in"]


class Idempotency(AcdmTestCase):
    def start(self):
        pdir = self.empty_plugin_dir()
        shutil.copy(os.path.join(PLUGINS, "webhook.so"), pdir)
        cfg = base_config(pdir, channels=[
            {"name": "web1", "plugin": "webhook", "queue": "algemeen", "config": {"token": TOKEN1}},
            {"name": "web2", "plugin": "webhook", "queue": "algemeen", "config": {"token": TOKEN2}},
        ])
        cfg["queues"].append({"name": "dicht", "title": "Gesloten", "closed": True,
                              "closed_text": {"default": "Wij zijn gesloten."}})
        self.d = self.daemon(cfg)
        return self.d

    def hook(self, channel, token, body):
        r = self.d.request("POST", "/channels/%s/messages" % channel, body, token=None,
                           headers={"Authorization": "Bearer " + token})
        self.assertIn(r.status, (200, 201), r)
        return r.json

    def test_rest_redelivery_with_conversation_is_a_duplicate(self):
        d = self.start()
        body = {"queue": "algemeen", "kind": "chat", "from": "+31611111111",
                "conversation": "gesprek-1", "text": "Mijn paspoort is verlopen"}
        first = d.post_bericht(body, key="key-1")
        self.assertEqual(first.status, 201, first)
        again = d.post_bericht(body, key="key-1")
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json.get("outcome"), "duplicate", again.json)
        self.assertEqual(again.json["id"], first.json["id"])

        # a real follow-up, then its redelivery
        fu = dict(body, text="Kan ik langskomen?")
        r1 = d.post_bericht(fu, key="key-2")
        self.assertEqual(r1.json.get("outcome"), "followup", r1.json)
        r2 = d.post_bericht(fu, key="key-2")
        self.assertEqual(r2.json.get("outcome"), "duplicate", r2.json)
        self.assertEqual(r2.json["id"], first.json["id"])
        self.assertEqual(in_texts(d.bericht(first.json["id"])),
                         ["Mijn paspoort is verlopen", "Kan ik langskomen?"])

    def test_plugin_redelivered_followup_reaches_agent_once(self):
        d = self.start()
        a1 = self.agent_ws(d, "agent1")
        msg = {"from": "+31622222222", "conversation": "+31622222222", "text": "Hallo", "id": "m1"}
        bid = self.hook("web1", TOKEN1, msg)["bericht"]
        a1.expect("offer", 5, bericht=bid)
        self.assertEqual(a1.request({"type": "accept", "bericht": bid})["type"], "ack")
        # the first message redelivered while the bericht is live: a duplicate, not a follow-up
        self.hook("web1", TOKEN1, msg)
        fu = dict(msg, text="Zijn jullie er nog?", id="m2")
        self.hook("web1", TOKEN1, fu)
        a1.expect("message", 5, bericht=bid, text="Zijn jullie er nog?")
        self.hook("web1", TOKEN1, fu)   # Kannel/Meta-style retry of the follow-up
        a1.expect_none("message", 1.0, bericht=bid)
        self.assertEqual(in_texts(d.bericht(bid)), ["Hallo", "Zijn jullie er nog?"])

    def test_duplicate_writes_nothing(self):
        d = self.start()
        body = {"queue": "dicht", "kind": "email", "from": "a@example.nl", "text": "Vraag"}
        first = d.post_bericht(body, key="dup-closed")
        self.assertEqual(first.status, 201, first)
        self.assertEqual(first.json.get("outcome"), "closed", first.json)
        for _ in range(3):
            r = d.post_bericht(body, key="dup-closed")
            self.assertEqual(r.json.get("outcome"), "duplicate", r.json)
        ev = d.get_json("/api/v1/events?since=%d" % int((time.time() - 600) * 1000))
        closed = [e for e in ev if e.get("type") == "closed"]
        self.assertEqual([e.get("bericht") for e in closed], [first.json["id"]], closed)
        self.assertEqual(in_texts(d.bericht(first.json["id"])), ["Vraag"])

    def test_conversation_is_scoped_by_channel_instance(self):
        d = self.start()
        who = "+31633333333"
        b1 = self.hook("web1", TOKEN1, {"from": who, "conversation": who, "text": "SMS 1", "id": "a1"})
        b2 = self.hook("web2", TOKEN2, {"from": who, "conversation": who, "text": "WhatsApp 1", "id": "b1"})
        self.assertEqual(b2.get("outcome"), "queued", b2)
        self.assertNotEqual(b1["bericht"], b2["bericht"])
        f1 = self.hook("web1", TOKEN1, {"from": who, "conversation": who, "text": "SMS 2", "id": "a2"})
        f2 = self.hook("web2", TOKEN2, {"from": who, "conversation": who, "text": "WhatsApp 2", "id": "b2"})
        self.assertEqual((f1.get("outcome"), f1["bericht"]), ("followup", b1["bericht"]), f1)
        self.assertEqual((f2.get("outcome"), f2["bericht"]), ("followup", b2["bericht"]), f2)
        self.assertEqual(in_texts(d.bericht(b1["bericht"])), ["SMS 1", "SMS 2"])
        self.assertEqual(in_texts(d.bericht(b2["bericht"])), ["WhatsApp 1", "WhatsApp 2"])
        # the same key on another instance is that instance's own delivery, not a duplicate
        other = self.hook("web2", TOKEN2, {"from": who, "conversation": who, "text": "x", "id": "a1"})
        self.assertNotEqual(other.get("outcome"), "duplicate", other)


if __name__ == "__main__":
    unittest.main()
