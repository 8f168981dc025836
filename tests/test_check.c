/* SPDX-License-Identifier: MIT */
/* ct_check: the naturality square run node by node. A backend agrees with
 * itself exactly; a backend with one deliberately wrong kernel is caught, and
 * the report names that kernel as the first divergence. */
#include "ct_test.h"
#include "backend_impl.h" /* to build deliberately faulty backends from cpu_ref's table */

typedef struct fixture {
  ct_param *E, *W, *b;
  ct_morphism *loss;
  int32_t ids[9], targets[9];
  /* device backends, decided here; absent ones are skipped inside the test bodies */
  const ct_backend *device[2];
  char absent_reason[2][300];
} fixture;

static const char *const device_names[2] = {"cuda", "opencl"};

enum { N = 9, V = 11, D = 6 };

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  int64_t e[2] = {V, D}, w[2] = {D, V}, bd[1] = {V};
  float ev[V * D], wv[D * V], bv[V];
  ct_rng r = {77};
  ct_rng_fill(&r, ev, V * D, -1, 1);
  ct_rng_fill(&r, wv, D * V, -1, 1);
  ct_rng_fill(&r, bv, V, -1, 1);
  ct_object tk, h, lg;
  ct_morphism *em, *li, *xe, *el, *id, *par;
  if (ct_param_new(&f->E, "E", 2, e) || ct_param_new(&f->W, "W", 2, w) ||
      ct_param_new(&f->b, "b", 1, bd) || ct_param_set(f->E, ev, V * D) ||
      ct_param_set(f->W, wv, D * V) || ct_param_set(f->b, bv, V) || ct_object_tokens(&tk, N) ||
      ct_object_matrix(&h, CT_ROLE_HIDDEN, N, D) || ct_object_matrix(&lg, CT_ROLE_LOGITS, N, V) ||
      ct_embedding(&em, &tk, f->E) || ct_linear(&li, &h, CT_ROLE_LOGITS, f->W, f->b) ||
      ct_softmax_cross_entropy(&xe, &lg, &tk) || ct_then(&el, em, li) ||
      ct_identity(&id, &tk, 1) || ct_tensor(&par, el, id) || ct_then(&f->loss, par, xe))
    return -1;
  ct_morphism *tmp[] = {em, li, xe, el, id, par};
  for (int i = 0; i < 6; i++) ct_morphism_free(tmp[i]);
  for (int i = 0; i < N; i++) {
    f->ids[i] = ct_rng_int(&r, V);
    f->targets[i] = ct_rng_int(&r, V);
  }
  for (int d = 0; d < 2; d++)
    if (ct_backend_get(device_names[d], &f->device[d]) != CT_OK)
      snprintf(f->absent_reason[d], sizeof f->absent_reason[d], "%s", ct_last_error());
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ct_morphism_free(f->loss);
  ct_param_free(f->E);
  ct_param_free(f->W);
  ct_param_free(f->b);
  free(f);
  return 0;
}

static void run_check(fixture *f, const ct_backend *a, ct_check_report *r) {
  const ct_backend *cpu;
  CT_ASSERT_OK(ct_backend_get("cpu", &cpu));
  const void *inputs[2] = {f->ids, f->targets};
  CT_ASSERT_OK(ct_check(f->loss, a, cpu, inputs, 5, r));
  char buf[8192];
  FILE *mem = fmemopen(buf, sizeof buf, "w");
  CT_ASSERT_OK(ct_check_report_print(mem, r, a->name, "cpu"));
  fclose(mem);
  fputs(buf, stdout); /* cmocka's print_message truncates long reports */
}

static void test_cpu_agrees_with_itself(void **state) {
  fixture *f = *state;
  const ct_backend *cpu;
  CT_ASSERT_OK(ct_backend_get("cpu", &cpu));
  ct_check_report r;
  run_check(f, cpu, &r);
  assert_int_equal(r.first_divergent, -1);
  /* 3 forward nodes (loss, logits, hidden), 2 reverse cotangents (linear, fused), 3 params */
  assert_int_equal(r.count, 8);
  for (int i = 0; i < r.count; i++) {
    assert_true(r.entries[i].pass);
    assert_true(r.entries[i].max_abs == 0.0);
  }
  ct_check_report_free(&r);
}

/* Kernels that are right except for one perturbed element. */
static ct_status linear_fwd_off(void *ctx, const ct__kargs *a) {
  CT__TRY(ct__cpu_backend.forward[CT_OP_LINEAR](ctx, a));
  ((float *)a->out[0])[ct_object_numel(a->out_obj[0]) - 1] += 1e-2f;
  return CT_OK;
}

static ct_status linear_rev_off(void *ctx, const ct__kargs *a) {
  CT__TRY(ct__cpu_backend.reverse[CT_OP_LINEAR](ctx, a));
  ((float *)a->din[0])[3] *= 1.01f;
  return CT_OK;
}

static ct_status xent_rev_nan(void *ctx, const ct__kargs *a) {
  CT__TRY(ct__cpu_backend.reverse[CT_OP_SOFTMAX_XENT](ctx, a));
  ((float *)a->din[0])[0] = NAN;
  return CT_OK;
}

