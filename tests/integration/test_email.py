"""Email channel (channels/email) end to end against a real Dovecot (IMAP, IDLE, MOVE) and an
msmtpd SMTP front on free loopback ports: a mail in the inbox reaches an agent (IDLE, and by
polling), leaves the inbox for the processed folder only after its commit, the agent's reply
arrives in the citizen's mailbox as a proper reply (In-Reply-To, References, subject tag, our
Message-ID, Thread-Index) and is in Sent, and the citizen's answer joins the same bericht."""
import base64
import threading
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
        ack = ws.request({"type": "message", "bericht": bid, "text": "U kunt een nieuw paspoort aanvragen.",
                          "payload": {"subject": "Uw paspoort", "quote": True}})
        self.assertEqual(ack["type"], "ack", ack)
        dl = ws.expect("delivery", 20, bericht=bid)
        self.assertEqual(dl["status"], "delivered", dl)
        got = wait_until(lambda: self.mail.messages("INBOX", user="customer@example.com"), 15,
                         what="the reply in the citizen's mailbox")
        r = got[0]
        self.assertEqual(r["In-Reply-To"], "<m1@example.com>")
        self.assertIn("<m1@example.com>", r["References"])
        self.assertIn("[KCC#", r["Subject"])
        self.assertTrue(r["Subject"].startswith("Uw paspoort [KCC#"), r["Subject"])
        self.assertIn("kcc@example.nl", r["From"])
        self.assertTrue(r["Message-ID"].startswith("<%s." % bid), r["Message-ID"])
        self.assertTrue(r["Message-ID"].endswith("@example.nl>"), r["Message-ID"])
        ti = base64.b64decode(r["Thread-Index"])
        self.assertEqual(len(ti), 27, "the parent Thread-Index extended by one 5-byte block")
        self.assertEqual(ti[:22], bytes(range(22)))
        self.assertIsNone(r["Auto-Submitted"])
        body = r.get_body(("plain",)).get_content()
        self.assertIn("nieuw paspoort", body)
        self.assertIn("schreef customer@example.com:", body, "the quoted history below the answer")
        self.assertIn("> Ik ben mijn paspoort kwijt.", body)
        # a copy in Sent
        wait_until(lambda: self.mail.count("Sent") == 1, 15, what="the reply appended to Sent")
        # the citizen answers the reply: it joins the same bericht, at the same agent
        self.mail.send(mailfix.mail(subject="Re: " + r["Subject"], message_id="<m2@example.com>",
                                    body="Dank u, waar kan ik dat doen?",
                                    headers={"In-Reply-To": r["Message-ID"],
                                             "References": "<m1@example.com> " + r["Message-ID"]}))
        m = ws.expect("message", 20, bericht=bid)
        while m.get("text") is None:         # the parts message (the stored original) may come first
            m = ws.expect("message", 20, bericht=bid)
        self.assertIn("waar kan ik dat doen", m["text"])
        wait_until(lambda: self.mail.count("Verwerkt") == 2, 15, what="the answer moved too")
        ws.expect_none("offer", 1.0)
        st = self.status(d)
        self.assertTrue(st["healthy"], st)
        self.assertEqual(st["backlog"], 0, st)
        self.assertEqual(st["sent"], 1, st)
        # the same figures in GET /api/v1/health (ABI 1.1 status_json)
        h = d.get_json("/api/v1/health")
        chans = h.get("channels")
        ch = [c for c in chans if c.get("name") == "mail1"][0] if isinstance(chans, list) else chans["mail1"]
        self.assertEqual(ch["status"]["sent"], 1, ch)
        self.assertIn("last_fetch", ch["status"])

    def test_burst_while_idling_all_taken_in_without_a_rescan(self):
        # mails that arrive while the channel fetches and moves the previous ones are announced
        # (EXISTS) in those commands' answers, not to the next IDLE: all must still come in at
        # once, not at the next full rescan (an hour here)
        d = self.daemon(self.config(rescan_s=3600))
        wait_until(lambda: self.status(d)["idle"], 20, what="idling")
        n = 150
        big = "Een lange brief met bijlagen in de tekst. " * 20000   # ~0.8 MB: each fetch takes a while
        def append(part):
            im = self.mail.imap()
            try:
                for i in part:
                    im.append("INBOX", "", None, mailfix.mail(subject="Burst %d" % i, body=big if i % 10 == 0 else "kort",
                                                              message_id="<burst%d@example.com>" % i))
            finally:
                im.logout()
        ts = [threading.Thread(target=append, args=(range(k, n, 3),)) for k in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wait_until(lambda: self.status(d)["submitted"] == n, 60, what="all %d mails taken in" % n)
        wait_until(lambda: self.status(d)["backlog"] == 0 and self.mail.count("INBOX") == 0, 20,
                   what="the inbox empty and the backlog figure 0")

    def test_polling_without_idle(self):
        d = self.daemon(self.config(idle=False, poll_s=1, processed_folder="acdm/verwerkt"))
        ws = self.agent_ws(d, "agent1")
        wait_until(lambda: self.status(d)["connected"], 20, what="connected")
        self.assertFalse(self.status(d)["idle"])
        self.mail.send(mailfix.mail(subject="Afval niet opgehaald", message_id="<p1@example.com>"))
        b = self.offer(ws, 20)
        self.assertEqual(b.get("subject"), "Afval niet opgehaald")
        # a nested processed folder uses the server's delimiter (Dovecot: ".")
        wait_until(lambda: self.mail.count("acdm.verwerkt") == 1 and self.mail.count("INBOX") == 0, 15,
                   what="moved to acdm.verwerkt after polling")

    def test_mail_already_in_inbox_and_missing_message_id(self):
        # two mails before acdmd starts, one without Message-ID: both taken in once
        self.mail.send(mailfix.mail(subject="Eerste", message_id="<e1@example.com>"))
        self.mail.send(mailfix.mail(subject="Zonder id", message_id=None))
        d = self.daemon(self.config())
        wait_until(lambda: self.mail.count("Verwerkt") == 2, 30, what="both moved")
        ids = self.berichten(d)
        self.assertEqual(sorted(ids.values()), ["Eerste", "Zonder id"])

    def berichten(self, d):
        items = d.get_json("/api/v1/queues/algemeen/waiting?limit=200")["berichten"]
        return {b["id"]: b.get("subject") for b in items if b.get("channel") == "mail1"}


if __name__ == "__main__":
    unittest.main()


def maildir(mail, user="kcc", domain="example.nl"):
    import os
    return os.path.join(mail.dir, "mail", domain, user, "Maildir")


@unittest.skipUnless(mailfix.available(), "dovecot/msmtpd not installed (channels/email/deps)")
class Durability(MailCase):
    """kill -9 at the two dangerous moments and a mail server that goes away: every mail is a
    bericht exactly once, and nothing stays behind in the inbox."""

    def waiting(self, d):
        r = d.get_json("/api/v1/queues/algemeen/waiting?limit=200")
        return [b for b in r["berichten"] if b.get("channel") == "mail1"]

    def assert_once(self, d, n):
        items = self.waiting(d)
        for b in items:
            b["idem_key"] = d.bericht(b["id"]).get("idem_key")
        keys = [b.get("idem_key") for b in items]
        self.assertEqual(len(items), n, "berichten: %r" % [b.get("subject") for b in items])
        self.assertEqual(len(set(keys)), n, "a mail became two berichten: %r" % keys)
        return items

    def in_messages(self, d, bid):
        j = d.bericht(bid)
        msgs = j.get("messages", [])
        return [m for m in msgs if m.get("direction") == "in" and m.get("text")]

    def test_kill9_between_commit_and_move(self):
        import os
        # the processed folder cannot be created (a file is in its place): berichten are
        # committed but the mails cannot leave the inbox -- the state a crash after the commit
        # and before the move leaves behind
        self.mail.send(mailfix.mail(subject="Aanloop", message_id="<cm-first@example.com>"))
        md = maildir(self.mail)
        self.mail.messages()          # the Maildir exists now, owned by the mail user
        blocker = os.path.join(md, ".Verwerkt")
        with open(blocker, "w") as f:
            f.write("not a folder")
        for i in range(2):
            self.mail.send(mailfix.mail(subject="Vraag %d" % i, message_id="<cm%d@example.com>" % i))
        d = self.daemon(self.config())
        wait_until(lambda: len(self.waiting(d)) == 3, 30, what="3 berichten committed")
        wait_until(lambda: "Verwerkt" in (self.status(d)["last_error"] or ""), 20, what="the move failing")
        time.sleep(1.5)                # the session retries: re-fetches must stay duplicates
        self.assertEqual(self.mail.count("INBOX"), 3)
        self.assertEqual(len(self.waiting(d)), 3)
        d.kill9()
        os.unlink(blocker)
        d.start()
        wait_until(lambda: self.mail.count("Verwerkt") == 3 and self.mail.count("INBOX") == 0, 30,
                   what="the mails moved after the restart")
        items = self.assert_once(d, 3)
        for b in items:
            ins = self.in_messages(d, b["id"])
            self.assertEqual(len(ins), 1, "the mail's text is in the thread once: %r" % ins)
        self.assertGreaterEqual(self.status(d)["duplicates"], 3)

    def uidvalidity(self):
        m = self.mail.imap()
        try:
            typ, data = m.status("INBOX", "(UIDVALIDITY)")
            return data[0].decode().split("UIDVALIDITY")[1].strip(" )")
        finally:
            m.logout()

    def test_uidvalidity_change_rescans_without_duplicates(self):
        import glob
        import os
        self.mail.send(mailfix.mail(subject="Aanloop", message_id="<uv0@example.com>"))
        md = maildir(self.mail)
        self.mail.messages()
        blocker = os.path.join(md, ".Verwerkt")
        with open(blocker, "w") as f:
            f.write("not a folder")
        self.mail.send(mailfix.mail(subject="Tweede", message_id="<uv1@example.com>"))
        d = self.daemon(self.config())
        wait_until(lambda: len(self.waiting(d)) == 2, 30, what="2 berichten committed, not moved")
        d.stop()
        before = self.uidvalidity()
        # the server forgets its UIDs: a new UIDVALIDITY, the same mails under new UIDs
        self.mail.stop_dovecot()
        time.sleep(1.1)                      # Dovecot's UIDVALIDITY is a timestamp
        for f in glob.glob(os.path.join(md, "dovecot*")):
            os.unlink(f)
        self.mail.start_dovecot()
        self.assertNotEqual(self.uidvalidity(), before)
        os.unlink(blocker)
        d.start()
        wait_until(lambda: self.mail.count("Verwerkt") == 2 and self.mail.count("INBOX") == 0, 30,
                   what="moved after the UIDVALIDITY change")
        self.assert_once(d, 2)
        self.assertGreaterEqual(self.status(d)["duplicates"], 2)

    def test_kill9_during_intake(self):
        n = 120
        for i in range(n):
            self.mail.append(mailfix.mail(subject="Massa %d" % i, message_id="<k%d@example.com>" % i))
        d = self.daemon(self.config(batch=10))
        # kill at several points of the intake: fetched-but-not-committed, committed-not-moved
        for threshold in (1, 30, 70):
            wait_until(lambda: self.mail.count("Verwerkt") >= threshold, 60, interval=0.01,
                       what="%d moved" % threshold)
            d.kill9()
            d.start()
        wait_until(lambda: self.mail.count("Verwerkt") == n, 90, what="all moved")
        self.assertEqual(self.mail.count("INBOX"), 0)
        items = self.assert_once(d, n)
        self.assertEqual(sorted(b["idem_key"] for b in items),
                         sorted("mail1:mid:k%d@example.com" % i for i in range(n)))

    def test_dovecot_restart_resumes(self):
        import os
        import shutil
        d = self.daemon(self.config())
        wait_until(lambda: self.status(d)["connected"], 20, what="connected")
        self.mail.stop_dovecot()
        wait_until(lambda: not self.status(d)["connected"], 20, what="the channel noticing")
        # mail delivered into the Maildir while the server is down
        md = maildir(self.mail)
        raw = mailfix.mail(subject="Tijdens storing", message_id="<down1@example.com>")
        p = os.path.join(md, "new", "%d.down1.test" % int(time.time()))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(raw)
        if os.getuid() == 0:
            shutil.chown(p, self.mail.user, self.mail.group)
        st = self.status(d)
        self.assertFalse(st["healthy"], st)
        self.assertTrue(st["last_error"], st)
        self.mail.start_dovecot()
        wait_until(lambda: len(self.waiting(d)) == 1, 40, what="intake resumed by itself")
        self.assertEqual(self.waiting(d)[0]["subject"], "Tijdens storing")
        wait_until(lambda: self.status(d)["connected"] and self.mail.count("Verwerkt") == 1, 20, what="moved")
