/* SPDX-License-Identifier: MIT */
/* Attention and the GPT as composites of generators, built through the public
 * morphism API only. The builders below keep one sticky status: once a step
 * fails, every later step frees its arguments and yields NULL, so a whole
 * architecture reads as one expression and reports its first error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/* ---- sticky builders: each takes ownership of its morphism arguments ------ */

static ct_morphism *ct__then(ct_status *s, ct_morphism *f, ct_morphism *g) {
  ct_morphism *r = NULL;
  if (*s == CT_OK) *s = ct_then(&r, f, g);
  ct_morphism_free(f);
  ct_morphism_free(g);
  return r;
}

static ct_morphism *ct__par(ct_status *s, ct_morphism *f, ct_morphism *g) {
  ct_morphism *r = NULL;
  if (*s == CT_OK) *s = ct_tensor(&r, f, g);
  ct_morphism_free(f);
  ct_morphism_free(g);
  return r;
}

/* One generator: call runs only while the status is OK. */
#define CT__GEN(s, call)                  \
  ct_morphism *m = NULL;                  \
  if (*(s) == CT_OK) *(s) = (call);       \
  return m

static ct_morphism *ct__id(ct_status *s, const ct_object *x) { CT__GEN(s, ct_identity(&m, x, 1)); }
static ct_morphism *ct__copy(ct_status *s, const ct_object *x) { CT__GEN(s, ct_copy(&m, x)); }
static ct_morphism *ct__add(ct_status *s, const ct_object *x) { CT__GEN(s, ct_add(&m, x)); }
static ct_morphism *ct__gelu(ct_status *s, const ct_object *x) { CT__GEN(s, ct_gelu(&m, x)); }
static ct_morphism *ct__merge(ct_status *s, const ct_object *x) { CT__GEN(s, ct_head_merge(&m, x)); }
static ct_morphism *ct__split(ct_status *s, const ct_object *x, int64_t h) {
  CT__GEN(s, ct_head_split(&m, x, h));
}
static ct_morphism *ct__linear(ct_status *s, const ct_object *x, ct_role role, ct_param *W,
                               ct_param *b) {
  CT__GEN(s, ct_linear(&m, x, role, W, b));
}
static ct_morphism *ct__norm(ct_status *s, const ct_object *x, ct_param *g, ct_param *b) {
  CT__GEN(s, ct_layernorm(&m, x, g, b));
}
static ct_morphism *ct__scores(ct_status *s, const ct_object *q) {
  CT__GEN(s, ct_attn_scores(&m, q, q));
}
static ct_morphism *ct__softmax(ct_status *s, const ct_object *sc) {
  CT__GEN(s, ct_causal_softmax(&m, sc));
}
static ct_morphism *ct__apply(ct_status *s, const ct_object *a, const ct_object *v) {
  CT__GEN(s, ct_attn_apply(&m, a, v));
}

/* x -> (x, x, x) */
static ct_morphism *ct__triplicate(ct_status *s, const ct_object *x) {
  return ct__then(s, ct__copy(s, x), ct__par(s, ct__copy(s, x), ct__id(s, x)));
}

/* (q, k, v) over objects hv -> weights . v: scores (x) id ; causal_softmax (x) id ; apply. */
static ct_morphism *ct__attend(ct_status *s, const ct_object *hv, const ct_object *sc,
                               const ct_object *at) {
  ct_morphism *w = ct__then(s, ct__par(s, ct__scores(s, hv), ct__id(s, hv)),
                            ct__par(s, ct__softmax(s, sc), ct__id(s, hv)));
  return ct__then(s, w, ct__apply(s, at, hv));
}

/* The [.., T, T] objects of scores and weights over per-head object hv. */
static ct_status ct__square_objects(const ct_object *hv, ct_object *sc, ct_object *at) {
  int64_t d[CT_MAX_RANK];
  memcpy(d, hv->dims, sizeof d);
  d[hv->rank - 1] = d[hv->rank - 2];
  CT__TRY(ct_object_make(sc, CT_F32, CT_ROLE_SCORES, hv->rank, d));
  return ct_object_make(at, CT_F32, CT_ROLE_ATTN, hv->rank, d);
}

