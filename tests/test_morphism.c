/* SPDX-License-Identifier: MIT */
/* Morphisms as open graphs: the category laws, checked on the graphs themselves. */
#include "ct_test.h"

typedef struct fixture {
  ct_param *E, *W1, *b1, *W2;
  ct_object tok, hid, hid5, logits;
  ct_morphism *embed, *lin1, *lin2, *soft; /* TOKENS -> HIDDEN -> HIDDEN -> LOGITS -> DIST */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  int64_t e[2] = {11, 6}, w1[2] = {6, 5}, b1[1] = {5}, w2[2] = {5, 9};
  if (ct_param_new(&f->E, "E", 2, e) || ct_param_new(&f->W1, "W1", 2, w1) ||
      ct_param_new(&f->b1, "b1", 1, b1) || ct_param_new(&f->W2, "W2", 2, w2) ||
      ct_object_tokens(&f->tok, 3) || ct_object_matrix(&f->hid, CT_ROLE_HIDDEN, 3, 6) ||
      ct_object_matrix(&f->hid5, CT_ROLE_HIDDEN, 3, 5) ||
      ct_object_matrix(&f->logits, CT_ROLE_LOGITS, 3, 9) || ct_embedding(&f->embed, &f->tok, f->E) ||
      ct_linear(&f->lin1, &f->hid, CT_ROLE_HIDDEN, f->W1, f->b1) ||
      ct_linear(&f->lin2, &f->hid5, CT_ROLE_LOGITS, f->W2, NULL) || ct_softmax(&f->soft, &f->logits))
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ct_morphism_free(f->embed);
  ct_morphism_free(f->lin1);
  ct_morphism_free(f->lin2);
  ct_morphism_free(f->soft);
  ct_param_free(f->E);
  ct_param_free(f->W1);
  ct_param_free(f->b1);
  ct_param_free(f->W2);
  free(f);
  return 0;
}

static ct_morphism *identity_on(const ct_morphism *m, bool cod) {
  int n = cod ? ct_morphism_cod_count(m) : ct_morphism_dom_count(m);
  ct_object objs[8];
  for (int i = 0; i < n; i++) objs[i] = *(cod ? ct_morphism_cod(m, i) : ct_morphism_dom(m, i));
  ct_morphism *id = NULL;
  CT_ASSERT_OK(ct_identity(&id, objs, n));
  return id;
}

/* id_cod . f == f == f . id_dom, as graphs. */
static void check_identity_laws(const ct_morphism *f) {
  ct_morphism *idc = identity_on(f, true), *idd = identity_on(f, false);
  ct_morphism *l = mk_compose(idc, f), *r = mk_compose(f, idd);
  assert_true(ct_morphism_equal(l, f));
  assert_true(ct_morphism_equal(r, f));
  ct_morphism *ff = mk_compose(idc, idc); /* id . id == id */
  assert_true(ct_morphism_equal(ff, idc));
  ct_morphism_free(idc);
  ct_morphism_free(idd);
  ct_morphism_free(l);
  ct_morphism_free(r);
  ct_morphism_free(ff);
}

static void test_identity_laws(void **state) {
  fixture *f = *state;
  check_identity_laws(f->embed);
  check_identity_laws(f->soft);
  ct_morphism *chain = mk_compose(f->lin1, f->embed);
  check_identity_laws(chain);
  ct_morphism *par = mk_tensor(f->embed, f->soft);
  check_identity_laws(par);
  ct_morphism_free(chain);
  ct_morphism_free(par);
}

static void test_associativity(void **state) {
  fixture *f = *state;
  /* soft . (lin2 . (lin1 . embed)) == ((soft . lin2) . lin1) . embed == (soft . lin2) . (lin1 . embed) */
  ct_morphism *a1 = mk_compose(f->lin1, f->embed), *a2 = mk_compose(f->lin2, a1), *a = mk_compose(f->soft, a2);
  ct_morphism *b1 = mk_compose(f->soft, f->lin2), *b2 = mk_compose(b1, f->lin1), *b = mk_compose(b2, f->embed);
  ct_morphism *c = mk_compose(b1, a1);
  assert_true(ct_morphism_equal(a, b));
  assert_true(ct_morphism_equal(a, c));
  assert_int_equal(ct_morphism_node_count(a), 4);
  assert_true(ct_object_equal(ct_morphism_dom(a, 0), &f->tok));
  assert_int_equal(ct_morphism_cod(a, 0)->role, CT_ROLE_DIST);
  ct_morphism *all[] = {a1, a2, a, b1, b2, b, c};
  for (int i = 0; i < 7; i++) ct_morphism_free(all[i]);
}

static void test_tensor_laws(void **state) {
  fixture *f = *state;
  /* (f (x) g) (x) h == f (x) (g (x) h); f (x) id_I == f == id_I (x) f */
  ct_morphism *fg = mk_tensor(f->embed, f->lin1), *fg_h = mk_tensor(fg, f->soft);
  ct_morphism *gh = mk_tensor(f->lin1, f->soft), *f_gh = mk_tensor(f->embed, gh);
  assert_true(ct_morphism_equal(fg_h, f_gh));
  assert_int_equal(ct_morphism_dom_count(fg_h), 3);
  assert_int_equal(ct_morphism_cod_count(fg_h), 3);
  assert_int_equal(ct_morphism_cod(fg_h, 1)->role, CT_ROLE_HIDDEN);
  ct_morphism *unit = NULL;
  CT_ASSERT_OK(ct_identity(&unit, NULL, 0));
  ct_morphism *fu = mk_tensor(f->embed, unit), *uf = mk_tensor(unit, f->embed);
  assert_true(ct_morphism_equal(fu, f->embed));
  assert_true(ct_morphism_equal(uf, f->embed));
  ct_morphism *all[] = {fg, fg_h, gh, f_gh, unit, fu, uf};
  for (int i = 0; i < 7; i++) ct_morphism_free(all[i]);
}

