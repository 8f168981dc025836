/* SPDX-License-Identifier: MIT */
/* Cross-backend checks: the naturality square "upload ; f_device == f_cpu ;
 * upload" for every generator, forward and reverse, at several shapes (odd
 * sizes, sizes that are not multiples of 32, and sizes that span many
 * work-groups), with guard regions after every buffer and NaN as a failure;
 * then whole plans node by node, the training step, device-detected id errors,
 * and the book's numbers; the sequence generators, attention and AdamW
 * (test_cross_seq.inc) and the GPT (test_cross_gpt.inc) likewise. Usage:
 * test_cross BACKEND (cuda or opencl). A backend whose device is absent is
 * decided in the group setup and every test reports itself skipped, by name,
 * with the reason. */
#include "ct_test.h"

typedef struct fixture {
  const char *name;
  const ct_backend *dev, *cpu;
  int index; /* position of the backend in the registry */
  bool simulated; /* the backend runs on a CPU simulator (tests/cudasim), not its device */
  char device[128];
  char absent[400];
} fixture;

static const char *backend_name = "opencl";

/* Generator x direction cells checked so far (shapes that passed). */
static int checked[CT_OP_COUNT][2];
static bool filtered;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  f->name = backend_name;
  f->index = -1;
  for (int i = 0; i < ct_backend_count(); i++) {
    ct_backend_info info;
    if (ct_backend_info_get(i, &info) == CT_OK && !strcmp(info.name, f->name)) {
      f->index = i;
      f->simulated = info.simulated;
      snprintf(f->device, sizeof f->device, "%s", info.device);
    }
  }
  if (ct_backend_get("cpu", &f->cpu) != CT_OK) return -1;
  if (ct_backend_get(f->name, &f->dev) != CT_OK) {
    f->dev = NULL;
    snprintf(f->absent, sizeof f->absent, "%s", ct_last_error());
    /* a simulator has no device to lack: its absence is a failure, never a skip */
    if (f->simulated) {
      fprintf(stderr, "test_cross: the simulated %s backend failed to open: %s\n", f->name,
              f->absent);
      free(f);
      return -1;
    }
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  free(*state);
  return 0;
}

/* Skips the calling test, by name, when the backend has no device. */
#define NEED_DEVICE(f)                                                  \
  do {                                                                  \
    if (!(f)->dev) {                                                    \
      print_message("    skipped (%s absent): %s\n", (f)->name, (f)->absent); \
      skip();                                                           \
    }                                                                   \
  } while (0)

/* ---- inputs ---------------------------------------------------------------- */

typedef struct inputs {
  int n;
  void *data[4];
} inputs;

/* Random host data for every dom object of m: ids in [0, limit[i]) for TOKENS,
 * floats in [lo, hi) otherwise. */
static inputs make_inputs(const ct_morphism *m, const int64_t *limit, float lo, float hi,
                          uint64_t seed) {
  inputs in = {.n = ct_morphism_dom_count(m)};
  ct_rng r = {seed};
  for (int i = 0; i < in.n; i++) {
    const ct_object *o = ct_morphism_dom(m, i);
    int64_t n = ct_object_numel(o);
    in.data[i] = malloc((size_t)n * 4 + 4);
    assert_non_null(in.data[i]);
    if (o->dtype == CT_I32)
      for (int64_t k = 0; k < n; k++) ((int32_t *)in.data[i])[k] = ct_rng_int(&r, (int32_t)limit[i]);
    else
      ct_rng_fill(&r, in.data[i], n, lo, hi);
  }
  return in;
}

static void free_inputs(inputs *in) {
  for (int i = 0; i < in->n; i++) free(in->data[i]);
}

static ct_param *make_param(const char *name, int rank, int64_t d0, int64_t d1, uint64_t seed) {
  int64_t dims[2] = {d0, d1};
  ct_param *p = NULL;
  CT_ASSERT_OK(ct_param_new(&p, name, rank, dims));
  int64_t n = ct_param_numel(p);
  float *v = malloc((size_t)n * sizeof *v);
  assert_non_null(v);
  ct_rng r = {seed};
  ct_rng_fill(&r, v, n, -1.0f, 1.0f);
  CT_ASSERT_OK(ct_param_set(p, v, n));
  free(v);
  return p;
}

/* ct_check of m on the device against cpu; every entry must pass. Marks the
 * cells of m's generators as checked; parameter gradients count for the reverse
 * of param_owner (a generator, or -1). */
