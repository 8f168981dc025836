/* SPDX-License-Identifier: MIT */
/* Internals of the ctml command-line tool, shared by its commands. */
#ifndef CTML_CLI_H
#define CTML_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "ctml/ctml.h"
#include "ctml/safetensors.h"
#include "ctml/text.h"

/* Exit codes: 0 success, 1 a failure (bad data, device error, check failed),
 * 2 bad usage (unknown flag or command, bad flag value), 130 interrupted. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_INTERRUPTED = 130 };

/* Prints "ctml <cmd>: <message>" on one line to stderr and returns code. */
int cli_error(const char *cmd, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The same with the library's last error appended: "...: <ct_last_error()>". */
int cli_lib_error(const char *cmd, const char *what);

/* A training run's settings: the model, the optimizer and the loop. */
typedef struct cli_config {
  char name[32];        /* preset it started from: "tiny", "micro", "small" */
  ct_gpt_config model;  /* vocab is set from the data */
  int64_t batch;
  long steps;           /* total optimizer steps */
  float lr, min_lr, weight_decay, clip, beta1, beta2;
  long warmup;
  long eval_every;      /* validation loss every k steps (and at the end) */
  long eval_batches;    /* windows of batch x block evaluated each time */
  long save_every;      /* checkpoint every N steps (and at the end); 0: end only */
  uint64_t seed;        /* initialisation and batch draws */
} cli_config;

/* Fills c from a preset name; false for an unknown one. */
bool cli_config_preset(cli_config *c, const char *name);
/* The same for --config NAME (NULL: tiny); prints the error for an unknown one. */
bool cli_config_named(cli_config *c, const char *cmd, const char *name);
/* The preset of the --config flag found anywhere in argv (so the other flags
 * override it wherever they stand); *preset receives its name or NULL.
 * CLI_OK, or CLI_USAGE after printing. */
int cli_config_from_args(cli_config *c, const char *cmd, int argc, char **argv,
                         const char **preset);
/* Applies "--flag value" when flag names a config field (--layers --heads
 * --width --block --batch --steps --lr --min-lr --weight-decay --clip --beta1
 * --beta2 --warmup --eval-every --eval-batches --save-every --seed). Returns 1
 * when consumed (value used), 0 when flag is not a config flag, -1 after
 * printing an error for a bad value. */
int cli_config_flag(cli_config *c, const char *cmd, const char *flag, const char *value);
/* argv[*i] as a config flag ("--flag VALUE" or "--flag=VALUE") applied to c;
 * its name goes to flag and its value to *value. 1 when consumed (*i moves past
 * the value), 0 when argv[*i] is not a config flag, -1 after printing an error
 * (a missing or bad value). */
int cli_config_arg(cli_config *c, const char *cmd, int argc, char **argv, int *i,
                   char flag[32], const char **value);
/* Checks the combination (heads divide width, ranges); prints and returns false when bad. */
bool cli_config_check(const cli_config *c, const char *cmd);
/* The optimizer the config describes. */
ct_optimizer cli_config_optimizer(const cli_config *c);
/* Help text for the config flags. */
void cli_config_usage(FILE *f);

/* Backend selection with the reason for the choice. name is "auto", "cpu",
 * "cuda" or "opencl". auto takes CUDA, then OpenCL on a GPU, then cpu.
 * On failure prints one line and returns false. */
bool cli_pick_backend(const char *cmd, const char *name, const ct_backend **out, char *why,
                      size_t why_len);

/* The device backend i (see ct_backend_count) runs on, or would; false when none is listed. */
bool cli_selected_device(int i, ct_device_info *out);

/* Option parsing helper: when argv[*i] is "--name" or "--name=VALUE", stores
 * the value (the next argument for the first form, advancing *i) and returns 1;
 * 0 when it is another option; -1 after printing an error when the value is missing. */
int cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name, const char **value);
/* Strict number parsing; print an error naming the flag and return false when bad. */
bool cli_parse_long(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out);
bool cli_parse_float(const char *cmd, const char *flag, const char *s, float lo, float hi,
                     float *out);

/* Checkpoints: one safetensors file holding the GPT parameters under their
 * names, the AdamW moments as "optim.m.<name>" and "optim.v.<name>", and in
 * the metadata the config, vocabulary (hex), step, batch RNG state and a
 * fingerprint of the training data. */
#define CLI_CHECKPOINT_FILE "checkpoint.safetensors"
typedef struct cli_checkpoint {
  cli_config cfg;
  ct_vocab vocab;
  long step;
  uint64_t rng;
  uint64_t data_hash;   /* FNV-1a of the training text */
  int64_t data_bytes;
  char *data_path;      /* the training text (NULL or "": the default corpus); owned */
  ct_safetensors *file; /* tensors; freed by cli_checkpoint_free */
} cli_checkpoint;

/* path is a run directory (holding checkpoint.safetensors) or a file. */
bool cli_checkpoint_load(const char *cmd, const char *path, cli_checkpoint *ck);
void cli_checkpoint_free(cli_checkpoint *ck);
/* Copies the parameters into g (same config); prints and returns false on a mismatch. */
bool cli_checkpoint_params(const char *cmd, const cli_checkpoint *ck, ct_gpt *g);
/* Copies the AdamW moments into the trainer of g and sets its step count. */
bool cli_checkpoint_optimizer(const char *cmd, const cli_checkpoint *ck, const ct_gpt *g,
                              ct_trainer *t);
