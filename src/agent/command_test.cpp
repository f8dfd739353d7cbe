// run_command and run_checked: input, output capture, failures and timeouts.
#include "agent/command.hpp"

#include <gtest/gtest.h>

namespace wharf::agent {
namespace {

using namespace std::chrono_literals;

TEST(CommandTest, FeedsInputAndCapturesOutput) {
  auto output = run_command({"sh", "-c", "cat; echo oops >&2; exit 3"}, "line 1\nline 2\n");
  ASSERT_TRUE(output.has_value()) << output.error().message;
  EXPECT_EQ(output->status.exit_code, 3);
  EXPECT_EQ(output->out, "line 1\nline 2\n");
  EXPECT_EQ(output->err, "oops\n");
}

TEST(CommandTest, CheckedFailureNamesTheCommandAndItsStderr) {
  auto output = run_checked({"sh", "-c", "echo 'no such device' >&2; exit 2"});
  ASSERT_FALSE(output.has_value());
  EXPECT_EQ(output.error().message,
            "`sh -c echo 'no such device' >&2; exit 2` failed (exit 2): no such device");
  EXPECT_EQ(run_checked({"echo", "fine"}).value_or("?"), "fine\n");
}

TEST(CommandTest, MissingProgramAndTimeoutAreErrors) {
  auto missing = run_command({"wharf-no-such-program"});
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("wharf-no-such-program"), std::string::npos);
  auto slow = run_command({"sleep", "10"}, {}, 50ms);
  ASSERT_FALSE(slow.has_value());
  EXPECT_NE(slow.error().message.find("did not finish within 50 ms"), std::string::npos)
      << slow.error().message;
}

}  // namespace
}  // namespace wharf::agent
