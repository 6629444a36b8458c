/* test-token.c: token sources, tokens, registrations and reasons
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <ctok/ctok.h>

#include "test-common.h"

/* --- Sources and tokens --- */

static void
test_source_new (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);

  g_assert_true (CTOK_IS_TOKEN (token));
  g_assert_true (ctok_token_source_get_token (source) == token);
  g_assert_false (ctok_token_is_cancelled (token));
  g_assert_false (ctok_token_source_is_cancelled (source));
  g_assert_true (ctok_token_can_be_cancelled (token));
  g_assert_null (ctok_token_dup_error (token));

  g_object_ref (token);
  g_assert_finalize_object (source);
  g_assert_finalize_object (token);
}

static void
test_none (void)
{
  CtokToken *none = ctok_token_get_none ();
  CallbackRecord record = { 0, };
  guint64 id;

  g_assert_true (none == ctok_token_get_none ());
  g_assert_false (ctok_token_can_be_cancelled (none));
  g_assert_false (ctok_token_is_cancelled (none));
  g_assert_null (ctok_token_get_cancellable (none));
  g_assert_false (ctok_token_wait (none, -1));

  /* Nothing is stored on the never-cancelled token. */
  id = ctok_token_register (none, record_callback, &record, record_destroy);
  g_assert_cmpuint (id, ==, 0);
  g_assert_cmpint (record.calls, ==, 0);
  g_assert_cmpint (record.destroys, ==, 1);
  g_assert_cmpuint (ctok_token_debug_count_registrations (none), ==, 0);
}

static void
test_cancel_state (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(GError) error = NULL;
  gboolean value = FALSE;

  g_test_summary ("Cancellation goes one way and carries G_IO_ERROR_CANCELLED");

  ctok_token_source_cancel (source);

  g_assert_true (ctok_token_is_cancelled (token));
  g_assert_true (ctok_token_source_is_cancelled (source));
  g_assert_true (ctok_token_can_be_cancelled (token));
  g_object_get (token, "cancelled", &value, NULL);
  g_assert_true (value);

  g_assert_true (ctok_token_set_error_if_cancelled (token, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpstr (error->message, ==, "Operation was cancelled");
  g_clear_error (&error);

  error = ctok_token_dup_error (token);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* A NULL error location is allowed. */
  g_assert_true (ctok_token_set_error_if_cancelled (token, NULL));
}

static void
test_not_cancelled_error (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  GError *error = NULL;

  g_assert_false (ctok_token_set_error_if_cancelled (ctok_token_source_get_token (source), &error));
  g_assert_no_error (error);
}

static void
test_cancel_with_error (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(GError) reason = g_error_new (TEST_ERROR, 7, "custom %d", 7);
  g_autoptr(GError) error = NULL;

  g_test_summary ("A custom reason keeps its own domain, code and message, as a copy");

  ctok_token_source_cancel_with_error (source, reason);
  /* The reason was copied: the caller's error is untouched and may go. */
  g_clear_error (&reason);

  g_assert_true (ctok_token_set_error_if_cancelled (token, &error));
  g_assert_error (error, TEST_ERROR, 7);
  g_assert_cmpstr (error->message, ==, "custom 7");
  g_assert_false (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
}

static void
test_first_reason_wins (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(GError) first = g_error_new_literal (TEST_ERROR, 1, "first");
  g_autoptr(GError) second = g_error_new_literal (TEST_ERROR, 2, "second");
  g_autoptr(GError) error = NULL;
  CallbackRecord record = { 0, };

  ctok_token_register (token, record_callback, &record, record_destroy);

  ctok_token_source_cancel_with_error (source, first);
  ctok_token_source_cancel_with_error (source, second);
  ctok_token_source_cancel (source);

  error = ctok_token_dup_error (token);
  g_assert_error (error, TEST_ERROR, 1);
  g_assert_cmpint (record.calls, ==, 1);
  g_assert_cmpint (record.destroys, ==, 1);
}

/* --- Registrations --- */

static void
test_register_runs_once (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  CallbackRecord record = { 0, };
  guint64 id;

  id = ctok_token_register (token, record_callback, &record, record_destroy);
  g_assert_cmpuint (id, !=, 0);
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, 1);
  g_assert_cmpint (record.calls, ==, 0);

  ctok_token_source_cancel (source);
  g_assert_cmpint (record.calls, ==, 1);
  g_assert_cmpint (record.destroys, ==, 1);
  g_assert_true (record.token == token);
  g_assert_true (record.thread == g_thread_self ());
  g_assert_true (record.saw_cancelled);
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, 0);

  /* Its callback has run: the id is gone. */
  g_assert_false (ctok_token_unregister (token, id));
  g_assert_cmpint (record.destroys, ==, 1);

  ctok_token_source_cancel (source);
  g_assert_cmpint (record.calls, ==, 1);
}

static void
test_register_cancelled (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  CallbackRecord record = { 0, };
  guint64 id;

  g_test_summary ("Registering on a cancelled token runs the callback before returning, id 0");

  ctok_token_source_cancel (source);

  id = ctok_token_register (token, record_callback, &record, record_destroy);
  g_assert_cmpuint (id, ==, 0);
  g_assert_cmpint (record.calls, ==, 1);
  g_assert_cmpint (record.destroys, ==, 1);
  g_assert_true (record.token == token);
  g_assert_false (ctok_token_unregister (token, id));
}

static GArray *order;

static void
order_callback (CtokToken *token,
                gpointer   user_data)
{
  int value = GPOINTER_TO_INT (user_data);

  g_array_append_val (order, value);
}

static void
test_register_lifo (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);

  g_test_summary ("Callbacks run newest first, as .NET's");

  order = g_array_new (FALSE, FALSE, sizeof (int));
  for (int i = 0; i < 5; i++)
    ctok_token_register (token, order_callback, GINT_TO_POINTER (i), NULL);

  ctok_token_source_cancel (source);

  g_assert_cmpuint (order->len, ==, 5);
  for (int i = 0; i < 5; i++)
    g_assert_cmpint (g_array_index (order, int, i), ==, 4 - i);

  g_clear_pointer (&order, g_array_unref);
}

