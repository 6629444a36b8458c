/* test-gio.c: GCancellable interop, GSources, main contexts and waiting
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib-unix.h>
#include <gio/gunixinputstream.h>
#include <unistd.h>

#include <ctok/ctok.h>

#include "test-common.h"

static gboolean
cancellable_seen_cancelled (GCancellable *cancellable)
{
  return g_cancellable_is_cancelled (cancellable);
}

/* --- The shared cancellable --- */

static void
check_cancellable_in_callback (CtokToken *token,
                               gpointer   user_data)
{
  gboolean *seen = user_data;

  *seen = g_cancellable_is_cancelled (ctok_token_get_cancellable (token));
}

static void
test_cancellable_shared (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  GCancellable *cancellable = ctok_token_get_cancellable (token);
  gboolean seen_in_callback = FALSE;

  g_test_summary ("The token's GCancellable is shared, and cancelled before the callbacks run");

  g_assert_true (G_IS_CANCELLABLE (cancellable));
  g_assert_true (ctok_token_get_cancellable (token) == cancellable);
  g_assert_false (g_cancellable_is_cancelled (cancellable));

  ctok_token_register (token, check_cancellable_in_callback, &seen_in_callback, NULL);
  ctok_token_source_cancel (source);

  g_assert_true (cancellable_seen_cancelled (cancellable));
  g_assert_true (seen_in_callback);
}

static void
test_cancellable_after_cancel (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);

  ctok_token_source_cancel (source);
  g_assert_true (g_cancellable_is_cancelled (ctok_token_get_cancellable (token)));
}

static void
test_cancellable_external_cancel (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(GError) error = NULL;
  CallbackRecord record = { 0, };

  g_test_summary ("g_cancellable_cancel() on the token's cancellable cancels the token");

  ctok_token_register (token, record_callback, &record, record_destroy);
  g_cancellable_cancel (ctok_token_get_cancellable (token));

  g_assert_true (ctok_token_is_cancelled (token));
  g_assert_cmpint (record.calls, ==, 1);
  error = ctok_token_dup_error (token);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
test_cancellable_reset (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  GCancellable *cancellable = ctok_token_get_cancellable (token);

  ctok_token_source_cancel (source);
  g_cancellable_reset (cancellable);
  g_assert_false (g_cancellable_is_cancelled (cancellable));

  /* The token never goes back; its cancellable is made to agree again. */
  g_assert_true (ctok_token_get_cancellable (token) == cancellable);
  g_assert_true (g_cancellable_is_cancelled (cancellable));
  g_assert_true (ctok_token_is_cancelled (token));
}

static void
test_cancellable_outlives_token (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  GCancellable *cancellable = g_object_ref (ctok_token_get_cancellable (ctok_token_source_get_token (source)));

  g_assert_finalize_object (source);

  /* Detached: cancelling it affects nothing, crashes nothing. */
  g_cancellable_cancel (cancellable);
  g_assert_true (g_cancellable_is_cancelled (cancellable));
  g_assert_finalize_object (cancellable);
}

/* --- Per-operation cancellables --- */

static void
test_cancellable_per_operation (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  GCancellable *first = ctok_token_new_cancellable (token);
  GCancellable *second = ctok_token_new_cancellable (token);
  GCancellable *late;

  g_test_summary ("new_cancellable(): follows the token; cancelling it affects nobody else");

  g_assert_true (first != second);
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, 2);

  /* libsoup cancels what it is given: the token and the others don't care. */
  g_cancellable_cancel (first);
  g_assert_false (ctok_token_is_cancelled (token));
  g_assert_false (g_cancellable_is_cancelled (second));

  /* Dropping it removes its registration. */
  g_assert_finalize_object (first);
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, 1);

  ctok_token_source_cancel (source);
  g_assert_true (g_cancellable_is_cancelled (second));
  g_assert_finalize_object (second);

  late = ctok_token_new_cancellable (token);
  g_assert_true (g_cancellable_is_cancelled (late));
  g_assert_finalize_object (late);

  /* The none token gives a cancellable nothing cancels. */
  late = ctok_token_new_cancellable (ctok_token_get_none ());
  g_assert_true (G_IS_CANCELLABLE (late));
  g_assert_false (g_cancellable_is_cancelled (late));
  g_assert_finalize_object (late);
}

