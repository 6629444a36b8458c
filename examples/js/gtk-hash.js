// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A GTK 4 window whose job stops on Cancel, on a time limit, or when the
// window closes: examples/gtk/gtk-hash.c in JavaScript (GJS), with the same
// window and the same output.
//
// Start hashes a file (SHA-256) with asynchronous GIO reads of 1 MiB on the
// main thread. Without FILE, the file is a sparse temporary file of --size
// MiB (zeros, nothing written to disk), read at most at --rate MiB/s so that
// there is time to press Cancel. Each run gets a new Ctok.TokenSource:
//
//  - Cancel cancels it through source.cancel_on_signal(cancelButton,
//    'clicked'), closing the window through 'close-request';
//  - the time limit is a deadline, source.cancel_after(), whose reason is
//    Gio.IOErrorEnum.TIMED_OUT instead of CANCELLED;
//  - a read in flight gets the token's Gio.Cancellable, and
//    token.translate_error() turns GIO's CANCELLED into the token's reason;
//    a pause between two reads is cut short by token.create_source(), a
//    GLib.Source that dispatches in the main thread whoever cancels (GJS
//    runs JavaScript on that thread only: Token.register() is not for it);
//  - the Cancel button's sensitivity is bound to the token's 'cancelled'
//    property, the Start button's to the window's 'running'.
//
// It prints one line per event on stdout, as the C version does: "layout
// NAME X Y W H", "ready", "started ...", "progress N%", "cancelled after N
// ms (...)", "timed out after N ms (...)", "done HASH", "status TEXT"...
// Ctrl+W closes the window.
//
// From the build tree:
//   meson devenv -C _build -w . gjs -m examples/js/gtk-hash.js
//   ... --size=1024 --rate=0        1 GiB as fast as possible
//   ... /path/to/some/file          hash that file

import Ctok from 'gi://Ctok?version=1.0';
import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Gtk from 'gi://Gtk?version=4.0';
import Pango from 'gi://Pango';
import System from 'system';

const MIB = 1024 * 1024;
const CHUNK_SIZE = MIB;
const TIME_LIMITS_S = [0, 1, 2, 5]; // the "Time limit" buttons; 0 is none

function say(line) {
    print(line);
}

function formatMs(us) {
    return (us / 1000).toFixed(1);
}

// What the job hashes: opened once, read again from the start each run.
class Input {
    constructor(path, sizeMib, rateMib) {
        this.rate = rateMib * MIB;
        const rateText = rateMib > 0 ? `, at most ${rateMib} MiB/s` : '';
        if (path === null) {
            // A sparse temporary file: nothing is written, it reads as zeros,
            // and it is unlinked at once, so nothing is left behind.
            this.size = sizeMib * MIB;
            const [file, iostream] = Gio.File.new_tmp('ctok-gtk-hash-XXXXXX');
            try {
                iostream.truncate(this.size, null);
                iostream.close(null);
                this.stream = file.read(null);
            } finally {
                file.delete(null);
            }
            this.description =
                `SHA-256 of ${sizeMib} MiB of zeros (a sparse temporary file)${rateText}.`;
        } else {
            const file = Gio.File.new_for_commandline_arg(path);
            this.stream = file.read(null);
            const info = this.stream.query_info(Gio.FILE_ATTRIBUTE_STANDARD_SIZE, null);
            this.size = info.get_size();
            this.description = `SHA-256 of ${file.get_parse_name()} ` +
                `(${GLib.format_size(this.size)})${rateText}.`;
        }
    }
}

// One run of the hashing job.
class Job {
    constructor(window, timeLimitS) {
        this.window = window;
        this.source = Ctok.TokenSource.new(); // the window's: Cancel, close, limit
        this.token = this.source.get_token(); // the job's
        this.checksum = GLib.Checksum.new(GLib.ChecksumType.SHA256);
        this.done = 0;
        this.percent = -1;
        this.startedAt = GLib.get_monotonic_time();
        this.reading = false;
        this.pauseId = 0;

        // Everything that may stop the job cancels its source.
        if (timeLimitS > 0)
            this.source.cancel_after(timeLimitS * 1000);
        this.clickedId = this.source.cancel_on_signal(window.cancelButton, 'clicked');
        this.closeRequestId = this.source.cancel_on_signal(window, 'close-request');

        // Cancel is clickable until the token is cancelled, whatever cancels
        // it; the notification comes in this thread, also for the deadline.
        this.cancelBinding = this.token.bind_property('cancelled',
            window.cancelButton, 'sensitive',
            GObject.BindingFlags.SYNC_CREATE | GObject.BindingFlags.INVERT_BOOLEAN);

        // Dispatched in this thread's main context when the token is cancelled.
        this.cancelSource = this.token.create_source();
        this.cancelSource.set_callback(() => this._onCancelled());
        this.cancelSource.attach(null);
    }

