/* SPDX-License-Identifier: MIT */
#include "ctml/version.h"

const char *ct_version(void) { return CTML_VERSION; }
