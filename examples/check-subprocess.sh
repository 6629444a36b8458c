#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Smoke test for subprocess: cancelling the wait leaves the child running,
# the token's callback kills it, and no child is left behind.
set -eu

export LC_ALL=C

output=$("$1" --timeout=300)
printf '%s\n' "$output"
printf '%s\n' "$output" | grep -q 'the wait was cancelled: Deadline exceeded'
printf '%s\n' "$output" | grep -q 'is still running: cancelling a wait does not stop the process'
printf '%s\n' "$output" | grep -q 'the token is cancelled (Deadline exceeded): killing pid'
test "$(printf '%s\n' "$output" | grep -c 'was killed by signal 9 (SIGKILL)')" -eq 2
printf '%s\n' "$output" | tail -n 1 | grep -q 'the child was stopped: Deadline exceeded'

# Both children are gone.
# shellcheck disable=SC2016  # the backquotes are literal
for pid in $(printf '%s\n' "$output" | sed -n 's/.*started `sleep 30`, pid \([0-9]*\)$/\1/p'); do
  if kill -0 "$pid" 2>/dev/null; then
    echo "pid $pid is still running" >&2
    exit 1
  fi
done
