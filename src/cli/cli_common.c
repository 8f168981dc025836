/* SPDX-License-Identifier: MIT */
/* Shared pieces of the ctml commands: errors, option parsing, configs, backends. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"

int cli_error(const char *cmd, int code, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* one line: multi-line library messages (build logs) are folded */
  for (char *c = msg; *c; c++)
    if (*c == '\n' || *c == '\r') *c = ' ';
  fprintf(stderr, "ctml %s: %s\n", cmd, msg);
  return code;
}

int cli_lib_error(const char *cmd, const char *what) {
  return cli_error(cmd, CLI_FAIL, "%s: %s", what, ct_last_error());
}

/* The presets: model (vocab set from the data), batch, schedule, evaluation, saving. */
static const struct {
  const char *name;
  ct_gpt_config model;
  int64_t batch;
  long steps;
  float lr, min_lr;
  long warmup, eval_every, eval_batches, save_every;
} cli__presets[] = {
    /* three minutes on the OpenCL fallback of 2 CPU cores; learns words */
    {"tiny", {0, 64, 4, 4, 128}, 16, 3000, 3e-3f, 3e-4f, 100, 500, 8, 1000},
    /* three minutes on the CPU reference (one core) */
    {"micro", {0, 64, 2, 4, 64}, 16, 1500, 3e-3f, 3e-4f, 100, 250, 8, 500},
    /* a GPU-sized model */
    {"small", {0, 256, 6, 6, 384}, 64, 5000, 1e-3f, 1e-4f, 200, 250, 20, 1000},
};

bool cli_config_preset(cli_config *c, const char *name) {
  memset(c, 0, sizeof *c);
  for (size_t k = 0; k < sizeof cli__presets / sizeof cli__presets[0]; k++) {
    if (strcmp(name, cli__presets[k].name)) continue;
    c->model = cli__presets[k].model;
    c->batch = cli__presets[k].batch;
    c->steps = cli__presets[k].steps;
    c->lr = cli__presets[k].lr;
    c->min_lr = cli__presets[k].min_lr;
    c->warmup = cli__presets[k].warmup;
    c->eval_every = cli__presets[k].eval_every;
    c->eval_batches = cli__presets[k].eval_batches;
    c->save_every = cli__presets[k].save_every;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->weight_decay = 0.1f;
    c->clip = 1.0f;
    c->beta1 = 0.9f;
    c->beta2 = 0.99f;
    c->seed = 1337;
    return true;
  }
  return false;
}

bool cli_config_named(cli_config *c, const char *cmd, const char *name) {
  if (cli_config_preset(c, name ? name : "tiny")) return true;
  cli_error(cmd, CLI_USAGE, "--config: unknown preset '%s' (tiny, micro, small)", name);
  return false;
}

int cli_config_from_args(cli_config *c, const char *cmd, int argc, char **argv,
                         const char **preset) {
  *preset = NULL;
  for (int i = 0; i < argc; i++)
    if (cli_opt(cmd, argc, argv, &i, "--config", preset) < 0) return CLI_USAGE;
  return cli_config_named(c, cmd, *preset) ? CLI_OK : CLI_USAGE;
}

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bool cli_parse_long(const char *cmd, const char *flag, const char *s, long lo, long hi,
                    long *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (!*s || end == s || *end) {
    cli_error(cmd, CLI_USAGE, "%s: '%s' is not an integer", flag, s);
    return false;
  }
  if (errno == ERANGE || v < lo || v > hi) {
    cli_error(cmd, CLI_USAGE, "%s: %s is out of range [%ld, %ld]", flag, s, lo, hi);
    return false;
  }
  *out = v;
  return true;
}

bool cli_parse_u64(const char *cmd, const char *flag, const char *s, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  const char *digits = s + strspn(s, " \t");
  unsigned long long v = strtoull(s, &end, 10);
  if (!*s || end == s || *end || (*digits != '-' && *digits != '+' && (*digits < '0' || *digits > '9'))) {
    cli_error(cmd, CLI_USAGE, "%s: '%s' is not an integer", flag, s);
    return false;
  }
  if (errno == ERANGE || *digits == '-') {
    cli_error(cmd, CLI_USAGE, "%s: %s is out of range [0, 2^64-1 = 18446744073709551615]", flag, s);
    return false;
  }
  *out = (uint64_t)v;
  return true;
}

