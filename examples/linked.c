/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* linked.c: one token for "the user's Cancel, or the deadline, or shutdown"
 *
 * A request's work should stop for any of three reasons, each with its own
 * source and its own owner:
 *
 *  - the user, who may press Cancel (a plain source, G_IO_ERROR_CANCELLED);
 *  - the request's deadline (a source with a timeout, G_IO_ERROR_TIMED_OUT);
 *  - the application, shutting down (one source for the whole program,
 *    cancelled with its own reason, APP_ERROR_SHUTTING_DOWN).
 *
 * The work does not take three tokens: it takes one, from
 * ctok_token_source_new_linked() over the three. It stops at the first
 * cancellation, with that parent's reason, so it can tell which one reached
 * it; and it sees the request's deadline as its own
 * (ctok_token_get_timeout_ms()). Cancelling the linked source itself would
 * not touch the parents.
 *
 * The program runs four requests in turn: nobody cancels, the user cancels,
 * the deadline passes, the application shuts down. --only=NAME runs one of
 * them (none, user, deadline, shutdown). It exits with status 0.
 */

#include <locale.h>

#include <ctok/ctok.h>

#define WORK_STEPS 6
#define WORK_STEP_MS 150
#define DEADLINE_MS 600
#define EVENT_MS 300

#define APP_ERROR (app_error_quark ())

typedef enum
{
  APP_ERROR_SHUTTING_DOWN,
} AppError;

GQuark app_error_quark (void);

G_DEFINE_QUARK (app-error-quark, app_error)

typedef enum
{
  EVENT_NONE,
  EVENT_USER,
  EVENT_DEADLINE,
  EVENT_SHUTDOWN,
} Event;

static const char * const event_names[] = { "none", "user", "deadline", "shutdown" };

static const char * const event_titles[] = {
  "nobody cancels: the work completes",
  "the user presses Cancel",
  "the request's deadline passes",
  "the application shuts down",
};

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

  g_print ("[%4" G_GINT64_FORMAT " ms] %s\n",
           (g_get_monotonic_time () - start_time) / G_TIME_SPAN_MILLISECOND,
           message);
}

/* --- The work: knows one token, and nothing of who may cancel it --- */

static void
work_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  CtokToken *token = task_data;

  timeline ("work: started, %d ms left until the deadline it inherited",
            ctok_token_get_timeout_ms (token));

  for (guint i = 0; i < WORK_STEPS; i++)
    {
      GError *error = NULL;

      /* A sleep that ends as soon as the token is cancelled. */
      ctok_token_wait (token, WORK_STEP_MS * G_TIME_SPAN_MILLISECOND);

      if (ctok_token_set_error_if_cancelled (token, &error))
        {
          g_task_return_error (task, error);
          return;
        }

      timeline ("work: step %u/%u", i + 1, WORK_STEPS);
    }

  g_task_return_boolean (task, TRUE);
}

