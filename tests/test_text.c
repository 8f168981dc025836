/* SPDX-License-Identifier: MIT */
/* Byte-level text data: reading files and fortune directories, the byte
 * vocabulary, splitmix64 and batch windows. */
#include "ct_test.h"
#include "ct_files.h"
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

/* A scratch directory under /tmp, removed by rm_tree. */
static void make_tmpdir(char *dir, size_t len) {
  snprintf(dir, len, "/tmp/ctml_text_XXXXXX");
  assert_non_null(mkdtemp(dir));
}

static void write_file(const char *dir, const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  assert_int_equal(fclose(f), 0);
}

static void test_read_file(void **state) {
  char dir[64], p[128];
  make_tmpdir(dir, sizeof dir);
  write_file(dir, "a.txt", "hello\nworld\n");
  snprintf(p, sizeof p, "%s/a.txt", dir);
  uint8_t *data = NULL;
  int64_t n = 0;
  CT_ASSERT_OK(ct_text_read_file(p, &data, &n));
  assert_int_equal(n, 12);
  assert_memory_equal(data, "hello\nworld\n", 12);
  free(data);

  /* Larger than any first guess of a buffer: every byte arrives in order. */
  snprintf(p, sizeof p, "%s/big.bin", dir);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  const int64_t big = 300007;
  for (int64_t i = 0; i < big; i++) fputc((int)((i * 7 + i / 251) & 0xff), f);
  assert_int_equal(fclose(f), 0);
  CT_ASSERT_OK(ct_text_read_file(p, &data, &n));
  assert_int_equal(n, big);
  for (int64_t i = 0; i < big; i++)
    if (data[i] != (uint8_t)((i * 7 + i / 251) & 0xff)) fail_msg("byte %lld differs", (long long)i);
  free(data);

  /* Missing, empty, a directory. */
  snprintf(p, sizeof p, "%s/missing.txt", dir);
  data = (uint8_t *)p;
  CT_ASSERT_STATUS(ct_text_read_file(p, &data, &n), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS("ct_text_read_file: cannot open");
  CT_ASSERT_MESSAGE_HAS(p);
  CT_ASSERT_MESSAGE_HAS("No such file or directory");
  assert_null(data);
  assert_int_equal(n, 0);

  write_file(dir, "empty.txt", "");
  snprintf(p, sizeof p, "%s/empty.txt", dir);
  CT_ASSERT_STATUS(ct_text_read_file(p, &data, &n), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS(p);
  CT_ASSERT_MESSAGE_HAS("is empty");
  assert_null(data);

  CT_ASSERT_STATUS(ct_text_read_file(dir, &data, &n), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS(dir);
  CT_ASSERT_MESSAGE_HAS("is a directory");

  CT_ASSERT_STATUS(ct_text_read_file(NULL, &data, &n), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("'path' is NULL");
  ct_rm_tree(dir);
}

static void test_read_fortunes_layout(void **state) {
  char dir[64], p[256], target[256];
  make_tmpdir(dir, sizeof dir);
  write_file(dir, "zen", "Z1\n%\nZ2\n%\n");
  write_file(dir, "art", "A\n%\n");
  write_file(dir, "Bees", "B\n%\n"); /* 'B' < 'a' in byte order */
  write_file(dir, "art.dat", "\x01\x02binary index");
  write_file(dir, ".hidden", "HIDDEN\n");
  snprintf(target, sizeof target, "%s/zen", dir);
  snprintf(p, sizeof p, "%s/zen.u8", dir);
  assert_int_equal(symlink(target, p), 0);
  snprintf(p, sizeof p, "%s/link", dir); /* a symlink without a suffix is skipped too */
  assert_int_equal(symlink(target, p), 0);
  snprintf(p, sizeof p, "%s/sub", dir);
  assert_int_equal(mkdir(p, 0700), 0);
  write_file(p, "inner", "INNER\n");

  uint8_t *data = NULL;
  int64_t n = 0;
  int files = -1;
  CT_ASSERT_OK(ct_text_read_fortunes(dir, &data, &n, &files));
  const char *want = "B\n%\nA\n%\nZ1\n%\nZ2\n%\n";
  assert_int_equal(files, 3);
  assert_int_equal(n, (int64_t)strlen(want));
  assert_memory_equal(data, want, strlen(want));
  free(data);

  /* files may be NULL; a trailing slash on the directory is fine. */
  char slash[80];
  snprintf(slash, sizeof slash, "%s/", dir);
  CT_ASSERT_OK(ct_text_read_fortunes(slash, &data, &n, NULL));
  assert_int_equal(n, (int64_t)strlen(want));
  free(data);

  /* A directory with only skipped entries, and a missing one. */
  snprintf(p, sizeof p, "%s/sub2", dir);
  assert_int_equal(mkdir(p, 0700), 0);
  write_file(p, "x.dat", "idx");
  write_file(p, ".y", "hidden");
  CT_ASSERT_STATUS(ct_text_read_fortunes(p, &data, &n, &files), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS(p);
  CT_ASSERT_MESSAGE_HAS("no plain fortune file");
  assert_null(data);
  assert_int_equal(files, 0);
  snprintf(p, sizeof p, "%s/nope", dir);
  CT_ASSERT_STATUS(ct_text_read_fortunes(p, &data, &n, &files), CT_ERR_IO);
  CT_ASSERT_MESSAGE_HAS(p);
  CT_ASSERT_MESSAGE_HAS("No such file or directory");
  ct_rm_tree(dir);
}

static void test_read_fortunes_debian(void **state) {
  const char *dir = "/usr/share/games/fortunes";
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    print_message("    %s is absent (Debian package 'fortunes'): skipped\n", dir);
    skip();
  }
  uint8_t *data = NULL;
  int64_t n = 0;
  int files = 0;
  CT_ASSERT_OK(ct_text_read_fortunes(dir, &data, &n, &files));
  print_message("    %s: %d files, %lld bytes\n", dir, files, (long long)n);
  assert_true(files >= 1);
  assert_true(n > 1000);
  /* Plain text: fortunes separated by "%" lines, no NUL bytes of the .dat indexes. */
  assert_non_null(strstr((const char *)data, "\n%\n"));
  assert_null(memchr(data, 0, (size_t)n));
  ct_vocab v;
  CT_ASSERT_OK(ct_vocab_build(&v, data, n));
  print_message("    vocabulary: %d bytes\n", v.size);
  assert_true(v.id_of['e'] >= 0 && v.id_of['\n'] >= 0);
  free(data);
}

static void test_vocab_round_trip(void **state) {
  const char *text = "hello, world\n";
  int64_t n = (int64_t)strlen(text);
  ct_vocab v;
  CT_ASSERT_OK(ct_vocab_build(&v, (const uint8_t *)text, n));
  /* Distinct bytes in increasing order: '\n' ' ' ',' 'd' 'e' 'h' 'l' 'o' 'r' 'w'. */
  const uint8_t want[] = {'\n', ' ', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w'};
  assert_int_equal(v.size, 10);
  assert_memory_equal(v.byte_of, want, sizeof want);
  for (int b = 0; b < 256; b++) {
    const uint8_t *hit = memchr(want, b, sizeof want);
    assert_int_equal(v.id_of[b], hit ? (int)(hit - want) : -1);
  }
  int32_t ids[16];
  uint8_t back[16];
  CT_ASSERT_OK(ct_vocab_encode(&v, (const uint8_t *)text, n, ids));
  assert_int_equal(ids[0], 5); /* 'h' */
  assert_int_equal(ids[12], 0); /* '\n' */
  CT_ASSERT_OK(ct_vocab_decode(&v, ids, n, back));
  assert_memory_equal(back, text, (size_t)n);

  /* The same vocabulary from its stored bytes. */
  ct_vocab w;
  CT_ASSERT_OK(ct_vocab_from_bytes(&w, v.byte_of, v.size));
  assert_int_equal(w.size, v.size);
  assert_memory_equal(w.byte_of, v.byte_of, (size_t)v.size);
  assert_memory_equal(w.id_of, v.id_of, sizeof v.id_of);

  /* All 256 bytes. */
  uint8_t all[256];
  for (int b = 0; b < 256; b++) all[b] = (uint8_t)(255 - b);
  CT_ASSERT_OK(ct_vocab_build(&v, all, 256));
  assert_int_equal(v.size, 256);
  for (int b = 0; b < 256; b++) assert_int_equal(v.id_of[b], b);

  CT_ASSERT_STATUS(ct_vocab_build(&v, all, 0), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_vocab_build");
}

static void test_vocab_errors(void **state) {
  ct_vocab v;
  const uint8_t dup[] = {'a', 'b', 'b', 'c'};
  CT_ASSERT_STATUS(ct_vocab_from_bytes(&v, dup, 4), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("ct_vocab_from_bytes");
  CT_ASSERT_MESSAGE_HAS("index 2");
  CT_ASSERT_MESSAGE_HAS("0x62 ('b')");
  const uint8_t down[] = {0x10, 0x09};
  CT_ASSERT_STATUS(ct_vocab_from_bytes(&v, down, 2), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("byte 0x09 at index 1");
  CT_ASSERT_STATUS(ct_vocab_from_bytes(&v, dup, 0), CT_ERR_INVALID_ARG);
  CT_ASSERT_STATUS(ct_vocab_from_bytes(&v, dup, 257), CT_ERR_INVALID_ARG);
  CT_ASSERT_STATUS(ct_vocab_from_bytes(NULL, dup, 2), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("'v' is NULL");

  CT_ASSERT_OK(ct_vocab_build(&v, (const uint8_t *)"abc", 3));
  int32_t ids[8];
  CT_ASSERT_STATUS(ct_vocab_encode(&v, (const uint8_t *)"abcaz", 5, ids), CT_ERR_RANGE);
  CT_ASSERT_MESSAGE_HAS("ct_vocab_encode");
  CT_ASSERT_MESSAGE_HAS("byte 0x7a ('z') at offset 4");
  const uint8_t ctrl[] = {'a', 0x00};
  CT_ASSERT_STATUS(ct_vocab_encode(&v, ctrl, 2, ids), CT_ERR_RANGE);
  CT_ASSERT_MESSAGE_HAS("byte 0x00 at offset 1");
  const uint8_t high[] = {0xe9};
  CT_ASSERT_STATUS(ct_vocab_encode(&v, high, 1, ids), CT_ERR_RANGE);
  CT_ASSERT_MESSAGE_HAS("byte 0xe9 at offset 0");

  uint8_t out[8];
  const int32_t bad[] = {0, 2, 3};
  CT_ASSERT_STATUS(ct_vocab_decode(&v, bad, 3, out), CT_ERR_RANGE);
  CT_ASSERT_MESSAGE_HAS("id 3 at position 2 is outside [0, 3)");
  const int32_t neg[] = {-1};
  CT_ASSERT_STATUS(ct_vocab_decode(&v, neg, 1, out), CT_ERR_RANGE);
  CT_ASSERT_MESSAGE_HAS("id -1 at position 0");
}

static void test_splitmix64(void **state) {
  /* Reference values computed independently (Python, 64-bit wrap-around). */
  uint64_t s = 0;
  assert_true(ct_splitmix64(&s) == 0xe220a8397b1dcdafull);
  assert_true(s == 0x9e3779b97f4a7c15ull);
  assert_true(ct_splitmix64(&s) == 0x6e789e6aa1b965f4ull);
  assert_true(ct_splitmix64(&s) == 0x06c45d188009454full);
  assert_true(ct_splitmix64(&s) == 0xf88bb8a8724c81ecull);
  s = 42;
  assert_true(ct_splitmix64(&s) == 0xbdd732262feb6e95ull);
  assert_true(s == 0x9e3779b97f4a7c3full);
}

static void test_batch_draw(void **state) {
  enum { N = 97, B = 16, T = 8 };
  int32_t ids[N];
  for (int i = 0; i < N; i++) ids[i] = 1000 + i; /* the id says its position */
  int32_t in[B * T], tg[B * T], in2[B * T], tg2[B * T];
  uint64_t rng = 7, rng2 = 7, expect = 7;
  CT_ASSERT_OK(ct_batch_draw(&rng, ids, N, B, T, in, tg));
  for (int b = 0; b < B; b++) {
    int64_t s = (int64_t)(ct_splitmix64(&expect) % (uint64_t)(N - T));
    assert_int_equal(in[b * T], 1000 + s);
    assert_true(s >= 0 && s + T < N);
    for (int t = 0; t < T; t++) {
      assert_int_equal(in[b * T + t], in[b * T] + t);     /* consecutive */
      assert_int_equal(tg[b * T + t], in[b * T + t] + 1); /* shifted by one */
    }
  }
  assert_true(rng == expect); /* one draw per row */
  CT_ASSERT_OK(ct_batch_draw(&rng2, ids, N, B, T, in2, tg2));
  assert_memory_equal(in, in2, sizeof in);
  assert_memory_equal(tg, tg2, sizeof tg);
  uint64_t other = 8;
  CT_ASSERT_OK(ct_batch_draw(&other, ids, N, B, T, in2, tg2));
  assert_memory_not_equal(in, in2, sizeof in);

  /* Every start stays in range, and with n = T + 1 the only window is the text. */
  unsigned char hit[N] = {0};
  for (int r = 0; r < 200; r++) {
    CT_ASSERT_OK(ct_batch_draw(&rng, ids, N, B, T, in, tg));
    for (int b = 0; b < B; b++) {
      int s = in[b * T] - 1000;
      assert_true(s >= 0 && s <= N - T - 1);
      hit[s] = 1;
    }
  }
  for (int s = 0; s <= N - T - 1; s++) assert_true(hit[s]);
  CT_ASSERT_OK(ct_batch_draw(&rng, ids, T + 1, 2, T, in, tg));
  for (int t = 0; t < T; t++) {
    assert_int_equal(in[t], 1000 + t);
    assert_int_equal(tg[T + t], 1001 + t);
  }

  CT_ASSERT_STATUS(ct_batch_draw(&rng, ids, T, 2, T, in, tg), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("8 ids are too few for windows of T = 8");
  CT_ASSERT_STATUS(ct_batch_draw(&rng, ids, N, 0, T, in, tg), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("batch 0");
  CT_ASSERT_STATUS(ct_batch_draw(&rng, ids, N, 2, 0, in, tg), CT_ERR_INVALID_ARG);
  CT_ASSERT_STATUS(ct_batch_draw(NULL, ids, N, 2, T, in, tg), CT_ERR_INVALID_ARG);
  CT_ASSERT_MESSAGE_HAS("'rng' is NULL");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_file),
      cmocka_unit_test(test_read_fortunes_layout),
      cmocka_unit_test(test_read_fortunes_debian),
      cmocka_unit_test(test_vocab_round_trip),
      cmocka_unit_test(test_vocab_errors),
      cmocka_unit_test(test_splitmix64),
      cmocka_unit_test(test_batch_draw),
  };
  return CT_RUN_TESTS("text", tests, NULL, NULL);
}
