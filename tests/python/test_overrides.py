# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The Python overrides (bindings/python/gi/overrides/Ctok.py): the context
# manager, raise_if_cancelled(), the asyncio bridge, and what is left out.

import asyncio
import os
import threading

import gi.overrides
import pytest
from gi.repository import Ctok, Gio, GLib

MY_ERROR = GLib.quark_from_string('my-error')


def custom_error():
    return GLib.Error.new_literal(MY_ERROR, 'custom', 7)


def test_overrides_come_from_the_build_tree():
    import gi.overrides.Ctok as overrides

    build_dirs = os.environ['PYTHONPATH'].split(os.pathsep)
    assert any(os.path.dirname(overrides.__file__) == os.path.join(d, 'gi', 'overrides')
               for d in build_dirs), overrides.__file__
    # Alongside PyGObject's own overrides, not instead of them.
    assert len(gi.overrides.__path__) >= 2
    assert hasattr(GLib, 'MainLoop') and GLib.Variant('i', 1).unpack() == 1


# --- What Python does not get ---


def test_register_is_not_exposed():
    token = Ctok.TokenSource.new().get_token()

    # The documented rule: register()'s callbacks would run on whatever
    # thread cancels; bindings get register_in_context() and create_source().
    assert not hasattr(Ctok.Token, 'register')
    with pytest.raises(AttributeError):
        token.register(lambda t: None)
    with pytest.raises(AttributeError):
        token.rewrite_error
    assert callable(token.register_in_context)
    assert callable(token.create_source)
    assert callable(token.translate_error)


# --- TokenSource as a context manager ---


def test_with_closes_the_source():
    with Ctok.TokenSource.new_with_timeout(500) as source:
        assert isinstance(source, Ctok.TokenSource)
        token = source.get_token()
        assert source.get_deadline() != GLib.MAXINT64

    assert source.get_deadline() == GLib.MAXINT64
    assert not token.is_cancelled()
    # Closed: never cancelled, so waiting returns at once.
    assert token.wait(5_000_000) is False


def test_with_returns_the_same_source():
    source = Ctok.TokenSource.new()
    with source as entered:
        assert entered is source


def test_with_closes_on_error_and_lets_it_through():
    parent = Ctok.TokenSource.new()

    with pytest.raises(ZeroDivisionError):
        with Ctok.TokenSource.new_linked([parent.get_token()]) as child:
            assert parent.get_token().debug_count_registrations() == 1
            1 / 0

    assert parent.get_token().debug_count_registrations() == 0
    assert not child.is_cancelled()


def test_with_keeps_the_reason_of_a_cancelled_source():
    with Ctok.TokenSource.new() as source:
        source.cancel_with_error(custom_error())

    assert source.get_token().dup_error().matches(MY_ERROR, 7)


# --- raise_if_cancelled ---


def test_raise_if_cancelled():
    source = Ctok.TokenSource.new()
    token = source.get_token()

    assert token.raise_if_cancelled() is None
    source.cancel_with_error(custom_error())

    with pytest.raises(GLib.Error) as info:
        token.raise_if_cancelled()
    assert info.value.matches(MY_ERROR, 7)


@pytest.mark.parametrize('make, code', [
    (lambda: Ctok.TokenSource.new(), Gio.IOErrorEnum.CANCELLED),
    (lambda: Ctok.TokenSource.new_with_timeout(0), Gio.IOErrorEnum.TIMED_OUT),
])
def test_raise_if_cancelled_reasons(make, code):
    source = make()
    if not source.is_cancelled():
        source.cancel()

    with pytest.raises(GLib.Error) as info:
        source.get_token().raise_if_cancelled()
    assert info.value.matches(Gio.io_error_quark(), code)


def test_raise_if_cancelled_none_token():
    assert Ctok.Token.get_none().raise_if_cancelled() is None


# --- asyncio: wait_cancelled() ---


