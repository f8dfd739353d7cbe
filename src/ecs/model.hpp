// The ECS resources Wharf keeps, and their one wire/storage codec each.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "scheduler/snapshot.hpp"

namespace wharf::ecs {

// Tags in the order they were first set; a re-set key keeps its place.
using Tags = std::vector<std::pair<std::string, std::string>>;

boost::json::array tags_to_json(const Tags& tags);
// Parses a list of {key, value}; validation of the rules is separate (validate_tags).
Tags tags_from_json(const boost::json::array& tags);
// Adds or replaces keys.
void merge_tags(Tags& tags, const Tags& changes);

struct Cluster {
  std::string name;
  std::string arn;
  std::string status = "ACTIVE";                              // ACTIVE | INACTIVE
  std::vector<std::pair<std::string, std::string>> settings;  // e.g. containerInsights=disabled
  boost::json::object configuration;                          // ClusterConfiguration as given
  boost::json::object service_connect_defaults;               // {namespace: arn}
  boost::json::array capacity_providers;
  boost::json::array default_capacity_provider_strategy;
  Tags tags;
};

// What DescribeClusters' `include` asked for.
struct ClusterInclude {
  bool settings = false;
  bool configurations = false;
  bool statistics = false;
  bool tags = false;
};

struct ClusterCounts {
  int64_t registered_container_instances = 0;
  int64_t running_tasks = 0;
  int64_t pending_tasks = 0;
  int64_t active_services = 0;
};

boost::json::object cluster_to_wire(const Cluster& cluster, const ClusterCounts& counts,
                                    const ClusterInclude& include);
boost::json::object cluster_to_store(const Cluster& cluster);
Result<Cluster> cluster_from_store(boost::json::object stored);

struct TaskDefinition {
  std::string family;
  int64_t revision = 0;
  std::string arn;
  std::string status = "ACTIVE";  // ACTIVE | INACTIVE | DELETE_IN_PROGRESS
  TimePoint registered_at;
  std::string registered_by;
  std::optional<TimePoint> deregistered_at;
  Tags tags;
  // The validated, normalised definition (containerDefinitions, cpu, memory, ...), without the
  // members above.
  boost::json::object body;
};

boost::json::object task_definition_to_wire(const TaskDefinition& definition);
boost::json::object task_definition_to_store(const TaskDefinition& definition);
// Takes the parsed record by value so the (large) body moves rather than copies.
Result<TaskDefinition> task_definition_from_store(boost::json::object stored);

// An account setting as ECS reports it.
struct Setting {
  std::string name;
  std::string value;
  std::string principal_arn;
  std::string type = "user";  // user | aws_managed
};

boost::json::object setting_to_wire(const Setting& setting);
Result<Setting> setting_from_store(boost::json::object stored);

// A Resource of the ECS model (registeredResources, remainingResources): one value, of `type`.
struct Resource {
  std::string name;  // CPU, MEMORY, PORTS, PORTS_UDP, GPU, ...
  std::string type;  // INTEGER | LONG | DOUBLE | STRINGSET
  int64_t integer_value = 0;
  int64_t long_value = 0;
  double double_value = 0;
  std::vector<std::string> string_set_value;

  bool operator==(const Resource&) const = default;
};

boost::json::array resources_to_json(const std::vector<Resource>& resources);
// Parses a list of Resource shapes; validation is separate (validate_total_resources).
std::vector<Resource> resources_from_json(const boost::json::array& resources);
// The resource named `name`, or nullptr.
const Resource* find_resource(const std::vector<Resource>& resources, std::string_view name);

// A container instance attribute: a name, and a value or none.
struct Attribute {
  std::string name;
  std::optional<std::string> value;

  bool operator==(const Attribute&) const = default;
};

// Attributes are kept sorted by name, one per name.
using Attributes = std::vector<Attribute>;
// Adds or replaces by name, keeping the order.
void put_attribute(Attributes& attributes, Attribute attribute);
// {name, value}; with `target_id`, also targetType container-instance and targetId.
boost::json::object attribute_to_json(const Attribute& attribute,
                                      std::optional<std::string_view> target_id = std::nullopt);

struct ContainerInstance {
  std::string id;                 // 32 hex characters
  std::string arn;                // arn:aws:ecs:REGION:ACCOUNT:container-instance/CLUSTER/ID
  std::string cluster;            // name
  std::string ec2_instance_id;    // from the instance identity document; may be empty
  std::string status = "ACTIVE";  // ACTIVE | DRAINING | INACTIVE
  std::string status_reason;
  bool agent_connected = true;
  int64_t version = 1;  // bumped on every change a DescribeContainerInstances reader can see
  boost::json::object version_info;  // VersionInfo as the agent reported it
  std::vector<Resource> registered_resources;
  std::vector<Resource> remaining_resources;
  Attributes attributes;
  TimePoint registered_at;
  Tags tags;
  // When the agent last called in (memory only). Zero until the first heartbeat after a load.
  TimePoint last_heartbeat{};
};

// True for ACTIVE and DRAINING: what ECS counts as registered and refuses to delete a cluster
// over.
bool is_registered(const ContainerInstance& instance);

// Tasks counted by runningTasksCount and pendingTasksCount.
struct TaskCounts {
  int64_t running = 0;
  int64_t pending = 0;
};

boost::json::object container_instance_to_wire(const ContainerInstance& instance, bool include_tags,
                                               TaskCounts counts = {});
boost::json::object container_instance_to_store(const ContainerInstance& instance);
Result<ContainerInstance> container_instance_from_store(boost::json::object stored);
// The instance as the scheduler and the cluster query language see it.
scheduler::ContainerInstance scheduler_view(const ContainerInstance& instance);

}  // namespace wharf::ecs
