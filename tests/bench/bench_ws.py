#!/usr/bin/env python3
"""bench_ws.py -- agents' websockets at scale: N connected agents (W of them working), RSS and CPU
of acdmd, and the latency from `POST /api/v1/berichten` sent to the `offer` arriving on the
agent's socket, at a fixed arrival rate. Python stdlib only (asyncio); run by tests/run-bench.sh.

usage: bench_ws.py [--agents 10000] [--working 1000] [--rate 1000] [--seconds 10] [--acdmd bin/acdmd]
"""
import argparse, asyncio, json, re, resource, subprocess
import tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--agents", type=int, default=10000)
ap.add_argument("--working", type=int, default=1000)
ap.add_argument("--rate", type=int, default=1000)
ap.add_argument("--seconds", type=float, default=10)
ap.add_argument("--acdmd", default="bin/acdmd")
args = ap.parse_args()

QUEUES = 10
HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (HARD, HARD))


from wsload import Ws, agent_tokens, proc_stat, start_acdmd  # noqa: E402  (tests/bench is the script's folder)


async def main():
    tmp = tempfile.mkdtemp(prefix="acdm-bench-ws-")
    cfg = json.load(open("conf/acdm.json"))
    cfg["channels"] = []
    cfg["queues"] = [{"name": "q%d" % i, "strategy": "longest-idle", "wrapup_s": 0, "offer_timeout_s": 60}
                     for i in range(QUEUES)]
    cfg["agents"] = [{"id": "a%d" % i, "queues": ["q%d" % (i % QUEUES)], "capacity": {"chat": 3}}
                     for i in range(args.agents)]
    cfg["log_level"] = "notice"
    cfg.pop("schedules", None)
    daemon, port = start_acdmd(args.acdmd, tmp, cfg)
    admin = open(tmp + "/var/admin.token").read().strip()
    toks = agent_tokens(tmp + "/var/acdm.db", args.agents)

    sent = {}      # customer address (unique per post) -> send time; the offer can beat the 201
    lat = []
    conns = []
    t0 = time.time()
    sem = asyncio.Semaphore(200)

    async def open_agent(i):
        async with sem:
            ws = await Ws.connect(port, "/ws?token=" + toks["a%d" % i])
            await ws.recv()               # hello
            ws.send({"type": "login"})
            if i < args.working:
                ws.send({"type": "ready"})
            conns.append(ws)
            return ws

    agents = await asyncio.gather(*[open_agent(i) for i in range(args.agents)])
    connect_s = time.time() - t0
    await asyncio.sleep(2)
    cpu0, rss_idle = proc_stat(daemon.pid)
    await asyncio.sleep(3)
    cpu1, rss_idle = proc_stat(daemon.pid)
    idle_cpu = (cpu1 - cpu0) / 3 * 100

    async def agent_loop(ws):
        try:
            while True:
                raw = await ws.recv(raw=True)
                if not raw.startswith(b'{"type":"offer"'):
                    continue      # pushes for the desk (stats, colleagues): not parsed here
                m = json.loads(raw)
                if m.get("type") == "offer":
                    bid = m["bericht"]["id"]
                    st = sent.get(m["bericht"].get("from"))
                    if st is not None:
                        lat.append(time.perf_counter() - st)
                    ws.send({"type": "accept", "bericht": bid})
                    ws.send({"type": "complete", "bericht": bid})
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass

    readers = [asyncio.create_task(agent_loop(ws)) for ws in agents[:args.working]]
    # idle agents' sockets still need draining (queue_stats/colleagues pushes may arrive)
    readers += [asyncio.create_task(agent_loop(ws)) for ws in agents[args.working:]]

    n_posters = 20
    per_poster = args.rate / n_posters
    posted = [0]
    errors = [0]

    async def poster(k):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        body_tmpl = '{"queue":"q%d","kind":"chat","from":"bezoeker-%d@example.nl","text":"Hallo"}'
        start = time.perf_counter()
        i = 0
        while time.perf_counter() - start < args.seconds:
            due = start + i / per_poster
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            body = (body_tmpl % ((k + i) % QUEUES, k * 1000000 + i)).encode()
            t = time.perf_counter()
            sent["bezoeker-%d@example.nl" % (k * 1000000 + i)] = t
            w.write(b"POST /api/v1/berichten HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin.encode() +
                    b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
                    b"\r\n\r\n" + body)
            head = await r.readuntil(b"\r\n\r\n")
            clen = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
            await r.readexactly(clen)
            if b" 201 " in head.split(b"\r\n")[0]:
                posted[0] += 1
            else:
                errors[0] += 1
            i += 1
        w.close()

    c0, _ = proc_stat(daemon.pid)
    tl0 = time.time()
    await asyncio.gather(*[poster(k) for k in range(n_posters)])
    await asyncio.sleep(1)
    c1, rss_load = proc_stat(daemon.pid)
    load_cpu = (c1 - c0) / (time.time() - tl0) * 100
    for t in readers:
        t.cancel()
    lat.sort()
    def pct(p):
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")
    achieved = posted[0] / args.seconds
    print("bench ws_agents: %d agent websockets connected in %.1f s (%d working); acdmd idle: RSS %d MiB, CPU %.1f %%"
          % (args.agents, connect_s, args.working, rss_idle, idle_cpu))
    print("bench ws_created_to_offered: p50 %.2f ms, p99 %.2f ms at %.0f berichten/s (target %d/s, %d offers timed, "
          "%d errors); acdmd under load: CPU %.0f %%, RSS %d MiB"
          % (pct(0.5), pct(0.99), achieved, args.rate, len(lat), errors[0], load_cpu, rss_load))
    for ws in conns:
        ws.w.close()
    daemon.terminate()
    daemon.wait(timeout=30)
    subprocess.run(["rm", "-rf", tmp])


asyncio.run(main())
