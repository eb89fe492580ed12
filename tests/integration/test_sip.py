"""The SIP voice channel end to end (issue 10), with real peers on loopback: a SIPp caller
whose RTP goes to a Python receiver (recorded and decoded here), baresip as the agent's
auto-answering softphone registering to acdm's registrar with digest auth, and the real acdmd
with plugins/sip.so. What a caller and an agent notice is asserted: the welcome prompt (a WAV
chime, converted by the plugin from 44.1 kHz stereo), no silence over 1 s while waiting, the
agent's tone after the bridge and the caller's tone at the agent; the bericht's life in the
event log."""
import os
import random
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from acdmtest import AcdmTestCase, PLUGINS, base_config, wait_until
import siptest
from siptest import (BaresipAgent, RtpPeer, SippCaller, caller_xml, dominant, free_port_pair, rtp_range,
                     tone_ratio, write_chime)

NEEDS = [b for b in (siptest.SIPP, siptest.BARESIP, siptest.ESPEAK) if not b]
HAVE_PLUGIN = os.path.exists(os.path.join(PLUGINS, "sip.so"))
PASSWORD = "geheim-agent1"


@unittest.skipIf(NEEDS or not HAVE_PLUGIN, "needs sipp, baresip, espeak-ng and plugins/sip.so")
class SipTestCase(AcdmTestCase):
    def setUp(self):
        super().setUp()
        # a folder of our own name: peers write logs and recordings here for the whole test
        os.rmdir(self.tmp)
        self.tmp = tempfile.mkdtemp(prefix="acdm-sipt-")

    def outside_number(self, scenario=None, echo=True):
        """A SIPp UAS at the outbound gateway (OUTSIDE_UAS: rings 2.5 s, answers, waits for BYE);
        with echo it sends back the RTP it gets: the caller then hears their own tone from it."""
        port = siptest.free_udp_port()
        xml = os.path.join(self.tmp, "outside%d.xml" % port)
        with open(xml, "w") as f:
            f.write(scenario or OUTSIDE_UAS)
        uas = subprocess.Popen([siptest.SIPP, "-sf", xml, "-i", "127.0.0.1", "-p", str(port), "-mp",
                                str(siptest.free_udp_port()), "-m", "1", "-nostdin"] + (["-rtp_echo"] if echo else []),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.tmp)
        self.addCleanup(lambda: uas.poll() is None and (uas.kill(), uas.wait(5)))
        return uas, port

    def sip_daemon(self, extra=None, queues=None, agents_map=None, start=True):
        self.sip_port = free_port_pair()
        self.chime = os.path.join(self.tmp, "chime.wav")
        write_chime(self.chime)
        conf = {
            "listen": "udp:127.0.0.1:%d" % self.sip_port,
            "rtp_ports": rtp_range(),
            "numbers": {"1000": "algemeen"},
            "prompts": {"default": {"welcome": {"file": self.chime},
                                    "wait": "Een moment geduld alstublieft.",
                                    "wait_interval_s": 3}},
            "registrar": {"realm": "acdm", "users": {"agent1": PASSWORD, "agent2": "geheim-agent2"}},
            "agents": agents_map if agents_map is not None else {"agent1": "register"},
            "rtp_timeout_s": 20,
        }
        conf.update(extra or {})
        cfg = base_config(PLUGINS)
        if queues:
            cfg["queues"] = queues
        cfg["channels"] = [{"name": "tel", "plugin": "sip", "queue": "algemeen", "config": conf}]
        self.sip_conf = conf
        self.cfg = cfg
        return self.daemon(cfg, start=start)

    def wait_log(self, d, text, timeout=5):
        """The plugin's log lines reach the log through the core loop: wait for one."""
        wait_until(lambda: text in d.stderr(), timeout, what="log line %r" % text)

    def sip_status(self, d):
        r = d.request("GET", "/channels/tel/status")
        self.assertEqual(r.status, 200, r)
        return r.json

    def wait_prompts(self, d, n):
        wait_until(lambda: self.sip_status(d)["prompts_ready"] >= n, 20, what="%d prompts rendered" % n)

    def agent_phone(self, d, user="agent1", password=PASSWORD, tone=440, answer="auto"):
        bs = BaresipAgent(self.tmp, user, self.sip_port, password=password, tone=tone, answer=answer)
        self.addCleanup(bs.stop)
        if password:
            try:
                wait_until(lambda: user in self.sip_status(d)["registered"], 15,
                           what="%s's baresip registered to acdm" % user)
            except AssertionError as e:
                raise AssertionError("%s\nbaresip's log:\n%s" % (e, bs.output()[-2000:]))
        return bs

    def rtp_peer(self, **kw):
        p = RtpPeer(**kw)
        self.addCleanup(p.close)
        return p

    def call(self, number="1000", rtp=None, **kw):
        c = SippCaller(self.tmp, self.sip_port, number, caller_xml(rtp.port if rtp else siptest.free_udp_port(), **kw),
                       name="caller%d" % int(time.monotonic() * 1000))
        self.addCleanup(c.kill)
        return c


