/* SPDX-License-Identifier: MIT */
/* Data-parallel training under mpirun (registered by tests/dp.cmake):
 *   test_dp equiv BACKEND   N ranks at batch b against one trainer at batch
 *                           N b on the same rows (on rank 0), 20 AdamW steps:
 *                           parameters identical on every rank after every
 *                           step, losses and parameters within tolerance;
 *   test_dp fail BACKEND    rank 1's batch holds a token id out of range: every
 *                           rank's step fails naming rank 1;
 *   test_dp timeout         rank 1 joins a barrier late: rank 0's fails within
 *                           its timeout (2 s), naming the wait;
 *   test_dp bench BACKEND N REPS   times the gradient all-reduce (mean) of N
 *                           floats of a backend buffer, as a step does it
 *                           (a measurement for docs/scaling.md, not a test). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "ctml/ctml.h"
#include "collective_impl.h"

#define STEPS 20
#define B 2
#define T 8
/* Stated tolerances: the mean of N batch means differs from the mean over the
 * whole batch by float rounding (sum order), which AdamW's normalised step
 * can amplify to a few ulps of the learning rate per step on small gradients. */
#define LOSS_TOL 1e-5
#define PARAM_TOL 1e-4

static int rank_ = 0;
#define FAIL(...)                                      \
  do {                                                 \
    fprintf(stderr, "rank %d: FAIL: ", rank_);         \
    fprintf(stderr, __VA_ARGS__);                      \
    fprintf(stderr, " (%s)\n", ct_last_error());       \
    return 1;                                          \
  } while (0)
