/* SPDX-License-Identifier: MIT */
/* Matrix products C[M,N] = op(A) . op(B) (+ bias[N]) (+ beta * C) in three
 * layouts, the three products of linear:
 *   nn: A is M x K, B is K x N            y  = x . W (+ b)
 *   nt: A is M x K, B is stored N x K     dx = dy . W^T
 *   tn: A is stored K x M, B is K x N     dW += x^T . dy (beta = 1)
 * beta is 0 (C is overwritten, never read) or 1 (accumulate). Launch
 * dimension 2 runs a batch of such products (the attention generators'); the nn3
 * kernels run three nn products of one A with three B, bias and C (qkv's forward). 
 * Two families: register-blocked (each work-item computes a 4 x CT_RB_W tile
 * straight from global memory with vector loads; nt transposes B first) and
 * local-memory tiled (a 16 x 16 work-group computes a 64 x 64 tile through
 * local memory).
 * The host picks one per device.
 * Both sum each output in blocks of CT_KB products and add the block sums with
 * Kahan compensation, so the rounding error stays near that of one block
 * rather than growing with K (the reference sums in double; dW over thousands
 * of rows would otherwise drift past its tolerance). The compensation costs a
 * few additions per block. */

#define CT_KB 32 /* products per partial sum (a multiple of 4 and of CT_LT_BK) */

#define CT_A_NN(i, k) A[(long)(i) * K + (k)]
#define CT_A_TN(i, k) A[(long)(k) * M + (i)]
#define CT_B_NN(k, j) B[(long)(k) * N + (j)]
#define CT_B_NT(k, j) B[(long)(j) * K + (k)]

/* Writes one finished element: adds the bias, accumulates when beta != 0. */
#define CT_GEMM_STORE(i, j, v)                                        \
  do {                                                                \
    float v_ = (v) + (has_bias ? bias[(j)] : 0.0f);                   \
    global float *c_ = &C[(long)(i) * N + (j)];                       \
    *c_ = beta == 0.0f ? v_ : beta * *c_ + v_;                        \
  } while (0)

/* ---- register-blocked: one work-item per 4 x CT_RB_W tile of C ------------------
 * CT_RB_W (4, 8 or 16; a build option chosen from the device's native float
 * vector width) is the tile's width: rows of B are read as one CT_RB_W-wide
 * vector, so CPUs get full SIMD registers and GPUs plain coalesced loads. */

#ifndef CT_RB_W
#define CT_RB_W 4
#endif
#if CT_RB_W == 16
typedef float16 ct_vec;
#define CT_VLOAD vload16
#define CT_VSTORE vstore16
#elif CT_RB_W == 8
typedef float8 ct_vec;
#define CT_VLOAD vload8
#define CT_VSTORE vstore8
#else
typedef float4 ct_vec;
#define CT_VLOAD vload4
#define CT_VSTORE vstore4
#endif

/* A tile at the matrix edge: bounds-checked scalar loads and stores, summed in
 * blocks of CT_KB like the full tiles. */
#define CT_GEMM_EDGE(AE, BE)                                                   \
  do {                                                                         \
    float acc[4][CT_RB_W], part[4][CT_RB_W], err[4][CT_RB_W];                  \
    for (int r = 0; r < 4; r++)                                                \
      for (int c = 0; c < CT_RB_W; c++) acc[r][c] = part[r][c] = err[r][c] = 0.0f; \
    for (int k = 0; k < K; k++) {                                              \
      float a[4], b[CT_RB_W];                                                  \
      for (int r = 0; r < 4; r++) a[r] = i0 + r < M ? AE(i0 + r, k) : 0.0f;    \
      for (int c = 0; c < CT_RB_W; c++) b[c] = j0 + c < N ? BE(k, j0 + c) : 0.0f; \
      for (int r = 0; r < 4; r++)                                              \
        for (int c = 0; c < CT_RB_W; c++) part[r][c] = mad(a[r], b[c], part[r][c]); \
      if ((k + 1) % CT_KB == 0 || k + 1 == K)                                  \
        for (int r = 0; r < 4; r++)                                            \
          for (int c = 0; c < CT_RB_W; c++) {                                  \
            CT_KAHAN_ADD(acc[r][c], err[r][c], part[r][c], float);             \
            part[r][c] = 0.0f;                                                 \
          }                                                                    \
    }                                                                          \
    for (int r = 0; r < 4; r++)                                                \
      for (int c = 0; c < CT_RB_W; c++)                                        \
        if (i0 + r < M && j0 + c < N) CT_GEMM_STORE(i0 + r, j0 + c, acc[r][c]); \
  } while (0)

