"""R32: supervisors and admins add, change and remove agents over REST (core/api/api_agents.c).

API-managed agents live in acdm.d/50-agents-api.json beside the main config; every change is a
reload (all or nothing): a refused one leaves the fragment file and the running agents as they
were. Agents of the main file are not the API's (409 naming the file)."""
import json
import os

from acdmtest import AcdmTestCase, WsClosed, base_config, wait_until

CHAT = {"queue": "algemeen", "kind": "chat", "from": "+31622222222", "text": "Hallo"}


class ApiAgents(AcdmTestCase):
    def setUp(self):
        super().setUp()
        cfg = base_config(self.empty_plugin_dir())
        cfg["queues"].append({"name": "vergunningen", "title": "Vergunningen"})
        self.d = self.daemon(cfg)
        self.frag_dir = os.path.join(os.path.dirname(self.d.config_path), "acdm.d")
        self.frag = os.path.join(self.frag_dir, "50-agents-api.json")
        self.sup = self.d.token("supervisor", "petra")

    def frag_text(self):
        with open(self.frag, "rb") as f:
            return f.read()

    def add(self, body, token=None):
        return self.d.request("POST", "/api/v1/agents", body, token=token or self.sup)

    def test_add_login_offer_change_remove_restart(self):
        d = self.d
        self.assertFalse(os.path.exists(self.frag_dir))       # created on the first change
        r = self.add({"id": "sanne", "name": "Sanne", "queues": ["algemeen"], "skills": ["wmo"],
                      "capacity": {"chat": 1}})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.headers.get("location"), "/api/v1/agents/sanne")
        self.assertEqual((r.json["id"], r.json["name"], r.json["state"]), ("sanne", "Sanne", "logged_out"))
        self.assertEqual([q["queue"] for q in r.json["queues"]], ["algemeen"])
        doc = json.loads(self.frag_text())
        self.assertEqual(doc, {"agents": [{"id": "sanne", "name": "Sanne", "queues": ["algemeen"],
                                           "skills": ["wmo"], "capacity": {"chat": 1}}]})
        self.assertFalse([n for n in os.listdir(self.frag_dir) if n.endswith(".tmp")])
        self.assertIsNotNone(d.agent("sanne"))

        # a token for the new agent; they log in over /ws and get an offer
        ws = self.agent_ws(d, "sanne")
        bid = d.post_bericht(CHAT).json["id"]
        offer = ws.expect("offer", 10)
        self.assertEqual(offer["bericht"]["id"], bid)

        # change their name and queues (vergunningen added); the offer in hand stays
        r = d.request("PUT", "/api/v1/agents/sanne", {"name": "Sanne de Vries",
                                                      "queues": ["algemeen", "vergunningen"]}, token=self.sup)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["name"], "Sanne de Vries")
        self.assertEqual(sorted(q["queue"] for q in r.json["queues"]), ["algemeen", "vergunningen"])
        self.assertEqual(json.loads(self.frag_text())["agents"][0]["queues"], ["algemeen", "vergunningen"])
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        self.assertEqual(d.bericht(bid)["agent"], "sanne")

        # remove them while they hold the chat: logged out, the chat goes back to the queue
        r = d.request("DELETE", "/api/v1/agents/sanne", token=self.sup)
        self.assertEqual(r.status, 204, r)
        st = ws.expect("state", 10)
        while st["agent"]["state"] != "logged_out":
            st = ws.expect("state", 10)
        self.assertEqual(st["agent"]["id"], "sanne")
        self.assertIsNone(d.agent("sanne"))
        b = d.bericht(bid)
        self.assertEqual((b["state"], b["agent"], b["queue"]), ("queued", None, "algemeen"), b)
        self.assertEqual(json.loads(self.frag_text()), {"agents": []})
        self.assertTrue(os.path.exists(os.path.join(self.frag_dir, ".50-agents-api.json.prev")))
        # an agent they are no longer: told so, and the socket is closed (code 4004)
        err = ws.expect("error", 10, code="agent_removed")
        self.assertIn("sanne", err["text"])
        self.assertEqual(ws.expect_close(), (4004, "agent removed"))

        # an agent added over the API survives a restart
        self.assertEqual(self.add({"id": "bram", "queues": ["vergunningen"]}).status, 201)
        d.stop()
        d.start()
        a = d.agent("bram")
        self.assertIsNotNone(a)
        self.assertEqual([q["queue"] for q in a["queues"]], ["vergunningen"])
        self.assertIsNone(d.agent("sanne"))
        # the audit log has every change
        ev = d.get_json("/api/v1/audit")
        items = ev.get("items", ev.get("events", ev)) if isinstance(ev, dict) else ev
        acts = [(x.get("detail", x).get("action"), x.get("detail", x).get("target"))
                for x in items if isinstance(x, dict)]
        for want in [("agent_add", "sanne"), ("agent_update", "sanne"), ("agent_remove", "sanne"),
                     ("agent_add", "bram")]:
            self.assertIn(want, acts, ev)

    def test_removed_agent_tokens_revoked_and_socket_closed(self):
        """DELETE revokes every API token bound to the agent (401 from then on, also after the
        same id is added again: a new agent gets new tokens) and closes their websockets with an
        error agent_removed and close code 4004; other agents' tokens are untouched."""
        d = self.d
        self.assertEqual(self.add({"id": "sanne", "queues": ["algemeen"]}).status, 201)
        tok, tok2, other = d.token("agent", "sanne"), d.token("agent", "sanne"), d.token("agent", "agent1")
        for t in (tok, tok2, other):
            self.assertEqual(d.request("GET", "/api/v1/queues", token=t).status, 200)   # cached now
        ws = self.agent_ws(d, "sanne", ready=False)
        ws2 = d.ws(tok)
        self.sockets.append(ws2)
        ws2.expect("hello", 10)

        self.assertEqual(d.request("DELETE", "/api/v1/agents/sanne", token=self.sup).status, 204)
        for w in (ws, ws2):
            w.expect("error", 10, code="agent_removed")
            self.assertEqual(w.expect_close(), (4004, "agent removed"))
        for t in (tok, tok2):
            self.assertEqual(d.request("GET", "/api/v1/queues", token=t).status, 401)
            with self.assertRaises(WsClosed):
                d.ws(t)
        self.assertEqual(d.request("GET", "/api/v1/queues", token=other).status, 200)

        # the same id again: the old tokens stay refused, a new one works
        self.assertEqual(self.add({"id": "sanne", "queues": ["algemeen"]}).status, 201)
        for t in (tok, tok2):
            self.assertEqual(d.request("GET", "/api/v1/queues", token=t).status, 401)
            with self.assertRaises(WsClosed):
                d.ws(t)
        self.assertEqual(self.agent_ws(d, "sanne", ready=False).request({"type": "ready"})["type"], "ack")

        # and after a restart (revoked in the store, not only in the cache)
        d.stop()
        d.start()
        self.assertEqual(d.request("GET", "/api/v1/queues", token=tok).status, 401)
        ev = d.get_json("/api/v1/audit")
        items = ev.get("items", ev.get("events", ev)) if isinstance(ev, dict) else ev
        rm = [x.get("detail", x) for x in items if isinstance(x, dict)
              and x.get("detail", x).get("action") == "agent_remove"]
        self.assertEqual(rm[-1].get("tokens_revoked"), 3, rm)   # tok, tok2 and agent_ws's own

    def test_rejected_change_leaves_everything(self):
        d = self.d
        self.assertEqual(self.add({"id": "sanne", "queues": ["algemeen"]}).status, 201)
        before = self.frag_text()
        # an unknown queue: the validator's error names the file and the JSON path
        r = self.add({"id": "bram", "queues": ["algemeen", "vergunning"]})
        j = self.assertProblem(r, 422, "50-agents-api.json", "agents[1].queues[1]", "unknown queue \"vergunning\"")
        self.assertTrue(any("agents[1].queues[1]" in e for e in j["errors"]), j)
        self.assertEqual(self.frag_text(), before)
        self.assertIsNone(d.agent("bram"))
        r = d.request("PUT", "/api/v1/agents/sanne", {"queues": ["nergens"]}, token=self.sup)
        self.assertProblem(r, 422, "agents[0].queues[0]", "nergens")
        self.assertEqual(self.frag_text(), before)
        self.assertEqual([q["queue"] for q in d.agent("sanne")["queues"]], ["algemeen"])
        r = self.add({"id": "bram", "capacity": {"chat": 500}})
        self.assertProblem(r, 422, "agents[1].capacity.chat")
        self.assertEqual(self.frag_text(), before)
        self.assertFalse([n for n in os.listdir(self.frag_dir) if n.endswith(".tmp")])
        # a refused first change leaves no fragment behind at all
        os.remove(self.frag)
        self.assertEqual(d.request("POST", "/api/v1/reload").status, 200)
        self.assertProblem(self.add({"id": "bram", "queues": ["nergens"]}), 422, "nergens")
        self.assertFalse(os.path.exists(self.frag))

    def test_main_file_agents_and_conflicts(self):
        d = self.d
        cp = d.config_path
        r = d.request("PUT", "/api/v1/agents/agent1", {"queues": ["vergunningen"]}, token=self.sup)
        self.assertProblem(r, 409, "agent1", cp)
        r = d.request("DELETE", "/api/v1/agents/agent2", token=self.sup)
        self.assertProblem(r, 409, "agent2", cp)
        self.assertProblem(self.add({"id": "agent1"}), 409, "agent1", cp)
        self.assertIsNotNone(d.agent("agent2"))
        self.assertFalse(os.path.exists(self.frag))
        self.assertProblem(d.request("DELETE", "/api/v1/agents/niemand", token=self.sup), 404, "niemand")
        self.assertProblem(d.request("PUT", "/api/v1/agents/niemand", {}, token=self.sup), 404, "niemand")
        self.assertEqual(self.add({"id": "sanne"}).status, 201)
        self.assertProblem(self.add({"id": "sanne"}), 409, "sanne", "PUT")
        # admins may too
        self.assertEqual(d.request("DELETE", "/api/v1/agents/sanne").status, 204)

    def test_roles_and_bad_bodies(self):
        d = self.d
        agent = d.token("agent", "agent1")
        for method, path, body in (("POST", "/api/v1/agents", {"id": "x"}),
                                   ("PUT", "/api/v1/agents/x", {"queues": []}),
                                   ("DELETE", "/api/v1/agents/x", None)):
            self.assertProblem(d.request(method, path, body, token=None), 401)
            self.assertProblem(d.request(method, path, body, token=agent), 403, "role")
        bad = [({}, "id"), ({"id": "a b"}, "id"), ({"id": "x" * 64}, "id"), ({"id": 5}, "id"),
               ({"id": "x", "queues": "algemeen"}, "queues"), ({"id": "x", "queues": ["algemeen", 3]}, "queues[1]"),
               ({"id": "x", "queues": ["algemeen", "algemeen"]}, "queues[1]"),
               ({"id": "x", "skills": "wmo"}, "skills"), ({"id": "x", "capacity": [1]}, "capacity"),
               ({"id": "x", "capacity": {"chat": "3"}}, "capacity.chat"), ({"id": "x", "name": 1}, "name"),
               ({"id": "x", "voice_blocks": "ja"}, "voice_blocks"), ({"id": "x", "kleur": "rood"}, "kleur"),
               ([], "body"), ("{", "body")]
        for body, word in bad:
            self.assertProblem(self.add(body), 400, word)
        self.assertEqual(self.add({"id": "sanne"}).status, 201)
        r = d.request("PUT", "/api/v1/agents/sanne", {"id": "bram"}, token=self.sup)
        self.assertProblem(r, 400, "id", "bram")
        self.assertFalse(os.path.exists(os.path.join(self.frag_dir, "x")))
        self.assertEqual(json.loads(self.frag_text()), {"agents": [{"id": "sanne"}]})
