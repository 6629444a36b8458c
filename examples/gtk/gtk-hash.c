/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* gtk-hash.c: a GTK 4 window whose job stops on Cancel, on a time limit,
 * or when the window closes
 *
 * Start hashes a file (SHA-256) with asynchronous GIO reads of 1 MiB, on the
 * main thread, updating a progress bar. Without a FILE argument the file is
 * a sparse temporary file of --size MiB (zeros, nothing written to disk), and
 * the reads are paced to --rate MiB/s so that there is time to press Cancel.
 *
 * Each run of the job gets a new CtokTokenSource, and the job only sees its
 * CtokToken:
 *
 *  - the Cancel button cancels the source through
 *    ctok_token_source_cancel_on_signal (source, cancel_button, "clicked"),
 *    and closing the window through the window's "close-request";
 *
 *  - the time limit is a deadline, ctok_token_source_cancel_after(), whose
 *    reason is G_IO_ERROR_TIMED_OUT rather than G_IO_ERROR_CANCELLED;
 *
 *  - a read in flight gets the token's GCancellable, so GIO stops it, and
 *    ctok_token_rewrite_error() turns GIO's G_IO_ERROR_CANCELLED into the
 *    token's reason; a pause between two reads is cut short by a GSource
 *    from ctok_token_create_source(), which dispatches in the main thread
 *    even when the deadline fires on ctok's timer thread;
 *
 *  - the Cancel button's sensitivity is bound to the token's "cancelled"
 *    property (inverted), and the Start button's to the window's "running".
 *
 * The program prints what happens on stdout, one line per event, for the
 * tests (examples/gtk/test-gtk-app.py) and for the curious: "layout NAME X Y
 * W H" (a widget's place in its X window, after the first frame), "ready",
 * "time limit …", "started …", "progress N%", "cancel clicked", "close
 * requested", "cancelled after N ms (WHEN)" (from the Cancel click or the
 * close request to the job's stop; WHEN says whether a read or a pause was
 * cut short), "timed out after N ms (M ms after the deadline, WHEN)", "done
 * HASH", "failed: …" and "status TEXT" (the status label). Ctrl+W closes
 * the window; closing it while the job runs cancels the job and closes once
 * it has stopped. examples/python/gtk-hash.py and examples/js/gtk-hash.js
 * are the same program in Python and JavaScript.
 */

#include <locale.h>

#include <gtk/gtk.h>

#include <ctok/ctok.h>

#define MIB (1024 * 1024)
#define CHUNK_SIZE MIB

/* The choices of the "Time limit" buttons, in seconds; 0 is none. */
static const guint time_limits_s[] = { 0, 1, 2, 5 };

/* What the job hashes: opened once, read again from the start by each run. */
typedef struct
{
  GInputStream *stream;
  goffset       size;
  char         *description;
  double        rate;           /* bytes per second, 0 for no limit */
} Input;

typedef struct _Job Job;

#define HASH_TYPE_WINDOW (hash_window_get_type ())
G_DECLARE_FINAL_TYPE (HashWindow, hash_window, HASH, WINDOW, GtkApplicationWindow)

struct _HashWindow
{
  GtkApplicationWindow  parent_instance;

  const Input          *input;

  GtkWidget            *limit_box;
  GtkWidget            *limit_buttons[G_N_ELEMENTS (time_limits_s)];
  GtkWidget            *progress_bar;
  GtkWidget            *status_label;
  GtkWidget            *hash_label;
  GtkWidget            *start_button;
  GtkWidget            *cancel_button;

  guint                 time_limit_s;
  Job                  *job;                 /* the running job, or NULL */
  gint64                cancel_requested_at; /* by a click or a close request */
  gboolean              close_pending;
  gulong                after_paint_id;
};

