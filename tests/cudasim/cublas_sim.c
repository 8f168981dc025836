/* SPDX-License-Identifier: MIT */
/* cudasim's cuBLAS stand-ins: the cuBLAS entry points cuda/cuda_backend.c uses,
 * written from cuBLAS's documented column-major semantics. Each compute call
 * validates its arguments as documented, then queues the work on the handle's
 * stream (ctsim_enqueue); the work checks every extent it touches
 * (ctsim_device_range_ok) before reading or writing. Dot products accumulate
 * in double and round once to float; CUBLAS_TF32_TENSOR_OP_MATH rounds the
 * inputs of gemm to TF32 first. Only CUBLAS_POINTER_MODE_HOST is supported:
 * alpha and beta are read when the call is made. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cublas_v2.h>
#include "cudasim.h"

/* ---- handles ------------------------------------------------------------------ */

struct cublasContext {
  cudaStream_t stream;
  void *workspace; /* user workspace; NULL and 0 with the default pool */
  size_t workspace_bytes;
  int user_workspace; /* cublasSetWorkspace was called since the last cublasSetStream */
  cublasMath_t math;
  cublasPointerMode_t pointer_mode;
  struct cublasContext *next_live;
};

/* Live handles: a destroyed or never-created handle is recognised without
 * reading through it. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cublasContext *live_handles;

static int handle_is_live(cublasHandle_t h) {
  if (!h) return 0;
  pthread_mutex_lock(&live_lock);
  struct cublasContext *c = live_handles;
  while (c && c != h) c = c->next_live;
  pthread_mutex_unlock(&live_lock);
  return c != NULL;
}

#define REQUIRE_HANDLE(h)                                         \
  do {                                                            \
    if (!handle_is_live(h)) return CUBLAS_STATUS_NOT_INITIALIZED; \
  } while (0)

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  int device;
  /* The handle belongs to the current device; no usable runtime, no handle. */
  if (cudaGetDevice(&device) != cudaSuccess) return CUBLAS_STATUS_NOT_INITIALIZED;
  struct cublasContext *c = calloc(1, sizeof *c);
  if (!c) return CUBLAS_STATUS_ALLOC_FAILED;
  c->math = CUBLAS_DEFAULT_MATH;
  c->pointer_mode = CUBLAS_POINTER_MODE_HOST;
  pthread_mutex_lock(&live_lock);
  c->next_live = live_handles;
  live_handles = c;
  pthread_mutex_unlock(&live_lock);
  *handle = c;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  pthread_mutex_lock(&live_lock);
  struct cublasContext **p = &live_handles;
  while (*p && *p != handle) p = &(*p)->next_live;
  struct cublasContext *c = handle ? *p : NULL;
  if (c) *p = c->next_live;
  pthread_mutex_unlock(&live_lock);
  if (!c) return CUBLAS_STATUS_NOT_INITIALIZED;
  /* Documented: releasing the handle synchronizes the device. */
  (void)cudaDeviceSynchronize();
  free(c);
  return CUBLAS_STATUS_SUCCESS;
}

/* Sets the stream and, as documented, puts the workspace back to the default pool. */
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  REQUIRE_HANDLE(handle);
  handle->stream = stream;
  handle->workspace = NULL;
  handle->workspace_bytes = 0;
  handle->user_workspace = 0;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t *stream) {
  REQUIRE_HANDLE(handle);
  if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

/* The workspace must be 256-byte aligned (NULL is); any size, 0 included. */
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void *workspace, size_t bytes) {
  REQUIRE_HANDLE(handle);
  if ((uintptr_t)workspace % 256 != 0) return CUBLAS_STATUS_INVALID_VALUE;
  handle->workspace = workspace;
  handle->workspace_bytes = bytes;
  handle->user_workspace = 1;
  return CUBLAS_STATUS_SUCCESS;
}

/* The handle's user workspace (test hook, not cuBLAS API): returns 1 and sets
 * *workspace and *bytes when one is set, else 0 (the default pool). */
int ctsim_cublas_workspace(cublasHandle_t handle, void **workspace, size_t *bytes) {
  if (!handle_is_live(handle) || !handle->user_workspace) return 0;
  *workspace = handle->workspace;
  *bytes = handle->workspace_bytes;
  return 1;
}

