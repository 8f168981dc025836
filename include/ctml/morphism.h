/* SPDX-License-Identifier: MIT */
/* Morphisms as open graphs. A morphism dom -> cod is a small hypergraph of
 * generator applications whose input boundary is dom (a list of objects, their
 * tensor product) and whose output boundary is cod. Wires are linear: each
 * value is produced once and consumed once, so fan-out is an explicit copy and
 * dropping a value is an explicit discard.
 *
 * Every constructor returns a new morphism the caller frees; inputs are never
 * modified or taken over. */
#ifndef CTML_MORPHISM_H
#define CTML_MORPHISM_H

#include "ctml/export.h"
#include <stdbool.h>
#include "ctml/object.h"
#include "ctml/param.h"
#include "ctml/generators.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_morphism ct_morphism;

/* id on objs[0] (x) ... (x) objs[n-1]; n == 0 is the unit object I. */
CT_API ct_status ct_identity(ct_morphism **out, const ct_object *objs, int n);

/* g . f: glues f's outputs to g's inputs; cod f must equal dom g, object by object. */
CT_API ct_status ct_compose(ct_morphism **out, const ct_morphism *g, const ct_morphism *f);
/* f ; g (diagrammatic order): the same as ct_compose(out, g, f). */
CT_API ct_status ct_then(ct_morphism **out, const ct_morphism *f, const ct_morphism *g);
/* f (x) g: side by side; dom and cod are concatenated. */
CT_API ct_status ct_tensor(ct_morphism **out, const ct_morphism *f, const ct_morphism *g);

/* Generators. Each takes the object(s) it is applied to and checks role and shape. */
/* TOKENS i32[n] -> HIDDEN f32[n,D], or a token sequence TOKENS i32[B,T] -> SEQ f32[B,T,D];
 * table is PARAM [V,D]; ids outside [0,V) fail at run time. */
CT_API ct_status ct_embedding(ct_morphism **out, const ct_object *tokens, ct_param *table);
/* x . W + b over the last axis: HIDDEN f32[..,K] -> out_role f32[..,M], out_role HIDDEN or
 * LOGITS; over a sequence, SEQ f32[B,T,K] -> out_role f32[B,T,M], out_role SEQ or LOGITS.
 * W is PARAM [K,M], b is PARAM [M] or NULL for no bias. */
CT_API ct_status ct_linear(ct_morphism **out, const ct_object *x, ct_role out_role, ct_param *W,
                    ct_param *b);
/* Row-wise, max-subtracted softmax: LOGITS f32[..,C] -> DIST f32[..,C]. */
CT_API ct_status ct_softmax(ct_morphism **out, const ct_object *logits);
/* DIST f32[n,C] (x) TOKENS i32[n] -> LOSS: mean over rows of -ln max(p[target], 1e-9). */
CT_API ct_status ct_cross_entropy(ct_morphism **out, const ct_object *dist, const ct_object *targets);
/* LOGITS f32[n,C] (x) TOKENS i32[n] -> LOSS: cross_entropy . (softmax (x) id), fused. */
CT_API ct_status ct_softmax_cross_entropy(ct_morphism **out, const ct_object *logits,
                                   const ct_object *targets);
/* A -> A (x) A. Its reverse derivative is add. */
CT_API ct_status ct_copy(ct_morphism **out, const ct_object *a);
/* A (x) A -> A (f32 only). Its reverse derivative is copy. */
CT_API ct_status ct_add(ct_morphism **out, const ct_object *a);
/* A -> I. Its reverse derivative is zero. */
CT_API ct_status ct_discard(ct_morphism **out, const ct_object *a);

/* Sequence generators. */
/* Learned positions: SEQ f32[B,T,C] -> SEQ, y[b,t,:] = x[b,t,:] + P[t,:]; P is PARAM
 * [L,C] with L >= T (the longest sequence it serves). */
CT_API ct_status ct_pos_embedding(ct_morphism **out, const ct_object *x, ct_param *P);
/* Layer normalisation over the last axis of a HIDDEN or SEQ object (role and shape kept):
 * y = (x - mean) / sqrt(var + 1e-5) * gain + bias, var the biased variance; gain and
 * bias are PARAM [C]. */
CT_API ct_status ct_layernorm(ct_morphism **out, const ct_object *x, ct_param *gain, ct_param *bias);
/* Residual add then layer norm, fused: x (x) r -> s (x) y with s = x + r and
 * y = layernorm(s; gain, bias) as ct_layernorm computes it; x and r the same HIDDEN or
 * SEQ object. Equals add ; copy ; (id (x) layernorm). */
CT_API ct_status ct_add_layernorm(ct_morphism **out, const ct_object *x, ct_param *gain, ct_param *bias);
/* GELU, tanh approximation, element-wise on HIDDEN or SEQ:
 * y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
CT_API ct_status ct_gelu(ct_morphism **out, const ct_object *x);
/* gelu(x . W + b), fused: the objects and parameters of ct_linear (b may be NULL), the
 * result of ct_linear followed by ct_gelu. */