enum
{
  PROP_0,
  PROP_RUNNING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (HashWindow, hash_window, GTK_TYPE_APPLICATION_WINDOW)

/* One run of the hashing job. */
struct _Job
{
  HashWindow      *window;        /* a reference, so the job can always report */
  CtokTokenSource *source;        /* the window's: Cancel, close, time limit */
  CtokToken       *token;         /* the job's: borrowed from @source */

  GChecksum       *checksum;
  goffset          done;
  int              percent;
  gint64           started_at;

  gboolean         reading;       /* a read is in flight */
  guint            pause_id;      /* or the job waits to keep to the rate */
  GSource         *cancel_source; /* cuts a pause short */

  gulong           clicked_id;
  gulong           close_request_id;
  GBinding        *cancel_binding;
};

static void job_read_next (Job *job);

/* Milliseconds with one decimal, always with a dot: the output is a protocol. */
static const char *
format_ms (char   buffer[G_ASCII_DTOSTR_BUF_SIZE],
           gint64 us)
{
  return g_ascii_formatd (buffer, G_ASCII_DTOSTR_BUF_SIZE, "%.1f",
                          (double) us / G_TIME_SPAN_MILLISECOND);
}

static void
hash_window_set_status (HashWindow *self,
                        const char *status)
{
  gtk_label_set_text (GTK_LABEL (self->status_label), status);
  g_print ("status %s\n", status);
}

static void
hash_window_set_running (HashWindow *self,
                         Job        *job)
{
  self->job = job;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RUNNING]);
}

/* --- The job --- */

static void
job_free (Job *job)
{
  g_checksum_free (job->checksum);
  g_object_unref (job->source);
  g_object_unref (job->window);
  g_free (job);
}

/* Ends the job: @error is why it stopped early, or NULL if it is done;
 * @when says what the job was doing then. */
static void
job_stop (Job          *job,
          const GError *error,
          const char   *when)
{
  HashWindow *self = job->window;
  gint64 stopped_at = g_get_monotonic_time ();
  char ms[G_ASCII_DTOSTR_BUF_SIZE];
  char ms2[G_ASCII_DTOSTR_BUF_SIZE];

  g_assert (!job->reading && job->pause_id == 0);

  /* Nothing may cancel a job that is over. */
  if (job->cancel_source != NULL)
    {
      g_source_destroy (job->cancel_source);
      g_clear_pointer (&job->cancel_source, g_source_unref);
    }
  g_clear_signal_handler (&job->clicked_id, self->cancel_button);
  g_clear_signal_handler (&job->close_request_id, self);
  g_binding_unbind (job->cancel_binding);
  gtk_widget_set_sensitive (self->cancel_button, FALSE);

  if (error == NULL)
    {
      const char *hash = g_checksum_get_string (job->checksum);
      g_autofree char *hash_text = g_strdup_printf ("SHA-256: %s", hash);

      g_print ("done %s\n", hash);
      gtk_label_set_text (GTK_LABEL (self->hash_label), hash_text);
      hash_window_set_status (self, "Done");
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    {
      /* The deadline stays readable once the token is cancelled. */
      gint64 deadline = ctok_token_get_deadline (job->token);

      g_print ("timed out after %s ms (%s ms after the deadline, %s)\n",
               format_ms (ms, stopped_at - job->started_at),
               format_ms (ms2, stopped_at - deadline), when);
      hash_window_set_status (self, "Timed out");
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      if (self->cancel_requested_at != 0)
        g_print ("cancelled after %s ms (%s)\n",
                 format_ms (ms, stopped_at - self->cancel_requested_at), when);
      else
        g_print ("cancelled (%s)\n", when);
      hash_window_set_status (self, "Cancelled");
    }
  else
    {
      g_autofree char *status = g_strdup_printf ("Failed: %s", error->message);

      g_print ("failed: %s\n", error->message);
      hash_window_set_status (self, status);
    }

  hash_window_set_running (self, NULL);

  /* The window was asked to close while the job ran: now it can. The job's
   * reference keeps it valid until the end of this function. */
  if (self->close_pending)
    gtk_window_close (GTK_WINDOW (self));

  job_free (job);
}

/* Dispatched in the main thread when the token is cancelled, whoever
 * cancels it (a click, the close request, or the deadline on ctok's timer
 * thread). */
static gboolean
job_cancelled (CtokToken *token,
               gpointer   user_data)
{
  Job *job = user_data;
  g_autoptr(GError) reason = NULL;

  /* The source dispatches once; GLib destroys it when this returns. */
  g_clear_pointer (&job->cancel_source, g_source_unref);

  /* A read in flight fails by itself, through the token's GCancellable, and
   * chunk_read() stops the job then; only a pause needs cutting short. */
  if (job->pause_id != 0)
    {
      g_clear_handle_id (&job->pause_id, g_source_remove);
      ctok_token_set_error_if_cancelled (token, &reason);
      job_stop (job, reason, "in a pause");
    }

  return G_SOURCE_REMOVE;
}

static void
job_resume (gpointer user_data)
{
  Job *job = user_data;

  job->pause_id = 0;
  job_read_next (job);
}

static void
job_update_progress (Job *job)
{
  HashWindow *self = job->window;
  goffset size = self->input->size;
  int percent = size > 0 ? (int) (job->done * 100 / size) : 100;
  g_autofree char *text = NULL;

  if (percent == job->percent)
    return;

  job->percent = percent;
  text = g_strdup_printf ("%d %%", percent);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress_bar), percent / 100.0);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), text);
  g_print ("progress %d%%\n", percent);
}

