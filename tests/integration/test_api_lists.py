"""R41/R24: the functional admin adds and removes topics and reason codes over REST
(core/api/api_agents.c, the same all-or-nothing fragment mechanism as the agents API).

API-managed topics and reason codes live in acdm.d/51-lists-api.json beside the main config;
the running configuration follows at once (an agent can register the new topic, go not ready
with the new reason); the main file's items are not the API's (409 naming the file); a refused
change leaves file and configuration as they were; only admins may change the lists."""
import json
import os

from acdmtest import AcdmTestCase, base_config

CHAT = {"queue": "algemeen", "kind": "chat", "from": "+31633333333", "text": "Hallo"}


class ApiLists(AcdmTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.daemon(base_config(self.empty_plugin_dir()))
        self.frag = os.path.join(os.path.dirname(self.d.config_path), "acdm.d", "51-lists-api.json")
        self.admin = self.d.token("admin", "beheer")

    def req(self, method, path, body=None, token=None):
        return self.d.request(method, path, body, token=token or self.admin)

    def frag_doc(self):
        with open(self.frag, "rb") as f:
            return json.loads(f.read())

    def test_topic_added_is_usable_and_removed(self):
        d = self.d
        r = self.req("POST", "/api/v1/topics", {"name": "Zorg & welzijn"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["topics"], ["Paspoort", "Rijbewijs", "Afval", "Zorg & welzijn"])
        self.assertEqual(self.frag_doc(), {"topics": ["Zorg & welzijn"]})
        self.assertIn("Zorg & welzijn", self.req("GET", "/api/v1/topics").json["topics"])

        # an agent registers the new topic on a bericht they handled
        ws = self.agent_ws(d, "agent1")
        bid = d.post_bericht(CHAT).json["id"]
        ws.expect("offer", 10, bericht=bid)
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        ack = ws.request({"type": "complete", "bericht": bid, "topics": ["Zorg & welzijn", "Afval"]})
        self.assertEqual(ack["type"], "ack", ack)

        # twice: 409; a topic of the main file cannot be removed here
        self.assertProblem(self.req("POST", "/api/v1/topics", {"name": "Zorg & welzijn"}), 409, "51-lists-api.json")
        self.assertProblem(self.req("POST", "/api/v1/topics", {"name": "Paspoort"}), 409, "Paspoort", "already exists")
        self.assertProblem(self.req("DELETE", "/api/v1/topics/Paspoort"), 409, "Paspoort", d.config_path)
        self.assertProblem(self.req("DELETE", "/api/v1/topics/Onbekend"), 404, "Onbekend")

        # removed (the name has a space and an ampersand: percent-encoded in the path)
        r = self.req("DELETE", "/api/v1/topics/Zorg%20%26%20welzijn")
        self.assertEqual(r.status, 204, r)
        self.assertNotIn("Zorg & welzijn", self.req("GET", "/api/v1/topics").json["topics"])
        self.assertEqual(self.frag_doc(), {"topics": []})
        # the bericht keeps the topics it was given
        self.assertIn("Zorg & welzijn", json.dumps(d.bericht(bid)["events"]))

        # audited, and the change survives a restart
        self.assertEqual(self.req("POST", "/api/v1/topics", {"name": "Wonen"}).status, 201)
        d.stop()
        d.start()
        self.assertIn("Wonen", self.req("GET", "/api/v1/topics").json["topics"])
        audit = self.req("GET", "/api/v1/audit").json
        mine = [(a["action"], a["target"], a["actor"]) for a in audit["items"] if a["action"].startswith("topic_")]
        self.assertEqual(mine, [("topic_add", "Zorg & welzijn", "beheer"), ("topic_remove", "Zorg & welzijn", "beheer"),
                                ("topic_add", "Wonen", "beheer")], audit)

    def test_reason_code_add_change_use_remove(self):
        d = self.d
        r = self.req("POST", "/api/v1/reason-codes", {"code": "coaching", "label": "Coaching"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json, {"code": "coaching", "label": "Coaching"})
        codes = self.req("GET", "/api/v1/reason-codes").json["reason_codes"]
        self.assertIn({"code": "coaching", "label": "Coaching"}, codes)

        # an agent goes not ready with it
        ws = self.agent_ws(d, "agent1")
        ack = ws.request({"type": "not_ready", "reason": "coaching"})
        self.assertEqual(ack["type"], "ack", ack)
        self.assertEqual(d.agent("agent1")["reason"], "coaching")

        r = self.req("PUT", "/api/v1/reason-codes/coaching", {"label": "Coaching (teamleider)"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.frag_doc(), {"reason_codes": [{"code": "coaching", "label": "Coaching (teamleider)"}]})
        self.assertIn({"code": "coaching", "label": "Coaching (teamleider)"},
                      self.req("GET", "/api/v1/reason-codes").json["reason_codes"])

        # the main file's code is not the API's; a renamed code in the body is refused
        self.assertProblem(self.req("PUT", "/api/v1/reason-codes/pauze", {"label": "Koffie"}), 409, "pauze",
                           d.config_path)
        self.assertProblem(self.req("PUT", "/api/v1/reason-codes/coaching", {"code": "anders", "label": "x"}),
                           400, "code", "anders")
        self.assertEqual(self.req("DELETE", "/api/v1/reason-codes/coaching").status, 204)
        self.assertNotIn("coaching", [c["code"] for c in self.req("GET", "/api/v1/reason-codes").json["reason_codes"]])
        self.assertEqual(ws.request({"type": "not_ready", "reason": "coaching"})["type"], "error")

    def test_bad_input_roles_and_refusal(self):
        d = self.d
        for body, words in (({}, ("name", "required")), ({"name": 5}, ("name",)), ({"name": ""}, ("name",)),
                            ({"name": "x", "colour": 1}, ("colour",))):
            self.assertProblem(self.req("POST", "/api/v1/topics", body), 400, *words)
        for body, words in (({"label": "x"}, ("code",)), ({"code": "a b", "label": "x"}, ("code",)),
                            ({"code": "ok"}, ("label",)), ({"code": "ok", "label": ""}, ("label",))):
            self.assertProblem(self.req("POST", "/api/v1/reason-codes", body), 400, *words)
        r = d.request("POST", "/api/v1/topics", b"{not json", token=self.admin)
        self.assertProblem(r, 400)

        # supervisors and agents may not change the lists; no token: 401
        for tok, st in ((d.token("supervisor", "petra"), 403), (d.token("agent", "agent1"), 403), (None, 401)):
            r = d.request("POST", "/api/v1/topics", {"name": "X"}, token=tok)
            self.assertProblem(r, st)
            r = d.request("DELETE", "/api/v1/reason-codes/pauze", token=tok)
            self.assertProblem(r, st)

        # a configuration the validator refuses (a duplicate code, here in the fragment by
        # hand) leaves the fragment and the running lists as they were
        self.assertEqual(self.req("POST", "/api/v1/reason-codes", {"code": "overleg", "label": "Overleg"}).status, 201)
        before = self.frag_doc()
        with open(self.frag, "w") as f:
            json.dump({"reason_codes": [{"code": "overleg", "label": "Overleg"}], "topics": ["Paspoort"]}, f)
        r = self.req("POST", "/api/v1/topics", {"name": "Nieuw"})
        self.assertProblem(r, 422, "51-lists-api.json", "Paspoort")
        with open(self.frag) as f:
            self.assertEqual(json.load(f), {"reason_codes": [{"code": "overleg", "label": "Overleg"}],
                                            "topics": ["Paspoort"]})
        self.assertNotIn("Nieuw", self.req("GET", "/api/v1/topics").json["topics"])
        self.assertEqual(before["reason_codes"], [{"code": "overleg", "label": "Overleg"}])
