/* SPDX-License-Identifier: MIT */
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
/* Grid cap for grid-stride loops (grid x allows 2^31 - 1); tests/cudasim
 * lowers it to make every grid-stride loop take several passes. */
#ifndef CT__MAX_BLOCKS
#define CT__MAX_BLOCKS ((int64_t)1 << 20)
#endif
/* Grid of the partial-sum reductions (one partial per block, grid-stride). */
#define CT__PARTIAL_BLOCKS \
  (CT__CU_PARTIALS < CT__MAX_BLOCKS ? (int64_t)CT__CU_PARTIALS : CT__MAX_BLOCKS)
/* CT__CU_LAUNCH(kernel, grid, block, stream)(args): the one spelling of a
 * launch (tests/cudasim defines its own to run kernels on the CPU). */
#ifndef CT__CU_LAUNCH
#define CT__CU_LAUNCH(kernel, grid, block, stream) kernel<<<(grid), (block), 0, (stream)>>>
#endif

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

/* ---- sequence generators ----------------------------------------------------- */

#define CT__LN_EPS 1e-5
#define CT__GELU_C 0.7978845608028654 /* sqrt(2 / pi) */
#define CT__GELU_A 0.044715
/* Column kernels: block (32 columns, 8 lanes); lane y sums rows y, y + 8, ... */
#define CT__COL_X 32
#define CT__COL_Y 8
/* Layer norm's parameter gradients: rows in at most CT__LN_CHUNKS chunks of at
 * least CT__LN_CHUNK_ROWS rows, summed apart, then the chunks in order. */
#define CT__LN_CHUNK_ROWS 32
#define CT__LN_CHUNKS 64

/* y[b, t, c] = x[b, t, c] + P[t, c]. */
__global__ void ct__k_pos_embedding_fwd(const float *x, const float *P, float *y, int64_t n,
                                        int64_t T, int64_t C) {
  CT__FOR_ELEMS(i, n) {
    int64_t t = (i / C) % T, c = i % C;
    y[i] = x[i] + P[t * C + c];
  }
}

/* dP[t, c] += sum over b of dy[b, t, c], b in increasing order; one thread per (t, c). */
__global__ void ct__k_pos_embedding_rev(const float *dy, float *dP, int64_t B, int64_t T,
                                        int64_t C) {
  CT__FOR_ELEMS(i, T * C) {
    double acc = 0.0;
    for (int64_t b = 0; b < B; b++) acc += (double)dy[b * T * C + i];
    dP[i] = (float)((double)dP[i] + acc);
  }
}

/* Mean and 1 / sqrt(biased variance + eps) of row xr (n entries) for the row
 * group, in double; every thread of the block must call it. */
__device__ void ct__ln_stats(const float *xr, int64_t n, bool live, double *sh, double *mean,
                             double *rstd) {
  double s = 0.0;
  if (live)
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += (double)xr[j];
  const double m = ct__row_reduce<false>(s, sh) / (double)n;
  double v = 0.0;
  if (live)
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      double d = (double)xr[j] - m;
      v += d * d;
    }
  v = ct__row_reduce<false>(v, sh) / (double)n;
  *mean = m;
  *rstd = 1.0 / sqrt(v + CT__LN_EPS);
}

/* One normalised entry: (v - mean) * rstd * g + b, in double. */
__device__ float ct__ln_out(float v, double mean, double rstd, float g, float b) {
  return (float)(((double)v - mean) * rstd * (double)g + (double)b);
}

/* One row group per row: statistics into saved (mean[rows] then rstd[rows]) and
 * y = (x - mean) * rstd * g + b. */
__global__ void ct__k_layernorm_fwd(const float *x, const float *g, const float *b, float *y,
                                    float *saved, int64_t rows, int64_t n) {
  __shared__ double sh[CT__THREADS];
  CT__ROW_PASSES(base, rows) {
    const int64_t r = base + threadIdx.y;
    bool live = r < rows;
    const int64_t o = (live ? r : 0) * n;
    double mean, rstd;
    ct__ln_stats(x + o, n, live, sh, &mean, &rstd);
    if (!live) continue;
    if (threadIdx.x == 0) {
      saved[r] = (float)mean;
      saved[rows + r] = (float)rstd;
    }
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
      y[o + j] = ct__ln_out(x[o + j], mean, rstd, g[j], b[j]);
  }
}

/* One row group per row: s = x + r written, then layer norm of s as
 * ct__k_layernorm_fwd (each thread reads back the entries of s it wrote). */
__global__ void ct__k_add_layernorm_fwd(const float *x, const float *r, const float *g,
                                        const float *b, float *s, float *y, float *saved,
                                        int64_t rows, int64_t n) {
  __shared__ double sh[CT__THREADS];
  CT__ROW_PASSES(base, rows) {
    const int64_t row = base + threadIdx.y;
    bool live = row < rows;
    const int64_t o = (live ? row : 0) * n;
    if (live)
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s[o + j] = x[o + j] + r[o + j];
    double mean, rstd;
    ct__ln_stats(s + o, n, live, sh, &mean, &rstd);
    if (!live) continue;
    if (threadIdx.x == 0) {
      saved[row] = (float)mean;
      saved[rows + row] = (float)rstd;
    }
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
      y[o + j] = ct__ln_out(s[o + j], mean, rstd, g[j], b[j]);
  }
}

/* The layer norm cotangent of the row at offset o of x for the row group,
 * statistics recomputed from x in double: v = ds + rstd * (dxhat - mean(dxhat) -
 * xhat * mean(dxhat * xhat)), dxhat = dy * g (no ds: 0), written to dx and to dr
 * where not NULL; every thread of the block must call it. */
__device__ void ct__ln_rev_row(const float *x, const float *g, const float *dy, const float *ds,
                               float *dx, float *dr, int64_t o, int64_t n, bool live,
                               double *sh) {
  double mean, rstd;
  ct__ln_stats(x + o, n, live, sh, &mean, &rstd);
  double a1 = 0.0, a2 = 0.0;
  if (live)
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      double xhat = ((double)x[o + j] - mean) * rstd, dxhat = (double)dy[o + j] * (double)g[j];
      a1 += dxhat;
      a2 += dxhat * xhat;
    }
  const double s1 = ct__row_reduce<false>(a1, sh) / (double)n;
  const double s2 = ct__row_reduce<false>(a2, sh) / (double)n;
  if (!live) return;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    double xhat = ((double)x[o + j] - mean) * rstd, dxhat = (double)dy[o + j] * (double)g[j];
    double v = rstd * (dxhat - s1 - xhat * s2);
    if (ds) v += (double)ds[o + j];
    if (dx) dx[o + j] = (float)v;
    if (dr) dr[o + j] = (float)v;
  }
}

/* One row group per row: dx of layer norm (ct__ln_rev_row). */
__global__ void ct__k_layernorm_rev_dx(const float *x, const float *g, const float *dy, float *dx,
                                       int64_t rows, int64_t n) {
  __shared__ double sh[CT__THREADS];
  CT__ROW_PASSES(base, rows) {
    const int64_t r = base + threadIdx.y;
    bool live = r < rows;
    ct__ln_rev_row(x, g, dy, NULL, dx, NULL, (live ? r : 0) * n, n, live, sh);
  }
}

/* One row group per row: dx = dr = ds + layer norm's dx at s (ct__ln_rev_row). */
__global__ void ct__k_add_layernorm_rev(const float *s, const float *g, const float *ds,
                                        const float *dy, float *dx, float *dr, int64_t rows,
                                        int64_t n) {
  __shared__ double sh[CT__THREADS];
  CT__ROW_PASSES(base, rows) {
    const int64_t r = base + threadIdx.y;
    bool live = r < rows;
    ct__ln_rev_row(s, g, dy, ds, dx, dr, (live ? r : 0) * n, n, live, sh);
  }
}

/* Layer norm's parameter gradients, first pass: block (CT__COL_X, CT__COL_Y) per
 * (tile of CT__COL_X columns, chunk of chunk_rows rows) over columns [c0, c0 + nc);
 * lane y sums the chunk's rows y, y + CT__COL_Y, ... in order, then lane 0 adds the
 * lanes in order and writes the chunk's sums of dy * xhat to part[2 chunk nc + j]
 * and of dy to part[(2 chunk + 1) nc + j] (j counted from c0). xhat comes from the
 * saved float statistics. The chunks depend on rows alone, so the sums do not
 * depend on the grid. */
__global__ void ct__k_layernorm_rev_params(const float *x, const float *dy, const float *saved,
                                           double *part, int64_t rows, int64_t n, int64_t c0,
                                           int64_t nc, int64_t chunk_rows, int64_t chunks) {
  __shared__ double shg[CT__COL_Y][CT__COL_X], shb[CT__COL_Y][CT__COL_X];
  const int64_t tiles = (nc + CT__COL_X - 1) / CT__COL_X;
  for (int64_t w = blockIdx.x; w < tiles * chunks; w += gridDim.x) {
    const int64_t tile = w % tiles, chunk = w / tiles;
    const int64_t j = tile * CT__COL_X + threadIdx.x;
    const int64_t end = (chunk + 1) * chunk_rows < rows ? (chunk + 1) * chunk_rows : rows;
    double ag = 0.0, ab = 0.0;
    if (j < nc)
      for (int64_t r = chunk * chunk_rows + threadIdx.y; r < end; r += CT__COL_Y) {
        double d = (double)dy[r * n + c0 + j];
        ag += d * (((double)x[r * n + c0 + j] - (double)saved[r]) * (double)saved[rows + r]);
        ab += d;
      }
    shg[threadIdx.y][threadIdx.x] = ag;
    shb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && j < nc) {
      double sg = 0.0, sb = 0.0;
      for (int k = 0; k < CT__COL_Y; k++) {
        sg += shg[k][threadIdx.x];
        sb += shb[k][threadIdx.x];
      }
      part[2 * chunk * nc + j] = sg;
      part[(2 * chunk + 1) * nc + j] = sb;
    }
    __syncthreads();
  }
}

/* Second pass, one thread per column: dg[j] += the chunks' sums of dy * xhat and
 * db[j] += their sums of dy, chunks in order; either may be NULL. */
