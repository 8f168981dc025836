/* SPDX-License-Identifier: MIT */
/* cudasim: the CUDA runtime API on the CPU, for tests. One simulated device;
 * every stream's work goes through one FIFO that runs at synchronisation
 * points; a kernel runs block by block, each CUDA thread a fiber that runs to
 * its next barrier or warp collective, in the order the schedule picks
 * (forward, reverse or seeded random, drawn again at every barrier phase).
 * Stream capture records the FIFO's operations into a graph instead of
 * running them; a graph launch queues them again. Single host thread. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>
#include <cuda_runtime_api.h>
#include "cudasim.h"
#define CTSIM_RUNTIME
#include "cudasim_device.h"

#if defined(__SANITIZE_ADDRESS__)
#define CTSIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CTSIM_ASAN 1
#endif
#endif
#ifdef CTSIM_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

/* ---- opaque handles of the runtime API -------------------------------------- */

namespace {
struct op {
  const char *what;
  std::function<void()> fn;
};
}  // namespace

struct CUgraph_st {
  std::vector<op> ops;
};
struct CUgraphExec_st {
  std::vector<op> ops;
};
struct CUstream_st {
  unsigned flags;
  bool capturing, invalidated;
  cudaStreamCaptureMode mode;
  CUgraph_st *graph;
};
struct CUevent_st {
  unsigned flags;
  bool recorded, done;
  double ms;
};

