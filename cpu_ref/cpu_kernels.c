/* SPDX-License-Identifier: MIT */
/* The reference kernels: plain, deterministic loops with double accumulators.
 * They are the oracle the device backends are checked against. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_kernels.h"

/* Probabilities below this are clamped in the cross-entropies: -ln max(p, 1e-9). */
#define CT__P_FLOOR 1e-9

/* max(x, floor) that lets NaN through (fmax would hide it), so a NaN loss is reported. */
static double ct__clamp_below(double x, double floor) { return x < floor ? floor : x; }

/* C[M,N] = beta*C + op(A) . op(B) (+ bias[N]); op(A) is M x K, op(B) is K x N.
 * A is stored M x K, or K x M when ta; B is K x N, or N x K when tb. Each
 * output is bias + sum over k = 0, 1, ..., K-1 of a(i,k) b(k,j) in double, in
 * that order; a row of double accumulators keeps the inner loop contiguous. */
static void ct__gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A,
                     const float *B, const float *bias, float beta, float *C) {
  double *acc = malloc((size_t)(N > 0 ? N : 1) * sizeof *acc);
  float *bt = tb ? malloc((size_t)(K * N > 0 ? K * N : 1) * sizeof *bt) : NULL;
  if (!acc || (tb && !bt)) { /* out of memory: the same sums, one output at a time */
    free(acc);
    free(bt);
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double s = bias ? bias[j] : 0.0;
        for (int64_t k = 0; k < K; k++)
          s += (double)(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
        float *c = &C[i * N + j];
        *c = beta == 0.0f ? (float)s : (float)(beta * (double)*c + s);
      }
    return;
  }
  if (tb) /* B^T as K x N rows */
    for (int64_t j = 0; j < N; j++)
      for (int64_t k = 0; k < K; k++) bt[k * N + j] = B[j * K + k];
  const float *b = tb ? bt : B;
  for (int64_t i = 0; i < M; i++) {
    for (int64_t j = 0; j < N; j++) acc[j] = bias ? bias[j] : 0.0;
    for (int64_t k = 0; k < K; k++) {
      double av = ta ? A[k * M + i] : A[i * K + k];
      const float *br = &b[k * N];
      for (int64_t j = 0; j < N; j++) acc[j] += av * br[j];
    }
    float *c = &C[i * N];
    for (int64_t j = 0; j < N; j++)
      c[j] = beta == 0.0f ? (float)acc[j] : (float)(beta * (double)c[j] + acc[j]);
  }
  free(acc);
  free(bt);
}

/* Checks ids against [0, limit); names the generator, position and value. */
ct_status ct__cpu_check_ids(const int32_t *ids, int64_t n, int64_t limit, const char *what) {
  for (int64_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= limit)
      return ct__fail(CT_ERR_RANGE, "%s %d at position %lld is outside [0, %lld)", what, ids[i],
                      (long long)i, (long long)limit);
  return CT_OK;
}

ct_status ct__cpu_embedding_fwd(void *ctx, const ct__kargs *a) {
  const int32_t *ids = a->in[0];
  const float *table = a->param[0];
  float *y = a->out[0];
  int64_t n = ct_object_numel(a->in_obj[0]), vocab = a->param_obj[0]->dims[0],
          width = a->param_obj[0]->dims[1];
  CT__TRY(ct__cpu_check_ids(ids, n, vocab, "token id"));
  for (int64_t i = 0; i < n; i++)
    memcpy(&y[i * width], &table[(int64_t)ids[i] * width], (size_t)width * sizeof(float));
  return CT_OK;
}

ct_status ct__cpu_embedding_rev(void *ctx, const ct__kargs *a) {
  const int32_t *ids = a->in[0];
  const float *dy = a->dout[0];
  float *dtable = a->dparam[0];
  int64_t n = ct_object_numel(a->in_obj[0]), width = a->param_obj[0]->dims[1];
  if (!dtable) return CT_OK; /* ids were checked by the forward of this run */
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < width; j++) dtable[(int64_t)ids[i] * width + j] += dy[i * width + j];
  return CT_OK;
}

ct_status ct__cpu_linear_fwd(void *ctx, const ct__kargs *a) {
  int64_t rows = ct__rows(a->in_obj[0]), k = ct__cols(a->in_obj[0]),
          m = ct__cols(a->out_obj[0]);
  ct__gemm(0, 0, rows, m, k, a->in[0], a->param[0], a->n_params > 1 ? a->param[1] : NULL, 0.0f,
           a->out[0]);
  return CT_OK;
}

