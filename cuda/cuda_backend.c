/* SPDX-License-Identifier: MIT */
/* cuda: the CUDA backend. Host side on the CUDA runtime API and cuBLAS; the
 * kernels are in cuda_kernels.cu. One stream per context carries every launch,
 * copy, fill and cuBLAS call, in order; nothing between a plan's launches waits
 * or allocates, so a training step can be recorded as a CUDA graph. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime_api.h>
#include "backend_impl.h"
#include "cublas_loader.h" /* cuBLAS calls go through the run-time loaded library */
#include "cuda_kernels.h"

/* cuda_kernels.h mirrors the slots of the optimizer's device record. */
_Static_assert(CT__CU_HYPER_STEP == CT__HYPER_STEP && CT__CU_HYPER_LR == CT__HYPER_LR &&
                   CT__CU_HYPER_BC1 == CT__HYPER_BC1 && CT__CU_HYPER_BC2 == CT__HYPER_BC2 &&
                   CT__CU_HYPER_SCALE == CT__HYPER_SCALE && CT__CU_HYPER_NORM == CT__HYPER_NORM &&
                   CT__CU_HYPER_PEAK_LR == CT__HYPER_PEAK_LR &&
                   CT__CU_HYPER_MIN_LR == CT__HYPER_MIN_LR &&
                   CT__CU_HYPER_WARMUP == CT__HYPER_WARMUP &&
                   CT__CU_HYPER_TOTAL == CT__HYPER_TOTAL && CT__CU_HYPER_CLIP == CT__HYPER_CLIP &&
                   CT__CU_HYPER_BETA1 == CT__HYPER_BETA1 &&
                   CT__CU_HYPER_BETA2 == CT__HYPER_BETA2 && CT__CU_HYPER_EPS == CT__HYPER_EPS &&
                   CT__CU_HYPER_WD == CT__HYPER_WD,
               "cuda_kernels.h: CT__CU_HYPER_* differ from CT__HYPER_*");

/* cuBLAS workspace, given at open so that no cuBLAS call allocates (inside a
 * graph capture it must not). */
#define CT__CUDA_WORKSPACE ((size_t)32 << 20)
/* Length of the ones vector of the bias gradient (rows are summed in chunks of it). */
#define CT__CUDA_ONES ((int64_t)1 << 18)

typedef struct ct__cuda_ctx {
  int device;
  cudaStream_t stream;
  cublasHandle_t blas;
  void *workspace;
  ct__cu_errrec *err; /* device-detected id errors, reported by sync */
  float *ones;        /* CT__CUDA_ONES ones */
  double *partials;   /* CT__CU_PARTIALS partial sums of a loss */
  float *kv_part;     /* CT__CU_KV_PARTIALS floats: kv_attention's per-chunk partials */
  double *ln_part;    /* CT__CU_LN_PARTIALS doubles: layer norm's per-chunk gradient sums */
} ct__cuda_ctx;

/* Settings made before open (ctx NULL) and the device that open chose. */
static int ct__cuda_device_option = -1; /* -1: CTML_CUDA_DEVICE, else 0 */
static bool ct__cuda_tf32 = false;
static int ct__cuda_open_device = -1;

/* ---- errors ------------------------------------------------------------------- */

/* Fails naming the runtime call; clears the thread's last error so a later
 * launch check does not report this one again. */
static ct_status ct__cuda_fail(cudaError_t e, const char *call) {
  (void)cudaGetLastError();
  return ct__fail(e == cudaErrorMemoryAllocation ? CT_ERR_NOMEM : CT_ERR_DEVICE, "cuda: %s: %s: %s",
                  call, cudaGetErrorName(e), cudaGetErrorString(e));
}

static ct_status ct__cublas_fail(cublasStatus_t st, const char *call) {
  (void)cudaGetLastError();
  return ct__fail(st == CUBLAS_STATUS_ALLOC_FAILED ? CT_ERR_NOMEM : CT_ERR_DEVICE,
                  "cuda: %s: %s: %s", call, cublasGetStatusName(st), cublasGetStatusString(st));
}

/* CT__CU(cudaFoo, (args)): calls cudaFoo(args) (or a kernel launch function)
 * and returns the failure naming it. CT__BLAS is the same for cuBLAS. */
