/* SPDX-License-Identifier: MIT */
/* Rewrite rules: each is an equation lhs = rhs between two morphisms with the
 * same boundary (domain, codomain, parameters). ct__rewrite replaces every
 * match of a rule's lhs in a graph by its rhs, before a plan is made. The law
 * test (tests/test_rewrite.c) checks every rule of the table numerically on
 * every present backend; a rule without an example fails it. */
#ifndef CTML_REWRITE_H
#define CTML_REWRITE_H

#include "internal.h"

/* What both sides of a rule are built on: boundary objects, a role, parameters. */
typedef struct ct__rule_args {
  ct_object obj[2];
  ct_role role;
  ct_param *param[CT__MAX_PARAMS];
  int64_t heads;
} ct__rule_args;

/* One match in a graph: the nodes it replaces, and the graph's values that the
 * rhs's domain is glued to and that its codomain replaces, in their order. */
typedef struct ct__match {
  int n_nodes, nodes[8];
  int n_in, in[CT__MAX_IO];
  int n_out, out[CT__MAX_IO];
  ct__rule_args args;
} ct__match;

/* Wiring of a graph: user[v] is the node reading value v (-1: the codomain),
 * producer[v] the node writing it (-1: the domain). Wires are linear, so each
 * value has exactly one of each. */
typedef struct ct__users {
  int *user;
  int *producer;
} ct__users;

typedef struct ct__rule {
  const char *name;
  const char *equation; /* e.g. "linear ; gelu = linear_gelu" */
  /* Whether the lhs matches with node i as its first node; fills *mt. */
  bool (*match)(const ct_morphism *m, const ct__users *u, int i, ct__match *mt);
  ct_status (*lhs)(ct_morphism **out, const ct__rule_args *a);
  ct_status (*rhs)(ct_morphism **out, const ct__rule_args *a);
  /* Law-test instance k = 0, 1, ...: fills *a on fresh parameters (the caller
   * frees them) and returns true; false past the last. */
  bool (*example)(int k, ct__rule_args *a);
} ct__rule;

int ct__rule_count(void);
const ct__rule *ct__rule_at(int i);

/* The rules that fired: "rule at nodes 3 (linear), 4 (gelu)". */
typedef struct ct__rewrite_log {
  int n;
  char (*lines)[192];
} ct__rewrite_log;
void ct__rewrite_log_free(ct__rewrite_log *log);

/* *out = m with every match of every rule replaced, repeated until none
 * matches; the same domain, codomain and parameters. With backends, a match
 * is replaced only when each of be and be2 (either may be NULL: no condition)
 * runs every generator of the rhs (forward, and reverse when reverse), so two
 * backends compared node by node get the same graph. log (may be NULL) gains a
 * line per rewrite. *out stays NULL when nothing matched. */
ct_status ct__rewrite(const ct_morphism *m, const ct_backend *be, const ct_backend *be2,
                      bool reverse, ct_morphism **out, ct__rewrite_log *log);

#endif
