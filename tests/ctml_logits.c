/* SPDX-License-Identifier: MIT */
/* Test tool: the logits of a ctml checkpoint or weights file on cpu_ref, for
 * tests/hf_export_check.py. Uses the public API only.
 *   ctml_logits FILE IDS OUT
 * IDS: int32 token ids, B*T of them (T = the config's block; B = count / T);
 * OUT receives the float32 logits [B,T,vocab]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ctml/ctml.h"
#include "ctml/safetensors.h"

static int fail(const char *what) {
  fprintf(stderr, "ctml_logits: %s: %s\n", what, ct_last_error());
  return 1;
}

static int64_t meta_int(const ct_safetensors *f, const char *key) {
  const char *v = ct_safetensors_meta(f, key);
  return v ? strtoll(v, NULL, 10) : -1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: ctml_logits FILE IDS OUT\n");
    return 2;
  }
  ct_safetensors *f = NULL;
  if (ct_safetensors_read(&f, argv[1]) != CT_OK) return fail(argv[1]);
  ct_gpt_config c = {meta_int(f, "config.vocab"), meta_int(f, "config.block"),
                     meta_int(f, "config.layers"), meta_int(f, "config.heads"),
                     meta_int(f, "config.width")};
  ct_gpt *g = NULL;
  if (ct_gpt_new(&g, &c, 0) != CT_OK) return fail("config");
  for (int i = 0; i < ct_gpt_param_count(g); i++) {
    ct_param *p = ct_gpt_param(g, i);
    const float *d = NULL;
    if (ct_safetensors_get(f, ct_param_name(p), NULL, NULL, &d) != CT_OK ||
        ct_param_set(p, d, ct_param_numel(p)) != CT_OK)
      return fail(ct_param_name(p));
  }
  FILE *in = fopen(argv[2], "rb");
  if (!in) return perror(argv[2]), 1;
  int32_t *ids = malloc(1 << 24);
  size_t n = fread(ids, sizeof *ids, (1 << 24) / sizeof *ids, in);
  fclose(in);
  int64_t T = c.block, B = (int64_t)n / T;
  if (B < 1 || (int64_t)n != B * T) {
    fprintf(stderr, "ctml_logits: %zu ids are not a multiple of block %lld\n", n, (long long)T);
    return 1;
  }
  const ct_backend *be = NULL;
  ct_morphism *m = NULL;
  ct_plan *plan = NULL;
  if (ct_backend_get("cpu", &be) != CT_OK || ct_gpt_logits(&m, g, B, T) != CT_OK ||
      ct_compile(&plan, m, be, CT_PLAN_FORWARD) != CT_OK || ct_plan_load_params(plan) != CT_OK ||
      ct_plan_set_input(plan, 0, ids, B * T) != CT_OK || ct_plan_forward(plan) != CT_OK)
    return fail("forward");
  size_t nl = (size_t)(B * T * c.vocab);
  float *logits = malloc(nl * sizeof *logits);
  if (ct_plan_get_output(plan, 0, logits, (int64_t)nl) != CT_OK) return fail("logits");
  FILE *out = fopen(argv[3], "wb");
  if (!out || fwrite(logits, sizeof *logits, nl, out) != nl || fclose(out) != 0)
    return perror(argv[3]), 1;
  ct_plan_free(plan);
  ct_morphism_free(m);
  ct_gpt_free(g);
  ct_safetensors_free(f);
  free(ids);
  free(logits);
  return 0;
}
