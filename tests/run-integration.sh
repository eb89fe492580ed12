#!/bin/sh
# run-integration.sh -- runs the integration tests (tests/integration/test_*.py, Python 3 standard
# library only) against the real acdmd: build/san/acdmd (ASan+UBSan) unless ACDM_BIN is set.
# Prints a closing "integration: N passed, N failed" line; exits non-zero on any failure.
#   tests/run-integration.sh                      all tests
#   tests/run-integration.sh test_reload          one module (or module.Class.test_name)
#   ACDM_KEEP_TMP=1 tests/run-integration.sh      keep every test's temp folder (logs, data)
set -u
cd "$(dirname "$0")/.." || exit 1
limit="${ACDM_IT_TIMEOUT:-1800}"   # a bound, not a target: ~10 min on a quiet 2-core machine
bin="${ACDM_BIN:-build/san/acdmd}"
for f in "$bin" plugins/webhook.so build/testplugins/bad_abi_major.so; do
  if [ ! -x "$f" ] && [ ! -f "$f" ]; then
    echo "integration: missing $f (make build/san/acdmd build/san/acdmctl plugins/webhook.so build/testplugins/bad_abi_major.so)" >&2
    echo "integration: 0 passed, 1 failed"
    exit 1
  fi
done
if ! command -v python3 >/dev/null 2>&1; then
  echo "integration: python3 not found" >&2
  echo "integration: 0 passed, 1 failed"
  exit 1
fi
export PYTHONDONTWRITEBYTECODE=1
export PYTHONUNBUFFERED=1
timeout --kill-after=10 "$limit" python3 tests/integration/run.py "$@"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "integration: the suite did not finish within ${limit} s" >&2
  echo "integration: 0 passed, 1 failed"
  exit 1
fi
exit "$rc"
