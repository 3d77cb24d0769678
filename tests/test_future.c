#include "harness.h"

#include <errno.h>

static void test_new_and_result(void **state)
{
    (void)state;
    cc_future *f = NULL;
    assert_int_equal(cc_future_new(&f), 0);
    assert_int_equal(cc_future_set_result(f, (void *)42, NULL), 0);
    void *v = NULL;
    assert_int_equal(cc_future_result(f, CC_NOWAIT, &v), 0);
    assert_ptr_equal(v, (void *)42);
    cc_future_unref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CCT_TEST(test_new_and_result),
    };
    return CCT_RUN(tests);
}