CT_API ct_status ct_linear_gelu(ct_morphism **out, const ct_object *x, ct_role out_role, ct_param *W,
                         ct_param *b);
/* Three linears of one input x -> q (x) k (x) v with q = x . Wq + bq, k = x . Wk + bk,
 * v = x . Wv + bv: the objects of ct_linear for each (the same out_role), the result of
 * copy ; (copy (x) id) ; (linear (x) (linear (x) linear)). The biases are all given or
 * all NULL. The six parameters stay separate tensors. */
CT_API ct_status ct_qkv(ct_morphism **out, const ct_object *x, ct_role out_role, ct_param *wq,
                 ct_param *bq, ct_param *wk, ct_param *bk, ct_param *wv, ct_param *bv);
/* SEQ f32[B,T,C] -> HEADS f32[B,H,T,C/H]: y[b,h,t,d] = x[b,t,h*(C/H)+d]; H must divide C.
 * Its reverse derivative is head_merge. */
CT_API ct_status ct_head_split(ct_morphism **out, const ct_object *x, int64_t heads);
/* HEADS f32[B,H,T,D] -> SEQ f32[B,T,H*D], the inverse of head_split (whose reverse it is). */
CT_API ct_status ct_head_merge(ct_morphism **out, const ct_object *x);
/* q (x) k -> SCORES: s[..,i,j] = q[..,i,:] . k[..,j,:] / sqrt(D) for j <= i, and 0 (masked,
 * no gradient) for j > i. q and k are both HEADS f32[B,H,T,D] (SCORES f32[B,H,T,T]) or both
 * SEQ f32[B,T,D] (one head: SCORES f32[B,T,T]). */
CT_API ct_status ct_attn_scores(ct_morphism **out, const ct_object *q, const ct_object *k);
/* SCORES -> ATTN of the same shape: row i is the max-subtracted softmax of entries
 * j <= i, and 0 for j > i. */
CT_API ct_status ct_causal_softmax(ct_morphism **out, const ct_object *scores);
/* a (x) v -> weights . values: y[..,i,:] = sum_j a[..,i,j] v[..,j,:] over every j. a is
 * ATTN f32[B,H,T,T] with v HEADS f32[B,H,T,D] (y HEADS), or ATTN f32[B,T,T] with v SEQ
 * f32[B,T,D] (y SEQ). */
CT_API ct_status ct_attn_apply(ct_morphism **out, const ct_object *a, const ct_object *v);
/* q (x) k (x) v -> y, causal multi-head attention in one generator: q, k, v and y are SEQ
 * f32[B,T,C], heads H divides C, D = C/H, and for channel c = h*D + d
 *   y[b,t,c] = sum_{s<=t} softmax_s(q[b,t,hD:hD+D] . k[b,s,hD:hD+D] / sqrt(D)) v[b,s,c].
 * It equals head_split^3 ; (attn_scores (x) id) ; (causal_softmax (x) id) ; attn_apply ;
 * head_merge (or, with one head, the same without split and merge), keeping only each
 * row's log-sum-exp instead of the T x T weights. */
CT_API ct_status ct_causal_attention(ct_morphism **out, const ct_object *x, int64_t heads);
/* q (x) k (x) v (x) positions -> y: causal attention of new rows over a decoding cache.
 * q, k, v and y are SEQ f32[B,T,C]; positions is TOKENS i32[B,T], each row's absolute
 * position; k_cache and v_cache are CACHE f32[B,H,L,D] (ct_param_new_cache) with H*D = C.
 * The forward first writes every row's key and value into the caches at its position
 * p = positions[b,t] (head h at [b,h,p,:]), then
 *   y[b,t,h*D+d] = sum_{s<=p} softmax_s(q[b,t,hD:hD+D] . k_cache[b,h,s,:] / sqrt(D))
 *                  v_cache[b,h,s,d],
 * so positions below p must hold the rows before it (from an earlier run or this one).
 * A position outside [0, L) is CT_ERR_RANGE, on the device too. Decoding needs no
 * reverse: the generator is forward only. */
CT_API ct_status ct_kv_attention(ct_morphism **out, const ct_object *x, const ct_object *positions,
                          ct_param *k_cache, ct_param *v_cache);

CT_API void ct_morphism_free(ct_morphism *m);

CT_API int ct_morphism_dom_count(const ct_morphism *m);
CT_API int ct_morphism_cod_count(const ct_morphism *m);
/* The i-th object of dom / cod, or NULL when i is out of range. */
CT_API const ct_object *ct_morphism_dom(const ct_morphism *m, int i);
CT_API const ct_object *ct_morphism_cod(const ct_morphism *m, int i);
CT_API int ct_morphism_node_count(const ct_morphism *m);
/* Structural equality: same generators, same wiring, same parameters. Graphs
 * are kept in a canonical numbering, so equal morphisms compare equal. */
CT_API bool ct_morphism_equal(const ct_morphism *a, const ct_morphism *b);
/* Human-readable listing of the graph into buf (always terminated). */
CT_API ct_status ct_morphism_describe(const ct_morphism *m, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
