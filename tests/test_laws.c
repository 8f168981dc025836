/* SPDX-License-Identifier: MIT */
/* Laws, checked numerically on the CPU reference: commuting diagrams,
 * functoriality of the reverse pass, the structural generators' reverses,
 * buffer reuse that changes nothing, and training as an iterated endomorphism. */
#include "ct_test.h"

static const ct_backend *cpu;

static int setup(void **state) { return ct_backend_get("cpu", &cpu) == CT_OK ? 0 : -1; }

static ct_param *random_param(const char *name, int rank, int64_t d0, int64_t d1, uint64_t seed) {
  int64_t d[2] = {d0, d1};
  ct_param *p = NULL;
  CT_ASSERT_OK(ct_param_new(&p, name, rank, d));
  float *v = malloc((size_t)ct_param_numel(p) * sizeof *v);
  ct_rng r = {seed};
  ct_rng_fill(&r, v, ct_param_numel(p), -0.5f, 0.5f);
  CT_ASSERT_OK(ct_param_set(p, v, ct_param_numel(p)));
  free(v);
  return p;
}

static void assert_close(const float *a, const float *b, int64_t n, const char *what) {
  double r = ct_tol_ratio(a, b, n);
  print_message("    %-44s worst |a-b|/(1e-5+1e-4|b|) = %.3g\n", what, r);
  if (!(r <= 1.0)) fail_msg("%s differs beyond the fp32 tolerance (ratio %g)", what, r);
}

static void test_identity_acts_as_identity(void **state) {
  ct_object x;
  CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_HIDDEN, 3, 7));
  ct_morphism *id = mk_identity1(&x);
  ct_plan *p;
  CT_ASSERT_OK(ct_compile(&p, id, cpu, CT_PLAN_REVERSE));
  float in[21], out[21], g[21], back[21];
  ct_rng r = {1};
  ct_rng_fill(&r, in, 21, -1, 1);
  ct_rng_fill(&r, g, 21, -1, 1);
  CT_ASSERT_OK(ct_plan_set_input(p, 0, in, 21));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 0, out, 21));
  CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, g, 21));
  CT_ASSERT_OK(ct_plan_reverse(p));
  CT_ASSERT_OK(ct_plan_get_input_grad(p, 0, back, 21));
  assert_memory_equal(in, out, sizeof in);
  assert_memory_equal(g, back, sizeof g); /* the reverse of id is id */
  ct_plan_free(p);
  ct_morphism_free(id);
}

/* softmax ; cross_entropy == softmax_cross_entropy, forward and reverse. */
static void test_softmax_then_xent_equals_fused(void **state) {
  const int64_t n = 6, c = 11;
  ct_object lg, ds, tk;
  CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, n, c));
  CT_ASSERT_OK(ct_object_matrix(&ds, CT_ROLE_DIST, n, c));
  CT_ASSERT_OK(ct_object_tokens(&tk, n));
  ct_morphism *sm, *xe, *fused, *idt;
  CT_ASSERT_OK(ct_softmax(&sm, &lg));
  CT_ASSERT_OK(ct_cross_entropy(&xe, &ds, &tk));
  CT_ASSERT_OK(ct_softmax_cross_entropy(&fused, &lg, &tk));
  idt = mk_identity1(&tk);
  ct_morphism *sm_id = mk_tensor(sm, idt), *composite = mk_then(sm_id, xe);
  float logits[66], dl_a[66], dl_b[66], loss_a, loss_b, one = 1.0f;
  int32_t targets[6];
  ct_rng r = {2};
  ct_rng_fill(&r, logits, n * c, -4, 4);
  for (int i = 0; i < n; i++) targets[i] = ct_rng_int(&r, (int32_t)c);
  const ct_morphism *ms[2] = {composite, fused};
  float *dls[2] = {dl_a, dl_b}, *losses[2] = {&loss_a, &loss_b};
  for (int k = 0; k < 2; k++) {
    ct_plan *p;
    CT_ASSERT_OK(ct_compile(&p, ms[k], cpu, CT_PLAN_REVERSE));
    CT_ASSERT_OK(ct_plan_set_input(p, 0, logits, n * c));
    CT_ASSERT_OK(ct_plan_set_input(p, 1, targets, n));
    CT_ASSERT_OK(ct_plan_forward(p));
    CT_ASSERT_OK(ct_plan_get_output(p, 0, losses[k], 1));
    CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, &one, 1));
    CT_ASSERT_OK(ct_plan_reverse(p));
    CT_ASSERT_OK(ct_plan_get_input_grad(p, 0, dls[k], n * c));
    ct_plan_free(p);
  }
  assert_close(&loss_a, &loss_b, 1, "loss: softmax;xent vs fused");
  assert_close(dl_a, dl_b, n * c, "d logits: softmax;xent vs fused");
  ct_morphism *all[] = {sm, xe, fused, idt, sm_id, composite};
  for (int i = 0; i < 6; i++) ct_morphism_free(all[i]);
}

