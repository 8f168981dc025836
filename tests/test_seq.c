/* SPDX-License-Identifier: MIT */
/* The sequence generators and the optimizer, on the CPU reference.
 *
 * Gradients: the driver of gradcheck.h (outputs against an independent
 * double forward, every f32 input cotangent and parameter gradient against
 * central differences of it, exact zeros where L does not move at all: masked
 * entries, unused table rows; two identical runs bit for bit). Every case
 * runs at SQ_SEEDS random points and at odd shapes.
 *
 * Laws: masked scores are exactly 0 and their cotangent reaches nothing;
 * causal_softmax rows are distributions over j <= i. Constructor errors name
 * the function and the offending object. Optimizer: AdamW against a hand
 * computation in double, the schedule, clipping, set_optimizer, validation. */
#define GC_NAME_WIDTH 44
#define GC_COUNT_WIDTH 5
#include "gradcheck.h"

#define SQ_SEEDS 3 /* random points per case */

/* Shapes: B batch, H heads, T time, C channels, D head width, M linear outputs. */
struct gc_dims {
  int64_t B, H, T, C, D, M;
};

/* Case c at SQ_SEEDS random points: seeds 1000 seed + 0, 1, ... */
static void sq_gradcheck(const gc_case *c, uint64_t seed) {
  gc_case at = *c;
  at.seed = 1000 * seed;
  at.points = SQ_SEEDS;
  gradcheck(&at);
}

/* ---- helpers ------------------------------------------------------------------ */

static ct_object seq_obj(int64_t B, int64_t T, int64_t C) {
  ct_object o;
  CT_ASSERT_OK(ct_object_seq(&o, B, T, C));
  return o;
}

static ct_object obj4(ct_role role, int64_t a, int64_t b, int64_t c, int64_t d) {
  int64_t dims[4] = {a, b, c, d};
  ct_object o;
  CT_ASSERT_OK(ct_object_make(&o, CT_F32, role, 4, dims));
  return o;
}

static ct_object obj3(ct_role role, int64_t a, int64_t b, int64_t c) {
  int64_t dims[3] = {a, b, c};
  ct_object o;
  CT_ASSERT_OK(ct_object_make(&o, CT_F32, role, 3, dims));
  return o;
}

/* The shapes every generator is checked at: {B, H, T, C}. */
static const int64_t shapes[][4] = {{2, 2, 5, 6}, {1, 1, 1, 1}, {2, 3, 4, 6}, {3, 1, 3, 2}};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

static gc_dims dims_of(int s) {
  gc_dims d = {shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3],
               shapes[s][3] / shapes[s][1], 0};
  return d;
}

/* Shape s of the row-wise generators: SEQ at shapes[s], or past the last, a
 * HIDDEN [rows, C] matrix (B*T rows of C). Sets *d. */
static ct_object rowwise_obj(int s, int64_t rows, int64_t C, gc_dims *d) {
  ct_object x;
  if (s < N_SHAPES) {
    *d = dims_of(s);
    return seq_obj(d->B, d->T, d->C);
  }
  *d = (gc_dims){rows, 1, 1, C, C, 0};
  CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_HIDDEN, rows, C));
  return x;
}

/* The attention objects at dims d: HEADS values [B,H,T,D] with SCORES and
 * ATTN [B,H,T,T] (heads), or one head: SEQ values [B,T,C] with SCORES and
 * ATTN [B,T,T] (d->H becomes 1, d->D becomes C). */
static void attn_objs(gc_dims *d, int heads, ct_object *hv, ct_object *sc, ct_object *at) {
  if (heads) {
    *hv = obj4(CT_ROLE_HEADS, d->B, d->H, d->T, d->D);
    *sc = obj4(CT_ROLE_SCORES, d->B, d->H, d->T, d->T);
    *at = obj4(CT_ROLE_ATTN, d->B, d->H, d->T, d->T);
  } else {
    d->H = 1;
    d->D = d->C;
    *hv = seq_obj(d->B, d->T, d->D);
    *sc = obj3(CT_ROLE_SCORES, d->B, d->T, d->T);
    *at = obj3(CT_ROLE_ATTN, d->B, d->T, d->T);
  }
}

/* ---- gradient checks, one generator at a time ---------------------------------- */

static void fwd_pos(const gc_dims *d, const gc_vals *v, double *const *y) {
  pos_double(d->B, d->T, d->C, v->x[0], v->p[0], y[0]);
}

static void test_grad_pos_embedding(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES; s++) {
    gc_dims d = dims_of(s);
    ct_object x = seq_obj(d.B, d.T, d.C);
    /* L = T + 2: the last two rows serve no position, their gradient is exactly 0. */
    ct_param *P = new_param("P", 2, d.T + 2, d.C);
    ct_morphism *m = NULL;
    CT_ASSERT_OK(ct_pos_embedding(&m, &x, P));
    char name[96];
    snprintf(name, sizeof name, "pos_embedding SEQ[%lld,%lld,%lld] P[%lld]", (long long)d.B,
             (long long)d.T, (long long)d.C, (long long)d.T + 2);
    gc_case c = {name, m, {P}, {0}, fwd_pos, &d, .span = 1.0f};
    sq_gradcheck(&c, 100 + (uint64_t)s);
    ct_morphism_free(m);
    ct_param_free(P);
  }
}

static void fwd_layernorm(const gc_dims *d, const gc_vals *v, double *const *y) {
  layernorm_double(d->B * d->T, d->C, v->x[0], v->p[0], v->p[1], y[0]);
}

static void test_grad_layernorm(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES + 1; s++) {
    gc_dims d;
    ct_object x = rowwise_obj(s, 3, 5, &d);
    ct_param *g = new_param("gain", 1, d.C, 0), *b = new_param("bias", 1, d.C, 0);
    ct_morphism *m = NULL;
    CT_ASSERT_OK(ct_layernorm(&m, &x, g, b));
    assert_true(ct_object_equal(ct_morphism_cod(m, 0), &x));
    char name[96], bx[64];
    snprintf(name, sizeof name, "layernorm %s", ct_object_str(&x, bx, sizeof bx));
    gc_case c = {name, m, {g, b}, {0}, fwd_layernorm, &d, .span = 1.0f};
    sq_gradcheck(&c, 200 + (uint64_t)s);
    ct_morphism_free(m);
    ct_param_free(g);
    ct_param_free(b);
  }
}

/* s = x + r and y = layernorm(s), in double. */
static void fwd_add_layernorm(const gc_dims *d, const gc_vals *v, double *const *y) {
  int64_t n = d->B * d->T * d->C;
  for (int64_t e = 0; e < n; e++) y[0][e] = v->x[0][e] + v->x[1][e];
  layernorm_double(d->B * d->T, d->C, y[0], v->p[0], v->p[1], y[1]);
}

static void test_grad_add_layernorm(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES + 1; s++) {
    gc_dims d;
    ct_object x = rowwise_obj(s, 3, 5, &d);
    ct_param *g = new_param("gain", 1, d.C, 0), *b = new_param("bias", 1, d.C, 0);
    ct_morphism *m = NULL;
    CT_ASSERT_OK(ct_add_layernorm(&m, &x, g, b));
    assert_int_equal(ct_morphism_dom_count(m), 2);
    assert_int_equal(ct_morphism_cod_count(m), 2);
    for (int k = 0; k < 2; k++) {
      assert_true(ct_object_equal(ct_morphism_dom(m, k), &x));
      assert_true(ct_object_equal(ct_morphism_cod(m, k), &x));
    }
    char name[96], bx[64];
    snprintf(name, sizeof name, "add_layernorm %s", ct_object_str(&x, bx, sizeof bx));
    gc_case c = {name, m, {g, b}, {0}, fwd_add_layernorm, &d, .span = 1.0f};
    sq_gradcheck(&c, 250 + (uint64_t)s);
    ct_morphism_free(m);
    ct_param_free(g);
    ct_param_free(b);
  }
}

/* Outputs, input cotangents and parameter gradients of m on cpu at inputs x, r
 * (each n floats) and output cotangents w0, w1; out holds y0, y1, dx, dr, dg, db. */
static void run_ln_pair(const ct_morphism *m, ct_param *g, ct_param *b, const float *x,
                        const float *r, const float *w0, const float *w1, int64_t n, int64_t C,
                        float *const *out) {
  ct_plan *p = NULL;
  CT_ASSERT_OK(ct_compile(&p, m, cpu, CT_PLAN_REVERSE));
  CT_ASSERT_OK(ct_plan_set_input(p, 0, x, n));
  CT_ASSERT_OK(ct_plan_set_input(p, 1, r, n));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 0, out[0], n));
  CT_ASSERT_OK(ct_plan_get_output(p, 1, out[1], n));
  CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, w0, n));
  CT_ASSERT_OK(ct_plan_set_output_grad(p, 1, w1, n));
  CT_ASSERT_OK(ct_plan_reverse(p));
  CT_ASSERT_OK(ct_plan_get_input_grad(p, 0, out[2], n));
  CT_ASSERT_OK(ct_plan_get_input_grad(p, 1, out[3], n));
  CT_ASSERT_OK(ct_plan_get_param_grad(p, g, out[4], C));
  CT_ASSERT_OK(ct_plan_get_param_grad(p, b, out[5], C));
  ct_plan_free(p);
}

/* add_layernorm is the rewrite of add ; copy ; (id (x) layernorm): the same
 * outputs and parameter gradients bit for bit (the same float add and layer
 * norm), and input cotangents within float rounding (the fused reverse adds ds
 * to layer norm's dx before rounding it, the composite after). */
