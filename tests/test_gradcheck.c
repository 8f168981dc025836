/* Gradient checks against finite differences in double, on the CPU reference.
 *
 * For every generator in generators.h, for tied weights and for composites:
 * compile the morphism with CT_PLAN_REVERSE, feed random inputs, parameters
 * and output cotangents w (fixed seeds), run forward and reverse, and compare
 *   - the outputs with an independent double-precision forward written here
 *     (|a-b| <= 1e-5 + 1e-4|b|, the DESIGN.md fp32 forward tolerance);
 *   - every input cotangent (f32 inputs) and every parameter gradient with
 *     central differences, in double, of L(x, params) = sum_j w_j . y_j over
 *     the f32 outputs, computed with that same double forward (never the
 *     library): relative error <= 1e-3 (DESIGN.md).
 * Each case also runs forward and reverse a second time and requires the same
 * gradients bit for bit: parameter gradients are zeroed by each reverse, not
 * accumulated across runs.
 *
 * One generic driver, gradcheck(), does all of this; a case is a morphism,
 * its parameters, its token ids and its double forward. */
#include "ct_test.h"

#define GC_MAX 6    /* inputs, outputs or parameters of one case, at most */
#define GC_TMP 256  /* scratch doubles a composite's forward may use per intermediate */
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

static const ct_backend *cpu;

static int setup(void **state) {
  (void)state;
  return ct_backend_get("cpu", &cpu) == CT_OK ? 0 : -1;
}

/* ---- the independent double-precision forward ------------------------- */

/* y[rows,m] = x[rows,k] W[k,m] (+ b[m]). */
static void linear_fwd_double(int64_t rows, int64_t k, int64_t m, const double *x,
                              const double *W, const double *b, double *y) {
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < m; j++) {
      double acc = b ? b[j] : 0.0;
      for (int64_t t = 0; t < k; t++) acc += x[i * k + t] * W[t * m + j];
      y[i * m + j] = acc;
    }
}

/* Row-wise softmax over c columns, max-subtracted. */
static void softmax_fwd_double(int64_t rows, int64_t c, const double *x, double *y) {
  for (int64_t i = 0; i < rows; i++) {
    const double *xr = &x[i * c];
    double mx = xr[0], sum = 0.0;
    for (int64_t j = 1; j < c; j++) mx = fmax(mx, xr[j]);
    for (int64_t j = 0; j < c; j++) sum += exp(xr[j] - mx);
    for (int64_t j = 0; j < c; j++) y[i * c + j] = exp(xr[j] - mx) / sum;
  }
}

/* Mean over rows of -ln max(p[row, t[row]], 1e-9). */
static double xent_fwd_double(int64_t rows, int64_t c, const double *p, const int32_t *t) {
  double sum = 0.0;
  for (int64_t i = 0; i < rows; i++) sum -= log(fmax(p[i * c + t[i]], 1e-9));
  return sum / (double)rows;
}

/* The same on logits, through log-sum-exp rather than through a softmax:
 * -ln p[t] = lse(x) - x[t], clamped as the cross-entropy clamps p. */
static double softmax_xent_fwd_double(int64_t rows, int64_t c, const double *x,
                                      const int32_t *t) {
  double sum = 0.0;
  for (int64_t i = 0; i < rows; i++) {
    const double *xr = &x[i * c];
    double mx = xr[0], s = 0.0;
    for (int64_t j = 1; j < c; j++) mx = fmax(mx, xr[j]);
    for (int64_t j = 0; j < c; j++) s += exp(xr[j] - mx);
    sum += fmin(mx + log(s) - xr[t[i]], -log(1e-9));
  }
  return sum / (double)rows;
}

/* y[i,:] = table[ids[i],:]. */
static void embedding_fwd_double(int64_t n, int64_t width, const int32_t *ids,
                                 const double *table, double *y) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < width; j++) y[i * width + j] = table[(int64_t)ids[i] * width + j];
}

