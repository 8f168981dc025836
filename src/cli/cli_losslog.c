/* SPDX-License-Identifier: MIT */
/* The loss log of a training run (loss.csv): rows kept in memory for the plot,
 * and the reader that continues an existing log on resume. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"

bool cli_losslog_push(cli_losslog *l, long step, float train) {
  if (l->n == l->cap) {
    if (l->cap > (1 << 29)) return false;
    int cap = l->cap ? 2 * l->cap : 1024;
    long *s = realloc(l->steps, (size_t)cap * sizeof *s);
    if (!s) return false;
    l->steps = s;
    float *t = realloc(l->train, (size_t)cap * sizeof *t);
    if (!t) return false;
    l->train = t;
    l->cap = cap;
  }
  l->steps[l->n] = step;
  l->train[l->n++] = train;
  return true;
}

bool cli_losslog_push_val(cli_losslog *l, long step, float val) {
  if (l->n_val == l->cap_val) {
    if (l->cap_val > (1 << 29)) return false;
    int cap = l->cap_val ? 2 * l->cap_val : 64;
    long *s = realloc(l->val_steps, (size_t)cap * sizeof *s);
    if (!s) return false;
    l->val_steps = s;
    float *v = realloc(l->val, (size_t)cap * sizeof *v);
    if (!v) return false;
    l->val = v;
    l->cap_val = cap;
  }
  l->val_steps[l->n_val] = step;
  l->val[l->n_val++] = val;
  return true;
}

void cli_losslog_free(cli_losslog *l) {
  free(l->steps);
  free(l->train);
  free(l->val_steps);
  free(l->val);
  memset(l, 0, sizeof *l);
}

/* A row's text: printable ASCII only, at most 255 bytes. */
static bool cli__row_ok(const char *p, size_t k) {
  if (k == 0 || k > 255) return false;
  for (size_t i = 0; i < k; i++)
    if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f) return false;
  return true;
}

bool cli_losslog_parse(const char *text, size_t n, long last, cli_losslog *l, char **kept,
                       size_t *kept_len) {
  size_t len = 0, cap = 4096;
  *kept = malloc(cap);
  *kept_len = 0;
  if (!*kept) return false;
  (*kept)[0] = '\0';
  size_t pos = 0;
  while (pos < n) {
    const char *nl = memchr(text + pos, '\n', n - pos);
    size_t k = nl ? (size_t)(nl - (text + pos)) : n - pos;
    const char *row = text + pos;
    pos += k + (nl ? 1 : 0);
    /* a row without its newline is one a crash cut short: dropped */
    if (!nl || !cli__row_ok(row, k)) continue;
    char line[257];
    memcpy(line, row, k);
    line[k] = '\0';
    long step;
    float train, val;
    char vbuf[64] = "";
    if (sscanf(line, "%ld,%f,%63[^,]", &step, &train, vbuf) < 2 || step < 1 || step > last)
      continue;
    if (!cli_losslog_push(l, step, train)) return false;
    if (vbuf[0] && sscanf(vbuf, "%f", &val) == 1 && !cli_losslog_push_val(l, step, val))
      return false;
    if (len + k + 2 > cap) {
      cap = 2 * (len + k + 2);
      char *g = realloc(*kept, cap);
      if (!g) return false;
      *kept = g;
    }
    memcpy(*kept + len, line, k);
    len += k;
    (*kept)[len++] = '\n';
    (*kept)[len] = '\0';
  }
  *kept_len = len;
  return true;
}

bool cli_losslog_read(const char *path, long last, cli_losslog *l, char **kept,
                      size_t *kept_len) {
  *kept = NULL;
  *kept_len = 0;
  struct stat st;
  if (stat(path, &st) != 0 && errno == ENOENT) return cli_losslog_parse("", 0, last, l, kept, kept_len);
  uint8_t *text = NULL;
  int64_t n = 0;
  if (ct_text_read_regular_file(path, CLI_LOSSLOG_MAX, &text, &n) != CT_OK) {
    /* an empty log starts afresh */
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
      return cli_losslog_parse("", 0, last, l, kept, kept_len);
    return false;
  }
  bool ok = cli_losslog_parse((const char *)text, (size_t)n, last, l, kept, kept_len);
  free(text);
  return ok;
}
