/* ctok-i18n.c: lazy binding of the gettext domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "ctok-private.h"

/* ctok has no init function, so, like GLib itself, it binds its domain the
 * first time a message is translated. Libraries never call textdomain() or
 * setlocale(): that is the application's business. */
const char *
ctok_gettext (const char *msgid)
{
  static gsize initialized = 0;

  if (g_once_init_enter (&initialized))
    {
      bindtextdomain (GETTEXT_PACKAGE, CTOK_LOCALEDIR);
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
      g_once_init_leave (&initialized, 1);
    }

  return g_dgettext (GETTEXT_PACKAGE, msgid);
}
