/* SPDX-License-Identifier: MIT */
/* Fuzz target: the safetensors reader (ct_safetensors_read and every query of
 * what it returns) on arbitrary files. */
#include "fuzz_common.h"
#include "ctml/safetensors.h"
#include "ctml/object.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ct_safetensors *f = NULL;
  if (ct_safetensors_read(&f, fuzz_input_file(data, size)) != CT_OK) return 0;
  volatile float sink = 0.0f;
  for (int i = 0; i < ct_safetensors_count(f); i++) {
    const char *name = ct_safetensors_name(f, i);
    int rank = 0;
    int64_t dims[CT_MAX_RANK];
    const float *t = NULL;
    if (!name || ct_safetensors_get(f, name, &rank, dims, &t) != CT_OK) abort();
    int64_t n = 1;
    for (int d = 0; d < rank; d++) n *= dims[d];
    if (n > 0) sink += t[0] + t[n - 1]; /* both ends lie inside the file */
  }
  (void)ct_safetensors_name(f, -1);
  (void)ct_safetensors_name(f, ct_safetensors_count(f));
  (void)ct_safetensors_meta(f, "format");
  (void)ct_safetensors_meta(f, "");
  ct_safetensors_free(f);
  (void)sink;
  return 0;
}