/* Writes row i of a full tile (columns j0 .. j0 + CT_RB_W - 1). */
#define CT_GEMM_STORE_ROW(i, t)                                       \
  do {                                                                \
    ct_vec v_ = (t);                                                  \
    if (has_bias) v_ += CT_VLOAD(0, bias + j0);                       \
    global float *c_ = C + (long)(i) * N + j0;                        \
    if (beta != 0.0f) v_ = beta * CT_VLOAD(0, c_) + v_;               \
    CT_VSTORE(v_, 0, c_);                                             \
  } while (0)

/* c_r += x_r.s * b for the four rows: one rank-1 step. */
#define CT_RANK1(s, b)                   \
  c0 = mad((ct_vec)(x0.s), (b), c0);     \
  c1 = mad((ct_vec)(x1.s), (b), c1);     \
  c2 = mad((ct_vec)(x2.s), (b), c2);     \
  c3 = mad((ct_vec)(x3.s), (b), c3)

/* Adds the block sums c_r into the totals t_r and restarts the block. */
#define CT_FOLD()                                     \
  CT_KAHAN_ADD(t0, e0, c0, ct_vec);                   \
  CT_KAHAN_ADD(t1, e1, c1, ct_vec);                   \
  CT_KAHAN_ADD(t2, e2, c2, ct_vec);                   \
  CT_KAHAN_ADD(t3, e3, c3, ct_vec);                   \
  c0 = c1 = c2 = c3 = 0.0f

/* Batched: dimension 2 of the launch is the batch index z; the operands of
 * product z start sa, sb and sc elements further on per z (0 for one product). */
#define CT_GEMM_ARGS                                                                    \
  int M, int N, int K, global const float *A, global const float *B,                    \
      global const float *bias, int has_bias, float beta, global float *C, long sa,     \
      long sb, long sc

/* The nn3 kernels: product z of three picks B, bias and C by z; beta 0. */
#define CT_GEMM_ARGS3                                                                         \
  int M, int N, int K, global const float *A, global const float *B0, global const float *B1, \
      global const float *B2, global const float *bias0, global const float *bias1,           \
      global const float *bias2, int has_bias, global float *C0, global float *C1,            \
      global float *C2

#define CT_GEMM_PICK3()                                                              \
  int z3_ = (int)get_global_id(2);                                                   \
  global const float *B = z3_ == 0 ? B0 : z3_ == 1 ? B1 : B2;                        \
  global const float *bias = z3_ == 0 ? bias0 : z3_ == 1 ? bias1 : bias2;            \
  global float *C = z3_ == 0 ? C0 : z3_ == 1 ? C1 : C2;                              \
  const float beta = 0.0f;                                                           \
  const long sa = 0, sb = 0, sc = 0

#define CT_GEMM_BATCH()                   \
  do {                                    \
    long z_ = (long)get_global_id(2);     \
    A += z_ * sa;                         \
    B += z_ * sb;                         \
    C += z_ * sc;                         \
  } while (0)

#define CT_TILE_START(AE, BE)                                                           \
  CT_GEMM_BATCH();                                                                      \
  int j0 = (int)get_global_id(0) * CT_RB_W, i0 = (int)get_global_id(1) * 4;           \
  if (i0 >= M || j0 >= N) return;                                                       \
  if (i0 + 4 > M || j0 + CT_RB_W > N) {                                                 \
    CT_GEMM_EDGE(AE, BE);                                                               \
    return;                                                                             \
  }                                                                                     \
  ct_vec c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f, t0 = 0.0f, t1 = 0.0f, t2 = 0.0f,   \
         t3 = 0.0f, e0 = 0.0f, e1 = 0.0f, e2 = 0.0f, e3 = 0.0f

#define CT_TILE_FINISH()                \
  CT_FOLD();                            \
  CT_GEMM_STORE_ROW(i0, t0);            \
  CT_GEMM_STORE_ROW(i0 + 1, t1);        \
  CT_GEMM_STORE_ROW(i0 + 2, t2);        \
  CT_GEMM_STORE_ROW(i0 + 3, t3)

