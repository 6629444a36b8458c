# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Linked sources (any of, all of, a foreign GCancellable) and deadlines from
# Python.

import pytest
from gi.repository import Ctok, Gio, GLib

MY_ERROR = GLib.quark_from_string('my-error')


def custom_error(code=7, message='custom'):
    return GLib.Error.new_literal(MY_ERROR, message, code)


def is_io_error(error, code):
    return error is not None and error.matches(Gio.io_error_quark(), code)


# --- Linked sources ---


def test_linked_any_takes_the_parents_reason():
    user = Ctok.TokenSource.new()
    shutdown = Ctok.TokenSource.new()
    child = Ctok.TokenSource.new_linked([user.get_token(), shutdown.get_token()])
    token = child.get_token()

    assert not token.is_cancelled()
    shutdown.cancel_with_error(custom_error())

    assert token.is_cancelled()
    assert token.dup_error().matches(MY_ERROR, 7)
    assert not user.is_cancelled()


def test_linked_child_never_cancels_its_parent():
    parent = Ctok.TokenSource.new()
    child = Ctok.TokenSource.new_linked([parent.get_token()])

    child.cancel()

    assert child.is_cancelled()
    assert not parent.is_cancelled()


def test_linked_to_a_cancelled_token_is_born_cancelled():
    parent = Ctok.TokenSource.new()
    parent.cancel_with_error(custom_error())

    child = Ctok.TokenSource.new_linked([parent.get_token()])

    assert child.is_cancelled()
    assert child.get_token().dup_error().matches(MY_ERROR, 7)


@pytest.mark.parametrize('tokens', [None, [], [Ctok.Token.get_none()]])
def test_linked_to_nothing_is_a_plain_source(tokens):
    source = Ctok.TokenSource.new_linked(tokens)

    assert not source.is_cancelled()
    assert source.get_token().can_be_cancelled()
    source.cancel()
    assert source.is_cancelled()


def test_linked_chain_carries_the_reason_down():
    root = Ctok.TokenSource.new()
    sources = [root]
    for _ in range(1000):
        sources.append(Ctok.TokenSource.new_linked([sources[-1].get_token()]))

    root.cancel_with_error(custom_error())

    assert all(source.is_cancelled() for source in sources)
    assert sources[-1].get_token().dup_error().matches(MY_ERROR, 7)


def test_linked_all_waits_for_every_parent():
    replicas = [Ctok.TokenSource.new() for _ in range(3)]
    done = Ctok.TokenSource.new_linked_all([r.get_token() for r in replicas])

    replicas[0].cancel()
    replicas[1].cancel_with_error(custom_error(1, 'first'))
    assert not done.is_cancelled()

    replicas[2].cancel_with_error(custom_error(3, 'last'))
    assert done.is_cancelled()
    # The reason of the last one to be cancelled.
    assert done.get_token().dup_error().matches(MY_ERROR, 3)


def test_linked_all_to_cancelled_tokens_is_born_cancelled():
    a = Ctok.TokenSource.new()
    b = Ctok.TokenSource.new()
    a.cancel()
    b.cancel()

    assert Ctok.TokenSource.new_linked_all([a.get_token(), b.get_token()]).is_cancelled()


def test_linked_to_cancellable():
    cancellable = Gio.Cancellable()
    source = Ctok.TokenSource.new_linked_to_cancellable(cancellable)
    token = source.get_token()

    assert not token.is_cancelled()
    cancellable.cancel()

    assert token.is_cancelled()
    assert is_io_error(token.dup_error(), Gio.IOErrorEnum.CANCELLED)


def test_linked_to_a_cancelled_cancellable_is_born_cancelled():
    cancellable = Gio.Cancellable()
    cancellable.cancel()

    assert Ctok.TokenSource.new_linked_to_cancellable(cancellable).is_cancelled()


# --- Deadlines ---


