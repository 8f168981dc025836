/* SPDX-License-Identifier: MIT */
/* cuda/'s launch functions called directly on cudasim, at what the cross suite
 * does not reach through the library: causal_attention at every register tier
 * and at head widths up to 1030 (the fallback that keeps the accumulators in
 * the output rows), T at and off the tile, and the reverse with each subset of
 * dq, dk, dv; kv_attention at every register tier and head widths up to 1030,
 * chunked rows and their merge, prefill with rows out of order and equal
 * positions, and the device record of bad positions. Device buffers start as
 * NaN (cudasim), so an entry a kernel should write and does not is a NaN here.
 * References are naive loops in double; tolerances those of ct_check
 * (DESIGN.md): |a - b| <= 1e-5 + 1e-4 |b|. */
#include "../ct_test.h"

#include <cuda_runtime_api.h>
#include "cuda_kernels.h"

#define ASSERT_CUDA(expr)                                                                \
  do {                                                                                   \
    cudaError_t e_ = (expr);                                                             \
    if (e_ != cudaSuccess) fail_msg("%s -> %s", #expr, cudaGetErrorName(e_));            \
  } while (0)

static float *dev_from(const float *host, size_t n) {
  void *p = NULL;
  ASSERT_CUDA(cudaMalloc(&p, n * sizeof(float)));
  if (host) ASSERT_CUDA(cudaMemcpy(p, host, n * sizeof(float), cudaMemcpyHostToDevice));
  return p;
}

static void to_host(float *host, const float *dev, size_t n) {
  ASSERT_CUDA(cudaDeviceSynchronize());
  ASSERT_CUDA(cudaMemcpy(host, dev, n * sizeof(float), cudaMemcpyDeviceToHost));
}

static float *host_alloc(size_t n) {
  float *p = malloc(n * sizeof(float));
  assert_non_null(p);
  return p;
}

/* ---- causal_attention -------------------------------------------------------------- */

typedef struct attn_shape {
  int64_t B, T, C, H;
} attn_shape;

/* The reference forward in double: y and lse (as cpu_ref computes them). */
static void ref_fwd(const attn_shape *s, const float *q, const float *k, const float *v, float *y,
                    float *lse) {
  const int64_t D = s->C / s->H;
  const double scale = 1.0 / sqrt((double)D);
  double *row = malloc((size_t)(s->T + D) * sizeof *row), *acc = row + s->T;
  assert_non_null(row);
  for (int64_t b = 0; b < s->B; b++)
    for (int64_t h = 0; h < s->H; h++)
      for (int64_t t = 0; t < s->T; t++) {
        const float *qt = q + (b * s->T + t) * s->C + h * D;
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j <= t; j++) {
          const float *kj = k + (b * s->T + j) * s->C + h * D;
          double d = 0.0;
          for (int64_t e = 0; e < D; e++) d += (double)qt[e] * kj[e];
          row[j] = d * scale;
          if (row[j] > mx) mx = row[j];
        }
        memset(acc, 0, (size_t)D * sizeof *acc);
        for (int64_t j = 0; j <= t; j++) {
          double p = exp(row[j] - mx);
          sum += p;
          for (int64_t e = 0; e < D; e++) acc[e] += p * v[(b * s->T + j) * s->C + h * D + e];
        }
        for (int64_t e = 0; e < D; e++) y[(b * s->T + t) * s->C + h * D + e] = (float)(acc[e] / sum);
        lse[(b * s->H + h) * s->T + t] = (float)(mx + log(sum));
      }
  free(row);
}

