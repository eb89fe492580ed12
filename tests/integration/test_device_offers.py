"""ABI 1.1, the routing side, against the real acdmd: device offers (offer_device,
device_result, the core's own timeout), agents' phones and device_reachable, update of a
waiting bericht, and outbound contacts (originate from the desk and REST, a callback handed to
the channel's originate). The channel is the test plugin tests/plugins/device_phone.c
("testphone"), driven over its own HTTP routes."""
import json
import os
import shutil
import time
import unittest
import urllib.parse

from acdmtest import TESTPLUGINS, AcdmTestCase, base_config, wait_until


def phone_config(pdir, offer_timeout_s=20, refuse_originate=False):
    cfg = base_config(pdir)
    cfg["queues"][0].update(strategy="linear", wrapup_s=0, offer_timeout_s=offer_timeout_s)
    cfg["queues"].append({"name": "ivr", "strategy": "linear", "wrapup_s": 0})
    cfg["agents"] = [
        {"id": "agent1", "name": "Anouk", "queues": ["algemeen"], "phone": "register"},
        {"id": "agent2", "name": "Mohammed", "queues": ["algemeen"],
         "endpoints": {"phone": "sip:1002@127.0.0.1"}},
    ]
    ch = {"name": "tel1", "plugin": "testphone", "queue": "algemeen", "config": {}}
    if refuse_originate:
        ch["config"]["refuse_originate"] = True
    cfg["channels"] = [ch, {"name": "tel2", "plugin": "testphone", "queue": "ivr", "config": {}}]
    return cfg


