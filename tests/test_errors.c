/* SPDX-License-Identifier: MIT */
/* Bad input gives a status and a message that names the culprit, never a
 * crash, and leaves the caller's data as it was (DESIGN.md, "Errors"). One
 * test per class of bad input; each asserts the exact status and what the
 * message must mention. */
#include "ct_test.h"

/* Asserts expr returns want and that the message mentions every needle. */
#define CT_EXPECT(expr, want, ...)                                                     \
  do {                                                                                 \
    CT_ASSERT_STATUS(expr, want);                                                      \
    const char *const ct_needles_[] = {__VA_ARGS__};                                   \
    for (size_t ct_k_ = 0; ct_k_ < sizeof ct_needles_ / sizeof *ct_needles_; ct_k_++)  \
      CT_ASSERT_MESSAGE_HAS(ct_needles_[ct_k_]);                                       \
  } while (0)

static const ct_backend *cpu(void) {
  const ct_backend *b = NULL;
  CT_ASSERT_OK(ct_backend_get("cpu", &b));
  return b;
}

/* ---- the tiny model ------------------------------------------------------ */

/* embedding ; linear ; loss, on TOKENS[N] (x) TOKENS[N] (ids, targets) -> LOSS.
 * The loss is softmax_cross_entropy when fused, else softmax ; cross_entropy. */
enum { N = 4, V = 5, D = 3 };

typedef struct model {
  ct_param *E, *W; /* E: [V, D], W: [D, V]; random values in [-1, 1) */
  ct_morphism *loss;
} model;

static void free_morphisms(ct_morphism *const *ms, size_t n) {
  for (size_t i = 0; i < n; i++) ct_morphism_free(ms[i]);
}
#define FREE_MORPHISMS(...)                                   \
  free_morphisms((ct_morphism *const[]){__VA_ARGS__},         \
                 sizeof((ct_morphism *const[]){__VA_ARGS__}) / sizeof(ct_morphism *))

static model model_new(bool fused, uint64_t seed) {
  model m = {0};
  ct_rng rng = {seed};
  int64_t e[2] = {V, D}, w[2] = {D, V};
  float ev[V * D], wv[D * V];
  ct_rng_fill(&rng, ev, V * D, -1.0f, 1.0f);
  ct_rng_fill(&rng, wv, D * V, -1.0f, 1.0f);
  CT_ASSERT_OK(ct_param_new(&m.E, "E", 2, e));
  CT_ASSERT_OK(ct_param_new(&m.W, "W", 2, w));
  CT_ASSERT_OK(ct_param_set(m.E, ev, V * D));
  CT_ASSERT_OK(ct_param_set(m.W, wv, D * V));

  ct_object tok, hid, logits, dist;
  CT_ASSERT_OK(ct_object_tokens(&tok, N));
  CT_ASSERT_OK(ct_object_matrix(&hid, CT_ROLE_HIDDEN, N, D));
  CT_ASSERT_OK(ct_object_matrix(&logits, CT_ROLE_LOGITS, N, V));
  CT_ASSERT_OK(ct_object_matrix(&dist, CT_ROLE_DIST, N, V));
  ct_morphism *emb = NULL, *lin = NULL, *soft = NULL, *head = NULL, *id = NULL;
  CT_ASSERT_OK(ct_embedding(&emb, &tok, m.E));
  CT_ASSERT_OK(ct_linear(&lin, &hid, CT_ROLE_LOGITS, m.W, NULL));
  ct_morphism *net = mk_compose(lin, emb); /* TOKENS -> LOGITS */
  if (fused) {
    CT_ASSERT_OK(ct_softmax_cross_entropy(&head, &logits, &tok));
  } else {
    CT_ASSERT_OK(ct_softmax(&soft, &logits));
    ct_morphism *probs = mk_compose(soft, net); /* TOKENS -> DIST */
    ct_morphism_free(net);
    net = probs;
    CT_ASSERT_OK(ct_cross_entropy(&head, &dist, &tok));
  }
  ct_morphism *pair = NULL;
  CT_ASSERT_OK(ct_identity(&id, &tok, 1));
  CT_ASSERT_OK(ct_tensor(&pair, net, id));
  m.loss = mk_compose(head, pair);
  FREE_MORPHISMS(emb, lin, soft, head, id, net, pair);
  return m;
}

static void model_free(model *m) {
  ct_morphism_free(m->loss);
  ct_param_free(m->E);
  ct_param_free(m->W);
}

/* Host values of E then W, for checking that an error changed nothing. */
typedef struct snapshot {
  float e[V * D], w[D * V];
} snapshot;

static snapshot model_snapshot(const model *m) {
  snapshot s;
  CT_ASSERT_OK(ct_param_get(m->E, s.e, V * D));
  CT_ASSERT_OK(ct_param_get(m->W, s.w, D * V));
  return s;
}

static void assert_unchanged(const model *m, const snapshot *before) {
  snapshot now = model_snapshot(m);
  assert_memory_equal(now.e, before->e, sizeof now.e);
  assert_memory_equal(now.w, before->w, sizeof now.w);
}

static const int32_t good_ids[N] = {0, 1, 2, 3}, good_targets[N] = {1, 2, 3, 4};

/* An SGD trainer for the model, its batch set to (good_ids, good_targets). */
static ct_trainer *trainer_new(const model *m, float lr) {
  ct_optimizer opt;
  ct_trainer *t = NULL;
  CT_ASSERT_OK(ct_optimizer_sgd(&opt, lr));
  CT_ASSERT_OK(ct_trainer_new(&t, m->loss, cpu(), &opt));
  CT_ASSERT_OK(ct_trainer_set_input(t, 0, good_ids, N));
  CT_ASSERT_OK(ct_trainer_set_input(t, 1, good_targets, N));
  return t;
}

/* ---- objects --------------------------------------------------------------- */

