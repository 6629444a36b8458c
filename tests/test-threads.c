/* test-threads.c: registrations and cancellation across threads
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include <ctok/ctok.h>

#include "test-common.h"

/* A gate a thread can wait at until another opens it. */
typedef struct
{
  GMutex   mutex;
  GCond    cond;
  gboolean open;
} Gate;

static void
gate_init (Gate *gate)
{
  g_mutex_init (&gate->mutex);
  g_cond_init (&gate->cond);
  gate->open = FALSE;
}

static void
gate_clear (Gate *gate)
{
  g_mutex_clear (&gate->mutex);
  g_cond_clear (&gate->cond);
}

static void
gate_open (Gate *gate)
{
  g_mutex_lock (&gate->mutex);
  gate->open = TRUE;
  g_cond_broadcast (&gate->cond);
  g_mutex_unlock (&gate->mutex);
}

static void
gate_wait (Gate *gate)
{
  g_mutex_lock (&gate->mutex);
  while (!gate->open)
    g_cond_wait (&gate->cond, &gate->mutex);
  g_mutex_unlock (&gate->mutex);
}

typedef struct
{
  Gate started;    /* opened by the callback when it starts */
  Gate release;    /* the callback waits for it before returning */
  int  finished;   /* atomic */
  int  calls;      /* atomic */
  gint64 sleep_us; /* sleeps that long instead of waiting for @release */
} Blocker;

static void
blocker_callback (CtokToken *token,
                  gpointer   user_data)
{
  Blocker *blocker = user_data;

  g_atomic_int_inc (&blocker->calls);
  gate_open (&blocker->started);
  if (blocker->sleep_us > 0)
    g_usleep (blocker->sleep_us);
  else
    gate_wait (&blocker->release);
  g_atomic_int_set (&blocker->finished, TRUE);
}

static gpointer
cancel_thread (gpointer data)
{
  ctok_token_source_cancel (data);
  return NULL;
}

static void
test_unregister_waits (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  Blocker blocker = { 0, };
  GThread *thread;
  guint64 id;

  g_test_summary ("unregister() of a callback running on another thread waits for it to return");

  gate_init (&blocker.started);
  gate_init (&blocker.release);
  blocker.sleep_us = 50 * G_TIME_SPAN_MILLISECOND;

  id = ctok_token_register (token, blocker_callback, &blocker, NULL);
  thread = g_thread_new ("canceller", cancel_thread, source);

  gate_wait (&blocker.started);
  g_assert_false (ctok_token_unregister (token, id));
  /* It returned only once the callback had. */
  g_assert_true (g_atomic_int_get (&blocker.finished));

  g_thread_join (thread);
  g_assert_cmpint (blocker.calls, ==, 1);
  gate_clear (&blocker.started);
  gate_clear (&blocker.release);
}

/* A token dropped while another thread's cancel loop is running its
 * callbacks: its dispose waits for that loop to be done with it, and the
 * loop's last step, which takes no lock, must wake it. */
static void
test_dispose_waits_for_notify (void)
{
  g_autoptr(CtokTokenSource) parent = ctok_token_source_new ();
  CtokToken *parents[] = { ctok_token_source_get_token (parent) };
  CtokTokenSource *child = ctok_token_source_new_linked (parents, 1);
  CtokToken *token = ctok_token_source_get_token (child);
  Blocker blocker = { 0, };
  GThread *thread;

  g_test_summary ("A token dropped while another thread notifies it is finalized once that "
                  "thread is done with it, and the drop returns then");

  gate_init (&blocker.started);
  gate_init (&blocker.release);
  blocker.sleep_us = 50 * G_TIME_SPAN_MILLISECOND;

  ctok_token_register (token, blocker_callback, &blocker, NULL);
  g_object_add_weak_pointer (G_OBJECT (token), (gpointer *) &token);
  thread = g_thread_new ("canceller", cancel_thread, parent);

  /* The parent's loop, on the other thread, is running the child's
   * callback: only the child's source holds the child. */
  gate_wait (&blocker.started);
  g_object_unref (child);
  g_assert_true (g_atomic_int_get (&blocker.finished));
  g_assert_null (token);

  g_thread_join (thread);
  g_assert_cmpint (blocker.calls, ==, 1);
  gate_clear (&blocker.started);
  gate_clear (&blocker.release);
}

/* unregister() waiting for a running callback returns as soon as that
 * callback does, not when the whole cancellation is over: the next
 * callback, on the cancelling thread, waits to see it return. */
typedef struct
{
  Blocker blocker;
  int     unregister_returned;  /* atomic */
  int     seen_by_next;
} NextWaits;

