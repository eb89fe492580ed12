#!/usr/bin/env python3
"""bench_webchat.py -- the web chat channel at scale: V concurrent visitor websockets (every one
with a chat: A of them active with an agent, the rest waiting and getting position updates),
RSS and CPU of acdmd, and the relay latency of a visitor's message to the agent's websocket
(sent on the visitor's socket -> `message` push on the agent's) at a fixed rate. Python stdlib
only (asyncio), like bench_ws.py.

usage: bench_webchat.py [--visitors 5000] [--agents 10] [--per-agent 20] [--rate 500]
                        [--seconds 20] [--acdmd bin/acdmd]
"""
import argparse, asyncio, json, resource, subprocess
import multiprocessing, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--visitors", type=int, default=5000)
ap.add_argument("--agents", type=int, default=10)
ap.add_argument("--per-agent", type=int, default=20)
ap.add_argument("--rate", type=int, default=500)
ap.add_argument("--seconds", type=float, default=20)
ap.add_argument("--acdmd", default="bin/acdmd")
ap.add_argument("--tmpdir", default=None, help="data folder parent (e.g. /dev/shm: no fsync cost)")
ap.add_argument("--idle", action="store_true", help="visitors beyond the active chats only connect (no chat)")
args = ap.parse_args()

HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (HARD, HARD))
ORIGIN = "http://bench.example.nl"


from wsload import Ws, agent_tokens, proc_stat, start_acdmd  # noqa: E402  (tests/bench is the script's folder)


def agents_process(port, toks, pipe):
    async def run():
        lat = []
        agents = []
        for name, tok in toks.items():
            ws = await Ws.connect(port, "/ws?token=" + tok)
            await ws.recv()
            ws.send({"type": "login"})
            ws.send({"type": "join", "queue": "algemeen"})
            ws.send({"type": "ready"})
            agents.append(ws)

        async def agent_loop(ws):
            try:
                while True:
                    raw = await ws.recv(raw=True)
                    if raw.startswith(b'{"type":"message"'):
                        now = time.perf_counter()
                        m = json.loads(raw)
                        t = m.get("text") or ""
                        if t.startswith("t"):
                            lat.append(now - float(t[1:]))
                    elif raw.startswith(b'{"type":"offer"'):
                        m = json.loads(raw)
                        ws.send({"type": "accept", "bericht": m["bericht"]["id"]})
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
        tasks = [asyncio.create_task(agent_loop(ws)) for ws in agents]
        pipe.send("ready")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pipe.recv)      # "stop"
        for t in tasks:
            t.cancel()
        pipe.send(lat)
    asyncio.run(run())


