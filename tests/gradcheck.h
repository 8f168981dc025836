/* SPDX-License-Identifier: MIT */
/* Gradient checks against finite differences in double, on the CPU reference:
 * the driver and the double-precision forwards that test_gradcheck.c,
 * test_seq.c and test_gpt.c share.
 *
 * A case is a morphism, its parameters, its token ids and an independent
 * double forward written in the suite. gradcheck() compiles the morphism with
 * CT_PLAN_REVERSE and, at each of the case's random points (fixed seeds),
 * feeds random inputs, parameters and output cotangents w, runs forward and
 * reverse, and compares
 *   - the outputs with the double forward (|a-b| <= 1e-5 + 1e-4|b|, the
 *     DESIGN.md fp32 forward tolerance);
 *   - every input cotangent (f32 inputs) and every parameter gradient with
 *     central differences, in double, of L(x, params) = sum_j w_j . y_j over
 *     the f32 outputs, computed with that same double forward (never the
 *     library): relative error <= 1e-3 (DESIGN.md); where L does not move at
 *     all (masked entries, unused table rows, discarded inputs) the gradient
 *     must be exactly 0.
 * Each point also runs forward and reverse a second time and requires the
 * same gradients bit for bit: parameter gradients are zeroed by each reverse,
 * not accumulated across runs.
 *
 * Random inputs: f32 inputs uniform in [-span, span]; DIST inputs are rows of
 * a softmax of numbers in [-2, 2] (every p >= e^-4 / C, far from the 1e-9
 * clamp); ATTN inputs are causal-softmax rows (0 beyond the diagonal).
 *
 * The suite defines struct gc_dims, the shapes its forwards read (the driver
 * only passes it through), and may set GC_NAME_WIDTH / GC_COUNT_WIDTH, the
 * widths of the case name and gradient count in the line gradcheck() prints.
 *
 * Everything here is static inline: a suite uses what it needs. */
#ifndef CTML_GRADCHECK_H
#define CTML_GRADCHECK_H

#include "ct_test.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define GC_MAX 6    /* inputs, outputs or parameters of one case, at most */
#define GC_H 1e-6   /* finite-difference step, in double */
#define GC_RTOL 1e-3 /* DESIGN.md: relative error against finite differences */
/* Denominator floor of the relative error. The analytic gradients are fp32:
 * each element is a short sum of O(1) products accumulated in double and
 * rounded to fp32, so where its terms cancel to near zero its absolute error
 * is still a few fp32 ulps of O(1), about 1e-7. The central differences in
 * double are good to about 1e-9 (truncation h^2 |f'''| ~ 1e-12, rounding
 * 1e-16 |L| / h ~ 1e-9). Dividing by max(|fd|, 1e-3) therefore allows an
 * absolute error of 1e-6 on near-zero gradients (10x the fp32 noise) and a
 * relative error of 1e-3 on all others: any real gradient bug (a missing
 * term, a wrong sign or scale) is an O(|fd|) error and fails. */
#define GC_FLOOR 1e-3
#define LN_EPS 1e-5 /* layernorm's epsilon */

#ifndef GC_NAME_WIDTH
#define GC_NAME_WIDTH 34
#endif
#ifndef GC_COUNT_WIDTH
#define GC_COUNT_WIDTH 4
#endif

static const ct_backend *cpu;

static int setup(void **state) {
  (void)state;
  return ct_backend_get("cpu", &cpu) == CT_OK ? 0 : -1;
}

static inline ct_param *new_param(const char *name, int rank, int64_t d0, int64_t d1) {
  int64_t d[2] = {d0, d1};
  ct_param *p = NULL;
  CT_ASSERT_OK(ct_param_new(&p, name, rank, d));
  return p;
}

/* ---- independent double-precision forwards ------------------------------------ */

/* y[rows,m] = x[rows,k] W[k,m] (+ b[m]). */
static inline void linear_double(int64_t rows, int64_t k, int64_t m, const double *x,
                                 const double *W, const double *b, double *y) {
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < m; j++) {
      double acc = b ? b[j] : 0.0;
      for (int64_t t = 0; t < k; t++) acc += x[i * k + t] * W[t * m + j];
      y[i * m + j] = acc;
    }
}

/* Row-wise softmax over c columns, max-subtracted. */
static inline void softmax_double(int64_t rows, int64_t c, const double *x, double *y) {
  for (int64_t i = 0; i < rows; i++) {
    const double *xr = &x[i * c];
    double mx = xr[0], sum = 0.0;
    for (int64_t j = 1; j < c; j++) mx = fmax(mx, xr[j]);
    for (int64_t j = 0; j < c; j++) sum += exp(xr[j] - mx);
    for (int64_t j = 0; j < c; j++) y[i * c + j] = exp(xr[j] - mx) / sum;
  }
}

