// Control file and directory helpers shared by the cgroup backends; internal to src/agent/.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace wharf::agent::cgroup_files {

Error errno_error(ErrorCode code, const std::string& doing);

// Writes `value` to an existing control file in one write(2), as the kernel expects.
Status write_file(const std::filesystem::path& file, const std::string& value);

Result<std::string> read_file(const std::filesystem::path& file);

// mkdir -p of cgroup `path` under the hierarchy mounted at `mount`.
Status make_dirs(const std::filesystem::path& mount, std::string_view path);

// rmdir of cgroup `path` under `mount`, its child cgroups first; a missing one is fine.
// kResourceInUse while a cgroup still has processes.
Status remove_dirs(const std::filesystem::path& mount, std::string_view path);

// `mount` + `path` ("/wharf/t" under "/sys/fs/cgroup/memory").
std::filesystem::path dir(const std::filesystem::path& mount, std::string_view path);

}  // namespace wharf::agent::cgroup_files
