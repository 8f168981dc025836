/* SPDX-License-Identifier: MIT */
/* The GPT and its attention composites (gpt.h), on the CPU reference.
 *
 *   - causality: logits at positions <= t are bit-for-bit independent of the
 *     tokens after t (and of other batch rows), and those tokens do matter;
 *   - one head: ct_self_attention with 1 head is ct_single_head_attention
 *     (outputs and gradients); H heads agree with an independent double
 *     computation, and their gradients with central differences of it;
 *   - structure: the loss morphism's boundary, block limits, the documented
 *     parameter list and initialisation, the loss at initialisation;
 *   - the whole GPT loss against a double GPT written here, and every parameter
 *     gradient against its central differences;
 *   - the optimizer step: one squared-norm launch and one update launch per step
 *     for all parameters, and the update each parameter gets (decay by rank,
 *     moments, clipping by the global norm) is AdamW's;
 *   - learning: a small GPT trained with AdamW on the GNU GPL v3 text (bytes as
 *     tokens) beats the unigram baseline on held-out text. */
#include "gradcheck.h"
#include <time.h>
#include "backend_impl.h" /* a counting backend built from cpu_ref's table */

#ifndef CTML_TEST_DATA_DIR
#define CTML_TEST_DATA_DIR "tests/data"
#endif

static ct_gpt *gpt_make(int64_t V, int64_t block, int64_t layers, int64_t heads, int64_t width,
                        uint64_t seed) {
  ct_gpt_config cfg = {V, block, layers, heads, width};
  ct_gpt *g = NULL;
  CT_ASSERT_OK(ct_gpt_new(&g, &cfg, seed));
  return g;
}

/* Larger random parameters than the 0.02 initialisation, so attention is far
 * from uniform and every path carries signal. */
static void gpt_randomize(ct_gpt *g, uint64_t seed) {
  ct_rng rng = {seed};
  for (int i = 0; i < ct_gpt_param_count(g); i++) {
    ct_param *p = ct_gpt_param(g, i);
    int64_t n = ct_param_numel(p);
    if (ct_param_object(p)->rank == 2) {
      CT_ASSERT_OK(ct_param_init_normal(p, 0.4f, seed * 977 + (uint64_t)i));
    } else {
      float *v = malloc((size_t)n * sizeof *v);
      bool gain = strstr(ct_param_name(p), "gain") != NULL;
      ct_rng_fill(&rng, v, n, gain ? 0.5f : -0.3f, gain ? 1.5f : 0.3f);
      CT_ASSERT_OK(ct_param_set(p, v, n));
      free(v);
    }
  }
}

/* ---- 1. causality ------------------------------------------------------------- */

static void logits_run(ct_plan *p, const int32_t *tok, int64_t n, float *out, int64_t n_out) {
  CT_ASSERT_OK(ct_plan_set_input(p, 0, tok, n));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 0, out, n_out));
}

static void test_causality(void **state) {
  (void)state;
  const int64_t V = 11, T = 8, B = 2;
  for (int init = 0; init < 2; init++) { /* the documented init, then larger weights */
    ct_gpt *g = gpt_make(V, T, 2, 2, 12, 31);
    if (init) gpt_randomize(g, 32);
    ct_morphism *m = NULL;
    CT_ASSERT_OK(ct_gpt_logits(&m, g, B, T));
    ct_plan *p = NULL;
    CT_ASSERT_OK(ct_compile(&p, m, cpu, CT_PLAN_FORWARD));
    int64_t n_out = B * T * V;
    int32_t tok[16], tok2[16];
    float *y = malloc(n_out * sizeof *y), *y2 = malloc(n_out * sizeof *y2);
    ct_rng rng = {33 + (uint64_t)init};
    for (int i = 0; i < B * T; i++) tok[i] = ct_rng_int(&rng, (int32_t)V);
    logits_run(p, tok, B * T, y, n_out);
    double min_change = INFINITY;
    for (int64_t t = 0; t < T - 1; t++) {
      memcpy(tok2, tok, sizeof tok);
      for (int64_t b = 0; b < B; b++)
        for (int64_t s = t + 1; s < T; s++)
          tok2[b * T + s] = (tok[b * T + s] + 1 + ct_rng_int(&rng, (int32_t)V - 1)) % (int32_t)V;
      logits_run(p, tok2, B * T, y2, n_out);
      for (int64_t b = 0; b < B; b++) {
        const float *r1 = &y[b * T * V], *r2 = &y2[b * T * V];
        if (memcmp(r1, r2, (size_t)((t + 1) * V) * sizeof(float)) != 0)
          fail_msg("init %d: batch row %lld: logits at positions <= %lld changed when only tokens "
                   "after %lld changed", init, (long long)b, (long long)t, (long long)t);
        double change = 0.0;
        for (int64_t e = (t + 1) * V; e < T * V; e++) change = fmax(change, fabs(r1[e] - r2[e]));
        if (!(change > 0.0))
          fail_msg("init %d: batch row %lld: changing tokens after %lld changed no logit after it",
                   init, (long long)b, (long long)t);
        min_change = fmin(min_change, change);
      }
    }
    /* batch rows are independent: a new row 1 leaves row 0 as it was */
    memcpy(tok2, tok, sizeof tok);
    for (int64_t s = 0; s < T; s++) tok2[T + s] = (tok[T + s] + 3) % (int32_t)V;
    logits_run(p, tok2, B * T, y2, n_out);
    assert_memory_equal(y, y2, (size_t)(T * V) * sizeof(float));
    print_message("    %s: logits at <= t bit-identical for every t; later logits move by >= %.3g\n",
                  init ? "random weights (std 0.4)" : "documented init", min_change);
    free(y);
    free(y2);
    ct_plan_free(p);
    ct_morphism_free(m);
    ct_gpt_free(g);
  }
}

/* ---- 2. attention -------------------------------------------------------------- */

