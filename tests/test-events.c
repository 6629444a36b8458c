/* test-events.c: cancelling on signals, Unix signals and finalization,
 * and property bindings across threads
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <signal.h>

#include <ctok/ctok.h>

#include "test-common.h"

#define token_of ctok_token_source_get_token

/* A stand-in for a widget: a plain signal, a boolean one like
 * GtkWindow::close-request, and a boolean property like "sensitive". */
typedef struct { GObject parent_instance; gboolean sensitive; } TestWidget;
typedef struct { GObjectClass parent_class; } TestWidgetClass;

GType test_widget_get_type (void);
G_DEFINE_TYPE (TestWidget, test_widget, G_TYPE_OBJECT)

enum { PROP_SENSITIVE = 1 };
enum { CLICKED, CLOSE_REQUEST, N_SIGNALS };
static guint widget_signals[N_SIGNALS];
static GThread *sensitive_set_on;

static void
test_widget_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  ((TestWidget *) object)->sensitive = g_value_get_boolean (value);
  sensitive_set_on = g_thread_self ();
}

static void
test_widget_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  g_value_set_boolean (value, ((TestWidget *) object)->sensitive);
}

static void
test_widget_class_init (TestWidgetClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->set_property = test_widget_set_property;
  object_class->get_property = test_widget_get_property;
  g_object_class_install_property (object_class, PROP_SENSITIVE,
                                   g_param_spec_boolean ("sensitive", NULL, NULL, TRUE,
                                                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  widget_signals[CLICKED] = g_signal_new ("clicked", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  widget_signals[CLOSE_REQUEST] = g_signal_new ("close-request", G_TYPE_FROM_CLASS (klass),
                                                G_SIGNAL_RUN_LAST, 0,
                                                g_signal_accumulator_true_handled, NULL, NULL,
                                                G_TYPE_BOOLEAN, 0);
}

static void
test_widget_init (TestWidget *self)
{
  self->sensitive = TRUE;
}

static void
test_cancel_on_signal (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  g_autoptr(GObject) button = g_object_new (test_widget_get_type (), NULL);
  g_autoptr(GError) error = NULL;
  gulong id;

  g_test_summary ("A GObject signal, such as a Cancel button's clicked, cancels the source");

  id = ctok_token_source_cancel_on_signal (source, button, "clicked");
  g_assert_cmpuint (id, !=, 0);
  g_assert_false (ctok_token_source_is_cancelled (source));

  g_signal_emit (button, widget_signals[CLICKED], 0);
  g_assert_true (ctok_token_source_is_cancelled (source));
  error = ctok_token_dup_error (token_of (source));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* Again: nothing more happens. */
  g_signal_emit (button, widget_signals[CLICKED], 0);
}

static void
test_cancel_on_signal_boolean (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  g_autoptr(GObject) window = g_object_new (test_widget_get_type (), NULL);
  gboolean stop = TRUE;

  g_test_summary ("On a signal that returns a boolean, the handler never stops the emission");

  ctok_token_source_cancel_on_signal (source, window, "close-request");
  g_signal_emit (window, widget_signals[CLOSE_REQUEST], 0, &stop);

  g_assert_true (ctok_token_source_is_cancelled (source));
  g_assert_false (stop);
}

static void
test_cancel_on_signal_lifetimes (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  GObject *button = g_object_new (test_widget_get_type (), NULL);
  guint clicked = widget_signals[CLICKED];

  g_test_summary ("The connection goes away with either object, and holds neither alive");

  ctok_token_source_cancel_on_signal (source, button, "clicked");
  g_assert_true (g_signal_has_handler_pending (button, clicked, 0, FALSE));

  /* The source goes first: the handler goes with it. */
  g_assert_finalize_object (source);
  g_assert_false (g_signal_has_handler_pending (button, clicked, 0, FALSE));
  g_signal_emit (button, clicked, 0);

  /* The button goes first: the source lives on, not cancelled. */
  source = ctok_token_source_new ();
  ctok_token_source_cancel_on_signal (source, button, "clicked");
  g_assert_finalize_object (button);
  g_assert_false (ctok_token_source_is_cancelled (source));
  g_assert_finalize_object (source);
}

static void
test_cancel_on_signal_closed (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  g_autoptr(GObject) button = g_object_new (test_widget_get_type (), NULL);

  ctok_token_source_cancel_on_signal (source, button, "clicked");
  ctok_token_source_close (source);

  /* Not a programmer error: nobody called cancel(). */
  g_signal_emit (button, widget_signals[CLICKED], 0);
  g_assert_false (ctok_token_source_is_cancelled (source));
}

static void
test_cancel_on_unix_signal (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = token_of (source);
  g_autoptr(GError) error = NULL;
  guint id;

  g_test_summary ("A Unix signal cancels the source through the main context, naming itself");

  id = ctok_token_source_cancel_on_unix_signal (source, SIGUSR1);
  g_assert_cmpuint (id, !=, 0);

  raise (SIGUSR1);
  while (!ctok_token_is_cancelled (token))
    g_main_context_iteration (NULL, TRUE);

  error = ctok_token_dup_error (token);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpstr (error->message, ==, "Cancelled by signal SIGUSR1");

  /* Once: the watch is gone. */
  g_assert_null (g_main_context_find_source_by_id (NULL, id));
}

static void
test_cancel_on_unix_signal_closed (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  guint id = ctok_token_source_cancel_on_unix_signal (source, SIGUSR2);

  /* Closing removes the watch. */
  g_assert_nonnull (g_main_context_find_source_by_id (NULL, id));
  ctok_token_source_close (source);
  g_assert_null (g_main_context_find_source_by_id (NULL, id));
  g_assert_finalize_object (source);

  /* So does finalizing. */
  source = ctok_token_source_new ();
  id = ctok_token_source_cancel_on_unix_signal (source, SIGUSR2);
  g_assert_finalize_object (source);
  g_assert_null (g_main_context_find_source_by_id (NULL, id));

  if (g_test_undefined ())
    {
      g_autoptr(CtokTokenSource) other = ctok_token_source_new ();

      g_test_expect_message ("Ctok", G_LOG_LEVEL_CRITICAL, "*signal_name*");
      g_assert_cmpuint (ctok_token_source_cancel_on_unix_signal (other, SIGKILL), ==, 0);
      g_test_assert_expected_messages ();
    }
}

static void
test_cancel_on_finalize (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokTokenSource *gone_first = ctok_token_source_new ();
  GObject *request = g_object_new (G_TYPE_OBJECT, NULL);

  g_test_summary ("An object going away cancels the source; neither keeps the other alive");

  ctok_token_source_cancel_on_finalize (source, request);
  ctok_token_source_cancel_on_finalize (gone_first, request);
  g_assert_finalize_object (gone_first);

  g_assert_false (ctok_token_source_is_cancelled (source));
  g_assert_finalize_object (request);
  g_assert_true (ctok_token_source_is_cancelled (source));
}

/* --- Property bindings with cancellation on another thread --- */

static void
test_bind_property (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  g_autoptr(GObject) button = g_object_new (test_widget_get_type (), NULL);
  GThread *thread;

  g_test_summary ("g_object_bind_property (token, cancelled, button, sensitive) updates the "
                  "button in the main thread when another thread cancels");

  g_object_bind_property (token_of (source), "cancelled", button, "sensitive",
                          G_BINDING_SYNC_CREATE | G_BINDING_INVERT_BOOLEAN);
  g_assert_true (((TestWidget *) button)->sensitive);
  sensitive_set_on = NULL;

  /* The main context is owned by this thread while the other cancels. */
  g_assert_true (g_main_context_acquire (NULL));
  thread = g_thread_new ("canceller", (GThreadFunc) (void (*) (void)) ctok_token_source_cancel, source);
  g_thread_join (thread);

  /* Not updated on the cancelling thread... */
  g_assert_true (((TestWidget *) button)->sensitive);
  g_assert_null (sensitive_set_on);

  /* ...but here, once the main loop runs. */
  while (((TestWidget *) button)->sensitive)
    g_main_context_iteration (NULL, TRUE);
  g_main_context_release (NULL);

  g_assert_false (((TestWidget *) button)->sensitive);
  g_assert_true (sensitive_set_on == g_thread_self ());
}

typedef struct
{
  int      count;
  GThread *thread;
} NotifySeen;

static void
notify_seen (GObject    *object,
             GParamSpec *pspec,
             gpointer    user_data)
{
  NotifySeen *seen = user_data;

  seen->count++;
  seen->thread = g_thread_self ();
}

static void
test_notify_home_thread_busy (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = token_of (source);
  NotifySeen seen = { 0, NULL };

  g_test_summary ("A deadline firing while the token's thread is busy (not in its main loop) "
                  "does not notify on the timer thread, but in the main context later");

  g_signal_connect (token, "notify::cancelled", G_CALLBACK (notify_seen), &seen);
  ctok_token_source_cancel_after (source, 5);

  /* Busy: blocked here, not iterating the main context. */
  g_assert_true (ctok_token_wait (token, -1));
  g_usleep (10 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpint (seen.count, ==, 0);

  while (seen.count == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpint (seen.count, ==, 1);
  g_assert_true (seen.thread == g_thread_self ());
}

static void
test_notify_home_thread_no_loop (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  NotifySeen seen = { 0, NULL };

  g_test_summary ("Without a main loop, the thread that created the token gets notify at once");

  g_signal_connect (token_of (source), "notify::cancelled", G_CALLBACK (notify_seen), &seen);
  ctok_token_source_cancel (source);
  g_assert_cmpint (seen.count, ==, 1);
  g_assert_true (seen.thread == g_thread_self ());
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/token-source/cancel-on-signal/emitted", test_cancel_on_signal);
  g_test_add_func ("/token-source/cancel-on-signal/boolean", test_cancel_on_signal_boolean);
  g_test_add_func ("/token-source/cancel-on-signal/lifetimes", test_cancel_on_signal_lifetimes);
  g_test_add_func ("/token-source/cancel-on-signal/closed", test_cancel_on_signal_closed);
  g_test_add_func ("/token-source/cancel-on-unix-signal/raised", test_cancel_on_unix_signal);
  g_test_add_func ("/token-source/cancel-on-unix-signal/removed", test_cancel_on_unix_signal_closed);
  g_test_add_func ("/token-source/cancel-on-finalize", test_cancel_on_finalize);
  g_test_add_func ("/token/notify/bind-property-other-thread", test_bind_property);
  g_test_add_func ("/token/notify/home-thread-busy", test_notify_home_thread_busy);
  g_test_add_func ("/token/notify/home-thread-no-loop", test_notify_home_thread_no_loop);

  return g_test_run ();
}
