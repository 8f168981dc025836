/* SPDX-License-Identifier: MIT */
/* Shared definitions of the ctml OpenCL kernels (OpenCL C 1.2). The kernel
 * files are concatenated in the order opencl/CMakeLists.txt lists them, this
 * one first, and built as one program. */

/* No silent a*b+c contraction: results stay close to the CPU reference; the
 * matrix products ask for mad() where they want it. */
#pragma OPENCL FP_CONTRACT OFF

/* Probabilities below this are clamped in the cross-entropies (as in cpu_ref). */
#define CT_P_FLOOR 1e-9f
/* ln(1e-9): the same floor in log space, for the fused softmax-cross-entropy. */
#define CT_LOG_P_FLOOR (-20.7232658369464f)

/* t += v with the running compensation e (Kahan); works on scalars and vectors. */
#define CT_KAHAN_ADD(t, e, v, T) \
  do {                           \
    T y_ = (v) - (e);            \
    T s_ = (t) + y_;             \
    (e) = (s_ - (t)) - y_;       \
    (t) = s_;                    \
  } while (0)

/* The device error record (ints): a flag, then the first error's node, op,
 * kind (0 token id, 1 target id, 2 position in a cache), value, position (low,
 * high word) and limit (low, high word). The host reads and clears it in sync(). */
#define CT_REC_FLAG 0
#define CT_REC_NODE 1
#define CT_REC_OP 2
#define CT_REC_KIND 3
#define CT_REC_VALUE 4
#define CT_REC_POS_LO 5
#define CT_REC_POS_HI 6
#define CT_REC_LIMIT_LO 7
#define CT_REC_LIMIT_HI 8

/* Records an id out of range unless an error is already recorded. */
void ct_record_bad_id(global int *rec, int node, int op, int kind, int value, long position,
                      long limit) {
  if (atomic_cmpxchg((volatile global int *)&rec[CT_REC_FLAG], 0, 1) != 0) return;
  rec[CT_REC_NODE] = node;
  rec[CT_REC_OP] = op;
  rec[CT_REC_KIND] = kind;
  rec[CT_REC_VALUE] = value;
  rec[CT_REC_POS_LO] = (int)(position & 0xffffffffL);
  rec[CT_REC_POS_HI] = (int)(position >> 32);
  rec[CT_REC_LIMIT_LO] = (int)(limit & 0xffffffffL);
  rec[CT_REC_LIMIT_HI] = (int)(limit >> 32);
}

/* The smallest position in [0, n) whose id is outside [0, limit), or n. Called
 * by every work-item of a group whose size is a power of two; tmp holds one
 * long per work-item. Every work-item gets the result. */
long ct_first_bad_id(global const int *ids, long n, long limit, local long *tmp) {
  size_t lid = get_local_id(0), size = get_local_size(0);
  long best = n;
  for (long i = (long)lid; i < n; i += (long)size) {
    int v = ids[i];
    if (v < 0 || (long)v >= limit) {
      best = i; /* later positions of this work-item are larger */
      break;
    }
  }
  tmp[lid] = best;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (size_t s = size / 2; s > 0; s /= 2) {
    if (lid < s && tmp[lid + s] < tmp[lid]) tmp[lid] = tmp[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  long r = tmp[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

/* Sum over the work-group (size a power of two) of each work-item's v, in a
 * fixed tree order; every work-item gets the result. tmp holds one float per
 * work-item. */
float ct_group_sum(float v, local float *tmp) {
  size_t lid = get_local_id(0);
  tmp[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (size_t s = get_local_size(0) / 2; s > 0; s /= 2) {
    if (lid < s) tmp[lid] += tmp[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  float r = tmp[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

/* Maximum over the work-group, as ct_group_sum. A NaN operand may or may not
 * win, as in the reference's "x > max" scan; the sums after it carry NaN on. */
float ct_group_max(float v, local float *tmp) {
  size_t lid = get_local_id(0);
  tmp[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (size_t s = get_local_size(0) / 2; s > 0; s /= 2) {
    if (lid < s && tmp[lid + s] > tmp[lid]) tmp[lid] = tmp[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  float r = tmp[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

/* Checks ids[0, n) against [0, limit) in one work-group and records the first
 * bad one: node and op name the plan node; kind 0 is a token id, 1 a target id. */
kernel void ct_check_ids(global const int *ids, long n, long limit, global int *rec, int node,
                         int op, int kind, local long *tmp) {
  long bad = ct_first_bad_id(ids, n, limit, tmp);
  if (get_local_id(0) == 0 && bad < n) ct_record_bad_id(rec, node, op, kind, ids[bad], bad, limit);
}
