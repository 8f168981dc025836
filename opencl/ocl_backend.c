/* SPDX-License-Identifier: MIT */
/* opencl: the OpenCL backend. One context, one in-order command queue and one
 * program (the .cl files in kernels/, embedded at build time, built through the
 * binary cache in ocl_cache.c). Kernels are queued without waiting; transfers
 * are blocking; sync() waits and reports the first id error a kernel recorded
 * in the device error record. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ocl_internal.h"

/* Work-groups of 1-D and reduction kernels stay at or below this size (and the
 * kernel's own CL_KERNEL_WORK_GROUP_SIZE). */
#define CT__WG_CAP 256
/* Rows per partial sum in the bias gradient. */
#define CT__COLSUM_CHUNK 64
/* Ints in the error record (see kernels/common.cl). */
#define CT__REC_INTS 16

static const char *const ct__ocl_kernel_names[CT__K_COUNT] = {
#define CT__OCL_KNAME(e, n) n,
    CT__OCL_KERNELS(CT__OCL_KNAME)
#undef CT__OCL_KNAME
};

static cl_device_id ct__ocl_open_device;

cl_device_id ct__ocl_opened_device(void) { return ct__ocl_open_device; }

/* ---- launching ---------------------------------------------------------------- */

/* Kernel arguments set in order; the first failure is kept for the launch. */
typedef struct ct__args {
  ct__ocl *c;
  ct__ocl_kernel_id k;
  cl_uint next;
  cl_int err;
  cl_uint bad;
} ct__args;

static ct__args ct__args_of(ct__ocl *c, ct__ocl_kernel_id k) {
  ct__args a = {c, k, 0, CL_SUCCESS, 0};
  return a;
}

static void ct__arg(ct__args *a, size_t size, const void *value) {
  if (a->err == CL_SUCCESS) {
    a->err = clSetKernelArg(a->c->kernel[a->k], a->next, size, value);
    a->bad = a->next;
  }
  a->next++;
}
static void ct__arg_mem(ct__args *a, const void *buf) {
  cl_mem m = (cl_mem)buf;
  ct__arg(a, sizeof m, &m);
}
static void ct__arg_long(ct__args *a, int64_t v) {
  cl_long x = v;
  ct__arg(a, sizeof x, &x);
}
static void ct__arg_int(ct__args *a, int v) {
  cl_int x = v;
  ct__arg(a, sizeof x, &x);
}
static void ct__arg_float(ct__args *a, float v) {
  cl_float x = v;
  ct__arg(a, sizeof x, &x);
}
static void ct__arg_local(ct__args *a, size_t bytes) { ct__arg(a, bytes, NULL); }

/* Queues the kernel over items[d] work-items per dimension in work-groups of
 * local[d]; the global size is rounded up to whole groups (kernels check bounds). */
static ct_status ct__run(const ct__args *a, cl_uint dims, const size_t *items, const size_t *local) {
  const char *name = ct__ocl_kernel_names[a->k];
  char call[96];
  if (a->err != CL_SUCCESS) {
    snprintf(call, sizeof call, "clSetKernelArg(%s, argument %u)", name, a->bad);
    return ct__ocl_fail(call, a->err);
  }
  size_t global[3];
  for (cl_uint d = 0; d < dims; d++) {
    if (items[d] == 0) return CT_OK; /* nothing to do */
    global[d] = (items[d] + local[d] - 1) / local[d] * local[d];
  }
  cl_int err = clEnqueueNDRangeKernel(a->c->queue, a->c->kernel[a->k], dims, NULL, global, local,
                                      0, NULL, NULL);
  if (err != CL_SUCCESS) {
    snprintf(call, sizeof call, "clEnqueueNDRangeKernel(%s)", name);
    return ct__ocl_fail(call, err);
  }
  return CT_OK;
}

/* A 1-D work-group size for kernel k: the largest multiple of the preferred
 * multiple within the kernel's limit and CT__WG_CAP. */
static size_t ct__local1d(const ct__ocl *c, ct__ocl_kernel_id k) {
  size_t lim = c->kernel_wg[k] < CT__WG_CAP ? c->kernel_wg[k] : CT__WG_CAP;
  size_t m = c->wg_multiple;
  if (m == 0 || m > lim) return lim ? lim : 1;
  return lim / m * m;
}

static ct_status ct__run1d(const ct__args *a, int64_t n) {
  size_t items = (size_t)n, local = ct__local1d(a->c, a->k);
  return ct__run(a, 1, &items, &local);
}

/* A 2-D work-group (x, y) within kernel k's limit and cap: x covers up to nx
 * (a power of two up to 64), y takes the rest up to ny. */
static void ct__local2d_cap(const ct__ocl *c, ct__ocl_kernel_id k, size_t nx, size_t ny,
                            size_t cap, size_t local[2]) {
  size_t lim = c->kernel_wg[k] < cap ? c->kernel_wg[k] : cap;
  size_t x = 1, y = 1;
  while (x * 2 <= lim && x < nx && x < 64) x *= 2;
  while (x * y * 2 <= lim && y < ny) y *= 2;
  local[0] = x;
  local[1] = y;
}

static void ct__local2d(const ct__ocl *c, ct__ocl_kernel_id k, size_t nx, size_t ny,
                        size_t local[2]) {
  ct__local2d_cap(c, k, nx, ny, CT__WG_CAP, local);
}

/* A power-of-two work-group size for a reduction kernel over up to items
 * elements: within the kernel's limit, CT__WG_CAP, and the local memory left
 * for bytes_per_item per work-item. */
static size_t ct__pow2_group(const ct__ocl *c, ct__ocl_kernel_id k, int64_t items,
                             size_t bytes_per_item) {
  size_t lim = c->kernel_wg[k] < CT__WG_CAP ? c->kernel_wg[k] : CT__WG_CAP;
  cl_ulong room = c->local_mem > c->kernel_local[k] ? c->local_mem - c->kernel_local[k] : 0;
  size_t g = 1;
  while (g * 2 <= lim && (cl_ulong)(g * 2 * bytes_per_item) <= room && (int64_t)g < items) g *= 2;
  return g;
}

/* The work-group size of row kernel k over rows of cols: one work-item per row
 * on CPU devices (a work-group's barriers cost more there than the row's
 * arithmetic: measured 5-20x faster under PoCL), else as ct__pow2_group. */
static size_t ct__row_group(const ct__ocl *c, ct__ocl_kernel_id k, int64_t cols) {
  if (c->type & CL_DEVICE_TYPE_CPU) return 1;
  return ct__pow2_group(c, k, cols, sizeof(float));
}

/* Launches kernel k as one work-group per row (group size g). */
static ct_status ct__run_rows(const ct__args *a, int64_t rows, size_t g) {
  size_t items = (size_t)rows * g;
  return ct__run(a, 1, &items, &g);
}

/* Makes c->scratch at least bytes large. */
static ct_status ct__scratch(ct__ocl *c, size_t bytes) {
  if (bytes < 4) bytes = 4; /* always a valid buffer to bind */
  if (bytes <= c->scratch_bytes) return CT_OK;
  if (bytes > c->max_alloc)
    return ct__fail(CT_ERR_NOMEM, "opencl: scratch of %zu bytes is above the device's largest "
                    "allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE %llu bytes)", bytes,
                    (unsigned long long)c->max_alloc);
  cl_int err = CL_SUCCESS;
  cl_mem m = clCreateBuffer(c->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
  if (err != CL_SUCCESS) return ct__ocl_fail("clCreateBuffer(scratch)", err);
  /* Queued kernels that use the old buffer keep it alive until they finish. */
  if (c->scratch) clReleaseMemObject(c->scratch);
  c->scratch = m;
  c->scratch_bytes = bytes;
  return CT_OK;
}

/* ---- memory ------------------------------------------------------------------- */

static ct_status ct__ocl_alloc(void *ctx, size_t bytes, void **buf) {
  ct__ocl *c = ctx;
  *buf = NULL;
  if (bytes > c->max_alloc)
    return ct__fail(CT_ERR_NOMEM, "opencl: cannot allocate %zu bytes: the device's largest single "
                    "allocation is %llu bytes (CL_DEVICE_MAX_MEM_ALLOC_SIZE)", bytes,
                    (unsigned long long)c->max_alloc);
  size_t size = bytes < 4 ? 4 : bytes; /* a zero-byte request still gets a valid buffer */
  cl_int err = CL_SUCCESS;
  cl_mem m = clCreateBuffer(c->context, CL_MEM_READ_WRITE, size, NULL, &err);
  if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
      err == CL_OUT_OF_HOST_MEMORY)
    return ct__fail(CT_ERR_NOMEM, "opencl: clCreateBuffer of %zu bytes: %s (%d)", size,
                    ct__ocl_error_name(err), (int)err);
  if (err != CL_SUCCESS) return ct__ocl_fail("clCreateBuffer", err);
  *buf = m;
  return CT_OK;
}

static void ct__ocl_release(void *ctx, void *buf) {
  if (buf) clReleaseMemObject((cl_mem)buf);
}

/* Sub-buffers must start at a multiple of CL_DEVICE_MEM_BASE_ADDR_ALIGN (bits). */
static size_t ct__ocl_view_align(void *ctx) {
  ct__ocl *c = ctx;
  return c->base_align;
}

/* A view is a sub-buffer of base (released before base). */
static ct_status ct__ocl_view(void *ctx, void *base, size_t offset, size_t bytes, void **out) {
  ct__ocl *c = ctx;
  *out = NULL;
  if (offset % c->base_align)
    return ct__fail(CT_ERR_INTERNAL, "opencl: a view at byte %zu is not a multiple of the "
                    "device's sub-buffer alignment of %zu bytes", offset, c->base_align);
  cl_buffer_region region = {offset, bytes < 4 ? 4 : bytes};
  cl_int err = CL_SUCCESS;
  cl_mem m = clCreateSubBuffer((cl_mem)base, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION,
                               &region, &err);
  if (err != CL_SUCCESS) return ct__ocl_fail("clCreateSubBuffer", err);
  *out = m;
  return CT_OK;
}

