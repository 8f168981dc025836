/* SPDX-License-Identifier: MIT */
/* Compiling a morphism into a plan, and running it forward and in reverse. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "plan_impl.h"

#define CT__FOREVER 0x3fffffff

/* ---- graph invariants --------------------------------------------------- */

/* Each value produced once (by dom or a node) and consumed once (by a node or cod). */
static ct_status ct__check_linear(const ct_morphism *m) {
  int *prod = calloc((size_t)m->n_values + 1, sizeof *prod);
  int *cons = calloc((size_t)m->n_values + 1, sizeof *cons);
  if (!prod || !cons) {
    free(prod);
    free(cons);
    return ct__fail(CT_ERR_NOMEM, "ct_compile: out of host memory");
  }
  for (int i = 0; i < m->n_dom; i++) prod[m->dom[i]]++;
  for (int i = 0; i < m->n_cod; i++) cons[m->cod[i]]++;
  for (int i = 0; i < m->n_nodes; i++) {
    for (int k = 0; k < m->nodes[i].n_in; k++) cons[m->nodes[i].in[k]]++;
    for (int k = 0; k < m->nodes[i].n_out; k++) prod[m->nodes[i].out[k]]++;
  }
  ct_status s = CT_OK;
  for (int v = 0; v < m->n_values && s == CT_OK; v++)
    if (prod[v] != 1 || cons[v] != 1)
      s = ct__fail(CT_ERR_INTERNAL, "ct_compile: value %d is produced %d times and consumed %d "
                   "times (each must be once)", v, prod[v], cons[v]);
  free(prod);
  free(cons);
  return s;
}

/* Kahn's algorithm over the value dependencies; ties keep node order. */
static ct_status ct__toposort(const ct_morphism *m, int *order) {
  char *ready = calloc((size_t)m->n_values + 1, 1);
  char *done = calloc((size_t)m->n_nodes + 1, 1);
  if (!ready || !done) {
    free(ready);
    free(done);
    return ct__fail(CT_ERR_NOMEM, "ct_compile: out of host memory");
  }
  for (int i = 0; i < m->n_dom; i++) ready[m->dom[i]] = 1;
  int placed = 0;
  while (placed < m->n_nodes) {
    int pick = -1;
    for (int i = 0; i < m->n_nodes && pick < 0; i++) {
      if (done[i]) continue;
      bool ok = true;
      for (int k = 0; k < m->nodes[i].n_in && ok; k++) ok = ready[m->nodes[i].in[k]];
      if (ok) pick = i;
    }
    if (pick < 0) break;
    done[pick] = 1;
    order[placed++] = pick;
    for (int k = 0; k < m->nodes[pick].n_out; k++) ready[m->nodes[pick].out[k]] = 1;
  }
  free(ready);
  free(done);
  if (placed != m->n_nodes)
    return ct__fail(CT_ERR_INTERNAL, "ct_compile: the graph has a cycle (%d of %d nodes ordered)",
                    placed, m->n_nodes);
  return CT_OK;
}

/* ---- lifetimes and buffer reuse ------------------------------------------ */

typedef struct ct__life {
  size_t bytes;
  int def, last; /* steps; def -1 and last FOREVER for pinned boundary tensors */
  bool used;
} ct__life;

static void ct__touch(ct__life *l, int step) {
  if (step > l->last) l->last = step;
}

/* Greedy assignment in order of definition: a slot is free once its last
 * tenant's last use is strictly before the new tenant's definition. Best fit
 * among free slots large enough, otherwise the largest free slot grows. */
static ct_status ct__assign_slots(ct_plan *p, const ct__life *life) {
  int n = p->n_tensors;
  int *byorder = malloc(((size_t)n + 1) * sizeof *byorder);
  int *slot_last = malloc(((size_t)n + 1) * sizeof *slot_last);
  p->slot_bytes = calloc((size_t)n + 1, sizeof *p->slot_bytes);
  if (!byorder || !slot_last || !p->slot_bytes) {
    free(byorder);
    free(slot_last);
    return ct__fail(CT_ERR_NOMEM, "ct_compile: out of host memory");
  }
  int k = 0;
  for (int t = 0; t < n; t++)
    if (life[t].used) byorder[k++] = t;
  /* insertion sort by def, stable */
  for (int i = 1; i < k; i++) {
    int t = byorder[i], j = i - 1;
    while (j >= 0 && life[byorder[j]].def > life[t].def) {
      byorder[j + 1] = byorder[j];
      j--;
    }
    byorder[j + 1] = t;
  }
  p->n_slots = 0;
  for (int i = 0; i < k; i++) {
    int t = byorder[i], best = -1, largest = -1;
    for (int s = 0; s < p->n_slots; s++) {
      if (slot_last[s] >= life[t].def) continue;
      if (p->slot_bytes[s] >= life[t].bytes) {
        if (best < 0 || p->slot_bytes[s] < p->slot_bytes[best]) best = s;
      } else if (largest < 0 || p->slot_bytes[s] > p->slot_bytes[largest]) {
        largest = s;
      }
    }
    if (best < 0) best = largest;
    if (best < 0) best = p->n_slots++;
    if (p->slot_bytes[best] < life[t].bytes) p->slot_bytes[best] = life[t].bytes;
    slot_last[best] = life[t].last;
    p->tensor_slot[t] = best;
  }
  free(byorder);
  free(slot_last);
  return CT_OK;
}

