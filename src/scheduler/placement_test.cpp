// Table tests of task placement: strategies, constraints, failure reasons, and the bookkeeping
// between the placements of one request and across requests.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "scheduler/placement.hpp"

namespace wharf::scheduler {
namespace {

constexpr const char* kArnPrefix = "arn:aws:ecs:us-east-1:123456789012:container-instance/default/";

// An ACTIVE, connected t2.micro in us-east-1a with 2048 cpu and 4096 MiB unless told otherwise.
struct InstanceSpec {
  std::string id;
  std::int64_t cpu = 2048;
  std::int64_t memory = 4096;
  std::string zone = "us-east-1a";
  std::string type = "t2.micro";
  std::vector<TaskGroupCount> groups = {};
  InstanceStatus status = InstanceStatus::kActive;
  bool connected = true;
  std::vector<std::uint16_t> tcp = {};
  std::vector<std::uint16_t> udp = {};
  std::int64_t gpu = 0;
};

ContainerInstance make_instance(const InstanceSpec& spec) {
  ContainerInstance instance;
  instance.arn = kArnPrefix + spec.id;
  instance.ec2_instance_id = "i-" + spec.id;
  instance.status = spec.status;
  instance.agent_connected = spec.connected;
  instance.agent_version = "1.51.0";
  instance.remaining = {spec.cpu, spec.memory, spec.gpu};
  instance.reserved_tcp_ports = spec.tcp;
  instance.reserved_udp_ports = spec.udp;
  instance.attributes = {{"ecs.availability-zone", spec.zone},
                         {"ecs.instance-type", spec.type},
                         {"ecs.os-type", "linux"}};
  instance.task_groups = spec.groups;
  for (const auto& group : spec.groups) instance.running_tasks_count += group.count;
  return instance;
}

ClusterSnapshot make_cluster(const std::vector<InstanceSpec>& specs) {
  ClusterSnapshot snapshot;
  for (const auto& spec : specs) snapshot.instances.push_back(make_instance(spec));
  return snapshot;
}

TaskRequest make_request(std::int64_t cpu, std::int64_t memory, int count = 1,
                         std::string group = "family:app") {
  TaskRequest request;
  request.resources = {cpu, memory, 0};
  request.count = count;
  request.group = std::move(group);
  return request;
}

std::vector<std::string> placed_ids(const ClusterSnapshot& snapshot,
                                    const PlacementResult& result) {
  std::vector<std::string> ids;
  for (const std::uint32_t instance_idx : result.instances)
    ids.push_back(snapshot.instances[instance_idx].arn.substr(std::string(kArnPrefix).size()));
  return ids;
}

struct Failure {
  std::string id;
  std::string_view reason;
};

std::vector<PlacementFailure> expand(const std::vector<Failure>& failures) {
  std::vector<PlacementFailure> out;
  for (const auto& failure : failures)
    out.push_back({kArnPrefix + failure.id, std::string(failure.reason)});
  return out;
}

TEST(Placement, FollowsStrategiesAndConstraints) {
  struct Case {
    const char* name;
    std::vector<InstanceSpec> instances;
    TaskRequest request;
    std::vector<PlacementConstraint> constraints;
    std::vector<PlacementStrategy> strategies;
    std::vector<std::string> placed;
    std::vector<Failure> failures;
  };
  const std::vector<PlacementStrategy> binpack_memory = {{"binpack", "memory"}};
  const std::vector<PlacementStrategy> binpack_cpu = {{"binpack", "cpu"}};
  const std::vector<PlacementStrategy> spread_zone = {
      {"spread", "attribute:ecs.availability-zone"}};
  const std::vector<PlacementStrategy> spread_zone_instance = {
      {"spread", "attribute:ecs.availability-zone"}, {"spread", "instanceId"}};
  const std::vector<PlacementStrategy> spread_instance = {{"spread", "instanceId"}};
  const std::vector<PlacementConstraint> distinct = {{"distinctInstance", ""}};
  auto with_ports = [](TaskRequest request, std::vector<std::uint16_t> tcp,
                       std::vector<std::uint16_t> udp = {}) {
    request.tcp_host_ports = std::move(tcp);
    request.udp_host_ports = std::move(udp);
    return request;
  };
  auto with_gpu = [](TaskRequest request, std::int64_t gpu) {
    request.resources.gpu = gpu;
    return request;
  };
  auto requiring = [](TaskRequest request, std::vector<Attribute> attributes) {
    request.required_attributes = std::move(attributes);
    return request;
  };

  const Case cases[] = {
      // binpack
      {"binpack memory picks the fullest instance that fits",
       {{"a", 2048, 4096}, {"b", 2048, 1024}, {"c", 2048, 512}},
       make_request(128, 768),
       {},
       binpack_memory,
       {"b"},
       {}},
      {"binpack memory keeps packing the same instance",
       {{"a", 2048, 4096}, {"b", 2048, 1024}, {"c", 2048, 512}},
       make_request(128, 512, 4),
       {},
       binpack_memory,
       {"c", "b", "b", "a"},
       {}},
      {"binpack cpu looks at cpu only",
       {{"a", 1024, 512}, {"b", 256, 8192}, {"c", 128, 8192}},
       make_request(256, 256),
       {},
       binpack_cpu,
       {"b"},
       {}},
      {"binpack ties go to the first instance",
       {{"a", 2048, 1024}, {"b", 2048, 1024}},
       make_request(128, 512),
       {},
       binpack_memory,
       {"a"},
       {}},
      {"binpack ties broken by spread",
       {{"a", 2048, 1024, "us-east-1a", "t2.micro", {{"family:app", 1}}}, {"b", 2048, 1024}},
       make_request(128, 512),
       {},
       {{"binpack", "memory"}, {"spread", "instanceId"}},
       {"b"},
       {}},
      // spread
      {"spread by zone alternates zones",
       {{"a", 2048, 4096, "us-east-1a"},
        {"b", 2048, 4096, "us-east-1a"},
        {"c", 2048, 4096, "us-east-1b"}},
       make_request(128, 128, 3),
       {},
       spread_zone,
       {"a", "c", "a"},
       {}},
      {"spread by zone then instance",
       {{"a", 2048, 4096, "us-east-1a"},
        {"b", 2048, 4096, "us-east-1a"},
        {"c", 2048, 4096, "us-east-1b"}},
       make_request(128, 128, 4),
       {},
       spread_zone_instance,
       {"a", "c", "b", "c"},
       {}},
      {"spread by zone counts tasks already running",
       {{"a", 2048, 4096, "us-east-1a", "t2.micro", {{"family:app", 2}}},
        {"b", 2048, 4096, "us-east-1b", "t2.micro", {{"family:app", 1}}},
        {"c", 2048, 4096, "us-east-1c", "t2.micro", {{"family:app", 1}}}},
       make_request(128, 128, 3),
       {},
       spread_zone,
       {"b", "c", "a"},
       {}},
      {"spread by zone counts tasks on instances that cannot take more",
       {{"a", 2048, 4096, "us-east-1a"},
        {"b", 2048, 0, "us-east-1b", "t2.micro", {{"family:app", 3}}},
        {"c", 2048, 4096, "us-east-1b"}},
       make_request(128, 128, 2),
       {},
       spread_zone,
       {"a", "a"},
       {}},
      {"spread counts only the request's group",
       {{"a", 2048, 4096, "us-east-1a", "t2.micro", {{"family:other", 5}}},
        {"b", 2048, 4096, "us-east-1a", "t2.micro", {{"family:app", 1}}}},
       make_request(128, 128),
       {},
       spread_instance,
       {"a"},
       {}},
      {"spread by instance evens out",
       {{"a", 2048, 4096, "us-east-1a", "t2.micro", {{"family:app", 2}}},
        {"b", 2048, 4096, "us-east-1a", "t2.micro", {{"family:app", 1}}},
        {"c"}},
       make_request(128, 128, 3),
       {},
       spread_instance,
       {"c", "b", "c"},
       {}},
      {"spread by host is spread by instance",
       {{"a", 2048, 4096, "us-east-1a", "t2.micro", {{"family:app", 1}}}, {"b"}},
       make_request(128, 128),
       {},
       {{"spread", "host"}},
       {"b"},
       {}},
      {"spread by an attribute some instances lack",
       {{"a", 2048, 4096, "us-east-1a", "t2.micro", {{"family:app", 1}}}, {"b"}, {"c"}},
       make_request(128, 128, 2),
       {},
       {{"spread", "attribute:rack"}},
       {"a", "a"},  // no instance has rack: one bucket, ties to the first
       {}},
      {"spread by zone then binpack memory",
       {{"a", 2048, 2048, "us-east-1a"},
        {"b", 2048, 1024, "us-east-1a"},
        {"c", 2048, 4096, "us-east-1b"},
        {"d", 2048, 3072, "us-east-1b"}},
       make_request(128, 512, 3),
       {},
       {{"spread", "attribute:ecs.availability-zone"}, {"binpack", "memory"}},
       {"b", "d", "b"},
       {}},
      // memberOf
      {"memberOf filters by attribute",
       {{"a", 2048, 4096, "us-east-1a", "m5.large"}, {"b", 2048, 4096, "us-east-1a", "t2.small"}},
       make_request(128, 128),
       {{"memberOf", "attribute:ecs.instance-type =~ t2.*"}},
       binpack_memory,
       {"b"},
       {}},
      {"memberOf that nothing satisfies",
       {{"a", 2048, 4096, "us-east-1a", "m5.large"}, {"b", 2048, 4096, "us-east-1a", "c5.large"}},
       make_request(128, 128),
       {{"memberOf", "attribute:ecs.instance-type =~ t2.*"}},
       {},
       {},
       {{"a", reason::kMemberOf}, {"b", reason::kMemberOf}}},
      {"memberOf task affinity",
       {{"a"}, {"b", 2048, 4096, "us-east-1a", "t2.micro", {{"service:db", 1}}}},
       make_request(128, 128, 2),
       {{"memberOf", "task:group == service:db"}},
       binpack_memory,
       {"b", "b"},
       {}},
      {"memberOf anti-affinity sees the tasks of the same request",
       {{"a"}, {"b"}},
       make_request(128, 128, 3),
       {{"memberOf", "not(task:group == family:app)"}},
       binpack_memory,
       {"a", "b"},
       {{"a", reason::kMemberOf}, {"b", reason::kMemberOf}}},
      {"memberOf on runningTasksCount",
       {{"a", 2048, 4096, "us-east-1a", "t2.micro", {{"x", 2}}}, {"b"}},
       make_request(128, 128, 2),
       {{"memberOf", "runningTasksCount < 2"}},
       binpack_memory,
       {"b", "b"},
       {}},
      {"two memberOf constraints both apply",
       {{"a", 2048, 4096, "us-east-1b"}, {"b", 2048, 4096, "us-east-1a", "m5.large"}, {"c"}},
       make_request(128, 128),
       {{"memberOf", "attribute:ecs.availability-zone == us-east-1a"},
        {"memberOf", "attribute:ecs.instance-type =~ t2.*"}},
       spread_instance,
       {"c"},
       {}},
      // distinctInstance
      {"distinctInstance places each task on its own instance",
       {{"a"}, {"b"}},
       make_request(128, 128, 3),
       distinct,
       binpack_memory,
       {"a", "b"},
       {{"a", reason::kDistinctInstance}, {"b", reason::kDistinctInstance}}},
      {"distinctInstance honours tasks already running",
       {{"a", 2048, 4096, "us-east-1a", "t2.micro", {{"family:app", 1}}}, {"b", 2048, 8192}},
       make_request(128, 128),
       distinct,
       binpack_memory,
       {"b"},
       {}},
      {"distinctInstance ignores other groups",
       {{"a", 2048, 4096, "us-east-1a", "t2.micro", {{"family:other", 1}}}, {"b", 2048, 8192}},
       make_request(128, 128),
       distinct,
       binpack_memory,
       {"a"},
       {}},
      // ports
      {"a taken tcp port moves the task",
       {{"a", 2048, 1024, "us-east-1a", "t2.micro", {}, InstanceStatus::kActive, true, {80}},
        {"b"}},
       with_ports(make_request(128, 128, 2), {80}),
       {},
       binpack_memory,
       {"b"},
       {{"a", reason::kPorts}, {"b", reason::kPorts}}},
      {"a taken udp port",
       {{"a", 2048, 1024, "us-east-1a", "t2.micro", {}, InstanceStatus::kActive, true, {}, {53}}},
       with_ports(make_request(128, 128), {}, {53}),
       {},
       {},
       {},
       {{"a", reason::kPortsUdp}}},
      {"tcp and udp ports are separate",
       {{"a", 2048, 1024, "us-east-1a", "t2.micro", {}, InstanceStatus::kActive, true, {53}}},
       with_ports(make_request(128, 128), {}, {53}),
       {},
       {},
       {"a"},
       {}},
      {"tasks of one request do not share a port",
       {{"a"}},
       with_ports(make_request(128, 128, 2), {8080, 8081}),
       {},
       {},
       {"a"},
       {{"a", reason::kPorts}}},
      // resources
      {"not enough cpu",
       {{"a", 100, 4096}},
       make_request(256, 128),
       {},
       {},
       {},
       {{"a", reason::kCpu}}},
      {"not enough memory",
       {{"a", 2048, 100}},
       make_request(256, 128),
       {},
       binpack_memory,
       {},
       {{"a", reason::kMemory}}},
      {"cpu is reported before memory",
       {{"a", 100, 100}},
       make_request(256, 128),
       {},
       {},
       {},
       {{"a", reason::kCpu}}},
      {"not enough gpus",
       {{"a", 2048, 4096, "us-east-1a", "t2.micro", {}, InstanceStatus::kActive, true, {}, {}, 1},
        {"b"}},
       with_gpu(make_request(128, 128), 2),
       {},
       {},
       {},
       {{"a", reason::kGpu}, {"b", reason::kGpu}}},
      {"gpus are consumed",
       {{"a", 2048, 4096, "us-east-1a", "t2.micro", {}, InstanceStatus::kActive, true, {}, {}, 1}},
       with_gpu(make_request(128, 128, 2), 1),
       {},
       {},
       {"a"},
       {{"a", reason::kGpu}}},
      {"required attributes",
       {{"a"}, {"b"}},
       requiring(make_request(128, 128), {{"ecs.instance-type", "m5.large"}}),
       {},
       {},
       {},
       {{"a", reason::kAttribute}, {"b", reason::kAttribute}}},
      {"required attribute without a value",
       {{"a"}},
       requiring(make_request(128, 128), {{"ecs.os-type", std::nullopt}}),
       {},
       {},
       {"a"},
       {}},
      {"count beyond capacity places what fits",
       {{"a", 2048, 1024}, {"b", 2048, 600}},
       make_request(128, 512, 5),
       {},
       binpack_memory,
       {"b", "a", "a"},
       {{"a", reason::kMemory}, {"b", reason::kMemory}}},
      // instance states
      {"DRAINING instances are skipped",
       {{"a", 2048, 8192, "us-east-1a", "t2.micro", {}, InstanceStatus::kDraining}, {"b"}},
       make_request(128, 128),
       {},
       {},
       {"b"},
       {}},
      {"skipped instances are not failures",
       {{"a", 2048, 8192, "us-east-1a", "t2.micro", {}, InstanceStatus::kDraining},
        {"b", 2048, 8192, "us-east-1a", "t2.micro", {}, InstanceStatus::kRegistering},
        {"c", 2048, 100}},
       make_request(128, 128),
       {},
       {},
       {},
       {{"c", reason::kMemory}}},
      {"a disconnected agent refuses with AGENT",
       {{"a", 2048, 8192, "us-east-1a", "t2.micro", {}, InstanceStatus::kActive, false},
        {"b", 2048, 100}},
       make_request(128, 128),
       {},
       binpack_memory,
       {},
       {{"a", reason::kAgent}, {"b", reason::kMemory}}},
      {"a disconnected agent is never chosen",
       {{"a", 2048, 512, "us-east-1a", "t2.micro", {}, InstanceStatus::kActive, false}, {"b"}},
       make_request(128, 128),
       {},
       binpack_memory,
       {"b"},
       {}},
      {"each instance reports its first reason",
       {{"a", 2048, 4096, "us-east-1a", "t2.micro", {}, InstanceStatus::kActive, false},
        {"b", 10, 4096},
        {"c", 2048, 10},
        {"d", 2048, 4096, "us-east-1a", "t2.micro", {}, InstanceStatus::kDraining},
        {"e", 2048, 4096, "us-east-1b"},
        {"f", 2048, 4096, "us-east-1a", "t2.micro", {{"family:app", 1}}}},
       make_request(128, 128),
       {{"memberOf", "attribute:ecs.availability-zone == us-east-1a"}, {"distinctInstance", ""}},
       {},
       {},
       {{"a", reason::kAgent},
        {"b", reason::kCpu},
        {"c", reason::kMemory},
        {"e", reason::kMemberOf},
        {"f", reason::kDistinctInstance}}},
  };
  for (const auto& test_case : cases) {
    const ClusterSnapshot snapshot = make_cluster(test_case.instances);
    auto policy = PlacementPolicy::compile(test_case.constraints, test_case.strategies);
    ASSERT_TRUE(policy.has_value()) << test_case.name << ": " << policy.error().message;
    Rng rng(7);
    auto result = place_tasks(snapshot, test_case.request, *policy, rng);
    ASSERT_TRUE(result.has_value()) << test_case.name << ": " << result.error().message;
    EXPECT_EQ(placed_ids(snapshot, *result), test_case.placed) << test_case.name;
    EXPECT_EQ(result->failures, expand(test_case.failures)) << test_case.name;
  }
}

TEST(Placement, RefusesRequestsItCannotServe) {
  struct Case {
    const char* name;
    std::vector<InstanceSpec> instances;
    TaskRequest request;
    const char* error;
  };
  const Case cases[] = {
      {"empty cluster", {}, make_request(128, 128), "No Container Instances were found"},
      {"only draining instances",
       {{"a", 2048, 4096, "us-east-1a", "t2.micro", {}, InstanceStatus::kDraining}},
       make_request(128, 128),
       "No Container Instances were found"},
      {"count zero", {{"a"}}, make_request(128, 128, 0), "count must be at least 1"},
      {"negative memory", {{"a"}}, make_request(128, -1), "cannot be negative"},
  };
  auto policy = PlacementPolicy::compile({}, {});
  ASSERT_TRUE(policy.has_value());
  for (const auto& test_case : cases) {
    Rng rng(1);
    auto result = place_tasks(make_cluster(test_case.instances), test_case.request, *policy, rng);
    ASSERT_FALSE(result.has_value()) << test_case.name;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidParameter);
    EXPECT_NE(result.error().message.find(test_case.error), std::string::npos)
        << test_case.name << ": " << result.error().message;
  }
}

TEST(Placement, RandomIsReproducibleWithASeed) {
  const ClusterSnapshot snapshot =
      make_cluster({{"a"}, {"b"}, {"c"}, {"d"}, {"e"}, {"f"}, {"g"}, {"h"}});
  auto policy = PlacementPolicy::compile({}, std::vector<PlacementStrategy>{{"random", ""}});
  ASSERT_TRUE(policy.has_value());
  const TaskRequest request = make_request(128, 128, 10);

  Rng first_rng(42);
  Rng second_rng(42);
  auto first = place_tasks(snapshot, request, *policy, first_rng);
  auto second = place_tasks(snapshot, request, *policy, second_rng);
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_EQ(first->instances, second->instances);
  EXPECT_EQ(first->instances.size(), 10u);

  std::set<std::uint32_t> chosen;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    Rng rng(seed);
    auto result = place_tasks(snapshot, make_request(128, 128), *policy, rng);
    ASSERT_TRUE(result.has_value());
    chosen.insert(result->instances.front());
  }
  EXPECT_EQ(chosen.size(), snapshot.instances.size()) << "every instance is picked by some seed";
}