static void
test_cancellable_per_operation_keeps_token (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  GCancellable *cancellable = ctok_token_new_cancellable (token);
  GWeakRef weak;

  g_weak_ref_init (&weak, token);
  g_object_unref (source);

  /* The operation's cancellable keeps the token alive... */
  token = g_weak_ref_get (&weak);
  g_assert_nonnull (token);
  g_object_unref (token);

  /* ...and releases it with the operation. */
  g_assert_finalize_object (cancellable);
  g_assert_null (g_weak_ref_get (&weak));
  g_weak_ref_clear (&weak);
}

/* --- A real GIO operation --- */

typedef struct
{
  GMainLoop *loop;
  GError    *error;
  gssize     n_read;
  gboolean   done;
} ReadData;

static void
read_done (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  ReadData *data = user_data;

  data->n_read = g_input_stream_read_finish (G_INPUT_STREAM (object), result, &data->error);
  data->done = TRUE;
  g_main_loop_quit (data->loop);
}

static gboolean
cancel_later (gpointer user_data)
{
  g_autoptr(GError) reason = g_error_new_literal (TEST_ERROR, 42, "user pressed Cancel");

  ctok_token_source_cancel_with_error (user_data, reason);
  return G_SOURCE_REMOVE;
}

static void
run_blocked_read (gboolean per_operation)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GCancellable) op_cancellable = NULL;
  GCancellable *cancellable;
  ReadData data = { g_main_loop_new (NULL, FALSE), NULL, 0, FALSE };
  char buffer[16];
  int fds[2];

  g_assert_no_errno (pipe (fds));
  stream = g_unix_input_stream_new (fds[0], TRUE);

  if (per_operation)
    cancellable = op_cancellable = ctok_token_new_cancellable (token);
  else
    cancellable = ctok_token_get_cancellable (token);

  /* Nobody ever writes: only the token can end this read. */
  g_input_stream_read_async (stream, buffer, sizeof buffer, G_PRIORITY_DEFAULT,
                             cancellable, read_done, &data);
  g_timeout_add (20, cancel_later, source);

  g_main_loop_run (data.loop);

  g_assert_true (data.done);
  g_assert_cmpint (data.n_read, ==, -1);
  g_assert_error (data.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* GIO says "cancelled"; the token knows why. */
  g_assert_true (ctok_token_rewrite_error (token, &data.error));
  g_assert_error (data.error, TEST_ERROR, 42);
  g_assert_cmpstr (data.error->message, ==, "user pressed Cancel");

  g_clear_error (&data.error);
  g_main_loop_unref (data.loop);
  close (fds[1]);
}

static void
test_gio_read_shared (void)
{
  g_test_summary ("A GIO read blocked on an empty pipe stops when the token is cancelled");
  run_blocked_read (FALSE);
}

static void
test_gio_read_per_operation (void)
{
  run_blocked_read (TRUE);
}

/* --- create_source() --- */

typedef struct
{
  int        calls;
  CtokToken *token;
  GThread   *thread;
  GMainLoop *loop;
} SourceData;

static gboolean
source_callback (CtokToken *token,
                 gpointer   user_data)
{
  SourceData *data = user_data;

  data->calls++;
  data->token = token;
  data->thread = g_thread_self ();
  if (data->loop != NULL)
    g_main_loop_quit (data->loop);
  return G_SOURCE_REMOVE;
}

