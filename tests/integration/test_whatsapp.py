"""WhatsApp channel (channels/whatsapp) on the real daemon against a contract fake of Meta's
Graph API (tests/integration/fake_graph.py): the webhook handshake; signed deliveries (good, bad,
missing signature: 401 and nothing stored); batched entries; wamid idempotency; every message
type; media in two steps (an expired URL, a bad sha256); the agent's reply with the bearer;
statuses out of order never going backwards; the 24-hour window with templates; the error
classes (retry with pacing, never retry, the token refused); the closed queue."""
import hashlib
import json
import os
import time

import fake_graph as fg
from acdmtest import PLUGINS, AcdmTestCase, base_config, http_request, wait_until

SECRET = "app-secret-0123456789"
VERIFY = "verify-token-abc"
TOKEN = "EAAG-access-token-xyz"
PNID = "1234567890"
CITIZEN = "31612345678"
TEMPLATES = [{"name": "vraag_beantwoord", "language": "nl", "params": 1, "label": "Uw vraag is beantwoord"},
             {"name": "terugbelverzoek", "language": "nl", "params": 2, "label": "Uw terugbelverzoek"}]


class WhatsApp(AcdmTestCase):
    def start(self, probe=True, **over):
        for name, val in (("secret", SECRET), ("verify", VERIFY), ("token", TOKEN)):
            with open(os.path.join(self.tmp, name), "w") as f:
                f.write(val + "\n")
        self.g = fg.FakeGraph(TOKEN, templates={("vraag_beantwoord", "nl"): 1, ("terugbelverzoek", "nl"): 2})
        self.addCleanup(self.g.stop)
        conf = {"phone_number_id": PNID, "graph_url": self.g.url, "api_version": "v21.0",
                "access_token_file": os.path.join(self.tmp, "token"),
                "app_secret_file": os.path.join(self.tmp, "secret"),
                "verify_token_file": os.path.join(self.tmp, "verify"),
                "templates": TEMPLATES, "pair_interval_ms": 0, "retry_ms": 100}
        conf.update(over)
        cfg = base_config(PLUGINS, channels=[{"name": "wa1", "plugin": "whatsapp", "queue": "algemeen", "config": conf}])
        cfg["queues"][0]["closed_text"]["whatsapp"] = "Wij zijn gesloten. Morgen vanaf 8 uur zijn we er weer."
        d = self.daemon(cfg)
        self.d = d
        # a host that does not pass request headers yet cannot check signatures (ABI 1.1 host)
        if probe:     # a signed delivery without messages: 200 (the host passes the headers)
            r = self.post({"object": "whatsapp_business_account", "entry": []})
            self.assertEqual(r.status, 200, r)
        return d

    def post(self, payload, signature="good", raw=None):
        body = raw if raw is not None else json.dumps(payload).encode()
        h = {"Content-Type": "application/json"}
        if signature == "good":
            h["X-Hub-Signature-256"] = fg.sign(SECRET, body)
        elif signature:
            h["X-Hub-Signature-256"] = signature
        return http_request(self.d.host, self.d.port, "POST", "/channels/wa1/webhook", body, h)

    def deliver(self, wa_id, msgs, name="Fatima", user_id=None):
        r = self.post(fg.envelope([[fg.message_value(wa_id, name, msgs, user_id)]], PNID))
        self.assertEqual(r.status, 200, r)
        return r

    def accept_offer(self, agent):
        o = agent.expect("offer", 15)
        bid = o["bericht"]["id"]
        self.assertEqual(o["bericht"]["kind"], "whatsapp", o)
        self.assertEqual(agent.request({"type": "accept", "bericht": bid})["type"], "ack")
        return bid

    def delivery_events(self, bid):
        out = []
        for e in self.d.bericht(bid).get("events", []):
            if e["type"] == "delivery":
                out.append(e["detail"] if isinstance(e["detail"], dict) else json.loads(e["detail"]))
        return out

    # -------------------------------------------------------------- tests

    def test_handshake(self):
        d = self.start(probe=False)
        r = http_request(d.host, d.port, "GET", "/channels/wa1/webhook?hub.mode=subscribe&hub.verify_token=%s"
                         "&hub.challenge=1158201444" % VERIFY)
        self.assertEqual((r.status, r.body), (200, b"1158201444"), r)
        r = http_request(d.host, d.port, "GET", "/channels/wa1/webhook?hub.mode=subscribe&hub.verify_token=nope"
                         "&hub.challenge=1158201444")
        self.assertEqual(r.status, 403, r)
        self.assertNotIn(b"1158201444", r.body)
        r = http_request(d.host, d.port, "GET", "/channels/wa1/webhook?hub.verify_token=%s&hub.challenge=1" % VERIFY)
        self.assertEqual(r.status, 403, r)

    def test_signatures_duplicates_batches_and_reply(self):
        d = self.start()
        agent = self.agent_ws(d, "agent1")
        body = json.dumps(fg.envelope([[fg.message_value(CITIZEN, "Fatima", [fg.text_msg(CITIZEN, "wamid.A1", "Hallo gemeente")])]], PNID)).encode()
        for sig in (None, "sha256=" + "0" * 64, fg.sign("other-secret", body), "sha1=abc"):
            r = self.post(None, signature=sig, raw=body)
            self.assertEqual(r.status, 401, (sig, r))
        # the same bytes re-serialised (spaces) do not match the signature of the original
        r = self.post(None, signature=fg.sign(SECRET, body), raw=body.replace(b'":', b'": '))
        self.assertEqual(r.status, 401, r)
        agent.expect_none("offer", wait=0.5)                      # nothing stored
        # signed: stored; Meta's redelivery (twice) is the same bericht
        for _ in range(3):
            self.assertEqual(self.post(None, raw=body).status, 200)
        o = agent.expect("offer", 10)
        bid = o["bericht"]["id"]
        agent.expect_none("offer", wait=0.5)
        b = d.bericht(bid)
        self.assertEqual(b["from"], CITIZEN)
        self.assertIn("Fatima", json.dumps(b))
        # a batch: two entries x changes, three messages of two citizens, nothing lost
        r = self.post(fg.envelope([
            [fg.message_value("31600000001", "Jan", [fg.text_msg("31600000001", "wamid.B1", "een"),
                                                     fg.text_msg("31600000001", "wamid.B2", "twee")])],
            [fg.message_value("31600000002", "Piet", [fg.text_msg("31600000002", "wamid.B3", "drie")]),
             fg.status_value("wamid.unknown", "delivered", "31600000002")]], PNID))
        self.assertEqual(r.status, 200, r)
        offers = [agent.expect("offer", 10)["bericht"]["id"] for _ in range(2)]
        texts = json.dumps([d.bericht(x) for x in offers])
        for t in ("een", "twee", "drie"):
            self.assertIn('"%s"' % t, texts)

        # the reply goes out with the bearer to /{version}/{phone-number-id}/messages
        self.assertEqual(agent.request({"type": "accept", "bericht": bid})["type"], "ack")
        agent.request({"type": "message", "bericht": bid, "text": "Goedemiddag, waarmee kan ik helpen? 😀"})
        path, sent, auth = wait_until(lambda: next((s for s in self.g.sends() if s[1].get("to") == CITIZEN), None), 10,
                                      what="the reply at the Graph API")
        self.assertEqual(path, "/v21.0/%s/messages" % PNID)
        self.assertEqual(auth, "Bearer " + TOKEN)
        self.assertEqual(sent["type"], "text")
        self.assertEqual(sent["text"]["body"], "Goedemiddag, waarmee kan ik helpen? 😀")
        self.assertEqual(sent["messaging_product"], "whatsapp")
        agent.expect("delivery", 10, bericht=bid, status="accepted")
        ev = wait_until(lambda: [e for e in self.delivery_events(bid) if e.get("wamid")], 5, what="the wamid recorded")
        wamid = ev[-1]["wamid"]
        # statuses out of order: read, then a late delivered and sent: read stays
        self.post(fg.envelope([[fg.status_value(wamid, "sent", CITIZEN)]], PNID))
        agent.expect("delivery", 10, bericht=bid, status="sent")
        self.post(fg.envelope([[fg.status_value(wamid, "read", CITIZEN)]], PNID))
        agent.expect("delivery", 10, bericht=bid, status="read")
        self.post(fg.envelope([[fg.status_value(wamid, "delivered", CITIZEN), fg.status_value(wamid, "sent", CITIZEN)]], PNID))
        agent.expect_none("delivery", wait=0.8, bericht=bid)
        states = [e["delivery"] for e in self.delivery_events(bid)]
        self.assertEqual(states[-1], "read", states)
        self.assertNotIn("delivered", states)
        # a follow-up joins the live bericht
        self.deliver(CITIZEN, [fg.text_msg(CITIZEN, "wamid.A2", "Mijn paspoort is verlopen")])
        self.assertEqual(agent.expect("message", 10, bericht=bid)["text"], "Mijn paspoort is verlopen")
        # bad payloads: a clear 400
        r = self.post({"object": "page", "entry": []})
        self.assertProblem(r, 400, "whatsapp_business_account")
        r = self.post(None, raw=b"not json")
        self.assertProblem(r, 400, "JSON")
        r = http_request(d.host, d.port, "POST", "/channels/wa1/webhook", body,
                         {"Content-Type": "text/plain", "X-Hub-Signature-256": fg.sign(SECRET, body)})
        self.assertEqual(r.status, 415, r)

    def test_message_types_and_media(self):
        d = self.start()
        agent = self.agent_ws(d, "agent1")
        png = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
        self.g.media["MEDIA1"] = (png, "image/png", None)
        self.g.expire_first_url.add("MEDIA1")                       # the first URL has expired
        self.g.media["MEDIA2"] = (b"%PDF-1.4 brief", "application/pdf", hashlib.sha256(b"other").hexdigest())
        ts = str(int(time.time()))
        self.deliver(CITIZEN, [fg.text_msg(CITIZEN, "wamid.T0", "Ik stuur een foto")])
        bid = self.accept_offer(agent)
        msgs = [
            {"from": CITIZEN, "id": "wamid.T1", "timestamp": ts, "type": "image",
             "image": {"id": "MEDIA1", "mime_type": "image/png", "sha256": hashlib.sha256(png).hexdigest(), "caption": "Mijn kapotte lantaarnpaal"}},
            {"from": CITIZEN, "id": "wamid.T2", "timestamp": ts, "type": "document",
             "document": {"id": "MEDIA2", "mime_type": "application/pdf", "sha256": hashlib.sha256(b"other").hexdigest(), "filename": "brief.pdf"}},
            {"from": CITIZEN, "id": "wamid.T3", "timestamp": ts, "type": "location",
             "location": {"latitude": 52.0907, "longitude": 5.1214, "name": "Stadhuis", "address": "Stadsplateau 1"}},
            {"from": CITIZEN, "id": "wamid.T4", "timestamp": ts, "type": "contacts",
             "contacts": [{"name": {"formatted_name": "Kees Jansen"}, "phones": [{"phone": "+31 6 11112222"}]}]},
            {"from": CITIZEN, "id": "wamid.T5", "timestamp": ts, "type": "interactive",
             "interactive": {"type": "button_reply", "button_reply": {"id": "ja", "title": "Ja, graag"}}},
            {"from": CITIZEN, "id": "wamid.T6", "timestamp": ts, "type": "button", "button": {"text": "Bel mij terug", "payload": "cb"}},
            {"from": CITIZEN, "id": "wamid.T7", "timestamp": ts, "type": "reaction", "reaction": {"message_id": "wamid.OUR1", "emoji": "👍"}},
            {"from": CITIZEN, "id": "wamid.T8", "timestamp": ts, "type": "unsupported",
             "errors": [{"code": 131051, "title": "Message type unknown"}]},
            {"from": CITIZEN, "id": "wamid.T9", "timestamp": ts, "type": "text", "text": {"body": "Klopt dit?"},
             "context": {"from": "31850000000", "id": "wamid.OUR1"}},
        ]
        self.deliver(CITIZEN, msgs)
        got = {}
        deadline = time.time() + 20
        while time.time() < deadline and len(got) < 11:
            m = agent.expect("message", 20, bericht=bid)
            got[m["text"]] = m
        texts = list(got)
        want = ["[Afbeelding] Mijn kapotte lantaarnpaal", "[Document: brief.pdf]",
                "[Locatie: Stadhuis, Stadsplateau 1] 52.090700, 5.121400", "[Contact: Kees Jansen, +31 6 11112222]",
                "[Keuze] Ja, graag", "[Knop] Bel mij terug", "[Reactie 👍]", "Klopt dit?"]
        for w in want:
            self.assertIn(w, texts)
        self.assertTrue(any("niet doorgeeft" in t and "131051" in t for t in texts), texts)
        # the reaction says what it reacts to; the quoted reply names the quoted message
        self.assertEqual(got["[Reactie 👍]"]["payload"]["reaction"]["message"], "wamid.OUR1")
        self.assertEqual(got["Klopt dit?"]["payload"]["context"], "wamid.OUR1")
        # the image: fetched in two steps (a fresh URL after the expired one), stored, shown
        img = next(m for t, m in got.items() if t.startswith("[Afbeelding ontvangen"))
        att = img["payload"]["attachments"][0]
        self.assertEqual(att["content_type"], "image/png")
        tok = d.token("agent", "agent1")
        r = http_request(d.host, d.port, "GET", "/api/v1/attachments/%s" % att["id"], headers={"Authorization": "Bearer %s" % tok})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, png)
        media_gets = [p for m, p, a in self.g.requests if m == "GET" and p.startswith("/v21.0/MEDIA1")]
        self.assertEqual(len(media_gets), 2, self.g.requests)        # the URL asked twice
        self.assertTrue(all(a == "Bearer " + TOKEN for m, p, a in self.g.requests if m == "GET"))
        # the document's sha256 does not match: not stored, the agent sees why
        bad = next(t for t in texts if t.startswith("[Document kon niet worden opgehaald"))
        self.assertIn("sha256", bad)

    def test_window_templates_and_error_classes(self):
        d = self.start()
        agent = self.agent_ws(d, "agent1")
        old = time.time() - 25 * 3600                                 # the citizen wrote 25 h ago
        self.deliver(CITIZEN, [fg.text_msg(CITIZEN, "wamid.W1", "Nog een vraag", ts=old)])
        bid = self.accept_offer(agent)
        agent.request({"type": "message", "bericht": bid, "text": "Hier is het antwoord"})
        agent.expect("delivery", 10, bericht=bid, status="failed")
        err = wait_until(lambda: [e for e in self.delivery_events(bid) if e["delivery"] == "failed"], 5, what="event")[-1]["error"]
        self.assertIn("24-hour window", err)
        self.assertIn("template", err)
        self.assertEqual(self.g.sends(), [])                          # nothing sent
        # templates: checked before sending
        def tmsg(name, params):
            return {"type": "message", "bericht": bid, "text": "(sjabloon)",
                    "payload": {"template": {"name": name, "language": "nl", "params": params}}}
        self.assertEqual(agent.request(tmsg("vraag_beantwoord", []))["type"], "ack")
        agent.expect("delivery", 10, bericht=bid, status="failed")
        errs = wait_until(lambda: [e["error"] for e in self.delivery_events(bid) if e["delivery"] == "failed"][1:], 5, what="event")
        self.assertIn("needs 1 parameter", errs[-1])
        agent.request(tmsg("bestaat_niet", ["x"]))
        agent.expect("delivery", 10, bericht=bid, status="failed")
        agent.request(tmsg("vraag_beantwoord", ["paspoort"]))
        agent.expect("delivery", 10, bericht=bid, status="accepted")
        sent = self.g.sends()[-1][1]
        self.assertEqual(sent["type"], "template")
        self.assertEqual(sent["template"]["name"], "vraag_beantwoord")
        self.assertEqual(sent["template"]["components"][0]["parameters"], [{"type": "text", "text": "paspoort"}])

    def test_error_classes(self):
        d = self.start()
        agent = self.agent_ws(d, "agent1")
        self.deliver(CITIZEN, [fg.text_msg(CITIZEN, "wamid.E0", "Hallo")])
        bid = self.accept_offer(agent)
        # never retried: 131026 (undeliverable), shown with what to do
        self.g.fail_next(131026)
        agent.request({"type": "message", "bericht": bid, "text": "eerste"})
        agent.expect("delivery", 10, bericht=bid, status="failed")
        err = wait_until(lambda: [e for e in self.delivery_events(bid) if e["delivery"] == "failed"], 5, what="event")[-1]
        self.assertEqual(err["code"], 131026)
        self.assertIn("another channel", err["error"])
        self.assertEqual(len([s for s in self.g.sends() if s[1].get("text", {}).get("body") == "eerste"]), 1)
        # retried: 130429 rate limit, then accepted
        self.g.fail_next(130429, times=2)
        agent.request({"type": "message", "bericht": bid, "text": "tweede"})
        agent.expect("delivery", 15, bericht=bid, status="accepted")
        self.assertEqual(len([s for s in self.g.sends() if s[1].get("text", {}).get("body") == "tweede"]), 3)
        # the token refused (190 / HTTP 401): failed, the instance unhealthy in health
        self.g.fail_next(190, http=401)
        agent.request({"type": "message", "bericht": bid, "text": "derde"})
        agent.expect("delivery", 10, bericht=bid, status="failed")
        h = d.request("GET", "/api/v1/plugins").json
        blob = json.dumps(h)
        self.assertIn('"healthy": false', blob)
        self.assertNotIn(TOKEN, blob)                                  # never shown

    def test_closed_queue_text_once(self):
        d = self.start()
        r = d.ctl("queue", "close", "algemeen")
        self.assertEqual(r.returncode, 0, r)
        for _ in range(2):                                              # Meta redelivers
            self.deliver("31699999999", [fg.text_msg("31699999999", "wamid.C1", "Zijn jullie open?")])
        wait_until(lambda: [s for s in self.g.sends() if s[1].get("to") == "31699999999"], 10, what="the closed text")
        time.sleep(0.8)
        sent = [s for s in self.g.sends() if s[1].get("to") == "31699999999"]
        self.assertEqual(len(sent), 1, sent)
        self.assertIn("gesloten", sent[0][1]["text"]["body"])

    def test_bot_first_then_handoff(self):
        import http.server
        import threading
        got = []

        class Rasa(http.server.BaseHTTPRequestHandler):       # the Rasa REST contract
            def log_message(self, *a):
                pass

            def do_POST(self):
                m = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                got.append(m)
                out = [{"recipient_id": m["sender"], "text": "Dit is de gemeentebot. Waarmee kan ik helpen?"}]
                if "medewerker" in m["message"]:
                    out = [{"recipient_id": m["sender"], "custom": {"handoff": True, "summary": "Wil een medewerker"}}]
                b = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Rasa)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.shutdown)
        d = self.start(bot={"url": "http://127.0.0.1:%d/webhooks/rest/webhook" % srv.server_address[1]})
        agent = self.agent_ws(d, "agent1")
        self.deliver(CITIZEN, [fg.text_msg(CITIZEN, "wamid.BOT1", "Hoi")])     # 200 after the bot's answer was accepted
        sent = [s for s in self.g.sends() if s[1].get("to") == CITIZEN]
        self.assertEqual(len(sent), 1, sent)
        self.assertIn("gemeentebot", sent[0][1]["text"]["body"])
        self.deliver(CITIZEN, [fg.text_msg(CITIZEN, "wamid.BOT1", "Hoi")])     # Meta redelivers: the bot is not asked again
        self.assertEqual(len(got), 1)
        agent.expect_none("offer", wait=0.5)
        self.deliver(CITIZEN, [fg.text_msg(CITIZEN, "wamid.BOT2", "Ik wil een medewerker")])
        o = agent.expect("offer", 10)
        blob = json.dumps(d.bericht(o["bericht"]["id"]), ensure_ascii=False)
        for t in ("Klant: Hoi", "Chatbot: Dit is de gemeentebot.", "Klant: Ik wil een medewerker", "Wil een medewerker"):
            self.assertIn(t, blob)

    def test_media_download_resumes_after_a_crash(self):
        d = self.start()
        img = b"\x89PNG\r\n\x1a\n" + os.urandom(500)
        self.g.media["MEDIAK"] = (img, "image/png", None)
        self.g.media_delay = 3.0                                         # acdmd dies meanwhile
        self.deliver(CITIZEN, [{"from": CITIZEN, "id": "wamid.K1", "timestamp": str(int(time.time())), "type": "image",
                                "image": {"id": "MEDIAK", "mime_type": "image/png", "sha256": hashlib.sha256(img).hexdigest()}}])
        wait_until(lambda: any(p.startswith("/media/MEDIAK") for m, p, a in self.g.requests), 10, what="the download started")
        bid = wait_until(lambda: next((b["id"] for b in d.get_json("/api/v1/berichten?channel=wa1").get("items", [])
                                       if b.get("from") == CITIZEN), None), 10, what="the bericht")
        d.kill9()
        self.g.media_delay = 0
        d.start()
        def stored():
            for m in d.bericht(bid).get("messages", []):
                p = m.get("payload")
                p = json.loads(p) if isinstance(p, str) else p
                if p and p.get("attachments"):
                    return p["attachments"][0]
            return None
        att = wait_until(stored, 20, what="the image after the restart")
        r = http_request(d.host, d.port, "GET", "/api/v1/attachments/%s" % att["id"],
                         headers={"Authorization": "Bearer %s" % d.admin_token})
        self.assertEqual(r.body, img)
        self.assertIn("resuming the download", d.stderr())