bool cli_parse_float(const char *cmd, const char *flag, const char *s, float lo, float hi,
                     float *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end); /* in double: what float cannot hold is out of range */
  if (!*s || end == s || *end || isnan(v)) {
    cli_error(cmd, CLI_USAGE, "%s: '%s' is not a number", flag, s);
    return false;
  }
  if (v < lo || v > hi || (errno == ERANGE && v != 0.0)) {
    cli_error(cmd, CLI_USAGE, "%s: %s is out of range [%g, %g]", flag, s, (double)lo, (double)hi);
    return false;
  }
  if (v != 0.0 && fabs(v) < FLT_MIN) { /* below float's normal range */
    cli_error(cmd, CLI_USAGE, "%s: %s is out of range [%g, %g]: a nonzero value below %g in "
              "size does not fit a float", flag, s, (double)lo, (double)hi, (double)FLT_MIN);
    return false;
  }
  *out = (float)v;
  return true;
}

int cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name, const char **value) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, n) != 0) return 0;
  if (a[n] == '=') {
    *value = a + n + 1;
    return 1;
  }
  if (a[n] != '\0') return 0;
  if (*i + 1 >= argc) {
    cli_error(cmd, CLI_USAGE, "%s needs a value", name);
    return -1;
  }
  *value = argv[++*i];
  return 1;
}

bool cli_flag_is(const char *a, const char *flag) {
  size_t n = strlen(flag);
  return !strncmp(a, flag, n) && (a[n] == '\0' || a[n] == '=');
}

bool cli_backend_known(const char *cmd, const char *name, bool allow_all) {
  int i;
  if (!strcmp(name, allow_all ? "all" : "auto") || ct_backend_index(name, &i) == CT_OK)
    return true;
  cli_error(cmd, CLI_USAGE, "--backend: unknown backend '%s' (%s, cpu, cuda, opencl)", name,
            allow_all ? "all" : "auto");
  return false;
}

const char *cli_s(long long n) { return n == 1 ? "" : "s"; }

void cli_config_rename(cli_config *c, char base[32]) {
  cli_config p;
  const char *from = strstr(c->name, "(from ");
  snprintf(base, 32, "%s", from ? from + 6 : c->name);
  base[strcspn(base, ")")] = '\0';
  if (!cli_config_preset(&p, base)) return;
  if (p.model.layers == c->model.layers && p.model.heads == c->model.heads &&
      p.model.width == c->model.width && p.model.block == c->model.block) {
    snprintf(c->name, sizeof c->name, "%s", base);
    return;
  }
  snprintf(c->name, sizeof c->name, "custom (from %s)", base);
}

void cli_env_usage(FILE *f, bool fortunes) {
  fprintf(f,
          "environment:\n"
          "  CTML_CUDA_DEVICE      cuda: the device index (default 0)\n"
          "  CTML_OPENCL_PLATFORM  opencl: the platform, an index or a case-insensitive\n"
          "                        name substring ('Portable', 'Intel')\n"
          "  CTML_OPENCL_DEVICE    opencl: the device, an index among the selected platforms'\n"
          "                        devices or a name substring; without either the first\n"
          "                        GPU, else the first CPU device\n"
          "  CTML_OPENCL_GEMM      opencl: matrix products 'register' (blocked in registers)\n"
          "                        or 'local' (tiled in local memory); default by device type\n"
          "  CTML_OPENCL_CACHE     opencl: the compiled-program cache directory (default\n"
          "                        $XDG_CACHE_HOME/ctml/opencl, else ~/.cache/ctml/opencl)\n");
  if (fortunes)
    fprintf(f, "  CTML_FORTUNES_DIR     the default corpus without --data (default "
            "/usr/share/games/fortunes)\n");
}

