// Container rootfs: real overlay mounts over unpacked layers (skipped where overlay can't mount).
#include "agent/rootfs.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "agent/test_layers.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {
namespace {

namespace fs = std::filesystem;
using testkit::DataDirTest;
using testkit::TarEntry;

const ContainerRef kWeb{"task-1", "web"};

class RootfsTest : public DataDirTest {
 protected:
  // Mounts or skips the test when this host cannot mount overlayfs at all.
  Result<fs::path> mount_or_skip(const ContainerRef& container,
                                 std::span<const oci::Digest> diff_ids) {
    auto merged = mount_rootfs(layout(), container, diff_ids);
    if (!merged && merged.error().message.find("mount(2) overlay") != std::string::npos &&
        !overlay_works()) {
      skip_reason_ = merged.error().message;
    }
    return merged;
  }

  // Whether a minimal overlay mounts here (root, overlay module, a file system that takes
  // trusted xattrs under the data dir).
  bool overlay_works() {
    fs::path probe = root_ / "probe";
    for (const char* dir : {"lower", "upper", "work", "merged"})
      fs::create_directories(probe / dir);
    std::string options = "lowerdir=" + (probe / "lower").string() +
                          ",upperdir=" + (probe / "upper").string() +
                          ",workdir=" + (probe / "work").string();
    if (mount("overlay", (probe / "merged").c_str(), "overlay", 0, options.c_str()) != 0) {
      return false;
    }
    umount2((probe / "merged").c_str(), MNT_DETACH);
    return true;
  }