    start() {
        try {
            this.window.input.stream.seek(0, GLib.SeekType.SET, null);
        } catch (error) {
            this._stop(error, 'at the start');
            return;
        }
        this._readNext();
    }

    _readNext() {
        this.reading = true;
        this.window.input.stream.read_bytes_async(CHUNK_SIZE, GLib.PRIORITY_DEFAULT,
            this.token.get_cancellable(), (stream, result) => this._onChunkRead(stream, result));
    }

    _onChunkRead(stream, result) {
        this.reading = false;
        let bytes;
        try {
            bytes = stream.read_bytes_finish(result);
        } catch (error) {
            // GIO reports CANCELLED whoever cancelled; the token knows the
            // real reason, such as TIMED_OUT for the deadline.
            this._stop(this.token.translate_error(error), 'in a read');
            return;
        }

        if (bytes.get_size() === 0) {
            this._stop(null, null);
            return;
        }

        this.checksum.update(bytes.toArray());
        this.done += bytes.get_size();
        this.updateProgress();

        // The read may have completed just as the token was cancelled.
        try {
            this.token.set_error_if_cancelled();
        } catch (reason) {
            this._stop(reason, 'after a read');
            return;
        }

        const rate = this.window.input.rate;
        if (rate > 0) {
            // Keep to the rate: wait until this many bytes are due.
            const due = this.startedAt + Math.floor(this.done / rate * 1e6);
            const waitMs = Math.floor((due - GLib.get_monotonic_time()) / 1000);
            if (waitMs > 0) {
                this.pauseId = GLib.timeout_add(GLib.PRIORITY_DEFAULT, waitMs, () => {
                    this.pauseId = 0;
                    this._readNext();
                    return GLib.SOURCE_REMOVE;
                });
                return;
            }
        }

        this._readNext();
    }

    _onCancelled() {
        // The source dispatches once; GLib destroys it when this returns.
        this.cancelSource = null;

        // A read in flight fails by itself, through the token's cancellable,
        // and _onChunkRead() stops the job then; only a pause needs cutting
        // short.
        if (this.pauseId) {
            GLib.source_remove(this.pauseId);
            this.pauseId = 0;
            try {
                this.token.set_error_if_cancelled();
            } catch (reason) {
                this._stop(reason, 'in a pause');
            }
        }
        return GLib.SOURCE_REMOVE;
    }

    updateProgress() {
        const size = this.window.input.size;
        const percent = size > 0 ? Math.floor(this.done * 100 / size) : 100;
        if (percent === this.percent)
            return;
        this.percent = percent;
        this.window.progressBar.set_fraction(percent / 100);
        this.window.progressBar.set_text(`${percent} %`);
        say(`progress ${percent}%`);
    }

    // Ends the job: error is why it stopped early, or null if it is done.
    _stop(error, when) {
        const window = this.window;
        const stoppedAt = GLib.get_monotonic_time();

        // Nothing may cancel a job that is over.
        if (this.cancelSource !== null) {
            this.cancelSource.destroy();
            this.cancelSource = null;
        }
        window.cancelButton.disconnect(this.clickedId);
        window.disconnect(this.closeRequestId);
        this.cancelBinding.unbind();
        window.cancelButton.set_sensitive(false);

        if (error === null) {
            const digest = this.checksum.get_string();
            say(`done ${digest}`);
            window.hashLabel.set_text(`SHA-256: ${digest}`);
            window.setStatus('Done');
        } else if (error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.TIMED_OUT)) {
            // The deadline stays readable once the token is cancelled.
            const deadline = this.token.get_deadline();
            say(`timed out after ${formatMs(stoppedAt - this.startedAt)} ms ` +
                `(${formatMs(stoppedAt - deadline)} ms after the deadline, ${when})`);
            window.setStatus('Timed out');
        } else if (error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED)) {
            if (window.cancelRequestedAt) {
                const latency = formatMs(stoppedAt - window.cancelRequestedAt);
                say(`cancelled after ${latency} ms (${when})`);
            } else {
                say(`cancelled (${when})`);
            }
            window.setStatus('Cancelled');
        } else {
            say(`failed: ${error.message}`);
            window.setStatus(`Failed: ${error.message}`);
        }

        window.jobStopped();
    }
}

