/* SPDX-License-Identifier: MIT */
/* Internals of the ctml command-line tool, shared by its commands. */
#ifndef CTML_CLI_H
#define CTML_CLI_H

#include <signal.h>
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

/* A usage error (printed) unless name is a backend ctml knows ("cpu", "cuda",
 * "opencl", built or not) or "auto" ("all" instead when allow_all: bench), so every
 * command refuses an unknown name with exit 2 before doing any work. */
bool cli_backend_known(const char *cmd, const char *name, bool allow_all);
/* Whether argv element a is flag, as "--flag" or "--flag=VALUE". */
bool cli_flag_is(const char *a, const char *flag);
/* Unsigned 64-bit parsing (seeds): as cli_parse_long, for 0 ... 2^64-1. */
bool cli_parse_u64(const char *cmd, const char *flag, const char *s, uint64_t *out);
/* "" for 1, else "s": "%lld layer%s". */
const char *cli_s(long long n);
/* When the model shape of c (layers, heads, width, block) differs from the preset
 * c->name, renames c "custom (from <preset>)"; the preset name of c into base. */
void cli_config_rename(cli_config *c, char base[32]);
/* The environment variables the backends read, for --help; train adds
 * CTML_FORTUNES_DIR. devices: every backend; none: "reads none". */
void cli_env_usage(FILE *f, bool fortunes);
/* --tf32 and --graph (train, bench) for backend be: a usage error (printed,
 * CLI_USAGE) unless be is cuda; tf32 turns on TF32 matrix products. CLI_OK, or
 * CLI_FAIL after printing when cuda refuses the option. */
int cli_cuda_flags(const char *cmd, const ct_backend *be, bool tf32, bool graph);

/* Model FLOPs of one training step, tokens x (6 N + 12 L C T), N the parameters
 * less the position table (PaLM, appendix B; full, not causal, attention). */
double cli_step_flops(const ct_gpt_config *m, int64_t numel, int64_t batch);
/* The peak FLOP/s of a GPU named device (FP32, or TF32 tensor cores, dense) and
 * its label ("H100 SXM"); 0 when the device is not in the table. */
double cli_peak_flops(const char *device, bool tf32, const char **label);
/* The model-FLOPs utilisation of backend be at `flops` per `seconds` as a
 * fraction, or NaN when be does not run on a GPU or its peak is unknown;
 * *label (when not NULL) gets the peak's label. */
double cli_mfu(const ct_backend *be, bool tf32, double flops, double seconds, const char **label);

/* JSON output (--json, --log-format jsonl): one object per line, ", " and ": "
 * separators. cli_json_write_string escapes '"', '\\', control bytes (\n \t \r or
 * \u00XX) and bytes outside well-formed UTF-8 (as \u00XX, their Latin-1 code
 * point); a number a float holds exactly prints with the fewest digits that read
 * back as it, another with 9 significant digits; NaN and Inf print as null.
 * The writer places commas and keys: key is ignored inside arrays; the
 * outermost close ends the line.
 *   cli_json j; cli_json_init(&j, stdout); cli_json_open(&j, NULL, '{');
 *   cli_json_str(&j, "backend", "cpu"); cli_json_num(&j, "loss", 1.5);
 *   cli_json_open(&j, "rows", '['); ... cli_json_close(&j); cli_json_close(&j); */
#define CLI_JSON_DEPTH 16
typedef struct cli_json {
  FILE *f;
  int depth;
  char close[CLI_JSON_DEPTH]; /* the bracket that closes each open level */
  int count[CLI_JSON_DEPTH];  /* values written at each level */
} cli_json;
void cli_json_init(cli_json *j, FILE *f);
void cli_json_open(cli_json *j, const char *key, char bracket); /* '{' or '[' */
void cli_json_close(cli_json *j);
void cli_json_str(cli_json *j, const char *key, const char *s); /* NULL: null */
void cli_json_strn(cli_json *j, const char *key, const char *s, size_t n);
void cli_json_num(cli_json *j, const char *key, double v);
void cli_json_int(cli_json *j, const char *key, long long v);
void cli_json_u64(cli_json *j, const char *key, uint64_t v);
void cli_json_bool(cli_json *j, const char *key, bool v);
void cli_json_null(cli_json *j, const char *key);
void cli_json_write_string(FILE *f, const char *s, size_t n);
void cli_json_write_number(FILE *f, double v);
/* Length of the well-formed UTF-8 sequence at p (n bytes left), 0 when there is none. */
int cli_utf8_len(const unsigned char *p, size_t n);

