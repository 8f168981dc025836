/* SPDX-License-Identifier: MIT */
/* Building the kernel program, through an on-disk cache of program binaries.
 *
 * The cache directory is $CTML_OPENCL_CACHE, else $XDG_CACHE_HOME/ctml/opencl,
 * else $HOME/.cache/ctml/opencl; it is created when missing, and when it cannot
 * be created or written the program is built without caching. One file per
 * key, <key>.clbin, where the key hashes the source, the build options, the
 * device name, the driver version and the platform name and version. A file is
 * a 40-byte header (magic, format, header size, key, binary length, binary
 * checksum; little-endian) and the binary. An entry whose header, length or
 * checksum does not match, or that the driver refuses, is rebuilt from source
 * and rewritten atomically (a temporary file renamed over it). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include "ocl_internal.h"

#define CT__CACHE_MAGIC "CTMLOCLB"
#define CT__CACHE_FORMAT 1u
#define CT__CACHE_HEADER 40u
#define CT__CACHE_MAX_BINARY (512u << 20) /* a larger length is a corrupt header */
#define CT__BUILD_LOG_SHOWN 640           /* characters of a failed build's log in the message */

/* FNV-1a, 64 bits. */
static uint64_t ct__fnv(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}
#define CT__FNV_INIT 0xcbf29ce484222325ull

static uint64_t ct__fnv_str(uint64_t h, const char *s) { return ct__fnv(h, s, strlen(s) + 1); }

static void ct__put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t ct__get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static void ct__info_str(cl_int (*get)(void *, cl_uint, size_t, void *, size_t *), void *obj,
                         cl_uint what, char *out, size_t len) {
  if (get(obj, what, len - 1, out, NULL) != CL_SUCCESS) snprintf(out, len, "?");
  out[len - 1] = '\0';
}

/* Wrappers with a common signature for ct__info_str. */
static cl_int ct__dev_info(void *o, cl_uint w, size_t n, void *v, size_t *r) {
  return clGetDeviceInfo((cl_device_id)o, w, n, v, r);
}
static cl_int ct__plat_info(void *o, cl_uint w, size_t n, void *v, size_t *r) {
  return clGetPlatformInfo((cl_platform_id)o, w, n, v, r);
}

static uint64_t ct__cache_key(const ct__ocl *c, const char *options) {
  char buf[256];
  uint64_t h = CT__FNV_INIT;
  for (size_t i = 0; i < ct__ocl_source_count; i++) h = ct__fnv(h, ct__ocl_source[i], strlen(ct__ocl_source[i]));
  h = ct__fnv_str(h, "\n--options--");
  h = ct__fnv_str(h, options);
  const cl_uint dev_fields[] = {CL_DEVICE_NAME, CL_DRIVER_VERSION, CL_DEVICE_VERSION};
  for (size_t i = 0; i < sizeof dev_fields / sizeof dev_fields[0]; i++) {
    ct__info_str(ct__dev_info, c->device, dev_fields[i], buf, sizeof buf);
    h = ct__fnv_str(h, buf);
  }
  const cl_uint plat_fields[] = {CL_PLATFORM_NAME, CL_PLATFORM_VERSION};
  for (size_t i = 0; i < sizeof plat_fields / sizeof plat_fields[0]; i++) {
    ct__info_str(ct__plat_info, c->platform, plat_fields[i], buf, sizeof buf);
    h = ct__fnv_str(h, buf);
  }
  return h;
}

/* mkdir -p with mode 0700 for what it creates; false (errno set) on failure. */
static bool ct__mkdirs(const char *path) {
  char tmp[1024];
  if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
    errno = ENAMETOOLONG;
    return false;
  }
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return false;
    *p = '/';
  }
  if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return false;
  struct stat st;
  if (stat(tmp, &st) != 0) return false;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return false;
  }
  return true;
}

