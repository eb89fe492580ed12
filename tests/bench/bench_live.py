#!/usr/bin/env python3
"""bench_live.py -- the cost of the live pushes in acdmd: N agents connected (half ready), 10
supervisors, 2000 waiting e-mails in 20 queues; acdmd's CPU (one core = 100 %) and the bytes
it pushes per second (supervisors' stats every 1 s, agents' queue_stats/colleagues) over 20 s.
Python stdlib; run by tests/run-bench.sh.   usage: bench_live.py [agents]   (default 2000)"""
import os, sys, time, json, socket, select, tempfile, sqlite3, hashlib, base64, secrets, resource, shutil
HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("ACDM_BIN", os.path.join(HERE, "..", "..", "bin", "acdmd"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import acdmtest as t
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
NS = 10
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
tmp = tempfile.mkdtemp()
pd = os.path.join(tmp, "p"); os.makedirs(pd)
cfg = t.base_config(pd)

cfg["queues"] = [{"name": "q%d" % i, "title": "Queue %d" % i} for i in range(20)]
cfg["agents"] = [{"id": "a%d" % i, "name": "Agent %d" % i, "queues": ["q%d" % (i % 20), "q%d" % ((i + 7) % 20)]} for i in range(N)]
d = t.Daemon(tmp, cfg).start()
# tokens straight into the store (sha256 hex of the token, as acdm_store_token_check looks them up)
db = sqlite3.connect(os.path.join(d.data_dir, "acdm.db"))
def tok(role, name):
    tk = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    db.execute("INSERT INTO tokens(hash, role, name, created_ms) VALUES (?,?,?,?)",
               (hashlib.sha256(tk.encode()).hexdigest(), role, name, int(time.time() * 1000)))
    return tk
toks = [tok("agent", "a%d" % i) for i in range(N)]
stoks = [tok("supervisor", "s%d" % i) for i in range(NS)]
db.commit(); db.close()
wss = []
for i, tk in enumerate(toks):
    w = d.ws(tk); w.expect("hello", 10); w.request({"type": "login"}); 
    if i % 2: w.request({"type": "ready"})
    wss.append(w)
sups = [d.ws(tk) for tk in stoks]
for s in sups: s.expect("snapshot", 10)
for i in range(2000):
    d.post_bericht({"queue": "q%d" % (i % 20), "kind": "email", "from": "x%d@example.nl" % i, "text": "vraag"})
pid = d.proc.pid
def cpu():
    with open("/proc/%d/stat" % pid) as f:
        p = f.read().split(")")[1].split()
    return (int(p[11]) + int(p[12])) / os.sysconf("SC_CLK_TCK")
socks = {w.sock: 0 for w in wss + sups}
for s in socks: s.setblocking(False)
c0 = cpu(); t0 = time.time(); nbytes = 0
ep = select.epoll()
byfd = {}
for s in socks:
    ep.register(s.fileno(), select.EPOLLIN); byfd[s.fileno()] = s
while time.time() - t0 < 20:
    ev = ep.poll(0.5)
    for fd, _ in ev:
        s = byfd[fd]
        try:
            b = s.recv(1 << 20)
            nbytes += len(b)
        except BlockingIOError:
            pass
c1 = cpu(); dt = time.time() - t0
print("bench live_pushes: %d agent sockets, %d supervisors, 2000 waiting in 20 queues: acdmd CPU %.1f %% of one "
      "core over %.0f s, %.2f MB/s pushed" % (len(wss), NS, (c1 - c0) / dt * 100, dt, nbytes / dt / 1e6))
for s in list(socks): s.close()
d.stop(check=False)
shutil.rmtree(tmp, ignore_errors=True)
