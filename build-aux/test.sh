#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds ctok with warnings as errors and runs the whole test suite.
# Arguments go to `meson test`: build-aux/test.sh --suite ctok -v
# BUILD_DIR (default _build, relative to the project root) picks the build
# directory; it is configured once (or switched to -Dwerror=true and
# -Dtests=true if it was configured otherwise), then only recompiled.

set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

bash build-aux/install-deps.sh

BUILD_DIR=${BUILD_DIR:-_build}

if [ ! -f "$BUILD_DIR/meson-private/coredata.dat" ]; then
  meson setup "$BUILD_DIR" -Dwerror=true
else
  # Prints the options that must change, e.g. "-Dwerror=true".
  wrong=$(meson introspect --buildoptions "$BUILD_DIR" | python3 -c '
import json, sys
wanted = {"werror": True, "tests": True}
for option in json.load(sys.stdin):
    if option["name"] in wanted and option["value"] != wanted[option["name"]]:
        print("-D%s=%s" % (option["name"], str(wanted[option["name"]]).lower()))
')
  if [ -n "$wrong" ]; then
    # shellcheck disable=SC2086  # one option per word
    meson configure "$BUILD_DIR" $wrong
  fi
fi

meson compile -C "$BUILD_DIR"

exec meson test -C "$BUILD_DIR" --print-errorlogs "$@"