int cli_cuda_flags(const char *cmd, const ct_backend *be, bool tf32, bool graph) {
  if (!tf32 && !graph) return CLI_OK;
  if (strcmp(ct_backend_name(be), "cuda"))
    return cli_error(cmd, CLI_USAGE, "%s applies to the cuda backend only (the backend is %s)",
                     tf32 ? "--tf32" : "--graph", ct_backend_name(be));
  if (tf32 && ct_backend_set_option("cuda", "tf32", "on") != CT_OK)
    return cli_lib_error(cmd, "--tf32");
  return CLI_OK;
}

/* The config fields: flag, checkpoint metadata key, kind and range. One table
 * serves the flags and the checkpoint loader, so a checkpoint can hold only
 * values a flag could have set. */
enum { CLI__LONG, CLI__INT64, CLI__FLOAT, CLI__U64 };
typedef struct cli__field {
  const char *flag; /* NULL: set from the data, not by a flag */
  const char *key;  /* metadata key */
  size_t offset;
  int kind;
  bool model; /* part of the architecture (config.*) */
  double lo, hi;
} cli__field;

#define CLI__M(flag, key, field, lo, hi) {flag, key, offsetof(cli_config, field), CLI__INT64, true, lo, hi}
#define CLI__I(flag, key, field, lo, hi) {flag, key, offsetof(cli_config, field), CLI__INT64, false, lo, hi}
#define CLI__L(flag, key, field, lo, hi) {flag, key, offsetof(cli_config, field), CLI__LONG, false, lo, hi}
#define CLI__F(flag, key, field, lo, hi) {flag, key, offsetof(cli_config, field), CLI__FLOAT, false, lo, hi}
static const cli__field cli__fields[] = {
    CLI__M(NULL, "config.vocab", model.vocab, 1, 256),
    CLI__M("--layers", "config.layers", model.layers, 1, 64),
    CLI__M("--heads", "config.heads", model.heads, 1, 64),
    CLI__M("--width", "config.width", model.width, 1, 8192),
    CLI__M("--block", "config.block", model.block, 1, 8192),
    CLI__I("--batch", "train.batch", batch, 1, 65536),
    CLI__L("--steps", "train.steps", steps, 1, (1L << 24) - 1),
    CLI__L("--warmup", "train.warmup", warmup, 0, (1L << 24) - 2),
    CLI__L("--eval-every", "train.eval_every", eval_every, 1, 1L << 24),
    CLI__L("--eval-batches", "train.eval_batches", eval_batches, 1, 100000),
    CLI__L("--save-every", "train.save_every", save_every, 0, 1L << 24),
    CLI__F("--lr", "train.lr", lr, 1e-12f, 10.0f),
    CLI__F("--min-lr", "train.min_lr", min_lr, 0.0f, 10.0f),
    CLI__F("--weight-decay", "train.weight_decay", weight_decay, 0.0f, 10.0f),
    CLI__F("--clip", "train.clip", clip, 0.0f, 1e9f),
    CLI__F("--beta1", "train.beta1", beta1, 0.0f, 0.999999f),
    CLI__F("--beta2", "train.beta2", beta2, 0.0f, 0.999999f),
    {"--seed", "train.seed", offsetof(cli_config, seed), CLI__U64, false, 0, 0},
};
#define CLI__N_FIELDS (sizeof cli__fields / sizeof *cli__fields)

static const cli__field *cli__field_of_flag(const char *flag) {
  for (size_t k = 0; k < CLI__N_FIELDS; k++)
    if (cli__fields[k].flag && !strcmp(flag, cli__fields[k].flag)) return &cli__fields[k];
  return NULL;
}

static void cli__field_set(cli_config *c, const cli__field *f, double v, uint64_t u) {
  char *at = (char *)c + f->offset;
  switch (f->kind) {
  case CLI__LONG: *(long *)at = (long)v; break;
  case CLI__INT64: *(int64_t *)at = (int64_t)v; break;
  case CLI__FLOAT: *(float *)at = (float)v; break;
  default: *(uint64_t *)at = u; break;
  }
}