static ct_status ct__plan_lifetimes(ct_plan *p) {
  const ct_morphism *m = p->m;
  int V = m->n_values, N = m->n_nodes;
  bool rev = p->reverse;
  ct__life *life = calloc((size_t)p->n_tensors + 1, sizeof *life);
  if (!life) return ct__fail(CT_ERR_NOMEM, "ct_compile: out of host memory");
  for (int t = 0; t < p->n_tensors; t++) life[t].last = -1;
  for (int v = 0; v < V; v++) {
    life[v].bytes = ct_object_bytes(&m->values[v]);
    life[v].used = true;
    if (rev && m->values[v].dtype == CT_F32) {
      life[V + v].bytes = life[v].bytes;
      life[V + v].used = true;
    }
  }
  for (int s = 0; s < N; s++) {
    int i = p->order[s], rs = 2 * N - 1 - s; /* forward step s, reverse step rs */
    const ct__node *nd = &m->nodes[i];
    const ct__op_info *info = ct__op(nd->op);
    for (int k = 0; k < nd->n_out; k++) {
      ct__life *l = &life[nd->out[k]];
      l->def = s;
      ct__touch(l, s);
      if (rev && info->rev_needs_outputs) ct__touch(l, rs);
      if (rev && life[V + nd->out[k]].used) life[V + nd->out[k]].last = rs; /* read by reverse */
    }
    for (int k = 0; k < nd->n_in; k++) {
      ct__life *l = &life[nd->in[k]];
      ct__touch(l, s);
      if (rev && info->rev_needs_inputs) ct__touch(l, rs);
      if (rev && life[V + nd->in[k]].used) { /* written by this reverse */
        life[V + nd->in[k]].def = rs;
        ct__touch(&life[V + nd->in[k]], rs);
      }
    }
    size_t saved = info->saved_bytes(m, nd);
    if (saved) {
      ct__life *l = &life[2 * V + i];
      l->bytes = saved;
      l->used = true;
      l->def = s;
      l->last = rev ? rs : s;
    }
  }
  /* Boundary tensors are read and written by the user at any time: pinned.
   * A KEEP plan pins every tensor. */
  for (int t = 0; p->keep && t < p->n_tensors; t++) {
    life[t].def = -1;
    life[t].last = CT__FOREVER;
  }
  for (int i = 0; i < m->n_dom + m->n_cod; i++) {
    int v = i < m->n_dom ? m->dom[i] : m->cod[i - m->n_dom];
    life[v].def = -1;
    life[v].last = CT__FOREVER;
    if (life[V + v].used) {
      life[V + v].def = -1;
      life[V + v].last = CT__FOREVER;
    }
  }
  for (int t = 0; t < p->n_tensors; t++) {
    p->tensor_slot[t] = -1;
    if (life[t].used) {
      p->stats.values++;
      p->stats.naive_bytes += life[t].bytes;
    }
  }
  ct_status s = ct__assign_slots(p, life);
  free(life);
  return s;
}

/* ---- compile ------------------------------------------------------------ */

#define CT__GUARD_BYTES 4096
/* Guard words are a NaN: a kernel that reads past an end gets NaN results. */
#define CT__GUARD_WORD 0x7fa5a5a5u

/* Writes a guard region of CT__GUARD_WORD at byte offset at of buf. */
static ct_status ct__write_guard(ct_plan *p, void *buf, size_t at) {
  uint32_t words[CT__GUARD_BYTES / 4];
  for (size_t k = 0; k < CT__GUARD_BYTES / 4; k++) words[k] = CT__GUARD_WORD;
  return p->be->upload_at(p->ctx, buf, at, words, CT__GUARD_BYTES);
}

/* A zeroed device buffer of bytes (a multiple of 4), followed in GUARD plans by
 * a guard region. */
static ct_status ct__alloc_buffer(ct_plan *p, size_t bytes, void **buf) {
  size_t total = bytes + (p->guard ? CT__GUARD_BYTES : 0);
  CT__TRY(p->be->alloc(p->ctx, total, buf));
  CT__TRY(p->be->fill(p->ctx, *buf, 0.0f, (int64_t)(bytes / sizeof(float))));
  return p->guard ? ct__write_guard(p, *buf, bytes) : CT_OK;
}

/* Places the parameters in an arena: tensors of rank >= 2 (weight decay) first,
 * then the rest, each at a multiple of the backend's view alignment and, in
 * GUARD plans, followed by a guard region. Sets param_off, n_decay, arena_numel. */
static ct_status ct__arena_layout(ct_plan *p) {
  size_t align = p->be->view_align(p->ctx), off = 0;
  if (align < sizeof(float) || (align & (align - 1)))
    return ct__fail(CT_ERR_INTERNAL, "ct_compile: backend '%s' aligns views to %zu bytes, not a "
                    "power of two >= 4", p->be->name, align);
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) p->n_decay = (int64_t)(off / sizeof(float));
    for (int i = 0; i < p->n_params; i++) {
      const ct_object *o = ct_param_object(p->params[i]);
      if ((o->rank >= 2) != (pass == 0) || p->borrowed[i]) continue;
      p->param_off[i] = off;
      off += ct_object_bytes(o) + (p->guard ? CT__GUARD_BYTES : 0);
      off = (off + align - 1) & ~(align - 1);
    }
  }
  p->arena_numel = (int64_t)(off / sizeof(float));
  return CT_OK;
}

