/* SPDX-License-Identifier: MIT */
/* OpenCL platform and device discovery, selection and listing. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ocl_internal.h"

#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif

/* Selection set through set_option before open ("" when unset). */
static char ct__ocl_opt_platform[128];
static char ct__ocl_opt_device[128];

/* Case-insensitive substring test. */
static bool ct__ocl_contains(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (const char *h = hay; *h; h++) {
    size_t k = 0;
    while (k < n && h[k] && tolower((unsigned char)h[k]) == tolower((unsigned char)needle[k])) k++;
    if (k == n) return true;
  }
  return n == 0;
}

/* A non-negative decimal index, or -1 when s is not one. */
static long ct__ocl_index(const char *s) {
  if (!*s || strlen(s) > 9) return -1;
  for (const char *p = s; *p; p++)
    if (!isdigit((unsigned char)*p)) return -1;
  return strtol(s, NULL, 10);
}

/* An info string, NUL-terminated and trimmed of trailing blanks ("?" on failure). */
static void ct__ocl_platform_str(cl_platform_id p, cl_platform_info what, char *out, size_t len) {
  if (clGetPlatformInfo(p, what, len - 1, out, NULL) != CL_SUCCESS) snprintf(out, len, "?");
  out[len - 1] = '\0';
  for (size_t k = strlen(out); k > 0 && isspace((unsigned char)out[k - 1]); k--) out[k - 1] = '\0';
}

static void ct__ocl_device_str(cl_device_id d, cl_device_info what, char *out, size_t len) {
  if (clGetDeviceInfo(d, what, len - 1, out, NULL) != CL_SUCCESS) snprintf(out, len, "?");
  out[len - 1] = '\0';
  for (size_t k = strlen(out); k > 0 && isspace((unsigned char)out[k - 1]); k--) out[k - 1] = '\0';
}

/* Parses "<prefix> X.Y..." into major and minor; false when it does not read so. */
static bool ct__ocl_version(const char *s, const char *prefix, int *major, int *minor) {
  size_t n = strlen(prefix);
  if (strncmp(s, prefix, n)) return false;
  return sscanf(s + n, "%d.%d", major, minor) == 2;
}

/* Decides whether a device can run the backend; fills reason when not. */
static void ct__ocl_judge(ct__ocl_dev *d) {
  cl_bool available = CL_FALSE, compiler = CL_FALSE, little = CL_TRUE;
  char cver[96];
  int major = 0, minor = 0;
  d->usable = false;
  if (clGetDeviceInfo(d->device, CL_DEVICE_AVAILABLE, sizeof available, &available, NULL) !=
          CL_SUCCESS || !available) {
    snprintf(d->reason, sizeof d->reason, "not available (CL_DEVICE_AVAILABLE is false)");
    return;
  }
  if (clGetDeviceInfo(d->device, CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler,
                      NULL) != CL_SUCCESS || !compiler) {
    snprintf(d->reason, sizeof d->reason, "compiler not available (cannot build OpenCL C)");
    return;
  }
  if (!ct__ocl_version(d->device_version, "OpenCL ", &major, &minor) ||
      major * 10 + minor < 12) {
    snprintf(d->reason, sizeof d->reason, "device version '%.60s' is below OpenCL 1.2",
             d->device_version);
    return;
  }
  ct__ocl_device_str(d->device, CL_DEVICE_OPENCL_C_VERSION, cver, sizeof cver);
  if (!ct__ocl_version(cver, "OpenCL C ", &major, &minor) || major * 10 + minor < 12) {
    snprintf(d->reason, sizeof d->reason, "no OpenCL C 1.2 support (reports '%.60s')", cver);
    return;
  }
  clGetDeviceInfo(d->device, CL_DEVICE_ENDIAN_LITTLE, sizeof little, &little, NULL);
  if (!little) {
    snprintf(d->reason, sizeof d->reason, "big-endian device (buffers are copied byte for byte)");
    return;
  }
  d->usable = true;
  d->reason[0] = '\0';
}

