/* SPDX-License-Identifier: MIT */
/* The loss-curve SVG of a training run, and the FNV-1a fingerprint of its data. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

uint64_t cli_fnv1a(const uint8_t *data, int64_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int64_t i = 0; i < n; i++) {
    h ^= data[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

/* Canvas and plot area, in SVG user units. */
enum { W = 720, H = 420, LEFT = 72, RIGHT = 32, TOP = 44, BOTTOM = 56 };
#define PW ((double)(W - LEFT - RIGHT))
#define PH ((double)(H - TOP - BOTTOM))
#define TRAIN_COLOR "#1f77b4"
#define VAL_COLOR "#ff7f0e"
#define BASE_COLOR "#2ca02c"

/* A "nice" tick step (1, 2 or 5 x 10^k) giving about `want` intervals over span > 0. */
static double nice_step(double span, int want) {
  double raw = span / want;
  double mag = pow(10.0, floor(log10(raw)));
  double r = raw / mag;
  return (r < 1.5 ? 1.0 : r < 3.5 ? 2.0 : r < 7.5 ? 5.0 : 10.0) * mag;
}

/* Decimals that show a multiple of step exactly (0 for steps >= 1). */
static int step_decimals(double step) {
  int d = (int)-floor(log10(step) + 1e-9);
  return d < 0 ? 0 : d > 9 ? 9 : d;
}

/* Writes s as XML character data: markup characters escaped, control bytes
 * and malformed UTF-8 replaced by '?'. */
static void xml_text(FILE *f, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p;
    if (c == '&') fputs("&amp;", f);
    else if (c == '<') fputs("&lt;", f);
    else if (c == '>') fputs("&gt;", f);
    else if (c == '"') fputs("&quot;", f);
    else if (c == '\'') fputs("&apos;", f);
    else if (c < 0x20 || c == 0x7f) fputc(c == '\t' ? ' ' : '?', f);
    else if (c < 0x80) fputc((int)c, f);
    else {
      /* a well-formed UTF-8 sequence passes through whole */
      int len = cli_utf8_len(p, strnlen((const char *)p, 4));
      if (len == 0) {
        fputc('?', f);
      } else {
        fwrite(p, 1, (size_t)len, f);
        p += len - 1;
      }
    }
    p++;
  }
}

/* Axis ranges and the map from data to canvas. */
typedef struct plot_axes {
  double x0, x1, y0, y1;
  double xstep, ystep;
} plot_axes;

static double px(const plot_axes *a, double x) { return LEFT + (x - a->x0) / (a->x1 - a->x0) * PW; }
static double py(const plot_axes *a, double y) { return TOP + (a->y1 - y) / (a->y1 - a->y0) * PH; }

/* Steps run from 0 (or a negative step, if any) to the largest step; losses
 * are rounded out to whole y ticks. Non-finite losses are ignored. */
static void plot_ranges(plot_axes *a, const long *steps, const float *train, int n,
                        const long *val_steps, const float *val, int n_val, double baseline) {
  double xmin = 0.0, xmax = 0.0, ymin = INFINITY, ymax = -INFINITY;
  for (int i = 0; i < n; i++) {
    if (!isfinite(train[i])) continue;
    xmin = fmin(xmin, (double)steps[i]);
    xmax = fmax(xmax, (double)steps[i]);
    ymin = fmin(ymin, train[i]);
    ymax = fmax(ymax, train[i]);
  }
  for (int i = 0; i < n_val; i++) {
    if (!isfinite(val[i])) continue;
    xmin = fmin(xmin, (double)val_steps[i]);
    xmax = fmax(xmax, (double)val_steps[i]);
    ymin = fmin(ymin, val[i]);
    ymax = fmax(ymax, val[i]);
  }
  if (isfinite(baseline)) {
    ymin = fmin(ymin, baseline);
    ymax = fmax(ymax, baseline);
  }
  if (xmax <= xmin) xmax = xmin + 1.0;
  if (!(ymin <= ymax)) { /* no finite value */
    ymin = 0.0;
    ymax = 1.0;
  }
  if (ymax - ymin <= 1e-9 * fmax(1.0, fabs(ymax))) { /* one level: a band around it */
    double d = fabs(ymax) > 0.0 ? 0.1 * fabs(ymax) : 1.0;
    ymin -= d;
    ymax += d;
  }
  a->x0 = xmin;
  a->x1 = xmax;
  a->xstep = fmax(1.0, nice_step(xmax - xmin, 6));
  a->ystep = nice_step(ymax - ymin, 5);
  a->y0 = floor(ymin / a->ystep + 1e-9) * a->ystep;
  a->y1 = ceil(ymax / a->ystep - 1e-9) * a->ystep;
  if (a->y1 <= a->y0) a->y1 = a->y0 + a->ystep;
}

