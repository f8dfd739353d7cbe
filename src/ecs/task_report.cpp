// Reading agents' task reports and applying them to tasks.
#include "ecs/task_report.hpp"

#include <algorithm>
#include <array>
#include <string_view>

#include "common/json.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

constexpr std::array<std::string_view, 6> kStopCodes = {
    "TaskFailedToStart",         "EssentialContainerExited", "UserInitiated",
    "ServiceSchedulerInitiated", "SpotInterruption",         "TerminationNotice"};
constexpr std::array<std::string_view, 3> kHealthStatuses = {"HEALTHY", "UNHEALTHY", "UNKNOWN"};

template <size_t N>
bool is_one_of(const std::array<std::string_view, N>& values, std::string_view value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

std::optional<TimePoint> get_time(const bj::object& object, std::string_view key) {
  const auto* value = json::member(object, key);
  if (value == nullptr || !value->is_number()) return std::nullopt;
  return from_epoch_seconds(value->to_number<double>());
}

Status check_health(const std::optional<std::string>& health, std::string_view where) {
  if (!health || is_one_of(kHealthStatuses, *health)) return {};
  return invalid(std::string(where) + " must be HEALTHY, UNHEALTHY or UNKNOWN, not '" + *health +
                 "'.");
}

Result<ContainerReport> read_container(const bj::object& object, std::string_view name_key) {
  ContainerReport report;
  report.name = json::string_or(object, name_key, "");
  if (report.name.empty()) return invalid(std::string(name_key) + " is required.");
  report.status = json::get_string(object, "status");
  if (report.status && container_status_rank(*report.status) < 0) {
    return invalid("The status of container " + report.name +
                   " must be PENDING, RUNNING or STOPPED, not '" + *report.status + "'.");
  }
  report.runtime_id = json::get_string(object, "runtimeId");
  report.image_digest = json::get_string(object, "imageDigest");
  report.exit_code = json::get_int(object, "exitCode");
  report.reason = json::get_string(object, "reason");
  if (const auto* bindings = json::get_array(object, "networkBindings")) {
    report.network_bindings = *bindings;
  }
  return report;
}

ContainerReport& report_for(std::vector<ContainerReport>& reports, const std::string& name) {
  auto found = std::find_if(reports.begin(), reports.end(),
                            [&](const ContainerReport& report) { return report.name == name; });
  if (found != reports.end()) return *found;
  ContainerReport report;
  report.name = name;
  reports.push_back(std::move(report));
  return reports.back();
}

// Sets `field` to `value` when given and different; says whether it did.
template <typename T>
bool update(T& field, const std::optional<T>& value) {
  if (!value || field == *value) return false;
  field = *value;
  return true;
}

bool stamp_once(std::optional<TimePoint>& field, const std::optional<TimePoint>& value) {
  if (field || !value) return false;
  field = value;
  return true;
}

bool apply_container(TaskContainer& container, const ContainerReport& report) {
  int current = container_status_rank(container.last_status);
  int reported = report.status ? container_status_rank(*report.status) : current;
  if (reported < current) return false;  // older than what we have
  bool changed = update(container.last_status, report.status);
  changed |= update(container.runtime_id, report.runtime_id);
  changed |= update(container.image_digest, report.image_digest);
  if (report.exit_code && container.exit_code != report.exit_code) {
    container.exit_code = report.exit_code;
    changed = true;
  }
  changed |= update(container.reason, report.reason);
  changed |= update(container.network_bindings, report.network_bindings);
  changed |= update(container.health_status, report.health_status);
  return changed;
}

// The task-level status part of a report.
bool apply_status(Task& task, const TaskReport& report, TimePoint now) {
  if (!report.status) return false;
  int reported = task_status_rank(*report.status);
  if (reported <= task_status_rank(task.last_status)) return false;
  task.last_status = *report.status;
  if (task.last_status == "RUNNING" && !task.started_at) task.started_at = now;
  if (reported >= task_status_rank("DEACTIVATING")) {
    if (!task.stopping_at) task.stopping_at = now;
    task.desired_status = "STOPPED";  // it stopped by itself, or was told to
  }
  if (is_stopped(task)) {
    task.stopped_at = now;
    if (!task.execution_stopped_at) task.execution_stopped_at = now;
    for (auto& container : task.containers) container.last_status = "STOPPED";
  }
  return true;
}

}  // namespace