/* Checkpoints: one safetensors file holding the GPT parameters under their
 * names, the AdamW moments as "optim.m.<name>" and "optim.v.<name>", and in
 * the metadata the config, vocabulary (hex), step, batch RNG state and a
 * fingerprint of the training data. Weights-only files (format
 * "ctml-gpt-weights-1") hold the config, vocabulary and parameters; GPT-2
 * layout files (Hugging Face, see docs/interop.md) are read too. */
#define CLI_CHECKPOINT_FILE "checkpoint.safetensors"
enum { CLI_CK_RUN, CLI_CK_WEIGHTS, CLI_CK_HF };
/* A tensor converted on load (GPT-2 layout), under its ctml name. */
typedef struct cli_ck_tensor {
  char name[64];
  int rank;
  int64_t dims[2];
  float *data;
} cli_ck_tensor;
typedef struct cli_checkpoint {
  cli_config cfg;       /* a weights or GPT-2 file: the tiny preset's training settings */
  ct_vocab vocab;
  long step;
  uint64_t rng;
  int world_size;       /* ranks of the run that wrote it (1: one process) */
  uint64_t data_hash;   /* FNV-1a of the training text */
  int64_t data_bytes;
  char *data_path;      /* the training text (NULL or "": the default corpus); owned */
  ct_safetensors *file; /* tensors; freed by cli_checkpoint_free */
  int kind;             /* CLI_CK_RUN (resumable), CLI_CK_WEIGHTS or CLI_CK_HF */
  char *path;           /* the file read; owned */
  cli_ck_tensor *own;   /* CLI_CK_HF: the parameters in ctml's layout */
  int n_own;
} cli_checkpoint;

/* path is a run directory (holding checkpoint.safetensors), a directory of
 * a GPT-2 export (model.safetensors and config.json) or a file of any of the
 * three kinds. Every metadata number is checked against its flag's range and
 * every tensor's shape against the config before anything is allocated. */
bool cli_checkpoint_load(const char *cmd, const char *path, cli_checkpoint *ck);
void cli_checkpoint_free(cli_checkpoint *ck);
/* The parameters in the order of gpt.h: name and shape from the config
 * (rank 1 or 2); false past the last. */
bool cli_param_spec(const ct_gpt_config *c, int i, char name[64], int *rank, int64_t dims[2]);
/* Data of parameter name of a loaded checkpoint (its shape was checked), or NULL. */
const float *cli_checkpoint_tensor(const cli_checkpoint *ck, const char *name);
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
/* The vocabulary from its bytes in hex (metadata key of file); prints when bad. */
bool cli_vocab_hex(const char *cmd, const char *file, const char *key, const char *hex,
                   ct_vocab *v);
/* Writes a weights-only file (config, vocabulary, parameters) of a loaded checkpoint. */
bool cli_checkpoint_save_weights(const char *cmd, const char *file, const cli_checkpoint *ck);

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
 * (its own steps) against step, with axes, ticks and a legend; baseline (the
 * unigram loss; NaN: none) is a dashed horizontal line with its own entry. Written
 * atomically like checkpoints. Returns false (errno set) on a write failure. */
bool cli_write_loss_svg(const char *path, const char *title, const long *steps,
                        const float *train, int n, const long *val_steps, const float *val,
                        int n_val, double baseline);

/* Interop, fine-tuning, evaluation (cli_interop.c, cli_eval.c). */
/* The config from checkpoint metadata: the model keys (config.*) always, the
 * training keys (train.*) when train; each value checked against its flag's
 * range. Prints naming file, key and range; false when bad or missing. */
