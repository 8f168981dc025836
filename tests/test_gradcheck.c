/* SPDX-License-Identifier: MIT */
/* Gradient checks against finite differences in double, on the CPU reference.
 *
 * For every generator in generators.h, for tied weights and for composites:
 * the driver of gradcheck.h (gradcheck(): outputs against an independent
 * double forward written here, every input cotangent and parameter gradient
 * against central differences of it, exact zeros where the loss does not
 * depend on an element, two identical runs bit for bit), one random point per
 * case; a case is a morphism, its parameters, its token ids and its double
 * forward. */
#include "gradcheck.h"

#define GC_TMP 256 /* scratch doubles a composite's forward may use per intermediate */

/* Shapes the forwards here read: rows (product of the leading dims), k the
 * input width, m a linear's output width, c the classes / vocabulary. */
struct gc_dims {
  int64_t rows, k, m, c;
};

/* ---- the double forwards of this suite ------------------------------------ */

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
  for (int64_t i = 0; i < rows; i++) sum += fmin(nll_logits_double(c, &x[i * c], t[i]), -log(1e-9));
  return sum / (double)rows;
}

/* ---- building blocks ----------------------------------------------------- */

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
  embedding_double(d->rows, d->k, v->ids[0], v->p[0], y[0]);
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
  gc_case c = {"embedding TOKENS[6] -> [6,5]", m, {E}, {ids}, fwd_embedding,
               &(gc_dims){6, 5, 0, 7}, .seed = 11};
  gradcheck(&c);
  ct_morphism_free(m);
  ct_param_free(E);
}

static void fwd_linear(const gc_dims *d, const gc_vals *v, double *const *y) {
  linear_double(d->rows, d->k, d->m, v->x[0], v->p[0], v->p[1], y[0]);
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
  gc_case c = {name, m, {W, b}, {0}, fwd_linear,
               &(gc_dims){ct_object_numel(&x) / k, k, m_out, 0}, .seed = seed};
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
  softmax_double(d->rows, d->c, v->x[0], y[0]);
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
    gc_case c = {names[s], m, {0}, {0}, fwd_softmax,
                 &(gc_dims){ct_object_numel(&lg) / 7, 0, 0, 7},
                 .seed = 31 + (uint64_t)s};
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
  gc_case c = {"cross_entropy DIST[3,7]", m, {0}, {NULL, t}, fwd_xent,
               &(gc_dims){3, 0, 0, 7}, .seed = 42};
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
               &(gc_dims){3, 0, 0, 7}, .seed = 52};
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
    gc_case c = {names[s], ms[s], {0}, {0}, fwds[s], &(gc_dims){3, 5, 0, 0},
                 .seed = 61 + (uint64_t)s};
    gradcheck(&c);
  }
  free_all(ms, 3);
}

/* ---- weight tying ------------------------------------------------------------ */

/* linear(x0; W, b1) (x) linear(x1; W, b2), W shared. */
static void fwd_tied_side_by_side(const gc_dims *d, const gc_vals *v, double *const *y) {
  linear_double(d->rows, d->k, d->m, v->x[0], v->p[0], v->p[1], y[0]);
  linear_double(d->rows, d->k, d->m, v->x[1], v->p[0], v->p[2], y[1]);
}

/* linear(linear(x; W, b) -> HIDDEN; W) -> LOGITS, W square and shared. */
static void fwd_tied_chain(const gc_dims *d, const gc_vals *v, double *const *y) {
  double h[GC_TMP];
  assert_true(d->rows * d->k <= GC_TMP);
  linear_double(d->rows, d->k, d->k, v->x[0], v->p[0], v->p[1], h);
  linear_double(d->rows, d->k, d->k, h, v->p[0], NULL, y[0]);
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
                &(gc_dims){3, 5, 7, 0}, .seed = 71};
  gradcheck(&c1);
  ct_morphism *s1 = linear(&x, CT_ROLE_HIDDEN, S, bs), *s2 = linear(&x, CT_ROLE_LOGITS, S, NULL);
  ct_morphism *chain = mk_then(s1, s2);
  gc_case c2 = {"tied S: linear ; linear", chain, {S, bs}, {0}, fwd_tied_chain,
                &(gc_dims){3, 5, 5, 0}, .seed = 72};
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
  embedding_double(d->rows, d->k, v->ids[0], v->p[0], h);
  linear_double(d->rows, d->k, d->c, h, v->p[1], v->p[2], lg);
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
               fwd_embed_linear_xent, &(gc_dims){n, D, V, V}, .seed = 81};
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
  linear_double(d->rows, d->k, d->k, v->x[0], v->p[0], v->p[1], h);
  for (int64_t e = 0; e < n; e++) h[e] += v->x[0][e];
  linear_double(d->rows, d->k, d->c, h, v->p[2], v->p[3], lg);
  softmax_double(d->rows, d->c, lg, y[0]);
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
               fwd_residual, &(gc_dims){n, D, 0, C}, .seed = 91};
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
