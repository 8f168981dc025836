/* ctml sample: text from a trained checkpoint, on any backend. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"

#define CLI__CMD "sample"

static void cli__usage(FILE *f) {
  fprintf(f,
          "usage: ctml sample [--checkpoint DIR|FILE] [--prompt TEXT] [--tokens N] [--temperature X]\n"
          "                   [--top-k K] [--seed N] [--backend auto|cpu|cuda|opencl]\n"
          "  --checkpoint    a run directory of 'ctml train' or its checkpoint.safetensors\n"
          "                  (default: runs/latest, the last run 'ctml train' started)\n"
          "  --prompt TEXT   the text to continue (default: a newline); every byte must be in\n"
          "                  the checkpoint's vocabulary\n"
          "  --tokens N      bytes to generate (default 200)\n"
          "  --temperature X logits are divided by X before the softmax (default 0.8; 0: the\n"
          "                  most likely byte every time)\n"
          "  --top-k K       draw among the K most likely bytes only (default 0: all)\n"
          "  --seed N        seed of the draws (default 1)\n");
}

/* Index drawn from softmax(logits / temperature) restricted to the k largest
 * (k <= 0: all); temperature 0 takes the largest (the first on ties). */
static int cli__draw(const float *logits, int V, float temperature, int k, uint64_t *rng,
                     double *p) {
  int best = 0;
  for (int j = 1; j < V; j++)
    if (logits[j] > logits[best]) best = j;
  if (temperature == 0.0f) return best;
  /* the k-th largest logit is the cut: entries below it get probability 0 */
  float cut = -INFINITY;
  if (k > 0 && k < V) {
    for (int j = 0; j < V; j++) p[j] = logits[j];
    for (int r = 0; r < k; r++) { /* k passes of selection: V is at most 256 */
      int m = -1;
      for (int j = 0; j < V; j++)
        if (p[j] != -INFINITY && (m < 0 || p[j] > p[m])) m = j;
      cut = (float)p[m];
      p[m] = -INFINITY;
    }
  }
  double sum = 0.0;
  for (int j = 0; j < V; j++) {
    p[j] = logits[j] >= cut ? exp(((double)logits[j] - logits[best]) / temperature) : 0.0;
    sum += p[j];
  }
  double u = (double)(ct_splitmix64(rng) >> 11) / 9007199254740992.0 * sum, acc = 0.0;
  for (int j = 0; j < V; j++) {
    acc += p[j];
    if (p[j] > 0.0 && u < acc) return j;
  }
  return best;
}

int cli_sample(int argc, char **argv) {
  const char *ck_path = NULL, *prompt = NULL, *backend = "auto";
  long tokens = 200, top_k = 0;
  float temperature = 0.8f;
  uint64_t seed = 1;
  for (int i = 0; i < argc; i++) {
    const char *v = NULL;
    int r;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      cli__usage(stdout);
      return CLI_OK;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--checkpoint", &ck_path)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--prompt", &prompt)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--backend", &backend))) {
      if (r < 0) return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--tokens", &v))) {
      if (r < 0 || !cli_parse_long(CLI__CMD, "--tokens", v, 0, 1L << 30, &tokens)) return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--top-k", &v))) {
      if (r < 0 || !cli_parse_long(CLI__CMD, "--top-k", v, 0, 256, &top_k)) return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--temperature", &v))) {
      if (r < 0 || !cli_parse_float(CLI__CMD, "--temperature", v, 0.0f, 100.0f, &temperature))
        return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--seed", &v))) {
      long s;
      if (r < 0 || !cli_parse_long(CLI__CMD, "--seed", v, 0, 0x7fffffffL, &s)) return CLI_USAGE;
      seed = (uint64_t)s;
      continue;
    }
    return cli_error(CLI__CMD, CLI_USAGE, "unknown option '%s' (see 'ctml sample --help')",
                     argv[i]);
  }
  if (!ck_path) {
    struct stat st;
    if (stat("runs/latest", &st) != 0)
      return cli_error(CLI__CMD, CLI_USAGE, "--checkpoint DIR is required (there is no "
                       "runs/latest from 'ctml train' here)");
    ck_path = "runs/latest";
  }
  const ct_backend *be = NULL;
  char why[1400];
  if (!cli_pick_backend(CLI__CMD, backend, &be, why, sizeof why)) return CLI_FAIL;

  cli_checkpoint ck;
  if (!cli_checkpoint_load(CLI__CMD, ck_path, &ck)) return CLI_FAIL;
  const ct_vocab *vocab = &ck.vocab;
  const int V = vocab->size;
  const int64_t T = ck.cfg.model.block;
  int code = CLI_FAIL;
  ct_gpt *g = NULL;
  ct_morphism *m = NULL;
  ct_plan *plan = NULL;
  size_t plen = prompt ? strlen(prompt) : 0;
  int32_t *ctx = malloc((plen + (size_t)tokens + 1) * sizeof *ctx);
  int32_t *window = calloc((size_t)T, sizeof *window);
  float *logits = malloc((size_t)(T * V) * sizeof *logits);
  double *p = malloc((size_t)V * sizeof *p);
  if (!ctx || !window || !logits || !p) {
    cli_error(CLI__CMD, CLI_FAIL, "out of host memory");
    goto done;
  }
  int64_t n = 0;
  if (plen > 0) {
    if (ct_vocab_encode(vocab, (const uint8_t *)prompt, (int64_t)plen, ctx) != CT_OK) {
      cli_error(CLI__CMD, CLI_FAIL, "--prompt: %s (the checkpoint's vocabulary has %d bytes)",
                ct_last_error(), V);
      goto done;
    }
    n = (int64_t)plen;
  } else {
    ctx[n++] = vocab->id_of['\n'] >= 0 ? vocab->id_of['\n'] : 0;
  }
  if (ct_gpt_new(&g, &ck.cfg.model, 0) != CT_OK) {
    cli_lib_error(CLI__CMD, "model");
    goto done;
  }
  if (!cli_checkpoint_params(CLI__CMD, &ck, g)) goto done;
  if (ct_gpt_logits(&m, g, 1, T) != CT_OK || ct_compile(&plan, m, be, CT_PLAN_FORWARD) != CT_OK) {
    cli_lib_error(CLI__CMD, "model");
    goto done;
  }
  fprintf(stderr, "ctml sample: backend %s (%s); step %ld checkpoint, %lld parameters\n",
          ct_backend_name(be), why, ck.step, (long long)ct_gpt_numel(g));
  if (plen > 0) fwrite(prompt, 1, plen, stdout);
  uint64_t rng = seed;
  for (long k = 0; k < tokens; k++) {
    /* the last T tokens at positions 0 .. len-1; causal attention ignores the rest */
    int64_t len = n < T ? n : T;
    memcpy(window, ctx + (n - len), (size_t)len * sizeof *window);
    if (ct_plan_set_input(plan, 0, window, T) != CT_OK || ct_plan_forward(plan) != CT_OK ||
        ct_plan_get_output(plan, 0, logits, T * V) != CT_OK) {
      fflush(stdout);
      cli_lib_error(CLI__CMD, "generating");
      goto done;
    }
    int id = cli__draw(logits + (len - 1) * V, V, temperature, (int)top_k, &rng, p);
    ctx[n++] = id;
    putchar(vocab->byte_of[id]);
    fflush(stdout);
  }
  putchar('\n');
  code = CLI_OK;
done:
  ct_plan_free(plan);
  ct_morphism_free(m);
  ct_gpt_free(g);
  cli_checkpoint_free(&ck);
  free(ctx);
  free(window);
  free(logits);
  free(p);
  return code;
}