def test_deadline_fires_with_timed_out():
    start = GLib.get_monotonic_time()
    source = Ctok.TokenSource.new_with_timeout(100)
    token = source.get_token()

    deadline = source.get_deadline()
    assert start + 100_000 <= deadline <= GLib.get_monotonic_time() + 100_000
    assert token.get_deadline() == deadline
    assert token.props.deadline == deadline
    assert 0 < token.get_timeout_ms() <= 100

    assert token.wait(10_000_000)
    assert GLib.get_monotonic_time() - start >= 100_000

    error = token.dup_error()
    assert is_io_error(error, Gio.IOErrorEnum.TIMED_OUT)
    assert error.message == 'Deadline exceeded'
    with pytest.raises(GLib.Error) as info:
        token.set_error_if_cancelled()
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)
    assert token.get_timeout_ms() == 0
    # The pending deadline is gone; the token keeps the value it had.
    assert source.get_deadline() == GLib.MAXINT64
    assert token.get_deadline() == deadline


def test_deadline_in_the_past_is_born_timed_out():
    source = Ctok.TokenSource.new_with_deadline(GLib.get_monotonic_time() - 1)

    assert source.is_cancelled()
    assert is_io_error(source.get_token().dup_error(), Gio.IOErrorEnum.TIMED_OUT)


def test_no_deadline():
    source = Ctok.TokenSource.new_with_deadline(GLib.MAXINT64)

    assert not source.is_cancelled()
    assert source.get_deadline() == GLib.MAXINT64
    assert source.get_token().get_timeout_ms() == -1


def test_cancel_after_and_cancel_at_move_the_deadline():
    source = Ctok.TokenSource.new()
    token = source.get_token()

    source.cancel_after(60_000)
    assert 59_000 < token.get_timeout_ms() <= 60_000
    source.cancel_after(30_000)
    assert 29_000 < token.get_timeout_ms() <= 30_000

    deadline = GLib.get_monotonic_time() + 90_000_000
    source.cancel_at(deadline)
    assert source.get_deadline() == deadline
    assert token.get_deadline() == deadline

    source.cancel_at(GLib.MAXINT64)
    assert source.get_deadline() == GLib.MAXINT64
    assert token.get_timeout_ms() == -1

    source.cancel_after(0)
    assert is_io_error(token.dup_error(), Gio.IOErrorEnum.TIMED_OUT)


def test_linked_source_inherits_the_deadline():
    request = Ctok.TokenSource.new_with_timeout(60_000)
    user = Ctok.TokenSource.new()
    operation = Ctok.TokenSource.new_linked([user.get_token(), request.get_token()])
    step = Ctok.TokenSource.new_linked([operation.get_token()])

    deadline = request.get_deadline()
    assert operation.get_token().get_deadline() == deadline
    assert step.get_token().get_deadline() == deadline
    assert 0 < step.get_token().get_timeout_ms() <= 60_000
    # Only the effective deadline is inherited, not the source's own.
    assert step.get_deadline() == GLib.MAXINT64

    # An earlier own deadline wins down the chain.
    operation.cancel_after(30_000)
    assert operation.get_token().get_deadline() < deadline
    assert step.get_token().get_deadline() == operation.get_token().get_deadline()


def test_linked_parent_deadline_reason_reaches_the_child():
    request = Ctok.TokenSource.new_with_timeout(50)
    user = Ctok.TokenSource.new()
    work = Ctok.TokenSource.new_linked([user.get_token(), request.get_token()])

    assert work.get_token().wait(10_000_000)
    assert is_io_error(work.get_token().dup_error(), Gio.IOErrorEnum.TIMED_OUT)
    assert not user.is_cancelled()


def test_linked_all_deadline_is_the_latest():
    a = Ctok.TokenSource.new_with_timeout(10_000)
    b = Ctok.TokenSource.new_with_timeout(20_000)
    both = Ctok.TokenSource.new_linked_all([a.get_token(), b.get_token()])

    assert both.get_token().get_deadline() == b.get_deadline()
