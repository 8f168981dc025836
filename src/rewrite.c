/* SPDX-License-Identifier: MIT */
/* Rewrite rules and the pass that applies them (see rewrite.h). */
#include "rewrite.h"
#include "backend_impl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the rules --------------------------------------------------------------- */

/* The node reading value v, or -1 (the codomain or nothing). */
static int ct__user(const ct__users *u, int v) { return u->user[v]; }

/* Laws of the comonoid (copy, discard): copying a value and discarding one of
 * the copies is the identity. Pattern: copy at node i, with copy output k
 * read by a discard. */
static bool ct__match_counit(const ct_morphism *m, const ct__users *u, int i, int k,
                             ct__match *mt) {
  const ct__node *c = &m->nodes[i];
  if (c->op != CT_OP_COPY || c->n_out != 2) return false;
  int d = ct__user(u, c->out[k]);
  if (d < 0 || m->nodes[d].op != CT_OP_DISCARD) return false;
  memset(mt, 0, sizeof *mt);
  mt->n_nodes = 2;
  mt->nodes[0] = i;
  mt->nodes[1] = d;
  mt->n_in = 1;
  mt->in[0] = c->in[0];
  mt->n_out = 1;
  mt->out[0] = c->out[1 - k];
  mt->args.obj[0] = m->values[c->in[0]];
  return true;
}
static bool ct__match_counit_right(const ct_morphism *m, const ct__users *u, int i,
                                   ct__match *mt) {
  return ct__match_counit(m, u, i, 1, mt);
}
static bool ct__match_counit_left(const ct_morphism *m, const ct__users *u, int i,
                                  ct__match *mt) {
  return ct__match_counit(m, u, i, 0, mt);
}

/* copy ; (id (x) discard) or copy ; (discard (x) id). */
static ct_status ct__counit_lhs(ct_morphism **out, const ct__rule_args *a, bool right) {
  ct_morphism *c = NULL, *d = NULL, *id = NULL, *par = NULL;
  ct_status s = ct_copy(&c, &a->obj[0]);
  if (s == CT_OK) s = ct_discard(&d, &a->obj[0]);
  if (s == CT_OK) s = ct_identity(&id, &a->obj[0], 1);
  if (s == CT_OK) s = right ? ct_tensor(&par, id, d) : ct_tensor(&par, d, id);
  if (s == CT_OK) s = ct_then(out, c, par);
  ct_morphism_free(c);
  ct_morphism_free(d);
  ct_morphism_free(id);
  ct_morphism_free(par);
  return s;
}
static ct_status ct__counit_right_lhs(ct_morphism **out, const ct__rule_args *a) {
  return ct__counit_lhs(out, a, true);
}
static ct_status ct__counit_left_lhs(ct_morphism **out, const ct__rule_args *a) {
  return ct__counit_lhs(out, a, false);
}
static ct_status ct__identity_rhs(ct_morphism **out, const ct__rule_args *a) {
  return ct_identity(out, &a->obj[0], 1);
}

/* HIDDEN matrices: odd, not multiples of 32, and a single entry. */
static bool ct__example_matrix(int k, ct__rule_args *a) {
  static const int64_t shapes[][2] = {{3, 5}, {37, 61}, {1, 1}};
  if (k < 0 || k >= (int)(sizeof shapes / sizeof shapes[0])) return false;
  memset(a, 0, sizeof *a);
  return ct_object_matrix(&a->obj[0], CT_ROLE_HIDDEN, shapes[k][0], shapes[k][1]) == CT_OK;
}

/* Fresh parameter named name of rank 1 or 2, normal(0, 0.5) from seed; NULL when out of memory. */
static ct_param *ct__example_param(const char *name, int64_t rows, int64_t cols, uint64_t seed) {
  int64_t dims[2] = {rows, cols};
  ct_param *p = NULL;
  if (ct_param_new(&p, name, cols ? 2 : 1, dims) != CT_OK) return NULL;
  if (ct_param_init_normal(p, 0.5f, seed) != CT_OK) {
    ct_param_free(p);
    return NULL;
  }
  return p;
}

/* ---- bias and GELU after the product: linear ; gelu = linear_gelu ---- */

static bool ct__match_linear_gelu(const ct_morphism *m, const ct__users *u, int i,
                                  ct__match *mt) {
  const ct__node *l = &m->nodes[i];
  if (l->op != CT_OP_LINEAR) return false;
  int g = ct__user(u, l->out[0]);
  if (g < 0 || m->nodes[g].op != CT_OP_GELU) return false;
  memset(mt, 0, sizeof *mt);
  mt->n_nodes = 2;
  mt->nodes[0] = i;
  mt->nodes[1] = g;
  mt->n_in = 1;
  mt->in[0] = l->in[0];
  mt->n_out = 1;
  mt->out[0] = m->nodes[g].out[0];
  mt->args.obj[0] = m->values[l->in[0]];
  mt->args.role = m->values[l->out[0]].role;
  mt->args.param[0] = l->params[0];
  mt->args.param[1] = l->n_params > 1 ? l->params[1] : NULL;
  return true;
}