static void
next_waits_callback (CtokToken *token,
                     gpointer   user_data)
{
  NextWaits *data = user_data;

  for (int i = 0; i < 5000 && !g_atomic_int_get (&data->unregister_returned); i++)
    g_usleep (G_TIME_SPAN_MILLISECOND);
  data->seen_by_next = g_atomic_int_get (&data->unregister_returned);
}

static void
test_unregister_returns_before_next (void)
{
  g_test_summary ("unregister() of a running callback returns when it does, "
                  "before the callbacks after it");

  for (int round = 0; round < 10; round++)
    {
      g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
      CtokToken *token = ctok_token_source_get_token (source);
      NextWaits data = { { { { 0 } } }, 0, 0 };
      GThread *thread;
      guint64 id;

      gate_init (&data.blocker.started);
      gate_init (&data.blocker.release);
      data.blocker.sleep_us = 5 * G_TIME_SPAN_MILLISECOND;

      /* Newest first: the blocker runs, then next_waits_callback(). */
      ctok_token_register (token, next_waits_callback, &data, NULL);
      id = ctok_token_register (token, blocker_callback, &data.blocker, NULL);
      thread = g_thread_new ("canceller", cancel_thread, source);

      gate_wait (&data.blocker.started);
      g_assert_false (ctok_token_unregister (token, id));
      g_atomic_int_set (&data.unregister_returned, TRUE);
      g_assert_true (g_atomic_int_get (&data.blocker.finished));

      g_thread_join (thread);
      g_assert_true (data.seen_by_next);
      gate_clear (&data.blocker.started);
      gate_clear (&data.blocker.release);
    }
}

static void
test_unregister_nowait_running (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  Blocker blocker = { 0, };
  GThread *thread;
  guint64 id;

  g_test_summary ("unregister_nowait() of a running callback returns at once");

  gate_init (&blocker.started);
  gate_init (&blocker.release);

  id = ctok_token_register (token, blocker_callback, &blocker, NULL);
  thread = g_thread_new ("canceller", cancel_thread, source);

  gate_wait (&blocker.started);
  /* The callback cannot return before we open the gate: no wait here. */
  g_assert_false (ctok_token_unregister_nowait (token, id));
  g_assert_false (g_atomic_int_get (&blocker.finished));
  gate_open (&blocker.release);

  g_thread_join (thread);
  g_assert_true (g_atomic_int_get (&blocker.finished));
  gate_clear (&blocker.started);
  gate_clear (&blocker.release);
}

#define N_PENDING 100

static void
test_unregister_pending_during_cancel (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  Blocker blocker = { 0, };
  CallbackRecord pending[N_PENDING] = { { 0, }, };
  guint64 pending_ids[N_PENDING];
  GThread *thread;

  g_test_summary ("Callbacks not yet started are removed by unregister() during a "
                  "cancellation on another thread, the first and every one after it");

  gate_init (&blocker.started);
  gate_init (&blocker.release);

  /* LIFO: the blocker runs first, the others wait behind it. */
  for (guint i = 0; i < N_PENDING; i++)
    pending_ids[i] = ctok_token_register (token, record_callback, &pending[i], record_destroy);
  ctok_token_register (token, blocker_callback, &blocker, NULL);

  thread = g_thread_new ("canceller", cancel_thread, source);
  gate_wait (&blocker.started);

  /* The first switches the cancel loop to atomic claims; the others find
   * it switched. */
  g_assert_true (ctok_token_is_cancelled (token));
  for (guint i = 0; i < N_PENDING; i++)
    {
      g_assert_true (ctok_token_unregister (token, pending_ids[i]));
      g_assert_cmpint (pending[i].destroys, ==, 1);
      g_assert_false (ctok_token_unregister (token, pending_ids[i]));
    }

  gate_open (&blocker.release);
  g_thread_join (thread);

  for (guint i = 0; i < N_PENDING; i++)
    {
      g_assert_cmpint (pending[i].calls, ==, 0);
      g_assert_cmpint (pending[i].destroys, ==, 1);
    }
  gate_clear (&blocker.started);
  gate_clear (&blocker.release);
}

/* Many callbacks, cancelled on one thread while another unregisters them
 * all: every one either ran (and unregister() returned FALSE, after it
 * returned) or never will (TRUE), and its destroy notify ran once. */
#define N_RACING 20000

typedef struct
{
  CtokToken      *token;
  guint64        *ids;
  gboolean       *removed;
  CallbackRecord *records;
  Gate            go;
} UnregisterRace;

