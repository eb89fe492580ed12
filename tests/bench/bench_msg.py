#!/usr/bin/env python3
"""bench_msg.py -- the messaging channels' ingest against acdm's plain REST ingest, in the same
run: signed WhatsApp webhooks (POST /channels/wa1/webhook, X-Hub-Signature-256 checked, the
bericht committed before the 200) and Kannel MO requests (POST /channels/sms1/mo, post-url form,
token checked, 200 after the commit) per second vs POST /api/v1/berichten. Every request is a
new citizen's first message (unique wamid / Kannel id and sender), so nothing is a duplicate.
wrk (1 thread, C connections, S seconds) replays pre-built requests (tests/bench/replay.lua):
the HMACs are computed here beforehand, not in the load generator. A fresh acdmd and data folder
per round; rounds run REST, WhatsApp, Kannel one after the other, and each round gives a ratio
(the median over the rounds counts).

usage: bench_msg.py [--seconds 5] [--connections 256] [--rounds 2] [--acdmd bin/acdmd]
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=int, default=5)
ap.add_argument("--connections", type=int, default=256)
ap.add_argument("--rounds", type=int, default=2)
ap.add_argument("--requests", type=int, default=200000, help="distinct requests prepared per scenario")
ap.add_argument("--acdmd", default="bin/acdmd")
args = ap.parse_args()

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SECRET, TOKEN = "bench-app-secret", "bench-mo-token-0123456789"


def config(tmp):
    for n, v in (("secret", SECRET), ("verify", "v"), ("access", "a"), ("token", TOKEN), ("pw", "p")):
        with open(os.path.join(tmp, n), "w") as f:
            f.write(v + "\n")
    return {"plugin_dir": os.path.join(REPO, "plugins"), "log_level": "notice",
            "queues": [{"name": "algemeen", "title": "Algemeen", "strategy": "linear"}],
            "agents": [{"id": "a1", "name": "A", "queues": ["algemeen"]}],
            "channels": [
                {"name": "wa1", "plugin": "whatsapp", "queue": "algemeen", "config": {
                    "phone_number_id": "1234567890", "graph_url": "http://127.0.0.1:9",
                    "access_token_file": tmp + "/access", "app_secret_file": tmp + "/secret",
                    "verify_token_file": tmp + "/verify"}},
                {"name": "sms1", "plugin": "sms", "queue": "algemeen", "config": {
                    "provider": "kannel", "from": "4930555", "public_url": "http://127.0.0.1:9/channels/sms1",
                    "sendsms_url": "http://127.0.0.1:9/cgi-bin/sendsms", "username": "acdm",
                    "password_file": tmp + "/pw", "token_file": tmp + "/token"}}]}


def build(kind, path, n, admin=None):
    with open(path, "w") as f:
        for i in range(n):
            num = "316%08d" % i
            if kind == "rest":
                body = json.dumps({"kind": "sms", "queue": "algemeen", "from": "+" + num,
                                   "text": "Hallo, ik heb een vraag over mijn afvalpas %d." % i})
                f.write("/api/v1/berichten\tAuthorization: Bearer %s\tapplication/json\t%s\n" % (admin, body))
            elif kind == "whatsapp":
                body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
                    "field": "messages", "value": {"messaging_product": "whatsapp",
                                                   "metadata": {"display_phone_number": "31850000000", "phone_number_id": "1234567890"},
                                                   "contacts": [{"profile": {"name": "Inwoner %d" % i}, "wa_id": num}],
                                                   "messages": [{"from": num, "id": "wamid.bench%09d" % i, "timestamp": str(int(time.time())),
                                                                 "type": "text", "text": {"body": "Hallo, ik heb een vraag over mijn afvalpas %d." % i}}]}}]}]},
                                  separators=(",", ":"))
                sig = "sha256=" + hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
                f.write("/channels/wa1/webhook\tX-Hub-Signature-256: %s\tapplication/json\t%s\n" % (sig, body))
            else:
                q = "token=%s&from=%%2B%s&to=4930555&id=5e1f0d2c-0000-4000-8000-%012d&time=2026-12-01+10:00:00&smsc=fake1&coding=0&charset=UTF-8" % (TOKEN, num, i)
                f.write("/channels/sms1/mo?%s\tX-Kannel-SMSC: fake1\ttext/plain; charset=UTF-8\tHallo, ik heb een vraag over mijn afvalpas %d.\n" % (q, i))


def start(tmp):
    cfg = config(tmp)
    with open(tmp + "/acdm.json", "w") as f:
        json.dump(cfg, f)
    log = open(tmp + "/acdmd.log", "w+")
    p = subprocess.Popen([args.acdmd, "-c", tmp + "/acdm.json", "--data-dir", tmp + "/var", "--listen", "127.0.0.1:0"],
                         stderr=log, stdout=log)
    port = None
    for _ in range(600):
        log.seek(0)
        m = re.search(r"listening on http://[^:]+:(\d+)/", log.read())
        if m:
            port = int(m.group(1))
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/api/v1/health" % port, timeout=1)
                break
            except OSError:
                pass
        time.sleep(0.05)
    if port is None:
        log.seek(0)
        sys.exit("acdmd did not start:\n" + log.read()[-3000:])
    with open(tmp + "/var/admin.token") as f:
        admin = f.read().strip()
    return p, port, admin


def run(kind):
    tmp = tempfile.mkdtemp(prefix="acdm-bench-msg-")
    try:
        p, port, admin = start(tmp)
        reqs = tmp + "/reqs.txt"
        build(kind, reqs, args.requests, admin)
        out = subprocess.run(["wrk", "-t1", "-c%d" % args.connections, "-d%ds" % args.seconds, "--latency",
                              "-s", os.path.join(HERE, "replay.lua"), "http://127.0.0.1:%d" % port, "--", reqs],
                             capture_output=True, text=True).stdout
        p.terminate()
        p.wait(30)
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        n = int(re.search(r"(\d+) requests in", out).group(1))
        p99 = re.search(r"\s99%\s+(\S+)", out).group(1)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        db = sqlite3.connect(tmp + "/var/acdm.db")
        stored = db.execute("select count(*) from berichten").fetchone()[0]
        db.close()
        if n > args.requests:
            print("# warning: %s replayed %d requests, more than the %d prepared (duplicates)" % (kind, n, args.requests))
        return rps, p99, int(non2xx.group(1)) if non2xx else 0, stored, n
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if not shutil.which("wrk"):
    print("bench msg: skipped (wrk not installed)")
    sys.exit(0)
res = {"rest": [], "whatsapp": [], "kannel": []}
for r in range(args.rounds):
    for kind in ("rest", "whatsapp", "kannel"):
        rps, p99, bad, stored, n = run(kind)
        res[kind].append(rps)
        print("bench msg round %d %-8s %8.0f req/s  p99 %s  non-2xx %d  stored %d of %d" % (r + 1, kind, rps, p99, bad, stored, n))
        sys.stdout.flush()
# the ratio per round (a round's three runs follow each other: the machine's drift hits them
# alike), then the median over the rounds
for kind in ("whatsapp", "kannel"):
    ratios = [k / r for k, r in zip(res[kind], res["rest"])]
    print("bench msg %s: median ratio %.2f of REST ingest (goal >= 0.50; rounds: %s; %.0f-%.0f req/s vs REST %.0f-%.0f)"
          % (kind, statistics.median(ratios), ", ".join("%.2f" % x for x in ratios), min(res[kind]), max(res[kind]),
             min(res["rest"]), max(res["rest"])))
