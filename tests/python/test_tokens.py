# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Token sources and tokens from Python: states, reasons as GLib.Error,
# closing, resetting, the none token and the cancel_on_* helpers.

import gc
import os
import signal

import pytest
from gi.repository import Ctok, Gio, GLib, GObject

from conftest import run_until

MY_ERROR = GLib.quark_from_string('my-error')


def custom_error():
    return GLib.Error.new_literal(MY_ERROR, 'custom', 7)


def raised_by(token):
    with pytest.raises(GLib.Error) as info:
        token.set_error_if_cancelled()
    return info.value


def test_version():
    assert Ctok.get_major_version() == 1
    assert Ctok.check_version(1, 0, 0)
    assert not Ctok.check_version(99, 0, 0)


def test_new_source():
    source = Ctok.TokenSource.new()
    token = source.get_token()

    assert isinstance(token, Ctok.Token)
    assert source.get_token() is token
    assert not source.is_cancelled()
    assert not token.is_cancelled()
    assert not token.props.cancelled
    assert token.can_be_cancelled()
    assert token.set_error_if_cancelled() is False
    assert token.dup_error() is None
    assert token.get_deadline() == GLib.MAXINT64
    assert token.get_timeout_ms() == -1
    assert source.get_deadline() == GLib.MAXINT64


def test_cancel_reason_is_cancelled():
    source = Ctok.TokenSource.new()
    token = source.get_token()

    source.cancel()

    assert source.is_cancelled()
    assert token.is_cancelled()
    assert token.props.cancelled
    error = raised_by(token)
    assert isinstance(error, GLib.Error)
    assert error.domain == GLib.quark_to_string(Gio.io_error_quark())
    assert error.code == Gio.IOErrorEnum.CANCELLED
    assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)

    reason = token.dup_error()
    assert reason.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert reason.message == error.message


def test_cancel_with_custom_reason():
    source = Ctok.TokenSource.new()
    token = source.get_token()

    source.cancel_with_error(custom_error())

    error = raised_by(token)
    assert error.matches(MY_ERROR, 7)
    assert error.domain == 'my-error'
    assert error.code == 7
    assert error.message == 'custom'
    assert token.dup_error().matches(MY_ERROR, 7)


def test_first_reason_wins():
    source = Ctok.TokenSource.new()
    source.cancel_with_error(custom_error())
    source.cancel()
    source.cancel_with_error(GLib.Error.new_literal(MY_ERROR, 'other', 8))

    assert source.get_token().dup_error().matches(MY_ERROR, 7)


def test_timeout_zero_is_born_timed_out():
    source = Ctok.TokenSource.new_with_timeout(0)
    token = source.get_token()

    assert token.is_cancelled()
    error = raised_by(token)
    assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)
    assert error.message == 'Deadline exceeded'
    assert token.get_timeout_ms() == 0


def test_none_token():
    none = Ctok.Token.get_none()

    assert Ctok.Token.get_none() is none
    assert not none.can_be_cancelled()
    assert not none.is_cancelled()
    assert none.get_cancellable() is None
    assert none.set_error_if_cancelled() is False
    assert none.wait(0) is False
    # Returns at once: the none token is never cancelled.
    assert none.wait(-1) is False

    cancellable = none.new_cancellable()
    assert isinstance(cancellable, Gio.Cancellable)
    assert not cancellable.is_cancelled()


def test_get_cancellable_follows_the_token():
    source = Ctok.TokenSource.new()
    token = source.get_token()
    cancellable = token.get_cancellable()

    assert token.get_cancellable() is cancellable
    assert not cancellable.is_cancelled()
    source.cancel_with_error(custom_error())
    assert cancellable.is_cancelled()
    with pytest.raises(GLib.Error) as info:
        cancellable.set_error_if_cancelled()
    # GIO only knows "cancelled"; the token knows why.
    assert info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert token.translate_error(info.value).matches(MY_ERROR, 7)


def test_cancelling_the_shared_cancellable_cancels_the_token():
    source = Ctok.TokenSource.new()
    token = source.get_token()

    token.get_cancellable().cancel()

    assert token.is_cancelled()
    assert raised_by(token).matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)