static void test_bad_objects(void **state) {
  (void)state;
  ct_object o, before;
  memset(&o, 0x5a, sizeof o);
  before = o;
  int64_t zero[2] = {3, 0}, neg[3] = {2, 2, -7}, dims[5] = {1, 1, 1, 1, 1};
  CT_EXPECT(ct_object_make(&o, CT_F32, CT_ROLE_HIDDEN, 2, zero), CT_ERR_SHAPE, "HIDDEN",
            "dimension 1", "is 0");
  CT_EXPECT(ct_object_make(&o, CT_F32, CT_ROLE_LOGITS, 3, neg), CT_ERR_SHAPE, "LOGITS",
            "dimension 2", "-7");
  CT_EXPECT(ct_object_matrix(&o, CT_ROLE_DIST, 0, 4), CT_ERR_SHAPE, "DIST", "dimension 0");
  CT_EXPECT(ct_object_tokens(&o, -1), CT_ERR_SHAPE, "TOKENS", "-1");
  CT_EXPECT(ct_object_make(&o, CT_F32, CT_ROLE_HIDDEN, 5, dims), CT_ERR_INVALID_ARG, "rank 5");
  CT_EXPECT(ct_object_make(&o, CT_F32, CT_ROLE_HIDDEN, -1, dims), CT_ERR_INVALID_ARG, "rank -1");
  CT_EXPECT(ct_object_make(&o, CT_F32, CT_ROLE_TOKENS, 1, dims), CT_ERR_SHAPE, "TOKENS", "i32",
            "f32");
  CT_EXPECT(ct_object_make(&o, CT_I32, CT_ROLE_HIDDEN, 1, dims), CT_ERR_SHAPE, "HIDDEN", "i32");
  CT_EXPECT(ct_object_make(&o, CT_F32, CT_ROLE_LOSS, 1, dims), CT_ERR_SHAPE, "LOSS", "rank 1");
  CT_EXPECT(ct_object_make(&o, CT_F32, CT_ROLE_HIDDEN, 2, NULL), CT_ERR_INVALID_ARG, "dims",
            "NULL");
  CT_EXPECT(ct_object_make(NULL, CT_F32, CT_ROLE_HIDDEN, 1, dims), CT_ERR_INVALID_ARG, "out",
            "NULL");
  CT_EXPECT(ct_object_make(&o, (ct_dtype)7, CT_ROLE_HIDDEN, 1, dims), CT_ERR_INVALID_ARG,
            "dtype 7");
  CT_EXPECT(ct_object_make(&o, CT_F32, (ct_role)42, 1, dims), CT_ERR_INVALID_ARG, "role 42");
  assert_memory_equal(&o, &before, sizeof o); /* no failing call wrote *out */

  /* A hand-built object that bypasses the constructor is caught by the generators. */
  ct_object bad = {.dtype = CT_F32, .role = CT_ROLE_LOGITS, .rank = 2, .dims = {3, 0}};
  ct_morphism *m = (ct_morphism *)&bad;
  CT_EXPECT(ct_softmax(&m, &bad), CT_ERR_SHAPE, "ct_softmax", "dimension 1", "is 0");
  assert_null(m);
  bad.rank = 9;
  CT_EXPECT(ct_copy(&m, &bad), CT_ERR_SHAPE, "ct_copy", "rank 9");
  assert_null(m);

  /* Parameters are objects too: the message names the parameter. */
  ct_param *p = NULL;
  CT_EXPECT(ct_param_new(&p, "W_bad", 2, zero), CT_ERR_SHAPE, "W_bad", "dimension 1");
  assert_null(p);
  CT_EXPECT(ct_param_new(&p, "scalar", 0, NULL), CT_ERR_SHAPE, "scalar", "rank");
  assert_null(p);
}

/* ---- mismatched objects in composition ----------------------------------- */

static void test_compose_role_mismatch(void **state) {
  (void)state;
  model md = model_new(true, 1);
  ct_object tok, logits;
  ct_morphism *emb = NULL, *soft = NULL, *m = NULL;
  CT_ASSERT_OK(ct_object_tokens(&tok, N));
  CT_ASSERT_OK(ct_object_matrix(&logits, CT_ROLE_LOGITS, N, D));
  CT_ASSERT_OK(ct_embedding(&emb, &tok, md.E)); /* TOKENS -> HIDDEN f32[N,D] */
  CT_ASSERT_OK(ct_softmax(&soft, &logits));    /* LOGITS f32[N,D] -> DIST */
  CT_EXPECT(ct_compose(&m, soft, emb), CT_ERR_SHAPE, "ct_compose", "HIDDEN f32[4,3]",
            "LOGITS f32[4,3]", "object 0");
  assert_null(m);
  CT_EXPECT(ct_then(&m, emb, soft), CT_ERR_SHAPE, "HIDDEN", "LOGITS");
  assert_null(m);
  /* Same role, different shape. */
  ct_object wide;
  ct_morphism *soft_wide = NULL;
  CT_ASSERT_OK(ct_object_matrix(&wide, CT_ROLE_LOGITS, N, V));
  CT_ASSERT_OK(ct_softmax(&soft_wide, &wide));
  CT_EXPECT(ct_compose(&m, soft_wide, soft), CT_ERR_SHAPE, "DIST f32[4,3]", "LOGITS f32[4,5]");
  assert_null(m);
  ct_morphism_free(emb);
  ct_morphism_free(soft);
  ct_morphism_free(soft_wide);
  model_free(&md);
}

