#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Runs g-ir-scanner again on the current sources, with the build's own
# command line (from meson's introspection data) plus --warn-all
# --warn-error, and fails if it prints any warning. A -Dwerror=true build
# already fails on them (fatal_warnings in ctok/meson.build); this makes
# `meson test` fail on them in any build. Prints TAP.
#
# Usage: check-scanner.py BUILD_ROOT GIR_TARGET_NAME

import json
import os
import subprocess
import sys
import tempfile


def main(build_root, target_name):
    with open(os.path.join(build_root, 'meson-info', 'intro-targets.json')) as f:
        targets = json.load(f)

    command = None
    for target in targets:
        if target['name'] == target_name:
            command = target['target_sources'][0]['compiler']
    if not command:
        print('Bail out! no target %s in the build' % target_name)
        return 1

    with tempfile.TemporaryDirectory(prefix='ctok-gir-') as tmp:
        output = os.path.join(tmp, target_name)
        command = [output if arg == '@OUTPUT@' else arg for arg in command]
        for flag in ('--warn-all', '--warn-error'):
            if flag not in command:
                command.append(flag)

        env = dict(os.environ)
        env['PKG_CONFIG_PATH'] = os.path.join(build_root, 'meson-uninstalled')
        print('# ' + ' '.join(command))
        # The file list is relative to the build root, where meson runs it;
        # the scanner's temporary dumper gets a unique directory there.
        result = subprocess.run(command, cwd=build_root, env=env,
                                capture_output=True, text=True)

    print('1..2')
    log = (result.stdout + result.stderr).strip()
    warnings = [line for line in log.splitlines()
                if 'Warning' in line or 'warning' in line or 'Error' in line]
    for line in log.splitlines():
        print('# ' + line)
    print('%s 1 - g-ir-scanner exits with status 0 (got %d)'
          % ('ok' if result.returncode == 0 else 'not ok', result.returncode))
    print('%s 2 - g-ir-scanner --warn-all prints no warning (%d)'
          % ('ok' if not warnings else 'not ok', len(warnings)))
    return 0 if result.returncode == 0 and not warnings else 1


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: check-scanner.py BUILD_ROOT GIR_TARGET_NAME')
    sys.exit(main(*sys.argv[1:]))
