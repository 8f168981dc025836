/* SPDX-License-Identifier: MIT */
/* Data morphisms on the host. */
#ifndef CTML_DATA_H
#define CTML_DATA_H

#include "ctml/export.h"
#include <stdint.h>
#include "ctml/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Windowing: a token sequence t[0..n) becomes the n-1 next-token pairs
 * (t[i], t[i+1]). inputs and targets each hold cap ids; n must be >= 2 and
 * every id must lie in [0, vocab). *pairs receives n - 1. */
CT_API ct_status ct_window_pairs(const int32_t *tokens, int64_t n, int32_t vocab, int32_t *inputs,
                          int32_t *targets, int64_t cap, int64_t *pairs);

#ifdef __cplusplus
}
#endif
#endif
