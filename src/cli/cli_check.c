/* SPDX-License-Identifier: MIT */
/* ctml check: one GPT training step on a device backend against cpu_ref.
 * First the loss morphism node by node (ct_check: every forward result, every
 * input cotangent, every parameter gradient), then the AdamW update: both
 * backends take one ct_trainer_step from the same parameters on the same
 * batch and every updated parameter is compared. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

#define CLI__CMD "check"
/* Vocabulary without a checkpoint: 95 printable ASCII bytes and newline, the
 * size of a typical English character vocabulary. */
#define CLI__VOCAB 96
#define CLI__MAX_PAIRS 64

/* The text report goes to cli__out: stdout, or nowhere with --json, whose
 * object (cli__j, else NULL) goes to stdout. */
static FILE *cli__out;
static cli_json *cli__j;

static void cli__usage(FILE *f) {
  fprintf(f,
          "usage: ctml check [--backend NAME] [--config tiny|micro|small] [config flags]\n"
          "                  [--checkpoint DIR|FILE] [--seed N] [--verbose] [--rewrite] [--json]\n"
          "Compiles the GPT training step (the loss of a batch x block batch, forward and\n"
          "reverse) on a device backend and on the CPU reference, runs both on the same\n"
          "random batch, and compares every node's forward result and input cotangent,\n"
          "every parameter gradient and every parameter after one AdamW update. Exit\n"
          "status 0 when all agree, 1 when something diverges or a backend fails, 2 on bad\n"
          "usage. --config small is GPU-sized: on a 2-core CPU the reference side takes\n"
          "minutes (lower --batch for a quicker check).\n"
          "  --backend NAME    auto (default: cuda if present, else opencl on any device),\n"
          "                    cuda, opencl, or cpu (compares the reference with itself)\n"
          "  --config NAME     preset: tiny (default), micro or small\n"
          "  --checkpoint P    a run directory or checkpoint file: its config and parameters\n"
          "                    (model-shape flags are refused; training flags may change)\n"
          "  --seed N          seed of the random batch (splitmix64; default 1). Without a\n"
          "                    checkpoint the parameters are the preset's initialisation\n"
          "                    (seed 1337, as 'ctml train' starts) and the vocabulary is %d\n"
          "  --verbose         every compared result, not one line per node\n"
          "  --rewrite         also compare, on the device, the plan with the rewrite rules\n"
          "                    (fusions) against the plan as built: the loss, every input\n"
          "                    cotangent and every parameter gradient\n"
          "  --json            one JSON object on stdout instead of the tables: the model,\n"
          "                    every node's and parameter gradient's largest error and ratio,\n"
          "                    every updated parameter, the first divergent result, \"passed\"\n"
          "  model and optimizer (override the preset; the optimizer and schedule set the\n"
          "  update compared, e.g. the learning rate of step 1 after --warmup):\n"
          "    --layers N --heads N --width N --block N   transformer shape\n"
          "    --batch N                                  sequences in the batch\n"
          "    --lr X --min-lr X --warmup N --steps N     AdamW rate and its schedule\n"
          "    --weight-decay X --clip X --beta1 X --beta2 X\n"
          "  --eval-every, --eval-batches and --save-every are refused: check trains no run.\n",
          CLI__VOCAB);
  cli_env_usage(f, false);
}

/* The rewritten plan of loss on be against the plan as built, at the
 * boundaries: the loss and every parameter gradient after one forward and
 * reverse on the batch. Prints a line; false after printing an error. */
