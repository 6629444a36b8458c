/* ctok-gsource.c: GSources that wait for a token
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "ctok-private.h"
#include "ctok-lock-private.h"
#include "ctok-gsource-private.h"

/* --- ctok_token_create_source() ---
 *
 * The source holds a reference on its token and an internal registration
 * whose callback makes the source ready. Its dispose function removes the
 * registration, waiting if the callback is running on another thread, so the
 * callback can use the raw source pointer. */

typedef struct
{
  GSource    source;
  CtokToken *token;
  guint64    registration;
} CtokTokenGSource;

static void
token_gsource_ready (CtokToken *token,
                     gpointer   user_data)
{
  ctok_tsan_release (user_data);
  g_source_set_ready_time (user_data, 0);
}

static gboolean
token_gsource_dispatch (GSource     *source,
                        GSourceFunc  callback,
                        gpointer     user_data)
{
  CtokTokenGSource *self = (CtokTokenGSource *) source;

  ctok_tsan_acquire (source);

  /* A token is cancelled once: never ready again. */
  g_source_set_ready_time (source, -1);

  if (callback == NULL)
    {
      g_warning ("Token source dispatched without callback. "
                 "You must call g_source_set_callback().");
      return G_SOURCE_REMOVE;
    }

  return ((CtokTokenSourceFunc) (void (*) (void)) callback) (self->token, user_data);
}

static void
token_gsource_dispose (GSource *source)
{
  CtokTokenGSource *self = (CtokTokenGSource *) source;

  if (self->registration != 0)
    ctok_token_unregister (self->token, self->registration);
  self->registration = 0;
}

static void
token_gsource_finalize (GSource *source)
{
  CtokTokenGSource *self = (CtokTokenGSource *) source;

  ctok_release_object (self->token);
}

/* Lets bindings use g_source_set_closure(): the closure gets the token. */
static gboolean
token_gsource_closure_callback (CtokToken *token,
                                gpointer   data)
{
  GClosure *closure = data;
  GValue param = G_VALUE_INIT;
  GValue result_value = G_VALUE_INIT;
  gboolean result;

  g_value_init (&result_value, G_TYPE_BOOLEAN);
  g_value_init (&param, CTOK_TYPE_TOKEN);
  g_value_set_object (&param, token);

  g_closure_invoke (closure, &result_value, 1, &param, NULL);

  result = g_value_get_boolean (&result_value);
  g_value_unset (&result_value);
  g_value_unset (&param);

  return result;
}

static GSourceFuncs token_gsource_funcs =
{
  NULL,
  NULL,
  token_gsource_dispatch,
  token_gsource_finalize,
  (GSourceFunc) (void (*) (void)) token_gsource_closure_callback,
  NULL,
};

GSource *
ctok_token_gsource_new (CtokToken *token)
{
  GSource *source = g_source_new (&token_gsource_funcs, sizeof (CtokTokenGSource));
  CtokTokenGSource *self = (CtokTokenGSource *) source;

  g_source_set_static_name (source, "[ctok] token source");
  g_source_set_dispose_function (source, token_gsource_dispose);
  self->token = g_object_ref (token);
  self->registration = ctok_token_add_internal (token, token_gsource_ready, source, NULL);
  ctok_tsan_release (source);

  return source;
}

