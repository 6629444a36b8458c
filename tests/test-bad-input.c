/* test-bad-input.c: every public function, given what it must refuse, and
 * running out of file descriptors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ctok/ctok.h>

#include "test-common.h"

#define EXPECT_CRITICAL(pattern, call) \
  G_STMT_START { \
    g_test_expect_message ("Ctok", G_LOG_LEVEL_CRITICAL, pattern); \
    call; \
    g_test_assert_expected_messages (); \
  } G_STMT_END

static void
test_token_functions (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(GObject) not_a_token = g_object_new (G_TYPE_OBJECT, NULL);
  CtokToken *wrong = (CtokToken *) not_a_token;
  GError *error = NULL;

  g_test_summary ("Every CtokToken function refuses NULL, wrong types and bad values, "
                  "with a critical and no effect");

  if (!g_test_undefined ())
    return;

  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_false (ctok_token_can_be_cancelled (NULL)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_false (ctok_token_can_be_cancelled (wrong)));
  EXPECT_CRITICAL ("*ctok_token_is_cancelled*CTOK_IS_TOKEN*", g_assert_false (ctok_token_is_cancelled (NULL)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_false (ctok_token_is_cancelled (wrong)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_false (ctok_token_set_error_if_cancelled (NULL, &error)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_null (ctok_token_dup_error (wrong)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_cmpuint (ctok_token_register (NULL, record_callback, NULL, NULL), ==, 0));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_cmpuint (ctok_token_register (wrong, record_callback, NULL, NULL), ==, 0));
  EXPECT_CRITICAL ("*callback != NULL*", g_assert_cmpuint (ctok_token_register (token, NULL, NULL, NULL), ==, 0));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_cmpuint (ctok_token_register_in_context (NULL, NULL, record_callback, NULL, NULL), ==, 0));
  EXPECT_CRITICAL ("*callback != NULL*", g_assert_cmpuint (ctok_token_register_in_context (token, NULL, NULL, NULL, NULL), ==, 0));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_false (ctok_token_unregister (NULL, 1)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_false (ctok_token_unregister (wrong, 1)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_false (ctok_token_unregister_nowait (NULL, 1)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_null (ctok_token_create_source (NULL)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_null (ctok_token_get_cancellable (wrong)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_null (ctok_token_new_cancellable (NULL)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_false (ctok_token_rewrite_error (NULL, &error)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_null (ctok_token_translate_error (NULL, NULL)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_cmpint (ctok_token_get_deadline (NULL), ==, G_MAXINT64));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_cmpint (ctok_token_get_timeout_ms (wrong), ==, -1));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_false (ctok_token_wait (NULL, 0)));
  EXPECT_CRITICAL ("*timeout_us >= -1*", g_assert_false (ctok_token_wait (token, -2)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", ctok_token_wait_async (NULL, NULL, NULL, NULL));
  EXPECT_CRITICAL ("*G_IS_CANCELLABLE*", ctok_token_wait_async (token, (GCancellable *) not_a_token, NULL, NULL));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_false (ctok_token_wait_finish (NULL, NULL, &error)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_cmpuint (ctok_token_debug_count_registrations (wrong), ==, 0));

  {
    /* A result that is not from wait_async(). */
    g_autoptr(GTask) task = g_task_new (token, NULL, NULL, NULL);

    g_task_return_boolean (task, TRUE);
    EXPECT_CRITICAL ("*source_tag*", g_assert_false (ctok_token_wait_finish (token, G_ASYNC_RESULT (task), &error)));
  }

  error = g_error_new_literal (TEST_ERROR, 1, "already set");
  EXPECT_CRITICAL ("*error == NULL || *error == NULL*", g_assert_false (ctok_token_set_error_if_cancelled (token, &error)));
  g_clear_error (&error);

  /* None of it had an effect. */
  g_assert_false (ctok_token_is_cancelled (token));
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, 0);
}

