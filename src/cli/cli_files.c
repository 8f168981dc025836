/* SPDX-License-Identifier: MIT */
/* Files the tool writes: atomic replacement (temporary file, fsync, rename,
 * fsync of the directory), heap-allocated paths, and checks of the paths and
 * files the user names. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"

char *cli_strcat_alloc(const char *a, const char *b, const char *c) {
  size_t la = strlen(a), lb = b ? strlen(b) : 0, lc = c ? strlen(c) : 0;
  char *p = malloc(la + lb + lc + 1);
  if (!p) return NULL;
  memcpy(p, a, la);
  if (lb) memcpy(p + la, b, lb);
  if (lc) memcpy(p + la + lb, c, lc);
  p[la + lb + lc] = '\0';
  return p;
}

char *cli_path_join(const char *dir, const char *name) {
  return cli_strcat_alloc(dir, "/", name);
}

int cli_sync_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return ENOMEM;
  int fd = open(dir, O_RDONLY | O_CLOEXEC);
  free(dir);
  if (fd < 0) return errno;
  int err = 0;
  if (fsync(fd) != 0 && errno != EINVAL) err = errno; /* EINVAL: the filesystem cannot */
  close(fd);
  return err;
}

bool cli_atomic_open(cli_atomic *a, const char *path) {
  memset(a, 0, sizeof *a);
  a->path = strdup(path);
  a->tmp = cli_strcat_alloc(path, ".tmp", NULL);
  if (!a->path || !a->tmp) {
    cli_atomic_abort(a);
    errno = ENOMEM;
    return false;
  }
  int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0 || !(a->f = fdopen(fd, "w"))) {
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(a->tmp);
    cli_atomic_abort(a);
    errno = e;
    return false;
  }
  return true;
}

void cli_atomic_abort(cli_atomic *a) {
  if (a->f) {
    fclose(a->f);
    unlink(a->tmp);
  }
  free(a->tmp);
  free(a->path);
  memset(a, 0, sizeof *a);
}

bool cli_atomic_commit(cli_atomic *a) {
  int e = 0;
  if (ferror(a->f)) e = EIO;
  if (!e && fflush(a->f) != 0) e = errno ? errno : EIO;
  if (!e && fsync(fileno(a->f)) != 0) e = errno;
  if (fclose(a->f) != 0 && !e) e = errno ? errno : EIO;
  a->f = NULL;
  if (!e && rename(a->tmp, a->path) != 0) e = errno;
  if (e) unlink(a->tmp);
  if (!e) e = cli_sync_dir_of(a->path);
  free(a->tmp);
  free(a->path);
  memset(a, 0, sizeof *a);
  errno = e;
  return e == 0;
}

bool cli_write_atomic(const char *path, const void *data, size_t n) {
  cli_atomic a;
  if (!cli_atomic_open(&a, path)) return false;
  if (n && fwrite(data, 1, n, a.f) != n) {
    int e = errno ? errno : EIO;
    cli_atomic_abort(&a);
    errno = e;
    return false;
  }
  return cli_atomic_commit(&a);
}

bool cli_symlink_atomic(const char *target, const char *path) {
  char *tmp = cli_strcat_alloc(path, ".tmp", NULL);
  if (!tmp) {
    errno = ENOMEM;
    return false;
  }
  (void)unlink(tmp);
  int e = 0;
  if (symlink(target, tmp) != 0) e = errno;
  if (!e && rename(tmp, path) != 0) {
    e = errno;
    (void)unlink(tmp);
  }
  free(tmp);
  if (!e) e = cli_sync_dir_of(path);
  errno = e;
  return e == 0;
}

bool cli_utf8_valid(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p;
    int len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
              : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!len) return false;
    for (int k = 1; k < len; k++)
      if ((p[k] & 0xc0) != 0x80) return false;
    if (len == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))) return false;
    if (len == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))) return false;
    p += len;
  }
  return true;
}

bool cli_parse_bytes(const char *cmd, const char *flag, const char *s, int64_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  int shift = 0;
  if (end && *end) {
    switch (*end) {
      case 'K': case 'k': shift = 10; break;
      case 'M': case 'm': shift = 20; break;
      case 'G': case 'g': shift = 30; break;
      case 'T': case 't': shift = 40; break;
      default: shift = -1;
    }
    if (shift > 0) end++;
  }
  if (!*s || s[0] == '-' || errno || !end || *end || shift < 0 || v == 0 ||
      v > (unsigned long long)(INT64_MAX >> shift)) {
    cli_error(cmd, CLI_USAGE, "%s: '%s' is not a byte count (a positive integer with an optional "
              "K, M, G or T suffix, powers of 1024, at most 8 EiB)", flag, s);
    return false;
  }
  *out = (int64_t)(v << shift);
  return true;
}

