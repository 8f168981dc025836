/* SPDX-License-Identifier: MIT */
/* The backend interface: one table of function pointers per backend. Kernels
 * take buffer handles (a host pointer on cpu_ref, a device pointer or cl_mem
 * elsewhere); shapes come from the node's objects. */
#ifndef CTML_BACKEND_IMPL_H
#define CTML_BACKEND_IMPL_H

#include "internal.h"

/* Arguments of one kernel launch. Forward reads in/params and writes out
 * (and saved); reverse reads dout plus what the op's info says it needs, writes
 * din (entries are NULL where no cotangent is wanted, e.g. TOKENS inputs) and
 * accumulates into dparam (NULL where none is wanted). */
typedef struct ct__kargs {
  const ct_object *in_obj[CT__MAX_IO];
  const ct_object *out_obj[CT__MAX_IO];
  const ct_object *param_obj[CT__MAX_PARAMS];
  int n_in, n_out, n_params;
  void *in[CT__MAX_IO];
  void *out[CT__MAX_IO];
  void *param[CT__MAX_PARAMS];
  void *saved;
  void *dout[CT__MAX_IO];
  void *din[CT__MAX_IO];
  void *dparam[CT__MAX_PARAMS];
  /* The plan node this launch belongs to: device kernels record it with any
   * error they detect (a token id out of range) so sync() can name it. */
  int node;
  ct_op op;
  int64_t attr; /* the node's attribute (ct__node.attr) */
} ct__kargs;

typedef ct_status (*ct__kernel)(void *ctx, const ct__kargs *a);

/* qkv's part j (0: q, 1: k, 2: v) as the arguments of one linear: input x,
 * output j, weight j and its bias (qkv's parameters are (Wq, bq, Wk, bk, Wv, bv),
 * or (Wq, Wk, Wv) without biases). */
static inline ct__kargs ct__qkv_part(const ct__kargs *a, int j) {
  ct__kargs p = *a;
  int s = a->n_params / 3; /* 2 with biases, 1 without */
  p.n_out = 1;
  p.out_obj[0] = a->out_obj[j];
  p.out[0] = a->out[j];
  p.dout[0] = a->dout[j];
  p.n_params = s;
  for (int k = 0; k < s; k++) {
    p.param_obj[k] = a->param_obj[j * s + k];
    p.param[k] = a->param[j * s + k];
    p.dparam[k] = a->dparam[j * s + k];
  }
  return p;
}

/* The optimizer's device record: a buffer of CT__HYPER_COUNT floats. The host
 * writes the configuration slots (ct_trainer_set_optimizer); the step kernel
 * advances the step and writes the per-step slots; update kernels read them.
 * Nothing numeric is a kernel argument, so a recorded step graph stays valid. */
enum {
  CT__HYPER_STEP = 0, /* steps taken (a float count, exact below 2^24) */
  CT__HYPER_LR,       /* learning rate of this step */
  CT__HYPER_BC1,      /* 1 - beta1^t */
  CT__HYPER_BC2,      /* 1 - beta2^t */
  CT__HYPER_SCALE,    /* gradient scale from clipping (1 when not clipped) */
  CT__HYPER_NORM,     /* global gradient norm before clipping */
  CT__HYPER_PEAK_LR = 8,
  CT__HYPER_MIN_LR,
  CT__HYPER_WARMUP,
  CT__HYPER_TOTAL,
  CT__HYPER_CLIP,     /* 0: no clipping */
  CT__HYPER_BETA1,
  CT__HYPER_BETA2,
  CT__HYPER_EPS,
  CT__HYPER_WD,
  CT__HYPER_COUNT = 32
};

/* The step kernel (one work-item), in float arithmetic:
 *   t = h[STEP] + 1; h[STEP] = t
 *   h[LR] = lr(t):  t <= W (W > 0):        peak * t / W
 *                   T == 0 (no decay):     peak
 *                   t >= T:                min
 *                   otherwise:             min + 0.5 (peak - min) (1 + cos(pi (t - W) / (T - W)))
 *   h[BC1] = 1 - beta1^t, h[BC2] = 1 - beta2^t   (powf)
 *   norm = sqrt(sum of sumsq[0..n)); h[NORM] = norm
 *   h[SCALE] = clip > 0 && norm > clip ? clip / (norm + 1e-6) : 1
 * Reads sumsq[n], the squared norms written by sumsq() (the trainer passes one:
 * that of the whole gradient arena). Like the updates, it does nothing while a
 * device-detected error is pending, so the device step count counts the steps
 * that updated the parameters. */
typedef ct_status (*ct__hyper_step_kernel)(void *ctx, void *hyper, const void *sumsq, int n);
/* sumsq[index] = sum of x[i]^2 over n floats, summed in a fixed order (the
 * same n gives the same order, so a step is reproducible bit for bit). */