/* x -> (q, k, v): copy^3 ; (linear q (x) linear k (x) linear v), built one linear at a
 * time so that the first bad parameter is the one reported. */
static ct_morphism *ct__projections(ct_status *s, const ct_object *x, const ct_attention_params *p) {
  ct_morphism *q = ct__linear(s, x, CT_ROLE_SEQ, p->wq, p->bq);
  ct_morphism *k = ct__linear(s, x, CT_ROLE_SEQ, p->wk, p->bk);
  ct_morphism *v = ct__linear(s, x, CT_ROLE_SEQ, p->wv, p->bv);
  return ct__then(s, ct__triplicate(s, x), ct__par(s, q, ct__par(s, k, v)));
}

/* split: heads via head_split/merge (HEADS objects), else one head on x's own shape. */
static ct_status ct__attention(ct_morphism **out, const ct_object *x, int64_t heads, bool split,
                               const ct_attention_params *p, const char *fn) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "%s: out is NULL", fn);
  *out = NULL;
  if (!x || !p) return ct__fail(CT_ERR_INVALID_ARG, "%s: %s is NULL", fn, x ? "params" : "x");
  if (x->role != CT_ROLE_SEQ) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "%s: input must be SEQ [B,T,C], got %s", fn,
                    ct_object_str(x, b, sizeof b));
  }
  if (heads < 1 || x->dims[2] % heads)
    return ct__fail(CT_ERR_SHAPE, "%s: %lld heads do not divide width %lld", fn,
                    (long long)heads, (long long)x->dims[2]);
  ct_object hv = *x, sc, at;
  if (split) {
    int64_t d[4] = {x->dims[0], heads, x->dims[1], x->dims[2] / heads};
    CT__TRY(ct_object_make(&hv, CT_F32, CT_ROLE_HEADS, 4, d));
  }
  CT__TRY(ct__square_objects(&hv, &sc, &at));
  ct_status s = CT_OK;
  /* Built one statement at a time so the first bad parameter is the one reported. */
  ct_morphism *qkv = ct__projections(&s, x, p);
  ct_morphism *o = ct__linear(&s, x, CT_ROLE_SEQ, p->wo, p->bo);
  if (split)
    qkv = ct__then(&s, qkv,
                   ct__par(&s, ct__split(&s, x, heads),
                           ct__par(&s, ct__split(&s, x, heads), ct__split(&s, x, heads))));
  ct_morphism *y = ct__then(&s, qkv, ct__attend(&s, &hv, &sc, &at));
  if (split) y = ct__then(&s, y, ct__merge(&s, &hv));
  y = ct__then(&s, y, o);
  if (s != CT_OK) return ct__fail(s, "%s: %s", fn, ct_last_error());
  *out = y;
  return CT_OK;
}

ct_status ct_self_attention(ct_morphism **out, const ct_object *x, int64_t heads,
                            const ct_attention_params *p) {
  return ct__attention(out, x, heads, true, p, "ct_self_attention");
}

ct_status ct_single_head_attention(ct_morphism **out, const ct_object *x,
                                   const ct_attention_params *p) {
  return ct__attention(out, x, 1, false, p, "ct_single_head_attention");
}

/* ---- the GPT ---------------------------------------------------------------- */

/* Parameters of one block, in the documented order. */
enum { CT__LN1_G, CT__LN1_B, CT__WQ, CT__BQ, CT__WK, CT__BK, CT__WV, CT__BV, CT__WO, CT__BO,
       CT__LN2_G, CT__LN2_B, CT__W1, CT__B1, CT__W2, CT__B2, CT__PER_BLOCK };

struct ct_gpt {
  ct_gpt_config cfg;
  bool zeroed; /* parameters left 0 (ct_gpt_new_zeroed) */
  int n_params;
  ct_param **params; /* wte, wpe, blocks, lnf.gain, lnf.bias, head.w */
};

void ct_gpt_free(ct_gpt *g) {
  if (!g) return;
  for (int i = 0; g->params && i < g->n_params; i++) ct_param_free(g->params[i]);
  free(g->params);
  free(g);
}

