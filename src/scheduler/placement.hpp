// Where tasks go: the ECS placement algorithm over a cluster snapshot. No I/O and no clock; the
// only randomness is the generator the caller passes in.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "scheduler/placement_policy.hpp"
#include "scheduler/snapshot.hpp"

namespace wharf::scheduler {

// The generator behind the random strategy; seed it for reproducible placement.
using Rng = std::mt19937_64;

// Failure reasons, worded as ECS words them in RunTask / StartTask `failures`.
namespace reason {
inline constexpr std::string_view kAgent = "AGENT";
inline constexpr std::string_view kCpu = "RESOURCE:CPU";
inline constexpr std::string_view kMemory = "RESOURCE:MEMORY";
inline constexpr std::string_view kGpu = "RESOURCE:GPU";
inline constexpr std::string_view kPorts = "RESOURCE:PORTS";
inline constexpr std::string_view kPortsUdp = "RESOURCE:PORTS_UDP";
inline constexpr std::string_view kAttribute = "ATTRIBUTE";
inline constexpr std::string_view kMemberOf = "MemberOf placement constraint unsatisfied.";
inline constexpr std::string_view kDistinctInstance =
    "DistinctInstance placement constraint unsatisfied.";
}  // namespace reason

// One task of a task definition, `count` times.
struct TaskRequest {
  Resources resources;                         // what one task reserves
  std::vector<std::uint16_t> tcp_host_ports;   // static host ports (hostPort != 0), tcp
  std::vector<std::uint16_t> udp_host_ports;   // static host ports, udp
  std::vector<Attribute> required_attributes;  // requiresAttributes; no value means any value
  std::string group;                           // "family:NAME", "service:NAME" or custom
  int count = 1;
};

// An entry of the ECS Failure shape.
struct PlacementFailure {
  std::string arn;
  std::string reason;

  bool operator==(const PlacementFailure&) const = default;
};

struct PlacementResult {
  // For each placed task in order, the index of its instance in the snapshot.
  std::vector<std::uint32_t> instances;
  // Empty when all `count` tasks were placed. Otherwise, for the first task that fit nowhere,
  // each ACTIVE instance once with the first reason it refused the task, checked in this order:
  // AGENT, RESOURCE:CPU, RESOURCE:MEMORY, RESOURCE:GPU, RESOURCE:PORTS, RESOURCE:PORTS_UDP,
  // ATTRIBUTE, MemberOf…, DistinctInstance…. The tasks after it would fail the same way.
  std::vector<PlacementFailure> failures;
};

// A snapshot the engine places into, one task at a time. Each placement consumes the instance's
// CPU, memory, GPUs and host ports and adds the task's group there, so the tasks of one request
// see each other (distinctInstance, spread, task:group) and so do the requests that follow.
//
// Only ACTIVE instances take tasks; DRAINING and the other states are skipped without a failure,
// as ECS skips them. Instances whose agent is disconnected refuse with AGENT.
//
// Strategies: binpack picks the instance with the least remaining cpu / memory that still fits;
// spread picks the instance whose field value (the instance itself, or an attribute value, with
// instances lacking the attribute forming one more value) holds the fewest tasks of the request's
// group, counted over every instance of the snapshot; random picks uniformly. Each later
// strategy breaks the ties of the ones before; remaining ties go to the first instance in
// snapshot order.
//
// Cost: the memberOf answer of each instance is cached per expression (and recomputed for an
// instance a task lands on when the expression reads task:group or runningTasksCount); binpack
// as the first strategy walks an ordered index of remaining cpu / memory instead of every
// instance. A placement allocates nothing in the common case.
class PlacementEngine {
 public:
  explicit PlacementEngine(ClusterSnapshot snapshot);

  // Places `request.count` tasks. Errors (kInvalidParameter): the snapshot has no ACTIVE
  // instance ("No Container Instances were found in your cluster.", as ECS says), or the request
  // is malformed (count < 1, negative resources).
  Result<PlacementResult> place(const TaskRequest& request, const PlacementPolicy& policy,
                                Rng& rng);

  // The snapshot with every placement so far applied.
  const ClusterSnapshot& snapshot() const { return snapshot_; }

 private:
  enum class Refusal : std::uint8_t {
    kNone,
    kAgent,
    kCpu,
    kMemory,
    kGpu,
    kPorts,
    kPortsUdp,
    kAttribute,
    kMemberOf,
    kDistinctInstance,
  };
  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };
  // memberOf answers of one expression: per instance -1 not yet known, 0 no, 1 yes.
  struct QueryCache {
    bool depends_on_tasks = false;
    std::vector<std::int8_t> answers;
  };
  // The values of one attribute across instances: value ids per instance, 0 for "absent".
  struct AttributeValues {
    std::vector<std::uint32_t> value_of_instance;
    std::uint32_t value_count = 1;
  };
  // What one call to place() works with.
  struct Call {
    const TaskRequest& request;
    const PlacementPolicy& policy;
    std::vector<std::pair<const Query*, QueryCache*>> member_of;
    // Per strategy (when any spreads): for spread by attribute, the group's tasks per value.
    std::vector<const AttributeValues*> spread_values;
    std::vector<std::vector<std::uint32_t>> spread_counts;
    // Per instance, the tasks of the request's group; filled only when a strategy spreads.
    std::vector<std::uint32_t> group_counts;
  };
  using ResourceIndex = std::set<std::pair<std::int64_t, std::uint32_t>>;

  void bind_member_of(Call& call);
  void count_spread(Call& call);
  Refusal refusal(std::uint32_t instance_idx, const Call& call);
  std::optional<std::uint32_t> choose(const Call& call, Rng& rng);
  void collect_feasible(const Call& call);
  void collect_binpack_front(BinpackField field, const Call& call);
  void narrow(std::size_t first_strategy, const Call& call, Rng& rng);
  std::int64_t spread_count(std::size_t strategy_idx, std::uint32_t instance_idx,
                            const Call& call) const;
  void commit(std::uint32_t instance_idx, Call& call);
  void report_failures(const Call& call, std::vector<PlacementFailure>& failures);
  ResourceIndex& resource_index(BinpackField field);
  const AttributeValues& attribute_values(const std::string& name);
  bool is_candidate(std::uint32_t instance_idx) const;

  ClusterSnapshot snapshot_;
  std::size_t active_count_ = 0;
  std::optional<ResourceIndex> by_cpu_;  // candidates by remaining cpu, built on first binpack
  std::optional<ResourceIndex> by_memory_;
  std::unordered_map<std::string, QueryCache, TextHash, std::equal_to<>> query_caches_;
  std::unordered_map<std::string, AttributeValues, TextHash, std::equal_to<>> attribute_values_;
  // Scratch, reused so that placements do not allocate.
  std::vector<std::uint32_t> feasible_;    // unindexed strategies: the instances that fit
  std::vector<std::uint32_t> candidates_;  // the instances still in the running
  std::vector<std::int64_t> keys_;         // a strategy's key per candidate
};

// Places on a copy of `snapshot` and leaves it as it was.
Result<PlacementResult> place_tasks(const ClusterSnapshot& snapshot, const TaskRequest& request,
                                    const PlacementPolicy& policy, Rng& rng);

}  // namespace wharf::scheduler
