/* SPDX-License-Identifier: MIT */
/* The trace monoid: empty trace and concatenation. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

ct_status ct_trace_init(ct_trace *t) {
  if (!t) return ct__fail(CT_ERR_INVALID_ARG, "ct_trace_init: trace is NULL");
  memset(t, 0, sizeof *t);
  return CT_OK;
}

static ct_status ct__trace_reserve(ct_trace *t, size_t n) {
  if (n <= t->capacity) return CT_OK;
  size_t cap = t->capacity ? t->capacity : 16;
  while (cap < n) cap *= 2;
  ct_trace_event *e = realloc(t->events, cap * sizeof *e);
  if (!e) return ct__fail(CT_ERR_NOMEM, "trace: out of host memory for %zu events", n);
  t->events = e;
  t->capacity = cap;
  return CT_OK;
}

ct_status ct_trace_append(ct_trace *t, const ct_trace_event *e) {
  CT__NEED(t, "ct_trace_append");
  CT__NEED(e, "ct_trace_append");
  CT__TRY(ct__trace_reserve(t, t->count + 1));
  t->events[t->count++] = *e;
  return CT_OK;
}

ct_status ct_trace_concat(ct_trace *out, const ct_trace *a, const ct_trace *b) {
  CT__NEED(out, "ct_trace_concat");
  CT__NEED(a, "ct_trace_concat");
  CT__NEED(b, "ct_trace_concat");
  if (out == a || out == b)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_trace_concat: out must not alias an operand");
  ct_trace_init(out);
  CT__TRY(ct__trace_reserve(out, a->count + b->count));
  if (a->count) memcpy(out->events, a->events, a->count * sizeof *a->events);
  if (b->count) memcpy(out->events + a->count, b->events, b->count * sizeof *b->events);
  out->count = a->count + b->count;
  return CT_OK;
}

bool ct_trace_equal(const ct_trace *a, const ct_trace *b) {
  if (!a || !b || a->count != b->count) return false;
  for (size_t i = 0; i < a->count; i++) {
    const ct_trace_event *x = &a->events[i], *y = &b->events[i];
    if (strcmp(x->op, y->op) || strcmp(x->shape, y->shape) || x->flops != y->flops ||
        x->bytes != y->bytes || x->seconds != y->seconds)
      return false;
  }
  return true;
}

void ct_trace_totals(const ct_trace *t, double *flops, double *bytes, double *seconds) {
  double f = 0, b = 0, s = 0;
  for (size_t i = 0; t && i < t->count; i++) {
    f += t->events[i].flops;
    b += t->events[i].bytes;
    s += t->events[i].seconds;
  }
  if (flops) *flops = f;
  if (bytes) *bytes = b;
  if (seconds) *seconds = s;
}

ct_status ct_trace_print(FILE *f, const ct_trace *t) {
  CT__NEED(f, "ct_trace_print");
  CT__NEED(t, "ct_trace_print");
  fprintf(f, "%-30s %12s %12s %10s  %s\n", "op", "flops", "bytes", "us", "inputs");
  for (size_t i = 0; i < t->count; i++) {
    const ct_trace_event *e = &t->events[i];
    fprintf(f, "%-30s %12.0f %12.0f %10.2f  %s\n", e->op, e->flops, e->bytes, e->seconds * 1e6,
            e->shape);
  }
  double fl, by, se;
  ct_trace_totals(t, &fl, &by, &se);
  fprintf(f, "%-30s %12.0f %12.0f %10.2f  (%zu kernels)\n", "total", fl, by, se * 1e6, t->count);
  return CT_OK;
}

void ct_trace_free(ct_trace *t) {
  if (!t) return;
  free(t->events);
  memset(t, 0, sizeof *t);
}