int cli_config_flag(cli_config *c, const char *cmd, const char *flag, const char *value) {
  const cli__field *f = cli__field_of_flag(flag);
  if (!f) return 0;
  if (f->kind == CLI__U64) {
    uint64_t u;
    if (!cli_parse_u64(cmd, flag, value, &u)) return -1;
    cli__field_set(c, f, 0, u);
    return 1;
  }
  if (f->kind == CLI__FLOAT) {
    float v;
    if (!cli_parse_float(cmd, flag, value, (float)f->lo, (float)f->hi, &v)) return -1;
    cli__field_set(c, f, v, 0);
    return 1;
  }
  long v;
  if (!cli_parse_long(cmd, flag, value, (long)f->lo, (long)f->hi, &v)) return -1;
  cli__field_set(c, f, (double)v, 0);
  return 1;
}

static bool cli__is_config_flag(const char *flag) { return cli__field_of_flag(flag) != NULL; }

bool cli_config_is_model_flag(const char *flag) {
  const cli__field *f = cli__field_of_flag(flag);
  return f && f->model;
}

/* The range of field f as text: "[1, 8192] (the range of --width)". */
static void cli__range_str(const cli__field *f, char *out, size_t n) {
  if (f->kind == CLI__FLOAT)
    snprintf(out, n, "[%g, %g]", f->lo, f->hi);
  else
    snprintf(out, n, "[%.0f, %.0f]", f->lo, f->hi);
  if (f->flag) snprintf(out + strlen(out), n - strlen(out), " (the range of %s)", f->flag);
}

/* Parses one value of field f; prints naming src and label (a key) when bad. */
static bool cli__field_parse(cli_config *c, const cli__field *f, const char *cmd, const char *src,
                             const char *label, const char *v) {
  char *end = NULL, range[96];
  errno = 0;
  if (f->kind == CLI__U64) {
    unsigned long long u = strtoull(v, &end, 10);
    if (!*v || *end || errno || v[0] == '-') {
      cli_error(cmd, CLI_FAIL, "%s: %s = '%.40s' is not an integer in [0, 2^64)", src, label, v);
      return false;
    }
    cli__field_set(c, f, 0, u);
    return true;
  }
  double x = f->kind == CLI__FLOAT ? strtod(v, &end) : (double)strtoll(v, &end, 10);
  cli__range_str(f, range, sizeof range);
  if (!*v || *end || errno == EINVAL || !isfinite(x)) {
    cli_error(cmd, CLI_FAIL, "%s: %s = '%.40s' is not %s in %s", src, label, v,
              f->kind == CLI__FLOAT ? "a finite number" : "an integer", range);
    return false;
  }
  if (errno == ERANGE || x < f->lo || x > f->hi) {
    cli_error(cmd, CLI_FAIL, "%s: %s = %.40s is outside %s", src, label, v, range);
    return false;
  }
  cli__field_set(c, f, x, 0);
  return true;
}

bool cli_config_from_meta(cli_config *c, const char *cmd, const char *file,
                          const ct_safetensors *f, bool train) {
  for (size_t k = 0; k < CLI__N_FIELDS; k++) {
    const cli__field *fd = &cli__fields[k];
    if (!fd->model && !train) continue;
    const char *v = ct_safetensors_meta(f, fd->key);
    char label[64];
    snprintf(label, sizeof label, "metadata '%s'", fd->key);
    if (!v) {
      cli_error(cmd, CLI_FAIL, "%s: metadata '%s' is missing", file, fd->key);
      return false;
    }
    if (!cli__field_parse(c, fd, cmd, file, label, v)) return false;
  }
  if (c->model.width % c->model.heads) {
    cli_error(cmd, CLI_FAIL, "%s: metadata 'config.heads' = %lld does not divide 'config.width' = "
              "%lld", file, (long long)c->model.heads, (long long)c->model.width);
    return false;
  }
  if (train && c->min_lr > c->lr) {
    cli_error(cmd, CLI_FAIL, "%s: metadata 'train.min_lr' = %g exceeds 'train.lr' = %g", file,
              (double)c->min_lr, (double)c->lr);
    return false;
  }
  if (train && c->warmup >= c->steps) {
    cli_error(cmd, CLI_FAIL, "%s: metadata 'train.warmup' = %ld must be below 'train.steps' = %ld",
              file, c->warmup, c->steps);
    return false;
  }
  return true;
}

