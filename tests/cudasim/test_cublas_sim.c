/* SPDX-License-Identifier: MIT */
/* cudasim's cuBLAS stand-ins against naive loops written here from cuBLAS's
 * definitions, over every case the stand-ins accept, and every documented
 * invalid argument. Column-major throughout:
 *   C[i + j ldc] = alpha sum_l opA(i, l) opB(l, j) + beta C[i + j ldc],
 *   opA(i, l) = transa == N ? A[i + l lda] : A[l + i lda],
 * and C (or y) is not read when beta is 0: the tests put NaN there.
 *
 * Tolerance: both sides accumulate each dot product in double (products of
 * floats are exact in double), so they differ only by the stand-in's four
 * float roundings (the dot product, alpha dot, beta c, the sum), each at most
 * 2^-24 of the magnitude |alpha| sum |a b| + |beta c|: 2^-22 in all. The tests
 * allow 4 FLT_EPSILON = 2^-21 (about 4.8e-7) of that magnitude: twice the
 * bound, far tighter than 1e-5, and relative to the magnitude rather than to
 * the result so that cancellation does not inflate it. */
#include "../ct_test.h"

#include <float.h>
#include <spawn.h>
#include <sys/wait.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include "cudasim.h"

#define TOL (4 * FLT_EPSILON)

static const cublasOperation_t OPS[] = {CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_OP_C};

static const char *op_name(cublasOperation_t op) {
  return op == CUBLAS_OP_N ? "N" : op == CUBLAS_OP_T ? "T" : op == CUBLAS_OP_C ? "C" : "?";
}

#define ASSERT_BLAS(expr, want)                                                          \
  do {                                                                                   \
    cublasStatus_t st_ = (expr);                                                         \
    if (st_ != (want))                                                                   \
      fail_msg("%s -> %s, expected %s", #expr, cublasGetStatusName(st_),                 \
               cublasGetStatusName(want));                                               \
  } while (0)
