/* SPDX-License-Identifier: MIT */
/* Collectives by name, and the operations common to every implementation. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "collective_impl.h"

#define CT__DEFAULT_TIMEOUT 120.0

ct_status ct__collective_break(ct_collective *c, ct_status s) {
  c->broken = true;
  return s;
}

static ct_status ct__usable(const ct_collective *c, const char *fn) {
  if (!c) return ct__fail(CT_ERR_INVALID_ARG, "%s: collective is NULL", fn);
  if (c->broken)
    return ct__fail(CT_ERR_STATE, "%s: the %s collective of rank %d of %d is broken by an "
                    "earlier failure (the ranks are out of step); stop and restart the job", fn,
                    c->name, c->rank, c->size);
  return CT_OK;
}

ct_status ct_collective_info_get(const char *name, ct_collective_info *out) {
  CT__NEED(name, "ct_collective_info_get");
  CT__NEED(out, "ct_collective_info_get");
  memset(out, 0, sizeof *out);
  ct_status s;
  if (!strcmp(name, "mpi")) {
    out->name = "mpi";
    s = ct__mpi_probe(out->reason, sizeof out->reason);
  } else if (!strcmp(name, "nccl")) {
    out->name = "nccl";
    s = ct__nccl_probe(out->reason, sizeof out->reason);
  } else {
    return ct__fail(CT_ERR_INVALID_ARG, "ct_collective_info_get: unknown collective '%s' (mpi, "
                    "nccl)", name);
  }
  out->built = s != CT_ERR_UNSUPPORTED;
  out->present = s == CT_OK;
  return CT_OK;
}

/* A positive integer environment variable, or -1. */
static long ct__env_int(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) return -1;
  char *end;
  long x = strtol(v, &end, 10);
  return *end || x < 0 || x > INT_MAX ? -1 : x;
}

void ct_collective_launched(int *size, int *rank) {
  static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                                      "SLURM_NTASKS"};
  static const char *const ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK",
                                      "SLURM_PROCID"};
  int sz = 1, rk = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    long s = ct__env_int(sizes[i]), r = ct__env_int(ranks[i]);
    if (s >= 1 && r >= 0 && r < s) {
      sz = (int)s;
      rk = (int)r;
      break;
    }
  }
  if (size) *size = sz;
  if (rank) *rank = rk;
}

/* One process without MPI: every operation is the identity. NCCL with one rank
 * uses it for its bootstrap, so a one-GPU check needs no MPI installation. */
static ct_status ct__local_allreduce(ct_collective *c, void *buf, int64_t n, bool mean) {
  return CT_OK;
}
static ct_status ct__local_broadcast(ct_collective *c, void *buf, int64_t n) { return CT_OK; }
static ct_status ct__local_barrier(ct_collective *c) { return CT_OK; }
static ct_status ct__local_sum_host(ct_collective *c, double *x, int n) { return CT_OK; }
static ct_status ct__local_broadcast_host(ct_collective *c, void *bytes, size_t n, int root) {
  return CT_OK;
}
static ct_status ct__local_min_int(ct_collective *c, int *x) { return CT_OK; }
static void ct__local_close(ct_collective *c) {}
static const ct__collective_ops ct__local_ops = {
    ct__local_allreduce, ct__local_broadcast, ct__local_barrier, ct__local_sum_host,
    ct__local_broadcast_host, ct__local_min_int, ct__local_close};

ct_status ct_collective_open(ct_collective **out, const char *name, const ct_backend *backend) {
  CT__NEED(out, "ct_collective_open");
  *out = NULL;
  CT__NEED(name, "ct_collective_open");
  CT__NEED(backend, "ct_collective_open");
  bool nccl = !strcmp(name, "nccl");
  if (!nccl && strcmp(name, "mpi"))
    return ct__fail(CT_ERR_INVALID_ARG, "ct_collective_open: unknown collective '%s' (mpi, nccl)",
                    name);
  if (nccl && strcmp(ct_backend_name(backend), "cuda"))
    return ct__fail(CT_ERR_INVALID_ARG, "ct_collective_open: nccl reduces cuda buffers; the "
                    "backend is '%s' (use mpi)", ct_backend_name(backend));
  double timeout = CT__DEFAULT_TIMEOUT;
  const char *env = getenv("CTML_COLLECTIVE_TIMEOUT");
  if (env && *env) {
    char *end;
    timeout = strtod(env, &end);
    if (*end || !(timeout > 0.0) || !isfinite(timeout))
      return ct__fail(CT_ERR_INVALID_ARG, "ct_collective_open: CTML_COLLECTIVE_TIMEOUT '%s' is "
                      "not a number of seconds > 0", env);
  }
  ct_collective *mpi = calloc(1, sizeof *mpi);
  if (!mpi) return ct__fail(CT_ERR_NOMEM, "ct_collective_open: out of host memory");
  mpi->be = backend;
  mpi->ctx = ct__backend_ctx(backend);
  mpi->timeout = timeout;
  mpi->name = "mpi";
  ct_status s = ct__mpi_open(mpi);
  int launched;
  ct_collective_launched(&launched, NULL);
  if (s != CT_OK && nccl && launched == 1) {
    mpi->name = "local";
    mpi->ops = &ct__local_ops;
    mpi->rank = 0;
    mpi->size = 1;
    s = CT_OK;
  }
  if (s != CT_OK) {
    free(mpi);
    return s;
  }
  if (!nccl) {
    *out = mpi;
    return CT_OK;
  }
  ct_collective *c = calloc(1, sizeof *c);
  if (!c) {
    ct_collective_close(mpi);
    return ct__fail(CT_ERR_NOMEM, "ct_collective_open: out of host memory");
  }
  *c = *mpi;
  c->ops = NULL;
  c->impl = NULL;
  c->name = "nccl";
  s = ct__nccl_open(c, mpi);
  if (s != CT_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ct_last_error());
    free(c);
    ct_collective_close(mpi);
    return ct__fail(s, "%s", msg);
  }
  c->boot = mpi;
  *out = c;
  return CT_OK;
}