bool cli_config_meta_item(const cli_config *c, int i, const char **key, char *value, size_t n) {
  if (i < 0 || (size_t)i >= CLI__N_FIELDS) return false;
  const cli__field *f = &cli__fields[i];
  const char *at = (const char *)c + f->offset;
  *key = f->key;
  switch (f->kind) {
  case CLI__LONG: snprintf(value, n, "%ld", *(const long *)at); break;
  case CLI__INT64: snprintf(value, n, "%lld", (long long)*(const int64_t *)at); break;
  case CLI__FLOAT: snprintf(value, n, "%.9g", (double)*(const float *)at); break;
  default: snprintf(value, n, "%llu", (unsigned long long)*(const uint64_t *)at); break;
  }
  return true;
}

bool cli_config_model_value(cli_config *c, const char *cmd, const char *src, const char *key,
                            const char *label, long long v) {
  for (size_t k = 0; k < CLI__N_FIELDS; k++) {
    const cli__field *fd = &cli__fields[k];
    if (!fd->model || strcmp(fd->key, key)) continue;
    char text[32];
    snprintf(text, sizeof text, "%lld", v);
    return cli__field_parse(c, fd, cmd, src, label, text);
  }
  cli_error(cmd, CLI_FAIL, "%s: %s: no model field '%s'", src, label, key);
  return false;
}

int cli_config_arg(cli_config *c, const char *cmd, int argc, char **argv, int *i,
                   char flag[32], const char **value) {
  const char *a = argv[*i], *eq = strchr(a, '=');
  size_t len = eq ? (size_t)(eq - a) : strlen(a);
  if (strncmp(a, "--", 2) || len >= 32) return 0;
  snprintf(flag, 32, "%.*s", (int)len, a);
  if (!cli__is_config_flag(flag)) return 0;
  const char *v = eq ? eq + 1 : (*i + 1 < argc ? argv[*i + 1] : NULL);
  if (!v) {
    cli_error(cmd, CLI_USAGE, "%s needs a value", flag);
    return -1;
  }
  int r = cli_config_flag(c, cmd, flag, v);
  if (r > 0) {
    *value = v;
    if (!eq) ++*i;
  }
  return r;
}

bool cli_config_check(const cli_config *c, const char *cmd) {
  if (c->model.width % c->model.heads != 0) {
    cli_error(cmd, CLI_USAGE, "--heads %lld does not divide --width %lld",
              (long long)c->model.heads, (long long)c->model.width);
    return false;
  }
  if (c->min_lr > c->lr) {
    cli_error(cmd, CLI_USAGE, "--min-lr %g exceeds --lr %g", (double)c->min_lr, (double)c->lr);
    return false;
  }
  if (c->warmup >= c->steps) {
    cli_error(cmd, CLI_USAGE, "--warmup %ld must be below --steps %ld", c->warmup, c->steps);
    return false;
  }
  return true;
}

ct_optimizer cli_config_optimizer(const cli_config *c) {
  ct_optimizer o;
  ct_optimizer_adamw(&o, c->lr);
  o.beta1 = c->beta1;
  o.beta2 = c->beta2;
  o.eps = 1e-8f;
  o.weight_decay = c->weight_decay;
  o.clip_norm = c->clip;
  o.warmup_steps = c->warmup;
  o.total_steps = c->steps;
  o.min_lr = c->min_lr;
  return o;
}

void cli_config_usage(FILE *f) {
  fprintf(f,
          "  model and training (override the preset):\n"
          "    --layers N --heads N --width N --block N   transformer shape\n"
          "    --batch N --steps N --seed N               sequences per step, steps, seed\n"
          "    --lr X --min-lr X --warmup N               AdamW rate, cosine floor, warmup steps\n"
          "    --weight-decay X --clip X --beta1 X --beta2 X\n"
          "    --eval-every N --eval-batches N            validation loss every N steps\n"
          "    --save-every N                             checkpoint every N steps (0: at the end)\n");
}

bool cli_selected_device(int i, ct_device_info *out) {
  ct_device_info dev[16];
  int n = 0;
  if (ct_backend_devices(i, dev, 16, &n) != CT_OK) return false;
  for (int k = 0; k < n && k < 16; k++)
    if (dev[k].selected) {
      *out = dev[k];
      return true;
    }
  return false;
}

