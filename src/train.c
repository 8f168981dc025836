/* The training endomorphism: forward ; loss ; reverse ; optimizer update. */
#include <math.h>
#include <stdlib.h>
#include "plan_impl.h"

struct ct_trainer {
  ct_plan *plan;
  ct_optimizer opt;
  void **state; /* optimizer state per parameter (NULL for stateless optimizers) */
  long steps;
  int loss_value;
  bool use_graph;
  void *graph; /* one recorded step, when use_graph */
};

ct_status ct_optimizer_sgd(ct_optimizer *out, float lr) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "ct_optimizer_sgd: out is NULL");
  if (!isfinite(lr) || lr <= 0.0f)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_optimizer_sgd: learning rate %g must be finite and > 0",
                    (double)lr);
  out->kind = CT_OPT_SGD;
  out->lr = lr;
  return CT_OK;
}

void ct_trainer_free(ct_trainer *t) {
  if (!t) return;
  if (t->graph) t->plan->be->graph_free(t->plan->ctx, t->graph);
  for (int i = 0; t->state && t->plan && i < t->plan->n_params; i++)
    if (t->state[i]) t->plan->be->release(t->plan->ctx, t->state[i]);
  free(t->state);
  ct_plan_free(t->plan);
  free(t);
}

ct_status ct_trainer_new(ct_trainer **out, const ct_morphism *loss, const ct_backend *backend,
                         const ct_optimizer *opt) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_new: out is NULL");
  *out = NULL;
  if (!loss || !backend || !opt)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_new: NULL %s",
                    !loss ? "loss morphism" : !backend ? "backend" : "optimizer");
  if (opt->kind < 0 || opt->kind >= CT_OPT_COUNT)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_new: unknown optimizer %d", (int)opt->kind);
  if (!isfinite(opt->lr) || opt->lr <= 0.0f)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_new: learning rate %g must be finite and > 0",
                    (double)opt->lr);
  const ct_object *cod = ct_morphism_cod(loss, 0);
  if (ct_morphism_cod_count(loss) != 1 || cod->role != CT_ROLE_LOSS) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "ct_trainer_new: the loss morphism must end in one LOSS object, "
                    "its codomain has %d object(s)%s%s", ct_morphism_cod_count(loss),
                    cod ? ", the first " : "", cod ? ct_object_str(cod, b, sizeof b) : "");
  }
  if (!backend->update[opt->kind])
    return ct__fail(CT_ERR_UNSUPPORTED, "ct_trainer_new: backend '%s' has no %s update",
                    backend->name, ct_opt_name(opt->kind));
  ct_trainer *t = calloc(1, sizeof *t);
  if (!t) return ct__fail(CT_ERR_NOMEM, "ct_trainer_new: out of host memory");
  t->opt = *opt;
  ct_status s = ct_compile(&t->plan, loss, backend, CT_PLAN_REVERSE);
  if (s == CT_OK) {
    t->state = calloc((size_t)t->plan->n_params + 1, sizeof *t->state);
    if (!t->state) s = ct__fail(CT_ERR_NOMEM, "ct_trainer_new: out of host memory");
  }
  int per = backend->opt_state_per_elem[opt->kind];
  for (int i = 0; s == CT_OK && per > 0 && i < t->plan->n_params; i++) {
    int64_t n = ct_param_numel(t->plan->params[i]) * per;
    s = backend->alloc(t->plan->ctx, (size_t)n * sizeof(float), &t->state[i]);
    if (s == CT_OK) s = backend->fill(t->plan->ctx, t->state[i], 0.0f, n);
    if (s == CT_OK) t->plan->stats.param_bytes += (size_t)n * sizeof(float);
  }
  /* The seed of the reverse pass: d loss / d loss = 1. Nothing else writes it. */
  if (s == CT_OK) {
    t->loss_value = t->plan->m->cod[0];
    s = backend->fill(t->plan->ctx, ct__plan_grad(t->plan, t->loss_value), 1.0f, 1);
  }
  if (s != CT_OK) {
    ct_trainer_free(t);
    return s;
  }
  *out = t;
  return CT_OK;
}

ct_status ct_trainer_set_input(ct_trainer *t, int i, const void *host, int64_t n) {
  if (!t) return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_set_input: trainer is NULL");
  return ct_plan_set_input(t->plan, i, host, n);
}