/* nn: four rows of A read along k four at a time; rows of B as vectors. */
void ct_gemm_rb_nn_tile(CT_GEMM_ARGS) {
  CT_TILE_START(CT_A_NN, CT_B_NN);
  global const float *a0 = A + (long)i0 * K, *a1 = a0 + K, *a2 = a1 + K, *a3 = a2 + K;
  global const float *b = B + j0;
  int k = 0, K4 = K & ~3;
  while (k < K4) {
    for (int end = min(k + CT_KB, K4); k < end; k += 4) {
      float4 x0 = vload4(0, a0 + k), x1 = vload4(0, a1 + k), x2 = vload4(0, a2 + k),
             x3 = vload4(0, a3 + k);
      ct_vec b0 = CT_VLOAD(0, b), b1 = CT_VLOAD(0, b + N), b2 = CT_VLOAD(0, b + 2 * (long)N),
             b3 = CT_VLOAD(0, b + 3 * (long)N);
      b += 4 * (long)N;
      CT_RANK1(s0, b0);
      CT_RANK1(s1, b1);
      CT_RANK1(s2, b2);
      CT_RANK1(s3, b3);
    }
    CT_FOLD();
  }
  for (; k < K; k++) {
    ct_vec bk = CT_VLOAD(0, b);
    b += N;
    c0 = mad((ct_vec)(a0[k]), bk, c0);
    c1 = mad((ct_vec)(a1[k]), bk, c1);
    c2 = mad((ct_vec)(a2[k]), bk, c2);
    c3 = mad((ct_vec)(a3[k]), bk, c3);
  }
  CT_TILE_FINISH();
}

kernel void ct_gemm_rb_nn(CT_GEMM_ARGS) {
  ct_gemm_rb_nn_tile(M, N, K, A, B, bias, has_bias, beta, C, sa, sb, sc);
}

kernel void ct_gemm_rb_nn3(CT_GEMM_ARGS3) {
  CT_GEMM_PICK3();
  ct_gemm_rb_nn_tile(M, N, K, A, B, bias, has_bias, beta, C, sa, sb, sc);
}

/* tn: a column of four A^T entries (contiguous in A) and a row of B per k. */
kernel void ct_gemm_rb_tn(CT_GEMM_ARGS) {
  CT_TILE_START(CT_A_TN, CT_B_NN);
  global const float *a = A + i0, *b = B + j0;
  for (int k = 0; k < K;) {
    for (int end = min(k + CT_KB, K); k < end; k++) {
      float4 x = vload4(0, a);
      ct_vec bk = CT_VLOAD(0, b);
      a += M;
      b += N;
      c0 = mad((ct_vec)(x.s0), bk, c0);
      c1 = mad((ct_vec)(x.s1), bk, c1);
      c2 = mad((ct_vec)(x.s2), bk, c2);
      c3 = mad((ct_vec)(x.s3), bk, c3);
    }
    CT_FOLD();
  }
  CT_TILE_FINISH();
}

/* nt goes through a transpose: B (N x K) is copied to K x N, then nn. */
kernel void ct_transpose(global const float *src, global float *dst, int rows, int cols) {
  int j = (int)get_global_id(0), i = (int)get_global_id(1);
  long z = (long)get_global_id(2) * rows * cols; /* batch of matrices */
  src += z;
  dst += z;
  if (i < rows && j < cols) dst[(long)j * rows + i] = src[(long)i * cols + j];
}

/* ---- local-memory tiled: a 16 x 16 work-group per 64 x 64 tile of C ----------
 * Each K-slab of 16 is staged in local memory (both operands, zero-padded at
 * the edges); work-item (tx, ty) computes rows ty + 16r and columns tx + 16c,
 * r, c < 4. Loads follow the operand's contiguous axis so they coalesce. */

#define CT_LT_T 16
#define CT_LT_BM 64
#define CT_LT_BN 64
#define CT_LT_BK 16

/* a_contig_k: A's contiguous axis is k (nn, nt); b_contig_k: B's is k (nt). The body
 * of a kernel whose arguments (or locals) are CT_GEMM_ARGS's names. */
