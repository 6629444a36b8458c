/* ctok-token.c: the read-only cancellation signal, its registrations and the
 * cancel loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "ctok-private.h"
#include "ctok-lock-private.h"
#include "ctok-token-private.h"
#include "ctok-cancellable-private.h"
#include "ctok-gsource-private.h"
#include "ctok-timer-private.h"

/**
 * CtokToken:
 *
 * A token is the read-only side of a cancellation: operations receive a
 * token, check it, and register callbacks on it; only the
 * [class@Ctok.TokenSource] that owns it can cancel it.
 *
 * A token goes one way, from not cancelled to cancelled, and never back.
 * Once cancelled it carries a reason, a [struct@GLib.Error]:
 * `G_IO_ERROR_CANCELLED` for a plain [method@Ctok.TokenSource.cancel], or
 * whatever error was given to [method@Ctok.TokenSource.cancel_with_error].
 * [method@Ctok.Token.set_error_if_cancelled] and
 * [method@Ctok.Token.dup_error] hand that reason to whoever checks.
 *
 * ```c
 * static gboolean
 * copy_file (GFile *from, GFile *to, CtokToken *token, GError **error)
 * {
 *   if (ctok_token_set_error_if_cancelled (token, error))
 *     return FALSE;
 *
 *   if (!g_file_copy (from, to, G_FILE_COPY_NONE,
 *                     ctok_token_get_cancellable (token),
 *                     NULL, NULL, error))
 *     {
 *       // GIO reports G_IO_ERROR_CANCELLED; give the caller the real reason.
 *       ctok_token_rewrite_error (token, error);
 *       return FALSE;
 *     }
 *
 *   return TRUE;
 * }
 * ```
 *
 * ## Callbacks
 *
 * [method@Ctok.Token.register] adds a callback that runs when the token is
 * cancelled: synchronously, on the thread that cancels, newest first, with no
 * ctok lock held. A callback registered on a token that is already cancelled
 * runs at once, before `register()` returns. Each callback runs at most once,
 * and its destroy notify runs exactly once, after the callback or when the
 * registration is dropped without running.
 *
 * [method@Ctok.Token.unregister] removes a callback. If the callback is
 * running on another thread, it waits until the callback returns, so that the
 * caller may then free what the callback uses; it never waits on the thread
 * that is running the callback, so it cannot deadlock the way
 * [method@Gio.Cancellable.disconnect] does when called from a handler.
 *
 * Code that must run in a particular thread (a GTK user interface, a GJS
 * program) uses [method@Ctok.Token.register_in_context] or
 * [method@Ctok.Token.create_source], which deliver in a
 * [struct@GLib.MainContext] whatever thread cancels. These are also what
 * Python and JavaScript get: `register()` itself, whose callbacks run on the
 * cancelling thread, is for C only.
 *
 * ## GIO
 *
 * [method@Ctok.Token.get_cancellable] returns a [class@Gio.Cancellable] that
 * is cancelled with the token, for passing to any GIO call;
 * [method@Ctok.Token.new_cancellable] makes one per operation, for APIs that
 * cancel the cancellable they are given.
 *
 * ## Thread safety
 *
 * Every method of a token may be called from any thread. Cancellation is
 * visible to [method@Ctok.Token.is_cancelled] on every thread from the moment
 * it starts, before any callback has run.
 *
 * Since: 1.0
 */

/* States, in the order a token moves through them (@state). Both
 * cancelled states have STATE_CANCELLED set, so that the hottest check of
 * all, ctok_token_is_cancelled(), is one load and one AND. */
enum
{
  STATE_NOT_CANCELLED = 0,
  STATE_CANCELLED     = 1 << 0,
  STATE_NOTIFYING     = STATE_CANCELLED,           /* callbacks are being run */
  STATE_NOTIFIED      = STATE_CANCELLED | 1 << 1,  /* every callback has run */
};

/* Token flags: the low byte of @flags, written with atomic operations under
 * the lock, read atomically. */
enum
{
  TOKEN_NONE          = 1 << 0,  /* the never-cancelled token */
  TOKEN_FROZEN        = 1 << 1,  /* closed or dropped before being cancelled: never will be */
  TOKEN_RESURRECTED   = 1 << 2,  /* dropped while being notified on its own thread */
  TOKEN_SOURCE_CLOSED = 1 << 3,  /* its source was closed */
  TOKEN_EXTRAS        = 1 << 4,  /* has or had a cancellable, a link record or a
                                  * deadline: begin_cancel() must look at them */
};

/* The rest of @flags counts pins: deadline updates using the token without
 * a reference (see propagate_deadline()), changed atomically, with no lock. */
#define PIN_SHIFT 8
#define PIN_ONE   (1 << PIN_SHIFT)
#define PINS(flags) ((guint) (flags) >> PIN_SHIFT)

/* A linked token's hold on its parents. The token keeps a reference on each
 * parent and a registration in it; the parent's registration points back at
 * the token without a reference, and is removed (waiting if it is running)
 * before the token goes away. So a parent never keeps its children alive, and
 * children release their parents when cancelled, closed or dropped.
 *
 * The usual link, to just one parent, is kept in the token itself (@link);
 * any other (several parents, all-of, a foreign cancellable) in a record
 * (@links). */
typedef struct
{
  CtokToken *parent;   /* a reference; NULL: none */
  guint64    id;       /* registration on @parent, 0 if none */
} CtokLink;

typedef struct
{
  int         remaining;  /* all-of: parents not cancelled yet; atomic */
  gboolean    all;        /* cancelled once all parents are, not any */
  guint       n_links;
  guint       n_slots;    /* allocated for */
  CtokFollow *follow;     /* a foreign GCancellable, for linked_to_cancellable */
  CtokLink    items[];
} CtokLinks;

/* Link records come and go with every linked source, and are freed in
 * bulk when a parent cancels its children: GLib's slice allocator does
 * both without touching the heap's bookkeeping. */
static CtokLinks *
links_new (guint n_slots)
{
  CtokLinks *links = g_slice_alloc0 (sizeof (CtokLinks) + n_slots * sizeof (CtokLink));

  links->n_slots = n_slots;
  return links;
}

static void
links_free (CtokLinks *links)
{
  g_slice_free1 (sizeof (CtokLinks) + links->n_slots * sizeof (CtokLink), links);
}

/* A token's deadlines, allocated the first time it has one: its own (set by
 * its source) and its effective one, the earliest of its own and its
 * parents' (the latest of the parents', for an all-of link). The own
 * deadline is armed on the timer only when it is the one that matters. */
typedef struct
{
  CtokToken      *token;      /* back pointer, for the timer */
  gint64          own;        /* under the token's lock */
  gint64          effective;  /* written under the token's lock; atomic */
  CtokTimerEntry  entry;      /* under the timer's lock */
} CtokDeadline;

struct _CtokToken
{
  GObject parent_instance;

  /* The first cache line holds all that cancelling a token touches when
   * nothing is registered on it and it has no extras (see TOKEN_EXTRAS),
   * the usual linked child: a parent cancelling many children reads one
   * line of each.
   *
   * @state and @flags are written atomically under @lock (but the pins in
   * @flags, which change with no lock, and the state's last change, see
   * finish_notify()), read lock-free with a single atomic load. */
  int state;
  int flags;  /* and the count of pins */

  /* Protects everything below. Held only for pointer updates: no callback,
   * destroy notify or unreference ever runs under it. */
  CtokLock lock;
  int claims;  /* how the cancel loop claims registrations: a CLAIMS_*
                * value (see claim()); atomic */

  CtokNode *head;             /* pending registrations, newest first */

  /* What a token needs before it is cancelled, and what it needs after, in
   * the same bytes (here and below): begin_cancel() switches from one to
   * the other, under the lock, as @state leaves STATE_NOT_CANCELLED. */
  union
  {
    CtokLink link;            /* before: the one parent, if linked to just one */
    struct
    {
      CtokReason *reason;     /* never changes: read with no lock once @state
                               * says cancelled */
      GThread *executing_thread;  /* running the notification, NULL once
                                   * done; atomic */
    };
  };

  union
  {
    struct
    {
      guint n_listed;         /* before: nodes in the list, removed ones included */
      guint n_removed;        /* removed, left in place (see list_remove()) */
    };
    guint64 executing_id;     /* after: the registration being run; atomic.
                               * Both counts are 0 when the list is empty, so
                               * it needs no reset then. */
  };
  CtokNode *in_flight;        /* fired, waiting for their main context */
  CtokNode *free_nodes;       /* recycled nodes, linked through ->next */
  GCancellable *cancellable;  /* shared bridge, created on first use */
  CtokLinks *links;           /* any other linking, until released */
  CtokDeadline *deadline;     /* created on first use, then never moves; atomic */

  /* Set when the token is made or recycled, before anyone else sees it. */
  GMainContext *context;      /* where notify is emitted; NULL: the global default */
  GThread *home;              /* the thread that created the token */
};

/* On 64-bit platforms, two cache lines, the first as described above
 * (ThreadSanitizer builds use pthread's larger mutex for the lock). */
#if GLIB_SIZEOF_VOID_P == 8 && !defined (CTOK_TSAN)
G_STATIC_ASSERT (G_STRUCT_OFFSET (CtokToken, executing_id) == 64);
G_STATIC_ASSERT (sizeof (CtokToken) == 128);
#endif

/* Whether the token may still be cancelled: not cancelled, not frozen, not
 * the never-cancelled token. Called with the lock held. */
static inline gboolean
can_cancel_locked (CtokToken *self)
{
  return g_atomic_int_get (&self->state) == STATE_NOT_CANCELLED &&
         (g_atomic_int_get (&self->flags) & (TOKEN_NONE | TOKEN_FROZEN)) == 0;
}

/* Moves the token to @state. Called with the lock held: the one change of
 * state made without it (finish_notify()) comes later, on the thread that
 * made this one. */
static inline void
set_state_locked (CtokToken *self,
                  int        state)
{
  ctok_atomic_store_release (&self->state, state);
}

enum
{
  PROP_0,
  PROP_CANCELLED,
  PROP_DEADLINE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];
static guint notify_signal_id;

/* Whether anyone may be listening to a token's notify signal. Asking GLib
 * (g_signal_handler_find()) takes its global signal lock and a hash lookup,
 * and every cancellation asks, once per token: for a parent cancelling
 * 100,000 linked children that was the largest cost of all.
 *
 * GObject keeps the answer itself: since GLib 2.74, on 64-bit platforms,
 * the word after an instance's ref_count holds flags that GLib sets, and
 * never clears, when a handler (for notify: a notify handler) is first
 * connected to that instance. It is private, so it is not trusted blindly:
 * probe_notify_flags() connects a notify handler to a throwaway object at
 * class initialization and keeps the bits that appeared, only if a second,
 * untouched object does not have them. If the probe sees anything else (an
 * older or newer layout, a 32-bit platform) the mask stays 0 and every check
 * asks GLib. A set bit is only a hint (the handler may be gone): GLib is
 * asked then too. */
static gsize notify_flags_offset;
static guint notify_flags_mask;

/* GLib keeps flags in the low bits of the qdata pointer. */
#define QDATA_FLAGS_MASK ((gsize) 7)
#define qdata_flags(object) ((gsize) g_atomic_pointer_get (&G_OBJECT (object)->qdata) & QDATA_FLAGS_MASK)

/* The one of them that says an object has a toggle reference, as GLib 2.74
 * keeps it (see unref_many()), found by probe_toggle_flag(); 0 if not found. */
static gsize toggle_flag;

#define object_flags_word(object, offset) ((int *) (gpointer) ((guint8 *) (object) + (offset)))

static void
probe_notify_handler (GObject    *object,
                      GParamSpec *pspec,
                      gpointer    user_data)
{
}

static void
probe_notify_flags (void)
{
  gsize offset = G_STRUCT_OFFSET (GObject, ref_count) + sizeof (guint);
  GObject *touched;
  GObject *untouched;
  guint before;
  guint after;
  guint other;
  gulong id;

  /* Only where that word is padding in the public structure. */
  if (offset + sizeof (guint) > G_STRUCT_OFFSET (GObject, qdata))
    return;

  touched = g_object_new (G_TYPE_OBJECT, NULL);
  untouched = g_object_new (G_TYPE_OBJECT, NULL);
  before = (guint) g_atomic_int_get (object_flags_word (touched, offset));
  id = g_signal_connect (touched, "notify", G_CALLBACK (probe_notify_handler), NULL);
  after = (guint) g_atomic_int_get (object_flags_word (touched, offset));
  other = (guint) g_atomic_int_get (object_flags_word (untouched, offset));
  g_signal_handler_disconnect (touched, id);
  g_object_unref (untouched);
  g_object_unref (touched);

  if ((after & ~before) != 0 && (other & (after & ~before)) == 0)
    {
      notify_flags_offset = offset;
      notify_flags_mask = after & ~before;
    }
}

static void
probe_toggle_notify (gpointer  data,
                     GObject  *object,
                     gboolean  is_last_ref)
{
}

static void
probe_toggle_flag (void)
{
  GObject *object = g_object_new (G_TYPE_OBJECT, NULL);
  gsize before;
  gsize during;
  gsize after;
  gsize bit;

  before = qdata_flags (object);
  g_object_add_toggle_ref (object, probe_toggle_notify, NULL);
  during = qdata_flags (object);
  g_object_remove_toggle_ref (object, probe_toggle_notify, NULL);
  after = qdata_flags (object);
  g_object_unref (object);

  /* One bit, set with the toggle reference, cleared with it. */
  bit = during & ~before;
  if (bit != 0 && (bit & (bit - 1)) == 0 && (after & bit) == 0)
    toggle_flag = bit;
}

static inline gboolean
has_notify_handler (CtokToken *self)
{
  if (notify_flags_mask != 0 &&
      ((guint) g_atomic_int_get (object_flags_word (self, notify_flags_offset)) & notify_flags_mask) == 0)
    return FALSE;

  /* Any notify handler: g_signal_has_handler_pending() with a detail
   * misses handlers connected to plain "notify". */
  return g_signal_handler_find (self, G_SIGNAL_MATCH_ID, notify_signal_id, 0, NULL, NULL, NULL) != 0;
}

/* The type check of the hottest entry points: CtokToken is final, so an
 * instance whose class is ours is a token. Anything else takes the usual
 * g_return_val_if_fail() path, with its critical. */
static gpointer token_class;

#define return_val_if_not_token(self, val) \
  G_STMT_START { \
    if G_UNLIKELY ((self) == NULL || \
                   ((GTypeInstance *) (self))->g_class != g_atomic_pointer_get (&token_class)) \
      g_return_val_if_fail (CTOK_IS_TOKEN (self), (val)); \
  } G_STMT_END

static void notify_in_context (CtokToken  *self,
                               GParamSpec *pspec);

