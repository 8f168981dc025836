/* SPDX-License-Identifier: MIT */
/* ctml bench: times the GPT training step (forward, reverse, AdamW update) on
 * every present backend, or one, and reports tokens/s and, on GPUs, the
 * model-FLOPs utilisation. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

#define CLI__CMD "bench"
#define CLI__VOCAB 96 /* as ctml check: a typical character vocabulary */

static void cli__usage(FILE *f) {
  fprintf(f,
          "usage: ctml bench [--config tiny|micro|small] [model flags] [--backend NAME|all]\n"
          "                  [--warmup-steps N] [--runs N] [--graph] [--tf32] [--no-rewrite]\n"
          "                  [--trace] [--json]\n"
          "       ctml bench --decode [--prompt N] [--tokens N] [model flags] [--backend NAME|all]\n"
          "                  [--json]\n"
          "Times the GPT training step (forward, reverse, AdamW update; vocabulary %d, a\n"
          "random batch) on each present backend: N untimed steps, then N timed steps, each\n"
          "waiting for the device. Reports the median and fastest step, tokens/s, model\n"
          "GFLOP/s and on GPUs the model-FLOPs utilisation (MFU) against the device's\n"
          "peak. Model FLOPs per step = tokens x (6 N + 12 L C T), N the parameters less\n"
          "the position table (PaLM, appendix B; full, not causal, attention).\n"
          "  --backend NAME    all (default: every present backend), cpu, cuda or opencl\n"
          "  --warmup-steps N  untimed steps first (default 3)\n"
          "  --runs N          timed steps (default 10; 3 with --decode)\n"
          "  --graph           cuda: record the step once as a CUDA graph and replay it\n"
          "  --tf32            cuda: matrix products in TF32 (MFU against the TF32 peak)\n"
          "  --no-rewrite      time the step as built, without the rewrite rules (fusions)\n"
          "  --trace           then run one more step kernel by kernel, waiting for each, and\n"
          "                    print the time per generator and the rewrites that fired, where\n"
          "  --decode          time generation instead (batch 1, random weights, greedy): a\n"
          "                    prefill of --prompt tokens (default 16), then --tokens (default\n"
          "                    100) decode steps, with the key/value cache and without it\n"
          "                    (the whole window per token); median of --runs\n"
          "  --json            one JSON object on stdout instead of the table: the model,\n"
          "                    and per backend the times, tokens/s, GFLOP/s, MFU (null off\n"
          "                    GPUs) and the plan's structure\n"
          "  --config NAME     preset: tiny (default; seconds), micro (smaller) or small\n"
          "                    (GPU-sized: seconds per step on a CPU, so name a GPU backend or\n"
          "                    lower --batch)\n"
          "  model flags (override the preset):\n"
          "    --layers N --heads N --width N --block N   transformer shape\n"
          "    --batch N                                  sequences per step\n"
          "    --seed N                                   initialisation and random batch\n"
          "  The optimizer and schedule flags of 'ctml train' (--steps, --lr, --warmup, ...)\n"
          "  are refused: they do not change what a step costs.\n",
          CLI__VOCAB);
  cli_env_usage(f, false);
}

/* FP32 (and TF32 tensor-core, dense) peaks in TFLOP/s, matched on the device
 * name: every word of `match` must occur; the first matching row wins, so
 * the PCIe and NVL variants come before the SXM default. */
typedef struct cli__peak {
  const char *match[2];
  const char *label;
  double fp32, tf32;
} cli__peak;

static const cli__peak cli__peaks[] = {
    {{"H100", "PCIe"}, "H100 PCIe", 51.0, 378.0},
    {{"H100", "NVL"}, "H100 NVL", 60.0, 417.5},
    {{"H100", NULL}, "H100 SXM", 67.0, 494.7},
    {{"H200", "NVL"}, "H200 NVL", 60.0, 417.5},
    {{"H200", NULL}, "H200 SXM", 67.0, 494.7},
    {{"A100", NULL}, "A100", 19.5, 156.0},
    {{"L40S", NULL}, "L40S", 91.6, 183.0},
    {{"RTX 4090", NULL}, "RTX 4090", 82.6, 82.6},
};

