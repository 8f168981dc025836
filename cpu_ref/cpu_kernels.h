/* cpu_ref kernels: one forward and one reverse per generator that has its own. */
#ifndef CTML_CPU_KERNELS_H
#define CTML_CPU_KERNELS_H

#include "backend_impl.h"

ct_status ct__cpu_embedding_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_embedding_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_linear_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_linear_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_softmax_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_softmax_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_xent_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_xent_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_softmax_xent_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_softmax_xent_rev(void *ctx, const ct__kargs *a);
ct_status ct__cpu_copy_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_add_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_discard_fwd(void *ctx, const ct__kargs *a);
ct_status ct__cpu_sgd_update(void *ctx, const ct_optimizer *opt, long step, void *param,
                             const void *grad, void *state, int64_t n);

#endif
