/* SPDX-License-Identifier: MIT */
/* The NCCL collective on the cuda backend: one GPU per rank, the communicator
 * bootstrapped over MPI (rank 0's ncclGetUniqueId is broadcast by MPI).
 * libnccl is loaded at run time through a table of function pointers, as
 * cuBLAS is. The communicator is non-blocking (config.blocking = 0): start-up
 * and every operation are polled (ncclCommGetAsyncError, cudaStreamQuery)
 * until done or the collective's timeout passes, then the communicator is
 * aborted (ncclCommAbort) and the collective is broken. Reductions run on the
 * backend's stream, in place; the mean is NCCL's ncclAvg. Host-side
 * operations (sums of losses, agreement, barrier) go over MPI, or are the
 * identity for one process started without a launcher (no MPI needed). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cuda_runtime.h>
#include <nccl.h>
#include "collective_impl.h"
#include "dynload.h"

#define CT__NCCL_FUNCTIONS(X)                                                               \
  X(ncclGetUniqueId) X(ncclCommInitRankConfig) X(ncclCommGetAsyncError) X(ncclCommAbort)   \
  X(ncclCommFinalize) X(ncclCommDestroy) X(ncclAllReduce) X(ncclBroadcast)                 \
  X(ncclGetErrorString) X(ncclGetVersion)

static struct {
#define CT__NCCL_SLOT(f) __typeof__(f) *p_##f;
  CT__NCCL_FUNCTIONS(CT__NCCL_SLOT)
#undef CT__NCCL_SLOT
} ct__nccl;

#define CT__STR_(x) #x
#define CT__STR(x) CT__STR_(x)

static ct_status ct__nccl_load(void) {
  static ct__dl_once once;
  static const char *const names[] = {
      "libnccl.so." CT__STR(NCCL_MAJOR),
#ifdef CT__CUDA_LIBRARY_DIR
      CT__CUDA_LIBRARY_DIR "/libnccl.so." CT__STR(NCCL_MAJOR),
#endif
  };
  const ct__dl_symbol symbols[] = {
#define CT__NCCL_SYMBOL(f) {#f, (void **)&ct__nccl.p_##f},
      CT__NCCL_FUNCTIONS(CT__NCCL_SYMBOL)
#undef CT__NCCL_SYMBOL
  };
  return ct__dl_load_once(&once, false, "NCCL", names, (int)(sizeof names / sizeof *names),
                          symbols, (int)(sizeof symbols / sizeof *symbols));
}

#define ncclGetUniqueId (*ct__nccl.p_ncclGetUniqueId)
#define ncclCommInitRankConfig (*ct__nccl.p_ncclCommInitRankConfig)
#define ncclCommGetAsyncError (*ct__nccl.p_ncclCommGetAsyncError)
#define ncclCommAbort (*ct__nccl.p_ncclCommAbort)
#define ncclCommFinalize (*ct__nccl.p_ncclCommFinalize)
#define ncclCommDestroy (*ct__nccl.p_ncclCommDestroy)
#define ncclAllReduce (*ct__nccl.p_ncclAllReduce)
#define ncclBroadcast (*ct__nccl.p_ncclBroadcast)
#define ncclGetErrorString (*ct__nccl.p_ncclGetErrorString)
#define ncclGetVersion (*ct__nccl.p_ncclGetVersion)

/* The cuda backend's stream and device (cuda/cuda_backend.c). */
cudaStream_t ct__cuda_stream(void *ctx);
int ct__cuda_device(void *ctx);

/* Present when libnccl loads; more than one rank also needs MPI. */
ct_status ct__nccl_probe(char *reason, size_t len) {
  ct_status s = ct__nccl_load();
  snprintf(reason, len, "%s", s == CT_OK ? "" : ct_last_error());
  return s;
}

typedef struct ct__nccl_state {
  ncclComm_t comm;
  cudaStream_t stream;
} ct__nccl_state;

static double ct__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ct_status ct__nccl_broken(ct_collective *c, const char *what, const char *why) {
  ct__nccl_state *st = c->impl;
  if (st && st->comm) {
    ncclCommAbort(st->comm);
    st->comm = NULL;
  }
  return ct__collective_break(c, ct__fail(CT_ERR_DEVICE, "NCCL %s on rank %d of %d: %s", what,
                                          c->rank, c->size, why));
}

/* Polls the communicator (and, with stream, the stream) until the operation
 * completes, fails or the timeout passes. */
static ct_status ct__nccl_wait(ct_collective *c, ncclResult_t r, bool stream, const char *what) {
  ct__nccl_state *st = c->impl;
  if (r != ncclSuccess && r != ncclInProgress)
    return ct__nccl_broken(c, what, ncclGetErrorString(r));
  double t0 = ct__now();
  for (long spin = 0;; spin++) {
    ncclResult_t a = ncclSuccess;
    if (ncclCommGetAsyncError(st->comm, &a) != ncclSuccess) a = ncclInternalError;
    if (a != ncclSuccess && a != ncclInProgress)
      return ct__nccl_broken(c, what, ncclGetErrorString(a));
    if (a == ncclSuccess) {
      cudaError_t e = stream ? cudaStreamQuery(st->stream) : cudaSuccess;
      if (e == cudaSuccess) return CT_OK;
      if (e != cudaErrorNotReady) {
        (void)cudaGetLastError();
        return ct__nccl_broken(c, what, cudaGetErrorString(e));
      }
    }
    if (spin > 1000) {
      if (ct__now() - t0 > c->timeout) {
        char why[160];
        snprintf(why, sizeof why, "waited %.0f s for the other ranks (a rank stopped, failed or "
                 "hangs; CTML_COLLECTIVE_TIMEOUT sets the wait)", c->timeout);
        return ct__nccl_broken(c, what, why);
      }
      struct timespec ts = {0, 20000};
      nanosleep(&ts, NULL);
    }
  }
}

