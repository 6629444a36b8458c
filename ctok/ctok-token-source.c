/* ctok-token-source.c: the controller that cancels a token
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "ctok-private.h"
#include "ctok-lock-private.h"
#include "ctok-token-source.h"
#include "ctok-token-private.h"

#include <glib-unix.h>
#include <signal.h>

/**
 * CtokTokenSource:
 *
 * A token source is the controller of a cancellation: it owns a
 * [class@Ctok.Token], hands it out with [method@Ctok.TokenSource.get_token],
 * and is the only thing that can cancel it. Operations get the token, never
 * the source, so holding a token never lets anyone cancel it.
 *
 * ```c
 * g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
 *
 * start_download (url, ctok_token_source_get_token (source));
 * …
 * // The user pressed Cancel.
 * ctok_token_source_cancel (source);
 * ```
 *
 * A source is cancelled at most once, and the first reason wins;
 * [method@Ctok.TokenSource.cancel_with_error] gives the reason explicitly.
 * [method@Ctok.TokenSource.close] releases what the source holds on others,
 * as .NET's `Dispose()` does, without cancelling.
 *
 * Dropping the last reference to a source does not close it while its token
 * is still referenced: operations holding the token keep seeing what happens
 * to it. Once neither the source nor its token is referenced, everything
 * they held is released. A token that nothing but its source ever held (no
 * other reference, weak reference, object data, signal handler,
 * registration or [class@Gio.Cancellable] left) may then be reset and given
 * to a later source, which saves making a new object: like freed memory, a
 * pointer to it must not be kept without a reference.
 *
 * ## Thread safety
 *
 * Every method may be called from any thread. The callbacks of a cancellation
 * run on the thread that calls [method@Ctok.TokenSource.cancel].
 *
 * Since: 1.0
 */

struct _CtokTokenSource
{
  GObject parent_instance;

  /* All the state is the token's (closed included), so a source is as
   * small as a GObject can be. */
  CtokToken *token;
};

/* Unix signal sources attached by cancel_on_unix_signal(), destroyed with
 * their token source: rare, so kept aside, in a table from token source to
 * a GPtrArray of GSources, rather than in every token source. */
static CtokMutex unix_signals_mutex;
static GHashTable *unix_signals;  /* under unix_signals_mutex */
static int n_unix_signal_owners;  /* entries in unix_signals; atomic */

G_DEFINE_FINAL_TYPE (CtokTokenSource, ctok_token_source, G_TYPE_OBJECT)

/* Using a closed source is a programmer error: say so, and do nothing. */
#define return_if_closed(self, val) \
  G_STMT_START { \
    if G_UNLIKELY (ctok_token_is_source_closed ((self)->token)) \
      { \
        g_critical ("%s: the token source %p is closed", G_STRFUNC, (void *) (self)); \
        return val; \
      } \
  } G_STMT_END

static void destroy_unix_signals (CtokTokenSource *self);

static void
ctok_token_source_finalize (GObject *object)
{
  CtokTokenSource *self = CTOK_TOKEN_SOURCE (object);

  destroy_unix_signals (self);
  ctok_token_release_from_source (self->token);

  G_OBJECT_CLASS (ctok_token_source_parent_class)->finalize (object);
}

static void
ctok_token_source_class_init (CtokTokenSourceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = ctok_token_source_finalize;
}

static void
ctok_token_source_init (CtokTokenSource *self)
{
  self->token = ctok_token_new_for_source ();
}

/**
 * ctok_token_source_new:
 *
 * Creates a token source whose token is not cancelled.
 *
 * Returns: (transfer full): a new token source
 *
 * Since: 1.0
 */
CtokTokenSource *
ctok_token_source_new (void)
{
  return g_object_new (CTOK_TYPE_TOKEN_SOURCE, NULL);
}

/**
 * ctok_token_source_get_token:
 * @self: a token source
 *
 * Gets the source's token: the same token for the source's whole life, also
 * after it is closed.
 *
 * This function is thread-safe.
 *
 * Returns: (transfer none): the token
 *
 * Since: 1.0
 */