static gpointer
unregister_all_thread (gpointer data)
{
  UnregisterRace *race = data;

  gate_wait (&race->go);
  /* Oldest first: the canceller starts with the newest, so they meet. */
  for (guint i = 0; i < N_RACING; i++)
    {
      race->removed[i] = ctok_token_unregister (race->token, race->ids[i]);
      g_assert_cmpint (g_atomic_int_get (&race->records[i].calls), ==, race->removed[i] ? 0 : 1);
    }

  return NULL;
}

static void
test_race_unregister_cancel (void)
{
  UnregisterRace race = { NULL, };
  guint n_removed = 0;

  g_test_summary ("unregister() racing a cancellation: each callback runs once or never, "
                  "and unregister() says which");

  race.ids = g_new (guint64, N_RACING);
  race.removed = g_new0 (gboolean, N_RACING);
  race.records = g_new0 (CallbackRecord, N_RACING);

  for (int round = 0; round < 5; round++)
    {
      CtokTokenSource *source = ctok_token_source_new ();
      GThread *thread;

      memset (race.records, 0, N_RACING * sizeof (CallbackRecord));
      race.token = ctok_token_source_get_token (source);
      gate_init (&race.go);
      for (guint i = 0; i < N_RACING; i++)
        race.ids[i] = ctok_token_register (race.token, record_callback, &race.records[i], record_destroy);

      thread = g_thread_new ("unregister", unregister_all_thread, &race);
      gate_open (&race.go);
      ctok_token_source_cancel (source);
      g_thread_join (thread);

      for (guint i = 0; i < N_RACING; i++)
        {
          g_assert_cmpint (race.records[i].calls, ==, race.removed[i] ? 0 : 1);
          g_assert_cmpint (race.records[i].destroys, ==, 1);
          n_removed += race.removed[i];
        }
      g_assert_cmpuint (ctok_token_debug_count_registrations (race.token), ==, 0);
      g_object_unref (source);
      gate_clear (&race.go);
    }

  g_test_message ("%u of %u removed before they ran", n_removed, 5 * N_RACING);
  g_free (race.records);
  g_free (race.removed);
  g_free (race.ids);
}

/* Cascade: A's callback cancels B; B's callback unregisters A's callback,
 * which is running on this very thread. GCancellable deadlocks here (GLib
 * 2.74, g_cancellable_disconnect() in a nested handler); ctok must not. */
typedef struct
{
  CtokToken       *a;
  CtokTokenSource *b;
  guint64          a_id;
  gboolean         result;
  int              b_calls;
} Cascade;

static void
cascade_a (CtokToken *token,
           gpointer   user_data)
{
  Cascade *cascade = user_data;

  ctok_token_source_cancel (cascade->b);
}

static void
cascade_b (CtokToken *token,
           gpointer   user_data)
{
  Cascade *cascade = user_data;

  cascade->b_calls++;
  cascade->result = ctok_token_unregister (cascade->a, cascade->a_id);
}

static void
test_cascade_no_deadlock (void)
{
  g_autoptr(CtokTokenSource) a = ctok_token_source_new ();
  g_autoptr(CtokTokenSource) b = ctok_token_source_new ();
  Cascade cascade = { ctok_token_source_get_token (a), b, 0, TRUE, 0 };

  cascade.a_id = ctok_token_register (cascade.a, cascade_a, &cascade, NULL);
  ctok_token_register (ctok_token_source_get_token (b), cascade_b, &cascade, NULL);

  ctok_token_source_cancel (a);

  g_assert_cmpint (cascade.b_calls, ==, 1);
  g_assert_false (cascade.result);
}

/* Destroy notifies that cancel or unregister on other tokens: deadlocks with
 * g_cancellable_disconnect() on GLib 2.74 (it runs them under a global lock). */
typedef struct
{
  CtokTokenSource *other;
  CtokToken       *third;
  guint64          third_id;
  gboolean         removed;
} DestroyWork;

static void
destroy_does_work (gpointer user_data)
{
  DestroyWork *work = user_data;

  ctok_token_source_cancel (work->other);
  work->removed = ctok_token_unregister (work->third, work->third_id);
}

static void
noop_callback (CtokToken *token,
               gpointer   user_data)
{
}

