/* SPDX-License-Identifier: MIT */
/* Byte-level text data: reading a corpus, the byte vocabulary, encoding and
 * decoding, and seeded batches of windows. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

/* A growing byte buffer. */
typedef struct text_buf {
  uint8_t *p;
  size_t len, cap;
} text_buf;

/* Makes room for want bytes in total plus a closing NUL, growing at least
 * twofold so that appending is linear. */
static ct_status buf_reserve(const char *fn, const char *path, text_buf *b, size_t want) {
  if (want < b->cap) return CT_OK;
  if (want >= SIZE_MAX / 2)
    return ct__fail(CT_ERR_NOMEM, "%s: '%s' is too large to hold in memory", fn, path);
  size_t cap = b->cap * 2 > want + 1 ? b->cap * 2 : want + 1;
  if (cap < 4096) cap = 4096;
  uint8_t *p = realloc(b->p, cap);
  if (!p)
    return ct__fail(CT_ERR_NOMEM, "%s: cannot allocate %zu bytes while reading '%s'", fn, cap,
                    path);
  b->p = p;
  b->cap = cap;
  return CT_OK;
}

/* Appends the whole file at path to b. A directory, or a file that cannot be
 * opened or read, is CT_ERR_IO naming the path; fn names the caller. */
static ct_status append_file(const char *fn, const char *path, text_buf *b, int64_t max_bytes) {
  /* O_NONBLOCK: opening a FIFO does not wait for a writer (regular files ignore it) */
  int fd = open(path, O_RDONLY | O_CLOEXEC | (max_bytes >= 0 ? O_NONBLOCK : 0));
  FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
  if (!f) {
    int e = errno;
    if (fd >= 0) close(fd);
    return ct__fail(CT_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(e));
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0) {
    int e = errno;
    fclose(f);
    return ct__fail(CT_ERR_IO, "%s: cannot stat '%s': %s", fn, path, strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    fclose(f);
    return ct__fail(CT_ERR_IO, "%s: '%s' is a directory, not a file", fn, path);
  }
  if (max_bytes >= 0 && !S_ISREG(st.st_mode)) {
    fclose(f);
    return ct__fail(CT_ERR_INVALID_ARG, "%s: '%s' is not a regular file (a device, pipe or socket)",
                    fn, path);
  }
  if (max_bytes >= 0 && st.st_size > max_bytes) {
    fclose(f);
    return ct__fail(CT_ERR_RANGE, "%s: '%s' has %lld bytes, more than the limit of %lld", fn, path,
                    (long long)st.st_size, (long long)max_bytes);
  }
  ct_status s = CT_OK;
  if (S_ISREG(st.st_mode) && (st.st_size > 0 || max_bytes >= 0)) {
    /* A regular file is read up to the size it had when opened, never past it
     * (one reporting size 0, as /proc's do, is read to its end unless bounded). */
    if ((uintmax_t)st.st_size >= SIZE_MAX / 2) {
      fclose(f);
      return ct__fail(CT_ERR_NOMEM, "%s: '%s' is too large to hold in memory", fn, path);
    }
    size_t want = (size_t)st.st_size;
    s = buf_reserve(fn, path, b, b->len + want);
    size_t got = s == CT_OK && want ? fread(b->p + b->len, 1, want, f) : 0;
    if (s == CT_OK && got < want && ferror(f))
      s = ct__fail(CT_ERR_IO, "%s: cannot read '%s' after %zu bytes: %s", fn, path, got,
                   strerror(errno));
    b->len += got;
    fclose(f);
    return s;
  }
  /* Pipes and /proc report no size: read until end of file. */
  while (s == CT_OK) {
    if (b->len + 1 >= b->cap) {
      /* Full: probe for end of file before growing. */
      int c = fgetc(f);
      if (c == EOF) {
        if (ferror(f))
          s = ct__fail(CT_ERR_IO, "%s: cannot read '%s' after %zu bytes: %s", fn, path, b->len,
                       strerror(errno));
        break;
      }
      s = buf_reserve(fn, path, b, b->len + 1);
      if (s == CT_OK) b->p[b->len++] = (uint8_t)c;
      continue;
    }
    size_t got = fread(b->p + b->len, 1, b->cap - 1 - b->len, f);
    b->len += got;
    if (got == 0) {
      if (ferror(f))
        s = ct__fail(CT_ERR_IO, "%s: cannot read '%s' after %zu bytes: %s", fn, path, b->len,
                     strerror(errno));
      break;
    }
  }
  fclose(f);
  return s;
}

ct_status ct_text_read_file(const char *path, uint8_t **data, int64_t *n) {
  CT__NEED(path, "ct_text_read_file");
  CT__NEED(data, "ct_text_read_file");
  CT__NEED(n, "ct_text_read_file");
  *data = NULL;
  *n = 0;
  text_buf b = {0};
  ct_status s = append_file("ct_text_read_file", path, &b, -1);
  if (s == CT_OK && b.len == 0)
    s = ct__fail(CT_ERR_INVALID_ARG, "ct_text_read_file: '%s' is empty", path);
  if (s != CT_OK) {
    free(b.p);
    return s;
  }
  b.p[b.len] = 0; /* a NUL after the text, outside the n bytes */
  *data = b.p;
  *n = (int64_t)b.len;
  return CT_OK;
}

ct_status ct_text_read_regular_file(const char *path, int64_t max_bytes, uint8_t **data,
                                   int64_t *n) {
  CT__NEED(path, "ct_text_read_regular_file");
  CT__NEED(data, "ct_text_read_regular_file");
  CT__NEED(n, "ct_text_read_regular_file");
  *data = NULL;
  *n = 0;
  if (max_bytes < 0)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_text_read_regular_file: max_bytes %lld is negative",
                    (long long)max_bytes);
  text_buf b = {0};
  ct_status s = append_file("ct_text_read_regular_file", path, &b, max_bytes);
  if (s == CT_OK && b.len == 0)
    s = ct__fail(CT_ERR_INVALID_ARG, "ct_text_read_regular_file: '%s' is empty", path);
  if (s != CT_OK) {
    free(b.p);
    return s;
  }
  b.p[b.len] = 0;
  *data = b.p;
  *n = (int64_t)b.len;
  return CT_OK;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* True for a name ending with suffix. */
static int ends_with(const char *s, const char *suffix) {
  size_t ls = strlen(s), lx = strlen(suffix);
  return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

/* Joins dir and name with one '/'; NULL when out of memory. */
static char *join_path(const char *dir, const char *name) {
  size_t ld = strlen(dir), ln = strlen(name);
  int slash = ld > 0 && dir[ld - 1] != '/';
  char *p = malloc(ld + (size_t)slash + ln + 1);
  if (!p) return NULL;
  memcpy(p, dir, ld);
  if (slash) p[ld] = '/';
  memcpy(p + ld + slash, name, ln + 1);
  return p;
}

ct_status ct_text_read_fortunes(const char *dir, uint8_t **data, int64_t *n, int *files) {
  static const char fn[] = "ct_text_read_fortunes";
  CT__NEED(dir, fn);
  CT__NEED(data, fn);
  CT__NEED(n, fn);
  *data = NULL;
  *n = 0;
  if (files) *files = 0;
  DIR *d = opendir(dir);
  if (!d)
    return ct__fail(CT_ERR_IO, "%s: cannot open directory '%s': %s", fn, dir, strerror(errno));

  /* The paths of the plain files: no hidden names, no *.dat index or *.u8
   * link, and (by lstat) nothing but regular files. */
  char **paths = NULL;
  size_t count = 0, cap = 0;
  ct_status s = CT_OK;
  struct dirent *e;
  errno = 0;
  while (s == CT_OK && (e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    if (name[0] == '.' || ends_with(name, ".dat") || ends_with(name, ".u8")) continue;
    char *p = join_path(dir, name);
    if (!p) {
      s = ct__fail(CT_ERR_NOMEM, "%s: out of memory listing '%s'", fn, dir);
      break;
    }
    struct stat st;
    if (lstat(p, &st) != 0) {
      s = ct__fail(CT_ERR_IO, "%s: cannot stat '%s': %s", fn, p, strerror(errno));
      free(p);
      break;
    }
    if (!S_ISREG(st.st_mode)) {
      free(p);
      continue;
    }
    if (count == cap) {
      size_t nc = cap ? cap * 2 : 64;
      char **np = realloc(paths, nc * sizeof *np);
      if (!np) {
        free(p);
        s = ct__fail(CT_ERR_NOMEM, "%s: out of memory listing '%s'", fn, dir);
        break;
      }
      paths = np;
      cap = nc;
    }
    paths[count++] = p;
    errno = 0;
  }
  if (s == CT_OK && errno != 0)
    s = ct__fail(CT_ERR_IO, "%s: cannot list '%s': %s", fn, dir, strerror(errno));
  closedir(d);
  if (s == CT_OK && count == 0)
    s = ct__fail(CT_ERR_IO, "%s: '%s' holds no plain fortune file (regular files other than "
                 "*.dat, *.u8 and hidden ones)", fn, dir);
  if (s == CT_OK && count > (size_t)INT32_MAX)
    s = ct__fail(CT_ERR_IO, "%s: '%s' holds too many files (%zu)", fn, dir, count);

  /* The contents in byte order of the names. */
  text_buf b = {0};
  if (s == CT_OK) {
    qsort(paths, count, sizeof *paths, cmp_names);
    for (size_t i = 0; i < count && s == CT_OK; i++) s = append_file(fn, paths[i], &b, -1);
  }
  if (s == CT_OK && b.len == 0)
    s = ct__fail(CT_ERR_IO, "%s: the %zu fortune files in '%s' are all empty", fn, count, dir);
  for (size_t i = 0; i < count; i++) free(paths[i]);
  free(paths);
  if (s != CT_OK) {
    free(b.p);
    return s;
  }
  b.p[b.len] = 0;
  *data = b.p;
  *n = (int64_t)b.len;
  if (files) *files = (int)count;
  return CT_OK;
}

/* Writes a byte as "0xNN" and, when printable ASCII, " ('c')" into out. */
static void describe_byte(char out[16], uint8_t c) {
  if (c >= 0x20 && c < 0x7f)
    snprintf(out, 16, "0x%02x ('%c')", c, c);
  else
    snprintf(out, 16, "0x%02x", c);
}

/* Fills the id map from v->byte_of[0 .. v->size). */
static void vocab_index(ct_vocab *v) {
  for (int b = 0; b < 256; b++) v->id_of[b] = -1;
  for (int i = 0; i < v->size; i++) v->id_of[v->byte_of[i]] = (int16_t)i;
}

ct_status ct_vocab_build(ct_vocab *v, const uint8_t *data, int64_t n) {
  CT__NEED(v, "ct_vocab_build");
  CT__NEED(data, "ct_vocab_build");
  if (n < 1)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_vocab_build: a text of %lld bytes has no "
                    "vocabulary (need n >= 1)", (long long)n);
  unsigned char seen[256] = {0};
  for (int64_t i = 0; i < n; i++) seen[data[i]] = 1;
  memset(v, 0, sizeof *v);
  for (int b = 0; b < 256; b++)
    if (seen[b]) v->byte_of[v->size++] = (uint8_t)b;
  vocab_index(v);
  return CT_OK;
}

ct_status ct_vocab_from_bytes(ct_vocab *v, const uint8_t *bytes, int n) {
  CT__NEED(v, "ct_vocab_from_bytes");
  CT__NEED(bytes, "ct_vocab_from_bytes");
  if (n < 1 || n > 256)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_vocab_from_bytes: %d bytes is outside 1 .. 256", n);
  for (int i = 1; i < n; i++)
    if (bytes[i] <= bytes[i - 1]) {
      char a[16], b[16];
      describe_byte(a, bytes[i]);
      describe_byte(b, bytes[i - 1]);
      return ct__fail(CT_ERR_INVALID_ARG, "ct_vocab_from_bytes: byte %s at index %d is not "
                      "greater than byte %s at index %d (bytes must be distinct and increasing)",
                      a, i, b, i - 1);
    }
  memset(v, 0, sizeof *v);
  v->size = n;
  memcpy(v->byte_of, bytes, (size_t)n);
  vocab_index(v);
  return CT_OK;
}

/* A usable vocabulary: size in 1 .. 256. */
static ct_status vocab_check(const ct_vocab *v, const char *fn) {
  if (v->size < 1 || v->size > 256)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: vocabulary size %d is outside 1 .. 256", fn,
                    v->size);
  return CT_OK;
}

ct_status ct_vocab_encode(const ct_vocab *v, const uint8_t *data, int64_t n, int32_t *ids) {
  CT__NEED(v, "ct_vocab_encode");
  CT__NEED(data, "ct_vocab_encode");
  CT__NEED(ids, "ct_vocab_encode");
  CT__TRY(vocab_check(v, "ct_vocab_encode"));
  if (n < 0)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_vocab_encode: length %lld is negative", (long long)n);
  for (int64_t i = 0; i < n; i++) {
    int id = v->id_of[data[i]];
    if (id < 0) {
      char d[16];
      describe_byte(d, data[i]);
      return ct__fail(CT_ERR_RANGE, "ct_vocab_encode: byte %s at offset %lld is not in the "
                      "vocabulary of %d bytes", d, (long long)i, v->size);
    }
    ids[i] = id;
  }
  return CT_OK;
}

ct_status ct_vocab_decode(const ct_vocab *v, const int32_t *ids, int64_t n, uint8_t *out) {
  CT__NEED(v, "ct_vocab_decode");
  CT__NEED(ids, "ct_vocab_decode");
  CT__NEED(out, "ct_vocab_decode");
  CT__TRY(vocab_check(v, "ct_vocab_decode"));
  if (n < 0)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_vocab_decode: length %lld is negative", (long long)n);
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= v->size)
      return ct__fail(CT_ERR_RANGE, "ct_vocab_decode: id %d at position %lld is outside [0, %d)",
                      ids[i], (long long)i, v->size);
    out[i] = v->byte_of[ids[i]];
  }
  return CT_OK;
}

