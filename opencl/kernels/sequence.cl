/* SPDX-License-Identifier: MIT */
/* Sequence generators: learned positions, layer norm, GELU, head split and
 * merge, causal attention. Objects are row-major; a [.., T, X] object is a
 * batch of T x X matrices, the batch being every leading axis. Reductions run
 * in a fixed order (no atomics), so results do not depend on timing. The
 * attention products are the batched kernels of gemm.cl. */

#define CT_LN_EPS 1e-5f
#define CT_GELU_C 0.7978845608028654f /* sqrt(2 / pi) */
#define CT_GELU_A 0.044715f

/* y[b, t, c] = x[b, t, c] + P[t, c]; dimension 0 is e = t C + c < TC, 1 is b. */
kernel void ct_pos_embedding_fwd(global const float *x, global const float *P, global float *y,
                                 long TC, long B) {
  long e = (long)get_global_id(0), b = (long)get_global_id(1);
  if (e >= TC || b >= B) return;
  y[b * TC + e] = x[b * TC + e] + P[e];
}

/* Layer norm of row `row` (xr, yr) by one work-group (as in rowwise.cl): mean,
 * then the biased variance of x - mean (two passes), y = (x - mean) rstd g + b.
 * Saves mean[rows] then rstd[rows]. */
void ct_ln_row(global const float *xr, global const float *g, global const float *b,
               global float *yr, global float *saved, long row, long rows, long cols,
               local float *tmp) {
  long lid = (long)get_local_id(0), size = (long)get_local_size(0);
  float s = 0.0f, es = 0.0f, v = 0.0f, ev = 0.0f;
  for (long j = lid; j < cols; j += size) CT_KAHAN_ADD(s, es, xr[j], float);
  float mean = ct_group_sum(s, tmp) / (float)cols;
  for (long j = lid; j < cols; j += size) {
    float d = xr[j] - mean;
    CT_KAHAN_ADD(v, ev, d * d, float);
  }
  float var = ct_group_sum(v, tmp) / (float)cols;
  float rstd = 1.0f / sqrt(var + CT_LN_EPS);
  for (long j = lid; j < cols; j += size) yr[j] = (xr[j] - mean) * rstd * g[j] + b[j];
  if (lid == 0) {
    saved[row] = mean;
    saved[rows + row] = rstd;
  }
}

/* Layer norm, one row per work-group (ct_ln_row). */
kernel void ct_layernorm_fwd(global const float *x, global const float *g, global const float *b,
                             global float *y, global float *saved, long rows, long cols,
                             local float *tmp) {
  long row = (long)get_group_id(0);
  ct_ln_row(x + row * cols, g, b, y + row * cols, saved, row, rows, cols, tmp);
}

/* s = x + r, then layer norm of s (ct_ln_row), one row per work-group; each
 * work-item reads back the entries of s it wrote. */
kernel void ct_add_layernorm_fwd(global const float *x, global const float *r,
                                 global const float *g, global const float *b, global float *s,
                                 global float *y, global float *saved, long rows, long cols,
                                 local float *tmp) {
  long row = (long)get_group_id(0), lid = (long)get_local_id(0), size = (long)get_local_size(0);
  long o = row * cols;
  for (long j = lid; j < cols; j += size) s[o + j] = x[o + j] + r[o + j];
  ct_ln_row(s + o, g, b, y + o, saved, row, rows, cols, tmp);
}

/* The layer norm cotangent of row `row` (xr, dyr) by one work-group, from the
 * saved statistics: v = ds + rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),
 * dxhat = dy g (dsr 0: no ds), written to dxr and to drr where not 0. */