static void ct__ocl_release_view(void *ctx, void *view) {
  if (view) clReleaseMemObject((cl_mem)view);
}

static ct_status ct__ocl_upload_at(void *ctx, void *dst, size_t offset, const void *host,
                                   size_t bytes) {
  ct__ocl *c = ctx;
  if (bytes == 0) return CT_OK;
  CT__OCL_TRY("clEnqueueWriteBuffer", clEnqueueWriteBuffer(c->queue, (cl_mem)dst, CL_TRUE, offset,
                                                           bytes, host, 0, NULL, NULL));
  return CT_OK;
}

static ct_status ct__ocl_upload(void *ctx, void *dst, const void *host, size_t bytes) {
  return ct__ocl_upload_at(ctx, dst, 0, host, bytes);
}

/* A blocking read on the in-order queue: it follows all queued work. */
static ct_status ct__ocl_download_at(void *ctx, void *host, const void *src, size_t offset,
                                     size_t bytes) {
  ct__ocl *c = ctx;
  if (bytes == 0) return CT_OK;
  CT__OCL_TRY("clEnqueueReadBuffer", clEnqueueReadBuffer(c->queue, (cl_mem)src, CL_TRUE, offset,
                                                         bytes, host, 0, NULL, NULL));
  return CT_OK;
}

static ct_status ct__ocl_download(void *ctx, void *host, const void *src, size_t bytes) {
  return ct__ocl_download_at(ctx, host, src, 0, bytes);
}

static ct_status ct__ocl_fill(void *ctx, void *buf, float value, int64_t n) {
  ct__ocl *c = ctx;
  if (n <= 0) return CT_OK;
  cl_float v = value;
  CT__OCL_TRY("clEnqueueFillBuffer", clEnqueueFillBuffer(c->queue, (cl_mem)buf, &v, sizeof v, 0,
                                                         (size_t)n * sizeof v, 0, NULL, NULL));
  return CT_OK;
}

/* Waits, then reports (once) the first id error recorded on the device. */
static ct_status ct__ocl_sync(void *ctx) {
  ct__ocl *c = ctx;
  cl_int rec[CT__REC_INTS];
  CT__OCL_TRY("clFinish", clFinish(c->queue));
  CT__OCL_TRY("clEnqueueReadBuffer(error record)",
              clEnqueueReadBuffer(c->queue, c->record, CL_TRUE, 0, sizeof rec, rec, 0, NULL, NULL));
  if (rec[0] == 0) return CT_OK;
  cl_int zero[CT__REC_INTS] = {0};
  CT__OCL_TRY("clEnqueueWriteBuffer(error record)",
              clEnqueueWriteBuffer(c->queue, c->record, CL_TRUE, 0, sizeof zero, zero, 0, NULL,
                                   NULL));
  long long pos = (long long)(((uint64_t)(uint32_t)rec[6] << 32) | (uint32_t)rec[5]);
  long long limit = (long long)(((uint64_t)(uint32_t)rec[8] << 32) | (uint32_t)rec[7]);
  static const char *const kinds[3] = {"token id", "target id", "position"};
  return ct__fail(CT_ERR_RANGE, "node %d (%s): %s %d at position %lld is outside [0, %lld)",
                  rec[1], ct_op_name((ct_op)rec[2]), kinds[rec[3] >= 0 && rec[3] < 3 ? rec[3] : 0],
                  rec[4], pos, limit);
}

/* ---- matrix products ---------------------------------------------------------- */

bool ct__ocl_gemm_usable(const ct__ocl *c, ct__ocl_gemm_kind kind) {
  if (kind == CT__GEMM_REGISTER) return true;
  const ct__ocl_kernel_id lt[4] = {CT__K_GEMM_LT_NN, CT__K_GEMM_LT_NT, CT__K_GEMM_LT_TN,
                                   CT__K_GEMM_LT_NN3};
  for (int i = 0; i < 4; i++)
    if (c->kernel_wg[lt[i]] < CT__OCL_LT_SIDE * CT__OCL_LT_SIDE ||
        c->kernel_local[lt[i]] > c->local_mem)
      return false;
  return true;
}

ct_status ct__ocl_gemm(ct__ocl *c, ct__ocl_gemm_kind kind, bool ta, bool tb, int64_t M, int64_t N,
                       int64_t K, cl_mem A, cl_mem B, cl_mem bias, float beta, cl_mem C) {
  return ct__ocl_gemm_batched(c, kind, ta, tb, 1, M, N, K, A, 0, B, 0, bias, beta, C, 0);
}

/* Whether kernel family kind can run an M x N x K product here. */
static ct_status ct__gemm_check(const ct__ocl *c, ct__ocl_gemm_kind kind, int64_t M, int64_t N,
                                int64_t K) {
  const int64_t lim = 0x7fffff00; /* the kernels index rows and columns with int */
  if (M > lim || N > lim || K > lim)
    return ct__fail(CT_ERR_UNSUPPORTED, "opencl: matrix product %lld x %lld x %lld has a side "
                    "above 2^31 - 256", (long long)M, (long long)N, (long long)K);
  if (!ct__ocl_gemm_usable(c, kind))
    return ct__fail(CT_ERR_UNSUPPORTED, "opencl: the local-tiled matrix product needs a 16 x 16 "
                    "work-group, above this device's limit");
  return CT_OK;
}

/* The launch of gemm kernel k of family kind over an M x N result, batch of them. */
static ct_status ct__gemm_run(ct__ocl *c, ct__ocl_gemm_kind kind, ct__ocl_kernel_id k,
                              ct__args *a, int64_t batch, int64_t M, int64_t N) {
  size_t items[3] = {0, 0, (size_t)batch}, local[3] = {1, 1, 1};
  if (kind == CT__GEMM_LOCAL) {
    /* one 16 x 16 work-group per 64 x 64 tile of C */
    items[0] = (size_t)((N + 63) / 64) * CT__OCL_LT_SIDE;
    items[1] = (size_t)((M + 63) / 64) * CT__OCL_LT_SIDE;
    local[0] = local[1] = CT__OCL_LT_SIDE;
  } else {
    /* one work-item per 4 x rb_width tile of C; on CPUs groups of at most 64
     * (more groups than cores for mid-sized products: measured faster on PoCL) */
    items[0] = (size_t)((N + c->rb_width - 1) / c->rb_width);
    items[1] = (size_t)((M + 3) / 4);
    ct__local2d_cap(c, k, items[0], items[1], (c->type & CL_DEVICE_TYPE_CPU) ? 64 : CT__WG_CAP,
                    local);
  }
  return ct__run(a, 3, items, local);
}

ct_status ct__ocl_gemm_batched(ct__ocl *c, ct__ocl_gemm_kind kind, bool ta, bool tb,
                               int64_t batch, int64_t M, int64_t N, int64_t K, cl_mem A,
                               int64_t sa, cl_mem B, int64_t sb, cl_mem bias, float beta, cl_mem C,
                               int64_t sc) {
  if (ta && tb) return ct__fail(CT_ERR_INTERNAL, "opencl: no kernel for A^T . B^T");
  if (M <= 0 || N <= 0 || batch <= 0) return CT_OK;
  CT__TRY(ct__gemm_check(c, kind, M, N, K));
  if (kind == CT__GEMM_REGISTER && tb) {
    /* nt as nn on transposed copies of B (N x K -> K x N) in the scratch */
    if (batch > 1 && sb != N * K)
      return ct__fail(CT_ERR_INTERNAL, "opencl: batched A . B^T needs B's matrices contiguous");
    CT__TRY(ct__scratch(c, (size_t)(batch * N * K) * sizeof(float)));
    ct__args t = ct__args_of(c, CT__K_TRANSPOSE);
    ct__arg_mem(&t, B);
    ct__arg_mem(&t, c->scratch);
    ct__arg_int(&t, (int)N);
    ct__arg_int(&t, (int)K);
    size_t items[3] = {(size_t)K, (size_t)N, (size_t)batch}, local[3] = {1, 1, 1};
    ct__local2d(c, CT__K_TRANSPOSE, items[0], items[1], local);
    CT__TRY(ct__run(&t, 3, items, local));
    B = c->scratch;
    sb = N * K;
    tb = false;
  }
  ct__ocl_kernel_id k = kind == CT__GEMM_LOCAL
                            ? (ta ? CT__K_GEMM_LT_TN : tb ? CT__K_GEMM_LT_NT : CT__K_GEMM_LT_NN)
                            : (ta ? CT__K_GEMM_RB_TN : CT__K_GEMM_RB_NN);
  ct__args a = ct__args_of(c, k);
  ct__arg_int(&a, (int)M);
  ct__arg_int(&a, (int)N);
  ct__arg_int(&a, (int)K);
  ct__arg_mem(&a, A);
  ct__arg_mem(&a, B);
  ct__arg_mem(&a, bias ? bias : c->dummy);
  ct__arg_int(&a, bias != NULL);
  ct__arg_float(&a, beta);
  ct__arg_mem(&a, C);
  ct__arg_long(&a, sa);
  ct__arg_long(&a, sb);
  ct__arg_long(&a, sc);
  return ct__gemm_run(c, kind, k, &a, batch, M, N);
}

/* C[j] = A . B[j] (+ bias[j]) for j < 3, M x K by K x N, in one launch (bias NULL or
 * all three given). */
