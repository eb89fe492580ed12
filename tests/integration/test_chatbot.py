"""Chatbot handoff (channels/chatbot) and bot first in the web chat (channels/webchat), on the
real daemon with a small real bot server speaking the Rasa REST channel contract
(POST {sender, message} -> [{text}, {custom}...]). The bot answers two messages, then hands
off; the agent gets the transcript and summary; the bot gets nothing after the handoff. A bot
that is down or too slow hands the visitor to an agent at once. Malformed handoffs get 400
problem+json naming the field."""
import http.server
import json
import socket
import threading
import time

from acdmtest import PLUGINS, AcdmTestCase, base_config, http_request, wait_until
from test_webchat import Visitor

SUMMARY = "Klant wil een parkeervergunning aanvragen"


class RasaBot:
    """A tiny Rasa-compatible bot: 'script' maps the n-th message (0-based) to its reply list.
    Every request is recorded in self.received."""

    def __init__(self, script=None, delay=0.0, on_message=None):
        self.received = []
        self.script = script or {}
        self.delay = delay
        self.on_message = on_message
        bot = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n) or b"{}")
                bot.received.append(body)
                if bot.delay:
                    time.sleep(bot.delay)
                idx = len(bot.received) - 1
                if bot.on_message:
                    bot.on_message(idx, body)
                reply = bot.script.get(idx, [{"recipient_id": body.get("sender"), "text": "Dat weet ik niet."}])
                data = json.dumps(reply).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/webhooks/rest/webhook" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Receiver:
    """Records POSTed JSON bodies (the chatbot instance's reply_url and return_url)."""

    def __init__(self):
        self.got = []
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                rec.got.append((self.path, json.loads(self.rfile.read(n) or b"{}"), self.headers.get("Authorization")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def config(bot_url=None, bot_timeout_ms=3000, return_after_agent=False, chatbot_conf=None):
    wc = {"allowed_origins": ["http://shop.example.nl"]}
    if bot_url:
        wc["bot"] = {"url": bot_url, "timeout_ms": bot_timeout_ms, "return_after_agent": return_after_agent}
    cfg = base_config(PLUGINS, channels=[
        {"name": "site1", "plugin": "webchat", "queue": "algemeen", "config": wc},
        {"name": "bot", "plugin": "chatbot", "queue": "algemeen", "config": chatbot_conf or {}}])
    cfg["queues"].append({"name": "vergunningen", "title": "Vergunningen", "strategy": "linear"})
    cfg["agents"][0]["queues"].append("vergunningen")
    return cfg


def handoff_doc(conv="conv-1", **over):
    doc = {"conversation_id": conv,
           "customer": {"id": "klant-42", "name": "Fatima", "address": "+31612345678", "channel": "whatsapp"},
           "transcript": [{"text": "Hoi", "author": "customer", "time": "2026-11-22T09:00:00Z"},
                          {"text": "Waarmee kan ik helpen?", "author": "bot", "time": 1795338000000},
                          {"text": "Een parkeervergunning", "author": "customer"}],
           "summary": SUMMARY, "intent": "parkeervergunning"}
    doc.update(over)
    return doc


class BotFirst(AcdmTestCase):
    def test_bot_answers_twice_then_hands_off(self):
        bot = RasaBot({0: [{"text": "Hallo! Ik ben de chatbot. Waarmee kan ik helpen?"}],
                       1: [{"text": "Daarvoor verbind ik u door met een medewerker."},
                           {"custom": {"handoff": True, "summary": SUMMARY, "queue": "vergunningen"}}]})
        self.addCleanup(bot.close)
        d = self.daemon(config(bot.url))
        agent = self.agent_ws(d, "agent1")
        agent.request({"type": "join", "queue": "vergunningen"})
        v = Visitor(self, d)
        self.assertEqual(v.hello["state"], "bot")
        v.say("Goedemorgen")
        self.assertEqual(v.expect("message", **{"from": "bot"})["text"], "Hallo! Ik ben de chatbot. Waarmee kan ik helpen?")
        v.say("Ik wil een parkeervergunning")
        v.expect("message", **{"from": "bot"})
        v.expect("state", state="waiting")
        offer = agent.expect("offer", 10)
        self.assertEqual(offer["bericht"]["queue"], "vergunningen")
        self.assertEqual(offer["bericht"]["subject"], SUMMARY)           # the summary on the offer
        bid = offer["bericht"]["id"]
        b = d.bericht(bid)
        text = json.dumps(b, ensure_ascii=False)
        self.assertIn("Goedemorgen", text)                                  # the transcript is with it
        self.assertIn("Hallo! Ik ben de chatbot", text)
        agent.request({"type": "accept", "bericht": bid})
        v.expect("state", state="active")
        v.say("Ben ik nu bij een mens?")
        self.assertEqual(agent.expect("message", 5, bericht=bid)["text"], "Ben ik nu bij een mens?")
        time.sleep(0.3)
        self.assertEqual([r["message"] for r in bot.received], ["Goedemorgen", "Ik wil een parkeervergunning"])
        self.assertEqual({r["sender"] for r in bot.received}, {bot.received[0]["sender"]})

    def test_bot_down_reaches_an_agent(self):
        d = self.daemon(config("http://127.0.0.1:%d/webhooks/rest/webhook" % free_port()))
        agent = self.agent_ws(d, "agent1")
        v = Visitor(self, d)
        v.say("Hallo, is daar iemand?")
        v.expect("message", **{"from": "system"})
        offer = agent.expect("offer", 10)
        self.assertIn("Chatbot niet bereikbaar", offer["bericht"]["subject"])
        bid = offer["bericht"]["id"]
        self.assertIn("Hallo, is daar iemand?", json.dumps(d.bericht(bid)))

    def test_slow_bot_times_out_to_an_agent(self):
        bot = RasaBot(delay=3.0)
        self.addCleanup(bot.close)
        d = self.daemon(config(bot.url, bot_timeout_ms=500))
        agent = self.agent_ws(d, "agent1")
        v = Visitor(self, d)
        t0 = time.monotonic()
        v.say("Snel graag")
        agent.expect("offer", 5)
        self.assertLess(time.monotonic() - t0, 2.5)

    def test_bot_hands_off_through_the_endpoint_and_visitor_goes_back_after(self):
        holder = {}

        def on_message(idx, body):
            if idx == 1:   # the bot calls the handoff endpoint of the web chat instance
                doc = handoff_doc(conv=body["sender"], summary="Vraag over afval")
                r = http_request(holder["d"].host, holder["d"].port, "POST", "/channels/site1/handoff",
                                 body=json.dumps(doc).encode(),
                                 headers={"Authorization": "Bearer " + holder["tok"], "Content-Type": "application/json"})
                holder["resp"] = r

        bot = RasaBot({0: [{"text": "Hallo!"}], 1: [], 2: [{"text": "Ik ben er weer."}]}, on_message=on_message)
        self.addCleanup(bot.close)
        d = self.daemon(config(bot.url, return_after_agent=True))
        holder["d"] = d
        holder["tok"] = d.token("channel:site1", "rasa")
        agent = self.agent_ws(d, "agent1")
        v = Visitor(self, d)
        v.say("Hoi")
        v.expect("message", **{"from": "bot"})
        v.say("Mijn container is niet geleegd")
        offer = agent.expect("offer", 10)
        self.assertEqual(offer["bericht"]["subject"], "Vraag over afval")
        wait_until(lambda: holder.get("resp"), 5, what="the bot's handoff call answered")
        self.assertEqual(holder["resp"].status, 201, holder["resp"])
        bid = holder["resp"].json["bericht"]
        self.assertEqual(bid, offer["bericht"]["id"])
        agent.request({"type": "accept", "bericht": bid})
        agent.request({"type": "complete", "bericht": bid})
        v.expect("ended", by="agent")
        v.expect("state", state="bot")
        v.say("Nog een vraag")                                  # back to the bot
        self.assertEqual(v.expect("message", **{"from": "bot"})["text"], "Ik ben er weer.")
        self.assertEqual(len(bot.received), 3)


class Handoff(AcdmTestCase):
    def test_rest_handoff_redelivery_reply_and_return(self):
        rec = Receiver()
        self.addCleanup(rec.close)
        d = self.daemon(config(chatbot_conf={"reply_url": rec.base + "/reply", "return_url": rec.base + "/return",
                                             "callback_token": "s3cret"}))
        agent = self.agent_ws(d, "agent1")
        r = d.request("POST", "/channels/bot/handoff", handoff_doc(priority=5, skills=[]))
        self.assertEqual(r.status, 201, r)
        bid = r.json["bericht"]
        self.assertEqual(r.json["outcome"], "queued")
        offer = agent.expect("offer", 10)
        self.assertEqual(offer["bericht"]["id"], bid)
        self.assertEqual(offer["bericht"]["subject"], SUMMARY)
        self.assertEqual(offer["bericht"]["priority"], 5)
        # redelivery: the same bericht, not a second one
        r2 = d.request("POST", "/channels/bot/handoff", handoff_doc(priority=5))
        self.assertEqual(r2.status, 200, r2)
        self.assertEqual(r2.json["bericht"], bid)
        self.assertEqual(r2.json["outcome"], "duplicate")
        self.assertEqual(d.queue("algemeen")["waiting"] + len(d.agent("agent1")["work"]), 1)
        # the agent sees transcript and summary
        b = d.bericht(bid)
        payload = b.get("payload")
        if isinstance(payload, str):
            payload = json.loads(payload)
        self.assertEqual(payload["summary"], SUMMARY)
        self.assertEqual(len(payload["transcript"]), 3)
        self.assertEqual(payload["customer"]["address"], "+31612345678")
        agent.request({"type": "accept", "bericht": bid})
        agent.request({"type": "message", "bericht": bid, "text": "Ik help u verder."})
        wait_until(lambda: any(p == "/reply" for p, _, _ in rec.got), 5, what="the reply at reply_url")
        path, body, auth = [g for g in rec.got if g[0] == "/reply"][0]
        self.assertEqual(body["conversation_id"], "conv-1")
        self.assertEqual(body["text"], "Ik help u verder.")
        self.assertEqual(auth, "Bearer s3cret")
        agent.expect("delivery", 5, bericht=bid, status="delivered")
        # the customer writes again through the bot platform: it joins the bericht
        r = d.request("POST", "/channels/bot/messages", {"conversation_id": "conv-1", "text": "Dank u!"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(agent.expect("message", 5, bericht=bid)["text"], "Dank u!")
        # ended by the agent: the bot platform takes the conversation back
        agent.request({"type": "complete", "bericht": bid})
        agent.request({"type": "wrapup_end", "bericht": bid})
        wait_until(lambda: any(p == "/return" for p, _, _ in rec.got), 5, what="the return at return_url")
        body = [g for g in rec.got if g[0] == "/return"][0][1]
        self.assertEqual(body, {"conversation_id": "conv-1", "bericht": bid, "event": "ended"})

    def test_handoff_into_a_closed_queue_says_closed(self):
        """The documented closed outcome: a handoff to a closed queue is answered 201 with
        outcome "closed" and the queue's closed_text (for chat) for the bot to show; the web
        chat's own /handoff (bot first) answers the same way and shows the visitor the closed
        text with the leave-a-message form."""
        bot = RasaBot({0: [{"text": "Hallo!"}]})
        self.addCleanup(bot.close)
        d = self.daemon(config(bot.url))
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/close").status, 200)
        r = d.request("POST", "/channels/bot/handoff", handoff_doc(conv="c-closed"))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["outcome"], "closed", r.json)
        self.assertEqual(r.json["closed_text"], "De chat is gesloten, probeer het later.")
        v = Visitor(self, d)
        v.say("Hoi")
        v.expect("message", **{"from": "bot"})
        tok = d.token("channel:site1", "rasa")
        doc = handoff_doc(conv=bot.received[0]["sender"], summary="Vraag")
        r = d.request("POST", "/channels/site1/handoff", doc, token=tok)
        self.assertEqual((r.status, r.json["outcome"]), (201, "closed"), r)
        self.assertEqual(r.json["closed_text"], "De chat is gesloten, probeer het later.")
        self.assertEqual(v.expect("closed")["text"], "De chat is gesloten, probeer het later.")

    def test_handoff_auth(self):
        d = self.daemon(config())
        r = d.request("POST", "/channels/bot/handoff", handoff_doc(), token=None)
        self.assertProblem(r, 401, "bearer token")
        other = d.token("channel:site1", "x")
        r = d.request("POST", "/channels/bot/handoff", handoff_doc(), token=other)
        self.assertProblem(r, 403, "not for this chatbot instance")
        own = d.token("channel:bot", "rasa")
        r = d.request("POST", "/channels/bot/handoff", handoff_doc(conv="c-own"), token=own)
        self.assertEqual(r.status, 201, r)
        r = d.request("POST", "/channels/bot/handoff", handoff_doc(), token="bogus")
        self.assertProblem(r, 401, "unknown")

    def test_malformed_handoff_names_the_field(self):
        d = self.daemon(config())
        cases = [
            (b"{not json", "malformed JSON"),
            (b"[]", "expected a JSON object"),
            (handoff_doc(conversation_id=None), "conversation_id: required"),
            (handoff_doc(conversation_id=7), "conversation_id: expected a string"),
            (handoff_doc(customer="x"), "customer: expected an object"),
            (handoff_doc(customer={"name": "Jan"}), "customer: needs an id or an address"),
            (handoff_doc(transcript="hoi"), "transcript: expected an array"),
            (handoff_doc(transcript=[{"text": "a", "author": 3}]), "transcript[0].author: expected a string"),
            (handoff_doc(transcript=[{"text": "a", "author": "bot"}, {"author": "bot"}]), "transcript[1].text: required"),
            (handoff_doc(transcript=[{"text": "a", "author": "bot", "time": True}]), "transcript[0].time"),
            (handoff_doc(summary=None, intent=None), "summary: required"),
            (handoff_doc(priority=12), "priority: expected an integer 0..9"),
            (handoff_doc(skills=[{"name": ""}]), "skills[0]"),
            (handoff_doc(colour="blue"), "colour: unknown field"),
            (handoff_doc(queue="bestaat-niet"), "queue"),
        ]
        for body, words in cases:
            if not isinstance(body, bytes):
                body = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
            r = d.request("POST", "/channels/bot/handoff", body, headers={"Content-Type": "application/json"})
            self.assertProblem(r, 400, words)
        self.assertEqual(d.queue("algemeen")["waiting"], 0)
