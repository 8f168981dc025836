/* SPDX-License-Identifier: MIT */
/* The training endomorphism: forward ; loss ; reverse ; optimizer update. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plan_impl.h"
#include "collective_impl.h"

struct ct_trainer {
  ct_plan *plan;
  ct_optimizer opt;
  /* Optimizer state of the plan's arena layout: state float k of arena element e
   * at k * arena_numel + e (AdamW: m of every element, then v); NULL for
   * stateless optimizers. */
  void *state;
  void *hyper; /* the optimizer's device record (CT__HYPER_COUNT floats) */
  void *sumsq; /* the squared norm of the gradient arena (one float) */
  long steps;
  float last_loss; /* loss of the last step's forward (before its update) */
  int loss_value;
  bool use_graph;
  void *graph; /* one recorded step, when use_graph */
  ct_collective *coll; /* data-parallel: gradients and losses are means over its ranks */
};

/* Steps and schedule lengths are counted in floats on the device. */
#define CT__MAX_STEPS (1L << 24)

static ct_status ct__validate(const ct_optimizer *o, const char *fn);

/* Fills *out only when the result is valid. */
static ct_status ct__make_optimizer(ct_optimizer *out, ct_opt_kind kind, float lr,
                                    float weight_decay, const char *fn) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "%s: out is NULL", fn);
  ct_optimizer o;
  memset(&o, 0, sizeof o);
  o.kind = kind;
  o.lr = lr;
  o.beta1 = 0.9f;
  o.beta2 = 0.999f;
  o.eps = 1e-8f;
  o.weight_decay = weight_decay;
  CT__TRY(ct__validate(&o, fn));
  *out = o;
  return CT_OK;
}

ct_status ct_optimizer_sgd(ct_optimizer *out, float lr) {
  return ct__make_optimizer(out, CT_OPT_SGD, lr, 0.0f, "ct_optimizer_sgd");
}

ct_status ct_optimizer_adamw(ct_optimizer *out, float lr) {
  return ct__make_optimizer(out, CT_OPT_ADAMW, lr, 0.01f, "ct_optimizer_adamw");
}

ct_status ct_optimizer_validate(const ct_optimizer *o) {
  return ct__validate(o, "ct_optimizer_validate");
}

static ct_status ct__validate(const ct_optimizer *o, const char *fn) {
  if (!o) return ct__fail(CT_ERR_INVALID_ARG, "%s: optimizer is NULL", fn);
  if (o->kind < 0 || o->kind >= CT_OPT_COUNT)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: unknown optimizer %d", fn, (int)o->kind);
  if (!isfinite(o->lr) || o->lr <= 0.0f)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: learning rate %g must be finite and > 0", fn,
                    (double)o->lr);
  if (!isfinite(o->min_lr) || o->min_lr < 0.0f || o->min_lr > o->lr)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: min_lr %g must be in [0, lr = %g]", fn,
                    (double)o->min_lr, (double)o->lr);
  if (!(o->beta1 >= 0.0f && o->beta1 < 1.0f) || !(o->beta2 >= 0.0f && o->beta2 < 1.0f))
    return ct__fail(CT_ERR_INVALID_ARG, "%s: beta1 %g and beta2 %g must be in [0, 1)", fn,
                    (double)o->beta1, (double)o->beta2);
  if (!isfinite(o->eps) || o->eps <= 0.0f)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: eps %g must be finite and > 0", fn, (double)o->eps);
  if (!isfinite(o->weight_decay) || o->weight_decay < 0.0f)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: weight decay %g must be finite and >= 0", fn,
                    (double)o->weight_decay);
  if (o->kind == CT_OPT_SGD && o->weight_decay != 0.0f)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: weight decay %g is an AdamW setting; SGD takes 0", fn,
                    (double)o->weight_decay);
  if (!isfinite(o->clip_norm) || o->clip_norm < 0.0f)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: clip_norm %g must be finite and >= 0 (0: off)", fn,
                    (double)o->clip_norm);
  if (o->warmup_steps < 0 || o->total_steps < 0 || o->warmup_steps >= CT__MAX_STEPS ||
      o->total_steps >= CT__MAX_STEPS)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: warmup_steps %ld and total_steps %ld must be in "
                    "[0, %ld)", fn, o->warmup_steps, o->total_steps, CT__MAX_STEPS);
  if (o->total_steps > 0 && o->total_steps <= o->warmup_steps)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: total_steps %ld must exceed warmup_steps %ld (or be "
                    "0 for no decay)", fn, o->total_steps, o->warmup_steps);
  return CT_OK;
}

