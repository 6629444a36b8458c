/* fuzz-ops.c: a libFuzzer harness that reads its input as a sequence of
 * operations on a small pool of sources, tokens, registrations and threads,
 * and checks ctok's invariants at the end of each input
 *
 * Build with clang: -Dfuzzing=true (see tests/fuzz/meson.build), run with
 *   fuzz-ops -max_total_time=600 corpus-dir tests/fuzz/corpus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdint.h>
#include <string.h>

#include <ctok/ctok.h>

#define N_SOURCES 6
#define N_REGS    24
#define N_THREADS 4

typedef struct
{
  CtokTokenSource *source;        /* NULL once dropped */
  CtokToken       *token;         /* kept to the end for the checks */
  CtokToken       *parents[2];   /* references */
  guint            n_parents;
  gboolean         all;
  gboolean         self_cancel;   /* cancelled by us, its cancellable or a deadline */
  gboolean         closed;
} Slot;

typedef struct
{
  int       calls;      /* atomic */
  int       destroys;   /* atomic */
  gboolean  removed;
  gboolean  reset_dropped;
  guint     slot;
  CtokToken *token;     /* a reference while registered */
  guint64   id;
  gboolean  in_context;
  gboolean  used;
} Reg;

typedef struct
{
  Slot          slots[N_SOURCES];
  Reg           regs[N_REGS];
  GThread      *threads[N_THREADS];
  GMainContext *context;
  const guint8 *data;
  size_t        size;
  size_t        pos;
} Fuzz;

static guint
next (Fuzz  *fuzz,
      guint  modulo)
{
  if (fuzz->pos >= fuzz->size)
    return 0;
  return fuzz->data[fuzz->pos++] % modulo;
}

static void
reg_callback (CtokToken *token,
              gpointer   user_data)
{
  Reg *reg = user_data;

  g_assert (g_atomic_int_add (&reg->calls, 1) == 0);
  g_assert (ctok_token_is_cancelled (token));
}

static void
reg_destroy (gpointer user_data)
{
  Reg *reg = user_data;

  g_assert (g_atomic_int_add (&reg->destroys, 1) == 0);
}

/* A token's GSource dispatches once, and only once its token is cancelled. */
static gboolean
source_fired (CtokToken *token,
              gpointer   user_data)
{
  int *dispatched = user_data;

  g_assert (ctok_token_is_cancelled (token));
  g_assert (++*dispatched == 1);
  return G_SOURCE_REMOVE;
}

static gpointer
cancel_thread (gpointer data)
{
  ctok_token_source_cancel (data);
  g_object_unref (data);
  return NULL;
}

static void
slot_new (Fuzz  *fuzz,
          guint  index,
          guint  kind)
{
  Slot *slot = &fuzz->slots[index];
  CtokToken *tokens[2];
  guint n = 0;

  g_clear_object (&slot->source);
  g_clear_object (&slot->token);
  for (guint i = 0; i < slot->n_parents; i++)
    g_clear_object (&slot->parents[i]);
  memset (slot, 0, sizeof *slot);

  if (kind >= 2)
    for (guint i = 0; i < 1 + kind % 2; i++)
      {
        guint parent = next (fuzz, N_SOURCES);

        /* Only slots made earlier, so links never form a cycle. */
        if (parent != index && fuzz->slots[parent].token != NULL)
          {
            tokens[n] = fuzz->slots[parent].token;
            slot->parents[n++] = g_object_ref (fuzz->slots[parent].token);
          }
      }

  slot->all = kind == 5;
  slot->n_parents = n;
  if (kind == 1)
    {
      slot->self_cancel = TRUE;   /* a 0 ms deadline */
      slot->source = ctok_token_source_new_with_timeout (0);
    }
  else if (slot->all)
    slot->source = ctok_token_source_new_linked_all (tokens, n);
  else
    slot->source = ctok_token_source_new_linked (tokens, n);

  slot->token = g_object_ref (ctok_token_source_get_token (slot->source));
}