#define CT__CU(fn, args)                                               \
  do {                                                                 \
    cudaError_t ct__e_ = fn args;                                      \
    if (ct__e_ != cudaSuccess) return ct__cuda_fail(ct__e_, #fn);      \
  } while (0)
#define CT__BLAS(fn, args)                                                   \
  do {                                                                       \
    cublasStatus_t ct__b_ = fn args;                                         \
    if (ct__b_ != CUBLAS_STATUS_SUCCESS) return ct__cublas_fail(ct__b_, #fn); \
  } while (0)

/* ---- device selection ------------------------------------------------------------ */

/* Parses a device index: decimal digits only. */
static bool ct__cuda_parse_index(const char *s, int *out) {
  long v = 0;
  if (!s || !*s) return false;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9' || v > 1000000) return false;
    v = v * 10 + (*p - '0');
  }
  *out = (int)v;
  return true;
}

/* The device to open: the "device" option, else CTML_CUDA_DEVICE, else 0;
 * -1 when CTML_CUDA_DEVICE is not an index. *how names the source. */
static int ct__cuda_wanted(const char **how) {
  *how = "the default";
  if (ct__cuda_device_option >= 0) {
    *how = "option 'device'";
    return ct__cuda_device_option;
  }
  const char *env = getenv("CTML_CUDA_DEVICE");
  int dev = 0;
  if (!env || !*env) return 0;
  *how = "CTML_CUDA_DEVICE";
  return ct__cuda_parse_index(env, &dev) ? dev : -1;
}

/* ---- open ------------------------------------------------------------------------ */

/* TF32 rounds the inputs of each product to 10 mantissa bits: about 1e-3
 * relative error per product. Off (full fp32) unless the "tf32" option is on. */
static ct_status ct__cuda_math(ct__cuda_ctx *c, bool tf32) {
  CT__BLAS(cublasSetMathMode, (c->blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return CT_OK;
}

/* Frees whatever part of c was created. */
static void ct__cuda_destroy(ct__cuda_ctx *c) {
  if (c->stream) (void)cudaStreamSynchronize(c->stream);
  if (c->blas) (void)cublasDestroy(c->blas);
  (void)cudaFree(c->ones);
  (void)cudaFree(c->partials);
  (void)cudaFree(c->kv_part);
  (void)cudaFree(c->ln_part);
  (void)cudaFree(c->err);
  (void)cudaFree(c->workspace);
  if (c->stream) (void)cudaStreamDestroy(c->stream);
  (void)cudaGetLastError();
  free(c);
}

/* Stream, cuBLAS handle (stream, workspace, math mode), error record, scratch. */
static ct_status ct__cuda_init(ct__cuda_ctx *c) {
  CT__CU(cudaSetDevice, (c->device));
  CT__CU(cudaStreamCreateWithFlags, (&c->stream, cudaStreamNonBlocking));
  CT__BLAS(cublasCreate, (&c->blas));
  /* cublasSetStream resets the workspace: set the workspace after it. */
  CT__BLAS(cublasSetStream, (c->blas, c->stream));
  CT__CU(cudaMalloc, (&c->workspace, CT__CUDA_WORKSPACE));
  CT__BLAS(cublasSetWorkspace, (c->blas, c->workspace, CT__CUDA_WORKSPACE));
  CT__TRY(ct__cuda_math(c, ct__cuda_tf32));
  CT__CU(cudaMalloc, ((void **)&c->err, sizeof *c->err));
  CT__CU(cudaMalloc, ((void **)&c->partials, CT__CU_PARTIALS * sizeof(double)));
  CT__CU(cudaMalloc, ((void **)&c->kv_part, (size_t)CT__CU_KV_PARTIALS * sizeof(float)));
  CT__CU(cudaMalloc, ((void **)&c->ln_part, (size_t)CT__CU_LN_PARTIALS * sizeof(double)));
  CT__CU(cudaMalloc, ((void **)&c->ones, (size_t)CT__CUDA_ONES * sizeof(float)));
  CT__CU(ct__cu_preload, ());
  CT__CU(cudaMemsetAsync, (c->err, 0, sizeof *c->err, c->stream));
  CT__CU(ct__cu_fill, (c->ones, 1.0f, CT__CUDA_ONES, c->stream));
  CT__CU(cudaStreamSynchronize, (c->stream));
  return CT_OK;
}

/* "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB, CUDA driver 13.0)" */
static ct_status ct__cuda_describe(const ct__cuda_ctx *c, char *out, size_t len) {
  struct cudaDeviceProp prop;
  int driver = 0;
  CT__CU(cudaGetDeviceProperties, (&prop, c->device));
  CT__CU(cudaDriverGetVersion, (&driver));
  snprintf(out, len, "%.100s (sm_%d%d, %.1f GiB, CUDA driver %d.%d)", prop.name, prop.major,
           prop.minor, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), driver / 1000,
           (driver % 1000) / 10);
  return CT_OK;
}

/* Picks the device, creates the context, describes the device; any failure
 * makes the backend absent with the reason. */
static ct_status ct__cuda_open(void **ctx, char *device, size_t device_len) {
  *ctx = NULL;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return ct__fail(CT_ERR_BACKEND_ABSENT, "no usable CUDA device: CUDA runtime error %d (%s): %s",
                    (int)e, cudaGetErrorName(e), cudaGetErrorString(e));
  }
  if (count < 1)
    return ct__fail(CT_ERR_BACKEND_ABSENT, "no usable CUDA device: the CUDA runtime sees none");
  CT__TRY(ct__cublas_load()); /* after the device check: loading cuBLAS costs ~200 MB */
  const char *how;
  int dev = ct__cuda_wanted(&how);
  if (dev < 0)
    return ct__fail(CT_ERR_BACKEND_ABSENT, "no usable CUDA device: CTML_CUDA_DEVICE='%s' is not "
                    "a device index", getenv("CTML_CUDA_DEVICE"));
  if (dev >= count)
    return ct__fail(CT_ERR_BACKEND_ABSENT, "no usable CUDA device: device %d was selected by %s, "
                    "but the CUDA runtime sees %d device(s)", dev, how, count);
  ct__cuda_ctx *c = calloc(1, sizeof *c);
  if (!c) return ct__fail(CT_ERR_BACKEND_ABSENT, "no usable CUDA device: out of host memory");
  c->device = dev;
  ct_status s = ct__cuda_init(c);
  if (s == CT_OK) s = ct__cuda_describe(c, device, device_len);
  if (s != CT_OK) {
    ct__cuda_destroy(c);
    return ct__fail(CT_ERR_BACKEND_ABSENT, "no usable CUDA device: device %d: %s", dev,
                    ct_last_error());
  }
  ct__cuda_open_device = dev;
  *ctx = c;
  return CT_OK;
}

/* ---- memory ------------------------------------------------------------------------ */

/* cudaMalloc; out of memory names the request and what the device has free. */
static ct_status ct__cuda_alloc(void *ctx, size_t bytes, void **buf) {
  ct__cuda_ctx *c = ctx;
  *buf = NULL;
  CT__CU(cudaSetDevice, (c->device));
  cudaError_t e = cudaMalloc(buf, bytes ? bytes : 4);
  if (e == cudaSuccess) return CT_OK;
  *buf = NULL;
  if (e != cudaErrorMemoryAllocation) return ct__cuda_fail(e, "cudaMalloc");
  (void)cudaGetLastError();
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) (void)cudaGetLastError();
  return ct__fail(CT_ERR_NOMEM, "cuda: cannot allocate %zu bytes (%zu bytes free of %zu)", bytes,
                  free_bytes, total_bytes);
}

/* Frees a buffer (cudaFree waits for work that may still use it). */
static void ct__cuda_release(void *ctx, void *buf) {
  ct__cuda_ctx *c = ctx;
  if (!buf) return;
  (void)cudaSetDevice(c->device);
  (void)cudaFree(buf);
  (void)cudaGetLastError();
}

/* Copies in stream order and waits: the host buffer may go once this returns. */
static ct_status ct__cuda_upload_at(void *ctx, void *dst, size_t offset, const void *host,
                                    size_t bytes) {
  ct__cuda_ctx *c = ctx;
  if (bytes == 0) return CT_OK;
  CT__CU(cudaSetDevice, (c->device));
  CT__CU(cudaMemcpyAsync, ((char *)dst + offset, host, bytes, cudaMemcpyHostToDevice, c->stream));
  CT__CU(cudaStreamSynchronize, (c->stream));
  return CT_OK;
}

/* Uploads at offset 0. */
static ct_status ct__cuda_upload(void *ctx, void *dst, const void *host, size_t bytes) {
  return ct__cuda_upload_at(ctx, dst, 0, host, bytes);
}

