#!/usr/bin/env python3
"""bench_webchat_flood.py -- issue 9 item 9 as a bounded fault run: C clients open the web chat
websocket, read its hello and close it again, as fast as they can, for S seconds (the attack that
used to fill max_sessions in 0.1 s and lock every real visitor out for 30 s). Meanwhile, and
before as the same-run baseline, a real visitor connects every 0.25 s, writes a first message and
waits for its "waiting" state. Prints the flood's upgrade rate, the visitors' connect-to-waiting
time with and without the flood, how many were refused (must be 0), and acdmd's RSS.

usage: bench_webchat_flood.py [--clients 20] [--seconds 10] [--max-sessions 1000] [--per-address N]
                              [--acdmd bin/acdmd]
"""
import argparse, asyncio, json, subprocess, tempfile, time

from wsload import Ws, proc_stat, start_acdmd  # noqa: E402  (tests/bench is the script's folder)

ap = argparse.ArgumentParser()
ap.add_argument("--clients", type=int, default=20)
ap.add_argument("--seconds", type=float, default=10)
ap.add_argument("--max-sessions", type=int, default=1000)
ap.add_argument("--acdmd", default="bin/acdmd")
ap.add_argument("--per-address", type=int, default=1000000,
                help="max_sessions_per_address (the flood comes from one address); 0 leaves the key "
                     "out (for a webchat.so from before the setting existed: the baseline run)")
args = ap.parse_args()
ORIGIN = "http://bench.example.nl"
PATH = "/channels/site/ws"


async def expect(ws, type_, timeout=10):
    async def loop():
        while True:
            m = await ws.recv()
            if m.get("type") == type_:
                return m
    return await asyncio.wait_for(loop(), timeout)


async def visitor(port, n):
    """Seconds from connect to the 'waiting' state after a first message, or None if refused."""
    t0 = time.perf_counter()
    try:
        ws = await Ws.connect(port, PATH, origin=ORIGIN)
        await expect(ws, "hello")
        ws.send({"type": "message", "text": "vraag %d" % n})
        while (await expect(ws, "state")).get("state") != "waiting":
            pass
        dt = time.perf_counter() - t0
        ws.send({"type": "end"})
        await expect(ws, "ended")
        ws.w.close()
        return dt
    except (RuntimeError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        return None


async def visitors(port, seconds, base):
    out, n = [], base
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        out.append(await visitor(port, n))
        n += 1
        await asyncio.sleep(0.25)
    return out


async def flooder(port, stop, count):
    while not stop.is_set():
        try:
            ws = await Ws.connect(port, PATH, origin=ORIGIN)
            await expect(ws, "hello", 5)
            ws.w.close()
            count[0] += 1
        except (RuntimeError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
            count[1] += 1


def summary(ts):
    ok = sorted(t for t in ts if t is not None)
    if not ok:
        return "none got in (%d refused)" % len(ts)
    return "p50 %.1f ms, max %.1f ms, %d of %d refused" % (ok[len(ok) // 2] * 1000, ok[-1] * 1000,
                                                         len(ts) - len(ok), len(ts))


async def main():
    tmp = tempfile.mkdtemp(prefix="acdm-bench-flood-")
    cfg = json.load(open("conf/acdm.json"))
    cfg["queues"] = [{"name": "algemeen", "strategy": "longest-idle"}]
    cfg["agents"] = [{"id": "a1", "queues": ["algemeen"]}]
    wc = {"allowed_origins": [ORIGIN], "max_sessions": args.max_sessions}
    if args.per_address:
        wc["max_sessions_per_address"] = args.per_address
    cfg["channels"] = [{"name": "site", "plugin": "webchat", "queue": "algemeen", "config": wc}]
    cfg["log_level"] = "notice"
    cfg.pop("schedules", None)
    daemon, port = start_acdmd(args.acdmd, tmp, cfg)
    _, rss0 = proc_stat(daemon.pid)
    base = await visitors(port, 3, 0)
    stop, count = asyncio.Event(), [0, 0]
    t0 = time.perf_counter()
    floods = [asyncio.create_task(flooder(port, stop, count)) for _ in range(args.clients)]
    during = await visitors(port, args.seconds, 1000)
    stop.set()
    await asyncio.gather(*floods)
    flood_s = time.perf_counter() - t0
    _, rss1 = proc_stat(daemon.pid)
    after = await visitors(port, 2, 2000)
    print("bench webchat_flood: %d open-then-close upgrades in %.1f s (%.0f/s, %d clients, %d refused) with "
          "max_sessions %d; a visitor's connect -> waiting: baseline %s; during the flood %s; after %s; "
          "acdmd RSS %d MiB -> %d MiB"
          % (count[0], flood_s, count[0] / flood_s, args.clients, count[1], args.max_sessions,
             summary(base), summary(during), summary(after), rss0, rss1))
    daemon.terminate()
    try:
        daemon.wait(30)
    except subprocess.TimeoutExpired:
        daemon.kill()


asyncio.run(main())
