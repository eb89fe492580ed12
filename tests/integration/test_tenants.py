"""Tenants (R71, docs/operations.md "Tenants"): one acdmd per tenant, as acdm@TENANT.service runs
them -- each with its own config (etc/acdm/TENANT/acdm.json), data folder (--data-dir
var/lib/acdm/TENANT) and ports, side by side. Every kind of token of one tenant (admin,
supervisor, agent, metrics, channel, the webhook's own token) reads its own tenant's data and
nothing of the other's through any API: berichten, their messages, reports, the event log,
the audit log, metrics, the agents' websocket and a channel's event stream."""
import http.client
import itertools
import json
import os
import time
import urllib.parse

from acdmtest import AcdmTestCase, Daemon, Response, WsClient, WsClosed, base_config, webhook_channel

# each refused attempt comes from its own loopback address: acdmd blocks an address after a few
# failed sign-ins (429), and the test wants to see every token refused for itself (401)
_sources = ("127.0.%d.%d" % (i // 250, 2 + i % 250) for i in itertools.count())


def request_from(src, d, method, path, token, body=None):
    c = http.client.HTTPConnection(d.host, d.port, timeout=15, source_address=(src, 0))
    try:
        h = {"Authorization": "Bearer " + token}
        if body is not None:
            h["Content-Type"] = "application/json"
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = c.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        c.close()

TENANTS = ("gemeente-a", "gemeente-b")


class Tenants(AcdmTestCase):
    def setUp(self):
        super().setUp()
        plugins = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "plugins")
        self.t = {}
        for i, name in enumerate(TENANTS):
            etc = os.path.join(self.tmp, "etc", "acdm", name)
            os.makedirs(etc)
            # the same queue, agent and channel names in both: only the instance tells them apart
            cfg = base_config(plugins, channels=[webhook_channel("web1", token="wh-%s-0123456789abcdef" % name)])
            d = Daemon(self.tmp, cfg, name="acdm-" + name,
                       data_dir=os.path.join(self.tmp, "var", "lib", "acdm", name))
            os.replace(d.config_path, os.path.join(etc, "acdm.json"))
            d.config_path = os.path.join(etc, "acdm.json")
            self.daemons.append(d)
            d.start()
            tok = {"admin": d.admin_token,
                   "supervisor": d.token("supervisor", "petra"),
                   "agent": d.token("agent", "agent1"),
                   "metrics": d.token("metrics", "prometheus"),
                   "channel": d.token("channel:web1", "crm"),
                   "webhook": "wh-%s-0123456789abcdef" % name}
            text = "Vertrouwelijk bericht voor %s" % name
            r = d.request("POST", "/channels/web1/messages",
                          {"from": "+3161234567%d" % i, "text": text, "id": "m-" + name}, token=tok["webhook"])
            self.assertEqual(r.status, 201, r)
            self.t[name] = {"d": d, "tok": tok, "text": text, "bericht": r.json["bericht"]}
        a, b = (self.t[n]["d"] for n in TENANTS)
        self.assertNotEqual(a.port, b.port)
        self.assertNotEqual(os.path.realpath(a.data_dir), os.path.realpath(b.data_dir))

    def reads(self, name):
        """(role, method, path) of every read route worth stealing, for tenant name's bericht."""
        bid = self.t[name]["bericht"]
        since = urllib.parse.quote(time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() - 86400)))
        return [
            ("admin", "GET", "/api/v1/berichten"),
            ("supervisor", "GET", "/api/v1/berichten"),
            ("agent", "GET", "/api/v1/berichten?agent=agent1"),
            ("admin", "GET", "/api/v1/berichten/" + bid),
            ("channel", "GET", "/api/v1/berichten/" + bid),
            ("admin", "GET", "/api/v1/berichten/%s/messages" % bid),
            ("supervisor", "GET", "/api/v1/reports?kind=queues&period=day"),
            ("supervisor", "GET", "/api/v1/events?since=" + since),
            ("admin", "GET", "/api/v1/audit"),
            ("supervisor", "GET", "/api/v1/queues/algemeen/waiting"),
            ("metrics", "GET", "/metrics"),
        ]

    def test_each_tenant_reads_its_own_data(self):
        """The control: every token works where it belongs (so the refusals below mean something)."""
        for name in TENANTS:
            t = self.t[name]
            d = t["d"]
            r = d.request("GET", "/api/v1/berichten/" + t["bericht"], token=t["tok"]["admin"])
            self.assertEqual(r.status, 200, r)
            msgs = d.request("GET", "/api/v1/berichten/%s/messages" % t["bericht"], token=t["tok"]["admin"])
            self.assertIn(t["text"], msgs.body.decode(), msgs)
            ev = d.request("GET", self.reads(name)[7][2], token=t["tok"]["supervisor"])
            self.assertEqual(ev.status, 200, ev)
            self.assertIn(t["bericht"], ev.body.decode(), ev)
            for role, method, path in self.reads(name):
                r = d.request(method, path, token=t["tok"][role])
                self.assertNotIn(r.status, (401, 403), (name, role, path, r))
                self.assertLess(r.status, 300, (name, role, path, r))
            ws = WsClient(d.host, d.port, "/ws?token=" + t["tok"]["agent"])
            self.sockets.append(ws)
            self.assertEqual(ws.expect("hello", 10)["agent"]["id"], "agent1")
            ev = WsClient(d.host, d.port, "/channels/web1/events?token=" + t["tok"]["channel"])
            self.sockets.append(ev)
            self.assertEqual(ev.status, 101)

    def test_no_token_of_one_tenant_reads_the_other(self):
        for mine, theirs in (TENANTS, TENANTS[::-1]):
            me, them = self.t[mine], self.t[theirs]
            d = them["d"]
            for role, method, path in self.reads(theirs):
                for tok_role, tok in me["tok"].items():
                    r = request_from(next(_sources), d, method, path, tok)
                    self.assertEqual(r.status, 401, "%s's %s token on %s %s %s: %r" % (mine, tok_role, theirs, method, path, r))
                    self.assertNotIn(them["text"].encode(), r.body)
            # the agents' websocket and the channel's event stream refuse every foreign token
            for tok_role, tok in me["tok"].items():
                for path in ("/ws?token=", "/channels/web1/events?token="):
                    with self.assertRaises(WsClosed, msg="%s's %s token on %s's %s" % (mine, tok_role, theirs, path)):
                        ws = WsClient(d.host, d.port, path + tok, source_address=(next(_sources), 0))
                        self.sockets.append(ws)
                        ws.expect("hello", 3)
            # nor can one tenant's channel post into the other, and its bericht is unknown there
            r = request_from(next(_sources), d, "POST", "/channels/web1/messages", me["tok"]["webhook"],
                             {"from": "+31600000000", "text": "ingeschoven", "id": "x-" + mine})
            self.assertEqual(r.status, 401, r)
            r = d.request("GET", "/api/v1/berichten/" + me["bericht"], token=them["tok"]["admin"])
            self.assertEqual(r.status, 404, r)
            page = d.request("GET", "/api/v1/berichten", token=them["tok"]["admin"]).body.decode()
            self.assertNotIn(me["bericht"], page)
            self.assertIn(them["bericht"], page)
            self.assertNotIn("ingeschoven", page)
