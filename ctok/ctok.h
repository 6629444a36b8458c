/* ctok.h: the only header users include
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

#if !GLIB_CHECK_VERSION (2, 74, 0)
# error "ctok requires GLib 2.74 or newer"
#endif

#define CTOK_INSIDE
# include <ctok/ctok-version-macros.h>
# include <ctok/ctok-version.h>
# include <ctok/ctok-token.h>
# include <ctok/ctok-token-source.h>
#undef CTOK_INSIDE