static bool cli__check_rewrite(const ct_morphism *loss, const ct_gpt *g, const ct_backend *be,
                               const int32_t *in, const int32_t *tg, int64_t n, bool *ok) {
  ct_plan *p[2] = {NULL, NULL};
  float *a = NULL, *b = NULL;
  double worst = 0.0;
  int results = 0;
  ct_status s = ct_compile(&p[0], loss, be, CT_PLAN_REVERSE);
  if (s == CT_OK) s = ct_compile(&p[1], loss, be, CT_PLAN_REVERSE | CT_PLAN_NO_REWRITE);
  for (int k = 0; k < 2 && s == CT_OK; k++) {
    const float one = 1.0f;
    s = ct_plan_set_input(p[k], 0, in, n);
    if (s == CT_OK) s = ct_plan_set_input(p[k], 1, tg, n);
    if (s == CT_OK) s = ct_plan_forward(p[k]);
    if (s == CT_OK) s = ct_plan_set_output_grad(p[k], 0, &one, 1);
    if (s == CT_OK) s = ct_plan_reverse(p[k]);
  }
  float la = 0, lb = 0;
  if (s == CT_OK) s = ct_plan_get_output(p[0], 0, &la, 1);
  if (s == CT_OK) s = ct_plan_get_output(p[1], 0, &lb, 1);
  if (s == CT_OK) {
    worst = fabs((double)la - lb) / (1e-5 + 1e-4 * fabs((double)lb));
    results = 1;
  }
  for (int i = 0; s == CT_OK && i < ct_gpt_param_count(g); i++) {
    const ct_param *param = ct_gpt_param(g, i);
    int64_t c = ct_param_numel(param);
    free(a);
    free(b);
    a = malloc((size_t)c * sizeof *a);
    b = malloc((size_t)c * sizeof *b);
    if (!a || !b) {
      free(a);
      free(b);
      ct_plan_free(p[0]);
      ct_plan_free(p[1]);
      cli_error(CLI__CMD, CLI_FAIL, "out of host memory");
      return false;
    }
    s = ct_plan_get_param_grad(p[0], param, a, c);
    if (s == CT_OK) s = ct_plan_get_param_grad(p[1], param, b, c);
    for (int64_t k = 0; s == CT_OK && k < c; k++) {
      double r = fabs((double)a[k] - b[k]) / (1e-5 + 1e-4 * fabs((double)b[k]));
      if (!(r <= worst)) worst = isfinite(r) ? r : INFINITY;
    }
    results++;
  }
  free(a);
  free(b);
  if (s != CT_OK) {
    cli_lib_error(CLI__CMD, "--rewrite");
    ct_plan_free(p[0]);
    ct_plan_free(p[1]);
    return false;
  }
  char rw[512];
  *ok = worst <= 1.0;
  if (cli__j) {
    cli_json_open(cli__j, "rewrite", '{');
    cli_json_str(cli__j, "rewrites", cli_rewrite_summary(p[0], rw, sizeof rw));
    cli_json_num(cli__j, "loss", la);
    cli_json_num(cli__j, "loss_as_built", lb);
    cli_json_int(cli__j, "parameter_gradients", results - 1);
    cli_json_num(cli__j, "worst_ratio", worst);
    cli_json_bool(cli__j, "agree", *ok);
    cli_json_close(cli__j);
  }
  fprintf(cli__out, "rewrite: %s; rewritten against as built on %s: loss %.7g vs %.7g and %d parameter "
         "gradients, worst tolerance ratio %.3g: %s\n",
         cli_rewrite_summary(p[0], rw, sizeof rw), ct_backend_name(be), la, lb, results - 1, worst,
         *ok ? "agree" : "DIVERGE");
  ct_plan_free(p[0]);
  ct_plan_free(p[1]);
  return true;
}

/* Model-shape flags, fixed by a checkpoint. */
static bool cli__is_shape_flag(const char *flag) {
  return !strcmp(flag, "--layers") || !strcmp(flag, "--heads") || !strcmp(flag, "--width") ||
         !strcmp(flag, "--block");
}

typedef struct cli__pair {
  char flag[32];
  const char *value;
} cli__pair;

/* argv[*i] as a config flag, validated on a scratch config and recorded in
 * pair (applied once the config is known). As cli_config_arg. */
static int cli__config_arg(int argc, char **argv, int *i, cli__pair *pair) {
  cli_config scratch;
  cli_config_preset(&scratch, "tiny");
  return cli_config_arg(&scratch, CLI__CMD, argc, argv, i, pair->flag, &pair->value);
}

/* The device backend to check. auto: cuda if present, else opencl on any
 * device; none present is an error naming both reasons. */
static bool cli__pick(const char *name, const ct_backend **out, int *code, char *note,
                      size_t note_len) {
  *code = CLI_FAIL;
  if (strcmp(name, "auto") != 0) {
    int index = -1;
    if (ct_backend_index(name, &index) != CT_OK) {
      *code = CLI_USAGE;
      cli_error(CLI__CMD, CLI_USAGE, "--backend: unknown backend '%s' (auto, cuda, opencl, cpu)",
                name);
      return false;
    }
    if (ct_backend_get(name, out) != CT_OK) {
      cli_lib_error(CLI__CMD, "--backend");
      return false;
    }
    return true;
  }
  char why[2][240] = {"not built", "not built"};
  static const char *const order[2] = {"cuda", "opencl"};
  for (int o = 0; o < 2; o++) {
    int i = -1;
    ct_backend_info info;
    if (ct_backend_index(order[o], &i) != CT_OK || ct_backend_info_get(i, &info) != CT_OK)
      continue;
    if (info.present && ct_backend_get(info.name, out) == CT_OK) {
      if (o == 1) snprintf(note, note_len, "auto: cuda not present (%.150s)", why[0]);
      return true;
    }
    snprintf(why[o], sizeof why[o], "%.200s", info.present ? ct_last_error() : info.reason);
  }
  cli_error(CLI__CMD, CLI_FAIL, "no device backend is present (cuda: %s; opencl: %s)", why[0],
            why[1]);
  return false;
}

