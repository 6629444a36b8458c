/* ctok-lock.c: the contended half of CtokLock
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "ctok-lock-private.h"

#ifdef CTOK_LOCK_FUTEX

#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

/* How CtokLock works, and why it is correct.
 *
 * A lock is one int: 0 when free, 1 when held. Taking it is one
 * compare-and-swap; giving it back is a plain store of 0, then a look at
 * whether anyone sleeps on it. A thread that finds the lock held spins a
 * little (a token's lock is held for a few pointer updates), then sleeps on
 * the lock's futex, after adding itself to the sleepers count of the lock's
 * slot in ctok_lock_sleepers[].
 *
 * The danger is a lost wake-up: the releasing thread reads the sleepers
 * count before its store of 0 is visible to others (a store may wait in the
 * store buffer while a later load completes), sees no sleeper, and the
 * sleeper, which counted itself in the meantime, still sees 1 and sleeps for
 * ever. A full fence between the store and the load would prevent that, but
 * would cost as much as the atomic exchange it is meant to save.
 *
 * The fence is moved to the sleeper instead: after counting itself, it calls
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which makes every thread of
 * the process that is running pass through a full memory barrier (threads
 * that are not running passed through one when they were switched out).
 * This is the pattern the Linux documentation of membarrier() gives: one
 * side pays for a system call, rarely, so that the other, frequent side
 * needs only a compiler barrier. Between a release (store of 0; load of
 * the count) and a sleeper (count itself; membarrier; look at the lock),
 * either the release sees the sleeper counted, and wakes the futex, or the
 * sleeper sees the store of 0, and does not sleep. The futex itself closes
 * the remaining window: FUTEX_WAIT sleeps only if the lock still reads 1,
 * atomically with respect to FUTEX_WAKE.
 *
 * The counts live in a static array, not in the lock: once a release has
 * stored 0, another thread may take the lock and free the memory it lives
 * in (the last reference to a token dropped by the thread that took its
 * lock last), so the release must not read the lock's memory again. It
 * reads static memory, and the FUTEX_WAKE it may then make on the lock's
 * address only ever causes a spurious wake-up, which sleepers allow for
 * (GLib's GMutex makes the same call after its release). Locks that share
 * a slot only cost each other a spurious FUTEX_WAKE while one sleeps.
 *
 * Where membarrier() is unavailable (a kernel before 4.14, or a sandbox
 * that filters it), ctok_lock_release() uses an atomic exchange instead of
 * the plain store: a full fence on that side, like GMutex. The choice is
 * made once, when the library is loaded, before any lock can be taken. */

int ctok_lock_sleepers[CTOK_LOCK_N_SLOTS];
gboolean ctok_membarrier_ok;

/* Spin this many times before sleeping: a few microseconds. */
#define SPINS 128

static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#elif defined(__aarch64__)
  __asm__ __volatile__ ("yield" ::: "memory");
#else
  __asm__ __volatile__ ("" ::: "memory");
#endif
}

static long
membarrier (int cmd)
{
  return syscall (SYS_membarrier, cmd, 0, 0);
}

__attribute__((constructor)) static void
ctok_lock_choose_release (void)
{
  long supported = membarrier (MEMBARRIER_CMD_QUERY);

  if (supported > 0 &&
      (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
      membarrier (MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
      membarrier (MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
    ctok_membarrier_ok = TRUE;
}

static inline gboolean
try_acquire (CtokLock *lock)
{
  int expected = 0;

  return g_atomic_int_get (&lock->state) == 0 &&
         __atomic_compare_exchange_n (&lock->state, &expected, 1, FALSE,
                                      __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

void
ctok_lock_acquire_contended (CtokLock *lock)
{
  int *sleepers = &ctok_lock_sleepers[CTOK_LOCK_SLOT (lock)];

  for (;;)
    {
      gboolean acquired;
      guint i;

      for (i = 0; i < SPINS; i++)
        {
          if (try_acquire (lock))
            return;
          cpu_relax ();
        }

      __atomic_fetch_add (sleepers, 1, __ATOMIC_SEQ_CST);
      if (ctok_membarrier_works ())
        ctok_membarrier ();

      acquired = try_acquire (lock);
      if (!acquired)
        syscall (SYS_futex, &lock->state, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);

      __atomic_fetch_sub (sleepers, 1, __ATOMIC_SEQ_CST);

      if (acquired)
        return;
    }
}

/* Only when ctok_membarrier_works(). The expedited command cannot fail once
 * registered, short of memory for a CPU mask in the kernel; the global one
 * needs no registration or allocation, and takes milliseconds. */
void
ctok_membarrier (void)
{
  if (membarrier (MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0 ||
      membarrier (MEMBARRIER_CMD_GLOBAL) == 0)
    return;

  g_error ("ctok: membarrier() stopped working: %s", g_strerror (errno));
}

void
ctok_lock_wake (CtokLock *lock)
{
  syscall (SYS_futex, &lock->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

#endif /* CTOK_LOCK_FUTEX */
