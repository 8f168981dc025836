/* SPDX-License-Identifier: MIT */
/* Host-side data morphisms. */
#include "internal.h"

ct_status ct_window_pairs(const int32_t *tokens, int64_t n, int32_t vocab, int32_t *inputs,
                          int32_t *targets, int64_t cap, int64_t *pairs) {
  CT__NEED(tokens, "ct_window_pairs");
  CT__NEED(inputs, "ct_window_pairs");
  CT__NEED(targets, "ct_window_pairs");
  CT__NEED(pairs, "ct_window_pairs");
  if (n < 2)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_window_pairs: a sequence of %lld tokens has no "
                    "next-token pair (need at least 2)", (long long)n);
  if (vocab < 1)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_window_pairs: vocabulary size %d must be >= 1", vocab);
  if (cap < n - 1)
    return ct__fail(CT_ERR_RANGE, "ct_window_pairs: %lld pairs do not fit in %lld slots",
                    (long long)(n - 1), (long long)cap);
  for (int64_t i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      return ct__fail(CT_ERR_RANGE, "ct_window_pairs: token id %d at position %lld is outside "
                      "[0, %d)", tokens[i], (long long)i, vocab);
  for (int64_t i = 0; i + 1 < n; i++) {
    inputs[i] = tokens[i];
    targets[i] = tokens[i + 1];
  }
  *pairs = n - 1;
  return CT_OK;
}
