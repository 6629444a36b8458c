/* ctok-cancellable.c: GCancellables that follow a token
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "ctok-private.h"
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
static GMutex guard_mutex;
static GCond  guard_cond;

static void
ctok_cancellable_cancelled (GCancellable *cancellable)
{
  CtokCancellable *self = CTOK_CANCELLABLE (cancellable);
  GThread *thread = g_thread_self ();
  CtokToken *token;

  if (!self->shared)
    return;

  g_mutex_lock (&guard_mutex);
  while (self->executing != NULL && self->executing != thread)
    g_cond_wait (&guard_cond, &guard_mutex);
  token = self->token;
  if (token != NULL)
    self->executing = thread;
  g_mutex_unlock (&guard_mutex);

  if (token == NULL)
    return;

  /* A no-op when the token itself cancelled us. */
  if (!ctok_token_is_cancelled (token))
    ctok_token_cancel_internal (token, ctok_reason_new_cancelled ());

  g_mutex_lock (&guard_mutex);
  self->executing = NULL;
  g_cond_broadcast (&guard_cond);
  g_mutex_unlock (&guard_mutex);
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
  GThread *thread = g_thread_self ();

  g_mutex_lock (&guard_mutex);
  self->token = NULL;
  while (self->executing != NULL && self->executing != thread)
    g_cond_wait (&guard_cond, &guard_mutex);
  g_mutex_unlock (&guard_mutex);
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
