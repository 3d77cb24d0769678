#include "harness.h"
static void placeholder(void **s) { (void)s; }
int main(void) { const struct CMUnitTest tests[] = { CCT_TEST(placeholder) }; return CCT_RUN(tests); }
