/* SPDX-License-Identifier: MIT */
/* Training checkpoints: a safetensors file with the GPT parameters, the AdamW
 * moments and, in its metadata, everything else a resumed run needs. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"

#define CLI__FORMAT "ctml-gpt-checkpoint-1"

/* The checkpoint file of a path that is a run directory or a file (malloc'd; NULL: no memory). */
static char *cli__checkpoint_path(const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return cli_path_join(path, CLI_CHECKPOINT_FILE);
  return cli_strcat_alloc(path, NULL, NULL);
}

/* data.path holds the training text's path when it is UTF-8 (safetensors
 * metadata is UTF-8); any other path is stored as data.path.hex, its bytes in
 * hex, beside a data.path with '?' for the bytes that are not UTF-8. */
static char *cli__hex(const char *s) {
  size_t n = strlen(s);
  char *h = malloc(2 * n + 1);
  if (!h) return NULL;
  for (size_t i = 0; i < n; i++) snprintf(h + 2 * i, 3, "%02x", (unsigned char)s[i]);
  h[2 * n] = '\0';
  return h;
}

static char *cli__unhex(const char *h) {
  size_t n = strlen(h);
  if (n % 2) return NULL;
  char *s = malloc(n / 2 + 1);
  if (!s) return NULL;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned b;
    if (sscanf(h + 2 * i, "%2x", &b) != 1 || b == 0) {
      free(s);
      return NULL;
    }
    s[i] = (char)b;
  }
  s[n / 2] = '\0';
  return s;
}

/* s with every byte that is not ASCII replaced by '?' (malloc'd). */
static char *cli__ascii(const char *s) {
  char *a = cli_strcat_alloc(s, NULL, NULL);
  for (char *p = a; p && *p; p++)
    if ((unsigned char)*p >= 0x80) *p = '?';
  return a;
}

/* ---- metadata ------------------------------------------------------------------ */

#define CLI__META_MAX 40
typedef struct cli__meta {
  ct_st_meta kv[CLI__META_MAX];
  char val[CLI__META_MAX][600];
  int n;
} cli__meta;

static void cli__put(cli__meta *m, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void cli__put(cli__meta *m, const char *key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->val[m->n], sizeof m->val[m->n], fmt, ap);
  va_end(ap);
  m->kv[m->n].key = key;
  m->kv[m->n].value = m->val[m->n];
  m->n++;
}

static void cli__meta_fill(cli__meta *m, const cli_checkpoint *ck) {
  const cli_config *c = &ck->cfg;
  m->n = 0;
  cli__put(m, "format", "%s", CLI__FORMAT);
  cli__put(m, "ctml.version", "%s", ct_version());
  cli__put(m, "config.name", "%s", c->name);
  cli__put(m, "config.vocab", "%lld", (long long)c->model.vocab);
  cli__put(m, "config.block", "%lld", (long long)c->model.block);
  cli__put(m, "config.layers", "%lld", (long long)c->model.layers);
  cli__put(m, "config.heads", "%lld", (long long)c->model.heads);
  cli__put(m, "config.width", "%lld", (long long)c->model.width);
  cli__put(m, "train.batch", "%lld", (long long)c->batch);
  cli__put(m, "train.steps", "%ld", c->steps);
  cli__put(m, "train.lr", "%.9g", (double)c->lr);
  cli__put(m, "train.min_lr", "%.9g", (double)c->min_lr);
  cli__put(m, "train.weight_decay", "%.9g", (double)c->weight_decay);
  cli__put(m, "train.clip", "%.9g", (double)c->clip);
  cli__put(m, "train.beta1", "%.9g", (double)c->beta1);
  cli__put(m, "train.beta2", "%.9g", (double)c->beta2);
  cli__put(m, "train.warmup", "%ld", c->warmup);
  cli__put(m, "train.eval_every", "%ld", c->eval_every);
  cli__put(m, "train.eval_batches", "%ld", c->eval_batches);
  cli__put(m, "train.save_every", "%ld", c->save_every);
  cli__put(m, "train.seed", "%" PRIu64, c->seed);
  cli__put(m, "optimizer", "adamw");
  char hex[513];
  for (int i = 0; i < ck->vocab.size; i++) snprintf(hex + 2 * i, 3, "%02x", ck->vocab.byte_of[i]);
  hex[2 * ck->vocab.size] = '\0';
  cli__put(m, "vocab", "%s", hex);
  cli__put(m, "step", "%ld", ck->step);
  cli__put(m, "rng", "%" PRIu64, ck->rng);
  cli__put(m, "data.fnv1a", "%016" PRIx64, ck->data_hash);
  cli__put(m, "data.bytes", "%lld", (long long)ck->data_bytes);
}

