/* SPDX-License-Identifier: MIT */
/* Interop with PyTorch and Hugging Face: the GPT-2 layout (GPT2LMHeadModel)
 * written by 'ctml export --hf' and read wherever a checkpoint is read, and
 * weights-only ctml files ('ctml export --weights', 'ctml import').
 * The layouts are described in docs/interop.md. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"

#define CLI__VOCAB_FILE "ctml_vocab.json"
#define CLI__VOCAB_FORMAT "ctml-byte-vocab-1"

/* ---- the name mapping --------------------------------------------------------- */

/* How a ctml parameter comes from a GPT-2 tensor. */
enum { CLI__COPY, CLI__QKV_W, CLI__QKV_B, CLI__TRANSPOSE };
typedef struct cli__hf_map {
  char hf[96];  /* GPT-2 name, without the "transformer." prefix for the body */
  bool body;    /* under "transformer." in GPT2LMHeadModel */
  int how;
  int part;     /* q, k, v: 0, 1, 2 */
} cli__hf_map;

/* The GPT-2 source of ctml parameter name. */
static void cli__hf_of(const char *name, cli__hf_map *m) {
  memset(m, 0, sizeof *m);
  m->body = true;
  m->how = CLI__COPY;
  if (!strcmp(name, "wte") || !strcmp(name, "wpe")) {
    snprintf(m->hf, sizeof m->hf, "%s.weight", name);
  } else if (!strcmp(name, "lnf.gain") || !strcmp(name, "lnf.bias")) {
    snprintf(m->hf, sizeof m->hf, "ln_f.%s", name[4] == 'g' ? "weight" : "bias");
  } else if (!strcmp(name, "head.w")) {
    snprintf(m->hf, sizeof m->hf, "lm_head.weight");
    m->body = false;
    m->how = CLI__TRANSPOSE;
  } else {
    int l = atoi(name + 1);
    const char *p = strchr(name, '.') + 1;
    static const struct {
      const char *ctml, *hf;
      int how, part;
    } t[] = {{"ln1.gain", "ln_1.weight", CLI__COPY, 0},    {"ln1.bias", "ln_1.bias", CLI__COPY, 0},
             {"attn.wq", "attn.c_attn.weight", CLI__QKV_W, 0},
             {"attn.wk", "attn.c_attn.weight", CLI__QKV_W, 1},
             {"attn.wv", "attn.c_attn.weight", CLI__QKV_W, 2},
             {"attn.bq", "attn.c_attn.bias", CLI__QKV_B, 0},
             {"attn.bk", "attn.c_attn.bias", CLI__QKV_B, 1},
             {"attn.bv", "attn.c_attn.bias", CLI__QKV_B, 2},
             {"attn.wo", "attn.c_proj.weight", CLI__COPY, 0},
             {"attn.bo", "attn.c_proj.bias", CLI__COPY, 0},
             {"ln2.gain", "ln_2.weight", CLI__COPY, 0},    {"ln2.bias", "ln_2.bias", CLI__COPY, 0},
             {"mlp.w1", "mlp.c_fc.weight", CLI__COPY, 0},  {"mlp.b1", "mlp.c_fc.bias", CLI__COPY, 0},
             {"mlp.w2", "mlp.c_proj.weight", CLI__COPY, 0},
             {"mlp.b2", "mlp.c_proj.bias", CLI__COPY, 0}};
    for (size_t k = 0; k < sizeof t / sizeof *t; k++)
      if (!strcmp(p, t[k].ctml)) {
        snprintf(m->hf, sizeof m->hf, "h.%d.%s", l, t[k].hf);
        m->how = t[k].how;
        m->part = t[k].part;
      }
  }
}

/* ---- small JSON readers for config.json and ctml_vocab.json -------------------- */

