/* ctok-token-private.h: what the rest of the library needs from CtokToken
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "ctok-token.h"
#include "ctok-node-private.h"
#include "ctok-timer-private.h"

G_BEGIN_DECLS

/* A cancellation reason: an immutable GError shared, with a reference count,
 * by a token and everything cancelled because of it. */
typedef struct _CtokReason CtokReason;

CtokReason   *ctok_reason_new_take      (GError       *error);
CtokReason   *ctok_reason_new_cancelled (void);
CtokReason   *ctok_reason_new_timed_out (void);
CtokReason   *ctok_reason_ref           (CtokReason   *reason);
void          ctok_reason_unref         (CtokReason   *reason);
const GError *ctok_reason_get_error     (CtokReason   *reason);

CtokToken *ctok_token_new_internal       (void);
CtokToken *ctok_token_new_for_source     (void);
void       ctok_token_release_from_source (CtokToken        *self);
gboolean   ctok_token_mark_source_closed (CtokToken         *self);
gboolean   ctok_token_is_source_closed   (CtokToken         *self);
void       ctok_token_cancel_internal    (CtokToken         *self,
                                          CtokReason        *reason);
gboolean   ctok_token_try_reset_internal (CtokToken         *self);
void       ctok_token_close_internal     (CtokToken         *self);
void       ctok_token_link               (CtokToken         *self,
                                          CtokToken * const *parents,
                                          gsize              n_parents,
                                          gboolean           all);
void       ctok_token_link_cancellable   (CtokToken         *self,
                                          GCancellable      *cancellable);
void       ctok_token_set_deadline_internal (CtokToken      *self,
                                             gint64          deadline_us);
gint64     ctok_token_get_own_deadline   (CtokToken         *self);

/* Called by the timer thread with the entry of a token's deadline. */
void       ctok_token_deadline_expired   (CtokTimerEntry    *entry);
guint64    ctok_token_add_internal       (CtokToken         *self,
                                          CtokTokenCallback  callback,
                                          gpointer           user_data,
                                          GDestroyNotify     destroy);

/* For registrations whose node stays in flight after the token fired it (see
 * ctok-gsource.c): give the node back, and let waiters re-check. */
void       ctok_token_release_node       (CtokToken         *self,
                                          CtokNode          *node);
typedef gboolean (*CtokWaitFunc) (gpointer data);
void       ctok_token_block_until        (CtokToken         *self,
                                          CtokWaitFunc       done,
                                          gpointer           data);
void       ctok_token_wake_waiters       (CtokToken         *self);

G_END_DECLS
