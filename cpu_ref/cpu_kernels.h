/* SPDX-License-Identifier: MIT */
/* cpu_ref kernels: one forward and one reverse per generator that has its own. */
#ifndef CTML_CPU_KERNELS_H
#define CTML_CPU_KERNELS_H

#include "backend_impl.h"

ct_status ct__cpu_embedding_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_embedding_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_linear_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_linear_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_softmax_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_softmax_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_xent_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_xent_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_softmax_xent_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_softmax_xent_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_copy_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_add_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_discard_fwd(void *ctx, const ct__kargs *a);
/* Sequence generators (cpu_seq_kernels.c). */
ct_status ct__cpu_pos_embedding_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_pos_embedding_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_layernorm_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_layernorm_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_add_layernorm_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_add_layernorm_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_gelu_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_gelu_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_head_split_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_head_merge_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_attn_scores_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_attn_scores_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_causal_softmax_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_causal_softmax_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_attn_apply_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_attn_apply_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_linear_gelu_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_linear_gelu_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_qkv_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_qkv_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_causal_attention_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_kv_attention_fwd(void *ctx, const ct__kargs *a);
/* CT_ERR_RANGE unless every one of the n ids is in [0, limit); names what, the index
 * and the value. */
ct_status ct__cpu_check_ids(const int32_t *ids, int64_t n, int64_t limit, const char *what);
ct_status ct__cpu_causal_attention_rev(void *ctx, const ct__kargs *a);
/* GELU's pieces, shared by gelu and linear_gelu: y = gelu(x) and dx = dy gelu'(x) over
 * n elements, in double. */
void ct__cpu_gelu_span(const float *x, float *y, int64_t n);
void ct__cpu_gelu_grad_span(const float *x, const float *dy, float *dx, int64_t n);

/* Optimizer kernels (cpu_optim.c). */
ct_status ct__cpu_sumsq(void *ctx, const void *x, int64_t n, void *sumsq, int index);
ct_status ct__cpu_hyper_step(void *ctx, void *hyper, const void *sumsq, int n);
ct_status ct__cpu_sgd_update(void *ctx, const void *hyper, void *param, const void *grad,
                             void *state, int64_t n, int64_t n_decay);
ct_status ct__cpu_adamw_update(void *ctx, const void *hyper, void *param, const void *grad,
                               void *state, int64_t n, int64_t n_decay);

#endif