/* The backend's device, as ct_backend_info describes it. */
static const char *cli__device(const char *name, char *buf, size_t len) {
  snprintf(buf, len, "?");
  int i = -1;
  ct_backend_info info;
  if (ct_backend_index(name, &i) == CT_OK && ct_backend_info_get(i, &info) == CT_OK)
    snprintf(buf, len, "%s", info.device);
  return buf;
}

/* One row of the node table: a node's forward outputs and input cotangents. */
typedef struct cli__row {
  int node;
  char op[40];
  int64_t elements;          /* forward output elements */
  double fwd_abs, fwd_ratio; /* largest over its outputs */
  double rev_abs, rev_ratio; /* largest over its input cotangents */
  bool has_fwd, has_rev, pass;
} cli__row;

static void cli__fmt_ratio(char *buf, size_t len, bool has, bool nonfinite, double ratio) {
  if (!has)
    snprintf(buf, len, "-");
  else if (nonfinite)
    snprintf(buf, len, "NaN/Inf");
  else
    snprintf(buf, len, "%.3g", ratio);
}

/* One line per node (execution order), one per parameter gradient, then the
 * guard results. Returns false when out of memory. */
static bool cli__print_nodes(const ct_check_report *r) {
  cli__row *rows = calloc((size_t)r->count + 1, sizeof *rows);
  if (!rows) return false;
  int n = 0;
  for (int k = 0; k < r->count; k++) {
    const ct_check_entry *e = &r->entries[k];
    if (e->node < 0 || e->detail[0]) continue;
    int j = 0;
    while (j < n && rows[j].node != e->node) j++;
    cli__row *w = &rows[j];
    if (j == n) {
      n++;
      w->node = e->node;
      w->pass = true;
      if (sscanf(e->label, "node %*d %39s", w->op) != 1) snprintf(w->op, sizeof w->op, "?");
    }
    double ratio = e->nonfinite ? INFINITY : e->max_ratio;
    if (e->dir == CT_FORWARD) {
      w->has_fwd = true;
      w->elements += e->elements;
      if (e->max_abs > w->fwd_abs) w->fwd_abs = e->max_abs;
      if (ratio > w->fwd_ratio) w->fwd_ratio = ratio;
    } else {
      w->has_rev = true;
      if (e->max_abs > w->rev_abs) w->rev_abs = e->max_abs;
      if (ratio > w->rev_ratio) w->rev_ratio = ratio;
    }
    w->pass = w->pass && e->pass;
  }
  if (cli__j) cli_json_open(cli__j, "nodes", '[');
  fprintf(cli__out, "%5s  %-20s %9s  %12s %9s  %12s %9s  %s\n", "node", "op", "elements", "fwd max|a-b|",
         "ratio", "rev max|a-b|", "ratio", "result");
  char fr[24], rr[24], fa[24], ra[24];
  for (int j = 0; j < n; j++) {
    const cli__row *w = &rows[j];
    cli__fmt_ratio(fr, sizeof fr, w->has_fwd, isinf(w->fwd_ratio), w->fwd_ratio);
    cli__fmt_ratio(rr, sizeof rr, w->has_rev, isinf(w->rev_ratio), w->rev_ratio);
    snprintf(fa, sizeof fa, w->has_fwd ? "%.3g" : "-", w->fwd_abs);
    snprintf(ra, sizeof ra, w->has_rev ? "%.3g" : "-", w->rev_abs);
    fprintf(cli__out, "%5d  %-20s %9lld  %12s %9s  %12s %9s  %s\n", w->node, w->op, (long long)w->elements,
           fa, fr, ra, rr, w->pass ? "PASS" : "FAIL");
    if (cli__j) { /* absent directions and NaN/Inf ratios are null */
      cli_json_open(cli__j, NULL, '{');
      cli_json_int(cli__j, "node", w->node);
      cli_json_str(cli__j, "op", w->op);
      cli_json_int(cli__j, "elements", w->elements);
      cli_json_num(cli__j, "forward_max_abs", w->has_fwd ? w->fwd_abs : NAN);
      cli_json_num(cli__j, "forward_ratio", w->has_fwd ? w->fwd_ratio : NAN);
      cli_json_num(cli__j, "reverse_max_abs", w->has_rev ? w->rev_abs : NAN);
      cli_json_num(cli__j, "reverse_ratio", w->has_rev ? w->rev_ratio : NAN);
      cli_json_bool(cli__j, "pass", w->pass);
      cli_json_close(cli__j);
    }
  }
  free(rows);
  if (cli__j) {
    cli_json_close(cli__j);
    cli_json_open(cli__j, "parameter_gradients", '[');
  }
  fprintf(cli__out, "%-27s %9s  %12s %9s  %s\n", "parameter gradient", "elements", "max|a-b|", "ratio",
         "result");
  for (int k = 0; k < r->count; k++) {
    const ct_check_entry *e = &r->entries[k];
    if (e->detail[0]) {
      fprintf(cli__out, "%s: %s  FAIL\n", e->label, e->detail);
      if (cli__j) {
        cli_json_open(cli__j, NULL, '{');
        cli_json_str(cli__j, "name", e->label);
        cli_json_str(cli__j, "error", e->detail);
        cli_json_bool(cli__j, "pass", false);
        cli_json_close(cli__j);
      }
      continue;
    }
    if (e->node >= 0) continue;
    char name[96];
    if (sscanf(e->label, "param %95s", name) != 1) snprintf(name, sizeof name, "%s", e->label);
    cli__fmt_ratio(fr, sizeof fr, true, e->nonfinite, e->max_ratio);
    fprintf(cli__out, "%-27s %9lld  %12.3g %9s  %s\n", name, (long long)e->elements, e->max_abs, fr,
           e->pass ? "PASS" : "FAIL");
    if (cli__j) {
      cli_json_open(cli__j, NULL, '{');
      cli_json_str(cli__j, "name", name);
      cli_json_int(cli__j, "elements", e->elements);
      cli_json_num(cli__j, "max_abs", e->max_abs);
      cli_json_num(cli__j, "ratio", e->nonfinite ? NAN : e->max_ratio);
      cli_json_bool(cli__j, "pass", e->pass);
      cli_json_close(cli__j);
    }
  }
  if (cli__j) cli_json_close(cli__j);
  return true;
}

