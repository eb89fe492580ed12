#!/usr/bin/env python3
"""bench_sip.py -- the SIP voice channel under load (make bench; issue 10's benchmark).

Calls from SIPp (`-sn uac`, no RTP of its own) into a queue whose callers hear announcements
(welcome, "een moment geduld", music on the shared 20 ms clock), offered to agents whose desks
(one websocket each, here) accept at once; the accept calls the agent's phone, a SIPp UAS
(`-sn uas`: answers at once), and the legs are bridged. Figures:
  - calls/s set up and bridged with 0 failures (SIPp's count, acdm's `bridged`),
  - concurrent bridged calls (acdm's `calls` sampled every 0.2 s),
  - acdmd CPU (% of one core, and per call) and RSS,
  - routing latency: the caller's INVITE received -> the INVITE to the agent's phone sent,
    p50/p99 as the plugin measures it (GET /channels/<inst>/status, 0.1 ms buckets); it
    includes the commit and the offer (with the desk's accept over the websocket when the
    phone is called on the accept; not with ABI 1.1 device offers).
Baseline in the same run: the recipe's minimal libre UAS (tests/bench/sip_uas_re.c, 200 OK and
1 s of tone per call) under the same SIPp load.

Environment: ACDM_BENCH_SIP_RATE (default 200), ACDM_BENCH_SIP_SECONDS (20), ACDM_BENCH_SIP_HOLD_MS
(2500), ACDM_BENCH_SIP_AGENTS (rate x hold + 20%).
"""
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
os.environ.setdefault("ACDM_BIN", os.path.join(REPO, "bin", "acdmd"))
os.environ.setdefault("ACDM_CTL", os.path.join(REPO, "bin", "acdmctl"))

import acdmtest  # noqa: E402
from siptest import free_port_pair, free_udp_port  # noqa: E402


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0


def sipp_load(port, rate, calls, hold_ms, workdir, tag):
    """SIPp's built-in UAC at rate; returns (successful, failed, wall s)."""
    stat = os.path.join(workdir, tag + "-stat.csv")
    cmd = ["sipp", "-sn", "uac", "127.0.0.1:%d" % port, "-s", "1000", "-i", "127.0.0.1", "-p", str(free_udp_port()),
           "-mp", str(free_udp_port()), "-r", str(rate), "-m", str(calls), "-d", str(hold_ms), "-l", str(calls),
           "-nostdin", "-max_socket", "4096", "-timeout", str(int(calls / rate + hold_ms / 1000 + 60)) + "s"]
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    wall = time.monotonic() - t0
    text = out.stdout + out.stderr
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    bad = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    with open(os.path.join(workdir, tag + "-sipp.txt"), "w") as f:
        f.write(text)
    return (int(ok[-1]) if ok else -1), (int(bad[-1]) if bad else -1), wall


