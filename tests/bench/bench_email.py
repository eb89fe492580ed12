#!/usr/bin/env python3
"""bench_email.py -- the email channel's intake: N mails already in a real Dovecot inbox when
acdmd starts; the time until every one is a committed bericht in the queue and moved to the
processed folder, and acdmd's RSS meanwhile (sampled every 0.2 s). Baseline in the same run:
the mail recipe's bare libcurl fetch loop (tests/bench/email_fetch.c: UID FETCH + GMime parse
per mail, nothing stored or moved) over the same inbox.

Then, with the same acdmd idling on the emptied inbox (IMAP IDLE), the steady intake: --steady
mails APPENDed over 8 IMAP connections, time from the first APPEND until the last one's bericht
is committed (the channel's `submitted` counter); baseline in the same run: the same APPENDs into
a folder nobody reads. And 20 single mails, APPEND -> committed, against a bare IDLE client on
the same inbox (APPEND -> its EXISTS): the server's own notification delay.

usage: bench_email.py [--mails 10000] [--steady 2000] [--acdmd bin/acdmd]
"""
import argparse, json, os, re, shutil, socket, subprocess, sys, tempfile, threading, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import mailfix  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--mails", type=int, default=10000)
ap.add_argument("--steady", type=int, default=2000)
ap.add_argument("--acdmd", default="bin/acdmd")
args = ap.parse_args()
N = args.mails

if not mailfix.available():
    print("bench email_intake: skipped (dovecot/msmtpd not installed)")
    sys.exit(0)

