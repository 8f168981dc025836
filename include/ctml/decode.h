/* SPDX-License-Identifier: MIT */
/* Generation: a decoder appends tokens to a context window and returns the logits that
 * predict the next token. With its cache, each layer's keys and values stay on the
 * device (CACHE parameters written by kv_attention) and a token costs one decode step;
 * without (CT_DECODE_NO_CACHE) the whole window is run again, the reference path.
 * Both keep the same window, so their outputs agree. */
#ifndef CTML_DECODE_H
#define CTML_DECODE_H

#include "ctml/export.h"
#include "ctml/backend.h"
#include "ctml/gpt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_decoder ct_decoder;

enum { CT_DECODE_NO_CACHE = 1 };

typedef struct ct_decode_stats {
  int64_t prefill_tokens; /* tokens run in prefills (prompts and window restarts), per row */
  int64_t decode_tokens;  /* tokens run one at a time, per row */
  int64_t restarts;       /* window restarts */
  double prefill_seconds, decode_seconds; /* host clock, waiting for the device */
} ct_decode_stats;

/* A decoder of g on backend be for batch rows at once (rows advance together). g's
 * parameters are copied to the device now; later changes to g are not seen. */
CT_API ct_status ct_decoder_new(ct_decoder **out, const ct_gpt *g, const ct_backend *be,
                         int64_t batch, int flags);
CT_API void ct_decoder_free(ct_decoder *d);

/* Appends n >= 1 tokens to every row (row b's are tokens[b*n .. b*n+n)) and writes the
 * logits predicting each row's next token to logits[b*V .. b*V+V) (may be NULL). Ids
 * outside the vocabulary are CT_ERR_RANGE.
 * The window: while the context fits the block L, every token stays at its position.
 * When it would pass L, the window restarts with the last min(total, max(K, n)) tokens,
 * K = L - max(1, L/4), at positions from 0 (run again as one prefill): a restart every
 * L/4 tokens, each prediction seeing between K and L tokens. */
CT_API ct_status ct_decoder_append(ct_decoder *d, const int32_t *tokens, int64_t n, float *logits);

/* Empties the window (the next append starts at position 0). */
CT_API ct_status ct_decoder_reset(ct_decoder *d);

/* Tokens in each row's window now. */
CT_API int64_t ct_decoder_length(const ct_decoder *d);
CT_API ct_status ct_decoder_stats(const ct_decoder *d, ct_decode_stats *out);

#ifdef __cplusplus
}
#endif
#endif
