/* SPDX-License-Identifier: MIT */
/* Shared helpers for the cmocka suites. */
#ifndef CTML_TEST_H
#define CTML_TEST_H

#define _POSIX_C_SOURCE 200809L
#include <fnmatch.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "ctml/ctml.h"

/* Fails the test with the library's message unless expr returns CT_OK. */
#define CT_ASSERT_OK(expr)                                                             \
  do {                                                                                 \
    ct_status ct_s_ = (expr);                                                          \
    if (ct_s_ != CT_OK)                                                                \
      fail_msg("%s -> %s: %s", #expr, ct_status_name(ct_s_), ct_last_error());         \
  } while (0)

/* Fails unless expr returns the status want; prints the message it gave. */
#define CT_ASSERT_STATUS(expr, want)                                                   \
  do {                                                                                 \
    ct_status ct_s_ = (expr);                                                          \
    if (ct_s_ != (want))                                                               \
      fail_msg("%s -> %s, expected %s (%s)", #expr, ct_status_name(ct_s_),             \
               ct_status_name(want), ct_last_error());                                 \
    print_message("    expected error: %s\n", ct_last_error());                        \
  } while (0)

/* Fails unless the last error message contains needle. */
#define CT_ASSERT_MESSAGE_HAS(needle)                                                  \
  do {                                                                                 \
    if (!strstr(ct_last_error(), (needle)))                                            \
      fail_msg("message '%s' does not mention '%s'", ct_last_error(), (needle));       \
  } while (0)

/* Deterministic random numbers (splitmix64): tests use fixed seeds. */
typedef struct ct_rng {
  uint64_t s;
} ct_rng;

static inline uint64_t ct_rng_next(ct_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static inline float ct_rng_uniform(ct_rng *r, float lo, float hi) {
  return lo + (hi - lo) * (float)((double)(ct_rng_next(r) >> 11) / 9007199254740992.0);
}

static inline void ct_rng_fill(ct_rng *r, float *x, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; i++) x[i] = ct_rng_uniform(r, lo, hi);
}

static inline int32_t ct_rng_int(ct_rng *r, int32_t n) { return (int32_t)(ct_rng_next(r) % (uint64_t)n); }

/* Largest |a-b| / (1e-5 + 1e-4 |b|): <= 1 means within the DESIGN.md fp32 tolerance. */
static inline double ct_tol_ratio(const float *a, const float *b, int64_t n) {
  double worst = 0.0;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
    double r = fabs((double)a[i] - (double)b[i]) / (1e-5 + 1e-4 * fabs((double)b[i]));
    if (r > worst) worst = r;
  }
  return worst;
}

/* Morphism builders that fail the test on error. */
static inline ct_morphism *mk_then(const ct_morphism *f, const ct_morphism *g) {
  ct_morphism *r = NULL;
  CT_ASSERT_OK(ct_then(&r, f, g));
  return r;
}

static inline ct_morphism *mk_compose(const ct_morphism *g, const ct_morphism *f) {
  return mk_then(f, g);
}

static inline ct_morphism *mk_tensor(const ct_morphism *f, const ct_morphism *g) {
  ct_morphism *r = NULL;
  CT_ASSERT_OK(ct_tensor(&r, f, g));
  return r;
}

static inline ct_morphism *mk_identity1(const ct_object *o) {
  ct_morphism *r = NULL;
  CT_ASSERT_OK(ct_identity(&r, o, 1));
  return r;
}

/* Runs a group of tests. CTML_TEST_FILTER (a glob over test names) selects
 * tests; a filter that matches no test of the group is a failure. */
static inline int ct_test_run(const char *group, const struct CMUnitTest *tests, size_t n,
                              CMFixtureFunction setup, CMFixtureFunction teardown) {
  const char *filter = getenv("CTML_TEST_FILTER");
  if (filter && *filter) {
    size_t hits = 0;
    for (size_t i = 0; i < n; i++)
      if (fnmatch(filter, tests[i].name, 0) == 0) hits++;
    if (hits == 0) {
      fprintf(stderr, "%s: CTML_TEST_FILTER='%s' matches no test: failing\n", group, filter);
      return 1;
    }
    cmocka_set_test_filter(filter);
  }
  return _cmocka_run_group_tests(group, tests, n, setup, teardown);
}

#define CT_RUN_TESTS(group, tests, setup, teardown) \
  ct_test_run(group, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)

#endif