/* -ln softmax(x)[t] of one row of c logits, through log-sum-exp: lse(x) - x[t]. */
static inline double nll_logits_double(int64_t c, const double *x, int32_t t) {
  double mx = x[0], s = 0.0;
  for (int64_t j = 1; j < c; j++) mx = fmax(mx, x[j]);
  for (int64_t j = 0; j < c; j++) s += exp(x[j] - mx);
  return mx + log(s) - x[t];
}

/* y[i,:] = table[ids[i],:]. */
static inline void embedding_double(int64_t n, int64_t width, const int32_t *ids,
                                    const double *table, double *y) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < width; j++) y[i * width + j] = table[(int64_t)ids[i] * width + j];
}

/* y[b,t,:] = x[b,t,:] + P[t,:] (y may be x). */
static inline void pos_double(int64_t B, int64_t T, int64_t C, const double *x, const double *P,
                              double *y) {
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t c = 0; c < C; c++) y[(b * T + t) * C + c] = x[(b * T + t) * C + c] + P[t * C + c];
}

static inline void layernorm_double(int64_t rows, int64_t n, const double *x, const double *g,
                                    const double *bias, double *y) {
  for (int64_t r = 0; r < rows; r++) {
    const double *xr = &x[r * n];
    double mean = 0.0, var = 0.0;
    for (int64_t j = 0; j < n; j++) mean += xr[j];
    mean /= (double)n;
    for (int64_t j = 0; j < n; j++) var += (xr[j] - mean) * (xr[j] - mean);
    var /= (double)n;
    for (int64_t j = 0; j < n; j++)
      y[r * n + j] = (xr[j] - mean) / sqrt(var + LN_EPS) * g[j] + bias[j];
  }
}

/* GELU, tanh form. */
static inline double gelu_double(double v) {
  return 0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
}

/* SEQ [B,T,H*D] -> HEADS [B,H,T,D] (to_heads) or back. */
static inline void heads_double(int64_t B, int64_t H, int64_t T, int64_t D, const double *src,
                                double *dst, int to_heads) {
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t t = 0; t < T; t++)
        for (int64_t k = 0; k < D; k++) {
          int64_t hi = ((b * H + h) * T + t) * D + k, si = (b * T + t) * H * D + h * D + k;
          if (to_heads)
            dst[hi] = src[si];
          else
            dst[si] = src[hi];
        }
}

/* batch matrices [T,D]: s[i,j] = q_i . k_j / sqrt(D) for j <= i, else 0. */
static inline void scores_double(int64_t batch, int64_t T, int64_t D, const double *q,
                                 const double *k, double *s) {
  for (int64_t b = 0; b < batch; b++)
    for (int64_t i = 0; i < T; i++)
      for (int64_t j = 0; j < T; j++) {
        double acc = 0.0;
        for (int64_t e = 0; j <= i && e < D; e++) acc += q[(b * T + i) * D + e] * k[(b * T + j) * D + e];
        s[(b * T + i) * T + j] = acc / sqrt((double)D);
      }
}

/* rows of length T, row r attends to 0..(r mod T). */
static inline void causal_softmax_double(int64_t batch, int64_t T, const double *x, double *y) {
  for (int64_t r = 0; r < batch * T; r++) {
    int64_t len = r % T + 1;
    double mx = x[r * T], sum = 0.0;
    for (int64_t j = 1; j < len; j++) mx = fmax(mx, x[r * T + j]);
    for (int64_t j = 0; j < len; j++) sum += exp(x[r * T + j] - mx);
    for (int64_t j = 0; j < T; j++) y[r * T + j] = j < len ? exp(x[r * T + j] - mx) / sum : 0.0;
  }
}

/* batch matrices: y[T,D] = a[T,T] v[T,D]. */
static inline void apply_double(int64_t batch, int64_t T, int64_t D, const double *a,
                                const double *v, double *y) {
  for (int64_t b = 0; b < batch; b++)
    for (int64_t i = 0; i < T; i++)
      for (int64_t e = 0; e < D; e++) {
        double acc = 0.0;
        for (int64_t j = 0; j < T; j++) acc += a[(b * T + i) * T + j] * v[(b * T + j) * D + e];
        y[(b * T + i) * D + e] = acc;
      }
}

/* SEQ [B,T,H*D] q, k, v -> y: per head, scores ; causal softmax ; apply, composed from the
 * helpers above on the HEADS layout. */
