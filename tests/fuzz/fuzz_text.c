/* SPDX-License-Identifier: MIT */
/* Fuzz target: the text reader and the byte vocabulary (read, build, encode,
 * decode, a vocabulary from stored bytes, batch windows). */
#include "fuzz_common.h"
#include "ctml/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_input_file(data, size);
  uint8_t *text = NULL;
  int64_t n = 0;
  ct_status s = ct_text_read_regular_file(path, 1 << 20, &text, &n);
  if (s != CT_OK) return 0;
  if ((size_t)n != size || memcmp(text, data, size)) abort();
  free(text);
  if (ct_text_read_file(path, &text, &n) != CT_OK || (size_t)n != size) abort();
  ct_vocab v;
  if (ct_vocab_build(&v, text, n) != CT_OK) abort();
  int32_t *ids = malloc((size_t)n * sizeof *ids);
  uint8_t *back = malloc((size_t)n);
  if (!ids || !back) abort();
  if (ct_vocab_encode(&v, text, n, ids) != CT_OK) abort();
  if (ct_vocab_decode(&v, ids, n, back) != CT_OK || memcmp(back, text, (size_t)n)) abort();
  /* the input's first bytes as a stored vocabulary (sorted and distinct, or refused) */
  ct_vocab w;
  int k = n < 256 ? (int)n : 256;
  if (ct_vocab_from_bytes(&w, text, k) == CT_OK) {
    /* encoding with another vocabulary: refused or in range */
    if (ct_vocab_encode(&w, text, n, ids) == CT_OK)
      for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= w.size) abort();
    (void)ct_vocab_decode(&w, ids, n, back);
  }
  if (ct_vocab_encode(&v, text, n, ids) != CT_OK) abort();
  int64_t T = n > 2 ? (text[0] % (n - 1)) + 1 : 1;
  int32_t in[4 * 256], tg[4 * 256];
  uint64_t rng = text[n - 1];
  if (T <= 256) (void)ct_batch_draw(&rng, ids, n, 4, T, in, tg);
  free(ids);
  free(back);
  free(text);
  return 0;
}
