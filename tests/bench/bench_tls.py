#!/usr/bin/env python3
"""bench_tls.py -- the cost of TLS (issue 13): one acdmd with a plain and a TLS listener, the
same loads on each in alternating rounds, figures as ratios TLS/plain:
  - REST ingest: wrk, 64 connections, POST /api/v1/berichten (201 after the group commit);
    with keep-alive (the TLS handshake once per connection) and with a new connection per
    request (a handshake per request: the worst case, a webhook provider without keep-alive);
  - agents' websockets: N agents connect (TLS handshake + upgrade + hello), then berichten at a
    fixed rate, created -> offered latency on the agents' sockets.
The certificate is a fresh P-256 one (openssl CLI); the client takes TLS 1.3 as a browser does.
Python stdlib + wrk; run by tests/run-bench.sh.

usage: bench_tls.py [--rounds 3] [--agents 1000] [--rate 200] [--seconds 5] [--acdmd bin/acdmd]
"""
import argparse, asyncio, json, os, re, resource, shutil, socket, ssl, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsload import Ws, agent_tokens, proc_stat  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--agents", type=int, default=1000)
ap.add_argument("--rate", type=int, default=200)
ap.add_argument("--seconds", type=float, default=5)
ap.add_argument("--acdmd", default="bin/acdmd")
args = ap.parse_args()
HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (HARD, HARD))
QUEUES = 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float("nan")


def wrk(url, script, conns, close=False):
    cmd = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % int(args.seconds), "--latency", "-s", script]
    if close:
        cmd += ["-H", "Connection: close"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=120).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p99.group(1) if p99 else "?", int(non.group(1)) if non else 0


async def ws_round(port, ctx, toks, admin_port, admin):
    """Connect args.agents agents (timed), post at args.rate over plain HTTP, offer latency."""
    sent, lat, conns = {}, [], []
    sem = asyncio.Semaphore(100)

    async def open_agent(i):
        async with sem:
            if ctx:
                r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost",
                                                     limit=1 << 20)
                ws = await Ws.handshake(r, w, "/ws?token=" + toks["a%d" % i])
            else:
                ws = await Ws.connect(port, "/ws?token=" + toks["a%d" % i])
            await ws.recv()
            ws.send({"type": "login"})
            ws.send({"type": "ready"})
            conns.append(ws)
            return ws

    t0 = time.perf_counter()
    agents = await asyncio.gather(*[open_agent(i) for i in range(args.agents)])
    connect_s = time.perf_counter() - t0
    await asyncio.sleep(1)

    async def agent_loop(ws):
        try:
            while True:
                raw = await ws.recv(raw=True)
                if not raw.startswith(b'{"type":"offer"'):
                    continue
                m = json.loads(raw)
                st = sent.get(m["bericht"].get("from"))
                if st is not None:
                    lat.append(time.perf_counter() - st)
                ws.send({"type": "accept", "bericht": m["bericht"]["id"]})
                ws.send({"type": "complete", "bericht": m["bericht"]["id"]})
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, ssl.SSLError):
            pass

    readers = [asyncio.create_task(agent_loop(ws)) for ws in agents]
    r, w = await asyncio.open_connection("127.0.0.1", admin_port)
    start = time.perf_counter()
    i = 0
    tag = "%x" % int(time.time() * 1000)
    while time.perf_counter() - start < args.seconds:
        due = start + i / args.rate
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        who = "tls-%s-%d@example.nl" % (tag, i)
        body = ('{"queue":"q%d","kind":"chat","from":"%s","text":"Hallo"}' % (i % QUEUES, who)).encode()
        sent[who] = time.perf_counter()
        w.write(b"POST /api/v1/berichten HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin.encode() +
                b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
                b"\r\n\r\n" + body)
        head = await r.readuntil(b"\r\n\r\n")
        await r.readexactly(int(re.search(rb"(?i)content-length: (\d+)", head).group(1)))
        i += 1
    w.close()
    await asyncio.sleep(1.5)
    for t in readers:
        t.cancel()
    for ws in conns:
        ws.w.close()
    await asyncio.sleep(0.5)
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
    return connect_s, p(0.5), p(0.99), len(lat), i