#define ASSERT_CUDA(expr)                                                                \
  do {                                                                                   \
    cudaError_t e_ = (expr);                                                             \
    if (e_ != cudaSuccess) fail_msg("%s -> %s", #expr, cudaGetErrorName(e_));            \
  } while (0)

/* ---- device buffers -------------------------------------------------------------- */

/* n floats of device memory (at least one, so that every buffer is real). */
static float *dev_alloc(size_t n) {
  void *p = NULL;
  ASSERT_CUDA(cudaMalloc(&p, (n ? n : 1) * sizeof(float)));
  return p;
}

static float *dev_from(const float *host, size_t n) {
  float *d = dev_alloc(n);
  if (n) ASSERT_CUDA(cudaMemcpy(d, host, n * sizeof(float), cudaMemcpyHostToDevice));
  return d;
}

static void to_host(float *host, const float *dev, size_t n) {
  ASSERT_CUDA(cudaDeviceSynchronize());
  if (n) ASSERT_CUDA(cudaMemcpy(host, dev, n * sizeof(float), cudaMemcpyDeviceToHost));
}

static float *host_alloc(size_t n) {
  float *p = malloc((n ? n : 1) * sizeof(float));
  assert_non_null(p);
  return p;
}

static void fill_nan(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = NAN;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static cublasHandle_t new_handle(void) {
  cublasHandle_t h = NULL;
  ASSERT_BLAS(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  return h;
}

/* ---- the definitions, computed here --------------------------------------------- */

/* x to 11 significant bits (TF32: 10 stored + the implicit one), ties to even,
 * for normal x: x = f 2^e with 0.5 <= |f| < 1. */
static float tf32_of(float x) {
  int e;
  double f = frexp(x, &e);
  return (float)ldexp(nearbyint(ldexp(f, 11)), e - 11);
}

/* Element (r, c) of op(X) for X stored column-major with leading dimension ld. */
static double op_at(const float *X, int ld, cublasOperation_t t, int r, int c, int tf32) {
  float v = t == CUBLAS_OP_N ? X[r + (size_t)c * ld] : X[c + (size_t)r * ld];
  return tf32 ? tf32_of(v) : v;
}

/* Rows of a stored matrix whose op() has r x c, and its columns. */
static int stored_rows(cublasOperation_t t, int r, int c) { return t == CUBLAS_OP_N ? r : c; }
static int stored_cols(cublasOperation_t t, int r, int c) { return t == CUBLAS_OP_N ? c : r; }

/* Floats a column-major rows x cols matrix with leading dimension ld spans. */
static size_t span(int rows, int cols, int ld) {
  return rows && cols ? (size_t)(cols - 1) * ld + rows : 0;
}

/* One (batched) product: batch < 0 means cublasSgemm, else cublasSgemmStridedBatched. */
typedef struct gemm_case {
  cublasOperation_t ta, tb;
  int m, n, k, lda, ldb, ldc;
  float alpha, beta;
  int batch;
  long long sa, sb, sc;
} gemm_case;

static void describe(const gemm_case *c, char *out, size_t size) {
  snprintf(out, size,
           "%s %s%s m %d n %d k %d lda %d ldb %d ldc %d alpha %g beta %g batch %d "
           "strides %lld %lld %lld",
           c->batch < 0 ? "gemm" : "gemmStridedBatched", op_name(c->ta), op_name(c->tb), c->m,
           c->n, c->k, c->lda, c->ldb, c->ldc, c->alpha, c->beta, c->batch, c->sa, c->sb, c->sc);
}

/* Floats a batch of count matrices spaced stride apart spans, and the offset
 * of the first (the lowest address holds the last one when stride < 0). */
static size_t batch_span(size_t one, int count, long long stride, size_t *first) {
  size_t step = (size_t)(stride < 0 ? -stride : stride);
  *first = count > 0 && stride < 0 ? (size_t)(count - 1) * step : 0;
  return count > 0 && one ? one + (size_t)(count - 1) * step : 0;
}

/* Checks C (after) against the definition applied to C0 (before), for one
 * matrix of the batch; with tf32, against the definition on TF32-rounded
 * inputs and within the TF32 bound of the fp32 definition. Returns how many
 * results differ from the fp32 definition rounded to float. */
static int check_gemm_entry(const gemm_case *c, const float *A, const float *B, const float *C0,
                            const float *C, int tf32, const char *what) {
  int moved = 0;
  for (int j = 0; j < c->n; j++)
    for (int i = 0; i < c->m; i++) {
      double dot = 0.0, dot32 = 0.0, mag = 0.0;
      for (int l = 0; l < c->k; l++) {
        double a = op_at(A, c->lda, c->ta, i, l, tf32), b = op_at(B, c->ldb, c->tb, l, j, tf32);
        dot += a * b;
        dot32 += op_at(A, c->lda, c->ta, i, l, 0) * op_at(B, c->ldb, c->tb, l, j, 0);
        mag += fabs(a * b);
      }
      size_t at = i + (size_t)j * c->ldc;
      double old = c->beta == 0.0f ? 0.0 : (double)c->beta * C0[at];
      double want = (double)c->alpha * dot + old;
      double scale = fabs((double)c->alpha) * mag + fabs(old);
      if (!(fabs(C[at] - want) <= TOL * scale))
        fail_msg("%s: C(%d,%d) = %.9g, the definition gives %.9g (allowed %.3g)", what, i, j,
                 C[at], want, TOL * scale);
      /* TF32 inputs are within 2^-11 relative of fp32, each product within 2^-10. */
      double bound = fabs((double)c->alpha) * mag * (ldexp(1, -10) + ldexp(1, -20));
      double want32 = (double)c->alpha * dot32 + old;
      if (tf32 && !(fabs(C[at] - want32) <= bound + TOL * scale))
        fail_msg("%s: C(%d,%d) = %.9g is %.3g from the fp32 product, over the TF32 bound %.3g",
                 what, i, j, C[at], fabs(C[at] - want32), bound);
      moved += C[at] != (float)want32;
    }
  return moved;
}

/* Runs one case on fresh device buffers of exactly the documented extents and
 * checks every entry of the batch; with tf32, returns how many results TF32
 * moved off the fp32 product. */
static int run_gemm_case(cublasHandle_t h, const gemm_case *c, int tf32, ct_rng *rng) {
  char what[256];
  describe(c, what, sizeof what);
  int count = c->batch < 0 ? 1 : c->batch;
  size_t a1 = span(stored_rows(c->ta, c->m, c->k), stored_cols(c->ta, c->m, c->k), c->lda);
  size_t b1 = span(stored_rows(c->tb, c->k, c->n), stored_cols(c->tb, c->k, c->n), c->ldb);
  size_t c1 = span(c->m, c->n, c->ldc);
  size_t a0, b0, c0;
  size_t na = batch_span(a1, count, c->sa, &a0), nb = batch_span(b1, count, c->sb, &b0);
  size_t nc = batch_span(c1, count, c->sc, &c0);
  float *hA = host_alloc(na), *hB = host_alloc(nb), *hC0 = host_alloc(nc), *hC = host_alloc(nc);
  ct_rng_fill(rng, hA, (int64_t)na, -1.0f, 1.0f);
  ct_rng_fill(rng, hB, (int64_t)nb, -1.0f, 1.0f);
  if (c->beta == 0.0f)
    fill_nan(hC0, nc); /* not read: NaN must not reach the result */
  else
    ct_rng_fill(rng, hC0, (int64_t)nc, -1.0f, 1.0f);
  float *dA = dev_from(hA, na), *dB = dev_from(hB, nb), *dC = dev_from(hC0, nc);
  if (c->batch < 0)
    ASSERT_BLAS(cublasSgemm(h, c->ta, c->tb, c->m, c->n, c->k, &c->alpha, dA, c->lda, dB, c->ldb,
                            &c->beta, dC, c->ldc),
                CUBLAS_STATUS_SUCCESS);
  else
    ASSERT_BLAS(cublasSgemmStridedBatched(h, c->ta, c->tb, c->m, c->n, c->k, &c->alpha, dA + a0,
                                          c->lda, c->sa, dB + b0, c->ldb, c->sb, &c->beta,
                                          dC + c0, c->ldc, c->sc, c->batch),
                CUBLAS_STATUS_SUCCESS);
  to_host(hC, dC, nc);

  /* Untouched floats keep their bits: mark the ones inside the matrices. */
  char *inside = calloc(nc ? nc : 1, 1);
  assert_non_null(inside);
  int changed = 0;
  for (int b = 0; b < count; b++) {
    size_t ao = a0 + (size_t)((long long)b * c->sa), bo = b0 + (size_t)((long long)b * c->sb);
    size_t co = c0 + (size_t)((long long)b * c->sc);
    char entry[300];
    snprintf(entry, sizeof entry, "%s, entry %d", what, b);
    changed += check_gemm_entry(c, hA + ao, hB + bo, hC0 + co, hC + co, tf32, entry);
    for (int j = 0; j < c->n; j++)
      for (int i = 0; i < c->m; i++) inside[co + i + (size_t)j * c->ldc] = 1;
  }
  for (size_t i = 0; i < nc; i++)
    if (!inside[i] && !same_bits(hC[i], hC0[i]))
      fail_msg("%s: float %zu of C, outside every matrix, changed", what, i);
  free(inside);
  free(hA);
  free(hB);
  free(hC0);
  free(hC);
  ASSERT_CUDA(cudaFree(dA));
  ASSERT_CUDA(cudaFree(dB));
  ASSERT_CUDA(cudaFree(dC));
  return changed;
}

/* The smallest leading dimensions a case accepts. */
static void min_lds(gemm_case *c) {
  c->lda = stored_rows(c->ta, c->m, c->k) > 1 ? stored_rows(c->ta, c->m, c->k) : 1;
  c->ldb = stored_rows(c->tb, c->k, c->n) > 1 ? stored_rows(c->tb, c->k, c->n) : 1;
  c->ldc = c->m > 1 ? c->m : 1;
}

/* ---- gemm ----------------------------------------------------------------------------- */

static const int GEMM_SIZES[][3] = {{1, 1, 1},  {3, 7, 33}, {33, 3, 7}, {7, 33, 3}, {33, 33, 33},
                                    {3, 5, 0},  {0, 5, 3},  {5, 0, 3},  {0, 0, 0}};

static void test_gemm_matches_definition(void **state) {
  (void)state;
  cublasHandle_t h = new_handle();
  ct_rng rng = {11};
  const float alphas[] = {1.0f, -0.75f, 0.0f}, betas[] = {0.0f, 0.5f, 1.0f};
  int cases = 0;
  for (int ta = 0; ta < 3; ta++)
    for (int tb = 0; tb < 3; tb++)
      for (size_t s = 0; s < sizeof GEMM_SIZES / sizeof *GEMM_SIZES; s++)
        for (int pad = 0; pad < 2; pad++)
          for (int ia = 0; ia < 3; ia++)
            for (int ib = 0; ib < 3; ib++) {
              gemm_case c = {.ta = OPS[ta], .tb = OPS[tb], .m = GEMM_SIZES[s][0],
                             .n = GEMM_SIZES[s][1], .k = GEMM_SIZES[s][2], .alpha = alphas[ia],
                             .beta = betas[ib], .batch = -1};
              min_lds(&c);
              /* Leading dimensions past the minimum, each by a different amount. */
              c.lda += pad;
              c.ldb += 2 * pad;
              c.ldc += 3 * pad;
              run_gemm_case(h, &c, 0, &rng);
              cases++;
            }
  print_message("    %d gemm cases match the definition\n", cases);
  ASSERT_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

/* ---- strided batched gemm -------------------------------------------------------------- */

enum { STRIDE_FULL, STRIDE_TIGHT, STRIDE_LARGER, STRIDE_BROADCAST_A, STRIDE_REVERSED_B, STRIDES };

static void test_gemm_strided_batched_matches_definition(void **state) {
  (void)state;
  cublasHandle_t h = new_handle();
  ct_rng rng = {12};
  static const int sizes[][3] = {{3, 7, 5}, {1, 1, 1}, {4, 3, 0}};
  const int batches[] = {0, 1, 3};
  const float alphas[] = {1.5f, 0.0f}, betas[] = {0.0f, 0.5f};
  int cases = 0;
  for (int ta = 0; ta < 3; ta++)
    for (int tb = 0; tb < 3; tb++)
      for (int s = 0; s < 3; s++)
        for (int nb = 0; nb < 3; nb++)
          for (int mode = 0; mode < STRIDES; mode++)
            for (int ia = 0; ia < 2; ia++)
              for (int ib = 0; ib < 2; ib++) {
                gemm_case c = {.ta = OPS[ta], .tb = OPS[tb], .m = sizes[s][0], .n = sizes[s][1],
                               .k = sizes[s][2], .alpha = alphas[ia], .beta = betas[ib],
                               .batch = batches[nb]};
                min_lds(&c);
                /* lda and ldc padded in odd modes: tight strides then differ from full ones. */
                c.lda += mode % 2;
                c.ldc += 2 * (mode % 2);
                int ar = stored_rows(c.ta, c.m, c.k), ac = stored_cols(c.ta, c.m, c.k);
                int br = stored_rows(c.tb, c.k, c.n), bc = stored_cols(c.tb, c.k, c.n);
                /* Full: ld x cols apart; tight: the span apart (the next matrix
                 * starts inside the last column's padding); larger: 5 more. */
                long long full_a = (long long)c.lda * ac, full_b = (long long)c.ldb * bc,
                          full_c = (long long)c.ldc * c.n;
                long long tight_a = (long long)span(ar, ac, c.lda),
                          tight_b = (long long)span(br, bc, c.ldb),
                          tight_c = (long long)span(c.m, c.n, c.ldc);
                switch (mode) {
                  case STRIDE_FULL: c.sa = full_a, c.sb = full_b, c.sc = full_c; break;
                  case STRIDE_TIGHT: c.sa = tight_a, c.sb = tight_b, c.sc = tight_c; break;
                  case STRIDE_LARGER:
                    c.sa = full_a + 5, c.sb = full_b + 5, c.sc = full_c + 5;
                    break;
                  case STRIDE_BROADCAST_A: c.sa = 0, c.sb = full_b, c.sc = full_c; break;
                  case STRIDE_REVERSED_B: c.sa = full_a, c.sb = -full_b, c.sc = full_c + 1; break;
                }
                run_gemm_case(h, &c, 0, &rng);
                cases++;
              }
  print_message("    %d strided batched cases match the definition\n", cases);
  ASSERT_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

/* ---- gemv ------------------------------------------------------------------------------ */

/* Offset of element e of a BLAS vector of len elements: kx + e inc, where kx
 * is 0 for inc > 0 and -(len - 1) inc otherwise. */
static size_t blas_at(int e, int len, int inc) {
  long long kx = inc > 0 ? 0 : -(long long)(len - 1) * inc;
  return (size_t)(kx + (long long)e * inc);
}

static size_t vec_span(int len, int inc) {
  return len ? 1 + (size_t)(len - 1) * (size_t)(inc < 0 ? -inc : inc) : 0;
}

/* y = alpha op(A) x + beta y on exact-extent buffers, checked against the
 * definition; y's floats between its elements keep their bits. With m or n 0
 * y is left as it was (BLAS's quick return). */
static void run_gemv_case(cublasHandle_t h, cublasOperation_t t, int m, int n, int lda, int incx,
                          int incy, float alpha, float beta, ct_rng *rng) {
  char what[200];
  snprintf(what, sizeof what, "gemv %s m %d n %d lda %d incx %d incy %d alpha %g beta %g",
           op_name(t), m, n, lda, incx, incy, alpha, beta);
  int xlen = t == CUBLAS_OP_N ? n : m, ylen = t == CUBLAS_OP_N ? m : n;
  size_t na = span(m, n, lda), nx = vec_span(xlen, incx), ny = vec_span(ylen, incy);
  float *hA = host_alloc(na), *hx = host_alloc(nx), *hy0 = host_alloc(ny), *hy = host_alloc(ny);
  ct_rng_fill(rng, hA, (int64_t)na, -1.0f, 1.0f);
  ct_rng_fill(rng, hx, (int64_t)nx, -1.0f, 1.0f);
  if (beta == 0.0f)
    fill_nan(hy0, ny);
  else
    ct_rng_fill(rng, hy0, (int64_t)ny, -1.0f, 1.0f);
  float *dA = dev_from(hA, na), *dx = dev_from(hx, nx), *dy = dev_from(hy0, ny);
  ASSERT_BLAS(cublasSgemv(h, t, m, n, &alpha, dA, lda, dx, incx, &beta, dy, incy),
              CUBLAS_STATUS_SUCCESS);
  to_host(hy, dy, ny);
  char *inside = calloc(ny ? ny : 1, 1);
  assert_non_null(inside);
  for (int e = 0; m > 0 && n > 0 && e < ylen; e++) {
    double dot = 0.0, mag = 0.0;
    for (int l = 0; l < xlen; l++) {
      double a = t == CUBLAS_OP_N ? hA[e + (size_t)l * lda] : hA[l + (size_t)e * lda];
      double p = a * hx[blas_at(l, xlen, incx)];
      dot += p;
      mag += fabs(p);
    }
    size_t at = blas_at(e, ylen, incy);
    inside[at] = 1;
    double old = beta == 0.0f ? 0.0 : (double)beta * hy0[at];
    double want = (double)alpha * dot + old, scale = fabs((double)alpha) * mag + fabs(old);
    if (!(fabs(hy[at] - want) <= TOL * scale))
      fail_msg("%s: y(%d) = %.9g, the definition gives %.9g", what, e, hy[at], want);
  }
  for (size_t i = 0; i < ny; i++)
    if (!inside[i] && !same_bits(hy[i], hy0[i]))
      fail_msg("%s: float %zu of y, not an element computed, changed", what, i);
  free(inside);
  free(hA);
  free(hx);
  free(hy0);
  free(hy);
  ASSERT_CUDA(cudaFree(dA));
  ASSERT_CUDA(cudaFree(dx));
  ASSERT_CUDA(cudaFree(dy));
}

static void test_gemv_matches_definition(void **state) {
  (void)state;
  cublasHandle_t h = new_handle();
  ct_rng rng = {13};
  static const int sizes[][2] = {{1, 1}, {3, 7}, {33, 5}, {7, 1}, {1, 7}, {0, 4}, {4, 0}};
  const int incs[] = {1, 2, -1, -3};
  const float alphas[] = {1.25f, 0.0f}, betas[] = {0.0f, -0.5f};
  int cases = 0;
  for (int t = 0; t < 3; t++)
    for (int s = 0; s < 7; s++)
      for (int pad = 0; pad < 2; pad++)
        for (int ix = 0; ix < 4; ix++)
          for (int iy = 0; iy < 4; iy++)
            for (int ia = 0; ia < 2; ia++)
              for (int ib = 0; ib < 2; ib++) {
                int m = sizes[s][0], n = sizes[s][1], lda = (m > 1 ? m : 1) + 2 * pad;
                run_gemv_case(h, OPS[t], m, n, lda, incs[ix], incs[iy], alphas[ia], betas[ib],
                              &rng);
                cases++;
              }
  print_message("    %d gemv cases match the definition\n", cases);
  ASSERT_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

/* ---- accumulation ------------------------------------------------------------------------- */

/* cublasSgemmBatched (pointer arrays in device memory, read when the product runs;
 * one B shared by the three entries, C accumulated with beta 1) gives each entry's
 * cublasSgemm bit for bit. */
static void test_gemm_batched_matches_gemm(void **state) {
  (void)state;
  enum { M = 7, N = 5, K = 9 };
  cublasHandle_t h = new_handle();
  float a[3][M * K], b[K * N], c0[M * N], got[M * N], want[M * N];
  for (int j = 0; j < 3; j++)
    for (int i = 0; i < M * K; i++) a[j][i] = (float)((i * 7 + j * 3) % 11) / 8.0f - 0.6f;
  for (int i = 0; i < K * N; i++) b[i] = (float)((i * 5) % 13) / 16.0f - 0.4f;
  for (int i = 0; i < M * N; i++) c0[i] = (float)(i % 5) - 2.0f;
  const float one = 1.0f;
  float *dA[3], *dC[3], *dC1 = dev_from(c0, M * N), *dB = dev_from(b, K * N);
  for (int j = 0; j < 3; j++) {
    dA[j] = dev_from(a[j], M * K);
    dC[j] = dev_from(c0, M * N);
  }
  const float *ha[3] = {dA[0], dA[1], dA[2]}, *hb[3] = {dB, dB, dB};
  float *hc[3] = {dC[0], dC[1], dC[2]};
  void **arr;
  ASSERT_CUDA(cudaMalloc((void **)&arr, 9 * sizeof(void *)));
  ASSERT_CUDA(cudaMemcpy(arr, ha, sizeof ha, cudaMemcpyHostToDevice));
  ASSERT_CUDA(cudaMemcpy(arr + 3, hb, sizeof hb, cudaMemcpyHostToDevice));
  ASSERT_CUDA(cudaMemcpy(arr + 6, hc, sizeof hc, cudaMemcpyHostToDevice));
  ASSERT_BLAS(cublasSgemmBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, M, N, K, &one,
                                 (const float *const *)arr, M, (const float *const *)(arr + 3), K,
                                 &one, (float *const *)(arr + 6), M, 3),
              CUBLAS_STATUS_SUCCESS);
  for (int j = 0; j < 3; j++) {
    ASSERT_CUDA(cudaMemcpy(dC1, c0, sizeof c0, cudaMemcpyHostToDevice));
    ASSERT_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, M, N, K, &one, dA[j], M, dB, K, &one,
                            dC1, M),
                CUBLAS_STATUS_SUCCESS);
    to_host(want, dC1, M * N);
    to_host(got, dC[j], M * N);
    for (int i = 0; i < M * N; i++) assert_true(same_bits(got[i], want[i]));
  }
  for (int j = 0; j < 3; j++) {
    ASSERT_CUDA(cudaFree(dA[j]));
    ASSERT_CUDA(cudaFree(dC[j]));
  }
  ASSERT_CUDA(cudaFree(dB));
  ASSERT_CUDA(cudaFree(dC1));
  ASSERT_CUDA(cudaFree(arr));
  ASSERT_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

/* 1 amid 4096 terms of 2^-24: in double the sum is exactly 1 + 2^-12, which
 * float holds; a float accumulator drops every 2^-24 next to 1 (a tie, to
 * even) and ends at most at 1 + 2^-13, whatever its order. */
static void test_dot_products_accumulate_in_double(void **state) {
  (void)state;
  enum { K = 4097 };
  cublasHandle_t h = new_handle();
  static float terms[2 * K], ones[2 * K];
  for (int i = 0; i < 2 * K; i++) {
    terms[i] = i % K == K / 2 ? 1.0f : ldexpf(1.0f, -24);
    ones[i] = 1.0f;
  }
  const float want = 1.0f + ldexpf(1.0f, -12), one = 1.0f, zero = 0.0f;
  float *dT = dev_from(terms, 2 * K), *d1 = dev_from(ones, 2 * K), *dC = dev_alloc(2), got[2];
  /* The terms as a 1 x K row (N, lda 1) and as a K x 1 column read transposed. */
  ASSERT_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, K, &one, dT, 1, d1, K, &zero, dC, 1),
              CUBLAS_STATUS_SUCCESS);
  to_host(got, dC, 1);
  assert_true(same_bits(got[0], want));
  ASSERT_BLAS(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, 1, 1, K, &one, dT, K, d1, K, &zero, dC, 1),
              CUBLAS_STATUS_SUCCESS);
  to_host(got, dC, 1);
  assert_true(same_bits(got[0], want));
  ASSERT_BLAS(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, 1, 1, K, &one, dT, K, K, d1,
                                        K, K, &zero, dC, 1, 1, 2),
              CUBLAS_STATUS_SUCCESS);
  to_host(got, dC, 2);
  assert_true(same_bits(got[0], want) && same_bits(got[1], want));
  ASSERT_BLAS(cublasSgemv(h, CUBLAS_OP_T, K, 1, &one, dT, K, d1, 1, &zero, dC, 1),
              CUBLAS_STATUS_SUCCESS);
  to_host(got, dC, 1);
  assert_true(same_bits(got[0], want));
  ASSERT_BLAS(cublasSgemv(h, CUBLAS_OP_N, 1, K, &one, dT, 1, d1, 1, &zero, dC, 1),
              CUBLAS_STATUS_SUCCESS);
  to_host(got, dC, 1);
  assert_true(same_bits(got[0], want));
  ASSERT_CUDA(cudaFree(dT));
  ASSERT_CUDA(cudaFree(d1));
  ASSERT_CUDA(cudaFree(dC));
  ASSERT_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

/* ---- TF32 -------------------------------------------------------------------------------- */

/* A 1 x 1 x 1 product with B = 1 returns A as the multiplier saw it. */
static float product_input(cublasHandle_t h, float a) {
  const float one = 1.0f, zero = 0.0f;
  float *dA = dev_from(&a, 1), *dB = dev_from(&one, 1), *dC = dev_alloc(1), out;
  ASSERT_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, dA, 1, dB, 1, &zero, dC, 1),
              CUBLAS_STATUS_SUCCESS);
  to_host(&out, dC, 1);
  ASSERT_CUDA(cudaFree(dA));
  ASSERT_CUDA(cudaFree(dB));
  ASSERT_CUDA(cudaFree(dC));
  return out;
}