static void test_compose_count_mismatch(void **state) {
  (void)state;
  ct_object logits, tok;
  ct_morphism *soft = NULL, *xent = NULL, *id2 = NULL, *m = NULL;
  CT_ASSERT_OK(ct_object_matrix(&logits, CT_ROLE_LOGITS, N, V));
  CT_ASSERT_OK(ct_object_tokens(&tok, N));
  CT_ASSERT_OK(ct_softmax(&soft, &logits));
  CT_ASSERT_OK(ct_softmax_cross_entropy(&xent, &logits, &tok));
  /* xent wants LOGITS (x) TOKENS; softmax gives one DIST. */
  CT_EXPECT(ct_compose(&m, xent, soft), CT_ERR_SHAPE, "1 object(s) against 2", "DIST", "TOKENS");
  assert_null(m);
  /* Two objects into a one-object domain. */
  ct_object two[2] = {logits, logits};
  CT_ASSERT_OK(ct_identity(&id2, two, 2));
  CT_EXPECT(ct_compose(&m, soft, id2), CT_ERR_SHAPE, "2 object(s) against 1");
  assert_null(m);
  ct_morphism_free(soft);
  ct_morphism_free(xent);
  ct_morphism_free(id2);
}

static void test_linear_bad_parameters(void **state) {
  (void)state;
  ct_object x;
  ct_param *W = NULL, *b = NULL, *flat = NULL;
  ct_morphism *m = NULL;
  int64_t w[2] = {4, 6}, bd[1] = {5}, fd[1] = {6};
  CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_HIDDEN, 3, 5));
  CT_ASSERT_OK(ct_param_new(&W, "W_proj", 2, w));
  CT_ASSERT_OK(ct_param_new(&b, "b_proj", 1, bd));
  CT_ASSERT_OK(ct_param_new(&flat, "W_flat", 1, fd));
  CT_EXPECT(ct_linear(&m, &x, CT_ROLE_HIDDEN, W, NULL), CT_ERR_SHAPE, "W_proj", "width 5",
            "PARAM f32[4,6]");
  assert_null(m);
  CT_ASSERT_OK(ct_object_matrix(&x, CT_ROLE_HIDDEN, 3, 4));
  CT_EXPECT(ct_linear(&m, &x, CT_ROLE_HIDDEN, W, b), CT_ERR_SHAPE, "b_proj", "5 entries",
            "W_proj", "6 columns");
  assert_null(m);
  CT_EXPECT(ct_linear(&m, &x, CT_ROLE_HIDDEN, flat, NULL), CT_ERR_SHAPE, "W_flat", "rank 2");
  CT_EXPECT(ct_linear(&m, &x, CT_ROLE_HIDDEN, W, W), CT_ERR_SHAPE, "bias", "W_proj", "rank 1");
  assert_null(m);
  ct_param_free(W);
  ct_param_free(b);
  ct_param_free(flat);
}

static void test_cross_entropy_bad_targets(void **state) {
  (void)state;
  ct_object dist, logits, tok3, tok4, hid;
  ct_morphism *m = NULL;
  CT_ASSERT_OK(ct_object_matrix(&dist, CT_ROLE_DIST, 4, V));
  CT_ASSERT_OK(ct_object_matrix(&logits, CT_ROLE_LOGITS, 4, V));
  CT_ASSERT_OK(ct_object_tokens(&tok3, 3));
  CT_ASSERT_OK(ct_object_tokens(&tok4, 4));
  CT_ASSERT_OK(ct_object_matrix(&hid, CT_ROLE_HIDDEN, 4, 1));
  CT_EXPECT(ct_cross_entropy(&m, &dist, &tok3), CT_ERR_SHAPE, "ct_cross_entropy", "targets",
            "TOKENS i32[3]", "DIST f32[4,5]");
  assert_null(m);
  CT_EXPECT(ct_softmax_cross_entropy(&m, &logits, &tok3), CT_ERR_SHAPE,
            "ct_softmax_cross_entropy", "TOKENS i32[3]", "LOGITS f32[4,5]");
  CT_EXPECT(ct_cross_entropy(&m, &dist, &hid), CT_ERR_SHAPE, "targets", "HIDDEN f32[4,1]");
  CT_EXPECT(ct_cross_entropy(&m, &dist, NULL), CT_ERR_INVALID_ARG, "targets", "NULL");
  assert_null(m);
  CT_ASSERT_OK(ct_cross_entropy(&m, &dist, &tok4)); /* the right targets are accepted */
  ct_morphism_free(m);
}

static void test_add_on_tokens(void **state) {
  (void)state;
  ct_object tok;
  ct_morphism *m = NULL;
  CT_ASSERT_OK(ct_object_tokens(&tok, 7));
  CT_EXPECT(ct_add(&m, &tok), CT_ERR_SHAPE, "ct_add", "TOKENS i32[7]");
  assert_null(m);
}

static void test_generators_wrong_role(void **state) {
  (void)state;
  model md = model_new(true, 2);
  ct_object hid, logits, dist, tok;
  ct_morphism *m = NULL;
  CT_ASSERT_OK(ct_object_matrix(&hid, CT_ROLE_HIDDEN, N, D));
  CT_ASSERT_OK(ct_object_matrix(&logits, CT_ROLE_LOGITS, N, D));
  CT_ASSERT_OK(ct_object_matrix(&dist, CT_ROLE_DIST, N, V));
  CT_ASSERT_OK(ct_object_tokens(&tok, N));
  CT_EXPECT(ct_softmax(&m, &hid), CT_ERR_SHAPE, "ct_softmax", "LOGITS", "HIDDEN f32[4,3]");
  CT_EXPECT(ct_linear(&m, &logits, CT_ROLE_HIDDEN, md.W, NULL), CT_ERR_SHAPE, "ct_linear",
            "HIDDEN", "LOGITS f32[4,3]");
  CT_EXPECT(ct_linear(&m, &hid, CT_ROLE_DIST, md.W, NULL), CT_ERR_SHAPE, "output role", "DIST");
  CT_EXPECT(ct_embedding(&m, &hid, md.E), CT_ERR_SHAPE, "ct_embedding", "TOKENS",
            "HIDDEN f32[4,3]");
  CT_EXPECT(ct_cross_entropy(&m, &logits, &tok), CT_ERR_SHAPE, "ct_cross_entropy", "DIST",
            "LOGITS f32[4,3]");
  CT_EXPECT(ct_softmax_cross_entropy(&m, &dist, &tok), CT_ERR_SHAPE, "LOGITS", "DIST f32[4,5]");
  assert_null(m);
  model_free(&md);
}