static void
reg_release (Reg *reg)
{
  g_clear_object (&reg->token);
}

static void
run (Fuzz *fuzz)
{
  while (fuzz->pos < fuzz->size)
    {
      guint op = next (fuzz, 20);
      guint index = next (fuzz, N_SOURCES);
      Slot *slot = &fuzz->slots[index];
      Reg *reg = &fuzz->regs[next (fuzz, N_REGS)];

      /* Using a closed or dropped source is a programmer error: not fuzzed. */
      gboolean usable = slot->source != NULL && !slot->closed;

      switch (op)
        {
        case 0: case 1:
          slot_new (fuzz, index, next (fuzz, 6));
          break;

        case 2:
          if (usable)
            {
              slot->self_cancel = TRUE;
              ctok_token_source_cancel (slot->source);
            }
          break;

        case 3:
          if (usable)
            {
              g_autoptr(GError) reason = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "fuzz");

              slot->self_cancel = TRUE;
              ctok_token_source_cancel_with_error (slot->source, reason);
            }
          break;

        case 4:
          if (usable)
            {
              slot->closed = TRUE;
              ctok_token_source_close (slot->source);
            }
          break;

        case 5: case 6:
          if (slot->token != NULL && !reg->used)
            {
              reg->used = TRUE;
              reg->slot = index;
              reg->in_context = op == 6;
              reg->token = g_object_ref (slot->token);
              reg->id = reg->in_context
                ? ctok_token_register_in_context (reg->token, fuzz->context, reg_callback, reg, reg_destroy)
                : ctok_token_register (reg->token, reg_callback, reg, reg_destroy);
            }
          break;

        case 7: case 8:
          if (reg->token != NULL && !reg->removed)
            {
              gboolean removed = op == 7 ? ctok_token_unregister (reg->token, reg->id)
                                         : ctok_token_unregister_nowait (reg->token, reg->id);

              if (removed)
                {
                  g_assert (g_atomic_int_get (&reg->calls) == 0);
                  reg->removed = TRUE;
                }
            }
          break;

        case 9:
          if (usable && ctok_token_source_try_reset (slot->source))
            {
              /* Only the main thread registers: what was pending on the
               * token now never runs. */
              for (guint i = 0; i < N_REGS; i++)
                {
                  Reg *r = &fuzz->regs[i];

                  if (r->used && r->token == slot->token && !r->removed &&
                      g_atomic_int_get (&r->calls) == 0 && r->id != 0)
                    r->reset_dropped = TRUE;
                }
            }
          break;

        case 10:
          if (usable)
            {
              guint which = next (fuzz, 3);

              if (which == 0)
                {
                  slot->self_cancel = TRUE;
                  ctok_token_source_cancel_after (slot->source, 0);
                }
              else if (which == 1)
                ctok_token_source_cancel_after (slot->source, 1000000);
              else
                ctok_token_source_clear_deadline (slot->source);
            }
          break;

        case 11:
          if (slot->token != NULL)
            {
              GCancellable *cancellable = ctok_token_get_cancellable (slot->token);

              if (next (fuzz, 2) && !slot->closed)
                {
                  slot->self_cancel = TRUE;
                  g_cancellable_cancel (cancellable);
                }
            }
          break;

        case 12:
          if (slot->token != NULL)
            {
              GCancellable *cancellable = ctok_token_new_cancellable (slot->token);

              if (next (fuzz, 2))
                g_cancellable_cancel (cancellable);
              g_object_unref (cancellable);
            }
          break;

        case 13:
          if (slot->token != NULL)
            {
              GSource *source = ctok_token_create_source (slot->token);

              g_source_set_callback (source, G_SOURCE_FUNC (source_fired),
                                     g_new0 (int, 1), g_free);
              g_source_attach (source, fuzz->context);
              if (next (fuzz, 2))
                g_source_destroy (source);
              g_source_unref (source);
            }
          break;

        case 14:
          /* Drop the source; the token stays for the checks. */
          g_clear_object (&slot->source);
          break;

        case 15:
          {
            GThread **thread = &fuzz->threads[next (fuzz, N_THREADS)];

            if (*thread != NULL)
              g_thread_join (g_steal_pointer (thread));
            if (usable)
              {
                slot->self_cancel = TRUE;
                *thread = g_thread_new ("fuzz", cancel_thread, g_object_ref (slot->source));
              }
          }
          break;

        case 16:
          while (g_main_context_iteration (fuzz->context, FALSE))
            ;
          break;

        case 17:
          if (reg->token != NULL && reg->id == 0)
            reg_release (reg);
          break;

        default:
          if (slot->token != NULL)
            {
              g_autoptr(GError) error = ctok_token_dup_error (slot->token);

              g_assert ((error != NULL) == ctok_token_is_cancelled (slot->token));
              (void) ctok_token_get_timeout_ms (slot->token);
            }
          break;
        }
    }
}

