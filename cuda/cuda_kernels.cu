/* The cuda backend's kernels. Indices are 64-bit; loops stride over the grid so
 * any size works with a bounded grid; every reduction runs in a fixed order,
 * so a result is the same on every run. */
#include <math.h>
#include <stdint.h>
#include "cuda_kernels.h"

/* Probabilities below this are clamped in the cross-entropies: -ln max(p, 1e-9). */
#define CT__P_FLOOR 1e-9
/* Threads per block, everywhere (a power of two). */
#define CT__THREADS 256
/* Grid cap for grid-stride loops (grid x allows 2^31 - 1). */
#define CT__MAX_BLOCKS ((int64_t)1 << 20)

/* ---- launch shapes ------------------------------------------------------- */

/* Blocks for work items at per_block items a block, at least 1, at most cap. */
static unsigned ct__blocks(int64_t work, int64_t per_block, int64_t cap) {
  int64_t b = (work + per_block - 1) / per_block;
  if (b < 1) b = 1;
  if (b > cap) b = cap;
  return (unsigned)b;
}

/* Row kernels: blockDim.x threads (a power of two up to CT__THREADS) share one
 * row of c entries; the block holds blockDim.y = CT__THREADS / blockDim.x rows. */
static dim3 ct__row_block(int64_t c) {
  unsigned tx = 1;
  while (tx < CT__THREADS && (int64_t)tx < c) tx <<= 1;
  return dim3(tx, CT__THREADS / tx);
}

/* Grid-stride passes over row groups: pass base covers rows base + threadIdx.y.
 * Every thread of a block runs the same passes (so a pass may __syncthreads);
 * on the last pass a thread's row may lie past the end. */
#define CT__ROW_PASSES(base, rows)                                          \
  for (int64_t base = (int64_t)blockIdx.x * blockDim.y; base < (rows); \
       base += (int64_t)gridDim.x * blockDim.y)

/* Grid-stride loop over n elements, one thread each. */
#define CT__FOR_ELEMS(i, n)                                                 \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)gridDim.x * blockDim.x)

/* ---- reductions and error records ----------------------------------------- */

/* Combines v over the threads of one row group (threadIdx.x) in a fixed tree;
 * every thread of the block must call it; each gets its row's result. */
template <bool kMax>
__device__ double ct__row_reduce(double v, double *sh) {
  double *row = sh + threadIdx.y * blockDim.x;
  row[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      double a = row[threadIdx.x], b = row[threadIdx.x + s];
      row[threadIdx.x] = kMax ? (b > a ? b : a) : a + b;
    }
    __syncthreads();
  }
  double r = row[0];
  __syncthreads();
  return r;
}

/* Sum of v over all threads of the block (CT__THREADS of them) in a fixed tree. */
__device__ double ct__block_sum(double v, double *sh) {
  unsigned t = threadIdx.y * blockDim.x + threadIdx.x;
  sh[t] = v;
  __syncthreads();
  for (unsigned s = CT__THREADS / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  double r = sh[0];
  __syncthreads();
  return r;
}

/* Records a bad id unless an earlier launch (another node) already recorded one;
 * within a launch the lowest position wins. */
__device__ void ct__record(ct__cu_errrec *e, int node, int op, int kind, int64_t pos,
                           int32_t value, int64_t limit) {
  int tag = node + 1;
  int old = atomicCAS(&e->flag, 0, tag);
  if (old != 0 && old != tag) return;
  if (old == 0) {
    e->node = node;
    e->op = op;
    e->kind = kind;
    e->limit = limit;
  }
  unsigned long long p = pos < 0xffffffffLL ? (unsigned long long)pos : 0xffffffffull;
  unsigned long long key = (p << 32) | (unsigned long long)(uint32_t)value;
  atomicMax(&e->nkey, ~key);
}

/* Max and sum of exp(x - max) over row xr of c entries, for the row group;
 * live is false for the padding rows past the end (they still join the reductions). */
__device__ void ct__softmax_stats(const float *xr, int64_t c, bool live, double *sh, float *mx,
                                  double *sum) {
  double m = -INFINITY;
  if (live)
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) m = (double)xr[j] > m ? (double)xr[j] : m;
  const float row_max = (float)ct__row_reduce<true>(m, sh);
  double s = 0.0;
  if (live)
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += (double)expf(xr[j] - row_max);
  *mx = row_max;
  *sum = ct__row_reduce<false>(s, sh);
}

