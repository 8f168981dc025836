/* SPDX-License-Identifier: MIT */
/* CUDA kernels of the cuda backend, behind plain C launch functions. Every
 * function queues its work on the given stream, launches nothing when there is
 * nothing to do, and returns cudaGetLastError() (cudaSuccess when nothing was
 * launched). Matrices are row-major; sizes are element counts. */
#ifndef CTML_CUDA_KERNELS_H
#define CTML_CUDA_KERNELS_H

#include <stdint.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The first id out of range found on the device since the record was last
 * cleared (all zero bytes = no error). flag holds node + 1 of the launch that
 * found it; later launches of other nodes leave the record alone. Within that
 * launch the lowest position wins: nkey is the maximum of
 * ~((position << 32) | (uint32_t)value) over the bad ids (positions beyond
 * 2^32 - 2 are reported as 4294967295). */
typedef struct ct__cu_errrec {
  int flag;
  int node, op, kind; /* kind 0: token id, 1: target id, 2: position */
  long long limit;
  unsigned long long nkey;
} ct__cu_errrec;

/* Blocks (and per-block partial sums) used by the loss reductions. */
#define CT__CU_PARTIALS 1024
/* Doubles of scratch for layer norm's per-chunk parameter-gradient sums (4 MiB). */
#define CT__CU_LN_PARTIALS ((int64_t)1 << 19)
/* Floats of scratch for kv_attention's per-chunk partials (1 MiB). */
#define CT__CU_KV_PARTIALS ((int64_t)1 << 18)

/* Slots of the optimizer's device record; the same numbers as CT__HYPER_* in
 * src/backend_impl.h (cuda_backend.c checks that they agree). */
#define CT__CU_HYPER_STEP    0
#define CT__CU_HYPER_LR      1
#define CT__CU_HYPER_BC1     2
#define CT__CU_HYPER_BC2     3
#define CT__CU_HYPER_SCALE   4
#define CT__CU_HYPER_NORM    5
#define CT__CU_HYPER_PEAK_LR 8
#define CT__CU_HYPER_MIN_LR  9
#define CT__CU_HYPER_WARMUP  10
#define CT__CU_HYPER_TOTAL   11
#define CT__CU_HYPER_CLIP    12
#define CT__CU_HYPER_BETA1   13
#define CT__CU_HYPER_BETA2   14
#define CT__CU_HYPER_EPS     15
#define CT__CU_HYPER_WD      16

/* x[0..n) = value. */
cudaError_t ct__cu_fill(float *x, float value, int64_t n, cudaStream_t s);
/* z = x + y over n elements. */
cudaError_t ct__cu_add(const float *x, const float *y, float *z, int64_t n, cudaStream_t s);
/* y[n, width] = table[ids[i], :]; an id outside [0, vocab) is recorded (kind 0)
 * and its row of y is zeroed. */
cudaError_t ct__cu_embedding_fwd(const int32_t *ids, const float *table, float *y, int64_t n,
                                 int64_t vocab, int64_t width, ct__cu_errrec *err, int node,
                                 int op, cudaStream_t s);
/* dtable[ids[i], :] += dy[i, :] in increasing i (deterministic); ids outside
 * [0, vocab) are skipped. */
cudaError_t ct__cu_embedding_rev(const int32_t *ids, const float *dy, float *dtable, int64_t n,
                                 int64_t vocab, int64_t width, cudaStream_t s);
/* Every row of y[rows, m] = b[m]. */
cudaError_t ct__cu_bias_rows(const float *b, float *y, int64_t rows, int64_t m, cudaStream_t s);
/* y = softmax of each row of x[rows, c], max-subtracted. */
cudaError_t ct__cu_softmax_fwd(const float *x, float *y, int64_t rows, int64_t c, cudaStream_t s);
/* dx = y * (dy - rowsum(dy * y)). */
cudaError_t ct__cu_softmax_rev(const float *y, const float *dy, float *dx, int64_t rows, int64_t c,
                               cudaStream_t s);
/* loss[0] = mean over rows of -ln max(p[i, t[i]], 1e-9); a target outside
 * [0, c) is recorded (kind 1) and its row skipped. partials holds
 * CT__CU_PARTIALS doubles of scratch. */
cudaError_t ct__cu_xent_fwd(const float *p, const int32_t *t, float *loss, double *partials,
                            int64_t rows, int64_t c, ct__cu_errrec *err, int node, int op,
                            cudaStream_t s);
/* dp = 0 except dp[i, t[i]] = -dloss[0] / rows / p[i, t[i]] where that
 * probability is above 1e-9; dloss is a device pointer. */
