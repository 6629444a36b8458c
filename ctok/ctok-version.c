/* ctok-version.c: run-time version information
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "ctok-version.h"

/**
 * ctok_get_major_version:
 *
 * Gets the major version of the ctok library in use at run time, which may
 * differ from [const@Ctok.MAJOR_VERSION] the program was compiled with.
 *
 * Returns: the major version
 *
 * Since: 1.0
 */
guint
ctok_get_major_version (void)
{
  return CTOK_MAJOR_VERSION;
}

/**
 * ctok_get_minor_version:
 *
 * Gets the minor version of the ctok library in use at run time.
 *
 * Returns: the minor version
 *
 * Since: 1.0
 */
guint
ctok_get_minor_version (void)
{
  return CTOK_MINOR_VERSION;
}

/**
 * ctok_get_micro_version:
 *
 * Gets the micro version of the ctok library in use at run time.
 *
 * Returns: the micro version
 *
 * Since: 1.0
 */
guint
ctok_get_micro_version (void)
{
  return CTOK_MICRO_VERSION;
}

/**
 * ctok_check_version:
 * @major: the required major version
 * @minor: the required minor version
 * @micro: the required micro version
 *
 * Checks whether the ctok library in use at run time is version
 * @major.@minor.@micro or a compatible later one (same major version).
 *
 * Returns: `TRUE` if the library is compatible
 *
 * Since: 1.0
 */
gboolean
ctok_check_version (guint major,
                    guint minor,
                    guint micro)
{
  if (major != CTOK_MAJOR_VERSION)
    return FALSE;

  return CTOK_ENCODE_VERSION (major, minor, micro) <= CTOK_VERSION_HEX;
}
