// Small file helpers the agent's state files share.
#pragma once

#include <sys/types.h>

#include <cstdint>
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

// Creates (or truncates) `path` with `mode` and writes `contents`: for a file written once,
// before anything reads it (an OCI bundle's), where a rename buys nothing.
Status write_file(const std::filesystem::path& path, std::string_view contents, mode_t mode = 0600);

// A state file the agent rewrites often (a task's, the image index, a network's endpoints),
// rewritten in place instead of replaced: a rename over an old file costs the filesystem a
// new inode and a flush each time, ten times what the write does.
//
// Two slots, `<path>.0` and `<path>.1`, take writes in turn, so the slot not being written
// always holds the previous contents whole. Each starts with a header line,
// `wharf-state <sequence> <length> <fnv-1a 64 of the contents>`: the current contents are the
// valid slot with the higher sequence, so a write a crash cut short is never read. A plain file
// at `<path>` (from an agent before this one) is read when there are no slots, and removed by
// the first write.
//
// Not thread-safe: the owner serializes writes.
class StateFile {
 public:
  explicit StateFile(std::filesystem::path path) : path_(std::move(path)) {}

  const std::filesystem::path& path() const { return path_; }

  // Replaces the contents.
  Status write(std::string_view contents, Durability durability = Durability::kSynced);
  // The current contents; nullopt when the file was never written (or was removed). An error
  // when slots exist but none is whole.
  Result<std::optional<std::string>> read() const;
  // Removes the slots (and any plain file).
  Status remove();

 private:
  struct Slot {
    std::uint64_t sequence = 0;
    std::string contents;
  };
  std::filesystem::path slot_path(int slot) const;
  // What a slot holds, nullopt when it is missing, torn or not a state file.
  std::optional<Slot> read_slot(int slot) const;

  std::filesystem::path path_;
  bool scanned_ = false;  // the fields below hold what is on disk
  std::uint64_t sequence_ = 0;
  std::int64_t sizes_[2] = {-1, -1};  // -1: no such file
  bool plain_ = false;                // a plain file at path_ is left to remove
};

// Marks `dir` as the top of unrelated directory trees (chattr +T): ext2/3/4 then place each
// new subdirectory in a block group of their own choosing rather than in its parent's. For the
// directories that task trees are made in (spares/, containers/): in a single group, each new
// inode was found only after the search had passed every inode freed there in the last minutes,
// which on a journal-less ext4 cost more CPU than the rest of the agent's work for a launch.
// False where the file system has no such flag.
Result<bool> mark_top_directory(const std::filesystem::path& dir);

// The whole of a small text file (/proc, /sys, cgroup control files); nullopt when it cannot be
// opened.
std::optional<std::string> read_text_file(const std::filesystem::path& path);

}  // namespace wharf::agent
