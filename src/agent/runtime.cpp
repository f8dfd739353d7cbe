// Choosing the OCI runtime: by name, or the first that passes the probe on this host.
#include "agent/runtime.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <thread>

#include "agent/cgroup.hpp"
#include "agent/cli_runtime.hpp"
#include "agent/remove_tree.hpp"
#include "common/log.hpp"

namespace wharf::agent {
namespace fs = std::filesystem;
namespace bj = boost::json;

std::string_view to_string(ContainerStatus status) {
  switch (status) {
    case ContainerStatus::kCreating:
      return "creating";
    case ContainerStatus::kCreated:
      return "created";
    case ContainerStatus::kRunning:
      return "running";
    case ContainerStatus::kPaused:
      return "paused";
    case ContainerStatus::kStopped:
      return "stopped";
  }
  return "unknown";
}

fs::path exit_status_file(const fs::path& bundle) {
  return bundle / "exit";
}

Result<std::optional<ExitStatus>> read_exit_status_file(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::optional<ExitStatus>();
  int code = 0;
  int signal_number = 0;
  if (!(in >> code >> signal_number)) {
    return fail(ErrorCode::kInternal, file.string() + " does not hold an exit status");
  }
  if (code < 0) return fail(ErrorCode::kNotFound, "its shim lost track of it");
  ExitStatus status{code, std::nullopt};
  if (signal_number > 0) status.signal = signal_number;
  return std::optional<ExitStatus>(status);
}

Result<std::unique_ptr<Runtime>> make_named_runtime(const RuntimeOptions& options,
                                                    ProcessReaper& reaper) {
  if (options.name == "runc") return make_runc_runtime(options, reaper);
  if (options.name == "crun") return make_crun_runtime(options, reaper);
  return invalid("unknown OCI runtime '" + options.name + "' (use runc or crun)");
}

namespace {

// A minimal bundle: a read-only rootfs holding /proc and /dev (for the runtime's mounts) and one
// empty executable file, which the runtime checks at create and would only run at start. A cgroup
// of its own, so cgroup setup is tried.
bj::object probe_spec(const fs::path& rootfs, const std::string& cgroup) {
  bj::array namespaces;
  for (const char* type : {"pid", "ipc", "uts", "mount", "network"}) {
    namespaces.push_back(bj::object{{"type", type}});
  }
  return bj::object{
      {"ociVersion", "1.0.2"},
      {"process", bj::object{{"terminal", false},
                             {"user", bj::object{{"uid", 0}, {"gid", 0}}},
                             {"args", bj::array{"/probe"}},
                             {"env", bj::array{"PATH=/"}},
                             {"cwd", "/"},
                             {"noNewPrivileges", true}}},
      {"root", bj::object{{"path", rootfs.string()}, {"readonly", true}}},
      {"hostname", "probe"},
      {"mounts",
       bj::array{bj::object{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}}}},
      {"linux", bj::object{{"namespaces", std::move(namespaces)},
                           {"cgroupsPath", cgroup},
                           {"resources", bj::object{{"cpu", bj::object{{"shares", 2}}}}}}},
  };
}

// A runtime that fails half-way (crun on a hybrid host), or whose delete races the probe's
// exit, can leave the probe's cgroup behind; nothing else would ever remove it.
void remove_probe_cgroup(const std::string& path) {
  auto cgroups = Cgroups::detect();
  if (!cgroups) return;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (true) {
    auto removed = cgroups->remove(path);
    if (removed || removed.error().code != ErrorCode::kResourceInUse ||
        std::chrono::steady_clock::now() > deadline) {
      if (!removed) spdlog::warn("probe cgroup {} left: {}", path, removed.error().message);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

Status probe_runtime(Runtime& runtime) {
  std::string dir_template = (fs::temp_directory_path() / "wharf-probe-XXXXXX").string();
  if (mkdtemp(dir_template.data()) == nullptr) {
    return fail(ErrorCode::kInternal, "creating a probe bundle directory");
  }
  fs::path bundle = dir_template;
  // The container and its cgroup are named after the bundle: unique on the host, even between
  // agents in pid namespaces of their own.
  std::string id = bundle.filename().string();
  auto probe = [&]() -> Status {
    fs::path rootfs = bundle / "rootfs";
    std::error_code error;
    fs::create_directories(rootfs / "proc", error);
    fs::create_directories(rootfs / "dev", error);  // crun mounts /dev over it
    std::ofstream(rootfs / "probe").flush();
    fs::permissions(rootfs / "probe", fs::perms(0755), error);
    std::ofstream config(bundle / "config.json");
    config << bj::serialize(probe_spec(rootfs, "/" + id));
    config.close();
    if (!config) return fail(ErrorCode::kInternal, "writing the probe bundle");
    auto created = runtime.create(id, bundle, {bundle / "probe.log", bundle / "probe.log"});
    if (!created) return std::unexpected(created.error());
    return runtime.remove(id, true);
  }();
  (void)remove_tree(bundle);
  remove_probe_cgroup("/" + id);
  if (!probe)
    return std::unexpected(
        std::move(probe.error()).context("probing " + std::string(runtime.name())));
  return {};
}

Result<std::unique_ptr<Runtime>> make_runtime(const RuntimeOptions& options,
                                              ProcessReaper& reaper) {
  std::vector<std::string> candidates = {"crun", "runc"};
  if (!options.name.empty()) candidates = {options.name};
  std::string reasons;
  for (const std::string& name : candidates) {
    RuntimeOptions candidate = options;
    candidate.name = name;
    auto runtime = make_named_runtime(candidate, reaper);
    if (!runtime) return std::unexpected(runtime.error());
    auto probed = probe_runtime(**runtime);
    if (probed) return runtime;
    reasons += (reasons.empty() ? "" : "; ") + probed.error().message;
  }
  return fail(ErrorCode::kUnsupportedFeature, "no OCI runtime works on this host: " + reasons);
}

}  // namespace wharf::agent