/* ---- token ids out of range at run time ---------------------------------- */

/* Compiles the model forward-only and runs it on (ids, targets). */
static ct_status run_forward(const model *md, const int32_t *ids, const int32_t *targets,
                             ct_plan **plan) {
  CT_ASSERT_OK(ct_compile(plan, md->loss, cpu(), CT_PLAN_FORWARD));
  CT_ASSERT_OK(ct_plan_set_input(*plan, 0, ids, N));
  CT_ASSERT_OK(ct_plan_set_input(*plan, 1, targets, N));
  return ct_plan_forward(*plan);
}

static void test_token_id_out_of_range(void **state) {
  (void)state;
  model md = model_new(false, 3);
  ct_plan *p = NULL;
  float loss;
  const int32_t id_is_v[N] = {0, 1, V, 2}, id_negative[N] = {-1, 0, 0, 0};
  CT_EXPECT(run_forward(&md, id_is_v, good_targets, &p), CT_ERR_RANGE, "node 0", "embedding",
            "token id 5", "position 2", "[0, 5)");
  /* Nothing stale can be read after the failed run. */
  CT_EXPECT(ct_plan_get_output(p, 0, &loss, 1), CT_ERR_STATE, "ct_plan_forward");
  ct_plan_free(p);
  CT_EXPECT(run_forward(&md, id_negative, good_targets, &p), CT_ERR_RANGE, "embedding",
            "token id -1", "position 0");
  /* The same plan runs once the input is fixed. */
  CT_ASSERT_OK(ct_plan_set_input(p, 0, good_ids, N));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 0, &loss, 1));
  assert_true(isfinite(loss));
  ct_plan_free(p);
  model_free(&md);
}

static void test_target_out_of_range(void **state) {
  (void)state;
  const int32_t target_is_v[N] = {1, 2, 3, V}, target_negative[N] = {1, -2, 3, 4};
  model split = model_new(false, 4), fused = model_new(true, 4);
  ct_plan *p = NULL;
  CT_EXPECT(run_forward(&split, good_ids, target_is_v, &p), CT_ERR_RANGE, "cross_entropy",
            "target id 5", "position 3", "[0, 5)");
  ct_plan_free(p);
  CT_EXPECT(run_forward(&split, good_ids, target_negative, &p), CT_ERR_RANGE, "cross_entropy",
            "target id -2", "position 1");
  ct_plan_free(p);
  CT_EXPECT(run_forward(&fused, good_ids, target_is_v, &p), CT_ERR_RANGE,
            "softmax_cross_entropy", "target id 5", "position 3");
  ct_plan_free(p);
  CT_EXPECT(run_forward(&fused, good_ids, target_negative, &p), CT_ERR_RANGE,
            "softmax_cross_entropy", "target id -2", "position 1");
  ct_plan_free(p);
  model_free(&split);
  model_free(&fused);
}

static void test_trainer_out_of_range_changes_nothing(void **state) {
  (void)state;
  const int32_t bad_ids[N] = {0, 1, 2, V + 3}, bad_targets[N] = {1, 2, -1, 4};
  model md = model_new(true, 5);
  snapshot before = model_snapshot(&md);
  ct_trainer *t = trainer_new(&md, 0.5f);

  CT_ASSERT_OK(ct_trainer_set_input(t, 0, bad_ids, N));
  CT_EXPECT(ct_trainer_step(t, 3), CT_ERR_RANGE, "embedding", "token id 8", "position 3");
  assert_int_equal(ct_trainer_steps(t), 0);
  CT_ASSERT_OK(ct_trainer_set_input(t, 0, good_ids, N));
  CT_ASSERT_OK(ct_trainer_set_input(t, 1, bad_targets, N));
  CT_EXPECT(ct_trainer_step(t, 1), CT_ERR_RANGE, "softmax_cross_entropy", "target id -1",
            "position 2");
  assert_int_equal(ct_trainer_steps(t), 0);
  assert_unchanged(&md, &before);
  /* Nor did the failed steps move the trainer's own copy of the parameters. */
  CT_ASSERT_OK(ct_trainer_store_params(t));
  assert_unchanged(&md, &before);
  ct_trainer_free(t);
  model_free(&md);
}

/* ---- empty token sequences / windowing ------------------------------------ */

static void test_window_pairs_errors(void **state) {
  (void)state;
  const int32_t seq[6] = {0, 3, 1, 4, 2, 0}, bad[4] = {0, 1, 9, 2}, neg[3] = {0, -4, 1};
  int32_t in[8], tg[8], in0[8], tg0[8];
  int64_t pairs = -7;
  for (int i = 0; i < 8; i++) in[i] = tg[i] = in0[i] = tg0[i] = 99;
  CT_EXPECT(ct_window_pairs(seq, 0, V, in, tg, 8, &pairs), CT_ERR_INVALID_ARG, "0 tokens");
  CT_EXPECT(ct_window_pairs(seq, 1, V, in, tg, 8, &pairs), CT_ERR_INVALID_ARG, "1 tokens",
            "at least 2");
  CT_EXPECT(ct_window_pairs(bad, 4, V, in, tg, 8, &pairs), CT_ERR_RANGE, "token id 9",
            "position 2", "[0, 5)");
  CT_EXPECT(ct_window_pairs(neg, 3, V, in, tg, 8, &pairs), CT_ERR_RANGE, "token id -4",
            "position 1");
  CT_EXPECT(ct_window_pairs(seq, 6, V, in, tg, 4, &pairs), CT_ERR_RANGE, "5 pairs", "4 slots");
  CT_EXPECT(ct_window_pairs(seq, 6, 0, in, tg, 8, &pairs), CT_ERR_INVALID_ARG, "vocabulary",
            "0");
  /* No failing call wrote to the caller's buffers. */
  assert_memory_equal(in, in0, sizeof in);
  assert_memory_equal(tg, tg0, sizeof tg);
  assert_int_equal(pairs, -7);
  CT_ASSERT_OK(ct_window_pairs(seq, 6, V, in, tg, 5, &pairs)); /* exactly enough room */
  assert_int_equal(pairs, 5);
}

