/* test-recycle.c: tokens reused by later sources, and only when nobody
 * else can tell
 *
 * A source's token that nothing else saw is kept, reset, for the next
 * source (see "Recycling" in ctok/ctok-token.c). These tests count the
 * tokens made and finalized through the class's constructed and finalize
 * methods, which they wrap.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <ctok/ctok.h>

#include "test-common.h"

static int n_constructed;
static int n_finalized;
static void (*token_constructed) (GObject *object);
static void (*token_finalize) (GObject *object);

static void
counting_constructed (GObject *object)
{
  g_atomic_int_inc (&n_constructed);
  token_constructed (object);
}

static void
counting_finalize (GObject *object)
{
  g_atomic_int_inc (&n_finalized);
  token_finalize (object);
}

static int
live_tokens (void)
{
  return g_atomic_int_get (&n_constructed) - g_atomic_int_get (&n_finalized);
}

/* --- Recycled --- */

static void
test_recycled (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  CallbackRecord unused = { 0, };
  CtokTokenSource *next;
  int before;
  guint64 id;

  g_test_summary ("A token only its source knew is reused by the next source, as new");

  /* A registration that came and went leaves nothing behind. */
  id = ctok_token_register (token, record_callback, &unused, record_destroy);
  g_assert_true (ctok_token_unregister (token, id));
  g_assert_cmpint (unused.destroys, ==, 1);

  before = live_tokens ();
  g_object_unref (source);
  g_assert_cmpint (live_tokens (), ==, before);  /* kept */

  next = ctok_token_source_new ();
  g_assert_cmpint (live_tokens (), ==, before);  /* reused, not made */
  g_assert_true (ctok_token_source_get_token (next) == token);
  g_assert_false (ctok_token_is_cancelled (token));
  g_assert_cmpint (ctok_token_get_deadline (token), ==, G_MAXINT64);
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, 0);

  /* And it works as a new one does. */
  {
    CallbackRecord record = { 0, };
    g_autoptr(GError) error = NULL;

    ctok_token_register (token, record_callback, &record, record_destroy);
    ctok_token_source_cancel (next);
    g_assert_cmpint (record.calls, ==, 1);
    g_assert_cmpint (record.destroys, ==, 1);
    g_assert_true (ctok_token_set_error_if_cancelled (token, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  }

  /* A cancelled token is never reused. */
  before = live_tokens ();
  g_object_unref (next);
  g_assert_cmpint (live_tokens (), ==, before - 1);
}

static void
test_recycled_deadline (void)
{
  /* Long enough to be dropped before it is due even in a stalled run. */
  CtokTokenSource *source = ctok_token_source_new_with_timeout (200);
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(CtokTokenSource) next = NULL;

  g_test_summary ("A recycled token's deadline is disarmed and cleared");

  g_object_unref (source);
  next = ctok_token_source_new ();
  g_assert_true (ctok_token_source_get_token (next) == token);
  g_assert_cmpint (ctok_token_get_deadline (token), ==, G_MAXINT64);
  g_assert_cmpint (ctok_token_get_timeout_ms (token), ==, -1);

  /* The old deadline never fires on the new source. */
  g_usleep (250 * G_TIME_SPAN_MILLISECOND);
  g_assert_false (ctok_token_is_cancelled (token));

  /* A new one does. */
  ctok_token_source_cancel_after (next, 10);
  ctok_token_wait (token, -1);
  g_assert_true (ctok_token_is_cancelled (token));
}

static void
test_recycled_linked (void)
{
  g_autoptr(CtokTokenSource) root = ctok_token_source_new ();
  CtokToken *root_token = ctok_token_source_get_token (root);
  CtokTokenSource *child = ctok_token_source_new_linked (&root_token, 1);
  CtokToken *token = ctok_token_source_get_token (child);
  g_autoptr(CtokTokenSource) next = NULL;

  g_test_summary ("A recycled linked token is unlinked from its parents");

  g_assert_cmpuint (ctok_token_debug_count_registrations (root_token), ==, 1);
  g_object_unref (child);
  g_assert_cmpuint (ctok_token_debug_count_registrations (root_token), ==, 0);

  next = ctok_token_source_new ();
  g_assert_true (ctok_token_source_get_token (next) == token);
  ctok_token_source_cancel (root);
  g_assert_false (ctok_token_is_cancelled (token));
}

static gpointer
make_source_thread (gpointer data)
{
  return ctok_token_source_new ();
}

static gpointer
cancel_thread (gpointer data)
{
  ctok_token_source_cancel (data);
  return NULL;
}

static void
test_recycled_across_threads (void)
{
  GThread *thread = g_thread_new ("maker", make_source_thread, NULL);
  CtokTokenSource *source = g_thread_join (thread);
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(CtokTokenSource) next = NULL;
  GMainContext *context = g_main_context_new ();
  CallbackRecord record = { 0, };

  g_test_summary ("A token dropped on another thread than its maker's is recycled "
                  "there, and belongs to its new creator's thread and context");

  g_object_unref (source);

  g_main_context_push_thread_default (context);
  next = ctok_token_source_new ();
  g_main_context_pop_thread_default (context);
  g_assert_true (ctok_token_source_get_token (next) == token);

  /* Its home context is the new one: notify is delivered there. */
  g_signal_connect_swapped (token, "notify::cancelled", G_CALLBACK (record_destroy), &record);
  thread = g_thread_new ("canceller", cancel_thread, next);
  g_thread_join (thread);
  g_assert_cmpint (record.destroys, ==, 0);
  while (g_main_context_iteration (context, FALSE))
    ;
  g_assert_cmpint (record.destroys, ==, 1);

  g_main_context_unref (context);
}

/* --- Not recycled: someone else could tell --- */

static void
test_kept_by_reference (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = g_object_ref (ctok_token_source_get_token (source));
  int before = live_tokens ();

  g_object_unref (source);
  g_assert_cmpint (live_tokens (), ==, before);
  {
    g_autoptr(CtokTokenSource) next = ctok_token_source_new ();

    g_assert_true (ctok_token_source_get_token (next) != token);
    g_assert_cmpint (live_tokens (), ==, before + 1);
    ctok_token_source_cancel (next);
  }
  g_assert_false (ctok_token_is_cancelled (token));
  g_assert_finalize_object (token);
}

static void
weak_notify (gpointer  data,
             GObject  *where_the_object_was)
{
  (*(int *) data)++;
}

static void
test_weak_ref (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  int notified = 0;

  g_test_summary ("A weakly referenced token is finalized, not recycled");

  g_object_weak_ref (G_OBJECT (token), weak_notify, &notified);
  g_object_unref (source);
  g_assert_cmpint (notified, ==, 1);
}

static void
test_qdata (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  CallbackRecord record = { 0, };

  g_test_summary ("A token with data attached is finalized, and the data freed");

  g_object_set_data_full (G_OBJECT (token), "test", &record, record_destroy);
  g_object_unref (source);
  g_assert_cmpint (record.destroys, ==, 1);
}

static void
test_signal_handler (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(CtokTokenSource) next = NULL;
  CallbackRecord record = { 0, };

  g_test_summary ("A token with a notify handler is finalized with its handler, "
                  "which never sees another source's cancellation");

  g_signal_connect_data (token, "notify::cancelled", G_CALLBACK (record_callback), &record,
                         (GClosureNotify) (void (*) (void)) record_destroy, 0);
  g_object_unref (source);
  g_assert_cmpint (record.destroys, ==, 1);

  next = ctok_token_source_new ();
  ctok_token_source_cancel (next);
  g_assert_cmpint (record.calls, ==, 0);
}

static void
test_registration (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(CtokTokenSource) next = NULL;
  CallbackRecord record = { 0, };
  int before = live_tokens ();

  g_test_summary ("A token with registrations drops them when its source goes");

  ctok_token_register (token, record_callback, &record, record_destroy);
  g_object_unref (source);
  g_assert_cmpint (record.destroys, ==, 1);
  g_assert_cmpint (live_tokens (), ==, before - 1);

  next = ctok_token_source_new ();
  ctok_token_source_cancel (next);
  g_assert_cmpint (record.calls, ==, 0);
}

static void
test_cancellable (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  GCancellable *cancellable = g_object_ref (ctok_token_get_cancellable (token));
  g_autoptr(CtokTokenSource) next = NULL;
  int before = live_tokens ();

  g_test_summary ("A token whose GCancellable was handed out is not recycled");

  g_object_unref (source);
  g_assert_cmpint (live_tokens (), ==, before - 1);
  next = ctok_token_source_new ();
  ctok_token_source_cancel (next);
  g_assert_false (g_cancellable_is_cancelled (cancellable));
  g_object_unref (cancellable);
}

static void
test_closed (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  int before = live_tokens ();

  ctok_token_source_close (source);
  g_object_unref (source);
  g_assert_cmpint (live_tokens (), ==, before - 1);
}

int
main (int   argc,
      char *argv[])
{
  GObjectClass *token_class;

  g_test_init (&argc, &argv, NULL);

  token_class = g_type_class_ref (CTOK_TYPE_TOKEN);
  token_constructed = token_class->constructed;
  token_finalize = token_class->finalize;
  token_class->constructed = counting_constructed;
  token_class->finalize = counting_finalize;

  g_test_add_func ("/recycle/reused", test_recycled);
  g_test_add_func ("/recycle/deadline", test_recycled_deadline);
  g_test_add_func ("/recycle/linked", test_recycled_linked);
  g_test_add_func ("/recycle/across-threads", test_recycled_across_threads);
  g_test_add_func ("/recycle/not/referenced", test_kept_by_reference);
  g_test_add_func ("/recycle/not/weak-ref", test_weak_ref);
  g_test_add_func ("/recycle/not/qdata", test_qdata);
  g_test_add_func ("/recycle/not/signal-handler", test_signal_handler);
  g_test_add_func ("/recycle/not/registration", test_registration);
  g_test_add_func ("/recycle/not/cancellable", test_cancellable);
  g_test_add_func ("/recycle/not/closed", test_closed);

  return g_test_run ();
}
