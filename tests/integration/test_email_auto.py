"""Email channel: automatic mail that never loops (RFC 3834), bounces (RFC 3464), header
injection through the agent's subject and address, and hostile mails (broken MIME, bad
charsets, 8-bit headers, a mail over max_bytes, hostile HTML) -- all against a real Dovecot and
msmtpd, reading what arrives in the citizens' mailboxes."""
import json
import os
import shutil
import signal
import subprocess
import time
import unittest

from acdmtest import ACDMD, PLUGINS, REPO, base_config, wait_until
import mailfix
from test_email import MailCase


def closed_cfg(case, **chan):
    cfg = base_config(PLUGINS, channels=[case.mail.channel(case.tmp, **chan)])
    cfg["queues"][0]["closed_text"]["email"] = "Wij zijn gesloten. U hoort morgen van ons."
    return cfg


@unittest.skipUnless(mailfix.available(), "dovecot/msmtpd not installed (channels/email/deps)")
class AutoReplies(MailCase):
    def inbox_of(self, user):
        return self.mail.messages("INBOX", user=user)

    def test_closed_queue_one_reply_per_sender_and_none_to_loop_signals(self):
        d = self.daemon(closed_cfg(self))
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/close").status // 100, 2)
        self.mail.send(mailfix.mail(sender="burger@example.com", subject="Vraag over afval",
                                    message_id="<c1@example.com>"), sender="burger@example.com")
        got = wait_until(lambda: self.inbox_of("burger@example.com"), 20, what="the out-of-office reply")
        r = got[0]
        self.assertEqual(r["Auto-Submitted"], "auto-replied")
        self.assertEqual(r["X-Auto-Response-Suppress"], "All")
        self.assertEqual(r["In-Reply-To"], "<c1@example.com>")
        self.assertIn("[KCC#", r["Subject"])
        self.assertIn("Wij zijn gesloten", r.get_body(("plain",)).get_content())
        # a second mail from the same sender within the period: no second reply
        self.mail.send(mailfix.mail(sender="burger@example.com", subject="Nog een vraag",
                                    message_id="<c2@example.com>"), sender="burger@example.com")
        # loop signals: none of these may get an automatic reply
        signals = {
            "as": {"Auto-Submitted": "auto-replied"},
            "ag": {"Auto-Submitted": "auto-generated"},
            "prec": {"Precedence": "bulk"},
            "list": {"Precedence": "list"},
            "junk": {"Precedence": "junk"},
            "xloop": {"X-Loop": "yes"},
            "supp": {"X-Auto-Response-Suppress": "All"},
            "listid": {"List-Id": "<nieuws.example.com>"},
            "unsub": {"List-Unsubscribe": "<mailto:leave@example.com>"},
            "dmarc": {"Authentication-Results": "mx.example.nl; spf=fail; dkim=none; dmarc=fail"},
        }
        for name, hdrs in signals.items():
            addr = "%s@example.com" % name
            self.mail.send(mailfix.mail(sender=addr, subject="Signaal " + name,
                                        message_id="<s-%s@example.com>" % name, headers=hdrs), sender=addr)
        for addr in ("mailer-daemon@example.com", "postmaster@example.com", "noreply@example.com",
                     "no-reply@example.com"):
            self.mail.send(mailfix.mail(sender=addr, subject="Systeem", message_id="<sys-%s>" % addr),
                           sender=addr)
        # our own address, and a mail carrying one of our Message-IDs
        self.mail.send(mailfix.mail(sender="kcc@example.nl", subject="Eigen", message_id="<own1@example.com>"),
                       sender="kcc@example.nl")
        self.mail.send(mailfix.mail(sender="spiegel@example.com", subject="Echo",
                                    message_id="<0190f7a2-5c1e-7a3b-9d4e-2f1a0b3c4d5e.1@example.nl>"),
                       sender="spiegel@example.com")
        # a Return-Path <> (null): no reply either
        n_sent = 17
        wait_until(lambda: self.status(d)["submitted"] >= n_sent, 120, what="all mails taken in")   # 17 mails through Dovecot: seconds when quiet, ~40 s on a loaded 2-core box
        time.sleep(2.0)              # any reply would be in the mailbox by now
        self.assertEqual(len(self.inbox_of("burger@example.com")), 1, "one reply per sender per period")
        for name in signals:
            self.assertEqual(self.inbox_of("%s@example.com" % name), [], "auto reply despite %s" % name)
        for u in ("mailer-daemon", "postmaster", "noreply", "no-reply", "spiegel"):
            self.assertEqual(self.inbox_of("%s@example.com" % u), [], "auto reply to %s" % u)
        self.assertEqual(self.inbox_of("kcc@example.nl") and
                         [m for m in self.inbox_of("kcc@example.nl") if m["Auto-Submitted"]], [])
        self.assertEqual(self.status(d)["auto_replies"], 1)

    def test_confirmation_of_receipt(self):
        d = self.daemon(self.config(auto_reply={"enabled": True, "text": "Uw mail is ontvangen."}))
        self.mail.send(mailfix.mail(sender="piet@example.com", message_id="<conf1@example.com>"),
                       sender="piet@example.com")
        got = wait_until(lambda: self.inbox_of("piet@example.com"), 20, what="the confirmation")
        self.assertEqual(got[0]["Auto-Submitted"], "auto-replied")
        self.assertIn("Uw mail is ontvangen", got[0].get_body(("plain",)).get_content())
        self.assertEqual(len(self.status(d) and self.inbox_of("piet@example.com")), 1)


    def test_confirmation_text_per_queue_and_none_to_daemons_or_lists(self):
        # three mailboxes, each in its own queue, with the same auto_reply block: the citizen
        # gets the confirmation of the queue the mail landed in, a queue set to false sends none
        auto = {"enabled": True, "text": "Standaardbevestiging.",
                "queues": {"algemeen": "Uw vraag aan het KCC is ontvangen.",
                           "wmo": "Uw Wmo-aanvraag is ontvangen. Binnen 2 weken hoort u van ons.",
                           "balie": False}}
        chans = [self.mail.channel(self.tmp, auto_reply=auto)]
        for name, q, addr in (("mail2", "wmo", "wmo@example.nl"), ("mail3", "balie", "balie@example.nl")):
            c = self.mail.channel(self.tmp, name=name, queue=q, auto_reply=auto, address=addr)
            c["config"]["imap"]["user"] = addr
            chans.append(c)
        # only email.so: with three instances and every plugin loaded, LeakSanitizer's tracer
        # crashes at exit on a dlclosed plugin's TLS (also with main's plugins; not a leak)
        pdir = self.empty_plugin_dir()
        shutil.copy(os.path.join(PLUGINS, "email.so"), pdir)
        cfg = base_config(pdir, channels=chans)
        for q in ("wmo", "balie"):
            cfg["queues"].append({"name": q, "strategy": "linear"})
        # Three mailbox instances in one sanitizer daemon: LeakSanitizer's own exit-time tracer
        # crashes ("Tracer caught signal 11", a sanitizer runtime fault in GLib's thread state,
        # not a leak report; also with main's plugins and with the plugins left mapped at exit).
        # AddressSanitizer and UBSan stay on; the leak scan is off for this daemon only (the
        # one- and two-mailbox tests keep it).
        d = self.daemon(cfg, start=False)
        d.env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0"
        d.start()
        for n in ("mail1", "mail2", "mail3"):
            wait_until(lambda: self.status(d, n)["connected"], 30, what="%s connected" % n)
        # loop signals first: a mailer-daemon, a list mail, a bulk mail (each to the mailbox
        # whose queue confirms): none of them may get anything
        self.mail.send(mailfix.mail(sender="MAILER-DAEMON@example.com", subject="Undelivered",
                                    message_id="<md1@example.com>"), sender="mailer-daemon@example.com")
        self.mail.send(mailfix.mail(sender="lijst@example.com", subject="Nieuwsbrief",
                                    message_id="<li1@example.com>",
                                    headers={"List-Id": "<nieuws.example.com>"}),
                       sender="lijst@example.com", rcpt="wmo@example.nl")
        self.mail.send(mailfix.mail(sender="bulk@example.com", subject="Aanbieding",
                                    message_id="<bu1@example.com>", headers={"Precedence": "bulk"}),
                       sender="bulk@example.com")
        self.mail.send(mailfix.mail(sender="piet@example.com", to="kcc@example.nl",
                                    message_id="<pq1@example.com>"), sender="piet@example.com")
        self.mail.send(mailfix.mail(sender="marie@example.com", to="wmo@example.nl", subject="Traplift",
                                    message_id="<pq2@example.com>"),
                       sender="marie@example.com", rcpt="wmo@example.nl")
        self.mail.send(mailfix.mail(sender="kees@example.com", to="balie@example.nl", subject="Afspraak",
                                    message_id="<pq3@example.com>"),
                       sender="kees@example.com", rcpt="balie@example.nl")
        piet = wait_until(lambda: self.inbox_of("piet@example.com"), 30, what="the KCC confirmation")
        marie = wait_until(lambda: self.inbox_of("marie@example.com"), 30, what="the Wmo confirmation")
        self.assertEqual(len(piet), 1)
        self.assertIn("Uw vraag aan het KCC is ontvangen.", piet[0].get_body(("plain",)).get_content())
        self.assertNotIn("Standaardbevestiging", piet[0].get_body(("plain",)).get_content())
        self.assertIn("Uw Wmo-aanvraag is ontvangen.", marie[0].get_body(("plain",)).get_content())
        for m in (piet[0], marie[0]):
            self.assertEqual(m["Auto-Submitted"], "auto-replied")
            self.assertEqual(m["X-Auto-Response-Suppress"], "All")
            self.assertIn("[KCC#", m["Subject"])
        self.assertEqual(marie[0]["In-Reply-To"], "<pq2@example.com>")
        self.assertIn("wmo@example.nl", marie[0]["From"])
        # every mail was taken in (the balie one too), and only the two confirmations went out
        wait_until(lambda: self.status(d, "mail1")["submitted"] == 3 and self.status(d, "mail2")["submitted"] == 2
                   and self.status(d, "mail3")["submitted"] == 1, 30, what="all mails taken in")
        self.assertEqual(self.status(d, "mail1")["auto_replies"], 1)
        self.assertEqual(self.status(d, "mail2")["auto_replies"], 1)
        self.assertEqual(self.status(d, "mail3")["auto_replies"], 0)
        time.sleep(1.0)              # the outbox is sent in order: anything else would be here
        for u in ("mailer-daemon", "lijst", "bulk", "kees"):
            self.assertEqual(self.inbox_of("%s@example.com" % u), [], "a confirmation went to %s" % u)
        # a second mail of the same citizen within period_s: no second confirmation
        self.mail.send(mailfix.mail(sender="piet@example.com", subject="Nog iets", message_id="<pq4@example.com>"),
                       sender="piet@example.com")
        wait_until(lambda: self.status(d, "mail1")["submitted"] == 4, 30, what="the second mail taken in")
        time.sleep(1.0)
        self.assertEqual(len(self.inbox_of("piet@example.com")), 1, "one confirmation per sender per period")

    def test_auto_reply_config_errors_name_the_field(self):
        for bad, words in (({"queues": ["algemeen"]}, "auto_reply.queues must be an object"),
                           ({"queues": {"wmo": ""}}, "auto_reply.queues.wmo"),
                           ({"queues": {"wmo": 3}}, "auto_reply.queues.wmo")):
            path = os.path.join(self.tmp, "check.json")
            with open(path, "w") as f:
                json.dump(self.config(auto_reply=bad), f)
            r = subprocess.run([ACDMD, "--check", "-c", path], cwd=REPO, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 1, r)
            self.assertIn(words, r.stderr)