TEST(Placement, RunTaskDefaultsToRandomAmongFittingInstances) {
  const ClusterSnapshot snapshot = make_cluster({{"a", 2048, 64}, {"b"}, {"c", 64, 4096}, {"d"}});
  auto policy = PlacementPolicy::compile({}, {}, PlacementCaller::kRunTask);
  ASSERT_TRUE(policy.has_value());
  std::set<std::string> chosen;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    Rng rng(seed);
    auto result = place_tasks(snapshot, make_request(128, 128), *policy, rng);
    ASSERT_TRUE(result.has_value());
    for (const auto& id : placed_ids(snapshot, *result)) chosen.insert(id);
  }
  EXPECT_EQ(chosen, (std::set<std::string>{"b", "d"}));
}

TEST(Placement, RandomBreaksTiesOnlyAmongTheTied) {
  const ClusterSnapshot snapshot =
      make_cluster({{"a", 2048, 1024}, {"b", 2048, 1024}, {"c", 2048, 1024}, {"d", 2048, 4096}});
  const std::vector<PlacementStrategy> strategies = {{"binpack", "memory"}, {"random", ""}};
  auto policy = PlacementPolicy::compile({}, strategies);
  ASSERT_TRUE(policy.has_value());
  std::set<std::string> chosen;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    Rng rng(seed);
    auto result = place_tasks(snapshot, make_request(128, 512), *policy, rng);
    ASSERT_TRUE(result.has_value());
    for (const auto& id : placed_ids(snapshot, *result)) chosen.insert(id);
  }
  EXPECT_EQ(chosen, (std::set<std::string>{"a", "b", "c"}));
}

