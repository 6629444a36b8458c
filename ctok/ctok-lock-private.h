/* ctok-lock-private.h: the locks ctok uses
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

/* ctok's mutexes and condition variables are GLib's. ThreadSanitizer cannot
 * see those (GLib is not instrumented, and on Linux they are futexes and
 * atomics inside libglib), so it would report every access ctok protects
 * with them as a race. A ThreadSanitizer build uses pthread primitives
 * instead, which it intercepts; nothing else changes. */

#if defined(__SANITIZE_THREAD__)
# define CTOK_TSAN 1
#elif defined(__has_feature)
# if __has_feature(thread_sanitizer)
#  define CTOK_TSAN 1
# endif
#endif

/* Hand-offs through GLib (a GSource made ready on one thread and dispatched
 * on another) synchronize inside libglib, which ThreadSanitizer cannot
 * see: a release before handing data over and an acquire where it arrives
 * tell it about that edge. They do nothing in other builds. */
#ifdef CTOK_TSAN
void __tsan_acquire (void *addr);
void __tsan_release (void *addr);
# define ctok_tsan_release(addr) __tsan_release ((void *) (addr))
# define ctok_tsan_acquire(addr) __tsan_acquire ((void *) (addr))
#else
# define ctok_tsan_release(addr) G_STMT_START { (void) (addr); } G_STMT_END
# define ctok_tsan_acquire(addr) G_STMT_START { (void) (addr); } G_STMT_END
#endif

#ifndef CTOK_TSAN

typedef GMutex CtokMutex;
typedef GCond CtokCond;

# define ctok_mutex_init      g_mutex_init
# define ctok_mutex_clear     g_mutex_clear
# define ctok_mutex_lock      g_mutex_lock
# define ctok_mutex_unlock    g_mutex_unlock
# define ctok_cond_wait       g_cond_wait
# define ctok_cond_wait_until g_cond_wait_until
# define ctok_cond_signal     g_cond_signal
# define ctok_cond_broadcast  g_cond_broadcast

#else /* CTOK_TSAN */

# include <errno.h>
# include <pthread.h>
# include <time.h>

/* Zero-filled statics are valid, as with GLib's: on glibc both
 * initializers are all zeros. */
typedef pthread_mutex_t CtokMutex;
typedef pthread_cond_t CtokCond;

static inline void ctok_mutex_init (CtokMutex *m) { pthread_mutex_init (m, NULL); }
static inline void ctok_mutex_clear (CtokMutex *m) { pthread_mutex_destroy (m); }
static inline void ctok_mutex_lock (CtokMutex *m) { pthread_mutex_lock (m); }
static inline void ctok_mutex_unlock (CtokMutex *m) { pthread_mutex_unlock (m); }
static inline void ctok_cond_wait (CtokCond *c, CtokMutex *m) { pthread_cond_wait (c, m); }
static inline void ctok_cond_signal (CtokCond *c) { pthread_cond_signal (c); }
static inline void ctok_cond_broadcast (CtokCond *c) { pthread_cond_broadcast (c); }

/* Waits until @end_time on the g_get_monotonic_time() clock, through the
 * real-time clock that statically initialized conditions use. */
static inline gboolean
ctok_cond_wait_until (CtokCond  *c,
                      CtokMutex *m,
                      gint64     end_time)
{
  gint64 remaining = end_time - g_get_monotonic_time ();
  struct timespec ts;

  if (remaining <= 0)
    return FALSE;
  clock_gettime (CLOCK_REALTIME, &ts);
  remaining += (gint64) ts.tv_nsec / 1000;
  ts.tv_sec += remaining / G_USEC_PER_SEC;
  ts.tv_nsec = (remaining % G_USEC_PER_SEC) * 1000;

  return pthread_cond_timedwait (c, m, &ts) != ETIMEDOUT;
}

#endif /* CTOK_TSAN */