/* Copies after all queued work, and waits. */
static ct_status ct__cuda_download_at(void *ctx, void *host, const void *src, size_t offset,
                                      size_t bytes) {
  ct__cuda_ctx *c = ctx;
  if (bytes == 0) return CT_OK;
  CT__CU(cudaSetDevice, (c->device));
  CT__CU(cudaMemcpyAsync, (host, (const char *)src + offset, bytes, cudaMemcpyDeviceToHost,
                           c->stream));
  CT__CU(cudaStreamSynchronize, (c->stream));
  return CT_OK;
}

/* Downloads from offset 0. */
static ct_status ct__cuda_download(void *ctx, void *host, const void *src, size_t bytes) {
  return ct__cuda_download_at(ctx, host, src, 0, bytes);
}

/* A view is a pointer into its base; 256 bytes is cudaMalloc's alignment, so a
 * tensor in an arena is aligned as a buffer of its own would be. */
static size_t ct__cuda_view_align(void *ctx) { return 256; }

static ct_status ct__cuda_view(void *ctx, void *base, size_t offset, size_t bytes, void **out) {
  *out = (char *)base + offset;
  return CT_OK;
}

static void ct__cuda_release_view(void *ctx, void *view) {}

/* Queued, never waited for (it may be recorded into a graph). */
static ct_status ct__cuda_fill(void *ctx, void *buf, float value, int64_t n) {
  ct__cuda_ctx *c = ctx;
  if (n <= 0) return CT_OK;
  if (value == 0.0f)
    CT__CU(cudaMemsetAsync, (buf, 0, (size_t)n * sizeof(float), c->stream));
  else
    CT__CU(ct__cu_fill, (buf, value, n, c->stream));
  return CT_OK;
}

/* The stream and device of an open context, for the NCCL collective. */
cudaStream_t ct__cuda_stream(void *ctx);
int ct__cuda_device(void *ctx);
cudaStream_t ct__cuda_stream(void *ctx) { return ((ct__cuda_ctx *)ctx)->stream; }
int ct__cuda_device(void *ctx) { return ((ct__cuda_ctx *)ctx)->device; }

/* Waits for the stream, then reports (once) the id error a kernel recorded. */
static ct_status ct__cuda_sync(void *ctx) {
  ct__cuda_ctx *c = ctx;
  ct__cu_errrec r;
  CT__CU(cudaSetDevice, (c->device));
  CT__CU(cudaMemcpyAsync, (&r, c->err, sizeof r, cudaMemcpyDeviceToHost, c->stream));
  CT__CU(cudaStreamSynchronize, (c->stream));
  if (!r.flag) return CT_OK;
  CT__CU(cudaMemsetAsync, (c->err, 0, sizeof *c->err, c->stream));
  CT__CU(cudaStreamSynchronize, (c->stream));
  unsigned long long key = ~r.nkey;
  long long position = (long long)(key >> 32);
  int value = (int)(int32_t)(uint32_t)(key & 0xffffffffull);
  static const char *const kinds[3] = {"token id", "target id", "position"};
  return ct__fail(CT_ERR_RANGE, "node %d (%s): %s %d at position %lld is outside [0, %lld)",
                  r.node, ct_op_name((ct_op)r.op), kinds[r.kind >= 0 && r.kind < 3 ? r.kind : 0],
                  value, position, r.limit);
}

/* ---- generators ------------------------------------------------------------------------ */

/* y = rows of the table picked by the ids; bad ids are recorded on the device. */
static ct_status ct__cuda_embedding_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  int64_t n = ct_object_numel(a->in_obj[0]), vocab = a->param_obj[0]->dims[0],
          width = a->param_obj[0]->dims[1];
  CT__CU(ct__cu_embedding_fwd, (a->in[0], a->param[0], a->out[0], n, vocab, width, c->err,
                                a->node, (int)a->op, c->stream));
  return CT_OK;
}

/* dtable += scatter of dy by id (deterministic, in position order). */
static ct_status ct__cuda_embedding_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  int64_t n = ct_object_numel(a->in_obj[0]), vocab = a->param_obj[0]->dims[0],
          width = a->param_obj[0]->dims[1];
  if (!a->dparam[0]) return CT_OK;
  CT__CU(ct__cu_embedding_rev, (a->in[0], a->dout[0], a->dparam[0], n, vocab, width, c->stream));
  return CT_OK;
}

/* cuBLAS takes int dimensions. */
static ct_status ct__cuda_gemm_dims(int64_t rows, int64_t k, int64_t m) {
  if (rows > INT_MAX || k > INT_MAX || m > INT_MAX)
    return ct__fail(CT_ERR_UNSUPPORTED, "cuda: linear [%lld,%lld]x[%lld,%lld]: a dimension "
                    "exceeds cuBLAS's int range", (long long)rows, (long long)k, (long long)k,
                    (long long)m);
  return CT_OK;
}

/* y[rows,m] = x[rows,k] W[k,m] (+ b[m]). cuBLAS is column-major: a row-major
 * R x C matrix with contiguous rows is, to cuBLAS, its C x R transpose with
 * leading dimension C. So x is x^T (k x rows, ld k), W is W^T (m x k, ld m) and
 * y is y^T (m x rows, ld m); the same holds for dx, dW and dy below. */
static ct_status ct__cuda_linear_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  int64_t rows = ct__rows(a->in_obj[0]), k = ct__cols(a->in_obj[0]), m = ct__cols(a->out_obj[0]);
  const float one = 1.0f, zero = 0.0f;
  bool bias = a->n_params > 1 && a->param[1];
  CT__TRY(ct__cuda_gemm_dims(rows, k, m));
  /* With a bias, y starts as b on every row and the product is added (beta 1). */
  if (bias) CT__CU(ct__cu_bias_rows, (a->param[1], a->out[0], rows, m, c->stream));
  /* y = x W  <=>  y^T (m x rows) = W^T (m x k, ld m) . x^T (k x rows, ld k): no transposes. */
  CT__BLAS(cublasSgemm, (c->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)m, (int)rows, (int)k, &one,
                         a->param[0], (int)m, a->in[0], (int)k, bias ? &one : &zero, a->out[0],
                         (int)m));
  return CT_OK;
}

/* linear's reverse from the output cotangent dy: dx = dy W^T + dx_beta dx,
 * dW += x^T dy, db += column sums of dy. */
