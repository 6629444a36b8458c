// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Linked sources (any of, all of, a foreign GCancellable) and deadlines
// from GJS, and JS-created children leaving nothing behind.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Ctok from 'gi://Ctok?version=1.0';
import System from 'system';

import {test, run, assert, assertEqual, assertError, iterateUntil} from './harness.js';

const MY_ERROR = GLib.quark_from_string('my-error');

function customError(code = 7, message = 'custom') {
    return GLib.Error.new_literal(MY_ERROR, code, message);
}

test('linked: any parent, with its reason', () => {
    const user = Ctok.TokenSource.new();
    const shutdown = Ctok.TokenSource.new();
    const child = Ctok.TokenSource.new_linked([user.get_token(), shutdown.get_token()]);

    assert(!child.is_cancelled());
    shutdown.cancel_with_error(customError());
    assertError(child.get_token().dup_error(), MY_ERROR, 7);
    assert(!user.is_cancelled());

    const grandchild = Ctok.TokenSource.new_linked([child.get_token()]);
    assertError(grandchild.get_token().dup_error(), MY_ERROR, 7, 'born cancelled');
});

test('linked: the child never cancels its parent', () => {
    const parent = Ctok.TokenSource.new();
    const child = Ctok.TokenSource.new_linked([parent.get_token()]);

    child.cancel();
    assert(child.is_cancelled() && !parent.is_cancelled());
});

test('linked: to nothing is a plain source', () => {
    for (const tokens of [null, [], [Ctok.Token.get_none()]]) {
        const source = Ctok.TokenSource.new_linked(tokens);
        assert(!source.is_cancelled() && source.get_token().can_be_cancelled());
    }
});

test('linked: a chain of 1000', () => {
    const sources = [Ctok.TokenSource.new()];
    for (let i = 0; i < 1000; i++)
        sources.push(Ctok.TokenSource.new_linked([sources.at(-1).get_token()]));

    sources[0].cancel_with_error(customError());
    assert(sources.every(s => s.is_cancelled()));
    assertError(sources.at(-1).get_token().dup_error(), MY_ERROR, 7);
});

test('linked all: once every parent is cancelled, with the last reason', () => {
    const replicas = [0, 1, 2].map(() => Ctok.TokenSource.new());
    const done = Ctok.TokenSource.new_linked_all(replicas.map(r => r.get_token()));

    replicas[0].cancel();
    replicas[1].cancel_with_error(customError(1, 'first'));
    assert(!done.is_cancelled());
    replicas[2].cancel_with_error(customError(3, 'last'));
    assertError(done.get_token().dup_error(), MY_ERROR, 3);
});

test('linked to a cancellable', () => {
    const cancellable = new Gio.Cancellable();
    const source = Ctok.TokenSource.new_linked_to_cancellable(cancellable);

    assert(!source.is_cancelled());
    cancellable.cancel();
    assertError(source.get_token().dup_error(), Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
});

test('deadline: TIMED_OUT, get_deadline, get_timeout_ms', () => {
    const start = GLib.get_monotonic_time();
    const source = Ctok.TokenSource.new_with_timeout(100);
    const token = source.get_token();

    const deadline = source.get_deadline();
    assert(deadline >= start + 100000 && deadline <= GLib.get_monotonic_time() + 100000,
        `deadline ${deadline}`);
    assertEqual(token.get_deadline(), deadline, 'token deadline');
    assertEqual(token.deadline, deadline, 'deadline property');
    const ms = token.get_timeout_ms();
    assert(ms > 0 && ms <= 100, `timeout ${ms}`);

    // Blocks the main thread; the deadline fires on ctok's timer thread.
    assert(token.wait(10000000));
    assert(GLib.get_monotonic_time() - start >= 100000, 'not early');
    const error = token.dup_error();
    assertError(error, Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT);
    assertEqual(error.message, 'Deadline exceeded', 'message');
    assertEqual(token.get_timeout_ms(), 0, 'timeout after');
});

// G_MAXINT64, ctok's "no deadline", does not fit in a JS Number: GJS
// refuses GLib.MAXINT64 as an argument (it rounds up, out of range), and
// warns when it returns it. So JS cannot disarm a deadline with
// cancel_at(G_MAXINT64); see the report.
test('deadline: new_with_deadline, cancel_after, cancel_at', () => {
    assert(Ctok.TokenSource.new_with_deadline(GLib.get_monotonic_time() - 1).is_cancelled());

    const source = Ctok.TokenSource.new_with_deadline(GLib.get_monotonic_time() + 60000000);
    const token = source.get_token();

    source.cancel_after(30000);
    const ms = token.get_timeout_ms();
    assert(ms > 29000 && ms <= 30000, `moved earlier: ${ms}`);
    const deadline = GLib.get_monotonic_time() + 90000000;
    source.cancel_at(deadline);
    assertEqual(source.get_deadline(), deadline, 'moved later');
    assertEqual(token.get_deadline(), deadline, 'the token follows');
    source.cancel_after(0);
    assertError(token.dup_error(), Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT);
});

test('deadline: inherited down a chain, reason too', () => {
    const request = Ctok.TokenSource.new_with_timeout(50);
    const user = Ctok.TokenSource.new();
    const operation = Ctok.TokenSource.new_linked([user.get_token(), request.get_token()]);
    const step = Ctok.TokenSource.new_linked([operation.get_token()]);

    assertEqual(step.get_token().get_deadline(), request.get_deadline(), 'inherited');

    assert(step.get_token().wait(10000000));
    assertError(step.get_token().dup_error(), Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT);
    assert(!user.is_cancelled());
});

test('100000 dropped linked sources leave no registration', () => {
    const parent = Ctok.TokenSource.new();
    const token = parent.get_token();

    (() => {
        for (let i = 0; i < 100000; i++)
            Ctok.TokenSource.new_linked([token]);
    })();
    System.gc();
    iterateUntil(() => {
        System.gc();
        return token.debug_count_registrations() === 0;
    });
    assertEqual(token.debug_count_registrations(), 0, 'registrations');
});

test('closed and cancelled children leave no registration', () => {
    const parent = Ctok.TokenSource.new();
    const token = parent.get_token();
    const kept = [];

    for (let i = 0; i < 1000; i++) {
        const child = Ctok.TokenSource.new_linked([token]);
        if (i % 2)
            child.close();
        else
            child.cancel();
        kept.push(child);
    }
    assertEqual(token.debug_count_registrations(), 0, 'registrations');
});

await run();
