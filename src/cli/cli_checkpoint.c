/* SPDX-License-Identifier: MIT */
/* Training checkpoints: a safetensors file with the GPT parameters, the AdamW
 * moments and, in its metadata, everything else a resumed run needs. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"

#define CLI__FORMAT "ctml-gpt-checkpoint-1"
#define CLI__WEIGHTS_FORMAT "ctml-gpt-weights-1"

/* The file of a path (malloc'd; NULL: out of memory): a run directory's
 * checkpoint, a GPT-2 export directory's model.safetensors, or the path itself. */
static char *cli__checkpoint_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return cli_strcat_alloc(path, NULL, NULL);
  char *ck = cli_path_join(path, CLI_CHECKPOINT_FILE), *hf = NULL;
  if (ck && stat(ck, &st) != 0 && (hf = cli_path_join(path, "model.safetensors")) &&
      stat(hf, &st) == 0) {
    free(ck);
    return hf;
  }
  free(hf);
  return ck;
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
  const char *key;
  for (int i = 0; m->n < CLI__META_MAX && cli_config_meta_item(c, i, &key, m->val[m->n],
                                                               sizeof m->val[m->n]); i++) {
    m->kv[m->n].key = key;
    m->kv[m->n].value = m->val[m->n];
    m->n++;
  }
  cli__put(m, "optimizer", "adamw");
  char hex[513];
  for (int i = 0; i < ck->vocab.size; i++) snprintf(hex + 2 * i, 3, "%02x", ck->vocab.byte_of[i]);
  hex[2 * ck->vocab.size] = '\0';
  cli__put(m, "vocab", "%s", hex);
  cli__put(m, "step", "%ld", ck->step);
  cli__put(m, "rng", "%" PRIu64, ck->rng);
  cli__put(m, "world_size", "%d", ck->world_size > 1 ? ck->world_size : 1);
  cli__put(m, "data.fnv1a", "%016" PRIx64, ck->data_hash);
  cli__put(m, "data.bytes", "%lld", (long long)ck->data_bytes);
}

/* A required metadata value; prints naming the key when absent. */
static const char *cli__get(const char *cmd, const char *file, const ct_safetensors *f,
                            const char *key) {
  const char *v = ct_safetensors_meta(f, key);
  if (!v) cli_error(cmd, CLI_FAIL, "%s: metadata '%s' is missing", file, key);
  return v;
}

/* An integer metadata value in [0, max] (base 10 or 16). */
static bool cli__get_u64(const char *cmd, const char *file, const ct_safetensors *f,
                         const char *key, int base, uint64_t max, uint64_t *out) {
  const char *v = cli__get(cmd, file, f, key);
  if (!v) return false;
  char *end = NULL;
  errno = 0;
  unsigned long long x = strtoull(v, &end, base);
  if (!*v || *end || errno || v[0] == '-' || x > max) {
    cli_error(cmd, CLI_FAIL, "%s: metadata '%s' = '%.40s' is not %s in [0, %llu]", file, key, v,
              base == 16 ? "a hex integer" : "an integer", (unsigned long long)max);
    return false;
  }
  *out = x;
  return true;
}

/* The vocabulary from hex digits (metadata 'vocab' or 'ctml.vocab'). */
bool cli_vocab_hex(const char *cmd, const char *file, const char *key, const char *hex,
                    ct_vocab *v) {
  size_t len = strlen(hex);
  uint8_t bytes[256];
  if (len == 0 || len % 2 || len > 512) {
    cli_error(cmd, CLI_FAIL, "%s: metadata '%s' has %zu hex digits (need 2 to 512, even)", file,
              key, len);
    return false;
  }
  for (size_t i = 0; i < len / 2; i++) {
    unsigned b;
    if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
        sscanf(hex + 2 * i, "%2x", &b) != 1) {
      cli_error(cmd, CLI_FAIL, "%s: metadata '%s' is not hex at digit %zu", file, key, 2 * i);
      return false;
    }
    bytes[i] = (uint8_t)b;
  }
  if (ct_vocab_from_bytes(v, bytes, (int)(len / 2)) != CT_OK) {
    cli_error(cmd, CLI_FAIL, "%s: metadata '%s': %s", file, key, ct_last_error());
    return false;
  }
  return true;
}