static void check_against_cpu_owned(fixture *f, const ct_morphism *m, const inputs *in,
                                    uint64_t seed, const char *what, int param_owner) {
  ct_check_report r;
  CT_ASSERT_OK(ct_check(m, f->dev, f->cpu, (const void *const *)in->data, seed, &r));
  double worst = 0.0;
  for (int i = 0; i < r.count; i++)
    if (r.entries[i].max_ratio > worst) worst = r.entries[i].max_ratio;
  print_message("    %-44s %3d results, worst tolerance ratio %.3g\n", what, r.count, worst);
  if (r.first_divergent >= 0) {
    ct_check_report_print(stdout, &r, f->name, "cpu");
    const ct_check_entry *e = &r.entries[r.first_divergent];
    char label[96];
    snprintf(label, sizeof label, "%s", e->label);
    ct_check_report_free(&r);
    fail_msg("%s: %s diverges from cpu first at '%s'", what, f->name, label);
  }
  for (int i = 0; i < r.count; i++) {
    /* labels read "node N OPNAME forward|reverse ..." */
    int node;
    char opname[64];
    if (param_owner >= 0 && !strncmp(r.entries[i].label, "param ", 6)) checked[param_owner][1]++;
    if (sscanf(r.entries[i].label, "node %d %63s", &node, opname) != 2) continue;
    for (int op = 0; op < CT_OP_COUNT; op++)
      if (!strcmp(opname, ct_op_name((ct_op)op))) checked[op][r.entries[i].dir]++;
  }
  ct_check_report_free(&r);
}

static void check_against_cpu(fixture *f, const ct_morphism *m, const inputs *in, uint64_t seed,
                              const char *what) {
  check_against_cpu_owned(f, m, in, seed, what, -1);
}

/* ---- one generator at a time ------------------------------------------------ */

/* The shapes: tiny odd, not multiples of 32, and large enough for many blocks. */
typedef struct shape3 {
  int64_t a, b, c;
} shape3;
static const shape3 shapes[] = {{3, 5, 7}, {37, 61, 29}, {1, 1, 1}, {1030, 333, 257}};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

static void test_embedding(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  for (int s = 0; s < NSHAPES; s++) {
    int64_t n = shapes[s].a * 5, vocab = shapes[s].b, width = shapes[s].c;
    ct_param *E = make_param("E", 2, vocab, width, 11 + s);
    ct_object tk;
    ct_morphism *m;
    CT_ASSERT_OK(ct_object_tokens(&tk, n));
    CT_ASSERT_OK(ct_embedding(&m, &tk, E));
    inputs in = make_inputs(m, (int64_t[]){vocab}, 0, 0, 100 + s);
    char what[96];
    snprintf(what, sizeof what, "embedding ids[%lld] E[%lld,%lld]", (long long)n,
             (long long)vocab, (long long)width);
    check_against_cpu_owned(f, m, &in, 7 + s, what, CT_OP_EMBEDDING);
    free_inputs(&in);
    ct_morphism_free(m);
    ct_param_free(E);
  }
}

static void test_linear(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  for (int bias = 0; bias < 2; bias++)
    for (int s = 0; s < NSHAPES; s++) {
      int64_t rows = shapes[s].a, k = shapes[s].b, cols = shapes[s].c;
      ct_param *W = make_param("W", 2, k, cols, 21 + s);
      ct_param *b = bias ? make_param("b", 1, cols, 0, 31 + s) : NULL;
      ct_object x;
      ct_morphism *m;
      CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_HIDDEN, rows, k));
      CT_ASSERT_OK(ct_linear(&m, &x, CT_ROLE_LOGITS, W, b));
      inputs in = make_inputs(m, NULL, -1, 1, 200 + s);
      char what[96];
      snprintf(what, sizeof what, "linear x[%lld,%lld] W[%lld,%lld]%s", (long long)rows,
               (long long)k, (long long)k, (long long)cols, bias ? " + b" : "");
      check_against_cpu(f, m, &in, 17 + s, what);
      free_inputs(&in);
      ct_morphism_free(m);
      ct_param_free(W);
      ct_param_free(b);
    }
}

/* Row-wise generators over rows x cols: softmax, cross-entropy on positive
 * "probabilities", fused softmax-cross-entropy. Logits span [-8, 8). */
