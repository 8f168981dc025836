/* SPDX-License-Identifier: MIT */
/* Open graphs: generators, identity, composition and tensor product. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

ct_morphism *ct__graph_alloc(int n_values, int n_nodes, int n_dom, int n_cod) {
  ct_morphism *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->n_values = n_values;
  m->n_nodes = n_nodes;
  m->n_dom = n_dom;
  m->n_cod = n_cod;
  m->values = calloc((size_t)n_values + 1, sizeof *m->values);
  m->nodes = calloc((size_t)n_nodes + 1, sizeof *m->nodes);
  m->dom = calloc((size_t)n_dom + 1, sizeof *m->dom);
  m->cod = calloc((size_t)n_cod + 1, sizeof *m->cod);
  if (!m->values || !m->nodes || !m->dom || !m->cod) {
    ct_morphism_free(m);
    return NULL;
  }
  return m;
}

void ct_morphism_free(ct_morphism *m) {
  if (!m) return;
  if (m->nodes)
    for (int i = 0; i < m->n_nodes; i++)
      for (int k = 0; k < m->nodes[i].n_params; k++) ct_param_free(m->nodes[i].params[k]);
  free(m->values);
  free(m->nodes);
  free(m->dom);
  free(m->cod);
  free(m);
}

static ct_status ct__oom(const char *fn) {
  return ct__fail(CT_ERR_NOMEM, "%s: out of host memory", fn);
}

/* Copies node src into dst with value ids passed through map, retaining parameters. */
void ct__node_copy(ct__node *dst, const ct__node *src, const int *map) {
  *dst = *src;
  for (int k = 0; k < src->n_in; k++) dst->in[k] = map[src->in[k]];
  for (int k = 0; k < src->n_out; k++) dst->out[k] = map[src->out[k]];
  for (int k = 0; k < src->n_params; k++) ct__param_retain(src->params[k]);
}

/* Writes "(A, B)" for a list of objects. */
static const char *ct__list_str(const ct_morphism *m, const int *ids, int n, char *buf,
                                size_t cap) {
  size_t k = (size_t)snprintf(buf, cap, "(");
  for (int i = 0; i < n && k < cap; i++) {
    char o[96];
    k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? ", " : "",
                          ct_object_str(&m->values[ids[i]], o, sizeof o));
  }
  if (k < cap) snprintf(buf + k, cap - k, n ? ")" : "I)");
  return buf;
}

static ct_status ct__generator(ct_morphism **out, ct_op op, const ct_object *ins, int n_in,
                               const ct_object *outs, int n_out, ct_param *const *params,
                               int n_params) {
  ct_morphism *m = ct__graph_alloc(n_in + n_out, 1, n_in, n_out);
  if (!m) return ct__oom(ct_op_name(op));
  ct__node *nd = &m->nodes[0];
  nd->op = op;
  nd->n_in = n_in;
  nd->n_out = n_out;
  nd->n_params = n_params;
  for (int i = 0; i < n_in; i++) {
    m->values[i] = ins[i];
    m->dom[i] = nd->in[i] = i;
  }
  for (int i = 0; i < n_out; i++) {
    m->values[n_in + i] = outs[i];
    m->cod[i] = nd->out[i] = n_in + i;
  }
  for (int k = 0; k < n_params; k++) {
    nd->params[k] = params[k];
    ct__param_retain(params[k]);
  }
  *out = m;
  return CT_OK;
}

static ct_status ct__need_out(ct_morphism **out, const char *fn) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "%s: out is NULL", fn);
  *out = NULL;
  return CT_OK;
}

static ct_status ct__need_object(const ct_object *o, const char *fn, const char *what) {
  if (!o) return ct__fail(CT_ERR_INVALID_ARG, "%s: %s object is NULL", fn, what);
  ct_object check;
  if (ct_object_make(&check, o->dtype, o->role, o->rank, o->dims) != CT_OK ||
      !ct_object_equal(&check, o))
    return ct__fail(CT_ERR_SHAPE, "%s: %s object is not valid: %s", fn, what, ct_last_error());
  return CT_OK;
}

static ct_status ct__need_role(const ct_object *o, ct_role role, const char *fn,
                               const char *what) {
  CT__TRY(ct__need_object(o, fn, what));
  if (o->role != role) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "%s: %s must be %s, got %s", fn, what, ct_role_name(role),
                    ct_object_str(o, b, sizeof b));
  }
  if (o->rank < 1) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "%s: %s must have rank >= 1, got %s", fn, what,
                    ct_object_str(o, b, sizeof b));
  }
  return CT_OK;
}

