// The agent's one owner of child processes and their exit statuses, as a child subreaper.
//
// Why: `runc create` (and crun's) forks the container's init and exits, so the init is nobody's
// child; an exit status exists only for a parent. With PR_SET_CHILD_SUBREAPER the orphaned init
// re-parents to the agent instead of PID 1, and waitid() gives the agent its real exit code or
// signal. The same mechanism re-parents any other orphan from under the agent, so one thread
// here reaps every child: statuses of processes the agent spawned (spawn()) or adopted (adopt())
// are kept until forget(); those of strangers are kept briefly (for an adopt() that races the
// exit) and then dropped, so no zombie stays behind.
//
// Consequences for the rest of the agent: no code may call waitpid()/wait() itself or set
// SIGCHLD to SIG_IGN (that would steal or discard statuses); every child is started through
// spawn(). Across an agent restart the statuses are lost: the running containers re-parent to
// PID 1 (or the agent's own subreaper), and the new agent can tell only that they stopped
// (runtime `state` says "stopped"), not their exit codes. The next step is a tiny per-container
// monitor process (as conmon or containerd-shim) that stays the init's parent and writes the
// exit code to a file in the container's directory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {

struct ExitStatus {
  int exit_code = 0;          // the code, or 128 + the signal, as Docker reports it
  std::optional<int> signal;  // the signal that killed the process, if one did

  bool operator==(const ExitStatus&) const = default;
};

// The ExitStatus for a wait status from waitpid().
ExitStatus exit_status_from_wait(int wait_status);

// stdin/stdout/stderr for a spawned process; -1 means /dev/null.
struct ChildIo {
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
};

// A pidfd for `pid` (any process, not only a child): readable once it exits. Empty when `pid`
// is not positive or no longer exists (errno ESRCH).
UniqueFd open_pidfd(pid_t pid);

// The absolute path of program `name` on PATH; `name` itself when it is not found there or holds
// a slash. Successful lookups are remembered (and looked up again once the program is no longer
// there), so a program started often (a runtime per container, `nft`) is not searched for along
// PATH each time: with a long PATH, the failed exec attempts of that search cost milliseconds
// per start.
std::filesystem::path find_program(std::string_view name);

class ProcessReaper {
 public:
  // The process-wide reaper: makes the process a child subreaper and starts the reaping thread
  // on first use. Never destroyed.
  static ProcessReaper& instance();

  ProcessReaper(const ProcessReaper&) = delete;
  ProcessReaper& operator=(const ProcessReaper&) = delete;

  // Starts argv[0] (looked up on PATH) with `io` as its descriptors 0-2 and no others, default
  // signal handling and an empty signal mask; its exit status is kept until forget().
  Result<pid_t> spawn(const std::vector<std::string>& argv, const ChildIo& io);

  // Takes charge of `pid`, a process that became this process's child by re-parenting (a
  // container's init after `runc create`). kNotFound when it is not a child and its exit was
  // not seen.
  Status adopt(pid_t pid);

  // Waits for a spawned or adopted process to exit: its status, or nullopt if `timeout` passed
  // first (no timeout: wait for ever). kNotFound for a pid that is not spawned or adopted.
  Result<std::optional<ExitStatus>> wait(pid_t pid,
                                         std::optional<std::chrono::milliseconds> timeout);

  // Drops the status of an exited process; a live one stops being tracked.
  void forget(pid_t pid);

 private:
  ProcessReaper();
  void reap_loop();
  void record_exit(pid_t pid, int wait_status);  // with mutex_ held

  static constexpr std::size_t kMaxStrangerExits = 256;

  std::mutex mutex_;
  std::condition_variable exited_;         // an exit was recorded
  std::condition_variable have_children_;  // a child may exist again
  std::uint64_t spawn_generation_ = 0;
  std::set<pid_t> tracked_;  // spawned or adopted, not exited yet
  std::map<pid_t, ExitStatus> exits_;
  std::deque<std::pair<pid_t, ExitStatus>> stranger_exits_;  // oldest first
};

}  // namespace wharf::agent
