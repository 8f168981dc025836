/* SPDX-License-Identifier: MIT */
/* The execution trace is a monoid: empty trace is the unit, concatenation associates. */
#include "ct_test.h"

static ct_trace random_trace(ct_rng *r, size_t n) {
  ct_trace t;
  ct_trace_init(&t);
  for (size_t i = 0; i < n; i++) {
    ct_trace_event e;
    memset(&e, 0, sizeof e);
    snprintf(e.op, sizeof e.op, "op%d", ct_rng_int(r, 100));
    snprintf(e.shape, sizeof e.shape, "HIDDEN f32[%d,4]", 1 + ct_rng_int(r, 9));
    e.flops = ct_rng_int(r, 1000);
    e.bytes = ct_rng_int(r, 1000);
    e.seconds = ct_rng_uniform(r, 0, 1);
    CT_ASSERT_OK(ct_trace_append(&t, &e));
  }
  return t;
}

static void test_unit_laws(void **state) {
  ct_rng r = {11};
  ct_trace e, t = random_trace(&r, 5), left, right;
  ct_trace_init(&e);
  CT_ASSERT_OK(ct_trace_concat(&left, &e, &t));
  CT_ASSERT_OK(ct_trace_concat(&right, &t, &e));
  assert_true(ct_trace_equal(&left, &t));
  assert_true(ct_trace_equal(&right, &t));
  ct_trace ee;
  CT_ASSERT_OK(ct_trace_concat(&ee, &e, &e));
  assert_int_equal(ee.count, 0);
  ct_trace_free(&left);
  ct_trace_free(&right);
  ct_trace_free(&ee);
  ct_trace_free(&t);
}

static void test_associativity(void **state) {
  ct_rng r = {12};
  for (int trial = 0; trial < 20; trial++) {
    ct_trace a = random_trace(&r, (size_t)ct_rng_int(&r, 6)), b = random_trace(&r, (size_t)ct_rng_int(&r, 6)),
             c = random_trace(&r, (size_t)ct_rng_int(&r, 6));
    ct_trace ab, ab_c, bc, a_bc;
    CT_ASSERT_OK(ct_trace_concat(&ab, &a, &b));
    CT_ASSERT_OK(ct_trace_concat(&ab_c, &ab, &c));
    CT_ASSERT_OK(ct_trace_concat(&bc, &b, &c));
    CT_ASSERT_OK(ct_trace_concat(&a_bc, &a, &bc));
    assert_true(ct_trace_equal(&ab_c, &a_bc));
    assert_int_equal(ab_c.count, a.count + b.count + c.count);
    ct_trace *all[] = {&a, &b, &c, &ab, &ab_c, &bc, &a_bc};
    for (int i = 0; i < 7; i++) ct_trace_free(all[i]);
  }
}

static void test_totals_are_a_monoid_homomorphism(void **state) {
  /* totals(a ++ b) == totals(a) + totals(b) */
  ct_rng r = {13};
  ct_trace a = random_trace(&r, 4), b = random_trace(&r, 7), ab;
  CT_ASSERT_OK(ct_trace_concat(&ab, &a, &b));
  double fa, ba, sa, fb, bb, sb, f, by, s;
  ct_trace_totals(&a, &fa, &ba, &sa);
  ct_trace_totals(&b, &fb, &bb, &sb);
  ct_trace_totals(&ab, &f, &by, &s);
  assert_true(f == fa + fb && by == ba + bb);
  assert_true(fabs(s - (sa + sb)) < 1e-12);
  ct_trace_free(&a);
  ct_trace_free(&b);
  ct_trace_free(&ab);
}

static void test_plan_trace_is_a_concatenation(void **state) {
  /* Tracing two runs gives the concatenation of their traces (up to timings). */
  const ct_backend *be;
  CT_ASSERT_OK(ct_backend_get("cpu", &be));
  ct_object x;
  CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_LOGITS, 3, 5));
  ct_morphism *m;
  CT_ASSERT_OK(ct_softmax(&m, &x));
  ct_plan *p;
  CT_ASSERT_OK(ct_compile(&p, m, be, CT_PLAN_REVERSE));
  float in[15] = {0}, g[15] = {0};
  CT_ASSERT_OK(ct_plan_set_input(p, 0, in, 15));
  CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, g, 15));
  CT_ASSERT_OK(ct_plan_set_tracing(p, true));
  CT_ASSERT_OK(ct_plan_forward(p));
  ct_trace t1, t2, both;
  CT_ASSERT_OK(ct_plan_take_trace(p, &t1));
  CT_ASSERT_OK(ct_plan_reverse(p));
  CT_ASSERT_OK(ct_plan_take_trace(p, &t2));
  assert_int_equal(t1.count, 1);
  assert_int_equal(t2.count, 1);
  assert_string_equal(t1.events[0].op, "softmax");
  assert_string_equal(t2.events[0].op, "softmax.reverse");
  assert_string_equal(t1.events[0].shape, "LOGITS f32[3,5]");
  assert_true(t1.events[0].flops > 0);
  CT_ASSERT_OK(ct_trace_concat(&both, &t1, &t2));
  assert_int_equal(both.count, 2);
  ct_trace_free(&t1);
  ct_trace_free(&t2);
  ct_trace_free(&both);
  ct_plan_free(p);
  ct_morphism_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unit_laws),
      cmocka_unit_test(test_associativity),
      cmocka_unit_test(test_totals_are_a_monoid_homomorphism),
      cmocka_unit_test(test_plan_trace_is_a_concatenation),
  };
  return CT_RUN_TESTS("trace", tests, NULL, NULL);
}