static ct_status ct__need_param(const ct_param *p, int rank, const char *fn, const char *what) {
  if (!p) return ct__fail(CT_ERR_INVALID_ARG, "%s: %s parameter is NULL", fn, what);
  const ct_object *o = ct_param_object(p);
  if (o->rank != rank) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "%s: %s parameter '%s' must have rank %d, got %s", fn, what,
                    ct_param_name(p), rank, ct_object_str(o, b, sizeof b));
  }
  return CT_OK;
}

ct_status ct_identity(ct_morphism **out, const ct_object *objs, int n) {
  CT__TRY(ct__need_out(out, "ct_identity"));
  if (n < 0) return ct__fail(CT_ERR_INVALID_ARG, "ct_identity: object count %d is negative", n);
  if (n > 0) CT__NEED(objs, "ct_identity");
  for (int i = 0; i < n; i++) CT__TRY(ct__need_object(&objs[i], "ct_identity", "an"));
  ct_morphism *m = ct__graph_alloc(n, 0, n, n);
  if (!m) return ct__oom("ct_identity");
  for (int i = 0; i < n; i++) {
    m->values[i] = objs[i];
    m->dom[i] = m->cod[i] = i;
  }
  *out = m;
  return CT_OK;
}

ct_status ct_compose(ct_morphism **out, const ct_morphism *g, const ct_morphism *f) {
  CT__TRY(ct__need_out(out, "ct_compose"));
  if (!g || !f) return ct__fail(CT_ERR_INVALID_ARG, "ct_compose: %s is NULL", g ? "f" : "g");
  bool match = f->n_cod == g->n_dom;
  for (int i = 0; match && i < f->n_cod; i++)
    match = ct_object_equal(&f->values[f->cod[i]], &g->values[g->dom[i]]);
  if (!match) {
    char a[512], b[512], why[256] = "";
    if (f->n_cod != g->n_dom) {
      snprintf(why, sizeof why, "%d object(s) against %d", f->n_cod, g->n_dom);
    } else {
      for (int i = 0; i < f->n_cod; i++)
        if (!ct_object_equal(&f->values[f->cod[i]], &g->values[g->dom[i]])) {
          char x[96], y[96];
          snprintf(why, sizeof why, "object %d: %s is not %s", i,
                   ct_object_str(&f->values[f->cod[i]], x, sizeof x),
                   ct_object_str(&g->values[g->dom[i]], y, sizeof y));
          break;
        }
    }
    return ct__fail(CT_ERR_SHAPE, "ct_compose: cod f = %s does not match dom g = %s (%s)",
                    ct__list_str(f, f->cod, f->n_cod, a, sizeof a),
                    ct__list_str(g, g->dom, g->n_dom, b, sizeof b), why);
  }
  /* Values: all of f's, then g's non-boundary values; g's dom is glued to f's cod.
   * Both are canonical, so the result is canonical too. */
  int extra = g->n_values - g->n_dom;
  ct_morphism *m = ct__graph_alloc(f->n_values + extra, f->n_nodes + g->n_nodes, f->n_dom,
                                   g->n_cod);
  int *gmap = malloc(((size_t)g->n_values + 1) * sizeof *gmap);
  int *fmap = malloc(((size_t)f->n_values + 1) * sizeof *fmap);
  if (!m || !gmap || !fmap) {
    ct_morphism_free(m);
    free(gmap);
    free(fmap);
    return ct__oom("ct_compose");
  }
  for (int v = 0; v < f->n_values; v++) {
    fmap[v] = v;
    m->values[v] = f->values[v];
  }
  for (int v = 0; v < g->n_values; v++) gmap[v] = -1;
  for (int i = 0; i < g->n_dom; i++) gmap[g->dom[i]] = f->cod[i];
  for (int v = 0, next = f->n_values; v < g->n_values; v++)
    if (gmap[v] < 0) {
      gmap[v] = next;
      m->values[next++] = g->values[v];
    }
  for (int i = 0; i < f->n_nodes; i++) ct__node_copy(&m->nodes[i], &f->nodes[i], fmap);
  for (int i = 0; i < g->n_nodes; i++)
    ct__node_copy(&m->nodes[f->n_nodes + i], &g->nodes[i], gmap);
  memcpy(m->dom, f->dom, (size_t)f->n_dom * sizeof *m->dom);
  for (int i = 0; i < g->n_cod; i++) m->cod[i] = gmap[g->cod[i]];
  free(gmap);
  free(fmap);
  *out = m;
  return CT_OK;
}

