"""sipdriver -- siptest's SIP peers for a test written in another language (the browser tests).

One JSON request per line on stdin, one JSON line per reply on stdout (with the request's "id").
Nothing is reimplemented here: the peers and the audio analysis are siptest's.

  {"id": 1, "op": "port"}                       -> {"port": p}   (free_port_pair: acdm's SIP port)
  {"op": "rtp_range"}                           -> {"range": "30000-30400"}
  {"op": "phone", "name": "a1", "user": "agent1", "password": "...", "sip_port": p, "tone": 440,
   "answer": "auto"}                            -> {"uri", "pid"}  (a BaresipAgent registering to acdm)
  {"op": "call", "name": "c1", "sip_port": p, "number": "1000", "cli": "0612345678",
   "tone": 1000, "hangup": "theirs", "hold_ms": 180000}
                                                -> {"rtp_port", "pid"} (an RtpPeer and a SippCaller)
  {"op": "elapsed", "name": "c1"}               -> {"t": seconds since the caller's first RTP packet, or null}
  {"op": "audio", "name": "c1", "from": t0, "to": t1, "freqs": [440, 660]}
                                                -> {"samples", "rms", "gap", "ratio": {"440": ...}}
                                                   what the caller heard between t0 and t1: tone_ratio
                                                   per frequency, the longest silence, the RMS
  {"op": "wait", "name": "c1", "timeout": 30}   -> {"rc": SIPp's exit code or "timeout"}
  {"op": "log", "name": "c1" | "a1"}            -> {"text": the peer's log tail}
  {"op": "quit"}                                -> stops every peer and exits

The first line printed is {"event": "ready"}, or {"event": "error", "error": ...} when sipp or
baresip is missing. Every peer is stopped on "quit", on the end of stdin and on SIGTERM, so the
caller only has to end this one process."""
import json
import os
import signal
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import siptest  # noqa: E402
from siptest import BaresipAgent, RtpPeer, SippCaller, caller_xml, free_port_pair, rms, rtp_range, tone_ratio  # noqa: E402

out_lock = threading.Lock()
phones, calls = {}, {}          # name -> BaresipAgent; name -> (RtpPeer, SippCaller)
stopped = False


def emit(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def stop_all():
    global stopped
    if stopped:
        return
    stopped = True
    for rtp, caller in calls.values():
        caller.kill()
        rtp.close()
    for bs in phones.values():
        bs.stop()


def handle(req, workdir):
    op = req.get("op")
    if op == "port":
        return {"port": free_port_pair()}
    if op == "rtp_range":
        return {"range": rtp_range()}
    if op == "phone":
        name = req["name"]
        if name in phones:
            raise ValueError("phone %s exists" % name)
        phones[name] = BaresipAgent(workdir, req["user"], req["sip_port"], password=req.get("password"),
                                    tone=req.get("tone", 440), name=name, answer=req.get("answer", "auto"))
        return {"uri": phones[name].uri, "pid": phones[name].proc.pid}
    if op == "call":
        name = req["name"]
        if name in calls:
            raise ValueError("call %s exists" % name)
        rtp = RtpPeer(tone_hz=req.get("tone", 1000))
        xml = caller_xml(rtp.port, cli=req.get("cli", "0612345678"), hold_ms=req.get("hold_ms", 10000),
                         hangup=req.get("hangup", "ours"))
        try:
            caller = SippCaller(workdir, req["sip_port"], req.get("number", "1000"), xml, name=name)
        except Exception:
            rtp.close()
            raise
        calls[name] = (rtp, caller)
        return {"rtp_port": rtp.port, "pid": caller.proc.pid}
    if op == "elapsed":
        return {"t": calls[req["name"]][0].elapsed()}
    if op == "audio":
        rtp = calls[req["name"]][0]
        t0, t1 = float(req["from"]), float(req["to"])
        pcm = rtp.pcm_between(t0, t1)
        return {"samples": len(pcm), "rms": rms(pcm), "gap": rtp.longest_gap(t0, t1),
                "ratio": {str(f): tone_ratio(pcm, f) for f in req.get("freqs", [])}}
    if op == "wait":
        rc = calls[req["name"]][1].wait(req.get("timeout", 30))
        return {"rc": rc}
    if op == "log":
        name = req["name"]
        if name in calls:
            return {"text": calls[name][1].output()}
        return {"text": phones[name].output()[-3000:]}
    raise ValueError("unknown op %r" % op)


def main():
    missing = [n for n, p in (("sipp (Debian sip-tester)", siptest.SIPP), ("baresip", siptest.BARESIP)) if not p]
    if missing:
        emit({"event": "error", "error": "missing %s: run scripts/deps.sh test" % " and ".join(missing)})
        return 1
    workdir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="acdm-sipdriver-")
    os.makedirs(workdir, exist_ok=True)

    def on_term(signum, frame):
        stop_all()
        os._exit(0)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    emit({"event": "ready", "dir": workdir})
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                req = json.loads(line)
            except ValueError as e:
                emit({"error": "not JSON: %s" % e})
                continue
            if req.get("op") == "quit":
                break
            # a wait blocks: run each request in its own thread, replies carry the id
            def run(req=req):
                try:
                    res = handle(req, workdir)
                except Exception as e:      # reported to the test, which fails with it
                    res = {"error": "%s: %s" % (type(e).__name__, e)}
                res["id"] = req.get("id")
                emit(res)
            threading.Thread(target=run, daemon=True).start()
    finally:
        stop_all()
        emit({"event": "stopped"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
