/* SPDX-License-Identifier: MIT */
/* Byte-level text data for character models: reading a corpus, a vocabulary of
 * the bytes that occur, encoding and decoding, and batches of windows drawn by
 * a seeded generator. */
#ifndef CTML_TEXT_H
#define CTML_TEXT_H

#include "ctml/export.h"
#include <stdint.h>
#include "ctml/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads a whole file into *data (free() it). A missing or unreadable file is
 * CT_ERR_IO, an empty one CT_ERR_INVALID_ARG; both messages name the path. */
CT_API ct_status ct_text_read_file(const char *path, uint8_t **data, int64_t *n);
/* The same for a regular file of at most max_bytes bytes (>= 0): anything else
 * (a directory, device, pipe or socket) is CT_ERR_INVALID_ARG, a larger file
 * CT_ERR_RANGE, both before reading; the file is read up to the size it had
 * when opened, never past it. */
CT_API ct_status ct_text_read_regular_file(const char *path, int64_t max_bytes, uint8_t **data,
                                           int64_t *n);

/* Reads the plain fortune files of a directory laid out like Debian's
 * /usr/share/games/fortunes: the regular files (symbolic links, "*.dat" and
 * "*.u8" and subdirectories skipped) in byte order of their names,
 * concatenated. *files receives how many were read (may be NULL). A missing
 * directory or one with no such file is CT_ERR_IO naming it. */
CT_API ct_status ct_text_read_fortunes(const char *dir, uint8_t **data, int64_t *n, int *files);

/* The bytes that occur, ids given in increasing byte order. */
typedef struct ct_vocab {
  int size;              /* 1 .. 256 */
  uint8_t byte_of[256];  /* id -> byte */
  int16_t id_of[256];    /* byte -> id, -1 when the byte is not in the vocabulary */
} ct_vocab;

/* From a text (n >= 1). */
CT_API ct_status ct_vocab_build(ct_vocab *v, const uint8_t *data, int64_t n);
/* From a stored list of distinct bytes in increasing order (1 <= n <= 256). */
CT_API ct_status ct_vocab_from_bytes(ct_vocab *v, const uint8_t *bytes, int n);
/* Bytes -> ids; a byte outside the vocabulary is CT_ERR_RANGE naming the byte
 * and its offset. */
CT_API ct_status ct_vocab_encode(const ct_vocab *v, const uint8_t *data, int64_t n, int32_t *ids);
/* Ids -> bytes; an id outside [0, size) is CT_ERR_RANGE naming it and its position. */
CT_API ct_status ct_vocab_decode(const ct_vocab *v, const int32_t *ids, int64_t n, uint8_t *out);

/* splitmix64: advances *state and returns the next 64 random bits. */
CT_API uint64_t ct_splitmix64(uint64_t *state);

/* Fills batch windows of length T from ids[0..n): for each row b a start s is
 * drawn as ct_splitmix64(rng) % (n - T), then inputs[b*T + t] = ids[s + t] and
 * targets[b*T + t] = ids[s + t + 1]. Needs n >= T + 1 (CT_ERR_INVALID_ARG
 * naming both otherwise). */
CT_API ct_status ct_batch_draw(uint64_t *rng, const int32_t *ids, int64_t n, int64_t batch, int64_t T,
                        int32_t *inputs, int32_t *targets);

#ifdef __cplusplus
}
#endif
#endif
