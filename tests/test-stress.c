/* test-stress.c: random operations from several threads on shared sources,
 * then invariants
 *
 * Threads register, unregister (waiting or not), cancel, cancel with a
 * reason, close, link new sources to live ones, drop sources (keeping their
 * token or not), arm and re-arm deadlines, use and cancel the shared
 * GCancellable, and make per-operation ones, all at random on a shared pool.
 * Then, with every thread stopped, the test checks:
 *
 *  - every destroy notify ran exactly once, every callback at most once,
 *    and exactly once if its token was cancelled before it was removed;
 *  - a linked child is cancelled if and only if it was cancelled itself
 *    (directly, through its GCancellable or by a deadline) or by its parents
 *    (any of them, or all of them for an all-of link);
 *  - a token holds exactly one registration per link of each live child
 *    that is neither cancelled nor closed, and none once it is cancelled or
 *    closed: children that are gone leave nothing behind.
 *
 * A watchdog fails the test on a hang rather than letting CI time out.
 * Locks are GRWLock (pthread underneath) so ThreadSanitizer sees them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <ctok/ctok.h>

#include "test-common.h"

#define N_SLOTS     12
#define MAX_PARENTS 3

typedef struct _Entry Entry;

struct _Entry
{
  CtokTokenSource *source;      /* owned by the slot holding it; NULL once dropped */
  CtokToken       *token;       /* kept for the final checks, unless dropped fully */
  GWeakRef         weak;        /* the token, as long as anything keeps it */
  CtokToken       *alive;       /* during the checks: a reference, if it lives */
  Entry           *parents[MAX_PARENTS];
  guint            n_parents;
  gboolean         all;
  int              self_cancel;     /* atomic: the test cancelled it itself */
  int              closed;          /* atomic: the test closed it */
  int              short_deadline;  /* atomic: a deadline may have fired */
  int              gone;            /* atomic: its token was dropped fully */
};

typedef struct
{
  GRWLock  lock;   /* read: use the entry's source; write: replace it */
  Entry   *entry;
} Slot;

typedef struct
{
  int calls;     /* atomic */
  int destroys;  /* atomic */
  int running;   /* atomic */
  int removed;   /* unregister() or unregister_nowait() said TRUE */
  Entry *entry;
} Reg;

typedef struct
{
  CtokToken *token;  /* a reference */
  guint64    id;
  Reg       *reg;
} Held;

typedef struct
{
  Slot       slots[N_SLOTS];
  GRWLock    all_lock;     /* guards @entries and @regs */
  GPtrArray *entries;      /* every Entry ever made */
  GPtrArray *regs;         /* every Reg ever made */
  int        ops_per_thread;
  int        total_ops;    /* atomic */
} Stress;

static void
reg_callback (CtokToken *token,
              gpointer   user_data)
{
  Reg *reg = user_data;

  g_atomic_int_set (&reg->running, 1);
  g_assert_cmpint (g_atomic_int_add (&reg->calls, 1), ==, 0);
  g_assert_true (ctok_token_is_cancelled (token));
  g_atomic_int_set (&reg->running, 0);
}

static void
reg_destroy (gpointer user_data)
{
  Reg *reg = user_data;

  g_assert_cmpint (g_atomic_int_add (&reg->destroys, 1), ==, 0);
}

static Entry *
entry_new (Stress            *stress,
           CtokTokenSource   *source)
{
  Entry *entry = g_new0 (Entry, 1);

  entry->source = source;
  entry->token = g_object_ref (ctok_token_source_get_token (source));
  g_weak_ref_init (&entry->weak, entry->token);

  g_rw_lock_writer_lock (&stress->all_lock);
  g_ptr_array_add (stress->entries, entry);
  g_rw_lock_writer_unlock (&stress->all_lock);

  return entry;
}

/* Takes a slot's entry out, putting a new one in its place; the caller owns
 * the old entry's source. */
static Entry *
slot_replace (Slot  *slot,
              Entry *entry)
{
  Entry *old;

  g_rw_lock_writer_lock (&slot->lock);
  old = slot->entry;
  slot->entry = entry;
  g_rw_lock_writer_unlock (&slot->lock);

  return old;
}

/* The old entry goes: closed, cancelled or neither, and its token kept for
 * the checks or dropped with everything else. */