static ct_status ct__ocl_gemm_nn3(ct__ocl *c, int64_t M, int64_t N, int64_t K, cl_mem A,
                                  cl_mem const *B, cl_mem const *bias, cl_mem const *C) {
  if (M <= 0 || N <= 0) return CT_OK;
  CT__TRY(ct__gemm_check(c, c->gemm, M, N, K));
  ct__ocl_kernel_id k = c->gemm == CT__GEMM_LOCAL ? CT__K_GEMM_LT_NN3 : CT__K_GEMM_RB_NN3;
  ct__args a = ct__args_of(c, k);
  ct__arg_int(&a, (int)M);
  ct__arg_int(&a, (int)N);
  ct__arg_int(&a, (int)K);
  ct__arg_mem(&a, A);
  for (int j = 0; j < 3; j++) ct__arg_mem(&a, B[j]);
  for (int j = 0; j < 3; j++) ct__arg_mem(&a, bias[0] ? bias[j] : c->dummy);
  ct__arg_int(&a, bias[0] != NULL);
  for (int j = 0; j < 3; j++) ct__arg_mem(&a, C[j]);
  return ct__gemm_run(c, c->gemm, k, &a, 3, M, N);
}

/* ---- generators ------------------------------------------------------------------ */

/* Checks ids[0, n) against [0, limit) on the device in one work-group. */
static ct_status ct__check_ids(ct__ocl *c, const void *ids, int64_t n, int64_t limit,
                               const ct__kargs *ka, int kind) {
  ct__args a = ct__args_of(c, CT__K_CHECK_IDS);
  size_t g = ct__pow2_group(c, CT__K_CHECK_IDS, n, sizeof(cl_long));
  ct__arg_mem(&a, ids);
  ct__arg_long(&a, n);
  ct__arg_long(&a, limit);
  ct__arg_mem(&a, c->record);
  ct__arg_int(&a, ka->node);
  ct__arg_int(&a, (int)ka->op);
  ct__arg_int(&a, kind);
  ct__arg_local(&a, g * sizeof(cl_long));
  return ct__run(&a, 1, &g, &g);
}

static ct_status ct__ocl_embedding_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t n = ct_object_numel(ka->in_obj[0]), vocab = ka->param_obj[0]->dims[0],
          width = ka->param_obj[0]->dims[1];
  CT__TRY(ct__check_ids(c, ka->in[0], n, vocab, ka, 0));
  ct__args a = ct__args_of(c, CT__K_EMB_FWD);
  ct__arg_mem(&a, ka->in[0]);
  ct__arg_mem(&a, ka->param[0]);
  ct__arg_mem(&a, ka->out[0]);
  ct__arg_long(&a, n);
  ct__arg_long(&a, vocab);
  ct__arg_long(&a, width);
  return ct__run1d(&a, n * width);
}

/* dtable += scatter of dy by id: sort (id, position) keys, then sum each id's run. */
static ct_status ct__ocl_embedding_rev(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  if (!ka->dparam[0]) return CT_OK;
  int64_t n = ct_object_numel(ka->in_obj[0]), vocab = ka->param_obj[0]->dims[0],
          width = ka->param_obj[0]->dims[1];
  if (n <= 0 || width <= 0) return CT_OK;
  if (n > 0xffffffffLL)
    return ct__fail(CT_ERR_UNSUPPORTED, "opencl: embedding reverse over %lld positions (at most "
                    "2^32 - 1)", (long long)n);
  int64_t n2 = 1;
  while (n2 < n) n2 *= 2;
  CT__TRY(ct__scratch(c, (size_t)n2 * sizeof(cl_ulong)));
  ct__args a = ct__args_of(c, CT__K_EMB_KEYS);
  ct__arg_mem(&a, ka->in[0]);
  ct__arg_mem(&a, c->scratch);
  ct__arg_long(&a, n);
  ct__arg_long(&a, n2);
  ct__arg_long(&a, vocab);
  CT__TRY(ct__run1d(&a, n2));
  for (int64_t k = 2; k <= n2; k *= 2)
    for (int64_t j = k / 2; j > 0; j /= 2) {
      ct__args b = ct__args_of(c, CT__K_BITONIC);
      ct__arg_mem(&b, c->scratch);
      ct__arg_long(&b, n2);
      ct__arg_long(&b, j);
      ct__arg_long(&b, k);
      CT__TRY(ct__run1d(&b, n2));
    }
  ct__args r = ct__args_of(c, CT__K_EMB_REV);
  ct__arg_mem(&r, c->scratch);
  ct__arg_mem(&r, ka->dout[0]);
  ct__arg_mem(&r, ka->dparam[0]);
  ct__arg_long(&r, n);
  ct__arg_long(&r, vocab);
  ct__arg_long(&r, width);
  size_t items[2] = {(size_t)width, (size_t)n}, local[2];
  ct__local2d(c, CT__K_EMB_REV, items[0], items[1], local);
  return ct__run(&r, 2, items, local);
}

/* Queues ct_colsum_finish: db[j] += sum over chunks of part[offset + c * cols + j]. */
static ct_status ct__colsum_finish(ct__ocl *c, cl_mem part, int64_t offset, int64_t chunks,
                                   int64_t cols, void *db) {
  ct__args b = ct__args_of(c, CT__K_COLSUM_FINISH);
  ct__arg_mem(&b, part);
  ct__arg_mem(&b, db);
  ct__arg_long(&b, chunks);
  ct__arg_long(&b, cols);
  ct__arg_long(&b, offset);
  return ct__run1d(&b, cols);
}

/* db[cols] += column sums of dy [rows, cols]: partial sums over chunks of
 * CT__COLSUM_CHUNK rows, then their sum in chunk order (deterministic). */
static ct_status ct__colsum(ct__ocl *c, const void *dy, int64_t rows, int64_t cols, void *db) {
  if (rows <= 0 || cols <= 0) return CT_OK;
  int64_t chunks = (rows + CT__COLSUM_CHUNK - 1) / CT__COLSUM_CHUNK;
  CT__TRY(ct__scratch(c, (size_t)(chunks * cols) * sizeof(float)));
  ct__args a = ct__args_of(c, CT__K_COLSUM_PART);
  ct__arg_mem(&a, dy);
  ct__arg_mem(&a, c->scratch);
  ct__arg_long(&a, rows);
  ct__arg_long(&a, cols);
  ct__arg_long(&a, CT__COLSUM_CHUNK);
  size_t items[2] = {(size_t)cols, (size_t)chunks}, local[2];
  ct__local2d(c, CT__K_COLSUM_PART, items[0], items[1], local);
  CT__TRY(ct__run(&a, 2, items, local));
  return ct__colsum_finish(c, c->scratch, 0, chunks, cols, db);
}

static ct_status ct__ocl_linear_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t rows = ct__rows(ka->in_obj[0]), k = ct__cols(ka->in_obj[0]),
          m = ct__cols(ka->out_obj[0]);
  return ct__ocl_gemm(c, c->gemm, false, false, rows, m, k, ka->in[0], ka->param[0],
                      ka->n_params > 1 ? ka->param[1] : NULL, 0.0f, ka->out[0]);
}

/* linear's reverse from the output cotangent dy. */
static ct_status ct__ocl_linear_rev_from(ct__ocl *c, const ct__kargs *ka, void *dy,
                                         float dx_beta) {
  int64_t rows = ct__rows(ka->in_obj[0]), k = ct__cols(ka->in_obj[0]),
          m = ct__cols(ka->out_obj[0]);
  if (ka->din[0]) /* dx = dy . W^T + dx_beta dx */
    CT__TRY(ct__ocl_gemm(c, c->gemm, false, true, rows, k, m, dy, ka->param[0], NULL, dx_beta,
                         ka->din[0]));
  if (ka->dparam[0]) /* dW += x^T . dy */
    CT__TRY(ct__ocl_gemm(c, c->gemm, true, false, k, m, rows, ka->in[0], dy, NULL, 1.0f,
                         ka->dparam[0]));
  if (ka->n_params < 2 || !ka->dparam[1]) return CT_OK;
  return ct__colsum(c, dy, rows, m, ka->dparam[1]); /* db += column sums of dy */
}

static ct_status ct__ocl_linear_rev(void *ctx, const ct__kargs *ka) {
  return ct__ocl_linear_rev_from(ctx, ka, ka->dout[0], 0.0f);
}

/* saved = [du | u] (see ops.c). u = x W + b by linear's product into y, then one
 * pass keeps u in saved and writes y = gelu(u). */
static ct_status ct__ocl_linear_gelu_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  CT__TRY(ct__ocl_linear_fwd(ctx, ka));
  int64_t n = ct__rows(ka->in_obj[0]) * ct__cols(ka->out_obj[0]);
  ct__args a = ct__args_of(c, CT__K_LINEAR_GELU_FWD);
  ct__arg_mem(&a, ka->out[0]);
  ct__arg_mem(&a, ka->saved);
  ct__arg_long(&a, n);
  return ct__run1d(&a, n);
}

/* du = dy gelu'(u) into saved's scratch (u is kept), then linear's reverse from du. */
static ct_status ct__ocl_linear_gelu_rev(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t n = ct__rows(ka->in_obj[0]) * ct__cols(ka->out_obj[0]);
  ct__args a = ct__args_of(c, CT__K_LINEAR_GELU_REV);
  ct__arg_mem(&a, ka->saved);
  ct__arg_mem(&a, ka->dout[0]);
  ct__arg_long(&a, n);
  CT__TRY(ct__run1d(&a, n));
  return ct__ocl_linear_rev_from(c, ka, ka->saved, 0.0f);
}

/* The three products of x with Wq, Wk, Wv (plus biases) in one launch (work-group z
 * picks q, k or v); outputs of different widths: three linears. */