@unittest.skipUnless(mailfix.available(), "dovecot/msmtpd not installed (channels/email/deps)")
class Replies(MailCase):
    def take(self, d, ws, **mail):
        self.mail.send(mailfix.mail(**mail))
        b = ws.expect("offer", 20)["bericht"]
        self.assertEqual(ws.request({"type": "accept", "bericht": b["id"]})["type"], "ack")
        return b["id"]

    def test_bounce_attaches_as_not_delivered(self):
        d = self.daemon(self.config())
        ws = self.agent_ws(d, "agent1")
        bid = self.take(d, ws, message_id="<b1@example.com>", sender="weg@example.com")
        ws.request({"type": "message", "bericht": bid, "text": "Ons antwoord"})
        self.assertEqual(ws.expect("delivery", 20, bericht=bid)["status"], "delivered")
        sent = wait_until(lambda: self.mail.messages("INBOX", user="weg@example.com"), 15, what="reply")[0]
        ours = sent["Message-ID"]
        dsn = ("From: Mail Delivery System <MAILER-DAEMON@example.com>\r\n"
               "To: kcc@example.nl\r\nSubject: Undelivered Mail Returned to Sender\r\n"
               "Message-ID: <dsn1@example.com>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
               "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
               "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
               "Final-Recipient: rfc822; weg@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
               "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: kcc@example.nl\r\nTo: weg@example.com\r\n"
               "Message-ID: %s\r\nSubject: Re: x\r\n\r\n--B--\r\n" % ours)
        self.mail.append(dsn)
        dl = ws.expect("delivery", 20, bericht=bid)
        self.assertEqual(dl["status"], "failed", dl)
        ws.expect_none("offer", 1.5)          # not new work
        wait_until(lambda: self.status(d)["bounces"] == 1, 10, what="bounce counted")
        wait_until(lambda: self.mail.count("INBOX") == 0, 10, what="bounce moved out of the inbox")

    def test_header_injection_impossible(self):
        d = self.daemon(self.config())
        ws = self.agent_ws(d, "agent1")
        bid = self.take(d, ws, message_id="<h1@example.com>", sender="klant@example.com")
        evil = "Uw vraag\r\nBcc: spion@example.com\r\nX-Evil: 1"
        # a cc that is not a plain address: refused, nothing sent to anybody
        r = ws.request({"type": "message", "bericht": bid, "text": "Antwoord",
                        "payload": {"cc": ["x@example.com>\r\nBcc: <spion@example.com"]}})
        self.assertEqual(ws.expect("delivery", 20, bericht=bid)["status"], "failed", r)
        # an injected subject and text: sent, but as one harmless Subject line
        r = ws.request({"type": "message", "bericht": bid, "text": "Antwoord\r\nBcc: spion@example.com",
                        "payload": {"subject": evil, "cc": ["collega@example.com"]}})
        self.assertEqual(r["type"], "ack", r)
        self.assertEqual(ws.expect("delivery", 20, bericht=bid)["status"], "delivered")
        got = wait_until(lambda: self.mail.messages("INBOX", user="klant@example.com"), 15, what="the reply")
        self.assertEqual(len(got), 1)
        m = got[0]
        self.assertIsNone(m["X-Evil"])
        self.assertIsNone(m["Bcc"])
        self.assertIn("Uw vraag", m["Subject"])
        self.assertIn("Bcc: spion@example.com", m["Subject"], "the text stays in the subject, harmless")
        self.assertEqual(len(self.mail.messages("INBOX", user="collega@example.com")), 1, "the cc got it")
        time.sleep(0.5)
        self.assertEqual(self.mail.messages("INBOX", user="spion@example.com"), [], "a header was injected")

    def test_reply_with_attachment(self):
        d = self.daemon(self.config())
        ws = self.agent_ws(d, "agent1")
        raw = ("From: klant@example.com\r\nTo: kcc@example.nl\r\nSubject: Formulier\r\n"
               "Message-ID: <att1@example.com>\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/mixed; boundary=\"Z\"\r\n\r\n--Z\r\nContent-Type: text/plain\r\n\r\n"
               "Zie bijlage.\r\n--Z\r\nContent-Type: application/pdf; name=\"formulier.pdf\"\r\n"
               "Content-Disposition: attachment; filename=\"formulier.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               "JVBERi0xLjQgZm9ybXVsaWVy\r\n--Z--\r\n")
        self.mail.send(raw, sender="klant@example.com")
        bid = ws.expect("offer", 20)["bericht"]["id"]
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        parts = wait_until(lambda: [m for m in d.bericht(bid).get("messages", [])
                                    if (m.get("payload") or {}).get("attachments")], 15, what="the parts message")
        att = parts[0]["payload"]["attachments"][0]
        self.assertEqual(att["filename"], "formulier.pdf")
        r = d.request("GET", "/api/v1/attachments/" + att["id"])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"%PDF-1.4 formulier")
        ack = ws.request({"type": "message", "bericht": bid, "text": "Hierbij het ingevulde formulier terug.",
                          "payload": {"attachments": [{"id": att["id"]}]}})
        self.assertEqual(ack["type"], "ack", ack)
        self.assertEqual(ws.expect("delivery", 20, bericht=bid)["status"], "delivered")
        m = wait_until(lambda: self.mail.messages("INBOX", user="klant@example.com"), 15, what="the reply")[0]
        files = [(p.get_filename(), p.get_content()) for p in m.iter_attachments()]
        self.assertEqual(files, [("formulier.pdf", b"%PDF-1.4 formulier")])