/* Case-insensitive substring test. */
static bool cli__contains(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (const char *h = hay; *h; h++) {
    size_t k = 0;
    while (k < n && h[k] && tolower((unsigned char)h[k]) == tolower((unsigned char)needle[k])) k++;
    if (k == n) return true;
  }
  return false;
}

static const cli__peak *cli__find_peak(const char *device) {
  for (size_t k = 0; k < sizeof cli__peaks / sizeof *cli__peaks; k++) {
    const cli__peak *p = &cli__peaks[k];
    if (cli__contains(device, p->match[0]) && (!p->match[1] || cli__contains(device, p->match[1])))
      return p;
  }
  return NULL;
}

double cli_peak_flops(const char *device, bool tf32, const char **label) {
  const cli__peak *p = cli__find_peak(device);
  if (label) *label = p ? p->label : NULL;
  return p ? 1e12 * (tf32 ? p->tf32 : p->fp32) : 0.0;
}

double cli_step_flops(const ct_gpt_config *m, int64_t numel, int64_t batch) {
  const double tokens = (double)(batch * m->block);
  const int64_t n_flop = numel - m->block * m->width; /* less the position table */
  return tokens * (6.0 * (double)n_flop + 12.0 * (double)(m->layers * m->width * m->block));
}

/* Whether the device backend i runs on is a GPU. */
static bool cli__selected_gpu(int i) {
  ct_device_info dev;
  return cli_selected_device(i, &dev) && dev.gpu;
}

double cli_mfu(const ct_backend *be, bool tf32, double flops, double seconds, const char **label) {
  int i = -1;
  ct_backend_info info;
  if (label) *label = NULL;
  bool is_cuda = !strcmp(ct_backend_name(be), "cuda");
  if (ct_backend_index(ct_backend_name(be), &i) != CT_OK || ct_backend_info_get(i, &info) != CT_OK ||
      !(is_cuda || cli__selected_gpu(i)) || !(seconds > 0.0))
    return NAN;
  double peak = cli_peak_flops(info.device, is_cuda && tf32, label);
  return peak > 0.0 ? flops / seconds / peak : NAN;
}

static int cli__cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct cli__opts {
  long warmup, runs; /* untimed (--warmup-steps) and timed steps */
  bool graph, tf32, trace, decode, json;
  long prompt, tokens; /* --decode */
  int plan_flags; /* CT_PLAN_NO_REWRITE with --no-rewrite */
} cli__opts;

/* One traced step's time per generator (forward and reverse apart), largest first,
 * then every rewrite that fired with the nodes it replaced. */
static void cli__print_trace(FILE *f, const ct_trace *tr, const ct_plan *p) {
  typedef struct {
    char op[40];
    int calls;
    double seconds, flops, bytes;
  } row;
  row *rows = calloc(tr->count + 1, sizeof *rows);
  if (!rows) return;
  size_t n = 0;
  double total = 0;
  for (size_t i = 0; i < tr->count; i++) {
    const ct_trace_event *e = &tr->events[i];
    size_t k = 0;
    while (k < n && strcmp(rows[k].op, e->op)) k++;
    if (k == n) snprintf(rows[n++].op, sizeof rows[0].op, "%s", e->op);
    rows[k].calls++;
    rows[k].seconds += e->seconds;
    rows[k].flops += e->flops;
    rows[k].bytes += e->bytes;
    total += e->seconds;
  }
  for (size_t i = 1; i < n; i++) /* insertion sort by time, largest first */
    for (size_t j = i; j > 0 && rows[j].seconds > rows[j - 1].seconds; j--) {
      row t = rows[j];
      rows[j] = rows[j - 1];
      rows[j - 1] = t;
    }
  fprintf(f, "         traced step (each kernel waited for; the optimizer not included):\n");
  fprintf(f, "         %-32s %5s %10s %6s %10s %10s\n", "generator", "calls", "ms", "share", "GFLOP",
         "MB moved");
  for (size_t k = 0; k < n; k++)
    fprintf(f, "         %-32s %5d %10.3f %5.1f%% %10.4f %10.2f\n", rows[k].op, rows[k].calls,
           1e3 * rows[k].seconds, total > 0 ? 100.0 * rows[k].seconds / total : 0.0,
           1e-9 * rows[k].flops, 1e-6 * rows[k].bytes);
  fprintf(f, "         %-32s %5zu %10.3f\n", "total", tr->count, 1e3 * total);
  int nr = ct_plan_rewrite_count(p);
  fprintf(f, "         rewrites%s\n", nr ? " (nodes numbered as the sweep found them):" : ": none fired");
  for (int i = 0; i < nr; i++) fprintf(f, "           %s\n", ct_plan_rewrite(p, i));
  free(rows);
}