static void test_add_layernorm_is_composite(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES + 1; s++) {
    gc_dims d;
    ct_object x = rowwise_obj(s, 7, 33, &d);
    int64_t n = ct_object_numel(&x), C = d.C;
    ct_param *g = new_param("gain", 1, C, 0), *b = new_param("bias", 1, C, 0);
    ct_rng rng = {4000 + (uint64_t)s};
    float *buf = malloc((size_t)(4 * n + 2 * C) * sizeof *buf);
    assert_non_null(buf);
    float *xv = buf, *rv = buf + n, *w0 = buf + 2 * n, *w1 = buf + 3 * n;
    ct_rng_fill(&rng, buf, 4 * n, -2.0f, 2.0f);
    ct_rng_fill(&rng, buf + 4 * n, 2 * C, -1.0f, 1.0f);
    CT_ASSERT_OK(ct_param_set(g, buf + 4 * n, C));
    CT_ASSERT_OK(ct_param_set(b, buf + 4 * n + C, C));
    ct_morphism *fused, *add, *cp, *id, *ln, *par, *t1, *comp;
    CT_ASSERT_OK(ct_add_layernorm(&fused, &x, g, b));
    CT_ASSERT_OK(ct_add(&add, &x));
    CT_ASSERT_OK(ct_copy(&cp, &x));
    CT_ASSERT_OK(ct_identity(&id, &x, 1));
    CT_ASSERT_OK(ct_layernorm(&ln, &x, g, b));
    CT_ASSERT_OK(ct_tensor(&par, id, ln));
    CT_ASSERT_OK(ct_then(&t1, add, cp));
    CT_ASSERT_OK(ct_then(&comp, t1, par));
    float *a[6], *c[6];
    for (int k = 0; k < 6; k++) {
      int64_t len = k < 4 ? n : C;
      a[k] = malloc((size_t)len * sizeof(float));
      c[k] = malloc((size_t)len * sizeof(float));
      assert_true(a[k] && c[k]);
    }
    run_ln_pair(fused, g, b, xv, rv, w0, w1, n, C, a);
    run_ln_pair(comp, g, b, xv, rv, w0, w1, n, C, c);
    static const char *const what[6] = {"s", "y", "dx", "dr", "dgain", "dbias"};
    for (int k = 0; k < 6; k++) {
      int64_t len = k < 4 ? n : C;
      for (int64_t e = 0; e < len; e++) {
        double u = a[k][e], v = c[k][e];
        bool ok = k == 2 || k == 3 ? fabs(u - v) <= 1e-6 + 1e-6 * fabs(v) : u == v;
        if (!ok)
          fail_msg("shape %d: add_layernorm %s[%lld] = %.9g, add ; copy ; (id (x) layernorm) "
                   "%.9g", s, what[k], (long long)e, u, v);
      }
    }
    for (int k = 0; k < 6; k++) {
      free(a[k]);
      free(c[k]);
    }
    ct_morphism *ms[] = {fused, add, cp, id, ln, par, t1, comp};
    for (int k = 0; k < 8; k++) ct_morphism_free(ms[k]);
    free(buf);
    ct_param_free(g);
    ct_param_free(b);
  }
}

static void fwd_gelu(const gc_dims *d, const gc_vals *v, double *const *y) {
  for (int64_t e = 0; e < d->B * d->T * d->C; e++) y[0][e] = gelu_double(v->x[0][e]);
}

static void test_grad_gelu(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES + 1; s++) {
    gc_dims d;
    ct_object x = rowwise_obj(s, 4, 3, &d);
    ct_morphism *m = NULL;
    CT_ASSERT_OK(ct_gelu(&m, &x));
    assert_true(ct_object_equal(ct_morphism_cod(m, 0), &x));
    char name[96], bx[64];
    snprintf(name, sizeof name, "gelu %s, x in [-4,4]", ct_object_str(&x, bx, sizeof bx));
    gc_case c = {name, m, {NULL}, {0}, fwd_gelu, &d, .span = 4.0f};
    sq_gradcheck(&c, 300 + (uint64_t)s);
    ct_morphism_free(m);
  }
}

static void fwd_linear_gelu(const gc_dims *d, const gc_vals *v, double *const *y) {
  int64_t rows = d->B * d->T;
  linear_double(rows, d->C, d->M, v->x[0], v->p[0], v->p[1], y[0]);
  for (int64_t e = 0; e < rows * d->M; e++) y[0][e] = gelu_double(y[0][e]);
}

/* linear_gelu at every row-wise shape, 4 outputs, with and without bias, output role
 * the input's or LOGITS; x in [-2,2] so that the pre-activations reach both tails. */
static void test_grad_linear_gelu(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES + 1; s++)
    for (int bias = 0; bias < 2; bias++) {
      gc_dims d;
      ct_object x = rowwise_obj(s, 4, 3, &d);
      d.M = 4;
      ct_param *W = new_param("W", 2, d.C, d.M), *b = bias ? new_param("b", 1, d.M, 0) : NULL;
      ct_role role = s % 2 ? CT_ROLE_LOGITS : x.role;
      ct_morphism *m = NULL;
      CT_ASSERT_OK(ct_linear_gelu(&m, &x, role, W, b));
      char name[96], bx[64];
      snprintf(name, sizeof name, "linear_gelu %s%s", ct_object_str(&x, bx, sizeof bx),
               bias ? " +b" : "");
      gc_case c = {name, m, {W, b}, {0}, fwd_linear_gelu, &d, .span = 2.0f};
      sq_gradcheck(&c, 400 + 2 * (uint64_t)s + (uint64_t)bias);
      ct_morphism_free(m);
      ct_param_free(W);
      ct_param_free(b);
    }
}

/* q, k, v = x Wj + bj; the parameters are (Wq, bq, Wk, bk, Wv, bv) or (Wq, Wk, Wv). */
static void fwd_qkv_with(const gc_dims *d, const gc_vals *v, double *const *y, bool bias) {
  int s = bias ? 2 : 1;
  for (int j = 0; j < 3; j++)
    linear_double(d->B * d->T, d->C, d->M, v->x[0], v->p[s * j], bias ? v->p[s * j + 1] : NULL,
                  y[j]);
}
static void fwd_qkv_b(const gc_dims *d, const gc_vals *v, double *const *y) {
  fwd_qkv_with(d, v, y, true);
}
static void fwd_qkv(const gc_dims *d, const gc_vals *v, double *const *y) {
  fwd_qkv_with(d, v, y, false);
}

/* qkv at every row-wise shape, 4 outputs each, with and without biases, output role
 * the input's or LOGITS. */
static void test_grad_qkv(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES + 1; s++)
    for (int bias = 0; bias < 2; bias++) {
      gc_dims d;
      ct_object x = rowwise_obj(s, 4, 3, &d);
      d.M = 4;
      ct_param *W[3], *b[3] = {NULL, NULL, NULL};
      static const char *const wn[3] = {"Wq", "Wk", "Wv"}, *const bn[3] = {"bq", "bk", "bv"};
      for (int j = 0; j < 3; j++) {
        W[j] = new_param(wn[j], 2, d.C, d.M);
        if (bias) b[j] = new_param(bn[j], 1, d.M, 0);
      }
      ct_role role = s % 2 ? CT_ROLE_LOGITS : x.role;
      ct_morphism *m = NULL;
      CT_ASSERT_OK(ct_qkv(&m, &x, role, W[0], b[0], W[1], b[1], W[2], b[2]));
      char name[96], bx[64];
      snprintf(name, sizeof name, "qkv %s%s", ct_object_str(&x, bx, sizeof bx), bias ? " +b" : "");
      gc_case c = {name, m, {0}, {0}, bias ? fwd_qkv_b : fwd_qkv, &d, .span = 1.0f};
      for (int j = 0, k = 0; j < 3; j++) {
        c.params[k++] = W[j];
        if (bias) c.params[k++] = b[j];
      }
      sq_gradcheck(&c, 450 + 2 * (uint64_t)s + (uint64_t)bias);
      ct_morphism_free(m);
      for (int j = 0; j < 3; j++) {
        ct_param_free(W[j]);
        ct_param_free(b[j]);
      }
    }
}

/* |a - b| <= 1e-5 + 1e-5 |b| elementwise (the fused and composed float results
 * differ only in the rounding of u). */
static void expect_close(const float *a, const float *b, int64_t n, const char *what) {
  for (int64_t i = 0; i < n; i++)
    if (!(fabsf(a[i] - b[i]) <= 1e-5f + 1e-5f * fabsf(b[i])))
      fail_msg("%s[%lld]: linear_gelu %.9g, linear ; gelu %.9g", what, (long long)i, a[i], b[i]);
}

/* linear_gelu equals linear ; gelu on the CPU reference: outputs, input cotangent and
 * parameter gradients. */
static void test_linear_gelu_is_linear_then_gelu(void **state) {
  (void)state;
  const int64_t sizes[][3] = {{2, 5, 6}, {1, 1, 1}, {3, 7, 33}}; /* B, T, C; M = C + 3 */
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    for (int bias = 0; bias < 2; bias++) {
      int64_t B = sizes[s][0], T = sizes[s][1], C = sizes[s][2], M = C + 3, n = B * T * C,
              ny = B * T * M;
      ct_object x = seq_obj(B, T, C), h = seq_obj(B, T, M);
      ct_param *W = new_param("W", 2, C, M), *b = bias ? new_param("b", 1, M, 0) : NULL;
      ct_rng rng = {77 + s};
      float *buf = malloc((size_t)(2 * n + 3 * ny + C * M + M) * sizeof *buf);
      float *xv = buf, *dy = xv + n, *wv = dy + ny, *bv = wv + C * M;
      ct_rng_fill(&rng, xv, n, -2.0f, 2.0f);
      ct_rng_fill(&rng, dy, ny, -1.0f, 1.0f);
      ct_rng_fill(&rng, wv, C * M, -0.5f, 0.5f);
      ct_rng_fill(&rng, bv, M, -0.5f, 0.5f);
      CT_ASSERT_OK(ct_param_set(W, wv, C * M));
      if (b) CT_ASSERT_OK(ct_param_set(b, bv, M));
      ct_morphism *fused = NULL, *lin = NULL, *ge = NULL, *comp = NULL;
      CT_ASSERT_OK(ct_linear_gelu(&fused, &x, CT_ROLE_SEQ, W, b));
      CT_ASSERT_OK(ct_linear(&lin, &x, CT_ROLE_SEQ, W, b));
      CT_ASSERT_OK(ct_gelu(&ge, &h));
      CT_ASSERT_OK(ct_then(&comp, lin, ge));
      assert_true(ct_object_equal(ct_morphism_cod(fused, 0), ct_morphism_cod(comp, 0)));
      /* per morphism: y, dx, dW, db */
      float *got[2][4];
      for (int k = 0; k < 2; k++) {
        got[k][0] = malloc((size_t)ny * sizeof(float));
        got[k][1] = malloc((size_t)n * sizeof(float));
        got[k][2] = malloc((size_t)(C * M) * sizeof(float));
        got[k][3] = malloc((size_t)M * sizeof(float));
        ct_plan *p = NULL;
        CT_ASSERT_OK(ct_compile(&p, k ? comp : fused, cpu, CT_PLAN_REVERSE | CT_PLAN_GUARD));
        CT_ASSERT_OK(ct_plan_set_input(p, 0, xv, n));
        CT_ASSERT_OK(ct_plan_forward(p));
        CT_ASSERT_OK(ct_plan_get_output(p, 0, got[k][0], ny));
        CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, dy, ny));
        CT_ASSERT_OK(ct_plan_reverse(p));
        CT_ASSERT_OK(ct_plan_get_input_grad(p, 0, got[k][1], n));
        CT_ASSERT_OK(ct_plan_get_param_grad(p, W, got[k][2], C * M));
        if (b) CT_ASSERT_OK(ct_plan_get_param_grad(p, b, got[k][3], M));
        CT_ASSERT_OK(ct_plan_check_guards(p));
        ct_plan_free(p);
      }
      expect_close(got[0][0], got[1][0], ny, "y");
      expect_close(got[0][1], got[1][1], n, "dx");
      expect_close(got[0][2], got[1][2], C * M, "dW");
      if (b) expect_close(got[0][3], got[1][3], M, "db");
      for (int k = 0; k < 2; k++)
        for (int j = 0; j < 4; j++) free(got[k][j]);
      free(buf);
      ct_morphism_free(fused);
      ct_morphism_free(lin);
      ct_morphism_free(ge);
      ct_morphism_free(comp);
      ct_param_free(W);
      ct_param_free(b);
    }
}