static inline void causal_attention_double(int64_t B, int64_t H, int64_t T, int64_t D,
                                           const double *q, const double *k, const double *v,
                                           double *y) {
  size_t n = (size_t)(B * H * T * D), sq = (size_t)(B * H * T * T);
  double *buf = calloc(4 * n + 2 * sq + 1, sizeof *buf);
  if (!buf) return;
  double *qh = buf, *kh = qh + n, *vh = kh + n, *yh = vh + n, *s = yh + n, *a = s + sq;
  heads_double(B, H, T, D, q, qh, 1);
  heads_double(B, H, T, D, k, kh, 1);
  heads_double(B, H, T, D, v, vh, 1);
  scores_double(B * H, T, D, qh, kh, s);
  causal_softmax_double(B * H, T, s, a);
  apply_double(B * H, T, D, a, vh, yh);
  heads_double(B, H, T, D, yh, y, 0);
  free(buf);
}

/* ---- the driver ------------------------------------------------------------------ */

/* The point the double forward is evaluated at. */
typedef struct gc_vals {
  double *x[GC_MAX];          /* f32 inputs by dom index (NULL for i32 inputs) */
  const int32_t *ids[GC_MAX]; /* i32 inputs by dom index (NULL for f32 inputs) */
  double *p[GC_MAX];          /* parameters, in the case's order (NULL past the last) */
} gc_vals;

/* The shapes a case's forward reads: defined by each suite. */
typedef struct gc_dims gc_dims;

/* Writes every output, in double, into y[j] (cod index j). */
typedef void (*gc_fwd)(const gc_dims *d, const gc_vals *v, double *const *y);

typedef struct gc_case {
  const char *name;
  const ct_morphism *m;
  ct_param *params[GC_MAX];   /* NULL-terminated; the driver gives them random values */
  const int32_t *ids[GC_MAX]; /* by dom index, for the i32 inputs */
  gc_fwd fwd;
  const gc_dims *d;
  uint64_t seed; /* point s uses seed + s */
  int points;    /* random points (0: one) */
  float span;    /* f32 inputs uniform in [-span, span] (0: 1; DIST inputs: 2) */
} gc_case;

typedef struct gc_run {
  const gc_case *c;
  int n_in, n_out, n_par;
  int64_t n_x[GC_MAX], n_y[GC_MAX], n_p[GC_MAX];
  const void *in[GC_MAX];   /* host inputs as the library gets them (float or int32) */
  float *w[GC_MAX];         /* output cotangents */
  gc_vals v;
  double *y[GC_MAX], *wd[GC_MAX];
  void *pool[16 * GC_MAX];  /* everything allocated, freed at the end */
  int n_pool;
} gc_run;

/* Worst errors over a case's points. */
typedef struct gc_worst {
  double fwd, grad;
  int64_t checked;
} gc_worst;

static inline void *gc_alloc(gc_run *r, int64_t n, size_t size) {
  assert_true(r->n_pool < (int)(sizeof r->pool / sizeof r->pool[0]));
  void *q = calloc((size_t)(n > 0 ? n : 1), size);
  assert_non_null(q);
  return r->pool[r->n_pool++] = q;
}

static inline double *gc_to_double(gc_run *r, const float *f, int64_t n) {
  double *d = gc_alloc(r, n, sizeof *d);
  for (int64_t i = 0; i < n; i++) d[i] = f[i];
  return d;
}

/* L = sum_j w_j . y_j with y from the double forward at the point of run r. */
static inline double gc_objective(const void *run) {
  const gc_run *r = run;
  r->c->fwd(r->c->d, &r->v, r->y);
  double L = 0.0;
  for (int j = 0; j < r->n_out; j++)
    for (int64_t e = 0; e < r->n_y[j]; e++) L += r->wd[j][e] * r->y[j][e];
  return L;
}

/* One forward and reverse run of plan p: inputs and cotangents in; outputs,
 * input cotangents (f32 inputs) and parameter gradients out. */
static inline void gc_library_pass(ct_plan *p, const gc_run *r, float **y, float **gx,
                                   float **gp) {
  for (int i = 0; i < r->n_in; i++) CT_ASSERT_OK(ct_plan_set_input(p, i, r->in[i], r->n_x[i]));
  CT_ASSERT_OK(ct_plan_forward(p));
  for (int j = 0; j < r->n_out; j++) {
    CT_ASSERT_OK(ct_plan_get_output(p, j, y[j], r->n_y[j]));
    CT_ASSERT_OK(ct_plan_set_output_grad(p, j, r->w[j], r->n_y[j]));
  }
  CT_ASSERT_OK(ct_plan_reverse(p));
  for (int i = 0; i < r->n_in; i++)
    if (gx[i]) CT_ASSERT_OK(ct_plan_get_input_grad(p, i, gx[i], r->n_x[i]));
  for (int k = 0; k < r->n_par; k++)
    CT_ASSERT_OK(ct_plan_get_param_grad(p, r->c->params[k], gp[k], r->n_p[k]));
}

