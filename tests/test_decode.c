/* SPDX-License-Identifier: MIT */
/* Decoding with a cache as laws, on every present backend (cpu, opencl, cuda — the
 * simulator in the cudasim build):
 *  - kv_attention over empty caches at positions 0..T-1 equals causal_attention, and
 *    feeding the rows one run at a time equals one run;
 *  - each decode step's logits equal the full forward's logits at that position;
 *  - greedy output is the same token for token with and without the cache, at three
 *    prompt lengths, one of them longer than the block (window restarts included);
 *  - bad positions and token ids are refused by name.
 * A backend that declares kv_attention unsupported is told so, by name. */
#include "ct_test.h"

#define N_BACKENDS 3
static const char *const backend_names[N_BACKENDS] = {"cpu", "opencl", "cuda"};

/* Sets be to backend b, or returns false after printing why (absent: skipped by the
 * caller; a simulated backend's absence fails). */
static bool get_backend(int b, const ct_backend **be) {
  ct_backend_info info;
  memset(&info, 0, sizeof info);
  int index = -1;
  for (int i = 0; i < ct_backend_count(); i++)
    if (ct_backend_info_get(i, &info) == CT_OK && !strcmp(info.name, backend_names[b])) {
      index = i;
      break;
    }
  if (index < 0 || ct_backend_get(backend_names[b], be) != CT_OK) {
    if (index >= 0 && info.simulated)
      fail_msg("the simulated %s backend is absent: %s", backend_names[b], ct_last_error());
    print_message("    skipped (%s absent): %s\n", backend_names[b], ct_last_error());
    return false;
  }
  ct_cell cell;
  CT_ASSERT_OK(ct_backend_cell(index, CT_OP_KV_ATTENTION, CT_FORWARD, &cell));
  if (cell != CT_CELL_IMPLEMENTED) {
    print_message("    %s: kv_attention declared %s: decoding with a cache is not offered\n",
                  backend_names[b], ct_cell_name(cell));
    return false;
  }
  return true;
}

#define NEED(b, be)                  \
  do {                               \
    if (!get_backend(b, &(be))) {    \
      skip();                        \
      return;                        \
    }                                \
  } while (0)

static void fill(float *x, int64_t n, uint64_t seed, float span) {
  ct_rng r = {seed};
  ct_rng_fill(&r, x, n, -span, span);
}

/* Runs a forward plan of m on inputs, returns output 0 (n floats). */
static float *run_forward(const ct_backend *be, const ct_morphism *m, const void *const *in,
                          int64_t *n) {
  ct_plan *p;
  CT_ASSERT_OK(ct_compile(&p, m, be, CT_PLAN_FORWARD));
  for (int i = 0; i < ct_morphism_dom_count(m); i++)
    CT_ASSERT_OK(ct_plan_set_input(p, i, in[i], ct_object_numel(ct_morphism_dom(m, i))));
  CT_ASSERT_OK(ct_plan_forward(p));
  *n = ct_object_numel(ct_morphism_cod(m, 0));
  float *y = malloc((size_t)*n * sizeof *y);
  assert_non_null(y);
  CT_ASSERT_OK(ct_plan_get_output(p, 0, y, *n));
  ct_plan_free(p);
  return y;
}

/* kv_attention over fresh caches at positions 0..T-1, in one run and row by row, against
 * causal_attention, at shapes {B, T, C, H} with L = T + 3 cache rows. */
