# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Which thread runs Python code when a token is cancelled.
#
# The rule: from bindings, callbacks arrive in a main context
# (register_in_context(), create_source(), notify::cancelled), whatever
# thread cancels. The one way to get called on the cancelling thread is a
# handler on the token's Gio.Cancellable, which PyGObject runs with the GIL
# taken: for a deadline, that is ctok's timer thread.

import threading

import pytest
from gi.repository import Ctok, GLib, GObject

from conftest import drain, run_until


def native_thread_name():
    with open('/proc/self/task/%d/comm' % threading.get_native_id()) as f:
        return f.read().strip()


def test_cancellable_handler_runs_on_the_timer_thread():
    for _ in range(200):
        source = Ctok.TokenSource.new_with_timeout(1)
        cancellable = source.get_token().get_cancellable()
        seen = []
        done = threading.Event()

        def on_cancelled(*args):
            seen.append((threading.current_thread() is threading.main_thread(),
                         native_thread_name()))
            done.set()

        handler = cancellable.connect(on_cancelled)
        assert done.wait(10)
        # Removed outside the handler, without Gio.Cancellable.disconnect(),
        # which would deadlock inside it.
        if handler:
            GObject.signal_handler_disconnect(cancellable, handler)
        if seen != [(False, 'ctok-timer')]:
            # Born cancelled (1 ms is short): connect() ran it on this thread.
            assert seen == [(True, native_thread_name())]


def test_many_deadlines_with_python_handlers():
    count = 500
    done = threading.Semaphore(0)
    sources = []
    threads = set()

    for i in range(count):
        source = Ctok.TokenSource.new_with_timeout(1 + i % 20)
        sources.append(source)

        def on_cancelled(*args):
            threads.add(native_thread_name())
            done.release()

        source.get_token().get_cancellable().connect(on_cancelled)

    for _ in range(count):
        assert done.acquire(timeout=10)
    assert 'ctok-timer' in threads
    assert all(source.is_cancelled() for source in sources)


def test_python_threads_cancel_while_main_waits():
    for _ in range(50):
        source = Ctok.TokenSource.new()
        token = source.get_token()
        worker = threading.Thread(target=source.cancel)

        worker.start()
        # wait() releases the GIL: the worker can run.
        assert token.wait(10_000_000)
        worker.join()


def test_register_in_context_delivers_on_the_main_loop(main_loop):
    source = Ctok.TokenSource.new_with_timeout(20)
    token = source.get_token()
    calls = []

    def on_cancelled(t, data):
        calls.append((t, data, threading.current_thread() is threading.main_thread(),
                      t.is_cancelled()))
        main_loop.quit()

    assert token.register_in_context(None, on_cancelled, 'data') != 0
    main_loop.run()

    assert calls == [(token, 'data', True, True)]


def test_register_in_context_many_deadlines(main_loop):
    count = 200
    calls = []

    def on_cancelled(t):
        calls.append(threading.current_thread() is threading.main_thread())
        if len(calls) == count:
            main_loop.quit()

    sources = [Ctok.TokenSource.new_with_timeout(1 + i % 10) for i in range(count)]
    for source in sources:
        source.get_token().register_in_context(None, on_cancelled)
    main_loop.run()

    assert calls == [True] * count


def test_register_in_context_on_an_already_cancelled_token_is_not_synchronous():
    source = Ctok.TokenSource.new()
    source.cancel()
    calls = []

    assert source.get_token().register_in_context(None, lambda t: calls.append(t)) == 0
    assert calls == []
    run_until(lambda: calls)
    assert calls == [source.get_token()]


def test_register_in_context_of_another_thread():
    context = GLib.MainContext.new()
    loop = GLib.MainLoop.new(context, False)
    thread = threading.Thread(target=loop.run)
    calls = []

    source = Ctok.TokenSource.new_with_timeout(10)

    def on_cancelled(t):
        calls.append(threading.current_thread() is thread)
        loop.quit()

    source.get_token().register_in_context(context, on_cancelled)
    thread.start()
    thread.join(10)

    assert not thread.is_alive()
    assert calls == [True]


def test_register_in_context_with_thread_default_context():
    context = GLib.MainContext.new()
    calls = []

    context.push_thread_default()
    try:
        source = Ctok.TokenSource.new()
        source.get_token().register_in_context(None, lambda t: calls.append(t))
    finally:
        context.pop_thread_default()

    source.cancel()
    drain()  # Not the global default context.
    assert calls == []
    run_until(lambda: calls, context=context)


def test_create_source_set_callback(main_loop):
    source = Ctok.TokenSource.new_with_timeout(20)
    token = source.get_token()
    calls = []

    def on_cancelled(data):
        # GLib.Source.set_callback() passes the user data, not the token.
        calls.append((data, threading.current_thread() is threading.main_thread(),
                      token.is_cancelled()))
        main_loop.quit()
        return GLib.SOURCE_REMOVE

    gsource = token.create_source()
    gsource.set_callback(on_cancelled, 'data')
    gsource.attach(None)
    main_loop.run()

    assert calls == [('data', True, True)]
    assert gsource.is_destroyed()
    assert token.debug_count_registrations() == 0


def test_create_source_closure_receives_the_token(main_loop):
    source = Ctok.TokenSource.new()
    token = source.get_token()
    calls = []

    def on_cancelled(t):
        calls.append(t)
        main_loop.quit()
        return GLib.SOURCE_REMOVE

    gsource = token.create_source()
    GObject.source_set_closure(gsource, on_cancelled)
    gsource.attach(None)
    threading.Thread(target=source.cancel).start()
    main_loop.run()

    assert calls == [token]


def test_create_source_destroyed_before_cancel():
    source = Ctok.TokenSource.new()
    token = source.get_token()
    calls = []

    gsource = token.create_source()
    gsource.set_callback(lambda *args: calls.append(args))
    gsource.attach(None)
    assert token.debug_count_registrations() == 1

    gsource.destroy()
    # The registration goes with the source's last reference (not at
    # destroy(), whatever the documentation says).
    del gsource
    assert token.debug_count_registrations() == 0
    source.cancel()
    drain()
    assert calls == []


def test_notify_cancelled_in_the_main_context(main_loop):
    source = Ctok.TokenSource.new()
    token = source.get_token()
    calls = []

    def on_notify(t, pspec):
        calls.append((pspec.name, t.props.cancelled,
                      threading.current_thread() is threading.main_thread()))
        main_loop.quit()

    token.connect('notify::cancelled', on_notify)
    # Started from the running loop: the main thread owns the main context
    # when the worker cancels.
    GLib.idle_add(lambda: threading.Thread(target=source.cancel).start())
    main_loop.run()

    assert calls == [('cancelled', True, True)]


def test_notify_cancelled_from_a_deadline(main_loop):
    calls = []
    sources = []

    def start():
        source = Ctok.TokenSource.new_with_timeout(10)
        source.get_token().connect('notify::cancelled', lambda t, pspec: (
            calls.append(threading.current_thread() is threading.main_thread()),
            main_loop.quit()))
        sources.append(source)

    GLib.idle_add(start)
    main_loop.run()

    assert calls == [True]


def test_notify_cancelled_while_the_main_thread_is_busy():
    source = Ctok.TokenSource.new()
    calls = []

    source.get_token().connect('notify::cancelled', lambda t, pspec: calls.append(
        threading.current_thread() is threading.main_thread()))
    # Busy elsewhere, not in the main loop, when the worker cancels.
    worker = threading.Thread(target=source.cancel)
    worker.start()
    worker.join()
    run_until(lambda: calls)

    assert calls == [True]
