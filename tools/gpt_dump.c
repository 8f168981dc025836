/* SPDX-License-Identifier: MIT */
/* ctml_gpt_dump OUTDIR [--backend NAME]
 *
 * Dumps one small GPT, one batch, its loss, every parameter gradient and the
 * parameters after one AdamW step, for tools/gpt_reference.py to check against
 * PyTorch. Uses only the public API.
 *
 * --perturb: instead of ct_gpt_new's initialisation (std 0.02, biases 0, gains
 * 1: small activations where GELU variants and bias/gain mix-ups hardly show),
 * matrices and tables are scaled by 8 and every bias and gain is set to a
 * deterministic nonzero value (gains 1 + 0.2u, biases 0.1u, u in [-1, 1)).
 *
 * OUTDIR (created when missing) receives:
 *   config.json    the GPT config, batch shape, AdamW hyperparameters, the
 *                  loss, and a list of tensors: name, shape, dtype and file of
 *                  each (the manifest)
 *   inputs.i32, targets.i32          the batch, int32 [B,T]
 *   init.<param>.f32                 initial parameter values
 *   grad.<param>.f32                 d loss / d param (REVERSE plan, cotangent 1)
 *   after.<param>.f32                parameters after one ct_trainer step
 * Every file is raw little-endian, row-major, no header; shapes are in
 * config.json. Parameter shapes are ctml's: linear weights are [in, out]. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "ctml/ctml.h"

/* The dumped model and batch: sizes that are not multiples of anything nice. */
static const ct_gpt_config k_cfg = {.vocab = 37, .block = 16, .layers = 2, .heads = 4,
                                    .width = 32};
enum { k_batch = 3, k_time = 11 };
static const uint64_t k_seed = 20261122u;
static const float k_lr = 1e-3f, k_beta1 = 0.9f, k_beta2 = 0.95f, k_eps = 1e-8f, k_wd = 0.1f;

#define CHECK(call)                                                                     \
  do {                                                                                  \
    ct_status s_ = (call);                                                              \
    if (s_ != CT_OK) {                                                                  \
      fprintf(stderr, "ctml_gpt_dump: %s failed: %s: %s\n", #call, ct_status_name(s_),  \
              ct_last_error());                                                         \
      exit(1);                                                                          \
    }                                                                                   \
  } while (0)

static void die(const char *what, const char *detail) {
  fprintf(stderr, "ctml_gpt_dump: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory", NULL);
  return p;
}

static const char *g_outdir;

/* u in [-1, 1) from (i, j): a fixed hash, the same on every machine. */
static float hash_unit(uint64_t i, uint64_t j) {
  uint64_t x = i * 0x9E3779B97F4A7C15ull + j * 0xBF58476D1CE4E5B9ull + 0x94D049BB133111EBull;
  x ^= x >> 31;
  x *= 0xD6E8FEB86659FD39ull;
  x ^= x >> 28;
  return (float)((double)(x >> 11) / 4503599627370496.0 - 1.0); /* 2^52 */
}

/* --perturb: matrices x8, gains 1 + 0.2u, biases 0.1u. */
static void perturb(ct_gpt *gpt) {
  for (int i = 0; i < ct_gpt_param_count(gpt); i++) {
    ct_param *p = ct_gpt_param(gpt, i);
    int64_t n = ct_param_numel(p);
    int rank = ct_param_object(p)->rank;
    int gain = strstr(ct_param_name(p), ".gain") != NULL;
    float *v = xmalloc((size_t)n * sizeof *v);
    CHECK(ct_param_get(p, v, n));
    for (int64_t k = 0; k < n; k++) {
      float u = hash_unit((uint64_t)i, (uint64_t)k);
      v[k] = rank >= 2 ? 8.0f * v[k] : gain ? 1.0f + 0.2f * u : 0.1f * u;
    }
    CHECK(ct_param_set(p, v, n));
    free(v);
  }
}

static void write_raw(const char *file, const void *data, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", g_outdir, file);
  FILE *f = fopen(path, "wb");
  if (!f) die("cannot open for writing", path);
  if (fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) die("cannot write", path);
}

static int little_endian(void) {
  const uint32_t one = 1;
  unsigned char c;
  memcpy(&c, &one, 1);
  return c == 1;
}