CtokToken *
ctok_token_source_get_token (CtokTokenSource *self)
{
  g_return_val_if_fail (CTOK_IS_TOKEN_SOURCE (self), NULL);

  return self->token;
}

/**
 * ctok_token_source_cancel:
 * @self: a token source
 *
 * Cancels the source's token with the reason `G_IO_ERROR_CANCELLED`
 * ("Operation was cancelled"), so that code checking for GIO's cancellation
 * error treats it as one.
 *
 * The token's [class@Gio.Cancellable], if it has one, is cancelled first;
 * then the token's callbacks run on this thread, newest first, before this
 * function returns. Cancelling a source that is already cancelled, including
 * from inside one of its own callbacks, does nothing.
 *
 * Calling this on a closed source is a programmer error.
 *
 * This function is thread-safe.
 *
 * Since: 1.0
 */
void
ctok_token_source_cancel (CtokTokenSource *self)
{
  g_return_if_fail (CTOK_IS_TOKEN_SOURCE (self));
  return_if_closed (self, );

  if (ctok_token_is_cancelled (self->token))
    return;

  ctok_token_cancel_internal (self->token, ctok_reason_new_cancelled ());
}

/**
 * ctok_token_source_cancel_with_error:
 * @self: a token source
 * @reason: why the token is cancelled
 *
 * Cancels the source's token with a copy of @reason as the reason, which
 * [method@Ctok.Token.set_error_if_cancelled] then hands to whoever checks the
 * token, in its own domain and with its own code.
 *
 * Otherwise the same as [method@Ctok.TokenSource.cancel]: the first reason
 * wins, and later calls do nothing.
 *
 * This function is thread-safe.
 *
 * Since: 1.0
 */
void
ctok_token_source_cancel_with_error (CtokTokenSource *self,
                                     const GError    *reason)
{
  g_return_if_fail (CTOK_IS_TOKEN_SOURCE (self));
  g_return_if_fail (reason != NULL);
  return_if_closed (self, );

  if (ctok_token_is_cancelled (self->token))
    return;

  ctok_token_cancel_internal (self->token, ctok_reason_new_take (g_error_copy (reason)));
}

/**
 * ctok_token_source_is_cancelled:
 * @self: a token source
 *
 * Checks whether the source's token is cancelled; the same as
 * [method@Ctok.Token.is_cancelled] on it.
 *
 * This function is thread-safe and lock-free.
 *
 * Returns: `TRUE` if the token is cancelled
 *
 * Since: 1.0
 */
gboolean
ctok_token_source_is_cancelled (CtokTokenSource *self)
{
  g_return_val_if_fail (CTOK_IS_TOKEN_SOURCE (self), FALSE);

  return ctok_token_is_cancelled (self->token);
}

/**
 * ctok_token_source_try_reset:
 * @self: a token source
 *
 * Makes a source that was never cancelled ready for reuse, as .NET's
 * `TryReset()`: every callback registered on its token with
 * [method@Ctok.Token.register] or [method@Ctok.Token.register_in_context] is
 * removed without running (their destroy notifies run), and the source's own
 * deadline is disarmed, as if the source were new. ctok's own registrations
 * stay: the sources of [method@Ctok.Token.create_source], the cancellables of
 * [method@Ctok.Token.new_cancellable], links to and from other tokens. The
 * token stays the same object.
 *
 * A source that was cancelled cannot be reset: a token goes one way only.
 *
 * Calling this on a closed source is a programmer error. Resetting a source
 * while another thread may cancel it is allowed, but then either may happen
 * first.
 *
 * Returns: `TRUE` if the source was reset, `FALSE` if it is cancelled
 *
 * Since: 1.0
 */
gboolean
ctok_token_source_try_reset (CtokTokenSource *self)
{
  g_return_val_if_fail (CTOK_IS_TOKEN_SOURCE (self), FALSE);
  return_if_closed (self, FALSE);

  return ctok_token_try_reset_internal (self->token);
}

