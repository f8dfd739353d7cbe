// Small file helpers the agent's state files share.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace wharf::agent {

enum class Durability {
  kSynced,   // fsync the file and its directory: survives a host crash
  kProcess,  // no fsync: survives the agent's death (kill -9), not the host's
};

// Writes `contents` to `path` through a temporary file and a rename, so that readers (and a
// crash) see the old file or the new one, never a mix. The file is created 0600.
Status write_file_atomically(const std::filesystem::path& path, std::string_view contents,
                             Durability durability = Durability::kSynced);

// The whole of a small text file (/proc, /sys, cgroup control files); nullopt when it cannot be
// opened.
std::optional<std::string> read_text_file(const std::filesystem::path& path);

}  // namespace wharf::agent