/* The reference reverse in double from the forward's y and lse. */
static void ref_rev(const attn_shape *s, const float *q, const float *k, const float *v,
                    const float *y, const float *dy, const float *lse, float *dq, float *dk,
                    float *dv) {
  const int64_t D = s->C / s->H, n = s->B * s->T * s->C;
  const double scale = 1.0 / sqrt((double)D);
  double *g = calloc((size_t)(3 * n), sizeof *g), *gq = g, *gk = g + n, *gv = g + 2 * n;
  assert_non_null(g);
  for (int64_t b = 0; b < s->B; b++)
    for (int64_t h = 0; h < s->H; h++)
      for (int64_t t = 0; t < s->T; t++) {
        const int64_t ot = (b * s->T + t) * s->C + h * D;
        double dsum = 0.0;
        for (int64_t e = 0; e < D; e++) dsum += (double)dy[ot + e] * y[ot + e];
        for (int64_t j = 0; j <= t; j++) {
          const int64_t oj = (b * s->T + j) * s->C + h * D;
          double sc = 0.0, dp = 0.0;
          for (int64_t e = 0; e < D; e++) {
            sc += (double)q[ot + e] * k[oj + e];
            dp += (double)dy[ot + e] * v[oj + e];
          }
          double p = exp(sc * scale - lse[(b * s->H + h) * s->T + t]);
          double ds = p * (dp - dsum) * scale;
          for (int64_t e = 0; e < D; e++) {
            gq[ot + e] += ds * k[oj + e];
            gk[oj + e] += ds * q[ot + e];
            gv[oj + e] += p * dy[ot + e];
          }
        }
      }
  for (int64_t i = 0; i < n; i++) {
    dq[i] = (float)gq[i];
    dk[i] = (float)gk[i];
    dv[i] = (float)gv[i];
  }
  free(g);
}

static int same_bits(const float *a, const float *b, int64_t n) {
  return memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

/* Forward and reverse of one shape against the references (q, k, v in
 * [-span, span), dy in [-1, 1)); the reverse again with each proper subset of
 * (dq, dk, dv) must give the same bits. */
static void check_attention(const attn_shape *s, float span, uint64_t seed) {
  const int64_t n = s->B * s->T * s->C, nl = s->B * s->H * s->T;
  ct_rng r = {seed};
  float *h[4]; /* q, k, v, dy */
  for (int i = 0; i < 4; i++) {
    h[i] = host_alloc((size_t)n);
    ct_rng_fill(&r, h[i], n, i < 3 ? -span : -1.0f, i < 3 ? span : 1.0f); /* dy as ct_check's */
  }
  float *y = host_alloc((size_t)n), *lse = host_alloc((size_t)nl);
  float *ry = host_alloc((size_t)n), *rlse = host_alloc((size_t)nl);
  float *g[3], *rg[3], *sub = host_alloc((size_t)n);
  for (int i = 0; i < 3; i++) g[i] = host_alloc((size_t)n), rg[i] = host_alloc((size_t)n);

  float *dq_ = dev_from(h[0], (size_t)n), *dk_ = dev_from(h[1], (size_t)n),
        *dv_ = dev_from(h[2], (size_t)n), *ddy = dev_from(h[3], (size_t)n);
  float *dy_out = dev_from(NULL, (size_t)n), *saved = dev_from(NULL, (size_t)(2 * nl));
  ASSERT_CUDA(ct__cu_causal_attention_fwd(dq_, dk_, dv_, dy_out, saved, s->B, s->T, s->C, s->H, 0));
  to_host(y, dy_out, (size_t)n);
  to_host(lse, saved, (size_t)nl);
  ref_fwd(s, h[0], h[1], h[2], ry, rlse);
  double wy = ct_tol_ratio(y, ry, n), wl = ct_tol_ratio(lse, rlse, nl);

  float *dg[3];
  for (int i = 0; i < 3; i++) dg[i] = dev_from(NULL, (size_t)n);
  ASSERT_CUDA(ct__cu_causal_attention_rev(dq_, dk_, dv_, dy_out, ddy, saved, dg[0], dg[1], dg[2],
                                          s->B, s->T, s->C, s->H, 0));
  for (int i = 0; i < 3; i++) to_host(g[i], dg[i], (size_t)n);
  ref_rev(s, h[0], h[1], h[2], y, h[3], lse, rg[0], rg[1], rg[2]);
  double wg[3];
  for (int i = 0; i < 3; i++) wg[i] = ct_tol_ratio(g[i], rg[i], n);
  print_message("    B=%lld T=%lld C=%lld H=%lld (D=%lld) span %g: worst ratio y %.3g lse %.3g "
                "dq %.3g dk %.3g dv %.3g\n",
                (long long)s->B, (long long)s->T, (long long)s->C, (long long)s->H,
                (long long)(s->C / s->H), span, wy, wl, wg[0], wg[1], wg[2]);
  assert_true(wy <= 1.0 && wl <= 1.0 && wg[0] <= 1.0 && wg[1] <= 1.0 && wg[2] <= 1.0);

  /* Subsets: fresh NaN-filled outputs for the ones asked, NULL for the rest. */
  for (int mask = 1; mask < 7; mask++) {
    float *out[3];
    for (int i = 0; i < 3; i++) out[i] = mask >> i & 1 ? dev_from(NULL, (size_t)n) : NULL;
    ASSERT_CUDA(ct__cu_causal_attention_rev(dq_, dk_, dv_, dy_out, ddy, saved, out[0], out[1],
                                            out[2], s->B, s->T, s->C, s->H, 0));
    for (int i = 0; i < 3; i++) {
      if (!out[i]) continue;
      to_host(sub, out[i], (size_t)n);
      if (!same_bits(sub, g[i], n)) fail_msg("reverse with outputs mask %d: d%c differs", mask, "qkv"[i]);
      ASSERT_CUDA(cudaFree(out[i]));
    }
  }
  /* Nothing asked: nothing launched. */
  ASSERT_CUDA(ct__cu_causal_attention_rev(dq_, dk_, dv_, dy_out, ddy, saved, NULL, NULL, NULL,
                                          s->B, s->T, s->C, s->H, 0));

  float *dev[] = {dq_, dk_, dv_, ddy, dy_out, saved, dg[0], dg[1], dg[2]};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) ASSERT_CUDA(cudaFree(dev[i]));
  for (int i = 0; i < 4; i++) free(h[i]);
  for (int i = 0; i < 3; i++) free(g[i]), free(rg[i]);
  free(y), free(lse), free(ry), free(rlse), free(sub);
}