static ct_status ct__ocl_qkv_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t rows = ct__rows(ka->in_obj[0]), k = ct__cols(ka->in_obj[0]),
          m = ct__cols(ka->out_obj[0]);
  if (ct__cols(ka->out_obj[1]) != m || ct__cols(ka->out_obj[2]) != m) {
    for (int j = 0; j < 3; j++) {
      ct__kargs p = ct__qkv_part(ka, j);
      CT__TRY(ct__ocl_linear_fwd(ctx, &p));
    }
    return CT_OK;
  }
  int s = ka->n_params / 3;
  cl_mem w[3], b[3], out[3];
  for (int j = 0; j < 3; j++) {
    w[j] = ka->param[j * s];
    b[j] = s > 1 ? ka->param[j * s + 1] : NULL;
    out[j] = ka->out[j];
  }
  return ct__ocl_gemm_nn3(c, rows, m, k, ka->in[0], w, b, out);
}

/* dx = dq Wq^T + dk Wk^T + dv Wv^T (beta 0, then 1); dW, db per weight as linear's. */
static ct_status ct__ocl_qkv_rev(void *ctx, const ct__kargs *ka) {
  for (int j = 0; j < 3; j++) {
    ct__kargs p = ct__qkv_part(ka, j);
    CT__TRY(ct__ocl_linear_rev_from(ctx, &p, p.dout[0], j ? 1.0f : 0.0f));
  }
  return CT_OK;
}

static ct_status ct__ocl_softmax_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t rows = ct__rows(ka->in_obj[0]), cols = ct__cols(ka->in_obj[0]);
  size_t g = ct__row_group(c, CT__K_SOFTMAX_FWD, cols);
  ct__args a = ct__args_of(c, CT__K_SOFTMAX_FWD);
  ct__arg_mem(&a, ka->in[0]);
  ct__arg_mem(&a, ka->out[0]);
  ct__arg_long(&a, cols);
  ct__arg_local(&a, g * sizeof(float));
  return ct__run_rows(&a, rows, g);
}

static ct_status ct__ocl_softmax_rev(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  if (!ka->din[0]) return CT_OK;
  int64_t rows = ct__rows(ka->in_obj[0]), cols = ct__cols(ka->in_obj[0]);
  size_t g = ct__row_group(c, CT__K_SOFTMAX_REV, cols);
  ct__args a = ct__args_of(c, CT__K_SOFTMAX_REV);
  ct__arg_mem(&a, ka->out[0]);
  ct__arg_mem(&a, ka->dout[0]);
  ct__arg_mem(&a, ka->din[0]);
  ct__arg_long(&a, cols);
  ct__arg_local(&a, g * sizeof(float));
  return ct__run_rows(&a, rows, g);
}

/* Queues loss kernel k in one work-group: the mean over rows of per-row terms of
 * values, checking every target of ka->in[1] (the first bad one is recorded). */
static ct_status ct__run_loss(ct__ocl *c, ct__ocl_kernel_id k, void *values, const ct__kargs *ka,
                              int64_t rows, int64_t cols) {
  size_t g = ct__pow2_group(c, k, rows, sizeof(float) + sizeof(cl_long));
  ct__args a = ct__args_of(c, k);
  ct__arg_mem(&a, values);
  ct__arg_mem(&a, ka->in[1]);
  ct__arg_long(&a, rows);
  ct__arg_long(&a, cols);
  ct__arg_mem(&a, ka->out[0]);
  ct__arg_mem(&a, c->record);
  ct__arg_int(&a, ka->node);
  ct__arg_int(&a, (int)ka->op);
  ct__arg_local(&a, g * sizeof(float));
  ct__arg_local(&a, g * sizeof(cl_long));
  return ct__run(&a, 1, &g, &g);
}

static ct_status ct__ocl_xent_fwd(void *ctx, const ct__kargs *ka) {
  int64_t rows = ct__rows(ka->in_obj[0]), cols = ct__cols(ka->in_obj[0]);
  return ct__run_loss(ctx, CT__K_XENT_FWD, ka->in[0], ka, rows, cols);
}

/* Queues loss reverse kernel k, one work-item per element: d input from values
 * (probabilities), the targets and the loss cotangent. */
static ct_status ct__run_loss_rev(ct__ocl *c, ct__ocl_kernel_id k, void *values,
                                  const ct__kargs *ka) {
  if (!ka->din[0]) return CT_OK;
  int64_t rows = ct__rows(ka->in_obj[0]), cols = ct__cols(ka->in_obj[0]);
  ct__args a = ct__args_of(c, k);
  ct__arg_mem(&a, values);
  ct__arg_mem(&a, ka->in[1]);
  ct__arg_mem(&a, ka->dout[0]);
  ct__arg_mem(&a, ka->din[0]);
  ct__arg_long(&a, rows);
  ct__arg_long(&a, cols);
  return ct__run1d(&a, rows * cols);
}

static ct_status ct__ocl_xent_rev(void *ctx, const ct__kargs *ka) {
  return ct__run_loss_rev(ctx, CT__K_XENT_REV, ka->in[0], ka);
}

static ct_status ct__ocl_softmax_xent_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t rows = ct__rows(ka->in_obj[0]), cols = ct__cols(ka->in_obj[0]);
  CT__TRY(ct__scratch(c, (size_t)rows * sizeof(float)));
  size_t g = ct__row_group(c, CT__K_SMXENT_ROWS, cols);
  ct__args a = ct__args_of(c, CT__K_SMXENT_ROWS);
  ct__arg_mem(&a, ka->in[0]);
  ct__arg_mem(&a, ka->in[1]);
  ct__arg_mem(&a, ka->saved);
  ct__arg_mem(&a, c->scratch);
  ct__arg_long(&a, cols);
  ct__arg_local(&a, g * sizeof(float));
  CT__TRY(ct__run_rows(&a, rows, g));
  return ct__run_loss(c, CT__K_SMXENT_LOSS, c->scratch, ka, rows, cols);
}

static ct_status ct__ocl_softmax_xent_rev(void *ctx, const ct__kargs *ka) {
  return ct__run_loss_rev(ctx, CT__K_SMXENT_REV, ka->saved, ka);
}

/* Copies the input to every output that is wanted (NULL outputs are skipped). */
static ct_status ct__ocl_copy_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  size_t bytes = ct_object_bytes(ka->in_obj[0]);
  for (int k = 0; k < ka->n_out && bytes > 0; k++)
    if (ka->out[k])
      CT__OCL_TRY("clEnqueueCopyBuffer", clEnqueueCopyBuffer(c->queue, (cl_mem)ka->in[0],
                                                             (cl_mem)ka->out[k], 0, 0, bytes, 0,
                                                             NULL, NULL));
  return CT_OK;
}

static ct_status ct__ocl_add_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  if (!ka->out[0]) return CT_OK;
  int64_t n = ct_object_numel(ka->out_obj[0]);
  ct__args a = ct__args_of(c, CT__K_ADD);
  ct__arg_mem(&a, ka->in[0]);
  ct__arg_mem(&a, ka->in[1]);
  ct__arg_mem(&a, ka->out[0]);
  ct__arg_long(&a, n);
  return ct__run1d(&a, n);
}

static ct_status ct__ocl_discard_fwd(void *ctx, const ct__kargs *ka) { return CT_OK; }

/* ---- sequence generators ------------------------------------------------------- */

static ct_status ct__ocl_pos_embedding_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  const ct_object *o = ka->in_obj[0];
  int64_t tc = o->dims[1] * o->dims[2];
  ct__args a = ct__args_of(c, CT__K_POS_FWD);
  ct__arg_mem(&a, ka->in[0]);
  ct__arg_mem(&a, ka->param[0]);
  ct__arg_mem(&a, ka->out[0]);
  ct__arg_long(&a, tc);
  ct__arg_long(&a, o->dims[0]);
  size_t items[2] = {(size_t)tc, (size_t)o->dims[0]}, local[2];
  ct__local2d(c, CT__K_POS_FWD, items[0], items[1], local);
  return ct__run(&a, 2, items, local);
}

/* dx = dy; dP[t, c] += sum over the batch of dy[b, t, c] (column sums of dy
 * seen as [B, T*C]). */
static ct_status ct__ocl_pos_embedding_rev(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  const ct_object *o = ka->in_obj[0];
  size_t bytes = ct_object_bytes(o);
  if (ka->din[0] && bytes > 0)
    CT__OCL_TRY("clEnqueueCopyBuffer", clEnqueueCopyBuffer(c->queue, (cl_mem)ka->dout[0],
                                                           (cl_mem)ka->din[0], 0, 0, bytes, 0,
                                                           NULL, NULL));
  if (!ka->dparam[0]) return CT_OK;
  return ct__colsum(c, ka->dout[0], o->dims[0], o->dims[1] * o->dims[2], ka->dparam[0]);
}

static ct_status ct__ocl_layernorm_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t rows = ct__rows(ka->in_obj[0]), cols = ct__cols(ka->in_obj[0]);
  size_t g = ct__row_group(c, CT__K_LN_FWD, cols);
  ct__args a = ct__args_of(c, CT__K_LN_FWD);
  ct__arg_mem(&a, ka->in[0]);
  ct__arg_mem(&a, ka->param[0]);
  ct__arg_mem(&a, ka->param[1]);
  ct__arg_mem(&a, ka->out[0]);
  ct__arg_mem(&a, ka->saved);
  ct__arg_long(&a, rows);
  ct__arg_long(&a, cols);
  ct__arg_local(&a, g * sizeof(float));
  return ct__run_rows(&a, rows, g);
}