  std::string skip_reason_;
};

#define MOUNT_OR_SKIP(merged, container, diff_ids)                                            \
  auto merged = mount_or_skip(container, diff_ids);                                           \
  if (!skip_reason_.empty()) GTEST_SKIP() << "overlayfs cannot mount here: " << skip_reason_; \
  ASSERT_TRUE(merged.has_value()) << merged.error().message

TEST_F(RootfsTest, WhiteoutsAndOpaqueDirectoriesHideLowerLayers) {
  std::vector<oci::Digest> diff_ids{
      unpack("base", {{.path = "a/keep", .content = "keep"},
                      {.path = "a/gone", .content = "gone"},
                      {.path = "opq/old", .content = "old"},
                      {.path = "b/x", .content = "x"},
                      {.path = "lowerfile", .content = "lower"}}),
      unpack("top", {{.path = "a/.wh.gone"},
                     {.path = "opq/.wh..wh..opq"},
                     {.path = "opq/new", .content = "new"},
                     {.path = "c", .content = "c"},
                     {.path = ".wh.lowerfile"}}),
  };
  MOUNT_OR_SKIP(merged, kWeb, diff_ids);
  EXPECT_EQ(*merged, layout().container_merged_dir(kWeb));
  EXPECT_TRUE(rootfs_mounted(layout(), kWeb));
  EXPECT_EQ(testkit::read_file(*merged / "a/keep"), "keep");
  EXPECT_FALSE(fs::exists(*merged / "a/gone"));
  EXPECT_FALSE(fs::exists(*merged / "opq/old"));
  EXPECT_EQ(testkit::read_file(*merged / "opq/new"), "new");
  EXPECT_EQ(testkit::read_file(*merged / "b/x"), "x");
  EXPECT_EQ(testkit::read_file(*merged / "c"), "c");
  EXPECT_FALSE(fs::exists(*merged / "lowerfile"));

  std::ofstream(*merged / "written") << "by the container";
  fs::remove(*merged / "a/keep");
  EXPECT_EQ(testkit::read_file(layout().container_upper_dir(kWeb) / "written"), "by the container");
  EXPECT_EQ(testkit::read_file(layout().layer_dir(diff_ids[0]) / "a/keep"), "keep");

  ASSERT_TRUE(remove_rootfs(layout(), kWeb).has_value());
  EXPECT_FALSE(rootfs_mounted(layout(), kWeb));
  EXPECT_FALSE(fs::exists(layout().container_dir(kWeb)));
  EXPECT_FALSE(fs::exists(layout().container_run_dir(kWeb)));
  EXPECT_TRUE(testkit::mounts_under(root_).empty());
  EXPECT_TRUE(layer_unpacked(layout(), diff_ids[0]));
  EXPECT_TRUE(remove_rootfs(layout(), kWeb).has_value());  // already gone
}

TEST_F(RootfsTest, MountPointsTheImageLacksComeFromItsInitLayer) {
  std::vector<oci::Digest> diff_ids{unpack("bare", {{.path = "bin/sh", .content = "sh"}})};
  MOUNT_OR_SKIP(merged, kWeb, diff_ids);
  for (const char* dir : {"proc", "sys", "dev"}) EXPECT_TRUE(fs::is_directory(*merged / dir));
  for (const char* file : {"etc/hosts", "etc/hostname", "etc/resolv.conf"}) {
    EXPECT_TRUE(fs::is_regular_file(*merged / file)) << file;
  }
  // Not made in the container's own layer: nothing new there until the container writes.
  EXPECT_TRUE(list(layout().container_upper_dir(kWeb)).empty());
  ASSERT_TRUE(remove_rootfs(layout(), kWeb).has_value());
}

TEST_F(RootfsTest, MountingAgainKeepsTheMountAndRootTakesTheTopLayersMode) {
  std::vector<oci::Digest> diff_ids{
      unpack("base", {{.path = "f", .content = "f"}}),
      unpack("top", {{.path = "./", .type = AE_IFDIR, .perm = 0750, .uid = 5}}),
  };
  MOUNT_OR_SKIP(merged, kWeb, diff_ids);
  auto again = mount_rootfs(layout(), kWeb, diff_ids);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(testkit::mounts_under(root_).size(), 1u);
  struct stat root {};
  ASSERT_EQ(stat(merged->c_str(), &root), 0);
  EXPECT_EQ(root.st_mode, S_IFDIR | 0750);
  EXPECT_EQ(root.st_uid, 5u);
  EXPECT_EQ(testkit::read_file(*merged / "f"), "f");
}

TEST_F(RootfsTest, RefusesMissingLayersAndBadNames) {
  oci::Digest missing = oci::digest_of("never unpacked");
  std::vector<oci::Digest> diff_ids{missing};
  auto merged = mount_rootfs(layout(), kWeb, diff_ids);
  ASSERT_FALSE(merged.has_value());
  EXPECT_EQ(merged.error().code, ErrorCode::kNotFound);
  EXPECT_NE(merged.error().message.find(missing.str()), std::string::npos);

  merged = mount_rootfs(layout(), kWeb, {});
  ASSERT_FALSE(merged.has_value());
  EXPECT_EQ(merged.error().code, ErrorCode::kInvalidParameter);

  merged = mount_rootfs(layout(), {"../..", "web"}, diff_ids);
  ASSERT_FALSE(merged.has_value());
  EXPECT_EQ(merged.error().code, ErrorCode::kInvalidParameter);
  EXPECT_FALSE(remove_rootfs(layout(), {"task", "../../x"}).has_value());
  EXPECT_FALSE(fs::exists(layout().containers_dir()));
}

TEST_F(RootfsTest, BusyRootfsIsNotRemoved) {
  std::vector<oci::Digest> diff_ids{unpack("base", {{.path = "f", .content = "f"}})};
  MOUNT_OR_SKIP(merged, kWeb, diff_ids);
  {
    UniqueFd user(open((*merged / "f").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(user);
    auto removed = remove_rootfs(layout(), kWeb);
    ASSERT_FALSE(removed.has_value());
    EXPECT_EQ(removed.error().code, ErrorCode::kResourceInUse);
    EXPECT_TRUE(rootfs_mounted(layout(), kWeb));
    EXPECT_TRUE(fs::exists(layout().container_upper_dir(kWeb)));
  }
  ASSERT_TRUE(remove_rootfs(layout(), kWeb).has_value());
  EXPECT_FALSE(fs::exists(layout().container_dir(kWeb)));
}

// A process in another mount namespace (a running container) keeps the rootfs after the host's
// mount is detached; the host's table no longer lists it, and removal still works.
TEST_F(RootfsTest, DetachingLeavesTheContainersCopy) {
  std::vector<oci::Digest> diff_ids{unpack("base", {{.path = "f", .content = "kept"}})};
  MOUNT_OR_SKIP(merged, kWeb, diff_ids);
  fs::path out = root_ / "seen";
  std::string script = "sleep 0.5; cat " + (*merged / "f").string() + " > " + out.string();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr))
      _exit(2);
    execl("/bin/sh", "sh", "-c", script.c_str(), nullptr);
    _exit(3);
  }
  usleep(200 * 1000);  // the child has its copy of the mount table
  ASSERT_TRUE(detach_rootfs(layout(), kWeb).has_value());
  EXPECT_FALSE(rootfs_mounted(layout(), kWeb));
  EXPECT_TRUE(detach_rootfs(layout(), kWeb).has_value());  // nothing left to detach
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(testkit::read_file(out), "kept");
  ASSERT_TRUE(remove_rootfs(layout(), kWeb).has_value());
  EXPECT_FALSE(fs::exists(layout().container_dir(kWeb)));
}