/* A zeroed arena of the plan's layout, a view of each parameter's bytes in
 * views, and in GUARD plans the guard region after each. */
static ct_status ct__alloc_arena(ct_plan *p, void **arena, void **views) {
  if (p->arena_numel == 0) return CT_OK; /* every parameter borrowed, or none */
  CT__TRY(p->be->alloc(p->ctx, (size_t)p->arena_numel * sizeof(float), arena));
  CT__TRY(p->be->fill(p->ctx, *arena, 0.0f, p->arena_numel));
  for (int i = 0; i < p->n_params; i++) {
    if (p->borrowed[i]) continue;
    size_t bytes = ct_object_bytes(ct_param_object(p->params[i]));
    CT__TRY(p->be->view(p->ctx, *arena, p->param_off[i], bytes, &views[i]));
    if (p->guard) CT__TRY(ct__write_guard(p, *arena, p->param_off[i] + bytes));
  }
  return CT_OK;
}

/* CT_OK when the guard at byte offset at of buf, after a buffer of bytes, is intact. */
static ct_status ct__check_guard(ct_plan *p, void *buf, size_t at, size_t bytes,
                                 const char *what) {
  uint32_t words[CT__GUARD_BYTES / 4];
  CT__TRY(p->be->download_at(p->ctx, words, buf, at, CT__GUARD_BYTES));
  for (size_t k = 0; k < CT__GUARD_BYTES / 4; k++)
    if (words[k] != CT__GUARD_WORD)
      return ct__fail(CT_ERR_DEVICE, "ct_plan_check_guards: %s was written past its end: byte %zu "
                      "after its %zu bytes holds 0x%08x", what, 4 * k, bytes, words[k]);
  return CT_OK;
}

/* Names buffer slot i by the first tensor it holds: "buffer 3 (value 3, LOGITS f32[9,11],
 * output of node 1 linear)". */
static void ct__describe_slot(const ct_plan *p, int i, char *out, size_t len) {
  int V = p->m->n_values, t = 0;
  while (t < p->n_tensors && p->tensor_slot[t] != i) t++;
  if (t >= 2 * V) {
    int n = t - 2 * V;
    snprintf(out, len, "buffer %d (residual of node %d %s)", i, n, ct_op_name(p->m->nodes[n].op));
    return;
  }
  int v = t < V ? t : t - V, producer = -1;
  for (int n = 0; n < p->m->n_nodes && producer < 0; n++)
    for (int k = 0; k < p->m->nodes[n].n_out; k++)
      if (p->m->nodes[n].out[k] == v) producer = n;
  char b[96];
  char from[64] = "an input";
  if (producer >= 0)
    snprintf(from, sizeof from, "output of node %d %s", producer,
             ct_op_name(p->m->nodes[producer].op));
  snprintf(out, len, "buffer %d (%s %d, %s, %s)", i, t < V ? "value" : "cotangent of value", v,
           ct_object_str(&p->m->values[v], b, sizeof b), from);
}

ct_status ct_plan_check_guards(ct_plan *p) {
  CT__NEED(p, "ct_plan_check_guards");
  if (!p->guard)
    return ct__fail(CT_ERR_STATE, "ct_plan_check_guards: the plan was compiled without CT_PLAN_GUARD");
  CT__TRY(p->be->sync(p->ctx));
  char what[160];
  for (int i = 0; i < p->n_slots; i++) {
    ct__describe_slot(p, i, what, sizeof what);
    CT__TRY(ct__check_guard(p, p->slot_buf[i], p->slot_bytes[i], p->slot_bytes[i], what));
  }
  for (int i = 0; i < p->n_params; i++) {
    if (p->borrowed[i]) continue;
    size_t bytes = ct_object_bytes(ct_param_object(p->params[i])), at = p->param_off[i] + bytes;
    snprintf(what, sizeof what, "parameter '%s'", ct_param_name(p->params[i]));
    CT__TRY(ct__check_guard(p, p->param_arena, at, bytes, what));
    if (!p->grad_arena) continue;
    snprintf(what, sizeof what, "gradient of parameter '%s'", ct_param_name(p->params[i]));
    CT__TRY(ct__check_guard(p, p->grad_arena, at, bytes, what));
  }
  return CT_OK;
}

static int ct__param_index(ct_plan *p, ct_param *prm) {
  for (int i = 0; i < p->n_params; i++)
    if (p->params[i] == prm) return i;
  p->params[p->n_params] = prm;
  ct__param_retain(prm);
  return p->n_params++;
}

static ct_status ct__copy_morphism(const ct_morphism *src, ct_morphism **out) {
  /* Composing with the identity on the codomain yields an equal, independent copy. */
  ct_morphism *id = NULL;
  ct_object *objs = malloc(((size_t)src->n_cod + 1) * sizeof *objs);
  if (!objs) return ct__fail(CT_ERR_NOMEM, "ct_compile: out of host memory");
  for (int i = 0; i < src->n_cod; i++) objs[i] = src->values[src->cod[i]];
  ct_status s = ct_identity(&id, objs, src->n_cod);
  free(objs);
  if (s == CT_OK) s = ct_compose(out, id, src);
  ct_morphism_free(id);
  return s;
}