#define AC 6 /* width of the attention tests */

typedef struct attn_set {
  ct_param *p[8]; /* wq bq wk bk wv bv wo bo */
  ct_attention_params ap;
} attn_set;

static void attn_set_make(attn_set *s, uint64_t seed) {
  static const char *names[8] = {"wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo"};
  ct_rng rng = {seed};
  for (int i = 0; i < 8; i++) {
    int64_t d[2] = {AC, AC};
    int rank = i % 2 ? 1 : 2;
    CT_ASSERT_OK(ct_param_new(&s->p[i], names[i], rank, d));
    int64_t n = ct_param_numel(s->p[i]);
    float v[AC * AC];
    ct_rng_fill(&rng, v, n, -0.6f, 0.6f);
    CT_ASSERT_OK(ct_param_set(s->p[i], v, n));
  }
  s->ap = (ct_attention_params){s->p[0], s->p[1], s->p[2], s->p[3],
                                s->p[4], s->p[5], s->p[6], s->p[7]};
}

static void attn_set_free(attn_set *s) {
  for (int i = 0; i < 8; i++) ct_param_free(s->p[i]);
}

/* One forward and reverse: output y, input cotangent gx, the 8 parameter gradients gp. */
static void attn_run(const ct_morphism *m, const attn_set *s, const float *x, const float *w,
                     int64_t n, float *y, float *gx, float gp[8][AC * AC]) {
  ct_plan *p = NULL;
  CT_ASSERT_OK(ct_compile(&p, m, cpu, CT_PLAN_REVERSE));
  CT_ASSERT_OK(ct_plan_set_input(p, 0, x, n));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 0, y, n));
  CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, w, n));
  CT_ASSERT_OK(ct_plan_reverse(p));
  CT_ASSERT_OK(ct_plan_get_input_grad(p, 0, gx, n));
  for (int i = 0; i < 8; i++)
    CT_ASSERT_OK(ct_plan_get_param_grad(p, s->p[i], gp[i], ct_param_numel(s->p[i])));
  ct_plan_free(p);
}

static double max_diff(const float *a, const float *b, int64_t n) {
  double w = 0.0;
  for (int64_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i])));
  return w;
}

static void test_one_head_is_single_head(void **state) {
  (void)state;
  const int64_t B = 2, T = 5, n = B * T * AC;
  ct_object x;
  CT_ASSERT_OK(ct_object_seq(&x, B, T, AC));
  attn_set s;
  attn_set_make(&s, 41);
  ct_morphism *multi = NULL, *single = NULL;
  CT_ASSERT_OK(ct_self_attention(&multi, &x, 1, &s.ap));
  CT_ASSERT_OK(ct_single_head_attention(&single, &x, &s.ap));
  assert_true(ct_object_equal(ct_morphism_dom(multi, 0), &x));
  assert_true(ct_object_equal(ct_morphism_cod(multi, 0), &x));
  assert_true(ct_object_equal(ct_morphism_cod(single, 0), &x));
  /* the single-head form has no split or merge */
  assert_int_equal(ct_morphism_node_count(multi), ct_morphism_node_count(single) + 4);
  float xv[B * T * AC], w[B * T * AC], y1[B * T * AC], y2[B * T * AC], g1[B * T * AC],
      g2[B * T * AC];
  static float gp1[8][AC * AC], gp2[8][AC * AC];
  ct_rng rng = {42};
  ct_rng_fill(&rng, xv, n, -1.0f, 1.0f);
  ct_rng_fill(&rng, w, n, -1.0f, 1.0f);
  attn_run(multi, &s, xv, w, n, y1, g1, gp1);
  attn_run(single, &s, xv, w, n, y2, g2, gp2);
  double dy = max_diff(y1, y2, n), dx = max_diff(g1, g2, n), dp = 0.0;
  for (int i = 0; i < 8; i++) dp = fmax(dp, max_diff(gp1[i], gp2[i], ct_param_numel(s.p[i])));
  print_message("    heads=1 vs single head: outputs %.1e, input grads %.1e, param grads %.1e\n", dy,
                dx, dp);
  assert_true(dy <= 1e-6 && dx <= 1e-6 && dp <= 1e-6);
  ct_morphism_free(multi);
  ct_morphism_free(single);
  attn_set_free(&s);
}

/* Plain double attention: per head softmax(Q K^T / sqrt(D), causal) V,
 * concatenated, then the output projection. p: wq bq wk bk wv bv wo bo. */
static void attention_double(int64_t B, int64_t T, int64_t C, int64_t H, const double *x,
                             double *const *p, double *y) {
  int64_t R = B * T, D = C / H, ns = B * H * T * T;
  double *t = malloc(R * C * sizeof *t), *s = malloc(ns * sizeof *s), *a = malloc(ns * sizeof *a),
         *o = malloc(R * C * sizeof *o), *qkv[3];
  for (int which = 0; which < 3; which++) { /* projections, split into heads */
    qkv[which] = malloc(R * C * sizeof *qkv[which]);
    linear_double(R, C, C, x, p[2 * which], p[2 * which + 1], t);
    heads_double(B, H, T, D, t, qkv[which], 1);
  }
  scores_double(B * H, T, D, qkv[0], qkv[1], s);
  causal_softmax_double(B * H, T, s, a);
  apply_double(B * H, T, D, a, qkv[2], o);
  heads_double(B, H, T, D, o, t, 0);
  linear_double(R, C, C, t, p[6], p[7], y);
  free(t), free(s), free(a), free(o), free(qkv[0]), free(qkv[1]), free(qkv[2]);
}

/* A point of the attention check: L = w . y (double). */
typedef struct attn_point {
  int64_t B, T, H;
  const double *x, *w;
  double *const *p;
  double *y;
} attn_point;

