/* SPDX-License-Identifier: MIT */
/* The README's tour: a next-token pipeline composed from generators, trained on a backend. */
#include <stdio.h>
#include "ctml/ctml.h"

#define CHECK(x) do { ct_status s_ = (x); if (s_) { fprintf(stderr, "%s\n", ct_last_error()); return 1; } } while (0)

int main(void) {
  const ct_backend *cpu;  ct_object tok, hid, logits;  ct_param *E, *W;
  ct_morphism *embed, *lin, *xent, *id, *feat, *model, *loss;
  int64_t e[2] = {5, 4}, w[2] = {4, 5};
  CHECK(ct_backend_get("cpu", &cpu));
  CHECK(ct_param_new(&E, "E", 2, e));  CHECK(ct_param_init_book(E, 1));
  CHECK(ct_param_new(&W, "W", 2, w));  CHECK(ct_param_init_book(W, 2));
  CHECK(ct_object_tokens(&tok, 3));                          /* TOKENS i32[3]    */
  CHECK(ct_object_matrix(&hid, CT_ROLE_HIDDEN, 3, 4));       /* HIDDEN f32[3,4]  */
  CHECK(ct_object_matrix(&logits, CT_ROLE_LOGITS, 3, 5));    /* LOGITS f32[3,5]  */
  CHECK(ct_embedding(&embed, &tok, E));                      /* TOKENS -> HIDDEN */
  CHECK(ct_linear(&lin, &hid, CT_ROLE_LOGITS, W, NULL));     /* HIDDEN -> LOGITS */
  CHECK(ct_softmax_cross_entropy(&xent, &logits, &tok));     /* LOGITS (x) TOKENS -> LOSS */
  CHECK(ct_then(&feat, embed, lin));                         /* embed ; linear   */
  CHECK(ct_identity(&id, &tok, 1));
  CHECK(ct_tensor(&model, feat, id));                        /* (embed;linear) (x) id */
  CHECK(ct_then(&loss, model, xent));                        /* ... ; loss       */

  ct_optimizer sgd;  ct_trainer *t;  float before, after;
  int32_t inputs[3] = {1, 2, 3}, targets[3] = {2, 3, 4};
  CHECK(ct_optimizer_sgd(&sgd, 1.0f));
  CHECK(ct_trainer_new(&t, loss, cpu, &sgd));                /* compiled once    */
  CHECK(ct_trainer_set_input(t, 0, inputs, 3));
  CHECK(ct_trainer_set_input(t, 1, targets, 3));
  CHECK(ct_trainer_eval(t, &before));
  CHECK(ct_trainer_step(t, 50));                             /* iterated 50 times */
  CHECK(ct_trainer_eval(t, &after));
  printf("loss %.4f -> %.4f\n", before, after);

  /* Types are checked at composition: softmax cannot follow the embedding. */
  ct_morphism *soft, *bad;
  CHECK(ct_softmax(&soft, &logits));
  if (ct_compose(&bad, soft, embed) != CT_OK) printf("refused: %s\n", ct_last_error());

  ct_trainer_free(t);
  ct_morphism *all[] = {embed, lin, xent, id, feat, model, loss, soft};
  for (int i = 0; i < 8; i++) ct_morphism_free(all[i]);
  ct_param_free(E);  ct_param_free(W);
  return 0;
}
