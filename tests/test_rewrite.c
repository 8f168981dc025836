/* SPDX-License-Identifier: MIT */
/* Rewrite rules as laws. For every rule of the table (src/rewrite.c) and each
 * of its examples: the pass turns the rule's lhs into exactly its rhs; both
 * sides have the same boundary and parameters; and on every present backend
 * (cpu, opencl, cuda — the simulator in the cudasim build) the two sides give
 * the same forward results, input cotangents and parameter gradients within
 * the DESIGN.md tolerances. A rule without an example fails. The table
 * printed at the end says which rule ran where. */
#include "ct_test.h"
#include "backend_impl.h" /* a cpu_ref table without a fused generator */
#include "rewrite.h"

#define N_BACKENDS 3
static const char *const backend_names[N_BACKENDS] = {"cpu", "opencl", "cuda"};
/* Examples checked per rule and backend (0: not run there). */
static int checked[64][N_BACKENDS];
static bool unsupported[64][N_BACKENDS]; /* the backend lacks a generator of the rhs */
static bool present[N_BACKENDS];
static const char *where[N_BACKENDS];

/* Sets be and info to backend b, or skips the calling test, by name, when it
 * is absent; a simulated backend's absence is a failure, never a skip. */
#define NEED_BACKEND(b, be, info)                                                            \
  do {                                                                                       \
    memset(&(info), 0, sizeof(info));                                                        \
    for (int i_ = 0; i_ < ct_backend_count(); i_++)                                          \
      if (ct_backend_info_get(i_, &(info)) == CT_OK && !strcmp((info).name, backend_names[b])) \
        break;                                                                               \
    if (ct_backend_get(backend_names[b], &(be)) != CT_OK) {                                  \
      if ((info).simulated)                                                                  \
        fail_msg("the simulated %s backend is absent: %s", backend_names[b], ct_last_error()); \
      print_message("    skipped (%s absent): %s\n", backend_names[b], ct_last_error());      \
      skip();                                                                                \
    }                                                                                        \
  } while (0)

static void free_args(ct__rule_args *a) {
  for (int k = 0; k < CT__MAX_PARAMS; k++) ct_param_free(a->param[k]);
  memset(a, 0, sizeof *a);
}

/* Both sides of rule r on example k. */
static void build_sides(const ct__rule *r, const ct__rule_args *a, ct_morphism **lhs,
                        ct_morphism **rhs) {
  CT_ASSERT_OK(r->lhs(lhs, a));
  CT_ASSERT_OK(r->rhs(rhs, a));
}

/* The parameters a morphism's nodes use, in node order, each once. */
static int params_of(const ct_morphism *m, ct_param **out, int max) {
  int n = 0;
  for (int i = 0; i < m->n_nodes; i++)
    for (int k = 0; k < m->nodes[i].n_params; k++) {
      bool seen = false;
      for (int j = 0; j < n; j++) seen = seen || out[j] == m->nodes[i].params[k];
      if (!seen && n < max) out[n++] = m->nodes[i].params[k];
    }
  return n;
}

static bool same_params(const ct_morphism *a, const ct_morphism *b) {
  ct_param *pa[16], *pb[16];
  int na = params_of(a, pa, 16), nb = params_of(b, pb, 16);
  if (na != nb) return false;
  for (int i = 0; i < na; i++) {
    bool found = false;
    for (int j = 0; j < nb; j++) found = found || pa[i] == pb[j];
    if (!found) return false;
  }
  return true;
}

static void test_every_rule_has_an_example(void **state) {
  (void)state;
  assert_true(ct__rule_count() > 0);
  assert_true(ct__rule_count() <= 64);
  for (int i = 0; i < ct__rule_count(); i++) {
    const ct__rule *r = ct__rule_at(i);
    assert_non_null(r->name);
    assert_non_null(r->equation);
    ct__rule_args a;
    if (!r->example(0, &a)) fail_msg("rule %s has no example: its law is untested", r->name);
    free_args(&a);
    for (int j = 0; j < i; j++)
      if (!strcmp(ct__rule_at(j)->name, r->name)) fail_msg("two rules are named %s", r->name);
  }
}