static double attn_loss(const void *ctx) {
  const attn_point *a = ctx;
  attention_double(a->B, a->T, AC, a->H, a->x, a->p, a->y);
  double L = 0.0;
  for (int64_t e = 0; e < a->B * a->T * AC; e++) L += a->w[e] * a->y[e];
  return L;
}

static void test_multi_head_vs_double(void **state) {
  (void)state;
  static const int64_t cases[][3] = {{2, 5, 2}, {2, 5, 3}, {1, 7, 6}, {3, 1, 2}}; /* B, T, H */
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int64_t B = cases[c][0], T = cases[c][1], H = cases[c][2], n = B * T * AC;
    ct_object x;
    CT_ASSERT_OK(ct_object_seq(&x, B, T, AC));
    attn_set s;
    attn_set_make(&s, 50 + c);
    ct_morphism *m = NULL;
    CT_ASSERT_OK(ct_self_attention(&m, &x, H, &s.ap));
    float *xv = malloc(n * sizeof *xv), *w = malloc(n * sizeof *w), *y = malloc(n * sizeof *y),
          *gx = malloc(n * sizeof *gx);
    static float gp[8][AC * AC];
    ct_rng rng = {60 + c};
    ct_rng_fill(&rng, xv, n, -1.0f, 1.0f);
    ct_rng_fill(&rng, w, n, -1.0f, 1.0f);
    attn_run(m, &s, xv, w, n, y, gx, gp);
    double *xd = malloc(n * sizeof *xd), *wd = malloc(n * sizeof *wd), *yd = malloc(n * sizeof *yd),
           *pd[8];
    for (int64_t e = 0; e < n; e++) xd[e] = xv[e], wd[e] = w[e];
    for (int i = 0; i < 8; i++) {
      int64_t np = ct_param_numel(s.p[i]);
      float f[AC * AC];
      CT_ASSERT_OK(ct_param_get(s.p[i], f, np));
      pd[i] = malloc(np * sizeof *pd[i]);
      for (int64_t e = 0; e < np; e++) pd[i][e] = f[e];
    }
    attention_double(B, T, AC, H, xd, pd, yd);
    double fwd = 0.0;
    for (int64_t e = 0; e < n; e++) {
      double err = fabs(y[e] - yd[e]);
      if (!(err <= 1e-5 + 1e-5 * fabs(yd[e])))
        fail_msg("H=%lld: output %lld = %.9g, double %.9g", (long long)H, (long long)e,
                 (double)y[e], yd[e]);
      fwd = fmax(fwd, err);
    }
    attn_point at = {B, T, H, xd, wd, pd, yd};
    char name[32];
    snprintf(name, sizeof name, "H=%lld", (long long)H);
    double gw = gc_fd_check(attn_loss, &at, xd, n, gx, name, "x", NULL);
    for (int i = 0; i < 8; i++)
      gw = fmax(gw, gc_fd_check(attn_loss, &at, pd[i], ct_param_numel(s.p[i]), gp[i], name,
                                ct_param_name(s.p[i]), NULL));
    print_message("    self_attention B=%lld T=%lld C=%d H=%lld: output vs double %.1e abs, "
                  "grads vs FD worst rel %.1e\n", (long long)B, (long long)T, AC, (long long)H,
                  fwd, gw);
    for (int i = 0; i < 8; i++) free(pd[i]);
    free(xv), free(w), free(y), free(gx), free(xd), free(wd), free(yd);
    ct_morphism_free(m);
    attn_set_free(&s);
  }
}

static void test_attention_errors(void **state) {
  (void)state;
  attn_set s;
  attn_set_make(&s, 70);
  ct_morphism *m = NULL;
  ct_object x, hid, x8;
  CT_ASSERT_OK(ct_object_seq(&x, 2, 5, AC));
  CT_ASSERT_OK(ct_object_seq(&x8, 2, 5, 8));
  CT_ASSERT_OK(ct_object_matrix(&hid, CT_ROLE_HIDDEN, 5, AC));
  CT_ASSERT_STATUS(ct_self_attention(&m, &x, 4, &s.ap), CT_ERR_SHAPE);
  CT_ASSERT_MESSAGE_HAS("ct_self_attention");
  CT_ASSERT_STATUS(ct_self_attention(&m, &x, 0, &s.ap), CT_ERR_SHAPE);
  CT_ASSERT_STATUS(ct_self_attention(&m, &hid, 1, &s.ap), CT_ERR_SHAPE);
  CT_ASSERT_MESSAGE_HAS("HIDDEN");
  CT_ASSERT_STATUS(ct_single_head_attention(&m, &x8, &s.ap), CT_ERR_SHAPE); /* W is [6,6] */
  CT_ASSERT_MESSAGE_HAS("ct_single_head_attention");
  CT_ASSERT_MESSAGE_HAS("SEQ f32[2,5,8]");
  assert_null(m);
  attn_set_free(&s);
}

/* ---- the whole GPT loss against a double GPT and its central differences -------- */

/* A point of the GPT check: parameters P (np of them, in ct_gpt_param order)
 * and the tokens of a [B,T] batch. */
typedef struct gpt_point {
  const ct_gpt_config *c;
  double *const *P;
  int np;
  const int32_t *in, *tg;
  int64_t B, T;
} gpt_point;

