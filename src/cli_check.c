#include "cli.h"

int cli_check(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return cli_error("check", CLI_FAIL, "not built yet");
}