namespace ctsim {

/* ---- configuration ------------------------------------------------------------ */

struct config {
  bool loaded;
  ctsim_order order;
  uint64_t seed;
  bool small_grid;
  bool no_device;
  size_t memory;
  char name[96];
};
static config cfg;

static const config &conf() {
  if (cfg.loaded) return cfg;
  cfg.loaded = true;
  cfg.order = CTSIM_FORWARD;
  cfg.seed = 1;
  cfg.memory = (size_t)8192 << 20;
  const char *o = getenv("CTML_CUDASIM_ORDER");
  if (o && !strcmp(o, "reverse")) cfg.order = CTSIM_REVERSE;
  else if (o && !strcmp(o, "random")) cfg.order = CTSIM_RANDOM;
  else if (o && *o && strcmp(o, "forward"))
    fprintf(stderr, "cudasim: CTML_CUDASIM_ORDER='%s' is not forward, reverse or random; using forward\n", o);
  const char *s = getenv("CTML_CUDASIM_SEED");
  if (s && *s) cfg.seed = strtoull(s, NULL, 10);
  const char *g = getenv("CTML_CUDASIM_GRID");
  cfg.small_grid = g && !strcmp(g, "small");
  const char *d = getenv("CTML_CUDASIM_DEVICES");
  cfg.no_device = d && !strcmp(d, "0");
  const char *m = getenv("CTML_CUDASIM_MEMORY");
  if (m && *m) cfg.memory = (size_t)strtoull(m, NULL, 10) << 20;
  int k = snprintf(cfg.name, sizeof cfg.name, "%s", cfg.order == CTSIM_FORWARD ? "forward"
                                                  : cfg.order == CTSIM_REVERSE ? "reverse"
                                                                               : "random");
  if (cfg.order == CTSIM_RANDOM)
    k += snprintf(cfg.name + k, sizeof cfg.name - k, " seed %llu", (unsigned long long)cfg.seed);
  if (cfg.small_grid) snprintf(cfg.name + k, sizeof cfg.name - k, ", small grid");
  return cfg;
}

static uint64_t rng_state;
static uint64_t rng_next() {
  if (!rng_state) rng_state = conf().seed * 0x9e3779b97f4a7c15ull + 1;
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Puts v in the schedule's order. */
template <typename T>
static void order(std::vector<T> &v) {
  switch (conf().order) {
    case CTSIM_FORWARD: break;
    case CTSIM_REVERSE: std::reverse(v.begin(), v.end()); break;
    case CTSIM_RANDOM:
      for (size_t i = v.size(); i > 1; i--) std::swap(v[i - 1], v[rng_next() % i]);
      break;
  }
}

static ctsim_stats stats;

/* ---- errors ---------------------------------------------------------------------- */

static cudaError_t last_error = cudaSuccess;
static cudaError_t sticky = cudaSuccess;

static cudaError_t ret(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
  return e;
}

static void fault(cudaError_t e, const char *fmt, va_list ap) {
  fprintf(stderr, "cudasim: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  if (sticky == cudaSuccess) sticky = e;
  last_error = sticky;
}

static void faultf(cudaError_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void faultf(cudaError_t e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fault(e, fmt, ap);
  va_end(ap);
}

/* ---- device memory ------------------------------------------------------------------ */

static std::map<uintptr_t, size_t> allocs; /* start -> exact size */
static size_t mem_used;

/* The allocation holding p, or allocs.end(). */
static std::map<uintptr_t, size_t>::iterator alloc_of(const void *p) {
  uintptr_t a = (uintptr_t)p;
  auto it = allocs.upper_bound(a);
  if (it == allocs.begin()) return allocs.end();
  --it;
  if (a >= it->first && a < it->first + (it->second ? it->second : 1)) return it;
  return allocs.end();
}

static bool in_device(const void *p, size_t bytes) {
  auto it = alloc_of(p);
  if (it == allocs.end()) return false;
  return (uintptr_t)p - it->first + bytes <= it->second;
}

static bool any_device(const void *p) { return alloc_of(p) != allocs.end(); }

/* ---- streams and the queue -------------------------------------------------------------- */

static CUstream_st legacy_stream = {0, false, false, cudaStreamCaptureModeGlobal, NULL};
static std::set<CUstream_st *> streams = {&legacy_stream};
static std::deque<op> queue;
static int capturing_streams;

static CUstream_st *stream_of(cudaStream_t s) {
  if (s == NULL || s == cudaStreamLegacy || s == cudaStreamPerThread) return &legacy_stream;
  return streams.count(s) ? s : NULL;
}

/* Runs every queued operation in order; after a fault the rest are dropped. */
static void flush() {
  while (!queue.empty()) {
    op o = std::move(queue.front());
    queue.pop_front();
    if (sticky == cudaSuccess) o.fn();
  }
}

/* An API call that is illegal while a stream captures: invalidates the capture. */
static cudaError_t capture_violation(cudaError_t e) {
  for (CUstream_st *st : streams)
    if (st->capturing) st->invalidated = true;
  return ret(e);
}

/* Queues (or records) an operation on s. */
static cudaError_t submit(cudaStream_t s, const char *what, std::function<void()> fn) {
  if (sticky != cudaSuccess) return ret(sticky);
  CUstream_st *st = stream_of(s);
  if (!st) return ret(cudaErrorInvalidResourceHandle);
  if (st->capturing) {
    if (!st->invalidated) st->graph->ops.push_back(op{what, std::move(fn)});
    return cudaSuccess;
  }
  /* The legacy stream synchronises with every other stream, capturing ones included. */
  if (st == &legacy_stream && capturing_streams) return capture_violation(cudaErrorStreamCaptureImplicit);
  queue.push_back(op{what, std::move(fn)});
  stats.host_ops++;
  return cudaSuccess;
}

/* Waits for everything queued; illegal while capturing. */
static cudaError_t synchronize(bool capturing_is_error) {
  if (capturing_is_error && capturing_streams) return capture_violation(cudaErrorStreamCaptureUnsupported);
  flush();
  return sticky != cudaSuccess ? ret(sticky) : cudaSuccess;
}

/* ---- fibers -------------------------------------------------------------------------------- */

#if defined(__x86_64__)
/* Saves callee-saved registers, MXCSR and the x87 control word on the current
 * stack, stores its pointer in *save and resumes the stack at load. */
extern "C" void ctsim_swap(void **save, void *load);
asm(R"(
  .pushsection .text
  .globl ctsim_swap
  .type ctsim_swap, @function
ctsim_swap:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw (%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr 8(%rsp)
  fldcw (%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ctsim_swap, .-ctsim_swap
  .popsection
)");
#else
#error "cudasim's fiber switch is written for x86-64"
#endif

enum thread_state { T_READY, T_BARRIER, T_WARP, T_DONE };

struct sim_thread {
  void *sp;
  thread_state state;
  uint3 idx;
  const char *file; /* where it waits */
  int line;
  warp_kind wkind;
  unsigned mask;
  uint64_t value, result;
  int arg, width;
  void *fake_stack;
};

#ifdef CTSIM_ASAN
static const size_t stack_bytes = (size_t)256 << 10;
#else
static const size_t stack_bytes = (size_t)64 << 10;
#endif
static const size_t guard_bytes = 4096;
static char *stack_pool; /* 1024 stacks, each above a guard page */
static sim_thread threads[1024];
static int nthreads, cur;
static void *sched_sp;
#ifdef CTSIM_ASAN
static void *sched_fake_stack;
static const void *sched_stack_bottom;
static size_t sched_stack_size;
#endif
static const std::function<void()> *cur_body;
static const char *cur_kernel;

uint3 cur_thread_idx;
uint3 cur_block_idx;
dim3 cur_block_dim;
dim3 cur_grid_dim;

static char *stack_base(int t) { return stack_pool + (size_t)t * (stack_bytes + guard_bytes) + guard_bytes; }

static void ensure_stacks() {
  if (stack_pool) return;
  size_t total = 1024 * (stack_bytes + guard_bytes);
  void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "cudasim: cannot map %zu bytes of fiber stacks: %s\n", total, strerror(errno));
    abort();
  }
  stack_pool = (char *)p;
  for (int t = 0; t < 1024; t++) mprotect(stack_base(t) - guard_bytes, guard_bytes, PROT_NONE);
}

/* Leaves the running fiber for the scheduler; returns when it is resumed. */
static void yield_to_scheduler(bool exiting) {
  sim_thread &t = threads[cur];
  (void)exiting;
#ifdef CTSIM_ASAN
  __sanitizer_start_switch_fiber(exiting ? NULL : &t.fake_stack, sched_stack_bottom, sched_stack_size);
#endif
  ctsim_swap(&t.sp, sched_sp);
#ifdef CTSIM_ASAN
  __sanitizer_finish_switch_fiber(threads[cur].fake_stack, &sched_stack_bottom, &sched_stack_size);
#endif
}

static void fiber_main() {
#ifdef CTSIM_ASAN
  __sanitizer_finish_switch_fiber(NULL, &sched_stack_bottom, &sched_stack_size);
#endif
  (*cur_body)();
  threads[cur].state = T_DONE;
  yield_to_scheduler(true);
  __builtin_unreachable();
}

/* A fresh stack for thread t whose first resume enters fiber_main. */
__attribute__((no_sanitize_address)) static void *fresh_stack(int t) {
  uintptr_t top = ((uintptr_t)stack_base(t) + stack_bytes) & ~(uintptr_t)15;
  uint64_t *sp = (uint64_t *)top;
  *--sp = 0;                      /* fiber_main's return address slot: never used */
  *--sp = (uint64_t)(uintptr_t)&fiber_main;
  for (int i = 0; i < 6; i++) *--sp = 0; /* rbp rbx r12 r13 r14 r15 */
  uint32_t mxcsr;
  uint16_t fpcw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpcw));
  sp -= 2;
  memcpy((char *)sp + 8, &mxcsr, 4);
  memcpy((char *)sp, &fpcw, 2);
  return sp;
}

static void resume(int t) {
  cur = t;
  cur_thread_idx = threads[t].idx;
#ifdef CTSIM_ASAN
  __sanitizer_start_switch_fiber(&sched_fake_stack, stack_base(t), stack_bytes);
#endif
  ctsim_swap(&sched_sp, threads[t].sp);
#ifdef CTSIM_ASAN
  __sanitizer_finish_switch_fiber(sched_fake_stack, NULL, NULL);
#endif
}

/* ---- barriers and warp collectives ------------------------------------------------------------ */

void sync_block(const char *file, int line) {
  sim_thread &t = threads[cur];
  t.state = T_BARRIER;
  t.file = file;
  t.line = line;
  yield_to_scheduler(false);
}

uint64_t warp_op(warp_kind kind, unsigned mask, uint64_t value, int arg, int width,
                 const char *file, int line) {
  sim_thread &t = threads[cur];
  t.state = T_WARP;
  t.wkind = kind;
  t.mask = mask;
  t.value = value;
  t.arg = arg;
  t.width = width;
  t.file = file;
  t.line = line;
  yield_to_scheduler(false);
  return threads[cur].result;
}

unsigned active_mask() {
  int warp = cur / 32;
  unsigned m = 0;
  for (int l = 0; l < 32 && warp * 32 + l < nthreads; l++)
    if (threads[warp * 32 + l].state != T_DONE) m |= 1u << l;
  return m;
}

static const char *kind_name(warp_kind k) {
  static const char *names[] = {"__syncwarp", "__shfl_sync", "__shfl_up_sync", "__shfl_down_sync",
                                "__shfl_xor_sync", "__ballot_sync", "__any_sync", "__all_sync"};
  return names[k];
}

static char block_desc[64];
static const char *describe_block() {
  snprintf(block_desc, sizeof block_desc, "block (%u,%u,%u)", cur_block_idx.x, cur_block_idx.y,
           cur_block_idx.z);
  return block_desc;
}

/* Completes warp collectives whose every named lane has arrived; false on an
 * error (reported). *released counts the lanes set ready. */
static bool resolve_warps(int *released) {
  *released = 0;
  for (int w = 0; w * 32 < nthreads; w++) {
    int base = w * 32;
    int lanes = nthreads - base < 32 ? nthreads - base : 32;
    int first = -1;
    for (int l = 0; l < lanes; l++)
      if (threads[base + l].state == T_WARP) {
        first = l;
        break;
      }
    if (first < 0) continue;
    sim_thread &f = threads[base + first];
    bool complete = true;
    for (int l = 0; l < 32; l++) {
      if (!(f.mask >> l & 1)) continue;
      if (l >= lanes) {
        faultf(cudaErrorLaunchFailure, "kernel %s %s: %s at %s:%d names lane %d in its mask, but "
               "the block has %d threads", cur_kernel, describe_block(), kind_name(f.wkind),
               f.file, f.line, l, nthreads);
        return false;
      }
      sim_thread &o = threads[base + l];
      if (o.state == T_DONE) {
        faultf(cudaErrorLaunchFailure, "kernel %s %s: %s at %s:%d waits for lane %d (mask 0x%08x), "
               "which has exited", cur_kernel, describe_block(), kind_name(f.wkind), f.file, f.line,
               l, f.mask);
        return false;
      }
      if (o.state != T_WARP) {
        complete = false;
        continue;
      }
      if (o.mask != f.mask || o.wkind != f.wkind) {
        faultf(cudaErrorLaunchFailure, "kernel %s %s: lane %d is at %s (%s:%d, mask 0x%08x) while "
               "lane %d is at %s (%s:%d, mask 0x%08x)", cur_kernel, describe_block(), first,
               kind_name(f.wkind), f.file, f.line, f.mask, l, kind_name(o.wkind), o.file, o.line,
               o.mask);
        return false;
      }
    }
    if (!(f.mask >> first & 1)) {
      faultf(cudaErrorLaunchFailure, "kernel %s %s: lane %d calls %s at %s:%d with mask 0x%08x, "
             "which leaves itself out", cur_kernel, describe_block(), first, kind_name(f.wkind),
             f.file, f.line, f.mask);
      return false;
    }
    if (!complete) continue;
    unsigned ballot = 0;
    for (int l = 0; l < 32; l++)
      if (f.mask >> l & 1 && threads[base + l].value) ballot |= 1u << l;
    for (int l = 0; l < 32; l++) {
      if (!(f.mask >> l & 1)) continue;
      sim_thread &t = threads[base + l];
      int width = t.width;
      if (width < 1 || width > 32 || (width & (width - 1))) {
        faultf(cudaErrorLaunchFailure, "kernel %s %s: %s at %s:%d: width %d is not a power of two "
               "up to 32", cur_kernel, describe_block(), kind_name(t.wkind), t.file, t.line, width);
        return false;
      }
      int seg = l - l % width, src = l;
      switch (t.wkind) {
        case WARP_SHFL_IDX: src = seg + ((t.arg % width) + width) % width; break;
        case WARP_SHFL_UP: src = l - t.arg >= seg ? l - t.arg : l; break;
        case WARP_SHFL_DOWN: src = l + t.arg < seg + width ? l + t.arg : l; break;
        case WARP_SHFL_XOR: src = (l ^ t.arg) < seg + width ? (l ^ t.arg) : l; break;
        default: break;
      }
      if (src < 0 || src > 31 || !(f.mask >> src & 1)) {
        faultf(cudaErrorLaunchFailure, "kernel %s %s: lane %d's %s at %s:%d reads lane %d, which "
               "is not in the mask 0x%08x", cur_kernel, describe_block(), l, kind_name(t.wkind),
               t.file, t.line, src, f.mask);
        return false;
      }
      switch (t.wkind) {
        case WARP_SYNC: t.result = 0; break;
        case WARP_BALLOT: t.result = ballot; break;
        case WARP_ANY: t.result = ballot != 0; break;
        case WARP_ALL: t.result = ballot == f.mask; break;
        default: t.result = threads[base + src].value; break;
      }
    }
    for (int l = 0; l < 32; l++)
      if (f.mask >> l & 1) {
        threads[base + l].state = T_READY;
        ++*released;
      }
  }
  return true;
}

/* Explains why no thread of the block can go on. */
static void report_stuck() {
  int at_barrier = 0, done = 0, warp = 0, b0 = -1;
  for (int t = 0; t < nthreads; t++) {
    if (threads[t].state == T_BARRIER) {
      at_barrier++;
      if (b0 < 0) b0 = t;
    }
    done += threads[t].state == T_DONE;
    warp += threads[t].state == T_WARP;
  }
  if (warp) {
    for (int t = 0; t < nthreads; t++)
      if (threads[t].state == T_WARP) {
        faultf(cudaErrorLaunchFailure, "kernel %s %s: deadlock: thread %d waits at %s (%s:%d, mask "
               "0x%08x) for lanes that are at a __syncthreads or elsewhere", cur_kernel,
               describe_block(), t, kind_name(threads[t].wkind), threads[t].file, threads[t].line,
               threads[t].mask);
        return;
      }
  }
  for (int t = 0; t < nthreads; t++)
    if (threads[t].state == T_BARRIER &&
        (threads[t].line != threads[b0].line || strcmp(threads[t].file, threads[b0].file))) {
      faultf(cudaErrorLaunchFailure, "kernel %s %s: threads wait at different __syncthreads: "
             "thread %d at %s:%d, thread %d at %s:%d", cur_kernel, describe_block(), b0,
             threads[b0].file, threads[b0].line, t, threads[t].file, threads[t].line);
      return;
    }
  faultf(cudaErrorLaunchFailure, "kernel %s %s: __syncthreads at %s:%d reached by %d of %d threads "
         "(%d have exited)", cur_kernel, describe_block(), threads[b0].file, threads[b0].line,
         at_barrier, nthreads, done);
}

/* Fills the __shared__ section with NaN bytes (0xff). */
extern "C" char __start_ctsim_shared[] __attribute__((weak));
extern "C" char __stop_ctsim_shared[] __attribute__((weak));
static void poison_shared() {
  if (__start_ctsim_shared && __stop_ctsim_shared)
    memset(__start_ctsim_shared, 0xff, (size_t)(__stop_ctsim_shared - __start_ctsim_shared));
}

/* Runs one block to completion; false after a fault. */
static bool run_block(dim3 block) {
  poison_shared();
  nthreads = (int)(block.x * block.y * block.z);
  for (int t = 0; t < nthreads; t++) {
    sim_thread &th = threads[t];
    th.sp = fresh_stack(t);
    th.state = T_READY;
    th.idx.x = t % block.x;
    th.idx.y = (t / block.x) % block.y;
    th.idx.z = t / (block.x * block.y);
    th.fake_stack = NULL;
  }
  stats.threads += (uint64_t)nthreads;
  std::vector<int> ready;
  ready.reserve(nthreads);
  for (;;) {
    ready.clear();
    for (int t = 0; t < nthreads; t++)
      if (threads[t].state == T_READY) ready.push_back(t);
    if (!ready.empty()) {
      order(ready);
      for (int t : ready) resume(t);
      continue;
    }
    int released;
    if (!resolve_warps(&released)) return false;
    if (released) continue;
    int done = 0, at_barrier = 0;
    for (int t = 0; t < nthreads; t++) {
      done += threads[t].state == T_DONE;
      at_barrier += threads[t].state == T_BARRIER;
    }
    if (done == nthreads) return true;
    bool same = true;
    for (int t = 1; t < nthreads && same; t++)
      same = threads[t].line == threads[0].line && !strcmp(threads[t].file, threads[0].file);
    if (at_barrier == nthreads && same) {
      stats.barriers++;
      for (int t = 0; t < nthreads; t++) threads[t].state = T_READY;
      continue;
    }
    report_stuck();
    return false;
  }
}

/* Runs the grid: blocks in the schedule's order, one at a time. */
static void run_grid(const char *name, dim3 grid, dim3 block, const std::function<void()> &body) {
  ensure_stacks();
  cur_kernel = name;
  cur_body = &body;
  cur_block_dim = block;
  cur_grid_dim = grid;
  uint64_t nblocks = (uint64_t)grid.x * grid.y * grid.z;
  std::vector<uint64_t> blocks;
  bool permuted = conf().order != CTSIM_FORWARD;
  if (permuted) {
    blocks.resize(nblocks);
    for (uint64_t b = 0; b < nblocks; b++) blocks[b] = b;
    order(blocks);
  }
  stats.launches++;
  for (uint64_t i = 0; i < nblocks; i++) {
    uint64_t b = permuted ? blocks[i] : i;
    cur_block_idx.x = (unsigned)(b % grid.x);
    cur_block_idx.y = (unsigned)(b / grid.x % grid.y);
    cur_block_idx.z = (unsigned)(b / ((uint64_t)grid.x * grid.y));
    stats.blocks++;
    if (!run_block(block)) return;
  }
}

void launch(const char *name, dim3 grid, dim3 block, cudaStream_t s, std::function<void()> body) {
  if (sticky != cudaSuccess) {
    ret(sticky);
    return;
  }
  uint64_t threads_per_block = (uint64_t)block.x * block.y * block.z;
  if (threads_per_block == 0 || threads_per_block > 1024 || block.x > 1024 || block.y > 1024 ||
      block.z > 64 || grid.x == 0 || grid.x > 0x7fffffffu || grid.y == 0 || grid.y > 65535 ||
      grid.z == 0 || grid.z > 65535) {
    fprintf(stderr, "cudasim: kernel %s: invalid configuration grid (%u,%u,%u) block (%u,%u,%u)\n",
            name, grid.x, grid.y, grid.z, block.x, block.y, block.z);
    ret(cudaErrorInvalidConfiguration);
    return;
  }
  auto shared_body = std::make_shared<std::function<void()>>(std::move(body));
  (void)submit(s, name, [name, grid, block, shared_body]() { run_grid(name, grid, block, *shared_body); });
}

}  // namespace ctsim

using namespace ctsim;

/* ---- the C interface of cudasim.h --------------------------------------------------------------- */

extern "C" cudaError_t ctsim_enqueue(cudaStream_t s, const char *what, ctsim_op_fn fn,
                                     const void *args, size_t bytes) {
  auto copy = std::make_shared<std::vector<char>>((const char *)args, (const char *)args + bytes);
  return submit(s, what, [fn, copy]() { fn(copy->data()); });
}

extern "C" int ctsim_device_range_ok(const void *p, size_t bytes, const char *what) {
  if (bytes == 0 || in_device(p, bytes)) return 1;
  auto it = alloc_of(p);
  if (it == allocs.end())
    faultf(cudaErrorIllegalAddress, "%s: %p is not device memory", what, p);
  else
    faultf(cudaErrorIllegalAddress, "%s: %zu bytes at offset %zu overrun the %zu-byte allocation",
           what, bytes, (size_t)((uintptr_t)p - it->first), it->second);
  return 0;
}

extern "C" void ctsim_fault(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fault(cudaErrorLaunchFailure, fmt, ap);
  va_end(ap);
}

extern "C" ctsim_order ctsim_schedule_order(void) { return conf().order; }
extern "C" const char *ctsim_schedule_name(void) { return conf().name; }
extern "C" int64_t ctsim_max_blocks(void) {
  return conf().small_grid ? CTSIM_SMALL_GRID : (int64_t)1 << 20;
}
extern "C" void ctsim_get_stats(ctsim_stats *out) { *out = stats; }

/* ---- the runtime API -------------------------------------------------------------------------- */

static cudaError_t need_device() {
  if (conf().no_device) return ret(cudaErrorNoDevice);
  if (sticky != cudaSuccess) return ret(sticky);
  return cudaSuccess;
}
#define CTSIM_NEED_DEVICE()                  \
  do {                                       \
    cudaError_t e_ = need_device();          \
    if (e_ != cudaSuccess) return e_;        \
  } while (0)

extern "C" {

cudaError_t cudaGetLastError(void) {
  cudaError_t e = last_error;
  last_error = sticky;
  return e;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
#define CTSIM_NAME(x) case x: return #x;
    CTSIM_NAME(cudaSuccess)
    CTSIM_NAME(cudaErrorInvalidValue)
    CTSIM_NAME(cudaErrorMemoryAllocation)
    CTSIM_NAME(cudaErrorInitializationError)
    CTSIM_NAME(cudaErrorInvalidConfiguration)
    CTSIM_NAME(cudaErrorInvalidDevicePointer)
    CTSIM_NAME(cudaErrorInvalidMemcpyDirection)
    CTSIM_NAME(cudaErrorInsufficientDriver)
    CTSIM_NAME(cudaErrorNoDevice)
    CTSIM_NAME(cudaErrorInvalidDevice)
    CTSIM_NAME(cudaErrorInvalidDeviceFunction)
    CTSIM_NAME(cudaErrorInvalidResourceHandle)
    CTSIM_NAME(cudaErrorIllegalState)
    CTSIM_NAME(cudaErrorNotReady)
    CTSIM_NAME(cudaErrorIllegalAddress)
    CTSIM_NAME(cudaErrorLaunchFailure)
    CTSIM_NAME(cudaErrorNotSupported)
    CTSIM_NAME(cudaErrorStreamCaptureUnsupported)
    CTSIM_NAME(cudaErrorStreamCaptureInvalidated)
    CTSIM_NAME(cudaErrorStreamCaptureUnmatched)
    CTSIM_NAME(cudaErrorStreamCaptureImplicit)
    CTSIM_NAME(cudaErrorStreamCaptureWrongThread)
    CTSIM_NAME(cudaErrorUnknown)
#undef CTSIM_NAME
    default: return "cudaErrorUnknown";
  }
}

const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched: return "capture was not ended in the same stream as it began";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    default: return "unrecognized error code";
  }
}

