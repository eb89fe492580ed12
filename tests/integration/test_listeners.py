"""Listeners that serve only some routes (issue 13: a public listener for web chat and the
messaging webhooks, an internal one for agents and the admin API). "routes" lists groups
(api, ws, ui, metrics, channels) or path prefixes; anything else on that listener is a 404 as
if it did not exist, while the other listener serves everything. A reload changes them."""
import os
import re
import shutil
import socket
import subprocess

from acdmtest import (ACDMD, PLUGINS, REPO, WEBHOOK_TOKEN, AcdmTestCase, WsClient, WsClosed,
                      base_config, http_request, webhook_channel)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ListenerRoutes(AcdmTestCase):
    def setUp(self):
        super().setUp()
        pdir = self.empty_plugin_dir()
        shutil.copy(os.path.join(PLUGINS, "webhook.so"), pdir)
        self.public = free_port()
        self.cfg = base_config(pdir, listen=[
            "127.0.0.1:8080",   # the internal one: the harness's --listen 127.0.0.1:0 replaces it
            {"address": "127.0.0.1:%d" % self.public, "routes": ["channels", "/api/v1/health"]},
        ], channels=[webhook_channel()])
        self.d = self.daemon(self.cfg)

    def pub(self, method, path, body=None, token=None, headers=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        return http_request("127.0.0.1", self.public, method, path, body, h)

    def test_the_public_listener_serves_only_its_routes(self):
        # what it lists: the channels' routes and the health check
        self.assertEqual(self.pub("GET", "/api/v1/health").status, 200)
        r = self.pub("POST", "/channels/web1/messages", {"from": "+31611111111", "text": "Hallo", "id": "m1"},
                     token=WEBHOOK_TOKEN)
        self.assertEqual(r.status, 201, r)
        # the admin API, the UI and the agents' websocket are not there, even with a valid token
        r = self.pub("GET", "/api/v1/queues", token=self.d.admin_token)
        self.assertEqual(r.status, 404, r)
        self.assertIn("no resource at /api/v1/queues", r.json["detail"])
        self.assertEqual(self.pub("POST", "/api/v1/berichten", {"queue": "algemeen", "kind": "chat",
                                                                "from": "x", "text": "y"},
                                  token=self.d.admin_token).status, 404)
        self.assertEqual(self.pub("GET", "/").status, 404)
        self.assertEqual(self.pub("GET", "/agent.js").status, 404)
        tok = self.d.token("agent", "agent1")
        with self.assertRaises((WsClosed, OSError, AssertionError, ValueError)):
            ws = WsClient("127.0.0.1", self.public, "/ws?token=" + tok)
            self.sockets.append(ws)
            ws.expect("hello", 5)
        # the internal listener serves everything, the message that came in publicly included
        q = self.d.get_json("/api/v1/queues")
        self.assertEqual(q["queues"][0]["name"], "algemeen")
        self.assertEqual(self.d.request("GET", "/", token=None).status, 200)
        ws = self.agent_ws(self.d, "agent1")
        offer = ws.expect("offer", 10)
        self.assertEqual(offer["bericht"]["from"], "+31611111111")

    def test_a_reload_changes_what_a_listener_serves(self):
        self.assertEqual(self.pub("GET", "/api/v1/queues", token=self.d.admin_token).status, 404)
        self.cfg["listen"][1]["routes"] = ["api"]
        self.d.write_config(self.cfg)
        r = self.d.request("POST", "/api/v1/reload")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.pub("GET", "/api/v1/queues", token=self.d.admin_token).status, 200)
        r = self.pub("POST", "/channels/web1/messages", {"from": "+31611111111", "text": "Hallo", "id": "m2"},
                     token=WEBHOOK_TOKEN)
        self.assertEqual(r.status, 404, r)

    def test_an_unknown_route_group_is_a_config_error(self):
        bad = dict(self.cfg, listen=["127.0.0.1:8080", {"address": "127.0.0.1:%d" % free_port(),
                                                        "routes": ["channels", "apii"]}])
        path = os.path.join(self.tmp, "bad.json")
        self.d.write_config(bad)
        r = self.d.request("POST", "/api/v1/reload")
        self.assertProblem(r, 422, 'listen[1].routes[1]', 'unknown route group "apii"', 'did you mean "api"?')
        with open(path, "w") as f:
            import json
            json.dump(bad, f)
        c = subprocess.run([ACDMD, "--check", "-c", path], cwd=REPO, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(c.returncode, 0)
        self.assertIn('unknown route group "apii"', c.stderr + c.stdout)
        # and the running config still serves as before
        self.assertEqual(self.pub("GET", "/api/v1/queues", token=self.d.admin_token).status, 404)


class ConnectionClose(AcdmTestCase):
    """A client that says "Connection: close" (a webhook provider without keep-alive, an old
    proxy) gets the reply with "Connection: close" and then the connection closed, instead of an
    open connection it has to time out (RFC 9112 9.6)."""

    def test_the_connection_is_closed_after_the_reply(self):
        d = self.daemon()
        body = b'{"queue":"algemeen","kind":"chat","from":"+31600000001","text":"Hallo"}'
        for close in (True, False):
            s = socket.create_connection((d.host, d.port), timeout=10)
            self.sockets.append(s)
            s.sendall(b"POST /api/v1/berichten HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                      d.admin_token.encode() + b"\r\nContent-Type: application/json\r\n" +
                      (b"Connection: keep-alive, close\r\n" if close else b"") +
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            data = b""
            s.settimeout(5)
            closed = False
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        closed = True
                        break
                    data += chunk
                    head, _, rest = data.partition(b"\r\n\r\n")
                    if not close and rest and len(rest) >= int(re.search(rb"(?i)content-length: *(\d+)", head).group(1)):
                        break
            except socket.timeout:
                pass
            head = data.partition(b"\r\n\r\n")[0].lower()
            self.assertTrue(head.startswith(b"http/1.1 201"), data[:200])
            if close:
                self.assertTrue(closed, "the server kept the connection open after the reply: %r" % head)
                self.assertIn(b"connection: close", head)
            else:
                self.assertNotIn(b"connection: close", head)
                # keep-alive: a second request on the same connection is answered
                s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(s.recv(65536).lower().startswith(b"http/1.1 200"))