/* ---- NaN / Inf input ---------------------------------------------------- */

static void test_nonfinite_inputs(void **state) {
  (void)state;
  /* softmax (x) softmax: two f32 inputs, so the index in the message matters. */
  ct_object logits;
  ct_morphism *soft = NULL, *two = NULL;
  ct_plan *p = NULL, *r = NULL;
  CT_ASSERT_OK(ct_object_matrix(&logits, CT_ROLE_LOGITS, 2, 3));
  CT_ASSERT_OK(ct_softmax(&soft, &logits));
  CT_ASSERT_OK(ct_tensor(&two, soft, soft));
  CT_ASSERT_OK(ct_compile(&p, two, cpu(), CT_PLAN_FORWARD));
  float x[6] = {0.1f, 0.2f, 0.3f, -1.0f, 2.0f, 0.5f}, y_before[6], y_after[6];
  CT_ASSERT_OK(ct_plan_set_input(p, 0, x, 6));
  CT_ASSERT_OK(ct_plan_set_input(p, 1, x, 6));
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 1, y_before, 6));

  float nan_x[6], inf_x[6];
  memcpy(nan_x, x, sizeof x);
  memcpy(inf_x, x, sizeof x);
  nan_x[4] = NAN;
  inf_x[2] = -INFINITY;
  CT_EXPECT(ct_plan_set_input(p, 1, nan_x, 6), CT_ERR_NONFINITE, "ct_plan_set_input", "input 1",
            "element 4", "nan");
  CT_EXPECT(ct_plan_set_input(p, 0, inf_x, 6), CT_ERR_NONFINITE, "input 0", "element 2", "inf");
  /* The refused values never reached the plan: it still holds the last good inputs. */
  CT_ASSERT_OK(ct_plan_get_output(p, 1, y_after, 6));
  assert_memory_equal(y_after, y_before, sizeof y_after);
  CT_ASSERT_OK(ct_plan_forward(p));
  CT_ASSERT_OK(ct_plan_get_output(p, 1, y_after, 6));
  assert_memory_equal(y_after, y_before, sizeof y_after);

  /* Output cotangents are checked the same way. */
  CT_ASSERT_OK(ct_compile(&r, two, cpu(), CT_PLAN_REVERSE));
  float dy[6] = {1, 0, 0, 0, INFINITY, 0};
  CT_EXPECT(ct_plan_set_output_grad(r, 1, dy, 6), CT_ERR_NONFINITE, "ct_plan_set_output_grad",
            "output cotangent 1", "element 4", "inf");

  /* And parameter values, which stay as they were. */
  model md = model_new(true, 6);
  snapshot before = model_snapshot(&md);
  float w[D * V];
  memcpy(w, before.w, sizeof w);
  w[7] = NAN;
  CT_EXPECT(ct_param_set(md.W, w, D * V), CT_ERR_NONFINITE, "ct_param_set", "'W'", "element 7",
            "nan");
  w[7] = INFINITY;
  CT_EXPECT(ct_param_set(md.W, w, D * V), CT_ERR_NONFINITE, "'W'", "element 7", "inf");
  assert_unchanged(&md, &before);

  model_free(&md);
  ct_plan_free(p);
  ct_plan_free(r);
  ct_morphism_free(soft);
  ct_morphism_free(two);
}

/* ---- NaN loss ------------------------------------------------------------ */

/* A learning rate of 1e30 blows the parameters up within a few steps: the
 * logits overflow, softmax turns them into NaN, and the loss must say so. */
static void check_nan_loss(bool fused, uint64_t seed) {
  model md = model_new(fused, seed);
  snapshot before = model_snapshot(&md);
  ct_trainer *t = trainer_new(&md, 1e30f);
  ct_status s = CT_OK;
  for (int k = 0; k < 20 && s == CT_OK; k++) s = ct_trainer_step(t, 1);
  CT_EXPECT(s, CT_ERR_NONFINITE, "ct_trainer_step", "loss");
  float loss = 0.0f;
  CT_EXPECT(ct_trainer_eval(t, &loss), CT_ERR_NONFINITE, "ct_trainer_eval", "loss");
  assert_unchanged(&md, &before);
  ct_trainer_free(t);
  model_free(&md);
}

static void test_nan_loss_stops_trainer(void **state) {
  (void)state;
  check_nan_loss(true, 7);  /* softmax_cross_entropy */
  check_nan_loss(false, 7); /* softmax ; cross_entropy */
}

/* Whatever the loss reports, parameters that are no longer finite never reach the host. */
static void test_store_refuses_nonfinite_params(void **state) {
  (void)state;
  model md = model_new(true, 8);
  snapshot before = model_snapshot(&md);
  ct_trainer *t = trainer_new(&md, 1e30f);
  for (int k = 0; k < 5; k++) {
    ct_status s = ct_trainer_step(t, 1);
    if (s != CT_OK) assert_int_equal(s, CT_ERR_NONFINITE);
  }
  CT_EXPECT(ct_trainer_store_params(t), CT_ERR_NONFINITE, "ct_plan_store_params", "element",
            "unchanged");
  assert_true(strstr(ct_last_error(), "'E'") || strstr(ct_last_error(), "'W'"));
  assert_unchanged(&md, &before);
  ct_trainer_free(t);
  model_free(&md);
}

/* ---- learning rates and trainer construction ------------------------------ */