@unittest.skipUnless(mailfix.available(), "dovecot/msmtpd not installed (channels/email/deps)")
class Hostile(MailCase):
    def test_hostile_corpus_each_a_bericht(self):
        big = b"x" * 3000
        corpus = {
            "broken-boundary": (b"From: a@example.com\r\nTo: kcc@example.nl\r\nSubject: kapot\r\n"
                                b"Message-ID: <bad1@example.com>\r\nMIME-Version: 1.0\r\n"
                                b"Content-Type: multipart/mixed; boundary=\"nooit\"\r\n\r\n"
                                b"--anders\r\nContent-Type: text/plain\r\n\r\nTekst zonder grens\r\n"),
            "bad-charset": (b"From: b@example.com\r\nTo: kcc@example.nl\r\nSubject: =?x-onzin?Q?caf=E9?=\r\n"
                            b"Message-ID: <bad2@example.com>\r\nMIME-Version: 1.0\r\n"
                            b"Content-Type: text/plain; charset=x-onzin\r\n\r\nCaf\xe9 \xff\xfe kapot\r\n"),
            "8bit-header": ("From: Jos\u00e9 <c@example.com>\r\nTo: kcc@example.nl\r\nSubject: Caf\u00e9 \u20ac\r\n"
                            "Message-ID: <bad3@example.com>\r\n\r\nGewoon\r\n").encode("utf-8"),
            "latin1-header": (b"From: d@example.com\r\nTo: kcc@example.nl\r\nSubject: Caf\xe9\r\n"
                              b"Message-ID: <bad4@example.com>\r\n\r\nLatin-1\r\n"),
            "no-from": b"Subject: zonder afzender\r\nMessage-ID: <bad5@example.com>\r\n\r\nwie?\r\n",
            "html": (b"From: e@example.com\r\nTo: kcc@example.nl\r\nSubject: html\r\nMessage-ID: <bad6@example.com>\r\n"
                     b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                     b"<p onclick=\"alert(1)\">Hallo<script>alert(2)</script>"
                     b"<img src=\"https://tracker.example.com/p.gif\"><a href=\"javascript:alert(3)\">x</a>"
                     b"<img src=\"cid:logo1\"></p>\r\n"),
            "iphone": ("From: g@example.com\r\nTo: kcc@example.nl\r\nSubject: iphone\r\nMessage-ID: <bad8@example.com>\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n\r\nKlopt het adres nog?\r\n\r\nVerzonden vanaf mijn iPhone\r\n").encode(),
            "outlook": ("From: h@example.com\r\nTo: kcc@example.nl\r\nSubject: outlook\r\nMessage-ID: <bad9@example.com>\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n\r\nGraag een afspraak.\r\n\r\n"
                        "Van: Gemeente <kcc@example.nl>\r\nVerzonden: maandag 30 november 2026 10:00\r\n"
                        "Aan: h@example.com\r\nOnderwerp: afspraak\r\n\r\nOude tekst\r\n").encode(),
            "too-big": (b"From: f@example.com\r\nTo: kcc@example.nl\r\nSubject: Groot bestand\r\n"
                        b"Message-ID: <bad7@example.com>\r\n\r\n" + big + b"\r\n"),
        }
        for raw in corpus.values():
            self.mail.append(raw)
        d = self.daemon(self.config(max_bytes=2048))
        wait_until(lambda: self.status(d)["submitted"] == len(corpus), 30, what="every mail a bericht")
        wait_until(lambda: self.mail.count("INBOX") == 0, 20, what="inbox empty")
        self.assertEqual(self.mail.count("Quarantaine"), 1)
        wait_until(lambda: self.status(d)["quarantined"] == 1, 20, what="quarantine figure")
        items = {b.get("subject"): b for b in d.get_json("/api/v1/queues/algemeen/waiting?limit=50")["berichten"]}
        self.assertIn("Café", items, items.keys())                 # latin-1 8-bit header decoded
        self.assertIn("Café €", items)
        self.assertIn("kapot", items)
        big_b = d.bericht(items["Groot bestand"]["id"])
        pl = big_b["payload"]
        self.assertIn("groter dan de limiet", pl["text"])
        self.assertIn("Quarantaine", pl["text"])
        html = d.bericht(items["html"]["id"])["payload"]["email"]["html"]
        for bad in ("script", "onclick", "javascript:", "tracker.example.com", "alert"):
            self.assertNotIn(bad, html)
        self.assertIn('data-cid="logo1"', html)
        self.assertTrue(d.bericht(items["html"]["id"])["payload"]["email"]["remote_images_blocked"])
        for subj, kept, cut in (("iphone", "Klopt het adres nog?", "iPhone"), ("outlook", "Graag een afspraak.", "Oude tekst")):
            p = d.bericht(items[subj]["id"])["payload"]
            self.assertEqual(p["text"], kept, p)                  # signature / history folded away
            self.assertIn(cut, p["email"]["text_full"])           # the full original one click away
            self.assertTrue(p["email"]["folded"])
        broken = d.bericht(items["kapot"]["id"])["payload"]
        self.assertTrue(broken["email"].get("warnings"), broken)