/* The structure of the step's plan on be: [0] with rewrites, [1] without, the
 * rewrites that fired, and the parameter bytes. */
typedef struct cli__shape {
  bool ok;
  ct_plan_stats st[2];
  double param_bytes;
  char rewrites[512];
} cli__shape;

/* Kernel launches per step and planned bytes of the step's plan on be, with
 * and without rewrites, and the rewrites that fired, into out (printed under
 * the timing) and sh. */
static void cli__structure(const ct_morphism *loss, const ct_backend *be, const cli__opts *o,
                           const ct_plan *timed, char *out, size_t n, cli__shape *sh) {
  ct_plan *other = NULL;
  ct_plan_stats *st = sh->st;
  const ct_plan *plans[2];
  int other_flags = CT_PLAN_REVERSE | (o->plan_flags ? 0 : CT_PLAN_NO_REWRITE);
  if (ct_compile(&other, loss, be, other_flags) != CT_OK) {
    snprintf(out, n, "         structure: %s\n", ct_last_error());
    return;
  }
  /* [0]: with rewrites, [1]: without */
  plans[o->plan_flags ? 1 : 0] = timed;
  plans[o->plan_flags ? 0 : 1] = other;
  for (int k = 0; k < 2; k++) ct_plan_stats_get(plans[k], &st[k]);
  ct_plan_stats timed_st; /* parameters, gradients and optimizer state: the trainer's plan */
  ct_plan_stats_get(timed, &timed_st);
  sh->ok = true;
  sh->param_bytes = (double)timed_st.param_bytes;
  cli_rewrite_summary(plans[0], sh->rewrites, sizeof sh->rewrites);
  snprintf(out, n, "         %d nodes, %d launches/step, %.1f MiB planned + %.1f MiB "
           "parameters; without rewrites %d nodes, %d launches, %.1f MiB; %s%s\n",
         st[0].nodes, st[0].steps, st[0].planned_bytes / 1048576.0,
         timed_st.param_bytes / 1048576.0,
         st[1].nodes, st[1].steps, st[1].planned_bytes / 1048576.0,
         sh->rewrites, o->plan_flags ? " (timed without)" : "");
  ct_plan_free(other);
}

/* Builds the model and trainer on be and times the steps into ms[0..runs).
 * Returns false after printing an error. */
static bool cli__time_backend(const cli_config *cfg, const ct_backend *be, const cli__opts *o,
                              const int32_t *in, const int32_t *tg, double *ms, char *structure,
                              size_t structure_len, cli__shape *sh) {
  ct_gpt *g = NULL;
  ct_morphism *loss = NULL;
  ct_trainer *t = NULL;
  ct_optimizer opt = cli_config_optimizer(cfg);
  const int64_t tokens = cfg->batch * cfg->model.block;
  bool is_cuda = !strcmp(ct_backend_name(be), "cuda");
  ct_status s = ct_gpt_new(&g, &cfg->model, cfg->seed);
  if (s == CT_OK) s = ct_gpt_loss(&loss, g, cfg->batch, cfg->model.block);
  if (s == CT_OK) s = ct_trainer_new_flags(&t, loss, be, &opt, o->plan_flags);
  if (s == CT_OK && is_cuda && o->graph) s = ct_trainer_set_graph(t, true); /* as train --graph */
  if (s == CT_OK) s = ct_trainer_set_input(t, 0, in, tokens);
  if (s == CT_OK) s = ct_trainer_set_input(t, 1, tg, tokens);
  for (long k = 0; k < o->warmup && s == CT_OK; k++) s = ct_trainer_step(t, 1);
  for (long k = 0; k < o->runs && s == CT_OK; k++) {
    double t0 = cli_now();
    s = ct_trainer_step(t, 1); /* reads the loss back: waits for the device */
    ms[k] = 1e3 * (cli_now() - t0);
  }
  if (s != CT_OK) {
    char what[64];
    snprintf(what, sizeof what, "backend %s", ct_backend_name(be));
    cli_lib_error(CLI__CMD, what);
  } else {
    cli__structure(loss, be, o, ct_trainer_plan(t), structure, structure_len, sh);
  }
  if (s == CT_OK && o->trace && !(is_cuda && o->graph)) {
    ct_plan *p = ct_trainer_plan(t);
    ct_trace tr;
    ct_trace_init(&tr);
    s = ct_plan_set_tracing(p, true);
    if (s == CT_OK) s = ct_trainer_step(t, 1);
    if (s == CT_OK) s = ct_plan_take_trace(p, &tr);
    ct_plan_set_tracing(p, false);
    size_t used = strlen(structure);
    FILE *f = fmemopen(structure + used, structure_len - used, "w");
    if (s == CT_OK && f) cli__print_trace(f, &tr, p);
    if (f) fclose(f);
    ct_trace_free(&tr);
    if (s != CT_OK) cli_lib_error(CLI__CMD, "--trace");
  }
  ct_trainer_free(t);
  ct_morphism_free(loss);
  ct_gpt_free(g);
  return s == CT_OK;
}

