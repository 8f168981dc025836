/* SPDX-License-Identifier: MIT */
#define CT__OCL_LOADER_IMPL
#include "ocl_loader.h"
#include <stdio.h>
#include "dynload.h"

ct__ocl_api_table ct__ocl_api;

ct_status ct__ocl_api_load(void) {
  static int state; /* 0: not tried, 1: loaded, -1: failed */
  static char reason[1024];
  if (state == 1) return CT_OK;
  if (state == -1) return ct__fail(CT_ERR_BACKEND_ABSENT, "%s", reason);
  static const char *const names[] = {
#ifdef __APPLE__
      "/System/Library/Frameworks/OpenCL.framework/OpenCL",
#else
      "libOpenCL.so.1",
      "libOpenCL.so",
#endif
  };
  const ct__dl_symbol symbols[] = {
#define CT__OCL_SYMBOL(f) {#f, (void **)&ct__ocl_api.p_##f},
      CT__OCL_FUNCTIONS(CT__OCL_SYMBOL)
#undef CT__OCL_SYMBOL
  };
  ct_status s = ct__dl_load("the OpenCL ICD loader", names, (int)(sizeof names / sizeof names[0]),
                            symbols, (int)(sizeof symbols / sizeof symbols[0]));
  if (s == CT_OK) {
    state = 1;
    return CT_OK;
  }
  snprintf(reason, sizeof reason, "opencl: %s", ct_last_error());
  state = -1;
  return ct__fail(s, "%s", reason);
}