static ct_status ct__cuda_linear_rev_from(ct__cuda_ctx *c, const ct__kargs *a, const float *dy,
                                          float dx_beta) {
  int64_t rows = ct__rows(a->in_obj[0]), k = ct__cols(a->in_obj[0]), m = ct__cols(a->out_obj[0]);
  const float one = 1.0f;
  CT__TRY(ct__cuda_gemm_dims(rows, k, m));
  /* dx = dy W^T  <=>  dx^T (k x rows, ld k) = W (k x m) . dy^T (m x rows, ld m), where W
   * is the stored m x k matrix (ld m) transposed: op(A) = T, op(B) = N. beta dx_beta. */
  if (a->din[0])
    CT__BLAS(cublasSgemm, (c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)k, (int)rows, (int)m, &one,
                           a->param[0], (int)m, dy, (int)m, &dx_beta, a->din[0], (int)k));
  /* dW += x^T dy  <=>  dW^T (m x k, ld m) += dy^T (m x rows, ld m) . x (rows x k), where x
   * is the stored k x rows matrix (ld k) transposed: op(A) = N, op(B) = T, beta 1. */
  if (a->dparam[0])
    CT__BLAS(cublasSgemm, (c->blas, CUBLAS_OP_N, CUBLAS_OP_T, (int)m, (int)k, (int)rows, &one, dy,
                           (int)m, a->in[0], (int)k, &one, a->dparam[0], (int)m));
  /* db += column sums of dy  <=>  db (m) += dy^T (m x rows, ld m) . ones, over chunks
   * of rows in order (deterministic). */
  if (a->n_params > 1 && a->dparam[1])
    for (int64_t r0 = 0; r0 < rows; r0 += CT__CUDA_ONES) {
      int64_t nr = rows - r0 < CT__CUDA_ONES ? rows - r0 : CT__CUDA_ONES;
      CT__BLAS(cublasSgemv, (c->blas, CUBLAS_OP_N, (int)m, (int)nr, &one, dy + r0 * m, (int)m,
                             c->ones, 1, &one, a->dparam[1], 1));
    }
  return CT_OK;
}

static ct_status ct__cuda_linear_rev(void *ctx, const ct__kargs *a) {
  return ct__cuda_linear_rev_from(ctx, a, a->dout[0], 0.0f);
}

/* saved = [du | u] (see ops.c). u = x W with beta 0 (one product), then one pass
 * u += b, y = gelu(u). */
static ct_status ct__cuda_linear_gelu_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  int64_t rows = ct__rows(a->in_obj[0]), k = ct__cols(a->in_obj[0]), m = ct__cols(a->out_obj[0]);
  const float one = 1.0f, zero = 0.0f;
  float *u = (float *)a->saved + rows * m;
  CT__TRY(ct__cuda_gemm_dims(rows, k, m));
  /* as in ct__cuda_linear_fwd: u^T (m x rows) = W^T (m x k, ld m) . x^T (k x rows, ld k) */
  CT__BLAS(cublasSgemm, (c->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)m, (int)rows, (int)k, &one,
                         a->param[0], (int)m, a->in[0], (int)k, &zero, u, (int)m));
  CT__CU(ct__cu_bias_gelu, (u, a->n_params > 1 ? a->param[1] : NULL, a->out[0], rows, m,
                            c->stream));
  return CT_OK;
}

/* du = dy * gelu'(u) into the scratch (u is kept), then linear's reverse from du. */
static ct_status ct__cuda_linear_gelu_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  int64_t n = ct__rows(a->in_obj[0]) * ct__cols(a->out_obj[0]);
  float *du = a->saved;
  CT__CU(ct__cu_gelu_rev, (du + n, a->dout[0], du, n, c->stream));
  return ct__cuda_linear_rev_from(c, a, du, 0.0f);
}

/* The three products of x with Wq, Wk, Wv in one cublasSgemmBatched. Its pointer
 * arrays live in the node's residual (see ops.c), written on the stream by the prep
 * kernel (from its arguments, so a recorded step graph replays the same writes)
 * with the bias rows (then beta 1). Outputs of different widths: three linears. */
static ct_status ct__cuda_qkv_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  int64_t rows = ct__rows(a->in_obj[0]), k = ct__cols(a->in_obj[0]), m = ct__cols(a->out_obj[0]);
  if (ct__cols(a->out_obj[1]) != m || ct__cols(a->out_obj[2]) != m) {
    for (int j = 0; j < 3; j++) {
      ct__kargs p = ct__qkv_part(a, j);
      CT__TRY(ct__cuda_linear_fwd(ctx, &p));
    }
    return CT_OK;
  }
  CT__TRY(ct__cuda_gemm_dims(rows, k, m));
  int s = a->n_params / 3;
  const float *w[3], *b[3];
  float *out[3];
  for (int j = 0; j < 3; j++) {
    w[j] = a->param[j * s];
    b[j] = s > 1 ? a->param[j * s + 1] : NULL;
    out[j] = a->out[j];
  }
  const float **ptrs = a->saved;
  const float one = 1.0f, zero = 0.0f;
  CT__CU(ct__cu_qkv_prep, (ptrs, a->in[0], w, out, b, rows, m, c->stream));
  /* as in ct__cuda_linear_fwd, per entry j: out_j^T = W_j^T (m x k, ld m) . x^T (k x rows) */
  CT__BLAS(cublasSgemmBatched, (c->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)m, (int)rows, (int)k,
                                &one, ptrs, (int)m, ptrs + 3, (int)k, b[0] ? &one : &zero,
                                (float *const *)(ptrs + 6), (int)m, 3));
  return CT_OK;
}

/* dx = dq Wq^T + dk Wk^T + dv Wv^T (beta 0, then 1); dW, db per weight as linear's. */
static ct_status ct__cuda_qkv_rev(void *ctx, const ct__kargs *a) {
  for (int j = 0; j < 3; j++) {
    ct__kargs p = ct__qkv_part(a, j);
    CT__TRY(ct__cuda_linear_rev_from(ctx, &p, p.dout[0], j ? 1.0f : 0.0f));
  }
  return CT_OK;
}

/* Row-wise softmax of the input. */
static ct_status ct__cuda_softmax_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  CT__CU(ct__cu_softmax_fwd, (a->in[0], a->out[0], ct__rows(a->in_obj[0]),
                              ct__cols(a->in_obj[0]), c->stream));
  return CT_OK;
}

/* dx from the forward output y and dy. */
static ct_status ct__cuda_softmax_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  if (!a->din[0]) return CT_OK;
  CT__CU(ct__cu_softmax_rev, (a->out[0], a->dout[0], a->din[0], ct__rows(a->in_obj[0]),
                              ct__cols(a->in_obj[0]), c->stream));
  return CT_OK;
}

