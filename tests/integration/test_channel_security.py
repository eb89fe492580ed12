"""Channels that accept input never run open (issue 9, item 5): the shipped configs start with
a webhook token made at first start (mode 0600, kept across restarts), the webhook refuses
callers without it, refuses bodies that are not application/json (415: a web page's text/plain
or form POST cannot inject berichten) and refuses browser websockets from foreign origins; every
shipped config's channels are accepted by their plugins."""
import json
import os
import re
import stat

from acdmtest import (PLUGINS, REPO, WEBHOOK_TOKEN, AcdmTestCase, WsClient, WsClosed, base_config,
                      http_request, webhook_channel)


def shipped(name, plugin_dir=PLUGINS):
    """A shipped config as is, with only the folders made absolute (it is started from a temp
    working directory, so its relative data_dir and token files land there)."""
    with open(os.path.join(REPO, "conf", name)) as f:
        cfg = json.load(f)
    cfg["plugin_dir"] = plugin_dir
    cfg["ui_dir"] = os.path.join(REPO, "core", "ui")
    return cfg


class ShippedConfigs(AcdmTestCase):
    def start_shipped(self, name):
        cwd = os.path.join(self.tmp, "run-" + os.path.basename(name).replace(".json", ""))
        os.makedirs(cwd, exist_ok=True)
        d = self.daemon(shipped(name), start=False, cwd=cwd, data_dir=os.path.join(cwd, "var"))
        d.start()
        return d, cwd

    def instances(self, d):
        return {i["name"]: i for p in d.get_json("/api/v1/plugins")["plugins"] for i in p["instances"]}

    def test_shipped_config_webhook_has_a_generated_token(self):
        d, cwd = self.start_shipped("acdm.json")
        path = os.path.join(cwd, "var", "webhook.token")
        self.assertTrue(os.path.exists(path), d.stderr_tail())
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            tok = f.read().strip()
        self.assertRegex(tok, r"^[0-9a-f]{64}$")
        self.assertIn("var/webhook.token", d.stderr())          # the log says where it is
        msg = {"from": "+31612345678", "text": "Wanneer is de milieustraat open?", "id": "m1"}
        self.assertProblem(d.request("POST", "/channels/webhook/messages", msg, token=None), 401, "Bearer")
        self.assertProblem(d.request("POST", "/channels/webhook/messages", msg, token="wrong"), 401)
        self.assertProblem(d.request("POST", "/channels/webhook/end", {"bericht": "x"}, token=None), 401)
        self.assertProblem(d.request("GET", "/channels/webhook/status", token=None), 401)
        # a web page can POST text/plain (or a form, or a type-less blob) anywhere without a
        # preflight: refused even with the token
        for ct in ("text/plain", "application/x-www-form-urlencoded", None):
            h = {"Content-Type": ct} if ct else {}
            r = d.request("POST", "/channels/webhook/messages", json.dumps(msg), token=tok, headers=h)
            self.assertProblem(r, 415, "application/json")
        self.assertEqual(d.queue("algemeen")["waiting"], 0)
        r = d.request("POST", "/channels/webhook/messages", msg, token=tok)
        self.assertEqual(r.status, 201, r)
        # an API token made for the channel works too (acdmctl token create --role channel:webhook)
        ctok = d.token("channel:webhook", "crm")
        r = d.request("POST", "/channels/webhook/messages", dict(msg, id="m2"), token=ctok)
        self.assertEqual(r.status, 201, r)
        # the token survives a restart unchanged
        d.stop()
        d.start()
        with open(path) as f:
            self.assertEqual(f.read().strip(), tok)
        r = d.request("POST", "/channels/webhook/messages", msg, token=tok)
        self.assertEqual((r.status, r.json["outcome"]), (200, "duplicate"), r)

    def test_shipped_config_a_message_left_while_closed_reaches_an_agent(self):
        """Issue 9 item 12 with the shipped config: the chat's queue is closed, the visitor
        leaves a message, and an agent of the leave_message_queue is offered it."""
        d, cwd = self.start_shipped("acdm.json")
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/close").status, 200)
        agent = self.agent_ws(d, "agent2")                    # works the e-mail queue
        # the shipped instance allows "{listen}": the demo page's origin on whatever port acdmd runs
        ws = WsClient(d.host, d.port, "/channels/website/ws", headers={"Origin": "http://%s:%d" % (d.host, d.port)})
        self.sockets.append(ws)
        ws.expect("hello", 10)
        ws.send({"type": "message", "text": "Is er iemand?"})
        ws.expect("closed", 10)
        ws.send({"type": "leave_message", "name": "Piet", "email": "piet@example.nl",
                 "text": "Wilt u mij terugbellen over de vergunning?"})
        self.assertIn("Bedankt", ws.expect("left_message", 10)["text"])
        offer = agent.expect("offer", 10)
        self.assertEqual((offer["bericht"]["kind"], offer["bericht"]["from"]), ("email", "piet@example.nl"), offer)

    def test_every_shipped_config_runs_all_its_channels(self):
        for name in ["acdm.json"] + ["examples/" + f for f in sorted(os.listdir(os.path.join(REPO, "conf", "examples")))
                                     if not f.startswith("fragment")]:
            with self.subTest(config=name):
                d, cwd = self.start_shipped(name)
                with open(os.path.join(REPO, "conf", name)) as f:
                    want = [c["name"] for c in json.load(f).get("channels", [])]
                got = self.instances(d)
                for ch in want:
                    self.assertEqual(got.get(ch, {}).get("state"), "running", (ch, got.get(ch), d.stderr_tail()))
                d.stop()


class WebhookBrowserSafety(AcdmTestCase):
    def test_events_websocket_checks_origin_and_token(self):
        cfg = base_config(PLUGINS, channels=[
            webhook_channel("web1", allowed_origins=["https://crm.example.nl"])])
        d = self.daemon(cfg)
        path = "/channels/web1/events?token=" + WEBHOOK_TOKEN
        with self.assertRaises(WsClosed) as cm:                  # any web page in a local browser
            WsClient(d.host, d.port, path, headers={"Origin": "http://evil.example.com"})
        self.assertIn("403", str(cm.exception))
        with self.assertRaises(WsClosed):                        # no token
            WsClient(d.host, d.port, "/channels/web1/events", headers={"Origin": "https://crm.example.nl"})
        with self.assertRaises(WsClosed):
            WsClient(d.host, d.port, "/channels/web1/events?token=nope")
        ok = WsClient(d.host, d.port, path, headers={"Origin": "https://crm.example.nl"})
        self.sockets.append(ok)
        srv = WsClient(d.host, d.port, path)                     # a server sends no Origin
        self.sockets.append(srv)
        d.webhook_message("Hallo", "e1")
        self.assertEqual(srv.expect("queued", 5)["type"], "queued")
        self.assertEqual(ok.expect("queued", 5)["type"], "queued")

    def test_a_config_without_token_is_refused_naming_the_key(self):
        d = self.daemon(base_config(PLUGINS, channels=[webhook_channel("web1")]))
        cfg = base_config(PLUGINS, channels=[{"name": "web1", "plugin": "webhook", "queue": "algemeen", "config": {}}])
        d.write_config(cfg)
        self.assertProblem(d.request("POST", "/api/v1/reload"), 422, "token: required")
        # the running instance kept its token
        self.assertProblem(d.request("POST", "/channels/web1/messages", {"from": "x"}, token=None), 401)