static void test_bad_learning_rate(void **state) {
  (void)state;
  const float bad[] = {0.0f, -1.0f, NAN, INFINITY, -INFINITY};
  ct_optimizer opt = {.kind = CT_OPT_SGD, .lr = 0.25f};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    CT_EXPECT(ct_optimizer_sgd(&opt, bad[i]), CT_ERR_INVALID_ARG, "ct_optimizer_sgd",
              "learning rate");
    assert_true(opt.lr == 0.25f); /* untouched */
  }
  CT_EXPECT(ct_optimizer_sgd(&opt, -1.0f), CT_ERR_INVALID_ARG, "-1");

  /* A hand-built optimizer is checked by the trainer too. */
  model md = model_new(true, 9);
  ct_trainer *t = (ct_trainer *)&opt;
  ct_optimizer zero = {.kind = CT_OPT_SGD, .lr = 0.0f}, nan_lr = {.kind = CT_OPT_SGD, .lr = NAN},
               kind = {.kind = (ct_opt_kind)7, .lr = 0.1f};
  CT_EXPECT(ct_trainer_new(&t, md.loss, cpu(), &zero), CT_ERR_INVALID_ARG, "ct_trainer_new",
            "learning rate 0");
  assert_null(t);
  CT_EXPECT(ct_trainer_new(&t, md.loss, cpu(), &nan_lr), CT_ERR_INVALID_ARG, "learning rate nan");
  CT_EXPECT(ct_trainer_new(&t, md.loss, cpu(), &kind), CT_ERR_INVALID_ARG, "optimizer 7");
  assert_null(t);
  model_free(&md);
}

static void test_trainer_needs_one_loss(void **state) {
  (void)state;
  model md = model_new(true, 10);
  ct_optimizer opt;
  ct_trainer *t = NULL;
  CT_ASSERT_OK(ct_optimizer_sgd(&opt, 0.1f));
  ct_object tok, hid;
  ct_morphism *emb = NULL, *lin = NULL, *net = NULL, *two = NULL, *drop = NULL;
  CT_ASSERT_OK(ct_object_tokens(&tok, N));
  CT_ASSERT_OK(ct_object_matrix(&hid, CT_ROLE_HIDDEN, N, D));
  CT_ASSERT_OK(ct_embedding(&emb, &tok, md.E));
  CT_ASSERT_OK(ct_linear(&lin, &hid, CT_ROLE_LOGITS, md.W, NULL));
  net = mk_compose(lin, emb);
  CT_EXPECT(ct_trainer_new(&t, net, cpu(), &opt), CT_ERR_SHAPE, "ct_trainer_new", "LOSS",
            "1 object(s)", "LOGITS f32[4,5]");
  assert_null(t);
  CT_ASSERT_OK(ct_tensor(&two, md.loss, md.loss));
  CT_EXPECT(ct_trainer_new(&t, two, cpu(), &opt), CT_ERR_SHAPE, "LOSS", "2 object(s)");
  assert_null(t);
  CT_ASSERT_OK(ct_discard(&drop, &tok));
  CT_EXPECT(ct_trainer_new(&t, drop, cpu(), &opt), CT_ERR_SHAPE, "LOSS", "0 object(s)");
  assert_null(t);
  FREE_MORPHISMS(emb, lin, net, two, drop);
  model_free(&md);
}

/* ---- plan misuse ----------------------------------------------------------- */

static void test_plan_misuse(void **state) {
  (void)state;
  model md = model_new(true, 11);
  ct_param *stranger = NULL;
  int64_t sd[1] = {3};
  CT_ASSERT_OK(ct_param_new(&stranger, "stranger", 1, sd));
  ct_plan *fwd = NULL, *rev = NULL;
  CT_ASSERT_OK(ct_compile(&fwd, md.loss, cpu(), CT_PLAN_FORWARD));
  CT_ASSERT_OK(ct_compile(&rev, md.loss, cpu(), CT_PLAN_REVERSE));
  float g[D * V], one = 1.0f, loss;

  CT_EXPECT(ct_plan_set_input(rev, 1, good_targets, N - 1), CT_ERR_SHAPE, "ct_plan_set_input",
            "input 1", "TOKENS i32[4]", "not 3");
  CT_EXPECT(ct_plan_set_input(rev, 2, good_ids, N), CT_ERR_RANGE, "input index 2", "[0, 2)");
  CT_EXPECT(ct_plan_set_input(rev, -1, good_ids, N), CT_ERR_RANGE, "input index -1");
  CT_EXPECT(ct_plan_get_output(rev, 1, &loss, 1), CT_ERR_RANGE, "output index 1", "[0, 1)");
  CT_EXPECT(ct_plan_get_output(rev, 0, &loss, 2), CT_ERR_SHAPE, "output 0", "LOSS");
  CT_EXPECT(ct_plan_get_output(rev, 0, &loss, 1), CT_ERR_STATE, "ct_plan_get_output");
  CT_EXPECT(ct_plan_reverse(rev), CT_ERR_STATE, "ct_plan_reverse", "ct_plan_forward");
  CT_EXPECT(ct_plan_reverse(fwd), CT_ERR_STATE, "ct_plan_reverse", "forward-only");
  CT_EXPECT(ct_plan_set_output_grad(fwd, 0, &one, 1), CT_ERR_STATE, "forward-only");
  CT_EXPECT(ct_plan_get_param_grad(fwd, md.W, g, D * V), CT_ERR_STATE, "forward-only");
  CT_EXPECT(ct_plan_get_param_grad(rev, stranger, g, 3), CT_ERR_INVALID_ARG, "'stranger'",
            "not used");
  CT_EXPECT(ct_plan_get_param_grad(rev, md.W, g, 3), CT_ERR_SHAPE, "'W'", "15 elements", "not 3");
  CT_EXPECT(ct_plan_get_input_grad(rev, 0, g, N), CT_ERR_SHAPE, "input 0", "TOKENS",
            "no cotangent");

  /* One reverse per forward: the reverse consumes the residuals. */
  CT_ASSERT_OK(ct_plan_set_input(rev, 0, good_ids, N));
  CT_ASSERT_OK(ct_plan_set_input(rev, 1, good_targets, N));
  CT_ASSERT_OK(ct_plan_set_output_grad(rev, 0, &one, 1));
  CT_ASSERT_OK(ct_plan_forward(rev));
  CT_ASSERT_OK(ct_plan_reverse(rev));
  CT_EXPECT(ct_plan_reverse(rev), CT_ERR_STATE, "ct_plan_reverse", "ct_plan_forward");
  CT_ASSERT_OK(ct_plan_get_param_grad(rev, md.W, g, D * V));

  ct_trainer *t = trainer_new(&md, 0.1f);
  CT_EXPECT(ct_trainer_step(t, 0), CT_ERR_INVALID_ARG, "ct_trainer_step", "step count 0");
  CT_EXPECT(ct_trainer_step(t, -3), CT_ERR_INVALID_ARG, "step count -3");
  CT_EXPECT(ct_trainer_set_input(t, 3, good_ids, N), CT_ERR_RANGE, "input index 3");
  assert_int_equal(ct_trainer_steps(t), 0);

  ct_trainer_free(t);
  ct_plan_free(fwd);
  ct_plan_free(rev);
  ct_param_free(stranger);
  model_free(&md);
}

