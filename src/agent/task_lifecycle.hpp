// The rules of a task's life on the agent, as pure functions: the order of task statuses,
// when a container may start (dependsOn), when it may be stopped (dependsOn reversed), what an
// exit means for the task, and how health check results add up. The task engine
// (task_engine.cpp) applies them; everything here is unit-tested without containers.
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace wharf::agent {

// ECS's task lastStatus values in the order a task goes through them. A task never goes back.
enum class TaskStatus : std::uint8_t {
  kProvisioning,
  kPending,
  kActivating,
  kRunning,
  kDeactivating,
  kStopping,
  kDeprovisioning,
  kStopped,
};

std::string_view to_string(TaskStatus status);
std::optional<TaskStatus> parse_task_status(std::string_view text);

// A container's lastStatus: PENDING until started, RUNNING, STOPPED once it exited (or will
// never run).
enum class ContainerRunStatus : std::uint8_t { kPending, kRunning, kStopped };

std::string_view to_string(ContainerRunStatus status);
std::optional<ContainerRunStatus> parse_container_status(std::string_view text);

enum class HealthStatus : std::uint8_t { kUnknown, kHealthy, kUnhealthy };

std::string_view to_string(HealthStatus status);
std::optional<HealthStatus> parse_health_status(std::string_view text);

// ECS's stopCode values the agent produces.
inline constexpr std::string_view kEssentialContainerExited = "EssentialContainerExited";
inline constexpr std::string_view kTaskFailedToStart = "TaskFailedToStart";
inline constexpr std::string_view kUserInitiated = "UserInitiated";
inline constexpr std::string_view kEssentialExitReason = "Essential container in task exited";

// What the lifecycle rules need to know about one container.
struct ContainerFacts {
  std::string name;
  bool essential = true;
  ContainerRunStatus status = ContainerRunStatus::kPending;
  std::optional<int> exit_code;
  HealthStatus health = HealthStatus::kUnknown;
  bool has_health_check = false;
  // dependsOn: (container name, condition START | COMPLETE | SUCCESS | HEALTHY).
  std::vector<std::pair<std::string, std::string>> depends_on;
};

// The facts of a container definition as ECS normalised it (name, essential, dependsOn,
// healthCheck), with the container pending.
ContainerFacts container_facts(const boost::json::object& definition);

enum class StartDecision : std::uint8_t {
  kWait,   // a dependency is not there yet
  kStart,  // every dependency holds
  kNever,  // a dependency can no longer hold (see the message)
};

struct StartVerdict {
  StartDecision decision = StartDecision::kWait;
  std::string reason;  // for kNever: which dependency fails, and why
};

// Whether containers[index] may start now. START: the dependency has started; COMPLETE: it has
// stopped; SUCCESS: it stopped with exit code 0; HEALTHY: its health check passed. A dependency
// that stopped without meeting SUCCESS or HEALTHY never will.
StartVerdict start_verdict(const std::vector<ContainerFacts>& containers, std::size_t index);

// Whether containers[index] may be sent its stop signal: shutdown runs dependsOn in reverse, so
// a container waits while any container that depends on it still runs.
bool may_stop(const std::vector<ContainerFacts>& containers, std::size_t index);

// The task's health: UNHEALTHY when an essential container with a health check is unhealthy,
// HEALTHY when every essential container that has a health check is healthy (and there is at
// least one), else UNKNOWN.
HealthStatus task_health(const std::vector<ContainerFacts>& containers);

// A container's health check as ECS normalised it (command, interval, timeout, retries,
// startPeriod in seconds).
struct HealthCheck {
  std::vector<std::string> command;  // what runs in the container ("CMD-SHELL x" → sh -c x)
  std::chrono::seconds interval{30};
  std::chrono::seconds timeout{5};
  int retries = 3;
  std::chrono::seconds start_period{0};
};

// The definition's health check, nullopt when it has none; kInvalidParameter when its command
// is neither ["CMD", …] nor ["CMD-SHELL", "…"] (or ["NONE"], which means no check).
Result<std::optional<HealthCheck>> parse_health_check(const boost::json::object& definition);

// Folds health check results the way Docker does: a pass makes the container HEALTHY at once;
// `retries` consecutive failures make it UNHEALTHY, except that failures during the start
// period do not count while the container has not passed yet.
class HealthTracker {
 public:
  explicit HealthTracker(HealthCheck check) : check_(std::move(check)) {}

  const HealthCheck& check() const { return check_; }
  HealthStatus status() const { return status_; }
  // Records one result; `in_start_period` when the container started less than startPeriod ago.
  HealthStatus record(bool passed, bool in_start_period);

 private:
  HealthCheck check_;
  HealthStatus status_ = HealthStatus::kUnknown;
  int failures_ = 0;
  bool passed_once_ = false;
};

}  // namespace wharf::agent