/* Mean clamped -log-probability of the targets; bad targets are recorded. */
static ct_status ct__cuda_xent_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  CT__CU(ct__cu_xent_fwd, (a->in[0], a->in[1], a->out[0], c->partials, ct__rows(a->in_obj[0]),
                           ct__cols(a->in_obj[0]), c->err, a->node, (int)a->op, c->stream));
  return CT_OK;
}

/* dp from the probabilities, targets and the device-resident loss cotangent. */
static ct_status ct__cuda_xent_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  if (!a->din[0]) return CT_OK;
  CT__CU(ct__cu_xent_rev, (a->in[0], a->in[1], a->dout[0], a->din[0], ct__rows(a->in_obj[0]),
                           ct__cols(a->in_obj[0]), c->stream));
  return CT_OK;
}

/* Probabilities into the residual and the mean loss; bad targets are recorded. */
static ct_status ct__cuda_softmax_xent_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  CT__CU(ct__cu_softmax_xent_fwd, (a->in[0], a->in[1], a->saved, a->out[0], c->partials,
                                   ct__rows(a->in_obj[0]), ct__cols(a->in_obj[0]), c->err,
                                   a->node, (int)a->op, c->stream));
  return CT_OK;
}

/* dx from the saved probabilities and the device-resident loss cotangent. */
static ct_status ct__cuda_softmax_xent_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  if (!a->din[0]) return CT_OK;
  CT__CU(ct__cu_softmax_xent_rev, (a->saved, a->in[1], a->dout[0], a->din[0],
                                   ct__rows(a->in_obj[0]), ct__cols(a->in_obj[0]), c->stream));
  return CT_OK;
}

/* Copies the input to every output that is wanted (device to device, queued). */
static ct_status ct__cuda_copy_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  size_t bytes = ct_object_bytes(a->in_obj[0]);
  for (int k = 0; k < a->n_out; k++)
    if (a->out[k])
      CT__CU(cudaMemcpyAsync, (a->out[k], a->in[0], bytes, cudaMemcpyDeviceToDevice, c->stream));
  return CT_OK;
}

/* z = x + y (also the reverse of copy, on cotangents). */
static ct_status ct__cuda_add_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  if (!a->out[0]) return CT_OK;
  CT__CU(ct__cu_add, (a->in[0], a->in[1], a->out[0], ct_object_numel(a->out_obj[0]), c->stream));
  return CT_OK;
}

/* Nothing to compute. */
static ct_status ct__cuda_discard_fwd(void *ctx, const ct__kargs *a) { return CT_OK; }

/* ---- sequence generators ------------------------------------------------------------ */

/* y = x + P[t] on every sequence. */
static ct_status ct__cuda_pos_embedding_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  const ct_object *o = a->in_obj[0];
  CT__CU(ct__cu_pos_embedding_fwd, (a->in[0], a->param[0], a->out[0], o->dims[0], o->dims[1],
                                    o->dims[2], c->stream));
  return CT_OK;
}

/* dx = dy (copied); dP[t] += sum over the batch of dy[b, t]. */
static ct_status ct__cuda_pos_embedding_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  const ct_object *o = a->in_obj[0];
  if (a->din[0])
    CT__CU(cudaMemcpyAsync, (a->din[0], a->dout[0], ct_object_bytes(o), cudaMemcpyDeviceToDevice,
                             c->stream));
  if (a->dparam[0])
    CT__CU(ct__cu_pos_embedding_rev, (a->dout[0], a->dparam[0], o->dims[0], o->dims[1],
                                      o->dims[2], c->stream));
  return CT_OK;
}

/* Normalised rows, scaled and shifted; row statistics into the residual. */
static ct_status ct__cuda_layernorm_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  CT__CU(ct__cu_layernorm_fwd, (a->in[0], a->param[0], a->param[1], a->out[0], a->saved,
                                ct__rows(a->in_obj[0]), ct__cols(a->in_obj[0]), c->stream));
  return CT_OK;
}

/* dx, dgain and dbias. */
static ct_status ct__cuda_layernorm_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  CT__CU(ct__cu_layernorm_rev, (a->in[0], a->param[0], a->dout[0], a->saved, a->din[0],
                                a->dparam[0], a->dparam[1], c->ln_part, ct__rows(a->in_obj[0]),
                                ct__cols(a->in_obj[0]), c->stream));
  return CT_OK;
}

/* s = x + r and the layer norm of s, in one kernel; statistics into the residual. */
static ct_status ct__cuda_add_layernorm_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  CT__CU(ct__cu_add_layernorm_fwd, (a->in[0], a->in[1], a->param[0], a->param[1], a->out[0],
                                    a->out[1], a->saved, ct__rows(a->in_obj[0]),
                                    ct__cols(a->in_obj[0]), c->stream));
  return CT_OK;
}

/* dx = dr from ds and dy at the output s; dgain and dbias. */
static ct_status ct__cuda_add_layernorm_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  CT__CU(ct__cu_add_layernorm_rev, (a->out[0], a->param[0], a->dout[0], a->dout[1], a->saved,
                                    a->din[0], a->din[1], a->dparam[0], a->dparam[1], c->ln_part,
                                    ct__rows(a->in_obj[0]), ct__cols(a->in_obj[0]), c->stream));
  return CT_OK;
}

/* Element-wise GELU. */
static ct_status ct__cuda_gelu_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  CT__CU(ct__cu_gelu_fwd, (a->in[0], a->out[0], ct_object_numel(a->in_obj[0]), c->stream));
  return CT_OK;
}

/* dx = dy * gelu'(x). */
static ct_status ct__cuda_gelu_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  if (!a->din[0]) return CT_OK;
  CT__CU(ct__cu_gelu_rev, (a->in[0], a->dout[0], a->din[0], ct_object_numel(a->in_obj[0]),
                           c->stream));
  return CT_OK;
}

/* SEQ [B,T,H*D] -> HEADS [B,H,T,D] (also the reverse of head_merge). */
static ct_status ct__cuda_head_split_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  const ct_object *h = a->out_obj[0];
  if (!a->out[0]) return CT_OK;
  CT__CU(ct__cu_head_split, (a->in[0], a->out[0], h->dims[0], h->dims[1], h->dims[2], h->dims[3],
                             c->stream));
  return CT_OK;
}

/* HEADS [B,H,T,D] -> SEQ [B,T,H*D] (also the reverse of head_split). */
static ct_status ct__cuda_head_merge_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  const ct_object *h = a->in_obj[0];
  if (!a->out[0]) return CT_OK;
  CT__CU(ct__cu_head_merge, (a->in[0], a->out[0], h->dims[0], h->dims[1], h->dims[2], h->dims[3],
                             c->stream));
  return CT_OK;
}

