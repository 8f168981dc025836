/* SPDX-License-Identifier: MIT */
/* ctml sample: text from a trained checkpoint, on any backend. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"

#define CLI__CMD "sample"

static void cli__usage(FILE *f) {
  fprintf(f,
          "usage: ctml sample [--checkpoint DIR|FILE] [--prompt TEXT] [--tokens N] [--temperature X]\n"
          "                   [--top-k K] [--seed N] [--count N] [--stop TEXT] [--no-cache]\n"
          "                   [--backend auto|cpu|cuda|opencl] [--json]\n"
          "  --checkpoint    a run directory of 'ctml train' or its checkpoint.safetensors, a\n"
          "                  weights-only file or a GPT-2 layout export (docs/interop.md)\n"
          "                  (default: runs/latest, the last run 'ctml train' started)\n"
          "  --prompt TEXT   the text to continue (default: a newline); every byte must be in\n"
          "                  the checkpoint's vocabulary\n"
          "  --tokens N      bytes to generate per sample (default 200)\n"
          "  --temperature X logits are divided by X before the softmax (default 0.8; 0: the\n"
          "                  most likely byte every time)\n"
          "  --top-k K       draw among the K most likely bytes only (default 0: all)\n"
          "  --seed N        seed of the draws, 0 ... 2^64-1 (default 1)\n"
          "  --count N       samples, one after another, each from the prompt (default 1)\n"
          "  --stop TEXT     end a sample once its generated text ends with TEXT\n"
          "  --no-cache      run the whole window for every byte (the reference path) instead\n"
          "                  of one decode step over the cached keys and values\n"
          "  --json          one JSON object on stdout once done: backend, checkpoint (path,\n"
          "                  step, config, parameters), the settings, \"samples\" (each\n"
          "                  sample's generated text, without the prompt, as a JSON string:\n"
          "                  bytes outside UTF-8 as \\u00XX) and the prefill/decode timings\n"
          "The context is the model's block: past it, the window restarts with its last 3/4\n"
          "(both paths alike). Prefill and decode speeds go to stderr.\n");
  cli_env_usage(f, false);
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
  const char *ck_path = NULL, *prompt = NULL, *backend = "auto", *stop = NULL;
  long tokens = 200, top_k = 0, count = 1;
  float temperature = 0.8f;
  uint64_t seed = 1;
  int flags = 0;
  bool json = false;
  for (int i = 0; i < argc; i++) {
    const char *v = NULL;
    int r;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      cli__usage(stdout);
      return CLI_OK;
    }
    if (!strcmp(argv[i], "--no-cache")) {
      flags |= CT_DECODE_NO_CACHE;
      continue;
    }
    if (!strcmp(argv[i], "--json")) {
      json = true;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--checkpoint", &ck_path)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--prompt", &prompt)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--stop", &stop)) ||
        (r = cli_opt(CLI__CMD, argc, argv, &i, "--backend", &backend))) {
      if (r < 0) return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--tokens", &v))) {
      if (r < 0 || !cli_parse_long(CLI__CMD, "--tokens", v, 0, 1L << 30, &tokens)) return CLI_USAGE;
      continue;
    }
    if ((r = cli_opt(CLI__CMD, argc, argv, &i, "--count", &v))) {
      if (r < 0 || !cli_parse_long(CLI__CMD, "--count", v, 1, 1L << 20, &count)) return CLI_USAGE;
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
      if (r < 0 || !cli_parse_u64(CLI__CMD, "--seed", v, &seed)) return CLI_USAGE;
      continue;
    }
    return cli_error(CLI__CMD, CLI_USAGE, "unknown option '%s' (see 'ctml sample --help')",
                     argv[i]);
  }
  if (stop && !*stop) return cli_error(CLI__CMD, CLI_USAGE, "--stop: the text is empty");
  if (!cli_backend_known(CLI__CMD, backend, false)) return CLI_USAGE;
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
  int code = CLI_FAIL;
  ct_gpt *g = NULL;
  ct_decoder *dec = NULL;
  char *jbuf = NULL; /* --json: the object, printed once complete */
  size_t jlen = 0;
  FILE *jf = NULL;
  cli_json j;
  size_t plen = prompt ? strlen(prompt) : 0, slen = stop ? strlen(stop) : 0;
  int32_t *ids = malloc((plen + 1) * sizeof *ids);
  char *text = malloc((size_t)tokens + 1); /* the sample so far, for --stop */
  float *logits = malloc((size_t)V * sizeof *logits);
  double *p = malloc((size_t)V * sizeof *p);
  if (!ids || !text || !logits || !p) {
    cli_error(CLI__CMD, CLI_FAIL, "out of host memory");
    goto done;
  }
  int64_t n = 0;
  if (plen > 0) {
    if (ct_vocab_encode(vocab, (const uint8_t *)prompt, (int64_t)plen, ids) != CT_OK) {
      cli_error(CLI__CMD, CLI_FAIL, "--prompt: %s (the checkpoint's vocabulary has %d bytes)",
                ct_last_error(), V);
      goto done;
    }
    n = (int64_t)plen;
  } else {
    ids[n++] = vocab->id_of['\n'] >= 0 ? vocab->id_of['\n'] : 0;
  }
  if (ct_gpt_new_zeroed(&g, &ck.cfg.model) != CT_OK) {
    cli_lib_error(CLI__CMD, "model");
    goto done;
  }
  if (!cli_checkpoint_params(CLI__CMD, &ck, g)) goto done;
  ct_status made = ct_decoder_new(&dec, g, be, 1, flags);
  if (made == CT_ERR_UNSUPPORTED && !flags) { /* a backend without kv_attention */
    fprintf(stderr, "ctml sample: no key/value cache on %s (%s); running the whole window per "
            "byte\n", ct_backend_name(be), ct_last_error());
    flags = CT_DECODE_NO_CACHE;
    made = ct_decoder_new(&dec, g, be, 1, flags);
  }
  if (made != CT_OK) {
    cli_lib_error(CLI__CMD, "model");
    goto done;
  }
  if (!json)
    fprintf(stderr, "ctml sample: backend %s (%s); step %ld checkpoint, %lld parameters; %s\n",
            ct_backend_name(be), why, ck.step, (long long)ct_gpt_numel(g),
            flags ? "no cache: the whole window per byte" : "key/value cache");
  if (json) {
    if (!(jf = open_memstream(&jbuf, &jlen))) {
      cli_error(CLI__CMD, CLI_FAIL, "out of host memory");
      goto done;
    }
    cli_json_init(&j, jf);
    cli_json_open(&j, NULL, '{');
    cli_json_str(&j, "backend", ct_backend_name(be));
    cli_json_str(&j, "backend_reason", why);
    cli_json_open(&j, "checkpoint", '{');
    cli_json_str(&j, "path", ck_path);
    cli_json_int(&j, "step", ck.step);
    cli_json_str(&j, "config", ck.cfg.name);
    cli_json_int(&j, "layers", ck.cfg.model.layers);
    cli_json_int(&j, "heads", ck.cfg.model.heads);
    cli_json_int(&j, "width", ck.cfg.model.width);
    cli_json_int(&j, "block", ck.cfg.model.block);
    cli_json_int(&j, "vocab", V);
    cli_json_int(&j, "parameters", ct_gpt_numel(g));
    cli_json_close(&j);
    cli_json_strn(&j, "prompt", plen ? prompt : "\n", plen ? plen : 1);
    cli_json_int(&j, "tokens", tokens);
    cli_json_num(&j, "temperature", temperature);
    cli_json_int(&j, "top_k", top_k);
    cli_json_u64(&j, "seed", seed);
    cli_json_int(&j, "count", count);
    cli_json_str(&j, "stop", stop);
    cli_json_bool(&j, "cache", !flags);
    cli_json_open(&j, "samples", '[');
  }
  uint64_t rng = seed;
  for (long c = 0; c < count; c++) {
    if (!json && c > 0) printf("\n---\n");
    if (!json && plen > 0) fwrite(prompt, 1, plen, stdout);
    fflush(stdout);
    if (ct_decoder_reset(dec) != CT_OK || ct_decoder_append(dec, ids, n, logits) != CT_OK) {
      cli_lib_error(CLI__CMD, "prompt");
      goto done;
    }
    long k = 0;
    for (; k < tokens; k++) {
      int32_t id = cli__draw(logits, V, temperature, (int)top_k, &rng, p);
      text[k] = (char)vocab->byte_of[id];
      if (!json) {
        putchar(text[k]);
        fflush(stdout);
      }
      if (stop && (size_t)k + 1 >= slen && !memcmp(text + k + 1 - slen, stop, slen)) {
        k++;
        break;
      }
      if (k + 1 < tokens && ct_decoder_append(dec, &id, 1, logits) != CT_OK) {
        fflush(stdout);
        cli_lib_error(CLI__CMD, "generating");
        goto done;
      }
    }
    if (json) cli_json_strn(&j, NULL, text, (size_t)k);
  }
  if (!json) putchar('\n');
  fflush(stdout);
  ct_decode_stats st;
  ct_decoder_stats(dec, &st);
  if (json) {
    cli_json_close(&j);
    cli_json_open(&j, "timings", '{');
    cli_json_int(&j, "prefill_tokens", st.prefill_tokens);
    cli_json_num(&j, "prefill_ms", 1e3 * st.prefill_seconds);
    cli_json_int(&j, "decode_tokens", st.decode_tokens);
    cli_json_num(&j, "decode_ms", 1e3 * st.decode_seconds);
    cli_json_num(&j, "decode_tokens_per_s",
                 st.decode_seconds > 0 ? (double)st.decode_tokens / st.decode_seconds : NAN);
    cli_json_int(&j, "window_restarts", st.restarts);
    cli_json_close(&j);
    cli_json_close(&j);
    if (fclose(jf) != 0) {
      jf = NULL;
      cli_error(CLI__CMD, CLI_FAIL, "out of host memory");
      goto done;
    }
    jf = NULL;
    fwrite(jbuf, 1, jlen, stdout);
    fflush(stdout);
  } else
  fprintf(stderr, "ctml sample: prefill %lld bytes in %.1f ms (%.0f bytes/s); decode %lld bytes "
          "in %.1f ms (%.1f bytes/s); %lld window restart%s\n", (long long)st.prefill_tokens,
          1e3 * st.prefill_seconds,
          st.prefill_seconds > 0 ? (double)st.prefill_tokens / st.prefill_seconds : 0.0,
          (long long)st.decode_tokens, 1e3 * st.decode_seconds,
          st.decode_seconds > 0 ? (double)st.decode_tokens / st.decode_seconds : 0.0,
          (long long)st.restarts, st.restarts == 1 ? "" : "s");
  code = CLI_OK;
done:
  if (jf) fclose(jf);
  free(jbuf);
  ct_decoder_free(dec);
  ct_gpt_free(g);
  cli_checkpoint_free(&ck);
  free(ids);
  free(text);
  free(logits);
  free(p);
  return code;
}