class SipThinPath(SipTestCase):
    def test_call_waits_hears_prompts_then_bridged_to_agents_phone(self):
        d = self.sip_daemon()
        self.wait_prompts(d, 2)
        bs = self.agent_phone(d)
        ws = self.agent_ws(d, "agent1")
        rtp = self.rtp_peer(tone_hz=1000)
        caller = self.call(rtp=rtp, cli="0612345678", hold_ms=14000)

        offer = ws.expect("offer", 15)
        bid = offer["bericht"]["id"] if isinstance(offer.get("bericht"), dict) else offer["bericht"]
        # the desk's offer shows the caller's number and the number dialled
        self.assertEqual((offer["bericht"]["from"], offer["bericht"].get("subject")), ("0612345678", "Gebeld naar 1000"),
                         offer)
        b = d.bericht(bid)
        self.assertEqual((b["kind"], b["queue"], b["from"]), ("voice", "algemeen", "0612345678"), b)
        # the caller was answered (200 OK after the commit) and hears the welcome chime, then
        # music and "een moment geduld": let it wait 6 s before the agent takes it
        wait_until(lambda: (rtp.elapsed() or 0) > 6.0, 15, what="6 s of waiting audio")
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        t_accept = rtp.elapsed()
        rc = caller.wait(40)
        self.assertEqual(rc, 0, "SIPp caller failed:\n%s" % caller.output())

        # 1. the welcome prompt: the chime's three tones in order, converted to 8 kHz
        for i, f in enumerate((660, 880, 1100)):
            seg = rtp.pcm_between(0.1 + 0.5 * i, 0.4 + 0.5 * i)
            best, share = dominant(seg, (440, 660, 880, 1100, 1000))
            self.assertEqual(best, f, "welcome chime tone %d: heard %s Hz (share %.2f)" % (i, best, share))
        # 2. never silence over 1 s while waiting (welcome, music, the wait prompt)
        gap = rtp.longest_gap(0.0, t_accept)
        self.assertLess(gap, 1.0, "%.2f s of silence while waiting" % gap)
        # the wait prompt is speech, not the music: some stretch after the welcome differs
        # 3. after the bridge: the agent's 440 Hz tone reaches the caller
        bridged = rtp.pcm_between(t_accept + 1.5, t_accept + 4.0)
        self.assertGreater(len(bridged), 8000, "no audio after the bridge")
        self.assertGreater(tone_ratio(bridged, 440), 0.3, "the agent's 440 Hz tone is not heard by the caller")
        # 4. the reverse direction: the caller's 1000 Hz reached the agent's phone
        heard, rate = bs.heard()
        self.assertGreater(len(heard), rate, "baresip recorded no audio")
        self.assertGreater(tone_ratio(heard[-3 * rate:-rate // 2] if len(heard) > 3 * rate else heard, 1000), 0.3,
                           "the caller's 1000 Hz tone is not heard by the agent")
        # the caller hung up: the conversation ends, wrap-up starts
        wait_until(lambda: d.bericht(bid)["state"] in ("wrapup", "done"), 10, what="wrap-up after the caller's BYE")
        st = self.sip_status(d)
        self.assertEqual((st["bridged"], st["answered"]), (1, 1), st)


if __name__ == "__main__":
    unittest.main()


def raw_sip(port, text, timeout=3.0):
    """Sends one SIP message over UDP and returns the first response's text ('' on none)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(timeout)
    lp = s.getsockname()[1]
    try:
        s.sendto(text.replace("{lp}", str(lp)).encode(), ("127.0.0.1", port))
        while True:
            data = s.recv(65536).decode("utf-8", "replace")
            if not data.startswith("SIP/2.0 1"):      # skip provisional responses
                return data
    except socket.timeout:
        return ""
    finally:
        s.close()


def options(port):
    return raw_sip(port, "OPTIONS sip:1000@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK%d\r\n"
                         "From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: opt%d@t\r\n"
                         "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                   % (port, random.randrange(1 << 30), random.randrange(1 << 30)))


def invite(port, number="1000", sdp=None, callid=None):
    body = sdp if sdp is not None else (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    ct = "Content-Type: application/sdp\r\n" if body else ""
    return raw_sip(port, "INVITE sip:%s@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK%d\r\n"
                         "From: <sip:0611111111@127.0.0.1>;tag=1\r\nTo: <sip:%s@127.0.0.1>\r\nCall-ID: %s\r\n"
                         "CSeq: 1 INVITE\r\nContact: <sip:t@127.0.0.1:{lp}>\r\nMax-Forwards: 70\r\n%s"
                         "Content-Length: %d\r\n\r\n%s"
                   % (number, port, random.randrange(1 << 30), number, callid or "inv%d@t" % random.randrange(1 << 30),
                      ct, len(body.encode()), body), timeout=5.0)


class SipBadInput(SipTestCase):
    def test_unknown_number_no_codec_no_sdp_malformed(self):
        d = self.sip_daemon()
        # an unknown number: SIPp gets 404
        c = self.call(number="9999", expect="404")
        self.assertEqual(c.wait(30), 0, "SIPp did not get 404:\n%s" % c.output())
        # an SDP without a common codec (G.729 only): 488
        c = self.call(expect="488", codecs=(("18", "G729"),))
        self.assertEqual(c.wait(30), 0, "SIPp did not get 488:\n%s" % c.output())
        r = invite(self.sip_port, sdp="")
        self.assertTrue(r.startswith("SIP/2.0 488"), r)
        self.assertIn("SDP offer is required", r)
        # SDP that cannot be read: 400
        r = invite(self.sip_port, sdp="this is not SDP\r\n")
        self.assertTrue(r.startswith("SIP/2.0 400"), r)
        # malformed SIP: logged and dropped (nothing to answer to), acdm carries on
        for junk in ("INVITE\r\n\r\n", "\x00\x01garbage" * 20,
                     "INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK1\r\n\r\n"):
            raw_sip(self.sip_port, junk, timeout=0.3)
        r = options(self.sip_port)
        self.assertTrue(r.startswith("SIP/2.0 200"), r)
        st = self.sip_status(d)
        self.assertEqual((st["rejected_404"], st["rejected_488"]), (1, 2), st)
        self.assertGreaterEqual(st["malformed"], 3, st)
        for line in ("INVITE for unknown number 9999", "no common codec", "malformed SIP message",
                     "no Call-ID header: 400"):
            self.wait_log(d, line)
        # nothing was stored for any of them
        self.assertEqual(d.get_json("/api/v1/berichten?channel=tel")["items"], [])

    def test_flood_beyond_max_calls_gets_503_retry_after(self):
        d = self.sip_daemon({"max_calls": 3, "retry_after_s": 17})
        rtps = [self.rtp_peer() for _ in range(3)]
        held = [self.call(rtp=r, hold_ms=8000) for r in rtps]
        wait_until(lambda: self.sip_status(d)["calls"] == 3, 15, what="3 calls in progress")
        r = invite(self.sip_port)
        self.assertTrue(r.startswith("SIP/2.0 503"), r)
        self.assertIn("Retry-After: 17", r)
        flood = SippCaller(self.tmp, self.sip_port, "1000", caller_xml(4000, expect="503"), name="flood",
                           calls=30, rate=100)
        self.addCleanup(flood.kill)
        self.assertEqual(flood.wait(30), 0, "the flood did not get 503 for every call:\n%s" % flood.output())
        self.wait_log(d, "calls in progress (max_calls): 503")
        for c in held:
            self.assertEqual(c.wait(30), 0, c.output())
        st = self.sip_status(d)
        self.assertEqual(st["rejected_503"], 31, st)
        self.assertEqual(st["answered"], 3, st)
        # only the three answered calls were stored
        self.assertEqual(len(d.get_json("/api/v1/berichten?channel=tel")["items"]), 3)


def espeak_span(text, voice="nl"):
    """Seconds from the first to the last audible sample of espeak-ng speaking text as the
    plugin has it speak (voice, -s 150)."""
    out = subprocess.run([siptest.ESPEAK, "-v", voice, "-s", "150", "--stdout", text], capture_output=True, check=True).stdout
    # espeak-ng streams a WAV whose sizes say 0x7fffffff: read the samples after the header
    i = out.index(b"data") + 8
    rate = struct.unpack("<I", out[24:28])[0]
    pcm = struct.unpack("<%dh" % ((len(out) - i) // 2), out[i:i + (len(out) - i) // 2 * 2])
    peak = max(abs(x) for x in pcm) or 1
    loud = [k for k, x in enumerate(pcm) if abs(x) > peak * 0.05]
    return (loud[-1] - loud[0]) / rate


def heard_span(rtp, threshold=300.0):
    fr = [(t, siptest.rms(f)) for t, f in rtp.frames()]
    loud = [t for t, e in fr if e >= threshold]
    return (loud[-1] - loud[0] + 0.02) if loud else 0.0


CLOSED_TEXT = "De gemeente is nu gesloten."
EMERGENCY_TEXT = ("Door een storing in het landelijke netwerk kunnen wij u vandaag niet helpen. "
                  "Kijk voor meer informatie op onze website. Onze excuses voor het ongemak.")


class SipQueueStates(SipTestCase):
    def test_closed_queue_plays_its_text_hangs_up_and_stores_closed(self):
        q = [{"name": "algemeen", "strategy": "linear", "closed": True, "offer_timeout_s": 20,
              "closed_text": {"default": "Wij zijn gesloten.", "voice": CLOSED_TEXT}}]
        d = self.sip_daemon(queues=q)
        rtp = self.rtp_peer(send=False)
        c = self.call(rtp=rtp, hangup="theirs", hold_ms=20000)
        self.assertEqual(c.wait(40), 0, "acdm did not answer and hang up:\n%s" % c.output())
        want = espeak_span(CLOSED_TEXT)
        got = heard_span(rtp)
        self.assertAlmostEqual(got, want, delta=0.35, msg="heard %.2f s of speech, the closed text is %.2f s" % (got, want))
        items = d.get_json("/api/v1/berichten?channel=tel")["items"]
        self.assertEqual([(i["state"], i["kind"]) for i in items], [("closed", "voice")], items)

    def test_emergency_text_typed_by_a_supervisor_is_heard_by_the_next_caller(self):
        d = self.sip_daemon()
        self.wait_prompts(d, 2)
        # before: an open queue, the caller is queued and hears the welcome chime
        rtp1 = self.rtp_peer(send=False)
        c1 = self.call(rtp=rtp1, hold_ms=2500)
        self.assertEqual(c1.wait(30), 0, c1.output())
        best, _ = dominant(rtp1.pcm_between(0.1, 0.4), (660, 880, 1100))
        self.assertEqual(best, 660)
        # the supervisor types an emergency text; the config is reloaded (no restart)
        self.cfg["queues"][0].update({"emergency": True, "emergency_text": EMERGENCY_TEXT})
        d.write_config(self.cfg)
        self.assertEqual(d.request("POST", "/api/v1/reload").status, 200)
        rtp2 = self.rtp_peer(send=False)
        c2 = self.call(rtp=rtp2, hangup="theirs", hold_ms=30000)
        self.assertEqual(c2.wait(45), 0, c2.output())
        want = espeak_span(EMERGENCY_TEXT)
        got = heard_span(rtp2)
        self.assertAlmostEqual(got, want, delta=0.5, msg="heard %.2f s, the emergency text is %.2f s" % (got, want))
        states = sorted(i["state"] for i in d.get_json("/api/v1/berichten?channel=tel")["items"])
        self.assertIn("closed", states)

    def test_caller_abandons_while_waiting_quick_drop(self):
        q = [{"name": "algemeen", "strategy": "linear", "quick_drop_s": 5, "offer_timeout_s": 20}]
        d = self.sip_daemon(queues=q)
        rtp = self.rtp_peer()
        c = self.call(rtp=rtp, hold_ms=2000)
        self.assertEqual(c.wait(30), 0, c.output())
        items = wait_until(lambda: [i for i in d.get_json("/api/v1/berichten?channel=tel")["items"]
                                    if i["state"] == "abandoned"], 10, what="the bericht abandoned")
        b = d.bericht(items[0]["id"])
        ab = [e for e in b["events"] if e["type"] == "abandoned"]
        self.assertEqual(len(ab), 1, b["events"])
        self.assertIn("quick", str(ab[0]), ab[0])

    def test_position_announced_when_it_changes(self):
        d = self.sip_daemon()
        self.wait_prompts(d, 2)
        rtps = [self.rtp_peer(send=True) for _ in range(2)]
        calls = []
        for r, hold in zip(rtps, (6000, 10000)):
            calls.append(self.call(rtp=r, hold_ms=hold))
            time.sleep(0.5)
        # the second caller moves up when the first leaves: "nummer 1" for them too
        wait_until(lambda: self.sip_status(d)["positions"] >= 3, 15, what="the second caller's new position")
        for c in calls:
            self.assertEqual(c.wait(30), 0, c.output())
        self.wait_log(d, 'announcing "U bent nummer 1 in de wachtrij."')
        self.wait_log(d, 'announcing "U bent nummer 2 in de wachtrij."')


class SipIvr(SipTestCase):
    MENUS = {
        "hoofd": {"prompt": "Voor paspoorten kies 1. Voor andere vragen kies 2.",
                  "choices": {"1": "paspoort", "2": {"menu": "overig"}}, "default": "algemeen",
                  "timeout_s": 2, "repeats": 1},
        "overig": {"prompt": "Voor afval kies 1.", "choices": {"1": "afval"}, "default": "algemeen",
                   "timeout_s": 2, "repeats": 1},
    }

    def ivr_daemon(self):
        q = [{"name": n, "strategy": "linear", "offer_timeout_s": 20} for n in ("algemeen", "paspoort", "afval")]
        d = self.sip_daemon({"numbers": {"1000": "algemeen", "2000": {"menu": "hoofd"}}, "menus": self.MENUS}, queues=q)
        self.wait_prompts(d, 4)
        return d

    def queued(self, d):
        return [(i["queue"], i["state"]) for i in d.get_json("/api/v1/berichten?channel=tel")["items"]]

    def test_two_levels_by_dtmf(self):
        d = self.ivr_daemon()
        rtp = self.rtp_peer(send=False)
        c = self.call(number="2000", rtp=rtp, hold_ms=9000)
        wait_until(lambda: (rtp.elapsed() or 0) > 1.0, 10, what="the menu playing")
        rtp.dtmf("2")
        time.sleep(1.5)
        rtp.dtmf("1")
        items = wait_until(lambda: self.queued(d), 10, what="the bericht after the menu")
        self.assertEqual(items, [("afval", "queued")])
        self.assertEqual(c.wait(30), 0, c.output())
        b = d.bericht(d.get_json("/api/v1/berichten?channel=tel")["items"][0]["id"])
        self.assertEqual(b.get("payload", {}).get("ivr"), "2-1", b)
        # one press is one digit: the repeated end packets were deduplicated
        self.assertEqual(self.sip_status(d)["dtmf"], 2)

    def test_sip_info_dtmf_chooses(self):
        d = self.ivr_daemon()
        rtp = self.rtp_peer(send=False)
        c = self.call(number="2000", rtp=rtp, hold_ms=3000, info_digits="1")
        self.assertEqual(c.wait(30), 0, c.output())
        self.assertEqual(self.queued(d)[0][0], "paspoort")
        self.wait_log(d, "DTMF 1 (SIP INFO)")

    def test_wrong_key_then_no_input_goes_to_the_default_queue(self):
        d = self.ivr_daemon()
        rtp = self.rtp_peer(send=False)
        c = self.call(number="2000", rtp=rtp, hold_ms=16000)
        wait_until(lambda: (rtp.elapsed() or 0) > 1.0, 10, what="the menu playing")
        rtp.dtmf("9")
        items = wait_until(lambda: self.queued(d), 25, what="the bericht in the default queue")
        self.assertEqual(items, [("algemeen", "queued")])
        self.wait_log(d, "key 9 is not a choice")
        self.wait_log(d, "no choice after")
        self.assertEqual(c.wait(30), 0, c.output())


class SipIvrTimeTable(SipTestCase):
    """A menu's when_closed variant (R47, choices per time table): while the queue it names is
    closed by its schedule, a caller reaching the menu gets the out-of-hours choices."""
    MENUS = {
        "hoofd": {"prompt": "Voor paspoorten kies 1.", "choices": {"1": "paspoort"}, "default": "algemeen",
                  "timeout_s": 2, "repeats": 1,
                  "when_closed": {"queue": "algemeen",
                                  "prompt": "Wij zijn gesloten. Druk 1 om teruggebeld te worden.",
                                  "choices": {"1": "terugbellen"}}},
    }

    def queues(self, holiday):
        import datetime
        import zoneinfo
        today = datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Amsterdam")).date()
        days = [str(today + datetime.timedelta(days=k)) for k in (-1, 0, 1)] if holiday else []
        week = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        self.cfg_schedules = [{"name": "altijd", "week": week, "holidays": days}]
        return [dict({"name": n, "strategy": "linear", "offer_timeout_s": 20},
                     **({"schedule": "altijd"} if n == "algemeen" else {}))
                for n in ("algemeen", "paspoort", "terugbellen")]

    def press_1(self, d, want):
        rtp = self.rtp_peer(send=False)
        c = self.call(number="2000", rtp=rtp, hold_ms=6000)
        wait_until(lambda: (rtp.elapsed() or 0) > 1.0, 10, what="the menu playing")
        rtp.dtmf("1")
        items = wait_until(lambda: [i for i in d.get_json("/api/v1/berichten?channel=tel")["items"]
                                    if i["queue"] == want], 15, what="the bericht in %s" % want)
        self.assertEqual([i["state"] for i in items], ["queued"], items)
        self.assertEqual(c.wait(30), 0, c.output())

    def test_in_hours_choices_then_out_of_hours_choices_after_the_schedule_closes(self):
        q = self.queues(holiday=False)
        d = self.sip_daemon({"numbers": {"2000": {"menu": "hoofd"}}, "menus": self.MENUS}, queues=q, start=False)
        self.cfg["schedules"] = self.cfg_schedules
        d.write_config(self.cfg)
        d.start()
        self.wait_prompts(d, 3)
        self.wait_log(d, "queue algemeen is open now")
        # in hours: 1 is the passport queue
        self.press_1(d, "paspoort")
        # today becomes a holiday of the queue's schedule: the same key now asks for a callback
        self.cfg["queues"] = self.queues(holiday=True)
        self.cfg["schedules"] = self.cfg_schedules
        d.write_config(self.cfg)
        self.assertEqual(d.request("POST", "/api/v1/reload").status, 200)
        self.wait_log(d, "queue algemeen is closed now", timeout=10)
        self.press_1(d, "terugbellen")
        self.wait_log(d, "menu hoofd: queue algemeen is closed: the when_closed menu")
        qs = sorted(i["queue"] for i in d.get_json("/api/v1/berichten?channel=tel")["items"])
        self.assertEqual(qs, ["paspoort", "terugbellen"])

    def test_bad_when_closed_is_refused_naming_the_key(self):
        bad = dict(self.MENUS["hoofd"], when_closed={"prompt": "Gesloten.", "choices": {"1": "terugbellen"}})
        d = self.sip_daemon({"numbers": {"2000": {"menu": "hoofd"}}, "menus": {"hoofd": bad}}, start=False)
        d.start()
        # the instance does not start; the log names the key
        self.wait_log(d, "menus.hoofd.when_closed.queue must be a queue name")
        self.assertNotEqual(d.request("GET", "/channels/tel/status").status, 200)


class SipConversation(SipTestCase):
    def test_hold_plays_music_resume_reconnects_complete_on_desk_hangs_up(self):
        d = self.sip_daemon()
        self.wait_prompts(d, 2)
        self.agent_phone(d)
        ws = self.agent_ws(d, "agent1")
        rtp = self.rtp_peer(tone_hz=1000)
        caller = self.call(rtp=rtp, hangup="theirs", hold_ms=30000)
        offer = ws.expect("offer", 15)
        bid = offer["bericht"]["id"] if isinstance(offer.get("bericht"), dict) else offer["bericht"]
        wait_until(lambda: (rtp.elapsed() or 0) > 2.0, 15, what="waiting audio")
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10, what="the bridge")
        time.sleep(2.0)
        t_hold = rtp.elapsed()
        self.assertEqual(ws.request({"type": "hold", "bericht": bid})["type"], "ack")
        time.sleep(3.0)
        t_resume = rtp.elapsed()
        self.assertEqual(ws.request({"type": "resume", "bericht": bid})["type"], "ack")
        time.sleep(2.5)
        t_done = rtp.elapsed()
        self.assertEqual(ws.request({"type": "complete", "bericht": bid})["type"], "ack")
        # completing on the desk hangs up the caller (acdm's BYE, the SIPp scenario waits for it)
        self.assertEqual(caller.wait(30), 0, "the caller got no BYE:\n%s" % caller.output())
        before = rtp.pcm_between(t_hold - 1.5, t_hold - 0.2)
        held = rtp.pcm_between(t_hold + 0.5, t_resume - 0.2)
        after = rtp.pcm_between(t_resume + 0.8, t_done - 0.2)
        self.assertGreater(tone_ratio(before, 440), 0.3, "the agent's tone before the hold")
        self.assertLess(tone_ratio(held, 440), 0.1, "the agent is still heard during the hold")
        self.assertLess(rtp.longest_gap(t_hold + 0.3, t_resume - 0.2), 1.0, "silence instead of music on hold")
        self.assertGreater(tone_ratio(after, 440), 0.3, "the agent's tone after the resume")
        wait_until(lambda: d.bericht(bid)["state"] in ("wrapup", "done"), 10, what="wrap-up")

    def test_caller_without_rtp_is_hung_up_after_rtp_timeout(self):
        d = self.sip_daemon({"rtp_timeout_s": 3})
        rtp = self.rtp_peer(send=False)
        caller = self.call(rtp=rtp, hangup="theirs", hold_ms=20000)
        t0 = time.monotonic()
        self.assertEqual(caller.wait(30), 0, "acdm did not hang up the silent call:\n%s" % caller.output())
        self.assertLess(time.monotonic() - t0, 12)
        self.wait_log(d, "no RTP from the caller for 3 s: hung up")
        items = wait_until(lambda: [i for i in d.get_json("/api/v1/berichten?channel=tel")["items"]
                                    if i["state"] == "abandoned"], 10, what="the zombie call ended (abandoned)")
        self.assertEqual(len(items), 1)
        self.assertEqual(self.sip_status(d)["rtp_timeouts"], 1)

    def test_blind_transfer_to_another_agent_rings_their_phone(self):
        d = self.sip_daemon(agents_map={"agent1": "register", "agent2": "register"})
        self.wait_prompts(d, 2)
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        self.agent_phone(d, "agent2", "geheim-agent2", tone=660)
        ws1 = self.agent_ws(d, "agent1")
        ws2 = self.agent_ws(d, "agent2", ready=False)
        rtp = self.rtp_peer()
        caller = self.call(rtp=rtp, hold_ms=16000)
        offer = ws1.expect("offer", 15)
        bid = offer["bericht"]["id"] if isinstance(offer.get("bericht"), dict) else offer["bericht"]
        self.assertEqual(ws1.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10, what="bridged to agent1")
        time.sleep(2.0)
        t1 = rtp.elapsed()
        self.assertEqual(ws2.request({"type": "ready"})["type"], "ack")
        self.assertEqual(ws1.request({"type": "transfer", "bericht": bid, "agent": "agent2"})["type"], "ack")
        ws2.expect("offer", 10, bericht=bid)
        t_offer = rtp.elapsed()
        self.assertEqual(ws2.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 2, 10, what="bridged to agent2")
        time.sleep(2.5)
        t2 = rtp.elapsed()
        self.assertEqual(caller.wait(30), 0, caller.output())
        self.assertGreater(tone_ratio(rtp.pcm_between(t1 - 1.5, t1), 440), 0.3, "agent1 before the transfer")
        self.assertGreater(tone_ratio(rtp.pcm_between(t2 - 1.5, t2), 660), 0.3, "agent2 after the transfer")
        self.assertLess(rtp.longest_gap(t1, t2), 1.0, "silence during the transfer")
        self.assertEqual(d.bericht(bid)["agent"], "agent2")


    def test_blind_transfer_to_a_queue_waits_again_with_the_original_queue_time(self):
        q = [{"name": "algemeen", "strategy": "linear", "offer_timeout_s": 20, "wrapup_s": 5},
             {"name": "tweede", "title": "Tweede lijn", "strategy": "linear", "offer_timeout_s": 20, "wrapup_s": 5}]
        d = self.sip_daemon(agents_map={"agent1": "register", "agent2": "register"}, queues=q, start=False)
        self.cfg["agents"] = [{"id": "agent1", "name": "Anouk", "queues": ["algemeen"]},
                              {"id": "agent2", "name": "Mohammed", "queues": ["tweede"]}]
        d.write_config(self.cfg)
        d.start()
        self.wait_prompts(d, 2)
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        self.agent_phone(d, "agent2", "geheim-agent2", tone=660)
        ws1 = self.agent_ws(d, "agent1")
        ws2 = self.agent_ws(d, "agent2", ready=False)
        rtp = self.rtp_peer()
        caller = self.call(rtp=rtp, hold_ms=20000)
        bid = ws1.expect("offer", 15)["bericht"]["id"]
        queued_ms = d.bericht(bid)["queued_ms"]
        time.sleep(1.0)
        self.assertEqual(ws1.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10, what="bridged to agent1")
        time.sleep(2.0)
        t1 = rtp.elapsed()
        # agent1 hands the call to the queue "tweede": the caller waits there again (waiting audio,
        # agent1's phone hung up), with the queue time of the first arrival
        self.assertEqual(ws1.request({"type": "transfer", "bericht": bid, "queue": "tweede"})["type"], "ack")
        b = wait_until(lambda: (lambda x: x if x["queue"] == "tweede" and x["state"] == "queued" else None)(d.bericht(bid)),
                       10, what="the call waiting in tweede")
        self.assertEqual(b["queued_ms"], queued_ms, "the transfer changed the queue time")
        time.sleep(3.0)
        t_wait = rtp.elapsed()
        self.assertLess(tone_ratio(rtp.pcm_between(t_wait - 2.0, t_wait), 440), 0.2, "agent1 still heard after the transfer")
        self.assertEqual(ws2.request({"type": "ready"})["type"], "ack")
        ws2.expect("offer", 10, bericht=bid)
        self.assertEqual(ws2.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 2, 10, what="bridged to agent2")
        time.sleep(2.5)
        t2 = rtp.elapsed()
        self.assertGreater(tone_ratio(rtp.pcm_between(t1 - 1.5, t1), 440), 0.3, "agent1 before the transfer")
        self.assertGreater(tone_ratio(rtp.pcm_between(t2 - 1.5, t2), 660), 0.3, "agent2 after the transfer")
        self.assertLess(rtp.longest_gap(t1, t2), 1.0, "silence while waiting in the second queue")
        self.assertEqual(caller.wait(40), 0, caller.output())
        b = d.bericht(bid)
        self.assertEqual((b["queue"], b["agent"], b["queued_ms"]), ("tweede", "agent2", queued_ms), b)

    def test_the_agents_phone_transfers_the_caller_to_an_outside_number_with_ringback(self):
        # the outside number: a SIPp UAS at the outbound gateway that rings 2.5 s, answers, and
        # waits for the BYE when the caller hangs up
        uas, uas_port = self.outside_number(echo=False)
        d = self.sip_daemon({"outbound": {"gateway": "127.0.0.1:%d" % uas_port, "caller_id": "0201234567"}})
        self.wait_prompts(d, 2)
        bs = self.agent_phone(d, "agent1", PASSWORD, tone=440)
        ws = self.agent_ws(d, "agent1")
        rtp = self.rtp_peer()
        caller = self.call(rtp=rtp, hold_ms=11000)
        bid = ws.expect("offer", 15)["bericht"]["id"]
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10, what="bridged to agent1")
        time.sleep(1.5)
        t1 = rtp.elapsed()
        # the agent transfers on the phone (REFER to 0301112233)
        r = bs.command("transfer", "sip:0301112233@127.0.0.1:%d" % self.sip_port)
        self.assertTrue(r.get("ok"), r)
        self.wait_log(d, "transfers the caller to 0301112233 (REFER from the phone): dialling sip:0301112233@127.0.0.1:%d" % uas_port)
        t_ref = rtp.elapsed()
        # the agent is free: the bericht ended for them (wrap-up), with the reason
        wait_until(lambda: d.bericht(bid)["state"] in ("wrapup", "done"), 10, what="the agent's wrap-up")
        self.wait_log(d, "answered the transferred caller", 15)
        t_ans = rtp.elapsed()
        self.assertEqual(caller.wait(30), 0, caller.output())
        self.assertEqual(uas.wait(20), 0, "the outside number got no call or no BYE")
        self.assertGreater(tone_ratio(rtp.pcm_between(t1 - 1.0, t1), 440), 0.3, "agent1 before the transfer")
        self.assertGreater(tone_ratio(rtp.pcm_between(t_ref + 0.2, t_ref + 0.9), 425), 0.3, "no ringback while it rang")
        self.assertGreater(t_ans - t_ref, 1.5, "answered before it rang")
        self.assertLess(tone_ratio(rtp.pcm_between(t_ref + 0.2, t_ans), 440), 0.1, "the agent still heard after the transfer")
        self.assertEqual(self.sip_status(d)["transfers_out"], 1)
        b = d.bericht(bid)
        self.assertIn("transferred to 0301112233", str(b["events"]), b["events"])

    def test_the_desk_transfers_the_caller_to_an_outside_number_with_ringback(self):
        uas, uas_port = self.outside_number()
        d = self.sip_daemon({"outbound": {"gateway": "127.0.0.1:%d" % uas_port, "caller_id": "0201234567"}})
        self.wait_prompts(d, 2)
        bs = self.agent_phone(d, "agent1", PASSWORD, tone=440)
        ws = self.agent_ws(d, "agent1")
        rtp = self.rtp_peer(tone_hz=1000)
        caller = self.call(rtp=rtp, hold_ms=12000)
        bid = ws.expect("offer", 15)["bericht"]["id"]
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10, what="bridged to agent1")
        # refused, with a sentence the desk shows; the call stays with the agent
        err = ws.request({"type": "transfer", "bericht": bid, "number": "06-12"})
        self.assertEqual((err["type"], err["code"], err["bericht"]), ("error", "invalid", bid), err)
        self.assertIn("is not a phone number", err["text"], err)
        err = ws.request({"type": "transfer", "bericht": bid, "number": 612345678})
        self.assertEqual((err["type"], err["code"]), ("error", "invalid"), err)
        self.assertIn("number: must be a string", err["text"], err)
        cid = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "+31687654321", "text": "Hallo?"}).json["id"]
        err = ws.request({"type": "transfer", "bericht": cid, "number": "0301112233"})
        self.assertEqual((err["type"], err["code"], err["bericht"]), ("error", "invalid", cid), err)
        self.assertIn("only a call can be transferred to a phone number (this is a chat)", err["text"], err)
        self.assertEqual(d.bericht(bid)["state"], "active")
        time.sleep(1.0)
        t1 = rtp.elapsed()
        # the desk hands the call to 0301112233: same path as the phone's REFER
        self.assertEqual(ws.request({"type": "transfer", "bericht": bid, "number": "0301112233"}),
                         {"type": "ack", "re": "transfer", "bericht": bid})
        self.wait_log(d, "transfers the caller to 0301112233 (from the desk): dialling sip:0301112233@127.0.0.1:%d" % uas_port)
        t_ref = rtp.elapsed()
        wait_until(lambda: d.bericht(bid)["state"] in ("wrapup", "done"), 10, what="the agent's wrap-up")
        wait_until(lambda: "terminated" in bs.output(), 10, what="the agent's phone hung up (BYE)")
        # asked twice: the call is no longer the agent's
        err = ws.request({"type": "transfer", "bericht": bid, "number": "0301112233"})
        self.assertEqual(err["type"], "error", err)
        self.wait_log(d, "answered the transferred caller", 15)
        t_ans = rtp.elapsed()
        time.sleep(2.0)
        t_talk = rtp.elapsed()
        self.assertEqual(caller.wait(30), 0, caller.output())
        self.assertEqual(uas.wait(20), 0, "the outside number got no call or no BYE")
        self.assertGreater(tone_ratio(rtp.pcm_between(t1 - 0.8, t1), 440), 0.3, "agent1 before the transfer")
        self.assertGreater(tone_ratio(rtp.pcm_between(t_ref + 0.2, t_ref + 0.9), 425), 0.3, "no ringback while it rang")
        self.assertGreater(t_ans - t_ref, 1.5, "answered before it rang")
        self.assertLess(tone_ratio(rtp.pcm_between(t_ref + 0.2, t_ans), 440), 0.1, "the agent still heard after the transfer")
        # the outside number's audio (it echoes the caller's 1000 Hz) reaches the caller
        self.assertGreater(tone_ratio(rtp.pcm_between(t_ans + 0.5, t_talk), 1000), 0.3, "the outside number not heard")
        self.assertLess(tone_ratio(rtp.pcm_between(t_ans + 0.5, t_talk), 425), 0.1, "ringback after the answer")
        self.assertEqual(self.sip_status(d)["transfers_out"], 1)
        b = d.bericht(bid)
        self.assertIn("transferred to 0301112233", str(b["events"]), b["events"])

    def test_the_desk_transfer_to_a_number_without_an_outbound_gateway_is_refused(self):
        d = self.sip_daemon()
        self.wait_prompts(d, 2)
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        ws = self.agent_ws(d, "agent1")
        rtp = self.rtp_peer()
        caller = self.call(rtp=rtp, hold_ms=6000)
        bid = ws.expect("offer", 15)["bericht"]["id"]
        # offered, not yet accepted: not in conversation
        err = ws.request({"type": "transfer", "bericht": bid, "number": "+31201234567"})
        self.assertEqual((err["type"], err["code"]), ("error", "state"), err)
        self.assertIn("not in conversation with you", err["text"], err)
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10, what="bridged to agent1")
        err = ws.request({"type": "transfer", "bericht": bid, "number": "+31201234567"})
        self.assertEqual((err["type"], err["code"], err["bericht"]), ("error", "invalid", bid), err)
        self.assertIn("no outbound gateway", err["text"], err)
        time.sleep(1.5)
        t = rtp.elapsed()
        self.assertGreater(tone_ratio(rtp.pcm_between(t - 1.0, t), 440), 0.3, "the call left the agent")
        self.assertEqual(d.bericht(bid)["state"], "active")
        self.assertEqual(caller.wait(30), 0, caller.output())
        self.assertEqual(self.sip_status(d)["transfers_out"], 0)

    def call_with_agent1_before_transfer_out(self, scenario, hold_ms, **outbound):
        """The set-up of a transfer out that fails: a SIPp number at the gateway playing scenario,
        agent1 (440 Hz) bridged to a caller, agent2 (660 Hz) logged in but not ready.
        (uas, d, ws1, ws2, rtp, caller, bericht id, its queued_ms)."""
        uas, uas_port = self.outside_number(scenario, echo=False)
        d = self.sip_daemon({"outbound": dict({"gateway": "127.0.0.1:%d" % uas_port, "caller_id": "0201234567"}, **outbound)},
                            agents_map={"agent1": "register", "agent2": "register"})
        self.wait_prompts(d, 2)
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        self.agent_phone(d, "agent2", "geheim-agent2", tone=660)
        ws1 = self.agent_ws(d, "agent1")
        ws2 = self.agent_ws(d, "agent2", ready=False)
        rtp = self.rtp_peer()
        caller = self.call(rtp=rtp, hold_ms=hold_ms)
        bid = ws1.expect("offer", 15)["bericht"]["id"]
        queued_ms = d.bericht(bid)["queued_ms"]
        self.assertEqual(ws1.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10, what="bridged to agent1")
        time.sleep(1.0)
        return uas, d, ws1, ws2, rtp, caller, bid, queued_ms

    def test_a_busy_number_returns_the_caller_to_the_queue_with_the_original_queue_time(self):
        uas, d, ws1, ws2, rtp, caller, bid, queued_ms = self.call_with_agent1_before_transfer_out(OUTSIDE_BUSY, 16000)
        self.assertEqual(ws1.request({"type": "transfer", "bericht": bid, "number": "0301112233"})["type"], "ack")
        t_ref = rtp.elapsed()
        wait_until(lambda: d.bericht(bid)["state"] in ("wrapup", "done"), 10, what="agent1's wrap-up")
        # the number is busy: the caller is not dropped but waits in the queue again
        self.wait_log(d, "the transfer failed (0301112233 answered 486 Busy Here): the caller goes back to queue algemeen", 15)
        t_busy = rtp.elapsed()
        self.assertEqual(uas.wait(20), 0, "the outside number got no INVITE")
        self.assertEqual(ws2.request({"type": "ready"})["type"], "ack")
        offer = ws2.expect("offer", 10)["bericht"]
        nid = offer["id"]
        self.assertNotEqual(nid, bid)
        nb = d.bericht(nid)
        self.assertEqual((nb["kind"], nb["queue"], nb["from"]), ("voice", "algemeen", d.bericht(bid)["from"]), nb)
        self.assertLessEqual(abs(nb["queued_ms"] - queued_ms), 50, "the caller lost the original queue time")
        self.assertEqual(nb["payload"]["returned_from"], bid, nb["payload"])
        self.assertIn("486", nb["payload"]["transfer_failed"], nb["payload"])
        # the offer tells agent2 why this caller is back
        self.assertEqual(nb["payload"]["subject"], "Gebeld naar 1000, terug na mislukt doorverbinden", nb["payload"])
        self.assertEqual(d.bericht(bid)["payload"]["subject"], "Gebeld naar 1000")
        self.assertEqual(ws2.request({"type": "accept", "bericht": nid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 2, 10, what="bridged to agent2")
        time.sleep(2.0)
        t2 = rtp.elapsed()
        self.assertEqual(caller.wait(40), 0, caller.output())
        self.assertGreater(tone_ratio(rtp.pcm_between(t_ref + 0.2, t_ref + 0.9), 425), 0.3, "no ringback while it rang")
        self.assertLess(rtp.longest_gap(t_busy, t2), 1.0, "silence while waiting again")
        self.assertGreater(tone_ratio(rtp.pcm_between(t2 - 1.5, t2), 660), 0.3, "agent2 not heard after the failed transfer")
        self.assertIn("transferred to 0301112233", str(d.bericht(bid)["events"]))
        self.assertEqual(d.bericht(nid)["agent"], "agent2")

    def test_a_number_that_rings_past_the_ring_timeout_returns_the_caller_to_the_queue(self):
        uas, d, ws1, ws2, rtp, caller, bid, queued_ms = self.call_with_agent1_before_transfer_out(
            OUTSIDE_NO_ANSWER, 20000, ring_timeout_s=5)
        t0 = time.monotonic()
        self.assertEqual(ws1.request({"type": "transfer", "bericht": bid, "number": "0301112233"})["type"], "ack")
        t_ref = rtp.elapsed()
        # the number rings and rings: after outbound.ring_timeout_s acdm cancels it, and the
        # caller, who heard ringback all that time, waits in the queue again
        self.wait_log(d, "transfer: 0301112233 did not answer in 5 s", 15)
        self.assertGreater(time.monotonic() - t0, 4.5, "given up before the ring timeout")
        self.wait_log(d, "the transfer failed (0301112233 did not answer in 5 s): the caller goes back to queue algemeen", 10)
        t_back = rtp.elapsed()
        self.assertEqual(uas.wait(20), 0, "the outside number got no CANCEL")
        self.assertEqual(ws2.request({"type": "ready"})["type"], "ack")
        nid = ws2.expect("offer", 10)["bericht"]["id"]
        nb = d.bericht(nid)
        self.assertLessEqual(abs(nb["queued_ms"] - queued_ms), 50, "the caller lost the original queue time")
        self.assertEqual(nb["payload"]["returned_from"], bid, nb["payload"])
        self.assertIn("did not answer", nb["payload"]["transfer_failed"], nb["payload"])
        self.assertEqual(ws2.request({"type": "accept", "bericht": nid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 2, 10, what="bridged to agent2")
        time.sleep(2.0)
        t2 = rtp.elapsed()
        self.assertEqual(caller.wait(40), 0, caller.output())
        self.assertGreater(tone_ratio(rtp.pcm_between(t_ref + 0.2, t_ref + 0.9), 425), 0.3, "no ringback while it rang")
        self.assertLess(t_back - t_ref, 7.0, "rang on well past outbound.ring_timeout_s")
        self.assertLess(tone_ratio(rtp.pcm_between(t_ref + 0.2, t_back), 440), 0.1, "agent1 still heard after the transfer")
        self.assertLess(rtp.longest_gap(t_back, t2), 1.0, "silence while waiting again")
        self.assertGreater(tone_ratio(rtp.pcm_between(t2 - 1.5, t2), 660), 0.3, "agent2 not heard after the failed transfer")


def register(port, user, password, aor_user=None, expires=60):
    """REGISTER (challenged, then with a digest response); the final response's first line."""
    import hashlib
    aor_user = aor_user or user
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(3)
    lp = s.getsockname()[1]
    callid = "reg%d@t" % random.randrange(1 << 30)

    def send(cseq, auth=""):
        msg = ("REGISTER sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%d\r\n"
               "From: <sip:%s@127.0.0.1:%d>;tag=r1\r\nTo: <sip:%s@127.0.0.1:%d>\r\nCall-ID: %s\r\nCSeq: %d REGISTER\r\n"
               "Contact: <sip:%s@127.0.0.1:%d>;expires=%d\r\nMax-Forwards: 70\r\n%sContent-Length: 0\r\n\r\n"
               % (port, lp, random.randrange(1 << 30), aor_user, port, aor_user, port, callid, cseq, aor_user, lp,
                  expires, auth))
        s.sendto(msg.encode(), ("127.0.0.1", port))
        return s.recv(65536).decode()
    try:
        r = send(1)
        if not r.startswith("SIP/2.0 401"):
            return r.split("\r\n")[0]
        ch = [l for l in r.split("\r\n") if l.lower().startswith("www-authenticate:")][0]
        realm = ch.split('realm="')[1].split('"')[0]
        nonce = ch.split('nonce="')[1].split('"')[0]
        uri = "sip:127.0.0.1:%d" % port
        ha1 = hashlib.md5(("%s:%s:%s" % (user, realm, password)).encode()).hexdigest()
        ha2 = hashlib.md5(("REGISTER:%s" % uri).encode()).hexdigest()
        resp = hashlib.md5(("%s:%s:00000001:abcdef:auth:%s" % (ha1, nonce, ha2)).encode()).hexdigest()
        auth = ('Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", '
                'algorithm=MD5, qop=auth, nc=00000001, cnonce="abcdef"\r\n' % (user, realm, nonce, uri, resp))
        return send(2, auth).split("\r\n")[0]
    finally:
        s.close()


class SipRegistrar(SipTestCase):
    def test_digest_registration_good_wrong_password_and_someone_else(self):
        d = self.sip_daemon()
        self.assertEqual(register(self.sip_port, "agent1", "wrong-password"), "SIP/2.0 403 Forbidden")
        self.wait_log(d, "as agent1: wrong user name or password: 403")
        self.assertEqual(register(self.sip_port, "agent2", "geheim-agent2", aor_user="agent1"), "SIP/2.0 403 Forbidden")
        self.wait_log(d, "agent2 may not register agent1: 403")
        self.assertEqual(self.sip_status(d)["registered"], [])
        self.assertEqual(register(self.sip_port, "agent1", PASSWORD), "SIP/2.0 200 OK")
        self.assertEqual(self.sip_status(d)["registered"], ["agent1"])
        self.assertEqual(register(self.sip_port, "agent1", PASSWORD, expires=0), "SIP/2.0 200 OK")
        self.assertEqual(self.sip_status(d)["registered"], [])
        self.assertEqual(self.sip_status(d)["register_denied"], 2)


class SipStaticPhone(SipTestCase):
    def test_static_uri_phone_and_the_agent_hanging_up_ends_the_call(self):
        bs = None
        d = self.sip_daemon(agents_map={})
        bs = BaresipAgent(self.tmp, "agent2", self.sip_port, password=None, tone=660)
        self.addCleanup(bs.stop)
        # the channel's agents map names agent2's static phone: a reload, no restart
        self.cfg["channels"][0]["config"]["agents"] = {"agent2": bs.uri}
        d.write_config(self.cfg)
        self.assertEqual(d.request("POST", "/api/v1/reload").status, 200)
        self.wait_log(d, "config applied in place")
        ws = self.agent_ws(d, "agent2")
        rtp = self.rtp_peer()
        caller = self.call(rtp=rtp, hangup="theirs", hold_ms=30000)
        offer = ws.expect("offer", 15)
        bid = offer["bericht"]["id"]
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10, what="bridged to the static phone")
        time.sleep(2.0)
        t = rtp.elapsed()
        self.assertGreater(tone_ratio(rtp.pcm_between(t - 1.5, t), 660), 0.3, "the static phone's tone")
        # the agent hangs up on the phone: the caller gets BYE, the conversation ends (wrap-up)
        self.assertTrue(bs.command("hangup").get("ok"), "baresip did not hang up")
        self.assertEqual(caller.wait(20), 0, "the caller got no BYE:\n%s" % caller.output())
        wait_until(lambda: d.bericht(bid)["state"] in ("wrapup", "done"), 10, what="wrap-up after the agent hung up")
        self.wait_log(d, "agent agent2 hung up")


class SipTransports(SipTestCase):
    def test_a_caller_over_tcp_reaches_the_agent(self):
        # listen on UDP and TCP at the same port: the agent's phone registers over UDP, a caller
        # comes in over TCP (SIPp -t t1), waits, and hears the agent after the accept
        d = self.sip_daemon(start=False)
        self.sip_conf["listen"] = ["udp:127.0.0.1:%d" % self.sip_port, "tcp:127.0.0.1:%d" % self.sip_port]
        d.write_config(self.cfg)
        d.start()
        self.wait_log(d, "SIP on tcp:127.0.0.1:%d" % self.sip_port)
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        ws = self.agent_ws(d, "agent1")
        rtp = self.rtp_peer()
        caller = SippCaller(self.tmp, self.sip_port, "1000", caller_xml(rtp.port, hold_ms=7000), name="tcpcaller",
                            extra=("-t", "t1"))
        self.addCleanup(caller.kill)
        bid = ws.expect("offer", 15)["bericht"]["id"]
        wait_until(lambda: (rtp.elapsed() or 0) > 1.0, 15, what="the TCP caller answered and hearing the waiting audio")
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10, what="bridged")
        time.sleep(2.0)
        t = rtp.elapsed()
        self.assertGreater(tone_ratio(rtp.pcm_between(t - 1.5, t), 440), 0.3, "the agent's tone over the TCP call")
        self.assertEqual(caller.wait(30), 0, caller.output())
        b = d.bericht(bid)
        self.assertEqual((b["kind"], b["agent"]), ("voice", "agent1"), b)


    def test_registrations_survive_a_reload_that_changes_the_listen_addresses(self):
        d = self.sip_daemon()
        self.wait_prompts(d, 2)
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        ws = self.agent_ws(d, "agent1")
        # the operator adds a TCP listener: the SIP stack restarts; agent1's phone (re-registering
        # only every 300 s) must stay reachable
        self.sip_conf["listen"] = ["udp:127.0.0.1:%d" % self.sip_port, "tcp:127.0.0.1:%d" % self.sip_port]
        d.write_config(self.cfg)
        self.assertEqual(d.request("POST", "/api/v1/reload").status, 200)
        self.wait_log(d, "registrar: 1 registration kept across the restart", 15)
        self.assertEqual(self.sip_status(d)["registered"], ["agent1"])
        rtp = self.rtp_peer()
        caller = self.call(rtp=rtp, hold_ms=7000)
        bid = ws.expect("offer", 15)["bericht"]["id"]
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10,
                   what="bridged to the phone registered before the reload\n%s" % d.stderr()[-1500:])
        time.sleep(2.0)
        t = rtp.elapsed()
        self.assertGreater(tone_ratio(rtp.pcm_between(t - 1.5, t), 440), 0.3, "the agent's tone after the reload")
        self.assertEqual(caller.wait(30), 0, caller.output())
        self.assertEqual(d.stderr().count("registrar: agent1 registered at"), 1, "the phone had to register again")