bool cli_param_spec(const ct_gpt_config *c, int i, char name[64], int *rank, int64_t dims[2]) {
  static const struct {
    const char *name;
    int rows, cols; /* in units of C (0: a vector) */
  } block[16] = {{"ln1.gain", 1, 0}, {"ln1.bias", 1, 0}, {"attn.wq", 1, 1}, {"attn.bq", 1, 0},
                 {"attn.wk", 1, 1},  {"attn.bk", 1, 0},  {"attn.wv", 1, 1}, {"attn.bv", 1, 0},
                 {"attn.wo", 1, 1},  {"attn.bo", 1, 0},  {"ln2.gain", 1, 0}, {"ln2.bias", 1, 0},
                 {"mlp.w1", 1, 4},   {"mlp.b1", 4, 0},   {"mlp.w2", 4, 1},   {"mlp.b2", 1, 0}};
  int64_t C = c->width, nb = 16 * c->layers;
  if (i < 0 || i >= 2 + nb + 3) return false;
  if (i < 2) {
    snprintf(name, 64, "%s", i ? "wpe" : "wte");
    *rank = 2;
    dims[0] = i ? c->block : c->vocab;
    dims[1] = C;
  } else if (i < 2 + nb) {
    int k = (i - 2) % 16;
    snprintf(name, 64, "h%d.%s", (i - 2) / 16, block[k].name);
    *rank = block[k].cols ? 2 : 1;
    dims[0] = block[k].rows * C;
    dims[1] = block[k].cols * C;
  } else {
    int k = i - 2 - (int)nb;
    snprintf(name, 64, "%s", k == 0 ? "lnf.gain" : k == 1 ? "lnf.bias" : "head.w");
    *rank = k == 2 ? 2 : 1;
    dims[0] = C;
    dims[1] = k == 2 ? c->vocab : 0;
  }
  return true;
}

/* A tensor of the checkpoint: converted ones first, then the file's. */
static bool cli__lookup(const cli_checkpoint *ck, const char *name, int *rank, int64_t *dims,
                        const float **data) {
  if (ck->own) {
    for (int i = 0; i < ck->n_own; i++)
      if (!strcmp(ck->own[i].name, name)) {
        *rank = ck->own[i].rank;
        dims[0] = ck->own[i].dims[0];
        dims[1] = ck->own[i].dims[1];
        *data = ck->own[i].data;
        return true;
      }
    return false;
  }
  return ck->file && ct_safetensors_get(ck->file, name, rank, dims, data) == CT_OK;
}

const float *cli_checkpoint_tensor(const cli_checkpoint *ck, const char *name) {
  int rank;
  int64_t dims[CT_MAX_RANK];
  const float *d = NULL;
  return cli__lookup(ck, name, &rank, dims, &d) ? d : NULL;
}

static void cli__shape_str(char *out, size_t n, int rank, const int64_t *dims) {
  size_t k = (size_t)snprintf(out, n, "[");
  for (int d = 0; d < rank && k < n; d++)
    k += (size_t)snprintf(out + k, n - k, "%s%lld", d ? "," : "", (long long)dims[d]);
  if (k < n) snprintf(out + k, n - k, "]");
}

/* Every parameter of the config (and, with moments, its two AdamW moments)
 * is present with its shape, and the file holds no other tensor: checked
 * before anything is built from the config. */
static bool cli__check_tensors(const char *cmd, const cli_checkpoint *ck, bool moments) {
  char name[64], full[96], want[64], got[64];
  int rank;
  int64_t dims[2];
  for (int i = 0; cli_param_spec(&ck->cfg.model, i, name, &rank, dims); i++) {
    for (int w = 0; w < (moments ? 3 : 1); w++) {
      snprintf(full, sizeof full, w == 0 ? "%s" : w == 1 ? "optim.m.%s" : "optim.v.%s", name);
      int r = 0;
      int64_t d[CT_MAX_RANK] = {0};
      const float *data = NULL;
      cli__shape_str(want, sizeof want, rank, dims);
      if (!cli__lookup(ck, full, &r, d, &data)) {
        cli_error(cmd, CLI_FAIL, "%s: tensor '%s' %s of the config is missing", ck->path, full,
                  want);
        return false;
      }
      bool same = r == rank && d[0] == dims[0] && (rank < 2 || d[1] == dims[1]);
      if (!same) {
        cli__shape_str(got, sizeof got, r, d);
        cli_error(cmd, CLI_FAIL, "%s: tensor '%s' has shape %s, the config (layers %lld, heads "
                  "%lld, width %lld, block %lld, vocab %lld) needs %s", ck->path, full, got,
                  (long long)ck->cfg.model.layers, (long long)ck->cfg.model.heads,
                  (long long)ck->cfg.model.width, (long long)ck->cfg.model.block,
                  (long long)ck->cfg.model.vocab, want);
        return false;
      }
    }
  }
  if (ck->own) return true;
  /* no tensor beyond the config's (a file of more layers than it says) */
  for (int i = 0; i < ct_safetensors_count(ck->file); i++) {
    const char *t = ct_safetensors_name(ck->file, i);
    const char *base = !strncmp(t, "optim.m.", 8) || !strncmp(t, "optim.v.", 8) ? t + 8 : t;
    bool known = false;
    for (int k = 0; !known && cli_param_spec(&ck->cfg.model, k, name, &rank, dims); k++)
      known = !strcmp(base, name);
    if (!known) {
      cli_error(cmd, CLI_FAIL, "%s: tensor '%s' is not a parameter of the config (layers %lld)",
                ck->path, t, (long long)ck->cfg.model.layers);
      return false;
    }
  }
  return true;
}

