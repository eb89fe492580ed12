#!/bin/sh
# run-fuzz-regress.sh -- runs each fuzz harness build/san/fuzz/fuzz_X over tests/fuzz/corpus/fuzz_X/ (regression, no clang needed).
# Usage: tests/run-fuzz-regress.sh build/san/fuzz/fuzz_config ...
# Prints "fuzz regression: N passed, N failed"; exits non-zero when any harness fails.
passed=0
failed=0
here=$(cd "$(dirname "$0")" && pwd)
for bin in "$@"; do
  name=$(basename "$bin")
  corpus="$here/fuzz/corpus/$name"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $name: $bin is not built" >&2
    failed=$((failed + 1))
    continue
  fi
  if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus" 2>/dev/null)" ]; then
    echo "fuzz: $name: no corpus in $corpus" >&2
    failed=$((failed + 1))
    continue
  fi
  n=$(find "$corpus" -maxdepth 1 -type f ! -name '.*' | wc -l)
  if ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" "$bin" "$corpus" >/dev/null 2>"${TMPDIR:-/tmp}/fuzz-$name.log"; then
    echo "fuzz: $name: $n inputs ok"
    passed=$((passed + 1))
  else
    echo "fuzz: $name: FAILED (log: ${TMPDIR:-/tmp}/fuzz-$name.log)" >&2
    tail -n 30 "${TMPDIR:-/tmp}/fuzz-$name.log" >&2
    failed=$((failed + 1))
  fi
done
echo "fuzz regression: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