/**
 * ctok_token_source_close:
 * @self: a token source
 *
 * Releases what the source holds on others, as .NET's `Dispose()`. Closing
 * does not cancel: a token that is not cancelled when its source is closed
 * never will be, so its registrations are removed without running (their
 * destroy notifies run), later registrations run nothing, and
 * [method@Ctok.Token.wait] returns at once. A token that is already
 * cancelled stays cancelled, with its reason.
 *
 * Afterwards [method@Ctok.TokenSource.cancel],
 * [method@Ctok.TokenSource.cancel_with_error] and
 * [method@Ctok.TokenSource.try_reset] are programmer errors. Closing twice
 * does nothing.
 *
 * This function is thread-safe.
 *
 * Since: 1.0
 */
void
ctok_token_source_close (CtokTokenSource *self)
{
  g_return_if_fail (CTOK_IS_TOKEN_SOURCE (self));

  if (!ctok_token_mark_source_closed (self->token))
    return;

  destroy_unix_signals (self);
  ctok_token_close_internal (self->token);
}

/**
 * ctok_token_source_new_linked:
 * @tokens: (array length=n_tokens) (nullable): the tokens to link to
 * @n_tokens: the number of tokens
 *
 * Creates a linked source: its token is cancelled as soon as any of @tokens
 * is, with a copy of that token's reason (so a parent that timed out makes
 * the child report `G_IO_ERROR_TIMED_OUT`, and a custom reason arrives
 * unchanged at any depth). A source linked to a token that is already
 * cancelled is born cancelled. The new source can also be cancelled on its
 * own, which never affects @tokens.
 *
 * This is how an operation runs under "the user's Cancel button, or the
 * request's deadline, or application shutdown".
 *
 * The never-cancelled [func@Ctok.Token.get_none] token is ignored, and with
 * no other token the source is a plain one. The same token may appear twice.
 *
 * The child holds a reference on each parent and one registration in it; the
 * parents hold nothing on the child. It lets go of them as soon as it is
 * cancelled, closed, or dropped (its last reference, and its token's, gone),
 * so a long-lived parent does not collect registrations from children that
 * are done, whether or not they were closed. Cancellation runs through any
 * depth of linked sources as a loop, not a recursion.
 *
 * This function is thread-safe: a parent may be cancelled on another thread
 * while the source is being created.
 *
 * Returns: (transfer full): a new token source
 *
 * Since: 1.0
 */
CtokTokenSource *
ctok_token_source_new_linked (CtokToken * const *tokens,
                              gsize              n_tokens)
{
  CtokTokenSource *self;

  g_return_val_if_fail (tokens != NULL || n_tokens == 0, NULL);
  for (gsize i = 0; i < n_tokens; i++)
    g_return_val_if_fail (CTOK_IS_TOKEN (tokens[i]), NULL);

  self = ctok_token_source_new ();
  ctok_token_link (self->token, tokens, n_tokens, FALSE);

  return self;
}

/**
 * ctok_token_source_new_linked_all:
 * @tokens: (array length=n_tokens) (nullable): the tokens to link to
 * @n_tokens: the number of tokens
 *
 * Creates a source linked to all of @tokens: its token is cancelled once
 * every one of them is, with the reason of the last one to be cancelled. It
 * is born cancelled if all of them already are. "Done when every replica has
 * given up" is the typical use.
 *
 * Otherwise the same as [ctor@Ctok.TokenSource.new_linked]: the
 * never-cancelled token is ignored, and the links are released when the new
 * source is cancelled, closed or dropped.
 *
 * This function is thread-safe.
 *
 * Returns: (transfer full): a new token source
 *
 * Since: 1.0
 */
CtokTokenSource *
ctok_token_source_new_linked_all (CtokToken * const *tokens,
                                  gsize              n_tokens)
{
  CtokTokenSource *self;

  g_return_val_if_fail (tokens != NULL || n_tokens == 0, NULL);
  for (gsize i = 0; i < n_tokens; i++)
    g_return_val_if_fail (CTOK_IS_TOKEN (tokens[i]), NULL);

  self = ctok_token_source_new ();
  ctok_token_link (self->token, tokens, n_tokens, TRUE);

  return self;
}

