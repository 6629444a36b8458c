# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Python-created children, sources and handlers leave nothing behind on a
# long-lived token.

import asyncio
import gc

from gi.repository import Ctok, Gio, GLib, GObject

from conftest import drain


def pending_handlers(cancellable):
    signal_id = GObject.signal_lookup('cancelled', Gio.Cancellable)
    return GObject.signal_has_handler_pending(cancellable, signal_id, 0, True)


def test_100000_dropped_linked_sources():
    parent = Ctok.TokenSource.new()
    token = parent.get_token()
    assert token.debug_count_registrations() == 0

    # The count does see live children.
    alive = [Ctok.TokenSource.new_linked([token]) for _ in range(1000)]
    assert token.debug_count_registrations() == 1000
    del alive
    gc.collect()
    assert token.debug_count_registrations() == 0

    for _ in range(100_000):
        child = Ctok.TokenSource.new_linked([token])
        assert not child.is_cancelled()
    del child
    gc.collect()

    assert token.debug_count_registrations() == 0


def test_closed_linked_sources():
    parent = Ctok.TokenSource.new()
    token = parent.get_token()
    kept = []

    for _ in range(10_000):
        with Ctok.TokenSource.new_linked([token]) as child:
            kept.append(child)  # Still referenced, but closed.

    assert token.debug_count_registrations() == 0


def test_linked_all_and_cancellable_sources():
    a = Ctok.TokenSource.new()
    b = Ctok.TokenSource.new()
    cancellable = a.get_token().new_cancellable()

    for _ in range(10_000):
        Ctok.TokenSource.new_linked_all([a.get_token(), b.get_token()])
        Ctok.TokenSource.new_linked_to_cancellable(cancellable)
    gc.collect()

    assert a.get_token().debug_count_registrations() == 1  # the cancellable
    assert b.get_token().debug_count_registrations() == 0
    del cancellable
    gc.collect()
    assert a.get_token().debug_count_registrations() == 0


def test_sources_cancellables_and_registrations():
    parent = Ctok.TokenSource.new()
    token = parent.get_token()

    for _ in range(10_000):
        gsource = token.create_source()
        gsource.set_callback(lambda *args: GLib.SOURCE_REMOVE)
        gsource.attach(None)
        gsource.destroy()
        token.new_cancellable()
        assert token.unregister(token.register_in_context(None, lambda t: None))
    del gsource
    gc.collect()
    drain()

    assert token.debug_count_registrations() == 0


def test_asyncio_helpers_remove_their_handlers():
    source = Ctok.TokenSource.new()
    token = source.get_token()
    cancellable = token.get_cancellable()
    baseline = token.debug_count_registrations()

    async def main():
        for _ in range(1000):
            waiter = asyncio.ensure_future(token.wait_cancelled())
            await asyncio.sleep(0)
            assert pending_handlers(cancellable)
            waiter.cancel()
            async with Ctok.cancel_task_on(token):
                await asyncio.sleep(0)
            with source.cancel_on_task_cancelled():
                await asyncio.sleep(0)
        await asyncio.gather(waiter, return_exceptions=True)

    asyncio.run(main())

    assert not pending_handlers(cancellable)
    assert token.debug_count_registrations() == baseline
    assert not source.is_cancelled()
    assert not source._task_links