/* Modes the stand-ins compute as documented: default and pedantic (fp32
 * inputs) and TF32, each optionally with the reduced-precision-reduction flag
 * (which changes nothing here: every reduction is in double). The deprecated
 * tensor-op mode (fp16 inputs) and the emulation modes are valid cuBLAS modes
 * that are not simulated: NOT_SUPPORTED. Anything else: INVALID_VALUE. */
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  REQUIRE_HANDLE(handle);
  unsigned flags = (unsigned)mode & CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  unsigned base = (unsigned)mode & ~flags;
  switch (base) {
    case CUBLAS_DEFAULT_MATH:
    case CUBLAS_PEDANTIC_MATH:
    case CUBLAS_TF32_TENSOR_OP_MATH:
      handle->math = mode;
      return CUBLAS_STATUS_SUCCESS;
    case CUBLAS_TENSOR_OP_MATH:
    case CUBLAS_FP32_EMULATED_BF16X9_MATH:
    case CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH:
      return CUBLAS_STATUS_NOT_SUPPORTED;
    default:
      return CUBLAS_STATUS_INVALID_VALUE;
  }
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode) {
  REQUIRE_HANDLE(handle);
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math;
  return CUBLAS_STATUS_SUCCESS;
}

/* Device pointer mode is a valid cuBLAS mode the stand-ins do not simulate. */
cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
  REQUIRE_HANDLE(handle);
  if (mode == CUBLAS_POINTER_MODE_HOST) return CUBLAS_STATUS_SUCCESS;
  if (mode == CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_NOT_SUPPORTED;
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t *mode) {
  REQUIRE_HANDLE(handle);
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->pointer_mode;
  return CUBLAS_STATUS_SUCCESS;
}

/* ---- status names --------------------------------------------------------------- */

const char *cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "unrecognized status";
}

const char *cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "an unsupported value or parameter was passed to the function";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "the function requires an architectural feature absent from the device";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the function failed to launch on the GPU";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the requested functionality is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "the license check failed";
  }
  return "unrecognized status";
}

/* ---- shared helpers ---------------------------------------------------------------- */

static int op_valid(cublasOperation_t op) {
  return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C;
}

static int max1(int v) { return v > 1 ? v : 1; }

/* Floats spanned by a column-major rows x cols matrix with leading dimension ld. */
static size_t matrix_extent(int rows, int cols, int ld) {
  if (rows == 0 || cols == 0) return 0;
  return (size_t)(cols - 1) * (size_t)ld + (size_t)rows;
}

/* Floats spanned by a vector of len elements spaced |inc| apart. */
static size_t vector_extent(int len, int inc) {
  if (len == 0) return 0;
  return 1 + (size_t)(len - 1) * (size_t)(inc < 0 ? -(long long)inc : inc);
}

/* base + offset floats, computed on addresses: the result is only dereferenced
 * once ctsim_device_range_ok has placed it inside an allocation. */
static void *float_offset(const float *base, long long offset) {
  return (void *)((uintptr_t)base + (uintptr_t)offset * sizeof(float));
}

/* Whether extent floats at p lie inside one allocation; nothing to check when
 * extent is 0. On failure the runtime has recorded the fault naming what. */
static int range_ok(const float *p, size_t extent, const char *what) {
  if (extent == 0) return 1;
  size_t bytes = extent > SIZE_MAX / sizeof(float) ? SIZE_MAX : extent * sizeof(float);
  return ctsim_device_range_ok(p, bytes, what);
}

/* The status for an operation the runtime would not queue. */
static cublasStatus_t enqueue_status(cudaError_t e) {
  if (e == cudaSuccess) return CUBLAS_STATUS_SUCCESS;
  return e == cudaErrorMemoryAllocation ? CUBLAS_STATUS_ALLOC_FAILED
                                        : CUBLAS_STATUS_EXECUTION_FAILED;
}

/* x rounded to TF32: 10 explicit mantissa bits, to nearest even, float's
 * exponent range kept (values past the largest TF32 round to infinity). */
