// Cgroup detection from mountinfo, cgroup paths, and the limit writes of each backend.
#include "agent/cgroup.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

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

TEST(CgroupFavorDynmods, RemountKeepsEveryOtherOption) {
  // This host: relatime only, no hierarchy options.
  auto hybrid = favordynmods_remount(kHybrid, "/sys/fs/cgroup/unified");
  ASSERT_TRUE(hybrid.has_value()) << hybrid.error().message;
  ASSERT_TRUE(hybrid->has_value());
  EXPECT_EQ(**hybrid, (CgroupRemount{MS_REMOUNT | MS_RELATIME, "favordynmods"}));

  // systemd's: the mount's flags stay, and so do nsdelegate and memory_recursiveprot (a remount
  // without them would turn them off). No noatime or relatime means strictatime.
  auto v2 = favordynmods_remount(kV2, "/sys/fs/cgroup");
  ASSERT_TRUE(v2.has_value()) << v2.error().message;
  ASSERT_TRUE(v2->has_value());
  EXPECT_EQ(**v2, (CgroupRemount{MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_STRICTATIME,
                                 "nsdelegate,memory_recursiveprot,favordynmods"}));

  auto read_only = favordynmods_remount(
      "26 22 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec,noatime - cgroup2 cgroup2 ro\n",
      "/sys/fs/cgroup");
  ASSERT_TRUE(read_only.has_value()) << read_only.error().message;
  ASSERT_TRUE(read_only->has_value());
  EXPECT_EQ(**read_only,
            (CgroupRemount{MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME,
                           "favordynmods"}));

  // On already: nothing to do.
  auto on = favordynmods_remount(
      "26 22 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,favordynmods\n",
      "/sys/fs/cgroup");
  ASSERT_TRUE(on.has_value()) << on.error().message;
  EXPECT_FALSE(on->has_value());

  // Only a cgroup2 mount at that very point counts.
  auto v1_there = favordynmods_remount(kHybrid, "/sys/fs/cgroup/cpu");
  ASSERT_FALSE(v1_there.has_value());
  EXPECT_EQ(v1_there.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(favordynmods_remount(kV2, "/sys/fs/cgroup/unified").has_value());
}

// The option line of the cgroup2 mount at `point` (mount flags, then the hierarchy's).
std::string cgroup2_options(const std::filesystem::path& point) {
  std::ifstream file("/proc/self/mountinfo");
  std::string line;
  while (std::getline(file, line)) {
    std::istringstream words(line);
    std::vector<std::string> fields;
    for (std::string word; words >> word;) fields.push_back(word);
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 6 || std::distance(dash, fields.end()) < 4) continue;
    if (fields[4] == point.string() && *(dash + 1) == "cgroup2") {
      return fields[5] + " " + *(dash + 3);
    }
  }
  return "";
}

TEST(CgroupFavorDynmods, TurnsItOnOnThisHost) {
  if (geteuid() != 0) GTEST_SKIP() << "remounting cgroup2 needs root";
  auto mounts = detect_cgroup_mounts();
  ASSERT_TRUE(mounts.has_value()) << mounts.error().message;
  if (mounts->unified.empty()) GTEST_SKIP() << "no cgroup2 mount here";
  std::string before = cgroup2_options(mounts->unified);
  if (!favor_dynamic_cgroup_moves(*mounts)) GTEST_SKIP() << "the kernel has no favordynmods";
  std::string after = cgroup2_options(mounts->unified);
  EXPECT_NE(after.find("favordynmods"), std::string::npos) << after;
  // Every option that was there is still there, in order; favordynmods is the only addition.
  auto without = [](std::string text) {
    for (std::string_view word : {",favordynmods", "favordynmods,"}) {
      if (auto at = text.find(word); at != std::string::npos) text.erase(at, word.size());
    }
    return text;
  };
  EXPECT_EQ(without(after), without(before));
  EXPECT_TRUE(favor_dynamic_cgroup_moves(*mounts));  // on already: nothing to do
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
