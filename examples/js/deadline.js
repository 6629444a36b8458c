#!/usr/bin/env -S gjs -m
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A deadline around a GIO read that never completes, from GJS.
//
// The read is stopped by whichever comes first: the user (Ctrl+C, through
// TokenSource.cancel_on_unix_signal()) or the deadline. The operation runs
// under a token linked to both, and the reason tells them apart.
//
// From the build tree:
//   meson devenv -C _build -w . gjs -m examples/js/deadline.js
//   ... --timeout=500             give up after half a second
//   ... --write-after=200         data arrives after 200 ms: the read succeeds
//
// Exit status: 0 if data was read, 1 if the deadline passed, 130 on Ctrl+C.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Ctok from 'gi://Ctok?version=1.0';
import System from 'system';

const SIGINT = 2;

function parseArgs(args) {
    const options = {timeout: 3000, writeAfter: -1};
    for (const arg of args) {
        const [, name, value] = arg.match(/^--([a-z-]+)=(\d+)$/) ?? [];
        if (name === 'timeout')
            options.timeout = Number(value);
        else if (name === 'write-after')
            options.writeAfter = Number(value);
        else
            throw new Error(`usage: deadline.js [--timeout=MS] [--write-after=MS], not ${arg}`);
    }
    return options;
}

Gio._promisify(Gio.InputStream.prototype, 'read_bytes_async', 'read_bytes_finish');

const {timeout, writeAfter} = parseArgs(System.programArgs);

// `cat` with nothing to echo: reading its output never completes.
const cat = Gio.Subprocess.new(['cat'],
    Gio.SubprocessFlags.STDIN_PIPE | Gio.SubprocessFlags.STDOUT_PIPE);
if (writeAfter >= 0) {
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, writeAfter, () => {
        cat.get_stdin_pipe().write_bytes(new GLib.Bytes('hello\n'), null);
        return GLib.SOURCE_REMOVE;
    });
}

// The user's source, cancelled by Ctrl+C (delivered in the default main
// context, which GJS runs while the script awaits), and the deadline's.
const user = Ctok.TokenSource.new();
const deadline = Ctok.TokenSource.new_with_timeout(timeout);
const operation = Ctok.TokenSource.new_linked([user.get_token(), deadline.get_token()]);
let status;

try {
    user.cancel_on_unix_signal(SIGINT);
    const token = operation.get_token();

    // Called in this thread's main context, whoever cancels: for the
    // deadline, that is ctok's timer thread, where JavaScript cannot run.
    // The cancelling thread may still be on its way there when the read
    // fails (the token's GCancellable is cancelled first): the callback
    // says when it has run.
    let callbackRan;
    const ran = new Promise(resolve => (callbackRan = resolve));
    token.register_in_context(null, t => {
        print(`token cancelled: ${t.dup_error().message}`);
        callbackRan();
    });

    print(`reading, for at most ${token.get_timeout_ms()} ms (Ctrl+C cancels)...`);
    let error = null;
    try {
        const bytes = await cat.get_stdout_pipe().read_bytes_async(64,
            GLib.PRIORITY_DEFAULT, token.get_cancellable());
        print(`read ${JSON.stringify(new TextDecoder().decode(bytes.toArray()))}`);
    } catch (e) {
        if (!(e instanceof GLib.Error))
            throw e;
        // GIO says "cancelled"; the token knows why.
        error = token.translate_error(e);
    }
    if (token.is_cancelled())
        await ran;

    print(`user cancelled: ${user.is_cancelled()}, deadline passed: ${deadline.is_cancelled()}`);
    if (error === null) {
        status = 0;
    } else if (error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.TIMED_OUT)) {
        print(`gave up: ${error.message}`);
        status = 1;
    } else if (error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED)) {
        print(`stopped: ${error.message}`);
        status = 130;
    } else {
        print(`failed: ${error.message}`);
        status = 2;
    }
} finally {
    // What `with` does in Python: release the links and the deadline.
    operation.close();
    deadline.close();
    user.close();
    cat.force_exit();
    cat.wait(null);
}

System.exit(status);
