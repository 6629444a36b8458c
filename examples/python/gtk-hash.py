#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A GTK 4 window whose job stops on Cancel, on a time limit, or when the
# window closes: examples/gtk/gtk-hash.c in Python, with the same window and
# the same output.
#
# Start hashes a file (SHA-256) with asynchronous GIO reads of 1 MiB on the
# main thread. Without FILE, the file is a sparse temporary file of --size
# MiB (zeros, nothing written to disk), read at most at --rate MiB/s so that
# there is time to press Cancel. Each run gets a new Ctok.TokenSource:
#
#  - Cancel cancels it through source.cancel_on_signal(cancel_button,
#    'clicked'), closing the window through 'close-request';
#  - the time limit is a deadline, source.cancel_after(), whose reason is
#    Gio.IOErrorEnum.TIMED_OUT instead of CANCELLED;
#  - a read in flight gets the token's Gio.Cancellable, and
#    token.translate_error() turns GIO's CANCELLED into the token's reason;
#    a pause between two reads is cut short by token.create_source(), a
#    GLib.Source that dispatches in the main thread whoever cancels;
#  - the Cancel button's sensitivity is bound to the token's 'cancelled'
#    property, the Start button's to the window's 'running'.
#
# It prints one line per event on stdout, as the C version does: "layout
# NAME X Y W H", "ready", "started ...", "progress N%", "cancelled after N
# ms (...)", "timed out after N ms (...)", "done HASH", "status TEXT"...
# Ctrl+W closes the window.
#
# From the build tree:
#   meson devenv -C _build -w . /usr/bin/python3 examples/python/gtk-hash.py
#   ... --size=1024 --rate=0        1 GiB as fast as possible
#   ... /path/to/some/file          hash that file

import argparse
import hashlib
import sys

import gi

gi.require_version('Ctok', '1.0')
gi.require_version('Gtk', '4.0')
from gi.repository import Ctok, Gio, GLib, GObject, Gtk, Pango  # noqa: E402

MIB = 1024 * 1024
CHUNK_SIZE = MIB
TIME_LIMITS_S = (0, 1, 2, 5)   # the "Time limit" buttons; 0 is none


def say(line):
    print(line, flush=True)


def format_ms(us):
    return '%.1f' % (us / 1000)


class Input:
    """What the job hashes: opened once, read again from the start each run."""

    def __init__(self, path, size_mib, rate_mib):
        self.rate = rate_mib * MIB
        rate_text = ', at most %g MiB/s' % rate_mib if rate_mib > 0 else ''
        if path is None:
            # A sparse temporary file: nothing is written, it reads as zeros,
            # and it is unlinked at once, so nothing is left behind.
            self.size = size_mib * MIB
            file, iostream = Gio.File.new_tmp('ctok-gtk-hash-XXXXXX')
            try:
                iostream.truncate(self.size, None)
                iostream.close(None)
                self.stream = file.read(None)
            finally:
                file.delete(None)
            self.description = ('SHA-256 of %d MiB of zeros (a sparse temporary file)%s.'
                                % (size_mib, rate_text))
        else:
            file = Gio.File.new_for_commandline_arg(path)
            self.stream = file.read(None)
            info = self.stream.query_info(Gio.FILE_ATTRIBUTE_STANDARD_SIZE, None)
            self.size = info.get_size()
            self.description = ('SHA-256 of %s (%s)%s.'
                                % (file.get_parse_name(), GLib.format_size(self.size),
                                   rate_text))


