#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The library exports ctok_* symbols and nothing else.
# Usage: check-exports.sh NM LIBRARY
set -eu

nm_tool=$1
library=$2

symbols=$("$nm_tool" -D --defined-only "$library" | awk '{ print $3 }')
if [ -z "$symbols" ]; then
  echo "Bail out! no symbols found in $library"
  exit 1
fi

bad=$(printf '%s\n' "$symbols" | grep -v -E '^(ctok_|_init$|_fini$|_edata$|_end$|__bss_start$)' || true)
count=$(printf '%s\n' "$symbols" | grep -c '^ctok_')

echo "1..1"
if [ -n "$bad" ]; then
  echo "not ok 1 - symbols outside the ctok_ namespace are exported:"
  printf '# %s\n' $bad
  exit 1
fi
echo "ok 1 - $count symbols exported, all ctok_*"