/* Runs m forward on one f32 or i32 input and reads its one output. */
static void run_forward(const ct_morphism *m, const void *in, int64_t n_in, float *out, int64_t n_out) {
  ct_plan *p;
  CT_ASSERT_OK(ct_compile(&p, m, cpu, CT_PLAN_FORWARD));
  CT_ASSERT_OK(ct_plan_set_input(p, 0, in, n_in));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 0, out, n_out));
  ct_plan_free(p);
}

/* predict = softmax . linear . embedding, compiled whole == run generator by generator. */
static void test_composed_equals_direct(void **state) {
  const int64_t n = 5, V = 13, D = 6;
  ct_param *E = random_param("E", 2, V, D, 3), *W = random_param("W", 2, D, V, 4),
           *b = random_param("b", 1, V, 1, 5);
  ct_object tk, h, lg;
  CT_ASSERT_OK(ct_object_tokens(&tk, n));
  CT_ASSERT_OK(ct_object_matrix(&h, CT_ROLE_HIDDEN, n, D));
  CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, n, V));
  ct_morphism *em, *li, *sm;
  CT_ASSERT_OK(ct_embedding(&em, &tk, E));
  CT_ASSERT_OK(ct_linear(&li, &h, CT_ROLE_LOGITS, W, b));
  CT_ASSERT_OK(ct_softmax(&sm, &lg));
  ct_morphism *el = mk_then(em, li), *pred = mk_then(el, sm);
  int32_t ids[5] = {0, 12, 7, 7, 3};
  float hid[30], logits[65], direct[65], composed[65];
  run_forward(pred, ids, n, composed, n * V);
  run_forward(em, ids, n, hid, n * D);
  run_forward(li, hid, n * D, logits, n * V);
  run_forward(sm, logits, n * V, direct, n * V);
  assert_memory_equal(direct, composed, sizeof direct);
  for (int i = 0; i < n; i++) { /* rows are distributions */
    double s = 0;
    for (int j = 0; j < V; j++) s += composed[i * V + j];
    assert_true(fabs(s - 1.0) < 1e-5);
  }
  ct_morphism *all[] = {em, li, sm, el, pred};
  for (int i = 0; i < 5; i++) ct_morphism_free(all[i]);
  ct_param_free(E);
  ct_param_free(W);
  ct_param_free(b);
}

/* Vector-Jacobian product of a one-input, one-output morphism at x with cotangent w. */
static void vjp(const ct_morphism *m, const float *x, int64_t nx, const float *w, int64_t ny,
                float *y, float *dx, ct_param *const *params, float *const *dparams, int np) {
  ct_plan *p;
  CT_ASSERT_OK(ct_compile(&p, m, cpu, CT_PLAN_REVERSE));
  CT_ASSERT_OK(ct_plan_set_input(p, 0, x, nx));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 0, y, ny));
  CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, w, ny));
  CT_ASSERT_OK(ct_plan_reverse(p));
  CT_ASSERT_OK(ct_plan_get_input_grad(p, 0, dx, nx));
  for (int k = 0; k < np; k++)
    CT_ASSERT_OK(ct_plan_get_param_grad(p, params[k], dparams[k], ct_param_numel(params[k])));
  ct_plan_free(p);
}

