// Directory trees made before a launch needs them, so that the launch renames one into place
// instead of creating it.
//
// A task's directory, and each container's with its upper/, work/ and log files, are about ten
// new inodes on the data dir's file system. A rename creates none. Inode allocation is what
// costs: on a journal-less ext4 (this project's VMs) it skips every inode freed in the last
// minutes, and took 0.3-0.6 ms per directory or file where a rename took 0.03 ms. So a thread at
// idle priority keeps a few trees of each shape ready, and a launch claims one. The spares'
// directory is marked as a top directory (chattr +T) so that ext4 spreads the trees over its
// block groups: in the parent's group, each new inode was found only after passing every inode
// freed there lately, which cost more than the rest of the agent's work for a launch.
//
// Spares live under one directory of their own, on the file system they are claimed to (a rename
// does not cross file systems). A ready spare is "<kind>-<n>"; one being made is ".<kind>-<n>",
// renamed to its ready name once whole, so a crash leaves only hidden ones, which load() removes.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace wharf::agent {

// The shape of one kind of spare: the directory's mode, then what it holds.
struct SpareShape {
  mode_t mode = 0711;
  std::vector<std::pair<std::string, mode_t>> dirs;   // relative paths, parents first
  std::vector<std::pair<std::string, mode_t>> files;  // empty files, relative paths
};

class SpareDirs {
 public:
  SpareDirs(std::filesystem::path dir, std::vector<SpareShape> shapes, std::size_t per_kind);
  ~SpareDirs();
  SpareDirs(const SpareDirs&) = delete;
  SpareDirs& operator=(const SpareDirs&) = delete;

  // Takes up the ready spares a previous agent left and removes half-made ones.
  Status load();
  // load(), then starts the thread that keeps per_kind of each kind ready. Without either,
  // claim() finds none.
  Status start();
  // Renames a ready spare of kind `kind` (an index into the shapes) to `destination`, which must
  // not exist. False when none is ready or the rename failed: the caller makes it itself.
  bool claim(std::size_t kind, const std::filesystem::path& destination);
  // Makes spares until every kind has per_kind ready (the thread's work).
  Status fill();
  std::size_t ready(std::size_t kind) const;

 private:
  Status make(std::size_t kind, std::uint64_t number) const;
  std::string name(std::size_t kind, std::uint64_t number) const;
  void refill_loop();

  const std::filesystem::path dir_;
  const std::vector<SpareShape> shapes_;
  const std::size_t per_kind_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::deque<std::string>> ready_;  // by kind: names of ready spares
  std::vector<std::size_t> making_;             // by kind: being made now
  std::uint64_t next_number_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace wharf::agent