int main(int argc, char **argv) {
  const char *backend_name = "cpu";
  int do_perturb = 0;
  g_outdir = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--backend") && i + 1 < argc)
      backend_name = argv[++i];
    else if (!strcmp(argv[i], "--perturb"))
      do_perturb = 1;
    else if (argv[i][0] == '-' || g_outdir) {
      fprintf(stderr, "usage: %s OUTDIR [--backend cpu|cuda|opencl|auto] [--perturb]\n", argv[0]);
      return 2;
    } else
      g_outdir = argv[i];
  }
  if (!g_outdir) {
    fprintf(stderr, "usage: %s OUTDIR [--backend cpu|cuda|opencl|auto] [--perturb]\n", argv[0]);
    return 2;
  }
  if (!little_endian()) die("this dump format is little-endian; big-endian hosts unsupported",
                            NULL);
  const ct_backend *be = NULL;
  CHECK(ct_backend_get(backend_name, &be));
  if (mkdir(g_outdir, 0777) != 0 && errno != EEXIST) die("cannot create", g_outdir);

  ct_gpt *gpt = NULL;
  CHECK(ct_gpt_new(&gpt, &k_cfg, k_seed));
  const int np = ct_gpt_param_count(gpt);
  if (np < 1) die("ct_gpt_param_count returned no parameters", NULL);
  if (do_perturb) perturb(gpt);

  /* The batch: per row b a stream s[0..T] of ids; inputs s[0..T), targets s[1..T]. */
  const int64_t n_tok = (int64_t)k_batch * k_time;
  int32_t inputs[k_batch * k_time], targets[k_batch * k_time];
  for (int b = 0; b < k_batch; b++) {
    int32_t s[k_time + 1];
    for (int t = 0; t <= k_time; t++)
      s[t] = (int32_t)((5 * b * b + 11 * b + 3 * t * t + 7 * t + 2) % k_cfg.vocab);
    for (int t = 0; t < k_time; t++) {
      inputs[b * k_time + t] = s[t];
      targets[b * k_time + t] = s[t + 1];
    }
  }
  write_raw("inputs.i32", inputs, sizeof inputs);
  write_raw("targets.i32", targets, sizeof targets);

  /* Initial parameters. */
  char file[256];
  for (int i = 0; i < np; i++) {
    const ct_param *p = ct_gpt_param(gpt, i);
    if (!p) die("ct_gpt_param returned NULL", NULL);
    int64_t n = ct_param_numel(p);
    float *v = xmalloc((size_t)n * sizeof *v);
    CHECK(ct_param_get(p, v, n));
    snprintf(file, sizeof file, "init.%s.f32", ct_param_name(p));
    write_raw(file, v, (size_t)n * sizeof *v);
    free(v);
  }

  /* Loss and gradients: a REVERSE plan, cotangent 1 on the loss. */
  ct_morphism *loss_m = NULL;
  CHECK(ct_gpt_loss(&loss_m, gpt, k_batch, k_time));
  ct_plan *plan = NULL;
  CHECK(ct_compile(&plan, loss_m, be, CT_PLAN_REVERSE));
  CHECK(ct_plan_set_input(plan, 0, inputs, n_tok));
  CHECK(ct_plan_set_input(plan, 1, targets, n_tok));
  CHECK(ct_plan_forward(plan));
  float loss = 0.0f;
  CHECK(ct_plan_get_output(plan, 0, &loss, 1));
  const float one = 1.0f;
  CHECK(ct_plan_set_output_grad(plan, 0, &one, 1));
  CHECK(ct_plan_reverse(plan));
  for (int i = 0; i < np; i++) {
    const ct_param *p = ct_gpt_param(gpt, i);
    int64_t n = ct_param_numel(p);
    float *g = xmalloc((size_t)n * sizeof *g);
    CHECK(ct_plan_get_param_grad(plan, p, g, n));
    snprintf(file, sizeof file, "grad.%s.f32", ct_param_name(p));
    write_raw(file, g, (size_t)n * sizeof *g);
    free(g);
  }
  ct_plan_free(plan);

  /* One AdamW step with the trainer. */
  ct_optimizer opt;
  CHECK(ct_optimizer_adamw(&opt, k_lr));
  opt.beta1 = k_beta1;
  opt.beta2 = k_beta2;
  opt.eps = k_eps;
  opt.weight_decay = k_wd;
  opt.clip_norm = 0.0f;
  opt.warmup_steps = 0;
  opt.total_steps = 0;
  opt.min_lr = 0.0f;
  CHECK(ct_optimizer_validate(&opt));
  ct_trainer *tr = NULL;
  CHECK(ct_trainer_new(&tr, loss_m, be, &opt));
  CHECK(ct_trainer_set_input(tr, 0, inputs, n_tok));
  CHECK(ct_trainer_set_input(tr, 1, targets, n_tok));
  CHECK(ct_trainer_step(tr, 1));
  float step_lr = 0.0f, grad_norm = 0.0f, loss_after = 0.0f;
  CHECK(ct_trainer_last_lr(tr, &step_lr));
  CHECK(ct_trainer_last_grad_norm(tr, &grad_norm));
  CHECK(ct_trainer_eval(tr, &loss_after));
  CHECK(ct_trainer_store_params(tr));
  for (int i = 0; i < np; i++) {
    const ct_param *p = ct_gpt_param(gpt, i);
    int64_t n = ct_param_numel(p);
    float *v = xmalloc((size_t)n * sizeof *v);
    CHECK(ct_param_get(p, v, n));
    snprintf(file, sizeof file, "after.%s.f32", ct_param_name(p));
    write_raw(file, v, (size_t)n * sizeof *v);
    free(v);
  }
  ct_trainer_free(tr);

  /* config.json: everything the reference needs, including the manifest. */
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", g_outdir);
  FILE *f = fopen(path, "w");
  if (!f) die("cannot open for writing", path);
  fprintf(f, "{\n  \"format\": \"ctml-gpt-dump-1\",\n  \"ctml_version\": \"%s\",\n",
          CTML_VERSION);
  fprintf(f, "  \"backend\": \"%s\",\n  \"seed\": %llu,\n  \"init\": \"%s\",\n",
          ct_backend_name(be), (unsigned long long)k_seed, do_perturb ? "perturbed" : "ct_gpt_new");
  fprintf(f, "  \"config\": {\"vocab\": %lld, \"block\": %lld, \"layers\": %lld, "
          "\"heads\": %lld, \"width\": %lld},\n",
          (long long)k_cfg.vocab, (long long)k_cfg.block, (long long)k_cfg.layers,
          (long long)k_cfg.heads, (long long)k_cfg.width);
  fprintf(f, "  \"batch\": {\"batch\": %d, \"time\": %d, \"inputs\": \"inputs.i32\", "
          "\"targets\": \"targets.i32\", \"dtype\": \"int32\"},\n", k_batch, k_time);
  fprintf(f, "  \"adamw\": {\"lr\": %.9g, \"beta1\": %.9g, \"beta2\": %.9g, \"eps\": %.9g, "
          "\"weight_decay\": %.9g, \"decay_rank_at_least\": 2, \"steps\": 1},\n",
          (double)k_lr, (double)k_beta1, (double)k_beta2, (double)k_eps, (double)k_wd);
  fprintf(f, "  \"loss\": %.9g,\n", (double)loss);
  fprintf(f, "  \"trainer\": {\"lr\": %.9g, \"grad_norm\": %.9g, \"loss_after\": %.9g},\n",
          (double)step_lr, (double)grad_norm, (double)loss_after);
  fprintf(f, "  \"tensors\": [\n");
  for (int i = 0; i < np; i++) {
    const ct_param *p = ct_gpt_param(gpt, i);
    const ct_object *o = ct_param_object(p);
    const char *nm = ct_param_name(p);
    fprintf(f, "    {\"name\": \"%s\", \"dtype\": \"float32\", \"shape\": [", nm);
    for (int r = 0; r < o->rank; r++) fprintf(f, "%s%lld", r ? ", " : "", (long long)o->dims[r]);
    fprintf(f, "], \"init\": \"init.%s.f32\", \"grad\": \"grad.%s.f32\", "
            "\"after\": \"after.%s.f32\"}%s\n", nm, nm, nm, i + 1 < np ? "," : "");
  }
  fprintf(f, "  ]\n}\n");
  if (fclose(f) != 0) die("cannot write", path);

  printf("ctml_gpt_dump: backend %s, %s init, %d parameters (%lld floats), B=%d T=%d, loss %.9g, "
         "grad norm %.9g, loss after one AdamW step %.9g -> %s\n",
         ct_backend_name(be), do_perturb ? "perturbed" : "ct_gpt_new", np,
         (long long)ct_gpt_numel(gpt), k_batch, k_time, (double)loss,
         (double)grad_norm, (double)loss_after, g_outdir);
  ct_morphism_free(loss_m);
  ct_gpt_free(gpt);
  return 0;
}