ct_status ct__ocl_enumerate(ct__ocl_dev **devs, int *n) {
  *devs = NULL;
  *n = 0;
  CT__TRY(ct__ocl_api_load());
  cl_uint np = 0;
  cl_int err = clGetPlatformIDs(0, NULL, &np);
  if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && np == 0))
    return ct__fail(CT_ERR_BACKEND_ABSENT, "opencl: no OpenCL platform is installed (the ICD "
                    "loader found none; install a driver such as pocl-opencl-icd or the GPU "
                    "vendor's)");
  if (err != CL_SUCCESS) {
    ct__ocl_fail("clGetPlatformIDs", err);
    return ct__fail(CT_ERR_BACKEND_ABSENT, "%s", ct_last_error());
  }
  cl_platform_id *plats = malloc(np * sizeof *plats);
  if (!plats) return ct__fail(CT_ERR_NOMEM, "opencl: out of host memory");
  err = clGetPlatformIDs(np, plats, NULL);
  if (err != CL_SUCCESS) {
    free(plats);
    ct__ocl_fail("clGetPlatformIDs", err);
    return ct__fail(CT_ERR_BACKEND_ABSENT, "%s", ct_last_error());
  }
  int cap = 0, count = 0;
  ct__ocl_dev *out = NULL;
  for (cl_uint p = 0; p < np; p++) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
      continue; /* CL_DEVICE_NOT_FOUND: a platform without devices */
    cl_device_id *ids = malloc(nd * sizeof *ids);
    if (!ids || clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, ids, NULL) != CL_SUCCESS) {
      free(ids);
      continue;
    }
    for (cl_uint d = 0; d < nd; d++) {
      if (count == cap) {
        int ncap = cap ? 2 * cap : 8;
        ct__ocl_dev *grown = realloc(out, (size_t)ncap * sizeof *grown);
        if (!grown) break;
        out = grown;
        cap = ncap;
      }
      ct__ocl_dev *e = &out[count++];
      memset(e, 0, sizeof *e);
      e->platform = plats[p];
      e->device = ids[d];
      e->platform_index = (int)p;
      e->device_index = (int)d;
      ct__ocl_platform_str(plats[p], CL_PLATFORM_NAME, e->platform_name, sizeof e->platform_name);
      ct__ocl_platform_str(plats[p], CL_PLATFORM_VERSION, e->platform_version,
                           sizeof e->platform_version);
      ct__ocl_device_str(ids[d], CL_DEVICE_NAME, e->device_name, sizeof e->device_name);
      ct__ocl_device_str(ids[d], CL_DEVICE_VERSION, e->device_version, sizeof e->device_version);
      if (clGetDeviceInfo(ids[d], CL_DEVICE_TYPE, sizeof e->type, &e->type, NULL) != CL_SUCCESS)
        e->type = CL_DEVICE_TYPE_DEFAULT;
      if (clGetDeviceInfo(ids[d], CL_DEVICE_MAX_COMPUTE_UNITS, sizeof e->compute_units,
                          &e->compute_units, NULL) != CL_SUCCESS)
        e->compute_units = 0;
      if (clGetDeviceInfo(ids[d], CL_DEVICE_GLOBAL_MEM_SIZE, sizeof e->global_mem, &e->global_mem,
                          NULL) != CL_SUCCESS)
        e->global_mem = 0;
      ct__ocl_judge(e);
    }
    free(ids);
  }
  free(plats);
  if (count == 0) {
    free(out);
    return ct__fail(CT_ERR_BACKEND_ABSENT, "opencl: %u OpenCL platform(s) found but no device",
                    np);
  }
  *devs = out;
  *n = count;
  return CT_OK;
}

static const char *ct__ocl_type_name(cl_device_type t) {
  if (t & CL_DEVICE_TYPE_GPU) return "GPU";
  if (t & CL_DEVICE_TYPE_CPU) return "CPU";
  if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
  return "other";
}

/* The selection in force: the option when set, else the environment variable. */
static const char *ct__ocl_selector(const char *opt, const char *env, const char **source) {
  const char *e = getenv(env);
  if (opt[0]) {
    *source = "option";
    return opt;
  }
  if (e && *e) {
    *source = env;
    return e;
  }
  return NULL;
}

/* Whether device i matches the platform and device selectors (NULL matches all).
 * A device index counts the devices of the matching platforms in listing order. */
static bool ct__ocl_matches(const ct__ocl_dev *devs, int i, const char *psel, const char *dsel) {
  long pidx = psel ? ct__ocl_index(psel) : -1;
  if (psel && (pidx >= 0 ? devs[i].platform_index != pidx
                         : !ct__ocl_contains(devs[i].platform_name, psel)))
    return false;
  if (!dsel) return true;
  long didx = ct__ocl_index(dsel);
  if (didx < 0) return ct__ocl_contains(devs[i].device_name, dsel);
  long k = 0; /* position of device i among the devices of matching platforms */
  for (int j = 0; j < i; j++)
    if (!psel || (pidx >= 0 ? devs[j].platform_index == pidx
                            : ct__ocl_contains(devs[j].platform_name, psel)))
      k++;
  return k == didx;
}

