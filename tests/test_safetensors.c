/* SPDX-License-Identifier: MIT */
/* Safetensors files: round trips, the header bytes, alignment, and files that
 * are truncated, extended, corrupted or malformed; atomic writes. */
#include "ct_test.h"
#include "ct_files.h"
#include <dirent.h>
#include <float.h>
#include <stdalign.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64]; /* scratch directory of the group */

static int setup(void **state) {
  snprintf(g_dir, sizeof g_dir, "/tmp/ctml_st_XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  ct_rm_tree(g_dir);
  return 0;
}

/* g_dir/name in one of four rotating buffers. */
static const char *tpath(const char *name) {
  static char buf[4][512];
  static int k;
  char *p = buf[k++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", g_dir, name);
  return p;
}

static unsigned char *slurp(const char *path, size_t *n) {
  unsigned char *p = (unsigned char *)ct_slurp(path, n);
  assert_non_null(p);
  return p;
}

static void spit(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (n) assert_int_equal(fwrite(p, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* A file with header json followed by pad spaces, then nd data bytes. */
static void craft(const char *path, const char *json, size_t pad, const void *data, size_t nd) {
  size_t nj = strlen(json), len = nj + pad;
  unsigned char *p = malloc(8 + len + nd + 1);
  assert_non_null(p);
  for (int k = 0; k < 8; k++) p[k] = (unsigned char)((uint64_t)len >> (8 * k));
  memcpy(p + 8, json, nj);
  memset(p + 8 + nj, ' ', pad);
  if (nd) memcpy(p + 8 + len, data, nd);
  spit(path, p, 8 + len + nd);
  free(p);
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* Entries of g_dir other than "." and "..". */
static int dir_entries(void) {
  DIR *d = opendir(g_dir);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

static volatile uint32_t g_sink; /* keeps reads of tensor data from being optimised away */

static int is_float_aligned(const float *p) { return (uintptr_t)p % alignof(float) == 0; }

/* Every float of every tensor is readable (ASan checks the bounds) and aligned. */
static void touch_all(const ct_safetensors *f) {
  for (int i = 0; i < ct_safetensors_count(f); i++) {
    const char *name = ct_safetensors_name(f, i);
    assert_non_null(name);
    int rank;
    int64_t dims[CT_MAX_RANK];
    const float *data;
    CT_ASSERT_OK(ct_safetensors_get(f, name, &rank, dims, &data));
    assert_true(rank >= 0 && rank <= CT_MAX_RANK);
    int64_t numel = 1;
    for (int k = 0; k < rank; k++) numel *= dims[k];
    assert_non_null(data);
    assert_true(is_float_aligned(data));
    for (int64_t j = 0; j < numel; j++) {
      uint32_t b;
      memcpy(&b, &data[j], 4);
      g_sink ^= b;
    }
  }
}

static void test_round_trip(void **state) {
  ct_rng r = {7};
  float wte[32], w4[6], scalar = 3.5f;
  ct_rng_fill(&r, wte, 32, -1.0f, 1.0f);
  ct_rng_fill(&r, w4, 6, -2.0f, 2.0f);
  /* quiet and signalling NaNs with payloads, -0, a denormal, the extremes */
  const uint32_t special_bits[8] = {0x7fc00001u, 0xffa00abcu, 0x7f800001u, 0x80000000u,
                                    0x00000001u, 0x7f7fffffu, 0xff800000u, 0x7f800000u};
  float special[8];
  memcpy(special, special_bits, sizeof special);
  const char *odd_name = "na\xc3\xafve \"q\" \\ / \n\x01";
  ct_st_tensor t[] = {
      {"wte", 2, {4, 8}, wte},      {"scalar", 0, {0}, &scalar}, {"empty", 2, {3, 0}, NULL},
      {"special", 1, {8}, special}, {odd_name, 1, {1}, &scalar}, {"blk.0.w", 4, {1, 2, 1, 3}, w4},
  };
  ct_st_meta m[] = {
      {"quote", "say \"hi\" \\o/"},
      {"lines", "a\nb\r\tc\b\f"},
      {"unicode", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80"},
      {"ctrl", "\x01\x1f\x7f"},
      {"empty", ""},
      {"", "empty key"},
  };
  const int nt = (int)(sizeof t / sizeof *t), nm = (int)(sizeof m / sizeof *m);
  const char *path = tpath("round.safetensors");
  CT_ASSERT_OK(ct_safetensors_write(path, t, nt, m, nm));
  assert_false(exists(tpath("round.safetensors.tmp")));

  ct_safetensors *f = NULL;
  CT_ASSERT_OK(ct_safetensors_read(&f, path));
  assert_int_equal(ct_safetensors_count(f), nt);
  for (int i = 0; i < nt; i++) {
    assert_string_equal(ct_safetensors_name(f, i), t[i].name);
    int rank = -1;
    int64_t dims[CT_MAX_RANK];
    memset(dims, 0x55, sizeof dims);
    const float *data = NULL;
    CT_ASSERT_OK(ct_safetensors_get(f, t[i].name, &rank, dims, &data));
    assert_int_equal(rank, t[i].rank);
    int64_t numel = 1;
    for (int k = 0; k < CT_MAX_RANK; k++) {
      assert_int_equal(dims[k], k < rank ? t[i].dims[k] : 0);
      if (k < rank) numel *= dims[k];
    }
    assert_non_null(data);
    assert_true(is_float_aligned(data));
    if (numel) assert_memory_equal(data, t[i].data, (size_t)numel * 4);
  }
  assert_null(ct_safetensors_name(f, nt));
  assert_null(ct_safetensors_name(f, -1));
  for (int i = 0; i < nm; i++) {
    const char *v = ct_safetensors_meta(f, m[i].key);
    assert_non_null(v);
    assert_string_equal(v, m[i].value);
  }
  assert_null(ct_safetensors_meta(f, "absent"));
  assert_null(ct_safetensors_meta(f, NULL));
  /* Outputs are optional. */
  CT_ASSERT_OK(ct_safetensors_get(f, "wte", NULL, NULL, NULL));
  CT_ASSERT_STATUS(ct_safetensors_get(f, "wpe", NULL, NULL, NULL), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS(path);
  CT_ASSERT_MESSAGE_HAS("no tensor 'wpe'");
  ct_safetensors_free(f);

  /* No tensors and no metadata is a valid file too. */
  CT_ASSERT_OK(ct_safetensors_write(path, NULL, 0, NULL, 0));
  CT_ASSERT_OK(ct_safetensors_read(&f, path));
  assert_int_equal(ct_safetensors_count(f), 0);
  assert_null(ct_safetensors_meta(f, "quote"));
  ct_safetensors_free(f);
}

/* The bytes follow the format: little-endian length, compact JSON in the
 * order given, space padding to a multiple of 8, then the packed floats. */
static void test_header_bytes(void **state) {
  float a[6] = {1, 2, 3, 4, 5, 6}, b = -7.0f;
  ct_st_tensor t[] = {{"a", 2, {2, 3}, a}, {"b", 0, {0}, &b}};
  ct_st_meta m[] = {{"k", "v\"\\\n\x01\xc3\xa9"}, {"step", "12"}};
  const char *path = tpath("header.safetensors");
  CT_ASSERT_OK(ct_safetensors_write(path, t, 2, m, 2));
  size_t n;
  unsigned char *p = slurp(path, &n);
  assert_true(n >= 8);
  uint64_t hlen = 0;
  for (int k = 7; k >= 0; k--) hlen = hlen << 8 | p[k];
  assert_int_equal((8 + hlen) % 8, 0);
  assert_int_equal(n, 8 + hlen + 28);
  const char *want =
      "{\"__metadata__\":{\"k\":\"v\\\"\\\\\\u000a\\u0001\xc3\xa9\",\"step\":\"12\"},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[24,28]}}";
  size_t nw = strlen(want);
  assert_true(hlen >= nw && hlen < nw + 8);
  assert_memory_equal(p + 8, want, nw);
  for (size_t i = 8 + nw; i < 8 + hlen; i++) assert_int_equal(p[i], ' ');
  assert_memory_equal(p + 8 + hlen, a, 24);
  assert_memory_equal(p + 8 + hlen + 24, &b, 4);
  /* The float bytes are little-endian: 1.0f is 00 00 80 3f. */
  const unsigned char one[4] = {0x00, 0x00, 0x80, 0x3f};
  assert_memory_equal(p + 8 + hlen, one, 4);
  free(p);

  /* Without metadata there is no "__metadata__" entry; an empty file is "{}" padded. */
  CT_ASSERT_OK(ct_safetensors_write(path, NULL, 0, NULL, 0));
  p = slurp(path, &n);
  assert_int_equal(n, 16);
  assert_int_equal(p[0], 8);
  for (int k = 1; k < 8; k++) assert_int_equal(p[k], 0);
  assert_memory_equal(p + 8, "{}      ", 8);
  free(p);
}

/* The reader hands out float-aligned data whatever the header length. */
static void test_alignment_any_header_length(void **state) {
  const float x[3] = {1.5f, -2.25f, 1e-30f};
  const char *json = "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
  const char *path = tpath("align.safetensors");
  for (size_t pad = 0; pad < 8; pad++) {
    craft(path, json, pad, x, sizeof x);
    ct_safetensors *f = NULL;
    CT_ASSERT_OK(ct_safetensors_read(&f, path));
    const float *data = NULL;
    CT_ASSERT_OK(ct_safetensors_get(f, "x", NULL, NULL, &data));
    assert_true(is_float_aligned(data));
    assert_memory_equal(data, x, sizeof x);
    ct_safetensors_free(f);
  }
}

/* A small file cut at every length fails cleanly with CT_ERR_IO. */
static void test_truncated_at_every_byte(void **state) {
  float w[6] = {1, 2, 3, 4, 5, 6}, s = 9;
  ct_st_tensor t[] = {{"w", 2, {2, 3}, w}, {"e", 1, {0}, NULL}, {"s", 0, {0}, &s}};
  ct_st_meta m[] = {{"note", "cut me"}};
  const char *full = tpath("full.safetensors"), *cut = tpath("cut.safetensors");
  CT_ASSERT_OK(ct_safetensors_write(full, t, 3, m, 1));
  size_t n;
  unsigned char *p = slurp(full, &n);
  uint64_t hlen = 0;
  for (int k = 7; k >= 0; k--) hlen = hlen << 8 | p[k];
  for (size_t len = 0; len < n; len++) {
    spit(cut, p, len);
    ct_safetensors *f = (ct_safetensors *)&f; /* must be reset to NULL */
    ct_status st = ct_safetensors_read(&f, cut);
    if (st != CT_ERR_IO)
      fail_msg("cut at %zu of %zu: %s (%s)", len, n, ct_status_name(st), ct_last_error());
    assert_null(f);
    if (!strstr(ct_last_error(), "truncated"))
      fail_msg("cut at %zu: message '%s' does not say truncated", len, ct_last_error());
    if (len < 8)
      CT_ASSERT_MESSAGE_HAS("fewer than the 8");
    else if (len < 8 + hlen)
      CT_ASSERT_MESSAGE_HAS("truncated: header length");
    else
      CT_ASSERT_MESSAGE_HAS("truncated: header promises 28 data bytes, file has");
  }
  free(p);
}

static void test_trailing_bytes_refused(void **state) {
  float w[2] = {1, 2};
  ct_st_tensor t[] = {{"w", 1, {2}, w}};
  const char *path = tpath("long.safetensors");
  for (size_t extra = 1; extra <= 8; extra++) {
    CT_ASSERT_OK(ct_safetensors_write(path, t, 1, NULL, 0));
    size_t n;
    unsigned char *p = slurp(path, &n);
    unsigned char *q = malloc(n + extra);
    assert_non_null(q);
    memcpy(q, p, n);
    memset(q + n, extra == 4 ? 0 : 'x', extra);
    spit(path, q, n + extra);
    ct_safetensors *f = NULL;
    CT_ASSERT_STATUS(ct_safetensors_read(&f, path), CT_ERR_IO);
    assert_null(f);
    CT_ASSERT_MESSAGE_HAS("after the last tensor: header promises 8 data bytes, file has");
    free(p);
    free(q);
  }
}

/* Every byte of the length and header, changed in many ways: the reader
 * fails cleanly with a message naming the file, or (where the change still
 * makes a valid file) returns tensors that lie inside the data. */
static void test_corrupted_header_bytes(void **state) {
  float w[6] = {1, 2, 3, 4, 5, 6}, s = 9;
  ct_st_tensor t[] = {{"w", 2, {2, 3}, w}, {"e", 1, {0}, NULL}, {"s", 0, {0}, &s}};
  ct_st_meta m[] = {{"k", "v"}};
  const char *good = tpath("good.safetensors"), *bad = tpath("bad.safetensors");
  CT_ASSERT_OK(ct_safetensors_write(good, t, 3, m, 1));
  size_t n;
  unsigned char *p = slurp(good, &n);
  uint64_t hlen = 0;
  for (int k = 7; k >= 0; k--) hlen = hlen << 8 | p[k];
  const unsigned char xors[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
  const unsigned char sets[] = {'"', '{', '}', '[', ']', ',',  ':',  '\\',
                                '0', '9', '-', ' ', 'u', '\0', 0xc3, 0xff};
  int ok = 0, refused = 0;
  for (size_t i = 0; i < 8 + hlen; i++) {
    for (size_t v = 0; v < sizeof xors + sizeof sets; v++) {
      unsigned char orig = p[i];
      p[i] = v < sizeof xors ? (unsigned char)(orig ^ xors[v]) : sets[v - sizeof xors];
      if (p[i] == orig) continue;
      spit(bad, p, n);
      p[i] = orig;
      ct_safetensors *f = NULL;
      ct_status st = ct_safetensors_read(&f, bad);
      if (st == CT_OK) {
        ok++;
        touch_all(f);
        ct_safetensors_free(f);
        continue;
      }
      refused++;
      assert_null(f);
      if (st != CT_ERR_IO && st != CT_ERR_UNSUPPORTED)
        fail_msg("byte %zu variant %zu: %s (%s)", i, v, ct_status_name(st), ct_last_error());
      if (strncmp(ct_last_error(), "ct_safetensors_read: ", 21) != 0 ||
          !strstr(ct_last_error(), bad))
        fail_msg("byte %zu variant %zu: message '%s' does not name the file", i, v,
                 ct_last_error());
    }
  }
  print_message("    %d corrupted files refused, %d still valid\n", refused, ok);
  assert_true(refused > 0);
  free(p);
}

static void test_bad_dtype(void **state) {
  const char *path = tpath("dtype.safetensors");
  const char *types[] = {"F16", "bf16", "F64", "I32", "U8", "f32", ""};
  for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
    char json[256];
    snprintf(json, sizeof json,
             "{\"ok\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"h\":{\"dtype\":\"%s\",\"shape\":[2],\"data_offsets\":[4,8]}}",
             types[i]);
    const char data[8] = {0};
    craft(path, json, 0, data, 8);
    ct_safetensors *f = NULL;
    CT_ASSERT_STATUS(ct_safetensors_read(&f, path), CT_ERR_UNSUPPORTED);
    assert_null(f);
    char want[64];
    snprintf(want, sizeof want, "tensor 'h' has dtype '%s'", types[i]);
    CT_ASSERT_MESSAGE_HAS(want);
    CT_ASSERT_MESSAGE_HAS(path);
  }
}

/* BF16 tensors read as F32 (the upper half of each float), and an F32 tensor
 * after them at an offset that is not a multiple of 4 reads the same. */
static void test_bf16(void **state) {
  const char *path = tpath("bf16.safetensors");
  const char *json = "{\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                     "\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[6,10]}}";
  unsigned char data[12] = {0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f}; /* 1, -2, 0.5 */
  float v = 3.25f;
  memcpy(data + 6, &v, 4);
  craft(path, json, 0, data, 10);
  ct_safetensors *f = NULL;
  CT_ASSERT_OK(ct_safetensors_read(&f, path));
  const float *b = NULL, *x = NULL;
  int rank = 0;
  int64_t dims[CT_MAX_RANK];
  CT_ASSERT_OK(ct_safetensors_get(f, "b", &rank, dims, &b));
  assert_int_equal(rank, 1);
  assert_int_equal(dims[0], 3);
  assert_true(b[0] == 1.0f && b[1] == -2.0f && b[2] == 0.5f);
  CT_ASSERT_OK(ct_safetensors_get(f, "f", NULL, NULL, &x));
  assert_true(x[0] == 3.25f);
  assert_string_equal(ct_safetensors_dtype(f, 0), "BF16");
  ct_safetensors_free(f);
  /* a BF16 shape needs 2 bytes per element */
  craft(path, "{\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,12]}}", 0, data, 12);
  CT_ASSERT_STATUS(ct_safetensors_read(&f, path), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS("(6 bytes of BF16)");
}

/* Offsets must match the shapes and tile the data section exactly. */
static void test_bad_offsets(void **state) {
  static const struct {
    const char *json;
    size_t data;
    const char *msg;
  } cases[] = {
      {"{\"wte\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,96]}}", 96,
       "tensor 'wte' data_offsets [0, 96) do not match its shape [4,8] (128 bytes)"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
       24, "tensors 'a' [0, 16) and 'b' [8, 24) overlap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
       16, "overlap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
       20, "data bytes [8, 12) belong to no tensor (gap before 'b')"},
      {"{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
       "data bytes [0, 4) belong to no tensor"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[100,100]}}",
       8, "data bytes [8, 100) belong to no tensor"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8,
       "data_offsets [8, 4) end before they begin"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9]}}", 9,
       "do not match its shape [2] (8 bytes)"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
       "data_offsets [-4, 0) are negative"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,0]}}", 0,
       "shape [4611686018427387904,4] is too large"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,0]}}", 0,
       "negative dimension in shape [2,-1]"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 2,
       "truncated: header promises 4 data bytes, file has 2"},
  };
  const char *path = tpath("offsets.safetensors");
  static const char zeros[128];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    craft(path, cases[i].json, 0, zeros, cases[i].data);
    ct_safetensors *f = NULL;
    CT_ASSERT_STATUS(ct_safetensors_read(&f, path), CT_ERR_IO);
    assert_null(f);
    CT_ASSERT_MESSAGE_HAS(cases[i].msg);
    CT_ASSERT_MESSAGE_HAS(path);
  }
}