static ct_status ct__compile(ct_plan **out, const ct_morphism *m, const ct_backend *backend,
                             int mode, const ct_plan *owner);

static ct_status ct__compile_with(ct_plan **out, const ct_morphism *m, const ct_backend *backend,
                                  const ct_backend *peer, int mode, const ct_plan *owner);

ct_status ct_compile(ct_plan **out, const ct_morphism *m, const ct_backend *backend,
                     int mode) {
  return ct__compile_for(out, m, backend, NULL, mode);
}

ct_status ct__compile_for(ct_plan **out, const ct_morphism *m, const ct_backend *backend,
                          const ct_backend *peer, int mode) {
  return ct__compile_with(out, m, backend, peer, mode, NULL);
}

ct_status ct__compile_shared(ct_plan **out, const ct_morphism *m, const ct_backend *backend,
                             int mode, const ct_plan *owner) {
  if (owner && owner->be != backend)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_compile: a plan on '%s' cannot share parameters with "
                    "a plan on '%s'", backend ? backend->name : "(null)", owner->be->name);
  return ct__compile_with(out, m, backend, NULL, mode, owner);
}

static ct_status ct__compile_with(ct_plan **out, const ct_morphism *m, const ct_backend *backend,
                                  const ct_backend *peer, int mode, const ct_plan *owner) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "ct_compile: out is NULL");
  *out = NULL;
  if (!m || !backend)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_compile: %s is NULL", m ? "backend" : "morphism");
  if (mode & ~(CT_PLAN_REVERSE | CT_PLAN_KEEP | CT_PLAN_GUARD | CT_PLAN_NO_REWRITE))
    return ct__fail(CT_ERR_INVALID_ARG, "ct_compile: unknown plan mode %d", mode);
  CT__TRY(ct__check_linear(m));
  ct__rewrite_log log = {0};
  ct_morphism *rewritten = NULL;
  if (!(mode & CT_PLAN_NO_REWRITE))
    CT__TRY(ct__rewrite(m, backend, peer, (mode & CT_PLAN_REVERSE) != 0, &rewritten, &log));
  ct_status s = ct__compile(out, rewritten ? rewritten : m, backend, mode, owner);
  ct_morphism_free(rewritten);
  if (s == CT_OK)
    (*out)->rewrites = log;
  else
    ct__rewrite_log_free(&log);
  return s;
}

int ct_plan_rewrite_count(const ct_plan *p) { return p ? p->rewrites.n : 0; }

const char *ct_plan_rewrite(const ct_plan *p, int i) {
  return p && i >= 0 && i < p->rewrites.n ? p->rewrites.lines[i] : NULL;
}

/* Compiles m as it is (mode already checked, m linear), borrowing owner's buffers of
 * the parameters both use (owner may be NULL). */