/* Makes parameter i: name, shape, and initial values (std > 0: normal; else
 * fill; a zeroed GPT: left 0). */
static ct_status ct__gpt_param(ct_gpt *g, int i, const char *name, int64_t rows, int64_t cols,
                               float std, float fill, uint64_t seed) {
  int64_t dims[2] = {rows, cols};
  CT__TRY(ct_param_new(&g->params[i], name, cols ? 2 : 1, dims));
  if (g->zeroed) return CT_OK;
  if (std > 0.0f) return ct_param_init_normal(g->params[i], std, seed * 1000003u + (uint64_t)i);
  return ct_param_fill(g->params[i], fill);
}

static ct_status ct__gpt_new(ct_gpt **out, const ct_gpt_config *cfg, uint64_t seed,
                             bool zeroed, const char *fn);

ct_status ct_gpt_new(ct_gpt **out, const ct_gpt_config *cfg, uint64_t seed) {
  return ct__gpt_new(out, cfg, seed, false, "ct_gpt_new");
}

ct_status ct_gpt_new_zeroed(ct_gpt **out, const ct_gpt_config *cfg) {
  return ct__gpt_new(out, cfg, 0, true, "ct_gpt_new_zeroed");
}

static ct_status ct__gpt_new(ct_gpt **out, const ct_gpt_config *cfg, uint64_t seed,
                             bool zeroed, const char *fn) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "%s: out is NULL", fn);
  *out = NULL;
  if (!cfg) return ct__fail(CT_ERR_INVALID_ARG, "%s: config is NULL", fn);
  const ct_gpt_config c = *cfg;
  if (c.vocab < 1 || c.block < 1 || c.layers < 1 || c.heads < 1 || c.width < 1 ||
      c.vocab > INT32_MAX || c.layers > 1000)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: config vocab %lld, block %lld, layers %lld, heads "
                    "%lld, width %lld: each must be >= 1 (vocab < 2^31, layers <= 1000)", fn,
                    (long long)c.vocab, (long long)c.block, (long long)c.layers,
                    (long long)c.heads, (long long)c.width);
  if (c.width % c.heads)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: %lld heads do not divide width %lld", fn,
                    (long long)c.heads, (long long)c.width);
  ct_gpt *g = calloc(1, sizeof *g);
  int n = 2 + (int)c.layers * CT__PER_BLOCK + 3;
  if (g) g->params = calloc((size_t)n, sizeof *g->params);
  if (!g || !g->params) {
    free(g);
    return ct__fail(CT_ERR_NOMEM, "%s: out of host memory", fn);
  }
  g->cfg = c;
  g->zeroed = zeroed;
  g->n_params = n;
  int64_t C = c.width;
  float std = 0.02f, proj = 0.02f / sqrtf(2.0f * (float)c.layers);
  ct_status s = ct__gpt_param(g, 0, "wte", c.vocab, C, std, 0, seed);
  if (s == CT_OK) s = ct__gpt_param(g, 1, "wpe", c.block, C, std, 0, seed);
  for (int64_t l = 0; l < c.layers && s == CT_OK; l++) {
    static const struct {
      const char *name;
      int rows4, cols; /* rows: C (x4 when rows4); cols: 0 (vector), 1 (C), 4 (4C) */
      int kind;        /* 0 normal 0.02, 1 normal proj, 2 zeros, 3 ones */
    } spec[CT__PER_BLOCK] = {
        {"ln1.gain", 0, 0, 3}, {"ln1.bias", 0, 0, 2}, {"attn.wq", 0, 1, 0}, {"attn.bq", 0, 0, 2},
        {"attn.wk", 0, 1, 0},  {"attn.bk", 0, 0, 2},  {"attn.wv", 0, 1, 0}, {"attn.bv", 0, 0, 2},
        {"attn.wo", 0, 1, 1},  {"attn.bo", 0, 0, 2},  {"ln2.gain", 0, 0, 3}, {"ln2.bias", 0, 0, 2},
        {"mlp.w1", 0, 4, 0},   {"mlp.b1", 4, 0, 2},   {"mlp.w2", 1, 1, 1},   {"mlp.b2", 0, 0, 2}};
    for (int k = 0; k < CT__PER_BLOCK && s == CT_OK; k++) {
      char name[64];
      snprintf(name, sizeof name, "h%lld.%s", (long long)l, spec[k].name);
      /* vectors: length C, or 4C for mlp.b1; matrices: [C or 4C, C or 4C] */
      int64_t rows = spec[k].cols == 0 ? (spec[k].rows4 == 4 ? 4 * C : C)
                                       : (spec[k].rows4 == 1 ? 4 * C : C);
      int64_t cols = spec[k].cols == 0 ? 0 : spec[k].cols == 4 ? 4 * C : C;
      float sd = spec[k].kind == 0 ? std : spec[k].kind == 1 ? proj : 0.0f;
      s = ct__gpt_param(g, 2 + (int)l * CT__PER_BLOCK + k, name, rows, cols, sd,
                        spec[k].kind == 3 ? 1.0f : 0.0f, seed);
    }
  }
  if (s == CT_OK) s = ct__gpt_param(g, n - 3, "lnf.gain", C, 0, 0, 1.0f, seed);
  if (s == CT_OK) s = ct__gpt_param(g, n - 2, "lnf.bias", C, 0, 0, 0.0f, seed);
  if (s == CT_OK) s = ct__gpt_param(g, n - 1, "head.w", C, c.vocab, std, 0, seed);
  if (s != CT_OK) {
    ct_status e = ct__fail(s, "%s: %s", fn, ct_last_error());
    ct_gpt_free(g);
    return e;
  }
  *out = g;
  return CT_OK;
}