class DeviceOffers(AcdmTestCase):
    def start(self, **kw):
        pdir = self.empty_plugin_dir()
        shutil.copy(os.path.join(TESTPLUGINS, "device_phone.so"), os.path.join(pdir, "device_phone.so"))
        d = self.daemon(phone_config(pdir, **kw))
        wait_until(lambda: d.request("GET", "/channels/tel1/log", token=None).status == 200, 10,
                   what="the testphone instance running")
        return d

    def cmd(self, d, route, body=None, channel="tel1", **args):
        q = urllib.parse.urlencode(args)
        r = d.request("POST", "/channels/%s/%s?%s" % (channel, route, q), body, token=None)
        self.assertEqual(r.status, 200, r)
        return r.json

    def call(self, d, frm="+31612340000", kind="voice", channel="tel1"):
        r = d.request("POST", "/channels/%s/call?from=%s&kind=%s" % (channel, urllib.parse.quote(frm), kind),
                      token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["outcome"], "queued", r.json)
        return r.json["bericht"]

    def log(self, d, channel="tel1"):
        return d.get_json("/channels/%s/log" % channel, token=None)

    def device_offers(self, d, bid):
        return [o for o in self.log(d)["offers"] if o["bericht"] == bid]

    # ---------------------------------------------------------------- phones, reachability

    def test_register_starts_unreachable_and_registration_makes_reachable(self):
        d = self.start()
        a1 = d.agent("agent1")
        self.assertEqual(a1["endpoints"], {"phone": "register"}, a1)
        self.assertEqual(a1["unreachable"], {"voice": "phone not registered",
                                             "callback": "phone not registered"}, a1)
        a2 = d.agent("agent2")
        self.assertEqual(a2["endpoints"], {"phone": "sip:1002@127.0.0.1"}, a2)
        self.assertEqual(a2["unreachable"], {}, a2)
        ws1 = self.agent_ws(d, "agent1")
        ws2 = self.agent_ws(d, "agent2")
        # linear would offer agent1 first: its phone is not registered, so agent2 gets the call
        bid = self.call(d)
        ws2.expect("offer", 5, bericht=bid)
        ws1.expect_none("offer", 0.3, bericht=bid)
        wait_until(lambda: self.device_offers(d, bid), 5, what="the device offer")
        o = self.device_offers(d, bid)[0]
        self.assertEqual((o["agent"], o["agent_name"], o["endpoint"], o["kind"], o["from"], o["queue"],
                          o["timeout_ms"]),
                         ("agent2", "Mohammed", "sip:1002@127.0.0.1", "voice", "+31612340000", "algemeen",
                          20000), o)
        # a chat still reaches agent1
        chat = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "+31600000009"}).json["id"]
        ws1.expect("offer", 5, bericht=chat)
        # the softphone registers: agent1's desk hears of it, the next call is agent1's
        self.assertEqual(self.cmd(d, "reachable", agent="agent1", kind="voice", up=1)["rc"], 0)
        deadline = time.monotonic() + 5
        while True:    # the state pushes of login and ready come first
            st = ws1.expect("state", max(0.1, deadline - time.monotonic()))
            if st["agent"]["unreachable"] == {}:
                break
        bid2 = self.call(d, "+31612340001")
        ws1.expect("offer", 5, bericht=bid2)
        # unregistered again, with the channel's reason
        self.assertEqual(self.cmd(d, "reachable", agent="agent1", kind="voice", up=0,
                                  reason="registration expired")["rc"], 0)
        wait_until(lambda: d.agent("agent1")["unreachable"].get("voice") == "registration expired", 5,
                   what="agent1 unreachable with the channel's reason")
        # bad input: an unknown agent, an unknown kind
        self.assertEqual(self.cmd(d, "reachable", agent="nobody", kind="voice", up=1)["rc"], -2)
        self.assertEqual(self.cmd(d, "reachable", agent="agent1", kind="fax", up=1)["rc"], -1)

    def test_a_restarted_channel_voids_its_registrations(self):
        d = self.start()
        self.assertEqual(self.cmd(d, "reachable", agent="agent1", kind="voice", up=1)["rc"], 0)
        wait_until(lambda: d.agent("agent1")["unreachable"] == {}, 5, what="agent1 registered")
        # the channel restarts (its config changed, it has no reload): the softphones must
        # register again before agent1 gets calls; agent2's static URI stays reachable
        with open(d.config_path) as f:
            cfg = json.load(f)
        cfg["channels"][0]["config"] = {"refuse_offer": False}
        d.write_config(cfg)
        r = d.request("POST", "/api/v1/reload")
        self.assertEqual(r.status, 200, r)
        wait_until(lambda: d.agent("agent1")["unreachable"].get("voice") == "phone not registered", 5,
                   what="agent1 unreachable after the channel restarted")
        self.assertEqual(d.agent("agent2")["unreachable"], {})

    def test_phone_config_is_validated(self):
        pdir = self.empty_plugin_dir()
        cfg = phone_config(pdir)
        cfg["agents"][0]["phone"] = "1001"
        d = self.daemon(cfg, start=False)
        d.start(expect_ok=False)
        rc = d.proc.wait(30)
        d.proc = None
        d.err_file.close()
        self.assertNotEqual(rc, 0)
        self.assertIn('agents[0].phone: expected "register" or a SIP URI', d.stderr())
        # the same phone given twice, differently
        cfg["agents"][0]["phone"] = "sip:1001@127.0.0.1"
        cfg["agents"][0]["endpoints"] = {"phone": "register"}
        d.write_config(cfg)
        d.start(expect_ok=False)
        rc = d.proc.wait(30)
        d.proc = None
        d.err_file.close()
        self.assertNotEqual(rc, 0)
        self.assertIn("agents[0].phone: differs from endpoints.phone", d.stderr())

    # ---------------------------------------------------------------- device outcomes

    def test_device_answered_accepts(self):
        d = self.start()
        ws2 = self.agent_ws(d, "agent2")
        bid = self.call(d)
        ws2.expect("offer", 5, bericht=bid)
        wait_until(lambda: self.device_offers(d, bid), 5, what="the device offer")
        self.assertEqual(d.agent("agent2")["work"][0].get("device"), True)
        self.assertEqual(self.cmd(d, "result", bericht=bid, agent="agent2", outcome="answered")["rc"], 0)
        ws2.expect("assigned", 5, bericht=bid)
        b = d.bericht(bid)
        self.assertEqual((b["state"], b["agent"]), ("active", "agent2"), b)
        self.assertIn("accepted", [e["type"] for e in self.log(d)["events"] if e["bericht"] == bid])
        # too late now: the offer is settled
        self.assertEqual(self.cmd(d, "result", bericht=bid, agent="agent2", outcome="noanswer")["rc"], -4)

    def test_busy_goes_to_next_agent_and_desk_shows_why(self):
        d = self.start()
        self.assertEqual(self.cmd(d, "reachable", agent="agent1", kind="voice", up=1)["rc"], 0)
        ws1 = self.agent_ws(d, "agent1")
        ws2 = self.agent_ws(d, "agent2")
        bid = self.call(d)
        ws1.expect("offer", 5, bericht=bid)
        wait_until(lambda: self.device_offers(d, bid), 5, what="the device offer to agent1")
        self.assertEqual(self.cmd(d, "result", bericht=bid, agent="agent1", outcome="busy",
                                  reason="486 Busy Here")["rc"], 0)
        c = ws1.expect("offer_cancelled", 5, bericht=bid)
        self.assertEqual((c["reason"], c.get("text")), ("busy", "486 Busy Here"), c)
        ws2.expect("offer", 5, bericht=bid)
        wait_until(lambda: [o for o in self.device_offers(d, bid) if o["agent"] == "agent2"], 5,
                   what="the device offer to agent2")
        # declined on agent2's phone: back to the queue, agent2's desk told
        self.assertEqual(self.cmd(d, "result", bericht=bid, agent="agent2", outcome="declined")["rc"], 0)
        self.assertEqual(ws2.expect("offer_cancelled", 5, bericht=bid)["reason"], "declined")
        wait_until(lambda: {"timeout", "rejected"} <= {e["type"] for e in d.bericht(bid)["events"]}, 5,
                   what="timeout (busy) and rejected (declined) in the event log")
        busy = [e for e in d.bericht(bid)["events"] if e["type"] == "timeout"][0]
        self.assertEqual(busy["agent"], "agent1", busy)
        # both stay logged in and ready (R36)
        self.assertEqual(d.agent("agent1")["state"], "ready")
        self.assertEqual(d.agent("agent2")["state"], "ready")

    def test_core_answers_no_answer_when_the_channel_is_silent(self):
        d = self.start(offer_timeout_s=1)
        ws2 = self.agent_ws(d, "agent2")
        t0 = time.monotonic()
        bid = self.call(d)
        ws2.expect("offer", 5, bericht=bid)
        # the queue's 1 s offer timeout does not end a device offer: the device has 1 s + 5 s
        ws2.expect_none("offer_cancelled", 3.0, bericht=bid)
        c = ws2.expect("offer_cancelled", 8, bericht=bid)
        waited = time.monotonic() - t0
        self.assertEqual(c["reason"], "no-answer", c)
        self.assertGreaterEqual(waited, 5.5, "cancelled after %.1fs" % waited)
        # a late result from the channel: the offer is no longer out
        self.assertEqual(self.cmd(d, "result", bericht=bid, agent="agent2", outcome="answered")["rc"], -4)

    def test_logout_withdraws_the_device_offer(self):
        d = self.start()
        ws2 = self.agent_ws(d, "agent2")
        bid = self.call(d)
        ws2.expect("offer", 5, bericht=bid)
        wait_until(lambda: self.device_offers(d, bid), 5, what="the device offer")
        self.assertEqual(ws2.request({"type": "logout"})["type"], "ack")
        # the channel hears the offer to agent2 is gone (stop ringing), then the bericht waits again
        wait_until(lambda: [e for e in self.log(d)["events"]
                            if e["bericht"] == bid and e["type"] == "requeued" and e["agent"] == "agent2"], 5,
                   what="ACDM_EV_REQUEUED with agent2 to the plugin")
        self.assertEqual(self.cmd(d, "result", bericht=bid, agent="agent2", outcome="answered")["rc"], -4)
        self.assertEqual(d.bericht(bid)["state"], "queued")

    def test_desk_accept_stands(self):
        d = self.start()
        ws2 = self.agent_ws(d, "agent2")
        bid = self.call(d)
        ws2.expect("offer", 5, bericht=bid)
        wait_until(lambda: self.device_offers(d, bid), 5, what="the device offer")
        self.assertEqual(ws2.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: "accepted" in [e["type"] for e in self.log(d)["events"] if e["bericht"] == bid], 5,
                   what="ACDM_EV_ACCEPTED to the plugin")
        self.assertEqual(self.cmd(d, "result", bericht=bid, agent="agent2", outcome="noanswer")["rc"], -4)
        self.assertEqual(d.bericht(bid)["state"], "active")

    # ---------------------------------------------------------------- update

    def test_update_moves_queue_keeping_queue_time(self):
        d = self.start()
        bid = self.call(d, channel="tel2")           # tel2's queue is "ivr": nobody takes it there
        before = d.bericht(bid)
        self.assertEqual(before["queue"], "ivr")
        time.sleep(0.05)
        r = self.cmd(d, "update", body={"ivr": "1-2"}, channel="tel2", bericht=bid, queue="nope")
        self.assertEqual(r["rc"], -1, r)
        self.assertIn("queue", r["err"])
        r = self.cmd(d, "update", body={"ivr": "1-2"}, channel="tel2", bericht=bid, priority=12)
        self.assertEqual(r["rc"], -1, r)
        self.assertIn("priority", r["err"])
        # another instance's bericht is not found
        self.assertEqual(self.cmd(d, "update", channel="tel1", bericht=bid, queue="algemeen")["rc"], -2)
        r = self.cmd(d, "update", body={"ivr": "1-2"}, channel="tel2", bericht=bid, queue="algemeen", priority=5)
        self.assertEqual(r["rc"], 0, r)
        after = d.bericht(bid)
        self.assertEqual((after["queue"], after["priority"]), ("algemeen", 5), after)
        self.assertEqual(after["queued_ms"], before["queued_ms"], after)
        # the payload merge is stored (at the next group commit)
        wait_until(lambda: d.bericht(bid)["payload"].get("ivr") == "1-2", 5, what="the payload merged")
        wait_until(lambda: [e for e in d.bericht(bid)["events"] if e["type"] == "updated"], 5,
                   what="updated in the event log")
        self.assertIn("updated", [e["type"] for e in self.log(d, "tel2")["events"] if e["bericht"] == bid])
        # offered now: no longer waiting
        ws2 = self.agent_ws(d, "agent2")
        ws2.expect("offer", 5, bericht=bid)
        r = self.cmd(d, "update", channel="tel2", bericht=bid, priority=1)
        self.assertEqual(r["rc"], -4, r)

    # ---------------------------------------------------------------- outbound

    def test_an_outbound_sms_gets_a_conversation_and_the_reply_joins_it(self):
        d = self.start()
        ws2 = self.agent_ws(d, "agent2")
        ack = ws2.request({"type": "originate", "kind": "sms", "channel": "tel1", "to": "+31687654321",
                           "text": "Uw paspoort ligt klaar"})
        self.assertEqual(ack["type"], "ack", ack)
        bid = ack["bericht"]
        wait_until(lambda: [o for o in self.log(d)["originates"] if o["bericht"] == bid], 5,
                   what="the plugin's originate")
        self.assertEqual(self.cmd(d, "orig_result", bericht=bid, outcome="connected")["rc"], 0)
        # the channel names the conversation (the citizen's number) once it sent the SMS
        self.assertEqual(self.cmd(d, "conversation", bericht=bid, key="+31687654321")["rc"], 0)
        self.assertEqual(self.cmd(d, "conversation", bericht=bid, key="+31687654321")["rc"], 0)
        self.assertEqual(self.cmd(d, "conversation", bericht=bid, key="other")["rc"], -4)
        self.assertEqual(self.cmd(d, "conversation", bericht="nope", key="x")["rc"], -2)
        self.assertEqual(self.cmd(d, "conversation", bericht=bid, key="x", channel="tel2")["rc"], -2)
        # the citizen's reply joins it, with the same agent
        q = urllib.parse.urlencode({"from": "+31687654321", "kind": "sms",
                                    "conversation": "+31687654321", "text": "Dank u, ik kom morgen"})
        r = d.request("POST", "/channels/tel1/call?" + q, token=None)
        self.assertEqual((r.status, r.json["outcome"], r.json["bericht"]), (200, "followup", bid), r.json)
        msg = ws2.expect("message", 5, bericht=bid)
        self.assertIn("Dank u, ik kom morgen", json.dumps(msg), msg)
        # scoped by instance: the same key on tel2 is a new bericht
        r = d.request("POST", "/channels/tel2/call?" + q, token=None)
        self.assertEqual(r.json["outcome"], "queued", r.json)
        self.assertNotEqual(r.json["bericht"], bid)
        # the key is stored with the bericht (an outbound bericht ends at a restart, by design,
        # but its row names the conversation)
        d.kill9()
        d.start()
        self.assertEqual(d.bericht(bid).get("conversation"), "+31687654321", d.bericht(bid))

    def test_originate_from_the_desk(self):
        d = self.start()
        # the hello says which channels can start contacts, and their kinds
        ws = d.ws(d.token("agent", "agent1"))
        self.sockets.append(ws)
        hello = ws.expect("hello", 10)
        self.assertEqual(sorted((o["channel"], tuple(o["kinds"])) for o in hello["outbound"]),
                         [("tel1", ("voice", "sms")), ("tel2", ("voice", "sms"))], hello)
        ws2 = self.agent_ws(d, "agent2")
        ack = ws2.request({"type": "originate", "kind": "sms", "channel": "tel1", "to": "+31687654321",
                           "text": "Uw paspoort ligt klaar"})
        self.assertEqual(ack["type"], "ack", ack)
        bid = ack["bericht"]
        asg = ws2.expect("assigned", 5, bericht=bid)      # on the desk as the agent's active work
        self.assertEqual((asg["bericht"]["direction"], asg["bericht"]["kind"], asg["bericht"]["from"]),
                         ("out", "sms", "+31687654321"), asg)
        wait_until(lambda: [o for o in self.log(d)["originates"] if o["bericht"] == bid], 5,
                   what="the plugin's originate")
        o = [o for o in self.log(d)["originates"] if o["bericht"] == bid][0]
        self.assertEqual((o["kind"], o["to"], o["agent"], o["agent_endpoint"], o["text"]),
                         ("sms", "+31687654321", "agent2", "sip:1002@127.0.0.1", "Uw paspoort ligt klaar"), o)
        b = d.bericht(bid)
        self.assertEqual((b["state"], b["agent"], b["direction"]), ("active", "agent2", "out"), b)
        work = d.agent("agent2")["work"]
        self.assertEqual([(w["bericht"], w["state"], w.get("direction")) for w in work],
                         [(bid, "active", "out")], work)
        self.assertEqual(self.cmd(d, "orig_result", bericht=bid, outcome="connected")["rc"], 0)
        res = ws2.expect("originate_result", 5, bericht=bid)
        self.assertEqual(res["outcome"], "connected", res)
        self.assertEqual(self.cmd(d, "orig_result", bericht=bid, outcome="connected")["rc"], -4)
        self.assertEqual(ws2.request({"type": "complete", "bericht": bid})["type"], "ack")
        wait_until(lambda: d.bericht(bid)["state"] == "done", 5, what="the outbound bericht done")
        # a failed one: shown to the agent, the bericht ends with it
        ack = ws2.request({"type": "originate", "kind": "voice", "channel": "tel1", "to": "+31600000001"})
        bid2 = ack["bericht"]
        wait_until(lambda: [o for o in self.log(d)["originates"] if o["bericht"] == bid2], 5,
                   what="the second originate")
        self.assertEqual(self.cmd(d, "orig_result", bericht=bid2, outcome="failed",
                                  reason="nummer onbereikbaar")["rc"], 0)
        res = ws2.expect("originate_result", 5, bericht=bid2)
        self.assertEqual((res["outcome"], res["reason"]), ("failed", "nummer onbereikbaar"), res)
        ws2.expect("done", 5, bericht=bid2)
        wait_until(lambda: d.bericht(bid2)["state"] == "done", 5, what="the failed one done")
        self.assertEqual(d.agent("agent2")["work"], [])
        # the reports count both as outbound, not as offered, answered or handled
        def totals(kind, key, name):
            r = d.request("GET", "/api/v1/reports?kind=%s&period=day&interval=1d" % kind)
            self.assertEqual(r.status, 200, r)
            return [t for t in r.json["totals"] if t[key] == name][0]
        wait_until(lambda: totals("queues", "queue", "algemeen")["outbound"] == 1, 10,
                   what="the outbound contact in the queue report")
        q = totals("queues", "queue", "algemeen")
        self.assertEqual((q["outbound"], q["outbound_failed"], q["offered"], q["answered"], q["handled"]),
                         (1, 1, 0, 0, 0), q)
        a2 = totals("agents", "agent", "agent2")
        self.assertEqual((a2["outbound"], a2["outbound_failed"], a2["accepted"], a2["handled"]), (1, 1, 0, 0), a2)
        # bad input: unknown channel, missing to, callback kind
        err = ws2.request({"type": "originate", "kind": "sms", "channel": "nope", "to": "+31600000002"})
        self.assertEqual((err["type"], err["code"]), ("error", "not_found"), err)
        err = ws2.request({"type": "originate", "kind": "sms", "channel": "tel1"})
        self.assertEqual(err["type"], "error", err)
        self.assertIn("to:", err["text"])
        err = ws2.request({"type": "originate", "kind": "callback", "channel": "tel1", "to": "+31600000002"})
        self.assertIn("kind:", err["text"])

    def test_originate_over_rest_and_a_refusal(self):
        d = self.start(refuse_originate=True)
        ws2 = self.agent_ws(d, "agent2")
        r = d.request("POST", "/api/v1/berichten/outbound",
                      {"agent": "agent2", "channel": "tel1", "kind": "sms", "to": "+31611112222", "text": "Hoi"})
        self.assertEqual(r.status, 201, r)
        bid = r.json["id"]
        # the plugin refuses: the agent reads its sentence, the bericht ends
        res = ws2.expect("originate_result", 5, bericht=bid)
        self.assertEqual((res["outcome"], res["reason"]), ("failed", "no trunk for +31611112222"), res)
        wait_until(lambda: d.bericht(bid)["state"] == "done", 5, what="the refused one done")
        self.assertProblem(d.request("POST", "/api/v1/berichten/outbound",
                                     {"channel": "tel1", "kind": "sms", "to": "+3161"}), 400, "agent")
        tok = d.token("agent", "agent1")
        self.assertProblem(d.request("POST", "/api/v1/berichten/outbound",
                                     {"agent": "agent2", "channel": "tel1", "kind": "sms", "to": "+3161"},
                                     token=tok), 403, "themselves")
        self.assertProblem(d.request("POST", "/api/v1/berichten/outbound",
                                     {"agent": "agent2", "channel": "tel1", "kind": "sms"}), 400, "to")

    def test_accepted_callback_is_handed_to_originate(self):
        d = self.start()
        ws2 = self.agent_ws(d, "agent2")
        bid = self.call(d, "+31655554444", kind="callback")
        ws2.expect("offer", 5, bericht=bid)
        # a callback is offered on the desk only: the phone rings when the channel calls back
        time.sleep(0.2)
        self.assertEqual(self.device_offers(d, bid), [])
        self.assertEqual(ws2.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: [o for o in self.log(d)["originates"] if o["bericht"] == bid], 5,
                   what="the callback handed to originate")
        o = [o for o in self.log(d)["originates"] if o["bericht"] == bid][0]
        self.assertEqual((o["kind"], o["to"], o["agent"], o["agent_endpoint"]),
                         ("callback", "+31655554444", "agent2", "sip:1002@127.0.0.1"), o)
        self.assertEqual(self.cmd(d, "orig_result", bericht=bid, outcome="connected")["rc"], 0)
        self.assertEqual(ws2.expect("originate_result", 5, bericht=bid)["outcome"], "connected")
        self.assertEqual(d.bericht(bid)["state"], "active")


if __name__ == "__main__":
    unittest.main()