G_DEFINE_FINAL_TYPE (CtokToken, ctok_token, G_TYPE_OBJECT)

/* --- Reasons --- */

/* Shared by a token and every child it cancels: references are taken on
 * the hot path, so counted inline rather than in a GLib box. */
struct _CtokReason
{
  int     ref_count;  /* atomic */
  GError *error;
};

CtokReason *
ctok_reason_new_take (GError *error)
{
  CtokReason *reason = g_new (CtokReason, 1);

  reason->ref_count = 1;
  reason->error = error;
  return reason;
}

CtokReason *
ctok_reason_new_cancelled (void)
{
  return ctok_reason_new_take (g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                    _("Operation was cancelled")));
}

CtokReason *
ctok_reason_new_timed_out (void)
{
  return ctok_reason_new_take (g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                                    _("Deadline exceeded")));
}

CtokReason *
ctok_reason_ref (CtokReason *reason)
{
  g_atomic_int_inc (&reason->ref_count);
  return reason;
}

static void
reason_free (CtokReason *reason)
{
  g_error_free (reason->error);
  g_free (reason);
}

void
ctok_reason_unref (CtokReason *reason)
{
  if (g_atomic_int_dec_and_test (&reason->ref_count))
    reason_free (reason);
}

/* References on one reason, taken in bulk: a cancel loop hands its token's
 * reason to every child it cancels, and one atomic operation per
 * REASON_CREDIT of them is cheaper than one each. */
#define REASON_CREDIT 64

typedef struct
{
  CtokReason *reason;
  guint       n;       /* references held on @reason, not handed out yet */
} ReasonCredit;

static void
credit_settle (ReasonCredit *credit)
{
  if (credit->n == 0)
    return;

  if (g_atomic_int_add (&credit->reason->ref_count, -(int) credit->n) == (int) credit->n)
    reason_free (credit->reason);
  credit->n = 0;
}

/* Returns a reference to @reason. */
static inline CtokReason *
credit_take (ReasonCredit *credit,
             CtokReason   *reason)
{
  if (credit->reason != reason || credit->n == 0)
    {
      credit_settle (credit);
      credit->reason = reason;
      g_atomic_int_add (&reason->ref_count, REASON_CREDIT);
      credit->n = REASON_CREDIT;
    }
  credit->n--;
  return reason;
}

const GError *
ctok_reason_get_error (CtokReason *reason)
{
  return reason->error;
}

/* --- Waiting ---
 *
 * Blocking is rare (a thread unregistering a callback that another thread is
 * running, a dispose waiting for another thread's cancel loop, or
 * ctok_token_wait()), so instead of a condition variable in every token,
 * tokens share a few stripes, chosen by address. A stripe counts the
 * threads blocked on any of its tokens; a thread increments the count under
 * its token's lock before it blocks, and whoever changes what it waits for
 * checks the count and, if it is not 0, broadcasts.
 *
 * Under the token's lock, that check needs nothing more. The one change
 * made without the lock, a cancel loop's last (finish_notify()), is a store
 * of the token's state and then a read of the count with no barrier in
 * between: the blocking thread calls ctok_membarrier() after counting itself
 * (as for claim(), see ctok-lock-private.h), so either the loop sees the
 * count or the blocking thread sees the new state. The count is kept in the
 * stripe, not the token, because the token may be freed as soon as its state
 * says the loop is done. Where ctok_membarrier() does not work, the loop
 * uses a full barrier instead. A stripe shared with a token that has a
 * waiter costs a spurious broadcast, no more. */

#define N_WAIT_STRIPES 64

typedef struct
{
  CtokMutex mutex;
  CtokCond  cond;
  int       waiters;  /* atomic */
} WaitStripe;

static WaitStripe wait_stripes[N_WAIT_STRIPES];

static inline WaitStripe *
wait_stripe_for (CtokToken *self)
{
  return &wait_stripes[(GPOINTER_TO_SIZE (self) >> 7) % N_WAIT_STRIPES];
}

/* Whether a thread may be blocked on @self (or on a token sharing its
 * stripe). */
static inline gboolean
has_waiters (CtokToken *self)
{
  return g_atomic_int_get (&wait_stripe_for (self)->waiters) > 0;
}

void
ctok_token_wake_waiters (CtokToken *self)
{
  WaitStripe *stripe = wait_stripe_for (self);

  ctok_mutex_lock (&stripe->mutex);
  ctok_cond_broadcast (&stripe->cond);
  ctok_mutex_unlock (&stripe->mutex);
}

/* Blocks until @done returns TRUE or @end_time (monotonic, -1: never) passes.
 * @done is called with the stripe lock held and must only read atomics. */
static gboolean
block_until (CtokToken    *self,
             CtokWaitFunc  done,
             gpointer      data,
             gint64        end_time)
{
  WaitStripe *stripe = wait_stripe_for (self);
  gboolean ok = TRUE;

  ctok_lock_acquire (&self->lock);
  g_atomic_int_inc (&stripe->waiters);
  ctok_lock_release (&self->lock);
  if (ctok_membarrier_works ())
    ctok_membarrier ();

  ctok_mutex_lock (&stripe->mutex);
  while (!done (data))
    {
      if (end_time < 0)
        ctok_cond_wait (&stripe->cond, &stripe->mutex);
      else if (!ctok_cond_wait_until (&stripe->cond, &stripe->mutex, end_time))
        {
          ok = done (data);
          break;
        }
    }
  ctok_mutex_unlock (&stripe->mutex);

  g_atomic_int_add (&stripe->waiters, -1);

  return ok;
}

void
ctok_token_block_until (CtokToken    *self,
                        CtokWaitFunc  done,
                        gpointer      data)
{
  block_until (self, done, data, -1);
}

/* --- The registration list (all under the token's lock) --- */

/* The list is linked through ->next, newest first; nodes leave it only from
 * the head or while it is walked from the head, so it needs no back links.
 *
 * Nodes come back to the free list in whatever order their registrations
 * went, so after a while consecutive nodes, free or listed, lie anywhere in
 * the arena, and going through them one by one would wait for memory at
 * each step. So nodes carry hints to what comes HINT_AHEAD steps later,
 * which is prefetched:
 * - a free node's ->user_data: the node taken HINT_AHEAD takes after it;
 * - a node's ->prev, free or listed: the node taken HINT_AHEAD takes before
 *   it, which is that far down the list once both are registered. (A list
 *   walk prefetches it.)
 * Nodes freed in one go get both from a FreeRun; list_compact() renews the
 * list's. Hints may be NULL, or stale if the lists changed in between:
 * nodes are never unmapped, so prefetching a stale one is harmless. */
#define HINT_AHEAD 8

typedef struct
{
  CtokNode *recent[HINT_AHEAD];  /* the last nodes freed, in a ring */
  guint     n_freed;
} FreeRun;

#define FREE_RUN_INIT { { NULL, }, 0 }

static inline void
list_push (CtokToken *self,
           CtokNode  *node)
{
  node->next = self->head;
  self->head = node;
  ctok_atomic_store_release (&node->flags, CTOK_NODE_LINKED);
  self->n_listed++;
}

/* Takes @node off the list: *@link is the pointer to it, ->head or the
 * ->next of the node before it. */
static inline void
list_unlink (CtokNode **link,
             CtokNode  *node)
{
  *link = node->next;
  node->next = NULL;
  ctok_atomic_store_release (&node->flags, 0);
}

/* A node is removed from the middle of a long list only when that list is
 * compacted, since only a walk finds the node before it (and a doubly
 * linked list would touch both neighbours, each a cache miss when
 * callbacks go in another order than they came, 100,000 of them, say).
 * Until then the node stays in place, marked removed, its id already
 * stale; the cancel loop and compaction put it back in the free
 * list. The newest node is unlinked at once. (Once the token is cancelled,
 * its list belongs to the cancel loop: see remove_registration().)
 *
 * Compaction walks the whole list, node by node, and once nodes have been
 * reused for a while each step is a wait on memory. It runs when removed
 * nodes outnumber pending ones three to one: removing n registrations then
 * walks about 4n/3 nodes (2n if it ran at one to one), and a list holds at
 * most four nodes per pending registration, plus COMPACT_MIN_REMOVED. */
#define COMPACT_MIN_REMOVED 16
#define COMPACT_RATIO       3

static inline void node_recycle (CtokToken *self,
                                 CtokNode  *node,
                                 FreeRun   *run);
static inline void node_free    (CtokToken *self,
                                 CtokNode  *node,
                                 FreeRun   *run);

/* Frees the removed nodes, and points each pending one's ->prev at the
 * pending node HINT_AHEAD further down. */
static void
list_compact (CtokToken *self)
{
  FreeRun run = FREE_RUN_INIT;
  CtokNode *behind[HINT_AHEAD] = { NULL, };
  CtokNode **link = &self->head;
  CtokNode *node;
  guint n_kept = 0;

  while ((node = *link) != NULL)
    {
      if (node->prev != NULL)
        __builtin_prefetch (node->prev, 1);
      if (node->kind == CTOK_NODE_REMOVED)
        {
          list_unlink (link, node);
          node_free (self, node, &run);
        }
      else
        {
          guint slot = n_kept++ % HINT_AHEAD;

          if (behind[slot] != NULL)
            behind[slot]->prev = node;
          behind[slot] = node;
          link = &node->next;
        }
    }

  self->n_listed -= self->n_removed;
  self->n_removed = 0;
}

/* Takes a pending node out of the list of a token that is not cancelled,
 * for good: its id goes stale. */
static void
list_remove (CtokToken *self,
             CtokNode  *node)
{
  if (node == self->head)
    {
      list_unlink (&self->head, node);
      node_recycle (self, node, NULL);
      self->n_listed--;
      return;
    }

  ctok_atomic_store64 (&node->id, (node->id + CTOK_NODE_GENERATION) & CTOK_NODE_ID_MASK);
  node->kind = CTOK_NODE_REMOVED;
  self->n_removed++;
  if (self->n_removed >= COMPACT_MIN_REMOVED && self->n_removed / COMPACT_RATIO > self->n_listed - self->n_removed)
    list_compact (self);
}

static inline CtokNode *
node_take (CtokToken *self)
{
  CtokNode *node = self->free_nodes;

  if (node != NULL)
    {
      self->free_nodes = node->next;
      if (node->user_data != NULL)
        __builtin_prefetch (node->user_data, 1);
    }
  else
    node = ctok_node_alloc (self);

  return node;
}

/* Back to the free list, its id already stale; @run: the nodes freed with
 * it, or NULL. */
static inline void
node_free (CtokToken *self,
           CtokNode  *node,
           FreeRun   *run)
{
  node->kind = CTOK_NODE_FREE;
  ctok_atomic_store_release (&node->flags, 0);
  node->prev = NULL;
  node->user_data = NULL;
  if (run != NULL)
    {
      guint slot = run->n_freed++ % HINT_AHEAD;
      CtokNode *below = run->recent[slot];

      /* HINT_AHEAD down the free list, and freed a moment ago. */
      if (below != NULL)
        {
          node->user_data = below;
          below->prev = node;
        }
      run->recent[slot] = node;
    }
  node->next = self->free_nodes;
  self->free_nodes = node;
}

static inline void
node_recycle (CtokToken *self,
              CtokNode  *node,
              FreeRun   *run)
{
  /* A new generation: the id issued for this use goes stale right now. */
  ctok_atomic_store64 (&node->id, (node->id + CTOK_NODE_GENERATION) & CTOK_NODE_ID_MASK);
  node_free (self, node, run);
}

/* Fired registrations delivered to a main context ("in flight") stay owned
 * by the token, on their own list, until their GSource gives them back. */
static inline void
in_flight_push (CtokToken *self,
                CtokNode  *node)
{
  ctok_atomic_store_release (&node->flags, CTOK_NODE_IN_FLIGHT);
  node->prev = NULL;
  node->next = self->in_flight;
  if (self->in_flight != NULL)
    self->in_flight->prev = node;
  self->in_flight = node;
}

static inline void
in_flight_unlink (CtokToken *self,
                  CtokNode  *node)
{
  if (node->prev != NULL)
    node->prev->next = node->next;
  else
    self->in_flight = node->next;
  if (node->next != NULL)
    node->next->prev = node->prev;
}

/* Called with no lock held, for a node that will never run. */
static void
node_drop (CtokNode *node)
{
  switch ((CtokNodeKind) node->kind)
    {
    case CTOK_NODE_CALLBACK:
    case CTOK_NODE_INTERNAL:
      if (node->destroy != NULL)
        node->destroy (node->user_data);
      break;

    case CTOK_NODE_CONTEXT:
      ctok_context_source_drop (node->user_data);
      break;

    case CTOK_NODE_LINK_ANY:
    case CTOK_NODE_LINK_ALL:
      /* The parent will never cancel: the child keeps its state. */
      break;

    case CTOK_NODE_FREE:
    case CTOK_NODE_REMOVED:
    default:
      g_assert_not_reached ();
    }
}

/* What a token must do outside its lock once cancelled, collected by
 * begin_cancel() under the lock that switched its state. */
typedef struct
{
  GCancellable *cancellable;  /* a reference */
  CtokLink      link;         /* stolen */
  CtokLinks    *links;        /* stolen */
  CtokNode     *batch;        /* the registrations to run, newest first; NULL: none */
  CtokToken    *notifying;    /* the parent whose cancel loop, on this thread,
                               * cancelled the token; NULL otherwise */
  gboolean      listened;     /* it had a notify handler */
  gboolean      notified;     /* nothing to run or emit: the token went
                               * straight to STATE_NOTIFIED */
} StartWork;

/* What a cancel loop keeps across the tokens it notifies. */
typedef struct
{
  GThread      *thread;  /* this one */
  ReasonCredit  credit;
} NotifyLoop;

static gboolean begin_cancel        (CtokToken  *self,
                                     CtokReason *reason,
                                     guint64     consumed,
                                     gboolean    if_due,
                                     GThread    *thread,
                                     StartWork  *work);
static void     ctok_token_notify   (CtokToken  *self,
                                     StartWork  *work);
static gboolean remove_registration (CtokToken  *self,
                                     guint64     id,
                                     gboolean    wait);
static gboolean update_deadline_locked (CtokToken *self);
static void     propagate_deadline     (CtokToken *self);

/* A parent fired a link: returns the child if it must now be notified, or
 * NULL. The child is not referenced: its dispose waits for the link. @loop
 * is the parent's cancel loop, or NULL for a link run at registration. */
