/* SPDX-License-Identifier: MIT */
/* Backend-independent facts about each generator in CT_GENERATORS. */
#include "internal.h"

static size_t ct__no_saved(const ct_morphism *m, const ct__node *n) { return 0; }

/* The fused softmax-cross-entropy saves its probabilities for the reverse. */
static size_t ct__xent_saved(const ct_morphism *m, const ct__node *n) {
  return ct_object_bytes(&m->values[n->in[0]]);
}

#define CT__IN(k) (&m->values[n->in[k]])
#define CT__OUT(k) (&m->values[n->out[k]])

static void ct__cost_embedding(const ct_morphism *m, const ct__node *n, ct_direction d,
                               double *flops, double *bytes) {
  double rows = (double)ct_object_numel(CT__IN(0)), width = (double)ct__cols(CT__OUT(0));
  *flops = d == CT_FORWARD ? 0 : rows * width;
  *bytes = rows * 4 + rows * width * 4 * (d == CT_FORWARD ? 2 : 3);
}

static void ct__cost_linear(const ct_morphism *m, const ct__node *n, ct_direction d,
                            double *flops, double *bytes) {
  double rows = (double)ct__rows(CT__IN(0)), k = (double)ct__cols(CT__IN(0)),
         cols = (double)ct__cols(CT__OUT(0));
  double mm = 2 * rows * k * cols, io = 4 * (rows * k + k * cols + rows * cols + cols);
  *flops = d == CT_FORWARD ? mm + rows * cols : 2 * mm + rows * cols;
  *bytes = d == CT_FORWARD ? io : 2 * io;
}

static void ct__cost_rowwise(const ct_morphism *m, const ct__node *n, ct_direction d,
                             double *flops, double *bytes) {
  double e = (double)ct_object_numel(CT__IN(0));
  *flops = (d == CT_FORWARD ? 5 : 4) * e;
  *bytes = (d == CT_FORWARD ? 2 : 3) * e * 4;
}

static void ct__cost_xent(const ct_morphism *m, const ct__node *n, ct_direction d,
                          double *flops, double *bytes) {
  double rows = (double)ct__rows(CT__IN(0)), e = (double)ct_object_numel(CT__IN(0));
  *flops = d == CT_FORWARD ? 2 * rows : e;
  *bytes = d == CT_FORWARD ? rows * 8 : e * 4 + rows * 8;
}

static void ct__cost_fused(const ct_morphism *m, const ct__node *n, ct_direction d,
                           double *flops, double *bytes) {
  double rows = (double)ct__rows(CT__IN(0)), e = (double)ct_object_numel(CT__IN(0));
  *flops = d == CT_FORWARD ? 5 * e + 2 * rows : 2 * e;
  *bytes = (d == CT_FORWARD ? 2 * e : 2 * e) * 4 + rows * 4;
}

static void ct__cost_elementwise(const ct_morphism *m, const ct__node *n, ct_direction d,
                                 double *flops, double *bytes) {
  const ct_object *o = n->n_in ? CT__IN(0) : CT__OUT(0);
  double e = (double)ct_object_numel(o);
  *flops = n->op == CT_OP_ADD ? e : 0;
  *bytes = (n->op == CT_OP_DISCARD ? 0 : n->op == CT_OP_ADD || n->op == CT_OP_COPY ? 3 : 2) * e * 4;
}

/* Layer norm saves each row's mean and 1/std: mean[rows] then rstd[rows]. */
static size_t ct__layernorm_saved(const ct_morphism *m, const ct__node *n) {
  return 2 * (size_t)ct__rows(CT__IN(0)) * sizeof(float);
}

/* The fused residual add and layer norm costs add plus layernorm: add is e flops
 * and 3e floats moved either way, layernorm as in ct__cost_pointwise. */
static void ct__cost_add_layernorm(const ct_morphism *m, const ct__node *n, ct_direction d,
                                   double *flops, double *bytes) {
  double e = (double)ct_object_numel(CT__IN(0));
  *flops = (d == CT_FORWARD ? 1 + 8 : 1 + 12) * e;
  *bytes = (d == CT_FORWARD ? 3 + 2 : 3 + 3) * e * 4;
}

/* Attention scores get a reverse scratch of the scores' size (the cotangent with
 * its masked entries zeroed, for backends that reverse through full products). */
static size_t ct__scores_saved(const ct_morphism *m, const ct__node *n) {
  return ct_object_bytes(CT__OUT(0));
}

/* linear_gelu saves two [rows, m] float blocks: the cotangent of the pre-activation
 * du (a reverse scratch, so that u is never overwritten and a reverse may run
 * twice), then the pre-activation u = x W + b. du comes first so that backends
 * whose products cannot offset a buffer (OpenCL) read it at offset 0. */
