#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds ctok and runs the food-delivery demo (examples/delivery.c).
# Arguments go to the demo: build-aux/demo.sh --no-cancel
# BUILD_DIR (default _build, relative to the project root) picks the build
# directory; it is configured once, then only recompiled.

set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

bash build-aux/install-deps.sh

BUILD_DIR=${BUILD_DIR:-_build}

if [ ! -f "$BUILD_DIR/meson-private/coredata.dat" ]; then
  meson setup "$BUILD_DIR"
fi

# A build directory configured with -Dexamples=false has no demo.
if [ "$(meson introspect --buildoptions "$BUILD_DIR" |
        python3 -c 'import json, sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "examples"][0])')" != True ]; then
  meson configure "$BUILD_DIR" -Dexamples=true
fi

meson compile -C "$BUILD_DIR"

exec "$BUILD_DIR"/examples/delivery "$@"