static ct_status ct__compile(ct_plan **out, const ct_morphism *m, const ct_backend *backend,
                             int mode, const ct_plan *owner) {
  bool reverse = (mode & CT_PLAN_REVERSE) != 0;
  if (!backend->view || !backend->release_view || !backend->view_align)
    return ct__fail(CT_ERR_INTERNAL, "ct_compile: backend '%s' has no buffer views (the plan "
                    "keeps parameters and gradients in arenas)", backend->name);
  for (int i = 0; i < m->n_nodes; i++) {
    ct_op op = m->nodes[i].op;
    if (reverse && ct__op(op)->forward_only)
      return ct__fail(CT_ERR_UNSUPPORTED, "ct_compile: %s (node %d) has no reverse (it serves "
                      "decoding); compile the morphism without CT_PLAN_REVERSE",
                      ct_op_name(op), i);
    if (!ct__backend_runs(backend, op, reverse))
      return ct__fail(CT_ERR_UNSUPPORTED, "ct_compile: backend '%s' does not support %s %s (node %d)",
                      backend->name, ct_op_name(op),
                      ct__backend_runs(backend, op, false) ? "reverse" : "forward", i);
  }
  ct_plan *p = calloc(1, sizeof *p);
  if (!p) return ct__fail(CT_ERR_NOMEM, "ct_compile: out of host memory");
  p->be = backend;
  p->ctx = ct__backend_ctx(backend);
  p->reverse = reverse;
  p->keep = (mode & CT_PLAN_KEEP) != 0;
  p->guard = (mode & CT_PLAN_GUARD) != 0;
  ct_trace_init(&p->trace);
  ct_status s = ct__copy_morphism(m, &p->m);
  if (s != CT_OK) {
    ct_plan_free(p);
    return s;
  }
  int V = m->n_values, N = m->n_nodes;
  p->n_tensors = 2 * V + N;
  p->order = malloc(((size_t)N + 1) * sizeof *p->order);
  p->tensor_slot = malloc(((size_t)p->n_tensors + 1) * sizeof *p->tensor_slot);
  p->params = calloc((size_t)N * CT__MAX_PARAMS + 1, sizeof *p->params);
  p->node_param = calloc((size_t)N * CT__MAX_PARAMS + 1, sizeof *p->node_param);
  if (!p->order || !p->tensor_slot || !p->params || !p->node_param) {
    ct_plan_free(p);
    return ct__fail(CT_ERR_NOMEM, "ct_compile: out of host memory");
  }
  s = ct__toposort(p->m, p->order);
  if (s == CT_OK) s = ct__plan_lifetimes(p);
  if (s != CT_OK) {
    ct_plan_free(p);
    return s;
  }
  for (int i = 0; i < N; i++)
    for (int k = 0; k < p->m->nodes[i].n_params; k++)
      p->node_param[i * CT__MAX_PARAMS + k] = ct__param_index(p, p->m->nodes[i].params[k]);
  p->stats.nodes = N;
  p->stats.steps = reverse ? 2 * N : N;
  p->stats.buffers = p->n_slots;
  /* Device memory: slots, then the parameter arena (and the gradient arena) resident. */
  p->slot_buf = calloc((size_t)p->n_slots + 1, sizeof *p->slot_buf);
  p->param_buf = calloc((size_t)p->n_params + 1, sizeof *p->param_buf);
  p->param_grad = calloc((size_t)p->n_params + 1, sizeof *p->param_grad);
  p->param_off = calloc((size_t)p->n_params + 1, sizeof *p->param_off);
  p->borrowed = calloc((size_t)p->n_params + 1, sizeof *p->borrowed);
  if (!p->slot_buf || !p->param_buf || !p->param_grad || !p->param_off || !p->borrowed) {
    ct_plan_free(p);
    return ct__fail(CT_ERR_NOMEM, "ct_compile: out of host memory");
  }
  if (owner && reverse) {
    ct_plan_free(p);
    return ct__fail(CT_ERR_INVALID_ARG, "ct_compile: a plan that shares parameters is forward "
                    "only");
  }
  for (int i = 0; owner && i < p->n_params; i++) {
    int j = ct__find_param(owner, p->params[i]);
    if (j < 0) continue;
    p->borrowed[i] = true;
    p->param_buf[i] = owner->param_buf[j];
  }
  s = ct__arena_layout(p);
  if (s != CT_OK) {
    ct_plan_free(p);
    return s;
  }
  size_t total = 0;
  for (int i = 0; i < p->n_slots; i++) total += p->slot_bytes[i];
  p->stats.planned_bytes = total;
  p->stats.param_bytes = (size_t)p->arena_numel * sizeof(float) * (reverse ? 2 : 1);
  for (int i = 0; i < p->n_slots && s == CT_OK; i++)
    s = ct__alloc_buffer(p, p->slot_bytes[i], &p->slot_buf[i]);
  if (s == CT_OK) s = ct__alloc_arena(p, &p->param_arena, p->param_buf);
  if (s == CT_OK && reverse) s = ct__alloc_arena(p, &p->grad_arena, p->param_grad);
  if (s != CT_OK) {
    ct_status e = ct__fail(s, "ct_compile: cannot allocate the plan on '%s' (%zu bytes of "
                           "buffers in %d slots, %zu bytes of parameters and gradients): %s",
                           backend->name, total, p->n_slots, p->stats.param_bytes,
                           ct_last_error());
    ct_plan_free(p);
    return e;
  }
  s = ct_plan_load_params(p);
  if (s != CT_OK) {
    ct_plan_free(p);
    return s;
  }
  *out = p;
  return CT_OK;
}

void ct_plan_free(ct_plan *p) {
  if (!p) return;
  for (int i = 0; p->slot_buf && i < p->n_slots; i++)
    if (p->slot_buf[i]) p->be->release(p->ctx, p->slot_buf[i]);
  for (int i = 0; i < p->n_params; i++) {
    bool own = !p->borrowed || !p->borrowed[i];
    if (own && p->param_buf && p->param_buf[i]) p->be->release_view(p->ctx, p->param_buf[i]);
    if (p->param_grad && p->param_grad[i]) p->be->release_view(p->ctx, p->param_grad[i]);
    ct_param_free(p->params[i]);
  }
  if (p->param_arena) p->be->release(p->ctx, p->param_arena);
  if (p->grad_arena) p->be->release(p->ctx, p->grad_arena);
  free(p->param_off);
  free(p->borrowed);
  free(p->slot_buf);
  free(p->slot_bytes);
  free(p->param_buf);
  free(p->param_grad);
  free(p->params);
  free(p->node_param);
  free(p->tensor_slot);
  free(p->order);
  ct_morphism_free(p->m);
  ct_trace_free(&p->trace);
  ct__rewrite_log_free(&p->rewrites);
  free(p);
}

/* ---- buffers ---------------------------------------------------------- */

static void *ct__tensor_buf(const ct_plan *p, int t) {
  int s = p->tensor_slot[t];
  return s < 0 ? NULL : p->slot_buf[s];
}

void *ct__plan_value(const ct_plan *p, int v) { return ct__tensor_buf(p, v); }
void *ct__plan_grad(const ct_plan *p, int v) {
  return p->reverse ? ct__tensor_buf(p, p->m->n_values + v) : NULL;
}

