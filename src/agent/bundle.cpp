// OCI runtime spec generation from ECS container definitions, and the bundle's files.
#include "agent/bundle.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>

#include "agent/files.hpp"
#include "common/json.hpp"
#include "common/text.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {
namespace fs = std::filesystem;
namespace bj = boost::json;

namespace {

constexpr std::string_view kDefaultPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::string_view kInitPath = "/sbin/wharf-init";
constexpr std::int64_t kDefaultShmMib = 64;  // Docker's default /dev/shm size
constexpr std::int64_t kMib = 1024 * 1024;

// Capability names by number (linux/capability.h), through CAP_CHECKPOINT_RESTORE.
// clang-format off
constexpr std::string_view kCapabilityNames[] = {
    "CHOWN",               "DAC_OVERRIDE",        "DAC_READ_SEARCH",     "FOWNER",
    "FSETID",              "KILL",                "SETGID",              "SETUID",
    "SETPCAP",             "LINUX_IMMUTABLE",     "NET_BIND_SERVICE",    "NET_BROADCAST",
    "NET_ADMIN",           "NET_RAW",             "IPC_LOCK",            "IPC_OWNER",
    "SYS_MODULE",          "SYS_RAWIO",           "SYS_CHROOT",          "SYS_PTRACE",
    "SYS_PACCT",           "SYS_ADMIN",           "SYS_BOOT",            "SYS_NICE",
    "SYS_RESOURCE",        "SYS_TIME",            "SYS_TTY_CONFIG",      "MKNOD",
    "LEASE",               "AUDIT_WRITE",         "AUDIT_CONTROL",       "SETFCAP",
    "MAC_OVERRIDE",        "MAC_ADMIN",           "SYSLOG",              "WAKE_ALARM",
    "BLOCK_SUSPEND",       "AUDIT_READ",          "PERFMON",             "BPF",
    "CHECKPOINT_RESTORE"};
// clang-format on

constexpr std::string_view kDockerDefaultCapabilities[] = {
    "CHOWN",   "DAC_OVERRIDE", "FSETID",           "FOWNER",
    "MKNOD",   "NET_RAW",      "SETGID",           "SETUID",
    "SETFCAP", "SETPCAP",      "NET_BIND_SERVICE", "SYS_CHROOT",
    "KILL",    "AUDIT_WRITE"};

constexpr std::uint64_t kKnownCapabilities = (std::uint64_t{1} << std::size(kCapabilityNames)) - 1;

// Docker's defaults (moby oci/defaults.go).
// clang-format off
constexpr std::string_view kMaskedPaths[] = {
    "/proc/asound",                   "/proc/acpi",                     "/proc/kcore",
    "/proc/keys",                     "/proc/latency_stats",            "/proc/timer_list",
    "/proc/timer_stats",              "/proc/sched_debug",              "/proc/scsi",
    "/sys/firmware",                  "/sys/devices/virtual/powercap"};
// clang-format on
constexpr std::string_view kReadonlyPaths[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                               "/proc/sysrq-trigger"};

struct Rlimit {
  std::string_view ecs_name;
  std::string_view oci_type;
  int resource;
};
constexpr Rlimit kRlimits[] = {
    {"core", "RLIMIT_CORE", RLIMIT_CORE},
    {"cpu", "RLIMIT_CPU", RLIMIT_CPU},
    {"data", "RLIMIT_DATA", RLIMIT_DATA},
    {"fsize", "RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"locks", "RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"memlock", "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"msgqueue", "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"nice", "RLIMIT_NICE", RLIMIT_NICE},
    {"nofile", "RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"nproc", "RLIMIT_NPROC", RLIMIT_NPROC},
    {"rss", "RLIMIT_RSS", RLIMIT_RSS},
    {"rtprio", "RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"rttime", "RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"sigpending", "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"stack", "RLIMIT_STACK", RLIMIT_STACK},
};

// Syscalls Docker's default seccomp profile withholds unless the container holds `capability`
// (-1: withheld from every container). errno EPERM unless `errno_ret` says otherwise.
struct DeniedSyscalls {
  int capability;
  std::vector<std::string_view> names;
  int errno_ret = EPERM;
};

const std::vector<DeniedSyscalls>& denied_syscalls() {
  static const std::vector<DeniedSyscalls> table = {
      {-1,
       {"add_key", "keyctl", "request_key", "kexec_load", "kexec_file_load", "nfsservctl",
        "create_module", "get_kernel_syms", "query_module", "uselib", "ustat", "sysfs", "_sysctl",
        "vm86", "vm86old", "swapon", "swapoff"}},
      {CAP_SYS_ADMIN,
       {"mount",      "umount",      "umount2",        "mount_setattr", "move_mount",
        "open_tree",  "fsopen",      "fsconfig",       "fsmount",       "fspick",
        "pivot_root", "unshare",     "setns",          "sethostname",   "setdomainname",
        "quotactl",   "quotactl_fd", "lookup_dcookie", "fanotify_init", "name_to_handle_at"}},
      // glibc falls back to clone() on ENOSYS; clone's namespace flags are checked below.
      {CAP_SYS_ADMIN, {"clone3"}, ENOSYS},
      {CAP_SYS_BOOT, {"reboot"}},
      {CAP_SYS_MODULE, {"init_module", "finit_module", "delete_module"}},
      {CAP_SYS_PACCT, {"acct"}},
      {CAP_SYS_PTRACE, {"kcmp", "pidfd_getfd", "process_madvise", "userfaultfd"}},
      {CAP_SYS_RAWIO, {"iopl", "ioperm"}},
      {CAP_SYS_TIME,
       {"settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime",
        "clock_adjtime64", "adjtimex"}},
      {CAP_SYS_TTY_CONFIG, {"vhangup"}},
      {CAP_SYS_NICE, {"get_mempolicy", "mbind", "set_mempolicy", "move_pages"}},
      {CAP_SYSLOG, {"syslog"}},
      {CAP_BPF, {"bpf"}},
      {CAP_PERFMON, {"perf_event_open"}},
      {CAP_DAC_READ_SEARCH, {"open_by_handle_at"}},
  };
  return table;
}

// clone(2) flags that create namespaces; without CAP_SYS_ADMIN a container may not use them.
constexpr std::uint64_t kCloneNamespaceFlags[] = {
    0x00020000,  // CLONE_NEWNS
    0x02000000,  // CLONE_NEWCGROUP
    0x04000000,  // CLONE_NEWUTS
    0x08000000,  // CLONE_NEWIPC
    0x10000000,  // CLONE_NEWUSER
    0x20000000,  // CLONE_NEWPID
    0x40000000,  // CLONE_NEWNET
};

bool has_capability(std::uint64_t capabilities, int capability) {
  return (capabilities >> capability) & 1;
}

bj::array seccomp_architectures() {
#if defined(__x86_64__)
  return {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
#elif defined(__aarch64__)
  return {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#else
  return {};
#endif
}

bj::object seccomp_profile(std::uint64_t capabilities) {
  bj::array rules;
  for (const DeniedSyscalls& denied : denied_syscalls()) {
    if (denied.capability >= 0 && has_capability(capabilities, denied.capability)) continue;
    bj::array names;
    for (std::string_view name : denied.names) names.emplace_back(name);
    rules.push_back(bj::object{
        {"names", std::move(names)}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", denied.errno_ret}});
  }
  if (!has_capability(capabilities, CAP_SYS_ADMIN)) {
    for (std::uint64_t flag : kCloneNamespaceFlags) {
      rules.push_back(bj::object{
          {"names", bj::array{"clone"}},
          {"action", "SCMP_ACT_ERRNO"},
          {"errnoRet", EPERM},
          {"args",
           bj::array{bj::object{
               {"index", 0}, {"value", flag}, {"valueTwo", flag}, {"op", "SCMP_CMP_MASKED_EQ"}}}}});
    }
  }
  return bj::object{{"defaultAction", "SCMP_ACT_ALLOW"},
                    {"architectures", seccomp_architectures()},
                    {"syscalls", std::move(rules)}};
}

// ---- reading the container definition ----

Result<std::vector<std::string>> strings_member(const bj::object& object, std::string_view key,
                                                std::string_view where) {
  std::vector<std::string> out;
  const bj::array* list = json::get_array(object, key);
  if (list == nullptr) {
    if (json::member(object, key) != nullptr)
      return invalid(std::string(where) + "." + std::string(key) + " must be a list");
    return out;
  }
  for (const bj::value& item : *list) {
    if (!item.is_string()) {
      return invalid(std::string(where) + "." + std::string(key) + " must hold strings");
    }
    out.emplace_back(item.as_string());
  }
  return out;
}

// A list that is present and non-empty; ECS treats an empty list as absent.
std::optional<std::vector<std::string>> non_empty(std::vector<std::string> list) {
  if (list.empty()) return std::nullopt;
  return list;
}

using Environment = std::vector<std::pair<std::string, std::string>>;

void set_variable(Environment& env, std::string name, std::string value) {
  auto existing = std::find_if(env.begin(), env.end(),
                               [&](const auto& variable) { return variable.first == name; });
  if (existing != env.end()) {
    existing->second = std::move(value);
    return;
  }
  env.emplace_back(std::move(name), std::move(value));
}

bool has_variable(const Environment& env, std::string_view name) {
  return std::any_of(env.begin(), env.end(),
                     [&](const auto& variable) { return variable.first == name; });
}

Status add_key_value_pairs(Environment& env, const bj::object& object, std::string_view where) {
  const bj::array* list = json::get_array(object, "environment");
  if (list == nullptr) return {};
  for (const bj::value& item : *list) {
    if (!item.is_object()) return invalid(std::string(where) + ".environment must hold objects");
    auto name = json::get_string(item.as_object(), "name");
    if (!name || name->empty() || name->find('=') != std::string::npos) {
      return invalid(std::string(where) + ".environment has an entry without a valid name");
    }
    set_variable(env, *name, json::string_or(item.as_object(), "value", ""));
  }
  return {};
}

Result<Environment> process_environment(const BundleInput& input) {
  Environment env;
  for (const std::string& variable : input.image.env) {
    auto equals = variable.find('=');
    if (equals == std::string::npos || equals == 0) {
      return invalid("image environment entry '" + variable + "' must be NAME=value");
    }
    set_variable(env, variable.substr(0, equals), variable.substr(equals + 1));
  }
  for (const auto& [name, value] : input.file_environment) set_variable(env, name, value);
  if (auto added = add_key_value_pairs(env, input.container, "container"); !added) {
    return std::unexpected(added.error());
  }
  if (auto added = add_key_value_pairs(env, input.overrides, "overrides"); !added) {
    return std::unexpected(added.error());
  }
  for (const auto& [name, value] : input.extra_environment) set_variable(env, name, value);
  if (!has_variable(env, "PATH")) set_variable(env, "PATH", std::string(kDefaultPath));
  if (!has_variable(env, "HOSTNAME") && !input.hostname.empty()) {
    set_variable(env, "HOSTNAME", input.hostname);
  }
  if (!has_variable(env, "HOME")) set_variable(env, "HOME", input.user.home);
  return env;
}

// Docker's rule: an entrypoint given at run time replaces the image's and drops its Cmd.
Result<std::vector<std::string>> process_args(const BundleInput& input) {
  auto entry_point = strings_member(input.container, "entryPoint", "container");
  if (!entry_point) return std::unexpected(entry_point.error());
  auto command = strings_member(input.container, "command", "container");
  if (!command) return std::unexpected(command.error());
  auto override_command = strings_member(input.overrides, "command", "overrides");
  if (!override_command) return std::unexpected(override_command.error());

  std::optional<std::vector<std::string>> cmd = non_empty(*override_command);
  if (!cmd) cmd = non_empty(*command);
  std::vector<std::string> args;
  if (auto own = non_empty(*entry_point)) {
    args = std::move(*own);
  } else {
    args = input.image.entrypoint;
    if (!cmd) cmd = input.image.cmd;
  }
  if (cmd) args.insert(args.end(), cmd->begin(), cmd->end());
  if (args.empty()) {
    return invalid(
        "no command: neither the container definition nor the image has an "
        "entryPoint or command");
  }
  return args;
}

// A number of the container after overrides: the override's value wins when present.
std::optional<std::int64_t> container_int(const BundleInput& input, std::string_view key) {
  if (auto overridden = json::get_int(input.overrides, key)) return overridden;
  return json::get_int(input.container, key);
}

// ---- capabilities ----

std::optional<int> capability_number(std::string_view name) {
  if (name.starts_with("CAP_")) name.remove_prefix(4);
  auto found = std::find(std::begin(kCapabilityNames), std::end(kCapabilityNames), name);
  if (found == std::end(kCapabilityNames)) return std::nullopt;
  return static_cast<int>(found - std::begin(kCapabilityNames));
}

Result<std::uint64_t> capability_set(const BundleInput& input, bool privileged) {
  std::uint64_t available = input.host_capabilities & kKnownCapabilities;
  if (privileged) return available;
  std::uint64_t caps = 0;
  for (std::string_view name : kDockerDefaultCapabilities) caps |= 1ull << *capability_number(name);

  const bj::object* linux_params = json::get_object(input.container, "linuxParameters");
  const bj::object* changes =
      linux_params == nullptr ? nullptr : json::get_object(*linux_params, "capabilities");
  if (changes == nullptr) return caps;
  auto add = strings_member(*changes, "add", "linuxParameters.capabilities");
  if (!add) return std::unexpected(add.error());
  auto drop = strings_member(*changes, "drop", "linuxParameters.capabilities");
  if (!drop) return std::unexpected(drop.error());

  auto mask = [&](const std::vector<std::string>& names,
                  std::string_view list) -> Result<std::uint64_t> {
    std::uint64_t bits = 0;
    for (const std::string& name : names) {
      if (name == "ALL") continue;
      auto number = capability_number(name);
      if (!number) {
        return invalid("unknown capability '" + name + "' in capabilities." + std::string(list));
      }
      bits |= 1ull << *number;
    }
    return bits;
  };
  auto add_bits = mask(*add, "add");
  if (!add_bits) return std::unexpected(add_bits.error());
  auto drop_bits = mask(*drop, "drop");
  if (!drop_bits) return std::unexpected(drop_bits.error());
  for (std::size_t cap_idx = 0; cap_idx < std::size(kCapabilityNames); ++cap_idx) {
    if (has_capability(*add_bits, static_cast<int>(cap_idx)) &&
        !has_capability(available, static_cast<int>(cap_idx))) {
      return invalid("capability '" + std::string(kCapabilityNames[cap_idx]) +
                     "' cannot be granted: the agent does not hold it");
    }
  }
  // Docker's rules (moby TweakCapabilities): add ALL grants all but the drops; drop ALL keeps
  // only the adds; otherwise the defaults minus the drops plus the adds.
  auto has_all = [](const std::vector<std::string>& names) {
    return std::find(names.begin(), names.end(), "ALL") != names.end();
  };
  if (has_all(*add)) return available & ~*drop_bits;
  if (has_all(*drop)) return *add_bits;
  return ((caps & ~*drop_bits) | *add_bits) & available;
}

bj::array capability_names(std::uint64_t caps) {
  bj::array names;
  for (std::size_t cap_idx = 0; cap_idx < std::size(kCapabilityNames); ++cap_idx) {
    if (has_capability(caps, static_cast<int>(cap_idx))) {
      names.emplace_back("CAP_" + std::string(kCapabilityNames[cap_idx]));
    }
  }
  return names;
}

// ---- rlimits ----

std::uint64_t rlimit_value(std::int64_t ecs_value) {
  if (ecs_value < 0) return std::numeric_limits<std::uint64_t>::max();  // -1: unlimited
  return static_cast<std::uint64_t>(ecs_value);
}

Result<bj::array> process_rlimits(const BundleInput& input) {
  bj::array rlimits;
  const bj::array* ulimits = json::get_array(input.container, "ulimits");
  if (ulimits == nullptr) return rlimits;
  for (const bj::value& item : *ulimits) {
    if (!item.is_object()) return invalid("ulimits must hold objects");
    const bj::object& ulimit = item.as_object();
    auto name = json::get_string(ulimit, "name").value_or("");
    auto known = std::find_if(std::begin(kRlimits), std::end(kRlimits),
                              [&](const Rlimit& rlimit) { return rlimit.ecs_name == name; });
    if (known == std::end(kRlimits)) return invalid("unknown ulimit '" + name + "'");
    auto soft = json::get_int(ulimit, "softLimit");
    auto hard = json::get_int(ulimit, "hardLimit");
    if (!soft || !hard) return invalid("ulimit '" + name + "' needs softLimit and hardLimit");
    std::uint64_t hard_limit = rlimit_value(*hard);
    if (auto ceiling = input.rlimit_ceilings.find(name); ceiling != input.rlimit_ceilings.end()) {
      hard_limit = std::min(hard_limit, ceiling->second);
    }
    std::uint64_t soft_limit = std::min(rlimit_value(*soft), hard_limit);
    rlimits.push_back(
        bj::object{{"type", known->oci_type}, {"hard", hard_limit}, {"soft", soft_limit}});
  }
  return rlimits;
}

// ---- mounts ----

bj::object mount(std::string_view destination, std::string_view type, std::string_view source,
                 std::vector<std::string> options) {
  bj::array option_list;
  for (std::string& option : options) option_list.emplace_back(std::move(option));
  return bj::object{{"destination", destination},
                    {"type", type},
                    {"source", source},
                    {"options", std::move(option_list)}};
}

// ECS's tmpfs options; valueless mode/uid/gid/... (ECS accepts the bare names) mean nothing to
// the kernel and are dropped. A flag cancels its opposite in Docker's defaults.
std::vector<std::string> tmpfs_options(const std::vector<std::string>& requested,
                                       std::int64_t size_mib) {
  std::vector<std::string> options = {"nosuid", "nodev", "noexec"};
  static constexpr std::pair<std::string_view, std::string_view> kOpposites[] = {
      {"suid", "nosuid"}, {"dev", "nodev"}, {"exec", "noexec"}};
  static constexpr std::string_view kNeedValue[] = {"mode",      "uid",       "gid",
                                                    "nr_inodes", "nr_blocks", "mpol"};
  for (const std::string& option : requested) {
    if (option == "defaults") continue;
    if (std::find(std::begin(kNeedValue), std::end(kNeedValue), option) != std::end(kNeedValue)) {
      continue;
    }
    for (const auto& [flag, opposite] : kOpposites) {
      if (option == flag) std::erase(options, std::string(opposite));
    }
    if (std::find(options.begin(), options.end(), option) == options.end()) {
      options.push_back(option);
    }
  }
  options.push_back("size=" + std::to_string(size_mib) + "m");
  return options;
}

Result<bj::array> container_mounts(const BundleInput& input, bool privileged, bool read_only) {
  const bj::object* linux_params = json::get_object(input.container, "linuxParameters");
  std::int64_t shm_mib = kDefaultShmMib;
  if (linux_params != nullptr) {
    if (auto size = json::get_int(*linux_params, "sharedMemorySize")) {
      if (*size <= 0) return invalid("linuxParameters.sharedMemorySize must be positive");
      shm_mib = *size;
    }
  }
  bj::array mounts;
  mounts.push_back(mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
  mounts.push_back(
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  mounts.push_back(
      mount("/dev/pts", "devpts", "devpts",
            {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  mounts.push_back(
      mount("/dev/shm", "tmpfs", "shm",
            {"nosuid", "noexec", "nodev", "mode=1777", "size=" + std::to_string(shm_mib) + "m"}));
  mounts.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  std::string sys_access = privileged ? "rw" : "ro";
  mounts.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", sys_access}));
  mounts.push_back(mount("/sys/fs/cgroup", "cgroup", "cgroup",
                         {"nosuid", "noexec", "nodev", "relatime", sys_access}));
  std::string etc_access = read_only ? "ro" : "rw";
  for (std::string_view file : {"hosts", "hostname", "resolv.conf"}) {
    mounts.push_back(mount("/etc/" + std::string(file), "bind", (input.bundle_dir / file).string(),
                           {"rbind", "rprivate", "nosuid", "nodev", "noexec", etc_access}));
  }
  if (linux_params == nullptr) return mounts;
  const bj::array* tmpfs = json::get_array(*linux_params, "tmpfs");
  if (tmpfs == nullptr) return mounts;
  for (const bj::value& item : *tmpfs) {
    if (!item.is_object()) return invalid("linuxParameters.tmpfs must hold objects");
    auto path = json::get_string(item.as_object(), "containerPath").value_or("");
    if (!path.starts_with('/')) {
      return invalid("tmpfs containerPath '" + path + "' must be an absolute path");
    }
    auto size = json::get_int(item.as_object(), "size").value_or(0);
    if (size <= 0) return invalid("tmpfs mount " + path + " needs a positive size in MiB");
    auto options = strings_member(item.as_object(), "mountOptions", "tmpfs");
    if (!options) return std::unexpected(options.error());
    mounts.push_back(mount(path, "tmpfs", "tmpfs", tmpfs_options(*options, size)));
  }
  return mounts;
}

// ---- linux section ----

bj::array device_rules(bool privileged) {
  if (privileged) return {bj::object{{"allow", true}, {"access", "rwm"}}};
  bj::array rules{bj::object{{"allow", false}, {"access", "rwm"}}};
  // Docker's default allow list: mknod of anything, then the standard character devices.
  rules.push_back(bj::object{{"allow", true}, {"type", "c"}, {"access", "m"}});
  rules.push_back(bj::object{{"allow", true}, {"type", "b"}, {"access", "m"}});
  constexpr std::pair<int, int> kDevices[] = {{1, 3}, {1, 8}, {1, 7}, {5, 0},
                                              {1, 5}, {1, 9}, {5, 2}, {10, 200}};
  for (auto [major, minor] : kDevices) {
    rules.push_back(bj::object{
        {"allow", true}, {"type", "c"}, {"major", major}, {"minor", minor}, {"access", "rwm"}});
  }
  rules.push_back(bj::object{{"allow", true}, {"type", "c"}, {"major", 136}, {"access", "rwm"}});
  return rules;
}

Result<bj::object> resources(const BundleInput& input, bool privileged) {
  bj::object memory;
  auto limit_mib = container_int(input, "memory");
  auto reservation_mib = container_int(input, "memoryReservation");
  if (limit_mib && *limit_mib <= 0) return invalid("memory must be a positive number of MiB");
  if (reservation_mib && *reservation_mib <= 0) {
    return invalid("memoryReservation must be a positive number of MiB");
  }
  if (limit_mib && reservation_mib && *reservation_mib > *limit_mib) {
    return invalid("memoryReservation (" + std::to_string(*reservation_mib) +
                   " MiB) exceeds memory (" + std::to_string(*limit_mib) + " MiB)");
  }
  if (limit_mib && input.task_memory_mib && *limit_mib > *input.task_memory_mib) {
    return invalid("container memory (" + std::to_string(*limit_mib) +
                   " MiB) exceeds the task's memory (" + std::to_string(*input.task_memory_mib) +
                   " MiB)");
  }
  if (limit_mib) memory["limit"] = *limit_mib * kMib;
  if (reservation_mib) memory["reservation"] = *reservation_mib * kMib;
  if (const bj::object* linux_params = json::get_object(input.container, "linuxParameters")) {
    auto max_swap = json::get_int(*linux_params, "maxSwap");
    if (max_swap && limit_mib) memory["swap"] = (*limit_mib + *max_swap) * kMib;
    if (auto swappiness = json::get_int(*linux_params, "swappiness")) {
      memory["swappiness"] = *swappiness;
    }
  }

  std::int64_t cpu = container_int(input, "cpu").value_or(0);
  if (cpu < 0) return invalid("cpu must not be negative");
  if (input.task_cpu && cpu > *input.task_cpu) {
    return invalid("container cpu (" + std::to_string(cpu) + ") exceeds the task's cpu (" +
                   std::to_string(*input.task_cpu) + ")");
  }
  bj::object result{{"devices", device_rules(privileged)},
                    {"cpu", bj::object{{"shares", std::max<std::int64_t>(2, cpu)}}}};
  if (!memory.empty()) result["memory"] = std::move(memory);
  return result;
}

Result<bj::object> sysctls(const BundleInput& input) {
  bj::object sysctl;
  const bj::array* controls = json::get_array(input.container, "systemControls");
  if (controls == nullptr) return sysctl;
  for (const bj::value& item : *controls) {
    if (!item.is_object()) return invalid("systemControls must hold objects");
    auto name = json::get_string(item.as_object(), "namespace").value_or("");
    if (name.empty()) return invalid("systemControls entry without a namespace");
    sysctl[name] = json::string_or(item.as_object(), "value", "");
  }
  return sysctl;
}

Result<bj::object> annotations(const BundleInput& input) {
  bj::object out;
  const bj::object* labels = json::get_object(input.container, "dockerLabels");
  if (labels == nullptr) return out;
  for (const auto& [key, value] : *labels) {
    if (!value.is_string())
      return invalid("dockerLabels." + std::string(key) + " must be a string");
    out[key] = value.as_string();
  }
  return out;
}

bool flag(const bj::object& object, std::string_view key) {
  return json::get_bool(object, key).value_or(false);
}

}  // namespace

std::vector<std::string> docker_default_capabilities() {
  std::vector<std::string> names;
  for (std::string_view name : kDockerDefaultCapabilities)
    names.push_back("CAP_" + std::string(name));
  return names;
}

std::string effective_user(const bj::object& container, const oci::RuntimeConfig& image) {
  auto user = json::get_string(container, "user");
  if (user && !user->empty()) return *user;
  return image.user;
}

Result<bj::object> make_runtime_spec(const BundleInput& input) {
  auto spec = [&]() -> Result<bj::object> {
    if (!input.rootfs.is_absolute()) return invalid("the rootfs path must be absolute");
    if (!input.bundle_dir.is_absolute()) return invalid("the bundle dir must be absolute");
    if (!input.cgroup_parent.starts_with('/')) {
      return invalid("the cgroup parent '" + input.cgroup_parent + "' must be absolute");
    }
    auto name = json::get_string(input.container, "name").value_or("");
    if (name.empty()) return invalid("the container definition has no name");
    bool privileged = flag(input.container, "privileged");
    bool read_only = flag(input.container, "readonlyRootFilesystem");

    auto args = process_args(input);
    if (!args) return std::unexpected(args.error());
    auto env = process_environment(input);
    if (!env) return std::unexpected(env.error());
    std::string cwd = json::string_or(input.container, "workingDirectory", "");
    if (cwd.empty()) cwd = input.image.working_dir.empty() ? "/" : input.image.working_dir;
    if (!cwd.starts_with('/')) return invalid("workingDirectory '" + cwd + "' must be absolute");
    auto caps = capability_set(input, privileged);
    if (!caps) return std::unexpected(caps.error());
    auto rlimits = process_rlimits(input);
    if (!rlimits) return std::unexpected(rlimits.error());
    auto mounts = container_mounts(input, privileged, read_only);
    if (!mounts) return std::unexpected(mounts.error());
    auto limits = resources(input, privileged);
    if (!limits) return std::unexpected(limits.error());
    auto sysctl = sysctls(input);
    if (!sysctl) return std::unexpected(sysctl.error());
    auto labels = annotations(input);
    if (!labels) return std::unexpected(labels.error());

    const bj::object* linux_params = json::get_object(input.container, "linuxParameters");
    if (linux_params != nullptr && flag(*linux_params, "initProcessEnabled")) {
      if (input.init_binary.empty()) {
        return fail(ErrorCode::kUnsupportedFeature,
                    "initProcessEnabled needs a statically linked init binary (tini-static, "
                    "docker-init or catatonit) configured on the agent; runc has no --init");
      }
      args->insert(args->begin(), {std::string(kInitPath), "--"});
      mounts->push_back(mount(kInitPath, "bind", input.init_binary.string(),
                              {"rbind", "rprivate", "ro", "nosuid", "nodev"}));
    }

    bj::array env_list;
    for (const auto& [variable, value] : *env) env_list.emplace_back(variable + "=" + value);
    bj::array arg_list;
    for (const std::string& arg : *args) arg_list.emplace_back(arg);
    bj::array gids;
    for (std::uint32_t gid : input.user.additional_gids) gids.emplace_back(gid);
    bj::array cap_names = capability_names(*caps);

    bj::object process{
        {"terminal", false},
        {"user", bj::object{{"uid", input.user.uid},
                            {"gid", input.user.gid},
                            {"additionalGids", std::move(gids)}}},
        {"args", std::move(arg_list)},
        {"env", std::move(env_list)},
        {"cwd", cwd},
        {"capabilities",
         bj::object{{"bounding", cap_names}, {"effective", cap_names}, {"permitted", cap_names}}},
        {"rlimits", std::move(*rlimits)},
        {"noNewPrivileges", !privileged},
    };

    bj::array namespaces;
    for (std::string_view type : {"pid", "ipc", "uts", "mount"}) {
      namespaces.push_back(bj::object{{"type", type}});
    }
    if (input.network_mode == NetworkMode::kNone) {
      bj::object network{{"type", "network"}};
      if (!input.network_namespace.empty()) network["path"] = input.network_namespace.string();
      namespaces.push_back(std::move(network));
    }
    bj::object linux_section{
        {"namespaces", std::move(namespaces)},
        {"cgroupsPath", input.cgroup_parent + "/" + name},
        {"resources", std::move(*limits)},
    };
    if (!sysctl->empty()) linux_section["sysctl"] = std::move(*sysctl);
    if (!privileged) {
      bj::array masked;
      for (std::string_view path : kMaskedPaths) masked.emplace_back(path);
      bj::array readonly;
      for (std::string_view path : kReadonlyPaths) readonly.emplace_back(path);
      linux_section["maskedPaths"] = std::move(masked);
      linux_section["readonlyPaths"] = std::move(readonly);
      linux_section["seccomp"] = seccomp_profile(*caps);
    }

    bj::object result{
        {"ociVersion", "1.0.2"},
        {"process", std::move(process)},
        {"root", bj::object{{"path", input.rootfs.string()}, {"readonly", read_only}}},
        {"hostname", input.hostname},
        {"mounts", std::move(*mounts)},
        {"linux", std::move(linux_section)},
    };
    if (!labels->empty()) result["annotations"] = std::move(*labels);
    return result;
  }();
  if (!spec) {
    auto name = json::get_string(input.container, "name").value_or("?");
    return std::unexpected(std::move(spec.error()).context("container " + name));
  }
  return spec;
}

// ---- users ----

namespace {

std::optional<std::uint32_t> parse_id(std::string_view text) {
  std::uint32_t id = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  if (id > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max()))
    return std::nullopt;
  return id;
}

struct PasswdEntry {
  std::string_view name;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string_view home;
};

// The first line of passwd-format text whose `match` holds, skipping malformed lines as libc
// does.
template <typename Match>
std::optional<PasswdEntry> find_passwd(std::string_view passwd, Match match) {
  for (std::string_view line : split(passwd, '\n')) {
    auto fields = split(line, ':');
    if (fields.size() < 7 || line.starts_with('#')) continue;
    auto uid = parse_id(fields[2]);
    auto gid = parse_id(fields[3]);
    if (!uid || !gid) continue;
    PasswdEntry entry{fields[0], *uid, *gid, fields[5]};
    if (match(entry)) return entry;
  }
  return std::nullopt;
}

}  // namespace

Result<ProcessUser> resolve_user(std::string_view user, std::string_view passwd,
                                 std::string_view group) {
  std::string_view user_part = user;
  std::optional<std::string_view> group_part;
  if (auto colon = user.find(':'); colon != std::string_view::npos) {
    user_part = user.substr(0, colon);
    group_part = user.substr(colon + 1);
  }
  if (user_part.empty()) user_part = "0";

  ProcessUser resolved;
  std::optional<PasswdEntry> entry;
  if (auto uid = parse_id(user_part)) {
    resolved.uid = *uid;
    entry =
        find_passwd(passwd, [&](const PasswdEntry& candidate) { return candidate.uid == *uid; });
  } else {
    entry = find_passwd(passwd,
                        [&](const PasswdEntry& candidate) { return candidate.name == user_part; });
    if (!entry) {
      return invalid("unable to find user " + std::string(user_part) +
                     ": no matching entries in passwd file");
    }
    resolved.uid = entry->uid;
  }
  if (entry) {
    resolved.gid = entry->gid;
    if (!entry->home.empty()) resolved.home = entry->home;
  }

  auto group_lines = split(group, '\n');
  if (group_part && !group_part->empty()) {
    if (auto gid = parse_id(*group_part)) {
      resolved.gid = *gid;
    } else {
      bool found = false;
      for (std::string_view line : group_lines) {
        auto fields = split(line, ':');
        if (fields.size() < 4 || fields[0] != *group_part) continue;
        auto gid = parse_id(fields[2]);
        if (!gid) continue;
        resolved.gid = *gid;
        found = true;
        break;
      }
      if (!found) {
        return invalid("unable to find group " + std::string(*group_part) +
                       ": no matching entries in group file");
      }
    }
  }
  if (!entry) return resolved;
  for (std::string_view line : group_lines) {
    auto fields = split(line, ':');
    if (fields.size() < 4) continue;
    auto gid = parse_id(fields[2]);
    if (!gid || *gid == resolved.gid) continue;
    auto members = split(fields[3], ',');
    if (std::find(members.begin(), members.end(), entry->name) == members.end()) continue;
    if (std::find(resolved.additional_gids.begin(), resolved.additional_gids.end(), *gid) ==
        resolved.additional_gids.end()) {
      resolved.additional_gids.push_back(*gid);
    }
  }
  return resolved;
}

namespace {

constexpr std::size_t kMaxEtcFileBytes = 4 * 1024 * 1024;

// A regular file inside `rootfs`, its symlinks resolved as if `rootfs` were "/"; "" when absent.
Result<std::string> read_file_in_root(const fs::path& rootfs, const char* relative) {
  UniqueFd root(open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) {
    return fail(ErrorCode::kInternal,
                "opening " + rootfs.string() + ": " + std::generic_category().message(errno));
  }
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  UniqueFd file(static_cast<int>(syscall(SYS_openat2, root.get(), relative, &how, sizeof how)));
  if (!file) {
    if (errno == ENOENT) return std::string();
    return fail(ErrorCode::kInternal, std::string("opening /") + relative + " in the rootfs: " +
                                          std::generic_category().message(errno));
  }
  struct stat status {};
  if (fstat(file.get(), &status) != 0 || !S_ISREG(status.st_mode)) {
    return fail(ErrorCode::kInvalidParameter,
                std::string("/") + relative + " in the rootfs is not a regular file");
  }
  std::string text;
  char buffer[16384];
  while (true) {
    ssize_t got = read(file.get(), buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      return fail(ErrorCode::kInternal, std::string("reading /") + relative + ": " +
                                            std::generic_category().message(errno));
    }
    if (got == 0) return text;
    text.append(buffer, static_cast<std::size_t>(got));
    if (text.size() > kMaxEtcFileBytes) {
      return fail(ErrorCode::kInvalidParameter, std::string("/") + relative + " is too large");
    }
  }
}

}  // namespace

Result<ProcessUser> resolve_user_in_rootfs(const fs::path& rootfs, std::string_view user) {
  auto passwd = read_file_in_root(rootfs, "etc/passwd");
  if (!passwd) return std::unexpected(std::move(passwd.error()).context("resolving user"));
  auto group = read_file_in_root(rootfs, "etc/group");
  if (!group) return std::unexpected(std::move(group.error()).context("resolving user"));
  return resolve_user(user, *passwd, *group);
}

RlimitCeilings current_rlimit_ceilings() {
  RlimitCeilings ceilings;
  for (const Rlimit& rlimit : kRlimits) {
    struct rlimit current {};
    if (getrlimit(rlimit.resource, &current) != 0) continue;
    ceilings[std::string(rlimit.ecs_name)] = current.rlim_max == RLIM_INFINITY
                                                 ? std::numeric_limits<std::uint64_t>::max()
                                                 : static_cast<std::uint64_t>(current.rlim_max);
  }
  return ceilings;
}

std::uint64_t current_capability_bounding_set() {
  std::uint64_t caps = 0;
  for (std::size_t cap_idx = 0; cap_idx < std::size(kCapabilityNames); ++cap_idx) {
    if (prctl(PR_CAPBSET_READ, cap_idx, 0, 0, 0) == 1) caps |= 1ull << cap_idx;
  }
  return caps;
}

// ---- bundle files ----

BundleFiles make_bundle_files(const BundleInput& input, const HostFiles& host) {
  BundleFiles files;
  files.hostname = input.hostname + "\n";
  if (input.network_mode == NetworkMode::kHost) {
    files.hosts = host.hosts;
  } else {
    files.hosts = "127.0.0.1\tlocalhost";
    if (!input.hostname.empty()) files.hosts += " " + input.hostname;
    files.hosts += "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
    if (!input.ip_address.empty() && !input.hostname.empty()) {
      files.hosts += input.ip_address + "\t" + input.hostname + "\n";
    }
  }
  if (const bj::array* extra = json::get_array(input.container, "extraHosts")) {
    for (const bj::value& item : *extra) {
      if (!item.is_object()) continue;
      auto address = json::get_string(item.as_object(), "ipAddress");
      auto name = json::get_string(item.as_object(), "hostname");
      if (address && name) files.hosts += *address + "\t" + *name + "\n";
    }
  }
  auto servers = strings_member(input.container, "dnsServers", "container")
                     .value_or(std::vector<std::string>{});
  auto search = strings_member(input.container, "dnsSearchDomains", "container")
                    .value_or(std::vector<std::string>{});
  if (servers.empty() && search.empty()) {
    files.resolv_conf = host.resolv_conf;
    return files;
  }
  // Keep the host's settings that the definition does not replace.
  std::istringstream lines(host.resolv_conf);
  for (std::string line; std::getline(lines, line);) {
    bool is_server = line.starts_with("nameserver");
    bool is_search = line.starts_with("search") || line.starts_with("domain");
    if ((is_server && !servers.empty()) || (is_search && !search.empty())) continue;
    files.resolv_conf += line + "\n";
  }
  for (const std::string& server : servers) files.resolv_conf += "nameserver " + server + "\n";
  if (!search.empty()) {
    files.resolv_conf += "search";
    for (const std::string& domain : search) files.resolv_conf += " " + domain;
    files.resolv_conf += "\n";
  }
  return files;
}

HostFiles read_host_files() {
  auto slurp = [](const char* path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  };
  return HostFiles{slurp("/etc/hosts"), slurp("/etc/resolv.conf")};
}

Status write_bundle(const fs::path& bundle_dir, const bj::object& spec, const BundleFiles& files) {
  std::error_code error;
  fs::create_directories(bundle_dir, error);
  if (error) {
    return fail(ErrorCode::kInternal, "creating " + bundle_dir.string() + ": " + error.message());
  }
  // The bundle is rebuilt whenever the container is created again, and the runtime reads it
  // only after this returns: no fsync, and no rename.
  // hosts, hostname and resolv.conf are the container's /etc files: readable by any user it
  // runs as, as on a host.
  for (const auto& [name, text] :
       {std::pair{"hosts", &files.hosts}, std::pair{"hostname", &files.hostname},
        std::pair{"resolv.conf", &files.resolv_conf}}) {
    if (auto written = write_file(bundle_dir / name, *text, 0644); !written) return written;
  }
  return write_file(bundle_dir / "config.json", bj::serialize(spec));
}

}  // namespace wharf::agent
