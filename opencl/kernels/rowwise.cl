/* SPDX-License-Identifier: MIT */
/* Row-wise kernels over a rows x cols matrix: one work-group per row (its size
 * a power of two; 1 on CPU devices), reductions in a fixed tree order, so
 * results do not depend on timing. Work-items stride over the columns of their
 * row and Kahan-sum their share. */

/* yr[0, len) = softmax(xr[0, len)), max-subtracted, by the whole work-group
 * (exp once per entry: yr holds it until the division); returns ln sum exp. */
float ct_softmax_row(global const float *xr, global float *yr, long len, local float *tmp) {
  long lid = (long)get_local_id(0), size = (long)get_local_size(0);
  float mx = xr[0];
  for (long j = lid; j < len; j += size)
    if (xr[j] > mx) mx = xr[j];
  mx = ct_group_max(mx, tmp);
  float s = 0.0f, err = 0.0f;
  for (long j = lid; j < len; j += size) {
    float e = exp(xr[j] - mx);
    yr[j] = e;
    CT_KAHAN_ADD(s, err, e, float);
  }
  s = ct_group_sum(s, tmp);
  for (long j = lid; j < len; j += size) yr[j] = yr[j] / s;
  return mx + log(s);
}

/* <a, b> over [0, len) by the whole work-group, every work-item gets it. */
float ct_row_dot(global const float *a, global const float *b, long len, local float *tmp) {
  long lid = (long)get_local_id(0), size = (long)get_local_size(0);
  float s = 0.0f, err = 0.0f;
  for (long j = lid; j < len; j += size) CT_KAHAN_ADD(s, err, a[j] * b[j], float);
  return ct_group_sum(s, tmp);
}

/* y = softmax(x) per row. */
kernel void ct_softmax_fwd(global const float *x, global float *y, long cols, local float *tmp) {
  long row = (long)get_group_id(0);
  ct_softmax_row(x + row * cols, y + row * cols, cols, tmp);
}

/* dx = y * (dy - <dy, y>) per row. */
kernel void ct_softmax_rev(global const float *y, global const float *dy, global float *dx,
                           long cols, local float *tmp) {
  long row = (long)get_group_id(0);
  long lid = (long)get_local_id(0), size = (long)get_local_size(0);
  global const float *yr = y + row * cols, *dyr = dy + row * cols;
  global float *dxr = dx + row * cols;
  float dot = ct_row_dot(dyr, yr, cols, tmp);
  for (long j = lid; j < cols; j += size) dxr[j] = yr[j] * (dyr[j] - dot);
}

/* loss = mean over rows of -ln max(p[row, t[row]], 1e-9), in one work-group.
 * Checks every target; the first one outside [0, cols) is recorded and no bad
 * target is used to index (its row adds nothing). */
kernel void ct_xent_fwd(global const float *p, global const int *t, long rows, long cols,
                        global float *loss, global int *rec, int node, int op,
                        local float *ftmp, local long *ltmp) {
  long lid = (long)get_local_id(0), size = (long)get_local_size(0);
  long bad = ct_first_bad_id(t, rows, cols, ltmp);
  float acc = 0.0f;
  for (long i = lid; i < rows; i += size) {
    int ti = t[i];
    if (ti < 0 || (long)ti >= cols) continue;
    float pt = p[i * cols + ti];
    acc -= log(pt < CT_P_FLOOR ? CT_P_FLOOR : pt); /* NaN passes through */
  }
  acc = ct_group_sum(acc, ftmp);
  if (lid != 0) return;
  loss[0] = acc / (float)rows;
  if (bad < rows) ct_record_bad_id(rec, node, op, 1, t[bad], bad, cols);
}

/* dp = 0 except dp[row, t] = -(dloss / rows) / p[row, t] where p > 1e-9 (a
 * clamped entry has a constant loss). One work-item per element; dloss is the
 * device scalar the loss cotangent lives in. Bad targets give a zero row. */