/* Checks boundary index i and element count n against the boundary object. */
static ct_status ct__boundary(const ct_plan *p, bool cod, int i, int64_t n, const void *host,
                              const char *fn, int *value) {
  if (!p) return ct__fail(CT_ERR_INVALID_ARG, "%s: plan is NULL", fn);
  int count = cod ? p->m->n_cod : p->m->n_dom;
  if (i < 0 || i >= count)
    return ct__fail(CT_ERR_RANGE, "%s: %s index %d is outside [0, %d)", fn,
                    cod ? "output" : "input", i, count);
  if (!host) return ct__fail(CT_ERR_INVALID_ARG, "%s: host pointer is NULL", fn);
  int v = cod ? p->m->cod[i] : p->m->dom[i];
  const ct_object *o = &p->m->values[v];
  if (n != ct_object_numel(o)) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "%s: %s %d is %s with %lld elements, not %lld", fn,
                    cod ? "output" : "input", i, ct_object_str(o, b, sizeof b),
                    (long long)ct_object_numel(o), (long long)n);
  }
  *value = v;
  return CT_OK;
}

static ct_status ct__check_finite(const float *x, int64_t n, const char *fn, const char *what,
                                  int i, const ct_object *o) {
  for (int64_t k = 0; k < n; k++)
    if (!isfinite(x[k])) {
      char b[96];
      return ct__fail(CT_ERR_NONFINITE, "%s: %s %d (%s) element %lld is %g", fn, what, i,
                      ct_object_str(o, b, sizeof b), (long long)k, (double)x[k]);
    }
  return CT_OK;
}

ct_status ct_plan_set_input(ct_plan *p, int i, const void *host, int64_t n) {
  int v;
  CT__TRY(ct__boundary(p, false, i, n, host, "ct_plan_set_input", &v));
  const ct_object *o = &p->m->values[v];
  if (o->dtype == CT_F32) CT__TRY(ct__check_finite(host, n, "ct_plan_set_input", "input", i, o));
  p->forward_valid = p->residuals_valid = false;
  return p->be->upload(p->ctx, ct__plan_value(p, v), host, ct_object_bytes(o));
}

ct_status ct_plan_get_output(ct_plan *p, int i, void *host, int64_t n) {
  int v;
  CT__TRY(ct__boundary(p, true, i, n, host, "ct_plan_get_output", &v));
  if (!p->forward_valid)
    return ct__fail(CT_ERR_STATE, "ct_plan_get_output: run ct_plan_forward after setting inputs");
  return p->be->download(p->ctx, host, ct__plan_value(p, v), ct_object_bytes(&p->m->values[v]));
}

ct_status ct__plan_get_output_at(ct_plan *p, int i, int64_t at, void *host, int64_t n) {
  int v;
  if (!p) return ct__fail(CT_ERR_INVALID_ARG, "ct_plan_get_output: plan is NULL");
  if (i < 0 || i >= p->m->n_cod)
    return ct__fail(CT_ERR_RANGE, "ct_plan_get_output: output index %d is outside [0, %d)", i,
                    p->m->n_cod);
  v = p->m->cod[i];
  const ct_object *o = &p->m->values[v];
  if (!host || at < 0 || n < 0 || at + n > ct_object_numel(o))
    return ct__fail(CT_ERR_RANGE, "ct_plan_get_output: elements [%lld, %lld) of output %d are "
                    "outside its %lld", (long long)at, (long long)(at + n), i,
                    (long long)ct_object_numel(o));
  if (!p->forward_valid)
    return ct__fail(CT_ERR_STATE, "ct_plan_get_output: run ct_plan_forward after setting inputs");
  size_t elem = ct_object_bytes(o) / (size_t)ct_object_numel(o);
  return p->be->download_at(p->ctx, host, ct__plan_value(p, v), (size_t)at * elem,
                            (size_t)n * elem);
}

ct_status ct_plan_set_output_grad(ct_plan *p, int i, const float *host, int64_t n) {
  int v;
  CT__TRY(ct__boundary(p, true, i, n, host, "ct_plan_set_output_grad", &v));
  const ct_object *o = &p->m->values[v];
  if (!p->reverse)
    return ct__fail(CT_ERR_STATE, "ct_plan_set_output_grad: the plan was compiled forward-only");
  if (o->dtype != CT_F32) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "ct_plan_set_output_grad: output %d (%s) has no cotangent", i,
                    ct_object_str(o, b, sizeof b));
  }
  CT__TRY(ct__check_finite(host, n, "ct_plan_set_output_grad", "output cotangent", i, o));
  return p->be->upload(p->ctx, ct__plan_grad(p, v), host, ct_object_bytes(o));
}

ct_status ct_plan_get_input_grad(ct_plan *p, int i, float *host, int64_t n) {
  int v;
  CT__TRY(ct__boundary(p, false, i, n, host, "ct_plan_get_input_grad", &v));
  const ct_object *o = &p->m->values[v];
  if (!p->reverse || o->dtype != CT_F32) {
    char b[96];
    return ct__fail(!p->reverse ? CT_ERR_STATE : CT_ERR_SHAPE,
                    "ct_plan_get_input_grad: input %d (%s) has no cotangent in this plan", i,
                    ct_object_str(o, b, sizeof b));
  }
  return p->be->download(p->ctx, host, ct__plan_grad(p, v), ct_object_bytes(o));
}

int ct__find_param(const ct_plan *p, const ct_param *param) {
  for (int i = 0; i < p->n_params; i++)
    if (p->params[i] == param) return i;
  return -1;
}

