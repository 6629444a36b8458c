/* ctok-timer-private.h: the process-wide deadline timer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* An entry in the timer's heap, embedded in whatever it fires for. When it
 * expires, the timer thread calls ctok_token_deadline_expired() with it. */
typedef struct
{
  gint64 due;    /* monotonic microseconds */
  guint  index;  /* position in the heap, CTOK_TIMER_NOT_ARMED when out */
} CtokTimerEntry;

#define CTOK_TIMER_NOT_ARMED G_MAXUINT

void ctok_timer_entry_init  (CtokTimerEntry *entry);
void ctok_timer_arm         (CtokTimerEntry *entry,
                             gint64          due);
void ctok_timer_disarm      (CtokTimerEntry *entry);
void ctok_timer_disarm_sync (CtokTimerEntry *entry);

G_END_DECLS
