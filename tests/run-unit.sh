#!/bin/sh
# run-unit.sh -- runs every check suite given (built with ASan+UBSan) and sums them up.
# Prints each suite's check summary and a closing "unit: N passed, N failed" line.
set -u
passed=0
failed=0
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export CK_DEFAULT_TIMEOUT="${CK_DEFAULT_TIMEOUT:-30}"
for bin in "$@"; do
  name=$(basename "$bin")
  log=$(mktemp "${TMPDIR:-/tmp}/acdm-unit-$name.XXXXXX")   # own file: runs may overlap
  if "$bin" >"$log" 2>&1; then status=ok; else status=FAILED; fi
  line=$(grep -a -E '^[0-9]+%: Checks: ' "$log" | tail -n 1)   # -a: a killed child (test_store's kill -9) can leave NUL bytes in the log
  [ -n "$line" ] || status=FAILED          # a suite that ran no check proves nothing
  echo "unit: $name: ${line:-no check summary} [$status]"
  p=$(echo "$line" | sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p')
  if [ -n "$p" ]; then
    set -- $p "$@"
    t=$1; f=$2; e=$3; shift 3
    passed=$((passed + t - f - e)); failed=$((failed + f + e))
  fi
  if [ "$status" = FAILED ]; then
    [ -n "$p" ] || failed=$((failed + 1))
    grep -E ':[EF]:|ERROR: AddressSanitizer|runtime error|LeakSanitizer' "$log" | head -n 20 >&2
  fi
  rm -f "$log"
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