static void
test_unregister (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  CallbackRecord kept = { 0, };
  CallbackRecord removed = { 0, };
  guint64 id;

  ctok_token_register (token, record_callback, &kept, record_destroy);
  id = ctok_token_register (token, record_callback, &removed, record_destroy);

  g_assert_true (ctok_token_unregister (token, id));
  g_assert_cmpint (removed.destroys, ==, 1);
  g_assert_cmpint (removed.calls, ==, 0);

  /* A second time: gone. */
  g_assert_false (ctok_token_unregister (token, id));
  g_assert_false (ctok_token_unregister_nowait (token, id));
  g_assert_cmpint (removed.destroys, ==, 1);

  ctok_token_source_cancel (source);
  g_assert_cmpint (removed.calls, ==, 0);
  g_assert_cmpint (kept.calls, ==, 1);
}

/* Out of order: registrations removed from the middle of a long list are
 * left in place until the list is compacted. Whatever happens to the token
 * next, the removed ones never run and their destroy notifies ran once. */
typedef enum
{
  END_CANCEL,
  END_CLOSE,
  END_RESET,
  END_DROP,
} OutOfOrderEnd;

#define N_OUT_OF_ORDER 100

static GPtrArray *ran;

static void
ran_callback (CtokToken *token,
              gpointer   user_data)
{
  record_callback (token, user_data);
  g_ptr_array_add (ran, user_data);
}