/* The documented GPT in double: mean cross-entropy of targets tg given inputs in. */
static double gpt_loss_double(const void *ctx) {
  const gpt_point *pt = ctx;
  const ct_gpt_config *c = pt->c;
  double *const *P = pt->P;
  const int32_t *in = pt->in, *tg = pt->tg;
  int np = pt->np;
  int64_t B = pt->B, T = pt->T, C = c->width, V = c->vocab, R = B * T;
  double *x = malloc(R * C * sizeof *x), *h = malloc(R * C * sizeof *h),
         *a = malloc(R * C * sizeof *a), *u = malloc(R * 4 * C * sizeof *u),
         *lg = malloc(R * V * sizeof *lg);
  embedding_double(R, C, in, P[0], x);
  pos_double(B, T, C, x, P[1], x);
  for (int64_t l = 0; l < c->layers; l++) {
    double *const *p = &P[2 + 16 * l];
    layernorm_double(R, C, x, p[0], p[1], h);
    attention_double(B, T, C, c->heads, h, &p[2], a);
    for (int64_t e = 0; e < R * C; e++) x[e] += a[e];
    layernorm_double(R, C, x, p[10], p[11], h);
    linear_double(R, C, 4 * C, h, p[12], p[13], u);
    for (int64_t e = 0; e < R * 4 * C; e++) u[e] = gelu_double(u[e]);
    linear_double(R, 4 * C, C, u, p[14], p[15], a);
    for (int64_t e = 0; e < R * C; e++) x[e] += a[e];
  }
  layernorm_double(R, C, x, P[np - 3], P[np - 2], h);
  linear_double(R, C, V, h, P[np - 1], NULL, lg);
  double loss = 0.0;
  for (int64_t r = 0; r < R; r++) loss += nll_logits_double(V, &lg[r * V], tg[r]);
  free(x), free(h), free(a), free(u), free(lg);
  return loss / (double)R;
}

static void test_gpt_gradcheck(void **state) {
  (void)state;
  const int64_t B = 2, T = 4;
  ct_gpt *g = gpt_make(5, 5, 2, 2, 4, 81);
  gpt_randomize(g, 82);
  const ct_gpt_config *cfg = ct_gpt_get_config(g);
  int np = ct_gpt_param_count(g);
  int32_t in[8], tg[8];
  ct_rng rng = {83};
  for (int i = 0; i < B * T; i++) in[i] = ct_rng_int(&rng, 5), tg[i] = ct_rng_int(&rng, 5);
  in[1] = in[5]; /* a repeated token: its embedding row sums two uses */
  ct_morphism *loss = NULL;
  CT_ASSERT_OK(ct_gpt_loss(&loss, g, B, T));
  ct_plan *p = NULL;
  CT_ASSERT_OK(ct_compile(&p, loss, cpu, CT_PLAN_REVERSE));
  CT_ASSERT_OK(ct_plan_set_input(p, 0, in, B * T));
  CT_ASSERT_OK(ct_plan_set_input(p, 1, tg, B * T));
  CT_ASSERT_OK(ct_plan_forward(p));
  float lv, one = 1.0f;
  CT_ASSERT_OK(ct_plan_get_output(p, 0, &lv, 1));
  CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, &one, 1));
  CT_ASSERT_OK(ct_plan_reverse(p));
  double **P = calloc((size_t)np, sizeof *P);
  float **G = calloc((size_t)np, sizeof *G);
  for (int i = 0; i < np; i++) {
    ct_param *q = ct_gpt_param(g, i);
    int64_t n = ct_param_numel(q);
    float *f = malloc(n * sizeof *f);
    G[i] = malloc(n * sizeof *G[i]);
    P[i] = malloc(n * sizeof *P[i]);
    CT_ASSERT_OK(ct_param_get(q, f, n));
    CT_ASSERT_OK(ct_plan_get_param_grad(p, q, G[i], n));
    for (int64_t e = 0; e < n; e++) P[i][e] = f[e];
    free(f);
  }
  gpt_point pt = {cfg, P, np, in, tg, B, T};
  double want = gpt_loss_double(&pt);
  if (!(fabs(lv - want) <= 1e-5 + 1e-4 * want))
    fail_msg("GPT loss %.9g, double GPT %.9g", (double)lv, want);
  double worst = 0.0;
  int64_t checked = 0, zeros = 0;
  for (int i = 0; i < np; i++) {
    /* unused rows of wte and wpe must have exactly 0 gradient (attn.bk's gradient
     * is 0 in exact arithmetic too, but only up to rounding in the library's) */
    int64_t n = ct_param_numel(ct_gpt_param(g, i)), zeros_before = zeros;
    worst = fmax(worst, gc_fd_check(gpt_loss_double, &pt, P[i], n, G[i], "GPT",
                                    ct_param_name(ct_gpt_param(g, i)), i < 2 ? &zeros : NULL));
    checked += n - (zeros - zeros_before);
  }
  print_message("    GPT V=5 T=4 C=4 L=2 H=2 loss %.6f (double %.6f); %lld param grads vs FD worst "
                "rel %.1e, %lld exactly 0 where unused\n", (double)lv, want, (long long)checked,
                worst, (long long)zeros);
  for (int i = 0; i < np; i++) free(P[i]), free(G[i]);
  free(P);
  free(G);
  ct_plan_free(p);
  ct_morphism_free(loss);
  ct_gpt_free(g);
}

/* ---- 3. structure ------------------------------------------------------------------ */

