// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Tokens and promises: wait_async() through Gio._promisify() with await,
// and real GIO operations stopped through get_cancellable(), their error
// turned into the token's reason by translate_error().

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Ctok from 'gi://Ctok?version=1.0';

import {
    test, run, assert, assertEqual, assertError, assertRejects, delay,
} from './harness.js';

Gio._promisify(Ctok.Token.prototype, 'wait_async', 'wait_finish');
Gio._promisify(Gio.InputStream.prototype, 'read_bytes_async', 'read_bytes_finish');
Gio._promisify(Gio.Subprocess.prototype, 'wait_async', 'wait_finish');

const MY_ERROR = GLib.quark_from_string('my-error');

// `cat` with nothing to echo: reading its output never completes.
function startCat() {
    return Gio.Subprocess.new(['cat'],
        Gio.SubprocessFlags.STDIN_PIPE | Gio.SubprocessFlags.STDOUT_PIPE);
}

async function stop(process) {
    process.force_exit();
    await process.wait_async(null);
}

test('await wait_async: a deadline', async () => {
    const source = Ctok.TokenSource.new_with_timeout(20);

    assertEqual(await source.get_token().wait_async(null), true, 'wait_async');
    assertError(source.get_token().dup_error(), Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT);
});

test('await wait_async: many deadlines at once', async () => {
    const sources = Array.from({length: 200}, (_, i) => Ctok.TokenSource.new_with_timeout(1 + i % 20));

    const results = await Promise.all(sources.map(s => s.get_token().wait_async(null)));
    assert(results.every(r => r === true));
});

test('await wait_async: already cancelled', async () => {
    const source = Ctok.TokenSource.new();
    source.cancel();

    assertEqual(await source.get_token().wait_async(null), true, 'wait_async');
});

test('await wait_async: its own cancellable rejects with CANCELLED', async () => {
    const source = Ctok.TokenSource.new();
    const cancellable = new Gio.Cancellable();

    const promise = source.get_token().wait_async(cancellable);
    cancellable.cancel();
    const error = await assertRejects(promise);
    assertError(error, Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    assert(!source.is_cancelled());
    assertEqual(source.get_token().debug_count_registrations(), 0, 'registrations');
});

test('await wait_async: false for a closed source and the none token', async () => {
    const source = Ctok.TokenSource.new();

    const promise = source.get_token().wait_async(null);
    source.close();
    assertEqual(await promise, false, 'closed');
    assertEqual(await Ctok.Token.get_none().wait_async(null), false, 'none');
});

test('wait: times out, or returns when cancelled', () => {
    const source = Ctok.TokenSource.new();
    const start = GLib.get_monotonic_time();

    assertEqual(source.get_token().wait(30000), false, 'not cancelled');
    assert(GLib.get_monotonic_time() - start >= 30000);
    source.cancel();
    assertEqual(source.get_token().wait(-1), true, 'cancelled');
});

test('a read stopped by a deadline: TIMED_OUT', async () => {
    const cat = startCat();
    const source = Ctok.TokenSource.new_with_timeout(50);
    const token = source.get_token();

    const error = await assertRejects(cat.get_stdout_pipe().read_bytes_async(64,
        GLib.PRIORITY_DEFAULT, token.get_cancellable()));
    await stop(cat);

    // GIO reports a cancellation; the token knows it was the deadline.
    assertError(error, Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    const reason = token.translate_error(error);
    assertError(reason, Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT);
    assertEqual(reason.message, 'Deadline exceeded', 'message');
});

test('a read stopped by the user OR a deadline: the custom reason', async () => {
    const cat = startCat();
    const user = Ctok.TokenSource.new();
    const deadline = Ctok.TokenSource.new_with_timeout(60000);
    const operation = Ctok.TokenSource.new_linked([user.get_token(), deadline.get_token()]);
    const token = operation.get_token();

    const read = cat.get_stdout_pipe().read_bytes_async(64, GLib.PRIORITY_DEFAULT,
        token.new_cancellable());
    await delay(20);
    user.cancel_with_error(GLib.Error.new_literal(MY_ERROR, 7, 'user pressed stop'));
    const error = await assertRejects(read);
    await stop(cat);

    assertError(token.translate_error(error), MY_ERROR, 7);
    assert(!deadline.is_cancelled());
    operation.close();
    deadline.close();
});

test('a read that completes in time', async () => {
    const cat = startCat();
    const source = Ctok.TokenSource.new_with_timeout(60000);

    cat.get_stdin_pipe().write_bytes(new GLib.Bytes('hello'), null);
    const bytes = await cat.get_stdout_pipe().read_bytes_async(64, GLib.PRIORITY_DEFAULT,
        source.get_token().get_cancellable());
    await stop(cat);

    assertEqual(new TextDecoder().decode(bytes.toArray()), 'hello', 'data');
    assert(!source.is_cancelled());
    source.close();
});

test('a subprocess wait stopped by a deadline', async () => {
    const sleep = Gio.Subprocess.new(['sleep', '30'], Gio.SubprocessFlags.NONE);
    const source = Ctok.TokenSource.new_with_timeout(50);
    const token = source.get_token();

    const error = await assertRejects(sleep.wait_async(token.get_cancellable()));
    await stop(sleep);

    assertError(token.translate_error(error), Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT);
});

await run();
