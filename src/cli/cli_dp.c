/* SPDX-License-Identifier: MIT */
/* Data-parallel ctml train over a collective (see cli.h). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include "cli.h"

int cli_dp_arg(const char *cmd, int argc, char **argv, int *i, const char **name) {
  int r = cli_opt(cmd, argc, argv, i, "--collective", name);
  if (r <= 0) return r;
  static const char *const names[] = {"auto", "none", "mpi", "nccl"};
  for (size_t k = 0; k < sizeof names / sizeof *names; k++)
    if (!strcmp(*name, names[k])) return 1;
  cli_error(cmd, CLI_USAGE, "--collective: '%s' is not auto, none, mpi or nccl", *name);
  return -1;
}

/* The launcher's rank within this node, or -1. */
static int cli__local_rank(void) {
  static const char *const keys[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                                     "SLURM_LOCALID", "PMIX_LOCAL_RANK"};
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
    const char *v = getenv(keys[k]);
    char *end;
    if (v && *v) {
      long x = strtol(v, &end, 10);
      if (!*end && x >= 0 && x < 1 << 20) return (int)x;
    }
  }
  return -1;
}

void cli_dp_select_device(const char *name, const char *backend) {
  int size, rank;
  ct_collective_launched(&size, &rank);
  const char *env = getenv("CTML_CUDA_DEVICE");
  if (!strcmp(name, "none") || (size == 1 && strcmp(name, "nccl")) || (env && *env) ||
      (strcmp(backend, "cuda") && strcmp(backend, "auto")))
    return;
  int local = cli__local_rank(), idx = -1, count = 0;
  if (local < 0 || ct_backend_index("cuda", &idx) != CT_OK ||
      ct_backend_devices(idx, NULL, 0, &count) != CT_OK || count < 1)
    return;
  char dev[16];
  snprintf(dev, sizeof dev, "%d", local % count);
  (void)ct_backend_set_option("cuda", "device", dev);
}

int cli_dp_start(const char *cmd, cli_dp *dp, const char *name, ct_trainer *t,
                  const ct_backend *be, int64_t B, int64_t T, int ck_world, bool quiet) {
  memset(dp, 0, sizeof *dp);
  dp->size = 1;
  int launched, rank;
  ct_collective_launched(&launched, &rank);
  if (!strcmp(name, "auto")) {
    if (launched == 1) name = "none";
    else {
      ct_collective_info info;
      name = !strcmp(ct_backend_name(be), "cuda") &&
                     ct_collective_info_get("nccl", &info) == CT_OK && info.present
                 ? "nccl" : "mpi";
    }
  }
  if (!strcmp(name, "none")) {
    if (ck_world > 1) {
      return cli_error(cmd, CLI_USAGE, "the checkpoint was trained on %d ranks; resume it under "
                       "a launcher with the same number (mpirun -np %d ctml train --resume ...)",
                       ck_world, ck_world);
    }
    return CLI_OK;
  }
  if (ct_collective_open(&dp->c, name, be) != CT_OK) {
    cli_error(cmd, CLI_FAIL, "--collective %s: %s%s", name, ct_last_error(),
              launched > 1 ? "" : " (not started by a launcher such as mpirun)");
    return CLI_FAIL;
  }
  dp->rank = ct_collective_rank(dp->c);
  dp->size = ct_collective_size(dp->c);
  int size = dp->size;
  if (ck_world > 0 && ck_world != size) {
    cli_dp_end(dp);
    return cli_error(cmd, CLI_USAGE, "the checkpoint was trained on %d rank%s, this job has %d: "
                     "resume with the same number (mpirun -np %d); the batches and their order "
                     "depend on it", ck_world, cli_s(ck_world), size, ck_world);
  }
  size_t rows = (size_t)(dp->size * B * T);
  dp->in_all = malloc(rows * sizeof *dp->in_all);
  dp->tg_all = malloc(rows * sizeof *dp->tg_all);
  if (!dp->in_all || !dp->tg_all) {
    cli_error(cmd, CLI_FAIL, "rank %d: out of host memory for %zu rows", dp->rank, rows);
    cli_dp_end(dp);
    return CLI_FAIL;
  }
  ct_status s = ct_trainer_set_collective(t, dp->c);
  s = ct_collective_agree(dp->c, s);
  if (s != CT_OK) {
    cli_lib_error(cmd, "data-parallel start");
    cli_dp_end(dp);
    return CLI_FAIL;
  }
  if (dp->rank != 0 && !freopen("/dev/null", "w", stdout)) {
    cli_error(cmd, CLI_FAIL, "rank %d: cannot send stdout to /dev/null", dp->rank);
    cli_dp_end(dp);
    return CLI_FAIL;
  }
  if (!quiet)
    printf("data-parallel: %d rank%s over %s; rank r trains on rows [r*%lld, (r+1)*%lld) of "
           "the %lld drawn per step (effective batch %lld)\n", dp->size, cli_s(dp->size), name,
           (long long)B,
           (long long)B, (long long)(dp->size * B), (long long)(dp->size * B));
  return CLI_OK;
}

ct_status cli_dp_batch(cli_dp *dp, ct_trainer *t, uint64_t *rng, const int32_t *ids, int64_t n,
                       int64_t B, int64_t T, int32_t *in, int32_t *tg) {
  ct_status s;
  if (!dp->c) {
    s = ct_batch_draw(rng, ids, n, B, T, in, tg);
  } else {
    s = ct_batch_draw(rng, ids, n, dp->size * B, T, dp->in_all, dp->tg_all);
    if (s == CT_OK) {
      memcpy(in, dp->in_all + dp->rank * B * T, (size_t)(B * T) * sizeof *in);
      memcpy(tg, dp->tg_all + dp->rank * B * T, (size_t)(B * T) * sizeof *tg);
    }
  }
  if (s == CT_OK) s = ct_trainer_set_input(t, 0, in, B * T);
  if (s == CT_OK) s = ct_trainer_set_input(t, 1, tg, B * T);
  return dp->c ? ct_collective_agree(dp->c, s) : s;
}

bool cli_dp_stop(const char *cmd, cli_dp *dp, volatile sig_atomic_t *interrupted, int *code) {
  if (!dp->c) return *interrupted != 0;
  double any = *interrupted ? 1.0 : 0.0;
  if (ct_collective_sum_host(dp->c, &any, 1) != CT_OK) {
    cli_lib_error(cmd, "data-parallel");
    *code = CLI_FAIL;
    return true;
  }
  if (any > 0.0) *interrupted = 1;
  return any > 0.0;
}

bool cli_dp_root(const cli_dp *dp) { return dp->rank == 0; }

void cli_dp_end(cli_dp *dp) {
  if (dp->c) {
    fflush(stdout);
    ct_collective_close(dp->c);
  }
  free(dp->in_all);
  free(dp->tg_all);
  memset(dp, 0, sizeof *dp);
  dp->size = 1;
}
