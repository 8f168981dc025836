/* Element-wise kernels: one work-item per element; the global size is rounded
 * up to whole work-groups, so every kernel checks its bound. */

/* z = x + y over n elements. */
kernel void ct_add(global const float *x, global const float *y, global float *z, long n) {
  long i = (long)get_global_id(0);
  if (i < n) z[i] = x[i] + y[i];
}

/* Plain SGD: p -= lr * g, unless a kernel recorded an error since the last
 * sync (then the parameters stay those from before the bad batch). */
kernel void ct_sgd(global float *p, global const float *g, float lr, long n,
                   global const int *rec) {
  long i = (long)get_global_id(0);
  if (i >= n || rec[CT_REC_FLAG] != 0) return;
  float step = lr * g[i];
  p[i] = p[i] - step;
}