static ct_status ct__linear_gelu_lhs(ct_morphism **out, const ct__rule_args *a) {
  ct_morphism *l = NULL, *g = NULL;
  ct_status s = ct_linear(&l, &a->obj[0], a->role, a->param[0], a->param[1]);
  if (s == CT_OK) s = ct_gelu(&g, ct_morphism_cod(l, 0));
  if (s == CT_OK) s = ct_then(out, l, g);
  ct_morphism_free(l);
  ct_morphism_free(g);
  return s;
}

static ct_status ct__linear_gelu_rhs(ct_morphism **out, const ct__rule_args *a) {
  return ct_linear_gelu(out, &a->obj[0], a->role, a->param[0], a->param[1]);
}

/* SEQ [2,3,5] -> width 7 with a bias, HIDDEN [37,61] -> 29 without, SEQ [1,1,1] -> 1. */
static bool ct__example_linear_gelu(int k, ct__rule_args *a) {
  static const int64_t shapes[][4] = {{2, 3, 5, 7}, {0, 37, 61, 29}, {1, 1, 1, 1}};
  if (k < 0 || k >= (int)(sizeof shapes / sizeof shapes[0])) return false;
  memset(a, 0, sizeof *a);
  const int64_t *d = shapes[k];
  ct_status s = d[0] ? ct_object_seq(&a->obj[0], d[0], d[1], d[2])
                     : ct_object_matrix(&a->obj[0], CT_ROLE_HIDDEN, d[1], d[2]);
  a->role = d[0] ? CT_ROLE_SEQ : CT_ROLE_HIDDEN;
  a->param[0] = ct__example_param("W", d[2], d[3], 11 + (uint64_t)k);
  if (k != 1) a->param[1] = ct__example_param("b", d[3], 0, 21 + (uint64_t)k);
  return s == CT_OK && a->param[0] && (k == 1 || a->param[1]);
}

/* ---- residual add then layer norm ----
 * add ; copy ; (id (x) layernorm) = add_layernorm   (the stream goes on as s)
 * add ; layernorm = add_layernorm ; (discard (x) id) (the last block's add) */

/* The add at node i and the layernorm after it: directly (copy -1) or on the
 * second output of a copy. */
static bool ct__match_add_ln(const ct_morphism *m, const ct__users *u, int i, bool via_copy,
                             ct__match *mt) {
  const ct__node *a = &m->nodes[i];
  if (a->op != CT_OP_ADD) return false;
  int c = -1, l = ct__user(u, a->out[0]);
  if (via_copy) {
    c = l;
    if (c < 0 || m->nodes[c].op != CT_OP_COPY) return false;
    l = ct__user(u, m->nodes[c].out[1]);
  }
  if (l < 0 || m->nodes[l].op != CT_OP_LAYERNORM) return false;
  memset(mt, 0, sizeof *mt);
  mt->nodes[mt->n_nodes++] = i;
  if (via_copy) mt->nodes[mt->n_nodes++] = c;
  mt->nodes[mt->n_nodes++] = l;
  mt->n_in = 2;
  mt->in[0] = a->in[0];
  mt->in[1] = a->in[1];
  if (via_copy) mt->out[mt->n_out++] = m->nodes[c].out[0];
  mt->out[mt->n_out++] = m->nodes[l].out[0];
  mt->args.obj[0] = m->values[a->in[0]];
  mt->args.param[0] = m->nodes[l].params[0];
  mt->args.param[1] = m->nodes[l].params[1];
  return true;
}
static bool ct__match_add_layernorm(const ct_morphism *m, const ct__users *u, int i,
                                    ct__match *mt) {
  return ct__match_add_ln(m, u, i, true, mt);
}
static bool ct__match_add_layernorm_end(const ct_morphism *m, const ct__users *u, int i,
                                        ct__match *mt) {
  return ct__match_add_ln(m, u, i, false, mt);
}