/* yr = softmax(xr) for a live row (all threads of the row group take part in the
 * reductions either way); returns ln sum exp(xr). */
__device__ double ct__softmax_row(const float *xr, float *yr, int64_t c, bool live, double *sh) {
  float mx;
  double sum;
  ct__softmax_stats(xr, c, live, sh, &mx, &sum);
  if (!live) return 0.0;
  double inv = 1.0 / sum;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
    yr[j] = (float)((double)expf(xr[j] - mx) * inv);
  return (double)mx + log(sum);
}

/* ---- kernels ---------------------------------------------------------------- */

/* x[i] = value. */
__global__ void ct__k_fill(float *x, float value, int64_t n) {
  CT__FOR_ELEMS(i, n) x[i] = value;
}

/* z = x + y. */
__global__ void ct__k_add(const float *x, const float *y, float *z, int64_t n) {
  CT__FOR_ELEMS(i, n) z[i] = x[i] + y[i];
}

/* The product is rounded before the subtraction (no fused multiply-add), as on the CPU. */
__global__ void ct__k_sgd(float *p, const float *g, float lr, int64_t n, const ct__cu_errrec *err) {
  if (err->flag) return;
  CT__FOR_ELEMS(i, n) p[i] = p[i] - __fmul_rn(lr, g[i]);
}

/* One row group per token: copies its table row, or zeros for a bad id (recorded). */
__global__ void ct__k_embedding_fwd(const int32_t *ids, const float *table, float *y, int64_t n,
                                    int64_t vocab, int64_t width, ct__cu_errrec *err, int node,
                                    int op) {
  CT__ROW_PASSES(base, n) {
    const int64_t r = base + threadIdx.y;
    if (r >= n) continue;
    int32_t id = ids[r];
    bool ok = id >= 0 && id < vocab;
    if (!ok && threadIdx.x == 0) ct__record(err, node, op, 0, r, id, vocab);
    const float *src = table + (ok ? (int64_t)id : 0) * width;
    for (int64_t j = threadIdx.x; j < width; j += blockDim.x) y[r * width + j] = ok ? src[j] : 0.0f;
  }
}

/* Block (32, 8): thread x owns column blockIdx.x * 32 + x of dtable, thread y
 * owns vocabulary rows [p * chunk, (p + 1) * chunk) with p = blockIdx.y * 8 + y.
 * Every thread scans all ids in order, staged through shared memory, and adds
 * the rows that fall in its range: each dtable element has one writer, which
 * adds in increasing position, exactly as the CPU does. */
__global__ void ct__k_embedding_rev(const int32_t *ids, const float *dy, float *dtable, int64_t n,
                                    int64_t vocab, int64_t width, int64_t chunk) {
  __shared__ int32_t tile[CT__THREADS];
  const unsigned t = threadIdx.y * blockDim.x + threadIdx.x;
  const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t lo = ((int64_t)blockIdx.y * blockDim.y + threadIdx.y) * chunk;
  const int64_t hi = lo + chunk < vocab ? lo + chunk : vocab;
  for (int64_t base = 0; base < n; base += CT__THREADS) {
    tile[t] = base + t < n ? ids[base + t] : -1;
    __syncthreads();
    int cnt = n - base < CT__THREADS ? (int)(n - base) : CT__THREADS;
    if (j < width)
      for (int k = 0; k < cnt; k++) {
        int64_t id = tile[k];
        if (id >= lo && id < hi) dtable[id * width + j] += dy[(base + k) * width + j];
      }
    __syncthreads();
  }
}

/* Every row of y = b. */
__global__ void ct__k_bias_rows(const float *b, float *y, int64_t rows, int64_t m) {
  CT__ROW_PASSES(base, rows) {
    const int64_t r = base + threadIdx.y;
    if (r >= rows) continue;
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x) y[r * m + j] = b[j];
  }
}

