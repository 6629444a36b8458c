/* ctok-bench.c: every workload for ctok and for plain GCancellable, side by
 * side in one program
 *
 * Each run of a workload happens in a child process of its own, so a crash
 * (GCancellable's recursive chain overflows the stack) loses only that run
 * and memory figures start from a clean process. Implementations alternate,
 * run by run. Every workload checks its own result (each callback ran, each
 * child was cancelled); the program exits non-zero if one did not.
 *
 * Usage: ctok-bench [--quick] [--runs=N] [WORKLOAD...]
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ctok/ctok.h>

/* --- Measuring --- */

static inline gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Anonymous resident memory (the heap and such), in KiB. File-backed pages
 * are left out: a forked child faults in library pages lazily, which would
 * show as growth that has nothing to do with the workload. */
static gint64
rss_kb (void)
{
  g_autofree char *contents = NULL;
  const char *line;
  gint64 kb = 0;

  if (!g_file_get_contents ("/proc/self/status", &contents, NULL, NULL) ||
      (line = strstr (contents, "\nRssAnon:")) == NULL ||
      sscanf (line, "\nRssAnon: %" G_GINT64_FORMAT, &kb) != 1)
    return 0;

  return kb;
}

typedef struct
{
  double   ns_per_op;
  GString *extra;     /* " key=value" pairs */
  double   ratio_key; /* what the ratio compares; ns_per_op unless set */
} Result;

typedef gboolean (*WorkloadFunc) (guint64 n, Result *result);

/* --- Shared callbacks --- */

static guint64 calls;

static void
count_token (CtokToken *token,
             gpointer   user_data)
{
  calls++;
}

static void
count_cancellable (GCancellable *cancellable,
                   gpointer      user_data)
{
  calls++;
}

static void
cancel_child_cancellable (GCancellable *cancellable,
                          gpointer      user_data)
{
  g_cancellable_cancel (user_data);
}

/* --- check --- */

static gboolean
check_ctok (guint64 n, Result *result)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  guint64 seen = 0;
  gint64 start = now_ns ();

  for (guint64 i = 0; i < n; i++)
    seen += ctok_token_is_cancelled (token);

  result->ns_per_op = (double) (now_ns () - start) / n;
  return seen == 0;
}

static gboolean
check_gcancellable (guint64 n, Result *result)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  guint64 seen = 0;
  gint64 start = now_ns ();

  for (guint64 i = 0; i < n; i++)
    seen += g_cancellable_is_cancelled (cancellable);

  result->ns_per_op = (double) (now_ns () - start) / n;
  return seen == 0;
}

/* --- create --- */

static gboolean
create_ctok (guint64 n, Result *result)
{
  guint64 tokens = 0;
  gint64 start = now_ns ();

  for (guint64 i = 0; i < n; i++)
    {
      CtokTokenSource *source = ctok_token_source_new ();

      tokens += ctok_token_source_get_token (source) != NULL;
      g_object_unref (source);
    }

  result->ns_per_op = (double) (now_ns () - start) / n;
  return tokens == n;
}

static gboolean
create_gcancellable (guint64 n, Result *result)
{
  gint64 start = now_ns ();

  for (guint64 i = 0; i < n; i++)
    g_object_unref (g_cancellable_new ());

  result->ns_per_op = (double) (now_ns () - start) / n;
  return TRUE;
}

/* The floor for "create": one empty final GObject, made and dropped. */
typedef struct { GObject parent_instance; } BenchEmpty;
typedef struct { GObjectClass parent_class; } BenchEmptyClass;
GType bench_empty_get_type (void);
G_DEFINE_FINAL_TYPE (BenchEmpty, bench_empty, G_TYPE_OBJECT)
static void bench_empty_class_init (BenchEmptyClass *klass) { }
static void bench_empty_init (BenchEmpty *self) { }

static gboolean
create_floor (guint64 n, Result *result)
{
  gint64 start;

  g_type_ensure (bench_empty_get_type ());
  start = now_ns ();
  for (guint64 i = 0; i < n; i++)
    g_object_unref (g_object_new (bench_empty_get_type (), NULL));

  result->ns_per_op = (double) (now_ns () - start) / n;
  return TRUE;
}

/* --- register --- */

static gboolean
register_ctok (guint64 n, Result *result)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  guint64 removed = 0;
  gint64 start = now_ns ();

  for (guint64 i = 0; i < n; i++)
    {
      guint64 id = ctok_token_register (token, count_token, NULL, NULL);

      removed += ctok_token_unregister (token, id);
    }

  result->ns_per_op = (double) (now_ns () - start) / n;
  return removed == n && ctok_token_debug_count_registrations (token) == 0;
}