static void check_kv_laws(int b) {
  const ct_backend *be;
  NEED(b, be);
  static const int64_t shapes[][4] = {{2, 5, 6, 3}, {1, 37, 20, 4}, {1, 1, 1, 1}, {2, 9, 128, 2}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int64_t B = shapes[s][0], T = shapes[s][1], C = shapes[s][2], H = shapes[s][3], L = T + 3;
    ct_object x, pos;
    CT_ASSERT_OK(ct_object_seq(&x, B, T, C));
    CT_ASSERT_OK(ct_object_token_seq(&pos, B, T));
    float *q = malloc((size_t)(3 * B * T * C) * sizeof *q), *k = q + B * T * C, *v = k + B * T * C;
    int32_t *p = malloc((size_t)(B * T) * sizeof *p);
    assert_non_null(q);
    assert_non_null(p);
    fill(q, 3 * B * T * C, 40 + s, 2.0f);
    for (int64_t i = 0; i < B * T; i++) p[i] = (int32_t)(i % T);
    ct_morphism *ref, *kv;
    CT_ASSERT_OK(ct_causal_attention(&ref, &x, H));
    ct_param *kc, *vc;
    CT_ASSERT_OK(ct_param_new_cache(&kc, "k_cache", B, H, L, C / H));
    CT_ASSERT_OK(ct_param_new_cache(&vc, "v_cache", B, H, L, C / H));
    CT_ASSERT_OK(ct_kv_attention(&kv, &x, &pos, kc, vc));
    const void *in3[3] = {q, k, v}, *in4[4] = {q, k, v, p};
    int64_t n1, n2;
    float *y_ref = run_forward(be, ref, in3, &n1);
    float *y_kv = run_forward(be, kv, in4, &n2);
    assert_int_equal(n1, n2);
    double r1 = ct_tol_ratio(y_kv, y_ref, n1);
    /* row by row: one plan over one position per batch row, sharing caches across runs */
    ct_object x1, pos1;
    CT_ASSERT_OK(ct_object_seq(&x1, B, 1, C));
    CT_ASSERT_OK(ct_object_token_seq(&pos1, B, 1));
    ct_morphism *step;
    CT_ASSERT_OK(ct_kv_attention(&step, &x1, &pos1, kc, vc));
    ct_plan *ps;
    CT_ASSERT_OK(ct_compile(&ps, step, be, CT_PLAN_FORWARD));
    float *rows = malloc((size_t)(3 * B * C) * sizeof *rows), *y1 = malloc((size_t)(B * C) * 4);
    float *y_steps = malloc((size_t)(B * T * C) * sizeof *y_steps);
    int32_t *p1 = malloc((size_t)B * sizeof *p1);
    for (int64_t t = 0; t < T; t++) {
      for (int64_t bb = 0; bb < B; bb++) {
        for (int w = 0; w < 3; w++)
          memcpy(&rows[(w * B + bb) * C], &q[w * B * T * C + (bb * T + t) * C],
                 (size_t)C * sizeof *rows);
        p1[bb] = (int32_t)t;
      }
      for (int w = 0; w < 3; w++) CT_ASSERT_OK(ct_plan_set_input(ps, w, rows + w * B * C, B * C));
      CT_ASSERT_OK(ct_plan_set_input(ps, 3, p1, B));
      CT_ASSERT_OK(ct_plan_forward(ps));
      CT_ASSERT_OK(ct_plan_get_output(ps, 0, y1, B * C));
      for (int64_t bb = 0; bb < B; bb++)
        memcpy(&y_steps[(bb * T + t) * C], &y1[bb * C], (size_t)C * sizeof *y1);
    }
    double r2 = ct_tol_ratio(y_steps, y_ref, n1);
    char bx[64];
    print_message("    kv_attention %-22s H=%lld on %s: one run %.3g, row by row %.3g of tolerance\n",
                  ct_object_str(&x, bx, sizeof bx), (long long)H, backend_names[b], r1, r2);
    assert_true(r1 <= 1.0);
    assert_true(r2 <= 1.0);
    /* a position past the cache is refused, naming it */
    p1[0] = (int32_t)L;
    for (int w = 0; w < 3; w++) CT_ASSERT_OK(ct_plan_set_input(ps, w, rows + w * B * C, B * C));
    CT_ASSERT_OK(ct_plan_set_input(ps, 3, p1, B));
    ct_status st = ct_plan_forward(ps);
    assert_int_equal(st, CT_ERR_RANGE);
    assert_non_null(strstr(ct_last_error(), "position"));
    ct_plan_free(ps);
    ct_morphism_free(step);
    ct_morphism_free(ref);
    ct_morphism_free(kv);
    ct_param_free(kc);
    ct_param_free(vc);
    free(q);
    free(p);
    free(p1);
    free(rows);
    free(y1);
    free(y_steps);
    free(y_ref);
    free(y_kv);
  }
}

static const ct_gpt_config cfg = {13, 16, 2, 2, 12}; /* vocab, block, layers, heads, width */

