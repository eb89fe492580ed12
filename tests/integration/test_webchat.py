"""Web chat channel (channels/webchat): a visitor's widget socket against an agent's /ws, on the
real daemon. Chat end to end with typing both ways and a resume after a dropped connection, the
waiting position, the closed queue with a left message, attachments, inactivity, and bad input
(foreign origin, oversized messages and attachments, malformed frames)."""
import base64
import json
import time

from acdmtest import PLUGINS, AcdmTestCase, WsClient, WsClosed, base_config, http_request, wait_until

ORIGIN = "http://shop.example.nl"


def webchat_config(**over):
    conf = {"allowed_origins": [ORIGIN, "http://127.0.0.1:8080"], "inactivity_s": 60,
            "reconnect_grace_s": 30,
            "max_sessions_per_address": 1000,   # every test visitor comes from 127.0.0.1
            "attachments": {"max_bytes": 4096, "types": ["text/plain", "image/png"]}}
    conf.update(over)
    cfg = base_config(PLUGINS, channels=[
        {"name": "site1", "plugin": "webchat", "queue": "algemeen", "config": conf}])
    cfg["queues"].append({"name": "berichten", "title": "Achtergelaten berichten", "strategy": "linear"})
    cfg["queues"][0]["quick_drop_s"] = 30
    return cfg


class Visitor:
    """The widget's side of the protocol."""

    def __init__(self, tc, d, resume=None, origin=ORIGIN):
        path = "/channels/site1/ws" + ("?resume=%s" % resume if resume else "")
        self.ws = WsClient(d.host, d.port, path, headers={"Origin": origin} if origin else None)
        tc.sockets.append(self.ws)
        self.hello = self.ws.expect("hello", 10)
        self.token = self.hello["token"]

    def say(self, text):
        self.ws.send({"type": "message", "text": text})

    def expect(self, type_, timeout=10, **match):
        return self.ws.expect(type_, timeout, **match)


