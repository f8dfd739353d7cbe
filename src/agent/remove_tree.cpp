// Depth-first removal with *at() calls, walking back up through "..".
#include "agent/remove_tree.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>
#include <vector>

#include "common/unique_fd.hpp"

namespace wharf::agent {
namespace {

Error system_error(int code, const std::string& doing) {
  return Error{ErrorCode::kInternal, doing + ": " + std::generic_category().message(code)};
}

// The names in a directory, without "." and "..".
Result<std::vector<std::string>> list_dir(int dir_fd, const std::string& shown) {
  int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* dir = fd < 0 ? nullptr : fdopendir(fd);
  if (dir == nullptr) {
    int code = errno;
    if (fd >= 0) close(fd);
    return std::unexpected(system_error(code, "listing " + shown));
  }
  std::vector<std::string> names;
  while (const dirent* child = readdir(dir)) {
    std::string_view name = child->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  closedir(dir);
  return names;
}

// Opens `name` in `dir_fd` as a directory to remove things from, refusing a symbolic link and
// a mount point: what is mounted there is not part of the tree.
Result<UniqueFd> open_child_dir(int dir_fd, const std::string& name) {
  UniqueFd child(openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!child) return std::unexpected(system_error(errno, "opening " + name + " to remove it"));
  if (is_mount_root(dir_fd, child.get())) {
    return std::unexpected(
        Error{ErrorCode::kResourceInUse,
              "not removing " + name + ": a file system is mounted on it (unmount it first)"});
  }
  return child;
}

}  // namespace

bool is_mount_root(int parent_fd, int entry_fd) {
  struct statx entry {};
  if (statx(entry_fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &entry) != 0) return false;
  if (entry.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) {
    return (entry.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  }
  struct stat parent {};  // kernels before 5.8: a mount of another file system
  return fstat(parent_fd, &parent) == 0 &&
         makedev(entry.stx_dev_major, entry.stx_dev_minor) != parent.st_dev;
}

Status remove_tree_at(int dir_fd, const std::string& name) {
  if (unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
  if (errno != EISDIR) return std::unexpected(system_error(errno, "removing " + name));

  struct Level {
    std::string name;               // this directory's name in its parent
    std::vector<std::string> left;  // children not yet removed
  };
  auto top = open_child_dir(dir_fd, name);
  if (!top) return std::unexpected(std::move(top.error()));
  auto top_names = list_dir(top->get(), name);
  if (!top_names) return std::unexpected(std::move(top_names.error()));
  UniqueFd current = std::move(*top);
  std::vector<Level> stack{{name, std::move(*top_names)}};

  while (!stack.empty()) {
    if (stack.back().left.empty()) {
      std::string done = std::move(stack.back().name);
      stack.pop_back();
      int parent_fd = stack.empty()
                          ? fcntl(dir_fd, F_DUPFD_CLOEXEC, 0)
                          : openat(current.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (parent_fd < 0) return std::unexpected(system_error(errno, "walking up from " + done));
      current.reset(parent_fd);
      if (unlinkat(current.get(), done.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
        return std::unexpected(system_error(errno, "removing directory " + done));
      }
      continue;
    }
    std::string child = std::move(stack.back().left.back());
    stack.back().left.pop_back();
    if (unlinkat(current.get(), child.c_str(), 0) == 0 || errno == ENOENT) continue;
    if (errno != EISDIR) return std::unexpected(system_error(errno, "removing " + child));
    auto child_dir = open_child_dir(current.get(), child);
    if (!child_dir) return std::unexpected(std::move(child_dir.error()));
    auto child_names = list_dir(child_dir->get(), child);
    if (!child_names) return std::unexpected(std::move(child_names.error()));
    current = std::move(*child_dir);
    stack.push_back({std::move(child), std::move(*child_names)});
  }
  return {};
}

Status remove_tree(const std::filesystem::path& path) {
  std::filesystem::path clean = path.lexically_normal();
  if (!clean.has_filename()) clean = clean.parent_path();
  std::filesystem::path parent = clean.parent_path();
  UniqueFd parent_fd(open(parent.empty() ? "." : parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!parent_fd) {
    if (errno == ENOENT) return {};
    return std::unexpected(system_error(errno, "opening " + parent.string()));
  }
  if (auto removed = remove_tree_at(parent_fd.get(), clean.filename()); !removed) {
    return std::unexpected(std::move(removed.error()).context("removing " + path.string()));
  }
  return {};
}

}  // namespace wharf::agent