void ct_ln_rev_row(global const float *xr, global const float *g, global const float *dyr,
                   global const float *dsr, global const float *saved, global float *dxr,
                   global float *drr, long row, long rows, long cols, local float *tmp) {
  long lid = (long)get_local_id(0), size = (long)get_local_size(0);
  float mean = saved[row], rstd = saved[rows + row];
  float s1 = 0.0f, e1 = 0.0f, s2 = 0.0f, e2 = 0.0f;
  for (long j = lid; j < cols; j += size) {
    float dxhat = dyr[j] * g[j];
    CT_KAHAN_ADD(s1, e1, dxhat, float);
    CT_KAHAN_ADD(s2, e2, dxhat * ((xr[j] - mean) * rstd), float);
  }
  s1 = ct_group_sum(s1, tmp) / (float)cols;
  s2 = ct_group_sum(s2, tmp) / (float)cols;
  for (long j = lid; j < cols; j += size) {
    float xhat = (xr[j] - mean) * rstd;
    float v = rstd * (dyr[j] * g[j] - s1 - xhat * s2);
    if (dsr) v += dsr[j];
    if (dxr) dxr[j] = v;
    if (drr) drr[j] = v;
  }
}

/* dx of layer norm, one row per work-group (ct_ln_rev_row). */
kernel void ct_layernorm_rev(global const float *x, global const float *g, global const float *dy,
                             global const float *saved, global float *dx, long rows, long cols,
                             local float *tmp) {
  long row = (long)get_group_id(0), o = row * cols;
  ct_ln_rev_row(x + o, g, dy + o, 0, saved, dx + o, 0, row, rows, cols, tmp);
}

/* dx = dr = ds + layer norm's dx at s, one row per work-group (ct_ln_rev_row);
 * bit 0 of outs: write dx, bit 1: write dr (a buffer not written is still bound). */
kernel void ct_add_layernorm_rev(global const float *s, global const float *g,
                                 global const float *ds, global const float *dy,
                                 global const float *saved, global float *dx, global float *dr,
                                 int outs, long rows, long cols, local float *tmp) {
  long row = (long)get_group_id(0), o = row * cols;
  ct_ln_rev_row(s + o, g, dy + o, ds + o, saved, (outs & 1) ? dx + o : 0, (outs & 2) ? dr + o : 0,
                row, rows, cols, tmp);
}

/* Partial column sums for the gain and bias gradients over row chunks:
 * part[c, j] = sum of dy xhat and part[chunks + c, j] = sum of dy over the
 * rows of chunk c (Kahan-compensated); ct_colsum_finish adds them up. */
kernel void ct_layernorm_param_part(global const float *x, global const float *dy,
                                    global const float *saved, global float *part, long rows,
                                    long cols, long chunk, long chunks) {
  long j = (long)get_global_id(0), c = (long)get_global_id(1);
  if (j >= cols || c >= chunks) return;
  long end = min(rows, (c + 1) * chunk);
  float ag = 0.0f, eg = 0.0f, ab = 0.0f, eb = 0.0f;
  for (long i = c * chunk; i < end; i++) {
    float d = dy[i * cols + j], xhat = (x[i * cols + j] - saved[i]) * saved[rows + i];
    float y = d * xhat - eg, s = ag + y;
    eg = (s - ag) - y;
    ag = s;
    y = d - eb;
    s = ab + y;
    eb = (s - ab) - y;
    ab = s;
  }
  part[c * cols + j] = ag;
  part[(chunks + c) * cols + j] = ab;
}

/* The sigmoid of z and 1 - sigmoid(z) from exp(-|z|), which cannot overflow. */
void ct_sigmoid2(float z, float *sig, float *rest) {
  float e = exp(-fabs(z)), inv = 1.0f / (1.0f + e);
  *sig = z >= 0.0f ? inv : e * inv;
  *rest = z >= 0.0f ? e * inv : inv;
}

/* GELU (tanh form) as x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3), since
 * (1 + tanh u) / 2 = sigmoid(2u): no cancellation for negative x. */
float ct_gelu(float v) {
  float sig, rest;
  ct_sigmoid2(2.0f * CT_GELU_C * (v + CT_GELU_A * v * v * v), &sig, &rest);
  return v * sig;
}

/* gelu'(x) = sig + 2 x sig (1 - sig) sqrt(2/pi) (1 + 3 0.044715 x^2); the second
 * term is 0 once sig (1 - sig) underflows (then x^2 may overflow: no 0 * inf). */
