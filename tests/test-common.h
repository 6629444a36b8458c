/* test-common.h: helpers shared by the C tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <ctok/ctok.h>

G_BEGIN_DECLS

#define TEST_ERROR (test_error_quark ())
static inline GQuark
test_error_quark (void)
{
  return g_quark_from_static_string ("ctok-test-error-quark");
}

/* Counts what happens to one registration. Atomic, so threads may share it. */
typedef struct
{
  int        calls;
  int        destroys;
  CtokToken *token;
  GThread   *thread;
  gboolean   saw_cancelled;
} CallbackRecord;

static inline void
record_callback (CtokToken *token,
                 gpointer   user_data)
{
  CallbackRecord *record = user_data;

  record->token = token;
  record->thread = g_thread_self ();
  record->saw_cancelled = ctok_token_is_cancelled (token);
  g_atomic_int_inc (&record->calls);
}

static inline void
record_destroy (gpointer user_data)
{
  CallbackRecord *record = user_data;

  g_atomic_int_inc (&record->destroys);
}

G_END_DECLS