/* The logits of every decode step against the full forward at that position. */
static void check_logits(int b) {
  const ct_backend *be;
  NEED(b, be);
  ct_gpt *g;
  CT_ASSERT_OK(ct_gpt_new(&g, &cfg, 7));
  const int64_t B = 2, T = cfg.block, V = cfg.vocab;
  int32_t tok[2 * 16];
  for (int64_t i = 0; i < B * T; i++) tok[i] = (int32_t)((i * 5 + 3) % V);
  ct_morphism *full;
  CT_ASSERT_OK(ct_gpt_logits(&full, g, B, T));
  const void *in[1] = {tok};
  int64_t n;
  float *ref = run_forward(be, full, in, &n);
  ct_decoder *d;
  CT_ASSERT_OK(ct_decoder_new(&d, g, be, B, 0));
  /* a prompt of 5, then one token at a time */
  const int64_t P = 5;
  float logits[2 * 13], want[2 * 13];
  double worst = 0;
  int32_t chunk[2 * 16];
  for (int64_t bb = 0; bb < B; bb++) memcpy(&chunk[bb * P], &tok[bb * T], P * sizeof *chunk);
  CT_ASSERT_OK(ct_decoder_append(d, chunk, P, logits));
  for (int64_t t = P - 1; t < T; t++) {
    if (t >= P) {
      for (int64_t bb = 0; bb < B; bb++) chunk[bb] = tok[bb * T + t];
      CT_ASSERT_OK(ct_decoder_append(d, chunk, 1, logits));
    }
    for (int64_t bb = 0; bb < B; bb++) memcpy(&want[bb * V], &ref[(bb * T + t) * V], V * sizeof *want);
    double r = ct_tol_ratio(logits, want, B * V);
    if (r > worst) worst = r;
  }
  assert_int_equal(ct_decoder_length(d), T);
  ct_decode_stats st;
  CT_ASSERT_OK(ct_decoder_stats(d, &st));
  assert_int_equal(st.prefill_tokens, P);
  assert_int_equal(st.decode_tokens, T - P);
  print_message("    %s: %lld decode steps after a prompt of %lld, logits against the full forward: "
                "worst %.3g of tolerance\n", backend_names[b], (long long)(T - P), (long long)P, worst);
  assert_true(worst <= 1.0);
  /* bad ids are refused, naming the row and index */
  chunk[0] = 0;
  chunk[1] = (int32_t)V;
  assert_int_equal(ct_decoder_append(d, chunk, 1, logits), CT_ERR_RANGE);
  assert_non_null(strstr(ct_last_error(), "row 1"));
  ct_decoder_free(d);
  ct_morphism_free(full);
  free(ref);
  ct_gpt_free(g);
}

static int argmax(const float *x, int64_t n) {
  int best = 0;
  for (int64_t j = 1; j < n; j++)
    if (x[j] > x[best]) best = (int)j;
  return best;
}

/* Greedy tokens after a prompt, with and without the cache: the same, token for token. */
static void check_greedy(int b) {
  const ct_backend *be;
  NEED(b, be);
  ct_gpt *g;
  CT_ASSERT_OK(ct_gpt_new(&g, &cfg, 11));
  const int64_t V = cfg.vocab, steps = 40; /* 40 > block: several window restarts */
  const int64_t prompts[3] = {1, 7, 2 * cfg.block + 3};
  for (int k = 0; k < 3; k++) {
    int32_t prompt[64], out[2][64];
    for (int64_t i = 0; i < prompts[k]; i++) prompt[i] = (int32_t)((i * 7 + k) % V);
    int64_t restarts[2];
    for (int c = 0; c < 2; c++) {
      ct_decoder *d;
      CT_ASSERT_OK(ct_decoder_new(&d, g, be, 1, c ? CT_DECODE_NO_CACHE : 0));
      float logits[13];
      CT_ASSERT_OK(ct_decoder_append(d, prompt, prompts[k], logits));
      for (int64_t s = 0; s < steps; s++) {
        out[c][s] = argmax(logits, V);
        CT_ASSERT_OK(ct_decoder_append(d, &out[c][s], 1, logits));
      }
      ct_decode_stats st;
      CT_ASSERT_OK(ct_decoder_stats(d, &st));
      restarts[c] = st.restarts;
      ct_decoder_free(d);
    }
    print_message("    %s: prompt of %lld (block %lld), %lld greedy tokens, %lld window restarts: "
                  "%s\n", backend_names[b], (long long)prompts[k], (long long)cfg.block,
                  (long long)steps, (long long)restarts[0],
                  memcmp(out[0], out[1], steps * sizeof(int32_t)) ? "DIFFER" : "identical");
    assert_int_equal(restarts[0], restarts[1]);
    assert_memory_equal(out[0], out[1], steps * sizeof(int32_t));
  }
  ct_gpt_free(g);
}