static void test_tf32_rounds_inputs_to_nearest_even(void **state) {
  (void)state;
  cublasHandle_t h = new_handle();
  ASSERT_BLAS(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
  const float u = ldexpf(1.0f, -10); /* TF32's unit in the last place at 1 */
  const struct {
    float in, out;
  } cases[] = {
      {1.0f + u / 2, 1.0f},                                         /* tie: to the even 1 */
      {1.0f + 3 * u / 2, 1.0f + 2 * u},                             /* tie: to the even 1 + 2u */
      {1.0f + u / 2 + ldexpf(1.0f, -20), 1.0f + u},                 /* past the tie: up */
      {1.0f + u / 2 - ldexpf(1.0f, -20), 1.0f},                     /* short of it: down */
      {-(1.0f + 3 * u / 2), -(1.0f + 2 * u)},                       /* sign kept */
      {ldexpf(1.0f + 3 * u / 2, -100), ldexpf(1.0f + 2 * u, -100)}, /* exponent kept */
      {0.1f, 0.0999755859375f},                                     /* 0.1 to 11 bits */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    float got = product_input(h, cases[i].in);
    if (!same_bits(got, cases[i].out) || !same_bits(tf32_of(cases[i].in), cases[i].out))
      fail_msg("TF32 of %.9g: the product saw %.9g, expected %.9g (this test's rounding: %.9g)",
               cases[i].in, got, cases[i].out, tf32_of(cases[i].in));
  }
  /* fp32 modes keep every input bit. */
  ASSERT_BLAS(cublasSetMathMode(h, CUBLAS_PEDANTIC_MATH), CUBLAS_STATUS_SUCCESS);
  assert_true(same_bits(product_input(h, 1.0f + u / 2), 1.0f + u / 2));
  ASSERT_BLAS(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), CUBLAS_STATUS_SUCCESS);
  assert_true(same_bits(product_input(h, 1.0f + u / 2), 1.0f + u / 2));
  ASSERT_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

static void test_tf32_products_within_bound(void **state) {
  (void)state;
  cublasHandle_t h = new_handle();
  ct_rng rng = {14};
  const cublasMath_t tf32_modes[] = {
      CUBLAS_TF32_TENSOR_OP_MATH, (cublasMath_t)(CUBLAS_TF32_TENSOR_OP_MATH |
                                                 CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)};
  int changed = 0, cases = 0;
  for (int mode = 0; mode < 2; mode++) {
    ASSERT_BLAS(cublasSetMathMode(h, tf32_modes[mode]), CUBLAS_STATUS_SUCCESS);
    for (int ta = 0; ta < 3; ta++)
      for (int tb = 0; tb < 3; tb++)
        for (int batched = 0; batched < 2; batched++) {
          gemm_case c = {.ta = OPS[ta], .tb = OPS[tb], .m = 7, .n = 5, .k = 33, .alpha = 0.75f,
                         .beta = batched ? 0.0f : 0.5f, .batch = batched ? 3 : -1};
          min_lds(&c);
          if (batched) {
            c.sa = (long long)c.lda * stored_cols(c.ta, c.m, c.k);
            c.sb = (long long)c.ldb * stored_cols(c.tb, c.k, c.n);
            c.sc = (long long)c.ldc * c.n;
          }
          changed += run_gemm_case(h, &c, 1, &rng);
          cases++;
        }
  }
  print_message("    %d TF32 cases: %d results differ from the fp32 product\n", cases, changed);
  assert_true(changed > 0);

  /* gemv keeps fp32 inputs in TF32 mode. */
  run_gemv_case(h, CUBLAS_OP_T, 33, 7, 33, 1, 1, 1.0f, 0.0f, &rng);

  /* NVIDIA_TF32_OVERRIDE=0 keeps fp32 whatever the math mode. */
  ASSERT_BLAS(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
  assert_int_equal(setenv("NVIDIA_TF32_OVERRIDE", "0", 1), 0);
  gemm_case c = {.ta = CUBLAS_OP_N, .tb = CUBLAS_OP_T, .m = 9, .n = 4, .k = 17, .alpha = 1.0f,
                 .beta = 0.0f, .batch = -1};
  min_lds(&c);
  run_gemm_case(h, &c, 0, &rng);
  assert_int_equal(unsetenv("NVIDIA_TF32_OVERRIDE"), 0);
  ASSERT_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

/* ---- invalid arguments ------------------------------------------------------------------- */

static void test_invalid_arguments_are_rejected(void **state) {
  (void)state;
  cublasHandle_t h = new_handle();
  const float one = 1.0f, half = 0.5f, zero = 0.0f;
  const cublasOperation_t N = CUBLAS_OP_N, T = CUBLAS_OP_T;
  const cublasOperation_t bad_ops[] = {CUBLAS_OP_CONJG, (cublasOperation_t)-1,
                                       (cublasOperation_t)7};
  float *A = dev_alloc(64), *B = dev_alloc(64), *C = dev_alloc(64);
  float before[64], after[64];
  ct_rng rng = {15};
  ct_rng_fill(&rng, before, 64, -1.0f, 1.0f);
  ASSERT_CUDA(cudaMemcpy(C, before, sizeof before, cudaMemcpyHostToDevice));
  const cublasStatus_t INVALID = CUBLAS_STATUS_INVALID_VALUE;

  /* gemm with m 3, n 4, k 5: lda >= 3 (N) or 5 (T), ldb >= 5 (N) or 4 (T), ldc >= 3. */
#define GEMM(ta, tb, m, n, k, al, lda, ldb, be, c, ldc) \
  cublasSgemm(h, ta, tb, m, n, k, al, A, lda, B, ldb, be, c, ldc)
  ASSERT_BLAS(GEMM(N, N, -1, 4, 5, &one, 3, 5, &half, C, 3), INVALID);
  ASSERT_BLAS(GEMM(N, N, 3, -1, 5, &one, 3, 5, &half, C, 3), INVALID);
  ASSERT_BLAS(GEMM(N, N, 3, 4, -1, &one, 3, 5, &half, C, 3), INVALID);
  for (int i = 0; i < 3; i++) {
    ASSERT_BLAS(GEMM(bad_ops[i], N, 3, 4, 5, &one, 5, 5, &half, C, 3), INVALID);
    ASSERT_BLAS(GEMM(N, bad_ops[i], 3, 4, 5, &one, 3, 5, &half, C, 3), INVALID);
  }
  ASSERT_BLAS(GEMM(N, N, 3, 4, 5, &one, 2, 5, &half, C, 3), INVALID); /* lda < m */
  ASSERT_BLAS(GEMM(T, N, 3, 4, 5, &one, 4, 5, &half, C, 3), INVALID); /* lda < k */
  ASSERT_BLAS(GEMM(N, N, 0, 4, 5, &one, 0, 5, &half, C, 1), INVALID); /* lda < max(1, m) */
  ASSERT_BLAS(GEMM(N, N, 3, 4, 5, &one, 3, 4, &half, C, 3), INVALID); /* ldb < k */
  ASSERT_BLAS(GEMM(N, T, 3, 4, 5, &one, 3, 3, &half, C, 3), INVALID); /* ldb < n */
  ASSERT_BLAS(GEMM(N, N, 3, 4, 0, &one, 3, 0, &half, C, 3), INVALID); /* ldb < max(1, k) */
  ASSERT_BLAS(GEMM(N, N, 3, 4, 5, &one, 3, 5, &half, C, 2), INVALID); /* ldc < m */
  ASSERT_BLAS(GEMM(N, N, 3, 4, 5, NULL, 3, 5, &half, C, 3), INVALID);
  ASSERT_BLAS(GEMM(N, N, 3, 4, 5, &one, 3, 5, NULL, C, 3), INVALID);
  ASSERT_BLAS(GEMM(N, N, 3, 4, 5, &one, 3, 5, &half, NULL, 3), INVALID); /* C scaled */
  /* Valid: a quick return needs no C when beta is 0. */
  ASSERT_BLAS(GEMM(N, N, 0, 4, 5, &one, 1, 5, &zero, NULL, 1), CUBLAS_STATUS_SUCCESS);
#undef GEMM

#define BATCHED(ta, tb, m, n, k, al, lda, ldb, be, c, ldc, count)                          \
  cublasSgemmStridedBatched(h, ta, tb, m, n, k, al, A, lda, 0, B, ldb, 0, be, c, ldc, 16, \
                            count)
  ASSERT_BLAS(BATCHED(N, N, -1, 4, 5, &one, 3, 5, &half, C, 3, 2), INVALID);
  ASSERT_BLAS(BATCHED(N, N, 3, -1, 5, &one, 3, 5, &half, C, 3, 2), INVALID);
  ASSERT_BLAS(BATCHED(N, N, 3, 4, -1, &one, 3, 5, &half, C, 3, 2), INVALID);
  ASSERT_BLAS(BATCHED(N, N, 3, 4, 5, &one, 3, 5, &half, C, 3, -1), INVALID);
  for (int i = 0; i < 3; i++) {
    ASSERT_BLAS(BATCHED(bad_ops[i], N, 3, 4, 5, &one, 5, 5, &half, C, 3, 2), INVALID);
    ASSERT_BLAS(BATCHED(N, bad_ops[i], 3, 4, 5, &one, 3, 5, &half, C, 3, 2), INVALID);
  }
  ASSERT_BLAS(BATCHED(N, N, 3, 4, 5, &one, 2, 5, &half, C, 3, 2), INVALID);
  ASSERT_BLAS(BATCHED(T, N, 3, 4, 5, &one, 4, 5, &half, C, 3, 2), INVALID);
  ASSERT_BLAS(BATCHED(N, N, 3, 4, 5, &one, 3, 4, &half, C, 3, 2), INVALID);
  ASSERT_BLAS(BATCHED(N, T, 3, 4, 5, &one, 3, 3, &half, C, 3, 2), INVALID);
  ASSERT_BLAS(BATCHED(N, N, 3, 4, 5, &one, 3, 5, &half, C, 2, 2), INVALID);
  ASSERT_BLAS(BATCHED(N, N, 3, 4, 5, NULL, 3, 5, &half, C, 3, 2), INVALID);
  ASSERT_BLAS(BATCHED(N, N, 3, 4, 5, &one, 3, 5, NULL, C, 3, 2), INVALID);
  ASSERT_BLAS(BATCHED(N, N, 3, 4, 5, &one, 3, 5, &half, NULL, 3, 2), INVALID);
#undef BATCHED

  /* gemv with m 3, n 4: lda >= 3. */
#define GEMV(t, m, n, al, lda, incx, be, incy) \
  cublasSgemv(h, t, m, n, al, A, lda, B, incx, be, C, incy)
  ASSERT_BLAS(GEMV(N, -1, 4, &one, 3, 1, &half, 1), INVALID);
  ASSERT_BLAS(GEMV(N, 3, -1, &one, 3, 1, &half, 1), INVALID);
  ASSERT_BLAS(GEMV(N, 3, 4, &one, 3, 0, &half, 1), INVALID);
  ASSERT_BLAS(GEMV(N, 3, 4, &one, 3, 1, &half, 0), INVALID);
  for (int i = 0; i < 3; i++) ASSERT_BLAS(GEMV(bad_ops[i], 3, 4, &one, 3, 1, &half, 1), INVALID);
  ASSERT_BLAS(GEMV(T, 3, 4, &one, 2, 1, &half, 1), INVALID); /* lda < m, transposed too */
  ASSERT_BLAS(GEMV(N, 0, 4, &one, 0, 1, &half, 1), INVALID); /* lda < max(1, m) */
  ASSERT_BLAS(GEMV(N, 3, 4, NULL, 3, 1, &half, 1), INVALID);
  ASSERT_BLAS(GEMV(N, 3, 4, &one, 3, 1, NULL, 1), INVALID);
#undef GEMV

  /* Helpers. */
  cublasStatus_t st = cublasCreate(NULL);
  assert_int_equal(st, INVALID);
  ASSERT_BLAS(cublasGetStream(h, NULL), INVALID);
  ASSERT_BLAS(cublasGetMathMode(h, NULL), INVALID);
  ASSERT_BLAS(cublasGetPointerMode(h, NULL), INVALID);
  ASSERT_BLAS(cublasSetPointerMode(h, (cublasPointerMode_t)2), INVALID);
  const unsigned bad_modes[] = {5, 6, 7, 9, 32, 5 | 16, 0x100};
  for (size_t i = 0; i < sizeof bad_modes / sizeof *bad_modes; i++)
    ASSERT_BLAS(cublasSetMathMode(h, (cublasMath_t)bad_modes[i]), INVALID);
  void *ws = NULL;
  ASSERT_CUDA(cudaMalloc(&ws, 4096));
  ASSERT_BLAS(cublasSetWorkspace(h, (char *)ws + 4, 1024), INVALID); /* not 256-byte aligned */
  ASSERT_BLAS(cublasSetWorkspace(h, (char *)ws + 128, 1024), INVALID);

  /* No call above touched C. */
  to_host(after, C, 64);
  for (int i = 0; i < 64; i++)
    if (!same_bits(after[i], before[i])) fail_msg("a rejected call changed C[%d]", i);
  ASSERT_CUDA(cudaFree(ws));
  ASSERT_CUDA(cudaFree(A));
  ASSERT_CUDA(cudaFree(B));
  ASSERT_CUDA(cudaFree(C));
  ASSERT_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

/* Every entry point refuses a NULL handle and a destroyed one. */
static void test_null_and_destroyed_handles(void **state) {
  (void)state;
  cublasHandle_t destroyed = new_handle();
  ASSERT_BLAS(cublasDestroy(destroyed), CUBLAS_STATUS_SUCCESS);
  float *buf = dev_alloc(16);
  const float one = 1.0f;
  cudaStream_t s;
  cublasMath_t math;
  cublasPointerMode_t pm;
  const cublasStatus_t NI = CUBLAS_STATUS_NOT_INITIALIZED;
  cublasHandle_t handles[] = {NULL, destroyed};
  for (int i = 0; i < 2; i++) {
    cublasHandle_t h = handles[i];
    ASSERT_BLAS(cublasDestroy(h), NI);
    ASSERT_BLAS(cublasSetStream(h, 0), NI);
    ASSERT_BLAS(cublasGetStream(h, &s), NI);
    ASSERT_BLAS(cublasSetWorkspace(h, NULL, 0), NI);
    ASSERT_BLAS(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), NI);
    ASSERT_BLAS(cublasGetMathMode(h, &math), NI);
    ASSERT_BLAS(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST), NI);
    ASSERT_BLAS(cublasGetPointerMode(h, &pm), NI);
    ASSERT_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, buf, 2, buf, 2, &one, buf,
                            2),
                NI);
    ASSERT_BLAS(cublasSgemv(h, CUBLAS_OP_N, 2, 2, &one, buf, 2, buf, 1, &one, buf, 1), NI);
    ASSERT_BLAS(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, buf, 2, 4,
                                          buf, 2, 4, &one, buf, 2, 4, 2),
                NI);
  }
  ASSERT_CUDA(cudaFree(buf));
}

