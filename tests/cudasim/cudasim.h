/* SPDX-License-Identifier: MIT */
/* cudasim: a CPU execution layer for the CUDA runtime, used by the tests to run
 * cuda/ (kernels compiled as C++, the backend unchanged) without a GPU. This is
 * the C interface shared by the runtime (cudasim.cpp), the cuBLAS stand-ins
 * (cublas_sim.c) and the tests. It is test infrastructure: the product library
 * and tool never link it. */
#ifndef CTML_CUDASIM_H
#define CTML_CUDASIM_H

#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Device name reported by cudaGetDeviceProperties, never mistaken for a GPU:
 * "ctml cudasim (CPU, not a GPU; schedule random seed 7, small grid)". */
#define CTSIM_DEVICE_NAME "ctml cudasim"

/* A host operation queued on a stream: runs fn(args) in stream order, where args
 * is the runtime's own copy of the bytes given at enqueue. */
typedef void (*ctsim_op_fn)(void *args);

/* Queues fn on stream s (0: the legacy default stream), after every earlier
 * operation; while s is capturing, records it into the graph instead. what
 * names the operation in diagnostics. Returns the error the runtime would
 * (a sticky error, an invalid stream). */
cudaError_t ctsim_enqueue(cudaStream_t s, const char *what, ctsim_op_fn fn, const void *args,
                          size_t bytes);

/* Whether [p, p + bytes) lies inside one live device allocation. Called while
 * an operation runs; when it does not, the operation should stop: the failure
 * is recorded (sticky, as an illegal address on a GPU) naming what. */
int ctsim_device_range_ok(const void *p, size_t bytes, const char *what);

/* Ends the running operation's usefulness with a sticky launch failure; the
 * message (printf format) goes to stderr, prefixed "cudasim: ". */
void ctsim_fault(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The schedule, from the environment at first use:
 *   CTML_CUDASIM_ORDER  forward (default) | reverse | random
 *   CTML_CUDASIM_SEED   seed of the random order (default 1)
 *   CTML_CUDASIM_GRID   full (default) | small: grid-stride kernels get at most
 *                       CTSIM_SMALL_GRID blocks, so each loop takes several passes
 *   CTML_CUDASIM_DEVICES 1 (default) | 0: no device (cudaErrorNoDevice)
 *   CTML_CUDASIM_MEMORY  device memory in MiB (default 8192) */
#define CTSIM_SMALL_GRID 3
typedef enum { CTSIM_FORWARD, CTSIM_REVERSE, CTSIM_RANDOM } ctsim_order;
ctsim_order ctsim_schedule_order(void);
/* "forward", "reverse", "random seed 7", with ", small grid" when set. */
const char *ctsim_schedule_name(void);
/* The grid cap of grid-stride launches: 2^20, or CTSIM_SMALL_GRID in the small-grid mode. */
int64_t ctsim_max_blocks(void);

/* The cuBLAS stand-ins' user workspace of a handle (a test hook, not cuBLAS
 * API): 1 with *workspace and *bytes set when cublasSetWorkspace set one since
 * the last cublasSetStream, else 0 (the default pool). */
struct cublasContext;
int ctsim_cublas_workspace(struct cublasContext *handle, void **workspace, size_t *bytes);

/* Counters since start: kernels launched, blocks and threads run, barriers passed. */
typedef struct ctsim_stats {
  uint64_t launches, blocks, threads, barriers, host_ops;
} ctsim_stats;
void ctsim_get_stats(ctsim_stats *out);

#ifdef __cplusplus
}
#endif
#endif