/**
 * ctok_token_source_new_linked_to_cancellable:
 * @cancellable: (not nullable): a cancellable
 *
 * Creates a source whose token is cancelled, with the reason
 * `G_IO_ERROR_CANCELLED`, when @cancellable is (at once if it already is).
 * This is for an operation in the GIO style, `foo_async (…, GCancellable
 * *cancellable, …)`, that wants a token inside.
 *
 * The source holds a reference on @cancellable and a handler on it until it
 * is cancelled, closed or dropped. It never calls
 * [method@Gio.Cancellable.disconnect], which deadlocks on GLib 2.74 when
 * called from the cancellable's own handlers: cancelling @cancellable from
 * one of its handlers, dropping the source in a callback of its token, and
 * resetting @cancellable afterwards are all safe.
 *
 * This function is thread-safe.
 *
 * Returns: (transfer full): a new token source
 *
 * Since: 1.0
 */
CtokTokenSource *
ctok_token_source_new_linked_to_cancellable (GCancellable *cancellable)
{
  CtokTokenSource *self;

  g_return_val_if_fail (G_IS_CANCELLABLE (cancellable), NULL);

  self = ctok_token_source_new ();
  ctok_token_link_cancellable (self->token, cancellable);

  return self;
}

/* --- Deadlines --- */

static gint64
deadline_after (guint timeout_ms)
{
  /* 64-bit all the way: G_MAXUINT ms is about 49.7 days. */
  return g_get_monotonic_time () + (gint64) timeout_ms * 1000;
}

/**
 * ctok_token_source_new_with_timeout:
 * @timeout_ms: the time until the token is cancelled, in milliseconds
 *
 * Creates a source whose token is cancelled @timeout_ms from now, with the
 * reason `G_IO_ERROR_TIMED_OUT` ("Deadline exceeded"), so that callers can
 * tell a timeout from a Cancel button. A timeout of 0 gives a source that
 * is already cancelled.
 *
 * The deadline fires on ctok's timer thread whether or not any main loop
 * runs; see [method@Ctok.TokenSource.cancel_at]. It can be moved with
 * [method@Ctok.TokenSource.cancel_after] and goes away with
 * [method@Ctok.TokenSource.close].
 *
 * Returns: (transfer full): a new token source
 *
 * Since: 1.0
 */
CtokTokenSource *
ctok_token_source_new_with_timeout (guint timeout_ms)
{
  CtokTokenSource *self = ctok_token_source_new ();

  ctok_token_set_deadline_internal (self->token, deadline_after (timeout_ms));

  return self;
}

/**
 * ctok_token_source_new_with_deadline:
 * @deadline_us: when the token is cancelled, in microseconds on the
 *   [func@GLib.get_monotonic_time] clock
 *
 * Creates a source whose token is cancelled at @deadline_us, with the reason
 * `G_IO_ERROR_TIMED_OUT`. A deadline that has passed gives a source that is
 * already cancelled; `G_MAXINT64` means no deadline.
 *
 * Returns: (transfer full): a new token source
 *
 * Since: 1.0
 */
CtokTokenSource *
ctok_token_source_new_with_deadline (gint64 deadline_us)
{
  CtokTokenSource *self = ctok_token_source_new ();

  ctok_token_set_deadline_internal (self->token, deadline_us);

  return self;
}

/**
 * ctok_token_source_cancel_after:
 * @self: a token source
 * @timeout_ms: the time until the token is cancelled, in milliseconds
 *
 * Arms the source's deadline @timeout_ms from now, or moves it there if it
 * is armed: the last call wins, so it can extend a deadline as well as
 * shorten it, as .NET's `CancelAfter()`. A timeout of 0 cancels now, on this
 * thread, with the reason `G_IO_ERROR_TIMED_OUT`. On a cancelled source it
 * does nothing.
 *
 * Calling this on a closed source is a programmer error.
 *
 * This function is thread-safe.
 *
 * Since: 1.0
 */
