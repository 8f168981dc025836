/* SPDX-License-Identifier: MIT */
/* The MPI collective. libmpi is loaded at run time through a table of function
 * pointers, like cuBLAS (cuda/cublas_loader.h): the code is compiled against
 * the mpi.h found at configure time and calls MPI by its usual names, which
 * this file redirects to the table. Open MPI's predefined handles
 * (MPI_COMM_WORLD, MPI_SUM, ...) are addresses of objects in libmpi, so those
 * objects are resolved too; MPICH's are integer constants and need nothing.
 * Every operation is non-blocking (MPI_I*) and polled with MPI_Test until it
 * completes or the collective's timeout passes. Device buffers are staged
 * through a host buffer with the backend's download and upload. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mpi.h>
#include "collective_impl.h"
#include "dynload.h"

#define CT__MPI_FUNCTIONS(X)                                                                 \
  X(MPI_Initialized) X(MPI_Finalized) X(MPI_Init_thread) X(MPI_Finalize) X(MPI_Comm_rank)   \
  X(MPI_Comm_size) X(MPI_Comm_dup) X(MPI_Comm_free) X(MPI_Comm_set_errhandler)              \
  X(MPI_Iallreduce) X(MPI_Ibcast) X(MPI_Ibarrier) X(MPI_Test) X(MPI_Error_string)

#ifdef OPEN_MPI
#define CT__MPI_OBJECTS(X)                                                                   \
  X(ompi_mpi_comm_world) X(ompi_mpi_op_sum) X(ompi_mpi_op_min) X(ompi_mpi_byte)              \
  X(ompi_mpi_int) X(ompi_mpi_float) X(ompi_mpi_double) X(ompi_mpi_errors_return)
#else
#define CT__MPI_OBJECTS(X)
#endif

static struct {
#define CT__MPI_SLOT(f) __typeof__(f) *p_##f;
  CT__MPI_FUNCTIONS(CT__MPI_SLOT)
  CT__MPI_OBJECTS(CT__MPI_SLOT)
#undef CT__MPI_SLOT
} ct__mpi;

static ct_status ct__mpi_load(void) {
  static ct__dl_once once;
  static const char *const names[] = {
#ifdef OPEN_MPI
      "libmpi.so.40",
#else
      "libmpi.so.12",
#endif
#ifdef CT__MPI_LIBRARY
      CT__MPI_LIBRARY,
#endif
      "libmpi.so",
  };
  const ct__dl_symbol symbols[] = {
#define CT__MPI_SYMBOL(f) {#f, (void **)&ct__mpi.p_##f},
      CT__MPI_FUNCTIONS(CT__MPI_SYMBOL) CT__MPI_OBJECTS(CT__MPI_SYMBOL)
#undef CT__MPI_SYMBOL
  };
  /* global: Open MPI's components are plugins that need libmpi's symbols */
  return ct__dl_load_once(&once, true, "MPI", names, (int)(sizeof names / sizeof *names), symbols,
                          (int)(sizeof symbols / sizeof symbols[0]));
}

/* Calls and predefined objects go through the table from here on. */
#define MPI_Initialized (*ct__mpi.p_MPI_Initialized)
#define MPI_Finalized (*ct__mpi.p_MPI_Finalized)
#define MPI_Init_thread (*ct__mpi.p_MPI_Init_thread)
#define MPI_Finalize (*ct__mpi.p_MPI_Finalize)
#define MPI_Comm_rank (*ct__mpi.p_MPI_Comm_rank)
#define MPI_Comm_size (*ct__mpi.p_MPI_Comm_size)
#define MPI_Comm_dup (*ct__mpi.p_MPI_Comm_dup)
#define MPI_Comm_free (*ct__mpi.p_MPI_Comm_free)
#define MPI_Comm_set_errhandler (*ct__mpi.p_MPI_Comm_set_errhandler)
#define MPI_Iallreduce (*ct__mpi.p_MPI_Iallreduce)
#define MPI_Ibcast (*ct__mpi.p_MPI_Ibcast)
#define MPI_Ibarrier (*ct__mpi.p_MPI_Ibarrier)
#define MPI_Test (*ct__mpi.p_MPI_Test)
#define MPI_Error_string (*ct__mpi.p_MPI_Error_string)
#ifdef OPEN_MPI
#define ompi_mpi_comm_world (*ct__mpi.p_ompi_mpi_comm_world)
#define ompi_mpi_op_sum (*ct__mpi.p_ompi_mpi_op_sum)
#define ompi_mpi_op_min (*ct__mpi.p_ompi_mpi_op_min)
#define ompi_mpi_byte (*ct__mpi.p_ompi_mpi_byte)
#define ompi_mpi_int (*ct__mpi.p_ompi_mpi_int)
#define ompi_mpi_float (*ct__mpi.p_ompi_mpi_float)
#define ompi_mpi_double (*ct__mpi.p_ompi_mpi_double)
#define ompi_mpi_errors_return (*ct__mpi.p_ompi_mpi_errors_return)
#endif

