/* SPDX-License-Identifier: MIT */
/* The smallest program using an installed ctml: the book's walkthrough on the
 * CPU backend. Exits 0 when it trains and the library's version is the
 * headers'. */
#include <stdio.h>
#include <string.h>
#include <ctml/ctml.h>

int main(void) {
  const ct_backend *cpu;
  ct_book_result r;
  if (ct_backend_get("cpu", &cpu) != CT_OK || ct_book_run(cpu, &r, NULL) != CT_OK) {
    fprintf(stderr, "ctml: %s\n", ct_last_error());
    return 1;
  }
  printf("ctml %s (headers %d.%d.%d): loss %.4f -> %.4f\n", ct_version(), CTML_VERSION_MAJOR,
         CTML_VERSION_MINOR, CTML_VERSION_PATCH, r.loss_before, r.loss_after);
  return strcmp(ct_version(), CTML_VERSION) == 0 && r.loss_after < r.loss_before ? 0 : 1;
}