static ct_status ct__nccl_allreduce(ct_collective *c, void *buf, int64_t n, bool mean) {
  ct__nccl_state *st = c->impl;
  ncclResult_t r = ncclAllReduce(buf, buf, (size_t)n, ncclFloat32, mean ? ncclAvg : ncclSum,
                                 st->comm, st->stream);
  return ct__nccl_wait(c, r, true, "all-reduce");
}

static ct_status ct__nccl_broadcast(ct_collective *c, void *buf, int64_t n) {
  ct__nccl_state *st = c->impl;
  ncclResult_t r = ncclBroadcast(buf, buf, (size_t)n, ncclFloat32, 0, st->comm, st->stream);
  return ct__nccl_wait(c, r, true, "broadcast");
}

/* Host operations: over the MPI collective it was bootstrapped on. */
static ct_status ct__nccl_host(ct_collective *c, ct_status s) {
  if (c->boot->broken) c->broken = true;
  return s;
}
static ct_status ct__nccl_barrier(ct_collective *c) {
  return ct__nccl_host(c, c->boot->ops->barrier(c->boot));
}
static ct_status ct__nccl_sum_host(ct_collective *c, double *x, int n) {
  return ct__nccl_host(c, c->boot->ops->sum_host(c->boot, x, n));
}
static ct_status ct__nccl_broadcast_host(ct_collective *c, void *bytes, size_t n, int root) {
  return ct__nccl_host(c, c->boot->ops->broadcast_host(c->boot, bytes, n, root));
}
static ct_status ct__nccl_min_int(ct_collective *c, int *x) {
  return ct__nccl_host(c, c->boot->ops->min_int(c->boot, x));
}

static void ct__nccl_close(ct_collective *c) {
  ct__nccl_state *st = c->impl;
  if (!st) return;
  if (st->comm) {
    if (!c->broken && ct__nccl_wait(c, ncclCommFinalize(st->comm), false, "finalize") == CT_OK)
      ncclCommDestroy(st->comm);
    else if (st->comm)
      ncclCommAbort(st->comm);
  }
  free(st);
  c->impl = NULL;
}

static const ct__collective_ops ct__nccl_ops = {
    ct__nccl_allreduce, ct__nccl_broadcast, ct__nccl_barrier, ct__nccl_sum_host,
    ct__nccl_broadcast_host, ct__nccl_min_int, ct__nccl_close};

ct_status ct__nccl_open(ct_collective *c, ct_collective *mpi) {
  /* every rank learns whether every rank loaded NCCL before any waits in NCCL */
  ct_status s = ct__nccl_load();
  if (s != CT_OK) s = ct__fail(s, "collective nccl: %s", ct_last_error());
  CT__TRY(ct_collective_agree(mpi, s));
  ct__nccl_state *st = calloc(1, sizeof *st);
  s = st ? CT_OK : ct__fail(CT_ERR_NOMEM, "collective nccl: out of host memory");
  CT__TRY(ct_collective_agree(mpi, s));
  st->stream = ct__cuda_stream(c->ctx);
  c->ops = &ct__nccl_ops;
  c->impl = st;
  c->boot = mpi;
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  ncclResult_t r = ncclSuccess;
  if (c->rank == 0) r = ncclGetUniqueId(&id);
  s = r == ncclSuccess ? CT_OK : ct__fail(CT_ERR_DEVICE, "collective nccl: ncclGetUniqueId: %s",
                                          ncclGetErrorString(r));
  s = ct_collective_agree(mpi, s);
  if (s == CT_OK) s = mpi->ops->broadcast_host(mpi, &id, sizeof id, 0);
  if (s == CT_OK) {
    cudaError_t e = cudaSetDevice(ct__cuda_device(c->ctx));
    if (e != cudaSuccess) s = ct__fail(CT_ERR_DEVICE, "collective nccl: cudaSetDevice: %s",
                                       cudaGetErrorString(e));
  }
  if (s == CT_OK) {
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    r = ncclCommInitRankConfig(&st->comm, c->size, id, c->rank, &config);
    if (!st->comm && r != ncclSuccess && r != ncclInProgress)
      s = ct__fail(CT_ERR_DEVICE, "collective nccl: ncclCommInitRankConfig on rank %d of %d: %s",
                   c->rank, c->size, ncclGetErrorString(r));
    else
      s = ct__nccl_wait(c, r, false, "start");
  }
  if (s != CT_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ct_last_error());
    if (st->comm) ncclCommAbort(st->comm);
    free(st);
    c->impl = NULL;
    c->ops = NULL;
    c->boot = NULL;
    return ct__fail(s, "%s", msg);
  }
  return CT_OK;
}
