// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The thread rule: from bindings, callbacks arrive in a main context.
//
// A deadline cancels its token on ctok's timer thread, where JavaScript must
// never run: GJS blocks (with a CRITICAL) or crashes on a JS callback called
// there, and aborts when a JS closure's destroy notify runs there. These
// cases reach JS through register_in_context(), create_source() and
// notify::cancelled, on the main loop. The test runs with
// G_DEBUG=fatal-criticals, so a callback on the wrong thread aborts it.

import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Ctok from 'gi://Ctok?version=1.0';
import System from 'system';

import {test, run, assert, assertEqual, iterateUntil, runLoop} from './harness.js';

test('register_in_context: a deadline reaches JS on the main loop', () => {
    const source = Ctok.TokenSource.new_with_timeout(20);
    const token = source.get_token();
    const calls = [];

    runLoop(loop => {
        token.register_in_context(null, t => {
            calls.push([t === token, t.is_cancelled()]);
            loop.quit();
        });
    });
    assertEqual(JSON.stringify(calls), '[[true,true]]', 'calls');
});

test('register_in_context: many deadlines, registered outside the loop', () => {
    const count = 300;
    let calls = 0;
    const sources = [];

    for (let i = 0; i < count; i++) {
        const source = Ctok.TokenSource.new_with_timeout(1 + i % 10);
        source.get_token().register_in_context(null, () => calls++);
        sources.push(source);
    }
    // Most deadlines fire while nothing iterates the main context: the
    // callbacks wait there.
    GLib.usleep(30000);
    iterateUntil(() => calls === count);
    assert(sources.every(s => s.is_cancelled()));
});

test('register_in_context: destroy notifies of JS closures stay on the main thread', () => {
    // Removed registrations (closed, reset, unregistered, none token) and
    // run ones (deadline) all release their JS closure in the context.
    for (let i = 0; i < 200; i++) {
        const deadline = Ctok.TokenSource.new_with_timeout(1);
        deadline.get_token().register_in_context(null, () => {});

        const closed = Ctok.TokenSource.new();
        closed.get_token().register_in_context(null, () => {});
        closed.close();

        const reset = Ctok.TokenSource.new();
        reset.get_token().register_in_context(null, () => {});
        reset.try_reset();

        const unregistered = Ctok.TokenSource.new_with_timeout(1);
        unregistered.get_token().unregister(
            unregistered.get_token().register_in_context(null, () => {}));

        Ctok.Token.get_none().register_in_context(null, () => {});
    }
    GLib.usleep(20000);
    System.gc();
    iterateUntil(() => !GLib.MainContext.default().pending());
});

test('register_in_context: a context of our own', () => {
    const context = new GLib.MainContext();
    const source = Ctok.TokenSource.new_with_timeout(5);
    let calls = 0;

    source.get_token().register_in_context(context, () => calls++);
    assert(source.get_token().wait(10000000));
    // Not the default context: nothing arrives there.
    iterateUntil(() => !GLib.MainContext.default().pending());
    assertEqual(calls, 0, 'before iterating the context');
    while (calls === 0)
        context.iteration(true);
    assertEqual(calls, 1, 'after');
});

test('create_source: set_callback on a deadline', () => {
    const source = Ctok.TokenSource.new_with_timeout(20);
    const token = source.get_token();
    let calls = 0;

    runLoop(loop => {
        const gsource = token.create_source();
        gsource.set_callback(() => {
            // GLib.Source.set_callback() passes no arguments to JS.
            assert(token.is_cancelled());
            calls++;
            loop.quit();
            return GLib.SOURCE_REMOVE;
        });
        gsource.attach(null);
    });
    assertEqual(calls, 1, 'calls');
    assertEqual(token.debug_count_registrations(), 0, 'registrations');
});

test('create_source: a closure receives the token', () => {
    const source = Ctok.TokenSource.new_with_timeout(20);
    const token = source.get_token();
    const received = [];

    runLoop(loop => {
        const gsource = token.create_source();
        GObject.source_set_closure(gsource, t => {
            received.push(t);
            loop.quit();
            return GLib.SOURCE_REMOVE;
        });
        gsource.attach(null);
    });
    assertEqual(received.length, 1, 'calls');
    assert(received[0] === token, 'the token');
});

test('create_source: many deadlines, attached outside the loop', () => {
    const count = 300;
    let calls = 0;
    const keep = [];

    for (let i = 0; i < count; i++) {
        const source = Ctok.TokenSource.new_with_timeout(1 + i % 10);
        const gsource = source.get_token().create_source();
        gsource.set_callback(() => {
            calls++;
            return GLib.SOURCE_REMOVE;
        });
        gsource.attach(null);
        keep.push(source);
    }
    GLib.usleep(30000);
    iterateUntil(() => calls === count);
});

test('create_source: destroyed before the deadline', () => {
    const source = Ctok.TokenSource.new_with_timeout(10);
    const token = source.get_token();
    let calls = 0;

    (() => {
        const gsource = token.create_source();
        gsource.set_callback(() => {
            calls++;
            return GLib.SOURCE_REMOVE;
        });
        gsource.attach(null);
        assertEqual(token.debug_count_registrations(), 1, 'registered');
        gsource.destroy();
    })();
    // The registration goes with the source's last reference, which the JS
    // wrapper holds until it is collected (not at destroy(); see the report).
    System.gc();
    iterateUntil(() => {
        System.gc();
        return token.debug_count_registrations() === 0;
    });

    assert(token.wait(10000000));
    iterateUntil(() => !GLib.MainContext.default().pending());
    assertEqual(calls, 0, 'calls');
});

test('notify::cancelled: a deadline, while the main loop runs', () => {
    const notified = [];
    const sources = [];

    runLoop(loop => {
        // Created from inside the running loop: the main thread owns the
        // default main context when the deadline fires, so ctok defers the
        // notification to it.
        const source = Ctok.TokenSource.new_with_timeout(20);
        source.get_token().connect('notify::cancelled', t => {
            notified.push(t.cancelled);
            loop.quit();
        });
        sources.push(source);
    });
    assertEqual(JSON.stringify(notified), '[true]', 'notified');
});

test('notify::cancelled: cancelled from JS', () => {
    const source = Ctok.TokenSource.new();
    const notified = [];

    source.get_token().connect('notify::cancelled', t => notified.push(t.cancelled));
    source.cancel();
    iterateUntil(() => notified.length > 0);
    assertEqual(JSON.stringify(notified), '[true]', 'notified');
});

await run();
