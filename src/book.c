/* SPDX-License-Identifier: MIT */
/* The book's walkthrough, built from the public API only. */
#include <string.h>
#include "internal.h"

const char *const ct_book_vocab[CT_BOOK_VOCAB] = {"<pad>", "I", "love", "Rust", "."};

/* Everything the walkthrough builds, freed in one place. */
typedef struct ct__book {
  ct_param *E, *W, *b;
  ct_morphism *embed1, *linear1, *softmax1, *predict1;           /* one token */
  ct_morphism *id_target1, *xent1, *loss_love;                   /* -ln p(love | I) */
  ct_morphism *embed7, *linear7, *logits7, *id_targets7, *fused7, *loss7, *predict7_tail,
      *predict7;                                                 /* the 7 pairs */
  ct_plan *plans[6];
  ct_trainer *trainer;
} ct__book;

static void ct__book_free(ct__book *k) {
  ct_param_free(k->E);
  ct_param_free(k->W);
  ct_param_free(k->b);
  ct_morphism *ms[] = {k->embed1, k->linear1, k->softmax1, k->predict1, k->id_target1,
                       k->xent1, k->loss_love, k->embed7, k->linear7, k->logits7,
                       k->id_targets7, k->fused7, k->loss7, k->predict7_tail, k->predict7};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) ct_morphism_free(ms[i]);
  for (int i = 0; i < 6; i++) ct_plan_free(k->plans[i]);
  ct_trainer_free(k->trainer);
}

/* Runs a forward-only plan of m on one input and reads its single output. */
static ct_status ct__run1(const ct_morphism *m, const ct_backend *be, ct_plan **slot,
                          const void *in, int64_t n_in, void *out, int64_t n_out) {
  if (!*slot) {
    ct_status s = ct_compile(slot, m, be, CT_PLAN_FORWARD);
    if (s != CT_OK) return s;
  }
  ct_status s = ct_plan_set_input(*slot, 0, in, n_in);
  if (s == CT_OK) s = ct_plan_forward(*slot);
  if (s == CT_OK) s = ct_plan_get_output(*slot, 0, out, n_out);
  return s;
}

/* Replaces *m by *m ; next, freeing the old one. */
static ct_status ct__extend(ct_morphism **m, const ct_morphism *next) {
  ct_morphism *r = NULL;
  ct_status s = ct_then(&r, *m, next);
  if (s == CT_OK) {
    ct_morphism_free(*m);
    *m = r;
  }
  return s;
}

static ct_status ct__book_build(ct__book *k) {
  const int64_t V = CT_BOOK_VOCAB, D = CT_BOOK_DMODEL, emb[2] = {V, D}, w[2] = {D, V}, bias[1] = {V};
  ct_object tok1, hid1, log1, dist1, tok7, hid7, log7;
  ct_status s = ct_param_new(&k->E, "embedding", 2, emb);
  if (s == CT_OK) s = ct_param_new(&k->W, "output.weight", 2, w);
  if (s == CT_OK) s = ct_param_new(&k->b, "output.bias", 1, bias);
  if (s == CT_OK) s = ct_param_init_book(k->E, 1);
  if (s == CT_OK) s = ct_param_init_book(k->W, 2);
  if (s == CT_OK) s = ct_object_tokens(&tok1, 1);
  if (s == CT_OK) s = ct_object_matrix(&hid1, CT_ROLE_HIDDEN, 1, D);
  if (s == CT_OK) s = ct_object_matrix(&log1, CT_ROLE_LOGITS, 1, V);
  if (s == CT_OK) s = ct_object_matrix(&dist1, CT_ROLE_DIST, 1, V);
  if (s == CT_OK) s = ct_object_tokens(&tok7, CT_BOOK_PAIRS);
  if (s == CT_OK) s = ct_object_matrix(&hid7, CT_ROLE_HIDDEN, CT_BOOK_PAIRS, D);
  if (s == CT_OK) s = ct_object_matrix(&log7, CT_ROLE_LOGITS, CT_BOOK_PAIRS, V);
  /* predict = softmax . linear . embedding : TOKENS[1] -> DIST[1,5] */
  if (s == CT_OK) s = ct_embedding(&k->embed1, &tok1, k->E);
  if (s == CT_OK) s = ct_linear(&k->linear1, &hid1, CT_ROLE_LOGITS, k->W, k->b);
  if (s == CT_OK) s = ct_softmax(&k->softmax1, &log1);
  if (s == CT_OK) s = ct_then(&k->predict1, k->embed1, k->linear1);
  if (s == CT_OK) s = ct__extend(&k->predict1, k->softmax1);
  /* loss_love = cross_entropy . (predict (x) id_TOKENS) */
  if (s == CT_OK) s = ct_identity(&k->id_target1, &tok1, 1);
  if (s == CT_OK) s = ct_cross_entropy(&k->xent1, &dist1, &tok1);
  if (s == CT_OK) s = ct_tensor(&k->loss_love, k->predict1, k->id_target1);
  /* training loss = softmax_cross_entropy . ((linear . embedding) (x) id_TOKENS) */
  if (s == CT_OK) s = ct_embedding(&k->embed7, &tok7, k->E);
  if (s == CT_OK) s = ct_linear(&k->linear7, &hid7, CT_ROLE_LOGITS, k->W, k->b);
  if (s == CT_OK) s = ct_then(&k->logits7, k->embed7, k->linear7);
  if (s == CT_OK) s = ct_identity(&k->id_targets7, &tok7, 1);
  if (s == CT_OK) s = ct_softmax_cross_entropy(&k->fused7, &log7, &tok7);
  if (s == CT_OK) s = ct_tensor(&k->loss7, k->logits7, k->id_targets7);
  if (s == CT_OK) s = ct_softmax(&k->predict7_tail, &log7);
  if (s == CT_OK) s = ct_then(&k->predict7, k->logits7, k->predict7_tail);
  return s;
}