/* CtokLock: the lock of each token and of the node pool, the locks on every
 * hot path. It has no condition variable and is not recursive. On Linux it
 * is a futex whose release is a plain store, one atomic operation less than
 * GMutex, so a lock and an unlock cost one atomic operation instead of two
 * (see ctok-lock.c for how it avoids lost wake-ups). It never needs
 * clearing, and zero-filled memory is an unlocked lock. Elsewhere, and
 * under ThreadSanitizer, it is a CtokMutex. */
#if defined(__linux__) && !defined(CTOK_TSAN)

# define CTOK_LOCK_FUTEX 1

typedef struct
{
  int state;  /* 0: free; 1: held */
} CtokLock;

/* Sleepers, counted per slot of lock addresses (see ctok-lock.c). */
# define CTOK_LOCK_N_SLOTS 64
# define CTOK_LOCK_SLOT(lock) ((GPOINTER_TO_SIZE (lock) >> 4) % CTOK_LOCK_N_SLOTS)

extern int ctok_lock_sleepers[CTOK_LOCK_N_SLOTS];

/* Whether membarrier(2) works in this process, decided once when the
 * library is loaded. */
extern gboolean ctok_membarrier_ok;

void ctok_lock_acquire_contended (CtokLock *lock);
void ctok_lock_wake              (CtokLock *lock);
void ctok_membarrier             (void);

/* Asymmetric fences. Two threads that each store, then load what the other
 * stored (Dekker's pattern), need a full fence each, or both may miss the
 * other's store. When one side is frequent and the other rare, the frequent
 * side may use ctok_light_fence(), a compiler barrier, provided the rare
 * side calls ctok_membarrier(), which makes every running thread of the
 * process pass a full barrier, and only while ctok_membarrier_works(). */
# define ctok_membarrier_works() G_LIKELY (ctok_membarrier_ok)
# define ctok_light_fence()      __atomic_signal_fence (__ATOMIC_SEQ_CST)

static inline void
ctok_lock_init (CtokLock *lock)
{
  lock->state = 0;
}

static inline void
ctok_lock_clear (CtokLock *lock)
{
  (void) lock;
}

static inline void
ctok_lock_acquire (CtokLock *lock)
{
  int expected = 0;

  if G_UNLIKELY (!__atomic_compare_exchange_n (&lock->state, &expected, 1, FALSE,
                                               __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
    ctok_lock_acquire_contended (lock);
}

static inline void
ctok_lock_release (CtokLock *lock)
{
  int *sleepers = &ctok_lock_sleepers[CTOK_LOCK_SLOT (lock)];

  if (ctok_membarrier_works ())
    {
      __atomic_store_n (&lock->state, 0, __ATOMIC_RELEASE);
      /* Keeps the compiler from reading the count before the store; the
       * processor may, which sleepers allow for with membarrier(). */
      ctok_light_fence ();
      if G_UNLIKELY (__atomic_load_n (sleepers, __ATOMIC_RELAXED) != 0)
        ctok_lock_wake (lock);
    }
  else
    {
      __atomic_exchange_n (&lock->state, 0, __ATOMIC_SEQ_CST);
      if G_UNLIKELY (__atomic_load_n (sleepers, __ATOMIC_SEQ_CST) != 0)
        ctok_lock_wake (lock);
    }
}

#else /* !CTOK_LOCK_FUTEX */

typedef CtokMutex CtokLock;

# define ctok_lock_init    ctok_mutex_init
# define ctok_lock_clear   ctok_mutex_clear
# define ctok_lock_acquire ctok_mutex_lock
# define ctok_lock_release ctok_mutex_unlock

# define ctok_membarrier_works() FALSE
# define ctok_light_fence()      __atomic_thread_fence (__ATOMIC_SEQ_CST)
# define ctok_membarrier()       G_STMT_START { } G_STMT_END

#endif /* CTOK_LOCK_FUTEX */
