/* SPDX-License-Identifier: MIT */
/* Checking one backend against another: the naturality square of moving data
 * between backends. The same morphism is compiled on both (with every
 * intermediate kept), run on the same inputs and output cotangents, and every
 * node's forward results, every node's input cotangents and every parameter
 * gradient are compared. Every buffer on both sides has a guard region after
 * it; a write past an end is reported as a failing entry. The report names the
 * first result that diverges. */
#ifndef CTML_CHECK_H
#define CTML_CHECK_H

#include "ctml/export.h"
#include <stdio.h>
#include "ctml/plan.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_check_entry {
  char label[96];    /* e.g. "node 2 softmax forward", "param W gradient" */
  int node;          /* node index, or -1 for a parameter gradient */
  ct_direction dir;
  int64_t elements;  /* f32 elements compared */
  double max_abs;    /* largest |a - b| */
  double max_ratio;  /* largest |a - b| / (1e-5 + 1e-4 |b|): <= 1 is within tolerance */
  bool nonfinite;    /* a NaN or Inf on either side: always a failure */
  bool pass;
  char detail[256];  /* a failure that is not a comparison (a written guard region) */
} ct_check_entry;

typedef struct ct_check_report {
  int count;
  ct_check_entry *entries; /* forward nodes in order, reverse nodes in reverse order, params */
  int first_divergent;     /* index into entries, -1 when everything passed */
} ct_check_report;

/* inputs[i] points at the host data of dom object i (TOKENS as int32_t, the rest
 * float). Output cotangents are drawn from seed (a LOSS output gets 1). b is the
 * reference (normally cpu). A morphism with a generator that has no reverse
 * (kv_attention) is compared forward only, and then its parameters too, after the
 * forward (the caches it writes). Returns CT_OK when both sides ran, whether or not
 * they agree: read report->first_divergent. */
CT_API ct_status ct_check(const ct_morphism *m, const ct_backend *a, const ct_backend *b,
                   const void *const *inputs, uint64_t seed, ct_check_report *report);
CT_API ct_status ct_check_report_print(FILE *f, const ct_check_report *r, const char *name_a,
                                const char *name_b);
CT_API void ct_check_report_free(ct_check_report *r);

#ifdef __cplusplus
}
#endif
#endif