static void
test_source_functions (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  g_autoptr(GObject) not_a_source = g_object_new (G_TYPE_OBJECT, NULL);
  CtokTokenSource *wrong = (CtokTokenSource *) not_a_source;
  CtokToken *bad_tokens[] = { ctok_token_source_get_token (source), (CtokToken *) not_a_source };

  g_test_summary ("Every CtokTokenSource function refuses NULL, wrong types and bad values, "
                  "with a critical and no effect");

  if (!g_test_undefined ())
    return;

  EXPECT_CRITICAL ("*tokens != NULL || n_tokens == 0*", g_assert_null (ctok_token_source_new_linked (NULL, 2)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_null (ctok_token_source_new_linked (bad_tokens, 2)));
  EXPECT_CRITICAL ("*tokens != NULL || n_tokens == 0*", g_assert_null (ctok_token_source_new_linked_all (NULL, 1)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN*", g_assert_null (ctok_token_source_new_linked_all (bad_tokens, 2)));
  EXPECT_CRITICAL ("*G_IS_CANCELLABLE*", g_assert_null (ctok_token_source_new_linked_to_cancellable (NULL)));
  EXPECT_CRITICAL ("*G_IS_CANCELLABLE*", g_assert_null (ctok_token_source_new_linked_to_cancellable ((GCancellable *) not_a_source)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", g_assert_null (ctok_token_source_get_token (NULL)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", g_assert_null (ctok_token_source_get_token (wrong)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", ctok_token_source_cancel (NULL));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", ctok_token_source_cancel (wrong));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", ctok_token_source_cancel_with_error (NULL, NULL));
  EXPECT_CRITICAL ("*reason != NULL*", ctok_token_source_cancel_with_error (source, NULL));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", g_assert_false (ctok_token_source_is_cancelled (wrong)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", g_assert_false (ctok_token_source_try_reset (NULL)));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", ctok_token_source_close (NULL));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", ctok_token_source_cancel_after (NULL, 10));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", ctok_token_source_cancel_at (wrong, 0));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", ctok_token_source_clear_deadline (NULL));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", g_assert_cmpint (ctok_token_source_get_deadline (NULL), ==, G_MAXINT64));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", g_assert_cmpuint (ctok_token_source_cancel_on_signal (NULL, not_a_source, "notify"), ==, 0));
  EXPECT_CRITICAL ("*G_IS_OBJECT*", g_assert_cmpuint (ctok_token_source_cancel_on_signal (source, NULL, "notify"), ==, 0));
  EXPECT_CRITICAL ("*detailed_signal != NULL*", g_assert_cmpuint (ctok_token_source_cancel_on_signal (source, not_a_source, NULL), ==, 0));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", g_assert_cmpuint (ctok_token_source_cancel_on_unix_signal (NULL, SIGINT), ==, 0));
  EXPECT_CRITICAL ("*signal_name*", g_assert_cmpuint (ctok_token_source_cancel_on_unix_signal (source, -1), ==, 0));
  EXPECT_CRITICAL ("*signal_name*", g_assert_cmpuint (ctok_token_source_cancel_on_unix_signal (source, SIGKILL), ==, 0));
  EXPECT_CRITICAL ("*CTOK_IS_TOKEN_SOURCE*", ctok_token_source_cancel_on_finalize (NULL, not_a_source));
  EXPECT_CRITICAL ("*G_IS_OBJECT*", ctok_token_source_cancel_on_finalize (source, NULL));

  EXPECT_CRITICAL ("*has no signal*no-such-signal*",
                   g_assert_cmpuint (ctok_token_source_cancel_on_signal (source, not_a_source, "no-such-signal"), ==, 0));

  /* None of it had an effect. */
  g_assert_false (ctok_token_source_is_cancelled (source));
  g_assert_cmpint (ctok_token_source_get_deadline (source), ==, G_MAXINT64);
}

static void
test_closed_source_functions (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  g_autoptr(GObject) object = g_object_new (G_TYPE_OBJECT, NULL);

  g_test_summary ("Using a closed source is a programmer error: a critical and no effect");

  if (!g_test_undefined ())
    return;

  ctok_token_source_close (source);

  EXPECT_CRITICAL ("*closed*", ctok_token_source_cancel (source));
  EXPECT_CRITICAL ("*closed*", ctok_token_source_cancel_with_error (source, &(GError) { TEST_ERROR, 1, (char *) "x" }));
  EXPECT_CRITICAL ("*closed*", g_assert_false (ctok_token_source_try_reset (source)));
  EXPECT_CRITICAL ("*closed*", ctok_token_source_cancel_after (source, 0));
  EXPECT_CRITICAL ("*closed*", ctok_token_source_cancel_at (source, 0));
  EXPECT_CRITICAL ("*closed*", ctok_token_source_clear_deadline (source));
  EXPECT_CRITICAL ("*closed*", g_assert_cmpuint (ctok_token_source_cancel_on_signal (source, object, "notify"), ==, 0));
  EXPECT_CRITICAL ("*closed*", g_assert_cmpuint (ctok_token_source_cancel_on_unix_signal (source, SIGINT), ==, 0));
  EXPECT_CRITICAL ("*closed*", ctok_token_source_cancel_on_finalize (source, object));

  /* Closing twice, reading, getting the token: all fine. */
  ctok_token_source_close (source);
  g_assert_false (ctok_token_source_is_cancelled (source));
  g_assert_nonnull (ctok_token_source_get_token (source));
}

/* --- Running out of file descriptors --- */

static void
test_fd_exhaustion (void)
{
  g_test_summary ("With no file descriptor left, tokens, cancellables, waits and deadlines "
                  "still work: ctok needs none (GLib aborts when it cannot make one)");

  if (g_test_subprocess ())
    {
      struct rlimit limit;
      CtokTokenSource *source;
      CtokTokenSource *timeout;
      GCancellable *op;
      CtokToken *token;
      int fd, first_fd = -1, last_fd = -1;

      /* The main context, which does need an eventfd, exists before. */
      g_main_context_default ();

      /* Use every descriptor up to a low limit. */
      limit.rlim_cur = limit.rlim_max = 64;
      g_assert_no_errno (setrlimit (RLIMIT_NOFILE, &limit));
      while ((fd = dup (0)) >= 0)
        {
          if (first_fd < 0)
            first_fd = fd;
          last_fd = fd;
        }
      g_assert_cmpint (errno, ==, EMFILE);

      source = ctok_token_source_new ();
      token = ctok_token_source_get_token (source);
      g_assert_true (G_IS_CANCELLABLE (ctok_token_get_cancellable (token)));
      op = ctok_token_new_cancellable (token);
      g_assert_false (ctok_token_wait (token, 1000));
      ctok_token_register_in_context (token, NULL, record_callback, NULL, NULL);

      /* The timer thread starts and fires. */
      timeout = ctok_token_source_new_with_timeout (5);
      g_assert_true (ctok_token_wait (ctok_token_source_get_token (timeout), -1));

      ctok_token_source_cancel (source);
      g_assert_true (g_cancellable_is_cancelled (op));
      g_assert_true (g_cancellable_is_cancelled (ctok_token_get_cancellable (token)));

      g_object_unref (op);
      g_object_unref (timeout);
      g_object_unref (source);

      /* Give the descriptors back: LeakSanitizer needs some at exit. */
      for (fd = first_fd; fd >= 0 && fd <= last_fd; fd++)
        close (fd);
      return;
    }

  g_test_trap_subprocess (NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bad-input/token", test_token_functions);
  g_test_add_func ("/bad-input/token-source", test_source_functions);
  g_test_add_func ("/bad-input/closed-source", test_closed_source_functions);
  g_test_add_func ("/exhaustion/file-descriptors", test_fd_exhaustion);

  return g_test_run ();
}
