/* SPDX-License-Identifier: MIT */
/* Shared by the fuzz targets: the input as a file, for readers that take a path. */
#ifndef CTML_FUZZ_COMMON_H
#define CTML_FUZZ_COMMON_H
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A per-process file under $TMPDIR (default /tmp) holding the current input. */
static const char *fuzz_input_file(const uint8_t *data, size_t size) {
  static char path[256];
  if (!path[0]) {
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/ctml-fuzz-%ld", dir && *dir ? dir : "/tmp", (long)getpid());
  }
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  if (fclose(f) != 0) abort();
  return path;
}
#endif