static void
chunk_read (GObject      *source_object,
            GAsyncResult *result,
            gpointer      user_data)
{
  Job *job = user_data;
  double rate = job->window->input->rate;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;

  job->reading = FALSE;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source_object), result, &error);
  if (bytes == NULL)
    {
      /* GIO reports G_IO_ERROR_CANCELLED whoever cancelled; the token knows
       * the real reason, such as G_IO_ERROR_TIMED_OUT for the deadline. */
      ctok_token_rewrite_error (job->token, &error);
      job_stop (job, error, "in a read");
      return;
    }

  if (g_bytes_get_size (bytes) == 0)
    {
      job_stop (job, NULL, NULL);
      return;
    }

  g_checksum_update (job->checksum,
                     g_bytes_get_data (bytes, NULL), (gssize) g_bytes_get_size (bytes));
  job->done += (goffset) g_bytes_get_size (bytes);
  job_update_progress (job);

  /* The read may have completed just as the token was cancelled. */
  if (ctok_token_set_error_if_cancelled (job->token, &error))
    {
      job_stop (job, error, "after a read");
      return;
    }

  if (rate > 0)
    {
      /* Keep to the rate: wait until this many bytes are due. */
      gint64 due = job->started_at + (gint64) (job->done / rate * G_USEC_PER_SEC);
      gint64 wait_ms = (due - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND;

      if (wait_ms > 0)
        {
          job->pause_id = g_timeout_add_once ((guint) wait_ms, job_resume, job);
          return;
        }
    }

  job_read_next (job);
}

static void
job_read_next (Job *job)
{
  job->reading = TRUE;
  g_input_stream_read_bytes_async (job->window->input->stream, CHUNK_SIZE, G_PRIORITY_DEFAULT,
                                   ctok_token_get_cancellable (job->token),
                                   chunk_read, job);
}