TEST(Placement, ServiceDefaultBalancesZonesThenInstances) {
  const ClusterSnapshot snapshot = make_cluster({{"a", 2048, 4096, "us-east-1a"},
                                                 {"b", 2048, 4096, "us-east-1a"},
                                                 {"c", 2048, 4096, "us-east-1b"},
                                                 {"d", 2048, 4096, "us-east-1c"}});
  auto policy = PlacementPolicy::compile({}, {}, PlacementCaller::kService);
  ASSERT_TRUE(policy.has_value());
  Rng rng(3);
  auto result = place_tasks(snapshot, make_request(128, 128, 6, "service:web"), *policy, rng);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(placed_ids(snapshot, *result),
            (std::vector<std::string>{"a", "c", "d", "b", "c", "d"}));
}

TEST(PlacementEngine, LaterRequestsSeeEarlierPlacements) {
  PlacementEngine engine(make_cluster(
      {{"a", 2048, 1024, "us-east-1a", "t2.micro", {}}, {"b", 2048, 2048, "us-east-1b"}}));
  const std::vector<PlacementConstraint> constraints = {{"distinctInstance", ""},
                                                        {"memberOf", "runningTasksCount < 1"}};
  const std::vector<PlacementStrategy> strategies = {{"binpack", "memory"}};
  auto policy = PlacementPolicy::compile(constraints, strategies);
  ASSERT_TRUE(policy.has_value());
  Rng rng(1);

  TaskRequest request = make_request(256, 512, 1, "service:web");
  request.tcp_host_ports = {80};
  request.udp_host_ports = {53};
  auto first = engine.place(request, *policy, rng);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->instances, (std::vector<std::uint32_t>{0}));
  auto second = engine.place(request, *policy, rng);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->instances, (std::vector<std::uint32_t>{1}));
  auto third = engine.place(request, *policy, rng);
  ASSERT_TRUE(third.has_value());
  EXPECT_TRUE(third->instances.empty());
  EXPECT_EQ(third->failures, expand({{"a", reason::kPorts}, {"b", reason::kPorts}}));

  const ContainerInstance& a = engine.snapshot().instances[0];
  EXPECT_EQ(a.remaining, (Resources{2048 - 256, 1024 - 512, 0}));
  EXPECT_EQ(a.reserved_tcp_ports, (std::vector<std::uint16_t>{80}));
  EXPECT_EQ(a.reserved_udp_ports, (std::vector<std::uint16_t>{53}));
  EXPECT_EQ(a.task_groups, (std::vector<TaskGroupCount>{{"service:web", 1}}));
  EXPECT_EQ(a.running_tasks_count, 1);

  TaskRequest other = make_request(256, 256, 1, "service:api");
  auto fourth = engine.place(other, *policy, rng);
  ASSERT_TRUE(fourth.has_value());
  EXPECT_TRUE(fourth->instances.empty()) << "runningTasksCount < 1 now excludes both";
  EXPECT_EQ(fourth->failures, expand({{"a", reason::kMemberOf}, {"b", reason::kMemberOf}}));
}