/* The cache directory (created), or false with the reason in note. */
static bool ct__cache_dir(char *dir, size_t len, char *note, size_t note_len) {
  const char *env = getenv("CTML_OPENCL_CACHE"), *xdg = getenv("XDG_CACHE_HOME"),
             *home = getenv("HOME");
  int k;
  if (env && *env)
    k = snprintf(dir, len, "%s", env);
  else if (xdg && xdg[0] == '/')
    k = snprintf(dir, len, "%s/ctml/opencl", xdg);
  else if (home && *home)
    k = snprintf(dir, len, "%s/.cache/ctml/opencl", home);
  else {
    snprintf(note, note_len, "caching off: none of CTML_OPENCL_CACHE, XDG_CACHE_HOME, HOME is set");
    return false;
  }
  if (k < 0 || (size_t)k >= len - 32) {
    snprintf(note, note_len, "caching off: the cache path is too long");
    return false;
  }
  if (!ct__mkdirs(dir)) {
    snprintf(note, note_len, "caching off: cannot create %.300s: %s", dir, strerror(errno));
    return false;
  }
  return true;
}

/* Reads a cache entry; NULL with the reason in why when it is absent or bad. */
static unsigned char *ct__cache_read(const char *path, uint64_t key, size_t *len, char *why,
                                     size_t why_len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(why, why_len, "%s", errno == ENOENT ? "absent" : strerror(errno));
    return NULL;
  }
  unsigned char h[CT__CACHE_HEADER];
  unsigned char *bin = NULL;
  const char *bad = NULL;
  if (fread(h, 1, sizeof h, f) != sizeof h)
    bad = "truncated header";
  else if (memcmp(h, CT__CACHE_MAGIC, 8))
    bad = "bad magic";
  else if (ct__get64(h + 8) != ((uint64_t)CT__CACHE_HEADER << 32 | CT__CACHE_FORMAT))
    bad = "unknown format";
  else if (ct__get64(h + 16) != key)
    bad = "key mismatch";
  else if (ct__get64(h + 24) == 0 || ct__get64(h + 24) > CT__CACHE_MAX_BINARY)
    bad = "bad length";
  if (!bad) {
    *len = (size_t)ct__get64(h + 24);
    bin = malloc(*len + 1);
    if (!bin)
      bad = "out of host memory";
    else if (fread(bin, 1, *len + 1, f) != *len)
      bad = "length mismatch (truncated or extended)";
    else if (ct__fnv(CT__FNV_INIT, bin, *len) != ct__get64(h + 32))
      bad = "checksum mismatch";
  }
  fclose(f);
  if (bad) {
    free(bin);
    snprintf(why, why_len, "corrupt (%s)", bad);
    return NULL;
  }
  return bin;
}

/* Writes an entry atomically: a temporary file in the same directory, renamed. */
static bool ct__cache_write(const char *path, uint64_t key, const unsigned char *bin, size_t len,
                            char *why, size_t why_len) {
  char tmp[1200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    snprintf(why, why_len, "cannot write %.300s: %s", tmp, strerror(errno));
    return false;
  }
  unsigned char h[CT__CACHE_HEADER];
  memcpy(h, CT__CACHE_MAGIC, 8);
  ct__put64(h + 8, (uint64_t)CT__CACHE_HEADER << 32 | CT__CACHE_FORMAT);
  ct__put64(h + 16, key);
  ct__put64(h + 24, len);
  ct__put64(h + 32, ct__fnv(CT__FNV_INIT, bin, len));
  bool ok = fwrite(h, 1, sizeof h, f) == sizeof h && fwrite(bin, 1, len, f) == len;
  int saved = errno;
  if (fclose(f) != 0) ok = false, saved = errno;
  if (ok && rename(tmp, path) != 0) ok = false, saved = errno;
  if (!ok) {
    remove(tmp);
    snprintf(why, why_len, "cannot write %.300s: %s", path, strerror(saved));
  }
  return ok;
}

/* The program's binary for the one device (malloc'ed), or NULL. */
static unsigned char *ct__program_binary(cl_program prog, size_t *len) {
  size_t n = 0;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) != CL_SUCCESS || n == 0)
    return NULL;
  unsigned char *bin = malloc(n);
  if (!bin) return NULL;
  unsigned char *bins[1] = {bin};
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) != CL_SUCCESS) {
    free(bin);
    return NULL;
  }
  *len = n;
  return bin;
}

