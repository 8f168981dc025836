/* SPDX-License-Identifier: MIT */
/* Reference kernels of the sequence generators: plain loops, double
 * accumulators. Objects are row-major; a [.., T, X] object is a batch of
 * T x X matrices, the batch being every leading axis. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_kernels.h"

#define CT__LN_EPS 1e-5
#define CT__GELU_C 0.7978845608028654 /* sqrt(2 / pi) */
#define CT__GELU_A 0.044715

/* Trailing two axes of o and the count of matrices before them. */
static void ct__mats(const ct_object *o, int64_t *batch, int64_t *rows, int64_t *cols) {
  *rows = o->dims[o->rank - 2];
  *cols = o->dims[o->rank - 1];
  *batch = ct_object_numel(o) / (*rows * *cols);
}

ct_status ct__cpu_pos_embedding_fwd(void *ctx, const ct__kargs *a) {
  const ct_object *o = a->in_obj[0];
  int64_t B = o->dims[0], T = o->dims[1], C = o->dims[2];
  const float *x = a->in[0], *P = a->param[0];
  float *y = a->out[0];
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t c = 0; c < C; c++) {
        int64_t i = (b * T + t) * C + c;
        y[i] = x[i] + P[t * C + c];
      }
  return CT_OK;
}

ct_status ct__cpu_pos_embedding_rev(void *ctx, const ct__kargs *a) {
  const ct_object *o = a->in_obj[0];
  int64_t B = o->dims[0], T = o->dims[1], C = o->dims[2];
  const float *dy = a->dout[0];
  if (a->din[0]) memcpy(a->din[0], dy, ct_object_bytes(o));
  float *dP = a->dparam[0];
  if (!dP) return CT_OK;
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < C; c++) {
      double acc = 0.0;
      for (int64_t b = 0; b < B; b++) acc += dy[(b * T + t) * C + c];
      dP[t * C + c] = (float)((double)dP[t * C + c] + acc);
    }
  return CT_OK;
}

/* Mean and 1/sqrt(biased variance + eps) of one row, in double. */
static void ct__row_stats(const float *x, int64_t n, double *mean, double *rstd) {
  double m = 0.0, v = 0.0;
  for (int64_t j = 0; j < n; j++) m += x[j];
  m /= (double)n;
  for (int64_t j = 0; j < n; j++) v += ((double)x[j] - m) * ((double)x[j] - m);
  v /= (double)n;
  *mean = m;
  *rstd = 1.0 / sqrt(v + CT__LN_EPS);
}

/* Layer norm of rows x rows of n: y, and mean[rows] then rstd[rows] into saved. */
static void ct__ln_fwd(const float *x, const float *g, const float *bias, float *y, float *saved,
                       int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; r++) {
    double mean, rstd;
    ct__row_stats(&x[r * n], n, &mean, &rstd);
    saved[r] = (float)mean;
    saved[rows + r] = (float)rstd;
    for (int64_t j = 0; j < n; j++)
      y[r * n + j] = (float)(((double)x[r * n + j] - mean) * rstd * g[j] + bias[j]);
  }
}

/* Reverse of layer norm from x, recomputing the statistics in double rather than
 * reading the float residual: dx = ds + rstd (dxhat - mean(dxhat) - xhat
 * mean(dxhat xhat)), dxhat = dy g (ds NULL: 0; dx NULL: not wanted);
 * dg += sum dy xhat, db += sum dy (either NULL: not wanted). */
static ct_status ct__ln_rev(const float *x, const float *g, const float *dy, const float *ds,
                            float *dx, float *dg, float *db, int64_t rows, int64_t n,
                            const char *what) {
  double *acc = calloc(2 * (size_t)n, sizeof *acc); /* gain sums, then bias sums */
  if (!acc) return ct__fail(CT_ERR_NOMEM, "cpu: %s reverse: out of host memory", what);
  for (int64_t r = 0; r < rows; r++) {
    double mean, rstd, s1 = 0.0, s2 = 0.0;
    const float *xr = &x[r * n], *dyr = &dy[r * n];
    ct__row_stats(xr, n, &mean, &rstd);
    for (int64_t j = 0; j < n; j++) {
      double xhat = ((double)xr[j] - mean) * rstd, dxhat = (double)dyr[j] * g[j];
      s1 += dxhat;
      s2 += dxhat * xhat;
      acc[j] += (double)dyr[j] * xhat;
      acc[n + j] += dyr[j];
    }
    s1 /= (double)n;
    s2 /= (double)n;
    for (int64_t j = 0; j < n && dx; j++) {
      double xhat = ((double)xr[j] - mean) * rstd, dxhat = (double)dyr[j] * g[j];
      dx[r * n + j] = (float)((ds ? (double)ds[r * n + j] : 0.0) + rstd * (dxhat - s1 - xhat * s2));
    }
  }
  for (int64_t j = 0; j < n; j++) {
    if (dg) dg[j] = (float)((double)dg[j] + acc[j]);
    if (db) db[j] = (float)((double)db[j] + acc[n + j]);
  }
  free(acc);
  return CT_OK;
}

