/* SPDX-License-Identifier: MIT */
/* Tensors and metadata in the safetensors format
 * (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
 * length N, N bytes of JSON header (each tensor name maps to {"dtype", "shape",
 * "data_offsets": [begin, end]} relative to the data section; "__metadata__"
 * maps string keys to string values), then the tensor bytes. ctml writes and
 * writes F32 tensors, little-endian, densely packed in the order given, and
 * reads F32 and BF16 ones (BF16 converted to F32 on load). */
#ifndef CTML_SAFETENSORS_H
#define CTML_SAFETENSORS_H

#include "ctml/export.h"
#include <stdint.h>
#include "ctml/object.h"
#include "ctml/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One tensor to write: rank 0 .. CT_MAX_RANK, data holds the product of dims floats. */
typedef struct ct_st_tensor {
  const char *name; /* non-empty, unique, not "__metadata__", < 256 bytes */
  int rank;
  int64_t dims[CT_MAX_RANK];
  const float *data;
} ct_st_tensor;

typedef struct ct_st_meta {
  const char *key;
  const char *value;
} ct_st_meta;

/* Writes the file atomically: the bytes go to "<path>.tmp", which is flushed
 * (fsync) and renamed over path, then the directory is flushed. On any failure
 * the temporary file is removed and an existing file at path is untouched. */
CT_API ct_status ct_safetensors_write(const char *path, const ct_st_tensor *tensors, int n_tensors,
                               const ct_st_meta *meta, int n_meta);

/* A file read into memory and validated whole: header length within the file,
 * well-formed JSON, every dtype F32 or BF16, offsets inside the data section, lengths
 * matching the shapes, no overlaps, and no bytes left over (a truncated or
 * extended file is refused). Errors name the file and what is wrong with it. */
typedef struct ct_safetensors ct_safetensors;
CT_API ct_status ct_safetensors_read(ct_safetensors **out, const char *path);
CT_API void ct_safetensors_free(ct_safetensors *f);

CT_API int ct_safetensors_count(const ct_safetensors *f);
/* Name of tensor i in file order (NULL when out of range). */
CT_API const char *ct_safetensors_name(const ct_safetensors *f, int i);
/* Dtype of tensor i as stored ("F32" or "BF16"; its data reads as F32 either way). */
CT_API const char *ct_safetensors_dtype(const ct_safetensors *f, int i);
/* The metadata value of key, or NULL when absent. */
CT_API const char *ct_safetensors_meta(const ct_safetensors *f, const char *key);
/* Finds a tensor: CT_ERR_IO naming the file when absent. data points into the
 * loaded file (valid until ct_safetensors_free); dims has CT_MAX_RANK slots. */
CT_API ct_status ct_safetensors_get(const ct_safetensors *f, const char *name, int *rank, int64_t *dims,
                             const float **data);

#ifdef __cplusplus
}
#endif
#endif
