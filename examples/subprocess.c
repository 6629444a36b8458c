/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* subprocess.c: a child process that goes when its token is cancelled
 *
 * Cancelling the GCancellable of g_subprocess_wait_async() cancels the wait,
 * not the process: the caller stops waiting, and the child runs on, out of
 * sight. Part 1 shows that, with `sleep 30` and a token whose deadline passes
 * after --timeout milliseconds (default 500).
 *
 * Part 2 ties the child's life to the token: a callback registered with
 * ctok_token_register_in_context() kills it (g_subprocess_force_exit()) when
 * the token is cancelled, and the wait, without a cancellable, then reports
 * how the child ended. The registration is removed when the child ends by
 * itself, so a long-lived token does not keep it.
 *
 * Both parts print a short timeline, no `sleep` is left running, and the
 * program exits with status 0.
 */

#include <locale.h>
#include <signal.h>
#include <sys/types.h>

#include <ctok/ctok.h>

static gint64 start_time;

/* Prints one line of the timeline. */
static void timeline (const char *format,
                      ...) G_GNUC_PRINTF (1, 2);

static void
timeline (const char *format,
          ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_print ("[%4" G_GINT64_FORMAT " ms] %s\n",
           (g_get_monotonic_time () - start_time) / G_TIME_SPAN_MILLISECOND,
           message);
}

static GSubprocess *
spawn_sleep (GError **error)
{
  GSubprocess *child = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, error, "sleep", "30", NULL);

  if (child != NULL)
    timeline ("started `sleep 30`, pid %s", g_subprocess_get_identifier (child));

  return child;
}

/* A child that has not been reaped yet still has its identifier. */
static gboolean
is_running (GSubprocess *child)
{
  const char *pid = g_subprocess_get_identifier (child);

  return pid != NULL && kill ((pid_t) g_ascii_strtoll (pid, NULL, 10), 0) == 0;
}

static void
report_end (GSubprocess *child,
            const char  *pid)
{
  if (g_subprocess_get_if_signaled (child))
    timeline ("pid %s was killed by signal %d%s", pid, g_subprocess_get_term_sig (child),
              g_subprocess_get_term_sig (child) == SIGKILL ? " (SIGKILL)" : "");
  else
    timeline ("pid %s exited with status %d", pid, g_subprocess_get_exit_status (child));
}

/* --- Part 1: cancelling the wait only --- */

typedef struct
{
  GMainLoop   *loop;
  CtokToken   *token;
  GSubprocess *child;
} Part;

static void
wait_cancelled (GObject      *source_object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Part *part = user_data;
  g_autoptr(GError) error = NULL;

  if (g_subprocess_wait_finish (part->child, result, &error))
    {
      timeline ("the wait completed: the child ended first");
    }
  else
    {
      ctok_token_rewrite_error (part->token, &error);
      timeline ("the wait was cancelled: %s", error->message);
    }

  g_main_loop_quit (part->loop);
}

static gboolean
part1 (GMainLoop *loop,
       guint      timeout_ms,
       GError   **error)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_timeout (timeout_ms);
  g_autoptr(GSubprocess) child = NULL;
  g_autofree char *pid = NULL;
  Part part = { loop, ctok_token_source_get_token (source), NULL };

  g_print ("Part 1: g_subprocess_wait_async() with the token's cancellable\n");

  child = spawn_sleep (error);
  if (child == NULL)
    return FALSE;
  part.child = child;
  pid = g_strdup (g_subprocess_get_identifier (child));

  timeline ("waiting for pid %s, with a deadline in %u ms", pid, timeout_ms);
  g_subprocess_wait_async (child, ctok_token_get_cancellable (part.token),
                           wait_cancelled, &part);
  g_main_loop_run (loop);

  if (is_running (child))
    timeline ("pid %s is still running: cancelling a wait does not stop the process", pid);
  else
    timeline ("pid %s is not running any more", pid);

  /* Clean up by hand, as part 2 does by itself. */
  g_subprocess_force_exit (child);
  if (!g_subprocess_wait (child, NULL, error))
    return FALSE;
  report_end (child, pid);

  return TRUE;
}

