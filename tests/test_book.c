/* SPDX-License-Identifier: MIT */
/* The book's walkthrough against an independent double-precision re-derivation
 * (the same arithmetic as tools/book_reference.py). */
#include "ct_test.h"

enum { V = CT_BOOK_VOCAB, D = CT_BOOK_DMODEL, P = CT_BOOK_PAIRS };

typedef struct ref_model {
  double E[V][D], W[D][V], b[V];
} ref_model;

static double book_value(int r, int c, int cols, int seed) {
  float v = ((float)(((r * cols + c) * 37 + seed * 101) % 1000) / 1000.0f - 0.5f) * 0.2f;
  return (double)v;
}

static void ref_probs(const ref_model *m, int tok, double p[V]) {
  double z[V], mx = -INFINITY, s = 0;
  for (int j = 0; j < V; j++) {
    z[j] = m->b[j];
    for (int k = 0; k < D; k++) z[j] += m->E[tok][k] * m->W[k][j];
    if (z[j] > mx) mx = z[j];
  }
  for (int j = 0; j < V; j++) s += (p[j] = exp(z[j] - mx));
  for (int j = 0; j < V; j++) p[j] /= s;
}

static const int seq[8] = {1, 2, 3, 4, 1, 2, 3, 4};

static double ref_loss(const ref_model *m) {
  double l = 0, p[V];
  for (int i = 0; i < P; i++) {
    ref_probs(m, seq[i], p);
    l -= log(fmax(p[seq[i + 1]], 1e-9));
  }
  return l / P;
}

static void ref_step(ref_model *m, double lr) {
  double gE[V][D] = {{0}}, gW[D][V] = {{0}}, gb[V] = {0}, p[V];
  for (int i = 0; i < P; i++) {
    int x = seq[i], t = seq[i + 1];
    ref_probs(m, x, p);
    for (int j = 0; j < V; j++) {
      double dz = (p[j] - (j == t)) / P;
      gb[j] += dz;
      for (int k = 0; k < D; k++) {
        gW[k][j] += m->E[x][k] * dz;
        gE[x][k] += m->W[k][j] * dz;
      }
    }
  }
  for (int r = 0; r < V; r++)
    for (int c = 0; c < D; c++) m->E[r][c] -= lr * gE[r][c];
  for (int r = 0; r < D; r++)
    for (int c = 0; c < V; c++) m->W[r][c] -= lr * gW[r][c];
  for (int j = 0; j < V; j++) m->b[j] -= lr * gb[j];
}

static void assert_rel(double got, double want, double tol, const char *what) {
  double rel = fabs(got - want) / fmax(fabs(want), 1e-30);
  print_message("    %-18s ctml %.9g  reference %.9g  rel %.2g\n", what, got, want, rel);
  if (!(rel <= tol)) fail_msg("%s: %.9g vs reference %.9g (rel %g > %g)", what, got, want, rel, tol);
}

static void test_walkthrough_matches_reference(void **state) {
  const ct_backend *be;
  CT_ASSERT_OK(ct_backend_get("cpu", &be));
  ct_book_result r;
  CT_ASSERT_OK(ct_book_run(be, &r, NULL));
  ref_model m;
  for (int i = 0; i < V; i++) {
    m.b[i] = 0;
    for (int k = 0; k < D; k++) {
      m.E[i][k] = book_value(i, k, D, 1);
      m.W[k][i] = book_value(k, i, V, 2);
    }
  }
  double p[V];
  ref_probs(&m, 1, p);
  for (int j = 0; j < V; j++) {
    char what[32];
    snprintf(what, sizeof what, "p(%s | I)", ct_book_vocab[j]);
    assert_rel(r.p_next_given_I[j], p[j], 1e-6, what);
  }
  assert_rel(r.loss_love, -log(p[2]), 1e-6, "loss_love");
  assert_rel(r.loss_before, ref_loss(&m), 1e-6, "loss_before");
  for (int s = 0; s < CT_BOOK_STEPS; s++) ref_step(&m, 1.0);
  assert_rel(r.loss_after, ref_loss(&m), 1e-4, "loss_after");
  assert_true(r.composed_equals_direct);
  assert_true(r.loss_after < 0.05f && r.loss_before > 1.6f);
  /* the trained model has learned the cycle I -> love -> Rust -> . -> I */
  for (int i = 0; i < P; i++) {
    int best = 0;
    for (int j = 1; j < V; j++)
      if (r.train_probs[i][j] > r.train_probs[i][best]) best = j;
    assert_int_equal(best, seq[i + 1]);
  }
}

static void test_walkthrough_trace(void **state) {
  const ct_backend *be;
  CT_ASSERT_OK(ct_backend_get("cpu", &be));
  ct_book_result r;
  ct_trace t;
  CT_ASSERT_OK(ct_book_run(be, &r, &t));
  /* one step: embedding, linear, fused loss forward; their three reverses */
  assert_int_equal(t.count, 6);
  assert_string_equal(t.events[0].op, "embedding");
  assert_string_equal(t.events[2].op, "softmax_cross_entropy");
  assert_string_equal(t.events[5].op, "embedding.reverse");
  double flops;
  ct_trace_totals(&t, &flops, NULL, NULL);
  /* linear forward 2*7*4*5 + 7*5 and reverse 2*(2*7*4*5) + 7*5 dominate */
  assert_true(flops >= 2 * 7 * 4 * 5 * 3);
  ct_trace_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_walkthrough_matches_reference),
      cmocka_unit_test(test_walkthrough_trace),
  };
  return CT_RUN_TESTS("book", tests, NULL, NULL);
}
