#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Smoke test for read-deadline: the deadline stops the read, and the token
# turns GIO's "cancelled" into "timed out"; a line written in time is read.
set -eu

# The messages checked are the untranslated ones.
export LC_ALL=C

output=$("$1" --timeout=500)
printf '%s\n' "$output"
printf '%s\n' "$output" | grep -q 'as GIO says: Operation was cancelled (G_IO_ERROR_CANCELLED)'
printf '%s\n' "$output" | grep -q 'as the token says: Deadline exceeded (G_IO_ERROR_TIMED_OUT)'
printf '%s\n' "$output" | tail -n 1 | grep -qx 'Timed out'

output=$("$1" --timeout=20000 --write-after=50)
printf '%s\n' "$output"
printf '%s\n' "$output" | grep -q 'read 23 bytes in time: hello through the pipe'
printf '%s\n' "$output" | tail -n 1 | grep -qx 'Read in time'