def baseline(rate, calls, workdir):
    exe = os.path.join(workdir, "uas_re")
    subprocess.run(["gcc", "-O2", "-DHAVE_INTTYPES_H", "-DHAVE_STDBOOL_H", "-DHAVE_INET6", "-isystem", "/usr/include/re",
                    "-o", exe, os.path.join(HERE, "sip_uas_re.c"), "-lre", "-lpthread", "-lm"], check=True)
    port = free_udp_port()
    p = subprocess.Popen([exe, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    c0, t0 = proc_cpu(p.pid), time.monotonic()
    ok, bad, wall = sipp_load(port, rate, calls, 1000, workdir, "baseline")
    cpu = (proc_cpu(p.pid) - c0) / (time.monotonic() - t0) * 100
    rss = proc_rss_mb(p.pid)
    p.terminate()
    p.wait(10)
    return ok, bad, wall, cpu, rss


class AutoDesk(threading.Thread):
    """An agent's desk that accepts every offer at once."""

    def __init__(self, d, agent, tok, accept=True):
        super().__init__(daemon=True)
        self.accept = accept
        for attempt in range(20):          # the core limits new connections per client address
            try:
                self.ws = d.ws(tok)
                break
            except (acdmtest.WsClosed, OSError):
                if attempt == 19:
                    raise
                time.sleep(0.25 * (attempt + 1))
        self.ws.expect("hello", 30)
        self.ws.request({"type": "login"}, 30)
        self.ws.request({"type": "ready"}, 30)
        self.stop = False
        self.accepted = 0

    def run(self):
        while not self.stop:
            try:
                m = self.ws.recv(1.0)
            except AssertionError:
                continue
            except Exception:
                return
            if m.get("type") == "offer" and self.accept:
                b = m["bericht"]["id"] if isinstance(m.get("bericht"), dict) else m["bericht"]
                self.ws.send({"type": "accept", "bericht": b})
                self.accepted += 1


def acdm_run(rate, seconds, hold_ms, n_agents, workdir, tag, device=False):
    """device: the agents' `phone` in the core config (ABI 1.1 offer_device: the offer rings the
    phone, its answer is the accept, no desk round trip); else the desk accepts and the channel's
    agents map says which phone to call."""
    sip_port = free_port_pair()
    uas_port = free_udp_port()
    uas = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-mp", str(free_udp_port()),
                            "-nostdin", "-max_socket", "4096"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           cwd=workdir)
    agents = ["a%03d" % i for i in range(n_agents)]
    rtp_base = random.randrange(20000, 50000, 2)
    # every desk of the run connects from 127.0.0.1: lift the per-address connection limit
    # (default 256, issue 9) above the run's desks
    cfg = acdmtest.base_config(os.path.join(REPO, "plugins"), log_level="info",
                               max_connections_per_address=max(256, 2 * n_agents + 64),
                               group_commit_ms=int(os.environ.get("ACDM_BENCH_SIP_GROUP_MS", "0")))
    cfg["queues"] = [{"name": "algemeen", "strategy": "linear", "wrapup_s": 0, "offer_timeout_s": 20}]
    cfg["agents"] = [dict({"id": a, "queues": ["algemeen"]}, **({"phone": "sip:%s@127.0.0.1:%d" % (a, uas_port)} if device else {}))
                     for a in agents]
    cfg["channels"] = [{"name": "tel", "plugin": "sip", "queue": "algemeen", "config": {
        "listen": "udp:127.0.0.1:%d" % sip_port, "rtp_ports": "%d-%d" % (rtp_base, rtp_base + 9000),
        "numbers": {"1000": "algemeen"}, "max_calls": 5000,
        "prompts": {"default": {"welcome": "Welkom bij de gemeente.", "wait": "Een moment geduld alstublieft.",
                                "wait_interval_s": 5}},
        "agents": {} if device else {a: "sip:%s@127.0.0.1:%d" % (a, uas_port) for a in agents}}}]
    d = acdmtest.Daemon(workdir, cfg, name="acdmd-" + tag)
    d.start()
    try:
        tok = {a: d.token("agent", a) for a in agents}
        desks = [AutoDesk(d, a, tok[a], accept=not device) for a in agents]
        for k in desks:
            k.start()
        time.sleep(1.0)
        pid = d.proc.pid
        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    r = d.request("GET", "/channels/tel/status")
                    samples.append(r.json["calls"])
                except Exception:
                    pass
                time.sleep(0.2)
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        calls = rate * seconds
        c0, t0 = proc_cpu(pid), time.monotonic()
        ok, bad, wall = sipp_load(sip_port, rate, calls, hold_ms, workdir, tag)
        cpu_s = proc_cpu(pid) - c0
        el = time.monotonic() - t0
        rss = proc_rss_mb(pid)
        stop.set()
        th.join(2)
        st = d.request("GET", "/channels/tel/status").json
        if "bridged" not in st:
            print(st, d.stderr_tail(30))
        for k in desks:
            k.stop = True
        # routing latency as the plugin measures it (INVITE in -> the agent's INVITE out, 0.1 ms buckets)
        lat = st.get("route_latency_ms", {})
        return {"ok": ok, "failed": bad, "wall": wall, "cpu_pct": cpu_s / el * 100, "cpu_ms_per_call": cpu_s * 1000 / max(1, ok),
                "rss": rss, "max_concurrent": max(samples) if samples else 0, "bridged": st["bridged"],
                "p50": lat.get("p50", -1), "p99": lat.get("p99", -1), "n_lat": lat.get("n", 0)}
    finally:
        d.stop(check=False)
        uas.terminate()
        uas.wait(10)


def main():
    rate = int(os.environ.get("ACDM_BENCH_SIP_RATE", "200"))
    seconds = int(os.environ.get("ACDM_BENCH_SIP_SECONDS", "20"))
    hold = int(os.environ.get("ACDM_BENCH_SIP_HOLD_MS", "2500"))
    agents = int(os.environ.get("ACDM_BENCH_SIP_AGENTS", str(int(rate * hold / 1000 * 1.2) + 10)))
    with tempfile.TemporaryDirectory(prefix="acdm-bench-sip-") as w:
        only = os.environ.get("ACDM_BENCH_SIP_ONLY")
        if only == "rate":
            r = acdm_run(rate, seconds, hold, agents, w, "%dcps" % rate, device=True)
            print("bench sip_acdm_%dcps: %d ok, %d failed, %d bridged in %.1f s; p50 %.1f ms, p99 %.1f ms; acdmd CPU %.1f %% "
                  "(%.2f ms/call), RSS %.0f MB, max %d calls at once (%d agents)"
                  % (rate, r["ok"], r["failed"], r["bridged"], r["wall"], r["p50"], r["p99"], r["cpu_pct"],
                     r["cpu_ms_per_call"], r["rss"], r["max_concurrent"], agents))
            return
        ok, bad, wall, cpu, rss = baseline(rate, rate * seconds, w)
        print("bench sip_baseline_uas_re: %d cps x %d calls (1 s tone each): %d ok, %d failed, %.1f s; "
              "UAS CPU %.1f %% of a core, RSS %.0f MB" % (rate, rate * seconds, ok, bad, wall, cpu, rss))
        r = acdm_run(50, max(10, seconds), hold, int(50 * hold / 1000 * 1.2) + 10, w, "50cps")
        print("bench sip_acdm_50cps: %d ok, %d failed, %d bridged; routing latency INVITE->agent INVITE p50 %d ms, "
              "p99 %d ms (%d calls); acdmd CPU %.1f %% (%.2f ms/call), RSS %.0f MB, max %d calls at once"
              % (r["ok"], r["failed"], r["bridged"], r["p50"], r["p99"], r["n_lat"], r["cpu_pct"], r["cpu_ms_per_call"],
                 r["rss"], r["max_concurrent"]))
        r = acdm_run(50, max(10, seconds), hold, int(50 * hold / 1000 * 1.2) + 10, w, "50cps-device", device=True)
        print("bench sip_acdm_50cps_device_offers: %d ok, %d failed, %d bridged; routing latency INVITE->agent INVITE "
              "p50 %.1f ms, p99 %.1f ms (%d calls); acdmd CPU %.1f %% (%.2f ms/call), RSS %.0f MB, max %d calls at once"
              % (r["ok"], r["failed"], r["bridged"], r["p50"], r["p99"], r["n_lat"], r["cpu_pct"], r["cpu_ms_per_call"],
                 r["rss"], r["max_concurrent"]))
        r = acdm_run(rate, seconds, hold, agents, w, "%dcps" % rate, device=True)
        print("bench sip_acdm_%dcps: %d ok, %d failed, %d bridged in %.1f s; p50 %.1f ms, p99 %.1f ms; acdmd CPU %.1f %% "
              "(%.2f ms/call), RSS %.0f MB, max %d calls at once (%d agents)"
              % (rate, r["ok"], r["failed"], r["bridged"], r["wall"], r["p50"], r["p99"], r["cpu_pct"],
                 r["cpu_ms_per_call"], r["rss"], r["max_concurrent"], agents))


if __name__ == "__main__":
    main()
