/* SPDX-License-Identifier: MIT */
/* The backend registry: every backend ctml knows, in "auto" preference order. */
#include <stdio.h>
#include <string.h>
#include "backend_impl.h"

typedef struct ct__registry_entry {
  const char *name;
  const ct_backend *table; /* NULL when not built into this library */
  const char *not_built;   /* why, when table is NULL */
  bool simulated;          /* the table runs on a CPU simulator of the device */
  bool opened;
  ct_status open_status;
  void *ctx;
  char device[128];
  char reason[1024];
} ct__registry_entry;

/* "auto" takes the first present entry: GPUs before the CPU reference. */
static ct__registry_entry ct__registry[] = {
#if defined(CTML_WITH_CUDA) && defined(CTML_CUDA_SIMULATOR)
    {.name = "cuda", .table = &ct__cuda_backend, .simulated = true},
#elif defined(CTML_WITH_CUDA)
    {.name = "cuda", .table = &ct__cuda_backend},
#else
    {.name = "cuda", .not_built = "the CUDA backend is not built into this ctml (configured "
                                  "without a CUDA toolkit, or with -DCTML_CUDA=OFF)"},
#endif
#ifdef CTML_WITH_OPENCL
    {.name = "opencl", .table = &ct__opencl_backend},
#else
    {.name = "opencl", .not_built = "the OpenCL backend is not built into this ctml (configured "
                                    "without OpenCL headers/loader, or with -DCTML_OPENCL=OFF)"},
#endif
    {.name = "cpu", .table = &ct__cpu_backend},
};
#define CT__NBACKENDS ((int)(sizeof ct__registry / sizeof ct__registry[0]))

static ct__registry_entry *ct__open(int i) {
  ct__registry_entry *e = &ct__registry[i];
  if (e->opened) return e;
  e->opened = true;
  if (!e->table) {
    e->open_status = CT_ERR_BACKEND_ABSENT;
    snprintf(e->reason, sizeof e->reason, "%s", e->not_built);
    return e;
  }
  e->open_status = e->table->open(&e->ctx, e->device, sizeof e->device);
  if (e->open_status != CT_OK) snprintf(e->reason, sizeof e->reason, "%s", ct_last_error());
  return e;
}

int ct_backend_count(void) { return CT__NBACKENDS; }

ct_status ct_backend_index(const char *name, int *index) {
  CT__NEED(index, "ct_backend_index");
  *index = -1;
  CT__NEED(name, "ct_backend_index");
  for (int i = 0; i < CT__NBACKENDS; i++)
    if (!strcmp(name, ct__registry[i].name)) {
      *index = i;
      return CT_OK;
    }
  return ct__fail(CT_ERR_INVALID_ARG, "unknown backend '%s' (known: cuda, opencl, cpu)", name);
}

ct_status ct_backend_info_get(int i, ct_backend_info *out) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "ct_backend_info_get: out is NULL");
  if (i < 0 || i >= CT__NBACKENDS)
    return ct__fail(CT_ERR_RANGE, "ct_backend_info_get: index %d is outside [0, %d)", i,
                    CT__NBACKENDS);
  ct__registry_entry *e = ct__open(i);
  memset(out, 0, sizeof *out);
  out->name = e->name;
  out->built = e->table != NULL;
  out->present = e->open_status == CT_OK;
  out->simulated = e->simulated;
  snprintf(out->device, sizeof out->device, "%s", out->present ? e->device : "");
  snprintf(out->reason, sizeof out->reason, "%s", out->present ? "" : e->reason);
  return CT_OK;
}

ct_status ct_backend_get(const char *name, const ct_backend **out) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "ct_backend_get: out is NULL");
  *out = NULL;
  if (!name) return ct__fail(CT_ERR_INVALID_ARG, "ct_backend_get: name is NULL");
  bool any = !strcmp(name, "auto");
  for (int i = 0; i < CT__NBACKENDS; i++) {
    if (!any && strcmp(name, ct__registry[i].name)) continue;
    if (any && ct__registry[i].simulated) continue; /* a simulator is never a device to pick */
    ct__registry_entry *e = ct__open(i);
    if (e->open_status == CT_OK) {
      *out = e->table;
      return CT_OK;
    }
    if (!any && e->open_status == CT_ERR_BACKEND_ABSENT)
      return ct__fail(CT_ERR_BACKEND_ABSENT, "backend '%s' is absent: %s", name, e->reason);
    if (!any) /* present but broken, e.g. its kernels do not build: keep the status */
      return ct__fail(e->open_status, "backend '%s' failed to open: %s", name, e->reason);
  }
  if (any) return ct__fail(CT_ERR_BACKEND_ABSENT, "no backend is present");
  return ct__fail(CT_ERR_INVALID_ARG, "unknown backend '%s' (known: cuda, opencl, cpu, auto)",
                  name);
}

