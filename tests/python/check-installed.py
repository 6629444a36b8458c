#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs the build into a temporary DESTDIR (`meson install --destdir`,
# so nothing outside it is touched), then checks that Python, and GJS if
# given, load ctok from there: the library, the typelib and the Python
# overrides, and no part of the build tree. Prints TAP.
#
# Usage: check-installed.py MESON BUILD_ROOT [GJS]

import json
import os
import subprocess
import sys
import tempfile

PYTHON_CHECK = r'''
import gi
gi.require_version('Ctok', '1.0')
from gi.repository import Ctok, Gio
import gi.overrides.Ctok

print('overrides', gi.overrides.Ctok.__file__)
with open('/proc/self/maps') as maps:
    for line in maps:
        if 'libctok-1.so' in line:
            print('library', line.split()[-1])
            break

with Ctok.TokenSource.new_with_timeout(0) as source:
    try:
        source.get_token().raise_if_cancelled()
    except gi.repository.GLib.Error as error:
        assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)
        print('reason', error.message)
'''

GJS_CHECK = r'''
import Ctok from 'gi://Ctok?version=1.0';
import Gio from 'gi://Gio';
import System from 'system';

const source = Ctok.TokenSource.new_with_timeout(0);
try {
    source.get_token().set_error_if_cancelled();
    System.exit(1);
} catch (e) {
    if (!e.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.TIMED_OUT))
        System.exit(1);
    print('reason', e.message);
}
'''


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, ok, description, details=''):
        self.n += 1
        self.failed += not ok
        print('%s %d - %s' % ('ok' if ok else 'not ok', self.n, description))
        for line in details.strip().splitlines():
            print('# ' + line)
        return ok


def installed_files(build_root):
    with open(os.path.join(build_root, 'meson-info', 'intro-installed.json')) as f:
        return sorted(json.load(f).values())


def find(files, name):
    matches = [f for f in files if os.path.basename(f) == name]
    return matches[0] if matches else None


def main(meson, build_root, gjs=None):
    tap = Tap()
    build_root = os.path.realpath(build_root)

    with tempfile.TemporaryDirectory(prefix='ctok-install-') as destdir:
        # Not --no-rebuild: `meson test` builds only what the tests depend
        # on, and `meson install` needs every installed target.
        result = subprocess.run([meson, 'install', '-C', build_root,
                                 '--quiet', '--destdir', destdir],
                                capture_output=True, text=True)
        if not tap.check(result.returncode == 0, 'meson install --destdir',
                         result.stdout + result.stderr):
            print('1..%d' % tap.n)
            return 1

        def staged(path):
            return os.path.join(destdir, os.path.relpath(path, '/')) if path else None

        files = installed_files(build_root)
        typelib = staged(find(files, 'Ctok-1.0.typelib'))
        gir = staged(find(files, 'Ctok-1.0.gir'))
        library = staged(find(files, 'libctok-1.so.0.0.0'))
        overrides = staged(find(files, 'Ctok.py'))
        for name, path in [('typelib', typelib), ('GIR', gir),
                           ('shared library', library), ('Python overrides', overrides)]:
            tap.check(path is not None and os.path.isfile(path),
                      '%s installed: %s' % (name, path))
        if overrides:
            tap.check(overrides.endswith(os.path.join('gi', 'overrides', 'Ctok.py')),
                      'the overrides go to gi/overrides/ of the Python install dir')
        vapi = find(files, 'ctok-1.vapi')
        if vapi:
            tap.check(os.path.isfile(staged(vapi))
                      and os.path.isfile(staged(vapi)[:-len('vapi')] + 'deps'),
                      'ctok-1.vapi and ctok-1.deps installed')

        if not (typelib and library and overrides):
            print('1..%d' % tap.n)
            return 1

        env = {key: value for key, value in os.environ.items()
               if key not in ('GI_TYPELIB_PATH', 'LD_LIBRARY_PATH', 'PYTHONPATH')}
        env['GI_TYPELIB_PATH'] = os.path.dirname(typelib)
        env['LD_LIBRARY_PATH'] = os.path.dirname(library)
        # <site>/gi/overrides/Ctok.py -> <site>
        env['PYTHONPATH'] = os.path.dirname(os.path.dirname(os.path.dirname(overrides)))
        env['PYTHONDONTWRITEBYTECODE'] = '1'

        result = subprocess.run([sys.executable, '-c', PYTHON_CHECK], env=env,
                                capture_output=True, text=True, cwd=destdir)
        output = result.stdout + result.stderr
        lines = dict(line.split(' ', 1) for line in result.stdout.splitlines())
        tap.check(result.returncode == 0, 'Python imports the staged Ctok', output)
        tap.check(lines.get('overrides', '').startswith(destdir),
                  'Python loads the staged overrides', lines.get('overrides', ''))
        tap.check(lines.get('library', '').startswith(destdir),
                  'Python loads the staged libctok-1', lines.get('library', ''))
        tap.check(lines.get('reason') == 'Deadline exceeded',
                  'the staged overrides work (with, raise_if_cancelled)')

        if gjs:
            with open(os.path.join(destdir, 'check.js'), 'w') as f:
                f.write(GJS_CHECK)
            result = subprocess.run([gjs, '-m', os.path.join(destdir, 'check.js')],
                                    env=env, capture_output=True, text=True)
            tap.check(result.returncode == 0
                      and 'Deadline exceeded' in result.stdout + result.stderr,
                      'GJS imports the staged Ctok', result.stdout + result.stderr)

    print('1..%d' % tap.n)
    return 1 if tap.failed else 0


if __name__ == '__main__':
    if len(sys.argv) not in (3, 4):
        sys.exit('usage: check-installed.py MESON BUILD_ROOT [GJS]')
    sys.exit(main(*sys.argv[1:]))