/* ---- backends ---------------------------------------------------------- */

/* A GPU backend is either present or reported absent with a reason that names it. */
static void check_optional_backend(const char *name) {
  const ct_backend *b = (const ct_backend *)name;
  ct_status s = ct_backend_get(name, &b);
  if (s == CT_OK) {
    assert_non_null(b);
    assert_string_equal(ct_backend_name(b), name);
    return;
  }
  CT_EXPECT(s, CT_ERR_BACKEND_ABSENT, name, "absent");
  assert_null(b);
  assert_true(strlen(ct_last_error()) > strlen(name) + 20); /* a reason, not just the name */
  for (int i = 0; i < ct_backend_count(); i++) {
    ct_backend_info info;
    CT_ASSERT_OK(ct_backend_info_get(i, &info));
    if (strcmp(info.name, name)) continue;
    assert_false(info.present);
    assert_true(info.reason[0] != '\0');
  }
}

static void test_backend_errors(void **state) {
  (void)state;
  const ct_backend *b = (const ct_backend *)&b;
  CT_EXPECT(ct_backend_get("nope", &b), CT_ERR_INVALID_ARG, "unknown backend", "'nope'");
  assert_null(b);
  CT_EXPECT(ct_backend_get("", &b), CT_ERR_INVALID_ARG, "unknown backend");
  CT_EXPECT(ct_backend_get("CPU", &b), CT_ERR_INVALID_ARG, "unknown backend", "'CPU'");
  check_optional_backend("cuda");
  check_optional_backend("opencl");
  ct_backend_info info;
  ct_cell cell;
  CT_EXPECT(ct_backend_info_get(ct_backend_count(), &info), CT_ERR_RANGE, "index");
  CT_EXPECT(ct_backend_info_get(-1, &info), CT_ERR_RANGE, "index -1");
  CT_EXPECT(ct_backend_cell(0, CT_OP_COUNT, CT_FORWARD, &cell), CT_ERR_RANGE, "generator");
  CT_EXPECT(ct_backend_cell(99, CT_OP_LINEAR, CT_FORWARD, &cell), CT_ERR_RANGE, "index 99");
}

/* ---- NULL handles -------------------------------------------------------- */

