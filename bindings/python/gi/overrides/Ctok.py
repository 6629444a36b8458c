# SPDX-License-Identifier: LGPL-2.1-or-later
"""PyGObject overrides for ctok (``from gi.repository import Ctok``).

They add Python idioms on top of the introspected API, which stays as it is:

* :class:`TokenSource` is a context manager that closes the source on exit::

      with Ctok.TokenSource.new_with_timeout(500) as source:
          stream.read_bytes(4096, source.get_token().get_cancellable())

* :meth:`Token.raise_if_cancelled` raises the token's reason, a
  ``GLib.Error``, if it is cancelled.

* asyncio: ``await token.wait_cancelled()`` waits for a token;
  ``async with Ctok.cancel_task_on(token):`` interrupts the current task when
  a token is cancelled; ``source.cancel_on_task_cancelled()`` cancels a source
  when an asyncio task is cancelled.

The rule for callbacks is the library's: from bindings, callbacks arrive in a
main context (``Token.register_in_context()``, ``Token.create_source()``).
The asyncio helpers need no GLib main loop, so they work differently, and
still run none of your code on a foreign thread: they listen on the token's
``Gio.Cancellable``, whose handler may run on any thread (ctok's timer thread
for a deadline), and that handler only hands the news to the asyncio event
loop with ``loop.call_soon_threadsafe()``. They never call
``Gio.Cancellable.disconnect()``, which deadlocks when called from the
cancellable's own handler, and they remove their handler when done.
"""

from gi.module import get_introspection_module
from gi.overrides import override
from gi.repository import Gio, GLib, GObject

Ctok = get_introspection_module('Ctok')

__all__ = []


def _connect_threadsafe(cancellable, loop, callback):
    """Calls ``callback()`` in ``loop``'s thread once ``cancellable`` is
    cancelled (soon, if it already is).

    Returns the handler id to give to :func:`_disconnect` (0 if the
    cancellable was already cancelled: GIO then keeps no handler).
    """

    def on_cancelled(*args):
        # Any thread: the canceller's, ctok's timer thread, or this one from
        # inside connect() when the cancellable is already cancelled.
        try:
            loop.call_soon_threadsafe(callback)
        except RuntimeError:
            pass  # The loop was closed: nobody is waiting any more.

    return cancellable.connect(on_cancelled)


def _disconnect(cancellable, handler):
    # GObject.signal_handler_disconnect() never waits for a running handler,
    # unlike Gio.Cancellable.disconnect(): safe from any thread, even while
    # the handler runs on another one.
    if handler and GObject.signal_handler_is_connected(cancellable, handler):
        GObject.signal_handler_disconnect(cancellable, handler)


def _running_task():
    import asyncio

    task = asyncio.current_task()
    if task is None:
        raise RuntimeError('this must be used inside an asyncio task')
    return task


class Token(Ctok.Token):
    """The read-only side of a cancellation; see the C documentation of
    ``CtokToken``. These overrides add :meth:`raise_if_cancelled` and the
    asyncio awaitable :meth:`wait_cancelled`.

    ``Token.register()`` is not available from Python: its callbacks would
    run on whatever thread cancels. Use :meth:`register_in_context`,
    :meth:`create_source`, or the asyncio helpers.
    """

    def raise_if_cancelled(self):
        """Raises the reason the token was cancelled, if it is.

        The same as :meth:`set_error_if_cancelled`, named the Python way.
        The reason is a ``GLib.Error``: ``Gio.IOErrorEnum.CANCELLED`` for a
        plain cancel, ``Gio.IOErrorEnum.TIMED_OUT`` for a deadline, or the
        error given to ``TokenSource.cancel_with_error()``.

        :raises GLib.Error: the reason, if the token is cancelled
        """
        self.set_error_if_cancelled()

    async def wait_cancelled(self):
        """Waits, without blocking the asyncio loop, until the token is
        cancelled, and returns the reason::

            reason = await token.wait_cancelled()
            print('stopped:', reason.message)

        It works whatever thread cancels the token, and whether or not a
        GLib main loop runs. Cancelling the awaiting task stops waiting; to
        bound the wait, use ``asyncio.wait_for()`` or ``asyncio.timeout()``.

        The never-cancelled token, ``Ctok.Token.get_none()``, returns None at
        once. A token whose source is closed without being cancelled is never
        cancelled, so the wait then lasts until the awaiting task is
        cancelled.

        :returns: the reason, a ``GLib.Error``; None for the none token
        :rtype: GLib.Error or None
        """
        import asyncio

        cancellable = self.get_cancellable()
        if cancellable is None:
            return None

        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def wake():
            if not future.done():
                future.set_result(None)

        handler = _connect_threadsafe(cancellable, loop, wake)
        try:
            await future
        finally:
            _disconnect(cancellable, handler)

        return self.dup_error()


