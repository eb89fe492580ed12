"""Email channel (channels/email) end to end against a real Dovecot (IMAP, IDLE, MOVE) and an
msmtpd SMTP front on free loopback ports: a mail in the inbox reaches an agent (IDLE, and by
polling), leaves the inbox for the processed folder only after its commit, the agent's reply
arrives in the citizen's mailbox as a proper reply (In-Reply-To, References, subject tag, our
Message-ID, Thread-Index) and is in Sent, and the citizen's answer joins the same bericht."""
import base64
import time
import unittest

from acdmtest import PLUGINS, AcdmTestCase, base_config, wait_until
import mailfix


@unittest.skipUnless(mailfix.available(), "dovecot/msmtpd not installed (channels/email/deps)")
class MailCase(AcdmTestCase):
    def setUp(self):
        super().setUp()
        self.mail = mailfix.MailServer(self.tmp)
        self.mail.start()
        self.addCleanup(self.mail.stop)

    def config(self, **chan):
        cfg = base_config(PLUGINS, channels=[self.mail.channel(self.tmp, **chan)])
        return cfg

    def offer(self, ws, timeout=20):
        o = ws.expect("offer", timeout)
        return o["bericht"]

    def status(self, d, name="mail1"):
        r = d.request("GET", "/channels/%s/status" % name)
        self.assertEqual(r.status, 200, r)
        return r.json


class Intake(MailCase):
    def test_idle_mail_reaches_agent_reply_threads_back(self):
        d = self.daemon(self.config())
        ws = self.agent_ws(d, "agent1")
        wait_until(lambda: self.status(d)["idle"], 20, what="the channel idling on the inbox")
        t0 = time.monotonic()
        self.mail.send(mailfix.mail(message_id="<m1@example.com>",
                                    body="Ik ben mijn paspoort kwijt.\n\nOp 1 dec. 2026 schreef Gemeente:\n> oud bericht\n",
                                    headers={"Thread-Index": base64.b64encode(bytes(range(22))).decode()}))
        b = self.offer(ws)
        self.assertLess(time.monotonic() - t0, 10, "IDLE: the mail should reach the agent within seconds")
        self.assertEqual(b["kind"], "email")
        self.assertEqual(b["from"], "customer@example.com")
        self.assertEqual(b.get("subject"), "Paspoort kwijt")
        bid = b["id"]
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        full = d.bericht(bid)
        text = full["bericht"]["payload"]["text"] if "bericht" in full else full["payload"]["text"]
        self.assertIn("paspoort kwijt", text)
        self.assertNotIn("oud bericht", text, "quoted history is folded away")
        # the mail left the inbox only after its commit, for the processed folder
        wait_until(lambda: self.mail.count("INBOX") == 0 and self.mail.count("Verwerkt") == 1, 15,
                   what="the mail moved to Verwerkt")
        # the agent answers
        self.assertEqual(ws.request({"type": "message", "bericht": bid, "text": "U kunt een nieuw paspoort aanvragen."})["type"], "ack")
        dl = ws.expect("delivery", 20, bericht=bid)
        self.assertEqual(dl["status"], "delivered", dl)
        got = wait_until(lambda: self.mail.messages("INBOX", user="customer@example.com"), 15,
                         what="the reply in the citizen's mailbox")
        r = got[0]
        self.assertEqual(r["In-Reply-To"], "<m1@example.com>")
        self.assertIn("<m1@example.com>", r["References"])
        self.assertIn("[KCC#", r["Subject"])
        self.assertTrue(r["Subject"].startswith("Re: Paspoort kwijt"), r["Subject"])
        self.assertIn("kcc@example.nl", r["From"])
        self.assertTrue(r["Message-ID"].startswith("<%s." % bid), r["Message-ID"])
        self.assertTrue(r["Message-ID"].endswith("@example.nl>"), r["Message-ID"])
        ti = base64.b64decode(r["Thread-Index"])
        self.assertEqual(len(ti), 27, "the parent Thread-Index extended by one 5-byte block")
        self.assertEqual(ti[:22], bytes(range(22)))
        self.assertIsNone(r["Auto-Submitted"])
        self.assertIn("nieuw paspoort", r.get_body(("plain",)).get_content())
        # a copy in Sent
        wait_until(lambda: self.mail.count("Sent") == 1, 15, what="the reply appended to Sent")
        # the citizen answers the reply: it joins the same bericht, at the same agent
        self.mail.send(mailfix.mail(subject="Re: " + r["Subject"], message_id="<m2@example.com>",
                                    body="Dank u, waar kan ik dat doen?",
                                    headers={"In-Reply-To": r["Message-ID"],
                                             "References": "<m1@example.com> " + r["Message-ID"]}))
        m = ws.expect("message", 20, bericht=bid)
        self.assertIn("waar kan ik dat doen", m["text"])
        wait_until(lambda: self.mail.count("Verwerkt") == 2, 15, what="the answer moved too")
        ws.expect_none("offer", 1.0)
        st = self.status(d)
        self.assertTrue(st["healthy"], st)
        self.assertEqual(st["backlog"], 0, st)
        self.assertEqual(st["sent"], 1, st)

    def test_polling_without_idle(self):
        d = self.daemon(self.config(idle=False, poll_s=1))
        ws = self.agent_ws(d, "agent1")
        wait_until(lambda: self.status(d)["connected"], 20, what="connected")
        self.assertFalse(self.status(d)["idle"])
        self.mail.send(mailfix.mail(subject="Afval niet opgehaald", message_id="<p1@example.com>"))
        b = self.offer(ws, 20)
        self.assertEqual(b.get("subject"), "Afval niet opgehaald")
        wait_until(lambda: self.mail.count("Verwerkt") == 1 and self.mail.count("INBOX") == 0, 15,
                   what="moved after polling")

    def test_mail_already_in_inbox_and_missing_message_id(self):
        # two mails before acdmd starts, one without Message-ID: both taken in once
        self.mail.send(mailfix.mail(subject="Eerste", message_id="<e1@example.com>"))
        self.mail.send(mailfix.mail(subject="Zonder id", message_id=None))
        d = self.daemon(self.config())
        wait_until(lambda: self.mail.count("Verwerkt") == 2, 30, what="both moved")
        ids = self.berichten(d)
        self.assertEqual(sorted(ids.values()), ["Eerste", "Zonder id"])

    def berichten(self, d):
        r = d.get_json("/api/v1/berichten?limit=100")
        items = r.get("berichten", r.get("items", []))
        return {b["id"]: b.get("subject") for b in items if b.get("channel") == "mail1"}


if __name__ == "__main__":
    unittest.main()