uint64_t ct_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

ct_status ct_batch_draw(uint64_t *rng, const int32_t *ids, int64_t n, int64_t batch, int64_t T,
                        int32_t *inputs, int32_t *targets) {
  CT__NEED(rng, "ct_batch_draw");
  CT__NEED(ids, "ct_batch_draw");
  CT__NEED(inputs, "ct_batch_draw");
  CT__NEED(targets, "ct_batch_draw");
  if (batch < 1 || T < 1)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_batch_draw: batch %lld and window T = %lld must "
                    "both be >= 1", (long long)batch, (long long)T);
  if (n <= T)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_batch_draw: %lld ids are too few for windows of "
                    "T = %lld (need n >= T + 1)", (long long)n, (long long)T);
  if (batch > INT64_MAX / T)
    return ct__fail(CT_ERR_INVALID_ARG, "ct_batch_draw: batch %lld x T %lld overflows",
                    (long long)batch, (long long)T);
  uint64_t starts = (uint64_t)(n - T);
  for (int64_t b = 0; b < batch; b++) {
    int64_t s = (int64_t)(ct_splitmix64(rng) % starts);
    int32_t *in = inputs + b * T, *tg = targets + b * T;
    for (int64_t t = 0; t < T; t++) {
      in[t] = ids[s + t];
      tg[t] = ids[s + t + 1];
    }
  }
  return CT_OK;
}