const HashWindow = GObject.registerClass({
    GTypeName: 'CtokExampleHashWindowJs',
    Properties: {
        'running': GObject.ParamSpec.boolean('running', 'Running', 'Whether a job runs',
            GObject.ParamFlags.READABLE, false),
    },
}, class HashWindow extends Gtk.ApplicationWindow {
    constructor(application, input) {
        super({application, title: 'ctok hash (JavaScript)', defaultWidth: 480});
        this.input = input;
        this._job = null;
        this.timeLimitS = 0;
        this.cancelRequestedAt = 0;
        this._closePending = false;
        this._afterPaintId = 0;

        const box = new Gtk.Box({
            orientation: Gtk.Orientation.VERTICAL, spacing: 12,
            marginStart: 18, marginEnd: 18, marginTop: 18, marginBottom: 18,
        });
        this.set_child(box);

        box.append(new Gtk.Label({label: input.description, wrap: true, xalign: 0}));

        const row = new Gtk.Box({spacing: 12});
        row.append(new Gtk.Label({label: 'Time limit:'}));
        this._limitBox = new Gtk.Box({cssClasses: ['linked']});
        this._limitButtons = [];
        for (const limit of TIME_LIMITS_S) {
            const button = new Gtk.ToggleButton({label: limit ? `${limit} s` : 'None'});
            if (this._limitButtons.length > 0)
                button.set_group(this._limitButtons[0]);
            else
                button.set_active(true);
            button.connect('toggled', () => this._onLimitToggled(button, limit));
            this._limitBox.append(button);
            this._limitButtons.push(button);
        }
        row.append(this._limitBox);
        box.append(row);

        this.progressBar = new Gtk.ProgressBar({showText: true, text: '0 %'});
        box.append(this.progressBar);

        this._statusLabel = new Gtk.Label({label: 'Ready', xalign: 0, cssClasses: ['heading']});
        box.append(this._statusLabel);

        this.hashLabel = new Gtk.Label({
            xalign: 0, selectable: true, cssClasses: ['monospace'],
            ellipsize: Pango.EllipsizeMode.MIDDLE,
        });
        box.append(this.hashLabel);

        const buttons = new Gtk.Box({spacing: 12, halign: Gtk.Align.END});
        this.cancelButton = new Gtk.Button({
            label: '_Cancel', useUnderline: true, sensitive: false,
        });
        // Connected before any job's handler, so it runs first: the time the
        // cancellation was asked for, to measure how long the job takes to stop.
        this.cancelButton.connect('clicked', () => {
            this.cancelRequestedAt = GLib.get_monotonic_time();
            say('cancel clicked');
        });
        buttons.append(this.cancelButton);
        this._startButton = new Gtk.Button({
            label: '_Start', useUnderline: true, cssClasses: ['suggested-action'],
        });
        this._startButton.connect('clicked', () => this._onStartClicked());
        buttons.append(this._startButton);
        box.append(buttons);

        // Start and the time limit only while no job runs.
        const flags = GObject.BindingFlags.SYNC_CREATE | GObject.BindingFlags.INVERT_BOOLEAN;
        this.bind_property('running', this._startButton, 'sensitive', flags);
        this.bind_property('running', this._limitBox, 'sensitive', flags);

        this.connect('close-request', () => {
            if (this._job !== null)
                this.cancelRequestedAt = GLib.get_monotonic_time();
            say('close requested');
            return false;
        });
        this.connect('map', () => this._onMap());
    }

    get running() {
        return this._job !== null;
    }

    setStatus(status) {
        this._statusLabel.set_text(status);
        say(`status ${status}`);
    }

    _onStartClicked() {
        if (this._job !== null)
            return;
        this._job = new Job(this, this.timeLimitS);
        this.cancelRequestedAt = 0;
        this.notify('running');
        this.hashLabel.set_text('');
        this._job.updateProgress();
        if (this.timeLimitS)
            say(`started (time limit ${this.timeLimitS} s)`);
        else
            say('started (no time limit)');
        this.setStatus('Hashing…');
        this._job.start();
    }

    jobStopped() {
        this._job = null;
        this.notify('running');
        // The window was asked to close while the job ran: now it can.
        if (this._closePending)
            this.close();
    }

    vfunc_close_request() {
        // The job's source was cancelled by the signal's handlers already:
        // close once the job has stopped, which is quick.
        if (this._job !== null) {
            this._closePending = true;
            return true;
        }
        return super.vfunc_close_request();
    }

    _onLimitToggled(button, limit) {
        if (!button.get_active())
            return;
        this.timeLimitS = limit;
        say(limit ? `time limit ${limit} s` : 'time limit none');
    }

    _onMap() {
        // After the first frame, the widgets have their places.
        const clock = this.get_frame_clock();
        if (this._afterPaintId === 0 && clock !== null) {
            this._afterPaintId = clock.connect('after-paint', () => {
                clock.disconnect(this._afterPaintId);
                this._afterPaintId = 0;
                this._printLayout('start', this._startButton);
                this._printLayout('cancel', this.cancelButton);
                TIME_LIMITS_S.forEach((limit, i) =>
                    this._printLayout(`limit-${limit}`, this._limitButtons[i]));
                say('ready');
            });
        }
    }

    _printLayout(name, widget) {
        const [ok, bounds] = widget.compute_bounds(this);
        if (!ok)
            return;
        // From the window's coordinates to its X window's (shadows, if any).
        const [surfaceX, surfaceY] = this.get_surface_transform();
        const r = Math.trunc;
        say(`layout ${name} ${r(bounds.origin.x + surfaceX)} ${r(bounds.origin.y + surfaceY)} ` +
            `${r(bounds.size.width)} ${r(bounds.size.height)}`);
    }
});

