/* SPDX-License-Identifier: MIT */
/* The ctml command-line tool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: ctml <command> [options]\n"
          "\n"
          "commands:\n"
          "  demo [--backend NAME] [--json] [--trace]\n"
          "                 the book's walkthrough: a one-token next-token model on\n"
          "                 \"I love Rust .\", trained with 80 gradient-descent steps\n"
          "  train [--config tiny|micro|small] [--data FILE] [--out DIR] [--resume DIR] ...\n"
          "                 trains a character-level GPT (default: the fortunes corpus)\n"
          "  sample --checkpoint DIR [--prompt TEXT] [--tokens N] [--temperature X]\n"
          "         [--top-k K] [--seed N]\n"
          "                 generates text from a trained checkpoint\n"
          "  check [--backend NAME] [--config NAME | --checkpoint DIR]\n"
          "                 one training step on a device backend against cpu_ref, node by node\n"
          "  bench [--config NAME] [--backend NAME]\n"
          "                 times the training step on every present backend\n"
          "  eval --data FILE [--checkpoint DIR] [--json]\n"
          "                 loss, bits per byte and perplexity of a checkpoint over a whole text\n"
          "  export (--hf DIR | --weights FILE) [--checkpoint DIR]\n"
          "                 a Hugging Face GPT-2 directory, or a weights-only ctml file\n"
          "  import SRC --out FILE\n"
          "                 a GPT-2 layout model (F32 or BF16) as a weights-only ctml file\n"
          "  devices        every backend and device found, whether it is usable, and why not\n"
          "  help           this text\n"
          "  version        the version\n"
          "\n"
          "backends: cpu, cuda, opencl, auto (the best one present)\n"
          "'ctml <command> --help' describes a command's options.\n");
}

static int fail(const char *what, ct_status s) {
  fprintf(stderr, "ctml: %s: %s (%s)\n", what, ct_last_error(), ct_status_name(s));
  return 1;
}

static void print_json(const ct_book_result *r) {
  printf("{\"p_next_given_I\": [");
  for (int i = 0; i < CT_BOOK_VOCAB; i++) printf("%s%.9g", i ? ", " : "", (double)r->p_next_given_I[i]);
  printf("], \"loss_love\": %.9g, \"loss_before\": %.9g, \"loss_after\": %.9g, "
         "\"composed_equals_direct\": %s}\n",
         (double)r->loss_love, (double)r->loss_before, (double)r->loss_after,
         r->composed_equals_direct ? "true" : "false");
}

static void print_text(const char *backend, const ct_book_result *r) {
  printf("ctml demo on backend '%s'\n\n", backend);
  printf("vocabulary: ");
  for (int i = 0; i < CT_BOOK_VOCAB; i++) printf("%d=%s%s", i, ct_book_vocab[i], i + 1 < CT_BOOK_VOCAB ? "  " : "\n");
  printf("sequence:   I love Rust . I love Rust .  ->  7 (input, target) pairs\n");
  printf("model:      embedding (5x4, seed 1) ; linear (4x5, seed 2, bias 0) ; softmax\n\n");
  printf("p(next | I) before training:\n");
  for (int i = 0; i < CT_BOOK_VOCAB; i++)
    printf("  %-6s %.9g\n", ct_book_vocab[i], (double)r->p_next_given_I[i]);
  printf("\nloss of 'love' after 'I':   %.9g\n", (double)r->loss_love);
  printf("composed == direct:        %s\n", r->composed_equals_direct ? "yes" : "NO");
  printf("mean loss over 7 pairs:    %.9g before, %.9g after %d steps (lr 1.0)\n\n",
         (double)r->loss_before, (double)r->loss_after, CT_BOOK_STEPS);
  printf("after training, the most likely next token:\n");
  static const int inputs[CT_BOOK_PAIRS] = {1, 2, 3, 4, 1, 2, 3};
  for (int i = 0; i < 4; i++) {
    int best = 0;
    for (int j = 1; j < CT_BOOK_VOCAB; j++)
      if (r->train_probs[i][j] > r->train_probs[i][best]) best = j;
    printf("  %-5s -> %-5s (p = %.4f)\n", ct_book_vocab[inputs[i]], ct_book_vocab[best],
           (double)r->train_probs[i][best]);
  }
}

static int cmd_demo(int argc, char **argv) {
  const char *backend_name = "cpu";
  int json = 0, trace = 0;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "--trace")) {
      trace = 1;
    } else if (!strcmp(argv[i], "--backend") || !strncmp(argv[i], "--backend=", 10)) {
      if (argv[i][9] == '=') {
        backend_name = argv[i] + 10;
      } else if (i + 1 < argc) {
        backend_name = argv[++i];
      } else {
        fprintf(stderr, "ctml demo: --backend needs a name (cpu, cuda, opencl, auto)\n");
        return 2;
      }
    } else {
      fprintf(stderr, "ctml demo: unknown option '%s' (see 'ctml help')\n", argv[i]);
      return 2;
    }
  }
  const ct_backend *be = NULL;
  ct_status s = ct_backend_get(backend_name, &be);
  if (s != CT_OK) return fail("demo", s);
  ct_book_result r;
  ct_trace tr;
  s = ct_book_run(be, &r, trace ? &tr : NULL);
  if (s != CT_OK) return fail("demo", s);
  if (json)
    print_json(&r);
  else
    print_text(ct_backend_name(be), &r);
  if (trace) {
    fprintf(json ? stderr : stdout, "\ntrace of one training step:\n");
    ct_trace_print(json ? stderr : stdout, &tr);
    ct_trace_free(&tr);
    fprintf(json ? stderr : stdout, "rewrites: %s%s", r.rewrites[0] ? "\n" : "none fired\n",
            r.rewrites);
  }
  return r.composed_equals_direct ? 0 : 1;
}

static int cmd_devices(int argc, char **argv) {
  if (argc > 0) {
    fprintf(stderr, "ctml devices: unknown option '%s'\n", argv[0]);
    return 2;
  }
  for (int i = 0; i < ct_backend_count(); i++) {
    ct_backend_info info;
    if (ct_backend_info_get(i, &info) != CT_OK) continue;
    if (info.present && info.simulated)
      printf("%-7s present  %s [simulator: runs on this CPU, not a GPU]\n", info.name, info.device);
    else if (info.present)
      printf("%-7s present  %s\n", info.name, info.device);
    else
      printf("%-7s absent   %s\n", info.name, info.reason);
    ct_device_info dev[16];
    int n = 0;
    if (ct_backend_devices(i, dev, 16, &n) != CT_OK) continue;
    for (int k = 0; k < n && k < 16; k++)
      printf("        %s %s%s%s\n", dev[k].selected ? "*" : dev[k].usable ? "-" : "x", dev[k].name,
             dev[k].usable ? "" : ": unusable, ", dev[k].usable ? "" : dev[k].reason);
    if (n > 16) printf("        ... and %d more\n", n - 16);
  }
  printf("(* the device a backend runs on, - another usable device, x unusable)\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "demo")) return cmd_demo(argc - 2, argv + 2);
  if (!strcmp(cmd, "devices")) return cmd_devices(argc - 2, argv + 2);
  if (!strcmp(cmd, "train")) return cli_train(argc - 2, argv + 2);
  if (!strcmp(cmd, "sample")) return cli_sample(argc - 2, argv + 2);
  if (!strcmp(cmd, "check")) return cli_check(argc - 2, argv + 2);
  if (!strcmp(cmd, "bench")) return cli_bench(argc - 2, argv + 2);
  if (!strcmp(cmd, "eval")) return cli_eval(argc - 2, argv + 2);
  if (!strcmp(cmd, "export")) return cli_export(argc - 2, argv + 2);
  if (!strcmp(cmd, "import")) return cli_import(argc - 2, argv + 2);
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("ctml %s\n", ct_version());
    return 0;
  }
  fprintf(stderr, "ctml: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