static void
test_destroy_notify_reentry (void)
{
  g_autoptr(CtokTokenSource) a = ctok_token_source_new ();
  g_autoptr(CtokTokenSource) b = ctok_token_source_new ();
  g_autoptr(CtokTokenSource) c = ctok_token_source_new ();
  CallbackRecord on_b = { 0, };
  CallbackRecord on_c = { 0, };
  DestroyWork work = { b, ctok_token_source_get_token (c), 0, FALSE };
  guint64 id;

  ctok_token_register (ctok_token_source_get_token (b), record_callback, &on_b, record_destroy);
  work.third_id = ctok_token_register (work.third, record_callback, &on_c, record_destroy);

  id = ctok_token_register (ctok_token_source_get_token (a), noop_callback, &work, destroy_does_work);
  g_assert_true (ctok_token_unregister (ctok_token_source_get_token (a), id));

  g_assert_true (ctok_token_source_is_cancelled (b));
  g_assert_cmpint (on_b.calls, ==, 1);
  g_assert_true (work.removed);
  g_assert_cmpint (on_c.destroys, ==, 1);
  g_assert_cmpint (on_c.calls, ==, 0);
}

/* --- Races --- */

typedef struct
{
  CtokTokenSource *source;
  CallbackRecord   record;
  int              ready;   /* atomic barrier */
} RaceData;

static gpointer
race_register (gpointer data)
{
  RaceData *race = data;

  g_atomic_int_inc (&race->ready);
  while (g_atomic_int_get (&race->ready) < 2)
    ;
  ctok_token_register (ctok_token_source_get_token (race->source),
                       record_callback, &race->record, record_destroy);
  return NULL;
}

static gpointer
race_cancel (gpointer data)
{
  RaceData *race = data;

  g_atomic_int_inc (&race->ready);
  while (g_atomic_int_get (&race->ready) < 2)
    ;
  ctok_token_source_cancel (race->source);
  return NULL;
}

static void
test_race_register_cancel (void)
{
  int rounds = g_test_slow () ? 20000 : 2000;

  g_test_summary ("A registration racing a cancellation runs exactly once, never lost");

  for (int i = 0; i < rounds; i++)
    {
      RaceData race = { ctok_token_source_new (), { 0, }, 0 };
      GThread *a = g_thread_new ("register", race_register, &race);
      GThread *b = g_thread_new ("cancel", race_cancel, &race);

      g_thread_join (a);
      g_thread_join (b);

      g_assert_cmpint (race.record.calls, ==, 1);
      g_assert_cmpint (race.record.destroys, ==, 1);
      g_assert_finalize_object (race.source);
    }
}

/* --- Stress: many threads, shared sources, random operations --- */

#define N_SLOTS 8

typedef struct
{
  int calls;      /* atomic */
  int destroys;   /* atomic */
  int running;    /* atomic: inside the callback */
} StressRecord;

static void
stress_callback (CtokToken *token,
                 gpointer   user_data)
{
  StressRecord *record = user_data;

  g_atomic_int_set (&record->running, 1);
  g_assert_cmpint (g_atomic_int_add (&record->calls, 1), ==, 0);
  g_thread_yield ();
  g_atomic_int_set (&record->running, 0);
}

static void
stress_destroy (gpointer user_data)
{
  StressRecord *record = user_data;

  g_assert_cmpint (g_atomic_int_add (&record->destroys, 1), ==, 0);
}

/* Threads use a slot's source under the read lock; replacing it takes the
 * write lock, so a source is closed only once no thread can still cancel it.
 * Its token, though, may still be in use anywhere. */
typedef struct
{
  GRWLock          lock;
  CtokTokenSource *source;
} Slot;

typedef struct
{
  Slot       slots[N_SLOTS];
  int        ops_per_thread;
  int        total_ops;    /* atomic */
  GPtrArray *records;      /* of StressRecord, under records_mutex */
  GRWLock    records_mutex;
} Stress;

static CtokTokenSource *
slot_swap (Slot *slot)
{
  CtokTokenSource *old;

  g_rw_lock_writer_lock (&slot->lock);
  old = slot->source;
  slot->source = ctok_token_source_new ();
  g_rw_lock_writer_unlock (&slot->lock);

  return old;
}

typedef struct
{
  CtokToken    *token;
  guint64       id;
  StressRecord *record;
} Held;

