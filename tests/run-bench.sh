#!/bin/bash
# run-bench.sh -- `make bench`: every benchmark with its same-run baseline; results to build/bench/results.txt.
# Usage: tests/run-bench.sh BENCH_BIN...   (the C benchmarks built from tests/bench/bench_*.c)
set -u
cd "$(dirname "$0")/.."
out=build/bench/results.txt
mkdir -p build/bench
exec > >(tee "$out") 2>&1 || true
echo "# acdm benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

for b in "$@"; do
  case "$(basename "$b")" in
    bench_http_bare|bench_http_route) continue ;;   # servers, driven by wrk below
  esac
  echo "## $(basename "$b")"
  "$b"
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_health() { # port
  i=0
  while [ $i -lt 600 ]; do
    curl -sf "http://127.0.0.1:$1/api/v1/health" >/dev/null 2>&1 && return 0
    sleep 0.01; i=$((i + 1))
  done
  return 1
}

echo "## restart recovery (acdmd, end to end)"
d=$(mktemp -d /tmp/acdm-bench-XXXXXX)
port=$(free_port)
bin/acdmd -c conf/acdm.json --listen 127.0.0.1:$port --data-dir "$d" >"$d/log1" 2>&1 &
pid=$!
wait_health $port || { echo "acdmd did not start"; cat "$d/log1"; exit 1; }
kill -TERM $pid; wait $pid
n=${ACDM_BENCH_RECOVERY:-1000000}
sqlite3 "$d/acdm.db" "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i < $n - 1)
  INSERT INTO berichten(id,channel,kind,direction,from_addr,queue,priority,state,created_ms,queued_ms,updated_ms)
  SELECT printf('0190d000-0000-7000-8000-%012d', i),'api','chat','in','+3161234'||i,'algemeen',0,'queued',
         1700000000000+i,1700000000000+i,1700000000000+i FROM c;"
t0=$(date +%s.%N)
bin/acdmd -c conf/acdm.json --listen 127.0.0.1:$port --data-dir "$d" >"$d/log2" 2>&1 &
pid=$!
wait_health $port || { echo "acdmd did not come back"; cat "$d/log2"; exit 1; }
t1=$(date +%s.%N)
rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
kill -TERM $pid; wait $pid
echo "bench recovery_restart: $n waiting berichten back in their queues, start to serving in $(echo "$t1 - $t0" | bc -l | xargs printf '%.2f') s (RSS $((rss / 1024)) MiB; acdmd log: $(grep -o 'restored [0-9]* waiting berichten in [0-9]* ms' "$d/log2"))"
rm -rf "$d"

