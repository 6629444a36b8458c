/* ctok-thread.c: per-thread helpers: the current thread, and unreferencing
 * without deep recursion
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <glib-object.h>

#include "ctok-private.h"

/* Both are on hot paths (every cancellation asks for the current thread), so
 * their state is found through C11 thread-locals, a few times cheaper than a
 * GPrivate lookup. */

typedef struct
{
  GThread   *thread;     /* g_thread_self(), remembered */
  gboolean   releasing;  /* in ctok_release_object() */
  GPtrArray *pending;    /* objects it is yet to release */
} ThreadState;

/* One thread-local for all: in a shared library, each costs a lookup. */
static _Thread_local ThreadState thread_state;

/* The GThread lives as long as the thread, and so does the thread-local. */
GThread *
ctok_thread_self (void)
{
  ThreadState *state = &thread_state;

  if G_UNLIKELY (state->thread == NULL)
    state->thread = g_thread_self ();

  return state->thread;
}

/* Dropping the last reference to a linked token releases its parents, which
 * may drop theirs, and so on: a chain of 100,000 linked sources would finalize
 * 100,000 frames deep. Every unreference ctok makes goes through
 * ctok_release_object(), which runs the outermost one and queues those made
 * while it runs, so finalization is a loop on each thread, never a recursion. */

/* Frees the queue at thread exit; set once the queue exists. */
static void
pending_free (gpointer data)
{
  thread_state.pending = NULL;
  g_ptr_array_unref (data);
}

static GPrivate pending_key = G_PRIVATE_INIT (pending_free);

void
ctok_release_object (gpointer object)
{
  ThreadState *state = &thread_state;

  if (state->releasing)
    {
      if (state->pending == NULL)
        {
          state->pending = g_ptr_array_new ();
          g_private_set (&pending_key, state->pending);
        }
      g_ptr_array_add (state->pending, object);
      return;
    }

  state->releasing = TRUE;
  g_object_unref (object);

  while (state->pending != NULL && state->pending->len > 0)
    g_object_unref (g_ptr_array_steal_index_fast (state->pending, state->pending->len - 1));

  state->releasing = FALSE;
}
