/* SPDX-License-Identifier: MIT */
/* Status codes and error messages. Every fallible ctml call returns a ct_status;
 * on failure, ct_last_error() holds a message that names what was wrong. */
#ifndef CTML_STATUS_H
#define CTML_STATUS_H

#include "ctml/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ct_status {
  CT_OK = 0,
  CT_ERR_INVALID_ARG,    /* a null handle, a bad number, a malformed request */
  CT_ERR_SHAPE,          /* objects do not match (dtype, role or shape) */
  CT_ERR_RANGE,          /* an index (token id, boundary slot) out of range */
  CT_ERR_NONFINITE,      /* NaN or Inf in an input or in the loss */
  CT_ERR_NOMEM,          /* host or device allocation failed */
  CT_ERR_BACKEND_ABSENT, /* the backend is unknown, not built, or has no device */
  CT_ERR_DEVICE,         /* a device call failed */
  CT_ERR_UNSUPPORTED,    /* the backend declares the operation unsupported */
  CT_ERR_IO,             /* a file could not be read or written */
  CT_ERR_STATE,          /* call out of order (e.g. reverse before forward) */
  CT_ERR_INTERNAL        /* a broken internal invariant: a bug in ctml */
} ct_status;

/* Short name of a status, e.g. "CT_ERR_SHAPE". */
CT_API const char *ct_status_name(ct_status s);

/* Message of the last failing call on this thread ("" if none failed yet). */
CT_API const char *ct_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
