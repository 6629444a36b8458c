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
