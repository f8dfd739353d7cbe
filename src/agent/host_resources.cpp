// Host measurement: parsing of /proc and cgroup files, kept pure; reading them, kept apart.
#include "agent/host_resources.hpp"

#include <sched.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "agent/files.hpp"
#include "common/text.hpp"

namespace wharf::agent {

namespace fs = std::filesystem;

namespace {

std::optional<int64_t> parse_int(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

int usable_cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
}

// This process's cgroup v2 directory and its ancestors, leaf first; empty on cgroup v1.
std::vector<fs::path> cgroup_dirs() {
  std::vector<fs::path> dirs;
  auto membership = read_text_file("/proc/self/cgroup");
  if (!membership) return dirs;
  std::istringstream lines(*membership);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("0::")) continue;
    fs::path relative = fs::path(line.substr(3)).relative_path();
    for (fs::path dir = fs::path("/sys/fs/cgroup") / relative;; dir = dir.parent_path()) {
      dirs.push_back(dir);
      if (dir == "/sys/fs/cgroup" || !dir.has_parent_path()) break;
    }
  }
  return dirs;
}

// The smallest of the limits `file` sets in the cgroup hierarchy, as `parse` reads them.
template <typename Parse>
std::optional<int64_t> tightest(const std::vector<fs::path>& dirs, const char* file, Parse parse) {
  std::optional<int64_t> tightest_limit;
  for (const auto& dir : dirs) {
    auto text = read_text_file(dir / file);
    if (!text) continue;
    auto limit = parse(*text);
    if (limit && (!tightest_limit || *limit < *tightest_limit)) tightest_limit = limit;
  }
  return tightest_limit;
}

}  // namespace

std::optional<int64_t> parse_cgroup_cpu_max(std::string_view cpu_max) {
  cpu_max = trim(cpu_max);
  auto space = cpu_max.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  auto quota = parse_int(cpu_max.substr(0, space));
  auto period = parse_int(cpu_max.substr(space + 1));
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;
  return *quota * kCpuUnitsPerCore / *period;
}

std::optional<int64_t> parse_cgroup_memory_max(std::string_view memory_max) {
  auto bytes = parse_int(trim(memory_max));
  if (!bytes || *bytes < 0) return std::nullopt;
  return *bytes / (1024 * 1024);
}

int64_t cpu_units(int cpu_count, std::optional<int64_t> limit_units) {
  int64_t units = std::max(cpu_count, 1) * kCpuUnitsPerCore;
  return limit_units ? std::min(units, std::max<int64_t>(*limit_units, 1)) : units;
}

Result<int64_t> parse_mem_total_kib(std::string_view meminfo) {
  std::istringstream lines{std::string(meminfo)};
  for (std::string line; std::getline(lines, line);) {
    std::string_view text = line;
    if (!text.starts_with("MemTotal:")) continue;
    text = trim(text.substr(9));
    if (text.ends_with("kB")) text = trim(text.substr(0, text.size() - 2));
    auto value = parse_int(text);
    if (!value || *value <= 0) return invalid("MemTotal in /proc/meminfo is not a size: " + line);
    return *value;
  }
  return invalid("/proc/meminfo has no MemTotal line");
}

Result<int64_t> memory_mib(int64_t mem_total_kib, std::optional<int64_t> limit_mib,
                           int64_t reserve_mib) {
  int64_t total = mem_total_kib / 1024;
  if (limit_mib) total = std::min(total, *limit_mib);
  if (reserve_mib < 0) return invalid("the memory reserve cannot be negative");
  if (total - reserve_mib <= 0) {
    return invalid("the host has " + std::to_string(total) + " MiB of memory, no more than the " +
                   std::to_string(reserve_mib) + " MiB reserved for the system");
  }
  return total - reserve_mib;
}

Result<HostResources> measure_host(int64_t memory_reserve_mib) {
  auto dirs = cgroup_dirs();
  HostResources resources;
  resources.cpu_units =
      cpu_units(usable_cpu_count(), tightest(dirs, "cpu.max", parse_cgroup_cpu_max));
  auto meminfo = read_text_file("/proc/meminfo");
  if (!meminfo) return fail(ErrorCode::kInternal, "cannot read /proc/meminfo");
  auto total = parse_mem_total_kib(*meminfo);
  if (!total) return std::unexpected(total.error());
  auto memory =
      memory_mib(*total, tightest(dirs, "memory.max", parse_cgroup_memory_max), memory_reserve_mib);
  if (!memory) return std::unexpected(memory.error().context("measuring memory"));
  resources.memory_mib = *memory;
  resources.reserved_tcp_ports.assign(std::begin(kReservedTcpPorts), std::end(kReservedTcpPorts));
  return resources;
}

boost::json::array resources_to_wire(const HostResources& resources) {
  auto integer = [](std::string_view name, int64_t value) {
    return boost::json::object{{"name", name},
                               {"type", "INTEGER"},
                               {"doubleValue", 0.0},
                               {"longValue", 0},
                               {"integerValue", value}};
  };
  auto ports = [](std::string_view name, const std::vector<uint16_t>& numbers) {
    boost::json::array values;
    for (auto port : numbers) values.push_back(boost::json::string(std::to_string(port)));
    return boost::json::object{{"name", name},       {"type", "STRINGSET"},
                               {"doubleValue", 0.0}, {"longValue", 0},
                               {"integerValue", 0},  {"stringSetValue", std::move(values)}};
  };
  return boost::json::array{integer("CPU", resources.cpu_units),
                            integer("MEMORY", resources.memory_mib),
                            ports("PORTS", resources.reserved_tcp_ports),
                            ports("PORTS_UDP", resources.reserved_udp_ports)};
}

}  // namespace wharf::agent