cudaError_t ct__cu_xent_rev(const float *p, const int32_t *t, const float *dloss, float *dp,
                            int64_t rows, int64_t c, cudaStream_t s);
/* probs = softmax(x); loss[0] = mean over rows of -max(x[i, t[i]] - lse_i, ln 1e-9);
 * targets are checked as in ct__cu_xent_fwd. */
cudaError_t ct__cu_softmax_xent_fwd(const float *x, const int32_t *t, float *probs, float *loss,
                                    double *partials, int64_t rows, int64_t c,
                                    ct__cu_errrec *err, int node, int op, cudaStream_t s);
/* dx = dloss[0] / rows * (probs - onehot(t)); zero on rows whose target
 * probability is at most 1e-9 or whose target is out of range. */
cudaError_t ct__cu_softmax_xent_rev(const float *probs, const int32_t *t, const float *dloss,
                                    float *dx, int64_t rows, int64_t c, cudaStream_t s);

/* Sequence generators. Layouts: SEQ [B,T,C], HEADS [B,H,T,D], score and
 * attention matrices [batch, T, T]. */
/* y[b,t,c] = x[b,t,c] + P[t,c] for x, y [B,T,C]. */
cudaError_t ct__cu_pos_embedding_fwd(const float *x, const float *P, float *y, int64_t B,
                                     int64_t T, int64_t C, cudaStream_t s);
/* dP[t,c] += sum over b of dy[b,t,c] (b in increasing order, double accumulator). */
cudaError_t ct__cu_pos_embedding_rev(const float *dy, float *dP, int64_t B, int64_t T, int64_t C,
                                     cudaStream_t s);
/* y = (x - mean) * rstd * g + b per row of x[rows, n]; saved = mean[rows] then rstd[rows]. */
cudaError_t ct__cu_layernorm_fwd(const float *x, const float *g, const float *b, float *y,
                                 float *saved, int64_t rows, int64_t n, cudaStream_t s);
/* dx (overwritten; skipped when NULL) from statistics recomputed from x;
 * dg += column sums of dy * xhat and db += column sums of dy (each skipped when
 * NULL), xhat from the saved statistics; fixed summation order (chunks of rows,
 * then the chunks in order); part holds CT__CU_LN_PARTIALS doubles of scratch. */
cudaError_t ct__cu_layernorm_rev(const float *x, const float *g, const float *dy,
                                 const float *saved, float *dx, float *dg, float *db, double *part,
                                 int64_t rows, int64_t n, cudaStream_t s);
/* s = x + r, then layer norm of s as ct__cu_layernorm_fwd (y, saved), in one kernel. */
cudaError_t ct__cu_add_layernorm_fwd(const float *x, const float *r, const float *g,
                                     const float *b, float *sum, float *y, float *saved,
                                     int64_t rows, int64_t n, cudaStream_t s);
/* dx = dr = ds + layernorm's dx at sum from dy (statistics recomputed from sum),
 * written to each of dx, dr that is not NULL; dg and db as ct__cu_layernorm_rev
 * with sum as its x. */
cudaError_t ct__cu_add_layernorm_rev(const float *sum, const float *g, const float *ds,
                                     const float *dy, const float *saved, float *dx, float *dr,
                                     float *dg, float *db, double *part, int64_t rows,
                                     int64_t n, cudaStream_t s);
/* y = gelu(x) (tanh approximation) over n elements. */
cudaError_t ct__cu_gelu_fwd(const float *x, float *y, int64_t n, cudaStream_t s);
/* dx = dy * gelu'(x). */
cudaError_t ct__cu_gelu_rev(const float *x, const float *dy, float *dx, int64_t n, cudaStream_t s);
/* linear_gelu's pass after the product: u[rows, m] += b on every row (b may be NULL),
 * then y = gelu(u); u keeps the pre-activation. */
cudaError_t ct__cu_bias_gelu(float *u, const float *b, float *y, int64_t rows, int64_t m,
                             cudaStream_t s);
/* qkv's forward before its batched product: ptrs (9 device pointers) = (w[0..3), x, x, x,
 * out[0..3)), then, when b[0] is not NULL, every row of out[j] (rows x m) = b[j]. */
cudaError_t ct__cu_qkv_prep(const float **ptrs, const float *x, const float *const *w,
                            float *const *out, const float *const *b, int64_t rows, int64_t m,
                            cudaStream_t s);
/* y[b,h,t,d] = x[b,t,h*D+d]: SEQ [B,T,H*D] to HEADS [B,H,T,D]. */
cudaError_t ct__cu_head_split(const float *x, float *y, int64_t B, int64_t H, int64_t T, int64_t D,
                              cudaStream_t s);