static gboolean
register_gcancellable (guint64 n, Result *result)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  gint64 start = now_ns ();

  for (guint64 i = 0; i < n; i++)
    {
      gulong id = g_cancellable_connect (cancellable, G_CALLBACK (count_cancellable), NULL, NULL);

      g_cancellable_disconnect (cancellable, id);
    }

  result->ns_per_op = (double) (now_ns () - start) / n;
  return TRUE;
}

/* --- register_many: n registrations, removed in a fixed scrambled order --- */

static guint64 *
scrambled_order (guint64 n)
{
  guint64 *order = g_new (guint64, n);
  GRand *rand = g_rand_new_with_seed (42);

  for (guint64 i = 0; i < n; i++)
    order[i] = i;
  for (guint64 i = n - 1; i > 0; i--)
    {
      guint64 j = g_rand_int_range (rand, 0, (gint32) (i + 1));
      guint64 tmp = order[i];

      order[i] = order[j];
      order[j] = tmp;
    }

  g_rand_free (rand);
  return order;
}

/* One pass on a new token: n registrations, their ids kept in @ids,
 * removed in @order. Returns the time per pair, or -1 if a removal failed. */
static double
register_many_pass_ctok (guint64 n, const guint64 *order, guint64 *ids)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  guint64 removed = 0;
  gint64 start = now_ns ();

  for (guint64 i = 0; i < n; i++)
    ids[i] = ctok_token_register (token, count_token, NULL, NULL);
  for (guint64 i = 0; i < n; i++)
    removed += ctok_token_unregister (token, ids[order[i]]);

  return removed == n ? (double) (now_ns () - start) / n : -1;
}

static double
register_many_pass_gcancellable (guint64 n, const guint64 *order, guint64 *ids)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  gint64 start = now_ns ();

  for (guint64 i = 0; i < n; i++)
    ids[i] = g_cancellable_connect (cancellable, G_CALLBACK (count_cancellable), NULL, NULL);
  for (guint64 i = 0; i < n; i++)
    g_cancellable_disconnect (cancellable, ids[order[i]]);

  return (double) (now_ns () - start) / n;
}

/* Measured warm, like the other workloads that allocate: the first pass
 * faults in the memory that both implementations then reuse, and on these
 * virtual machines a first touch costs about 2 µs per 4 KiB page, more than
 * the work measured (31 ns per 64-byte registration). That first pass is
 * reported too, as cold_ns_per_op. The benchmark's own array of ids is
 * shared by both passes: allocated anew, it would be faulted in again in
 * the second (glibc maps an allocation that large afresh each time), and
 * that alone cost 20-40 ns per pair. */
static gboolean
register_many_run (guint64 n, Result *result,
                   double (*pass) (guint64 n, const guint64 *order, guint64 *ids))
{
  g_autofree guint64 *order = scrambled_order (n);
  g_autofree guint64 *ids = g_new (guint64, n);
  double cold = pass (n, order, ids);

  result->ns_per_op = pass (n, order, ids);
  g_string_append_printf (result->extra, " cold_ns_per_op=%.1f", cold);
  return cold >= 0 && result->ns_per_op >= 0;
}

/* The floors for "register_many": what any table of n registrations pays
 * on this machine just to reach them in the benchmark's order. Each removal
 * must at least read and write its own record, at a place in memory the
 * order makes random; "touch" does only that, for n 64-byte records under a
 * mutex. "chase" is the memory's latency: a walk through the same records
 * where each address comes from the one before, as in any linked list that
 * is not in memory order. Measured warm, as the workload is. */
typedef struct { guint64 key; gpointer next; guint64 pad[6]; } BenchRecord;

static gboolean
register_many_floor (guint64 n, Result *result)
{
  g_autofree guint64 *order = scrambled_order (n);
  BenchRecord *records = g_aligned_alloc0 (n, sizeof (BenchRecord), 64);
  GMutex mutex;
  guint64 sum = 0;
  double touch = 0;
  double chase = 0;

  g_mutex_init (&mutex);
  for (guint64 i = 0; i < n; i++)
    records[order[i]].next = &records[order[(i + 1) % n]];

  for (int pass = 0; pass < 2; pass++)
    {
      gint64 start = now_ns ();
      BenchRecord *record = &records[order[0]];

      for (guint64 i = 0; i < n; i++)
        {
          g_mutex_lock (&mutex);
          records[order[i]].key++;
          sum += records[order[i]].key;
          g_mutex_unlock (&mutex);
        }
      touch = (double) (now_ns () - start) / n;

      start = now_ns ();
      for (guint64 i = 0; i < n; i++)
        record = record->next;
      chase = (double) (now_ns () - start) / n;
      sum += record->key;
    }

  g_mutex_clear (&mutex);
  g_aligned_free (records);
  result->ns_per_op = touch;
  g_string_append_printf (result->extra, " chase_ns_per_op=%.1f", chase);
  return sum > 0;
}