static ct_status ct__read_loss(ct_trainer *t, float *loss, const char *fn) {
  ct_plan *p = t->plan;
  CT__TRY(p->be->sync(p->ctx));
  CT__TRY(p->be->download(p->ctx, loss, ct__plan_value(p, t->loss_value), sizeof *loss));
  if (!isfinite(*loss))
    return ct__fail(CT_ERR_NONFINITE, "%s: the loss is %g after %ld step(s); host parameters are "
                    "unchanged", fn, (double)*loss, t->steps);
  return CT_OK;
}

/* Queues one step: forward, reverse, update. Nothing waits for the device. The
 * update's step argument is the step being queued (a recorded graph replays the
 * value of the step it was recorded in; SGD does not read it). */
static ct_status ct__queue_step(ct_trainer *t) {
  ct_plan *p = t->plan;
  CT__TRY(ct__plan_forward_queue(p));
  CT__TRY(ct_plan_reverse(p));
  for (int i = 0; i < p->n_params; i++)
    CT__TRY(p->be->update[t->opt.kind](p->ctx, &t->opt, t->steps + 1, p->param_buf[i],
                                       p->param_grad[i], t->state[i],
                                       ct_param_numel(p->params[i])));
  return CT_OK;
}

static ct_status ct__record_step(ct_trainer *t) {
  ct_plan *p = t->plan;
  CT__TRY(p->be->capture_begin(p->ctx));
  ct_status s = ct__queue_step(t);
  void *graph = NULL;
  ct_status e = p->be->capture_end(p->ctx, &graph);
  if (s != CT_OK) {
    if (graph) p->be->graph_free(p->ctx, graph);
    return s;
  }
  if (e != CT_OK) return e;
  t->graph = graph;
  return CT_OK;
}

ct_status ct_trainer_set_graph(ct_trainer *t, bool on) {
  if (!t) return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_set_graph: trainer is NULL");
  ct_plan *p = t->plan;
  if (on && !p->be->capture_begin)
    return ct__fail(CT_ERR_UNSUPPORTED, "ct_trainer_set_graph: backend '%s' has no step graphs",
                    p->be->name);
  if (on && p->tracing)
    return ct__fail(CT_ERR_STATE, "ct_trainer_set_graph: the plan is tracing; a recorded graph "
                    "cannot time its kernels one by one");
  if (!on && t->graph) {
    p->be->graph_free(p->ctx, t->graph);
    t->graph = NULL;
  }
  t->use_graph = on;
  return CT_OK;
}

ct_status ct_trainer_step(ct_trainer *t, int n_steps) {
  if (!t) return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_step: trainer is NULL");
  if (n_steps < 1)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_step: step count %d must be >= 1", n_steps);
  ct_plan *p = t->plan;
  if (t->use_graph && p->tracing)
    return ct__fail(CT_ERR_STATE, "ct_trainer_step: step graphs are on and the plan is tracing");
  if (t->use_graph && !t->graph) CT__TRY(ct__record_step(t));
  for (int k = 0; k < n_steps; k++) {
    if (t->graph) {
      CT__TRY(p->be->graph_launch(p->ctx, t->graph));
      p->forward_valid = p->residuals_valid = true;
    } else {
      CT__TRY(ct__queue_step(t));
    }
    p->residuals_valid = false;
    t->steps++;
  }
  /* The outputs now hold the pre-update forward; parameters have moved on. */
  float loss;
  ct_status s = ct__read_loss(t, &loss, "ct_trainer_step");
  p->forward_valid = false;
  return s;
}

ct_status ct_trainer_eval(ct_trainer *t, float *loss) {
  CT__NEED(t, "ct_trainer_eval");
  CT__NEED(loss, "ct_trainer_eval");
  CT__TRY(ct_plan_forward(t->plan));
  return ct__read_loss(t, loss, "ct_trainer_eval");
}

ct_status ct_trainer_store_params(ct_trainer *t) {
  if (!t) return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_store_params: trainer is NULL");
  return ct_plan_store_params(t->plan);
}

long ct_trainer_steps(const ct_trainer *t) { return t ? t->steps : 0; }
ct_plan *ct_trainer_plan(ct_trainer *t) { return t ? t->plan : NULL; }
