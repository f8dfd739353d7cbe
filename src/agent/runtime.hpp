// The OCI runtime seam: create, start, inspect, signal, wait for and delete containers that run
// from bundles. runc and crun sit behind it (runc_runtime.cpp, crun_runtime.cpp, sharing the
// command-line driver in cli_runtime.cpp); make_runtime() picks one that works on this host.
//
// Containers run detached. create() starts `<runtime> create --bundle B --pid-file P ID` with
// stdin on /dev/null and stdout/stderr appended to the container's log files; in detached mode
// without a terminal the runtime hands those descriptors to the container's process, so the
// agent needs no copying loop and logs survive an agent restart. The init process then waits for
// start(). Exit codes come from the ProcessReaper: the agent is a child subreaper, the init
// re-parents to it when the runtime exits, and create() adopts it (see process_reaper.hpp for what
// is lost across an agent restart).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "agent/process_reaper.hpp"
#include "common/error.hpp"

namespace wharf::agent {

enum class ContainerStatus { kCreating, kCreated, kRunning, kPaused, kStopped };

std::string_view to_string(ContainerStatus status);

struct ContainerState {
  std::string id;
  ContainerStatus status = ContainerStatus::kStopped;
  pid_t pid = 0;  // the init's pid on the host; 0 once stopped
  std::filesystem::path bundle;
  std::map<std::string, std::string> annotations;
};

// Where a container's output goes: appended to these files (created 0640 if missing).
struct ContainerIo {
  std::filesystem::path stdout_file;
  std::filesystem::path stderr_file;
};

class Runtime {
 public:
  virtual ~Runtime() = default;

  // "runc" or "crun".
  virtual std::string_view name() const = 0;

  // Adds to the spec of container `id`, before its bundle is written, what lets this runtime
  // start it sooner. crun: the seccomp program it compiled for the same profile before.
  virtual void tune_spec(std::string_view /*id*/, boost::json::object& /*spec*/) {}

  // Creates container `id` from the bundle directory (config.json inside) and returns its init's
  // pid; the process waits for start(). kResourceInUse when the id exists.
  virtual Result<pid_t> create(std::string_view id, const std::filesystem::path& bundle,
                               const ContainerIo& io) = 0;
  virtual Status start(std::string_view id) = 0;
  // create() and start() in one runtime call (`run --detach`), which saves a runtime process
  // start: the container is running when it returns its init's pid.
  virtual Result<pid_t> run(std::string_view id, const std::filesystem::path& bundle,
                            const ContainerIo& io) = 0;
  // kNotFound when the runtime has no such container.
  virtual Result<ContainerState> state(std::string_view id) = 0;
  // Signals the init process (a pid namespace's init only gets signals it handles, except
  // SIGKILL). kNotFound when the container is gone or stopped.
  virtual Status kill(std::string_view id, int signal) = 0;
  // Runs `argv` inside the running container (as its process's user, with its environment)
  // and returns its exit status; output is discarded. A command still running after `timeout`
  // is killed: kResourceInUse, with "timed out"
  // in the message.
  virtual Result<ExitStatus> exec(std::string_view id, const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout) = 0;
  // Deletes the container's runtime state and cgroup; `force` kills it first if it runs.
  // Deleting a container that is not there succeeds.
  virtual Status remove(std::string_view id, bool force) = 0;
  // Every container under this runtime's state root, for reconciliation.
  virtual Result<std::vector<ContainerState>> list() = 0;
  // The exit status of a container, waiting at most `timeout` (nullopt: it is still running).
  // Without a shim, only for containers this object created: kNotFound for the others (after
  // an agent restart their exit codes are lost). With one, for every container of the runtime.
  virtual Result<std::optional<ExitStatus>> wait(
      std::string_view id, std::optional<std::chrono::milliseconds> timeout) = 0;
};

struct RuntimeOptions {
  // "runc", "crun", or "" to use the first that works here: crun, then runc.
  std::string name;
  // The runtime's executable; "" looks the name up on PATH.
  std::filesystem::path binary;
  // The runtime's --root: its state directory, kept apart from other users of the runtime so
  // that list() sees Wharf's containers only.
  std::filesystem::path state_root = "/run/wharf/runtime";
  // The per-container monitor (wharf-shim; see src/shim/wharf_shim.c), or "" for none. With
  // it, create() runs the runtime through the shim, which stays the container init's parent and
  // writes its exit status to `<bundle>/exit`; wait() then works for any container whose bundle
  // has that file or will get it, also one created before an agent restart. Without it, exit
  // statuses come from the ProcessReaper and are lost across restarts.
  std::filesystem::path shim;
};

// The file the shim writes a container's exit status to.
std::filesystem::path exit_status_file(const std::filesystem::path& bundle);

// The status in a shim's exit file: nullopt while there is none yet; kInternal when it is
// garbled, kNotFound when the shim could not see the exit ("-1").
Result<std::optional<ExitStatus>> read_exit_status_file(const std::filesystem::path& file);

// One runtime by name, unprobed; kInvalidParameter for an unknown name.
Result<std::unique_ptr<Runtime>> make_named_runtime(const RuntimeOptions& options,
                                                    ProcessReaper& reaper);

// The runtime to use on this host. With options.name set, that one, if it works; otherwise crun,
// then runc. "Works" means the probe succeeds: a throwaway container (an empty rootfs, a cgroup)
// is created and deleted, which fails quickly where the runtime cannot drive this host's
// cgroups (crun on a hybrid v1/v2 host without a shim to hide the cgroup2 mount from it). The
// error lists why each candidate failed.
Result<std::unique_ptr<Runtime>> make_runtime(const RuntimeOptions& options, ProcessReaper& reaper);

// Creates and deletes a throwaway container (see make_runtime).
Status probe_runtime(Runtime& runtime);

}  // namespace wharf::agent