/* add, then (copy ; (id (x) layernorm)) when via_copy, else layernorm. */
static ct_status ct__add_ln_lhs(ct_morphism **out, const ct__rule_args *a, bool via_copy) {
  const ct_object *x = &a->obj[0];
  ct_morphism *add = NULL, *c = NULL, *id = NULL, *ln = NULL, *par = NULL, *tail = NULL;
  ct_status s = ct_add(&add, x);
  if (s == CT_OK) s = ct_layernorm(&ln, x, a->param[0], a->param[1]);
  if (s == CT_OK && via_copy) s = ct_copy(&c, x);
  if (s == CT_OK && via_copy) s = ct_identity(&id, x, 1);
  if (s == CT_OK && via_copy) s = ct_tensor(&par, id, ln);
  if (s == CT_OK && via_copy) s = ct_then(&tail, c, par);
  if (s == CT_OK) s = ct_then(out, add, via_copy ? tail : ln);
  ct_morphism *tmp[] = {add, c, id, ln, par, tail};
  for (int k = 0; k < 6; k++) ct_morphism_free(tmp[k]);
  return s;
}
static ct_status ct__add_layernorm_lhs(ct_morphism **out, const ct__rule_args *a) {
  return ct__add_ln_lhs(out, a, true);
}
static ct_status ct__add_layernorm_end_lhs(ct_morphism **out, const ct__rule_args *a) {
  return ct__add_ln_lhs(out, a, false);
}
static ct_status ct__add_layernorm_rhs(ct_morphism **out, const ct__rule_args *a) {
  return ct_add_layernorm(out, &a->obj[0], a->param[0], a->param[1]);
}
static ct_status ct__add_layernorm_end_rhs(ct_morphism **out, const ct__rule_args *a) {
  const ct_object *x = &a->obj[0];
  ct_morphism *f = NULL, *d = NULL, *id = NULL, *par = NULL;
  ct_status s = ct_add_layernorm(&f, x, a->param[0], a->param[1]);
  if (s == CT_OK) s = ct_discard(&d, x);
  if (s == CT_OK) s = ct_identity(&id, x, 1);
  if (s == CT_OK) s = ct_tensor(&par, d, id);
  if (s == CT_OK) s = ct_then(out, f, par);
  ct_morphism *tmp[] = {f, d, id, par};
  for (int k = 0; k < 4; k++) ct_morphism_free(tmp[k]);
  return s;
}

/* SEQ [2,5,6], HIDDEN [37,61], SEQ [1,1,1]; gain and bias of the width. */
static bool ct__example_add_layernorm(int k, ct__rule_args *a) {
  static const int64_t shapes[][3] = {{2, 5, 6}, {0, 37, 61}, {1, 1, 1}};
  if (k < 0 || k >= (int)(sizeof shapes / sizeof shapes[0])) return false;
  memset(a, 0, sizeof *a);
  const int64_t *d = shapes[k];
  ct_status s = d[0] ? ct_object_seq(&a->obj[0], d[0], d[1], d[2])
                     : ct_object_matrix(&a->obj[0], CT_ROLE_HIDDEN, d[1], d[2]);
  a->param[0] = ct__example_param("gain", d[2], 0, 31 + (uint64_t)k);
  a->param[1] = ct__example_param("bias", d[2], 0, 41 + (uint64_t)k);
  return s == CT_OK && a->param[0] && a->param[1];
}

/* ---- three linears of one input: copy ; (copy (x) id) ; (linear (x) (linear (x) linear))
 * = qkv ---- */

/* The linear reading value v, or -1. */
static int ct__linear_of(const ct_morphism *m, const ct__users *u, int v) {
  int l = ct__user(u, v);
  return l >= 0 && m->nodes[l].op == CT_OP_LINEAR ? l : -1;
}

/* Copy c1 at node i; its out[0] read by copy c2, whose outputs feed linears q and
 * k; its out[1] feeds linear v. The three linears have the same bias presence
 * and output role (they read the same object). */
static bool ct__match_qkv(const ct_morphism *m, const ct__users *u, int i, ct__match *mt) {
  const ct__node *c1 = &m->nodes[i];
  if (c1->op != CT_OP_COPY || c1->n_out != 2) return false;
  int c2 = ct__user(u, c1->out[0]);
  if (c2 < 0 || m->nodes[c2].op != CT_OP_COPY || m->nodes[c2].n_out != 2) return false;
  int l[3] = {ct__linear_of(m, u, m->nodes[c2].out[0]), ct__linear_of(m, u, m->nodes[c2].out[1]),
              ct__linear_of(m, u, c1->out[1])};
  for (int j = 0; j < 3; j++)
    if (l[j] < 0 || m->nodes[l[j]].n_params != m->nodes[l[0]].n_params ||
        m->values[m->nodes[l[j]].out[0]].role != m->values[m->nodes[l[0]].out[0]].role)
      return false;
  memset(mt, 0, sizeof *mt);
  mt->n_nodes = 5;
  mt->nodes[0] = i;
  mt->nodes[1] = c2;
  mt->n_in = 1;
  mt->in[0] = c1->in[0];
  mt->n_out = 3;
  mt->args.obj[0] = m->values[c1->in[0]];
  mt->args.role = m->values[m->nodes[l[0]].out[0]].role;
  for (int j = 0; j < 3; j++) {
    const ct__node *n = &m->nodes[l[j]];
    mt->nodes[2 + j] = l[j];
    mt->out[j] = n->out[0];
    mt->args.param[2 * j] = n->params[0];
    mt->args.param[2 * j + 1] = n->n_params > 1 ? n->params[1] : NULL;
  }
  return true;
}

