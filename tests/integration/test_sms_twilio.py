"""SMS channel (channels/sms, provider twilio) against a contract fake of a Twilio-compatible
Messages API (tests/integration/fake_twilio.py): signed inbound (good, bad, missing signature:
403 and nothing stored), an empty <Response/> only after the commit, MessageSid idempotency, the
agent's reply through the REST API with Basic auth and a StatusCallback carrying our id, signed
status callbacks mapped onto the message (never backwards), and error 21610 (opted out)."""
import json
import os
import time

import fake_twilio as ft
from acdmtest import PLUGINS, AcdmTestCase, base_config, http_request, wait_until

SID = "AC0123456789abcdef0123456789abcdef"
AUTH = "twilio-auth-token-0123456789"
NUMBER = "+3197010000000"
CITIZEN = "+31612345678"


class SmsTwilio(AcdmTestCase):
    def start(self):
        with open(os.path.join(self.tmp, "auth"), "w") as f:
            f.write(AUTH + "\n")
        self.tw = ft.FakeTwilio(SID, AUTH)
        self.addCleanup(self.tw.stop)
        conf = {"provider": "twilio", "from": NUMBER, "public_url": "http://127.0.0.1:1/channels/sms2",
                "api_url": self.tw.url, "account_sid": SID, "auth_token_file": os.path.join(self.tmp, "auth"),
                "retry_ms": 100}
        cfg = base_config(PLUGINS, channels=[{"name": "sms2", "plugin": "sms", "queue": "algemeen", "config": conf}])
        d = self.daemon(cfg)
        conf["public_url"] = "%s/channels/sms2" % d.url            # what the provider calls and signs
        d.write_config(cfg)
        self.assertIn(d.request("POST", "/api/v1/reload").status, (200, 204))
        self.d = d
        self.inbound_url = "%s/channels/sms2/sms" % d.url
        return d

    def inbound(self, sid, body, frm=CITIZEN, **kw):
        return ft.post_signed(self.inbound_url, AUTH, {"MessageSid": sid, "AccountSid": SID, "From": frm, "To": NUMBER,
                                                       "Body": body, "NumMedia": "0", "NumSegments": "1"}, **kw)

    def delivery_events(self, bid):
        return [e["detail"] if isinstance(e["detail"], dict) else json.loads(e["detail"])
                for e in self.d.bericht(bid).get("events", []) if e["type"] == "delivery"]

    def test_signed_inbound_reply_and_status_callbacks(self):
        d = self.start()
        agent = self.agent_ws(d, "agent1")
        st, ct, body = self.inbound("SM00000000000000000000000000000001", "Hallo, 5+5 & meer")
        self.assertEqual(st, 200, body)
        self.assertTrue(ct.startswith("text/xml"), ct)
        self.assertIn(b"<Response/>", body)
        bid = agent.expect("offer", 10)["bericht"]["id"]
        self.assertIn("Hallo, 5+5 & meer", json.dumps(d.bericht(bid)))
        # Twilio's retry of the same MessageSid: the same bericht
        self.assertEqual(self.inbound("SM00000000000000000000000000000001", "Hallo, 5+5 & meer")[0], 200)
        agent.expect_none("offer", wait=0.5)
        # bad and missing signatures: 403, nothing stored
        self.assertEqual(self.inbound("SM00000000000000000000000000000002", "nep", bad=True)[0], 403)
        self.assertEqual(self.inbound("SM00000000000000000000000000000003", "nep", missing=True)[0], 403)
        st, _, _ = ft.post_signed(self.inbound_url, AUTH, {"MessageSid": "SM4", "From": CITIZEN, "Body": "x"},
                                  sign_url="https://elders.example.nl/channels/sms2/sms")
        self.assertEqual(st, 403)                                        # signed for another URL
        agent.expect_none("offer", wait=0.5)
        self.assertNotIn("nep", json.dumps(d.bericht(bid)))

        # the reply through the REST API; our id in the StatusCallback
        agent.request({"type": "accept", "bericht": bid})
        text = "Beste inwoner, uw aanvraag is ontvangen. 😀 " * 3
        agent.request({"type": "message", "bericht": bid, "text": text})
        form, auth = wait_until(lambda: next(iter(self.tw.sends()), None), 10, what="the reply at the API")
        self.assertTrue(auth.startswith("Basic "), auth)
        self.assertEqual((form["To"], form["From"], form["Body"]), (CITIZEN, NUMBER, text))
        self.assertTrue(form["StatusCallback"].startswith("%s/channels/sms2/status?m=" % d.url), form)
        agent.expect("delivery", 10, bericht=bid, status="accepted")
        st, _, _ = self.tw.status_callback(form, "sent")
        self.assertEqual(st, 200)
        agent.expect("delivery", 10, bericht=bid, status="sent")
        self.assertEqual(self.tw.status_callback(form, "delivered")[0], 200)
        agent.expect("delivery", 10, bericht=bid, status="delivered")
        self.assertEqual(self.tw.status_callback(form, "sent")[0], 200)   # late: nothing changes
        agent.expect_none("delivery", wait=0.5, bericht=bid)
        # a status callback without a valid signature changes nothing
        params = {"MessageSid": "SMx", "MessageStatus": "failed", "To": CITIZEN}
        self.assertEqual(ft.post_signed(form["StatusCallback"], AUTH, params, bad=True)[0], 403)

        # 21610: the citizen sent STOP to Twilio; no further SMS until START
        self.tw.unsubscribed.add(CITIZEN)
        agent.request({"type": "message", "bericht": bid, "text": "Nog een vraag?"})
        agent.expect("delivery", 10, bericht=bid, status="failed")
        n = len(self.tw.sends())
        errs = wait_until(lambda: [e.get("error", "") for e in self.delivery_events(bid) if e["delivery"] == "failed"],
                          5, what="the failure stored")
        self.assertIn("21610", errs[-1])
        agent.request({"type": "message", "bericht": bid, "text": "En nu?"})
        agent.expect("delivery", 10, bericht=bid, status="failed")
        time.sleep(0.3)
        self.assertEqual(len(self.tw.sends()), n)                          # not even tried
        self.tw.unsubscribed.discard(CITIZEN)
        self.assertEqual(self.inbound("SM00000000000000000000000000000005", "START")[0], 200)
        agent.expect("message", 10, bericht=bid)
        agent.request({"type": "message", "bericht": bid, "text": "Welkom terug"})
        wait_until(lambda: len(self.tw.sends()) > n, 10, what="the reply after START")

    def test_inbound_media_fetched_and_shown(self):
        d = self.start()
        agent = self.agent_ws(d, "agent1")
        jpg = b"\xff\xd8\xff\xe0" + os.urandom(3000)
        self.tw.media["/2010-04-01/Accounts/%s/Messages/MM1/Media/ME1" % SID] = (jpg, "image/jpeg")
        st, _, _ = ft.post_signed(self.inbound_url, AUTH, {
            "MessageSid": "MM00000000000000000000000000000001", "AccountSid": SID, "From": CITIZEN, "To": NUMBER,
            "Body": "Kijk, de kapotte stoeptegel", "NumMedia": "2",
            "MediaUrl0": "%s/2010-04-01/Accounts/%s/Messages/MM1/Media/ME1" % (self.tw.url, SID), "MediaContentType0": "image/jpeg",
            "MediaUrl1": "%s/2010-04-01/Accounts/%s/Messages/MM1/Media/GONE" % (self.tw.url, SID), "MediaContentType1": "image/png"})
        self.assertEqual(st, 200)
        bid = agent.expect("offer", 10)["bericht"]["id"]
        agent.request({"type": "accept", "bericht": bid})

        def thread():         # the follow-ups may come before the accept: read the stored thread
            got = {}
            for m in d.bericht(bid).get("messages", []):
                p = m.get("payload")
                got[m.get("text")] = json.loads(p) if isinstance(p, str) else p
            return got if len(got) >= 3 else None
        got = wait_until(thread, 15, what="the two media follow-ups in the thread")
        att = got["[Bijlage ontvangen: image/jpeg]"]["attachments"][0]
        r = http_request(d.host, d.port, "GET", "/api/v1/attachments/%s" % att["id"],
                         headers={"Authorization": "Bearer %s" % d.token("agent", "agent1")})
        self.assertEqual(r.body, jpg)
        self.assertIn("[Bijlage kon niet worden opgehaald: download answered HTTP 404]", got)