#define CT_GEMM_LT_BODY(AE, BE, a_contig_k, b_contig_k)                                   \
    local float As[CT_LT_BK][CT_LT_BM + 1];                                               \
    local float Bs[CT_LT_BK][CT_LT_BN + 1];                                               \
    CT_GEMM_BATCH();                                                                      \
    int tx = (int)get_local_id(0), ty = (int)get_local_id(1), t = ty * CT_LT_T + tx;      \
    int bi = (int)get_group_id(1) * CT_LT_BM, bj = (int)get_group_id(0) * CT_LT_BN;       \
    float acc[4][4], part[4][4], err[4][4];                                               \
    for (int r = 0; r < 4; r++)                                                           \
      for (int c = 0; c < 4; c++) acc[r][c] = part[r][c] = err[r][c] = 0.0f;              \
    for (int k0 = 0; k0 < K; k0 += CT_LT_BK) {                                            \
      for (int e = 0; e < 4; e++) {                                                       \
        int idx = t + e * CT_LT_T * CT_LT_T;                                              \
        int kk = a_contig_k ? idx % CT_LT_BK : idx / CT_LT_BM;                            \
        int ii = a_contig_k ? idx / CT_LT_BK : idx % CT_LT_BM;                            \
        As[kk][ii] = (bi + ii < M && k0 + kk < K) ? AE(bi + ii, k0 + kk) : 0.0f;          \
        kk = b_contig_k ? idx % CT_LT_BK : idx / CT_LT_BN;                                \
        int jj = b_contig_k ? idx / CT_LT_BK : idx % CT_LT_BN;                            \
        Bs[kk][jj] = (bj + jj < N && k0 + kk < K) ? BE(k0 + kk, bj + jj) : 0.0f;          \
      }                                                                                   \
      barrier(CLK_LOCAL_MEM_FENCE);                                                       \
      for (int kk = 0; kk < CT_LT_BK; kk++) {                                             \
        float a[4], b[4];                                                                 \
        for (int r = 0; r < 4; r++) a[r] = As[kk][ty + CT_LT_T * r];                      \
        for (int c = 0; c < 4; c++) b[c] = Bs[kk][tx + CT_LT_T * c];                      \
        for (int r = 0; r < 4; r++)                                                       \
          for (int c = 0; c < 4; c++) part[r][c] = mad(a[r], b[c], part[r][c]);           \
      }                                                                                   \
      barrier(CLK_LOCAL_MEM_FENCE);                                                       \
      if ((k0 + CT_LT_BK) % CT_KB == 0 || k0 + CT_LT_BK >= K)                             \
        for (int r = 0; r < 4; r++)                                                       \
          for (int c = 0; c < 4; c++) {                                                   \
            CT_KAHAN_ADD(acc[r][c], err[r][c], part[r][c], float);                        \
            part[r][c] = 0.0f;                                                            \
          }                                                                               \
    }                                                                                     \
    for (int r = 0; r < 4; r++)                                                           \
      for (int c = 0; c < 4; c++) {                                                       \
        int i = bi + ty + CT_LT_T * r, j = bj + tx + CT_LT_T * c;                         \
        if (i < M && j < N) CT_GEMM_STORE(i, j, acc[r][c]);                               \
      }

#define CT_GEMM_LT(name, AE, BE, a_contig_k, b_contig_k)                                  \
  kernel __attribute__((reqd_work_group_size(CT_LT_T, CT_LT_T, 1))) void name(CT_GEMM_ARGS) { \
    CT_GEMM_LT_BODY(AE, BE, a_contig_k, b_contig_k)                                       \
  }

CT_GEMM_LT(ct_gemm_lt_nn, CT_A_NN, CT_B_NN, 1, 0)
CT_GEMM_LT(ct_gemm_lt_nt, CT_A_NN, CT_B_NT, 1, 1)
CT_GEMM_LT(ct_gemm_lt_tn, CT_A_TN, CT_B_NN, 0, 0)

kernel __attribute__((reqd_work_group_size(CT_LT_T, CT_LT_T, 1))) void ct_gemm_lt_nn3(
    CT_GEMM_ARGS3) {
  CT_GEMM_PICK3();
  CT_GEMM_LT_BODY(CT_A_NN, CT_B_NN, 1, 0)
}