static ct_status ct__qkv_lhs(ct_morphism **out, const ct__rule_args *a) {
  const ct_object *x = &a->obj[0];
  ct_morphism *c1 = NULL, *c2 = NULL, *id = NULL, *l[3] = {NULL, NULL, NULL}, *cc = NULL,
              *tri = NULL, *kv = NULL, *qkv = NULL;
  ct_status s = ct_copy(&c1, x);
  if (s == CT_OK) s = ct_copy(&c2, x);
  if (s == CT_OK) s = ct_identity(&id, x, 1);
  if (s == CT_OK) s = ct_tensor(&cc, c2, id);
  if (s == CT_OK) s = ct_then(&tri, c1, cc);
  for (int j = 0; j < 3 && s == CT_OK; j++)
    s = ct_linear(&l[j], x, a->role, a->param[2 * j], a->param[2 * j + 1]);
  if (s == CT_OK) s = ct_tensor(&kv, l[1], l[2]);
  if (s == CT_OK) s = ct_tensor(&qkv, l[0], kv);
  if (s == CT_OK) s = ct_then(out, tri, qkv);
  ct_morphism *tmp[] = {c1, c2, id, l[0], l[1], l[2], cc, tri, kv, qkv};
  for (int k = 0; k < 10; k++) ct_morphism_free(tmp[k]);
  return s;
}

static ct_status ct__qkv_rhs(ct_morphism **out, const ct__rule_args *a) {
  return ct_qkv(out, &a->obj[0], a->role, a->param[0], a->param[1], a->param[2], a->param[3],
                a->param[4], a->param[5]);
}

/* SEQ [2,3,5] -> width 7 with biases, HIDDEN [37,61] -> 29 without, SEQ [1,1,1] -> 1
 * with biases. */
static bool ct__example_qkv(int k, ct__rule_args *a) {
  static const int64_t shapes[][4] = {{2, 3, 5, 7}, {0, 37, 61, 29}, {1, 1, 1, 1}};
  if (k < 0 || k >= (int)(sizeof shapes / sizeof shapes[0])) return false;
  memset(a, 0, sizeof *a);
  const int64_t *d = shapes[k];
  ct_status s = d[0] ? ct_object_seq(&a->obj[0], d[0], d[1], d[2])
                     : ct_object_matrix(&a->obj[0], CT_ROLE_HIDDEN, d[1], d[2]);
  a->role = d[0] ? CT_ROLE_SEQ : CT_ROLE_HIDDEN;
  static const char *const names[6] = {"Wq", "bq", "Wk", "bk", "Wv", "bv"};
  bool ok = s == CT_OK;
  for (int j = 0; j < 3; j++) {
    a->param[2 * j] = ct__example_param(names[2 * j], d[2], d[3], 51 + (uint64_t)(3 * k + j));
    ok = ok && a->param[2 * j];
    if (k == 1) continue;
    a->param[2 * j + 1] = ct__example_param(names[2 * j + 1], d[3], 0, 61 + (uint64_t)(3 * k + j));
    ok = ok && a->param[2 * j + 1];
  }
  return ok;
}

/* ---- the attention core: head_split^3 ; (attn_scores (x) id) ; (causal_softmax (x) id) ;
 * attn_apply ; head_merge = causal_attention, and its one-head form without split and
 * merge ---- */

/* The node of op writing value v, or -1. */
static int ct__producer_of(const ct_morphism *m, const ct__users *u, int v, ct_op op) {
  int p = u->producer[v];
  return p >= 0 && m->nodes[p].op == op ? p : -1;
}

/* attn_scores at node i, its scores read by causal_softmax, whose weights are attn_apply's
 * first input. With split, q, k and v come from three head_splits of one object and the
 * result goes to a head_merge; without, q, k and v are SEQ values of one object. */
