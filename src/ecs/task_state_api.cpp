// What container agents call about tasks: WharfPollTasks (their desired state, as a long poll),
// SubmitTaskStateChange and SubmitContainerStateChange (their actual state).
#include <limits>
#include <mutex>
#include <shared_mutex>

#include "common/json.hpp"
#include "ecs/ecs_api.hpp"
#include "ecs/task_report.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

constexpr int64_t kMaxWaitSeconds = 20;

// A member of an unmodelled request that must be a string when present.
Result<std::optional<std::string>> optional_string(const bj::object& input, std::string_view key) {
  const auto* value = json::member(input, key);
  if (value == nullptr) return std::optional<std::string>();
  if (!value->is_string()) return invalid(std::string(key) + " must be a string.");
  return std::optional<std::string>(std::string(value->as_string()));
}

Result<int64_t> integer_in(const bj::object& input, std::string_view key, int64_t fallback,
                           int64_t low, int64_t high) {
  const auto* value = json::member(input, key);
  if (value == nullptr) return fallback;
  auto number = json::get_int(input, key);
  if (!number || *number < low || *number > high) {
    return invalid(std::string(key) + " must be a whole number from " + std::to_string(low) +
                   " to " + std::to_string(high) + ".");
  }
  return *number;
}

// The poll's members, checked here since the model does not know the operation.
struct PollRequest {
  std::string cluster;
  std::string instance;
  int64_t version = 0;
  int64_t wait_seconds = 0;
};

Result<PollRequest> read_poll(const bj::object& input) {
  PollRequest poll;
  auto cluster = optional_string(input, "cluster");
  if (!cluster) return std::unexpected(cluster.error());
  poll.cluster = cluster->value_or("default");
  auto instance = optional_string(input, "containerInstance");
  if (!instance) return std::unexpected(instance.error());
  if (!*instance || (*instance)->empty()) return invalid("containerInstance is required.");
  poll.instance = **instance;
  auto version = integer_in(input, "version", 0, 0, std::numeric_limits<int64_t>::max());
  if (!version) return std::unexpected(version.error());
  poll.version = *version;
  auto wait = integer_in(input, "waitSeconds", 0, 0, kMaxWaitSeconds);
  if (!wait) return std::unexpected(wait.error());
  poll.wait_seconds = *wait;
  return poll;
}

bj::object acknowledgment() {
  return bj::object{{"acknowledgment", "ACK"}};
}

}  // namespace

void EcsApi::poll_tasks(const Context& context, const Input& input, Reply reply) {
  auto poll = read_poll(input);
  if (!poll) return reply(std::unexpected(poll.error()));

  // Readers only: holding polls never blocks writers, and a poll reads the published state.
  std::shared_lock lock(state_.mutex());
  auto* region = const_cast<RegionState*>(state_.find_region(context.region));
  if (region == nullptr) return reply(fail(ErrorCode::kClusterNotFound, "Cluster not found."));
  auto cluster = active_cluster(context, *region, poll->cluster);
  if (!cluster) return reply(std::unexpected(cluster.error()));
  auto instance = find_container_instance(context, *region, (*cluster)->name, poll->instance);
  if (!instance) {
    return reply(invalid("Container instance " + poll->instance + " is not registered in cluster " +
                         (*cluster)->name + "; register it first."));
  }
  if ((*instance)->status == "INACTIVE") {
    return reply(invalid("Container instance " + poll->instance +
                         " was deregistered; register it again to run tasks."));
  }
  const ContainerInstance& found = **instance;
  assignments_.poll(
      found.arn, poll->version, std::chrono::seconds(poll->wait_seconds),
      [&] { return assigned_tasks(*region, found); }, std::move(reply));
}

void EcsApi::submit_task_state_change(const Context& context, const Input& input, Reply reply) {
  auto report = read_task_report(input);
  if (!report) return reply(std::unexpected(report.error()));
  apply_report(context, input, std::move(*report), std::move(reply));
}

void EcsApi::submit_container_state_change(const Context& context, const Input& input,
                                           Reply reply) {
  auto report = read_container_report(input);
  if (!report) return reply(std::unexpected(report.error()));
  apply_report(context, input, std::move(*report), std::move(reply));
}

void EcsApi::apply_report(const Context& context, const Input& input, TaskReport report,
                          Reply reply) {
  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, json::string_or(input, "cluster", "default"));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  Task* task = find_task(context, region, (*cluster)->name, json::string_or(input, "task", ""));
  if (task == nullptr) return reply(invalid("The referenced task was not found."));
  bool was_stopped = is_stopped(*task);
  std::string desired_before = task->desired_status;
  bool eni_held = task->eni && eni_in_use(*task->eni);
  auto changed = apply_task_report(*task, report, clock_.now());
  if (!changed) return reply(std::unexpected(changed.error()));
  if (!*changed) return reply(acknowledgment());
  TaskChanges changes;
  bool stopped_now = !was_stopped && is_stopped(*task);
  if (!is_stopped(*task)) hold_bound_ports(region, *task, changes);
  if (stopped_now) release_task(region, *task, changes);
  // An ENI the agent never attached is free once the task stopped. One it attached stays held
  // (address and group membership) until the agent says DETACHED: a namespace it failed to
  // remove may still have the address, and handing it out again would make two tasks share it.
  if (stopped_now && task->eni && task->eni->status == "PRECREATED") detach_eni(*task, changes);
  // The agent's own DETACHED frees it as well.
  if (eni_held && !eni_in_use(*task->eni)) note_membership_change(changes);
  // The agent's long poll only needs an answer when what it is told changes: a task leaving
  // its list or a new desired status. Answering every report would send the whole list back
  // after each one (quadratic in the number of tasks starting at once).
  note_task_change(region, *task, changes, stopped_now || task->desired_status != desired_before);
  commit_task_changes(context, region, std::move(changes), acknowledgment(), std::move(reply));
}

}  // namespace wharf::ecs
