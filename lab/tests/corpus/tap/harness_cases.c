// Cases for the lab's TAP parser, on the kernel's own kselftest harness: a pass, a skip, a
// failure, a test that hangs until the harness's timeout ends it (2 s), and one that sleeps
// past any time limit the lab sets (run it alone: -t sleeps; leave it out: -T sleeps).
#include <unistd.h>
#include "kselftest_harness.h"

TEST(passes) { ASSERT_EQ(0, 0); }
TEST(skips) { SKIP(return, "no such device here"); }
TEST(fails) { ASSERT_EQ(1, getpid() > 0 ? 2 : 1); }

FIXTURE(slow) {};
FIXTURE_SETUP(slow) {}
FIXTURE_TEARDOWN(slow) {}
TEST_F_TIMEOUT(slow, hangs, 2) { pause(); }
TEST_F_TIMEOUT(slow, sleeps, 600) { pause(); }

TEST_HARNESS_MAIN