/* A loss in double at the point ctx describes. */
typedef double (*gc_loss)(const void *ctx);

/* Central differences of L(ctx) along every element of t (a tensor the point
 * ctx describes reads), against the analytic gradient g: relative error
 * |g - fd| / max(|fd|, GC_FLOOR) <= GC_RTOL. With zeros given, where L does
 * not move at all in double (fd exactly 0: L does not depend on the element,
 * e.g. an unused embedding row or a discarded input) the gradient must be
 * exactly 0; those elements are counted in *zeros. Returns the worst relative
 * error. */
static inline double gc_fd_check(gc_loss L, const void *ctx, double *t, int64_t n, const float *g,
                                 const char *name, const char *what, int64_t *zeros) {
  double worst = 0.0;
  for (int64_t e = 0; e < n; e++) {
    double keep = t[e], hi = keep + GC_H, lo = keep - GC_H;
    t[e] = hi;
    double l_hi = L(ctx);
    t[e] = lo;
    double l_lo = L(ctx);
    t[e] = keep;
    double fd = (l_hi - l_lo) / (hi - lo);
    if (fd == 0.0 && zeros) {
      if (g[e] != 0.0f)
        fail_msg("%s: d/d %s[%lld] = %.9g, but L does not depend on it: must be exactly 0", name,
                 what, (long long)e, (double)g[e]);
      ++*zeros;
      continue;
    }
    double rel = fabs((double)g[e] - fd) / fmax(fabs(fd), GC_FLOOR);
    if (!(rel <= GC_RTOL))
      fail_msg("%s: d/d %s[%lld]: analytic %.9g, finite difference %.9g: relative error "
               "%.3g > %g", name, what, (long long)e, (double)g[e], fd, rel, GC_RTOL);
    worst = fmax(worst, rel);
  }
  return worst;
}

/* Random f32 input for dom object o (see the top of this file). */
static inline float *gc_random_input(gc_run *r, ct_rng *rng, const ct_object *o, int64_t n) {
  float span = o->role == CT_ROLE_DIST ? 2.0f : r->c->span > 0.0f ? r->c->span : 1.0f;
  float *x = gc_alloc(r, n, sizeof *x);
  ct_rng_fill(rng, x, n, -span, span);
  if (o->role == CT_ROLE_DIST || o->role == CT_ROLE_ATTN) {
    int64_t c = o->dims[o->rank - 1];
    double *xd = gc_to_double(r, x, n), *pd = gc_alloc(r, n, sizeof *pd);
    if (o->role == CT_ROLE_DIST)
      softmax_double(n / c, c, xd, pd);
    else
      causal_softmax_double(n / (c * c), c, xd, pd);
    for (int64_t i = 0; i < n; i++) x[i] = (float)pd[i];
  }
  return x;
}

