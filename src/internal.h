/* SPDX-License-Identifier: MIT */
/* Internals shared by the core and the backends. */
#ifndef CTML_INTERNAL_H
#define CTML_INTERNAL_H

#include "ctml/ctml.h"

#if defined(__GNUC__)
#define CT__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CT__PRINTF(a, b)
#endif

/* Records a message for ct_last_error() and returns s. */
ct_status ct__fail(ct_status s, const char *fmt, ...) CT__PRINTF(2, 3);
/* Propagates a failing status. */
#define CT__TRY(expr)                 \
  do {                                \
    ct_status ct__s_ = (expr);        \
    if (ct__s_ != CT_OK) return ct__s_; \
  } while (0)

/* Fails with CT_ERR_INVALID_ARG naming the NULL argument as the header names it. */
#define CT__NEED(arg, fn)                                                           \
  do {                                                                              \
    if (!(arg)) return ct__fail(CT_ERR_INVALID_ARG, "%s: argument '%s' is NULL", fn, #arg); \
  } while (0)

#define CT__MAX_IO 4     /* inputs or outputs of one generator */
#define CT__MAX_PARAMS 6 /* parameters of one generator (qkv: three weights, three biases) */

/* One generator application in an open graph. Value ids index the graph's values. */
typedef struct ct__node {
  ct_op op;
  int n_in, n_out, n_params;
  int in[CT__MAX_IO];
  int out[CT__MAX_IO];
  ct_param *params[CT__MAX_PARAMS];
  int64_t attr; /* the generator's integer attribute: heads of causal_attention, else 0 */
} ct__node;

/* Open graph. Values are numbered canonically: dom first, then each node's
 * outputs in node order; nodes are in a topological order. */
struct ct_morphism {
  int n_values;
  ct_object *values;
  int n_nodes;
  ct__node *nodes;
  int n_dom, n_cod;
  int *dom; /* value ids */
  int *cod;
};

/* An empty graph of the given sizes (NULL when out of memory). */
ct_morphism *ct__graph_alloc(int n_values, int n_nodes, int n_dom, int n_cod);
/* Copies node src into dst with value ids passed through map, retaining parameters. */
void ct__node_copy(ct__node *dst, const ct__node *src, const int *map);

/* Backend-independent facts about a generator: what its reverse needs saved
 * (the lens residual), its scratch size, and its cost for the trace. */
typedef struct ct__op_info {
  unsigned char rev_needs_inputs;  /* reverse reads the forward inputs */
  unsigned char rev_needs_outputs; /* reverse reads the forward outputs */
  /* Structural generators reverse as another generator's forward kernel on
   * the cotangents (copy -> add, add -> copy) or as zero (discard). */
  int reverse_as;                  /* a ct_op, or -1 for a reverse kernel of its own */
  unsigned char reverse_is_zero;
  /* Bytes of extra residual the forward saves for the reverse (0: none). */
  size_t (*saved_bytes)(const struct ct_morphism *m, const ct__node *n);
  void (*cost)(const struct ct_morphism *m, const ct__node *n, ct_direction dir, double *flops,
               double *bytes);
  unsigned char forward_only; /* no reverse exists (decoding generators) */
} ct__op_info;

const ct__op_info *ct__op(ct_op op);

/* Rows and last-axis length of an object seen as a matrix. */
int64_t ct__rows(const ct_object *o);
int64_t ct__cols(const ct_object *o);

/* Parameters are reference counted; morphisms and plans retain them. */
void ct__param_retain(ct_param *p);
float *ct__param_host(ct_param *p);

#endif
