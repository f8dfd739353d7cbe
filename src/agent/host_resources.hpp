// What this host offers tasks: CPU, memory and ports, measured once at agent start.
#pragma once

#include <boost/json/array.hpp>

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace wharf::agent {

inline constexpr int64_t kCpuUnitsPerCore = 1024;
// The ports ECS reserves on every container instance: ssh, the Docker daemon, the agent's
// introspection and metadata endpoints.
inline constexpr uint16_t kReservedTcpPorts[] = {22, 2375, 2376, 51678, 51679};

struct HostResources {
  int64_t cpu_units = 0;
  int64_t memory_mib = 0;
  std::vector<uint16_t> reserved_tcp_ports;
  std::vector<uint16_t> reserved_udp_ports;

  bool operator==(const HostResources&) const = default;
};

// A cgroup v2 cpu.max ("150000 100000": quota and period in µs) as CPU units; nullopt for
// "max" (no limit) and for text that is not a limit.
std::optional<int64_t> parse_cgroup_cpu_max(std::string_view cpu_max);
// A cgroup v2 memory.max (bytes) in MiB; nullopt for "max" and for text that is not a limit.
std::optional<int64_t> parse_cgroup_memory_max(std::string_view memory_max);
// MemTotal of /proc/meminfo, in KiB.
Result<int64_t> parse_mem_total_kib(std::string_view meminfo);

// CPU units for `cpu_count` usable CPUs, lowered to `limit_units` when that is smaller.
int64_t cpu_units(int cpu_count, std::optional<int64_t> limit_units);
// MiB tasks may use: MemTotal, lowered to `limit_mib` when smaller, less `reserve_mib` for the
// system and the agent. An error when nothing would be left.
Result<int64_t> memory_mib(int64_t mem_total_kib, std::optional<int64_t> limit_mib,
                           int64_t reserve_mib);

// Measures this host: the CPUs this process may run on, /proc/meminfo, and the cgroup v2
// limits of this process's cgroup and its ancestors.
Result<HostResources> measure_host(int64_t memory_reserve_mib);

// The ECS Resource shapes RegisterContainerInstance takes: CPU and MEMORY as INTEGER, PORTS
// and PORTS_UDP as STRINGSET.
boost::json::array resources_to_wire(const HostResources& resources);

}  // namespace wharf::agent