float ct_optimizer_lr_at(const ct_optimizer *o, long step) {
  if (!o || step < 1) return 0.0f;
  float t = (float)step, w = (float)o->warmup_steps, total = (float)o->total_steps;
  if (w > 0.0f && t <= w) return o->lr * t / w;
  if (total == 0.0f) return o->lr;
  if (t >= total) return o->min_lr;
  return o->min_lr + 0.5f * (o->lr - o->min_lr) *
                         (1.0f + cosf(3.14159265358979f * (t - w) / (total - w)));
}

/* Writes the configuration slots of the device record. */
static ct_status ct__upload_config(ct_trainer *t) {
  const ct_optimizer *o = &t->opt;
  float cfg[CT__HYPER_WD - CT__HYPER_PEAK_LR + 1] = {
      o->lr, o->min_lr, (float)o->warmup_steps, (float)o->total_steps, o->clip_norm,
      o->beta1, o->beta2, o->eps, o->weight_decay};
  return t->plan->be->upload_at(t->plan->ctx, t->hyper, CT__HYPER_PEAK_LR * sizeof(float), cfg,
                                sizeof cfg);
}

void ct_trainer_free(ct_trainer *t) {
  if (!t) return;
  if (t->graph) t->plan->be->graph_free(t->plan->ctx, t->graph);
  if (t->state) t->plan->be->release(t->plan->ctx, t->state);
  if (t->hyper) t->plan->be->release(t->plan->ctx, t->hyper);
  if (t->sumsq) t->plan->be->release(t->plan->ctx, t->sumsq);
  ct_plan_free(t->plan);
  free(t);
}

ct_status ct_trainer_new(ct_trainer **out, const ct_morphism *loss, const ct_backend *backend,
                         const ct_optimizer *opt) {
  return ct_trainer_new_flags(out, loss, backend, opt, 0);
}

ct_status ct_trainer_new_flags(ct_trainer **out, const ct_morphism *loss,
                               const ct_backend *backend, const ct_optimizer *opt, int flags) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_new: out is NULL");
  if (flags & ~CT_PLAN_NO_REWRITE)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_new: flags %d: only CT_PLAN_NO_REWRITE (%d) "
                    "is a trainer flag", flags, CT_PLAN_NO_REWRITE);
  *out = NULL;
  if (!loss || !backend || !opt)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_new: NULL %s",
                    !loss ? "loss morphism" : !backend ? "backend" : "optimizer");
  CT__TRY(ct__validate(opt, "ct_trainer_new"));
  const ct_object *cod = ct_morphism_cod(loss, 0);
  if (ct_morphism_cod_count(loss) != 1 || cod->role != CT_ROLE_LOSS) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "ct_trainer_new: the loss morphism must end in one LOSS object, "
                    "its codomain has %d object(s)%s%s", ct_morphism_cod_count(loss),
                    cod ? ", the first " : "", cod ? ct_object_str(cod, b, sizeof b) : "");
  }
  if (!backend->update[opt->kind] || !backend->sumsq || !backend->hyper_step)
    return ct__fail(CT_ERR_UNSUPPORTED, "ct_trainer_new: backend '%s' has no %s update",
                    backend->name, ct_opt_name(opt->kind));
  ct_trainer *t = calloc(1, sizeof *t);
  if (!t) return ct__fail(CT_ERR_NOMEM, "ct_trainer_new: out of host memory");
  t->opt = *opt;
  /* Trainer plans have no guard regions (CT_PLAN_GUARD is not a trainer flag):
   * the updates run over the whole arenas. */
  ct_status s = ct_compile(&t->plan, loss, backend, CT_PLAN_REVERSE | flags);
  int64_t n = s == CT_OK ? t->plan->arena_numel * backend->opt_state_per_elem[opt->kind] : 0;
  if (s == CT_OK && n > 0) {
    s = backend->alloc(t->plan->ctx, (size_t)n * sizeof(float), &t->state);
    if (s == CT_OK) s = backend->fill(t->plan->ctx, t->state, 0.0f, n);
    if (s == CT_OK) t->plan->stats.param_bytes += (size_t)n * sizeof(float);
  }
  if (s == CT_OK) s = backend->alloc(t->plan->ctx, CT__HYPER_COUNT * sizeof(float), &t->hyper);
  if (s == CT_OK) s = backend->fill(t->plan->ctx, t->hyper, 0.0f, CT__HYPER_COUNT);
  if (s == CT_OK) s = ct__upload_config(t);
  if (s == CT_OK) s = backend->alloc(t->plan->ctx, sizeof(float), &t->sumsq);
  if (s == CT_OK) s = backend->fill(t->plan->ctx, t->sumsq, 0.0f, 1);
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
  ct_status s = p->be->sync(p->ctx);
  if (s == CT_OK) s = p->be->download(p->ctx, loss, ct__plan_value(p, t->loss_value), sizeof *loss);
  if (t->coll) {
    /* the mean over the ranks, once every rank has its own */
    CT__TRY(ct_collective_agree(t->coll, s));
    double sum = *loss;
    CT__TRY(ct_collective_sum_host(t->coll, &sum, 1));
    *loss = (float)(sum / (double)t->coll->size);
  }
  CT__TRY(s);
  if (!isfinite(*loss))
    return ct__fail(CT_ERR_NONFINITE, "%s: the loss is %g after %ld step(s); host parameters are "
                    "unchanged", fn, (double)*loss, t->steps);
  return CT_OK;
}

