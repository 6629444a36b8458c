#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Drives a gtk-hash application with real clicks and keys under Xvfb.

    test-gtk-app.py [--screenshots DIR] [--prefix NAME] [--max-cancel-ms MS]
                    -- COMMAND [ARG...]

COMMAND runs one of the gtk-hash applications (examples/gtk/gtk-hash.c,
examples/python/gtk-hash.py, examples/js/gtk-hash.js), which all speak the
same protocol on stdout: "layout NAME X Y W H" gives a widget's place in the
window, then "ready"; then one line per event ("started ...", "progress N%",
"cancelled after N ms", "status Cancelled", ...).

The test starts its own Xvfb (no display is needed) and, if dbus-run-session
is there, a session bus for the application. It finds the window with
xdotool, and moves the pointer and clicks with xdotool (XTEST: the X server
sees a real mouse), at the places the application reported:

 1. Start, then Cancel once the job has progressed: the job stops with
    "Cancelled", within --max-cancel-ms of the click (measured by the
    application, from its "clicked" handler to the job's stop);
 2. the "1 s" time limit, then Start: the job stops with "Timed out", not
    before the deadline;
 3. the "None" time limit, Start, then Ctrl+W while the job runs: closing the
    window cancels the job, and the application exits with status 0;
 4. a second, small run: Start hashes to the end and the hash is right, and
    Ctrl+W exits with status 0.

Screenshots go to DIR/PREFIX-cancel.png, PREFIX-timeout.png and
PREFIX-done.png. Exits 77 (skipped) if Xvfb or xdotool is missing.
"""

import argparse
import hashlib
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77

# Long enough for a slow, busy machine: these are limits, not delays.
STARTUP_TIMEOUT = 60
EVENT_TIMEOUT = 30
DEADLINE_SLACK_MS = 1000


class Failure(Exception):
    pass


def log(message):
    print('# ' + message, flush=True)


class Xvfb:
    """An X server of our own, on a display number it picks itself."""

    def __init__(self):
        read_fd, write_fd = os.pipe()
        self.errors = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            ['Xvfb', '-displayfd', str(write_fd), '-screen', '0', '1024x768x24',
             '-nolisten', 'tcp', '-noreset'],
            pass_fds=[write_fd], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self.errors)
        os.close(write_fd)
        number = b''
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with os.fdopen(read_fd, 'rb', buffering=0) as pipe:
            while not number.endswith(b'\n'):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
                    break
                chunk = pipe.read(1)
                if not chunk:
                    break
                number += chunk
        if not number.strip().isdigit():
            self.stop()
            self.errors.seek(0)
            raise Failure('Xvfb did not start: %s'
                          % self.errors.read().decode(errors='replace'))
        self.display = ':' + number.decode().strip()
        log('Xvfb on display %s' % self.display)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.errors.close()


class App:
    """The application under test, its output read line by line."""

    def __init__(self, command, env):
        log('running: ' + ' '.join(command))
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        self.lines = []             # stdout, in order
        self.stderr = []
        self.position = 0           # next line expect() looks at
        self.new_line = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines, True),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.stderr, False),
                         daemon=True).start()

    def _read(self, stream, lines, notify):
        for raw in stream:
            line = raw.decode(errors='replace').rstrip('\n')
            lines.append(line)
            print(('app: ' if notify else 'app stderr: ') + line, flush=True)
            if notify:
                self.new_line.put(line)
        if notify:
            self.new_line.put(None)

    def expect(self, pattern, timeout=EVENT_TIMEOUT, check=None):
        """Waits for a line matching @pattern after the last one matched;
        @check, if given, must also accept the match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            while self.position < len(self.lines):
                line = self.lines[self.position]
                self.position += 1
                match = regex.search(line)
                if match and (check is None or check(match)):
                    return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Failure('timed out after %d s waiting for /%s/' % (timeout, pattern))
            if self.process.poll() is not None and self.position >= len(self.lines):
                # Let the reader catch up with what the process wrote last.
                time.sleep(0.2)
                if self.position >= len(self.lines):
                    raise Failure('the application exited (status %s) before /%s/'
                                  % (self.process.returncode, pattern))
            try:
                self.new_line.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                pass

    def since(self, match_line_index):
        return self.lines[match_line_index:]

    def wait(self, timeout=EVENT_TIMEOUT):
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure('the application did not exit within %d s' % timeout)

    def kill(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()


class Driver:
    def __init__(self, args, display, runtime_dir):
        self.args = args
        self.display = display
        self.env = dict(os.environ)
        self.env.update({
            'DISPLAY': display,
            'GDK_BACKEND': 'x11',
            # No accessibility bus, no dconf: nothing the test does not start.
            'GTK_A11Y': 'none',
            'NO_AT_BRIDGE': '1',
            'GSETTINGS_BACKEND': 'memory',
            # Software GL is slow on a small machine; cairo draws the same.
            'GSK_RENDERER': 'cairo',
            'XDG_RUNTIME_DIR': runtime_dir,
            'LC_ALL': 'C.UTF-8',
        })
        self.env.pop('WAYLAND_DISPLAY', None)
        self.measured = []
        self.app = None
        self.window = None
        self.layout = {}

    def run_tool(self, command):
        try:
            result = subprocess.run(command, env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, timeout=EVENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Failure('%s did not finish within %d s' % (' '.join(command), EVENT_TIMEOUT))
        if result.returncode != 0:
            raise Failure('%s failed: %s' % (' '.join(command),
                                             result.stderr.decode(errors='replace')))
        return result.stdout.decode()

    def xdotool(self, *args):
        return self.run_tool(['xdotool'] + list(args))

    def launch(self, *options):
        command = list(self.args.command) + list(options)
        if shutil.which('dbus-run-session'):
            # GtkApplication registers on the session bus if there is one.
            command = ['dbus-run-session', '--'] + command
        self.app = App(command, self.env)
        self.app.expect(r'^ready$', STARTUP_TIMEOUT)
        self.layout = {}
        for line in self.app.lines:
            match = re.match(r'^layout (\S+) (-?\d+) (-?\d+) (\d+) (\d+)$', line)
            if match:
                self.layout[match.group(1)] = tuple(int(g) for g in match.groups()[1:])
        for name in ('start', 'cancel', 'limit-0', 'limit-1'):
            if name not in self.layout:
                raise Failure('the application did not report where "%s" is' % name)
        # --sync waits until the window is there; our X server shows only it.
        found = self.xdotool('search', '--sync', '--onlyvisible', '--name', '^ctok hash')
        self.window = found.split()[0]
        log('window %s, geometry: %s' % (self.window, ' '.join(
            self.xdotool('getwindowgeometry', self.window).split())))

    def click(self, name):
        x, y, width, height = self.layout[name]
        log('click on %s at %d,%d in the window' % (name, x + width // 2, y + height // 2))
        self.xdotool('mousemove', '--window', self.window, '--sync',
                     str(x + width // 2), str(y + height // 2), 'click', '1')

    def key(self, keys):
        log('key ' + keys)
        self.xdotool('key', '--clearmodifiers', keys)

    def screenshot(self, what):
        path = os.path.join(self.args.screenshots, '%s-%s.png' % (self.args.prefix, what))
        time.sleep(0.5)  # let the last frame reach the X server
        if shutil.which('import'):
            command = ['import', '-window', 'root', path]
        else:
            path = path[:-len('.png')] + '.xwd'
            command = ['xwd', '-root', '-silent', '-out', path]
        self.run_tool(command)
        log('screenshot: ' + path)

    def expect_progress(self, at_least):
        return self.app.expect(r'^progress (\d+)%$',
                               check=lambda m: int(m.group(1)) >= at_least)

    def check_cancel_latency(self, match, what):
        latency = float(match.group(1))
        self.measured.append('%s: %s ms (%s)' % (what, match.group(1), match.group(2)))
        if latency > self.args.max_cancel_ms:
            raise Failure('the job stopped %s ms after the %s, more than %d ms'
                          % (match.group(1), what, self.args.max_cancel_ms))

    def close(self):
        self.key('ctrl+w')
        status = self.app.wait()
        if status != 0:
            raise Failure('the application exited with status %d' % status)
        self.check_stderr()

    def run(self):
        # --- A long job: 256 MiB at 16 MiB/s, 16 s unless stopped. The job
        # mostly waits between reads, to keep to the rate. ---
        self.launch('--size=256', '--rate=16')

        # 1. Start, then Cancel.
        self.click('start')
        self.app.expect(r'^started \(no time limit\)$')
        self.expect_progress(2)
        self.click('cancel')
        self.app.expect(r'^cancel clicked$')
        match = self.app.expect(r'^cancelled after ([0-9.]+) ms \((.*)\)$')
        stopped = self.app.position
        self.app.expect(r'^status Cancelled$')
        self.check_cancel_latency(match, 'Cancel click')
        self.screenshot('cancel')
        late = [line for line in self.app.since(stopped)
                if line.startswith(('progress', 'done'))]
        if late:
            raise Failure('the job went on after it was cancelled: %s' % late)

        # 2. Closing the window (Ctrl+W) while the job runs cancels it, and
        # the window closes once the job has stopped.
        self.click('start')
        self.app.expect(r'^started \(no time limit\)$')
        self.expect_progress(1)
        self.key('ctrl+w')
        self.app.expect(r'^close requested$')
        match = self.app.expect(r'^cancelled after ([0-9.]+) ms \((.*)\)$')
        self.check_cancel_latency(match, 'close request')
        status = self.app.wait()
        if status != 0:
            raise Failure('the application exited with status %d' % status)
        self.check_stderr()

        # --- A job at full speed, 4 GiB: it is mostly reading and hashing.
        self.launch('--size=4096', '--rate=0')

        # 3. The time limit: a deadline, reported as "Timed out".
        self.click('limit-1')
        self.app.expect(r'^time limit 1 s$')
        self.click('start')
        self.app.expect(r'^started \(time limit 1 s\)$')
        match = self.app.expect(
            r'^timed out after ([0-9.]+) ms \((-?[0-9.]+) ms after the deadline, (.*)\)$')
        self.app.expect(r'^status Timed out$')
        elapsed, after_deadline = float(match.group(1)), float(match.group(2))
        self.measured.append('deadline: %s ms (%s)' % (match.group(2), match.group(3)))
        if elapsed < 1000 or after_deadline < 0:
            raise Failure('the job timed out before its deadline')
        # ctok's timer thread cancels on time; how soon the main thread gets
        # to it depends on the machine's load, so the bound is looser here.
        if after_deadline > max(self.args.max_cancel_ms, DEADLINE_SLACK_MS):
            raise Failure('the job stopped %s ms after its deadline, more than %d ms'
                          % (match.group(2), max(self.args.max_cancel_ms, DEADLINE_SLACK_MS)))
        self.screenshot('timeout')

        # 4. Cancel, in the middle of reading and hashing.
        self.click('limit-0')
        self.app.expect(r'^time limit none$')
        self.click('start')
        self.app.expect(r'^started \(no time limit\)$')
        self.expect_progress(1)
        self.click('cancel')
        match = self.app.expect(r'^cancelled after ([0-9.]+) ms \((.*)\)$')
        self.app.expect(r'^status Cancelled$')
        self.check_cancel_latency(match, 'Cancel click at full speed')
        self.close()

        # --- 5. A short job that completes: 16 MiB of zeros. ---
        self.launch('--size=16', '--rate=32')
        self.click('start')
        match = self.app.expect(r'^done ([0-9a-f]{64})$')
        self.app.expect(r'^status Done$')
        expected = hashlib.sha256(bytes(16 * 1024 * 1024)).hexdigest()
        if match.group(1) != expected:
            raise Failure('wrong hash %s, expected %s' % (match.group(1), expected))
        self.screenshot('done')
        self.close()
        if any(line.startswith('cancelled') for line in self.app.lines):
            raise Failure('a job that completed was reported cancelled')

        log('%s: measured, from the request to the job\'s stop: %s'
            % (self.args.prefix, '; '.join(self.measured)))

    def check_stderr(self):
        # GLib's warnings and criticals look like "Gtk-WARNING **: ...".
        bad = [line for line in self.app.stderr
               if re.search(r'-(WARNING|CRITICAL|ERROR) \*\*', line)]
        if bad:
            raise Failure('the application warned:\n' + '\n'.join(bad))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--screenshots', default='.',
                        help='where to save the screenshots (default: .)')
    parser.add_argument('--prefix', default='gtk-app',
                        help='the screenshots\' file name prefix (default: gtk-app)')
    parser.add_argument('--max-cancel-ms', type=int, default=100,
                        help='the longest a job may take to stop (default: 100)')
    parser.add_argument('command', nargs='+', help='the application to run')
    args = parser.parse_args()

    for program in ('Xvfb', 'xdotool'):
        if shutil.which(program) is None:
            print('1..0 # SKIP %s is not installed' % program)
            return SKIP
    os.makedirs(args.screenshots, exist_ok=True)

    xvfb = None
    driver = None
    try:
        with tempfile.TemporaryDirectory(prefix='ctok-gtk-test-') as runtime_dir:
            os.chmod(runtime_dir, 0o700)
            xvfb = Xvfb()
            driver = Driver(args, xvfb.display, runtime_dir)
            try:
                driver.run()
            except Failure as failure:
                print('FAIL: %s' % failure, flush=True)
                try:
                    driver.screenshot('failure')
                except Exception as error:  # noqa: BLE001 - best effort
                    log('no failure screenshot: %s' % error)
                return 1
            finally:
                if driver.app is not None:
                    driver.app.kill()
    finally:
        if xvfb is not None:
            xvfb.stop()

    print('PASS')
    return 0


if __name__ == '__main__':
    sys.exit(main())
