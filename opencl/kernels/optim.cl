/* SPDX-License-Identifier: MIT */
/* Optimizer kernels: squared gradient norms, the step kernel and the updates.
 * Every number comes from the optimizer's device record h (slots as in
 * src/backend_impl.h); the arithmetic follows cpu_ref/cpu_optim.c in float. */

#define CT_H_STEP 0
#define CT_H_LR 1
#define CT_H_BC1 2
#define CT_H_BC2 3
#define CT_H_SCALE 4
#define CT_H_NORM 5
#define CT_H_PEAK_LR 8
#define CT_H_MIN_LR 9
#define CT_H_WARMUP 10
#define CT_H_TOTAL 11
#define CT_H_CLIP 12
#define CT_H_BETA1 13
#define CT_H_BETA2 14
#define CT_H_EPS 15
#define CT_H_WD 16

/* out[offset + g] = sum of x[i]^2 (square 1) or x[i] (square 0) over the chunk
 * [g chunk, (g + 1) chunk) of [0, n), one work-group (a power of two) per
 * chunk: Kahan-compensated per work-item, then a fixed tree. Deterministic. */
kernel void ct_sumsq_part(global const float *x, long n, long chunk, int square,
                          global float *out, long offset, local float *tmp) {
  long g = (long)get_group_id(0), lid = (long)get_local_id(0), size = (long)get_local_size(0);
  long end = min(n, (g + 1) * chunk);
  float acc = 0.0f, err = 0.0f;
  for (long i = g * chunk + lid; i < end; i += size) {
    float v = square ? x[i] * x[i] : x[i];
    float y = v - err, s = acc + y;
    err = (s - acc) - y;
    acc = s;
  }
  acc = ct_group_sum(acc, tmp);
  if (lid == 0) out[offset + g] = acc;
}

/* One work-item: advances the step and writes the schedule's rate, the bias
 * corrections, the global norm of n squared norms and the clipping scale. */
kernel void ct_hyper_step(global float *h, global const float *sq, int n,
                          global const int *rec) {
  if (get_global_id(0) != 0 || rec[CT_REC_FLAG] != 0) return; /* no step while an error is pending */
  float t = h[CT_H_STEP] + 1.0f, sum = 0.0f;
  h[CT_H_STEP] = t;
  float peak = h[CT_H_PEAK_LR], lo = h[CT_H_MIN_LR], w = h[CT_H_WARMUP], total = h[CT_H_TOTAL];
  float lr;
  if (w > 0.0f && t <= w)
    lr = peak * t / w;
  else if (total == 0.0f)
    lr = peak;
  else if (t >= total)
    lr = lo;
  else
    lr = lo + 0.5f * (peak - lo) * (1.0f + cos(3.14159265358979f * (t - w) / (total - w)));
  h[CT_H_LR] = lr;
  h[CT_H_BC1] = 1.0f - pow(h[CT_H_BETA1], t);
  h[CT_H_BC2] = 1.0f - pow(h[CT_H_BETA2], t);
  for (int i = 0; i < n; i++) sum += sq[i];
  float norm = sqrt(sum), clip = h[CT_H_CLIP];
  h[CT_H_NORM] = norm;
  h[CT_H_SCALE] = clip > 0.0f && norm > clip ? clip / (norm + 1e-6f) : 1.0f;
}

/* SGD over n elements, grid-stride: p -= lr (g scale), unless a kernel recorded
 * an error since the last sync (then the parameters stay those from before the
 * bad batch). */
kernel void ct_sgd(global float *p, global const float *g, global const float *h, long n,
                   global const int *rec) {
  if (rec[CT_REC_FLAG] != 0) return;
  float lr = h[CT_H_LR], scale = h[CT_H_SCALE];
  for (long i = (long)get_global_id(0); i < n; i += (long)get_global_size(0))
    p[i] = p[i] - lr * (g[i] * scale);
}

/* AdamW over n elements, grid-stride; state is m[n] then v[n]. Elements
 * [0, n_decay) take weight decay: p *= 1 - lr wd first. Nothing changes while
 * an error is recorded. */
kernel void ct_adamw(global float *p, global const float *g, global float *state,
                     global const float *h, long n, long n_decay, global const int *rec) {
  if (rec[CT_REC_FLAG] != 0) return;
  float lr = h[CT_H_LR], scale = h[CT_H_SCALE], b1 = h[CT_H_BETA1], b2 = h[CT_H_BETA2],
        eps = h[CT_H_EPS];
  float decayed = 1.0f - lr * h[CT_H_WD];
  float step = lr / h[CT_H_BC1], root_bc2 = sqrt(h[CT_H_BC2]);
  for (long i = (long)get_global_id(0); i < n; i += (long)get_global_size(0)) {
    float keep = i < n_decay ? decayed : 1.0f;
    float gi = g[i] * scale;
    float m = b1 * state[i] + (1.0f - b1) * gi;
    float v = b2 * state[n + i] + (1.0f - b2) * gi * gi;
    state[i] = m;
    state[n + i] = v;
    p[i] = p[i] * keep - step * m / (sqrt(v) / root_bc2 + eps);
  }
}
