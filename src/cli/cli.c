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
          "  train [--config tiny|micro|small] [--data FILE] [--out DIR] [--resume DIR]\n"
          "        [--log-format text|jsonl] ...\n"
          "                 trains a character-level GPT (default: the fortunes corpus)\n"
          "  sample --checkpoint DIR [--prompt TEXT] [--tokens N] [--temperature X]\n"
          "         [--top-k K] [--seed N] [--json]\n"
          "                 generates text from a trained checkpoint\n"
          "  check [--backend NAME] [--config NAME | --checkpoint DIR] [--json]\n"
          "                 one training step on a device backend against cpu_ref, node by node\n"
          "  bench [--config NAME] [--backend NAME] [--decode] [--json]\n"
          "                 times the training step on every present backend\n"
          "  eval --data FILE [--checkpoint DIR] [--json]\n"
          "                 loss, bits per byte and perplexity of a checkpoint over a whole text\n"
          "  export (--hf DIR | --weights FILE) [--checkpoint DIR]\n"
          "                 a Hugging Face GPT-2 directory, or a weights-only ctml file\n"
          "  import SRC --out FILE\n"
          "                 a GPT-2 layout model (F32 or BF16) as a weights-only ctml file\n"
          "  devices [--json]\n"
          "                 every backend and device found, whether it is usable, and why not\n"
          "  help [COMMAND] this text, or COMMAND's options\n"
          "  version        the version\n"
          "\n"
          "backends: cpu, cuda, opencl, auto (the best one present)\n"
          "'ctml <command> --help' describes a command's options and the environment\n"
          "variables it reads (CTML_CUDA_DEVICE, CTML_OPENCL_PLATFORM, CTML_OPENCL_DEVICE,\n"
          "CTML_OPENCL_GEMM, CTML_OPENCL_CACHE; train: CTML_FORTUNES_DIR).\n"
          "Exit status: 0 success, 1 failure, 2 bad usage, 130 interrupted.\n");
}

/* --help of the commands defined here. */
static void demo_usage(FILE *f) {
  fprintf(f,
          "usage: ctml demo [--backend NAME] [--json] [--trace]\n"
          "The book's walkthrough: a one-token next-token model (embedding 5x4 ; linear\n"
          "4x5 ; softmax) on \"I love Rust .\", trained with %d gradient-descent steps at\n"
          "lr 1.0; prints p(next | I) before training, the loss of 'love' after 'I',\n"
          "whether the composed morphism equals the direct one, the mean loss before and\n"
          "after, and the most likely next token after training. Exit 1 when composed\n"
          "and direct differ.\n"
          "  --backend NAME  cpu (default), cuda, opencl or auto\n"
          "  --json          one JSON object on stdout: p_next_given_I, loss_love,\n"
          "                  loss_before, loss_after, composed_equals_direct\n"
          "  --trace         the nodes of one training step, with time and FLOPs, and the\n"
          "                  rewrites that fired (to stderr with --json)\n",
          CT_BOOK_STEPS);
  cli_env_usage(f, false);
}

static void devices_usage(FILE *f) {
  fprintf(f,
          "usage: ctml devices [--json]\n"
          "Every backend this ctml knows (cuda, opencl, cpu), whether it is present and\n"
          "why not, and every device it finds: the one it runs on (*), other usable ones\n"
          "(-) and unusable ones (x) with the reason. Exit 0.\n"
          "  --json   one JSON object: {\"backends\": [{name, present, simulated, device,\n"
          "           reason, devices: [{name, selected, usable, gpu, memory_bytes, reason}]}]}\n");
  cli_env_usage(f, false);
}

static void plain_usage(FILE *f, const char *cmd) {
  if (!strcmp(cmd, "help"))
    fprintf(f, "usage: ctml help [COMMAND]\nThe commands, or COMMAND's options (as 'ctml "
            "COMMAND --help'). Exit 0.\n");
  else
    fprintf(f, "usage: ctml version\nThe version of ctml. Exit 0.\n");
  fprintf(f, "environment: none read\n");
}

static bool is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

static void print_json(const ct_book_result *r) {
  cli_json j;
  cli_json_init(&j, stdout);
  cli_json_open(&j, NULL, '{');
  cli_json_open(&j, "p_next_given_I", '[');
  for (int i = 0; i < CT_BOOK_VOCAB; i++) cli_json_num(&j, NULL, (double)r->p_next_given_I[i]);
  cli_json_close(&j);
  cli_json_num(&j, "loss_love", (double)r->loss_love);
  cli_json_num(&j, "loss_before", (double)r->loss_before);
  cli_json_num(&j, "loss_after", (double)r->loss_after);
  cli_json_bool(&j, "composed_equals_direct", r->composed_equals_direct);
  cli_json_close(&j);
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
    int r;
    if (is_help(argv[i])) {
      demo_usage(stdout);
      return CLI_OK;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "--trace")) {
      trace = 1;
    } else if ((r = cli_opt("demo", argc, argv, &i, "--backend", &backend_name)) != 0) {
      if (r < 0) return CLI_USAGE;
    } else {
      return cli_error("demo", CLI_USAGE, "unknown option '%s' (see 'ctml demo --help')", argv[i]);
    }
  }
  if (!cli_backend_known("demo", backend_name, false)) return CLI_USAGE;
  const ct_backend *be = NULL;
  char why[1400];
  if (!cli_pick_backend("demo", backend_name, &be, why, sizeof why)) return CLI_FAIL;
  ct_book_result r;
  ct_trace tr;
  if (ct_book_run(be, &r, trace ? &tr : NULL) != CT_OK) return cli_lib_error("demo", "the walkthrough");
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
  return r.composed_equals_direct ? CLI_OK : CLI_FAIL;
}