ct_status ct_book_run(const ct_backend *be, ct_book_result *out, ct_trace *trace) {
  if (!be || !out) return ct__fail(CT_ERR_INVALID_ARG, "ct_book_run: NULL %s", be ? "result" : "backend");
  memset(out, 0, sizeof *out);
  if (trace) ct_trace_init(trace);
  ct__book k;
  memset(&k, 0, sizeof k);
  ct_status s = ct__book_build(&k);
  if (s == CT_OK) s = ct__extend(&k.loss_love, k.xent1);
  if (s == CT_OK) s = ct__extend(&k.loss7, k.fused7);

  /* p(next | I), composed and generator by generator. */
  const int32_t I = 1, love = 2;
  float h[CT_BOOK_DMODEL], logits[CT_BOOK_VOCAB], direct[CT_BOOK_VOCAB];
  if (s == CT_OK)
    s = ct__run1(k.predict1, be, &k.plans[0], &I, 1, out->p_next_given_I, CT_BOOK_VOCAB);
  if (s == CT_OK) s = ct__run1(k.embed1, be, &k.plans[1], &I, 1, h, CT_BOOK_DMODEL);
  if (s == CT_OK) s = ct__run1(k.linear1, be, &k.plans[2], h, CT_BOOK_DMODEL, logits, CT_BOOK_VOCAB);
  if (s == CT_OK)
    s = ct__run1(k.softmax1, be, &k.plans[3], logits, CT_BOOK_VOCAB, direct, CT_BOOK_VOCAB);
  if (s == CT_OK)
    out->composed_equals_direct = !memcmp(direct, out->p_next_given_I, sizeof direct);

  /* -ln p(love | I) through the composite loss morphism. */
  if (s == CT_OK) s = ct_compile(&k.plans[4], k.loss_love, be, CT_PLAN_FORWARD);
  if (s == CT_OK) s = ct_plan_set_input(k.plans[4], 0, &I, 1);
  if (s == CT_OK) s = ct_plan_set_input(k.plans[4], 1, &love, 1);
  if (s == CT_OK) s = ct_plan_forward(k.plans[4]);
  if (s == CT_OK) s = ct_plan_get_output(k.plans[4], 0, &out->loss_love, 1);

  /* 80 full-batch gradient-descent steps on the 7 windowed pairs. */
  static const int32_t seq[8] = {1, 2, 3, 4, 1, 2, 3, 4};
  int32_t inputs[CT_BOOK_PAIRS], targets[CT_BOOK_PAIRS];
  int64_t pairs = 0;
  ct_optimizer sgd;
  if (s == CT_OK) s = ct_window_pairs(seq, 8, CT_BOOK_VOCAB, inputs, targets, CT_BOOK_PAIRS, &pairs);
  if (s == CT_OK) s = ct_optimizer_sgd(&sgd, 1.0f);
  if (s == CT_OK) s = ct_trainer_new(&k.trainer, k.loss7, be, &sgd);
  for (int i = 0; s == CT_OK && i < ct_plan_rewrite_count(ct_trainer_plan(k.trainer)); i++) {
    size_t used = strlen(out->rewrites);
    snprintf(out->rewrites + used, sizeof out->rewrites - used, "%s\n",
             ct_plan_rewrite(ct_trainer_plan(k.trainer), i));
  }
  if (s == CT_OK) s = ct_trainer_set_input(k.trainer, 0, inputs, pairs);
  if (s == CT_OK) s = ct_trainer_set_input(k.trainer, 1, targets, pairs);
  if (s == CT_OK) s = ct_trainer_eval(k.trainer, &out->loss_before);
  /* The first step is traced when asked: one application of the endomorphism. */
  if (s == CT_OK && trace) s = ct_plan_set_tracing(ct_trainer_plan(k.trainer), true);
  if (s == CT_OK) s = ct_trainer_step(k.trainer, 1);
  if (s == CT_OK && trace) {
    s = ct_plan_take_trace(ct_trainer_plan(k.trainer), trace);
    if (s == CT_OK) s = ct_plan_set_tracing(ct_trainer_plan(k.trainer), false);
  }
  if (s == CT_OK) s = ct_trainer_step(k.trainer, CT_BOOK_STEPS - 1);
  if (s == CT_OK) s = ct_trainer_eval(k.trainer, &out->loss_after);

  /* What the trained model predicts after each input. */
  if (s == CT_OK) s = ct_trainer_store_params(k.trainer);
  if (s == CT_OK)
    s = ct__run1(k.predict7, be, &k.plans[5], inputs, pairs, out->train_probs,
                 CT_BOOK_PAIRS * CT_BOOK_VOCAB);
  ct__book_free(&k);
  return s;
}