/* linear's reverse from the output cotangent dy: dx = dy W^T + dx_beta dx,
 * dW += x^T dy, db += column sums of dy. */
static void ct__linear_rev_from(const ct__kargs *a, const float *dy, float dx_beta) {
  int64_t rows = ct__rows(a->in_obj[0]), k = ct__cols(a->in_obj[0]),
          m = ct__cols(a->out_obj[0]);
  if (a->din[0]) ct__gemm(0, 1, rows, k, m, dy, a->param[0], NULL, dx_beta, a->din[0]); /* dy W^T */
  if (a->dparam[0]) ct__gemm(1, 0, k, m, rows, a->in[0], dy, NULL, 1.0f, a->dparam[0]); /* x^T dy */
  if (a->n_params > 1 && a->dparam[1]) {
    float *db = a->dparam[1];
    for (int64_t j = 0; j < m; j++) {
      double acc = 0.0;
      for (int64_t i = 0; i < rows; i++) acc += dy[i * m + j];
      db[j] = (float)((double)db[j] + acc);
    }
  }
}

ct_status ct__cpu_linear_rev(void *ctx, const ct__kargs *a) {
  ct__linear_rev_from(a, a->dout[0], 0.0f);
  return CT_OK;
}

/* saved = [du | u] (see ops.c): u = x W + b, y = gelu(u). */
ct_status ct__cpu_linear_gelu_fwd(void *ctx, const ct__kargs *a) {
  int64_t rows = ct__rows(a->in_obj[0]), k = ct__cols(a->in_obj[0]),
          m = ct__cols(a->out_obj[0]);
  float *u = (float *)a->saved + rows * m;
  ct__gemm(0, 0, rows, m, k, a->in[0], a->param[0], a->n_params > 1 ? a->param[1] : NULL, 0.0f,
           u);
  ct__cpu_gelu_span(u, a->out[0], rows * m);
  return CT_OK;
}

/* du = dy gelu'(u) into the scratch, then linear's reverse from du. */
ct_status ct__cpu_linear_gelu_rev(void *ctx, const ct__kargs *a) {
  int64_t n = ct__rows(a->in_obj[0]) * ct__cols(a->out_obj[0]);
  float *du = a->saved;
  ct__cpu_gelu_grad_span(du + n, a->dout[0], du, n);
  ct__linear_rev_from(a, du, 0.0f);
  return CT_OK;
}

/* The three products of x with Wq, Wk, Wv (plus biases), as linear's. */
ct_status ct__cpu_qkv_fwd(void *ctx, const ct__kargs *a) {
  for (int j = 0; j < 3; j++) {
    ct__kargs p = ct__qkv_part(a, j);
    CT__TRY(ct__cpu_linear_fwd(ctx, &p));
  }
  return CT_OK;
}

/* dx = dq Wq^T + dk Wk^T + dv Wv^T (the first overwrites, the others add); each
 * weight and bias gets linear's gradient from its own output's cotangent. */
ct_status ct__cpu_qkv_rev(void *ctx, const ct__kargs *a) {
  for (int j = 0; j < 3; j++) {
    ct__kargs p = ct__qkv_part(a, j);
    ct__linear_rev_from(&p, p.dout[0], j ? 1.0f : 0.0f);
  }
  return CT_OK;
}

/* y = softmax(x) over one row of c entries, max-subtracted; returns ln sum exp(x). */
static double ct__softmax_row(const float *x, float *y, int64_t c) {
  double mx = x[0], sum = 0.0;
  for (int64_t j = 1; j < c; j++)
    if (x[j] > mx) mx = x[j];
  for (int64_t j = 0; j < c; j++) sum += exp((double)x[j] - mx);
  for (int64_t j = 0; j < c; j++) y[j] = (float)(exp((double)x[j] - mx) / sum);
  return mx + log(sum);
}

ct_status ct__cpu_softmax_fwd(void *ctx, const ct__kargs *a) {
  int64_t rows = ct__rows(a->in_obj[0]), c = ct__cols(a->in_obj[0]);
  const float *x = a->in[0];
  float *y = a->out[0];
  for (int64_t i = 0; i < rows; i++) ct__softmax_row(&x[i * c], &y[i * c], c);
  return CT_OK;
}

