#include "agent/init_layer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <system_error>

#include "agent/remove_tree.hpp"
#include "common/crypto.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {
namespace fs = std::filesystem;

namespace {

// What the runtime mounts over; the files are bound from the bundle.
const MountPoint kMountPoints[] = {{"proc", true},          {"sys", true},
                                   {"dev", true},           {"etc/hosts", false},
                                   {"etc/hostname", false}, {"etc/resolv.conf", false}};

// What a path is in one layer, and its owner and mode when it is there.
enum class InLayer { kMissing, kWhiteout, kDirectory, kOther };
struct Entry {
  InLayer kind = InLayer::kMissing;
  struct stat info {};
};

Entry entry_in(int dir_fd, const std::string& name) {
  Entry entry;
  if (fstatat(dir_fd, name.c_str(), &entry.info, AT_SYMLINK_NOFOLLOW) != 0) return entry;
  if (S_ISCHR(entry.info.st_mode) && entry.info.st_rdev == makedev(0, 0)) {
    entry.kind = InLayer::kWhiteout;
  } else {
    entry.kind = S_ISDIR(entry.info.st_mode) ? InLayer::kDirectory : InLayer::kOther;
  }
  return entry;
}

bool opaque(int dir_fd) {
  char value[2] = {};
  ssize_t size = fgetxattr(dir_fd, "trusted.overlay.opaque", value, sizeof value);
  return size == 1 && value[0] == 'y';
}

UniqueFd open_dir_at(int dir_fd, const std::string& name) {
  return UniqueFd(openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

// What `path` (one or two components) is in the merged view of `layers`, top first: the topmost
// layer's entry, whose owner and mode the merged view shows; nullopt when it is not there.
std::optional<Entry> merged_entry(std::span<const fs::path> layers, const std::string& path) {
  auto slash = path.find('/');
  std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  for (const fs::path& layer : layers) {
    UniqueFd root(open(layer.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root) return Entry{InLayer::kOther};  // unreadable: leave the path to the runtime
    int dir_fd = root.get();
    UniqueFd parent_fd;
    if (!parent.empty()) {
      InLayer above = entry_in(root.get(), parent).kind;
      if (above == InLayer::kMissing) {
        if (opaque(root.get())) return std::nullopt;
        continue;
      }
      if (above != InLayer::kDirectory) return std::nullopt;  // whited out, or not a directory
      parent_fd = open_dir_at(root.get(), parent);
      if (!parent_fd) return Entry{InLayer::kOther};
      dir_fd = parent_fd.get();
    }
    Entry found = entry_in(dir_fd, name);
    if (found.kind == InLayer::kWhiteout) return std::nullopt;
    if (found.kind != InLayer::kMissing) return found;
    if (opaque(dir_fd) || (!parent.empty() && opaque(root.get()))) return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::vector<MountPoint> missing_mount_points(std::span<const fs::path> layers) {
  std::vector<MountPoint> missing;
  std::optional<Entry> etc = merged_entry(layers, "etc");
  for (const MountPoint& point : kMountPoints) {
    if (point.path.starts_with("etc/") && etc && etc->kind != InLayer::kDirectory) continue;
    if (!merged_entry(layers, point.path)) missing.push_back(point);
  }
  return missing;
}

fs::path init_layer_path(const Layout& layout, std::span<const oci::Digest> diff_ids) {
  std::string chain;
  for (const oci::Digest& diff_id : diff_ids) chain += diff_id.str() + "\n";
  return layout.init_layer_dir(sha256_hex(chain));
}

Result<fs::path> ensure_init_layer(const Layout& layout, std::span<const oci::Digest> diff_ids) {
  fs::path dir = init_layer_path(layout, diff_ids);
  struct stat existing {};
  if (lstat(dir.c_str(), &existing) == 0 && S_ISDIR(existing.st_mode)) return dir;

  std::vector<fs::path> layers;
  for (auto diff_id = diff_ids.rbegin(); diff_id != diff_ids.rend(); ++diff_id) {
    layers.push_back(layout.layer_dir(*diff_id));
  }
  std::error_code error;
  fs::create_directories(layout.init_layers_dir(), error);
  if (error) {
    return fail(ErrorCode::kInternal,
                "creating " + layout.init_layers_dir().string() + ": " + error.message());
  }
  fs::path building = layout.init_layers_dir() / ("." + to_hex(random_bytes(8)));
  Status made = mkdir(building.c_str(), 0755) == 0
                    ? Status{}
                    : std::unexpected(errno_error("creating " + building.string()));
  for (const MountPoint& point : missing_mount_points(layers)) {
    if (!made) break;
    fs::path path = building / point.path;
    fs::path etc = building / "etc";
    if (point.path.starts_with("etc/") && !fs::exists(etc, error)) {
      // The container sees this /etc's owner and mode: the image's own, when it has one.
      auto image_etc = merged_entry(layers, "etc");
      if (mkdir(etc.c_str(), 0755) != 0 ||
          (image_etc && (chown(etc.c_str(), image_etc->info.st_uid, image_etc->info.st_gid) != 0 ||
                         chmod(etc.c_str(), image_etc->info.st_mode & 07777) != 0))) {
        made = std::unexpected(errno_error("creating " + etc.string()));
        break;
      }
    }
    if (point.directory) {
      if (mkdir(path.c_str(), 0755) != 0)
        made = std::unexpected(errno_error("creating " + path.string()));
    } else {
      UniqueFd file(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!file) made = std::unexpected(errno_error("creating " + path.string()));
    }
  }
  // A concurrent launch of the same image may have put its own there first: either will do.
  if (made && rename(building.c_str(), dir.c_str()) != 0 && errno != EEXIST && errno != ENOTEMPTY) {
    made = std::unexpected(errno_error("renaming " + building.string()));
  }
  (void)remove_tree(building);  // gone already when renamed
  if (!made) return std::unexpected(std::move(made.error()));
  return dir;
}

}  // namespace wharf::agent