ct_status ct_then(ct_morphism **out, const ct_morphism *f, const ct_morphism *g) {
  return ct_compose(out, g, f);
}

ct_status ct_tensor(ct_morphism **out, const ct_morphism *f, const ct_morphism *g) {
  CT__TRY(ct__need_out(out, "ct_tensor"));
  if (!g || !f) return ct__fail(CT_ERR_INVALID_ARG, "ct_tensor: %s is NULL", f ? "g" : "f");
  /* Canonical order: f.dom, g.dom, f's node outputs, g's node outputs. */
  ct_morphism *m = ct__graph_alloc(f->n_values + g->n_values, f->n_nodes + g->n_nodes,
                                   f->n_dom + g->n_dom, f->n_cod + g->n_cod);
  int *fmap = malloc(((size_t)f->n_values + 1) * sizeof *fmap);
  int *gmap = malloc(((size_t)g->n_values + 1) * sizeof *gmap);
  if (!m || !fmap || !gmap) {
    ct_morphism_free(m);
    free(fmap);
    free(gmap);
    return ct__oom("ct_tensor");
  }
  for (int v = 0; v < f->n_values; v++)
    fmap[v] = v < f->n_dom ? v : g->n_dom + v;
  for (int v = 0; v < g->n_values; v++)
    gmap[v] = v < g->n_dom ? f->n_dom + v : f->n_values + v;
  for (int v = 0; v < f->n_values; v++) m->values[fmap[v]] = f->values[v];
  for (int v = 0; v < g->n_values; v++) m->values[gmap[v]] = g->values[v];
  for (int i = 0; i < f->n_nodes; i++) ct__node_copy(&m->nodes[i], &f->nodes[i], fmap);
  for (int i = 0; i < g->n_nodes; i++)
    ct__node_copy(&m->nodes[f->n_nodes + i], &g->nodes[i], gmap);
  for (int i = 0; i < f->n_dom; i++) m->dom[i] = fmap[f->dom[i]];
  for (int i = 0; i < g->n_dom; i++) m->dom[f->n_dom + i] = gmap[g->dom[i]];
  for (int i = 0; i < f->n_cod; i++) m->cod[i] = fmap[f->cod[i]];
  for (int i = 0; i < g->n_cod; i++) m->cod[f->n_cod + i] = gmap[g->cod[i]];
  free(fmap);
  free(gmap);
  *out = m;
  return CT_OK;
}

ct_status ct_embedding(ct_morphism **out, const ct_object *tokens, ct_param *table) {
  static const char fn[] = "ct_embedding";
  CT__TRY(ct__need_out(out, fn));
  CT__TRY(ct__need_role(tokens, CT_ROLE_TOKENS, fn, "input"));
  CT__TRY(ct__need_param(table, 2, fn, "table"));
  if (tokens->rank >= CT_MAX_RANK)
    return ct__fail(CT_ERR_SHAPE, "%s: tokens of rank %d leave no room for the width axis", fn,
                    tokens->rank);
  int64_t dims[CT_MAX_RANK];
  memcpy(dims, tokens->dims, sizeof dims);
  dims[tokens->rank] = ct_param_object(table)->dims[1];
  ct_object y;
  CT__TRY(ct_object_make(&y, CT_F32, tokens->rank == 2 ? CT_ROLE_SEQ : CT_ROLE_HIDDEN,
                         tokens->rank + 1, dims));
  return ct__generator(out, CT_OP_EMBEDDING, tokens, 1, &y, 1, &table, 1);
}

/* The checks of ct_linear and its fused forms on x, W and b (b may be NULL), the
 * parameters called wname and bname in messages; *y is the output object. */