/* Whether backend i is one to time (all of them, or index want) and present: then *be and
 * *info are set. An absent one is a skipped row under all, else an error in *code. */
static bool cli__bench_backend(int i, bool all, int want, ct_backend_info *info,
                               const ct_backend **be, int *code, cli_json *j) {
  if (!all && i != want) return false;
  if (ct_backend_info_get(i, info) != CT_OK) return false;
  if (info->present && ct_backend_get(info->name, be) == CT_OK) return true;
  char reason[200];
  snprintf(reason, sizeof reason, "%.199s", info->present ? ct_last_error() : info->reason);
  for (char *c = reason; *c; c++)
    if (*c == '\n') *c = ' ';
  if (!all) {
    *code = cli_error(CLI__CMD, CLI_FAIL, "backend %s is absent: %s", info->name, reason);
  } else if (j) {
    cli_json_open(j, NULL, '{');
    cli_json_str(j, "backend", info->name);
    cli_json_bool(j, "present", false);
    cli_json_str(j, "reason", reason);
    cli_json_close(j);
  } else {
    printf("%-7s  absent: %s (skipped)\n", info->name, reason);
  }
  return false;
}

/* Prefill and decode times of one generation on be: the prompt, then o->tokens greedy
 * tokens. false after printing an error. */
static bool cli__time_decode(ct_decoder *d, int V, const int32_t *prompt, const cli__opts *o,
                             double *prefill, double *decode) {
  float *logits = malloc((size_t)V * sizeof *logits);
  if (!logits) return cli_error(CLI__CMD, CLI_FAIL, "out of host memory"), false;
  ct_status s = ct_decoder_reset(d);
  double t0 = cli_now();
  if (s == CT_OK) s = ct_decoder_append(d, prompt, o->prompt, logits);
  double t1 = cli_now();
  for (long k = 0; k < o->tokens && s == CT_OK; k++) {
    int32_t best = 0;
    for (int j = 1; j < V; j++)
      if (logits[j] > logits[best]) best = j;
    s = ct_decoder_append(d, &best, 1, logits);
  }
  double t2 = cli_now();
  free(logits);
  if (s != CT_OK) return cli_lib_error(CLI__CMD, "decoding"), false;
  *prefill = t1 - t0;
  *decode = t2 - t1;
  return true;
}