TEST(PlacementEngine, PlaceTasksLeavesTheSnapshotAlone) {
  const ClusterSnapshot snapshot = make_cluster({{"a"}, {"b"}});
  const ClusterSnapshot before = snapshot;
  auto policy = PlacementPolicy::compile({}, std::vector<PlacementStrategy>{{"binpack", "cpu"}});
  ASSERT_TRUE(policy.has_value());
  Rng rng(1);
  auto result = place_tasks(snapshot, make_request(128, 128, 3), *policy, rng);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->instances.size(), 3u);
  EXPECT_EQ(snapshot.instances, before.instances);
}

// The indexed binpack path must choose exactly what a scan of every instance chooses, across
// many placements that re-key the index (cpu and memory both indexed) and a task-dependent
// memberOf whose cached answers go stale.
TEST(PlacementEngine, IndexedBinpackAgreesWithAFullScan) {
  Rng setup(2024);
  std::vector<InstanceSpec> specs;
  const char* const types[] = {"t2.micro", "t2.large", "m5.large"};
  for (int instance_idx = 0; instance_idx < 60; ++instance_idx) {
    InstanceSpec spec;
    spec.id = "i" + std::to_string(instance_idx);
    spec.cpu = 256 * static_cast<std::int64_t>(1 + setup() % 8);
    spec.memory = 512 * static_cast<std::int64_t>(1 + setup() % 8);
    spec.type = types[setup() % 3];
    spec.status = setup() % 10 == 0 ? InstanceStatus::kDraining : InstanceStatus::kActive;
    spec.connected = setup() % 12 != 0;
    specs.push_back(spec);
  }
  PlacementEngine engine(make_cluster(specs));
  const std::vector<PlacementConstraint> constraints = {
      {"memberOf", "attribute:ecs.instance-type =~ t2.* and runningTasksCount < 6"}};
  auto by_memory =
      PlacementPolicy::compile(constraints, std::vector<PlacementStrategy>{{"binpack", "memory"}});
  auto by_cpu =
      PlacementPolicy::compile(constraints, std::vector<PlacementStrategy>{{"binpack", "cpu"}});
  ASSERT_TRUE(by_memory.has_value() && by_cpu.has_value());
  auto query = Query::parse(constraints.front().expression);
  ASSERT_TRUE(query.has_value());

  Rng rng(5);
  int placed = 0;
  for (int request_idx = 0; request_idx < 400; ++request_idx) {
    const bool memory_first = request_idx % 3 != 0;
    const TaskRequest request = make_request(64 * static_cast<std::int64_t>(1 + setup() % 4),
                                             128 * static_cast<std::int64_t>(1 + setup() % 4));
    // The reference: scan every instance, keep the least remaining field, first on ties.
    std::optional<std::uint32_t> expected;
    std::int64_t best = std::numeric_limits<std::int64_t>::max();
    const auto& instances = engine.snapshot().instances;
    for (std::uint32_t instance_idx = 0; instance_idx < instances.size(); ++instance_idx) {
      const ContainerInstance& instance = instances[instance_idx];
      if (instance.status != InstanceStatus::kActive || !instance.agent_connected) continue;
      if (instance.remaining.cpu < request.resources.cpu ||
          instance.remaining.memory < request.resources.memory || !query->matches(instance))
        continue;
      const std::int64_t key = memory_first ? instance.remaining.memory : instance.remaining.cpu;
      if (key < best) {
        best = key;
        expected = instance_idx;
      }
    }
    auto result = engine.place(request, memory_first ? *by_memory : *by_cpu, rng);
    ASSERT_TRUE(result.has_value());
    if (expected) {
      ASSERT_EQ(result->instances, std::vector<std::uint32_t>{*expected}) << request_idx;
      ++placed;
    } else {
      ASSERT_TRUE(result->instances.empty()) << request_idx;
      ASSERT_FALSE(result->failures.empty());
    }
  }
  EXPECT_GT(placed, 100);
}