static bool ct__match_attention(const ct_morphism *m, const ct__users *u, int i, bool split,
                                ct__match *mt) {
  const ct__node *sc = &m->nodes[i];
  if (sc->op != CT_OP_ATTN_SCORES) return false;
  int c = ct__user(u, sc->out[0]);
  if (c < 0 || m->nodes[c].op != CT_OP_CAUSAL_SOFTMAX) return false;
  int a = ct__user(u, m->nodes[c].out[0]);
  if (a < 0 || m->nodes[a].op != CT_OP_ATTN_APPLY || m->nodes[a].in[0] != m->nodes[c].out[0])
    return false;
  int qkv[3] = {sc->in[0], sc->in[1], m->nodes[a].in[1]};
  memset(mt, 0, sizeof *mt);
  mt->nodes[0] = i;
  mt->nodes[1] = c;
  mt->nodes[2] = a;
  mt->n_nodes = 3;
  mt->n_in = 3;
  mt->n_out = 1;
  mt->out[0] = m->nodes[a].out[0];
  if (split) {
    if (m->values[qkv[0]].role != CT_ROLE_HEADS) return false;
    int mg = ct__user(u, m->nodes[a].out[0]);
    if (mg < 0 || m->nodes[mg].op != CT_OP_HEAD_MERGE) return false;
    for (int j = 0; j < 3; j++) {
      int sp = ct__producer_of(m, u, qkv[j], CT_OP_HEAD_SPLIT);
      if (sp < 0) return false;
      mt->nodes[mt->n_nodes++] = sp;
      mt->in[j] = m->nodes[sp].in[0];
    }
    mt->nodes[mt->n_nodes++] = mg;
    mt->out[0] = m->nodes[mg].out[0];
    mt->args.heads = m->values[qkv[0]].dims[1];
  } else {
    if (m->values[qkv[0]].role != CT_ROLE_SEQ) return false;
    for (int j = 0; j < 3; j++) mt->in[j] = qkv[j];
    mt->args.heads = 1;
  }
  mt->args.obj[0] = m->values[mt->in[0]];
  for (int j = 1; j < 3; j++) /* values as wide as queries and keys */
    if (!ct_object_equal(&m->values[mt->in[j]], &mt->args.obj[0])) return false;
  return true;
}
static bool ct__match_causal_attention(const ct_morphism *m, const ct__users *u, int i,
                                       ct__match *mt) {
  return ct__match_attention(m, u, i, true, mt);
}
static bool ct__match_causal_attention_1(const ct_morphism *m, const ct__users *u, int i,
                                         ct__match *mt) {
  return ct__match_attention(m, u, i, false, mt);
}

/* (q, k, v) -> the unfused core, with split and merge when split. */
static ct_status ct__attention_lhs(ct_morphism **out, const ct__rule_args *a, bool split) {
  const ct_object *x = &a->obj[0];
  ct_morphism *sp[3] = {NULL, NULL, NULL}, *sc = NULL, *sm = NULL, *ap = NULL, *mg = NULL,
              *id[2] = {NULL, NULL}, *kv = NULL, *qkv = NULL, *f1 = NULL, *f2 = NULL,
              *core = NULL, *t = NULL;
  ct_status s = CT_OK;
  ct_object hv = *x;
  for (int j = 0; j < 3 && split && s == CT_OK; j++) s = ct_head_split(&sp[j], x, a->heads);
  if (s == CT_OK && split) hv = *ct_morphism_cod(sp[0], 0);
  if (s == CT_OK) s = ct_attn_scores(&sc, &hv, &hv);
  if (s == CT_OK) s = ct_causal_softmax(&sm, ct_morphism_cod(sc, 0));
  if (s == CT_OK) s = ct_attn_apply(&ap, ct_morphism_cod(sm, 0), &hv);
  if (s == CT_OK) s = ct_identity(&id[0], &hv, 1);
  if (s == CT_OK) s = ct_identity(&id[1], &hv, 1);
  if (s == CT_OK) s = ct_tensor(&f1, sc, id[0]);
  if (s == CT_OK) s = ct_tensor(&f2, sm, id[1]);
  if (s == CT_OK) s = ct_then(&t, f1, f2);
  if (s == CT_OK) s = ct_then(&core, t, ap);
  if (s == CT_OK && !split) {
    *out = core;
    core = NULL;
  }
  if (s == CT_OK && split) s = ct_tensor(&kv, sp[1], sp[2]);
  if (s == CT_OK && split) s = ct_tensor(&qkv, sp[0], kv);
  if (s == CT_OK && split) s = ct_head_merge(&mg, &hv);
  ct_morphism *body = NULL;
  if (s == CT_OK && split) s = ct_then(&body, qkv, core);
  if (s == CT_OK && split) s = ct_then(out, body, mg);
  ct_morphism *tmp[] = {sp[0], sp[1], sp[2], sc, sm, ap, mg, id[0], id[1], kv, qkv, f1, f2,
                        core, t, body};
  for (size_t k = 0; k < sizeof tmp / sizeof tmp[0]; k++) ct_morphism_free(tmp[k]);
  return s;
}
static ct_status ct__causal_attention_lhs(ct_morphism **out, const ct__rule_args *a) {
  return ct__attention_lhs(out, a, true);
}
static ct_status ct__causal_attention_1_lhs(ct_morphism **out, const ct__rule_args *a) {
  return ct__attention_lhs(out, a, false);
}
static ct_status ct__causal_attention_rhs(ct_morphism **out, const ct__rule_args *a) {
  return ct_causal_attention(out, &a->obj[0], a->heads);
}

/* SEQ {B, T, C, H}: odd with D = 2, long rows with D = 5, one position, and D = 64 past
 * one tile of rows. */
static bool ct__example_attention(int k, ct__rule_args *a, bool split) {
  static const int64_t shapes[][4] = {{2, 5, 6, 3}, {2, 37, 20, 4}, {1, 1, 2, 2}, {1, 67, 128, 2}};
  if (k < 0 || k >= (int)(sizeof shapes / sizeof shapes[0])) return false;
  memset(a, 0, sizeof *a);
  const int64_t *d = shapes[k];
  a->heads = split ? d[3] : 1;
  return ct_object_seq(&a->obj[0], d[0], d[1], d[2]) == CT_OK;
}
static bool ct__example_causal_attention(int k, ct__rule_args *a) {
  return ct__example_attention(k, a, true);
}
static bool ct__example_causal_attention_1(int k, ct__rule_args *a) {
  return ct__example_attention(k, a, false);
}

