// Removes directory trees whose shape untrusted content chose (layers, containers' upper dirs).
#pragma once

#include <filesystem>
#include <string>

#include "common/error.hpp"

namespace wharf::agent {

// Whether the entry open as `entry_fd` (O_PATH will do), in the directory open as `parent_fd`,
// is the root of a mount: another file system, or a bind mount of this one.
bool is_mount_root(int parent_fd, int entry_fd);

// Removes `name` in the directory `dir_fd`, and everything beneath it. No symbolic link is
// followed, and only one directory is held open at a time, so a tree deeper than the file
// descriptor limit or PATH_MAX still goes. A missing `name` is not an error. A directory that is
// a mount point is never entered: kResourceInUse, and what was removed before stays removed.
Status remove_tree_at(int dir_fd, const std::string& name);

// The same for a path whose parent directories are trusted (they are the agent's own).
Status remove_tree(const std::filesystem::path& path);

}  // namespace wharf::agent
