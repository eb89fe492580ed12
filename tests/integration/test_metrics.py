"""GET /metrics: the Prometheus text format (checked by promtool from Debian's prometheus
package), only with a token of role admin or metrics, and figures that move with what happens."""
import os
import re
import shutil
import subprocess
import time
import unittest

from acdmtest import AcdmTestCase, PLUGINS, base_config, wait_until, webhook_channel

PROMTOOL = shutil.which("promtool")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset(labels)): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


class Metrics(AcdmTestCase):
    def setUp(self):
        super().setUp()
        cfg = base_config(PLUGINS, channels=[webhook_channel("web1")])
        cfg["queues"][0].update(offer_timeout_s=1, quick_drop_s=0)
        self.d = self.daemon(cfg)
        self.mtok = self.d.token("metrics", "prometheus")

    def scrape(self, token=None):
        r = self.d.request("GET", "/metrics", token=token or self.mtok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8", r)
        return r.body.decode(), parse(r.body.decode())

    def promtool(self, text):
        if not PROMTOOL:
            self.fail("promtool not found: install Debian's prometheus package (scripts/deps.sh test)")
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, "promtool check metrics:\n%s%s" % (p.stdout, p.stderr))
        self.assertEqual((p.stdout + p.stderr).strip(), "", "promtool lint findings")

    def test_only_admin_or_metrics_role(self):
        d = self.d
        r = d.request("GET", "/metrics", token=None)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(d.request("GET", "/metrics", token="not-a-token").status, 401)
        agent = d.token("agent", "agent1")
        r = d.request("GET", "/metrics", token=agent)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(d.request("GET", "/metrics", token=d.token("supervisor", "petra")).status, 403)
        self.assertEqual(d.request("GET", "/metrics").status, 200)          # admin
        # the metrics role reads /metrics and nothing else
        self.assertEqual(d.request("GET", "/api/v1/queues", token=self.mtok).status, 403)
        self.assertEqual(d.request("POST", "/api/v1/berichten", {"queue": "algemeen", "kind": "chat",
                                                                 "from": "x"}, token=self.mtok).status, 403)
        with self.assertRaises(Exception):
            d.ws(self.mtok).expect("hello", 5)

    def test_promtool_accepts_the_exposition(self):
        a1 = self.agent_ws(self.d, "agent1")
        self.d.webhook_message("hallo", "m-1")
        a1.expect("offer", 5)
        text, s = self.scrape()
        self.promtool(text)
        for fam in ("acdm_queue_waiting", "acdm_queue_longest_wait_seconds", "acdm_queue_offered_total",
                    "acdm_queue_answered_total", "acdm_queue_abandoned_total", "acdm_queue_quick_drops_total",
                    "acdm_queue_service_level_target_ratio", "acdm_queue_offers_total",
                    "acdm_queue_ring_no_answers_total", "acdm_agents", "acdm_channel_healthy",
                    "acdm_channel_deliveries_failed_total", "acdm_store_commit_seconds",
                    "acdm_store_queued_writes", "acdm_http_requests_total", "acdm_websocket_sessions",
                    "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"):
            self.assertIn("# TYPE %s " % fam, text)

    def test_values_follow_the_day(self):
        d = self.d
        _, s0 = self.scrape()
        self.assertEqual(val(s0, "acdm_queue_offered_total", queue="algemeen"), 0)
        self.assertEqual(val(s0, "acdm_queue_waiting", queue="algemeen"), 0)
        self.assertEqual(val(s0, "acdm_channel_healthy", instance="web1", plugin="webhook"), 1)
        self.assertEqual(val(s0, "acdm_agents", state="logged_out"), 2)
        self.assertEqual(val(s0, "acdm_websocket_sessions"), 0)
        start = val(s0, "process_start_time_seconds")
        self.assertTrue(time.time() - 120 < start <= time.time(), start)
        self.assertGreater(val(s0, "process_resident_memory_bytes"), 1e6)
        self.assertGreater(val(s0, "process_open_fds"), 3)

        # a bericht posted (nobody logged in) waits and is offered
        bid = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "+31600000001"}).json["id"]
        time.sleep(0.3)
        _, s1 = self.scrape()
        self.assertEqual(val(s1, "acdm_queue_offered_total", queue="algemeen"), 1)
        self.assertEqual(val(s1, "acdm_queue_waiting", queue="algemeen"), 1)
        self.assertGreater(val(s1, "acdm_queue_longest_wait_seconds", queue="algemeen"), 0.1)
        # the POST's 201 in the api class; the earlier scrape in the metrics class
        self.assertGreaterEqual(val(s1, "acdm_http_requests_total", **{"class": "api", "code": "201"}), 1)
        self.assertGreaterEqual(val(s1, "acdm_http_requests_total", **{"class": "metrics", "code": "200"}), 1)
        # the commit histogram counted the store's commits
        self.assertGreater(val(s1, "acdm_store_commit_seconds_count"), 0)
        self.assertEqual(val(s1, "acdm_store_commit_seconds_bucket", le="+Inf"),
                         val(s1, "acdm_store_commit_seconds_count"))

        # agent1 logs in: offered, does not answer (offer_timeout_s 1): a ring-no-answer
        a1 = self.agent_ws(d, "agent1")
        a1.expect("offer", 5, bericht=bid)
        a1.expect("offer_cancelled", 5, bericht=bid)
        _, s2 = self.scrape()
        self.assertGreaterEqual(val(s2, "acdm_queue_offers_total", queue="algemeen"), 1)
        self.assertGreaterEqual(val(s2, "acdm_queue_ring_no_answers_total", queue="algemeen"), 1)
        self.assertEqual(val(s2, "acdm_websocket_sessions"), 1)
        self.assertEqual(val(s2, "acdm_queue_offered_total", queue="algemeen"), 1)   # not offered again

        # answered: the agent accepts the next offer
        offer = a1.expect("offer", 5, bericht=bid)
        self.assertEqual(a1.request({"type": "accept", "bericht": offer["bericht"]["id"]})["type"], "ack")
        a1.expect("assigned", 5, bericht=bid)
        _, s3 = self.scrape()
        self.assertEqual(val(s3, "acdm_queue_answered_total", queue="algemeen"), 1)
        self.assertEqual(val(s3, "acdm_queue_waiting", queue="algemeen"), 0)
        self.assertEqual(val(s3, "acdm_agents", state="busy"), 1)
        self.assertEqual(val(s3, "acdm_queue_service_level_ratio", queue="algemeen"), 1.0)

        # a customer who leaves before anyone takes it: abandoned (quick_drop_s 0)
        a1.send({"type": "not_ready", "reason": "pauze"})
        b2 = d.webhook_message("nog een vraag", "m-2", sender="+31600000002")
        time.sleep(0.2)
        d.webhook_end(b2)
        wait_until(lambda: val(self.scrape()[1], "acdm_queue_abandoned_total", queue="algemeen") == 1, 5,
                   what="the abandoned bericht counted")
        _, s4 = self.scrape()
        self.assertEqual(val(s4, "acdm_queue_offered_total", queue="algemeen"), 2)
        self.assertEqual(val(s4, "acdm_queue_quick_drops_total", queue="algemeen"), 0)
        self.assertEqual(val(s4, "acdm_queue_service_level_ratio", queue="algemeen"), 0.5)

    def test_grafana_dashboard_uses_exposed_series(self):
        """docs/grafana-acdm.json: valid JSON whose every query names series /metrics serves."""
        import json
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "grafana-acdm.json")) as f:
            dash = json.load(f)
        text, _ = self.scrape()
        families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
        used = set()
        for p in dash["panels"]:
            self.assertTrue(p["targets"], p["title"])
            for t in p["targets"]:
                used |= set(re.findall(r"\b((?:acdm|process)_[a-z_]+)", t["expr"]))
        self.assertTrue(used)
        for name in sorted(used):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            self.assertTrue(name in families or base in families, "dashboard uses %s, not served" % name)

    def test_unhealthy_channel_shows(self):
        d = self.d
        self.assertEqual(d.request("POST", "/api/v1/plugins/webhook/disable").status, 200, "disable the webhook plugin")
        _, s = self.scrape()
        self.assertEqual(val(s, "acdm_channel_healthy", instance="web1", plugin="webhook"), 0)


if __name__ == "__main__":
    unittest.main()