/* The gain and bias gradients of layer norm at x: column sums of dy xhat and dy
 * (xhat from the saved statistics) over row chunks, then in chunk order; either
 * of dg, db may be NULL. */
static ct_status ct__ln_params(ct__ocl *c, void *x, void *dy, void *saved, void *dg, void *db,
                               int64_t rows, int64_t cols) {
  if ((!dg && !db) || rows <= 0 || cols <= 0) return CT_OK;
  int64_t chunks = (rows + CT__COLSUM_CHUNK - 1) / CT__COLSUM_CHUNK;
  CT__TRY(ct__scratch(c, (size_t)(2 * chunks * cols) * sizeof(float)));
  ct__args p = ct__args_of(c, CT__K_LN_PARAM_PART);
  ct__arg_mem(&p, x);
  ct__arg_mem(&p, dy);
  ct__arg_mem(&p, saved);
  ct__arg_mem(&p, c->scratch);
  ct__arg_long(&p, rows);
  ct__arg_long(&p, cols);
  ct__arg_long(&p, CT__COLSUM_CHUNK);
  ct__arg_long(&p, chunks);
  size_t items[2] = {(size_t)cols, (size_t)chunks}, local[2];
  ct__local2d(c, CT__K_LN_PARAM_PART, items[0], items[1], local);
  CT__TRY(ct__run(&p, 2, items, local));
  if (dg) CT__TRY(ct__colsum_finish(c, c->scratch, 0, chunks, cols, dg));
  if (db) CT__TRY(ct__colsum_finish(c, c->scratch, chunks * cols, chunks, cols, db));
  return CT_OK;
}

/* dx row by row from the saved statistics; the gain and bias gradients. */
static ct_status ct__ocl_layernorm_rev(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t rows = ct__rows(ka->in_obj[0]), cols = ct__cols(ka->in_obj[0]);
  if (ka->din[0]) {
    size_t g = ct__row_group(c, CT__K_LN_REV, cols);
    ct__args a = ct__args_of(c, CT__K_LN_REV);
    ct__arg_mem(&a, ka->in[0]);
    ct__arg_mem(&a, ka->param[0]);
    ct__arg_mem(&a, ka->dout[0]);
    ct__arg_mem(&a, ka->saved);
    ct__arg_mem(&a, ka->din[0]);
    ct__arg_long(&a, rows);
    ct__arg_long(&a, cols);
    ct__arg_local(&a, g * sizeof(float));
    CT__TRY(ct__run_rows(&a, rows, g));
  }
  return ct__ln_params(c, ka->in[0], ka->dout[0], ka->saved, ka->dparam[0], ka->dparam[1], rows,
                       cols);
}

/* s = x + r and the layer norm of s, one row per work-group. */
static ct_status ct__ocl_add_layernorm_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t rows = ct__rows(ka->in_obj[0]), cols = ct__cols(ka->in_obj[0]);
  size_t g = ct__row_group(c, CT__K_ADD_LN_FWD, cols);
  ct__args a = ct__args_of(c, CT__K_ADD_LN_FWD);
  ct__arg_mem(&a, ka->in[0]);
  ct__arg_mem(&a, ka->in[1]);
  ct__arg_mem(&a, ka->param[0]);
  ct__arg_mem(&a, ka->param[1]);
  ct__arg_mem(&a, ka->out[0]);
  ct__arg_mem(&a, ka->out[1]);
  ct__arg_mem(&a, ka->saved);
  ct__arg_long(&a, rows);
  ct__arg_long(&a, cols);
  ct__arg_local(&a, g * sizeof(float));
  return ct__run_rows(&a, rows, g);
}

/* dx = dr = ds + layer norm's dx at s from dy, row by row; the gain and bias
 * gradients at s. */
static ct_status ct__ocl_add_layernorm_rev(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t rows = ct__rows(ka->in_obj[0]), cols = ct__cols(ka->in_obj[0]);
  if (ka->din[0] || ka->din[1]) {
    size_t g = ct__row_group(c, CT__K_ADD_LN_REV, cols);
    void *any = ka->din[0] ? ka->din[0] : ka->din[1]; /* bound where one is not wanted */
    ct__args a = ct__args_of(c, CT__K_ADD_LN_REV);
    ct__arg_mem(&a, ka->out[0]);
    ct__arg_mem(&a, ka->param[0]);
    ct__arg_mem(&a, ka->dout[0]);
    ct__arg_mem(&a, ka->dout[1]);
    ct__arg_mem(&a, ka->saved);
    ct__arg_mem(&a, ka->din[0] ? ka->din[0] : any);
    ct__arg_mem(&a, ka->din[1] ? ka->din[1] : any);
    ct__arg_int(&a, (ka->din[0] ? 1 : 0) | (ka->din[1] ? 2 : 0));
    ct__arg_long(&a, rows);
    ct__arg_long(&a, cols);
    ct__arg_local(&a, g * sizeof(float));
    CT__TRY(ct__run_rows(&a, rows, g));
  }
  return ct__ln_params(c, ka->out[0], ka->dout[1], ka->saved, ka->dparam[0], ka->dparam[1], rows,
                       cols);
}

static ct_status ct__ocl_gelu_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t n = ct_object_numel(ka->in_obj[0]);
  ct__args a = ct__args_of(c, CT__K_GELU_FWD);
  ct__arg_mem(&a, ka->in[0]);
  ct__arg_mem(&a, ka->out[0]);
  ct__arg_long(&a, n);
  return ct__run1d(&a, n);
}

static ct_status ct__ocl_gelu_rev(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  if (!ka->din[0]) return CT_OK;
  int64_t n = ct_object_numel(ka->in_obj[0]);
  ct__args a = ct__args_of(c, CT__K_GELU_REV);
  ct__arg_mem(&a, ka->in[0]);
  ct__arg_mem(&a, ka->dout[0]);
  ct__arg_mem(&a, ka->din[0]);
  ct__arg_long(&a, n);
  return ct__run1d(&a, n);
}

/* SEQ [B,T,H*D] <-> HEADS [B,H,T,D] (heads is the HEADS object). */
static ct_status ct__heads_permute(ct__ocl *c, const void *src, void *dst, const ct_object *heads,
                                   int to_heads) {
  if (!dst) return CT_OK;
  int64_t B = heads->dims[0], H = heads->dims[1], T = heads->dims[2], D = heads->dims[3];
  ct__args a = ct__args_of(c, CT__K_HEADS);
  ct__arg_mem(&a, src);
  ct__arg_mem(&a, dst);
  for (int d = 0; d < 4; d++) ct__arg_long(&a, heads->dims[d]);
  ct__arg_int(&a, to_heads);
  size_t items[3] = {(size_t)D, (size_t)(to_heads ? T : H), (size_t)(B * (to_heads ? H : T))};
  size_t local[3] = {1, 1, 1};
  ct__local2d(c, CT__K_HEADS, items[0], items[1], local);
  return ct__run(&a, 3, items, local);
}

static ct_status ct__ocl_head_split_fwd(void *ctx, const ct__kargs *ka) {
  return ct__heads_permute(ctx, ka->in[0], ka->out[0], ka->out_obj[0], 1);
}

static ct_status ct__ocl_head_merge_fwd(void *ctx, const ct__kargs *ka) {
  return ct__heads_permute(ctx, ka->in[0], ka->out[0], ka->in_obj[0], 0);
}

/* Trailing two axes of o and the count of matrices before them. */
static void ct__mats(const ct_object *o, int64_t *batch, int64_t *rows, int64_t *cols) {
  *rows = o->dims[o->rank - 2];
  *cols = o->dims[o->rank - 1];
  *batch = *rows * *cols > 0 ? ct_object_numel(o) / (*rows * *cols) : 0;
}

/* dst = causal mask of scale * src over [batch, T, T] (see ct_causal_mask). */
static ct_status ct__causal_mask(ct__ocl *c, const void *src, void *dst, int64_t batch, int64_t T,
                                 float scale) {
  ct__args a = ct__args_of(c, CT__K_CMASK);
  ct__arg_mem(&a, src);
  ct__arg_mem(&a, dst);
  ct__arg_long(&a, T);
  ct__arg_float(&a, scale);
  size_t items[3] = {(size_t)T, (size_t)T, (size_t)batch}, local[3] = {1, 1, 1};
  ct__local2d(c, CT__K_CMASK, items[0], items[1], local);
  return ct__run(&a, 3, items, local);
}

/* s = q . k^T / sqrt(D) on and below the diagonal, 0 above: the full batched
 * product into the node's scratch (saved), then masked and scaled into s. */
static ct_status ct__ocl_attn_scores_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t batch, T, D;
  ct__mats(ka->in_obj[0], &batch, &T, &D);
  CT__TRY(ct__ocl_gemm_batched(c, c->gemm, false, true, batch, T, T, D, ka->in[0], T * D,
                               ka->in[1], T * D, NULL, 0.0f, ka->saved, T * T));
  return ct__causal_mask(c, ka->saved, ka->out[0], batch, T, (float)(1.0 / sqrt((double)D)));
}

/* With g = the masked cotangent / sqrt(D) (in saved): dq = g . k, dk = g^T . q. */
static ct_status ct__ocl_attn_scores_rev(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t batch, T, D;
  ct__mats(ka->in_obj[0], &batch, &T, &D);
  if (!ka->din[0] && !ka->din[1]) return CT_OK;
  CT__TRY(ct__causal_mask(c, ka->dout[0], ka->saved, batch, T, (float)(1.0 / sqrt((double)D))));
  if (ka->din[0])
    CT__TRY(ct__ocl_gemm_batched(c, c->gemm, false, false, batch, T, D, T, ka->saved, T * T,
                                 ka->in[1], T * D, NULL, 0.0f, ka->din[0], T * D));
  if (ka->din[1])
    CT__TRY(ct__ocl_gemm_batched(c, c->gemm, true, false, batch, T, D, T, ka->saved, T * T,
                                 ka->in[0], T * D, NULL, 0.0f, ka->din[1], T * D));
  return CT_OK;
}

