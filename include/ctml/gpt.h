/* SPDX-License-Identifier: MIT */
/* The Transformer roadmap as composites of generators: causal self-attention
 * (multi-head as split ; per-head attention ; merge, and a single-head form),
 * and a GPT defined by composition from a config. Everything here is built
 * through the public morphism API; nothing is a hand-written block. */
#ifndef CTML_GPT_H
#define CTML_GPT_H

#include "ctml/export.h"
#include "ctml/morphism.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The projections of one attention layer: W* are PARAM [C,C], b* are PARAM [C]
 * (or NULL for no bias). */
typedef struct ct_attention_params {
  ct_param *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
} ct_attention_params;

/* Multi-head causal self-attention SEQ f32[B,T,C] -> SEQ f32[B,T,C]:
 *   x -> copy^3 -> (linear q, linear k, linear v) -> head_split^3
 *     -> attn_scores (x) id -> causal_softmax (x) id -> attn_apply -> head_merge -> linear o.
 * heads must divide C. */
CT_API ct_status ct_self_attention(ct_morphism **out, const ct_object *x, int64_t heads,
                            const ct_attention_params *p);
/* The same with one head and no split or merge: scores are SCORES f32[B,T,T]. */
CT_API ct_status ct_single_head_attention(ct_morphism **out, const ct_object *x,
                                   const ct_attention_params *p);

typedef struct ct_gpt_config {
  int64_t vocab;  /* token ids in [0, vocab) */
  int64_t block;  /* longest sequence: rows of the position table */
  int64_t layers; /* transformer blocks, >= 1 */
  int64_t heads;  /* attention heads, dividing width */
  int64_t width;  /* channels C; the MLP is 4C wide */
} ct_gpt_config;

typedef struct ct_gpt ct_gpt;

/* Parameters, in this order (l = 0 .. layers-1):
 *   wte [V,C], wpe [block,C],
 *   h<l>.ln1.gain [C], h<l>.ln1.bias [C],
 *   h<l>.attn.wq [C,C], h<l>.attn.bq [C], .wk, .bk, .wv, .bv, .wo, .bo,
 *   h<l>.ln2.gain [C], h<l>.ln2.bias [C],
 *   h<l>.mlp.w1 [C,4C], h<l>.mlp.b1 [4C], h<l>.mlp.w2 [4C,C], h<l>.mlp.b2 [C],
 *   lnf.gain [C], lnf.bias [C], head.w [C,V] (no bias).
 * Initialised from seed: matrices and tables normal(0, 0.02) (attn.wo and mlp.w2
 * 0.02 / sqrt(2 layers)), biases 0, gains 1 (see ct_param_init_normal). */
CT_API ct_status ct_gpt_new(ct_gpt **out, const ct_gpt_config *cfg, uint64_t seed);
/* The same parameters, every value 0 and no random draw: for loading stored
 * values (ct_param_set) without paying for an initialisation first. */
CT_API ct_status ct_gpt_new_zeroed(ct_gpt **out, const ct_gpt_config *cfg);
CT_API void ct_gpt_free(ct_gpt *g);
CT_API const ct_gpt_config *ct_gpt_get_config(const ct_gpt *g);
CT_API int ct_gpt_param_count(const ct_gpt *g);
/* The i-th parameter in the order above (NULL when out of range); the GPT keeps it. */
CT_API ct_param *ct_gpt_param(const ct_gpt *g, int i);
/* The parameter called name, or NULL. */
CT_API ct_param *ct_gpt_find_param(const ct_gpt *g, const char *name);
/* Total trainable floats. */
CT_API int64_t ct_gpt_numel(const ct_gpt *g);

/* TOKENS i32[B,T] -> LOGITS f32[B,T,V]: embedding ; pos_embedding ; blocks ;
 * layernorm ; linear head. 1 <= T <= block. */
CT_API ct_status ct_gpt_logits(ct_morphism **out, const ct_gpt *g, int64_t batch, int64_t time);
/* TOKENS i32[B,T] (inputs) (x) TOKENS i32[B,T] (targets) -> LOSS: the logits
 * morphism then the fused softmax-cross-entropy, mean over B*T positions. */
CT_API ct_status ct_gpt_loss(ct_morphism **out, const ct_gpt *g, int64_t batch, int64_t time);
/* One decoding run over a cache: tokens (x) positions -> logits, both TOKENS i32[B,T]
 * (positions: each row's absolute position, < block), logits LOGITS f32[B,T,V]. The
 * same network as ct_gpt_logits with every attention core replaced by kv_attention over
 * caches[2l] (keys) and caches[2l+1] (values) of layer l, CACHE f32[B,H,block,C/H]
 * (ct_param_new_cache). Forward only; ct_decoder runs it. */
CT_API ct_status ct_gpt_decode(ct_morphism **out, const ct_gpt *g, ct_param *const *caches,
                        int64_t batch, int64_t time);

#ifdef __cplusplus
}
#endif
#endif
