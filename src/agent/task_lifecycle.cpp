// The task lifecycle rules (see task_lifecycle.hpp).
#include "agent/task_lifecycle.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>

#include "common/json.hpp"

namespace wharf::agent {

namespace bj = boost::json;

namespace {

constexpr std::array<std::pair<TaskStatus, std::string_view>, 8> kTaskStatuses = {{
    {TaskStatus::kProvisioning, "PROVISIONING"},
    {TaskStatus::kPending, "PENDING"},
    {TaskStatus::kActivating, "ACTIVATING"},
    {TaskStatus::kRunning, "RUNNING"},
    {TaskStatus::kDeactivating, "DEACTIVATING"},
    {TaskStatus::kStopping, "STOPPING"},
    {TaskStatus::kDeprovisioning, "DEPROVISIONING"},
    {TaskStatus::kStopped, "STOPPED"},
}};

constexpr std::array<std::pair<ContainerRunStatus, std::string_view>, 3> kContainerStatuses = {{
    {ContainerRunStatus::kPending, "PENDING"},
    {ContainerRunStatus::kRunning, "RUNNING"},
    {ContainerRunStatus::kStopped, "STOPPED"},
}};

constexpr std::array<std::pair<HealthStatus, std::string_view>, 3> kHealthStatuses = {{
    {HealthStatus::kUnknown, "UNKNOWN"},
    {HealthStatus::kHealthy, "HEALTHY"},
    {HealthStatus::kUnhealthy, "UNHEALTHY"},
}};

template <typename Enum, std::size_t N>
std::string_view name_of(const std::array<std::pair<Enum, std::string_view>, N>& table,
                         Enum value) {
  for (const auto& [candidate, name] : table) {
    if (candidate == value) return name;
  }
  return "UNKNOWN";
}

template <typename Enum, std::size_t N>
std::optional<Enum> value_of(const std::array<std::pair<Enum, std::string_view>, N>& table,
                             std::string_view text) {
  for (const auto& [value, name] : table) {
    if (name == text) return value;
  }
  return std::nullopt;
}

const ContainerFacts* find_container(const std::vector<ContainerFacts>& containers,
                                     std::string_view name) {
  auto found = std::ranges::find(containers, name, &ContainerFacts::name);
  return found == containers.end() ? nullptr : &*found;
}

// Why a dependency in `condition` on `dependency` can never hold, or "" while it still may.
std::string never_reason(const ContainerFacts& dependency, std::string_view condition) {
  if (dependency.status != ContainerRunStatus::kStopped) return "";
  if (condition == "SUCCESS" && dependency.exit_code != 0) {
    return "container " + dependency.name + " exited with " +
           (dependency.exit_code ? "code " + std::to_string(*dependency.exit_code)
                                 : std::string("an unknown status")) +
           ", not 0 (dependsOn condition SUCCESS)";
  }
  if (condition == "HEALTHY" && dependency.health != HealthStatus::kHealthy) {
    return "container " + dependency.name +
           " stopped before it was healthy (dependsOn condition HEALTHY)";
  }
  if (condition == "START" && dependency.exit_code == std::nullopt &&
      dependency.status == ContainerRunStatus::kStopped) {
    return "container " + dependency.name + " never started (dependsOn condition START)";
  }
  return "";
}

bool holds(const ContainerFacts& dependency, std::string_view condition) {
  if (condition == "START") {
    // Stopped without an exit code means it never ran (it failed to start).
    return dependency.status == ContainerRunStatus::kRunning ||
           (dependency.status == ContainerRunStatus::kStopped && dependency.exit_code);
  }
  if (condition == "COMPLETE") return dependency.status == ContainerRunStatus::kStopped;
  if (condition == "SUCCESS") {
    return dependency.status == ContainerRunStatus::kStopped && dependency.exit_code == 0;
  }
  if (condition == "HEALTHY") return dependency.health == HealthStatus::kHealthy;
  return false;
}

std::chrono::seconds seconds_or(const bj::object& object, std::string_view key,
                                std::chrono::seconds fallback) {
  auto value = json::get_int(object, key);
  return value ? std::chrono::seconds(*value) : fallback;
}

}  // namespace

std::string_view to_string(TaskStatus status) {
  return name_of(kTaskStatuses, status);
}

std::optional<TaskStatus> parse_task_status(std::string_view text) {
  return value_of(kTaskStatuses, text);
}

std::string_view to_string(ContainerRunStatus status) {
  return name_of(kContainerStatuses, status);
}

std::optional<ContainerRunStatus> parse_container_status(std::string_view text) {
  return value_of(kContainerStatuses, text);
}

std::string_view to_string(HealthStatus status) {
  return name_of(kHealthStatuses, status);
}

std::optional<HealthStatus> parse_health_status(std::string_view text) {
  return value_of(kHealthStatuses, text);
}

ContainerFacts container_facts(const bj::object& definition) {
  ContainerFacts facts;
  facts.name = json::string_or(definition, "name", "");
  facts.essential = json::get_bool(definition, "essential").value_or(true);
  if (const auto* check = json::get_object(definition, "healthCheck")) {
    const auto* command = json::get_array(*check, "command");
    facts.has_health_check =
        command != nullptr && !command->empty() &&
        !(command->front().is_string() && command->front().as_string() == "NONE");
  }
  if (const auto* depends = json::get_array(definition, "dependsOn")) {
    for (const auto& entry : *depends) {
      if (!entry.is_object()) continue;
      facts.depends_on.emplace_back(json::string_or(entry.as_object(), "containerName", ""),
                                    json::string_or(entry.as_object(), "condition", "START"));
    }
  }
  return facts;
}

StartVerdict start_verdict(const std::vector<ContainerFacts>& containers, std::size_t index) {
  const ContainerFacts& container = containers.at(index);
  StartVerdict verdict{StartDecision::kStart, ""};
  for (const auto& [name, condition] : container.depends_on) {
    const ContainerFacts* dependency = find_container(containers, name);
    if (dependency == nullptr) {
      return {StartDecision::kNever, "container " + name + " is not in the task"};
    }
    if (holds(*dependency, condition)) continue;
    if (std::string reason = never_reason(*dependency, condition); !reason.empty()) {
      return {StartDecision::kNever, std::move(reason)};
    }
    verdict.decision = StartDecision::kWait;
  }
  return verdict;
}

bool may_stop(const std::vector<ContainerFacts>& containers, std::size_t index) {
  const std::string& name = containers.at(index).name;
  for (const ContainerFacts& other : containers) {
    if (other.status != ContainerRunStatus::kRunning) continue;
    bool depends = std::ranges::any_of(other.depends_on,
                                       [&](const auto& entry) { return entry.first == name; });
    if (depends) return false;
  }
  return true;
}

HealthStatus task_health(const std::vector<ContainerFacts>& containers) {
  bool any_checked = false;
  bool all_healthy = true;
  for (const ContainerFacts& container : containers) {
    if (!container.essential || !container.has_health_check) continue;
    any_checked = true;
    if (container.health == HealthStatus::kUnhealthy) return HealthStatus::kUnhealthy;
    if (container.health != HealthStatus::kHealthy) all_healthy = false;
  }
  return any_checked && all_healthy ? HealthStatus::kHealthy : HealthStatus::kUnknown;
}

Result<std::optional<HealthCheck>> parse_health_check(const bj::object& definition) {
  const auto* check = json::get_object(definition, "healthCheck");
  if (check == nullptr) return std::optional<HealthCheck>();
  const auto* command = json::get_array(*check, "command");
  std::vector<std::string> words;
  if (command != nullptr) {
    for (const auto& word : *command) {
      if (word.is_string()) words.emplace_back(word.as_string());
    }
  }
  HealthCheck parsed;
  if (!words.empty() && words.front() == "NONE") return std::optional<HealthCheck>();
  if (words.size() >= 2 && words.front() == "CMD") {
    parsed.command.assign(words.begin() + 1, words.end());
  } else if (words.size() >= 2 && words.front() == "CMD-SHELL") {
    std::string script = words[1];
    for (std::size_t index = 2; index < words.size(); ++index) script += " " + words[index];
    parsed.command = {"/bin/sh", "-c", script};
  } else {
    return invalid(
        "healthCheck.command must be [\"CMD\", executable, args…] or [\"CMD-SHELL\", "
        "\"shell command\"]");
  }
  parsed.interval = seconds_or(*check, "interval", parsed.interval);
  parsed.timeout = seconds_or(*check, "timeout", parsed.timeout);
  parsed.retries = static_cast<int>(json::get_int(*check, "retries").value_or(parsed.retries));
  parsed.start_period = seconds_or(*check, "startPeriod", parsed.start_period);
  return std::optional<HealthCheck>(std::move(parsed));
}

HealthStatus HealthTracker::record(bool passed, bool in_start_period) {
  if (passed) {
    passed_once_ = true;
    failures_ = 0;
    status_ = HealthStatus::kHealthy;
    return status_;
  }
  if (in_start_period && !passed_once_) return status_;
  if (++failures_ >= check_.retries) status_ = HealthStatus::kUnhealthy;
  return status_;
}

}  // namespace wharf::agent
