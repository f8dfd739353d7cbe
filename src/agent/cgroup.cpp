// Cgroup detection, path and limit computations, and the helpers both backends share.
#include "agent/cgroup.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>
#include <system_error>

#include "agent/cgroup_files.hpp"
#include "agent/layout.hpp"
#include "common/log.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kV1Controllers[] = {
    "cpu",      "cpuacct",    "cpuset", "memory",  "devices", "freezer", "net_cls",
    "net_prio", "perf_event", "blkio",  "hugetlb", "pids",    "rdma",    "misc"};

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (!text.empty()) {
    auto at = text.find(separator);
    if (at != 0) parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) break;
    text.remove_prefix(at + 1);
  }
  return parts;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view text) {
  std::string out;
  for (std::size_t char_idx = 0; char_idx < text.size(); ++char_idx) {
    if (text[char_idx] == '\\' && char_idx + 3 < text.size()) {
      int value = 0;
      auto digits = text.substr(char_idx + 1, 3);
      auto [end, error] = std::from_chars(digits.data(), digits.data() + 3, value, 8);
      if (error == std::errc() && end == digits.data() + 3) {
        out.push_back(static_cast<char>(value));
        char_idx += 3;
        continue;
      }
    }
    out.push_back(text[char_idx]);
  }
  return out;
}

bool is_v1_controller(std::string_view option) {
  return option.starts_with("name=") ||
         std::find(std::begin(kV1Controllers), std::end(kV1Controllers), option) !=
             std::end(kV1Controllers);
}

// The fields of a /proc/<pid>/mountinfo line that the cgroup code reads.
struct MountinfoLine {
  fs::path mount_point;            // octal escapes undone
  std::string_view mount_options;  // per mount: "rw,nosuid,relatime"
  std::string_view fs_type;
  std::string_view super_options;  // the file system's: "rw,nsdelegate", "rw,cpu"
};

std::vector<MountinfoLine> parse_mountinfo(std::string_view mountinfo) {
  std::vector<MountinfoLine> lines;
  for (std::string_view line : split(mountinfo, '\n')) {
    auto dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    auto fields = split(line.substr(0, dash), ' ');
    auto tail = split(line.substr(dash + 3), ' ');
    if (fields.size() < 6 || tail.size() < 3) continue;
    lines.push_back(MountinfoLine{unescape(fields[4]), fields[5], tail[0], tail[2]});
  }
  return lines;
}

}  // namespace

std::string_view to_string(CgroupVersion version) {
  return version == CgroupVersion::kV1 ? "v1" : "v2";
}

Result<CgroupMounts> parse_cgroup_mounts(std::string_view mountinfo) {
  CgroupMounts mounts;
  std::vector<fs::path> cgroup2_mounts;
  for (const MountinfoLine& line : parse_mountinfo(mountinfo)) {
    if (line.fs_type == "cgroup2") {
      cgroup2_mounts.push_back(line.mount_point);
      continue;
    }
    if (line.fs_type != "cgroup") continue;
    for (std::string_view option : split(line.super_options, ',')) {
      if (is_v1_controller(option)) mounts.v1.emplace(std::string(option), line.mount_point);
    }
  }
  // Prefer the conventional mount points when a hierarchy is mounted twice.
  auto preferred = std::find_if(
      cgroup2_mounts.begin(), cgroup2_mounts.end(),
      [](const fs::path& p) { return p == "/sys/fs/cgroup" || p == "/sys/fs/cgroup/unified"; });
  if (preferred != cgroup2_mounts.end()) mounts.unified = *preferred;
  if (mounts.unified.empty() && !cgroup2_mounts.empty()) mounts.unified = cgroup2_mounts.front();

  if (mounts.v1.contains("cpu") && mounts.v1.contains("memory")) {
    mounts.version = CgroupVersion::kV1;
    return mounts;
  }
  if (!mounts.unified.empty()) {
    mounts.version = CgroupVersion::kV2;
    mounts.v1.clear();
    return mounts;
  }
  return fail(ErrorCode::kUnsupportedFeature,
              "no usable cgroups: neither a cgroup2 mount nor v1 cpu and memory hierarchies");
}

Result<CgroupMounts> detect_cgroup_mounts() {
  auto text = cgroup_files::read_file("/proc/self/mountinfo");
  if (!text) return std::unexpected(text.error());
  return parse_cgroup_mounts(*text);
}