/* ---- the generic driver -------------------------------------------------- */

/* The point the double forward is evaluated at. */
typedef struct gc_vals {
  double *x[GC_MAX];          /* f32 inputs by dom index (NULL for i32 inputs) */
  const int32_t *ids[GC_MAX]; /* i32 inputs by dom index (NULL for f32 inputs) */
  double *p[GC_MAX];          /* parameters, in the case's order (NULL past the last) */
} gc_vals;

/* Shapes a case's forward needs: rows (product of the leading dims), k the
 * input width, m a linear's output width, c the classes / vocabulary. */
typedef struct gc_dims {
  int64_t rows, k, m, c;
} gc_dims;

/* Writes every output, in double, into y[j] (cod index j). */
typedef void (*gc_fwd)(const gc_dims *d, const gc_vals *v, double *const *y);

typedef struct gc_case {
  const char *name;
  const ct_morphism *m;
  ct_param *params[GC_MAX];   /* NULL-terminated; the driver gives them random values */
  const int32_t *ids[GC_MAX]; /* by dom index, for the i32 inputs */
  gc_fwd fwd;
  gc_dims d;
  uint64_t seed;
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

static void *gc_alloc(gc_run *r, int64_t n, size_t size) {
  assert_true(r->n_pool < (int)(sizeof r->pool / sizeof r->pool[0]));
  void *q = calloc((size_t)(n > 0 ? n : 1), size);
  assert_non_null(q);
  return r->pool[r->n_pool++] = q;
}

static double *gc_to_double(gc_run *r, const float *f, int64_t n) {
  double *d = gc_alloc(r, n, sizeof *d);
  for (int64_t i = 0; i < n; i++) d[i] = f[i];
  return d;
}

/* L = sum_j w_j . y_j with y from the double forward at r->v. */
static double gc_objective(const gc_run *r) {
  r->c->fwd(&r->c->d, &r->v, r->y);
  double L = 0.0;
  for (int j = 0; j < r->n_out; j++)
    for (int64_t e = 0; e < r->n_y[j]; e++) L += r->wd[j][e] * r->y[j][e];
  return L;
}

/* One forward and reverse run of plan p: inputs and cotangents in; outputs,
 * input cotangents (f32 inputs) and parameter gradients out. */
static void gc_library_pass(ct_plan *p, const gc_run *r, float **y, float **gx, float **gp) {
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

/* Central differences of L along every element of t (a tensor r->v points
 * at), against the analytic gradient g. Where L does not move at all in
 * double (fd exactly 0: L does not depend on the element, e.g. an unused
 * embedding row or a discarded input) the gradient must be exactly 0.
 * Returns the worst relative error. */
static double gc_check_tensor(const gc_run *r, double *t, int64_t n, const float *g,
                              const char *what) {
  double worst = 0.0;
  for (int64_t e = 0; e < n; e++) {
    double keep = t[e], hi = keep + GC_H, lo = keep - GC_H;
    t[e] = hi;
    double l_hi = gc_objective(r);
    t[e] = lo;
    double l_lo = gc_objective(r);
    t[e] = keep;
    double fd = (l_hi - l_lo) / (hi - lo);
    if (fd == 0.0) {
      if (g[e] != 0.0f)
        fail_msg("%s: d/d %s[%lld] = %.9g, but L does not depend on it: must be exactly 0",
                 r->c->name, what, (long long)e, (double)g[e]);
      continue;
    }
    double rel = fabs((double)g[e] - fd) / fmax(fabs(fd), GC_FLOOR);
    if (!(rel <= GC_RTOL))
      fail_msg("%s: d/d %s[%lld]: analytic %.9g, finite difference %.9g: relative error "
               "%.3g > %g", r->c->name, what, (long long)e, (double)g[e], fd, rel, GC_RTOL);
    if (rel > worst) worst = rel;
  }
  return worst;
}

/* Random f32 input for dom object o: DIST rows are softmaxes of random
 * numbers (every p >= e^-4 / C, far from the 1e-9 clamp), the rest uniform. */
static float *gc_random_input(gc_run *r, ct_rng *rng, const ct_object *o, int64_t n) {
  float *x = gc_alloc(r, n, sizeof *x), span = o->role == CT_ROLE_DIST ? 2.0f : 1.0f;
  ct_rng_fill(rng, x, n, -span, span);
  if (o->role == CT_ROLE_DIST) {
    int64_t c = o->dims[o->rank - 1];
    double *xd = gc_to_double(r, x, n), *pd = gc_alloc(r, n, sizeof *pd);
    softmax_fwd_double(n / c, c, xd, pd);
    for (int64_t i = 0; i < n; i++) x[i] = (float)pd[i];
  }
  return x;
}

/* Runs the whole check for one case; returns the worst gradient relative error. */
static double gradcheck(const gc_case *c) {
  gc_run r = {.c = c};
  ct_rng rng = {c->seed};
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
      fail_msg("%s: input %d cotangent differs between two identical runs", c->name, i);
  for (int k = 0; k < r.n_par; k++)
    if (memcmp(gp[k], gp2[k], (size_t)r.n_p[k] * sizeof(float)) != 0)
      fail_msg("%s: gradient of %s differs between two identical runs", c->name,
               ct_param_name(c->params[k]));

  /* Forward against the double forward. */
  gc_objective(&r);
  double fwd_worst = 0.0;
  for (int j = 0; j < r.n_out; j++)
    for (int64_t e = 0; e < r.n_y[j]; e++) {
      double b = r.y[j][e], q = fabs((double)y[j][e] - b) / (1e-5 + 1e-4 * fabs(b));
      if (!(q <= 1.0))
        fail_msg("%s: output %d[%lld] = %.9g, double forward %.9g", c->name, j, (long long)e,
                 (double)y[j][e], b);
      fwd_worst = fmax(fwd_worst, q);
    }

  /* Every f32 input and every parameter against central differences. */
  double worst = 0.0;
  int64_t checked = 0;
  char what[96];
  for (int i = 0; i < r.n_in; i++)
    if (gx[i]) {
      snprintf(what, sizeof what, "input %d", i);
      worst = fmax(worst, gc_check_tensor(&r, r.v.x[i], r.n_x[i], gx[i], what));
      checked += r.n_x[i];
    }
  for (int k = 0; k < r.n_par; k++) {
    snprintf(what, sizeof what, "param %s", ct_param_name(c->params[k]));
    worst = fmax(worst, gc_check_tensor(&r, r.v.p[k], r.n_p[k], gp[k], what));
    checked += r.n_p[k];
  }
  print_message("    %-34s forward %.2e of tol, %4lld grads, worst rel err %.2e\n", c->name,
                fwd_worst, (long long)checked, worst);
  for (int q = 0; q < r.n_pool; q++) free(r.pool[q]);
  return worst;
}

/* ---- building blocks ----------------------------------------------------- */

static ct_param *new_param(const char *name, int rank, int64_t d0, int64_t d1) {
  int64_t d[2] = {d0, d1};
  ct_param *p = NULL;
  CT_ASSERT_OK(ct_param_new(&p, name, rank, d));
  return p;
}

static ct_morphism *linear(const ct_object *x, ct_role role, ct_param *W, ct_param *b) {
  ct_morphism *r = NULL;
  CT_ASSERT_OK(ct_linear(&r, x, role, W, b));
  return r;
}

static void free_all(ct_morphism **ms, int n) {
  for (int i = 0; i < n; i++) ct_morphism_free(ms[i]);
}

static void random_ids(int32_t *ids, int n, int32_t limit, uint64_t seed) {
  ct_rng r = {seed};
  for (int i = 0; i < n; i++) ids[i] = ct_rng_int(&r, limit);
}

/* ---- the generators, one at a time ------------------------------------------- */

static void fwd_embedding(const gc_dims *d, const gc_vals *v, double *const *y) {
  embedding_fwd_double(d->rows, d->k, v->ids[0], v->p[0], y[0]);
}

static void test_embedding(void **state) {
  (void)state;
  /* Token 3 three times (its row's gradient sums three cotangent rows), rows
   * 2, 4 and 5 of the table unused (their gradient is exactly zero). */
  static const int32_t ids[6] = {3, 0, 3, 6, 1, 3};
  ct_object tk;
  CT_ASSERT_OK(ct_object_tokens(&tk, 6));
  ct_param *E = new_param("E", 2, 7, 5);
  ct_morphism *m = NULL;
  CT_ASSERT_OK(ct_embedding(&m, &tk, E));
  gc_case c = {"embedding TOKENS[6] -> [6,5]", m, {E}, {ids}, fwd_embedding, {6, 5, 0, 7}, 11};
  gradcheck(&c);
  ct_morphism_free(m);
  ct_param_free(E);
}

static void fwd_linear(const gc_dims *d, const gc_vals *v, double *const *y) {
  linear_fwd_double(d->rows, d->k, d->m, v->x[0], v->p[0], v->p[1], y[0]);
}

/* One linear on HIDDEN f32[dims] (last dim 5) -> role f32[..,7]. */
static void linear_case(const char *name, int rank, const int64_t *dims, ct_role role,
                        bool bias, uint64_t seed) {
  ct_object x;
  CT_ASSERT_OK(ct_object_make(&x, CT_F32, CT_ROLE_HIDDEN, rank, dims));
  int64_t k = dims[rank - 1], m_out = 7;
  ct_param *W = new_param("W", 2, k, m_out), *b = bias ? new_param("b", 1, m_out, 0) : NULL;
  ct_morphism *m = linear(&x, role, W, b);
  assert_int_equal(ct_morphism_cod(m, 0)->role, role);
  gc_case c = {name, m, {W, b}, {0}, fwd_linear, {ct_object_numel(&x) / k, k, m_out, 0}, seed};
  gradcheck(&c);
  ct_morphism_free(m);
  ct_param_free(W);
  ct_param_free(b);
}

static void test_linear(void **state) {
  (void)state;
  static const int64_t mat[2] = {3, 5}, cube[3] = {2, 3, 5};
  linear_case("linear [3,5] -> HIDDEN, bias", 2, mat, CT_ROLE_HIDDEN, true, 21);
  linear_case("linear [3,5] -> LOGITS, no bias", 2, mat, CT_ROLE_LOGITS, false, 22);
  linear_case("linear [3,5] -> LOGITS, bias", 2, mat, CT_ROLE_LOGITS, true, 23);
  linear_case("linear [2,3,5] -> HIDDEN, bias", 3, cube, CT_ROLE_HIDDEN, true, 24);
  linear_case("linear [2,3,5] -> HIDDEN, no bias", 3, cube, CT_ROLE_HIDDEN, false, 25);
}

static void fwd_softmax(const gc_dims *d, const gc_vals *v, double *const *y) {
  softmax_fwd_double(d->rows, d->c, v->x[0], y[0]);
}

static void test_softmax(void **state) {
  (void)state;
  static const int64_t mat[2] = {3, 7}, cube[3] = {2, 3, 7};
  const int64_t *dims[2] = {mat, cube};
  const char *names[2] = {"softmax LOGITS[3,7]", "softmax LOGITS[2,3,7]"};
  for (int s = 0; s < 2; s++) {
    ct_object lg;
    CT_ASSERT_OK(ct_object_make(&lg, CT_F32, CT_ROLE_LOGITS, 2 + s, dims[s]));
    ct_morphism *m = NULL;
    CT_ASSERT_OK(ct_softmax(&m, &lg));
    gc_case c = {names[s], m, {0}, {0}, fwd_softmax, {ct_object_numel(&lg) / 7, 0, 0, 7},
                 31 + (uint64_t)s};
    gradcheck(&c);
    ct_morphism_free(m);
  }
}

static void fwd_xent(const gc_dims *d, const gc_vals *v, double *const *y) {
  y[0][0] = xent_fwd_double(d->rows, d->c, v->x[0], v->ids[1]);
}

static void test_cross_entropy(void **state) {
  (void)state;
  ct_object ds, tk;
  CT_ASSERT_OK(ct_object_matrix(&ds, CT_ROLE_DIST, 3, 7));
  CT_ASSERT_OK(ct_object_tokens(&tk, 3));
  int32_t t[3];
  random_ids(t, 3, 7, 41);
  ct_morphism *m = NULL;
  CT_ASSERT_OK(ct_cross_entropy(&m, &ds, &tk));
  gc_case c = {"cross_entropy DIST[3,7]", m, {0}, {NULL, t}, fwd_xent, {3, 0, 0, 7}, 42};
  gradcheck(&c);
  ct_morphism_free(m);
}

static void fwd_softmax_xent(const gc_dims *d, const gc_vals *v, double *const *y) {
  y[0][0] = softmax_xent_fwd_double(d->rows, d->c, v->x[0], v->ids[1]);
}

static void test_softmax_cross_entropy(void **state) {
  (void)state;
  ct_object lg, tk;
  CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, 3, 7));
  CT_ASSERT_OK(ct_object_tokens(&tk, 3));
  int32_t t[3];
  random_ids(t, 3, 7, 51);
  ct_morphism *m = NULL;
  CT_ASSERT_OK(ct_softmax_cross_entropy(&m, &lg, &tk));
  gc_case c = {"softmax_cross_entropy LOGITS[3,7]", m, {0}, {NULL, t}, fwd_softmax_xent,
               {3, 0, 0, 7}, 52};
  gradcheck(&c);
  ct_morphism_free(m);
}