/* qkv equals copy ; (copy (x) id) ; (linear (x) (linear (x) linear)) on the CPU
 * reference: the three outputs, the input cotangent and the six gradients. */
static void test_qkv_is_three_linears(void **state) {
  (void)state;
  const int64_t sizes[][3] = {{2, 5, 6}, {1, 1, 1}, {3, 7, 33}}; /* B, T, C; M = C + 3 */
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    for (int bias = 0; bias < 2; bias++) {
      int64_t B = sizes[s][0], T = sizes[s][1], C = sizes[s][2], M = C + 3, n = B * T * C,
              ny = B * T * M;
      ct_object x = seq_obj(B, T, C);
      ct_param *P[6] = {0}; /* Wq, bq, Wk, bk, Wv, bv */
      ct_rng rng = {91 + s};
      float *xv = malloc((size_t)n * sizeof *xv), *dy = malloc((size_t)(3 * ny) * sizeof *dy),
            *pv = malloc((size_t)(C * M) * sizeof *pv);
      ct_rng_fill(&rng, xv, n, -1.0f, 1.0f);
      ct_rng_fill(&rng, dy, 3 * ny, -1.0f, 1.0f);
      for (int j = 0; j < 6; j++) {
        if (j % 2 && !bias) continue;
        P[j] = new_param(j % 2 ? "b" : "W", j % 2 ? 1 : 2, j % 2 ? M : C, j % 2 ? 0 : M);
        int64_t c = ct_param_numel(P[j]);
        ct_rng_fill(&rng, pv, c, -0.5f, 0.5f);
        CT_ASSERT_OK(ct_param_set(P[j], pv, c));
      }
      ct_morphism *fused = NULL, *c1 = NULL, *c2 = NULL, *id = NULL, *cc = NULL, *tri = NULL,
                  *l[3] = {0}, *kv = NULL, *par = NULL, *comp = NULL;
      CT_ASSERT_OK(ct_qkv(&fused, &x, CT_ROLE_SEQ, P[0], P[1], P[2], P[3], P[4], P[5]));
      CT_ASSERT_OK(ct_copy(&c1, &x));
      CT_ASSERT_OK(ct_copy(&c2, &x));
      CT_ASSERT_OK(ct_identity(&id, &x, 1));
      CT_ASSERT_OK(ct_tensor(&cc, c2, id));
      CT_ASSERT_OK(ct_then(&tri, c1, cc));
      for (int j = 0; j < 3; j++)
        CT_ASSERT_OK(ct_linear(&l[j], &x, CT_ROLE_SEQ, P[2 * j], P[2 * j + 1]));
      CT_ASSERT_OK(ct_tensor(&kv, l[1], l[2]));
      CT_ASSERT_OK(ct_tensor(&par, l[0], kv));
      CT_ASSERT_OK(ct_then(&comp, tri, par));
      assert_int_equal(ct_morphism_cod_count(fused), 3);
      /* per morphism: q, k, v, dx, then the six gradients */
      float *got[2][10] = {{0}};
      for (int k = 0; k < 2; k++) {
        ct_plan *p = NULL;
        CT_ASSERT_OK(ct_compile(&p, k ? comp : fused, cpu,
                                CT_PLAN_REVERSE | CT_PLAN_GUARD | CT_PLAN_NO_REWRITE));
        CT_ASSERT_OK(ct_plan_set_input(p, 0, xv, n));
        CT_ASSERT_OK(ct_plan_forward(p));
        for (int j = 0; j < 3; j++) {
          got[k][j] = malloc((size_t)ny * sizeof(float));
          CT_ASSERT_OK(ct_plan_get_output(p, j, got[k][j], ny));
          CT_ASSERT_OK(ct_plan_set_output_grad(p, j, dy + j * ny, ny));
        }
        CT_ASSERT_OK(ct_plan_reverse(p));
        got[k][3] = malloc((size_t)n * sizeof(float));
        CT_ASSERT_OK(ct_plan_get_input_grad(p, 0, got[k][3], n));
        for (int j = 0; j < 6; j++)
          if (P[j]) {
            got[k][4 + j] = malloc((size_t)ct_param_numel(P[j]) * sizeof(float));
            CT_ASSERT_OK(ct_plan_get_param_grad(p, P[j], got[k][4 + j], ct_param_numel(P[j])));
          }
        CT_ASSERT_OK(ct_plan_check_guards(p));
        ct_plan_free(p);
      }
      static const char *const what[10] = {"q", "k", "v", "dx", "dWq", "dbq", "dWk", "dbk",
                                           "dWv", "dbv"};
      for (int j = 0; j < 10; j++) {
        int64_t c = j < 3 ? ny : j == 3 ? n : P[j - 4] ? ct_param_numel(P[j - 4]) : 0;
        expect_close(got[0][j], got[1][j], c, what[j]);
      }
      for (int k = 0; k < 2; k++)
        for (int j = 0; j < 10; j++) free(got[k][j]);
      ct_morphism *tmp[] = {fused, c1, c2, id, cc, tri, l[0], l[1], l[2], kv, par, comp};
      for (size_t j = 0; j < sizeof tmp / sizeof tmp[0]; j++) ct_morphism_free(tmp[j]);
      for (int j = 0; j < 6; j++) ct_param_free(P[j]);
      free(xv);
      free(dy);
      free(pv);
    }
}

static void fwd_split(const gc_dims *d, const gc_vals *v, double *const *y) {
  heads_double(d->B, d->H, d->T, d->D, v->x[0], y[0], 1);
}

static void fwd_merge(const gc_dims *d, const gc_vals *v, double *const *y) {
  heads_double(d->B, d->H, d->T, d->D, v->x[0], y[0], 0);
}

static void test_grad_heads(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES; s++) {
    gc_dims d = dims_of(s);
    ct_object x = seq_obj(d.B, d.T, d.C), hv = obj4(CT_ROLE_HEADS, d.B, d.H, d.T, d.D);
    ct_morphism *split = NULL, *merge = NULL;
    CT_ASSERT_OK(ct_head_split(&split, &x, d.H));
    CT_ASSERT_OK(ct_head_merge(&merge, &hv));
    assert_true(ct_object_equal(ct_morphism_cod(split, 0), &hv));
    assert_true(ct_object_equal(ct_morphism_cod(merge, 0), &x));
    char n1[96], n2[96], bx[64], bh[64];
    snprintf(n1, sizeof n1, "head_split %s H=%lld", ct_object_str(&x, bx, sizeof bx),
             (long long)d.H);
    snprintf(n2, sizeof n2, "head_merge %s", ct_object_str(&hv, bh, sizeof bh));
    gc_case c1 = {n1, split, {NULL}, {0}, fwd_split, &d, .span = 1.0f};
    gc_case c2 = {n2, merge, {NULL}, {0}, fwd_merge, &d, .span = 1.0f};
    sq_gradcheck(&c1, 400 + (uint64_t)s);
    sq_gradcheck(&c2, 450 + (uint64_t)s);
    ct_morphism_free(split);
    ct_morphism_free(merge);
  }
}

/* Batch of [T, D] matrices: B*H for the HEADS form (H = 1 for the SEQ form). */
static void fwd_scores(const gc_dims *d, const gc_vals *v, double *const *y) {
  scores_double(d->B * d->H, d->T, d->D, v->x[0], v->x[1], y[0]);
}

static void fwd_causal_softmax(const gc_dims *d, const gc_vals *v, double *const *y) {
  causal_softmax_double(d->B * d->H, d->T, v->x[0], y[0]);
}

static void fwd_apply(const gc_dims *d, const gc_vals *v, double *const *y) {
  apply_double(d->B * d->H, d->T, d->D, v->x[0], v->x[1], y[0]);
}