static ct_status ct__ocl_causal_softmax_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t rows = ct__rows(ka->in_obj[0]), T = ct__cols(ka->in_obj[0]);
  size_t g = ct__row_group(c, CT__K_CSOFTMAX_FWD, T);
  ct__args a = ct__args_of(c, CT__K_CSOFTMAX_FWD);
  ct__arg_mem(&a, ka->in[0]);
  ct__arg_mem(&a, ka->out[0]);
  ct__arg_long(&a, T);
  ct__arg_local(&a, g * sizeof(float));
  return ct__run_rows(&a, rows, g);
}

static ct_status ct__ocl_causal_softmax_rev(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  if (!ka->din[0]) return CT_OK;
  int64_t rows = ct__rows(ka->in_obj[0]), T = ct__cols(ka->in_obj[0]);
  size_t g = ct__row_group(c, CT__K_CSOFTMAX_REV, T);
  ct__args a = ct__args_of(c, CT__K_CSOFTMAX_REV);
  ct__arg_mem(&a, ka->out[0]);
  ct__arg_mem(&a, ka->dout[0]);
  ct__arg_mem(&a, ka->din[0]);
  ct__arg_long(&a, T);
  ct__arg_local(&a, g * sizeof(float));
  return ct__run_rows(&a, rows, g);
}

/* y = a . v over all positions. */
static ct_status ct__ocl_attn_apply_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t batch, T, D;
  ct__mats(ka->in_obj[1], &batch, &T, &D);
  return ct__ocl_gemm_batched(c, c->gemm, false, false, batch, T, D, T, ka->in[0], T * T,
                              ka->in[1], T * D, NULL, 0.0f, ka->out[0], T * D);
}

/* da = dy . v^T, dv = a^T . dy. */
static ct_status ct__ocl_attn_apply_rev(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int64_t batch, T, D;
  ct__mats(ka->in_obj[1], &batch, &T, &D);
  if (ka->din[0])
    CT__TRY(ct__ocl_gemm_batched(c, c->gemm, false, true, batch, T, T, D, ka->dout[0], T * D,
                                 ka->in[1], T * D, NULL, 0.0f, ka->din[0], T * T));
  if (ka->din[1])
    CT__TRY(ct__ocl_gemm_batched(c, c->gemm, true, false, batch, T, D, T, ka->in[0], T * T,
                                 ka->dout[0], T * D, NULL, 0.0f, ka->din[1], T * D));
  return CT_OK;
}

/* The widest head the row-blocked attention kernels hold (CT_ATTN_DCAP in sequence.cl). */
#define CT__ATTN_DCAP 128

/* A causal_attention launch (see sequence.cl): the shape, the head width DM the
 * kernels hold (16; D rounded up to a multiple of 16 up to CT__ATTN_DCAP; else D for
 * the _any kernels) and the inputs q, k, v, y, dy as the kernels read them (input i
 * at i inoff floats into in[i]). */
typedef struct ct__attn {
  int64_t B, T, C, H, D, DM, Ci, inoff;
  int var; /* kernel variant: 0 width 16, 1 width DM, 2 any width */
  const void *in[5];
} ct__attn;

/* The launch for ka; the first n_in inputs are read. A head narrower than its
 * kernel's width is copied, zero-padded to DM, into the scratch (Ci = H DM). */
static ct_status ct__attn_setup(ct__ocl *c, const ct__kargs *ka, int n_in, ct__attn *at) {
  const ct_object *x = ka->in_obj[0];
  at->B = x->dims[0];
  at->T = x->dims[1];
  at->C = x->dims[2];
  at->H = ka->attr;
  at->D = at->C / at->H;
  if (at->T > 0x7fffff00)
    return ct__fail(CT_ERR_UNSUPPORTED, "opencl: causal_attention over %lld positions (at "
                    "most 2^31 - 256)", (long long)at->T);
  at->var = at->D <= 16 ? 0 : at->D <= CT__ATTN_DCAP ? 1 : 2;
  at->DM = at->var < 2 ? (at->D + 15) / 16 * 16 : at->D;
  at->Ci = at->C;
  at->inoff = 0;
  const void *in[5] = {ka->in[0], ka->in[1], ka->in[2], ka->out[0], ka->dout[0]};
  for (int i = 0; i < 5; i++) at->in[i] = i < n_in && in[i] ? in[i] : c->dummy;
  if (at->DM == at->D) return CT_OK;
  at->inoff = at->B * at->T * at->H * at->DM;
  CT__TRY(ct__scratch(c, (size_t)(n_in * at->inoff) * sizeof(float)));
  ct__args p = ct__args_of(c, CT__K_ATTN_PAD);
  for (int i = 0; i < 5; i++) ct__arg_mem(&p, at->in[i]);
  ct__arg_mem(&p, c->scratch);
  ct__arg_long(&p, at->B * at->T);
  ct__arg_long(&p, at->H);
  ct__arg_int(&p, (int)at->D);
  ct__arg_int(&p, (int)at->DM);
  size_t items[3] = {(size_t)(at->H * at->DM), (size_t)(at->B * at->T), (size_t)n_in},
         local[3] = {1, 1, 1};
  ct__local2d(c, CT__K_ATTN_PAD, items[0], items[1], local);
  CT__TRY(ct__run(&p, 3, items, local));
  for (int i = 0; i < 5; i++) at->in[i] = c->scratch;
  at->Ci = at->H * at->DM;
  return CT_OK;
}

/* Queues the kernel of family base (the width-16 kernel of fwd, dq or dkdv; the
 * width-DM and any-width kernels follow it in the kernel list). NULL outputs are
 * bound as the dummy buffer and left alone (outs says which to write). */
static ct_status ct__attn_run(ct__ocl *c, const ct__attn *at, ct__ocl_kernel_id base,
                              const ct__kargs *ka, void *out0, void *out1, void *out2,
                              int outs) {
  ct__ocl_kernel_id k = (ct__ocl_kernel_id)(base + at->var);
  ct__args a = ct__args_of(c, k);
  void *out[3] = {out0, out1, out2};
  for (int i = 0; i < 5; i++) ct__arg_mem(&a, at->in[i]);
  ct__arg_long(&a, at->inoff);
  for (int i = 0; i < 3; i++) ct__arg_mem(&a, out[i] ? out[i] : c->dummy);
  ct__arg_mem(&a, ka->saved);
  ct__arg_long(&a, at->B);
  ct__arg_long(&a, at->T);
  ct__arg_long(&a, at->H);
  ct__arg_long(&a, at->Ci);
  ct__arg_int(&a, (int)at->DM);
  ct__arg_long(&a, at->C);
  ct__arg_int(&a, (int)at->D);
  ct__arg_float(&a, (float)(1.0 / sqrt((double)at->D)));
  ct__arg_int(&a, outs);
  size_t rows = (size_t)(at->var < 2 ? (at->T + c->rb_width - 1) / c->rb_width : at->T);
  size_t items[2] = {rows, (size_t)(at->B * at->H)}, local[2] = {1, 1};
  /* on CPUs one work-item per group: a work-item's lanes are its vector */
  if (!(c->type & CL_DEVICE_TYPE_CPU)) ct__local2d(c, k, items[0], items[1], local);
  return ct__run(&a, 2, items, local);
}

/* y and the log-sum-exp of every row (saved's first half) in one launch. */
static ct_status ct__ocl_causal_attention_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  ct__attn at;
  CT__TRY(ct__attn_setup(c, ka, 3, &at));
  return ct__attn_run(c, &at, CT__K_ATTN_FWD16, ka, ka->out[0], NULL, NULL, 0);
}

/* Dsum (saved's second half) and dq per query row, then dk and dv per key row. */
static ct_status ct__ocl_causal_attention_rev(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  int outs = (ka->din[0] ? 1 : 0) | (ka->din[1] ? 2 : 0) | (ka->din[2] ? 4 : 0);
  if (!outs) return CT_OK;
  ct__attn at;
  CT__TRY(ct__attn_setup(c, ka, 5, &at));
  CT__TRY(ct__attn_run(c, &at, CT__K_ATTN_DQ16, ka, ka->din[0], NULL, NULL, outs & 1));
  if (!(outs & 6)) return CT_OK;
  return ct__attn_run(c, &at, CT__K_ATTN_DKDV16, ka, NULL, ka->din[1], ka->din[2], outs & 6);
}

/* kv_attention (see sequence.cl): a decoding step (T = 1) writes and attends in one
 * launch, one work-item per (b, h); longer runs write every row first (one work-item
 * per (b, channel)), then attend, CT_RB_W rows per work-item for heads of width 16 or
 * a multiple of 16 up to CT__ATTN_DCAP, else one row per work-item. */