async def main():
    tmp = tempfile.mkdtemp(prefix="acdm-bench-wc-", dir=args.tmpdir)
    cfg = json.load(open("conf/acdm.json"))
    cfg["queues"] = [{"name": "algemeen", "strategy": "longest-idle", "wrapup_s": 0, "offer_timeout_s": 120}]
    cfg["agents"] = [{"id": "a%d" % i, "queues": ["algemeen"], "capacity": {"chat": args.per_agent}}
                     for i in range(args.agents)]
    cfg["channels"] = [{"name": "site", "plugin": "webchat", "queue": "algemeen", "config": {
        "allowed_origins": [ORIGIN], "max_sessions": args.visitors + 100,
        "max_sessions_per_address": args.visitors + 100, "inactivity_s": 3600,
        "reconnect_grace_s": 3600, "messages_per_minute": 60000}}]
    cfg["log_level"] = "notice"
    cfg.pop("schedules", None)
    daemon, port = start_acdmd(args.acdmd, tmp, cfg)
    toks = agent_tokens(tmp + "/var/acdm.db", args.agents)
    _, rss_start = proc_stat(daemon.pid)

    # agents in a process of their own (the 5,000 visitor sockets would delay their reads): ready,
    # accept every offer, and time every visitor message that arrives ("t<send perf_counter>";
    # perf_counter is CLOCK_MONOTONIC, the same clock in both processes)
    parent_end, child_end = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=agents_process, args=(port, toks, child_end), daemon=True)
    proc.start()
    assert parent_end.recv() == "ready"
    active = set()        # visitor indexes with an agent
    readers = []

    visitors = []
    sem = asyncio.Semaphore(200)
    positions = [0]

    async def visitor_loop(i, ws):
        try:
            while True:
                raw = await ws.recv(raw=True)
                if raw.startswith(b'{"type":"state"') and b'"active"' in raw:
                    active.add(i)
                elif raw.startswith(b'{"type":"queue"'):
                    positions[0] += 1
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass

    async def open_visitor(i):
        async with sem:
            ws = await Ws.connect(port, "/channels/site/ws", origin=ORIGIN)
            await ws.recv()                       # hello
            if not args.idle or i < args.agents * args.per_agent:
                ws.send({"type": "message", "text": "Hallo, ik heb een vraag (%d)" % i})
            visitors.append((i, ws))
            readers.append(asyncio.create_task(visitor_loop(i, ws)))

    t0 = time.time()
    await asyncio.gather(*[open_visitor(i) for i in range(args.visitors)])
    connect_s = time.time() - t0
    want_active = min(args.visitors, args.agents * args.per_agent)
    end = time.time() + 60
    while len(active) < want_active and time.time() < end:
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    cpu0, _ = proc_stat(daemon.pid)
    p0 = positions[0]
    await asyncio.sleep(6)
    cpu1, rss_idle = proc_stat(daemon.pid)
    idle_cpu = (cpu1 - cpu0) / 6 * 100

    # the load client's own event-loop lag (a late wake-up inflates the measured latency)
    lags = []

    async def lag_probe():
        try:
            while True:
                t = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - t - 0.01)
        except asyncio.CancelledError:
            pass
    readers.append(asyncio.create_task(lag_probe()))

    # relay at a fixed rate, round robin over the active chats
    by_index = dict(visitors)
    act = sorted(active)
    n = int(args.rate * args.seconds)
    start = time.perf_counter()
    c0, _ = proc_stat(daemon.pid)
    tl0 = time.time()
    k = 0
    while k < n:
        due = start + k / args.rate
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        while k < n and start + k / args.rate <= time.perf_counter():   # every message now due
            by_index[act[k % len(act)]].send({"type": "message", "text": "t%.6f" % time.perf_counter()})
            k += 1
    send_s = time.perf_counter() - start
    await asyncio.sleep(2)
    c1, rss_load = proc_stat(daemon.pid)
    load_cpu = (c1 - c0) / (time.time() - tl0) * 100
    for t in readers:
        t.cancel()
    parent_end.send("stop")
    lat = parent_end.recv()
    proc.join(10)
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")
    print("bench webchat_visitors: %d visitor websockets with a chat (%d active with %d agents, %d waiting) "
          "connected in %.1f s; acdmd RSS %d MiB (%d MiB at start, %.1f KiB per visitor), idle CPU %.1f %% "
          "(%d position updates pushed in 6 s)"
          % (len(visitors), len(act), args.agents, len(visitors) - len(act), connect_s, rss_idle, rss_start,
             (rss_idle - rss_start) * 1024.0 / max(1, len(visitors)), idle_cpu, positions[0] - p0))
    print("bench webchat_relay: visitor -> agent p50 %.2f ms, p99 %.2f ms, max %.2f ms at %.0f messages/s "
          "(%d sent, %d timed, %d lost); acdmd under load: CPU %.0f %%, RSS %d MiB"
          % (pct(0.5), pct(0.99), lat[-1] * 1000 if lat else float("nan"), n / send_s, n, len(lat),
             n - len(lat), load_cpu, rss_load))
    lags.sort()
    print("bench webchat_client: the load client's event-loop lag p50 %.2f ms, p99 %.2f ms, max %.2f ms "
          "(part of the relay figures above)" % (lags[len(lags) // 2] * 1000, lags[int(len(lags) * 0.99)] * 1000,
                                                  lags[-1] * 1000))
    for _, ws in visitors:
        ws.w.close()
    daemon.terminate()
    try:
        daemon.wait(30)
    except subprocess.TimeoutExpired:
        daemon.kill()


asyncio.run(main())