def test_new_cancellable_is_one_way():
    source = Ctok.TokenSource.new()
    token = source.get_token()

    own = token.new_cancellable()
    assert own is not token.new_cancellable()
    own.cancel()
    assert not token.is_cancelled()

    other = token.new_cancellable()
    source.cancel()
    assert other.is_cancelled()
    assert token.new_cancellable().is_cancelled()


def test_translate_error():
    source = Ctok.TokenSource.new()
    token = source.get_token()
    cancelled = GLib.Error.new_literal(Gio.io_error_quark(), 'Operation was cancelled',
                                       Gio.IOErrorEnum.CANCELLED)
    not_found = GLib.Error.new_literal(Gio.io_error_quark(), 'No such file',
                                       Gio.IOErrorEnum.NOT_FOUND)

    # Not cancelled: errors pass through.
    assert token.translate_error(cancelled).matches(Gio.io_error_quark(),
                                                    Gio.IOErrorEnum.CANCELLED)
    # The parameter is nullable, but PyGObject 3.42 only takes a GLib.Error
    # there (GJS takes null).
    with pytest.raises(TypeError):
        token.translate_error(None)

    source.cancel_with_error(custom_error())
    assert token.translate_error(cancelled).matches(MY_ERROR, 7)
    assert token.translate_error(not_found).matches(Gio.io_error_quark(),
                                                    Gio.IOErrorEnum.NOT_FOUND)


def test_close_without_cancelling():
    source = Ctok.TokenSource.new_with_timeout(60_000)
    token = source.get_token()

    source.close()
    source.close()

    assert not token.is_cancelled()
    assert source.get_deadline() == GLib.MAXINT64
    # A closed source's token can never be cancelled: wait returns at once.
    start = GLib.get_monotonic_time()
    assert token.wait(10_000_000) is False
    assert GLib.get_monotonic_time() - start < 5_000_000


def test_close_keeps_the_reason():
    source = Ctok.TokenSource.new()
    source.cancel_with_error(custom_error())
    source.close()

    assert source.get_token().dup_error().matches(MY_ERROR, 7)


def test_try_reset(main_loop):
    source = Ctok.TokenSource.new()
    token = source.get_token()
    calls = []

    token.register_in_context(None, lambda t: calls.append(t))
    assert token.debug_count_registrations() == 1
    assert source.try_reset()
    assert token.debug_count_registrations() == 0
    assert source.get_token() is token

    source.cancel()
    GLib.idle_add(main_loop.quit)
    main_loop.run()
    assert calls == []
    assert not source.try_reset()
    assert token.is_cancelled()


def test_unregister_in_context(main_loop):
    source = Ctok.TokenSource.new()
    token = source.get_token()
    calls = []

    registration = token.register_in_context(None, lambda t: calls.append('removed'))
    token.register_in_context(None, lambda t: (calls.append('kept'), main_loop.quit()))
    assert registration != 0
    assert token.unregister(registration)
    assert not token.unregister(registration)
    assert not token.unregister_nowait(0)

    source.cancel()
    main_loop.run()
    assert calls == ['kept']


def test_cancel_on_signal():
    source = Ctok.TokenSource.new()
    action = Gio.SimpleAction.new('stop', None)

    handler = source.cancel_on_signal(action, 'activate')
    assert handler > 0
    assert GObject.signal_handler_is_connected(action, handler)
    assert not source.is_cancelled()

    action.activate(None)
    assert source.is_cancelled()
    assert source.get_token().dup_error().matches(Gio.io_error_quark(),
                                                  Gio.IOErrorEnum.CANCELLED)


def test_cancel_on_finalize():
    source = Ctok.TokenSource.new()
    thing = Gio.SimpleAction.new('thing', None)

    source.cancel_on_finalize(thing)
    assert not source.is_cancelled()

    del thing
    gc.collect()
    assert source.is_cancelled()


def test_cancel_on_unix_signal():
    source = Ctok.TokenSource.new()
    token = source.get_token()

    source_id = source.cancel_on_unix_signal(signal.SIGUSR1)
    assert source_id > 0

    os.kill(os.getpid(), signal.SIGUSR1)
    run_until(token.is_cancelled)

    error = token.dup_error()
    assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert 'SIGUSR1' in error.message