/* ---- handle settings --------------------------------------------------------------------- */

static void test_handle_settings(void **state) {
  (void)state;
  cublasHandle_t h = new_handle();
  cudaStream_t s = (cudaStream_t)1, mine;
  cublasMath_t math;
  cublasPointerMode_t pm;
  void *ws = NULL, *got_ws;
  size_t got_bytes;

  /* Defaults: the NULL stream, the default pool, default math, host pointers. */
  ASSERT_BLAS(cublasGetStream(h, &s), CUBLAS_STATUS_SUCCESS);
  assert_null(s);
  assert_int_equal(ctsim_cublas_workspace(h, &got_ws, &got_bytes), 0);
  ASSERT_BLAS(cublasGetMathMode(h, &math), CUBLAS_STATUS_SUCCESS);
  assert_int_equal(math, CUBLAS_DEFAULT_MATH);
  ASSERT_BLAS(cublasGetPointerMode(h, &pm), CUBLAS_STATUS_SUCCESS);
  assert_int_equal(pm, CUBLAS_POINTER_MODE_HOST);

  /* A workspace is kept; setting the stream puts the default pool back. */
  ASSERT_CUDA(cudaStreamCreateWithFlags(&mine, cudaStreamNonBlocking));
  ASSERT_CUDA(cudaMalloc(&ws, 4096));
  ASSERT_BLAS(cublasSetWorkspace(h, ws, 4096), CUBLAS_STATUS_SUCCESS);
  assert_int_equal(ctsim_cublas_workspace(h, &got_ws, &got_bytes), 1);
  assert_ptr_equal(got_ws, ws);
  assert_int_equal(got_bytes, 4096);
  ASSERT_BLAS(cublasSetStream(h, mine), CUBLAS_STATUS_SUCCESS);
  ASSERT_BLAS(cublasGetStream(h, &s), CUBLAS_STATUS_SUCCESS);
  assert_ptr_equal(s, mine);
  assert_int_equal(ctsim_cublas_workspace(h, &got_ws, &got_bytes), 0);
  ASSERT_BLAS(cublasSetWorkspace(h, (char *)ws + 256, 1024), CUBLAS_STATUS_SUCCESS);
  assert_int_equal(ctsim_cublas_workspace(h, &got_ws, &got_bytes), 1);
  assert_ptr_equal(got_ws, (char *)ws + 256);
  /* No workspace at all is allowed (and keeps cuBLAS off the default pool). */
  ASSERT_BLAS(cublasSetWorkspace(h, NULL, 0), CUBLAS_STATUS_SUCCESS);
  assert_int_equal(ctsim_cublas_workspace(h, &got_ws, &got_bytes), 1);
  assert_null(got_ws);
  assert_int_equal(got_bytes, 0);

  /* Math modes read back as set; unsimulated ones are refused and change nothing. */
  const cublasMath_t modes[] = {
      CUBLAS_PEDANTIC_MATH, CUBLAS_TF32_TENSOR_OP_MATH,
      (cublasMath_t)(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION),
      (cublasMath_t)(CUBLAS_PEDANTIC_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION),
      CUBLAS_DEFAULT_MATH};
  for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
    ASSERT_BLAS(cublasSetMathMode(h, modes[i]), CUBLAS_STATUS_SUCCESS);
    ASSERT_BLAS(cublasGetMathMode(h, &math), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(math, modes[i]);
  }
  const cublasMath_t unsimulated[] = {CUBLAS_TENSOR_OP_MATH, CUBLAS_FP32_EMULATED_BF16X9_MATH,
                                      CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH};
  for (size_t i = 0; i < sizeof unsimulated / sizeof *unsimulated; i++)
    ASSERT_BLAS(cublasSetMathMode(h, unsimulated[i]), CUBLAS_STATUS_NOT_SUPPORTED);
  ASSERT_BLAS(cublasGetMathMode(h, &math), CUBLAS_STATUS_SUCCESS);
  assert_int_equal(math, CUBLAS_DEFAULT_MATH);

  /* Host pointer mode only. */
  ASSERT_BLAS(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST), CUBLAS_STATUS_SUCCESS);
  ASSERT_BLAS(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE), CUBLAS_STATUS_NOT_SUPPORTED);
  ASSERT_BLAS(cublasGetPointerMode(h, &pm), CUBLAS_STATUS_SUCCESS);
  assert_int_equal(pm, CUBLAS_POINTER_MODE_HOST);

  ASSERT_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
  ASSERT_CUDA(cudaFree(ws));
  ASSERT_CUDA(cudaStreamDestroy(mine));
}

