// Cgroup detection from mountinfo, cgroup paths, and the limit writes of each backend.
#include "agent/cgroup.hpp"

#include <gtest/gtest.h>

namespace wharf::agent {
namespace {

// Debian 12 in hybrid mode, cpu and cpuacct mounted apart (this test host's layout).
constexpr std::string_view kHybrid =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

// A systemd host on cgroup v1 with the usual co-mounts, and an escaped mount point.
constexpr std::string_view kV1CoMounted =
    "25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
    "26 24 0:23 / /sys/fs/cgroup/memory rw shared:10 - cgroup cgroup rw,memory\n"
    "27 24 0:24 / /sys/fs/cgroup/my\\040pids rw shared:11 - cgroup cgroup rw,pids\n";

constexpr std::string_view kV2 =
    "22 1 259:1 / / rw,relatime - ext4 /dev/root rw\n"
    "26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

TEST(CgroupMounts, DetectsTheVersionFromMountinfo) {
  auto hybrid = parse_cgroup_mounts(kHybrid);
  ASSERT_TRUE(hybrid.has_value()) << hybrid.error().message;
  EXPECT_EQ(hybrid->version, CgroupVersion::kV1);
  EXPECT_EQ(hybrid->v1.at("cpu"), "/sys/fs/cgroup/cpu");
  EXPECT_EQ(hybrid->v1.at("memory"), "/sys/fs/cgroup/memory");
  EXPECT_EQ(hybrid->v1.at("name=systemd"), "/sys/fs/cgroup/systemd");
  EXPECT_FALSE(hybrid->v1.contains("xattr"));
  EXPECT_EQ(hybrid->unified, "/sys/fs/cgroup/unified");

  auto co_mounted = parse_cgroup_mounts(kV1CoMounted);
  ASSERT_TRUE(co_mounted.has_value()) << co_mounted.error().message;
  EXPECT_EQ(co_mounted->v1.at("cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(co_mounted->v1.at("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(co_mounted->v1.at("pids"), "/sys/fs/cgroup/my pids");
  EXPECT_TRUE(co_mounted->unified.empty());

  auto v2 = parse_cgroup_mounts(kV2);
  ASSERT_TRUE(v2.has_value()) << v2.error().message;
  EXPECT_EQ(v2->version, CgroupVersion::kV2);
  EXPECT_TRUE(v2->v1.empty());
  EXPECT_EQ(v2->unified, "/sys/fs/cgroup");

  auto none = parse_cgroup_mounts("22 1 259:1 / / rw - ext4 /dev/root rw\n");
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, ErrorCode::kUnsupportedFeature);
}

TEST(CgroupLimits, CpuUnitsBecomeAQuota) {
  struct Case {
    std::int64_t units;
    std::int64_t quota_us;
  };
  for (auto [units, quota_us] : {Case{1024, 100'000}, Case{512, 50'000}, Case{256, 25'000},
                                 Case{4096, 400'000}, Case{2, 1'000}, Case{10, 1'000}}) {
    EXPECT_EQ(cpu_quota(units), (CpuQuota{quota_us, 100'000})) << units;
  }
}

TEST(CgroupLimits, EachBackendWritesItsOwnFiles) {
  TaskCgroupLimits limits{512, 256};
  EXPECT_EQ(cgroup_v1_backend().limit_writes(limits),
            (std::vector<CgroupFileWrite>{{"cpu", "cpu.cfs_period_us", "100000"},
                                          {"cpu", "cpu.cfs_quota_us", "50000"},
                                          {"memory", "memory.limit_in_bytes", "268435456"}}));
  EXPECT_EQ(cgroup_v2_backend().limit_writes(limits),
            (std::vector<CgroupFileWrite>{{"", "cpu.max", "50000 100000"},
                                          {"", "memory.max", "268435456"}}));
  EXPECT_TRUE(cgroup_v1_backend().limit_writes({}).empty());
  EXPECT_EQ(cgroup_v2_backend().limit_writes({std::nullopt, 16}),
            (std::vector<CgroupFileWrite>{{"", "memory.max", "16777216"}}));
}

TEST(CgroupPaths, TaskAndContainerPaths) {
  EXPECT_EQ(task_cgroup_path("3f2c"), "/wharf/3f2c");
  EXPECT_EQ(container_cgroup_path("/wharf/3f2c", "web"), "/wharf/3f2c/web");
  for (const char* good : {"/wharf/3f2c", "/wharf/3f2c/web", "/x"}) {
    EXPECT_TRUE(validate_cgroup_path(good).has_value()) << good;
  }
  for (const char* bad :
       {"", "/", "wharf/t", "/wharf/../etc", "/wharf//t", "/wharf/t/", "/wharf/a b", "/wharf/."}) {
    EXPECT_FALSE(validate_cgroup_path(bad).has_value()) << bad;
  }
}

TEST(CgroupCounters, FindsOomKills) {
  EXPECT_EQ(find_counter("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"), 3u);
  EXPECT_EQ(
      find_counter("low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n", "oom_kill"), 1u);
  EXPECT_EQ(find_counter("oom_kill_disable 0\n", "oom_kill"), std::nullopt);
  EXPECT_EQ(find_counter("oom_kill x\n", "oom_kill"), std::nullopt);
}

}  // namespace
}  // namespace wharf::agent