void
ctok_token_source_cancel_after (CtokTokenSource *self,
                                guint            timeout_ms)
{
  g_return_if_fail (CTOK_IS_TOKEN_SOURCE (self));
  return_if_closed (self, );

  ctok_token_set_deadline_internal (self->token, deadline_after (timeout_ms));
}

/**
 * ctok_token_source_cancel_at:
 * @self: a token source
 * @deadline_us: when to cancel, in microseconds on the
 *   [func@GLib.get_monotonic_time] clock, or `G_MAXINT64` for never
 *
 * Arms the source's deadline at @deadline_us, or moves it there; the last
 * call wins. A deadline that has passed cancels now, on this thread;
 * `G_MAXINT64` disarms the deadline. On a cancelled source it does nothing.
 *
 * Deadlines are kept by one timer thread for the whole process, named
 * `ctok-timer`, started the first time one is armed. It sleeps until the
 * earliest deadline, so a deadline fires on time whether or not any main
 * loop runs, and arming, moving or disarming one costs O(log n) in the
 * number pending. A token cancelled by its deadline runs its callbacks on
 * that thread: they must be short, and code that must run in a particular
 * thread registers with [method@Ctok.Token.register_in_context]. Cancelling,
 * closing or dropping a source takes its deadline out of the timer at once.
 *
 * A source linked to a token whose deadline is earlier does not arm its
 * own: that token's expiry cancels it first.
 *
 * Calling this on a closed source is a programmer error.
 *
 * This function is thread-safe.
 *
 * Since: 1.0
 */
void
ctok_token_source_cancel_at (CtokTokenSource *self,
                             gint64           deadline_us)
{
  g_return_if_fail (CTOK_IS_TOKEN_SOURCE (self));
  return_if_closed (self, );

  ctok_token_set_deadline_internal (self->token, deadline_us);
}

/**
 * ctok_token_source_clear_deadline:
 * @self: a token source
 *
 * Disarms the source's own deadline, if it has one; the same as
 * [method@Ctok.TokenSource.cancel_at] with `G_MAXINT64`, which JavaScript
 * cannot pass exactly. Deadlines inherited through links still apply. On a
 * cancelled source it does nothing.
 *
 * Calling this on a closed source is a programmer error.
 *
 * This function is thread-safe.
 *
 * Since: 1.0
 */
void
ctok_token_source_clear_deadline (CtokTokenSource *self)
{
  g_return_if_fail (CTOK_IS_TOKEN_SOURCE (self));
  return_if_closed (self, );

  ctok_token_set_deadline_internal (self->token, G_MAXINT64);
}

/**
 * ctok_token_source_get_deadline:
 * @self: a token source
 *
 * Gets the source's own pending deadline, as set by
 * [method@Ctok.TokenSource.cancel_at] and the like. Deadlines inherited
 * through links are not included: see [method@Ctok.Token.get_deadline].
 *
 * This function is thread-safe.
 *
 * Returns: the deadline in monotonic microseconds, or `G_MAXINT64` if none
 *   is pending (never set, disarmed, or the source is cancelled or closed)
 *
 * Since: 1.0
 */
gint64
ctok_token_source_get_deadline (CtokTokenSource *self)
{
  g_return_val_if_fail (CTOK_IS_TOKEN_SOURCE (self), G_MAXINT64);

  return ctok_token_get_own_deadline (self->token);
}

/* --- Cancelling on events --- */

/* What the helpers below do when their event comes: cancel, unless the
 * source was closed meanwhile (not a programmer error: nobody called). */
static void
cancel_for_event (CtokTokenSource *self,
                  CtokReason      *reason)
{
  if (ctok_token_is_source_closed (self->token) || ctok_token_is_cancelled (self->token))
    {
      ctok_reason_unref (reason);
      return;
    }

  ctok_token_cancel_internal (self->token, reason);
}

