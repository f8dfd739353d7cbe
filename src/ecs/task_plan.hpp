// What one task of a task definition will be, given RunTask/StartTask overrides: pure, no state.
#pragma once

#include <boost/json.hpp>

#include <string>
#include <vector>

#include "common/error.hpp"
#include "ecs/model.hpp"
#include "ecs/task.hpp"
#include "scheduler/snapshot.hpp"

namespace wharf::ecs {

struct TaskPlan {
  // The TaskOverride as DescribeTasks shows it: one containerOverrides entry per container of
  // the definition (in its order), carrying whatever was overridden.
  boost::json::object overrides;
  std::string cpu;     // task-level: the override, else the definition's; may be empty
  std::string memory;  // likewise
  TaskReservation reserved;
  std::vector<TaskContainer> containers;  // names, images and sizes; no ARNs yet
  std::vector<scheduler::Attribute> required_attributes;
};

// Checks `overrides` (a TaskOverride; may be empty) against the definition, as ECS does:
// container overrides must name containers of the definition, sizes must be non-negative, task
// cpu/memory overrides must be whole numbers of units / MiB. kInvalidParameter otherwise.
//
// The reservation is the task-level cpu and memory when set, else the sum over containers of
// cpu, and of memoryReservation (or memory where there is none); host ports are the container
// ports with networkMode host, the non-zero hostPorts with bridge (default), none otherwise.
Result<TaskPlan> plan_task(const TaskDefinition& definition, const boost::json::object& overrides);

}  // namespace wharf::ecs