/* A required metadata value; prints naming the key when absent. */
static const char *cli__get(const char *cmd, const char *file, const ct_safetensors *f,
                            const char *key) {
  const char *v = ct_safetensors_meta(f, key);
  if (!v) cli_error(cmd, CLI_FAIL, "%s: not a ctml checkpoint: metadata '%s' is missing", file, key);
  return v;
}

static bool cli__get_u64(const char *cmd, const char *file, const ct_safetensors *f,
                         const char *key, int base, uint64_t max, uint64_t *out) {
  const char *v = cli__get(cmd, file, f, key);
  if (!v) return false;
  char *end = NULL;
  errno = 0;
  unsigned long long x = strtoull(v, &end, base);
  if (!*v || *end || errno || v[0] == '-' || x > max) {
    cli_error(cmd, CLI_FAIL, "%s: metadata '%s' = '%.40s' is not a valid value", file, key, v);
    return false;
  }
  *out = x;
  return true;
}

static bool cli__get_float(const char *cmd, const char *file, const ct_safetensors *f,
                           const char *key, float *out) {
  const char *v = cli__get(cmd, file, f, key);
  if (!v) return false;
  char *end = NULL;
  float x = strtof(v, &end);
  if (!*v || *end || !(x >= 0.0f && x < 1e9f)) {
    cli_error(cmd, CLI_FAIL, "%s: metadata '%s' = '%.40s' is not a valid number", file, key, v);
    return false;
  }
  *out = x;
  return true;
}

bool cli_checkpoint_load(const char *cmd, const char *path, cli_checkpoint *ck) {
  memset(ck, 0, sizeof *ck);
  char *file = cli__checkpoint_path(path);
  if (!file) {
    cli_error(cmd, CLI_FAIL, "out of host memory");
    return false;
  }
  if (ct_safetensors_read(&ck->file, file) != CT_OK) {
    cli_error(cmd, CLI_FAIL, "cannot load checkpoint: %s", ct_last_error());
    free(file);
    return false;
  }
  const ct_safetensors *f = ck->file;
  const char *fmt = cli__get(cmd, file, f, "format");
  if (!fmt) goto fail;
  if (strcmp(fmt, CLI__FORMAT)) {
    cli_error(cmd, CLI_FAIL, "%s: checkpoint format '%.60s' is not '%s'", file, fmt, CLI__FORMAT);
    goto fail;
  }
  cli_config *c = &ck->cfg;
  const char *name = cli__get(cmd, file, f, "config.name");
  if (!name) goto fail;
  snprintf(c->name, sizeof c->name, "%s", name);
  uint64_t v[14];
  static const char *const keys[14] = {
      "config.vocab",  "config.block", "config.layers", "config.heads",     "config.width",
      "train.batch",   "train.steps",  "train.warmup",  "train.eval_every", "train.eval_batches",
      "train.save_every", "step",      "data.bytes",    "train.seed"};
  for (int k = 0; k < 14; k++)
    if (!cli__get_u64(cmd, file, f, keys[k], 10, k == 13 ? UINT64_MAX : (1ull << 40), &v[k]))
      goto fail;
  c->model = (ct_gpt_config){(int64_t)v[0], (int64_t)v[1], (int64_t)v[2], (int64_t)v[3],
                             (int64_t)v[4]};
  c->batch = (int64_t)v[5];
  c->steps = (long)v[6];
  c->warmup = (long)v[7];
  c->eval_every = (long)v[8];
  c->eval_batches = (long)v[9];
  c->save_every = (long)v[10];
  ck->step = (long)v[11];
  ck->data_bytes = (int64_t)v[12];
  c->seed = v[13];
  if (!cli__get_u64(cmd, file, f, "rng", 10, UINT64_MAX, &ck->rng) ||
      !cli__get_u64(cmd, file, f, "data.fnv1a", 16, UINT64_MAX, &ck->data_hash) ||
      !cli__get_float(cmd, file, f, "train.lr", &c->lr) ||
      !cli__get_float(cmd, file, f, "train.min_lr", &c->min_lr) ||
      !cli__get_float(cmd, file, f, "train.weight_decay", &c->weight_decay) ||
      !cli__get_float(cmd, file, f, "train.clip", &c->clip) ||
      !cli__get_float(cmd, file, f, "train.beta1", &c->beta1) ||
      !cli__get_float(cmd, file, f, "train.beta2", &c->beta2))
    goto fail;
  const char *dpath = ct_safetensors_meta(f, "data.path"),
             *dhex = ct_safetensors_meta(f, "data.path.hex");
  ck->data_path = dhex ? cli__unhex(dhex) : cli_strcat_alloc(dpath ? dpath : "", NULL, NULL);
  if (!ck->data_path) {
    cli_error(cmd, CLI_FAIL, "%s: metadata 'data.path.hex' is not the hex of a path", file);
    goto fail;
  }
  const char *hex = cli__get(cmd, file, f, "vocab");
  if (!hex) goto fail;
  size_t len = strlen(hex);
  uint8_t bytes[256];
  if (len == 0 || len % 2 || len > 512) {
    cli_error(cmd, CLI_FAIL, "%s: metadata 'vocab' has %zu hex digits (need 2 to 512, even)", file,
              len);
    goto fail;
  }
  for (size_t i = 0; i < len / 2; i++) {
    unsigned b;
    if (sscanf(hex + 2 * i, "%2x", &b) != 1) {
      cli_error(cmd, CLI_FAIL, "%s: metadata 'vocab' is not hex at digit %zu", file, 2 * i);
      goto fail;
    }
    bytes[i] = (uint8_t)b;
  }
  if (ct_vocab_from_bytes(&ck->vocab, bytes, (int)(len / 2)) != CT_OK) {
    cli_error(cmd, CLI_FAIL, "%s: metadata 'vocab': %s", file, ct_last_error());
    goto fail;
  }
  if (ck->vocab.size != c->model.vocab) {
    cli_error(cmd, CLI_FAIL, "%s: the vocabulary has %d bytes but config.vocab is %lld", file,
              ck->vocab.size, (long long)c->model.vocab);
    goto fail;
  }
  /* every parameter of the config, with its shape */
  ct_gpt *g = NULL;
  if (ct_gpt_new(&g, &c->model, 0) != CT_OK) {
    cli_error(cmd, CLI_FAIL, "%s: the stored config is not a valid GPT: %s", file, ct_last_error());
    goto fail;
  }
  bool ok = cli_checkpoint_params(cmd, ck, g);
  ct_gpt_free(g);
  if (!ok) goto fail;
  free(file);
  return true;
fail:
  free(file);
  cli_checkpoint_free(ck);
  return false;
}

