/* ctok-private.h: library-wide internals
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib/gi18n-lib.h>

G_BEGIN_DECLS

/* Messages meant for people go through the library's own gettext domain,
 * bound lazily on first use (see ctok-i18n.c). */
const char *ctok_gettext (const char *msgid) G_GNUC_FORMAT (1);

#undef _
#define _(String) ctok_gettext (String)

/* 64-bit atomics: GLib 2.74 has none, so use the compiler builtins that GLib
 * itself is built on. */
#define ctok_atomic_load64(p)     __atomic_load_n ((p), __ATOMIC_ACQUIRE)
#define ctok_atomic_store64(p, v) __atomic_store_n ((p), (v), __ATOMIC_RELEASE)

/* A release store, for a word whose other writers hold the same lock or
 * come later on this thread: GLib's g_atomic_*_set() are sequentially
 * consistent, a full fence each on x86, which the cancel loop cannot
 * afford once per token. */
#define ctok_atomic_store_release(p, v) __atomic_store_n ((p), (v), __ATOMIC_RELEASE)

GThread *ctok_thread_self     (void);
void     ctok_release_object (gpointer object);

G_END_DECLS
