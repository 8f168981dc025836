/* SPDX-License-Identifier: MIT */
/* cudasim's CUDA C language layer: force-included (g++ -include) before a .cu
 * file compiled as C++, after the real CUDA headers. Kernels become plain
 * functions run once per CUDA thread, each thread a fiber; __shared__ variables
 * live in one section refilled with NaN bytes at every block start;
 * __syncthreads and the warp intrinsics are scheduling points; a launch
 * (CT__CU_LAUNCH) queues the grid on the simulated stream. */
#ifndef CTML_CUDASIM_DEVICE_H
#define CTML_CUDASIM_DEVICE_H

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include "cudasim.h"

namespace ctsim {

/* The running thread's coordinates (set by the scheduler at every switch). */
extern uint3 cur_thread_idx;
extern uint3 cur_block_idx;
extern dim3 cur_block_dim;
extern dim3 cur_grid_dim;

void sync_block(const char *file, int line);
/* Warp collective: every lane of mask meets; *out gets the result for this lane. */
enum warp_kind { WARP_SYNC, WARP_SHFL_IDX, WARP_SHFL_UP, WARP_SHFL_DOWN, WARP_SHFL_XOR,
                 WARP_BALLOT, WARP_ANY, WARP_ALL };
uint64_t warp_op(warp_kind kind, unsigned mask, uint64_t value, int arg, int width,
                 const char *file, int line);
unsigned active_mask();

/* Queues a grid of body on stream s; the launch error is the thread's last error. */
void launch(const char *name, dim3 grid, dim3 block, cudaStream_t s, std::function<void()> body);

template <typename T>
inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type wider than 8 bytes");
  uint64_t b = 0;
  memcpy(&b, &v, sizeof v);
  return b;
}
template <typename T>
inline T from_bits(uint64_t b) {
  T v;
  memcpy(&v, &b, sizeof v);
  return v;
}

/* Kernel launcher: CT__CU_LAUNCH(k, grid, block, stream)(args...) converts the
 * arguments to k's parameter types now and runs k(args...) per thread later. */
template <typename... P>
struct launcher {
  const char *name;
  void (*kernel)(P...);
  dim3 grid, block;
  cudaStream_t stream;
  template <typename... A>
  void operator()(A &&...a) const {
    std::tuple<typename std::decay<P>::type...> args(std::forward<A>(a)...);
    void (*k)(P...) = kernel;
    launch(name, grid, block, stream, [k, args]() { std::apply(k, args); });
  }
};
template <typename... P>
inline launcher<P...> make_launcher(const char *name, void (*k)(P...), dim3 grid, dim3 block,
                                    cudaStream_t s) {
  return launcher<P...>{name, k, grid, block, s};
}

}  // namespace ctsim

/* The runtime (cudasim.cpp) needs the declarations above, not the language. */
#ifndef CTSIM_RUNTIME

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __forceinline__
#undef __noinline__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
/* One copy for all threads; blocks run one at a time, and the section is
 * refilled with NaN bytes before each block. */
#define __shared__ static __attribute__((section("ctsim_shared"), aligned(16)))
#define __restrict__ __restrict

#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

#define CT__CU_LAUNCH(kernel, grid, block, stream) \
  ::ctsim::make_launcher(#kernel, kernel, (grid), (block), (stream))
/* Grid-stride launches are capped here (2^20 blocks, or a few in the small-grid schedule). */
#define CT__MAX_BLOCKS (::ctsim_max_blocks())

#define threadIdx (::ctsim::cur_thread_idx)
#define blockIdx (::ctsim::cur_block_idx)
#define blockDim (::ctsim::cur_block_dim)
#define gridDim (::ctsim::cur_grid_dim)
#define warpSize 32

#define __syncthreads() ::ctsim::sync_block(__FILE__, __LINE__)
#define __syncwarp(...) ::ctsim::syncwarp_at{__FILE__, __LINE__}(__VA_ARGS__)
#define __shfl_sync(mask, v, lane, ...) \
  ::ctsim::shfl(::ctsim::WARP_SHFL_IDX, mask, v, lane, __FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_up_sync(mask, v, d, ...) \
  ::ctsim::shfl(::ctsim::WARP_SHFL_UP, mask, v, d, __FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_down_sync(mask, v, d, ...) \
  ::ctsim::shfl(::ctsim::WARP_SHFL_DOWN, mask, v, d, __FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_xor_sync(mask, v, m, ...) \
  ::ctsim::shfl(::ctsim::WARP_SHFL_XOR, mask, v, m, __FILE__, __LINE__, ##__VA_ARGS__)
#define __ballot_sync(mask, p) \
  ((unsigned)::ctsim::warp_op(::ctsim::WARP_BALLOT, mask, (p) != 0, 0, 32, __FILE__, __LINE__))
#define __any_sync(mask, p) \
  ((int)::ctsim::warp_op(::ctsim::WARP_ANY, mask, (p) != 0, 0, 32, __FILE__, __LINE__))
#define __all_sync(mask, p) \
  ((int)::ctsim::warp_op(::ctsim::WARP_ALL, mask, (p) != 0, 0, 32, __FILE__, __LINE__))
#define __activemask() (::ctsim::active_mask())

namespace ctsim {
/* __syncwarp() and __syncwarp(mask) (a call object: ISO C++17 keeps the comma
 * of an empty ##__VA_ARGS__ when it is the macro's only parameter). */
struct syncwarp_at {
  const char *file;
  int line;
  void operator()(unsigned mask = 0xffffffffu) const {
    (void)warp_op(WARP_SYNC, mask, 0, 0, 32, file, line);
  }
};
template <typename T>
inline T shfl(warp_kind kind, unsigned mask, T v, int arg, const char *file, int line,
              int width = 32) {
  return from_bits<T>(warp_op(kind, mask, to_bits(v), arg, width, file, line));
}
}  // namespace ctsim

/* Atomics: threads switch only at barriers and warp collectives, so a
 * read-modify-write is never interleaved. */
template <typename T>
inline T atomicAdd(T *a, T v) { T o = *a; *a = o + v; return o; }
template <typename T>
inline T atomicSub(T *a, T v) { T o = *a; *a = o - v; return o; }
template <typename T>
inline T atomicExch(T *a, T v) { T o = *a; *a = v; return o; }
template <typename T>
inline T atomicMin(T *a, T v) { T o = *a; if (v < o) *a = v; return o; }
template <typename T>
inline T atomicMax(T *a, T v) { T o = *a; if (v > o) *a = v; return o; }
template <typename T>
inline T atomicAnd(T *a, T v) { T o = *a; *a = o & v; return o; }
template <typename T>
inline T atomicOr(T *a, T v) { T o = *a; *a = o | v; return o; }
template <typename T>
inline T atomicXor(T *a, T v) { T o = *a; *a = o ^ v; return o; }
template <typename T>
inline T atomicCAS(T *a, T cmp, T v) { T o = *a; if (o == cmp) *a = v; return o; }
inline void __threadfence() {}
inline void __threadfence_block() {}

/* Correctly rounded float operations (compiled with -ffp-contract=off). */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
template <typename T>
inline T __ldg(const T *p) { return *p; }

#endif /* CTSIM_RUNTIME */

#endif