static void
check_out_of_order (OutOfOrderEnd end)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = g_object_ref (ctok_token_source_get_token (source));
  CallbackRecord records[N_OUT_OF_ORDER + 10] = { { 0, }, };
  guint64 ids[N_OUT_OF_ORDER + 10];
  gboolean removed[N_OUT_OF_ORDER + 10] = { FALSE, };
  guint n_removed = 0;
  guint n_kept;

  ran = g_ptr_array_new ();
  for (guint i = 0; i < N_OUT_OF_ORDER; i++)
    ids[i] = ctok_token_register (token, ran_callback, &records[i], record_destroy);

  /* Every third and every seventh, oldest first (never the newest), then
   * all that is left but every fourth: tombstones, and compactions along
   * the way (a list is compacted once its tombstones outnumber its pending
   * registrations three to one). */
  for (guint i = 0; i < N_OUT_OF_ORDER - 1; i++)
    if (i % 3 == 0 || i % 7 == 0)
      {
        g_assert_true (ctok_token_unregister (token, ids[i]));
        removed[i] = TRUE;
        n_removed++;
      }
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, N_OUT_OF_ORDER - n_removed);
  for (guint i = N_OUT_OF_ORDER - 2; i > 0; i--)
    if (!removed[i] && i % 4 != 0)
      {
        g_assert_true (ctok_token_unregister (token, ids[i]));
        removed[i] = TRUE;
        n_removed++;
      }

  /* Removed once, gone for good; what comes next reuses their nodes. */
  for (guint i = 0; i < N_OUT_OF_ORDER; i++)
    {
      g_assert_cmpint (records[i].destroys, ==, removed[i] ? 1 : 0);
      if (removed[i])
        g_assert_false (ctok_token_unregister (token, ids[i]));
    }
  for (guint i = N_OUT_OF_ORDER; i < N_OUT_OF_ORDER + 10; i++)
    {
      ids[i] = ctok_token_register (token, ran_callback, &records[i], record_destroy);
      for (guint j = 0; j < i; j++)
        g_assert_cmpuint (ids[i], !=, ids[j]);
    }
  n_kept = N_OUT_OF_ORDER + 10 - n_removed;
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, n_kept);

  switch (end)
    {
    case END_CANCEL:
      ctok_token_source_cancel (source);
      break;
    case END_CLOSE:
      ctok_token_source_close (source);
      break;
    case END_RESET:
      g_assert_true (ctok_token_source_try_reset (source));
      break;
    case END_DROP:
    default:
      break;
    }
  g_clear_object (&source);
  /* A token outliving its source keeps its registrations until it goes. */
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, end == END_DROP ? n_kept : 0);
  g_assert_finalize_object (token);

  /* The kept ones ran (newest first) or were dropped; the removed ones
   * neither ran nor were destroyed again. */
  if (end == END_CANCEL)
    g_assert_cmpuint (ran->len, ==, n_kept);
  else
    g_assert_cmpuint (ran->len, ==, 0);
  for (guint i = 0, k = 0; i < N_OUT_OF_ORDER + 10; i++)
    {
      guint index = N_OUT_OF_ORDER + 10 - 1 - i;

      g_assert_cmpint (records[index].destroys, ==, 1);
      g_assert_cmpint (records[index].calls, ==, (end == END_CANCEL && !removed[index]) ? 1 : 0);
      if (end == END_CANCEL && !removed[index])
        g_assert_true (g_ptr_array_index (ran, k++) == &records[index]);
    }

  g_clear_pointer (&ran, g_ptr_array_unref);
}

static void
test_unregister_out_of_order (void)
{
  g_test_summary ("Registrations removed out of order never run, whatever happens to the token next");

  check_out_of_order (END_CANCEL);
  check_out_of_order (END_CLOSE);
  check_out_of_order (END_RESET);
  check_out_of_order (END_DROP);
}

static void
test_unregister_nowait (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  CallbackRecord record = { 0, };
  guint64 id;

  id = ctok_token_register (token, record_callback, &record, record_destroy);
  g_assert_true (ctok_token_unregister_nowait (token, id));
  g_assert_cmpint (record.destroys, ==, 1);
  ctok_token_source_cancel (source);
  g_assert_cmpint (record.calls, ==, 0);
}