/* Returns FALSE so that, for signals with a boolean return value such as
 * GtkWindow::close-request, the handler lets the emission go on. */
static gboolean
cancel_on_signal_cb (CtokTokenSource *self)
{
  cancel_for_event (self, ctok_reason_new_cancelled ());
  return FALSE;
}

/**
 * ctok_token_source_cancel_on_signal:
 * @self: a token source
 * @instance: (type GObject.Object): the object whose signal cancels @self
 * @detailed_signal: a signal name, such as `"clicked"` or
 *   `"close-request"`
 *
 * Cancels @self, with the reason `G_IO_ERROR_CANCELLED`, when @instance
 * emits @detailed_signal: a Cancel button's `GtkButton::clicked`, a
 * window's `GtkWindow::close-request`. The handler returns `FALSE` for
 * signals that expect a boolean, so it never stops the emission.
 *
 * The connection holds no reference on either object and goes away by
 * itself when either is finalized; it can also be removed with
 * [func@GObject.signal_handler_disconnect] on @instance.
 *
 * The source is cancelled on the thread that emits the signal. Calling this
 * on a closed source is a programmer error; a signal emitted after the
 * source is closed does nothing.
 *
 * Returns: the handler id, on @instance
 *
 * Since: 1.0
 */
gulong
ctok_token_source_cancel_on_signal (CtokTokenSource *self,
                                    gpointer         instance,
                                    const char      *detailed_signal)
{
  guint signal_id;
  GQuark detail;

  g_return_val_if_fail (CTOK_IS_TOKEN_SOURCE (self), 0);
  g_return_val_if_fail (G_IS_OBJECT (instance), 0);
  g_return_val_if_fail (detailed_signal != NULL, 0);
  return_if_closed (self, 0);

  if (!g_signal_parse_name (detailed_signal, G_OBJECT_TYPE (instance), &signal_id, &detail, FALSE))
    {
      g_critical ("%s: %s has no signal “%s”", G_STRFUNC, G_OBJECT_TYPE_NAME (instance), detailed_signal);
      return 0;
    }

  return g_signal_connect_object (instance, detailed_signal,
                                  G_CALLBACK (cancel_on_signal_cb), self,
                                  G_CONNECT_SWAPPED);
}

static const char *
signal_name (int signum)
{
  switch (signum)
    {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGWINCH: return "SIGWINCH";
    default: return NULL;
    }
}

typedef struct
{
  GWeakRef source;
  int      signum;
} UnixSignalData;

static void
unix_signal_data_free (gpointer data)
{
  UnixSignalData *signal_data = data;

  g_weak_ref_clear (&signal_data->source);
  g_free (signal_data);
}

static gboolean
cancel_on_unix_signal_cb (gpointer user_data)
{
  UnixSignalData *data = user_data;
  CtokTokenSource *self = g_weak_ref_get (&data->source);

  if (self != NULL)
    {
      GError *error = g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                   /* Translators: %s is the name of a Unix
                                    * signal, such as SIGINT. */
                                   _("Cancelled by signal %s"), signal_name (data->signum));

      cancel_for_event (self, ctok_reason_new_take (error));
      g_object_unref (self);
    }

  /* Once: the next such signal gets its default action again. */
  return G_SOURCE_REMOVE;
}

/**
 * ctok_token_source_cancel_on_unix_signal:
 * @self: a token source
 * @signum: a signal number: `SIGINT`, `SIGTERM` or `SIGHUP` (or `SIGUSR1`,
 *   `SIGUSR2`, `SIGWINCH`)
 *
 * Cancels @self when the process receives @signum, so that Ctrl+C
 * (`SIGINT`) or a service manager's `SIGTERM` stops work cleanly. The reason
 * is `G_IO_ERROR_CANCELLED`, with a message that names the signal
 * ("Cancelled by signal SIGINT").
 *
 * The signal is delivered through the global default
 * [struct@GLib.MainContext] with [func@GLib.unix_signal_add], so a main
 * loop must run there, and the token's callbacks run in it. It works once:
 * the handler is then removed, and a second Ctrl+C gets the default action
 * (terminating the process) unless something else handles it. The handler
 * is also removed when the source is closed or finalized, and can be removed
 * earlier with [func@GLib.Source.remove].
 *
 * Calling this on a closed source is a programmer error.
 *
 * Returns: the id of the [struct@GLib.Source] that watches the signal
 *
 * Since: 1.0
 */