function usage() {
    return 'Usage: gjs -m gtk-hash.js [--size=MIB] [--rate=MIB] [FILE]\n\n' +
        'Hash a file, with Cancel and a time limit. Without FILE, hashes a ' +
        'generated sparse file.\n\n' +
        '  --size=MIB   size of the generated file in MiB (default: 256)\n' +
        '  --rate=MIB   read at most MIB MiB per second, 0 for no limit (default: 32)\n';
}

function parseArguments(argv) {
    const options = {file: null, size: 256, rate: 32};
    for (let i = 0; i < argv.length; i++) {
        const match = /^--(size|rate)(?:=(.*))?$/.exec(argv[i]);
        if (argv[i] === '--help' || argv[i] === '-h') {
            print(usage());
            System.exit(0);
        } else if (match) {
            const value = Number(match[2] ?? argv[++i]);
            if (!Number.isFinite(value) || value < 0)
                throw new Error(`--${match[1]} needs a number, not negative`);
            options[match[1]] = match[1] === 'size' ? Math.trunc(value) : value;
        } else if (argv[i].startsWith('-') || options.file !== null) {
            throw new Error(`unexpected argument ${argv[i]}`);
        } else {
            options.file = argv[i];
        }
    }
    return options;
}

function main(argv) {
    let options, input;
    try {
        options = parseArguments(argv);
    } catch (error) {
        printerr(`gtk-hash.js: ${error.message}\n\n${usage()}`);
        return 2;
    }
    try {
        input = new Input(options.file, options.size, options.rate);
    } catch (error) {
        printerr(`gtk-hash.js: ${error.message}`);
        return 1;
    }

    const app = new Gtk.Application({
        applicationId: 'org.ctok.examples.GtkHashJs',
        flags: Gio.ApplicationFlags.NON_UNIQUE,
    });
    app.connect('startup', () => {
        // GtkWindow's own "window.close" action, as the close button does.
        app.set_accels_for_action('window.close', ['<Control>w']);
    });
    app.connect('activate', () => {
        const window = app.get_active_window() ?? new HashWindow(app, input);
        window.present();
    });
    const status = app.run([System.programInvocationName]);
    input.stream.close(null);
    return status;
}

System.exit(main(ARGV));
