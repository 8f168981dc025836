/* SPDX-License-Identifier: MIT */
/* Embedding lookup and its reverse. */

/* y[i, :] = table[ids[i], :], one work-item per element of y. A bad id is never
 * used to index: its row is written as zeros (ct_check_ids reports it). */
kernel void ct_embedding_fwd(global const int *ids, global const float *table, global float *y,
                             long n, long vocab, long width) {
  long e = (long)get_global_id(0);
  if (e >= n * width) return;
  long i = e / width, j = e - i * width;
  int id = ids[i];
  y[e] = (id >= 0 && (long)id < vocab) ? table[(long)id * width + j] : 0.0f;
}

/* The reverse, without float atomics: the (id, position) pairs are sorted
 * (bitonic sort of 64-bit keys id << 32 | position), then one work-item per
 * (run of equal ids, column) sums its positions' dy in position order and adds
 * the sum to dtable. Deterministic. */

/* keys[i] = ids[i] << 32 | i for i < n and a valid id; the rest (padding to a
 * power of two, and bad ids, which are skipped) sort last as ULONG_MAX. */
kernel void ct_embedding_keys(global const int *ids, global ulong *keys, long n, long n2,
                              long vocab) {
  long i = (long)get_global_id(0);
  if (i >= n2) return;
  ulong k = ULONG_MAX;
  if (i < n) {
    int id = ids[i];
    if (id >= 0 && (long)id < vocab) k = ((ulong)id << 32) | (ulong)i;
  }
  keys[i] = k;
}

/* One compare-exchange step (block size k, distance j) of a bitonic sort of
 * n2 (a power of two) keys into ascending order. */
kernel void ct_bitonic_step(global ulong *keys, long n2, long j, long k) {
  long i = (long)get_global_id(0);
  if (i >= n2) return;
  long l = i ^ j;
  if (l <= i) return;
  ulong a = keys[i], b = keys[l];
  bool ascending = (i & k) == 0;
  if ((a > b) == ascending) {
    keys[i] = b;
    keys[l] = a;
  }
}

/* dtable[id, j] += sum of dy[pos, j] over the sorted run of id, for the
 * work-item at the start of each run; dimension 0 is the column j. */
kernel void ct_embedding_rev(global const ulong *keys, global const float *dy,
                             global float *dtable, long n, long vocab, long width) {
  long j = (long)get_global_id(0), s = (long)get_global_id(1);
  if (j >= width || s >= n) return;
  ulong key = keys[s];
  ulong id = key >> 32;
  if (id >= (ulong)vocab) return;
  if (s > 0 && (keys[s - 1] >> 32) == id) return; /* not the start of its run */
  float acc = 0.0f;
  for (long r = s; r < n; r++) {
    ulong kr = keys[r];
    if ((kr >> 32) != id) break;
    acc += dy[(long)(kr & 0xffffffffUL) * width + j];
  }
  dtable[(long)id * width + j] += acc;
}
