/* test-i18n.c: the library's messages come out translated
 *
 * Run once per language, with LANGUAGE=de or LANGUAGE=fr and LC_ALL=C.UTF-8
 * (GNU gettext ignores LANGUAGE when the locale is "C"), against the
 * catalogues in the build tree: CTOK_PO_BUILDDIR/<lang>/LC_MESSAGES/ctok-1.mo.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <libintl.h>
#include <locale.h>
#include <signal.h>

#include <ctok/ctok.h>

#ifndef CTOK_GETTEXT_PACKAGE
#error "CTOK_GETTEXT_PACKAGE must name the library's gettext domain"
#endif
#ifndef CTOK_PO_BUILDDIR
#error "CTOK_PO_BUILDDIR must name the build tree's po directory"
#endif

typedef struct
{
  const char *language;
  const char *cancelled;      /* "Operation was cancelled", as GLib translates it */
  const char *deadline;       /* "Deadline exceeded" */
  const char *unix_signal;    /* "Cancelled by signal %s", for SIGUSR1 */
} Expected;

static const Expected catalogue[] = {
  { "de", "Vorgang wurde abgebrochen", "Zeitlimit überschritten",
    "Durch Signal SIGUSR1 abgebrochen" },
  { "fr", "L’opération a été annulée", "Délai dépassé",
    "Annulé par le signal SIGUSR1" },
};

static const Expected *expected;

static void
test_catalogue_built (void)
{
  g_autofree char *path = g_build_filename (CTOK_PO_BUILDDIR, expected->language,
                                            "LC_MESSAGES", CTOK_GETTEXT_PACKAGE ".mo", NULL);

  g_test_summary ("meson built the catalogue where the test points the domain");

  g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));
}

static void
test_cancelled (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  g_autoptr(GError) error = NULL;

  g_test_summary ("A plain cancel's reason, G_IO_ERROR_CANCELLED, is translated as GLib's is");

  ctok_token_source_cancel (source);

  error = ctok_token_dup_error (ctok_token_source_get_token (source));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpstr (error->message, ==, expected->cancelled);
}

static void
test_deadline (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new_with_timeout (0);
  g_autoptr(GError) error = NULL;

  g_test_summary ("A deadline's reason, G_IO_ERROR_TIMED_OUT, is translated");

  error = ctok_token_dup_error (ctok_token_source_get_token (source));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpstr (error->message, ==, expected->deadline);
}

static void
test_unix_signal (void)
{
  g_autoptr(CtokTokenSource) source = ctok_token_source_new ();
  CtokToken *token = ctok_token_source_get_token (source);
  g_autoptr(GError) error = NULL;

  g_test_summary ("A format string keeps its argument in translation");

  ctok_token_source_cancel_on_unix_signal (source, SIGUSR1);
  raise (SIGUSR1);
  while (!ctok_token_is_cancelled (token))
    g_main_context_iteration (NULL, TRUE);

  error = ctok_token_dup_error (token);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpstr (error->message, ==, expected->unix_signal);
}

static void
test_no_language (void)
{
  g_test_skip ("run with LANGUAGE=de or LANGUAGE=fr");
}

/* ctok binds its domain to the install prefix the first time it translates
 * a message (ctok/ctok-i18n.c). Make that happen now, then bind the domain
 * again, to the build tree, so that the binding sticks. */
static void
use_build_tree_catalogues (void)
{
  CtokTokenSource *first = ctok_token_source_new_with_timeout (0);

  g_object_unref (first);

  g_assert_nonnull (bindtextdomain (CTOK_GETTEXT_PACKAGE, CTOK_PO_BUILDDIR));
  g_assert_nonnull (bind_textdomain_codeset (CTOK_GETTEXT_PACKAGE, "UTF-8"));
}

int
main (int   argc,
      char *argv[])
{
  const char *language = g_getenv ("LANGUAGE");

  g_test_init (&argc, &argv, NULL);

  /* The environment picks the locale; it must not be "C" or "POSIX". */
  if (setlocale (LC_ALL, "") == NULL)
    setlocale (LC_ALL, "C.UTF-8");

  for (gsize i = 0; i < G_N_ELEMENTS (catalogue); i++)
    if (g_strcmp0 (language, catalogue[i].language) == 0)
      expected = &catalogue[i];

  if (expected == NULL)
    {
      g_test_add_func ("/i18n/language", test_no_language);
      return g_test_run ();
    }

  use_build_tree_catalogues ();

  g_test_add_func ("/i18n/catalogue-built", test_catalogue_built);
  g_test_add_func ("/i18n/reason/cancelled", test_cancelled);
  g_test_add_func ("/i18n/reason/deadline", test_deadline);
  g_test_add_func ("/i18n/reason/unix-signal", test_unix_signal);

  return g_test_run ();
}
