"""7. Plugin drop-in while running (and a refused one); 8. the webhook channel end to end,
with the agent's reply delivered to the instance's callback_url."""
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import unittest

from acdmtest import (ACDMD, PLUGINS, REPO, TESTPLUGINS, WEBHOOK_TOKEN, AcdmTestCase, base_config,
                      wait_until, webhook_channel)


def plugins_view(d):
    return d.get_json("/api/v1/plugins")


def instance(view, inst):
    for p in view["plugins"]:
        for i in p["instances"]:
            if i["name"] == inst:
                return p, i
    return None, None


class DropIn(AcdmTestCase):
    def test_drop_in_and_refusal(self):
        pdir = self.empty_plugin_dir()
        cfg = base_config(pdir, channels=[webhook_channel("web1")])
        d = self.daemon(cfg)
        p, i = instance(plugins_view(d), "web1")
        self.assertIsNotNone(i, plugins_view(d))
        self.assertIsNone(p["file"], p)
        self.assertEqual(i["state"], "waiting", i)
        r = d.request("POST", "/channels/web1/messages", {"from": "a@example.nl", "text": "hoi"}, token=WEBHOOK_TOKEN)
        self.assertEqual(r.status, 404, r)

        # drop the plugin in (written under a temp name, then renamed, as an installer does)
        tmp = os.path.join(pdir, ".webhook.so.part")
        shutil.copy(os.path.join(PLUGINS, "webhook.so"), tmp)
        os.rename(tmp, os.path.join(pdir, "webhook.so"))

        def running():
            p, i = instance(plugins_view(d), "web1")
            return (p, i) if i and i["state"] == "running" and p.get("file") else None
        p, i = wait_until(running, 10, interval=0.1, what="instance web1 running after the drop-in")
        self.assertEqual(p["name"], "webhook", p)
        self.assertTrue(p["file"].endswith("webhook.so"), p)
        self.assertEqual(i["queue"], "algemeen", i)

        r = d.request("POST", "/channels/web1/messages", {"from": "a@example.nl", "text": "hoi", "id": "m1"}, token=WEBHOOK_TOKEN)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["outcome"], "queued", r.json)
        self.assertEqual(d.bericht(r.json["bericht"])["channel"], "web1")
        wait_until(lambda: d.queue("algemeen")["waiting"] == 1, 5, what="the webhook bericht waiting in algemeen")

        # a plugin built for another ABI is refused with a reason, and the daemon carries on
        shutil.copy(os.path.join(TESTPLUGINS, "bad_abi_major.so"), os.path.join(pdir, "bad_abi_major.so"))

        def refused():
            for r in plugins_view(d)["refused"]:
                if r["file"].endswith("bad_abi_major.so"):
                    return r
        ref = wait_until(refused, 10, interval=0.1, what="bad_abi_major.so listed as refused")
        self.assertIn("ABI", ref["reason"].upper(), ref)
        self.assertNotIn("bad_abi_major", [p["name"] for p in plugins_view(d)["plugins"]])
        self.assertTrue(d.alive())
        self.assertEqual(d.request("GET", "/api/v1/health", token=None).status, 200)
        p, i = instance(plugins_view(d), "web1")
        self.assertEqual(i["state"], "running", i)
        # a file that is not a shared object at all
        with open(os.path.join(pdir, "junk.so"), "wb") as f:
            f.write(b"this is not an ELF file\n" * 10)
        wait_until(lambda: any(r["file"].endswith("junk.so") for r in plugins_view(d)["refused"]), 10,
                   interval=0.1, what="junk.so listed as refused")
        self.assertEqual(d.request("POST", "/channels/web1/messages", {"from": "b@example.nl", "text": "nog een"},
                                   token=WEBHOOK_TOKEN).status, 201)