const ct_gpt_config *ct_gpt_get_config(const ct_gpt *g) { return g ? &g->cfg : NULL; }
int ct_gpt_param_count(const ct_gpt *g) { return g ? g->n_params : 0; }
ct_param *ct_gpt_param(const ct_gpt *g, int i) {
  return g && i >= 0 && i < g->n_params ? g->params[i] : NULL;
}
ct_param *ct_gpt_find_param(const ct_gpt *g, const char *name) {
  for (int i = 0; g && name && i < g->n_params; i++)
    if (!strcmp(ct_param_name(g->params[i]), name)) return g->params[i];
  return NULL;
}
int64_t ct_gpt_numel(const ct_gpt *g) {
  int64_t n = 0;
  for (int i = 0; g && i < g->n_params; i++) n += ct_param_numel(g->params[i]);
  return n;
}

/* x -> x + branch(x): copy ; (id (x) branch) ; add. */
static ct_morphism *ct__residual(ct_status *s, const ct_object *x, ct_morphism *branch) {
  return ct__then(s, ct__then(s, ct__copy(s, x), ct__par(s, ct__id(s, x), branch)),
                  ct__add(s, x));
}

static ct_morphism *ct__attention_of(ct_status *s, const ct_object *x, int64_t heads,
                                     const ct_attention_params *p) {
  CT__GEN(s, ct_self_attention(&m, x, heads, p));
}

/* The attention projections of block l. */
static ct_attention_params ct__block_attention(const ct_gpt *g, int64_t l) {
  ct_param *const *p = &g->params[2 + l * CT__PER_BLOCK];
  ct_attention_params ap = {p[CT__WQ], p[CT__BQ], p[CT__WK], p[CT__BK],
                            p[CT__WV], p[CT__BV], p[CT__WO], p[CT__BO]};
  return ap;
}

/* layernorm -> linear 4C -> GELU -> linear C, of block l. */
static ct_morphism *ct__mlp(ct_status *s, const ct_gpt *g, int64_t l, const ct_object *x) {
  ct_param *const *p = &g->params[2 + l * CT__PER_BLOCK];
  ct_object wide = *x;
  wide.dims[2] = 4 * x->dims[2];
  return ct__then(
      s, ct__then(s, ct__norm(s, x, p[CT__LN2_G], p[CT__LN2_B]),
                  ct__linear(s, x, CT_ROLE_SEQ, p[CT__W1], p[CT__B1])),
      ct__then(s, ct__gelu(s, &wide), ct__linear(s, &wide, CT_ROLE_SEQ, p[CT__W2], p[CT__B2])));
}

