// The init layer: which mount points an image's merged layers lack, and the directory that adds
// them, made once.
#include "agent/init_layer.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "agent/test_layers.hpp"

namespace wharf::agent {
namespace {

namespace fs = std::filesystem;
using testkit::DataDirTest;
using testkit::TarEntry;

std::vector<std::string> paths(const std::vector<MountPoint>& points) {
  std::vector<std::string> out;
  for (const MountPoint& point : points) out.push_back(point.path);
  return out;
}

TEST_F(DataDirTest, MissingMountPointsFollowTheMergedView) {
  // Nothing at all: every one.
  oci::Digest bare = unpack("bare", {{.path = "bin/sh", .content = "sh"}});
  std::vector<fs::path> only_bare{layout().layer_dir(bare)};
  EXPECT_EQ(paths(missing_mount_points(only_bare)),
            (std::vector<std::string>{"proc", "sys", "dev", "etc/hosts", "etc/hostname",
                                      "etc/resolv.conf"}));

  // What a lower layer has counts unless a higher one whites it out or hides it under an
  // opaque directory.
  oci::Digest base = unpack("base", {{.path = "proc", .type = AE_IFDIR, .perm = 0555},
                                     {.path = "dev", .type = AE_IFDIR, .perm = 0755},
                                     {.path = "etc/hosts", .content = "127.0.0.1 base\n"}});
  oci::Digest top = unpack("top", {{.path = ".wh.dev"},
                                   {.path = "etc/.wh..wh..opq"},
                                   {.path = "etc/hostname", .content = "top\n"}});
  std::vector<fs::path> stacked{layout().layer_dir(top), layout().layer_dir(base)};
  EXPECT_EQ(paths(missing_mount_points(stacked)),
            (std::vector<std::string>{"sys", "dev", "etc/hosts", "etc/resolv.conf"}));
  // Without the top layer, the base's own.
  std::vector<fs::path> base_only{layout().layer_dir(base)};
  EXPECT_EQ(paths(missing_mount_points(base_only)),
            (std::vector<std::string>{"sys", "etc/hostname", "etc/resolv.conf"}));

  // A non-directory /etc, or a /proc that is a file, is left to the runtime.
  oci::Digest linked = unpack("linked", {{.path = "usr/etc", .type = AE_IFDIR, .perm = 0755},
                                         {.path = "etc", .type = AE_IFLNK, .symlink = "usr/etc"},
                                         {.path = "proc", .content = "not a directory"}});
  std::vector<fs::path> only_linked{layout().layer_dir(linked)};
  EXPECT_EQ(paths(missing_mount_points(only_linked)), (std::vector<std::string>{"sys", "dev"}));
}

TEST_F(DataDirTest, TheInitLayerIsMadeOnceWithTheImagesEtc) {
  std::vector<oci::Digest> diff_ids{
      unpack("image", {{.path = "etc", .type = AE_IFDIR, .perm = 0750, .uid = 1000, .gid = 1001},
                       {.path = "etc/passwd", .content = "root:x:0:0::/:/bin/sh\n"}})};
  auto made = ensure_init_layer(layout(), diff_ids);
  ASSERT_TRUE(made.has_value()) << made.error().message;
  EXPECT_EQ(made->parent_path(), layout().init_layers_dir());
  for (const char* dir : {"proc", "sys", "dev"}) EXPECT_TRUE(fs::is_directory(*made / dir)) << dir;
  for (const char* file : {"etc/hosts", "etc/hostname", "etc/resolv.conf"}) {
    EXPECT_TRUE(fs::is_regular_file(*made / file)) << file;
    EXPECT_EQ(fs::file_size(*made / file), 0u) << file;
  }
  EXPECT_FALSE(fs::exists(*made / "etc/passwd"));  // the image's, not copied
  struct stat etc {};
  ASSERT_EQ(::stat((*made / "etc").c_str(), &etc), 0);
  EXPECT_EQ(etc.st_uid, 1000u);  // what the merged /etc shows is the image's
  EXPECT_EQ(etc.st_gid, 1001u);
  EXPECT_EQ(etc.st_mode & 07777, 0750u);

  struct stat first {};
  ASSERT_EQ(::stat(made->c_str(), &first), 0);
  auto again = ensure_init_layer(layout(), diff_ids);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(*again, *made);
  struct stat second {};
  ASSERT_EQ(::stat(again->c_str(), &second), 0);
  EXPECT_EQ(second.st_ino, first.st_ino);  // not made again
  EXPECT_EQ(
      std::distance(fs::directory_iterator(layout().init_layers_dir()), fs::directory_iterator()),
      1);  // no half-made one left
}

}  // namespace
}  // namespace wharf::agent