static void
retire (Entry *old,
        GRand *rand)
{
  CtokTokenSource *source = g_steal_pointer (&old->source);

  switch (g_rand_int_range (rand, 0, 3))
    {
    case 0:
      g_atomic_int_set (&old->closed, TRUE);
      ctok_token_source_close (source);
      break;
    case 1:
      g_atomic_int_set (&old->self_cancel, TRUE);
      ctok_token_source_cancel (source);
      break;
    default:
      break;
    }

  g_object_unref (source);

  if (g_rand_boolean (rand))
    {
      g_atomic_int_set (&old->gone, TRUE);
      g_clear_object (&old->token);
    }
}

static void
held_unregister (Held     *held,
                 gboolean  wait)
{
  gboolean removed = wait ? ctok_token_unregister (held->token, held->id)
                          : ctok_token_unregister_nowait (held->token, held->id);

  if (removed)
    {
      held->reg->removed = TRUE;
      g_assert_cmpint (g_atomic_int_get (&held->reg->calls), ==, 0);
    }
  else if (wait)
    {
      /* Whatever happened, the callback is not running any more. */
      g_assert_cmpint (g_atomic_int_get (&held->reg->running), ==, 0);
    }

  g_object_unref (held->token);
}

static gpointer
stress_thread (gpointer data)
{
  Stress *stress = data;
  GRand *rand = g_rand_new ();
  GArray *held = g_array_new (FALSE, FALSE, sizeof (Held));

  for (int op = 0; op < stress->ops_per_thread; op++)
    {
      Slot *slot = &stress->slots[g_rand_int_range (rand, 0, N_SLOTS)];
      int choice = g_rand_int_range (rand, 0, 100);
      Entry *entry;

      if (choice >= 85)
        {
          /* Link a new source to live tokens (or make a plain one), and
           * retire the slot's entry. */
          CtokToken *tokens[MAX_PARENTS];
          Entry *parents[MAX_PARENTS];
          guint n = choice >= 90 ? g_rand_int_range (rand, 1, MAX_PARENTS + 1) : 0;
          gboolean all = g_rand_int_range (rand, 0, 4) == 0;
          CtokTokenSource *source;
          Entry *fresh;

          for (guint i = 0; i < n; i++)
            {
              Slot *from = &stress->slots[g_rand_int_range (rand, 0, N_SLOTS)];

              g_rw_lock_reader_lock (&from->lock);
              parents[i] = from->entry;
              tokens[i] = g_object_ref (ctok_token_source_get_token (from->entry->source));
              g_rw_lock_reader_unlock (&from->lock);
            }

          source = all ? ctok_token_source_new_linked_all (tokens, n)
                       : ctok_token_source_new_linked (tokens, n);
          fresh = entry_new (stress, source);
          fresh->all = all;
          fresh->n_parents = n;
          for (guint i = 0; i < n; i++)
            {
              fresh->parents[i] = parents[i];
              g_object_unref (tokens[i]);
            }

          retire (slot_replace (slot, fresh), rand);
          g_atomic_int_inc (&stress->total_ops);
          continue;
        }

      g_rw_lock_reader_lock (&slot->lock);
      entry = slot->entry;

      if (choice < 30)
        {
          Reg *reg = g_new0 (Reg, 1);
          Held h;

          reg->entry = entry;
          g_rw_lock_writer_lock (&stress->all_lock);
          g_ptr_array_add (stress->regs, reg);
          g_rw_lock_writer_unlock (&stress->all_lock);

          h.token = g_object_ref (entry->token);
          h.reg = reg;
          h.id = ctok_token_register (h.token, reg_callback, reg, reg_destroy);
          if (h.id == 0)
            g_object_unref (h.token);
          else
            g_array_append_val (held, h);
        }
      else if (choice < 50)
        {
          if (held->len > 0)
            {
              guint index = g_rand_int_range (rand, 0, held->len);
              Held h = g_array_index (held, Held, index);

              g_array_remove_index_fast (held, index);
              held_unregister (&h, choice < 42);
            }
        }
      else if (choice < 56)
        {
          g_atomic_int_set (&entry->self_cancel, TRUE);
          ctok_token_source_cancel (entry->source);
        }
      else if (choice < 59)
        {
          g_autoptr(GError) reason = g_error_new_literal (TEST_ERROR, 3, "stress");

          g_atomic_int_set (&entry->self_cancel, TRUE);
          ctok_token_source_cancel_with_error (entry->source, reason);
        }
      else if (choice < 62)
        {
          /* Queries, racing everything else. (Closing happens when a
           * source is retired, under the slot's write lock: cancelling a
           * closed source is a programmer error.) */
          g_autoptr(GError) error = ctok_token_dup_error (entry->token);

          if (error != NULL)
            g_assert_true (ctok_token_is_cancelled (entry->token));
          ctok_token_get_deadline (entry->token);
          g_assert_cmpint (ctok_token_get_timeout_ms (entry->token), >=, -1);
        }
      else if (choice < 72)
        {
          /* Deadlines: short (may fire), long, or none. */
          if (choice < 65)
            {
              g_atomic_int_set (&entry->short_deadline, TRUE);
              ctok_token_source_cancel_after (entry->source, g_rand_int_range (rand, 0, 3));
            }
          else if (choice < 69)
            ctok_token_source_cancel_after (entry->source, 100000);
          else
            ctok_token_source_cancel_at (entry->source, G_MAXINT64);
        }
      else if (choice < 78)
        {
          GCancellable *cancellable = ctok_token_get_cancellable (entry->token);

          if (choice == 72)
            {
              /* Cancelling the token's own GCancellable cancels the token. */
              g_atomic_int_set (&entry->self_cancel, TRUE);
              g_cancellable_cancel (cancellable);
            }
          else
            g_assert_true (G_IS_CANCELLABLE (cancellable));
        }
      else
        {
          GCancellable *cancellable = ctok_token_new_cancellable (entry->token);

          /* Cancelling it affects nobody else. */
          if (choice < 80)
            g_cancellable_cancel (cancellable);
          g_object_unref (cancellable);
        }

      g_rw_lock_reader_unlock (&slot->lock);
      g_atomic_int_inc (&stress->total_ops);
    }

  for (guint i = 0; i < held->len; i++)
    held_unregister (&g_array_index (held, Held, i), TRUE);

  g_array_unref (held);
  g_rand_free (rand);
  return NULL;
}