static void test_rowwise(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  for (int s = 0; s < NSHAPES; s++) {
    int64_t rows = shapes[s].a * 2, cols = shapes[s].b;
    if (s == NSHAPES - 1) cols = 1000; /* wide rows: many threads per row */
    ct_object lg, dist, tk;
    CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, rows, cols));
    CT_ASSERT_OK(ct_object_matrix(&dist, CT_ROLE_DIST, rows, cols));
    CT_ASSERT_OK(ct_object_tokens(&tk, rows));
    ct_morphism *sm, *xe, *fx;
    CT_ASSERT_OK(ct_softmax(&sm, &lg));
    CT_ASSERT_OK(ct_cross_entropy(&xe, &dist, &tk));
    CT_ASSERT_OK(ct_softmax_cross_entropy(&fx, &lg, &tk));
    char what[96];
    inputs in = make_inputs(sm, NULL, -8, 8, 300 + s);
    snprintf(what, sizeof what, "softmax [%lld,%lld]", (long long)rows, (long long)cols);
    check_against_cpu(f, sm, &in, 27 + s, what);
    free_inputs(&in);
    in = make_inputs(xe, (int64_t[]){0, cols}, 0.001f, 1.0f, 400 + s);
    snprintf(what, sizeof what, "cross_entropy [%lld,%lld]", (long long)rows, (long long)cols);
    check_against_cpu(f, xe, &in, 37 + s, what);
    free_inputs(&in);
    in = make_inputs(fx, (int64_t[]){0, cols}, -8, 8, 500 + s);
    snprintf(what, sizeof what, "softmax_cross_entropy [%lld,%lld]", (long long)rows,
             (long long)cols);
    check_against_cpu(f, fx, &in, 47 + s, what);
    free_inputs(&in);
    ct_morphism_free(sm);
    ct_morphism_free(xe);
    ct_morphism_free(fx);
  }
}

/* Probabilities at the 1e-9 floor: the clamp and its zero gradient agree. */
static void test_cross_entropy_floor(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  ct_object dist, tk;
  CT_ASSERT_OK(ct_object_matrix(&dist, CT_ROLE_DIST, 3, 4));
  CT_ASSERT_OK(ct_object_tokens(&tk, 3));
  ct_morphism *xe;
  CT_ASSERT_OK(ct_cross_entropy(&xe, &dist, &tk));
  float p[12] = {0.5f, 1e-12f, 0.25f, 0.25f, 0.1f, 0.2f, 0.3f, 0.4f, 0, 0, 1, 0};
  int32_t t[3] = {1, 3, 0};
  inputs in = {.n = 2, .data = {p, t}};
  check_against_cpu(f, xe, &in, 3, "cross_entropy with clamped rows");
  ct_morphism_free(xe);
}

static void test_structural(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  for (int s = 0; s < NSHAPES; s++) {
    ct_object h;
    CT_ASSERT_OK(ct_object_matrix(&h, CT_ROLE_HIDDEN, shapes[s].a * 3, shapes[s].c));
    ct_morphism *cp, *ad, *dc;
    CT_ASSERT_OK(ct_copy(&cp, &h));
    CT_ASSERT_OK(ct_add(&ad, &h));
    CT_ASSERT_OK(ct_discard(&dc, &h));
    ct_morphism *const ms[3] = {cp, ad, dc};
    const char *names[3] = {"copy", "add", "discard"};
    for (int k = 0; k < 3; k++) {
      inputs in = make_inputs(ms[k], NULL, -1, 1, 600 + 10 * s + k);
      char what[96];
      snprintf(what, sizeof what, "%s [%lld,%lld]", names[k], (long long)h.dims[0],
               (long long)h.dims[1]);
      check_against_cpu(f, ms[k], &in, 57 + s, what);
      free_inputs(&in);
      /* discard has no outputs to compare: its forward counts by running */
      if (k == 2) checked[CT_OP_DISCARD][0]++;
      ct_morphism_free(ms[k]);
    }
  }
}

/* ---- whole plans -------------------------------------------------------------- */

/* The book's unfused pipeline: embedding ; linear ; softmax ; cross_entropy,
 * with the targets carried alongside. */
static ct_morphism *book_pipeline(ct_param *E, ct_param *W, ct_param *b, int64_t n) {
  ct_object tk, h, lg, dist;
  CT_ASSERT_OK(ct_object_tokens(&tk, n));
  CT_ASSERT_OK(ct_object_matrix(&h, CT_ROLE_HIDDEN, n, ct_param_object(E)->dims[1]));
  CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, n, ct_param_object(W)->dims[1]));
  CT_ASSERT_OK(ct_object_matrix(&dist, CT_ROLE_DIST, n, ct_param_object(W)->dims[1]));
  ct_morphism *em, *li, *sm, *xe;
  CT_ASSERT_OK(ct_embedding(&em, &tk, E));
  CT_ASSERT_OK(ct_linear(&li, &h, CT_ROLE_LOGITS, W, b));
  CT_ASSERT_OK(ct_softmax(&sm, &lg));
  CT_ASSERT_OK(ct_cross_entropy(&xe, &dist, &tk));
  ct_morphism *a = mk_then(em, li), *c = mk_then(a, sm), *id = mk_identity1(&tk);
  ct_morphism *par = mk_tensor(c, id), *loss = mk_then(par, xe);
  ct_morphism *tmp[] = {em, li, sm, xe, a, c, id, par};
  for (int i = 0; i < 8; i++) ct_morphism_free(tmp[i]);
  return loss;
}