class Job:
    """One run of the hashing job."""

    def __init__(self, window, time_limit_s):
        self.window = window
        self.source = Ctok.TokenSource.new()       # the window's: Cancel, close, limit
        self.token = self.source.get_token()       # the job's
        self.checksum = hashlib.sha256()
        self.done = 0
        self.percent = -1
        self.started_at = GLib.get_monotonic_time()
        self.reading = False
        self.pause_id = 0

        # Everything that may stop the job cancels its source.
        if time_limit_s > 0:
            self.source.cancel_after(time_limit_s * 1000)
        self.clicked_id = self.source.cancel_on_signal(window.cancel_button, 'clicked')
        self.close_request_id = self.source.cancel_on_signal(window, 'close-request')

        # Cancel is clickable until the token is cancelled, whatever cancels
        # it; the notification comes in this thread, also for the deadline.
        self.cancel_binding = self.token.bind_property(
            'cancelled', window.cancel_button, 'sensitive',
            GObject.BindingFlags.SYNC_CREATE | GObject.BindingFlags.INVERT_BOOLEAN)

        # Dispatched in this thread's main context when the token is cancelled.
        self.cancel_source = self.token.create_source()
        self.cancel_source.set_callback(self.on_cancelled)
        self.cancel_source.attach(None)

    def start(self):
        try:
            self.window.input.stream.seek(0, GLib.SeekType.SET, None)
        except GLib.Error as error:
            self.stop(error, 'at the start')
            return
        self.read_next()

    def read_next(self):
        self.reading = True
        self.window.input.stream.read_bytes_async(CHUNK_SIZE, GLib.PRIORITY_DEFAULT,
                                                  self.token.get_cancellable(),
                                                  self.on_chunk_read)

    def on_chunk_read(self, stream, result):
        self.reading = False
        try:
            data = stream.read_bytes_finish(result).get_data()
        except GLib.Error as error:
            # GIO reports CANCELLED whoever cancelled; the token knows the real
            # reason, such as TIMED_OUT for the deadline.
            self.stop(self.token.translate_error(error), 'in a read')
            return

        if not data:
            self.stop(None, None)
            return

        self.checksum.update(data)
        self.done += len(data)
        self.update_progress()

        # The read may have completed just as the token was cancelled.
        try:
            self.token.set_error_if_cancelled()
        except GLib.Error as reason:
            self.stop(reason, 'after a read')
            return

        rate = self.window.input.rate
        if rate > 0:
            # Keep to the rate: wait until this many bytes are due.
            due = self.started_at + int(self.done / rate * 1e6)
            wait_ms = (due - GLib.get_monotonic_time()) // 1000
            if wait_ms > 0:
                self.pause_id = GLib.timeout_add(wait_ms, self.on_resume)
                return

        self.read_next()

    def on_resume(self):
        self.pause_id = 0
        self.read_next()
        return GLib.SOURCE_REMOVE

    def on_cancelled(self, *args):
        # The source dispatches once; GLib destroys it when this returns.
        self.cancel_source = None

        # A read in flight fails by itself, through the token's cancellable,
        # and on_chunk_read() stops the job then; only a pause needs cutting
        # short.
        if self.pause_id:
            GLib.source_remove(self.pause_id)
            self.pause_id = 0
            try:
                self.token.set_error_if_cancelled()
            except GLib.Error as reason:
                self.stop(reason, 'in a pause')
        return GLib.SOURCE_REMOVE

    def update_progress(self):
        size = self.window.input.size
        percent = self.done * 100 // size if size > 0 else 100
        if percent != self.percent:
            self.percent = percent
            self.window.progress_bar.set_fraction(percent / 100)
            self.window.progress_bar.set_text('%d %%' % percent)
            say('progress %d%%' % percent)

    def stop(self, error, when):
        """Ends the job: error is why it stopped early, or None if it is done."""
        window = self.window
        stopped_at = GLib.get_monotonic_time()
        assert not self.reading and self.pause_id == 0

        # Nothing may cancel a job that is over.
        if self.cancel_source is not None:
            self.cancel_source.destroy()
            self.cancel_source = None
        window.cancel_button.disconnect(self.clicked_id)
        window.disconnect(self.close_request_id)
        self.cancel_binding.unbind()
        window.cancel_button.set_sensitive(False)

        if error is None:
            digest = self.checksum.hexdigest()
            say('done ' + digest)
            window.hash_label.set_text('SHA-256: ' + digest)
            window.set_status('Done')
        elif error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT):
            # The deadline stays readable once the token is cancelled.
            deadline = self.token.get_deadline()
            say('timed out after %s ms (%s ms after the deadline, %s)'
                % (format_ms(stopped_at - self.started_at),
                   format_ms(stopped_at - deadline), when))
            window.set_status('Timed out')
        elif error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED):
            if window.cancel_requested_at:
                say('cancelled after %s ms (%s)'
                    % (format_ms(stopped_at - window.cancel_requested_at), when))
            else:
                say('cancelled (%s)' % when)
            window.set_status('Cancelled')
        else:
            say('failed: ' + error.message)
            window.set_status('Failed: ' + error.message)

        window.job_stopped()