/* The trailing two axes of o and the count of matrices before them. */
static void ct__cuda_mats(const ct_object *o, int64_t *batch, int64_t *rows, int64_t *cols) {
  *rows = o->dims[o->rank - 2];
  *cols = o->dims[o->rank - 1];
  *batch = ct_object_numel(o) / (*rows * *cols);
}

/* C_i = alpha op(A_i) op(B_i) for each of batch column-major products (cuBLAS
 * conventions; the row-major reading is given at each call). */
static ct_status ct__cuda_gemm_batched(ct__cuda_ctx *c, ct_op op, cublasOperation_t ta,
                                       cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                                       float alpha, const float *A, int64_t lda, int64_t sa,
                                       const float *B, int64_t ldb, int64_t sb, float *C,
                                       int64_t ldc, int64_t sc, int64_t batch) {
  const float zero = 0.0f;
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX ||
      ldc > INT_MAX || batch > INT_MAX)
    return ct__fail(CT_ERR_UNSUPPORTED, "cuda: %s: a batched product of %lld (%lld x %lld x %lld) "
                    "exceeds cuBLAS's int range", ct_op_name(op), (long long)batch, (long long)m,
                    (long long)k, (long long)n);
  if (m <= 0 || n <= 0 || batch <= 0) return CT_OK;
  CT__BLAS(cublasSgemmStridedBatched, (c->blas, ta, tb, (int)m, (int)n, (int)k, &alpha, A,
                                       (int)lda, (long long)sa, B, (int)ldb, (long long)sb, &zero,
                                       C, (int)ldc, (long long)sc, (int)batch));
  return CT_OK;
}

/* Row-major [T,X] matrices are, to cuBLAS, their X x T transposes with leading
 * dimension X (see ct__cuda_linear_fwd). Below, with q, k, v, y [T,D] and s, a
 * [T,T] per batch entry: q^T is D x T (ld D), s^T is T x T (ld T). */

/* s = q k^T / sqrt(D), then entries j > i zeroed.
 * s^T (T x T) = k (T x D, op T of k^T) . q^T (D x T). */
static ct_status ct__cuda_attn_scores_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  int64_t batch, T, D;
  ct__cuda_mats(a->in_obj[0], &batch, &T, &D);
  float scale = (float)(1.0 / sqrt((double)D));
  CT__TRY(ct__cuda_gemm_batched(c, a->op, CUBLAS_OP_T, CUBLAS_OP_N, T, T, D, scale, a->in[1], D,
                                T * D, a->in[0], D, T * D, a->out[0], T, T * T, batch));
  CT__CU(ct__cu_causal_mask, (a->out[0], a->out[0], batch, T, c->stream));
  return CT_OK;
}

/* With m = ds masked (j > i zeroed) in the scratch residual:
 * dq = m k / sqrt(D):    dq^T (D x T) = k^T (D x T) . m^T (T x T);
 * dk = m^T q / sqrt(D):  dk^T (D x T) = q^T (D x T) . m (op T of m^T). */
static ct_status ct__cuda_attn_scores_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  int64_t batch, T, D;
  ct__cuda_mats(a->in_obj[0], &batch, &T, &D);
  float scale = (float)(1.0 / sqrt((double)D));
  if (!a->din[0] && !a->din[1]) return CT_OK;
  CT__CU(ct__cu_causal_mask, (a->dout[0], a->saved, batch, T, c->stream));
  if (a->din[0])
    CT__TRY(ct__cuda_gemm_batched(c, a->op, CUBLAS_OP_N, CUBLAS_OP_N, D, T, T, scale, a->in[1], D,
                                  T * D, a->saved, T, T * T, a->din[0], D, T * D, batch));
  if (a->din[1])
    CT__TRY(ct__cuda_gemm_batched(c, a->op, CUBLAS_OP_N, CUBLAS_OP_T, D, T, T, scale, a->in[0], D,
                                  T * D, a->saved, T, T * T, a->din[1], D, T * D, batch));
  return CT_OK;
}

/* Causal row softmax of the scores. */
static ct_status ct__cuda_causal_softmax_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  CT__CU(ct__cu_causal_softmax_fwd, (a->in[0], a->out[0], ct__rows(a->in_obj[0]),
                                     ct__cols(a->in_obj[0]), c->stream));
  return CT_OK;
}

/* dx from the forward output y and dy, over each row's unmasked entries. */
static ct_status ct__cuda_causal_softmax_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  if (!a->din[0]) return CT_OK;
  CT__CU(ct__cu_causal_softmax_rev, (a->out[0], a->dout[0], a->din[0], ct__rows(a->in_obj[0]),
                                     ct__cols(a->in_obj[0]), c->stream));
  return CT_OK;
}

/* y = a v over every j:  y^T (D x T) = v^T (D x T) . a^T (T x T). */
static ct_status ct__cuda_attn_apply_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  int64_t batch, T, D;
  ct__cuda_mats(a->in_obj[1], &batch, &T, &D);
  CT__TRY(ct__cuda_gemm_batched(c, a->op, CUBLAS_OP_N, CUBLAS_OP_N, D, T, T, 1.0f, a->in[1], D,
                                T * D, a->in[0], T, T * T, a->out[0], D, T * D, batch));
  return CT_OK;
}

/* da = dy v^T:  da^T (T x T) = v (T x D, op T of v^T) . dy^T (D x T);
 * dv = a^T dy:  dv^T (D x T) = dy^T (D x T) . a (op T of a^T). */
static ct_status ct__cuda_attn_apply_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  int64_t batch, T, D;
  ct__cuda_mats(a->in_obj[1], &batch, &T, &D);
  if (a->din[0])
    CT__TRY(ct__cuda_gemm_batched(c, a->op, CUBLAS_OP_T, CUBLAS_OP_N, T, T, D, 1.0f, a->in[1], D,
                                  T * D, a->dout[0], D, T * D, a->din[0], T, T * T, batch));
  if (a->din[1])
    CT__TRY(ct__cuda_gemm_batched(c, a->op, CUBLAS_OP_N, CUBLAS_OP_T, D, T, T, 1.0f, a->dout[0], D,
                                  T * D, a->in[0], T, T * T, a->din[1], D, T * D, batch));
  return CT_OK;
}

/* Fused causal attention on SEQ [B,T,C] with attr heads; the row log-sum-exps
 * go to the first half of the saved buffer. */
