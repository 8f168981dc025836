/* SPDX-License-Identifier: MIT */
/* ctml eval: the loss of a checkpoint over a whole text. Every byte after
 * the first is predicted exactly once: non-overlapping windows of block
 * bytes, and for the remainder one last window ending at the end of the text
 * that scores only the predictions not yet scored. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

#define CLI__CMD "eval"

static void cli__usage(FILE *f) {
  fprintf(f,
          "usage: ctml eval --data FILE [--checkpoint RUN|FILE] [--backend auto|cpu|cuda|opencl]\n"
          "                 [--batch N] [--json]\n"
          "  --data FILE     the text to score; every byte must be in the checkpoint's vocabulary\n"
          "  --checkpoint P  a run directory, checkpoint, weights file or GPT-2 export\n"
          "                  (default: runs/latest)\n"
          "  --batch N       windows per forward pass (default 8)\n"
          "  --json          one JSON object on stdout instead of the text lines\n"
          "Windows: the text is cut into non-overlapping windows of block bytes; each predicts\n"
          "all its positions (position p sees p+1 bytes of context). The remainder is scored\n"
          "from one last window ending at the end of the text, counting only the predictions\n"
          "not yet scored. Every byte after the first is scored exactly once.\n"
          "Prints the mean loss (nats per byte), bits per byte (loss / ln 2), the perplexity\n"
          "(exp loss) and the bytes scored.\n");
  cli_env_usage(f, false);
}

int cli_eval(int argc, char **argv) {
  const char *ck_path = "runs/latest", *data_path = NULL, *backend = "auto";
  long batch = 8;
  bool json = false;
  for (int i = 0; i < argc; i++) {
    const char *v = NULL;
    int r;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      cli__usage(stdout);
      return CLI_OK;
    }
    if (!strcmp(argv[i], "--json")) {
      json = true;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--checkpoint", &ck_path)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--data", &data_path)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--backend", &backend))) {
      if (r < 0) return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--batch", &v))) {
      if (r < 0 || !cli_parse_long(CLI__CMD, "--batch", v, 1, 4096, &batch)) return CLI_USAGE;
      continue;
    }
    return cli_error(CLI__CMD, CLI_USAGE, "unknown option '%s' (see 'ctml eval --help')", argv[i]);
  }
  if (!data_path) return cli_error(CLI__CMD, CLI_USAGE, "--data FILE is required");
  if (!cli_backend_known(CLI__CMD, backend, false)) return CLI_USAGE;
  const ct_backend *be = NULL;
  char why[1400];
  if (!cli_pick_backend(CLI__CMD, backend, &be, why, sizeof why)) return CLI_FAIL;
  cli_checkpoint ck;
  if (!cli_checkpoint_load(CLI__CMD, ck_path, &ck)) return CLI_FAIL;

  int code = CLI_FAIL;
  uint8_t *text = NULL;
  int64_t n = 0;
  int32_t *ids = NULL, *in = NULL;
  float *logits = NULL;
  ct_gpt *g = NULL;
  ct_morphism *net = NULL;
  ct_plan *plan = NULL;
  /* a regular file of at most CLI_MAX_DATA_DEFAULT bytes, read up to its size at open */
  if (ct_text_read_regular_file(data_path, CLI_MAX_DATA_DEFAULT, &text, &n) != CT_OK) {
    cli_error(CLI__CMD, CLI_FAIL, "--data: %s", ct_last_error());
    goto done;
  }
  if (n < 2) {
    cli_error(CLI__CMD, CLI_FAIL, "--data: %s has %lld byte%s; scoring needs at least 2",
              data_path, (long long)n, n == 1 ? "" : "s");
    goto done;
  }
  ids = malloc((size_t)n * sizeof *ids);
  if (!ids) {
    cli_error(CLI__CMD, CLI_FAIL, "out of host memory for %lld bytes", (long long)n);
    goto done;
  }
  if (!cli_encode_with(CLI__CMD, "--data", &ck.vocab, text, n, ids)) goto done;

  /* windows: T inputs each; the last one scores only its final `tail` positions */
  const int64_t V = ck.cfg.model.vocab, preds = n - 1;
  const int64_t T = ck.cfg.model.block < preds ? ck.cfg.model.block : preds;
  const int64_t full = preds / T, tail = preds - full * T, windows = full + (tail > 0);
  /* at most 2^24 logits per pass (64 MiB) */
  int64_t B = batch < windows ? batch : windows;
  if (B * T * V > (1 << 24)) B = (1 << 24) / (T * V) > 0 ? (1 << 24) / (T * V) : 1;
  in = malloc((size_t)(B * T) * sizeof *in);
  logits = malloc((size_t)(B * T * V) * sizeof *logits);
  if (!in || !logits) {
    cli_error(CLI__CMD, CLI_FAIL, "out of host memory");
    goto done;
  }
  if (ct_gpt_new_zeroed(&g, &ck.cfg.model) != CT_OK) {
    cli_lib_error(CLI__CMD, "model");
    goto done;
  }
  if (!cli_checkpoint_params(CLI__CMD, &ck, g)) goto done;
  if (ct_gpt_logits(&net, g, B, T) != CT_OK || ct_compile(&plan, net, be, CT_PLAN_FORWARD) != CT_OK ||
      ct_plan_load_params(plan) != CT_OK) {
    cli_lib_error(CLI__CMD, "model");
    goto done;
  }
  double t0 = cli_now(), sum = 0.0;
  int64_t scored = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += B) {
    for (int64_t b = 0; b < B; b++) {
      int64_t w = w0 + b < windows ? w0 + b : w0; /* a short last batch repeats its first */
      int64_t s = w < full ? w * T : preds - T;
      memcpy(&in[b * T], &ids[s], (size_t)T * sizeof *in);
    }
    if (ct_plan_set_input(plan, 0, in, B * T) != CT_OK || ct_plan_forward(plan) != CT_OK ||
        ct_plan_get_output(plan, 0, logits, B * T * V) != CT_OK) {
      cli_lib_error(CLI__CMD, "forward");
      goto done;
    }
    for (int64_t b = 0; b < B && w0 + b < windows; b++) {
      int64_t w = w0 + b, s = w < full ? w * T : preds - T, first = w < full ? 0 : T - tail;
      for (int64_t t = first; t < T; t++) {
        const float *row = &logits[(b * T + t) * V];
        double mx = row[0], z = 0.0;
        for (int64_t v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
        for (int64_t v = 0; v < V; v++) z += exp((double)row[v] - mx);
        sum += mx + log(z) - (double)row[ids[s + t + 1]];
        scored++;
      }
    }
  }
  double secs = cli_now() - t0, loss = sum / (double)scored, bpb = loss / log(2.0),
         ppl = exp(loss);
  if (json) {
    cli_json j;
    cli_json_init(&j, stdout);
    cli_json_open(&j, NULL, '{');
    cli_json_str(&j, "checkpoint", ck.path);
    cli_json_str(&j, "data", data_path);
    cli_json_str(&j, "backend", ct_backend_name(be));
    cli_json_int(&j, "bytes", n);
    cli_json_int(&j, "tokens_scored", scored);
    cli_json_int(&j, "windows", windows);
    cli_json_int(&j, "block", T);
    cli_json_int(&j, "tail", tail);
    cli_json_num(&j, "loss", loss);
    cli_json_num(&j, "bits_per_byte", bpb);
    cli_json_num(&j, "perplexity", ppl);
    cli_json_num(&j, "seconds", secs);
    cli_json_close(&j);
  } else {
    printf("ctml eval: backend %s (%s)\n", ct_backend_name(be), why);
    printf("checkpoint %s: %lld layers, width %lld, block %lld; data %s, %lld bytes\n", ck.path,
           (long long)ck.cfg.model.layers, (long long)ck.cfg.model.width,
           (long long)ck.cfg.model.block, data_path, (long long)n);
    printf("%lld bytes scored in %lld windows of %lld (last window: %lld new) in %.2f s\n",
           (long long)scored, (long long)windows, (long long)T, (long long)(tail ? tail : T),
           secs);
    printf("loss %.4f nats/byte, %.4f bits/byte, perplexity %.3f\n", loss, bpb, ppl);
  }
  code = CLI_OK;
done:
  ct_plan_free(plan);
  ct_morphism_free(net);
  ct_gpt_free(g);
  cli_checkpoint_free(&ck);
  free(text);
  free(ids);
  free(in);
  free(logits);
  return code;
}