/* Every register tier (D <= 16, 32, 64, 128) at and around its bound, and the
 * fallback beyond, with T at, below and just past a multiple of the tile (32). */
static void test_causal_attention_tiers(void **state) {
  static const attn_shape shapes[] = {
      {1, 2, 8, 8},   /* D = 1 */
      {2, 32, 64, 4}, /* D = 16, T one tile */
      {1, 33, 17, 1}, /* D = 17 */
      {2, 31, 64, 2}, /* D = 32 */
      {1, 64, 33, 1}, /* D = 33, T two tiles */
      {1, 45, 64, 1}, /* D = 64 */
      {2, 20, 130, 2},
      {1, 40, 96, 1},  /* D = 96: a part second chunk */
      {1, 35, 128, 1}, /* D = 128 */
      {1, 37, 129, 1}, /* D = 129: fallback */
      {1, 65, 256, 2},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    check_attention(&shapes[i], 1.0f, 500 + i);
}

/* Head widths up to 1030 (not a multiple of 4 or of the chunk), and sharp rows
 * (the scores' float sums set the error: larger spans and widths approach the
 * tolerance, as cuBLAS's float products do on the unfused path). */
static void test_causal_attention_wide_heads(void **state) {
  static const attn_shape wide[] = {{1, 40, 1024, 1}, {2, 34, 2060, 2}, {1, 9, 3000, 3}};
  for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) check_attention(&wide[i], 1.0f, 600 + i);
  static const attn_shape sharp[] = {{1, 70, 64, 1}, {2, 40, 48, 3}, {1, 50, 160, 1}};
  for (size_t i = 0; i < sizeof sharp / sizeof sharp[0]; i++)
    check_attention(&sharp[i], i < 2 ? 4.0f : 2.0f, 700 + i);
}

