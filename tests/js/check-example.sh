#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Smoke test of examples/js/deadline.js: the deadline, the data, Ctrl+C.
# Prints TAP.
#
# Usage: check-example.sh GJS EXAMPLE
set -u

gjs=$1
example=$2
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

n=0
failed=0

check () {
  # check DESCRIPTION EXPECTED_STATUS STATUS PATTERN...
  description=$1 expected=$2 status=$3
  shift 3
  n=$((n + 1))
  ok=yes
  [ "$status" -eq "$expected" ] || ok=no
  for pattern in "$@"; do
    grep -q -F -- "$pattern" "$out" || ok=no
  done
  if grep -E -q 'CRITICAL|WARNING|JS ERROR' "$err"; then
    ok=no
  fi
  if [ "$ok" = yes ]; then
    echo "ok $n - $description"
  else
    failed=$((failed + 1))
    echo "not ok $n - $description (exit status $status, expected $expected)"
    sed 's/^/# /' "$out" "$err"
  fi
}

"$gjs" -m "$example" --timeout=200 >"$out" 2>"$err"
check 'the deadline stops the read' 1 $? \
  'token cancelled: Deadline exceeded' \
  'user cancelled: false, deadline passed: true' \
  'gave up: Deadline exceeded'

"$gjs" -m "$example" --timeout=10000 --write-after=50 >"$out" 2>"$err"
check 'data arrives in time' 0 $? 'read "hello\n"' \
  'user cancelled: false, deadline passed: false'

# Emptied first: the background job opens (and truncates) it only later,
# and a stale "reading" would let SIGINT come before the handler.
: >"$out"
"$gjs" -m "$example" --timeout=20000 >"$out" 2>"$err" &
pid=$!
# Ctrl+C once it is reading (and so listening for SIGINT).
i=0
while ! grep -q '^reading' "$out" && [ $i -lt 200 ]; do
  sleep 0.05
  i=$((i + 1))
done
sleep 0.1
kill -INT "$pid"
wait "$pid"
check 'Ctrl+C stops the read' 130 $? \
  'token cancelled: Cancelled by signal SIGINT' \
  'user cancelled: true, deadline passed: false' \
  'stopped: Cancelled by signal SIGINT'

echo "1..$n"
[ "$failed" -eq 0 ]