if __name__ == "__main__":
    unittest.main()


@unittest.skipUnless(mailfix.available(), "dovecot/msmtpd not installed (channels/email/deps)")
class Outbound(MailCase):
    def test_new_mail_from_the_desk(self):
        d = self.daemon(self.config())
        ws = self.agent_ws(d, "agent1")
        ack = ws.request({"type": "originate", "channel": "mail1", "kind": "email", "to": "inwoner@example.com",
                          "text": "Uw paspoort ligt klaar.", "payload": {"subject": "Paspoort ophalen"}})
        self.assertEqual(ack["type"], "ack", ack)
        bid = ack["bericht"]
        res = ws.expect("originate_result", 20, bericht=bid)
        self.assertEqual(res["outcome"], "connected", res)
        m = wait_until(lambda: self.mail.messages("INBOX", user="inwoner@example.com"), 15, what="the new mail")[0]
        self.assertTrue(m["Subject"].startswith("Paspoort ophalen [KCC#"), m["Subject"])
        self.assertTrue(m["Message-ID"].startswith("<%s." % bid), m["Message-ID"])
        self.assertIsNone(m["In-Reply-To"])
        self.assertIn("Uw paspoort ligt klaar.", m.get_body(("plain",)).get_content())
        wait_until(lambda: self.mail.count("Sent") == 1, 15, what="in Sent")
        # the citizen's answer joins the outbound bericht (its conversation key is the thread's)
        # and reaches the agent who wrote
        self.mail.send(mailfix.mail(sender="inwoner@example.com", subject="Re: " + m["Subject"],
                                    message_id="<ans1@example.com>", body="Ik kom morgen.",
                                    headers={"In-Reply-To": m["Message-ID"], "References": m["Message-ID"]}),
                       sender="inwoner@example.com")
        wait_until(lambda: self.status(d)["submitted"] >= 1 and self.mail.count("Verwerkt") == 1, 20,
                   what="the answer taken in")
        fu = ws.expect("message", 20, bericht=bid, direction="in")
        self.assertIn("Ik kom morgen.", fu.get("text") or "", fu)
        self.assertIn("Ik kom morgen.", [m.get("text") or "" for m in d.bericht(bid)["messages"]
                                         if m.get("direction") == "in"][0])
        # a bad address is refused at once
        bad = ws.request({"type": "originate", "channel": "mail1", "kind": "email", "to": "geen adres",
                          "text": "x"})
        if bad["type"] == "ack":                 # the core asks the channel after storing it
            res = ws.expect("originate_result", 20, bericht=bad["bericht"])
            self.assertEqual(res["outcome"], "failed", res)
            self.assertIn("not a plain mail address", res.get("reason") or "", res)
        else:
            self.assertEqual(bad["type"], "error", bad)


