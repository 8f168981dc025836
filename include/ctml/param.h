/* Parameters: named f32 tensors (role PARAM) that parametrised generators
 * refer to. A parameter is shared, not copied: a morphism keeps a reference,
 * and two generators naming the same parameter tie their weights (its
 * gradient is the sum of both uses: the reverse of copying it). The host copy
 * is the user's; compiled plans keep their own resident copy on the device. */
#ifndef CTML_PARAM_H
#define CTML_PARAM_H

#include "ctml/object.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_param ct_param;

/* A zero-filled parameter of the given shape. The name (< 64 chars) names it in errors. */
ct_status ct_param_new(ct_param **out, const char *name, int rank, const int64_t *dims);
/* Drops the caller's reference; morphisms and plans hold their own. */
void ct_param_free(ct_param *p);

const ct_object *ct_param_object(const ct_param *p);
const char *ct_param_name(const ct_param *p);
int64_t ct_param_numel(const ct_param *p);

/* Host values: set copies n floats in (n must equal numel, all finite); get copies out. */
ct_status ct_param_set(ct_param *p, const float *values, int64_t n);
ct_status ct_param_get(const ct_param *p, float *values, int64_t n);

/* The book's deterministic initialiser, in float32, for a rank-2 (rows x cols)
 * or rank-1 (1 x cols) parameter:
 *   value(r, c) = ((((r*cols + c)*37 + seed*101) mod 1000) / 1000 - 0.5) * 0.2 */
ct_status ct_param_init_book(ct_param *p, int seed);

#ifdef __cplusplus
}
#endif
#endif
