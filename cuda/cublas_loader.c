/* SPDX-License-Identifier: MIT */
#define CT__CUBLAS_LOADER_IMPL
#include "cublas_loader.h"
#include "dynload.h"

#ifdef CTML_CUDA_SIMULATOR

/* cudasim: the stand-ins of tests/cudasim/cublas_sim.c, bound at link time. */
ct__cublas_api ct__cublas = {
#define CT__CUBLAS_BIND(f) .p_##f = f,
    CT__CUBLAS_FUNCTIONS(CT__CUBLAS_BIND)
#undef CT__CUBLAS_BIND
};

ct_status ct__cublas_load(void) { return CT_OK; }

#else

ct__cublas_api ct__cublas;

#define CT__STR_(x) #x
#define CT__STR(x) CT__STR_(x)
#define CT__CUBLAS_SONAME "libcublas.so." CT__STR(CUBLAS_VER_MAJOR)

ct_status ct__cublas_load(void) {
  static ct__dl_once once;
  static const char *const names[] = {
      CT__CUBLAS_SONAME,
#ifdef CT__CUDA_LIBRARY_DIR
      CT__CUDA_LIBRARY_DIR "/" CT__CUBLAS_SONAME,
#endif
  };
  const ct__dl_symbol symbols[] = {
#define CT__CUBLAS_SYMBOL(f) {#f, (void **)&ct__cublas.p_##f},
      CT__CUBLAS_FUNCTIONS(CT__CUBLAS_SYMBOL)
#undef CT__CUBLAS_SYMBOL
  };
  return ct__dl_load_once(&once, false, "cuBLAS", names, (int)(sizeof names / sizeof names[0]),
                          symbols, (int)(sizeof symbols / sizeof symbols[0]));
}

#endif