bool cli_config_from_meta(cli_config *c, const char *cmd, const char *file,
                          const ct_safetensors *f, bool train);
/* Metadata key and value of config field i (the order of the table); false past the last. */
bool cli_config_meta_item(const cli_config *c, int i, const char **key, char *value, size_t n);
/* Sets the model field of metadata key (config.width, ...) from another
 * source (label: "config.json 'n_embd'"), checked against the same range. */
bool cli_config_model_value(cli_config *c, const char *cmd, const char *src, const char *key,
                            const char *label, long long v);
/* True for --layers --heads --width --block. */
bool cli_config_is_model_flag(const char *flag);
/* Reads a GPT-2 layout safetensors file (F32 or BF16) with config.json and
 * ctml_vocab.json beside it into ck (kind CLI_CK_HF); ck->file is loaded. */
bool cli_hf_load(const char *cmd, const char *file, cli_checkpoint *ck);
/* The training text encoded with the vocabulary of a checkpoint; a byte
 * outside it is an error naming the byte and its offset. */
bool cli_encode_with(const char *cmd, const char *what, const ct_vocab *v, const uint8_t *text,
                     int64_t n, int32_t *ids);
int cli_export(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_eval(int argc, char **argv);

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
 * none) or MemAvailable, or whose device bytes exceed max_memory or
 * device_memory (the device's own memory; <= 0: unknown). */
bool cli_budget_check(const char *cmd, const cli_budget *b, bool device_is_host, int64_t max_memory,
                      int64_t device_memory);
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

/* Data-parallel ctml train (cli_dp.c): started by a launcher (mpirun -np N),
 * one rank per process. Rank r trains on rows [r B, (r + 1) B) of the N B rows
 * drawn per step from the one seeded stream, so N ranks at batch B see the
 * batches of one process at batch N B. Only rank 0 writes (stdout, loss log,
 * plot, checkpoints). */
typedef struct cli_dp {
  ct_collective *c; /* NULL: one process */
  int rank, size;
  int32_t *in_all, *tg_all; /* the N B rows of a step */
} cli_dp;
/* --collective NAME (auto, none, mpi, nccl): as cli_opt, checking the name. */
int cli_dp_arg(const char *cmd, int argc, char **argv, int *i, const char **name);
/* Before the backend opens: with the cuda backend, one GPU per rank of a node
 * (the launcher's local rank modulo the device count, unless CTML_CUDA_DEVICE
 * is set). */
void cli_dp_select_device(const char *name, const char *backend);
/* Joins the job for name (auto: when the launcher started more than one rank,
 * nccl on cuda where present, else mpi) and makes t data-parallel; ck_world
 * (0: not resuming) must equal the world size. A rank other than 0 sends
 * stdout to /dev/null. Prints its line unless quiet. CLI_OK, or CLI_USAGE (a
 * world size other than the checkpoint's) or CLI_FAIL after printing. */
int cli_dp_start(const char *cmd, cli_dp *dp, const char *name, ct_trainer *t,
                  const ct_backend *be, int64_t B, int64_t T, int ck_world, bool quiet);
/* Draws this rank's rows of the next step and sets them as t's inputs; every
 * rank agrees that every rank did (the error names the rank that failed). */
ct_status cli_dp_batch(cli_dp *dp, ct_trainer *t, uint64_t *rng, const int32_t *ids, int64_t n,
                       int64_t B, int64_t T, int32_t *in, int32_t *tg);
/* Whether to stop the loop before the next step: any rank was interrupted
 * (sets *interrupted on every rank) or the collective failed (*code CLI_FAIL,
 * after printing). */
bool cli_dp_stop(const char *cmd, cli_dp *dp, volatile sig_atomic_t *interrupted, int *code);
/* Rank 0, or one process: the rank that writes. */
bool cli_dp_root(const cli_dp *dp);
/* Leaves the job; frees dp. */
void cli_dp_end(cli_dp *dp);

#endif
