/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* read-deadline.c: a read that never completes, stopped by a deadline
 *
 * The program reads from a pipe that nobody writes to, with
 * g_input_stream_read_bytes_async() and the GCancellable of a token whose
 * source has a deadline (ctok_token_source_new_with_timeout()). When the
 * deadline passes, ctok's timer thread cancels the token, and with it the
 * cancellable, and GIO stops the read.
 *
 * GIO reports every cancelled operation as G_IO_ERROR_CANCELLED, whatever
 * the reason. ctok_token_rewrite_error() replaces that with the token's
 * reason, here G_IO_ERROR_TIMED_OUT ("Deadline exceeded"), so the program
 * can say "Timed out" rather than "Cancelled", as a caller would want.
 *
 * --write-after=MS writes a line into the pipe after MS milliseconds: if
 * that is before the deadline (--timeout=MS, default 1000), the read returns
 * it. Either way the program exits with status 0.
 */

#include <errno.h>
#include <locale.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gio/gunixinputstream.h>

#include <ctok/ctok.h>

#define MESSAGE "hello through the pipe\n"

typedef struct
{
  CtokToken *token;
  GMainLoop *loop;
  int        write_fd;
  guint      write_id;
  gboolean   timed_out;
} Reader;

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

static const char *
io_error_name (const GError *error)
{
  if (error->domain != G_IO_ERROR)
    return g_quark_to_string (error->domain);

  switch (error->code)
    {
    case G_IO_ERROR_CANCELLED:
      return "G_IO_ERROR_CANCELLED";
    case G_IO_ERROR_TIMED_OUT:
      return "G_IO_ERROR_TIMED_OUT";
    default:
      return "another G_IO_ERROR";
    }
}

static void
write_message (gpointer user_data)
{
  Reader *reader = user_data;

  reader->write_id = 0;
  if (write (reader->write_fd, MESSAGE, strlen (MESSAGE)) < 0)
    timeline ("writer: write failed: %s", g_strerror (errno));
  else
    timeline ("writer: wrote a line into the pipe");
}

static void
read_done (GObject      *source_object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Reader *reader = user_data;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source_object), result, &error);
  if (bytes != NULL)
    {
      g_autofree char *text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));

      timeline ("read %" G_GSIZE_FORMAT " bytes in time: %s",
                g_bytes_get_size (bytes), g_strchomp (text));
    }
  else
    {
      timeline ("the read failed, as GIO says: %s (%s)", error->message, io_error_name (error));

      /* GIO cannot know why its cancellable was cancelled; the token can. */
      if (ctok_token_rewrite_error (reader->token, &error))
        timeline ("the read failed, as the token says: %s (%s)",
                  error->message, io_error_name (error));

      reader->timed_out = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    }

  g_main_loop_quit (reader->loop);
}

int
main (int   argc,
      char *argv[])
{
  int timeout_ms = 1000;
  int write_after_ms = -1;
  const GOptionEntry entries[] = {
    { "timeout", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_INT, &timeout_ms,
      "The deadline, in milliseconds from now (default: 1000)", "MS" },
    { "write-after", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_INT, &write_after_ms,
      "Write a line into the pipe after MS milliseconds (default: never)", "MS" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CtokTokenSource) source = NULL;
  g_autoptr(GInputStream) stream = NULL;
  Reader reader = { NULL, };
  int fds[2];

  setlocale (LC_ALL, "");

  context = g_option_context_new ("- read from a silent pipe, with a deadline");
  g_option_context_set_summary (context,
                                "Shows a GIO read stopped by a ctok deadline, and the "
                                "reason rewritten from \"cancelled\" to \"timed out\".");
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

  if (!g_unix_open_pipe (fds, FD_CLOEXEC, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      return 1;
    }
  stream = g_unix_input_stream_new (fds[0], TRUE);
  reader.write_fd = fds[1];
  reader.loop = g_main_loop_new (NULL, FALSE);

  start_time = g_get_monotonic_time ();

  /* The deadline is kept by ctok's timer thread: no main-loop timeout. */
  source = ctok_token_source_new_with_timeout ((guint) timeout_ms);
  reader.token = ctok_token_source_get_token (source);
  timeline ("reading from a pipe that nobody writes to; the token's deadline is in %d ms",
            ctok_token_get_timeout_ms (reader.token));

  if (write_after_ms >= 0)
    reader.write_id = g_timeout_add_once ((guint) write_after_ms, write_message, &reader);

  g_input_stream_read_bytes_async (stream, 4096, G_PRIORITY_DEFAULT,
                                   ctok_token_get_cancellable (reader.token),
                                   read_done, &reader);
  g_main_loop_run (reader.loop);

  g_print ("%s\n", reader.timed_out ? "Timed out" : "Read in time");

  /* Nothing may cancel a program that is finishing. */
  ctok_token_source_close (source);
  g_clear_handle_id (&reader.write_id, g_source_remove);
  close (reader.write_fd);
  g_main_loop_unref (reader.loop);

  return 0;
}