@unittest.skipUnless(mailfix.available(), "dovecot/msmtpd not installed (channels/email/deps)")
class Sending(MailCase):
    def inbox_of_user(self, user):
        return self.mail.messages("INBOX", user=user)

    def test_smtp_down_retrying_then_delivered_across_kill9(self):
        d = self.daemon(self.config(smtp_retry_s=1))
        ws = self.agent_ws(d, "agent1")
        self.mail.send(mailfix.mail(message_id="<r1@example.com>", sender="wacht@example.com"),
                       sender="wacht@example.com")
        bid = ws.expect("offer", 20)["bericht"]["id"]
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        self.mail.stop_smtp()
        self.assertEqual(ws.request({"type": "message", "bericht": bid, "text": "Het antwoord"})["type"], "ack")
        self.assertEqual(ws.expect("delivery", 20, bericht=bid)["status"], "retrying")
        self.assertEqual(self.status(d)["outbox"], 1)
        # the outbox (kv) is durable at the store's next group commit, a few ms after deliver
        # returned (the ABI has no synchronous kv write): give the commit its moment
        wait_until(lambda: d.get_json("/api/v1/health")["store"]["queued"] == 0, 5, what="store idle")
        d.kill9()                           # the reply is only in the outbox (kv)
        self.mail.start_smtp()
        d.start()
        got = wait_until(lambda: self.mail.messages("INBOX", user="wacht@example.com"), 40,
                         what="the reply sent after the restart")
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["In-Reply-To"], "<r1@example.com>")
        wait_until(lambda: self.status(d)["outbox"] == 0 and self.mail.count("Sent") == 1, 20,
                   what="outbox empty, copy in Sent")
        time.sleep(1.5)
        self.assertEqual(len(self.mail.messages("INBOX", user="wacht@example.com")), 1, "sent once")

    def test_reply_acked_then_kill9_before_smtp_accepted_is_sent_once(self):
        """The SMTP server is paused (it accepts the connection, never greets): the agent's reply
        is acknowledged, acdmd is killed -9 while the send hangs, the server resumes, acdmd
        restarts: the citizen gets the reply exactly once, and the Sent copy is there once."""
        d = self.daemon(self.config(smtp_retry_s=1, timeout_s=30))
        ws = self.agent_ws(d, "agent1")
        self.mail.send(mailfix.mail(message_id="<k1@example.com>", sender="pauze@example.com"),
                       sender="pauze@example.com")
        bid = ws.expect("offer", 20)["bericht"]["id"]
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        smtp_pid = self.mail.msmtpd.pid
        os.kill(smtp_pid, signal.SIGSTOP)
        try:
            ack = ws.request({"type": "message", "bericht": bid, "text": "Antwoord vlak voor de crash"})
            self.assertEqual(ack["type"], "ack", ack)
            d.kill9()                       # no waiting: the ack is the promise
        finally:
            os.kill(smtp_pid, signal.SIGCONT)
        self.assertEqual(self.inbox_of_user("pauze@example.com"), [], "sent before the kill")
        d.start()
        got = wait_until(lambda: self.inbox_of_user("pauze@example.com"), 40, what="the reply after the restart")
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["In-Reply-To"], "<k1@example.com>")
        self.assertIn("Antwoord vlak voor de crash", got[0].get_body(("plain",)).get_content())
        wait_until(lambda: self.status(d)["outbox"] == 0 and self.mail.count("Sent") == 1, 20,
                   what="outbox empty, one copy in Sent")
        # the delivery is on the bericht for the agent
        wait_until(lambda: any(ev.get("type") == "delivery" for ev in d.bericht(bid).get("events", []))
                   or "delivered" in json.dumps(d.bericht(bid)), 10, what="the delivery on the bericht")
        d.stop()                             # and a clean restart sends nothing again
        d.start()
        wait_until(lambda: self.status(d)["connected"], 20, what="connected again")
        time.sleep(1.5)
        self.assertEqual(len(self.inbox_of_user("pauze@example.com")), 1, "sent twice")
        self.assertEqual(self.mail.count("Sent"), 1, "two copies in Sent")

    def test_nothing_reaches_the_citizen_before_acdm_stored_it(self):
        """A slow store (group commit 1.5 s): the reply goes to SMTP only once its outbox entry
        is committed, so a mail that reached the citizen is always one acdm remembers (the
        agent's ack waits for the same commit)."""
        cfg = self.config()
        cfg["group_commit_ms"] = 1500
        d = self.daemon(cfg)
        ws = self.agent_ws(d, "agent1")
        self.mail.send(mailfix.mail(message_id="<g1@example.com>", sender="traag@example.com"),
                       sender="traag@example.com")
        bid = ws.expect("offer", 30)["bericht"]["id"]
        self.assertEqual(ws.request({"type": "accept", "bericht": bid}, timeout=10)["type"], "ack")
        ws.send({"type": "message", "bericht": bid, "text": "Pas na opslag verzonden"})

        def acked(wait):
            # reads what the websocket has (the pushes before the ack come first)
            end = time.monotonic() + wait
            while True:
                try:
                    m = ws.recv(max(0.01, end - time.monotonic()))
                except AssertionError:
                    return False
                if m.get("type") == "ack" and m.get("re") == "message":
                    return True
                if m.get("type") == "error":
                    raise AssertionError(m)

        deadline = time.monotonic() + 20
        ok = False
        while time.monotonic() < deadline and not ok:
            ok = acked(0.05)
            if not ok and self.inbox_of_user("traag@example.com"):
                # the ack is sent at the commit, the mail leaves after it: by now it is here
                self.assertTrue(acked(0.5), "the reply reached the citizen before acdm had stored it")
                ok = True
        self.assertTrue(ok, "no ack for the reply")
        got = wait_until(lambda: self.inbox_of_user("traag@example.com"), 20, what="the reply")
        self.assertEqual(len(got), 1)


