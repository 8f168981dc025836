/* SPDX-License-Identifier: MIT */
/* Objects: validated constructors, equality over dtype, role and shape. */
#include "ct_test.h"

static void test_make_and_describe(void **state) {
  ct_object o;
  int64_t d[2] = {7, 4};
  CT_ASSERT_OK(ct_object_make(&o, CT_F32, CT_ROLE_HIDDEN, 2, d));
  assert_int_equal(ct_object_numel(&o), 28);
  assert_int_equal(ct_object_bytes(&o), 112);
  char buf[64];
  assert_string_equal(ct_object_str(&o, buf, sizeof buf), "HIDDEN f32[7,4]");
  CT_ASSERT_OK(ct_object_tokens(&o, 7));
  assert_string_equal(ct_object_str(&o, buf, sizeof buf), "TOKENS i32[7]");
  CT_ASSERT_OK(ct_object_loss(&o));
  assert_int_equal(o.rank, 0);
  assert_int_equal(ct_object_numel(&o), 1);
  assert_string_equal(ct_object_str(&o, buf, sizeof buf), "LOSS f32[]");
}

static void test_equality_compares_all_three(void **state) {
  ct_object a, b;
  CT_ASSERT_OK(ct_object_matrix(&a, CT_ROLE_HIDDEN, 3, 5));
  CT_ASSERT_OK(ct_object_matrix(&b, CT_ROLE_HIDDEN, 3, 5));
  assert_true(ct_object_equal(&a, &b));
  CT_ASSERT_OK(ct_object_matrix(&b, CT_ROLE_LOGITS, 3, 5)); /* role differs */
  assert_false(ct_object_equal(&a, &b));
  CT_ASSERT_OK(ct_object_matrix(&b, CT_ROLE_HIDDEN, 5, 3)); /* shape differs */
  assert_false(ct_object_equal(&a, &b));
  int64_t d3[3] = {3, 5, 1};
  CT_ASSERT_OK(ct_object_make(&b, CT_F32, CT_ROLE_HIDDEN, 3, d3)); /* rank differs */
  assert_false(ct_object_equal(&a, &b));
  ct_object t1, t2;
  CT_ASSERT_OK(ct_object_tokens(&t1, 15));
  int64_t n = 15;
  CT_ASSERT_OK(ct_object_make(&t2, CT_I32, CT_ROLE_TOKENS, 1, &n));
  assert_true(ct_object_equal(&t1, &t2));
  assert_false(ct_object_equal(&t1, NULL));
}

static void test_validation(void **state) {
  ct_object o;
  int64_t bad[2] = {3, 0};
  CT_ASSERT_STATUS(ct_object_make(&o, CT_F32, CT_ROLE_HIDDEN, 2, bad), CT_ERR_SHAPE);
  CT_ASSERT_MESSAGE_HAS("dimension 1 is 0");
  int64_t ok[5] = {1, 2, 3, 4, 5};
  CT_ASSERT_STATUS(ct_object_make(&o, CT_F32, CT_ROLE_HIDDEN, 5, ok), CT_ERR_INVALID_ARG);
  CT_ASSERT_STATUS(ct_object_make(&o, CT_F32, CT_ROLE_TOKENS, 1, ok), CT_ERR_SHAPE);
  CT_ASSERT_MESSAGE_HAS("TOKENS needs dtype i32");
  CT_ASSERT_STATUS(ct_object_make(&o, CT_I32, CT_ROLE_DIST, 1, ok), CT_ERR_SHAPE);
  CT_ASSERT_STATUS(ct_object_make(&o, CT_F32, CT_ROLE_LOSS, 1, ok), CT_ERR_SHAPE);
  CT_ASSERT_STATUS(ct_object_make(&o, CT_F32, (ct_role)42, 1, ok), CT_ERR_INVALID_ARG);
}

static void test_book_initialiser(void **state) {
  /* value(r, c) = ((((r*cols + c)*37 + seed*101) mod 1000) / 1000 - 0.5) * 0.2, by hand:
   * seed 1, (0,0): 101 -> -0.0798; (0,1): 138 -> -0.0724; (1,0) with cols 4: 249 -> -0.0502 */
  ct_param *p;
  int64_t d[2] = {5, 4};
  CT_ASSERT_OK(ct_param_new(&p, "E", 2, d));
  CT_ASSERT_OK(ct_param_init_book(p, 1));
  float v[20];
  CT_ASSERT_OK(ct_param_get(p, v, 20));
  assert_true(fabsf(v[0] - -0.0798f) < 1e-7f);
  assert_true(fabsf(v[1] - -0.0724f) < 1e-7f);
  assert_true(fabsf(v[4] - -0.0502f) < 1e-7f);
  /* seed 2, [4,5], (3,4): ((19*37 + 202) mod 1000) = 905 -> 0.081 */
  ct_param *w;
  int64_t dw[2] = {4, 5};
  CT_ASSERT_OK(ct_param_new(&w, "W", 2, dw));
  CT_ASSERT_OK(ct_param_init_book(w, 2));
  float x[20];
  CT_ASSERT_OK(ct_param_get(w, x, 20));
  assert_true(fabsf(x[19] - 0.081f) < 1e-7f);
  ct_param_free(p);
  ct_param_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_make_and_describe),
      cmocka_unit_test(test_equality_compares_all_three),
      cmocka_unit_test(test_validation),
      cmocka_unit_test(test_book_initialiser),
  };
  return CT_RUN_TESTS("object", tests, NULL, NULL);
}