// A slow, obvious model of placement: filter every instance, order the fitting ones by the
// strategies' keys (then snapshot order), place, repeat.
std::vector<std::uint32_t> reference_placement(std::vector<ContainerInstance>& instances,
                                               const TaskRequest& request, const Query& member_of,
                                               const std::vector<PlacementStrategy>& strategies) {
  auto key = [&](const PlacementStrategy& strategy, const ContainerInstance& instance) {
    if (strategy.type == "binpack")
      return strategy.field == "cpu" ? instance.remaining.cpu : instance.remaining.memory;
    if (strategy.field == "instanceId") return std::int64_t{instance.group_count(request.group)};
    const std::string name = strategy.field.substr(std::string("attribute:").size());
    const Attribute* mine = instance.find_attribute(name);
    std::int64_t total = 0;
    for (const ContainerInstance& other : instances) {
      const Attribute* theirs = other.find_attribute(name);
      const bool same = (mine == nullptr && theirs == nullptr) ||
                        (mine != nullptr && theirs != nullptr && mine->value == theirs->value);
      if (same) total += other.group_count(request.group);
    }
    return total;
  };
  std::vector<std::uint32_t> placed;
  for (int task_idx = 0; task_idx < request.count; ++task_idx) {
    std::optional<std::uint32_t> best;
    std::vector<std::int64_t> best_keys;
    for (std::uint32_t instance_idx = 0; instance_idx < instances.size(); ++instance_idx) {
      const ContainerInstance& instance = instances[instance_idx];
      if (instance.status != InstanceStatus::kActive || !instance.agent_connected ||
          instance.remaining.cpu < request.resources.cpu ||
          instance.remaining.memory < request.resources.memory || !member_of.matches(instance))
        continue;
      std::vector<std::int64_t> keys;
      for (const auto& strategy : strategies) keys.push_back(key(strategy, instance));
      if (!best || keys < best_keys) {
        best = instance_idx;
        best_keys = keys;
      }
    }
    if (!best) break;
    ContainerInstance& chosen = instances[*best];
    chosen.remaining.cpu -= request.resources.cpu;
    chosen.remaining.memory -= request.resources.memory;
    auto group =
        std::find_if(chosen.task_groups.begin(), chosen.task_groups.end(),
                     [&](const TaskGroupCount& entry) { return entry.group == request.group; });
    if (group == chosen.task_groups.end()) {
      chosen.task_groups.push_back({request.group, 1});
    } else {
      ++group->count;
    }
    ++chosen.running_tasks_count;
    placed.push_back(*best);
  }
  return placed;
}