Token = override(Token)
__all__.append('Token')


class _TaskLink:
    """What :meth:`TokenSource.cancel_on_task_cancelled` returns."""

    def __init__(self, source, task):
        self._source = source
        self._task = task
        task.add_done_callback(self._on_task_done)

    @property
    def task(self):
        """The task whose cancellation cancels the source, or None once the
        link is removed."""
        return self._task

    def remove(self):
        """Stops watching the task. Removing twice does nothing."""
        task, self._task = self._task, None
        if task is not None:
            task.remove_done_callback(self._on_task_done)
            self._source._task_links.discard(self)

    def _cancel_source(self, exc=None):
        source = self._source
        self.remove()
        message = 'The asyncio task was cancelled'
        if exc is not None and exc.args:
            message = f'{message}: {exc.args[0]}'
        source.cancel_with_error(GLib.Error.new_literal(
            Gio.io_error_quark(), message, Gio.IOErrorEnum.CANCELLED))

    def _on_task_done(self, task):
        if self._task is task and task.cancelled():
            self._cancel_source()
        else:
            self.remove()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        import asyncio

        # The watched task is being cancelled right now if a CancelledError
        # leaves the block it runs: cancel the source without waiting for
        # the task to end.
        if (self._task is not None
                and exc_type is not None
                and issubclass(exc_type, asyncio.CancelledError)
                and asyncio.current_task() is self._task):
            self._cancel_source(exc)
        else:
            self.remove()
        return False


class TokenSource(Ctok.TokenSource):
    """The controller of a cancellation; see the C documentation of
    ``CtokTokenSource``. It is a context manager: ``with`` closes the
    source on exit (``close()`` releases what the source holds on others,
    such as its deadline and its links to parent tokens, without
    cancelling), and returns the source itself::

        with Ctok.TokenSource.new_linked([user_token, deadline_token]) as source:
            do_work(source.get_token())
    """

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def close(self):
        """Closes the source, as the C ``ctok_token_source_close()``, and
        stops the task links made by :meth:`cancel_on_task_cancelled`."""
        for link in list(self._task_links):
            link.remove()
        Ctok.TokenSource.close(self)

    @property
    def _task_links(self):
        # The links watching a task: closing the source removes them, since a
        # closed source must not be cancelled. They live in the wrapper's
        # __dict__, which PyGObject keeps as long as the object.
        return self.__dict__.setdefault('_ctok_task_links', set())

    def cancel_on_task_cancelled(self, task=None):
        """Cancels the source when an asyncio task is cancelled, so that the
        work it started with the source's token (in a thread, in C, in GIO)
        stops too. The reason is ``Gio.IOErrorEnum.CANCELLED``, "The asyncio
        task was cancelled".

        ``task`` defaults to the current task. The source is cancelled when
        the task ends cancelled; used as a context manager inside the task,
        it is cancelled as soon as a ``CancelledError`` leaves the block,
        without waiting for the task to end::

            async def checksum(path):
                loop = asyncio.get_running_loop()
                with Ctok.TokenSource.new() as source, \\
                        source.cancel_on_task_cancelled():
                    return await loop.run_in_executor(
                        None, blocking_checksum, path, source.get_token())

        Leaving the block, calling ``remove()`` on the returned link, or
        closing the source stops watching the task.

        :param task: the task to watch, or None for the current one
        :type task: asyncio.Task or None
        :returns: a link, usable as a context manager, with a ``remove()``
            method
        """
        link = _TaskLink(self, task if task is not None else _running_task())
        self._task_links.add(link)
        return link