/* Writes DIR/checkpoint.safetensors atomically from ck's metadata (cfg, vocab,
 * step, rng, data fingerprint; ck->file unused), the host parameters of g and
 * the trainer's moments. An existing checkpoint stays intact when it fails. */
bool cli_checkpoint_save(const char *cmd, const char *dir, const cli_checkpoint *ck,
                         const ct_gpt *g, ct_trainer *t);

/* Monotonic seconds. */
double cli_now(void);
/* "--no-rewrite": the plan flag it stands for (CT_PLAN_NO_REWRITE). */
#define CLI_NO_REWRITE_FLAG "--no-rewrite"
/* The rewrites that fired in p, by rule: "4 rewrites: add_layernorm x2, linear_gelu x2",
 * or "no rewrite matched"; into buf. */
const char *cli_rewrite_summary(const ct_plan *p, char *buf, size_t n);

/* FNV-1a 64-bit hash. */
uint64_t cli_fnv1a(const uint8_t *data, int64_t n);

/* Loss curve: an SVG of train loss (every logged step) and validation loss
 * (its own steps) against step, with axes, ticks and a legend. Written
 * atomically like checkpoints. Returns false (errno set) on a write failure. */
bool cli_write_loss_svg(const char *path, const char *title, const long *steps,
                        const float *train, int n, const long *val_steps, const float *val,
                        int n_val);

/* ---- Hostile inputs and faults: files, paths, budgets, the loss log ---- */

/* Newly allocated a + b + c (b, c may be NULL); NULL when out of memory. */
char *cli_strcat_alloc(const char *a, const char *b, const char *c);
/* Newly allocated "dir/name"; NULL when out of memory. */
char *cli_path_join(const char *dir, const char *name);
/* fsync of the directory holding path: 0 or an errno value. */
int cli_sync_dir_of(const char *path);
/* A file replaced atomically: written to "<path>.tmp", then cli_atomic_commit
 * flushes it (fsync), renames it over path and syncs the directory; path is
 * either its old or its new content whatever happens. Both return false with
 * errno set; on failure the temporary file is removed. */
typedef struct cli_atomic {
  FILE *f;
  char *tmp, *path;
} cli_atomic;
bool cli_atomic_open(cli_atomic *a, const char *path);
bool cli_atomic_commit(cli_atomic *a);
void cli_atomic_abort(cli_atomic *a);
/* The n bytes of data as the file path, atomically. */
bool cli_write_atomic(const char *path, const void *data, size_t n);
/* path as a symbolic link to target, atomically. */
bool cli_symlink_atomic(const char *target, const char *path);
/* True for well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
bool cli_utf8_valid(const char *s);
/* "--max-memory 8G": a positive byte count with an optional K/M/G/T suffix
 * (powers of 1024); prints naming flag and returns false when bad. */
bool cli_parse_bytes(const char *cmd, const char *flag, const char *s, int64_t *out);
/* MemAvailable of /proc/meminfo in bytes; -1 when unknown. */
int64_t cli_mem_available(void);
/* Bytes a training run of c needs, estimated from the config alone (vocab:
 * the text's, or <= 0 for c's), before anything is allocated: a lower bound. */
typedef struct cli_budget {
  double host, device;
} cli_budget;
cli_budget cli_budget_estimate(const cli_config *c, int64_t vocab, int64_t data_bytes);
/* Refuses (prints the estimate and the limit, returns false) a run whose host
 * bytes (with the device's when it runs on the host) exceed max_memory (<= 0:
 * none) or MemAvailable, or whose device bytes exceed max_memory. */
bool cli_budget_check(const char *cmd, const cli_budget *b, bool device_is_host, int64_t max_memory);
/* The largest --data train reads unless --max-data raises it: 1 GiB. */
#define CLI_MAX_DATA_DEFAULT (1ll << 30)
/* The largest loss.csv a resumed run reads: 256 MiB. */
#define CLI_LOSSLOG_MAX (256ll << 20)

/* The loss log: one row per step, validation where it was measured. */
typedef struct cli_losslog {
  long *steps, *val_steps;
  float *train, *val;
  int n, n_val, cap, cap_val;
} cli_losslog;
bool cli_losslog_push(cli_losslog *l, long step, float train);
bool cli_losslog_push_val(cli_losslog *l, long step, float val);
void cli_losslog_free(cli_losslog *l);
/* The rows of a loss.csv text (n bytes, not NUL-terminated) with steps 1..last
 * into l, and their text, one row a line, into *kept (malloc'd, *kept_len
 * bytes, NUL-terminated; free it even on failure). Malformed rows, rows of
 * non-printable bytes or over 255 bytes, and a last row without its newline
 * are dropped. False when out of memory. */
bool cli_losslog_parse(const char *text, size_t n, long last, cli_losslog *l, char **kept,
                       size_t *kept_len);
/* The same for the file path (a missing one has no rows); false when it cannot
 * be read, is not a regular file or exceeds CLI_LOSSLOG_MAX, or out of memory. */
bool cli_losslog_read(const char *path, long last, cli_losslog *l, char **kept,
                      size_t *kept_len);

/* Commands. */
int cli_train(int argc, char **argv);
int cli_sample(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_bench(int argc, char **argv);

#endif