/* The attention generators at shape s, in HEADS form (heads) or one-head SEQ form. */
static void attention_cases(int s, int heads) {
  gc_dims d = dims_of(s);
  ct_object hv, sc, at;
  attn_objs(&d, heads, &hv, &sc, &at);
  ct_morphism *ms = NULL, *mc = NULL, *ma = NULL;
  CT_ASSERT_OK(ct_attn_scores(&ms, &hv, &hv));
  CT_ASSERT_OK(ct_causal_softmax(&mc, &sc));
  CT_ASSERT_OK(ct_attn_apply(&ma, &at, &hv));
  assert_true(ct_object_equal(ct_morphism_cod(ms, 0), &sc));
  assert_true(ct_object_equal(ct_morphism_cod(mc, 0), &at));
  assert_true(ct_object_equal(ct_morphism_cod(ma, 0), &hv));
  char n1[160], n2[160], n3[160], bh[64], bs[64], ba[64];
  ct_object_str(&hv, bh, sizeof bh);
  ct_object_str(&sc, bs, sizeof bs);
  ct_object_str(&at, ba, sizeof ba);
  snprintf(n1, sizeof n1, "attn_scores %s", bh);
  snprintf(n2, sizeof n2, "causal_softmax %s, x in [-3,3]", bs);
  snprintf(n3, sizeof n3, "attn_apply %s (x) %s", ba, bh);
  /* Scores inputs are random in every entry, masked ones included: the
   * softmax must ignore them (their gradient is exactly 0). */
  gc_case c1 = {n1, ms, {NULL}, {0}, fwd_scores, &d, .span = 1.0f};
  gc_case c2 = {n2, mc, {NULL}, {0}, fwd_causal_softmax, &d, .span = 3.0f};
  gc_case c3 = {n3, ma, {NULL}, {0}, fwd_apply, &d, .span = 1.0f};
  uint64_t seed = 500 + (uint64_t)(10 * s + heads);
  sq_gradcheck(&c1, seed);
  sq_gradcheck(&c2, seed + 100);
  sq_gradcheck(&c3, seed + 200);
  ct_morphism_free(ms);
  ct_morphism_free(mc);
  ct_morphism_free(ma);
}

static void test_grad_attention_heads(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES; s++) attention_cases(s, 1);
}

static void test_grad_attention_one_head(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES; s++) attention_cases(s, 0);
}

static void fwd_causal_attention(const gc_dims *d, const gc_vals *v, double *const *y) {
  causal_attention_double(d->B, d->H, d->T, d->D, v->x[0], v->x[1], v->x[2], y[0]);
}

/* The fused attention at every shape, with its heads and with one head; spans 1 and 3
 * (sharper softmax rows). */
static void test_grad_causal_attention(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES; s++)
    for (int one = 0; one < 2; one++) {
      gc_dims d = dims_of(s);
      if (one) d.H = 1, d.D = d.C;
      ct_object x = seq_obj(d.B, d.T, d.C);
      ct_morphism *m = NULL;
      CT_ASSERT_OK(ct_causal_attention(&m, &x, d.H));
      assert_int_equal(ct_morphism_dom_count(m), 3);
      assert_true(ct_object_equal(ct_morphism_cod(m, 0), &x));
      char name[128], bx[64];
      snprintf(name, sizeof name, "causal_attention %s H=%lld", ct_object_str(&x, bx, sizeof bx),
               (long long)d.H);
      gc_case c = {name, m, {NULL}, {0}, fwd_causal_attention, &d, .span = one ? 3.0f : 1.0f};
      sq_gradcheck(&c, 700 + (uint64_t)(10 * s + one));
      ct_morphism_free(m);
    }
}

static void fwd_linear(const gc_dims *d, const gc_vals *v, double *const *y) {
  linear_double(d->B * d->T, d->C, d->M, v->x[0], v->p[0], v->p[1], y[0]);
}

static void test_grad_linear_seq(void **state) {
  (void)state;
  static const struct {
    int shape;
    int64_t M;
    ct_role role;
    bool bias;
  } cs[] = {{0, 7, CT_ROLE_SEQ, true},   {0, 4, CT_ROLE_LOGITS, false}, {1, 1, CT_ROLE_SEQ, true},
            {1, 3, CT_ROLE_LOGITS, true}, {2, 5, CT_ROLE_SEQ, false},   {3, 2, CT_ROLE_LOGITS, true}};
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
    gc_dims d = dims_of(cs[i].shape);
    d.M = cs[i].M;
    ct_object x = seq_obj(d.B, d.T, d.C);
    ct_param *W = new_param("W", 2, d.C, d.M), *b = cs[i].bias ? new_param("b", 1, d.M, 0) : NULL;
    ct_morphism *m = NULL;
    CT_ASSERT_OK(ct_linear(&m, &x, cs[i].role, W, b));
    const ct_object *y = ct_morphism_cod(m, 0);
    assert_int_equal(y->role, cs[i].role);
    assert_int_equal(y->rank, 3);
    assert_true(y->dims[0] == d.B && y->dims[1] == d.T && y->dims[2] == d.M);
    char name[96], bx[64];
    snprintf(name, sizeof name, "linear %s -> %s[..,%lld]%s", ct_object_str(&x, bx, sizeof bx),
             ct_role_name(cs[i].role), (long long)d.M, cs[i].bias ? " +b" : "");
    gc_case c = {name, m, {W, b}, {0}, fwd_linear, &d, .span = 1.0f};
    sq_gradcheck(&c, 600 + i);
    ct_morphism_free(m);
    ct_param_free(W);
    ct_param_free(b);
  }
}

/* ---- laws of the mask ------------------------------------------------------------ */

/* attn_scores: outputs are exactly 0 for j > i, and the cotangent there
 * changes neither dq nor dk (bit for bit). */
static void masked_scores_case(const ct_object *hv, uint64_t seed) {
  int64_t T = hv->dims[hv->rank - 2], D = hv->dims[hv->rank - 1];
  int64_t nq = ct_object_numel(hv), ns = nq / D * T;
  ct_morphism *m = NULL;
  CT_ASSERT_OK(ct_attn_scores(&m, hv, hv));
  float *q = malloc(nq * sizeof *q), *k = malloc(nq * sizeof *k), *s = malloc(ns * sizeof *s),
        *w1 = malloc(ns * sizeof *w1), *w2 = malloc(ns * sizeof *w2);
  float *g1[2] = {malloc(nq * sizeof(float)), malloc(nq * sizeof(float))},
        *g2[2] = {malloc(nq * sizeof(float)), malloc(nq * sizeof(float))};
  ct_rng rng = {seed};
  ct_rng_fill(&rng, q, nq, -2.0f, 2.0f);
  ct_rng_fill(&rng, k, nq, -2.0f, 2.0f);
  ct_rng_fill(&rng, w1, ns, -1.0f, 1.0f);
  memcpy(w2, w1, ns * sizeof *w2);
  int64_t masked = 0;
  for (int64_t e = 0; e < ns; e++)
    if (e % T > (e / T) % T) { /* j > i */
      w2[e] = ct_rng_uniform(&rng, -1000.0f, 1000.0f);
      w1[e] = 0.0f;
      masked++;
    }
  ct_plan *p = NULL;
  CT_ASSERT_OK(ct_compile(&p, m, cpu, CT_PLAN_REVERSE));
  CT_ASSERT_OK(ct_plan_set_input(p, 0, q, nq));
  CT_ASSERT_OK(ct_plan_set_input(p, 1, k, nq));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 0, s, ns));
  for (int64_t e = 0; e < ns; e++) {
    bool is_masked = e % T > (e / T) % T;
    if (is_masked && s[e] != 0.0f)
      fail_msg("attn_scores: masked entry %lld is %g, not 0", (long long)e, (double)s[e]);
  }
  for (int run = 0; run < 2; run++) {
    float **g = run ? g2 : g1;
    if (run) CT_ASSERT_OK(ct_plan_forward(p)); /* each reverse follows its own forward */
    CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, run ? w2 : w1, ns));
    CT_ASSERT_OK(ct_plan_reverse(p));
    CT_ASSERT_OK(ct_plan_get_input_grad(p, 0, g[0], nq));
    CT_ASSERT_OK(ct_plan_get_input_grad(p, 1, g[1], nq));
  }
  assert_memory_equal(g1[0], g2[0], nq * sizeof(float));
  assert_memory_equal(g1[1], g2[1], nq * sizeof(float));
  char b[64];
  print_message("    attn_scores %-28s %lld masked entries 0; dq, dk blind to their cotangent\n",
                ct_object_str(hv, b, sizeof b), (long long)masked);
  ct_plan_free(p);
  ct_morphism_free(m);
  free(q), free(k), free(s), free(w1), free(w2);
  free(g1[0]), free(g1[1]), free(g2[0]), free(g2[1]);
}

static void test_scores_mask(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES; s++) {
    gc_dims d = dims_of(s);
    ct_object h = obj4(CT_ROLE_HEADS, d.B, d.H, d.T, d.D), q = seq_obj(d.B, d.T, d.C);
    masked_scores_case(&h, 700 + (uint64_t)s);
    masked_scores_case(&q, 750 + (uint64_t)s);
  }
}

/* Rows of y (batch of T x T) are distributions over j <= i, exactly 0 beyond. */
static double check_causal_rows(const float *y, int64_t batch, int64_t T, const char *what) {
  double worst = 0.0;
  for (int64_t r = 0; r < batch * T; r++) {
    int64_t i = r % T;
    double sum = 0.0;
    for (int64_t j = 0; j < T; j++) {
      float a = y[r * T + j];
      if (j > i && a != 0.0f)
        fail_msg("%s: row %lld entry %lld beyond the diagonal is %g, not 0", what, (long long)r,
                 (long long)j, (double)a);
      if (!(a >= 0.0f && a <= 1.0f))
        fail_msg("%s: row %lld entry %lld is %g, outside [0, 1]", what, (long long)r,
                 (long long)j, (double)a);
      sum += a;
    }
    worst = fmax(worst, fabs(sum - 1.0));
  }
  if (!(worst <= 1e-6)) fail_msg("%s: a row sums to 1 %+g", what, worst);
  return worst;
}

/* causal_softmax alone, with extreme scores (masked entries far larger than the
 * rest, so including them in the max or the sum would show), and the composite
 * attn_scores ; causal_softmax: attention weights are distributions. */