/* The AdamW update direction of the first step from fresh moments, in
 * double: m/(1-b1) / (sqrt(v/(1-b2)) + eps) with m = (1-b1) g, v = (1-b2) g^2. */
static double cli__adam_dir(double g, double eps) { return g / (fabs(g) + eps); }

/* The clipping factor the step kernel applies for gradient norm `norm`. */
static double cli__clip_scale(const ct_optimizer *o, float norm) {
  return o->clip_norm > 0.0f && norm > o->clip_norm ? (double)o->clip_norm / ((double)norm + 1e-6)
                                                    : 1.0;
}

typedef struct cli__side {
  ct_gpt *g;
  ct_trainer *t;
} cli__side;

/* One AdamW step on each side (dev, ref) from the same parameters and batch,
 * then every parameter compared. *ok is false on a divergence; returns false
 * on an error (printed). */
static bool cli__check_update(cli__side *s, const ct_backend *const be[2],
                              const ct_optimizer *opt, const int32_t *in, const int32_t *tg,
                              int64_t tokens, bool *ok) {
  const char *dev_name = ct_backend_name(be[0]);
  float loss[2], norm[2], lr[2];
  for (int k = 0; k < 2; k++) {
    ct_morphism *m = NULL;
    const ct_gpt_config *c = ct_gpt_get_config(s[k].g);
    ct_status st = ct_gpt_loss(&m, s[k].g, tokens / c->block, c->block);
    if (st == CT_OK) st = ct_trainer_new(&s[k].t, m, be[k], opt);
    ct_morphism_free(m);
    if (st == CT_OK) st = ct_trainer_set_input(s[k].t, 0, in, tokens);
    if (st == CT_OK) st = ct_trainer_set_input(s[k].t, 1, tg, tokens);
    if (st == CT_OK) st = ct_trainer_step(s[k].t, 1);
    if (st == CT_OK) st = ct_trainer_last_loss(s[k].t, &loss[k]);
    if (st == CT_OK) st = ct_trainer_last_grad_norm(s[k].t, &norm[k]);
    if (st == CT_OK) st = ct_trainer_last_lr(s[k].t, &lr[k]);
    if (st == CT_OK) st = ct_trainer_store_params(s[k].t);
    if (st != CT_OK) {
      char what[64];
      snprintf(what, sizeof what, "training step on %s", k ? "cpu" : dev_name);
      cli_lib_error(CLI__CMD, what);
      return false;
    }
  }
  fprintf(cli__out, "\nupdate: one AdamW step from fresh moments (lr %.3g at step 1, weight decay %g, clip "
         "%g)\n", (double)lr[1], (double)opt->weight_decay, (double)opt->clip_norm);
  fprintf(cli__out, "loss %.9g on %s, %.9g on cpu; gradient norm %.9g on %s, %.9g on cpu\n", (double)loss[0],
         dev_name, (double)loss[1], (double)norm[0], dev_name, (double)norm[1]);
  /* Tolerance, per element, from what can legitimately differ:
   *   1e-6 |p_cpu|   a few float roundings of p (1 - lr wd) - lr dir in another order;
   *   1e-4 lr        the update direction computed in float (sqrt, divisions);
   *   lr |dir(c_a g_a) - dir(c_b g_b)|   the response to the gradients' own
   *                  difference, which the node check above has bounded.
   * The last term is needed because the first AdamW step moves every weight by
   * about lr whatever the gradient's size: dir(g) = g / (|g| + eps) has slope
   * 1/eps at 0, so a gradient of 1e-9 whose sign differs between backends (well
   * within the gradient tolerance) moves the weight by 2 lr in opposite
   * directions. Taking the gradients each backend actually used (read back
   * from its trainer) checks the update kernel exactly, element by element;
   * the elements where that term exceeds the others are counted as
   * "sign-sensitive" and reported. */
  double scale[2] = {cli__clip_scale(opt, norm[0]), cli__clip_scale(opt, norm[1])};
  if (cli__j) {
    cli_json_open(cli__j, "update", '{');
    cli_json_num(cli__j, "lr", (double)lr[1]);
    cli_json_num(cli__j, "weight_decay", (double)opt->weight_decay);
    cli_json_num(cli__j, "clip", (double)opt->clip_norm);
    cli_json_num(cli__j, "loss", (double)loss[0]);
    cli_json_num(cli__j, "loss_cpu", (double)loss[1]);
    cli_json_num(cli__j, "grad_norm", (double)norm[0]);
    cli_json_num(cli__j, "grad_norm_cpu", (double)norm[1]);
    cli_json_open(cli__j, "parameters", '[');
  }
  fprintf(cli__out, "%-27s %9s  %12s %9s %9s  %s\n", "parameter after update", "elements", "max|a-b|",
         "ratio", "sensitive", "result");
  int n_params = ct_gpt_param_count(s[1].g), failed = 0;
  int64_t total_sensitive = 0, total = 0;
  char first[512] = "";
  float *buf = NULL;
  size_t cap = 0;
  bool good = true;
  for (int i = 0; i < n_params && good; i++) {
    const ct_param *p[2] = {ct_gpt_param(s[0].g, i), ct_gpt_param(s[1].g, i)};
    int64_t n = ct_param_numel(p[1]);
    if ((size_t)(4 * n) > cap) {
      free(buf);
      cap = (size_t)(4 * n);
      buf = malloc(cap * sizeof *buf);
      if (!buf) {
        cli_error(CLI__CMD, CLI_FAIL, "out of host memory");
        good = false;
        break;
      }
    }
    float *val[2] = {buf, buf + n}, *grad[2] = {buf + 2 * n, buf + 3 * n};
    for (int k = 0; k < 2 && good; k++)
      if (ct_plan_get_param_grad(ct_trainer_plan(s[k].t), p[k], grad[k], n) != CT_OK ||
          ct_param_get(p[k], val[k], n) != CT_OK) {
        cli_lib_error(CLI__CMD, "reading the updated parameters");
        good = false;
      }
    if (!good) break;
    double max_abs = 0.0, max_ratio = 0.0;
    int64_t sensitive = 0, worst = 0;
    bool nonfinite = false;
    double l = (double)lr[1], eps = (double)opt->eps;
    for (int64_t j = 0; j < n; j++) {
      double a = val[0][j], b = val[1][j];
      if (!isfinite(a) || !isfinite(b) || !isfinite(grad[0][j]) || !isfinite(grad[1][j])) {
        nonfinite = true;
        continue;
      }
      double dir_gap = fabs(cli__adam_dir(scale[0] * grad[0][j], eps) -
                            cli__adam_dir(scale[1] * grad[1][j], eps));
      double base = 1e-6 * fabs(b) + 1e-4 * l, allowed = base + l * dir_gap;
      if (l * dir_gap > base) sensitive++;
      double d = fabs(a - b), ratio = d / allowed;
      if (d > max_abs) max_abs = d;
      if (ratio > max_ratio) {
        max_ratio = ratio;
        worst = j;
      }
    }
    bool pass = !nonfinite && max_ratio <= 1.0;
    total_sensitive += sensitive;
    total += n;
    char rbuf[24];
    cli__fmt_ratio(rbuf, sizeof rbuf, true, nonfinite, max_ratio);
    fprintf(cli__out, "%-27s %9lld  %12.3g %9s %9lld  %s\n", ct_param_name(p[1]), (long long)n, max_abs,
           rbuf, (long long)sensitive, pass ? "PASS" : "FAIL");
    if (cli__j) {
      cli_json_open(cli__j, NULL, '{');
      cli_json_str(cli__j, "name", ct_param_name(p[1]));
      cli_json_int(cli__j, "elements", n);
      cli_json_num(cli__j, "max_abs", max_abs);
      cli_json_num(cli__j, "ratio", nonfinite ? NAN : max_ratio);
      cli_json_int(cli__j, "sign_sensitive", sensitive);
      cli_json_bool(cli__j, "pass", pass);
      cli_json_close(cli__j);
    }
    if (!pass && !failed++) {
      if (nonfinite)
        snprintf(first, sizeof first, "parameter %s after update: NaN/Inf", ct_param_name(p[1]));
      else
        snprintf(first, sizeof first, "parameter %s after update, element %lld: %.9g on %s, %.9g "
                 "on cpu (gradients %.3g, %.3g), %.3g x the tolerance", ct_param_name(p[1]),
                 (long long)worst, (double)val[0][worst], dev_name, (double)val[1][worst],
                 (double)grad[0][worst], (double)grad[1][worst], max_ratio);
    }
  }
  free(buf);
  if (cli__j) {
    cli_json_close(cli__j);
    cli_json_str(cli__j, "first_divergent", failed ? first : NULL);
    cli_json_bool(cli__j, "agree", good && failed == 0);
    cli_json_close(cli__j);
  }
  if (!good) return false;
  if (failed)
    fprintf(cli__out, "update: first divergent: %s (%d of %d parameters diverge)\n", first, failed,
           n_params);
  else
    fprintf(cli__out, "update: all %d parameters agree (%lld elements; %lld sign-sensitive: gradient near 0, "
           "allowed lr x the gap between the two update directions)\n", n_params,
           (long long)total, (long long)total_sensitive);
  *ok = failed == 0;
  return true;
}

