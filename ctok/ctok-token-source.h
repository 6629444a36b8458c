/* ctok-token-source.h: the controller that cancels a token
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (CTOK_INSIDE) && !defined (CTOK_COMPILATION)
#error "Only <ctok/ctok.h> can be included directly."
#endif

#include <gio/gio.h>

#include <ctok/ctok-version-macros.h>
#include <ctok/ctok-token.h>

G_BEGIN_DECLS

#define CTOK_TYPE_TOKEN_SOURCE (ctok_token_source_get_type ())

CTOK_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CtokTokenSource, ctok_token_source, CTOK, TOKEN_SOURCE, GObject)

CTOK_AVAILABLE_IN_ALL
CtokTokenSource *ctok_token_source_new               (void) G_GNUC_WARN_UNUSED_RESULT;
CTOK_AVAILABLE_IN_ALL
CtokTokenSource *ctok_token_source_new_with_timeout  (guint              timeout_ms) G_GNUC_WARN_UNUSED_RESULT;
CTOK_AVAILABLE_IN_ALL
CtokTokenSource *ctok_token_source_new_with_deadline (gint64             deadline_us) G_GNUC_WARN_UNUSED_RESULT;
CTOK_AVAILABLE_IN_ALL
CtokTokenSource *ctok_token_source_new_linked        (CtokToken * const *tokens,
                                                      gsize              n_tokens) G_GNUC_WARN_UNUSED_RESULT;
CTOK_AVAILABLE_IN_ALL
CtokTokenSource *ctok_token_source_new_linked_all    (CtokToken * const *tokens,
                                                      gsize              n_tokens) G_GNUC_WARN_UNUSED_RESULT;
CTOK_AVAILABLE_IN_ALL
CtokTokenSource *ctok_token_source_new_linked_to_cancellable
                                                     (GCancellable      *cancellable) G_GNUC_WARN_UNUSED_RESULT;

CTOK_AVAILABLE_IN_ALL
CtokToken       *ctok_token_source_get_token         (CtokTokenSource *self);
CTOK_AVAILABLE_IN_ALL
void             ctok_token_source_cancel            (CtokTokenSource *self);
CTOK_AVAILABLE_IN_ALL
void             ctok_token_source_cancel_with_error (CtokTokenSource *self,
                                                      const GError    *reason);
CTOK_AVAILABLE_IN_ALL
gboolean         ctok_token_source_is_cancelled      (CtokTokenSource *self);
CTOK_AVAILABLE_IN_ALL
gboolean         ctok_token_source_try_reset         (CtokTokenSource *self);
CTOK_AVAILABLE_IN_ALL
void             ctok_token_source_close             (CtokTokenSource *self);

CTOK_AVAILABLE_IN_ALL
void             ctok_token_source_cancel_after      (CtokTokenSource *self,
                                                      guint            timeout_ms);
CTOK_AVAILABLE_IN_ALL
void             ctok_token_source_cancel_at         (CtokTokenSource *self,
                                                      gint64           deadline_us);
CTOK_AVAILABLE_IN_ALL
void             ctok_token_source_clear_deadline    (CtokTokenSource *self);
CTOK_AVAILABLE_IN_ALL
gint64           ctok_token_source_get_deadline      (CtokTokenSource *self);

CTOK_AVAILABLE_IN_ALL
gulong           ctok_token_source_cancel_on_signal  (CtokTokenSource *self,
                                                      gpointer         instance,
                                                      const char      *detailed_signal);
CTOK_AVAILABLE_IN_ALL
guint            ctok_token_source_cancel_on_unix_signal
                                                     (CtokTokenSource *self,
                                                      int              signum);
CTOK_AVAILABLE_IN_ALL
void             ctok_token_source_cancel_on_finalize
                                                     (CtokTokenSource *self,
                                                      GObject         *object);

G_END_DECLS
