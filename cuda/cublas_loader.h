/* SPDX-License-Identifier: MIT */
/* cuBLAS through a table of function pointers. cuda_backend.c calls cuBLAS by
 * its usual names; this header redirects them to the table, which
 * ct__cublas_load() fills from libcublas loaded at run time (cublas_loader.c),
 * or, in the cudasim build (CTML_CUDA_SIMULATOR), from the simulator's
 * stand-ins at link time. A cuBLAS function the backend calls must be listed
 * in CT__CUBLAS_FUNCTIONS (under its exported name: cublasSgemm is
 * cublasSgemm_v2); an unlisted one is an undefined symbol at link time. */
#ifndef CTML_CUBLAS_LOADER_H
#define CTML_CUBLAS_LOADER_H

#include <cublas_v2.h>
#include "internal.h"

#define CT__CUBLAS_FUNCTIONS(X)                                                                  \
  X(cublasCreate_v2) X(cublasDestroy_v2) X(cublasSetStream_v2) X(cublasSetWorkspace_v2)          \
  X(cublasSetMathMode) X(cublasSgemm_v2) X(cublasSgemv_v2) X(cublasSgemmBatched)                 \
  X(cublasSgemmStridedBatched) X(cublasGetStatusName) X(cublasGetStatusString)

typedef struct ct__cublas_api {
#define CT__CUBLAS_SLOT(f) __typeof__(f) *p_##f;
  CT__CUBLAS_FUNCTIONS(CT__CUBLAS_SLOT)
#undef CT__CUBLAS_SLOT
} ct__cublas_api;

extern ct__cublas_api ct__cublas;

/* Loads cuBLAS once ("libcublas.so.<major>" from the dynamic loader's search
 * path, then from the CUDA toolkit's library directory at build time); on
 * failure, and on every later call, CT_ERR_BACKEND_ABSENT with the reason. */
ct_status ct__cublas_load(void);

#ifndef CT__CUBLAS_LOADER_IMPL
#define cublasCreate_v2 (*ct__cublas.p_cublasCreate_v2)
#define cublasDestroy_v2 (*ct__cublas.p_cublasDestroy_v2)
#define cublasSetStream_v2 (*ct__cublas.p_cublasSetStream_v2)
#define cublasSetWorkspace_v2 (*ct__cublas.p_cublasSetWorkspace_v2)
#define cublasSetMathMode (*ct__cublas.p_cublasSetMathMode)
#define cublasSgemm_v2 (*ct__cublas.p_cublasSgemm_v2)
#define cublasSgemv_v2 (*ct__cublas.p_cublasSgemv_v2)
#define cublasSgemmBatched (*ct__cublas.p_cublasSgemmBatched)
#define cublasSgemmStridedBatched (*ct__cublas.p_cublasSgemmStridedBatched)
#define cublasGetStatusName (*ct__cublas.p_cublasGetStatusName)
#define cublasGetStatusString (*ct__cublas.p_cublasGetStatusString)
#endif

#endif
