/* SPDX-License-Identifier: MIT */
/* Reference optimizer kernels: gradient norms, the step kernel and the
 * updates, in the float arithmetic backend_impl.h specifies. */
#include <math.h>
#include "cpu_kernels.h"

ct_status ct__cpu_sumsq(void *ctx, const void *x, int64_t n, void *sumsq, int index) {
  const float *v = x;
  double acc = 0.0;
  for (int64_t i = 0; i < n; i++) acc += (double)v[i] * v[i];
  ((float *)sumsq)[index] = (float)acc;
  return CT_OK;
}

/* The schedule, shared with ct_optimizer_lr_at's definition. */
static float ct__scheduled_lr(const float *h, float t) {
  float peak = h[CT__HYPER_PEAK_LR], lo = h[CT__HYPER_MIN_LR], w = h[CT__HYPER_WARMUP],
        total = h[CT__HYPER_TOTAL];
  if (w > 0.0f && t <= w) return peak * t / w;
  if (total == 0.0f) return peak;
  if (t >= total) return lo;
  return lo + 0.5f * (peak - lo) * (1.0f + cosf(3.14159265358979f * (t - w) / (total - w)));
}

ct_status ct__cpu_hyper_step(void *ctx, void *hyper, const void *sumsq, int n) {
  float *h = hyper;
  const float *sq = sumsq;
  float t = h[CT__HYPER_STEP] + 1.0f, sum = 0.0f;
  h[CT__HYPER_STEP] = t;
  h[CT__HYPER_LR] = ct__scheduled_lr(h, t);
  h[CT__HYPER_BC1] = 1.0f - powf(h[CT__HYPER_BETA1], t);
  h[CT__HYPER_BC2] = 1.0f - powf(h[CT__HYPER_BETA2], t);
  for (int i = 0; i < n; i++) sum += sq[i];
  float norm = sqrtf(sum), clip = h[CT__HYPER_CLIP];
  h[CT__HYPER_NORM] = norm;
  h[CT__HYPER_SCALE] = clip > 0.0f && norm > clip ? clip / (norm + 1e-6f) : 1.0f;
  return CT_OK;
}

ct_status ct__cpu_sgd_update(void *ctx, const void *hyper, void *param, const void *grad,
                             void *state, int64_t n, int64_t n_decay) {
  const float *h = hyper, *g = grad;
  float *p = param, lr = h[CT__HYPER_LR], scale = h[CT__HYPER_SCALE];
  for (int64_t i = 0; i < n; i++) p[i] -= lr * (g[i] * scale);
  return CT_OK;
}

/* Elements [0, n_decay) take weight decay, the rest do not. */
ct_status ct__cpu_adamw_update(void *ctx, const void *hyper, void *param, const void *grad,
                               void *state, int64_t n, int64_t n_decay) {
  if (n <= 0) return CT_OK;
  const float *h = hyper, *g = grad;
  float *p = param, *m = state, *v = (float *)state + n;
  float lr = h[CT__HYPER_LR], scale = h[CT__HYPER_SCALE], b1 = h[CT__HYPER_BETA1],
        b2 = h[CT__HYPER_BETA2], eps = h[CT__HYPER_EPS];
  float decayed = 1.0f - lr * h[CT__HYPER_WD];
  float step = lr / h[CT__HYPER_BC1], root_bc2 = sqrtf(h[CT__HYPER_BC2]);
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i] * scale, keep = i < n_decay ? decayed : 1.0f;
    m[i] = b1 * m[i] + (1.0f - b1) * gi;
    v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
    p[i] = p[i] * keep - step * m[i] / (sqrtf(v[i]) / root_bc2 + eps);
  }
  return CT_OK;
}
