// SpareDirs: trees made ahead, claimed by a rename, refilled in the background, and found again
// by the next agent.
#include "agent/spare_dirs.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "agent/test_layers.hpp"

namespace wharf::agent {
namespace {

namespace fs = std::filesystem;
using testkit::DataDirTest;

std::vector<SpareShape> shapes() {
  return {SpareShape{0711, {}, {{"task.json.0", 0600}, {"task.json.1", 0600}}},
          SpareShape{0711,
                     {{"upper", 0700}, {"work", 0700}, {"logs", 0755}},
                     {{"logs/stdout", 0640}, {"logs/stderr", 0640}}}};
}

mode_t mode_of(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::lstat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

// On ext4 the spares' directory is a top directory (chattr +T): each spare tree gets a block
// group of its own choosing, away from the inodes the last launches freed.
TEST_F(DataDirTest, SparesDirectorySpreadsItsTreesOnExt4) {
  if (!testkit::on_ext4(root_)) GTEST_SKIP() << "the test's directory is not on ext4";
  SpareDirs spares(root_ / "spares", shapes(), 1);
  ASSERT_TRUE(spares.load().has_value());
  EXPECT_TRUE(testkit::is_top_directory(root_ / "spares"));
  ASSERT_TRUE(spares.load().has_value());  // again: already marked
}

TEST_F(DataDirTest, SparesAreClaimedByRenameAndRefilled) {
  SpareDirs spares(root_ / "spares", shapes(), 2);
  EXPECT_FALSE(spares.claim(0, root_ / "early"));  // not loaded: none ready
  ASSERT_TRUE(spares.load().has_value());
  ASSERT_TRUE(spares.fill().has_value());
  EXPECT_EQ(spares.ready(0), 2u);
  EXPECT_EQ(spares.ready(1), 2u);

  fs::create_directories(root_ / "containers");
  fs::path task = root_ / "containers" / "t1";
  ASSERT_TRUE(spares.claim(0, task));
  EXPECT_EQ(mode_of(task), 0711u);
  EXPECT_EQ(mode_of(task / "task.json.0"), 0600u);
  EXPECT_EQ(fs::file_size(task / "task.json.1"), 0u);

  fs::path container = task / "main";
  ASSERT_TRUE(spares.claim(1, container));
  EXPECT_EQ(mode_of(container / "upper"), 0700u);
  EXPECT_EQ(mode_of(container / "work"), 0700u);
  EXPECT_TRUE(fs::is_empty(container / "upper"));
  EXPECT_EQ(mode_of(container / "logs" / "stdout"), 0640u);
  EXPECT_EQ(fs::file_size(container / "logs" / "stderr"), 0u);

  // Never over what is there, even an empty directory; the spare stays ready.
  fs::create_directories(root_ / "containers" / "t2");
  EXPECT_FALSE(spares.claim(0, root_ / "containers" / "t2"));
  EXPECT_TRUE(fs::is_empty(root_ / "containers" / "t2"));

  // New ones replace those claimed.
  ASSERT_TRUE(spares.fill().has_value());
  EXPECT_EQ(spares.ready(0), 2u);
  EXPECT_EQ(spares.ready(1), 2u);
  EXPECT_FALSE(spares.claim(2, root_ / "no-such-kind"));
}

TEST_F(DataDirTest, SparesOfAnEarlierAgentAreKeptAndHalfMadeOnesRemoved) {
  {
    SpareDirs first(root_ / "spares", shapes(), 1);
    ASSERT_TRUE(first.load().has_value());
    ASSERT_TRUE(first.fill().has_value());
  }
  // A crash part-way through making one, and something that is not a spare.
  fs::create_directories(root_ / "spares" / ".1-9" / "upper");
  std::ofstream(root_ / "spares" / "notes.txt") << "kept";
  std::set<std::string> before;
  for (const auto& entry : fs::directory_iterator(root_ / "spares")) {
    before.insert(entry.path().filename().string());
  }

  SpareDirs second(root_ / "spares", shapes(), 1);
  ASSERT_TRUE(second.load().has_value());
  EXPECT_EQ(second.ready(0), 1u);  // the earlier agent's, at once
  EXPECT_EQ(second.ready(1), 1u);
  EXPECT_FALSE(fs::exists(root_ / "spares" / ".1-9"));
  EXPECT_TRUE(fs::exists(root_ / "spares" / "notes.txt"));
  EXPECT_TRUE(before.contains("0-0"));  // the first agent made a task's, then a container's
  EXPECT_TRUE(before.contains("1-1"));
  ASSERT_TRUE(second.claim(1, root_ / "claimed"));
  EXPECT_TRUE(fs::is_directory(root_ / "claimed" / "work"));
  // The new one is numbered after the earlier agent's, never over them.
  ASSERT_TRUE(second.fill().has_value());
  EXPECT_TRUE(fs::exists(root_ / "spares" / "1-2"));
  EXPECT_TRUE(fs::exists(root_ / "spares" / "0-0"));
}

TEST_F(DataDirTest, SparesAreRefilledByAThreadOfTheirOwn) {
  SpareDirs spares(root_ / "spares", shapes(), 2);
  ASSERT_TRUE(spares.start().has_value());
  // At idle priority: on a busy machine it may take a while.
  auto all_ready = [&] {  // within 60 s
    for (int tries = 0; tries < 6000; ++tries) {
      if (spares.ready(0) == 2 && spares.ready(1) == 2) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  ASSERT_TRUE(all_ready());
  ASSERT_TRUE(spares.claim(1, root_ / "claimed"));
  EXPECT_TRUE(all_ready());
}

}  // namespace
}  // namespace wharf::agent