static const ct__rule ct__rules[] = {
    {"counit_right", "copy ; (id (x) discard) = id", ct__match_counit_right,
     ct__counit_right_lhs, ct__identity_rhs, ct__example_matrix},
    {"counit_left", "copy ; (discard (x) id) = id", ct__match_counit_left, ct__counit_left_lhs,
     ct__identity_rhs, ct__example_matrix},
    {"linear_gelu", "linear ; gelu = linear_gelu", ct__match_linear_gelu, ct__linear_gelu_lhs,
     ct__linear_gelu_rhs, ct__example_linear_gelu},
    {"add_layernorm", "add ; copy ; (id (x) layernorm) = add_layernorm", ct__match_add_layernorm,
     ct__add_layernorm_lhs, ct__add_layernorm_rhs, ct__example_add_layernorm},
    {"add_layernorm_end", "add ; layernorm = add_layernorm ; (discard (x) id)",
     ct__match_add_layernorm_end, ct__add_layernorm_end_lhs, ct__add_layernorm_end_rhs,
     ct__example_add_layernorm},
    {"qkv", "copy ; (copy (x) id) ; (linear (x) (linear (x) linear)) = qkv", ct__match_qkv,
     ct__qkv_lhs, ct__qkv_rhs, ct__example_qkv},
    {"causal_attention",
     "head_split^3 ; (attn_scores (x) id) ; (causal_softmax (x) id) ; attn_apply ; head_merge "
     "= causal_attention", ct__match_causal_attention, ct__causal_attention_lhs,
     ct__causal_attention_rhs, ct__example_causal_attention},
    {"causal_attention_1",
     "(attn_scores (x) id) ; (causal_softmax (x) id) ; attn_apply = causal_attention (one head)",
     ct__match_causal_attention_1, ct__causal_attention_1_lhs, ct__causal_attention_rhs,
     ct__example_causal_attention_1},
};
#define CT__NRULES ((int)(sizeof ct__rules / sizeof ct__rules[0]))

int ct__rule_count(void) { return CT__NRULES; }
const ct__rule *ct__rule_at(int i) { return i >= 0 && i < CT__NRULES ? &ct__rules[i] : NULL; }

/* ---- the pass ------------------------------------------------------------------ */

void ct__rewrite_log_free(ct__rewrite_log *log) {
  if (!log) return;
  free(log->lines);
  log->lines = NULL;
  log->n = 0;
}

static void ct__log_match(ct__rewrite_log *log, const ct_morphism *m, const ct__rule *r,
                          const ct__match *mt) {
  if (!log) return;
  void *grown = realloc(log->lines, ((size_t)log->n + 1) * sizeof *log->lines);
  if (!grown) return; /* the log is a report: losing a line is not an error */
  log->lines = grown;
  char *line = log->lines[log->n++];
  size_t k = (size_t)snprintf(line, sizeof *log->lines, "%s at node%s", r->name,
                              mt->n_nodes > 1 ? "s" : "");
  for (int i = 0; i < mt->n_nodes && k < sizeof *log->lines; i++)
    k += (size_t)snprintf(line + k, sizeof *log->lines - k, "%s %d (%s)", i ? "," : "",
                          mt->nodes[i], ct_op_name(m->nodes[mt->nodes[i]].op));
}

/* Values of the graph being built: objects, and where each is read. */
typedef struct ct__work {
  int n_values, cap_values;
  ct_object *values;
  int n_nodes;
  ct__node *nodes; /* plain copies: parameters are retained only by the result */
  int *alias;      /* alias[v]: the value v stands for (itself unless an identity wire) */
} ct__work;

static int ct__resolve(const ct__work *w, int v) {
  while (w->alias[v] != v) v = w->alias[v];
  return v;
}

/* The result's graph in canonical form: domain values first, then the nodes
 * in a topological order, each node's outputs in order. */
