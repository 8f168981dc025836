/* SPDX-License-Identifier: MIT */
/* Node-by-node comparison of one plan on two backends. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plan_impl.h"

typedef struct ct__side {
  ct_plan *plan;
  float *host; /* scratch for one downloaded tensor */
} ct__side;

/* splitmix64 in [-1, 1): deterministic cotangents. */
static float ct__noise(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (float)((double)(z >> 11) / 4503599627370496.0 - 1.0);
}

/* Appends a zeroed entry labelled label; NULL when out of memory. */
static ct_check_entry *ct__new_entry(ct_check_report *r, const char *label) {
  ct_check_entry *grown = realloc(r->entries, ((size_t)r->count + 1) * sizeof *grown);
  if (!grown) return NULL;
  r->entries = grown;
  ct_check_entry *e = &r->entries[r->count];
  memset(e, 0, sizeof *e);
  snprintf(e->label, sizeof e->label, "%s", label);
  return e;
}

static ct_status ct__add_entry(ct_check_report *r, const char *label, int node, ct_direction dir,
                               const float *a, const float *b, int64_t n) {
  ct_check_entry *e = ct__new_entry(r, label);
  if (!e) return ct__fail(CT_ERR_NOMEM, "ct_check: out of host memory");
  e->node = node;
  e->dir = dir;
  e->elements = n;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(a[i]) || !isfinite(b[i])) {
      e->nonfinite = true;
      continue;
    }
    double d = fabs((double)a[i] - (double)b[i]);
    double ratio = d / (1e-5 + 1e-4 * fabs((double)b[i]));
    if (d > e->max_abs) e->max_abs = d;
    if (ratio > e->max_ratio) e->max_ratio = ratio;
  }
  e->pass = !e->nonfinite && e->max_ratio <= 1.0;
  if (!e->pass && r->first_divergent < 0) r->first_divergent = r->count;
  r->count++;
  return CT_OK;
}

/* A failing entry that is not a numeric comparison (a broken guard region). */
static ct_status ct__add_failure(ct_check_report *r, const char *label, const char *detail) {
  ct_check_entry *e = ct__new_entry(r, label);
  if (!e) return ct__fail(CT_ERR_NOMEM, "ct_check: out of host memory");
  snprintf(e->detail, sizeof e->detail, "%s", detail);
  e->node = -1;
  if (r->first_divergent < 0) r->first_divergent = r->count;
  r->count++;
  return CT_OK;
}

/* Downloads n floats of buffer buf from each side and compares them. */
static ct_status ct__compare(ct_check_report *r, ct__side *s, void *const bufs[2], int64_t n,
                             const char *label, int node, ct_direction dir) {
  for (int k = 0; k < 2; k++)
    CT__TRY(s[k].plan->be->download(s[k].plan->ctx, s[k].host, bufs[k], (size_t)n * sizeof(float)));
  return ct__add_entry(r, label, node, dir, s[0].host, s[1].host, n);
}