static ct_status ct__ocl_kv_attention_fwd(void *ctx, const ct__kargs *ka) {
  ct__ocl *c = ctx;
  const ct_object *x = ka->in_obj[0], *cache = ka->param_obj[0];
  int64_t B = x->dims[0], T = x->dims[1], C = x->dims[2], H = cache->dims[1], L = cache->dims[2],
          D = cache->dims[3];
  if (T > 0x7fffff00 || L > 0x7fffff00)
    return ct__fail(CT_ERR_UNSUPPORTED, "opencl: kv_attention over %lld rows and a cache of "
                    "%lld (at most 2^31 - 256 each)", (long long)T, (long long)L);
  bool rows = D % 16 == 0 && D <= CT__ATTN_DCAP; /* the row-blocked kernels */
  ct__ocl_kernel_id ks[2] = {CT__K_KV_FUSED, 0};
  if (T > 1) {
    ks[0] = CT__K_KV_WRITE;
    ks[1] = !rows ? CT__K_KV_ATTEND : D == 16 ? CT__K_KV_ATTEND16 : CT__K_KV_ATTEND_N;
  }
  bool cpu = (c->type & CL_DEVICE_TYPE_CPU) != 0;
  for (int i = 0; i < (T > 1 ? 2 : 1); i++) {
    ct__args a = ct__args_of(c, ks[i]);
    for (int j = 0; j < 4; j++) ct__arg_mem(&a, ka->in[j]);
    ct__arg_mem(&a, ka->param[0]);
    ct__arg_mem(&a, ka->param[1]);
    ct__arg_mem(&a, ka->out[0]);
    ct__arg_mem(&a, c->record);
    ct__arg_long(&a, B);
    ct__arg_long(&a, T);
    ct__arg_long(&a, C);
    ct__arg_long(&a, H);
    ct__arg_long(&a, L);
    ct__arg_int(&a, (int)D);
    ct__arg_float(&a, (float)(1.0 / sqrt((double)D)));
    ct__arg_int(&a, ka->node);
    ct__arg_int(&a, (int)ka->op);
    if (ks[i] == CT__K_KV_FUSED) { /* one work-item per (b, h); on CPUs one per group */
      size_t items = (size_t)(B * H), local = cpu ? 1 : ct__local1d(c, ks[i]);
      CT__TRY(ct__run(&a, 1, &items, &local));
    } else if (ks[i] == CT__K_KV_WRITE) { /* (channel, b) */
      size_t items[2] = {(size_t)C, (size_t)B}, local[2];
      ct__local2d(c, ks[i], items[0], items[1], local);
      CT__TRY(ct__run(&a, 2, items, local));
    } else { /* (row or block of CT_RB_W rows, b H + h); on CPUs one per group */
      size_t items[2] = {(size_t)(rows ? (T + c->rb_width - 1) / c->rb_width : T),
                         (size_t)(B * H)},
             local[2] = {1, 1};
      if (!cpu) ct__local2d(c, ks[i], items[0], items[1], local);
      CT__TRY(ct__run(&a, 2, items, local));
    }
  }
  return CT_OK;
}

/* ---- optimizer ------------------------------------------------------------------ */

/* Elements per work-item of a squared-norm work-group before a second pass. */
#define CT__SUMSQ_PER_ITEM 16

/* sumsq[index] = sum of x^2: one work-group per chunk into the scratch, then one
 * work-group over the chunk sums (a single pass when one chunk covers x). */
static ct_status ct__ocl_sumsq(void *ctx, const void *x, int64_t n, void *sumsq, int index) {
  ct__ocl *c = ctx;
  if (n <= 0) {
    cl_float zero = 0.0f;
    CT__OCL_TRY("clEnqueueFillBuffer", clEnqueueFillBuffer(c->queue, (cl_mem)sumsq, &zero,
                                                           sizeof zero, (size_t)index * sizeof zero,
                                                           sizeof zero, 0, NULL, NULL));
    return CT_OK;
  }
  size_t g = ct__pow2_group(c, CT__K_SUMSQ, n, sizeof(float));
  int64_t chunk = (int64_t)g * CT__SUMSQ_PER_ITEM, groups = (n + chunk - 1) / chunk;
  if (groups == 1) chunk = n;
  else CT__TRY(ct__scratch(c, (size_t)groups * sizeof(float)));
  ct__args a = ct__args_of(c, CT__K_SUMSQ);
  ct__arg_mem(&a, x);
  ct__arg_long(&a, n);
  ct__arg_long(&a, chunk);
  ct__arg_int(&a, 1);
  ct__arg_mem(&a, groups == 1 ? sumsq : c->scratch);
  ct__arg_long(&a, groups == 1 ? index : 0);
  ct__arg_local(&a, g * sizeof(float));
  CT__TRY(ct__run_rows(&a, groups, g));
  if (groups == 1) return CT_OK;
  size_t g2 = ct__pow2_group(c, CT__K_SUMSQ, groups, sizeof(float));
  ct__args b = ct__args_of(c, CT__K_SUMSQ);
  ct__arg_mem(&b, c->scratch);
  ct__arg_long(&b, groups);
  ct__arg_long(&b, groups);
  ct__arg_int(&b, 0);
  ct__arg_mem(&b, sumsq);
  ct__arg_long(&b, index);
  ct__arg_local(&b, g2 * sizeof(float));
  return ct__run_rows(&b, 1, g2);
}

static ct_status ct__ocl_hyper_step(void *ctx, void *hyper, const void *sumsq, int n) {
  ct__ocl *c = ctx;
  ct__args a = ct__args_of(c, CT__K_HYPER_STEP);
  ct__arg_mem(&a, hyper);
  ct__arg_mem(&a, sumsq);
  ct__arg_int(&a, n);
  ct__arg_mem(&a, c->record);
  size_t one = 1;
  return ct__run(&a, 1, &one, &one);
}

/* Work-items of an update launch at most; the kernels stride over the rest. One item per
 * element below it: on PoCL a cap of 2^18 (41 elements an item for the small config's 10.7M
 * parameters) made the step 28% slower. */
#define CT__UPDATE_ITEMS ((int64_t)1 << 30)

static ct_status ct__ocl_sgd_update(void *ctx, const void *hyper, void *param, const void *grad,
                                    void *state, int64_t n, int64_t n_decay) {
  ct__ocl *c = ctx;
  if (!grad || n <= 0) return CT_OK;
  ct__args a = ct__args_of(c, CT__K_SGD);
  ct__arg_mem(&a, param);
  ct__arg_mem(&a, grad);
  ct__arg_mem(&a, hyper);
  ct__arg_long(&a, n);
  ct__arg_mem(&a, c->record);
  return ct__run1d(&a, n < CT__UPDATE_ITEMS ? n : CT__UPDATE_ITEMS);
}

static ct_status ct__ocl_adamw_update(void *ctx, const void *hyper, void *param, const void *grad,
                                      void *state, int64_t n, int64_t n_decay) {
  ct__ocl *c = ctx;
  if (!grad || n <= 0) return CT_OK;
  if (!state) return ct__fail(CT_ERR_INTERNAL, "opencl: AdamW update without its state buffer");
  ct__args a = ct__args_of(c, CT__K_ADAMW);
  ct__arg_mem(&a, param);
  ct__arg_mem(&a, grad);
  ct__arg_mem(&a, state);
  ct__arg_mem(&a, hyper);
  ct__arg_long(&a, n);
  ct__arg_long(&a, n_decay);
  ct__arg_mem(&a, c->record);
  return ct__run1d(&a, n < CT__UPDATE_ITEMS ? n : CT__UPDATE_ITEMS);
}

/* ---- opening -------------------------------------------------------------------- */

static void ct__ocl_free(ct__ocl *c) {
  if (!c) return;
  for (int k = 0; k < CT__K_COUNT; k++)
    if (c->kernel[k]) clReleaseKernel(c->kernel[k]);
  if (c->program) clReleaseProgram(c->program);
  if (c->record) clReleaseMemObject(c->record);
  if (c->dummy) clReleaseMemObject(c->dummy);
  if (c->scratch) clReleaseMemObject(c->scratch);
  if (c->queue) clReleaseCommandQueue(c->queue);
  if (c->context) clReleaseContext(c->context);
  free(c);
}

/* Creates every kernel and reads its work-group limits. */
static ct_status ct__ocl_kernels(ct__ocl *c) {
  for (int k = 0; k < CT__K_COUNT; k++) {
    cl_int err = CL_SUCCESS;
    char call[96];
    c->kernel[k] = clCreateKernel(c->program, ct__ocl_kernel_names[k], &err);
    snprintf(call, sizeof call, "clCreateKernel(%s)", ct__ocl_kernel_names[k]);
    if (err != CL_SUCCESS) return ct__ocl_fail(call, err);
    snprintf(call, sizeof call, "clGetKernelWorkGroupInfo(%s)", ct__ocl_kernel_names[k]);
    CT__OCL_TRY(call, clGetKernelWorkGroupInfo(c->kernel[k], c->device, CL_KERNEL_WORK_GROUP_SIZE,
                                               sizeof c->kernel_wg[k], &c->kernel_wg[k], NULL));
    CT__OCL_TRY(call, clGetKernelWorkGroupInfo(c->kernel[k], c->device, CL_KERNEL_LOCAL_MEM_SIZE,
                                               sizeof c->kernel_local[k], &c->kernel_local[k],
                                               NULL));
    if (c->kernel_wg[k] == 0) c->kernel_wg[k] = 1;
  }
  CT__OCL_TRY("clGetKernelWorkGroupInfo(ct_add)",
              clGetKernelWorkGroupInfo(c->kernel[CT__K_ADD], c->device,
                                       CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE,
                                       sizeof c->wg_multiple, &c->wg_multiple, NULL));
  return CT_OK;
}

/* The matrix-product family: CTML_OPENCL_GEMM ("register" or "local") when set,
 * else register blocking on CPUs (local-memory tiling with barriers measured
 * far slower under PoCL) and local tiling elsewhere when the device allows it. */
