/* SPDX-License-Identifier: MIT */
/* Sequence generators: learned positions, layer norm, GELU, head split and
 * merge, causal attention. Objects are row-major; a [.., T, X] object is a
 * batch of T x X matrices, the batch being every leading axis. Reductions run
 * in a fixed order (no atomics), so results do not depend on timing. The
 * products of the unfused attention generators are the batched kernels of
 * gemm.cl; the fused causal_attention has kernels of its own (at the end). */

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

/* ---- causal_attention: q, k, v, y SEQ [B,T,C], H heads of width D = C/H ----------
 * Element (b, t, head h, d) of an output is at (b T + t) C + h D + d; the row
 * statistics, the log-sum-exp L and the reverse's Dsum = dy . y, at
 * saved[(b H + h) T + t] and saved[B H T + (b H + h) T + t]. Scores are recomputed
 * from q, k and L, never stored.
 * A work-item holds CT_RB_W consecutive rows of one head as the lanes of ct_vec
 * values (so CPUs vectorise within the work-item): the forward and dq kernels take
 * query rows t (keys s <= t), dkdv takes key rows s (queries t >= s). Its rows of
 * q, dy or k, v and its accumulators are private arrays of DM vectors. Keys (or
 * queries) go in blocks of CT_ATTN_KB: each column d of the block's rows is loaded
 * once and meets KB accumulators, as in a register-blocked matrix product. The
 * inputs (q, k, v, y, dy; input i at i inoff floats further on) have heads of
 * width DM, a multiple of CT_ATTN_DCH up to CT_ATTN_DCAP: the originals when
 * D = DM (Ci = C, Di = D), else copies zero-padded by ct_attn_pad (Ci = H DM,
 * Di = DM). The _16 kernels fix DM = 16, the _n kernels take DM = Di. Wider heads
 * run the _any kernels on the originals: one row per work-item, the accumulators
 * in the output rows. Every sum runs in a fixed order (over d, then keys or
 * queries), so results do not depend on timing.
 * Launch: dimension 0 is the block of CT_RB_W rows (the row for _any), 1 is b H + h. */

