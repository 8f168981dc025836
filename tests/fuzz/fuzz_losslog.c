/* SPDX-License-Identifier: MIT */
/* Fuzz target: the loss.csv reader of a resumed run (cli_losslog_parse, and
 * cli_losslog_read on the same bytes as a file). The first byte picks the
 * step the run resumes at. */
#include "fuzz_common.h"
#include "cli.h"

static void check(const cli_losslog *l, const char *kept, size_t kept_len, long last) {
  if (strlen(kept) != kept_len) abort();
  if (l->n_val > l->n) abort();
  for (int i = 0; i < l->n; i++)
    if (l->steps[i] < 1 || l->steps[i] > last) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  long last = data[0] * 3;
  cli_losslog l;
  memset(&l, 0, sizeof l);
  char *kept = NULL;
  size_t kept_len = 0;
  if (cli_losslog_parse((const char *)data + 1, size - 1, last, &l, &kept, &kept_len))
    check(&l, kept, kept_len, last);
  free(kept);
  cli_losslog_free(&l);
  if (cli_losslog_read(fuzz_input_file(data + 1, size - 1), last, &l, &kept, &kept_len))
    check(&l, kept, kept_len, last);
  free(kept);
  cli_losslog_free(&l);
  return 0;
}
