/* SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

struct ct_param {
  char name[64];
  ct_object obj;
  float *data;
  int refs;
};

static ct_status ct__param_make(ct_param **out, const char *name, ct_role role, int rank,
                                const int64_t *dims);

ct_status ct_param_new(ct_param **out, const char *name, int rank, const int64_t *dims) {
  return ct__param_make(out, name, CT_ROLE_PARAM, rank, dims);
}

ct_status ct_param_new_cache(ct_param **out, const char *name, int64_t batch, int64_t heads,
                             int64_t length, int64_t width) {
  const int64_t dims[4] = {batch, heads, length, width};
  return ct__param_make(out, name, CT_ROLE_CACHE, 4, dims);
}

static ct_status ct__param_make(ct_param **out, const char *name, ct_role role, int rank,
                                const int64_t *dims) {
  if (!out) return ct__fail(CT_ERR_INVALID_ARG, "ct_param_new: out is NULL");
  *out = NULL;
  if (!name || !name[0]) return ct__fail(CT_ERR_INVALID_ARG, "ct_param_new: a parameter needs a name");
  if (strlen(name) >= sizeof((ct_param *)0)->name)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_param_new: name '%.20s...' is longer than 63 characters", name);
  if (rank < 1)
    return ct__fail(CT_ERR_SHAPE, "ct_param_new: parameter '%s' needs rank >= 1, got %d", name, rank);
  ct_object o;
  ct_status s = ct_object_make(&o, CT_F32, role, rank, dims);
  if (s != CT_OK) return ct__fail(s, "ct_param_new: parameter '%s': %s", name, ct_last_error());
  ct_param *p = calloc(1, sizeof *p);
  if (!p) return ct__fail(CT_ERR_NOMEM, "ct_param_new: out of host memory for '%s'", name);
  p->data = calloc((size_t)ct_object_numel(&o), sizeof(float));
  if (!p->data) {
    free(p);
    return ct__fail(CT_ERR_NOMEM, "ct_param_new: out of host memory for '%s' (%zu bytes)", name,
                    ct_object_bytes(&o));
  }
  strcpy(p->name, name);
  p->obj = o;
  p->refs = 1;
  *out = p;
  return CT_OK;
}

void ct__param_retain(ct_param *p) {
  if (p) p->refs++;
}

void ct_param_free(ct_param *p) {
  if (!p || --p->refs > 0) return;
  free(p->data);
  free(p);
}

const ct_object *ct_param_object(const ct_param *p) { return p ? &p->obj : NULL; }
const char *ct_param_name(const ct_param *p) { return p ? p->name : "(null)"; }
int64_t ct_param_numel(const ct_param *p) { return p ? ct_object_numel(&p->obj) : 0; }
float *ct__param_host(ct_param *p) { return p->data; }

static ct_status ct__param_count(const ct_param *p, int64_t n, const char *fn) {
  if (!p) return ct__fail(CT_ERR_INVALID_ARG, "%s: parameter is NULL", fn);
  if (n != ct_object_numel(&p->obj)) {
    char b[96];
    return ct__fail(CT_ERR_SHAPE, "%s: parameter '%s' (%s) has %lld elements, not %lld", fn,
                    p->name, ct_object_str(&p->obj, b, sizeof b),
                    (long long)ct_object_numel(&p->obj), (long long)n);
  }
  return CT_OK;
}

ct_status ct_param_set(ct_param *p, const float *values, int64_t n) {
  CT__TRY(ct__param_count(p, n, "ct_param_set"));
  if (!values) return ct__fail(CT_ERR_INVALID_ARG, "ct_param_set: values is NULL");
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(values[i]))
      return ct__fail(CT_ERR_NONFINITE, "ct_param_set: parameter '%s' element %lld is %g",
                      p->name, (long long)i, (double)values[i]);
  memcpy(p->data, values, (size_t)n * sizeof(float));
  return CT_OK;
}

ct_status ct_param_get(const ct_param *p, float *values, int64_t n) {
  CT__TRY(ct__param_count(p, n, "ct_param_get"));
  if (!values) return ct__fail(CT_ERR_INVALID_ARG, "ct_param_get: values is NULL");
  memcpy(values, p->data, (size_t)n * sizeof(float));
  return CT_OK;
}

ct_status ct_param_init_book(ct_param *p, int seed) {
  if (!p) return ct__fail(CT_ERR_INVALID_ARG, "ct_param_init_book: parameter is NULL");
  if (p->obj.rank > 2)
    return ct__fail(CT_ERR_SHAPE, "ct_param_init_book: parameter '%s' has rank %d; the book's "
                    "initialiser is for rank 1 or 2", p->name, p->obj.rank);
  if (seed < 0) return ct__fail(CT_ERR_INVALID_ARG, "ct_param_init_book: seed %d is negative", seed);
  int64_t rows = ct__rows(&p->obj), cols = ct__cols(&p->obj);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      int64_t k = ((r * cols + c) * 37 + (int64_t)seed * 101) % 1000;
      p->data[r * cols + c] = ((float)k / 1000.0f - 0.5f) * 0.2f;
    }
  return CT_OK;
}

ct_status ct_param_fill(ct_param *p, float value) {
  if (!p) return ct__fail(CT_ERR_INVALID_ARG, "ct_param_fill: parameter is NULL");
  if (!isfinite(value))
    return ct__fail(CT_ERR_NONFINITE, "ct_param_fill: value %g for '%s' is not finite",
                    (double)value, p->name);
  int64_t n = ct_object_numel(&p->obj);
  for (int64_t i = 0; i < n; i++) p->data[i] = value;
  return CT_OK;
}

static uint64_t ct__splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

ct_status ct_param_init_normal(ct_param *p, float std, uint64_t seed) {
  if (!p) return ct__fail(CT_ERR_INVALID_ARG, "ct_param_init_normal: parameter is NULL");
  if (!isfinite(std) || std < 0.0f)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_param_init_normal: std %g for '%s' must be finite "
                    "and >= 0", (double)std, p->name);
  int64_t n = ct_object_numel(&p->obj);
  uint64_t s = seed;
  for (int64_t i = 0; i < n; i++) {
    double u1 = ((double)(ct__splitmix(&s) >> 11) + 1.0) / 9007199254740992.0;
    double u2 = (double)(ct__splitmix(&s) >> 11) / 9007199254740992.0;
    p->data[i] = (float)((double)std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
  }
  return CT_OK;
}