SESSION_INVITE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="acdm session timer caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Burger" <sip:0612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:0612345678@[local_ip]:[local_port]
      Max-Forwards: 70
      Supported: timer
      Session-Expires: %(se)d;refresher=uac
      Min-SE: %(min_se)d
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP4 [local_ip]
      s=-
      c=IN IP4 127.0.0.1
      t=0 0
      m=audio %(rtp)d RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
%(rest)s
</scenario>
"""

SESSION_ANSWERED = """  <recv response="200" rtd="true" rrs="true" timeout="20000">
    <action>
      <ereg regexp="([0-9]+);refresher=uac" search_in="hdr" header="Session-Expires:" check_it="true" assign_to="x,se"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "Burger" <sip:0612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
%(refreshes)s
  <recv request="BYE" timeout="%(bye_timeout)d"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <Reference variables="x,se,y"/>
"""

SESSION_UPDATE = """  <pause milliseconds="%(pause)d"/>
  <send retrans="500">
    <![CDATA[
      UPDATE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "Burger" <sip:0612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: %(cseq)d UPDATE
      Max-Forwards: 70
      Supported: timer
      Session-Expires: %(se)d;refresher=uac
      Content-Length: 0

    ]]>
  </send>
  <recv response="200">
    <action>
      <ereg regexp="[0-9]+" search_in="hdr" header="Session-Expires:" check_it="true" assign_to="y"/>
    </action>
  </recv>
