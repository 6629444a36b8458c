/* ctok-cancellable.c: GCancellables that follow a token
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "ctok-private.h"
#include "ctok-lock-private.h"
#include "ctok-cancellable-private.h"

/* Two kinds of bridge, one private subclass:
 *
 * - The token's shared cancellable (ctok_token_get_cancellable()). The token
 *   owns it and cancels it first thing when cancelled. It points back at its
 *   token without a reference; an outside g_cancellable_cancel() reaches the
 *   class handler, which cancels the token through that pointer. The token's
 *   dispose detaches it, waiting if a handler is using the pointer on another
 *   thread.
 *
 * - A per-operation cancellable (ctok_token_new_cancellable()). It holds a
 *   reference on the token and an internal registration that cancels it;
 *   cancelling it from outside affects nobody else. Its dispose removes the
 *   registration, so a long-lived token does not collect dead ones.
 *
 * Overriding the class handler rather than connecting to ::cancelled keeps
 * the bridge off GSignal's connect path, and it never needs
 * g_cancellable_disconnect(), which deadlocks in handlers on GLib 2.74. */

#define CTOK_TYPE_CANCELLABLE (ctok_cancellable_get_type ())
G_DECLARE_FINAL_TYPE (CtokCancellable, ctok_cancellable, CTOK, CANCELLABLE, GCancellable)

struct _CtokCancellable
{
  GCancellable parent_instance;

  gboolean   shared;
  CtokToken *token;          /* shared: borrowed, guarded; per-operation: a reference */
  guint64    registration;   /* per-operation */
  GThread   *executing;      /* shared: thread using @token in the class handler */
};

G_DEFINE_FINAL_TYPE (CtokCancellable, ctok_cancellable, G_TYPE_CANCELLABLE)

/* Guards the shared bridges' back pointers. Contention is rare: it is taken
 * when a shared cancellable is cancelled from outside, and when its token is
 * finalized. */
static CtokMutex guard_mutex;
static CtokCond  guard_cond;

static void
ctok_cancellable_cancelled (GCancellable *cancellable)
{
  CtokCancellable *self = CTOK_CANCELLABLE (cancellable);
  GThread *thread = ctok_thread_self ();
  CtokToken *token;

  if (!self->shared)
    return;

  ctok_mutex_lock (&guard_mutex);
  while (self->executing != NULL && self->executing != thread)
    ctok_cond_wait (&guard_cond, &guard_mutex);
  token = self->token;
  if (token != NULL)
    self->executing = thread;
  ctok_mutex_unlock (&guard_mutex);

  if (token == NULL)
    return;

  /* A no-op when the token itself cancelled us. */
  if (!ctok_token_is_cancelled (token))
    ctok_token_cancel_internal (token, ctok_reason_new_cancelled ());

  ctok_mutex_lock (&guard_mutex);
  self->executing = NULL;
  ctok_cond_broadcast (&guard_cond);
  ctok_mutex_unlock (&guard_mutex);
}

static void
operation_token_cancelled (CtokToken *token,
                           gpointer   user_data)
{
  g_cancellable_cancel (user_data);
}

static void
ctok_cancellable_dispose (GObject *object)
{
  CtokCancellable *self = CTOK_CANCELLABLE (object);

  if (!self->shared && self->registration != 0)
    {
      ctok_token_unregister (self->token, self->registration);
      self->registration = 0;
    }

  G_OBJECT_CLASS (ctok_cancellable_parent_class)->dispose (object);
}

static void
ctok_cancellable_finalize (GObject *object)
{
  CtokCancellable *self = CTOK_CANCELLABLE (object);

  if (!self->shared && self->token != NULL)
    ctok_release_object (self->token);

  G_OBJECT_CLASS (ctok_cancellable_parent_class)->finalize (object);
}

static void
ctok_cancellable_class_init (CtokCancellableClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GCancellableClass *cancellable_class = G_CANCELLABLE_CLASS (klass);

  object_class->dispose = ctok_cancellable_dispose;
  object_class->finalize = ctok_cancellable_finalize;
  cancellable_class->cancelled = ctok_cancellable_cancelled;
}

static void
ctok_cancellable_init (CtokCancellable *self)
{
}

GCancellable *
ctok_cancellable_new_shared (CtokToken *token)
{
  CtokCancellable *self = g_object_new (CTOK_TYPE_CANCELLABLE, NULL);

  self->shared = TRUE;
  self->token = token;

  return G_CANCELLABLE (self);
}

