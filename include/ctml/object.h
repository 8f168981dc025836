/* SPDX-License-Identifier: MIT */
/* Objects: the types morphisms go between. An object is a dtype, a role and a
 * shape; two objects are equal only when all three match. */
#ifndef CTML_OBJECT_H
#define CTML_OBJECT_H

#include "ctml/export.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ctml/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CT_MAX_RANK 4

typedef enum ct_dtype { CT_F32 = 0, CT_I32 = 1 } ct_dtype;

/* Roles carry meaning as the book's newtypes do. TOKENS is i32, the rest f32.
 * Sequence roles fix their rank: SEQ is [batch, time, channels]; HEADS is
 * [batch, heads, time, head width]; SCORES and ATTN are [batch, heads, time,
 * time] (or [batch, time, time] for one head) with square trailing axes. */
typedef enum ct_role {
  CT_ROLE_TOKENS = 0, /* token ids */
  CT_ROLE_HIDDEN,     /* hidden activations */
  CT_ROLE_LOGITS,     /* unnormalised scores over a vocabulary */
  CT_ROLE_DIST,       /* rows are probability distributions */
  CT_ROLE_LOSS,       /* a scalar >= 0 (rank 0) */
  CT_ROLE_PARAM,      /* a trainable parameter */
  CT_ROLE_SEQ,        /* a hidden sequence f32[B,T,C] */
  CT_ROLE_HEADS,      /* a sequence split into heads f32[B,H,T,D] */
  CT_ROLE_SCORES,     /* causal attention scores: entry (i, j) with j > i is masked (0) */
  CT_ROLE_ATTN,       /* attention weights: row i is a distribution over positions j <= i */
  CT_ROLE_CACHE,      /* keys or values of one layer kept for decoding f32[B,H,L,D] */
  CT_ROLE_COUNT
} ct_role;

typedef struct ct_object {
  ct_dtype dtype;
  ct_role role;
  int rank;                   /* 0..CT_MAX_RANK */
  int64_t dims[CT_MAX_RANK];  /* dims[rank..] are 0 */
} ct_object;

/* Validated constructor: rank in 0..4, every dim >= 1, dtype fits role
 * (TOKENS is i32, every other role f32), LOSS has rank 0, the sequence roles
 * have the ranks above. */
CT_API ct_status ct_object_make(ct_object *out, ct_dtype dtype, ct_role role, int rank,
                         const int64_t *dims);

/* Shorthands for the common objects. */
CT_API ct_status ct_object_tokens(ct_object *out, int64_t n);              /* TOKENS i32[n] */
CT_API ct_status ct_object_matrix(ct_object *out, ct_role role, int64_t rows,
                           int64_t cols);                           /* role f32[rows,cols] */
CT_API ct_status ct_object_loss(ct_object *out);                           /* LOSS f32[] */
CT_API ct_status ct_object_token_seq(ct_object *out, int64_t batch, int64_t time); /* TOKENS i32[B,T] */
CT_API ct_status ct_object_seq(ct_object *out, int64_t batch, int64_t time,
                        int64_t channels);                          /* SEQ f32[B,T,C] */

CT_API bool ct_object_equal(const ct_object *a, const ct_object *b);
CT_API int64_t ct_object_numel(const ct_object *o);
CT_API size_t ct_object_bytes(const ct_object *o);
CT_API const char *ct_role_name(ct_role r);
CT_API const char *ct_dtype_name(ct_dtype d);

/* Writes e.g. "HIDDEN f32[7,4]" into buf (always terminated) and returns buf. */
CT_API const char *ct_object_str(const ct_object *o, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