static char *cli__read_small(const char *path, size_t max, char *err, size_t errn) {
  uint8_t *data = NULL;
  int64_t n = 0;
  if (ct_text_read_regular_file(path, (int64_t)max, &data, &n) != CT_OK) {
    snprintf(err, errn, "%s", ct_last_error());
    return NULL;
  }
  char *buf = realloc(data, (size_t)n + 1);
  if (!buf) {
    free(data);
    snprintf(err, errn, "%s: out of host memory", path);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

/* The text after "key": (whitespace skipped) at the top level of a flat
 * object, or NULL when the key is absent. */
static const char *cli__json_at(const char *json, const char *key) {
  char pat[80];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  size_t n = strlen(pat);
  int depth = 0;
  bool in_str = false;
  for (const char *p = json; *p; p++) {
    if (in_str) {
      if (*p == '\\' && p[1]) p++;
      else if (*p == '"') in_str = false;
      continue;
    }
    if (*p == '{' || *p == '[') depth++;
    else if (*p == '}' || *p == ']') depth--;
    else if (*p == '"') {
      if (depth == 1 && !strncmp(p, pat, n)) {
        const char *q = p + n;
        while (isspace((unsigned char)*q)) q++;
        if (*q == ':') {
          q++;
          while (isspace((unsigned char)*q)) q++;
          return q;
        }
      }
      in_str = true;
    }
  }
  return NULL;
}

/* 1: a number read; 0: absent or null; -1: something else. */
static int cli__json_num(const char *json, const char *key, double *out) {
  const char *v = cli__json_at(json, key);
  if (!v || !strncmp(v, "null", 4)) return 0;
  char *end = NULL;
  *out = strtod(v, &end);
  return end != v && isfinite(*out) ? 1 : -1;
}

/* 1: a string read into out; 0: absent or null; -1: something else. */
static int cli__json_str(const char *json, const char *key, char *out, size_t n) {
  const char *v = cli__json_at(json, key);
  if (!v || !strncmp(v, "null", 4)) return 0;
  if (*v != '"') return -1;
  size_t k = 0;
  for (v++; *v && *v != '"' && k + 1 < n; v++) out[k++] = *v;
  out[k] = '\0';
  return *v == '"' ? 1 : -1;
}

/* 1: true; 0: false or absent (dflt); -1: something else. */
static int cli__json_bool(const char *json, const char *key, int dflt) {
  const char *v = cli__json_at(json, key);
  if (!v || !strncmp(v, "null", 4)) return dflt;
  if (!strncmp(v, "true", 4)) return 1;
  if (!strncmp(v, "false", 5)) return 0;
  return -1;
}

/* The directory of a file path ("." when it has none). */
static char *cli__dir_of(const char *file) {
  const char *slash = strrchr(file, '/');
  if (!slash) return strdup(".");
  return strndup(file, slash == file ? 1 : (size_t)(slash - file));
}

/* The model config from config.json (GPT2Config). */
static bool cli__hf_config(const char *cmd, const char *path, const char *json, cli_config *c) {
  static const struct {
    const char *hf, *alt, *key;
  } dims[5] = {{"vocab_size", NULL, "config.vocab"}, {"n_positions", "n_ctx", "config.block"},
               {"n_layer", NULL, "config.layers"},   {"n_head", NULL, "config.heads"},
               {"n_embd", NULL, "config.width"}};
  for (int k = 0; k < 5; k++) {
    const char *name = dims[k].hf;
    double v = 0;
    int r = cli__json_num(json, name, &v);
    if (r == 0 && dims[k].alt) r = cli__json_num(json, name = dims[k].alt, &v);
    if (r <= 0 || v != floor(v) || fabs(v) > 1e15)
      return cli_error(cmd, CLI_FAIL, "%s: '%s' is %s", path, dims[k].hf,
                       r == 0 ? "missing" : "not an integer"), false;
    char label[64];
    snprintf(label, sizeof label, "'%s'", name);
    if (!cli_config_model_value(c, cmd, path, dims[k].key, label, (long long)v)) return false;
  }
  if (c->model.width % c->model.heads) {
    cli_error(cmd, CLI_FAIL, "%s: 'n_head' %lld does not divide 'n_embd' %lld", path,
              (long long)c->model.heads, (long long)c->model.width);
    return false;
  }
  char s[64];
  int r = cli__json_str(json, "model_type", s, sizeof s);
  if (r < 0 || (r > 0 && strcmp(s, "gpt2"))) {
    cli_error(cmd, CLI_FAIL, "%s: 'model_type' is '%s'; ctml reads the GPT-2 layout ('gpt2')",
              path, r > 0 ? s : "?");
    return false;
  }
  r = cli__json_str(json, "activation_function", s, sizeof s);
  if (r < 0 || (r > 0 && strcmp(s, "gelu_new") && strcmp(s, "gelu_pytorch_tanh"))) {
    cli_error(cmd, CLI_FAIL, "%s: 'activation_function' is '%s'; ctml's GELU is the tanh "
              "approximation ('gelu_new' or 'gelu_pytorch_tanh')", path, r > 0 ? s : "?");
    return false;
  }
  double eps = 1e-5, inner = 0;
  r = cli__json_num(json, "layer_norm_epsilon", &eps);
  if (r < 0 || fabs(eps - 1e-5) > 1e-11) {
    cli_error(cmd, CLI_FAIL, "%s: 'layer_norm_epsilon' is %g; ctml's layer norm uses 1e-05", path,
              eps);
    return false;
  }
  r = cli__json_num(json, "n_inner", &inner);
  if (r < 0 || (r > 0 && inner != 4.0 * (double)c->model.width)) {
    cli_error(cmd, CLI_FAIL, "%s: 'n_inner' is %g; ctml's MLP is 4 x n_embd = %lld wide", path,
              inner, (long long)(4 * c->model.width));
    return false;
  }
  if (cli__json_bool(json, "scale_attn_weights", 1) != 1 ||
      cli__json_bool(json, "scale_attn_by_inverse_layer_idx", 0) != 0) {
    cli_error(cmd, CLI_FAIL, "%s: ctml scales attention scores by 1/sqrt(head size) only "
              "('scale_attn_weights' true, 'scale_attn_by_inverse_layer_idx' false)", path);
    return false;
  }
  return true;
}

/* The byte vocabulary: ctml_vocab.json beside the file, else the metadata
 * 'ctml.vocab', else all 256 bytes when vocab_size is 256. */
static bool cli__hf_vocab(const char *cmd, const char *dir, const cli_checkpoint *ck,
                          ct_vocab *v) {
  char err[1300], *path = cli_path_join(dir, CLI__VOCAB_FILE);
  if (!path) return cli_error(cmd, CLI_FAIL, "out of host memory"), false;
  struct stat st;
  bool found = stat(path, &st) == 0;
  char *json = found ? cli__read_small(path, 1 << 20, err, sizeof err) : NULL;
  bool ok = true;
  if (found) {
    if (!json) {
      cli_error(cmd, CLI_FAIL, "%s", err);
      free(path);
      return false;
    }
    const char *p = cli__json_at(json, "bytes");
    uint8_t bytes[256];
    int n = 0;
    ok = p && *p == '[';
    for (p = ok ? p + 1 : p; ok;) {
      while (isspace((unsigned char)*p) || *p == ',') p++;
      if (*p == ']') break;
      char *end = NULL;
      long b = strtol(p, &end, 10);
      if (end == p || b < 0 || b > 255 || n == 256) ok = false;
      else bytes[n++] = (uint8_t)b;
      p = end;
    }
    free(json);
    if (!ok || ct_vocab_from_bytes(v, bytes, n) != CT_OK) {
      cli_error(cmd, CLI_FAIL, "%s: 'bytes' must be a list of distinct byte values 0..255 in "
                "increasing order%s%s", path, ok ? ": " : "", ok ? ct_last_error() : "");
      ok = false;
    }
    free(path);
    return ok;
  }
  const char *hex = ct_safetensors_meta(ck->file, "ctml.vocab");
  if (hex || ck->cfg.model.vocab == 256) free(path);
  if (hex) return cli_vocab_hex(cmd, ck->path, "ctml.vocab", hex, v);
  if (ck->cfg.model.vocab == 256) {
    uint8_t all[256];
    for (int b = 0; b < 256; b++) all[b] = (uint8_t)b;
    return ct_vocab_from_bytes(v, all, 256) == CT_OK;
  }
  cli_error(cmd, CLI_FAIL, "%s: no byte vocabulary: %s is missing, the file has no metadata "
            "'ctml.vocab', and vocab_size %lld is not 256 (see docs/interop.md)", ck->path, path,
            (long long)ck->cfg.model.vocab);
  free(path);
  return false;
}

/* The GPT-2 tensor hf (with or without the "transformer." prefix). */
static bool cli__hf_get(const ct_safetensors *f, const cli__hf_map *m, char *found, size_t n,
                        int *rank, int64_t *dims, const float **data) {
  snprintf(found, n, "%s%s", m->body ? "transformer." : "", m->hf);
  if (ct_safetensors_get(f, found, rank, dims, data) == CT_OK) return true;
  snprintf(found, n, "%s", m->hf);
  return ct_safetensors_get(f, found, rank, dims, data) == CT_OK;
}

bool cli_hf_load(const char *cmd, const char *file, cli_checkpoint *ck) {
  char err[1300], *dir = cli__dir_of(file), *path = dir ? cli_path_join(dir, "config.json") : NULL;
  char *json = path ? cli__read_small(path, 1 << 20, err, sizeof err) : NULL;
  if (!json) {
    cli_error(cmd, CLI_FAIL, "%s is in the GPT-2 layout, which needs its config.json: %s", file,
              path ? err : "out of host memory");
    free(dir);
    free(path);
    return false;
  }
  cli_config_preset(&ck->cfg, "tiny");
  snprintf(ck->cfg.name, sizeof ck->cfg.name, "gpt2");
  bool ok = cli__hf_config(cmd, path, json, &ck->cfg) && cli__hf_vocab(cmd, dir, ck, &ck->vocab);
  free(json);
  free(dir);
  free(path);
  if (!ok) return false;
  const ct_gpt_config *c = &ck->cfg.model;
  if (ck->vocab.size != c->vocab) {
    cli_error(cmd, CLI_FAIL, "%s: the byte vocabulary has %d bytes but vocab_size is %lld", file,
              ck->vocab.size, (long long)c->vocab);
    return false;
  }
  int n = 0, rank;
  char name[64];
  int64_t dims[2];
  while (cli_param_spec(c, n, name, &rank, dims)) n++;
  ck->own = calloc((size_t)n, sizeof *ck->own);
  if (!ck->own) return cli_error(cmd, CLI_FAIL, "out of host memory"), false;
  const int64_t C = c->width;
  for (int i = 0; i < n; i++) {
    cli_ck_tensor *t = &ck->own[i];
    cli_param_spec(c, i, t->name, &t->rank, t->dims);
    cli__hf_map m;
    cli__hf_of(t->name, &m);
    char hf[128], want[64], got[64];
    int r = 0;
    int64_t d[CT_MAX_RANK] = {0};
    const float *src = NULL;
    if (!cli__hf_get(ck->file, &m, hf, sizeof hf, &r, d, &src) && m.how == CLI__TRANSPOSE) {
      /* a tied head (tie_word_embeddings): lm_head is wte */
      cli__hf_map w = {"wte.weight", true, CLI__TRANSPOSE, 0};
      (void)cli__hf_get(ck->file, &w, hf, sizeof hf, &r, d, &src);
    }
    if (!src) {
      cli_error(cmd, CLI_FAIL, "%s: tensor 'transformer.%s' (ctml's '%s') is missing", file, m.hf,
                t->name);
      return false;
    }
    /* the shape the GPT-2 tensor must have */
    int wr = t->rank;
    int64_t wd[2] = {t->dims[0], t->dims[1]};
    if (m.how == CLI__QKV_W) wd[1] = 3 * C;
    if (m.how == CLI__QKV_B) wd[0] = 3 * C;
    if (m.how == CLI__TRANSPOSE) wd[0] = t->dims[1], wd[1] = t->dims[0];
    if (r != wr || d[0] != wd[0] || (wr == 2 && d[1] != wd[1])) {
      snprintf(want, sizeof want, wr == 2 ? "[%lld,%lld]" : "[%lld]", (long long)wd[0],
               (long long)wd[1]);
      size_t k = (size_t)snprintf(got, sizeof got, "[");
      for (int q = 0; q < r && k < sizeof got; q++)
        k += (size_t)snprintf(got + k, sizeof got - k, "%s%lld", q ? "," : "", (long long)d[q]);
      if (k < sizeof got) snprintf(got + k, sizeof got - k, "]");
      cli_error(cmd, CLI_FAIL, "%s: tensor '%s' has shape %s; config.json (n_layer %lld, n_head "
                "%lld, n_embd %lld, n_positions %lld, vocab_size %lld) needs %s", file, hf, got,
                (long long)c->layers, (long long)c->heads, (long long)C, (long long)c->block,
                (long long)c->vocab, want);
      return false;
    }
    int64_t numel = t->dims[0] * (t->rank == 2 ? t->dims[1] : 1);
    t->data = malloc((size_t)numel * sizeof *t->data);
    ck->n_own = i + 1;
    if (!t->data) return cli_error(cmd, CLI_FAIL, "out of host memory"), false;
    if (m.how == CLI__COPY) {
      memcpy(t->data, src, (size_t)numel * sizeof *t->data);
    } else if (m.how == CLI__QKV_B) {
      memcpy(t->data, src + m.part * C, (size_t)C * sizeof *t->data);
    } else if (m.how == CLI__QKV_W) {
      for (int64_t row = 0; row < C; row++)
        memcpy(t->data + row * C, src + row * 3 * C + m.part * C, (size_t)C * sizeof *t->data);
    } else { /* [V,C] -> [C,V] */
      int64_t V = t->dims[1];
      for (int64_t v = 0; v < V; v++)
        for (int64_t ch = 0; ch < C; ch++) t->data[ch * V + v] = src[v * C + ch];
    }
  }
  /* every tensor of the file has a place (the attention masks are buffers, not weights) */
  for (int i = 0; i < ct_safetensors_count(ck->file); i++) {
    const char *t = ct_safetensors_name(ck->file, i);
    const char *base = !strncmp(t, "transformer.", 12) ? t + 12 : t;
    size_t len = strlen(base);
    if ((len > 10 && !strcmp(base + len - 10, ".attn.bias")) ||
        (len > 18 && !strcmp(base + len - 18, ".attn.masked_bias")))
      continue;
    bool known = false;
    for (int k = 0; !known && k < n; k++) {
      cli__hf_map m;
      cli__hf_of(ck->own[k].name, &m);
      known = !strcmp(base, m.hf);
    }
    if (!known) {
      cli_error(cmd, CLI_FAIL, "%s: tensor '%s' is not part of a GPT-2 of n_layer %lld that ctml "
                "can read (see docs/interop.md)", file, t, (long long)c->layers);
      return false;
    }
  }
  return true;
}

bool cli_encode_with(const char *cmd, const char *what, const ct_vocab *v, const uint8_t *text,
                     int64_t n, int32_t *ids) {
  for (int64_t i = 0; i < n; i++) {
    int id = v->id_of[text[i]];
    if (id < 0) {
      char shown[16] = "";
      if (text[i] >= 0x20 && text[i] < 0x7f) snprintf(shown, sizeof shown, " ('%c')", text[i]);
      cli_error(cmd, CLI_FAIL, "%s: byte 0x%02x%s at offset %lld is not in the checkpoint's "
                "vocabulary of %d bytes", what, text[i], shown, (long long)i, v->size);
      return false;
    }
    ids[i] = id;
  }
  return true;
}

/* ---- export -------------------------------------------------------------------------- */

/* Writes text to dir/name atomically (tmp, fsync, rename, directory synced). */
static bool cli__write_text(const char *cmd, const char *dir, const char *name, const char *text) {
  char *path = cli_path_join(dir, name);
  bool ok = path && cli_write_atomic(path, text, strlen(text));
  if (!ok) cli_error(cmd, CLI_FAIL, "cannot write %s/%s: %s", dir, name, strerror(errno));
  free(path);
  return ok;
}

static bool cli__export_hf(const char *cmd, const char *dir, const cli_checkpoint *ck) {
  const ct_gpt_config *c = &ck->cfg.model;
  const int64_t C = c->width, V = c->vocab;
  struct stat st;
  if (mkdir(dir, 0777) != 0 && !(errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)))
    return cli_error(cmd, CLI_FAIL, "--hf: cannot create directory '%s': %s", dir,
                     strerror(errno)), false;
  int n = 0, rank;
  char name[64];
  int64_t dims[2];
  while (cli_param_spec(c, n, name, &rank, dims)) n++;
  /* one tensor per GPT-2 name: q, k and v (weights and biases) merge into c_attn */
  ct_st_tensor *ts = calloc((size_t)n, sizeof *ts);
  char (*names)[128] = calloc((size_t)n, sizeof *names);
  float **bufs = calloc((size_t)n, sizeof *bufs);
  bool ok = ts && names && bufs;
  int nt = 0;
  for (int i = 0; ok && i < n; i++) {
    cli_param_spec(c, i, name, &rank, dims);
    cli__hf_map m;
    cli__hf_of(name, &m);
    const float *src = cli_checkpoint_tensor(ck, name);
    if (!src) {
      cli_error(cmd, CLI_FAIL, "%s: no tensor '%s'", ck->path, name);
      ok = false;
      break;
    }
    if ((m.how == CLI__QKV_W || m.how == CLI__QKV_B) && m.part > 0) continue; /* with q */
    ct_st_tensor *t = &ts[nt];
    snprintf(names[nt], sizeof names[nt], "%s%s", m.body ? "transformer." : "", m.hf);
    t->name = names[nt];
    t->rank = rank;
    t->dims[0] = dims[0];
    t->dims[1] = dims[1];
    t->data = src;
    if (m.how == CLI__COPY) {
      nt++;
      continue;
    }
    int64_t numel = m.how == CLI__QKV_W ? 3 * C * C : m.how == CLI__QKV_B ? 3 * C : V * C;
    float *b = bufs[nt] = malloc((size_t)numel * sizeof *b);
    if (!b) {
      cli_error(cmd, CLI_FAIL, "out of host memory");
      ok = false;
      break;
    }
    if (m.how == CLI__TRANSPOSE) { /* head.w [C,V] -> lm_head.weight [V,C] */
      for (int64_t v = 0; v < V; v++)
        for (int64_t ch = 0; ch < C; ch++) b[v * C + ch] = src[ch * V + v];
      t->dims[0] = V;
      t->dims[1] = C;
    } else {
      char layer[16];
      snprintf(layer, sizeof layer, "%.*s", (int)(strchr(name, '.') - name), name);
      for (int part = 0; part < 3 && ok; part++) {
        char pn[64];
        snprintf(pn, sizeof pn, "%s.attn.%c%c", layer, m.how == CLI__QKV_W ? 'w' : 'b',
                 "qkv"[part]);
        const float *p = cli_checkpoint_tensor(ck, pn);
        if (!p) {
          cli_error(cmd, CLI_FAIL, "%s: no tensor '%s'", ck->path, pn);
          ok = false;
        } else if (m.how == CLI__QKV_B) {
          memcpy(b + part * C, p, (size_t)C * sizeof *b);
        } else {
          for (int64_t row = 0; row < C; row++)
            memcpy(b + row * 3 * C + part * C, p + row * C, (size_t)C * sizeof *b);
        }
      }
      if (m.how == CLI__QKV_W) t->dims[1] = 3 * C;
      else t->dims[0] = 3 * C;
    }
    t->data = b;
    nt++;
  }
  char hex[513], *path = cli_path_join(dir, "model.safetensors");
  for (int i = 0; i < ck->vocab.size; i++) snprintf(hex + 2 * i, 3, "%02x", ck->vocab.byte_of[i]);
  hex[2 * ck->vocab.size] = '\0';
  ct_st_meta meta[3] = {{"format", "pt"}, {"ctml.vocab", hex}, {"ctml.version", ct_version()}};
  if (ok && !path) {
    cli_error(cmd, CLI_FAIL, "out of host memory");
    ok = false;
  }
  if (ok && ct_safetensors_write(path, ts, nt, meta, 3) != CT_OK) {
    cli_error(cmd, CLI_FAIL, "%s not written: %s", path, ct_last_error());
    ok = false;
  }
  free(path);
  for (int i = 0; bufs && i < n; i++) free(bufs[i]);
  free(bufs);
  free(ts);
  free(names);
  if (!ok) return false;

  /* config.json: GPT2Config; bytes have no special tokens (bos, eos: null) */
  char json[2048];
  snprintf(json, sizeof json,
           "{\n"
           "  \"architectures\": [\"GPT2LMHeadModel\"],\n"
           "  \"model_type\": \"gpt2\",\n"
           "  \"vocab_size\": %lld,\n"
           "  \"n_positions\": %lld,\n"
           "  \"n_ctx\": %lld,\n"
           "  \"n_embd\": %lld,\n"
           "  \"n_layer\": %lld,\n"
           "  \"n_head\": %lld,\n"
           "  \"n_inner\": null,\n"
           "  \"activation_function\": \"gelu_new\",\n"
           "  \"layer_norm_epsilon\": 1e-05,\n"
           "  \"resid_pdrop\": 0.0,\n"
           "  \"embd_pdrop\": 0.0,\n"
           "  \"attn_pdrop\": 0.0,\n"
           "  \"scale_attn_weights\": true,\n"
           "  \"scale_attn_by_inverse_layer_idx\": false,\n"
           "  \"reorder_and_upcast_attn\": false,\n"
           "  \"tie_word_embeddings\": false,\n"
           "  \"bos_token_id\": null,\n"
           "  \"eos_token_id\": null,\n"
           "  \"torch_dtype\": \"float32\",\n"
           "  \"ctml_version\": \"%s\"\n"
           "}\n",
           (long long)V, (long long)c->block, (long long)c->block, (long long)C,
           (long long)c->layers, (long long)c->heads, ct_version());
  if (!cli__write_text(cmd, dir, "config.json", json)) return false;
  /* ctml_vocab.json: token id i is byte bytes[i] */
  char vocab[2048];
  size_t k = (size_t)snprintf(vocab, sizeof vocab,
                              "{\"format\": \"%s\", \"vocab_size\": %d, \"bytes\": [",
                              CLI__VOCAB_FORMAT, ck->vocab.size);
  for (int i = 0; i < ck->vocab.size; i++)
    k += (size_t)snprintf(vocab + k, sizeof vocab - k, "%s%d", i ? ", " : "", ck->vocab.byte_of[i]);
  snprintf(vocab + k, sizeof vocab - k, "]}\n");
  return cli__write_text(cmd, dir, CLI__VOCAB_FILE, vocab);
}

static void cli__export_usage(FILE *f) {
  fprintf(f,
          "usage: ctml export (--hf DIR | --weights FILE) [--checkpoint RUN|FILE]\n"
          "  --hf DIR        a directory transformers.GPT2LMHeadModel.from_pretrained(DIR) loads:\n"
          "                  config.json, model.safetensors (GPT-2 names, [in,out] weights,\n"
          "                  untied lm_head) and ctml_vocab.json (token id -> byte)\n"
          "  --weights FILE  a weights-only ctml file: config, vocabulary and parameters,\n"
          "                  without the optimizer state and training keys\n"
          "  --checkpoint P  a run directory, a checkpoint, a weights file or a GPT-2 export\n"
          "                  (default: runs/latest)\n"
          "See docs/interop.md for the layouts.\n");
}

int cli_export(int argc, char **argv) {
  const char *cmd = "export", *hf = NULL, *weights = NULL, *from = NULL;
  for (int i = 0; i < argc; i++) {
    int r;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      cli__export_usage(stdout);
      return CLI_OK;
    }
    if ((r = cli_opt(cmd, argc, argv, &i, "--hf", &hf)) ||
        (r = cli_opt(cmd, argc, argv, &i, "--weights", &weights)) ||
        (r = cli_opt(cmd, argc, argv, &i, "--checkpoint", &from))) {
      if (r < 0) return CLI_USAGE;
      continue;
    }
    return cli_error(cmd, CLI_USAGE, "unknown option '%s' (see 'ctml export --help')", argv[i]);
  }
  if (!hf == !weights)
    return cli_error(cmd, CLI_USAGE, "give one of --hf DIR or --weights FILE");
  if (!from) from = "runs/latest";
  cli_checkpoint ck;
  if (!cli_checkpoint_load(cmd, from, &ck)) return CLI_FAIL;
  bool ok = hf ? cli__export_hf(cmd, hf, &ck) : cli_checkpoint_save_weights(cmd, weights, &ck);
  if (ok)
    printf("exported %s (layers %lld, heads %lld, width %lld, block %lld, vocabulary %d bytes) "
           "to %s%s\n", ck.path, (long long)ck.cfg.model.layers, (long long)ck.cfg.model.heads,
           (long long)ck.cfg.model.width, (long long)ck.cfg.model.block, ck.vocab.size,
           hf ? hf : weights,
           hf ? ": config.json, model.safetensors, " CLI__VOCAB_FILE : " (weights only)");
  cli_checkpoint_free(&ck);
  return ok ? CLI_OK : CLI_FAIL;
}

