/* SPDX-License-Identifier: MIT */
/* Fuzz target: the command-line parsing of 'ctml train' and 'ctml sample' over
 * arbitrary argv (NUL-separated arguments): the --config preset, the config
 * flags, the option helper, the number and byte-count parsers and the config
 * check. Nothing is trained. */
#include "fuzz_common.h"
#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *buf = malloc(size + 1);
  char *argv[256];
  if (!buf) abort();
  memcpy(buf, data, size);
  buf[size] = '\0';
  int argc = 0;
  for (size_t i = 0; i <= size && argc < 255;) {
    argv[argc++] = buf + i;
    i += strlen(buf + i) + 1;
  }
  argv[argc] = NULL;
  cli_config c;
  const char *preset = NULL;
  if (cli_config_from_args(&c, "train", argc, argv, &preset) == CLI_OK) {
    for (int i = 0; i < argc; i++) {
      const char *v = NULL;
      char flag[32];
      int r;
      if ((r = cli_opt("train", argc, argv, &i, "--data", &v)) != 0) continue;
      if ((r = cli_opt("train", argc, argv, &i, "--max-memory", &v)) != 0) {
        int64_t b;
        if (r > 0) (void)cli_parse_bytes("train", "--max-memory", v, &b);
        continue;
      }
      if ((r = cli_opt("train", argc, argv, &i, "--log-every", &v)) != 0) {
        long x;
        if (r > 0) (void)cli_parse_long("train", "--log-every", v, 1, 1L << 30, &x);
        continue;
      }
      if ((r = cli_opt("sample", argc, argv, &i, "--temperature", &v)) != 0) {
        float t;
        if (r > 0) (void)cli_parse_float("sample", "--temperature", v, 0.0f, 100.0f, &t);
        continue;
      }
      r = cli_config_arg(&c, "train", argc, argv, &i, flag, &v);
      if (r > 0 && (!v || strlen(flag) >= 32)) abort();
    }
    if (cli_config_check(&c, "train")) {
      cli_budget b = cli_budget_estimate(&c, 256, 1 << 20);
      if (!(b.host > 0.0) || !(b.device > 0.0)) abort();
      ct_optimizer o = cli_config_optimizer(&c);
      (void)o;
    }
  }
  free(buf);
  return 0;
}
