#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A deadline around a GIO read that never completes, from Python.
#
# The read is stopped by whichever comes first: the user (Ctrl+C, through
# TokenSource.cancel_on_unix_signal()) or the deadline. The operation runs
# under a token linked to both, and the reason tells them apart.
#
# From the build tree:
#   meson devenv -C _build -w . /usr/bin/python3 examples/python/deadline.py
#   ... --timeout=500             give up after half a second
#   ... --write-after=200         data arrives after 200 ms: the read succeeds
#
# Exit status: 0 if data was read, 1 if the deadline passed, 130 on Ctrl+C.

import argparse
import os
import signal
import sys

import gi

gi.require_version('Ctok', '1.0')
gi.require_version('Gio', '2.0')
from gi.repository import Ctok, Gio, GLib  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--timeout', type=int, default=3000, metavar='MS',
                        help='the deadline, in milliseconds (default: 3000)')
    parser.add_argument('--write-after', type=int, default=-1, metavar='MS',
                        help='write some data into the pipe after MS milliseconds')
    args = parser.parse_args()

    # A pipe nobody writes to: reading from it never completes.
    read_fd, write_fd = os.pipe()
    stream = Gio.UnixInputStream.new(read_fd, True)
    if args.write_after >= 0:
        def write():
            os.write(write_fd, b'hello\n')
            return GLib.SOURCE_REMOVE

        GLib.timeout_add(args.write_after, write)

    loop = GLib.MainLoop()
    outcome = {}

    # The user's source: cancelled by Ctrl+C (delivered in the default main
    # context, so the main loop must run), and the deadline's.
    with Ctok.TokenSource.new() as user, \
            Ctok.TokenSource.new_with_timeout(args.timeout) as deadline, \
            Ctok.TokenSource.new_linked([user.get_token(), deadline.get_token()]) as operation:
        user.cancel_on_unix_signal(signal.SIGINT)
        token = operation.get_token()

        # Called in this thread's main context, whoever cancels: for the
        # deadline, that is ctok's timer thread.
        def on_cancelled(t):
            print('token cancelled: %s' % t.dup_error().message, flush=True)
            outcome['callback ran'] = True
            quit_when_done()

        token.register_in_context(None, on_cancelled)

        def on_read(stream, result):
            try:
                data = stream.read_bytes_finish(result).get_data()
                outcome['data'] = data
            except GLib.Error as error:
                # GIO says "cancelled"; the token knows why.
                outcome['error'] = token.translate_error(error)
            outcome['read done'] = True
            quit_when_done()

        # The cancelling thread may still be on its way to this context when
        # the read fails (the token's GCancellable is cancelled first).
        def quit_when_done():
            if 'read done' in outcome and ('callback ran' in outcome or not token.is_cancelled()):
                loop.quit()

        print('reading, for at most %d ms (Ctrl+C cancels)...' % token.get_timeout_ms(),
              flush=True)
        stream.read_bytes_async(64, GLib.PRIORITY_DEFAULT, token.get_cancellable(), on_read)
        loop.run()

        print('user cancelled: %s, deadline passed: %s'
              % (user.is_cancelled(), deadline.is_cancelled()))

    stream.close(None)
    os.close(write_fd)

    if 'data' in outcome:
        print('read %r' % outcome['data'])
        return 0

    error = outcome['error']
    if error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT):
        print('gave up: %s' % error.message)
        return 1
    if error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED):
        print('stopped: %s' % error.message)
        return 130
    print('failed: %s' % error.message)
    return 2


if __name__ == '__main__':
    sys.exit(main())