void cli_checkpoint_free(cli_checkpoint *ck) {
  if (!ck) return;
  ct_safetensors_free(ck->file);
  ck->file = NULL;
  free(ck->data_path);
  ck->data_path = NULL;
}

/* Tensor name of a parameter's moment ("optim.m.<name>"). */
static void cli__moment_name(char *out, size_t len, char which, const ct_param *p) {
  snprintf(out, len, "optim.%c.%s", which, ct_param_name(p));
}

/* The tensor called name, checked against the shape of p. */
static const float *cli__tensor_like(const char *cmd, const cli_checkpoint *ck, const char *name,
                                     const ct_param *p) {
  int rank = 0;
  int64_t dims[CT_MAX_RANK];
  const float *data = NULL;
  if (ct_safetensors_get(ck->file, name, &rank, dims, &data) != CT_OK) {
    cli_error(cmd, CLI_FAIL, "%s", ct_last_error());
    return NULL;
  }
  const ct_object *o = ct_param_object(p);
  bool same = rank == o->rank;
  for (int d = 0; same && d < rank; d++) same = dims[d] == o->dims[d];
  if (!same) {
    char want[96], got[96] = "[";
    for (int d = 0; d < rank; d++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "",
               (long long)dims[d]);
    strcat(got, "]");
    cli_error(cmd, CLI_FAIL, "checkpoint tensor '%s' has shape %s, the config needs %s (a "
              "checkpoint of another config?)", name, got, ct_object_str(o, want, sizeof want));
    return NULL;
  }
  return data;
}

bool cli_checkpoint_params(const char *cmd, const cli_checkpoint *ck, ct_gpt *g) {
  for (int i = 0; i < ct_gpt_param_count(g); i++) {
    ct_param *p = ct_gpt_param(g, i);
    const float *data = cli__tensor_like(cmd, ck, ct_param_name(p), p);
    if (!data) return false;
    if (ct_param_set(p, data, ct_param_numel(p)) != CT_OK) {
      cli_error(cmd, CLI_FAIL, "checkpoint tensor '%s': %s", ct_param_name(p), ct_last_error());
      return false;
    }
  }
  return true;
}