static void test_book_pipeline_node_by_node(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  ct_param *E = make_param("E", 2, 5, 4, 1), *W = make_param("W", 2, 4, 5, 2),
           *b = make_param("b", 1, 5, 0, 3);
  ct_morphism *m = book_pipeline(E, W, b, 7);
  inputs in = make_inputs(m, (int64_t[]){5, 5}, 0, 0, 4);
  check_against_cpu(f, m, &in, 5, "book pipeline (7 pairs)");
  free_inputs(&in);
  ct_morphism_free(m);
  ct_param_free(E);
  ct_param_free(W);
  ct_param_free(b);
}

/* A residual block: x -> copy -> (linear, id) -> add -> linear -> softmax_xent. */
static void test_residual_node_by_node(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  int64_t n = 45, d = 33, v = 17;
  ct_param *W = make_param("W", 2, d, d, 8), *b = make_param("b", 1, d, 0, 9),
           *U = make_param("U", 2, d, v, 10);
  ct_object h, lg, tk;
  CT_ASSERT_OK(ct_object_matrix(&h, CT_ROLE_HIDDEN, n, d));
  CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, n, v));
  CT_ASSERT_OK(ct_object_tokens(&tk, n));
  ct_morphism *cp, *li, *id, *ad, *head, *xe;
  CT_ASSERT_OK(ct_copy(&cp, &h));
  CT_ASSERT_OK(ct_linear(&li, &h, CT_ROLE_HIDDEN, W, b));
  CT_ASSERT_OK(ct_add(&ad, &h));
  CT_ASSERT_OK(ct_linear(&head, &h, CT_ROLE_LOGITS, U, NULL));
  CT_ASSERT_OK(ct_softmax_cross_entropy(&xe, &lg, &tk));
  id = mk_identity1(&h);
  ct_morphism *branch = mk_tensor(li, id), *split = mk_then(cp, branch), *blk = mk_then(split, ad);
  ct_morphism *net = mk_then(blk, head);
  ct_morphism *idt = mk_identity1(&tk), *par = mk_tensor(net, idt), *loss = mk_then(par, xe);
  inputs in = make_inputs(loss, (int64_t[]){0, v}, -1, 1, 10);
  check_against_cpu(f, loss, &in, 11, "residual block + head + fused loss");
  free_inputs(&in);
  ct_morphism *tmp[] = {cp, li, id, ad, head, xe, branch, split, blk, net, idt, par, loss};
  for (int i = 0; i < 13; i++) ct_morphism_free(tmp[i]);
  ct_param_free(W);
  ct_param_free(b);
  ct_param_free(U);
}

/* The training endomorphism iterated on the device tracks the CPU's. */
static void test_training_tracks_cpu(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  int64_t n = 40, vocab = 13, width = 9;
  ct_param *P[2][3];
  ct_trainer *t[2];
  ct_optimizer opt;
  CT_ASSERT_OK(ct_optimizer_sgd(&opt, 0.5f));
  const ct_backend *be[2] = {f->dev, f->cpu};
  inputs in = {0};
  for (int k = 0; k < 2; k++) {
    P[k][0] = make_param("E", 2, vocab, width, 1);
    P[k][1] = make_param("W", 2, width, vocab, 2);
    P[k][2] = make_param("b", 1, vocab, 0, 3);
    ct_morphism *m = book_pipeline(P[k][0], P[k][1], P[k][2], n);
    if (k == 0) in = make_inputs(m, (int64_t[]){vocab, vocab}, 0, 0, 12);
    CT_ASSERT_OK(ct_trainer_new(&t[k], m, be[k], &opt));
    for (int i = 0; i < 2; i++) CT_ASSERT_OK(ct_trainer_set_input(t[k], i, in.data[i], n));
    ct_morphism_free(m);
  }
  float loss[2][4];
  for (int round = 0; round < 4; round++)
    for (int k = 0; k < 2; k++) {
      CT_ASSERT_OK(ct_trainer_step(t[k], 10));
      CT_ASSERT_OK(ct_trainer_eval(t[k], &loss[k][round]));
    }
  print_message("    loss after 10/20/30/40 steps: %s %.7f %.7f %.7f %.7f, cpu %.7f %.7f %.7f %.7f\n",
                f->name, loss[0][0], loss[0][1], loss[0][2], loss[0][3], loss[1][0], loss[1][1],
                loss[1][2], loss[1][3]);
  assert_true(loss[1][3] < loss[1][0]);
  for (int round = 0; round < 4; round++)
    assert_true(fabs(loss[0][round] - loss[1][round]) <= 1e-4 * fabs(loss[1][round]) + 1e-5);
  for (int k = 0; k < 2; k++) CT_ASSERT_OK(ct_trainer_store_params(t[k]));
  for (int j = 0; j < 3; j++) {
    int64_t cnt = ct_param_numel(P[0][j]);
    float *a = malloc((size_t)cnt * 4), *c = malloc((size_t)cnt * 4);
    CT_ASSERT_OK(ct_param_get(P[0][j], a, cnt));
    CT_ASSERT_OK(ct_param_get(P[1][j], c, cnt));
    double r = ct_tol_ratio(a, c, cnt);
    print_message("    param %s after 40 steps: tolerance ratio %.3g\n", ct_param_name(P[0][j]), r);
    /* 40 steps of drift: ten times the one-step tolerance */
    assert_true(r <= 10.0);
    free(a);
    free(c);
  }
  for (int k = 0; k < 2; k++) {
    ct_trainer_free(t[k]);
    for (int j = 0; j < 3; j++) ct_param_free(P[k][j]);
  }
  free_inputs(&in);
}