static void
test_create_source (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  SourceData data = { 0, NULL, NULL, g_main_loop_new (NULL, FALSE) };
  GSource *gsource = ctok_token_create_source (token);
  GThread *thread;

  g_test_summary ("create_source() dispatches once, in its context, whatever thread cancels");

  g_source_set_callback (gsource, (GSourceFunc) (void (*) (void)) source_callback, &data, NULL);
  g_source_attach (gsource, NULL);

  /* Not ready until cancelled. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpint (data.calls, ==, 0);

  thread = g_thread_new ("canceller", (GThreadFunc) (void (*) (void)) ctok_token_source_cancel, source);
  g_main_loop_run (data.loop);
  g_thread_join (thread);

  g_assert_cmpint (data.calls, ==, 1);
  g_assert_true (data.token == token);
  g_assert_true (data.thread == g_thread_self ());

  g_source_destroy (gsource);
  g_source_unref (gsource);
  g_main_loop_unref (data.loop);
}

static void
test_create_source_cancelled (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  SourceData data = { 0, };
  GSource *gsource;

  ctok_token_source_cancel (source);

  gsource = ctok_token_create_source (ctok_token_source_get_token (source));
  g_source_set_callback (gsource, (GSourceFunc) (void (*) (void)) source_callback, &data, NULL);
  g_source_attach (gsource, NULL);

  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpint (data.calls, ==, 1);

  g_source_unref (gsource);
}

static void
test_create_source_destroy_early (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  SourceData data = { 0, };
  GSource *gsource = ctok_token_create_source (token);

  g_source_set_callback (gsource, (GSourceFunc) (void (*) (void)) source_callback, &data, NULL);
  g_source_attach (gsource, NULL);
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, 1);

  g_source_destroy (gsource);
  g_source_unref (gsource);
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, 0);

  ctok_token_source_cancel (source);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpint (data.calls, ==, 0);
}

static void
closure_marshal (GClosure     *closure,
                 GValue       *return_value,
                 guint         n_param_values,
                 const GValue *param_values,
                 gpointer      invocation_hint,
                 gpointer      marshal_data)
{
  SourceData *data = closure->data;

  g_assert_cmpuint (n_param_values, ==, 1);
  data->calls++;
  data->token = g_value_get_object (&param_values[0]);
  g_value_set_boolean (return_value, G_SOURCE_REMOVE);
}

static void
test_create_source_closure (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  SourceData data = { 0, };
  GSource *gsource = ctok_token_create_source (token);
  GClosure *closure = g_closure_new_simple (sizeof (GClosure), &data);

  g_test_summary ("Bindings: g_source_set_closure() works, and the closure gets the token");

  g_closure_set_marshal (closure, closure_marshal);
  /* Sinks the floating closure. */
  g_source_set_closure (gsource, closure);
  g_source_attach (gsource, NULL);

  ctok_token_source_cancel (source);
  while (g_main_context_iteration (NULL, FALSE))
    ;

  g_assert_cmpint (data.calls, ==, 1);
  g_assert_true (data.token == token);
  g_source_unref (gsource);
}

/* --- register_in_context() --- */

typedef struct
{
  GMainContext *context;
  GMainLoop    *loop;
  GThread      *loop_thread;
  GThread      *callback_thread;
  GThread      *destroy_thread;
  int           calls;
  int           destroys;
} ContextData;

static void
context_callback (CtokToken *token,
                  gpointer   user_data)
{
  ContextData *data = user_data;

  g_atomic_int_inc (&data->calls);
  data->callback_thread = g_thread_self ();
  g_assert_true (ctok_token_is_cancelled (token));
}

static void
context_destroy (gpointer user_data)
{
  ContextData *data = user_data;

  data->destroy_thread = g_thread_self ();
  g_atomic_int_inc (&data->destroys);
  if (data->loop != NULL)
    g_main_loop_quit (data->loop);
}

static gpointer
loop_thread_func (gpointer user_data)
{
  ContextData *data = user_data;

  g_main_context_push_thread_default (data->context);
  g_main_loop_run (data->loop);
  g_main_context_pop_thread_default (data->context);

  return NULL;
}

static void
context_data_init (ContextData *data)
{
  memset (data, 0, sizeof *data);
  data->context = g_main_context_new ();
  data->loop = g_main_loop_new (data->context, FALSE);
}

static void
context_data_clear (ContextData *data)
{
  g_clear_pointer (&data->loop, g_main_loop_unref);
  g_clear_pointer (&data->context, g_main_context_unref);
}

static void
test_register_in_context (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  ContextData data;
  GThread *thread;
  guint64 id;

  g_test_summary ("register_in_context() runs the callback and its destroy notify in the context");

  context_data_init (&data);
  id = ctok_token_register_in_context (token, data.context, context_callback, &data, context_destroy);
  g_assert_cmpuint (id, !=, 0);

  thread = g_thread_new ("loop", loop_thread_func, &data);

  /* Cancelled on this thread; delivered on the loop's. */
  ctok_token_source_cancel (source);
  g_thread_join (thread);

  g_assert_cmpint (data.calls, ==, 1);
  g_assert_cmpint (data.destroys, ==, 1);
  g_assert_true (data.callback_thread == thread);
  g_assert_true (data.destroy_thread == thread);
  g_assert_false (ctok_token_unregister (token, id));

  context_data_clear (&data);
}