TEST(PlacementEngine, AgreesWithANaiveReference) {
  Rng setup(77);
  std::vector<InstanceSpec> specs;
  const char* const zones[] = {"us-east-1a", "us-east-1b", "us-east-1c"};
  const char* const groups[] = {"service:web", "service:api", "family:batch"};
  for (int instance_idx = 0; instance_idx < 40; ++instance_idx) {
    InstanceSpec spec;
    spec.id = "i" + std::to_string(instance_idx);
    spec.cpu = 512 * static_cast<std::int64_t>(1 + setup() % 8);
    spec.memory = 1024 * static_cast<std::int64_t>(1 + setup() % 8);
    spec.zone = zones[setup() % 3];
    spec.type = setup() % 4 == 0 ? "m5.large" : "t2.large";
    spec.status = setup() % 10 == 0 ? InstanceStatus::kDraining : InstanceStatus::kActive;
    spec.connected = setup() % 12 != 0;
    if (setup() % 3 == 0) spec.groups = {{groups[setup() % 3], static_cast<int>(1 + setup() % 3)}};
    specs.push_back(spec);
  }
  const std::string expression = "attribute:ecs.instance-type =~ t2.* and runningTasksCount < 16";
  auto member_of = Query::parse(expression);
  ASSERT_TRUE(member_of.has_value());
  const std::vector<std::vector<PlacementStrategy>> strategy_sets = {
      {{"spread", "attribute:ecs.availability-zone"}, {"spread", "instanceId"}},
      {{"spread", "attribute:ecs.availability-zone"}, {"binpack", "memory"}},
      {{"spread", "instanceId"}},
      {{"binpack", "cpu"}, {"spread", "instanceId"}},
      {{"spread", "attribute:ecs.instance-type"}, {"binpack", "cpu"}, {"spread", "instanceId"}},
  };
  std::vector<PlacementPolicy> policies;
  for (const auto& strategies : strategy_sets) {
    auto policy = PlacementPolicy::compile(
        std::vector<PlacementConstraint>{{"memberOf", expression}}, strategies);
    ASSERT_TRUE(policy.has_value()) << policy.error().message;
    policies.push_back(*policy);
  }

  PlacementEngine engine(make_cluster(specs));
  std::vector<ContainerInstance> model = make_cluster(specs).instances;
  Rng rng(9);
  std::size_t placed = 0;
  for (int request_idx = 0; request_idx < 120; ++request_idx) {
    const std::size_t policy_idx = static_cast<std::size_t>(request_idx) % policies.size();
    const TaskRequest request =
        make_request(64 * static_cast<std::int64_t>(1 + setup() % 4),
                     128 * static_cast<std::int64_t>(1 + setup() % 4),
                     static_cast<int>(1 + setup() % 6), groups[setup() % 3]);
    const std::vector<std::uint32_t> expected =
        reference_placement(model, request, *member_of, strategy_sets[policy_idx]);
    auto result = engine.place(request, policies[policy_idx], rng);
    ASSERT_TRUE(result.has_value());
    ASSERT_EQ(result->instances, expected) << "request " << request_idx;
    ASSERT_EQ(result->failures.empty(), expected.size() == static_cast<std::size_t>(request.count));
    placed += expected.size();
  }
  EXPECT_EQ(engine.snapshot().instances, model);
  EXPECT_GT(placed, 120u);  // and many requests run out of room, so failures are compared too
}

}  // namespace
}  // namespace wharf::scheduler