/* layernorm -> attention -> residual; layernorm -> MLP (4C, GELU) -> residual. */
static ct_morphism *ct__block(ct_status *s, const ct_gpt *g, int64_t l, const ct_object *x) {
  ct_param *const *p = &g->params[2 + l * CT__PER_BLOCK];
  ct_attention_params ap = ct__block_attention(g, l);
  ct_morphism *attn = ct__then(s, ct__norm(s, x, p[CT__LN1_G], p[CT__LN1_B]),
                               ct__attention_of(s, x, g->cfg.heads, &ap));
  return ct__then(s, ct__residual(s, x, attn), ct__residual(s, x, ct__mlp(s, g, l, x)));
}

ct_status ct_gpt_logits(ct_morphism **out, const ct_gpt *g, int64_t batch, int64_t time) {
  static const char fn[] = "ct_gpt_logits";
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "%s: out is NULL", fn);
  *out = NULL;
  if (!g) return ct__fail(CT_ERR_INVALID_ARG, "%s: gpt is NULL", fn);
  if (batch < 1 || time < 1 || time > g->cfg.block)
    return ct__fail(CT_ERR_SHAPE, "%s: batch %lld and time %lld must be >= 1, time at most the "
                    "block size %lld", fn, (long long)batch, (long long)time,
                    (long long)g->cfg.block);
  ct_object tk, x;
  CT__TRY(ct_object_token_seq(&tk, batch, time));
  CT__TRY(ct_object_seq(&x, batch, time, g->cfg.width));
  ct_status s = CT_OK;
  ct_morphism *net = NULL;
  if (s == CT_OK) s = ct_embedding(&net, &tk, g->params[0]);
  ct_morphism *pos = NULL;
  if (s == CT_OK) s = ct_pos_embedding(&pos, &x, g->params[1]);
  net = ct__then(&s, net, pos);
  for (int64_t l = 0; l < g->cfg.layers; l++) net = ct__then(&s, net, ct__block(&s, g, l, &x));
  int n = g->n_params;
  net = ct__then(&s, net, ct__norm(&s, &x, g->params[n - 3], g->params[n - 2]));
  net = ct__then(&s, net, ct__linear(&s, &x, CT_ROLE_LOGITS, g->params[n - 1], NULL));
  if (s != CT_OK) return ct__fail(s, "%s: %s", fn, ct_last_error());
  *out = net;
  return CT_OK;
}

ct_status ct_gpt_loss(ct_morphism **out, const ct_gpt *g, int64_t batch, int64_t time) {
  static const char fn[] = "ct_gpt_loss";
  ct_status built = ct_gpt_logits(out, g, batch, time);
  if (built != CT_OK) return ct__fail(built, "%s: %s", fn, ct_last_error());
  ct_morphism *logits = *out;
  *out = NULL;
  ct_object tk, lg;
  int64_t d[3] = {batch, time, g->cfg.vocab};
  CT__TRY(ct_object_token_seq(&tk, batch, time));
  CT__TRY(ct_object_make(&lg, CT_F32, CT_ROLE_LOGITS, 3, d));
  ct_status s = CT_OK;
  ct_morphism *xent = NULL;
  if (s == CT_OK) s = ct_softmax_cross_entropy(&xent, &lg, &tk);
  ct_morphism *loss = ct__then(&s, ct__par(&s, logits, ct__id(&s, &tk)), xent);
  if (s != CT_OK) return ct__fail(s, "%s: %s", fn, ct_last_error());
  *out = loss;
  return CT_OK;
}

/* ---- decoding -------------------------------------------------------------------- */

static ct_morphism *ct__discard(ct_status *s, const ct_object *x) { CT__GEN(s, ct_discard(&m, x)); }
static ct_morphism *ct__embed(ct_status *s, const ct_object *ids, ct_param *table) {
  CT__GEN(s, ct_embedding(&m, ids, table));
}
static ct_morphism *ct__kv(ct_status *s, const ct_object *x, const ct_object *pos, ct_param *kc,
                           ct_param *vc) {
  CT__GEN(s, ct_kv_attention(&m, x, pos, kc, vc));
}

