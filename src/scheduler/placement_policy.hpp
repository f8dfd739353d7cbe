// Placement constraints and strategies as ECS requests carry them, checked and compiled once.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "scheduler/query.hpp"

namespace wharf::scheduler {

// RunTask and CreateService accept at most 10 constraints (task definition ones included) and
// 5 strategies.
inline constexpr std::size_t kMaxPlacementConstraints = 10;
inline constexpr std::size_t kMaxPlacementStrategies = 5;

// The PlacementConstraint and PlacementStrategy shapes of the ECS model, as text.
struct PlacementConstraint {
  std::string type;        // distinctInstance | memberOf
  std::string expression;  // cluster query, memberOf only
};

struct PlacementStrategy {
  std::string type;   // random | spread | binpack
  std::string field;  // binpack: cpu | memory; spread: instanceId | host | attribute:NAME
};

enum class StrategyType { kRandom, kSpread, kBinpack };
enum class BinpackField { kCpu, kMemory };

struct CompiledStrategy {
  StrategyType type = StrategyType::kRandom;
  BinpackField binpack_field = BinpackField::kMemory;
  std::string spread_attribute;  // spread by this attribute; empty spreads by instance
};

// Who places: RunTask places standalone tasks at random by default; the service scheduler
// spreads across Availability Zones, then across the instances of each zone.
enum class PlacementCaller { kRunTask, kService };

// What `compile` substitutes when a request names no strategy.
std::vector<PlacementStrategy> default_strategies(PlacementCaller caller);

class PlacementPolicy {
 public:
  // Checks types, fields and expressions the way ECS does and parses each memberOf expression
  // once. Errors are kInvalidParameter and say which entry is wrong. No strategies means the
  // caller's default strategies.
  static Result<PlacementPolicy> compile(std::span<const PlacementConstraint> constraints,
                                         std::span<const PlacementStrategy> strategies,
                                         PlacementCaller caller = PlacementCaller::kRunTask);

  const std::vector<Query>& member_of() const { return member_of_; }
  bool distinct_instance() const { return distinct_instance_; }
  // In order: the first decides, each later one breaks the ties of those before it.
  const std::vector<CompiledStrategy>& strategies() const { return strategies_; }

 private:
  std::vector<Query> member_of_;
  bool distinct_instance_ = false;
  std::vector<CompiledStrategy> strategies_;
};

}  // namespace wharf::scheduler