/* R(g . f) == R(f) . R(g): the reverse pass is a functor. */
static void test_reverse_is_functorial(void **state) {
  const int64_t n = 4, k = 7, m = 9, c = 5;
  ct_param *W1 = random_param("W1", 2, k, m, 6), *b1 = random_param("b1", 1, m, 1, 7),
           *W2 = random_param("W2", 2, m, c, 8);
  ct_object x, h;
  CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_HIDDEN, n, k));
  CT_ASSERT_OK(ct_object_matrix(&h, CT_ROLE_HIDDEN, n, m));
  ct_object lg;
  CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, n, c));
  ct_morphism *f, *g1, *g2, *g, *gf;
  CT_ASSERT_OK(ct_linear(&f, &x, CT_ROLE_HIDDEN, W1, b1));
  CT_ASSERT_OK(ct_linear(&g1, &h, CT_ROLE_LOGITS, W2, NULL));
  CT_ASSERT_OK(ct_softmax(&g2, &lg));
  g = mk_then(g1, g2);
  gf = mk_then(f, g);
  float xin[28], w[20], y[36], z[20], z2[20], dy[36], dx_whole[28], dx_parts[28];
  float gW1a[63], gb1a[9], gW2a[45], gW1b[63], gb1b[9], gW2b[45];
  ct_rng r = {9};
  ct_rng_fill(&r, xin, n * k, -1, 1);
  ct_rng_fill(&r, w, n * c, -1, 1);
  ct_param *all_p[3] = {W1, b1, W2};
  float *whole_g[3] = {gW1a, gb1a, gW2a};
  vjp(gf, xin, n * k, w, n * c, z, dx_whole, all_p, whole_g, 3);
  /* parts: forward f, forward g, reverse g, reverse f */
  ct_param *gp[1] = {W2}, *fp[2] = {W1, b1};
  float *gg[1] = {gW2b}, *fg[2] = {gW1b, gb1b};
  float yb[36];
  run_forward(f, xin, n * k, y, n * m);
  vjp(g, y, n * m, w, n * c, z2, dy, gp, gg, 1);
  vjp(f, xin, n * k, dy, n * m, yb, dx_parts, fp, fg, 2);
  assert_memory_equal(z, z2, sizeof z);
  assert_close(dx_parts, dx_whole, n * k, "dx: R(f) after R(g) vs R(g.f)");
  assert_close(gW1b, gW1a, k * m, "dW1");
  assert_close(gb1b, gb1a, m, "db1");
  assert_close(gW2b, gW2a, m * c, "dW2");
  ct_morphism *all[] = {f, g1, g2, g, gf};
  for (int i = 0; i < 5; i++) ct_morphism_free(all[i]);
  ct_param_free(W1);
  ct_param_free(b1);
  ct_param_free(W2);
}