/* ---- errors detected on the device -------------------------------------------- */

static void test_token_id_out_of_range(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  ct_param *E = make_param("E", 2, 5, 3, 1);
  ct_object tk;
  ct_morphism *m;
  CT_ASSERT_OK(ct_object_tokens(&tk, 4));
  CT_ASSERT_OK(ct_embedding(&m, &tk, E));
  ct_plan *p;
  CT_ASSERT_OK(ct_compile(&p, m, f->dev, CT_PLAN_FORWARD | CT_PLAN_GUARD));
  int32_t bad[4] = {1, 4, 7, 2}, good[4] = {1, 4, 0, 2};
  CT_ASSERT_OK(ct_plan_set_input(p, 0, bad, 4));
  CT_ASSERT_STATUS(ct_plan_forward(p), CT_ERR_RANGE);
  CT_ASSERT_MESSAGE_HAS("node 0 (embedding): token id 7 at position 2 is outside [0, 5)");
  float y[12];
  CT_ASSERT_STATUS(ct_plan_get_output(p, 0, y, 12), CT_ERR_STATE);
  CT_ASSERT_OK(ct_plan_check_guards(p));
  /* the error was reported once; the plan runs again on good ids */
  CT_ASSERT_OK(ct_plan_set_input(p, 0, good, 4));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 0, y, 12));
  float e[15];
  CT_ASSERT_OK(ct_param_get(E, e, 15));
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++) assert_true(y[i * 3 + j] == e[good[i] * 3 + j]);
  ct_plan_free(p);
  ct_morphism_free(m);
  ct_param_free(E);
}

/* A bad target in a training batch: the step fails naming it and the device
 * parameters are not touched (the update is skipped on the device), with each
 * optimizer. */
static void test_bad_target_leaves_params(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  for (int kind = 0; kind < CT_OPT_COUNT; kind++) {
    ct_param *E = make_param("E", 2, 6, 4, 1), *W = make_param("W", 2, 4, 6, 2);
    ct_morphism *m = book_pipeline(E, W, NULL, 5);
    ct_optimizer opt;
    if (kind == CT_OPT_SGD)
      CT_ASSERT_OK(ct_optimizer_sgd(&opt, 0.5f));
    else
      CT_ASSERT_OK(ct_optimizer_adamw(&opt, 0.5f));
    opt.warmup_steps = 10; /* the rate tells which step the device counts */
    ct_trainer *t;
    CT_ASSERT_OK(ct_trainer_new(&t, m, f->dev, &opt));
    int32_t ids[5] = {0, 1, 2, 3, 4}, good[5] = {1, 2, 3, 4, 5}, targets[5] = {1, 2, 3, -4, 5};
    CT_ASSERT_OK(ct_trainer_set_input(t, 0, ids, 5));
    CT_ASSERT_OK(ct_trainer_set_input(t, 1, good, 5));
    CT_ASSERT_OK(ct_trainer_step(t, 2));
    CT_ASSERT_OK(ct_trainer_set_input(t, 1, targets, 5));
    CT_ASSERT_OK(ct_trainer_store_params(t));
    float before[24], after[24], lr;
    CT_ASSERT_OK(ct_param_get(W, before, 24));
    CT_ASSERT_STATUS(ct_trainer_step(t, 3), CT_ERR_RANGE);
    CT_ASSERT_MESSAGE_HAS("(cross_entropy): target id -4 at position 3 is outside [0, 6)");
    CT_ASSERT_OK(ct_trainer_store_params(t));
    CT_ASSERT_OK(ct_param_get(W, after, 24));
    assert_memory_equal(before, after, sizeof before);
    /* The failed steps did not count: the next good step is step 3 everywhere. */
    assert_int_equal(ct_trainer_steps(t), 2);
    CT_ASSERT_OK(ct_trainer_set_input(t, 1, good, 5));
    CT_ASSERT_OK(ct_trainer_step(t, 1));
    assert_int_equal(ct_trainer_steps(t), 3);
    CT_ASSERT_OK(ct_trainer_last_lr(t, &lr));
    assert_true(lr == ct_optimizer_lr_at(&opt, 3));
    ct_trainer_free(t);
    ct_morphism_free(m);
    ct_param_free(E);
    ct_param_free(W);
  }
}

