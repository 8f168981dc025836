#include "ct_test.h"
static void placeholder(void **state) { (void)state; }
int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(placeholder)};
  return CT_RUN_TESTS("placeholder", tests, NULL, NULL);
}
