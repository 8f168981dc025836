/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"

static _Thread_local char ct__message[1024];

/* Formats into a scratch buffer first: callers may pass ct_last_error() as an argument. */
ct_status ct__fail(ct_status s, const char *fmt, ...) {
  char tmp[sizeof ct__message];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  memcpy(ct__message, tmp, sizeof tmp);
  return s;
}

const char *ct_last_error(void) { return ct__message; }

const char *ct_status_name(ct_status s) {
  switch (s) {
    case CT_OK: return "CT_OK";
    case CT_ERR_INVALID_ARG: return "CT_ERR_INVALID_ARG";
    case CT_ERR_SHAPE: return "CT_ERR_SHAPE";
    case CT_ERR_RANGE: return "CT_ERR_RANGE";
    case CT_ERR_NONFINITE: return "CT_ERR_NONFINITE";
    case CT_ERR_NOMEM: return "CT_ERR_NOMEM";
    case CT_ERR_BACKEND_ABSENT: return "CT_ERR_BACKEND_ABSENT";
    case CT_ERR_DEVICE: return "CT_ERR_DEVICE";
    case CT_ERR_UNSUPPORTED: return "CT_ERR_UNSUPPORTED";
    case CT_ERR_IO: return "CT_ERR_IO";
    case CT_ERR_STATE: return "CT_ERR_STATE";
    case CT_ERR_INTERNAL: return "CT_ERR_INTERNAL";
  }
  return "CT_ERR_UNKNOWN";
}
