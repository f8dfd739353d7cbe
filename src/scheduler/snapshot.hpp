// What the scheduler knows of a cluster: its container instances, as plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"

namespace wharf::scheduler {

// ContainerInstanceStatus of the ECS model. Only ACTIVE instances take new tasks.
enum class InstanceStatus {
  kActive,
  kDraining,
  kRegistering,
  kDeregistering,
  kRegistrationFailed,
  kInactive,
};

// A container instance attribute; ECS attributes may have a name and no value.
struct Attribute {
  std::string name;
  std::optional<std::string> value;

  bool operator==(const Attribute&) const = default;
};

// How many tasks of one task group (e.g. "service:web", "family:batch") an instance runs.
struct TaskGroupCount {
  std::string group;
  int count = 0;

  bool operator==(const TaskGroupCount&) const = default;
};

// CPU units (1024 per vCPU), memory in MiB, whole GPUs.
struct Resources {
  std::int64_t cpu = 0;
  std::int64_t memory = 0;
  std::int64_t gpu = 0;

  bool operator==(const Resources&) const = default;
};

struct ContainerInstance {
  std::string arn;
  std::string ec2_instance_id;  // empty for external instances
  InstanceStatus status = InstanceStatus::kActive;
  bool agent_connected = true;
  std::string agent_version;  // "1.14.5"
  TimePoint registered_at{};
  Resources remaining;
  std::vector<std::uint16_t> reserved_tcp_ports;  // host ports taken (PORTS)
  std::vector<std::uint16_t> reserved_udp_ports;  // host ports taken (PORTS_UDP)
  std::vector<Attribute> attributes;
  std::vector<TaskGroupCount> task_groups;  // tasks placed here, by group
  std::int64_t running_tasks_count = 0;

  bool operator==(const ContainerInstance&) const = default;

  // The attribute named `name`, or nullptr.
  const Attribute* find_attribute(std::string_view name) const {
    for (const auto& attribute : attributes) {
      if (attribute.name == name) return &attribute;
    }
    return nullptr;
  }
  // How many tasks of `group` run here.
  int group_count(std::string_view group) const {
    for (const auto& entry : task_groups) {
      if (entry.group == group) return entry.count;
    }
    return 0;
  }
};

struct ClusterSnapshot {
  std::vector<ContainerInstance> instances;
};

}  // namespace wharf::scheduler