static double cli__median(double *x, long n) {
  qsort(x, (size_t)n, sizeof *x, cli__cmp_double);
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* The model's description, common to the JSON of both modes. */
static void cli__json_model(cli_json *j, const cli_config *cfg, int64_t numel) {
  cli_json_open(j, "model", '{');
  cli_json_str(j, "config", cfg->name);
  cli_json_int(j, "layers", cfg->model.layers);
  cli_json_int(j, "heads", cfg->model.heads);
  cli_json_int(j, "width", cfg->model.width);
  cli_json_int(j, "block", cfg->model.block);
  cli_json_int(j, "vocab", cfg->model.vocab);
  cli_json_int(j, "parameters", numel);
  cli_json_u64(j, "seed", cfg->seed);
  cli_json_close(j);
}

/* ctml bench --decode: generation with and without the cache on each backend. */
static int cli__bench_decode(const cli_config *cfg, const char *backend, bool all,
                             const cli__opts *o) {
  ct_gpt *g = NULL;
  if (ct_gpt_new(&g, &cfg->model, cfg->seed) != CT_OK) return cli_lib_error(CLI__CMD, "model");
  const int V = (int)cfg->model.vocab;
  int32_t *prompt = malloc((size_t)o->prompt * sizeof *prompt);
  double *pf = malloc((size_t)o->runs * sizeof *pf), *dc = malloc((size_t)o->runs * sizeof *dc);
  if (!prompt || !pf || !dc) {
    free(prompt), free(pf), free(dc), ct_gpt_free(g);
    return cli_error(CLI__CMD, CLI_FAIL, "out of host memory");
  }
  uint64_t rng = cfg->seed;
  for (long k = 0; k < o->prompt; k++) prompt[k] = (int32_t)(ct_splitmix64(&rng) % (uint64_t)V);
  cli_json jw, *j = o->json ? &jw : NULL;
  if (j) {
    cli_json_init(j, stdout);
    cli_json_open(j, NULL, '{');
    cli_json_str(j, "mode", "decode");
    cli__json_model(j, cfg, ct_gpt_numel(g));
    cli_json_int(j, "batch", 1);
    cli_json_int(j, "prompt", o->prompt);
    cli_json_int(j, "tokens", o->tokens);
    cli_json_int(j, "runs", o->runs);
    cli_json_open(j, "results", '[');
  } else {
    printf("ctml bench --decode: %s, %lld layer%s, %lld head%s, width %lld, block %lld, "
           "vocabulary %d, %lld parameters; batch 1, prompt %ld, %ld greedy tokens, median of %ld "
           "(after one warm-up)\n", cfg->name, (long long)cfg->model.layers,
           cli_s(cfg->model.layers), (long long)cfg->model.heads, cli_s(cfg->model.heads),
           (long long)cfg->model.width, (long long)cfg->model.block, V, (long long)ct_gpt_numel(g),
           o->prompt, o->tokens, o->runs);
    printf("%-7s  %-9s  %12s  %14s  %12s  %s\n", "backend", "path", "prefill ms", "decode ms/tok",
           "tokens/s", "window restarts");
  }
  int code = CLI_OK;
  int want = -1;
  if (!all) (void)ct_backend_index(backend, &want);
  for (int i = 0; i < ct_backend_count(); i++) {
    ct_backend_info info;
    const ct_backend *be = NULL;
    if (!cli__bench_backend(i, all, want, &info, &be, &code, j)) continue;
    double per_token[2] = {0, 0};
    for (int path = 0; path < 2; path++) {
      const char *path_name = path ? "no cache" : "cache";
      ct_decoder *d = NULL;
      if (ct_decoder_new(&d, g, be, 1, path ? CT_DECODE_NO_CACHE : 0) != CT_OK) {
        if (j) {
          cli_json_open(j, NULL, '{');
          cli_json_str(j, "backend", info.name);
          cli_json_str(j, "path", path_name);
          cli_json_str(j, "error", ct_last_error());
          cli_json_close(j);
        } else {
          printf("%-7s  %-9s  %s\n", info.name, path_name, ct_last_error());
        }
        continue;
      }
      bool ok = true;
      for (long r = -1; r < o->runs && ok; r++) {
        double a, b;
        ok = cli__time_decode(d, V, prompt, o, &a, &b);
        if (ok && r >= 0) pf[r] = a, dc[r] = b;
      }
      ct_decode_stats st;
      ct_decoder_stats(d, &st);
      ct_decoder_free(d);
      if (!ok) {
        code = CLI_FAIL;
        continue;
      }
      double p = cli__median(pf, o->runs), q = cli__median(dc, o->runs);
      per_token[path] = q / (double)o->tokens;
      long long restarts = (long long)(st.restarts / (o->runs + 1));
      if (j) {
        cli_json_open(j, NULL, '{');
        cli_json_str(j, "backend", info.name);
        cli_json_str(j, "device", info.device);
        cli_json_str(j, "path", path_name);
        cli_json_num(j, "prefill_ms", 1e3 * p);
        cli_json_num(j, "decode_ms_per_token", 1e3 * per_token[path]);
        cli_json_num(j, "tokens_per_s", (double)o->tokens / q);
        cli_json_int(j, "window_restarts_per_run", restarts);
        cli_json_close(j);
      } else {
        printf("%-7s  %-9s  %12.2f  %14.3f  %12.1f  %lld per run\n", info.name, path_name,
               1e3 * p, 1e3 * per_token[path], (double)o->tokens / q, restarts);
        fflush(stdout);
      }
    }
    if (!j && per_token[0] > 0 && per_token[1] > 0)
      printf("%-7s  decode with the cache is %.1fx faster than without\n", info.name,
             per_token[1] / per_token[0]);
  }
  if (j) {
    cli_json_close(j);
    cli_json_close(j);
  }
  free(prompt);
  free(pf);
  free(dc);
  ct_gpt_free(g);
  return code;
}

/* Training flags that do not change what a step costs: refused (usage), with
 * what to use instead where bench has its own. */
static const struct {
  const char *flag, *instead;
} cli__refused[] = {
    {"--steps", " (the timed steps are --runs N)"},
    {"--warmup", " (the untimed steps are --warmup-steps N)"},
    {"--lr", ""}, {"--min-lr", ""}, {"--weight-decay", ""}, {"--clip", ""},
    {"--beta1", ""}, {"--beta2", ""}, {"--eval-every", ""}, {"--eval-batches", ""},
    {"--save-every", ""},
};

int cli_bench(int argc, char **argv) {
  const char *preset = NULL, *backend = "all";
  cli__opts o = {3, 10, false, false, false, false, false, 16, 100, 0};
  bool runs_given = false, batch_given = false;
  cli_config cfg;
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      cli__usage(stdout);
      return CLI_OK;
    }
  if (cli_config_from_args(&cfg, CLI__CMD, argc, argv, &preset) != CLI_OK) return CLI_USAGE;
  cfg.model.vocab = CLI__VOCAB;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    int r;
    if (!strcmp(a, CLI_NO_REWRITE_FLAG)) {
      o.plan_flags = CT_PLAN_NO_REWRITE;
      continue;
    }
    if (!strcmp(a, "--trace") || !strcmp(a, "--decode") || !strcmp(a, "--json")) {
      *(a[2] == 't' ? &o.trace : a[2] == 'd' ? &o.decode : &o.json) = true;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--prompt", &v)) != 0) {
      if (r < 0 || !cli_parse_long(CLI__CMD, "--prompt", v, 1, 1L << 20, &o.prompt))
        return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--tokens", &v)) != 0) {
      if (r < 0 || !cli_parse_long(CLI__CMD, "--tokens", v, 1, 1L << 20, &o.tokens))
        return CLI_USAGE;
      continue;
    }
    if (!strcmp(a, "--graph") || !strcmp(a, "--tf32")) {
      *(a[2] == 'g' ? &o.graph : &o.tf32) = true;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--config", &v)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--backend", &backend))) {
      if (r < 0) return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--warmup-steps", &v)) != 0) {
      if (r < 0 || !cli_parse_long(CLI__CMD, "--warmup-steps", v, 0, 100000, &o.warmup))
        return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--runs", &v)) != 0) {
      if (r < 0 || !cli_parse_long(CLI__CMD, "--runs", v, 1, 100000, &o.runs)) return CLI_USAGE;
      runs_given = true;
      continue;
    }
    for (size_t k = 0; k < sizeof cli__refused / sizeof *cli__refused; k++)
      if (cli_flag_is(a, cli__refused[k].flag))
        return cli_error(CLI__CMD, CLI_USAGE, "%s is a training flag that does nothing for bench: "
                         "it does not change what a step costs%s", cli__refused[k].flag,
                         cli__refused[k].instead);
    char flag[32];
    if ((r = cli_config_arg(&cfg, CLI__CMD, argc, argv, &i, flag, &v)) != 0) {
      if (r < 0) return CLI_USAGE;
      batch_given |= !strcmp(flag, "--batch");
      continue;
    }
    return cli_error(CLI__CMD, CLI_USAGE, "unknown option '%s' (see 'ctml bench --help')", a);
  }
  /* the schedule stays the preset's (its flags are refused), so warmup < steps holds */
  if (!cli_config_check(&cfg, CLI__CMD)) return CLI_USAGE;
  char base[32];
  cli_config_rename(&cfg, base);
  if (!cli_backend_known(CLI__CMD, backend, true)) return CLI_USAGE;
  bool all = !strcmp(backend, "all");
  int index = -1;
  ct_backend_info named;
  if (!all) (void)ct_backend_index(backend, &index);
  if (index >= 0 && ct_backend_info_get(index, &named) == CT_OK && !named.present)
    /* a named backend must be there */
    return cli_error(CLI__CMD, CLI_FAIL, "backend %s is absent: %s", named.name, named.reason);
  if (o.decode && (o.graph || o.tf32 || o.trace || o.plan_flags))
    return cli_error(CLI__CMD, CLI_USAGE, "--decode times generation; --graph, --tf32, --trace "
                     "and --no-rewrite apply to the training step");
  if (o.decode && batch_given)
    return cli_error(CLI__CMD, CLI_USAGE, "--batch does nothing for bench --decode (it decodes "
                     "one sequence)");
  if (!o.decode && o.json && o.trace)
    return cli_error(CLI__CMD, CLI_USAGE, "--trace prints a table; it has no --json form");
  if (o.decode) {
    if (!runs_given) o.runs = 3;
    return cli__bench_decode(&cfg, backend, all, &o);
  }
  if ((o.graph || o.tf32) && !all && strcmp(backend, "cuda"))
    return cli_error(CLI__CMD, CLI_USAGE, "%s applies to the cuda backend only",
                     o.graph ? "--graph" : "--tf32");

  /* the model's size and FLOPs: build it once on the host */
  ct_gpt *probe = NULL;
  if (ct_gpt_new(&probe, &cfg.model, cfg.seed) != CT_OK) return cli_lib_error(CLI__CMD, "model");
  const int64_t B = cfg.batch, T = cfg.model.block, C = cfg.model.width, L = cfg.model.layers;
  const int64_t numel = ct_gpt_numel(probe);
  ct_gpt_free(probe);
  const double tokens = (double)(B * T);
  const double flops = cli_step_flops(&cfg.model, numel, B);

  int32_t *in = malloc((size_t)(B * T) * sizeof *in), *tg = malloc((size_t)(B * T) * sizeof *tg);
  double *ms = malloc((size_t)o.runs * sizeof *ms);
  if (!in || !tg || !ms) {
    free(in);
    free(tg);
    free(ms);
    return cli_error(CLI__CMD, CLI_FAIL, "out of host memory");
  }
  uint64_t rng = cfg.seed;
  for (int64_t k = 0; k < B * T; k++) {
    in[k] = (int32_t)(ct_splitmix64(&rng) % CLI__VOCAB);
    tg[k] = (int32_t)(ct_splitmix64(&rng) % CLI__VOCAB);
  }

  cli_json jw, *j = o.json ? &jw : NULL;
  if (j) {
    cli_json_init(j, stdout);
    cli_json_open(j, NULL, '{');
    cli_json_str(j, "mode", "train_step");
    cli__json_model(j, &cfg, numel);
    cli_json_int(j, "batch", B);
    cli_json_num(j, "tokens_per_step", tokens);
    cli_json_num(j, "gflop_per_step", flops * 1e-9);
    cli_json_int(j, "untimed_steps", o.warmup);
    cli_json_int(j, "timed_steps", o.runs);
    cli_json_bool(j, "graph", o.graph);
    cli_json_bool(j, "tf32", o.tf32);
    cli_json_bool(j, "rewrite", !o.plan_flags);
    cli_json_open(j, "results", '[');
  } else {
    printf("ctml bench: %s, %lld layer%s, %lld head%s, width %lld, block %lld, vocabulary %d, "
           "%lld parameters; batch %lld x %lld = %.0f tokens/step, %.3g GFLOP/step; %ld untimed "
           "+ %ld timed steps%s%s\n", cfg.name, (long long)L, cli_s(L),
           (long long)cfg.model.heads, cli_s(cfg.model.heads), (long long)C, (long long)T,
           CLI__VOCAB, (long long)numel, (long long)B, (long long)T, tokens, flops * 1e-9,
           o.warmup, o.runs, o.graph ? "; cuda: step graph" : "", o.tf32 ? "; cuda: TF32" : "");
    printf("%-7s  %-32s  %21s  %10s  %9s  %s\n", "backend", "device", "ms/step median (min)",
           "tokens/s", "GFLOP/s", "MFU");
  }
  fflush(stdout);
  int code = CLI_OK;
  int want = -1;
  if (!all) (void)ct_backend_index(backend, &want);
  for (int i = 0; i < ct_backend_count(); i++) {
    ct_backend_info info;
    const ct_backend *be = NULL;
    if (!cli__bench_backend(i, all, want, &info, &be, &code, j)) continue;
    bool is_cuda = !strcmp(info.name, "cuda");
    if (is_cuda && cli_cuda_flags(CLI__CMD, be, o.tf32, o.graph) != CLI_OK) {
      code = CLI_FAIL;
      continue;
    }
    fflush(stdout);
    char structure[16384] = "";
    cli__shape sh;
    memset(&sh, 0, sizeof sh);
    if (!cli__time_backend(&cfg, be, &o, in, tg, ms, structure, sizeof structure, &sh)) {
      if (j) {
        cli_json_open(j, NULL, '{');
        cli_json_str(j, "backend", info.name);
        cli_json_bool(j, "present", true);
        cli_json_str(j, "error", ct_last_error());
        cli_json_close(j);
      } else {
        printf("%-7s  failed (see above)\n", info.name);
      }
      code = CLI_FAIL;
      continue;
    }
    qsort(ms, (size_t)o.runs, sizeof *ms, cli__cmp_double);
    double med = cli__median(ms, o.runs);
    double achieved = flops / (med * 1e-3); /* model FLOP/s */
    char mfu_text[200] = "-", timing[40];
    bool gpu = is_cuda || cli__selected_gpu(i), tf32 = is_cuda && o.tf32;
    const char *label = NULL;
    double peak = gpu ? cli_peak_flops(info.device, tf32, &label) : 0.0;
    double mfu = peak > 0.0 ? achieved / peak : NAN;
    if (peak > 0.0)
      snprintf(mfu_text, sizeof mfu_text, "%.3g%% of %g TFLOP/s (%s %s)", 100.0 * mfu,
               peak * 1e-12, label, tf32 ? "TF32 tensor cores, dense" : "FP32");
    else if (gpu)
      snprintf(mfu_text, sizeof mfu_text, "MFU n/a (peak of '%.150s' unknown)", info.device);
    if (j) {
      cli_json_open(j, NULL, '{');
      cli_json_str(j, "backend", info.name);
      cli_json_bool(j, "present", true);
      cli_json_str(j, "device", info.device);
      cli_json_bool(j, "gpu", gpu);
      cli_json_num(j, "ms_median", med);
      cli_json_num(j, "ms_min", ms[0]);
      cli_json_num(j, "tokens_per_s", tokens / (med * 1e-3));
      cli_json_num(j, "gflops", achieved * 1e-9);
      cli_json_num(j, "mfu", mfu);
      cli_json_num(j, "peak_tflops", peak > 0.0 ? peak * 1e-12 : NAN);
      cli_json_str(j, "peak", label);
      if (sh.ok) {
        cli_json_open(j, "plan", '{');
        cli_json_int(j, "nodes", sh.st[0].nodes);
        cli_json_int(j, "launches", sh.st[0].steps);
        cli_json_num(j, "planned_mib", sh.st[0].planned_bytes / 1048576.0);
        cli_json_num(j, "parameter_mib", sh.param_bytes / 1048576.0);
        cli_json_int(j, "nodes_without_rewrites", sh.st[1].nodes);
        cli_json_int(j, "launches_without_rewrites", sh.st[1].steps);
        cli_json_num(j, "planned_mib_without_rewrites", sh.st[1].planned_bytes / 1048576.0);
        cli_json_str(j, "rewrites", sh.rewrites);
        cli_json_close(j);
      }
      cli_json_close(j);
      continue;
    }
    snprintf(timing, sizeof timing, "%.2f (%.2f)", med, ms[0]);
    /* the device's name, without the details in parentheses */
    char short_dev[128];
    snprintf(short_dev, sizeof short_dev, "%s", info.device);
    char *paren = strstr(short_dev, " (");
    if (paren) *paren = '\0';
    printf("%-7s  %-32.32s  %21s  %10.0f  %9.2f  %s\n%s", info.name, short_dev, timing,
           tokens / (med * 1e-3), achieved * 1e-9, mfu_text, structure);
    fflush(stdout);
  }
  if (j) {
    cli_json_close(j);
    cli_json_close(j);
  }
  free(in);
  free(tg);
  free(ms);
  return code;
}