static void
test_unregister_unknown (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);

  g_test_summary ("Unknown, zero and never-issued ids are ignored");

  g_assert_false (ctok_token_unregister (token, 0));
  g_assert_false (ctok_token_unregister_nowait (token, 0));
  g_assert_false (ctok_token_unregister (token, 1));
  g_assert_false (ctok_token_unregister (token, G_MAXUINT64));
  g_assert_false (ctok_token_unregister (token, G_GUINT64_CONSTANT (0xffffff0)));
}

static void
test_unregister_wrong_token (void)
{
  g_autoptr(CtokTokenSource) a = ctok_token_source_new ();
  g_autoptr(CtokTokenSource) b = ctok_token_source_new ();
  CallbackRecord record = { 0, };
  guint64 id;

  g_test_summary ("An id of another token is refused with a critical and stays registered");

  id = ctok_token_register (ctok_token_source_get_token (a), record_callback, &record, record_destroy);

  if (g_test_undefined ())
    {
      g_test_expect_message ("Ctok", G_LOG_LEVEL_CRITICAL, "*belongs to another token*");
      g_assert_false (ctok_token_unregister (ctok_token_source_get_token (b), id));
      g_test_assert_expected_messages ();
    }

  g_assert_cmpint (record.destroys, ==, 0);
  ctok_token_source_cancel (a);
  g_assert_cmpint (record.calls, ==, 1);
}

static void
test_ids_unique (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);
  guint64 *ids = g_new (guint64, 1000);

  g_test_summary ("Ids are never reused, even when the same storage is recycled");

  for (int round = 0; round < 1000; round++)
    {
      ids[round] = ctok_token_register (token, order_callback, NULL, NULL);
      /* A JavaScript number holds it exactly. */
      g_assert_cmpuint (ids[round], <, G_GUINT64_CONSTANT (1) << 53);
      g_assert_false (g_hash_table_contains (seen, &ids[round]));
      g_hash_table_add (seen, &ids[round]);
      g_assert_true (ctok_token_unregister (token, ids[round]));
    }

  /* Stale ids stay stale. */
  for (int round = 0; round < 1000; round++)
    g_assert_false (ctok_token_unregister (token, ids[round]));

  g_free (ids);
}

typedef struct
{
  CtokTokenSource *source;
  CtokToken       *token;
  guint64          self_id;
  guint64          other_id;
  gboolean         other_removed;
  gboolean         self_removed;
  int              calls;
} SelfData;

static void
unregister_self_callback (CtokToken *token,
                          gpointer   user_data)
{
  SelfData *data = user_data;

  data->calls++;
  /* Never waits on the thread running the callback, never deadlocks. */
  data->self_removed = ctok_token_unregister (token, data->self_id);
  data->other_removed = ctok_token_unregister (token, data->other_id);
  /* A cancel from inside a callback of the same source is a no-op. */
  ctok_token_source_cancel (data->source);
}

static void
test_unregister_in_callback (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  CallbackRecord other = { 0, };
  SelfData data = { source, token, 0, 0, FALSE, FALSE, 0 };

  g_test_summary ("Unregistering itself or a callback not yet started, from a callback");

  /* Registered first, so it runs after the other (LIFO). */
  data.other_id = ctok_token_register (token, record_callback, &other, record_destroy);
  data.self_id = ctok_token_register (token, unregister_self_callback, &data, NULL);

  ctok_token_source_cancel (source);

  g_assert_cmpint (data.calls, ==, 1);
  g_assert_false (data.self_removed);
  g_assert_true (data.other_removed);
  g_assert_cmpint (other.calls, ==, 0);
  g_assert_cmpint (other.destroys, ==, 1);
}

typedef struct
{
  CtokToken *token;
  CallbackRecord *late;
  int calls;
} RegisterInCallback;