G_ALWAYS_INLINE static inline CtokToken *
link_fire (CtokToken    *parent,
           CtokNodeKind  kind,
           CtokToken    *child,
           guint64       id,
           NotifyLoop   *loop,
           StartWork    *work)
{
  CtokReason *reason;

  if (kind == CTOK_NODE_LINK_ALL)
    {
      CtokLinks *links;
      gboolean last;

      /* The links stay while a parent's registration is alive. */
      ctok_lock_acquire (&child->lock);
      links = child->links;
      last = links != NULL && g_atomic_int_dec_and_test (&links->remaining);
      ctok_lock_release (&child->lock);

      if (!last)
        return NULL;
    }

  /* The child's reason is the parent's: one shared, immutable error. */
  if (loop != NULL)
    reason = credit_take (&loop->credit, parent->reason);
  else
    reason = ctok_reason_ref (parent->reason);
  if (!begin_cancel (child, reason, id, FALSE, loop != NULL ? loop->thread : ctok_thread_self (), work))
    return NULL;

  /* A link the cancel loop runs has an id; one run at registration, not. */
  work->notifying = id != 0 ? parent : NULL;
  return child;
}

/* Called with no lock held, for a node the canceller took from the list.
 * Returns TRUE if the node stays in flight (released later with
 * ctok_token_release_node()). A linked child to notify next is returned in
 * @child. */
G_ALWAYS_INLINE static inline gboolean
node_run (CtokToken  *self,
          CtokNode   *node,
          CtokToken **child,
          NotifyLoop *loop,
          StartWork  *work)
{
  switch ((CtokNodeKind) node->kind)
    {
    case CTOK_NODE_CALLBACK:
    case CTOK_NODE_INTERNAL:
      node->callback (self, node->user_data);
      if (node->destroy != NULL)
        node->destroy (node->user_data);
      return FALSE;

    case CTOK_NODE_CONTEXT:
      ctok_context_source_fire (node->user_data, self, node);
      return TRUE;

    case CTOK_NODE_LINK_ANY:
    case CTOK_NODE_LINK_ALL:
      /* No recursion: the caller's loop notifies the child. */
      *child = link_fire (self, node->kind, node->user_data, node->id, loop, work);
      return FALSE;

    case CTOK_NODE_FREE:
    case CTOK_NODE_REMOVED:
    default:
      g_assert_not_reached ();
    }

  return FALSE;
}

/* Runs the callbacks of a registration made on a token that is already
 * cancelled, on the registering thread. */
static void
run_now (CtokToken         *self,
         CtokNodeKind       kind,
         CtokTokenCallback  callback,
         gpointer           user_data,
         GDestroyNotify     destroy)
{
  if (kind == CTOK_NODE_CONTEXT)
    {
      ctok_context_source_fire (user_data, self, NULL);
      return;
    }

  if (kind == CTOK_NODE_LINK_ANY || kind == CTOK_NODE_LINK_ALL)
    {
      /* Linking to a cancelled parent: the child is born cancelled. */
      StartWork work;
      CtokToken *child = link_fire (self, kind, user_data, 0, NULL, &work);

      if (child != NULL)
        ctok_token_notify (child, &work);
      return;
    }

  callback (self, user_data);
  if (destroy != NULL)
    destroy (user_data);
}

/* Inlined: it is most of ctok_token_register(). */
G_ALWAYS_INLINE static inline guint64
add_node (CtokToken         *self,
          CtokNodeKind       kind,
          CtokTokenCallback  callback,
          gpointer           user_data,
          GDestroyNotify     destroy)
{
  gboolean cancelled;
  CtokNode *node;
  guint64 id;

  ctok_lock_acquire (&self->lock);

  if G_LIKELY (can_cancel_locked (self))
    {
      node = node_take (self);
      node->kind = kind;
      node->callback = callback;
      node->user_data = user_data;
      node->destroy = destroy;
      list_push (self, node);
      id = node->id;
      ctok_lock_release (&self->lock);

      return id;
    }

  cancelled = g_atomic_int_get (&self->state) != STATE_NOT_CANCELLED;
  ctok_lock_release (&self->lock);

  /* Already cancelled: run now. Never cancellable: never runs. */
  if (cancelled)
    run_now (self, kind, callback, user_data, destroy);
  else if (kind == CTOK_NODE_CONTEXT)
    ctok_context_source_drop (user_data);
  else if (destroy != NULL)
    destroy (user_data);

  return 0;
}

guint64
ctok_token_add_internal (CtokToken         *self,
                         CtokTokenCallback  callback,
                         gpointer           user_data,
                         GDestroyNotify     destroy)
{
  return add_node (self, CTOK_NODE_INTERNAL, callback, user_data, destroy);
}

void
ctok_token_release_node (CtokToken *self,
                         CtokNode  *node)
{
  gboolean wake;

  ctok_lock_acquire (&self->lock);
  in_flight_unlink (self, node);
  node_recycle (self, node, NULL);
  wake = has_waiters (self);
  ctok_lock_release (&self->lock);

  if (wake)
    ctok_token_wake_waiters (self);
}

/* Takes every pending node @filter accepts (all when NULL) off the list of
 * a token that is not cancelled, and freezes it when @freeze is set. The
 * nodes stay owned by the token until dropped and recycled by drop_nodes().
 * Removed nodes go back to the free list first. */
static CtokNode *
steal_nodes (CtokToken *self,
             gboolean   freeze,
             gboolean (*filter) (CtokNode *node))
{
  CtokNode *stolen = NULL;
  CtokNode **link = &self->head;
  CtokNode *node;

  if (self->n_removed > 0)
    list_compact (self);

  while ((node = *link) != NULL)
    {
      if (filter != NULL && !filter (node))
        {
          link = &node->next;
          continue;
        }
      list_unlink (link, node);
      self->n_listed--;
      node->next = stolen;
      stolen = node;
    }

  if (freeze)
    g_atomic_int_or (&self->flags, TOKEN_FROZEN);

  return stolen;
}

static void
drop_nodes (CtokToken *self,
            CtokNode  *stolen)
{
  FreeRun run = FREE_RUN_INIT;
  CtokNode *node;
  CtokNode *next;

  if (stolen == NULL)
    return;

  for (node = stolen; node != NULL; node = node->next)
    node_drop (node);

  ctok_lock_acquire (&self->lock);
  for (node = stolen; node != NULL; node = next)
    {
      next = node->next;
      node_recycle (self, node, &run);
    }
  ctok_lock_release (&self->lock);
}

/* --- Cancellation --- */

/* Drops @n references to @object. GObject has no call for that, and a
 * cancel loop drops one for each child it cancels. On a count above 1,
 * g_object_unref() is one compare-and-swap, then, if the count went from 2
 * to 1 and the object has a toggle reference (a flag read before the swap),
 * a toggle notification. So as many references as keep the count at 2 come
 * off in one compare-and-swap, or at 1 when the object has no toggle
 * reference to tell (if probe_toggle_flag() found where GLib marks them);
 * the rest go through g_object_unref(). */
static void
unref_many (gpointer object,
            guint    n)
{
  volatile guint *count = &G_OBJECT (object)->ref_count;

  while (n > 0)
    {
      guint old = (guint) g_atomic_int_get (count);
      guint keep = 2;
      guint take;

      if (toggle_flag != 0 && (qdata_flags (object) & toggle_flag) == 0)
        keep = 1;
      if (old <= keep)
        break;
      take = MIN (n, old - keep);
      if (g_atomic_int_compare_and_exchange ((int *) count, (int) old, (int) (old - take)))
        n -= take;
    }

  for (; n > 0; n--)
    g_object_unref (object);
}

/* Lets go of a parent, removing this token's registration from it (waiting
 * if it is running on another thread). @notifying is a parent that this
 * thread is notifying, or NULL: dropping the last reference to it cannot
 * start a cascade of finalizations (its dispose keeps it alive until its
 * notification is done), so it skips the release queue; with @owed, its
 * cancel loop drops them later, all at once, and they are counted there
 * instead. */
G_ALWAYS_INLINE static inline void
release_link (const CtokLink *link,
              CtokToken      *notifying,
              guint          *owed)
{
  if (link->parent == NULL)
    return;

  if (link->id != 0)
    remove_registration (link->parent, link->id, TRUE);
  if (link->parent == notifying && owed != NULL)
    (*owed)++;
  else if (link->parent == notifying)
    g_object_unref (notifying);
  else
    ctok_release_object (link->parent);
}

/* Lets go of everything a token was linked to: @link, then the parents and
 * the foreign cancellable of @links (freed). */
static void
release_links (const CtokLink *link,
               CtokLinks      *links,
               CtokToken      *notifying,
               guint          *owed)
{
  release_link (link, notifying, owed);

  if (links == NULL)
    return;

  if (links->follow != NULL)
    ctok_follow_free (links->follow);
  for (guint i = 0; i < links->n_links; i++)
    release_link (&links->items[i], notifying, owed);

  links_free (links);
}

/* Takes what a token is linked to into @link and the returned record.
 * Called with the lock held. A cancelled token is linked to nothing:
 * begin_cancel() took it all, and its union holds other things since. */
static CtokLinks *
steal_links_locked (CtokToken *self,
                    CtokLink  *link)
{
  if (g_atomic_int_get (&self->state) != STATE_NOT_CANCELLED)
    {
      *link = (CtokLink) { NULL, 0 };
      return NULL;
    }

  *link = self->link;
  self->link = (CtokLink) { NULL, 0 };
  return g_steal_pointer (&self->links);
}

/* A parent's cancel loop ran registration @id, linking to it: it is spent,
 * and forgetting it spares the release a lookup. (By id, not by parent: a
 * child may be linked to the same parent twice.) */
static void
forget_registration (CtokLink  *link,
                     CtokLinks *links,
                     guint64    id)
{
  if (link->id == id)
    {
      link->id = 0;
      return;
    }

  if (links != NULL)
    for (guint i = 0; i < links->n_links; i++)
      if (links->items[i].id == id)
        {
          links->items[i].id = 0;
          return;
        }
}

/* Cancels the token with @reason (consumed): switches it to
 * STATE_NOTIFYING, run by @thread (this one), or straight to
 * STATE_NOTIFIED when there is nothing to notify. Only one caller ever
 * succeeds; it must then run ctok_token_notify(). When a parent's link does
 * it, that registration (@consumed) is spent (see forget_registration()).
 * With @if_due (the timer firing), it succeeds only if the token's own
 * deadline has come: a deadline moved later or cleared meanwhile wins. */
G_ALWAYS_INLINE static inline gboolean
begin_cancel (CtokToken  *self,
              CtokReason *reason,
              guint64     consumed,
              gboolean    if_due,
              GThread    *thread,
              StartWork  *work)
{
  gboolean listened;
  gboolean wake;

  if (g_atomic_int_get (&self->state) != STATE_NOT_CANCELLED)
    {
      ctok_reason_unref (reason);
      return FALSE;
    }

  /* A handler connected from now on is too late for the emission anyway. */
  listened = has_notify_handler (self);

  ctok_lock_acquire (&self->lock);

  if (!can_cancel_locked (self) ||
      (if_due && (self->deadline == NULL || self->deadline->own > g_get_monotonic_time ())))
    {
      ctok_lock_release (&self->lock);
      ctok_reason_unref (reason);
      return FALSE;
    }

  /* What start_notify() needs, in the same critical section. The shared
   * cancellable holds a reference from its token, so this one never
   * triggers a toggle notification. Without extras, the token's second
   * cache line is not even read. */
  work->cancellable = NULL;
  work->links = NULL;
  if (g_atomic_int_get (&self->flags) & TOKEN_EXTRAS)
    {
      if (self->cancellable != NULL)
        work->cancellable = g_object_ref (self->cancellable);
      work->links = g_steal_pointer (&self->links);
      /* Nothing pending is left behind: the deadline's work is done. */
      if (self->deadline != NULL)
        ctok_timer_disarm (&self->deadline->entry);
    }
  work->link = self->link;
  if (consumed != 0)
    forget_registration (&work->link, work->links, consumed);
  /* The cancel loop takes the whole list: nothing can be added any more
   * (a registration now runs at once), and a node it has not claimed yet
   * is still LINKED, for remove_registration() to take back. */
  work->batch = g_steal_pointer (&self->head);
  work->notifying = NULL;

  /* From here on, the token's unions hold what it needs once cancelled. */
  self->reason = reason;
  if (work->batch != NULL)
    ctok_atomic_store64 (&self->executing_id, 0);

  /* With nothing to run, nobody to tell, and no registration to remove
   * from a parent (only the link that fired, or none), the notification is
   * over before it starts: the token is not touched again, and may go at
   * once. Removing a registration from another parent must come first: it
   * waits for that parent's cancel loop, which may be firing it at this
   * token right now. */
  work->listened = listened;
  work->notified = work->batch == NULL && work->cancellable == NULL && !listened &&
                   work->links == NULL && work->link.id == 0;
  if (work->notified)
    {
      ctok_atomic_store_release (&self->executing_thread, NULL);
      set_state_locked (self, STATE_NOTIFIED);
    }
  else
    {
      ctok_atomic_store_release (&self->executing_thread, thread);
      set_state_locked (self, STATE_NOTIFYING);
    }
  wake = has_waiters (self);

  ctok_lock_release (&self->lock);

  if (wake)
    ctok_token_wake_waiters (self);

  return TRUE;
}

/* What a token does as soon as it is cancelled, before its callbacks: the
 * token's GCancellable is cancelled first (as .NET sets its wait handle
 * first), so callbacks and GIO see one consistent state. */
G_ALWAYS_INLINE static inline void
start_notify (CtokToken *self,
              StartWork *work,
              guint     *owed)
{
  /* A cancelled child needs its parents no more: long-lived parents do not
   * collect registrations of children that are done. */
  release_links (&work->link, work->links, work->notifying, owed);
  if (work->notified)
    return;

  if (work->cancellable != NULL)
    {
      g_cancellable_cancel (work->cancellable);
      g_object_unref (work->cancellable);
    }

  if (work->listened)
    notify_in_context (self, properties[PROP_CANCELLED]);
}

/* A token being notified: the registration of the token below it on the
 * stack whose link cancelled it (NULL at the bottom), the next registration
 * of its batch, those it is done with, to recycle, and the references its
 * cancelled children owe it (see release_links()). */
typedef struct
{
  CtokToken *token;
  CtokNode  *link;
  CtokNode  *next;
  CtokNode  *spent;    /* linked through ->next */
  guint      n_spent;
  guint      owed;
  CtokNode  *ahead;    /* PREFETCH_AHEAD registrations after @next */
  gboolean   shared;     /* nodes to recycle under the lock (see recycle_spent()) */
} NotifyFrame;

/* Gives the frame's spent nodes back to its token: their ids go stale.
 * With @done, the token runs nothing any more.
 *
 * While a token is being notified, its free list and spent nodes are its
 * cancel loop's alone (registrations run at once, and nothing else
 * recycles), unless the loop sent registrations to a main context (their
 * GSources give them back under the lock) or remove_registration() took
 * one back (it reads the node under the lock after taking it). Waiters need
 * no wake-up for ids going stale, only for @done, and finish_notify()
 * follows it. */