static gboolean
register_many_ctok (guint64 n, Result *result)
{
  return register_many_run (n, result, register_many_pass_ctok);
}

static gboolean
register_many_gcancellable (guint64 n, Result *result)
{
  return register_many_run (n, result, register_many_pass_gcancellable);
}

/* --- cancel_fanout: n callbacks on one token, one cancel ---
 *
 * cancel_fanout_churned is the same on a token that has been busy. It is not
 * one of the workloads: cancel_fanout's registrations use fresh
 * memory, in order. Here the token first registers n callbacks and removes
 * them in a scrambled order, CHURN_PASSES times, so that the n it then holds
 * lie wherever the removals left them, as in a long-lived process. */

#define CHURN_PASSES 3

static gboolean
fanout_ctok (guint64 n, Result *result, int churn_passes)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autofree guint64 *order = churn_passes > 0 ? scrambled_order (n) : NULL;
  g_autofree guint64 *ids = churn_passes > 0 ? g_new (guint64, n) : NULL;
  gint64 start;

  for (int pass = 0; pass < churn_passes; pass++)
    {
      for (guint64 i = 0; i < n; i++)
        ids[i] = ctok_token_register (token, count_token, NULL, NULL);
      for (guint64 i = 0; i < n; i++)
        if (!ctok_token_unregister (token, ids[order[i]]))
          return FALSE;
    }
  for (guint64 i = 0; i < n; i++)
    ctok_token_register (token, count_token, NULL, NULL);

  calls = 0;
  start = now_ns ();
  ctok_token_source_cancel (source);
  result->ns_per_op = (double) (now_ns () - start) / n;

  return calls == n;
}

static gboolean
fanout_gcancellable (guint64 n, Result *result, int churn_passes)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree guint64 *order = churn_passes > 0 ? scrambled_order (n) : NULL;
  g_autofree gulong *ids = churn_passes > 0 ? g_new (gulong, n) : NULL;
  gint64 start;

  for (int pass = 0; pass < churn_passes; pass++)
    {
      for (guint64 i = 0; i < n; i++)
        ids[i] = g_cancellable_connect (cancellable, G_CALLBACK (count_cancellable), NULL, NULL);
      for (guint64 i = 0; i < n; i++)
        g_cancellable_disconnect (cancellable, ids[order[i]]);
    }
  for (guint64 i = 0; i < n; i++)
    g_cancellable_connect (cancellable, G_CALLBACK (count_cancellable), NULL, NULL);

  calls = 0;
  start = now_ns ();
  g_cancellable_cancel (cancellable);
  result->ns_per_op = (double) (now_ns () - start) / n;

  return calls == n;
}

static gboolean
cancel_fanout_ctok (guint64 n, Result *result)
{
  return fanout_ctok (n, result, 0);
}

static gboolean
cancel_fanout_gcancellable (guint64 n, Result *result)
{
  return fanout_gcancellable (n, result, 0);
}

static gboolean
cancel_fanout_churned_ctok (guint64 n, Result *result)
{
  return fanout_ctok (n, result, CHURN_PASSES);
}

static gboolean
cancel_fanout_churned_gcancellable (guint64 n, Result *result)
{
  return fanout_gcancellable (n, result, CHURN_PASSES);
}

/* --- linked: children of one live root, created and dropped --- */

static gboolean
linked_ctok (guint64 n, Result *result)
{
  g_autoptr(CtokTokenSource) root = ctok_token_source_new ();
  CtokToken *parents[] = { ctok_token_source_get_token (root) };
  gint64 rss_before;
  gint64 start;

  /* Warm up allocator caches so growth is growth. */
  for (guint64 i = 0; i < MIN (n, 10000); i++)
    g_object_unref (ctok_token_source_new_linked (parents, 1));

  rss_before = rss_kb ();
  start = now_ns ();
  for (guint64 i = 0; i < n; i++)
    g_object_unref (ctok_token_source_new_linked (parents, 1));

  result->ns_per_op = (double) (now_ns () - start) / n;
  g_string_append_printf (result->extra, " rss_growth_kb=%" G_GINT64_FORMAT, rss_kb () - rss_before);
  return ctok_token_debug_count_registrations (parents[0]) == 0;
}

typedef struct
{
  GCancellable *child;
  gulong        id;
} GLinked;

static GLinked
glinked_new (GCancellable *parent)
{
  GLinked linked;

  linked.child = g_cancellable_new ();
  linked.id = g_cancellable_connect (parent, G_CALLBACK (cancel_child_cancellable),
                                     g_object_ref (linked.child), g_object_unref);
  return linked;
}

static void
glinked_drop (GCancellable *parent,
              GLinked      *linked)
{
  g_cancellable_disconnect (parent, linked->id);
  g_object_unref (linked->child);
}