static size_t ct__linear_gelu_saved(const ct_morphism *m, const ct__node *n) {
  return 2 * ct_object_bytes(CT__OUT(0));
}

/* GELU's flops per element, forward and reverse (gelu and linear_gelu). */
enum { CT__GELU_FWD_FLOPS = 12, CT__GELU_REV_FLOPS = 18 };

/* Shape-keeping element-wise and row-wise sequence generators: f flops per
 * element forward, r in reverse; the reverse also reads the forward input. */
static void ct__cost_pointwise(const ct_morphism *m, const ct__node *n, ct_direction d,
                               double *flops, double *bytes) {
  double e = (double)ct_object_numel(CT__IN(0));
  double f = 1, r = 1;
  if (n->op == CT_OP_LAYERNORM) f = 8, r = 12;
  if (n->op == CT_OP_GELU) f = CT__GELU_FWD_FLOPS, r = CT__GELU_REV_FLOPS;
  if (n->op == CT_OP_CAUSAL_SOFTMAX) f = 5, r = 4;
  *flops = (d == CT_FORWARD ? f : r) * e;
  *bytes = (d == CT_FORWARD ? 2 : 3) * e * 4;
}

/* linear's cost plus gelu's pointwise cost on the output. */
static void ct__cost_linear_gelu(const ct_morphism *m, const ct__node *n, ct_direction d,
                                 double *flops, double *bytes) {
  double e = (double)ct_object_numel(CT__OUT(0));
  ct__cost_linear(m, n, d, flops, bytes);
  *flops += (d == CT_FORWARD ? CT__GELU_FWD_FLOPS : CT__GELU_REV_FLOPS) * e;
  *bytes += (d == CT_FORWARD ? 2 : 3) * e * 4;
}

/* qkv saves nine device pointers (the CUDA forward's batched-product arrays). */
static size_t ct__qkv_saved(const ct_morphism *m, const ct__node *n) { return 9 * sizeof(void *); }

/* Three linears of one input. */
static void ct__cost_qkv(const ct_morphism *m, const ct__node *n, ct_direction d, double *flops,
                         double *bytes) {
  *flops = *bytes = 0;
  for (int j = 0; j < 3; j++) {
    ct__node part = *n;
    part.out[0] = n->out[j];
    double f, b;
    ct__cost_linear(m, &part, d, &f, &b);
    *flops += f;
    *bytes += b;
  }
}

static void ct__cost_attention(const ct_morphism *m, const ct__node *n, ct_direction d,
                               double *flops, double *bytes) {
  /* [batch.., T, T] weights against [batch.., T, D] vectors. */
  const ct_object *v = CT__IN(1);
  double t = (double)v->dims[v->rank - 2], width = (double)v->dims[v->rank - 1];
  double batch = (double)ct_object_numel(v) / (t * width);
  double mm = 2 * batch * t * t * width;
  double io = 4 * batch * (t * t + 2 * t * width);
  if (n->op == CT_OP_ATTN_SCORES) { /* q and k in, T x T out */
    mm = 2 * batch * t * (t + 1) / 2 * width;
    io = 4 * batch * (2 * t * width + t * t);
  }
  *flops = d == CT_FORWARD ? mm : 2 * mm;
  *bytes = d == CT_FORWARD ? io : 2 * io;
}

/* causal_attention saves, per (batch, head, query row) in that order, the row's
 * log-sum-exp of scaled scores, then a reverse scratch of the same size for the
 * row's sum of dy * y over the head's channels. */
static size_t ct__causal_attention_saved(const ct_morphism *m, const ct__node *n) {
  const ct_object *x = CT__IN(0);
  return 2 * (size_t)(x->dims[0] * n->attr * x->dims[1]) * sizeof(float);
}

/* Only the T(T+1)/2 unmasked pairs per head: forward q.k and p.v (2 products) plus
 * the exponentials; reverse recomputes q.k and forms dy.v, dq, dk and dv (5). */
static void ct__cost_causal_attention(const ct_morphism *m, const ct__node *n, ct_direction d,
                                      double *flops, double *bytes) {
  const ct_object *x = CT__IN(0);
  double b = (double)x->dims[0], t = (double)x->dims[1], c = (double)x->dims[2];
  double h = (double)n->attr, pairs = b * h * t * (t + 1) / 2, width = c / h;
  double io = 4 * b * t * c, stats = 4 * b * h * t;
  *flops = d == CT_FORWARD ? 4 * pairs * width + 5 * pairs : 10 * pairs * width + 8 * pairs;
  *bytes = d == CT_FORWARD ? 4 * io + stats : 8 * io + 2 * stats;
}

