"""5. Reload: a broken config is rejected with its error and the old one stays; a good one is
applied; queues are opened and closed by hand, and that survives a restart. 9. --check."""
import copy
import json
import os
import signal
import subprocess
import unittest

from acdmtest import ACDMD, REPO, SANITIZER_PATTERNS, AcdmTestCase, base_config, wait_until

CHAT = {"queue": "algemeen", "kind": "chat", "from": "+31611111111", "text": "Hallo"}


class Reload(AcdmTestCase):
    def setUp(self):
        super().setUp()
        self.cfg = base_config(self.empty_plugin_dir())
        self.d = self.daemon(self.cfg)

    def broken(self):
        bad = copy.deepcopy(self.cfg)
        bad["queues"][0]["strategy"] = "fastest"
        return bad

    def names(self):
        return [q["name"] for q in self.d.get_json("/api/v1/queues")["queues"]]

    def test_sighup_with_broken_config_keeps_running(self):
        d = self.d
        d.write_config(self.broken())
        d.proc.send_signal(signal.SIGHUP)
        want = "%s: queues[0].strategy: unknown strategy \"fastest\"" % d.config_path
        wait_until(lambda: want in d.stderr(), 10, what="the error %r in the log" % want)
        self.assertTrue(d.alive(), d.stderr_tail())
        q = d.queue("algemeen")
        self.assertEqual(q["strategy"], "linear", q)
        self.assertEqual(d.request("GET", "/api/v1/health", token=None).status, 200)
        self.assertEqual(d.post_bericht(CHAT).status, 201)

    def test_acdmctl_reload(self):
        d = self.d
        d.write_config(self.broken())
        r = d.ctl("reload")
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("queues[0].strategy", r.stderr, r)
        self.assertIn("fastest", r.stderr, r)
        self.assertEqual(d.queue("algemeen")["strategy"], "linear")
        self.assertEqual(self.names(), ["algemeen"])
        # the API says the same
        r2 = d.request("POST", "/api/v1/reload")
        self.assertProblem(r2, 422, "queues[0].strategy")

        good = copy.deepcopy(self.cfg)
        good["queues"].append({"name": "extra", "title": "Extra wachtrij", "strategy": "round-robin"})
        good["queues"][0]["strategy"] = "longest-idle"
        d.write_config(good)
        r = d.ctl("reload")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("reloaded", r.stdout, r)
        self.assertEqual(sorted(self.names()), ["algemeen", "extra"])
        self.assertEqual(d.queue("algemeen")["strategy"], "longest-idle")
        self.assertEqual(d.queue("extra")["title"], "Extra wachtrij")
        r = d.post_bericht(dict(CHAT, queue="extra"))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(d.queue("extra")["waiting"], 1)

    def test_queue_close_open_survives_restart(self):
        d = self.d
        r = d.ctl("queue", "close", "algemeen")
        self.assertEqual(r.returncode, 0, r)
        self.assertFalse(d.queue("algemeen")["open"])
        r = d.post_bericht(CHAT)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["outcome"], "closed", r.json)
        self.assertEqual(r.json["state"], "closed", r.json)
        self.assertEqual(r.json["closed_text"], "De chat is gesloten, probeer het later.", r.json)
        r = d.post_bericht(dict(CHAT, kind="email"))
        self.assertEqual(r.json["closed_text"], "Wij zijn gesloten.", r.json)   # the default text
        self.assertEqual(d.queue("algemeen")["waiting"], 0)

        # a reload of the (unchanged) file keeps the supervisor's choice
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "config reloaded" in d.stderr(), 10, what="'config reloaded' in the log")
        self.assertFalse(d.queue("algemeen")["open"])

        r = d.ctl("queue", "open", "algemeen")
        self.assertEqual(r.returncode, 0, r)
        self.assertTrue(d.queue("algemeen")["open"])
        r = d.post_bericht(CHAT)
        self.assertEqual((r.status, r.json["outcome"]), (201, "queued"), r)

        r = d.ctl("queue", "close", "nergens")
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("nergens", r.stderr)

        # closed, restart: still closed; opened, restart: open
        self.assertEqual(d.ctl("queue", "close", "algemeen").returncode, 0)
        d.stop()
        d.start()
        self.assertFalse(d.queue("algemeen")["open"], "the close did not survive a restart")
        self.assertEqual(d.post_bericht(CHAT).json["outcome"], "closed")
        self.assertEqual(d.ctl("queue", "open", "algemeen").returncode, 0)
        d.stop()
        d.start()
        self.assertTrue(d.queue("algemeen")["open"], "the open did not survive a restart")
        self.assertEqual(d.post_bericht(CHAT).json["outcome"], "queued")
        self.assertEqual(d.queue("algemeen")["waiting"], 2)   # one before, one after the restarts


class Check(AcdmTestCase):
    def check(self, path):
        r = subprocess.run([ACDMD, "--check", "-c", path], cwd=REPO, capture_output=True, text=True, timeout=60)
        for pat in SANITIZER_PATTERNS:
            self.assertNotIn(pat, r.stderr)
        return r

    def test_check_bad(self):
        bad = base_config(self.empty_plugin_dir())
        bad["queues"][0]["strategy"] = "fastest"
        bad["agents"][0]["queues"] = ["algemen"]
        path = os.path.join(self.tmp, "bad.json")
        with open(path, "w") as f:
            json.dump(bad, f)
        r = self.check(path)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn('%s: queues[0].strategy: unknown strategy "fastest"' % path, r.stderr, r)
        self.assertIn("%s: agents[0].queues[0]: unknown queue \"algemen\"" % path, r.stderr, r)
        # a syntax error gives line and column
        with open(path, "w") as f:
            f.write('{\n  "queues": [\n    {"name": "a",}\n  ]\n}\n')
        r = self.check(path)
        self.assertEqual(r.returncode, 1, r)
        self.assertRegex(r.stderr, r"%s:3:\d+: " % path)
        # a missing file
        r = self.check(os.path.join(self.tmp, "nope.json"))
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("nope.json", r.stderr)

    def test_check_shipped_config(self):
        r = self.check("conf/acdm.json")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("valid", r.stdout)
        for ex in sorted(os.listdir(os.path.join(REPO, "conf", "examples"))):
            if ex.startswith("fragment"):
                continue
            with self.subTest(example=ex):
                r = self.check(os.path.join("conf", "examples", ex))
                self.assertEqual(r.returncode, 0, r)


if __name__ == "__main__":
    unittest.main()


class Acdmctl(AcdmTestCase):
    def test_token_create_documented_form(self):
        """`acdmctl token create --role agent --name agent1` (its usage text) prints a token that works."""
        d = self.daemon()
        tok = d.token("agent", "agent1", documented_only=True)
        self.assertRegex(tok, r"^\S{20,}$")
        ws = d.ws(tok)
        self.sockets.append(ws)
        self.assertEqual(ws.expect("hello", 5)["agent"]["id"], "agent1")
        r = d.ctl("token", "create", "--role", "agent", "--name", "nobody", url=False)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("nobody", r.stderr, r)
        r = d.ctl("token", "create", "--role", "king", "--name", "x", url=False)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("king", r.stderr, r)

    def test_status_plugins_agents(self):
        d = self.daemon()
        for cmd in ("status", "plugins", "agents"):
            with self.subTest(cmd=cmd):
                r = d.ctl(cmd)
                self.assertEqual(r.returncode, 0, r)
                self.assertTrue(r.stdout.strip().startswith("{"), r)
        r = d.ctl("frobnicate")
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("usage", r.stderr)