"""

SESSION_TOO_SMALL = """  <recv response="422" timeout="10000">
    <action>
      <ereg regexp="%(min_se)d" search_in="hdr" header="Min-SE:" check_it="true" assign_to="z"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Burger" <sip:0612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <Reference variables="z"/>
"""


def outside_scenario(name, after_ringing, on_invite=""):
    """A SIPp UAS scenario for the number at the outbound gateway: INVITE, 180 Ringing, then
    after_ringing (SIPp steps; [to_tag] is the To tag the 180 gave)."""
    to_tag = "[last_To:];tag=[pid]SIPpTag01[call_number]"
    return ("""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="%s">
  <recv request="INVITE" crlf="true">%s</recv>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [to_tag]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
%s
</scenario>
""" % (name, on_invite, after_ringing)).replace("[to_tag]", to_tag)


# rings 2.5 s, answers, waits for BYE
OUTSIDE_UAS = outside_scenario("outside number", """  <pause milliseconds="2500"/>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [to_tag]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE" timeout="30000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>""")

# rings 1.5 s, then busy
OUTSIDE_BUSY = outside_scenario("outside number, busy", """  <pause milliseconds="1500"/>
  <send>
    <![CDATA[
      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [to_tag]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>""")

# rings until acdm sends CANCEL (200 to it, 487 to the INVITE)
OUTSIDE_NO_ANSWER = outside_scenario("outside number, rings and never answers", """  <Reference variables="cs"/>
  <recv request="CANCEL" timeout="20000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [to_tag]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [to_tag]
      [last_Call-ID:]
      CSeq: [$csn] INVITE
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>""",
    on_invite='\n    <action><ereg regexp="CSeq: *([0-9]+)" search_in="msg" check_it="true" assign_to="cs,csn"/></action>\n  ')


class SipSessionTimers(SipTestCase):
    """RFC 4028: a caller that supports timers refreshes by UPDATE; one that stops is hung up."""

    def test_refreshed_by_update_then_hung_up_when_the_refresh_stops_and_422_below_min_se(self):
        d = self.sip_daemon({"session_expires_s": 6, "session_min_se_s": 3})
        self.wait_prompts(d, 2)
        # below our Min-SE: 422 naming it
        rtp0 = self.rtp_peer()
        xml = SESSION_INVITE % {"se": 2, "min_se": 2, "rtp": rtp0.port, "rest": SESSION_TOO_SMALL % {"min_se": 3}}
        small = SippCaller(self.tmp, self.sip_port, "1000", xml, name="se-small")
        self.addCleanup(small.kill)
        self.assertEqual(small.wait(30), 0, "no 422 with Min-SE 3:\n" + small.output())
        self.assertEqual(self.sip_status(d)["rejected_422"], 1)
        # 6 s sessions refreshed by UPDATE every 2.5 s: the call lives past one interval; then the
        # caller stops refreshing and acdm hangs up (BYE) before the interval ends
        rtp = self.rtp_peer()
        refreshes = "".join(SESSION_UPDATE % {"pause": 2500, "cseq": 2 + i, "se": 6} for i in range(3))
        xml = SESSION_INVITE % {"se": 6, "min_se": 3, "rtp": rtp.port,
                                "rest": SESSION_ANSWERED % {"refreshes": refreshes, "bye_timeout": 15000}}
        caller = SippCaller(self.tmp, self.sip_port, "1000", xml, name="se-caller")
        self.addCleanup(caller.kill)
        wait_until(lambda: self.sip_status(d)["answered"] >= 1, 20, what="the caller answered")
        t_answer = time.monotonic()
        self.assertEqual(caller.wait(40), 0, "the refreshed call failed (an early BYE, or none):\n" + caller.output())
        lived = time.monotonic() - t_answer
        self.assertGreater(lived, 7.5, "the call ended within one session interval despite the refreshes")
        self.wait_log(d, "the caller did not refresh the session (Session-Expires 6 s): hung up")
        self.assertEqual(self.sip_status(d)["session_expired"], 1)
        wait_until(lambda: self.sip_status(d)["calls"] == 0, 10, what="the call gone")
        items = wait_until(lambda: [i for i in d.get_json("/api/v1/berichten?channel=tel")["items"]
                                    if i["state"] == "abandoned"], 10, what="the expired call's bericht abandoned")
        b = d.bericht(items[0]["id"])
        self.assertIn("session expired", str([e for e in b["events"] if e["type"] == "abandoned"]), b["events"])


class SipDeviceOffers(SipTestCase):
    """ABI 1.1: the agents' `phone` in the core's config; the offer rings the phone (offer_device)
    and the phone's answer is the accept (device_result)."""

    def device_daemon(self, phones, offer_timeout_s=20, group_commit_ms=None):
        q = [{"name": "algemeen", "strategy": "linear", "offer_timeout_s": offer_timeout_s, "wrapup_s": 5}]
        d = self.sip_daemon(agents_map={}, queues=q, start=False)
        if group_commit_ms is not None:
            self.cfg["group_commit_ms"] = group_commit_ms
        for a in self.cfg["agents"]:
            if a["id"] in phones:
                a["phone"] = phones[a["id"]]
        d.write_config(self.cfg)
        d.start()
        self.wait_prompts(d, 2)
        return d

    def test_the_phone_rings_with_the_offer_and_answering_accepts(self):
        d = self.device_daemon({"agent1": "register"})
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        ws = self.agent_ws(d, "agent1")
        rtp = self.rtp_peer()
        caller = self.call(rtp=rtp, hold_ms=9000)
        offer = ws.expect("offer", 15)
        bid = offer["bericht"]["id"]
        # no accept on the desk: the auto-answering phone's answer is the accept
        ws.expect("assigned", 10, bericht=bid)
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10, what="bridged")
        time.sleep(2.0)
        t = rtp.elapsed()
        self.assertGreater(tone_ratio(rtp.pcm_between(t - 1.5, t), 440), 0.3, "the agent's tone")
        self.assertEqual(caller.wait(30), 0, caller.output())
        self.assertEqual(d.bericht(bid)["agent"], "agent1")

    def test_the_phone_rings_while_the_call_is_stored_the_caller_is_answered_after_the_commit(self):
        # a slow store (every group commit waits 3 s): the call is routed while its commit runs,
        # so the agent's phone rings and answers at once; the caller hears 200 OK only once the
        # bericht is durable, and then the agent (not the waiting audio)
        d = self.device_daemon({"agent1": "register"}, group_commit_ms=3000)
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        ws = self.agent_ws(d, "agent1")
        time.sleep(3.5)                      # the desk's own writes are committed
        rtp = self.rtp_peer()
        t0 = time.monotonic()
        caller = self.call(rtp=rtp, hold_ms=6000)
        bid = ws.expect("offer", 10)["bericht"]["id"]
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10, what="the phone answered")
        st = self.sip_status(d)
        if time.monotonic() - t0 < 2.5:      # still inside the commit's wait (on a loaded machine it may not be)
            self.assertEqual(st["answered"], 0, "the caller was answered before the bericht was durable: %s" % st)
        wait_until(lambda: self.sip_status(d)["answered"] == 1, 15, what="the caller answered after the commit")
        self.assertGreater(time.monotonic() - t0, 2.5, "the caller was answered before the 3 s commit")
        time.sleep(2.0)
        t = rtp.elapsed()
        self.assertGreater(tone_ratio(rtp.pcm_between(t - 1.5, t), 440), 0.3, "the agent's tone after the answer")
        self.assertEqual(caller.wait(30), 0, caller.output())
        self.assertEqual(d.bericht(bid)["agent"], "agent1")
        self.assertLess(self.sip_status(d)["route_latency_ms"]["max"], 2000, "the phone waited for the commit")

    def test_ring_no_answer_goes_to_the_next_agent_who_stays_logged_in(self):
        d = self.device_daemon({"agent1": "register", "agent2": "register"}, offer_timeout_s=4)
        self.agent_phone(d, "agent1", PASSWORD, tone=440, answer="manual")
        self.agent_phone(d, "agent2", "geheim-agent2", tone=660)
        ws1 = self.agent_ws(d, "agent1")
        ws2 = self.agent_ws(d, "agent2")
        rtp = self.rtp_peer()
        caller = self.call(rtp=rtp, hold_ms=16000)
        bid = ws1.expect("offer", 15)["bericht"]["id"]
        # agent1's phone rings and nobody answers: after the offer time-out agent2's phone rings
        ws2.expect("offer", 15, bericht=bid)
        ws2.expect("assigned", 10, bericht=bid)
        wait_until(lambda: self.sip_status(d)["bridged"] == 1, 10, what="bridged to agent2")
        time.sleep(2.0)
        t = rtp.elapsed()
        self.assertGreater(tone_ratio(rtp.pcm_between(t - 1.5, t), 660), 0.3, "agent2's tone")
        self.assertLess(rtp.longest_gap(0.0, t), 1.0, "silence while the phones rang")
        self.assertEqual(caller.wait(30), 0, caller.output())
        self.assertEqual(d.bericht(bid)["agent"], "agent2")
        self.wait_log(d, "agent agent1 did not answer in time")
        a1 = d.agent("agent1")
        self.assertIn(a1["state"], ("ready", "not_ready"), a1)     # still logged in (R36)

    def test_an_unregistered_phone_gets_no_offer(self):
        d = self.device_daemon({"agent1": "register"})
        ws1 = self.agent_ws(d, "agent1")
        rtp = self.rtp_peer()
        caller = self.call(rtp=rtp, hold_ms=4000)
        ws1.expect_none("offer", wait=3.0)
        self.assertEqual(caller.wait(30), 0, caller.output())
        a1 = d.agent("agent1")
        self.assertIn("voice", a1["unreachable"], a1)