Result<TaskReport> read_task_report(const bj::object& input) {
  TaskReport report;
  report.status = json::get_string(input, "status");
  if (report.status && task_status_rank(*report.status) < 0) {
    return invalid(
        "status must be one of PENDING, ACTIVATING, RUNNING, DEACTIVATING, STOPPING, "
        "DEPROVISIONING, STOPPED; not '" +
        *report.status + "'.");
  }
  report.reason = json::string_or(input, "reason", "");
  if (const auto* containers = json::get_array(input, "containers")) {
    for (const auto& item : *containers) {
      if (!item.is_object()) continue;
      auto container = read_container(item.as_object(), "containerName");
      if (!container) return std::unexpected(container.error());
      report.containers.push_back(std::move(*container));
    }
  }
  report.pull_started_at = get_time(input, "pullStartedAt");
  report.pull_stopped_at = get_time(input, "pullStoppedAt");
  report.execution_stopped_at = get_time(input, "executionStoppedAt");
  report.stop_code = json::string_or(input, "stopCode", "");
  if (!report.stop_code.empty() && !is_one_of(kStopCodes, report.stop_code)) {
    return invalid("stopCode '" + report.stop_code + "' is not a TaskStopCode.");
  }
  if (const auto* attachments = json::get_array(input, "attachments")) {
    for (const auto& item : *attachments) {
      if (!item.is_object()) return invalid("attachments must hold AttachmentStateChange objects.");
      std::string arn = json::string_or(item.as_object(), "attachmentArn", "");
      std::string status = json::string_or(item.as_object(), "status", "");
      if (arn.empty() || attachment_status_rank(status) < 1) {
        return invalid(
            "An attachment state change needs an attachmentArn and a status of ATTACHED or "
            "DETACHED.");
      }
      report.attachments.emplace_back(std::move(arn), std::move(status));
    }
  }
  report.health_status = json::get_string(input, "healthStatus");
  if (auto status = check_health(report.health_status, "healthStatus"); !status) {
    return std::unexpected(status.error());
  }
  if (const auto* health = json::get_object(input, "containerHealth")) {
    for (const auto& [name, value] : *health) {
      if (!value.is_string()) continue;
      std::optional<std::string> status(std::string(value.as_string()));
      if (auto checked = check_health(status, "containerHealth"); !checked) {
        return std::unexpected(checked.error());
      }
      report_for(report.containers, std::string(name)).health_status = status;
    }
  }
  return report;
}

int attachment_status_rank(std::string_view status) {
  if (status == "PRECREATED") return 0;
  if (status == "ATTACHED") return 1;
  if (status == "DETACHED") return 2;
  return -1;
}

Result<TaskReport> read_container_report(const bj::object& input) {
  auto container = read_container(input, "containerName");
  if (!container) return std::unexpected(container.error());
  TaskReport report;
  report.containers.push_back(std::move(*container));
  return report;
}

Result<bool> apply_task_report(Task& task, const TaskReport& report, TimePoint now) {
  std::vector<TaskContainer*> targets;
  for (const auto& container_report : report.containers) {
    auto found = std::find_if(
        task.containers.begin(), task.containers.end(),
        [&](const auto& container) { return container.name == container_report.name; });
    if (found == task.containers.end()) {
      return invalid("Task " + task.arn + " has no container named '" + container_report.name +
                     "'.");
    }
    targets.push_back(&*found);
  }
  bool changed = false;
  // Even for a STOPPED task: an ENI's DETACHED may come after the task stopped.
  for (const auto& [arn, status] : report.attachments) {
    if (!task.eni || !arn.ends_with("/" + task.eni->id)) {
      return invalid("Task " + task.arn + " has no attachment " + arn + ".");
    }
    if (attachment_status_rank(status) > attachment_status_rank(task.eni->status)) {
      task.eni->status = status;
      changed = true;
    }
  }
  if (is_stopped(task)) return changed;

  for (size_t report_idx = 0; report_idx < targets.size(); ++report_idx) {
    changed |= apply_container(*targets[report_idx], report.containers[report_idx]);
  }
  changed |= stamp_once(task.pull_started_at, report.pull_started_at);
  changed |= stamp_once(task.pull_stopped_at, report.pull_stopped_at);
  changed |= stamp_once(task.execution_stopped_at, report.execution_stopped_at);
  changed |= update(task.health_status, report.health_status);
  bool stopping =
      report.status && task_status_rank(*report.status) >= task_status_rank("DEACTIVATING");
  if (stopping || task.desired_status == "STOPPED") {
    // The first stop code and reason stay (a StopTask's, or the agent's first word on it).
    if (task.stop_code.empty() && !report.stop_code.empty()) {
      task.stop_code = report.stop_code;
      changed = true;
    }
    if (task.stopped_reason.empty() && !report.reason.empty()) {
      task.stopped_reason = report.reason;
      changed = true;
    }
  }
  changed |= apply_status(task, report, now);
  return changed;
}

}  // namespace wharf::ecs