class Receiver:
    """A tiny HTTP server standing in for the webhook's callback_url."""

    def __init__(self):
        self.posts = []
        self.cond = threading.Condition()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.cond:
                    outer.posts.append((self.path, dict(self.headers), body))
                    outer.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for p in self.posts:
                    if pred(p):
                        return p
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("callback not received within %.1fs; got %r" % (timeout, self.posts))
                self.cond.wait(left)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class WebhookEndToEnd(AcdmTestCase):
    def start(self):
        self.rx = Receiver()
        self.addCleanup(self.rx.close)
        pdir = self.empty_plugin_dir()
        shutil.copy(os.path.join(PLUGINS, "webhook.so"), pdir)
        cfg = base_config(pdir, channels=[{
            "name": "webhook", "plugin": "webhook", "queue": "algemeen",
            "config": {"token": WEBHOOK_TOKEN, "callback_url": "http://127.0.0.1:%d/cb" % self.rx.port,
                       "callback_token": "cb-secret", "retry_ms": 100}}])
        self.d = self.daemon(cfg)
        self.ws = self.agent_ws(self.d, "agent1")

    def receive_and_accept(self):
        d = self.d
        r = d.request("POST", "/channels/webhook/messages",
                      {"from": "+31698765432", "text": "Wanneer wordt het grofvuil opgehaald?", "id": "wh-1"},
                      token=WEBHOOK_TOKEN)
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json["message"], r.json["outcome"]), ("wh-1", "queued"), r.json)
        bid = r.json["bericht"]
        offer = self.ws.expect("offer", 10, bericht=bid)
        b = offer["bericht"]
        self.assertEqual((b["channel"], b["from"], b["queue"]), ("webhook", "+31698765432", "algemeen"), offer)
        # a redelivery of the same message id is the same bericht
        r = d.request("POST", "/channels/webhook/messages",
                      {"from": "+31698765432", "text": "Wanneer wordt het grofvuil opgehaald?", "id": "wh-1"},
                      token=WEBHOOK_TOKEN)
        self.assertEqual((r.status, r.json["bericht"], r.json["outcome"]), (200, bid, "duplicate"), r)
        self.assertEqual(self.ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        self.ws.expect("assigned", 5, bericht=bid)
        return bid

    def test_reply_reaches_callback(self):
        self.start()
        bid = self.receive_and_accept()
        reply = "Het grofvuil wordt op dinsdag opgehaald."
        self.assertEqual(self.ws.request({"type": "message", "bericht": bid, "text": reply})["type"], "ack")
        path, headers, body = self.rx.wait(lambda p: json.loads(p[2]).get("text") == reply, 10)
        self.assertEqual(path, "/cb")
        j = json.loads(body)
        self.assertEqual((j["bericht"], j["to"], j["agent"]), (bid, "+31698765432", "agent1"), j)
        self.assertEqual(headers.get("Authorization"), "Bearer cb-secret", headers)
        self.assertEqual(len(self.rx.posts), 1, self.rx.posts)
        # the same bericht's thread holds the customer's text and the reply
        msgs = wait_until(lambda: (lambda m: m if any(x.get("text") == reply for x in m) else None)(
            self.d.bericht(bid)["messages"]), 5, what="the reply in the bericht's messages")
        self.assertIn("Wanneer wordt het grofvuil opgehaald?", [m["text"] for m in msgs if m["direction"] == "in"])
        self.assertTrue(self.d.request("GET", "/channels/webhook/status", token=WEBHOOK_TOKEN).json["delivered"] >= 1)

    def test_delivered_reply_is_not_echoed_as_customer_message(self):
        """The agent's own reply must not come back to the agent as a message from the customer."""
        self.start()
        bid = self.receive_and_accept()
        reply = "Dat kan via de app."
        self.assertEqual(self.ws.request({"type": "message", "bericht": bid, "text": reply})["type"], "ack")
        self.rx.wait(lambda p: json.loads(p[2]).get("text") == reply, 10)
        time.sleep(0.5)
        echoed = [m for m in self.ws.backlog if m.get("type") == "message" and m.get("direction") == "in"
                  and m.get("text") == reply]
        try:
            while True:
                m = self.ws.recv(0.3)
                if m.get("type") == "message" and m.get("direction") == "in" and m.get("text") == reply:
                    echoed.append(m)
        except AssertionError:
            pass
        self.assertEqual(echoed, [], "the agent's reply was pushed back to the agent as an inbound message")
        ins = [m for m in self.d.bericht(bid)["messages"] if m["direction"] == "in" and m["text"] == reply]
        self.assertEqual(ins, [], "the agent's reply is stored as an inbound (customer) message")

    def test_bad_messages_are_refused(self):
        self.start()
        d = self.d
        cases = [
            ('{"from": ', 400, "JSON object"),
            ({"text": "zonder afzender"}, 400, "from"),
            ({"from": 31612345678}, 400, "from"),
            ({"from": "x", "kind": "fax"}, 400, "kind"),
            ({"from": "x", "priority": 42}, 400, "priority"),
            ({"from": "x", "queue": "nergens"}, 400, None),
        ]
        for body, status, word in cases:
            with self.subTest(body=body):
                r = d.request("POST", "/channels/webhook/messages", body, token=WEBHOOK_TOKEN,
                              headers={"Content-Type": "application/json"})
                self.assertEqual(r.status, status, r)
                self.assertTrue(r.content_type.startswith("application/problem+json"), r)
                if word:
                    self.assertIn(word, r.json["detail"], r.json)
        self.assertEqual(d.queue("algemeen")["waiting"], 0)
        self.assertEqual(d.request("GET", "/channels/webhook/status", token=WEBHOOK_TOKEN).json["rejected"], len(cases))
        # and a good one still goes through
        r = d.request("POST", "/channels/webhook/messages", {"from": "x", "text": "goed"}, token=WEBHOOK_TOKEN)
        self.assertEqual(r.status, 201, r)

    def test_route_sees_raw_query_headers_url_and_peer(self):
        """A plugin route gets the query as sent (%2B stays a plus, %26 stays inside its value),
        every header it needs for a signature, the URL and the client's address."""
        self.start()
        r = self.d.request("GET", "/channels/webhook/request?text=1%2B1%3D2+%26+meer&from=%2B31612345678&flag",
                           token=WEBHOOK_TOKEN, headers={"X-Hub-Signature-256": "sha256=abc123",
                                                "X-Twilio-Signature": "tw+sig/=", "User-Agent": "Kannel/1.4.5",
                                                "X-Kannel-SMSC": "smsc1"})
        self.assertEqual(r.status, 200, r)
        j = r.json
        self.assertEqual(j["query_raw"], "text=1%2B1%3D2%20%26%20meer&from=%2B31612345678&flag", j)
        self.assertEqual(j["url"], "http://127.0.0.1:%d/channels/webhook/request?%s" % (self.d.port, j["query_raw"]), j)
        self.assertEqual(j["peer"], "127.0.0.1", j)
        h = j["headers"]
        self.assertEqual(h.get("x-hub-signature-256"), "sha256=abc123", h)
        self.assertEqual(h.get("x-twilio-signature"), "tw+sig/=", h)
        self.assertEqual(h.get("user-agent"), "Kannel/1.4.5", h)
        self.assertEqual(h.get("x-kannel-smsc"), "smsc1", h)
        self.assertEqual(h.get("host"), "127.0.0.1:%d" % self.d.port, h)
        # decoding query_raw gives the citizen's text back exactly
        from urllib.parse import parse_qs
        self.assertEqual(parse_qs(j["query_raw"])["text"], ["1+1=2 & meer"])
        self.assertEqual(parse_qs(j["query_raw"])["from"], ["+31612345678"])

    def test_refusal_names_the_field(self):
        """submit_err: the core's refusal reaches the sender as a sentence naming the field."""
        self.start()
        r = self.d.request("POST", "/channels/webhook/messages", {"from": "x", "queue": "nergens"}, token=WEBHOOK_TOKEN)
        self.assertEqual(r.status, 400, r)
        self.assertIn('queue: no queue named "nergens"', r.json["detail"], r.json)


def counter_plugin(view):
    for p in view["plugins"]:
        if p["name"] == "good_counter" and p.get("file"):
            return p
    return None


class PluginOps(AcdmTestCase):
    """Section 1 of issue 8: a loaded .so may be overwritten, truncated or deleted at any time;
    a change seen while instances run is applied when they stop; the operator replaces, disables
    and enables a plugin deliberately (acdmctl plugin ..., POST /api/v1/plugins/{name}/...)."""

    def start_counter(self):
        self.pdir = self.empty_plugin_dir()
        self.so = os.path.join(self.pdir, "good_counter.so")
        shutil.copy(os.path.join(TESTPLUGINS, "good_counter.so"), self.so)
        cfg = base_config(self.pdir, channels=[{"name": "c1", "plugin": "good_counter", "queue": "algemeen",
                                                "config": {"tag": "t", "http": True}}])
        self.d = self.daemon(cfg)
        p = counter_plugin(plugins_view(self.d))
        self.assertEqual((p["version"], p["instances"][0]["state"]), ("1.0", "running"), p)
        return self.d

    def hello_ok(self):
        r = self.d.request("GET", "/channels/c1/hello", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["instance"], "c1", r.json)

    def overwrite_in_place(self, src, chunks=4, pause=0.05):
        """As `cp src so` does over a loaded file: truncate, then write in steps."""
        with open(src, "rb") as f:
            data = f.read()
        with open(self.so, "r+b") as f:
            f.truncate(0)
            f.flush()
            step = len(data) // chunks + 1
            for k in range(0, len(data), step):
                f.write(data[k:k + step])
                f.flush()
                os.fsync(f.fileno())
                time.sleep(pause)

    def test_overwrite_loaded_so_while_serving(self):
        d = self.start_counter()
        errors, served = [], [0]
        stop = threading.Event()

        def traffic():
            while not stop.is_set():
                try:
                    r = d.request("GET", "/channels/c1/hello", token=None, timeout=5)
                    if r.status != 200:
                        errors.append(r)
                    served[0] += 1
                    plugins_view(d)     # reads the descriptor's strings
                except Exception as e:  # the daemon died, or stopped answering
                    errors.append(e)
                    return
        t = threading.Thread(target=traffic, daemon=True)
        t.start()
        try:
            time.sleep(0.2)
            self.overwrite_in_place(os.path.join(TESTPLUGINS, "good_counter_v2.so"))
            time.sleep(0.5)
            with open(self.so, "r+b") as f:      # truncated to nothing, then gone
                f.truncate(0)
            time.sleep(0.4)
            os.unlink(self.so)
            time.sleep(0.4)
        finally:
            stop.set()
            t.join(10)
        self.assertTrue(d.alive(), d.stderr_tail())
        self.assertEqual(errors, [])
        self.assertGreater(served[0], 5)
        # the build that was loaded still serves: the change is remembered, not applied
        p = counter_plugin(plugins_view(d))
        self.assertEqual((p["version"], p["instances"][0]["state"]), ("1.0", "running"), p)
        self.assertTrue(p["changed"], p)
        self.hello_ok()
        # the operator's reload of a plugin whose file is gone is refused in a sentence
        r = d.ctl("plugin", "reload", "good_counter")
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("good_counter.so", r.stderr)
        self.assertIn("keeps running", r.stderr)
        self.hello_ok()
        # a new build put back (renamed into place) is loaded by the operator's reload
        shutil.copy(os.path.join(TESTPLUGINS, "good_counter_v2.so"), self.so + ".part")
        os.rename(self.so + ".part", self.so)
        r = d.ctl("plugin", "reload", "good_counter")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["version"], "2.0", r.stdout)
        p = counter_plugin(plugins_view(d))
        self.assertEqual((p["version"], p["instances"][0]["state"], p["changed"]), ("2.0", "running", False), p)
        self.hello_ok()

    def test_change_applied_when_instances_stop(self):
        d = self.start_counter()
        self.overwrite_in_place(os.path.join(TESTPLUGINS, "good_counter_v2.so"))
        wait_until(lambda: counter_plugin(plugins_view(d))["changed"], 10, what="the change remembered")
        self.assertEqual(counter_plugin(plugins_view(d))["version"], "1.0")
        self.hello_ok()
        # disabling stops the instances: the remembered build is loaded then, still disabled
        r = d.request("POST", "/api/v1/plugins/good_counter/disable")
        self.assertEqual(r.status, 200, r)
        p = wait_until(lambda: (lambda p: p if p["version"] == "2.0" else None)(counter_plugin(plugins_view(d))),
                       10, what="version 2.0 loaded once no instance ran")
        self.assertEqual((p["enabled"], p["changed"]), (False, False), p)
        i = p["instances"][0]
        self.assertEqual(i["state"], "disabled", i)
        self.assertIn("acdmctl plugin enable good_counter", i["reason"], i)
        self.assertEqual(d.request("GET", "/channels/c1/hello", token=None).status, 404)
        r = d.ctl("plugin", "enable", "good_counter")
        self.assertEqual(r.returncode, 0, r.stderr)
        p = counter_plugin(plugins_view(d))
        self.assertEqual((p["version"], p["enabled"], p["instances"][0]["state"]), ("2.0", True, "running"), p)
        self.assertIsNone(p["instances"][0].get("reason"), p)
        self.hello_ok()

    def test_reload_answers_work_in_flight_and_refuses_a_bad_build(self):
        d = self.start_counter()
        # a deferred request the plugin still owes is answered when its instance stops
        res = {}
        t = threading.Thread(target=lambda: res.setdefault(
            "r", d.request("POST", "/channels/c1/later", {"x": 1}, token=None, timeout=20)), daemon=True)
        t.start()
        time.sleep(0.5)
        shutil.copy(os.path.join(TESTPLUGINS, "good_counter_v2.so"), self.so + ".part")
        os.rename(self.so + ".part", self.so)
        r = d.request("POST", "/api/v1/plugins/good_counter/reload")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["version"], "2.0", r.json)
        t.join(10)
        self.assertEqual(res["r"].status, 503, res.get("r"))
        self.hello_ok()
        # a build this core cannot load is refused with the reason; 2.0 keeps running
        shutil.copy(os.path.join(TESTPLUGINS, "bad_abi_major.so"), self.so + ".part")
        os.rename(self.so + ".part", self.so)
        r = d.request("POST", "/api/v1/plugins/good_counter/reload")
        self.assertProblem(r, 409, "ABI", "keeps running")
        p = counter_plugin(plugins_view(d))
        self.assertEqual((p["version"], p["instances"][0]["state"]), ("2.0", "running"), p)
        self.hello_ok()
        # only the admin may; an unknown plugin is a 404 in words
        sup = d.token("supervisor", "sup1")
        self.assertEqual(d.request("POST", "/api/v1/plugins/good_counter/disable", token=sup).status, 403)
        self.assertProblem(d.request("POST", "/api/v1/plugins/nonesuch/reload"), 404, "nonesuch")
        r = d.ctl("plugin", "disable", "nonesuch")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no plugin named \"nonesuch\"", r.stderr)


