/* SPDX-License-Identifier: MIT */
/* The compiled plan, shared by plan.c and train.c. */
#ifndef CTML_PLAN_IMPL_H
#define CTML_PLAN_IMPL_H

#include "backend_impl.h"
#include "rewrite.h"

struct ct_plan {
  const ct_backend *be;
  void *ctx;
  ct_morphism *m; /* a private copy of the compiled morphism */
  bool reverse; /* compiled with CT_PLAN_REVERSE */
  bool keep;    /* compiled with CT_PLAN_KEEP: no reuse, intermediates readable */
  bool guard;   /* compiled with CT_PLAN_GUARD: guard regions after every buffer */
  int *order;     /* topological order of node indices */
  /* Tensor t lives in buffer slot tensor_slot[t]. Tensors: values [0, V),
   * cotangents [V, 2V) (-1 slot where none), saved residuals [2V, 2V + N). */
  int n_tensors;
  int *tensor_slot;
  int n_slots;
  void **slot_buf;
  size_t *slot_bytes;
  /* Distinct parameters and their resident values and gradients. Values live in
   * one buffer (param_arena), gradients in another of the same layout
   * (grad_arena, reverse plans only); param_buf[i] and param_grad[i] are views
   * of parameter i at byte offset param_off[i] of each. The layout puts the
   * tensors of rank >= 2 (those that take weight decay) first: float elements
   * [0, n_decay) of an arena are theirs, [n_decay, arena_numel) the rest's.
   * Offsets are multiples of the backend's view_align; the bytes between
   * tensors are zero (and stay zero: the optimizer leaves a zero with a zero
   * gradient at zero). In GUARD plans a guard region follows each tensor. */
  int n_params;
  ct_param **params;
  void **param_buf, **param_grad;
  void *param_arena, *grad_arena;
  size_t *param_off;
  int64_t arena_numel, n_decay;
  /* borrowed[i]: parameter i is another plan's buffer (ct__compile_shared), outside
   * this plan's arena: never uploaded, released or guarded here. */
  bool *borrowed;
  int *node_param; /* node i's k-th parameter is params[node_param[i*CT__MAX_PARAMS + k]] */
  bool forward_valid;   /* outputs hold the forward of the current inputs */
  bool residuals_valid; /* the reverse may run: residuals are intact */
  bool tracing;
  ct_trace trace;
  ct_plan_stats stats;
  ct__rewrite_log rewrites; /* the rules that fired when compiling, and where */
};

/* The buffer of value v, of v's cotangent (NULL where none), of node i's residual. */
void *ct__plan_value(const ct_plan *p, int v);
void *ct__plan_grad(const ct_plan *p, int v);
/* Index of param in p->params, -1 when the plan does not use it. */
int ct__find_param(const ct_plan *p, const ct_param *param);
/* ct_compile whose rewrite rules fire only where peer (may be NULL) also runs their
 * rhs: two plans compared node by node (ct_check) then have the same graph. */
ct_status ct__compile_for(ct_plan **out, const ct_morphism *m, const ct_backend *backend,
                          const ct_backend *peer, int mode);
/* ct_compile (no rewrite peer) whose parameters that owner (may be NULL) also uses are
 * owner's device buffers, not copies: runs of either plan see the other's writes (the
 * decoder's caches). owner must outlive the plan. */
ct_status ct__compile_shared(ct_plan **out, const ct_morphism *m, const ct_backend *backend,
                             int mode, const ct_plan *owner);
/* n elements of output i from element offset at, into host. */
ct_status ct__plan_get_output_at(ct_plan *p, int i, int64_t at, void *host, int64_t n);
/* Queues the forward pass without waiting (device errors surface at the next sync). */
ct_status ct__plan_forward_queue(ct_plan *p);

#endif