tmp = tempfile.mkdtemp(prefix="acdm-bench-mail-")
ms = mailfix.MailServer(tmp)
ms.start()
daemon = None
try:
    # the inbox, written straight into the Maildir (Dovecot indexes it at SELECT)
    ms.messages()                                   # creates the Maildir
    md = os.path.join(ms.dir, "mail", "example.nl", "kcc", "Maildir", "new")
    os.makedirs(md, exist_ok=True)
    body = ("Goedemiddag,\n\nIk heb een vraag over mijn aanvraag. " * 20) + "\n\nMet vriendelijke groet,\nJan\n"
    for i in range(N):
        raw = mailfix.mail(subject="Bench %d" % i, message_id="<bench%d@example.com>" % i, body=body)
        p = os.path.join(md, "%d.b%d.bench" % (1700000000 + i, i))
        with open(p, "wb") as f:
            f.write(raw)
        if os.getuid() == 0:
            shutil.chown(p, ms.user, ms.group)
    size = len(raw)
    assert ms.count("INBOX") == N

    # baseline: the bare libcurl fetch loop
    fetch = os.path.join(tmp, "email_fetch")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libcurl", "gmime-3.0"],
                           capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["cc", "-O2", "-o", fetch, os.path.join(HERE, "email_fetch.c")] + flags, check=True)
    t0 = time.monotonic()
    r = subprocess.run([fetch, ms.imap_url, "kcc@example.nl", "secret", str(N)], capture_output=True, text=True)
    t_bare = time.monotonic() - t0
    if r.returncode != 0:
        print("bare fetch failed: %s %s" % (r.stdout, r.stderr))

    # acdmd with the email channel; nobody takes the berichten: all N wait in the queue
    cfg = {"plugin_dir": os.path.join(REPO, "plugins"), "log_level": "notice",
           "queues": [{"name": "algemeen", "strategy": "linear"}],
           "agents": [{"id": "a1", "name": "A", "queues": ["algemeen"]}],
           "channels": [ms.channel(tmp, rescan_s=3600)]}
    with open(os.path.join(tmp, "acdm.json"), "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(tmp, "acdmd.log"), "wb")
    t0 = time.monotonic()
    daemon = subprocess.Popen([args.acdmd, "-c", os.path.join(tmp, "acdm.json"), "--data-dir",
                               os.path.join(tmp, "var"), "--listen", "127.0.0.1:0"],
                              stdout=log, stderr=log, cwd=REPO)
    rss_max, rss_first, moved = 0, None, 0
    deadline = time.monotonic() + 1800
    last_check = 0
    while time.monotonic() < deadline:
        with open("/proc/%d/status" % daemon.pid) as f:
            rss = int([l for l in f if l.startswith("VmRSS")][0].split()[1]) // 1024
        rss_max = max(rss_max, rss)
        if rss_first is None and moved > N // 10:
            rss_first = rss
        if time.monotonic() - last_check > 1.0:
            moved = ms.count("Verwerkt")
            last_check = time.monotonic()
            if moved >= N:
                break
        time.sleep(0.2)
    t_acdm = time.monotonic() - t0
    with open("/proc/%d/stat" % daemon.pid) as f:
        st = f.read().split(")")[-1].split()
    cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    imap_cpu = 0.0
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/comm" % pid) as f:
                if f.read().strip() != "imap":
                    continue
            with open("/proc/%s/stat" % pid) as f:
                st = f.read().split(")")[-1].split()
            imap_cpu += (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    ok = moved >= N
    print("bench email_intake: %d mails (%d bytes each) in the inbox at start: %s in %.1f s "
          "(%.0f mails/s), acdmd RSS max %d MiB (%s MiB at 10%%); bare libcurl fetch+parse loop: "
          "%.1f s (%.0f mails/s); ratio %.2f (goal >= 0.5); CPU acdmd %.1f s, Dovecot imap %.1f s"
          % (N, size, "all queued and moved" if ok else "ONLY %d moved" % moved, t_acdm, N / t_acdm,
             rss_max, rss_first, t_bare, N / t_bare, (N / t_acdm) / (N / t_bare), cpu, imap_cpu))

    # ---- steady state: acdmd idles on the empty inbox, mails come in one by one
    port = int(re.search(rb"listening on http://[0-9.]+:(\d+)/",
                         open(os.path.join(tmp, "acdmd.log"), "rb").read()).group(1))
    with open(os.path.join(tmp, "var", "admin.token")) as f:
        token = f.read().strip()

    def status():
        rq = urllib.request.Request("http://127.0.0.1:%d/channels/mail1/status" % port,
                                    headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(rq, timeout=15) as r:
            return json.loads(r.read())

    deadline = time.monotonic() + 120
    while not (status()["idle"] and status()["backlog"] == 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    M = args.steady
    W = 8                                    # APPEND connections (one APPEND costs Dovecot ~30 ms here)
    mails = [mailfix.mail(subject="Steady %d" % i, message_id="<steady%d@example.com>" % i, body=body)
             for i in range(M)]

    def append_all(folder, items):
        def worker(part):
            im = ms.imap()
            for raw in part:
                im.append(folder, "", None, raw)
            im.logout()
        ts = [threading.Thread(target=worker, args=(items[k::W],)) for k in range(W)]
        t = time.monotonic()
        for th in ts:
            th.start()
        return t, ts

    # baseline: the same APPEND load alone, into a folder nobody reads
    im = ms.imap()
    im.create("Leeg")
    im.logout()
    t0, ts = append_all("Leeg", [raw.replace(b"<steady", b"<leeg") for raw in mails])
    for th in ts:
        th.join()
    t_append = time.monotonic() - t0
    # the same load into the inbox acdmd idles on
    base = status()["submitted"]
    t0, ts = append_all("INBOX", mails)
    for th in ts:
        th.join()
    t_app2 = time.monotonic() - t0
    while status()["submitted"] < base + M and time.monotonic() - t0 < 600:
        time.sleep(0.05)
    t_steady = time.monotonic() - t0
    got = status()["submitted"] - base

    # single mails: APPEND -> committed, against a bare IDLE client on the same inbox (APPEND ->
    # its "* n EXISTS"): the part of the latency that is the server's notification
    sk = socket.create_connection(("127.0.0.1", ms.imap_port), timeout=30)
    rf = sk.makefile("rb")
    rf.readline()
    for cmd in (b"a1 LOGIN kcc@example.nl secret\r\n", b"a2 SELECT INBOX\r\n"):
        sk.sendall(cmd)
        while not rf.readline().startswith(cmd[:2] + b" "):
            pass
    sk.sendall(b"a3 IDLE\r\n")
    while not rf.readline().startswith(b"+"):
        pass
    exists_at = []

    def watch():
        try:
            for line in rf:
                if line.rstrip().endswith(b" EXISTS"):
                    exists_at.append(time.monotonic())
        except OSError:
            pass
    threading.Thread(target=watch, daemon=True).start()
    lat, idle_lat = [], []
    im = ms.imap()
    for i in range(20):
        base = status()["submitted"]
        raw = mailfix.mail(subject="Single %d" % i, message_id="<single%d@example.com>" % i, body=body)
        t1 = time.monotonic()
        im.append("INBOX", "", None, raw)
        while status()["submitted"] <= base and time.monotonic() - t1 < 60:
            time.sleep(0.005)
        lat.append(time.monotonic() - t1)
        seen = [t for t in exists_at if t >= t1]
        if seen:
            idle_lat.append(seen[0] - t1)
        time.sleep(0.2)
    im.logout()
    sk.close()
    lat.sort()
    idle_lat.sort()
    p50 = lambda v: v[len(v) // 2] * 1000 if v else float("nan")
    print("bench email_idle: %d mails APPENDed over %d connections while acdmd idles: %s in %.1f s = "
          "%.0f mails/s from the first APPEND to the last bericht committed (the APPENDs took %.1f s; "
          "lag after the last %.2f s); baseline the same APPENDs into a folder nobody reads: %.1f s = "
          "%.0f mails/s; ratio %.2f (goal >= 0.5); single mail APPEND -> committed p50 %.0f ms, max %.0f ms; "
          "baseline a bare IDLE client on the inbox, APPEND -> its EXISTS: p50 %.0f ms, max %.0f ms"
          % (M, W, "all committed" if got >= M else "ONLY %d committed" % got, t_steady, M / t_steady,
             t_app2, t_steady - t_app2, t_append, M / t_append, (M / t_steady) / (M / t_append),
             p50(lat), lat[-1] * 1000, p50(idle_lat), (idle_lat[-1] * 1000) if idle_lat else float("nan")))
finally:
    if daemon:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
    ms.stop()
    shutil.rmtree(tmp, ignore_errors=True)