/* --- The final checks --- */

/* A token dropped by the test may still live, held by a linked child that
 * is itself alive: the checks look at every token that exists. */

static gboolean
parents_alive (Entry *child)
{
  for (guint i = 0; i < child->n_parents; i++)
    if (child->parents[i]->alive == NULL)
      return FALSE;
  return TRUE;
}

static gboolean
parent_explains (Entry *child)
{
  guint cancelled = 0;

  for (guint i = 0; i < child->n_parents; i++)
    if (ctok_token_is_cancelled (child->parents[i]->alive))
      cancelled++;

  return child->all ? cancelled == child->n_parents && child->n_parents > 0 : cancelled > 0;
}

static void
check_invariants (Stress *stress)
{
  GHashTable *expected = g_hash_table_new (NULL, NULL);
  guint checked_links = 0;
  guint checked_counts = 0;

  for (guint i = 0; i < stress->entries->len; i++)
    {
      Entry *entry = g_ptr_array_index (stress->entries, i);

      entry->alive = g_weak_ref_get (&entry->weak);
    }

  /* Registrations: every one removed, run, or dropped by a close. */
  for (guint i = 0; i < stress->regs->len; i++)
    {
      Reg *reg = g_ptr_array_index (stress->regs, i);

      g_assert_cmpint (reg->destroys, ==, 1);
      g_assert_cmpint (reg->calls, <=, 1);
      g_assert_cmpint (reg->running, ==, 0);
      if (reg->removed)
        g_assert_cmpint (reg->calls, ==, 0);

      if (reg->entry->alive == NULL)
        continue;
      if (ctok_token_is_cancelled (reg->entry->alive))
        g_assert_cmpint (reg->calls + reg->removed, ==, 1);
      else
        g_assert_cmpint (reg->calls, ==, 0);
    }

  /* Links, in both directions. */
  for (guint i = 0; i < stress->entries->len; i++)
    {
      Entry *child = g_ptr_array_index (stress->entries, i);
      gboolean cancelled;

      if (child->alive == NULL || !parents_alive (child))
        continue;

      cancelled = ctok_token_is_cancelled (child->alive);

      /* Cancelled: by itself, a deadline or its parents. */
      if (cancelled)
        g_assert_true (child->self_cancel || child->short_deadline || parent_explains (child));

      /* Its parents say so and it was never closed: cancelled. */
      if (!child->closed && parent_explains (child))
        g_assert_true (cancelled);

      checked_links++;
    }

  /* Registration counts: one per link of each live, pending child. Such a
   * child holds its parents, so they are alive too. */
  for (guint i = 0; i < stress->entries->len; i++)
    {
      Entry *child = g_ptr_array_index (stress->entries, i);

      if (child->alive == NULL || child->closed || ctok_token_is_cancelled (child->alive))
        continue;
      g_assert_true (parents_alive (child));
      for (guint p = 0; p < child->n_parents; p++)
        {
          Entry *parent = child->parents[p];

          g_hash_table_insert (expected, parent,
                               GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (expected, parent)) + 1));
        }
    }

  for (guint i = 0; i < stress->entries->len; i++)
    {
      Entry *entry = g_ptr_array_index (stress->entries, i);
      guint want;

      if (entry->alive == NULL)
        continue;

      /* Cancelled or closed tokens have let go of everything; children that
       * are gone left nothing behind. */
      want = (entry->closed || ctok_token_is_cancelled (entry->alive))
        ? 0 : GPOINTER_TO_UINT (g_hash_table_lookup (expected, entry));
      g_assert_cmpuint (ctok_token_debug_count_registrations (entry->alive), ==, want);
      checked_counts++;
    }

  for (guint i = 0; i < stress->entries->len; i++)
    {
      Entry *entry = g_ptr_array_index (stress->entries, i);

      g_clear_object (&entry->alive);
    }

  g_test_message ("checked %u registrations, %u tokens' links, %u tokens' registration counts",
                  stress->regs->len, checked_links, checked_counts);
  g_hash_table_unref (expected);
}