/* Copy reverses to add, add to copy, discard to zero: checked on the plans. */
static void test_structural_reverses(void **state) {
  ct_object a;
  CT_ASSERT_OK(ct_object_matrix(&a, CT_ROLE_HIDDEN, 3, 3));
  ct_morphism *cp, *ad, *dc;
  CT_ASSERT_OK(ct_copy(&cp, &a));
  CT_ASSERT_OK(ct_add(&ad, &a));
  CT_ASSERT_OK(ct_discard(&dc, &a));
  float x[9], u[9], v[9], out[9], out2[9], d[9], d2[9];
  ct_rng r = {10};
  ct_rng_fill(&r, x, 9, -1, 1);
  ct_rng_fill(&r, u, 9, -1, 1);
  ct_rng_fill(&r, v, 9, -1, 1);
  ct_plan *p;
  /* copy: forward duplicates, reverse adds the two cotangents */
  CT_ASSERT_OK(ct_compile(&p, cp, cpu, CT_PLAN_REVERSE));
  CT_ASSERT_OK(ct_plan_set_input(p, 0, x, 9));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 0, out, 9));
  CT_ASSERT_OK(ct_plan_get_output(p, 1, out2, 9));
  assert_memory_equal(out, x, sizeof x);
  assert_memory_equal(out2, x, sizeof x);
  CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, u, 9));
  CT_ASSERT_OK(ct_plan_set_output_grad(p, 1, v, 9));
  CT_ASSERT_OK(ct_plan_reverse(p));
  CT_ASSERT_OK(ct_plan_get_input_grad(p, 0, d, 9));
  for (int i = 0; i < 9; i++) assert_true(d[i] == u[i] + v[i]);
  ct_plan_free(p);
  /* add: forward sums, reverse copies the cotangent to both inputs */
  CT_ASSERT_OK(ct_compile(&p, ad, cpu, CT_PLAN_REVERSE));
  CT_ASSERT_OK(ct_plan_set_input(p, 0, x, 9));
  CT_ASSERT_OK(ct_plan_set_input(p, 1, u, 9));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 0, out, 9));
  for (int i = 0; i < 9; i++) assert_true(out[i] == x[i] + u[i]);
  CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, v, 9));
  CT_ASSERT_OK(ct_plan_reverse(p));
  CT_ASSERT_OK(ct_plan_get_input_grad(p, 0, d, 9));
  CT_ASSERT_OK(ct_plan_get_input_grad(p, 1, d2, 9));
  assert_memory_equal(d, v, sizeof d);
  assert_memory_equal(d2, v, sizeof d2);
  ct_plan_free(p);
  /* discard: no output, zero cotangent */
  CT_ASSERT_OK(ct_compile(&p, dc, cpu, CT_PLAN_REVERSE));
  CT_ASSERT_OK(ct_plan_set_input(p, 0, x, 9));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_reverse(p));
  CT_ASSERT_OK(ct_plan_get_input_grad(p, 0, d, 9));
  for (int i = 0; i < 9; i++) assert_true(d[i] == 0.0f);
  ct_plan_free(p);
  ct_morphism_free(cp);
  ct_morphism_free(ad);
  ct_morphism_free(dc);
}

/* A residual block x + f(x) = add . (id (x) f) . copy has gradient dy + J_f^T dy. */
static void test_residual_from_copy_and_add(void **state) {
  const int64_t n = 3, d = 4;
  ct_param *W = random_param("W", 2, d, d, 11);
  ct_object h;
  CT_ASSERT_OK(ct_object_matrix(&h, CT_ROLE_HIDDEN, n, d));
  ct_morphism *cp, *ad, *f, *id, *side, *res;
  CT_ASSERT_OK(ct_copy(&cp, &h));
  CT_ASSERT_OK(ct_add(&ad, &h));
  CT_ASSERT_OK(ct_linear(&f, &h, CT_ROLE_HIDDEN, W, NULL));
  id = mk_identity1(&h);
  side = mk_tensor(id, f);
  ct_morphism *t = mk_then(cp, side);
  res = mk_then(t, ad);
  float x[12], w[12], y[12], dx[12], fy[12], fdx[12], gW[16], gW_f[16];
  ct_rng r = {12};
  ct_rng_fill(&r, x, n * d, -1, 1);
  ct_rng_fill(&r, w, n * d, -1, 1);
  float *gres[1] = {gW}, *gf[1] = {gW_f};
  vjp(res, x, n * d, w, n * d, y, dx, &W, gres, 1);
  vjp(f, x, n * d, w, n * d, fy, fdx, &W, gf, 1);
  float want_y[12], want_dx[12];
  for (int i = 0; i < n * d; i++) {
    want_y[i] = x[i] + fy[i];
    want_dx[i] = w[i] + fdx[i];
  }
  assert_close(y, want_y, n * d, "residual forward x + f(x)");
  assert_close(dx, want_dx, n * d, "residual reverse dy + J^T dy");
  assert_close(gW, gW_f, d * d, "residual dW == f's dW");
  ct_morphism *all[] = {cp, ad, f, id, side, t, res};
  for (int i = 0; i < 7; i++) ct_morphism_free(all[i]);
  ct_param_free(W);
}

