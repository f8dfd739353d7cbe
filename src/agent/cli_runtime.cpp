// Drives an OCI runtime through its command line: runc and crun take the same subcommands.
#include "agent/cli_runtime.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <cerrno>
#include <charconv>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "agent/command.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {
namespace fs = std::filesystem;
namespace bj = boost::json;

namespace {

// A runtime command that takes longer is stuck; it is killed.
constexpr std::chrono::seconds kCommandTimeout{60};

// The last "msg" of a --log-format=json log, or "" when there is none.
std::string last_log_message(const fs::path& log) {
  UniqueFd fd(open(log.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "";
  auto text = read_from_start(fd.get());
  if (!text) return "";
  std::string message;
  std::size_t start = 0;
  while (start < text->size()) {
    std::size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    boost::system::error_code error;
    bj::value line = bj::parse(std::string_view(*text).substr(start, end - start), error);
    if (!error && line.is_object()) {
      if (const bj::value* msg = line.as_object().if_contains("msg"); msg && msg->is_string()) {
        message = std::string(msg->as_string());
      }
    }
    start = end + 1;
  }
  return message;
}

Result<ContainerStatus> parse_status(std::string_view text) {
  constexpr std::pair<std::string_view, ContainerStatus> kStatuses[] = {
      {"creating", ContainerStatus::kCreating},
      {"created", ContainerStatus::kCreated},
      {"running", ContainerStatus::kRunning},
      {"paused", ContainerStatus::kPaused},
      {"stopped", ContainerStatus::kStopped}};
  for (auto [name, status] : kStatuses) {
    if (name == text) return status;
  }
  return fail(ErrorCode::kInternal, "unknown container status '" + std::string(text) + "'");
}

Result<ContainerState> parse_state(const bj::value& value) {
  if (!value.is_object()) return fail(ErrorCode::kInternal, "container state is not an object");
  const bj::object& object = value.as_object();
  ContainerState state;
  const bj::value* id = object.if_contains("id");
  const bj::value* status = object.if_contains("status");
  if (id == nullptr || !id->is_string() || status == nullptr || !status->is_string()) {
    return fail(ErrorCode::kInternal, "container state without id or status");
  }
  state.id = std::string(id->as_string());
  auto parsed = parse_status(status->as_string());
  if (!parsed) return std::unexpected(parsed.error());
  state.status = *parsed;
  if (const bj::value* pid = object.if_contains("pid"); pid && pid->is_int64()) {
    state.pid = static_cast<pid_t>(pid->as_int64());
  }
  if (const bj::value* bundle = object.if_contains("bundle"); bundle && bundle->is_string()) {
    state.bundle = std::string(bundle->as_string());
  }
  if (const bj::value* notes = object.if_contains("annotations"); notes && notes->is_object()) {
    for (const auto& [key, note] : notes->as_object()) {
      if (note.is_string()) state.annotations[key] = std::string(note.as_string());
    }
  }
  return state;
}

Result<UniqueFd> open_log(const fs::path& file) {
  std::error_code error;
  if (file.has_parent_path()) fs::create_directories(file.parent_path(), error);
  UniqueFd fd(open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640));
  if (!fd) return std::unexpected(errno_error("opening log file " + file.string()));
  return fd;
}

// The pid in a runtime's --pid-file, or 0 when it is missing or garbled.
pid_t read_pid_file(const fs::path& file) {
  UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return 0;
  auto text = read_from_start(fd.get());
  if (!text) return 0;
  pid_t pid = 0;
  auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), pid);
  if (error != std::errc() || end == text->data()) return 0;
  return pid;
}

