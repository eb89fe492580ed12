"""GET /api/v1/queues/{name}/waiting (R40): one queue's waiting berichten in waiting order
(priority, then original queue time) with subject, limit (default 50, 1..200), roles (agents only
for their own queues), 404 for an unknown queue, 400 naming a bad limit; a picked bericht leaves
the list while the others stay."""
import time

from acdmtest import AcdmTestCase, base_config


class QueueWaiting(AcdmTestCase):
    def start(self):
        cfg = base_config(self.empty_plugin_dir())
        cfg["queues"].append({"name": "vergunningen", "title": "Vergunningen"})
        cfg["agents"].append({"id": "agent3", "name": "Sanne", "queues": ["vergunningen"]})
        self.d = self.daemon(cfg)
        return self.d

    def post(self, frm, subject=None, priority=None, queue="algemeen", kind="chat"):
        body = {"queue": queue, "kind": kind, "from": frm, "text": "hallo"}
        if subject is not None:
            body["subject"] = subject
        if priority is not None:
            body["priority"] = priority
        r = self.d.post_bericht(body)
        self.assertIn(r.status, (200, 201, 202), r)
        return r.json["id"]

    def waiting(self, path="/api/v1/queues/algemeen/waiting", token="admin"):
        r = self.d.request("GET", path, token=token)
        self.assertEqual(r.status, 200, r)
        return r.json

    def test_order_subject_limit_pick(self):
        d = self.start()
        # nobody is logged in: everything waits
        a = self.post("+31600000001", subject="Paspoort kwijt")
        time.sleep(0.01)
        b = self.post("+31600000002", kind="email")
        time.sleep(0.01)
        c = self.post("+31600000003", subject="Spoed", priority=5)
        self.post("+31600000009", queue="vergunningen")
        j = self.waiting()
        self.assertEqual(j["queue"], "algemeen")
        self.assertEqual(j["total"], 3, j)
        self.assertEqual(j["limit"], 50, j)
        rows = j["berichten"]
        self.assertEqual([x["id"] for x in rows], [c, a, b], rows)   # priority first, then queue time
        self.assertEqual(rows[0]["priority"], 5)
        self.assertEqual(rows[0]["subject"], "Spoed")
        self.assertEqual(rows[1]["subject"], "Paspoort kwijt")
        self.assertNotIn("subject", rows[2])
        self.assertEqual(rows[2]["kind"], "email")
        self.assertEqual(rows[1]["from"], "+31600000002"[:-1] + "1")
        self.assertEqual(rows[1]["channel"], "api")
        for x in rows:
            self.assertGreaterEqual(x["wait_ms"], 0)
            self.assertLessEqual(x["queued_ms"], int(time.time() * 1000))
        self.assertLessEqual(rows[1]["queued_ms"], rows[2]["queued_ms"])

        j = self.waiting("/api/v1/queues/algemeen/waiting?limit=2")
        self.assertEqual([x["id"] for x in j["berichten"]], [c, a])
        self.assertEqual((j["total"], j["limit"]), (3, 2))
        self.assertEqual(len(self.waiting("/api/v1/queues/algemeen/waiting?limit=200")["berichten"]), 3)

        # an agent who is not ready picks the second one; it leaves the list, the others stay
        ws = self.agent_ws(d, "agent1", ready=False)
        self.assertEqual(ws.request({"type": "join", "queue": "algemeen"})["type"], "ack")
        ack = ws.request({"type": "pick", "bericht": a})
        self.assertEqual(ack["type"], "ack", ack)
        tok = d.token("agent", "agent1")
        j = self.waiting(token=tok)
        self.assertEqual([x["id"] for x in j["berichten"]], [c, b])
        self.assertEqual(j["total"], 2)

    def test_roles_and_errors(self):
        d = self.start()
        self.post("+31600000001")
        sup = d.token("supervisor", "petra")
        self.assertEqual(len(self.waiting(token=sup)["berichten"]), 1)
        # an agent: only the queues configured for them
        tok1 = d.token("agent", "agent1")
        self.assertEqual(len(self.waiting(token=tok1)["berichten"]), 1)
        self.assertProblem(d.request("GET", "/api/v1/queues/vergunningen/waiting", token=tok1), 403,
                           "vergunningen", "agent1")
        tok3 = d.token("agent", "agent3")
        self.assertEqual(self.waiting("/api/v1/queues/vergunningen/waiting", token=tok3)["berichten"], [])
        self.assertProblem(d.request("GET", "/api/v1/queues/algemeen/waiting", token=tok3), 403)
        # a channel's token and no token
        self.assertEqual(d.request("GET", "/api/v1/queues/algemeen/waiting", token=None).status, 401)
        ch = d.token("channel:web1", "web1")
        self.assertProblem(d.request("GET", "/api/v1/queues/algemeen/waiting", token=ch), 403)
        # unknown queue, bad limits
        self.assertProblem(d.request("GET", "/api/v1/queues/nietbestaand/waiting"), 404, "nietbestaand")
        for bad in ("0", "201", "abc", "-1", "", "1.5", "99999"):
            self.assertProblem(d.request("GET", "/api/v1/queues/algemeen/waiting?limit=" + bad), 400, "limit")