static void test_status_names(void **state) {
  (void)state;
#define STATUS(s) {s, #s}
  const struct {
    cublasStatus_t status;
    const char *name;
  } all[] = {STATUS(CUBLAS_STATUS_SUCCESS),          STATUS(CUBLAS_STATUS_NOT_INITIALIZED),
             STATUS(CUBLAS_STATUS_ALLOC_FAILED),     STATUS(CUBLAS_STATUS_INVALID_VALUE),
             STATUS(CUBLAS_STATUS_ARCH_MISMATCH),    STATUS(CUBLAS_STATUS_MAPPING_ERROR),
             STATUS(CUBLAS_STATUS_EXECUTION_FAILED), STATUS(CUBLAS_STATUS_INTERNAL_ERROR),
             STATUS(CUBLAS_STATUS_NOT_SUPPORTED),    STATUS(CUBLAS_STATUS_LICENSE_ERROR)};
#undef STATUS
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
    assert_string_equal(cublasGetStatusName(all[i].status), all[i].name);
    const char *text = cublasGetStatusString(all[i].status);
    assert_non_null(text);
    assert_true(strlen(text) > 0);
    for (size_t j = 0; j < i; j++)
      assert_string_not_equal(text, cublasGetStatusString(all[j].status));
  }
  assert_non_null(cublasGetStatusName((cublasStatus_t)2));
  assert_non_null(cublasGetStatusString((cublasStatus_t)99));
}