// Waits for `pid` (any process, not only a child) to exit: true when it has, false when
// `timeout` passed first. A pid that does not exist counts as exited.
Result<bool> wait_for_process(pid_t pid, std::optional<std::chrono::milliseconds> timeout) {
  UniqueFd pidfd = open_pidfd(pid);
  if (!pidfd) {
    if (errno == ESRCH) return true;
    return std::unexpected(errno_error("watching process " + std::to_string(pid)));
  }
  pollfd entry{pidfd.get(), POLLIN, 0};
  int wait_ms = timeout ? static_cast<int>(timeout->count()) : -1;
  while (true) {
    int ready = poll(&entry, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return std::unexpected(errno_error("watching process " + std::to_string(pid)));
    return ready > 0;
  }
}

// A sealed in-memory copy of `binary`: what runc and crun accept as a copy no container can
// overwrite (all four seals), so they run from it without copying themselves again.
Result<UniqueFd> sealed_copy_of(const fs::path& binary) {
  UniqueFd source(open(binary.c_str(), O_RDONLY | O_CLOEXEC));
  if (!source) return std::unexpected(errno_error("opening " + binary.string()));
  UniqueFd copy(memfd_create(binary.filename().c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!copy) return std::unexpected(errno_error("making a memfd"));
  while (true) {
    ssize_t sent = sendfile(copy.get(), source.get(), nullptr, 1 << 20);
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0) return std::unexpected(errno_error("copying " + binary.string()));
    if (sent == 0) break;
  }
  if (fcntl(copy.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) !=
      0) {
    return std::unexpected(errno_error("sealing the copy of " + binary.string()));
  }
  return copy;
}

// The path other processes execute `fd` of this process by: /proc/<pid>/fd/<fd>, when it leads
// there ("" when it does not, as in a pid namespace whose /proc is another's).
std::string path_to_own_fd(int fd) {
  std::string path = "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(fd);
  struct stat by_path {};
  struct stat by_fd {};
  if (stat(path.c_str(), &by_path) != 0 || fstat(fd, &by_fd) != 0) return "";
  if (by_path.st_dev != by_fd.st_dev || by_path.st_ino != by_fd.st_ino) return "";
  return path;
}

// crun's annotation that carries a compiled seccomp program (base64), used instead of the
// spec's profile.
constexpr std::string_view kSeccompProgramAnnotation = "run.oci.seccomp_bpf_data";
// At most this many distinct profiles keep their programs.
constexpr std::size_t kMaxSeccompPrograms = 32;

// How long the shim may take to write the exit file after the init exited.
constexpr std::chrono::milliseconds kExitFileGrace{3000};

class CliRuntime final : public Runtime {
 public:
  CliRuntime(CliFlavor flavor, const RuntimeOptions& options, ProcessReaper& reaper)
      : flavor_(std::move(flavor)),
        binary_(options.binary.empty() ? find_program(flavor_.name) : options.binary),
        state_root_(options.state_root),
        shim_(options.shim),
        reaper_(reaper) {
    executable_ = binary_.string();
    if (flavor_.sealed_copy) use_sealed_copy();
  }

  std::string_view name() const override { return flavor_.name; }

  void tune_spec(std::string_view id, bj::object& spec) override {
    if (!flavor_.reuses_seccomp_programs) return;
    const bj::value* profile = nullptr;
    if (const bj::value* linux_section = spec.if_contains("linux");
        linux_section != nullptr && linux_section->is_object()) {
      profile = linux_section->as_object().if_contains("seccomp");
    }
    if (profile == nullptr) return;
    std::string key = bj::serialize(*profile);
    std::lock_guard lock(mutex_);
    auto program = seccomp_programs_.find(key);
    if (program == seccomp_programs_.end()) {
      // Learnt once the runtime compiled it. A container never created leaves its entry until
      // remove(): the cap keeps such leftovers from piling up.
      if (compiling_.size() < kMaxSeccompPrograms) compiling_[std::string(id)] = std::move(key);
      return;
    }
    bj::value& annotations = spec["annotations"];
    if (!annotations.is_object()) annotations = bj::object{};
    annotations.as_object()[kSeccompProgramAnnotation] = program->second;
  }

  Result<pid_t> create(std::string_view id, const fs::path& bundle,
                       const ContainerIo& io) override {
    auto pid = create_container(id, bundle, io, {"create"});
    if (!pid) return std::unexpected(std::move(pid.error()).context(doing("creating", id)));
    return pid;
  }

  Result<pid_t> run(std::string_view id, const fs::path& bundle, const ContainerIo& io) override {
    auto pid = create_container(id, bundle, io, {"run", "--detach"});
    if (!pid) return std::unexpected(std::move(pid.error()).context(doing("running", id)));
    return pid;
  }

  Status start(std::string_view id) override {
    return simple_command(id, "starting", {"start", std::string(id)});
  }

  Result<ContainerState> state(std::string_view id) override {
    auto output = run({"state", std::string(id)});
    if (!output) return std::unexpected(std::move(output.error()).context(doing("inspecting", id)));
    if (output->status.exit_code != 0) {
      if (!exists(id))
        return fail(ErrorCode::kNotFound, doing("inspecting", id) + ": no such container");
      return fail(ErrorCode::kInternal,
                  doing("inspecting", id) + ": " + std::string(trim(output->err)));
    }
    boost::system::error_code error;
    bj::value value = bj::parse(output->out, error);
    if (error) return fail(ErrorCode::kInternal, doing("inspecting", id) + ": output is not JSON");
    return parse_state(value);
  }

  Status kill(std::string_view id, int signal) override {
    auto output = run({"kill", std::string(id), std::to_string(signal)});
    if (!output) return std::unexpected(std::move(output.error()).context(doing("signalling", id)));
    if (output->status.exit_code == 0) return {};
    auto current = state(id);
    if (!current && current.error().code == ErrorCode::kNotFound)
      return std::unexpected(current.error());
    if (current && current->status == ContainerStatus::kStopped) {
      return fail(ErrorCode::kNotFound, doing("signalling", id) + ": it is not running");
    }
    return fail(ErrorCode::kInternal,
                doing("signalling", id) + ": " + std::string(trim(output->err)));
  }

  Result<ExitStatus> exec(std::string_view id, const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout) override {
    std::vector<std::string> args = {"exec", std::string(id)};
    args.insert(args.end(), argv.begin(), argv.end());
    // runc exec waits for the command and exits with its status; killing runc on a timeout
    // leaves the command to the container's init, like Docker's health check timeouts do.
    auto pid = reaper_.spawn(command_line(args), ChildIo{});
    if (!pid)
      return std::unexpected(std::move(pid.error()).context(doing("running a command in", id)));
    auto status = finish(*pid, timeout, ErrorCode::kResourceInUse);
    if (!status)
      return std::unexpected(std::move(status.error()).context(doing("running a command in", id)));
    return status;
  }

  Status remove(std::string_view id, bool force) override {
    std::vector<std::string> args = {"delete"};
    if (force) args.push_back("--force");
    args.push_back(std::string(id));
    auto output = run(args);
    if (!output) return std::unexpected(std::move(output.error()).context(doing("deleting", id)));
    if (output->status.exit_code != 0 && exists(id)) {
      return fail(ErrorCode::kInternal,
                  doing("deleting", id) + ": " + std::string(trim(output->err)));
    }
    std::lock_guard lock(mutex_);
    if (auto pid = pids_.find(std::string(id)); pid != pids_.end()) {
      reaper_.forget(pid->second);
      pids_.erase(pid);
    }
    compiling_.erase(std::string(id));
    return {};
  }

  Result<std::vector<ContainerState>> list() override {
    auto output = run({"list", "--format", "json"});
    if (!output) return std::unexpected(std::move(output.error()).context("listing containers"));
    if (output->status.exit_code != 0) {
      return fail(ErrorCode::kInternal, "listing containers: " + std::string(trim(output->err)));
    }
    boost::system::error_code error;
    bj::value value = bj::parse(output->out, error);
    std::vector<ContainerState> states;
    if (error) return fail(ErrorCode::kInternal, "listing containers: output is not JSON");
    if (value.is_null()) return states;  // runc prints null for none
    if (!value.is_array()) return fail(ErrorCode::kInternal, "listing containers: not a list");
    for (const bj::value& item : value.as_array()) {
      auto state = parse_state(item);
      if (!state) return std::unexpected(std::move(state.error()).context("listing containers"));
      states.push_back(std::move(*state));
    }
    return states;
  }

  Result<std::optional<ExitStatus>> wait(
      std::string_view id, std::optional<std::chrono::milliseconds> timeout) override {
    if (!shim_.empty()) {
      auto status = wait_for_shim(id, timeout);
      if (!status)
        return std::unexpected(std::move(status.error()).context(doing("waiting for", id)));
      return status;
    }
    pid_t pid = 0;
    {
      std::lock_guard lock(mutex_);
      auto found = pids_.find(std::string(id));
      if (found == pids_.end()) {
        return fail(ErrorCode::kNotFound, doing("waiting for", id) +
                                              ": not created by this agent process; its exit "
                                              "status is unknown");
      }
      pid = found->second;
    }
    auto status = reaper_.wait(pid, timeout);
    if (!status)
      return std::unexpected(std::move(status.error()).context(doing("waiting for", id)));
    return status;
  }

 private:
  // The status the container's shim wrote, waiting for the init to exit first.
  Result<std::optional<ExitStatus>> wait_for_shim(
      std::string_view id, std::optional<std::chrono::milliseconds> timeout) {
    auto current = state(id);
    if (!current) return std::unexpected(current.error());
    fs::path file = exit_status_file(current->bundle);
    auto status = read_exit_status_file(file);
    if (!status || *status) return status;
    if (current->pid > 0 && current->status != ContainerStatus::kStopped) {
      auto exited = wait_for_process(current->pid, timeout);
      if (!exited) return std::unexpected(exited.error());
      if (!*exited) return std::optional<ExitStatus>();
    }
    // The init is gone; its shim writes the file right after reaping it.
    auto deadline = std::chrono::steady_clock::now() + kExitFileGrace;
    while (true) {
      status = read_exit_status_file(file);
      if (!status || *status) return status;
      if (std::chrono::steady_clock::now() >= deadline) {
        return fail(ErrorCode::kNotFound, "it stopped, but its shim recorded no exit status");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  void use_sealed_copy() {
    auto copy = sealed_copy_of(binary_);
    std::string path = copy ? path_to_own_fd(copy->get()) : "";
    if (path.empty()) {
      spdlog::info("{} runs from {}: {}", flavor_.name, binary_.string(),
                   copy ? "this process's /proc is not the one it runs in" : copy.error().message);
      return;
    }
    sealed_copy_ = std::move(*copy);
    executable_ = std::move(path);
  }

  // After container `id` started: the program its runtime compiled from the profile it had no
  // program for yet, which the runtime keeps beside the container's state.
  void learn_seccomp_program(std::string_view id) {
    std::string profile;
    {
      std::lock_guard lock(mutex_);
      auto compiling = compiling_.find(std::string(id));
      if (compiling == compiling_.end()) return;
      profile = std::move(compiling->second);
      compiling_.erase(compiling);
      if (seccomp_programs_.size() >= kMaxSeccompPrograms) return;
    }
    UniqueFd fd(
        open((state_root_ / std::string(id) / "seccomp.bpf").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return;
    auto program = read_from_start(fd.get());
    // A program is a non-empty array of 8-byte BPF instructions.
    if (!program || program->empty() || program->size() % 8 != 0) return;
    std::lock_guard lock(mutex_);
    seccomp_programs_.try_emplace(std::move(profile), base64_encode(*program));
  }

  std::string doing(std::string_view what, std::string_view id) const {
    return std::string(what) + " container " + std::string(id) + " with " + flavor_.name;
  }

  bool exists(std::string_view id) const {
    std::error_code error;
    return fs::exists(state_root_ / std::string(id), error);
  }

  // Whether runtime commands go through `wharf-shim --cgroup-v1` (only possible with a shim).
  bool hides_cgroup2() const { return flavor_.cgroup_v1_view && !shim_.empty(); }

  // The shim and its options, before its own arguments.
  std::vector<std::string> shim_command() const {
    std::vector<std::string> argv = {shim_.string()};
    if (hides_cgroup2()) argv.push_back("--cgroup-v1");
    return argv;
  }

  // The runtime command, run through the shim when the runtime must not see the cgroup2 mount.
  std::vector<std::string> command_line(const std::vector<std::string>& args,
                                        const fs::path& log = {}) const {
    std::vector<std::string> argv = runtime_command_line(args, log);
    if (!hides_cgroup2()) return argv;
    std::vector<std::string> through_shim = shim_command();
    through_shim.push_back("--");
    through_shim.insert(through_shim.end(), argv.begin(), argv.end());
    return through_shim;
  }

  std::vector<std::string> runtime_command_line(const std::vector<std::string>& args,
                                                const fs::path& log) const {
    std::vector<std::string> argv = {executable_, "--root=" + state_root_.string()};
    if (!log.empty()) {
      argv.push_back("--log=" + log.string());
      argv.push_back("--log-format=json");
    }
    argv.insert(argv.end(), flavor_.global_args.begin(), flavor_.global_args.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // Waits for a runtime command, killing it when it hangs.
  Result<ExitStatus> finish(pid_t pid, std::chrono::milliseconds timeout = kCommandTimeout,
                            ErrorCode timeout_code = ErrorCode::kInternal) {
    auto status = reaper_.wait(pid, timeout);
    if (status && !*status) {
      ::kill(pid, SIGKILL);  // still unreaped, so the pid is still the runtime's
      (void)reaper_.wait(pid, std::nullopt);
      reaper_.forget(pid);
      return fail(timeout_code, flavor_.name + " timed out: it did not finish within " +
                                    std::to_string(timeout.count()) + " ms");
    }
    reaper_.forget(pid);
    if (!status) return std::unexpected(status.error());
    return **status;
  }

  // Runs a runtime command, capturing its output in memory files (no pipe can fill up).
  Result<CommandOutput> run(const std::vector<std::string>& args) {
    return run_command(command_line(args), {}, kCommandTimeout, reaper_);
  }

  Status simple_command(std::string_view id, std::string_view what,
                        const std::vector<std::string>& args) {
    auto output = run(args);
    if (!output) return std::unexpected(std::move(output.error()).context(doing(what, id)));
    if (output->status.exit_code == 0) return {};
    if (!exists(id)) return fail(ErrorCode::kNotFound, doing(what, id) + ": no such container");
    return fail(ErrorCode::kInternal, doing(what, id) + ": " + std::string(trim(output->err)));
  }

  // `subcommand` is {"create"} or {"run", "--detach"}: both leave the init behind, re-parented
  // to this process or to the shim.
  Result<pid_t> create_container(std::string_view id, const fs::path& bundle, const ContainerIo& io,
                                 std::vector<std::string> subcommand) {
    if (exists(id)) return fail(ErrorCode::kResourceInUse, "the container exists");
    auto out = open_log(io.stdout_file);
    if (!out) return std::unexpected(out.error());
    auto err = io.stderr_file == io.stdout_file ? Result<UniqueFd>(UniqueFd(dup(out->get())))
                                                : open_log(io.stderr_file);
    if (!err) return std::unexpected(err.error());
    fs::path pid_file = bundle / "init.pid";
    fs::path log = bundle / "runtime.log";
    std::error_code error;
    fs::remove(pid_file, error);
    fs::remove(log, error);

    // The container's init inherits this command's stdio: its output lands in the log files.
    // The runtime's own failure message goes there too (and to `log`, where it is read from).
    subcommand.insert(subcommand.end(), {"--bundle", bundle.string(), "--pid-file",
                                         pid_file.string(), std::string(id)});
    std::vector<std::string> argv = runtime_command_line(subcommand, log);
    if (!shim_.empty()) {
      std::vector<std::string> monitored = shim_command();
      monitored.insert(monitored.end(),
                       {exit_status_file(bundle).string(), pid_file.string(), "--"});
      argv.insert(argv.begin(), monitored.begin(), monitored.end());
    }
    auto pid = reaper_.spawn(argv, ChildIo{-1, out->get(), err->get()});
    if (!pid) return std::unexpected(pid.error());
    auto status = finish(*pid);
    if (!status) return std::unexpected(status.error());
    if (status->exit_code != 0) {
      std::string message = last_log_message(log);
      if (message.empty())
        message = flavor_.name + " exited with " + std::to_string(status->exit_code);
      return fail(ErrorCode::kInternal, message);
    }

    pid_t init_pid = read_pid_file(pid_file);
    if (init_pid <= 0) {
      remove(id, true);
      return fail(ErrorCode::kInternal, "no init pid in " + pid_file.string());
    }
    learn_seccomp_program(id);
    if (!shim_.empty()) return init_pid;  // the shim is its parent and keeps its status
    // The init re-parented to this (subreaper) process when the runtime exited.
    if (auto adopted = reaper_.adopt(init_pid); !adopted) {
      remove(id, true);
      return std::unexpected(adopted.error());
    }
    std::lock_guard lock(mutex_);
    pids_[std::string(id)] = init_pid;
    return init_pid;
  }

  CliFlavor flavor_;
  fs::path binary_;
  UniqueFd sealed_copy_;
  std::string executable_;  // what runs: the binary, or the sealed copy's path in /proc
  fs::path state_root_;
  fs::path shim_;
  ProcessReaper& reaper_;
  std::mutex mutex_;
  std::map<std::string, pid_t> pids_;  // containers this object created -> init pid
  std::map<std::string, std::string> seccomp_programs_;  // profile (JSON) -> program (base64)
  std::map<std::string, std::string> compiling_;  // container -> its profile, without program
};

}  // namespace

std::unique_ptr<Runtime> make_cli_runtime(CliFlavor flavor, const RuntimeOptions& options,
                                          ProcessReaper& reaper) {
  return std::make_unique<CliRuntime>(std::move(flavor), options, reaper);
}

}  // namespace wharf::agent