class SipCallback(SipTestCase):
    def test_callback_key_then_agent_first_then_the_citizen(self):
        uas_port = siptest.free_udp_port()
        uas = subprocess.Popen([siptest.SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-mp",
                                str(siptest.free_udp_port()), "-m", "1", "-nostdin"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=self.tmp)
        self.addCleanup(lambda: uas.poll() is None and (uas.kill(), uas.wait(5)))
        d = self.sip_daemon({"callback": {"key": "*", "keep_place": False},
                             "outbound": {"gateway": "127.0.0.1:%d" % uas_port, "caller_id": "0201234567"}},
                            agents_map={"agent1": "register"})
        self.wait_prompts(d, 2)
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        # the caller waits (nobody ready), presses *, hears the confirmation and is hung up
        rtp = self.rtp_peer(send=True)
        caller = self.call(rtp=rtp, cli="0612345678", hangup="theirs", hold_ms=30000)
        wait_until(lambda: (rtp.elapsed() or 0) > 2.0, 15, what="waiting audio")
        rtp.dtmf("*")
        self.assertEqual(caller.wait(30), 0, "acdm did not hang up after the callback request:\n%s" % caller.output())
        items = d.get_json("/api/v1/berichten?channel=tel")["items"]
        kinds = sorted((i["kind"], i["state"]) for i in items)
        self.assertIn(("callback", "queued"), kinds, items)
        cb = [i for i in items if i["kind"] == "callback"][0]
        # the agent takes the callback: their phone rings first, then the citizen's number
        ws = self.agent_ws(d, "agent1")
        ws.expect("offer", 10, bericht=cb["id"])
        self.assertEqual(ws.request({"type": "accept", "bericht": cb["id"]})["type"], "ack")
        self.wait_log(d, "agent agent1 answered, dialling sip:0612345678@127.0.0.1:%d" % uas_port, timeout=15)
        self.wait_log(d, "0612345678 answered: bridged to agent agent1", timeout=15)
        evs = wait_until(lambda: [e for e in d.bericht(cb["id"])["events"] if "originate" in e["type"] or
                                  "connected" in str(e.get("detail"))], 10, what="the originate result in the event log")
        self.assertTrue(evs)
        self.assertEqual(ws.request({"type": "complete", "bericht": cb["id"]})["type"], "ack")
        self.assertEqual(uas.wait(20), 0, "the citizen's line (SIPp UAS) did not get the call and its BYE")


    def test_keep_my_place_the_next_agent_calls_back_with_the_original_queue_time(self):
        uas_port = siptest.free_udp_port()
        uas = subprocess.Popen([siptest.SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-mp",
                                str(siptest.free_udp_port()), "-m", "1", "-nostdin"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=self.tmp)
        self.addCleanup(lambda: uas.poll() is None and (uas.kill(), uas.wait(5)))
        q = [{"name": "algemeen", "strategy": "linear", "offer_timeout_s": 20, "wrapup_s": 5}]
        d = self.sip_daemon({"callback": {"key": "*"},
                             "outbound": {"gateway": "127.0.0.1:%d" % uas_port, "caller_id": "0201234567"}},
                            agents_map={}, queues=q, start=False)
        self.cfg["agents"][0]["phone"] = "register"
        d.write_config(self.cfg)
        d.start()
        self.wait_prompts(d, 2)
        rtp = self.rtp_peer(send=True)
        caller = self.call(rtp=rtp, cli="0612345678", hangup="theirs", hold_ms=30000)
        items = wait_until(lambda: d.get_json("/api/v1/berichten?channel=tel")["items"], 10, what="the call's bericht")
        bid = items[0]["id"]
        queued_ms = d.bericht(bid)["queued_ms"]
        wait_until(lambda: (rtp.elapsed() or 0) > 2.0, 15, what="waiting audio")
        rtp.dtmf("*")
        # the confirmation, then acdm hangs up; the bericht waits on, same queue time
        self.assertEqual(caller.wait(30), 0, "acdm did not hang up after the callback request:\n%s" % caller.output())
        self.wait_log(d, "keeps its place for a callback to 0612345678")
        b = d.bericht(bid)
        self.assertEqual((b["state"], b["queued_ms"]), ("queued", queued_ms), b)
        self.assertEqual(b.get("payload", {}).get("callback_to"), "0612345678", b)
        self.assertEqual([i["id"] for i in d.get_json("/api/v1/berichten?channel=tel")["items"]], [bid])
        # its turn: agent1's phone rings (the offer), answers (the accept), then the citizen is dialled
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        ws = self.agent_ws(d, "agent1")
        ws.expect("offer", 15, bericht=bid)
        ws.expect("assigned", 15, bericht=bid)
        self.wait_log(d, "dialling sip:0612345678@127.0.0.1:%d" % uas_port, timeout=15)
        self.wait_log(d, "0612345678 answered: bridged to agent agent1", timeout=15)
        self.assertEqual(ws.request({"type": "complete", "bericht": bid})["type"], "ack")
        self.assertEqual(uas.wait(20), 0, "the citizen's line (SIPp UAS) did not get the call and its BYE")
        self.assertEqual(d.bericht(bid)["queued_ms"], queued_ms)


class SipOutbound(SipTestCase):
    def test_outbound_call_from_the_desk_agent_first_then_the_number(self):
        uas_port = siptest.free_udp_port()
        uas = subprocess.Popen([siptest.SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-mp",
                                str(siptest.free_udp_port()), "-m", "1", "-nostdin"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=self.tmp)
        self.addCleanup(lambda: uas.poll() is None and (uas.kill(), uas.wait(5)))
        d = self.sip_daemon({"outbound": {"gateway": "127.0.0.1:%d" % uas_port, "caller_id": "0201234567"}},
                            start=False)
        self.cfg["agents"][0]["phone"] = "register"
        d.write_config(self.cfg)
        d.start()
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        ws = self.agent_ws(d, "agent1")
        ack = ws.request({"type": "originate", "channel": "tel", "kind": "voice", "to": "0687654321"})
        self.assertEqual(ack["type"], "ack", ack)
        bid = ack["bericht"]
        res = ws.expect("originate_result", 20, bericht=bid)
        self.assertEqual(res["outcome"], "connected", res)
        self.wait_log(d, "dialling sip:0687654321@127.0.0.1:%d" % uas_port)
        b = d.bericht(bid)
        self.assertEqual((b["direction"], b["agent"]), ("out", "agent1"), b)
        self.assertEqual(ws.request({"type": "complete", "bericht": bid})["type"], "ack")
        self.assertEqual(uas.wait(20), 0, "the number dialled (SIPp UAS) did not get the call and its BYE")

    def test_a_number_that_rings_past_the_ring_timeout_is_cancelled_and_reported(self):
        uas, uas_port = self.outside_number(OUTSIDE_NO_ANSWER, echo=False)
        d = self.sip_daemon({"outbound": {"gateway": "127.0.0.1:%d" % uas_port, "caller_id": "0201234567",
                                          "ring_timeout_s": 5}},
                            agents_map={"agent1": "register"})
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        ws = self.agent_ws(d, "agent1")
        t0 = time.monotonic()
        ack = ws.request({"type": "originate", "channel": "tel", "kind": "voice", "to": "0687654321"})
        self.assertEqual(ack["type"], "ack", ack)
        # the agent's phone answers, the number rings on: after 5 s acdm cancels it and the desk
        # reads why, instead of the agent listening to ringback until someone hangs up
        res = ws.expect("originate_result", 30, bericht=ack["bericht"])
        self.assertGreater(time.monotonic() - t0, 4.5, "given up before the ring timeout")
        self.assertEqual(res["outcome"], "failed", res)
        self.assertIn("did not answer in 5 s", res.get("reason") or "", res)
        self.assertEqual(uas.wait(20), 0, "the number got no CANCEL")
        self.wait_log(d, "to 0687654321: the number did not answer in 5 s")
        wait_until(lambda: self.sip_status(d)["calls"] == 0, 10, what="the call ended")

    def test_unreachable_number_reports_failed(self):
        dead = siptest.free_udp_port()          # nothing listens there
        d = self.sip_daemon({"outbound": {"gateway": "127.0.0.1:%d" % dead, "caller_id": "0201234567"}},
                            agents_map={"agent1": "register"})
        self.agent_phone(d, "agent1", PASSWORD, tone=440)
        ws = self.agent_ws(d, "agent1")
        ack = ws.request({"type": "originate", "channel": "tel", "kind": "voice", "to": "0687654321"})
        self.assertEqual(ack["type"], "ack", ack)
        res = ws.expect("originate_result", 60, bericht=ack["bericht"])
        self.assertEqual(res["outcome"], "failed", res)
        self.assertIn("could not be reached", res.get("reason") or "", res)
