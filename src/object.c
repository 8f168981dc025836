/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include "internal.h"

static const char *const ct__role_names[CT_ROLE_COUNT] = {
    "TOKENS", "HIDDEN", "LOGITS", "DIST", "LOSS", "PARAM", "SEQ", "HEADS", "SCORES", "ATTN",
    "CACHE"};

const char *ct_role_name(ct_role r) {
  return (r >= 0 && r < CT_ROLE_COUNT) ? ct__role_names[r] : "?ROLE";
}

const char *ct_dtype_name(ct_dtype d) {
  return d == CT_F32 ? "f32" : d == CT_I32 ? "i32" : "?dtype";
}

ct_status ct_object_make(ct_object *out, ct_dtype dtype, ct_role role, int rank,
                         const int64_t *dims) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "ct_object_make: out is NULL");
  if (dtype != CT_F32 && dtype != CT_I32)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_object_make: unknown dtype %d", (int)dtype);
  if (role < 0 || role >= CT_ROLE_COUNT)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_object_make: unknown role %d", (int)role);
  if (rank < 0 || rank > CT_MAX_RANK)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_object_make: rank %d is outside 0..%d", rank,
                    CT_MAX_RANK);
  if (rank > 0 && !dims)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_object_make: dims is NULL for rank %d", rank);
  ct_dtype want = role == CT_ROLE_TOKENS ? CT_I32 : CT_F32;
  if (dtype != want)
    return ct__fail(CT_ERR_SHAPE, "ct_object_make: role %s needs dtype %s, not %s",
                    ct_role_name(role), ct_dtype_name(want), ct_dtype_name(dtype));
  if (role == CT_ROLE_LOSS && rank != 0)
    return ct__fail(CT_ERR_SHAPE, "ct_object_make: LOSS is a scalar (rank 0), not rank %d",
                    rank);
  int want_rank = role == CT_ROLE_SEQ ? 3 : role == CT_ROLE_HEADS || role == CT_ROLE_CACHE ? 4 : -1;
  if (want_rank > 0 && rank != want_rank)
    return ct__fail(CT_ERR_SHAPE, "ct_object_make: %s has rank %d (%s), not rank %d",
                    ct_role_name(role), want_rank,
                    role == CT_ROLE_SEQ     ? "batch, time, channels"
                    : role == CT_ROLE_CACHE ? "batch, heads, length, width"
                                            : "batch, heads, time, width",
                    rank);
  if (role == CT_ROLE_SCORES || role == CT_ROLE_ATTN) {
    if (rank != 3 && rank != 4)
      return ct__fail(CT_ERR_SHAPE, "ct_object_make: %s has rank 3 or 4 ([batch, (heads,) time, "
                      "time]), not rank %d", ct_role_name(role), rank);
    if (dims[rank - 1] != dims[rank - 2])
      return ct__fail(CT_ERR_SHAPE, "ct_object_make: %s is time x time over its last two axes, "
                      "got %lld x %lld", ct_role_name(role), (long long)dims[rank - 2],
                      (long long)dims[rank - 1]);
  }
  ct_object o;
  memset(&o, 0, sizeof o);
  o.dtype = dtype;
  o.role = role;
  o.rank = rank;
  int64_t numel = 1;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 1)
      return ct__fail(CT_ERR_SHAPE, "ct_object_make: %s dimension %d is %lld; dimensions must be >= 1",
                      ct_role_name(role), i, (long long)dims[i]);
    if (numel > INT64_MAX / 4 / dims[i])
      return ct__fail(CT_ERR_SHAPE, "ct_object_make: %s shape overflows", ct_role_name(role));
    numel *= dims[i];
    o.dims[i] = dims[i];
  }
  *out = o;
  return CT_OK;
}

ct_status ct_object_tokens(ct_object *out, int64_t n) {
  return ct_object_make(out, CT_I32, CT_ROLE_TOKENS, 1, &n);
}

ct_status ct_object_token_seq(ct_object *out, int64_t batch, int64_t time) {
  int64_t d[2] = {batch, time};
  return ct_object_make(out, CT_I32, CT_ROLE_TOKENS, 2, d);
}

ct_status ct_object_seq(ct_object *out, int64_t batch, int64_t time, int64_t channels) {
  int64_t d[3] = {batch, time, channels};
  return ct_object_make(out, CT_F32, CT_ROLE_SEQ, 3, d);
}

ct_status ct_object_matrix(ct_object *out, ct_role role, int64_t rows, int64_t cols) {
  int64_t d[2] = {rows, cols};
  return ct_object_make(out, role == CT_ROLE_TOKENS ? CT_I32 : CT_F32, role, 2, d);
}

ct_status ct_object_loss(ct_object *out) {
  return ct_object_make(out, CT_F32, CT_ROLE_LOSS, 0, NULL);
}

bool ct_object_equal(const ct_object *a, const ct_object *b) {
  if (!a || !b) return false;
  if (a->dtype != b->dtype || a->role != b->role || a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

int64_t ct_object_numel(const ct_object *o) {
  int64_t n = 1;
  for (int i = 0; i < o->rank; i++) n *= o->dims[i];
  return n;
}

size_t ct_object_bytes(const ct_object *o) { return (size_t)ct_object_numel(o) * 4u; }

int64_t ct__cols(const ct_object *o) { return o->rank ? o->dims[o->rank - 1] : 1; }
int64_t ct__rows(const ct_object *o) { return ct_object_numel(o) / ct__cols(o); }

const char *ct_object_str(const ct_object *o, char *buf, size_t n) {
  if (!buf || n == 0) return buf;
  if (!o) {
    snprintf(buf, n, "(null)");
    return buf;
  }
  size_t k = (size_t)snprintf(buf, n, "%s %s[", ct_role_name(o->role), ct_dtype_name(o->dtype));
  for (int i = 0; i < o->rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)o->dims[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}