Result<std::optional<CgroupRemount>> favordynmods_remount(std::string_view mountinfo,
                                                          const fs::path& mount_point) {
  // Per-mount options as mount(2) flags; without noatime or relatime the mount is strictatime.
  constexpr std::pair<std::string_view, unsigned long> kMountFlags[] = {
      {"ro", MS_RDONLY},        {"nosuid", MS_NOSUID},   {"nodev", MS_NODEV},
      {"noexec", MS_NOEXEC},    {"noatime", MS_NOATIME}, {"nodiratime", MS_NODIRATIME},
      {"relatime", MS_RELATIME}};
  for (const MountinfoLine& line : parse_mountinfo(mountinfo)) {
    if (line.fs_type != "cgroup2" || line.mount_point != mount_point) continue;
    CgroupRemount remount{MS_REMOUNT, ""};
    for (std::string_view option : split(line.mount_options, ',')) {
      for (auto [name, flag] : kMountFlags) {
        if (option == name) remount.flags |= flag;
      }
    }
    if ((remount.flags & (MS_NOATIME | MS_RELATIME)) == 0) remount.flags |= MS_STRICTATIME;
    for (std::string_view option : split(line.super_options, ',')) {
      if (option == "favordynmods") return std::nullopt;
      if (option == "rw" || option == "ro") continue;  // a flag, not the hierarchy's option
      remount.data.append(option).push_back(',');
    }
    remount.data += "favordynmods";
    return remount;
  }
  return fail(ErrorCode::kNotFound, "no cgroup2 mount at " + mount_point.string());
}

bool favor_dynamic_cgroup_moves(const CgroupMounts& mounts) {
  if (mounts.unified.empty()) {
    spdlog::info("no cgroup2 mount: moving a container into its cgroups waits for the kernel");
    return false;
  }
  auto mountinfo = cgroup_files::read_file("/proc/self/mountinfo");
  if (!mountinfo) {
    spdlog::warn("cgroup favordynmods: {}", mountinfo.error().message);
    return false;
  }
  auto remount = favordynmods_remount(*mountinfo, mounts.unified);
  if (!remount) {
    spdlog::warn("cgroup favordynmods: {}", remount.error().message);
    return false;
  }
  if (!*remount) {
    spdlog::info("favordynmods is on already on {}", mounts.unified.string());
    return true;
  }
  if (mount(nullptr, mounts.unified.c_str(), nullptr, (*remount)->flags,
            (*remount)->data.c_str()) != 0) {
    int error = errno;
    if (error == EINVAL) {
      spdlog::info(
          "this kernel has no cgroup favordynmods (Linux 6.0 and later): moving a container "
          "into its cgroups waits for the kernel");
    } else {
      spdlog::warn("turning on favordynmods on {}: {}", mounts.unified.string(),
                   std::generic_category().message(error));
    }
    return false;
  }
  spdlog::info("turned on favordynmods on {}: containers move into their cgroups without waiting",
               mounts.unified.string());
  return true;
}

CpuQuota cpu_quota(std::int64_t cpu_units) {
  std::int64_t quota = cpu_units * kCpuPeriodUs / 1024;
  return CpuQuota{std::max(quota, kMinCpuQuotaUs), kCpuPeriodUs};
}

Status validate_cgroup_path(std::string_view path) {
  if (!path.starts_with('/') || path.size() == 1) {
    return invalid("cgroup path '" + std::string(path) + "' must be absolute and not the root");
  }
  for (std::string_view component : split(path.substr(1), '/')) {
    if (!is_safe_path_component(component)) {
      return invalid("cgroup path '" + std::string(path) + "' has an unsafe component");
    }
  }
  if (path.find("//") != std::string_view::npos || path.ends_with('/')) {
    return invalid("cgroup path '" + std::string(path) + "' has an empty component");
  }
  return {};
}

std::string task_cgroup_path(std::string_view task_id) {
  return "/wharf/" + std::string(task_id);
}

std::string container_cgroup_path(std::string_view task_cgroup, std::string_view container_name) {
  return std::string(task_cgroup) + "/" + std::string(container_name);
}