#define CHECK(expr)                                    \
  do {                                                 \
    if ((expr) != CT_OK) FAIL("%s", #expr);            \
  } while (0)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const ct_gpt_config cfg = {.vocab = 11, .block = T, .layers = 1, .heads = 2, .width = 8};

/* All parameters of g, in order, into buf (returns the count). */
static int64_t params_of(const ct_gpt *g, float *buf) {
  int64_t at = 0;
  for (int i = 0; i < ct_gpt_param_count(g); i++) {
    const ct_param *p = ct_gpt_param(g, i);
    ct_param_get(p, buf + at, ct_param_numel(p));
    at += ct_param_numel(p);
  }
  return at;
}

static int make_trainer(const ct_backend *be, int64_t batch, ct_gpt **g, ct_morphism **loss,
                        ct_trainer **t) {
  ct_optimizer opt;
  CHECK(ct_optimizer_adamw(&opt, 3e-3f));
  opt.clip_norm = 1.0f;
  CHECK(ct_gpt_new(g, &cfg, 7));
  CHECK(ct_gpt_loss(loss, *g, batch, T));
  CHECK(ct_trainer_new(t, *loss, be, &opt));
  return 0;
}

/* Rows of step k: N B windows of a fixed token sequence. */
static void rows_of(int step, int n_rows, int32_t *in, int32_t *tg) {
  for (int r = 0; r < n_rows; r++)
    for (int j = 0; j < T; j++) {
      unsigned x = (unsigned)(step * 131 + r * 17 + j * 7);
      in[r * T + j] = (int32_t)((x * 2654435761u >> 7) % 11u);
      tg[r * T + j] = (int32_t)(((x + 7) * 2654435761u >> 7) % 11u);
    }
}

static int equiv(ct_collective *c, const ct_backend *be, bool fail) {
  int N = ct_collective_size(c), r = ct_collective_rank(c);
  ct_gpt *g, *g1 = NULL;
  ct_morphism *loss, *loss1 = NULL;
  ct_trainer *t, *t1 = NULL;
  if (make_trainer(be, B, &g, &loss, &t)) return 1;
  if (r == 0 && !fail && make_trainer(be, (int64_t)N * B, &g1, &loss1, &t1)) return 1;
  CHECK(ct_trainer_set_collective(t, c));
  int64_t numel = ct_gpt_numel(g);
  float *mine = malloc((size_t)numel * sizeof *mine), *root = malloc((size_t)numel * sizeof *root);
  size_t rows = (size_t)N * B * T;
  int32_t *in = malloc(rows * sizeof *in), *tg = malloc(rows * sizeof *tg);
  double worst_loss = 0.0;
  for (int k = 0; k < STEPS; k++) {
    rows_of(k, N * B, in, tg);
    if (fail && r == 1 && k == 3) in[B * T + 5] = 99; /* rank 1: outside [0, 11) */
    /* an id out of range is found by the forward, inside the step */
    CHECK(ct_trainer_set_input(t, 0, in + r * B * T, B * T));
    CHECK(ct_trainer_set_input(t, 1, tg + r * B * T, B * T));
    ct_status s = ct_trainer_step(t, 1);
    if (fail) {
      if (k < 3 && s != CT_OK) FAIL("step %d failed early", k + 1);
      if (k == 3) {
        if (s == CT_OK || !strstr(ct_last_error(), "rank 1 of"))
          FAIL("step 4 returned %s, not an error naming rank 1", ct_status_name(s));
        printf("rank %d: step 4 failed on every rank: %s\n", r, ct_last_error());
        break;
      }
      continue;
    }
    CHECK(s);
    float l;
    CHECK(ct_trainer_last_loss(t, &l));
    /* identical parameters on every rank after every step */
    CHECK(ct_trainer_store_params(t));
    params_of(g, mine);
    memcpy(root, mine, (size_t)numel * sizeof *root);
    CHECK(ct_collective_broadcast_host(c, root, (size_t)numel * sizeof *root));
    ct_status same = memcmp(root, mine, (size_t)numel * sizeof *root) ? CT_ERR_INTERNAL : CT_OK;
    if (ct_collective_agree(c, same) != CT_OK)
      FAIL("parameters differ between ranks after step %d", k + 1);
    if (r == 0) {
      CHECK(ct_trainer_set_input(t1, 0, in, (int64_t)N * B * T));
      CHECK(ct_trainer_set_input(t1, 1, tg, (int64_t)N * B * T));
      CHECK(ct_trainer_step(t1, 1));
      float l1;
      CHECK(ct_trainer_last_loss(t1, &l1));
      double d = fabs((double)l - (double)l1);
      if (d > worst_loss) worst_loss = d;
      if (d > LOSS_TOL) FAIL("step %d: loss %.9g on %d ranks, %.9g on one", k + 1, l, N, l1);
    }
  }
  if (r == 0 && !fail) {
    CHECK(ct_trainer_store_params(t1));
    float *ref = malloc((size_t)numel * sizeof *ref);
    params_of(g1, ref);
    double worst = 0.0;
    for (int64_t i = 0; i < numel; i++) worst = fmax(worst, fabs((double)mine[i] - ref[i]));
    printf("%s: %d ranks x batch %d vs 1 x batch %d, %d AdamW steps: parameters identical on "
           "every rank after every step; max |loss diff| %.3g (tolerance %g), max |param diff| "
           "%.3g (tolerance %g)\n", ct_backend_name(be), N, B, N * B, STEPS, worst_loss, LOSS_TOL,
           worst, PARAM_TOL);
    if (worst > PARAM_TOL) FAIL("parameters differ by %g", worst);
    free(ref);
  }
  free(mine);
  free(root);
  free(in);
  free(tg);
  ct_trainer_free(t);
  ct_trainer_free(t1);
  ct_morphism_free(loss);
  ct_morphism_free(loss1);
  ct_gpt_free(g);
  ct_gpt_free(g1);
  return 0;
}

static int timeout_test(ct_collective *c) {
  CHECK(ct_collective_set_timeout(c, 2.0));
  if (ct_collective_rank(c) == 1) {
    sleep(6);
    return 0;
  }
  double t0 = now();
  ct_status s = ct_collective_barrier(c);
  double dt = now() - t0;
  if (s == CT_OK) FAIL("the barrier completed without rank 1");
  if (dt > 4.0) FAIL("the barrier failed after %.1f s, past its 2 s timeout", dt);
  printf("rank 0: barrier failed after %.1f s: %s\n", dt, ct_last_error());
  if (!ct_collective_broken(c)) FAIL("the collective is not marked broken");
  return 0;
}

static int bench(ct_collective *c, const ct_backend *be, long n, int reps) {
  void *ctx = ct__backend_ctx(be), *buf;
  CHECK(be->alloc(ctx, (size_t)n * sizeof(float), &buf));
  CHECK(be->fill(ctx, buf, 1.0f, n));
  CHECK(ct__collective_allreduce(c, buf, n, true)); /* warm-up */
  CHECK(ct_collective_barrier(c));
  double t0 = now();
  for (int k = 0; k < reps; k++) CHECK(ct__collective_allreduce(c, buf, n, true));
  double ms = 1e3 * (now() - t0) / reps;
  if (ct_collective_rank(c) == 0)
    printf("%s: all-reduce (mean) of %ld floats (%.1f MB) on %d ranks: %.3f ms (%.2f GB/s "
           "algorithm bandwidth)\n", ct_backend_name(be), n, 4e-6 * (double)n,
           ct_collective_size(c), ms, 4e-6 * (double)n / ms);
  be->release(ctx, buf);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_dp equiv|fail BACKEND | test_dp timeout\n");
    return 2;
  }
  const char *be_name = argc > 2 ? argv[2] : "cpu";
  const ct_backend *be;
  if (ct_backend_get(be_name, &be) != CT_OK) {
    printf("backend %s absent, skipped: %s\n", be_name, ct_last_error());
    return 0;
  }
  ct_collective *c;
  CHECK(ct_collective_open(&c, "mpi", be));
  rank_ = ct_collective_rank(c);
  int rc;
  if (!strcmp(argv[1], "timeout")) rc = timeout_test(c);
  else if (!strcmp(argv[1], "bench"))
    rc = bench(c, be, argc > 3 ? atol(argv[3]) : 1000000, argc > 4 ? atoi(argv[4]) : 20);
  else rc = equiv(c, be, !strcmp(argv[1], "fail"));
  if (rc == 0 && !ct_collective_broken(c)) printf("rank %d: %s passed\n", rank_, argv[1]);
  ct_collective_close(c);
  return rc;
}
