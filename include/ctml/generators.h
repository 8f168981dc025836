/* SPDX-License-Identifier: MIT */
/* The list of generators, written once. Every backend fills one forward and one
 * reverse kernel per entry (or declares the cell unsupported); the planner,
 * the tracer and the coverage test iterate this same list.
 *
 * X(ENUM, name) */
#ifndef CTML_GENERATORS_H
#define CTML_GENERATORS_H

#include "ctml/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CT_GENERATORS(X)                     \
  X(EMBEDDING, "embedding")                  \
  X(LINEAR, "linear")                        \
  X(SOFTMAX, "softmax")                      \
  X(CROSS_ENTROPY, "cross_entropy")          \
  X(SOFTMAX_XENT, "softmax_cross_entropy")   \
  X(COPY, "copy")                            \
  X(ADD, "add")                              \
  X(DISCARD, "discard")                      \
  X(POS_EMBEDDING, "pos_embedding")          \
  X(LAYERNORM, "layernorm")                  \
  X(GELU, "gelu")                            \
  X(HEAD_SPLIT, "head_split")                \
  X(HEAD_MERGE, "head_merge")                \
  X(ATTN_SCORES, "attn_scores")              \
  X(CAUSAL_SOFTMAX, "causal_softmax")        \
  X(ATTN_APPLY, "attn_apply")                \
  X(LINEAR_GELU, "linear_gelu")              \
  X(ADD_LAYERNORM, "add_layernorm")          \
  X(QKV, "qkv")                              \
  X(CAUSAL_ATTENTION, "causal_attention")    \
  X(KV_ATTENTION, "kv_attention")

typedef enum ct_op {
#define CT__OP_ENUM(e, n) CT_OP_##e,
  CT_GENERATORS(CT__OP_ENUM)
#undef CT__OP_ENUM
  CT_OP_COUNT
} ct_op;

/* Optimizers: update kernels on (state, params, grads). X(ENUM, name) */
#define CT_OPTIMIZERS(X) \
  X(SGD, "sgd")          \
  X(ADAMW, "adamw")

typedef enum ct_opt_kind {
#define CT__OPT_ENUM(e, n) CT_OPT_##e,
  CT_OPTIMIZERS(CT__OPT_ENUM)
#undef CT__OPT_ENUM
  CT_OPT_COUNT
} ct_opt_kind;

CT_API const char *ct_op_name(ct_op op);
CT_API const char *ct_opt_name(ct_opt_kind k);

#ifdef __cplusplus
}
#endif
#endif
