/* test-lock.c: CtokLock, the lock of every token and of the node pool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Built from ctok/ctok-lock.c itself: the lock is internal. Each case runs
 * with the release ctok chose when it was loaded (a plain store where
 * membarrier() works) and, on Linux, again with the atomic-exchange
 * release used where it does not. A lost wake-up hangs a case, which the
 * test's timeout reports.
 */

#include "config.h"

#include <glib.h>

#include "ctok-lock-private.h"

#ifdef CTOK_LOCK_FUTEX
# include <linux/membarrier.h>
# include <sys/syscall.h>
# include <unistd.h>
#endif

#define N_THREADS 4

typedef struct
{
  CtokLock lock;
  guint64  counter;    /* under the lock, never atomically */
  guint64  shadow;     /* the same, to catch a torn critical section */
  guint    iterations;
  guint    hold_us;    /* how long each critical section lasts */
  gint     in_section; /* threads inside the lock: at most 1 */
  gint     violations;
} Shared;

static gpointer
hammer (gpointer data)
{
  Shared *shared = data;

  for (guint i = 0; i < shared->iterations; i++)
    {
      ctok_lock_acquire (&shared->lock);
      if (g_atomic_int_add (&shared->in_section, 1) != 0)
        g_atomic_int_inc (&shared->violations);
      shared->counter++;
      if (shared->hold_us > 0)
        g_usleep (shared->hold_us);
      shared->shadow = shared->counter;
      g_atomic_int_add (&shared->in_section, -1);
      ctok_lock_release (&shared->lock);
    }

  return NULL;
}

static void
run_hammer (guint iterations,
            guint hold_us)
{
  Shared shared = { .iterations = iterations, .hold_us = hold_us };
  GThread *threads[N_THREADS];

  ctok_lock_init (&shared.lock);
  for (guint i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("hammer", hammer, &shared);
  for (guint i = 0; i < N_THREADS; i++)
    g_thread_join (threads[i]);

  g_assert_cmpint (shared.violations, ==, 0);
  g_assert_cmpuint (shared.counter, ==, (guint64) N_THREADS * iterations);
  g_assert_cmpuint (shared.shadow, ==, shared.counter);
#ifdef CTOK_LOCK_FUTEX
  g_assert_cmpint (shared.lock.state, ==, 0);
  for (guint i = 0; i < CTOK_LOCK_N_SLOTS; i++)
    g_assert_cmpint (ctok_lock_sleepers[i], ==, 0);
#endif
  ctok_lock_clear (&shared.lock);
}

/* Short sections, many of them: mostly the spinning path. */
static void
test_lock_exclusion (void)
{
  run_hammer (g_test_slow () ? 2000000 : 200000, 0);
}

/* Sections long enough that waiters go to sleep on the futex, each wake-up
 * needed: a lost one leaves a thread asleep for ever. */
static void
test_lock_sleepers (void)
{
  run_hammer (g_test_slow () ? 2000 : 300, 50);
}

/* The lock is in memory that the thread taking it next frees at once, as
 * with a token whose last reference goes with the thread that took its lock
 * last. The release must not touch that memory after its store (memcheck
 * and AddressSanitizer would see it). */
typedef struct
{
  CtokLock lock;
  gint     ready;
} Doomed;

static gpointer
free_after_acquire (gpointer data)
{
  Doomed *doomed = data;

  g_atomic_int_set (&doomed->ready, 1);
  ctok_lock_acquire (&doomed->lock);
  ctok_lock_release (&doomed->lock);
  ctok_lock_clear (&doomed->lock);
  g_free (doomed);

  return NULL;
}

static void
test_lock_freed_by_next_holder (void)
{
  for (guint i = 0; i < 200; i++)
    {
      Doomed *doomed = g_new0 (Doomed, 1);
      GThread *thread;

      ctok_lock_init (&doomed->lock);
      ctok_lock_acquire (&doomed->lock);
      thread = g_thread_new ("free", free_after_acquire, doomed);
      while (!g_atomic_int_get (&doomed->ready))
        g_thread_yield ();
      /* Sometimes the other thread is asleep on the lock by now. */
      if (i % 2 == 0)
        g_usleep (200);
      ctok_lock_release (&doomed->lock);
      g_thread_join (thread);
    }
}

#ifdef CTOK_LOCK_FUTEX
/* The same cases with the release used where membarrier() is missing. No
 * other thread is running when it is switched. */
static void
with_exchange_release (GTestFunc test)
{
  gboolean chosen = ctok_membarrier_ok;

  ctok_membarrier_ok = FALSE;
  test ();
  ctok_membarrier_ok = chosen;
}

static void
test_lock_exchange_exclusion (void)
{
  with_exchange_release (test_lock_exclusion);
}

static void
test_lock_exchange_sleepers (void)
{
  with_exchange_release (test_lock_sleepers);
}

static void
test_lock_exchange_freed_by_next_holder (void)
{
  with_exchange_release (test_lock_freed_by_next_holder);
}

/* The choice made at load time matches what this kernel offers: the
 * plain-store release wherever membarrier() works (Linux 4.14 and later,
 * outside sandboxes that filter it), so that no machine silently runs the
 * slower release, and never where it does not. */
static void
test_lock_release_chosen (void)
{
  long supported = syscall (SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  gboolean works = supported > 0 &&
                   (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
                   syscall (SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;

  g_test_message ("release chosen at load: %s",
                  ctok_membarrier_ok ? "plain store (membarrier() works)" : "atomic exchange");
  g_assert_cmpint (ctok_membarrier_ok, ==, works);
}
#endif

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/lock/exclusion", test_lock_exclusion);
  g_test_add_func ("/lock/sleepers", test_lock_sleepers);
  g_test_add_func ("/lock/freed-by-next-holder", test_lock_freed_by_next_holder);
#ifdef CTOK_LOCK_FUTEX
  g_test_add_func ("/lock/release-chosen", test_lock_release_chosen);
  g_test_add_func ("/lock/exchange-release/exclusion", test_lock_exchange_exclusion);
  g_test_add_func ("/lock/exchange-release/sleepers", test_lock_exchange_sleepers);
  g_test_add_func ("/lock/exchange-release/freed-by-next-holder", test_lock_exchange_freed_by_next_holder);
#endif

  return g_test_run ();
}