ct_status ct_plan_get_param_grad(ct_plan *p, const ct_param *param, float *host, int64_t n) {
  CT__NEED(p, "ct_plan_get_param_grad");
  CT__NEED(param, "ct_plan_get_param_grad");
  CT__NEED(host, "ct_plan_get_param_grad");
  int k = ct__find_param(p, param);
  if (k < 0)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_plan_get_param_grad: parameter '%s' is not used by "
                    "this plan", ct_param_name(param));
  if (!p->reverse)
    return ct__fail(CT_ERR_STATE, "ct_plan_get_param_grad: the plan was compiled forward-only");
  if (n != ct_param_numel(param))
    return ct__fail(CT_ERR_SHAPE, "ct_plan_get_param_grad: parameter '%s' has %lld elements, "
                    "not %lld", ct_param_name(param), (long long)ct_param_numel(param),
                    (long long)n);
  return p->be->download(p->ctx, host, p->param_grad[k], (size_t)n * sizeof(float));
}

ct_status ct_plan_load_params(ct_plan *p) {
  if (!p) return ct__fail(CT_ERR_INVALID_ARG, "ct_plan_load_params: plan is NULL");
  for (int i = 0; i < p->n_params; i++)
    if (!p->borrowed[i]) /* a borrowed parameter is its owner's to load */
      CT__TRY(p->be->upload(p->ctx, p->param_buf[i], ct__param_host(p->params[i]),
                            ct_object_bytes(ct_param_object(p->params[i]))));
  p->forward_valid = p->residuals_valid = false;
  return CT_OK;
}

ct_status ct_plan_store_params(ct_plan *p) {
  if (!p) return ct__fail(CT_ERR_INVALID_ARG, "ct_plan_store_params: plan is NULL");
  CT__TRY(p->be->sync(p->ctx));
  /* Download everything first and check it, so a failure leaves the host untouched. */
  size_t total = 0;
  for (int i = 0; i < p->n_params; i++) total += ct_object_bytes(ct_param_object(p->params[i]));
  float *tmp = malloc(total + 1);
  if (!tmp) return ct__fail(CT_ERR_NOMEM, "ct_plan_store_params: out of host memory");
  ct_status s = CT_OK;
  size_t off = 0;
  for (int i = 0; i < p->n_params && s == CT_OK; i++) {
    int64_t n = ct_param_numel(p->params[i]);
    s = p->be->download(p->ctx, tmp + off, p->param_buf[i], (size_t)n * sizeof(float));
    for (int64_t k = 0; k < n && s == CT_OK; k++)
      if (!isfinite(tmp[off + (size_t)k]))
        s = ct__fail(CT_ERR_NONFINITE, "ct_plan_store_params: parameter '%s' element %lld is %g; "
                     "host parameters left unchanged", ct_param_name(p->params[i]), (long long)k,
                     (double)tmp[off + (size_t)k]);
    off += (size_t)n;
  }
  off = 0;
  for (int i = 0; i < p->n_params && s == CT_OK; i++) {
    int64_t n = ct_param_numel(p->params[i]);
    memcpy(ct__param_host(p->params[i]), tmp + off, (size_t)n * sizeof(float));
    off += (size_t)n;
  }
  free(tmp);
  return s;
}

/* ---- running -------------------------------------------------------------- */

static double ct__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ct_status ct__record(ct_plan *p, const ct__node *nd, ct_direction dir, double t0) {
  ct_trace_event e;
  memset(&e, 0, sizeof e);
  CT__TRY(p->be->sync(p->ctx));
  e.seconds = ct__now() - t0;
  snprintf(e.op, sizeof e.op, "%s%s", ct_op_name(nd->op), dir == CT_REVERSE ? ".reverse" : "");
  size_t k = 0;
  for (int i = 0; i < nd->n_in && k < sizeof e.shape; i++) {
    char b[96];
    k += (size_t)snprintf(e.shape + k, sizeof e.shape - k, "%s%s", i ? " (x) " : "",
                          ct_object_str(&p->m->values[nd->in[i]], b, sizeof b));
  }
  ct__op(nd->op)->cost(p->m, nd, dir, &e.flops, &e.bytes);
  return ct_trace_append(&p->trace, &e);
}

static ct_status ct__launch(ct_plan *p, int i, ct_direction dir, ct__kernel k, const ct__kargs *a) {
  const ct__node *nd = &p->m->nodes[i];
  double t0 = p->tracing ? ct__now() : 0.0;
  ct_status s = k(p->ctx, a);
  if (s != CT_OK)
    return ct__fail(s, "node %d (%s%s): %s", i, ct_op_name(nd->op),
                    dir == CT_REVERSE ? " reverse" : "", ct_last_error());
  return p->tracing ? ct__record(p, nd, dir, t0) : CT_OK;
}