TokenSource = override(TokenSource)
__all__.append('TokenSource')


class _TaskCanceller:
    """What :func:`cancel_task_on` returns."""

    _CREATED, _ENTERED, _CANCELLING, _EXITED = range(4)

    def __init__(self, token):
        self._token = token
        self._state = self._CREATED
        self._task = None
        self._cancelling = 0
        self._cancellable = None
        self._handler = 0
        self._interrupted = False

    @property
    def token(self):
        """The token that interrupts the block."""
        return self._token

    def interrupted(self):
        """Whether the block was interrupted because the token was
        cancelled."""
        return self._state == self._CANCELLING or self._interrupted

    async def __aenter__(self):
        import asyncio

        if self._state != self._CREATED:
            raise RuntimeError('cancel_task_on() can be entered only once')
        self._task = _running_task()
        # Python 3.11: remember the cancel requests already pending, so that
        # ours is told apart from others on exit (as asyncio.timeout() does).
        self._cancelling = getattr(self._task, 'cancelling', lambda: 0)()
        self._state = self._ENTERED
        self._cancellable = self._token.get_cancellable()
        if self._cancellable is not None:
            self._handler = _connect_threadsafe(self._cancellable,
                                                asyncio.get_running_loop(),
                                                self._cancel_task)
        return self

    def _cancel_task(self):
        # In the loop's thread. Too late if the block was left meanwhile.
        if self._state == self._ENTERED:
            self._state = self._CANCELLING
            self._task.cancel(msg='Cancelled by a Ctok.Token')

    async def __aexit__(self, exc_type, exc, tb):
        import asyncio

        _disconnect(self._cancellable, self._handler)
        self._cancellable = None
        self._handler = 0

        state, self._state = self._state, self._EXITED
        if state != self._CANCELLING:
            return False

        self._interrupted = True
        uncancel = getattr(self._task, 'uncancel', None)
        others = uncancel() > self._cancelling if uncancel else False
        if exc_type is asyncio.CancelledError and not others:
            raise self._token.dup_error() from exc
        return False


def cancel_task_on(token):
    """Interrupts the current asyncio task when ``token`` is cancelled, and
    turns that into the token's reason::

        try:
            async with Ctok.cancel_task_on(token):
                await long_download()
        except GLib.Error as error:
            if error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT):
                print('deadline exceeded')

    It works like ``asyncio.timeout()``, with a token instead of a delay:
    when the token is cancelled (on any thread), the task is cancelled, so the
    block gets an ``asyncio.CancelledError`` at the ``await`` it is waiting
    on; when that ``CancelledError`` leaves the block, the ``async with``
    statement raises the token's reason instead, a ``GLib.Error``
    (``Gio.IOErrorEnum.CANCELLED``, ``TIMED_OUT`` for a deadline, or a custom
    one), chained to the ``CancelledError``. A token that is already
    cancelled interrupts the block at its first ``await``.

    A cancellation that does not come from the token, such as
    ``task.cancel()`` elsewhere, stays an ``asyncio.CancelledError``, and so
    does ours if someone else also cancelled the task meanwhile. If the block
    ends before the task could be interrupted, nothing is raised. The
    returned object's ``interrupted()`` says whether the token interrupted
    the block.

    :param token: the token to follow
    :type token: Ctok.Token
    :returns: an asynchronous context manager
    """
    return _TaskCanceller(token)


__all__.append('cancel_task_on')