static ct_status ct__linear_check(const char *fn, const ct_object *x, ct_role out_role,
                                  ct_param *W, ct_param *b, const char *wname, const char *bname,
                                  ct_object *y) {
  CT__TRY(ct__need_object(x, fn, "input"));
  if (x->role != CT_ROLE_HIDDEN && x->role != CT_ROLE_SEQ) {
    char bx[96];
    return ct__fail(CT_ERR_SHAPE, "%s: input must be HIDDEN or SEQ, got %s", fn,
                    ct_object_str(x, bx, sizeof bx));
  }
  if (out_role != x->role && out_role != CT_ROLE_LOGITS)
    return ct__fail(CT_ERR_SHAPE, "%s: output role must be %s or LOGITS, not %s", fn,
                    ct_role_name(x->role), ct_role_name(out_role));
  CT__TRY(ct__need_param(W, 2, fn, wname));
  const ct_object *w = ct_param_object(W);
  char bx[96], bw[96];
  if (ct__cols(x) != w->dims[0])
    return ct__fail(CT_ERR_SHAPE, "%s: input %s has width %lld but weight '%s' is %s (rows must "
                    "equal the input width)", fn, ct_object_str(x, bx, sizeof bx),
                    (long long)ct__cols(x), ct_param_name(W), ct_object_str(w, bw, sizeof bw));
  if (b) {
    CT__TRY(ct__need_param(b, 1, fn, bname));
    if (ct_param_object(b)->dims[0] != w->dims[1])
      return ct__fail(CT_ERR_SHAPE, "%s: bias '%s' has %lld entries but weight '%s' has %lld "
                      "columns", fn, ct_param_name(b), (long long)ct_param_object(b)->dims[0],
                      ct_param_name(W), (long long)w->dims[1]);
  }
  int64_t dims[CT_MAX_RANK];
  memcpy(dims, x->dims, sizeof dims);
  dims[x->rank - 1] = w->dims[1];
  return ct_object_make(y, CT_F32, out_role, x->rank, dims);
}

/* ct_linear and its fused forms: a generator op from x with W and b. */
static ct_status ct__linear_like(ct_morphism **out, ct_op op, const char *fn, const ct_object *x,
                                 ct_role out_role, ct_param *W, ct_param *b) {
  CT__TRY(ct__need_out(out, fn));
  ct_object y;
  CT__TRY(ct__linear_check(fn, x, out_role, W, b, "weight", "bias", &y));
  ct_param *ps[2] = {W, b};
  return ct__generator(out, op, x, 1, &y, 1, ps, b ? 2 : 1);
}

ct_status ct_linear(ct_morphism **out, const ct_object *x, ct_role out_role, ct_param *W,
                    ct_param *b) {
  return ct__linear_like(out, CT_OP_LINEAR, "ct_linear", x, out_role, W, b);
}

ct_status ct_linear_gelu(ct_morphism **out, const ct_object *x, ct_role out_role, ct_param *W,
                         ct_param *b) {
  return ct__linear_like(out, CT_OP_LINEAR_GELU, "ct_linear_gelu", x, out_role, W, b);
}

/* Parameters in the order (Wq, bq, Wk, bk, Wv, bv), or (Wq, Wk, Wv) without biases. */
ct_status ct_qkv(ct_morphism **out, const ct_object *x, ct_role out_role, ct_param *wq,
                 ct_param *bq, ct_param *wk, ct_param *bk, ct_param *wv, ct_param *bv) {
  static const char fn[] = "ct_qkv";
  static const char *const wname[3] = {"weight wq", "weight wk", "weight wv"};
  static const char *const bname[3] = {"bias bq", "bias bk", "bias bv"};
  CT__TRY(ct__need_out(out, fn));
  ct_param *w[3] = {wq, wk, wv}, *b[3] = {bq, bk, bv};
  for (int j = 1; j < 3; j++)
    if (!b[j] != !b[0])
      return ct__fail(CT_ERR_INVALID_ARG, "%s: the biases must be all given or all NULL, but "
                      "%s is %s and %s is %s", fn, bname[0], b[0] ? "given" : "NULL",
                      bname[j], b[j] ? "given" : "NULL");
  ct_object y[3];
  for (int j = 0; j < 3; j++)
    CT__TRY(ct__linear_check(fn, x, out_role, w[j], b[j], wname[j], bname[j], &y[j]));
  ct_param *ps[6];
  int np = 0;
  for (int j = 0; j < 3; j++) {
    ps[np++] = w[j];
    if (b[0]) ps[np++] = b[j];
  }
  return ct__generator(out, CT_OP_QKV, x, 1, y, 3, ps, np);
}

ct_status ct_softmax(ct_morphism **out, const ct_object *logits) {
  CT__TRY(ct__need_out(out, "ct_softmax"));
  CT__TRY(ct__need_role(logits, CT_ROLE_LOGITS, "ct_softmax", "input"));
  ct_object y = *logits;
  y.role = CT_ROLE_DIST;
  return ct__generator(out, CT_OP_SOFTMAX, logits, 1, &y, 1, NULL, 0);
}