/* Queues one step: forward, reverse, the squared norm of the gradient arena,
 * the step kernel (schedule, bias corrections, clipping scale) and one update
 * over the arenas. Nothing waits for the device and no launch carries a
 * per-step number, so a recorded graph of it replays correctly. */
static ct_status ct__queue_step(ct_trainer *t) {
  ct_plan *p = t->plan;
  if (t->coll) {
    /* every rank's gradient, agreement that each has one, then their mean */
    ct_status s = ct__plan_forward_queue(p);
    if (s == CT_OK) s = ct_plan_reverse(p);
    if (s == CT_OK) s = p->be->sync(p->ctx);
    CT__TRY(ct_collective_agree(t->coll, s));
    CT__TRY(ct__collective_allreduce(t->coll, p->grad_arena, p->arena_numel, true));
  } else {
    CT__TRY(ct__plan_forward_queue(p));
    CT__TRY(ct_plan_reverse(p));
  }
  CT__TRY(p->be->sumsq(p->ctx, p->grad_arena, p->arena_numel, t->sumsq, 0));
  CT__TRY(p->be->hyper_step(p->ctx, t->hyper, t->sumsq, 1));
  return p->be->update[t->opt.kind](p->ctx, t->hyper, p->param_arena, p->grad_arena, t->state,
                                    p->arena_numel, p->n_decay);
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
  if (on && t->coll)
    return ct__fail(CT_ERR_STATE, "ct_trainer_set_graph: the trainer is data-parallel; its step "
                    "waits on the other ranks between reverse and update, which a recorded graph "
                    "cannot");
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

/* After a failed step the device's count is the truth: a step whose batch held a
 * bad id did not update anything there. Keeps the caller's error message. */
static void ct__resync_steps(ct_trainer *t) {
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", ct_last_error());
  float count;
  if (t->plan->be->sync(t->plan->ctx) == CT_OK &&
      t->plan->be->download_at(t->plan->ctx, &count, t->hyper, CT__HYPER_STEP * sizeof(float),
                               sizeof count) == CT_OK)
    t->steps = (long)count;
  ct__fail(CT_OK, "%s", msg);
}

ct_status ct_trainer_step(ct_trainer *t, int n_steps) {
  if (!t) return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_step: trainer is NULL");
  if (n_steps < 1)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_step: step count %d must be >= 1", n_steps);
  if (t->steps + n_steps >= CT__MAX_STEPS)
    return ct__fail(CT_ERR_RANGE, "ct_trainer_step: %ld + %d steps reach the limit of %ld steps "
                    "(the device counts steps in float)", t->steps, n_steps, CT__MAX_STEPS);
  ct_plan *p = t->plan;
  if (t->use_graph && p->tracing)
    return ct__fail(CT_ERR_STATE, "ct_trainer_step: step graphs are on and the plan is tracing");
  if (t->use_graph && !t->graph) CT__TRY(ct__record_step(t));
  ct_status s = CT_OK;
  for (int k = 0; k < n_steps && s == CT_OK; k++) {
    if (t->graph) {
      s = p->be->graph_launch(p->ctx, t->graph);
      p->forward_valid = p->residuals_valid = s == CT_OK;
    } else {
      s = ct__queue_step(t);
    }
    p->residuals_valid = false;
    if (s == CT_OK) t->steps++;
  }
  /* The outputs now hold the pre-update forward; parameters have moved on. */
  float loss;
  if (s == CT_OK) s = ct__read_loss(t, &loss, "ct_trainer_step");
  if (s == CT_OK) t->last_loss = loss;
  p->forward_valid = false;
  if (s != CT_OK) ct__resync_steps(t);
  return s;
}

ct_status ct_trainer_set_optimizer(ct_trainer *t, const ct_optimizer *opt) {
  CT__NEED(t, "ct_trainer_set_optimizer");
  CT__NEED(opt, "ct_trainer_set_optimizer");
  CT__TRY(ct__validate(opt, "ct_trainer_set_optimizer"));
  if (opt->kind != t->opt.kind)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_set_optimizer: the trainer was built for %s, "
                    "not %s (its state and step graph are that optimizer's)",
                    ct_opt_name(t->opt.kind), ct_opt_name(opt->kind));
  ct_optimizer old = t->opt;
  t->opt = *opt;
  ct_status s = t->plan->be->sync(t->plan->ctx);
  if (s == CT_OK) s = ct__upload_config(t);
  if (s != CT_OK) t->opt = old;
  return s;
}

