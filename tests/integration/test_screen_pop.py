"""Screen-pop (R50): on every offer acdmd GETs the configured case-system URL, placeholders
URL-encoded, and sends the agent `screen_pop` {bericht, status, body}. A tiny http.server stands
in for the case system: JSON and text answers, an error status, a slow one past the timeout and
one that is not there -- none of them delays the offer."""
import http.server
import json
import threading
import time
import urllib.parse

from acdmtest import AcdmTestCase, base_config


class CaseSystem:
    def __init__(self):
        self.requests = []
        self.mode = "json"
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                mode = outer.mode
                if mode == "slow":
                    time.sleep(3.0)
                if mode == "text":
                    body, ctype, status = "Jan Jansen, Dorpsstraat 1".encode(), "text/plain", 200
                elif mode == "error":
                    body, ctype, status = b'{"fout":"onbekend"}', "application/json", 500
                elif mode == "big":
                    body, ctype, status = b"x" * (70 * 1024), "text/plain", 200
                else:
                    q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                    body = json.dumps({"klant": "Jan Jansen", "tel": q.get("tel", [""])[0],
                                       "kanaal": q.get("kanaal", [""])[0]}).encode()
                    ctype, status = "application/json", 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class ScreenPop(AcdmTestCase):
    def start(self, url=None, timeout_ms=1000):
        self.cs = CaseSystem()
        self.addCleanup(self.cs.close)
        cfg = base_config(self.empty_plugin_dir())
        cfg["screen_pop"] = {"url": url or "http://127.0.0.1:%d/klant?tel={from}&kanaal={channel}&b={bericht}&q={queue}&k={kind}"
                             % self.cs.port, "timeout_ms": timeout_ms}
        self.d = self.daemon(cfg)
        self.ws = self.agent_ws(self.d, "agent1")

    def offer(self, frm="+31 6-1234 5678&x=1"):
        t0 = time.monotonic()
        r = self.d.post_bericht({"queue": "algemeen", "kind": "chat", "from": frm, "text": "hoi"})
        self.assertEqual(r.status, 201, r)
        bid = r.json["id"]
        self.ws.expect("offer", 5, bericht=bid)
        return bid, time.monotonic() - t0

    def test_json_answer_with_encoded_placeholders(self):
        self.start()
        bid, _ = self.offer()
        sp = self.ws.expect("screen_pop", 5, bericht=bid)
        self.assertEqual(sp["status"], 200, sp)
        self.assertEqual(sp["body"], {"klant": "Jan Jansen", "tel": "+31 6-1234 5678&x=1", "kanaal": "api"})
        self.assertNotIn("error", sp)
        path = self.cs.requests[-1]
        self.assertIn("tel=%2B31%206-1234%205678%26x%3D1&kanaal=api&b=" + bid + "&q=algemeen&k=chat", path)

    def test_text_error_and_too_big(self):
        self.start()
        self.cs.mode = "text"
        bid, _ = self.offer()
        sp = self.ws.expect("screen_pop", 5, bericht=bid)
        self.assertEqual((sp["status"], sp["body"]), (200, "Jan Jansen, Dorpsstraat 1"), sp)
        self.assertEqual(self.ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        self.cs.mode = "error"
        bid, _ = self.offer()
        sp = self.ws.expect("screen_pop", 5, bericht=bid)
        self.assertEqual((sp["status"], sp["body"]), (500, {"fout": "onbekend"}), sp)
        self.assertEqual(self.ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        self.cs.mode = "big"
        bid, _ = self.offer()
        sp = self.ws.expect("screen_pop", 5, bericht=bid)
        self.assertIsNone(sp["status"], sp)
        self.assertIsNone(sp["body"], sp)
        self.assertIn("too large", sp["error"])

    def test_slow_or_absent_case_system_never_delays_the_offer(self):
        self.start(timeout_ms=1500)
        self.cs.mode = "slow"
        bid, took = self.offer()
        self.assertLess(took, 1.2, "the offer waited for the case system")
        t0 = time.monotonic()
        sp = self.ws.expect("screen_pop", 5, bericht=bid)
        waited = time.monotonic() - t0
        self.assertIsNone(sp["status"], sp)
        self.assertIsNone(sp["body"], sp)
        self.assertIn("timeout: the case system did not answer within 1500 ms", sp["error"])
        self.assertLess(waited, 2.9, sp)
        # the agent works on in the meantime
        self.assertEqual(self.ws.request({"type": "accept", "bericht": bid})["type"], "ack")

    def test_case_system_down(self):
        self.start(url="http://127.0.0.1:9/klant?tel={from}")
        bid, took = self.offer()
        self.assertLess(took, 1.0)
        sp = self.ws.expect("screen_pop", 5, bericht=bid)
        self.assertIsNone(sp["status"], sp)
        self.assertTrue(sp["error"], sp)

    def test_config_errors(self):
        d = self.daemon(start=False)
        cfg = base_config(self.empty_plugin_dir())
        cfg["screen_pop"] = {"url": "https://zaak.example/klant?tel={telefoon}"}
        d.write_config(cfg)
        d.start(expect_ok=False)
        rc = d.proc.wait(30)
        d.proc = None
        d.err_file.close()
        self.assertNotEqual(rc, 0)
        self.assertIn('screen_pop.url: unknown placeholder "{telefoon}"', d.stderr())


if __name__ == "__main__":
    import unittest
    unittest.main()
