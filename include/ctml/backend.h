/* SPDX-License-Identifier: MIT */
/* Backends, chosen at run time by name: "cpu", "cuda", "opencl" or "auto"
 * (the best present). A backend that is not built in or has no device is
 * reported as CT_ERR_BACKEND_ABSENT with the reason, never as a crash. */
#ifndef CTML_BACKEND_H
#define CTML_BACKEND_H

#include "ctml/export.h"
#include <stdbool.h>
#include "ctml/status.h"
#include "ctml/generators.h"
#include "ctml/object.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_backend ct_backend;

/* Finds a present backend by name; the handle lives as long as the process. */
CT_API ct_status ct_backend_get(const char *name, const ct_backend **out);
CT_API const char *ct_backend_name(const ct_backend *b);

/* Every backend ctml knows of, present or not. */
typedef struct ct_backend_info {
  const char *name;
  bool built;            /* compiled into this library */
  bool present;          /* built and a usable device was found */
  bool simulated;        /* runs on a CPU simulator of its device (test builds of ctml only):
                            never a GPU, never chosen by "auto" */
  char device[128];      /* the device it runs on, when present */
  char reason[1024];     /* why it is absent, when not present (a build log may be in it) */
} ct_backend_info;
CT_API int ct_backend_count(void);
/* The index of the backend called name (for ct_backend_info_get,
 * ct_backend_devices, ct_backend_cell), found without opening any backend;
 * CT_ERR_INVALID_ARG for an unknown name. */
CT_API ct_status ct_backend_index(const char *name, int *index);
/* Describes backend i. A backend is opened when first described or got (a
 * device backend loads its libraries and opens its device), so describe only
 * the backends in use or being listed; ct_backend_index finds one by name. */
CT_API ct_status ct_backend_info_get(int i, ct_backend_info *out);

/* One device a backend can see (an OpenCL platform/device pair, a CUDA GPU). */
typedef struct ct_device_info {
  char name[192];        /* e.g. "platform 0 'Portable Computing Language' device 0 'cpu-...' (CPU)" */
  bool usable;
  bool selected;         /* the device the backend runs on (or would, when opened) */
  bool gpu;              /* a GPU (CUDA devices; OpenCL devices of type GPU) */
  char reason[192];      /* why it is not usable, when not */
  int64_t memory_bytes;  /* the device's own memory; 0 when unknown or the host's */
} ct_device_info;
/* Lists the devices of backend i (see ct_backend_count) into out[0..max);
 * *count is how many exist (may exceed max). A backend not built lists none. */
CT_API ct_status ct_backend_devices(int i, ct_device_info *out, int max, int *count);

/* Sets a backend option by backend name, before or after first use:
 *   cuda:   "tf32" = "on"/"off" (matrix products in TF32; default off, fp32)
 *           "device" = index (before first use; also CTML_CUDA_DEVICE)
 *   opencl: "platform", "device" = index or name substring (before first use;
 *           also CTML_OPENCL_PLATFORM / CTML_OPENCL_DEVICE)
 * An unknown key, a bad value or a selection after first use is an error. */
CT_API ct_status ct_backend_set_option(const char *backend, const char *key, const char *value);

/* Coverage of the generator list on a built backend (device not needed). */
typedef enum ct_cell {
  CT_CELL_MISSING = 0,     /* no kernel and not declared unsupported: a gap */
  CT_CELL_IMPLEMENTED,     /* a kernel of its own */
  CT_CELL_DERIVED,         /* reverse obtained from another generator's forward (copy/add/discard) */
  CT_CELL_UNSUPPORTED,     /* declared unsupported by the backend */
  CT_CELL_FORWARD_ONLY     /* the reverse of a generator that has none (kv_attention) */
} ct_cell;
typedef enum ct_direction { CT_FORWARD = 0, CT_REVERSE = 1 } ct_direction;
CT_API ct_status ct_backend_cell(int backend_index, ct_op op, ct_direction dir, ct_cell *out);
CT_API const char *ct_cell_name(ct_cell c);

#ifdef __cplusplus
}
#endif
#endif