/* (rows over classes) (x) TOKENS[rows] -> LOSS; shared by both cross-entropies. */
static ct_status ct__xent(ct_morphism **out, ct_op op, ct_role role, const ct_object *scores,
                          const ct_object *targets, const char *fn) {
  CT__TRY(ct__need_out(out, fn));
  CT__TRY(ct__need_role(scores, role, fn, "first input"));
  CT__TRY(ct__need_object(targets, fn, "targets"));
  bool ok = targets->role == CT_ROLE_TOKENS && targets->rank == scores->rank - 1;
  for (int i = 0; ok && i < targets->rank; i++) ok = targets->dims[i] == scores->dims[i];
  if (!ok) {
    char bs[96], bt[96];
    return ct__fail(CT_ERR_SHAPE, "%s: targets must be TOKENS with the leading shape of %s, "
                    "got %s", fn, ct_object_str(scores, bs, sizeof bs),
                    ct_object_str(targets, bt, sizeof bt));
  }
  ct_object ins[2] = {*scores, *targets}, loss;
  CT__TRY(ct_object_loss(&loss));
  return ct__generator(out, op, ins, 2, &loss, 1, NULL, 0);
}

ct_status ct_cross_entropy(ct_morphism **out, const ct_object *dist, const ct_object *targets) {
  return ct__xent(out, CT_OP_CROSS_ENTROPY, CT_ROLE_DIST, dist, targets, "ct_cross_entropy");
}

ct_status ct_softmax_cross_entropy(ct_morphism **out, const ct_object *logits,
                                   const ct_object *targets) {
  return ct__xent(out, CT_OP_SOFTMAX_XENT, CT_ROLE_LOGITS, logits, targets,
                  "ct_softmax_cross_entropy");
}

ct_status ct_copy(ct_morphism **out, const ct_object *a) {
  CT__TRY(ct__need_out(out, "ct_copy"));
  CT__TRY(ct__need_object(a, "ct_copy", "input"));
  ct_object outs[2] = {*a, *a};
  return ct__generator(out, CT_OP_COPY, a, 1, outs, 2, NULL, 0);
}

ct_status ct_add(ct_morphism **out, const ct_object *a) {
  CT__TRY(ct__need_out(out, "ct_add"));
  CT__TRY(ct__need_object(a, "ct_add", "input"));
  if (a->dtype != CT_F32) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "ct_add: adds f32 objects, not %s", ct_object_str(a, b, sizeof b));
  }
  ct_object ins[2] = {*a, *a};
  return ct__generator(out, CT_OP_ADD, ins, 2, a, 1, NULL, 0);
}

ct_status ct_discard(ct_morphism **out, const ct_object *a) {
  CT__TRY(ct__need_out(out, "ct_discard"));
  CT__TRY(ct__need_object(a, "ct_discard", "input"));
  return ct__generator(out, CT_OP_DISCARD, a, 1, NULL, 0, NULL, 0);
}

/* HIDDEN or SEQ input of a shape-keeping generator. */
static ct_status ct__need_hidden(const ct_object *x, const char *fn) {
  CT__TRY(ct__need_object(x, fn, "input"));
  if (x->role != CT_ROLE_HIDDEN && x->role != CT_ROLE_SEQ) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "%s: input must be HIDDEN or SEQ, got %s", fn,
                    ct_object_str(x, b, sizeof b));
  }
  return CT_OK;
}

static ct_status ct__need_vector(const ct_param *p, int64_t n, const char *fn, const char *what,
                                 const ct_object *x) {
  CT__TRY(ct__need_param(p, 1, fn, what));
  if (ct_param_object(p)->dims[0] != n) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "%s: %s '%s' has %lld entries but input %s has width %lld", fn,
                    what, ct_param_name(p), (long long)ct_param_object(p)->dims[0],
                    ct_object_str(x, b, sizeof b), (long long)n);
  }
  return CT_OK;
}