cudaError_t cudaGetDeviceCount(int *count) {
  if (!count) return ret(cudaErrorInvalidValue);
  *count = 0;
  if (conf().no_device) return ret(cudaErrorNoDevice);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  CTSIM_NEED_DEVICE();
  return device == 0 ? cudaSuccess : ret(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDevice(int *device) {
  CTSIM_NEED_DEVICE();
  if (!device) return ret(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v) {
  if (!v) return ret(cudaErrorInvalidValue);
  *v = 13000;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v) {
  if (!v) return ret(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
  CTSIM_NEED_DEVICE();
  if (!p) return ret(cudaErrorInvalidValue);
  if (device != 0) return ret(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s (CPU, not a GPU; schedule %s)", CTSIM_DEVICE_NAME,
           conf().name);
  p->totalGlobalMem = conf().memory;
  p->sharedMemPerBlock = 48 << 10;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
  CTSIM_NEED_DEVICE();
  if (!value) return ret(cudaErrorInvalidValue);
  if (device != 0) return ret(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrComputeMode: *value = cudaComputeModeDefault; return cudaSuccess;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = 1; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 << 10; return cudaSuccess;
    default: return ret(cudaErrorInvalidValue);
  }
}

cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func) {
  CTSIM_NEED_DEVICE();
  if (!attr) return ret(cudaErrorInvalidValue);
  if (!func) return ret(cudaErrorInvalidDeviceFunction);
  memset(attr, 0, sizeof *attr);
  attr->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
  CTSIM_NEED_DEVICE();
  if (!p) return ret(cudaErrorInvalidValue);
  *p = NULL;
  if (capturing_streams) return capture_violation(cudaErrorStreamCaptureUnsupported);
  if (bytes == 0) return cudaSuccess;
  if (bytes > conf().memory - mem_used) return ret(cudaErrorMemoryAllocation);
  void *m = NULL; /* 256-byte aligned as cudaMalloc's, and exactly bytes long */
  if (posix_memalign(&m, 256, bytes) != 0) return ret(cudaErrorMemoryAllocation);
  memset(m, 0xff, bytes); /* NaN in every float and double; -1 in every int */
  allocs[(uintptr_t)m] = bytes;
  mem_used += bytes;
  *p = m;
  return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
  if (conf().no_device) return ret(cudaErrorNoDevice);
  if (capturing_streams) return capture_violation(cudaErrorStreamCaptureUnsupported);
  if (!p) return cudaSuccess;
  flush(); /* cudaFree waits for the device */
  auto it = allocs.find((uintptr_t)p);
  if (it == allocs.end()) return ret(cudaErrorInvalidValue);
  mem_used -= it->second;
  allocs.erase(it);
  free(p);
  return sticky != cudaSuccess ? ret(sticky) : cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
  CTSIM_NEED_DEVICE();
  if (!free_bytes || !total) return ret(cudaErrorInvalidValue);
  *total = conf().memory;
  *free_bytes = conf().memory - mem_used;
  return cudaSuccess;
}

/* Checks a copy's pointers against its kind; Default infers the kind. */
static cudaError_t copy_kind(void *dst, const void *src, size_t n, cudaMemcpyKind *kind) {
  bool dd = any_device(dst), sd = any_device(src);
  if (*kind == cudaMemcpyDefault)
    *kind = dd ? (sd ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
               : (sd ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  bool want_dd = *kind == cudaMemcpyHostToDevice || *kind == cudaMemcpyDeviceToDevice;
  bool want_sd = *kind == cudaMemcpyDeviceToHost || *kind == cudaMemcpyDeviceToDevice;
  if (*kind > cudaMemcpyDefault) return cudaErrorInvalidMemcpyDirection;
  if (want_dd && !in_device(dst, n)) return cudaErrorInvalidValue;
  if (want_sd && !in_device(src, n)) return cudaErrorInvalidValue;
  if (!want_dd && dd) return cudaErrorInvalidValue;
  if (!want_sd && sd) return cudaErrorInvalidValue;
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                            cudaStream_t s) {
  CTSIM_NEED_DEVICE();
  if (n == 0) return cudaSuccess;
  if (!dst || !src) return ret(cudaErrorInvalidValue);
  cudaError_t e = copy_kind(dst, src, n, &kind);
  if (e != cudaSuccess) return ret(e);
  CUstream_st *st = stream_of(s);
  if (!st) return ret(cudaErrorInvalidResourceHandle);
  if (kind == cudaMemcpyHostToDevice && !st->capturing) {
    /* From pageable memory: the source is staged before the call returns. */
    auto staged = std::make_shared<std::vector<char>>((const char *)src, (const char *)src + n);
    return submit(s, "cudaMemcpyAsync", [dst, staged]() {
      if (ctsim_device_range_ok(dst, staged->size(), "cudaMemcpyAsync (host to device)"))
        memcpy(dst, staged->data(), staged->size());
    });
  }
  e = submit(s, "cudaMemcpyAsync", [dst, src, n]() {
    if ((!any_device(src) || ctsim_device_range_ok(src, n, "cudaMemcpyAsync source")) &&
        (!any_device(dst) || ctsim_device_range_ok(dst, n, "cudaMemcpyAsync destination")))
      memmove(dst, src, n);
  });
  if (e != cudaSuccess) return e;
  /* To pageable memory the copy is complete when the call returns. */
  if (kind == cudaMemcpyDeviceToHost && !st->capturing) return synchronize(false);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind) {
  CTSIM_NEED_DEVICE();
  if (capturing_streams) return capture_violation(cudaErrorStreamCaptureImplicit);
  cudaError_t e = cudaMemcpyAsync(dst, src, n, kind, 0);
  if (e != cudaSuccess) return e;
  return synchronize(false);
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s) {
  CTSIM_NEED_DEVICE();
  if (n == 0) return cudaSuccess;
  if (!in_device(p, n)) return ret(cudaErrorInvalidValue);
  return submit(s, "cudaMemsetAsync", [p, value, n]() {
    if (ctsim_device_range_ok(p, n, "cudaMemsetAsync")) memset(p, value, n);
  });
}

cudaError_t cudaMemset(void *p, int value, size_t n) {
  CTSIM_NEED_DEVICE();
  if (capturing_streams) return capture_violation(cudaErrorStreamCaptureImplicit);
  cudaError_t e = cudaMemsetAsync(p, value, n, 0);
  if (e != cudaSuccess) return e;
  return synchronize(false);
}

cudaError_t cudaDeviceSynchronize(void) {
  CTSIM_NEED_DEVICE();
  return synchronize(true);
}

cudaError_t cudaDeviceReset(void) {
  if (conf().no_device) return ret(cudaErrorNoDevice);
  queue.clear();
  for (auto &a : allocs) free((void *)a.first);
  allocs.clear();
  mem_used = 0;
  sticky = last_error = cudaSuccess;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
  CTSIM_NEED_DEVICE();
  if (!s || flags > cudaStreamNonBlocking) return ret(cudaErrorInvalidValue);
  CUstream_st *st = new CUstream_st{flags, false, false, cudaStreamCaptureModeGlobal, NULL};
  streams.insert(st);
  *s = st;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }

cudaError_t cudaStreamDestroy(cudaStream_t s) {
  CUstream_st *st = stream_of(s);
  if (!st || st == &legacy_stream) return ret(cudaErrorInvalidResourceHandle);
  if (st->capturing) return ret(cudaErrorStreamCaptureUnsupported);
  flush(); /* its queued work still completes */
  streams.erase(st);
  delete st;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  CTSIM_NEED_DEVICE();
  CUstream_st *st = stream_of(s);
  if (!st) return ret(cudaErrorInvalidResourceHandle);
  if (st->capturing || (st == &legacy_stream && capturing_streams))
    return capture_violation(cudaErrorStreamCaptureUnsupported);
  return synchronize(false);
}

cudaError_t cudaStreamQuery(cudaStream_t s) {
  CTSIM_NEED_DEVICE();
  CUstream_st *st = stream_of(s);
  if (!st) return ret(cudaErrorInvalidResourceHandle);
  if (st->capturing) return capture_violation(cudaErrorStreamCaptureUnsupported);
  return queue.empty() ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode) {
  CTSIM_NEED_DEVICE();
  CUstream_st *st = stream_of(s);
  if (!st) return ret(cudaErrorInvalidResourceHandle);
  if (st == &legacy_stream) return ret(cudaErrorStreamCaptureUnsupported);
  if (st->capturing) return ret(cudaErrorIllegalState);
  st->capturing = true;
  st->invalidated = false;
  st->mode = mode;
  st->graph = new CUgraph_st();
  capturing_streams++;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
  CUstream_st *st = stream_of(s);
  if (!st) return ret(cudaErrorInvalidResourceHandle);
  if (!graph) return ret(cudaErrorInvalidValue);
  *graph = NULL;
  if (!st->capturing) return ret(cudaErrorIllegalState);
  st->capturing = false;
  capturing_streams--;
  if (st->invalidated) {
    delete st->graph;
    st->graph = NULL;
    return ret(cudaErrorStreamCaptureInvalidated);
  }
  *graph = st->graph;
  st->graph = NULL;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *status) {
  CUstream_st *st = stream_of(s);
  if (!st) return ret(cudaErrorInvalidResourceHandle);
  if (!status) return ret(cudaErrorInvalidValue);
  *status = !st->capturing      ? cudaStreamCaptureStatusNone
            : st->invalidated   ? cudaStreamCaptureStatusInvalidated
                                : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
  CTSIM_NEED_DEVICE();
  (void)flags;
  if (!exec || !graph) return ret(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->ops};
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *exec, cudaGraph_t graph,
                                          unsigned long long flags) {
  return cudaGraphInstantiate(exec, graph, flags);
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  if (!graph) return ret(cudaErrorInvalidValue);
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  if (!exec) return ret(cudaErrorInvalidValue);
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  CTSIM_NEED_DEVICE();
  if (!exec) return ret(cudaErrorInvalidValue);
  for (const op &o : exec->ops) {
    cudaError_t e = submit(s, o.what, o.fn);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

static double now_ms() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned int flags) {
  CTSIM_NEED_DEVICE();
  if (!ev) return ret(cudaErrorInvalidValue);
  *ev = new CUevent_st{flags, false, false, 0.0};
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *ev) { return cudaEventCreateWithFlags(ev, 0); }

cudaError_t cudaEventDestroy(cudaEvent_t ev) {
  if (!ev) return ret(cudaErrorInvalidResourceHandle);
  flush();
  delete ev;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t s) {
  CTSIM_NEED_DEVICE();
  if (!ev) return ret(cudaErrorInvalidResourceHandle);
  ev->recorded = true;
  ev->done = false;
  return submit(s, "cudaEventRecord", [ev]() {
    ev->done = true;
    ev->ms = now_ms();
  });
}

cudaError_t cudaEventSynchronize(cudaEvent_t ev) {
  CTSIM_NEED_DEVICE();
  if (!ev) return ret(cudaErrorInvalidResourceHandle);
  if (capturing_streams) return capture_violation(cudaErrorStreamCaptureUnsupported);
  return synchronize(false);
}

cudaError_t cudaEventQuery(cudaEvent_t ev) {
  CTSIM_NEED_DEVICE();
  if (!ev) return ret(cudaErrorInvalidResourceHandle);
  return !ev->recorded || ev->done ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
  CTSIM_NEED_DEVICE();
  if (!ms || !a || !b) return ret(cudaErrorInvalidResourceHandle);
  if (!a->done || !b->done) return ret(cudaErrorNotReady);
  *ms = (float)(b->ms - a->ms);
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t ev, unsigned int flags) {
  CTSIM_NEED_DEVICE();
  (void)flags;
  if (!ev || !stream_of(s)) return ret(cudaErrorInvalidResourceHandle);
  return cudaSuccess; /* one FIFO: everything queued earlier runs first */
}

}  // extern "C"
