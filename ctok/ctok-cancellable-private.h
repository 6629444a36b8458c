/* ctok-cancellable-private.h: GCancellables that follow a token
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "ctok-token-private.h"

G_BEGIN_DECLS

GCancellable *ctok_cancellable_new_shared        (CtokToken    *token);
GCancellable *ctok_cancellable_new_for_operation (CtokToken    *token);
void          ctok_cancellable_detach            (GCancellable *shared);

typedef struct _CtokFollow CtokFollow;

CtokFollow   *ctok_follow_new                    (GCancellable *cancellable,
                                                  CtokToken    *token);
void          ctok_follow_free                   (CtokFollow   *follow);

G_END_DECLS