static ct_status ct__canonical(const ct__work *w, const ct_morphism *m, ct_morphism **out) {
  int V = w->n_values, N = w->n_nodes;
  int *id = malloc(((size_t)V + 1) * sizeof *id);
  int *order = malloc(((size_t)N + 1) * sizeof *order);
  bool *done = calloc((size_t)N + 1, sizeof *done);
  if (!id || !order || !done) {
    free(id);
    free(order);
    free(done);
    return ct__fail(CT_ERR_NOMEM, "ct_compile: rewrite: out of host memory");
  }
  for (int v = 0; v < V; v++) id[v] = -1;
  for (int i = 0; i < m->n_dom; i++) id[m->dom[i]] = i;
  /* Passes in node order, each emitting every node whose inputs exist by then:
   * the kept nodes are already in order and the spliced ones come last, so a
   * few passes suffice. */
  int next = m->n_dom, emitted = 0;
  for (bool progress = true; emitted < N && progress;) {
    progress = false;
    for (int i = 0; i < N; i++) {
      if (done[i]) continue;
      bool ready = true;
      for (int k = 0; k < w->nodes[i].n_in && ready; k++) ready = id[w->nodes[i].in[k]] >= 0;
      if (!ready) continue;
      done[i] = progress = true;
      order[emitted++] = i;
      for (int k = 0; k < w->nodes[i].n_out; k++) id[w->nodes[i].out[k]] = next++;
    }
  }
  ct_status s = CT_OK;
  ct_morphism *r = NULL;
  if (emitted < N) {
    s = ct__fail(CT_ERR_STATE, "ct_compile: rewrite produced a graph with a cycle (%d of %d "
                 "nodes ordered)", emitted, N);
  } else {
    r = ct__graph_alloc(next, N, m->n_dom, m->n_cod);
    if (!r) s = ct__fail(CT_ERR_NOMEM, "ct_compile: rewrite: out of host memory");
  }
  if (s == CT_OK) {
    for (int v = 0; v < V; v++)
      if (id[v] >= 0) r->values[id[v]] = w->values[v];
    for (int i = 0; i < N; i++) ct__node_copy(&r->nodes[i], &w->nodes[order[i]], id);
    for (int i = 0; i < m->n_dom; i++) r->dom[i] = i;
    for (int j = 0; j < m->n_cod; j++) {
      int v = ct__resolve(w, m->cod[j]);
      r->cod[j] = id[v];
      if (id[v] < 0) s = ct__fail(CT_ERR_STATE, "ct_compile: rewrite lost codomain value %d", j);
    }
  }
  free(id);
  free(order);
  free(done);
  if (s != CT_OK) {
    ct_morphism_free(r);
    return s;
  }
  *out = r;
  return CT_OK;
}

/* Adds a value to the work graph; its id, or -1 when out of memory. */
static int ct__work_value(ct__work *w, const ct_object *o) {
  if (w->n_values == w->cap_values) {
    int cap = 2 * w->cap_values + 8;
    ct_object *v = realloc(w->values, (size_t)cap * sizeof *v);
    int *a = v ? realloc(w->alias, (size_t)cap * sizeof *a) : NULL;
    if (v) w->values = v;
    if (!v || !a) return -1;
    w->alias = a;
    w->cap_values = cap;
  }
  w->values[w->n_values] = *o;
  w->alias[w->n_values] = w->n_values;
  return w->n_values++;
}

/* Replaces the matches mt[0..n) (disjoint) of m by their rules' rhs[0..n). */
static ct_status ct__splice(const ct_morphism *m, const ct__match *mt, ct_morphism *const *rhs,
                            int n, ct_morphism **out) {
  ct__work w = {0};
  int extra_nodes = 0;
  for (int k = 0; k < n; k++) extra_nodes += rhs[k]->n_nodes;
  bool *removed = calloc((size_t)m->n_nodes + 1, sizeof *removed);
  w.nodes = malloc(((size_t)m->n_nodes + extra_nodes + 1) * sizeof *w.nodes);
  ct_status s = removed && w.nodes ? CT_OK
                                   : ct__fail(CT_ERR_NOMEM, "ct_compile: rewrite: out of host memory");
  for (int v = 0; v < m->n_values && s == CT_OK; v++)
    if (ct__work_value(&w, &m->values[v]) < 0)
      s = ct__fail(CT_ERR_NOMEM, "ct_compile: rewrite: out of host memory");
  for (int k = 0; k < n && s == CT_OK; k++)
    for (int j = 0; j < mt[k].n_nodes; j++) removed[mt[k].nodes[j]] = true;
  for (int i = 0; i < m->n_nodes && s == CT_OK; i++)
    if (!removed[i]) w.nodes[w.n_nodes++] = m->nodes[i];
  for (int k = 0; k < n && s == CT_OK; k++) {
    const ct_morphism *r = rhs[k];
    int *map = malloc(((size_t)r->n_values + 1) * sizeof *map);
    if (!map) {
      s = ct__fail(CT_ERR_NOMEM, "ct_compile: rewrite: out of host memory");
      break;
    }
    for (int v = 0; v < r->n_values; v++) map[v] = -1;
    for (int i = 0; i < r->n_dom; i++) map[r->dom[i]] = mt[k].in[i];
    for (int j = 0; j < r->n_cod; j++) {
      int v = r->cod[j];
      if (map[v] >= 0) /* an identity wire: the replaced value stands for the input */
        w.alias[mt[k].out[j]] = map[v];
      else
        map[v] = mt[k].out[j];
    }
    for (int v = 0; v < r->n_values && s == CT_OK; v++)
      if (map[v] < 0 && (map[v] = ct__work_value(&w, &r->values[v])) < 0)
        s = ct__fail(CT_ERR_NOMEM, "ct_compile: rewrite: out of host memory");
    for (int i = 0; i < r->n_nodes && s == CT_OK; i++) {
      ct__node *nd = &w.nodes[w.n_nodes++];
      *nd = r->nodes[i];
      for (int q = 0; q < nd->n_in; q++) nd->in[q] = map[nd->in[q]];
      for (int q = 0; q < nd->n_out; q++) nd->out[q] = map[nd->out[q]];
    }
    free(map);
  }
  for (int i = 0; i < w.n_nodes && s == CT_OK; i++)
    for (int q = 0; q < w.nodes[i].n_in; q++) w.nodes[i].in[q] = ct__resolve(&w, w.nodes[i].in[q]);
  if (s == CT_OK) s = ct__canonical(&w, m, out);
  free(removed);
  free(w.nodes);
  free(w.values);
  free(w.alias);
  return s;
}