static ct_status ct__cuda_causal_attention_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  const ct_object *x = a->in_obj[0];
  CT__CU(ct__cu_causal_attention_fwd, (a->in[0], a->in[1], a->in[2], a->out[0], a->saved,
                                       x->dims[0], x->dims[1], x->dims[2], a->attr, c->stream));
  return CT_OK;
}

/* dq, dk, dv (each skipped when NULL) from q, k, v, y, dy and the saved
 * log-sum-exps; the second half of the saved buffer is scratch. */
static ct_status ct__cuda_causal_attention_rev(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  const ct_object *x = a->in_obj[0];
  CT__CU(ct__cu_causal_attention_rev, (a->in[0], a->in[1], a->in[2], a->out[0], a->dout[0],
                                       a->saved, a->din[0], a->din[1], a->din[2], x->dims[0],
                                       x->dims[1], x->dims[2], a->attr, c->stream));
  return CT_OK;
}

/* Decoding attention over the caches (param 0, 1: CACHE [B,H,L,D]) at the rows'
 * positions (in 3); the caches are written first. A bad position is recorded on
 * the device and reported by sync. */
static ct_status ct__cuda_kv_attention_fwd(void *ctx, const ct__kargs *a) {
  ct__cuda_ctx *c = ctx;
  const ct_object *x = a->in_obj[0], *kc = a->param_obj[0];
  CT__CU(ct__cu_kv_attention_fwd, (a->in[0], a->in[1], a->in[2], a->in[3], a->param[0],
                                   a->param[1], a->out[0], c->kv_part, x->dims[0], x->dims[1],
                                   kc->dims[1], kc->dims[2], kc->dims[3], c->err, a->node,
                                   (int)a->op, c->stream));
  return CT_OK;
}

/* ---- optimizer ------------------------------------------------------------------------- */

/* sumsq[index] = sum of x^2: per-block double partials, then one block adds them
 * (the grid depends only on n, so the order is fixed). */
static ct_status ct__cuda_sumsq(void *ctx, const void *x, int64_t n, void *sumsq, int index) {
  ct__cuda_ctx *c = ctx;
  CT__CU(ct__cu_sumsq, (x, n, c->partials, (float *)sumsq + index, c->stream));
  return CT_OK;
}

/* The step kernel: one thread on the device record; nothing while an id error is pending. */
static ct_status ct__cuda_hyper_step(void *ctx, void *hyper, const void *sumsq, int n) {
  ct__cuda_ctx *c = ctx;
  CT__CU(ct__cu_hyper_step, (hyper, sumsq, n, c->err, c->stream));
  return CT_OK;
}

/* p -= lr g scale; the kernel does nothing while an id error is pending. */
static ct_status ct__cuda_sgd(void *ctx, const void *hyper, void *param, const void *grad,
                              void *state, int64_t n, int64_t n_decay) {
  ct__cuda_ctx *c = ctx;
  CT__CU(ct__cu_sgd_update, (hyper, param, grad, n, c->err, c->stream));
  return CT_OK;
}

/* AdamW on m[n], v[n], decay on [0, n_decay); the kernel does nothing while an
 * id error is pending. */
static ct_status ct__cuda_adamw(void *ctx, const void *hyper, void *param, const void *grad,
                                void *state, int64_t n, int64_t n_decay) {
  ct__cuda_ctx *c = ctx;
  if (!state && n > 0)
    return ct__fail(CT_ERR_INTERNAL, "cuda: AdamW update without its state buffer");
  CT__CU(ct__cu_adamw_update, (hyper, param, grad, state, n, n_decay, c->err, c->stream));
  return CT_OK;
}

/* Every generator, both directions (copy/add/discard/head_split/head_merge
 * reverses are derived; kv_attention has no reverse anywhere). */
static bool ct__cuda_supports(ct_op op, ct_direction dir) {
  return op >= 0 && op < CT_OP_COUNT;
}

/* ---- graphs ---------------------------------------------------------------------------- */

/* Starts recording the stream's work (this thread only). */
static ct_status ct__cuda_capture_begin(void *ctx) {
  ct__cuda_ctx *c = ctx;
  CT__CU(cudaSetDevice, (c->device));
  CT__CU(cudaStreamBeginCapture, (c->stream, cudaStreamCaptureModeThreadLocal));
  return CT_OK;
}

/* Ends the capture and instantiates it; the captured graph itself is not kept. */
static ct_status ct__cuda_capture_end(void *ctx, void **graph) {
  ct__cuda_ctx *c = ctx;
  cudaGraph_t g = NULL;
  cudaGraphExec_t exec = NULL;
  *graph = NULL;
  CT__CU(cudaStreamEndCapture, (c->stream, &g));
  cudaError_t e = cudaGraphInstantiateWithFlags(&exec, g, 0);
  (void)cudaGraphDestroy(g);
  if (e != cudaSuccess) return ct__cuda_fail(e, "cudaGraphInstantiateWithFlags");
  *graph = exec;
  return CT_OK;
}

/* Queues one replay of a recorded graph (no wait). */
static ct_status ct__cuda_graph_launch(void *ctx, void *graph) {
  ct__cuda_ctx *c = ctx;
  CT__CU(cudaGraphLaunch, ((cudaGraphExec_t)graph, c->stream));
  return CT_OK;
}

/* Destroys an instantiated graph. */
static void ct__cuda_graph_free(void *ctx, void *graph) {
  if (!graph) return;
  (void)cudaGraphExecDestroy((cudaGraphExec_t)graph);
  (void)cudaGetLastError();
}

/* ---- options and devices ------------------------------------------------------------- */

/* "tf32" = on/off at any time; "device" = index before the backend is opened. */
static ct_status ct__cuda_set_option(void *ctx, const char *key, const char *value) {
  ct__cuda_ctx *c = ctx;
  if (!strcmp(key, "tf32")) {
    bool on = !strcmp(value, "on");
    if (!on && strcmp(value, "off"))
      return ct__fail(CT_ERR_INVALID_ARG, "cuda: option 'tf32' takes 'on' or 'off', not '%s'",
                      value);
    if (c) CT__TRY(ct__cuda_math(c, on));
    ct__cuda_tf32 = on;
    return CT_OK;
  }
  if (!strcmp(key, "device")) {
    int dev;
    if (c)
      return ct__fail(CT_ERR_STATE, "cuda: option 'device': select the CUDA device before first "
                      "use (device %d is open)", c->device);
    if (!ct__cuda_parse_index(value, &dev))
      return ct__fail(CT_ERR_INVALID_ARG, "cuda: option 'device' takes a device index (0, 1, ...), "
                      "not '%s'", value);
    ct__cuda_device_option = dev;
    return CT_OK;
  }
  return ct__fail(CT_ERR_INVALID_ARG, "cuda: unknown option '%s' (known: tf32, device)", key);
}