/* The same launch twice gives the same bits (no atomics, fixed sums). */
static void test_causal_attention_deterministic(void **state) {
  const attn_shape s = {2, 77, 96, 3};
  const int64_t n = s.B * s.T * s.C, nl = s.B * s.H * s.T;
  ct_rng r = {800};
  float *h = host_alloc((size_t)n), *a = host_alloc((size_t)n), *b = host_alloc((size_t)n);
  ct_rng_fill(&r, h, n, -2.0f, 2.0f);
  float *x = dev_from(h, (size_t)n), *y = dev_from(NULL, (size_t)n),
        *saved = dev_from(NULL, (size_t)(2 * nl)), *dx[2][3];
  ASSERT_CUDA(ct__cu_causal_attention_fwd(x, x, x, y, saved, s.B, s.T, s.C, s.H, 0));
  for (int run = 0; run < 2; run++) {
    for (int i = 0; i < 3; i++) dx[run][i] = dev_from(NULL, (size_t)n);
    ASSERT_CUDA(ct__cu_causal_attention_rev(x, x, x, y, x, saved, dx[run][0], dx[run][1],
                                            dx[run][2], s.B, s.T, s.C, s.H, 0));
  }
  for (int i = 0; i < 3; i++) {
    to_host(a, dx[0][i], (size_t)n);
    to_host(b, dx[1][i], (size_t)n);
    assert_true(same_bits(a, b, n));
    for (int run = 0; run < 2; run++) ASSERT_CUDA(cudaFree(dx[run][i]));
  }
  ASSERT_CUDA(cudaFree(x));
  ASSERT_CUDA(cudaFree(y));
  ASSERT_CUDA(cudaFree(saved));
  free(h), free(a), free(b);
}

/* ---- kv_attention ------------------------------------------------------------------ */

typedef struct kv_shape {
  int64_t B, T, H, L, D;
} kv_shape;

/* The reference in double, on host caches (updated in place) with the launch
 * function's documented semantics: rows at a position outside [0, L) are not
 * written and their output rows are zero; the last of equal positions wins. */
static void ref_kv(const kv_shape *s, const float *q, const float *k, const float *v,
                   const int32_t *pos, float *kc, float *vc, float *y) {
  const int64_t C = s->H * s->D, D = s->D;
  const double scale = 1.0 / sqrt((double)D);
  for (int64_t bt = 0; bt < s->B * s->T; bt++) {
    if (pos[bt] < 0 || pos[bt] >= s->L) continue;
    for (int64_t h = 0; h < s->H; h++) {
      const int64_t o = ((bt / s->T * s->H + h) * s->L + pos[bt]) * D;
      memcpy(kc + o, k + bt * C + h * D, (size_t)D * sizeof *kc);
      memcpy(vc + o, v + bt * C + h * D, (size_t)D * sizeof *vc);
    }
  }
  double *row = malloc((size_t)(s->L + D + 1) * sizeof *row), *acc = row + s->L + 1;
  assert_non_null(row);
  for (int64_t bt = 0; bt < s->B * s->T; bt++)
    for (int64_t h = 0; h < s->H; h++) {
      const int64_t p = pos[bt];
      float *yr = y + bt * C + h * D;
      if (p < 0 || p >= s->L) {
        for (int64_t d = 0; d < D; d++) yr[d] = 0.0f;
        continue;
      }
      const float *qr = q + bt * C + h * D;
      const float *kh = kc + (bt / s->T * s->H + h) * s->L * D, *vh = vc + (kh - kc);
      double mx = -INFINITY, sum = 0.0;
      for (int64_t j = 0; j <= p; j++) {
        double dot = 0.0;
        for (int64_t d = 0; d < D; d++) dot += (double)qr[d] * kh[j * D + d];
        row[j] = dot * scale;
        if (row[j] > mx) mx = row[j];
      }
      memset(acc, 0, (size_t)D * sizeof *acc);
      for (int64_t j = 0; j <= p; j++) {
        double w = exp(row[j] - mx);
        sum += w;
        for (int64_t d = 0; d < D; d++) acc[d] += w * vh[j * D + d];
      }
      for (int64_t d = 0; d < D; d++) yr[d] = (float)(acc[d] / sum);
    }
  free(row);
}