static void test_causal_softmax_law(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES; s++) {
    for (int heads = 0; heads < 2; heads++) {
      gc_dims d = dims_of(s);
      ct_object hv, sc, at;
      attn_objs(&d, heads, &hv, &sc, &at);
      int64_t batch = d.B * d.H, n = batch * d.T * d.T, nh = ct_object_numel(&hv);
      ct_morphism *sm = NULL, *scm = NULL;
      CT_ASSERT_OK(ct_causal_softmax(&sm, &sc));
      CT_ASSERT_OK(ct_attn_scores(&scm, &hv, &hv));
      ct_morphism *both = mk_then(scm, sm);
      assert_int_equal(ct_morphism_cod(both, 0)->role, CT_ROLE_ATTN);
      float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *q = malloc(nh * sizeof *q),
            *k = malloc(nh * sizeof *k);
      ct_rng rng = {800 + (uint64_t)(2 * s + heads)};
      ct_rng_fill(&rng, x, n, -30.0f, 30.0f);
      for (int64_t e = 0; e < n; e++)
        if (e % d.T > (e / d.T) % d.T) x[e] = 1e30f;
      ct_plan *p = NULL;
      CT_ASSERT_OK(ct_compile(&p, sm, cpu, CT_PLAN_FORWARD));
      CT_ASSERT_OK(ct_plan_set_input(p, 0, x, n));
      CT_ASSERT_OK(ct_plan_forward(p));
      CT_ASSERT_OK(ct_plan_get_output(p, 0, y, n));
      double w1 = check_causal_rows(y, batch, d.T, "causal_softmax");
      ct_plan_free(p);
      ct_rng_fill(&rng, q, nh, -3.0f, 3.0f);
      ct_rng_fill(&rng, k, nh, -3.0f, 3.0f);
      CT_ASSERT_OK(ct_compile(&p, both, cpu, CT_PLAN_FORWARD));
      CT_ASSERT_OK(ct_plan_set_input(p, 0, q, nh));
      CT_ASSERT_OK(ct_plan_set_input(p, 1, k, nh));
      CT_ASSERT_OK(ct_plan_forward(p));
      CT_ASSERT_OK(ct_plan_get_output(p, 0, y, n));
      double w2 = check_causal_rows(y, batch, d.T, "attn_scores ; causal_softmax");
      char b[64];
      print_message("    %-26s rows are distributions: |sum - 1| <= %.1e (alone), %.1e (composite)\n",
                    ct_object_str(&sc, b, sizeof b), w1, w2);
      ct_plan_free(p);
      ct_morphism_free(sm);
      ct_morphism_free(scm);
      ct_morphism_free(both);
      free(x), free(y), free(q), free(k);
    }
  }
}

/* ---- constructor errors ------------------------------------------------------------ */

/* The call failed with CT_ERR_SHAPE and its message names fn and every needle. */
#define EXPECT_SHAPE_ERROR(call, fn, ...)                                     \
  do {                                                                        \
    ct_morphism *m_ = NULL;                                                   \
    (void)m_;                                                                 \
    CT_ASSERT_STATUS(call, CT_ERR_SHAPE);                                     \
    CT_ASSERT_MESSAGE_HAS(fn);                                                \
    const char *needles_[] = {__VA_ARGS__};                                   \
    for (size_t n_ = 0; n_ < sizeof needles_ / sizeof needles_[0]; n_++)      \
      CT_ASSERT_MESSAGE_HAS(needles_[n_]);                                    \
  } while (0)

static const char *str(const ct_object *o, char *buf) { return ct_object_str(o, buf, 64); }

