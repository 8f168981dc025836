/* SPDX-License-Identifier: MIT */
/* Internals of the OpenCL backend: the device context, the kernel list and
 * helpers shared by its files. Buffers are cl_mem handles passed as void *. */
#ifndef CTML_OCL_INTERNAL_H
#define CTML_OCL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#ifdef __APPLE__
#include <OpenCL/opencl.h>
#else
#include <CL/cl.h>
#endif
#include "backend_impl.h"
#include "ocl_loader.h" /* OpenCL calls go through the run-time loaded ICD loader */

/* Every kernel of the program: X(ENUM, "name in the .cl source"). */
#define CT__OCL_KERNELS(X)                          \
  X(CHECK_IDS, "ct_check_ids")                      \
  X(ADD, "ct_add")                                  \
  X(SGD, "ct_sgd")                                  \
  X(SOFTMAX_FWD, "ct_softmax_fwd")                  \
  X(SOFTMAX_REV, "ct_softmax_rev")                  \
  X(XENT_FWD, "ct_xent_fwd")                        \
  X(XENT_REV, "ct_xent_rev")                        \
  X(SMXENT_ROWS, "ct_softmax_xent_rows")            \
  X(SMXENT_LOSS, "ct_softmax_xent_loss")            \
  X(SMXENT_REV, "ct_softmax_xent_rev")              \
  X(COLSUM_PART, "ct_colsum_part")                  \
  X(COLSUM_FINISH, "ct_colsum_finish")              \
  X(EMB_FWD, "ct_embedding_fwd")                    \
  X(EMB_KEYS, "ct_embedding_keys")                  \
  X(BITONIC, "ct_bitonic_step")                     \
  X(EMB_REV, "ct_embedding_rev")                    \
  X(GEMM_RB_NN, "ct_gemm_rb_nn")                    \
  X(GEMM_RB_TN, "ct_gemm_rb_tn")                    \
  X(GEMM_LT_NN, "ct_gemm_lt_nn")                    \
  X(GEMM_LT_NT, "ct_gemm_lt_nt")                    \
  X(GEMM_LT_TN, "ct_gemm_lt_tn")                    \
  X(GEMM_RB_NN3, "ct_gemm_rb_nn3")                  \
  X(GEMM_LT_NN3, "ct_gemm_lt_nn3")                  \
  X(TRANSPOSE, "ct_transpose")                      \
  X(POS_FWD, "ct_pos_embedding_fwd")                \
  X(LN_FWD, "ct_layernorm_fwd")                     \
  X(LN_REV, "ct_layernorm_rev")                     \
  X(LN_PARAM_PART, "ct_layernorm_param_part")       \
  X(ADD_LN_FWD, "ct_add_layernorm_fwd")             \
  X(ADD_LN_REV, "ct_add_layernorm_rev")             \
  X(GELU_FWD, "ct_gelu_fwd")                        \
  X(GELU_REV, "ct_gelu_rev")                        \
  X(LINEAR_GELU_FWD, "ct_linear_gelu_fwd")          \
  X(LINEAR_GELU_REV, "ct_linear_gelu_rev")          \
  X(HEADS, "ct_heads_permute")                      \
  X(CMASK, "ct_causal_mask")                        \
  X(CSOFTMAX_FWD, "ct_causal_softmax_fwd")          \
  X(CSOFTMAX_REV, "ct_causal_softmax_rev")          \
  X(ATTN_PAD, "ct_attn_pad")                        \
  X(ATTN_FWD16, "ct_attn_fwd_16")                   \
  X(ATTN_FWD_N, "ct_attn_fwd_n")                    \
  X(ATTN_FWD_ANY, "ct_attn_fwd_any")                \
  X(ATTN_DQ16, "ct_attn_dq_16")                     \
  X(ATTN_DQ_N, "ct_attn_dq_n")                      \
  X(ATTN_DQ_ANY, "ct_attn_dq_any")                  \
  X(ATTN_DKDV16, "ct_attn_dkdv_16")                 \
  X(ATTN_DKDV_N, "ct_attn_dkdv_n")                  \
  X(ATTN_DKDV_ANY, "ct_attn_dkdv_any")              \
  X(KV_FUSED, "ct_kv_fused")                        \
  X(KV_WRITE, "ct_kv_write")                        \
  X(KV_ATTEND, "ct_kv_attend")                      \
  X(KV_ATTEND16, "ct_kv_attend_16")                 \
  X(KV_ATTEND_N, "ct_kv_attend_n")                  \
  X(SUMSQ, "ct_sumsq_part")                         \
  X(HYPER_STEP, "ct_hyper_step")                    \
  X(ADAMW, "ct_adamw")

typedef enum ct__ocl_kernel_id {
#define CT__OCL_KENUM(e, n) CT__K_##e,
  CT__OCL_KERNELS(CT__OCL_KENUM)
#undef CT__OCL_KENUM
  CT__K_COUNT
} ct__ocl_kernel_id;

/* The two matrix-product families (see kernels/gemm.cl). */
typedef enum ct__ocl_gemm_kind {
  CT__GEMM_REGISTER = 0, /* 4 x rb_width per work-item from global memory */
  CT__GEMM_LOCAL = 1     /* 64 x 64 per 16 x 16 work-group through local memory */
} ct__ocl_gemm_kind;