/* One launch at positions pos over caches whose rows [0, before[b]) of every head
 * hold earlier values and every other row is NaN (cudasim's fresh memory): y
 * within tolerance, the caches bit for bit (a NaN read from a row past p would
 * make y NaN), the error record empty; a second launch on fresh caches gives
 * the same bits. */
static void check_kv(const kv_shape *s, const int32_t *pos, const int64_t *before, float span,
                     uint64_t seed) {
  const int64_t C = s->H * s->D, n = s->B * s->T * C, nc = s->B * s->H * s->L * s->D;
  ct_rng r = {seed};
  float *h[3];
  for (int i = 0; i < 3; i++) {
    h[i] = host_alloc((size_t)n);
    ct_rng_fill(&r, h[i], n, -span, span);
  }
  float *kc = host_alloc((size_t)nc), *vc = host_alloc((size_t)nc);
  memset(kc, 0xff, (size_t)nc * sizeof *kc);
  memset(vc, 0xff, (size_t)nc * sizeof *vc);
  for (int64_t b = 0; b < s->B; b++)
    for (int64_t hh = 0; hh < s->H; hh++) {
      const int64_t o = (b * s->H + hh) * s->L * s->D;
      ct_rng_fill(&r, kc + o, before[b] * s->D, -span, span);
      ct_rng_fill(&r, vc + o, before[b] * s->D, -span, span);
    }
  float *y = host_alloc((size_t)n), *ry = host_alloc((size_t)n);
  float *gk = host_alloc((size_t)nc), *gv = host_alloc((size_t)nc);
  float *first = host_alloc((size_t)n);
  void *dpos = NULL;
  ASSERT_CUDA(cudaMalloc(&dpos, (size_t)(s->B * s->T) * sizeof(int32_t)));
  ASSERT_CUDA(cudaMemcpy(dpos, pos, (size_t)(s->B * s->T) * sizeof(int32_t),
                         cudaMemcpyHostToDevice));
  ct__cu_errrec *err = NULL, rec;
  ASSERT_CUDA(cudaMalloc((void **)&err, sizeof *err));
  ASSERT_CUDA(cudaMemset(err, 0, sizeof *err));
  float *dq = dev_from(h[0], (size_t)n), *dk = dev_from(h[1], (size_t)n),
        *dv = dev_from(h[2], (size_t)n), *part = dev_from(NULL, (size_t)CT__CU_KV_PARTIALS);
  for (int run = 0; run < 2; run++) {
    float *dkc = dev_from(kc, (size_t)nc), *dvc = dev_from(vc, (size_t)nc);
    float *dy = dev_from(NULL, (size_t)n);
    ASSERT_CUDA(ct__cu_kv_attention_fwd(dq, dk, dv, dpos, dkc, dvc, dy, part, s->B, s->T, s->H,
                                        s->L, s->D, err, 3, 4, 0));
    to_host(run ? y : first, dy, (size_t)n);
    to_host(gk, dkc, (size_t)nc);
    to_host(gv, dvc, (size_t)nc);
    ASSERT_CUDA(cudaFree(dkc));
    ASSERT_CUDA(cudaFree(dvc));
    ASSERT_CUDA(cudaFree(dy));
  }
  ASSERT_CUDA(cudaMemcpy(&rec, err, sizeof rec, cudaMemcpyDeviceToHost));
  ref_kv(s, h[0], h[1], h[2], pos, kc, vc, ry);
  const double wy = ct_tol_ratio(y, ry, n);
  print_message("    B=%lld T=%lld H=%lld L=%lld D=%lld span %g: worst ratio y %.3g\n",
                (long long)s->B, (long long)s->T, (long long)s->H, (long long)s->L,
                (long long)s->D, span, wy);
  assert_true(wy <= 1.0);
  assert_int_equal(rec.flag, 0);
  if (!same_bits(gk, kc, nc) || !same_bits(gv, vc, nc)) fail_msg("the caches differ");
  if (!same_bits(first, y, n)) fail_msg("two launches differ");
  float *dev[] = {dq, dk, dv, part};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) ASSERT_CUDA(cudaFree(dev[i]));
  ASSERT_CUDA(cudaFree(dpos));
  ASSERT_CUDA(cudaFree(err));
  for (int i = 0; i < 3; i++) free(h[i]);
  free(kc), free(vc), free(y), free(ry), free(gk), free(gv), free(first);
}

