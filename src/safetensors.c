/* SPDX-License-Identifier: MIT */
/* Safetensors files: F32 (and, read, BF16) tensors and string metadata. The writer emits a
 * compact JSON header padded with spaces so that the data section starts at a
 * multiple of 8, and replaces the target atomically. The reader checks the
 * whole file (header syntax, dtypes, shapes, offsets, exact coverage of the
 * data section) before handing out anything. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

#define CT__ST_MAX_HEADER 100000000ull /* the limit of the reference implementation */
#define CT__ST_MAX_NAME 256            /* tensor names are shorter than this */

static int ct__st_little_endian(void) {
  const uint32_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

/* Length of the well-formed UTF-8 sequence at s (n bytes available), 0 when
 * malformed (bad lead or continuation byte, overlong, surrogate, > U+10FFFF). */
static size_t ct__st_utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp, min;
  if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t k = 1; k < len; k++) {
    if ((s[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[k] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

/* Byte offset of the first malformed UTF-8 sequence in s, or -1 when s is valid. */
static long ct__st_utf8_bad(const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t n = strlen(s);
  for (size_t i = 0; i < n;) {
    size_t k = ct__st_utf8_seq(u + i, n - i);
    if (!k) return (long)i;
    i += k;
  }
  return -1;
}

/* Element count of a shape, or -1 when a dimension is negative or the byte
 * size (4 per element) would not fit in int64. */
static int64_t ct__st_numel(int rank, const int64_t *dims) {
  int64_t n = 1;
  for (int k = 0; k < rank; k++) {
    if (dims[k] < 0) return -1;
    if (dims[k] == 0) n = 0;
  }
  if (n == 0) return 0;
  for (int k = 0; k < rank; k++) {
    if (n > INT64_MAX / 4 / dims[k]) return -1;
    n *= dims[k];
  }
  return n;
}

/* "[4,8]" into buf (room for CT_MAX_RANK int64 values). */
static const char *ct__st_shape_str(char *buf, size_t cap, int rank, const int64_t *dims) {
  size_t n = (size_t)snprintf(buf, cap, "[");
  for (int k = 0; k < rank && n < cap; k++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", k ? "," : "", (long long)dims[k]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
  return buf;
}

/* Names sorted for duplicate detection and lookup; idx is the file or argument position. */
typedef struct ct__st_key {
  const char *name;
  int idx;
} ct__st_key;

static int ct__st_key_cmp(const void *a, const void *b) {
  const ct__st_key *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* ---- writer ---- */

/* A growing byte buffer; oom records a failed allocation. */
typedef struct ct__st_buf {
  char *p;
  size_t n, cap;
  int oom;
} ct__st_buf;

static void ct__st_put(ct__st_buf *b, const void *s, size_t n) {
  if (b->oom || n == 0) return;
  if (n > SIZE_MAX / 2 - b->n) {
    b->oom = 1;
    return;
  }
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void ct__st_puts(ct__st_buf *b, const char *s) { ct__st_put(b, s, strlen(s)); }

static void ct__st_put_int(ct__st_buf *b, int64_t v) {
  char t[24];
  int n = snprintf(t, sizeof t, "%lld", (long long)v);
  ct__st_put(b, t, (size_t)n);
}

/* A JSON string literal: quote and backslash escaped, control bytes as \u00XX,
 * other bytes (UTF-8, checked by the caller) verbatim. */
static void ct__st_put_json_string(ct__st_buf *b, const char *s) {
  ct__st_put(b, "\"", 1);
  for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
    if (*u == '"' || *u == '\\') {
      char e[2] = {'\\', (char)*u};
      ct__st_put(b, e, 2);
    } else if (*u < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", (unsigned)*u);
      ct__st_put(b, e, 6);
    } else {
      ct__st_put(b, u, 1);
    }
  }
  ct__st_put(b, "\"", 1);
}

/* Writes n bytes, retrying short writes and interrupted calls; 0 or an errno. */
static int ct__st_write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    size_t chunk = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
    ssize_t w = write(fd, c, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Flushes the directory holding path so that a rename in it is durable.
 * Filesystems that cannot flush directories (EINVAL) are accepted. */
static int ct__st_sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  if (!slash) {
    dir = strdup(".");
  } else {
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    dir = malloc(n + 1);
    if (dir) {
      memcpy(dir, path, n);
      dir[n] = '\0';
    }
  }
  if (!dir) return ENOMEM;
  int fd = open(dir, O_RDONLY | O_CLOEXEC);
  free(dir);
  if (fd < 0) return errno;
  int err = 0;
  if (fsync(fd) != 0 && errno != EINVAL) err = errno;
  close(fd);
  return err;
}

/* Writes the header buffer and the tensor bytes to "<path>.tmp", flushes it
 * and renames it over path; on failure removes the temporary file. */
static ct_status ct__st_commit(const char *fn, const char *path, const ct__st_buf *hdr,
                               const ct_st_tensor *t, int nt, const int64_t *bytes) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 5);
  if (!tmp) return ct__fail(CT_ERR_NOMEM, "%s: %s: out of host memory", fn, path);
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp", 5);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    ct_status s = ct__fail(CT_ERR_IO, "%s: cannot create %s: %s (%s left untouched)", fn, tmp,
                           strerror(errno), path);
    free(tmp);
    return s;
  }
  const char *what = "writing";
  int err = ct__st_write_all(fd, hdr->p, hdr->n);
  for (int i = 0; i < nt && !err; i++)
    if (bytes[i] > 0) err = ct__st_write_all(fd, t[i].data, (size_t)bytes[i]);
  if (!err && fsync(fd) != 0) err = errno, what = "flushing";
  if (close(fd) != 0 && !err) err = errno, what = "closing";
  if (!err && rename(tmp, path) != 0) err = errno, what = "renaming";
  if (err) {
    unlink(tmp);
    ct_status s = ct__fail(CT_ERR_IO, "%s: %s failed %s: %s (%s left untouched)", fn, what, tmp,
                           strerror(err), path);
    free(tmp);
    return s;
  }
  free(tmp);
  err = ct__st_sync_dir(path);
  if (err)
    return ct__fail(CT_ERR_IO, "%s: %s was written but flushing its directory failed: %s", fn, path,
                    strerror(err));
  return CT_OK;
}

/* Checks the arguments; fills bytes[i] with the data size of tensor i. */
static ct_status ct__st_check_args(const char *fn, const char *path, const ct_st_tensor *t, int nt,
                                   const ct_st_meta *meta, int nm, int64_t *bytes) {
  int64_t total = 0;
  for (int i = 0; i < nt; i++) {
    const char *name = t[i].name;
    if (!name)
      return ct__fail(CT_ERR_INVALID_ARG, "%s: %s: tensor %d has a NULL name", fn, path, i);
    size_t len = strlen(name);
    if (len == 0)
      return ct__fail(CT_ERR_INVALID_ARG, "%s: %s: tensor %d has an empty name", fn, path, i);
    if (len >= CT__ST_MAX_NAME)
      return ct__fail(CT_ERR_INVALID_ARG,
                      "%s: %s: tensor %d name '%.32s...' has %zu bytes (at most %d)", fn, path, i,
                      name, len, CT__ST_MAX_NAME - 1);
    if (strcmp(name, "__metadata__") == 0)
      return ct__fail(CT_ERR_INVALID_ARG,
                      "%s: %s: tensor %d is named '__metadata__', which is reserved", fn, path, i);
    long bad = ct__st_utf8_bad(name);
    if (bad >= 0)
      return ct__fail(CT_ERR_INVALID_ARG, "%s: %s: tensor %d name is not valid UTF-8 (byte %ld)",
                      fn, path, i, bad);
    if (t[i].rank < 0 || t[i].rank > CT_MAX_RANK)
      return ct__fail(CT_ERR_INVALID_ARG, "%s: %s: tensor '%s' has rank %d (0 .. %d allowed)", fn,
                      path, name, t[i].rank, CT_MAX_RANK);
    for (int k = 0; k < t[i].rank; k++)
      if (t[i].dims[k] < 0)
        return ct__fail(CT_ERR_INVALID_ARG,
                        "%s: %s: tensor '%s' dimension %d is %lld (must be >= 0)", fn, path, name,
                        k, (long long)t[i].dims[k]);
    int64_t numel = ct__st_numel(t[i].rank, t[i].dims);
    char sh[128];
    if (numel < 0 || numel * 4 > INT64_MAX - total || (uint64_t)(numel * 4) > SIZE_MAX)
      return ct__fail(CT_ERR_INVALID_ARG, "%s: %s: tensor '%s' of shape %s is too large", fn, path,
                      name, ct__st_shape_str(sh, sizeof sh, t[i].rank, t[i].dims));
    if (numel > 0 && !t[i].data)
      return ct__fail(CT_ERR_INVALID_ARG, "%s: %s: tensor '%s' of shape %s has NULL data", fn, path,
                      name, ct__st_shape_str(sh, sizeof sh, t[i].rank, t[i].dims));
    bytes[i] = numel * 4;
    total += bytes[i];
  }
  for (int i = 0; i < nm; i++) {
    if (!meta[i].key || !meta[i].value)
      return ct__fail(CT_ERR_INVALID_ARG, "%s: %s: metadata entry %d has a NULL %s", fn, path, i,
                      meta[i].key ? "value" : "key");
    long bad = ct__st_utf8_bad(meta[i].key);
    if (bad >= 0)
      return ct__fail(CT_ERR_INVALID_ARG, "%s: %s: metadata key %d is not valid UTF-8 (byte %ld)",
                      fn, path, i, bad);
    bad = ct__st_utf8_bad(meta[i].value);
    if (bad >= 0)
      return ct__fail(CT_ERR_INVALID_ARG,
                      "%s: %s: metadata value of '%s' is not valid UTF-8 (byte %ld)", fn, path,
                      meta[i].key, bad);
  }
  return CT_OK;
}

/* Fails when two of the n names are equal; what is "tensor" or "metadata key". */
static ct_status ct__st_check_unique(const char *fn, const char *path, const char *what,
                                     ct__st_key *keys, int n) {
  qsort(keys, (size_t)n, sizeof *keys, ct__st_key_cmp);
  for (int i = 1; i < n; i++)
    if (strcmp(keys[i - 1].name, keys[i].name) == 0)
      return ct__fail(CT_ERR_INVALID_ARG, "%s: %s: %s '%s' is given twice (entries %d and %d)", fn,
                      path, what, keys[i].name, keys[i - 1].idx, keys[i].idx);
  return CT_OK;
}

ct_status ct_safetensors_write(const char *path, const ct_st_tensor *tensors, int n_tensors,
                               const ct_st_meta *meta, int n_meta) {
  static const char fn[] = "ct_safetensors_write";
  CT__NEED(path, "ct_safetensors_write");
  if (!path[0]) return ct__fail(CT_ERR_INVALID_ARG, "%s: the path is empty", fn);
  if (n_tensors < 0 || n_meta < 0)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: %s: negative count (%d tensors, %d metadata entries)",
                    fn, path, n_tensors, n_meta);
  if (n_tensors > 0) CT__NEED(tensors, "ct_safetensors_write");
  if (n_meta > 0) CT__NEED(meta, "ct_safetensors_write");
  if (!ct__st_little_endian())
    return ct__fail(CT_ERR_UNSUPPORTED,
                    "%s: %s: safetensors data is little-endian and this host is not", fn, path);

  int nk = n_tensors > n_meta ? n_tensors : n_meta;
  int64_t *bytes = malloc(sizeof *bytes * ((size_t)n_tensors + 1));
  ct__st_key *keys = malloc(sizeof *keys * ((size_t)nk + 1));
  ct__st_buf hdr = {0};
  ct_status s = CT_OK;
  if (!bytes || !keys) {
    s = ct__fail(CT_ERR_NOMEM, "%s: %s: out of host memory", fn, path);
    goto done;
  }
  s = ct__st_check_args(fn, path, tensors, n_tensors, meta, n_meta, bytes);
  if (s != CT_OK) goto done;
  for (int i = 0; i < n_tensors; i++) keys[i] = (ct__st_key){tensors[i].name, i};
  s = ct__st_check_unique(fn, path, "tensor", keys, n_tensors);
  if (s != CT_OK) goto done;
  for (int i = 0; i < n_meta; i++) keys[i] = (ct__st_key){meta[i].key, i};
  s = ct__st_check_unique(fn, path, "metadata key", keys, n_meta);
  if (s != CT_OK) goto done;

  /* 8 bytes of length first, filled in once the header is complete. */
  ct__st_put(&hdr, "\0\0\0\0\0\0\0\0", 8);
  ct__st_put(&hdr, "{", 1);
  if (n_meta > 0) {
    ct__st_puts(&hdr, "\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
      if (i) ct__st_put(&hdr, ",", 1);
      ct__st_put_json_string(&hdr, meta[i].key);
      ct__st_put(&hdr, ":", 1);
      ct__st_put_json_string(&hdr, meta[i].value);
    }
    ct__st_put(&hdr, "}", 1);
  }
  int64_t off = 0;
  for (int i = 0; i < n_tensors; i++) {
    if (i || n_meta > 0) ct__st_put(&hdr, ",", 1);
    ct__st_put_json_string(&hdr, tensors[i].name);
    ct__st_puts(&hdr, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int k = 0; k < tensors[i].rank; k++) {
      if (k) ct__st_put(&hdr, ",", 1);
      ct__st_put_int(&hdr, tensors[i].dims[k]);
    }
    ct__st_puts(&hdr, "],\"data_offsets\":[");
    ct__st_put_int(&hdr, off);
    ct__st_put(&hdr, ",", 1);
    ct__st_put_int(&hdr, off + bytes[i]);
    ct__st_puts(&hdr, "]}");
    off += bytes[i];
  }
  ct__st_put(&hdr, "}", 1);
  while (!hdr.oom && hdr.n % 8 != 0) ct__st_put(&hdr, " ", 1); /* data starts 8-aligned */
  if (hdr.oom) {
    s = ct__fail(CT_ERR_NOMEM, "%s: %s: out of host memory for the header", fn, path);
    goto done;
  }
  if (hdr.n - 8 > CT__ST_MAX_HEADER) {
    s = ct__fail(CT_ERR_INVALID_ARG, "%s: %s: the header would take %zu bytes (at most %llu)", fn,
                 path, hdr.n - 8, CT__ST_MAX_HEADER);
    goto done;
  }
  uint64_t hlen = (uint64_t)(hdr.n - 8);
  for (int k = 0; k < 8; k++) hdr.p[k] = (char)(unsigned char)(hlen >> (8 * k));
  s = ct__st_commit(fn, path, &hdr, tensors, n_tensors, bytes);
done:
  free(hdr.p);
  free(keys);
  free(bytes);
  return s;
}

/* ---- reader ---- */

typedef struct ct__st_entry {
  const char *name;
  const char *dtype; /* NULL until parsed */
  int rank;          /* shape entries (may exceed CT_MAX_RANK); -1 until parsed */
  int64_t dims[CT_MAX_RANK];
  int64_t begin, end; /* -1 until parsed */
  size_t at;          /* header byte of the name */
  const float *data;
} ct__st_entry;

typedef struct ct__st_meta {
  const char *key, *value;
  size_t at;
} ct__st_meta;

struct ct_safetensors {
  char *path;
  char *strings; /* decoded names, dtypes and metadata */
  ct__st_entry *t;
  int n, cap_t;
  ct__st_key *by_name; /* sorted by name */
  ct__st_meta *meta;   /* sorted by key once parsed */
  int n_meta, cap_meta;
  float *data; /* the data section */
  float *conv; /* BF16 tensors (and F32 ones at offsets not a multiple of 4) as F32 */
};

void ct_safetensors_free(ct_safetensors *f) {
  if (!f) return;
  free(f->path);
  free(f->strings);
  free(f->t);
  free(f->by_name);
  free(f->meta);
  free(f->data);
  free(f->conv);
  free(f);
}

/* JSON header parser state. Decoded strings go to arena: a string never
 * decodes to more bytes than its quoted form, so N + 1 bytes hold them all. */
typedef struct ct__st_json {
  const unsigned char *s;
  size_t n, i;
  const char *path;
  char *arena;
  size_t used;
  ct_safetensors *f;
} ct__st_json;

/* CT_ERR_IO naming the file and the header byte at which parsing stopped. */
static ct_status ct__st_jfail(const ct__st_json *p, const char *fmt, ...) CT__PRINTF(2, 3);
static ct_status ct__st_jfail(const ct__st_json *p, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return ct__fail(CT_ERR_IO, "ct_safetensors_read: %s: header byte %zu: %s", p->path, p->i, what);
}

/* What stands at the parse position, for messages. */
static const char *ct__st_found(const ct__st_json *p, char *buf, size_t cap) {
  if (p->i >= p->n) return "the end of the header";
  unsigned c = p->s[p->i];
  if (c > 0x20 && c < 0x7f)
    snprintf(buf, cap, "'%c'", (char)c);
  else
    snprintf(buf, cap, "byte 0x%02x", c);
  return buf;
}

static void ct__st_ws(ct__st_json *p) {
  while (p->i < p->n &&
         (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
    p->i++;
}

/* Skips whitespace and consumes c; ctx says where c was expected. */
static ct_status ct__st_lit(ct__st_json *p, char c, const char *ctx) {
  ct__st_ws(p);
  if (p->i < p->n && p->s[p->i] == (unsigned char)c) {
    p->i++;
    return CT_OK;
  }
  char b[16];
  return ct__st_jfail(p, "expected '%c' %s, found %s", c, ctx, ct__st_found(p, b, sizeof b));
}

static int ct__st_hex4(const unsigned char *s, uint32_t *v) {
  *v = 0;
  for (int k = 0; k < 4; k++) {
    unsigned c = s[k], d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return 0;
    *v = *v << 4 | d;
  }
  return 1;
}

/* A \uXXXX escape (with its low surrogate when it is a high one) whose hex
 * digits begin at p->i; appends the code point as UTF-8. */
static ct_status ct__st_unicode(ct__st_json *p, char **w) {
  size_t at = p->i - 2;
  uint32_t cp, lo;
  if (p->n - p->i < 4 || !ct__st_hex4(p->s + p->i, &cp)) {
    p->i = at;
    return ct__st_jfail(p, "\\u escape needs four hex digits");
  }
  p->i += 4;
  if (cp >= 0xDC00 && cp <= 0xDFFF) {
    p->i = at;
    return ct__st_jfail(p, "\\u%04X is a low surrogate without a high one", (unsigned)cp);
  }
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u' ||
        !ct__st_hex4(p->s + p->i + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
      p->i = at;
      return ct__st_jfail(p, "\\u%04X is a high surrogate without a low one", (unsigned)cp);
    }
    p->i += 6;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  if (cp == 0) {
    p->i = at;
    return ct__st_jfail(p, "\\u0000 in a string (ctml strings cannot hold NUL)");
  }
  char *o = *w;
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xC0 | cp >> 6);
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *o++ = (char)(0xE0 | cp >> 12);
    *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (char)(0xF0 | cp >> 18);
    *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
    *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  }
  *w = o;
  return CT_OK;
}

/* A string literal, decoded into the arena; ctx says what it is. */
static ct_status ct__st_string(ct__st_json *p, const char **out, const char *ctx) {
  CT__TRY(ct__st_lit(p, '"', ctx));
  char *start = p->arena + p->used, *w = start;
  for (;;) {
    if (p->i >= p->n) return ct__st_jfail(p, "unterminated string");
    unsigned c = p->s[p->i];
    if (c == '"') {
      p->i++;
      break;
    }
    if (c == '\\') {
      if (++p->i >= p->n) return ct__st_jfail(p, "unterminated string");
      unsigned e = p->s[p->i++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          *w++ = (char)e;
          break;
        case 'b':
          *w++ = '\b';
          break;
        case 'f':
          *w++ = '\f';
          break;
        case 'n':
          *w++ = '\n';
          break;
        case 'r':
          *w++ = '\r';
          break;
        case 't':
          *w++ = '\t';
          break;
        case 'u':
          CT__TRY(ct__st_unicode(p, &w));
          break;
        default:
          p->i -= 2;
          if (e > 0x20 && e < 0x7f) return ct__st_jfail(p, "invalid escape '\\%c'", (char)e);
          return ct__st_jfail(p, "invalid escape: backslash before byte 0x%02x", e);
      }
    } else if (c < 0x20) {
      return ct__st_jfail(p, "control byte 0x%02x inside a string (must be escaped)", c);
    } else {
      size_t k = ct__st_utf8_seq(p->s + p->i, p->n - p->i);
      if (!k) return ct__st_jfail(p, "malformed UTF-8 inside a string");
      memcpy(w, p->s + p->i, k);
      w += k;
      p->i += k;
    }
  }
  *w++ = '\0';
  p->used += (size_t)(w - start);
  *out = start;
  return CT_OK;
}

/* A JSON number that must be an integer (no fraction, exponent or leading zero). */
static ct_status ct__st_int(ct__st_json *p, int64_t *v, const char *ctx) {
  ct__st_ws(p);
  size_t at = p->i;
  int neg = p->i < p->n && p->s[p->i] == '-';
  if (neg) p->i++;
  char b[16];
  if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
    return ct__st_jfail(p, "expected an integer in %s, found %s", ctx,
                        ct__st_found(p, b, sizeof b));
  if (p->s[p->i] == '0' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')
    return ct__st_jfail(p, "integer in %s has a leading zero", ctx);
  int64_t x = 0;
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
    int d = p->s[p->i] - '0';
    if (x > (INT64_MAX - d) / 10) {
      p->i = at;
      return ct__st_jfail(p, "integer in %s does not fit in 64 bits", ctx);
    }
    x = x * 10 + d;
    p->i++;
  }
  if (p->i < p->n && (p->s[p->i] == '.' || p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
    p->i = at;
    return ct__st_jfail(p, "number in %s is not an integer", ctx);
  }
  *v = neg ? -x : x;
  return CT_OK;
}

/* An array of integers; the first cap go to dst, *count gets how many there were. */
static ct_status ct__st_ints(ct__st_json *p, int64_t *dst, int cap, int *count, const char *ctx) {
  char opening[64];
  snprintf(opening, sizeof opening, "to open %s", ctx);
  CT__TRY(ct__st_lit(p, '[', opening));
  int k = 0;
  ct__st_ws(p);
  if (p->i < p->n && p->s[p->i] == ']') {
    p->i++;
    *count = 0;
    return CT_OK;
  }
  for (;;) {
    int64_t v = 0;
    CT__TRY(ct__st_int(p, &v, ctx));
    if (k < cap) dst[k] = v;
    if (k < INT32_MAX) k++;
    ct__st_ws(p);
    char b[16];
    if (p->i < p->n && p->s[p->i] == ',') {
      p->i++;
    } else if (p->i < p->n && p->s[p->i] == ']') {
      p->i++;
      break;
    } else {
      return ct__st_jfail(p, "expected ',' or ']' in %s, found %s", ctx,
                          ct__st_found(p, b, sizeof b));
    }
  }
  *count = k;
  return CT_OK;
}

/* After a member: ',' (returns 1 in *more) or the closing '}'. */
static ct_status ct__st_next(ct__st_json *p, int *more, const char *ctx) {
  ct__st_ws(p);
  char b[16];
  if (p->i < p->n && (p->s[p->i] == ',' || p->s[p->i] == '}')) {
    *more = p->s[p->i++] == ',';
    return CT_OK;
  }
  return ct__st_jfail(p, "expected ',' or '}' %s, found %s", ctx, ct__st_found(p, b, sizeof b));
}

/* Consumes '{' and reports whether the object is empty ('}' consumed too). */
static ct_status ct__st_open(ct__st_json *p, int *empty, const char *ctx) {
  CT__TRY(ct__st_lit(p, '{', ctx));
  ct__st_ws(p);
  *empty = p->i < p->n && p->s[p->i] == '}';
  if (*empty) p->i++;
  return CT_OK;
}

/* The object of one tensor: "dtype", "shape" and "data_offsets", each once. */
static ct_status ct__st_tensor(ct__st_json *p, ct__st_entry *e) {
  char ctx[CT__ST_MAX_NAME + 64];
  snprintf(ctx, sizeof ctx, "for tensor '%.*s'", CT__ST_MAX_NAME, e->name);
  int empty, more = 1;
  CT__TRY(ct__st_open(p, &empty, ctx));
  while (!empty && more) {
    ct__st_ws(p);
    size_t at = p->i;
    const char *key;
    CT__TRY(ct__st_string(p, &key, ctx));
    CT__TRY(ct__st_lit(p, ':', "after a key"));
    int dup = 0;
    if (strcmp(key, "dtype") == 0) {
      dup = e->dtype != NULL;
      if (!dup) CT__TRY(ct__st_string(p, &e->dtype, "as the dtype"));
    } else if (strcmp(key, "shape") == 0) {
      dup = e->rank >= 0;
      if (!dup) CT__TRY(ct__st_ints(p, e->dims, CT_MAX_RANK, &e->rank, "the shape"));
    } else if (strcmp(key, "data_offsets") == 0) {
      dup = e->begin >= 0;
      if (!dup) {
        int64_t off[2] = {0, 0};
        int cnt;
        CT__TRY(ct__st_ints(p, off, 2, &cnt, "data_offsets"));
        if (cnt != 2) {
          p->i = at;
          return ct__st_jfail(p, "tensor '%s': data_offsets has %d entries, expected 2", e->name,
                              cnt);
        }
        if (off[0] < 0 || off[1] < 0) {
          p->i = at;
          return ct__st_jfail(p, "tensor '%s': data_offsets [%lld, %lld) are negative", e->name,
                              (long long)off[0], (long long)off[1]);
        }
        e->begin = off[0];
        e->end = off[1];
      }
    } else {
      p->i = at;
      return ct__st_jfail(p, "tensor '%s': unknown key '%s'", e->name, key);
    }
    if (dup) {
      p->i = at;
      return ct__st_jfail(p, "tensor '%s': key '%s' appears twice", e->name, key);
    }
    CT__TRY(ct__st_next(p, &more, ctx));
  }
  const char *missing = !e->dtype      ? "dtype"
                        : e->rank < 0  ? "shape"
                        : e->begin < 0 ? "data_offsets"
                                       : NULL;
  if (missing) {
    p->i--;
    return ct__st_jfail(p, "tensor '%s' has no \"%s\"", e->name, missing);
  }
  return CT_OK;
}

/* "__metadata__": an object whose values are strings. */
static ct_status ct__st_metadata(ct__st_json *p) {
  ct_safetensors *f = p->f;
  int empty, more = 1;
  CT__TRY(ct__st_open(p, &empty, "for __metadata__"));
  while (!empty && more) {
    if (f->n_meta == f->cap_meta) {
      int cap = f->cap_meta ? 2 * f->cap_meta : 8;
      ct__st_meta *m = realloc(f->meta, sizeof *m * (size_t)cap);
      if (!m) return ct__fail(CT_ERR_NOMEM, "ct_safetensors_read: %s: out of host memory", p->path);
      f->meta = m;
      f->cap_meta = cap;
    }
    ct__st_meta *m = &f->meta[f->n_meta];
    ct__st_ws(p);
    m->at = p->i;
    CT__TRY(ct__st_string(p, &m->key, "as a __metadata__ key"));
    CT__TRY(ct__st_lit(p, ':', "after a key"));
    ct__st_ws(p);
    char b[16];
    if (p->i >= p->n || p->s[p->i] != '"')
      return ct__st_jfail(p, "__metadata__ value of '%s' must be a string, found %s", m->key,
                          ct__st_found(p, b, sizeof b));
    CT__TRY(ct__st_string(p, &m->value, "as a __metadata__ value"));
    f->n_meta++;
    CT__TRY(ct__st_next(p, &more, "in __metadata__"));
  }
  return CT_OK;
}

/* The whole header: an object of tensors and at most one "__metadata__",
 * optionally followed by whitespace (the padding writers add). */
static ct_status ct__st_parse(ct__st_json *p) {
  ct_safetensors *f = p->f;
  char b[16];
  if (p->n == 0 || p->s[0] != '{')
    return ct__st_jfail(p, "the header must begin with '{', found %s",
                        ct__st_found(p, b, sizeof b));
  int empty, more = 1, seen_meta = 0;
  CT__TRY(ct__st_open(p, &empty, "to begin the header"));
  while (!empty && more) {
    ct__st_ws(p);
    size_t at = p->i;
    const char *key;
    CT__TRY(ct__st_string(p, &key, "as a tensor name"));
    CT__TRY(ct__st_lit(p, ':', "after a key"));
    if (strcmp(key, "__metadata__") == 0) {
      if (seen_meta) {
        p->i = at;
        return ct__st_jfail(p, "__metadata__ appears twice");
      }
      seen_meta = 1;
      CT__TRY(ct__st_metadata(p));
    } else {
      if (!key[0]) {
        p->i = at;
        return ct__st_jfail(p, "a tensor has an empty name");
      }
      if (f->n == f->cap_t) {
        int cap = f->cap_t ? 2 * f->cap_t : 16;
        ct__st_entry *t = realloc(f->t, sizeof *t * (size_t)cap);
        if (!t)
          return ct__fail(CT_ERR_NOMEM, "ct_safetensors_read: %s: out of host memory", p->path);
        f->t = t;
        f->cap_t = cap;
      }
      ct__st_entry *e = &f->t[f->n++];
      *e = (ct__st_entry){.name = key, .rank = -1, .begin = -1, .end = -1, .at = at};
      CT__TRY(ct__st_tensor(p, e));
    }
    CT__TRY(ct__st_next(p, &more, "after a header entry"));
  }
  ct__st_ws(p);
  if (p->i < p->n)
    return ct__st_jfail(p, "unexpected %s after the header's closing '}'",
                        ct__st_found(p, b, sizeof b));
  return CT_OK;
}

static int ct__st_meta_cmp(const void *a, const void *b) {
  const ct__st_meta *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* Orders tensors by (begin, end), then by header position. */
static int ct__st_offset_cmp(const void *a, const void *b) {
  const ct__st_entry *x = (const ct__st_entry *)a, *y = (const ct__st_entry *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return (x->at > y->at) - (x->at < y->at);
}

/* Bytes per element of the dtypes read (0: not read). */
static int64_t ct__st_dtype_size(const char *dtype) {
  return !strcmp(dtype, "F32") ? 4 : !strcmp(dtype, "BF16") ? 2 : 0;
}

/* Checks the parsed header against itself and the file size: unique names
 * and keys, F32 dtypes, shapes matching offsets, tensors tiling the data
 * section [0, data_bytes) exactly. */
static ct_status ct__st_validate(ct_safetensors *f, const char *path, int64_t data_bytes) {
  static const char fn[] = "ct_safetensors_read";
  f->by_name = malloc(sizeof *f->by_name * (size_t)(f->n + 1));
  ct__st_entry *order = malloc(sizeof *order * (size_t)(f->n + 1));
  if (!f->by_name || !order) {
    free(order);
    return ct__fail(CT_ERR_NOMEM, "%s: %s: out of host memory", fn, path);
  }
  ct_status s = CT_OK;
  for (int i = 0; i < f->n; i++) f->by_name[i] = (ct__st_key){f->t[i].name, i};
  qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, ct__st_key_cmp);
  for (int i = 1; i < f->n && s == CT_OK; i++)
    if (strcmp(f->by_name[i - 1].name, f->by_name[i].name) == 0)
      s = ct__fail(CT_ERR_IO, "%s: %s: tensor '%s' appears twice in the header (bytes %zu and %zu)",
                   fn, path, f->by_name[i].name, f->t[f->by_name[i - 1].idx].at,
                   f->t[f->by_name[i].idx].at);
  if (f->n_meta > 0) qsort(f->meta, (size_t)f->n_meta, sizeof *f->meta, ct__st_meta_cmp);
  for (int i = 1; i < f->n_meta && s == CT_OK; i++)
    if (strcmp(f->meta[i - 1].key, f->meta[i].key) == 0)
      s = ct__fail(CT_ERR_IO, "%s: %s: metadata key '%s' appears twice (header bytes %zu and %zu)",
                   fn, path, f->meta[i].key, f->meta[i - 1].at, f->meta[i].at);

  for (int i = 0; i < f->n && s == CT_OK; i++) {
    const ct__st_entry *e = &f->t[i];
    char sh[128];
    int64_t esize = ct__st_dtype_size(e->dtype);
    if (esize == 0) {
      s = ct__fail(CT_ERR_UNSUPPORTED,
                   "%s: %s: tensor '%s' has dtype '%s'; ctml reads F32 and BF16 only", fn, path,
                   e->name, e->dtype);
    } else if (e->rank > CT_MAX_RANK) {
      s = ct__fail(CT_ERR_UNSUPPORTED, "%s: %s: tensor '%s' has rank %d; ctml supports up to %d",
                   fn, path, e->name, e->rank, CT_MAX_RANK);
    } else {
      const char *shape = ct__st_shape_str(sh, sizeof sh, e->rank, e->dims);
      int64_t numel = ct__st_numel(e->rank, e->dims);
      int neg = 0;
      for (int k = 0; k < e->rank; k++) neg |= e->dims[k] < 0;
      if (neg)
        s = ct__fail(CT_ERR_IO, "%s: %s: tensor '%s' has a negative dimension in shape %s", fn,
                     path, e->name, shape);
      else if (numel < 0)
        s = ct__fail(CT_ERR_IO, "%s: %s: tensor '%s' shape %s is too large", fn, path, e->name,
                     shape);
      else if (e->end < e->begin)
        s = ct__fail(CT_ERR_IO,
                     "%s: %s: tensor '%s' data_offsets [%lld, %lld) end before they begin", fn,
                     path, e->name, (long long)e->begin, (long long)e->end);
      else if (numel > INT64_MAX / 4 || e->end - e->begin != esize * numel)
        s = ct__fail(
            CT_ERR_IO,
            "%s: %s: tensor '%s' data_offsets [%lld, %lld) do not match its shape %s (%lld bytes%s%s)",
            fn, path, e->name, (long long)e->begin, (long long)e->end, shape,
            (long long)(esize * numel), esize == 4 ? "" : " of ", esize == 4 ? "" : e->dtype);
    }
  }
  if (s != CT_OK) {
    free(order);
    return s;
  }

  /* Sorted by offset, each tensor must begin where the previous one ends. */
  if (f->n > 0) memcpy(order, f->t, sizeof *order * (size_t)f->n);
  qsort(order, (size_t)f->n, sizeof *order, ct__st_offset_cmp);
  int64_t end = 0;
  for (int i = 0; i < f->n && s == CT_OK; i++) {
    const ct__st_entry *e = &order[i];
    if (e->begin < end)
      s = ct__fail(CT_ERR_IO, "%s: %s: tensors '%s' [%lld, %lld) and '%s' [%lld, %lld) overlap", fn,
                   path, order[i - 1].name, (long long)order[i - 1].begin,
                   (long long)order[i - 1].end, e->name, (long long)e->begin, (long long)e->end);
    else if (e->begin > end)
      s = ct__fail(CT_ERR_IO,
                   "%s: %s: data bytes [%lld, %lld) belong to no tensor (gap before '%s')", fn,
                   path, (long long)end, (long long)e->begin, e->name);
    end = e->end;
  }
  free(order);
  if (s != CT_OK) return s;
  if (end > data_bytes)
    return ct__fail(CT_ERR_IO, "%s: %s: truncated: header promises %lld data bytes, file has %lld",
                    fn, path, (long long)end, (long long)data_bytes);
  if (end < data_bytes)
    return ct__fail(
        CT_ERR_IO,
        "%s: %s: %lld bytes after the last tensor: header promises %lld data bytes, file has %lld",
        fn, path, (long long)(data_bytes - end), (long long)end, (long long)data_bytes);
  return CT_OK;
}

/* Reads n bytes at the current position; 0, an errno, or -1 at a premature end of file. */
static int ct__st_read_all(int fd, void *p, size_t n) {
  char *c = p;
  while (n > 0) {
    size_t chunk = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
    ssize_t r = read(fd, c, chunk);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) return -1;
    c += r;
    n -= (size_t)r;
  }
  return 0;
}

static ct_status ct__st_read_fail(const char *path, int err, const char *what) {
  if (err < 0)
    return ct__fail(CT_ERR_IO, "ct_safetensors_read: %s: the file shrank while reading %s", path,
                    what);
  return ct__fail(CT_ERR_IO, "ct_safetensors_read: %s: reading %s failed: %s", path, what,
                  strerror(err));
}

/* Header length and header text, checked and parsed into f. */
static ct_status ct__st_read_header(int fd, const char *path, int64_t size, ct_safetensors *f,
                                    int64_t *data_bytes) {
  static const char fn[] = "ct_safetensors_read";
  if (size < 8)
    return ct__fail(CT_ERR_IO,
                    "%s: %s: truncated: the file has %lld bytes, fewer than the 8 of the "
                    "header length",
                    fn, path, (long long)size);
  unsigned char len8[8];
  int err = ct__st_read_all(fd, len8, 8);
  if (err) return ct__st_read_fail(path, err, "the header length");
  uint64_t hlen = 0;
  for (int k = 7; k >= 0; k--) hlen = hlen << 8 | len8[k];
  if (hlen > CT__ST_MAX_HEADER)
    return ct__fail(CT_ERR_IO,
                    "%s: %s: header length %llu exceeds the limit of %llu bytes (corrupt, "
                    "or not a safetensors file)",
                    fn, path, (unsigned long long)hlen, CT__ST_MAX_HEADER);
  if ((int64_t)hlen > size - 8)
    return ct__fail(CT_ERR_IO,
                    "%s: %s: truncated: header length %llu needs %llu bytes, file has %lld", fn,
                    path, (unsigned long long)hlen, (unsigned long long)hlen + 8, (long long)size);
  unsigned char *text = malloc((size_t)hlen + 1);
  f->strings = malloc((size_t)hlen + 1);
  if (!text || !f->strings) {
    free(text);
    return ct__fail(CT_ERR_NOMEM, "%s: %s: out of host memory for a %llu-byte header", fn, path,
                    (unsigned long long)hlen);
  }
  err = ct__st_read_all(fd, text, (size_t)hlen);
  if (err) {
    free(text);
    return ct__st_read_fail(path, err, "the header");
  }
  ct__st_json p = {.s = text, .n = (size_t)hlen, .path = path, .arena = f->strings, .f = f};
  ct_status s = ct__st_parse(&p);
  free(text);
  *data_bytes = size - 8 - (int64_t)hlen;
  return s;
}

ct_status ct_safetensors_read(ct_safetensors **out, const char *path) {
  static const char fn[] = "ct_safetensors_read";
  CT__NEED(out, "ct_safetensors_read");
  *out = NULL;
  CT__NEED(path, "ct_safetensors_read");
  if (!ct__st_little_endian())
    return ct__fail(CT_ERR_UNSUPPORTED,
                    "%s: %s: safetensors data is little-endian and this host is not", fn, path);
  /* O_NONBLOCK: opening a FIFO does not wait for a writer (regular files ignore it) */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ct__fail(CT_ERR_IO, "%s: cannot open %s: %s", fn, path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ct_status s = ct__fail(CT_ERR_IO, "%s: cannot stat %s: %s", fn, path, strerror(errno));
    close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return ct__fail(CT_ERR_IO, "%s: %s is not a regular file", fn, path);
  }
  ct_safetensors *f = calloc(1, sizeof *f);
  if (f) f->path = strdup(path);
  if (!f || !f->path) {
    close(fd);
    ct_safetensors_free(f);
    return ct__fail(CT_ERR_NOMEM, "%s: %s: out of host memory", fn, path);
  }
  int64_t data_bytes = 0;
  ct_status s = ct__st_read_header(fd, path, (int64_t)st.st_size, f, &data_bytes);
  if (s == CT_OK) s = ct__st_validate(f, path, data_bytes);
  if (s == CT_OK && (uint64_t)data_bytes > SIZE_MAX - 4)
    s = ct__fail(CT_ERR_NOMEM, "%s: %s: %lld data bytes do not fit in memory", fn, path,
                 (long long)data_bytes);
  /* A separate allocation keeps the tensors float-aligned whatever the header length. */
  if (s == CT_OK && !(f->data = malloc((size_t)data_bytes + 4)))
    s = ct__fail(CT_ERR_NOMEM, "%s: %s: out of host memory for %lld data bytes", fn, path,
                 (long long)data_bytes);
  if (s == CT_OK) {
    int err = ct__st_read_all(fd, f->data, (size_t)data_bytes);
    if (err) s = ct__st_read_fail(path, err, "the tensor data");
  }
  if (s == CT_OK) {
    char extra;
    ssize_t r;
    while ((r = read(fd, &extra, 1)) < 0 && errno == EINTR) {
    }
    if (r != 0)
      s = r > 0 ? ct__fail(CT_ERR_IO, "%s: %s: the file grew while reading it", fn, path)
                : ct__st_read_fail(path, errno, "the end of the file");
  }
  close(fd);
  if (s != CT_OK) {
    ct_safetensors_free(f);
    return s;
  }
  /* F32 tensors at offsets that are multiples of 4 are used in place; BF16
   * tensors (the upper 16 bits of an F32) and misaligned F32 ones are
   * converted into one separate array. */
  size_t conv = 0;
  for (int i = 0; i < f->n; i++)
    if (strcmp(f->t[i].dtype, "F32") || f->t[i].begin % 4)
      conv += (size_t)ct__st_numel(f->t[i].rank, f->t[i].dims);
  if (conv > 0 && !(f->conv = malloc(conv * sizeof *f->conv))) {
    ct_status e = ct__fail(CT_ERR_NOMEM, "%s: %s: out of host memory converting %zu BF16 values",
                           fn, path, conv);
    ct_safetensors_free(f);
    return e;
  }
  size_t at = 0;
  const unsigned char *bytes = (const unsigned char *)f->data;
  for (int i = 0; i < f->n; i++) {
    ct__st_entry *e = &f->t[i];
    if (!strcmp(e->dtype, "F32") && e->begin % 4 == 0) {
      e->data = f->data + e->begin / 4;
      continue;
    }
    int64_t numel = ct__st_numel(e->rank, e->dims);
    float *dst = f->conv + at;
    const unsigned char *src = bytes + e->begin;
    if (!strcmp(e->dtype, "F32")) {
      memcpy(dst, src, (size_t)numel * sizeof *dst);
    } else {
      for (int64_t k = 0; k < numel; k++) {
        uint32_t u = (uint32_t)src[2 * k] << 16 | (uint32_t)src[2 * k + 1] << 24;
        memcpy(&dst[k], &u, sizeof u);
      }
    }
    e->data = dst;
    at += (size_t)numel;
  }
  *out = f;
  return CT_OK;
}

int ct_safetensors_count(const ct_safetensors *f) { return f ? f->n : 0; }

const char *ct_safetensors_dtype(const ct_safetensors *f, int i) {
  return f && i >= 0 && i < f->n ? f->t[i].dtype : NULL;
}

const char *ct_safetensors_name(const ct_safetensors *f, int i) {
  return f && i >= 0 && i < f->n ? f->t[i].name : NULL;
}

const char *ct_safetensors_meta(const ct_safetensors *f, const char *key) {
  if (!f || !key || f->n_meta == 0) return NULL;
  int lo = 0, hi = f->n_meta;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    int c = strcmp(f->meta[mid].key, key);
    if (c == 0) return f->meta[mid].value;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* rank, dims and data are each optional (NULL: not wanted). */
ct_status ct_safetensors_get(const ct_safetensors *f, const char *name, int *rank, int64_t *dims,
                             const float **data) {
  CT__NEED(f, "ct_safetensors_get");
  CT__NEED(name, "ct_safetensors_get");
  int lo = 0, hi = f->n;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    int c = strcmp(f->by_name[mid].name, name);
    if (c == 0) {
      const ct__st_entry *e = &f->t[f->by_name[mid].idx];
      if (rank) *rank = e->rank;
      if (dims)
        for (int k = 0; k < CT_MAX_RANK; k++) dims[k] = k < e->rank ? e->dims[k] : 0;
      if (data) *data = e->data;
      return CT_OK;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return ct__fail(CT_ERR_IO, "ct_safetensors_get: %s has no tensor '%s'", f->path, name);
}