ct_status ct__cpu_layernorm_fwd(void *ctx, const ct__kargs *a) {
  ct__ln_fwd(a->in[0], a->param[0], a->param[1], a->out[0], a->saved, ct__rows(a->in_obj[0]),
             ct__cols(a->in_obj[0]));
  return CT_OK;
}

ct_status ct__cpu_layernorm_rev(void *ctx, const ct__kargs *a) {
  return ct__ln_rev(a->in[0], a->param[0], a->dout[0], NULL, a->din[0], a->dparam[0],
                    a->dparam[1], ct__rows(a->in_obj[0]), ct__cols(a->in_obj[0]), "layernorm");
}

/* s = x + r as add computes it, then y = layernorm(s). */
ct_status ct__cpu_add_layernorm_fwd(void *ctx, const ct__kargs *a) {
  CT__TRY(ct__cpu_add_fwd(ctx, a));
  ct__ln_fwd(a->out[0], a->param[0], a->param[1], a->out[1], a->saved, ct__rows(a->in_obj[0]),
             ct__cols(a->in_obj[0]));
  return CT_OK;
}

/* dx = dr = ds + layernorm's dx from dy at s; gain and bias gradients from dy and s. */
ct_status ct__cpu_add_layernorm_rev(void *ctx, const ct__kargs *a) {
  float *dx = a->din[0] ? a->din[0] : a->din[1];
  CT__TRY(ct__ln_rev(a->out[0], a->param[0], a->dout[1], a->dout[0], dx, a->dparam[0],
                     a->dparam[1], ct__rows(a->in_obj[0]), ct__cols(a->in_obj[0]),
                     "add_layernorm"));
  if (a->din[0] && a->din[1]) memcpy(a->din[1], a->din[0], ct_object_bytes(a->in_obj[1]));
  return CT_OK;
}

void ct__cpu_gelu_span(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double v = x[i];
    y[i] = (float)(0.5 * v * (1.0 + tanh(CT__GELU_C * (v + CT__GELU_A * v * v * v))));
  }
}

void ct__cpu_gelu_grad_span(const float *x, const float *dy, float *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double v = x[i], th = tanh(CT__GELU_C * (v + CT__GELU_A * v * v * v));
    double d = 0.5 * (1.0 + th) +
               0.5 * v * (1.0 - th * th) * CT__GELU_C * (1.0 + 3.0 * CT__GELU_A * v * v);
    dx[i] = (float)((double)dy[i] * d);
  }
}

ct_status ct__cpu_gelu_fwd(void *ctx, const ct__kargs *a) {
  int64_t n = ct_object_numel(a->in_obj[0]);
  const float *x = a->in[0];
  float *y = a->out[0];
  ct__cpu_gelu_span(x, y, n);
  return CT_OK;
}

ct_status ct__cpu_gelu_rev(void *ctx, const ct__kargs *a) {
  int64_t n = ct_object_numel(a->in_obj[0]);
  const float *x = a->in[0], *dy = a->dout[0];
  float *dx = a->din[0];
  if (dx) ct__cpu_gelu_grad_span(x, dy, dx, n);
  return CT_OK;
}

/* x SEQ [B,T,H*D] <-> y HEADS [B,H,T,D]; to_heads picks the direction. */
static void ct__heads_permute(const float *src, float *dst, const ct_object *heads, int to_heads) {
  int64_t B = heads->dims[0], H = heads->dims[1], T = heads->dims[2], D = heads->dims[3];
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t t = 0; t < T; t++)
        for (int64_t d = 0; d < D; d++) {
          int64_t hi = ((b * H + h) * T + t) * D + d, si = (b * T + t) * H * D + h * D + d;
          if (to_heads)
            dst[hi] = src[si];
          else
            dst[si] = src[hi];
        }
}

ct_status ct__cpu_head_split_fwd(void *ctx, const ct__kargs *a) {
  ct__heads_permute(a->in[0], a->out[0], a->out_obj[0], 1);
  return CT_OK;
}