/* At most every row against the whole cache: q.k and p.v over L positions, plus the
 * cache writes of k and v. */
static void ct__cost_kv_attention(const ct_morphism *m, const ct__node *n, ct_direction d,
                                  double *flops, double *bytes) {
  const ct_object *x = CT__IN(0), *c = ct_param_object(n->params[0]);
  double rows = (double)(x->dims[0] * x->dims[1]), h = (double)c->dims[1],
         len = (double)c->dims[2], width = (double)c->dims[3];
  *flops = rows * h * len * (4 * width + 5);
  *bytes = 4 * (4 * rows * h * width + 2 * rows * h * len * width) + 4 * rows;
}

static const ct__op_info ct__ops[CT_OP_COUNT] = {
    [CT_OP_EMBEDDING] = {1, 0, -1, 0, ct__no_saved, ct__cost_embedding},
    [CT_OP_LINEAR] = {1, 0, -1, 0, ct__no_saved, ct__cost_linear},
    [CT_OP_SOFTMAX] = {0, 1, -1, 0, ct__no_saved, ct__cost_rowwise},
    [CT_OP_CROSS_ENTROPY] = {1, 0, -1, 0, ct__no_saved, ct__cost_xent},
    [CT_OP_SOFTMAX_XENT] = {1, 0, -1, 0, ct__xent_saved,
                            ct__cost_fused},
    [CT_OP_COPY] = {0, 0, CT_OP_ADD, 0, ct__no_saved, ct__cost_elementwise},
    [CT_OP_ADD] = {0, 0, CT_OP_COPY, 0, ct__no_saved, ct__cost_elementwise},
    [CT_OP_DISCARD] = {0, 0, -1, 1, ct__no_saved, ct__cost_elementwise},
    [CT_OP_POS_EMBEDDING] = {0, 0, -1, 0, ct__no_saved, ct__cost_pointwise},
    [CT_OP_LAYERNORM] = {1, 0, -1, 0, ct__layernorm_saved, ct__cost_pointwise},
    [CT_OP_GELU] = {1, 0, -1, 0, ct__no_saved, ct__cost_pointwise},
    [CT_OP_HEAD_SPLIT] = {0, 0, CT_OP_HEAD_MERGE, 0, ct__no_saved, ct__cost_elementwise},
    [CT_OP_HEAD_MERGE] = {0, 0, CT_OP_HEAD_SPLIT, 0, ct__no_saved, ct__cost_elementwise},
    [CT_OP_ATTN_SCORES] = {1, 0, -1, 0, ct__scores_saved, ct__cost_attention},
    [CT_OP_CAUSAL_SOFTMAX] = {0, 1, -1, 0, ct__no_saved, ct__cost_pointwise},
    [CT_OP_ATTN_APPLY] = {1, 0, -1, 0, ct__no_saved, ct__cost_attention},
    [CT_OP_LINEAR_GELU] = {1, 0, -1, 0, ct__linear_gelu_saved, ct__cost_linear_gelu},
    [CT_OP_QKV] = {1, 0, -1, 0, ct__qkv_saved, ct__cost_qkv},
    /* the reverse reads the output s and the saved statistics */
    [CT_OP_ADD_LAYERNORM] = {0, 1, -1, 0, ct__layernorm_saved, ct__cost_add_layernorm},
    /* the reverse reads q, k, v, the output y and the saved log-sum-exps */
    [CT_OP_CAUSAL_ATTENTION] = {1, 1, -1, 0, ct__causal_attention_saved,
                                ct__cost_causal_attention},
    /* decoding only: no reverse on any backend */
    [CT_OP_KV_ATTENTION] = {0, 0, -1, 0, ct__no_saved, ct__cost_kv_attention, .forward_only = 1},
};

const ct__op_info *ct__op(ct_op op) { return &ct__ops[op]; }

const char *ct_op_name(ct_op op) {
  static const char *const names[] = {
#define CT__OP_NAME(e, n) n,
      CT_GENERATORS(CT__OP_NAME)
#undef CT__OP_NAME
  };
  return (op >= 0 && op < CT_OP_COUNT) ? names[op] : "?op";
}

const char *ct_opt_name(ct_opt_kind k) {
  static const char *const names[] = {
#define CT__OPT_NAME(e, n) n,
      CT_OPTIMIZERS(CT__OPT_NAME)
#undef CT__OPT_NAME
  };
  return (k >= 0 && k < CT_OPT_COUNT) ? names[k] : "?optimizer";
}
