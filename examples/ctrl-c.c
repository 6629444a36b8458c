/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* ctrl-c.c: a long computation that stops cleanly on Ctrl+C
 *
 * A worker thread counts the prime numbers, one number after another, for
 * as long as it is let. It gets a CtokToken and checks it every thousand
 * numbers with ctok_token_is_cancelled(), a single atomic load, cheap enough
 * for a hot loop.
 *
 * The main thread owns the CtokTokenSource and hands it to
 * ctok_token_source_cancel_on_unix_signal() for SIGINT (Ctrl+C) and SIGTERM
 * (kill, a service manager): the signal cancels the token, the worker sees
 * it at its next check, returns what it found so far, and the program
 * reports it and exits with status 0, instead of dying half-way with the
 * default action of the signal. The signal is delivered through the main
 * loop, so the main thread runs one while the worker computes; a second
 * Ctrl+C gets the default action again.
 *
 * Usage: ctrl-c [--limit=N]  (stop by itself after N numbers)
 */

#include <locale.h>
#include <signal.h>
#include <unistd.h>

#include <ctok/ctok.h>

#define CHECK_EVERY 1000
#define REPORT_EVERY_MS 500

typedef struct
{
  guint64 checked;   /* numbers looked at: 2 .. checked + 1 */
  guint64 primes;
  guint64 largest;
} Count;

/* What the worker gets: the token, never the source. */
typedef struct
{
  CtokToken *token;
  guint64    limit;  /* 0 for none */
} Request;

static void
request_free (Request *request)
{
  g_object_unref (request->token);
  g_free (request);
}

static gint64 start_time;

/* Prints one line of the timeline, from any thread. */
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

  g_print ("[%5" G_GINT64_FORMAT " ms] %s\n",
           (g_get_monotonic_time () - start_time) / G_TIME_SPAN_MILLISECOND,
           message);
}

static gboolean
is_prime (guint64 n)
{
  if (n < 4)
    return n >= 2;
  if (n % 2 == 0)
    return FALSE;
  for (guint64 d = 3; d * d <= n; d += 2)
    if (n % d == 0)
      return FALSE;
  return TRUE;
}

static void
count_primes (GTask        *task,
              gpointer      source_object,
              gpointer      task_data,
              GCancellable *cancellable)
{
  Request *request = task_data;
  Count *count = g_new0 (Count, 1);
  gint64 next_report = g_get_monotonic_time () + REPORT_EVERY_MS * G_TIME_SPAN_MILLISECOND;

  for (guint64 n = 2; request->limit == 0 || count->checked < request->limit; n++)
    {
      if (is_prime (n))
        {
          count->primes++;
          count->largest = n;
        }
      count->checked++;

      if (count->checked % CHECK_EVERY != 0)
        continue;

      /* The check: no lock, no system call. */
      if (ctok_token_is_cancelled (request->token))
        break;

      if (g_get_monotonic_time () >= next_report)
        {
          timeline ("worker: %" G_GUINT64_FORMAT " numbers checked, %" G_GUINT64_FORMAT
                    " primes so far", count->checked, count->primes);
          next_report += REPORT_EVERY_MS * G_TIME_SPAN_MILLISECOND;
        }
    }

  /* Stopping early is not a failure here: the count so far is the result. */
  g_task_return_pointer (task, count, g_free);
}

typedef struct
{
  CtokToken *token;
  GMainLoop *loop;
  Count     *count;
} Work;

static void
counting_done (GObject      *source_object,
               GAsyncResult *result,
               gpointer      user_data)
{
  Work *work = user_data;

  work->count = g_task_propagate_pointer (G_TASK (result), NULL);
  g_main_loop_quit (work->loop);
}

/* Runs on the thread that cancels: here the main thread, where the signal
 * is delivered by the main loop. */
static void
on_cancelled (CtokToken *token,
              gpointer   user_data)
{
  g_autoptr(GError) reason = ctok_token_dup_error (token);

  timeline ("main: the token is cancelled: %s", reason->message);
}

int
main (int   argc,
      char *argv[])
{
  gint64 limit = 0;
  const GOptionEntry entries[] = {
    { "limit", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_INT64, &limit,
      "Stop by itself after N numbers (default: 0, never)", "N" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) reason = NULL;
  g_autoptr(CtokTokenSource) source = NULL;
  g_autoptr(GTask) task = NULL;
  Request *request;
  Work work = { NULL, };

  setlocale (LC_ALL, "");

  context = g_option_context_new ("- count primes until Ctrl+C");
  g_option_context_set_summary (context,
                                "Shows ctok stopping a worker thread's loop cleanly on "
                                "Ctrl+C (SIGINT) or SIGTERM.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      return 2;
    }
  if (limit < 0)
    {
      g_printerr ("%s: --limit must not be negative\n", g_get_prgname ());
      return 2;
    }

  start_time = g_get_monotonic_time ();

  source = ctok_token_source_new ();
  work.token = ctok_token_source_get_token (source);
  work.loop = g_main_loop_new (NULL, FALSE);

  /* Ctrl+C and kill cancel the source, through this thread's main loop. */
  ctok_token_source_cancel_on_unix_signal (source, SIGINT);
  ctok_token_source_cancel_on_unix_signal (source, SIGTERM);
  ctok_token_register (work.token, on_cancelled, NULL, NULL);

  timeline ("main: counting primes in a worker thread; press Ctrl+C to stop (pid %d)",
            (int) getpid ());

  request = g_new0 (Request, 1);
  request->token = g_object_ref (work.token);
  request->limit = (guint64) limit;
  task = g_task_new (NULL, NULL, counting_done, &work);
  g_task_set_name (task, "count-primes");
  g_task_set_task_data (task, request, (GDestroyNotify) request_free);
  g_task_run_in_thread (task, count_primes);

  g_main_loop_run (work.loop);

  reason = ctok_token_dup_error (work.token);
  if (reason != NULL)
    timeline ("main: the worker stopped early: %s", reason->message);
  else
    timeline ("main: the worker reached its limit");
  timeline ("main: %" G_GUINT64_FORMAT " numbers checked, %" G_GUINT64_FORMAT " primes, "
            "the largest %" G_GUINT64_FORMAT,
            work.count->checked, work.count->primes, work.count->largest);
  g_print ("%s\n", reason != NULL ? "Stopped cleanly" : "Done");

  /* Nothing may cancel a program that is finishing; closing the source also
   * gives SIGINT and SIGTERM their default action back. */
  ctok_token_source_close (source);
  while (g_main_context_iteration (NULL, FALSE))
    ;

  g_free (work.count);
  g_main_loop_unref (work.loop);

  return 0;
}