ct_status ct__cpu_head_merge_fwd(void *ctx, const ct__kargs *a) {
  ct__heads_permute(a->in[0], a->out[0], a->in_obj[0], 0);
  return CT_OK;
}

ct_status ct__cpu_attn_scores_fwd(void *ctx, const ct__kargs *a) {
  int64_t batch, T, D;
  ct__mats(a->in_obj[0], &batch, &T, &D);
  const float *q = a->in[0], *k = a->in[1];
  float *s = a->out[0];
  double scale = 1.0 / sqrt((double)D);
  for (int64_t b = 0; b < batch; b++)
    for (int64_t i = 0; i < T; i++)
      for (int64_t j = 0; j < T; j++) {
        double acc = 0.0;
        for (int64_t d = 0; j <= i && d < D; d++)
          acc += (double)q[(b * T + i) * D + d] * k[(b * T + j) * D + d];
        s[(b * T + i) * T + j] = (float)(acc * scale);
      }
  return CT_OK;
}

ct_status ct__cpu_attn_scores_rev(void *ctx, const ct__kargs *a) {
  int64_t batch, T, D;
  ct__mats(a->in_obj[0], &batch, &T, &D);
  const float *q = a->in[0], *k = a->in[1], *ds = a->dout[0];
  float *dq = a->din[0], *dk = a->din[1];
  double scale = 1.0 / sqrt((double)D);
  for (int64_t b = 0; b < batch; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t d = 0; d < D; d++) {
        double aq = 0.0, ak = 0.0;
        for (int64_t j = 0; j <= t; j++) aq += (double)ds[(b * T + t) * T + j] * k[(b * T + j) * D + d];
        for (int64_t i = t; i < T; i++) ak += (double)ds[(b * T + i) * T + t] * q[(b * T + i) * D + d];
        if (dq) dq[(b * T + t) * D + d] = (float)(aq * scale);
        if (dk) dk[(b * T + t) * D + d] = (float)(ak * scale);
      }
  return CT_OK;
}

ct_status ct__cpu_causal_softmax_fwd(void *ctx, const ct__kargs *a) {
  int64_t rows = ct__rows(a->in_obj[0]), T = ct__cols(a->in_obj[0]);
  const float *x = a->in[0];
  float *y = a->out[0];
  for (int64_t r = 0; r < rows; r++) {
    int64_t len = r % T + 1; /* row i attends to positions 0..i */
    const float *xr = &x[r * T];
    float *yr = &y[r * T];
    double mx = xr[0], sum = 0.0;
    for (int64_t j = 1; j < len; j++)
      if (xr[j] > mx) mx = xr[j];
    for (int64_t j = 0; j < len; j++) sum += exp((double)xr[j] - mx);
    for (int64_t j = 0; j < T; j++) yr[j] = j < len ? (float)(exp((double)xr[j] - mx) / sum) : 0.0f;
  }
  return CT_OK;
}

ct_status ct__cpu_causal_softmax_rev(void *ctx, const ct__kargs *a) {
  int64_t rows = ct__rows(a->in_obj[0]), T = ct__cols(a->in_obj[0]);
  const float *y = a->out[0], *dy = a->dout[0];
  float *dx = a->din[0];
  if (!dx) return CT_OK;
  for (int64_t r = 0; r < rows; r++) {
    int64_t len = r % T + 1;
    double dot = 0.0;
    for (int64_t j = 0; j < len; j++) dot += (double)dy[r * T + j] * y[r * T + j];
    for (int64_t j = 0; j < T; j++)
      dx[r * T + j] = j < len ? (float)((double)y[r * T + j] * ((double)dy[r * T + j] - dot)) : 0.0f;
  }
  return CT_OK;
}

ct_status ct__cpu_attn_apply_fwd(void *ctx, const ct__kargs *a) {
  int64_t batch, T, D;
  ct__mats(a->in_obj[1], &batch, &T, &D);
  const float *w = a->in[0], *v = a->in[1];
  float *y = a->out[0];
  for (int64_t b = 0; b < batch; b++)
    for (int64_t i = 0; i < T; i++)
      for (int64_t d = 0; d < D; d++) {
        double acc = 0.0;
        for (int64_t j = 0; j < T; j++) acc += (double)w[(b * T + i) * T + j] * v[(b * T + j) * D + d];
        y[(b * T + i) * D + d] = (float)acc;
      }
  return CT_OK;
}