/* One row group per row: max, sum of exponentials, then the normalised row. */
__global__ void ct__k_softmax_fwd(const float *x, float *y, int64_t rows, int64_t c) {
  __shared__ double sh[CT__THREADS];
  CT__ROW_PASSES(base, rows) {
    const int64_t r = base + threadIdx.y;
    bool live = r < rows;
    const float *xr = x + (live ? r : 0) * c;
    ct__softmax_row(xr, y + (live ? r : 0) * c, c, live, sh);
  }
}

/* One row group per row: dot = sum dy * y, then dx = y * (dy - dot). */
__global__ void ct__k_softmax_rev(const float *y, const float *dy, float *dx, int64_t rows,
                                  int64_t c) {
  __shared__ double sh[CT__THREADS];
  CT__ROW_PASSES(base, rows) {
    const int64_t r = base + threadIdx.y;
    bool live = r < rows;
    int64_t o = (live ? r : 0) * c;
    double d = 0.0;
    if (live)
      for (int64_t j = threadIdx.x; j < c; j += blockDim.x) d += (double)dy[o + j] * (double)y[o + j];
    double dot = ct__row_reduce<false>(d, sh);
    if (!live) continue;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
      dx[o + j] = (float)((double)y[o + j] * ((double)dy[o + j] - dot));
  }
}

/* Per-block partial sums of -ln max(p[i, t[i]], floor); one thread per row. */
__global__ void ct__k_xent_fwd(const float *p, const int32_t *t, double *partials, int64_t rows,
                               int64_t c, ct__cu_errrec *err, int node, int op) {
  __shared__ double sh[CT__THREADS];
  double acc = 0.0;
  CT__FOR_ELEMS(r, rows) {
    int32_t tt = t[r];
    if (tt < 0 || tt >= c) {
      ct__record(err, node, op, 1, r, tt, c);
      continue;
    }
    double pt = p[r * c + tt];
    acc -= log(pt < CT__P_FLOOR ? CT__P_FLOOR : pt); /* NaN passes the clamp */
  }
  double s = ct__block_sum(acc, sh);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

/* loss[0] = sum of the n partials / rows; one block. */
__global__ void ct__k_mean(const double *partials, int n, int64_t rows, float *loss) {
  __shared__ double sh[CT__THREADS];
  double s = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += partials[i];
  s = ct__block_sum(s, sh);
  if (threadIdx.x == 0) loss[0] = (float)(s / (double)rows);
}

/* One row group per row: zeros except -scale / p at the target (when above the floor). */
__global__ void ct__k_xent_rev(const float *p, const int32_t *t, const float *dloss, float *dp,
                               int64_t rows, int64_t c) {
  const double scale = (double)dloss[0] / (double)rows;
  CT__ROW_PASSES(base, rows) {
    const int64_t r = base + threadIdx.y;
    if (r >= rows) continue;
    int32_t tt = t[r];
    bool ok = tt >= 0 && tt < c;
    double pt = ok ? (double)p[r * c + tt] : 0.0;
    float g = ok && pt > CT__P_FLOOR ? (float)(-scale / pt) : 0.0f;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) dp[r * c + j] = j == tt ? g : 0.0f;
  }
}

/* Softmax rows into probs and per-block partial sums of the clamped -log-likelihood. */
__global__ void ct__k_softmax_xent_fwd(const float *x, const int32_t *t, float *probs,
                                       double *partials, int64_t rows, int64_t c,
                                       ct__cu_errrec *err, int node, int op) {
  __shared__ double sh[CT__THREADS];
  const double log_floor = log(CT__P_FLOOR);
  double acc = 0.0;
  CT__ROW_PASSES(base, rows) {
    const int64_t r = base + threadIdx.y;
    bool live = r < rows;
    const float *xr = x + (live ? r : 0) * c;
    double lse = ct__softmax_row(xr, probs + (live ? r : 0) * c, c, live, sh);
    if (!live || threadIdx.x != 0) continue;
    int32_t tt = t[r];
    if (tt < 0 || tt >= c) {
      ct__record(err, node, op, 1, r, tt, c);
      continue;
    }
    double d = (double)xr[tt] - lse;
    acc -= d < log_floor ? log_floor : d; /* NaN passes the clamp */
  }
  double s = ct__block_sum(acc, sh);
  if (threadIdx.x == 0 && threadIdx.y == 0) partials[blockIdx.x] = s;
}

