/* SPDX-License-Identifier: MIT */
/* cuda/cuda_kernels.cu, unchanged, compiled as C++ on cudasim (cudasim_device.h
 * is force-included first). */
#include "cuda_kernels.cu"
