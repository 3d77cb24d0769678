/* Behaviour of concur/time.h and concur/error.h. */
#include "harness.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static void test_duration_units(void **state)
{
    (void)state;
    assert_true(CC_SEC(2) == INT64_C(2000000000));
    assert_true(CC_MSEC(3) == INT64_C(3000000));
    assert_true(CC_USEC(4) == INT64_C(4000));
    assert_true(CC_NSEC(5) == 5);
    assert_true(CC_FOREVER < 0 && CC_NOWAIT == 0);
}

static void test_seconds_conversion(void **state)
{
    (void)state;
    assert_true(cc_seconds(0.5) == CC_MSEC(500));
    assert_true(cc_seconds(0) == 0);
    assert_true(cc_seconds(1e-9) == 1);
    assert_true(cc_seconds(1e30) == INT64_MAX);
    assert_true(cc_seconds(-1) == CC_INVALID_DURATION);
    assert_true(cc_seconds(NAN) == CC_INVALID_DURATION);
    /* Every call rejects the invalid duration. */
    assert_int_equal(cc_sleep(cc_seconds(-1)), -EINVAL);
}

static void test_monotonic_clock(void **state)
{
    (void)state;
    int64_t a = cc_monotonic_ns();
    cc_sleep(CC_MSEC(10));
    int64_t b = cc_monotonic_ns();
    assert_true(b - a >= CC_MSEC(9));
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(cc_strerror(0), "success");
    assert_string_equal(cc_strerror(CC_EBROKEN_BARRIER), "broken barrier");
    assert_string_equal(cc_strerror(CC_EBROKEN_EXECUTOR), "broken executor");
    assert_string_equal(cc_strerror(CC_ESHUTDOWN), "shut down");
    assert_string_equal(cc_strerror(CC_EWORKER_LOST), "worker lost");
    assert_string_equal(cc_strerror(CC_EEMPTY), "queue empty");
    assert_string_equal(cc_strerror(CC_EFULL), "queue full");
    assert_string_equal(cc_strerror(CC_EFAILED), "failed");
    assert_string_equal(cc_strerror(CC_ENOT_REGISTERED), "function not registered");
    assert_string_equal(cc_strerror(-ETIMEDOUT), "Connection timed out");
    assert_string_equal(cc_strerror(-EINVAL), "Invalid argument");
    assert_string_equal(cc_strerror(-99999), "unknown error");
    assert_string_equal(cc_strerror(12345), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CCT_TEST(test_duration_units),
        CCT_TEST(test_seconds_conversion),
        CCT_TEST(test_monotonic_clock),
        CCT_TEST(test_strerror),
    };
    return CCT_RUN(tests);
}
