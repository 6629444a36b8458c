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

static _Thread_local GThread *current_thread;

/* g_thread_self(), remembered. The GThread lives as long as the thread, and
 * so does the thread-local. */
GThread *
ctok_thread_self (void)
{
  GThread *thread = current_thread;

  if G_UNLIKELY (thread == NULL)
    current_thread = thread = g_thread_self ();

  return thread;
}

/* Dropping the last reference to a linked token releases its parents, which
 * may drop theirs, and so on: a chain of 100,000 linked sources would finalize
 * 100,000 frames deep. Every unreference ctok makes goes through
 * ctok_release_object(), which runs the outermost one and queues those made
 * while it runs, so finalization is a loop on each thread, never a recursion. */

static _Thread_local gboolean releasing;
static _Thread_local GPtrArray *pending_releases;

/* Frees the queue at thread exit; set once the queue exists. */
static GPrivate pending_releases_key = G_PRIVATE_INIT ((GDestroyNotify) g_ptr_array_unref);

void
ctok_release_object (gpointer object)
{
  GPtrArray *pending;

  if (releasing)
    {
      pending = pending_releases;
      if (pending == NULL)
        {
          pending = pending_releases = g_ptr_array_new ();
          g_private_set (&pending_releases_key, pending);
        }
      g_ptr_array_add (pending, object);
      return;
    }

  releasing = TRUE;
  g_object_unref (object);

  pending = pending_releases;
  while (pending != NULL && pending->len > 0)
    g_object_unref (g_ptr_array_steal_index_fast (pending, pending->len - 1));

  releasing = FALSE;
}
