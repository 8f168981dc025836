/* SPDX-License-Identifier: MIT */
/* ctml train: a character-level GPT on a text, with validation, progress,
 * checkpoints, resume, a loss log and a loss-curve plot. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"

#define CLI__CMD "train"
#define CLI__DEFAULT_CORPUS "/usr/share/games/fortunes"
#define CLI__TRY(expr)                  \
  do {                                  \
    ct_status cli__s_ = (expr);         \
    if (cli__s_ != CT_OK) return cli__s_; \
  } while (0)

static volatile sig_atomic_t cli__interrupted = 0;
static void cli__on_sigint(int sig) {
  (void)sig;
  cli__interrupted = 1;
}

static void cli__usage(FILE *f) {
  fprintf(f,
          "usage: ctml train [--config tiny|micro|small] [--data FILE] [--out DIR] [--resume DIR]\n"
          "                  [--backend auto|cpu|cuda|opencl] [--log-every N] [--no-rewrite]\n"
          "                  [--log-format text|jsonl] [--tf32] [--graph] [--max-memory BYTES]\n"
          "                  [--max-data BYTES] [config flags]\n"
          "  --config NAME   preset: tiny (default: 4 layers, width 128; three minutes on the\n"
          "                  OpenCL fallback of 2 CPU cores), micro (2 layers, width 64; three\n"
          "                  minutes on the CPU reference) or small (6 layers, 6 heads, width\n"
          "                  384, block 256, batch 64: GPU-sized)\n"
          "  --data FILE     any text; default: the plain files of " CLI__DEFAULT_CORPUS "\n"
          "                  (Debian package 'fortunes'; CTML_FORTUNES_DIR overrides the path)\n"
          "  --out DIR       run directory; refuses one that holds a checkpoint unless resuming\n"
          "                  it (default: the first free of runs/<config>, runs/<config>-2, ...,\n"
          "                  linked as runs/latest)\n"
          "  --resume DIR    continue the run in DIR from its checkpoint (same config and data;\n"
          "                  --steps may be raised)\n"
          "  --init-from P   fine-tune: start from the weights of a checkpoint, weights-only\n"
          "                  file or GPT-2 export (its architecture and vocabulary) with a fresh\n"
          "                  optimizer; the schedule comes from the preset and flags\n"
          "  --log-every N   a progress line every N steps when not on a terminal (default 10)\n"
          "  --stop-after N  stop after step N with a checkpoint, as Ctrl-C does (exit 0)\n"
          "  --max-memory B  refuse a run estimated to need more than B bytes of host or device\n"
          "                  memory (suffixes K, M, G; default: the host's available memory)\n"
          "  --max-data B    the largest --data file read (default 1G); it must be a regular file\n"
          "  --no-rewrite    train the model as built, without the rewrite rules (fusions)\n"
          "  --tf32          cuda: matrix products in TF32 (faster, about 1e-3 relative error)\n"
          "  --graph         cuda: record the step once as a CUDA graph and replay it\n"
          "  --collective C  auto (default: data-parallel when started by mpirun -np N > 1;\n"
          "                  nccl on cuda where present, else mpi), none, mpi or nccl; rank r\n"
          "                  trains on rows [r*batch, (r+1)*batch) of the N*batch drawn per step\n"
          "  --log-format F  text (default): progress lines (step, losses, lr, gradient norm,\n"
          "                  ms/step, tokens/s, MFU on GPUs, ETA); jsonl: one JSON object per\n"
          "                  line on stdout instead of all text: a \"start\" event, a \"step\"\n"
          "                  event every --log-every steps and at every validation, and a\n"
          "                  \"done\", \"stopped\" or \"interrupted\" event\n");
  cli_config_usage(f);
  cli_env_usage(f, true);
}

/* mkdir -p */
static bool cli__mkdirs(const char *path) {
  char *buf = *path ? strdup(path) : NULL;
  if (!buf) return false;
  for (char *c = buf + 1;; c++) {
    if (*c == '/' || *c == '\0') {
      char keep = *c;
      *c = '\0';
      if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
        free(buf);
        return false;
      }
      *c = keep;
      if (!keep) break;
    }
  }
  free(buf);
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* runs/latest -> the run directory under runs/, replaced atomically. */
static bool cli__link_latest(const char *dir) {
  const char *leaf = strrchr(dir, '/');
  return cli_symlink_atomic(leaf ? leaf + 1 : dir, "runs/latest");
}

static bool cli__exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Mean loss over fixed validation windows (evenly spaced, no randomness).
 * Data-parallel, batch k holds ranks * B windows and rank r evaluates rows
 * [r B, (r + 1) B) of it; the trainer averages over the ranks. */
