/* ctok-gsource-private.h: GSources that wait for a token
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "ctok-token-private.h"

G_BEGIN_DECLS

typedef struct _CtokContextSource CtokContextSource;

GSource           *ctok_token_gsource_new       (CtokToken          *token);

CtokContextSource *ctok_context_source_new      (GMainContext       *context,
                                                 CtokTokenCallback   callback,
                                                 gpointer            user_data,
                                                 GDestroyNotify      destroy);
void               ctok_context_source_fire     (CtokContextSource  *self,
                                                 CtokToken          *token,
                                                 CtokNode           *node);
void               ctok_context_source_drop     (CtokContextSource  *self);
typedef enum
{
  CTOK_WITHDRAW_DONE,              /* the callback will never run */
  CTOK_WITHDRAW_RUNNING_ELSEWHERE, /* running on another thread */
  CTOK_WITHDRAW_TOO_LATE,          /* has run, or is running on this thread */
} CtokWithdraw;

CtokWithdraw       ctok_context_source_withdraw_locked (CtokContextSource *self);
gboolean           ctok_context_source_orphan_locked   (CtokContextSource *self);

G_END_DECLS
