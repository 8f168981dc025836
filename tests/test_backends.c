/* SPDX-License-Identifier: MIT */
/* Coverage of the generator list: every built backend fills every
 * generator x direction cell with a kernel, a derivation, or a declared
 * "unsupported". The table is printed so coverage is visible. */
#include "ct_test.h"

static void test_coverage_table(void **state) {
  int gaps = 0, built = 0;
  print_message("    %-24s", "generator");
  for (int b = 0; b < ct_backend_count(); b++) {
    ct_backend_info info;
    CT_ASSERT_OK(ct_backend_info_get(b, &info));
    print_message(" %-25s", info.name);
  }
  print_message("\n    %-24s", "");
  for (int b = 0; b < ct_backend_count(); b++) print_message(" %-12s %-12s", "forward", "reverse");
  print_message("\n");
  for (int op = 0; op < CT_OP_COUNT; op++) {
    print_message("    %-24s", ct_op_name((ct_op)op));
    for (int b = 0; b < ct_backend_count(); b++) {
      ct_backend_info info;
      CT_ASSERT_OK(ct_backend_info_get(b, &info));
      for (int dir = 0; dir < 2; dir++) {
        if (!info.built) {
          print_message(" %-12s", "(not built)");
          continue;
        }
        ct_cell cell;
        CT_ASSERT_OK(ct_backend_cell(b, (ct_op)op, (ct_direction)dir, &cell));
        print_message(" %-12s", ct_cell_name(cell));
        if (cell == CT_CELL_MISSING) gaps++;
      }
    }
    print_message("\n");
  }
  for (int b = 0; b < ct_backend_count(); b++) {
    ct_backend_info info;
    CT_ASSERT_OK(ct_backend_info_get(b, &info));
    built += info.built;
    print_message("    %s: %s%s%s\n", info.name, info.present ? "present on " : "absent: ",
                  info.present ? info.device : info.reason, "");
  }
  assert_true(built >= 1);
  if (gaps) fail_msg("%d generator x direction cell(s) are neither implemented nor declared unsupported", gaps);
}

static void test_cpu_reference_is_complete(void **state) {
  /* The oracle must implement every cell: nothing is unsupported on cpu_ref. */
  for (int b = 0; b < ct_backend_count(); b++) {
    ct_backend_info info;
    CT_ASSERT_OK(ct_backend_info_get(b, &info));
    if (strcmp(info.name, "cpu")) continue;
    assert_true(info.present);
    for (int op = 0; op < CT_OP_COUNT; op++)
      for (int dir = 0; dir < 2; dir++) {
        ct_cell cell;
        CT_ASSERT_OK(ct_backend_cell(b, (ct_op)op, (ct_direction)dir, &cell));
        if (cell != CT_CELL_IMPLEMENTED && cell != CT_CELL_DERIVED && cell != CT_CELL_FORWARD_ONLY)
          fail_msg("cpu_ref: %s %s is %s", ct_op_name((ct_op)op), dir ? "reverse" : "forward",
                   ct_cell_name(cell));
      }
    return;
  }
  fail_msg("no cpu backend registered");
}

static void test_auto_picks_a_present_backend(void **state) {
  const ct_backend *be;
  CT_ASSERT_OK(ct_backend_get("auto", &be));
  for (int b = 0; b < ct_backend_count(); b++) {
    ct_backend_info info;
    CT_ASSERT_OK(ct_backend_info_get(b, &info));
    if (info.present) { /* the first present one, in preference order */
      assert_string_equal(ct_backend_name(be), info.name);
      return;
    }
  }
  fail_msg("auto found a backend but none is listed present");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_coverage_table),
      cmocka_unit_test(test_cpu_reference_is_complete),
      cmocka_unit_test(test_auto_picks_a_present_backend),
  };
  return CT_RUN_TESTS("backends", tests, NULL, NULL);
}