static void test_kv_laws_cpu(void **s) { (void)s; check_kv_laws(0); }
static void test_kv_laws_opencl(void **s) { (void)s; check_kv_laws(1); }
static void test_kv_laws_cuda(void **s) { (void)s; check_kv_laws(2); }
static void test_logits_cpu(void **s) { (void)s; check_logits(0); }
static void test_logits_opencl(void **s) { (void)s; check_logits(1); }
static void test_logits_cuda(void **s) { (void)s; check_logits(2); }
static void test_greedy_cpu(void **s) { (void)s; check_greedy(0); }
static void test_greedy_opencl(void **s) { (void)s; check_greedy(1); }
static void test_greedy_cuda(void **s) { (void)s; check_greedy(2); }

/* The decoder's refusals and the generator's, each named. */
static void test_refusals(void **state) {
  (void)state;
  ct_object x, pos, bad;
  CT_ASSERT_OK(ct_object_seq(&x, 2, 3, 6));
  CT_ASSERT_OK(ct_object_token_seq(&pos, 2, 3));
  CT_ASSERT_OK(ct_object_token_seq(&bad, 2, 4));
  ct_param *kc, *vc, *w;
  CT_ASSERT_OK(ct_param_new_cache(&kc, "kc", 2, 2, 8, 3));
  CT_ASSERT_OK(ct_param_new_cache(&vc, "vc", 2, 3, 8, 2));
  int64_t d2[2] = {6, 6};
  CT_ASSERT_OK(ct_param_new(&w, "w", 2, d2));
  ct_morphism *m = NULL;
  CT_ASSERT_STATUS(ct_kv_attention(&m, &x, &bad, kc, kc), CT_ERR_SHAPE);
  assert_non_null(strstr(ct_last_error(), "positions"));
  CT_ASSERT_STATUS(ct_kv_attention(&m, &x, &pos, w, kc), CT_ERR_SHAPE);
  assert_non_null(strstr(ct_last_error(), "'w'"));
  CT_ASSERT_STATUS(ct_kv_attention(&m, &x, &pos, kc, vc), CT_ERR_SHAPE);
  CT_ASSERT_OK(ct_kv_attention(&m, &x, &pos, kc, kc));
  ct_plan *p = NULL;
  const ct_backend *cpu;
  CT_ASSERT_OK(ct_backend_get("cpu", &cpu));
  CT_ASSERT_STATUS(ct_compile(&p, m, cpu, CT_PLAN_REVERSE), CT_ERR_UNSUPPORTED);
  assert_non_null(strstr(ct_last_error(), "no reverse"));
  ct_morphism_free(m);
  ct_gpt *g;
  CT_ASSERT_OK(ct_gpt_new(&g, &cfg, 1));
  ct_decoder *d = NULL;
  CT_ASSERT_STATUS(ct_decoder_new(&d, g, cpu, 0, 0), CT_ERR_INVALID_ARG);
  CT_ASSERT_STATUS(ct_decoder_new(&d, g, cpu, 1, 8), CT_ERR_INVALID_ARG);
  CT_ASSERT_OK(ct_decoder_new(&d, g, cpu, 1, 0));
  int32_t t = 0;
  CT_ASSERT_STATUS(ct_decoder_append(d, &t, 0, NULL), CT_ERR_INVALID_ARG);
  ct_decoder_free(d);
  ct_gpt_free(g);
  ct_param_free(kc);
  ct_param_free(vc);
  ct_param_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kv_laws_cpu),   cmocka_unit_test(test_kv_laws_opencl),
      cmocka_unit_test(test_kv_laws_cuda),  cmocka_unit_test(test_logits_cpu),
      cmocka_unit_test(test_logits_opencl), cmocka_unit_test(test_logits_cuda),
      cmocka_unit_test(test_greedy_cpu),    cmocka_unit_test(test_greedy_opencl),
      cmocka_unit_test(test_greedy_cuda),   cmocka_unit_test(test_refusals),
  };
  return CT_RUN_TESTS("decode", tests, NULL, NULL);
}
