"""6. kill -9 durability: every bericht acknowledged with 201 is there after a SIGKILL and a
restart, with its queue time; redeliveries stay duplicates; work in progress goes back to the
queue and agents start logged out."""
import http.client
import json
import threading
import time
import unittest

from acdmtest import AcdmTestCase, base_config, wait_until

THREADS = 4
FLOOD_S = 3.0


class Poster:
    """A client thread with a keep-alive connection, posting berichten with unique keys."""

    def __init__(self, d, n, stop):
        self.d, self.n, self.stop = d, n, stop
        self.acked = {}          # key -> (id, queued_ms)
        self.unacked = []        # keys sent without a 201 seen (maybe stored, maybe not)
        self.other = []          # unexpected statuses (before the kill)
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        c = None
        i = 0
        while not self.stop.is_set():
            key = "dur-%d-%06d" % (self.n, i)
            i += 1
            body = json.dumps({"queue": "massa", "kind": "email", "from": "k%d-%d@example.nl" % (self.n, i),
                               "subject": "Vraag %d" % i, "text": "Bericht %s" % key})
            try:
                if c is None:
                    c = http.client.HTTPConnection(self.d.host, self.d.port, timeout=10)
                c.request("POST", "/api/v1/berichten", body,
                          {"Authorization": "Bearer " + self.d.admin_token,
                           "Content-Type": "application/json", "Idempotency-Key": key})
                r = c.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                self.unacked.append(key)
                c = None
                if self.stop.is_set():
                    break
                time.sleep(0.05)
                continue
            if r.status == 201:
                j = json.loads(data)
                self.acked[key] = (j["id"], j.get("queued_ms"))
            else:
                self.unacked.append(key)
                self.other.append((r.status, data[:200]))
        if c is not None:
            c.close()