static ct_status cli__validate(ct_trainer *t, const int32_t *ids, int64_t n, int64_t B, int64_t T,
                               long batches, const cli_dp *dp, int32_t *in, int32_t *tg,
                               float *out) {
  int64_t windows = (int64_t)batches * B * dp->size, span = n - T - 1;
  double sum = 0.0;
  for (long k = 0; k < batches; k++) {
    for (int64_t b = 0; b < B; b++) {
      int64_t w = (k * dp->size + dp->rank) * B + b;
      int64_t s = windows > 1 ? w * span / (windows - 1) : 0;
      memcpy(&in[b * T], &ids[s], (size_t)T * sizeof *in);
      memcpy(&tg[b * T], &ids[s + 1], (size_t)T * sizeof *tg);
    }
    CLI__TRY(ct_trainer_set_input(t, 0, in, B * T));
    CLI__TRY(ct_trainer_set_input(t, 1, tg, B * T));
    float l;
    CLI__TRY(ct_trainer_eval(t, &l));
    sum += l;
  }
  *out = (float)(sum / (double)batches);
  return CT_OK;
}

static void cli__duration(char *out, size_t len, double s) {
  if (!(s >= 0.0) || s > 1e7) {
    snprintf(out, len, "?");
    return;
  }
  long v = (long)(s + 0.5);
  if (v >= 3600)
    snprintf(out, len, "%ldh%02ldm", v / 3600, v / 60 % 60);
  else if (v >= 60)
    snprintf(out, len, "%ldm%02lds", v / 60, v % 60);
  else
    snprintf(out, len, "%lds", v);
}

/* Held-out cross-entropy of the validation text under add-one smoothed byte
 * frequencies of the training text: the unigram baseline. */
static double cli__unigram(const int32_t *ids, int64_t n_train, int64_t n, int V) {
  double *count = calloc((size_t)V, sizeof *count), h = 0.0;
  if (!count) return NAN;
  for (int64_t i = 0; i < n_train; i++) count[ids[i]] += 1.0;
  for (int64_t i = n_train + 1; i < n; i++)
    h -= log((count[ids[i]] + 1.0) / ((double)n_train + V));
  free(count);
  return h / (double)(n - n_train - 1);
}

typedef struct cli__run {
  cli_config cfg;
  cli_checkpoint ck;      /* metadata of the checkpoint to write */
  char *out_dir;           /* owned */
  const ct_backend *be;
  ct_gpt *g;
  ct_trainer *t;
  cli_losslog log;
  double unigram; /* the baseline loss drawn in the plot */
  bool follower;  /* a data-parallel rank other than 0: writes nothing */
} cli__run;

static bool cli__save(cli__run *r, long step, uint64_t rng) {
  if (r->follower) return true;
  r->ck.step = step;
  r->ck.rng = rng;
  r->ck.cfg = r->cfg;
  if (ct_trainer_store_params(r->t) != CT_OK) {
    cli_lib_error(CLI__CMD, "checkpoint not saved: reading the parameters");
    return false;
  }
  return cli_checkpoint_save(CLI__CMD, r->out_dir, &r->ck, r->g, r->t);
}

static void cli__plot(cli__run *r) {
  if (r->follower) return;
  char title[160], *path = cli_path_join(r->out_dir, "loss.svg");
  if (!path) {
    cli_error(CLI__CMD, CLI_FAIL, "warning: loss.svg not written: out of host memory");
    return;
  }
  snprintf(title, sizeof title, "ctml train, %s: %lld layer%s, %lld head%s, width %lld, "
           "block %lld", r->cfg.name, (long long)r->cfg.model.layers, cli_s(r->cfg.model.layers),
           (long long)r->cfg.model.heads, cli_s(r->cfg.model.heads),
           (long long)r->cfg.model.width, (long long)r->cfg.model.block);
  if (!cli_write_loss_svg(path, title, r->log.steps, r->log.train, r->log.n, r->log.val_steps,
                          r->log.val, r->log.n_val, r->unigram))
    cli_error(CLI__CMD, CLI_FAIL, "warning: %s not written: %s", path, strerror(errno));
  free(path);
}

/* A config flag as the user gave it. */
typedef struct cli__given {
  char flag[32];
  const char *value;
} cli__given;

static bool cli__was_given(const cli__given *g, int n, const char *flag) {
  for (int k = 0; k < n; k++)
    if (!strcmp(g[k].flag, flag)) return true;
  return false;
}

/* The checkpoint's config with the given flags: the loop's own settings
 * (--steps, --eval-every, --eval-batches, --save-every) are applied; any other
 * flag must repeat the checkpoint's value, or it is a config mismatch. */
static bool cli__resume_config(cli_config *c, const cli__given *g, int n) {
  static const char *const loop[] = {"--steps", "--eval-every", "--eval-batches", "--save-every"};
  for (int k = 0; k < n; k++) {
    cli_config probe = *c;
    cli_config_flag(&probe, CLI__CMD, g[k].flag, g[k].value);
    bool is_loop = false;
    for (size_t l = 0; l < sizeof loop / sizeof *loop; l++) is_loop |= !strcmp(g[k].flag, loop[l]);
    if (is_loop) {
      *c = probe;
    } else if (memcmp(&probe, c, sizeof probe) != 0) {
      cli_error(CLI__CMD, CLI_USAGE, "config mismatch: the checkpoint was not trained with %s %s "
                "(its metadata holds the value it was; drop the flag to resume)", g[k].flag,
                g[k].value);
      return false;
    }
  }
  return true;
}