/* copy, add and discard on HIDDEN f32[3,5]: n = 15 elements in rows * k. */
static void fwd_copy(const gc_dims *d, const gc_vals *v, double *const *y) {
  for (int64_t e = 0; e < d->rows * d->k; e++) y[0][e] = y[1][e] = v->x[0][e];
}

static void fwd_add(const gc_dims *d, const gc_vals *v, double *const *y) {
  for (int64_t e = 0; e < d->rows * d->k; e++) y[0][e] = v->x[0][e] + v->x[1][e];
}

static void fwd_discard(const gc_dims *d, const gc_vals *v, double *const *y) {
  (void)d, (void)v, (void)y; /* no outputs: L = 0, so the cotangent must be exactly 0 */
}

static void test_structural(void **state) {
  (void)state;
  ct_object x;
  CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_HIDDEN, 3, 5));
  ct_morphism *ms[3] = {NULL, NULL, NULL};
  CT_ASSERT_OK(ct_copy(&ms[0], &x));
  CT_ASSERT_OK(ct_add(&ms[1], &x));
  CT_ASSERT_OK(ct_discard(&ms[2], &x));
  assert_int_equal(ct_morphism_cod_count(ms[0]), 2);
  assert_int_equal(ct_morphism_dom_count(ms[1]), 2);
  assert_int_equal(ct_morphism_cod_count(ms[2]), 0);
  const char *names[3] = {"copy HIDDEN[3,5]", "add HIDDEN[3,5]", "discard HIDDEN[3,5]"};
  gc_fwd fwds[3] = {fwd_copy, fwd_add, fwd_discard};
  for (int s = 0; s < 3; s++) {
    gc_case c = {names[s], ms[s], {0}, {0}, fwds[s], {3, 5, 0, 0}, 61 + (uint64_t)s};
    gradcheck(&c);
  }
  free_all(ms, 3);
}