static void
test_register_in_context_withdraw (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  ContextData data;
  guint64 id;

  g_test_summary ("Unregistering after the token fired but before the context dispatched");

  context_data_init (&data);
  id = ctok_token_register_in_context (token, data.context, context_callback, &data, context_destroy);

  ctok_token_source_cancel (source);
  /* The context has not run yet: the callback can still be withdrawn. */
  g_assert_true (ctok_token_unregister (token, id));
  g_assert_false (ctok_token_unregister (token, id));

  while (g_main_context_iteration (data.context, FALSE))
    ;
  g_assert_cmpint (data.calls, ==, 0);
  g_assert_cmpint (data.destroys, ==, 1);

  context_data_clear (&data);
}

static void
test_register_in_context_unregister_early (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  ContextData data;
  guint64 id;

  context_data_init (&data);
  id = ctok_token_register_in_context (token, data.context, context_callback, &data, context_destroy);

  g_assert_true (ctok_token_unregister (token, id));
  /* The destroy notify waits for the context. */
  g_assert_cmpint (data.destroys, ==, 0);
  while (g_main_context_iteration (data.context, FALSE))
    ;
  g_assert_cmpint (data.destroys, ==, 1);
  g_assert_true (data.destroy_thread == g_thread_self ());

  ctok_token_source_cancel (source);
  while (g_main_context_iteration (data.context, FALSE))
    ;
  g_assert_cmpint (data.calls, ==, 0);

  context_data_clear (&data);
}

static void
test_register_in_context_cancelled (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  ContextData data;
  guint64 id;

  context_data_init (&data);
  ctok_token_source_cancel (source);

  id = ctok_token_register_in_context (token, data.context, context_callback, &data, context_destroy);
  g_assert_cmpuint (id, ==, 0);
  /* Not synchronous: dispatched in the context. */
  g_assert_cmpint (data.calls, ==, 0);

  while (g_main_context_iteration (data.context, FALSE))
    ;
  g_assert_cmpint (data.calls, ==, 1);
  g_assert_cmpint (data.destroys, ==, 1);

  context_data_clear (&data);
}

static void
test_register_in_context_default (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  ContextData data;

  context_data_init (&data);

  /* NULL means the thread-default context at registration time. */
  g_main_context_push_thread_default (data.context);
  ctok_token_register_in_context (ctok_token_source_get_token (source), NULL,
                                  context_callback, &data, context_destroy);
  g_main_context_pop_thread_default (data.context);

  ctok_token_source_cancel (source);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpint (data.calls, ==, 0);

  while (g_main_context_iteration (data.context, FALSE))
    ;
  g_assert_cmpint (data.calls, ==, 1);

  context_data_clear (&data);
}

static void
test_register_in_context_token_dropped (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  ContextData data;

  context_data_init (&data);
  ctok_token_register_in_context (ctok_token_source_get_token (source), data.context,
                                  context_callback, &data, context_destroy);

  g_assert_finalize_object (source);
  while (g_main_context_iteration (data.context, FALSE))
    ;
  g_assert_cmpint (data.calls, ==, 0);
  g_assert_cmpint (data.destroys, ==, 1);

  context_data_clear (&data);
}

static void
test_register_in_context_context_gone (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  ContextData data;

  g_test_summary ("A context destroyed before it dispatched still gets the destroy notify run");

  context_data_init (&data);
  ctok_token_register_in_context (token, data.context, context_callback, &data, context_destroy);
  ctok_token_source_cancel (source);

  /* Never iterated. */
  context_data_clear (&data);

  g_assert_cmpint (data.calls, ==, 0);
  g_assert_cmpint (data.destroys, ==, 1);
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, 0);
}

static void
drop_in_context (CtokToken *token,
                 gpointer   user_data)
{
  CtokTokenSource **source = user_data;

  g_clear_object (source);
}