int cli_check(int argc, char **argv) {
  const char *preset = NULL, *backend = "auto", *checkpoint = NULL;
  uint64_t seed = 1;
  bool verbose = false, rewrite = false, json = false;
  cli__out = stdout;
  cli__j = NULL;
  cli__pair pairs[CLI__MAX_PAIRS];
  int n_pairs = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    int r;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      cli__usage(stdout);
      return CLI_OK;
    }
    if (!strcmp(a, "--rewrite")) {
      rewrite = true;
      continue;
    }
    if (!strcmp(a, "--verbose")) {
      verbose = true;
      continue;
    }
    if (!strcmp(a, "--json")) {
      json = true;
      continue;
    }
    if (cli_flag_is(a, "--eval-every") || cli_flag_is(a, "--eval-batches") ||
        cli_flag_is(a, "--save-every")) {
      char flag[32];
      snprintf(flag, sizeof flag, "%.*s", (int)strcspn(a, "="), a);
      return cli_error(CLI__CMD, CLI_USAGE, "%s is a training flag that does nothing for check: "
                       "it compares one step and trains no run", flag);
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--config", &preset)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--backend", &backend)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--checkpoint", &checkpoint))) {
      if (r < 0) return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--seed", &v)) != 0) {
      if (r < 0 || !cli_parse_u64(CLI__CMD, "--seed", v, &seed)) return CLI_USAGE;
      continue;
    }
    if ((r = cli__config_arg(argc, argv, &i, &pairs[n_pairs])) != 0) {
      if (r < 0) return CLI_USAGE;
      if (++n_pairs == CLI__MAX_PAIRS)
        return cli_error(CLI__CMD, CLI_USAGE, "more than %d config flags", CLI__MAX_PAIRS - 1);
      continue;
    }
    return cli_error(CLI__CMD, CLI_USAGE, "unknown option '%s' (see 'ctml check --help')", a);
  }

  /* the config: a preset or a checkpoint's, then the flags */
  cli_config cfg;
  cli_checkpoint ck;
  memset(&ck, 0, sizeof ck);
  if (checkpoint) {
    if (preset)
      return cli_error(CLI__CMD, CLI_USAGE, "--config and --checkpoint exclude each other (the "
                       "checkpoint fixes the config)");
    for (int k = 0; k < n_pairs; k++)
      if (cli__is_shape_flag(pairs[k].flag))
        return cli_error(CLI__CMD, CLI_USAGE, "%s: the checkpoint fixes the model's shape",
                         pairs[k].flag);
    if (!cli_checkpoint_load(CLI__CMD, checkpoint, &ck)) return CLI_FAIL;
    cfg = ck.cfg;
  } else {
    if (!cli_config_named(&cfg, CLI__CMD, preset)) return CLI_USAGE;
    cfg.model.vocab = CLI__VOCAB;
  }
  for (int k = 0; k < n_pairs; k++) cli_config_flag(&cfg, CLI__CMD, pairs[k].flag, pairs[k].value);
  if (!cli_config_check(&cfg, CLI__CMD)) {
    cli_checkpoint_free(&ck);
    return CLI_USAGE;
  }
  char base[32];
  cli_config_rename(&cfg, base);
  if (!cli_backend_known(CLI__CMD, backend, false)) {
    cli_checkpoint_free(&ck);
    return CLI_USAGE;
  }
  /* --json: the object is built in memory and printed once complete */
  cli_json jw;
  char *jbuf = NULL;
  size_t jlen = 0;
  FILE *jf = NULL;
  bool json_done = false;
  if (json) {
    cli__out = fopen("/dev/null", "w");
    jf = open_memstream(&jbuf, &jlen);
    if (!cli__out || !jf) {
      if (cli__out) fclose(cli__out);
      if (jf) fclose(jf);
      free(jbuf);
      cli_checkpoint_free(&ck);
      return cli_error(CLI__CMD, CLI_FAIL, "--json: %s", strerror(errno));
    }
    cli__j = &jw;
    cli_json_init(cli__j, jf);
  }

  int code = CLI_FAIL;
  const ct_backend *dev = NULL, *ref = NULL;
  cli__side side[2];
  memset(side, 0, sizeof side);
  ct_morphism *loss = NULL;
  ct_check_report report;
  memset(&report, 0, sizeof report);
  const int64_t B = cfg.batch, T = cfg.model.block, V = cfg.model.vocab;
  int32_t *in = malloc((size_t)(B * T) * sizeof *in), *tg = malloc((size_t)(B * T) * sizeof *tg);
  if (!in || !tg) {
    cli_error(CLI__CMD, CLI_FAIL, "out of host memory for a %lld x %lld batch", (long long)B,
              (long long)T);
    goto done;
  }
  char note[256] = "";
  if (!cli__pick(backend, &dev, &code, note, sizeof note)) goto done;
  code = CLI_FAIL;
  if (ct_backend_get("cpu", &ref) != CT_OK) {
    cli_lib_error(CLI__CMD, "backend cpu");
    goto done;
  }
  /* two models with the same parameters: each trainer stores into its own */
  for (int k = 0; k < 2; k++) {
    if (ct_gpt_new(&side[k].g, &cfg.model, cfg.seed) != CT_OK) {
      cli_lib_error(CLI__CMD, "model");
      goto done;
    }
    if (checkpoint && !cli_checkpoint_params(CLI__CMD, &ck, side[k].g)) goto done;
  }
  /* the batch: per row T+1 ids from splitmix64; targets are inputs shifted by one */
  uint64_t rng = seed;
  for (int64_t b = 0; b < B; b++) {
    int32_t prev = (int32_t)(ct_splitmix64(&rng) % (uint64_t)V);
    for (int64_t t = 0; t < T; t++) {
      int32_t next = (int32_t)(ct_splitmix64(&rng) % (uint64_t)V);
      in[b * T + t] = prev;
      tg[b * T + t] = next;
      prev = next;
    }
  }

  char devbuf[160];
  const char *dev_name = ct_backend_name(dev);
  fprintf(cli__out, "ctml check: %s (%s) against the CPU reference%s\n", dev_name,
         cli__device(dev_name, devbuf, sizeof devbuf),
         strcmp(dev_name, "cpu") ? "" : " -- cpu compared with itself: a self-test of the "
                                        "checker, not of a device");
  if (note[0]) fprintf(cli__out, "%s\n", note);
  if (checkpoint)
    fprintf(cli__out, "model: checkpoint %s (%s, step %ld), vocabulary %lld", checkpoint, cfg.name,
            ck.step, (long long)V);
  else
    fprintf(cli__out, "model: %s, random parameters (seed %llu), vocabulary %lld", cfg.name,
            (unsigned long long)cfg.seed, (long long)V);
  fprintf(cli__out, "; %lld layer%s, %lld head%s, width %lld, %lld parameters\n",
          (long long)cfg.model.layers, cli_s(cfg.model.layers), (long long)cfg.model.heads,
          cli_s(cfg.model.heads), (long long)cfg.model.width, (long long)ct_gpt_numel(side[1].g));
  if (cli__j) {
    cli_json_open(cli__j, NULL, '{');
    cli_json_str(cli__j, "backend", dev_name);
    cli_json_str(cli__j, "device", cli__device(dev_name, devbuf, sizeof devbuf));
    cli_json_str(cli__j, "note", note[0] ? note : NULL);
    cli_json_open(cli__j, "model", '{');
    cli_json_str(cli__j, "config", cfg.name);
    cli_json_str(cli__j, "checkpoint", checkpoint);
    if (checkpoint) cli_json_int(cli__j, "step", ck.step);
    cli_json_u64(cli__j, "init_seed", cfg.seed);
    cli_json_int(cli__j, "layers", cfg.model.layers);
    cli_json_int(cli__j, "heads", cfg.model.heads);
    cli_json_int(cli__j, "width", cfg.model.width);
    cli_json_int(cli__j, "block", T);
    cli_json_int(cli__j, "vocab", V);
    cli_json_int(cli__j, "parameters", ct_gpt_numel(side[1].g));
    cli_json_close(cli__j);
    cli_json_int(cli__j, "batch", B);
    cli_json_u64(cli__j, "batch_seed", seed);
  }
  fprintf(cli__out, "batch: %lld x %lld random tokens (splitmix64 seed %llu)\n", (long long)B, (long long)T,
         (unsigned long long)seed);
  fflush(stdout);

  /* the loss morphism, node by node */
  double t0 = cli_now();
  if (ct_gpt_loss(&loss, side[1].g, B, T) != CT_OK) {
    cli_lib_error(CLI__CMD, "model");
    goto done;
  }
  bool rewrite_ok = true;
  if (rewrite) {
    if (!cli__check_rewrite(loss, side[1].g, dev, in, tg, B * T, &rewrite_ok)) goto done;
  } else {
    ct_plan *probe = NULL; /* the rules that fire, as every plan of the loss applies them */
    char rw[512];
    if (ct_compile(&probe, loss, ref, CT_PLAN_FORWARD) == CT_OK)
      fprintf(cli__out, "plan: %s\n", cli_rewrite_summary(probe, rw, sizeof rw));
    for (int i = 0; verbose && i < ct_plan_rewrite_count(probe); i++)
      fprintf(cli__out, "  %s\n", ct_plan_rewrite(probe, i));
    ct_plan_free(probe);
  }
  const void *inputs[2] = {in, tg};
  if (ct_check(loss, dev, ref, inputs, seed, &report) != CT_OK) {
    cli_lib_error(CLI__CMD, "ct_check");
    goto done;
  }
  fprintf(cli__out, "\ntraining step (forward and reverse), %d results; tolerance |a-b| <= 1e-5 + 1e-4 |cpu| "
         "(ratio <= 1), a = %s:\n", report.count, dev_name);
  if (cli__j) cli_json_int(cli__j, "results", report.count);
  if (verbose && !cli__j)
    ct_check_report_print(cli__out, &report, dev_name, "cpu");
  else if (!cli__print_nodes(&report)) {
    cli_error(CLI__CMD, CLI_FAIL, "out of host memory");
    goto done;
  }
  bool nodes_ok = report.first_divergent < 0;
  char first_div[512] = "";
  if (nodes_ok) {
    fprintf(cli__out, "all %d results agree\n", report.count);
  } else {
    const ct_check_entry *e = &report.entries[report.first_divergent];
    char op[40] = "?", how[64];
    sscanf(e->label, "node %*d %39s", op);
    if (e->nonfinite)
      snprintf(how, sizeof how, "NaN/Inf");
    else
      snprintf(how, sizeof how, "%.3g x the tolerance", e->max_ratio);
    if (e->detail[0])
      snprintf(first_div, sizeof first_div, "%s: %s", e->label, e->detail);
    else if (e->node >= 0)
      snprintf(first_div, sizeof first_div, "node %d (%s) %s: %s, max |a-b| %.3g, %s", e->node, op,
               e->dir == CT_FORWARD ? "forward" : "reverse", e->label, e->max_abs, how);
    else
      snprintf(first_div, sizeof first_div, "%s, max |a-b| %.3g, %s", e->label, e->max_abs, how);
    fprintf(cli__out, "first divergent: %s\n", first_div);
  }
  if (cli__j) {
    cli_json_bool(cli__j, "nodes_agree", nodes_ok);
    cli_json_str(cli__j, "first_divergent", nodes_ok ? NULL : first_div);
  }
  fflush(stdout);

  /* the update */
  ct_optimizer opt = cli_config_optimizer(&cfg);
  const ct_backend *const pair[2] = {dev, ref};
  bool update_ok = false;
  if (!cli__check_update(side, pair, &opt, in, tg, B * T, &update_ok)) goto done;
  double secs = cli_now() - t0;
  if (nodes_ok && update_ok && rewrite_ok) {
    fprintf(cli__out, "check passed: %s agrees with cpu on every node and every updated parameter (%.2f s)\n",
           dev_name, secs);
    code = CLI_OK;
  } else {
    fprintf(cli__out, "check FAILED: %s diverges from cpu (%s) (%.2f s)\n", dev_name,
           !rewrite_ok ? "the rewritten plan against the plan as built"
           : nodes_ok  ? "the update"
           : update_ok ? "the training step's nodes"
                       : "nodes and update",
           secs);
    code = CLI_FAIL;
  }
  if (cli__j) {
    cli_json_bool(cli__j, "passed", code == CLI_OK);
    cli_json_num(cli__j, "seconds", secs);
    cli_json_close(cli__j);
    json_done = true;
  }
done:
  if (json) {
    fclose(cli__out);
    cli__out = stdout;
    cli__j = NULL;
    if (fclose(jf) == 0 && json_done) fwrite(jbuf, 1, jlen, stdout);
    free(jbuf);
  }
  ct_check_report_free(&report);
  ct_morphism_free(loss);
  for (int k = 0; k < 2; k++) {
    ct_trainer_free(side[k].t);
    ct_gpt_free(side[k].g);
  }
  cli_checkpoint_free(&ck);
  free(in);
  free(tg);
  return code;
}
