"""SMS channel (channels/sms, provider kannel) against a REAL Kannel: bearerbox + smsbox with the
fake SMSC on free high ports, started per test. A citizen's SMS injected at the fake SMSC reaches
an agent through Kannel's sms-service; the agent's reply (long UTF-8 with an emoji) comes out at
the fake SMSC intact in concatenated parts; Kannel's delivery reports come back and show on the
message. Plus: Kannel's retry never doubles a bericht, the MO route refuses a missing or wrong
token, GSM-7 substitution, opt-out STOP/START, and the closed queue's text sent once."""
import json
import os
import time

import kannel
from acdmtest import PLUGINS, AcdmTestCase, base_config, http_request, wait_until

TOKEN = "mo-token-0123456789abcdef"
CITIZEN = "+31612345678"
NUMBER = "4930555"
LONG_REPLY = ("Goedemiddag! Uw aanvraag voor een nieuw paspoort is ontvangen 😀. U kunt het over "
              "vijf werkdagen ophalen bij de balie in het stadhuis; neem uw oude paspoort mee. "
              "Met vriendelijke groet, team Burgerzaken.")


class SmsKannel(AcdmTestCase):
    def start(self, post=True, queue_closed=False, **extra):
        with open(os.path.join(self.tmp, "token"), "w") as f:
            f.write(TOKEN + "\n")
        k = kannel.Kannel(self.tmp, mo_url="(set below)")
        with open(os.path.join(self.tmp, "kannel-pw"), "w") as f:
            f.write(k.password + "\n")
        conf = {"provider": "kannel", "from": NUMBER, "public_url": "http://127.0.0.1:1/channels/sms1",
                "sendsms_url": k.sendsms_url, "username": "acdm",
                "password_file": os.path.join(self.tmp, "kannel-pw"),
                "token_file": os.path.join(self.tmp, "token"), "retry_ms": 200}
        conf.update(extra)
        cfg = base_config(PLUGINS, channels=[{"name": "sms1", "plugin": "sms", "queue": "algemeen", "config": conf}])
        cfg["queues"][0]["closed_text"]["sms"] = "De gemeente is nu gesloten. Wij antwoorden morgen."
        d = self.daemon(cfg)
        # the dlr-url must name acdmd's port, known only now: reload with it
        conf["public_url"] = "%s/channels/sms1" % d.url
        d.write_config(cfg)
        r = d.request("POST", "/api/v1/reload")
        self.assertIn(r.status, (200, 204), r)
        k.mo_url = "%s/channels/sms1/mo?token=%s" % (d.url, TOKEN)
        k.post = post
        self.addCleanup(k.stop)
        k.start()
        self.d, self.k = d, k
        return d, k

    def offer(self, agent, text):
        o = agent.expect("offer", 20)
        self.assertEqual(o["bericht"]["kind"], "sms", o)
        self.assertEqual(o["bericht"]["channel"], "sms1", o)
        return o

    def wait_message(self, predicate, what):
        return wait_until(lambda: next((m for m in self.k.mt_messages() if predicate(m)), None), 20, what=what)

    def test_sms_in_reply_out_and_delivery_report(self):
        d, k = self.start(post=True)
        agent = self.agent_ws(d, "agent1")
        k.mo(CITIZEN, NUMBER, "Hallo, 100% zeker & snel? 1+1=2")
        o = self.offer(agent, None)
        bid = o["bericht"]["id"]
        b = d.bericht(bid)
        self.assertEqual(b["from"], CITIZEN, b)
        self.assertIn("Hallo, 100% zeker & snel? 1+1=2", json.dumps(b, ensure_ascii=False))
        self.assertEqual(agent.request({"type": "accept", "bericht": bid})["type"], "ack")
        self.assertEqual(agent.request({"type": "message", "bericht": bid, "text": LONG_REPLY})["type"], "ack")
        # out at the fake SMSC: UCS-2 (the emoji), in parts of at most 67 units, joined intact
        sender, receiver, data, parts = self.wait_message(lambda m: m[3] > 1, "the reply's parts at the SMSC")
        self.assertEqual((sender, receiver), (NUMBER, CITIZEN))
        self.assertEqual(data.decode("utf-16-be"), LONG_REPLY)
        units = len(LONG_REPLY.encode("utf-16-be")) // 2
        self.assertEqual(parts, -(-units // 67), (units, parts))
        # every part's DLR came back (8 then 1, in any order): delivered, shown to the agent
        agent.expect("delivery", 20, bericht=bid, status="delivered")
        dl = wait_until(lambda: [e for e in d.bericht(bid)["events"] if e["type"] == "delivery" and
                                 "delivered" in json.dumps(e)], 5, what="the delivered event stored")
        dl = [e for e in d.bericht(bid)["events"] if e["type"] == "delivery"]
        det = [e["detail"] if isinstance(e["detail"], dict) else json.loads(e["detail"]) for e in dl]
        last = det[-1]
        self.assertEqual(last["delivery"], "delivered", det)
        self.assertEqual(last["parts"], parts, det)
        self.assertEqual(last["parts_delivered"], parts, det)
        self.assertEqual(last["encoding"], "ucs2", det)
        states = [x["delivery"] for x in det]
        self.assertEqual(states.count("delivered"), 1, states)      # reported once, never back
        self.assertNotIn("failed", states)

        # a follow-up SMS joins the live bericht
        k.mo(CITIZEN, NUMBER, "Dank u wel")
        self.assertEqual(agent.expect("message", 20, bericht=bid)["text"], "Dank u wel")

        # a GSM-7 reply: substitutions (quotes, ë) keep it in one 7-bit SMS; € is GSM too
        n_before = len(k.mt_lines())
        txt = "Dat kost \u201c€ 12\u201d voor de financi\u00eble afhandeling."
        agent.request({"type": "message", "bericht": bid, "text": txt})
        wait_until(lambda: len(k.mt_lines()) > n_before, 20, what="the GSM-7 reply")
        line = k.mt_lines()[n_before]
        self.assertTrue(line.startswith("%s %s text " % (NUMBER, CITIZEN)), line)
        self.assertIn("financiele afhandeling", line)

    def test_kannel_retry_never_duplicates_and_the_route_needs_the_token(self):
        d, k = self.start(post=True)
        q = "from=%2B31611111111&to=4930555&id=5e1f0d2c-aaaa-bbbb-cccc-000000000001&time=2026-12-01+10:00:00&coding=0&charset=UTF-8"
        body = "Mijn container is niet geleegd".encode()
        hdr = {"Content-Type": "text/plain; charset=UTF-8"}
        r = http_request(d.host, d.port, "POST", "/channels/sms1/mo?" + q, body, hdr)
        self.assertEqual(r.status, 401, r)                      # no token: nothing stored
        r = http_request(d.host, d.port, "POST", "/channels/sms1/mo?token=wrong-token-xxxxxxxx&" + q, body, hdr)
        self.assertEqual(r.status, 401, r)
        for _ in range(3):                                      # Kannel's retries
            r = http_request(d.host, d.port, "POST", "/channels/sms1/mo?token=%s&%s" % (TOKEN, q), body, hdr)
            self.assertEqual(r.status, 200, r)
        agent = self.agent_ws(d, "agent1")
        o = self.offer(agent, None)
        self.assertEqual(d.bericht(o["bericht"]["id"])["from"], "+31611111111")
        agent.expect_none("offer", wait=1.0)                     # one bericht, not three
        # bad input: a clear 400, never a crash
        r = http_request(d.host, d.port, "POST", "/channels/sms1/mo?token=%s&to=1" % TOKEN, body, hdr)
        self.assertProblem(r, 400, "from")
        r = http_request(d.host, d.port, "GET", "/channels/sms1/dlr?token=%s&m=x&s=abc" % TOKEN)
        self.assertProblem(r, 400, "s")

    def test_get_url_keeps_plus_and_ampersand(self):
        d, k = self.start(post=False)
        agent = self.agent_ws(d, "agent1")
        k.mo(CITIZEN, NUMBER, "Kosten: 5+5 & meer")
        o = self.offer(agent, None)
        got = json.dumps(d.bericht(o["bericht"]["id"]), ensure_ascii=False)
        self.assertIn("Kosten: 5+5 & meer", got)           # the raw query: %2B and %26 survive

    def test_opt_out_and_back_in(self):
        d, k = self.start(post=True)
        agent = self.agent_ws(d, "agent1")
        k.mo(CITIZEN, NUMBER, "STOP")
        bid = self.offer(agent, None)["bericht"]["id"]
        agent.request({"type": "accept", "bericht": bid})
        n_before = len(k.mt_lines())
        agent.request({"type": "message", "bericht": bid, "text": "Jammer dat u stopt."})
        agent.expect("delivery", 10, bericht=bid, status="failed")
        ev = wait_until(lambda: [e for e in d.bericht(bid)["events"] if e["type"] == "delivery"], 5,
                        what="the delivery event stored")
        det = ev[-1]["detail"] if isinstance(ev[-1]["detail"], dict) else json.loads(ev[-1]["detail"])
        self.assertIn("opted out", det["error"])
        self.assertIn("START", det["error"])
        k.mo(CITIZEN, NUMBER, "start")
        self.assertEqual(agent.expect("message", 20, bericht=bid)["text"], "start")
        agent.request({"type": "message", "bericht": bid, "text": "Welkom terug."})
        wait_until(lambda: len(k.mt_lines()) > n_before, 20, what="the reply after START")
        self.assertIn("Welkom terug.", k.mt_lines()[n_before])

    def test_closed_queue_text_sent_once(self):
        d, k = self.start(post=True)
        r = d.ctl("queue", "close", "algemeen")
        self.assertEqual(r.returncode, 0, r)
        q = "from=%2B31622222222&to=4930555&id=5e1f0d2c-aaaa-bbbb-cccc-000000000002&coding=0&charset=UTF-8"
        for _ in range(2):                                       # the MO and Kannel's retry
            r = http_request(d.host, d.port, "POST", "/channels/sms1/mo?token=%s&%s" % (TOKEN, q),
                             "Bent u open?".encode(), {"Content-Type": "text/plain"})
            self.assertEqual(r.status, 200, r)
        wait_until(lambda: any("gesloten" in l for l in k.mt_lines()), 20, what="the closed text at the SMSC")
        time.sleep(1.0)
        lines = [l for l in k.mt_lines() if "gesloten" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("%s +31622222222 text " % NUMBER), lines)

    def test_quick_texts_of_one_number_are_one_bericht(self):
        # the second SMS arrives before the first is committed: it joins as a follow-up
        d, k = self.start(post=True)
        agent = self.agent_ws(d, "agent1")
        for t in ("een", "twee", "drie"):
            k.mo("+31633333333", NUMBER, t)
        bid = self.offer(agent, None)["bericht"]["id"]
        agent.expect_none("offer", wait=1.0)
        got = wait_until(lambda: (lambda b: b if len(b.get("messages", [])) >= 3 else None)(d.bericht(bid)), 10,
                         what="three messages in one bericht")
        self.assertEqual([m["text"] for m in got["messages"]], ["een", "twee", "drie"])

    def test_gateway_down_is_retried_with_backoff(self):
        d, k = self.start(post=True)
        agent = self.agent_ws(d, "agent1")
        k.mo(CITIZEN, NUMBER, "Is mijn melding ontvangen?")
        bid = self.offer(agent, None)["bericht"]["id"]
        agent.request({"type": "accept", "bericht": bid})
        sb = k.procs["smsbox"]                                   # sendsms goes down
        sb.terminate()
        sb.wait(10)
        agent.request({"type": "message", "bericht": bid, "text": "Ja, uw melding is ontvangen."})
        time.sleep(0.8)                                          # a few attempts fail meanwhile
        self.assertEqual([l for l in k.mt_lines() if "melding is ontvangen" in l], [])
        k._spawn("smsbox", [kannel.SMSBOX, "-v", "1", os.path.join(k.dir, "kannel.conf")])
        wait_until(lambda: any("melding is ontvangen" in l for l in k.mt_lines()), 20, what="the reply after the retry")
        agent.expect("delivery", 20, bericht=bid, status="delivered")
        self.assertIn("retrying", d.stderr())

    def test_bot_first_then_handoff_with_the_transcript(self):
        import http.server
        import threading
        got = []

        class Rasa(http.server.BaseHTTPRequestHandler):       # the Rasa REST contract
            def log_message(self, *a):
                pass

            def do_POST(self):
                m = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                got.append(m)
                if "medewerker" in m["message"]:
                    out = [{"recipient_id": m["sender"], "text": "Ik verbind u door met een medewerker."},
                           {"recipient_id": m["sender"], "custom": {"handoff": True, "summary": "Vraag over oud papier"}}]
                else:
                    out = [{"recipient_id": m["sender"], "text": "Oud papier wordt elke tweede dinsdag opgehaald."}]
                b = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Rasa)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.shutdown)
        d, k = self.start(post=True, bot={"url": "http://127.0.0.1:%d/webhooks/rest/webhook" % srv.server_address[1]})
        agent = self.agent_ws(d, "agent1")
        k.mo(CITIZEN, NUMBER, "Wanneer komt het oud papier?")
        wait_until(lambda: any("tweede dinsdag" in l for l in k.mt_lines()), 20, what="the bot's answer at the SMSC")
        agent.expect_none("offer", wait=0.5)                      # the bot answered: no bericht
        self.assertEqual(got[0]["message"], "Wanneer komt het oud papier?")
        k.mo(CITIZEN, NUMBER, "Ik wil een medewerker")
        o = self.offer(agent, None)
        b = d.bericht(o["bericht"]["id"])
        blob = json.dumps(b, ensure_ascii=False)
        for t in ("Klant: Wanneer komt het oud papier?", "Chatbot: Oud papier wordt elke tweede dinsdag opgehaald.",
                  "Klant: Ik wil een medewerker", "Vraag over oud papier"):
            self.assertIn(t, blob)
        wait_until(lambda: any("verbind u door" in l for l in k.mt_lines()), 20, what="the bot's last words")
        # with a human now: the next text is a follow-up, not for the bot
        bid = o["bericht"]["id"]
        agent.request({"type": "accept", "bericht": bid})
        k.mo(CITIZEN, NUMBER, "Hallo?")
        self.assertEqual(agent.expect("message", 20, bericht=bid)["text"], "Hallo?")
        self.assertEqual(len(got), 2)
        # the bericht ends: the next text goes to the bot again
        agent.request({"type": "complete", "bericht": bid})
        agent.request({"type": "wrapup_end", "bericht": bid})
        time.sleep(0.5)
        k.mo(CITIZEN, NUMBER, "Nog een vraag over papier")
        wait_until(lambda: len(got) == 3, 20, what="the bot asked again")

    def test_multipart_state_is_the_worst_part(self):
        # dlr_mask 0: Kannel sends no DLRs, this test plays the SMSC's reports at our dlr route
        d, k = self.start(post=True, dlr_mask=0)
        agent = self.agent_ws(d, "agent1")
        k.mo(CITIZEN, NUMBER, "Hoe lang duurt een paspoort?")
        bid = self.offer(agent, None)["bericht"]["id"]
        agent.request({"type": "accept", "bericht": bid})
        agent.request({"type": "message", "bericht": bid, "text": "x" * 200})     # GSM-7, 2 parts
        agent.expect("delivery", 20, bericht=bid, status="accepted")
        ev = wait_until(lambda: [e for e in d.bericht(bid)["events"] if e["type"] == "delivery"], 5, what="event")
        det = ev[-1]["detail"] if isinstance(ev[-1]["detail"], dict) else json.loads(ev[-1]["detail"])
        mid = det["message"]
        self.assertEqual(det["parts"], 2)

        def dlr(part, status):
            r = http_request(d.host, d.port, "GET", "/channels/sms1/dlr?m=%s&p=%d&s=%d&a=&token=%s" % (mid, part, status, TOKEN))
            self.assertEqual(r.status, 200, r)
        dlr(0, 8)
        dlr(1, 8)
        agent.expect("delivery", 10, bericht=bid, status="sent")
        dlr(0, 1)                                   # one part delivered: the message is still "sent"
        agent.expect_none("delivery", wait=0.5, bericht=bid)
        dlr(1, 16)                                  # the other rejected: the message failed
        agent.expect("delivery", 10, bericht=bid, status="failed")
        dlr(1, 1)                                   # failed is final
        dlr(0, 2)                                   # so is delivered for a part
        agent.expect_none("delivery", wait=0.5, bericht=bid)
        r = http_request(d.host, d.port, "GET", "/channels/sms1/dlr?m=%s&p=0&s=1&token=wrong-token-xxxxxxxxx" % mid)
        self.assertEqual(r.status, 401, r)
