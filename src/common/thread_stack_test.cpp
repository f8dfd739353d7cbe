// Unit tests for ThreadStack: the pages a deep call left behind are given back.
#include "common/thread_stack.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

namespace wharf {
namespace {

// Touches about `depth` pages of stack below the caller.
[[gnu::noinline]] int go_deep(int depth) {
  volatile char page[4096];
  std::memset(const_cast<char*>(page), depth, sizeof page);
  if (depth <= 1) return page[100];
  return go_deep(depth - 1) + page[200];
}

TEST(ThreadStack, TrimGivesBackWhatADeepCallTouched) {
  std::size_t after_call = 0;
  std::size_t after_trim = 0;
  int sum = 0;
  std::thread thread([&] {
    ThreadStack stack;
    sum = go_deep(32);
    after_call = stack.resident_pages_below_here();
    stack.trim();
    after_trim = stack.resident_pages_below_here();
    sum += go_deep(4);  // the stack still works: pages come back zero-filled
  });
  thread.join();
  EXPECT_GT(sum, 0);
  EXPECT_GE(after_call, 30u);
  EXPECT_LE(after_trim, 1u);
}

}  // namespace
}  // namespace wharf
