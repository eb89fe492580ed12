"""What a supervisor does with berichten (docs/websocket.md "Supervisors"): reassign a waiting or
offered bericht to a chosen agent (the old offer withdrawn, capacity and the original queue time
kept, audited; refusals that say why), whisper to the agent of a live conversation (on the
agent's socket and in the event log, never through the channel to the customer), read along
(the thread as GET /api/v1/berichten/{id} gives it), why a queue is closed (by whom, until when)
across a reload, and the list of messages left while closed (GET /api/v1/berichten?source=)."""
import json
import os
import shutil
import time

from acdmtest import AcdmTestCase, PLUGINS, base_config, wait_until, WEBHOOK_TOKEN
from test_plugins import Receiver


class Supervise(AcdmTestCase):
    def start(self):
        self.rx = Receiver()
        self.addCleanup(self.rx.close)
        pdir = self.empty_plugin_dir()
        shutil.copy(os.path.join(PLUGINS, "webhook.so"), pdir)
        cfg = base_config(pdir, channels=[{
            "name": "web1", "plugin": "webhook", "queue": "algemeen",
            "config": {"token": WEBHOOK_TOKEN, "callback_url": "http://127.0.0.1:%d/cb" % self.rx.port,
                       "retry_ms": 100}}])
        cfg["agents"][1]["capacity"] = {"chat": 1, "email": 0}
        cfg["queues"].append({"name": "mail", "title": "E-mail"})
        cfg["agents"][1]["queues"] = ["algemeen", "mail"]
        self.d = self.daemon(cfg)
        return self.d

    def sup(self):
        ws = self.d.ws(self.d.token("supervisor", "petra"))
        self.sockets.append(ws)
        ws.expect("hello", 10)
        ws.expect("snapshot", 5)
        return ws

    def audit(self, action):
        return [a for a in self.d.get_json("/api/v1/audit")["items"] if a.get("action") == action]

    def test_reassign_offered_bericht_to_a_chosen_agent(self):
        d = self.start()
        sup = self.sup()
        a1 = self.agent_ws(d, "agent1")
        b1 = d.webhook_message("Mijn paspoort is verlopen", "m1")
        a1.expect("offer", 5, bericht=b1)
        queued_ms = d.bericht(b1)["queued_ms"]

        # agent2 is not logged in: refused with the reason, the offer to agent1 stands
        r = sup.request({"type": "reassign", "bericht": b1, "agent": "agent2"})
        self.assertEqual((r["type"], r["code"], r["why"], r["re"], r["bericht"]),
                         ("error", "state", "logged_out", "reassign", b1), r)
        self.assertIn("not logged in", r["text"])
        self.assertEqual(d.agent("agent1")["work"][0]["bericht"], b1)
        self.assertEqual(self.audit("reassign"), [])

        # logged in (not ready): it moves; agent1's offer is withdrawn with reason "reassigned"
        a2 = self.agent_ws(d, "agent2", ready=False)
        r = sup.request({"type": "reassign", "bericht": b1, "agent": "agent2"})
        self.assertEqual(r["type"], "ack", r)
        c = a1.expect("offer_cancelled", 5, bericht=b1)
        self.assertEqual(c["reason"], "reassigned")
        o = a2.expect("offer", 5, bericht=b1)
        self.assertEqual(o["bericht"]["queued_ms"], queued_ms)     # the original queue time
        self.assertEqual(d.agent("agent1")["work"], [])
        w2 = d.agent("agent2")["work"]
        self.assertEqual([(w["bericht"], w["state"]) for w in w2], [(b1, "offered")])
        # the dashboard's "handling now": customer, channel, since when
        self.assertEqual((w2[0]["from"], w2[0]["channel"]), ("+31612345678", "web1"))
        self.assertGreaterEqual(w2[0]["since_ms"], queued_ms)
        au = wait_until(lambda: self.audit("reassign"), 5, what="reassign audit")
        self.assertEqual((au[0]["actor"], au[0]["target"], au[0]["agent"], au[0]["from"]),
                         ("petra", b1, "agent2", ["agent1"]), au[0])

        # agent2 has no room for a second chat; the wrong kind (agent2 takes no e-mail)
        b2 = d.webhook_message("Nog een vraag", "m2", sender="+31600000002")
        r = sup.request({"type": "reassign", "bericht": b2, "agent": "agent2"})
        self.assertEqual((r["code"], r["why"]), ("full", "full"), r)
        m = d.post_bericht({"queue": "mail", "kind": "email", "from": "jan@example.nl", "text": "Vraag"})
        self.assertEqual(m.status, 201, m)
        r = sup.request({"type": "reassign", "bericht": m.json["id"], "agent": "agent2"})
        self.assertEqual((r["code"], r["why"]), ("invalid", "kind"), r)
        # REST says the same, naming the reason; an unknown agent is 404
        rr = d.request("POST", "/api/v1/berichten/%s/reassign" % m.json["id"], {"agent": "agent2"},
                       token=d.token("supervisor", "petra"))
        self.assertProblem(rr, 422, "no berichten of this kind")
        rr = d.request("POST", "/api/v1/berichten/%s/reassign" % m.json["id"], {"agent": "nobody"})
        self.assertProblem(rr, 404, "nobody")
        # an agent may not reassign
        self.assertEqual(d.request("POST", "/api/v1/berichten/%s/reassign" % b2, {"agent": "agent1"},
                                   token=d.token("agent", "agent1")).status, 403)
        # agent2 accepts: active with agent2, agent1 never had it again
        self.assertEqual(a2.request({"type": "accept", "bericht": b1})["type"], "ack")
        self.assertEqual(d.bericht(b1)["agent"], "agent2")
        self.assertEqual(d.bericht(b1)["queued_ms"], queued_ms)

    def test_whisper_reaches_the_agent_never_the_customer(self):
        d = self.start()
        sup = self.sup()
        a1 = self.agent_ws(d, "agent1")
        b1 = d.webhook_message("Hoe vraag ik een parkeervergunning aan?", "m1")
        a1.expect("offer", 5, bericht=b1)
        # not with an agent yet: refused
        r = sup.request({"type": "whisper", "bericht": b1, "text": "Zeg het nog niet"})
        self.assertEqual((r["code"], r["why"]), ("state", "not_with_agent"), r)
        self.assertEqual(a1.request({"type": "accept", "bericht": b1})["type"], "ack")
        self.assertEqual(a1.request({"type": "message", "bericht": b1, "text": "Goedemiddag!"})["type"], "ack")
        self.rx.wait(lambda p: b"Goedemiddag!" in p[2], 10)

        secret = "Vraag naar het kenteken (alleen voor jou)"
        r = sup.request({"type": "whisper", "bericht": b1, "text": secret})
        self.assertEqual(r["type"], "ack", r)
        w = a1.expect("whisper", 5, bericht=b1)
        self.assertEqual((w["text"], w["from"]), (secret, "petra"))
        self.assertIsInstance(w["ts"], int)
        # the next reply reaches the customer; the whisper never did
        self.assertEqual(a1.request({"type": "message", "bericht": b1, "text": "Wat is uw kenteken?"})["type"], "ack")
        self.rx.wait(lambda p: b"kenteken?" in p[2], 10)
        time.sleep(0.3)   # a stray delivery of the whisper would have come before the reply after it
        bodies = [p[2].decode("utf-8", "replace") for p in self.rx.posts]
        self.assertEqual(len(bodies), 2, bodies)
        self.assertFalse([b for b in bodies if "alleen voor jou" in b], bodies)
        # read along: the thread has the customer's and the agent's lines, not the whisper;
        # the whisper is in the bericht's events (the agent's desk restores it from there)
        b = d.bericht(b1)
        texts = [(m["direction"], m["text"]) for m in b["messages"]]
        self.assertIn(("in", "Hoe vraag ik een parkeervergunning aan?"), texts)
        self.assertIn(("out", "Goedemiddag!"), texts)
        self.assertNotIn(secret, json.dumps(b["messages"]))
        ev = [e for e in b["events"] if e["type"] == "whisper"]
        self.assertEqual(len(ev), 1, b["events"])
        self.assertEqual((ev[0]["detail"]["text"], ev[0]["detail"]["by"], ev[0]["agent"]), (secret, "petra", "agent1"))
        self.assertEqual(self.audit("whisper")[0]["target"], b1)
        # the channel's own token reads the bericht without the whisper
        ch = d.request("GET", "/api/v1/berichten/" + b1, token=d.token("channel:web1", "web1"))
        self.assertEqual(ch.status, 200, ch)
        self.assertNotIn(secret, json.dumps(ch.json))
        self.assertTrue([e for e in ch.json["events"] if e["type"] == "accepted"], ch.json["events"])
        # REST: empty text refused with the field named
        rr = d.request("POST", "/api/v1/berichten/%s/whisper" % b1, {"text": ""})
        self.assertProblem(rr, 400, "text")

    def test_queue_status_says_who_closed_it_and_survives_a_reload(self):
        d = self.start()
        tok = d.token("supervisor", "petra")
        st = d.queue("algemeen")["status"]
        self.assertEqual((st["why"], st["manual_closed"], st["schedule"], st["schedule_open"], st["until_ms"]),
                         (None, False, None, True, None), st)
        t0 = int(time.time() * 1000)
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/close", token=tok).status, 200)
        st = d.queue("algemeen")["status"]
        self.assertEqual((st["why"], st["manual_closed"], st["by"]), ("manual", True, "petra"), st)
        self.assertGreaterEqual(st["at_ms"], t0 - 1000)
        # a config reload keeps the manual close and who did it
        self.assertEqual(d.request("POST", "/api/v1/reload").status, 200)
        st = d.queue("algemeen")["status"]
        self.assertEqual((st["why"], st["by"]), ("manual", "petra"), st)
        # the supervisors' stats say the same
        sup = self.sup()
        q = [q for q in sup.expect("stats", 3)["queues"] if q["name"] == "algemeen"][0]
        self.assertEqual((q["open"], q["status"]["why"], q["status"]["by"]), (False, "manual", "petra"))
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/open", token=tok).status, 200)
        st = d.queue("algemeen")["status"]
        self.assertEqual((st["why"], st["manual_closed"]), (None, False), st)

    def test_left_messages_are_found_by_their_source(self):
        d = self.start()
        left = d.post_bericht({"queue": "mail", "kind": "email", "from": "els@example.nl", "text": "Bel mij terug",
                               "payload": {"source": "webchat-leave-message", "name": "Els"}})
        self.assertEqual(left.status, 201, left)
        other = d.post_bericht({"queue": "mail", "kind": "email", "from": "jan@example.nl", "text": "Vraag"})
        self.assertEqual(other.status, 201, other)
        items = d.get_json("/api/v1/berichten?source=webchat-leave-message")["items"]
        self.assertEqual([i["id"] for i in items], [left.json["id"]])
        self.assertEqual((items[0]["from"], items[0]["state"], items[0]["agent"]), ("els@example.nl", "queued", None))
        # a time bound (the dashboard asks for the last 30 days) keeps it; one after it finds none
        now = int(time.time() * 1000)
        items = d.get_json("/api/v1/berichten?source=webchat-leave-message&since=%d" % (now - 30 * 86400000))["items"]
        self.assertEqual([i["id"] for i in items], [left.json["id"]])
        items = d.get_json("/api/v1/berichten?source=webchat-leave-message&since=%d" % (now + 120000))["items"]
        self.assertEqual(items, [])
        r = d.request("GET", "/api/v1/berichten?source=")
        self.assertProblem(r, 400, "source")