/* ---- stream order and capture -------------------------------------------------------------- */

/* gemm then gemv on one stream between asynchronous copies: each sees the
 * previous one's result, and alpha is the value at the call. */
static void test_calls_run_in_stream_order(void **state) {
  (void)state;
  enum { M = 5, K = 6, N = 4 };
  cublasHandle_t h = new_handle();
  cudaStream_t s;
  ASSERT_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  ASSERT_BLAS(cublasSetStream(h, s), CUBLAS_STATUS_SUCCESS);
  ct_rng rng = {16};
  float hA[M * K], hB[K * N], hx[M], hC[M * N], hy[N];
  ct_rng_fill(&rng, hA, M * K, -1.0f, 1.0f);
  ct_rng_fill(&rng, hB, K * N, -1.0f, 1.0f);
  ct_rng_fill(&rng, hx, M, -1.0f, 1.0f);
  float *dA = dev_alloc(M * K), *dB = dev_alloc(K * N), *dx = dev_alloc(M), *dC = dev_alloc(M * N),
        *dy = dev_alloc(N);
  ASSERT_CUDA(cudaMemcpyAsync(dA, hA, sizeof hA, cudaMemcpyHostToDevice, s));
  ASSERT_CUDA(cudaMemcpyAsync(dB, hB, sizeof hB, cudaMemcpyHostToDevice, s));
  ASSERT_CUDA(cudaMemcpyAsync(dx, hx, sizeof hx, cudaMemcpyHostToDevice, s));
  float alpha = 2.0f, beta = 0.0f;
  ASSERT_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, M, N, K, &alpha, dA, M, dB, K, &beta, dC, M),
              CUBLAS_STATUS_SUCCESS);
  alpha = 100.0f; /* read at the call: the queued product keeps 2 */
  beta = 100.0f;
  const float one = 1.0f, zero = 0.0f;
  ASSERT_BLAS(cublasSgemv(h, CUBLAS_OP_T, M, N, &one, dC, M, dx, 1, &zero, dy, 1),
              CUBLAS_STATUS_SUCCESS);
  ASSERT_CUDA(cudaMemcpyAsync(hC, dC, sizeof hC, cudaMemcpyDeviceToHost, s));
  ASSERT_CUDA(cudaMemcpyAsync(hy, dy, sizeof hy, cudaMemcpyDeviceToHost, s));
  ASSERT_CUDA(cudaStreamSynchronize(s));
  for (int j = 0; j < N; j++) {
    double yj = 0.0, ymag = 0.0;
    for (int i = 0; i < M; i++) {
      double dot = 0.0, mag = 0.0;
      for (int l = 0; l < K; l++) {
        dot += (double)hA[i + l * M] * hB[l + j * K];
        mag += fabs((double)hA[i + l * M] * hB[l + j * K]);
      }
      if (!(fabs(hC[i + j * M] - 2.0 * dot) <= TOL * 2.0 * mag))
        fail_msg("C(%d,%d) = %.9g, expected %.9g", i, j, hC[i + j * M], 2.0 * dot);
      yj += (double)hC[i + j * M] * hx[i];
      ymag += fabs((double)hC[i + j * M] * hx[i]);
    }
    if (!(fabs(hy[j] - yj) <= TOL * ymag)) fail_msg("y(%d) = %.9g, expected %.9g", j, hy[j], yj);
  }
  ASSERT_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
  ASSERT_CUDA(cudaFree(dA));
  ASSERT_CUDA(cudaFree(dB));
  ASSERT_CUDA(cudaFree(dx));
  ASSERT_CUDA(cudaFree(dC));
  ASSERT_CUDA(cudaFree(dy));
  ASSERT_CUDA(cudaStreamDestroy(s));
}

