"""wsload.py -- what the load benchmarks share: a minimal asyncio websocket client and a reading
of a process's CPU time and RSS from /proc."""
import asyncio, base64, hashlib, json, os, re, resource, secrets, sqlite3, subprocess, time


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = int(parts[11]) + int(parts[12])
    with open("/proc/%d/status" % pid) as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    return ticks / os.sysconf("SC_CLK_TCK"), rss // 1024


class Ws:
    """A minimal RFC 6455 client on asyncio streams (text frames, client masking)."""

    def __init__(self, r, w):
        self.r, self.w = r, w

    @classmethod
    async def connect(cls, port, path, origin=None):
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        return await cls.handshake(r, w, path, origin)

    @classmethod
    async def handshake(cls, r, w, path, origin=None):
        """The upgrade on an open stream pair (plain or TLS)."""
        key = base64.b64encode(os.urandom(16)).decode()
        w.write(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
                 % (path, key, "Origin: %s\r\n" % origin if origin else "")).encode())
        head = await r.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError("upgrade refused: %r" % head[:80])
        return cls(r, w)

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        self.w.write(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    async def recv(self, raw=False):
        while True:
            h = await self.r.readexactly(2)
            n = h[1] & 0x7F
            if n == 126:
                n = int.from_bytes(await self.r.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.r.readexactly(8), "big")
            data = await self.r.readexactly(n)
            if h[0] & 0x0F == 1:
                return data if raw else json.loads(data)
            if h[0] & 0x0F == 8:
                raise ConnectionError("closed")


def start_acdmd(acdmd, tmp, cfg):
    """Writes cfg to tmp/acdm.json and starts acdmd on a free loopback port with data in tmp/var,
    its file limit raised to the hard limit; returns (process, port). Call from a running event
    loop: the daemon's stderr is drained in the background."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with open(os.path.join(tmp, "acdm.json"), "w") as f:
        json.dump(cfg, f)
    daemon = subprocess.Popen([acdmd, "-c", os.path.join(tmp, "acdm.json"), "--data-dir", tmp + "/var",
                               "--listen", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard)))
    port = None
    for line in daemon.stderr:
        m = re.search(r"listening on http://[^:]+:(\d+)/", line)
        if m:
            port = int(m.group(1))
            break
    asyncio.get_running_loop().run_in_executor(None, lambda: [None for _ in daemon.stderr])
    return daemon, port


def agent_tokens(db_path, n):
    """Tokens for agents a0..a<n-1>, written straight into the store's tokens table (what
    acdmctl token create writes: the SHA-256 hex of the token); returns {agent id: token}."""
    toks = {}
    rows = []
    for i in range(n):
        t = secrets.token_urlsafe(32)
        toks["a%d" % i] = t
        rows.append((hashlib.sha256(t.encode()).hexdigest(), "agent", "a%d" % i, int(time.time() * 1000)))
    db = sqlite3.connect(db_path, timeout=30)
    db.executemany("INSERT INTO tokens(hash, role, name, created_ms) VALUES (?,?,?,?)", rows)
    db.commit()
    db.close()
    return toks