static void
start_clicked (GtkButton  *button,
               HashWindow *self)
{
  Job *job;
  g_autoptr(GError) error = NULL;

  if (self->job != NULL)
    return;

  job = g_new0 (Job, 1);
  job->window = g_object_ref (self);
  job->source = ctok_token_source_new ();
  job->token = ctok_token_source_get_token (job->source);
  job->checksum = g_checksum_new (G_CHECKSUM_SHA256);
  job->percent = -1;
  job->started_at = g_get_monotonic_time ();

  /* Everything that may stop the job cancels its source. */
  if (self->time_limit_s > 0)
    ctok_token_source_cancel_after (job->source, self->time_limit_s * 1000);
  job->clicked_id = ctok_token_source_cancel_on_signal (job->source, self->cancel_button,
                                                        "clicked");
  job->close_request_id = ctok_token_source_cancel_on_signal (job->source, self,
                                                              "close-request");

  /* Cancel is clickable until the token is cancelled, whatever cancels it;
   * the notification comes in this thread, also for the deadline. */
  job->cancel_binding = g_object_bind_property (job->token, "cancelled",
                                                self->cancel_button, "sensitive",
                                                G_BINDING_SYNC_CREATE |
                                                G_BINDING_INVERT_BOOLEAN);

  /* Dispatched in this thread's main context when the token is cancelled. */
  job->cancel_source = ctok_token_create_source (job->token);
  g_source_set_callback (job->cancel_source, G_SOURCE_FUNC (job_cancelled), job, NULL);
  g_source_attach (job->cancel_source, NULL);

  self->cancel_requested_at = 0;
  hash_window_set_running (self, job);
  gtk_label_set_text (GTK_LABEL (self->hash_label), "");
  job_update_progress (job);
  if (self->time_limit_s > 0)
    g_print ("started (time limit %u s)\n", self->time_limit_s);
  else
    g_print ("started (no time limit)\n");
  hash_window_set_status (self, "Hashing…");

  if (!g_seekable_seek (G_SEEKABLE (self->input->stream), 0, G_SEEK_SET, NULL, &error))
    {
      job_stop (job, error, "at the start");
      return;
    }

  job_read_next (job);
}

/* --- The window --- */

/* Connected before any job's handler, so it runs first: the time the
 * cancellation was asked for, to measure how long the job takes to stop. */
static void
cancel_clicked (GtkButton  *button,
                HashWindow *self)
{
  self->cancel_requested_at = g_get_monotonic_time ();
  g_print ("cancel clicked\n");
}

static gboolean
close_requested (GtkWindow *window,
                 gpointer   user_data)
{
  HashWindow *self = HASH_WINDOW (window);

  if (self->job != NULL)
    self->cancel_requested_at = g_get_monotonic_time ();
  g_print ("close requested\n");

  return GDK_EVENT_PROPAGATE;
}

static void
limit_toggled (GtkToggleButton *button,
               HashWindow      *self)
{
  if (!gtk_toggle_button_get_active (button))
    return;

  self->time_limit_s = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (button), "time-limit-s"));
  if (self->time_limit_s > 0)
    g_print ("time limit %u s\n", self->time_limit_s);
  else
    g_print ("time limit none\n");
}

static void
print_widget_layout (HashWindow *self,
                     const char *name,
                     GtkWidget  *widget)
{
  graphene_rect_t bounds;
  double surface_x, surface_y;

  if (!gtk_widget_compute_bounds (widget, GTK_WIDGET (self), &bounds))
    return;

  /* From the window's coordinates to its X window's (shadows, if any). */
  gtk_native_get_surface_transform (GTK_NATIVE (self), &surface_x, &surface_y);
  g_print ("layout %s %d %d %d %d\n", name,
           (int) (bounds.origin.x + surface_x), (int) (bounds.origin.y + surface_y),
           (int) bounds.size.width, (int) bounds.size.height);
}

/* After the first frame: the widgets have their places. */
static void
after_first_paint (GdkFrameClock *clock,
                   HashWindow    *self)
{
  g_clear_signal_handler (&self->after_paint_id, clock);

  print_widget_layout (self, "start", self->start_button);
  print_widget_layout (self, "cancel", self->cancel_button);
  for (guint i = 0; i < G_N_ELEMENTS (time_limits_s); i++)
    {
      g_autofree char *name = g_strdup_printf ("limit-%u", time_limits_s[i]);

      print_widget_layout (self, name, self->limit_buttons[i]);
    }
  g_print ("ready\n");
}