/* ---- weight tying ------------------------------------------------------------ */

/* linear(x0; W, b1) (x) linear(x1; W, b2), W shared. */
static void fwd_tied_side_by_side(const gc_dims *d, const gc_vals *v, double *const *y) {
  linear_fwd_double(d->rows, d->k, d->m, v->x[0], v->p[0], v->p[1], y[0]);
  linear_fwd_double(d->rows, d->k, d->m, v->x[1], v->p[0], v->p[2], y[1]);
}

/* linear(linear(x; W, b) -> HIDDEN; W) -> LOGITS, W square and shared. */
static void fwd_tied_chain(const gc_dims *d, const gc_vals *v, double *const *y) {
  double h[GC_TMP];
  assert_true(d->rows * d->k <= GC_TMP);
  linear_fwd_double(d->rows, d->k, d->k, v->x[0], v->p[0], v->p[1], h);
  linear_fwd_double(d->rows, d->k, d->k, h, v->p[0], NULL, y[0]);
}

static void test_weight_tying(void **state) {
  (void)state;
  ct_object x;
  CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_HIDDEN, 3, 5));
  ct_param *W = new_param("W", 2, 5, 7), *b1 = new_param("b1", 1, 7, 0),
           *b2 = new_param("b2", 1, 7, 0), *S = new_param("S", 2, 5, 5),
           *bs = new_param("bs", 1, 5, 0);
  ct_morphism *l1 = linear(&x, CT_ROLE_HIDDEN, W, b1), *l2 = linear(&x, CT_ROLE_LOGITS, W, b2);
  ct_morphism *side = mk_tensor(l1, l2);
  gc_case c1 = {"tied W: linear (x) linear", side, {W, b1, b2}, {0}, fwd_tied_side_by_side,
                {3, 5, 7, 0}, 71};
  gradcheck(&c1);
  ct_morphism *s1 = linear(&x, CT_ROLE_HIDDEN, S, bs), *s2 = linear(&x, CT_ROLE_LOGITS, S, NULL);
  ct_morphism *chain = mk_then(s1, s2);
  gc_case c2 = {"tied S: linear ; linear", chain, {S, bs}, {0}, fwd_tied_chain, {3, 5, 5, 0},
                72};
  gradcheck(&c2);
  ct_morphism *ms[] = {l1, l2, side, s1, s2, chain};
  free_all(ms, 6);
  ct_param *ps[] = {W, b1, b2, S, bs};
  for (int i = 0; i < 5; i++) ct_param_free(ps[i]);
}