class HashWindow(Gtk.ApplicationWindow):
    def __init__(self, application, hash_input):
        super().__init__(application=application, title='ctok hash (Python)',
                         default_width=480)
        self.input = hash_input
        self.job = None
        self.time_limit_s = 0
        self.cancel_requested_at = 0
        self.close_pending = False
        self.after_paint_id = 0

        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=12, margin_start=18,
                      margin_end=18, margin_top=18, margin_bottom=18)
        self.set_child(box)

        box.append(Gtk.Label(label=hash_input.description, wrap=True, xalign=0))

        row = Gtk.Box(spacing=12)
        row.append(Gtk.Label(label='Time limit:'))
        self.limit_box = Gtk.Box(css_classes=['linked'])
        self.limit_buttons = []
        for limit in TIME_LIMITS_S:
            button = Gtk.ToggleButton(label='%d s' % limit if limit else 'None')
            if self.limit_buttons:
                button.set_group(self.limit_buttons[0])
            else:
                button.set_active(True)
            button.connect('toggled', self.on_limit_toggled, limit)
            self.limit_box.append(button)
            self.limit_buttons.append(button)
        row.append(self.limit_box)
        box.append(row)

        self.progress_bar = Gtk.ProgressBar(show_text=True, text='0 %')
        box.append(self.progress_bar)

        self.status_label = Gtk.Label(label='Ready', xalign=0, css_classes=['heading'])
        box.append(self.status_label)

        self.hash_label = Gtk.Label(xalign=0, selectable=True, css_classes=['monospace'],
                                    ellipsize=Pango.EllipsizeMode.MIDDLE)
        box.append(self.hash_label)

        buttons = Gtk.Box(spacing=12, halign=Gtk.Align.END)
        self.cancel_button = Gtk.Button(label='_Cancel', use_underline=True, sensitive=False)
        # Connected before any job's handler, so it runs first: the time the
        # cancellation was asked for, to measure how long the job takes to stop.
        self.cancel_button.connect('clicked', self.on_cancel_clicked)
        buttons.append(self.cancel_button)
        self.start_button = Gtk.Button(label='_Start', use_underline=True,
                                       css_classes=['suggested-action'])
        self.start_button.connect('clicked', self.on_start_clicked)
        buttons.append(self.start_button)
        box.append(buttons)

        # Start and the time limit only while no job runs.
        flags = GObject.BindingFlags.SYNC_CREATE | GObject.BindingFlags.INVERT_BOOLEAN
        self.bind_property('running', self.start_button, 'sensitive', flags)
        self.bind_property('running', self.limit_box, 'sensitive', flags)

        self.connect('close-request', self.on_close_requested)
        self.connect('map', self.on_map)

    @GObject.Property(type=bool, default=False)
    def running(self):
        return self.job is not None

    def set_status(self, status):
        self.status_label.set_text(status)
        say('status ' + status)

    def on_start_clicked(self, button):
        if self.job is not None:
            return
        self.job = Job(self, self.time_limit_s)
        self.cancel_requested_at = 0
        self.notify('running')
        self.hash_label.set_text('')
        self.job.update_progress()
        if self.time_limit_s:
            say('started (time limit %d s)' % self.time_limit_s)
        else:
            say('started (no time limit)')
        self.set_status('Hashing…')
        self.job.start()

    def job_stopped(self):
        self.job = None
        self.notify('running')
        # The window was asked to close while the job ran: now it can.
        if self.close_pending:
            self.close()

    def on_cancel_clicked(self, button):
        self.cancel_requested_at = GLib.get_monotonic_time()
        say('cancel clicked')

    def on_close_requested(self, window):
        if self.job is not None:
            self.cancel_requested_at = GLib.get_monotonic_time()
        say('close requested')
        return False

    def do_close_request(self):
        # The job's source was cancelled by the signal's handlers already:
        # close once the job has stopped, which is quick.
        if self.job is not None:
            self.close_pending = True
            return True
        return Gtk.ApplicationWindow.do_close_request(self)

    def on_limit_toggled(self, button, limit):
        if button.get_active():
            self.time_limit_s = limit
            say('time limit %d s' % limit if limit else 'time limit none')

    def on_map(self, window):
        # After the first frame, the widgets have their places.
        clock = self.get_frame_clock()
        if not self.after_paint_id and clock is not None:
            self.after_paint_id = clock.connect('after-paint', self.on_after_first_paint)

    def on_after_first_paint(self, clock):
        clock.disconnect(self.after_paint_id)
        self.after_paint_id = 0
        self.print_layout('start', self.start_button)
        self.print_layout('cancel', self.cancel_button)
        for limit, button in zip(TIME_LIMITS_S, self.limit_buttons):
            self.print_layout('limit-%d' % limit, button)
        say('ready')

    def print_layout(self, name, widget):
        ok, bounds = widget.compute_bounds(self)
        if not ok:
            return
        # From the window's coordinates to its X window's (shadows, if any).
        surface_x, surface_y = self.get_surface_transform()
        say('layout %s %d %d %d %d' % (name, bounds.origin.x + surface_x,
                                       bounds.origin.y + surface_y,
                                       bounds.size.width, bounds.size.height))


def main():
    parser = argparse.ArgumentParser(
        description='Hash a file, with Cancel and a time limit. Without FILE, '
                    'hashes a generated sparse file.')
    parser.add_argument('file', nargs='?', metavar='FILE')
    parser.add_argument('--size', type=int, default=256, metavar='MIB',
                        help='size of the generated file in MiB (default: 256)')
    parser.add_argument('--rate', type=float, default=32, metavar='MIB',
                        help='read at most MIB MiB per second, 0 for no limit (default: 32)')
    args = parser.parse_args()
    if args.size < 0 or args.rate < 0:
        parser.error('sizes and rates must not be negative')

    try:
        hash_input = Input(args.file, args.size, args.rate)
    except GLib.Error as error:
        print('%s: %s' % (parser.prog, error.message), file=sys.stderr)
        return 1

    app = Gtk.Application(application_id='org.ctok.examples.GtkHashPython',
                          flags=Gio.ApplicationFlags.NON_UNIQUE)

    def on_startup(app):
        # GtkWindow's own "window.close" action, as the close button does.
        app.set_accels_for_action('window.close', ['<Control>w'])

    def on_activate(app):
        window = app.get_active_window() or HashWindow(app, hash_input)
        window.present()

    app.connect('startup', on_startup)
    app.connect('activate', on_activate)
    status = app.run([sys.argv[0]])
    hash_input.stream.close(None)
    return status


if __name__ == '__main__':
    sys.exit(main())
