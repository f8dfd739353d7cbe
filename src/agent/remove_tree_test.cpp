// Tree removal: symlinks and mount points are not followed, and depth is not limited by open files
// or PATH_MAX.
#include "agent/remove_tree.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <fstream>

#include "agent/test_layers.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {
namespace {

namespace fs = std::filesystem;
using testkit::DataDirTest;

TEST_F(DataDirTest, RemoveTreeDoesNotFollowSymlinks) {
  fs::create_directories(root_ / "outside");
  std::ofstream(root_ / "outside/precious") << "keep";
  fs::create_directories(root_ / "tree/sub");
  fs::create_directory_symlink(root_ / "outside", root_ / "tree/sub/link");
  fs::create_directory_symlink("../../outside", root_ / "tree/rel");
  std::ofstream(root_ / "tree/sub/file") << "x";

  ASSERT_TRUE(remove_tree(root_ / "tree").has_value());
  EXPECT_FALSE(fs::exists(root_ / "tree"));
  EXPECT_EQ(testkit::read_file(root_ / "outside/precious"), "keep");
  EXPECT_TRUE(remove_tree(root_ / "tree").has_value());  // missing is fine
}

TEST_F(DataDirTest, RemoveTreeNeverReachesIntoAMount) {
  fs::create_directories(root_ / "tree/tmpfs");
  fs::create_directories(root_ / "tree/bind");
  fs::create_directories(root_ / "outside");
  std::ofstream(root_ / "outside/precious") << "keep";
  ASSERT_EQ(mount("tmpfs", (root_ / "tree/tmpfs").c_str(), "tmpfs", 0, nullptr), 0);
  std::ofstream(root_ / "tree/tmpfs/precious") << "keep";
  // A bind mount of the same file system: only the mount-root attribute tells it apart.
  ASSERT_EQ(
      mount((root_ / "outside").c_str(), (root_ / "tree/bind").c_str(), nullptr, MS_BIND, nullptr),
      0);

  for (const char* point : {"tree/tmpfs", "tree/bind"}) {
    auto removed = remove_tree(root_ / "tree");
    ASSERT_FALSE(removed.has_value());
    EXPECT_EQ(removed.error().code, ErrorCode::kResourceInUse);
    EXPECT_NE(removed.error().message.find("mounted"), std::string::npos)
        << removed.error().message;
    auto top = remove_tree(root_ / point);
    ASSERT_FALSE(top.has_value());  // nor when the mount point is the tree itself
    EXPECT_EQ(top.error().code, ErrorCode::kResourceInUse);
    EXPECT_EQ(testkit::read_file(root_ / point / "precious"), "keep");
    ASSERT_EQ(umount2((root_ / point).c_str(), 0), 0);
  }
  ASSERT_TRUE(remove_tree(root_ / "tree").has_value());
  EXPECT_FALSE(fs::exists(root_ / "tree"));
  EXPECT_EQ(testkit::read_file(root_ / "outside/precious"), "keep");
}

TEST_F(DataDirTest, RemoveTreeGoesDeeperThanPathMaxAndTheFdLimit) {
  // 200 levels of 100-byte names: twice PATH_MAX, and more directories than open files.
  constexpr int kDepth = 200;
  const std::string name(100, 'd');
  UniqueFd dir(open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (int level_idx = 0; level_idx < kDepth; ++level_idx) {
    ASSERT_EQ(mkdirat(dir.get(), name.c_str(), 0755), 0);
    dir.reset(openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dir);
  }
  UniqueFd(openat(dir.get(), "leaf", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  dir.reset();

  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit few = saved;
  few.rlim_cur = 64;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &few), 0);
  auto removed = remove_tree(root_ / name);
  setrlimit(RLIMIT_NOFILE, &saved);
  ASSERT_TRUE(removed.has_value()) << removed.error().message;
  EXPECT_FALSE(fs::exists(root_ / name));
}

}  // namespace
}  // namespace wharf::agent
