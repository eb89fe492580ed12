#!/usr/bin/env python3
"""bench_email.py -- the email channel's intake: N mails already in a real Dovecot inbox when
acdmd starts; the time until every one is a committed bericht in the queue and moved to the
processed folder, and acdmd's RSS meanwhile (sampled every 0.2 s). Baseline in the same run:
the mail recipe's bare libcurl fetch loop (tests/bench/email_fetch.c: UID FETCH + GMime parse
per mail, nothing stored or moved) over the same inbox.

usage: bench_email.py [--mails 10000] [--acdmd bin/acdmd]
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import mailfix  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--mails", type=int, default=10000)
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
    import json
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
finally:
    if daemon:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
    ms.stop()
    shutil.rmtree(tmp, ignore_errors=True)