#define CT_ATTN_DCAP 128 /* the widest head held in private arrays (CT__ATTN_DCAP) */
#define CT_ATTN_KB 8     /* keys (queries in dkdv) per block: one max and rescale each */
#define CT_ATTN_DCH 16   /* columns per unrolled chunk; DM is a multiple */
/* for (d = 0; d < DM; d++) in chunks of CT_ATTN_DCH unrolled steps. */
#define CT_ATTN_FOR_D(d)                                           \
  for (int d##_0 = 0; d##_0 < DM; d##_0 += CT_ATTN_DCH)            \
  _Pragma("unroll") for (int d = d##_0; d < d##_0 + CT_ATTN_DCH; d++)
#define CT_ATTN_UNROLL_KB _Pragma("unroll") /* loops over a block: its values stay in registers */
/* The row functions are inlined into their kernels before the loops are unrolled. */
#define CT_ATTN_INLINE static inline __attribute__((always_inline))

#if CT_RB_W == 16
typedef int16 ct_ivec;
#define CT_ATTN_LANES ((int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#elif CT_RB_W == 8
typedef int8 ct_ivec;
#define CT_ATTN_LANES ((int8)(0, 1, 2, 3, 4, 5, 6, 7))
#else
typedef int4 ct_ivec;
#define CT_ATTN_LANES ((int4)(0, 1, 2, 3))
#endif

/* One signature for every attention kernel: the forward writes y to out0; dq
 * writes out0 when outs bit 0 is set; dkdv writes dk to out1 (bit 1) and dv to
 * out2 (bit 2). Unused buffers are bound but not touched. */
#define CT_ATTN_ARGS                                                                   \
  global const float *q, global const float *k, global const float *v,                \
      global const float *y, global const float *dy, long inoff, global float *out0,  \
      global float *out1, global float *out2, global float *saved, long B, long T,    \
      long H, long Ci, int Di, long C, int D, float scale, int outs
#define CT_ATTN_PASS \
  q, k, v, y, dy, inoff, out0, out1, out2, saved, B, T, H, Ci, Di, C, D, scale, outs

/* dst[z] = src_z [B T rows, H heads of D] with every head zero-padded to DM, z < the
 * launch's dimension 2 (n = rows H DM floats each); dimensions: h DM + d, row, z. */
kernel void ct_attn_pad(global const float *s0, global const float *s1, global const float *s2,
                        global const float *s3, global const float *s4, global float *dst,
                        long rows, long H, int D, int DM) {
  long e = (long)get_global_id(0), r = (long)get_global_id(1), z = (long)get_global_id(2);
  if (e >= H * DM || r >= rows) return;
  global const float *src = z == 0 ? s0 : z == 1 ? s1 : z == 2 ? s2 : z == 3 ? s3 : s4;
  long h = e / DM, d = e - h * DM;
  dst[(z * rows + r) * H * DM + e] = d < D ? src[(r * H + h) * D + d] : 0.0f;
}

/* off[l] = base + min(r0 + l, T - 1) stride: the lanes' rows, the last row
 * standing in for lanes past the end. */
void ct_attn_lanes(long base, long r0, long T, long stride, long *off) {
  for (int l = 0; l < CT_RB_W; l++) off[l] = base + min(r0 + l, T - 1) * stride;
}

/* The lanes' entries x[off[l] + d]. */
ct_vec ct_attn_gather(global const float *x, const long *off, long d) {
  float t[CT_RB_W];
  for (int l = 0; l < CT_RB_W; l++) t[l] = x[off[l] + d];
  return CT_VLOAD(0, t);
}

/* x[off[l] + d] = val's lane l for the lanes whose row r0 + l < T. */
void ct_attn_scatter(global float *x, const long *off, long d, ct_vec val, long r0, long T) {
  float t[CT_RB_W];
  CT_VSTORE(val, 0, t);
  for (int l = 0; l < CT_RB_W; l++)
    if (r0 + l < T) x[off[l] + d] = t[l];
}

/* Pointers to the rows of x for positions r0 + j, j < CT_ATTN_KB, clamped to last. */
void ct_attn_block(global const float *x, long r0, long last, long stride,
                   global const float **rows) {
CT_ATTN_UNROLL_KB
  for (int j = 0; j < CT_ATTN_KB; j++) rows[j] = x + min(r0 + j, last) * stride;
}

/* The online softmax of the lanes' queries qs (d < DM) over key rows 0..end of k and v
 * (row stride stride), in blocks of CT_ATTN_KB: a lane's keys past last score -inf, and
 * no lane's last is below first. acc gets the weighted values, *m_out the running max
 * and *l_out the sum of the weights (y = acc / l, L = m + ln l). Within a block each d
 * is read once for all its keys: the scores (and acc[d]) take KB products per load. */
CT_ATTN_INLINE void ct_attn_online(const ct_vec *qs, ct_vec *acc, global const float *k,
                                   global const float *v, long end, long stride, long first,
                                   ct_ivec last, float scale, const int DM, ct_vec *m_out,
                                   ct_vec *l_out) {
  ct_vec m = -INFINITY, l = 0.0f;
  for (long s0 = 0; s0 <= end; s0 += CT_ATTN_KB) {
    global const float *kr[CT_ATTN_KB], *vr[CT_ATTN_KB];
    ct_attn_block(k, s0, end, stride, kr);
    ct_attn_block(v, s0, end, stride, vr);
    ct_vec p[CT_ATTN_KB];
CT_ATTN_UNROLL_KB
    for (int j = 0; j < CT_ATTN_KB; j++) p[j] = 0.0f;
    CT_ATTN_FOR_D(d) {
      ct_vec qd = qs[d];
CT_ATTN_UNROLL_KB
      for (int j = 0; j < CT_ATTN_KB; j++) p[j] = fma(qd, (ct_vec)kr[j][d], p[j]);
    }
CT_ATTN_UNROLL_KB
    for (int j = 0; j < CT_ATTN_KB; j++) p[j] *= scale;
    if (s0 + CT_ATTN_KB - 1 > first) /* the block passes the first lane's last key */
CT_ATTN_UNROLL_KB
      for (int j = 0; j < CT_ATTN_KB; j++)
        p[j] = select(p[j], (ct_vec)(-INFINITY), (ct_ivec)(int)(s0 + j) > last);
    ct_vec mx = m;
CT_ATTN_UNROLL_KB
    for (int j = 0; j < CT_ATTN_KB; j++) mx = fmax(mx, p[j]);
    ct_vec alpha = exp(m - mx); /* 0 on the first block (m = -inf) */
    l *= alpha;
CT_ATTN_UNROLL_KB
    for (int j = 0; j < CT_ATTN_KB; j++) {
      p[j] = exp(p[j] - mx); /* the weights */
      l += p[j];
    }
    m = mx;
    CT_ATTN_FOR_D(d) {
      ct_vec a = acc[d] * alpha;
CT_ATTN_UNROLL_KB
      for (int j = 0; j < CT_ATTN_KB; j++) a = fma(p[j], (ct_vec)vr[j][d], a);
      acc[d] = a;
    }
  }
  *m_out = m;
  *l_out = l;
}

/* Forward of query rows t0 + lane: the online softmax over keys up to each lane's row,
 * y = acc / l, L = m + ln l. */
CT_ATTN_INLINE void ct_attn_fwd_rows(CT_ATTN_ARGS, const int DM) {
  long blk = (long)get_global_id(0), bh = (long)get_global_id(1);
  if (blk * CT_RB_W >= T || bh >= B * H) return;
  long b = bh / H, h = bh - b * H, t0 = blk * CT_RB_W;
  long bi = b * T * Ci + h * Di, kend = min(T, t0 + CT_RB_W); /* keys [0, kend) */
  k += inoff + bi;
  v += 2 * inoff + bi;
  ct_ivec last = min((int)t0 + CT_ATTN_LANES, (ct_ivec)(int)(kend - 1)); /* each lane's last key */
  long oi[CT_RB_W];
  ct_attn_lanes(bi, t0, T, Ci, oi);
  ct_vec qs[CT_ATTN_DCAP], acc[CT_ATTN_DCAP];
  CT_ATTN_FOR_D(d) {
    qs[d] = ct_attn_gather(q, oi, d);
    acc[d] = 0.0f;
  }
  ct_vec m, l;
  ct_attn_online(qs, acc, k, v, kend - 1, Ci, t0, last, scale, DM, &m, &l);
  long oo[CT_RB_W], os[CT_RB_W];
  ct_attn_lanes(b * T * C + h * D, t0, T, C, oo);
  ct_attn_lanes(bh * T, t0, T, 1, os);
  CT_ATTN_FOR_D(d)
    if (d < D) ct_attn_scatter(out0, oo, d, acc[d] / l, t0, T);
  ct_attn_scatter(saved, os, 0, m + log(l), t0, T);
}

/* Dsum of query rows t0 + lane into saved; with outs bit 0, dq = scale sum_s dS k[s]
 * with dS = P (dy . v[s] - Dsum), P = exp(S - L), over blocks of CT_ATTN_KB keys. */
CT_ATTN_INLINE void ct_attn_dq_rows(CT_ATTN_ARGS, const int DM) {
  long blk = (long)get_global_id(0), bh = (long)get_global_id(1);
  if (blk * CT_RB_W >= T || bh >= B * H) return;
  long b = bh / H, h = bh - b * H, t0 = blk * CT_RB_W;
  long bi = b * T * Ci + h * Di, kend = min(T, t0 + CT_RB_W);
  k += inoff + bi;
  v += 2 * inoff + bi;
  y += 3 * inoff;
  dy += 4 * inoff;
  ct_ivec last = min((int)t0 + CT_ATTN_LANES, (ct_ivec)(int)(kend - 1));
  long oi[CT_RB_W], os[CT_RB_W];
  ct_attn_lanes(bi, t0, T, Ci, oi);
  ct_attn_lanes(bh * T, t0, T, 1, os);
  ct_vec qs[CT_ATTN_DCAP], g[CT_ATTN_DCAP], acc[CT_ATTN_DCAP], dsum = 0.0f;
  CT_ATTN_FOR_D(d) {
    g[d] = ct_attn_gather(dy, oi, d);
    dsum = fma(g[d], ct_attn_gather(y, oi, d), dsum);
  }
  ct_attn_scatter(saved + B * H * T, os, 0, dsum, t0, T);
  if (!(outs & 1)) return;
  CT_ATTN_FOR_D(d) {
    qs[d] = ct_attn_gather(q, oi, d);
    acc[d] = 0.0f;
  }
  ct_vec L = ct_attn_gather(saved, os, 0);
  for (long s0 = 0; s0 < kend; s0 += CT_ATTN_KB) {
    global const float *kr[CT_ATTN_KB], *vr[CT_ATTN_KB];
    ct_attn_block(k, s0, kend - 1, Ci, kr);
    ct_attn_block(v, s0, kend - 1, Ci, vr);
    ct_vec p[CT_ATTN_KB], dp[CT_ATTN_KB];
CT_ATTN_UNROLL_KB
    for (int j = 0; j < CT_ATTN_KB; j++) p[j] = dp[j] = 0.0f;
    CT_ATTN_FOR_D(d) {
      ct_vec qd = qs[d], gd = g[d];
CT_ATTN_UNROLL_KB
      for (int j = 0; j < CT_ATTN_KB; j++) {
        p[j] = fma(qd, (ct_vec)kr[j][d], p[j]);
        dp[j] = fma(gd, (ct_vec)vr[j][d], dp[j]);
      }
    }
CT_ATTN_UNROLL_KB
    for (int j = 0; j < CT_ATTN_KB; j++) p[j] = exp(p[j] * scale - L);
    if (s0 + CT_ATTN_KB - 1 > t0)
CT_ATTN_UNROLL_KB
      for (int j = 0; j < CT_ATTN_KB; j++)
        p[j] = select(p[j], (ct_vec)0.0f, (ct_ivec)(int)(s0 + j) > last);
CT_ATTN_UNROLL_KB
    for (int j = 0; j < CT_ATTN_KB; j++) p[j] *= dp[j] - dsum; /* dS */
    CT_ATTN_FOR_D(d) {
      ct_vec a = acc[d];
CT_ATTN_UNROLL_KB
      for (int j = 0; j < CT_ATTN_KB; j++) a = fma(p[j], (ct_vec)kr[j][d], a);
      acc[d] = a;
    }
  }
  long oo[CT_RB_W];
  ct_attn_lanes(b * T * C + h * D, t0, T, C, oo);
  CT_ATTN_FOR_D(d)
    if (d < D) ct_attn_scatter(out0, oo, d, acc[d] * scale, t0, T);
}

/* dk and dv of key rows s0 + lane over blocks of CT_ATTN_KB queries t >= s0:
 * dv = sum_t P dy[t], dk = scale sum_t dS q[t]; queries before a lane's row (and
 * past T) get P = 0. Needs L and Dsum in saved. */
CT_ATTN_INLINE void ct_attn_dkdv_rows(CT_ATTN_ARGS, const int DM) {
  long blk = (long)get_global_id(0), bh = (long)get_global_id(1);
  if (blk * CT_RB_W >= T || bh >= B * H) return;
  long b = bh / H, h = bh - b * H, s0 = blk * CT_RB_W, bi = b * T * Ci + h * Di;
  q += bi;
  k += inoff;
  v += 2 * inoff;
  dy += 4 * inoff + bi;
  ct_ivec first = (int)s0 + CT_ATTN_LANES; /* each lane's key row: its first query */
  global const float *L = saved + bh * T, *Ds = saved + B * H * T + bh * T;
  long oi[CT_RB_W];
  ct_attn_lanes(bi, s0, T, Ci, oi);
  ct_vec ks[CT_ATTN_DCAP], vs[CT_ATTN_DCAP], dk[CT_ATTN_DCAP], dv[CT_ATTN_DCAP];
  CT_ATTN_FOR_D(d) {
    ks[d] = ct_attn_gather(k, oi, d);
    vs[d] = ct_attn_gather(v, oi, d);
    dk[d] = dv[d] = 0.0f;
  }
  for (long t0 = s0; t0 < T; t0 += CT_ATTN_KB) {
    global const float *qr[CT_ATTN_KB], *dyr[CT_ATTN_KB];
    ct_attn_block(q, t0, T - 1, Ci, qr);
    ct_attn_block(dy, t0, T - 1, Ci, dyr);
    ct_vec p[CT_ATTN_KB], ds[CT_ATTN_KB];
CT_ATTN_UNROLL_KB
    for (int j = 0; j < CT_ATTN_KB; j++) p[j] = ds[j] = 0.0f;
    CT_ATTN_FOR_D(d) {
      ct_vec kd = ks[d], vd = vs[d];
CT_ATTN_UNROLL_KB
      for (int j = 0; j < CT_ATTN_KB; j++) {
        p[j] = fma(kd, (ct_vec)qr[j][d], p[j]);
        ds[j] = fma(vd, (ct_vec)dyr[j][d], ds[j]);
      }
    }
CT_ATTN_UNROLL_KB
    for (int j = 0; j < CT_ATTN_KB; j++) {
      long t = min(t0 + j, T - 1);
      p[j] = exp(p[j] * scale - L[t]);
      ds[j] -= Ds[t];
    }
    if (t0 < s0 + CT_RB_W - 1 || t0 + CT_ATTN_KB > T)
CT_ATTN_UNROLL_KB
      for (int j = 0; j < CT_ATTN_KB; j++) /* query t0 + j before a lane's key, or past T (-1) */
        p[j] = select(p[j], (ct_vec)0.0f,
                      (ct_ivec)(t0 + j < T ? (int)(t0 + j) : -1) < first);
CT_ATTN_UNROLL_KB
    for (int j = 0; j < CT_ATTN_KB; j++) ds[j] *= p[j];
    CT_ATTN_FOR_D(d) {
      ct_vec a = dv[d], e = dk[d];
CT_ATTN_UNROLL_KB
      for (int j = 0; j < CT_ATTN_KB; j++) {
        a = fma(p[j], (ct_vec)dyr[j][d], a);
        e = fma(ds[j], (ct_vec)qr[j][d], e);
      }
      dv[d] = a;
      dk[d] = e;
    }
  }
  long oo[CT_RB_W];
  ct_attn_lanes(b * T * C + h * D, s0, T, C, oo);
  CT_ATTN_FOR_D(d)
    if (d < D) {
      if (outs & 2) ct_attn_scatter(out1, oo, d, dk[d] * scale, s0, T);
      if (outs & 4) ct_attn_scatter(out2, oo, d, dv[d], s0, T);
    }
}

/* DM = 16 as a constant (the loops over d unroll whole), and DM = Di. */
kernel void ct_attn_fwd_16(CT_ATTN_ARGS) { ct_attn_fwd_rows(CT_ATTN_PASS, 16); }
kernel void ct_attn_dq_16(CT_ATTN_ARGS) { ct_attn_dq_rows(CT_ATTN_PASS, 16); }
kernel void ct_attn_dkdv_16(CT_ATTN_ARGS) { ct_attn_dkdv_rows(CT_ATTN_PASS, 16); }
kernel void ct_attn_fwd_n(CT_ATTN_ARGS) { ct_attn_fwd_rows(CT_ATTN_PASS, Di); }
kernel void ct_attn_dq_n(CT_ATTN_ARGS) { ct_attn_dq_rows(CT_ATTN_PASS, Di); }
kernel void ct_attn_dkdv_n(CT_ATTN_ARGS) { ct_attn_dkdv_rows(CT_ATTN_PASS, Di); }

/* a . b over [0, D): partial sums of CT_KB products added with Kahan compensation
 * (as the matrix products), so long heads keep the error of one block. */
float ct_attn_dot(global const float *a, global const float *b, int D) {
  float s = 0.0f, err = 0.0f;
  for (int d0 = 0; d0 < D; d0 += CT_KB) {
    float part = 0.0f;
    for (int d = d0; d < min(D, d0 + CT_KB); d++) part = fma(a[d], b[d], part);
    CT_KAHAN_ADD(s, err, part, float);
  }
  return s;
}

/* Forward of query row t (any D, inputs in the original layout): L by a running
 * max and sum, then y = sum_s P v[s] accumulated in y's row. */
kernel void ct_attn_fwd_any(CT_ATTN_ARGS) {
  long t = (long)get_global_id(0), bh = (long)get_global_id(1);
  if (t >= T || bh >= B * H) return;
  long b = bh / H, base = b * T * C + (bh - b * H) * D;
  global const float *qr = q + base + t * C;
  float m = -INFINITY, l = 0.0f;
  for (long s = 0; s <= t; s++) {
    float sc = ct_attn_dot(qr, k + base + s * C, D) * scale, mx = fmax(m, sc);
    l = l * exp(m - mx) + exp(sc - mx);
    m = mx;
  }
  float Lt = m + log(l);
  global float *yr = out0 + base + t * C;
  for (int d = 0; d < D; d++) yr[d] = 0.0f;
  for (long s = 0; s <= t; s++) {
    global const float *vr = v + base + s * C;
    float p = exp(ct_attn_dot(qr, k + base + s * C, D) * scale - Lt);
    for (int d = 0; d < D; d++) yr[d] = fma(p, vr[d], yr[d]);
  }
  saved[bh * T + t] = Lt;
}

/* Dsum of query row t (any D); with outs bit 0, dq accumulated in dq's row. */
kernel void ct_attn_dq_any(CT_ATTN_ARGS) {
  long t = (long)get_global_id(0), bh = (long)get_global_id(1);
  if (t >= T || bh >= B * H) return;
  long b = bh / H, base = b * T * C + (bh - b * H) * D;
  global const float *qr = q + base + t * C, *dyr = dy + base + t * C;
  float dsum = ct_attn_dot(dyr, y + base + t * C, D), Lt = saved[bh * T + t];
  saved[B * H * T + bh * T + t] = dsum;
  if (!(outs & 1)) return;
  global float *dq = out0 + base + t * C;
  for (int d = 0; d < D; d++) dq[d] = 0.0f;
  for (long s = 0; s <= t; s++) {
    global const float *kr = k + base + s * C;
    float p = exp(ct_attn_dot(qr, kr, D) * scale - Lt);
    float ds = p * (ct_attn_dot(dyr, v + base + s * C, D) - dsum) * scale;
    for (int d = 0; d < D; d++) dq[d] = fma(ds, kr[d], dq[d]);
  }
}

/* dk and dv of key row s (any D), accumulated in their rows (those outs asks for). */
kernel void ct_attn_dkdv_any(CT_ATTN_ARGS) {
  long s = (long)get_global_id(0), bh = (long)get_global_id(1);
  if (s >= T || bh >= B * H) return;
  long b = bh / H, base = b * T * C + (bh - b * H) * D;
  global const float *kr = k + base + s * C, *vr = v + base + s * C;
  global const float *L = saved + bh * T, *Ds = saved + B * H * T + bh * T;
  global float *dk = out1 + base + s * C, *dv = out2 + base + s * C;
  for (int d = 0; d < D; d++) {
    if (outs & 2) dk[d] = 0.0f;
    if (outs & 4) dv[d] = 0.0f;
  }
  for (long t = s; t < T; t++) {
    global const float *qr = q + base + t * C, *dyr = dy + base + t * C;
    float p = exp(ct_attn_dot(qr, kr, D) * scale - L[t]);
    float ds = p * (ct_attn_dot(dyr, vr, D) - Ds[t]) * scale;
    for (int d = 0; d < D; d++) {
      if (outs & 4) dv[d] = fma(p, dyr[d], dv[d]);
      if (outs & 2) dk[d] = fma(ds, qr[d], dk[d]);
    }
  }
}

/* ---- kv_attention: rows of q, k, v, y SEQ [B,T,C] at positions pos[b,t] over the
 * key and value caches kc, vc [B,H,L,D] (H heads of width D = C/H) ---------------
 * First every row's k and v go into the caches at its position p (head h at
 * [b,h,p,:]; rows in order t, so of two rows at one position the later stays), then
 * row (b,t) of head h attends to cache rows s <= p:
 *   y = sum_s softmax_s(q . kc[s] scale) vc[s].
 * A batch row b with a position outside [0, L) is left alone (its caches untouched,
 * its y rows 0); the first bad position over [B,T] is recorded (kind 2) by one
 * work-item. Decoding (T = 1) runs ct_kv_fused: one work-item per (b, h) writes its
 * rows, then attends (its own writes are visible to it). Longer runs write with
 * ct_kv_write, then attend: heads of width 16 or a multiple of 16 up to CT_ATTN_DCAP
 * with ct_kv_attend_16 / _n, CT_RB_W rows of one head per work-item as the lanes of
 * ct_vec values (as ct_attn_fwd_rows, each lane masked at its own position); other
 * widths with ct_kv_attend, one row per work-item.
 * One row per work-item (ct_kv_fused, ct_kv_attend) holds q and its accumulators as
 * CT_RB_W-wide vectors over d (heads up to CT_KV_DCAP wide; the last vector masked
 * when CT_RB_W does not divide D): a score is CT_RB_W-lane products summed across
 * the lanes, the values are read as vectors. Keys go in blocks of CT_KV_KB (one max
 * and rescale each, an 8-lane exp). Wider heads take two passes of Kahan-blocked
 * dots with y accumulated in place. Every sum runs in a fixed order. */

#define CT_KV_DCAP 128                          /* widest head held in private vectors */
#define CT_KV_VCAP (CT_KV_DCAP / CT_RB_W)       /* its vectors */
#define CT_KV_KB 8                              /* keys per block */

/* Whether every position of batch row b is in [0, L). */
bool ct_kv_row_ok(global const int *pos, long b, long T, long L) {
  for (long t = 0; t < T; t++) {
    int p = pos[b * T + t];
    if (p < 0 || (long)p >= L) return false;
  }
  return true;
}

/* Records the first position of [0, n) outside [0, L), if any (kind 2). */
void ct_kv_check(global const int *pos, long n, long L, global int *rec, int node, int op) {
  for (long i = 0; i < n; i++) {
    int p = pos[i];
    if (p < 0 || (long)p >= L) {
      ct_record_bad_id(rec, node, op, 2, p, i, L);
      return;
    }
  }
}

/* Vector i of the row x of width D; lanes past D read as 0. */
CT_ATTN_INLINE ct_vec ct_kv_load(global const float *x, int i, int D) {
  if ((i + 1) * CT_RB_W <= D) return CT_VLOAD(i, x);
  float t[CT_RB_W];
  for (int l = 0; l < CT_RB_W; l++) t[l] = i * CT_RB_W + l < D ? x[i * CT_RB_W + l] : 0.0f;
  return CT_VLOAD(0, t);
}

/* Sum of the lanes of a, halving (a fixed order). */
CT_ATTN_INLINE float ct_kv_hsum(ct_vec a) {
#if CT_RB_W == 16
  float8 a8 = a.lo + a.hi;
#elif CT_RB_W == 8
  float8 a8 = a;
#endif
#if CT_RB_W >= 8
  float4 a4 = a8.lo + a8.hi;
#else
  float4 a4 = a;
#endif
  float2 a2 = a4.lo + a4.hi;
  return a2.x + a2.y;
}

/* y row yr of query row qr over cache rows 0..p of one head (kh, vh: row s at s D),
 * D <= CT_KV_DCAP in nv = ceil(D / CT_RB_W) vectors: online softmax over blocks of
 * CT_KV_KB keys. */
CT_ATTN_INLINE void ct_kv_row_vec(global const float *qr, global const float *kh,
                                   global const float *vh, long p, int D, float scale,
                                   global float *yr, const int nv) {
  ct_vec qv[CT_KV_VCAP], acc[CT_KV_VCAP];
  for (int i = 0; i < nv; i++) {
    qv[i] = ct_kv_load(qr, i, D) * scale;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (long s0 = 0; s0 <= p; s0 += CT_KV_KB) {
    global const float *kr[CT_KV_KB], *vr[CT_KV_KB];
    float sc[CT_KV_KB];
    CT_ATTN_UNROLL_KB
    for (int j = 0; j < CT_KV_KB; j++) {
      long s = min(s0 + j, p); /* keys past p stand in as p, weighted 0 */
      kr[j] = kh + s * D;
      vr[j] = vh + s * D;
      ct_vec a = 0.0f;
      for (int i = 0; i < nv; i++) a = fma(qv[i], ct_kv_load(kr[j], i, D), a);
      sc[j] = s0 + j <= p ? ct_kv_hsum(a) : -INFINITY;
    }
    float8 w = vload8(0, sc);
    float4 m4 = fmax(w.lo, w.hi);
    float2 m2 = fmax(m4.lo, m4.hi);
    float mx = fmax(m, fmax(m2.x, m2.y));
    float alpha = exp(m - mx); /* 0 on the first block (m = -inf) */
    w = exp(w - mx);
    float4 w4 = w.lo + w.hi;
    float2 w2 = w4.lo + w4.hi;
    l = l * alpha + (w2.x + w2.y);
    m = mx;
    vstore8(w, 0, sc);
    for (int i = 0; i < nv; i++) {
      ct_vec a = acc[i] * alpha;
      CT_ATTN_UNROLL_KB
      for (int j = 0; j < CT_KV_KB; j++) a = fma((ct_vec)sc[j], ct_kv_load(vr[j], i, D), a);
      acc[i] = a;
    }
  }
  float inv = 1.0f / l;
  for (int i = 0; i < nv; i++) {
    ct_vec o = acc[i] * inv;
    if ((i + 1) * CT_RB_W <= D) {
      CT_VSTORE(o, i, yr);
    } else {
      float t[CT_RB_W];
      CT_VSTORE(o, 0, t);
      for (int l2 = 0; i * CT_RB_W + l2 < D; l2++) yr[i * CT_RB_W + l2] = t[l2];
    }
  }
}

/* The same for any D: the log-sum-exp by a running max and sum, then y accumulated
 * in its row (Kahan-blocked dots, as ct_attn_fwd_any). */
void ct_kv_row_any(global const float *qr, global const float *kh, global const float *vh,
                   long p, int D, float scale, global float *yr) {
  float m = -INFINITY, l = 0.0f;
  for (long s = 0; s <= p; s++) {
    float sc = ct_attn_dot(qr, kh + s * D, D) * scale, mx = fmax(m, sc);
    l = l * exp(m - mx) + exp(sc - mx);
    m = mx;
  }
  float lse = m + log(l);
  for (int d = 0; d < D; d++) yr[d] = 0.0f;
  for (long s = 0; s <= p; s++) {
    global const float *vr = vh + s * D;
    float w = exp(ct_attn_dot(qr, kh + s * D, D) * scale - lse);
    for (int d = 0; d < D; d++) yr[d] = fma(w, vr[d], yr[d]);
  }
}

/* ct_kv_row_vec at head width DC, a constant (its vectors stay in registers). */
#define CT_KV_ROW_VEC(DC) \
  ct_kv_row_vec(q + o, kc + hb, vc + hb, p, DC, scale, y + o, ((DC) + CT_RB_W - 1) / CT_RB_W)

/* Row (b, t) of head h: attends, or writes 0 when ok is false. */
void ct_kv_attend_row(global const float *q, global const int *pos, global const float *kc,
                      global const float *vc, global float *y, long b, long h, long t, long T,
                      long C, long H, long L, int D, float scale, bool ok) {
  long o = (b * T + t) * C + h * D;
  if (!ok) {
    for (int d = 0; d < D; d++) y[o + d] = 0.0f;
    return;
  }
  long hb = (b * H + h) * L * D, p = pos[b * T + t];
  switch (D) {
  case 16: CT_KV_ROW_VEC(16); break;
  case 32: CT_KV_ROW_VEC(32); break;
  case 64: CT_KV_ROW_VEC(64); break;
  case 128: CT_KV_ROW_VEC(128); break;
  default:
    if (D <= CT_KV_DCAP) CT_KV_ROW_VEC(D);
    else ct_kv_row_any(q + o, kc + hb, vc + hb, p, D, scale, y + o);
  }
}

#define CT_KV_ARGS                                                                        \
  global const float *q, global const float *k, global const float *v,                   \
      global const int *pos, global float *kc, global float *vc, global float *y,        \
      global int *rec, long B, long T, long C, long H, long L, int D, float scale, int node, \
      int op

/* One work-item per (b, h) (dimension 0): the rows of b in order t into head h of
 * the caches, then each row's attention. */
kernel void ct_kv_fused(CT_KV_ARGS) {
  long bh = (long)get_global_id(0);
  if (bh >= B * H) return;
  long b = bh / H, h = bh - b * H;
  if (bh == 0) ct_kv_check(pos, B * T, L, rec, node, op);
  bool ok = ct_kv_row_ok(pos, b, T, L);
  for (long t = 0; ok && t < T; t++) {
    long src = (b * T + t) * C + h * D, dst = (bh * L + pos[b * T + t]) * D;
    for (int d = 0; d < D; d++) {
      kc[dst + d] = k[src + d];
      vc[dst + d] = v[src + d];
    }
  }
  for (long t = 0; t < T; t++)
    ct_kv_attend_row(q, pos, kc, vc, y, b, h, t, T, C, H, L, D, scale, ok);
}

/* One work-item per channel c = h D + d (dimension 0) and batch row b (1): k and v
 * of the rows of b in order t into the caches. */
kernel void ct_kv_write(CT_KV_ARGS) {
  long c = (long)get_global_id(0), b = (long)get_global_id(1);
  if (c >= C || b >= B) return;
  if (c == 0 && b == 0) ct_kv_check(pos, B * T, L, rec, node, op);
  if (!ct_kv_row_ok(pos, b, T, L)) return;
  long h = c / D, d = c - h * D;
  for (long t = 0; t < T; t++) {
    long dst = ((b * H + h) * L + pos[b * T + t]) * D + d;
    kc[dst] = k[(b * T + t) * C + c];
    vc[dst] = v[(b * T + t) * C + c];
  }
}

/* One work-item per row t (dimension 0) and b H + h (1): its attention over the
 * written caches. */
kernel void ct_kv_attend(CT_KV_ARGS) {
  long t = (long)get_global_id(0), bh = (long)get_global_id(1);
  if (t >= T || bh >= B * H) return;
  long b = bh / H, h = bh - b * H;
  ct_kv_attend_row(q, pos, kc, vc, y, b, h, t, T, C, H, L, D, scale, ct_kv_row_ok(pos, b, T, L));
}

/* Attention of rows t0 + lane (dimension 0: blocks of CT_RB_W rows; 1: b H + h) over
 * the written caches, DM = D a multiple of CT_ATTN_DCH up to CT_ATTN_DCAP: online
 * softmax over blocks of CT_ATTN_KB keys up to the lanes' last position, keys past a
 * lane's position scoring -inf. */
CT_ATTN_INLINE void ct_kv_rows(CT_KV_ARGS, const int DM) {
  long blk = (long)get_global_id(0), bh = (long)get_global_id(1);
  if (blk * CT_RB_W >= T || bh >= B * H) return;
  long b = bh / H, h = bh - b * H, t0 = blk * CT_RB_W;
  long oo[CT_RB_W];
  ct_attn_lanes(b * T * C + h * D, t0, T, C, oo);
  if (!ct_kv_row_ok(pos, b, T, L)) {
    CT_ATTN_FOR_D(d) ct_attn_scatter(y, oo, d, 0.0f, t0, T);
    return;
  }
  int pl[CT_RB_W], pmin = (int)L, pmax = 0;
  for (int l = 0; l < CT_RB_W; l++) {
    pl[l] = pos[b * T + min(t0 + l, T - 1)];
    pmin = min(pmin, pl[l]);
    pmax = max(pmax, pl[l]);
  }
  ct_ivec last = CT_VLOAD(0, pl); /* each lane's last key */
  global const float *kh = kc + bh * L * D, *vh = vc + bh * L * D;
  ct_vec qs[CT_ATTN_DCAP], acc[CT_ATTN_DCAP];
  CT_ATTN_FOR_D(d) {
    qs[d] = ct_attn_gather(q, oo, d);
    acc[d] = 0.0f;
  }
  ct_vec m, l;
  ct_attn_online(qs, acc, kh, vh, pmax, D, pmin, last, scale, DM, &m, &l);
  CT_ATTN_FOR_D(d) ct_attn_scatter(y, oo, d, acc[d] / l, t0, T);
}

/* DM = 16 as a constant (the loops over d unroll whole), and DM = D. */
kernel void ct_kv_attend_16(CT_KV_ARGS) {
  ct_kv_rows(q, k, v, pos, kc, vc, y, rec, B, T, C, H, L, D, scale, node, op, 16);
}
kernel void ct_kv_attend_n(CT_KV_ARGS) {
  ct_kv_rows(q, k, v, pos, kc, vc, y, rec, B, T, C, H, L, D, scale, node, op, D);
}