static void
test_register_in_context_drop_in_callback (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  GWeakRef weak;

  g_test_summary ("Regression: a context callback that drops its token's last reference "
                  "returns (the token's dispose must not wait for that very callback)");

  g_weak_ref_init (&weak, token);
  ctok_token_register_in_context (token, NULL, drop_in_context, &source, NULL);
  ctok_token_source_cancel (source);

  while (source != NULL)
    g_main_context_iteration (NULL, TRUE);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_null (g_weak_ref_get (&weak));
  g_weak_ref_clear (&weak);
}

/* --- Notifications in the token's context --- */

typedef struct
{
  GThread         *thread;
  int              count;
  GMainLoop       *loop;
  CtokTokenSource *source;
  GThread         *canceller;
} NotifyData;

static void
start_canceller (gpointer user_data)
{
  NotifyData *data = user_data;

  data->canceller = g_thread_new ("canceller",
                                  (GThreadFunc) (void (*) (void)) ctok_token_source_cancel,
                                  data->source);
}

static void
on_notify (GObject    *object,
           GParamSpec *pspec,
           gpointer    user_data)
{
  NotifyData *data = user_data;

  data->thread = g_thread_self ();
  data->count++;
  g_main_loop_quit (data->loop);
}

static void
test_notify_in_context (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  NotifyData data = { NULL, 0, g_main_loop_new (NULL, FALSE), NULL, NULL };

  g_test_summary ("notify::cancelled is emitted in the main context, not on the cancelling thread");

  g_signal_connect (token, "notify::cancelled", G_CALLBACK (on_notify), &data);

  /* The loop owns the default context while the other thread cancels. */
  data.source = source;
  g_idle_add_once (start_canceller, &data);
  g_main_loop_run (data.loop);
  g_thread_join (data.canceller);

  g_assert_cmpint (data.count, ==, 1);
  g_assert_true (data.thread == g_thread_self ());

  g_main_loop_unref (data.loop);
}

/* --- Waiting --- */

static gpointer
wait_thread (gpointer user_data)
{
  return GINT_TO_POINTER (ctok_token_wait (user_data, -1));
}

static void
test_wait (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  GThread *thread;

  g_assert_false (ctok_token_wait (token, 0));
  g_assert_false (ctok_token_wait (token, 1000));

  thread = g_thread_new ("waiter", wait_thread, token);
  g_usleep (10 * G_TIME_SPAN_MILLISECOND);
  ctok_token_source_cancel (source);
  g_assert_true (GPOINTER_TO_INT (g_thread_join (thread)));

  g_assert_true (ctok_token_wait (token, 0));
  g_assert_true (ctok_token_wait (token, -1));
}

static void
test_wait_close (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  GThread *thread;

  g_test_summary ("A thread waiting forever wakes up when the source is closed");

  thread = g_thread_new ("waiter", wait_thread, token);
  g_usleep (10 * G_TIME_SPAN_MILLISECOND);
  ctok_token_source_close (source);
  g_assert_false (GPOINTER_TO_INT (g_thread_join (thread)));
}

typedef struct
{
  GMainLoop *loop;
  gboolean   result;
  GError    *error;
  gboolean   done;
} WaitAsyncData;

static void
wait_async_done (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  WaitAsyncData *data = user_data;

  data->result = ctok_token_wait_finish (CTOK_TOKEN (object), result, &data->error);
  data->done = TRUE;
  g_main_loop_quit (data->loop);
}

static void
run_wait_async (CtokToken     *token,
                GCancellable  *cancellable,
                void         (*trigger) (gpointer),
                gpointer       trigger_data,
                WaitAsyncData *data)
{
  data->loop = g_main_loop_new (NULL, FALSE);
  data->result = FALSE;
  data->error = NULL;
  data->done = FALSE;

  ctok_token_wait_async (token, cancellable, wait_async_done, data);
  if (trigger != NULL)
    trigger (trigger_data);
  if (!data->done)
    g_main_loop_run (data->loop);

  g_main_loop_unref (data->loop);
}