static void
recycle_spent (NotifyFrame *frame,
               gboolean     done)
{
  CtokToken *token = frame->token;
  CtokNode *node;
  CtokNode *next;
  gboolean wake = FALSE;

  if (frame->shared)
    ctok_lock_acquire (&token->lock);
  if (done)
    ctok_atomic_store64 (&token->executing_id, 0);
  for (node = frame->spent; node != NULL; node = next)
    {
      next = node->next;
      node_recycle (token, node, NULL);
    }
  if (frame->shared)
    {
      wake = has_waiters (token);
      ctok_lock_release (&token->lock);
    }

  frame->spent = NULL;
  frame->n_spent = 0;

  if (wake)
    ctok_token_wake_waiters (token);
}

/* Recycled in groups, while still in cache, one critical section each. */
#define SPENT_BATCH 64

static inline void
spend (NotifyFrame *frame,
       CtokNode    *node)
{
  node->next = frame->spent;
  frame->spent = node;
  if (++frame->n_spent == SPENT_BATCH)
    recycle_spent (frame, FALSE);
}

/* How a token's cancel loop claims its registrations (@claims). A token is
 * notified once in its life, so this only ever moves forward. */
enum
{
  CLAIMS_PLAIN = 0,  /* a load and a store: no other thread takes any back */
  CLAIMS_FENCING,    /* a thread is switching the loop to CLAIMS_ATOMIC */
  CLAIMS_ATOMIC,     /* a compare-and-swap, for the rest of the notification */
};

/* Claims the next node of the batch for running, unless a thread
 * unregistering it got there first (see remove_registration()). Either way
 * executing_id names it from now on, and whoever waited for the one before
 * is woken.
 *
 * Claiming is a compare-and-swap of the node's flags, against a thread that
 * takes the node back, except until such a thread first comes: then a load
 * and a store do, with no atomic operation. The first remover moves @claims
 * on and then calls ctok_membarrier(), so either this load of @claims sees
 * it, or the remover sees executing_id name this node, and leaves it to us
 * (see require_atomic_claims()). */
static inline gboolean
claim (CtokToken *token,
       CtokNode  *node)
{
  gboolean claimed;

  ctok_atomic_store64 (&token->executing_id, node->id);

  if (node->kind == CTOK_NODE_CONTEXT)
    {
      /* From now on, its GSource releases it. */
      ctok_lock_acquire (&token->lock);
      claimed = g_atomic_int_compare_and_exchange (&node->flags, CTOK_NODE_LINKED, 0);
      if (claimed)
        in_flight_push (token, node);
      ctok_lock_release (&token->lock);
    }
  else if (ctok_membarrier_works () &&
           (ctok_light_fence (), __atomic_load_n (&token->claims, __ATOMIC_RELAXED) == CLAIMS_PLAIN))
    {
      /* Nobody waits for executing_id to move on either: a thread that does
       * switches the claims first. */
      claimed = node->kind != CTOK_NODE_REMOVED &&
                __atomic_load_n (&node->flags, __ATOMIC_RELAXED) == CTOK_NODE_LINKED;
      if (claimed)
        __atomic_store_n (&node->flags, 0, __ATOMIC_RELAXED);
      return claimed;
    }
  else if (node->kind != CTOK_NODE_REMOVED)
    claimed = g_atomic_int_compare_and_exchange (&node->flags, CTOK_NODE_LINKED, 0);
  else
    {
      claimed = FALSE;
      __atomic_thread_fence (__ATOMIC_SEQ_CST);
    }

  /* The store above, then a full barrier (the compare-and-swap, the lock or
   * the fence), then this read: a thread that started waiting for the
   * previous registration before it is seen, one that starts after sees it
   * is over. */
  if (has_waiters (token))
    ctok_token_wake_waiters (token);

  return claimed;
}

/* Every registration of @token has run: it moves to STATE_NOTIFIED, with
 * no lock (nothing else changes its state now). A thread disposing the
 * token waits for this; after it, the token is not touched again (waking
 * uses its address only), unless it was dropped by its own callbacks or
 * notify handlers on this thread and so belongs to us. */
static void
finish_notify (CtokToken *token)
{
  gboolean resurrected;

  /* Only this thread sets the flag, in the token's dispose. */
  resurrected = (g_atomic_int_get (&token->flags) & TOKEN_RESURRECTED) != 0;
  if (resurrected)
    g_atomic_int_and (&token->flags, ~TOKEN_RESURRECTED);
  ctok_atomic_store_release (&token->executing_thread, NULL);

  /* No atomic read-modify-write, and has_waiters() reads the stripe, not
   * the token: see "Waiting" above. */
  ctok_atomic_store_release (&token->state, STATE_NOTIFIED);
  if (ctok_membarrier_works ())
    ctok_light_fence ();
  else
    __atomic_thread_fence (__ATOMIC_SEQ_CST);

  if (has_waiters (token))
    ctok_token_wake_waiters (token);
  if (resurrected)
    g_object_unref (token);
}

/* Prefetching. A parent cancelling many children reads each one's first
 * cache line or two (see struct _CtokToken), which nothing else brings in
 * ahead: the loop asks for them PREFETCH_AHEAD registrations early. A
 * registration's user_data is its child for a link, and whatever the caller
 * gave otherwise; either way only an address, and a prefetch never faults,
 * even on memory freed since (a child whose link was just taken back). The
 * first 64 bytes of an instance may straddle two lines: GLib's slice
 * allocator staggers where its slabs start. */
#define PREFETCH_AHEAD 8

static inline void
prefetch_head (gpointer instance)
{
  __builtin_prefetch (instance, 1);
  __builtin_prefetch ((guint8 *) instance + 63, 1);
}

/* Prefetches for the registration @ahead, which the loop reaches
 * PREFETCH_AHEAD registrations later: what its user_data points to (for a
 * link, the child's first 64 bytes), and the node it reaches as many
 * registrations after that (its ->prev hint, see list_push()), so that going
 * down the batch need not wait on memory when its nodes lie all over the
 * arena. */
static inline void
prefetch_ahead (CtokNode *ahead)
{
  prefetch_head (ahead->user_data);
  if (ahead->prev != NULL)
    __builtin_prefetch (ahead->prev, 1);
}

/* Prefetches for the first registrations of @batch; returns where the frame
 * goes on from. */
static inline CtokNode *
start_ahead (CtokNode *batch)
{
  CtokNode *node = batch;

  for (guint k = 0; k < PREFETCH_AHEAD && node != NULL; k++)
    {
      prefetch_ahead (node);
      node = node->next;
    }

  return node;
}

/* A frame's token has run every registration: it is done, and lets go of
 * what its cancelled children owed it. */
static void
frame_done (NotifyFrame *frame)
{
  recycle_spent (frame, TRUE);
  finish_notify (frame->token);
  unref_many (frame->token, frame->owed);
  frame->owed = 0;
}

/* The cancel loop. @self was cancelled by this thread (begin_cancel()).
 *
 * It takes no reference on the tokens it notifies: with GLib 2.74's
 * GObject, a reference taken while another thread disposes an object is
 * not safe. Instead a token's dispose waits while another thread notifies
 * it, and every path that starts a notification holds the token alive until
 * it returns: the caller's source, the parent's running link (until the
 * child is cancelled), the timer's firing entry, the cancellable bridges'
 * guards. A token dropped by one of its own callbacks resurrects itself in
 * its dispose, and this loop releases it when it is done.
 *
 * Each token's registrations are its batch, taken whole by begin_cancel().
 * The loop claims one at a time, newest first, with a compare-and-swap of
 * its flags (a thread unregistering it may clear them first, and so keep it
 * from running), and runs it with no lock held; while it runs, executing_id
 * names it, so that a thread unregistering it can wait for it to return.
 * Spent nodes go back to their token in groups. Tokens cancelled along the
 * way by linked registrations are pushed on a stack and drained in turn,
 * depth first (a child's callbacks run at its link's place in the parent's
 * order, as they would if the link called cancel), so a chain of any length
 * is a loop rather than a recursion. Three shortcuts keep linked trees
 * cheap: a child with nothing to run, nobody listening and no other parent
 * to leave is done by begin_cancel(), and one with nothing registered as
 * soon as it is notified, both with no frame; a child cancelled by its parent's last
 * registration replaces the parent on the stack, the parent being done; and
 * the references children hold on the parent that cancels them are dropped
 * together, when it is done. */
static void
ctok_token_notify (CtokToken *self,
                   StartWork *work)
{
  NotifyFrame inline_stack[16];
  NotifyFrame *stack = inline_stack;
  gsize stack_size = G_N_ELEMENTS (inline_stack);
  gsize depth = 0;
  NotifyLoop loop;

  start_notify (self, work, NULL);
  if (work->notified)
    return;
  if (work->batch == NULL)
    {
      finish_notify (self);
      return;
    }

  loop.thread = ctok_thread_self ();
  loop.credit = (ReasonCredit) { NULL, 0 };
  stack[depth++] = (NotifyFrame) { self, NULL, work->batch, NULL, 0, 0, start_ahead (work->batch), FALSE };

  while (depth > 0)
    {
      NotifyFrame *frame = &stack[depth - 1];
      CtokToken *token = frame->token;
      CtokNode *node = frame->next;
      CtokToken *child = NULL;
      StartWork child_work;
      gboolean in_flight;

      if (node == NULL)
        {
          /* Every registration has run. The link that cancelled the token
           * is done too: its parent recycles it with its own. */
          CtokNode *link = frame->link;

          frame_done (frame);
          depth--;
          if (link != NULL)
            spend (&stack[depth - 1], link);
          continue;
        }

      frame->next = node->next;
      if (frame->ahead != NULL && (frame->ahead = frame->ahead->next) != NULL)
        prefetch_ahead (frame->ahead);
      if (node->kind == CTOK_NODE_CONTEXT)
        frame->shared = TRUE;
      if (!claim (token, node))
        {
          frame->shared = TRUE;
          spend (frame, node);
          continue;
        }

      in_flight = node_run (token, node, &child, &loop, &child_work);
      if (child == NULL)
        {
          if (!in_flight)
            spend (frame, node);
          continue;
        }

      /* A linked child was cancelled: notify it now, depth first, while the
       * link that did it stays running. With nothing registered, it is done
       * at once; otherwise its registrations run next. */
      start_notify (child, &child_work, &frame->owed);
      if (child_work.notified || child_work.batch == NULL)
        {
          if (!child_work.notified)
            finish_notify (child);
          spend (frame, node);
          continue;
        }

      /* The link was the token's last registration: the token is done once
       * the child is cancelled, and the child takes its place on the stack,
       * so a chain of any length runs in constant space. (The link only
       * guards the child until it is cancelled: from then on, the child's
       * own dispose waits for its notification.) */
      if (frame->next == NULL)
        {
          spend (frame, node);
          frame_done (frame);
          frame->token = child;
          frame->next = child_work.batch;
          frame->ahead = start_ahead (child_work.batch);
          /* In a chain, the next token has registrations too, and they
           * touch its second line. */
          __builtin_prefetch ((guint8 *) child_work.batch->user_data + 127, 1);
          frame->shared = FALSE;
          continue;
        }

      if (depth == stack_size)
        {
          stack_size *= 2;
          if (stack == inline_stack)
            stack = g_memdup2 (inline_stack, sizeof inline_stack);
          stack = g_renew (NotifyFrame, stack, stack_size);
        }
      stack[depth++] = (NotifyFrame) { child, node, child_work.batch, NULL, 0, 0, start_ahead (child_work.batch), FALSE };
    }

  credit_settle (&loop.credit);
  if (stack != inline_stack)
    g_free (stack);
}

void
ctok_token_cancel_internal (CtokToken  *self,
                            CtokReason *reason)
{
  StartWork work;

  if (begin_cancel (self, reason, 0, FALSE, ctok_thread_self (), &work))
    ctok_token_notify (self, &work);
}

static gboolean
is_user_node (CtokNode *node)
{
  return node->kind == CTOK_NODE_CALLBACK || node->kind == CTOK_NODE_CONTEXT;
}

gboolean
ctok_token_try_reset_internal (CtokToken *self)
{
  gboolean changed = FALSE;
  CtokNode *stolen;

  ctok_lock_acquire (&self->lock);

  if (!can_cancel_locked (self))
    {
      ctok_lock_release (&self->lock);
      return FALSE;
    }

  /* Only the caller's registrations go; ctok's own plumbing stays armed. */
  stolen = steal_nodes (self, FALSE, is_user_node);
  /* As new: no deadline of its own (its parents' still apply). */
  if (self->deadline != NULL)
    {
      self->deadline->own = G_MAXINT64;
      changed = update_deadline_locked (self);
    }

  ctok_lock_release (&self->lock);

  drop_nodes (self, stolen);
  if (changed)
    propagate_deadline (self);

  return TRUE;
}

/* Freezes a token that is not cancelled: it never will be, so its
 * registrations can go now. A cancellation already under way keeps its
 * registrations: it runs them. */
static void
freeze (CtokToken *self)
{
  CtokNode *stolen = NULL;
  gboolean wake = FALSE;

  ctok_lock_acquire (&self->lock);
  if (can_cancel_locked (self))
    {
      stolen = steal_nodes (self, TRUE, NULL);
      wake = has_waiters (self);
    }
  ctok_lock_release (&self->lock);

  if (wake)
    ctok_token_wake_waiters (self);

  drop_nodes (self, stolen);
}

void
ctok_token_close_internal (CtokToken *self)
{
  CtokLink link;
  CtokLinks *links;
  gboolean changed = FALSE;

  ctok_lock_acquire (&self->lock);
  links = steal_links_locked (self, &link);
  ctok_lock_release (&self->lock);
  release_links (&link, links, NULL, NULL);

  /* A token that will never be cancelled has no deadline, and neither do
   * its children on its account: tell them before they are let go. */
  ctok_lock_acquire (&self->lock);
  if (g_atomic_int_get (&self->state) == STATE_NOT_CANCELLED && self->deadline != NULL)
    {
      self->deadline->own = G_MAXINT64;
      changed = update_deadline_locked (self);
    }
  ctok_lock_release (&self->lock);

  if (changed)
    propagate_deadline (self);

  freeze (self);
}

/* Links @self to @parents: it is cancelled when any of them is (or, with
 * @all, once all of them are). Called on a new token, before anyone else
 * can see it, but parents may cancel it while it is being linked. */
/* The usual link, to one parent: kept in the token itself. */
static void
link_one (CtokToken *self,
          CtokToken *parent)
{
  gboolean released;
  guint64 id;

  self->link.parent = g_object_ref (parent);

  /* Runs at once if the parent is already cancelled. */
  id = add_node (parent, CTOK_NODE_LINK_ANY, NULL, self, NULL);
  if (id == 0)
    return;

  /* Cancelled by the parent meanwhile: it took the link, not knowing the
   * registration, which nobody else will remove. */
  ctok_lock_acquire (&self->lock);
  released = g_atomic_int_get (&self->state) != STATE_NOT_CANCELLED;
  if (!released)
    self->link.id = id;
  ctok_lock_release (&self->lock);

  if (released)
    remove_registration (parent, id, TRUE);
}