/* Captured into a graph, a product keeps the alpha of the capture and runs at
 * every launch of the graph. */
static void test_captured_calls_replay(void **state) {
  (void)state;
  enum { M = 3, K = 4, N = 2 };
  cublasHandle_t h = new_handle();
  cudaStream_t s;
  ASSERT_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  ASSERT_BLAS(cublasSetStream(h, s), CUBLAS_STATUS_SUCCESS);
  ct_rng rng = {17};
  float hA[M * K], hB[K * N], hC[M * N];
  ct_rng_fill(&rng, hA, M * K, -1.0f, 1.0f);
  ct_rng_fill(&rng, hB, K * N, -1.0f, 1.0f);
  float *dA = dev_from(hA, M * K), *dB = dev_from(hB, K * N), *dC = dev_alloc(M * N);
  ASSERT_CUDA(cudaMemsetAsync(dC, 0, sizeof hC, s));
  float alpha = 0.5f;
  const float one = 1.0f;
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  ASSERT_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  ASSERT_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, M, N, K, &alpha, dA, M, dB, K, &one, dC, M),
              CUBLAS_STATUS_SUCCESS);
  ASSERT_CUDA(cudaStreamEndCapture(s, &graph));
  alpha = 8.0f;
  ASSERT_CUDA(cudaGraphInstantiateWithFlags(&exec, graph, 0));
  ASSERT_CUDA(cudaGraphLaunch(exec, s));
  ASSERT_CUDA(cudaGraphLaunch(exec, s));
  ASSERT_CUDA(cudaMemcpyAsync(hC, dC, sizeof hC, cudaMemcpyDeviceToHost, s));
  ASSERT_CUDA(cudaStreamSynchronize(s));
  for (int j = 0; j < N; j++)
    for (int i = 0; i < M; i++) {
      double dot = 0.0, mag = 0.0;
      for (int l = 0; l < K; l++) {
        dot += (double)hA[i + l * M] * hB[l + j * K];
        mag += fabs((double)hA[i + l * M] * hB[l + j * K]);
      }
      if (!(fabs(hC[i + j * M] - dot) <= 2 * TOL * mag)) /* two launches of 0.5 A B */
        fail_msg("C(%d,%d) = %.9g after two launches, expected %.9g", i, j, hC[i + j * M], dot);
    }
  ASSERT_CUDA(cudaGraphExecDestroy(exec));
  ASSERT_CUDA(cudaGraphDestroy(graph));
  ASSERT_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
  ASSERT_CUDA(cudaFree(dA));
  ASSERT_CUDA(cudaFree(dB));
  ASSERT_CUDA(cudaFree(dC));
  ASSERT_CUDA(cudaStreamDestroy(s));
}