/* ---- composites ------------------------------------------------------------- */

/* (embedding ; linear) (x) id_TOKENS ; softmax_cross_entropy. */
static void fwd_embed_linear_xent(const gc_dims *d, const gc_vals *v, double *const *y) {
  double h[GC_TMP], lg[GC_TMP];
  assert_true(d->rows * d->k <= GC_TMP && d->rows * d->c <= GC_TMP);
  embedding_fwd_double(d->rows, d->k, v->ids[0], v->p[0], h);
  linear_fwd_double(d->rows, d->k, d->c, h, v->p[1], v->p[2], lg);
  y[0][0] = softmax_xent_fwd_double(d->rows, d->c, lg, v->ids[1]);
}

static void test_composite_embed_linear_xent(void **state) {
  (void)state;
  const int64_t n = 6, V = 7, D = 5;
  ct_object tk, hid, lg;
  CT_ASSERT_OK(ct_object_tokens(&tk, n));
  CT_ASSERT_OK(ct_object_matrix(&hid, CT_ROLE_HIDDEN, n, D));
  CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, n, V));
  ct_param *E = new_param("E", 2, V, D), *W = new_param("W", 2, D, V), *b = new_param("b", 1, V, 0);
  ct_morphism *emb = NULL, *sxe = NULL;
  CT_ASSERT_OK(ct_embedding(&emb, &tk, E));
  CT_ASSERT_OK(ct_softmax_cross_entropy(&sxe, &lg, &tk));
  ct_morphism *lin = linear(&hid, CT_ROLE_LOGITS, W, b), *idt = mk_identity1(&tk);
  ct_morphism *predict = mk_then(emb, lin), *pair = mk_tensor(predict, idt), *loss = mk_then(pair, sxe);
  static const int32_t ids[6] = {4, 1, 4, 0, 6, 2}, targets[6] = {1, 4, 0, 0, 5, 3};
  gc_case c = {"embedding;linear;softmax_xent", loss, {E, W, b}, {ids, targets},
               fwd_embed_linear_xent, {n, D, V, V}, 81};
  gradcheck(&c);
  ct_morphism *ms[] = {emb, sxe, lin, idt, predict, pair, loss};
  free_all(ms, 7);
  ct_param_free(E);
  ct_param_free(W);
  ct_param_free(b);
}

