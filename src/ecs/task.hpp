// ECS tasks (EC2 launch type): the Task resource, its status machine and its wire/storage codec.
#pragma once

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "ecs/model.hpp"

namespace wharf::ecs {

// How long a STOPPED task stays describable before it is forgotten (ECS keeps them at least an
// hour).
inline constexpr auto kStoppedTaskRetention = std::chrono::hours(1);

// What a task holds on its container instance from placement until it is STOPPED.
struct TaskReservation {
  int64_t cpu = 0;     // CPU units
  int64_t memory = 0;  // MiB
  std::vector<uint16_t> tcp_ports;
  std::vector<uint16_t> udp_ports;

  bool operator==(const TaskReservation&) const = default;
};

struct TaskContainer {
  std::string arn;  // arn:aws:ecs:REGION:ACCOUNT:container/CLUSTER/TASK_ID/UUID
  std::string name;
  std::string image;
  std::string image_digest;
  std::string runtime_id;
  std::string last_status = "PENDING";  // PENDING | RUNNING | STOPPED
  std::optional<int64_t> exit_code;
  std::string reason;
  boost::json::array network_bindings;
  std::string health_status = "UNKNOWN";  // UNKNOWN | HEALTHY | UNHEALTHY
  // As ECS shows them: strings; cpu always ("0" when unset), the memory values when set.
  std::string cpu = "0";
  std::string memory;
  std::string memory_reservation;
};

// An awsvpc task's elastic network interface, shown as the task's attachment (type
// ElasticNetworkInterface) and in its containers' networkInterfaces.
struct EniAttachment {
  std::string id;                     // the attachment's UUID
  std::string status = "PRECREATED";  // PRECREATED → ATTACHED → DETACHED
  std::string network_interface_id;   // eni-<17 hex digits>
  std::string subnet_id;
  std::string private_ipv4;  // drawn from the subnet at placement
  std::string mac;
  std::string private_dns_name;  // ip-A-B-C-D.REGION.compute.internal
  std::vector<std::string> security_group_ids;

  bool operator==(const EniAttachment&) const = default;
};

struct Task {
  std::string id;       // 32 hex characters
  std::string arn;      // arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID
  std::string cluster;  // name
  std::string cluster_arn;
  std::string task_definition_arn;
  std::string family;
  int64_t revision = 0;
  std::string container_instance_id;
  std::string container_instance_arn;
  boost::json::object overrides;  // TaskOverride, one containerOverrides entry per container
  std::string last_status = "PROVISIONING";
  std::string desired_status = "RUNNING";
  std::string cpu;  // task-level, as a string; empty when neither definition nor overrides set it
  std::string memory;  // likewise
  TaskReservation reserved;
  std::vector<TaskContainer> containers;
  std::string started_by;
  std::string group;  // "family:FAMILY" unless given
  int64_t version = 1;
  std::string stopped_reason;
  std::string stop_code;
  TimePoint created_at;
  std::optional<TimePoint> pull_started_at;
  std::optional<TimePoint> pull_stopped_at;
  std::optional<TimePoint> started_at;
  std::optional<TimePoint> stopping_at;
  std::optional<TimePoint> execution_stopped_at;
  std::optional<TimePoint> stopped_at;
  std::optional<TimePoint> connectivity_at;
  std::string connectivity = "CONNECTED";
  std::string availability_zone;
  Attributes attributes;  // ecs.cpu-architecture of the instance
  Tags tags;
  std::string health_status = "UNKNOWN";
  bool enable_execute_command = false;
  std::string reference_id;
  // RunTask idempotency: the token and who gave it (memory index rebuilt from these at load).
  std::string client_token;
  std::string client_principal;
  // networkMode awsvpc only. Its address and security groups stay held until it is DETACHED.
  std::optional<EniAttachment> eni;
};

// Task lastStatus values in the order a task moves through them; statuses never go backwards.
// -1 for a value that is not a task status.
int task_status_rank(std::string_view status);
// Container lastStatus: PENDING < RUNNING < STOPPED; -1 otherwise.
int container_status_rank(std::string_view status);

bool is_stopped(const Task& task);
// Counted by pendingTasksCount: still starting and still wanted.
bool is_pending(const Task& task);
// Counted by runningTasksCount.
bool is_running(const Task& task);

// Takes the reservation out of the instance's remainingResources (placement), or gives it back
// (the task STOPPED).
// The host ports the containers' networkBindings hold that `reserved` does not list yet (the
// dynamic ports an agent picked), as a reservation of ports only.
TaskReservation unreserved_bindings(const Task& task);
void reserve_on(ContainerInstance& instance, const TaskReservation& reserved);
void release_from(ContainerInstance& instance, const TaskReservation& reserved);

// The Task shape of the ECS model; tags only when asked for (DescribeTasks include TAGS).
boost::json::object task_to_wire(const Task& task, bool include_tags);
boost::json::object task_to_store(const Task& task);
Result<Task> task_from_store(boost::json::object stored);

}  // namespace wharf::ecs