/* The pass rewrites each lhs to its rhs (structurally), keeping the boundary
 * and the parameters, and leaves a graph with nothing to rewrite alone. */
static void test_pass_turns_lhs_into_rhs(void **state) {
  (void)state;
  for (int i = 0; i < ct__rule_count(); i++) {
    const ct__rule *r = ct__rule_at(i);
    ct__rule_args a;
    for (int k = 0; r->example(k, &a); k++) {
      ct_morphism *lhs, *rhs, *got = NULL;
      build_sides(r, &a, &lhs, &rhs);
      assert_int_equal(ct_morphism_dom_count(lhs), ct_morphism_dom_count(rhs));
      assert_int_equal(ct_morphism_cod_count(lhs), ct_morphism_cod_count(rhs));
      for (int d = 0; d < ct_morphism_dom_count(lhs); d++)
        assert_true(ct_object_equal(ct_morphism_dom(lhs, d), ct_morphism_dom(rhs, d)));
      for (int c = 0; c < ct_morphism_cod_count(lhs); c++)
        assert_true(ct_object_equal(ct_morphism_cod(lhs, c), ct_morphism_cod(rhs, c)));
      assert_true(same_params(lhs, rhs));
      ct__rewrite_log log = {0};
      CT_ASSERT_OK(ct__rewrite(lhs, NULL, NULL, true, &got, &log));
      if (!got) fail_msg("rule %s: the pass does not match its own lhs", r->name);
      if (!ct_morphism_equal(got, rhs)) {
        char g[512], w[512];
        ct_morphism_describe(got, g, sizeof g);
        ct_morphism_describe(rhs, w, sizeof w);
        fail_msg("rule %s: the pass gives %s, not the rhs %s", r->name, g, w);
      }
      assert_true(log.n >= 1);
      if (k == 0) print_message("    %-16s %s: %s\n", r->name, r->equation, log.lines[0]);
      ct__rewrite_log_free(&log);
      ct_morphism *again = NULL;
      CT_ASSERT_OK(ct__rewrite(rhs, NULL, NULL, true, &again, NULL));
      assert_null(again);
      ct_morphism_free(got);
      ct_morphism_free(lhs);
      ct_morphism_free(rhs);
      free_args(&a);
    }
  }
}

/* Runs m (compiled without rewriting) forward and reverse on inputs and output
 * cotangents from seed; returns outputs, input cotangents and parameter
 * gradients (of params[0..np)) concatenated in *res (n floats). */
static float *run_side(const ct_backend *be, const ct_morphism *m, ct_param *const *params,
                       int np, uint64_t seed, int64_t *n) {
  ct_plan *p;
  CT_ASSERT_OK(ct_compile(&p, m, be, CT_PLAN_REVERSE | CT_PLAN_NO_REWRITE));
  assert_int_equal(ct_plan_rewrite_count(p), 0);
  int64_t total = 0;
  for (int i = 0; i < ct_morphism_cod_count(m); i++) total += ct_object_numel(ct_morphism_cod(m, i));
  for (int i = 0; i < ct_morphism_dom_count(m); i++) total += ct_object_numel(ct_morphism_dom(m, i));
  for (int k = 0; k < np; k++) total += ct_param_numel(params[k]);
  float *res = malloc((size_t)total * sizeof *res + 4);
  assert_non_null(res);
  ct_rng rng = {seed};
  for (int i = 0; i < ct_morphism_dom_count(m); i++) {
    const ct_object *o = ct_morphism_dom(m, i);
    if (o->dtype != CT_F32) fail_msg("rule examples take f32 inputs only");
    int64_t c = ct_object_numel(o);
    float *x = malloc((size_t)c * sizeof *x + 4);
    ct_rng_fill(&rng, x, c, -1.0f, 1.0f);
    CT_ASSERT_OK(ct_plan_set_input(p, i, x, c));
    free(x);
  }
  CT_ASSERT_OK(ct_plan_forward(p));
  int64_t at = 0;
  for (int i = 0; i < ct_morphism_cod_count(m); i++) {
    int64_t c = ct_object_numel(ct_morphism_cod(m, i));
    CT_ASSERT_OK(ct_plan_get_output(p, i, res + at, c));
    float *g = malloc((size_t)c * sizeof *g + 4);
    ct_rng_fill(&rng, g, c, -1.0f, 1.0f);
    CT_ASSERT_OK(ct_plan_set_output_grad(p, i, g, c));
    free(g);
    at += c;
  }
  CT_ASSERT_OK(ct_plan_reverse(p));
  for (int i = 0; i < ct_morphism_dom_count(m); i++) {
    int64_t c = ct_object_numel(ct_morphism_dom(m, i));
    CT_ASSERT_OK(ct_plan_get_input_grad(p, i, res + at, c));
    at += c;
  }
  for (int k = 0; k < np; k++) {
    int64_t c = ct_param_numel(params[k]);
    CT_ASSERT_OK(ct_plan_get_param_grad(p, params[k], res + at, c));
    at += c;
  }
  ct_plan_free(p);
  *n = at;
  return res;
}