ct_status ct_collective_close(ct_collective *c) {
  if (!c) return CT_OK;
  if (c->boot) c->boot->broken |= c->broken;
  if (c->ops && c->ops->close) c->ops->close(c);
  ct_collective *boot = c->boot;
  free(c);
  return ct_collective_close(boot);
}

const char *ct_collective_name(const ct_collective *c) { return c ? c->name : NULL; }
int ct_collective_rank(const ct_collective *c) { return c ? c->rank : 0; }
int ct_collective_size(const ct_collective *c) { return c ? c->size : 1; }
const ct_backend *ct_collective_backend(const ct_collective *c) { return c ? c->be : NULL; }
bool ct_collective_broken(const ct_collective *c) { return c && c->broken; }

ct_status ct_collective_set_timeout(ct_collective *c, double seconds) {
  CT__NEED(c, "ct_collective_set_timeout");
  if (!(seconds > 0.0) || !isfinite(seconds))
    return ct__fail(CT_ERR_INVALID_ARG, "ct_collective_set_timeout: %g s must be finite and > 0",
                    seconds);
  c->timeout = seconds;
  if (c->boot) c->boot->timeout = seconds;
  return CT_OK;
}

ct_status ct_collective_barrier(ct_collective *c) {
  CT__TRY(ct__usable(c, "ct_collective_barrier"));
  return c->ops->barrier(c);
}

ct_status ct_collective_sum_host(ct_collective *c, double *x, int n) {
  CT__TRY(ct__usable(c, "ct_collective_sum_host"));
  if (n < 0 || (n > 0 && !x))
    return ct__fail(CT_ERR_INVALID_ARG, "ct_collective_sum_host: %d values at %p", n, (void *)x);
  return n ? c->ops->sum_host(c, x, n) : CT_OK;
}

ct_status ct_collective_broadcast_host(ct_collective *c, void *bytes, size_t n) {
  CT__TRY(ct__usable(c, "ct_collective_broadcast_host"));
  if (n > 0 && !bytes)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_collective_broadcast_host: %zu bytes at NULL", n);
  return n ? c->ops->broadcast_host(c, bytes, n, 0) : CT_OK;
}

ct_status ct_collective_agree(ct_collective *c, ct_status mine) {
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", mine == CT_OK ? "" : ct_last_error());
  CT__TRY(ct__usable(c, "ct_collective_agree"));
  /* the lowest failing rank, then its status and message from it */
  int first = mine == CT_OK ? INT_MAX : c->rank;
  CT__TRY(c->ops->min_int(c, &first));
  if (first == INT_MAX) return CT_OK;
  int code = (int)mine;
  CT__TRY(c->ops->broadcast_host(c, &code, sizeof code, first));
  CT__TRY(c->ops->broadcast_host(c, msg, sizeof msg, first));
  msg[sizeof msg - 1] = '\0';
  return ct__fail((ct_status)code, "rank %d of %d: %s", first, c->size, msg);
}

ct_status ct__collective_allreduce(ct_collective *c, void *buf, int64_t n, bool mean) {
  CT__TRY(ct__usable(c, "all-reduce"));
  return n > 0 ? c->ops->allreduce(c, buf, n, mean) : CT_OK;
}

ct_status ct__collective_broadcast(ct_collective *c, void *buf, int64_t n) {
  CT__TRY(ct__usable(c, "broadcast"));
  return n > 0 ? c->ops->broadcast(c, buf, n) : CT_OK;
}

/* Stand-ins when an implementation is not built. */
#ifndef CTML_WITH_MPI
ct_status ct__mpi_probe(char *reason, size_t len) {
  snprintf(reason, len, "not built: ctml was configured without MPI (CTML_MPI=OFF, or no mpi.h "
           "found; install libopenmpi-dev)");
  return CT_ERR_UNSUPPORTED;
}
ct_status ct__mpi_open(ct_collective *c) {
  char r[256];
  ct__mpi_probe(r, sizeof r);
  return ct__fail(CT_ERR_BACKEND_ABSENT, "collective mpi: %s", r);
}
#endif
#ifndef CTML_WITH_NCCL
ct_status ct__nccl_probe(char *reason, size_t len) {
  snprintf(reason, len, "not built: ctml was configured without NCCL (it needs the CUDA backend "
           "and nccl.h)");
  return CT_ERR_UNSUPPORTED;
}
ct_status ct__nccl_open(ct_collective *c, ct_collective *mpi) {
  char r[256];
  ct__nccl_probe(r, sizeof r);
  return ct__fail(CT_ERR_BACKEND_ABSENT, "collective nccl: %s", r);
}
#endif
