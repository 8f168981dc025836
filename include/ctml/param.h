/* SPDX-License-Identifier: MIT */
/* Parameters: named f32 tensors (role PARAM) that parametrised generators
 * refer to. A parameter is shared, not copied: a morphism keeps a reference,
 * and two generators naming the same parameter tie their weights (its
 * gradient is the sum of both uses: the reverse of copying it). The host copy
 * is the user's; compiled plans keep their own resident copy on the device. */
#ifndef CTML_PARAM_H
#define CTML_PARAM_H

#include "ctml/export.h"
#include "ctml/object.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_param ct_param;

/* A zero-filled parameter of the given shape. The name (< 64 chars) names it in errors. */
CT_API ct_status ct_param_new(ct_param **out, const char *name, int rank, const int64_t *dims);
/* A zero-filled decoding cache (role CACHE, f32[batch, heads, length, width]): the keys
 * or the values of one attention layer at positions 0..length-1, which kv_attention
 * writes as it reads. Not trained: a morphism using it compiles forward only. */
CT_API ct_status ct_param_new_cache(ct_param **out, const char *name, int64_t batch, int64_t heads,
                             int64_t length, int64_t width);
/* Drops the caller's reference; morphisms and plans hold their own. */
CT_API void ct_param_free(ct_param *p);

CT_API const ct_object *ct_param_object(const ct_param *p);
CT_API const char *ct_param_name(const ct_param *p);
CT_API int64_t ct_param_numel(const ct_param *p);

/* Host values: set copies n floats in (n must equal numel, all finite); get copies out. */
CT_API ct_status ct_param_set(ct_param *p, const float *values, int64_t n);
CT_API ct_status ct_param_get(const ct_param *p, float *values, int64_t n);

/* The book's deterministic initialiser, in float32, for a rank-2 (rows x cols)
 * or rank-1 (1 x cols) parameter:
 *   value(r, c) = ((((r*cols + c)*37 + seed*101) mod 1000) / 1000 - 0.5) * 0.2 */
CT_API ct_status ct_param_init_book(ct_param *p, int seed);

/* Every element set to value. */
CT_API ct_status ct_param_fill(ct_param *p, float value);
/* Normal(0, std) values from seed, deterministic on every machine: element i
 * takes the Box-Muller transform (in double) of two uniforms from splitmix64
 * started at seed, cosine branch, elements in row-major order:
 *   u1 = ((x1 >> 11) + 1) / 2^53, u2 = (x2 >> 11) / 2^53,
 *   value = std * sqrt(-2 ln u1) cos(2 pi u2). */
CT_API ct_status ct_param_init_normal(ct_param *p, float std, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
