/* SPDX-License-Identifier: MIT */
/* Benchmark (not a test): the OpenCL backend's two matrix-product families
 * (register-blocked and local-memory tiled) against OpenBLAS cblas_sgemm on the
 * host, in the three layouts linear uses (nn: y = x W, nt: dx = dy W^T, tn:
 * dW = x^T dy), at a few sizes. Prints GFLOP/s, the median of several timed
 * runs after a warm-up, and the largest difference from OpenBLAS relative to
 * the largest |C|. Usage: bench_gemm_opencl [runs] (default 5). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#include "ctml/ctml.h"
#include "ocl_internal.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void fill(float *x, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
}

#define CHECK(expr)                                                              \
  do {                                                                           \
    ct_status s_ = (expr);                                                       \
    if (s_ != CT_OK) {                                                           \
      fprintf(stderr, "bench: %s: %s (%s)\n", #expr, ct_last_error(), ct_status_name(s_)); \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

typedef struct layout {
  const char *name;
  bool ta, tb;
} layout;

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : 5;
  if (runs < 1 || runs > 100) {
    fprintf(stderr, "usage: bench_gemm_opencl [runs 1..100]\n");
    return 2;
  }
  const ct_backend *be;
  CHECK(ct_backend_get("opencl", &be));
  ct__ocl *c = ct__backend_ctx(be);
  for (int i = 0; i < ct_backend_count(); i++) {
    ct_backend_info info;
    if (ct_backend_info_get(i, &info) == CT_OK && !strcmp(info.name, "opencl"))
      printf("device: %s\n", info.device);
  }
  printf("linear uses: %s; host OpenBLAS: %s\n",
         c->gemm == CT__GEMM_LOCAL ? "local-tiled" : "register-blocked", openblas_get_config());
  printf("median of %d runs after one warm-up; GFLOP/s (max |diff| / max |C| vs OpenBLAS)\n\n",
         runs);
  char reg[32];
  snprintf(reg, sizeof reg, "register 4x%d", c->rb_width);
  printf("%-20s %-6s %22s %22s %10s\n", "M x N x K", "layout", reg, "local 64x64", "OpenBLAS");
  const int64_t sizes[][3] = {{256, 256, 256}, {512, 512, 512}, {1024, 1024, 1024},
                              {1000, 777, 333}};
  const layout layouts[] = {{"nn", false, false}, {"nt", false, true}, {"tn", true, false}};
  double *t = malloc((size_t)runs * sizeof *t);
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    int64_t M = sizes[si][0], N = sizes[si][1], K = sizes[si][2];
    size_t na = (size_t)(M * K), nb = (size_t)(K * N), nc = (size_t)(M * N);
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4), *R = malloc(nc * 4);
    if (!A || !B || !C || !R) return 1;
    fill(A, na, 1);
    fill(B, nb, 2);
    void *dA, *dB, *dC;
    CHECK(be->alloc(c, na * 4, &dA));
    CHECK(be->alloc(c, nb * 4, &dB));
    CHECK(be->alloc(c, nc * 4, &dC));
    CHECK(be->upload(c, dA, A, na * 4));
    CHECK(be->upload(c, dB, B, nb * 4));
    double flops = 2.0 * (double)M * (double)N * (double)K;
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++) {
      const layout *L = &layouts[li];
      /* the same buffers read in the layout: A is M x K or K x M, B is K x N or N x K */
      int lda = L->ta ? (int)M : (int)K, ldb = L->tb ? (int)K : (int)N;
      for (int r = -1; r < runs; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, L->ta ? CblasTrans : CblasNoTrans,
                    L->tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A, lda, B,
                    ldb, 0.0f, R, (int)N);
        if (r >= 0) t[r] = now() - t0;
      }
      double blas = flops / median(t, runs) / 1e9, refmax = 0;
      for (size_t i = 0; i < nc; i++) refmax = fmax(refmax, fabs((double)R[i]));
      char cell[2][40];
      for (int kind = 0; kind < 2; kind++) {
        if (!ct__ocl_gemm_usable(c, (ct__ocl_gemm_kind)kind)) {
          snprintf(cell[kind], sizeof cell[kind], "unusable");
          continue;
        }
        for (int r = -1; r < runs; r++) {
          double t0 = now();
          CHECK(ct__ocl_gemm(c, (ct__ocl_gemm_kind)kind, L->ta, L->tb, M, N, K, dA, dB, NULL,
                             0.0f, dC));
          CHECK(be->sync(c));
          if (r >= 0) t[r] = now() - t0;
        }
        CHECK(be->download(c, C, dC, nc * 4));
        double err = 0;
        for (size_t i = 0; i < nc; i++) err = fmax(err, fabs((double)C[i] - (double)R[i]));
        snprintf(cell[kind], sizeof cell[kind], "%8.1f (%.1e)", flops / median(t, runs) / 1e9,
                 err / refmax);
      }
      char size[32];
      snprintf(size, sizeof size, "%lld x %lld x %lld", (long long)M, (long long)N, (long long)K);
      printf("%-20s %-6s %22s %22s %10.1f\n", size, L->name, cell[0], cell[1], blas);
      fflush(stdout);
    }
    be->release(c, dA);
    be->release(c, dB);
    be->release(c, dC);
    free(A);
    free(B);
    free(C);
    free(R);
  }
  free(t);
  return 0;
}
