// Validation and compilation of placement constraints and strategies.
#include "scheduler/placement_policy.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace wharf::scheduler {

namespace {

bool equals_ignoring_case(std::string_view left, std::string_view right) {
  return std::equal(left.begin(), left.end(), right.begin(), right.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
}

std::string entry_name(std::string_view list, std::size_t entry_idx) {
  return std::string(list) + "[" + std::to_string(entry_idx) + "]";
}

Result<CompiledStrategy> compile_strategy(const PlacementStrategy& strategy) {
  CompiledStrategy compiled;
  if (strategy.type == "random") {
    compiled.type = StrategyType::kRandom;  // ECS ignores the field of random
    return compiled;
  }
  if (strategy.type == "binpack") {
    compiled.type = StrategyType::kBinpack;
    if (equals_ignoring_case(strategy.field, "cpu")) {
      compiled.binpack_field = BinpackField::kCpu;
      return compiled;
    }
    if (equals_ignoring_case(strategy.field, "memory")) {
      compiled.binpack_field = BinpackField::kMemory;
      return compiled;
    }
    return invalid("the field of a binpack strategy must be cpu or memory, not \"" +
                   strategy.field + "\"");
  }
  if (strategy.type == "spread") {
    compiled.type = StrategyType::kSpread;
    constexpr std::string_view kAttributePrefix = "attribute:";
    if (equals_ignoring_case(strategy.field, "instanceId") ||
        equals_ignoring_case(strategy.field, "host"))
      return compiled;
    if (strategy.field.starts_with(kAttributePrefix) &&
        strategy.field.size() > kAttributePrefix.size()) {
      compiled.spread_attribute = strategy.field.substr(kAttributePrefix.size());
      return compiled;
    }
    return invalid(
        "the field of a spread strategy must be instanceId, host or attribute:NAME, not \"" +
        strategy.field + "\"");
  }
  return invalid("the type of a placement strategy must be random, spread or binpack, not \"" +
                 strategy.type + "\"");
}

}  // namespace

std::vector<PlacementStrategy> default_strategies(PlacementCaller caller) {
  if (caller == PlacementCaller::kService)
    return {{"spread", "attribute:ecs.availability-zone"}, {"spread", "instanceId"}};
  return {{"random", ""}};
}

Result<PlacementPolicy> PlacementPolicy::compile(std::span<const PlacementConstraint> constraints,
                                                 std::span<const PlacementStrategy> strategies,
                                                 PlacementCaller caller) {
  if (constraints.size() > kMaxPlacementConstraints) {
    return invalid("at most " + std::to_string(kMaxPlacementConstraints) +
                   " placement constraints are allowed, got " + std::to_string(constraints.size()));
  }
  if (strategies.size() > kMaxPlacementStrategies) {
    return invalid("at most " + std::to_string(kMaxPlacementStrategies) +
                   " placement strategies are allowed, got " + std::to_string(strategies.size()));
  }
  PlacementPolicy policy;
  for (std::size_t constraint_idx = 0; constraint_idx < constraints.size(); ++constraint_idx) {
    const PlacementConstraint& constraint = constraints[constraint_idx];
    const std::string name = entry_name("placementConstraints", constraint_idx);
    if (constraint.type == "distinctInstance") {
      if (!constraint.expression.empty()) {
        return invalid(name +
                       ": an expression cannot be given when the constraint type is "
                       "distinctInstance");
      }
      policy.distinct_instance_ = true;
      continue;
    }
    if (constraint.type != "memberOf") {
      return invalid(name + ": the type must be distinctInstance or memberOf, not \"" +
                     constraint.type + "\"");
    }
    if (constraint.expression.empty())
      return invalid(name + ": a memberOf constraint needs an expression");
    auto query = Query::parse(constraint.expression);
    if (!query) return std::unexpected(std::move(query.error()).context(name + ".expression"));
    policy.member_of_.push_back(std::move(*query));
  }
  const std::vector<PlacementStrategy> defaults =
      strategies.empty() ? default_strategies(caller) : std::vector<PlacementStrategy>{};
  const std::span<const PlacementStrategy> effective =
      strategies.empty() ? std::span<const PlacementStrategy>(defaults) : strategies;
  for (std::size_t strategy_idx = 0; strategy_idx < effective.size(); ++strategy_idx) {
    auto compiled = compile_strategy(effective[strategy_idx]);
    if (!compiled) {
      return std::unexpected(
          std::move(compiled.error()).context(entry_name("placementStrategy", strategy_idx)));
    }
    policy.strategies_.push_back(std::move(*compiled));
  }
  return policy;
}

}  // namespace wharf::scheduler
