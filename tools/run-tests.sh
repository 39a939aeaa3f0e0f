#!/usr/bin/env bash
# make test: every check in order, each one's output kept in build/test-logs, one summary line at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=build/test-logs
rm -rf "$logs"; mkdir -p "$logs"

passed=0 failed=0 skipped=0 steps_failed=()

step() { # name, command...
  local name=$1; shift
  echo "== $name: $*"
  if "$@" 2>&1 | tee "$logs/$name.log"; then return 0; fi
  steps_failed+=("$name"); return 1
}

step build make --no-print-directory lua || true
step typecheck make --no-print-directory typecheck || true
step lint make --no-print-directory lint || true

if step busted luajit /usr/bin/busted -o utfTerminal; then :; fi
line=$(grep -aE '[0-9]+ successes? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$logs/busted.log" | tail -1)
if [ -n "$line" ]; then
  read -r s f e p < <(echo "$line" | sed -E 's#^[^0-9]*([0-9]+) success[a-z]* / ([0-9]+) failure[a-z]* / ([0-9]+) error[a-z]* / ([0-9]+) pending.*#\1 \2 \3 \4#')
  passed=$((passed + s)); failed=$((failed + f + e)); skipped=$((skipped + p))
else
  failed=$((failed + 1))
fi

if step vitest npx --no-install vitest run; then :; fi
clean=$(sed -E 's/\x1b\[[0-9;]*m//g' "$logs/vitest.log")
tests_line=$(echo "$clean" | grep -E '^\s+Tests\s' | tail -1)
if [ -n "$tests_line" ]; then
  for kind in passed failed skipped todo; do
    n=$(echo "$tests_line" | grep -oE "[0-9]+ $kind" | grep -oE '[0-9]+' || true)
    n=${n:-0}
    case $kind in passed) passed=$((passed + n));; failed) failed=$((failed + n));; *) skipped=$((skipped + n));; esac
  done
else
  failed=$((failed + 1))
fi

if [ ${#steps_failed[@]} -gt 0 ]; then
  echo "failed steps: ${steps_failed[*]} (logs in $logs/)"
  [ "$failed" -eq 0 ] && failed=${#steps_failed[@]}
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ ${#steps_failed[@]} -eq 0 ]