__global__ void ct__k_layernorm_rev_params_sum(const double *part, float *dg, float *db,
                                               int64_t nc, int64_t chunks) {
  CT__FOR_ELEMS(j, nc) {
    double sg = 0.0, sb = 0.0;
    for (int64_t k = 0; k < chunks; k++) {
      sg += part[2 * k * nc + j];
      sb += part[(2 * k + 1) * nc + j];
    }
    if (dg) dg[j] = (float)((double)dg[j] + sg);
    if (db) db[j] = (float)((double)db[j] + sb);
  }
}

/* gelu(v) = v/2 (1 + tanh(c (v + a v^3))), in double. */
__device__ float ct__gelu(double v) {
  return (float)(0.5 * v * (1.0 + tanh(CT__GELU_C * (v + CT__GELU_A * v * v * v))));
}

/* dy * gelu'(v), in double. */
__device__ float ct__gelu_grad(double v, double dy) {
  double th = tanh(CT__GELU_C * (v + CT__GELU_A * v * v * v));
  double d = 0.5 * (1.0 + th) +
             0.5 * v * (1.0 - th * th) * CT__GELU_C * (1.0 + 3.0 * CT__GELU_A * v * v);
  return (float)(dy * d);
}

__global__ void ct__k_gelu_fwd(const float *x, float *y, int64_t n) {
  CT__FOR_ELEMS(i, n) y[i] = ct__gelu(x[i]);
}

/* dx = dy * gelu'(x). */
__global__ void ct__k_gelu_rev(const float *x, const float *dy, float *dx, int64_t n) {
  CT__FOR_ELEMS(i, n) dx[i] = ct__gelu_grad(x[i], dy[i]);
}

/* qkv's forward before its batched product: ptrs[0..9) = (Wq, Wk, Wv, x, x, x, q, k, v)
 * (the arrays cublasSgemmBatched reads), then, when b0 is not NULL, every row of each
 * output j (n = rows m entries) set to bias j. Element i < 9 is a pointer, the rest
 * are output entries. */
__global__ void ct__k_qkv_prep(const float **ptrs, const float *x, const float *w0,
                               const float *w1, const float *w2, float *o0, float *o1, float *o2,
                               const float *b0, const float *b1, const float *b2, int64_t n,
                               int64_t m) {
  CT__FOR_ELEMS(i, 9 + (b0 ? 3 * n : 0)) {
    if (i < 9) {
      ptrs[i] = i < 3 ? (i == 0 ? w0 : i == 1 ? w1 : w2)
                : i < 6 ? x : (i == 6 ? o0 : i == 7 ? o1 : o2);
      continue;
    }
    int64_t e = i - 9, j = e / n;
    e -= j * n;
    float *o = j == 0 ? o0 : j == 1 ? o1 : o2;
    const float *b = j == 0 ? b0 : j == 1 ? b1 : b2;
    o[e] = b[e % m];
  }
}

/* u[rows, m] += b (b may be NULL; u keeps the pre-activation), y = gelu(u). */
__global__ void ct__k_bias_gelu(float *u, const float *b, float *y, int64_t n, int64_t m) {
  CT__FOR_ELEMS(i, n) {
    float v = u[i];
    if (b) {
      v += b[i % m];
      u[i] = v;
    }
    y[i] = ct__gelu(v);
  }
}

/* One thread per element of y HEADS [B,H,T,D]: y[b,h,t,d] = x[b,t,h*D+d]. */
__global__ void ct__k_head_split(const float *x, float *y, int64_t n, int64_t H, int64_t T,
                                 int64_t D) {
  CT__FOR_ELEMS(i, n) {
    int64_t d = i % D, t = (i / D) % T, h = (i / (D * T)) % H, b = i / (D * T * H);
    y[i] = x[((b * T + t) * H + h) * D + d];
  }
}

/* One thread per element of y SEQ [B,T,H*D]: y[b,t,h*D+d] = x[b,h,t,d]. */
__global__ void ct__k_head_merge(const float *x, float *y, int64_t n, int64_t H, int64_t T,
                                 int64_t D) {
  CT__FOR_ELEMS(i, n) {
    int64_t d = i % D, h = (i / D) % H, t = (i / (D * H)) % T, b = i / (D * H * T);
    y[i] = x[((b * H + h) * T + t) * D + d];
  }
}

/* dst = src over batches of T x T matrices with entries j > i set to 0 (in place allowed). */
__global__ void ct__k_causal_mask(const float *src, float *dst, int64_t n, int64_t T) {
  CT__FOR_ELEMS(k, n) {
    int64_t j = k % T, i = (k / T) % T;
    dst[k] = j <= i ? src[k] : 0.0f;
  }
}

/* One row group per row r of x[rows, T]: softmax over entries j <= r % T, 0 beyond. */
__global__ void ct__k_causal_softmax_fwd(const float *x, float *y, int64_t rows, int64_t T) {
  __shared__ double sh[CT__THREADS];
  CT__ROW_PASSES(base, rows) {
    const int64_t r = base + threadIdx.y;
    bool live = r < rows;
    const int64_t o = (live ? r : 0) * T, len = (live ? r : 0) % T + 1;
    float mx;
    double sum;
    ct__softmax_stats(x + o, len, live, sh, &mx, &sum);
    if (!live) continue;
    double inv = 1.0 / sum;
    for (int64_t j = threadIdx.x; j < T; j += blockDim.x)
      y[o + j] = j < len ? (float)((double)expf(x[o + j] - mx) * inv) : 0.0f;
  }
}

/* One row group per row: dot = sum over j <= r % T of dy * y; dx = y (dy - dot)
 * there, 0 beyond. */
__global__ void ct__k_causal_softmax_rev(const float *y, const float *dy, float *dx, int64_t rows,
                                         int64_t T) {
  __shared__ double sh[CT__THREADS];
  CT__ROW_PASSES(base, rows) {
    const int64_t r = base + threadIdx.y;
    bool live = r < rows;
    const int64_t o = (live ? r : 0) * T, len = (live ? r : 0) % T + 1;
    double d = 0.0;
    if (live)
      for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
        d += (double)dy[o + j] * (double)y[o + j];
    double dot = ct__row_reduce<false>(d, sh);
    if (!live) continue;
    for (int64_t j = threadIdx.x; j < T; j += blockDim.x)
      dx[o + j] = j < len ? (float)((double)y[o + j] * ((double)dy[o + j] - dot)) : 0.0f;
  }
}

/* ---- causal_attention ------------------------------------------------------------- */

/* Fused causal attention on SEQ [B,T,C] q, k, v with H heads of width D = C/H,
 * FlashAttention style: scores are recomputed tile by tile, never stored.
 * A block owns CT__AT_TILE rows of one (batch, head): query rows (forward, dq)
 * or key rows (dk, dv). It streams tiles of CT__AT_TILE rows of the other side
 * through shared memory. Warp w owns rows w * CT__AT_RW ..; in the score phase
 * lane j takes streamed row j, so row statistics are warp reductions. D is
 * staged in chunks of DC entries (float4, each row padded by one float4 so that
 * lane-strided reads are free of bank conflicts); entries past D and rows past
 * T are staged as zeros, so nothing outside q, k, v, dy, y is read. In the
 * accumulation phase the lanes of a warp form 128 / DC groups: group g owns
 * DC / 16 of the warp's rows and lane q of it owns entries 4q .. 4q + 3 of each
 * chunk. NC > 0: the D <= NC * DC accumulators of a row stay in registers;
 * NC = 1 means D <= DC, and the owned rows are staged once per block item.
 * NC = 0: any D; the accumulators live in the output rows in global memory,
 * each entry read back only by the thread that wrote it. Every sum runs in a
 * fixed order, so results do not depend on the schedule; products are fused
 * (fmaf) where nvcc would contract them, so cudasim rounds as the GPU does. */
#define CT__AT_WARPS 4
#define CT__AT_THREADS (32 * CT__AT_WARPS)
#define CT__AT_RW 8                             /* rows per warp */
#define CT__AT_TILE (CT__AT_WARPS * CT__AT_RW) /* owned rows per block = streamed rows per tile */

#ifdef __CUDACC__
#define CT__UNROLL _Pragma("unroll")
#else
#define CT__UNROLL
#endif

/* Shapes of one launch: items = B * H * ntiles blocks of work. */
struct ct__at_geo {
  int64_t B, T, H, D, C, ntiles, items;
  float scale;
};

/* A warp's weights for one of its rows against the 32 streamed rows of a tile. */
union ct__at_wrow {
  float4 v[CT__AT_TILE / 4];
  float f[CT__AT_TILE];
};

__device__ float ct__warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* Butterfly sum: every lane gets the same bits (each step adds the same pair). */
__device__ float ct__warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/* The block stages rows row0 .. row0 + CT__AT_TILE - 1 (row t at base + t * C),
 * entries d0 .. d0 + DC - 1, into dst; rows >= T and entries >= D as zeros. */
template <int DC>
__device__ void ct__at_stage(float4 (*dst)[DC / 4 + 1], const float *base, int64_t C,
                             int64_t row0, int64_t T, int64_t d0, int64_t D) {
  for (int i = threadIdx.x; i < CT__AT_TILE * (DC / 4); i += CT__AT_THREADS) {
    const int r = i / (DC / 4), c = i % (DC / 4);
    const int64_t t = row0 + r, d = d0 + 4 * c;
    float e[4];
    CT__UNROLL
    for (int u = 0; u < 4; u++) e[u] = t < T && d + u < D ? base[t * C + d + u] : 0.0f;
    float4 x;
    x.x = e[0];
    x.y = e[1];
    x.z = e[2];
    x.w = e[3];
    dst[r][c] = x;
  }
}

/* s[r] += a[w * CT__AT_RW + r] . b[lane] over one staged chunk. */
template <int DC>
__device__ void ct__at_dots(float (&s)[CT__AT_RW], const float4 (*a)[DC / 4 + 1],
                            const float4 (*b)[DC / 4 + 1], int w, int lane) {
  for (int c = 0; c < DC / 4; c++) {
    const float4 y = b[lane][c];
    CT__UNROLL
    for (int r = 0; r < CT__AT_RW; r++) {
      const float4 x = a[w * CT__AT_RW + r][c];
      s[r] = fmaf(x.x, y.x, s[r]);
      s[r] = fmaf(x.y, y.y, s[r]);
      s[r] = fmaf(x.z, y.z, s[r]);
      s[r] = fmaf(x.w, y.w, s[r]);
    }
  }
}

