/* SPDX-License-Identifier: MIT */
/* cpu_ref: the reference backend. Buffers are host memory; kernels are in cpu_kernels.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_kernels.h"

static ct_status ct__cpu_open(void **ctx, char *device, size_t device_len) {
  *ctx = NULL;
  snprintf(device, device_len, "host CPU (reference kernels, double accumulation)");
  return CT_OK;
}

static ct_status ct__cpu_alloc(void *ctx, size_t bytes, void **buf) {
  *buf = calloc(bytes ? bytes : 1, 1);
  if (!*buf) return ct__fail(CT_ERR_NOMEM, "cpu: cannot allocate %zu bytes", bytes);
  return CT_OK;
}

static void ct__cpu_release(void *ctx, void *buf) { free(buf); }

static ct_status ct__cpu_upload(void *ctx, void *dst, const void *host, size_t bytes) {
  memcpy(dst, host, bytes);
  return CT_OK;
}

static ct_status ct__cpu_download(void *ctx, void *host, const void *src, size_t bytes) {
  memcpy(host, src, bytes);
  return CT_OK;
}

static ct_status ct__cpu_upload_at(void *ctx, void *dst, size_t offset, const void *host,
                                   size_t bytes) {
  memcpy((char *)dst + offset, host, bytes);
  return CT_OK;
}

static ct_status ct__cpu_download_at(void *ctx, void *host, const void *src, size_t offset,
                                     size_t bytes) {
  memcpy(host, (const char *)src + offset, bytes);
  return CT_OK;
}

static ct_status ct__cpu_fill(void *ctx, void *buf, float value, int64_t n) {
  float *f = buf;
  for (int64_t i = 0; i < n; i++) f[i] = value;
  return CT_OK;
}

/* Views are pointers into the base buffer; a tensor starts on a cache line of its own. */
static size_t ct__cpu_view_align(void *ctx) { return 64; }

static ct_status ct__cpu_view(void *ctx, void *base, size_t offset, size_t bytes, void **out) {
  *out = (char *)base + offset;
  return CT_OK;
}

static void ct__cpu_release_view(void *ctx, void *view) {}

static ct_status ct__cpu_sync(void *ctx) { return CT_OK; }

static int ct__cpu_list_devices(ct_device_info *out, int max) {
  if (max > 0) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "host CPU (reference kernels, double accumulation)");
    out->usable = out->selected = true;
  }
  return 1;
}

static bool ct__cpu_supports(ct_op op, ct_direction dir) { return op >= 0 && op < CT_OP_COUNT; }

const ct_backend ct__cpu_backend = {
    .name = "cpu",
    .open = ct__cpu_open,
    .alloc = ct__cpu_alloc,
    .release = ct__cpu_release,
    .upload = ct__cpu_upload,
    .download = ct__cpu_download,
    .upload_at = ct__cpu_upload_at,
    .download_at = ct__cpu_download_at,
    .fill = ct__cpu_fill,
    .view_align = ct__cpu_view_align,
    .view = ct__cpu_view,
    .release_view = ct__cpu_release_view,
    .sync = ct__cpu_sync,
    .supports = ct__cpu_supports,
    .forward =
        {
            [CT_OP_EMBEDDING] = ct__cpu_embedding_fwd,
            [CT_OP_LINEAR] = ct__cpu_linear_fwd,
            [CT_OP_SOFTMAX] = ct__cpu_softmax_fwd,
            [CT_OP_CROSS_ENTROPY] = ct__cpu_xent_fwd,
            [CT_OP_SOFTMAX_XENT] = ct__cpu_softmax_xent_fwd,
            [CT_OP_COPY] = ct__cpu_copy_fwd,
            [CT_OP_ADD] = ct__cpu_add_fwd,
            [CT_OP_DISCARD] = ct__cpu_discard_fwd,
            [CT_OP_POS_EMBEDDING] = ct__cpu_pos_embedding_fwd,
            [CT_OP_LAYERNORM] = ct__cpu_layernorm_fwd,
            [CT_OP_GELU] = ct__cpu_gelu_fwd,
            [CT_OP_HEAD_SPLIT] = ct__cpu_head_split_fwd,
            [CT_OP_HEAD_MERGE] = ct__cpu_head_merge_fwd,
            [CT_OP_ATTN_SCORES] = ct__cpu_attn_scores_fwd,
            [CT_OP_CAUSAL_SOFTMAX] = ct__cpu_causal_softmax_fwd,
            [CT_OP_ATTN_APPLY] = ct__cpu_attn_apply_fwd,
            [CT_OP_CAUSAL_ATTENTION] = ct__cpu_causal_attention_fwd,
            [CT_OP_KV_ATTENTION] = ct__cpu_kv_attention_fwd,
            [CT_OP_LINEAR_GELU] = ct__cpu_linear_gelu_fwd,
            [CT_OP_QKV] = ct__cpu_qkv_fwd,
            [CT_OP_ADD_LAYERNORM] = ct__cpu_add_layernorm_fwd,
        },
    .reverse =
        {
            [CT_OP_EMBEDDING] = ct__cpu_embedding_rev,
            [CT_OP_LINEAR] = ct__cpu_linear_rev,
            [CT_OP_SOFTMAX] = ct__cpu_softmax_rev,
            [CT_OP_CROSS_ENTROPY] = ct__cpu_xent_rev,
            [CT_OP_SOFTMAX_XENT] = ct__cpu_softmax_xent_rev,
            [CT_OP_POS_EMBEDDING] = ct__cpu_pos_embedding_rev,
            [CT_OP_LAYERNORM] = ct__cpu_layernorm_rev,
            [CT_OP_GELU] = ct__cpu_gelu_rev,
            [CT_OP_ATTN_SCORES] = ct__cpu_attn_scores_rev,
            [CT_OP_CAUSAL_SOFTMAX] = ct__cpu_causal_softmax_rev,
            [CT_OP_ATTN_APPLY] = ct__cpu_attn_apply_rev,
            [CT_OP_CAUSAL_ATTENTION] = ct__cpu_causal_attention_rev,
            [CT_OP_LINEAR_GELU] = ct__cpu_linear_gelu_rev,
            [CT_OP_QKV] = ct__cpu_qkv_rev,
            [CT_OP_ADD_LAYERNORM] = ct__cpu_add_layernorm_rev,
            /* copy, add, discard, head_split and head_merge reverse as add, copy,
             * zero, head_merge and head_split (see ops.c). */
        },
    .opt_state_per_elem = {[CT_OPT_SGD] = 0, [CT_OPT_ADAMW] = 2},
    .update = {[CT_OPT_SGD] = ct__cpu_sgd_update, [CT_OPT_ADAMW] = ct__cpu_adamw_update},
    .sumsq = ct__cpu_sumsq,
    .hyper_step = ct__cpu_hyper_step,
    .list_devices = ct__cpu_list_devices,
};
