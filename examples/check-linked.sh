#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Smoke test for linked: each request's work stops for the reason of the one
# parent that was cancelled, or completes when none is.
set -eu

export LC_ALL=C

output=$("$1")
printf '%s\n' "$output"

check () {
  printf '%s\n' "$output" | grep -q "$1" || {
    echo "missing: $1" >&2
    exit 1
  }
}

check 'work: completed'
check 'work: stopped: Operation was cancelled (G_IO_ERROR_CANCELLED: the user cancelled)'
check 'work: stopped: Deadline exceeded (G_IO_ERROR_TIMED_OUT: the deadline passed)'
check 'work: stopped: The application is shutting down (APP_ERROR_SHUTTING_DOWN: the application is shutting down)'
check 'sources: user cancelled, deadline not cancelled, shutdown not cancelled, work.s cancelled'
check 'sources: user not cancelled, deadline cancelled, shutdown not cancelled, work.s cancelled'
check 'sources: user not cancelled, deadline not cancelled, shutdown cancelled, work.s cancelled'