@unittest.skipUnless(mailfix.available(), "dovecot/msmtpd not installed (channels/email/deps)")
class XOAuth2(MailCase):
    """auth "xoauth2" (Microsoft 365, Gmail): SASL XOAUTH2 with a bearer token from token_file,
    read again when the file changes. Dovecot here checks the token as the account's password
    (its passdb), so a right and a wrong token can be told apart without an OAuth server."""

    def test_imap_login_with_bearer_token_rotated_in_the_file(self):
        tok = os.path.join(self.tmp, "kcc.token")
        with open(tok, "w") as f:
            f.write("verlopen-token-123\n")
        os.chmod(tok, 0o600)
        chan = self.mail.channel(self.tmp)
        chan["config"]["imap"] = {"url": self.mail.imap_url, "user": "kcc@example.nl",
                                  "auth": "xoauth2", "token_file": tok}
        d = self.daemon(base_config(PLUGINS, channels=[chan]))
        ws = self.agent_ws(d, "agent1")
        st = wait_until(lambda: (lambda s: s if s["last_error"] else None)(self.status(d)), 30,
                        what="the refused token reported")
        self.assertFalse(st["connected"], st)
        self.assertIn("login", st["last_error"].lower(), st)
        # the refresher writes a new token (a new file renamed over the old one, as most do)
        with open(tok + ".new", "w") as f:
            f.write("secret\n")
        os.replace(tok + ".new", tok)
        self.mail.send(mailfix.mail(message_id="<x1@example.com>", subject="Via OAuth"))
        b = ws.expect("offer", 60)["bericht"]
        self.assertEqual(b.get("subject"), "Via OAuth")
        wait_until(lambda: self.status(d)["connected"], 10, what="connected")
        self.assertIn("method=XOAUTH2", self.mail.log("dovecot.log"))
        self.assertNotIn("method=PLAIN", self.mail.log("dovecot.log"))

    def test_config_errors_name_the_field(self):
        path = os.path.join(self.tmp, "check.json")
        tok = os.path.join(self.tmp, "t.token")
        good = {"url": "imaps://outlook.office365.com/INBOX", "user": "kcc@gemeente.nl",
                "auth": "xoauth2", "token_file": tok}
        cases = (
            ({"imap": dict(good, auth="oauth")}, 'imap.auth must be "password" or "xoauth2"'),
            ({"imap": dict(good, password_file=tok)}, 'auth "xoauth2" takes token_file, not password_file'),
            ({"imap": {k: v for k, v in good.items() if k != "token_file"}}, "imap.token_file is required"),
            ({"imap": {k: v for k, v in good.items() if k != "user"}}, "imap.user is required"),
            ({"smtp": {"url": "smtp://smtp.office365.com:587", "user": "kcc@gemeente.nl",
                       "token_file": tok}}, 'smtp.token_file is for smtp.auth "xoauth2"'),
            ({"imap": dict(good, url="imap://imap.gemeente.nl/INBOX", starttls=False)}, "needs STARTTLS"),
        )
        for extra, words in cases:
            chan = self.mail.channel(self.tmp)
            chan["config"].update(extra)
            with open(path, "w") as f:
                json.dump(base_config(PLUGINS, channels=[chan]), f)
            r = subprocess.run([ACDMD, "--check", "-c", path], cwd=REPO, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 1, (extra, r.stdout, r.stderr))
            self.assertIn(words, r.stderr)
        # the Microsoft 365 shape of both servers is valid
        chan = self.mail.channel(self.tmp)
        chan["config"]["imap"] = good
        chan["config"]["smtp"] = {"url": "smtp://smtp.office365.com:587", "user": "kcc@gemeente.nl",
                                  "auth": "xoauth2", "token_file": tok}
        with open(path, "w") as f:
            json.dump(base_config(PLUGINS, channels=[chan]), f)
        r = subprocess.run([ACDMD, "--check", "-c", path], cwd=REPO, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        # a token file that cannot be read stops the start with its name
        d = self.daemon(base_config(PLUGINS, channels=[dict(self.mail.channel(self.tmp), config=dict(
            self.mail.channel(self.tmp)["config"], imap={"url": self.mail.imap_url, "user": "kcc@example.nl",
                                                          "auth": "xoauth2", "token_file": tok + ".missing"}))]),
)
        wait_until(lambda: "imap.token_file: cannot read" in d.stderr(), 10, what="the init error named")
