/* SPDX-License-Identifier: MIT */
/* The decoder (decode.h): a window of tokens per row, kept on the host, and either
 * the cached plans (one-token step, prefills sharing its parameters and caches) or one
 * full-window plan. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "plan_impl.h"

#define CT__PREFILLS 2 /* prefill plans kept, by length */

struct ct_decoder {
  const ct_backend *be;
  ct_gpt_config cfg;
  ct_gpt *g; /* the decoder's own copy of the model */
  int64_t B, L, V, len;
  bool cache;
  int32_t *window; /* B x L: row b's tokens at positions 0..len-1 */
  int32_t *ids, *pos; /* B x L staging of a run's tokens and positions */
  ct_param **caches;  /* 2 per layer: keys, values */
  ct_plan *step;      /* cached: one token; owns the parameters and caches */
  ct_plan *prefill[CT__PREFILLS];
  int64_t prefill_len[CT__PREFILLS];
  ct_morphism *full_m; /* no cache: the window of L */
  ct_plan *full;
  ct_decode_stats stats;
};

static double ct__clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ct_decoder_free(ct_decoder *d) {
  if (!d) return;
  for (int k = 0; k < CT__PREFILLS; k++) ct_plan_free(d->prefill[k]);
  ct_plan_free(d->step);
  ct_plan_free(d->full);
  ct_morphism_free(d->full_m);
  for (int64_t i = 0; d->caches && i < 2 * d->cfg.layers; i++) ct_param_free(d->caches[i]);
  free(d->caches);
  ct_gpt_free(d->g);
  free(d->window);
  free(d->ids);
  free(d->pos);
  free(d);
}

/* A forward plan of the decoding morphism over n tokens per row, sharing the step
 * plan's parameters and caches when there is one. */
static ct_status ct__decode_plan(ct_decoder *d, int64_t n, ct_plan **out) {
  ct_morphism *m = NULL;
  CT__TRY(ct_gpt_decode(&m, d->g, d->caches, d->B, n));
  ct_status s = ct__compile_shared(out, m, d->be, CT_PLAN_FORWARD, d->step);
  ct_morphism_free(m);
  return s;
}

ct_status ct_decoder_new(ct_decoder **out, const ct_gpt *g, const ct_backend *be,
                         int64_t batch, int flags) {
  static const char fn[] = "ct_decoder_new";
  CT__NEED(out, fn);
  *out = NULL;
  CT__NEED(g, fn);
  CT__NEED(be, fn);
  if (flags & ~CT_DECODE_NO_CACHE)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: unknown flags %d (only CT_DECODE_NO_CACHE = %d)", fn,
                    flags, CT_DECODE_NO_CACHE);
  const ct_gpt_config *cfg = ct_gpt_get_config(g);
  if (batch < 1 || batch > (1 << 20))
    return ct__fail(CT_ERR_INVALID_ARG, "%s: batch %lld is outside [1, 2^20]", fn, (long long)batch);
  ct_decoder *d = calloc(1, sizeof *d);
  if (!d) return ct__fail(CT_ERR_NOMEM, "%s: out of host memory", fn);
  d->be = be;
  d->cfg = *cfg;
  d->B = batch;
  d->L = cfg->block;
  d->V = cfg->vocab;
  d->cache = !(flags & CT_DECODE_NO_CACHE);
  size_t cells = (size_t)(batch * d->L);
  d->window = calloc(cells, sizeof *d->window);
  d->ids = calloc(cells, sizeof *d->ids);
  d->pos = calloc(cells, sizeof *d->pos);
  ct_status s = d->window && d->ids && d->pos ? CT_OK : ct__fail(CT_ERR_NOMEM, "%s: out of host memory", fn);
  /* A private copy of the model, so that the plans' parameters are the decoder's. */
  if (s == CT_OK) s = ct_gpt_new(&d->g, cfg, 0);
  for (int i = 0; s == CT_OK && i < ct_gpt_param_count(g); i++) {
    ct_param *src = ct_gpt_param(g, i), *dst = ct_gpt_param(d->g, i);
    s = ct_param_set(dst, ct__param_host(src), ct_param_numel(src));
  }
  if (s == CT_OK && d->cache) {
    int64_t H = cfg->heads, D = cfg->width / cfg->heads;
    d->caches = calloc((size_t)(2 * cfg->layers), sizeof *d->caches);
    if (!d->caches) s = ct__fail(CT_ERR_NOMEM, "%s: out of host memory", fn);
    for (int64_t i = 0; s == CT_OK && i < 2 * cfg->layers; i++) {
      char name[64];
      snprintf(name, sizeof name, "h%lld.attn.%s_cache", (long long)(i / 2), i % 2 ? "v" : "k");
      s = ct_param_new_cache(&d->caches[i], name, batch, H, d->L, D);
    }
    if (s == CT_OK) s = ct__decode_plan(d, 1, &d->step);
  } else if (s == CT_OK) {
    s = ct_gpt_logits(&d->full_m, d->g, batch, d->L);
    if (s == CT_OK) s = ct_compile(&d->full, d->full_m, be, CT_PLAN_FORWARD);
  }
  if (s != CT_OK) {
    ct_status e = ct__fail(s, "%s: %s", fn, ct_last_error());
    ct_decoder_free(d);
    return e;
  }
  *out = d;
  return CT_OK;
}

