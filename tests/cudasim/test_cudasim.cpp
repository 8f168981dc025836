/* SPDX-License-Identifier: MIT */
/* cudasim's own laws: barriers order threads, a barrier not reached by every
 * thread is an error naming the kernel, shared memory starts as NaN in every
 * block, warp collectives follow CUDA's lane rules, memory and copies are
 * checked as the runtime checks them, and stream capture records without
 * running. Compiled as C++ with cudasim_device.h force-included, like the
 * backend's kernels. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
extern "C" {
#include <cmocka.h>
}

#define N_THREADS 256

/* ---- kernels ---------------------------------------------------------------------- */

/* out[block] = sum of in over the block's 256 entries, by a shared-memory tree. */
__global__ void k_block_sum(const float *in, float *out) {
  __shared__ float sh[N_THREADS];
  unsigned t = threadIdx.x;
  sh[t] = in[blockIdx.x * N_THREADS + t];
  __syncthreads();
  for (unsigned s = N_THREADS / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = sh[0];
}

/* Reads a neighbour's shared slot without a barrier in between (a race). */
__global__ void k_missing_barrier(float *out) {
  __shared__ float sh[N_THREADS];
  unsigned t = threadIdx.x;
  sh[t] = (float)t;
  out[t] = sh[(t + 1) % N_THREADS];
}

/* Half the threads leave before the barrier. */
__global__ void k_divergent_barrier(float *out) {
  if (threadIdx.x >= 16) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

/* Threads wait at two different barriers. */
__global__ void k_two_barriers(float *out) {
  if (threadIdx.x % 2)
    __syncthreads();
  else
    __syncthreads();
  out[threadIdx.x] = 1.0f;
}

/* Warp sums by xor butterfly, shfl_down, prefix by shfl_up, broadcast within 8-lane segments. */
__global__ void k_warp(const float *in, float *xor_sum, float *down_sum, float *prefix,
                       float *bcast, unsigned *ballot) {
  unsigned lane = threadIdx.x % 32, i = threadIdx.x;
  float v = in[i], a = v, b = v, p = v;
  for (int m = 16; m > 0; m >>= 1) a += __shfl_xor_sync(0xffffffffu, a, m);
  for (int d = 16; d > 0; d >>= 1) b += __shfl_down_sync(0xffffffffu, b, d);
  for (int d = 1; d < 32; d <<= 1) {
    float up = __shfl_up_sync(0xffffffffu, p, d);
    if (lane >= (unsigned)d) p += up;
  }
  xor_sum[i] = a;
  down_sum[i] = b;
  prefix[i] = p;
  bcast[i] = __shfl_sync(0xffffffffu, v, 3, 8);
  ballot[i] = __ballot_sync(0xffffffffu, v > 0.0f);
}

/* A warp collective whose mask names a lane that has exited. */
__global__ void k_warp_exited(float *out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

/* x[i] += 1 over a grid-stride loop. */
__global__ void k_increment(float *x, int64_t n) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    x[i] += 1.0f;
}

/* out[0] = the first shared float as this block sees it, before writing it. */
__global__ void k_shared_fresh(float *out) {
  __shared__ float sh[1];
  if (threadIdx.x == 0) {
    out[blockIdx.x] = sh[0];
    sh[0] = 42.0f;
  }
}

/* ---- helpers --------------------------------------------------------------------------- */

static float *dev_floats(size_t n) {
  void *p = NULL;
  assert_int_equal(cudaMalloc(&p, n * sizeof(float)), cudaSuccess);
  return (float *)p;
}

static void reset(void) { assert_int_equal(cudaDeviceReset(), cudaSuccess); }

/* ---- tests ----------------------------------------------------------------------------- */

static void test_block_sum_in_every_order(void **state) {
  (void)state;
  enum { B = 5 };
  float in[B * N_THREADS], out[B];
  for (int i = 0; i < B * N_THREADS; i++) in[i] = (float)(i % 7) - 2.0f;
  float *din = dev_floats(B * N_THREADS), *dout = dev_floats(B);
  assert_int_equal(cudaMemcpy(din, in, sizeof in, cudaMemcpyHostToDevice), cudaSuccess);
  ctsim_stats before, after;
  ctsim_get_stats(&before);
  CT__CU_LAUNCH(k_block_sum, B, N_THREADS, 0)(din, dout);
  assert_int_equal(cudaGetLastError(), cudaSuccess);
  assert_int_equal(cudaMemcpy(out, dout, sizeof out, cudaMemcpyDeviceToHost), cudaSuccess);
  /* every thread of every block ran, and passed 1 + log2(256) barriers */
  ctsim_get_stats(&after);
  assert_int_equal(after.launches - before.launches, 1);
  assert_int_equal(after.blocks - before.blocks, B);
  assert_int_equal(after.threads - before.threads, B * N_THREADS);
  assert_int_equal(after.barriers - before.barriers, B * 9);
  for (int b = 0; b < B; b++) {
    double want = 0;
    for (int t = 0; t < N_THREADS; t++) want += in[b * N_THREADS + t];
    assert_true(out[b] == (float)want);
  }
  cudaFree(din);
  cudaFree(dout);
}

static void test_missing_barrier_reads_nan(void **state) {
  (void)state;
  float out[N_THREADS];
  float *d = dev_floats(N_THREADS);
  CT__CU_LAUNCH(k_missing_barrier, 1, N_THREADS, 0)(d);
  assert_int_equal(cudaMemcpy(out, d, sizeof out, cudaMemcpyDeviceToHost), cudaSuccess);
  int nans = 0;
  for (int t = 0; t < N_THREADS; t++) nans += isnan(out[t]);
  print_message("    %s: %d of %d threads read an unwritten shared slot\n", ctsim_schedule_name(),
                nans, N_THREADS);
  assert_true(nans > 0);
  cudaFree(d);
}

static void test_divergent_barrier_is_an_error(void **state) {
  (void)state;
  float *d = dev_floats(64);
  CT__CU_LAUNCH(k_divergent_barrier, 1, 64, 0)(d);
  assert_int_equal(cudaGetLastError(), cudaSuccess); /* the launch itself is fine */
  assert_int_equal(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
  /* sticky, as on a GPU */
  void *p;
  assert_int_equal(cudaMalloc(&p, 4), cudaErrorLaunchFailure);
  reset();
  d = dev_floats(64);
  CT__CU_LAUNCH(k_two_barriers, 1, 64, 0)(d);
  assert_int_equal(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
  reset();
}

static void test_shared_memory_is_nan_in_every_block(void **state) {
  (void)state;
  float out[4];
  float *d = dev_floats(4);
  CT__CU_LAUNCH(k_shared_fresh, 4, 32, 0)(d);
  assert_int_equal(cudaMemcpy(out, d, sizeof out, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int b = 0; b < 4; b++) assert_true(isnan(out[b]));
  cudaFree(d);
}

static void test_warp_collectives(void **state) {
  (void)state;
  enum { T = 64 };
  float in[T], xs[T], ds[T], pre[T], bc[T];
  unsigned bal[T];
  for (int i = 0; i < T; i++) in[i] = (float)((i * 5) % 11) - 4.0f;
  float *d = dev_floats(5 * T);
  unsigned *db;
  assert_int_equal(cudaMalloc((void **)&db, sizeof bal), cudaSuccess);
  assert_int_equal(cudaMemcpy(d, in, sizeof in, cudaMemcpyHostToDevice), cudaSuccess);
  CT__CU_LAUNCH(k_warp, 1, T, 0)(d, d + T, d + 2 * T, d + 3 * T, d + 4 * T, db);
  assert_int_equal(cudaMemcpy(xs, d + T, sizeof xs, cudaMemcpyDeviceToHost), cudaSuccess);
  assert_int_equal(cudaMemcpy(ds, d + 2 * T, sizeof ds, cudaMemcpyDeviceToHost), cudaSuccess);
  assert_int_equal(cudaMemcpy(pre, d + 3 * T, sizeof pre, cudaMemcpyDeviceToHost), cudaSuccess);
  assert_int_equal(cudaMemcpy(bc, d + 4 * T, sizeof bc, cudaMemcpyDeviceToHost), cudaSuccess);
  assert_int_equal(cudaMemcpy(bal, db, sizeof bal, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int w = 0; w < T / 32; w++) {
    float sum = 0, run = 0;
    unsigned want_ballot = 0;
    for (int l = 0; l < 32; l++) {
      sum += in[w * 32 + l];
      if (in[w * 32 + l] > 0) want_ballot |= 1u << l;
    }
    /* shfl_down: lane l sums lanes l, l+1, ... with its own value past the end */
    for (int l = 0; l < 32; l++) {
      int i = w * 32 + l;
      run += in[i];
      assert_true(xs[i] == sum);
      assert_true(pre[i] == run);
      assert_true(bc[i] == in[w * 32 + (l / 8) * 8 + 3]);
      assert_int_equal(bal[i], want_ballot);
    }
    assert_true(ds[w * 32] == sum);
  }
  cudaFree(d);
  cudaFree(db);
}

static void test_warp_waiting_for_exited_lane(void **state) {
  (void)state;
  float *d = dev_floats(32);
  CT__CU_LAUNCH(k_warp_exited, 1, 32, 0)(d);
  assert_int_equal(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
  reset();
}

static void test_grid_stride_and_bad_configurations(void **state) {
  (void)state;
  enum { N = 10000 };
  static float h[N];
  for (int i = 0; i < N; i++) h[i] = (float)i;
  float *d = dev_floats(N);
  assert_int_equal(cudaMemcpy(d, h, sizeof h, cudaMemcpyHostToDevice), cudaSuccess);
  unsigned blocks = (unsigned)(ctsim_max_blocks() < 40 ? ctsim_max_blocks() : 40);
  CT__CU_LAUNCH(k_increment, blocks, 128, 0)(d, (int64_t)N);
  assert_int_equal(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int i = 0; i < N; i++) assert_true(h[i] == (float)i + 1.0f);
  /* invalid configurations fail the launch, not the context */
  CT__CU_LAUNCH(k_increment, 1, 2048, 0)(d, (int64_t)N);
  assert_int_equal(cudaGetLastError(), cudaErrorInvalidConfiguration);
  CT__CU_LAUNCH(k_increment, 0, 32, 0)(d, (int64_t)N);
  assert_int_equal(cudaGetLastError(), cudaErrorInvalidConfiguration);
  assert_int_equal(cudaGetLastError(), cudaSuccess);
  assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
  cudaFree(d);
}

static void test_memory_rules(void **state) {
  (void)state;
  float host[8] = {0};
  float *d = dev_floats(8);
  /* fresh memory is NaN */
  assert_int_equal(cudaMemcpy(host, d, sizeof host, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int i = 0; i < 8; i++) assert_true(isnan(host[i]));
  /* copies past the allocation, or with the wrong direction, are refused */
  assert_int_equal(cudaMemcpy(d, host, 9 * sizeof(float), cudaMemcpyHostToDevice),
                   cudaErrorInvalidValue);
  assert_int_equal(cudaMemcpy(host, d, sizeof host, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  assert_int_equal(cudaMemset(d + 4, 0, 5 * sizeof(float)), cudaErrorInvalidValue);
  assert_int_equal(cudaGetLastError(), cudaErrorInvalidValue);
  assert_int_equal(cudaFree(host), cudaErrorInvalidValue);
  /* more than the device has */
  void *big = NULL;
  size_t free_b, total;
  assert_int_equal(cudaMemGetInfo(&free_b, &total), cudaSuccess);
  assert_int_equal(cudaMalloc(&big, total + 1), cudaErrorMemoryAllocation);
  assert_null(big);
  assert_int_equal(cudaGetLastError(), cudaErrorMemoryAllocation);
  /* a host source is staged when cudaMemcpyAsync returns */
  cudaStream_t s;
  assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  for (int i = 0; i < 8; i++) host[i] = 1.0f;
  assert_int_equal(cudaMemcpyAsync(d, host, sizeof host, cudaMemcpyHostToDevice, s), cudaSuccess);
  for (int i = 0; i < 8; i++) host[i] = 2.0f;
  assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
  assert_int_equal(cudaMemcpy(host, d, sizeof host, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int i = 0; i < 8; i++) assert_true(host[i] == 1.0f);
  cudaStreamDestroy(s);
  cudaFree(d);
}

static void test_capture_records_and_replays(void **state) {
  (void)state;
  enum { N = 100 };
  float h[N];
  float *d = dev_floats(N);
  cudaStream_t s;
  assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  assert_int_equal(cudaMemsetAsync(d, 0, sizeof h, s), cudaSuccess);
  assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
  assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal),
                   cudaErrorIllegalState);
  CT__CU_LAUNCH(k_increment, 1, 64, s)(d, (int64_t)N);
  cudaGraph_t g;
  cudaGraphExec_t exec;
  assert_int_equal(cudaStreamEndCapture(s, &g), cudaSuccess);
  assert_int_equal(cudaGraphInstantiateWithFlags(&exec, g, 0), cudaSuccess);
  assert_int_equal(cudaGraphDestroy(g), cudaSuccess);
  /* recording ran nothing */
  assert_int_equal(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int i = 0; i < N; i++) assert_true(h[i] == 0.0f);
  for (int r = 0; r < 3; r++) assert_int_equal(cudaGraphLaunch(exec, s), cudaSuccess);
  assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
  assert_int_equal(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int i = 0; i < N; i++) assert_true(h[i] == 3.0f);
  cudaGraphExecDestroy(exec);
  /* what is illegal while capturing fails and invalidates the capture */
  assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  void *p = NULL;
  assert_int_equal(cudaMalloc(&p, 16), cudaErrorStreamCaptureUnsupported);
  assert_int_equal(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
  assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
  assert_null(g);
  assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorIllegalState);
  assert_int_equal(cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal),
                   cudaErrorStreamCaptureUnsupported);
  (void)cudaGetLastError();
  assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
  cudaFree(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_block_sum_in_every_order),
      cmocka_unit_test(test_missing_barrier_reads_nan),
      cmocka_unit_test(test_divergent_barrier_is_an_error),
      cmocka_unit_test(test_shared_memory_is_nan_in_every_block),
      cmocka_unit_test(test_warp_collectives),
      cmocka_unit_test(test_warp_waiting_for_exited_lane),
      cmocka_unit_test(test_grid_stride_and_bad_configurations),
      cmocka_unit_test(test_memory_rules),
      cmocka_unit_test(test_capture_records_and_replays),
  };
  return cmocka_run_group_tests_name("cudasim", tests, NULL, NULL);
}
