/* ctok-timer.c: the process-wide deadline timer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "ctok-private.h"
#include "ctok-lock-private.h"
#include "ctok-timer-private.h"
#include "ctok-token-private.h"

/* Every deadline in the process sits in one binary min-heap, served by one
 * thread, "ctok-timer", started the first time a deadline is armed. The
 * thread sleeps until the earliest deadline (ctok_cond_wait_until(), on the
 * monotonic clock), fires what is due, and sleeps again. Arming, moving and
 * disarming are O(log n) under one short lock; no main loop is involved, so
 * deadlines fire whether or not any loop runs, and a million pending
 * deadlines cost a main loop nothing (one GSource each would cost every
 * iteration O(n), and never fire while the loop is blocked).
 *
 * Firing cancels the token on this thread, so its callbacks run here: they
 * must be short. An entry being fired is named by @firing; disarming it
 * from another thread with ctok_timer_disarm_sync() waits until it is done,
 * so its owner may then be freed. */

static CtokMutex           timer_mutex;
static CtokCond            timer_cond;      /* the thread sleeps on it */
static CtokCond            fired_cond;      /* disarm_sync waits on it */
static CtokTimerEntry **heap;
static guint            heap_len;
static guint            heap_size;
static gboolean         thread_started;
static CtokTimerEntry  *firing;
static GThread         *firing_thread;
/* When the thread will look at the heap again by itself: the time it
 * sleeps until, G_MAXINT64 while it sleeps with nothing armed, G_MININT64
 * while it is awake (or asked to wake). Arming signals it only for a
 * deadline earlier than this, so the usual create-and-drop of a deadline
 * later than the earliest costs no wake-up; disarming never does (at worst
 * the thread wakes once for nothing). */
static gint64           wake_at = G_MININT64;

void
ctok_timer_entry_init (CtokTimerEntry *entry)
{
  entry->due = G_MAXINT64;
  entry->index = CTOK_TIMER_NOT_ARMED;
}

/* --- The heap (under timer_mutex) --- */

static inline void
heap_set (guint           index,
          CtokTimerEntry *entry)
{
  heap[index] = entry;
  entry->index = index;
}

static void
sift_up (guint index)
{
  CtokTimerEntry *entry = heap[index];

  while (index > 0)
    {
      guint parent = (index - 1) / 2;

      if (heap[parent]->due <= entry->due)
        break;
      heap_set (index, heap[parent]);
      index = parent;
    }
  heap_set (index, entry);
}

static void
sift_down (guint index)
{
  CtokTimerEntry *entry = heap[index];

  for (;;)
    {
      guint child = 2 * index + 1;

      if (child >= heap_len)
        break;
      if (child + 1 < heap_len && heap[child + 1]->due < heap[child]->due)
        child++;
      if (entry->due <= heap[child]->due)
        break;
      heap_set (index, heap[child]);
      index = child;
    }
  heap_set (index, entry);
}

static void
heap_remove (CtokTimerEntry *entry)
{
  guint index = entry->index;
  CtokTimerEntry *last;

  entry->index = CTOK_TIMER_NOT_ARMED;
  last = heap[--heap_len];
  if (last == entry)
    return;

  heap_set (index, last);
  if (index > 0 && heap[(index - 1) / 2]->due > last->due)
    sift_up (index);
  else
    sift_down (index);
}

/* --- The thread --- */

static gpointer
timer_thread (gpointer data)
{
#if defined(__linux__) && defined(PR_SET_TIMERSLACK)
  /* Sleep as exactly as the kernel can: by default Linux may wake a thread
   * up to 50 us late to batch timers, which would be most of a deadline's
   * lateness. */
  prctl (PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif

  ctok_mutex_lock (&timer_mutex);

  for (;;)
    {
      CtokTimerEntry *entry;
      gint64 now;

      if (heap_len == 0)
        {
          wake_at = G_MAXINT64;
          ctok_cond_wait (&timer_cond, &timer_mutex);
          wake_at = G_MININT64;
          continue;
        }

      entry = heap[0];
      now = g_get_monotonic_time ();
      if (entry->due > now)
        {
          wake_at = entry->due;
          ctok_cond_wait_until (&timer_cond, &timer_mutex, entry->due);
          wake_at = G_MININT64;
          continue;
        }

      heap_remove (entry);
      firing = entry;
      firing_thread = ctok_thread_self ();
      ctok_mutex_unlock (&timer_mutex);

      ctok_token_deadline_expired (entry);

      ctok_mutex_lock (&timer_mutex);
      firing = NULL;
      ctok_cond_broadcast (&fired_cond);
    }

  return NULL;
}

/* Arms @entry to fire at @due, or moves it there if it is armed. */
void
ctok_timer_arm (CtokTimerEntry *entry,
                gint64          due)
{
  gboolean wake;

  ctok_mutex_lock (&timer_mutex);

  if (!thread_started)
    {
      /* Never joined: it sleeps until the process exits. */
      g_thread_unref (g_thread_new ("ctok-timer", timer_thread, NULL));
      thread_started = TRUE;
    }

  if (entry->index == CTOK_TIMER_NOT_ARMED)
    {
      if (heap_len == heap_size)
        {
          heap_size = MAX (64, heap_size * 2);
          heap = g_renew (CtokTimerEntry *, heap, heap_size);
        }
      entry->due = due;
      heap_set (heap_len++, entry);
      sift_up (entry->index);
    }
  else
    {
      gint64 old_due = entry->due;

      entry->due = due;
      if (due < old_due)
        sift_up (entry->index);
      else
        sift_down (entry->index);
    }

  /* The thread sleeps until the earliest deadline: wake it if this one
   * comes earlier. */
  wake = due < wake_at;
  if (wake)
    wake_at = G_MININT64;

  ctok_mutex_unlock (&timer_mutex);

  if (wake)
    ctok_cond_signal (&timer_cond);
}

/* Takes @entry out of the heap if it is there. Never waits: it may be
 * firing on the timer thread right now. */
void
ctok_timer_disarm (CtokTimerEntry *entry)
{
  ctok_mutex_lock (&timer_mutex);
  if (entry->index != CTOK_TIMER_NOT_ARMED)
    heap_remove (entry);
  ctok_mutex_unlock (&timer_mutex);
}

/* Takes @entry out of the heap and, if the timer thread is firing it,
 * waits until it is done, so it can be freed. Must not be called with a
 * lock the firing might need. Never waits on the timer thread itself. */
void
ctok_timer_disarm_sync (CtokTimerEntry *entry)
{
  GThread *self = ctok_thread_self ();

  ctok_mutex_lock (&timer_mutex);
  if (entry->index != CTOK_TIMER_NOT_ARMED)
    heap_remove (entry);
  while (firing == entry && firing_thread != self)
    ctok_cond_wait (&fired_cond, &timer_mutex);
  ctok_mutex_unlock (&timer_mutex);
}