def test_wait_cancelled_from_a_thread():
    source = Ctok.TokenSource.new()

    async def main():
        threading.Timer(0.02, source.cancel_with_error, (custom_error(),)).start()
        return await source.get_token().wait_cancelled()

    assert asyncio.run(main()).matches(MY_ERROR, 7)


def test_wait_cancelled_from_a_deadline():
    async def main():
        source = Ctok.TokenSource.new_with_timeout(20)
        # The timer thread cancels; the loop is woken thread-safely.
        return await asyncio.wait_for(source.get_token().wait_cancelled(), 10)

    reason = asyncio.run(main())
    assert reason.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)


def test_wait_cancelled_many_deadlines():
    async def main():
        sources = [Ctok.TokenSource.new_with_timeout(1 + i % 10) for i in range(300)]
        return await asyncio.wait_for(
            asyncio.gather(*(s.get_token().wait_cancelled() for s in sources)), 10)

    reasons = asyncio.run(main())
    assert len(reasons) == 300
    assert all(r.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT) for r in reasons)


def test_wait_cancelled_already_cancelled():
    source = Ctok.TokenSource.new()
    source.cancel()

    reason = asyncio.run(source.get_token().wait_cancelled())
    assert reason.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)


def test_wait_cancelled_none_token():
    assert asyncio.run(Ctok.Token.get_none().wait_cancelled()) is None


def test_wait_cancelled_is_cancellable():
    source = Ctok.TokenSource.new()

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(source.get_token().wait_cancelled(), 0.02)

    asyncio.run(main())
    assert not source.is_cancelled()


def test_wait_cancelled_after_the_loop_is_gone():
    source = Ctok.TokenSource.new_with_timeout(50)

    async def main():
        asyncio.ensure_future(source.get_token().wait_cancelled())
        await asyncio.sleep(0)

    # asyncio.run() cancels the waiter and closes the loop; the deadline then
    # fires with nobody listening.
    asyncio.run(main())
    assert source.get_token().wait(10_000_000)


# --- asyncio: cancel_task_on() ---


def test_cancel_task_on_turns_a_deadline_into_its_reason():
    source = Ctok.TokenSource.new_with_timeout(30)
    state = {}

    async def main():
        with pytest.raises(GLib.Error) as info:
            async with Ctok.cancel_task_on(source.get_token()) as scope:
                state['scope'] = scope
                await asyncio.sleep(30)
        state['error'] = info.value
        state['cancelling'] = asyncio.current_task().cancelling()

    asyncio.run(main())

    error = state['error']
    assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)
    assert isinstance(error.__cause__, asyncio.CancelledError)
    assert state['scope'].interrupted()
    assert state['scope'].token is source.get_token()
    # Our cancel request was taken back.
    assert state['cancelling'] == 0


def test_cancel_task_on_custom_reason_from_a_thread():
    source = Ctok.TokenSource.new()

    async def main():
        threading.Timer(0.02, source.cancel_with_error, (custom_error(),)).start()
        async with Ctok.cancel_task_on(source.get_token()):
            await asyncio.sleep(30)

    with pytest.raises(GLib.Error) as info:
        asyncio.run(main())
    assert info.value.matches(MY_ERROR, 7)


def test_cancel_task_on_a_cancelled_token_interrupts_the_first_await():
    source = Ctok.TokenSource.new()
    source.cancel()
    steps = []

    async def main():
        async with Ctok.cancel_task_on(source.get_token()):
            steps.append('entered')
            await asyncio.sleep(30)
            steps.append('not reached')

    with pytest.raises(GLib.Error) as info:
        asyncio.run(main())
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert steps == ['entered']


def test_cancel_task_on_block_that_ends_first():
    source = Ctok.TokenSource.new()

    async def main():
        async with Ctok.cancel_task_on(source.get_token()) as scope:
            await asyncio.sleep(0)
        source.cancel()
        # Too late to interrupt anything: the task goes on.
        await asyncio.sleep(0.02)
        return scope

    scope = asyncio.run(main())
    assert not scope.interrupted()


