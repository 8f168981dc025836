/* SPDX-License-Identifier: MIT */
/* The book's walkthrough: vocabulary "<pad> I love Rust .", the sequence
 * I love Rust . I love Rust ., embedding -> linear -> softmax with d_model 4,
 * the book's initialiser, and 80 full-batch gradient-descent steps (lr 1.0). */
#ifndef CTML_BOOK_H
#define CTML_BOOK_H

#include "ctml/export.h"
#include <stdbool.h>
#include "ctml/backend.h"
#include "ctml/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CT_BOOK_VOCAB 5
#define CT_BOOK_DMODEL 4
#define CT_BOOK_PAIRS 7
#define CT_BOOK_STEPS 80

typedef struct ct_book_result {
  float p_next_given_I[CT_BOOK_VOCAB]; /* softmax(linear(embedding(I))) */
  float loss_love;                     /* -ln p(love | I) */
  float loss_before, loss_after;       /* mean cross-entropy over the 7 pairs */
  bool composed_equals_direct;         /* the composed plan == generator by generator */
  float train_probs[CT_BOOK_PAIRS][CT_BOOK_VOCAB]; /* p(. | input) after training */
  char rewrites[512]; /* the rewrite rules that fired in the training plan, one per line
                         ("rule at nodes ..."); empty when none did */
} ct_book_result;

CT_API extern const char *const ct_book_vocab[CT_BOOK_VOCAB];

/* Runs the walkthrough on a backend. trace may be NULL; otherwise it is
 * initialised and receives the training step's kernel events. */
CT_API ct_status ct_book_run(const ct_backend *backend, ct_book_result *out, ct_trace *trace);

#ifdef __cplusplus
}
#endif
#endif
