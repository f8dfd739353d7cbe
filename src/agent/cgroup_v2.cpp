// The cgroup v2 backend: one unified hierarchy; controllers reach a cgroup only when every
// ancestor lists them in cgroup.subtree_control.
#include <string>
#include <vector>

#include "agent/cgroup.hpp"
#include "agent/cgroup_files.hpp"

namespace wharf::agent {
namespace fs = std::filesystem;
namespace {

std::vector<CgroupFileWrite> limit_writes(const TaskCgroupLimits& limits) {
  std::vector<CgroupFileWrite> writes;
  if (limits.cpu_units) {
    CpuQuota quota = cpu_quota(*limits.cpu_units);
    writes.push_back(
        {"", "cpu.max", std::to_string(quota.quota_us) + " " + std::to_string(quota.period_us)});
  }
  if (limits.memory_mib) {
    writes.push_back({"", "memory.max", std::to_string(*limits.memory_mib * 1024 * 1024)});
  }
  return writes;
}

// Enables every controller `dir` has in its children, as the runtime does for the cgroups it
// makes: the task's cgroup needs cpu and memory, its containers whatever the runtime uses.
Status enable_controllers(const fs::path& dir) {
  auto available = cgroup_files::read_file(dir / "cgroup.controllers");
  if (!available) return std::unexpected(available.error());
  std::string enable;
  std::string word;
  for (char character : *available + " ") {
    if (character != ' ' && character != '\n') {
      word.push_back(character);
      continue;
    }
    if (!word.empty()) enable += (enable.empty() ? "+" : " +") + word;
    word.clear();
  }
  if (enable.empty()) return {};
  return cgroup_files::write_file(dir / "cgroup.subtree_control", enable);
}

Status create(const CgroupMounts& mounts, std::string_view path, const TaskCgroupLimits& limits) {
  if (auto made = cgroup_files::make_dirs(mounts.unified, path); !made) return made;
  fs::path dir = mounts.unified;
  if (auto enabled = enable_controllers(dir); !enabled) return enabled;
  for (const fs::path& component : fs::path(path).relative_path()) {
    dir /= component;
    if (auto enabled = enable_controllers(dir); !enabled) return enabled;
  }
  for (const CgroupFileWrite& write : limit_writes(limits)) {
    if (auto written = cgroup_files::write_file(dir / write.file, write.value); !written) {
      return written;
    }
  }
  return {};
}

Result<std::uint64_t> memory_usage(const CgroupMounts& mounts, std::string_view path) {
  auto text = cgroup_files::read_file(cgroup_files::dir(mounts.unified, path) / "memory.current");
  if (!text) return std::unexpected(text.error());
  try {
    return std::stoull(*text);
  } catch (const std::exception&) {
    return fail(ErrorCode::kInternal, "unreadable memory.current: " + *text);
  }
}

// memory.events counts the whole subtree's kills (unless the memory_localevents mount option).
Result<std::uint64_t> oom_kills(const CgroupMounts& mounts, std::string_view path) {
  auto text = cgroup_files::read_file(cgroup_files::dir(mounts.unified, path) / "memory.events");
  if (!text) return std::unexpected(text.error());
  auto kills = find_counter(*text, "oom_kill");
  if (!kills) return fail(ErrorCode::kUnsupportedFeature, "memory.events has no oom_kill");
  return *kills;
}

Status remove(const CgroupMounts& mounts, std::string_view path) {
  return cgroup_files::remove_dirs(mounts.unified, path);
}

}  // namespace

const CgroupBackend& cgroup_v2_backend() {
  static const CgroupBackend backend{CgroupVersion::kV2, limit_writes, create,
                                     memory_usage,       oom_kills,    remove};
  return backend;
}

}  // namespace wharf::agent