/* Any other link: the @n_usable parents that can be cancelled, in a record. */
static void
link_many (CtokToken         *self,
           CtokToken * const *parents,
           gsize              n_parents,
           gsize              n_usable,
           gboolean           all)
{
  CtokNodeKind kind = all ? CTOK_NODE_LINK_ALL : CTOK_NODE_LINK_ANY;
  CtokLinks *links;

  links = links_new ((guint) n_usable);
  links->remaining = (int) MIN (n_usable, G_MAXINT);
  links->all = all;
  self->links = links;
  g_atomic_int_or (&self->flags, TOKEN_EXTRAS);

  for (gsize i = 0; i < n_parents; i++)
    {
      CtokToken *parent = parents[i];
      gboolean released;
      guint slot = 0;
      guint64 id;

      if (!ctok_token_can_be_cancelled (parent))
        continue;

      g_object_ref (parent);

      ctok_lock_acquire (&self->lock);
      /* Cancelled by a parent linked earlier: the links are gone. */
      released = self->links != links;
      if (!released)
        {
          slot = links->n_links++;
          links->items[slot].parent = parent;
        }
      ctok_lock_release (&self->lock);

      if (released)
        {
          ctok_release_object (parent);
          break;
        }

      /* Runs at once if the parent is already cancelled. */
      id = add_node (parent, kind, NULL, self, NULL);
      if (id == 0)
        continue;

      ctok_lock_acquire (&self->lock);
      released = self->links != links;
      if (!released)
        links->items[slot].id = id;
      ctok_lock_release (&self->lock);

      /* Released while we registered: nobody else will remove it. */
      if (released)
        remove_registration (parent, id, TRUE);
    }

}

void
ctok_token_link (CtokToken         *self,
                 CtokToken * const *parents,
                 gsize              n_parents,
                 gboolean           all)
{
  CtokToken *usable = NULL;
  gsize n_usable = 0;

  for (gsize i = 0; i < n_parents; i++)
    if (ctok_token_can_be_cancelled (parents[i]))
      {
        usable = parents[i];
        n_usable++;
      }

  /* Only the never-cancelled token, or nothing: a plain source. */
  if (n_usable == 0)
    return;

  if (n_usable == 1 && !all)
    link_one (self, usable);
  else
    link_many (self, parents, n_parents, n_usable, all);

  /* Inherit the parents' deadlines. Nobody can listen to notify yet. */
  ctok_lock_acquire (&self->lock);
  if (g_atomic_int_get (&self->state) == STATE_NOT_CANCELLED)
    update_deadline_locked (self);
  ctok_lock_release (&self->lock);
}

void
ctok_token_link_cancellable (CtokToken    *self,
                             GCancellable *cancellable)
{
  CtokLinks *links = links_new (0);
  CtokFollow *follow;
  gboolean released;

  self->links = links;
  g_atomic_int_or (&self->flags, TOKEN_EXTRAS);

  /* Cancels @self at once if @cancellable already is. */
  follow = ctok_follow_new (cancellable, self);

  ctok_lock_acquire (&self->lock);
  released = self->links != links;
  if (!released)
    links->follow = follow;
  ctok_lock_release (&self->lock);

  if (released)
    ctok_follow_free (follow);
}


/* --- Deadlines --- */

static inline gint64
effective_deadline (CtokToken *self)
{
  CtokDeadline *deadline = g_atomic_pointer_get (&self->deadline);

  return deadline != NULL ? ctok_atomic_load64 (&deadline->effective) : G_MAXINT64;
}

static CtokDeadline *
ensure_deadline_locked (CtokToken *self)
{
  CtokDeadline *deadline = self->deadline;

  if (deadline == NULL)
    {
      deadline = g_new0 (CtokDeadline, 1);
      deadline->token = self;
      deadline->own = G_MAXINT64;
      deadline->effective = G_MAXINT64;
      ctok_timer_entry_init (&deadline->entry);
      g_atomic_pointer_set (&self->deadline, deadline);
      g_atomic_int_or (&self->flags, TOKEN_EXTRAS);
    }

  return deadline;
}

/* Recomputes the effective deadline from the token's own and its parents',
 * and arms the own one only if it is the one that matters: a child whose
 * parent expires first needs no timer of its own. Called with the lock
 * held, on a token that is not cancelled. Returns TRUE if it changed. */
static gboolean
update_deadline_locked (CtokToken *self)
{
  CtokLinks *links = self->links;
  CtokDeadline *deadline;
  gint64 bound = G_MAXINT64;
  gint64 own;
  gint64 effective;
  gint64 old;

  if (self->link.parent != NULL)
    bound = effective_deadline (self->link.parent);
  else if (links != NULL && links->n_links > 0)
    {
      gboolean all = links->all;
      gboolean any_pending = FALSE;

      if (all)
        bound = G_MININT64;

      for (guint i = 0; i < links->n_links; i++)
        {
          CtokToken *parent = links->items[i].parent;
          gint64 parent_deadline;

          /* All-of: a parent already cancelled has done its part. */
          if (all && ctok_token_is_cancelled (parent))
            continue;

          parent_deadline = effective_deadline (parent);
          any_pending = TRUE;
          if (all)
            bound = MAX (bound, parent_deadline);
          else
            bound = MIN (bound, parent_deadline);
        }

      if (all && !any_pending)
        bound = G_MAXINT64;
    }

  own = self->deadline != NULL ? self->deadline->own : G_MAXINT64;
  effective = MIN (own, bound);
  old = effective_deadline (self);

  if (effective == G_MAXINT64 && self->deadline == NULL)
    return FALSE;

  deadline = ensure_deadline_locked (self);
  ctok_atomic_store64 (&deadline->effective, effective);

  if (own != G_MAXINT64 && own < bound)
    ctok_timer_arm (&deadline->entry, own);
  else
    ctok_timer_disarm (&deadline->entry);

  return effective != old;
}

static void
unpin (CtokToken *self)
{
  /* Only the address is used once the count may be zero. */
  if (PINS (g_atomic_int_add (&self->flags, -PIN_ONE)) == 1)
    ctok_token_wake_waiters (self);
}

static gboolean
unpinned (gpointer data)
{
  CtokToken *self = data;

  return PINS (g_atomic_int_get (&self->flags)) == 0;
}

/* @origin's effective deadline changed: notify, and carry the change down
 * to its linked descendants, iteratively. Children are reached through the
 * link registrations in each parent's list and pinned there, under the
 * parent's lock; a child's dispose removes its registrations and then waits
 * for its pins to go, so a pinned child stays valid. No reference is taken,
 * so no toggle notification can run under a lock. */
static void
propagate_deadline (CtokToken *origin)
{
  GPtrArray *pending = g_ptr_array_new ();
  GPtrArray *children = g_ptr_array_new ();
  CtokToken *token = origin;

  for (;;)
    {
      CtokNode *node;

      notify_in_context (token, properties[PROP_DEADLINE]);

      ctok_lock_acquire (&token->lock);
      for (node = token->head; node != NULL; node = node->next)
        if (node->kind == CTOK_NODE_LINK_ANY || node->kind == CTOK_NODE_LINK_ALL)
          {
            CtokToken *child = node->user_data;

            g_atomic_int_add (&child->flags, PIN_ONE);
            g_ptr_array_add (children, child);
          }
      ctok_lock_release (&token->lock);

      for (guint i = 0; i < children->len; i++)
        {
          CtokToken *child = g_ptr_array_index (children, i);
          gboolean changed = FALSE;

          ctok_lock_acquire (&child->lock);
          if (can_cancel_locked (child))
            changed = update_deadline_locked (child);
          ctok_lock_release (&child->lock);

          if (changed)
            g_ptr_array_add (pending, child);  /* stays pinned */
          else
            unpin (child);
        }
      g_ptr_array_set_size (children, 0);

      if (token != origin)
        unpin (token);

      if (pending->len == 0)
        break;
      token = g_ptr_array_steal_index_fast (pending, pending->len - 1);
    }

  g_ptr_array_unref (children);
  g_ptr_array_unref (pending);
}

/* Sets the token's own deadline (G_MAXINT64: none). A deadline that has
 * passed cancels at once, on this thread. */
void
ctok_token_set_deadline_internal (CtokToken *self,
                                  gint64     deadline_us)
{
  CtokDeadline *deadline;
  gboolean changed;

  ctok_lock_acquire (&self->lock);

  if (!can_cancel_locked (self))
    {
      ctok_lock_release (&self->lock);
      return;
    }

  deadline = ensure_deadline_locked (self);
  deadline->own = deadline_us;

  if (deadline_us != G_MAXINT64 && deadline_us <= g_get_monotonic_time ())
    {
      /* Passed already: this thread cancels, not the timer. The token
       * keeps it as its deadline. */
      ctok_timer_disarm (&deadline->entry);
      ctok_atomic_store64 (&deadline->effective, MIN (deadline_us, deadline->effective));
      ctok_lock_release (&self->lock);

      ctok_token_cancel_internal (self, ctok_reason_new_timed_out ());
      return;
    }

  changed = update_deadline_locked (self);

  ctok_lock_release (&self->lock);

  if (changed)
    propagate_deadline (self);
}

gint64
ctok_token_get_own_deadline (CtokToken *self)
{
  gint64 own = G_MAXINT64;

  ctok_lock_acquire (&self->lock);
  if (g_atomic_int_get (&self->state) == STATE_NOT_CANCELLED && self->deadline != NULL)
    own = self->deadline->own;
  ctok_lock_release (&self->lock);

  return own;
}

/* Called on the timer thread. The token is alive: its dispose waits for a
 * firing entry with ctok_timer_disarm_sync(). */
void
ctok_token_deadline_expired (CtokTimerEntry *entry)
{
  CtokDeadline *deadline = (CtokDeadline *) (gpointer) ((guint8 *) entry - G_STRUCT_OFFSET (CtokDeadline, entry));
  CtokToken *self = deadline->token;
  StartWork work;

  /* Checked under the lock that cancels: a deadline moved later, cleared,
   * or reset while the timer was taking it out wins. */
  if (begin_cancel (self, ctok_reason_new_timed_out (), 0, TRUE, ctok_thread_self (), &work))
    ctok_token_notify (self, &work);
}

/* --- Unregistering --- */

typedef struct
{
  CtokToken *token;
  guint64    id;
} ExecutingWait;

static gboolean
executing_done (gpointer data)
{
  ExecutingWait *wait = data;

  return ctok_atomic_load64 (&wait->token->executing_id) != wait->id;
}

typedef struct
{
  CtokNode *node;
  guint64   id;
} NodeWait;

/* The arena never frees nodes, so this is safe after the node is reused. */
static gboolean
node_released (gpointer data)
{
  NodeWait *wait = data;

  return ctok_atomic_load64 (&wait->node->id) != wait->id;
}

/* A thread other than the one notifying @self taking back a registration
 * that is still LINKED must first tell the cancel loop (see claim()). */
static inline gboolean
must_fence (CtokToken *self)
{
  return ctok_membarrier_works () &&
         g_atomic_pointer_get (&self->executing_thread) != ctok_thread_self ();
}

/* Makes @self's cancel loop claim with a compare-and-swap from its next
 * claim on, for good. Once this returns, a node the loop claimed the plain
 * way is one that executing_id names or named before: its flags were
 * cleared before executing_id moved on (a release store), so a thread that
 * reads executing_id and then the flags sees them cleared.
 *
 * Only the first thread pays for ctok_membarrier(), a few microseconds on
 * every CPU running the process, and not once per registration taken back:
 * a thread that finds CLAIMS_ATOMIC read it after the membarrier of the
 * thread that stored it, and that membarrier already made the loop's plain
 * claims visible to every thread. One that finds CLAIMS_FENCING cannot
 * know whether that call is done, and makes its own. */
static void
require_atomic_claims (CtokToken *self)
{
  if (g_atomic_int_get (&self->claims) == CLAIMS_ATOMIC)
    return;

  g_atomic_int_compare_and_exchange (&self->claims, CLAIMS_PLAIN, CLAIMS_FENCING);
  ctok_membarrier ();
  g_atomic_int_set (&self->claims, CLAIMS_ATOMIC);
}

static gboolean
remove_registration (CtokToken *self,
                     guint64    id,
                     gboolean   wait)
{
  CtokNode *node = ctok_node_lookup (id);
  gboolean fenced = FALSE;
  gboolean must_wait;
  CtokNode copy;

  if (node == NULL)
    return FALSE;

again:
  ctok_lock_acquire (&self->lock);

  if (g_atomic_pointer_get (&node->owner) != self || ctok_atomic_load64 (&node->id) != id)
    {
      CtokToken *owner = g_atomic_pointer_get (&node->owner);

      ctok_lock_release (&self->lock);

      /* The registration is alive, on another token: a programmer error,
       * unlike a stale id, which is simply gone. */
      if (owner != NULL && owner != self && ctok_atomic_load64 (&node->id) == id)
        g_critical ("%s: registration %" G_GUINT64_FORMAT " belongs to another token",
                    G_STRFUNC, id);
      return FALSE;
    }

  /* In a cancel loop's batch, which may be claiming nodes with no atomic
   * operation: make it use one from now on, then look again. */
  if (!fenced &&
      g_atomic_int_get (&node->flags) == CTOK_NODE_LINKED &&
      g_atomic_int_get (&self->state) != STATE_NOT_CANCELLED &&
      must_fence (self))
    {
      ctok_lock_release (&self->lock);
      require_atomic_claims (self);
      fenced = TRUE;
      goto again;
    }

  /* Not started: it will never run. Before cancellation it leaves the list;
   * after, it is in the cancel loop's batch, and whoever of us and the loop
   * clears its LINKED flag first has it (the loop then recycles it). The
   * node executing_id names may have been claimed before the loop saw us,
   * with no compare-and-swap: it is the loop's. */
  if (g_atomic_int_get (&node->flags) == CTOK_NODE_LINKED &&
      (g_atomic_int_get (&self->state) == STATE_NOT_CANCELLED ||
       ((!fenced || ctok_atomic_load64 (&self->executing_id) != id) &&
        g_atomic_int_compare_and_exchange (&node->flags, CTOK_NODE_LINKED, 0))))
    {
      /* What node_drop() needs. */
      copy.kind = node->kind;
      copy.user_data = node->user_data;
      copy.destroy = node->destroy;
      if (g_atomic_int_get (&self->state) == STATE_NOT_CANCELLED)
        list_remove (self, node);
      ctok_lock_release (&self->lock);

      node_drop (&copy);
      return TRUE;
    }

  if (g_atomic_int_get (&node->flags) == CTOK_NODE_IN_FLIGHT)
    {
      /* Fired, delivered to a main context. The GSource cannot release the
       * node (nor go away) while we hold the token's lock. */
      CtokWithdraw result = ctok_context_source_withdraw_locked (node->user_data);

      ctok_lock_release (&self->lock);

      if (result == CTOK_WITHDRAW_RUNNING_ELSEWHERE && wait)
        {
          NodeWait data = { node, id };

          block_until (self, node_released, &data, -1);
        }

      return result == CTOK_WITHDRAW_DONE;
    }

  must_wait = wait &&
              g_atomic_int_get (&self->state) != STATE_NOT_CANCELLED &&
              ctok_atomic_load64 (&self->executing_id) == id &&
              g_atomic_pointer_get (&self->executing_thread) != ctok_thread_self ();

  ctok_lock_release (&self->lock);

  /* The loop wakes those waiting for executing_id to move on only once its
   * claims are atomic (see claim()). */
  if (must_wait)
    {
      ExecutingWait data = { self, id };

      if (!fenced && must_fence (self))
        require_atomic_claims (self);
      block_until (self, executing_done, &data, -1);
    }

  return FALSE;
}

