/* ctok-token.h: the read-only cancellation signal
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (CTOK_INSIDE) && !defined (CTOK_COMPILATION)
#error "Only <ctok/ctok.h> can be included directly."
#endif

#include <gio/gio.h>

#include <ctok/ctok-version-macros.h>

G_BEGIN_DECLS

#define CTOK_TYPE_TOKEN (ctok_token_get_type ())

CTOK_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CtokToken, ctok_token, CTOK, TOKEN, GObject)

/**
 * CtokTokenCallback:
 * @token: the token that was cancelled
 * @user_data: (closure): the data given when the callback was registered
 *
 * The type of the callbacks registered with [method@Ctok.Token.register]
 * and [method@Ctok.Token.register_in_context].
 *
 * Since: 1.0
 */
typedef void (*CtokTokenCallback) (CtokToken *token,
                                   gpointer   user_data);

/**
 * CtokTokenSourceFunc:
 * @token: the token that was cancelled
 * @user_data: (closure): the data given to [method@GLib.Source.set_callback]
 *
 * The type of the callback of a [struct@GLib.Source] made by
 * [method@Ctok.Token.create_source].
 *
 * Returns: `G_SOURCE_REMOVE` to destroy the source; since a token is
 *   cancelled only once, the source never dispatches again either way
 *
 * Since: 1.0
 */
typedef gboolean (*CtokTokenSourceFunc) (CtokToken *token,
                                         gpointer   user_data);

CTOK_AVAILABLE_IN_ALL
CtokToken    *ctok_token_get_none                  (void);
CTOK_AVAILABLE_IN_ALL
gboolean      ctok_token_can_be_cancelled          (CtokToken            *self);
CTOK_AVAILABLE_IN_ALL
gboolean      ctok_token_is_cancelled              (CtokToken            *self);
CTOK_AVAILABLE_IN_ALL
gboolean      ctok_token_set_error_if_cancelled    (CtokToken            *self,
                                                    GError              **error);
CTOK_AVAILABLE_IN_ALL
GError       *ctok_token_dup_error                 (CtokToken            *self);

CTOK_AVAILABLE_IN_ALL
guint64       ctok_token_register                  (CtokToken            *self,
                                                    CtokTokenCallback     callback,
                                                    gpointer              user_data,
                                                    GDestroyNotify        destroy);
CTOK_AVAILABLE_IN_ALL
guint64       ctok_token_register_in_context       (CtokToken            *self,
                                                    GMainContext         *context,
                                                    CtokTokenCallback     callback,
                                                    gpointer              user_data,
                                                    GDestroyNotify        destroy);
CTOK_AVAILABLE_IN_ALL
gboolean      ctok_token_unregister                (CtokToken            *self,
                                                    guint64               id);
CTOK_AVAILABLE_IN_ALL
gboolean      ctok_token_unregister_nowait         (CtokToken            *self,
                                                    guint64               id);

CTOK_AVAILABLE_IN_ALL
GSource      *ctok_token_create_source             (CtokToken            *self);
CTOK_AVAILABLE_IN_ALL
GCancellable *ctok_token_get_cancellable           (CtokToken            *self);
CTOK_AVAILABLE_IN_ALL
GCancellable *ctok_token_new_cancellable           (CtokToken            *self);
CTOK_AVAILABLE_IN_ALL
gboolean      ctok_token_rewrite_error             (CtokToken            *self,
                                                    GError              **error);
CTOK_AVAILABLE_IN_ALL
GError       *ctok_token_translate_error           (CtokToken            *self,
                                                    const GError         *error);

CTOK_AVAILABLE_IN_ALL
gint64        ctok_token_get_deadline              (CtokToken            *self);
CTOK_AVAILABLE_IN_ALL
int           ctok_token_get_timeout_ms            (CtokToken            *self);

CTOK_AVAILABLE_IN_ALL
gboolean      ctok_token_wait                      (CtokToken            *self,
                                                    gint64                timeout_us);
CTOK_AVAILABLE_IN_ALL
void          ctok_token_wait_async                (CtokToken            *self,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
CTOK_AVAILABLE_IN_ALL
gboolean      ctok_token_wait_finish               (CtokToken            *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);

CTOK_AVAILABLE_IN_ALL
guint         ctok_token_debug_count_registrations (CtokToken            *self);

G_END_DECLS