/* Ids exactly at the bound (token id == vocab, target == classes) are out of
 * range, and of several bad ids in a batch (in several blocks) the lowest
 * position is reported, whatever order the device ran its threads in: for
 * embedding, cross_entropy and softmax_cross_entropy. Then good ids run. */
static void test_ids_at_the_bound(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  enum { N = 600, V = 5, C = 6 };
  const int at[4] = {37, 38, 300, N - 1}; /* bad positions; at[0] holds the bound */
  ct_param *E = make_param("E", 2, V, 3, 1);
  ct_object tk, dist, lg;
  CT_ASSERT_OK(ct_object_tokens(&tk, N));
  CT_ASSERT_OK(ct_object_matrix(&dist, CT_ROLE_DIST, N, C));
  CT_ASSERT_OK(ct_object_matrix(&lg, CT_ROLE_LOGITS, N, C));
  ct_morphism *ms[3];
  const ct_op ops[3] = {CT_OP_EMBEDDING, CT_OP_CROSS_ENTROPY, CT_OP_SOFTMAX_XENT};
  CT_ASSERT_OK(ct_embedding(&ms[0], &tk, E));
  CT_ASSERT_OK(ct_cross_entropy(&ms[1], &dist, &tk));
  CT_ASSERT_OK(ct_softmax_cross_entropy(&ms[2], &lg, &tk));
  for (int k = 0; k < 3; k++) {
    int32_t limit = k ? C : V;
    inputs in = make_inputs(ms[k], (int64_t[]){V, limit}, 0.01f, 1.0f, 1000 + k);
    int32_t *ids = in.data[k ? 1 : 0];
    const int32_t bad[4] = {limit, -1, INT32_MAX, limit + 1};
    for (int b = 0; b < 4; b++) ids[at[b]] = bad[b];
    ct_plan *p;
    CT_ASSERT_OK(ct_compile(&p, ms[k], f->dev, CT_PLAN_FORWARD | CT_PLAN_GUARD));
    for (int i = 0; i < in.n; i++) {
      int64_t n = ct_object_numel(ct_morphism_dom(ms[k], i));
      CT_ASSERT_OK(ct_plan_set_input(p, i, in.data[i], n));
    }
    CT_ASSERT_STATUS(ct_plan_forward(p), CT_ERR_RANGE);
    char want[160];
    snprintf(want, sizeof want, "node 0 (%s): %s %d at position %d is outside [0, %d)",
             ct_op_name(ops[k]), k ? "target id" : "token id", limit, at[0], limit);
    CT_ASSERT_MESSAGE_HAS(want);
    CT_ASSERT_OK(ct_plan_check_guards(p));
    for (int b = 0; b < 4; b++) ids[at[b]] = b;
    CT_ASSERT_OK(ct_plan_set_input(p, k ? 1 : 0, ids, N));
    CT_ASSERT_OK(ct_plan_forward(p));
    ct_plan_free(p);
    free_inputs(&in);
    ct_morphism_free(ms[k]);
  }
  ct_param_free(E);
}

/* A plan larger than any device: the error names the plan's size. */
static void test_out_of_memory_names_plan_size(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  ct_object huge;
  CT_ASSERT_OK(ct_object_matrix(&huge, CT_ROLE_HIDDEN, (int64_t)1 << 19, (int64_t)1 << 18));
  ct_morphism *id = mk_identity1(&huge);
  ct_plan *p = NULL;
  CT_ASSERT_STATUS(ct_compile(&p, id, f->dev, CT_PLAN_FORWARD), CT_ERR_NOMEM);
  CT_ASSERT_MESSAGE_HAS("cannot allocate the plan");
  CT_ASSERT_MESSAGE_HAS("549755813888 bytes of buffers");
  assert_null(p);
  ct_morphism_free(id);
}

/* ---- the book's numbers ------------------------------------------------------- */