/* One entry: "device 0 'NVIDIA H100 80GB HBM3' (sm_90, 79.1 GiB)". */
static void ct__cuda_device_entry(int i, int selected, ct_device_info *d) {
  struct cudaDeviceProp prop;
  int mode = cudaComputeModeDefault;
  memset(d, 0, sizeof *d);
  d->selected = i == selected;
  d->gpu = true;
  cudaError_t e = cudaGetDeviceProperties(&prop, i);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    snprintf(d->name, sizeof d->name, "device %d", i);
    snprintf(d->reason, sizeof d->reason, "cudaGetDeviceProperties: %s: %s", cudaGetErrorName(e),
             cudaGetErrorString(e));
    return;
  }
  snprintf(d->name, sizeof d->name, "device %d '%.100s' (sm_%d%d, %.1f GiB)", i, prop.name,
           prop.major, prop.minor, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
  d->memory_bytes = (int64_t)prop.totalGlobalMem;
  if (cudaDeviceGetAttribute(&mode, cudaDevAttrComputeMode, i) != cudaSuccess)
    (void)cudaGetLastError();
  d->usable = mode != cudaComputeModeProhibited;
  if (!d->usable) snprintf(d->reason, sizeof d->reason, "its compute mode is 'prohibited'");
}

/* Every device the runtime sees; none when the runtime has no driver or device
 * (the backend's reason then says why). */
static int ct__cuda_list_devices(ct_device_info *out, int max) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  const char *how;
  int selected = ct__cuda_open_device >= 0 ? ct__cuda_open_device : ct__cuda_wanted(&how);
  for (int i = 0; i < count && i < max; i++) ct__cuda_device_entry(i, selected, &out[i]);
  return count;
}

const ct_backend ct__cuda_backend = {
    .name = "cuda",
    .open = ct__cuda_open,
    .alloc = ct__cuda_alloc,
    .release = ct__cuda_release,
    .upload = ct__cuda_upload,
    .download = ct__cuda_download,
    .upload_at = ct__cuda_upload_at,
    .download_at = ct__cuda_download_at,
    .fill = ct__cuda_fill,
    .view_align = ct__cuda_view_align,
    .view = ct__cuda_view,
    .release_view = ct__cuda_release_view,
    .sync = ct__cuda_sync,
    .supports = ct__cuda_supports,
    .forward =
        {
            [CT_OP_EMBEDDING] = ct__cuda_embedding_fwd,
            [CT_OP_LINEAR] = ct__cuda_linear_fwd,
            [CT_OP_SOFTMAX] = ct__cuda_softmax_fwd,
            [CT_OP_CROSS_ENTROPY] = ct__cuda_xent_fwd,
            [CT_OP_SOFTMAX_XENT] = ct__cuda_softmax_xent_fwd,
            [CT_OP_COPY] = ct__cuda_copy_fwd,
            [CT_OP_ADD] = ct__cuda_add_fwd,
            [CT_OP_DISCARD] = ct__cuda_discard_fwd,
            [CT_OP_POS_EMBEDDING] = ct__cuda_pos_embedding_fwd,
            [CT_OP_LAYERNORM] = ct__cuda_layernorm_fwd,
            [CT_OP_GELU] = ct__cuda_gelu_fwd,
            [CT_OP_HEAD_SPLIT] = ct__cuda_head_split_fwd,
            [CT_OP_HEAD_MERGE] = ct__cuda_head_merge_fwd,
            [CT_OP_ATTN_SCORES] = ct__cuda_attn_scores_fwd,
            [CT_OP_CAUSAL_SOFTMAX] = ct__cuda_causal_softmax_fwd,
            [CT_OP_ATTN_APPLY] = ct__cuda_attn_apply_fwd,
            [CT_OP_LINEAR_GELU] = ct__cuda_linear_gelu_fwd,
            [CT_OP_QKV] = ct__cuda_qkv_fwd,
            [CT_OP_ADD_LAYERNORM] = ct__cuda_add_layernorm_fwd,
            [CT_OP_CAUSAL_ATTENTION] = ct__cuda_causal_attention_fwd,
            [CT_OP_KV_ATTENTION] = ct__cuda_kv_attention_fwd,
        },
    .reverse =
        {
            [CT_OP_EMBEDDING] = ct__cuda_embedding_rev,
            [CT_OP_LINEAR] = ct__cuda_linear_rev,
            [CT_OP_SOFTMAX] = ct__cuda_softmax_rev,
            [CT_OP_CROSS_ENTROPY] = ct__cuda_xent_rev,
            [CT_OP_SOFTMAX_XENT] = ct__cuda_softmax_xent_rev,
            [CT_OP_POS_EMBEDDING] = ct__cuda_pos_embedding_rev,
            [CT_OP_LAYERNORM] = ct__cuda_layernorm_rev,
            [CT_OP_GELU] = ct__cuda_gelu_rev,
            [CT_OP_ATTN_SCORES] = ct__cuda_attn_scores_rev,
            [CT_OP_CAUSAL_SOFTMAX] = ct__cuda_causal_softmax_rev,
            [CT_OP_ATTN_APPLY] = ct__cuda_attn_apply_rev,
            [CT_OP_LINEAR_GELU] = ct__cuda_linear_gelu_rev,
            [CT_OP_QKV] = ct__cuda_qkv_rev,
            [CT_OP_ADD_LAYERNORM] = ct__cuda_add_layernorm_rev,
            [CT_OP_CAUSAL_ATTENTION] = ct__cuda_causal_attention_rev,
            /* copy, add, discard, head_split and head_merge reverse as add, copy,
             * zero, head_merge and head_split (see ops.c). */
        },
    .opt_state_per_elem = {[CT_OPT_SGD] = 0, [CT_OPT_ADAMW] = 2},
    .update = {[CT_OPT_SGD] = ct__cuda_sgd, [CT_OPT_ADAMW] = ct__cuda_adamw},
    .sumsq = ct__cuda_sumsq,
    .hyper_step = ct__cuda_hyper_step,
    .capture_begin = ct__cuda_capture_begin,
    .capture_end = ct__cuda_capture_end,
    .graph_launch = ct__cuda_graph_launch,
    .graph_free = ct__cuda_graph_free,
    .set_option = ct__cuda_set_option,
    .list_devices = ct__cuda_list_devices,
};