static void
hash_window_map (GtkWidget *widget)
{
  HashWindow *self = HASH_WINDOW (widget);
  GdkFrameClock *clock;

  GTK_WIDGET_CLASS (hash_window_parent_class)->map (widget);

  clock = gtk_widget_get_frame_clock (widget);
  if (self->after_paint_id == 0 && clock != NULL)
    self->after_paint_id = g_signal_connect (clock, "after-paint",
                                             G_CALLBACK (after_first_paint), self);
}

static void
hash_window_unmap (GtkWidget *widget)
{
  HashWindow *self = HASH_WINDOW (widget);

  g_clear_signal_handler (&self->after_paint_id, gtk_widget_get_frame_clock (widget));

  GTK_WIDGET_CLASS (hash_window_parent_class)->unmap (widget);
}

static gboolean
hash_window_close_request (GtkWindow *window)
{
  HashWindow *self = HASH_WINDOW (window);

  /* The job's source was cancelled by the signal's handlers already:
   * close once the job has stopped, which is quick. */
  if (self->job != NULL)
    {
      self->close_pending = TRUE;
      return TRUE;
    }

  return GTK_WINDOW_CLASS (hash_window_parent_class)->close_request (window);
}

static void
hash_window_dispose (GObject *object)
{
  HashWindow *self = HASH_WINDOW (object);

  /* A job holds a reference on the window until it stops. */
  g_assert (self->job == NULL);

  G_OBJECT_CLASS (hash_window_parent_class)->dispose (object);
}