// Enough layers that the absolute lowerdir paths overflow one page of mount options (45), and
// that even the relative ones do (120).
class ManyLayers : public RootfsTest, public ::testing::WithParamInterface<int> {};

TEST_P(ManyLayers, AllLayersStackInOrder) {
  std::vector<oci::Digest> diff_ids;
  for (int layer_idx = 0; layer_idx < GetParam(); ++layer_idx) {
    std::string index = std::to_string(layer_idx);
    diff_ids.push_back(unpack("layer" + index, {{.path = "top", .content = index},
                                                {.path = "only-" + index, .content = index}}));
  }
  auto merged = mount_or_skip(kWeb, diff_ids);
  if (!skip_reason_.empty()) GTEST_SKIP() << "overlayfs cannot mount here: " << skip_reason_;
  if (!merged && merged.error().message.find("(Linux 6.5 or later)") != std::string::npos) {
    GTEST_SKIP() << "this kernel can't stack this many layers: " << merged.error().message;
  }
  ASSERT_TRUE(merged.has_value()) << merged.error().message;
  EXPECT_EQ(testkit::read_file(*merged / "top"), std::to_string(GetParam() - 1));
  for (int layer_idx = 0; layer_idx < GetParam(); ++layer_idx) {
    std::string index = std::to_string(layer_idx);
    EXPECT_EQ(testkit::read_file(*merged / ("only-" + index)), index);
  }
  ASSERT_TRUE(remove_rootfs(layout(), kWeb).has_value());
}

INSTANTIATE_TEST_SUITE_P(PastThePageLimit, ManyLayers, ::testing::Values(45, 120));

TEST_F(RootfsTest, StaleMountsAreUnmountedLiveOnesKept) {
  std::vector<oci::Digest> diff_ids{unpack("base", {{.path = "f", .content = "f"}})};
  ContainerRef live{"task-1", "web"};
  ContainerRef sidecar{"task-1", "sidecar"};
  ContainerRef gone{"task-2", "web"};
  MOUNT_OR_SKIP(live_merged, live, diff_ids);
  ASSERT_TRUE(mount_rootfs(layout(), sidecar, diff_ids).has_value());
  ASSERT_TRUE(mount_rootfs(layout(), gone, diff_ids).has_value());
  // Mounts on a task's own directory: kept while the task has a live container.
  fs::path live_task_mount = layout().task_run_dir("task-4");
  fs::path gone_task_mount = layout().task_run_dir("task-3");
  fs::create_directories(live_task_mount);
  fs::create_directories(gone_task_mount);
  ASSERT_EQ(mount("tmpfs", live_task_mount.c_str(), "tmpfs", 0, nullptr), 0);
  ASSERT_EQ(mount("tmpfs", gone_task_mount.c_str(), "tmpfs", 0, nullptr), 0);

  std::vector<ContainerRef> live_containers{live, {"task-4", "app"}};
  auto unmounted = unmount_stale_mounts(layout(), live_containers);
  ASSERT_TRUE(unmounted.has_value()) << unmounted.error().message;
  std::vector<fs::path> expected{layout().container_merged_dir(sidecar),
                                 layout().container_merged_dir(gone), gone_task_mount};
  std::ranges::sort(*unmounted);
  std::ranges::sort(expected);
  EXPECT_EQ(*unmounted, expected);
  EXPECT_TRUE(rootfs_mounted(layout(), live));
  EXPECT_FALSE(rootfs_mounted(layout(), sidecar));
  EXPECT_EQ(testkit::mounts_under(root_),
            (std::vector<fs::path>{layout().container_merged_dir(live), live_task_mount}));

  for (const ContainerRef& container : {live, sidecar, gone}) {
    EXPECT_TRUE(remove_rootfs(layout(), container).has_value());
  }
  EXPECT_EQ(umount2(live_task_mount.c_str(), 0), 0);
}