/* (copy ; (linear (x) id) ; add ; linear ; softmax) (x) discard:
 * a residual block whose second input is dropped. */
static void fwd_residual(const gc_dims *d, const gc_vals *v, double *const *y) {
  double h[GC_TMP], lg[GC_TMP];
  int64_t n = d->rows * d->k;
  assert_true(n <= GC_TMP && d->rows * d->c <= GC_TMP);
  linear_fwd_double(d->rows, d->k, d->k, v->x[0], v->p[0], v->p[1], h);
  for (int64_t e = 0; e < n; e++) h[e] += v->x[0][e];
  linear_fwd_double(d->rows, d->k, d->c, h, v->p[2], v->p[3], lg);
  softmax_fwd_double(d->rows, d->c, lg, y[0]);
}

static void test_composite_residual(void **state) {
  (void)state;
  const int64_t n = 3, D = 5, C = 7;
  ct_object x, lg;
  CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_HIDDEN, n, D));
  CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, n, C));
  ct_param *R = new_param("R", 2, D, D), *br = new_param("br", 1, D, 0),
           *W = new_param("W", 2, D, C), *b = new_param("b", 1, C, 0);
  ct_morphism *cp = NULL, *ad = NULL, *sm = NULL, *dc = NULL;
  CT_ASSERT_OK(ct_copy(&cp, &x));
  CT_ASSERT_OK(ct_add(&ad, &x));
  CT_ASSERT_OK(ct_softmax(&sm, &lg));
  CT_ASSERT_OK(ct_discard(&dc, &x));
  ct_morphism *lr = linear(&x, CT_ROLE_HIDDEN, R, br), *idx = mk_identity1(&x),
              *lw = linear(&x, CT_ROLE_LOGITS, W, b);
  ct_morphism *branch = mk_tensor(lr, idx), *m1 = mk_then(cp, branch), *m2 = mk_then(m1, ad),
              *m3 = mk_then(m2, lw), *m4 = mk_then(m3, sm), *block = mk_tensor(m4, dc);
  assert_int_equal(ct_morphism_dom_count(block), 2);
  assert_int_equal(ct_morphism_cod_count(block), 1);
  gc_case c = {"copy;(linear(x)id);add;linear;softmax (x) discard", block, {R, br, W, b}, {0},
               fwd_residual, {n, D, 0, C}, 91};
  gradcheck(&c);
  ct_morphism *ms[] = {cp, ad, sm, dc, lr, idx, lw, branch, m1, m2, m3, m4, block};
  free_all(ms, 13);
  ct_param *ps[] = {R, br, W, b};
  for (int i = 0; i < 4; i++) ct_param_free(ps[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_embedding),
      cmocka_unit_test(test_linear),
      cmocka_unit_test(test_softmax),
      cmocka_unit_test(test_cross_entropy),
      cmocka_unit_test(test_softmax_cross_entropy),
      cmocka_unit_test(test_structural),
      cmocka_unit_test(test_weight_tying),
      cmocka_unit_test(test_composite_embed_linear_xent),
      cmocka_unit_test(test_composite_residual),
  };
  return CT_RUN_TESTS("gradcheck", tests, setup, NULL);
}
