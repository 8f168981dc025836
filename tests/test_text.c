#include "ct_test.h"
int main(void) { return 0; }