/* --- ctok_token_register_in_context() ---
 *
 * Each registration is a GSource attached to its context at once and made
 * ready when the token fires it (or when the registration is dropped, to run
 * the destroy notify there). Its state decides what the dispatch does:
 *
 *   ARMED -> FIRED -> RUNNING -> DONE     the callback runs in the context
 *   ARMED -> DROPPED                      removed before the token fired
 *   FIRED -> DROPPED -> CLEANING          withdrawn after it fired, before the
 *                                         context dispatched it
 *   FIRED/DROPPED -> ORPHANED             the token went away first
 *   RUNNING -> RUNNING_ORPHANED           the callback itself let the token go
 *
 * While the token holds the registration, its node owns one reference on the
 * source. Once fired, the node is "in flight": it keeps its id, so that
 * ctok_token_unregister() can still withdraw the callback, and the source
 * gives it back to the token after the dispatch (or in finalize, if the
 * context went away first).
 *
 * A fired source borrows its token, holding no reference on it: a reference
 * taken while another thread may be disposing the token is not safe with
 * GLib 2.74's GObject. Instead the token's dispose orphans its in-flight
 * sources (under the token's lock), or waits while one is RUNNING or
 * CLEANING, which are the states in which the source uses the token. Only a
 * registration made on a token already cancelled, by a caller who holds the
 * token, takes a reference. Every transition is a compare-and-swap, so the
 * context's thread and the token's owner never both act. */

enum
{
  CONTEXT_ARMED,
  CONTEXT_FIRED,
  CONTEXT_RUNNING,
  CONTEXT_DONE,
  CONTEXT_DROPPED,
  CONTEXT_CLEANING,
  CONTEXT_ORPHANED,
  CONTEXT_RUNNING_ORPHANED,  /* the callback dropped its token's last reference */
};

struct _CtokContextSource
{
  GSource            source;
  int                state;          /* atomic */
  gboolean           destroyed;      /* user destroy notify has run */
  gboolean           owns_token;     /* @token is a reference */
  GThread           *running_thread; /* set while RUNNING; atomic */
  CtokToken         *token;          /* once fired */
  CtokNode          *node;           /* in flight, once fired */
  CtokTokenCallback  callback;
  gpointer           user_data;
  GDestroyNotify     destroy;
};

/* Gives the in-flight node back; the token must not be used afterwards. */
static void
context_source_release_node (CtokContextSource *self)
{
  CtokNode *node = g_steal_pointer (&self->node);

  if (node != NULL)
    ctok_token_release_node (self->token, node);
}

static void
context_source_finish (CtokContextSource *self)
{
  if (!self->destroyed)
    {
      self->destroyed = TRUE;
      if (self->destroy != NULL)
        self->destroy (self->user_data);
    }

  if (self->owns_token)
    {
      self->owns_token = FALSE;
      ctok_release_object (self->token);
    }
}

static gboolean
context_source_dispatch (GSource     *source,
                         GSourceFunc  callback,
                         gpointer     user_data)
{
  CtokContextSource *self = (CtokContextSource *) source;

  ctok_tsan_acquire (self);
  g_source_set_ready_time (source, -1);

  if (g_atomic_int_compare_and_exchange (&self->state, CONTEXT_FIRED, CONTEXT_RUNNING))
    {
      g_atomic_pointer_set (&self->running_thread, ctok_thread_self ());
      self->callback (self->token, self->user_data);
      /* Unless the callback dropped the token's last reference (its
       * dispose then took the node back), give the node back. */
      if (g_atomic_int_get (&self->state) == CONTEXT_RUNNING)
        context_source_release_node (self);
      else
        self->node = NULL;
      g_atomic_int_set (&self->state, CONTEXT_DONE);
    }
  else if (g_atomic_int_compare_and_exchange (&self->state, CONTEXT_DROPPED, CONTEXT_CLEANING))
    context_source_release_node (self);

  /* Whatever happened, this registration is over. */
  context_source_finish (self);

  /* The last reference may be dropped on another thread, which then
   * finalizes (context_source_finalize() acquires). */
  ctok_tsan_release (self);

  return G_SOURCE_REMOVE;
}

static void
context_source_finalize (GSource *source)
{
  CtokContextSource *self = (CtokContextSource *) source;

  ctok_tsan_acquire (self);

  /* The context was destroyed before it could dispatch. */
  if (g_atomic_int_compare_and_exchange (&self->state, CONTEXT_FIRED, CONTEXT_CLEANING) ||
      g_atomic_int_compare_and_exchange (&self->state, CONTEXT_DROPPED, CONTEXT_CLEANING))
    context_source_release_node (self);

  context_source_finish (self);
}