ct_status ct_backend_devices(int i, ct_device_info *out, int max, int *count) {
  CT__NEED(count, "ct_backend_devices");
  *count = 0;
  if (max > 0) CT__NEED(out, "ct_backend_devices");
  if (i < 0 || i >= CT__NBACKENDS)
    return ct__fail(CT_ERR_RANGE, "ct_backend_devices: index %d is outside [0, %d)", i,
                    CT__NBACKENDS);
  const ct_backend *b = ct__registry[i].table;
  if (b && b->list_devices) *count = b->list_devices(out, max < 0 ? 0 : max);
  if (ct__registry[i].simulated)
    for (int k = 0; k < *count && k < max; k++) out[k].gpu = false;
  return CT_OK;
}

ct_status ct_backend_set_option(const char *backend, const char *key, const char *value) {
  CT__NEED(backend, "ct_backend_set_option");
  CT__NEED(key, "ct_backend_set_option");
  CT__NEED(value, "ct_backend_set_option");
  for (int i = 0; i < CT__NBACKENDS; i++) {
    ct__registry_entry *e = &ct__registry[i];
    if (strcmp(backend, e->name)) continue;
    if (!e->table)
      return ct__fail(CT_ERR_BACKEND_ABSENT, "ct_backend_set_option: backend '%s' is absent: %s",
                      backend, e->not_built);
    if (!e->table->set_option)
      return ct__fail(CT_ERR_INVALID_ARG, "ct_backend_set_option: backend '%s' has no option '%s'",
                      backend, key);
    if (e->opened && e->open_status != CT_OK)
      return ct__fail(CT_ERR_BACKEND_ABSENT, "ct_backend_set_option: backend '%s' is absent: %s",
                      backend, e->reason);
    return e->table->set_option(e->opened ? e->ctx : NULL, key, value);
  }
  return ct__fail(CT_ERR_INVALID_ARG, "ct_backend_set_option: unknown backend '%s' (known: cuda, "
                  "opencl, cpu)", backend);
}

const char *ct_backend_name(const ct_backend *b) { return b ? b->name : "(null)"; }

bool ct__backend_runs(const ct_backend *b, ct_op op, bool reverse) {
  const ct__op_info *info = ct__op(op);
  bool fwd = b->forward[op] && b->supports(op, CT_FORWARD);
  bool rev = !info->forward_only && (info->reverse_is_zero ||
             (info->reverse_as >= 0 ? b->forward[info->reverse_as] != NULL
                                    : b->reverse[op] && b->supports(op, CT_REVERSE)));
  return fwd && (!reverse || rev);
}

void *ct__backend_ctx(const ct_backend *b) {
  for (int i = 0; i < CT__NBACKENDS; i++)
    if (ct__registry[i].table == b) return ct__registry[i].ctx;
  return NULL;
}

const char *ct_cell_name(ct_cell c) {
  switch (c) {
    case CT_CELL_IMPLEMENTED: return "ok";
    case CT_CELL_DERIVED: return "derived";
    case CT_CELL_UNSUPPORTED: return "unsupported";
    case CT_CELL_FORWARD_ONLY: return "forward only";
    case CT_CELL_MISSING: break;
  }
  return "MISSING";
}

ct_status ct_backend_cell(int backend_index, ct_op op, ct_direction dir, ct_cell *out) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "ct_backend_cell: out is NULL");
  if (backend_index < 0 || backend_index >= CT__NBACKENDS)
    return ct__fail(CT_ERR_RANGE, "ct_backend_cell: backend index %d is outside [0, %d)",
                    backend_index, CT__NBACKENDS);
  if (op < 0 || op >= CT_OP_COUNT)
    return ct__fail(CT_ERR_RANGE, "ct_backend_cell: generator %d is outside [0, %d)", (int)op,
                    CT_OP_COUNT);
  const ct_backend *b = ct__registry[backend_index].table;
  if (!b)
    return ct__fail(CT_ERR_BACKEND_ABSENT, "ct_backend_cell: %s",
                    ct__registry[backend_index].not_built);
  const ct__op_info *info = ct__op(op);
  ct__kernel k = dir == CT_FORWARD ? b->forward[op] : b->reverse[op];
  if (dir == CT_REVERSE && info->forward_only) {
    *out = CT_CELL_FORWARD_ONLY;
  } else if (dir == CT_REVERSE && (info->reverse_as >= 0 || info->reverse_is_zero)) {
    bool have = info->reverse_is_zero ? b->fill != NULL : b->forward[info->reverse_as] != NULL;
    *out = have ? CT_CELL_DERIVED : CT_CELL_MISSING;
  } else if (k) {
    *out = b->supports(op, dir) ? CT_CELL_IMPLEMENTED : CT_CELL_UNSUPPORTED;
  } else {
    *out = b->supports(op, dir) ? CT_CELL_MISSING : CT_CELL_UNSUPPORTED;
  }
  return CT_OK;
}
