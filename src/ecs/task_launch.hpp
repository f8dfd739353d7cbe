// What RunTask and StartTask share while they place tasks: the request as read and checked,
// and what the task definition makes of it. Internal to the task operations.
#pragma once

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "ecs/model.hpp"
#include "ecs/task_plan.hpp"
#include "scheduler/placement.hpp"

namespace wharf::ecs {

// networkConfiguration.awsvpcConfiguration.
struct AwsvpcConfiguration {
  std::vector<std::string> subnets;
  std::vector<std::string> security_groups;  // empty: the VPC's default group
};

// Reads networkConfiguration and checks its shape (not whether its subnets and groups exist).
Result<AwsvpcConfiguration> read_awsvpc_configuration(const boost::json::object& network);

struct TaskLaunch {
  std::string cluster_identifier;
  std::string task_definition;
  boost::json::object overrides;
  std::string group;
  std::string started_by;
  std::string reference_id;
  std::string client_token;
  Tags tags;
  bool propagate_definition_tags = false;
  std::optional<AwsvpcConfiguration> awsvpc;
  std::vector<scheduler::PlacementConstraint> constraints;
  std::vector<scheduler::PlacementStrategy> strategies;
  // Filled once the definition is found, under the state lock.
  const TaskDefinition* definition = nullptr;
  TaskPlan plan;
};

}  // namespace wharf::ecs
