/* SPDX-License-Identifier: MIT */
/* Compiling a morphism for a backend: the plan fixes a topological order,
 * buffer lifetimes and reuse, and keeps every parameter resident on the
 * backend. Running it touches the host only for the inputs and outputs asked
 * for. A REVERSE plan also runs the reverse derivative, composed from the
 * generators' lenses in reverse order. */
#ifndef CTML_PLAN_H
#define CTML_PLAN_H

#include "ctml/export.h"
#include "ctml/backend.h"
#include "ctml/morphism.h"
#include "ctml/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_plan ct_plan;

typedef enum ct_plan_mode {
  CT_PLAN_FORWARD = 0, /* forward only: buffers die at their last forward use */
  CT_PLAN_REVERSE = 1, /* forward and reverse: residuals live until their reverse */
  CT_PLAN_KEEP = 2,    /* flag, or-ed in: no buffer reuse, every intermediate stays
                          readable after the run (node-by-node checking) */
  CT_PLAN_GUARD = 4,   /* flag, or-ed in: every buffer is followed by a guard region
                          of known bytes; ct_plan_check_guards finds writes past an end */
  CT_PLAN_NO_REWRITE = 8 /* flag, or-ed in: compile the morphism as built, without
                            applying the rewrite rules (fusions) */
} ct_plan_mode;

/* mode: CT_PLAN_FORWARD or CT_PLAN_REVERSE, optionally | CT_PLAN_KEEP | CT_PLAN_GUARD |
 * CT_PLAN_NO_REWRITE. Unless NO_REWRITE, every match of a rewrite rule (an
 * equation between two morphisms with the same boundary, tested as a law) is
 * replaced first; the domain, codomain and parameters stay the same. */
CT_API ct_status ct_compile(ct_plan **out, const ct_morphism *m, const ct_backend *backend, int mode);
CT_API void ct_plan_free(ct_plan *p);

/* Host <-> plan. n is the element count and must equal the object's; f32
 * inputs must be finite. i indexes dom (inputs) or cod (outputs). */
CT_API ct_status ct_plan_set_input(ct_plan *p, int i, const void *host, int64_t n);
CT_API ct_status ct_plan_get_output(ct_plan *p, int i, void *host, int64_t n);

/* Runs the forward pass and waits for it, so an error detected on the device
 * (a token id out of range) is returned here, naming the node. */
CT_API ct_status ct_plan_forward(ct_plan *p);

/* REVERSE plans: set the cotangent of output i (f32 outputs), run the reverse
 * pass after a forward, then read the cotangents of inputs and parameters.
 * Parameter gradients are zeroed by each ct_plan_reverse. */
CT_API ct_status ct_plan_set_output_grad(ct_plan *p, int i, const float *host, int64_t n);
CT_API ct_status ct_plan_reverse(ct_plan *p);
CT_API ct_status ct_plan_get_input_grad(ct_plan *p, int i, float *host, int64_t n);
CT_API ct_status ct_plan_get_param_grad(ct_plan *p, const ct_param *param, float *host, int64_t n);

/* Resident parameters: load copies the host values in, store copies the
 * plan's values out to the host parameters. */
CT_API ct_status ct_plan_load_params(ct_plan *p);
CT_API ct_status ct_plan_store_params(ct_plan *p);

/* GUARD plans: CT_ERR_DEVICE naming the first buffer whose guard region was
 * written (and the byte offset past its end); CT_OK when all are intact. */
CT_API ct_status ct_plan_check_guards(ct_plan *p);

/* When tracing, every kernel launch appends an event to the plan's trace. */
CT_API ct_status ct_plan_set_tracing(ct_plan *p, bool on);
/* Copies the trace gathered so far into out (initialised here) and clears the plan's. */
CT_API ct_status ct_plan_take_trace(ct_plan *p, ct_trace *out);

/* The rewrite rules that fired when p was compiled, one line each:
 * "counit_right at nodes 3 (copy), 4 (discard)". i in [0, count). */
CT_API int ct_plan_rewrite_count(const ct_plan *p);
CT_API const char *ct_plan_rewrite(const ct_plan *p, int i);

typedef struct ct_plan_stats {
  int nodes;            /* generator applications */
  int steps;            /* kernel launches per run (forward, or forward + reverse) */
  int values;           /* planned tensors (activations, cotangents, residuals) */
  int buffers;          /* device buffers they share after reuse */
  size_t planned_bytes; /* bytes of those buffers */
  size_t naive_bytes;   /* bytes with one buffer per tensor */
  size_t param_bytes;   /* resident parameters, gradients and optimizer state */
} ct_plan_stats;
CT_API ct_status ct_plan_stats_get(const ct_plan *p, ct_plan_stats *out);

#ifdef __cplusplus
}
#endif
#endif