static void
hash_window_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  HashWindow *self = HASH_WINDOW (object);

  switch (prop_id)
    {
    case PROP_RUNNING:
      g_value_set_boolean (value, self->job != NULL);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
hash_window_class_init (HashWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->dispose = hash_window_dispose;
  object_class->get_property = hash_window_get_property;
  widget_class->map = hash_window_map;
  widget_class->unmap = hash_window_unmap;
  window_class->close_request = hash_window_close_request;

  properties[PROP_RUNNING] =
    g_param_spec_boolean ("running", NULL, NULL,
                          FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
hash_window_init (HashWindow *self)
{
  GtkWidget *box, *row, *label, *buttons;

  gtk_window_set_title (GTK_WINDOW (self), "ctok hash (C)");
  gtk_window_set_default_size (GTK_WINDOW (self), 480, -1);

  box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  gtk_widget_set_margin_start (box, 18);
  gtk_widget_set_margin_end (box, 18);
  gtk_widget_set_margin_top (box, 18);
  gtk_widget_set_margin_bottom (box, 18);
  gtk_window_set_child (GTK_WINDOW (self), box);

  /* The description of the input, set by hash_window_new(). */
  label = gtk_label_new (NULL);
  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_widget_set_name (label, "description");
  gtk_box_append (GTK_BOX (box), label);

  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_box_append (GTK_BOX (row), gtk_label_new ("Time limit:"));
  self->limit_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 0);
  gtk_widget_add_css_class (self->limit_box, "linked");
  for (guint i = 0; i < G_N_ELEMENTS (time_limits_s); i++)
    {
      g_autofree char *text = NULL;
      GtkWidget *button;

      if (time_limits_s[i] > 0)
        text = g_strdup_printf ("%u s", time_limits_s[i]);
      else
        text = g_strdup ("None");
      button = gtk_toggle_button_new_with_label (text);
      g_object_set_data (G_OBJECT (button), "time-limit-s", GUINT_TO_POINTER (time_limits_s[i]));
      if (i > 0)
        gtk_toggle_button_set_group (GTK_TOGGLE_BUTTON (button),
                                     GTK_TOGGLE_BUTTON (self->limit_buttons[0]));
      else
        gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (button), TRUE);
      g_signal_connect (button, "toggled", G_CALLBACK (limit_toggled), self);
      gtk_box_append (GTK_BOX (self->limit_box), button);
      self->limit_buttons[i] = button;
    }
  gtk_box_append (GTK_BOX (row), self->limit_box);
  gtk_box_append (GTK_BOX (box), row);

  self->progress_bar = gtk_progress_bar_new ();
  gtk_progress_bar_set_show_text (GTK_PROGRESS_BAR (self->progress_bar), TRUE);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), "0 %");
  gtk_box_append (GTK_BOX (box), self->progress_bar);

  self->status_label = gtk_label_new ("Ready");
  gtk_label_set_xalign (GTK_LABEL (self->status_label), 0);
  gtk_widget_add_css_class (self->status_label, "heading");
  gtk_box_append (GTK_BOX (box), self->status_label);

  self->hash_label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->hash_label), 0);
  gtk_label_set_selectable (GTK_LABEL (self->hash_label), TRUE);
  gtk_label_set_ellipsize (GTK_LABEL (self->hash_label), PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_add_css_class (self->hash_label, "monospace");
  gtk_box_append (GTK_BOX (box), self->hash_label);

  buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_widget_set_halign (buttons, GTK_ALIGN_END);
  self->cancel_button = gtk_button_new_with_mnemonic ("_Cancel");
  gtk_widget_set_sensitive (self->cancel_button, FALSE);
  g_signal_connect (self->cancel_button, "clicked", G_CALLBACK (cancel_clicked), self);
  gtk_box_append (GTK_BOX (buttons), self->cancel_button);
  self->start_button = gtk_button_new_with_mnemonic ("_Start");
  gtk_widget_add_css_class (self->start_button, "suggested-action");
  g_signal_connect (self->start_button, "clicked", G_CALLBACK (start_clicked), self);
  gtk_box_append (GTK_BOX (buttons), self->start_button);
  gtk_box_append (GTK_BOX (box), buttons);

  /* Start and the time limit only while no job runs. */
  g_object_bind_property (self, "running", self->start_button, "sensitive",
                          G_BINDING_SYNC_CREATE | G_BINDING_INVERT_BOOLEAN);
  g_object_bind_property (self, "running", self->limit_box, "sensitive",
                          G_BINDING_SYNC_CREATE | G_BINDING_INVERT_BOOLEAN);

  g_signal_connect (self, "close-request", G_CALLBACK (close_requested), NULL);
}

static GtkWidget *
hash_window_new (GtkApplication *app,
                 const Input    *input)
{
  HashWindow *self = g_object_new (HASH_TYPE_WINDOW, "application", app, NULL);
  GtkWidget *description = gtk_widget_get_first_child (gtk_window_get_child (GTK_WINDOW (self)));

  self->input = input;
  gtk_label_set_text (GTK_LABEL (description), input->description);

  return GTK_WIDGET (self);
}

/* --- The input --- */

/* A sparse temporary file of @size bytes: nothing is written, it reads as
 * zeros, and it is unlinked at once, so nothing is left behind even if the
 * program is killed. */
static GInputStream *
open_generated (goffset   size,
                GError  **error)
{
  g_autoptr(GFileIOStream) iostream = NULL;
  g_autoptr(GFile) file = NULL;
  GFileInputStream *stream = NULL;

  file = g_file_new_tmp ("ctok-gtk-hash-XXXXXX", &iostream, error);
  if (file == NULL)
    return NULL;

  if (g_seekable_truncate (G_SEEKABLE (iostream), size, NULL, error) &&
      g_io_stream_close (G_IO_STREAM (iostream), NULL, error))
    stream = g_file_read (file, NULL, error);

  g_file_delete (file, NULL, NULL);

  return G_INPUT_STREAM (stream);
}