if command -v wrk >/dev/null 2>&1 && [ -x build/rel/bench/bench_http_bare ]; then
  echo "## REST ingest, 256 connections: acdmd POST /api/v1/berichten (durable: 201 after the group commit) vs a bare libwebsockets server in the same run"
  echo "# ${ACDM_BENCH_REST_ROUNDS:-3} rounds, bare and acdmd alternating (the machine's noise hits both); the median ratio counts"
  cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/task/$1/stat"; }   # utime + stime of the main thread
  ratios=""
  for round in $(seq "${ACDM_BENCH_REST_ROUNDS:-3}"); do
    bport=$(free_port)
    build/rel/bench/bench_http_bare $bport >/dev/null 2>&1 &
    bpid=$!
    sleep 0.5
    t0=$(cpu_ticks $bpid)
    bres=$(wrk -t1 -c256 -d5s -s tests/bench/post.lua "http://127.0.0.1:$bport")
    t1=$(cpu_ticks $bpid)
    kill $bpid; wait $bpid 2>/dev/null
    bare=$(echo "$bres" | awk '/Requests\/sec/{print $2}')
    bn=$(echo "$bres" | awk '/requests in/{print $1}')
    d=$(mktemp -d /tmp/acdm-bench-XXXXXX)
    port=$(free_port)
    bin/acdmd -c conf/acdm.json --listen 127.0.0.1:$port --data-dir "$d" >"$d/log" 2>&1 &
    pid=$!
    wait_health $port
    tok=$(cat "$d/admin.token")
    sed "s/bench-token/$tok/; s/\"support\"/\"algemeen\"/" tests/bench/post.lua > "$d/post.lua"
    a0=$(cpu_ticks $pid)   # the process's main thread: the loop
    res=$(wrk -t1 -c256 -d5s --latency -s "$d/post.lua" "http://127.0.0.1:$port")
    a1=$(cpu_ticks $pid)
    acdm=$(echo "$res" | awk '/Requests\/sec/{print $2}')
    an=$(echo "$res" | awk '/requests in/{print $1}')
    p99=$(echo "$res" | awk '$1=="99%"{print $2}')
    non2xx=$(echo "$res" | awk '/Non-2xx/{print $NF}')
    kill -TERM $pid; wait $pid
    stored=$(sqlite3 "$d/acdm.db" "select count(*) from berichten")
    ratio=$(echo "$acdm / $bare" | bc -l | xargs printf '%.2f')
    ratios="$ratios $ratio"
    echo "bench rest_ingest round $round: acdmd $acdm req/s (p99 $p99, non-2xx ${non2xx:-0}, $stored berichten stored; loop thread $(echo "($a1 - $a0) * 10000 / $an" | bc -l | xargs printf '%.1f') us CPU per request) vs bare lws $bare req/s ($(echo "($t1 - $t0) * 10000 / $bn" | bc -l | xargs printf '%.1f') us CPU per request), ratio $ratio"
    rm -rf "$d"
  done
  echo "bench rest_ingest: median ratio $(echo $ratios | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}') (rounds:$ratios)"
fi
echo "## agents' websockets: connected agents, created -> offered latency"
python3 tests/bench/bench_ws.py --agents "${ACDM_BENCH_AGENTS:-10000}" --working 1000 --rate 1000 --seconds 10 --acdmd bin/acdmd
echo "## TLS vs plain HTTP in one acdmd (issue 13): REST ingest and agents' websockets, ratios TLS/plain"
python3 tests/bench/bench_tls.py --rounds "${ACDM_BENCH_TLS_ROUNDS:-3}" --agents 1000 --rate 200 --seconds 5 --acdmd bin/acdmd
echo "## live pushes: supervisors' stats every second, agents' queue_stats/colleagues"
python3 tests/bench/bench_live.py "${ACDM_BENCH_LIVE_AGENTS:-2000}"
echo "## email channel intake (Dovecot inbox -> queued and moved) vs the bare libcurl fetch loop"
python3 tests/bench/bench_email.py --mails "${ACDM_BENCH_MAILS:-10000}" --acdmd bin/acdmd
echo "## web chat: 5,000 visitor websockets, visitor -> agent relay at 500 messages/s"
python3 tests/bench/bench_webchat.py --visitors "${ACDM_BENCH_VISITORS:-5000}" --rate 500 --seconds 20 --acdmd bin/acdmd
echo "## web chat under an open-then-close flood: real visitors still get in (issue 9 item 9)"
python3 tests/bench/bench_webchat_flood.py --clients 20 --seconds 10 --max-sessions 1000 --acdmd bin/acdmd
echo "## messaging channels: signed WhatsApp webhooks and Kannel MO requests vs REST ingest, same run"
python3 tests/bench/bench_msg.py --rounds "${ACDM_BENCH_MSG_ROUNDS:-3}" --seconds 5 --acdmd bin/acdmd

echo "## online backup of a ~1 GB store while REST ingest goes on (R80): ingest during the backup vs before/after it, same run"
python3 tests/bench/bench_backup.py --acdmd bin/acdmd --mb "${ACDM_BENCH_BACKUP_MB:-1024}"

if command -v sipp >/dev/null 2>&1 && [ -f plugins/sip.so ]; then
  echo "## SIP voice: calls into a queue with announcements, bridged to agents' phones (SIPp), vs the recipe's minimal libre UAS"
  python3 tests/bench/bench_sip.py
fi
echo "# results in $out"