bool on_tmpfs(const fs::path& path) {
  struct statfs on {};
  return statfs(path.c_str(), &on) == 0 && on.f_type == TMPFS_MAGIC;
}

TEST_F(DataDirTest, TheRunDirIsATmpfsThatGoesWithTheLastContainer) {
  auto layout = Layout::create(root_ / "data", root_ / "run");
  ASSERT_TRUE(layout.has_value()) << layout.error().message;
  ASSERT_FALSE(on_tmpfs(root_)) << "this test needs a data directory on a disk file system";

  auto opened = open_run_dir(*layout);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_TRUE(*opened);
  EXPECT_TRUE(on_tmpfs(layout->run_dir()));
  EXPECT_EQ(testkit::mounts_under(root_), std::vector<fs::path>{layout->run_dir()});
  auto again = open_run_dir(*layout);  // an agent that starts again keeps what it holds
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_FALSE(*again);
  EXPECT_EQ(testkit::mounts_under(root_).size(), 1u);

  // A container the runtime still knows, or a rootfs still mounted: it stays.
  fs::create_directories(layout->runtime_state_dir() / "c1");
  auto closed = close_run_dir(*layout);
  ASSERT_TRUE(closed.has_value()) << closed.error().message;
  EXPECT_FALSE(*closed);
  fs::remove(layout->runtime_state_dir() / "c1");
  fs::path rootfs = layout->container_merged_dir(kWeb);
  fs::create_directories(rootfs);
  ASSERT_EQ(mount("tmpfs", rootfs.c_str(), "tmpfs", 0, nullptr), 0);
  closed = close_run_dir(*layout);
  ASSERT_TRUE(closed.has_value()) << closed.error().message;
  EXPECT_FALSE(*closed);
  EXPECT_TRUE(on_tmpfs(layout->run_dir()));

  ASSERT_EQ(umount2(rootfs.c_str(), 0), 0);
  closed = close_run_dir(*layout);
  ASSERT_TRUE(closed.has_value()) << closed.error().message;
  EXPECT_TRUE(*closed);
  EXPECT_FALSE(fs::exists(layout->run_dir()));
  EXPECT_TRUE(testkit::mounts_under(root_).empty());
}

TEST_F(DataDirTest, ARunDirOnATmpfsAlreadyIsUsedAsItIs) {
  fs::create_directories(root_ / "run");
  ASSERT_EQ(mount("tmpfs", (root_ / "run").c_str(), "tmpfs", 0, nullptr), 0);  // like /run
  auto layout = Layout::create(root_ / "data", root_ / "run/wharf/i-1");
  ASSERT_TRUE(layout.has_value()) << layout.error().message;
  auto opened = open_run_dir(*layout);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_FALSE(*opened);
  EXPECT_EQ(testkit::mounts_under(root_), std::vector<fs::path>{root_ / "run"});
  std::ofstream(layout->run_dir() / "left") << "x";
  auto closed = close_run_dir(*layout);
  ASSERT_TRUE(closed.has_value()) << closed.error().message;
  EXPECT_TRUE(*closed);
  EXPECT_FALSE(fs::exists(layout->run_dir()));
  EXPECT_TRUE(fs::exists(root_ / "run/wharf"));
  EXPECT_EQ(umount2((root_ / "run").c_str(), 0), 0);
}

TEST(ParseMountPoints, ReadsTheFifthFieldAndUndoesEscapes) {
  std::string mountinfo =
      "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
      "98 27 0:50 / /var/lib/with\\040space/and\\134backslash rw - overlay overlay rw,lowerdir=x\n"
      "99 27 0:51 / /tmp/tab\\011here rw shared:5 - tmpfs tmpfs rw\n"
      "truncated line\n";
  EXPECT_EQ(
      parse_mount_points(mountinfo),
      (std::vector<fs::path>{"/proc", "/var/lib/with space/and\\backslash", "/tmp/tab\there"}));
}

}  // namespace
}  // namespace wharf::agent