/* One row group per row: scale * (probs - onehot), or zeros on a clamped row. */
__global__ void ct__k_softmax_xent_rev(const float *probs, const int32_t *t, const float *dloss,
                                       float *dx, int64_t rows, int64_t c) {
  const double scale = (double)dloss[0] / (double)rows;
  CT__ROW_PASSES(base, rows) {
    const int64_t r = base + threadIdx.y;
    if (r >= rows) continue;
    const float *pr = probs + r * c;
    int32_t tt = t[r];
    /* A row whose target probability is clamped has a constant loss: zero gradient. */
    bool zero = tt < 0 || tt >= c || (double)pr[tt] <= CT__P_FLOOR;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
      double g = zero ? 0.0 : (double)pr[j] - (j == tt ? 1.0 : 0.0);
      dx[r * c + j] = (float)(scale * g);
    }
  }
}

/* ---- launch functions ----------------------------------------------------------- */

extern "C" cudaError_t ct__cu_fill(float *x, float value, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  ct__k_fill<<<ct__blocks(n, CT__THREADS, CT__MAX_BLOCKS), CT__THREADS, 0, s>>>(x, value, n);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_add(const float *x, const float *y, float *z, int64_t n,
                                  cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  ct__k_add<<<ct__blocks(n, CT__THREADS, CT__MAX_BLOCKS), CT__THREADS, 0, s>>>(x, y, z, n);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_sgd(float *p, const float *g, float lr, int64_t n,
                                  const ct__cu_errrec *err, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  ct__k_sgd<<<ct__blocks(n, CT__THREADS, CT__MAX_BLOCKS), CT__THREADS, 0, s>>>(p, g, lr, n, err);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_embedding_fwd(const int32_t *ids, const float *table, float *y,
                                            int64_t n, int64_t vocab, int64_t width,
                                            ct__cu_errrec *err, int node, int op,
                                            cudaStream_t s) {
  if (n <= 0 || width <= 0) return cudaSuccess;
  dim3 b = ct__row_block(width);
  ct__k_embedding_fwd<<<ct__blocks(n, b.y, CT__MAX_BLOCKS), b, 0, s>>>(ids, table, y, n, vocab,
                                                                        width, err, node, op);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_embedding_rev(const int32_t *ids, const float *dy, float *dtable,
                                            int64_t n, int64_t vocab, int64_t width,
                                            cudaStream_t s) {
  if (n <= 0 || width <= 0 || vocab <= 0) return cudaSuccess;
  /* Enough vocabulary partitions for about 32k threads, a multiple of 8, at
   * most one per vocabulary row (rounded up to 8) and 8 * 65535 in all. */
  int64_t tiles = (width + 31) / 32, per_part = 32 * tiles;
  int64_t parts = (32768 + per_part - 1) / per_part;
  int64_t vocab8 = (vocab + 7) / 8 * 8;
  if (parts > vocab8) parts = vocab8;
  parts = (parts + 7) / 8 * 8;
  if (parts > (int64_t)8 * 65535) parts = (int64_t)8 * 65535;
  int64_t chunk = (vocab + parts - 1) / parts;
  dim3 grid(ct__blocks(tiles, 1, 0x7fffffff), (unsigned)(parts / 8));
  ct__k_embedding_rev<<<grid, dim3(32, 8), 0, s>>>(ids, dy, dtable, n, vocab, width, chunk);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_bias_rows(const float *b, float *y, int64_t rows, int64_t m,
                                        cudaStream_t s) {
  if (rows <= 0 || m <= 0) return cudaSuccess;
  dim3 bl = ct__row_block(m);
  ct__k_bias_rows<<<ct__blocks(rows, bl.y, CT__MAX_BLOCKS), bl, 0, s>>>(b, y, rows, m);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_softmax_fwd(const float *x, float *y, int64_t rows, int64_t c,
                                          cudaStream_t s) {
  if (rows <= 0 || c <= 0) return cudaSuccess;
  dim3 b = ct__row_block(c);
  ct__k_softmax_fwd<<<ct__blocks(rows, b.y, CT__MAX_BLOCKS), b, 0, s>>>(x, y, rows, c);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_softmax_rev(const float *y, const float *dy, float *dx, int64_t rows,
                                          int64_t c, cudaStream_t s) {
  if (rows <= 0 || c <= 0) return cudaSuccess;
  dim3 b = ct__row_block(c);
  ct__k_softmax_rev<<<ct__blocks(rows, b.y, CT__MAX_BLOCKS), b, 0, s>>>(y, dy, dx, rows, c);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_xent_fwd(const float *p, const int32_t *t, float *loss,
                                       double *partials, int64_t rows, int64_t c,
                                       ct__cu_errrec *err, int node, int op, cudaStream_t s) {
  if (rows <= 0 || c <= 0) return cudaSuccess;
  unsigned g = ct__blocks(rows, CT__THREADS, CT__CU_PARTIALS);
  ct__k_xent_fwd<<<g, CT__THREADS, 0, s>>>(p, t, partials, rows, c, err, node, op);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  ct__k_mean<<<1, CT__THREADS, 0, s>>>(partials, (int)g, rows, loss);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_xent_rev(const float *p, const int32_t *t, const float *dloss,
                                       float *dp, int64_t rows, int64_t c, cudaStream_t s) {
  if (rows <= 0 || c <= 0) return cudaSuccess;
  dim3 b = ct__row_block(c);
  ct__k_xent_rev<<<ct__blocks(rows, b.y, CT__MAX_BLOCKS), b, 0, s>>>(p, t, dloss, dp, rows, c);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_softmax_xent_fwd(const float *x, const int32_t *t, float *probs,
                                               float *loss, double *partials, int64_t rows,
                                               int64_t c, ct__cu_errrec *err, int node, int op,
                                               cudaStream_t s) {
  if (rows <= 0 || c <= 0) return cudaSuccess;
  dim3 b = ct__row_block(c);
  unsigned g = ct__blocks(rows, b.y, CT__CU_PARTIALS);
  ct__k_softmax_xent_fwd<<<g, b, 0, s>>>(x, t, probs, partials, rows, c, err, node, op);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  ct__k_mean<<<1, CT__THREADS, 0, s>>>(partials, (int)g, rows, loss);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_softmax_xent_rev(const float *probs, const int32_t *t,
                                               const float *dloss, float *dx, int64_t rows,
                                               int64_t c, cudaStream_t s) {
  if (rows <= 0 || c <= 0) return cudaSuccess;
  dim3 b = ct__row_block(c);
  ct__k_softmax_xent_rev<<<ct__blocks(rows, b.y, CT__MAX_BLOCKS), b, 0, s>>>(probs, t, dloss, dx,
                                                                              rows, c);
  return cudaGetLastError();
}

/* Loads every kernel now, so that none is first loaded inside a graph capture
 * (drivers before CUDA 12.3 cannot load modules lazily while capturing). */
extern "C" cudaError_t ct__cu_preload(void) {
  cudaFuncAttributes a;
  const void *k[] = {
      (const void *)ct__k_fill,          (const void *)ct__k_add,
      (const void *)ct__k_sgd,           (const void *)ct__k_embedding_fwd,
      (const void *)ct__k_embedding_rev, (const void *)ct__k_bias_rows,
      (const void *)ct__k_softmax_fwd,   (const void *)ct__k_softmax_rev,
      (const void *)ct__k_xent_fwd,      (const void *)ct__k_mean,
      (const void *)ct__k_xent_rev,      (const void *)ct__k_softmax_xent_fwd,
      (const void *)ct__k_softmax_xent_rev};
  for (unsigned i = 0; i < sizeof k / sizeof k[0]; i++) {
    cudaError_t e = cudaFuncGetAttributes(&a, k[i]);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}
