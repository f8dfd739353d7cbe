// Helpers shared by the agent's unit tests: tars built with libarchive's writer, a scratch data
// directory that is unmounted and removed after each test.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "agent/layer_unpack.hpp"
#include "agent/layout.hpp"
#include "agent/remove_tree.hpp"
#include "agent/rootfs.hpp"
#include "oci/digest.hpp"

namespace wharf::agent::testkit {

namespace fs = std::filesystem;

inline constexpr std::int64_t kEntryMtime = 1700000000;  // 2023-11-14

struct TarEntry {
  std::string path;
  unsigned type = AE_IFREG;  // AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFIFO, AE_IFCHR, AE_IFBLK
  mode_t perm = 0644;
  std::string content{};
  std::string symlink{};   // the target, for AE_IFLNK
  std::string hardlink{};  // when set, the entry is a hard link to this path
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::int64_t mtime = kEntryMtime;
  unsigned rdev_major = 0;
  unsigned rdev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs{};
};

enum class TarCompression { kNone, kGzip, kZstd, kXz };

inline la_ssize_t append_to_string(archive*, void* client, const void* buffer, size_t length) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

// A pax tar of `entries`, uncompressed, written as given (no path is cleaned).
inline std::string make_tar(const std::vector<TarEntry>& entries) {
  std::string tar;
  archive* writer = archive_write_new();
  archive_write_set_format_pax_restricted(writer);
  EXPECT_EQ(archive_write_open(writer, &tar, nullptr, append_to_string, nullptr), ARCHIVE_OK);
  for (const TarEntry& spec : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, spec.path.c_str());
    archive_entry_set_filetype(entry, spec.type);
    archive_entry_set_perm(entry, spec.perm);
    archive_entry_set_uid(entry, spec.uid);
    archive_entry_set_gid(entry, spec.gid);
    archive_entry_set_mtime(entry, spec.mtime, 0);
    archive_entry_set_size(entry, static_cast<la_int64_t>(spec.content.size()));
    if (!spec.symlink.empty()) archive_entry_set_symlink(entry, spec.symlink.c_str());
    if (!spec.hardlink.empty()) archive_entry_set_hardlink(entry, spec.hardlink.c_str());
    if (spec.type == AE_IFCHR || spec.type == AE_IFBLK) {
      archive_entry_set_rdevmajor(entry, spec.rdev_major);
      archive_entry_set_rdevminor(entry, spec.rdev_minor);
    }
    for (const auto& [name, value] : spec.xattrs) {
      archive_entry_xattr_add_entry(entry, name.c_str(), value.data(), value.size());
    }
    EXPECT_EQ(archive_write_header(writer, entry), ARCHIVE_OK)
        << spec.path.substr(0, 80) << ": " << archive_error_string(writer);
    if (!spec.content.empty()) {
      EXPECT_EQ(archive_write_data(writer, spec.content.data(), spec.content.size()),
                static_cast<la_ssize_t>(spec.content.size()));
    }
    archive_entry_free(entry);
  }
  EXPECT_EQ(archive_write_close(writer), ARCHIVE_OK);
  archive_write_free(writer);
  return tar;
}

// `bytes` compressed as one stream (libarchive's raw format), without block padding.
inline std::string compress(const std::string& bytes, TarCompression compression) {
  if (compression == TarCompression::kNone) return bytes;
  std::string out;
  archive* writer = archive_write_new();
  archive_write_set_format_raw(writer);
  if (compression == TarCompression::kGzip) archive_write_add_filter_gzip(writer);
  if (compression == TarCompression::kZstd) archive_write_add_filter_zstd(writer);
  if (compression == TarCompression::kXz) archive_write_add_filter_xz(writer);
  archive_write_set_bytes_per_block(writer, 0);
  EXPECT_EQ(archive_write_open(writer, &out, nullptr, append_to_string, nullptr), ARCHIVE_OK);
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, "layer.tar");
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_entry_set_size(entry, static_cast<la_int64_t>(bytes.size()));
  EXPECT_EQ(archive_write_header(writer, entry), ARCHIVE_OK);
  EXPECT_EQ(archive_write_data(writer, bytes.data(), bytes.size()),
            static_cast<la_ssize_t>(bytes.size()));
  archive_entry_free(entry);
  EXPECT_EQ(archive_write_close(writer), ARCHIVE_OK);
  archive_write_free(writer);
  return out;
}

inline std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// The mount points under `dir` in this mount namespace, in mountinfo order.
inline std::vector<fs::path> mounts_under(const fs::path& dir) {
  std::vector<fs::path> found;
  for (const fs::path& point : parse_mount_points(read_file("/proc/self/mountinfo"))) {
    auto relative = point.lexically_relative(dir);
    if (!relative.empty() && *relative.begin() != "..") found.push_back(point);
  }
  return found;
}

// Whether `path` is on an ext2/3/4 file system (they share the magic number).
inline bool on_ext4(const fs::path& path) {
  struct statfs info {};
  return ::statfs(path.c_str(), &info) == 0 && info.f_type == EXT4_SUPER_MAGIC;
}

// Whether directory `dir` carries the top-directory flag (chattr +T).
inline bool is_top_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool read = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  ::close(fd);
  return read && (flags & FS_TOPDIR_FL) != 0;
}

// A fresh data directory per test; TearDown unmounts whatever a test left mounted under it
// (even after a failed assertion) and removes it.
class DataDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string name = "/tmp/wharf-agent-test-XXXXXX";
    ASSERT_NE(mkdtemp(name.data()), nullptr);
    root_ = name;
    auto layout = Layout::create(root_ / "data");
    ASSERT_TRUE(layout.has_value()) << layout.error().message;
    layout_.emplace(std::move(*layout));
    fs::create_directories(root_ / "blobs");
  }

  void TearDown() override {
    if (root_.empty()) return;
    auto mounts = mounts_under(root_);
    for (auto point = mounts.rbegin(); point != mounts.rend(); ++point) {
      umount2(point->c_str(), MNT_DETACH);
    }
    auto removed = remove_tree(root_);
    EXPECT_TRUE(removed.has_value()) << removed.error().message;
  }

  const Layout& layout() const { return *layout_; }

  fs::path write_blob(const std::string& name, const std::string& bytes) {
    fs::path path = root_ / "blobs" / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // Unpacks a plain tar of `entries`; fails the test on error.
  oci::Digest unpack(const std::string& name, const std::vector<TarEntry>& entries) {
    auto unpacked = unpack_layer(layout(), write_blob(name, make_tar(entries)), std::nullopt);
    EXPECT_TRUE(unpacked.has_value()) << unpacked.error().message;
    return unpacked ? unpacked->diff_id : oci::Digest{};
  }

  // Entries directly in a directory, or an empty list when it is missing.
  static std::vector<std::string> list(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
      names.push_back(entry.path().filename());
    }
    return names;
  }

  fs::path root_;
  std::optional<Layout> layout_;
};

}  // namespace wharf::agent::testkit
