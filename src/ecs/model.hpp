// The ECS resources Wharf keeps, and their one wire/storage codec each.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"

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

}  // namespace wharf::ecs