/* --- GObject --- */

/* Main-context deliveries of a token's callbacks borrow the token: before it
 * goes, take back those not dispatched yet (their destroy notifies still run
 * in their contexts), and wait for one being dispatched right now. */
static void
orphan_in_flight (CtokToken *self)
{
  ctok_lock_acquire (&self->lock);

  while (self->in_flight != NULL)
    {
      CtokNode *node = self->in_flight;

      if (ctok_context_source_orphan_locked (node->user_data))
        {
          in_flight_unlink (self, node);
          node_recycle (self, node, NULL);
        }
      else
        {
          NodeWait data = { node, node->id };

          ctok_lock_release (&self->lock);
          block_until (self, node_released, &data, -1);
          ctok_lock_acquire (&self->lock);
        }
    }

  ctok_lock_release (&self->lock);
}

static gboolean
notified (gpointer data)
{
  CtokToken *self = data;

  return g_atomic_int_get (&self->state) != STATE_NOTIFYING;
}

static void
ctok_token_dispose (GObject *object)
{
  CtokToken *self = CTOK_TOKEN (object);
  GThread *thread = ctok_thread_self ();
  GCancellable *cancellable;
  CtokNode *stolen = NULL;
  CtokLink link = { NULL, 0 };
  CtokLinks *links = NULL;
  gboolean in_flight;
  gboolean wake = FALSE;

  ctok_lock_acquire (&self->lock);

  /* Dropped by one of its own callbacks: this thread's cancel loop is still
   * using it. Keep it alive (no other thread can hold it any more) until
   * the loop is done, which then drops this reference. */
  if (g_atomic_int_get (&self->state) == STATE_NOTIFYING && g_atomic_pointer_get (&self->executing_thread) == thread)
    {
      g_atomic_int_or (&self->flags, TOKEN_RESURRECTED);
      ctok_lock_release (&self->lock);
      g_object_ref (self);
      return;
    }

  /* Nobody can cancel a token nobody references: from here on no
   * cancellation can start, and its registrations go now. */
  if (can_cancel_locked (self))
    {
      stolen = steal_nodes (self, TRUE, NULL);
      wake = has_waiters (self);
    }
  cancellable = g_steal_pointer (&self->cancellable);
  links = steal_links_locked (self, &link);
  in_flight = self->in_flight != NULL;

  ctok_lock_release (&self->lock);

  if (wake)
    ctok_token_wake_waiters (self);
  drop_nodes (self, stolen);

  /* A cancellation that started may be running on another thread: let it
   * finish with the token. Its last touch is the change of state (see
   * finish_notify()). */
  if (!notified (self))
    ctok_token_block_until (self, notified, self);

  /* The shared cancellable, parents, the timer and deadline updates use the
   * token without a reference: take it out of their hands. */
  if (cancellable != NULL)
    {
      ctok_cancellable_detach (cancellable);
      g_object_unref (cancellable);
    }
  release_links (&link, links, NULL, NULL);
  if (self->deadline != NULL)
    ctok_timer_disarm_sync (&self->deadline->entry);
  if (PINS (g_atomic_int_get (&self->flags)) > 0)
    ctok_token_block_until (self, unpinned, self);
  if (in_flight)
    orphan_in_flight (self);

  G_OBJECT_CLASS (ctok_token_parent_class)->dispose (object);
}

static void
ctok_token_finalize (GObject *object)
{
  CtokToken *self = CTOK_TOKEN (object);

  g_assert (self->head == NULL);
  g_assert (self->in_flight == NULL);
  g_assert (self->links == NULL);

  ctok_node_release_list (g_steal_pointer (&self->free_nodes));
  if (g_atomic_int_get (&self->state) == STATE_NOT_CANCELLED)
    g_assert (self->link.parent == NULL);
  else
    ctok_reason_unref (self->reason);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->deadline, g_free);
  ctok_lock_clear (&self->lock);

  G_OBJECT_CLASS (ctok_token_parent_class)->finalize (object);
}

