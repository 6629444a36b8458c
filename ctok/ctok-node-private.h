/* ctok-node-private.h: registration nodes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "ctok-token.h"

G_BEGIN_DECLS

/* What a node does when its token is cancelled. */
typedef enum
{
  CTOK_NODE_FREE = 0,
  CTOK_NODE_CALLBACK,   /* a user callback, run on the cancelling thread */
  CTOK_NODE_CONTEXT,    /* a user callback delivered to a GMainContext */
  CTOK_NODE_INTERNAL,   /* ctok's own plumbing (GSources, cancellables, waits) */
  CTOK_NODE_LINK_ANY,   /* cancels a linked child (user_data) */
  CTOK_NODE_LINK_ALL,   /* counts down a child linked to all of its parents */
  CTOK_NODE_REMOVED,    /* unregistered, still in the list until compacted */
} CtokNodeKind;

/* Where a node is (its flags): one of these, or 0 (free, running or run).
 * Changed atomically: the cancel loop claims a LINKED node with no lock. */
enum
{
  CTOK_NODE_LINKED    = 1,  /* pending: in its token's list, or its cancel loop's batch */
  CTOK_NODE_IN_FLIGHT = 2,  /* taken by the canceller, still owned until released */
};

typedef struct _CtokNode CtokNode;

/* A registration. Nodes live in a process-wide arena and are never returned to
 * the system, so an id (generation and index) can always be looked up safely,
 * even when it is stale or belongs to another token.
 *
 * @owner, @id and @flags are accessed atomically; everything else is
 * protected by the owner token's mutex, or belongs to the cancel loop once
 * it has claimed the node. */
struct _CtokNode
{
  CtokNode          *prev;  /* in flight: the node before; otherwise a
                             * prefetch hint (see ctok-token.c) */
  CtokNode          *next;
  CtokToken         *owner;
  guint64            id;
  CtokTokenCallback  callback;
  gpointer           user_data;
  GDestroyNotify     destroy;
  guint8             kind;
  int                flags;  /* atomic */
};

/* An id is (generation << CTOK_NODE_INDEX_BITS) | (arena index + 1); it is
 * never 0, and a node's generation moves on each time it is reused. Ids
 * use 53 bits, so a JavaScript number holds one exactly: 26 for the index
 * (67 million live registrations) and 27 for the generation (a node reused
 * 134 million times before an old id could name it again). */
#define CTOK_NODE_INDEX_BITS 26
#define CTOK_NODE_ID_BITS    53
#define CTOK_NODE_ID_MASK    ((G_GUINT64_CONSTANT (1) << CTOK_NODE_ID_BITS) - 1)
#define CTOK_NODE_INDEX_MASK ((G_GUINT64_CONSTANT (1) << CTOK_NODE_INDEX_BITS) - 1)
#define CTOK_NODE_GENERATION ((G_GUINT64_CONSTANT (1) << CTOK_NODE_INDEX_BITS))

CtokNode *ctok_node_alloc        (CtokToken *owner);
void      ctok_node_release_list (CtokNode  *list);
CtokNode *ctok_node_lookup       (guint64    id);

G_END_DECLS