static void
register_in_callback (CtokToken *token,
                      gpointer   user_data)
{
  RegisterInCallback *data = user_data;
  guint64 id;

  data->calls++;
  /* The token is cancelling: this runs at once. */
  id = ctok_token_register (token, record_callback, data->late, record_destroy);
  g_assert_cmpuint (id, ==, 0);
  g_assert_cmpint (data->late->calls, ==, 1);
}

static void
test_register_in_callback (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  CallbackRecord late = { 0, };
  RegisterInCallback data = { token, &late, 0 };

  ctok_token_register (token, register_in_callback, &data, NULL);
  ctok_token_source_cancel (source);

  g_assert_cmpint (data.calls, ==, 1);
  g_assert_cmpint (late.calls, ==, 1);
  g_assert_cmpint (late.destroys, ==, 1);
}

static void
cancel_other_callback (CtokToken *token,
                       gpointer   user_data)
{
  ctok_token_source_cancel (user_data);
}

static void
test_cancel_other_in_callback (void)
{
  g_autoptr(CtokTokenSource) a = ctok_token_source_new ();
  g_autoptr(CtokTokenSource) b = ctok_token_source_new ();
  CallbackRecord record = { 0, };

  ctok_token_register (ctok_token_source_get_token (b), record_callback, &record, record_destroy);
  ctok_token_register (ctok_token_source_get_token (a), cancel_other_callback, b, NULL);

  ctok_token_source_cancel (a);

  /* The nested cancel ran b's callbacks before returning. */
  g_assert_true (ctok_token_source_is_cancelled (b));
  g_assert_cmpint (record.calls, ==, 1);
}

static void
drop_source_callback (CtokToken *token,
                      gpointer   user_data)
{
  CtokTokenSource **source = user_data;

  /* The last references to the source and its token go while cancelling. */
  g_clear_object (source);
}

static void
test_drop_source_in_callback (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  CallbackRecord record = { 0, };
  GWeakRef weak;

  g_weak_ref_init (&weak, token);

  ctok_token_register (token, record_callback, &record, record_destroy);
  ctok_token_register (token, drop_source_callback, &source, NULL);

  ctok_token_source_cancel (source);

  g_assert_null (source);
  g_assert_cmpint (record.calls, ==, 1);
  g_assert_cmpint (record.destroys, ==, 1);
  g_assert_null (g_weak_ref_get (&weak));
  g_weak_ref_clear (&weak);
}

static void
test_destroy_without_cancel (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CallbackRecord record = { 0, };

  g_test_summary ("Registrations of a token nobody references any more are released");

  ctok_token_register (ctok_token_source_get_token (source), record_callback, &record, record_destroy);
  g_assert_finalize_object (source);

  g_assert_cmpint (record.calls, ==, 0);
  g_assert_cmpint (record.destroys, ==, 1);
}

static void
test_token_outlives_source (void)
{
  CtokTokenSource *source = ctok_token_source_new ();
  CtokToken *token = g_object_ref (ctok_token_source_get_token (source));
  CallbackRecord record = { 0, };

  ctok_token_register (token, record_callback, &record, record_destroy);

  /* The token's registrations stay while the token is referenced. */
  g_object_unref (source);
  g_assert_cmpint (record.destroys, ==, 0);
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, 1);

  g_assert_finalize_object (token);
  g_assert_cmpint (record.destroys, ==, 1);
  g_assert_cmpint (record.calls, ==, 0);
}

/* --- try_reset and close --- */