static void
test_wait_async (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  g_autoptr(CtokTokenSource) closed = ctok_token_source_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(CtokTokenSource) waited = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  WaitAsyncData data;

  /* Cancelled: TRUE. */
  run_wait_async (token, cancellable, (void (*) (gpointer)) ctok_token_source_cancel, source, &data);
  g_assert_no_error (data.error);
  g_assert_true (data.result);
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, 0);

  /* Already cancelled: TRUE. */
  run_wait_async (token, NULL, NULL, NULL, &data);
  g_assert_true (data.result);

  /* Closed: FALSE, no error. */
  run_wait_async (ctok_token_source_get_token (closed), NULL,
                  (void (*) (gpointer)) ctok_token_source_close, closed, &data);
  g_assert_no_error (data.error);
  g_assert_false (data.result);

  /* try_reset() drops the caller's callbacks, not a wait in progress. */
  {
    g_autoptr(CtokTokenSource) reset = ctok_token_source_new ();

    data.loop = g_main_loop_new (NULL, FALSE);
    data.done = FALSE;
    data.error = NULL;
    ctok_token_wait_async (ctok_token_source_get_token (reset), NULL, wait_async_done, &data);
    g_assert_true (ctok_token_source_try_reset (reset));
    while (g_main_context_iteration (NULL, FALSE))
      ;
    g_assert_false (data.done);
    ctok_token_source_cancel (reset);
    g_main_loop_run (data.loop);
    g_assert_true (data.result);
    g_main_loop_unref (data.loop);
  }

  /* The none token: FALSE at once. */
  run_wait_async (ctok_token_get_none (), NULL, NULL, NULL, &data);
  g_assert_no_error (data.error);
  g_assert_false (data.result);

  /* The wait's own cancellable: G_IO_ERROR_CANCELLED, and no registration left. */
  run_wait_async (ctok_token_source_get_token (waited), cancellable,
                  (void (*) (gpointer)) g_cancellable_cancel, cancellable, &data);
  g_assert_error (data.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (data.result);
  g_clear_error (&data.error);
  g_assert_cmpuint (ctok_token_debug_count_registrations (ctok_token_source_get_token (waited)), ==, 0);
  g_assert_false (ctok_token_is_cancelled (ctok_token_source_get_token (waited)));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/token/cancellable/shared", test_cancellable_shared);
  g_test_add_func ("/token/cancellable/after-cancel", test_cancellable_after_cancel);
  g_test_add_func ("/token/cancellable/external-cancel", test_cancellable_external_cancel);
  g_test_add_func ("/token/cancellable/reset", test_cancellable_reset);
  g_test_add_func ("/token/cancellable/outlives-token", test_cancellable_outlives_token);
  g_test_add_func ("/token/cancellable/per-operation", test_cancellable_per_operation);
  g_test_add_func ("/token/cancellable/per-operation-keeps-token", test_cancellable_per_operation_keeps_token);
  g_test_add_func ("/token/gio/read-shared", test_gio_read_shared);
  g_test_add_func ("/token/gio/read-per-operation", test_gio_read_per_operation);
  g_test_add_func ("/token/create-source/other-thread", test_create_source);
  g_test_add_func ("/token/create-source/cancelled", test_create_source_cancelled);
  g_test_add_func ("/token/create-source/destroy-early", test_create_source_destroy_early);
  g_test_add_func ("/token/create-source/closure", test_create_source_closure);
  g_test_add_func ("/token/register-in-context/other-thread", test_register_in_context);
  g_test_add_func ("/token/register-in-context/withdraw", test_register_in_context_withdraw);
  g_test_add_func ("/token/register-in-context/unregister-early", test_register_in_context_unregister_early);
  g_test_add_func ("/token/register-in-context/cancelled", test_register_in_context_cancelled);
  g_test_add_func ("/token/register-in-context/thread-default", test_register_in_context_default);
  g_test_add_func ("/token/register-in-context/token-dropped", test_register_in_context_token_dropped);
  g_test_add_func ("/token/register-in-context/context-gone", test_register_in_context_context_gone);
  g_test_add_func ("/token/register-in-context/drop-in-callback", test_register_in_context_drop_in_callback);
  g_test_add_func ("/token/notify/in-context", test_notify_in_context);
  g_test_add_func ("/token/wait/sync", test_wait);
  g_test_add_func ("/token/wait/close", test_wait_close);
  g_test_add_func ("/token/wait/async", test_wait_async);

  return g_test_run ();
}
