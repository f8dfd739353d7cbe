// OCI runtime bundles: a container definition (as ECS normalises it) becomes a config.json.
//
// make_runtime_spec() is pure: everything it needs from the host (resolved user, rlimit ceilings,
// the agent's capability bounding set, host /etc files) comes in through BundleInput, gathered by
// the small non-pure helpers below. The spec follows Docker's defaults so that images behave as
// they do under Docker and ECS:
//   - args: entryPoint/command merged with the image's Entrypoint/Cmd as `docker run` does (an
//     entryPoint in the definition drops the image's Cmd); env: image Env, then `environment`,
//     then the overrides' environment, then `extra_environment`, later wins; PATH and HOSTNAME
//     filled in when missing, HOME from the user's passwd entry;
//   - capabilities: Docker's default set plus linuxParameters.capabilities.add minus .drop
//     ("ALL" works in either, as in Docker); privileged grants every capability the agent holds;
//   - namespaces pid, ipc, uts, mount, and network unless networkMode is host;
//   - no-new-privileges, Docker's masked and read-only /proc and /sys paths and a seccomp filter,
//     all three dropped when privileged;
//   - cgroups: cpu units become cpu shares (max(2, cpu)), memory MiB a hard limit,
//     memoryReservation the soft limit, maxSwap (when given) the swap limit; cgroupsPath is
//     cgroup_parent/<container name>.
//
// Seccomp: a DENYLIST (default action allow; listed syscalls fail with EPERM), not Docker's
// allowlist. Docker's profile is ~400 names with per-architecture and per-kernel-version clauses
// that must track every new syscall; the denylist holds what that profile keeps from a container
// without the matching capability (module loading, mount and namespace creation, kexec, keyrings,
// clock setting, bpf, perf, ...), gated on the container's final capability set exactly as
// Docker gates them. A syscall newer than the list is allowed, which is the price of that choice.
//
// initProcessEnabled: runc has no --init, so the spec bind-mounts a statically linked init
// (tini-static, docker-init or catatonit; BundleInput::init_binary) read-only at /sbin/wharf-init
// and runs it as PID 1 with `--` before the container's args. Without an init binary configured
// it is an error (kUnsupportedFeature) rather than silently running without one.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "oci/image_builder.hpp"

namespace wharf::agent {

enum class NetworkMode { kNone, kHost };

// The container process's identity, resolved against the rootfs's /etc/passwd and /etc/group.
struct ProcessUser {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::uint32_t> additional_gids;
  std::string home = "/";

  bool operator==(const ProcessUser&) const = default;
};

// Hard rlimits of the agent by ECS ulimit name ("nofile" -> its hard limit); RLIM_INFINITY
// as UINT64_MAX. A ulimit is never set above its ceiling: without CAP_SYS_RESOURCE the runtime
// could not raise it, and the container would fail to start.
using RlimitCeilings = std::map<std::string, std::uint64_t, std::less<>>;

inline constexpr std::uint64_t kAllCapabilities = ~std::uint64_t{0};

struct BundleInput {
  boost::json::object container;         // one entry of containerDefinitions, normalised by ECS
  boost::json::object overrides;         // the task's ContainerOverride for it, or empty
  std::optional<std::int64_t> task_cpu;  // task-level cpu units, if set
  std::optional<std::int64_t> task_memory_mib;  // task-level memory, if set
  oci::RuntimeConfig image;                     // the image config's runtime part
  ProcessUser user;                             // see resolve_user_in_rootfs(effective_user())
  std::vector<std::pair<std::string, std::string>> extra_environment;  // secrets
  // From environmentFiles: over the image's variables, under `environment`'s.
  std::vector<std::pair<std::string, std::string>> file_environment;
  std::filesystem::path rootfs;      // absolute: the container's mounted root
  std::filesystem::path bundle_dir;  // absolute: holds config.json and the /etc files
  std::string hostname;
  NetworkMode network_mode = NetworkMode::kNone;
  // With kNone: join this network namespace (a bridge or awsvpc endpoint the agent set up)
  // instead of a fresh, empty one; `ip_address` is the container's address in it, for
  // /etc/hosts.
  std::filesystem::path network_namespace;
  std::string ip_address;
  std::string cgroup_parent;  // the task's cgroup, e.g. "/wharf/<task-id>"
  RlimitCeilings rlimit_ceilings;
  std::uint64_t host_capabilities = kAllCapabilities;  // the agent's bounding set, bit per cap
  std::filesystem::path init_binary;  // host path of a static init, for initProcessEnabled
};

// config.json for the container, or kInvalidParameter / kUnsupportedFeature naming the field.
Result<boost::json::object> make_runtime_spec(const BundleInput& input);

// The user the container runs as: the definition's `user`, else the image's User ("" = root).
std::string effective_user(const boost::json::object& container, const oci::RuntimeConfig& image);

// Resolves "user", "user:group", "uid", "uid:gid" (and mixes) against passwd and group file
// text, as runc and Docker do: a name must exist, a number need not; without a group the
// passwd entry's gid (or 0); supplementary groups are the /etc/group entries naming the user.
Result<ProcessUser> resolve_user(std::string_view user, std::string_view passwd,
                                 std::string_view group);

// resolve_user() against <rootfs>/etc/passwd and /etc/group, read with symlinks resolved inside
// the rootfs (openat2 RESOLVE_IN_ROOT): the rootfs is untrusted.
Result<ProcessUser> resolve_user_in_rootfs(const std::filesystem::path& rootfs,
                                           std::string_view user);

// The agent's current hard rlimits for every ECS ulimit name.
RlimitCeilings current_rlimit_ceilings();

// The agent's capability bounding set, one bit per capability number.
std::uint64_t current_capability_bounding_set();

// Capability names ("CAP_CHOWN") in Docker's default set, in its order.
std::vector<std::string> docker_default_capabilities();

// The files bind-mounted at /etc/hosts, /etc/hostname and /etc/resolv.conf.
struct BundleFiles {
  std::string hosts;
  std::string hostname;
  std::string resolv_conf;
};

struct HostFiles {
  std::string hosts;        // the host's /etc/hosts (used as is with networkMode host)
  std::string resolv_conf;  // the host's /etc/resolv.conf
};

// The /etc files for the container: extraHosts, dnsServers and dnsSearchDomains applied.
BundleFiles make_bundle_files(const BundleInput& input, const HostFiles& host);

// Reads the host's /etc/hosts and /etc/resolv.conf (missing files read as empty).
HostFiles read_host_files();

// Writes config.json (atomically, through a rename) and the /etc files into `bundle_dir`,
// which is created if needed.
Status write_bundle(const std::filesystem::path& bundle_dir, const boost::json::object& spec,
                    const BundleFiles& files);

}  // namespace wharf::agent