bool cli_pick_backend(const char *cmd, const char *name, const ct_backend **out, char *why,
                      size_t why_len) {
  if (strcmp(name, "auto") != 0) {
    if (ct_backend_get(name, out) != CT_OK) {
      cli_lib_error(cmd, "--backend");
      return false;
    }
    ct_backend_info info;
    int i = -1;
    if (ct_backend_index(name, &i) == CT_OK && ct_backend_info_get(i, &info) == CT_OK)
      snprintf(why, why_len, "asked for with --backend %s; device: %s", name, info.device);
    return true;
  }
  /* auto: CUDA, then OpenCL on a GPU, then OpenCL on a CPU device, then the CPU reference */
  char skipped[1024] = "";
  size_t used = 0;
  static const struct {
    const char *name;
    bool need_gpu;
  } order[3] = {{"cuda", true}, {"opencl", true}, {"opencl", false}};
  for (int o = 0; o < 3; o++) {
    int i = -1;
    if (ct_backend_index(order[o].name, &i) != CT_OK) continue;
    ct_backend_info info;
    if (ct_backend_info_get(i, &info) != CT_OK) continue;
    ct_device_info dev;
    const char *reason = NULL;
    char rbuf[256];
    bool gpu = info.present && cli_selected_device(i, &dev) && dev.gpu;
    if (!info.present) { /* the reason up to its first parenthesis: the rest is in 'ctml devices' */
      if (o == 2) continue; /* said once, at the GPU pass */
      snprintf(rbuf, sizeof rbuf, "%.200s", info.reason);
      char *paren = strstr(rbuf, " (");
      if (paren && paren - rbuf >= 20) *paren = '\0';
      reason = rbuf;
    } else if (order[o].need_gpu && !gpu) {
      if (o == 1) continue; /* OpenCL on a CPU device: the next pass takes it */
      snprintf(rbuf, sizeof rbuf, "its device is not a GPU (%.150s)", info.device);
      reason = rbuf;
    } else if (ct_backend_get(info.name, out) == CT_OK) {
      snprintf(why, why_len, "auto: %s is present %s %s%s%s", info.name,
               gpu ? "with a GPU," : "on a CPU device (no GPU backend; faster than the CPU "
                                     "reference),", info.device, skipped[0] ? "; " : "", skipped);
      return true;
    } else {
      snprintf(rbuf, sizeof rbuf, "%.200s", ct_last_error());
      reason = rbuf;
    }
    for (char *c = rbuf; *c; c++)
      if (*c == '\n') *c = ' ';
    if (used < sizeof skipped)
      used += (size_t)snprintf(skipped + used, sizeof skipped - used, "%s%s not used: %s",
                               used ? "; " : "", info.name, reason);
  }
  if (ct_backend_get("cpu", out) != CT_OK) {
    cli_lib_error(cmd, "backend cpu");
    return false;
  }
  snprintf(why, why_len, "auto: no GPU or OpenCL backend (%s), so the CPU reference",
           skipped[0] ? skipped : "none built");
  return true;
}

const char *cli_rewrite_summary(const ct_plan *p, char *buf, size_t n) {
  int total = ct_plan_rewrite_count(p);
  if (total == 0) {
    snprintf(buf, n, "no rewrite matched");
    return buf;
  }
  size_t k = (size_t)snprintf(buf, n, "%d rewrite%s:", total, total == 1 ? "" : "s");
  bool first = true;
  for (int i = 0; i < total && k < n; i++) {
    const char *line = ct_plan_rewrite(p, i);
    size_t len = strcspn(line, " ");
    bool seen = false; /* each rule once, counted */
    for (int j = 0; j < i && !seen; j++)
      seen = !strncmp(ct_plan_rewrite(p, j), line, len) && ct_plan_rewrite(p, j)[len] == ' ';
    if (seen) continue;
    int count = 0;
    for (int j = i; j < total; j++)
      count += !strncmp(ct_plan_rewrite(p, j), line, len) && ct_plan_rewrite(p, j)[len] == ' ';
    k += (size_t)snprintf(buf + k, n - k, "%s %.*s x%d", first ? "" : ",", (int)len, line, count);
    first = false;
  }
  return buf;
}