static void test_book_numbers_match_cpu(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  ct_book_result d, c;
  CT_ASSERT_OK(ct_book_run(f->dev, &d, NULL));
  CT_ASSERT_OK(ct_book_run(f->cpu, &c, NULL));
  float da[CT_BOOK_VOCAB + 3], ca[CT_BOOK_VOCAB + 3];
  for (int i = 0; i < CT_BOOK_VOCAB; i++) da[i] = d.p_next_given_I[i], ca[i] = c.p_next_given_I[i];
  da[5] = d.loss_love, ca[5] = c.loss_love;
  da[6] = d.loss_before, ca[6] = c.loss_before;
  da[7] = d.loss_after, ca[7] = c.loss_after;
  double worst = 0;
  for (int i = 0; i < 8; i++) worst = fmax(worst, fabs((double)da[i] - (double)ca[i]));
  print_message("    book numbers: largest |%s - cpu| = %.3g (loss_after %.9g vs %.9g)\n", f->name,
                worst, d.loss_after, c.loss_after);
  assert_true(worst <= 1e-5);
  assert_true(d.composed_equals_direct);
}

/* ---- device-specific features ------------------------------------------------- */

/* A recorded step graph replays the same numbers as queued launches (cuda);
 * backends without graphs say so. */
static void test_step_graph(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  ct_param *P[2][2];
  ct_trainer *t[2];
  ct_optimizer opt;
  CT_ASSERT_OK(ct_optimizer_sgd(&opt, 0.3f));
  int32_t ids[20], tg[20];
  for (int i = 0; i < 20; i++) ids[i] = i % 7, tg[i] = (i * 3) % 7;
  for (int k = 0; k < 2; k++) {
    P[k][0] = make_param("E", 2, 7, 5, 1);
    P[k][1] = make_param("W", 2, 5, 7, 2);
    ct_morphism *m = book_pipeline(P[k][0], P[k][1], NULL, 20);
    CT_ASSERT_OK(ct_trainer_new(&t[k], m, f->dev, &opt));
    CT_ASSERT_OK(ct_trainer_set_input(t[k], 0, ids, 20));
    CT_ASSERT_OK(ct_trainer_set_input(t[k], 1, tg, 20));
    ct_morphism_free(m);
  }
  ct_status s = ct_trainer_set_graph(t[0], true);
  if (s == CT_ERR_UNSUPPORTED) {
    print_message("    %s has no step graphs: %s\n", f->name, ct_last_error());
  } else {
    CT_ASSERT_OK(s);
    float a, b;
    for (int k = 0; k < 2; k++) CT_ASSERT_OK(ct_trainer_step(t[k], 25));
    CT_ASSERT_OK(ct_trainer_eval(t[0], &a));
    CT_ASSERT_OK(ct_trainer_eval(t[1], &b));
    print_message("    loss after 25 steps: graph %.9g, queued %.9g\n", a, b);
    assert_true(a == b);
  }
  for (int k = 0; k < 2; k++) {
    ct_trainer_free(t[k]);
    ct_param_free(P[k][0]);
    ct_param_free(P[k][1]);
  }
}

/* TF32 is opt-in; with it on, a long product stays within its own tolerance:
 * normalised error sum (a-b)^2 / sum b^2 <= 1e-5 (TF32 keeps 10 mantissa bits). */
static void test_tf32_opt_in(void **state) {
  fixture *f = *state;
  NEED_DEVICE(f);
  ct_status s = ct_backend_set_option(f->name, "tf32", "on");
  if (s != CT_OK) {
    assert_int_equal(s, CT_ERR_INVALID_ARG);
    print_message("    %s has no tf32 option: %s\n", f->name, ct_last_error());
    return;
  }
  int64_t rows = 300, k = 1000, cols = 200;
  ct_param *W = make_param("W", 2, k, cols, 5);
  ct_object x;
  ct_morphism *m;
  CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_HIDDEN, rows, k));
  CT_ASSERT_OK(ct_linear(&m, &x, CT_ROLE_LOGITS, W, NULL));
  inputs in = make_inputs(m, NULL, -1, 1, 6);
  float *y[2];
  const ct_backend *be[2] = {f->dev, f->cpu};
  for (int b = 0; b < 2; b++) {
    ct_plan *p;
    y[b] = malloc((size_t)(rows * cols) * 4);
    CT_ASSERT_OK(ct_compile(&p, m, be[b], CT_PLAN_FORWARD));
    CT_ASSERT_OK(ct_plan_set_input(p, 0, in.data[0], rows * k));
    CT_ASSERT_OK(ct_plan_forward(p));
    CT_ASSERT_OK(ct_plan_get_output(p, 0, y[b], rows * cols));
    ct_plan_free(p);
  }
  CT_ASSERT_OK(ct_backend_set_option(f->name, "tf32", "off"));
  double num = 0, den = 0;
  for (int64_t i = 0; i < rows * cols; i++) {
    num += ((double)y[0][i] - y[1][i]) * ((double)y[0][i] - y[1][i]);
    den += (double)y[1][i] * y[1][i];
  }
  print_message("    tf32 linear [%lld,%lld]x[%lld,%lld]: normalised error %.3g\n", (long long)rows,
                (long long)k, (long long)k, (long long)cols, num / den);
  assert_true(num / den <= 1e-5);
  free(y[0]);
  free(y[1]);
  free_inputs(&in);
  ct_morphism_free(m);
  ct_param_free(W);
}