ct_status ct__mpi_probe(char *reason, size_t len) {
  ct_status s = ct__mpi_load();
  snprintf(reason, len, "%s", s == CT_OK ? "" : ct_last_error());
  return s;
}

typedef struct ct__mpi_state {
  MPI_Comm comm;  /* a duplicate of MPI_COMM_WORLD: ctml's messages only */
  bool finalize;  /* open() started MPI */
  float *stage;   /* host staging of device buffers */
  size_t stage_n; /* its size in floats */
} ct__mpi_state;

static ct_status ct__mpi_error(ct_collective *c, int rc, const char *what) {
  char e[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  if (MPI_Error_string(rc, e, &len) != MPI_SUCCESS) snprintf(e, sizeof e, "error %d", rc);
  return ct__collective_break(c, ct__fail(CT_ERR_DEVICE, "MPI %s failed on rank %d of %d: %s",
                                          what, c->rank, c->size, e));
}

static double ct__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Polls req until it completes or the timeout passes. */
static ct_status ct__mpi_wait(ct_collective *c, MPI_Request *req, int rc, const char *what) {
  if (rc != MPI_SUCCESS) return ct__mpi_error(c, rc, what);
  double t0 = ct__now();
  for (long spin = 0;; spin++) {
    int done = 0;
    rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return ct__mpi_error(c, rc, what);
    if (done) return CT_OK;
    /* spin briefly, then sleep 50 us between polls: ranks share cores */
    if (spin > 1000) {
      if (ct__now() - t0 > c->timeout)
        return ct__collective_break(c, ct__fail(CT_ERR_DEVICE, "MPI %s: rank %d of %d waited "
                                                "%.0f s for the other ranks (a rank stopped, "
                                                "failed or hangs; CTML_COLLECTIVE_TIMEOUT sets "
                                                "the wait)", what, c->rank, c->size, c->timeout));
      struct timespec ts = {0, 50000};
      nanosleep(&ts, NULL);
    }
  }
}

static ct_status ct__mpi_stage(ct_collective *c, ct__mpi_state *st, int64_t n) {
  if ((size_t)n <= st->stage_n) return CT_OK;
  float *p = realloc(st->stage, (size_t)n * sizeof *p);
  if (!p)
    return ct__fail(CT_ERR_NOMEM, "MPI: out of host memory staging %lld floats on rank %d",
                    (long long)n, c->rank);
  st->stage = p;
  st->stage_n = (size_t)n;
  return CT_OK;
}

static ct_status ct__mpi_count(ct_collective *c, int64_t n, const char *what) {
  if (n > INT_MAX)
    return ct__fail(CT_ERR_RANGE, "MPI %s: %lld floats exceed MPI's count limit of %d", what,
                    (long long)n, INT_MAX);
  return CT_OK;
}

static ct_status ct__mpi_allreduce(ct_collective *c, void *buf, int64_t n, bool mean) {
  ct__mpi_state *st = c->impl;
  CT__TRY(ct__mpi_count(c, n, "all-reduce"));
  CT__TRY(ct__mpi_stage(c, st, n));
  const ct_backend *be = c->be;
  CT__TRY(be->sync(c->ctx));
  CT__TRY(be->download(c->ctx, st->stage, buf, (size_t)n * sizeof(float)));
  MPI_Request req;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, st->stage, (int)n, MPI_FLOAT, MPI_SUM, st->comm, &req);
  CT__TRY(ct__mpi_wait(c, &req, rc, "all-reduce"));
  if (mean) {
    float inv = 1.0f / (float)c->size;
    for (int64_t i = 0; i < n; i++) st->stage[i] *= inv;
  }
  return be->upload(c->ctx, buf, st->stage, (size_t)n * sizeof(float));
}