ct_status ct_pos_embedding(ct_morphism **out, const ct_object *x, ct_param *P) {
  static const char fn[] = "ct_pos_embedding";
  CT__TRY(ct__need_out(out, fn));
  CT__TRY(ct__need_role(x, CT_ROLE_SEQ, fn, "input"));
  CT__TRY(ct__need_param(P, 2, fn, "position table"));
  const ct_object *po = ct_param_object(P);
  char bx[96], bp[96];
  if (po->dims[1] != x->dims[2] || po->dims[0] < x->dims[1])
    return ct__fail(CT_ERR_SHAPE, "%s: position table '%s' is %s but input %s needs at least %lld "
                    "rows of width %lld", fn, ct_param_name(P), ct_object_str(po, bp, sizeof bp),
                    ct_object_str(x, bx, sizeof bx), (long long)x->dims[1], (long long)x->dims[2]);
  return ct__generator(out, CT_OP_POS_EMBEDDING, x, 1, x, 1, &P, 1);
}

ct_status ct_layernorm(ct_morphism **out, const ct_object *x, ct_param *gain, ct_param *bias) {
  static const char fn[] = "ct_layernorm";
  CT__TRY(ct__need_out(out, fn));
  CT__TRY(ct__need_hidden(x, fn));
  CT__TRY(ct__need_vector(gain, ct__cols(x), fn, "gain", x));
  CT__TRY(ct__need_vector(bias, ct__cols(x), fn, "bias", x));
  ct_param *ps[2] = {gain, bias};
  return ct__generator(out, CT_OP_LAYERNORM, x, 1, x, 1, ps, 2);
}

ct_status ct_add_layernorm(ct_morphism **out, const ct_object *x, ct_param *gain,
                           ct_param *bias) {
  static const char fn[] = "ct_add_layernorm";
  CT__TRY(ct__need_out(out, fn));
  CT__TRY(ct__need_hidden(x, fn));
  CT__TRY(ct__need_vector(gain, ct__cols(x), fn, "gain", x));
  CT__TRY(ct__need_vector(bias, ct__cols(x), fn, "bias", x));
  ct_object xs[2] = {*x, *x};
  ct_param *ps[2] = {gain, bias};
  return ct__generator(out, CT_OP_ADD_LAYERNORM, xs, 2, xs, 2, ps, 2);
}

ct_status ct_gelu(ct_morphism **out, const ct_object *x) {
  CT__TRY(ct__need_out(out, "ct_gelu"));
  CT__TRY(ct__need_hidden(x, "ct_gelu"));
  return ct__generator(out, CT_OP_GELU, x, 1, x, 1, NULL, 0);
}

ct_status ct_head_split(ct_morphism **out, const ct_object *x, int64_t heads) {
  static const char fn[] = "ct_head_split";
  CT__TRY(ct__need_out(out, fn));
  CT__TRY(ct__need_role(x, CT_ROLE_SEQ, fn, "input"));
  if (heads < 1 || x->dims[2] % heads != 0) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "%s: %lld heads do not divide the %lld channels of %s", fn,
                    (long long)heads, (long long)x->dims[2], ct_object_str(x, b, sizeof b));
  }
  int64_t d[4] = {x->dims[0], heads, x->dims[1], x->dims[2] / heads};
  ct_object y;
  CT__TRY(ct_object_make(&y, CT_F32, CT_ROLE_HEADS, 4, d));
  return ct__generator(out, CT_OP_HEAD_SPLIT, x, 1, &y, 1, NULL, 0);
}

ct_status ct_head_merge(ct_morphism **out, const ct_object *x) {
  static const char fn[] = "ct_head_merge";
  CT__TRY(ct__need_out(out, fn));
  CT__TRY(ct__need_role(x, CT_ROLE_HEADS, fn, "input"));
  ct_object y;
  CT__TRY(ct_object_seq(&y, x->dims[0], x->dims[2], x->dims[1] * x->dims[3]));
  return ct__generator(out, CT_OP_HEAD_MERGE, x, 1, &y, 1, NULL, 0);
}

/* One head (SEQ [B,T,D]) or several (HEADS [B,H,T,D]). */
static ct_status ct__need_heads(const ct_object *x, const char *fn, const char *what) {
  CT__TRY(ct__need_object(x, fn, what));
  if (x->role != CT_ROLE_HEADS && x->role != CT_ROLE_SEQ) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "%s: %s must be HEADS or SEQ, got %s", fn, what,
                    ct_object_str(x, b, sizeof b));
  }
  return CT_OK;
}

/* The square [.., T, T] object of role over the leading axes and time of x. */
static ct_status ct__square_of(ct_object *out, ct_role role, const ct_object *x) {
  int64_t d[CT_MAX_RANK];
  memcpy(d, x->dims, sizeof d);
  d[x->rank - 1] = d[x->rank - 2];
  return ct_object_make(out, CT_F32, role, x->rank, d);
}