static int watchdog_done;

static gpointer
watchdog_thread (gpointer data)
{
  gint64 deadline = g_get_monotonic_time () + GPOINTER_TO_INT (data) * G_TIME_SPAN_SECOND;

  while (!g_atomic_int_get (&watchdog_done))
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("watchdog: the stress test hung (deadlock?)");
      g_usleep (10 * G_TIME_SPAN_MILLISECOND);
    }

  return NULL;
}

static void
run_stress (int n_threads,
            int total_ops)
{
  GThread *threads[8];
  GThread *watchdog;
  Stress stress;

  g_assert_cmpint (n_threads, <=, (int) G_N_ELEMENTS (threads));

  stress.ops_per_thread = total_ops / n_threads;
  stress.total_ops = 0;
  stress.entries = g_ptr_array_new ();
  stress.regs = g_ptr_array_new_with_free_func (g_free);
  g_rw_lock_init (&stress.all_lock);
  for (int i = 0; i < N_SLOTS; i++)
    {
      g_rw_lock_init (&stress.slots[i].lock);
      stress.slots[i].entry = entry_new (&stress, ctok_token_source_new ());
    }

  g_atomic_int_set (&watchdog_done, FALSE);
  watchdog = g_thread_new ("watchdog", watchdog_thread, GINT_TO_POINTER (600));

  for (int i = 0; i < n_threads; i++)
    threads[i] = g_thread_new ("stress", stress_thread, &stress);
  for (int i = 0; i < n_threads; i++)
    g_thread_join (threads[i]);

  /* Quiescent: let short deadlines that may still be pending fire. */
  g_usleep (20 * G_TIME_SPAN_MILLISECOND);

  check_invariants (&stress);

  g_atomic_int_set (&watchdog_done, TRUE);
  g_thread_join (watchdog);

  g_test_message ("%d operations on %d threads", stress.total_ops, n_threads);
  g_assert_cmpint (stress.total_ops, ==, n_threads * stress.ops_per_thread);

  for (int i = 0; i < N_SLOTS; i++)
    {
      g_clear_object (&stress.slots[i].entry->source);
      g_rw_lock_clear (&stress.slots[i].lock);
    }
  for (guint i = 0; i < stress.entries->len; i++)
    {
      Entry *entry = g_ptr_array_index (stress.entries, i);

      g_clear_object (&entry->token);
      g_weak_ref_clear (&entry->weak);
      g_free (entry);
    }
  g_ptr_array_unref (stress.entries);
  g_ptr_array_unref (stress.regs);
  g_rw_lock_clear (&stress.all_lock);
}

static void
test_stress_2 (void)
{
  g_test_summary ("Random operations from 2 threads; invariants checked when they stop");
  run_stress (2, g_test_slow () ? 1000000 : 50000);
}

static void
test_stress_8 (void)
{
  g_test_summary ("Random operations from 8 threads; invariants checked when they stop");
  run_stress (8, g_test_slow () ? 1000000 : 50000);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/stress/2-threads", test_stress_2);
  g_test_add_func ("/stress/8-threads", test_stress_8);

  return g_test_run ();
}
