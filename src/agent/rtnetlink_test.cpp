// Tests for the rtnetlink client against the kernel, in namespaces of their own.
#include "agent/rtnetlink.hpp"

#include <gtest/gtest.h>
#include <net/if.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/netns.hpp"

namespace wharf::agent {
namespace {

namespace fs = std::filesystem;

// Two fresh namespaces, removed again at the end of the test.
class RouteNetlinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    ASSERT_TRUE(ensure_shared_netns_dir().has_value());
    std::string prefix = "wharf-rtnl-test-" + std::to_string(getpid());
    for (const char* side : {"-a", "-b"}) {
      fs::path path = fs::path("/run/netns") / (prefix + side);
      auto made = create_netns(path);
      ASSERT_TRUE(made.has_value()) << made.error().message;
      paths_.push_back(path);
      namespaces_.push_back(std::move(*made));
    }
  }
  void TearDown() override {
    for (const fs::path& path : paths_) EXPECT_TRUE(remove_netns(path).has_value()) << path;
  }

  std::vector<fs::path> paths_;
  std::vector<NewNamespace> namespaces_;
};

TEST_F(RouteNetlinkTest, AVethRunsOnlyOnceBothEndsAreUp) {
  RouteNetlink& a = namespaces_[0].netlink;
  RouteNetlink& b = namespaces_[1].netlink;
  VethPair pair{
      "vtest-a", *parse_mac("0a:58:00:00:00:01"), "vtest-b", *parse_mac("0a:58:00:00:00:02"), 1500,
      0,         namespaces_[1].fd.get()};
  ASSERT_TRUE(a.add_veth_pair(pair).has_value());
  auto near = a.link_index("vtest-a");
  auto far = b.link_index("vtest-b");
  ASSERT_TRUE(near.has_value() && far.has_value());

  // The far end is down: no carrier, so the near end never runs.
  auto start = std::chrono::steady_clock::now();
  auto waited = a.await_link_running(*near, std::chrono::milliseconds(50));
  ASSERT_FALSE(waited.has_value());
  EXPECT_NE(waited.error().message.find("within 50 ms"), std::string::npos)
      << waited.error().message;
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));

  ASSERT_TRUE(b.set_link_up(*far).has_value());
  auto near_running = a.await_link_running(*near);
  EXPECT_TRUE(near_running.has_value()) << near_running.error().message;
  auto far_running = b.await_link_running(*far);
  EXPECT_TRUE(far_running.has_value()) << far_running.error().message;

  EXPECT_EQ(a.await_link_running(*near + 1000).error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace wharf::agent