class WebChat(AcdmTestCase):
    def start(self, **over):
        cfg = webchat_config(**over)
        # the base config has no quick-drop setting; ignore it when the config refuses it
        d = self.daemon(cfg, start=False)
        d.start()
        return d

    def test_widget_and_demo_are_served(self):
        d = self.start()
        r = d.request("GET", "/channels/site1/widget.js", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertIn("javascript", r.headers.get("content-type", ""))
        self.assertIn(b"acdm web chat widget", r.body)
        r = d.request("GET", "/channels/site1/widget.css", token=None)
        self.assertEqual(r.status, 200, r)
        r = d.request("GET", "/channels/site1/demo", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b'<script src="/channels/site1/widget.js"', r.body)
        self.assertIn(b'lang="nl"', r.body)

    def test_chat_end_to_end_with_typing_and_resume(self):
        d = self.start()
        agent = self.agent_ws(d, "agent1")
        v = Visitor(self, d)
        self.assertEqual(v.hello["state"], "new")
        self.assertEqual(v.hello["texts"]["send"], "Versturen")         # Dutch by default
        self.assertEqual(v.hello["transcript"], [])
        v.say("Hallo, ik heb een vraag over mijn paspoort")
        offer = agent.expect("offer", 10)
        bid = offer["bericht"]["id"]
        self.assertEqual(offer["bericht"]["channel"], "site1")
        self.assertEqual(offer["bericht"]["kind"], "chat")
        self.assertEqual(agent.request({"type": "accept", "bericht": bid})["type"], "ack")
        v.expect("agent_joined")
        v.expect("state", state="active")

        # typing both ways
        v.ws.send({"type": "typing"})
        agent.expect("typing", 5, bericht=bid)
        self.assertEqual(agent.request({"type": "typing", "bericht": bid})["type"], "ack")
        v.expect("typing")

        # agent -> visitor, visitor -> agent
        self.assertEqual(agent.request({"type": "message", "bericht": bid, "text": "Waarmee kan ik helpen?"})["type"], "ack")
        m = v.expect("message", **{"from": "agent"})
        self.assertEqual(m["text"], "Waarmee kan ik helpen?")
        v.say("Hoe lang duurt een aanvraag?")
        m = agent.expect("message", 5, bericht=bid)
        self.assertEqual(m["text"], "Hoe lang duurt een aanvraag?")

        # the network drops; the page comes back with its resume token: same conversation
        v.ws.close()
        time.sleep(0.3)
        self.assertEqual(agent.request({"type": "message", "bericht": bid, "text": "Twee weken."})["type"], "ack")
        v2 = Visitor(self, d, resume=v.token)
        self.assertEqual(v2.token, v.token)
        self.assertEqual(v2.hello["state"], "active")
        texts = [(m["from"], m["text"]) for m in v2.hello["transcript"]]
        self.assertIn(("visitor", "Hallo, ik heb een vraag over mijn paspoort"), texts)
        self.assertIn(("agent", "Twee weken."), texts)        # sent while the visitor was away
        v2.say("Dank u wel")
        m = agent.expect("message", 5, bericht=bid)
        self.assertEqual(m["text"], "Dank u wel")

        # the thread is stored with the bericht (the agent sees a customer line before its
        # group commit, so the stored copy may trail by a few ms)
        wait_until(lambda: "Dank u wel" in json.dumps(d.bericht(bid)), 5, what="the last line stored")
        stored = json.dumps(d.bericht(bid))
        self.assertIn("Dank u wel", stored)
        self.assertIn("Twee weken.", stored)

        # the visitor ends the chat: the agent hears it
        v2.ws.send({"type": "end"})
        v2.expect("ended", by="visitor")
        agent.expect("customer_ended", 5, bericht=bid)

    def test_agent_ends_and_visitor_starts_again(self):
        d = self.start()
        agent = self.agent_ws(d, "agent1")
        v = Visitor(self, d)
        v.say("Vraag 1")
        bid = agent.expect("offer", 10)["bericht"]["id"]
        agent.request({"type": "accept", "bericht": bid})
        v.expect("state", state="active")
        self.assertEqual(agent.request({"type": "complete", "bericht": bid})["type"], "ack")
        v.expect("ended", by="agent")
        agent.request({"type": "wrapup_end", "bericht": bid})
        v.say("Nog een vraag")
        offer = agent.expect("offer", 10)
        self.assertNotEqual(offer["bericht"]["id"], bid)

    def test_rating_once_on_the_bericht_and_kept_over_a_crash(self):
        """Issue 14: after an agent's conversation the visitor rates it once: invalid answers
        are refused naming the field, the rating is on the bericht (payload and a csat event),
        a second one is refused, and after a kill -9 the session still knows it was rated; a
        visitor with nothing to rate is refused; "new" starts a conversation with a new key."""
        d = self.start()
        agent = self.agent_ws(d, "agent1")
        v = Visitor(self, d)
        self.assertIn("queue", v.hello)
        self.assertEqual(v.hello["queue"]["open"], True)
        self.assertEqual(v.hello["queue"]["agents"]["logged_in"], 1, v.hello["queue"])
        v.ws.send({"type": "csat", "score": 4})
        self.assertEqual(v.expect("error")["code"], "state")        # nothing to rate yet
        v.say("Vraag over afval")
        bid = agent.expect("offer", 10)["bericht"]["id"]
        agent.request({"type": "accept", "bericht": bid})
        v.expect("state", state="active")
        self.assertEqual(agent.request({"type": "complete", "bericht": bid})["type"], "ack")
        self.assertEqual(v.expect("ended", by="agent")["csat"], True)
        v.ws.send({"type": "csat", "score": 9})
        e = v.expect("error")
        self.assertEqual(e["code"], "invalid")
        self.assertIn("score", e["text"])
        v.ws.send({"type": "csat", "score": 2, "helped": False})
        v.expect("csat_thanks")
        v.ws.send({"type": "csat", "score": 5})
        self.assertEqual(v.expect("error")["code"], "rated")
        b = wait_until(lambda: (lambda x: x if (x.get("payload") or {}).get("csat") else None)(d.bericht(bid)), 5,
                       what="the rating on the bericht")
        self.assertEqual((b["payload"]["csat"]["score"], b["payload"]["csat"]["helped"]), (2, False))
        self.assertEqual([e["detail"] for e in b["events"] if e["type"] == "csat"], [{"score": 2, "helped": False}])
        time.sleep(0.3)                                   # well past the 2 ms group commit
        d.kill9()
        self.sockets.remove(v.ws)
        self.sockets.remove(agent)
        d.start()
        v2 = Visitor(self, d, resume=v.token)
        self.assertEqual(v2.token, v.token)
        self.assertEqual(v2.hello.get("csat"), {"done": True}, v2.hello)
        v2.ws.send({"type": "csat", "score": 5})
        self.assertEqual(v2.expect("error")["code"], "rated")
        b = d.bericht(bid)
        self.assertEqual(len([e for e in b["events"] if e["type"] == "csat"]), 1)
        # a new conversation: a fresh hello (no transcript), and a new bericht with a new key
        v2.ws.send({"type": "new"})
        h = v2.expect("hello")
        self.assertEqual(h["transcript"], [])
        self.assertNotIn("csat", h)
        agent2 = self.agent_ws(d, "agent1")
        v2.say("Nog een vraag")
        offer = agent2.expect("offer", 15)
        self.assertNotEqual(offer["bericht"]["id"], bid)
        self.assertNotEqual(d.bericht(offer["bericht"]["id"])["conversation"], b["conversation"])

    def test_waiting_position_updates(self):
        d = self.start()
        v1 = Visitor(self, d)
        v1.say("eerste")
        q1 = v1.expect("queue")
        self.assertEqual(q1["position"], 1)
        v2 = Visitor(self, d)
        v2.say("tweede")
        q2 = v2.expect("queue")
        self.assertEqual(q2["position"], 2)
        self.assertIn("estimate_s", q2)
        v1.ws.send({"type": "end"})
        v1.expect("ended")
        q = v2.expect("queue", 10, position=1)       # moved up, pushed within a few seconds
        self.assertEqual(q["position"], 1)

    def test_positions_in_a_long_queue(self):
        # 70 waiting: positions come from the core's sorted position cache (64 or more waiting)
        d = self.start()
        vs = []
        for i in range(70):
            v = Visitor(self, d)
            v.say("vraag %d" % i)
            vs.append(v)
        for i, v in enumerate(vs):
            self.assertEqual(v.expect("state", state="waiting")["position"], i + 1)
        vs[0].ws.send({"type": "end"})
        vs[0].expect("ended")
        vs[10].ws.send({"type": "end"})
        vs[10].expect("ended")
        self.assertEqual(vs[69].expect("queue", 10, position=68)["position"], 68)
        self.assertEqual(vs[5].expect("queue", 10, position=5)["position"], 5)

    def test_quick_drop_when_the_visitor_leaves_at_once(self):
        d = self.start()
        v = Visitor(self, d)
        v.say("toch maar niet")
        bid = v.expect("state", state="waiting")["reference"]
        v.ws.send({"type": "end"})
        v.expect("ended")
        b = wait_until(lambda: (lambda b: b if b.get("state") == "abandoned" else None)(d.bericht(bid)), 5,
                       what="bericht abandoned")
        self.assertEqual(self._abandoned(b)["detail"]["quick_drop"], True, b)

    def _abandoned(self, b):
        ev = [e for e in b.get("events", []) if e.get("type") == "abandoned"]
        self.assertEqual(len(ev), 1, b)
        if isinstance(ev[0].get("detail"), str):
            ev[0]["detail"] = json.loads(ev[0]["detail"])
        return ev[0]

    def test_closing_the_page_while_waiting(self):
        # the page is closed (no reload comes back): after reconnect_grace_s the visitor has left,
        # recorded as of the moment the connection dropped, so still a quick drop
        cfg = webchat_config(reconnect_grace_s=3)
        cfg["queues"][0]["quick_drop_s"] = 2
        d = self.daemon(cfg)
        v = Visitor(self, d)
        v.say("even kijken")
        bid = v.expect("state", state="waiting")["reference"]
        v.ws.close()
        b = wait_until(lambda: (lambda b: b if b.get("state") == "abandoned" else None)(d.bericht(bid)), 10,
                       what="bericht abandoned after the grace")
        ab = self._abandoned(b)
        self.assertEqual(ab["detail"]["quick_drop"], True, ab)
        self.assertLess(ab["detail"]["wait_ms"], 2000, ab)
        # a reload within the grace keeps the chat waiting
        v2 = Visitor(self, d)
        v2.say("nog een")
        bid2 = v2.expect("state", state="waiting")["reference"]
        v2.ws.close()
        time.sleep(1)
        v3 = Visitor(self, d, resume=v2.token)
        self.assertEqual(v3.hello["state"], "waiting")
        time.sleep(4)
        self.assertEqual(d.bericht(bid2)["state"], "queued")

    def test_closed_queue_leave_a_message(self):
        d = self.start(leave_message_queue="berichten")
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/close").status, 200)
        v = Visitor(self, d)
        v.say("Is er iemand?")
        c = v.expect("closed")
        self.assertEqual(c["text"], "De chat is gesloten, probeer het later.")   # the queue's chat text
        v.ws.send({"type": "leave_message", "name": "Piet", "email": "piet@example.nl",
                   "text": "Bel mij terug over mijn aanvraag"})
        left = v.expect("left_message")
        self.assertIn("Bedankt", left["text"])
        wait_until(lambda: d.queue("berichten")["waiting"] == 1, 5, what="the left message waiting in berichten")
        self.assertEqual(d.queue("berichten")["waiting_by_kind"], {"email": 1})

    def test_left_message_reaches_an_agent(self):
        """Issue 9 item 12: with the shipped setup (leave_message_queue = a queue without opening
        hours) a message left while the chat is closed is work: an agent is offered it, with the
        visitor's text and e-mail address."""
        cfg = webchat_config(leave_message_queue="berichten")
        cfg["agents"].append({"id": "agent3", "name": "Sanne", "queues": ["berichten"]})
        d = self.daemon(cfg)
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/close").status, 200)
        agent = self.agent_ws(d, "agent3")
        v = Visitor(self, d)
        v.say("Is er iemand?")
        v.expect("closed")
        v.ws.send({"type": "leave_message", "name": "Piet", "email": "piet@example.nl",
                   "text": "Bel mij terug over mijn aanvraag"})
        left = v.expect("left_message")
        self.assertIn("Bedankt", left["text"])
        offer = agent.expect("offer", 10)
        b = offer["bericht"]
        self.assertEqual((b["queue"], b["kind"], b["from"]), ("berichten", "email", "piet@example.nl"), offer)
        self.assertEqual(b["id"], left["reference"])
        self.assertEqual(agent.request({"type": "accept", "bericht": b["id"]})["type"], "ack")
        stored = json.dumps(d.bericht(b["id"]))
        self.assertIn("Bel mij terug over mijn aanvraag", stored)

    def test_left_message_into_a_closed_queue_waits_and_reaches_an_agent_when_it_opens(self):
        """Issue 9 item 12: without a queue that takes it (leave_message_queue unset) a message
        left while the chat is closed still becomes work: it waits in the closed queue, offered
        to no one (not even an agent logged in to it), and is offered once the queue opens."""
        cfg = webchat_config()
        cfg["agents"].append({"id": "agent3", "name": "Sanne", "queues": ["algemeen"]})
        d = self.daemon(cfg)
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/close").status, 200)
        agent = self.agent_ws(d, "agent3")
        v = Visitor(self, d)
        v.say("Hallo?")
        v.expect("closed")
        v.ws.send({"type": "leave_message", "email": "an@example.nl", "text": "Graag een terugbelverzoek"})
        left = v.expect("left_message")
        self.assertIn("Bedankt", left["text"])
        bid = left["reference"]
        b = d.bericht(bid)
        self.assertEqual((b["state"], b["queue"], b["kind"]), ("queued", "algemeen", "email"), b)
        agent.expect_none("offer", 1.5)                  # closed: nobody is offered it yet
        self.assertEqual(d.bericht(bid)["state"], "queued")
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/open").status, 200)
        offer = agent.expect("offer", 10)
        ob = offer["bericht"]
        self.assertEqual((ob["id"], ob["kind"], ob["from"]), (bid, "email", "an@example.nl"), offer)
        self.assertEqual(agent.request({"type": "accept", "bericht": bid})["type"], "ack")
        self.assertIn("Graag een terugbelverzoek", json.dumps(d.bericht(bid)))

    def test_attachments(self):
        d = self.start()
        agent = self.agent_ws(d, "agent1")
        v = Visitor(self, d)
        v.say("Ik stuur een bestand")
        bid = agent.expect("offer", 10)["bericht"]["id"]
        agent.request({"type": "accept", "bericht": bid})
        v.expect("state", state="active")
        data = b"kenteken AB-12-CD\n" * 10
        v.ws.send({"type": "attachment_start", "filename": "brief.txt", "content_type": "text/plain", "size": len(data)})
        v.expect("attachment_ready")
        v.ws.send({"type": "attachment_chunk", "data": base64.b64encode(data[:100]).decode()})
        v.ws.send({"type": "attachment_chunk", "data": base64.b64encode(data[100:]).decode()})
        v.ws.send({"type": "attachment_end"})
        m = agent.expect("message", 5, bericht=bid)
        self.assertIn("brief.txt", m["text"])
        pushed = m["payload"]["attachments"][0]            # the push names the file
        self.assertEqual((pushed["filename"], pushed["size"]), ("brief.txt", len(data)))
        aid = wait_until(lambda: self._attachment_id(d, bid), 5, what="attachment in the thread")
        self.assertEqual(aid, pushed["id"])
        tok = d.token("agent", "agent1")
        r = http_request(d.host, d.port, "GET", "/api/v1/attachments/%s" % aid,
                         headers={"Authorization": "Bearer %s" % tok})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, data)
        self.assertEqual(r.headers.get("content-type"), "text/plain")
        self.assertIn("brief.txt", r.headers.get("content-disposition", ""))
        # another agent may not read it; an unknown id is 404
        tok2 = d.token("agent", "agent2")
        r = http_request(d.host, d.port, "GET", "/api/v1/attachments/%s" % aid,
                         headers={"Authorization": "Bearer %s" % tok2})
        self.assertProblem(r, 403, "not yours")
        self.assertProblem(d.request("GET", "/api/v1/attachments/nope"), 404, "no such attachment")

        # too big and the wrong type are refused with a clear text
        v.ws.send({"type": "attachment_start", "filename": "groot.png", "content_type": "image/png", "size": 5000})
        e = v.expect("error")
        self.assertEqual(e["code"], "too_big")
        self.assertIn("maximaal 4 kB", e["text"])
        v.ws.send({"type": "attachment_start", "filename": "x.exe", "content_type": "application/x-msdownload", "size": 10})
        e = v.expect("error")
        self.assertEqual(e["code"], "bad_type")
        self.assertIn("text/plain", e["text"])
        # a chunk larger than announced
        v.ws.send({"type": "attachment_start", "filename": "a.txt", "content_type": "text/plain", "size": 3})
        v.expect("attachment_ready")
        v.ws.send({"type": "attachment_chunk", "data": base64.b64encode(b"abcdefgh").decode()})
        e = v.expect("error")
        self.assertEqual(e["code"], "too_big")

    def _attachment_id(self, d, bid):
        b = d.bericht(bid)
        for m in b.get("messages", []):
            p = m.get("payload")
            if isinstance(p, str):
                p = json.loads(p)
            if p and p.get("attachments"):
                return p["attachments"][0]["id"]
        return None

    def test_bad_input(self):
        d = self.start(max_message_chars=50)
        # a foreign origin, or none, is refused at the upgrade
        with self.assertRaises(WsClosed) as cm:
            Visitor(self, d, origin="http://evil.example.com")
        self.assertIn("403", str(cm.exception))
        with self.assertRaises(WsClosed):
            Visitor(self, d, origin=None)
        v = Visitor(self, d)
        v.say("x" * 51)
        e = v.expect("error")
        self.assertEqual(e["code"], "too_long")
        self.assertEqual(e["text"], "Uw bericht is te lang: maximaal 50 tekens.")
        v.ws.send_text("{not json")
        e = v.expect("error")
        self.assertEqual(e["code"], "malformed")
        v.ws.send({"type": "message"})
        e = v.expect("error")
        self.assertIn("text: required", e["text"])
        v.ws.send({"type": "fly"})
        e = v.expect("error")
        self.assertIn("unknown message type", e["text"])
        v.ws.send({"type": "leave_message", "text": "hoi", "email": "geen-adres"})
        e = v.expect("error")
        self.assertIn("email", e["text"])
        # a flood: after a burst of 10 the visitor gets "too_fast" (messages_per_minute)
        v.ws.backlog.clear()
        for i in range(12):
            v.say("snel %d" % i)
        e = v.expect("error", code="too_fast")
        self.assertIn("te veel berichten", e["text"])
        # a frame over the core's 64 KiB limit closes the socket (1009), the daemon carries on
        v.ws.send_text(json.dumps({"type": "message", "text": "y" * 70000}))
        closed = None
        for _ in range(500):              # what was queued before, then the close
            try:
                v.ws.recv(5)
            except WsClosed as e:
                closed = e
                break
        self.assertIsNotNone(closed)
        self.assertIn("1009", str(closed))
        self.assertEqual(d.request("GET", "/api/v1/health").status, 200)
        # a bad instance config is refused by reload with the field named
        cfg = webchat_config()
        cfg["channels"][0]["config"]["allowed_origins"] = ["shop.example.nl"]
        d.write_config(cfg)
        self.assertProblem(d.request("POST", "/api/v1/reload"), 422, "allowed_origins[0]")

    def test_conversation_survives_a_crash_of_acdmd(self):
        """Issue 9 item 11: the visitor chats, an agent accepted, acdmd is killed (-9) and
        started again; the visitor reconnects with its resume token: the same bericht, the whole
        transcript, and its next message reaches the agent."""
        d = self.start()
        agent = self.agent_ws(d, "agent1")
        v = Visitor(self, d)
        v.say("Mijn rijbewijs is gestolen")
        bid = agent.expect("offer", 10)["bericht"]["id"]
        self.assertEqual(agent.request({"type": "accept", "bericht": bid})["type"], "ack")
        v.expect("state", state="active")
        self.assertEqual(agent.request({"type": "message", "bericht": bid, "text": "Heeft u aangifte gedaan?"})["type"], "ack")
        v.expect("message", **{"from": "agent"})
        v.say("Ja, gisteren")
        agent.expect("message", 5, bericht=bid)
        time.sleep(0.3)                                   # well past the 2 ms group commit
        d.kill9()
        self.sockets.remove(v.ws)
        self.sockets.remove(agent)
        d.start()
        # the visitor's widget reconnects first: the conversation is there, waiting for its agent
        v2 = Visitor(self, d, resume=v.token)
        self.assertEqual(v2.token, v.token)
        self.assertEqual(v2.hello.get("reference"), bid, v2.hello)
        self.assertIn(v2.hello["state"], ("waiting", "active"), v2.hello)
        texts = [(m["from"], m["text"]) for m in v2.hello["transcript"]]
        for line in [("visitor", "Mijn rijbewijs is gestolen"), ("agent", "Heeft u aangifte gedaan?"),
                     ("visitor", "Ja, gisteren")]:
            self.assertIn(line, texts)
        # the agent signs in again and gets the same bericht back
        agent2 = self.agent_ws(d, "agent1")
        offer = agent2.expect("offer", 15)
        self.assertEqual(offer["bericht"]["id"], bid)
        self.assertEqual(agent2.request({"type": "accept", "bericht": bid})["type"], "ack")
        v2.expect("state", state="active")
        v2.say("Wat moet ik nu doen?")
        m = agent2.expect("message", 5, bericht=bid)
        self.assertEqual(m["text"], "Wat moet ik nu doen?")
        self.assertEqual(agent2.request({"type": "message", "bericht": bid, "text": "Een nieuw rijbewijs aanvragen."})["type"], "ack")
        self.assertEqual(v2.expect("message", **{"from": "agent"})["text"], "Een nieuw rijbewijs aanvragen.")
        stored = json.dumps(d.bericht(bid))
        self.assertIn("Mijn rijbewijs is gestolen", stored)
        wait_until(lambda: "Wat moet ik nu doen?" in json.dumps(d.bericht(bid)), 5, what="the new line stored")
        # an unknown or malformed resume token starts a new session, never someone else's
        v3 = Visitor(self, d, resume="0" * 32)
        self.assertNotEqual(v3.token, v.token)
        self.assertEqual(v3.hello["transcript"], [])
        v4 = Visitor(self, d, resume="../etc")
        self.assertEqual(v4.hello["transcript"], [])

    def test_after_a_crash_the_chat_stays_with_its_agent_for_the_grace(self):
        """Issue 9 item 11 (restart affinity): a chat active with an agent at a kill -9 is kept
        for that agent for agent_grace_s: another ready agent is not offered it; the agent who
        comes back gets it and the visitor's next message reaches them. When the agent does not
        come back within the grace, it goes to the queue with its original queue time."""
        cfg = webchat_config()
        cfg["agents"].append({"id": "agent3", "name": "Sanne", "queues": ["algemeen"]})
        cfg["agent_grace_s"] = 4
        d = self.daemon(cfg)
        agent = self.agent_ws(d, "agent1")
        v = Visitor(self, d)
        v.say("Mijn paspoort is verlopen")
        bid = agent.expect("offer", 10)["bericht"]["id"]
        self.assertEqual(agent.request({"type": "accept", "bericht": bid})["type"], "ack")
        v.expect("state", state="active")
        queued_ms = d.bericht(bid)["queued_ms"]
        time.sleep(0.3)
        d.kill9()
        self.sockets.remove(v.ws)
        self.sockets.remove(agent)
        d.start()
        v2 = Visitor(self, d, resume=v.token)
        self.assertEqual(v2.hello.get("reference"), bid, v2.hello)
        other = self.agent_ws(d, "agent3")                 # ready first: still not theirs
        other.expect_none("offer", 1.5)
        back = self.agent_ws(d, "agent1")
        offer = back.expect("offer", 5)
        self.assertEqual(offer["bericht"]["id"], bid)
        self.assertEqual(back.request({"type": "accept", "bericht": bid})["type"], "ack")
        v2.expect("state", state="active")
        v2.say("Kan ik online een afspraak maken?")
        self.assertEqual(back.expect("message", 5, bericht=bid)["text"], "Kan ik online een afspraak maken?")
        other.expect_none("offer", 0.3)
        self.assertEqual(d.bericht(bid)["agent"], "agent1")
        # again, and agent1 stays away: after the grace agent3 gets it, queue time unchanged
        time.sleep(0.3)
        d.kill9()
        self.sockets.remove(v2.ws)
        self.sockets.remove(back)
        self.sockets.remove(other)
        d.start()
        t0 = time.monotonic()
        other = self.agent_ws(d, "agent3")
        offer = other.expect("offer", 10)
        self.assertEqual(offer["bericht"]["id"], bid)
        self.assertGreater(time.monotonic() - t0, 2.5, "offered to another agent before the grace ended")
        self.assertEqual(d.bericht(bid)["queued_ms"], queued_ms)

    def test_a_waiting_chat_survives_a_clean_restart(self):
        d = self.start()
        v = Visitor(self, d)
        v.say("Ik wacht wel even")
        bid = v.expect("state", state="waiting")["reference"]
        time.sleep(0.2)
        d.stop()
        self.sockets.remove(v.ws)
        d.start()
        v2 = Visitor(self, d, resume=v.token)
        self.assertEqual((v2.hello["state"], v2.hello.get("reference")), ("waiting", bid), v2.hello)
        self.assertEqual(v2.hello.get("position"), 1, v2.hello)
        v2.say("Nog steeds hier")
        agent = self.agent_ws(d, "agent1")
        offer = agent.expect("offer", 10)
        self.assertEqual(offer["bericht"]["id"], bid)
        wait_until(lambda: "Nog steeds hier" in json.dumps(d.bericht(bid)), 5, what="the follow-up in the same bericht")

    def test_open_and_close_flood_does_not_lock_visitors_out(self):
        """Issue 9 item 9: open-then-close upgrades used to fill max_sessions for 30 s each, and
        real visitors got 403. A session without a message is gone when its connection closes,
        and only a visitor's first message makes a bericht."""
        d = self.start(max_sessions=20)
        t0 = time.monotonic()
        for i in range(200):
            ws = WsClient(d.host, d.port, "/channels/site1/ws", headers={"Origin": ORIGIN})
            ws.expect("hello", 5)
            ws.close()
        flood_s = time.monotonic() - t0
        self.assertEqual(d.queue("algemeen")["waiting"], 0)      # no message, no bericht
        v = Visitor(self, d)                                     # a real visitor still gets in
        v.say("Ik wil een afspraak maken")
        self.assertEqual(v.expect("state", state="waiting")["position"], 1)
        # idle widgets held open count apart from conversations: 19 more conversations fit
        idle = [Visitor(self, d) for _ in range(5)]
        talking = []
        for i in range(19):
            t = Visitor(self, d)
            t.say("vraag %d" % i)
            t.expect("state", state="waiting")
            talking.append(t)
        late = Visitor(self, d)                                  # the 21st conversation waits its turn
        late.say("Hallo?")
        e = late.expect("error", code="busy")
        self.assertIn("druk", e["text"])
        self.assertEqual(d.queue("algemeen")["waiting"], 20)
        talking[0].ws.send({"type": "end"})
        talking[0].expect("ended")
        late.say("Nu wel?")
        late.expect("state", state="waiting")
        self.assertTrue(idle[0].hello["token"])
        self.assertLess(flood_s, 60)

    def test_ended_chats_do_not_block_new_visitors(self):
        """An ended conversation's session is kept a while (for a reload), but it is neither a
        conversation nor an empty session: it must not count against max_sessions."""
        d = self.start(max_sessions=3)
        for i in range(3):
            v = Visitor(self, d)
            v.say("vraag %d" % i)
            v.expect("state", state="waiting")
            v.ws.send({"type": "end"})
            v.expect("ended")
        fresh = [Visitor(self, d) for _ in range(3)]         # before: 403 (the pool looked full)
        fresh[0].say("en nu?")
        fresh[0].expect("state", state="waiting")

    def test_sessions_per_address_are_limited(self):
        d = self.start(max_sessions_per_address=5)
        held = [Visitor(self, d) for _ in range(5)]
        if "does not give visitors' addresses" in d.stderr():
            self.skipTest("this acdm core does not pass the peer address to plugins yet (ABI 1.1 host)")
        with self.assertRaises(WsClosed) as cm:
            Visitor(self, d)
        self.assertIn("403", str(cm.exception))
        held[0].ws.close()                                       # an empty session is gone at once
        wait_until(lambda: self._can_open(d), 5, what="a session free again for this address")
        held[1].say("Mijn vraag")                                # conversations count too
        held[1].expect("state", state="waiting")

    def _can_open(self, d):
        try:
            v = Visitor(self, d)
        except WsClosed:
            return False
        v.ws.close()
        return True

    def test_inactivity_ends_the_chat(self):
        d = self.start(inactivity_s=5)
        v = Visitor(self, d)
        v.say("hallo?")
        v.expect("queue")
        e = v.expect("ended", 12)
        self.assertEqual(e["by"], "timeout")
        self.assertIn("stil", e["text"])
