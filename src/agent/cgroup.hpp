// Task cgroups: the parent cgroup of a task's containers, its cpu and memory limits, and the
// memory usage and OOM kills the agent reports.
//
// Paths are cgroup paths, absolute from the hierarchy's root: the task's is "/wharf/<task-id>"
// and each container's, which the OCI runtime creates from the bundle's cgroupsPath,
// "/wharf/<task-id>/<container-name>". The runtime uses its cgroupfs driver, so the same path
// names a directory under every v1 hierarchy, or under the one v2 hierarchy.
//
// Two backends sit behind one table of operations (CgroupBackend): cgroup_v1.cpp for v1 and
// hybrid hosts (v1 controllers, plus a cgroup2 mount at /sys/fs/cgroup/unified that the runtime
// also creates a directory in), cgroup_v2.cpp for the unified hierarchy. The version follows
// from the mounts: cgroup2 on the mount that holds no v1 controller mounts means v2.
//
// OOM kills are counted where the limit that was exceeded sits: on v1 each memory cgroup counts
// only its own (memory.oom_control "oom_kill"), on v2 memory.events counts the whole subtree. To
// tell whether a container was OOM-killed, read its own cgroup (before the runtime deletes it)
// and the task's.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace wharf::agent {

enum class CgroupVersion { kV1, kV2 };

// The stoppedReason ECS gives a container whose cgroup counted an OOM kill while it ran.
inline constexpr std::string_view kOutOfMemoryReason =
    "OutOfMemoryError: Container killed due to memory usage";

std::string_view to_string(CgroupVersion version);

// The cgroup hierarchies mounted on this host.
struct CgroupMounts {
  CgroupVersion version = CgroupVersion::kV2;
  // v1: controller ("memory", "cpu", "name=systemd") -> its mount point.
  std::map<std::string, std::filesystem::path> v1;
  // The cgroup2 mount: the only hierarchy on v2; on a hybrid v1 host, the one the runtime also
  // uses (empty when there is none).
  std::filesystem::path unified;

  bool operator==(const CgroupMounts&) const = default;
};

// The hierarchies listed in /proc/<pid>/mountinfo text. kUnsupportedFeature when there is neither
// a cgroup2 mount nor v1 cpu and memory controllers.
Result<CgroupMounts> parse_cgroup_mounts(std::string_view mountinfo);

// parse_cgroup_mounts(/proc/self/mountinfo).
Result<CgroupMounts> detect_cgroup_mounts();

// Moving a process into a cgroup, as the runtime does with each container's init, write-locks
// a lock that every fork and exit read-locks. Unless the kernel's favordynmods is on, taking it
// waits for an RCU grace period first: 5–20 ms on a 2-core VM, on the path of every container
// start. favordynmods (Linux 6.0 and later) is an option of the cgroup2 hierarchy's mount that
// holds for the v1 hierarchies too; with it the move takes about 0.1 ms, and forks and exits
// cost a little more. The kernel documents it for hosts that move processes between cgroups.

// How to remount a cgroup2 mount with favordynmods: mount(2)'s flags and data.
struct CgroupRemount {
  unsigned long flags = 0;  // MS_REMOUNT and the mount's own flags (nosuid, relatime, ...)
  std::string data;         // the hierarchy's options, favordynmods added

  bool operator==(const CgroupRemount&) const = default;
};

// The remount that turns favordynmods on for the cgroup2 mount at `mount_point` in mountinfo
// text, keeping every other option of the mount and the hierarchy (a remount sets them all);
// nullopt when it is on already. kNotFound when no cgroup2 is mounted there.
Result<std::optional<CgroupRemount>> favordynmods_remount(std::string_view mountinfo,
                                                          const std::filesystem::path& mount_point);

// Turns favordynmods on for the host's cgroup2 hierarchy (mounts.unified). True when it is on
// afterwards; false, with the reason logged, when there is no cgroup2 mount or the kernel or
// this process's privileges do not allow it. A host-wide setting, left on when the agent exits
// (the kernel cannot turn it back off for cgroup moves).
bool favor_dynamic_cgroup_moves(const CgroupMounts& mounts);

inline constexpr std::int64_t kCpuPeriodUs = 100'000;
inline constexpr std::int64_t kMinCpuQuotaUs = 1'000;  // the kernel's floor

struct CpuQuota {
  std::int64_t quota_us = 0;
  std::int64_t period_us = kCpuPeriodUs;

  bool operator==(const CpuQuota&) const = default;
};

// ECS cpu units as a CFS bandwidth limit: 1024 units are one CPU, so
// quota = units / 1024 x period (at least the kernel's 1 ms).
CpuQuota cpu_quota(std::int64_t cpu_units);

struct TaskCgroupLimits {
  std::optional<std::int64_t> cpu_units;   // task-level cpu
  std::optional<std::int64_t> memory_mib;  // task-level memory hard limit
};

// One limit as a control file write, relative to the cgroup's directory in `controller`'s
// hierarchy ("" on v2).
struct CgroupFileWrite {
  std::string controller;
  std::string file;
  std::string value;

  bool operator==(const CgroupFileWrite&) const = default;
};

// kInvalidParameter unless `path` is absolute and its components are safe names.
Status validate_cgroup_path(std::string_view path);

// "/wharf/<task-id>" and "/wharf/<task-id>/<container-name>".
std::string task_cgroup_path(std::string_view task_id);
std::string container_cgroup_path(std::string_view task_cgroup, std::string_view container_name);

// The counter named `key` in "key value" lines (memory.events, memory.oom_control).
std::optional<std::uint64_t> find_counter(std::string_view text, std::string_view key);

// One backend's operations. `path` is always a validated cgroup path.
struct CgroupBackend {
  CgroupVersion version;
  // The control file writes that apply `limits` (pure).
  std::vector<CgroupFileWrite> (*limit_writes)(const TaskCgroupLimits& limits);
  // Creates the cgroup (and its parents) where limits are applied, then applies them.
  Status (*create)(const CgroupMounts& mounts, std::string_view path,
                   const TaskCgroupLimits& limits);
  Result<std::uint64_t> (*memory_usage)(const CgroupMounts& mounts, std::string_view path);
  Result<std::uint64_t> (*oom_kills)(const CgroupMounts& mounts, std::string_view path);
  // Removes the cgroup and any child cgroups left in it, from every hierarchy; kResourceInUse
  // while processes remain. A missing cgroup is fine.
  Status (*remove)(const CgroupMounts& mounts, std::string_view path);
};

const CgroupBackend& cgroup_v1_backend();
const CgroupBackend& cgroup_v2_backend();

// The host's cgroups through the backend that matches them.
class Cgroups {
 public:
  static Result<Cgroups> detect();
  explicit Cgroups(CgroupMounts mounts);

  CgroupVersion version() const { return mounts_.version; }
  const CgroupMounts& mounts() const { return mounts_; }

  Status create(std::string_view path, const TaskCgroupLimits& limits) const;
  Result<std::uint64_t> memory_usage(std::string_view path) const;
  Result<std::uint64_t> oom_kills(std::string_view path) const;
  Status remove(std::string_view path) const;

 private:
  CgroupMounts mounts_;
  const CgroupBackend* backend_;
};

}  // namespace wharf::agent
