#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# po/POTFILES.in must list exactly the library sources with translatable
# strings (_("…"), N_("…"), C_("…", "…"), NC_("…", "…")), sorted.
#
# Usage: check-potfiles.sh SOURCE_ROOT

set -eu

cd "$1"

found=$(grep -lE '(^|[^[:alnum:]_])(N|C|NC)?_ ?\( *"' ctok/*.c ctok/*.h | LC_ALL=C sort)
listed=$(grep -vE '^[[:space:]]*(#|$)' po/POTFILES.in)
sorted=$(printf '%s\n' "$listed" | LC_ALL=C sort)

status=0
if [ "$listed" != "$sorted" ]; then
  echo "po/POTFILES.in is not sorted (LC_ALL=C sort)"
  status=1
fi
if [ "$found" != "$sorted" ]; then
  echo "po/POTFILES.in does not match the sources with translatable strings:"
  printf '%s\n' "$found" > "${TMPDIR:-/tmp}/ctok-potfiles-found.$$"
  printf '%s\n' "$sorted" | diff -u - "${TMPDIR:-/tmp}/ctok-potfiles-found.$$" \
    | sed -e 's/^/  /' || true
  rm -f "${TMPDIR:-/tmp}/ctok-potfiles-found.$$"
  echo "  (- listed only, + found only)"
  status=1
fi
if [ "$status" -eq 0 ]; then
  echo "po/POTFILES.in lists the $(printf '%s\n' "$found" | wc -l) files with translatable strings"
fi
exit "$status"