/* The keys of a training checkpoint beyond the config: step, rng, data. */
static bool cli__run_keys(const char *cmd, cli_checkpoint *ck) {
  const char *file = ck->path;
  const ct_safetensors *f = ck->file;
  uint64_t step, bytes;
  if (!cli__get_u64(cmd, file, f, "step", 10, (uint64_t)ck->cfg.steps, &step) ||
      !cli__get_u64(cmd, file, f, "data.bytes", 10, 1ull << 40, &bytes) ||
      !cli__get_u64(cmd, file, f, "rng", 10, UINT64_MAX, &ck->rng) ||
      !cli__get_u64(cmd, file, f, "data.fnv1a", 16, UINT64_MAX, &ck->data_hash))
    return false;
  ck->step = (long)step;
  ck->data_bytes = (int64_t)bytes;
  /* absent in checkpoints of one process written before data-parallel runs */
  uint64_t world = 1;
  if (ct_safetensors_meta(f, "world_size") &&
      !cli__get_u64(cmd, file, f, "world_size", 10, 1u << 20, &world))
    return false;
  ck->world_size = world > 0 ? (int)world : 1;
  const char *dpath = ct_safetensors_meta(f, "data.path"),
             *dhex = ct_safetensors_meta(f, "data.path.hex");
  ck->data_path = dhex ? cli__unhex(dhex) : cli_strcat_alloc(dpath ? dpath : "", NULL, NULL);
  if (!ck->data_path) {
    cli_error(cmd, CLI_FAIL, "%s: metadata 'data.path.hex' is not the hex of a path", file);
    return false;
  }
  return true;
}

bool cli_checkpoint_load(const char *cmd, const char *path, cli_checkpoint *ck) {
  memset(ck, 0, sizeof *ck);
  ck->path = cli__checkpoint_path(path);
  if (!ck->path) {
    cli_error(cmd, CLI_FAIL, "out of host memory");
    return false;
  }
  const char *file = ck->path;
  if (ct_safetensors_read(&ck->file, file) != CT_OK) {
    cli_error(cmd, CLI_FAIL, "cannot load checkpoint: %s", ct_last_error());
    cli_checkpoint_free(ck);
    return false;
  }
  const ct_safetensors *f = ck->file;
  const char *fmt = ct_safetensors_meta(f, "format");
  cli_config *c = &ck->cfg;
  /* a weights file may omit 'format' (written by hand from PyTorch) */
  bool run = fmt && !strcmp(fmt, CLI__FORMAT);
  bool weights = fmt ? !strcmp(fmt, CLI__WEIGHTS_FORMAT) : !!ct_safetensors_meta(f, "config.width");
  if (run || weights) {
    ck->kind = run ? CLI_CK_RUN : CLI_CK_WEIGHTS;
    if (!run) cli_config_preset(c, "tiny");
    const char *name = run ? cli__get(cmd, file, f, "config.name")
                           : ct_safetensors_meta(f, "config.name");
    if (run && !name) goto fail;
    snprintf(c->name, sizeof c->name, "%s", name ? name : "weights");
    if (!cli_config_from_meta(c, cmd, file, f, run)) goto fail;
    if (run && !cli__run_keys(cmd, ck)) goto fail;
    const char *hex = cli__get(cmd, file, f, "vocab");
    if (!hex || !cli_vocab_hex(cmd, file, "vocab", hex, &ck->vocab)) goto fail;
    if (ck->vocab.size != c->model.vocab) {
      cli_error(cmd, CLI_FAIL, "%s: metadata 'vocab' has %d bytes but 'config.vocab' is %lld",
                file, ck->vocab.size, (long long)c->model.vocab);
      goto fail;
    }
    if (!cli__check_tensors(cmd, ck, run)) goto fail;
    return true;
  }
  int rank;
  int64_t dims[CT_MAX_RANK];
  if (ct_safetensors_get(f, "transformer.wte.weight", &rank, dims, NULL) == CT_OK ||
      ct_safetensors_get(f, "wte.weight", &rank, dims, NULL) == CT_OK) {
    ck->kind = CLI_CK_HF;
    if (!cli_hf_load(cmd, file, ck) || !cli__check_tensors(cmd, ck, false)) goto fail;
    return true;
  }
  cli_error(cmd, CLI_FAIL, "%s: not a ctml checkpoint or weights file (metadata 'format' is "
            "%s%.60s%s, not '%s' or '%s') nor a GPT-2 layout file (no tensor "
            "'transformer.wte.weight')", file, fmt ? "'" : "", fmt ? fmt : "missing",
            fmt ? "'" : "", CLI__FORMAT, CLI__WEIGHTS_FORMAT);
fail:
  cli_checkpoint_free(ck);
  return false;
}