kernel void ct_xent_rev(global const float *p, global const int *t, global const float *dloss,
                        global float *dp, long rows, long cols) {
  long e = (long)get_global_id(0);
  if (e >= rows * cols) return;
  long i = e / cols, j = e - i * cols;
  float g = 0.0f;
  if (t[i] == j) {
    float pt = p[e];
    if (pt > CT_P_FLOOR) g = -(dloss[0] / (float)rows) / pt;
  }
  dp[e] = g;
}

/* Fused softmax-cross-entropy, first pass: probs = softmax(x) per row (saved for
 * the reverse) and the row's loss -max(x[t] - lse, ln 1e-9) into row_loss (0 for
 * a bad target, which the second pass reports). */
kernel void ct_softmax_xent_rows(global const float *x, global const int *t, global float *probs,
                                 global float *row_loss, long cols, local float *tmp) {
  long row = (long)get_group_id(0);
  global const float *xr = x + row * cols;
  float lse = ct_softmax_row(xr, probs + row * cols, cols, tmp);
  if (get_local_id(0) != 0) return;
  int ti = t[row];
  float l = 0.0f;
  if (ti >= 0 && (long)ti < cols) {
    float d = xr[ti] - lse;
    l = -(d < CT_LOG_P_FLOOR ? CT_LOG_P_FLOOR : d);
  }
  row_loss[row] = l;
}

/* Fused softmax-cross-entropy, second pass in one work-group: loss = mean of
 * the row losses; checks every target and records the first bad one. */
kernel void ct_softmax_xent_loss(global const float *row_loss, global const int *t, long rows,
                                 long cols, global float *loss, global int *rec, int node, int op,
                                 local float *ftmp, local long *ltmp) {
  long lid = (long)get_local_id(0), size = (long)get_local_size(0);
  long bad = ct_first_bad_id(t, rows, cols, ltmp);
  float acc = 0.0f;
  for (long i = lid; i < rows; i += size) acc += row_loss[i];
  acc = ct_group_sum(acc, ftmp);
  if (lid != 0) return;
  loss[0] = acc / (float)rows;
  if (bad < rows) ct_record_bad_id(rec, node, op, 1, t[bad], bad, cols);
}

/* dx = (dloss / rows) * (probs - onehot(t)) per element; a row whose target
 * probability is clamped (<= 1e-9), or whose target is bad, gets zero. */
kernel void ct_softmax_xent_rev(global const float *probs, global const int *t,
                                global const float *dloss, global float *dx, long rows,
                                long cols) {
  long e = (long)get_global_id(0);
  if (e >= rows * cols) return;
  long i = e / cols, j = e - i * cols;
  int ti = t[i];
  float g = 0.0f;
  if (ti >= 0 && (long)ti < cols && probs[i * cols + ti] > CT_P_FLOOR)
    g = (dloss[0] / (float)rows) * (probs[e] - (ti == j ? 1.0f : 0.0f));
  dx[e] = g;
}

/* Column sums of dy [rows, cols] over row chunks of chunk rows:
 * part[c, j] = sum of dy[i, j] for i in chunk c. Sums are Kahan-compensated
 * (the kernels are memory-bound; the extra additions are free). */
kernel void ct_colsum_part(global const float *dy, global float *part, long rows, long cols,
                           long chunk) {
  long j = (long)get_global_id(0), c = (long)get_global_id(1);
  if (j >= cols || c * chunk >= rows) return;
  long end = min(rows, (c + 1) * chunk);
  float acc = 0.0f, err = 0.0f;
  for (long i = c * chunk; i < end; i++) {
    float y = dy[i * cols + j] - err, s = acc + y;
    err = (s - acc) - y;
    acc = s;
  }
  part[c * cols + j] = acc;
}

/* db[j] += sum over chunks of part[offset + c * cols + j], in chunk order. */
kernel void ct_colsum_finish(global const float *part, global float *db, long chunks, long cols,
                             long offset) {
  long j = (long)get_global_id(0);
  if (j >= cols) return;
  part += offset;
  float acc = 0.0f, err = 0.0f;
  for (long c = 0; c < chunks; c++) {
    float y = part[c * cols + j] - err, s = acc + y;
    err = (s - acc) - y;
    acc = s;
  }
  db[j] += acc;
}