/* Grid lines, tick labels, frame and axis titles. */
static void plot_axes_draw(FILE *f, const plot_axes *a) {
  fprintf(f, "<g font-family=\"sans-serif\" font-size=\"11\" fill=\"#444\">\n");
  int yd = step_decimals(a->ystep);
  long k0 = lround(ceil(a->y0 / a->ystep - 1e-9)), k1 = lround(floor(a->y1 / a->ystep + 1e-9));
  for (long k = k0; k <= k1 && k - k0 < 100; k++) {
    double v = (double)k * a->ystep, y = py(a, v);
    fprintf(f, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e3e3e3\"/>\n",
            LEFT, y, LEFT + PW, y);
    fprintf(f, "<text x=\"%d\" y=\"%.2f\" text-anchor=\"end\" dominant-baseline=\"middle\">"
            "%.*f</text>\n", LEFT - 6, y + 0.5, yd, k == 0 ? 0.0 : v);
  }
  k0 = lround(ceil(a->x0 / a->xstep - 1e-9));
  k1 = lround(floor(a->x1 / a->xstep + 1e-9));
  for (long k = k0; k <= k1 && k - k0 < 100; k++) {
    double v = (double)k * a->xstep, x = px(a, v);
    fprintf(f, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e3e3e3\"/>\n",
            x, TOP, x, TOP + PH);
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%.0f</text>\n", x, TOP + PH + 16,
            v);
  }
  fprintf(f, "</g>\n");
  fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
          "stroke=\"#888\"/>\n", LEFT, TOP, PW, PH);
  fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-family=\"sans-serif\" font-size=\"12\" "
          "text-anchor=\"middle\" fill=\"#222\">step</text>\n", LEFT + PW / 2, H - 14);
  fprintf(f, "<text transform=\"translate(18 %.1f) rotate(-90)\" font-family=\"sans-serif\" "
          "font-size=\"12\" text-anchor=\"middle\" fill=\"#222\">loss (nats)</text>\n",
          TOP + PH / 2);
}

/* Adds a point to the open polyline segment, opening one when none is. */
static void seg_point(FILE *f, int *open, int *pts, double x, double y, const char *color,
                      double w) {
  if (!*open) {
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" "
            "stroke-linejoin=\"round\" points=\"", color, w);
    *open = 1;
    *pts = 0;
  }
  fprintf(f, "%s%.2f,%.2f", *pts ? " " : "", x, y);
  (*pts)++;
}

/* Closes the open segment; a segment of one point (x, y) also gets a dot. */
static void seg_end(FILE *f, int *open, int pts, double x, double y, const char *color, double w) {
  if (!*open) return;
  fprintf(f, "\"/>\n");
  if (pts == 1)
    fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.1f\" fill=\"%s\"/>\n", x, y, w + 0.8, color);
  *open = 0;
}

/* One series as polylines, broken where a value is not finite. Long series are
 * thinned to the lowest and highest point of each pixel column, so the file
 * stays small and the envelope of the noise is kept. */
static void plot_series(FILE *f, const plot_axes *a, const long *steps, const float *y, int n,
                        const char *color, double width) {
  int open = 0, pts = 0, thin = n > 2 * (int)PW;
  double lx = 0, ly = 0;
  long col = -1;
  int lo = -1, hi = -1; /* indices of the extremes in the current column */
  for (int i = 0; i <= n; i++) {
    int finite = i < n && isfinite(y[i]);
    long c = finite ? lround(floor(px(a, (double)steps[i]))) : -2;
    if (thin && col != -1 && (c != col || !finite)) {
      /* Flush the column: its extremes in the order they occurred. */
      int first = lo < hi ? lo : hi, second = lo < hi ? hi : lo;
      for (int j = 0; j < (first == second ? 1 : 2); j++) {
        int k = j == 0 ? first : second;
        lx = px(a, (double)steps[k]);
        ly = py(a, y[k]);
        seg_point(f, &open, &pts, lx, ly, color, width);
      }
      col = -1;
    }
    if (!finite) {
      seg_end(f, &open, pts, lx, ly, color, width);
      continue;
    }
    if (thin) {
      if (col == -1) {
        col = c;
        lo = hi = i;
      } else {
        if (y[i] < y[lo]) lo = i;
        if (y[i] > y[hi]) hi = i;
      }
      continue;
    }
    lx = px(a, (double)steps[i]);
    ly = py(a, y[i]);
    seg_point(f, &open, &pts, lx, ly, color, width);
  }
  seg_end(f, &open, pts, lx, ly, color, width);
}

