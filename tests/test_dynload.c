/* SPDX-License-Identifier: MIT */
/* Run-time loading of the device backends' libraries (src/dynload.c, the cuBLAS
 * and OpenCL tables), and that describing the CPU backend loads none of them.
 * With CTML_TEST_DEVICE_LIBS_HIDDEN=1 (run by tools/without-device-libs.sh, where
 * cuBLAS and the OpenCL ICD loader cannot be opened) the loaders must fail
 * with CT_ERR_BACKEND_ABSENT naming the library. */
#include "ct_test.h"
#include <unistd.h>
#include "dynload.h"
#ifdef CTML_WITH_CUDA
#include "cublas_loader.h"
#endif
#ifdef CTML_WITH_OPENCL
#include "ocl_loader.h"
#endif

/* Whether a library whose file name contains name is mapped into this process. */
static bool mapped(const char *name) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) found = strstr(line, name) != NULL;
  fclose(f);
  return found;
}

static bool libs_hidden(void) {
  const char *h = getenv("CTML_TEST_DEVICE_LIBS_HIDDEN");
  return h && !strcmp(h, "1");
}

/* Runs first: nothing before it has opened a device backend. */
static void test_cpu_loads_no_device_library(void **state) {
  if (access("/proc/self/maps", R_OK) != 0) skip();
  const ct_backend *cpu = NULL;
  CT_ASSERT_OK(ct_backend_get("cpu", &cpu));
  int i = -1;
  CT_ASSERT_OK(ct_backend_index("cpu", &i));
  ct_backend_info info;
  CT_ASSERT_OK(ct_backend_info_get(i, &info));
  assert_true(info.present);
  assert_false(mapped("libOpenCL"));
  assert_false(mapped("libcublas"));
  assert_false(mapped("libcuda."));
}

static void test_missing_library(void **state) {
  const char *names[] = {NULL, "libctml-no-such-library.so.9", "/nonexistent/libalso-missing.so"};
  double (*fn)(double) = NULL;
  const ct__dl_symbol sym[] = {{"cos", (void **)&fn}};
  CT_ASSERT_STATUS(ct__dl_load("the thing", names, 3, sym, 1), CT_ERR_BACKEND_ABSENT);
  CT_ASSERT_MESSAGE_HAS("cannot load the thing: ");
  CT_ASSERT_MESSAGE_HAS("libctml-no-such-library.so.9");
  CT_ASSERT_MESSAGE_HAS("; /nonexistent/libalso-missing.so");
  assert_null(fn);
  const char *none[] = {NULL};
  CT_ASSERT_STATUS(ct__dl_load("the thing", none, 1, sym, 1), CT_ERR_BACKEND_ABSENT);
  CT_ASSERT_MESSAGE_HAS("no library name to try");
  CT_ASSERT_STATUS(ct__dl_load(NULL, names, 3, sym, 1), CT_ERR_INVALID_ARG);
}

static void test_present_library(void **state) {
  const char *names[] = {"libctml-no-such-library.so.9", "libm.so.6"};
  double (*c)(double) = NULL, (*s)(double) = NULL;
  const ct__dl_symbol sym[] = {{"cos", (void **)&c}, {"sin", (void **)&s}};
  CT_ASSERT_OK(ct__dl_load("libm", names, 2, sym, 2));
  assert_non_null(c);
  assert_non_null(s);
  assert_true(c(0.0) == 1.0 && s(0.0) == 0.0);
}

/* A missing symbol fails and leaves every slot as it was. */
static void test_missing_symbol(void **state) {
  const char *names[] = {"libm.so.6"};
  double (*c)(double) = NULL;
  void (*nope)(void) = NULL;
  const ct__dl_symbol sym[] = {{"cos", (void **)&c}, {"ct_no_such_symbol", (void **)&nope}};
  CT_ASSERT_STATUS(ct__dl_load("libm", names, 1, sym, 2), CT_ERR_BACKEND_ABSENT);
  CT_ASSERT_MESSAGE_HAS("libm.so.6 has no symbol ct_no_such_symbol");
  assert_null(c);
  assert_null(nope);
}

static void test_cublas_table(void **state) {
#if defined(CTML_WITH_CUDA)
  ct_status s = ct__cublas_load();
  if (libs_hidden()) {
    assert_int_equal(s, CT_ERR_BACKEND_ABSENT);
    CT_ASSERT_MESSAGE_HAS("cannot load cuBLAS: ");
    CT_ASSERT_MESSAGE_HAS("libcublas.so.");
    print_message("    %s\n", ct_last_error());
    return;
  }
  if (s != CT_OK) {
    print_message("    cuBLAS absent here: %s\n", ct_last_error());
    skip();
  }
#define CHECK_SLOT(f) assert_non_null(ct__cublas.p_##f);
  CT__CUBLAS_FUNCTIONS(CHECK_SLOT)
#undef CHECK_SLOT
  CT_ASSERT_OK(ct__cublas_load()); /* once loaded, always loaded */
#else
  skip();
#endif
}

static void test_opencl_table(void **state) {
#if defined(CTML_WITH_OPENCL)
  ct_status s = ct__ocl_api_load();
  if (libs_hidden()) {
    assert_int_equal(s, CT_ERR_BACKEND_ABSENT);
    CT_ASSERT_MESSAGE_HAS("opencl: cannot load the OpenCL ICD loader: ");
    CT_ASSERT_MESSAGE_HAS("libOpenCL.so");
    print_message("    %s\n", ct_last_error());
    return;
  }
  if (s != CT_OK) {
    print_message("    OpenCL ICD loader absent here: %s\n", ct_last_error());
    skip();
  }
#define CHECK_SLOT(f) assert_non_null(ct__ocl_api.p_##f);
  CT__OCL_FUNCTIONS(CHECK_SLOT)
#undef CHECK_SLOT
  cl_uint n = 0;
  cl_int err = ct__ocl_api.p_clGetPlatformIDs(0, NULL, &n);
  print_message("    clGetPlatformIDs through the table: %d, %u platform(s)\n", (int)err, n);
#else
  skip();
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cpu_loads_no_device_library),
      cmocka_unit_test(test_missing_library),
      cmocka_unit_test(test_present_library),
      cmocka_unit_test(test_missing_symbol),
      cmocka_unit_test(test_cublas_table),
      cmocka_unit_test(test_opencl_table),
  };
  return CT_RUN_TESTS("dynload", tests, NULL, NULL);
}