typedef ct_status (*ct__sumsq_kernel)(void *ctx, const void *x, int64_t n, void *sumsq, int index);
/* Update of n parameter elements (the trainer passes the whole parameter and
 * gradient arenas) from the hyper record; state is NULL for stateless
 * optimizers (AdamW: m[n] then v[n]). Elements [0, n_decay) take weight decay
 * (the arena puts tensors of rank >= 2 first), the rest do not. With
 * g = grad * h[SCALE], lr = h[LR]:
 *   SGD:   p -= lr g
 *   AdamW: p *= 1 - lr wd (i < n_decay); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *          p -= (lr / h[BC1]) m / (sqrt(v) / sqrt(h[BC2]) + eps) */
typedef ct_status (*ct__update_kernel)(void *ctx, const void *hyper, void *param,
                                       const void *grad, void *state, int64_t n,
                                       int64_t n_decay);

struct ct_backend {
  const char *name;
  /* Opens the device: fills *ctx and a device description, or returns
   * CT_ERR_BACKEND_ABSENT with the reason in ct_last_error(). Called once. */
  ct_status (*open)(void **ctx, char *device, size_t device_len);
  ct_status (*alloc)(void *ctx, size_t bytes, void **buf);
  void (*release)(void *ctx, void *buf);
  ct_status (*upload)(void *ctx, void *dst, const void *host, size_t bytes);
  ct_status (*download)(void *ctx, void *host, const void *src, size_t bytes);
  /* The same at a byte offset into the buffer. */
  ct_status (*upload_at)(void *ctx, void *dst, size_t offset, const void *host, size_t bytes);
  ct_status (*download_at)(void *ctx, void *host, const void *src, size_t offset, size_t bytes);
  ct_status (*fill)(void *ctx, void *buf, float value, int64_t n);
  /* Views: *out becomes a buffer handle for the bytes [offset, offset + bytes)
   * of buffer base, usable wherever a buffer is (kernel arguments, transfers,
   * fills). offset is a multiple of view_align(ctx), a power of two >= 4 (cpu:
   * 64, a cache line; cuda: 256, cudaMalloc's alignment; opencl: the device's
   * CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes, which sub-buffers require).
   * release_view frees the handle, never the memory; views are released
   * before their base. The plan keeps parameters and gradients in one buffer
   * each (its arenas) and hands kernels views of them. */
  size_t (*view_align)(void *ctx);
  ct_status (*view)(void *ctx, void *base, size_t offset, size_t bytes, void **out);
  void (*release_view)(void *ctx, void *view);
  /* Waits for queued work. Reports, once, the first error a kernel detected on
   * the device since the last sync (CT_ERR_RANGE for an id out of range, with
   * "node N (op): token id V at position P is outside [0, L)") and clears it.
   * After such an error, update kernels leave parameters untouched until the
   * error has been reported. Host-side backends detect errors in the kernel call
   * itself and return CT_OK here. */
  ct_status (*sync)(void *ctx);
  /* Declared capability; a cell whose kernel is NULL must answer false here. */
  bool (*supports)(ct_op op, ct_direction dir);
  ct__kernel forward[CT_OP_COUNT];
  ct__kernel reverse[CT_OP_COUNT];
  /* Optimizer state floats per parameter element. */
  int opt_state_per_elem[CT_OPT_COUNT];
  ct__update_kernel update[CT_OPT_COUNT];
  ct__sumsq_kernel sumsq;
  ct__hyper_step_kernel hyper_step;

  /* Optional (NULL: not offered). */
  /* Records every launch between begin and end into a graph replayed by
   * graph_launch; nothing runs while recording. */
  ct_status (*capture_begin)(void *ctx);
  ct_status (*capture_end)(void *ctx, void **graph);
  ct_status (*graph_launch)(void *ctx, void *graph);
  void (*graph_free)(void *ctx, void *graph);
  /* A named setting ("tf32": "on"/"off"; device selection keys). ctx is NULL
   * before the backend is opened, so selection can be stored for open(). */
  ct_status (*set_option)(void *ctx, const char *key, const char *value);
  /* Fills up to max entries describing every device this backend can see
   * (usable or not, with the reason); returns how many exist. Callable before
   * open(). */
  int (*list_devices)(ct_device_info *out, int max);
};

/* Whether b runs op: its forward, and with reverse also its reverse (a kernel
 * of its own, the forward it reverses as, or a zero fill). */
bool ct__backend_runs(const ct_backend *b, ct_op op, bool reverse);

/* The opened device context of a present backend. */
void *ct__backend_ctx(const ct_backend *b);

extern const ct_backend ct__cpu_backend;
#ifdef CTML_WITH_CUDA
extern const ct_backend ct__cuda_backend;
#endif
#ifdef CTML_WITH_OPENCL
extern const ct_backend ct__opencl_backend;
#endif

#endif