static void
ctok_token_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  CtokToken *self = CTOK_TOKEN (object);

  switch (prop_id)
    {
    case PROP_CANCELLED:
      g_value_set_boolean (value, ctok_token_is_cancelled (self));
      break;

    case PROP_DEADLINE:
      g_value_set_int64 (value, ctok_token_get_deadline (self));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
ctok_token_class_init (CtokTokenClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = ctok_token_dispose;
  object_class->finalize = ctok_token_finalize;
  object_class->get_property = ctok_token_get_property;

  /**
   * CtokToken:cancelled: (getter is_cancelled)
   *
   * Whether the token is cancelled.
   *
   * Change notification is emitted in the [struct@GLib.MainContext] that was
   * the thread-default one when the token was created (the global default
   * context if none was): at once if the cancelling thread is running that
   * context, or is the thread that created the token while no thread runs
   * the context (a program without a main loop); otherwise from an idle
   * callback in the context, even if its thread is busy elsewhere. So
   * `g_object_bind_property (token, "cancelled", button, "sensitive",
   * G_BINDING_INVERT_BOOLEAN)` updates a widget in its own thread whatever
   * thread cancels.
   *
   * Since: 1.0
   */
  properties[PROP_CANCELLED] =
    g_param_spec_boolean ("cancelled", NULL, NULL,
                          FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * CtokToken:deadline: (getter get_deadline)
   *
   * The token's effective deadline, on the [func@GLib.get_monotonic_time]
   * clock: the earliest of its source's deadline and those of every token
   * it is linked to, at any depth; `G_MAXINT64` when there is none.
   *
   * It changes when a deadline is set or moved anywhere up the chain, and is
   * notified like [property@Ctok.Token:cancelled], in the token's main
   * context. It stays as it was once the token is cancelled.
   *
   * Since: 1.0
   */
  properties[PROP_DEADLINE] =
    g_param_spec_int64 ("deadline", NULL, NULL,
                        G_MININT64, G_MAXINT64, G_MAXINT64,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  notify_signal_id = g_signal_lookup ("notify", G_TYPE_OBJECT);
  probe_notify_flags ();
  probe_toggle_flag ();

  /* GIO's error quark, which every reason uses: registering it takes tens
   * of microseconds, paid here rather than by whoever cancels first. (The
   * first translation costs as much, but GLib decides then, once for the
   * process, whether to translate at all, from the application's locale
   * and text domain: that must stay at the first message.) */
  g_io_error_quark ();

  g_atomic_pointer_set (&token_class, klass);
}

/* The creating thread, and its thread-default context, where notify goes. */
static void
set_home (CtokToken *self,
          GThread   *thread)
{
  GMainContext *context = g_main_context_get_thread_default ();

  self->home = thread;
  self->context = context != NULL ? g_main_context_ref (context) : NULL;
}

static void
ctok_token_init (CtokToken *self)
{
  ctok_lock_init (&self->lock);
  set_home (self, ctok_thread_self ());
}

CtokToken *
ctok_token_new_internal (void)
{
  return g_object_new (CTOK_TYPE_TOKEN, NULL);
}

/* --- Recycling ---
 *
 * A GObject costs more to create and finalize than everything else a
 * source does (on GLib 2.74, g_object_new() and the last unref of an empty
 * final type take about 220 ns), and a source needs two: itself and its
 * token. Most tokens never meet anyone but their source and the operations
 * that borrowed them. When a source goes and its token is in that state (no
 * other reference, no weak reference or qdata, no notify handler, no
 * registration, GCancellable or cancellation), the token is reset and kept
 * in a small cache of the thread, for the next source made on that thread.
 * Nothing can tell a recycled token from a new one but its address. */

#define TOKEN_CACHE_SIZE 32

typedef struct
{
  GThread   *thread;
  guint      n_tokens;
  CtokToken *tokens[TOKEN_CACHE_SIZE];
} TokenCache;

/* The cache is found through a C11 thread-local pointer (a few times
 * cheaper than a GPrivate lookup) and freed at thread exit by a GPrivate. */
static _Thread_local TokenCache *token_cache;

static void
token_cache_free (gpointer data)
{
  TokenCache *cache = data;

  token_cache = NULL;
  while (cache->n_tokens > 0)
    g_object_unref (cache->tokens[--cache->n_tokens]);
  g_free (cache);
}

static GPrivate token_cache_key = G_PRIVATE_INIT (token_cache_free);

static TokenCache *
get_token_cache (void)
{
  TokenCache *cache = token_cache;

  if G_UNLIKELY (cache == NULL)
    {
      cache = g_new0 (TokenCache, 1);
      cache->thread = ctok_thread_self ();
      g_private_set (&token_cache_key, cache);
      token_cache = cache;
    }

  return cache;
}

/* A token for a new source: a recycled one, or a new one. */
CtokToken *
ctok_token_new_for_source (void)
{
  TokenCache *cache = token_cache;
  CtokToken *self;

  if (cache == NULL || cache->n_tokens == 0)
    return ctok_token_new_internal ();

  /* Nobody else knows it: no lock needed. It may come from a source made
   * on another thread. */
  self = cache->tokens[--cache->n_tokens];
  set_home (self, cache->thread);

  return self;
}

static inline gboolean
has_qdata (CtokToken *self)
{
  return ((gsize) g_atomic_pointer_get (&G_OBJECT (self)->qdata) & ~QDATA_FLAGS_MASK) != 0;
}

static gboolean
try_recycle (CtokToken *self)
{
  GMainContext *context;
  TokenCache *cache;
  gboolean pristine;

  /* Quick checks first: the recycled state is also the common one. The
   * reference is ours, so nothing that needs one can appear meanwhile. */
  if (g_atomic_int_get (&G_OBJECT (self)->ref_count) != 1 ||
      has_qdata (self) ||
      g_atomic_int_get (&self->state) != STATE_NOT_CANCELLED ||
      (g_atomic_int_get (&self->flags) & ~TOKEN_EXTRAS) != 0)
    return FALSE;

  cache = get_token_cache ();
  if (cache->n_tokens == TOKEN_CACHE_SIZE || has_notify_handler (self))
    return FALSE;

  ctok_lock_acquire (&self->lock);

  /* As dispose does: out of the parents' and the timer's hands, waiting for
   * a link or a deadline that fires on another thread right now. */
  if ((g_atomic_int_get (&self->state) == STATE_NOT_CANCELLED &&
       (self->link.parent != NULL || self->links != NULL)) ||
      self->deadline != NULL)
    {
      CtokLink link = { NULL, 0 };
      CtokLinks *links = steal_links_locked (self, &link);

      ctok_lock_release (&self->lock);
      release_links (&link, links, NULL, NULL);
      if (g_atomic_pointer_get (&self->deadline) != NULL)
        ctok_timer_disarm_sync (&self->deadline->entry);
      ctok_lock_acquire (&self->lock);
    }

  /* Registrations removed out of order may linger in the list. */
  if (g_atomic_int_get (&self->state) == STATE_NOT_CANCELLED &&
      self->n_removed > 0 && self->n_listed == self->n_removed)
    list_compact (self);

  pristine = g_atomic_int_get (&self->state) == STATE_NOT_CANCELLED &&
             (g_atomic_int_get (&self->flags) & ~TOKEN_EXTRAS) == 0 &&
             self->head == NULL && self->in_flight == NULL &&
             self->cancellable == NULL && self->link.parent == NULL && self->links == NULL;
  if (pristine && self->deadline != NULL)
    {
      self->deadline->own = G_MAXINT64;
      ctok_atomic_store64 (&self->deadline->effective, G_MAXINT64);
    }
  context = pristine ? g_steal_pointer (&self->context) : NULL;
  ctok_lock_release (&self->lock);

  if (!pristine)
    return FALSE;

  /* A cached token holds no context alive. */
  if (context != NULL)
    g_main_context_unref (context);
  cache->tokens[cache->n_tokens++] = self;

  return TRUE;
}

/* A source keeps its closed flag in its token. Returns TRUE if it was not
 * closed yet. */
gboolean
ctok_token_mark_source_closed (CtokToken *self)
{
  return (g_atomic_int_or (&self->flags, TOKEN_SOURCE_CLOSED) & TOKEN_SOURCE_CLOSED) == 0;
}

gboolean
ctok_token_is_source_closed (CtokToken *self)
{
  return (g_atomic_int_get (&self->flags) & TOKEN_SOURCE_CLOSED) != 0;
}

/* Drops the reference a source holds on its token. */
void
ctok_token_release_from_source (CtokToken *self)
{
  if (!try_recycle (self))
    ctok_release_object (self);
}

/* --- Notifications in the token's main context --- */

/* Holds a weak reference: the token may be in its dispose on another thread
 * when this is queued, and a strong one could outlive that dispose. */
typedef struct
{
  GWeakRef    object;
  GParamSpec *pspec;
} DeferredNotify;

/* Under ThreadSanitizer only: what GLib allocates while a deferred notify
 * is attached from this thread (the idle's callback record, the context's
 * lists) is freed by the context's thread, ordered by the context's lock
 * inside libglib, which ThreadSanitizer cannot see. A lock of ours held
 * around the attach, and taken by the dispatching side, shows that order. */
#ifdef CTOK_TSAN
static CtokMutex handoff_mutex;
# define handoff_lock()   ctok_mutex_lock (&handoff_mutex)
# define handoff_unlock() ctok_mutex_unlock (&handoff_mutex)
#else
# define handoff_lock()   G_STMT_START { } G_STMT_END
# define handoff_unlock() G_STMT_START { } G_STMT_END
#endif

static void
deferred_notify_free (gpointer data)
{
  DeferredNotify *deferred = data;

  handoff_lock ();
  handoff_unlock ();
  ctok_tsan_acquire (deferred);
  g_weak_ref_clear (&deferred->object);
  g_free (deferred);
}

static gboolean
deferred_notify_dispatch (gpointer data)
{
  DeferredNotify *deferred = data;
  GObject *object;

  handoff_lock ();
  handoff_unlock ();
  ctok_tsan_acquire (deferred);
  object = g_weak_ref_get (&deferred->object);

  if (object != NULL)
    {
      g_object_notify_by_pspec (object, deferred->pspec);
      g_object_unref (object);
    }

  return G_SOURCE_REMOVE;
}

/* Emits notify for @pspec in the token's main context: at once if this
 * thread runs that context, or is the thread that created the token while
 * nobody runs it (a program without a main loop); otherwise from an idle in
 * it. Acquiring the context is not enough: a timer or worker thread can
 * acquire it while its thread is busy elsewhere, and GTK's handlers must
 * not run there. A token nobody listens to costs one check: GObject's own
 * shortcut for objects without notify handlers is lost if a class
 * overrides how notifications are dispatched, so we look first instead. */
static void
notify_in_context (CtokToken  *self,
                   GParamSpec *pspec)
{
  GMainContext *context;
  DeferredNotify *deferred;
  GSource *idle;

  if (!has_notify_handler (self))
    return;

  context = self->context != NULL ? self->context : g_main_context_default ();
  if (g_main_context_is_owner (context))
    {
      g_object_notify_by_pspec (G_OBJECT (self), pspec);
      return;
    }
  if (self->home == ctok_thread_self () && g_main_context_acquire (context))
    {
      g_object_notify_by_pspec (G_OBJECT (self), pspec);
      g_main_context_release (context);
      return;
    }

  /* Another thread runs the context: notify there. */
  deferred = g_new0 (DeferredNotify, 1);
  g_weak_ref_init (&deferred->object, self);
  deferred->pspec = pspec;  /* the class keeps it */
  ctok_tsan_release (deferred);

  idle = g_idle_source_new ();
  g_source_set_priority (idle, G_PRIORITY_DEFAULT);
  g_source_set_static_name (idle, "[ctok] notify");
  handoff_lock ();
  g_source_set_callback (idle, deferred_notify_dispatch, deferred, deferred_notify_free);
  g_source_attach (idle, context);
  g_source_unref (idle);
  handoff_unlock ();
}

/* --- Public API --- */

/**
 * ctok_token_get_none:
 *
 * Gets the token that is never cancelled, for calls that take a token when
 * the caller has no reason to cancel (the equivalent of passing `NULL` as a
 * [class@Gio.Cancellable]).
 *
 * Registering a callback on it stores nothing: the callback never runs and
 * its destroy notify runs at once. [method@Ctok.Token.get_cancellable]
 * returns `NULL` for it, which GIO reads as "not cancellable".
 *
 * This function is thread-safe.
 *
 * Returns: (transfer none): the never-cancelled token
 *
 * Since: 1.0
 */
CtokToken *
ctok_token_get_none (void)
{
  static CtokToken *none;

  if (g_once_init_enter (&none))
    {
      CtokToken *token = ctok_token_new_internal ();

      token->flags = TOKEN_NONE;
      g_once_init_leave (&none, token);
    }

  return none;
}

/**
 * ctok_token_can_be_cancelled:
 * @self: a token
 *
 * Checks whether @self can ever be cancelled: this is `FALSE` only for the
 * token returned by [func@Ctok.Token.get_none], so that code can skip work
 * (such as registering callbacks) that only matters for cancellable tokens.
 *
 * This function is thread-safe.
 *
 * Returns: `FALSE` for the never-cancelled token, `TRUE` otherwise
 *
 * Since: 1.0
 */
gboolean
ctok_token_can_be_cancelled (CtokToken *self)
{
  g_return_val_if_fail (CTOK_IS_TOKEN (self), FALSE);

  return (g_atomic_int_get (&self->flags) & TOKEN_NONE) == 0;
}

/**
 * ctok_token_is_cancelled: (get-property cancelled)
 * @self: a token
 *
 * Checks whether @self is cancelled. It is `TRUE` from the moment
 * cancellation starts, before any callback has run, and stays `TRUE`.
 *
 * This function is thread-safe and lock-free: a single atomic load.
 *
 * Returns: `TRUE` if the token is cancelled
 *
 * Since: 1.0
 */
/* The check of anything that may not be a token, out of line: the hot
 * path of ctok_token_is_cancelled() then needs no stack frame. Cold, so
 * that the hot path falls through with no branch taken (1.5 ns a check
 * instead of 1.6 here). */
static G_GNUC_NO_INLINE __attribute__ ((cold)) gboolean
is_cancelled_checked (CtokToken *self)
{
  if (!CTOK_IS_TOKEN (self))
    {
      g_return_if_fail_warning (G_LOG_DOMAIN, "ctok_token_is_cancelled", "CTOK_IS_TOKEN (self)");
      return FALSE;
    }

  return g_atomic_int_get (&self->state) != STATE_NOT_CANCELLED;
}

gboolean
ctok_token_is_cancelled (CtokToken *self)
{
  if G_UNLIKELY (self == NULL ||
                 ((GTypeInstance *) self)->g_class != g_atomic_pointer_get (&token_class))
    return is_cancelled_checked (self);

  return g_atomic_int_get (&self->state) & STATE_CANCELLED;
}

/* Returns the reason if the token is cancelled. The reason never changes
 * once set, and lives as long as the token. */
static inline const GError *
peek_error (CtokToken *self)
{
  if (g_atomic_int_get (&self->state) == STATE_NOT_CANCELLED)
    return NULL;

  return ctok_reason_get_error (self->reason);
}

/**
 * ctok_token_set_error_if_cancelled:
 * @self: a token
 * @error: a return location for the reason the token was cancelled
 *
 * Sets @error to a copy of the reason @self was cancelled for, if it is:
 * `G_IO_ERROR_CANCELLED` for a plain cancel, `G_IO_ERROR_TIMED_OUT` for a
 * deadline, or the error given to [method@Ctok.TokenSource.cancel_with_error].
 *
 * From Python and JavaScript this raises or throws the reason as a
 * `GLib.Error`.
 *
 * This function is thread-safe.
 *
 * Returns: `TRUE` if the token is cancelled (and @error was set)
 *
 * Since: 1.0
 */
gboolean
ctok_token_set_error_if_cancelled (CtokToken  *self,
                                   GError    **error)
{
  const GError *reason;

  g_return_val_if_fail (CTOK_IS_TOKEN (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  reason = peek_error (self);
  if (reason == NULL)
    return FALSE;

  if (error != NULL)
    *error = g_error_copy (reason);

  return TRUE;
}

/**
 * ctok_token_dup_error:
 * @self: a token
 *
 * Gets a copy of the reason @self was cancelled for.
 *
 * This function is thread-safe.
 *
 * Returns: (transfer full) (nullable): the reason, or `NULL` if the token is
 *   not cancelled
 *
 * Since: 1.0
 */
GError *
ctok_token_dup_error (CtokToken *self)
{
  const GError *reason;

  g_return_val_if_fail (CTOK_IS_TOKEN (self), NULL);

  reason = peek_error (self);
  return reason != NULL ? g_error_copy (reason) : NULL;
}

/**
 * ctok_token_register: (skip)
 * @self: a token
 * @callback: (scope notified) (closure user_data) (destroy destroy): the
 *   function to call when @self is cancelled
 * @user_data: data for @callback
 * @destroy: (nullable): a function to free @user_data, called exactly once:
 *   after @callback has run, or when the registration is removed without
 *   running
 *
 * Registers @callback to run when @self is cancelled.
 *
 * @callback runs synchronously on the thread that cancels (for a deadline,
 * ctok's timer thread), with no ctok lock held; registrations run newest
 * first. If @self is already cancelled, @callback runs at once on the
 * calling thread, before this function returns, and 0 is returned. If @self
 * can never be cancelled (the [func@Ctok.Token.get_none] token, or a token
 * whose source was closed), nothing is stored: @destroy runs at once and 0 is
 * returned.
 *
 * A callback may do anything, including cancelling other sources,
 * registering callbacks and unregistering itself or others, but it should
 * be short: it delays the callbacks after it, and the cancelling thread.
 * Code that must run in a particular thread uses
 * [method@Ctok.Token.register_in_context] instead.
 *
 * This function is for C. Language bindings use
 * [method@Ctok.Token.register_in_context] or
 * [method@Ctok.Token.create_source]: a callback run on whatever thread
 * cancels (ctok's timer thread, for a deadline) is something GJS refuses,
 * and it aborts when the destroy notify of a JavaScript function runs on
 * another thread.
 *
 * This function is thread-safe: a registration racing a cancellation on
 * another thread runs exactly once, either here or on the cancelling thread.
 *
 * Returns: an id for [method@Ctok.Token.unregister], never reused; or 0 if
 *   nothing was stored
 *
 * Since: 1.0
 */
guint64
ctok_token_register (CtokToken         *self,
                     CtokTokenCallback  callback,
                     gpointer           user_data,
                     GDestroyNotify     destroy)
{
  return_val_if_not_token (self, 0);
  g_return_val_if_fail (callback != NULL, 0);

  return add_node (self, CTOK_NODE_CALLBACK, callback, user_data, destroy);
}

/**
 * ctok_token_register_in_context:
 * @self: a token
 * @context: (nullable): the main context to run @callback in, or `NULL` for
 *   the thread-default context of the calling thread
 * @callback: (scope notified) (closure user_data) (destroy destroy): the
 *   function to call when @self is cancelled
 * @user_data: data for @callback
 * @destroy: (nullable): a function to free @user_data, called exactly once,
 *   in @context (or, if @context is destroyed before it could dispatch it,
 *   on the thread that destroys @context)
 *
 * Registers @callback to run in @context when @self is cancelled, whatever
 * thread cancels it. This is the safe way for a user interface, or for a
 * language binding such as GJS that runs its code on one thread, to react to
 * a cancellation that may come from a deadline or a worker thread.
 *
 * If @self is already cancelled, @callback is dispatched in @context (not
 * synchronously) and 0 is returned. If @self can never be cancelled, @destroy
 * is dispatched in @context and 0 is returned.
 *
 * [method@Ctok.Token.unregister] on the returned id returns `TRUE` if
 * @callback will never run, even if the token was cancelled but @context has
 * not dispatched it yet; if @callback is running in @context on another
 * thread, it waits until it returns.
 *
 * @callback receives the token, so it runs only while the token exists: if
 * the token is finalized after it was cancelled but before @context
 * dispatched @callback, @callback does not run, and only @destroy does.
 *
 * This function is thread-safe.
 *
 * Returns: an id for [method@Ctok.Token.unregister], or 0
 *
 * Since: 1.0
 */
guint64
ctok_token_register_in_context (CtokToken         *self,
                                GMainContext      *context,
                                CtokTokenCallback  callback,
                                gpointer           user_data,
                                GDestroyNotify     destroy)
{
  g_autoptr(GMainContext) owned_context = NULL;

  g_return_val_if_fail (CTOK_IS_TOKEN (self), 0);
  g_return_val_if_fail (callback != NULL, 0);

  if (context == NULL)
    context = owned_context = g_main_context_ref_thread_default ();

  return add_node (self, CTOK_NODE_CONTEXT, NULL,
                   ctok_context_source_new (context, callback, user_data, destroy),
                   NULL);
}

/**
 * ctok_token_unregister:
 * @self: a token
 * @id: an id returned by [method@Ctok.Token.register] or
 *   [method@Ctok.Token.register_in_context]
 *
 * Removes a registration.
 *
 * If its callback has not started, it never will: the registration's
 * destroy notify runs (on this thread for [method@Ctok.Token.register], in
 * the registration's context for [method@Ctok.Token.register_in_context])
 * and `TRUE` is returned. This holds even while a cancellation is running
 * the token's other callbacks.
 *
 * If the callback is running on another thread, this function waits until
 * it returns, so the caller may then free what the callback uses. It never
 * waits on the thread that is running the callback (inside the callback
 * itself, or further down a cascade of cancellations it started), so it
 * cannot deadlock there; it can deadlock only if the running callback itself
 * waits for the calling thread, as with any lock. Use
 * [method@Ctok.Token.unregister_nowait] where that can happen.
 *
 * An id of 0, an id whose callback has already run, an id removed before,
 * and an unknown id are all ignored and give `FALSE`. An id that belongs to
 * another token gives a critical warning and `FALSE`.
 *
 * This function is thread-safe.
 *
 * Returns: `TRUE` if the callback was removed before it ran
 *
 * Since: 1.0
 */
gboolean
ctok_token_unregister (CtokToken *self,
                       guint64    id)
{
  return_val_if_not_token (self, FALSE);

  return remove_registration (self, id, TRUE);
}

/**
 * ctok_token_unregister_nowait:
 * @self: a token
 * @id: an id returned by [method@Ctok.Token.register] or
 *   [method@Ctok.Token.register_in_context]
 *
 * Removes a registration like [method@Ctok.Token.unregister], but never
 * waits: if the callback is running on another thread, it returns `FALSE` at
 * once while the callback may still be running.
 *
 * This function is thread-safe.
 *
 * Returns: `TRUE` if the callback was removed before it ran
 *
 * Since: 1.0
 */
gboolean
ctok_token_unregister_nowait (CtokToken *self,
                              guint64    id)
{
  return_val_if_not_token (self, FALSE);

  return remove_registration (self, id, FALSE);
}

/**
 * ctok_token_create_source:
 * @self: a token
 *
 * Creates a [struct@GLib.Source] that dispatches once, when @self is
 * cancelled (at once if it already is). Its callback is a
 * [callback@Ctok.TokenSourceFunc]; from language bindings, use
 * [func@GObject.source_set_closure], whose closure receives the token
 * ([method@GLib.Source.set_callback] works too, but PyGObject and GJS then
 * pass the callback only its user data).
 *
 * The source keeps a reference on @self and a registration on it until the
 * source is finalized: destroy it and drop your reference (GLib keeps one
 * only while it is attached) to let both go. That is safe from any thread.
 *
 * This function is thread-safe.
 *
 * Returns: (transfer full): a new source, to attach to a main context
 *
 * Since: 1.0
 */
GSource *
ctok_token_create_source (CtokToken *self)
{
  g_return_val_if_fail (CTOK_IS_TOKEN (self), NULL);

  return ctok_token_gsource_new (self);
}

/**
 * ctok_token_get_cancellable:
 * @self: a token
 *
 * Gets the token's [class@Gio.Cancellable], for passing to GIO calls. It is
 * created on first use, already cancelled if @self already is, and is
 * cancelled as soon as @self is, before the token's callbacks run.
 *
 * The cancellable is shared by everyone who asks. Calling
 * [method@Gio.Cancellable.cancel] on it cancels @self too, with reason
 * `G_IO_ERROR_CANCELLED`, as if its source had been cancelled: pass it only
 * to code that does not cancel what it is given, and use
 * [method@Ctok.Token.new_cancellable] for code that does (libsoup's
 * `soup_session_abort()`, for one). Resetting it with
 * [method@Gio.Cancellable.reset] does not reset the token; it is cancelled
 * again the next time it is asked for.
 *
 * Returns `NULL` for the [func@Ctok.Token.get_none] token, which GIO reads
 * as "not cancellable".
 *
 * This function is thread-safe.
 *
 * Returns: (transfer none) (nullable): the token's cancellable
 *
 * Since: 1.0
 */
GCancellable *
ctok_token_get_cancellable (CtokToken *self)
{
  GCancellable *cancellable;
  GCancellable *created = NULL;

  g_return_val_if_fail (CTOK_IS_TOKEN (self), NULL);

  if (!ctok_token_can_be_cancelled (self))
    return NULL;

  ctok_lock_acquire (&self->lock);
  cancellable = self->cancellable;
  ctok_lock_release (&self->lock);

  if (cancellable == NULL)
    {
      created = ctok_cancellable_new_shared (self);

      ctok_lock_acquire (&self->lock);
      if (self->cancellable == NULL)
        {
          self->cancellable = g_steal_pointer (&created);
          g_atomic_int_or (&self->flags, TOKEN_EXTRAS);
        }
      cancellable = self->cancellable;
      ctok_lock_release (&self->lock);

      if (created != NULL)
        {
          /* Lost a race with another thread: ours was never handed out. */
          ctok_cancellable_detach (created);
          g_object_unref (created);
        }
    }

  /* Created before the token was cancelled, cancelled since, or reset by
   * someone: make it agree with the token. */
  if (ctok_token_is_cancelled (self) && !g_cancellable_is_cancelled (cancellable))
    g_cancellable_cancel (cancellable);

  return cancellable;
}

/**
 * ctok_token_new_cancellable:
 * @self: a token
 *
 * Creates a [class@Gio.Cancellable] for one operation. It is cancelled when
 * @self is (at once if it already is), but cancelling it does not cancel
 * @self, so it can be given to code that cancels the cancellable it is given,
 * such as libsoup, without affecting anything else that uses the token.
 *
 * The cancellable keeps a reference on @self and removes its registration
 * when it is finalized, so a long-lived token does not collect dead
 * registrations. For the [func@Ctok.Token.get_none] token it is a plain
 * cancellable that nothing cancels.
 *
 * This function is thread-safe.
 *
 * Returns: (transfer full): a new cancellable
 *
 * Since: 1.0
 */
GCancellable *
ctok_token_new_cancellable (CtokToken *self)
{
  g_return_val_if_fail (CTOK_IS_TOKEN (self), NULL);

  if (!ctok_token_can_be_cancelled (self))
    return g_cancellable_new ();

  return ctok_cancellable_new_for_operation (self);
}

/**
 * ctok_token_rewrite_error: (skip)
 * @self: a token
 * @error: (inout) (nullable): an error set by an operation that used
 *   @self's cancellable
 *
 * Gives the caller the real reason an operation was cancelled. GIO
 * operations report every cancellation as `G_IO_ERROR_CANCELLED`; if @error
 * holds that and @self is cancelled, this replaces it with a copy of the
 * token's reason, such as `G_IO_ERROR_TIMED_OUT` for a deadline.
 *
 * ```c
 * if (!g_input_stream_read_all_finish (stream, result, &n, &error))
 *   ctok_token_rewrite_error (token, &error);
 * ```
 *
 * Language bindings use [method@Ctok.Token.translate_error].
 *
 * This function is thread-safe.
 *
 * Returns: `TRUE` if @error was replaced
 *
 * Since: 1.0
 */
gboolean
ctok_token_rewrite_error (CtokToken  *self,
                          GError    **error)
{
  const GError *reason;

  g_return_val_if_fail (CTOK_IS_TOKEN (self), FALSE);

  if (error == NULL || *error == NULL)
    return FALSE;

  if (!g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return FALSE;

  reason = peek_error (self);
  if (reason == NULL)
    return FALSE;

  g_clear_error (error);
  *error = g_error_copy (reason);
  return TRUE;
}

/**
 * ctok_token_translate_error:
 * @self: a token
 * @error: (nullable): an error set by an operation that used @self's
 *   cancellable
 *
 * The binding-friendly form of [method@Ctok.Token.rewrite_error]: if @error
 * is `G_IO_ERROR_CANCELLED` and @self is cancelled, returns a copy of the
 * token's reason; otherwise a copy of @error.
 *
 * This function is thread-safe.
 *
 * Returns: (transfer full) (nullable): the error to report, or `NULL` if
 *   @error is `NULL`
 *
 * Since: 1.0
 */
GError *
ctok_token_translate_error (CtokToken    *self,
                            const GError *error)
{
  GError *copy;

  g_return_val_if_fail (CTOK_IS_TOKEN (self), NULL);

  if (error == NULL)
    return NULL;

  copy = g_error_copy (error);
  ctok_token_rewrite_error (self, &copy);
  return copy;
}

static gboolean
cancelled_or_frozen (gpointer data)
{
  CtokToken *self = data;

  return g_atomic_int_get (&self->state) != STATE_NOT_CANCELLED ||
         (g_atomic_int_get (&self->flags) & (TOKEN_NONE | TOKEN_FROZEN)) != 0;
}

/**
 * ctok_token_wait:
 * @self: a token
 * @timeout_us: the longest time to wait, in microseconds, or -1 to wait
 *   until @self is cancelled
 *
 * Blocks the calling thread until @self is cancelled or @timeout_us passes.
 * It returns at once if @self is already cancelled, or can never be (the
 * [func@Ctok.Token.get_none] token, or a token whose source was closed,
 * including while waiting). It uses no file descriptor.
 *
 * This function is thread-safe. From Python it releases the GIL while it
 * waits.
 *
 * Returns: `TRUE` if @self is cancelled
 *
 * Since: 1.0
 */
gboolean
ctok_token_wait (CtokToken *self,
                 gint64     timeout_us)
{
  gint64 end_time;

  g_return_val_if_fail (CTOK_IS_TOKEN (self), FALSE);
  g_return_val_if_fail (timeout_us >= -1, FALSE);

  if (cancelled_or_frozen (self) || timeout_us == 0)
    return ctok_token_is_cancelled (self);

  if (timeout_us < 0)
    end_time = -1;
  else
    {
      gint64 now = g_get_monotonic_time ();

      end_time = timeout_us > G_MAXINT64 - now ? -1 : now + timeout_us;
    }

  block_until (self, cancelled_or_frozen, self, end_time);

  return ctok_token_is_cancelled (self);
}

/* --- Asynchronous wait --- */

typedef struct
{
  gatomicrefcount  ref_count;
  int              completed;     /* atomic: whoever sets it returns the task */
  GTask           *task;
  CtokToken       *token;
  guint64          registration;  /* written before anyone can read it */
  GCancellable    *cancellable;
  gpointer         handler;       /* atomic: whoever takes it disconnects it */
} WaitData;

static WaitData *
wait_data_ref (WaitData *data)
{
  g_atomic_ref_count_inc (&data->ref_count);
  return data;
}

static void
wait_data_unref (gpointer ptr)
{
  WaitData *data = ptr;

  if (!g_atomic_ref_count_dec (&data->ref_count))
    return;

  g_clear_object (&data->cancellable);
  g_object_unref (data->task);
  g_free (data);
}

/* Never g_cancellable_disconnect(): it deadlocks when called from inside the
 * cancellable's own handler on GLib 2.74. A plain signal disconnect is safe
 * anywhere; a handler already running finds the task completed. */
static void
wait_data_disconnect (WaitData *data)
{
  gulong handler = GPOINTER_TO_SIZE (g_atomic_pointer_exchange (&data->handler, NULL));

  if (handler != 0)
    g_signal_handler_disconnect (data->cancellable, handler);
}

/* Completes the task once; the first caller wins. */
static void
wait_data_complete (WaitData *data,
                    gboolean  cancelled,
                    GError   *error)
{
  if (!g_atomic_int_compare_and_exchange (&data->completed, FALSE, TRUE))
    {
      g_clear_error (&error);
      return;
    }

  wait_data_disconnect (data);

  if (error != NULL)
    g_task_return_error (data->task, error);
  else
    g_task_return_boolean (data->task, cancelled);
}

static void
wait_token_cancelled (CtokToken *token,
                      gpointer   user_data)
{
  wait_data_complete (user_data, TRUE, NULL);
}

static void
wait_registration_done (gpointer user_data)
{
  WaitData *data = user_data;

  /* Dropped without running: the token was closed. */
  wait_data_complete (data, FALSE, NULL);
  wait_data_unref (data);
}

static void
wait_cancellable_cancelled (GCancellable *cancellable,
                            gpointer      user_data)
{
  WaitData *data = user_data;

  if (g_atomic_int_get (&data->completed))
    return;

  wait_data_complete (data, FALSE,
                      g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                           _("Operation was cancelled")));
  ctok_token_unregister_nowait (data->token, data->registration);
}

/**
 * ctok_token_wait_async:
 * @self: a token
 * @cancellable: (nullable): a cancellable to stop waiting
 * @callback: (scope async): the function to call when the wait is over
 * @user_data: data for @callback
 *
 * Waits for @self to be cancelled without blocking, in the GIO asynchronous
 * pattern: @callback runs in the thread-default main context of the calling
 * thread, and gets the result with [method@Ctok.Token.wait_finish].
 *
 * From JavaScript, `Gio._promisify (Ctok.Token.prototype, 'wait_async')`
 * makes it awaitable.
 *
 * This function is thread-safe.
 *
 * Since: 1.0
 */
void
ctok_token_wait_async (CtokToken           *self,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  WaitData *data;

  g_return_if_fail (CTOK_IS_TOKEN (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  data = g_new0 (WaitData, 1);
  g_atomic_ref_count_init (&data->ref_count);
  data->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (data->task, ctok_token_wait_async);
  g_task_set_name (data->task, "[ctok] wait");
  /* The token's reason, not GTask's, is the answer: a cancellable that fires
   * after the token did must not turn TRUE into an error. */
  g_task_set_check_cancellable (data->task, FALSE);
  data->token = self;

  /* The registration's destroy notify holds a reference. */
  /* Internal, so that try_reset() (which drops the caller's callbacks)
   * does not end the wait; close() does, as it should. */
  data->registration = ctok_token_add_internal (self, wait_token_cancelled,
                                                wait_data_ref (data), wait_registration_done);

  if (cancellable != NULL && !g_atomic_int_get (&data->completed))
    {
      gulong handler;

      data->cancellable = g_object_ref (cancellable);
      handler = g_cancellable_connect (cancellable, G_CALLBACK (wait_cancellable_cancelled),
                                       wait_data_ref (data), wait_data_unref);
      g_atomic_pointer_set (&data->handler, GSIZE_TO_POINTER (handler));

      /* Completed meanwhile: nobody took the handler to disconnect it. */
      if (g_atomic_int_get (&data->completed))
        wait_data_disconnect (data);
    }

  wait_data_unref (data);
}

/**
 * ctok_token_wait_finish:
 * @self: a token
 * @result: the result given to the callback of
 *   [method@Ctok.Token.wait_async]
 * @error: a return location for an error
 *
 * Gets the result of [method@Ctok.Token.wait_async].
 *
 * Returns: `TRUE` if @self was cancelled; `FALSE` without an error if @self
 *   can never be cancelled (its source was closed, or it is the
 *   [func@Ctok.Token.get_none] token); `FALSE` with `G_IO_ERROR_CANCELLED` if
 *   the wait's own cancellable was cancelled first
 *
 * Since: 1.0
 */
gboolean
ctok_token_wait_finish (CtokToken     *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (CTOK_IS_TOKEN (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == ctok_token_wait_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * ctok_token_get_deadline: (get-property deadline)
 * @self: a token
 *
 * Gets the token's effective deadline, on the [func@GLib.get_monotonic_time]
 * clock: the earliest of its source's own deadline and those of every token
 * it is linked to (through [ctor@Ctok.TokenSource.new_linked], at any
 * depth), so an operation deep in a call chain sees the request's deadline.
 * For a source linked to all of its parents, the parents' part is the
 * latest of theirs.
 *
 * Once the token is cancelled the value stays as it was; after its source
 * is closed there is none.
 *
 * This function is thread-safe and lock-free.
 *
 * Returns: the deadline in monotonic microseconds, or `G_MAXINT64` if the
 *   token has none
 *
 * Since: 1.0
 */
gint64
ctok_token_get_deadline (CtokToken *self)
{
  g_return_val_if_fail (CTOK_IS_TOKEN (self), G_MAXINT64);

  return effective_deadline (self);
}

/**
 * ctok_token_get_timeout_ms:
 * @self: a token
 *
 * Gets the time left until the token's effective deadline, in milliseconds
 * rounded up, for APIs that take a `timeout_msec`, such as
 * [method@Gio.DBusConnection.call] or [method@Gio.Socket.set_timeout]
 * (which takes seconds: divide and round up).
 *
 * This function is thread-safe.
 *
 * Returns: -1 if the token has no deadline; 0 if the deadline has passed or
 *   the token is cancelled; otherwise the milliseconds left, at most
 *   `G_MAXINT`
 *
 * Since: 1.0
 */
int
ctok_token_get_timeout_ms (CtokToken *self)
{
  gint64 deadline;
  gint64 remaining;
  gint64 ms;

  g_return_val_if_fail (CTOK_IS_TOKEN (self), -1);

  if (ctok_token_is_cancelled (self))
    return 0;

  deadline = effective_deadline (self);
  if (deadline == G_MAXINT64)
    return -1;

  remaining = deadline - g_get_monotonic_time ();
  if (remaining <= 0)
    return 0;

  /* Rounded up, without overflowing near G_MAXINT64. */
  ms = remaining / 1000 + (remaining % 1000 != 0);
  return (int) MIN (ms, G_MAXINT);
}

/**
 * ctok_token_debug_count_registrations:
 * @self: a token
 *
 * Counts the registrations waiting on @self: callbacks, and ctok's own
 * (linked children, GSources, cancellables). Once @self is cancelled they
 * belong to the cancellation that runs them, and the count is 0. It is
 * meant for tests and debugging, such as checking that a long-lived token
 * does not collect registrations; the count is not part of ctok's stable
 * behaviour.
 *
 * This function is thread-safe.
 *
 * Returns: the number of pending registrations
 *
 * Since: 1.0
 */
guint
ctok_token_debug_count_registrations (CtokToken *self)
{
  guint n;

  g_return_val_if_fail (CTOK_IS_TOKEN (self), 0);

  ctok_lock_acquire (&self->lock);
  n = 0;
  for (CtokNode *node = self->head; node != NULL; node = node->next)
    n += node->kind != CTOK_NODE_REMOVED;
  ctok_lock_release (&self->lock);

  return n;
}