/* One random point of case c, its worst errors folded into acc. */
static inline void gc_point(const gc_case *c, uint64_t seed, gc_worst *acc) {
  gc_run r = {.c = c};
  ct_rng rng = {seed};
  float *y[GC_MAX] = {0}, *y2[GC_MAX] = {0}, *gx[GC_MAX] = {0}, *gx2[GC_MAX] = {0};
  float *gp[GC_MAX] = {0}, *gp2[GC_MAX] = {0};
  r.n_in = ct_morphism_dom_count(c->m);
  r.n_out = ct_morphism_cod_count(c->m);
  assert_true(r.n_in <= GC_MAX && r.n_out <= GC_MAX);
  while (r.n_par < GC_MAX && c->params[r.n_par]) r.n_par++;

  for (int k = 0; k < r.n_par; k++) {
    r.n_p[k] = ct_param_numel(c->params[k]);
    float *pv = gc_alloc(&r, r.n_p[k], sizeof *pv);
    ct_rng_fill(&rng, pv, r.n_p[k], -0.5f, 0.5f);
    CT_ASSERT_OK(ct_param_set(c->params[k], pv, r.n_p[k]));
    r.v.p[k] = gc_to_double(&r, pv, r.n_p[k]);
    gp[k] = gc_alloc(&r, r.n_p[k], sizeof(float));
    gp2[k] = gc_alloc(&r, r.n_p[k], sizeof(float));
  }
  for (int i = 0; i < r.n_in; i++) {
    const ct_object *o = ct_morphism_dom(c->m, i);
    r.n_x[i] = ct_object_numel(o);
    if (o->dtype == CT_I32) {
      if (!c->ids[i]) fail_msg("%s: no ids given for i32 input %d", c->name, i);
      r.in[i] = r.v.ids[i] = c->ids[i];
      continue;
    }
    float *x = gc_random_input(&r, &rng, o, r.n_x[i]);
    r.in[i] = x;
    r.v.x[i] = gc_to_double(&r, x, r.n_x[i]);
    gx[i] = gc_alloc(&r, r.n_x[i], sizeof(float));
    gx2[i] = gc_alloc(&r, r.n_x[i], sizeof(float));
  }
  for (int j = 0; j < r.n_out; j++) {
    const ct_object *o = ct_morphism_cod(c->m, j);
    assert_int_equal(o->dtype, CT_F32);
    r.n_y[j] = ct_object_numel(o);
    r.w[j] = gc_alloc(&r, r.n_y[j], sizeof(float));
    ct_rng_fill(&rng, r.w[j], r.n_y[j], -1.0f, 1.0f);
    r.wd[j] = gc_to_double(&r, r.w[j], r.n_y[j]);
    r.y[j] = gc_alloc(&r, r.n_y[j], sizeof(double));
    y[j] = gc_alloc(&r, r.n_y[j], sizeof(float));
    y2[j] = gc_alloc(&r, r.n_y[j], sizeof(float));
  }

  /* Two runs of one plan: the second must reproduce the first exactly (the
   * reverse zeroes parameter gradients rather than accumulating across runs). */
  ct_plan *plan = NULL;
  CT_ASSERT_OK(ct_compile(&plan, c->m, cpu, CT_PLAN_REVERSE));
  gc_library_pass(plan, &r, y, gx, gp);
  gc_library_pass(plan, &r, y2, gx2, gp2);
  ct_plan_free(plan);
  for (int i = 0; i < r.n_in; i++)
    if (gx[i] && memcmp(gx[i], gx2[i], (size_t)r.n_x[i] * sizeof(float)) != 0)
      fail_msg("%s (seed %llu): input %d cotangent differs between two identical runs", c->name,
               (unsigned long long)seed, i);
  for (int k = 0; k < r.n_par; k++)
    if (memcmp(gp[k], gp2[k], (size_t)r.n_p[k] * sizeof(float)) != 0)
      fail_msg("%s (seed %llu): gradient of %s differs between two identical runs", c->name,
               (unsigned long long)seed, ct_param_name(c->params[k]));

  /* Forward against the double forward. */
  gc_objective(&r);
  for (int j = 0; j < r.n_out; j++)
    for (int64_t e = 0; e < r.n_y[j]; e++) {
      double b = r.y[j][e], q = fabs((double)y[j][e] - b) / (1e-5 + 1e-4 * fabs(b));
      if (!(q <= 1.0))
        fail_msg("%s (seed %llu): output %d[%lld] = %.9g, double forward %.9g", c->name,
                 (unsigned long long)seed, j, (long long)e, (double)y[j][e], b);
      acc->fwd = fmax(acc->fwd, q);
    }

  /* Every f32 input and every parameter against central differences. */
  char what[96];
  int64_t zeros = 0;
  for (int i = 0; i < r.n_in; i++)
    if (gx[i]) {
      snprintf(what, sizeof what, "input %d", i);
      acc->grad = fmax(acc->grad, gc_fd_check(gc_objective, &r, r.v.x[i], r.n_x[i], gx[i], c->name,
                                              what, &zeros));
      acc->checked += r.n_x[i];
    }
  for (int k = 0; k < r.n_par; k++) {
    snprintf(what, sizeof what, "param %s", ct_param_name(c->params[k]));
    acc->grad = fmax(acc->grad, gc_fd_check(gc_objective, &r, r.v.p[k], r.n_p[k], gp[k], c->name,
                                            what, &zeros));
    acc->checked += r.n_p[k];
  }
  for (int q = 0; q < r.n_pool; q++) free(r.pool[q]);
}

/* Runs the whole check for one case at each of its points; prints one line
 * and returns the worst gradient relative error. */
static inline double gradcheck(const gc_case *c) {
  gc_worst w = {0};
  int points = c->points > 0 ? c->points : 1;
  for (int s = 0; s < points; s++) gc_point(c, c->seed + (uint64_t)s, &w);
  print_message("    %-*s forward %.2e of tol, %*lld grads, worst rel err %.2e\n", GC_NAME_WIDTH,
                c->name, w.fwd, GC_COUNT_WIDTH, (long long)w.checked, w.grad);
  return w.grad;
}

#endif
