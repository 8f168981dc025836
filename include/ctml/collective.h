/* SPDX-License-Identifier: MIT */
/* Collectives: the processes (ranks) of a job started by a launcher such as
 * mpirun, and the operations that make them agree. Data-parallel training
 * replicates the parameters on every rank (a copy); the reverse of a copy is a
 * sum, so the gradient all-reduce is the reverse derivative of that copy.
 *
 * Implementations, chosen by name like backends:
 *   "mpi"   MPI (libmpi loaded at run time); device buffers of any backend are
 *           staged through host memory;
 *   "nccl"  NCCL on the cuda backend (libnccl loaded at run time), one GPU per
 *           rank, bootstrapped over MPI (the unique id is broadcast by MPI); a
 *           process not started by a launcher runs it as one rank without MPI.
 * One that is not built in, or whose library cannot be loaded, is reported as
 * CT_ERR_BACKEND_ABSENT with the reason. Every collective call must be made by
 * every rank in the same order. Each waits at most the collective's timeout for
 * the other ranks; past it the call fails with CT_ERR_DEVICE naming the
 * operation, and the collective is broken: later calls fail at once. */
#ifndef CTML_COLLECTIVE_H
#define CTML_COLLECTIVE_H

#include <stdbool.h>
#include <stddef.h>
#include "ctml/backend.h"
#include "ctml/export.h"
#include "ctml/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_collective ct_collective;

typedef struct ct_collective_info {
  const char *name;
  bool built;        /* compiled into this library */
  bool present;      /* built and its library loads */
  char reason[1024]; /* why it is absent, when not present */
} ct_collective_info;

/* Describes collective "mpi" or "nccl" (loads its library; starts nothing). */
CT_API ct_status ct_collective_info_get(const char *name, ct_collective_info *out);

/* The world size and rank the launcher gave this process, read from its
 * environment (Open MPI, MPICH/Hydra, PMIx, Slurm) without starting anything;
 * 1 and 0 when not started by a launcher. */
CT_API void ct_collective_launched(int *size, int *rank);

/* Joins the job: name "mpi" or "nccl"; backend: the backend whose buffers the
 * collective reduces (nccl needs cuda). Starts MPI when it is not started yet.
 * Every rank must open the same kind. The timeout is 120 s or the
 * environment's CTML_COLLECTIVE_TIMEOUT (seconds). */
CT_API ct_status ct_collective_open(ct_collective **out, const char *name,
                                    const ct_backend *backend);
/* Leaves the job (finalizes MPI when open() started it). A broken collective
 * skips the finalization, which would wait for the missing ranks: the
 * launcher then ends the job when this process exits. NULL is a no-op. */
CT_API ct_status ct_collective_close(ct_collective *c);

CT_API const char *ct_collective_name(const ct_collective *c);
CT_API int ct_collective_rank(const ct_collective *c);
CT_API int ct_collective_size(const ct_collective *c);
CT_API const ct_backend *ct_collective_backend(const ct_collective *c);
/* How long one operation waits for the other ranks; > 0 and finite. */
CT_API ct_status ct_collective_set_timeout(ct_collective *c, double seconds);
/* Whether an operation timed out or failed, leaving ranks out of step. */
CT_API bool ct_collective_broken(const ct_collective *c);

CT_API ct_status ct_collective_barrier(ct_collective *c);
/* x[0..n) <- the sum over ranks of x[0..n), on every rank (host doubles). */
CT_API ct_status ct_collective_sum_host(ct_collective *c, double *x, int n);
/* bytes[0..n) <- rank 0's bytes[0..n), on every rank (host memory). */
CT_API ct_status ct_collective_broadcast_host(ct_collective *c, void *bytes, size_t n);
/* Agreement on failure: every rank passes its own status (and, when it is not
 * CT_OK, its ct_last_error()). Returns CT_OK on every rank when all passed
 * CT_OK; otherwise, on every rank, the status of the lowest failing rank with
 * the message "rank R of N: <its message>". */
CT_API ct_status ct_collective_agree(ct_collective *c, ct_status mine);

#ifdef __cplusplus
}
#endif
#endif