void cli_checkpoint_free(cli_checkpoint *ck) {
  if (!ck) return;
  ct_safetensors_free(ck->file);
  ck->file = NULL;
  for (int i = 0; ck->own && i < ck->n_own; i++) free(ck->own[i].data);
  free(ck->own);
  ck->own = NULL;
  ck->n_own = 0;
  free(ck->data_path);
  ck->data_path = NULL;
  free(ck->path);
  ck->path = NULL;
}

/* Tensor name of a parameter's moment ("optim.m.<name>"). */
static void cli__moment_name(char *out, size_t len, char which, const ct_param *p) {
  snprintf(out, len, "optim.%c.%s", which, ct_param_name(p));
}

/* The tensor called name, checked against the shape of p. */
static const float *cli__tensor_like(const char *cmd, const cli_checkpoint *ck, const char *name,
                                     const ct_param *p) {
  int rank = 0;
  int64_t dims[CT_MAX_RANK] = {0};
  const float *data = NULL;
  if (!cli__lookup(ck, name, &rank, dims, &data)) {
    cli_error(cmd, CLI_FAIL, "%s: no tensor '%s'", ck->path, name);
    return NULL;
  }
  const ct_object *o = ct_param_object(p);
  bool same = rank == o->rank;
  for (int d = 0; same && d < rank; d++) same = dims[d] == o->dims[d];
  if (!same) {
    char want[96], got[96];
    cli__shape_str(got, sizeof got, rank, dims);
    cli_error(cmd, CLI_FAIL, "%s: tensor '%s' has shape %s, the config needs %s", ck->path, name,
              got, ct_object_str(o, want, sizeof want));
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
    if (meta->n > CLI__META_MAX - 2) {
      cli_error(cmd, CLI_FAIL, "checkpoint: more than %d metadata keys", CLI__META_MAX);
      ok = false;
    } else if (!file || !dpath || (!utf8 && !dhex)) {
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

bool cli_checkpoint_save_weights(const char *cmd, const char *file, const cli_checkpoint *ck) {
  const ct_gpt_config *c = &ck->cfg.model;
  int n = 0;
  char name[64];
  int rank;
  int64_t dims[2];
  while (cli_param_spec(c, n, name, &rank, dims)) n++;
  ct_st_tensor *ts = calloc((size_t)n, sizeof *ts);
  char (*names)[64] = calloc((size_t)n, sizeof *names);
  cli__meta *meta = malloc(sizeof *meta);
  bool ok = ts && names && meta;
  if (!ok) cli_error(cmd, CLI_FAIL, "%s: out of host memory", file);
  for (int i = 0; ok && i < n; i++) {
    cli_param_spec(c, i, names[i], &ts[i].rank, ts[i].dims);
    ts[i].name = names[i];
    ts[i].data = cli_checkpoint_tensor(ck, names[i]);
    if (!ts[i].data) {
      cli_error(cmd, CLI_FAIL, "%s: no tensor '%s'", ck->path, names[i]);
      ok = false;
    }
  }
  if (ok) {
    meta->n = 0;
    cli__put(meta, "format", "%s", CLI__WEIGHTS_FORMAT);
    cli__put(meta, "ctml.version", "%s", ct_version());
    cli__put(meta, "config.name", "%s", ck->cfg.name);
    const char *key;
    for (int i = 0; cli_config_meta_item(&ck->cfg, i, &key, meta->val[meta->n],
                                         sizeof meta->val[meta->n]); i++)
      if (!strncmp(key, "config.", 7)) {
        meta->kv[meta->n].key = key;
        meta->kv[meta->n].value = meta->val[meta->n];
        meta->n++;
      }
    char hex[513];
    for (int i = 0; i < ck->vocab.size; i++) snprintf(hex + 2 * i, 3, "%02x", ck->vocab.byte_of[i]);
    hex[2 * ck->vocab.size] = '\0';
    cli__put(meta, "vocab", "%s", hex);
    if (ct_safetensors_write(file, ts, n, meta->kv, meta->n) != CT_OK) {
      cli_error(cmd, CLI_FAIL, "%s not written: %s", file, ct_last_error());
      ok = false;
    }
  }
  free(ts);
  free(names);
  free(meta);
  return ok;
}