/* The prefill plan for n tokens per row: kept, or compiled in place of the older one. */
static ct_status ct__prefill_plan(ct_decoder *d, int64_t n, ct_plan **out) {
  for (int k = 0; k < CT__PREFILLS; k++)
    if (d->prefill[k] && d->prefill_len[k] == n) {
      *out = d->prefill[k];
      return CT_OK;
    }
  int k = 0;
  while (k < CT__PREFILLS && d->prefill[k]) k++;
  if (k == CT__PREFILLS) { /* all kept: drop the oldest (slot 0), the rest move down */
    ct_plan_free(d->prefill[0]);
    for (k = 1; k < CT__PREFILLS; k++) {
      d->prefill[k - 1] = d->prefill[k];
      d->prefill_len[k - 1] = d->prefill_len[k];
    }
    k = CT__PREFILLS - 1;
    d->prefill[k] = NULL;
  }
  CT__TRY(ct__decode_plan(d, n, &d->prefill[k]));
  d->prefill_len[k] = n;
  *out = d->prefill[k];
  return CT_OK;
}

/* Runs the window's positions [from, len) of every row through the cache and reads
 * the logits of each row's last position. */
static ct_status ct__run_cached(ct_decoder *d, int64_t from, float *logits) {
  int64_t n = d->len - from;
  ct_plan *p = d->step;
  if (n > 1) CT__TRY(ct__prefill_plan(d, n, &p));
  for (int64_t b = 0; b < d->B; b++)
    for (int64_t i = 0; i < n; i++) {
      d->ids[b * n + i] = d->window[b * d->L + from + i];
      d->pos[b * n + i] = (int32_t)(from + i);
    }
  CT__TRY(ct_plan_set_input(p, 0, d->ids, d->B * n));
  CT__TRY(ct_plan_set_input(p, 1, d->pos, d->B * n));
  CT__TRY(ct_plan_forward(p));
  for (int64_t b = 0; logits && b < d->B; b++)
    CT__TRY(ct__plan_get_output_at(p, 0, (b * n + n - 1) * d->V, logits + b * d->V, d->V));
  return CT_OK;
}

/* Runs the whole window (zero-padded to L) and reads row len-1 of every row. */
static ct_status ct__run_full(ct_decoder *d, float *logits) {
  CT__TRY(ct_plan_set_input(d->full, 0, d->window, d->B * d->L));
  CT__TRY(ct_plan_forward(d->full));
  for (int64_t b = 0; logits && b < d->B; b++)
    CT__TRY(ct__plan_get_output_at(d->full, 0, (b * d->L + d->len - 1) * d->V, logits + b * d->V,
                                   d->V));
  return CT_OK;
}

ct_status ct_decoder_append(ct_decoder *d, const int32_t *tokens, int64_t n, float *logits) {
  static const char fn[] = "ct_decoder_append";
  CT__NEED(d, fn);
  CT__NEED(tokens, fn);
  if (n < 1 || n > (int64_t)1 << 30)
    return ct__fail(CT_ERR_INVALID_ARG, "%s: n = %lld tokens per row; it must be >= 1", fn,
                    (long long)n);
  for (int64_t i = 0; i < d->B * n; i++)
    if (tokens[i] < 0 || tokens[i] >= d->V)
      return ct__fail(CT_ERR_RANGE, "%s: token id %d (row %lld, index %lld) is outside the "
                      "vocabulary [0, %lld)", fn, tokens[i], (long long)(i / n),
                      (long long)(i % n), (long long)d->V);
  int64_t total = d->len + n, from = d->len;
  if (total <= d->L) {
    for (int64_t b = 0; b < d->B; b++)
      memcpy(&d->window[b * d->L + d->len], &tokens[b * n], (size_t)n * sizeof *tokens);
  } else { /* restart: the last keep tokens of window ++ tokens, from position 0 */
    int64_t K = d->L - (d->L / 4 > 1 ? d->L / 4 : 1);
    int64_t keep = n > K ? n : K;
    if (keep > d->L) keep = d->L;
    if (keep > total) keep = total;
    for (int64_t b = 0; b < d->B; b++) {
      int32_t *w = &d->window[b * d->L];
      int64_t old = keep > n ? keep - n : 0; /* tokens kept from the window */
      memmove(w, w + d->len - old, (size_t)old * sizeof *w);
      memcpy(w + old, &tokens[b * n + (n - (keep - old))], (size_t)(keep - old) * sizeof *w);
    }
    total = keep;
    from = 0;
    d->stats.restarts++;
  }
  d->len = total;
  double t0 = ct__clock();
  ct_status s = d->cache ? ct__run_cached(d, from, logits) : ct__run_full(d, logits);
  double dt = ct__clock() - t0;
  if (s != CT_OK) {
    d->len = 0; /* the caches may be half written: the next append starts afresh */
    return ct__fail(s, "%s: %s", fn, ct_last_error());
  }
  if (d->len - from == 1) {
    d->stats.decode_tokens++;
    d->stats.decode_seconds += dt;
  } else {
    d->stats.prefill_tokens += d->len - from;
    d->stats.prefill_seconds += dt;
  }
  return CT_OK;
}

ct_status ct_decoder_reset(ct_decoder *d) {
  CT__NEED(d, "ct_decoder_reset");
  d->len = 0;
  return CT_OK;
}

int64_t ct_decoder_length(const ct_decoder *d) { return d ? d->len : 0; }

ct_status ct_decoder_stats(const ct_decoder *d, ct_decode_stats *out) {
  CT__NEED(d, "ct_decoder_stats");
  CT__NEED(out, "ct_decoder_stats");
  *out = d->stats;
  return CT_OK;
}