static ct_status ct__read_hyper(ct_trainer *t, int slot, float *out, const char *fn) {
  CT__NEED(t, fn);
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "%s: out is NULL", fn);
  if (t->steps == 0) return ct__fail(CT_ERR_STATE, "%s: no step has been taken yet", fn);
  CT__TRY(t->plan->be->sync(t->plan->ctx));
  return t->plan->be->download_at(t->plan->ctx, out, t->hyper, (size_t)slot * sizeof(float),
                                  sizeof *out);
}

ct_status ct_trainer_last_lr(ct_trainer *t, float *lr) {
  return ct__read_hyper(t, CT__HYPER_LR, lr, "ct_trainer_last_lr");
}

ct_status ct_trainer_last_loss(ct_trainer *t, float *loss) {
  CT__NEED(t, "ct_trainer_last_loss");
  CT__NEED(loss, "ct_trainer_last_loss");
  if (t->steps == 0) return ct__fail(CT_ERR_STATE, "ct_trainer_last_loss: no step has been taken yet");
  *loss = t->last_loss;
  return CT_OK;
}

ct_status ct_trainer_last_grad_norm(ct_trainer *t, float *norm) {
  return ct__read_hyper(t, CT__HYPER_NORM, norm, "ct_trainer_last_grad_norm");
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

ct_status ct_trainer_set_steps(ct_trainer *t, long steps) {
  CT__NEED(t, "ct_trainer_set_steps");
  if (steps < 0 || steps >= CT__MAX_STEPS)
    return ct__fail(CT_ERR_RANGE, "ct_trainer_set_steps: step count %ld is outside [0, %ld)",
                    steps, CT__MAX_STEPS);
  ct_plan *p = t->plan;
  float count = (float)steps;
  CT__TRY(p->be->sync(p->ctx));
  CT__TRY(p->be->upload_at(p->ctx, t->hyper, CT__HYPER_STEP * sizeof(float), &count,
                           sizeof count));
  t->steps = steps;
  return CT_OK;
}

/* The index of param in the plan and its state size in floats; fails naming param. */
static ct_status ct__state_of(const ct_trainer *t, const ct_param *param, int64_t n_given,
                              bool check_n, int *k, int64_t *n, const char *fn) {
  CT__NEED(t, fn);
  CT__NEED(param, fn);
  *k = ct__find_param(t->plan, param);
  if (*k < 0)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: parameter '%s' is not trained by this trainer", fn,
                    ct_param_name(param));
  *n = ct_param_numel(param) * t->plan->be->opt_state_per_elem[t->opt.kind];
  if (check_n && n_given != *n)
    return ct__fail(CT_ERR_SHAPE, "%s: the %s state of parameter '%s' has %lld floats, not %lld",
                    fn, ct_opt_name(t->opt.kind), ct_param_name(param), (long long)*n,
                    (long long)n_given);
  return CT_OK;
}