std::optional<std::uint64_t> find_counter(std::string_view text, std::string_view key) {
  for (std::string_view line : split(text, '\n')) {
    auto words = split(line, ' ');
    if (words.size() != 2 || words[0] != key) continue;
    std::uint64_t value = 0;
    auto [end, error] = std::from_chars(words[1].data(), words[1].data() + words[1].size(), value);
    if (error == std::errc() && end == words[1].data() + words[1].size()) return value;
  }
  return std::nullopt;
}

Result<Cgroups> Cgroups::detect() {
  auto mounts = detect_cgroup_mounts();
  if (!mounts) return std::unexpected(std::move(mounts.error()).context("detecting cgroups"));
  return Cgroups(std::move(*mounts));
}

Cgroups::Cgroups(CgroupMounts mounts)
    : mounts_(std::move(mounts)),
      backend_(mounts_.version == CgroupVersion::kV1 ? &cgroup_v1_backend()
                                                     : &cgroup_v2_backend()) {}

Status Cgroups::create(std::string_view path, const TaskCgroupLimits& limits) const {
  if (auto valid = validate_cgroup_path(path); !valid) return valid;
  auto created = backend_->create(mounts_, path, limits);
  if (!created)
    return std::unexpected(
        std::move(created.error()).context("creating cgroup " + std::string(path)));
  return {};
}

Result<std::uint64_t> Cgroups::memory_usage(std::string_view path) const {
  if (auto valid = validate_cgroup_path(path); !valid) return std::unexpected(valid.error());
  return backend_->memory_usage(mounts_, path);
}

Result<std::uint64_t> Cgroups::oom_kills(std::string_view path) const {
  if (auto valid = validate_cgroup_path(path); !valid) return std::unexpected(valid.error());
  return backend_->oom_kills(mounts_, path);
}

Status Cgroups::remove(std::string_view path) const {
  if (auto valid = validate_cgroup_path(path); !valid) return valid;
  auto removed = backend_->remove(mounts_, path);
  if (!removed)
    return std::unexpected(
        std::move(removed.error()).context("removing cgroup " + std::string(path)));
  return {};
}

// ---- cgroup_files ----

namespace cgroup_files {

Error errno_error(ErrorCode code, const std::string& doing) {
  int saved = errno;
  return Error{code, doing + ": " + std::generic_category().message(saved)};
}

fs::path dir(const fs::path& mount, std::string_view path) {
  return mount / fs::path(path).relative_path();
}

Status write_file(const fs::path& file, const std::string& value) {
  UniqueFd fd(open(file.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return std::unexpected(errno_error(ErrorCode::kInternal, "opening " + file.string()));
  ssize_t written = write(fd.get(), value.data(), value.size());
  if (written != static_cast<ssize_t>(value.size())) {
    return std::unexpected(
        errno_error(ErrorCode::kInternal, "writing '" + value + "' to " + file.string()));
  }
  return {};
}

Result<std::string> read_file(const fs::path& file) {
  UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    return std::unexpected(errno_error(
        errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInternal, "opening " + file.string()));
  }
  std::string text;
  char buffer[4096];
  while (true) {
    ssize_t got = read(fd.get(), buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      return std::unexpected(errno_error(ErrorCode::kInternal, "reading " + file.string()));
    if (got == 0) return text;
    text.append(buffer, static_cast<std::size_t>(got));
  }
}

Status make_dirs(const fs::path& mount, std::string_view path) {
  fs::path current = mount;
  for (const fs::path& component : fs::path(path).relative_path()) {
    current /= component;
    if (mkdir(current.c_str(), 0755) != 0 && errno != EEXIST) {
      return std::unexpected(errno_error(ErrorCode::kInternal, "creating " + current.string()));
    }
  }
  return {};
}

namespace {

Status remove_tree(const fs::path& cgroup) {
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(cgroup, error)) {
    if (entry.is_directory(error) && !entry.is_symlink(error)) {
      if (auto removed = remove_tree(entry.path()); !removed) return removed;
    }
  }
  if (rmdir(cgroup.c_str()) == 0 || errno == ENOENT) return {};
  return std::unexpected(
      errno_error(errno == EBUSY ? ErrorCode::kResourceInUse : ErrorCode::kInternal,
                  "removing " + cgroup.string()));
}

}  // namespace

Status remove_dirs(const fs::path& mount, std::string_view path) {
  return remove_tree(dir(mount, path));
}

}  // namespace cgroup_files

}  // namespace wharf::agent