int64_t cli_mem_available(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  long long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
  fclose(f);
  return kb < 0 ? -1 : (int64_t)kb * 1024;
}

/* Parameters of a GPT of config m (the layout of ct_gpt_new). */
static double cli__gpt_params(const ct_gpt_config *m) {
  double C = (double)m->width, V = (double)m->vocab, T = (double)m->block, L = (double)m->layers;
  double block = 4.0 * C /* ln gains, biases */ + 4.0 * (C * C + C) /* q k v o */ +
                 (4.0 * C * C + 4.0 * C) + (4.0 * C * C + C) /* mlp */;
  return V * C + T * C + L * block + 2.0 * C + C * V;
}

cli_budget cli_budget_estimate(const cli_config *c, int64_t vocab, int64_t data_bytes) {
  ct_gpt_config m = c->model;
  if (vocab > 0) m.vocab = vocab;
  double P = cli__gpt_params(&m), B = (double)c->batch, T = (double)m.block,
         C = (double)m.width, L = (double)m.layers, H = (double)m.heads, V = (double)m.vocab;
  cli_budget b;
  /* Device: parameters, gradients and AdamW's two moments (4 floats each), and
   * the activations kept for the backward pass: per layer about 16 B*T*C floats
   * (layer norms, q k v, attention output, the 4C-wide MLP and its GELU) plus
   * the attention probabilities (B*H*T*T floats), and the logits with their
   * gradient (2 B*T*V). Below what the plan holds: 87% to 96% of the plan's
   * planned bytes and parameters for the tiny, micro and small presets. */
  double act = L * (16.0 * B * T * C + B * H * T * T) + 2.0 * B * T * V + 4.0 * B * T * C;
  b.device = 4.0 * (4.0 * P + act);
  /* Host: the parameters as built, the checkpoint's copy of them and of the
   * moments when saving (3 floats each), the text, its ids (4 bytes each) and a batch. */
  b.host = 4.0 * (4.0 * P) + 5.0 * (double)data_bytes + 8.0 * B * T;
  return b;
}

/* "12.3 MiB", or bytes below 1 MiB. */
static const char *cli__size(double b, char *buf, size_t n) {
  if (b < 1048576.0) snprintf(buf, n, "%.0f bytes", b);
  else snprintf(buf, n, "%.1f MiB", b / 1048576.0);
  return buf;
}

bool cli_budget_check(const char *cmd, const cli_budget *b, bool device_is_host, int64_t max_memory,
                      int64_t device_memory) {
  int64_t avail = cli_mem_available();
  double host = b->host + (device_is_host ? b->device : 0.0);
  double host_limit = max_memory > 0 ? (double)max_memory : -1.0;
  const char *host_what = "--max-memory";
  if (avail > 0 && (host_limit < 0 || (double)avail < host_limit)) {
    host_limit = (double)avail;
    host_what = "available memory (MemAvailable in /proc/meminfo)";
  }
  if (host_limit > 0 && host > host_limit) {
    char need[48], have[48];
    cli_error(cmd, CLI_FAIL, "the run needs about %s of host memory%s, more than the %s of %s "
              "(lower --layers, --width, --block or --batch)", cli__size(host, need, sizeof need),
              device_is_host ? " (the backend runs on the host)" : "",
              cli__size(host_limit, have, sizeof have), host_what);
    return false;
  }
  double dev_limit = max_memory > 0 ? (double)max_memory : -1.0;
  const char *dev_what = "--max-memory";
  if (device_memory > 0 && (dev_limit < 0 || (double)device_memory < dev_limit)) {
    dev_limit = (double)device_memory;
    dev_what = "the device's memory";
  }
  if (!device_is_host && dev_limit > 0 && b->device > dev_limit) {
    char need[48], have[48];
    cli_error(cmd, CLI_FAIL, "the run needs about %s of device memory, more than the %s of "
              "%s (lower --layers, --width, --block or --batch)",
              cli__size(b->device, need, sizeof need), cli__size(dev_limit, have, sizeof have),
              dev_what);
    return false;
  }
  return true;
}
