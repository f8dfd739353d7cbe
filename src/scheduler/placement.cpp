// The placement engine: candidate filtering, strategies, and the bookkeeping of each placement.
#include "scheduler/placement.hpp"

#include <algorithm>
#include <limits>

namespace wharf::scheduler {

namespace {

bool contains_port(const std::vector<std::uint16_t>& ports, std::uint16_t port) {
  return std::find(ports.begin(), ports.end(), port) != ports.end();
}

bool any_port_taken(const std::vector<std::uint16_t>& wanted,
                    const std::vector<std::uint16_t>& reserved) {
  return std::any_of(wanted.begin(), wanted.end(),
                     [&](std::uint16_t port) { return contains_port(reserved, port); });
}

bool has_required_attributes(const ContainerInstance& instance,
                             const std::vector<Attribute>& required) {
  return std::all_of(required.begin(), required.end(), [&](const Attribute& wanted) {
    const Attribute* attribute = instance.find_attribute(wanted.name);
    return attribute != nullptr && (!wanted.value || attribute->value == wanted.value);
  });
}

std::int64_t remaining(const ContainerInstance& instance, BinpackField field) {
  return field == BinpackField::kCpu ? instance.remaining.cpu : instance.remaining.memory;
}

std::int64_t required(const TaskRequest& request, BinpackField field) {
  return field == BinpackField::kCpu ? request.resources.cpu : request.resources.memory;
}

}  // namespace

PlacementEngine::PlacementEngine(ClusterSnapshot snapshot) : snapshot_(std::move(snapshot)) {
  active_count_ =
      static_cast<std::size_t>(std::count_if(snapshot_.instances.begin(), snapshot_.instances.end(),
                                             [](const ContainerInstance& instance) {
                                               return instance.status == InstanceStatus::kActive;
                                             }));
}

bool PlacementEngine::is_candidate(std::uint32_t instance_idx) const {
  const ContainerInstance& instance = snapshot_.instances[instance_idx];
  return instance.status == InstanceStatus::kActive && instance.agent_connected;
}

Result<PlacementResult> PlacementEngine::place(const TaskRequest& request,
                                               const PlacementPolicy& policy, Rng& rng) {
  if (request.count < 1) return invalid("count must be at least 1");
  if (request.resources.cpu < 0 || request.resources.memory < 0 || request.resources.gpu < 0)
    return invalid("task cpu, memory and gpu cannot be negative");
  if (active_count_ == 0) return invalid("No Container Instances were found in your cluster.");

  Call call{request, policy, {}, {}, {}, {}};
  bind_member_of(call);
  count_spread(call);

  // Whether an instance fits changes only when a task lands on it, so without a binpack index
  // the instances are filtered once per request and only the chosen one is checked again.
  const auto& strategies = policy.strategies();
  const bool indexed = !strategies.empty() && strategies.front().type == StrategyType::kBinpack;
  if (!indexed) collect_feasible(call);
  PlacementResult result;
  result.instances.reserve(static_cast<std::size_t>(request.count));
  for (int task_idx = 0; task_idx < request.count; ++task_idx) {
    const auto chosen = choose(call, rng);
    if (!chosen) {
      report_failures(call, result.failures);
      break;
    }
    commit(*chosen, call);
    result.instances.push_back(*chosen);
    if (!indexed && refusal(*chosen, call) != Refusal::kNone) {
      feasible_.erase(std::lower_bound(feasible_.begin(), feasible_.end(), *chosen));
    }
  }
  return result;
}

// Points the call at the cached memberOf answers of each of its expressions.
void PlacementEngine::bind_member_of(Call& call) {
  for (const Query& query : call.policy.member_of()) {
    auto cache = query_caches_.find(query.text());
    if (cache == query_caches_.end()) {
      cache = query_caches_
                  .emplace(std::string(query.text()),
                           QueryCache{query.depends_on_tasks(),
                                      std::vector<std::int8_t>(snapshot_.instances.size(), -1)})
                  .first;
    }
    call.member_of.emplace_back(&query, &cache->second);
  }
}

// Counts the request's group per instance and per value of each spread attribute.
void PlacementEngine::count_spread(Call& call) {
  const auto& strategies = call.policy.strategies();
  const bool spreads = std::any_of(strategies.begin(), strategies.end(), [](const auto& strategy) {
    return strategy.type == StrategyType::kSpread;
  });
  if (!spreads) return;
  const std::size_t instance_count = snapshot_.instances.size();
  call.group_counts.resize(instance_count);
  for (std::size_t instance_idx = 0; instance_idx < instance_count; ++instance_idx) {
    call.group_counts[instance_idx] = static_cast<std::uint32_t>(
        snapshot_.instances[instance_idx].group_count(call.request.group));
  }
  call.spread_values.resize(strategies.size(), nullptr);
  call.spread_counts.resize(strategies.size());
  for (std::size_t strategy_idx = 0; strategy_idx < strategies.size(); ++strategy_idx) {
    const CompiledStrategy& strategy = strategies[strategy_idx];
    if (strategy.type != StrategyType::kSpread || strategy.spread_attribute.empty()) continue;
    const AttributeValues& values = attribute_values(strategy.spread_attribute);
    std::vector<std::uint32_t>& counts = call.spread_counts[strategy_idx];
    counts.assign(values.value_count, 0);
    for (std::size_t instance_idx = 0; instance_idx < instance_count; ++instance_idx)
      counts[values.value_of_instance[instance_idx]] += call.group_counts[instance_idx];
    call.spread_values[strategy_idx] = &values;
  }
}

PlacementEngine::Refusal PlacementEngine::refusal(std::uint32_t instance_idx, const Call& call) {
  const ContainerInstance& instance = snapshot_.instances[instance_idx];
  const TaskRequest& request = call.request;
  if (!instance.agent_connected) return Refusal::kAgent;
  if (instance.remaining.cpu < request.resources.cpu) return Refusal::kCpu;
  if (instance.remaining.memory < request.resources.memory) return Refusal::kMemory;
  if (instance.remaining.gpu < request.resources.gpu) return Refusal::kGpu;
  if (any_port_taken(request.tcp_host_ports, instance.reserved_tcp_ports)) return Refusal::kPorts;
  if (any_port_taken(request.udp_host_ports, instance.reserved_udp_ports))
    return Refusal::kPortsUdp;
  if (!has_required_attributes(instance, request.required_attributes)) return Refusal::kAttribute;
  for (const auto& [query, cache] : call.member_of) {
    std::int8_t& answer = cache->answers[instance_idx];
    if (answer < 0) answer = query->matches(instance) ? 1 : 0;
    if (answer == 0) return Refusal::kMemberOf;
  }
  if (call.policy.distinct_instance() && instance.group_count(request.group) > 0)
    return Refusal::kDistinctInstance;
  return Refusal::kNone;
}

std::optional<std::uint32_t> PlacementEngine::choose(const Call& call, Rng& rng) {
  candidates_.clear();
  const auto& strategies = call.policy.strategies();
  std::size_t first_tie_breaker = 0;
  if (!strategies.empty() && strategies.front().type == StrategyType::kBinpack) {
    collect_binpack_front(strategies.front().binpack_field, call);
    first_tie_breaker = 1;
  } else {
    candidates_.assign(feasible_.begin(), feasible_.end());
  }
  if (candidates_.empty()) return std::nullopt;
  narrow(first_tie_breaker, call, rng);
  return candidates_.front();
}

// Every instance that can take the request now, in snapshot order.
void PlacementEngine::collect_feasible(const Call& call) {
  feasible_.clear();
  const auto instance_count = static_cast<std::uint32_t>(snapshot_.instances.size());
  for (std::uint32_t instance_idx = 0; instance_idx < instance_count; ++instance_idx) {
    if (is_candidate(instance_idx) && refusal(instance_idx, call) == Refusal::kNone)
      feasible_.push_back(instance_idx);
  }
}

// The candidates that fit with the least remaining `field`: the first fitting entries of the
// index from the smallest value that could fit, all of one value.
void PlacementEngine::collect_binpack_front(BinpackField field, const Call& call) {
  const ResourceIndex& index = resource_index(field);
  std::optional<std::int64_t> front_value;
  for (auto entry = index.lower_bound({required(call.request, field), 0}); entry != index.end();
       ++entry) {
    if (front_value && entry->first != *front_value) break;
    if (refusal(entry->second, call) != Refusal::kNone) continue;
    front_value = entry->first;
    candidates_.push_back(entry->second);
  }
}

// Keeps the candidates the strategies from `first_strategy` on like best, in snapshot order.
void PlacementEngine::narrow(std::size_t first_strategy, const Call& call, Rng& rng) {
  const auto& strategies = call.policy.strategies();
  for (std::size_t strategy_idx = first_strategy; strategy_idx < strategies.size();
       ++strategy_idx) {
    if (candidates_.size() <= 1) return;
    const CompiledStrategy& strategy = strategies[strategy_idx];
    if (strategy.type == StrategyType::kRandom) {
      const std::uint32_t pick = candidates_[rng() % candidates_.size()];
      candidates_.assign(1, pick);
      return;
    }
    keys_.resize(candidates_.size());
    std::int64_t best = std::numeric_limits<std::int64_t>::max();
    for (std::size_t candidate_idx = 0; candidate_idx < candidates_.size(); ++candidate_idx) {
      const std::uint32_t instance_idx = candidates_[candidate_idx];
      keys_[candidate_idx] =
          strategy.type == StrategyType::kBinpack
              ? remaining(snapshot_.instances[instance_idx], strategy.binpack_field)
              : spread_count(strategy_idx, instance_idx, call);
      best = std::min(best, keys_[candidate_idx]);
    }
    std::size_t kept = 0;
    for (std::size_t candidate_idx = 0; candidate_idx < candidates_.size(); ++candidate_idx) {
      if (keys_[candidate_idx] == best) candidates_[kept++] = candidates_[candidate_idx];
    }
    candidates_.resize(kept);
  }
}

std::int64_t PlacementEngine::spread_count(std::size_t strategy_idx, std::uint32_t instance_idx,
                                           const Call& call) const {
  const AttributeValues* values = call.spread_values[strategy_idx];
  if (values == nullptr) return call.group_counts[instance_idx];
  return call.spread_counts[strategy_idx][values->value_of_instance[instance_idx]];
}

void PlacementEngine::commit(std::uint32_t instance_idx, Call& call) {
  ContainerInstance& instance = snapshot_.instances[instance_idx];
  const TaskRequest& request = call.request;
  for (auto [index, field] :
       {std::pair{&by_cpu_, BinpackField::kCpu}, std::pair{&by_memory_, BinpackField::kMemory}}) {
    if (!*index) continue;
    // Re-keys the entry in place: extract and insert reuse the node, so nothing is allocated.
    auto node = (*index)->extract({remaining(instance, field), instance_idx});
    node.value().first -= required(request, field);
    (*index)->insert(std::move(node));
  }
  instance.remaining.cpu -= request.resources.cpu;
  instance.remaining.memory -= request.resources.memory;
  instance.remaining.gpu -= request.resources.gpu;
  instance.reserved_tcp_ports.insert(instance.reserved_tcp_ports.end(),
                                     request.tcp_host_ports.begin(), request.tcp_host_ports.end());
  instance.reserved_udp_ports.insert(instance.reserved_udp_ports.end(),
                                     request.udp_host_ports.begin(), request.udp_host_ports.end());
  auto group =
      std::find_if(instance.task_groups.begin(), instance.task_groups.end(),
                   [&](const TaskGroupCount& entry) { return entry.group == request.group; });
  if (group == instance.task_groups.end()) {
    instance.task_groups.push_back({request.group, 1});
  } else {
    ++group->count;
  }
  ++instance.running_tasks_count;
  for (auto& [text, cache] : query_caches_) {
    if (cache.depends_on_tasks) cache.answers[instance_idx] = -1;
  }
  if (!call.group_counts.empty()) ++call.group_counts[instance_idx];
  for (std::size_t strategy_idx = 0; strategy_idx < call.spread_values.size(); ++strategy_idx) {
    const AttributeValues* values = call.spread_values[strategy_idx];
    if (values != nullptr)
      ++call.spread_counts[strategy_idx][values->value_of_instance[instance_idx]];
  }
}

void PlacementEngine::report_failures(const Call& call, std::vector<PlacementFailure>& failures) {
  const auto instance_count = static_cast<std::uint32_t>(snapshot_.instances.size());
  for (std::uint32_t instance_idx = 0; instance_idx < instance_count; ++instance_idx) {
    const ContainerInstance& instance = snapshot_.instances[instance_idx];
    if (instance.status != InstanceStatus::kActive) continue;
    std::string_view why;
    switch (refusal(instance_idx, call)) {
      case Refusal::kNone:
        continue;  // unreachable: choose() would have taken it
      case Refusal::kAgent:
        why = reason::kAgent;
        break;
      case Refusal::kCpu:
        why = reason::kCpu;
        break;
      case Refusal::kMemory:
        why = reason::kMemory;
        break;
      case Refusal::kGpu:
        why = reason::kGpu;
        break;
      case Refusal::kPorts:
        why = reason::kPorts;
        break;
      case Refusal::kPortsUdp:
        why = reason::kPortsUdp;
        break;
      case Refusal::kAttribute:
        why = reason::kAttribute;
        break;
      case Refusal::kMemberOf:
        why = reason::kMemberOf;
        break;
      case Refusal::kDistinctInstance:
        why = reason::kDistinctInstance;
        break;
    }
    failures.push_back({instance.arn, std::string(why)});
  }
}

PlacementEngine::ResourceIndex& PlacementEngine::resource_index(BinpackField field) {
  std::optional<ResourceIndex>& index = field == BinpackField::kCpu ? by_cpu_ : by_memory_;
  if (index) return *index;
  index.emplace();
  const auto instance_count = static_cast<std::uint32_t>(snapshot_.instances.size());
  for (std::uint32_t instance_idx = 0; instance_idx < instance_count; ++instance_idx) {
    if (is_candidate(instance_idx))
      index->emplace(remaining(snapshot_.instances[instance_idx], field), instance_idx);
  }
  return *index;
}

const PlacementEngine::AttributeValues& PlacementEngine::attribute_values(const std::string& name) {
  auto found = attribute_values_.find(name);
  if (found != attribute_values_.end()) return found->second;
  AttributeValues values;
  std::unordered_map<std::string_view, std::uint32_t> ids;  // value -> id; 0 is "absent"
  values.value_of_instance.reserve(snapshot_.instances.size());
  for (const ContainerInstance& instance : snapshot_.instances) {
    const Attribute* attribute = instance.find_attribute(name);
    if (attribute == nullptr) {
      values.value_of_instance.push_back(0);
      continue;
    }
    const std::string_view value = attribute->value ? std::string_view(*attribute->value) : "";
    auto [id, inserted] = ids.emplace(value, values.value_count);
    if (inserted) ++values.value_count;
    values.value_of_instance.push_back(id->second);
  }
  return attribute_values_.emplace(name, std::move(values)).first->second;
}

Result<PlacementResult> place_tasks(const ClusterSnapshot& snapshot, const TaskRequest& request,
                                    const PlacementPolicy& policy, Rng& rng) {
  PlacementEngine engine(snapshot);
  return engine.place(request, policy, rng);
}

}  // namespace wharf::scheduler
