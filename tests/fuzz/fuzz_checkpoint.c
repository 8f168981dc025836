/* SPDX-License-Identifier: MIT */
/* Fuzz target: the checkpoint loader as 'ctml sample' and 'ctml train --resume'
 * use it (cli_checkpoint_load, then the parameters copied into a model of the
 * stored config). */
#include "fuzz_common.h"
#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cli_checkpoint ck;
  if (cli_checkpoint_load("sample", fuzz_input_file(data, size), &ck)) {
    ct_gpt *g = NULL;
    if (ct_gpt_new(&g, &ck.cfg.model, ck.cfg.seed) == CT_OK) {
      (void)cli_checkpoint_params("sample", &ck, g);
      ct_gpt_free(g);
    }
    cli_checkpoint_free(&ck);
  }
  return 0;
}
