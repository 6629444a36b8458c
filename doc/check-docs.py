#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Checks on the API reference, run by `meson test --suite docs`:
#
#   check-docs.py check GIDOCGEN TOML GIR
#       `gi-docgen check`: every symbol, parameter and return value is
#       documented. Fails on any warning, not only on its exit status.
#   check-docs.py since GIR
#       every public symbol in the GIR carries a "Since:" version.
#   check-docs.py links GIDOCGEN TOML CONTENT_DIR GIR
#       generates the reference into a scratch directory with
#       --fatal-warnings, so that a broken [class@…] link in a guide or a
#       doc comment fails even in builds without -Dwerror=true, and checks
#       that every public symbol in the GIR got its page.

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

CORE = '{http://www.gtk.org/introspection/core/1.0}'
C_NS = '{http://www.gtk.org/introspection/c/1.0}'
GLIB_NS = '{http://www.gtk.org/introspection/glib/1.0}'

# Elements that are public symbols, with the attribute naming them.
SYMBOLS = ('class', 'interface', 'record', 'union', 'enumeration', 'bitfield',
           'callback', 'function', 'function-macro', 'method', 'constructor',
           'constant', 'property', GLIB_NS + 'signal', 'alias')


def run_gidocgen(args):
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    sys.stdout.write(proc.stdout)
    warnings = [line for line in proc.stdout.splitlines()
                if 'WARNING' in line or 'ERROR' in line or 'Traceback' in line]
    if proc.returncode != 0 or warnings:
        print(f'FAIL: {args[0]} {args[1]} exited with {proc.returncode}, '
              f'{len(warnings)} warning(s)')
        return 1
    return 0


def check(gidocgen, toml, gir):
    return run_gidocgen([gidocgen, 'check', '--config', toml, gir])


def expected_pages(gir):
    """The page gi-docgen writes for each public symbol of the GIR."""
    root = ET.parse(gir).getroot()
    namespace = root.find(CORE + 'namespace')
    pages = {}
    for child in namespace:
        tag = child.tag[len(CORE):]
        name = child.get('name')
        if tag in ('function', 'function-macro'):
            pages[f'func.{name}.html'] = child.get(C_NS + 'identifier')
        elif tag == 'constant':
            pages[f'const.{name}.html'] = child.get(C_NS + 'type')
        elif tag == 'callback':
            pages[f'callback.{name}.html'] = child.get(C_NS + 'type')
        elif tag in ('class', 'interface', 'record', 'enumeration', 'bitfield'):
            if child.get(GLIB_NS + 'is-gtype-struct-for') is not None:
                continue  # class structs are shown with their class
            kind = {'class': 'class', 'interface': 'iface', 'record': 'struct',
                    'enumeration': 'enum', 'bitfield': 'flags'}[tag]
            pages[f'{kind}.{name}.html'] = child.get(C_NS + 'type')
            for member in child:
                mtag = member.tag[len(CORE):] if member.tag.startswith(CORE) else member.tag
                mname = member.get('name')
                prefix = {'constructor': 'ctor', 'method': 'method',
                          'function': 'type_func', 'property': 'property',
                          GLIB_NS + 'signal': 'signal'}.get(mtag)
                if prefix is not None:
                    pages[f'{prefix}.{name}.{mname}.html'] = (
                        member.get(C_NS + 'identifier') or f'{name}:{mname}')
    return pages


def links(gidocgen, toml, content_dir, gir):
    with tempfile.TemporaryDirectory(prefix='ctok-doc-') as out:
        output = os.path.join(out, 'ctok-1')
        status = run_gidocgen([gidocgen, 'generate', '--quiet', '--fatal-warnings',
                               '--no-namespace-dir', '--config', toml,
                               '--content-dir', content_dir,
                               '--output-dir', output, gir])
        if status != 0:
            return status

        pages = expected_pages(gir)
        missing = [f'{symbol} ({page})' for page, symbol in sorted(pages.items())
                   if not os.path.isfile(os.path.join(output, page))]
        for symbol in missing:
            print(f'no page for {symbol}')
        if missing:
            print(f'FAIL: {len(missing)} public symbol(s) missing from the reference')
            return 1
        print(f'the reference has a page for each of the {len(pages)} public symbols')
        return 0


def since(gir):
    root = ET.parse(gir).getroot()
    missing = []

    def walk(element, path):
        for child in element:
            tag = child.tag[len(CORE):] if child.tag.startswith(CORE) else child.tag
            name = child.get('name')
            if tag in SYMBOLS or child.tag in SYMBOLS:
                full = '.'.join(path + [name])
                # Class structs (CtokTokenClass) are not API of their own.
                if child.get(GLIB_NS + 'is-gtype-struct-for') is None and not child.get('version'):
                    missing.append(f'{tag} {full}')
                walk(child, path + [name])
            elif tag == 'namespace':
                walk(child, [name])

    walk(root, [])

    for symbol in missing:
        print(f'no "Since:" for {symbol}')
    if missing:
        print(f'FAIL: {len(missing)} public symbol(s) without "Since:"')
        return 1
    print('every public symbol has "Since:"')
    return 0


def main(argv):
    commands = {
        'check': (check, 3),
        'since': (since, 1),
        'links': (links, 4),
    }
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        print('usage: check-docs.py check GIDOCGEN TOML GIR | since GIR | '
              'links GIDOCGEN TOML CONTENT_DIR GIR', file=sys.stderr)
        return 2
    function, _ = commands[argv[1]]
    return function(*argv[2:])


if __name__ == '__main__':
    sys.exit(main(sys.argv))
