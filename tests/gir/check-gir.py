#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Checks the built Ctok-1.0.gir: every symbol the library exports is in it,
# introspectable (but for the known C-only functions), documented down to
# each parameter and return value, and marked `Since: 1.0`; and no parameter
# that the C code refuses NULL for (g_return_if_fail) is nullable in the GIR.
# Prints TAP.
#
# Usage: check-gir.py GIR NM LIBRARY [C_SOURCE...]

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

CORE = 'http://www.gtk.org/introspection/core/1.0'
C = 'http://www.gtk.org/introspection/c/1.0'
GLIB = 'http://www.gtk.org/introspection/glib/1.0'

NAMESPACE = 'Ctok'
VERSION = '1.0'

# C only, on purpose; see their documentation.
C_ONLY = {
    # Its callbacks run on the cancelling thread (ctok's timer thread, for
    # a deadline): bindings use register_in_context() and create_source().
    'ctok_token_register',
    # An inout GError**: bindings use translate_error().
    'ctok_token_rewrite_error',
}

# Known annotation bugs, reported upstream: TAP TODO, so that the suite
# passes while they are there and says "unexpected pass" once they are fixed.
# function -> parameter
CALLABLES = ('function', 'method', 'constructor', 'callback', 'virtual-method')
TYPES = ('class', 'interface', 'record', 'enumeration', 'bitfield', 'alias',
         'constant')


def q(tag, ns=CORE):
    return '{%s}%s' % (ns, tag)


def has_doc(element):
    doc = element.find(q('doc'))
    return doc is not None and (doc.text or '').strip() != ''


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, problems, description):
        self.n += 1
        if problems:
            self.failed += 1
            print('not ok %d - %s' % (self.n, description))
            for problem in problems:
                print('# %s' % problem)
        else:
            print('ok %d - %s' % (self.n, description))

    def done(self):
        print('1..%d' % self.n)
        return 1 if self.failed else 0


def describe(element, parent=None):
    name = element.get(q('identifier', C)) or element.get('name')
    if parent is not None and not element.get(q('identifier', C)):
        name = '%s.%s' % (parent.get('name'), name)
    return '%s %s' % (element.tag.split('}')[1], name)