/* Positions before[b] + t for each batch row (the decoder's). */
static void check_kv_run(const kv_shape *s, const int64_t *before, float span, uint64_t seed) {
  int32_t *pos = malloc((size_t)(s->B * s->T) * sizeof *pos);
  assert_non_null(pos);
  for (int64_t i = 0; i < s->B * s->T; i++) pos[i] = (int32_t)(before[i / s->T] + i % s->T);
  check_kv(s, pos, before, span, seed);
  free(pos);
}

/* Decoding steps (T = 1): a head split across chunks and merged, at positions at
 * the chunk bounds, the first and the last; every register tier and the passes
 * of wide heads. */
static void test_kv_attention_decode(void **state) {
  const kv_shape one = {1, 1, 4, 1024, 64};
  const int64_t at[] = {0, 1, 63, 64, 65, 500, 1023};
  for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) check_kv_run(&one, &at[i], 1.0f, 900 + i);
  static const kv_shape tiers[] = {
      {3, 1, 2, 300, 1}, {2, 1, 3, 130, 17}, {2, 1, 2, 200, 32}, {1, 1, 2, 257, 33},
      {1, 1, 1, 129, 100}, {1, 1, 2, 150, 128}, {1, 1, 1, 99, 200}, {1, 1, 1, 70, 300},
      {1, 1, 1, 40, 1030},
  };
  for (size_t i = 0; i < sizeof tiers / sizeof tiers[0]; i++) {
    const int64_t before[3] = {tiers[i].L - 1, tiers[i].L / 2, 0};
    check_kv_run(&tiers[i], before, 1.0f, 920 + i);
  }
  const int64_t sharp[2] = {700, 77}; /* large scores: the merge's rescaling matters */
  const kv_shape s = {2, 1, 2, 1000, 48};
  check_kv_run(&s, sharp, 4.0f, 940);
}

/* Prefill (T > 1): every row's k and v are written before any row attends; rows in
 * decoder order, out of order, and with equal positions (the last row wins). */
static void test_kv_attention_prefill(void **state) {
  static const kv_shape shapes[] = {{2, 37, 3, 100, 16}, {1, 64, 2, 64, 64}, {2, 9, 2, 300, 130}};
  const int64_t before[3][2] = {{0, 20}, {0, 0}, {250, 3}};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    check_kv_run(&shapes[i], before[i], 1.0f, 960 + i);
  /* rows 10..13 and 70..75 are written by this launch, over earlier rows 0..9 and 0..69 */
  const kv_shape s = {2, 6, 2, 90, 24};
  const int32_t pos[12] = {12, 10, 11, 11, 13, 10, /* */ 75, 70, 74, 71, 73, 72};
  const int64_t held[2] = {10, 70};
  check_kv(&s, pos, held, 1.0f, 970);
}

/* Positions outside [0, L): recorded as kind 2 at the lowest bad index (the
 * position's index in [B, T]), the bad rows not written, their rows of y zero;
 * the good rows as usual. T = 1 (one kernel) and T > 1 (the write kernel first). */
