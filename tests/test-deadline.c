/* test-deadline.c: deadlines and the timer thread
 *
 * Timing-sensitive tests assert order and reasons, never tight wall-clock
 * bounds: a deadline "has not fired yet" is checked well before it is due,
 * and "fires" by waiting for it without a time limit.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>
#include <gio/gunixinputstream.h>

#include <ctok/ctok.h>

#include "test-common.h"

#define token_of ctok_token_source_get_token
#define MS (G_TIME_SPAN_MILLISECOND)

/* For a deadline a test arms and then takes away before it is due: long
 * enough that the test gets there first even when the machine stalls it,
 * as valgrind on a busy machine once did for more than 20 ms. */
#define SOON_MS 200

static void
assert_timed_out (CtokToken *token)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (ctok_token_set_error_if_cancelled (token, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpstr (error->message, ==, "Deadline exceeded");
}

static void
test_timeout_fires (void)
{
  gint64 start = g_get_monotonic_time ();
  g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_timeout (20);
  CtokToken *token = token_of (source);

  g_test_summary ("A deadline cancels with G_IO_ERROR_TIMED_OUT; no main loop runs anywhere");

  /* Not before its time (a stalled run may already be past it). */
  if (ctok_token_is_cancelled (token))
    g_assert_cmpint (g_get_monotonic_time () - start, >=, 20 * MS);
  g_assert_true (ctok_token_wait (token, -1));
  assert_timed_out (token);
  /* Nothing pending once fired. */
  g_assert_cmpint (ctok_token_source_get_deadline (source), ==, G_MAXINT64);
  g_assert_cmpint (ctok_token_get_timeout_ms (token), ==, 0);
}

static void
test_deadline_fires (void)
{
  gint64 deadline = g_get_monotonic_time () + 20 * MS;
  g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_deadline (deadline);
  CtokToken *token = token_of (source);

  g_assert_cmpint (ctok_token_get_deadline (token), ==, deadline);
  g_assert_true (ctok_token_wait (token, -1));
  assert_timed_out (token);
  /* The deadline that fired is still the token's deadline. */
  g_assert_cmpint (ctok_token_get_deadline (token), ==, deadline);
  g_assert_cmpint (g_get_monotonic_time (), >=, deadline);
}

static void
test_immediate (void)
{
  g_autoptr(CtokTokenSource) zero = ctok_token_source_new_with_timeout (0);
  g_autoptr(CtokTokenSource) past = ctok_token_source_new_with_deadline (g_get_monotonic_time () - 1);
  g_autoptr(CtokTokenSource) after = ctok_token_source_new ();
  g_autoptr(CtokTokenSource) at = ctok_token_source_new ();
  CallbackRecord record = { 0, };

  g_test_summary ("0 and past deadlines cancel at once, on the calling thread");

  assert_timed_out (token_of (zero));
  assert_timed_out (token_of (past));

  ctok_token_register (token_of (after), record_callback, &record, record_destroy);
  ctok_token_source_cancel_after (after, 0);
  assert_timed_out (token_of (after));
  g_assert_cmpint (record.calls, ==, 1);
  g_assert_true (record.thread == g_thread_self ());

  ctok_token_source_cancel_at (at, 0);
  assert_timed_out (token_of (at));
}

static char callback_thread_name[32];
static int callback_thread_named;  /* atomic */

static void
name_callback (CtokToken *token,
               gpointer   user_data)
{
  pthread_getname_np (pthread_self (), callback_thread_name, sizeof callback_thread_name);
  g_atomic_int_set (&callback_thread_named, TRUE);
}

static void
test_callback_thread (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = token_of (source);

  g_test_summary ("Callbacks of a deadline run on the shared ctok-timer thread");

  /* Armed after registering: however slow this machine, it fires later. */
  ctok_token_register (token, name_callback, NULL, NULL);
  ctok_token_source_cancel_after (source, 10);
  g_assert_true (ctok_token_wait (token, -1));

  /* wait() returns at the start of the notification: let it finish. */
  while (!g_atomic_int_get (&callback_thread_named))
    g_usleep (1000);
  g_assert_cmpstr (callback_thread_name, ==, "ctok-timer");
}

typedef struct
{
  GMainLoop *loop;
  GThread   *thread;
  int        calls;
} LoopData;

static void
loop_callback (CtokToken *token,
               gpointer   user_data)
{
  LoopData *data = user_data;

  data->thread = g_thread_self ();
  data->calls++;
  g_main_loop_quit (data->loop);
}

static void
test_register_in_context (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_timeout (10);
  LoopData data = { g_main_loop_new (NULL, FALSE), NULL, 0 };

  g_test_summary ("A GTK-style main loop receives a deadline's callback on its own thread");

  ctok_token_register_in_context (token_of (source), NULL, loop_callback, &data, NULL);
  g_main_loop_run (data.loop);

  g_assert_cmpint (data.calls, ==, 1);
  g_assert_true (data.thread == g_thread_self ());
  assert_timed_out (token_of (source));
  g_main_loop_unref (data.loop);
}

static void
test_rearm_later (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_timeout (SOON_MS);
  CtokToken *token = token_of (source);

  g_test_summary ("cancel_after(): the last call wins, so it extends as well as shortens");

  ctok_token_source_cancel_after (source, 60 * 60 * 1000);
  g_assert_false (ctok_token_wait (token, (SOON_MS + 50) * MS));
  g_assert_cmpint (ctok_token_get_timeout_ms (token), >, 59 * 60 * 1000);

  ctok_token_source_cancel_after (source, 5);
  g_assert_true (ctok_token_wait (token, -1));
  assert_timed_out (token);
}

static void
test_rearm_earlier (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_timeout (60 * 60 * 1000);
  CtokToken *token = token_of (source);
  gint64 deadline = g_get_monotonic_time () + 10 * MS;

  /* The timer thread sleeps until the hour; moving the deadline wakes it. */
  ctok_token_source_cancel_at (source, deadline);
  g_assert_cmpint (ctok_token_source_get_deadline (source), ==, deadline);
  g_assert_true (ctok_token_wait (token, -1));
  assert_timed_out (token);
}

static void
test_after_disarmed_earliest (void)
{
  CtokTokenSource *hour = ctok_token_source_new_with_timeout (60 * 60 * 1000);
  g_autoptr(CtokTokenSource) later = ctok_token_source_new_with_timeout (2 * 60 * 60 * 1000);
  g_autoptr(CtokTokenSource) soon = NULL;

  g_test_summary ("The timer thread, asleep until a deadline that was since disarmed, "
                  "still wakes for a new earlier one, and not only for a new earliest");

  /* Let the thread go to sleep until the hour, then take that away: it
   * stays asleep until the hour with nothing due then. */
  g_usleep (10 * MS);
  g_object_unref (hour);

  soon = ctok_token_source_new_with_timeout (10);
  g_assert_true (ctok_token_wait (token_of (soon), -1));
  assert_timed_out (token_of (soon));
  g_assert_false (ctok_token_source_is_cancelled (later));
}

static void
test_disarm (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_timeout (SOON_MS);
  g_autoptr(CtokTokenSource) cleared = ctok_token_source_new_with_timeout (SOON_MS);
  CtokToken *token = token_of (source);

  /* clear_deadline() does the same, for languages without a G_MAXINT64. */
  ctok_token_source_clear_deadline (cleared);
  g_assert_cmpint (ctok_token_source_get_deadline (cleared), ==, G_MAXINT64);
  g_assert_cmpint (ctok_token_get_timeout_ms (token_of (cleared)), ==, -1);

  ctok_token_source_cancel_at (source, G_MAXINT64);
  g_assert_cmpint (ctok_token_source_get_deadline (source), ==, G_MAXINT64);
  g_assert_cmpint (ctok_token_get_deadline (token), ==, G_MAXINT64);
  g_assert_cmpint (ctok_token_get_timeout_ms (token), ==, -1);
  g_assert_false (ctok_token_wait (token, (SOON_MS + 50) * MS));
  g_assert_false (ctok_token_is_cancelled (token_of (cleared)));
}

static void
test_getters (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = token_of (source);
  gint64 before;
  gint64 deadline;
  gint64 value = 0;
  int ms;

  g_assert_cmpint (ctok_token_source_get_deadline (source), ==, G_MAXINT64);
  g_assert_cmpint (ctok_token_get_deadline (token), ==, G_MAXINT64);
  g_assert_cmpint (ctok_token_get_timeout_ms (token), ==, -1);
  g_assert_cmpint (ctok_token_get_deadline (ctok_token_get_none ()), ==, G_MAXINT64);
  g_assert_cmpint (ctok_token_get_timeout_ms (ctok_token_get_none ()), ==, -1);

  before = g_get_monotonic_time ();
  ctok_token_source_cancel_after (source, 5000);
  deadline = ctok_token_source_get_deadline (source);
  g_assert_cmpint (deadline, >=, before + 5000 * MS);
  g_assert_cmpint (deadline, <=, g_get_monotonic_time () + 5000 * MS);
  g_assert_cmpint (ctok_token_get_deadline (token), ==, deadline);
  g_object_get (token, "deadline", &value, NULL);
  g_assert_cmpint (value, ==, deadline);

  /* Rounded up, never more than asked. */
  ms = ctok_token_get_timeout_ms (token);
  g_assert_cmpint (ms, >, 0);
  g_assert_cmpint (ms, <=, 5000);

  /* Microseconds left round up to a whole millisecond. */
  ctok_token_source_cancel_at (source, g_get_monotonic_time () + 60 * G_TIME_SPAN_SECOND + 1);
  g_assert_cmpint (ctok_token_get_timeout_ms (token), >=, 60 * 1000);

  /* A cancelled token has no time left. */
  ctok_token_source_cancel (source);
  g_assert_cmpint (ctok_token_get_timeout_ms (token), ==, 0);
  g_assert_cmpint (ctok_token_source_get_deadline (source), ==, G_MAXINT64);
}

static void
test_no_overflow (void)
{
  g_autoptr(CtokTokenSource) longest = ctok_token_source_new_with_timeout (G_MAXUINT);
  g_autoptr(CtokTokenSource) end = ctok_token_source_new_with_deadline (G_MAXINT64 - 1);
  gint64 now = g_get_monotonic_time ();

  g_test_summary ("G_MAXUINT ms and deadlines near G_MAXINT64 neither overflow nor fire");

  g_assert_cmpint (ctok_token_source_get_deadline (longest), >, now + (gint64) (G_MAXUINT - 1000) * 1000);
  g_assert_cmpint (ctok_token_get_timeout_ms (token_of (longest)), ==, G_MAXINT);
  g_assert_cmpint (ctok_token_get_timeout_ms (token_of (end)), ==, G_MAXINT);
  g_assert_false (ctok_token_is_cancelled (token_of (longest)));
  g_assert_false (ctok_token_is_cancelled (token_of (end)));

  ctok_token_source_cancel_after (longest, G_MAXUINT);
  g_assert_false (ctok_token_wait (token_of (longest), 10 * MS));
}

static void
count_deadline_notify (GObject    *object,
                       GParamSpec *pspec,
                       gpointer    user_data)
{
  int *count = user_data;

  g_assert_cmpstr (pspec->name, ==, "deadline");
  (*count)++;
}

static void
test_notify (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  int count = 0;

  g_signal_connect (token_of (source), "notify::deadline", G_CALLBACK (count_deadline_notify), &count);

  ctok_token_source_cancel_after (source, 100000);
  g_assert_cmpint (count, ==, 1);
  ctok_token_source_cancel_after (source, 200000);
  g_assert_cmpint (count, ==, 2);
  ctok_token_source_cancel_at (source, G_MAXINT64);
  g_assert_cmpint (count, ==, 3);
  ctok_token_source_cancel_at (source, G_MAXINT64);
  g_assert_cmpint (count, ==, 3);
}

/* --- Linked sources --- */

static void
test_linked_inherits (void)
{
  g_autoptr(CtokTokenSource) request = ctok_token_source_new_with_timeout (60000);
  g_autoptr(CtokTokenSource) user = ctok_token_source_new ();
  CtokToken *tokens[] = { token_of (user), token_of (request) };
  g_autoptr(CtokTokenSource) child = ctok_token_source_new_linked (tokens, 2);
  CtokToken *one[] = { token_of (child) };
  g_autoptr(CtokTokenSource) grandchild = ctok_token_source_new_linked (one, 1);
  gint64 deadline = ctok_token_source_get_deadline (request);

  g_test_summary ("A linked child sees its ancestors' deadline, at any depth");

  g_assert_cmpint (ctok_token_get_deadline (token_of (child)), ==, deadline);
  g_assert_cmpint (ctok_token_get_deadline (token_of (grandchild)), ==, deadline);
  /* Not its own. */
  g_assert_cmpint (ctok_token_source_get_deadline (child), ==, G_MAXINT64);
  g_assert_cmpint (ctok_token_get_timeout_ms (token_of (grandchild)), >, 59000);

  /* An earlier deadline of its own wins; a later one does not. */
  ctok_token_source_cancel_at (child, deadline - 1000);
  g_assert_cmpint (ctok_token_get_deadline (token_of (child)), ==, deadline - 1000);
  g_assert_cmpint (ctok_token_get_deadline (token_of (grandchild)), ==, deadline - 1000);
  ctok_token_source_cancel_at (child, deadline + 1000);
  g_assert_cmpint (ctok_token_get_deadline (token_of (child)), ==, deadline);
  g_assert_cmpint (ctok_token_get_deadline (token_of (grandchild)), ==, deadline);
}

static void
test_linked_moves (void)
{
  g_autoptr(CtokTokenSource) parent = ctok_token_source_new_with_timeout (60000);
  CtokToken *one[] = { token_of (parent) };
  g_autoptr(CtokTokenSource) child = ctok_token_source_new_linked (one, 1);
  CtokToken *two[] = { token_of (child) };
  g_autoptr(CtokTokenSource) grandchild = ctok_token_source_new_linked (two, 1);
  int count = 0;
  gint64 later;

  g_test_summary ("Moving a parent's deadline moves its descendants', with notify");

  g_signal_connect (token_of (grandchild), "notify::deadline", G_CALLBACK (count_deadline_notify), &count);

  ctok_token_source_cancel_after (parent, 120000);
  later = ctok_token_source_get_deadline (parent);
  g_assert_cmpint (ctok_token_get_deadline (token_of (grandchild)), ==, later);
  g_assert_cmpint (count, ==, 1);

  ctok_token_source_cancel_at (parent, G_MAXINT64);
  g_assert_cmpint (ctok_token_get_deadline (token_of (grandchild)), ==, G_MAXINT64);
  g_assert_cmpint (count, ==, 2);

  /* Earlier: takes effect at once for the timer too. */
  ctok_token_source_cancel_after (parent, 10);
  g_assert_true (ctok_token_wait (token_of (grandchild), -1));
  assert_timed_out (token_of (grandchild));
}

static void
test_linked_timed_out (void)
{
  g_autoptr(CtokTokenSource) parent = ctok_token_source_new_with_timeout (10);
  CtokToken *one[] = { token_of (parent) };
  g_autoptr(CtokTokenSource) child = ctok_token_source_new_linked (one, 1);

  g_test_summary ("A parent that timed out makes its children report G_IO_ERROR_TIMED_OUT");

  g_assert_true (ctok_token_wait (token_of (child), -1));
  assert_timed_out (token_of (child));
}

static void
test_linked_own_later (void)
{
  g_autoptr(CtokTokenSource) parent = ctok_token_source_new_with_timeout (60000);
  CtokToken *one[] = { token_of (parent) };
  g_autoptr(CtokTokenSource) child = ctok_token_source_new_linked (one, 1);

  g_test_summary ("A child's own deadline, later than its parent's, takes over when the parent closes");

  /* The parent's deadline comes first: the child needs no timer of its own... */
  ctok_token_source_cancel_after (child, 120000);
  g_assert_cmpint (ctok_token_get_deadline (token_of (child)), ==,
                   ctok_token_source_get_deadline (parent));

  /* ...until the parent will never be cancelled; then its own deadline counts. */
  ctok_token_source_close (parent);
  g_assert_cmpint (ctok_token_get_deadline (token_of (child)), ==,
                   ctok_token_source_get_deadline (child));

  ctok_token_source_cancel_after (child, 10);
  g_assert_true (ctok_token_wait (token_of (child), -1));
  assert_timed_out (token_of (child));
}

static void
test_linked_all (void)
{
  g_autoptr(CtokTokenSource) a = ctok_token_source_new_with_timeout (60000);
  g_autoptr(CtokTokenSource) b = ctok_token_source_new_with_timeout (120000);
  g_autoptr(CtokTokenSource) c = ctok_token_source_new ();
  CtokToken *ab[] = { token_of (a), token_of (b) };
  CtokToken *ac[] = { token_of (a), token_of (c) };
  g_autoptr(CtokTokenSource) all_ab = ctok_token_source_new_linked_all (ab, 2);
  g_autoptr(CtokTokenSource) all_ac = ctok_token_source_new_linked_all (ac, 2);

  g_test_summary ("All-of: the deadline is the last of the parents'");

  g_assert_cmpint (ctok_token_get_deadline (token_of (all_ab)), ==, ctok_token_source_get_deadline (b));
  g_assert_cmpint (ctok_token_get_deadline (token_of (all_ac)), ==, G_MAXINT64);

  /* b cancelled: only a is left to wait for. */
  ctok_token_source_cancel (b);
  ctok_token_source_cancel_after (a, 90000);
  g_assert_cmpint (ctok_token_get_deadline (token_of (all_ab)), ==, ctok_token_source_get_deadline (a));
}

/* --- Lifetime --- */

static void
test_close_disarms (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_timeout (SOON_MS);
  CtokToken *token = token_of (source);

  ctok_token_source_close (source);
  g_assert_cmpint (ctok_token_source_get_deadline (source), ==, G_MAXINT64);
  g_assert_cmpint (ctok_token_get_deadline (token), ==, G_MAXINT64);
  g_usleep ((SOON_MS + 50) * MS);
  g_assert_false (ctok_token_is_cancelled (token));

  if (g_test_undefined ())
    {
      g_test_expect_message ("Ctok", G_LOG_LEVEL_CRITICAL, "*closed*");
      ctok_token_source_cancel_after (source, 10);
      g_test_assert_expected_messages ();
      g_test_expect_message ("Ctok", G_LOG_LEVEL_CRITICAL, "*closed*");
      ctok_token_source_cancel_at (source, 0);
      g_test_assert_expected_messages ();
    }
  g_assert_false (ctok_token_is_cancelled (token));
}

static void
test_dropped_source_fires (void)
{
  CtokTokenSource *source = ctok_token_source_new_with_timeout (10);
  g_autoptr(CtokToken) token = g_object_ref (token_of (source));

  g_test_summary ("A dropped, unclosed source's deadline still fires while its token is held");

  g_object_unref (source);
  g_assert_true (ctok_token_wait (token, -1));
  assert_timed_out (token);
}

static void
test_dropped_disarms (void)
{
  CallbackRecord records[100] = { { 0, }, };
  gboolean dropped_in_time[100];
  guint n_in_time = 0;

  g_test_summary ("Dropping a source and its token disarms the deadline: nothing fires later");

  for (guint i = 0; i < G_N_ELEMENTS (records); i++)
    {
      CtokTokenSource *source = ctok_token_source_new_with_timeout (1 + i % 10);
      gint64 deadline = ctok_token_get_deadline (token_of (source));

      ctok_token_register (token_of (source), record_callback, &records[i], record_destroy);
      g_object_unref (source);
      /* A thread descheduled for longer than the timeout drops a source
       * that has already fired: only those dropped in time are checked. */
      dropped_in_time[i] = g_get_monotonic_time () < deadline;
      n_in_time += dropped_in_time[i];
    }

  g_usleep (30 * MS);
  for (guint i = 0; i < G_N_ELEMENTS (records); i++)
    {
      g_assert_cmpint (records[i].destroys, ==, 1);
      if (dropped_in_time[i])
        g_assert_cmpint (records[i].calls, ==, 0);
    }
  g_test_message ("%u of %u sources dropped before their deadline", n_in_time,
                  (guint) G_N_ELEMENTS (records));
}

static void
test_try_reset (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_timeout (60000);

  g_assert_true (ctok_token_source_try_reset (source));
  g_assert_cmpint (ctok_token_source_get_deadline (source), ==, G_MAXINT64);
  g_assert_cmpint (ctok_token_get_deadline (token_of (source)), ==, G_MAXINT64);
}

static void
test_many_pending_exit (void)
{
  static CtokTokenSource *sources[100000];

  g_test_summary ("A process exiting with 100,000 pending deadlines neither hangs nor crashes");

  if (g_test_subprocess ())
    {
      CtokTokenSource *soon;

      for (guint i = 0; i < G_N_ELEMENTS (sources); i++)
        sources[i] = ctok_token_source_new_with_timeout (10000 + i % 1000);
      /* One fires, so the timer thread is busy in the heap when we exit. */
      soon = ctok_token_source_new_with_timeout (1);
      g_assert_true (ctok_token_wait (token_of (soon), -1));
      g_object_unref (soon);
      exit (0);
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

static void
test_many_dropped (void)
{
  const guint n = g_test_slow () ? 1000000 : 100000;
  CtokTokenSource **sources = g_new (CtokTokenSource *, n);

  g_test_summary ("Many pending deadlines armed and dropped leave nothing behind");

  for (guint i = 0; i < n; i++)
    sources[i] = ctok_token_source_new_with_timeout (10000 + g_random_int_range (0, 10000));
  for (guint i = 0; i < n; i++)
    g_object_unref (sources[i]);
  g_free (sources);

  /* A new deadline still fires on time: the heap is healthy. */
  {
    g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_timeout (5);
    g_assert_true (ctok_token_wait (token_of (source), -1));
  }
}

static void
test_order (void)
{
  CtokTokenSource *sources[50];
  gint64 base = g_get_monotonic_time () + 20 * MS;

  g_test_summary ("Deadlines armed out of order all fire, with their reason");

  /* Armed in a scrambled order, 1 ms apart. */
  for (int i = 0; i < 50; i++)
    {
      int k = (i * 37) % 50;

      sources[k] = ctok_token_source_new_with_deadline (base + k * MS);
    }
  for (int i = 0; i < 50; i++)
    g_assert_true (ctok_token_wait (token_of (sources[i]), -1));

  /* Each was cancelled no earlier than its deadline, and all were. */
  for (int i = 0; i < 50; i++)
    {
      assert_timed_out (token_of (sources[i]));
      g_object_unref (sources[i]);
    }
}

/* --- Without a main loop: a synchronous GIO read in a worker --- */

static gpointer
blocking_read (gpointer data)
{
  CtokToken *token = data;
  g_autoptr(GInputStream) stream = NULL;
  GError *error = NULL;
  char buffer[8];
  int fds[2];

  g_assert_no_errno (pipe (fds));
  stream = g_unix_input_stream_new (fds[0], TRUE);

  /* Blocks polling the pipe and the token's cancellable. */
  g_assert_cmpint (g_input_stream_read (stream, buffer, sizeof buffer,
                                        ctok_token_get_cancellable (token), &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_true (ctok_token_rewrite_error (token, &error));
  close (fds[1]);

  return error;
}

static void
test_sync_gio_read (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_timeout (20);
  GThread *thread = g_thread_new ("reader", blocking_read, token_of (source));
  g_autoptr(GError) error = g_thread_join (thread);

  g_test_summary ("A deadline stops a blocking GIO read in a thread with no main loop");

  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
}

/* --- Threads --- */

typedef struct
{
  CtokTokenSource *sources[16];
  int              stop;
} Rearm;

static gpointer
rearm_thread (gpointer data)
{
  Rearm *rearm = data;
  GRand *rand = g_rand_new ();

  while (!g_atomic_int_get (&rearm->stop))
    {
      CtokTokenSource *source = rearm->sources[g_rand_int_range (rand, 0, 16)];

      switch (g_rand_int_range (rand, 0, 4))
        {
        case 0:
          ctok_token_source_cancel_after (source, g_rand_int_range (rand, 0, 3));
          break;
        case 1:
          ctok_token_source_cancel_at (source, G_MAXINT64);
          break;
        case 2:
          ctok_token_source_cancel_after (source, 100000);
          break;
        default:
          ctok_token_get_deadline (ctok_token_source_get_token (source));
          ctok_token_get_timeout_ms (ctok_token_source_get_token (source));
          break;
        }
    }

  g_rand_free (rand);
  return NULL;
}

static void
test_threads (void)
{
  int rounds = g_test_slow () ? 2000 : 200;

  g_test_summary ("Deadlines re-armed and disarmed from several threads while the timer fires them");

  for (int round = 0; round < rounds; round++)
    {
      Rearm rearm = { { NULL, }, 0 };
      CtokTokenSource *parent = ctok_token_source_new ();
      GThread *threads[3];

      for (int i = 0; i < 16; i++)
        {
          CtokToken *one[] = { token_of (parent) };

          rearm.sources[i] = i % 2 ? ctok_token_source_new_linked (one, 1) : ctok_token_source_new ();
        }

      for (int i = 0; i < 3; i++)
        threads[i] = g_thread_new ("rearm", rearm_thread, &rearm);
      g_usleep (2 * MS);
      ctok_token_source_cancel_after (parent, round % 3);
      g_usleep (3 * MS);
      g_atomic_int_set (&rearm.stop, TRUE);
      for (int i = 0; i < 3; i++)
        g_thread_join (threads[i]);

      /* Whatever won, a linked child of the (cancelled) parent is cancelled,
       * and cancelled tokens report a reason. wait() returns once the parent
       * is cancelled, while the timer thread may still be cancelling its
       * children: wait for each of them too. */
      g_assert_true (ctok_token_wait (token_of (parent), -1));
      for (int i = 0; i < 16; i++)
        {
          if (i % 2)
            g_assert_true (ctok_token_wait (token_of (rearm.sources[i]), 10 * G_USEC_PER_SEC));
          g_object_unref (rearm.sources[i]);
        }
      g_object_unref (parent);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/deadline/timeout-fires", test_timeout_fires);
  g_test_add_func ("/deadline/deadline-fires", test_deadline_fires);
  g_test_add_func ("/deadline/immediate", test_immediate);
  g_test_add_func ("/deadline/callback-thread", test_callback_thread);
  g_test_add_func ("/deadline/register-in-context", test_register_in_context);
  g_test_add_func ("/deadline/rearm-later", test_rearm_later);
  g_test_add_func ("/deadline/rearm-earlier", test_rearm_earlier);
  g_test_add_func ("/deadline/disarm", test_disarm);
  g_test_add_func ("/deadline/after-disarmed-earliest", test_after_disarmed_earliest);
  g_test_add_func ("/deadline/getters", test_getters);
  g_test_add_func ("/deadline/no-overflow", test_no_overflow);
  g_test_add_func ("/deadline/notify", test_notify);
  g_test_add_func ("/deadline/order", test_order);
  g_test_add_func ("/deadline/linked/inherits", test_linked_inherits);
  g_test_add_func ("/deadline/linked/moves", test_linked_moves);
  g_test_add_func ("/deadline/linked/timed-out", test_linked_timed_out);
  g_test_add_func ("/deadline/linked/own-later", test_linked_own_later);
  g_test_add_func ("/deadline/linked/all", test_linked_all);
  g_test_add_func ("/deadline/lifetime/close-disarms", test_close_disarms);
  g_test_add_func ("/deadline/lifetime/dropped-source-fires", test_dropped_source_fires);
  g_test_add_func ("/deadline/lifetime/dropped-disarms", test_dropped_disarms);
  g_test_add_func ("/deadline/lifetime/try-reset", test_try_reset);
  g_test_add_func ("/deadline/lifetime/many-pending-exit", test_many_pending_exit);
  g_test_add_func ("/deadline/lifetime/many-dropped", test_many_dropped);
  g_test_add_func ("/deadline/no-main-loop/sync-gio-read", test_sync_gio_read);
  g_test_add_func ("/deadline/threads/rearm", test_threads);

  return g_test_run ();
}