/* A deep chain reuses buffers, and reuse changes no number. */
static void test_buffer_reuse_changes_nothing(void **state) {
  enum { LAYERS = 8 };
  const int64_t n = 5, d = 6;
  ct_object h;
  CT_ASSERT_OK(ct_object_matrix(&h, CT_ROLE_HIDDEN, n, d));
  ct_param *W[LAYERS];
  ct_morphism *layer[LAYERS], *chain = mk_identity1(&h);
  for (int i = 0; i < LAYERS; i++) {
    char name[16];
    snprintf(name, sizeof name, "W%d", i);
    W[i] = random_param(name, 2, d, d, 100 + (uint64_t)i);
    CT_ASSERT_OK(ct_linear(&layer[i], &h, CT_ROLE_HIDDEN, W[i], NULL));
    ct_morphism *next = mk_then(chain, layer[i]);
    ct_morphism_free(chain);
    chain = next;
  }
  ct_plan *fwd, *rev;
  CT_ASSERT_OK(ct_compile(&fwd, chain, cpu, CT_PLAN_FORWARD));
  CT_ASSERT_OK(ct_compile(&rev, chain, cpu, CT_PLAN_REVERSE));
  ct_plan_stats sf, sr;
  CT_ASSERT_OK(ct_plan_stats_get(fwd, &sf));
  CT_ASSERT_OK(ct_plan_stats_get(rev, &sr));
  print_message("    forward plan: %d tensors in %d buffers (%zu of %zu bytes)\n", sf.values,
                sf.buffers, sf.planned_bytes, sf.naive_bytes);
  print_message("    reverse plan: %d tensors in %d buffers (%zu of %zu bytes)\n", sr.values,
                sr.buffers, sr.planned_bytes, sr.naive_bytes);
  assert_int_equal(sf.values, LAYERS + 1);
  assert_true(sf.buffers <= 4);
  assert_true(sr.buffers < sr.values);
  assert_true(sr.planned_bytes < sr.naive_bytes);
  /* the same numbers as running layer by layer, with no reuse across plans */
  float x[30], w[30], y[30], dx[30], cur[30], nxt[30];
  ct_rng r = {13};
  ct_rng_fill(&r, x, n * d, -1, 1);
  ct_rng_fill(&r, w, n * d, -1, 1);
  CT_ASSERT_OK(ct_plan_set_input(fwd, 0, x, n * d));
  CT_ASSERT_OK(ct_plan_forward(fwd));
  CT_ASSERT_OK(ct_plan_get_output(fwd, 0, y, n * d));
  memcpy(cur, x, sizeof cur);
  float acts[LAYERS][30];
  for (int i = 0; i < LAYERS; i++) {
    memcpy(acts[i], cur, sizeof cur);
    run_forward(layer[i], cur, n * d, nxt, n * d);
    memcpy(cur, nxt, sizeof cur);
  }
  assert_memory_equal(y, cur, sizeof y);
  float gw_whole[LAYERS][36], gw_parts[LAYERS][36], yy[30];
  float *gw_ptrs[LAYERS];
  for (int i = 0; i < LAYERS; i++) gw_ptrs[i] = gw_whole[i];
  ct_plan_free(rev);
  vjp(chain, x, n * d, w, n * d, yy, dx, W, gw_ptrs, LAYERS);
  memcpy(cur, w, sizeof cur);
  for (int i = LAYERS - 1; i >= 0; i--) {
    float *g1[1] = {gw_parts[i]};
    vjp(layer[i], acts[i], n * d, cur, n * d, yy, nxt, &W[i], g1, 1);
    memcpy(cur, nxt, sizeof cur);
  }
  assert_memory_equal(dx, cur, sizeof dx);
  assert_memory_equal(gw_whole, gw_parts, sizeof gw_whole);
  ct_plan_free(fwd);
  ct_morphism_free(chain);
  for (int i = 0; i < LAYERS; i++) {
    ct_morphism_free(layer[i]);
    ct_param_free(W[i]);
  }
}