/* The lens's view of node i: forward values, parameters, residual and cotangents. */
static void ct__kargs_fill(const ct_plan *p, int i, ct__kargs *a) {
  const ct__node *nd = &p->m->nodes[i];
  memset(a, 0, sizeof *a);
  a->n_in = nd->n_in;
  a->n_out = nd->n_out;
  a->n_params = nd->n_params;
  for (int k = 0; k < nd->n_in; k++) {
    a->in_obj[k] = &p->m->values[nd->in[k]];
    a->in[k] = ct__plan_value(p, nd->in[k]);
    a->din[k] = ct__plan_grad(p, nd->in[k]);
  }
  for (int k = 0; k < nd->n_out; k++) {
    a->out_obj[k] = &p->m->values[nd->out[k]];
    a->out[k] = ct__plan_value(p, nd->out[k]);
    a->dout[k] = ct__plan_grad(p, nd->out[k]);
  }
  for (int k = 0; k < nd->n_params; k++) {
    int j = p->node_param[i * CT__MAX_PARAMS + k];
    a->param_obj[k] = ct_param_object(p->params[j]);
    a->param[k] = p->param_buf[j];
    a->dparam[k] = p->param_grad[j];
  }
  a->saved = ct__tensor_buf(p, 2 * p->m->n_values + i);
  a->node = i;
  a->op = nd->op;
  a->attr = nd->attr;
}

ct_status ct__plan_forward_queue(ct_plan *p) {
  p->forward_valid = p->residuals_valid = false;
  for (int s = 0; s < p->m->n_nodes; s++) {
    int i = p->order[s];
    ct__kargs a;
    ct__kargs_fill(p, i, &a);
    CT__TRY(ct__launch(p, i, CT_FORWARD, p->be->forward[p->m->nodes[i].op], &a));
  }
  p->forward_valid = p->residuals_valid = true;
  return CT_OK;
}

ct_status ct_plan_forward(ct_plan *p) {
  if (!p) return ct__fail(CT_ERR_INVALID_ARG, "ct_plan_forward: plan is NULL");
  CT__TRY(ct__plan_forward_queue(p));
  ct_status s = p->be->sync(p->ctx);
  if (s != CT_OK) p->forward_valid = p->residuals_valid = false;
  return s;
}

/* The reverse of one node. Structural generators reverse as another
 * generator's forward on the cotangents: copy as add, add as copy, discard as 0. */
static ct_status ct__reverse_node(ct_plan *p, int i) {
  const ct__node *nd = &p->m->nodes[i];
  const ct__op_info *info = ct__op(nd->op);
  ct__kargs a;
  ct__kargs_fill(p, i, &a);
  if (info->reverse_is_zero) {
    for (int k = 0; k < nd->n_in; k++)
      if (a.din[k]) CT__TRY(p->be->fill(p->ctx, a.din[k], 0.0f, ct_object_numel(a.in_obj[k])));
    return CT_OK;
  }
  if (info->reverse_as >= 0) {
    if (!a.din[0]) return CT_OK; /* no cotangents for i32 values */
    ct__kargs d;
    memset(&d, 0, sizeof d);
    d.node = i;
    d.op = info->reverse_as;
    d.n_in = nd->n_out;
    d.n_out = nd->n_in;
    for (int k = 0; k < nd->n_out; k++) {
      d.in_obj[k] = a.out_obj[k];
      d.in[k] = a.dout[k];
    }
    for (int k = 0; k < nd->n_in; k++) {
      d.out_obj[k] = a.in_obj[k];
      d.out[k] = a.din[k];
    }
    return ct__launch(p, i, CT_REVERSE, p->be->forward[info->reverse_as], &d);
  }
  return ct__launch(p, i, CT_REVERSE, p->be->reverse[nd->op], &a);
}

ct_status ct_plan_reverse(ct_plan *p) {
  if (!p) return ct__fail(CT_ERR_INVALID_ARG, "ct_plan_reverse: plan is NULL");
  if (!p->reverse)
    return ct__fail(CT_ERR_STATE, "ct_plan_reverse: the plan was compiled forward-only");
  if (!p->residuals_valid)
    return ct__fail(CT_ERR_STATE, "ct_plan_reverse: run ct_plan_forward first (the reverse "
                    "reads the residuals of one forward run)");
  /* One fill over the gradient arena; in GUARD plans one per gradient, so that
   * the guard regions between them stay intact. */
  if (!p->guard)
    CT__TRY(p->be->fill(p->ctx, p->grad_arena, 0.0f, p->arena_numel));
  for (int i = 0; p->guard && i < p->n_params; i++)
    CT__TRY(p->be->fill(p->ctx, p->param_grad[i], 0.0f, ct_param_numel(p->params[i])));
  for (int s = p->m->n_nodes - 1; s >= 0; s--) CT__TRY(ct__reverse_node(p, p->order[s]));
  /* The reverse reuses residual buffers: another reverse needs another forward. */
  p->residuals_valid = false;
  return CT_OK;
}

ct_status ct_plan_set_tracing(ct_plan *p, bool on) {
  if (!p) return ct__fail(CT_ERR_INVALID_ARG, "ct_plan_set_tracing: plan is NULL");
  p->tracing = on;
  return CT_OK;
}

ct_status ct_plan_take_trace(ct_plan *p, ct_trace *out) {
  CT__NEED(p, "ct_plan_take_trace");
  CT__NEED(out, "ct_plan_take_trace");
  *out = p->trace;
  return ct_trace_init(&p->trace);
}

ct_status ct_plan_stats_get(const ct_plan *p, ct_plan_stats *out) {
  CT__NEED(p, "ct_plan_stats_get");
  CT__NEED(out, "ct_plan_stats_get");
  *out = p->stats;
  return CT_OK;
}