static void test_kv_attention_bad_positions(void **state) {
  static const kv_shape shapes[] = {{4, 1, 2, 70, 8}, {2, 3, 2, 70, 8}};
  static const int32_t pos[2][6] = {{5, -1, 70, 6}, {0, 1, 2, 0, 70, -3}};
  const int64_t want_index[2] = {1, 4};
  for (int c = 0; c < 2; c++) {
    const kv_shape *s = &shapes[c];
    const int64_t C = s->H * s->D, n = s->B * s->T * C, nc = s->B * s->H * s->L * s->D;
    ct_rng r = {980 + (uint64_t)c};
    float *x = host_alloc((size_t)n), *y = host_alloc((size_t)n), *ry = host_alloc((size_t)n);
    float *kc = host_alloc((size_t)nc), *vc = host_alloc((size_t)nc), *g = host_alloc((size_t)nc);
    ct_rng_fill(&r, x, n, -1.0f, 1.0f);
    ct_rng_fill(&r, kc, nc, -1.0f, 1.0f); /* every row written earlier */
    memcpy(vc, kc, (size_t)nc * sizeof *vc);
    void *dpos = NULL;
    ct__cu_errrec *err = NULL, rec;
    ASSERT_CUDA(cudaMalloc(&dpos, sizeof pos[c]));
    ASSERT_CUDA(cudaMemcpy(dpos, pos[c], sizeof pos[c], cudaMemcpyHostToDevice));
    ASSERT_CUDA(cudaMalloc((void **)&err, sizeof *err));
    ASSERT_CUDA(cudaMemset(err, 0, sizeof *err));
    float *dx = dev_from(x, (size_t)n), *dy = dev_from(NULL, (size_t)n),
          *dkc = dev_from(kc, (size_t)nc), *dvc = dev_from(vc, (size_t)nc),
          *part = dev_from(NULL, (size_t)CT__CU_KV_PARTIALS);
    ASSERT_CUDA(ct__cu_kv_attention_fwd(dx, dx, dx, dpos, dkc, dvc, dy, part, s->B, s->T, s->H,
                                        s->L, s->D, err, 7, 21, 0));
    to_host(y, dy, (size_t)n);
    ASSERT_CUDA(cudaMemcpy(&rec, err, sizeof rec, cudaMemcpyDeviceToHost));
    ref_kv(s, x, x, x, pos[c], kc, vc, ry);
    assert_int_equal(rec.flag, 8);
    assert_int_equal(rec.node, 7);
    assert_int_equal(rec.op, 21);
    assert_int_equal(rec.kind, 2);
    assert_int_equal(rec.limit, s->L);
    const unsigned long long key = ~rec.nkey;
    assert_int_equal((long long)(key >> 32), want_index[c]);
    assert_int_equal((int32_t)(uint32_t)(key & 0xffffffffull), pos[c][want_index[c]]);
    assert_true(ct_tol_ratio(y, ry, n) <= 1.0);
    to_host(g, dkc, (size_t)nc);
    if (!same_bits(g, kc, nc)) fail_msg("shape %d: the key cache differs", c);
    float *dev[] = {dx, dy, dkc, dvc, part};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) ASSERT_CUDA(cudaFree(dev[i]));
    ASSERT_CUDA(cudaFree(dpos));
    ASSERT_CUDA(cudaFree(err));
    free(x), free(y), free(ry), free(kc), free(vc), free(g);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_causal_attention_tiers),
      cmocka_unit_test(test_causal_attention_wide_heads),
      cmocka_unit_test(test_causal_attention_deterministic),
      cmocka_unit_test(test_kv_attention_decode),
      cmocka_unit_test(test_kv_attention_prefill),
      cmocka_unit_test(test_kv_attention_bad_positions),
  };
  return CT_RUN_TESTS("cuda_kernels", tests, NULL, NULL);
}
