// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A tiny test harness for the GJS tests: test() registers a case, run()
// runs them in order (awaiting async ones), prints TAP and exits with status
// 1 if any failed. The assert helpers throw on failure.

import GLib from 'gi://GLib';
import System from 'system';

const cases = [];

export function test(name, fn) {
    cases.push([name, fn]);
}

export class AssertionError extends Error {
    constructor(message) {
        super(message);
        this.name = 'AssertionError';
    }
}

function show(value) {
    if (value instanceof GLib.Error)
        return `GLib.Error(${GLib.quark_to_string(value.domain)}, ${value.code}, ${JSON.stringify(value.message)})`;
    try {
        return JSON.stringify(value) ?? String(value);
    } catch {
        return String(value);
    }
}

export function assert(condition, message = 'assertion failed') {
    if (!condition)
        throw new AssertionError(message);
}

export function assertEqual(actual, expected, message = '') {
    if (actual !== expected)
        throw new AssertionError(`${message}: expected ${show(expected)}, got ${show(actual)}`);
}

export function assertError(error, domain, code, message = 'error') {
    assert(error instanceof GLib.Error, `${message}: not a GLib.Error: ${error}`);
    assert(error.matches(domain, code),
        `${message}: expected code ${code} in ${GLib.quark_to_string(domain)}, got ${show(error)}`);
}

// Returns what fn() threw; fails if it did not throw.
export function assertThrows(fn, message = 'expected an exception') {
    try {
        fn();
    } catch (e) {
        return e;
    }
    throw new AssertionError(message);
}

export async function assertRejects(promise, message = 'expected a rejection') {
    try {
        await promise;
    } catch (e) {
        return e;
    }
    throw new AssertionError(message);
}

// Iterates the default main context until predicate() is true, failing
// after timeoutMs.
export function iterateUntil(predicate, timeoutMs = 5000) {
    const context = GLib.MainContext.default();
    const end = GLib.get_monotonic_time() + timeoutMs * 1000;
    while (!predicate()) {
        if (GLib.get_monotonic_time() > end)
            throw new AssertionError(`timed out after ${timeoutMs} ms`);
        if (!context.iteration(false))
            GLib.usleep(1000);
    }
}

// Runs a GLib.MainLoop until body(loop) calls loop.quit(), failing after
// timeoutMs. body runs from inside the loop, so that the main thread owns
// the default main context from then on.
export function runLoop(body, timeoutMs = 10000) {
    const loop = new GLib.MainLoop(null, false);
    let timedOut = false;
    let error = null;
    const guard = GLib.timeout_add(GLib.PRIORITY_DEFAULT, timeoutMs, () => {
        timedOut = true;
        loop.quit();
        return GLib.SOURCE_REMOVE;
    });
    GLib.idle_add(GLib.PRIORITY_DEFAULT, () => {
        try {
            body(loop);
        } catch (e) {
            error = e;
            loop.quit();
        }
        return GLib.SOURCE_REMOVE;
    });
    loop.run();
    if (!timedOut)
        GLib.source_remove(guard);
    if (error)
        throw error;
    assert(!timedOut, `the main loop timed out after ${timeoutMs} ms`);
}

export function delay(ms) {
    return new Promise(resolve => {
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
            resolve();
            return GLib.SOURCE_REMOVE;
        });
    });
}

export async function run() {
    let failed = 0;
    print(`1..${cases.length}`);
    for (const [i, [name, fn]] of cases.entries()) {
        try {
            // eslint-disable-next-line no-await-in-loop
            await fn();
            print(`ok ${i + 1} - ${name}`);
        } catch (e) {
            failed++;
            print(`not ok ${i + 1} - ${name}`);
            for (const line of `${e}\n${e?.stack ?? ''}`.trim().split('\n'))
                print(`# ${line}`);
        }
    }
    System.exit(failed > 0 ? 1 : 0);
}
