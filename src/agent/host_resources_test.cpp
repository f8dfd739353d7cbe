// Unit tests for host measurement: cgroup and /proc parsing, and the resources registered.
#include "agent/host_resources.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace wharf::agent {
namespace {

TEST(HostResources, CgroupCpuMaxInCpuUnits) {
  struct Case {
    const char* text;
    std::optional<int64_t> units;
  };
  const Case cases[] = {
      {"max 100000\n", std::nullopt}, {"100000 100000\n", 1024},  {"150000 100000", 1536},
      {"50000 100000", 512},          {"400000 100000\n", 4096},  {"garbage", std::nullopt},
      {"0 100000", std::nullopt},     {"100000 0", std::nullopt}, {"", std::nullopt},
  };
  for (const auto& test_case : cases) {
    EXPECT_EQ(parse_cgroup_cpu_max(test_case.text), test_case.units) << test_case.text;
  }
}

TEST(HostResources, CpuUnitsPerUsableCoreCappedByTheLimit) {
  EXPECT_EQ(cpu_units(4, std::nullopt), 4096);
  EXPECT_EQ(cpu_units(4, 1536), 1536);
  EXPECT_EQ(cpu_units(2, 8192), 2048);  // a limit above the cores grants nothing extra
  EXPECT_EQ(cpu_units(0, std::nullopt), 1024);
  EXPECT_EQ(cpu_units(2, 0), 1);
}

TEST(HostResources, MemTotalFromMeminfo) {
  auto total = parse_mem_total_kib("MemFree:  100 kB\nMemTotal:       16318480 kB\n");
  ASSERT_TRUE(total);
  EXPECT_EQ(*total, 16318480);
  EXPECT_FALSE(parse_mem_total_kib("MemFree: 100 kB\n"));
  EXPECT_FALSE(parse_mem_total_kib("MemTotal: lots kB\n"));
}

TEST(HostResources, CgroupMemoryMaxInMiB) {
  EXPECT_EQ(parse_cgroup_memory_max("max\n"), std::nullopt);
  EXPECT_EQ(parse_cgroup_memory_max("1073741824\n"), 1024);
  EXPECT_EQ(parse_cgroup_memory_max("-1"), std::nullopt);
}

TEST(HostResources, MemoryIsTheSmallerTotalLessTheReserve) {
  EXPECT_EQ(memory_mib(16 * 1024 * 1024, std::nullopt, 256).value(), 16384 - 256);
  EXPECT_EQ(memory_mib(16 * 1024 * 1024, 2048, 256).value(), 2048 - 256);
  EXPECT_EQ(memory_mib(16 * 1024 * 1024, 65536, 0).value(), 16384);
  EXPECT_FALSE(memory_mib(256 * 1024, std::nullopt, 256));  // nothing left
  EXPECT_FALSE(memory_mib(1024 * 1024, std::nullopt, -1));
}

TEST(HostResources, WireShapesAsEcsAgentsSendThem) {
  HostResources resources{2048, 3840, {22, 2375}, {}};
  auto wire = resources_to_wire(resources);
  ASSERT_EQ(wire.size(), 4u);
  EXPECT_EQ(wire[0].at("name"), "CPU");
  EXPECT_EQ(wire[0].at("type"), "INTEGER");
  EXPECT_EQ(wire[0].at("integerValue"), 2048);
  EXPECT_EQ(wire[1].at("name"), "MEMORY");
  EXPECT_EQ(wire[1].at("integerValue"), 3840);
  EXPECT_EQ(wire[2].at("name"), "PORTS");
  EXPECT_EQ(wire[2].at("type"), "STRINGSET");
  EXPECT_EQ(wire[2].at("stringSetValue"), (boost::json::array{"22", "2375"}));
  EXPECT_EQ(wire[3].at("name"), "PORTS_UDP");
  EXPECT_EQ(wire[3].at("stringSetValue"), boost::json::array{});
}

TEST(HostResources, ThisHostMeasures) {
  auto measured = measure_host(0);
  ASSERT_TRUE(measured) << measured.error().message;
  EXPECT_GE(measured->cpu_units, 1);
  EXPECT_GT(measured->memory_mib, 0);
  EXPECT_EQ(measured->reserved_tcp_ports, (std::vector<uint16_t>{22, 2375, 2376, 51678, 51679}));
}

}  // namespace
}  // namespace wharf::agent