__device__ void ct__at_axpy(float (&acc)[4], float a, float4 b) {
  acc[0] = fmaf(a, b.x, acc[0]);
  acc[1] = fmaf(a, b.y, acc[1]);
  acc[2] = fmaf(a, b.z, acc[2]);
  acc[3] = fmaf(a, b.w, acc[3]);
}

/* acc[i] += sum over streamed rows j (in order) of wr[g * DC/16 + i].f[j] * b[j]
 * at this lane's four entries of the chunk (group g = lane / (DC / 4)). */
template <int DC>
__device__ void ct__at_accum(float (&acc)[DC / 16][4], const float4 (*b)[DC / 4 + 1],
                             const ct__at_wrow *wr, int lane) {
  constexpr int SL = DC / 4, RPG = DC / 16;
  const ct__at_wrow *mine = wr + (lane / SL) * RPG;
  const int c = lane % SL;
  for (int j4 = 0; j4 < CT__AT_TILE / 4; j4++) {
    const float4 b0 = b[4 * j4][c], b1 = b[4 * j4 + 1][c], b2 = b[4 * j4 + 2][c],
                 b3 = b[4 * j4 + 3][c];
    CT__UNROLL
    for (int i = 0; i < RPG; i++) {
      const float4 wv = mine[i].v[j4];
      ct__at_axpy(acc[i], wv.x, b0);
      ct__at_axpy(acc[i], wv.y, b1);
      ct__at_axpy(acc[i], wv.z, b2);
      ct__at_axpy(acc[i], wv.w, b3);
    }
  }
}

/* This lane's accumulators of the chunk at d0 for its rows of the warp's rows
 * row0 ..: out (row t at t * C), times scale[i] unless scale is NULL; zeros
 * when keep is false. */
template <int DC>
__device__ void ct__at_load(float (&acc)[DC / 16][4], const float *out, int64_t C, int64_t row0,
                            int64_t T, int64_t d0, int64_t D, bool keep, const float *scale,
                            int lane) {
  constexpr int SL = DC / 4, RPG = DC / 16;
  const int64_t t0 = row0 + (lane / SL) * RPG, d = d0 + 4 * (lane % SL);
  CT__UNROLL
  for (int i = 0; i < RPG; i++)
    CT__UNROLL
    for (int u = 0; u < 4; u++)
      acc[i][u] = keep && t0 + i < T && d + u < D
                      ? (scale ? out[(t0 + i) * C + d + u] * scale[i] : out[(t0 + i) * C + d + u])
                      : 0.0f;
}

/* Stores this lane's accumulators of the chunk at d0, times scale[i] unless
 * scale is NULL, at the entries inside T rows and D columns. */
template <int DC>
__device__ void ct__at_store(const float (&acc)[DC / 16][4], float *out, int64_t C, int64_t row0,
                             int64_t T, int64_t d0, int64_t D, const float *scale, int lane) {
  constexpr int SL = DC / 4, RPG = DC / 16;
  const int64_t t0 = row0 + (lane / SL) * RPG, d = d0 + 4 * (lane % SL);
  CT__UNROLL
  for (int i = 0; i < RPG; i++)
    CT__UNROLL
    for (int u = 0; u < 4; u++)
      if (t0 + i < T && d + u < D) out[(t0 + i) * C + d + u] = scale ? acc[i][u] * scale[i] : acc[i][u];
}

/* The owned tile of work item it: heavy tiles (most streamed tiles) first. */
__device__ int64_t ct__at_tile(const ct__at_geo &g, int64_t it, bool keys) {
  const int64_t rank = it / (g.B * g.H);
  return (keys ? rank : g.ntiles - 1 - rank) * CT__AT_TILE;
}

/* Offset of (batch, head) bh = b * H + h in q, k, v, y, dy. */
__device__ int64_t ct__at_offset(const ct__at_geo &g, int64_t bh) {
  return (bh / g.H) * g.T * g.C + (bh % g.H) * g.D;
}

/* Forward. Per query row t: online softmax over key tiles (running max m, and a
 * per-lane running sum l rescaled by exp(m_old - m_new)); y = acc / l and
 * lse[(b*H + h)*T + t] = m + log l. */
template <int DC, int NC>
__global__ void __launch_bounds__(CT__AT_THREADS, 2)
    ct__k_attn_fwd(const float *q, const float *k, const float *v, float *y, float *lse,
                   ct__at_geo g) {
  constexpr int SL = DC / 4, RPG = DC / 16, NA = NC > 0 ? NC : 1;
  __shared__ float4 sq[CT__AT_TILE][SL + 1], sk[CT__AT_TILE][SL + 1], sv[CT__AT_TILE][SL + 1];
  __shared__ ct__at_wrow sw[CT__AT_WARPS][CT__AT_RW];
  __shared__ float sa[CT__AT_WARPS][CT__AT_RW]; /* per row: rescale, then 1 / l */
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float *mysa = &sa[w][(lane / SL) * RPG];
  for (int64_t it = blockIdx.x; it < g.items; it += gridDim.x) {
    const int64_t bh = it % (g.B * g.H), t0 = ct__at_tile(g, it, false), off = ct__at_offset(g, bh);
    const int64_t mine = t0 + w * CT__AT_RW; /* this warp's first row */
    const float *qb = q + off, *kb = k + off, *vb = v + off;
    float *yb = y + off;
    float m[CT__AT_RW], l[CT__AT_RW], acc[NA][RPG][4];
    CT__UNROLL
    for (int r = 0; r < CT__AT_RW; r++) m[r] = -INFINITY, l[r] = 0.0f;
    CT__UNROLL
    for (int c = 0; c < NA; c++)
      CT__UNROLL
      for (int i = 0; i < RPG; i++)
        CT__UNROLL
        for (int u = 0; u < 4; u++) acc[c][i][u] = 0.0f;
    __syncthreads();
    if (NC == 1) ct__at_stage<DC>(sq, qb, g.C, t0, g.T, 0, g.D);
    for (int64_t s0 = 0; s0 < g.T && s0 < t0 + CT__AT_TILE; s0 += CT__AT_TILE) {
      float s[CT__AT_RW];
      CT__UNROLL
      for (int r = 0; r < CT__AT_RW; r++) s[r] = 0.0f;
      for (int64_t d0 = 0; d0 < g.D; d0 += DC) {
        __syncthreads();
        if (NC != 1) ct__at_stage<DC>(sq, qb, g.C, t0, g.T, d0, g.D);
        ct__at_stage<DC>(sk, kb, g.C, s0, g.T, d0, g.D);
        if (NC == 1) ct__at_stage<DC>(sv, vb, g.C, s0, g.T, 0, g.D);
        __syncthreads();
        ct__at_dots<DC>(s, sq, sk, w, lane);
      }
      CT__UNROLL
      for (int r = 0; r < CT__AT_RW; r++) {
        const bool valid = mine + r < g.T && s0 + lane <= mine + r;
        const float x = valid ? s[r] * g.scale : -INFINITY;
        const float mn = fmaxf(m[r], ct__warp_max(x));
        const float alpha = mn == -INFINITY ? 1.0f : expf(m[r] - mn);
        const float p = valid ? expf(x - mn) : 0.0f;
        l[r] = fmaf(l[r], alpha, p);
        m[r] = mn;
        sw[w][r].f[lane] = p;
        if (lane == 0) sa[w][r] = alpha;
      }
      __syncwarp();
      if (NC > 0) {
        CT__UNROLL
        for (int c = 0; c < NA; c++) {
          if (NC != 1) {
            __syncthreads();
            ct__at_stage<DC>(sv, vb, g.C, s0, g.T, c * DC, g.D);
            __syncthreads();
          }
          CT__UNROLL
          for (int i = 0; i < RPG; i++)
            CT__UNROLL
            for (int u = 0; u < 4; u++) acc[c][i][u] *= mysa[i];
          ct__at_accum<DC>(acc[c], sv, sw[w], lane);
        }
      } else {
        for (int64_t d0 = 0; d0 < g.D; d0 += DC) {
          __syncthreads();
          ct__at_stage<DC>(sv, vb, g.C, s0, g.T, d0, g.D);
          __syncthreads();
          ct__at_load<DC>(acc[0], yb, g.C, mine, g.T, d0, g.D, s0 > 0, mysa, lane);
          ct__at_accum<DC>(acc[0], sv, sw[w], lane);
          ct__at_store<DC>(acc[0], yb, g.C, mine, g.T, d0, g.D, NULL, lane);
        }
      }
    }
    __syncwarp();
    CT__UNROLL
    for (int r = 0; r < CT__AT_RW; r++) {
      const float lt = ct__warp_sum(l[r]);
      if (lane == 0) {
        sa[w][r] = lt > 0.0f ? 1.0f / lt : 0.0f;
        if (mine + r < g.T) lse[bh * g.T + mine + r] = m[r] + logf(lt);
      }
    }
    __syncwarp();
    if (NC > 0) {
      CT__UNROLL
      for (int c = 0; c < NA; c++)
        ct__at_store<DC>(acc[c], yb, g.C, mine, g.T, c * DC, g.D, mysa, lane);
    } else {
      for (int64_t d0 = 0; d0 < g.D; d0 += DC) {
        ct__at_load<DC>(acc[0], yb, g.C, mine, g.T, d0, g.D, true, mysa, lane);
        ct__at_store<DC>(acc[0], yb, g.C, mine, g.T, d0, g.D, NULL, lane);
      }
    }
  }
}

/* dq per query row t: dq[t] = scale * sum over s <= t of P[t,s] (dy[t].v[s] -
 * Dsum[t]) k[s], with P = exp(scale q[t].k[s] - lse[t]) recomputed per key tile. */