/* Right values, plus one float written past the end of the output. */
static ct_status linear_fwd_overrun(void *ctx, const ct__kargs *a) {
  CT__TRY(ct__cpu_backend.forward[CT_OP_LINEAR](ctx, a));
  ((float *)a->out[0])[ct_object_numel(a->out_obj[0]) + 2] = 0.0f;
  return CT_OK;
}

/* Right values, plus one float written past the end of each parameter gradient
 * (the gradients share one arena, with a guard region after each). */
static ct_status linear_rev_overrun(void *ctx, const ct__kargs *a) {
  CT__TRY(ct__cpu_backend.reverse[CT_OP_LINEAR](ctx, a));
  for (int k = 0; k < a->n_params; k++)
    ((float *)a->dparam[k])[ct_object_numel(a->param_obj[k]) + 2] = 0.0f;
  return CT_OK;
}

static void expect_first_divergence(fixture *f, const ct_backend *faulty, const char *label,
                                    bool nonfinite) {
  ct_check_report r;
  run_check(f, faulty, &r);
  assert_true(r.first_divergent >= 0);
  const ct_check_entry *e = &r.entries[r.first_divergent];
  if (!strstr(e->label, label)) fail_msg("first divergence is '%s', expected '%s'", e->label, label);
  assert_false(e->pass);
  assert_int_equal(e->nonfinite, nonfinite);
  for (int i = 0; i < r.first_divergent; i++) assert_true(r.entries[i].pass);
  ct_check_report_free(&r);
}

static void test_wrong_forward_is_named(void **state) {
  ct_backend faulty = ct__cpu_backend;
  faulty.name = "faulty-linear-forward";
  faulty.forward[CT_OP_LINEAR] = linear_fwd_off;
  expect_first_divergence(*state, &faulty, "linear forward", false);
}

static void test_wrong_reverse_is_named(void **state) {
  ct_backend faulty = ct__cpu_backend;
  faulty.name = "faulty-linear-reverse";
  faulty.reverse[CT_OP_LINEAR] = linear_rev_off;
  expect_first_divergence(*state, &faulty, "linear reverse", false);
}

static void test_nan_fails(void **state) {
  ct_backend faulty = ct__cpu_backend;
  faulty.name = "nan-xent-reverse";
  faulty.reverse[CT_OP_SOFTMAX_XENT] = xent_rev_nan;
  expect_first_divergence(*state, &faulty, "softmax_cross_entropy reverse", true);
}

static void test_overrun_hits_guard(void **state) {
  ct_backend faulty = ct__cpu_backend;
  faulty.name = "overrun-linear-forward";
  faulty.forward[CT_OP_LINEAR] = linear_fwd_overrun;
  ct_check_report r;
  run_check(*state, &faulty, &r);
  assert_true(r.first_divergent >= 0);
  const ct_check_entry *e = &r.entries[r.first_divergent];
  assert_string_equal(e->label, "guards on overrun-linear-forward");
  assert_non_null(strstr(e->detail, "written past its end: byte 8 after"));
  ct_check_report_free(&r);
}

static void test_grad_overrun_hits_guard(void **state) {
  ct_backend faulty = ct__cpu_backend;
  faulty.name = "overrun-linear-reverse";
  faulty.reverse[CT_OP_LINEAR] = linear_rev_overrun;
  ct_check_report r;
  run_check(*state, &faulty, &r);
  assert_true(r.first_divergent >= 0);
  const ct_check_entry *e = &r.entries[r.first_divergent];
  assert_string_equal(e->label, "guards on overrun-linear-reverse");
  if (!strstr(e->detail, "gradient of parameter 'W' was written past its end: byte 8 after"))
    fail_msg("guard failure names '%s'", e->detail);
  ct_check_report_free(&r);
}

static void test_keep_plans_reuse_nothing(void **state) {
  fixture *f = *state;
  const ct_backend *cpu;
  CT_ASSERT_OK(ct_backend_get("cpu", &cpu));
  ct_plan *p;
  CT_ASSERT_OK(ct_compile(&p, f->loss, cpu, CT_PLAN_REVERSE | CT_PLAN_KEEP));
  ct_plan_stats s;
  CT_ASSERT_OK(ct_plan_stats_get(p, &s));
  assert_int_equal(s.buffers, s.values);
  assert_int_equal(s.planned_bytes, s.naive_bytes);
  ct_plan_free(p);
}

/* The naturality square on a device backend: the whole training step, node by node. */
static void naturality_on(fixture *f, int d) {
  if (!f->device[d]) {
    print_message("    skipped: %s\n", f->absent_reason[d]);
    skip();
  }
  ct_check_report r;
  run_check(f, f->device[d], &r);
  assert_int_equal(r.first_divergent, -1);
  ct_check_report_free(&r);
}

static void test_naturality_cuda(void **state) { naturality_on(*state, 0); }
static void test_naturality_opencl(void **state) { naturality_on(*state, 1); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cpu_agrees_with_itself),
      cmocka_unit_test(test_wrong_forward_is_named),
      cmocka_unit_test(test_wrong_reverse_is_named),
      cmocka_unit_test(test_nan_fails),
      cmocka_unit_test(test_overrun_hits_guard),
      cmocka_unit_test(test_grad_overrun_hits_guard),
      cmocka_unit_test(test_keep_plans_reuse_nothing),
      cmocka_unit_test(test_naturality_cuda),
      cmocka_unit_test(test_naturality_opencl),
  };
  return CT_RUN_TESTS("check", tests, setup, teardown);
}