static float tf32_round(float x) {
  if (!isfinite(x)) return x;
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  u += 0xfffu + ((u >> 13) & 1u);
  u &= ~0x1fffu;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* alpha dot + beta c with the dot product rounded to float first; c is not
 * read when beta is 0. */
static float scale_add(float alpha, double dot, float beta, const float *c) {
  float r = alpha * (float)dot;
  return beta == 0.0f ? r : r + beta * *c;
}

/* NVIDIA_TF32_OVERRIDE=0 keeps single precision off TF32 whatever the math mode. */
static int tf32_enabled(cublasMath_t math) {
  if (((unsigned)math & ~(unsigned)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION) !=
      CUBLAS_TF32_TENSOR_OP_MATH)
    return 0;
  const char *override = getenv("NVIDIA_TF32_OVERRIDE");
  return !(override && strcmp(override, "0") == 0);
}

/* ---- gemm, strided batched and batched gemm --------------------------------------------- */

typedef struct gemm_args {
  int batched; /* 1: cublasSgemmStridedBatched, 2: cublasSgemmBatched; matrices A[i] */
  /* cublasSgemmBatched: device arrays of batch pointers, read when the product runs */
  const float *const *Aarr, *const *Barr;
  float *const *Carr;
  cublasOperation_t transa, transb;
  int m, n, k, lda, ldb, ldc, batch;
  long long stride_a, stride_b, stride_c;
  float alpha, beta;
  int tf32;
  const float *A, *B;
  float *C;
} gemm_args;

/* Copies op(X) so that its inner (k) index is contiguous: dst[o * k + l] is
 * element (o, l) of the stored matrix X when inner_contiguous (X[l + o ld]),
 * else element (l, o) (X[o + l ld]); rounded to TF32 when tf32. */
static void pack(const float *X, int ld, int outer, int k, int inner_contiguous, int tf32,
                 float *dst) {
  for (int o = 0; o < outer; o++)
    for (int l = 0; l < k; l++) {
      float v = inner_contiguous ? X[l + (size_t)o * ld] : X[o + (size_t)l * ld];
      dst[(size_t)o * k + l] = tf32 ? tf32_round(v) : v;
    }
}

static const char *gemm_name(const gemm_args *a) {
  return a->batched == 2 ? "cublasSgemmBatched"
                         : a->batched ? "cublasSgemmStridedBatched" : "cublasSgemm";
}

/* Entry i's matrices: from the pointer arrays (cublasSgemmBatched, once
 * gemm_arrays_ok has checked them) or base + i stride. */
static const float *gemm_a(const gemm_args *a, int i) {
  return a->batched == 2 ? a->Aarr[i] : float_offset(a->A, i * a->stride_a);
}
static const float *gemm_b(const gemm_args *a, int i) {
  return a->batched == 2 ? a->Barr[i] : float_offset(a->B, i * a->stride_b);
}
static float *gemm_c(const gemm_args *a, int i) {
  return a->batched == 2 ? a->Carr[i] : float_offset(a->C, i * a->stride_c);
}

/* cublasSgemmBatched: the three pointer arrays lie in device memory. */
static int gemm_arrays_ok(const gemm_args *a) {
  if (a->batched != 2) return 1;
  size_t bytes = (size_t)a->batch * sizeof(void *);
  return ctsim_device_range_ok(a->Aarr, bytes, "cublasSgemmBatched: Aarray") &&
         ctsim_device_range_ok(a->Barr, bytes, "cublasSgemmBatched: Barray") &&
         ctsim_device_range_ok(a->Carr, bytes, "cublasSgemmBatched: Carray");
}

/* Checks every extent entry i of a gemm touches; A and B only when read. */
static int gemm_ranges_ok(const gemm_args *a, int i, int use_ab) {
  const char *fn = gemm_name(a);
  /* A and B as stored: op(A) is m x k, op(B) is k x n. */
  int a_rows = a->transa == CUBLAS_OP_N ? a->m : a->k;
  int a_cols = a->transa == CUBLAS_OP_N ? a->k : a->m;
  int b_rows = a->transb == CUBLAS_OP_N ? a->k : a->n;
  int b_cols = a->transb == CUBLAS_OP_N ? a->n : a->k;
  char at[16] = "", what[160];
  if (a->batched) snprintf(at, sizeof at, "[%d]", i);
  if (use_ab) {
    snprintf(what, sizeof what, "%s: A%s (%d x %d, lda %d)", fn, at, a_rows, a_cols, a->lda);
    if (!range_ok(gemm_a(a, i), matrix_extent(a_rows, a_cols, a->lda), what))
      return 0;
    snprintf(what, sizeof what, "%s: B%s (%d x %d, ldb %d)", fn, at, b_rows, b_cols, a->ldb);
    if (!range_ok(gemm_b(a, i), matrix_extent(b_rows, b_cols, a->ldb), what))
      return 0;
  }
  snprintf(what, sizeof what, "%s: C%s (%d x %d, ldc %d)", fn, at, a->m, a->n, a->ldc);
  return range_ok(gemm_c(a, i), matrix_extent(a->m, a->n, a->ldc), what);
}

/* C[i] = alpha op(A[i]) op(B[i]) + beta C[i] for each batch entry i, once
 * every extent is checked. A and B are not read when alpha is 0 or k is 0. */
static void gemm_run(void *p) {
  const gemm_args *a = p;
  int use_ab = a->alpha != 0.0f && a->k > 0;
  if (!gemm_arrays_ok(a)) return;
  for (int i = 0; i < a->batch; i++)
    if (!gemm_ranges_ok(a, i, use_ab)) return;
  /* op(A) and op(B) copied with k contiguous, rounded to TF32 when on. */
  float *ap = use_ab ? malloc((size_t)a->m * a->k * sizeof *ap) : NULL;
  float *bp = use_ab ? malloc((size_t)a->n * a->k * sizeof *bp) : NULL;
  if (use_ab && (!ap || !bp)) {
    ctsim_fault("%s: no host memory for a %d x %d x %d product", gemm_name(a), a->m, a->n,
                a->k);
    free(ap);
    free(bp);
    return;
  }
  for (int i = 0; i < a->batch; i++) {
    const float *A = gemm_a(a, i), *B = gemm_b(a, i);
    float *C = gemm_c(a, i);
    if (!use_ab) {
      for (int j = 0; j < a->n; j++)
        for (int r = 0; r < a->m; r++) {
          float *c = &C[r + (size_t)j * a->ldc];
          *c = a->beta == 0.0f ? 0.0f : a->beta * *c;
        }
      continue;
    }
    pack(A, a->lda, a->m, a->k, a->transa != CUBLAS_OP_N, a->tf32, ap);
    pack(B, a->ldb, a->n, a->k, a->transb == CUBLAS_OP_N, a->tf32, bp);
    for (int j = 0; j < a->n; j++)
      for (int r = 0; r < a->m; r++) {
        const float *x = &ap[(size_t)r * a->k], *y = &bp[(size_t)j * a->k];
        double dot = 0.0;
        for (int l = 0; l < a->k; l++) dot += (double)x[l] * (double)y[l];
        float *c = &C[r + (size_t)j * a->ldc];
        *c = scale_add(a->alpha, dot, a->beta, c);
      }
  }
  free(ap);
  free(bp);
}

/* Documented validation of a (batched) gemm, then the queued product. */
static cublasStatus_t gemm_call(cublasHandle_t handle, gemm_args *a, const float *alpha,
                                const float *beta) {
  REQUIRE_HANDLE(handle);
  if (a->m < 0 || a->n < 0 || a->k < 0 || a->batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (!op_valid(a->transa) || !op_valid(a->transb)) return CUBLAS_STATUS_INVALID_VALUE;
  if (a->lda < max1(a->transa == CUBLAS_OP_N ? a->m : a->k)) return CUBLAS_STATUS_INVALID_VALUE;
  if (a->ldb < max1(a->transb == CUBLAS_OP_N ? a->k : a->n)) return CUBLAS_STATUS_INVALID_VALUE;
  if (a->ldc < max1(a->m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  if (a->batched != 2 && !a->C && *beta != 0.0f) return CUBLAS_STATUS_INVALID_VALUE;
  if (a->m == 0 || a->n == 0 || a->batch == 0) return CUBLAS_STATUS_SUCCESS;
  a->alpha = *alpha;
  a->beta = *beta;
  a->tf32 = tf32_enabled(handle->math);
  return enqueue_status(ctsim_enqueue(handle->stream, gemm_name(a), gemm_run, a, sizeof *a));
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
                              cublasOperation_t transb, int m, int n, int k, const float *alpha,
                              const float *A, int lda, const float *B, int ldb, const float *beta,
                              float *C, int ldc) {
  gemm_args a = {.batched = 0, .transa = transa, .transb = transb, .m = m, .n = n, .k = k,
                 .lda = lda, .ldb = ldb, .ldc = ldc, .batch = 1, .A = A, .B = B, .C = C};
  return gemm_call(handle, &a, alpha, beta);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda,
                                         long long strideA, const float *B, int ldb,
                                         long long strideB, const float *beta, float *C, int ldc,
                                         long long strideC, int batchCount) {
  gemm_args a = {.batched = 1, .transa = transa, .transb = transb, .m = m, .n = n, .k = k,
                 .lda = lda, .ldb = ldb, .ldc = ldc, .batch = batchCount, .stride_a = strideA,
                 .stride_b = strideB, .stride_c = strideC, .A = A, .B = B, .C = C};
  return gemm_call(handle, &a, alpha, beta);
}

cublasStatus_t cublasSgemmBatched(cublasHandle_t handle, cublasOperation_t transa,
                                  cublasOperation_t transb, int m, int n, int k,
                                  const float *alpha, const float *const Aarray[], int lda,
                                  const float *const Barray[], int ldb, const float *beta,
                                  float *const Carray[], int ldc, int batchCount) {
  gemm_args a = {.batched = 2, .transa = transa, .transb = transb, .m = m, .n = n, .k = k,
                 .lda = lda, .ldb = ldb, .ldc = ldc, .batch = batchCount, .Aarr = Aarray,
                 .Barr = Barray, .Carr = Carray};
  return gemm_call(handle, &a, alpha, beta);
}

/* ---- gemv -------------------------------------------------------------------------------- */

typedef struct gemv_args {
  cublasOperation_t trans;
  int m, n, lda, incx, incy;
  float alpha, beta;
  const float *A, *x;
  float *y;
} gemv_args;

/* Element e of a vector of len elements with increment inc: with a negative
 * increment the vector starts from the end of its storage (BLAS). */
static size_t vector_index(int e, int len, int inc) {
  return inc > 0 ? (size_t)e * (size_t)inc : (size_t)(len - 1 - e) * (size_t)(-(long long)inc);
}

/* y = alpha op(A) x + beta y; A and x are not read when alpha is 0. */
static void gemv_run(void *p) {
  const gemv_args *a = p;
  int xlen = a->trans == CUBLAS_OP_N ? a->n : a->m, ylen = a->trans == CUBLAS_OP_N ? a->m : a->n;
  int use_ax = a->alpha != 0.0f;
  char what[160];
  if (use_ax) {
    snprintf(what, sizeof what, "cublasSgemv: A (%d x %d, lda %d)", a->m, a->n, a->lda);
    if (!range_ok(a->A, matrix_extent(a->m, a->n, a->lda), what)) return;
    snprintf(what, sizeof what, "cublasSgemv: x (%d elements, incx %d)", xlen, a->incx);
    if (!range_ok(a->x, vector_extent(xlen, a->incx), what)) return;
  }
  snprintf(what, sizeof what, "cublasSgemv: y (%d elements, incy %d)", ylen, a->incy);
  if (!range_ok(a->y, vector_extent(ylen, a->incy), what)) return;
  for (int e = 0; e < ylen; e++) {
    float *y = &a->y[vector_index(e, ylen, a->incy)];
    if (!use_ax) {
      *y = a->beta == 0.0f ? 0.0f : a->beta * *y;
      continue;
    }
    double dot = 0.0;
    for (int l = 0; l < xlen; l++) {
      size_t at = a->trans == CUBLAS_OP_N ? (size_t)e + (size_t)l * a->lda
                                          : (size_t)l + (size_t)e * a->lda;
      dot += (double)a->A[at] * (double)a->x[vector_index(l, xlen, a->incx)];
    }
    *y = scale_add(a->alpha, dot, a->beta, y);
  }
}

/* TF32 math does not apply: matrix-vector products keep fp32 inputs. */
cublasStatus_t cublasSgemv_v2(cublasHandle_t handle, cublasOperation_t trans, int m, int n,
                              const float *alpha, const float *A, int lda, const float *x,
                              int incx, const float *beta, float *y, int incy) {
  REQUIRE_HANDLE(handle);
  if (m < 0 || n < 0 || incx == 0 || incy == 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (!op_valid(trans) || lda < max1(m) || !alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  gemv_args a = {.trans = trans, .m = m, .n = n, .lda = lda, .incx = incx, .incy = incy,
                 .alpha = *alpha, .beta = *beta, .A = A, .x = x, .y = y};
  return enqueue_status(ctsim_enqueue(handle->stream, "cublasSgemv", gemv_run, &a, sizeof a));
}