/* Builds embedding ; linear ; softmax_cross_entropy over n pairs, vocabulary v, width d. */
static ct_morphism *next_token_loss(int64_t n, int64_t v, int64_t d, ct_param *E, ct_param *W,
                                    ct_param *b) {
  ct_object tk, h, lg;
  CT_ASSERT_OK(ct_object_tokens(&tk, n));
  CT_ASSERT_OK(ct_object_matrix(&h, CT_ROLE_HIDDEN, n, d));
  CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, n, v));
  ct_morphism *em, *li, *xe, *el, *idt, *par, *loss;
  CT_ASSERT_OK(ct_embedding(&em, &tk, E));
  CT_ASSERT_OK(ct_linear(&li, &h, CT_ROLE_LOGITS, W, b));
  CT_ASSERT_OK(ct_softmax_cross_entropy(&xe, &lg, &tk));
  el = mk_then(em, li);
  idt = mk_identity1(&tk);
  par = mk_tensor(el, idt);
  loss = mk_then(par, xe);
  ct_morphism *all[] = {em, li, xe, el, idt, par};
  for (int i = 0; i < 6; i++) ct_morphism_free(all[i]);
  return loss;
}

static void test_training_lowers_the_loss(void **state) {
  const int64_t n = 40, v = 9, d = 8;
  ct_param *E = random_param("E", 2, v, d, 20), *W = random_param("W", 2, d, v, 21),
           *b = random_param("b", 1, v, 1, 22);
  ct_morphism *loss = next_token_loss(n, v, d, E, W, b);
  int32_t seq[41], in[40], tg[40];
  ct_rng r = {23};
  for (int i = 0; i < 41; i++) seq[i] = (int32_t)((i * 4 + ct_rng_int(&r, 2)) % v);
  int64_t pairs;
  CT_ASSERT_OK(ct_window_pairs(seq, 41, (int32_t)v, in, tg, 40, &pairs));
  ct_optimizer sgd;
  CT_ASSERT_OK(ct_optimizer_sgd(&sgd, 0.5f));
  ct_trainer *t;
  CT_ASSERT_OK(ct_trainer_new(&t, loss, cpu, &sgd));
  CT_ASSERT_OK(ct_trainer_set_input(t, 0, in, pairs));
  CT_ASSERT_OK(ct_trainer_set_input(t, 1, tg, pairs));
  float before, after;
  CT_ASSERT_OK(ct_trainer_eval(t, &before));
  CT_ASSERT_OK(ct_trainer_step(t, 200));
  CT_ASSERT_OK(ct_trainer_eval(t, &after));
  print_message("    loss %.5f -> %.5f after 200 steps\n", before, after);
  assert_true(after < 0.6f * before);
  assert_int_equal(ct_trainer_steps(t), 200);
  /* host parameters change only when stored */
  float e0[72], e1[72];
  CT_ASSERT_OK(ct_param_get(E, e0, v * d));
  CT_ASSERT_OK(ct_trainer_store_params(t));
  CT_ASSERT_OK(ct_param_get(E, e1, v * d));
  assert_true(memcmp(e0, e1, sizeof e0) != 0);
  ct_trainer_free(t);
  ct_morphism_free(loss);
  ct_param_free(E);
  ct_param_free(W);
  ct_param_free(b);
}

/* The step is an endomorphism: step^5 == step;step;step;step;step, bit for bit,
 * and one step equals forward ; reverse ; p - lr*g done by hand. */