class Durability(AcdmTestCase):
    def test_kill9_loses_nothing_acknowledged(self):
        cfg = base_config(self.empty_plugin_dir())
        cfg["queues"].append({"name": "massa", "strategy": "longest-idle"})   # nobody takes these
        d = self.daemon(cfg)

        # work in progress at the kill: one bericht active with agent1, one offered to agent2
        a1 = self.agent_ws(d, "agent1")
        active = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "+31600000011"}).json
        a1.expect("offer", 5, bericht=active["id"])
        self.assertEqual(a1.request({"type": "accept", "bericht": active["id"]})["type"], "ack")
        a1.request({"type": "not_ready", "reason": "pauze"})
        a2 = self.agent_ws(d, "agent2")
        offered = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "+31600000022"}).json
        a2.expect("offer", 5, bericht=offered["id"])
        self.assertEqual(d.bericht(active["id"])["state"], "active")
        self.assertEqual(d.bericht(offered["id"])["state"], "offered")

        stop = threading.Event()
        posters = [Poster(d, n, stop) for n in range(THREADS)]
        for p in posters:
            p.t.start()
        time.sleep(FLOOD_S)
        d.kill9()                    # mid-stream: the posters are still sending
        stop.set()
        for p in posters:
            p.t.join(20)
            self.assertFalse(p.t.is_alive())
        acked = {}
        for p in posters:
            self.assertEqual(p.other, [], "non-201 answers before the kill")
            acked.update(p.acked)
        unacked = [k for p in posters for k in p.unacked]
        ids = {v[0] for v in acked.values()}
        self.assertEqual(len(ids), len(acked), "two keys acknowledged with the same id")
        self.assertGreater(len(acked), 50, "too few berichten acknowledged to test anything")
        print("\n  [durability] %d acknowledged, %d in flight at the kill" % (len(acked), len(unacked)),
              end=" ", flush=True)

        d.start()
        # every acknowledged bericht is back, waiting, with its original queue time
        missing, wrong = [], []
        c = http.client.HTTPConnection(d.host, d.port, timeout=10)
        for key, (bid, qms) in sorted(acked.items()):
            c.request("GET", "/api/v1/berichten/" + bid, headers={"Authorization": "Bearer " + d.admin_token})
            r = c.getresponse()
            data = r.read()
            if r.status != 200:
                missing.append((key, bid, r.status))
                continue
            j = json.loads(data)
            if j.get("state") != "queued" or j.get("queued_ms") != qms or j.get("idem_key") != key:
                wrong.append((key, bid, j.get("state"), j.get("queued_ms"), qms))
        c.close()
        self.assertEqual(missing, [], "acknowledged berichten lost by kill -9 (%d of %d)" % (len(missing), len(acked)))
        self.assertEqual(wrong, [], "acknowledged berichten changed by kill -9")

        waiting_after_restart = d.queue("massa")["waiting"]
        self.assertGreaterEqual(waiting_after_restart, len(acked))
        self.assertLessEqual(waiting_after_restart, len(acked) + len(unacked))

        # redeliveries of acknowledged keys are duplicates of the same bericht
        c = http.client.HTTPConnection(d.host, d.port, timeout=10)
        bad = []
        for key, (bid, _) in sorted(acked.items()):
            body = json.dumps({"queue": "massa", "kind": "email", "from": "again@example.nl"})
            c.request("POST", "/api/v1/berichten", body, {"Authorization": "Bearer " + d.admin_token,
                                                          "Idempotency-Key": key})
            r = c.getresponse()
            j = json.loads(r.read())
            if r.status != 200 or j.get("id") != bid or j.get("outcome") != "duplicate":
                bad.append((key, bid, r.status, j))
        self.assertEqual(bad[:5], [], "%d redeliveries were not duplicates" % len(bad))
        self.assertEqual(d.queue("massa")["waiting"], waiting_after_restart, "redeliveries created berichten")
        # the ones in flight at the kill: each is stored once or not at all
        dup = 0
        for key in unacked:
            r = d.post_bericht({"queue": "massa", "kind": "email", "from": "again@example.nl"}, key=key)
            self.assertIn(r.status, (200, 201), r)
            dup += r.status == 200
        self.assertEqual(waiting_after_restart, len(acked) + dup,
                         "waiting after the restart = acknowledged + in-flight ones that were stored")
        self.assertEqual(d.queue("massa")["waiting"], len(acked) + len(unacked))

        # the work in progress is waiting again with its queue time, and nobody is logged in
        for b in (active, offered):
            j = d.bericht(b["id"])
            self.assertEqual(j["state"], "queued", j)
            self.assertEqual(j["queued_ms"], b["queued_ms"], j)
            self.assertIsNone(j["agent"], j)
        self.assertEqual(d.queue("algemeen")["waiting"], 2)
        for ag in d.get_json("/api/v1/agents")["agents"]:
            self.assertEqual(ag["state"], "logged_out", ag)
            self.assertEqual(ag["work"], [], ag)
        # and they are offered again once an agent is ready
        a1 = self.agent_ws(d, "agent1")
        first = a1.expect("offer", 5)
        self.assertIn(first["bericht"]["id"], (active["id"], offered["id"]))

    def test_sigterm_restart_keeps_waiting_berichten(self):
        d = self.daemon()
        a1 = self.agent_ws(d, "agent1")
        sent = [d.post_bericht({"queue": "algemeen", "kind": "email", "from": "k%d@example.nl" % i},
                               key="term-%d" % i).json for i in range(6)]
        a1.expect("offer", 5)                        # one or more offered, the rest waiting
        d.stop()                                     # SIGTERM with an agent connected, offers open
        d.start()
        for b in sent:
            j = d.bericht(b["id"])
            self.assertEqual((j["state"], j["queued_ms"]), ("queued", b["queued_ms"]), j)
        self.assertEqual(d.queue("algemeen")["waiting"], 6)
        self.assertEqual(d.agent("agent1")["state"], "logged_out")
        r = d.post_bericht({"queue": "algemeen", "kind": "email", "from": "k0@example.nl"}, key="term-0")
        self.assertEqual((r.status, r.json["id"]), (200, sent[0]["id"]), r)


if __name__ == "__main__":
    unittest.main()
