# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Tokens stopping real GIO operations, and waiting on tokens.

import os
import threading

import pytest
from gi.repository import Ctok, Gio, GLib

from conftest import run_until

MY_ERROR = GLib.quark_from_string('my-error')


@pytest.fixture
def pipe_stream():
    """A Gio.InputStream on a pipe nobody writes to: reads never complete."""
    read_fd, write_fd = os.pipe()
    stream = Gio.UnixInputStream.new(read_fd, True)
    yield stream
    stream.close(None)
    os.close(write_fd)


def test_async_read_stopped_by_a_deadline(pipe_stream, main_loop):
    source = Ctok.TokenSource.new_with_timeout(50)
    token = source.get_token()
    results = []

    def on_read(stream, result):
        try:
            stream.read_bytes_finish(result)
            results.append('read')
        except GLib.Error as error:
            results.append(error)
        main_loop.quit()

    pipe_stream.read_bytes_async(64, GLib.PRIORITY_DEFAULT, token.get_cancellable(), on_read)
    main_loop.run()

    [error] = results
    # GIO reports a cancellation; the token says it was the deadline.
    assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    reason = token.translate_error(error)
    assert reason.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)
    assert reason.message == 'Deadline exceeded'


def test_blocking_read_stopped_by_another_thread(pipe_stream):
    source = Ctok.TokenSource.new()
    token = source.get_token()
    reason = GLib.Error.new_literal(MY_ERROR, 'user pressed stop', 7)
    timer = threading.Timer(0.05, source.cancel_with_error, (reason,))

    timer.start()
    # PyGObject releases the GIL while it blocks, so the timer thread runs.
    with pytest.raises(GLib.Error) as info:
        pipe_stream.read_bytes(64, token.get_cancellable())
    timer.join()

    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert token.translate_error(info.value).matches(MY_ERROR, 7)


def test_per_operation_cancellable(pipe_stream, main_loop):
    source = Ctok.TokenSource.new_linked([Ctok.TokenSource.new_with_timeout(30).get_token()])
    token = source.get_token()
    results = []

    def on_read(stream, result):
        try:
            stream.read_bytes_finish(result)
        except GLib.Error as error:
            results.append(token.translate_error(error))
        main_loop.quit()

    pipe_stream.read_bytes_async(64, GLib.PRIORITY_DEFAULT, token.new_cancellable(), on_read)
    main_loop.run()

    assert results[0].matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)


def test_subprocess_wait_stopped_by_a_deadline(main_loop):
    process = Gio.Subprocess.new(['sleep', '30'], Gio.SubprocessFlags.NONE)
    source = Ctok.TokenSource.new_with_timeout(50)
    token = source.get_token()
    results = []

    def on_wait(process, result):
        try:
            process.wait_finish(result)
            results.append('exited')
        except GLib.Error as error:
            results.append(token.translate_error(error))
        main_loop.quit()

    process.wait_async(token.get_cancellable(), on_wait)
    main_loop.run()
    process.force_exit()
    process.wait(None)

    assert results[0].matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)


def test_wait_times_out():
    source = Ctok.TokenSource.new()
    start = GLib.get_monotonic_time()

    assert source.get_token().wait(30_000) is False
    assert GLib.get_monotonic_time() - start >= 30_000
    assert source.get_token().wait(0) is False


def test_wait_returns_when_cancelled():
    source = Ctok.TokenSource.new()
    timer = threading.Timer(0.02, source.cancel)

    timer.start()
    assert source.get_token().wait(-1) is True
    timer.join()
    assert source.get_token().wait(0) is True


def test_wait_async(main_loop):
    source = Ctok.TokenSource.new_with_timeout(20)
    token = source.get_token()
    results = []

    def on_waited(t, result):
        results.append((t, t.wait_finish(result),
                        threading.current_thread() is threading.main_thread()))
        main_loop.quit()

    token.wait_async(None, on_waited)
    main_loop.run()

    assert results == [(token, True, True)]


def test_wait_async_own_cancellable(main_loop):
    source = Ctok.TokenSource.new()
    token = source.get_token()
    cancellable = Gio.Cancellable()
    results = []

    def on_waited(t, result):
        try:
            results.append(t.wait_finish(result))
        except GLib.Error as error:
            results.append(error)
        main_loop.quit()

    token.wait_async(cancellable, on_waited)
    cancellable.cancel()
    main_loop.run()

    assert results[0].matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert not token.is_cancelled()
    assert token.debug_count_registrations() == 0


def test_wait_async_on_a_closed_source(main_loop):
    source = Ctok.TokenSource.new()
    token = source.get_token()
    results = []

    def on_waited(t, result):
        results.append(t.wait_finish(result))
        main_loop.quit()

    token.wait_async(None, on_waited)
    source.close()
    main_loop.run()

    assert results == [False]


def test_wait_async_on_the_none_token():
    results = []

    Ctok.Token.get_none().wait_async(None, lambda t, r: results.append(t.wait_finish(r)))
    run_until(lambda: results)

    assert results == [False]
