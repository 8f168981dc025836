#include "cli.h"

int cli_bench(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return cli_error("bench", CLI_FAIL, "not built yet");
}
