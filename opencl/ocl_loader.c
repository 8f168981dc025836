/* SPDX-License-Identifier: MIT */
#define CT__OCL_LOADER_IMPL
#include "ocl_loader.h"
#include "dynload.h"

ct__ocl_api_table ct__ocl_api;

ct_status ct__ocl_api_load(void) {
  static ct__dl_once once;
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
  ct_status s = ct__dl_load_once(&once, false, "the OpenCL ICD loader", names,
                                 (int)(sizeof names / sizeof names[0]), symbols,
                                 (int)(sizeof symbols / sizeof symbols[0]));
  return s == CT_OK ? CT_OK : ct__fail(s, "opencl: %s", ct_last_error());
}