ct_status ct__cpu_attn_apply_rev(void *ctx, const ct__kargs *a) {
  int64_t batch, T, D;
  ct__mats(a->in_obj[1], &batch, &T, &D);
  const float *w = a->in[0], *v = a->in[1], *dy = a->dout[0];
  float *dw = a->din[0], *dv = a->din[1];
  for (int64_t b = 0; b < batch; b++) {
    for (int64_t i = 0; i < T && dw; i++)
      for (int64_t j = 0; j < T; j++) {
        double acc = 0.0;
        for (int64_t d = 0; d < D; d++) acc += (double)dy[(b * T + i) * D + d] * v[(b * T + j) * D + d];
        dw[(b * T + i) * T + j] = (float)acc;
      }
    for (int64_t j = 0; j < T && dv; j++)
      for (int64_t d = 0; d < D; d++) {
        double acc = 0.0;
        for (int64_t i = 0; i < T; i++) acc += (double)w[(b * T + i) * T + j] * dy[(b * T + i) * D + d];
        dv[(b * T + j) * D + d] = (float)acc;
      }
  }
  return CT_OK;
}

/* ---- causal_attention: SEQ [B,T,C] q, k, v with H heads of width D = C/H ---------- */

/* Shapes of a causal_attention launch; element (b, t, head h, d) is at
 * (b*T + t)*C + h*D + d and its statistic at (b*H + h)*T + t. */
typedef struct ct__attn_shape {
  int64_t B, T, C, H, D;
  double scale;
} ct__attn_shape;

static ct__attn_shape ct__attn_shape_of(const ct__kargs *a) {
  const ct_object *x = a->in_obj[0];
  ct__attn_shape s = {x->dims[0], x->dims[1], x->dims[2], a->attr, 0, 0.0};
  s.D = s.C / s.H;
  s.scale = 1.0 / sqrt((double)s.D);
  return s;
}

/* Scaled score of query row t against key row j in head h of batch b. */
static double ct__attn_score(const ct__attn_shape *s, const float *q, const float *k, int64_t b,
                             int64_t h, int64_t t, int64_t j) {
  const float *qt = &q[(b * s->T + t) * s->C + h * s->D], *kj = &k[(b * s->T + j) * s->C + h * s->D];
  double acc = 0.0;
  for (int64_t d = 0; d < s->D; d++) acc += (double)qt[d] * kj[d];
  return acc * s->scale;
}

ct_status ct__cpu_causal_attention_fwd(void *ctx, const ct__kargs *a) {
  ct__attn_shape s = ct__attn_shape_of(a);
  const float *q = a->in[0], *k = a->in[1], *v = a->in[2];
  float *y = a->out[0], *lse = a->saved;
  double *row = malloc((size_t)(s.T + s.D) * sizeof *row), *acc = row + s.T;
  if (!row) return ct__fail(CT_ERR_NOMEM, "causal_attention: out of host memory for a row");
  for (int64_t b = 0; b < s.B; b++)
    for (int64_t h = 0; h < s.H; h++)
      for (int64_t t = 0; t < s.T; t++) {
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j <= t; j++) {
          row[j] = ct__attn_score(&s, q, k, b, h, t, j);
          if (row[j] > mx) mx = row[j];
        }
        memset(acc, 0, (size_t)s.D * sizeof *acc);
        for (int64_t j = 0; j <= t; j++) {
          double p = exp(row[j] - mx);
          sum += p;
          const float *vj = &v[(b * s.T + j) * s.C + h * s.D];
          for (int64_t d = 0; d < s.D; d++) acc[d] += p * vj[d];
        }
        float *yt = &y[(b * s.T + t) * s.C + h * s.D];
        for (int64_t d = 0; d < s.D; d++) yt[d] = (float)(acc[d] / sum);
        lse[(b * s.H + h) * s.T + t] = (float)(mx + log(sum));
      }
  free(row);
  return CT_OK;
}

/* With P[t,j] = exp(S[t,j] - lse[t]) (j <= t) and Dsum[t] = dy[t] . y[t] per head:
 *   dv[j] = sum_t P[t,j] dy[t];  dS[t,j] = P[t,j] (dy[t] . v[j] - Dsum[t]);
 *   dq[t] = scale sum_j dS[t,j] k[j];  dk[j] = scale sum_t dS[t,j] q[t]. */