ct_status ct_attn_scores(ct_morphism **out, const ct_object *q, const ct_object *k) {
  static const char fn[] = "ct_attn_scores";
  CT__TRY(ct__need_out(out, fn));
  CT__TRY(ct__need_heads(q, fn, "query"));
  CT__TRY(ct__need_heads(k, fn, "key"));
  if (!ct_object_equal(q, k)) {
    char bq[96], bk[96];
    return ct__fail(CT_ERR_SHAPE, "%s: query %s and key %s must be the same object", fn,
                    ct_object_str(q, bq, sizeof bq), ct_object_str(k, bk, sizeof bk));
  }
  ct_object ins[2] = {*q, *k}, y;
  CT__TRY(ct__square_of(&y, CT_ROLE_SCORES, q));
  return ct__generator(out, CT_OP_ATTN_SCORES, ins, 2, &y, 1, NULL, 0);
}

ct_status ct_causal_softmax(ct_morphism **out, const ct_object *scores) {
  CT__TRY(ct__need_out(out, "ct_causal_softmax"));
  CT__TRY(ct__need_role(scores, CT_ROLE_SCORES, "ct_causal_softmax", "input"));
  ct_object y = *scores;
  y.role = CT_ROLE_ATTN;
  return ct__generator(out, CT_OP_CAUSAL_SOFTMAX, scores, 1, &y, 1, NULL, 0);
}

ct_status ct_attn_apply(ct_morphism **out, const ct_object *a, const ct_object *v) {
  static const char fn[] = "ct_attn_apply";
  CT__TRY(ct__need_out(out, fn));
  CT__TRY(ct__need_role(a, CT_ROLE_ATTN, fn, "weights"));
  CT__TRY(ct__need_heads(v, fn, "values"));
  ct_object want;
  CT__TRY(ct__square_of(&want, CT_ROLE_ATTN, v));
  if (!ct_object_equal(a, &want)) {
    char ba[96], bv[96], bw[96];
    return ct__fail(CT_ERR_SHAPE, "%s: weights %s do not fit values %s (weights must be %s)", fn,
                    ct_object_str(a, ba, sizeof ba), ct_object_str(v, bv, sizeof bv),
                    ct_object_str(&want, bw, sizeof bw));
  }
  ct_object ins[2] = {*a, *v};
  return ct__generator(out, CT_OP_ATTN_APPLY, ins, 2, v, 1, NULL, 0);
}

ct_status ct_kv_attention(ct_morphism **out, const ct_object *x, const ct_object *positions,
                          ct_param *k_cache, ct_param *v_cache) {
  static const char fn[] = "ct_kv_attention";
  CT__TRY(ct__need_out(out, fn));
  CT__TRY(ct__need_role(x, CT_ROLE_SEQ, fn, "input"));
  CT__TRY(ct__need_role(positions, CT_ROLE_TOKENS, fn, "positions"));
  char b1[96], b2[96];
  if (positions->rank != 2 || positions->dims[0] != x->dims[0] ||
      positions->dims[1] != x->dims[1])
    return ct__fail(CT_ERR_SHAPE, "%s: positions %s must be TOKENS i32[%lld,%lld], one per row "
                    "of %s", fn, ct_object_str(positions, b1, sizeof b1), (long long)x->dims[0],
                    (long long)x->dims[1], ct_object_str(x, b2, sizeof b2));
  ct_param *caches[2] = {k_cache, v_cache};
  static const char *const what[2] = {"key cache", "value cache"};
  for (int j = 0; j < 2; j++) {
    if (!caches[j]) return ct__fail(CT_ERR_INVALID_ARG, "%s: %s is NULL", fn, what[j]);
    const ct_object *c = ct_param_object(caches[j]);
    if (c->role != CT_ROLE_CACHE || c->dims[0] != x->dims[0] ||
        c->dims[1] * c->dims[3] != x->dims[2])
      return ct__fail(CT_ERR_SHAPE, "%s: %s '%s' %s must be CACHE f32[%lld, H, L, D] with H*D "
                      "= %lld channels of %s", fn, what[j], ct_param_name(caches[j]),
                      ct_object_str(c, b1, sizeof b1), (long long)x->dims[0],
                      (long long)x->dims[2], ct_object_str(x, b2, sizeof b2));
  }
  if (!ct_object_equal(ct_param_object(k_cache), ct_param_object(v_cache)))
    return ct__fail(CT_ERR_SHAPE, "%s: key cache %s and value cache %s differ in shape", fn,
                    ct_object_str(ct_param_object(k_cache), b1, sizeof b1),
                    ct_object_str(ct_param_object(v_cache), b2, sizeof b2));
  ct_object ins[4] = {*x, *x, *x, *positions};
  return ct__generator(out, CT_OP_KV_ATTENTION, ins, 4, x, 1, caches, 2);
}