/* Which parent's reason reached the work. */
static const char *
explain (const GError *reason)
{
  if (g_error_matches (reason, APP_ERROR, APP_ERROR_SHUTTING_DOWN))
    return "APP_ERROR_SHUTTING_DOWN: the application is shutting down";
  if (g_error_matches (reason, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return "G_IO_ERROR_TIMED_OUT: the deadline passed";
  if (g_error_matches (reason, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return "G_IO_ERROR_CANCELLED: the user cancelled";
  return "an unexpected reason";
}

/* --- A request --- */

typedef struct
{
  GMainLoop       *loop;
  CtokTokenSource *user;      /* the user's Cancel button */
  CtokTokenSource *deadline;  /* the request's deadline */
  CtokTokenSource *shutdown;  /* the application's, shared by every request */
  guint            event_id;  /* the user's or the application's move, to come */
} Request;

static void
work_done (GObject      *source_object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Request *request = user_data;
  g_autoptr(GError) error = NULL;

  if (g_task_propagate_boolean (G_TASK (result), &error))
    timeline ("work: completed");
  else
    timeline ("work: stopped: %s (%s)", error->message, explain (error));

  g_main_loop_quit (request->loop);
}

static void
user_cancels (gpointer user_data)
{
  Request *request = user_data;

  request->event_id = 0;
  timeline ("user: presses Cancel");
  ctok_token_source_cancel (request->user);
}

static void
application_shuts_down (gpointer user_data)
{
  Request *request = user_data;
  g_autoptr(GError) reason = g_error_new_literal (APP_ERROR, APP_ERROR_SHUTTING_DOWN,
                                                  "The application is shutting down");

  request->event_id = 0;
  timeline ("application: shutting down");
  ctok_token_source_cancel_with_error (request->shutdown, reason);
}

static const char *
state (CtokTokenSource *source)
{
  return ctok_token_source_is_cancelled (source) ? "cancelled" : "not cancelled";
}

static void
run_request (GMainLoop       *loop,
             CtokTokenSource *shutdown,
             Event            event)
{
  Request request = { loop, NULL, NULL, shutdown, 0 };
  g_autoptr(CtokTokenSource) linked = NULL;
  g_autoptr(GTask) task = NULL;
  CtokToken *parents[3];

  start_time = g_get_monotonic_time ();
  g_print ("\nRequest: %s\n", event_titles[event]);

  request.user = ctok_token_source_new ();
  /* Long enough for the work to complete, unless the deadline is the point. */
  request.deadline = ctok_token_source_new_with_timeout (event == EVENT_DEADLINE ? DEADLINE_MS
                                                                               : 10 * DEADLINE_MS);

  /* The work's token: cancelled when any of the three is. */
  parents[0] = ctok_token_source_get_token (request.user);
  parents[1] = ctok_token_source_get_token (request.deadline);
  parents[2] = ctok_token_source_get_token (request.shutdown);
  linked = ctok_token_source_new_linked (parents, G_N_ELEMENTS (parents));

  if (event == EVENT_USER)
    request.event_id = g_timeout_add_once (EVENT_MS, user_cancels, &request);
  else if (event == EVENT_SHUTDOWN)
    request.event_id = g_timeout_add_once (EVENT_MS, application_shuts_down, &request);

  task = g_task_new (NULL, NULL, work_done, &request);
  g_task_set_name (task, "work");
  g_task_set_task_data (task, g_object_ref (ctok_token_source_get_token (linked)),
                        g_object_unref);
  g_task_run_in_thread (task, work_thread);

  g_main_loop_run (loop);

  /* Only one parent was cancelled: the linked token never cancels its parents. */
  timeline ("sources: user %s, deadline %s, shutdown %s, work's %s",
            state (request.user), state (request.deadline), state (request.shutdown),
            state (linked));

  /* The request is over: nothing of it may be cancelled any more. */
  g_clear_handle_id (&request.event_id, g_source_remove);
  ctok_token_source_close (linked);
  g_object_unref (request.deadline);
  g_object_unref (request.user);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *only = NULL;
  const GOptionEntry entries[] = {
    { "only", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_STRING, &only,
      "Run one request: none, user, deadline or shutdown", "NAME" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(CtokTokenSource) shutdown = NULL;
  gboolean found = FALSE;

  setlocale (LC_ALL, "");

  context = g_option_context_new ("- cancel work for one of three reasons");
  g_option_context_set_summary (context,
                                "Shows a linked token that stops work when the user cancels, "
                                "a deadline passes,\nor the application shuts down, and "
                                "which of them reached the work.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      return 2;
    }

  loop = g_main_loop_new (NULL, FALSE);
  /* One for the whole application: once it is cancelled, it stays so, so
   * the shutdown comes last. */
  shutdown = ctok_token_source_new ();

  for (Event event = EVENT_NONE; event <= EVENT_SHUTDOWN; event++)
    {
      if (only != NULL && g_strcmp0 (only, event_names[event]) != 0)
        continue;
      found = TRUE;
      run_request (loop, shutdown, event);
    }

  if (!found)
    {
      g_printerr ("%s: --only takes none, user, deadline or shutdown\n", g_get_prgname ());
      return 2;
    }

  return 0;
}