/* --- Part 2: a callback that kills --- */

/* Runs in the main context that registered it, whoever cancels the token:
 * here ctok's timer thread, when the deadline passes. */
static void
kill_child (CtokToken *token,
            gpointer   user_data)
{
  GSubprocess *child = user_data;
  g_autoptr(GError) reason = ctok_token_dup_error (token);

  timeline ("the token is cancelled (%s): killing pid %s",
            reason->message, g_subprocess_get_identifier (child));
  g_subprocess_force_exit (child);
}

typedef struct
{
  GMainLoop   *loop;
  CtokToken   *token;
  GSubprocess *child;
  guint64      registration;
} Run;

static void
child_ended (GObject      *source_object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Run *run = user_data;
  g_autoptr(GError) error = NULL;

  /* The wait has no cancellable: it ends when the child does. */
  if (!g_subprocess_wait_finish (run->child, result, &error))
    g_error ("waiting for the child failed: %s", error->message);

  /* The child is gone: nothing to kill any more. FALSE if the callback ran. */
  ctok_token_unregister (run->token, run->registration);
  run->registration = 0;

  g_main_loop_quit (run->loop);
}

/* Runs @child until it ends or @token is cancelled, whichever comes first. */
static void
run_under_token (GMainLoop   *loop,
                 GSubprocess *child,
                 CtokToken   *token)
{
  Run run = { loop, token, child, 0 };

  /* The registration holds a reference on the child until it is dropped. */
  run.registration = ctok_token_register_in_context (token, NULL, kill_child,
                                                     g_object_ref (child), g_object_unref);
  g_subprocess_wait_async (child, NULL, child_ended, &run);
  g_main_loop_run (loop);
}

static gboolean
part2 (GMainLoop *loop,
       guint      timeout_ms,
       GError   **error)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_timeout (timeout_ms);
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(GSubprocess) child = NULL;
  g_autofree char *pid = NULL;
  g_autoptr(GError) reason = NULL;

  g_print ("Part 2: ctok_token_register_in_context() kills the child\n");

  child = spawn_sleep (error);
  if (child == NULL)
    return FALSE;
  pid = g_strdup (g_subprocess_get_identifier (child));

  timeline ("running pid %s under the token, with a deadline in %u ms", pid, timeout_ms);
  run_under_token (loop, child, token);

  report_end (child, pid);
  if (ctok_token_set_error_if_cancelled (token, &reason))
    timeline ("the child was stopped: %s", reason->message);

  return TRUE;
}

int
main (int   argc,
      char *argv[])
{
  int timeout_ms = 500;
  const GOptionEntry entries[] = {
    { "timeout", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_INT, &timeout_ms,
      "The deadline of each part, in milliseconds (default: 500)", "MS" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = NULL;

  setlocale (LC_ALL, "");

  context = g_option_context_new ("- kill a child process when its token is cancelled");
  g_option_context_set_summary (context,
                                "Shows that cancelling g_subprocess_wait_async() leaves the "
                                "child running,\nand a ctok callback that kills it.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      return 2;
    }
  if (timeout_ms < 0)
    {
      g_printerr ("%s: --timeout must not be negative\n", g_get_prgname ());
      return 2;
    }

  loop = g_main_loop_new (NULL, FALSE);
  start_time = g_get_monotonic_time ();

  if (!part1 (loop, (guint) timeout_ms, &error) ||
      !part2 (loop, (guint) timeout_ms, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      return 1;
    }

  /* Let the main context finish what is left to it (the registration's
   * destroy notify, for one) before the program ends. */
  while (g_main_context_iteration (NULL, FALSE))
    ;

  return 0;
}