static int cmd_devices(int argc, char **argv) {
  bool json = false;
  for (int i = 0; i < argc; i++) {
    if (is_help(argv[i])) {
      devices_usage(stdout);
      return CLI_OK;
    }
    if (strcmp(argv[i], "--json"))
      return cli_error("devices", CLI_USAGE, "unknown option '%s' (see 'ctml devices --help')",
                       argv[i]);
    json = true;
  }
  cli_json j;
  cli_json_init(&j, stdout);
  if (json) {
    cli_json_open(&j, NULL, '{');
    cli_json_open(&j, "backends", '[');
  }
  for (int i = 0; i < ct_backend_count(); i++) {
    ct_backend_info info;
    if (ct_backend_info_get(i, &info) != CT_OK) continue;
    ct_device_info dev[16];
    int n = 0;
    bool listed = ct_backend_devices(i, dev, 16, &n) == CT_OK;
    if (!listed) n = 0;
    if (json) {
      cli_json_open(&j, NULL, '{');
      cli_json_str(&j, "name", info.name);
      cli_json_bool(&j, "present", info.present);
      cli_json_bool(&j, "simulated", info.present && info.simulated);
      cli_json_str(&j, "device", info.present ? info.device : NULL);
      cli_json_str(&j, "reason", info.present ? NULL : info.reason);
      cli_json_open(&j, "devices", '[');
      for (int k = 0; k < n && k < 16; k++) {
        cli_json_open(&j, NULL, '{');
        cli_json_str(&j, "name", dev[k].name);
        cli_json_bool(&j, "selected", dev[k].selected);
        cli_json_bool(&j, "usable", dev[k].usable);
        cli_json_bool(&j, "gpu", dev[k].gpu);
        if (dev[k].memory_bytes > 0) cli_json_int(&j, "memory_bytes", dev[k].memory_bytes);
        else cli_json_null(&j, "memory_bytes");
        cli_json_str(&j, "reason", dev[k].usable ? NULL : dev[k].reason);
        cli_json_close(&j);
      }
      cli_json_close(&j);
      cli_json_int(&j, "device_count", n);
      cli_json_close(&j);
      continue;
    }
    if (info.present && info.simulated)
      printf("%-7s present  %s [simulator: runs on this CPU, not a GPU]\n", info.name, info.device);
    else if (info.present)
      printf("%-7s present  %s\n", info.name, info.device);
    else
      printf("%-7s absent   %s\n", info.name, info.reason);
    for (int k = 0; k < n && k < 16; k++)
      printf("        %s %s%s%s\n", dev[k].selected ? "*" : dev[k].usable ? "-" : "x", dev[k].name,
             dev[k].usable ? "" : ": unusable, ", dev[k].usable ? "" : dev[k].reason);
    if (n > 16) printf("        ... and %d more\n", n - 16);
  }
  /* the collectives of data-parallel training (mpirun -np N ctml train) */
  if (json) {
    cli_json_close(&j);
    cli_json_open(&j, "collectives", '[');
  } else {
    printf("(* the device a backend runs on, - another usable device, x unusable)\n");
  }
  static const char *const collectives[] = {"mpi", "nccl"};
  for (int i = 0; i < 2; i++) {
    ct_collective_info info;
    if (ct_collective_info_get(collectives[i], &info) != CT_OK) continue;
    if (json) {
      cli_json_open(&j, NULL, '{');
      cli_json_str(&j, "name", info.name);
      cli_json_bool(&j, "built", info.built);
      cli_json_bool(&j, "present", info.present);
      cli_json_str(&j, "reason", info.present ? NULL : info.reason);
      cli_json_close(&j);
    } else {
      printf("collective %-4s %s%s%s\n", info.name, info.present ? "present" : "absent",
             info.present ? "" : ": ", info.present ? "" : info.reason);
    }
  }
  if (json) {
    cli_json_close(&j);
    cli_json_close(&j);
  }
  return CLI_OK;
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
    if (argc > 2 && is_help(argv[2])) {
      plain_usage(stdout, "help");
      return CLI_OK;
    }
    if (argc > 2 && strcmp(argv[2], "help")) { /* ctml help COMMAND: COMMAND --help */
      char *sub[3] = {argv[0], argv[2], "--help"};
      if (argc > 3) return cli_error("help", CLI_USAGE, "one command at most (got '%s')", argv[3]);
      if (!strcmp(argv[2], "version")) {
        plain_usage(stdout, "version");
        return CLI_OK;
      }
      return main(3, sub);
    }
    usage(stdout);
    return CLI_OK;
  }
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    if (argc > 2 && is_help(argv[2])) {
      plain_usage(stdout, "version");
      return CLI_OK;
    }
    if (argc > 2)
      return cli_error("version", CLI_USAGE, "unknown option '%s' (see 'ctml version --help')",
                       argv[2]);
    printf("ctml %s\n", ct_version());
    return CLI_OK;
  }
  fprintf(stderr, "ctml: unknown command '%s' (see 'ctml help')\n", cmd);
  return CLI_USAGE;
}