ct_status ct__cpu_causal_attention_rev(void *ctx, const ct__kargs *a) {
  ct__attn_shape s = ct__attn_shape_of(a);
  const float *q = a->in[0], *k = a->in[1], *v = a->in[2], *y = a->out[0], *dy = a->dout[0];
  const float *lse = a->saved;
  float *dsum = (float *)a->saved + s.B * s.H * s.T;
  size_t n = (size_t)(s.T * s.D);
  double *g = calloc(3 * n + 1, sizeof *g), *gq = g, *gk = g + n, *gv = g + 2 * n;
  if (!g) return ct__fail(CT_ERR_NOMEM, "causal_attention: out of host memory for a head");
  for (int64_t b = 0; b < s.B; b++)
    for (int64_t h = 0; h < s.H; h++) {
      memset(g, 0, 3 * n * sizeof *g);
      const float *stat = &lse[(b * s.H + h) * s.T];
      for (int64_t t = 0; t < s.T; t++) {
        const float *dyt = &dy[(b * s.T + t) * s.C + h * s.D];
        const float *yt = &y[(b * s.T + t) * s.C + h * s.D];
        const float *qt = &q[(b * s.T + t) * s.C + h * s.D];
        double dt = 0.0;
        for (int64_t d = 0; d < s.D; d++) dt += (double)dyt[d] * yt[d];
        dsum[(b * s.H + h) * s.T + t] = (float)dt;
        for (int64_t j = 0; j <= t; j++) {
          const float *kj = &k[(b * s.T + j) * s.C + h * s.D];
          const float *vj = &v[(b * s.T + j) * s.C + h * s.D];
          double p = exp(ct__attn_score(&s, q, k, b, h, t, j) - stat[t]), dp = 0.0;
          for (int64_t d = 0; d < s.D; d++) dp += (double)dyt[d] * vj[d];
          double ds = p * (dp - dt) * s.scale;
          for (int64_t d = 0; d < s.D; d++) {
            gq[t * s.D + d] += ds * kj[d];
            gk[j * s.D + d] += ds * qt[d];
            gv[j * s.D + d] += p * dyt[d];
          }
        }
      }
      float *dst[3] = {a->din[0], a->din[1], a->din[2]};
      for (int w = 0; w < 3; w++)
        for (int64_t t = 0; dst[w] && t < s.T; t++)
          for (int64_t d = 0; d < s.D; d++)
            dst[w][(b * s.T + t) * s.C + h * s.D + d] = (float)g[w * n + t * s.D + d];
    }
  free(g);
  return CT_OK;
}

/* kv_attention: rows of SEQ [B,T,C] at positions pos[b,t] over caches [B,H,L,D]. Every
 * row's key and value go into the caches first, so a row sees the rows before it in the
 * same run. */
ct_status ct__cpu_kv_attention_fwd(void *ctx, const ct__kargs *a) {
  const ct_object *x = a->in_obj[0], *c = a->param_obj[0];
  int64_t B = x->dims[0], T = x->dims[1], C = x->dims[2], H = c->dims[1], L = c->dims[2],
          D = c->dims[3];
  const float *q = a->in[0], *k = a->in[1], *v = a->in[2];
  const int32_t *pos = a->in[3];
  float *kc = a->param[0], *vc = a->param[1], *y = a->out[0];
  CT__TRY(ct__cpu_check_ids(pos, B * T, L, "position"));
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t h = 0; h < H; h++) {
        size_t dst = (size_t)(((b * H + h) * L + pos[b * T + t]) * D);
        memcpy(&kc[dst], &k[(b * T + t) * C + h * D], (size_t)D * sizeof(float));
        memcpy(&vc[dst], &v[(b * T + t) * C + h * D], (size_t)D * sizeof(float));
      }
  double scale = 1.0 / sqrt((double)D);
  double *row = malloc((size_t)(L + D) * sizeof *row), *acc = row + L;
  if (!row) return ct__fail(CT_ERR_NOMEM, "kv_attention: out of host memory for a row");
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t h = 0; h < H; h++) {
        int64_t p = pos[b * T + t];
        const float *qt = &q[(b * T + t) * C + h * D];
        const float *kh = &kc[(b * H + h) * L * D], *vh = &vc[(b * H + h) * L * D];
        double mx = -INFINITY, sum = 0.0;
        for (int64_t s = 0; s <= p; s++) {
          double dot = 0.0;
          for (int64_t d = 0; d < D; d++) dot += (double)qt[d] * kh[s * D + d];
          row[s] = dot * scale;
          if (row[s] > mx) mx = row[s];
        }
        memset(acc, 0, (size_t)D * sizeof *acc);
        for (int64_t s = 0; s <= p; s++) {
          double w = exp(row[s] - mx);
          sum += w;
          for (int64_t d = 0; d < D; d++) acc[d] += w * vh[s * D + d];
        }
        float *yt = &y[(b * T + t) * C + h * D];
        for (int64_t d = 0; d < D; d++) yt[d] = (float)(acc[d] / sum);
      }
  free(row);
  return CT_OK;
}