static void
held_unregister (Held     *held,
                 gboolean  wait)
{
  gboolean removed = wait ? ctok_token_unregister (held->token, held->id)
                          : ctok_token_unregister_nowait (held->token, held->id);

  if (removed)
    g_assert_cmpint (g_atomic_int_get (&held->record->calls), ==, 0);
  else if (wait)
    /* Whatever happened, the callback is not running any more. */
    g_assert_cmpint (g_atomic_int_get (&held->record->running), ==, 0);

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
      CtokTokenSource *source;
      CtokToken *token;

      if (choice >= 80 && choice < 95)
        {
          /* Replace the slot's source; the old one's last reference may go
           * on any thread, closed, cancelled or neither. */
          CtokTokenSource *old = slot_swap (slot);
          int fate = g_rand_int_range (rand, 0, 3);

          if (fate == 0)
            ctok_token_source_close (old);
          else if (fate == 1)
            ctok_token_source_cancel (old);
          g_object_unref (old);
          g_atomic_int_inc (&stress->total_ops);
          continue;
        }

      g_rw_lock_reader_lock (&slot->lock);
      source = slot->source;
      token = ctok_token_source_get_token (source);

      if (choice < 40)
        {
          StressRecord *record = g_new0 (StressRecord, 1);
          Held h;

          g_rw_lock_writer_lock (&stress->records_mutex);
          g_ptr_array_add (stress->records, record);
          g_rw_lock_writer_unlock (&stress->records_mutex);

          h.token = g_object_ref (token);
          h.record = record;
          h.id = ctok_token_register (token, stress_callback, record, stress_destroy);
          if (h.id == 0)
            g_object_unref (h.token);
          else
            g_array_append_val (held, h);
        }
      else if (choice < 65)
        {
          if (held->len > 0)
            {
              guint index = g_rand_int_range (rand, 0, held->len);
              Held h = g_array_index (held, Held, index);

              g_array_remove_index_fast (held, index);
              held_unregister (&h, choice < 55);
            }
        }
      else if (choice < 75)
        ctok_token_source_cancel (source);
      else if (choice < 80)
        {
          g_autoptr(GError) reason = g_error_new_literal (TEST_ERROR, 3, "stress");

          ctok_token_source_cancel_with_error (source, reason);
        }
      else
        {
          GCancellable *cancellable = ctok_token_new_cancellable (token);

          g_assert_true (ctok_token_get_cancellable (token) != NULL);
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
test_stress (void)
{
  int n_threads = 4;
  GThread *threads[8];
  GThread *watchdog;
  Stress stress;

  g_test_summary ("Threads register, unregister, cancel, close and drop shared sources at random");

  stress.ops_per_thread = g_test_slow () ? 250000 : 25000;
  stress.total_ops = 0;
  stress.records = g_ptr_array_new_with_free_func (g_free);
  g_rw_lock_init (&stress.records_mutex);
  for (int i = 0; i < N_SLOTS; i++)
    {
      g_rw_lock_init (&stress.slots[i].lock);
      stress.slots[i].source = ctok_token_source_new ();
    }

  g_atomic_int_set (&watchdog_done, FALSE);
  watchdog = g_thread_new ("watchdog", watchdog_thread, GINT_TO_POINTER (120));

  for (int i = 0; i < n_threads; i++)
    threads[i] = g_thread_new ("stress", stress_thread, &stress);
  for (int i = 0; i < n_threads; i++)
    g_thread_join (threads[i]);

  for (int i = 0; i < N_SLOTS; i++)
    {
      g_object_unref (stress.slots[i].source);
      g_rw_lock_clear (&stress.slots[i].lock);
    }

  g_atomic_int_set (&watchdog_done, TRUE);
  g_thread_join (watchdog);

  /* Every registration has been unregistered, run or dropped: each ran at
   * most once and was destroyed exactly once. */
  for (guint i = 0; i < stress.records->len; i++)
    {
      StressRecord *record = g_ptr_array_index (stress.records, i);

      g_assert_cmpint (record->calls, <=, 1);
      g_assert_cmpint (record->destroys, ==, 1);
      g_assert_cmpint (record->running, ==, 0);
    }

  g_test_message ("%d operations on %d threads, %u registrations",
                  stress.total_ops, n_threads, stress.records->len);
  g_assert_cmpint (stress.total_ops, ==, n_threads * stress.ops_per_thread);

  g_ptr_array_unref (stress.records);
  g_rw_lock_clear (&stress.records_mutex);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/token/unregister/waits-for-running", test_unregister_waits);
  g_test_add_func ("/token/unregister/returns-before-next", test_unregister_returns_before_next);
  g_test_add_func ("/token/unregister/nowait-running", test_unregister_nowait_running);
  g_test_add_func ("/token/unregister/pending-during-cancel", test_unregister_pending_during_cancel);
  g_test_add_func ("/token/dispose/waits-for-notify", test_dispose_waits_for_notify);
  g_test_add_func ("/token/unregister/cascade-no-deadlock", test_cascade_no_deadlock);
  g_test_add_func ("/token/unregister/destroy-notify-reentry", test_destroy_notify_reentry);
  g_test_add_func ("/token/race/register-cancel", test_race_register_cancel);
  g_test_add_func ("/token/race/unregister-cancel", test_race_unregister_cancel);
  g_test_add_func ("/token/stress/mixed", test_stress);

  return g_test_run ();
}
