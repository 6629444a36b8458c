/* ctok-node.c: the process-wide arena of registration nodes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "ctok-private.h"
#include "ctok-lock-private.h"
#include "ctok-node-private.h"

/* Chunk k holds (CHUNK0_NODES << k) nodes, so the arena grows geometrically
 * and an index maps to its chunk with one bit scan. Chunks are never freed:
 * a stale id may be looked up at any time.
 *
 * A node is 64 bytes on 64-bit systems, and chunks start on a 64-byte
 * boundary, so each node is one cache line. (malloc() aligns to 16 bytes:
 * every node would straddle two lines, and removing 100,000 registrations
 * in random order missed the first-level cache 28% more often.) A chunk
 * comes from g_malloc0() and is aligned by hand, not from
 * g_aligned_alloc0(), which writes zeros over all of it at once: calloc()
 * leaves the pages of a large chunk untouched until nodes are handed out
 * there, and 1,000,000 registrations would otherwise cost 3 MB more. */
#define NODE_ALIGN 64

#if GLIB_SIZEOF_VOID_P == 8
G_STATIC_ASSERT (sizeof (CtokNode) == NODE_ALIGN);
#endif
#define CHUNK0_NODES 256
#define N_CHUNKS     21
#define MAX_NODES    (((guint64) 1 << CTOK_NODE_INDEX_BITS) - 1)

static CtokLock     pool_lock;
static CtokNode *pool_free;            /* released nodes, linked through ->next */
static CtokNode *chunks[N_CHUNKS];     /* published with release semantics */
static gpointer  chunk_blocks[N_CHUNKS]; /* as allocated, for leak checkers */
static guint     n_indices;            /* indices handed out; atomic */

static inline guint
chunk_of (guint  index,
          guint *offset)
{
  guint k = g_bit_storage (index / CHUNK0_NODES + 1) - 1;

  *offset = index - CHUNK0_NODES * ((1u << k) - 1);
  return k;
}

/* Takes a node from the pool, with its generation already moved on. */
CtokNode *
ctok_node_alloc (CtokToken *owner)
{
  CtokNode *node;

  ctok_lock_acquire (&pool_lock);

  if (pool_free != NULL)
    {
      node = pool_free;
      pool_free = node->next;
      /* The pool keeps the order, and so the hints, of the free lists
       * released into it (see ctok-token.c). */
      if (node->user_data != NULL)
        __builtin_prefetch (node->user_data, 1);
    }
  else
    {
      guint index = n_indices;
      guint offset;
      guint k;

      if G_UNLIKELY (index >= MAX_NODES)
        g_error ("ctok: more than %" G_GUINT64_FORMAT " live registrations", (guint64) MAX_NODES);

      k = chunk_of (index, &offset);
      if (chunks[k] == NULL)
        {
          chunk_blocks[k] = g_malloc0 (((gsize) CHUNK0_NODES << k) * sizeof (CtokNode) + NODE_ALIGN - 1);
          g_atomic_pointer_set (&chunks[k],
                                GSIZE_TO_POINTER ((GPOINTER_TO_SIZE (chunk_blocks[k]) + NODE_ALIGN - 1) &
                                                  ~(gsize) (NODE_ALIGN - 1)));
        }

      node = &chunks[k][offset];
      ctok_atomic_store64 (&node->id, (guint64) index + 1);
      g_atomic_int_set (&n_indices, index + 1);
    }

  ctok_lock_release (&pool_lock);

  node->next = NULL;
  node->kind = CTOK_NODE_FREE;
  g_atomic_int_set (&node->flags, 0);
  g_atomic_pointer_set (&node->owner, owner);

  return node;
}

/* Gives a list of nodes (linked through ->next) back to the pool. */
void
ctok_node_release_list (CtokNode *list)
{
  CtokNode *last;

  if (list == NULL)
    return;

  for (last = list; ; last = last->next)
    {
      g_atomic_pointer_set (&last->owner, NULL);
      if (last->next == NULL)
        break;
    }

  ctok_lock_acquire (&pool_lock);
  last->next = pool_free;
  pool_free = list;
  ctok_lock_release (&pool_lock);
}

/* Maps an id to the node it was issued for, or NULL if no such node was ever
 * allocated. The node may since have been reused: callers compare ->owner and
 * ->id under the owner's lock. */
CtokNode *
ctok_node_lookup (guint64 id)
{
  guint64 index_plus_one = id & CTOK_NODE_INDEX_MASK;
  CtokNode *chunk;
  guint offset;
  guint k;

  if (index_plus_one == 0 || index_plus_one > (guint64) g_atomic_int_get (&n_indices))
    return NULL;

  k = chunk_of ((guint) (index_plus_one - 1), &offset);
  chunk = g_atomic_pointer_get (&chunks[k]);

  return &chunk[offset];
}