ct_status ct_trainer_state_size(const ct_trainer *t, const ct_param *param, int64_t *n) {
  CT__NEED(n, "ct_trainer_state_size");
  int k;
  return ct__state_of(t, param, 0, false, &k, n, "ct_trainer_state_size");
}

/* Byte offset in the state arena of state float j (of per) of parameter k. */
static size_t ct__state_at(const ct_trainer *t, int k, int j) {
  return (size_t)j * (size_t)t->plan->arena_numel * sizeof(float) + t->plan->param_off[k];
}

ct_status ct_trainer_get_state(ct_trainer *t, const ct_param *param, float *host, int64_t n) {
  int k;
  int64_t size;
  CT__TRY(ct__state_of(t, param, n, true, &k, &size, "ct_trainer_get_state"));
  if (size == 0) return CT_OK;
  CT__NEED(host, "ct_trainer_get_state");
  CT__TRY(t->plan->be->sync(t->plan->ctx));
  int64_t numel = ct_param_numel(param), per = size / numel;
  for (int j = 0; j < per; j++)
    CT__TRY(t->plan->be->download_at(t->plan->ctx, host + j * numel, t->state,
                                     ct__state_at(t, k, j), (size_t)numel * sizeof(float)));
  return CT_OK;
}

ct_status ct_trainer_set_state(ct_trainer *t, const ct_param *param, const float *host,
                               int64_t n) {
  int k;
  int64_t size;
  CT__TRY(ct__state_of(t, param, n, true, &k, &size, "ct_trainer_set_state"));
  if (size == 0) return CT_OK;
  CT__NEED(host, "ct_trainer_set_state");
  for (int64_t i = 0; i < size; i++)
    if (!isfinite(host[i]))
      return ct__fail(CT_ERR_NONFINITE, "ct_trainer_set_state: parameter '%s' state element %lld "
                      "is %g", ct_param_name(param), (long long)i, (double)host[i]);
  CT__TRY(t->plan->be->sync(t->plan->ctx));
  int64_t numel = ct_param_numel(param), per = size / numel;
  for (int j = 0; j < per; j++)
    CT__TRY(t->plan->be->upload_at(t->plan->ctx, t->state, ct__state_at(t, k, j),
                                   host + j * numel, (size_t)numel * sizeof(float)));
  return CT_OK;
}
ct_plan *ct_trainer_plan(ct_trainer *t) { return t ? t->plan : NULL; }

ct_status ct_trainer_set_collective(ct_trainer *t, ct_collective *c) {
  CT__NEED(t, "ct_trainer_set_collective");
  ct_plan *p = t->plan;
  if (!c) {
    t->coll = NULL;
    return CT_OK;
  }
  if (c->be != p->be)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_trainer_set_collective: the collective reduces '%s' "
                    "buffers, the trainer runs on '%s'", c->be->name, p->be->name);
  if (t->use_graph)
    return ct__fail(CT_ERR_STATE, "ct_trainer_set_collective: step graphs are on; a "
                    "data-parallel step cannot be recorded (turn them off)");
  /* the same step count everywhere, then rank 0's parameters and state */
  double counts[2] = {(double)t->steps, (double)t->steps * (double)t->steps};
  CT__TRY(ct_collective_sum_host(c, counts, 2));
  double mean = counts[0] / c->size;
  if (counts[1] / c->size - mean * mean > 0.0)
    return ct__fail(CT_ERR_STATE, "ct_trainer_set_collective: rank %d is at step %ld, the mean "
                    "over the %d ranks is %g: every rank must start at the same step", c->rank,
                    t->steps, c->size, mean);
  CT__TRY(p->be->sync(p->ctx));
  CT__TRY(ct__collective_broadcast(c, p->param_arena, p->arena_numel));
  if (t->state)
    CT__TRY(ct__collective_broadcast(c, t->state, p->arena_numel *
                                     p->be->opt_state_per_elem[t->opt.kind]));
  t->coll = c;
  return CT_OK;
}