static void
test_try_reset (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  CallbackRecord dropped = { 0, };
  CallbackRecord later = { 0, };
  guint64 id;

  g_test_summary ("try_reset drops every registration without running it");

  id = ctok_token_register (token, record_callback, &dropped, record_destroy);

  g_assert_true (ctok_token_source_try_reset (source));
  g_assert_cmpint (dropped.destroys, ==, 1);
  g_assert_cmpint (dropped.calls, ==, 0);
  g_assert_cmpuint (ctok_token_debug_count_registrations (token), ==, 0);
  g_assert_false (ctok_token_unregister (token, id));
  g_assert_true (ctok_token_source_get_token (source) == token);

  /* Still usable. */
  ctok_token_register (token, record_callback, &later, record_destroy);
  ctok_token_source_cancel (source);
  g_assert_cmpint (later.calls, ==, 1);
  g_assert_cmpint (dropped.calls, ==, 0);

  /* Once cancelled, never again. */
  g_assert_false (ctok_token_source_try_reset (source));
  g_assert_true (ctok_token_is_cancelled (token));
}

static void
test_close (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  CallbackRecord before = { 0, };
  CallbackRecord after = { 0, };
  guint64 id;

  g_test_summary ("close does not cancel; the token never will be; registrations are released");

  ctok_token_register (token, record_callback, &before, record_destroy);

  ctok_token_source_close (source);
  g_assert_false (ctok_token_is_cancelled (token));
  g_assert_cmpint (before.calls, ==, 0);
  g_assert_cmpint (before.destroys, ==, 1);
  g_assert_true (ctok_token_can_be_cancelled (token));
  g_assert_true (ctok_token_source_get_token (source) == token);

  /* Nothing is stored any more. */
  id = ctok_token_register (token, record_callback, &after, record_destroy);
  g_assert_cmpuint (id, ==, 0);
  g_assert_cmpint (after.destroys, ==, 1);
  g_assert_cmpint (after.calls, ==, 0);

  /* wait() knows the token can never be cancelled now. */
  g_assert_false (ctok_token_wait (token, -1));

  /* Double close: nothing. */
  ctok_token_source_close (source);

  if (g_test_undefined ())
    {
      g_test_expect_message ("Ctok", G_LOG_LEVEL_CRITICAL, "*closed*");
      ctok_token_source_cancel (source);
      g_test_assert_expected_messages ();

      g_test_expect_message ("Ctok", G_LOG_LEVEL_CRITICAL, "*closed*");
      ctok_token_source_cancel_with_error (source, &(GError) { TEST_ERROR, 1, (char *) "x" });
      g_test_assert_expected_messages ();

      g_test_expect_message ("Ctok", G_LOG_LEVEL_CRITICAL, "*closed*");
      g_assert_false (ctok_token_source_try_reset (source));
      g_test_assert_expected_messages ();
    }

  g_assert_false (ctok_token_is_cancelled (token));
}

static void
test_close_cancelled (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(GError) error = NULL;

  ctok_token_source_cancel (source);
  ctok_token_source_close (source);

  g_assert_true (ctok_token_is_cancelled (token));
  error = ctok_token_dup_error (token);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_true (ctok_token_wait (token, -1));
}

/* --- Property --- */

static void
count_notify (GObject    *object,
              GParamSpec *pspec,
              gpointer    user_data)
{
  int *count = user_data;

  g_assert_cmpstr (pspec->name, ==, "cancelled");
  (*count)++;
}

static void
test_notify_cancelled (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  int count = 0;
  int plain = 0;

  g_signal_connect (token, "notify::cancelled", G_CALLBACK (count_notify), &count);
  /* Also a handler of every property's notify. */
  g_signal_connect (token, "notify", G_CALLBACK (count_notify), &plain);

  ctok_token_source_cancel (source);
  g_assert_cmpint (count, ==, 1);
  g_assert_cmpint (plain, ==, 1);

  /* Once. */
  ctok_token_source_cancel (source);
  g_assert_cmpint (count, ==, 1);
  g_assert_cmpint (plain, ==, 1);
}

