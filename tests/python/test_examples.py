# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Smoke tests of examples/python/deadline.py: the deadline, the data, Ctrl+C.

import os
import signal
import subprocess
import sys
import time

EXAMPLE = os.path.join(os.environ['CTOK_SOURCE_ROOT'], 'examples', 'python', 'deadline.py')


def run(*args, interrupt_after=None):
    process = subprocess.Popen([sys.executable, EXAMPLE, *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if interrupt_after is not None:
        # Wait until it listens for SIGINT, i.e. it has started reading.
        line = process.stdout.readline()
        assert line.startswith('reading'), line
        time.sleep(interrupt_after)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        out = line + out
    else:
        out, err = process.communicate(timeout=30)
    assert 'CRITICAL' not in err and 'Traceback' not in err, err
    return process.returncode, out


def test_deadline():
    start = time.monotonic()
    status, out = run('--timeout=200')

    assert status == 1, out
    assert time.monotonic() - start >= 0.2
    assert 'token cancelled: Deadline exceeded' in out
    assert 'user cancelled: False, deadline passed: True' in out
    assert out.rstrip().endswith('gave up: Deadline exceeded')


def test_data_arrives_in_time():
    status, out = run('--timeout=10000', '--write-after=50')

    assert status == 0, out
    assert 'token cancelled' not in out
    assert "read b'hello\\n'" in out


def test_ctrl_c():
    status, out = run('--timeout=20000', interrupt_after=0.2)

    assert status == 130, out
    assert 'token cancelled: Cancelled by signal SIGINT' in out
    assert 'user cancelled: True, deadline passed: False' in out
    assert out.rstrip().endswith('stopped: Cancelled by signal SIGINT')
