/* SPDX-License-Identifier: MIT */
/* Element-wise kernels: one work-item per element; the global size is rounded
 * up to whole work-groups, so every kernel checks its bound. */

/* z = x + y over n elements. */
kernel void ct_add(global const float *x, global const float *y, global float *z, long n) {
  long i = (long)get_global_id(0);
  if (i < n) z[i] = x[i] + y[i];
}