/* A call the runtime will not queue (here: on a destroyed stream) fails to launch. */
static void test_refused_enqueue_is_execution_failed(void **state) {
  (void)state;
  cublasHandle_t h = new_handle();
  cudaStream_t gone;
  ASSERT_CUDA(cudaStreamCreateWithFlags(&gone, cudaStreamNonBlocking));
  ASSERT_CUDA(cudaStreamDestroy(gone));
  ASSERT_BLAS(cublasSetStream(h, gone), CUBLAS_STATUS_SUCCESS);
  float *buf = dev_alloc(16);
  const float one = 1.0f;
  ASSERT_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, buf, 2, buf + 4, 2, &one,
                          buf + 8, 2),
              CUBLAS_STATUS_EXECUTION_FAILED);
  ASSERT_BLAS(cublasSgemv(h, CUBLAS_OP_N, 2, 2, &one, buf, 2, buf + 4, 1, &one, buf + 8, 1),
              CUBLAS_STATUS_EXECUTION_FAILED);
  (void)cudaGetLastError();
  ASSERT_BLAS(cublasSetStream(h, 0), CUBLAS_STATUS_SUCCESS);
  ASSERT_BLAS(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
  ASSERT_CUDA(cudaFree(buf));
}

/* ---- in child processes: a fault is sticky, the device count read once ---------------------- */

/* Runs one access in this process on buffers of the exact extents, or one
 * float short for the matrix or vector it names. Returns 0 when the call is
 * accepted and the synchronization then reports the fault (for "exact":
 * reports none). */
static int range_child(const char *which) {
  const struct {
    const char *name;
    int call; /* 0: gemm N N 3 x 4 x 5, lda 3, ldb 5, ldc 4; 1: batched N T 3 x 2 x 5, 3
               * entries, A broadcast, B T (2 x 5, ldb 2) 10 apart, C 6 apart; 2: gemv T
               * 3 x 4, x 3 elements incx -3, y 4 elements incy 2 */
    size_t a, b, c;
  } runs[] = {{"exact", 0, 15, 20, 15},    {"gemm-A", 0, 14, 20, 15}, {"gemm-C", 0, 15, 20, 14},
              {"batched-B", 1, 15, 29, 18}, {"gemv-x", 2, 12, 6, 7},   {"gemv-y", 2, 12, 7, 6}};
  size_t r = 0;
  while (r < sizeof runs / sizeof *runs && strcmp(runs[r].name, which) != 0) r++;
  if (r == sizeof runs / sizeof *runs) return 2;
  cublasHandle_t h = NULL;
  float *A = NULL, *B = NULL, *C = NULL;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS ||
      cudaMalloc((void **)&A, runs[r].a * sizeof(float)) != cudaSuccess ||
      cudaMalloc((void **)&B, runs[r].b * sizeof(float)) != cudaSuccess ||
      cudaMalloc((void **)&C, runs[r].c * sizeof(float)) != cudaSuccess)
    return 2;
  const float one = 1.0f, zero = 0.0f;
  cublasStatus_t st =
      runs[r].call == 0
          ? cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 5, &one, A, 3, B, 5, &zero, C, 4)
      : runs[r].call == 1
          ? cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, 3, 2, 5, &one, A, 3, 0, B, 2,
                                      10, &zero, C, 3, 6, 3)
          : cublasSgemv(h, CUBLAS_OP_T, 3, 4, &one, A, 3, B, -3, &zero, C, 2);
  cudaError_t e = cudaDeviceSynchronize();
  fprintf(stderr, "range child %s: %s, then synchronize -> %s\n", which,
          cublasGetStatusName(st), cudaGetErrorName(e));
  (void)cudaFree(A);
  (void)cudaFree(B);
  (void)cudaFree(C);
  (void)cublasDestroy(h);
  if (st != CUBLAS_STATUS_SUCCESS) return 3;
  return r == 0 ? e != cudaSuccess : e == cudaSuccess;
}

/* cublasCreate while the runtime has no device: 0 when it is NOT_INITIALIZED. */
static int no_device_child(void) {
  cublasHandle_t h = NULL;
  cublasStatus_t st = cublasCreate(&h);
  fprintf(stderr, "no-device child: cublasCreate -> %s\n", cublasGetStatusName(st));
  return st != CUBLAS_STATUS_NOT_INITIALIZED;
}

/* Runs this program as a child doing which, with env_first ahead of the
 * environment (NULL: none); fails the test unless the child exits 0. */
static void run_child(const char *which, const char *env_first) {
  extern char **environ;
  size_t n = 0;
  while (environ[n]) n++;
  char **envp = calloc(n + 2, sizeof *envp);
  assert_non_null(envp);
  size_t at = 0;
  if (env_first) envp[at++] = (char *)env_first;
  memcpy(envp + at, environ, n * sizeof *envp);
  char *argv[] = {"test_cublas_sim", "--child", (char *)which, NULL};
  pid_t pid;
  int status;
  assert_int_equal(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, envp), 0);
  free(envp);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("child %s: %s %d", which, WIFEXITED(status) ? "exit" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void test_out_of_range_access_faults(void **state) {
  (void)state;
  const char *children[] = {"exact", "gemm-A", "gemm-C", "batched-B", "gemv-x", "gemv-y"};
  for (size_t i = 0; i < sizeof children / sizeof *children; i++) run_child(children[i], NULL);
}

static void test_create_without_device_is_not_initialized(void **state) {
  (void)state;
  run_child("no-device", "CTML_CUDASIM_DEVICES=0");
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--child") == 0)
    return strcmp(argv[2], "no-device") == 0 ? no_device_child() : range_child(argv[2]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gemm_matches_definition),
      cmocka_unit_test(test_gemm_strided_batched_matches_definition),
      cmocka_unit_test(test_gemm_batched_matches_gemm),
      cmocka_unit_test(test_gemv_matches_definition),
      cmocka_unit_test(test_dot_products_accumulate_in_double),
      cmocka_unit_test(test_tf32_rounds_inputs_to_nearest_even),
      cmocka_unit_test(test_tf32_products_within_bound),
      cmocka_unit_test(test_invalid_arguments_are_rejected),
      cmocka_unit_test(test_null_and_destroyed_handles),
      cmocka_unit_test(test_handle_settings),
      cmocka_unit_test(test_status_names),
      cmocka_unit_test(test_calls_run_in_stream_order),
      cmocka_unit_test(test_captured_calls_replay),
      cmocka_unit_test(test_refused_enqueue_is_execution_failed),
      cmocka_unit_test(test_out_of_range_access_faults),
      cmocka_unit_test(test_create_without_device_is_not_initialized),
  };
  return CT_RUN_TESTS("cublas_sim", tests, NULL, NULL);
}