template <int DC, int NC>
__global__ void __launch_bounds__(CT__AT_THREADS, 2)
    ct__k_attn_dq(const float *q, const float *k, const float *v, const float *dy,
                  const float *lse, const float *dsum, float *dq, ct__at_geo g) {
  constexpr int SL = DC / 4, RPG = DC / 16, NA = NC > 0 ? NC : 1;
  __shared__ float4 sq[CT__AT_TILE][SL + 1], sdy[CT__AT_TILE][SL + 1], sk[CT__AT_TILE][SL + 1],
      sv[CT__AT_TILE][SL + 1];
  __shared__ ct__at_wrow sw[CT__AT_WARPS][CT__AT_RW];
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t it = blockIdx.x; it < g.items; it += gridDim.x) {
    const int64_t bh = it % (g.B * g.H), t0 = ct__at_tile(g, it, false), off = ct__at_offset(g, bh);
    const int64_t mine = t0 + w * CT__AT_RW;
    const float *qb = q + off, *kb = k + off, *vb = v + off, *dyb = dy + off;
    float *dqb = dq + off;
    float L[CT__AT_RW], Ds[CT__AT_RW], acc[NA][RPG][4];
    CT__UNROLL
    for (int r = 0; r < CT__AT_RW; r++) {
      const bool live = mine + r < g.T;
      L[r] = live ? lse[bh * g.T + mine + r] : 0.0f;
      Ds[r] = live ? dsum[bh * g.T + mine + r] : 0.0f;
    }
    CT__UNROLL
    for (int c = 0; c < NA; c++)
      CT__UNROLL
      for (int i = 0; i < RPG; i++)
        CT__UNROLL
        for (int u = 0; u < 4; u++) acc[c][i][u] = 0.0f;
    __syncthreads();
    if (NC == 1) {
      ct__at_stage<DC>(sq, qb, g.C, t0, g.T, 0, g.D);
      ct__at_stage<DC>(sdy, dyb, g.C, t0, g.T, 0, g.D);
    }
    for (int64_t s0 = 0; s0 < g.T && s0 < t0 + CT__AT_TILE; s0 += CT__AT_TILE) {
      float s[CT__AT_RW], dp[CT__AT_RW];
      CT__UNROLL
      for (int r = 0; r < CT__AT_RW; r++) s[r] = dp[r] = 0.0f;
      for (int64_t d0 = 0; d0 < g.D; d0 += DC) {
        __syncthreads();
        if (NC != 1) {
          ct__at_stage<DC>(sq, qb, g.C, t0, g.T, d0, g.D);
          ct__at_stage<DC>(sdy, dyb, g.C, t0, g.T, d0, g.D);
        }
        ct__at_stage<DC>(sk, kb, g.C, s0, g.T, d0, g.D);
        ct__at_stage<DC>(sv, vb, g.C, s0, g.T, d0, g.D);
        __syncthreads();
        ct__at_dots<DC>(s, sq, sk, w, lane);
        ct__at_dots<DC>(dp, sdy, sv, w, lane);
      }
      CT__UNROLL
      for (int r = 0; r < CT__AT_RW; r++) {
        const bool valid = mine + r < g.T && s0 + lane <= mine + r;
        const float p = valid ? expf(fmaf(s[r], g.scale, -L[r])) : 0.0f;
        sw[w][r].f[lane] = valid ? p * (dp[r] - Ds[r]) * g.scale : 0.0f;
      }
      __syncwarp();
      if (NC > 0) {
        CT__UNROLL
        for (int c = 0; c < NA; c++) {
          if (NC != 1) {
            __syncthreads();
            ct__at_stage<DC>(sk, kb, g.C, s0, g.T, c * DC, g.D);
            __syncthreads();
          }
          ct__at_accum<DC>(acc[c], sk, sw[w], lane);
        }
      } else {
        for (int64_t d0 = 0; d0 < g.D; d0 += DC) {
          __syncthreads();
          ct__at_stage<DC>(sk, kb, g.C, s0, g.T, d0, g.D);
          __syncthreads();
          ct__at_load<DC>(acc[0], dqb, g.C, mine, g.T, d0, g.D, s0 > 0, NULL, lane);
          ct__at_accum<DC>(acc[0], sk, sw[w], lane);
          ct__at_store<DC>(acc[0], dqb, g.C, mine, g.T, d0, g.D, NULL, lane);
        }
      }
    }
    if (NC > 0) {
      CT__UNROLL
      for (int c = 0; c < NA; c++)
        ct__at_store<DC>(acc[c], dqb, g.C, mine, g.T, c * DC, g.D, NULL, lane);
    }
  }
}

/* dk and dv per key row s (either may be NULL): dv[s] = sum over t >= s of
 * P[t,s] dy[t]; dk[s] = scale * sum over t >= s of P[t,s] (dy[t].v[s] - Dsum[t])
 * q[t], with P recomputed per query tile. */
template <int DC, int NC>
__global__ void __launch_bounds__(CT__AT_THREADS, 2)
    ct__k_attn_dkv(const float *q, const float *k, const float *v, const float *dy,
                   const float *lse, const float *dsum, float *dk, float *dv, ct__at_geo g) {
  constexpr int SL = DC / 4, RPG = DC / 16, NA = NC > 0 ? NC : 1;
  __shared__ float4 sk[CT__AT_TILE][SL + 1], sv[CT__AT_TILE][SL + 1], sq[CT__AT_TILE][SL + 1],
      sdy[CT__AT_TILE][SL + 1];
  __shared__ ct__at_wrow sds[CT__AT_WARPS][CT__AT_RW], sp[CT__AT_WARPS][CT__AT_RW];
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t it = blockIdx.x; it < g.items; it += gridDim.x) {
    const int64_t bh = it % (g.B * g.H), s0 = ct__at_tile(g, it, true), off = ct__at_offset(g, bh);
    const int64_t mine = s0 + w * CT__AT_RW;
    const float *qb = q + off, *kb = k + off, *vb = v + off, *dyb = dy + off;
    float *dkb = dk ? dk + off : NULL, *dvb = dv ? dv + off : NULL;
    float ak[NA][RPG][4], av[NA][RPG][4];
    CT__UNROLL
    for (int c = 0; c < NA; c++)
      CT__UNROLL
      for (int i = 0; i < RPG; i++)
        CT__UNROLL
        for (int u = 0; u < 4; u++) ak[c][i][u] = av[c][i][u] = 0.0f;
    __syncthreads();
    if (NC == 1) {
      ct__at_stage<DC>(sk, kb, g.C, s0, g.T, 0, g.D);
      ct__at_stage<DC>(sv, vb, g.C, s0, g.T, 0, g.D);
    }
    for (int64_t t0 = s0; t0 < g.T; t0 += CT__AT_TILE) {
      const int64_t tj = t0 + lane;
      const float L = tj < g.T ? lse[bh * g.T + tj] : 0.0f;
      const float Ds = tj < g.T ? dsum[bh * g.T + tj] : 0.0f;
      float s[CT__AT_RW], dp[CT__AT_RW];
      CT__UNROLL
      for (int r = 0; r < CT__AT_RW; r++) s[r] = dp[r] = 0.0f;
      for (int64_t d0 = 0; d0 < g.D; d0 += DC) {
        __syncthreads();
        if (NC != 1) {
          ct__at_stage<DC>(sk, kb, g.C, s0, g.T, d0, g.D);
          ct__at_stage<DC>(sv, vb, g.C, s0, g.T, d0, g.D);
        }
        ct__at_stage<DC>(sq, qb, g.C, t0, g.T, d0, g.D);
        ct__at_stage<DC>(sdy, dyb, g.C, t0, g.T, d0, g.D);
        __syncthreads();
        ct__at_dots<DC>(s, sk, sq, w, lane);
        ct__at_dots<DC>(dp, sv, sdy, w, lane);
      }
      CT__UNROLL
      for (int r = 0; r < CT__AT_RW; r++) {
        const bool valid = mine + r < g.T && tj < g.T && tj >= mine + r;
        const float p = valid ? expf(fmaf(s[r], g.scale, -L)) : 0.0f;
        sds[w][r].f[lane] = valid ? p * (dp[r] - Ds) * g.scale : 0.0f;
        sp[w][r].f[lane] = p;
      }
      __syncwarp();
      if (NC > 0) {
        CT__UNROLL
        for (int c = 0; c < NA; c++) {
          if (NC != 1) {
            __syncthreads();
            if (dkb) ct__at_stage<DC>(sq, qb, g.C, t0, g.T, c * DC, g.D);
            if (dvb) ct__at_stage<DC>(sdy, dyb, g.C, t0, g.T, c * DC, g.D);
            __syncthreads();
          }
          if (dkb) ct__at_accum<DC>(ak[c], sq, sds[w], lane);
          if (dvb) ct__at_accum<DC>(av[c], sdy, sp[w], lane);
        }
      } else {
        for (int64_t d0 = 0; d0 < g.D; d0 += DC) {
          __syncthreads();
          if (dkb) ct__at_stage<DC>(sq, qb, g.C, t0, g.T, d0, g.D);
          if (dvb) ct__at_stage<DC>(sdy, dyb, g.C, t0, g.T, d0, g.D);
          __syncthreads();
          if (dkb) {
            ct__at_load<DC>(ak[0], dkb, g.C, mine, g.T, d0, g.D, t0 > s0, NULL, lane);
            ct__at_accum<DC>(ak[0], sq, sds[w], lane);
            ct__at_store<DC>(ak[0], dkb, g.C, mine, g.T, d0, g.D, NULL, lane);
          }
          if (dvb) {
            ct__at_load<DC>(av[0], dvb, g.C, mine, g.T, d0, g.D, t0 > s0, NULL, lane);
            ct__at_accum<DC>(av[0], sdy, sp[w], lane);
            ct__at_store<DC>(av[0], dvb, g.C, mine, g.T, d0, g.D, NULL, lane);
          }
        }
      }
    }
    if (NC > 0) {
      CT__UNROLL
      for (int c = 0; c < NA; c++) {
        if (dkb) ct__at_store<DC>(ak[c], dkb, g.C, mine, g.T, c * DC, g.D, NULL, lane);
        if (dvb) ct__at_store<DC>(av[c], dvb, g.C, mine, g.T, c * DC, g.D, NULL, lane);
      }
    }
  }
}

/* One row group per (b, t, h) row of dy and y (D entries each, contiguous):
 * dsum[(b*H + h)*T + t] = dy . y, in double. */