bool cli_checkpoint_optimizer(const char *cmd, const cli_checkpoint *ck, const ct_gpt *g,
                              ct_trainer *t) {
  float *buf = NULL;
  size_t cap = 0;
  bool ok = true;
  for (int i = 0; ok && i < ct_gpt_param_count(g); i++) {
    const ct_param *p = ct_gpt_param(g, i);
    int64_t n = ct_param_numel(p), size = 0;
    if (ct_trainer_state_size(t, p, &size) != CT_OK || size != 2 * n) {
      cli_error(cmd, CLI_FAIL, "the trainer keeps %lld state floats for '%s', not AdamW's %lld",
                (long long)size, ct_param_name(p), (long long)(2 * n));
      ok = false;
      break;
    }
    if ((size_t)size > cap) {
      free(buf);
      cap = (size_t)size;
      buf = malloc(cap * sizeof *buf);
      if (!buf) {
        ok = false;
        cli_error(cmd, CLI_FAIL, "out of host memory");
        break;
      }
    }
    char name[128];
    for (int w = 0; ok && w < 2; w++) {
      cli__moment_name(name, sizeof name, w ? 'v' : 'm', p);
      const float *d = cli__tensor_like(cmd, ck, name, p);
      if (!d) ok = false;
      else memcpy(buf + w * n, d, (size_t)n * sizeof *buf);
    }
    if (ok && ct_trainer_set_state(t, p, buf, size) != CT_OK) {
      cli_error(cmd, CLI_FAIL, "checkpoint moments of '%s': %s", ct_param_name(p), ct_last_error());
      ok = false;
    }
  }
  free(buf);
  if (ok && ct_trainer_set_steps(t, ck->step) != CT_OK) {
    cli_lib_error(cmd, "checkpoint step");
    ok = false;
  }
  return ok;
}

bool cli_checkpoint_save(const char *cmd, const char *dir, const cli_checkpoint *ck,
                         const ct_gpt *g, ct_trainer *t) {
  int np = ct_gpt_param_count(g);
  ct_st_tensor *ts = calloc((size_t)np * 3, sizeof *ts);
  float **bufs = calloc((size_t)np * 3, sizeof *bufs);
  char (*names)[128] = calloc((size_t)np * 2, sizeof *names);
  cli__meta *meta = malloc(sizeof *meta);
  bool ok = ts && bufs && names && meta;
  if (!ok) cli_error(cmd, CLI_FAIL, "checkpoint: out of host memory");
  int nt = 0;
  for (int i = 0; ok && i < np; i++) {
    const ct_param *p = ct_gpt_param(g, i);
    const ct_object *o = ct_param_object(p);
    int64_t n = ct_param_numel(p);
    float *v = malloc((size_t)n * sizeof *v), *mv = malloc((size_t)n * 2 * sizeof *mv);
    bufs[3 * i] = v;
    bufs[3 * i + 1] = mv;
    if (!v || !mv) {
      cli_error(cmd, CLI_FAIL, "checkpoint: out of host memory");
      ok = false;
      break;
    }
    if (ct_param_get(p, v, n) != CT_OK || ct_trainer_get_state(t, p, mv, 2 * n) != CT_OK) {
      cli_lib_error(cmd, "checkpoint");
      ok = false;
      break;
    }
    ct_st_tensor base = {ct_param_name(p), o->rank, {0}, v};
    memcpy(base.dims, o->dims, sizeof base.dims);
    ts[nt++] = base;
    for (int w = 0; w < 2; w++) {
      cli__moment_name(names[2 * i + w], sizeof names[0], w ? 'v' : 'm', p);
      base.name = names[2 * i + w];
      base.data = mv + w * n;
      ts[nt++] = base;
    }
  }
  char *file = NULL, *dpath = NULL, *dhex = NULL;
  if (ok) {
    cli__meta_fill(meta, ck);
    const char *dp = ck->data_path ? ck->data_path : "";
    bool utf8 = cli_utf8_valid(dp);
    file = cli_path_join(dir, CLI_CHECKPOINT_FILE);
    dpath = utf8 ? cli_strcat_alloc(dp, NULL, NULL) : cli__ascii(dp);
    dhex = utf8 ? NULL : cli__hex(dp);
    if (!file || !dpath || (!utf8 && !dhex)) {
      cli_error(cmd, CLI_FAIL, "checkpoint: out of host memory");
      ok = false;
    } else {
      meta->kv[meta->n++] = (ct_st_meta){"data.path", dpath};
      if (dhex) meta->kv[meta->n++] = (ct_st_meta){"data.path.hex", dhex};
    }
  }
  if (ok) {
    if (ct_safetensors_write(file, ts, nt, meta->kv, meta->n) != CT_OK) {
      cli_error(cmd, CLI_FAIL, "checkpoint not saved (the previous one, if any, is intact): %s",
                ct_last_error());
      ok = false;
    }
  }
  for (int i = 0; bufs && i < np * 3; i++) free(bufs[i]);
  free(bufs);
  free(ts);
  free(names);
  free(meta);
  free(file);
  free(dpath);
  free(dhex);
  return ok;
}