#include "test_cross_seq.inc"
#include "test_cross_gpt.inc"

/* ---- coverage ------------------------------------------------------------------- */

/* Prints the generator x direction cells this run checked on the backend, and
 * fails if a cell the backend implements went unchecked (when every test ran). */
static void test_coverage(void **state) {
  fixture *f = *state;
  if (f->index < 0) fail_msg("backend '%s' is not in the registry", f->name);
  /* where the cells ran: the device itself, or the CPU simulator of it */
  const char *where = !f->dev ? "nowhere (absent)" : f->simulated ? "simulator" : "hardware";
  if (f->dev)
    print_message("    ran on %s: %s\n", where, f->device);
  print_message("    %-24s %-9s %-12s %-10s %s\n", "generator", "direction", "cell", "ran on",
                "shapes checked");
  int gaps = 0;
  for (int op = 0; op < CT_OP_COUNT; op++)
    for (int dir = 0; dir < 2; dir++) {
      ct_cell cell = CT_CELL_MISSING;
      ct_status s = ct_backend_cell(f->index, (ct_op)op, (ct_direction)dir, &cell);
      const char *cname = s == CT_OK ? ct_cell_name(cell) : "not built";
      print_message("    %-24s %-9s %-12s %-10s %d\n", ct_op_name((ct_op)op),
                    dir ? "reverse" : "forward", cname, checked[op][dir] ? where : "-",
                    checked[op][dir]);
      if (s == CT_OK && cell == CT_CELL_MISSING) gaps++;
      if (f->dev && !filtered && s == CT_OK && cell != CT_CELL_UNSUPPORTED &&
          cell != CT_CELL_FORWARD_ONLY && !checked[op][dir])
        gaps++;
    }
  if (!f->dev) {
    print_message("    skipped (%s absent): %s\n", f->name, f->absent);
    skip();
  }
  assert_int_equal(gaps, 0);
}

int main(int argc, char **argv) {
  if (argc > 1) backend_name = argv[1];
  const char *filter = getenv("CTML_TEST_FILTER");
  filtered = filter && *filter;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_embedding),
      cmocka_unit_test(test_linear),
      cmocka_unit_test(test_rowwise),
      cmocka_unit_test(test_cross_entropy_floor),
      cmocka_unit_test(test_structural),
      cmocka_unit_test(test_book_pipeline_node_by_node),
      cmocka_unit_test(test_residual_node_by_node),
      cmocka_unit_test(test_training_tracks_cpu),
      cmocka_unit_test(test_token_id_out_of_range),
      cmocka_unit_test(test_bad_target_leaves_params),
      cmocka_unit_test(test_ids_at_the_bound),
      cmocka_unit_test(test_out_of_memory_names_plan_size),
      cmocka_unit_test(test_book_numbers_match_cpu),
      cmocka_unit_test(test_step_graph),
      cmocka_unit_test(test_tf32_opt_in),
      cmocka_unit_test(test_pos_embedding),
      cmocka_unit_test(test_layernorm),
      cmocka_unit_test(test_add_layernorm),
      cmocka_unit_test(test_shared_params_accumulate),
      cmocka_unit_test(test_gelu),
      cmocka_unit_test(test_linear_gelu),
      cmocka_unit_test(test_qkv),
      cmocka_unit_test(test_heads),
      cmocka_unit_test(test_attn_scores),
      cmocka_unit_test(test_causal_softmax),
      cmocka_unit_test(test_softmax_large_logits),
      cmocka_unit_test(test_attn_apply),
      cmocka_unit_test(test_causal_attention),
      cmocka_unit_test(test_kv_attention),
      cmocka_unit_test(test_kv_attention_two_runs),
      cmocka_unit_test(test_kv_attention_caches),
      cmocka_unit_test(test_self_attention_node_by_node),
      cmocka_unit_test(test_adamw_trains_like_cpu),
      cmocka_unit_test(test_seq_training_deterministic),
      cmocka_unit_test(test_cross_entropy_long),
      cmocka_unit_test(test_grad_norm_long),
      cmocka_unit_test(test_gpt_node_by_node),
      cmocka_unit_test(test_gpt_trains_like_cpu),
      cmocka_unit_test(test_gpt_step_graph),
      cmocka_unit_test(test_coverage),
  };
  char group[64];
  snprintf(group, sizeof group, "cross_%s", backend_name);
  return CT_RUN_TESTS(group, tests, setup, teardown);
}