static void test_composition_type_error(void **state) {
  fixture *f = *state;
  ct_morphism *bad = (ct_morphism *)0x1;
  /* softmax after embedding: HIDDEN is not LOGITS */
  ct_object h3;
  CT_ASSERT_OK(ct_object_matrix(&h3, CT_ROLE_LOGITS, 3, 6));
  ct_morphism *soft6;
  CT_ASSERT_OK(ct_softmax(&soft6, &h3));
  CT_ASSERT_STATUS(ct_compose(&bad, soft6, f->embed), CT_ERR_SHAPE);
  assert_null(bad);
  CT_ASSERT_MESSAGE_HAS("HIDDEN f32[3,6]");
  CT_ASSERT_MESSAGE_HAS("LOGITS f32[3,6]");
  /* the same widths but wrong order of generators: lin2 expects width 5 */
  CT_ASSERT_STATUS(ct_compose(&bad, f->lin2, f->embed), CT_ERR_SHAPE);
  CT_ASSERT_MESSAGE_HAS("HIDDEN f32[3,6]");
  CT_ASSERT_MESSAGE_HAS("HIDDEN f32[3,5]");
  /* arity mismatch: a two-object codomain into a one-object domain */
  ct_morphism *cp;
  CT_ASSERT_OK(ct_copy(&cp, &f->hid));
  CT_ASSERT_STATUS(ct_compose(&bad, f->lin1, cp), CT_ERR_SHAPE);
  ct_morphism_free(cp);
  ct_morphism_free(soft6);
}

static void test_structural_generators(void **state) {
  fixture *f = *state;
  ct_morphism *cp, *ad, *dc;
  CT_ASSERT_OK(ct_copy(&cp, &f->hid));
  CT_ASSERT_OK(ct_add(&ad, &f->hid));
  CT_ASSERT_OK(ct_discard(&dc, &f->tok));
  assert_int_equal(ct_morphism_dom_count(cp), 1);
  assert_int_equal(ct_morphism_cod_count(cp), 2);
  assert_int_equal(ct_morphism_dom_count(ad), 2);
  assert_int_equal(ct_morphism_cod_count(ad), 1);
  assert_int_equal(ct_morphism_cod_count(dc), 0);
  /* add . copy : A -> A, and (discard (x) id) . copy == one more copy-shaped graph: A -> A */
  ct_morphism *twice = mk_compose(ad, cp);
  assert_true(ct_object_equal(ct_morphism_cod(twice, 0), &f->hid));
  ct_morphism *dh;
  CT_ASSERT_OK(ct_discard(&dh, &f->hid));
  ct_morphism *id = identity_on(f->lin1, false), *d_id = mk_tensor(dh, id), *proj = mk_compose(d_id, cp);
  assert_int_equal(ct_morphism_dom_count(proj), 1);
  assert_int_equal(ct_morphism_cod_count(proj), 1);
  char buf[2048];
  CT_ASSERT_OK(ct_morphism_describe(proj, buf, sizeof buf));
  print_message("%s", buf);
  assert_non_null(strstr(buf, "copy"));
  assert_non_null(strstr(buf, "discard"));
  ct_morphism *all[] = {cp, ad, dc, twice, dh, id, d_id, proj};
  for (int i = 0; i < 8; i++) ct_morphism_free(all[i]);
}

static void test_parameters_are_shared_not_copied(void **state) {
  /* A morphism keeps its parameter alive after the caller drops it. */
  ct_param *W;
  int64_t d[2] = {4, 4};
  CT_ASSERT_OK(ct_param_new(&W, "shared", 2, d));
  ct_object x;
  CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_HIDDEN, 2, 4));
  ct_morphism *l1, *l2, *both;
  CT_ASSERT_OK(ct_linear(&l1, &x, CT_ROLE_HIDDEN, W, NULL));
  CT_ASSERT_OK(ct_linear(&l2, &x, CT_ROLE_HIDDEN, W, NULL));
  ct_param_free(W);
  CT_ASSERT_OK(ct_compose(&both, l2, l1));
  ct_morphism_free(l1);
  ct_morphism_free(l2);
  char buf[1024];
  CT_ASSERT_OK(ct_morphism_describe(both, buf, sizeof buf));
  assert_non_null(strstr(buf, "with shared"));
  ct_morphism_free(both);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_identity_laws),
      cmocka_unit_test(test_associativity),
      cmocka_unit_test(test_tensor_laws),
      cmocka_unit_test(test_composition_type_error),
      cmocka_unit_test(test_structural_generators),
      cmocka_unit_test(test_parameters_are_shared_not_copied),
  };
  return CT_RUN_TESTS("morphism", tests, setup, teardown);
}