async def main():
    if not shutil.which("wrk"):
        print("bench tls: wrk not found (apt-get install wrk)")
        return
    tmp = tempfile.mkdtemp(prefix="acdm-bench-tls-")
    cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-sha256", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    plain, tls = free_port(), free_port()
    cfg = json.load(open("conf/acdm.json"))
    cfg["channels"] = []
    cfg.pop("schedules", None)
    cfg["log_level"] = "notice"
    cfg["max_connections_per_address"] = 0
    cfg["queues"] = [{"name": "q%d" % i, "strategy": "longest-idle", "wrapup_s": 0, "offer_timeout_s": 60}
                     for i in range(QUEUES)] + [{"name": "algemeen", "wrapup_s": 0}]
    cfg["agents"] = [{"id": "a%d" % i, "queues": ["q%d" % (i % QUEUES)], "capacity": {"chat": 3}}
                     for i in range(args.agents)]
    cfg["listen"] = ["127.0.0.1:%d" % plain,
                     {"address": "127.0.0.1:%d" % tls, "tls": {"cert_file": cert, "key_file": key}}]
    with open(os.path.join(tmp, "acdm.json"), "w") as f:
        json.dump(cfg, f)
    d = subprocess.Popen([args.acdmd, "-c", os.path.join(tmp, "acdm.json"), "--data-dir", tmp + "/var"],
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (HARD, HARD)))
    seen = 0
    for line in d.stderr:
        if "listening on" in line:
            seen += 1
            if seen == 2:
                break
    asyncio.get_running_loop().run_in_executor(None, lambda: [None for _ in d.stderr])
    admin = open(tmp + "/var/admin.token").read().strip()
    toks = agent_tokens(tmp + "/var/acdm.db", args.agents)
    with open("tests/bench/post.lua") as f:
        lua = f.read().replace("bench-token", admin).replace('"support"', '"algemeen"')
    script = os.path.join(tmp, "post.lua")
    with open(script, "w") as f:
        f.write(lua)
    ctx = ssl.create_default_context(cafile=cert)
    res = {k: [] for k in ("keep", "close", "wsconn", "p50", "p99")}
    for rnd in range(1, args.rounds + 1):
        row = {}
        for name, url in (("plain", "http://127.0.0.1:%d" % plain), ("tls", "https://localhost:%d" % tls)):
            c0, _ = proc_stat(d.pid)
            keep = wrk(url, script, 64)
            c1, _ = proc_stat(d.pid)
            close = wrk(url, script, 16, close=True)
            ws = await ws_round(tls if name == "tls" else plain, ctx if name == "tls" else None, toks, plain, admin)
            row[name] = (keep, close, ws, c1 - c0)
            print("bench tls round %d %-5s: REST keep-alive %.0f req/s (p99 %s, non-2xx %d, %.1f us CPU/req), "
                  "new connection per request %.0f req/s (p99 %s); %d agents' websockets connected in %.2f s, "
                  "offer latency p50 %.2f ms p99 %.2f ms (%d of %d offered)"
                  % (rnd, name, keep[0], keep[1], keep[2], (c1 - c0) * 1e6 / max(1, keep[0] * args.seconds),
                     close[0], close[1], args.agents, ws[0], ws[1], ws[2], ws[3], ws[4]), flush=True)
        p, t = row["plain"], row["tls"]
        res["keep"].append(t[0][0] / p[0][0])
        res["close"].append(t[1][0] / p[1][0])
        res["wsconn"].append(t[2][0] / p[2][0])
        res["p50"].append(t[2][1] / p[2][1])
        res["p99"].append(t[2][2] / p[2][2])
    print("bench tls: median ratios TLS/plain over %d rounds: REST keep-alive throughput %.2f, "
          "new-connection-per-request throughput %.2f, websocket connect time %.2f, offer latency p50 %.2f "
          "p99 %.2f" % (args.rounds, median(res["keep"]), median(res["close"]), median(res["wsconn"]),
                        median(res["p50"]), median(res["p99"])))
    d.terminate()
    d.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)


asyncio.run(main())
