// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Token sources and tokens from GJS: states, reasons as GLib.Error,
// closing, resetting, the none token, the cancel_on_* helpers, and what GJS
// does not get.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Ctok from 'gi://Ctok?version=1.0';

import {
    test, run, assert, assertEqual, assertError, assertThrows, iterateUntil, runLoop,
} from './harness.js';

const MY_ERROR = GLib.quark_from_string('my-error');

function customError(code = 7, message = 'custom') {
    return GLib.Error.new_literal(MY_ERROR, code, message);
}

function thrownBy(token) {
    return assertThrows(() => token.set_error_if_cancelled(), 'set_error_if_cancelled() did not throw');
}

test('version', () => {
    assertEqual(Ctok.get_major_version(), 1, 'major');
    assert(Ctok.check_version(1, 0, 0), 'compatible with 1.0.0');
    assert(!Ctok.check_version(99, 0, 0), 'not with 99');
});

test('register() is C only', () => {
    // The documented rule: its callbacks would run on whatever thread
    // cancels, where JavaScript cannot run.
    assertEqual(Ctok.Token.prototype.register, undefined, 'Token.prototype.register');
    assertEqual(Ctok.Token.prototype.rewrite_error, undefined, 'Token.prototype.rewrite_error');
    assertEqual(typeof Ctok.Token.prototype.register_in_context, 'function', 'register_in_context');
    assertEqual(typeof Ctok.Token.prototype.create_source, 'function', 'create_source');
    assertEqual(typeof Ctok.Token.prototype.translate_error, 'function', 'translate_error');
});

test('a new source', () => {
    const source = Ctok.TokenSource.new();
    const token = source.get_token();

    assert(token instanceof Ctok.Token);
    assert(source.get_token() === token, 'the same token');
    assert(!source.is_cancelled() && !token.is_cancelled() && !token.cancelled);
    assert(token.can_be_cancelled());
    assertEqual(token.set_error_if_cancelled(), false, 'set_error_if_cancelled');
    assertEqual(token.dup_error(), null, 'dup_error');
    // No deadline: G_MAXINT64, which a JS Number cannot hold (GJS warns),
    // so JS asks get_timeout_ms() instead.
    assertEqual(token.get_timeout_ms(), -1, 'timeout');
});

