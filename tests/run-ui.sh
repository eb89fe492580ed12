#!/bin/sh
# run-ui.sh -- the browser tests of the web UI (tests/ui/*.test.mjs): Debian chromium driven by
# playwright-core, accessibility checked with axe-core, against a real acdmd (build/san/acdmd,
# or $ACDM_BIN) that the tests start themselves on a free port.
# Installs missing Debian packages (scripts/deps.sh test) and the npm packages (npm ci, pinned in
# tests/ui/package-lock.json) when tests/ui/node_modules is missing. Screenshots go to
# tests/artifacts/. Prints a closing "ui: N passed, N failed" line; exits non-zero on failure.
#   tests/run-ui.sh                       all tests
#   tests/run-ui.sh --test-name-pattern=wallboard
#   ACDM_KEEP_TMP=1 tests/run-ui.sh       keep the daemon's temp folder (config, log, data)
set -u
cd "$(dirname "$0")/.." || exit 1
limit="${ACDM_UI_TIMEOUT:-1200}"   # a bound, not a target: ~5 min on an idle 2-core machine
fail() { echo "ui: $*" >&2; echo "ui: 0 passed, 1 failed"; exit 1; }

scripts/deps.sh test || fail "missing Debian packages (scripts/deps.sh test)"
bin="${ACDM_BIN:-build/san/acdmd}"
[ -x "$bin" ] || fail "missing $bin (make build/san/acdmd build/san/acdmctl)"
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$chromium" ] || fail "missing $chromium (apt-get install -y chromium fonts-dejavu-core fonts-liberation)"
command -v node >/dev/null 2>&1 || fail "node not found"
command -v npm >/dev/null 2>&1 || fail "npm not found"
if [ ! -d tests/ui/node_modules/playwright-core ] || [ ! -d tests/ui/node_modules/axe-core ]; then
  (cd tests/ui && npm ci --no-audit --no-fund --loglevel=error) >&2 || fail "npm ci in tests/ui failed"
fi
mkdir -p tests/artifacts
out=$(mktemp)
trap 'rm -f "$out"' EXIT
t0=$(date +%s)
# TAP output (stdout is a pipe); the summary lines are counted below.
# The browser sits where the KCC is: in the shipped config's timezone (Europe/Amsterdam), as a
# supervisor's browser does. On a UTC host between 23:00 and 24:00 UTC a UTC browser's "today"
# is already the daemon's yesterday, and the reports test asked for the wrong day.
(cd tests/ui && TZ=Europe/Amsterdam CHROMIUM_PATH="$chromium" timeout --kill-after=10 "$limit" \
   node --test --test-reporter=tap --test-concurrency=2 "$@" ./*.test.mjs) >"$out" 2>&1
rc=$?
grep -v '^ *at \|^ *\.\.\.$\|^ *---$' "$out" | grep -E '^(not )?ok |^# |^ +# |SKIP|error:|expected|actual|AssertionError|Error' | head -200
pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out" | tail -1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out" | tail -1)
skipped=$(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$out" | tail -1)
cancelled=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$out" | tail -1)
pass=${pass:-0}; failed=${failed:-0}; skipped=${skipped:-0}; cancelled=${cancelled:-0}
failed=$((failed + cancelled))
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "ui: the browser tests did not finish within ${limit} s" >&2
  tail -30 "$out" >&2
  failed=$((failed + 1))
elif [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  tail -40 "$out" >&2
  failed=1
fi
[ "$failed" -ne 0 ] && grep '^not ok' "$out" | sed 's/^/ui: FAILED /'
[ "$skipped" -ne 0 ] && echo "ui: $skipped skipped (server features not there yet; see the test names above)"
echo "ui: run time $(( $(date +%s) - t0 )) s, screenshots in tests/artifacts/"
echo "ui: $pass passed, $failed failed"
[ "$failed" -eq 0 ]