/* The token is going away: cut the back pointer. */
void
ctok_cancellable_detach (GCancellable *shared)
{
  CtokCancellable *self = CTOK_CANCELLABLE (shared);
  GThread *thread = ctok_thread_self ();

  ctok_mutex_lock (&guard_mutex);
  self->token = NULL;
  while (self->executing != NULL && self->executing != thread)
    ctok_cond_wait (&guard_cond, &guard_mutex);
  ctok_mutex_unlock (&guard_mutex);
}

GCancellable *
ctok_cancellable_new_for_operation (CtokToken *token)
{
  CtokCancellable *self = g_object_new (CTOK_TYPE_CANCELLABLE, NULL);

  self->token = g_object_ref (token);
  /* Cancels us at once if the token already is. */
  self->registration = ctok_token_add_internal (token, operation_token_cancelled, self, NULL);

  return G_CANCELLABLE (self);
}

/* --- Following a foreign GCancellable (ctok_token_source_new_linked_to_cancellable()) ---
 *
 * We must connect to somebody else's cancellable, and on GLib 2.74 the
 * matching g_cancellable_disconnect() deadlocks when called from one of its
 * handlers, from a destroy notify it runs, or anywhere in a cascade that
 * started in one. So we never call it. The handler goes through a shim, a
 * reference-counted guard around the token pointer: detaching clears the
 * pointer (waiting only for a handler running on another thread) and removes
 * the handler with plain g_signal_handler_disconnect(), which takes no
 * cancellable lock and is safe inside the emission. A handler GSignal still
 * runs after that finds the pointer cleared; GSignal frees the shim when it
 * drops the handler. */

typedef struct
{
  gatomicrefcount  ref_count;
  CtokToken       *token;      /* guarded by guard_mutex; borrowed */
  GThread         *executing;  /* thread using @token */
} FollowShim;

struct _CtokFollow
{
  GCancellable *cancellable;   /* a reference */
  gulong        handler;
  FollowShim   *shim;
};

static FollowShim *
follow_shim_ref (FollowShim *shim)
{
  g_atomic_ref_count_inc (&shim->ref_count);
  return shim;
}

static void
follow_shim_unref (gpointer data)
{
  FollowShim *shim = data;

  if (g_atomic_ref_count_dec (&shim->ref_count))
    g_free (shim);
}

static void
follow_cancelled (GCancellable *cancellable,
                  gpointer      user_data)
{
  FollowShim *shim = user_data;
  GThread *thread = ctok_thread_self ();
  CtokToken *token;

  ctok_mutex_lock (&guard_mutex);
  while (shim->executing != NULL && shim->executing != thread)
    ctok_cond_wait (&guard_cond, &guard_mutex);
  token = shim->token;
  if (token != NULL)
    shim->executing = thread;
  ctok_mutex_unlock (&guard_mutex);

  if (token == NULL)
    return;

  /* A GCancellable has no reason to give. */
  ctok_token_cancel_internal (token, ctok_reason_new_cancelled ());

  ctok_mutex_lock (&guard_mutex);
  shim->executing = NULL;
  ctok_cond_broadcast (&guard_cond);
  ctok_mutex_unlock (&guard_mutex);
}

CtokFollow *
ctok_follow_new (GCancellable *cancellable,
                 CtokToken    *token)
{
  CtokFollow *follow = g_new0 (CtokFollow, 1);
  FollowShim *shim = g_new0 (FollowShim, 1);

  g_atomic_ref_count_init (&shim->ref_count);
  shim->token = token;

  follow->cancellable = g_object_ref (cancellable);
  follow->shim = shim;
  /* Runs the handler at once, and connects nothing, if already cancelled. */
  follow->handler = g_cancellable_connect (cancellable, G_CALLBACK (follow_cancelled),
                                           follow_shim_ref (shim), follow_shim_unref);

  return follow;
}

void
ctok_follow_free (CtokFollow *follow)
{
  FollowShim *shim = follow->shim;
  GThread *thread = ctok_thread_self ();

  ctok_mutex_lock (&guard_mutex);
  shim->token = NULL;
  while (shim->executing != NULL && shim->executing != thread)
    ctok_cond_wait (&guard_cond, &guard_mutex);
  ctok_mutex_unlock (&guard_mutex);

  /* Never g_cancellable_disconnect(): see above. */
  if (follow->handler != 0)
    g_signal_handler_disconnect (follow->cancellable, follow->handler);

  follow_shim_unref (shim);
  ctok_release_object (follow->cancellable);
  g_free (follow);
}