/* y[b,t,h*D+d] = x[b,h,t,d]: HEADS [B,H,T,D] to SEQ [B,T,H*D]. */
cudaError_t ct__cu_head_merge(const float *x, float *y, int64_t B, int64_t H, int64_t T, int64_t D,
                              cudaStream_t s);
/* dst = src over [batch, T, T] with entries j > i zeroed; dst may be src. */
cudaError_t ct__cu_causal_mask(const float *src, float *dst, int64_t batch, int64_t T,
                               cudaStream_t s);
/* Row r of x[rows, T]: softmax of entries j <= r % T (max-subtracted), 0 beyond. */
cudaError_t ct__cu_causal_softmax_fwd(const float *x, float *y, int64_t rows, int64_t T,
                                      cudaStream_t s);
/* dx = y (dy - sum_{j <= r % T} dy y) for j <= r % T, 0 beyond. */
cudaError_t ct__cu_causal_softmax_rev(const float *y, const float *dy, float *dx, int64_t rows,
                                      int64_t T, cudaStream_t s);
/* Fused causal attention on SEQ [B,T,C] q, k, v with H heads of width D = C/H
 * (H divides C), scale 1/sqrt(D): y[t] = sum over s <= t of P[t,s] v[s] per head,
 * P = softmax over s <= t of scale q[t].k[s]; lse[(b*H + h)*T + t] = log of the
 * softmax's denominator (max-subtracted). The scores are never stored. */
cudaError_t ct__cu_causal_attention_fwd(const float *q, const float *k, const float *v, float *y,
                                        float *lse, int64_t B, int64_t T, int64_t C, int64_t H,
                                        cudaStream_t s);
/* Its reverse from q, k, v, y, dy and lse = saved[0, B*H*T); saved[B*H*T, 2*B*H*T)
 * receives Dsum[t] = dy[t].y[t] per head. Writes (does not accumulate) dq, dk,
 * dv, each skipped when NULL. Deterministic: no atomics. */
cudaError_t ct__cu_causal_attention_rev(const float *q, const float *k, const float *v,
                                        const float *y, const float *dy, float *saved, float *dq,
                                        float *dk, float *dv, int64_t B, int64_t T, int64_t C,
                                        int64_t H, cudaStream_t s);
/* kv_attention: q, k, v, y SEQ [B,T,H*D], positions pos [B,T], caches kc, vc
 * [B,H,L,D]. First every row's k and v go to the caches at [b, h, pos[b,t], :]
 * (of rows of one batch row with the same position, the last); then
 * y[b,t,h*D+d] = sum over s <= p of softmax_s(scale q[b,t,h].kc[b,h,s]) vc[b,h,s,d],
 * p = pos[b,t], scale 1/sqrt(D). A position outside [0, L) is recorded (kind 2):
 * its row is not written to the caches and its row of y is zero. part holds
 * CT__CU_KV_PARTIALS floats of scratch. Deterministic: no atomics on data. */
cudaError_t ct__cu_kv_attention_fwd(const float *q, const float *k, const float *v,
                                    const int32_t *pos, float *kc, float *vc, float *y,
                                    float *part, int64_t B, int64_t T, int64_t H, int64_t L,
                                    int64_t D, ct__cu_errrec *err, int node, int op,
                                    cudaStream_t s);

/* Optimizer. Every number is read from the device record hyper; the trainer
 * passes whole arenas (every gradient, every parameter) in one launch each. */
/* out[0] = (float) sum of x[i]^2 in a fixed order (double accumulators);
 * partials holds CT__CU_PARTIALS doubles of scratch. */
cudaError_t ct__cu_sumsq(const float *x, int64_t n, double *partials, float *out, cudaStream_t s);
/* One thread: the step kernel of src/backend_impl.h on hyper, reading sumsq[0..n). */
cudaError_t ct__cu_hyper_step(float *hyper, const float *sumsq, int n, const ct__cu_errrec *err,
                              cudaStream_t s);
/* p -= lr (g scale), unless the error record holds an error. */
cudaError_t ct__cu_sgd_update(const float *hyper, float *p, const float *g, int64_t n,
                              const ct__cu_errrec *err, cudaStream_t s);
/* AdamW with state m[n] then v[n]; elements [0, n_decay) take weight decay.
 * Nothing while the error record holds an error. */
cudaError_t ct__cu_adamw_update(const float *hyper, float *p, const float *g, float *state,
                                int64_t n, int64_t n_decay, const ct__cu_errrec *err,
                                cudaStream_t s);

/* Loads every kernel (none may first load inside a graph capture on older drivers). */
cudaError_t ct__cu_preload(void);

#ifdef __cplusplus
}
#endif
#endif