static void test_null_handles(void **state) {
  (void)state;
  model md = model_new(true, 12);
  ct_morphism *m = NULL;
  ct_plan *p = NULL;
  ct_trainer *t = NULL;
  ct_param *prm = NULL;
  ct_optimizer opt;
  ct_object tok;
  int64_t dims[2] = {2, 2}, pairs;
  int32_t ids[4] = {0};
  float f[4] = {0}, loss;
  CT_ASSERT_OK(ct_optimizer_sgd(&opt, 0.1f));
  CT_ASSERT_OK(ct_object_tokens(&tok, N));
  const ct_status bad = CT_ERR_INVALID_ARG;

  CT_EXPECT(ct_compose(&m, NULL, md.loss), bad, "ct_compose", "g is NULL");
  CT_EXPECT(ct_compose(&m, md.loss, NULL), bad, "ct_compose", "f is NULL");
  CT_EXPECT(ct_compose(NULL, md.loss, md.loss), bad, "ct_compose", "out");
  CT_EXPECT(ct_then(&m, NULL, md.loss), bad, "ct_compose");
  CT_EXPECT(ct_tensor(&m, NULL, md.loss), bad, "ct_tensor", "f is NULL");
  CT_EXPECT(ct_tensor(&m, md.loss, NULL), bad, "ct_tensor", "g is NULL");
  CT_EXPECT(ct_identity(&m, NULL, 2), bad, "ct_identity");
  CT_EXPECT(ct_identity(&m, &tok, -1), bad, "ct_identity", "-1");
  CT_EXPECT(ct_embedding(&m, &tok, NULL), bad, "ct_embedding", "table");
  CT_EXPECT(ct_linear(&m, NULL, CT_ROLE_LOGITS, md.W, NULL), bad, "ct_linear", "input");
  CT_EXPECT(ct_softmax(&m, NULL), bad, "ct_softmax");
  CT_EXPECT(ct_softmax(NULL, &tok), bad, "ct_softmax", "out");
  CT_EXPECT(ct_discard(&m, NULL), bad, "ct_discard");
  assert_null(m);
  char buf[64];
  CT_EXPECT(ct_morphism_describe(NULL, buf, sizeof buf), bad, "ct_morphism_describe");

  CT_EXPECT(ct_compile(&p, NULL, cpu(), CT_PLAN_FORWARD), bad, "ct_compile", "morphism");
  CT_EXPECT(ct_compile(&p, md.loss, NULL, CT_PLAN_FORWARD), bad, "ct_compile", "backend");
  CT_EXPECT(ct_compile(&p, md.loss, cpu(), (ct_plan_mode)16), bad, "ct_compile", "mode 16");
  CT_EXPECT(ct_compile(NULL, md.loss, cpu(), CT_PLAN_FORWARD), bad, "ct_compile", "out");
  assert_null(p);
  CT_EXPECT(ct_plan_forward(NULL), bad, "ct_plan_forward");
  CT_EXPECT(ct_plan_reverse(NULL), bad, "ct_plan_reverse");
  CT_EXPECT(ct_plan_set_input(NULL, 0, ids, N), bad, "ct_plan_set_input");
  CT_EXPECT(ct_plan_get_output(NULL, 0, &loss, 1), bad, "ct_plan_get_output");
  CT_EXPECT(ct_plan_set_output_grad(NULL, 0, &loss, 1), bad, "ct_plan_set_output_grad");
  CT_EXPECT(ct_plan_get_param_grad(NULL, md.W, f, 4), bad, "ct_plan_get_param_grad");
  CT_EXPECT(ct_plan_load_params(NULL), bad, "ct_plan_load_params");
  CT_EXPECT(ct_plan_store_params(NULL), bad, "ct_plan_store_params");
  CT_EXPECT(ct_plan_set_tracing(NULL, true), bad, "ct_plan_set_tracing");
  CT_EXPECT(ct_plan_stats_get(NULL, NULL), bad, "ct_plan_stats_get");

  CT_ASSERT_OK(ct_compile(&p, md.loss, cpu(), CT_PLAN_FORWARD));
  CT_EXPECT(ct_plan_set_input(p, 0, NULL, N), bad, "ct_plan_set_input", "host");
  CT_EXPECT(ct_plan_get_output(p, 0, NULL, 1), bad, "ct_plan_get_output", "host");
  ct_plan_free(p);

  CT_EXPECT(ct_trainer_step(NULL, 1), bad, "ct_trainer_step");
  CT_EXPECT(ct_trainer_eval(NULL, &loss), bad, "ct_trainer_eval");
  CT_EXPECT(ct_trainer_store_params(NULL), bad, "ct_trainer_store_params");
  CT_EXPECT(ct_trainer_set_input(NULL, 0, ids, N), bad, "ct_trainer_set_input");
  CT_EXPECT(ct_trainer_new(&t, NULL, cpu(), &opt), bad, "ct_trainer_new", "loss");
  CT_EXPECT(ct_trainer_new(&t, md.loss, NULL, &opt), bad, "ct_trainer_new", "backend");
  CT_EXPECT(ct_trainer_new(&t, md.loss, cpu(), NULL), bad, "ct_trainer_new", "optimizer");
  CT_EXPECT(ct_trainer_new(NULL, md.loss, cpu(), &opt), bad, "ct_trainer_new", "out");
  assert_null(t);
  CT_EXPECT(ct_optimizer_sgd(NULL, 0.1f), bad, "ct_optimizer_sgd");

  CT_EXPECT(ct_param_new(&prm, NULL, 2, dims), bad, "ct_param_new", "name");
  CT_EXPECT(ct_param_new(&prm, "", 2, dims), bad, "ct_param_new", "name");
  CT_EXPECT(ct_param_new(NULL, "p", 2, dims), bad, "ct_param_new", "out");
  CT_EXPECT(ct_param_new(&prm, "p", 2, NULL), bad, "'p'", "dims");
  assert_null(prm);
  CT_EXPECT(ct_param_set(NULL, f, 4), bad, "ct_param_set");
  CT_EXPECT(ct_param_set(md.W, NULL, D * V), bad, "ct_param_set", "values");
  CT_EXPECT(ct_param_get(md.W, NULL, D * V), bad, "ct_param_get", "values");
  CT_EXPECT(ct_param_init_book(NULL, 0), bad, "ct_param_init_book");

  const ct_backend *b = NULL;
  CT_EXPECT(ct_backend_get(NULL, &b), bad, "ct_backend_get", "name");
  CT_EXPECT(ct_backend_get("cpu", NULL), bad, "ct_backend_get", "out");
  CT_EXPECT(ct_window_pairs(NULL, 4, V, ids, ids, 4, &pairs), bad, "ct_window_pairs");
  CT_EXPECT(ct_trace_append(NULL, NULL), bad, "ct_trace_append");

  /* Frees and queries accept NULL quietly. */
  ct_morphism_free(NULL);
  ct_plan_free(NULL);
  ct_trainer_free(NULL);
  ct_param_free(NULL);
  ct_trace_free(NULL);
  assert_null(ct_morphism_dom(NULL, 0));
  assert_null(ct_morphism_cod(md.loss, 5));
  assert_null(ct_trainer_plan(NULL));
  assert_int_equal(ct_morphism_dom_count(NULL), 0);
  assert_false(ct_morphism_equal(NULL, md.loss));
  model_free(&md);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_objects),
      cmocka_unit_test(test_compose_role_mismatch),
      cmocka_unit_test(test_compose_count_mismatch),
      cmocka_unit_test(test_linear_bad_parameters),
      cmocka_unit_test(test_cross_entropy_bad_targets),
      cmocka_unit_test(test_add_on_tokens),
      cmocka_unit_test(test_generators_wrong_role),
      cmocka_unit_test(test_token_id_out_of_range),
      cmocka_unit_test(test_target_out_of_range),
      cmocka_unit_test(test_trainer_out_of_range_changes_nothing),
      cmocka_unit_test(test_window_pairs_errors),
      cmocka_unit_test(test_nonfinite_inputs),
      cmocka_unit_test(test_nan_loss_stops_trainer),
      cmocka_unit_test(test_store_refuses_nonfinite_params),
      cmocka_unit_test(test_bad_learning_rate),
      cmocka_unit_test(test_trainer_needs_one_loss),
      cmocka_unit_test(test_plan_misuse),
      cmocka_unit_test(test_backend_errors),
      cmocka_unit_test(test_null_handles),
  };
  return CT_RUN_TESTS("errors", tests, NULL, NULL);
}