/* Fails with the build log of prog (its start and its end when long). */
static ct_status ct__build_failure(ct__ocl *c, cl_program prog, cl_int err) {
  size_t n = 0;
  char *log = NULL;
  if (clGetProgramBuildInfo(prog, c->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS &&
      n > 0 && (log = malloc(n + 1)) != NULL &&
      clGetProgramBuildInfo(prog, c->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS) {
    log[n] = '\0';
  } else {
    free(log);
    log = NULL;
  }
  char shown[CT__BUILD_LOG_SHOWN + 64];
  size_t len = log ? strlen(log) : 0;
  if (!log)
    snprintf(shown, sizeof shown, "(no build log)");
  else if (len <= CT__BUILD_LOG_SHOWN)
    snprintf(shown, sizeof shown, "%s", log);
  else
    snprintf(shown, sizeof shown, "%.*s\n[... %zu characters ...]\n%s", CT__BUILD_LOG_SHOWN / 2,
             log, len - CT__BUILD_LOG_SHOWN, log + len - CT__BUILD_LOG_SHOWN / 2);
  free(log);
  return ct__fail(CT_ERR_DEVICE, "opencl: clBuildProgram: %s (%d); build log:\n%s",
                  ct__ocl_error_name(err), (int)err, shown);
}

/* Tries the cached binary; true with c->program built when it is good. */
static bool ct__try_cached(ct__ocl *c, const char *path, uint64_t key, const char *options,
                           char *why, size_t why_len) {
  size_t len = 0;
  unsigned char *bin = ct__cache_read(path, key, &len, why, why_len);
  if (!bin) return false;
  cl_int status = CL_SUCCESS, err = CL_SUCCESS;
  const unsigned char *bins[1] = {bin};
  cl_program prog =
      clCreateProgramWithBinary(c->context, 1, &c->device, &len, bins, &status, &err);
  free(bin);
  if (err != CL_SUCCESS || status != CL_SUCCESS) {
    snprintf(why, why_len, "refused by clCreateProgramWithBinary (%s)",
             ct__ocl_error_name(err != CL_SUCCESS ? err : status));
    if (prog) clReleaseProgram(prog);
    return false;
  }
  err = clBuildProgram(prog, 1, &c->device, options, NULL, NULL);
  if (err != CL_SUCCESS) {
    snprintf(why, why_len, "refused by clBuildProgram (%s)", ct__ocl_error_name(err));
    clReleaseProgram(prog);
    return false;
  }
  c->program = prog;
  return true;
}

ct_status ct__ocl_build_program(ct__ocl *c, const char *options) {
  char dir[1024], path[1100], why[400] = "";
  uint64_t key = ct__cache_key(c, options);
  bool caching = ct__cache_dir(dir, sizeof dir, c->cache_note, sizeof c->cache_note);
  if (caching) {
    snprintf(path, sizeof path, "%s/%016llx.clbin", dir, (unsigned long long)key);
    if (ct__try_cached(c, path, key, options, why, sizeof why)) {
      snprintf(c->cache_note, sizeof c->cache_note, "loaded from cache %.400s", path);
      return CT_OK;
    }
  }
  cl_int err = CL_SUCCESS;
  cl_program prog = clCreateProgramWithSource(c->context, (cl_uint)ct__ocl_source_count,
                                              (const char **)ct__ocl_source, NULL, &err);
  if (err != CL_SUCCESS) return ct__ocl_fail("clCreateProgramWithSource", err);
  err = clBuildProgram(prog, 1, &c->device, options, NULL, NULL);
  if (err != CL_SUCCESS) {
    ct_status s = ct__build_failure(c, prog, err);
    clReleaseProgram(prog);
    return s;
  }
  c->program = prog;
  if (!caching) return CT_OK; /* cache_note says why */
  size_t len = 0;
  unsigned char *bin = ct__program_binary(prog, &len);
  char werr[400] = "";
  bool got = bin != NULL;
  bool written = got && ct__cache_write(path, key, bin, len, werr, sizeof werr);
  free(bin);
  if (written)
    snprintf(c->cache_note, sizeof c->cache_note, "built from source (cache entry %.200s); cached in "
             "%.400s", why, path);
  else
    snprintf(c->cache_note, sizeof c->cache_note, "built from source; not cached: %.400s",
             got ? werr : "the driver gave no program binary");
  return CT_OK;
}