static void test_structure(void **state) {
  (void)state;
  const int64_t V = 11, BL = 8, L = 2, H = 2, C = 12;
  ct_gpt *g = gpt_make(V, BL, L, H, C, 5);
  const ct_gpt_config *cfg = ct_gpt_get_config(g);
  assert_true(cfg->vocab == V && cfg->block == BL && cfg->layers == L && cfg->heads == H &&
              cfg->width == C);

  /* the loss: TOKENS[B,T] (x) TOKENS[B,T] -> LOSS */
  ct_morphism *loss = NULL, *logits = NULL, *m = NULL;
  CT_ASSERT_OK(ct_gpt_loss(&loss, g, 3, BL));
  ct_object tk, lg;
  CT_ASSERT_OK(ct_object_token_seq(&tk, 3, BL));
  assert_int_equal(ct_morphism_dom_count(loss), 2);
  assert_true(ct_object_equal(ct_morphism_dom(loss, 0), &tk));
  assert_true(ct_object_equal(ct_morphism_dom(loss, 1), &tk));
  assert_int_equal(ct_morphism_cod_count(loss), 1);
  assert_int_equal(ct_morphism_cod(loss, 0)->role, CT_ROLE_LOSS);
  assert_int_equal(ct_morphism_cod(loss, 0)->rank, 0);
  CT_ASSERT_OK(ct_gpt_logits(&logits, g, 3, 5));
  int64_t ld[3] = {3, 5, V};
  CT_ASSERT_OK(ct_object_make(&lg, CT_F32, CT_ROLE_LOGITS, 3, ld));
  assert_int_equal(ct_morphism_dom_count(logits), 1);
  assert_int_equal(ct_morphism_cod_count(logits), 1);
  assert_true(ct_object_equal(ct_morphism_cod(logits, 0), &lg));
  ct_morphism_free(logits);
  logits = NULL;

  /* 1 <= T <= block, B >= 1 */
  CT_ASSERT_STATUS(ct_gpt_logits(&m, g, 2, BL + 1), CT_ERR_SHAPE);
  CT_ASSERT_MESSAGE_HAS("ct_gpt_logits");
  CT_ASSERT_MESSAGE_HAS("block");
  CT_ASSERT_STATUS(ct_gpt_logits(&m, g, 2, 0), CT_ERR_SHAPE);
  CT_ASSERT_STATUS(ct_gpt_logits(&m, g, 0, 4), CT_ERR_SHAPE);
  CT_ASSERT_STATUS(ct_gpt_loss(&m, g, 2, BL + 1), CT_ERR_SHAPE);
  assert_null(m);

  /* the documented parameter list */
  static const char *blk[16] = {"ln1.gain", "ln1.bias", "attn.wq", "attn.bq", "attn.wk",
                                "attn.bk",  "attn.wv",  "attn.bv", "attn.wo", "attn.bo",
                                "ln2.gain", "ln2.bias", "mlp.w1",  "mlp.b1",  "mlp.w2",
                                "mlp.b2"};
  static const int64_t blk_shape[16][2] = {{1, 0}, {1, 0}, {1, 1}, {1, 0}, {1, 1}, {1, 0},
                                           {1, 1}, {1, 0}, {1, 1}, {1, 0}, {1, 0}, {1, 0},
                                           {1, 4}, {4, 0}, {4, 1}, {1, 0}}; /* in units of C */
  int np = 2 + 16 * (int)L + 3;
  assert_int_equal(ct_gpt_param_count(g), np);
  assert_null(ct_gpt_param(g, np));
  assert_null(ct_gpt_param(g, -1));
  assert_null(ct_gpt_find_param(g, "h9.attn.wq"));
  int64_t total = 0;
  for (int i = 0; i < np; i++) {
    char name[64];
    int64_t r, c; /* c 0: a vector of r */
    if (i == 0) snprintf(name, sizeof name, "wte"), r = V, c = C;
    else if (i == 1) snprintf(name, sizeof name, "wpe"), r = BL, c = C;
    else if (i == np - 3) snprintf(name, sizeof name, "lnf.gain"), r = C, c = 0;
    else if (i == np - 2) snprintf(name, sizeof name, "lnf.bias"), r = C, c = 0;
    else if (i == np - 1) snprintf(name, sizeof name, "head.w"), r = C, c = V;
    else {
      int l = (i - 2) / 16, k = (i - 2) % 16;
      snprintf(name, sizeof name, "h%d.%s", l, blk[k]);
      r = blk_shape[k][0] * C;
      c = blk_shape[k][1] * C;
    }
    ct_param *p = ct_gpt_param(g, i);
    assert_non_null(p);
    if (strcmp(ct_param_name(p), name) != 0)
      fail_msg("parameter %d is '%s', documented '%s'", i, ct_param_name(p), name);
    assert_ptr_equal(ct_gpt_find_param(g, name), p);
    const ct_object *o = ct_param_object(p);
    assert_int_equal(o->role, CT_ROLE_PARAM);
    assert_int_equal(o->rank, c ? 2 : 1);
    if (o->dims[0] != r || (c && o->dims[1] != c))
      fail_msg("parameter %s has shape [%lld,%lld], documented [%lld,%lld]", name,
               (long long)o->dims[0], (long long)o->dims[1], (long long)r, (long long)c);
    total += ct_param_numel(p);

    /* initialisation: gains 1, biases 0, matrices normal(0, 0.02 or 0.02/sqrt(2L)) */
    int64_t n = ct_param_numel(p);
    float *v = malloc(n * sizeof *v);
    CT_ASSERT_OK(ct_param_get(p, v, n));
    double sum = 0.0, sq = 0.0;
    for (int64_t e = 0; e < n; e++) sum += v[e], sq += (double)v[e] * v[e];
    if (c == 0) {
      float want = strstr(name, "gain") ? 1.0f : 0.0f;
      for (int64_t e = 0; e < n; e++)
        if (v[e] != want) fail_msg("%s[%lld] = %g, initially %g", name, (long long)e, (double)v[e], (double)want);
    } else {
      double std = sqrt(sq / n), want = strstr(name, "attn.wo") || strstr(name, "mlp.w2")
                                            ? 0.02 / sqrt(2.0 * L) : 0.02;
      if (!(fabs(std - want) <= 0.25 * want) || !(fabs(sum / n) <= 4 * want / sqrt((double)n)))
        fail_msg("%s: sample std %.4g and mean %.2g, initialised normal(0, %.4g)", name, std,
                 sum / n, want);
    }
    free(v);
  }
  int64_t want_total = V * C + BL * C + L * (12 * C * C + 13 * C) + 2 * C + C * V;
  assert_int_equal(ct_gpt_numel(g), total);
  assert_int_equal(total, want_total);

  /* deterministic in the seed */
  ct_gpt *same = gpt_make(V, BL, L, H, C, 5), *other = gpt_make(V, BL, L, H, C, 6);
  float a[12 * 48], b[12 * 48];
  for (int i = 0; i < np; i++) {
    int64_t n = ct_param_numel(ct_gpt_param(g, i));
    if (n > 12 * 48) continue;
    CT_ASSERT_OK(ct_param_get(ct_gpt_param(g, i), a, n));
    CT_ASSERT_OK(ct_param_get(ct_gpt_param(same, i), b, n));
    assert_memory_equal(a, b, n * sizeof(float));
  }
  CT_ASSERT_OK(ct_param_get(ct_gpt_param(g, 0), a, V * C));
  CT_ASSERT_OK(ct_param_get(ct_gpt_param(other, 0), b, V * C));
  assert_true(memcmp(a, b, V * C * sizeof(float)) != 0);

  /* bad configs */
  ct_gpt *bad = NULL;
  ct_gpt_config c1 = {V, BL, L, 5, C}, c2 = {V, BL, 0, H, C}, c3 = {0, BL, L, H, C};
  CT_ASSERT_STATUS(ct_gpt_new(&bad, &c1, 1), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("heads");
  CT_ASSERT_STATUS(ct_gpt_new(&bad, &c2, 1), CT_ERR_INVALID_ARG);
  CT_ASSERT_STATUS(ct_gpt_new(&bad, &c3, 1), CT_ERR_INVALID_ARG);
  assert_null(bad);

  /* the loss at initialisation is close to ln(vocab), and it is the mean
   * cross-entropy of the logits morphism's output */
  const int64_t Bq = 3, n = Bq * BL;
  int32_t in[3 * 8], tg[3 * 8];
  ct_rng rng = {7};
  for (int64_t i = 0; i < n; i++) in[i] = ct_rng_int(&rng, (int32_t)V), tg[i] = ct_rng_int(&rng, (int32_t)V);
  ct_plan *pl = NULL;
  CT_ASSERT_OK(ct_compile(&pl, loss, cpu, CT_PLAN_FORWARD));
  CT_ASSERT_OK(ct_plan_set_input(pl, 0, in, n));
  CT_ASSERT_OK(ct_plan_set_input(pl, 1, tg, n));
  CT_ASSERT_OK(ct_plan_forward(pl));
  float lv;
  CT_ASSERT_OK(ct_plan_get_output(pl, 0, &lv, 1));
  ct_plan_free(pl);
  CT_ASSERT_OK(ct_gpt_logits(&logits, g, Bq, BL));
  CT_ASSERT_OK(ct_compile(&pl, logits, cpu, CT_PLAN_FORWARD));
  float *lgv = malloc(n * V * sizeof *lgv);
  double *lgd = malloc(n * V * sizeof *lgd), xent = 0.0;
  logits_run(pl, in, n, lgv, n * V);
  for (int64_t e = 0; e < n * V; e++) lgd[e] = lgv[e];
  for (int64_t r = 0; r < n; r++) xent += nll_logits_double(V, &lgd[r * V], tg[r]);
  xent /= (double)n;
  print_message("    initial loss %.5f, ln(%lld) = %.5f, cross-entropy of the logits %.5f\n",
                (double)lv, (long long)V, log((double)V), xent);
  assert_true(fabs(lv - log((double)V)) < 0.05);
  assert_true(fabs(lv - xent) <= 1e-5 * xent);
  free(lgv);
  free(lgd);
  ct_plan_free(pl);
  ct_morphism_free(logits);
  ct_morphism_free(loss);
  ct_gpt_free(same);
  ct_gpt_free(other);
  ct_gpt_free(g);
}

/* ---- 4. the optimizer step --------------------------------------------------------- */

/* cpu_ref's table with the optimizer entries counted (cpu_ref has no context,
 * so a table of its own needs no opening). */
static struct {
  int sumsq, hyper, update;
  int64_t sumsq_n, hyper_n, update_n, update_decay;
} launches;

static ct_status counting_sumsq(void *ctx, const void *x, int64_t n, void *sumsq, int index) {
  launches.sumsq++;
  launches.sumsq_n = n;
  return ct__cpu_backend.sumsq(ctx, x, n, sumsq, index);
}

static ct_status counting_hyper(void *ctx, void *hyper, const void *sumsq, int n) {
  launches.hyper++;
  launches.hyper_n = n;
  return ct__cpu_backend.hyper_step(ctx, hyper, sumsq, n);
}

static ct_status counting_adamw(void *ctx, const void *hyper, void *param, const void *grad,
                                void *state, int64_t n, int64_t n_decay) {
  launches.update++;
  launches.update_n = n;
  launches.update_decay = n_decay;
  return ct__cpu_backend.update[CT_OPT_ADAMW](ctx, hyper, param, grad, state, n, n_decay);
}

/* A GPT whose parameters alternate between ranks 2 and 1 in plan order: one
 * sumsq over every gradient, one step kernel, one AdamW update over every
 * parameter per step, with graphs off. The first step from zero moments is
 * checked per parameter against AdamW on the host: m = (1 - b1) g s and
 * v = (1 - b2) (g s)^2 (read back with ct_trainer_get_state), p decayed only
 * at rank >= 2, and the clipping scale s from the global norm of all gradients. */
static void test_step_launches(void **state) {
  (void)state;
  const int64_t V = 13, T = 6, B = 2, C = 8;
  ct_backend counting = ct__cpu_backend;
  counting.name = "cpu-counting";
  counting.sumsq = counting_sumsq;
  counting.hyper_step = counting_hyper;
  counting.update[CT_OPT_ADAMW] = counting_adamw;
  ct_gpt *g = gpt_make(V, T, 2, 2, C, 77);
  gpt_randomize(g, 5);
  ct_morphism *loss = NULL;
  CT_ASSERT_OK(ct_gpt_loss(&loss, g, B, T));
  ct_optimizer o;
  CT_ASSERT_OK(ct_optimizer_adamw(&o, 1e-2f));
  o.weight_decay = 0.5f;
  o.clip_norm = 0.1f; /* below the gradient norm: the scale acts */
  ct_trainer *t = NULL;
  CT_ASSERT_OK(ct_trainer_new(&t, loss, &counting, &o));
  int32_t in[2 * 6], tg[2 * 6];
  for (int i = 0; i < B * T; i++) in[i] = (i * 5) % V, tg[i] = (i * 7 + 3) % V;
  CT_ASSERT_OK(ct_trainer_set_input(t, 0, in, B * T));
  CT_ASSERT_OK(ct_trainer_set_input(t, 1, tg, B * T));
  int np = ct_gpt_param_count(g);
  int64_t numel[2] = {0, 0}; /* rank < 2, rank >= 2 */
  float *p0[64], *grad[64];
  assert_true(np <= 64);
  for (int i = 0; i < np; i++) {
    ct_param *q = ct_gpt_param(g, i);
    int64_t n = ct_param_numel(q);
    numel[ct_param_object(q)->rank >= 2] += n;
    p0[i] = malloc((size_t)n * sizeof(float));
    grad[i] = malloc((size_t)n * sizeof(float));
    CT_ASSERT_OK(ct_param_get(q, p0[i], n));
  }
  memset(&launches, 0, sizeof launches);
  CT_ASSERT_OK(ct_trainer_step(t, 1));
  assert_int_equal(launches.sumsq, 1);
  assert_int_equal(launches.hyper, 1);
  assert_int_equal(launches.update, 1);
  assert_int_equal(launches.hyper_n, 1);
  /* one arena: the decayed tensors, then the rest */
  assert_true(launches.sumsq_n == launches.update_n);
  assert_true(launches.update_decay >= numel[1]);
  assert_true(launches.update_n - launches.update_decay >= numel[0]);
  print_message("    %d parameters (%lld floats decayed, %lld not) in an arena of %lld floats "
                "(decay on [0, %lld)): 1 sumsq, 1 step kernel, 1 update\n", np,
                (long long)numel[1], (long long)numel[0], (long long)launches.update_n,
                (long long)launches.update_decay);

  ct_plan *plan = ct_trainer_plan(t);
  double sq = 0.0;
  for (int i = 0; i < np; i++) {
    ct_param *q = ct_gpt_param(g, i);
    int64_t n = ct_param_numel(q);
    CT_ASSERT_OK(ct_plan_get_param_grad(plan, q, grad[i], n));
    for (int64_t k = 0; k < n; k++) sq += (double)grad[i][k] * grad[i][k];
  }
  float norm;
  CT_ASSERT_OK(ct_trainer_last_grad_norm(t, &norm));
  assert_true(fabs(norm - sqrt(sq)) <= 1e-6 * sqrt(sq));
  assert_true(sqrt(sq) > o.clip_norm);
  float scale = o.clip_norm / (norm + 1e-6f), lr = o.lr, b1 = o.beta1, b2 = o.beta2;
  float step = lr / (1.0f - b1), root_bc2 = sqrtf(1.0f - b2);
  CT_ASSERT_OK(ct_trainer_store_params(t));
  double worst = 0.0;
  for (int i = 0; i < np; i++) {
    ct_param *q = ct_gpt_param(g, i);
    int64_t n = ct_param_numel(q), size = 0;
    bool decay = ct_param_object(q)->rank >= 2;
    float *p1 = malloc((size_t)n * sizeof(float)), *mv = malloc((size_t)(2 * n) * sizeof(float));
    CT_ASSERT_OK(ct_param_get(q, p1, n));
    CT_ASSERT_OK(ct_trainer_state_size(t, q, &size));
    assert_true(size == 2 * n);
    CT_ASSERT_OK(ct_trainer_get_state(t, q, mv, size));
    for (int64_t k = 0; k < n; k++) {
      float gs = grad[i][k] * scale, m = (1.0f - b1) * gs, v = (1.0f - b2) * gs * gs;
      float keep = decay ? 1.0f - lr * o.weight_decay : 1.0f;
      float want = p0[i][k] * keep - step * m / (sqrtf(v) / root_bc2 + o.eps);
      double e = fabs((double)p1[k] - want) / (fabs(want) + 1e-3);
      if (e > worst) worst = e;
      if (fabsf(mv[k] - m) > 1e-6f * fabsf(m) || fabsf(mv[n + k] - v) > 1e-6f * fabsf(v) ||
          e > 1e-5)
        fail_msg("parameter '%s' (rank %d) element %lld: p %g (want %g), m %g (want %g), v %g "
                 "(want %g)", ct_param_name(q), ct_param_object(q)->rank, (long long)k,
                 (double)p1[k], (double)want, (double)mv[k], (double)m, (double)mv[n + k],
                 (double)v);
    }
    free(p1);
    free(mv);
  }
  print_message("    first step: norm %.6g (host %.6g), every parameter as AdamW on the host "
                "(worst rel %.1e)\n", (double)norm, sqrt(sq), worst);
  memset(&launches, 0, sizeof launches);
  CT_ASSERT_OK(ct_trainer_step(t, 3));
  assert_int_equal(launches.sumsq, 3);
  assert_int_equal(launches.hyper, 3);
  assert_int_equal(launches.update, 3);
  for (int i = 0; i < np; i++) {
    free(p0[i]);
    free(grad[i]);
  }
  ct_trainer_free(t);
  ct_morphism_free(loss);
  ct_gpt_free(g);
}

/* ---- 5. learning on real text ------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Mean loss of plan p (ct_gpt_loss [B,T], forward) over the windows of
 * tok[lo..hi) starting every T positions, B at a time. */
static double heldout_loss(ct_plan *p, const int32_t *tok, int64_t lo, int64_t hi, int64_t B,
                           int64_t T, int *windows) {
  int64_t nw = (hi - lo - 1) / T / B * B;
  int32_t *in = malloc(B * T * sizeof *in), *tg = malloc(B * T * sizeof *tg);
  double sum = 0.0;
  for (int64_t w0 = 0; w0 < nw; w0 += B) {
    for (int64_t b = 0; b < B; b++) {
      int64_t s = lo + (w0 + b) * T;
      memcpy(&in[b * T], &tok[s], T * sizeof *in);
      memcpy(&tg[b * T], &tok[s + 1], T * sizeof *tg);
    }
    CT_ASSERT_OK(ct_plan_set_input(p, 0, in, B * T));
    CT_ASSERT_OK(ct_plan_set_input(p, 1, tg, B * T));
    CT_ASSERT_OK(ct_plan_forward(p));
    float l;
    CT_ASSERT_OK(ct_plan_get_output(p, 0, &l, 1));
    sum += l;
  }
  free(in);
  free(tg);
  *windows = (int)nw;
  return sum / (double)(nw / B);
}

static void test_learns_text(void **state) {
  (void)state;
  const char *path = CTML_TEST_DATA_DIR "/gpl-3.txt";
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  static unsigned char bytes[1 << 16];
  size_t n = fread(bytes, 1, sizeof bytes, f);
  fclose(f);
  assert_true(n > 30000 && n < sizeof bytes);
  /* vocabulary: the distinct bytes of the file */
  int map[256], V = 0;
  for (int c = 0; c < 256; c++) map[c] = -1;
  for (size_t i = 0; i < n; i++)
    if (map[bytes[i]] < 0) map[bytes[i]] = 0;
  for (int c = 0; c < 256; c++)
    if (map[c] == 0) map[c] = V++;
  int32_t *tok = malloc(n * sizeof *tok);
  for (size_t i = 0; i < n; i++) tok[i] = map[bytes[i]];
  int64_t n_train = (int64_t)n * 9 / 10;

  /* unigram baseline: held-out cross-entropy under add-one smoothed training frequencies */
  double count[256] = {0}, unigram = 0.0;
  for (int64_t i = 0; i < n_train; i++) count[tok[i]] += 1.0;
  for (int64_t i = n_train + 1; i < (int64_t)n; i++) /* the positions the windows predict */
    unigram -= log((count[tok[i]] + 1.0) / ((double)n_train + V));
  unigram /= (double)((int64_t)n - n_train - 1);

  const int64_t B = 8, T = 32, C = 32, L = 2, H = 2;
  const int steps = 300;
  ct_gpt *g = gpt_make(V, T, L, H, C, 2024);
  ct_morphism *loss = NULL;
  CT_ASSERT_OK(ct_gpt_loss(&loss, g, B, T));
  ct_plan *eval = NULL;
  CT_ASSERT_OK(ct_compile(&eval, loss, cpu, CT_PLAN_FORWARD));
  int windows = 0;
  double initial = heldout_loss(eval, tok, n_train, (int64_t)n, B, T, &windows);

  ct_optimizer o;
  CT_ASSERT_OK(ct_optimizer_adamw(&o, 1e-2f));
  o.warmup_steps = 20;
  o.total_steps = steps;
  o.min_lr = 1e-3f;
  o.clip_norm = 1.0f;
  ct_trainer *t = NULL;
  CT_ASSERT_OK(ct_trainer_new(&t, loss, cpu, &o));
  int32_t in[8 * 32], tg[8 * 32];
  ct_rng rng = {99};
  double t0 = now_s(), train_loss = 0.0;
  for (int s = 0; s < steps; s++) {
    for (int64_t b = 0; b < B; b++) {
      int64_t st = (int64_t)(ct_rng_next(&rng) % (uint64_t)(n_train - T - 1));
      memcpy(&in[b * T], &tok[st], T * sizeof *in);
      memcpy(&tg[b * T], &tok[st + 1], T * sizeof *tg);
    }
    CT_ASSERT_OK(ct_trainer_set_input(t, 0, in, B * T));
    CT_ASSERT_OK(ct_trainer_set_input(t, 1, tg, B * T));
    CT_ASSERT_OK(ct_trainer_step(t, 1));
    if (s >= steps - 20) {
      float l;
      CT_ASSERT_OK(ct_trainer_eval(t, &l));
      train_loss += l / 20.0;
    }
  }
  double secs = now_s() - t0;
  CT_ASSERT_OK(ct_trainer_store_params(t));
  CT_ASSERT_OK(ct_plan_load_params(eval));
  double final = heldout_loss(eval, tok, n_train, (int64_t)n, B, T, &windows);
  print_message("    GPL-3 %zu bytes, vocab %d, %lld train / %lld held out; GPT V=%d T=%lld C=%lld "
                "L=%lld H=%lld (%lld params)\n", n, V, (long long)n_train,
                (long long)((int64_t)n - n_train), V, (long long)T, (long long)C, (long long)L,
                (long long)H, (long long)ct_gpt_numel(g));
  print_message("    held-out loss (%d windows): unigram %.4f, initial %.4f (ln V = %.4f), after %d "
                "AdamW steps %.4f (train %.4f); %.1f s training\n", windows, unigram, initial,
                log((double)V), steps, final, train_loss, secs);
  assert_true(fabs(initial - log((double)V)) < 0.1);
  if (!(final <= unigram - 0.3))
    fail_msg("held-out loss %.4f is not 0.3 nats below the unigram baseline %.4f", final, unigram);
  ct_trainer_free(t);
  ct_plan_free(eval);
  ct_morphism_free(loss);
  ct_gpt_free(g);
  free(tok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_causality),
      cmocka_unit_test(test_one_head_is_single_head),
      cmocka_unit_test(test_multi_head_vs_double),
      cmocka_unit_test(test_attention_errors),
      cmocka_unit_test(test_structure),
      cmocka_unit_test(test_gpt_gradcheck),
      cmocka_unit_test(test_step_launches),
      cmocka_unit_test(test_learns_text),
  };
  return CT_RUN_TESTS("gpt", tests, setup, NULL);
}
