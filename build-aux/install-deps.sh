#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs the Debian 12 packages ctok needs to build, test, document and
# demonstrate itself. Idempotent: when everything is present it only says so.

set -euo pipefail

packages=(
  # Build
  meson
  ninja-build
  pkg-config
  gcc
  binutils
  libglib2.0-dev
  gettext
  # Introspection and language bindings
  libgirepository1.0-dev
  gobject-introspection
  python3-gi
  python3-pytest
  gjs
  valac
  # Documentation
  gi-docgen
  graphviz
  # Checkers
  valgrind
  clang
  libclang-rt-14-dev
  # GUI and network examples, and their headless tests
  libgtk-4-dev
  libsoup-3.0-dev
  xvfb
  xauth
  xdotool
  imagemagick
  dbus
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null || true)
  if ! grep -qx 'install ok installed' <<<"$status"; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "all dependencies present"
  exit 0
fi

echo "installing missing packages: ${missing[*]}"

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "error: installing ${missing[*]} needs root, and sudo is not available;" \
       "run $0 as root" >&2
  exit 1
fi

"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