def test_cancel_task_on_without_await_is_not_interrupted():
    source = Ctok.TokenSource.new()
    source.cancel()

    async def main():
        async with Ctok.cancel_task_on(source.get_token()) as scope:
            pass
        # The pending interruption was dropped when the block ended.
        await asyncio.sleep(0.02)
        return scope

    assert not asyncio.run(main()).interrupted()


def test_cancel_task_on_leaves_other_cancellations_alone():
    source = Ctok.TokenSource.new()

    async def worker():
        async with Ctok.cancel_task_on(source.get_token()):
            await asyncio.sleep(30)

    async def main():
        task = asyncio.ensure_future(worker())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert not source.is_cancelled()


def test_cancel_task_on_none_token():
    async def main():
        async with Ctok.cancel_task_on(Ctok.Token.get_none()) as scope:
            await asyncio.sleep(0.01)
        return scope

    assert not asyncio.run(main()).interrupted()


def test_cancel_task_on_nested_in_asyncio_timeout():
    source = Ctok.TokenSource.new_with_timeout(60_000)

    async def main():
        async with asyncio.timeout(0.02):
            async with Ctok.cancel_task_on(source.get_token()):
                await asyncio.sleep(30)

    with pytest.raises(TimeoutError):
        asyncio.run(main())


def test_cancel_task_on_enters_once():
    async def main():
        scope = Ctok.cancel_task_on(Ctok.TokenSource.new().get_token())
        await scope.__aenter__()
        with pytest.raises(RuntimeError):
            await scope.__aenter__()
        await scope.__aexit__(None, None, None)

    asyncio.run(main())


# --- asyncio: TokenSource.cancel_on_task_cancelled() ---


def test_cancel_on_task_cancelled_stops_a_worker_thread():
    source = Ctok.TokenSource.new()
    token = source.get_token()
    started = threading.Event()
    worker_saw = []

    def blocking_work(token):
        started.set()
        # Blocks until cancelled, as ctok-aware C or thread code would.
        token.wait(-1)
        worker_saw.append(token.dup_error())

    async def handler():
        loop = asyncio.get_running_loop()
        with source.cancel_on_task_cancelled():
            await loop.run_in_executor(None, blocking_work, token)

    async def main():
        task = asyncio.ensure_future(handler())
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        task.cancel('client went away')
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())  # Waits for the executor's thread, so for the worker.

    assert source.is_cancelled()
    [reason] = worker_saw
    assert reason.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert reason.message == 'The asyncio task was cancelled: client went away'
    assert not source._task_links


def test_cancel_on_task_cancelled_watches_another_task():
    source = Ctok.TokenSource.new()

    async def main():
        task = asyncio.ensure_future(asyncio.sleep(30))
        link = source.cancel_on_task_cancelled(task)
        assert link.task is task
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)  # Done callbacks run soon after.
        assert link.task is None

    asyncio.run(main())
    assert source.is_cancelled()
    assert source.get_token().dup_error().message == 'The asyncio task was cancelled'


def test_cancel_on_task_cancelled_task_that_ends_normally():
    source = Ctok.TokenSource.new()

    async def main():
        task = asyncio.ensure_future(asyncio.sleep(0))
        source.cancel_on_task_cancelled(task)
        await task
        await asyncio.sleep(0)
        with source.cancel_on_task_cancelled():
            await asyncio.sleep(0)

    asyncio.run(main())
    assert not source.is_cancelled()
    assert not source._task_links


def test_cancel_on_task_cancelled_removed_or_closed():
    source = Ctok.TokenSource.new()
    closed = Ctok.TokenSource.new()

    async def main():
        task = asyncio.ensure_future(asyncio.sleep(30))
        source.cancel_on_task_cancelled(task).remove()
        closed.cancel_on_task_cancelled(task)
        closed.close()  # A closed source must not be cancelled.
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)

    asyncio.run(main())
    assert not source.is_cancelled()
    assert not closed.is_cancelled()


def test_cancel_on_task_cancelled_needs_a_task():
    with pytest.raises(RuntimeError):
        Ctok.TokenSource.new().cancel_on_task_cancelled()
