#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Smoke test for ctrl-c: SIGINT (what Ctrl+C sends) and SIGTERM stop the
worker cleanly, with status 0; without a signal, --limit ends the count.

    check-ctrl-c.py PROGRAM
"""

import os
import re
import signal
import subprocess
import sys
import time

TIMEOUT = 30  # seconds: a limit for a slow machine, not a delay


def run_until_signal(program, signum, name):
    env = dict(os.environ, LC_ALL='C')
    process = subprocess.Popen([program], stdout=subprocess.PIPE, env=env)
    lines = []
    deadline = time.monotonic() + TIMEOUT
    # Wait until the worker reports progress: the work is well under way.
    for raw in process.stdout:
        line = raw.decode().rstrip('\n')
        print(line, flush=True)
        lines.append(line)
        if 'worker:' in line or time.monotonic() > deadline:
            break
    if not any('worker:' in line for line in lines):
        process.kill()
        sys.exit('FAIL: the worker never reported progress')

    sent = time.monotonic()
    process.send_signal(signum)
    try:
        rest, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        sys.exit('FAIL: %s did not stop the program' % name)
    elapsed_ms = (time.monotonic() - sent) * 1000
    rest = rest.decode().splitlines()
    for line in rest:
        print(line, flush=True)
    lines += rest

    if process.returncode != 0:
        sys.exit('FAIL: exit status %d after %s' % (process.returncode, name))
    expected = 'main: the token is cancelled: Cancelled by signal %s' % name
    if not any(line.endswith(expected) for line in lines):
        sys.exit('FAIL: no "%s"' % expected)
    if not any(re.search(r'main: \d+ numbers checked, \d+ primes, the largest \d+$', line)
               for line in lines):
        sys.exit('FAIL: no final count')
    if lines[-1] != 'Stopped cleanly':
        sys.exit('FAIL: the last line is %r, not "Stopped cleanly"' % lines[-1])
    print('# %s: the program exited cleanly %.0f ms after the signal' % (name, elapsed_ms),
          flush=True)


def run_to_limit(program):
    result = subprocess.run([program, '--limit=20000'], stdout=subprocess.PIPE,
                            env=dict(os.environ, LC_ALL='C'), timeout=TIMEOUT)
    output = result.stdout.decode()
    print(output, end='', flush=True)
    if result.returncode != 0:
        sys.exit('FAIL: exit status %d with --limit' % result.returncode)
    # 2262 primes below 20002.
    if 'main: 20000 numbers checked, 2262 primes, the largest 19997' not in output \
            or not output.endswith('Done\n'):
        sys.exit('FAIL: the count to the limit is wrong')


def main():
    program = sys.argv[1]
    run_until_signal(program, signal.SIGINT, 'SIGINT')
    run_until_signal(program, signal.SIGTERM, 'SIGTERM')
    run_to_limit(program)
    print('PASS')


if __name__ == '__main__':
    main()
