/* SPDX-License-Identifier: MIT */
/* The execution trace, a monoid: the empty trace is the unit and
 * concatenation is the product. Plans append one event per kernel launch. */
#ifndef CTML_TRACE_H
#define CTML_TRACE_H

#include "ctml/export.h"
#include <stdbool.h>
#include <stdio.h>
#include "ctml/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_trace_event {
  char op[40];       /* generator name, with ".reverse" for reverse kernels */
  char shape[96];    /* the objects it ran on */
  double flops;      /* floating-point operations it performs */
  double bytes;      /* bytes it reads and writes at the least */
  double seconds;    /* wall time on the host clock (0 when not timed) */
} ct_trace_event;

typedef struct ct_trace {
  ct_trace_event *events;
  size_t count, capacity;
} ct_trace;

/* The unit: an empty trace (needs no free, but ct_trace_free is harmless). */
CT_API ct_status ct_trace_init(ct_trace *t);
CT_API ct_status ct_trace_append(ct_trace *t, const ct_trace_event *e);
/* out = a ++ b; out may alias neither a nor b. out is initialised here. */
CT_API ct_status ct_trace_concat(ct_trace *out, const ct_trace *a, const ct_trace *b);
CT_API bool ct_trace_equal(const ct_trace *a, const ct_trace *b);
CT_API void ct_trace_totals(const ct_trace *t, double *flops, double *bytes, double *seconds);
CT_API ct_status ct_trace_print(FILE *f, const ct_trace *t);
CT_API void ct_trace_free(ct_trace *t);

#ifdef __cplusplus
}
#endif
#endif