static gboolean
linked_gcancellable (guint64 n, Result *result)
{
  g_autoptr(GCancellable) root = g_cancellable_new ();
  gint64 rss_before;
  gint64 start;

  for (guint64 i = 0; i < MIN (n, 10000); i++)
    {
      GLinked linked = glinked_new (root);

      glinked_drop (root, &linked);
    }

  rss_before = rss_kb ();
  start = now_ns ();
  for (guint64 i = 0; i < n; i++)
    {
      GLinked linked = glinked_new (root);

      glinked_drop (root, &linked);
    }

  result->ns_per_op = (double) (now_ns () - start) / n;
  g_string_append_printf (result->extra, " rss_growth_kb=%" G_GINT64_FORMAT, rss_kb () - rss_before);
  return TRUE;
}

/* --- linked_fanout: n live children of one root; cancel the root --- */

static gboolean
linked_fanout_ctok (guint64 n, Result *result)
{
  CtokTokenSource *root = ctok_token_source_new ();
  CtokToken *parents[] = { ctok_token_source_get_token (root) };
  CtokTokenSource **children = g_new (CtokTokenSource *, n);
  guint64 cancelled = 0;
  gint64 start;

  for (guint64 i = 0; i < n; i++)
    children[i] = ctok_token_source_new_linked (parents, 1);

  start = now_ns ();
  ctok_token_source_cancel (root);
  result->ns_per_op = (double) (now_ns () - start) / n;

  for (guint64 i = 0; i < n; i++)
    {
      cancelled += ctok_token_source_is_cancelled (children[i]);
      g_object_unref (children[i]);
    }
  g_free (children);
  g_object_unref (root);

  return cancelled == n;
}

static gboolean
linked_fanout_gcancellable (guint64 n, Result *result)
{
  GCancellable *root = g_cancellable_new ();
  GLinked *children = g_new (GLinked, n);
  guint64 cancelled = 0;
  gint64 start;

  for (guint64 i = 0; i < n; i++)
    children[i] = glinked_new (root);

  start = now_ns ();
  g_cancellable_cancel (root);
  result->ns_per_op = (double) (now_ns () - start) / n;

  for (guint64 i = 0; i < n; i++)
    {
      cancelled += g_cancellable_is_cancelled (children[i].child);
      glinked_drop (root, &children[i]);
    }
  g_free (children);
  g_object_unref (root);

  return cancelled == n;
}

/* --- chain: each source linked to the previous; cancel the head --- */

static gboolean
chain_ctok (guint64 n, Result *result)
{
  CtokTokenSource **chain = g_new (CtokTokenSource *, n);
  guint64 cancelled = 0;
  gint64 start;

  chain[0] = ctok_token_source_new ();
  for (guint64 i = 1; i < n; i++)
    {
      CtokToken *parents[] = { ctok_token_source_get_token (chain[i - 1]) };

      chain[i] = ctok_token_source_new_linked (parents, 1);
    }

  start = now_ns ();
  ctok_token_source_cancel (chain[0]);
  result->ns_per_op = (double) (now_ns () - start) / n;

  for (guint64 i = 0; i < n; i++)
    {
      cancelled += ctok_token_source_is_cancelled (chain[i]);
      g_object_unref (chain[i]);
    }
  g_free (chain);

  return cancelled == n;
}

static gboolean
chain_gcancellable (guint64 n, Result *result)
{
  GCancellable **chain = g_new (GCancellable *, n);
  gulong *ids = g_new0 (gulong, n);
  guint64 cancelled = 0;
  gint64 start;

  chain[0] = g_cancellable_new ();
  for (guint64 i = 1; i < n; i++)
    {
      chain[i] = g_cancellable_new ();
      ids[i] = g_cancellable_connect (chain[i - 1], G_CALLBACK (cancel_child_cancellable),
                                      g_object_ref (chain[i]), g_object_unref);
    }

  /* Each cancel runs the next from its handler: the stack grows with n. */
  start = now_ns ();
  g_cancellable_cancel (chain[0]);
  result->ns_per_op = (double) (now_ns () - start) / n;

  for (guint64 i = 0; i < n; i++)
    cancelled += g_cancellable_is_cancelled (chain[i]);
  for (guint64 i = n - 1; i > 0; i--)
    {
      g_cancellable_disconnect (chain[i - 1], ids[i]);
      g_object_unref (chain[i]);
    }
  g_object_unref (chain[0]);
  g_free (chain);
  g_free (ids);

  return cancelled == n;
}

/* --- deadline_churn: a 10 s deadline armed and dropped before it fires --- */

static gboolean
deadline_churn_ctok (guint64 n, Result *result)
{
  gint64 rss_before;
  gint64 start;

  for (guint64 i = 0; i < MIN (n, 10000); i++)
    g_object_unref (ctok_token_source_new_with_timeout (10000));

  rss_before = rss_kb ();
  start = now_ns ();
  for (guint64 i = 0; i < n; i++)
    g_object_unref (ctok_token_source_new_with_timeout (10000));

  result->ns_per_op = (double) (now_ns () - start) / n;
  g_string_append_printf (result->extra, " rss_growth_kb=%" G_GINT64_FORMAT, rss_kb () - rss_before);
  return TRUE;
}

