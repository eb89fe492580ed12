"""Issue 14, what agents expect: standard answers managed by the functional admin
(GET/POST/PUT/DELETE /api/v1/snippets, in acdm.d/51-lists-api.json like the topics), internal
notes on a bericht (durable once acknowledged, in the customer history, never sent to the
channel), escalation to a second-line queue with a note (GET /api/v1/escalations says what
became of it), asking a colleague (consult), and the wrap-up's end after a reconnect."""
import json
import os
import time

from acdmtest import AcdmTestCase, base_config

CFG = dict(
    queues=[
        {"name": "algemeen", "title": "KCC eerste lijn", "strategy": "linear", "wrapup_s": 30, "offer_timeout_s": 20},
        {"name": "tweede-lijn", "title": "Tweede lijn", "strategy": "linear", "wrapup_s": 30, "offer_timeout_s": 20},
    ],
    agents=[
        {"id": "agent1", "name": "Anouk", "queues": ["algemeen"]},
        {"id": "agent2", "name": "Mohammed", "queues": ["tweede-lijn"]},
        {"id": "agent3", "name": "Sanne", "queues": ["algemeen"]},
    ],
)


def wait_for(fn, what, timeout=10.0):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class DeskAgent(AcdmTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.daemon(base_config(self.empty_plugin_dir(), **CFG))
        self.frag = os.path.join(os.path.dirname(self.d.config_path), "acdm.d", "51-lists-api.json")
        self.admin = self.d.token("admin", "beheer")

    def req(self, method, path, body=None, token=None):
        return self.d.request(method, path, body, token=token or self.admin)

    def chat(self, ws, text, frm="+31611111111"):
        bid = self.d.post_bericht({"queue": "algemeen", "kind": "chat", "from": frm, "text": text}).json["id"]
        ws.expect("offer", 10, bericht=bid)
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        return bid

    def test_snippets_managed_by_the_admin_per_queue_and_language(self):
        d = self.d
        body = {"id": "paspoort-nl", "title": "Paspoort aanvragen",
                "text": "Beste {klant}, een paspoort vraagt u aan op het stadskantoor. Groet, {agent} ({wachtrij})",
                "queue": "algemeen", "language": "nl"}
        r = self.req("POST", "/api/v1/snippets", body)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.headers.get("location"), "/api/v1/snippets/paspoort-nl")
        self.assertEqual(self.req("POST", "/api/v1/snippets", {"id": "groet", "title": "Groet", "text": "Goedemiddag!"}).status, 201)
        self.assertEqual(self.req("POST", "/api/v1/snippets", {"id": "passport-en", "title": "Passport",
                                                               "text": "Dear {customer}", "language": "en"}).status, 201)
        with open(self.frag, "rb") as f:
            self.assertEqual([s["id"] for s in json.loads(f.read())["snippets"]], ["paspoort-nl", "groet", "passport-en"])

        # an agent reads them; filtered by queue and language (those for every queue/language too)
        agent = d.token("agent", "agent1")
        all_ = d.request("GET", "/api/v1/snippets", token=agent).json["snippets"]
        self.assertEqual([s["id"] for s in all_], ["paspoort-nl", "groet", "passport-en"])
        self.assertEqual(all_[0], body)
        got = d.request("GET", "/api/v1/snippets?queue=tweede-lijn&language=nl", token=agent).json["snippets"]
        self.assertEqual([s["id"] for s in got], ["groet"])
        got = d.request("GET", "/api/v1/snippets?queue=algemeen&language=nl", token=agent).json["snippets"]
        self.assertEqual([s["id"] for s in got], ["paspoort-nl", "groet"])
        self.assertProblem(d.request("GET", "/api/v1/snippets?queue=nergens", token=agent), 400, "nergens")

        # bad input names the field; an unknown queue is refused by the validator (422, file untouched)
        self.assertProblem(self.req("POST", "/api/v1/snippets", {"id": "x", "text": "t"}), 400, "title")
        self.assertProblem(self.req("POST", "/api/v1/snippets", {"id": "x", "title": "T"}), 400, "text")
        self.assertProblem(self.req("POST", "/api/v1/snippets", {"id": "x y", "title": "T", "text": "t"}), 400, "id")
        self.assertProblem(self.req("POST", "/api/v1/snippets", {"id": "x", "title": "T", "text": "t", "language": "Nederlands"}),
                           422, "language")
        self.assertProblem(self.req("POST", "/api/v1/snippets", {"id": "x", "title": "T", "text": "t", "queue": "nergens"}),
                           422, "nergens")
        self.assertProblem(self.req("POST", "/api/v1/snippets", {"id": "groet", "title": "T", "text": "t"}), 409, "groet")
        # only the functional admin changes them
        self.assertProblem(d.request("POST", "/api/v1/snippets", {"id": "y", "title": "T", "text": "t"}, token=agent), 403)
        self.assertProblem(d.request("POST", "/api/v1/snippets", {"id": "y", "title": "T", "text": "t"},
                                     token=d.token("supervisor", "petra")), 403)

        # changed and removed; the change survives a restart; audited
        r = self.req("PUT", "/api/v1/snippets/groet", {"title": "Groet", "text": "Goedemorgen, {klant}!"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.req("DELETE", "/api/v1/snippets/passport-en").status, 204)
        self.assertProblem(self.req("DELETE", "/api/v1/snippets/passport-en"), 404, "passport-en")
        d.stop()
        d.start()
        got = d.request("GET", "/api/v1/snippets", token=agent).json["snippets"]
        self.assertEqual([(s["id"], s["text"]) for s in got][1], ("groet", "Goedemorgen, {klant}!"))
        self.assertEqual(len(got), 2)
        acts = [a["action"] for a in self.req("GET", "/api/v1/audit").json["items"] if a["action"].startswith("snippet_")]
        self.assertEqual(acts, ["snippet_add", "snippet_add", "snippet_add", "snippet_update", "snippet_remove"])

    def test_note_is_durable_in_the_history_and_never_sent(self):
        d = self.d
        ws = self.agent_ws(d, "agent1")
        bid = self.chat(ws, "Mijn paspoort is gestolen")
        ack = ws.request({"type": "note", "bericht": bid, "text": "Aangifte bij de politie gedaan, nummer 123"})
        self.assertEqual(ack["type"], "ack", ack)
        # bad notes: named
        self.assertEqual(ws.request({"type": "note", "bericht": bid, "text": ""})["code"], "invalid")
        self.assertEqual(ws.request({"type": "note", "bericht": bid, "text": "x" * 4001})["code"], "invalid")
        other = self.agent_ws(d, "agent3")
        self.assertEqual(other.request({"type": "note", "bericht": bid, "text": "niet van mij"})["code"], "forbidden")
        d.kill9()   # acknowledged: survives
        d.start()
        ev = [e for e in d.bericht(bid)["events"] if e["type"] == "note"]
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(ev[0]["detail"]["text"], "Aangifte bij de politie gedaan, nummer 123")
        self.assertEqual(ev[0]["agent"], "agent1")
        # not a message of the thread: nothing a channel would send
        self.assertFalse([m for m in d.bericht(bid)["messages"] if "politie" in (m.get("text") or "")])
        # the contact registration at complete: topics and a note together, in the customer history
        ws = self.agent_ws(d, "agent1")
        bid2 = self.chat(ws, "Nog een vraag", frm="+31611111111")
        ack = ws.request({"type": "complete", "bericht": bid2, "topics": ["Paspoort"], "note": "Doorverwezen naar de balie"})
        self.assertEqual(ack["type"], "ack", ack)
        h = d.request("GET", "/api/v1/customers/%2B31611111111/history").json
        byid = {x["id"]: x for x in h["items"]}
        self.assertEqual([n["text"] for n in byid[bid2]["notes"]], ["Doorverwezen naar de balie"])
        self.assertEqual(byid[bid2]["topics"], ["Paspoort"])
        self.assertEqual([n["text"] for n in byid[bid]["notes"]], ["Aangifte bij de politie gedaan, nummer 123"])
        self.assertEqual(ws.request({"type": "complete", "bericht": bid2, "note": 5})["code"], "invalid")

    def test_escalation_travels_and_the_first_line_sees_what_became_of_it(self):
        d = self.d
        w1 = self.agent_ws(d, "agent1")
        bid = self.chat(w1, "Ik wil bezwaar maken tegen mijn aanslag", frm="+31622222222")
        t1 = d.token("agent", "agent1")
        ack = w1.request({"type": "transfer", "bericht": bid, "queue": "tweede-lijn",
                          "note": "Bezwaar WOZ, klant heeft taxatieverslag al"})
        self.assertEqual(ack["type"], "ack", ack)
        esc = wait_for(lambda: d.request("GET", "/api/v1/escalations", token=t1).json["items"], "an escalation")
        self.assertEqual(len(esc), 1)
        self.assertEqual((esc[0]["bericht"], esc[0]["state"], esc[0]["queue"], esc[0]["to_queue"], esc[0]["from_queue"]),
                         (bid, "queued", "tweede-lijn", "tweede-lijn", "algemeen"))
        self.assertEqual(esc[0]["note"], "Bezwaar WOZ, klant heeft taxatieverslag al")
        # the second line takes it: the thread, the note and the history come along
        w2 = self.agent_ws(d, "agent2")
        w2.expect("offer", 10, bericht=bid)
        self.assertEqual(w2.request({"type": "accept", "bericht": bid})["type"], "ack")
        t2 = d.token("agent", "agent2")
        b = d.request("GET", "/api/v1/berichten/" + bid, token=t2).json
        self.assertIn("Ik wil bezwaar maken tegen mijn aanslag", [m["text"] for m in b["messages"]])
        self.assertEqual([e["detail"]["text"] for e in b["events"] if e["type"] == "note"],
                         ["Bezwaar WOZ, klant heeft taxatieverslag al"])
        hist = d.request("GET", "/api/v1/customers/%2B31622222222/history", token=t2)
        self.assertEqual(hist.status, 200, hist)
        # the first line sees who handles it now, and may read it
        esc = wait_for(lambda: [x for x in d.request("GET", "/api/v1/escalations", token=t1).json["items"]
                                if x["state"] == "active"], "the escalation active")
        self.assertEqual((esc[0]["handler"], esc[0]["handler_name"]), ("agent2", "Mohammed"))
        self.assertEqual(d.request("GET", "/api/v1/berichten/" + bid, token=t1).status, 200)
        # but not another agent's escalations, and agent3 may not read it
        t3 = d.token("agent", "agent3")
        self.assertEqual(d.request("GET", "/api/v1/escalations", token=t3).json["items"], [])
        self.assertProblem(d.request("GET", "/api/v1/escalations?agent=agent1", token=t3), 403)
        self.assertEqual(d.request("GET", "/api/v1/berichten/" + bid, token=t3).status, 403)
        sup = d.request("GET", "/api/v1/escalations?agent=agent1", token=d.token("supervisor", "petra")).json["items"]
        self.assertEqual([x["bericht"] for x in sup], [bid])
        # done by the second line
        self.assertEqual(w2.request({"type": "complete", "bericht": bid})["type"], "ack")
        self.assertEqual(w2.request({"type": "wrapup_end", "bericht": bid})["type"], "ack")
        esc = wait_for(lambda: [x for x in d.request("GET", "/api/v1/escalations", token=t1).json["items"]
                                if x["state"] == "done"], "the escalation done")
        self.assertEqual(esc[0]["handler_name"], "Mohammed")

    def test_consult_a_colleague_without_transferring(self):
        d = self.d
        w1 = self.agent_ws(d, "agent1")
        w3 = self.agent_ws(d, "agent3", ready=False)
        bid = self.chat(w1, "Hoe zit het met de Wmo?")
        t3 = d.token("agent", "agent3")
        self.assertEqual(d.request("GET", "/api/v1/berichten/" + bid, token=t3).status, 403)
        ack = w1.request({"type": "consult", "bericht": bid, "to": "agent3", "text": "Weet jij of dit onder de Wmo valt?"})
        self.assertEqual(ack["type"], "ack", ack)
        m = w3.expect("consult", 5, bericht=bid)
        self.assertEqual((m["from"], m["from_name"], m["text"], m["customer"]),
                         ("agent1", "Anouk", "Weet jij of dit onder de Wmo valt?", "+31611111111"))
        # still agent1's
        self.assertEqual(d.agent("agent1")["work"][0]["bericht"], bid)
        self.assertEqual(d.agent("agent3")["work"], [])
        # the colleague may read it now, and answers
        self.assertEqual(d.request("GET", "/api/v1/berichten/" + bid, token=t3).status, 200)
        self.assertEqual(w3.request({"type": "consult", "bericht": bid, "to": "agent1", "text": "Ja, via het sociaal team"})["type"], "ack")
        m = w1.expect("consult", 5, bericht=bid)
        self.assertEqual((m["from"], m["text"]), ("agent3", "Ja, via het sociaal team"))
        # bad ones
        self.assertEqual(w1.request({"type": "consult", "bericht": bid, "to": "agent1", "text": "x"})["code"], "invalid")
        self.assertEqual(w1.request({"type": "consult", "bericht": bid, "to": "niemand", "text": "x"})["code"], "not_found")
        self.assertEqual(w1.request({"type": "consult", "bericht": bid, "to": "agent3"})["code"], "invalid")
        w2 = self.agent_ws(d, "agent2", ready=False)
        self.assertEqual(w2.request({"type": "consult", "bericht": bid, "to": "agent1", "text": "?"})["code"], "forbidden")
        # in the event log, durable
        d.kill9()
        d.start()
        ev = [e for e in d.bericht(bid)["events"] if e["type"] == "consult"]
        self.assertEqual([(e["detail"]["from"], e["detail"]["to"]) for e in ev], [("agent1", "agent3"), ("agent3", "agent1")])
        # and what each desk's "Overleg" panel shows again after a reload
        got = d.request("GET", "/api/v1/consults", token=t3).json["items"]
        self.assertEqual([(c["from"], c["to"], c["to_name"], c["text"], c["customer"], c["bericht"]) for c in got],
                         [("agent1", "agent3", "Sanne", "Weet jij of dit onder de Wmo valt?", "+31611111111", bid),
                          ("agent3", "agent1", "Anouk", "Ja, via het sociaal team", "+31611111111", bid)])
        self.assertEqual(d.request("GET", "/api/v1/consults", token=d.token("agent", "agent2")).json["items"], [])

    def test_wrapup_end_known_after_a_reconnect(self):
        d = self.d
        ws = self.agent_ws(d, "agent1")
        bid = self.chat(ws, "Dank u")
        self.assertEqual(ws.request({"type": "complete", "bericht": bid})["type"], "ack")
        self.assertEqual(ws.request({"type": "wrapup_extend", "bericht": bid, "seconds": 100})["type"], "ack")
        ws.close()
        ws = d.ws(d.token("agent", "agent1"))
        self.sockets.append(ws)
        item = ws.expect("hello", 10)["agent"]["work"][0]
        left = (item["wrapup_until_ms"] - int(time.time() * 1000)) / 1000
        self.assertTrue(100 < left <= 130, left)   # 30 s wrap-up + 100 s extension, a moment gone
        self.assertEqual(d.bericht(bid)["wrapup_until_ms"], item["wrapup_until_ms"])