float ct_gelu_grad(float v) {
  float sig, rest;
  ct_sigmoid2(2.0f * CT_GELU_C * (v + CT_GELU_A * v * v * v), &sig, &rest);
  float t = sig * rest;
  return sig + (t == 0.0f ? 0.0f : 2.0f * v * t * CT_GELU_C * (1.0f + 3.0f * CT_GELU_A * v * v));
}

kernel void ct_gelu_fwd(global const float *x, global float *y, long n) {
  long e = (long)get_global_id(0);
  if (e >= n) return;
  y[e] = ct_gelu(x[e]);
}

/* dx = dy gelu'(x). */
kernel void ct_gelu_rev(global const float *x, global const float *dy, global float *dx, long n) {
  long e = (long)get_global_id(0);
  if (e >= n) return;
  dx[e] = dy[e] * ct_gelu_grad(x[e]);
}

/* linear_gelu after its product: y holds u = x W + b (n entries); keeps u in
 * saved[n + e] and writes y = gelu(u). */
kernel void ct_linear_gelu_fwd(global float *y, global float *saved, long n) {
  long e = (long)get_global_id(0);
  if (e >= n) return;
  float v = y[e];
  saved[n + e] = v;
  y[e] = ct_gelu(v);
}

/* linear_gelu's du = dy gelu'(u) into saved[e], u read from saved[n + e]. */
kernel void ct_linear_gelu_rev(global float *saved, global const float *dy, long n) {
  long e = (long)get_global_id(0);
  if (e >= n) return;
  saved[e] = dy[e] * ct_gelu_grad(saved[n + e]);
}

/* SEQ [B,T,H*D] <-> HEADS [B,H,T,D], one work-item per destination element:
 * to_heads 1 splits (dimensions d, t, b H + h), 0 merges (d, h, b T + t). */
kernel void ct_heads_permute(global const float *src, global float *dst, long B, long H, long T,
                             long D, int to_heads) {
  long d = (long)get_global_id(0), y = (long)get_global_id(1), z = (long)get_global_id(2);
  if (d >= D) return;
  if (to_heads) { /* y = t, z = b H + h */
    if (y >= T) return;
    long b = z / H, h = z - b * H;
    dst[(z * T + y) * D + d] = src[(b * T + y) * H * D + h * D + d];
  } else { /* y = h, z = b T + t */
    if (y >= H) return;
    long b = z / T, t = z - b * T;
    dst[(z * H + y) * D + d] = src[((b * H + y) * T + t) * D + d];
  }
}

/* dst[b, i, j] = j > i ? 0 : scale * src[b, i, j] over [batch, T, T]: the
 * causal mask of the scores and of their cotangent; dimensions j, i, b. */
kernel void ct_causal_mask(global const float *src, global float *dst, long T, float scale) {
  long j = (long)get_global_id(0), i = (long)get_global_id(1), b = (long)get_global_id(2);
  if (j >= T || i >= T) return;
  long e = (b * T + i) * T + j;
  dst[e] = j > i ? 0.0f : src[e] * scale;
}

/* Causal softmax over SCORES [.., T, T], one row per work-group: row r covers
 * positions j <= r mod T (max-subtracted), and 0 beyond. */
kernel void ct_causal_softmax_fwd(global const float *x, global float *y, long T,
                                  local float *tmp) {
  long row = (long)get_group_id(0), lid = (long)get_local_id(0), size = (long)get_local_size(0);
  long len = row % T + 1;
  ct_softmax_row(x + row * T, y + row * T, len, tmp);
  for (long j = len + lid; j < T; j += size) y[row * T + j] = 0.0f;
}

/* dx = y (dy - <dy, y>) over positions j <= r mod T, 0 beyond. */
kernel void ct_causal_softmax_rev(global const float *y, global const float *dy, global float *dx,
                                  long T, local float *tmp) {
  long row = (long)get_group_id(0), lid = (long)get_local_id(0), size = (long)get_local_size(0);
  long len = row % T + 1;
  global const float *yr = y + row * T, *dyr = dy + row * T;
  global float *dxr = dx + row * T;
  float dot = ct_row_dot(dyr, yr, len, tmp);
  for (long j = lid; j < T; j += size) dxr[j] = j < len ? yr[j] * (dyr[j] - dot) : 0.0f;
}
