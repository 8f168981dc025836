/* SPDX-License-Identifier: MIT */
/* JSON output of the commands: escaped strings, numbers (NaN/Inf as null),
 * and a writer that places the commas and brackets of nested values. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

int cli_utf8_len(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  if (c < 0x80) return 1;
  int len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (len == 0 || (size_t)len > n) return 0;
  for (int k = 1; k < len; k++)
    if ((p[k] & 0xc0) != 0x80) return 0;
  /* overlong forms, UTF-16 surrogates, code points past U+10FFFF */
  if (len == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))) return 0;
  if (len == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))) return 0;
  return len;
}

void cli_json_write_string(FILE *f, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  fputc('"', f);
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    int len = cli_utf8_len(p + i, n - i);
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc((int)c, f);
    } else if (c == '\n') {
      fputs("\\n", f);
    } else if (c == '\t') {
      fputs("\\t", f);
    } else if (c == '\r') {
      fputs("\\r", f);
    } else if (c < 0x20 || c == 0x7f || len == 0) {
      /* control bytes, and bytes that are not part of well-formed UTF-8 (as U+00XX) */
      fprintf(f, "\\u%04x", c);
    } else {
      fwrite(p + i, 1, (size_t)len, f);
      i += (size_t)len;
      continue;
    }
    i++;
  }
  fputc('"', f);
}

void cli_json_write_number(FILE *f, double v) {
  if (!isfinite(v)) {
    fputs("null", f);
    return;
  }
  /* a value a float holds exactly: the fewest digits that read back as that float
   * (0.003f as 0.003, not 0.00300000003); any other: 9 significant digits */
  char buf[32];
  int p = 9;
  if ((double)(float)v == v)
    for (p = 1; p < 9; p++) {
      snprintf(buf, sizeof buf, "%.*g", p, v);
      if ((float)strtod(buf, NULL) == (float)v) break;
    }
  fprintf(f, "%.*g", p, v);
}

void cli_json_init(cli_json *j, FILE *f) {
  memset(j, 0, sizeof *j);
  j->f = f;
}

/* The separator and key before a value at the current depth. */
static void cli__json_key(cli_json *j, const char *key) {
  if (j->depth > 0) {
    if (j->count[j->depth - 1]++) fputs(", ", j->f);
    if (j->close[j->depth - 1] == '}') {
      cli_json_write_string(j->f, key ? key : "", key ? strlen(key) : 0);
      fputs(": ", j->f);
    }
  }
}

void cli_json_open(cli_json *j, const char *key, char bracket) {
  cli__json_key(j, key);
  fputc(bracket, j->f);
  if (j->depth < CLI_JSON_DEPTH) {
    j->close[j->depth] = bracket == '[' ? ']' : '}';
    j->count[j->depth] = 0;
  }
  j->depth++;
}

void cli_json_close(cli_json *j) {
  if (j->depth == 0) return;
  j->depth--;
  fputc(j->depth < CLI_JSON_DEPTH ? j->close[j->depth] : '}', j->f);
  if (j->depth == 0) fputc('\n', j->f);
}

void cli_json_str(cli_json *j, const char *key, const char *s) {
  if (!s) {
    cli_json_null(j, key);
    return;
  }
  cli_json_strn(j, key, s, strlen(s));
}

void cli_json_strn(cli_json *j, const char *key, const char *s, size_t n) {
  cli__json_key(j, key);
  cli_json_write_string(j->f, s, n);
}

void cli_json_num(cli_json *j, const char *key, double v) {
  cli__json_key(j, key);
  cli_json_write_number(j->f, v);
}

void cli_json_int(cli_json *j, const char *key, long long v) {
  cli__json_key(j, key);
  fprintf(j->f, "%lld", v);
}

void cli_json_u64(cli_json *j, const char *key, uint64_t v) {
  cli__json_key(j, key);
  fprintf(j->f, "%" PRIu64, v);
}

void cli_json_bool(cli_json *j, const char *key, bool v) {
  cli__json_key(j, key);
  fputs(v ? "true" : "false", j->f);
}

void cli_json_null(cli_json *j, const char *key) {
  cli__json_key(j, key);
  fputs("null", j->f);
}