static GSourceFuncs context_source_funcs =
{
  NULL,
  NULL,
  context_source_dispatch,
  context_source_finalize,
  NULL,
  NULL,
};

CtokContextSource *
ctok_context_source_new (GMainContext      *context,
                         CtokTokenCallback  callback,
                         gpointer           user_data,
                         GDestroyNotify     destroy)
{
  GSource *source = g_source_new (&context_source_funcs, sizeof (CtokContextSource));
  CtokContextSource *self = (CtokContextSource *) source;

  self->state = CONTEXT_ARMED;
  self->callback = callback;
  self->user_data = user_data;
  self->destroy = destroy;

  g_source_set_static_name (source, "[ctok] registration");
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  ctok_tsan_release (self);
  g_source_attach (source, context);

  /* The reference we return is the registration's. */
  return self;
}

/* The token was cancelled. @node is the in-flight node; NULL when the
 * registration was made on a token already cancelled, by a caller holding
 * it, so the source may keep a reference. Consumes the registration's
 * reference. */
void
ctok_context_source_fire (CtokContextSource *self,
                          CtokToken         *token,
                          CtokNode          *node)
{
  self->node = node;
  if (node != NULL)
    self->token = token;
  else
    {
      self->token = g_object_ref (token);
      self->owns_token = TRUE;
    }

  /* May have been withdrawn already; the dispatch then only cleans up. */
  g_atomic_int_compare_and_exchange (&self->state, CONTEXT_ARMED, CONTEXT_FIRED);

  ctok_tsan_release (self);
  g_source_set_ready_time ((GSource *) self, 0);
  g_source_unref ((GSource *) self);
}

/* The registration was removed before the token fired it. Consumes the
 * registration's reference. */
void
ctok_context_source_drop (CtokContextSource *self)
{
  g_atomic_int_set (&self->state, CONTEXT_DROPPED);

  /* The destroy notify runs in the context. */
  ctok_tsan_release (self);
  g_source_set_ready_time ((GSource *) self, 0);
  g_source_unref ((GSource *) self);
}

/* Called with the token's mutex held, for an in-flight node: the source
 * cannot give the node back, and so cannot be finalized, meanwhile. */
CtokWithdraw
ctok_context_source_withdraw_locked (CtokContextSource *self)
{
  int state = g_atomic_int_get (&self->state);

  if ((state == CONTEXT_ARMED || state == CONTEXT_FIRED) &&
      g_atomic_int_compare_and_exchange (&self->state, state, CONTEXT_DROPPED))
    return CTOK_WITHDRAW_DONE;

  state = g_atomic_int_get (&self->state);
  if (state == CONTEXT_RUNNING && g_atomic_pointer_get (&self->running_thread) != ctok_thread_self ())
    return CTOK_WITHDRAW_RUNNING_ELSEWHERE;

  return CTOK_WITHDRAW_TOO_LATE;
}

/* Called with the token's mutex held by a token going away, for an
 * in-flight node. Returns TRUE if the source no longer uses the token (the
 * caller then takes the node back), FALSE if it is using it right now. */
gboolean
ctok_context_source_orphan_locked (CtokContextSource *self)
{
  for (;;)
    {
      int state = g_atomic_int_get (&self->state);

      /* Dispatching on this thread: the token is going away from inside the
       * callback, which must not wait for itself. It won't use the token
       * again. */
      if (state == CONTEXT_RUNNING && g_atomic_pointer_get (&self->running_thread) == ctok_thread_self ())
        {
          g_atomic_int_set (&self->state, CONTEXT_RUNNING_ORPHANED);
          return TRUE;
        }

      if (state == CONTEXT_RUNNING || state == CONTEXT_CLEANING)
        return FALSE;

      if (g_atomic_int_compare_and_exchange (&self->state, state, CONTEXT_ORPHANED))
        return TRUE;
    }
}
