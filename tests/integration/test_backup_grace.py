"""Online backup while acdmd runs, restore from it; the agents' reconnect grace period."""
import os
import shutil
import time
import unittest

from acdmtest import AcdmTestCase, base_config, wait_until


class Backup(AcdmTestCase):
    def test_online_backup_and_restore(self):
        d = self.daemon()
        ids = []
        for i in range(20):
            r = d.post_bericht({"queue": "algemeen", "kind": "email", "from": "b%d@example.nl" % i,
                                "subject": "Vraag %d" % i})
            self.assertEqual(r.status, 201, r.body)
            ids.append(r.json["id"])
        copy = os.path.join(self.tmp, "backup.db")
        res = d.ctl("backup", copy)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("written to", res.stdout)
        # the daemon kept serving during the backup
        self.assertEqual(d.post_bericht({"queue": "algemeen", "kind": "email", "from": "late@example.nl"}).status, 201)
        d.stop()
        # restore: the backup becomes the data folder of a new daemon
        cfg = base_config(self.empty_plugin_dir("plugins2"))
        d2 = self.daemon(cfg, start=False)
        os.makedirs(d2.data_dir, exist_ok=True)
        shutil.copy(copy, os.path.join(d2.data_dir, "acdm.db"))
        d2.start()
        self.assertEqual(d2.queue("algemeen")["waiting"], 20)   # the 20 in the backup, not the late one
        for bid in ids:
            self.assertEqual(d2.bericht(bid)["state"], "queued")

    def test_backup_to_unwritable_place_fails_clearly(self):
        d = self.daemon()
        res = d.ctl("backup", "/nonexistent-dir/x.db")
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("backup", res.stderr)


class Grace(AcdmTestCase):
    def test_reconnect_within_grace_keeps_work_then_logout_after(self):
        d = self.daemon(base_config(self.empty_plugin_dir(), agent_grace_s=2))
        ws = self.agent_ws(d, "agent1")
        bid = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "c@example.nl"}).json["id"]
        ws.expect("offer")
        ws.request({"type": "accept", "bericht": bid})
        ws.close()
        time.sleep(0.5)
        # back in time: same state, the chat is still ours
        tok = d.token("agent", "agent1")
        ws2 = d.ws(tok)
        self.sockets.append(ws2)
        hello = ws2.expect("hello")
        self.assertEqual(hello["agent"]["state"], "ready")
        self.assertEqual([w["bericht"] for w in hello["agent"]["work"]], [bid])
        ws2.close()
        # gone longer than the grace period: logged out, the chat back in the queue
        wait_until(lambda: d.agent("agent1")["state"] == "logged_out", 8, what="logout after grace")
        self.assertEqual(d.bericht(bid)["state"], "queued")


if __name__ == "__main__":
    unittest.main()