guint
ctok_token_source_cancel_on_unix_signal (CtokTokenSource *self,
                                         int              signum)
{
  UnixSignalData *data;
  GPtrArray *sources;
  GSource *source;
  guint id;

  g_return_val_if_fail (CTOK_IS_TOKEN_SOURCE (self), 0);
  g_return_val_if_fail (signal_name (signum) != NULL, 0);
  return_if_closed (self, 0);

  data = g_new0 (UnixSignalData, 1);
  g_weak_ref_init (&data->source, self);
  data->signum = signum;

  source = g_unix_signal_source_new (signum);
  g_source_set_static_name (source, "[ctok] cancel on Unix signal");
  g_source_set_callback (source, cancel_on_unix_signal_cb, data, unix_signal_data_free);
  id = g_source_attach (source, NULL);

  ctok_mutex_lock (&unix_signals_mutex);
  if (unix_signals == NULL)
    unix_signals = g_hash_table_new (NULL, NULL);
  sources = g_hash_table_lookup (unix_signals, self);
  if (sources == NULL)
    {
      sources = g_ptr_array_new_with_free_func ((GDestroyNotify) g_source_unref);
      g_hash_table_insert (unix_signals, self, sources);
      g_atomic_int_inc (&n_unix_signal_owners);
    }
  g_ptr_array_add (sources, source);
  ctok_mutex_unlock (&unix_signals_mutex);

  return id;
}

static void
destroy_unix_signals (CtokTokenSource *self)
{
  GPtrArray *sources;

  if (g_atomic_int_get (&n_unix_signal_owners) == 0)
    return;

  ctok_mutex_lock (&unix_signals_mutex);
  sources = unix_signals != NULL ? g_hash_table_lookup (unix_signals, self) : NULL;
  if (sources != NULL)
    {
      g_hash_table_remove (unix_signals, self);
      g_atomic_int_add (&n_unix_signal_owners, -1);
    }
  ctok_mutex_unlock (&unix_signals_mutex);

  if (sources == NULL)
    return;

  for (guint i = 0; i < sources->len; i++)
    g_source_destroy (g_ptr_array_index (sources, i));
  g_ptr_array_unref (sources);
}

static void
object_finalized (gpointer  data,
                  GObject  *where_the_object_was)
{
  GWeakRef *weak = data;
  CtokTokenSource *self = g_weak_ref_get (weak);

  if (self != NULL)
    {
      cancel_for_event (self, ctok_reason_new_cancelled ());
      g_object_unref (self);
    }

  g_weak_ref_clear (weak);
  g_free (weak);
}

/**
 * ctok_token_source_cancel_on_finalize:
 * @self: a token source
 * @object: an object whose end cancels @self
 *
 * Cancels @self, with the reason `G_IO_ERROR_CANCELLED`, when @object is
 * finalized: work done for a window, a widget or a request stops when it
 * goes away.
 *
 * Neither object keeps the other alive. If @self goes first, nothing
 * happens when @object goes; a closed source is not cancelled either.
 *
 * The source is cancelled on the thread that drops @object's last
 * reference. Calling this on a closed source is a programmer error.
 *
 * Since: 1.0
 */
void
ctok_token_source_cancel_on_finalize (CtokTokenSource *self,
                                      GObject         *object)
{
  GWeakRef *weak;

  g_return_if_fail (CTOK_IS_TOKEN_SOURCE (self));
  g_return_if_fail (G_IS_OBJECT (object));
  return_if_closed (self, );

  weak = g_new0 (GWeakRef, 1);
  g_weak_ref_init (weak, self);
  g_object_weak_ref (object, object_finalized, weak);
}