__global__ void ct__k_attn_dsum(const float *dy, const float *y, float *dsum, int64_t rows,
                                int64_t T, int64_t H, int64_t D) {
  __shared__ double sh[CT__THREADS];
  CT__ROW_PASSES(base, rows) {
    const int64_t r = base + threadIdx.y;
    bool live = r < rows;
    const int64_t o = (live ? r : 0) * D;
    double acc = 0.0;
    if (live)
      for (int64_t j = threadIdx.x; j < D; j += blockDim.x) acc += (double)dy[o + j] * (double)y[o + j];
    double dot = ct__row_reduce<false>(acc, sh);
    if (!live || threadIdx.x != 0) continue;
    const int64_t h = r % H, bt = r / H;
    dsum[((bt / T) * H + h) * T + bt % T] = (float)dot;
  }
}

/* ---- kv_attention ------------------------------------------------------------------ */

/* Decoding attention over the caches kc, vc [B,H,L,D] (H*D = C). Output row
 * r = (b*T + t)*H + h (q and y rows of D entries at r * D) attends over cache
 * positions 0..p, p = pos[b*T + t]. A row's positions are cut into chunks of
 * g.chunk (a multiple of CT__KV_WARPS * CT__KV_U); a block takes one (row,
 * chunk) item and its warps take CT__KV_U positions at a time, interleaved.
 * Lane l of a warp owns entries l + 32 i (i < R) of a row, so cache rows are
 * read coalesced and a dot product is a butterfly warp sum (the same bits in
 * every lane). Each warp keeps an online softmax (running max m and sum l,
 * accumulators rescaled by exp(m_old - m_new)); the warps are merged in a fixed
 * order through shared memory. With one chunk per row the block writes y, else
 * the chunk's partial (m, l, acc[D]) at part[item * (D + 2)], which
 * ct__k_kv_combine merges in chunk order. Heads wider than 32 R (R = 8 only)
 * run in passes of 32 R output entries, each recomputing the scores. No cache
 * row past p is read. */
#define CT__KV_WARPS 4
#define CT__KV_THREADS (32 * CT__KV_WARPS)
#define CT__KV_U 4        /* positions per warp step */
#define CT__KV_CHUNK 32   /* the fewest positions per chunk */
#define CT__KV_SPLITS 32  /* the most chunks per row */
#define CT__KV_TARGET 256 /* blocks a launch aims for before it splits rows */

/* Shapes of one launch. write: each row's block writes its own k and v rows
 * into the caches first (T == 1: no row sees another row of the launch). */
struct ct__kv_geo {
  int64_t B, T, H, L, D, rows, splits, chunk, items;
  float scale;
  int write;
};

/* Rows (b, t) of k, v [B,T,H*D] in row groups: head h's D entries go to
 * [b, h, p, :] of the caches, p = pos[b*T + t]. A position outside [0, L) is
 * recorded (kind 2) and its row skipped; of the rows of one batch row with the
 * same position only the last writes, as the in-order writes of cpu_ref leave it. */
__global__ void ct__k_kv_write(const float *k, const float *v, const int32_t *pos, float *kc,
                               float *vc, ct__kv_geo g, ct__cu_errrec *err, int node, int op) {
  __shared__ double sh[CT__THREADS];
  const int64_t n = g.B * g.T, C = g.H * g.D;
  CT__ROW_PASSES(base, n) {
    const int64_t r = base + threadIdx.y;
    const bool live = r < n;
    const int64_t p = live ? pos[r] : 0, t0 = live ? r - r % g.T : 0;
    double later = 0.0; /* 1: a later row of this batch row has position p */
    if (live)
      for (int64_t t = r % g.T + 1 + threadIdx.x; t < g.T; t += blockDim.x)
        if (pos[t0 + t] == p) later = 1.0;
    later = ct__row_reduce<true>(later, sh);
    if (!live) continue;
    if (p < 0 || p >= g.L) {
      if (threadIdx.x == 0) ct__record(err, node, op, 2, r, (int32_t)p, g.L);
      continue;
    }
    if (later > 0.0) continue;
    const int64_t cb = (r / g.T) * g.H * g.L * g.D + p * g.D;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const int64_t o = cb + (c / g.D) * g.L * g.D + c % g.D;
      kc[o] = k[r * C + c];
      vc[o] = v[r * C + c];
    }
  }
}

template <int R>
__global__ void __launch_bounds__(CT__KV_THREADS, 4)
    ct__k_kv_attend(const float *q, const float *k, const float *v, const int32_t *pos,
                    float *kc, float *vc, float *y, float *part, ct__kv_geo g,
                    ct__cu_errrec *err, int node, int op) {
  constexpr int U = CT__KV_U, W = CT__KV_WARPS;
  __shared__ float sm[W], sl[W], sacc[W][32 * R];
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t D = g.D;
  for (int64_t it = blockIdx.x; it < g.items; it += gridDim.x) {
    const int64_t r = it / g.splits, j = it % g.splits, bt = r / g.H, h = r % g.H;
    const int64_t p = pos[bt], s0 = j * g.chunk;
    if (p < 0 || p >= g.L) { /* y is zero (here with one chunk, else in the combine) */
      if (g.write && h == 0 && j == 0 && threadIdx.x == 0)
        ct__record(err, node, op, 2, bt, (int32_t)p, g.L);
      if (g.splits == 1)
        for (int64_t d = threadIdx.x; d < D; d += CT__KV_THREADS) y[r * D + d] = 0.0f;
      continue;
    }
    if (s0 > p) continue; /* a chunk past the row's position: nothing to do */
    const int64_t s1 = s0 + g.chunk < p + 1 ? s0 + g.chunk : p + 1;
    const int64_t cb = (bt / g.T * g.H + h) * g.L * D;
    const float *kb = kc + cb, *vb = vc + cb, *qr = q + r * D;
    if (g.write && p < s1) { /* this chunk holds p: the row's k and v first */
      for (int64_t d = threadIdx.x; d < D; d += CT__KV_THREADS) {
        kc[cb + p * D + d] = k[r * D + d];
        vc[cb + p * D + d] = v[r * D + d];
      }
      __syncthreads();
    }
    float qv[R];
    CT__UNROLL
    for (int i = 0; i < R; i++) qv[i] = lane + 32 * i < D ? qr[lane + 32 * i] : 0.0f;
    for (int64_t ob = 0; ob < D; ob += 32 * R) {
      float m = -INFINITY, l = 0.0f, acc[R];
      CT__UNROLL
      for (int i = 0; i < R; i++) acc[i] = 0.0f;
      for (int64_t s = s0 + w * U; s < s1; s += W * U) {
        /* The step's key and value rows are loaded together (one memory round trip). */
        float x[U], e[U], vx[U][R];
        CT__UNROLL
        for (int u = 0; u < U; u++) {
          const bool ok = s + u < s1;
          const float *kr = kb + (ok ? s + u : s) * D, *vr = vb + (ok ? s + u : s) * D + ob;
          float dot = 0.0f;
          CT__UNROLL
          for (int i = 0; i < R; i++) {
            dot = fmaf(qv[i], ok && lane + 32 * i < D ? kr[lane + 32 * i] : 0.0f, dot);
            vx[u][i] = ok && ob + lane + 32 * i < D ? vr[lane + 32 * i] : 0.0f;
          }
          for (int64_t d = lane + 32 * R; ok && d < D; d += 32) dot = fmaf(qr[d], kr[d], dot);
          x[u] = dot;
        }
        float mx = m;
        CT__UNROLL
        for (int u = 0; u < U; u++) {
          const float sc = ct__warp_sum(x[u]) * g.scale;
          x[u] = s + u < s1 ? sc : -INFINITY;
          mx = fmaxf(mx, x[u]);
        }
        const float alpha = expf(m - mx); /* 0 on the first step (m = -inf) */
        CT__UNROLL
        for (int u = 0; u < U; u++) e[u] = s + u < s1 ? expf(x[u] - mx) : 0.0f;
        l = fmaf(l, alpha, e[0]);
        CT__UNROLL
        for (int u = 1; u < U; u++) l += e[u];
        m = mx;
        CT__UNROLL
        for (int i = 0; i < R; i++) acc[i] *= alpha;
        CT__UNROLL
        for (int u = 0; u < U; u++)
          CT__UNROLL
          for (int i = 0; i < R; i++) acc[i] = fmaf(e[u], vx[u][i], acc[i]); /* 0 past s1 */
      }
      /* Merge the warps in order: weights exp(m_w - M); a warp without positions has
       * m = -inf, l = 0 and zero accumulators (warp 0 always has one). */
      if (lane == 0) sm[w] = m, sl[w] = l;
      CT__UNROLL
      for (int i = 0; i < R; i++) sacc[w][lane + 32 * i] = acc[i];
      __syncthreads();
      float M = sm[0], f[W], den = 0.0f;
      CT__UNROLL
      for (int u = 1; u < W; u++) M = fmaxf(M, sm[u]);
      CT__UNROLL
      for (int u = 0; u < W; u++) {
        f[u] = expf(sm[u] - M);
        den = fmaf(f[u], sl[u], den);
      }
      float *pr = part + it * (D + 2);
      for (int e = threadIdx.x; e < 32 * R && ob + e < D; e += CT__KV_THREADS) {
        float a = 0.0f;
        CT__UNROLL
        for (int u = 0; u < W; u++) a = fmaf(f[u], sacc[u][e], a);
        if (g.splits == 1)
          y[r * D + ob + e] = a / den;
        else
          pr[2 + ob + e] = a;
      }
      if (g.splits > 1 && ob == 0 && threadIdx.x == 0) pr[0] = M, pr[1] = den;
      __syncthreads();
    }
  }
}

/* Row groups over output rows: y = sum_j exp(m_j - M) acc_j / sum_j exp(m_j - M) l_j
 * over the chunks j <= p / chunk of the row, in order (M = max_j m_j); zeros for
 * a position outside [0, L). */
