/* SPDX-License-Identifier: MIT */
/* Training as an endomorphism Params -> Params: forward ; loss ; reverse ;
 * optimizer update, compiled once for a backend and iterated there. The
 * optimizer is a lens on (state, params): it reads the gradient and puts
 * back updated parameters and state. */
#ifndef CTML_TRAIN_H
#define CTML_TRAIN_H

#include "ctml/collective.h"
#include "ctml/export.h"
#include "ctml/plan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An optimizer and its schedule. Every number here lives on the device while
 * training (the trainer uploads it), so changing it (ct_trainer_set_optimizer)
 * recompiles nothing and keeps a recorded step graph valid. */
typedef struct ct_optimizer {
  ct_opt_kind kind;
  float lr;            /* peak learning rate, > 0 and finite */
  /* AdamW (ignored by SGD): moment decay rates in [0, 1), eps > 0. */
  float beta1, beta2, eps;
  /* Decoupled weight decay p <- p (1 - lr wd), applied to parameters of rank >= 2
   * (matrices and embedding tables), never to biases and gains. >= 0. */
  float weight_decay;
  /* Global gradient-norm clipping: when the norm over every parameter gradient
   * exceeds clip_norm, all gradients are scaled by clip_norm / norm. 0: off. */
  float clip_norm;
  /* Schedule over steps t = 1, 2, ...: linear warmup to lr over warmup_steps,
   * then cosine decay to min_lr at total_steps, min_lr after. total_steps 0:
   * constant lr after warmup. Step counts are below 2^24. */
  long warmup_steps, total_steps;
  float min_lr;
} ct_optimizer;

/* Plain gradient descent: p <- p - lr * g (no decay, clipping or schedule). */
CT_API ct_status ct_optimizer_sgd(ct_optimizer *out, float lr);
/* AdamW with PyTorch's defaults for the rest: beta1 0.9, beta2 0.999, eps 1e-8,
 * weight decay 0.01, no clipping, constant rate. Fields may be changed after. */
CT_API ct_status ct_optimizer_adamw(ct_optimizer *out, float lr);
/* Checks every field; the message names the first bad one. */
CT_API ct_status ct_optimizer_validate(const ct_optimizer *opt);
/* The scheduled learning rate of step t (t >= 1), as the device computes it. */
CT_API float ct_optimizer_lr_at(const ct_optimizer *opt, long t);

typedef struct ct_trainer ct_trainer;

/* loss must be a morphism whose codomain is one LOSS object. Parameters are
 * uploaded once; host parameters change only through ct_trainer_store_params. */
CT_API ct_status ct_trainer_new(ct_trainer **out, const ct_morphism *loss, const ct_backend *backend,
                         const ct_optimizer *opt);
/* The same with plan flags: 0, or CT_PLAN_NO_REWRITE to train the morphism as
 * built (no fusions; ct_plan_rewrite_count(ct_trainer_plan(t)) is then 0). */
CT_API ct_status ct_trainer_new_flags(ct_trainer **out, const ct_morphism *loss,
                               const ct_backend *backend, const ct_optimizer *opt, int flags);
CT_API void ct_trainer_free(ct_trainer *t);

/* The batch: input i of the loss morphism's domain. Stays until replaced. */
CT_API ct_status ct_trainer_set_input(ct_trainer *t, int i, const void *host, int64_t n);
/* Runs n_steps training steps on the current batch. The loss after the last
 * step's forward is checked: a NaN/Inf loss stops with CT_ERR_NONFINITE. */
CT_API ct_status ct_trainer_step(ct_trainer *t, int n_steps);
/* On backends that offer it (cuda), records one whole step (forward, reverse,
 * update) once as a device graph and replays it for every later step; on
 * others CT_ERR_UNSUPPORTED. Turning it off drops the graph. Not combinable
 * with plan tracing. */
CT_API ct_status ct_trainer_set_graph(ct_trainer *t, bool on);
/* Replaces the optimizer's numbers (same kind); takes effect at the next step,
 * on the device, without recompiling or re-recording anything. */
CT_API ct_status ct_trainer_set_optimizer(ct_trainer *t, const ct_optimizer *opt);
/* The learning rate and the global gradient norm (before clipping) of the last
 * step, as computed on the device. */
CT_API ct_status ct_trainer_last_lr(ct_trainer *t, float *lr);
CT_API ct_status ct_trainer_last_grad_norm(ct_trainer *t, float *norm);
/* The loss of the last ct_trainer_step's last step, from its forward (before
 * that step's update). */
CT_API ct_status ct_trainer_last_loss(ct_trainer *t, float *loss);
/* Loss of the current parameters on the current batch (a forward run). */
CT_API ct_status ct_trainer_eval(ct_trainer *t, float *loss);
/* Copies the trained parameters back to the host parameter objects. */
CT_API ct_status ct_trainer_store_params(ct_trainer *t);
/* Steps taken so far. */
CT_API long ct_trainer_steps(const ct_trainer *t);
/* Sets the step count on the device and the host, as when resuming from a
 * checkpoint taken after that many steps: the next step is steps + 1 (its
 * schedule and bias corrections follow). 0 <= steps < 2^24. */
CT_API ct_status ct_trainer_set_steps(ct_trainer *t, long steps);
/* The optimizer state kept for param: *n floats (AdamW: numel first moments,
 * then numel second moments; SGD: 0). get copies it out, set copies it in;
 * n must equal the size. Together with the parameters and the step count it
 * is everything a resumed run needs to continue bit for bit. */
CT_API ct_status ct_trainer_state_size(const ct_trainer *t, const ct_param *param, int64_t *n);
CT_API ct_status ct_trainer_get_state(ct_trainer *t, const ct_param *param, float *host, int64_t n);
CT_API ct_status ct_trainer_set_state(ct_trainer *t, const ct_param *param, const float *host,
                               int64_t n);
CT_API ct_plan *ct_trainer_plan(ct_trainer *t);

/* Data-parallel training over the ranks of c (NULL: back to one process).
 * A collective call: every rank calls it, with trainers of the same morphism
 * and optimizer at the same step count (else CT_ERR_STATE naming the ranks'
 * counts). It copies rank 0's parameters and optimizer state to every rank.
 * From then on each step runs forward and reverse on the rank's own batch,
 * agrees on failure (a rank whose step failed stops every rank with an error
 * naming it), replaces the gradient arena by its mean over the ranks (one
 * all-reduce per step), then clips and updates identically on every rank, so
 * the parameters stay identical. ct_trainer_step's loss (ct_trainer_last_loss)
 * and ct_trainer_eval's are means over the ranks; both are collective calls.
 * c must reduce buffers of the trainer's backend; step graphs are refused. */
CT_API ct_status ct_trainer_set_collective(ct_trainer *t, ct_collective *c);

#ifdef __cplusplus
}
#endif
#endif
