/* ctok-version-macros.h: export and availability macros
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (CTOK_INSIDE) && !defined (CTOK_COMPILATION)
#error "Only <ctok/ctok.h> can be included directly."
#endif

#include <glib.h>

/* The library build defines _CTOK_EXTERN in config.h so that public symbols
 * get default visibility while everything else stays hidden. */
#ifndef _CTOK_EXTERN
#define _CTOK_EXTERN extern
#endif

/**
 * CTOK_AVAILABLE_IN_ALL: (skip)
 *
 * Marks a symbol that is part of ctok's API since its first release.
 *
 * Since: 1.0
 */
#define CTOK_AVAILABLE_IN_ALL _CTOK_EXTERN