__global__ void ct__k_kv_combine(const float *part, const int32_t *pos, float *y, ct__kv_geo g) {
  const int64_t D = g.D, stride = D + 2;
  CT__ROW_PASSES(base, g.rows) {
    const int64_t r = base + threadIdx.y;
    if (r >= g.rows) continue;
    const int64_t p = pos[r / g.H];
    float *yr = y + r * D;
    if (p < 0 || p >= g.L) {
      for (int64_t d = threadIdx.x; d < D; d += blockDim.x) yr[d] = 0.0f;
      continue;
    }
    const int64_t n = p / g.chunk + 1;
    const float *pr = part + r * g.splits * stride;
    float M = -INFINITY, den = 0.0f;
    for (int64_t j = 0; j < n; j++) M = fmaxf(M, pr[j * stride]);
    for (int64_t j = 0; j < n; j++) den = fmaf(expf(pr[j * stride] - M), pr[j * stride + 1], den);
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      float a = 0.0f;
      for (int64_t j = 0; j < n; j++) a = fmaf(expf(pr[j * stride] - M), pr[j * stride + 2 + d], a);
      yr[d] = a / den;
    }
  }
}

/* ---- optimizer ------------------------------------------------------------------ */

/* Per-block partial sums of x^2 in double (the grid depends only on n). */
__global__ void ct__k_sumsq_partials(const float *x, int64_t n, double *partials) {
  __shared__ double sh[CT__THREADS];
  double acc = 0.0;
  CT__FOR_ELEMS(i, n) acc += (double)x[i] * (double)x[i];
  double s = ct__block_sum(acc, sh);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

/* out[0] = sum of the n partials, as float; one block. */
__global__ void ct__k_sum_partials(const double *partials, int n, float *out) {
  __shared__ double sh[CT__THREADS];
  double s = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += partials[i];
  s = ct__block_sum(s, sh);
  if (threadIdx.x == 0) out[0] = (float)s;
}

/* The learning-rate schedule in float, each operation rounded (no contraction). */
__device__ float ct__scheduled_lr(const float *h, float t) {
  float peak = h[CT__CU_HYPER_PEAK_LR], lo = h[CT__CU_HYPER_MIN_LR], w = h[CT__CU_HYPER_WARMUP],
        total = h[CT__CU_HYPER_TOTAL];
  if (w > 0.0f && t <= w) return __fdiv_rn(__fmul_rn(peak, t), w);
  if (total == 0.0f) return peak;
  if (t >= total) return lo;
  float phase = __fdiv_rn(__fmul_rn(3.14159265358979f, __fsub_rn(t, w)), __fsub_rn(total, w));
  float amp = __fmul_rn(__fmul_rn(0.5f, __fsub_rn(peak, lo)), __fadd_rn(1.0f, cosf(phase)));
  return __fadd_rn(lo, amp);
}

/* One thread: advances the step and writes the per-step slots (backend_impl.h). */
__global__ void ct__k_hyper_step(float *h, const float *sq, int n, const ct__cu_errrec *err) {
  if (threadIdx.x != 0 || blockIdx.x != 0 || err->flag) return;
  float t = __fadd_rn(h[CT__CU_HYPER_STEP], 1.0f), sum = 0.0f;
  h[CT__CU_HYPER_STEP] = t;
  h[CT__CU_HYPER_LR] = ct__scheduled_lr(h, t);
  h[CT__CU_HYPER_BC1] = __fsub_rn(1.0f, powf(h[CT__CU_HYPER_BETA1], t));
  h[CT__CU_HYPER_BC2] = __fsub_rn(1.0f, powf(h[CT__CU_HYPER_BETA2], t));
  for (int i = 0; i < n; i++) sum = __fadd_rn(sum, sq[i]);
  float norm = __fsqrt_rn(sum), clip = h[CT__CU_HYPER_CLIP];
  h[CT__CU_HYPER_NORM] = norm;
  h[CT__CU_HYPER_SCALE] =
      clip > 0.0f && norm > clip ? __fdiv_rn(clip, __fadd_rn(norm, 1e-6f)) : 1.0f;
}

/* p -= lr (g scale), each operation rounded as on the CPU; nothing while an error is pending. */
__global__ void ct__k_sgd_update(const float *h, float *p, const float *g, int64_t n,
                                 const ct__cu_errrec *err) {
  if (err->flag) return;
  const float lr = h[CT__CU_HYPER_LR], scale = h[CT__CU_HYPER_SCALE];
  CT__FOR_ELEMS(i, n) p[i] = __fsub_rn(p[i], __fmul_rn(lr, __fmul_rn(g[i], scale)));
}

/* AdamW on p with m = state[0, n), v = state[n, 2n) (backend_impl.h); elements
 * [0, n_decay) take weight decay. Each operation rounded as on the CPU; nothing
 * while an error is pending. */
__global__ void ct__k_adamw_update(const float *h, float *p, const float *g, float *m, float *v,
                                   int64_t n, int64_t n_decay, const ct__cu_errrec *err) {
  if (err->flag) return;
  const float lr = h[CT__CU_HYPER_LR], scale = h[CT__CU_HYPER_SCALE], b1 = h[CT__CU_HYPER_BETA1],
              b2 = h[CT__CU_HYPER_BETA2], eps = h[CT__CU_HYPER_EPS];
  const float decayed = __fsub_rn(1.0f, __fmul_rn(lr, h[CT__CU_HYPER_WD]));
  const float step = __fdiv_rn(lr, h[CT__CU_HYPER_BC1]), root_bc2 = __fsqrt_rn(h[CT__CU_HYPER_BC2]);
  const float c1 = __fsub_rn(1.0f, b1), c2 = __fsub_rn(1.0f, b2);
  CT__FOR_ELEMS(i, n) {
    float keep = i < n_decay ? decayed : 1.0f;
    float gi = __fmul_rn(g[i], scale);
    float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(c1, gi));
    float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(c2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), root_bc2), eps);
    p[i] = __fsub_rn(__fmul_rn(p[i], keep), __fdiv_rn(__fmul_rn(step, mi), denom));
  }
}

/* ---- launch functions ----------------------------------------------------------- */

/* Launches an element-wise kernel over n elements on stream s (nothing when n <= 0)
 * and returns the launch status. */
#define CT__LAUNCH_ELEMS(kernel, n, ...)                                                \
  do {                                                                                  \
    if ((n) <= 0) return cudaSuccess;                                                   \
    CT__CU_LAUNCH(kernel, ct__blocks((n), CT__THREADS, CT__MAX_BLOCKS), CT__THREADS, s) \
    (__VA_ARGS__);                                                                      \
    return cudaGetLastError();                                                          \
  } while (0)

extern "C" cudaError_t ct__cu_fill(float *x, float value, int64_t n, cudaStream_t s) {
  CT__LAUNCH_ELEMS(ct__k_fill, n, x, value, n);
}

extern "C" cudaError_t ct__cu_add(const float *x, const float *y, float *z, int64_t n,
                                  cudaStream_t s) {
  CT__LAUNCH_ELEMS(ct__k_add, n, x, y, z, n);
}

