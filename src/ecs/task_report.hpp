// What agents report about tasks (SubmitTaskStateChange, SubmitContainerStateChange), and how a
// report moves a task along: pure, no state.
#pragma once

#include <boost/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "ecs/task.hpp"

namespace wharf::ecs {

struct ContainerReport {
  std::string name;
  std::optional<std::string> status;
  std::optional<std::string> runtime_id;
  std::optional<std::string> image_digest;
  std::optional<int64_t> exit_code;
  std::optional<std::string> reason;
  std::optional<boost::json::array> network_bindings;
  std::optional<std::string> health_status;  // Wharf's addition (containerHealth)
};

struct TaskReport {
  std::optional<std::string> status;
  std::string reason;
  std::vector<ContainerReport> containers;
  std::optional<TimePoint> pull_started_at;
  std::optional<TimePoint> pull_stopped_at;
  std::optional<TimePoint> execution_stopped_at;
  // Wharf's additions to the ECS shape (docs/agent-protocol.md).
  std::string stop_code;
  std::optional<std::string> health_status;
  // AttachmentStateChange: the ENI's attachment ARN and ATTACHED or DETACHED.
  std::vector<std::pair<std::string, std::string>> attachments;
};

// Reads and checks a SubmitTaskStateChange body: statuses, stop codes and health values must be
// ones ECS knows. kInvalidParameter otherwise.
Result<TaskReport> read_task_report(const boost::json::object& input);
// Reads a SubmitContainerStateChange body as a task report about one container.
Result<TaskReport> read_container_report(const boost::json::object& input);

// An awsvpc task's ENI status only moves forward: PRECREATED < ATTACHED < DETACHED; -1 otherwise.
int attachment_status_rank(std::string_view status);

// Applies a report to a task and says whether anything changed. Statuses only move forward (an
// older report is ignored, not an error); the first stop code and reason stay; startedAt,
// stoppingAt and stoppedAt are stamped with `now` when first due; a task that heads for STOPPED
// by itself gets desiredStatus STOPPED. A report about a container the task does not have is
// kInvalidParameter. A STOPPED task no longer changes.
Result<bool> apply_task_report(Task& task, const TaskReport& report, TimePoint now);

}  // namespace wharf::ecs
