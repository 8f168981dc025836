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
} ct__kargs;

typedef ct_status (*ct__kernel)(void *ctx, const ct__kargs *a);
/* Optimizer update of one parameter tensor of n elements; state may be NULL
 * for stateless optimizers; step counts from 1. */
typedef ct_status (*ct__update_kernel)(void *ctx, const ct_optimizer *opt, long step,
                                       void *param, const void *grad, void *state, int64_t n);

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