static void check_laws_on(int b) {
  const ct_backend *be = NULL;
  ct_backend_info info;
  NEED_BACKEND(b, be, info);
  where[b] = info.simulated ? "simulator" : b == 0 ? "host" : "hardware";
  present[b] = true;
  for (int i = 0; i < ct__rule_count(); i++) {
    const ct__rule *r = ct__rule_at(i);
    ct__rule_args a;
    for (int k = 0; r->example(k, &a); k++) {
      ct_morphism *lhs, *rhs;
      build_sides(r, &a, &lhs, &rhs);
      bool runs = true;
      for (int j = 0; j < ct_morphism_node_count(rhs); j++)
        runs = runs && ct__backend_runs(be, rhs->nodes[j].op, true);
      if (!runs) { /* the pass keeps the lhs there: the cell is declared unsupported */
        if (k == 0)
          print_message("    %-16s on %s: declared unsupported (the backend lacks a generator "
                        "of the rhs)\n", r->name, backend_names[b]);
        unsupported[i][b] = true;
        ct_morphism_free(lhs);
        ct_morphism_free(rhs);
        free_args(&a);
        continue;
      }
      ct_param *params[16];
      int np = params_of(lhs, params, 16);
      int64_t nl, nr;
      float *yl = run_side(be, lhs, params, np, 100 + k, &nl);
      float *yr = run_side(be, rhs, params, np, 100 + k, &nr);
      assert_int_equal(nl, nr);
      double ratio = ct_tol_ratio(yr, yl, nl);
      if (k == 0 || ratio > 1.0)
        print_message("    %-16s example %d on %s: %lld results, worst tolerance ratio %.3g\n",
                      r->name, k, backend_names[b], (long long)nl, ratio);
      if (!(ratio <= 1.0))
        fail_msg("rule %s (%s), example %d, on %s: rhs differs from lhs (ratio %.3g)", r->name,
                 r->equation, k, backend_names[b], ratio);
      checked[i][b]++;
      free(yl);
      free(yr);
      ct_morphism_free(lhs);
      ct_morphism_free(rhs);
      free_args(&a);
    }
  }
}

/* The GPT (where every fusion rule fires) rewritten against as built on
 * backend b: the loss and every parameter gradient of one step, then the loss
 * and parameters after 20 AdamW steps. */