static void test_constructor_errors(void **state) {
  (void)state;
  char b1[64], b2[64], b3[64];
  ct_morphism *m = NULL;
  ct_object hid, x = seq_obj(2, 5, 6), x4 = seq_obj(2, 4, 6), lg;
  CT_ASSERT_OK(ct_object_matrix(&hid, CT_ROLE_HIDDEN, 6, 4));
  CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, 6, 4));
  ct_object h = obj4(CT_ROLE_HEADS, 2, 2, 5, 3), h4 = obj4(CT_ROLE_HEADS, 2, 2, 4, 3),
            hw = obj4(CT_ROLE_HEADS, 2, 2, 5, 2), q1 = seq_obj(2, 5, 3);
  ct_object sc = obj4(CT_ROLE_SCORES, 2, 2, 5, 5), at = obj4(CT_ROLE_ATTN, 2, 2, 5, 5),
            at1 = obj3(CT_ROLE_ATTN, 2, 5, 5), at3 = obj4(CT_ROLE_ATTN, 2, 3, 5, 5);

  /* head_split / head_merge */
  EXPECT_SHAPE_ERROR(ct_head_split(&m, &hid, 2), "ct_head_split", str(&hid, b1));
  EXPECT_SHAPE_ERROR(ct_head_split(&m, &x, 4), "ct_head_split", str(&x, b1), "4 heads");
  EXPECT_SHAPE_ERROR(ct_head_split(&m, &x, 0), "ct_head_split", str(&x, b1));
  EXPECT_SHAPE_ERROR(ct_head_merge(&m, &x), "ct_head_merge", str(&x, b1));
  EXPECT_SHAPE_ERROR(ct_head_merge(&m, &sc), "ct_head_merge", str(&sc, b1));
  /* causal_attention: SEQ input, heads dividing the channels */
  EXPECT_SHAPE_ERROR(ct_causal_attention(&m, &hid, 2), "ct_causal_attention", str(&hid, b1));
  EXPECT_SHAPE_ERROR(ct_causal_attention(&m, &h, 2), "ct_causal_attention", str(&h, b1));
  EXPECT_SHAPE_ERROR(ct_causal_attention(&m, &x, 4), "ct_causal_attention", str(&x, b1),
                     "4 heads");
  EXPECT_SHAPE_ERROR(ct_causal_attention(&m, &x, 0), "ct_causal_attention", str(&x, b1));
  /* attn_scores: q and k the same HEADS or SEQ object */
  EXPECT_SHAPE_ERROR(ct_attn_scores(&m, &h, &h4), "ct_attn_scores", str(&h, b1), str(&h4, b2));
  EXPECT_SHAPE_ERROR(ct_attn_scores(&m, &h, &hw), "ct_attn_scores", str(&h, b1), str(&hw, b2));
  EXPECT_SHAPE_ERROR(ct_attn_scores(&m, &q1, &h), "ct_attn_scores", str(&q1, b1), str(&h, b2));
  EXPECT_SHAPE_ERROR(ct_attn_scores(&m, &hid, &hid), "ct_attn_scores", str(&hid, b1));
  EXPECT_SHAPE_ERROR(ct_attn_scores(&m, &h, &sc), "ct_attn_scores", str(&sc, b1));
  /* causal_softmax takes SCORES only (not weights, not logits) */
  EXPECT_SHAPE_ERROR(ct_causal_softmax(&m, &at), "ct_causal_softmax", str(&at, b1));
  EXPECT_SHAPE_ERROR(ct_causal_softmax(&m, &lg), "ct_causal_softmax", str(&lg, b1));
  /* attn_apply: ATTN weights fitting the values */
  EXPECT_SHAPE_ERROR(ct_attn_apply(&m, &at, &h4), "ct_attn_apply", str(&at, b1), str(&h4, b2));
  EXPECT_SHAPE_ERROR(ct_attn_apply(&m, &at3, &h), "ct_attn_apply", str(&at3, b1), str(&h, b2));
  EXPECT_SHAPE_ERROR(ct_attn_apply(&m, &at1, &h), "ct_attn_apply", str(&at1, b1), str(&h, b2));
  EXPECT_SHAPE_ERROR(ct_attn_apply(&m, &at, &q1), "ct_attn_apply", str(&at, b1), str(&q1, b2));
  EXPECT_SHAPE_ERROR(ct_attn_apply(&m, &sc, &h), "ct_attn_apply", str(&sc, b1)); /* unnormalised */
  EXPECT_SHAPE_ERROR(ct_attn_apply(&m, &at, &hid), "ct_attn_apply", str(&hid, b1));

  /* pos_embedding: SEQ input, table [L >= T, C] */
  ct_param *short_p = new_param("wpe_short", 2, 4, 6), *wide_p = new_param("wpe_wide", 2, 8, 5),
           *vec_p = new_param("wpe_vec", 1, 6, 0), *ok_p = new_param("wpe", 2, 5, 6);
  char bp[64];
  EXPECT_SHAPE_ERROR(ct_pos_embedding(&m, &x, short_p), "ct_pos_embedding", "wpe_short",
                     str(&x, b1), str(ct_param_object(short_p), bp));
  EXPECT_SHAPE_ERROR(ct_pos_embedding(&m, &x, wide_p), "ct_pos_embedding", "wpe_wide",
                     str(&x, b1), str(ct_param_object(wide_p), bp));
  EXPECT_SHAPE_ERROR(ct_pos_embedding(&m, &x, vec_p), "ct_pos_embedding", "wpe_vec");
  EXPECT_SHAPE_ERROR(ct_pos_embedding(&m, &hid, ok_p), "ct_pos_embedding", str(&hid, b1));
  CT_ASSERT_OK(ct_pos_embedding(&m, &x4, ok_p)); /* L = 5 > T = 4 is fine */
  ct_morphism_free(m);
  m = NULL;

  /* layernorm: gain and bias [C] over a HIDDEN or SEQ input */
  ct_param *g5 = new_param("ln.gain5", 1, 5, 0), *g6 = new_param("ln.gain", 1, 6, 0),
           *b7 = new_param("ln.bias7", 1, 7, 0), *b6 = new_param("ln.bias", 1, 6, 0),
           *g66 = new_param("ln.gain66", 2, 6, 6);
  EXPECT_SHAPE_ERROR(ct_layernorm(&m, &x, g5, b6), "ct_layernorm", "ln.gain5", str(&x, b1));
  EXPECT_SHAPE_ERROR(ct_layernorm(&m, &x, g6, b7), "ct_layernorm", "ln.bias7", str(&x, b1));
  EXPECT_SHAPE_ERROR(ct_layernorm(&m, &x, g66, b6), "ct_layernorm", "ln.gain66");
  EXPECT_SHAPE_ERROR(ct_layernorm(&m, &lg, g6, b6), "ct_layernorm", str(&lg, b1));
  EXPECT_SHAPE_ERROR(ct_layernorm(&m, &h, g6, b6), "ct_layernorm", str(&h, b1));
  /* add_layernorm: as layernorm, x and r the same HIDDEN or SEQ object */
  EXPECT_SHAPE_ERROR(ct_add_layernorm(&m, &x, g5, b6), "ct_add_layernorm", "ln.gain5",
                     str(&x, b1));
  EXPECT_SHAPE_ERROR(ct_add_layernorm(&m, &x, g6, b7), "ct_add_layernorm", "ln.bias7",
                     str(&x, b1));
  EXPECT_SHAPE_ERROR(ct_add_layernorm(&m, &x, g66, b6), "ct_add_layernorm", "ln.gain66");
  EXPECT_SHAPE_ERROR(ct_add_layernorm(&m, &x, g6, g66), "ct_add_layernorm", "ln.gain66");
  EXPECT_SHAPE_ERROR(ct_add_layernorm(&m, &lg, g6, b6), "ct_add_layernorm", str(&lg, b1));
  EXPECT_SHAPE_ERROR(ct_add_layernorm(&m, &h, g6, b6), "ct_add_layernorm", str(&h, b1));
  CT_ASSERT_STATUS(ct_add_layernorm(&m, &x, NULL, b6), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_add_layernorm");
  CT_ASSERT_MESSAGE_HAS("gain");
  CT_ASSERT_STATUS(ct_add_layernorm(&m, &x, g6, NULL), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("bias");
  CT_ASSERT_STATUS(ct_add_layernorm(NULL, &x, g6, b6), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_add_layernorm");
  CT_ASSERT_OK(ct_add_layernorm(&m, &x, g6, b6));
  ct_morphism_free(m);
  m = NULL;
  /* gelu on HIDDEN or SEQ only */
  EXPECT_SHAPE_ERROR(ct_gelu(&m, &lg), "ct_gelu", str(&lg, b1));
  EXPECT_SHAPE_ERROR(ct_gelu(&m, &h), "ct_gelu", str(&h, b1));
  /* linear over SEQ: output role SEQ or LOGITS, rows of W = C */
  ct_param *W64 = new_param("W64", 2, 6, 4), *W54 = new_param("W54", 2, 5, 4);
  EXPECT_SHAPE_ERROR(ct_linear(&m, &x, CT_ROLE_HIDDEN, W64, NULL), "ct_linear", "HIDDEN");
  EXPECT_SHAPE_ERROR(ct_linear(&m, &x, CT_ROLE_SEQ, W54, NULL), "ct_linear", "W54", str(&x, b1));
  EXPECT_SHAPE_ERROR(ct_linear(&m, &h, CT_ROLE_SEQ, W64, NULL), "ct_linear", str(&h, b1));
  EXPECT_SHAPE_ERROR(ct_linear(&m, &hid, CT_ROLE_SEQ, W64, NULL), "ct_linear", "SEQ");
  /* linear_gelu: ct_linear's checks, named ct_linear_gelu */
  ct_param *b4 = new_param("b4", 1, 4, 0), *b5 = new_param("b5", 1, 5, 0),
           *Wv = new_param("Wvec", 1, 6, 0);
  CT_ASSERT_OK(ct_linear_gelu(&m, &x, CT_ROLE_SEQ, W64, b4));
  ct_morphism_free(m);
  m = NULL;
  EXPECT_SHAPE_ERROR(ct_linear_gelu(&m, &x, CT_ROLE_HIDDEN, W64, b4), "ct_linear_gelu", "HIDDEN");
  EXPECT_SHAPE_ERROR(ct_linear_gelu(&m, &x, CT_ROLE_SEQ, W54, b4), "ct_linear_gelu", "W54",
                     str(&x, b1));
  EXPECT_SHAPE_ERROR(ct_linear_gelu(&m, &x, CT_ROLE_SEQ, W64, b5), "ct_linear_gelu", "b5", "W64");
  EXPECT_SHAPE_ERROR(ct_linear_gelu(&m, &x, CT_ROLE_SEQ, Wv, NULL), "ct_linear_gelu", "Wvec");
  EXPECT_SHAPE_ERROR(ct_linear_gelu(&m, &x, CT_ROLE_SEQ, W64, W64), "ct_linear_gelu", "W64");
  EXPECT_SHAPE_ERROR(ct_linear_gelu(&m, &h, CT_ROLE_SEQ, W64, NULL), "ct_linear_gelu",
                     str(&h, b1));
  EXPECT_SHAPE_ERROR(ct_linear_gelu(&m, &lg, CT_ROLE_LOGITS, W64, NULL), "ct_linear_gelu",
                     str(&lg, b1));
  CT_ASSERT_STATUS(ct_linear_gelu(&m, NULL, CT_ROLE_SEQ, W64, NULL), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_linear_gelu");
  CT_ASSERT_STATUS(ct_linear_gelu(&m, &x, CT_ROLE_SEQ, NULL, NULL), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_linear_gelu");
  /* qkv: ct_linear's checks on each weight and bias, named ct_qkv; biases all or none */
  ct_param *W64b = new_param("W64b", 2, 6, 4), *W64c = new_param("W64c", 2, 6, 4),
           *b4b = new_param("b4b", 1, 4, 0), *b4c = new_param("b4c", 1, 4, 0);
  CT_ASSERT_OK(ct_qkv(&m, &x, CT_ROLE_SEQ, W64, b4, W64b, b4b, W64c, b4c));
  assert_int_equal(ct_morphism_cod_count(m), 3);
  ct_morphism_free(m);
  m = NULL;
  CT_ASSERT_OK(ct_qkv(&m, &x, CT_ROLE_SEQ, W64, NULL, W64b, NULL, W64c, NULL));
  ct_morphism_free(m);
  m = NULL;
  EXPECT_SHAPE_ERROR(ct_qkv(&m, &x, CT_ROLE_HIDDEN, W64, b4, W64b, b4b, W64c, b4c), "ct_qkv",
                     "HIDDEN");
  EXPECT_SHAPE_ERROR(ct_qkv(&m, &x, CT_ROLE_SEQ, W54, b4, W64b, b4b, W64c, b4c), "ct_qkv",
                     "W54", str(&x, b1));
  EXPECT_SHAPE_ERROR(ct_qkv(&m, &x, CT_ROLE_SEQ, W64, b4, W54, b4b, W64c, b4c), "ct_qkv", "W54");
  EXPECT_SHAPE_ERROR(ct_qkv(&m, &x, CT_ROLE_SEQ, W64, b4, W64b, b4b, W54, b4c), "ct_qkv", "W54");
  EXPECT_SHAPE_ERROR(ct_qkv(&m, &x, CT_ROLE_SEQ, W64, b4, W64b, b5, W64c, b4c), "ct_qkv", "b5",
                     "W64b");
  EXPECT_SHAPE_ERROR(ct_qkv(&m, &x, CT_ROLE_SEQ, W64, b4, W64b, b4b, Wv, b4c), "ct_qkv", "Wvec");
  EXPECT_SHAPE_ERROR(ct_qkv(&m, &h, CT_ROLE_SEQ, W64, b4, W64b, b4b, W64c, b4c), "ct_qkv",
                     str(&h, b1));
  CT_ASSERT_STATUS(ct_qkv(&m, &x, CT_ROLE_SEQ, W64, b4, W64b, NULL, W64c, b4c),
                   CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_qkv");
  CT_ASSERT_MESSAGE_HAS("bk");
  CT_ASSERT_STATUS(ct_qkv(&m, &x, CT_ROLE_SEQ, W64, NULL, W64b, NULL, W64c, b4c),
                   CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("bv");
  CT_ASSERT_STATUS(ct_qkv(&m, &x, CT_ROLE_SEQ, W64, b4, NULL, b4b, W64c, b4c), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_qkv");
  CT_ASSERT_MESSAGE_HAS("wk");
  CT_ASSERT_STATUS(ct_qkv(&m, NULL, CT_ROLE_SEQ, W64, b4, W64b, b4b, W64c, b4c),
                   CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_qkv");
  CT_ASSERT_STATUS(ct_qkv(NULL, &x, CT_ROLE_SEQ, W64, b4, W64b, b4b, W64c, b4c),
                   CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_qkv");
  ct_param_free(W64b);
  ct_param_free(W64c);
  ct_param_free(b4b);
  ct_param_free(b4c);
  ct_param_free(b4);
  ct_param_free(b5);
  ct_param_free(Wv);

  /* sequence roles fix their ranks; scores and weights are square */
  ct_object bad;
  int64_t d2[2] = {5, 6}, d3[3] = {2, 5, 4}, d5[3] = {2, 5, 5};
  CT_ASSERT_STATUS(ct_object_make(&bad, CT_F32, CT_ROLE_SEQ, 2, d2), CT_ERR_SHAPE);
  CT_ASSERT_MESSAGE_HAS("SEQ");
  CT_ASSERT_STATUS(ct_object_make(&bad, CT_F32, CT_ROLE_HEADS, 3, d5), CT_ERR_SHAPE);
  CT_ASSERT_MESSAGE_HAS("HEADS");
  CT_ASSERT_STATUS(ct_object_make(&bad, CT_F32, CT_ROLE_SCORES, 3, d3), CT_ERR_SHAPE);
  CT_ASSERT_MESSAGE_HAS("SCORES");
  CT_ASSERT_STATUS(ct_object_make(&bad, CT_F32, CT_ROLE_ATTN, 2, d2), CT_ERR_SHAPE);
  CT_ASSERT_MESSAGE_HAS("ATTN");
  CT_ASSERT_STATUS(ct_object_make(&bad, CT_I32, CT_ROLE_SEQ, 3, d5), CT_ERR_SHAPE);

  /* Skipping the softmax is a type error of the composite too. */
  ct_morphism *scores = NULL, *apply = NULL, *ignored = NULL;
  CT_ASSERT_OK(ct_attn_scores(&scores, &h, &h));
  CT_ASSERT_OK(ct_attn_apply(&apply, &at, &h));
  CT_ASSERT_STATUS(ct_then(&ignored, scores, apply), CT_ERR_SHAPE);
  (void)b3;
  ct_morphism_free(scores);
  ct_morphism_free(apply);
  ct_param *ps[] = {short_p, wide_p, vec_p, ok_p, g5, g6, b7, b6, g66, W64, W54};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) ct_param_free(ps[i]);
}

/* ---- the optimizer -------------------------------------------------------------------- */

/* A tiny loss: HIDDEN x[N,K] ; linear(W [K,M], b [M]) -> LOGITS ; softmax-xent with TOKENS[N]. */
#define ON 4
#define OK_ 3
#define OM 5
#define NP (OK_ * OM + OM) /* its parameters, W then b */

typedef struct tiny {
  ct_param *W, *b;
  ct_morphism *loss;
  float x[ON * OK_];
  int32_t t[ON];
} tiny;

static void tiny_make(tiny *s, uint64_t seed) {
  ct_object x, lg, tk;
  CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_HIDDEN, ON, OK_));
  CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, ON, OM));
  CT_ASSERT_OK(ct_object_tokens(&tk, ON));
  s->W = new_param("W", 2, OK_, OM);
  s->b = new_param("b", 1, OM, 0);
  ct_rng rng = {seed};
  float w[OK_ * OM], b[OM];
  ct_rng_fill(&rng, w, OK_ * OM, -0.5f, 0.5f);
  ct_rng_fill(&rng, b, OM, -0.5f, 0.5f);
  ct_rng_fill(&rng, s->x, ON * OK_, -2.0f, 2.0f);
  for (int i = 0; i < ON; i++) s->t[i] = ct_rng_int(&rng, OM);
  CT_ASSERT_OK(ct_param_set(s->W, w, OK_ * OM));
  CT_ASSERT_OK(ct_param_set(s->b, b, OM));
  ct_morphism *lin = NULL, *sxe = NULL;
  CT_ASSERT_OK(ct_linear(&lin, &x, CT_ROLE_LOGITS, s->W, s->b));
  CT_ASSERT_OK(ct_softmax_cross_entropy(&sxe, &lg, &tk));
  ct_morphism *idt = mk_identity1(&tk), *pair = mk_tensor(lin, idt);
  s->loss = mk_then(pair, sxe);
  ct_morphism_free(lin);
  ct_morphism_free(sxe);
  ct_morphism_free(idt);
  ct_morphism_free(pair);
}

static void tiny_free(tiny *s) {
  ct_morphism_free(s->loss);
  ct_param_free(s->W);
  ct_param_free(s->b);
}

static ct_trainer *tiny_trainer(tiny *s, const ct_optimizer *o) {
  ct_trainer *t = NULL;
  CT_ASSERT_OK(ct_trainer_new(&t, s->loss, cpu, o));
  CT_ASSERT_OK(ct_trainer_set_input(t, 0, s->x, ON * OK_));
  CT_ASSERT_OK(ct_trainer_set_input(t, 1, s->t, ON));
  return t;
}

/* Gradient of the tiny loss in double at (W, b). */
static void tiny_grad_double(const tiny *s, const double *W, const double *b, double *gW,
                             double *gb) {
  memset(gW, 0, OK_ * OM * sizeof *gW);
  memset(gb, 0, OM * sizeof *gb);
  for (int i = 0; i < ON; i++) {
    double lg[OM], mx = -INFINITY, sum = 0.0;
    for (int j = 0; j < OM; j++) {
      lg[j] = b[j];
      for (int k = 0; k < OK_; k++) lg[j] += (double)s->x[i * OK_ + k] * W[k * OM + j];
      mx = fmax(mx, lg[j]);
    }
    for (int j = 0; j < OM; j++) sum += exp(lg[j] - mx);
    for (int j = 0; j < OM; j++) {
      double dl = (exp(lg[j] - mx) / sum - (j == s->t[i] ? 1.0 : 0.0)) / ON;
      gb[j] += dl;
      for (int k = 0; k < OK_; k++) gW[k * OM + j] += (double)s->x[i * OK_ + k] * dl;
    }
  }
}

/* Gradients of the tiny loss as the library computes them, at the host
 * parameters: W then b, into g[NP]. */
static void tiny_grad_library(tiny *s, float *g) {
  ct_plan *p = NULL;
  CT_ASSERT_OK(ct_compile(&p, s->loss, cpu, CT_PLAN_REVERSE));
  CT_ASSERT_OK(ct_plan_set_input(p, 0, s->x, ON * OK_));
  CT_ASSERT_OK(ct_plan_set_input(p, 1, s->t, ON));
  CT_ASSERT_OK(ct_plan_forward(p));
  float one = 1.0f;
  CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, &one, 1));
  CT_ASSERT_OK(ct_plan_reverse(p));
  CT_ASSERT_OK(ct_plan_get_param_grad(p, s->W, g, OK_ * OM));
  CT_ASSERT_OK(ct_plan_get_param_grad(p, s->b, g + OK_ * OM, OM));
  ct_plan_free(p);
}

/* The tiny loss's parameters, W then b, into p[NP]: those of trainer t
 * (stored to the host first) or, with t NULL, the host's. */
static void tiny_params(tiny *s, ct_trainer *t, float *p) {
  if (t) CT_ASSERT_OK(ct_trainer_store_params(t));
  CT_ASSERT_OK(ct_param_get(s->W, p, OK_ * OM));
  CT_ASSERT_OK(ct_param_get(s->b, p + OK_ * OM, OM));
}

/* An SGD step moved every parameter from p0 to p1 by lr * g. p1 is p0 - step
 * rounded to float: allow that rounding plus 1e-6 of the step. Returns the
 * worst relative error of the steps. */
static double check_sgd_step(const float *p0, const float *p1, const float *g, double lr,
                             const char *what) {
  double worst = 0.0;
  for (int i = 0; i < NP; i++) {
    double step = (double)p0[i] - p1[i], want = lr * g[i];
    double err = fabs(step - want), tol = 1e-6 * fabs(want) + 1e-7 * fabs(p0[i]) + 1e-9;
    if (!(err <= tol))
      fail_msg("%s: parameter %d moved by %.9g, want %.6g * grad = %.9g", what, i, step, lr, want);
    worst = fmax(worst, err / fmax(fabs(want), 1e-9));
  }
  return worst;
}

/* The schedule of train.h, in double. */
static double lr_double(const ct_optimizer *o, long t) {
  double peak = o->lr, lo = o->min_lr, w = (double)o->warmup_steps, T = (double)o->total_steps;
  if (w > 0 && t <= w) return peak * (double)t / w;
  if (T == 0) return peak;
  if (t >= T) return lo;
  return lo + 0.5 * (peak - lo) * (1.0 + cos(M_PI * ((double)t - w) / (T - w)));
}

/* PyTorch AdamW on one tensor (n elements), step t. */
static void adamw_double(const ct_optimizer *o, long t, double lr, bool decay, double *p,
                         const double *g, double *m, double *v, int n) {
  double b1 = o->beta1, b2 = o->beta2, bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
  for (int i = 0; i < n; i++) {
    if (decay) p[i] *= 1.0 - lr * o->weight_decay;
    m[i] = b1 * m[i] + (1.0 - b1) * g[i];
    v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
    p[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + o->eps);
  }
}

static double worst_rel(const float *a, const double *b, int n, double floor_) {
  double w = 0.0;
  for (int i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - b[i]) / fmax(fabs(b[i]), floor_));
  return w;
}

/* (a) three AdamW steps (warmup 2: rates lr/2, lr, lr) against PyTorch's
 * algorithm in double; W (rank 2) decays, b (rank 1) does not. */
static void test_adamw_vs_double(void **state) {
  (void)state;
  tiny s;
  tiny_make(&s, 901);
  ct_optimizer o;
  CT_ASSERT_OK(ct_optimizer_adamw(&o, 0.05f));
  o.weight_decay = 0.1f;
  o.warmup_steps = 2;
  CT_ASSERT_OK(ct_optimizer_validate(&o));
  double W[OK_ * OM], b[OM], bdec[OM], mW[OK_ * OM] = {0}, vW[OK_ * OM] = {0}, mb[OM] = {0},
         vb[OM] = {0}, mbd[OM] = {0}, vbd[OM] = {0}, gW[OK_ * OM], gb[OM], gW2[OK_ * OM], gbd[OM];
  float f[NP];
  tiny_params(&s, NULL, f);
  for (int i = 0; i < OK_ * OM; i++) W[i] = f[i];
  for (int i = 0; i < OM; i++) b[i] = bdec[i] = f[OK_ * OM + i];
  /* the same trajectory with the bias decayed too, to show the test tells them apart */
  double Wd[OK_ * OM], mWd[OK_ * OM] = {0}, vWd[OK_ * OM] = {0};
  memcpy(Wd, W, sizeof W);
  for (long t = 1; t <= 3; t++) {
    double lr = lr_double(&o, t);
    tiny_grad_double(&s, W, b, gW, gb);
    adamw_double(&o, t, lr, true, W, gW, mW, vW, OK_ * OM);
    adamw_double(&o, t, lr, false, b, gb, mb, vb, OM);
    tiny_grad_double(&s, Wd, bdec, gW2, gbd);
    adamw_double(&o, t, lr, true, Wd, gW2, mWd, vWd, OK_ * OM);
    adamw_double(&o, t, lr, true, bdec, gbd, mbd, vbd, OM);
  }
  /* three single steps, and one call of three steps, give the same parameters */
  ct_trainer *t1 = tiny_trainer(&s, &o), *t3 = tiny_trainer(&s, &o);
  for (int k = 0; k < 3; k++) CT_ASSERT_OK(ct_trainer_step(t1, 1));
  CT_ASSERT_OK(ct_trainer_step(t3, 3));
  assert_int_equal(ct_trainer_steps(t1), 3);
  float lr3;
  CT_ASSERT_OK(ct_trainer_last_lr(t1, &lr3));
  assert_float_equal(lr3, 0.05f, 0.0f);
  float p3[NP], p1[NP];
  tiny_params(&s, t3, p3);
  tiny_params(&s, t1, p1);
  assert_memory_equal(p1, p3, sizeof p1);
  double eW = worst_rel(p1, W, OK_ * OM, 1e-2), eb = worst_rel(p1 + OK_ * OM, b, OM, 1e-2);
  double e_decayed_bias = worst_rel(p1 + OK_ * OM, bdec, OM, 1e-2);
  print_message("    AdamW 3 steps vs double: W rel err %.2e, b rel err %.2e (b if decayed: %.2e)\n",
                eW, eb, e_decayed_bias);
  assert_true(eW <= 1e-5);
  assert_true(eb <= 1e-5);
  assert_true(e_decayed_bias > 1e-4);
  ct_trainer_free(t1);
  ct_trainer_free(t3);
  tiny_free(&s);
}

/* (b) the schedule: linear warmup, cosine to min_lr at total_steps, min_lr after. */
static void test_schedule(void **state) {
  (void)state;
  tiny s;
  tiny_make(&s, 902);
  ct_optimizer o;
  CT_ASSERT_OK(ct_optimizer_adamw(&o, 0.01f));
  o.warmup_steps = 4;
  o.total_steps = 12;
  o.min_lr = 0.001f;
  CT_ASSERT_OK(ct_optimizer_validate(&o));
  ct_trainer *t = tiny_trainer(&s, &o);
  float last = 0.0f;
  CT_ASSERT_STATUS(ct_trainer_last_lr(t, &last), CT_ERR_STATE); /* no step yet */
  double worst = 0.0;
  float prev = 0.0f;
  for (long k = 1; k <= 20; k++) {
    float at = ct_optimizer_lr_at(&o, k);
    double want = lr_double(&o, k);
    worst = fmax(worst, fabs(at - want) / want);
    if (!(fabs(at - want) <= 1e-6 * want))
      fail_msg("lr_at(%ld) = %.9g, want %.9g", k, (double)at, want);
    CT_ASSERT_OK(ct_trainer_step(t, 1));
    CT_ASSERT_OK(ct_trainer_last_lr(t, &last));
    if (!(fabs(last - at) <= 1e-7 * at))
      fail_msg("step %ld: trainer rate %.9g, lr_at %.9g", k, (double)last, (double)at);
    if (k <= 4) assert_true(at > prev);                  /* warmup rises */
    if (k == 4) assert_float_equal(at, 0.01f, 1e-9f);    /* to the peak */
    if (k > 4 && k <= 12) assert_true(at < prev);       /* cosine falls */
    if (k >= 12) assert_float_equal(at, 0.001f, 0.0f);  /* min_lr, and stays */
    prev = at;
  }
  print_message("    schedule warmup 4, total 12, 0.01 -> 0.001: lr_at vs double %.1e rel, trainer == "
                "lr_at\n", worst);
  assert_float_equal(ct_optimizer_lr_at(&o, 0), 0.0f, 0.0f);
  /* total 0: constant after warmup; no warmup: the peak from step 1 */
  o.total_steps = 0;
  o.min_lr = 0.0f;
  assert_float_equal(ct_optimizer_lr_at(&o, 2), 0.005f, 1e-9f);
  assert_float_equal(ct_optimizer_lr_at(&o, 100000), 0.01f, 0.0f);
  o.warmup_steps = 0;
  assert_float_equal(ct_optimizer_lr_at(&o, 1), 0.01f, 0.0f);
  o.total_steps = 10;
  assert_float_equal(ct_optimizer_lr_at(&o, 1), (float)lr_double(&o, 1), 1e-8f);
  assert_float_equal(ct_optimizer_lr_at(&o, 10), 0.0f, 0.0f);
  ct_trainer_free(t);
  tiny_free(&s);
}

/* (c) clipping: the trainer's norm is the norm of the gradients a plan reports,
 * and an SGD step moves by lr * clip / (norm + 1e-6) * grad. */
static void test_clipping(void **state) {
  (void)state;
  tiny s;
  tiny_make(&s, 903);
  float g[NP], p0[NP], p1[NP];
  tiny_grad_library(&s, g);
  tiny_params(&s, NULL, p0);
  double sq = 0.0;
  for (int i = 0; i < NP; i++) sq += (double)g[i] * g[i];
  double norm = sqrt(sq);
  assert_true(norm > 0.1);
  for (int clipped = 1; clipped >= 0; clipped--) {
    ct_optimizer o;
    CT_ASSERT_OK(ct_optimizer_sgd(&o, 0.5f));
    o.clip_norm = clipped ? (float)(0.25 * norm) : (float)(4.0 * norm);
    ct_trainer *t = tiny_trainer(&s, &o);
    CT_ASSERT_OK(ct_trainer_step(t, 1));
    float got;
    CT_ASSERT_OK(ct_trainer_last_grad_norm(t, &got));
    double nerr = fabs(got - norm) / norm;
    if (!(nerr <= 1e-6)) fail_msg("trainer grad norm %.9g, from the plan's gradients %.9g", (double)got, norm);
    tiny_params(&s, t, p1);
    /* backend_impl.h: scale = clip / (norm + 1e-6) when norm > clip */
    double scale = clipped ? o.clip_norm / (norm + 1e-6) : 1.0;
    double worst = check_sgd_step(p0, p1, g, 0.5 * scale, clipped ? "clipped" : "not clipped");
    print_message("    clip %.4g, norm %.6g (trainer %.6g, rel %.1e): step = lr * %.4f * grad "
                  "(worst rel %.1e)\n", (double)o.clip_norm, norm, (double)got, nerr, scale, worst);
    CT_ASSERT_OK(ct_param_set(s.W, p0, OK_ * OM)); /* back to the start for the next case */
    CT_ASSERT_OK(ct_param_set(s.b, p0 + OK_ * OM, OM));
    ct_trainer_free(t);
  }
  tiny_free(&s);
}

/* (d) set_optimizer: a new rate at the next step; another kind is refused. */
static void test_set_optimizer(void **state) {
  (void)state;
  tiny s;
  tiny_make(&s, 904);
  ct_optimizer o, o2, adam, bad;
  CT_ASSERT_OK(ct_optimizer_sgd(&o, 0.1f));
  ct_trainer *t = tiny_trainer(&s, &o);
  CT_ASSERT_OK(ct_trainer_step(t, 1));
  float lr;
  CT_ASSERT_OK(ct_trainer_last_lr(t, &lr));
  assert_float_equal(lr, 0.1f, 0.0f);
  float p1[NP], p2[NP], g[NP];
  tiny_params(&s, t, p1);
  tiny_grad_library(&s, g); /* the gradient the next step sees */

  CT_ASSERT_OK(ct_optimizer_sgd(&o2, 0.02f));
  CT_ASSERT_OK(ct_trainer_set_optimizer(t, &o2));
  CT_ASSERT_OK(ct_optimizer_adamw(&adam, 0.02f));
  CT_ASSERT_STATUS(ct_trainer_set_optimizer(t, &adam), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_trainer_set_optimizer");
  CT_ASSERT_MESSAGE_HAS("adamw");
  bad = o2;
  bad.lr = -1.0f;
  CT_ASSERT_STATUS(ct_trainer_set_optimizer(t, &bad), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("learning rate");

  CT_ASSERT_OK(ct_trainer_step(t, 1)); /* with the 0.02 of o2: the refused ones left no trace */
  CT_ASSERT_OK(ct_trainer_last_lr(t, &lr));
  assert_float_equal(lr, 0.02f, 0.0f);
  tiny_params(&s, t, p2);
  check_sgd_step(p1, p2, g, 0.02, "after set_optimizer");
  assert_int_equal(ct_trainer_steps(t), 2);
  ct_trainer_free(t);
  tiny_free(&s);
}

/* (e) invalid fields: CT_ERR_INVALID_ARG naming the field. */
static void test_optimizer_validation(void **state) {
  (void)state;
  ct_optimizer base, o;
  CT_ASSERT_OK(ct_optimizer_adamw(&base, 1e-3f));
  assert_float_equal(base.beta1, 0.9f, 0.0f);
  assert_float_equal(base.beta2, 0.999f, 0.0f);
  assert_float_equal(base.eps, 1e-8f, 0.0f);
  assert_float_equal(base.weight_decay, 0.01f, 0.0f);
  assert_float_equal(base.clip_norm, 0.0f, 0.0f);
  assert_int_equal(base.warmup_steps, 0);
  assert_int_equal(base.total_steps, 0);
  CT_ASSERT_OK(ct_optimizer_sgd(&o, 0.1f));
  assert_float_equal(o.weight_decay, 0.0f, 0.0f);

#define BAD(field_expr, needle)                                      \
  do {                                                               \
    o = base;                                                        \
    field_expr;                                                      \
    CT_ASSERT_STATUS(ct_optimizer_validate(&o), CT_ERR_INVALID_ARG); \
    CT_ASSERT_MESSAGE_HAS(needle);                                   \
  } while (0)
  BAD(o.beta1 = 1.0f, "beta1");
  BAD(o.beta1 = -0.1f, "beta1");
  BAD(o.beta2 = 1.0f, "beta2");
  BAD(o.eps = 0.0f, "eps");
  BAD(o.eps = NAN, "eps");
  BAD(o.weight_decay = -0.01f, "weight decay");
  BAD(o.lr = 0.0f, "learning rate");
  BAD(o.lr = INFINITY, "learning rate");
  BAD(o.min_lr = 0.01f, "min_lr");
  BAD(o.clip_norm = -1.0f, "clip_norm");
  BAD((o.warmup_steps = 10, o.total_steps = 10), "total_steps");
  BAD((o.warmup_steps = 10, o.total_steps = 5), "total_steps");
  BAD(o.warmup_steps = -1, "warmup_steps");
  BAD((o.kind = CT_OPT_SGD, o.weight_decay = 0.01f), "weight decay");
  BAD(o.kind = CT_OPT_COUNT, "optimizer");
#undef BAD
  /* the constructors and the trainer check the same */
  CT_ASSERT_STATUS(ct_optimizer_sgd(&o, 0.0f), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_optimizer_sgd");
  CT_ASSERT_STATUS(ct_optimizer_adamw(&o, NAN), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_optimizer_adamw");
  tiny s;
  tiny_make(&s, 905);
  ct_trainer *t = NULL;
  o = base;
  o.eps = 0.0f;
  CT_ASSERT_STATUS(ct_trainer_new(&t, s.loss, cpu, &o), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_trainer_new");
  CT_ASSERT_MESSAGE_HAS("eps");
  assert_null(t);
  tiny_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grad_pos_embedding),
      cmocka_unit_test(test_grad_layernorm),
      cmocka_unit_test(test_grad_add_layernorm),
      cmocka_unit_test(test_add_layernorm_is_composite),
      cmocka_unit_test(test_grad_gelu),
      cmocka_unit_test(test_grad_linear_gelu),
      cmocka_unit_test(test_linear_gelu_is_linear_then_gelu),
      cmocka_unit_test(test_grad_qkv),
      cmocka_unit_test(test_qkv_is_three_linears),
      cmocka_unit_test(test_grad_heads),
      cmocka_unit_test(test_grad_attention_heads),
      cmocka_unit_test(test_grad_attention_one_head),
      cmocka_unit_test(test_grad_causal_attention),
      cmocka_unit_test(test_grad_linear_seq),
      cmocka_unit_test(test_scores_mask),
      cmocka_unit_test(test_causal_softmax_law),
      cmocka_unit_test(test_constructor_errors),
      cmocka_unit_test(test_adamw_vs_double),
      cmocka_unit_test(test_schedule),
      cmocka_unit_test(test_clipping),
      cmocka_unit_test(test_set_optimizer),
      cmocka_unit_test(test_optimizer_validation),
  };
  return CT_RUN_TESTS("seq", tests, setup, NULL);
}
