"""Plugin ABI 1.1 through the real acdmd: a file-backed attachment a plugin stores from a file
(content-id kept, streamed by GET /api/v1/attachments/{id}), the agent's message payload carried
to the plugin's deliver (validated; the plugin reads the attachment back), the reply's message id
in the ack, the delivery report and the thread, and status_json in the plugin list, acdmctl
plugins and health. The plugin is tests/plugins/good_counter.c."""
import json
import os
import shutil
import unittest

from acdmtest import AcdmTestCase, TESTPLUGINS, base_config, wait_until


def fnv1a(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return "%08x" % h


class Abi11(AcdmTestCase):
    def start(self, extra_channels=()):
        pdir = self.empty_plugin_dir()
        shutil.copy(os.path.join(TESTPLUGINS, "good_counter.so"), pdir)
        channels = [{"name": "gc", "plugin": "good_counter", "queue": "algemeen",
                     "config": {"http": True}}] + list(extra_channels)
        self.d = self.daemon(base_config(pdir, channels=channels))
        return self.d

    def file_bericht(self, size=3 * 1024 * 1024 + 17):
        """A bericht with a file-backed attachment; the source file is deleted at once."""
        src = os.path.join(self.tmp, "upload.bin")
        data = bytes((i * 7 + i // 4096) & 0xFF for i in range(size))
        with open(src, "wb") as f:
            f.write(data)
        r = self.d.request("POST", "/channels/gc/file", src, token=None)
        self.assertEqual(r.status, 201, r)
        os.unlink(src)               # the plugin may delete it once attachment_store returned
        att = r.json["attachment"]
        # readable once committed (at the latest before the next submit's callback)
        wait_until(lambda: self.d.request("GET", "/api/v1/attachments/%s/meta" % att).status == 200,
                   10, what="the attachment committed")
        return r.json["bericht"], att, data

    def test_file_backed_attachment_round_trip(self):
        d = self.start()
        ws = self.agent_ws(d, "agent1")
        bid, att, data = self.file_bericht()
        ws.expect("offer", 10, bericht=bid)
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        tok = d.token("agent", "agent1")
        # stored under the data directory, streamed back whole, with its content-id
        self.assertTrue(os.path.isfile(os.path.join(d.data_dir, "attachments", att)))
        r = d.request("GET", "/api/v1/attachments/" + att, token=tok, timeout=60)
        self.assertEqual(r.status, 200, r.headers)
        self.assertEqual(len(r.body), len(data))
        self.assertEqual(r.body, data)
        self.assertEqual(r.headers.get("content-id"), "<part1@test>", r.headers)
        self.assertIn('filename="scan.bin"', r.headers.get("content-disposition", ""))
        m = d.get_json("/api/v1/attachments/%s/meta" % att, token=tok)
        self.assertEqual((m["bericht"], m["content_id"], m["size"], m["storage"]),
                         (bid, "part1@test", len(data), "file"), m)
        # another agent may not
        other = d.token("agent", "agent2")
        self.assertEqual(d.request("GET", "/api/v1/attachments/" + att, token=other).status, 403)

        # the agent sends it on: the payload reaches deliver, the plugin reads the file back
        payload = {"subject": "Uw scan", "cc": ["archief@example.nl"], "quote": True,
                   "attachments": [{"id": att}], "x-own": {"kept": 1}}
        ack = ws.request({"type": "message", "bericht": bid, "text": "Zie bijlage", "payload": payload})
        self.assertEqual(ack["type"], "ack", ack)
        mid = ack.get("message")
        self.assertTrue(mid, ack)
        dl = ws.expect("delivery", 10, bericht=bid)
        self.assertEqual((dl["status"], dl.get("message")), ("delivered", mid), dl)
        wait_until(lambda: any(e["type"] == "delivery" for e in d.bericht(bid)["events"]), 10,
                   what="the delivery event committed")
        b = d.bericht(bid)
        ev = [e for e in b["events"] if e["type"] == "delivery"]
        self.assertEqual(len(ev), 1, b["events"])
        det = ev[0]["detail"] if isinstance(ev[0].get("detail"), dict) else json.loads(ev[0]["detail"])
        self.assertEqual((det["rc"], det["read"], det["size"], det["fnv"], det["content_id"]),
                         (0, len(data), len(data), fnv1a(data), "part1@test"), det)
        out = [x for x in b["messages"] if x["direction"] == "out"]
        self.assertEqual(len(out), 1, b["messages"])
        self.assertEqual(out[0].get("id"), mid, out)
        self.assertEqual(out[0]["payload"], payload, out)

        # a restart keeps the file and its row (the bericht waits again: a supervisor reads it)
        d.stop()
        d.start()
        r = d.request("GET", "/api/v1/attachments/" + att, timeout=60)
        self.assertEqual((r.status, r.body == data), (200, True))

    def test_message_payload_is_validated(self):
        d = self.start()
        ws = self.agent_ws(d, "agent1")
        bid, att, _ = self.file_bericht(size=1000)
        ws.expect("offer", 10, bericht=bid)
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        cases = [
            ("not an object", "invalid", "payload: must be a JSON object"),
            ({"cc": "a@b"}, "invalid", "payload.cc"),
            ({"subject": 7}, "invalid", "payload.subject"),
            ({"attachments": [{"name": "x"}]}, "invalid", "payload.attachments[0].id"),
            ({"attachments": [{"id": "0190aaaa-0000-7000-8000-000000000000"}]}, "not_found", "no attachment"),
            ({"big": "x" * 17000}, "invalid", "larger than"),
        ]
        for pl, code, words in cases:
            with self.subTest(payload=str(pl)[:40]):
                r = ws.request({"type": "message", "bericht": bid, "text": "x", "payload": pl})
                self.assertEqual((r["type"], r.get("code")), ("error", code), r)
                self.assertIn(words, r.get("text", ""), r)
        # nothing of those reached the thread or the plugin
        self.assertEqual([m for m in d.bericht(bid)["messages"] if m["direction"] == "out"], [])
        # an attachment of a bericht the agent does not have is refused (not ready: it waits)
        self.assertEqual(ws.request({"type": "not_ready", "reason": "pauze"})["type"], "ack")
        bid2, att2, _ = self.file_bericht(size=10)
        r = ws.request({"type": "message", "bericht": bid, "text": "x", "payload": {"attachments": [{"id": att2}]}})
        self.assertEqual((r["type"], r.get("code")), ("error", "forbidden"), r)

    def test_status_json_in_plugins_ctl_and_health(self):
        d = self.start(extra_channels=[{"name": "ziek", "plugin": "good_counter", "queue": "algemeen",
                                         "config": {"sick": True}}])
        plugins = d.get_json("/api/v1/plugins")["plugins"]
        insts = {i["name"]: i for p in plugins for i in p["instances"]}
        self.assertEqual(insts["gc"].get("status"), {"healthy": True, "count": 0}, insts)
        self.assertEqual(insts["ziek"].get("status"), {"healthy": False, "count": 0}, insts)
        h = d.request("GET", "/api/v1/health", token=None)
        self.assertEqual(h.status, 200)
        self.assertEqual((h.json["status"], h.json.get("degraded")), ("degraded", ["ziek"]), h.json)
        ch = {c["name"]: c for c in h.json["channels"]}
        self.assertEqual((ch["gc"]["healthy"], ch["ziek"]["healthy"]), (True, False), ch)
        self.assertEqual(ch["ziek"]["status"], {"healthy": False, "count": 0})
        r = d.ctl("plugins")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('"healthy": false', r.stdout)


if __name__ == "__main__":
    unittest.main()