static void check_gpt_on(int b) {
  const ct_backend *be = NULL;
  ct_backend_info info;
  NEED_BACKEND(b, be, info);
  const ct_gpt_config cfg = {11, 8, 2, 2, 16};
  const int64_t B = 2, T = 8, n = B * T;
  int32_t in[16], tg[16];
  for (int i = 0; i < n; i++) in[i] = (i * 7) % 11, tg[i] = (i * 5 + 3) % 11;
  ct_gpt *g[2];
  ct_morphism *loss[2];
  ct_plan *p[2];
  float l[2];
  const float one = 1.0f;
  for (int k = 0; k < 2; k++) {
    CT_ASSERT_OK(ct_gpt_new(&g[k], &cfg, 5));
    CT_ASSERT_OK(ct_gpt_loss(&loss[k], g[k], B, T));
    CT_ASSERT_OK(ct_compile(&p[k], loss[0], be, CT_PLAN_REVERSE | (k ? CT_PLAN_NO_REWRITE : 0)));
    CT_ASSERT_OK(ct_plan_set_input(p[k], 0, in, n));
    CT_ASSERT_OK(ct_plan_set_input(p[k], 1, tg, n));
    CT_ASSERT_OK(ct_plan_forward(p[k]));
    CT_ASSERT_OK(ct_plan_get_output(p[k], 0, &l[k], 1));
    CT_ASSERT_OK(ct_plan_set_output_grad(p[k], 0, &one, 1));
    CT_ASSERT_OK(ct_plan_reverse(p[k]));
  }
  /* 2 layers: linear_gelu x2, add_layernorm x3, add_layernorm_end x1, qkv x2, and
   * causal_attention x2 where the backend runs it */
  bool fused_attention = ct__backend_runs(be, CT_OP_CAUSAL_ATTENTION, true);
  assert_int_equal(ct_plan_rewrite_count(p[0]), fused_attention ? 10 : 8);
  assert_int_equal(ct_plan_rewrite_count(p[1]), 0);
  double worst = ct_tol_ratio(&l[0], &l[1], 1);
  for (int i = 0; i < ct_gpt_param_count(g[0]); i++) {
    const ct_param *q = ct_gpt_param(g[0], i);
    int64_t c = ct_param_numel(q);
    float *a = malloc((size_t)c * 4), *r = malloc((size_t)c * 4);
    CT_ASSERT_OK(ct_plan_get_param_grad(p[0], q, a, c));
    CT_ASSERT_OK(ct_plan_get_param_grad(p[1], q, r, c));
    double w = ct_tol_ratio(a, r, c);
    if (w > worst) worst = w;
    free(a);
    free(r);
  }
  print_message("    GPT on %s: loss %.7f rewritten, %.7f as built; loss and %d gradients: worst "
                "tolerance ratio %.3g\n", backend_names[b], l[0], l[1], ct_gpt_param_count(g[0]),
                worst);
  assert_true(worst <= 1.0);
  for (int k = 0; k < 2; k++) ct_plan_free(p[k]);
  /* 20 AdamW steps, each plan on its own copy of the parameters */
  ct_optimizer opt;
  CT_ASSERT_OK(ct_optimizer_adamw(&opt, 1e-2f));
  ct_trainer *t[2];
  for (int k = 0; k < 2; k++) {
    CT_ASSERT_OK(ct_trainer_new_flags(&t[k], loss[k], be, &opt, k ? CT_PLAN_NO_REWRITE : 0));
    CT_ASSERT_OK(ct_trainer_set_input(t[k], 0, in, n));
    CT_ASSERT_OK(ct_trainer_set_input(t[k], 1, tg, n));
    CT_ASSERT_OK(ct_trainer_step(t[k], 20));
    CT_ASSERT_OK(ct_trainer_last_loss(t[k], &l[k]));
    CT_ASSERT_OK(ct_trainer_store_params(t[k]));
  }
  worst = ct_tol_ratio(&l[0], &l[1], 1);
  for (int i = 0; i < ct_gpt_param_count(g[0]); i++) {
    /* The key biases' gradient is zero in exact arithmetic (a shift of a row of
     * scores leaves its softmax unchanged), so AdamW turns rounding noise
     * (about 1e-12) into steps of up to lr: after 20 steps they differ by
     * amplified noise, even between two double-precision paths. Their one-step
     * gradients are compared above. */
    if (strstr(ct_param_name(ct_gpt_param(g[0], i)), ".attn.bk")) continue;
    int64_t c = ct_param_numel(ct_gpt_param(g[0], i));
    float *a = malloc((size_t)c * 4), *r = malloc((size_t)c * 4);
    CT_ASSERT_OK(ct_param_get(ct_gpt_param(g[0], i), a, c));
    CT_ASSERT_OK(ct_param_get(ct_gpt_param(g[1], i), r, c));
    double w = ct_tol_ratio(a, r, c);
    if (w > worst) worst = w;
    free(a);
    free(r);
  }
  print_message("    GPT on %s after 20 AdamW steps: loss %.7f rewritten, %.7f as built; worst "
                "tolerance ratio of loss and parameters %.3g\n", backend_names[b], l[0], l[1],
                worst);
  /* 20 steps of drift: ten times the one-step tolerance, as test_cross allows */
  assert_true(worst <= 10.0);
  for (int k = 0; k < 2; k++) {
    ct_trainer_free(t[k]);
    ct_morphism_free(loss[k]);
    ct_gpt_free(g[k]);
  }
}