/* One sweep: every disjoint match of every rule, in node order. *fired counts them. */
static ct_status ct__sweep(const ct_morphism *m, const ct_backend *be, const ct_backend *be2,
                           bool reverse, ct_morphism **out, ct__rewrite_log *log, int *fired) {
  *fired = 0;
  *out = NULL;
  int V = m->n_values, N = m->n_nodes;
  ct__users u = {malloc(((size_t)V + 1) * sizeof(int)), malloc(((size_t)V + 1) * sizeof(int))};
  bool *taken = calloc((size_t)N + 1, sizeof *taken);
  ct__match *mt = malloc(((size_t)N + 1) * sizeof *mt);
  ct_morphism **rhs = calloc((size_t)N + 1, sizeof *rhs);
  ct_status s = u.user && u.producer && taken && mt && rhs
                    ? CT_OK
                    : ct__fail(CT_ERR_NOMEM, "ct_compile: rewrite: out of host memory");
  int n = 0;
  if (s == CT_OK) {
    for (int v = 0; v < V; v++) u.user[v] = u.producer[v] = -1;
    for (int i = 0; i < N; i++) {
      for (int k = 0; k < m->nodes[i].n_in; k++) u.user[m->nodes[i].in[k]] = i;
      for (int k = 0; k < m->nodes[i].n_out; k++) u.producer[m->nodes[i].out[k]] = i;
    }
  }
  for (int i = 0; i < N && s == CT_OK; i++)
    for (int r = 0; r < CT__NRULES && s == CT_OK && !taken[i]; r++) {
      ct__match cand;
      if (!ct__rules[r].match(m, &u, i, &cand)) continue;
      bool free_nodes = true;
      for (int j = 0; j < cand.n_nodes; j++) free_nodes = free_nodes && !taken[cand.nodes[j]];
      if (!free_nodes) continue;
      s = ct__rules[r].rhs(&rhs[n], &cand.args);
      if (s != CT_OK) {
        s = ct__fail(s, "ct_compile: rewrite %s at node %d: %s", ct__rules[r].name, i,
                     ct_last_error());
        break;
      }
      bool runs = true; /* a backend without the fused generator keeps the lhs */
      for (int j = 0; runs && j < rhs[n]->n_nodes; j++) {
        ct_op op = rhs[n]->nodes[j].op;
        runs = (!be || ct__backend_runs(be, op, reverse)) &&
               (!be2 || ct__backend_runs(be2, op, reverse));
      }
      if (!runs) {
        ct_morphism_free(rhs[n]);
        rhs[n] = NULL;
        continue;
      }
      for (int j = 0; j < cand.n_nodes; j++) taken[cand.nodes[j]] = true;
      ct__log_match(log, m, &ct__rules[r], &cand);
      mt[n++] = cand;
    }
  if (s == CT_OK && n > 0) s = ct__splice(m, mt, rhs, n, out);
  for (int k = 0; k < n; k++) ct_morphism_free(rhs[k]);
  if (s == CT_OK) *fired = n;
  free(u.user);
  free(u.producer);
  free(taken);
  free(mt);
  free(rhs);
  return s;
}

ct_status ct__rewrite(const ct_morphism *m, const ct_backend *be, const ct_backend *be2,
                      bool reverse, ct_morphism **out, ct__rewrite_log *log) {
  *out = NULL;
  ct_morphism *cur = NULL;
  /* Every rewrite removes nodes or fuses them, so sweeps end; the bound is a guard. */
  for (int sweep = 0; sweep < 64; sweep++) {
    ct_morphism *next = NULL;
    int fired = 0;
    ct_status s = ct__sweep(cur ? cur : m, be, be2, reverse, &next, log, &fired);
    if (s != CT_OK) {
      ct_morphism_free(cur);
      return s;
    }
    if (!fired) break;
    ct_morphism_free(cur);
    cur = next;
  }
  if (!cur) return CT_OK; /* nothing matched: *out stays NULL, m is used as it is */
  *out = cur;
  return CT_OK;
}
