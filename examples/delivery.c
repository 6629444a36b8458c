/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* delivery.c: cooperative cancellation of a food-delivery order
 *
 * An order is placed, and two jobs work on it while it is open:
 *
 *  - the payment, a worker thread (g_task_run_in_thread()) that goes through
 *    ten steps, sleeping between them with ctok_token_wait(), a sleep that
 *    ends as soon as the token is cancelled, and checking
 *    ctok_token_set_error_if_cancelled() after each;
 *
 *  - the kitchen, a main-loop job whose steps are driven by g_timeout_add(),
 *    and which registers a callback with ctok_token_register_in_context() to
 *    stop at once, in the main thread, when the token is cancelled.
 *
 * Both jobs get the order's CtokToken; only the customer holds the
 * CtokTokenSource. The customer cancels after one second (--cancel-after=MS
 * changes that, --no-cancel lets the order be delivered), and Ctrl+C cancels
 * too. Each cancellation carries its own reason, a GError, which both jobs
 * report as they get it from the token: neither needs to know who cancelled.
 */

#include <locale.h>

#include <glib-unix.h>

#include <ctok/ctok.h>

#define ORDER_NUMBER 42
#define PAYMENT_STEP_MS 150
#define KITCHEN_STEP_MS 300

#define DELIVERY_ERROR (delivery_error_quark ())

typedef enum
{
  DELIVERY_ERROR_CUSTOMER_CANCELLED,
  DELIVERY_ERROR_INTERRUPTED,
} DeliveryError;

GQuark delivery_error_quark (void);

G_DEFINE_QUARK (delivery-error-quark, delivery_error)

static const char * const payment_steps[] = {
  "card number checked",
  "billing address verified",
  "fraud score computed",
  "card network contacted",
  "bank reached",
  "3-D Secure confirmed",
  "amount reserved",
  "discount code applied",
  "tip added",
  "payment captured",
};

static const char * const kitchen_steps[] = {
  "ticket read",
  "salad washed",
  "onions chopped",
  "dough stretched",
  "tomato sauce spread",
  "mozzarella added",
  "basil added",
  "pizza baked",
  "pizza sliced",
  "salad dressed",
  "order boxed",
  "courier called",
};

typedef struct
{
  CtokTokenSource *source;       /* the customer's: the only way to cancel */
  CtokToken       *token;        /* the jobs': borrowed from @source */
  GMainLoop       *loop;

  gboolean         payment_done;
  gboolean         kitchen_done;

  guint            kitchen_step;
  guint            kitchen_timeout_id;
  guint64          kitchen_registration;

  guint            cancel_timeout_id;
  guint            sigint_id;
} Order;

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

static void
order_maybe_finish (Order *order)
{
  if (!order->payment_done || !order->kitchen_done)
    return;

  /* Nothing may cancel a finished order. */
  g_clear_handle_id (&order->cancel_timeout_id, g_source_remove);
  g_clear_handle_id (&order->sigint_id, g_source_remove);

  g_main_loop_quit (order->loop);
}

/* --- Payment: a worker thread --- */

static void
payment_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  CtokToken *token = task_data;

  for (guint i = 0; i < G_N_ELEMENTS (payment_steps); i++)
    {
      GError *error = NULL;

      /* An interruptible sleep: it returns early if the token is cancelled. */
      ctok_token_wait (token, PAYMENT_STEP_MS * G_TIME_SPAN_MILLISECOND);

      /* The error is the reason the token was cancelled, whoever did it. */
      if (ctok_token_set_error_if_cancelled (token, &error))
        {
          g_task_return_error (task, error);
          return;
        }

      timeline ("payment: step %u/%u, %s",
                i + 1, (guint) G_N_ELEMENTS (payment_steps), payment_steps[i]);
    }

  g_task_return_boolean (task, TRUE);
}

static void
payment_finished (GObject      *source_object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Order *order = user_data;
  g_autoptr(GError) error = NULL;

  if (g_task_propagate_boolean (G_TASK (result), &error))
    timeline ("payment: accepted");
  else
    timeline ("payment stopped early: %s", error->message);

  order->payment_done = TRUE;
  order_maybe_finish (order);
}

static void
payment_start (Order *order)
{
  g_autoptr(GTask) task = g_task_new (NULL, NULL, payment_finished, order);

  /* The worker thread gets the token, never the source. */
  g_task_set_name (task, "payment");
  g_task_set_task_data (task, g_object_ref (order->token), g_object_unref);
  g_task_run_in_thread (task, payment_thread);
}

/* --- Kitchen: a main-loop job --- */

static void
kitchen_finish (Order *order)
{
  order->kitchen_done = TRUE;
  order_maybe_finish (order);
}