static void
test_notify_disconnected (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  g_autoptr(CtokTokenSource) later = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  int count = 0;
  int other = 0;
  gulong id;

  g_test_summary ("A notify handler connected and gone is not called; one connected later is");

  /* GObject remembers that a handler was once connected; ctok then asks
   * GSignal, which knows it is gone. */
  id = g_signal_connect (token, "notify::cancelled", G_CALLBACK (count_notify), &count);
  g_signal_handler_disconnect (token, id);
  ctok_token_source_cancel (source);
  g_assert_cmpint (count, ==, 0);

  /* A token that never had one is notified once it has. */
  g_signal_connect (ctok_token_source_get_token (later), "notify::cancelled",
                    G_CALLBACK (count_notify), &other);
  ctok_token_source_cancel (later);
  g_assert_cmpint (other, ==, 1);
}

/* --- Errors after GIO calls --- */

static void
test_rewrite_error (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(GError) reason = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "too slow");
  GError *error = NULL;
  GError *other = NULL;
  GError *translated;

  /* Not cancelled: nothing to rewrite. */
  error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
  g_assert_false (ctok_token_rewrite_error (token, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  ctok_token_source_cancel_with_error (source, reason);

  g_assert_true (ctok_token_rewrite_error (token, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpstr (error->message, ==, "too slow");
  g_clear_error (&error);

  /* Other errors are left alone. */
  other = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "nope");
  g_assert_false (ctok_token_rewrite_error (token, &other));
  g_assert_error (other, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);

  g_assert_false (ctok_token_rewrite_error (token, NULL));
  g_assert_false (ctok_token_rewrite_error (token, &error));

  /* The binding-friendly form. */
  translated = ctok_token_translate_error (token, other);
  g_assert_error (translated, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_true (translated != other);
  g_clear_error (&translated);
  g_clear_error (&other);

  other = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
  translated = ctok_token_translate_error (token, other);
  g_assert_error (translated, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&translated);
  g_clear_error (&other);

  g_assert_null (ctok_token_translate_error (token, NULL));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/token-source/new", test_source_new);
  g_test_add_func ("/token/none", test_none);
  g_test_add_func ("/token/cancel/state", test_cancel_state);
  g_test_add_func ("/token/cancel/not-cancelled", test_not_cancelled_error);
  g_test_add_func ("/token/cancel/with-error", test_cancel_with_error);
  g_test_add_func ("/token/cancel/first-reason-wins", test_first_reason_wins);
  g_test_add_func ("/token/cancel/other-in-callback", test_cancel_other_in_callback);
  g_test_add_func ("/token/cancel/drop-source-in-callback", test_drop_source_in_callback);
  g_test_add_func ("/token/register/runs-once", test_register_runs_once);
  g_test_add_func ("/token/register/cancelled", test_register_cancelled);
  g_test_add_func ("/token/register/lifo", test_register_lifo);
  g_test_add_func ("/token/register/in-callback", test_register_in_callback);
  g_test_add_func ("/token/register/ids-unique", test_ids_unique);
  g_test_add_func ("/token/register/released-with-token", test_destroy_without_cancel);
  g_test_add_func ("/token/register/token-outlives-source", test_token_outlives_source);
  g_test_add_func ("/token/unregister/before-cancel", test_unregister);
  g_test_add_func ("/token/unregister/nowait", test_unregister_nowait);
  g_test_add_func ("/token/unregister/out-of-order", test_unregister_out_of_order);
  g_test_add_func ("/token/unregister/unknown", test_unregister_unknown);
  g_test_add_func ("/token/unregister/wrong-token", test_unregister_wrong_token);
  g_test_add_func ("/token/unregister/in-callback", test_unregister_in_callback);
  g_test_add_func ("/token-source/try-reset", test_try_reset);
  g_test_add_func ("/token-source/close", test_close);
  g_test_add_func ("/token-source/close-cancelled", test_close_cancelled);
  g_test_add_func ("/token/notify/cancelled", test_notify_cancelled);
  g_test_add_func ("/token/notify/disconnected", test_notify_disconnected);
  g_test_add_func ("/token/error/rewrite", test_rewrite_error);

  return g_test_run ();
}