/* --init-from: the checkpoint's architecture and vocabulary with the
 * training settings of the preset and flags; a flag that would change the
 * architecture is refused. */
static bool cli__init_from_config(cli_config *c, const cli_checkpoint *from, const cli__given *g,
                                  int n) {
  for (int k = 0; k < n; k++) {
    if (!cli_config_is_model_flag(g[k].flag)) continue;
    cli_config probe = *c;
    probe.model = from->cfg.model;
    cli_config_flag(&probe, CLI__CMD, g[k].flag, g[k].value);
    if (memcmp(&probe.model, &from->cfg.model, sizeof probe.model)) {
      const ct_gpt_config *m = &from->cfg.model;
      cli_error(CLI__CMD, CLI_USAGE, "%s %s: the architecture comes from the checkpoint (width "
                "%lld, %lld layers, %lld heads, block %lld) with --init-from; drop the flag",
                g[k].flag, g[k].value, (long long)m->width, (long long)m->layers,
                (long long)m->heads, (long long)m->block);
      return false;
    }
  }
  c->model = from->cfg.model;
  snprintf(c->name, sizeof c->name, "%s", from->cfg.name);
  return true;
}

int cli_train(int argc, char **argv) {
  const char *preset = NULL, *data_path = NULL, *out_dir = NULL, *resume = NULL,
             *backend = "auto", *init_from = NULL, *collective = "auto";
  cli_dp dp;
  memset(&dp, 0, sizeof dp);
  dp.size = 1;
  long log_every = 10, stop_after = 0;
  int64_t max_memory = 0, max_data = CLI_MAX_DATA_DEFAULT;
  bool tf32 = false, graph = false, jsonl = false;
  cli__run run;
  int plan_flags = 0; /* CT_PLAN_NO_REWRITE with --no-rewrite */
  memset(&run, 0, sizeof run);
  cli_config *cfg = &run.cfg;
  if (cli_config_from_args(cfg, CLI__CMD, argc, argv, &preset) != CLI_OK) return CLI_USAGE;
  cli_config flags = *cfg;
  cli__given given[64];
  int n_given = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    int r;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      cli__usage(stdout);
      return CLI_OK;
    }
    if (!strcmp(a, CLI_NO_REWRITE_FLAG)) {
      plan_flags = CT_PLAN_NO_REWRITE;
      continue;
    }
    if (!strcmp(a, "--tf32") || !strcmp(a, "--graph")) {
      *(a[2] == 't' ? &tf32 : &graph) = true;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--log-format", &v)) != 0) {
      if (r < 0) return CLI_USAGE;
      if (strcmp(v, "text") && strcmp(v, "jsonl"))
        return cli_error(CLI__CMD, CLI_USAGE, "--log-format: '%s' is neither 'text' nor 'jsonl'", v);
      jsonl = !strcmp(v, "jsonl");
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--config", &v)) != 0) {
      if (r < 0) return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--data", &data_path)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--out", &out_dir)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--resume", &resume)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--init-from", &init_from)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--backend", &backend))) {
      if (r < 0) return CLI_USAGE;
      continue;
    }
    if ((r = cli_dp_arg(CLI__CMD, argc, argv, &i, &collective)) != 0) {
      if (r < 0) return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--stop-after", &v)) != 0) {
      if (r < 0 || !cli_parse_long(CLI__CMD, "--stop-after", v, 1, 1L << 30, &stop_after))
        return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--max-memory", &v)) != 0) {
      if (r < 0 || !cli_parse_bytes(CLI__CMD, "--max-memory", v, &max_memory)) return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--max-data", &v)) != 0) {
      if (r < 0 || !cli_parse_bytes(CLI__CMD, "--max-data", v, &max_data)) return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--log-every", &v)) != 0) {
      if (r < 0 || !cli_parse_long(CLI__CMD, "--log-every", v, 1, 1L << 30, &log_every))
        return CLI_USAGE;
      continue;
    }
    if (n_given == 64) return cli_error(CLI__CMD, CLI_USAGE, "more than 64 config flags");
    cli__given *g = &given[n_given];
    if ((r = cli_config_arg(&flags, CLI__CMD, argc, argv, &i, g->flag, &g->value)) != 0) {
      if (r < 0) return CLI_USAGE;
      n_given++;
      continue;
    }
    cli_error(CLI__CMD, CLI_USAGE, "unknown option '%s' (see 'ctml train --help')", a);
    return CLI_USAGE;
  }
  if (!cli_backend_known(CLI__CMD, backend, false)) return CLI_USAGE;
  if ((tf32 || graph) && strcmp(backend, "cuda") && strcmp(backend, "auto"))
    return cli_error(CLI__CMD, CLI_USAGE, "%s applies to the cuda backend only (--backend %s)",
                     tf32 ? "--tf32" : "--graph", backend);

  /* the checkpoint to resume, and the config it fixes */
  cli_checkpoint from;
  memset(&from, 0, sizeof from);
  if (resume && init_from)
    return cli_error(CLI__CMD, CLI_USAGE, "--init-from and --resume exclude each other (--resume "
                     "continues a run, --init-from starts a new one from its weights)");
  if (resume) {
    if (!cli_checkpoint_load(CLI__CMD, resume, &from)) return CLI_FAIL;
    if (from.kind != CLI_CK_RUN) {
      cli_checkpoint_free(&from);
      return cli_error(CLI__CMD, CLI_USAGE, "'%s' is a %s file: it has no optimizer state or step "
                       "to resume; fine-tune from it with --init-from", resume,
                       from.kind == CLI_CK_HF ? "GPT-2 layout" : "weights-only");
    }
    char from_base[32];
    cli_config probe = from.cfg;
    cli_config_rename(&probe, from_base);
    if (preset && strcmp(preset, from_base)) {
      cli_checkpoint_free(&from);
      return cli_error(CLI__CMD, CLI_USAGE, "config mismatch: the checkpoint in '%s' is a '%s' "
                       "run, not '%s'", resume, from.cfg.name, preset);
    }
    *cfg = from.cfg;
    if (!cli__resume_config(cfg, given, n_given)) {
      cli_checkpoint_free(&from);
      return CLI_USAGE;
    }
    if (cfg->steps <= from.step) {
      cli_checkpoint_free(&from);
      return cli_error(CLI__CMD, CLI_USAGE, "the checkpoint in '%s' is at step %ld of %ld: nothing "
                       "to do (raise --steps)", resume, from.step, cfg->steps);
    }
    if (out_dir && strcmp(out_dir, resume)) {
      cli_checkpoint_free(&from);
      return cli_error(CLI__CMD, CLI_USAGE, "--resume %s continues that run in place; drop --out",
                       resume);
    }
    out_dir = resume;
    if (!data_path && from.data_path && from.data_path[0]) data_path = from.data_path;
  } else {
    *cfg = flags;
    if (init_from) {
      if (!cli_checkpoint_load(CLI__CMD, init_from, &from)) return CLI_FAIL;
      if (!cli__init_from_config(cfg, &from, given, n_given)) {
        cli_checkpoint_free(&from);
        return CLI_USAGE;
      }
    }
    /* a short run without its own --warmup warms up over its first tenth */
    if (!cli__was_given(given, n_given, "--warmup") && cfg->warmup >= cfg->steps) cfg->warmup = cfg->steps / 10;
  }
  if (!cli_config_check(cfg, CLI__CMD)) {
    cli_checkpoint_free(&from);
    return CLI_USAGE;
  }
  char base[32]; /* the preset: "custom (from tiny)" runs in runs/tiny */
  cli_config_rename(cfg, base);

  /* the memory the run needs, from the config alone, before anything is allocated */
  struct stat data_st;
  int64_t data_size = data_path && stat(data_path, &data_st) == 0 ? (int64_t)data_st.st_size : 0;
  cli_budget budget = cli_budget_estimate(cfg, resume || init_from ? from.cfg.model.vocab : 256,
                                          data_size);
  {
    const ct_backend *probe = NULL;
    char pwhy[1400];
    bool host = !strcmp(backend, "cpu");
    int64_t device_memory = 0;
    if (!host) {
      cli_dp_select_device(collective, backend);
      if (!cli_pick_backend(CLI__CMD, backend, &probe, pwhy, sizeof pwhy)) {
        cli_checkpoint_free(&from);
        return CLI_FAIL;
      }
      /* a device backend on a CPU device holds its buffers in host memory */
      ct_device_info dev;
      int bi = -1;
      if (ct_backend_index(ct_backend_name(probe), &bi) != CT_OK) bi = -1;
      bool known = bi >= 0 && cli_selected_device(bi, &dev);
      host = !strcmp(ct_backend_name(probe), "cpu") || (known && !dev.gpu);
      if (known && !host) device_memory = dev.memory_bytes;
    }
    if (!cli_budget_check(CLI__CMD, &budget, host, max_memory, device_memory)) {
      cli_checkpoint_free(&from);
      return CLI_FAIL;
    }
  }

  /* the run directory: never overwrite a checkpoint of another run */
  if (out_dir) {
    run.out_dir = strdup(out_dir);
  } else { /* the first of runs/<config>, runs/<config>-2, ... without a checkpoint */
    for (int k = 1; k < 10000; k++) {
      char leaf[64];
      if (k == 1) snprintf(leaf, sizeof leaf, "runs/%s", base);
      else snprintf(leaf, sizeof leaf, "runs/%s-%d", base, k);
      free(run.out_dir);
      run.out_dir = strdup(leaf);
      char *probe = run.out_dir ? cli_path_join(run.out_dir, CLI_CHECKPOINT_FILE) : NULL;
      bool taken = probe && cli__exists(probe);
      free(probe);
      if (!taken) break;
    }
  }
  char *ck_file = run.out_dir ? cli_path_join(run.out_dir, CLI_CHECKPOINT_FILE) : NULL,
       *csv_path = run.out_dir ? cli_path_join(run.out_dir, "loss.csv") : NULL,
       *data_desc = NULL;
  uint8_t *text = NULL;
  int32_t *ids = NULL, *in = NULL, *tg = NULL;
  ct_morphism *loss = NULL;
  FILE *csv = NULL;
  int code = CLI_FAIL;
  if (!ck_file || !csv_path) {
    cli_error(CLI__CMD, CLI_FAIL, "out of host memory");
    goto done;
  }
  if (!resume && cli__exists(ck_file)) {
    code = cli_error(CLI__CMD, CLI_USAGE, "'%s' already holds a checkpoint; continue it with "
                     "--resume %s or choose another --out", run.out_dir, run.out_dir);
    goto done;
  }

  /* the text: a regular file of at most --max-data bytes, read up to its size at open */
  int64_t n = 0;
  int files = 0;
  if (data_path) {
    ct_status rs = ct_text_read_regular_file(data_path, max_data, &text, &n);
    if (rs != CT_OK) {
      cli_error(CLI__CMD, CLI_FAIL, "--data: %s%s", ct_last_error(),
                rs == CT_ERR_RANGE ? " (--max-data raises the limit)" : "");
      goto done;
    }
    data_desc = strdup(data_path);
  } else {
    const char *dir = getenv("CTML_FORTUNES_DIR");
    if (!dir || !*dir) dir = CLI__DEFAULT_CORPUS;
    if (ct_text_read_fortunes(dir, &text, &n, &files) != CT_OK) {
      cli_error(CLI__CMD, CLI_FAIL, "no --data given and the default corpus is missing "
                "(install Debian's 'fortunes' package: bash tools/install-deps.sh): %s",
                ct_last_error());
      goto done;
    }
    char files_desc[64];
    snprintf(files_desc, sizeof files_desc, " (%d files)", files);
    data_desc = cli_strcat_alloc("default corpus ", dir, files_desc);
  }
  ids = malloc((size_t)n * sizeof *ids);
  in = malloc((size_t)(cfg->batch * cfg->model.block) * sizeof *in);
  tg = malloc((size_t)(cfg->batch * cfg->model.block) * sizeof *tg);
  if (!ids || !in || !tg || !data_desc) {
    cli_error(CLI__CMD, CLI_FAIL, "out of host memory for %lld tokens", (long long)n);
    goto done;
  }
  uint64_t hash = cli_fnv1a(text, n);
  if (resume) {
    if (hash != from.data_hash || n != from.data_bytes) {
      cli_error(CLI__CMD, CLI_USAGE, "the data (%s, %lld bytes) is not the text the checkpoint was "
                "trained on (%lld bytes%s%s)", data_desc, (long long)n,
                (long long)from.data_bytes, from.data_path && from.data_path[0] ? ", " : "",
                from.data_path ? from.data_path : "");
      code = CLI_USAGE;
      goto done;
    }
    run.ck.vocab = from.vocab;
  } else if (init_from) {
    run.ck.vocab = from.vocab;
    if (!cli_encode_with(CLI__CMD, "--data", &from.vocab, text, n, ids)) goto done;
  } else if (ct_vocab_build(&run.ck.vocab, text, n) != CT_OK) {
    cli_lib_error(CLI__CMD, "--data");
    goto done;
  }
  if (ct_vocab_encode(&run.ck.vocab, text, n, ids) != CT_OK) {
    cli_lib_error(CLI__CMD, "--data");
    goto done;
  }
  cfg->model.vocab = run.ck.vocab.size;
  run.ck.data_hash = hash;
  run.ck.data_bytes = n;
  run.ck.data_path = strdup(data_path ? data_path : "");
  if (!run.ck.data_path) {
    cli_error(CLI__CMD, CLI_FAIL, "out of host memory");
    goto done;
  }
  const int64_t B = cfg->batch, T = cfg->model.block, n_train = n * 9 / 10, n_val = n - n_train;
  if (n_train < T + 1 || n_val < T + 1) {
    cli_error(CLI__CMD, CLI_FAIL, "--data: %s has %lld bytes; a 90/10 split needs at least %lld "
              "for block %lld (or lower --block)", data_desc, (long long)n,
              (long long)(10 * (T + 1)), (long long)T);
    goto done;
  }

  char why[1400];
  cli_dp_select_device(collective, backend);
  if (!cli_pick_backend(CLI__CMD, backend, &run.be, why, sizeof why)) goto done;
  if ((code = cli_cuda_flags(CLI__CMD, run.be, tf32, graph)) != CLI_OK) goto done;
  code = CLI_FAIL;
  if (!cli__mkdirs(run.out_dir)) {
    cli_error(CLI__CMD, CLI_FAIL, "--out: cannot create directory '%s': %s", run.out_dir,
              strerror(errno));
    goto done;
  }

  if (!out_dir && !cli__link_latest(run.out_dir))
    cli_error(CLI__CMD, CLI_FAIL, "warning: runs/latest not updated: %s", strerror(errno));

  /* model, loss and trainer */
  /* from a checkpoint: zeroed parameters, then its values */
  ct_status made = resume || init_from ? ct_gpt_new_zeroed(&run.g, &cfg->model)
                                       : ct_gpt_new(&run.g, &cfg->model, cfg->seed);
  if (made != CT_OK) {
    cli_lib_error(CLI__CMD, "model");
    goto done;
  }
  if ((resume || init_from) && !cli_checkpoint_params(CLI__CMD, &from, run.g)) goto done;
  ct_optimizer opt = cli_config_optimizer(cfg);
  if (ct_gpt_loss(&loss, run.g, B, T) != CT_OK ||
      ct_trainer_new_flags(&run.t, loss, run.be, &opt, plan_flags) != CT_OK) {
    cli_lib_error(CLI__CMD, "model");
    goto done;
  }
  if (resume && !cli_checkpoint_optimizer(CLI__CMD, &from, run.g, run.t)) goto done;
  if (graph && ct_trainer_set_graph(run.t, true) != CT_OK) {
    cli_lib_error(CLI__CMD, "--graph");
    goto done;
  }
  if ((code = cli_dp_start(CLI__CMD, &dp, collective, run.t, run.be, B, T,
                           resume ? from.world_size : 0, jsonl)) != CLI_OK)
    goto done;
  code = CLI_FAIL;
  run.ck.world_size = dp.size;
  run.follower = !cli_dp_root(&dp);
  uint64_t rng = resume ? from.rng : cfg->seed ^ 0x5eedba7c4e5ull;
  long step = resume ? from.step : 0;

  /* loss.csv: its header and the rows kept on resume are written atomically
   * (tmp, fsync, rename); each step then appends its row. */
  {
    static const char header[] = "step,train_loss,val_loss,lr,tokens_per_s\n";
    char *kept = NULL, *all = NULL;
    size_t kept_len = 0;
    if (resume && !cli_losslog_read(csv_path, step, &run.log, &kept, &kept_len)) {
      free(kept);
      cli_error(CLI__CMD, CLI_FAIL, "cannot continue the loss log %s: unreadable, not a regular "
                "file or over %lld MiB (move it away to start a new log)", csv_path,
                CLI_LOSSLOG_MAX >> 20);
      goto done;
    }
    all = cli_strcat_alloc(header, kept ? kept : "", NULL);
    free(kept);
    bool ok = all && (run.follower || cli_write_atomic(csv_path, all, strlen(all)));
    free(all);
    if (!ok || !(csv = fopen(run.follower ? "/dev/null" : csv_path, "a"))) {
      cli_error(CLI__CMD, CLI_FAIL, "cannot write %s: %s", csv_path, strerror(errno));
      goto done;
    }
  }

  double unigram = cli__unigram(ids, n_train, n, run.ck.vocab.size);
  run.unigram = unigram;
  const int64_t numel = ct_gpt_numel(run.g);
  const double step_flops = cli_step_flops(&cfg->model, numel, B);
  const char *peak_label = NULL;
  /* MFU at one step per second (NaN off GPUs); a step of `rate` seconds has mfu_1s / rate */
  const double mfu_1s = cli_mfu(run.be, tf32, step_flops, 1.0, &peak_label);
  cli_json jw, *j = jsonl ? &jw : NULL;
  if (j) {
    cli_json_init(j, stdout);
    cli_json_open(j, NULL, '{');
    cli_json_str(j, "event", "start");
    cli_json_str(j, "backend", ct_backend_name(run.be));
    cli_json_str(j, "backend_reason", why);
    cli_json_str(j, "data", data_desc);
    cli_json_int(j, "data_bytes", n);
    cli_json_int(j, "vocab", run.ck.vocab.size);
    cli_json_int(j, "train_bytes", n_train);
    cli_json_int(j, "validation_bytes", n_val);
    cli_json_str(j, "config", cfg->name);
    cli_json_int(j, "layers", cfg->model.layers);
    cli_json_int(j, "heads", cfg->model.heads);
    cli_json_int(j, "width", cfg->model.width);
    cli_json_int(j, "block", T);
    cli_json_int(j, "parameters", numel);
    cli_json_int(j, "batch", B);
    cli_json_int(j, "ranks", dp.size); /* data-parallel: batch is per rank */
    cli_json_int(j, "steps", cfg->steps);
    cli_json_num(j, "lr", (double)cfg->lr);
    cli_json_bool(j, "tf32", tf32);
    cli_json_bool(j, "graph", graph);
    cli_json_str(j, "run_directory", run.out_dir);
    cli_json_int(j, "save_every", cfg->save_every);
    cli_json_int(j, "resumed_at", resume ? step : 0);
    cli_json_str(j, "init_from", init_from ? from.path : NULL);
    cli_json_num(j, "unigram_baseline", unigram);
    cli_json_num(j, "gflop_per_step", step_flops * 1e-9);
    cli_json_str(j, "mfu_peak", peak_label);
    cli_json_close(j);
  } else {
    printf("ctml train: backend %s (%s)%s%s\n", ct_backend_name(run.be), why,
           tf32 ? "; TF32 matrix products" : "", graph ? "; the step as a CUDA graph" : "");
    printf("data: %s, %lld bytes, vocabulary %d bytes; %lld train / %lld validation\n", data_desc,
           (long long)n, run.ck.vocab.size, (long long)n_train, (long long)n_val);
    printf("model: %s, %lld layer%s, %lld head%s, width %lld, block %lld, %lld parameters; batch "
           "%lld, %ld steps, AdamW lr %g\n", cfg->name, (long long)cfg->model.layers,
           cli_s(cfg->model.layers), (long long)cfg->model.heads, cli_s(cfg->model.heads),
           (long long)cfg->model.width, (long long)T, (long long)numel, (long long)B, cfg->steps,
           (double)cfg->lr);
    char rewrites[512];
    printf("plan: %s%s\n", plan_flags ? "as built (--no-rewrite)" : "",
           plan_flags ? "" : cli_rewrite_summary(ct_trainer_plan(run.t), rewrites, sizeof rewrites));
    if (resume) printf("resuming %s at step %ld\n", run.out_dir, step);
    if (init_from)
      printf("init from %s (%s): its weights, a fresh optimizer\n", init_from, from.path);
    char every[48];
    if (cfg->save_every > 0)
      snprintf(every, sizeof every, "every %ld step%s and at the end", cfg->save_every,
               cli_s(cfg->save_every));
    else
      snprintf(every, sizeof every, "at the end only");
    printf("run directory: %s (checkpoint %s, unigram baseline %.4f)\n", run.out_dir, every,
           unigram);
  }
  fflush(stdout);

  struct sigaction sa, old_sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = cli__on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_sa);
  sigaction(SIGTERM, &sa, NULL);

  /* an updating line on a terminal (text only); it awaits its newline while open */
  bool tty = !j && isatty(STDOUT_FILENO), line_open = false;
  float last_val = NAN;
  long last_val_step = -1;
  double t_start = cli_now(), rate = 0.0;
  long steps_timed = 0;
  code = CLI_OK;
  bool stopped = false;
  while (step < cfg->steps) {
    if (cli_dp_stop(CLI__CMD, &dp, &cli__interrupted, &code)) break;
    if (stop_after > 0 && step >= stop_after) {
      stopped = true;
      break;
    }
    double t0 = cli_now();
    ct_status s = cli_dp_batch(&dp, run.t, &rng, ids, n_train, B, T, in, tg);
    if (s == CT_OK) s = ct_trainer_step(run.t, 1);
    float train_loss = NAN, lr = 0.0f, norm = NAN;
    if (s == CT_OK) s = ct_trainer_last_loss(run.t, &train_loss);
    if (s == CT_OK) s = ct_trainer_last_lr(run.t, &lr);
    if (s == CT_OK) s = ct_trainer_last_grad_norm(run.t, &norm);
    if (s != CT_OK) {
      if (line_open) printf("\n");
      line_open = false;
      cli_error(CLI__CMD, CLI_FAIL, "step %ld: %s (the last checkpoint in %s is kept)", step + 1,
                ct_last_error(), run.out_dir);
      code = CLI_FAIL;
      break;
    }
    step++;
    double dt = cli_now() - t0;
    steps_timed++;
    rate = steps_timed == 1 ? dt : 0.9 * rate + 0.1 * dt;
    bool eval = step % cfg->eval_every == 0 || step == cfg->steps;
    float val = NAN;
    if (eval) {
      s = cli__validate(run.t, ids + n_train, n_val, B, T, cfg->eval_batches, &dp, in, tg,
                        &val);
      if (s != CT_OK) {
        cli_error(CLI__CMD, CLI_FAIL, "validation at step %ld: %s", step, ct_last_error());
        code = CLI_FAIL;
        break;
      }
      last_val = val;
      last_val_step = step;
      cli_losslog_push_val(&run.log, step, val);
    }
    cli_losslog_push(&run.log, step, train_loss);
    double tok_s = rate > 0.0 ? (double)(B * T * dp.size) / rate : 0.0; /* every rank's */
    fprintf(csv, "%ld,%.9g,", step, (double)train_loss);
    if (eval) fprintf(csv, "%.9g", (double)val);
    fprintf(csv, ",%.9g,%.1f\n", (double)lr, tok_s);
    fflush(csv);
    /* the progress line: smoothed time per step; MFU only on a GPU with a known peak */
    double mfu = rate > 0.0 ? mfu_1s / rate : NAN;
    char eta[32], vbuf[48] = "", mbuf[32] = "";
    cli__duration(eta, sizeof eta, rate * (double)(cfg->steps - step));
    if (isfinite(mfu)) snprintf(mbuf, sizeof mbuf, tty ? " | MFU %.1f%%" : " mfu %.1f%%", 100.0 * mfu);
    bool line = step % log_every == 0 || eval || step == cfg->steps;
    if (j && line) {
      cli_json_open(j, NULL, '{');
      cli_json_str(j, "event", "step");
      cli_json_int(j, "step", step);
      cli_json_int(j, "steps", cfg->steps);
      cli_json_num(j, "train_loss", (double)train_loss);
      if (eval) cli_json_num(j, "val_loss", (double)val);
      cli_json_num(j, "lr", (double)lr);
      cli_json_num(j, "grad_norm", (double)norm);
      cli_json_num(j, "ms_per_step", 1e3 * rate);
      cli_json_num(j, "tokens_per_s", tok_s);
      cli_json_num(j, "mfu", mfu);
      cli_json_num(j, "eta_s", rate * (double)(cfg->steps - step));
      cli_json_close(j);
      fflush(stdout);
    } else if (tty) {
      if (last_val_step >= 0)
        snprintf(vbuf, sizeof vbuf, " | val %.4f @%ld", (double)last_val, last_val_step);
      printf("\rstep %ld/%ld | train %.4f%s | lr %.3g | norm %.3g | %.1f ms/step | %.0f tok/s%s "
             "| ETA %s\033[K", step, cfg->steps, (double)train_loss, vbuf, (double)lr,
             (double)norm, 1e3 * rate, tok_s, mbuf, eta);
      line_open = !eval;
      if (eval) printf("\n");
      fflush(stdout);
    } else if (!j && line) {
      if (eval) snprintf(vbuf, sizeof vbuf, " val %.4f", (double)val);
      printf("step %ld/%ld train %.4f%s lr %.3g norm %.3g ms/step %.1f tok/s %.0f%s eta %s\n",
             step, cfg->steps, (double)train_loss, vbuf, (double)lr, (double)norm, 1e3 * rate,
             tok_s, mbuf, eta);
      fflush(stdout);
    }
    bool save = (cfg->save_every > 0 && step % cfg->save_every == 0) || step == cfg->steps;
    if (save) {
      if (!cli__save(&run, step, rng)) {
        code = CLI_FAIL;
        break;
      }
      cli__plot(&run);
    } else if (eval) {
      cli__plot(&run);
    }
  }
  fclose(csv);
  csv = NULL;
  sigaction(SIGINT, &old_sa, NULL);
  signal(SIGTERM, SIG_DFL);
  if (line_open) printf("\n");
  const char *event = NULL;
  if (code == CLI_OK && (cli__interrupted || stopped)) {
    if (cli__save(&run, step, rng)) {
      cli__plot(&run);
      event = cli__interrupted ? "interrupted" : "stopped";
      if (!j && cli__interrupted)
        printf("interrupted at step %ld: checkpoint saved in %s; continue with: ctml train "
               "--resume %s\n", step, run.out_dir, run.out_dir);
      else if (!j)
        printf("stopped after step %ld (--stop-after): checkpoint saved in %s; continue with: "
               "ctml train --resume %s\n", step, run.out_dir, run.out_dir);
      code = cli__interrupted ? CLI_INTERRUPTED : CLI_OK;
    } else {
      code = CLI_FAIL;
    }
  } else if (code == CLI_OK) {
    double secs = cli_now() - t_start;
    event = "done";
    if (!j)
      printf("done: %ld steps in %.1f s; validation loss %.4f (unigram baseline %.4f); checkpoint "
             "%s, loss log %s, curve %s/loss.svg\n", step, secs, (double)last_val, unigram,
             ck_file, csv_path, run.out_dir);
  }
  if (j && event) {
    cli_json_open(j, NULL, '{');
    cli_json_str(j, "event", event);
    cli_json_int(j, "step", step);
    cli_json_num(j, "seconds", cli_now() - t_start);
    cli_json_num(j, "val_loss", (double)last_val);
    cli_json_int(j, "val_step", last_val_step);
    cli_json_num(j, "unigram_baseline", unigram);
    cli_json_str(j, "checkpoint", ck_file);
    cli_json_str(j, "loss_log", csv_path);
    cli_json_close(j);
  }
  fflush(stdout);
done:
  if (csv) fclose(csv);
  cli_dp_end(&dp);
  ct_trainer_free(run.t);
  ct_morphism_free(loss);
  ct_gpt_free(run.g);
  cli_losslog_free(&run.log);
  cli_checkpoint_free(&from);
  free(run.ck.data_path);
  free(run.out_dir);
  free(ck_file);
  free(csv_path);
  free(data_desc);
  free(text);
  free(ids);
  free(in);
  free(tg);
  return code;
}