static gboolean
explained_by_parents (Fuzz *fuzz,
                      Slot *slot)
{
  guint cancelled = 0;

  for (guint i = 0; i < slot->n_parents; i++)
    cancelled += ctok_token_is_cancelled (slot->parents[i]);

  return slot->all ? slot->n_parents > 0 && cancelled == slot->n_parents : cancelled > 0;
}

static void
check (Fuzz *fuzz)
{
  for (guint i = 0; i < N_THREADS; i++)
    if (fuzz->threads[i] != NULL)
      g_thread_join (g_steal_pointer (&fuzz->threads[i]));
  while (g_main_context_iteration (fuzz->context, FALSE))
    ;

  for (guint i = 0; i < N_REGS; i++)
    {
      Reg *reg = &fuzz->regs[i];
      gboolean cancelled;

      if (!reg->used)
        continue;

      /* A slot replaced since still has its token in the registration. */
      cancelled = reg->token != NULL ? ctok_token_is_cancelled (reg->token) : TRUE;
      g_assert (g_atomic_int_get (&reg->calls) <= 1);
      if (reg->removed || reg->reset_dropped)
        g_assert (reg->calls == 0);
      if (reg->token != NULL && !cancelled)
        g_assert (reg->calls == 0);
      if (reg->token != NULL && cancelled)
        g_assert (reg->calls + reg->removed + reg->reset_dropped == 1);
    }

  for (guint i = 0; i < N_SOURCES; i++)
    {
      Slot *slot = &fuzz->slots[i];

      if (slot->token == NULL)
        continue;

      if (ctok_token_is_cancelled (slot->token))
        g_assert (slot->self_cancel || explained_by_parents (fuzz, slot));
      else if (!slot->closed)
        g_assert (!explained_by_parents (fuzz, slot));
    }
}

static void
cleanup (Fuzz *fuzz)
{
  for (guint i = 0; i < N_SOURCES; i++)
    {
      g_clear_object (&fuzz->slots[i].source);
      g_clear_object (&fuzz->slots[i].token);
      for (guint p = 0; p < fuzz->slots[i].n_parents; p++)
        g_clear_object (&fuzz->slots[i].parents[p]);
    }
  for (guint i = 0; i < N_REGS; i++)
    {
      Reg *reg = &fuzz->regs[i];

      if (reg->token != NULL && !reg->removed)
        ctok_token_unregister (reg->token, reg->id);
      reg_release (reg);
    }
  while (g_main_context_iteration (fuzz->context, FALSE))
    ;
  /* Every registration is over: destroy notifies ran exactly once. */
  for (guint i = 0; i < N_REGS; i++)
    if (fuzz->regs[i].used)
      g_assert (fuzz->regs[i].destroys == 1);
  g_main_context_unref (fuzz->context);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  Fuzz fuzz;

  memset (&fuzz, 0, sizeof fuzz);
  fuzz.data = data;
  fuzz.size = MIN (size, 4096);
  fuzz.context = g_main_context_new ();

  run (&fuzz);
  check (&fuzz);
  cleanup (&fuzz);

  return 0;
}