/* The legend in the top-right corner of the plot, one entry per series drawn. */
static void plot_legend(FILE *f, int has_train, int has_val, int has_base) {
  int rows = has_train + has_val + has_base;
  if (has_train + has_val == 0) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-family=\"sans-serif\" font-size=\"13\" "
            "text-anchor=\"middle\" fill=\"#888\">no finite loss values</text>\n",
            LEFT + PW / 2, TOP + PH / 2);
    return;
  }
  double x = LEFT + PW - (has_base ? 160 : 128), y = TOP + 10;
  fprintf(f, "<g font-family=\"sans-serif\" font-size=\"12\" fill=\"#222\">\n");
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"white\" "
          "fill-opacity=\"0.9\" stroke=\"#bbb\"/>\n", x, y, has_base ? 150 : 118, 8 + 18 * rows);
  double ry = y + 13;
  if (has_train) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"1.5\"/>\n", x + 8, ry, x + 32, ry, TRAIN_COLOR);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">train</text>\n", x + 40, ry + 4);
    ry += 18;
  }
  if (has_val) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"2\"/>\n", x + 8, ry, x + 32, ry, VAL_COLOR);
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x + 20, ry, VAL_COLOR);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">validation</text>\n", x + 40, ry + 4);
    ry += 18;
  }
  if (has_base) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n", x + 8, ry, x + 32, ry, BASE_COLOR);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">unigram baseline</text>\n", x + 40, ry + 4);
  }
  fprintf(f, "</g>\n");
}

static void write_svg(FILE *f, const char *title, const long *steps, const float *train, int n,
                      const long *val_steps, const float *val, int n_val, double baseline) {
  plot_axes a;
  plot_ranges(&a, steps, train, n, val_steps, val, n_val, baseline);
  int has_base = isfinite(baseline);
  int has_train = 0, has_val = 0;
  for (int i = 0; i < n && !has_train; i++) has_train = isfinite(train[i]);
  for (int i = 0; i < n_val && !has_val; i++) has_val = isfinite(val[i]);

  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
          "viewBox=\"0 0 %d %d\">\n", W, H, W, H);
  fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
  fprintf(f, "<text x=\"%d\" y=\"26\" font-family=\"sans-serif\" font-size=\"15\" "
          "font-weight=\"bold\" text-anchor=\"middle\" fill=\"#222\">", W / 2);
  xml_text(f, title ? title : "");
  fprintf(f, "</text>\n");
  plot_axes_draw(f, &a);
  if (n > 0) plot_series(f, &a, steps, train, n, TRAIN_COLOR, 1.0);
  if (n_val > 0) {
    plot_series(f, &a, val_steps, val, n_val, VAL_COLOR, 1.8);
    for (int i = 0; i < n_val; i++)
      if (isfinite(val[i]))
        fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\" stroke=\"white\" "
                "stroke-width=\"0.8\"/>\n",
                px(&a, (double)val_steps[i]), py(&a, val[i]), VAL_COLOR);
  }
  if (has_base)
    fprintf(f, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
            "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n", LEFT, py(&a, baseline), LEFT + PW,
            py(&a, baseline), BASE_COLOR);
  plot_legend(f, has_train, has_val, has_base);
  fprintf(f, "</svg>\n");
}

bool cli_write_loss_svg(const char *path, const char *title, const long *steps,
                        const float *train, int n, const long *val_steps, const float *val,
                        int n_val, double baseline) {
  if (!path || n < 0 || n_val < 0 || (n > 0 && (!steps || !train)) ||
      (n_val > 0 && (!val_steps || !val))) {
    errno = EINVAL;
    return false;
  }
  /* Written to "<path>.tmp", flushed to disk, renamed over path, directory synced. */
  cli_atomic a;
  if (!cli_atomic_open(&a, path)) return false;
  errno = 0;
  write_svg(a.f, title, steps, train, n, val_steps, val, n_val, baseline);
  return cli_atomic_commit(&a);
}
