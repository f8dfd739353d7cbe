// The subreaper: one thread reaps every child of the agent and keeps the statuses asked for.
#include "agent/process_reaper.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <system_error>
#include <thread>

#include "common/unique_fd.hpp"

extern char** environ;

namespace wharf::agent {

ExitStatus exit_status_from_wait(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    int signal = WTERMSIG(wait_status);
    return ExitStatus{128 + signal, signal};
  }
  return ExitStatus{WEXITSTATUS(wait_status), std::nullopt};
}

UniqueFd open_pidfd(pid_t pid) {
  if (pid <= 0) return UniqueFd();
  return UniqueFd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
}

ProcessReaper& ProcessReaper::instance() {
  static ProcessReaper* reaper = new ProcessReaper();  // leaked: its thread never stops
  return *reaper;
}

ProcessReaper::ProcessReaper() {
  // A failure here (only on kernels before 3.4) leaves exit codes of containers unknown, which
  // adopt() then reports; it does not stop the agent.
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  std::thread([this] { reap_loop(); }).detach();
}

void ProcessReaper::reap_loop() {
  while (true) {
    std::uint64_t generation = 0;
    {
      std::lock_guard lock(mutex_);
      generation = spawn_generation_;
    }
    // Peek without reaping, so the pid stays taken until the status is recorded under the
    // mutex: spawn() and adopt() never see a reaped pid reused behind their back.
    siginfo_t info{};
    if (waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      std::unique_lock lock(mutex_);
      have_children_.wait(lock, [&] { return spawn_generation_ != generation; });
      continue;
    }
    std::lock_guard lock(mutex_);
    int wait_status = 0;
    pid_t reaped = waitpid(info.si_pid, &wait_status, WNOHANG);
    if (reaped == info.si_pid) record_exit(reaped, wait_status);
  }
}

void ProcessReaper::record_exit(pid_t pid, int wait_status) {
  ExitStatus status = exit_status_from_wait(wait_status);
  if (tracked_.erase(pid) > 0) {
    exits_[pid] = status;
    exited_.notify_all();
    return;
  }
  stranger_exits_.emplace_back(pid, status);
  if (stranger_exits_.size() > kMaxStrangerExits) stranger_exits_.pop_front();
}

std::filesystem::path find_program(std::string_view name) {
  if (name.empty() || name.find('/') != std::string_view::npos) return std::string(name);
  static std::mutex mutex;
  static std::map<std::string, std::filesystem::path, std::less<>> found;
  {
    std::lock_guard lock(mutex);
    if (auto known = found.find(name); known != found.end()) {
      if (::access(known->second.c_str(), X_OK) == 0) return known->second;
      found.erase(known);  // moved by a package upgrade, say: search again
    }
  }
  const char* variable = std::getenv("PATH");
  std::string_view dirs = variable != nullptr ? variable : "/usr/bin:/bin";
  while (!dirs.empty()) {
    std::size_t colon = dirs.find(':');
    std::string_view dir = dirs.substr(0, colon);
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    if (dir.empty() || dir.front() != '/') continue;  // relative entries depend on the cwd
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    std::error_code error;
    if (::access(candidate.c_str(), X_OK) == 0 &&
        !std::filesystem::is_directory(candidate, error)) {
      std::lock_guard lock(mutex);
      found.insert_or_assign(std::string(name), candidate);
      return candidate;
    }
  }
  return std::string(name);  // not remembered: it may be installed later
}

Result<pid_t> ProcessReaper::spawn(const std::vector<std::string>& argv, const ChildIo& io) {
  if (argv.empty()) return invalid("spawning a process needs a program");
  UniqueFd null_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd) {
    return fail(ErrorCode::kInternal,
                "opening /dev/null: " + std::generic_category().message(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  int targets[] = {io.stdin_fd, io.stdout_fd, io.stderr_fd};
  for (int target_fd = 0; target_fd < 3; ++target_fd) {
    int source = targets[target_fd] >= 0 ? targets[target_fd] : null_fd.get();
    posix_spawn_file_actions_adddup2(&actions, source, target_fd);
  }
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // The child starts with default signal handling and an empty mask, whatever the agent's.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::string program = find_program(argv[0]);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  pid_t pid = 0;
  int error = 0;
  {
    std::lock_guard lock(mutex_);
    error = posix_spawnp(&pid, program.c_str(), &actions, &attributes, args.data(), environ);
    if (error == 0) {
      tracked_.insert(pid);
      exits_.erase(pid);
      ++spawn_generation_;
      have_children_.notify_all();
    }
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) {
    return fail(ErrorCode::kInternal,
                "starting " + argv[0] + ": " + std::generic_category().message(error));
  }
  return pid;
}

Status ProcessReaper::adopt(pid_t pid) {
  std::lock_guard lock(mutex_);
  if (tracked_.contains(pid) || exits_.contains(pid)) return {};
  auto stranger = std::find_if(stranger_exits_.begin(), stranger_exits_.end(),
                               [&](const auto& exit) { return exit.first == pid; });
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
    // A live child (or one not reaped yet): any stranger status under its pid is older.
    if (stranger != stranger_exits_.end()) stranger_exits_.erase(stranger);
    tracked_.insert(pid);
    ++spawn_generation_;
    have_children_.notify_all();
    return {};
  }
  if (stranger != stranger_exits_.end()) {
    exits_[pid] = stranger->second;
    stranger_exits_.erase(stranger);
    return {};
  }
  return fail(ErrorCode::kNotFound, "process " + std::to_string(pid) +
                                        " is not a child of the agent; its exit status is lost");
}

Result<std::optional<ExitStatus>> ProcessReaper::wait(
    pid_t pid, std::optional<std::chrono::milliseconds> timeout) {
  std::unique_lock lock(mutex_);
  if (!tracked_.contains(pid) && !exits_.contains(pid)) {
    return fail(ErrorCode::kNotFound, "process " + std::to_string(pid) + " is not tracked");
  }
  auto done = [&] { return exits_.contains(pid) || !tracked_.contains(pid); };
  if (timeout) {
    if (!exited_.wait_for(lock, *timeout, done)) return std::optional<ExitStatus>();
  } else {
    exited_.wait(lock, done);
  }
  auto exit = exits_.find(pid);
  if (exit == exits_.end()) {
    return fail(ErrorCode::kNotFound, "process " + std::to_string(pid) + " was forgotten");
  }
  return std::optional<ExitStatus>(exit->second);
}

void ProcessReaper::forget(pid_t pid) {
  std::lock_guard lock(mutex_);
  tracked_.erase(pid);
  exits_.erase(pid);
  exited_.notify_all();
}

}  // namespace wharf::agent