ct_status ct_causal_attention(ct_morphism **out, const ct_object *x, int64_t heads) {
  static const char fn[] = "ct_causal_attention";
  CT__TRY(ct__need_out(out, fn));
  CT__TRY(ct__need_role(x, CT_ROLE_SEQ, fn, "input"));
  if (heads < 1 || x->dims[2] % heads != 0) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "%s: %lld heads do not divide the %lld channels of %s", fn,
                    (long long)heads, (long long)x->dims[2], ct_object_str(x, b, sizeof b));
  }
  ct_object ins[3] = {*x, *x, *x};
  CT__TRY(ct__generator(out, CT_OP_CAUSAL_ATTENTION, ins, 3, x, 1, NULL, 0));
  (*out)->nodes[0].attr = heads;
  return CT_OK;
}

int ct_morphism_dom_count(const ct_morphism *m) { return m ? m->n_dom : 0; }
int ct_morphism_cod_count(const ct_morphism *m) { return m ? m->n_cod : 0; }
int ct_morphism_node_count(const ct_morphism *m) { return m ? m->n_nodes : 0; }

const ct_object *ct_morphism_dom(const ct_morphism *m, int i) {
  return (m && i >= 0 && i < m->n_dom) ? &m->values[m->dom[i]] : NULL;
}

const ct_object *ct_morphism_cod(const ct_morphism *m, int i) {
  return (m && i >= 0 && i < m->n_cod) ? &m->values[m->cod[i]] : NULL;
}

bool ct_morphism_equal(const ct_morphism *a, const ct_morphism *b) {
  if (!a || !b) return false;
  if (a->n_values != b->n_values || a->n_nodes != b->n_nodes || a->n_dom != b->n_dom ||
      a->n_cod != b->n_cod)
    return false;
  for (int v = 0; v < a->n_values; v++)
    if (!ct_object_equal(&a->values[v], &b->values[v])) return false;
  if (memcmp(a->dom, b->dom, (size_t)a->n_dom * sizeof *a->dom) ||
      memcmp(a->cod, b->cod, (size_t)a->n_cod * sizeof *a->cod))
    return false;
  for (int i = 0; i < a->n_nodes; i++) {
    const ct__node *x = &a->nodes[i], *y = &b->nodes[i];
    if (x->op != y->op || x->attr != y->attr || x->n_in != y->n_in || x->n_out != y->n_out ||
        x->n_params != y->n_params)
      return false;
    for (int k = 0; k < x->n_in; k++)
      if (x->in[k] != y->in[k]) return false;
    for (int k = 0; k < x->n_out; k++)
      if (x->out[k] != y->out[k]) return false;
    for (int k = 0; k < x->n_params; k++)
      if (x->params[k] != y->params[k]) return false;
  }
  return true;
}

ct_status ct_morphism_describe(const ct_morphism *m, char *buf, size_t n) {
  if (!m || !buf || n == 0)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_morphism_describe: NULL morphism or empty buffer");
  char a[512], b[512];
  size_t k = (size_t)snprintf(buf, n, "%s -> %s\n", ct__list_str(m, m->dom, m->n_dom, a, sizeof a),
                              ct__list_str(m, m->cod, m->n_cod, b, sizeof b));
  for (int i = 0; i < m->n_nodes && k < n; i++) {
    const ct__node *nd = &m->nodes[i];
    k += (size_t)snprintf(buf + k, n - k, "  %s%s -> ", ct_op_name(nd->op),
                          ct__list_str(m, nd->in, nd->n_in, a, sizeof a));
    if (k < n)
      k += (size_t)snprintf(buf + k, n - k, "%s", ct__list_str(m, nd->out, nd->n_out, a, sizeof a));
    for (int p = 0; p < nd->n_params && k < n; p++)
      k += (size_t)snprintf(buf + k, n - k, "%s%s", p ? ", " : " with ",
                            ct_param_name(nd->params[p]));
    if (k < n) k += (size_t)snprintf(buf + k, n - k, "\n");
  }
  return CT_OK;
}