static ct_status ct__mpi_broadcast(ct_collective *c, void *buf, int64_t n) {
  ct__mpi_state *st = c->impl;
  CT__TRY(ct__mpi_count(c, n, "broadcast"));
  CT__TRY(ct__mpi_stage(c, st, n));
  const ct_backend *be = c->be;
  CT__TRY(be->sync(c->ctx));
  if (c->rank == 0) CT__TRY(be->download(c->ctx, st->stage, buf, (size_t)n * sizeof(float)));
  MPI_Request req;
  int rc = MPI_Ibcast(st->stage, (int)n, MPI_FLOAT, 0, st->comm, &req);
  CT__TRY(ct__mpi_wait(c, &req, rc, "broadcast"));
  return c->rank == 0 ? CT_OK : be->upload(c->ctx, buf, st->stage, (size_t)n * sizeof(float));
}

static ct_status ct__mpi_barrier(ct_collective *c) {
  ct__mpi_state *st = c->impl;
  MPI_Request req;
  int rc = MPI_Ibarrier(st->comm, &req);
  return ct__mpi_wait(c, &req, rc, "barrier");
}

static ct_status ct__mpi_sum_host(ct_collective *c, double *x, int n) {
  ct__mpi_state *st = c->impl;
  MPI_Request req;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, st->comm, &req);
  return ct__mpi_wait(c, &req, rc, "sum");
}

static ct_status ct__mpi_broadcast_host(ct_collective *c, void *bytes, size_t n, int root) {
  ct__mpi_state *st = c->impl;
  if (n > INT_MAX)
    return ct__fail(CT_ERR_RANGE, "MPI broadcast: %zu bytes exceed MPI's count limit", n);
  MPI_Request req;
  int rc = MPI_Ibcast(bytes, (int)n, MPI_BYTE, root, st->comm, &req);
  return ct__mpi_wait(c, &req, rc, "broadcast");
}

static ct_status ct__mpi_min_int(ct_collective *c, int *x) {
  ct__mpi_state *st = c->impl;
  MPI_Request req;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, x, 1, MPI_INT, MPI_MIN, st->comm, &req);
  return ct__mpi_wait(c, &req, rc, "agreement");
}

static void ct__mpi_close(ct_collective *c) {
  ct__mpi_state *st = c->impl;
  if (!st) return;
  int finalized = 0;
  if (!c->broken) {
    MPI_Comm_free(&st->comm);
    if (st->finalize && MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Finalize();
  }
  free(st->stage);
  free(st);
  c->impl = NULL;
}

static const ct__collective_ops ct__mpi_ops = {
    ct__mpi_allreduce, ct__mpi_broadcast, ct__mpi_barrier, ct__mpi_sum_host,
    ct__mpi_broadcast_host, ct__mpi_min_int, ct__mpi_close};

ct_status ct__mpi_open(ct_collective *c) {
  ct_status s = ct__mpi_load();
  if (s != CT_OK) return ct__fail(s, "collective mpi: %s", ct_last_error());
  ct__mpi_state *st = calloc(1, sizeof *st);
  if (!st) return ct__fail(CT_ERR_NOMEM, "collective mpi: out of host memory");
  int started = 0, provided = 0;
  MPI_Initialized(&started);
  if (!started) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) {
      free(st);
      return ct__fail(CT_ERR_STATE, "collective mpi: MPI was finalized already in this process "
                      "(it cannot start twice)");
    }
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) {
      free(st);
      return ct__fail(CT_ERR_BACKEND_ABSENT, "collective mpi: MPI_Init_thread failed (%d)", rc);
    }
    st->finalize = true;
  }
  /* errors on ctml's own communicator are returned, not fatal; MPI_COMM_WORLD keeps its handler */
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &st->comm);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(st->comm, MPI_ERRORS_RETURN);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(st->comm, &c->rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(st->comm, &c->size);
  c->ops = &ct__mpi_ops;
  c->impl = st;
  if (rc != MPI_SUCCESS) {
    s = ct__mpi_error(c, rc, "start");
    c->broken = false;
    if (st->finalize) MPI_Finalize();
    free(st);
    c->impl = NULL;
    return s;
  }
  return CT_OK;
}