/* Malformed headers are refused with the header byte where parsing stopped. */
static void test_malformed_headers(void **state) {
#define T(name, shape, off) \
  "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":" off "}"
  static const struct {
    const char *json;
    ct_status st;
    const char *msg;
  } cases[] = {
      {"", CT_ERR_IO, "header byte 0: the header must begin with '{', found the end of the header"},
      {"[]", CT_ERR_IO, "header byte 0: the header must begin with '{', found '['"},
      {" {}", CT_ERR_IO, "must begin with '{', found byte 0x20"},
      {"{", CT_ERR_IO,
       "header byte 1: expected '\"' as a tensor name, found the end of the header"},
      {"{" T("a", "[1]", "[0,4]") ",}", CT_ERR_IO, "expected '\"' as a tensor name, found '}'"},
      {"{\"a\" {}}", CT_ERR_IO, "header byte 5: expected ':' after a key, found '{'"},
      {"{" T("a", "[1]", "[0,4]") " " T("b", "[1]", "[4,8]") "}", CT_ERR_IO,
       "expected ',' or '}' after a header entry, found '\"'"},
      {"{" T("a", "[01]", "[0,4]") "}", CT_ERR_IO, "integer in the shape has a leading zero"},
      {"{" T("a", "[1.0]", "[0,4]") "}", CT_ERR_IO, "number in the shape is not an integer"},
      {"{" T("a", "[1e0]", "[0,4]") "}", CT_ERR_IO, "number in the shape is not an integer"},
      {"{" T("a", "[99999999999999999999]", "[0,4]") "}", CT_ERR_IO, "does not fit in 64 bits"},
      {"{" T("a", "[\"1\"]", "[0,4]") "}", CT_ERR_IO,
       "expected an integer in the shape, found '\"'"},
      {"{" T("a", "[1,]", "[0,4]") "}", CT_ERR_IO, "expected an integer in the shape, found ']'"},
      {"{" T("a", "[1 1]", "[0,4]") "}", CT_ERR_IO, "expected ',' or ']' in the shape, found '1'"},
      {"{" T("a", "1", "[0,4]") "}", CT_ERR_IO, "expected '[' to open the shape, found '1'"},
      {"{" T("a", "[1]", "[0,4,8]") "}", CT_ERR_IO,
       "tensor 'a': data_offsets has 3 entries, expected 2"},
      {"{" T("a", "[1]", "[0,4]") "," T("a", "[1]", "[4,8]") "}", CT_ERR_IO,
       "tensor 'a' appears twice in the header (bytes 1 and 54)"},
      {"{\"__metadata__\":{},\"__metadata__\":{}}", CT_ERR_IO,
       "header byte 19: __metadata__ appears twice"},
      {"{\"__metadata__\":{\"k\":1}}", CT_ERR_IO,
       "__metadata__ value of 'k' must be a string, found '1'"},
      {"{\"__metadata__\":{\"k\":null}}", CT_ERR_IO, "must be a string, found 'n'"},
      {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", CT_ERR_IO,
       "metadata key 'k' appears twice (header bytes 17 and 25)"},
      {"{\"__metadata__\":[]}", CT_ERR_IO, "expected '{' for __metadata__, found '['"},
      {"{\"a\":null}", CT_ERR_IO, "expected '{' for tensor 'a', found 'n'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"foo\":1}}", CT_ERR_IO,
       "tensor 'a': unknown key 'foo'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", CT_ERR_IO,
       "tensor 'a' has no \"data_offsets\""},
      {"{\"a\":{}}", CT_ERR_IO, "tensor 'a' has no \"dtype\""},
      {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", CT_ERR_IO,
       "tensor 'a': key 'dtype' appears twice"},
      {"{\"a\\x\":{}}", CT_ERR_IO, "header byte 3: invalid escape '\\x'"},
      {"{\"\\udc00\":{}}", CT_ERR_IO, "\\uDC00 is a low surrogate without a high one"},
      {"{\"\\ud800x\":{}}", CT_ERR_IO, "\\uD800 is a high surrogate without a low one"},
      {"{\"\\ud800\\u0041\":{}}", CT_ERR_IO, "\\uD800 is a high surrogate without a low one"},
      {"{\"\\u0000\":{}}", CT_ERR_IO, "\\u0000 in a string"},
      {"{\"\\u12\":{}}", CT_ERR_IO, "\\u escape needs four hex digits"},
      {"{\"\\u12g4\":{}}", CT_ERR_IO, "\\u escape needs four hex digits"},
      {"{\"a\x01\":{}}", CT_ERR_IO, "header byte 3: control byte 0x01 inside a string"},
      {"{\"a\xff\":{}}", CT_ERR_IO, "header byte 3: malformed UTF-8 inside a string"},
      {"{\"\xc0\xaf\":{}}", CT_ERR_IO, "malformed UTF-8"},         /* overlong '/' */
      {"{\"\xed\xa0\x80\":{}}", CT_ERR_IO, "malformed UTF-8"},     /* encoded surrogate */
      {"{\"\xf4\x90\x80\x80\":{}}", CT_ERR_IO, "malformed UTF-8"}, /* > U+10FFFF */
      {"{\"\xe2\x9c\":{}}", CT_ERR_IO, "malformed UTF-8"},         /* cut sequence */
      {"{\"abc", CT_ERR_IO, "header byte 5: unterminated string"},
      {"{\"abc\\", CT_ERR_IO, "unterminated string"},
      {"{} x", CT_ERR_IO, "header byte 3: unexpected 'x' after the header's closing '}'"},
      {"{}}", CT_ERR_IO, "unexpected '}' after the header's closing '}'"},
      {"{\"\":{}}", CT_ERR_IO, "header byte 1: a tensor has an empty name"},
      {"{" T("a", "[1,1,1,1,1]", "[0,4]") "}", CT_ERR_UNSUPPORTED,
       "tensor 'a' has rank 5; ctml supports up to 4"},
  };