test('cancel: G_IO_ERROR_CANCELLED', () => {
    const source = Ctok.TokenSource.new();
    const token = source.get_token();

    source.cancel();

    assert(source.is_cancelled() && token.is_cancelled() && token.cancelled);
    const error = thrownBy(token);
    assertError(error, Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    assert(error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED), 'matches the enum too');
    assertError(token.dup_error(), Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
});

test('cancel_with_error: a custom reason', () => {
    const source = Ctok.TokenSource.new();
    const token = source.get_token();

    source.cancel_with_error(customError());
    source.cancel(); // The first reason wins.

    const error = thrownBy(token);
    assertError(error, MY_ERROR, 7);
    assertEqual(error.message, 'custom', 'message');
    assertEqual(GLib.quark_to_string(error.domain), 'my-error', 'domain');
    assertError(token.dup_error(), MY_ERROR, 7);
});

test('timeout 0: born G_IO_ERROR_TIMED_OUT', () => {
    const token = Ctok.TokenSource.new_with_timeout(0).get_token();

    const error = thrownBy(token);
    assertError(error, Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT);
    assertEqual(error.message, 'Deadline exceeded', 'message');
});

test('the none token', () => {
    const none = Ctok.Token.get_none();

    assert(Ctok.Token.get_none() === none);
    assert(!none.can_be_cancelled() && !none.is_cancelled());
    assertEqual(none.get_cancellable(), null, 'get_cancellable');
    assertEqual(none.wait(-1), false, 'wait returns at once');
    assert(!none.new_cancellable().is_cancelled());
});

test('get_cancellable and new_cancellable', () => {
    const source = Ctok.TokenSource.new();
    const token = source.get_token();
    const shared = token.get_cancellable();
    const own = token.new_cancellable();

    assert(token.get_cancellable() === shared, 'shared');
    own.cancel();
    assert(!token.is_cancelled(), 'a new cancellable is one way');
    source.cancel_with_error(customError());
    assert(shared.is_cancelled());

    const error = assertThrows(() => shared.set_error_if_cancelled());
    assertError(error, Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    assertError(token.translate_error(error), MY_ERROR, 7, 'translated');
});

test('cancelling the shared cancellable cancels the token', () => {
    const source = Ctok.TokenSource.new();

    source.get_token().get_cancellable().cancel();

    assertError(source.get_token().dup_error(), Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
});

test('translate_error', () => {
    const source = Ctok.TokenSource.new();
    const token = source.get_token();
    const cancelled = new Gio.IOErrorEnum({code: Gio.IOErrorEnum.CANCELLED, message: 'cancelled'});
    const notFound = new Gio.IOErrorEnum({code: Gio.IOErrorEnum.NOT_FOUND, message: 'not found'});

    assertError(token.translate_error(cancelled), Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    assertEqual(token.translate_error(null), null, 'null');
    source.cancel_with_error(customError());
    assertError(token.translate_error(cancelled), MY_ERROR, 7);
    assertError(token.translate_error(notFound), Gio.io_error_quark(), Gio.IOErrorEnum.NOT_FOUND);
});

test('close without cancelling', () => {
    const source = Ctok.TokenSource.new_with_timeout(60000);
    const token = source.get_token();

    source.close();
    source.close();

    assert(!token.is_cancelled());
    assertEqual(token.get_timeout_ms(), -1, 'deadline gone');
    const start = GLib.get_monotonic_time();
    assertEqual(token.wait(10000000), false, 'never cancelled: wait returns at once');
    assert(GLib.get_monotonic_time() - start < 5000000);
});

test('try_reset', () => {
    const source = Ctok.TokenSource.new();
    const token = source.get_token();
    let calls = 0;

    token.register_in_context(null, () => calls++);
    assertEqual(token.debug_count_registrations(), 1, 'registered');
    assert(source.try_reset());
    assertEqual(token.debug_count_registrations(), 0, 'reset');

    source.cancel();
    runLoop(loop => GLib.idle_add(GLib.PRIORITY_DEFAULT_IDLE, () => {
        loop.quit();
        return GLib.SOURCE_REMOVE;
    }));
    assertEqual(calls, 0, 'calls');
    assert(!source.try_reset());
});

test('unregister', () => {
    const source = Ctok.TokenSource.new();
    const token = source.get_token();
    const calls = [];

    const id = token.register_in_context(null, () => calls.push('removed'));
    token.register_in_context(null, () => calls.push('kept'));
    assert(id !== 0);
    assert(token.unregister(id));
    assert(!token.unregister(id));
    assert(!token.unregister_nowait(0));

    source.cancel();
    iterateUntil(() => calls.length > 0);
    assertEqual(calls.join(), 'kept');
});

test('cancel_on_signal', () => {
    const source = Ctok.TokenSource.new();
    const action = Gio.SimpleAction.new('stop', null);

    const handler = source.cancel_on_signal(action, 'activate');
    assert(handler > 0);
    assert(!source.is_cancelled());
    action.activate(null);
    assertError(source.get_token().dup_error(), Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
});

test('cancel_on_unix_signal', () => {
    const SIGUSR1 = 10;
    const source = Ctok.TokenSource.new();

    assert(source.cancel_on_unix_signal(SIGUSR1) > 0);
    GLib.spawn_command_line_sync(`kill -USR1 ${new Gio.Credentials().get_unix_pid()}`);
    iterateUntil(() => source.is_cancelled());

    const error = source.get_token().dup_error();
    assertError(error, Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    assert(error.message.includes('SIGUSR1'), error.message);
});

await run();
