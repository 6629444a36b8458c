#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Smoke test for the delivery demo: the customer's cancel stops both jobs
# early with the customer's reason, and the program exits cleanly.
set -eu

output=$("$1")
printf '%s\n' "$output"

printf '%s\n' "$output" | grep -q 'payment stopped early: The customer cancelled the order'
printf '%s\n' "$output" | grep -q 'kitchen stopped early after'
printf '%s\n' "$output" | tail -n 1 | grep -qx 'Order cancelled: The customer cancelled the order'