static ct_status ct__check_run(const ct_morphism *m, ct__side *s, const void *const *inputs,
                               uint64_t seed, ct_check_report *r) {
  const ct_morphism *pm = s[0].plan->m;
  size_t largest = 4;
  for (int v = 0; v < pm->n_values; v++)
    if (ct_object_bytes(&pm->values[v]) > largest) largest = ct_object_bytes(&pm->values[v]);
  for (int i = 0; i < s[0].plan->n_params; i++) {
    size_t b = ct_object_bytes(ct_param_object(s[0].plan->params[i]));
    if (b > largest) largest = b;
  }
  float *cot = malloc(largest);
  for (int k = 0; k < 2; k++) s[k].host = malloc(largest);
  if (!cot || !s[0].host || !s[1].host) {
    free(cot);
    return ct__fail(CT_ERR_NOMEM, "ct_check: out of host memory");
  }
  ct_status st = CT_OK;
  for (int i = 0; i < m->n_dom && st == CT_OK; i++)
    for (int k = 0; k < 2 && st == CT_OK; k++)
      st = ct_plan_set_input(s[k].plan, i, inputs[i], ct_object_numel(&m->values[m->dom[i]]));
  bool reverse = s[0].plan->reverse;
  for (int i = 0; i < m->n_cod && st == CT_OK && reverse; i++) {
    const ct_object *o = &m->values[m->cod[i]];
    if (o->dtype != CT_F32) continue;
    int64_t n = ct_object_numel(o);
    for (int64_t j = 0; j < n; j++) cot[j] = o->role == CT_ROLE_LOSS ? 1.0f : ct__noise(&seed);
    for (int k = 0; k < 2 && st == CT_OK; k++) st = ct_plan_set_output_grad(s[k].plan, i, cot, n);
  }
  for (int k = 0; k < 2 && st == CT_OK; k++) {
    st = ct_plan_forward(s[k].plan);
    if (st == CT_OK && reverse) st = ct_plan_reverse(s[k].plan);
    if (st != CT_OK)
      st = ct__fail(st, "ct_check: backend '%s': %s", s[k].plan->be->name, ct_last_error());
  }
  char label[96];
  /* forward: every f32 output of every node, in execution order */
  for (int step = 0; step < pm->n_nodes && st == CT_OK; step++) {
    int i = s[0].plan->order[step];
    const ct__node *nd = &pm->nodes[i];
    for (int k = 0; k < nd->n_out && st == CT_OK; k++) {
      const ct_object *o = &pm->values[nd->out[k]];
      if (o->dtype != CT_F32) continue;
      void *bufs[2] = {ct__plan_value(s[0].plan, nd->out[k]), ct__plan_value(s[1].plan, nd->out[k])};
      snprintf(label, sizeof label, "node %d %s forward (output %d)", i, ct_op_name(nd->op), k);
      st = ct__compare(r, s, bufs, ct_object_numel(o), label, i, CT_FORWARD);
    }
  }
  /* forward only: the parameters after the forward (the caches it writes) */
  for (int i = 0; i < s[0].plan->n_params && st == CT_OK && !reverse; i++) {
    void *bufs[2] = {s[0].plan->param_buf[i], s[1].plan->param_buf[i]};
    snprintf(label, sizeof label, "param %s after the forward", ct_param_name(s[0].plan->params[i]));
    st = ct__compare(r, s, bufs, ct_param_numel(s[0].plan->params[i]), label, -1, CT_FORWARD);
  }
  /* reverse: every input cotangent of every node, in reverse execution order */
  for (int step = pm->n_nodes - 1; step >= 0 && st == CT_OK && reverse; step--) {
    int i = s[0].plan->order[step];
    const ct__node *nd = &pm->nodes[i];
    for (int k = 0; k < nd->n_in && st == CT_OK; k++) {
      void *bufs[2] = {ct__plan_grad(s[0].plan, nd->in[k]), ct__plan_grad(s[1].plan, nd->in[k])};
      if (!bufs[0]) continue;
      snprintf(label, sizeof label, "node %d %s reverse (d input %d)", i, ct_op_name(nd->op), k);
      st = ct__compare(r, s, bufs, ct_object_numel(&pm->values[nd->in[k]]), label, i, CT_REVERSE);
    }
  }
  for (int i = 0; i < s[0].plan->n_params && st == CT_OK && reverse; i++) {
    void *bufs[2] = {s[0].plan->param_grad[i], s[1].plan->param_grad[i]};
    snprintf(label, sizeof label, "param %s gradient", ct_param_name(s[0].plan->params[i]));
    st = ct__compare(r, s, bufs, ct_param_numel(s[0].plan->params[i]), label, -1, CT_REVERSE);
  }
  /* Guard regions: a write past the end of any buffer is a failure of its own. */
  for (int k = 0; k < 2 && st == CT_OK; k++) {
    ct_status g = ct_plan_check_guards(s[k].plan);
    if (g == CT_ERR_DEVICE) {
      snprintf(label, sizeof label, "guards on %s", s[k].plan->be->name);
      st = ct__add_failure(r, label, ct_last_error());
    } else {
      st = g;
    }
  }
  free(cot);
  return st;
}

ct_status ct_check(const ct_morphism *m, const ct_backend *a, const ct_backend *b,
                   const void *const *inputs, uint64_t seed, ct_check_report *report) {
  CT__NEED(m, "ct_check");
  CT__NEED(a, "ct_check");
  CT__NEED(b, "ct_check");
  CT__NEED(report, "ct_check");
  memset(report, 0, sizeof *report);
  report->first_divergent = -1;
  if (m->n_dom > 0) CT__NEED(inputs, "ct_check");
  for (int i = 0; i < m->n_dom; i++)
    if (!inputs[i]) return ct__fail(CT_ERR_INVALID_ARG, "ct_check: input %d is NULL", i);
  ct__side s[2];
  memset(s, 0, sizeof s);
  const ct_backend *be[2] = {a, b};
  ct_status st = CT_OK;
  /* a morphism with a generator that has no reverse (decoding) is checked forward only */
  int mode = CT_PLAN_REVERSE | CT_PLAN_KEEP | CT_PLAN_GUARD;
  for (int i = 0; i < m->n_nodes; i++)
    if (ct__op(m->nodes[i].op)->forward_only) mode &= ~CT_PLAN_REVERSE;
  for (int k = 0; k < 2 && st == CT_OK; k++)
    st = ct__compile_for(&s[k].plan, m, be[k], be[1 - k], mode);
  if (st == CT_OK) st = ct__check_run(m, s, inputs, seed, report);
  for (int k = 0; k < 2; k++) {
    free(s[k].host);
    ct_plan_free(s[k].plan);
  }
  if (st != CT_OK) ct_check_report_free(report);
  return st;
}

ct_status ct_check_report_print(FILE *f, const ct_check_report *r, const char *name_a,
                                const char *name_b) {
  CT__NEED(f, "ct_check_report_print");
  CT__NEED(r, "ct_check_report_print");
  fprintf(f, "%-50s %10s %12s %10s  %s vs %s\n", "result", "elements", "max |a-b|", "tol ratio",
          name_a ? name_a : "a", name_b ? name_b : "b");
  for (int i = 0; i < r->count; i++) {
    const ct_check_entry *e = &r->entries[i];
    if (e->detail[0]) {
      fprintf(f, "%-50s %s\n", e->label, e->detail);
      continue;
    }
    fprintf(f, "%-50s %10lld %12.3g %10.3g  %s\n", e->label, (long long)e->elements, e->max_abs,
            e->max_ratio, e->pass ? "ok" : e->nonfinite ? "NaN/Inf" : "DIVERGES");
  }
  if (r->first_divergent >= 0)
    fprintf(f, "first divergence: %s\n", r->entries[r->first_divergent].label);
  else
    fprintf(f, "all %d results within tolerance\n", r->count);
  return CT_OK;
}

void ct_check_report_free(ct_check_report *r) {
  if (!r) return;
  free(r->entries);
  r->entries = NULL;
  r->count = 0;
}
