// The cgroup v1 backend: one hierarchy per controller (cpu, memory, ...), and on hybrid hosts a
// cgroup2 mount that the runtime creates directories in as well.
#include <string>
#include <vector>

#include "agent/cgroup.hpp"
#include "agent/cgroup_files.hpp"

namespace wharf::agent {
namespace {

std::vector<CgroupFileWrite> limit_writes(const TaskCgroupLimits& limits) {
  std::vector<CgroupFileWrite> writes;
  if (limits.cpu_units) {
    CpuQuota quota = cpu_quota(*limits.cpu_units);
    // The period first: a quota is checked against the period in force.
    writes.push_back({"cpu", "cpu.cfs_period_us", std::to_string(quota.period_us)});
    writes.push_back({"cpu", "cpu.cfs_quota_us", std::to_string(quota.quota_us)});
  }
  if (limits.memory_mib) {
    writes.push_back(
        {"memory", "memory.limit_in_bytes", std::to_string(*limits.memory_mib * 1024 * 1024)});
  }
  return writes;
}

Status create(const CgroupMounts& mounts, std::string_view path, const TaskCgroupLimits& limits) {
  for (const char* controller : {"cpu", "cpuacct", "memory", "pids"}) {
    auto mount = mounts.v1.find(controller);
    if (mount == mounts.v1.end()) continue;
    if (auto made = cgroup_files::make_dirs(mount->second, path); !made) return made;
  }
  for (const CgroupFileWrite& write : limit_writes(limits)) {
    auto mount = mounts.v1.find(write.controller);
    if (mount == mounts.v1.end()) {
      return fail(ErrorCode::kUnsupportedFeature,
                  "the " + write.controller + " cgroup controller is not mounted");
    }
    auto file = cgroup_files::dir(mount->second, path) / write.file;
    if (auto written = cgroup_files::write_file(file, write.value); !written) return written;
  }
  return {};
}

Result<std::string> read_memory_file(const CgroupMounts& mounts, std::string_view path,
                                     const char* file) {
  auto mount = mounts.v1.find("memory");
  if (mount == mounts.v1.end()) {
    return fail(ErrorCode::kUnsupportedFeature, "the memory cgroup controller is not mounted");
  }
  return cgroup_files::read_file(cgroup_files::dir(mount->second, path) / file);
}

Result<std::uint64_t> memory_usage(const CgroupMounts& mounts, std::string_view path) {
  auto text = read_memory_file(mounts, path, "memory.usage_in_bytes");
  if (!text) return std::unexpected(text.error());
  try {
    return std::stoull(*text);
  } catch (const std::exception&) {
    return fail(ErrorCode::kInternal, "unreadable memory.usage_in_bytes: " + *text);
  }
}

// memory.oom_control has counted kills ("oom_kill N") since Linux 4.13.
Result<std::uint64_t> oom_kills(const CgroupMounts& mounts, std::string_view path) {
  auto text = read_memory_file(mounts, path, "memory.oom_control");
  if (!text) return std::unexpected(text.error());
  auto kills = find_counter(*text, "oom_kill");
  if (!kills) return fail(ErrorCode::kUnsupportedFeature, "memory.oom_control has no oom_kill");
  return *kills;
}

// The runtime made the path in every hierarchy (and in the hybrid cgroup2 one); all go.
Status remove(const CgroupMounts& mounts, std::string_view path) {
  for (const auto& [controller, mount] : mounts.v1) {
    if (auto removed = cgroup_files::remove_dirs(mount, path); !removed) return removed;
  }
  if (mounts.unified.empty()) return {};
  return cgroup_files::remove_dirs(mounts.unified, path);
}

}  // namespace

const CgroupBackend& cgroup_v1_backend() {
  static const CgroupBackend backend{CgroupVersion::kV1, limit_writes, create,
                                     memory_usage,       oom_kills,    remove};
  return backend;
}

}  // namespace wharf::agent
