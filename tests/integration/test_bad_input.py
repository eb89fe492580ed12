"""3. Bad input: every wrong request gets a clear error naming the problem, never a crash;
the websocket answers a bad message with an `error` and stays open."""
import json
import socket
import unittest

from acdmtest import AcdmTestCase, Response

GOOD = {"queue": "algemeen", "kind": "chat", "from": "klant@example.nl", "text": "Hallo"}


def raw_post(host, port, path, headers, body, timeout=20.0):
    """A POST over a raw socket: the server may answer (413) before the body is sent, so a
    broken pipe while sending is fine as long as a response comes."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        head = "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %d\r\n" % (path, host, port, len(body))
        head += "".join("%s: %s\r\n" % kv for kv in headers.items()) + "Connection: close\r\n\r\n"
        s.sendall(head.encode())
        try:
            for i in range(0, len(body), 65536):
                s.sendall(body[i:i + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
                if b"\r\n\r\n" in data:
                    hdr, rest = data.split(b"\r\n\r\n", 1)
                    hl = {l.split(b":", 1)[0].strip().lower().decode(): l.split(b":", 1)[1].strip().decode()
                          for l in hdr.split(b"\r\n")[1:] if b":" in l}
                    if "content-length" in hl and len(rest) >= int(hl["content-length"]):
                        break
        except ConnectionResetError:
            if not data:
                raise
    finally:
        s.close()
    hdr, _, rest = data.partition(b"\r\n\r\n")
    lines = hdr.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hl = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
    if "content-length" in hl:
        rest = rest[:int(hl["content-length"])]
    return Response(status, hl, rest)


class BadRest(AcdmTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.daemon()

    def post(self, body, **kw):
        return self.d.request("POST", "/api/v1/berichten", body, **kw)

    def test_malformed_json(self):
        r = self.post('{"kind": "chat", "from": ', headers={"Content-Type": "application/json"})
        j = self.assertProblem(r, 400, "JSON")
        self.assertIn("line", j["detail"], j)
        self.assertProblem(self.post("[1, 2]"), 400, "body", "object")
        self.assertProblem(self.post(""), 400)
        self.assertProblem(self.post('{"kind": "chat", "kind": "sms", "from": "x"}'), 400, "kind")

    def test_missing_and_unknown_fields(self):
        cases = [
            ({"queue": "algemeen", "from": "x"}, "kind"),
            ({"queue": "algemeen", "kind": "chat"}, "from"),
            ({"queue": "algemeen", "kind": "chat", "from": ""}, "from"),
            ({"queue": "algemeen", "kind": "fax", "from": "x"}, "fax"),
            (dict(GOOD, colour="blue"), "colour"),
            ({"kind": "chat", "from": "x"}, "queue"),
        ]
        for body, word in cases:
            with self.subTest(body=body):
                self.assertProblem(self.post(body), 400, word)

    def test_wrong_types(self):
        cases = [
            (dict(GOOD, kind=5), "kind"),
            (dict(GOOD, **{"from": ["a"]}), "from"),
            (dict(GOOD, queue=7), "queue"),
            (dict(GOOD, text={"a": 1}), "text"),
            (dict(GOOD, priority="high"), "priority"),
            (dict(GOOD, priority=1.5), "priority"),
            (dict(GOOD, priority=12), "priority"),
            (dict(GOOD, priority=-1), "priority"),
            (dict(GOOD, payload="x"), "payload"),
            (dict(GOOD, skills="wmo"), "skills"),
            (dict(GOOD, skills=[{"name": "wmo", "level": 500}]), "skills"),
            (dict(GOOD, customer_id=12), "customer_id"),
            (dict(GOOD, conversation=True), "conversation"),
            (dict(GOOD, subject=[]), "subject"),
            (dict(GOOD, **{"from": "x" * 600}), "from"),
        ]
        for body, word in cases:
            with self.subTest(body=json.dumps(body)[:120]):
                self.assertProblem(self.post(body), 400, word)
        # nothing of that was queued, and the daemon still takes a good one
        self.assertEqual(self.d.queue("algemeen")["waiting"], 0)
        self.assertEqual(self.post(GOOD).status, 201)

    def test_unknown_queue(self):
        self.assertProblem(self.post(dict(GOOD, queue="nergens")), 404, "nergens")

    def test_unknown_bericht(self):
        self.assertProblem(self.d.request("GET", "/api/v1/berichten/0190-nope"), 404, "0190-nope")

    def test_auth(self):
        r = self.post(GOOD, token=None)
        self.assertProblem(r, 401, "token")
        self.assertEqual(r.headers.get("www-authenticate"), "Bearer", r.headers)
        self.assertProblem(self.post(GOOD, token="not-a-token"), 401)
        for path in ("/api/v1/queues", "/api/v1/agents", "/api/v1/plugins"):
            with self.subTest(path=path):
                self.assertProblem(self.d.request("GET", path, token=None), 401)
        agent = self.d.token("agent", "agent1")
        self.assertProblem(self.post(GOOD, token=agent), 403, "agent")
        self.assertProblem(self.d.request("POST", "/api/v1/reload", token=agent), 403, "agent")
        self.assertProblem(self.d.request("POST", "/api/v1/queues/algemeen/close", token=agent), 403)
        self.assertEqual(self.d.queue("algemeen")["waiting"], 0)
        self.assertTrue(self.d.queue("algemeen")["open"])

    def test_oversized_body(self):
        big = json.dumps(dict(GOOD, text="x" * (1024 * 1024 + 10))).encode()
        r = raw_post(self.d.host, self.d.port, "/api/v1/berichten",
                     {"Authorization": "Bearer " + self.d.admin_token, "Content-Type": "application/json"}, big)
        self.assertProblem(r, 413)
        # still serving
        self.assertEqual(self.post(GOOD).status, 201)


class BadWebsocket(AcdmTestCase):
    def test_errors_keep_the_socket_open(self):
        d = self.daemon()
        ws = self.agent_ws(d, "agent1", ready=False)        # logged in, not ready
        bid = d.post_bericht(GOOD).json["id"]

        def err(raw, code):
            ws.send_text(raw)
            m = ws.expect_any(("error", "ack"), 5)
            self.assertEqual(m["type"], "error", (raw, m))
            self.assertEqual(m.get("code"), code, (raw, m))
            self.assertTrue(m.get("text"), m)
            return m

        err('{"type": "login"', "malformed")
        err('"hello"', "malformed")
        err('{"bericht": "x"}', "invalid")
        m = err('{"type": "dance"}', "unknown_type")
        self.assertIn("dance", m["text"])
        # accept of a bericht that is waiting but not offered to this agent
        m = err(json.dumps({"type": "accept", "bericht": bid}), "state")
        self.assertIn("accept", m["text"])
        err(json.dumps({"type": "accept", "bericht": "no-such-bericht"}), "not_found")
        err(json.dumps({"type": "accept"}), "invalid")
        err(json.dumps({"type": "complete", "bericht": bid, "topics": "Paspoort"}), "invalid")
        err(json.dumps({"type": "complete", "bericht": bid}), "state")
        err(json.dumps({"type": "message", "bericht": bid, "text": "hoi"}), "forbidden")
        err(json.dumps({"type": "join", "queue": "nergens"}), "not_found")
        err(json.dumps({"type": "not_ready", "reason": "vakantie"}), "invalid")
        # a following valid message works on the same socket
        self.assertEqual(ws.request({"type": "ready"})["type"], "ack")
        offer = ws.expect("offer", 5, bericht=bid)
        self.assertEqual(offer["bericht"]["queue"], "algemeen")
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        self.assertEqual(d.bericht(bid)["state"], "active")

    def test_bad_token_is_refused(self):
        d = self.daemon()
        from acdmtest import WsClosed, WsClient
        with self.assertRaises(WsClosed):
            WsClient(d.host, d.port, "/ws?token=wrong")
        with self.assertRaises(WsClosed):
            WsClient(d.host, d.port, "/ws")
        self.assertEqual(d.request("GET", "/api/v1/health", token=None).status, 200)


if __name__ == "__main__":
    unittest.main()