extern "C" cudaError_t ct__cu_embedding_fwd(const int32_t *ids, const float *table, float *y,
                                            int64_t n, int64_t vocab, int64_t width,
                                            ct__cu_errrec *err, int node, int op, cudaStream_t s) {
  if (n <= 0 || width <= 0) return cudaSuccess;
  dim3 b = ct__row_block(width);
  CT__CU_LAUNCH(ct__k_embedding_fwd, ct__blocks(n, b.y, CT__MAX_BLOCKS), b, s)
  (ids, table, y, n, vocab, width, err, node, op);
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
  CT__CU_LAUNCH(ct__k_embedding_rev, grid, dim3(32, 8), s)(ids, dy, dtable, n, vocab, width, chunk);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_bias_rows(const float *b, float *y, int64_t rows, int64_t m,
                                        cudaStream_t s) {
  if (rows <= 0 || m <= 0) return cudaSuccess;
  dim3 bl = ct__row_block(m);
  CT__CU_LAUNCH(ct__k_bias_rows, ct__blocks(rows, bl.y, CT__MAX_BLOCKS), bl, s)(b, y, rows, m);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_softmax_fwd(const float *x, float *y, int64_t rows, int64_t c,
                                          cudaStream_t s) {
  if (rows <= 0 || c <= 0) return cudaSuccess;
  dim3 b = ct__row_block(c);
  CT__CU_LAUNCH(ct__k_softmax_fwd, ct__blocks(rows, b.y, CT__MAX_BLOCKS), b, s)(x, y, rows, c);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_softmax_rev(const float *y, const float *dy, float *dx, int64_t rows,
                                          int64_t c, cudaStream_t s) {
  if (rows <= 0 || c <= 0) return cudaSuccess;
  dim3 b = ct__row_block(c);
  CT__CU_LAUNCH(ct__k_softmax_rev, ct__blocks(rows, b.y, CT__MAX_BLOCKS), b, s)(y, dy, dx, rows, c);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_xent_fwd(const float *p, const int32_t *t, float *loss,
                                       double *partials, int64_t rows, int64_t c,
                                       ct__cu_errrec *err, int node, int op, cudaStream_t s) {
  if (rows <= 0 || c <= 0) return cudaSuccess;
  unsigned g = ct__blocks(rows, CT__THREADS, CT__PARTIAL_BLOCKS);
  CT__CU_LAUNCH(ct__k_xent_fwd, g, CT__THREADS, s)(p, t, partials, rows, c, err, node, op);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  CT__CU_LAUNCH(ct__k_mean, 1, CT__THREADS, s)(partials, (int)g, rows, loss);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_xent_rev(const float *p, const int32_t *t, const float *dloss,
                                       float *dp, int64_t rows, int64_t c, cudaStream_t s) {
  if (rows <= 0 || c <= 0) return cudaSuccess;
  dim3 b = ct__row_block(c);
  CT__CU_LAUNCH(ct__k_xent_rev, ct__blocks(rows, b.y, CT__MAX_BLOCKS), b, s)
  (p, t, dloss, dp, rows, c);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_softmax_xent_fwd(const float *x, const int32_t *t, float *probs,
                                               float *loss, double *partials, int64_t rows,
                                               int64_t c, ct__cu_errrec *err, int node, int op,
                                               cudaStream_t s) {
  if (rows <= 0 || c <= 0) return cudaSuccess;
  dim3 b = ct__row_block(c);
  unsigned g = ct__blocks(rows, b.y, CT__PARTIAL_BLOCKS);
  CT__CU_LAUNCH(ct__k_softmax_xent_fwd, g, b, s)(x, t, probs, partials, rows, c, err, node, op);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  CT__CU_LAUNCH(ct__k_mean, 1, CT__THREADS, s)(partials, (int)g, rows, loss);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_softmax_xent_rev(const float *probs, const int32_t *t,
                                               const float *dloss, float *dx, int64_t rows,
                                               int64_t c, cudaStream_t s) {
  if (rows <= 0 || c <= 0) return cudaSuccess;
  dim3 b = ct__row_block(c);
  CT__CU_LAUNCH(ct__k_softmax_xent_rev, ct__blocks(rows, b.y, CT__MAX_BLOCKS), b, s)
  (probs, t, dloss, dx, rows, c);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_pos_embedding_fwd(const float *x, const float *P, float *y, int64_t B,
                                                int64_t T, int64_t C, cudaStream_t s) {
  int64_t n = B * T * C;
  CT__LAUNCH_ELEMS(ct__k_pos_embedding_fwd, n, x, P, y, n, T, C);
}

extern "C" cudaError_t ct__cu_pos_embedding_rev(const float *dy, float *dP, int64_t B, int64_t T,
                                                int64_t C, cudaStream_t s) {
  if (B <= 0 || T * C <= 0) return cudaSuccess;
  CT__CU_LAUNCH(ct__k_pos_embedding_rev, ct__blocks(T * C, CT__THREADS, CT__MAX_BLOCKS),
                CT__THREADS, s)
  (dy, dP, B, T, C);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_layernorm_fwd(const float *x, const float *g, const float *b,
                                            float *y, float *saved, int64_t rows, int64_t n,
                                            cudaStream_t s) {
  if (rows <= 0 || n <= 0) return cudaSuccess;
  dim3 bl = ct__row_block(n);
  CT__CU_LAUNCH(ct__k_layernorm_fwd, ct__blocks(rows, bl.y, CT__MAX_BLOCKS), bl, s)
  (x, g, b, y, saved, rows, n);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_layernorm_rev(const float *x, const float *g, const float *dy,
                                            const float *saved, float *dx, float *dg, float *db,
                                            double *part, int64_t rows, int64_t n,
                                            cudaStream_t s) {
  if (rows <= 0 || n <= 0) return cudaSuccess;
  if (dx) {
    dim3 bl = ct__row_block(n);
    CT__CU_LAUNCH(ct__k_layernorm_rev_dx, ct__blocks(rows, bl.y, CT__MAX_BLOCKS), bl, s)
    (x, g, dy, dx, rows, n);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  if (!dg && !db) return cudaSuccess;
  /* Chunks of at least CT__LN_CHUNK_ROWS rows, at most CT__LN_CHUNKS of them; columns
   * in segments whose partial sums fit the CT__CU_LN_PARTIALS doubles of part. */
  int64_t chunks = (rows + CT__LN_CHUNK_ROWS - 1) / CT__LN_CHUNK_ROWS;
  if (chunks > CT__LN_CHUNKS) chunks = CT__LN_CHUNKS;
  const int64_t chunk_rows = (rows + chunks - 1) / chunks;
  chunks = (rows + chunk_rows - 1) / chunk_rows;
  const int64_t seg = CT__CU_LN_PARTIALS / (2 * chunks);
  for (int64_t c0 = 0; c0 < n; c0 += seg) {
    const int64_t nc = n - c0 < seg ? n - c0 : seg;
    const int64_t work = (nc + CT__COL_X - 1) / CT__COL_X * chunks;
    CT__CU_LAUNCH(ct__k_layernorm_rev_params, ct__blocks(work, 1, CT__MAX_BLOCKS),
                  dim3(CT__COL_X, CT__COL_Y), s)
    (x, dy, saved, part, rows, n, c0, nc, chunk_rows, chunks);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    CT__CU_LAUNCH(ct__k_layernorm_rev_params_sum, ct__blocks(nc, CT__THREADS, CT__MAX_BLOCKS),
                  CT__THREADS, s)
    (part, dg ? dg + c0 : NULL, db ? db + c0 : NULL, nc, chunks);
    e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

extern "C" cudaError_t ct__cu_add_layernorm_fwd(const float *x, const float *r, const float *g,
                                                const float *b, float *sum, float *y,
                                                float *saved, int64_t rows, int64_t n,
                                                cudaStream_t s) {
  if (rows <= 0 || n <= 0) return cudaSuccess;
  dim3 bl = ct__row_block(n);
  CT__CU_LAUNCH(ct__k_add_layernorm_fwd, ct__blocks(rows, bl.y, CT__MAX_BLOCKS), bl, s)
  (x, r, g, b, sum, y, saved, rows, n);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_add_layernorm_rev(const float *sum, const float *g, const float *ds,
                                                const float *dy, const float *saved, float *dx,
                                                float *dr, float *dg, float *db, double *part,
                                                int64_t rows, int64_t n, cudaStream_t s) {
  if (rows <= 0 || n <= 0) return cudaSuccess;
  if (dx || dr) {
    dim3 bl = ct__row_block(n);
    CT__CU_LAUNCH(ct__k_add_layernorm_rev, ct__blocks(rows, bl.y, CT__MAX_BLOCKS), bl, s)
    (sum, g, ds, dy, dx, dr, rows, n);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  return ct__cu_layernorm_rev(sum, g, dy, saved, NULL, dg, db, part, rows, n, s); /* dg, db */
}

extern "C" cudaError_t ct__cu_gelu_fwd(const float *x, float *y, int64_t n, cudaStream_t s) {
  CT__LAUNCH_ELEMS(ct__k_gelu_fwd, n, x, y, n);
}

extern "C" cudaError_t ct__cu_gelu_rev(const float *x, const float *dy, float *dx, int64_t n,
                                       cudaStream_t s) {
  CT__LAUNCH_ELEMS(ct__k_gelu_rev, n, x, dy, dx, n);
}

extern "C" cudaError_t ct__cu_bias_gelu(float *u, const float *b, float *y, int64_t rows,
                                        int64_t m, cudaStream_t s) {
  CT__LAUNCH_ELEMS(ct__k_bias_gelu, rows * m, u, b, y, rows * m, m);
}

extern "C" cudaError_t ct__cu_qkv_prep(const float **ptrs, const float *x, const float *const *w,
                                       float *const *out, const float *const *b, int64_t rows,
                                       int64_t m, cudaStream_t s) {
  int64_t n = rows * m;
  CT__LAUNCH_ELEMS(ct__k_qkv_prep, 9 + (b[0] ? 3 * n : 0), ptrs, x, w[0], w[1], w[2], out[0],
                   out[1], out[2], b[0], b[1], b[2], n, m);
}

extern "C" cudaError_t ct__cu_head_split(const float *x, float *y, int64_t B, int64_t H, int64_t T,
                                         int64_t D, cudaStream_t s) {
  int64_t n = B * H * T * D;
  CT__LAUNCH_ELEMS(ct__k_head_split, n, x, y, n, H, T, D);
}

extern "C" cudaError_t ct__cu_head_merge(const float *x, float *y, int64_t B, int64_t H, int64_t T,
                                         int64_t D, cudaStream_t s) {
  int64_t n = B * H * T * D;
  CT__LAUNCH_ELEMS(ct__k_head_merge, n, x, y, n, H, T, D);
}

extern "C" cudaError_t ct__cu_causal_mask(const float *src, float *dst, int64_t batch, int64_t T,
                                          cudaStream_t s) {
  int64_t n = batch * T * T;
  CT__LAUNCH_ELEMS(ct__k_causal_mask, n, src, dst, n, T);
}

extern "C" cudaError_t ct__cu_causal_softmax_fwd(const float *x, float *y, int64_t rows, int64_t T,
                                                 cudaStream_t s) {
  if (rows <= 0 || T <= 0) return cudaSuccess;
  dim3 b = ct__row_block(T);
  CT__CU_LAUNCH(ct__k_causal_softmax_fwd, ct__blocks(rows, b.y, CT__MAX_BLOCKS), b, s)
  (x, y, rows, T);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_causal_softmax_rev(const float *y, const float *dy, float *dx,
                                                 int64_t rows, int64_t T, cudaStream_t s) {
  if (rows <= 0 || T <= 0) return cudaSuccess;
  dim3 b = ct__row_block(T);
  CT__CU_LAUNCH(ct__k_causal_softmax_rev, ct__blocks(rows, b.y, CT__MAX_BLOCKS), b, s)
  (y, dy, dx, rows, T);
  return cudaGetLastError();
}

static ct__at_geo ct__at_geo_of(int64_t B, int64_t T, int64_t C, int64_t H) {
  ct__at_geo g;
  g.B = B;
  g.T = T;
  g.C = C;
  g.H = H;
  g.D = C / H;
  g.ntiles = (T + CT__AT_TILE - 1) / CT__AT_TILE;
  g.items = B * H * g.ntiles;
  g.scale = (float)(1.0 / sqrt((double)g.D));
  return g;
}

/* fn<DC, NC>(args) for head width D: accumulators in registers up to D = 128
 * (chunks of 16, 32 or 64 entries), in the output rows beyond. */
#define CT__AT_DISPATCH(D, fn, ...)                                              \
  ((D) <= 16   ? fn<16, 1>(__VA_ARGS__)                                          \
   : (D) <= 32 ? fn<32, 1>(__VA_ARGS__)                                          \
   : (D) <= 64 ? fn<64, 1>(__VA_ARGS__)                                          \
   : (D) <= 128 ? fn<64, 2>(__VA_ARGS__)                                         \
                : fn<64, 0>(__VA_ARGS__))

template <int DC, int NC>
static cudaError_t ct__at_fwd(const float *q, const float *k, const float *v, float *y, float *lse,
                              const ct__at_geo &g, cudaStream_t s) {
  CT__CU_LAUNCH((ct__k_attn_fwd<DC, NC>), ct__blocks(g.items, 1, CT__MAX_BLOCKS), CT__AT_THREADS,
                s)
  (q, k, v, y, lse, g);
  return cudaGetLastError();
}

template <int DC, int NC>
static cudaError_t ct__at_rev(const float *q, const float *k, const float *v, const float *dy,
                              const float *lse, const float *dsum, float *dq, float *dk, float *dv,
                              const ct__at_geo &g, cudaStream_t s) {
  const unsigned grid = ct__blocks(g.items, 1, CT__MAX_BLOCKS);
  if (dq) {
    CT__CU_LAUNCH((ct__k_attn_dq<DC, NC>), grid, CT__AT_THREADS, s)(q, k, v, dy, lse, dsum, dq, g);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  if (dk || dv) {
    CT__CU_LAUNCH((ct__k_attn_dkv<DC, NC>), grid, CT__AT_THREADS, s)
    (q, k, v, dy, lse, dsum, dk, dv, g);
    return cudaGetLastError();
  }
  return cudaSuccess;
}

extern "C" cudaError_t ct__cu_causal_attention_fwd(const float *q, const float *k, const float *v,
                                                   float *y, float *lse, int64_t B, int64_t T,
                                                   int64_t C, int64_t H, cudaStream_t s) {
  if (B <= 0 || T <= 0 || C <= 0 || H <= 0) return cudaSuccess;
  const ct__at_geo g = ct__at_geo_of(B, T, C, H);
  return CT__AT_DISPATCH(g.D, ct__at_fwd, q, k, v, y, lse, g, s);
}

extern "C" cudaError_t ct__cu_causal_attention_rev(const float *q, const float *k, const float *v,
                                                   const float *y, const float *dy, float *saved,
                                                   float *dq, float *dk, float *dv, int64_t B,
                                                   int64_t T, int64_t C, int64_t H,
                                                   cudaStream_t s) {
  if (B <= 0 || T <= 0 || C <= 0 || H <= 0 || (!dq && !dk && !dv)) return cudaSuccess;
  const ct__at_geo g = ct__at_geo_of(B, T, C, H);
  const int64_t rows = B * T * H;
  float *dsum = saved + B * H * T;
  dim3 b = ct__row_block(g.D);
  CT__CU_LAUNCH(ct__k_attn_dsum, ct__blocks(rows, b.y, CT__MAX_BLOCKS), b, s)
  (dy, y, dsum, rows, T, H, g.D);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  return CT__AT_DISPATCH(g.D, ct__at_rev, q, k, v, dy, saved, dsum, dq, dk, dv, g, s);
}

template <int R>
static cudaError_t ct__kv_attend(const float *q, const float *k, const float *v,
                                 const int32_t *pos, float *kc, float *vc, float *y, float *part,
                                 const ct__kv_geo &g, ct__cu_errrec *err, int node, int op,
                                 cudaStream_t s) {
  CT__CU_LAUNCH((ct__k_kv_attend<R>), ct__blocks(g.items, 1, CT__MAX_BLOCKS), CT__KV_THREADS, s)
  (q, k, v, pos, kc, vc, y, part, g, err, node, op);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_kv_attention_fwd(const float *q, const float *k, const float *v,
                                               const int32_t *pos, float *kc, float *vc, float *y,
                                               float *part, int64_t B, int64_t T, int64_t H,
                                               int64_t L, int64_t D, ct__cu_errrec *err,
                                               int node, int op, cudaStream_t s) {
  if (B <= 0 || T <= 0 || H <= 0 || D <= 0) return cudaSuccess;
  ct__kv_geo g;
  g.B = B;
  g.T = T;
  g.H = H;
  g.L = L;
  g.D = D;
  g.rows = B * T * H;
  g.scale = (float)(1.0 / sqrt((double)D));
  g.write = T == 1;
  /* Chunks per row: enough blocks for the device (CT__KV_TARGET), chunks of at
   * least CT__KV_CHUNK positions, at most CT__KV_SPLITS, partials within part. */
  const int64_t step = CT__KV_WARPS * CT__KV_U;
  int64_t splits = (CT__KV_TARGET + g.rows - 1) / g.rows;
  const int64_t by_len = (L + CT__KV_CHUNK - 1) / CT__KV_CHUNK,
                by_room = CT__CU_KV_PARTIALS / (g.rows * (D + 2));
  if (splits > by_len) splits = by_len;
  if (splits > CT__KV_SPLITS) splits = CT__KV_SPLITS;
  if (splits > by_room) splits = by_room;
  if (splits < 1) splits = 1;
  g.chunk = ((L + splits - 1) / splits + step - 1) / step * step;
  if (g.chunk < step) g.chunk = step;
  g.splits = (L + g.chunk - 1) / g.chunk;
  if (g.splits < 1) g.splits = 1;
  g.items = g.rows * g.splits;
  cudaError_t e;
  if (!g.write) {
    dim3 b = ct__row_block(H * D);
    CT__CU_LAUNCH(ct__k_kv_write, ct__blocks(B * T, b.y, CT__MAX_BLOCKS), b, s)
    (k, v, pos, kc, vc, g, err, node, op);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
  }
  e = D <= 32    ? ct__kv_attend<1>(q, k, v, pos, kc, vc, y, part, g, err, node, op, s)
      : D <= 64  ? ct__kv_attend<2>(q, k, v, pos, kc, vc, y, part, g, err, node, op, s)
      : D <= 128 ? ct__kv_attend<4>(q, k, v, pos, kc, vc, y, part, g, err, node, op, s)
                 : ct__kv_attend<8>(q, k, v, pos, kc, vc, y, part, g, err, node, op, s);
  if (e != cudaSuccess || g.splits == 1) return e;
  dim3 b = ct__row_block(D);
  CT__CU_LAUNCH(ct__k_kv_combine, ct__blocks(g.rows, b.y, CT__MAX_BLOCKS), b, s)(part, pos, y, g);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_sumsq(const float *x, int64_t n, double *partials, float *out,
                                    cudaStream_t s) {
  unsigned g = 0;
  if (n > 0) {
    g = ct__blocks(n, CT__THREADS, CT__PARTIAL_BLOCKS);
    CT__CU_LAUNCH(ct__k_sumsq_partials, g, CT__THREADS, s)(x, n, partials);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  CT__CU_LAUNCH(ct__k_sum_partials, 1, CT__THREADS, s)(partials, (int)g, out);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_hyper_step(float *hyper, const float *sumsq, int n,
                                         const ct__cu_errrec *err, cudaStream_t s) {
  CT__CU_LAUNCH(ct__k_hyper_step, 1, 1, s)(hyper, sumsq, n, err);
  return cudaGetLastError();
}

extern "C" cudaError_t ct__cu_sgd_update(const float *hyper, float *p, const float *g, int64_t n,
                                         const ct__cu_errrec *err, cudaStream_t s) {
  CT__LAUNCH_ELEMS(ct__k_sgd_update, n, hyper, p, g, n, err);
}

extern "C" cudaError_t ct__cu_adamw_update(const float *hyper, float *p, const float *g,
                                           float *state, int64_t n, int64_t n_decay,
                                           const ct__cu_errrec *err, cudaStream_t s) {
  CT__LAUNCH_ELEMS(ct__k_adamw_update, n, hyper, p, g, state, state + n, n, n_decay, err);
}

/* Loads every kernel now, so that none is first loaded inside a graph capture
 * (drivers before CUDA 12.3 cannot load modules lazily while capturing). */
extern "C" cudaError_t ct__cu_preload(void) {
  cudaFuncAttributes a;
  const void *k[] = {
      (const void *)ct__k_fill,          (const void *)ct__k_add,
      (const void *)ct__k_embedding_fwd,
      (const void *)ct__k_embedding_rev, (const void *)ct__k_bias_rows,
      (const void *)ct__k_softmax_fwd,   (const void *)ct__k_softmax_rev,
      (const void *)ct__k_xent_fwd,      (const void *)ct__k_mean,
      (const void *)ct__k_xent_rev,      (const void *)ct__k_softmax_xent_fwd,
      (const void *)ct__k_softmax_xent_rev,
      (const void *)ct__k_pos_embedding_fwd,
      (const void *)ct__k_pos_embedding_rev,
      (const void *)ct__k_layernorm_fwd,
      (const void *)ct__k_layernorm_rev_dx,
      (const void *)ct__k_layernorm_rev_params,
      (const void *)ct__k_layernorm_rev_params_sum,
      (const void *)ct__k_add_layernorm_fwd,
      (const void *)ct__k_add_layernorm_rev,
      (const void *)ct__k_gelu_fwd,
      (const void *)ct__k_gelu_rev,
      (const void *)ct__k_bias_gelu,
      (const void *)ct__k_qkv_prep,
      (const void *)ct__k_head_split,
      (const void *)ct__k_head_merge,
      (const void *)ct__k_causal_mask,
      (const void *)ct__k_causal_softmax_fwd,
      (const void *)ct__k_causal_softmax_rev,
      (const void *)ct__k_attn_fwd<16, 1>,
      (const void *)ct__k_attn_fwd<32, 1>,
      (const void *)ct__k_attn_fwd<64, 1>,
      (const void *)ct__k_attn_fwd<64, 2>,
      (const void *)ct__k_attn_fwd<64, 0>,
      (const void *)ct__k_attn_dq<16, 1>,
      (const void *)ct__k_attn_dq<32, 1>,
      (const void *)ct__k_attn_dq<64, 1>,
      (const void *)ct__k_attn_dq<64, 2>,
      (const void *)ct__k_attn_dq<64, 0>,
      (const void *)ct__k_attn_dkv<16, 1>,
      (const void *)ct__k_attn_dkv<32, 1>,
      (const void *)ct__k_attn_dkv<64, 1>,
      (const void *)ct__k_attn_dkv<64, 2>,
      (const void *)ct__k_attn_dkv<64, 0>,
      (const void *)ct__k_attn_dsum,
      (const void *)ct__k_kv_write,
      (const void *)ct__k_kv_attend<1>,
      (const void *)ct__k_kv_attend<2>,
      (const void *)ct__k_kv_attend<4>,
      (const void *)ct__k_kv_attend<8>,
      (const void *)ct__k_kv_combine,
      (const void *)ct__k_sumsq_partials,
      (const void *)ct__k_sum_partials,
      (const void *)ct__k_hyper_step,
      (const void *)ct__k_sgd_update,
      (const void *)ct__k_adamw_update};
  for (unsigned i = 0; i < sizeof k / sizeof k[0]; i++) {
    cudaError_t e = cudaFuncGetAttributes(&a, k[i]);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}