/* Plain GLib: a timeout GSource per deadline in a context a thread runs. */
typedef struct
{
  GMainContext *context;
  GMainLoop    *loop;
  GThread      *thread;
} TimerThread;

static gpointer
timer_thread_run (gpointer data)
{
  TimerThread *timer = data;

  g_main_context_push_thread_default (timer->context);
  g_main_loop_run (timer->loop);
  g_main_context_pop_thread_default (timer->context);
  return NULL;
}

static void
timer_thread_start (TimerThread *timer)
{
  timer->context = g_main_context_new ();
  timer->loop = g_main_loop_new (timer->context, FALSE);
  timer->thread = g_thread_new ("glib-timer", timer_thread_run, timer);
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
timer_thread_stop (TimerThread *timer)
{
  GSource *quit = g_idle_source_new ();

  g_source_set_callback (quit, quit_loop, timer->loop, NULL);
  g_source_attach (quit, timer->context);
  g_source_unref (quit);
  g_thread_join (timer->thread);
  g_main_loop_unref (timer->loop);
  g_main_context_unref (timer->context);
}

static gboolean
cancel_cancellable_source (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static gboolean
deadline_churn_gcancellable (guint64 n, Result *result)
{
  TimerThread timer;
  gint64 rss_before = 0;
  gint64 start = 0;

  timer_thread_start (&timer);

  for (int phase = 0; phase < 2; phase++)
    {
      guint64 count = phase == 0 ? MIN (n, 10000) : n;

      if (phase == 1)
        {
          rss_before = rss_kb ();
          start = now_ns ();
        }

      for (guint64 i = 0; i < count; i++)
        {
          GCancellable *cancellable = g_cancellable_new ();
          GSource *timeout = g_timeout_source_new (10000);

          g_source_set_callback (timeout, cancel_cancellable_source,
                                 g_object_ref (cancellable), g_object_unref);
          g_source_attach (timeout, timer.context);
          g_source_destroy (timeout);
          g_source_unref (timeout);
          g_object_unref (cancellable);
        }
    }

  result->ns_per_op = (double) (now_ns () - start) / n;
  g_string_append_printf (result->extra, " rss_growth_kb=%" G_GINT64_FORMAT, rss_kb () - rss_before);
  timer_thread_stop (&timer);
  return TRUE;
}

/* --- deadline_fire: n deadlines spread over the next second --- */

#define FIRE_SPREAD_US (1000 * G_TIME_SPAN_MILLISECOND)
#define FIRE_LEAD_US   (20 * G_TIME_SPAN_MILLISECOND)

typedef struct
{
  gint64 deadline;
  gint64 fired;
} Firing;

static int
compare_gint64 (gconstpointer a,
                gconstpointer b)
{
  gint64 x = *(const gint64 *) a;
  gint64 y = *(const gint64 *) b;

  return (x > y) - (x < y);
}

static void
report_lateness (Firing *firings,
                 guint64 n,
                 Result *result)
{
  gint64 *late = g_new (gint64, n);

  for (guint64 i = 0; i < n; i++)
    late[i] = firings[i].fired - firings[i].deadline;
  qsort (late, n, sizeof *late, compare_gint64);

  g_string_append_printf (result->extra,
                          " p50_late_us=%" G_GINT64_FORMAT
                          " p99_late_us=%" G_GINT64_FORMAT
                          " max_late_us=%" G_GINT64_FORMAT
                          " min_late_us=%" G_GINT64_FORMAT,
                          late[n / 2], late[(n * 99) / 100], late[n - 1], late[0]);
  result->ratio_key = (double) MAX (late[(n * 99) / 100], 1);
  g_free (late);
}

static void
record_fired_ctok (CtokToken *token,
                   gpointer   user_data)
{
  Firing *firing = user_data;

  __atomic_store_n (&firing->fired, g_get_monotonic_time (), __ATOMIC_RELEASE);
}

static gboolean
deadline_fire_ctok (guint64 n, Result *result)
{
  Firing *firings = g_new0 (Firing, n);
  CtokTokenSource **sources = g_new (CtokTokenSource *, n);
  gint64 base = g_get_monotonic_time () + FIRE_LEAD_US;
  gboolean ok = TRUE;
  gint64 start;

  for (guint64 i = 0; i < n; i++)
    {
      firings[i].deadline = base + (gint64) (FIRE_SPREAD_US * i / n);
      sources[i] = ctok_token_source_new_with_deadline (firings[i].deadline);
      ctok_token_register (ctok_token_source_get_token (sources[i]), record_fired_ctok,
                           &firings[i], NULL);
    }

  start = now_ns ();
  for (guint64 i = 0; i < n; i++)
    ok &= ctok_token_wait (ctok_token_source_get_token (sources[i]), -1);
  result->ns_per_op = (double) (now_ns () - start) / n;

  /* wait() returns when cancellation starts: let the callbacks finish. */
  for (guint64 i = 0; i < n; i++)
    {
      while (__atomic_load_n (&firings[i].fired, __ATOMIC_ACQUIRE) == 0)
        g_usleep (100);
      g_object_unref (sources[i]);
    }

  report_lateness (firings, n, result);
  g_free (sources);
  g_free (firings);
  return ok;
}

typedef struct
{
  Firing       *firing;
  GCancellable *cancellable;
} GFiring;

static gboolean
record_fired_gcancellable (gpointer data)
{
  GFiring *g = data;

  g_cancellable_cancel (g->cancellable);
  __atomic_store_n (&g->firing->fired, g_get_monotonic_time (), __ATOMIC_RELEASE);
  return G_SOURCE_REMOVE;
}

static gboolean
deadline_fire_gcancellable (guint64 n, Result *result)
{
  Firing *firings = g_new0 (Firing, n);
  GFiring *gfirings = g_new0 (GFiring, n);
  gint64 base = g_get_monotonic_time () + FIRE_LEAD_US;
  guint64 cancelled = 0;
  TimerThread timer;
  gint64 start;

  timer_thread_start (&timer);

  for (guint64 i = 0; i < n; i++)
    {
      gint64 delay_us;
      GSource *timeout;

      firings[i].deadline = base + (gint64) (FIRE_SPREAD_US * i / n);
      gfirings[i].firing = &firings[i];
      gfirings[i].cancellable = g_cancellable_new ();

      /* g_timeout_source_new() takes whole milliseconds from now. */
      delay_us = firings[i].deadline - g_get_monotonic_time ();
      timeout = g_timeout_source_new ((guint) MAX (0, (delay_us + 999) / 1000));
      g_source_set_callback (timeout, record_fired_gcancellable, &gfirings[i], NULL);
      g_source_attach (timeout, timer.context);
      g_source_unref (timeout);
    }

  start = now_ns ();
  for (guint64 i = 0; i < n; i++)
    while (__atomic_load_n (&firings[i].fired, __ATOMIC_ACQUIRE) == 0)
      g_usleep (100);
  result->ns_per_op = (double) (now_ns () - start) / n;

  timer_thread_stop (&timer);
  for (guint64 i = 0; i < n; i++)
    {
      cancelled += g_cancellable_is_cancelled (gfirings[i].cancellable);
      g_object_unref (gfirings[i].cancellable);
    }

  report_lateness (firings, n, result);
  g_free (gfirings);
  g_free (firings);
  return cancelled == n;
}

/* --- memory: n live sources, each with its token and one callback --- */

static gboolean
memory_ctok (guint64 n, Result *result)
{
  CtokTokenSource **sources = g_new (CtokTokenSource *, n);
  gint64 before;
  gint64 start;
  gint64 bytes;

  before = rss_kb ();
  start = now_ns ();
  for (guint64 i = 0; i < n; i++)
    {
      sources[i] = ctok_token_source_new ();
      ctok_token_register (ctok_token_source_get_token (sources[i]), count_token, NULL, NULL);
    }
  result->ns_per_op = (double) (now_ns () - start) / n;

  /* The array of pointers is the benchmark's, not the library's. */
  bytes = (rss_kb () - before) * 1024 - (gint64) (n * sizeof *sources);
  g_string_append_printf (result->extra, " bytes_per_op=%.0f", (double) bytes / n);
  result->ratio_key = (double) bytes / n;

  calls = 0;
  for (guint64 i = 0; i < n; i++)
    {
      ctok_token_source_cancel (sources[i]);
      g_object_unref (sources[i]);
    }
  g_free (sources);

  return calls == n;
}

static gboolean
memory_gcancellable (guint64 n, Result *result)
{
  GCancellable **cancellables = g_new (GCancellable *, n);
  gint64 before;
  gint64 start;
  gint64 bytes;

  before = rss_kb ();
  start = now_ns ();
  for (guint64 i = 0; i < n; i++)
    {
      cancellables[i] = g_cancellable_new ();
      g_cancellable_connect (cancellables[i], G_CALLBACK (count_cancellable), NULL, NULL);
    }
  result->ns_per_op = (double) (now_ns () - start) / n;

  bytes = (rss_kb () - before) * 1024 - (gint64) (n * sizeof *cancellables);
  g_string_append_printf (result->extra, " bytes_per_op=%.0f", (double) bytes / n);
  result->ratio_key = (double) bytes / n;

  calls = 0;
  for (guint64 i = 0; i < n; i++)
    {
      g_cancellable_cancel (cancellables[i]);
      g_object_unref (cancellables[i]);
    }
  g_free (cancellables);

  return calls == n;
}

/* --- Driver --- */

typedef struct
{
  const char   *name;
  guint64       n;
  WorkloadFunc  ctok;
  WorkloadFunc  gcancellable;
  const char   *compares;  /* what the ratio compares */
} Workload;

static const Workload workloads[] = {
  { "check",          100000000, check_ctok,          check_gcancellable,          "ns_per_op" },
  { "create",           1000000, create_ctok,         create_gcancellable,         "ns_per_op" },
  { "register",         1000000, register_ctok,       register_gcancellable,       "ns_per_op" },
  { "register_many",     100000, register_many_ctok,  register_many_gcancellable,  "ns_per_op" },
  { "cancel_fanout",     100000, cancel_fanout_ctok,  cancel_fanout_gcancellable,  "ns_per_op" },
  { "cancel_fanout_churned", 100000, cancel_fanout_churned_ctok, cancel_fanout_churned_gcancellable, "ns_per_op" },
  { "linked",           1000000, linked_ctok,         linked_gcancellable,         "ns_per_op" },
  { "linked_fanout",     100000, linked_fanout_ctok,  linked_fanout_gcancellable,  "ns_per_op" },
  { "chain",             100000, chain_ctok,          chain_gcancellable,          "ns_per_op" },
  { "deadline_churn",   1000000, deadline_churn_ctok, deadline_churn_gcancellable, "ns_per_op" },
  { "deadline_fire",      10000, deadline_fire_ctok,  deadline_fire_gcancellable,  "p99_late_us" },
  { "memory",           1000000, memory_ctok,         memory_gcancellable,         "bytes_per_op" },
};

typedef enum
{
  RUN_OK,
  RUN_FAILED,   /* the workload's own check failed */
  RUN_CRASHED,
} RunStatus;

typedef struct
{
  RunStatus status;
  double    ns_per_op;
  double    ratio_key;
  char     *extra;
} Run;

static gboolean no_fork;

/* Runs one workload in a child process; its result comes back on a pipe.
 * With --no-fork (for profilers), in this process. */
static Run
run_in_child (WorkloadFunc func,
              guint64      n)
{
  Run run = { RUN_CRASHED, 0, 0, NULL };
  char buffer[1024];
  ssize_t len = 0;
  int fds[2];
  pid_t pid;
  int status;

  if (no_fork)
    {
      Result result = { 0, g_string_new (NULL), -1 };

      run.status = func (n, &result) ? RUN_OK : RUN_FAILED;
      run.ns_per_op = result.ns_per_op;
      run.ratio_key = result.ratio_key < 0 ? result.ns_per_op : result.ratio_key;
      run.extra = g_string_free (result.extra, FALSE);
      return run;
    }

  if (pipe (fds) != 0)
    g_error ("pipe: %s", g_strerror (errno));

  fflush (stdout);
  pid = fork ();
  if (pid < 0)
    g_error ("fork: %s", g_strerror (errno));

  if (pid == 0)
    {
      Result result = { 0, g_string_new (NULL), -1 };
      gboolean ok;
      char *line;


      close (fds[0]);
      ok = func (n, &result);
      if (result.ratio_key < 0)
        result.ratio_key = result.ns_per_op;
      line = g_strdup_printf ("%d %.3f %.3f%s", ok, result.ns_per_op, result.ratio_key, result.extra->str);
      if (write (fds[1], line, strlen (line)) < 0)
        _exit (3);
      _exit (0);
    }

  close (fds[1]);
  for (;;)
    {
      ssize_t got = read (fds[0], buffer + len, sizeof buffer - 1 - len);

      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0)
        break;
      len += got;
    }
  buffer[len] = '\0';
  close (fds[0]);

  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;

  if (WIFEXITED (status) && WEXITSTATUS (status) == 0 && len > 0)
    {
      int ok = 0;
      int consumed = 0;

      if (sscanf (buffer, "%d %lf %lf%n", &ok, &run.ns_per_op, &run.ratio_key, &consumed) >= 3)
        {
          run.status = ok ? RUN_OK : RUN_FAILED;
          run.extra = g_strdup (buffer + consumed);
        }
    }

  return run;
}

static int
compare_runs (gconstpointer a,
              gconstpointer b)
{
  const Run *x = a;
  const Run *y = b;

  return (x->ratio_key > y->ratio_key) - (x->ratio_key < y->ratio_key);
}

/* The median run (by the compared figure) of those that completed. */
static const Run *
median_run (Run  *runs,
            guint n_runs)
{
  Run *ok = g_newa (Run, n_runs);
  guint n_ok = 0;

  for (guint i = 0; i < n_runs; i++)
    if (runs[i].status != RUN_CRASHED)
      ok[n_ok++] = runs[i];

  if (n_ok == 0)
    return &runs[0];

  qsort (ok, n_ok, sizeof *ok, compare_runs);
  for (guint i = 0; i < n_runs; i++)
    if (runs[i].status != RUN_CRASHED && runs[i].ratio_key == ok[n_ok / 2].ratio_key)
      return &runs[i];

  return &runs[0];
}

static void
print_run (const char *impl,
           const char *workload,
           guint64     n,
           const Run  *run,
           guint       n_runs)
{
  if (run->status == RUN_CRASHED)
    g_print ("impl=%s workload=%s n=%" G_GUINT64_FORMAT " ns_per_op=crash\n", impl, workload, n);
  else
    g_print ("impl=%s workload=%s n=%" G_GUINT64_FORMAT " ns_per_op=%.1f%s%s runs=%u\n",
             impl, workload, n, run->ns_per_op, run->extra,
             run->status == RUN_FAILED ? " check=FAILED" : "", n_runs);
}

int
main (int   argc,
      char *argv[])
{
  gboolean quick = FALSE;
  int n_runs = 1;
  gboolean failed = FALSE;
  g_auto(GStrv) names = NULL;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  const GOptionEntry entries[] = {
    { "quick", 'q', 0, G_OPTION_ARG_NONE, &quick, "Divide every n by 100 (for CI)", NULL },
    { "runs", 'r', 0, G_OPTION_ARG_INT, &n_runs, "Runs per implementation; the median is reported", "N" },
    { "no-fork", 0, 0, G_OPTION_ARG_NONE, &no_fork, "Run in this process (for profilers; a crash ends the program)", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &names, NULL, "[WORKLOAD…]" },
    G_OPTION_ENTRY_NULL
  };

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
                                "Runs each workload for ctok and for plain GCancellable, alternating, "
                                "each run in its own process.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || n_runs < 1)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "--runs must be at least 1");
      return 2;
    }

  for (guint w = 0; w < G_N_ELEMENTS (workloads); w++)
    {
      const Workload *workload = &workloads[w];
      guint64 n = quick ? MAX (workload->n / 100, 100) : workload->n;
      Run *ctok_runs = g_new0 (Run, n_runs);
      Run *glib_runs = g_new0 (Run, n_runs);
      const Run *ctok;
      const Run *glib;

      if (names != NULL && !g_strv_contains ((const char * const *) names, workload->name))
        continue;

      /* Alternate, and alternate who goes first, so drift hits both. */
      for (int r = 0; r < n_runs; r++)
        {
          if (r % 2 == 0)
            {
              ctok_runs[r] = run_in_child (workload->ctok, n);
              glib_runs[r] = run_in_child (workload->gcancellable, n);
            }
          else
            {
              glib_runs[r] = run_in_child (workload->gcancellable, n);
              ctok_runs[r] = run_in_child (workload->ctok, n);
            }
        }

      ctok = median_run (ctok_runs, n_runs);
      glib = median_run (glib_runs, n_runs);
      print_run ("ctok", workload->name, n, ctok, n_runs);
      print_run ("gcancellable", workload->name, n, glib, n_runs);

      if (ctok->status == RUN_OK && glib->status == RUN_OK)
        g_print ("ratio workload=%s ctok/gcancellable=%.3f compares=%s\n",
                 workload->name, ctok->ratio_key / glib->ratio_key, workload->compares);
      else
        g_print ("ratio workload=%s ctok/gcancellable=%s compares=%s\n", workload->name,
                 ctok->status != RUN_OK ? "ctok-" : (glib->status == RUN_CRASHED ? "crash" : "failed"),
                 workload->compares);

      if (g_str_equal (workload->name, "create"))
        {
          Run floor = run_in_child (create_floor, n);

          g_print ("floor workload=create empty_final_gobject_ns_per_op=%.1f\n", floor.ns_per_op);
          g_free (floor.extra);
        }
      else if (g_str_equal (workload->name, "register_many"))
        {
          Run floor = run_in_child (register_many_floor, n);

          g_print ("floor workload=register_many touch_ns_per_op=%.1f%s\n",
                   floor.ns_per_op, floor.extra != NULL ? floor.extra : "");
          g_free (floor.extra);
        }

      /* ctok must complete and pass its own checks; GCancellable may crash
       * (that is one of the findings), but must not compute wrong results. */
      for (int r = 0; r < n_runs; r++)
        {
          if (ctok_runs[r].status != RUN_OK || glib_runs[r].status == RUN_FAILED)
            failed = TRUE;
          g_free (ctok_runs[r].extra);
          g_free (glib_runs[r].extra);
        }
      g_free (ctok_runs);
      g_free (glib_runs);
    }

  return failed ? 1 : 0;
}