static void test_step_is_an_iterated_endomorphism(void **state) {
  const int64_t n = 6, v = 7, d = 5;
  float lr = 0.3f;
  ct_optimizer sgd;
  CT_ASSERT_OK(ct_optimizer_sgd(&sgd, lr));
  int32_t in[6] = {1, 2, 3, 4, 5, 6}, tg[6] = {2, 3, 4, 5, 6, 0};
  float finalE[2][35], finalW[2][35];
  for (int k = 0; k < 2; k++) {
    ct_param *E = random_param("E", 2, v, d, 30), *W = random_param("W", 2, d, v, 31);
    ct_morphism *loss = next_token_loss(n, v, d, E, W, NULL);
    ct_trainer *t;
    CT_ASSERT_OK(ct_trainer_new(&t, loss, cpu, &sgd));
    CT_ASSERT_OK(ct_trainer_set_input(t, 0, in, n));
    CT_ASSERT_OK(ct_trainer_set_input(t, 1, tg, n));
    if (k == 0) {
      CT_ASSERT_OK(ct_trainer_step(t, 5));
    } else {
      for (int s = 0; s < 5; s++) CT_ASSERT_OK(ct_trainer_step(t, 1));
    }
    CT_ASSERT_OK(ct_trainer_store_params(t));
    CT_ASSERT_OK(ct_param_get(E, finalE[k], v * d));
    CT_ASSERT_OK(ct_param_get(W, finalW[k], d * v));
    ct_trainer_free(t);
    ct_morphism_free(loss);
    ct_param_free(E);
    ct_param_free(W);
  }
  assert_memory_equal(finalE[0], finalE[1], sizeof finalE[0]);
  assert_memory_equal(finalW[0], finalW[1], sizeof finalW[0]);

  /* one step by hand */
  ct_param *E = random_param("E", 2, v, d, 30), *W = random_param("W", 2, d, v, 31);
  ct_morphism *loss = next_token_loss(n, v, d, E, W, NULL);
  float e0[35], w0[35], gE[35], gW[35], one = 1.0f, e1[35], w1[35];
  CT_ASSERT_OK(ct_param_get(E, e0, v * d));
  CT_ASSERT_OK(ct_param_get(W, w0, d * v));
  ct_plan *p;
  CT_ASSERT_OK(ct_compile(&p, loss, cpu, CT_PLAN_REVERSE));
  CT_ASSERT_OK(ct_plan_set_input(p, 0, in, n));
  CT_ASSERT_OK(ct_plan_set_input(p, 1, tg, n));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_set_output_grad(p, 0, &one, 1));
  CT_ASSERT_OK(ct_plan_reverse(p));
  CT_ASSERT_OK(ct_plan_get_param_grad(p, E, gE, v * d));
  CT_ASSERT_OK(ct_plan_get_param_grad(p, W, gW, d * v));
  ct_plan_free(p);
  ct_trainer *t;
  CT_ASSERT_OK(ct_trainer_new(&t, loss, cpu, &sgd));
  CT_ASSERT_OK(ct_trainer_set_input(t, 0, in, n));
  CT_ASSERT_OK(ct_trainer_set_input(t, 1, tg, n));
  CT_ASSERT_OK(ct_trainer_step(t, 1));
  CT_ASSERT_OK(ct_trainer_store_params(t));
  CT_ASSERT_OK(ct_param_get(E, e1, v * d));
  CT_ASSERT_OK(ct_param_get(W, w1, d * v));
  for (int i = 0; i < 35; i++) {
    assert_true(e1[i] == e0[i] - lr * gE[i]);
    assert_true(w1[i] == w0[i] - lr * gW[i]);
  }
  ct_trainer_free(t);
  ct_morphism_free(loss);
  ct_param_free(E);
  ct_param_free(W);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_identity_acts_as_identity),
      cmocka_unit_test(test_softmax_then_xent_equals_fused),
      cmocka_unit_test(test_composed_equals_direct),
      cmocka_unit_test(test_reverse_is_functorial),
      cmocka_unit_test(test_structural_reverses),
      cmocka_unit_test(test_residual_from_copy_and_add),
      cmocka_unit_test(test_buffer_reuse_changes_nothing),
      cmocka_unit_test(test_training_lowers_the_loss),
      cmocka_unit_test(test_step_is_an_iterated_endomorphism),
  };
  return CT_RUN_TESTS("laws", tests, setup, NULL);
}