static gboolean
kitchen_step (gpointer user_data)
{
  Order *order = user_data;

  timeline ("kitchen: step %u/%u, %s",
            order->kitchen_step + 1, (guint) G_N_ELEMENTS (kitchen_steps),
            kitchen_steps[order->kitchen_step]);
  order->kitchen_step++;

  if (order->kitchen_step < G_N_ELEMENTS (kitchen_steps))
    return G_SOURCE_CONTINUE;

  /* Done: the cancellation callback is not needed any more. */
  order->kitchen_timeout_id = 0;
  ctok_token_unregister (order->token, order->kitchen_registration);
  order->kitchen_registration = 0;

  timeline ("kitchen: order #%d is ready", ORDER_NUMBER);
  kitchen_finish (order);

  return G_SOURCE_REMOVE;
}

/* Runs in the main thread whatever thread cancels the token. */
static void
kitchen_cancelled (CtokToken *token,
                   gpointer   user_data)
{
  Order *order = user_data;

  order->kitchen_registration = 0;
  g_clear_handle_id (&order->kitchen_timeout_id, g_source_remove);

  timeline ("kitchen stopped early after %u of %u steps",
            order->kitchen_step, (guint) G_N_ELEMENTS (kitchen_steps));
  kitchen_finish (order);
}

static void
kitchen_start (Order *order)
{
  /* NULL: the callback runs in this thread's main context. */
  order->kitchen_registration =
    ctok_token_register_in_context (order->token, NULL, kitchen_cancelled, order, NULL);
  order->kitchen_timeout_id = g_timeout_add (KITCHEN_STEP_MS, kitchen_step, order);
}

/* --- Whoever cancels --- */

static void
customer_cancels (gpointer user_data)
{
  Order *order = user_data;
  g_autoptr(GError) reason = g_error_new_literal (DELIVERY_ERROR,
                                                  DELIVERY_ERROR_CUSTOMER_CANCELLED,
                                                  "The customer cancelled the order");

  order->cancel_timeout_id = 0;

  timeline ("customer cancels the order");
  ctok_token_source_cancel_with_error (order->source, reason);
}

static gboolean
sigint_received (gpointer user_data)
{
  Order *order = user_data;
  g_autoptr(GError) reason = g_error_new_literal (DELIVERY_ERROR,
                                                  DELIVERY_ERROR_INTERRUPTED,
                                                  "Interrupted (SIGINT)");

  /* Removing the source gives SIGINT its default action back: a second
   * Ctrl+C ends the program at once. */
  order->sigint_id = 0;

  timeline ("Ctrl+C: interrupting the order");
  ctok_token_source_cancel_with_error (order->source, reason);

  return G_SOURCE_REMOVE;
}

int
main (int   argc,
      char *argv[])
{
  gboolean no_cancel = FALSE;
  int cancel_after_ms = 1000;
  const GOptionEntry entries[] = {
    { "no-cancel", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_NONE, &no_cancel,
      "Let the order complete: the customer does not cancel", NULL },
    { "cancel-after", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_INT, &cancel_after_ms,
      "The customer cancels after MS milliseconds (default: 1000)", "MS" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) reason = NULL;
  Order order = { NULL, };

  setlocale (LC_ALL, "");

  context = g_option_context_new ("- a food order that the customer cancels");
  g_option_context_set_summary (context,
                                "Shows ctok cancelling a worker thread and a main-loop job "
                                "with a typed reason.\nCtrl+C cancels the order too.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      return 2;
    }
  if (cancel_after_ms < 0)
    {
      g_printerr ("%s: --cancel-after must not be negative\n", g_get_prgname ());
      return 2;
    }

  order.source = ctok_token_source_new ();
  order.token = ctok_token_source_get_token (order.source);
  order.loop = g_main_loop_new (NULL, FALSE);

  start_time = g_get_monotonic_time ();
  timeline ("order #%d placed", ORDER_NUMBER);

  order.sigint_id = g_unix_signal_add (SIGINT, sigint_received, &order);
  if (!no_cancel)
    order.cancel_timeout_id = g_timeout_add_once ((guint) cancel_after_ms,
                                                  customer_cancels, &order);

  payment_start (&order);
  kitchen_start (&order);

  g_main_loop_run (order.loop);

  /* Let the main context finish what the jobs left to it (the kitchen's
   * registration is released there) before everything is freed. */
  while (g_main_context_iteration (NULL, FALSE))
    ;

  reason = ctok_token_dup_error (order.token);
  if (reason != NULL)
    g_print ("Order cancelled: %s\n", reason->message);
  else
    g_print ("Order delivered\n");

  g_main_loop_unref (order.loop);
  g_object_unref (order.source);

  return 0;
}