#undef T
  const char *path = tpath("malformed.safetensors");
  const char data[8] = {0};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    craft(path, cases[i].json, 0, data, 4);
    ct_safetensors *f = NULL;
    ct_status st = ct_safetensors_read(&f, path);
    if (st != cases[i].st)
      fail_msg("case %zu '%s': %s, expected %s (%s)", i, cases[i].json, ct_status_name(st),
               ct_status_name(cases[i].st), ct_last_error());
    assert_null(f);
    if (!strstr(ct_last_error(), cases[i].msg))
      fail_msg("case %zu '%s': message '%s' does not mention '%s'", i, cases[i].json,
               ct_last_error(), cases[i].msg);
    print_message("    expected error: %s\n", ct_last_error());
    CT_ASSERT_MESSAGE_HAS(path);
  }
  /* A NUL byte after the closing brace (inside the declared header length). */
  const unsigned char nul[] = {3, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0};
  spit(path, nul, sizeof nul);
  ct_safetensors *f = NULL;
  CT_ASSERT_STATUS(ct_safetensors_read(&f, path), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS("header byte 2: unexpected byte 0x00 after the header's closing '}'");

  /* Header lengths beyond the file or the limit. */
  const unsigned char huge[] = {0x00, 0xe2, 0xf5, 0x05, 0, 0, 0, 0, '{', '}'}; /* 100000256 */
  spit(path, huge, sizeof huge);
  CT_ASSERT_STATUS(ct_safetensors_read(&f, path), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS("header length 100000256 exceeds the limit of 100000000 bytes");
  const unsigned char big[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
  spit(path, big, sizeof big);
  CT_ASSERT_STATUS(ct_safetensors_read(&f, path), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS("exceeds the limit");
  const unsigned char longer[] = {0xe8, 0x03, 0, 0, 0, 0, 0, 0, '{', '}'};
  spit(path, longer, sizeof longer);
  CT_ASSERT_STATUS(ct_safetensors_read(&f, path), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS("truncated: header length 1000 needs 1008 bytes, file has 10");
  assert_null(f);
}

/* Valid headers in other spellings: whitespace, key order, escapes, empty objects. */
static void test_valid_variants(void **state) {
  const char *path = tpath("variants.safetensors");
  const float v[2] = {10.0f, 20.0f};
  craft(
      path,
      "{ \"__metadata__\" : { } ,\r\n \"b\" : { \"data_offsets\" : [ 4 , 8 ] , \"shape\" : [ 1 ] ,"
      " \"dtype\" : \"F32\" } , \"\\u00e9\\ud83d\\ude00\\/\\t\\\"\" : "
      "{\"shape\":[],\"dtype\":\"F32\","
      "\"data_offsets\":[0,4]},\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[8,8]}}"
      "\t\r\n",
      5, v, sizeof v);
  ct_safetensors *f = NULL;
  CT_ASSERT_OK(ct_safetensors_read(&f, path));
  assert_int_equal(ct_safetensors_count(f), 3);
  assert_string_equal(ct_safetensors_name(f, 0), "b");
  const char *odd = "\xc3\xa9\xf0\x9f\x98\x80/\t\"";
  assert_string_equal(ct_safetensors_name(f, 1), odd);
  assert_string_equal(ct_safetensors_name(f, 2), "z");
  const float *d;
  int rank;
  int64_t dims[CT_MAX_RANK];
  CT_ASSERT_OK(ct_safetensors_get(f, "b", &rank, dims, &d));
  assert_int_equal(rank, 1);
  assert_int_equal(dims[0], 1);
  assert_true(d[0] == 20.0f);
  CT_ASSERT_OK(ct_safetensors_get(f, odd, &rank, dims, &d));
  assert_int_equal(rank, 0);
  assert_true(d[0] == 10.0f);
  CT_ASSERT_OK(ct_safetensors_get(f, "z", &rank, dims, &d));
  assert_int_equal(rank, 2);
  assert_int_equal(dims[0], 0);
  assert_int_equal(dims[1], 5);
  assert_non_null(d);
  ct_safetensors_free(f);

  /* "{}" alone, and zero-size tensors at the start and the end. */
  craft(path, "{}", 0, NULL, 0);
  CT_ASSERT_OK(ct_safetensors_read(&f, path));
  assert_int_equal(ct_safetensors_count(f), 0);
  ct_safetensors_free(f);
  craft(path,
        "{\"e0\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
        "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"e1\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[8,8]}}",
        0, v, sizeof v);
  CT_ASSERT_OK(ct_safetensors_read(&f, path));
  assert_int_equal(ct_safetensors_count(f), 3);
  touch_all(f);
  ct_safetensors_free(f);
}

/* A file written by the reference implementation (Python safetensors 0.8,
 * safetensors.numpy.save_file; it orders tensors by name). */
static void test_reads_reference_file(void **state) {
  static const char file[] =
      "\xa0\0\0\0\0\0\0\0"
      "{\"__metadata__\":{\"note\":\"\xc3\xa9\",\"format\":\"np\"},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[4,20]}}       "
      "\x00\x00\x80\x3e"
      "\x00\x00\x80\x3f\x00\x00\x00\xc0\x00\x00\x00\x3f\x00\x00\x40\x40";
  const char *path = tpath("reference.safetensors");
  spit(path, file, sizeof file - 1);
  ct_safetensors *f = NULL;
  CT_ASSERT_OK(ct_safetensors_read(&f, path));
  assert_int_equal(ct_safetensors_count(f), 2);
  assert_string_equal(ct_safetensors_meta(f, "format"), "np");
  assert_string_equal(ct_safetensors_meta(f, "note"), "\xc3\xa9");
  const float *d;
  int rank;
  int64_t dims[CT_MAX_RANK];
  CT_ASSERT_OK(ct_safetensors_get(f, "w", &rank, dims, &d));
  assert_int_equal(rank, 2);
  assert_int_equal(dims[0], 2);
  assert_int_equal(dims[1], 2);
  const float w[4] = {1.0f, -2.0f, 0.5f, 3.0f};
  assert_memory_equal(d, w, sizeof w);
  CT_ASSERT_OK(ct_safetensors_get(f, "b", &rank, dims, &d));
  assert_int_equal(rank, 1);
  assert_true(d[0] == 0.25f);
  ct_safetensors_free(f);
}

/* A save that cannot create "<path>.tmp" fails and leaves the old file as it was. */
static void test_failed_save_keeps_old_file(void **state) {
  float a[3] = {1, 2, 3}, b[3] = {4, 5, 6};
  ct_st_tensor t[] = {{"a", 1, {3}, a}};
  ct_st_meta m[] = {{"version", "1"}};
  const char *path = tpath("keep.safetensors"), *tmp = tpath("keep.safetensors.tmp");
  CT_ASSERT_OK(ct_safetensors_write(path, t, 1, m, 1));
  size_t n0;
  unsigned char *before = slurp(path, &n0);
  int entries = dir_entries();

  assert_int_equal(mkdir(tmp, 0700), 0);
  t[0].data = b;
  m[0].value = "2";
  CT_ASSERT_STATUS(ct_safetensors_write(path, t, 1, m, 1), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS("ct_safetensors_write: cannot create");
  CT_ASSERT_MESSAGE_HAS(tmp);
  CT_ASSERT_MESSAGE_HAS("left untouched");
  size_t n1;
  unsigned char *after = slurp(path, &n1);
  assert_int_equal(n0, n1);
  assert_memory_equal(before, after, n0);
  assert_int_equal(dir_entries(), entries + 1); /* the blocking directory, nothing else */
  DIR *d = opendir(tmp);
  assert_non_null(d);
  int inside = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) inside += e->d_name[0] != '.';
  closedir(d);
  assert_int_equal(inside, 0);
  free(after);

  /* With the way clear, the save replaces the file and leaves no temporary. */
  assert_int_equal(rmdir(tmp), 0);
  CT_ASSERT_OK(ct_safetensors_write(path, t, 1, m, 1));
  assert_false(exists(tmp));
  assert_int_equal(dir_entries(), entries);
  ct_safetensors *f = NULL;
  CT_ASSERT_OK(ct_safetensors_read(&f, path));
  assert_string_equal(ct_safetensors_meta(f, "version"), "2");
  const float *data;
  CT_ASSERT_OK(ct_safetensors_get(f, "a", NULL, NULL, &data));
  assert_memory_equal(data, b, sizeof b);
  ct_safetensors_free(f);
  free(before);

  /* A missing directory is an error naming the temporary path. */
  CT_ASSERT_STATUS(ct_safetensors_write(tpath("no/such/dir.safetensors"), t, 1, NULL, 0),
                   CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS("no/such/dir.safetensors.tmp");
  CT_ASSERT_MESSAGE_HAS("No such file or directory");
}

static void test_writer_rejects_bad_args(void **state) {
  float x[4] = {0};
  const char *path = tpath("args.safetensors");
  int entries = dir_entries();
  char long_name[300];
  memset(long_name, 'n', sizeof long_name);
  long_name[256] = '\0';
  static const struct {
    ct_st_tensor t;
    const char *msg;
  } bad[] = {
      {{NULL, 1, {4}, NULL}, "tensor 1 has a NULL name"},
      {{"", 1, {4}, NULL}, "tensor 1 has an empty name"},
      {{"__metadata__", 1, {4}, NULL}, "tensor 1 is named '__metadata__', which is reserved"},
      {{"ok", 1, {4}, NULL}, "tensor 'ok' is given twice (entries 0 and 1)"},
      {{"bad\xff", 1, {4}, NULL}, "tensor 1 name is not valid UTF-8 (byte 3)"},
      {{"r", -1, {4}, NULL}, "tensor 'r' has rank -1 (0 .. 4 allowed)"},
      {{"r", 5, {4}, NULL}, "tensor 'r' has rank 5 (0 .. 4 allowed)"},
      {{"d", 2, {4, -1}, NULL}, "tensor 'd' dimension 1 is -1 (must be >= 0)"},
      {{"big", 2, {INT64_MAX / 2, 3}, NULL},
       "tensor 'big' of shape [4611686018427387903,3] is too large"},
      {{"nul", 2, {2, 2}, NULL}, "tensor 'nul' of shape [2,2] has NULL data"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    ct_st_tensor t[2] = {{"ok", 1, {4}, x}, bad[i].t};
    if (!t[1].data && t[1].name && strcmp(t[1].name, "nul") != 0 && strcmp(t[1].name, "big") != 0)
      t[1].data = x;
    CT_ASSERT_STATUS(ct_safetensors_write(path, t, 2, NULL, 0), CT_ERR_INVALID_ARG);
    CT_ASSERT_MESSAGE_HAS(bad[i].msg);
    CT_ASSERT_MESSAGE_HAS(path);
  }
  ct_st_tensor one[1] = {{long_name, 1, {4}, x}};
  CT_ASSERT_STATUS(ct_safetensors_write(path, one, 1, NULL, 0), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("has 256 bytes (at most 255)");
  long_name[255] = '\0';
  CT_ASSERT_OK(ct_safetensors_write(path, one, 1, NULL, 0)); /* 255 bytes is fine */
  assert_int_equal(unlink(path), 0);

  /* Zero-size tensors need no data; NaN and Inf are data like any other. */
  float nan_inf[2] = {NAN, INFINITY};
  ct_st_tensor fine[2] = {{"z", 2, {0, 3}, NULL}, {"n", 1, {2}, nan_inf}};
  CT_ASSERT_OK(ct_safetensors_write(path, fine, 2, NULL, 0));
  assert_int_equal(unlink(path), 0);

  ct_st_meta m[2] = {{"k", "v"}, {"k", "w"}};
  CT_ASSERT_STATUS(ct_safetensors_write(path, one, 1, m, 2), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("metadata key 'k' is given twice (entries 0 and 1)");
  m[1] = (ct_st_meta){NULL, "v"};
  CT_ASSERT_STATUS(ct_safetensors_write(path, one, 1, m, 2), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("metadata entry 1 has a NULL key");
  m[1] = (ct_st_meta){"j", NULL};
  CT_ASSERT_STATUS(ct_safetensors_write(path, one, 1, m, 2), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("metadata entry 1 has a NULL value");
  m[1] = (ct_st_meta){"j", "\xc3("};
  CT_ASSERT_STATUS(ct_safetensors_write(path, one, 1, m, 2), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("metadata value of 'j' is not valid UTF-8 (byte 0)");

  CT_ASSERT_STATUS(ct_safetensors_write(NULL, one, 1, NULL, 0), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("argument 'path' is NULL");
  CT_ASSERT_STATUS(ct_safetensors_write("", one, 1, NULL, 0), CT_ERR_INVALID_ARG);
  CT_ASSERT_STATUS(ct_safetensors_write(path, NULL, 1, NULL, 0), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("argument 'tensors' is NULL");
  CT_ASSERT_STATUS(ct_safetensors_write(path, one, 1, NULL, 1), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("argument 'meta' is NULL");
  CT_ASSERT_STATUS(ct_safetensors_write(path, one, -1, NULL, 0), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("negative count");
  assert_int_equal(dir_entries(), entries); /* nothing was created */
}

static void test_reader_args_and_missing_files(void **state) {
  ct_safetensors *f = (ct_safetensors *)&f;
  CT_ASSERT_STATUS(ct_safetensors_read(NULL, "x"), CT_ERR_INVALID_ARG);
  CT_ASSERT_STATUS(ct_safetensors_read(&f, NULL), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("argument 'path' is NULL");
  assert_null(f);
  const char *missing = tpath("missing.safetensors");
  CT_ASSERT_STATUS(ct_safetensors_read(&f, missing), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS("ct_safetensors_read: cannot open");
  CT_ASSERT_MESSAGE_HAS(missing);
  CT_ASSERT_MESSAGE_HAS("No such file or directory");
  CT_ASSERT_STATUS(ct_safetensors_read(&f, g_dir), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS("is not a regular file");
  assert_null(f);

  assert_int_equal(ct_safetensors_count(NULL), 0);
  assert_null(ct_safetensors_name(NULL, 0));
  assert_null(ct_safetensors_meta(NULL, "k"));
  ct_safetensors_free(NULL);
  CT_ASSERT_STATUS(ct_safetensors_get(NULL, "a", NULL, NULL, NULL), CT_ERR_INVALID_ARG);

  float a = 1;
  ct_st_tensor t[] = {{"a", 0, {0}, &a}};
  const char *path = tpath("lookup.safetensors");
  CT_ASSERT_OK(ct_safetensors_write(path, t, 1, NULL, 0));
  CT_ASSERT_OK(ct_safetensors_read(&f, path));
  CT_ASSERT_STATUS(ct_safetensors_get(f, NULL, NULL, NULL, NULL), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("argument 'name' is NULL");
  CT_ASSERT_STATUS(ct_safetensors_get(f, "b", NULL, NULL, NULL), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS("ct_safetensors_get:");
  CT_ASSERT_MESSAGE_HAS(path);
  CT_ASSERT_MESSAGE_HAS("has no tensor 'b'");
  assert_null(ct_safetensors_meta(f, "k"));
  ct_safetensors_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_header_bytes),
      cmocka_unit_test(test_alignment_any_header_length),
      cmocka_unit_test(test_truncated_at_every_byte),
      cmocka_unit_test(test_trailing_bytes_refused),
      cmocka_unit_test(test_corrupted_header_bytes),
      cmocka_unit_test(test_bad_dtype),
      cmocka_unit_test(test_bf16),
      cmocka_unit_test(test_bad_offsets),
      cmocka_unit_test(test_malformed_headers),
      cmocka_unit_test(test_valid_variants),
      cmocka_unit_test(test_reads_reference_file),
      cmocka_unit_test(test_failed_save_keeps_old_file),
      cmocka_unit_test(test_writer_rejects_bad_args),
      cmocka_unit_test(test_reader_args_and_missing_files),
  };
  return CT_RUN_TESTS("safetensors", tests, setup, teardown);
}