def main(gir_path, nm, library, sources=()):
    tap = Tap()

    root = ET.parse(gir_path).getroot()
    namespace = root.find(q('namespace'))
    tap.check([] if namespace is not None
              and namespace.get('name') == NAMESPACE
              and namespace.get('version') == VERSION
              else ['expected namespace %s %s' % (NAMESPACE, VERSION)],
              'namespace %s-%s' % (NAMESPACE, VERSION))

    # Every element with its parent, for the checks below.
    parents = {child: parent for parent in namespace.iter() for child in parent}

    callables = [e for tag in CALLABLES for e in namespace.iter(q(tag))]
    signals = list(namespace.iter(q('signal', GLIB)))
    properties = list(namespace.iter(q('property')))
    types = [e for e in namespace
             if e.tag in {q(tag) for tag in TYPES}
             and e.get(q('is-gtype-struct-for', GLIB)) is None]

    by_symbol = {}
    for element in namespace.iter():
        for attribute in (q('identifier', C), q('get-type', GLIB)):
            if element.get(attribute):
                by_symbol[element.get(attribute)] = element

    # 1. Everything the library exports is described.
    exported = subprocess.run([nm, '-D', '--defined-only', library],
                              check=True, capture_output=True, text=True).stdout
    symbols = sorted(line.split()[2] for line in exported.splitlines()
                     if len(line.split()) == 3 and line.split()[1] == 'T'
                     and line.split()[2].startswith('ctok_'))
    tap.check([] if symbols else ['no ctok_ symbols found in %s' % library],
              'the library exports ctok_ functions')
    tap.check(['%s is exported but not in the GIR' % s
               for s in symbols if s not in by_symbol],
              'all %d exported functions are in the GIR' % len(symbols))

    # 2. Introspectable, but for the C-only functions.
    not_introspectable = {describe(e, parents.get(e))
                          for e in callables + signals + properties + types
                          if e.get('introspectable') == '0'}
    expected = {describe(by_symbol[s], parents.get(by_symbol[s]))
                for s in C_ONLY if s in by_symbol}
    tap.check(['%s is not introspectable' % d
               for d in sorted(not_introspectable - expected)]
              + ['%s should be C only (skip)' % d
                 for d in sorted(expected - not_introspectable)]
              + ['%s is not in the GIR' % s
                 for s in sorted(C_ONLY) if s not in by_symbol],
              'everything is introspectable but %s' % ', '.join(sorted(C_ONLY)))

    # 3. Documented, with Since: 1.0.
    everything = callables + signals + properties + types
    tap.check(['%s has no documentation' % describe(e, parents.get(e))
               for e in everything if not has_doc(e)],
              'all %d callables, signals, properties and types are documented'
              % len(everything))
    tap.check(['%s has version %r, not %s' % (describe(e, parents.get(e)),
                                              e.get('version'), VERSION)
               for e in everything if e.get('version') != VERSION],
              'all of them are marked Since: %s' % VERSION)

    # 4. Every parameter and return value is documented.
    problems = []
    for element in callables + signals:
        if element.get('introspectable') == '0':
            continue
        where = describe(element, parents.get(element))
        parameters = element.find(q('parameters'))
        for parameter in (parameters if parameters is not None else []):
            if not has_doc(parameter):
                problems.append('%s: parameter %s has no documentation'
                                % (where, parameter.get('name')))
        retval = element.find(q('return-value'))
        if retval is not None:
            rtype = retval.find(q('type'))
            void = rtype is not None and rtype.get('name') == 'none'
            if not void and not has_doc(retval):
                problems.append('%s: return value has no documentation' % where)
    tap.check(problems, 'all parameters and return values are documented')

    # 5. Nullable in the GIR only where the C code takes NULL.
    if sources:
        required = non_null_parameters(sources)
        problems = []
        for function, parameters in sorted(required.items()):
            element = by_symbol.get(function)
            if element is None or element.get('introspectable') == '0':
                continue
            for parameter in element.iter(q('parameter')):
                if parameter.get('name') in parameters and parameter.get('nullable') == '1':
                    problem = ('%s: parameter %s is nullable in the GIR, but the C code '
                               'rejects NULL: annotate it (not nullable)'
                               % (function, parameter.get('name')))
                    problems.append(problem)
        tap.check(problems, 'parameters checked for NULL in C are not nullable '
                  '(%d functions)' % len(required))

    return tap.done()


def non_null_parameters(sources):
    """Maps each public function to the parameters its preconditions
    require to be non-NULL: `g_return_if_fail (G_IS_FOO (param))` or
    `(param != NULL)`, but not conditions with `||`."""
    required = {}
    definition = re.compile(r'^(ctok_\w+) \(', re.M)
    checks = [re.compile(r'g_return_if_fail \((.*)\);$', re.M),
              re.compile(r'g_return_val_if_fail \((.*), [^,]*\);$', re.M)]
    for path in sources:
        with open(path, encoding='utf-8') as f:
            text = f.read()
        starts = [(m.group(1), m.start()) for m in definition.finditer(text)]
        for (function, start), (_, end) in zip(starts, starts[1:] + [(None, len(text))]):
            body = text[start:text.find('\n}', start, end) if '\n}' in text[start:end] else end]
            names = set()
            for condition in (c for check in checks for c in check.findall(body)):
                if '||' in condition:
                    continue
                names.update(re.findall(r'IS_\w+ \((\w+)\)', condition))
                names.update(re.findall(r'(?<![\w)\]])(\w+) != NULL', condition))
            if names:
                required[function] = names
    return required


if __name__ == '__main__':
    if len(sys.argv) < 4:
        sys.exit('usage: check-gir.py GIR NM LIBRARY [C_SOURCE...]')
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
