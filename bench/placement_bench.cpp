// Placement throughput on one thread: 10,000 container instances, 100,000 task placements.
#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "scheduler/placement.hpp"

namespace {

using namespace wharf::scheduler;

constexpr int kInstances = 10'000;
constexpr int kTasks = 100'000;
constexpr int kTasksPerRequest = 10;  // RunTask's largest count

// Half the fleet is t2 (what the memberOf constraint admits), spread over three zones, with
// unequal memory so binpack has real choices to make.
ClusterSnapshot make_cluster() {
  const std::array<const char*, 4> types = {"t2.large", "m5.large", "t2.xlarge", "c5.xlarge"};
  const std::array<const char*, 3> zones = {"us-east-1a", "us-east-1b", "us-east-1c"};
  ClusterSnapshot snapshot;
  snapshot.instances.reserve(kInstances);
  for (int instance_idx = 0; instance_idx < kInstances; ++instance_idx) {
    ContainerInstance instance;
    const std::string id = std::to_string(instance_idx);
    instance.arn = "arn:aws:ecs:us-east-1:123456789012:container-instance/bench/" + id;
    instance.ec2_instance_id = "i-" + id;
    instance.agent_version = "1.51.0";
    instance.registered_at = wharf::TimePoint(std::chrono::seconds(1'700'000'000 + instance_idx));
    instance.remaining = {8192, 16384 + 2048 * (instance_idx % 5), 0};
    instance.attributes = {{"ecs.availability-zone", zones[instance_idx % zones.size()]},
                           {"ecs.instance-type", types[instance_idx % types.size()]},
                           {"ecs.os-type", "linux"},
                           {"ecs.cpu-architecture", "x86_64"},
                           {"ecs.ami-id", "ami-0123456789abcdef0"},
                           {"stack", instance_idx % 7 == 0 ? "canary" : "prod"}};
    instance.reserved_tcp_ports = {22, 2375, 2376, 51678, 51679};
    snapshot.instances.push_back(std::move(instance));
  }
  return snapshot;
}

std::vector<TaskRequest> make_requests() {
  std::vector<TaskRequest> requests;
  for (const std::int64_t memory : {256, 384, 512}) {
    TaskRequest request;
    request.resources = {128, memory, 0};
    request.group = "family:worker-" + std::to_string(memory);
    request.count = kTasksPerRequest;
    requests.push_back(request);
  }
  return requests;
}

PlacementPolicy make_policy(std::vector<PlacementStrategy> strategies) {
  const std::vector<PlacementConstraint> constraints = {
      {"memberOf", "attribute:ecs.instance-type =~ t2.* and attribute:ecs.os-type == linux"}};
  return PlacementPolicy::compile(constraints, strategies).value();
}

// The target: binpack(memory) + memberOf, 100,000 placements as 10,000 RunTask-sized requests
// against one engine. Indexes and memberOf answers are built inside the timed region.
void BM_BinpackMemoryMemberOf(benchmark::State& state) {
  const ClusterSnapshot cluster = make_cluster();
  const std::vector<TaskRequest> requests = make_requests();
  const PlacementPolicy policy = make_policy({{"binpack", "memory"}});
  std::int64_t placed_total = 0;
  for (auto _ : state) {
    state.PauseTiming();
    PlacementEngine engine(cluster);
    Rng rng(1);
    state.ResumeTiming();
    int placed = 0;
    for (int request_idx = 0; request_idx < kTasks / kTasksPerRequest; ++request_idx) {
      auto result = engine.place(requests[request_idx % requests.size()], policy, rng);
      placed += static_cast<int>(result->instances.size());
      benchmark::DoNotOptimize(result);
    }
    if (placed != kTasks) state.SkipWithError("not every task was placed");
    placed_total += placed;
  }
  state.counters["placements/s"] =
      benchmark::Counter(static_cast<double>(placed_total), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_BinpackMemoryMemberOf)->Unit(benchmark::kMillisecond)->UseRealTime();

// The service default (spread by zone, then by instance) scans every candidate per placement:
// 10,000 placements as 100 requests of 100.
void BM_SpreadZoneInstanceMemberOf(benchmark::State& state) {
  const ClusterSnapshot cluster = make_cluster();
  TaskRequest request = make_requests().front();
  request.count = 100;
  const PlacementPolicy policy =
      make_policy({{"spread", "attribute:ecs.availability-zone"}, {"spread", "instanceId"}});
  std::int64_t placed_total = 0;
  for (auto _ : state) {
    state.PauseTiming();
    PlacementEngine engine(cluster);
    Rng rng(1);
    state.ResumeTiming();
    for (int request_idx = 0; request_idx < 100; ++request_idx) {
      auto result = engine.place(request, policy, rng);
      placed_total += static_cast<std::int64_t>(result->instances.size());
      benchmark::DoNotOptimize(result);
    }
  }
  state.counters["placements/s"] =
      benchmark::Counter(static_cast<double>(placed_total), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SpreadZoneInstanceMemberOf)->Unit(benchmark::kMillisecond)->UseRealTime();

// What a caller pays to build an engine from a 10,000-instance snapshot and place one request.
void BM_FreshEngineOneRequest(benchmark::State& state) {
  const ClusterSnapshot cluster = make_cluster();
  const TaskRequest request = make_requests().front();
  const PlacementPolicy policy = make_policy({{"binpack", "memory"}});
  for (auto _ : state) {
    Rng rng(1);
    auto result = place_tasks(cluster, request, policy, rng);
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_FreshEngineOneRequest)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