ct_status ct__cpu_softmax_rev(void *ctx, const ct__kargs *a) {
  int64_t rows = ct__rows(a->in_obj[0]), c = ct__cols(a->in_obj[0]);
  const float *y = a->out[0], *dy = a->dout[0];
  float *dx = a->din[0];
  if (!dx) return CT_OK;
  for (int64_t i = 0; i < rows; i++) {
    double dot = 0.0;
    for (int64_t j = 0; j < c; j++) dot += (double)dy[i * c + j] * y[i * c + j];
    for (int64_t j = 0; j < c; j++)
      dx[i * c + j] = (float)((double)y[i * c + j] * ((double)dy[i * c + j] - dot));
  }
  return CT_OK;
}

ct_status ct__cpu_xent_fwd(void *ctx, const ct__kargs *a) {
  int64_t rows = ct__rows(a->in_obj[0]), c = ct__cols(a->in_obj[0]);
  const float *p = a->in[0];
  const int32_t *t = a->in[1];
  CT__TRY(ct__cpu_check_ids(t, rows, c, "target id"));
  double sum = 0.0;
  for (int64_t i = 0; i < rows; i++) sum -= log(ct__clamp_below((double)p[i * c + t[i]], CT__P_FLOOR));
  *(float *)a->out[0] = (float)(sum / (double)rows);
  return CT_OK;
}

ct_status ct__cpu_xent_rev(void *ctx, const ct__kargs *a) {
  int64_t rows = ct__rows(a->in_obj[0]), c = ct__cols(a->in_obj[0]);
  const float *p = a->in[0];
  const int32_t *t = a->in[1];
  float *dp = a->din[0];
  if (!dp) return CT_OK; /* targets were checked by the forward of this run */
  double scale = (double)*(const float *)a->dout[0] / (double)rows;
  memset(dp, 0, (size_t)(rows * c) * sizeof(float));
  for (int64_t i = 0; i < rows; i++) {
    double pt = p[i * c + t[i]];
    if (pt > CT__P_FLOOR) dp[i * c + t[i]] = (float)(-scale / pt);
  }
  return CT_OK;
}

ct_status ct__cpu_softmax_xent_fwd(void *ctx, const ct__kargs *a) {
  int64_t rows = ct__rows(a->in_obj[0]), c = ct__cols(a->in_obj[0]);
  const float *x = a->in[0];
  const int32_t *t = a->in[1];
  float *probs = a->saved;
  CT__TRY(ct__cpu_check_ids(t, rows, c, "target id"));
  double sum = 0.0;
  for (int64_t i = 0; i < rows; i++) {
    double lse = ct__softmax_row(&x[i * c], &probs[i * c], c);
    sum -= ct__clamp_below((double)x[i * c + t[i]] - lse, log(CT__P_FLOOR));
  }
  *(float *)a->out[0] = (float)(sum / (double)rows);
  return CT_OK;
}

ct_status ct__cpu_softmax_xent_rev(void *ctx, const ct__kargs *a) {
  int64_t rows = ct__rows(a->in_obj[0]), c = ct__cols(a->in_obj[0]);
  const float *probs = a->saved;
  const int32_t *t = a->in[1];
  float *dx = a->din[0];
  if (!dx) return CT_OK; /* targets were checked by the forward of this run */
  double scale = (double)*(const float *)a->dout[0] / (double)rows;
  for (int64_t i = 0; i < rows; i++) {
    /* A row whose target probability is clamped has a constant loss: zero gradient. */
    bool clamped = probs[i * c + t[i]] <= CT__P_FLOOR;
    for (int64_t j = 0; j < c; j++) {
      double g = clamped ? 0.0 : (double)probs[i * c + j] - (j == t[i] ? 1.0 : 0.0);
      dx[i * c + j] = (float)(scale * g);
    }
  }
  return CT_OK;
}

ct_status ct__cpu_copy_fwd(void *ctx, const ct__kargs *a) {
  size_t bytes = ct_object_bytes(a->in_obj[0]);
  for (int k = 0; k < a->n_out; k++)
    if (a->out[k]) memcpy(a->out[k], a->in[0], bytes);
  return CT_OK;
}

ct_status ct__cpu_add_fwd(void *ctx, const ct__kargs *a) {
  int64_t n = ct_object_numel(a->out_obj[0]);
  const float *x = a->in[0], *y = a->in[1];
  float *z = a->out[0];
  for (int64_t i = 0; i < n; i++) z[i] = x[i] + y[i];
  return CT_OK;
}

ct_status ct__cpu_discard_fwd(void *ctx, const ct__kargs *a) { return CT_OK; }
