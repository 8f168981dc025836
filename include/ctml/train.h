/* Training as an endomorphism Params -> Params: forward ; loss ; reverse ;
 * optimizer update, compiled once for a backend and iterated there. The
 * optimizer is a lens on (state, params): it reads the gradient and puts
 * back updated parameters and state. */
#ifndef CTML_TRAIN_H
#define CTML_TRAIN_H

#include "ctml/plan.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_optimizer {
  ct_opt_kind kind;
  float lr;            /* learning rate, > 0 and finite */
} ct_optimizer;

/* Plain gradient descent: p <- p - lr * g. */
ct_status ct_optimizer_sgd(ct_optimizer *out, float lr);

typedef struct ct_trainer ct_trainer;

/* loss must be a morphism whose codomain is one LOSS object. Parameters are
 * uploaded once; host parameters change only through ct_trainer_store_params. */
ct_status ct_trainer_new(ct_trainer **out, const ct_morphism *loss, const ct_backend *backend,
                         const ct_optimizer *opt);
void ct_trainer_free(ct_trainer *t);

/* The batch: input i of the loss morphism's domain. Stays until replaced. */
ct_status ct_trainer_set_input(ct_trainer *t, int i, const void *host, int64_t n);
/* Runs n_steps training steps on the current batch. The loss after the last
 * step's forward is checked: a NaN/Inf loss stops with CT_ERR_NONFINITE. */
ct_status ct_trainer_step(ct_trainer *t, int n_steps);
/* On backends that offer it (cuda), records one whole step (forward, reverse,
 * update) once as a device graph and replays it for every later step; on
 * others CT_ERR_UNSUPPORTED. Turning it off drops the graph. Not combinable
 * with plan tracing. */
ct_status ct_trainer_set_graph(ct_trainer *t, bool on);
/* Loss of the current parameters on the current batch (a forward run). */
ct_status ct_trainer_eval(ct_trainer *t, float *loss);
/* Copies the trained parameters back to the host parameter objects. */
ct_status ct_trainer_store_params(ct_trainer *t);
/* Steps taken so far. */
long ct_trainer_steps(const ct_trainer *t);
ct_plan *ct_trainer_plan(ct_trainer *t);

#ifdef __cplusplus
}
#endif
#endif