int ct__ocl_select(const ct__ocl_dev *devs, int n, char *why, size_t why_len) {
  const char *psrc = "", *dsrc = "";
  const char *psel = ct__ocl_selector(ct__ocl_opt_platform, "CTML_OPENCL_PLATFORM", &psrc);
  const char *dsel = ct__ocl_selector(ct__ocl_opt_device, "CTML_OPENCL_DEVICE", &dsrc);
  if (psel || dsel) {
    int first = -1;
    for (int i = 0; i < n; i++) {
      if (!ct__ocl_matches(devs, i, psel, dsel)) continue;
      if (devs[i].usable) return i;
      if (first < 0) first = i;
    }
    char sel[320] = "", part[160];
    if (psel) snprintf(sel, sizeof sel, "platform '%.60s' (%s)", psel, psrc);
    if (dsel) {
      snprintf(part, sizeof part, "%sdevice '%.60s' (%s)", psel ? ", " : "", dsel, dsrc);
      strncat(sel, part, sizeof sel - strlen(sel) - 1);
    }
    if (first >= 0)
      snprintf(why, why_len, "opencl: the selected %s is platform %d '%s' device %d '%s', which is "
               "unusable: %s", sel, devs[first].platform_index, devs[first].platform_name,
               devs[first].device_index, devs[first].device_name, devs[first].reason);
    else
      snprintf(why, why_len, "opencl: no OpenCL device matches %s (%d device(s) found; "
               "'ctml devices' lists them)", sel, n);
    return -1;
  }
  /* No selection: the first usable GPU, else CPU, else any usable device. */
  const cl_device_type order[2] = {CL_DEVICE_TYPE_GPU, CL_DEVICE_TYPE_CPU};
  for (int t = 0; t < 2; t++)
    for (int i = 0; i < n; i++)
      if (devs[i].usable && (devs[i].type & order[t])) return i;
  for (int i = 0; i < n; i++)
    if (devs[i].usable) return i;
  size_t k = (size_t)snprintf(why, why_len, "opencl: no usable OpenCL device among %d:", n);
  for (int i = 0; i < n && k < why_len; i++)
    k += (size_t)snprintf(why + k, why_len - k, "%s platform %d '%s' device %d '%s': %s",
                          i ? ";" : "", devs[i].platform_index, devs[i].platform_name,
                          devs[i].device_index, devs[i].device_name, devs[i].reason);
  return -1;
}

ct_status ct__ocl_set_option(void *ctx, const char *key, const char *value) {
  bool platform = !strcmp(key, "platform"), device = !strcmp(key, "device");
  if (!platform && !device)
    return ct__fail(CT_ERR_INVALID_ARG, "opencl: unknown option '%s' (options: platform, device)",
                    key);
  if (ctx)
    return ct__fail(CT_ERR_STATE, "opencl: option '%s' = '%s' must be set before the backend is "
                    "first used (it is already open)", key, value);
  if (!*value || strlen(value) >= sizeof ct__ocl_opt_platform)
    return ct__fail(CT_ERR_INVALID_ARG, "opencl: option '%s' = '%s' is not an index or a name "
                    "(1 to %zu characters)", key, value, sizeof ct__ocl_opt_platform - 1);
  /* A value that matches nothing found is refused now, when devices can be listed. */
  ct__ocl_dev *devs = NULL;
  int n = 0;
  if (ct__ocl_enumerate(&devs, &n) == CT_OK) {
    bool any = false;
    for (int i = 0; i < n && !any; i++)
      any = platform ? ct__ocl_matches(devs, i, value, NULL)
                     : ct__ocl_matches(devs, i, ct__ocl_opt_platform[0] ? ct__ocl_opt_platform
                                                                        : NULL, value);
    free(devs);
    if (!any)
      return ct__fail(CT_ERR_INVALID_ARG, "opencl: option '%s' = '%s' matches no %s found "
                      "('ctml devices' lists them)", key, value, platform ? "platform" : "device");
  }
  snprintf(platform ? ct__ocl_opt_platform : ct__ocl_opt_device, sizeof ct__ocl_opt_platform, "%s",
           value);
  return CT_OK;
}

int ct__ocl_list_devices(ct_device_info *out, int max) {
  ct__ocl_dev *devs = NULL;
  int n = 0;
  if (ct__ocl_enumerate(&devs, &n) != CT_OK) return 0;
  char why[8];
  cl_device_id opened = ct__ocl_opened_device();
  int sel = opened ? -1 : ct__ocl_select(devs, n, why, sizeof why);
  for (int i = 0; i < n && i < max; i++) {
    ct_device_info *o = &out[i];
    memset(o, 0, sizeof *o);
    /* the version's first three words, up to a parenthesis: "OpenCL 3.0 PoCL",
     * "OpenCL 3.0 CUDA", "OpenCL 3.1" (of "OpenCL 3.1 (Build 0)") */
    char ver[64];
    snprintf(ver, sizeof ver, "%.63s", devs[i].device_version);
    for (int w = 0, k = 0; ver[k]; k++)
      if (ver[k] == ' ' && (++w == 3 || ver[k + 1] == '(')) {
        ver[k] = '\0';
        break;
      }
    snprintf(o->name, sizeof o->name, "platform %d '%.40s' device %d '%.48s' (%s, %.40s)",
             devs[i].platform_index, devs[i].platform_name, devs[i].device_index,
             devs[i].device_name, ct__ocl_type_name(devs[i].type), ver);
    o->usable = devs[i].usable;
    o->gpu = (devs[i].type & CL_DEVICE_TYPE_GPU) != 0;
    o->memory_bytes = o->gpu && devs[i].global_mem <= INT64_MAX ? (int64_t)devs[i].global_mem : 0;
    o->selected = opened ? devs[i].device == opened : i == sel;
    snprintf(o->reason, sizeof o->reason, "%s", devs[i].reason);
  }
  free(devs);
  return n;
}