static gboolean
input_open (Input       *input,
            const char  *path,
            int          size_mib,
            double       rate_mib,
            GError     **error)
{
  g_autofree char *rate_text = NULL;

  input->rate = rate_mib * MIB;
  if (rate_mib > 0)
    rate_text = g_strdup_printf (", at most %g MiB/s", rate_mib);
  else
    rate_text = g_strdup ("");

  if (path == NULL)
    {
      input->size = (goffset) size_mib * MIB;
      input->stream = open_generated (input->size, error);
      input->description = g_strdup_printf ("SHA-256 of %d MiB of zeros (a sparse "
                                            "temporary file)%s.", size_mib, rate_text);
    }
  else
    {
      g_autoptr(GFile) file = g_file_new_for_commandline_arg (path);
      g_autoptr(GFileInfo) info = NULL;
      g_autofree char *name = g_file_get_parse_name (file);
      g_autofree char *size_text = NULL;

      input->stream = G_INPUT_STREAM (g_file_read (file, NULL, error));
      if (input->stream != NULL)
        info = g_file_input_stream_query_info (G_FILE_INPUT_STREAM (input->stream),
                                               G_FILE_ATTRIBUTE_STANDARD_SIZE, NULL, error);
      if (info == NULL)
        {
          g_clear_object (&input->stream);
          return FALSE;
        }
      input->size = g_file_info_get_size (info);
      size_text = g_format_size (input->size);
      input->description = g_strdup_printf ("SHA-256 of %s (%s)%s.", name, size_text, rate_text);
    }

  return input->stream != NULL;
}

static void
input_clear (Input *input)
{
  g_clear_object (&input->stream);
  g_clear_pointer (&input->description, g_free);
}

/* --- The application --- */

static void
startup (GtkApplication *app,
         gpointer        user_data)
{
  const char * const close_accels[] = { "<Control>w", NULL };

  /* GtkWindow's own "window.close" action, as the close button does. */
  gtk_application_set_accels_for_action (app, "window.close", close_accels);
}

static void
activate (GtkApplication *app,
          gpointer        user_data)
{
  const Input *input = user_data;
  GtkWindow *window = gtk_application_get_active_window (app);

  if (window == NULL)
    window = GTK_WINDOW (hash_window_new (app, input));
  gtk_window_present (window);
}

int
main (int   argc,
      char *argv[])
{
  int size_mib = 256;
  double rate_mib = 32;
  const GOptionEntry entries[] = {
    { "size", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_INT, &size_mib,
      "Size of the generated file in MiB (default: 256)", "MIB" },
    { "rate", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_DOUBLE, &rate_mib,
      "Read at most MIB MiB per second, 0 for no limit (default: 32)", "MIB" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GtkApplication) app = NULL;
  g_autoptr(GError) error = NULL;
  Input input = { NULL, };
  int status;

  setlocale (LC_ALL, "");

  context = g_option_context_new ("[FILE] - hash a file, with Cancel and a time limit");
  g_option_context_set_summary (context,
                                "Shows ctok stopping a GTK application's job from a Cancel "
                                "button, a time limit or the window closing.\nWithout FILE, "
                                "hashes a generated sparse file.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      return 2;
    }
  if (argc > 2 || size_mib < 0 || rate_mib < 0)
    {
      g_printerr ("%s: expected at most one FILE, and sizes and rates not negative\n",
                  g_get_prgname ());
      return 2;
    }

  if (!input_open (&input, argc > 1 ? argv[1] : NULL, size_mib, rate_mib, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      return 1;
    }

  app = gtk_application_new ("org.ctok.examples.GtkHash", G_APPLICATION_NON_UNIQUE);
  g_signal_connect (app, "activate", G_CALLBACK (activate), &input);
  g_signal_connect (app, "startup", G_CALLBACK (startup), NULL);
  status = g_application_run (G_APPLICATION (app), 0, NULL);

  input_clear (&input);

  return status;
}