static ct_status ct__ocl_pick_gemm(ct__ocl *c) {
  const char *env = getenv("CTML_OPENCL_GEMM");
  if (env && *env) {
    if (!strcmp(env, "register")) {
      c->gemm = CT__GEMM_REGISTER;
      return CT_OK;
    }
    if (strcmp(env, "local"))
      return ct__fail(CT_ERR_BACKEND_ABSENT, "opencl: CTML_OPENCL_GEMM='%s' is neither "
                      "'register' nor 'local'", env);
    if (!ct__ocl_gemm_usable(c, CT__GEMM_LOCAL))
      return ct__fail(CT_ERR_BACKEND_ABSENT, "opencl: CTML_OPENCL_GEMM=local, but the device "
                      "cannot run a 16 x 16 work-group of the local-tiled kernels");
    c->gemm = CT__GEMM_LOCAL;
    return CT_OK;
  }
  c->gemm = (c->type & CL_DEVICE_TYPE_CPU) || !ct__ocl_gemm_usable(c, CT__GEMM_LOCAL)
                ? CT__GEMM_REGISTER
                : CT__GEMM_LOCAL;
  return CT_OK;
}

static ct_status ct__ocl_setup(ct__ocl *c, const ct__ocl_dev *d, char *device, size_t device_len) {
  cl_int err = CL_SUCCESS;
  c->platform = d->platform;
  c->device = d->device;
  c->type = d->type;
  CT__OCL_TRY("clGetDeviceInfo(CL_DEVICE_MAX_MEM_ALLOC_SIZE)",
              clGetDeviceInfo(c->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof c->max_alloc,
                              &c->max_alloc, NULL));
  CT__OCL_TRY("clGetDeviceInfo(CL_DEVICE_LOCAL_MEM_SIZE)",
              clGetDeviceInfo(c->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof c->local_mem,
                              &c->local_mem, NULL));
  cl_uint align_bits = 0;
  CT__OCL_TRY("clGetDeviceInfo(CL_DEVICE_MEM_BASE_ADDR_ALIGN)",
              clGetDeviceInfo(c->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits,
                              &align_bits, NULL));
  c->base_align = 4;
  while (c->base_align < align_bits / 8) c->base_align *= 2;
  cl_context_properties props[3] = {CL_CONTEXT_PLATFORM, (cl_context_properties)c->platform, 0};
  c->context = clCreateContext(props, 1, &c->device, NULL, NULL, &err);
  if (err != CL_SUCCESS) return ct__ocl_fail("clCreateContext", err);
  c->queue = clCreateCommandQueue(c->context, c->device, 0, &err); /* in order */
  if (err != CL_SUCCESS) return ct__ocl_fail("clCreateCommandQueue", err);
  /* The register-blocked tile width follows the native float vector width. */
  cl_uint vw = 1;
  CT__OCL_TRY("clGetDeviceInfo(CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT)",
              clGetDeviceInfo(c->device, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof vw, &vw,
                              NULL));
  c->rb_width = vw >= 16 ? 16 : vw >= 8 ? 8 : 4;
  char options[64];
  snprintf(options, sizeof options, "-cl-std=CL1.2 -DCT_RB_W=%d", c->rb_width);
  CT__TRY(ct__ocl_build_program(c, options));
  CT__TRY(ct__ocl_kernels(c));
  CT__TRY(ct__ocl_pick_gemm(c));
  c->record = clCreateBuffer(c->context, CL_MEM_READ_WRITE, CT__REC_INTS * sizeof(cl_int), NULL,
                             &err);
  if (err != CL_SUCCESS) return ct__ocl_fail("clCreateBuffer(error record)", err);
  c->dummy = clCreateBuffer(c->context, CL_MEM_READ_WRITE, 4 * sizeof(cl_int), NULL, &err);
  if (err != CL_SUCCESS) return ct__ocl_fail("clCreateBuffer", err);
  cl_int zero[CT__REC_INTS] = {0};
  CT__OCL_TRY("clEnqueueWriteBuffer(error record)",
              clEnqueueWriteBuffer(c->queue, c->record, CL_TRUE, 0, sizeof zero, zero, 0, NULL,
                                   NULL));
  CT__OCL_TRY("clEnqueueWriteBuffer", clEnqueueWriteBuffer(c->queue, c->dummy, CL_TRUE, 0,
                                                           4 * sizeof(cl_int), zero, 0, NULL,
                                                           NULL));
  int major = 1, minor = 2;
  if (sscanf(d->device_version, "OpenCL %d.%d", &major, &minor) != 2) major = 1, minor = 2;
  snprintf(device, device_len, "%s (%s, OpenCL %d.%d, %u compute units)", d->device_name,
           d->platform_name, major, minor, d->compute_units);
  return CT_OK;
}

static ct_status ct__ocl_open(void **ctx, char *device, size_t device_len) {
  *ctx = NULL;
  ct__ocl_dev *devs = NULL;
  int n = 0;
  CT__TRY(ct__ocl_enumerate(&devs, &n));
  char why[1000];
  int pick = ct__ocl_select(devs, n, why, sizeof why);
  if (pick < 0) {
    free(devs);
    return ct__fail(CT_ERR_BACKEND_ABSENT, "%s", why);
  }
  ct__ocl *c = calloc(1, sizeof *c);
  if (!c) {
    free(devs);
    return ct__fail(CT_ERR_NOMEM, "opencl: out of host memory");
  }
  ct_status s = ct__ocl_setup(c, &devs[pick], device, device_len);
  free(devs);
  if (s != CT_OK) {
    ct__ocl_free(c);
    return s;
  }
  ct__ocl_open_device = c->device;
  *ctx = c;
  return CT_OK;
}

static bool ct__ocl_supports(ct_op op, ct_direction dir) {
  return op >= 0 && op < CT_OP_COUNT;
}

const ct_backend ct__opencl_backend = {
    .name = "opencl",
    .open = ct__ocl_open,
    .alloc = ct__ocl_alloc,
    .release = ct__ocl_release,
    .upload = ct__ocl_upload,
    .download = ct__ocl_download,
    .upload_at = ct__ocl_upload_at,
    .download_at = ct__ocl_download_at,
    .fill = ct__ocl_fill,
    .view_align = ct__ocl_view_align,
    .view = ct__ocl_view,
    .release_view = ct__ocl_release_view,
    .sync = ct__ocl_sync,
    .supports = ct__ocl_supports,
    .forward =
        {
            [CT_OP_EMBEDDING] = ct__ocl_embedding_fwd,
            [CT_OP_LINEAR] = ct__ocl_linear_fwd,
            [CT_OP_SOFTMAX] = ct__ocl_softmax_fwd,
            [CT_OP_CROSS_ENTROPY] = ct__ocl_xent_fwd,
            [CT_OP_SOFTMAX_XENT] = ct__ocl_softmax_xent_fwd,
            [CT_OP_COPY] = ct__ocl_copy_fwd,
            [CT_OP_ADD] = ct__ocl_add_fwd,
            [CT_OP_DISCARD] = ct__ocl_discard_fwd,
            [CT_OP_POS_EMBEDDING] = ct__ocl_pos_embedding_fwd,
            [CT_OP_LAYERNORM] = ct__ocl_layernorm_fwd,
            [CT_OP_GELU] = ct__ocl_gelu_fwd,
            [CT_OP_HEAD_SPLIT] = ct__ocl_head_split_fwd,
            [CT_OP_HEAD_MERGE] = ct__ocl_head_merge_fwd,
            [CT_OP_ATTN_SCORES] = ct__ocl_attn_scores_fwd,
            [CT_OP_CAUSAL_SOFTMAX] = ct__ocl_causal_softmax_fwd,
            [CT_OP_ATTN_APPLY] = ct__ocl_attn_apply_fwd,
            [CT_OP_LINEAR_GELU] = ct__ocl_linear_gelu_fwd,
            [CT_OP_QKV] = ct__ocl_qkv_fwd,
            [CT_OP_ADD_LAYERNORM] = ct__ocl_add_layernorm_fwd,
            [CT_OP_CAUSAL_ATTENTION] = ct__ocl_causal_attention_fwd,
            [CT_OP_KV_ATTENTION] = ct__ocl_kv_attention_fwd,
        },
    .reverse =
        {
            [CT_OP_EMBEDDING] = ct__ocl_embedding_rev,
            [CT_OP_LINEAR] = ct__ocl_linear_rev,
            [CT_OP_SOFTMAX] = ct__ocl_softmax_rev,
            [CT_OP_CROSS_ENTROPY] = ct__ocl_xent_rev,
            [CT_OP_SOFTMAX_XENT] = ct__ocl_softmax_xent_rev,
            [CT_OP_POS_EMBEDDING] = ct__ocl_pos_embedding_rev,
            [CT_OP_LAYERNORM] = ct__ocl_layernorm_rev,
            [CT_OP_GELU] = ct__ocl_gelu_rev,
            [CT_OP_ATTN_SCORES] = ct__ocl_attn_scores_rev,
            [CT_OP_CAUSAL_SOFTMAX] = ct__ocl_causal_softmax_rev,
            [CT_OP_ATTN_APPLY] = ct__ocl_attn_apply_rev,
            [CT_OP_LINEAR_GELU] = ct__ocl_linear_gelu_rev,
            [CT_OP_QKV] = ct__ocl_qkv_rev,
            [CT_OP_ADD_LAYERNORM] = ct__ocl_add_layernorm_rev,
            [CT_OP_CAUSAL_ATTENTION] = ct__ocl_causal_attention_rev,
            /* copy, add, discard, head_split and head_merge reverse as add, copy,
             * zero, head_merge and head_split (see src/ops.c). */
        },
    .opt_state_per_elem = {[CT_OPT_SGD] = 0, [CT_OPT_ADAMW] = 2},
    .update = {[CT_OPT_SGD] = ct__ocl_sgd_update, [CT_OPT_ADAMW] = ct__ocl_adamw_update},
    .sumsq = ct__ocl_sumsq,
    .hyper_step = ct__ocl_hyper_step,
    .set_option = ct__ocl_set_option,
    .list_devices = ct__ocl_list_devices,
};
