/* SPDX-License-Identifier: MIT */
/* The collective interface: one table of operations per implementation.
 * Device buffers are backend buffer handles of c->be (host pointers on cpu,
 * device pointers on cuda, cl_mem on opencl) holding floats. */
#ifndef CTML_COLLECTIVE_IMPL_H
#define CTML_COLLECTIVE_IMPL_H

#include "ctml/collective.h"
#include "backend_impl.h"

typedef struct ct__collective_ops {
  /* buf[0..n) <- the sum over ranks (mean: divided by the world size). */
  ct_status (*allreduce)(ct_collective *c, void *buf, int64_t n, bool mean);
  /* buf[0..n) <- rank 0's buf[0..n). */
  ct_status (*broadcast)(ct_collective *c, void *buf, int64_t n);
  ct_status (*barrier)(ct_collective *c);
  ct_status (*sum_host)(ct_collective *c, double *x, int n);
  /* bytes from rank root to every rank */
  ct_status (*broadcast_host)(ct_collective *c, void *bytes, size_t n, int root);
  /* *x <- the minimum over ranks */
  ct_status (*min_int)(ct_collective *c, int *x);
  void (*close)(ct_collective *c);
} ct__collective_ops;

struct ct_collective {
  const ct__collective_ops *ops;
  const char *name;
  const ct_backend *be;
  void *ctx; /* the backend's device context */
  int rank, size;
  double timeout;
  bool broken;
  void *impl;          /* the implementation's state */
  ct_collective *boot; /* nccl: the MPI collective it was bootstrapped over */
};

/* Marks c broken after a failure that may leave ranks out of step; keeps the message. */
ct_status ct__collective_break(ct_collective *c, ct_status s);

/* MPI (src/collective_mpi.c): absent with the reason when not built. */
ct_status ct__mpi_open(ct_collective *c);
ct_status ct__mpi_probe(char *reason, size_t len);
/* NCCL (cuda/collective_nccl.c), bootstrapped over an open MPI collective. */
ct_status ct__nccl_open(ct_collective *c, ct_collective *mpi);
ct_status ct__nccl_probe(char *reason, size_t len);

/* Device buffer operations, for the trainer. */
ct_status ct__collective_allreduce(ct_collective *c, void *buf, int64_t n, bool mean);
ct_status ct__collective_broadcast(ct_collective *c, void *buf, int64_t n);

#endif