/* The local-tiled kernels' fixed work-group side (CT_LT_T in gemm.cl). */
#define CT__OCL_LT_SIDE 16

typedef struct ct__ocl {
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  cl_program program;
  cl_kernel kernel[CT__K_COUNT];
  size_t kernel_wg[CT__K_COUNT];      /* CL_KERNEL_WORK_GROUP_SIZE */
  cl_ulong kernel_local[CT__K_COUNT]; /* CL_KERNEL_LOCAL_MEM_SIZE */
  size_t wg_multiple;                 /* preferred work-group size multiple (first kernel) */
  cl_device_type type;
  cl_ulong max_alloc;   /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
  cl_ulong local_mem;   /* CL_DEVICE_LOCAL_MEM_SIZE */
  size_t base_align;    /* sub-buffer origin alignment in bytes (CL_DEVICE_MEM_BASE_ADDR_ALIGN / 8) */
  cl_mem record;        /* the device error record (see kernels/common.cl) */
  cl_mem dummy;         /* a 4-byte buffer bound where an optional argument is absent */
  cl_mem scratch;       /* grow-only scratch for multi-pass kernels */
  size_t scratch_bytes;
  ct__ocl_gemm_kind gemm; /* the family linear uses on this device */
  int rb_width;           /* columns per work-item of the register-blocked kernels */
  char cache_note[1024];  /* how the program was obtained (cache hit, rebuilt, ...) */
} ct__ocl;

/* The kernel sources, generated from the .cl files in kernels/ by embed.cmake: one string
 * per source line. */
extern const char *const ct__ocl_source[];
extern const size_t ct__ocl_source_count;

/* Name of an OpenCL error code, e.g. "CL_INVALID_VALUE" ("CL_UNKNOWN_ERROR"). */
const char *ct__ocl_error_name(cl_int err);
/* Fails with "opencl: <call>: <name> (<code>)"; allocation failures are
 * CT_ERR_NOMEM, the rest CT_ERR_DEVICE. */
ct_status ct__ocl_fail(const char *call, cl_int err);
#define CT__OCL_TRY(call, expr)                          \
  do {                                                   \
    cl_int ct__e_ = (expr);                              \
    if (ct__e_ != CL_SUCCESS) return ct__ocl_fail(call, ct__e_); \
  } while (0)

/* Builds c->program for c->device with options, through the on-disk binary
 * cache (ocl_cache.c). A failed build is CT_ERR_DEVICE with the build log. */
ct_status ct__ocl_build_program(ct__ocl *c, const char *options);

/* Device discovery and selection (ocl_device.c). */
typedef struct ct__ocl_dev {
  cl_platform_id platform;
  cl_device_id device;
  int platform_index, device_index; /* device index within its platform */
  cl_device_type type;
  char platform_name[96];
  char platform_version[96];
  char device_name[96];
  char device_version[96];
  cl_uint compute_units;
  cl_ulong global_mem; /* CL_DEVICE_GLOBAL_MEM_SIZE; 0 when unknown */
  bool usable;
  char reason[160];
} ct__ocl_dev;

/* Every platform and device found (*devs is malloc'ed; free it). Returns
 * CT_ERR_BACKEND_ABSENT with the reason when there is no platform or device. */
ct_status ct__ocl_enumerate(ct__ocl_dev **devs, int *n);
/* The index into devs of the device to run on, honouring the "platform" and
 * "device" options and CTML_OPENCL_PLATFORM / CTML_OPENCL_DEVICE; -1 with the
 * reason in why when none fits. */
int ct__ocl_select(const ct__ocl_dev *devs, int n, char *why, size_t why_len);
ct_status ct__ocl_set_option(void *ctx, const char *key, const char *value);
int ct__ocl_list_devices(ct_device_info *out, int max);
/* The device the opened backend runs on (NULL before open), for list_devices. */
cl_device_id ct__ocl_opened_device(void);

/* A matrix product on the device (see kernels/gemm.cl): C[M,N] = op(A) op(B)
 * (+ bias) (+ beta C), ta: A stored K x M, tb: B stored N x K; bias may be NULL;
 * beta is 0 or 1. kind picks the kernel family. Queued, not waited for. */
ct_status ct__ocl_gemm(ct__ocl *c, ct__ocl_gemm_kind kind, bool ta, bool tb, int64_t M,
                       int64_t N, int64_t K, cl_mem A, cl_mem B, cl_mem bias, float beta,
                       cl_mem C);
/* The same over batch products: product z reads A + z sa, B + z sb and writes
 * C + z sc (strides in floats). A batched nt on the register family needs B's
 * matrices contiguous (sb = N K). */
ct_status ct__ocl_gemm_batched(ct__ocl *c, ct__ocl_gemm_kind kind, bool ta, bool tb,
                               int64_t batch, int64_t M, int64_t N, int64_t K, cl_mem A,
                               int64_t sa, cl_mem B, int64_t sb, cl_mem bias, float beta, cl_mem C,
                               int64_t sc);
/* Whether the family can run on this device (the local-tiled kernels need a
 * 16 x 16 work-group). */
bool ct__ocl_gemm_usable(const ct__ocl *c, ct__ocl_gemm_kind kind);

#endif
