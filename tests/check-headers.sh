#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Users include <ctok/ctok.h>; every other public header refuses direct
# inclusion, and the umbrella header compiles on its own.
# Usage: check-headers.sh SOURCE_ROOT BUILD_ROOT CC [CFLAGS...]
set -eu

source_root=$1
build_root=$2
shift 2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=0
failed=0

headers="ctok/ctok-token.h ctok/ctok-token-source.h ctok/ctok-version.h ctok/ctok-version-macros.h"
total=$(( $(echo $headers | wc -w) + 1 ))
echo "1..$total"

n=$((n + 1))
printf '#include <ctok/ctok.h>\nint main (void) { return ctok_get_major_version () > 0 ? 0 : 1; }\n' > "$tmp/t.c"
if "$@" -I"$source_root" -I"$build_root" -fsyntax-only "$tmp/t.c" 2>"$tmp/err"; then
  echo "ok $n - <ctok/ctok.h> compiles on its own"
else
  echo "not ok $n - <ctok/ctok.h> does not compile on its own"
  sed 's/^/# /' "$tmp/err"
  failed=1
fi

for header in $headers; do
  n=$((n + 1))
  printf '#include <%s>\nint main (void) { return 0; }\n' "$header" > "$tmp/t.c"
  if "$@" -I"$source_root" -I"$build_root" -fsyntax-only "$tmp/t.c" 2>"$tmp/err"; then
    echo "not ok $n - <$header> can be included directly"
    failed=1
  elif grep -q 'Only <ctok/ctok.h> can be included directly' "$tmp/err"; then
    echo "ok $n - <$header> refuses direct inclusion"
  else
    echo "not ok $n - <$header> failed for another reason"
    sed 's/^/# /' "$tmp/err"
    failed=1
  fi
done

exit $failed