int cli_import(int argc, char **argv) {
  const char *cmd = "import", *src = NULL, *out = NULL;
  for (int i = 0; i < argc; i++) {
    int r;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: ctml import SRC --out FILE\n"
             "  SRC         a GPT-2 layout directory or model.safetensors (F32 or BF16, with\n"
             "              config.json and ctml_vocab.json beside it), or any ctml checkpoint\n"
             "  --out FILE  the weights-only ctml file to write (sample, eval, check and\n"
             "              train --init-from read it; they also read SRC directly)\n");
      return CLI_OK;
    }
    if ((r = cli_opt(cmd, argc, argv, &i, "--out", &out))) {
      if (r < 0) return CLI_USAGE;
      continue;
    }
    if (argv[i][0] == '-' || src)
      return cli_error(cmd, CLI_USAGE, "unknown option '%s' (see 'ctml import --help')", argv[i]);
    src = argv[i];
  }
  if (!src || !out) return cli_error(cmd, CLI_USAGE, "usage: ctml import SRC --out FILE");
  cli_checkpoint ck;
  if (!cli_checkpoint_load(cmd, src, &ck)) return CLI_FAIL;
  bool ok = cli_checkpoint_save_weights(cmd, out, &ck);
  if (ok)
    printf("imported %s (layers %lld, heads %lld, width %lld, block %lld, vocabulary %d bytes) "
           "to %s\n", ck.path, (long long)ck.cfg.model.layers, (long long)ck.cfg.model.heads,
           (long long)ck.cfg.model.width, (long long)ck.cfg.model.block, ck.vocab.size, out);
  cli_checkpoint_free(&ck);
  return ok ? CLI_OK : CLI_FAIL;
}