/* (x (x) pos) -> ((x + branch(x, pos)) (x) pos):
 * (copy (x) copy) ; (id (x) branch (x) id) ; (add (x) id). */
static ct_morphism *ct__residual_at(ct_status *s, const ct_object *x, const ct_object *pos,
                                    ct_morphism *branch) {
  ct_morphism *fan = ct__par(s, ct__copy(s, x), ct__copy(s, pos));
  ct_morphism *body = ct__par(s, ct__id(s, x), ct__par(s, branch, ct__id(s, pos)));
  return ct__then(s, ct__then(s, fan, body), ct__par(s, ct__add(s, x), ct__id(s, pos)));
}

/* Block l over (x (x) pos), its attention reading and writing caches kc, vc. */
static ct_morphism *ct__block_at(ct_status *s, const ct_gpt *g, int64_t l, const ct_object *x,
                                 const ct_object *pos, ct_param *kc, ct_param *vc) {
  ct_param *const *p = &g->params[2 + l * CT__PER_BLOCK];
  ct_attention_params ap = ct__block_attention(g, l);
  ct_morphism *attn = ct__then(
      s, ct__par(s, ct__then(s, ct__norm(s, x, p[CT__LN1_G], p[CT__LN1_B]), ct__projections(s, x, &ap)),
                 ct__id(s, pos)),
      ct__then(s, ct__kv(s, x, pos, kc, vc), ct__linear(s, x, CT_ROLE_SEQ, ap.wo, ap.bo)));
  ct_morphism *mlp = ct__par(s, ct__residual(s, x, ct__mlp(s, g, l, x)), ct__id(s, pos));
  return ct__then(s, ct__residual_at(s, x, pos, attn), mlp);
}

ct_status ct_gpt_decode(ct_morphism **out, const ct_gpt *g, ct_param *const *caches,
                        int64_t batch, int64_t time) {
  static const char fn[] = "ct_gpt_decode";
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "%s: out is NULL", fn);
  *out = NULL;
  if (!g || !caches) return ct__fail(CT_ERR_INVALID_ARG, "%s: %s is NULL", fn, g ? "caches" : "gpt");
  if (batch < 1 || time < 1 || time > g->cfg.block)
    return ct__fail(CT_ERR_SHAPE, "%s: batch %lld and time %lld must be >= 1, time at most the "
                    "block size %lld", fn, (long long)batch, (long long)time,
                    (long long)g->cfg.block);
  ct_object tk, x;
  CT__TRY(ct_object_token_seq(&tk, batch, time));
  CT__TRY(ct_object_seq(&x, batch, time, g->cfg.width));
  ct_status s = CT_OK;
  /* (tokens (x) positions) -> (wte[tokens] + wpe[positions]) (x) positions */
  ct_morphism *net = ct__par(&s, ct__embed(&s, &tk, g->params[0]),
                             ct__then(&s, ct__copy(&s, &tk),
                                      ct__par(&s, ct__embed(&s, &tk, g->params[1]), ct__id(&s, &tk))));
  net = ct__then(&s, net, ct__par(&s, ct__add(&s, &x), ct__id(&s, &tk)));
  for (int64_t l = 0; l < g->cfg.layers; l++)
    net = ct__then(&s, net, ct__block_at(&s, g, l, &x, &tk, caches[2 * l], caches[2 * l + 1]));
  int n = g->n_params;
  ct_morphism *head = ct__then(&s, ct__norm(&s, &x, g->params[n - 3], g->params[n - 2]),
                               ct__linear(&s, &x, CT_ROLE_LOGITS, g->params[n - 1], NULL));
  net = ct__then(&s, net, ct__par(&s, head, ct__discard(&s, &tk)));
  if (s != CT_OK) return ct__fail(s, "%s: %s", fn, ct_last_error());
  *out = net;
  return CT_OK;
}