static void test_gpt_cpu(void **state) { (void)state; check_gpt_on(0); }
static void test_gpt_opencl(void **state) { (void)state; check_gpt_on(1); }
static void test_gpt_cuda(void **state) { (void)state; check_gpt_on(2); }

/* A backend without a fused generator keeps the lhs of its rule: the plan
 * compiles, and only the other rules fire. */
static void test_rules_follow_the_backend(void **state) {
  (void)state;
  ct_backend partial = ct__cpu_backend;
  partial.forward[CT_OP_LINEAR_GELU] = NULL;
  partial.reverse[CT_OP_LINEAR_GELU] = NULL;
  const ct_gpt_config cfg = {11, 8, 2, 2, 16};
  ct_gpt *g;
  ct_morphism *loss;
  ct_plan *p;
  CT_ASSERT_OK(ct_gpt_new(&g, &cfg, 5));
  CT_ASSERT_OK(ct_gpt_loss(&loss, g, 2, 8));
  CT_ASSERT_OK(ct_compile(&p, loss, &partial, CT_PLAN_REVERSE));
  /* 2 layers on cpu: 10 rewrites, less linear_gelu x2 */
  assert_int_equal(ct_plan_rewrite_count(p), 8);
  for (int i = 0; i < ct_plan_rewrite_count(p); i++)
    assert_null(strstr(ct_plan_rewrite(p, i), "linear_gelu"));
  ct_plan_free(p);
  ct_morphism_free(loss);
  ct_gpt_free(g);
}

static void test_laws_cpu(void **state) { (void)state; check_laws_on(0); }
static void test_laws_opencl(void **state) { (void)state; check_laws_on(1); }
static void test_laws_cuda(void **state) { (void)state; check_laws_on(2); }

/* Every rule ran on cpu and on every present device backend. */
static void test_rule_coverage(void **state) {
  (void)state;
  print_message("    %-18s %-12s %-12s %-12s\n", "rule", "cpu", "opencl", "cuda");
  for (int i = 0; i < ct__rule_count(); i++) {
    char cell[N_BACKENDS][32];
    for (int b = 0; b < N_BACKENDS; b++)
      snprintf(cell[b], sizeof cell[b], "%s",
               checked[i][b] ? where[b] : unsupported[i][b] ? "unsupported" : "-");
    print_message("    %-18s %-12s %-12s %-12s\n", ct__rule_at(i)->name, cell[0], cell[1],
                  cell[2]);
    for (int b = 0; b < N_BACKENDS; b++)
      if (present[b] && !checked[i][b] && !unsupported[i][b] && !getenv("CTML_TEST_FILTER"))
        fail_msg("rule %s was not checked on %s", ct__rule_at(i)->name, backend_names[b]);
    if (!checked[i][0] && !getenv("CTML_TEST_FILTER"))
      fail_msg("rule %s was not checked on cpu", ct__rule_at(i)->name);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_rule_has_an_example),
      cmocka_unit_test(test_pass_turns_lhs_into_rhs),
      cmocka_unit_test(test_laws_cpu),
      cmocka_unit_test(test_laws_opencl),
      cmocka_unit_test(test_laws_cuda),
      cmocka_unit_test(test_rules_follow_the_backend),
      cmocka_unit_test(test_gpt_cpu),
      cmocka_unit_test(test_gpt_opencl),
      cmocka_unit_test(test_gpt_cuda),
      cmocka_unit_test(test_rule_coverage),
  };
  return CT_RUN_TESTS("rewrite", tests, NULL, NULL);
}
