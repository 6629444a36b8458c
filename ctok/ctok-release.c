/* ctok-release.c: unreferencing without deep recursion
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <glib-object.h>

#include "ctok-private.h"

/* Dropping the last reference to a linked token releases its parents, which
 * may drop theirs, and so on: a chain of 100,000 linked sources would finalize
 * 100,000 frames deep. Every unreference ctok makes goes through
 * ctok_release_object(), which runs the outermost one and queues those made
 * while it runs, so finalization is a loop on each thread, never a recursion. */

typedef struct
{
  gboolean   active;
  GPtrArray *pending;
} ReleaseQueue;

static void
release_queue_free (gpointer data)
{
  ReleaseQueue *queue = data;

  if (queue->pending != NULL)
    g_ptr_array_unref (queue->pending);
  g_free (queue);
}

static GPrivate release_queue_key = G_PRIVATE_INIT (release_queue_free);

void
ctok_release_object (gpointer object)
{
  ReleaseQueue *queue = g_private_get (&release_queue_key);

  if (queue == NULL)
    {
      queue = g_new0 (ReleaseQueue, 1);
      g_private_set (&release_queue_key, queue);
    }

  if (queue->active)
    {
      if (queue->pending == NULL)
        queue->pending = g_ptr_array_new ();
      g_ptr_array_add (queue->pending, object);
      return;
    }

  queue->active = TRUE;
  g_object_unref (object);

  while (queue->pending != NULL && queue->pending->len > 0)
    {
      gpointer next = g_ptr_array_steal_index_fast (queue->pending, queue->pending->len - 1);

      g_object_unref (next);
    }

  queue->active = FALSE;
}