class MissingPlugin(AcdmTestCase):
    """Section 1: a channel whose plugin is in no .so of the plugin folder is named by --check
    and by a reload (a warning: the instance waits for a drop-in), and acdmctl plugins says why."""

    def test_check_and_reload_warn_and_plugins_say_why(self):
        pdir = self.empty_plugin_dir()
        shutil.copy(os.path.join(TESTPLUGINS, "good_counter.so"), pdir)
        chans = [{"name": "c1", "plugin": "good_counter", "queue": "algemeen", "config": {}},
                 {"name": "sms1", "plugin": "smss", "queue": "algemeen", "config": {}}]
        cfg = base_config(pdir, channels=chans)
        path = os.path.join(self.tmp, "check.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([ACDMD, "--check", "-c", path], cwd=REPO, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("valid", r.stdout)
        self.assertIn("warning", r.stderr)
        self.assertIn('"smss" is in no .so', r.stderr)
        self.assertIn("sms1", r.stderr)
        self.assertNotIn("(c1)", r.stderr)   # the instance name as warnings write it (a temp path may hold "c1")
        # a plugin's check_config refusal is an error for --check, as for a reload
        chans[0]["config"] = {"bad": True}
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([ACDMD, "--check", "-c", path], cwd=REPO, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn('channels[0] (c1): plugin good_counter: "bad" must not be true', r.stderr)
        chans[0]["config"] = {}

        d = self.daemon(base_config(pdir, channels=[chans[0] | {"config": {}}]))
        d.write_config(base_config(pdir, channels=[chans[0] | {"config": {}}, chans[1]]))
        r = d.request("POST", "/api/v1/reload")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json["warnings"]), 1, r.json)
        self.assertIn("smss", r.json["warnings"][0])
        self.assertIn("reload: channels[1] (sms1)", d.stderr())
        out = d.ctl("plugins")
        self.assertEqual(out.returncode, 0, out.stderr)
        view = json.loads(out.stdout)
        _, i = instance(view, "sms1")
        self.assertEqual(i["state"], "waiting", i)
        self.assertIn("no .so", i["reason"], i)
        self.assertIn(pdir, i["reason"], i)


class CoreInternals(AcdmTestCase):
    """Section 1: acdmd exports nothing to plugins; a plugin that calls a core internal is
    refused at load with a reason naming the function."""

    def test_plugin_calling_core_internal_is_refused(self):
        pdir = self.empty_plugin_dir()
        shutil.copy(os.path.join(TESTPLUGINS, "calls_internal.so"), pdir)
        d = self.daemon(base_config(pdir, channels=[
            {"name": "x", "plugin": "calls_internal", "queue": "algemeen", "config": {}}]))
        ref = [r for r in plugins_view(d)["refused"] if r["file"].endswith("calls_internal.so")]
        self.assertEqual(len(ref), 1, plugins_view(d))
        self.assertIn("acdm_log_raw", ref[0]["reason"])
        self.assertIn("not part of the plugin ABI", ref[0]["reason"])
        _, i = instance(plugins_view(d), "x")
        self.assertEqual(i["state"], "waiting", i)
        self.assertTrue(d.alive())


if __name__ == "__main__":
    unittest.main()
