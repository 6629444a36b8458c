#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Runs a GJS test script and fails if it fails or prints any CRITICAL,
# WARNING or JS ERROR: a JS callback on the wrong thread shows up as one of
# those when it does not crash GJS outright. The script's TAP output goes
# through; its stderr is echoed as TAP comments.
#
# Usage: run-gjs.sh GJS SCRIPT [ARGS...]
set -u

gjs=$1
shift

stderr_file=$(mktemp)
trap 'rm -f "$stderr_file"' EXIT

"$gjs" -m "$@" 2>"$stderr_file"
status=$?

sed 's/^/# /' "$stderr_file"
if grep -E -q 'CRITICAL|WARNING|JS ERROR|Unhandled promise rejection' "$stderr_file"; then
  echo "Bail out! GJS printed errors or warnings (exit status $status)"
  exit 1
fi
exit "$status"
