// Codecs for the ECS model: wire (DescribeX output) and storage forms.
#include "ecs/model.hpp"

#include "common/json.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

bj::array tags_to_json(const Tags& tags) {
  bj::array out;
  for (const auto& [key, value] : tags) out.push_back(bj::object{{"key", key}, {"value", value}});
  return out;
}

Tags tags_from_json(const bj::array& tags) {
  Tags out;
  for (const auto& tag : tags) {
    if (!tag.is_object()) continue;
    out.emplace_back(json::string_or(tag.as_object(), "key", ""),
                     json::string_or(tag.as_object(), "value", ""));
  }
  return out;
}

void merge_tags(Tags& tags, const Tags& changes) {
  for (const auto& [key, value] : changes) {
    auto existing =
        std::find_if(tags.begin(), tags.end(), [&](const auto& tag) { return tag.first == key; });
    if (existing != tags.end()) {
      existing->second = value;
    } else {
      tags.emplace_back(key, value);
    }
  }
}

namespace {

bj::array settings_to_json(const std::vector<std::pair<std::string, std::string>>& settings) {
  bj::array out;
  for (const auto& [name, value] : settings) {
    out.push_back(bj::object{{"name", name}, {"value", value}});
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> settings_from_json(const bj::array* settings) {
  std::vector<std::pair<std::string, std::string>> out;
  if (settings == nullptr) return out;
  for (const auto& setting : *settings) {
    if (!setting.is_object()) continue;
    out.emplace_back(json::string_or(setting.as_object(), "name", ""),
                     json::string_or(setting.as_object(), "value", ""));
  }
  return out;
}

bj::array statistics(const ClusterCounts& counts) {
  auto stat = [](std::string_view name, int64_t value) {
    return bj::object{{"name", name}, {"value", std::to_string(value)}};
  };
  return bj::array{stat("runningEC2TasksCount", counts.running_tasks),
                   stat("runningFargateTasksCount", 0),
                   stat("pendingEC2TasksCount", counts.pending_tasks),
                   stat("pendingFargateTasksCount", 0),
                   stat("runningExternalTasksCount", 0),
                   stat("pendingExternalTasksCount", 0),
                   stat("activeEC2ServiceCount", counts.active_services),
                   stat("activeFargateServiceCount", 0),
                   stat("drainingEC2ServiceCount", 0),
                   stat("drainingFargateServiceCount", 0)};
}

Error corrupt(std::string_view what) {
  return Error{ErrorCode::kInternal, "stored " + std::string(what) + " is malformed"};
}

}  // namespace

bj::object cluster_to_wire(const Cluster& cluster, const ClusterCounts& counts,
                           const ClusterInclude& include) {
  bj::object out{
      {"clusterArn", cluster.arn},
      {"clusterName", cluster.name},
      {"status", cluster.status},
      {"registeredContainerInstancesCount", counts.registered_container_instances},
      {"runningTasksCount", counts.running_tasks},
      {"pendingTasksCount", counts.pending_tasks},
      {"activeServicesCount", counts.active_services},
      {"statistics", include.statistics ? statistics(counts) : bj::array{}},
      {"tags", include.tags ? tags_to_json(cluster.tags) : bj::array{}},
      {"capacityProviders", cluster.capacity_providers},
      {"defaultCapacityProviderStrategy", cluster.default_capacity_provider_strategy},
  };
  if (include.settings) out["settings"] = settings_to_json(cluster.settings);
  if (include.configurations && !cluster.configuration.empty()) {
    out["configuration"] = cluster.configuration;
  }
  if (!cluster.service_connect_defaults.empty()) {
    out["serviceConnectDefaults"] = cluster.service_connect_defaults;
  }
  return out;
}

bj::object cluster_to_store(const Cluster& cluster) {
  return bj::object{{"name", cluster.name},
                    {"arn", cluster.arn},
                    {"status", cluster.status},
                    {"settings", settings_to_json(cluster.settings)},
                    {"configuration", cluster.configuration},
                    {"serviceConnectDefaults", cluster.service_connect_defaults},
                    {"capacityProviders", cluster.capacity_providers},
                    {"defaultCapacityProviderStrategy", cluster.default_capacity_provider_strategy},
                    {"tags", tags_to_json(cluster.tags)}};
}

Result<Cluster> cluster_from_store(bj::object stored) {
  Cluster cluster;
  auto name = json::get_string(stored, "name");
  auto arn = json::get_string(stored, "arn");
  if (!name || !arn) return std::unexpected(corrupt("cluster"));
  cluster.name = *name;
  cluster.arn = *arn;
  cluster.status = json::string_or(stored, "status", "ACTIVE");
  cluster.settings = settings_from_json(json::get_array(stored, "settings"));
  if (const auto* configuration = json::get_object(stored, "configuration")) {
    cluster.configuration = *configuration;
  }
  if (const auto* defaults = json::get_object(stored, "serviceConnectDefaults")) {
    cluster.service_connect_defaults = *defaults;
  }
  if (const auto* providers = json::get_array(stored, "capacityProviders")) {
    cluster.capacity_providers = *providers;
  }
  if (const auto* strategy = json::get_array(stored, "defaultCapacityProviderStrategy")) {
    cluster.default_capacity_provider_strategy = *strategy;
  }
  if (const auto* tags = json::get_array(stored, "tags")) cluster.tags = tags_from_json(*tags);
  return cluster;
}

bj::object task_definition_to_wire(const TaskDefinition& definition) {
  bj::object out = definition.body;
  out["taskDefinitionArn"] = definition.arn;
  out["family"] = definition.family;
  out["revision"] = definition.revision;
  out["status"] = definition.status;
  out["registeredAt"] = epoch_seconds(definition.registered_at);
  out["registeredBy"] = definition.registered_by;
  if (definition.deregistered_at)
    out["deregisteredAt"] = epoch_seconds(*definition.deregistered_at);
  return out;
}

bj::object task_definition_to_store(const TaskDefinition& definition) {
  bj::object out{{"family", definition.family},
                 {"revision", definition.revision},
                 {"arn", definition.arn},
                 {"status", definition.status},
                 {"registeredAt", epoch_seconds(definition.registered_at)},
                 {"registeredBy", definition.registered_by},
                 {"tags", tags_to_json(definition.tags)},
                 {"body", definition.body}};
  if (definition.deregistered_at)
    out["deregisteredAt"] = epoch_seconds(*definition.deregistered_at);
  return out;
}

namespace {
std::optional<double> get_number(const bj::object& object, std::string_view key) {
  const auto* value = json::member(object, key);
  if (value == nullptr || !value->is_number()) return std::nullopt;
  return value->to_number<double>();
}
}  // namespace

Result<TaskDefinition> task_definition_from_store(bj::object stored) {
  TaskDefinition definition;
  auto family = json::get_string(stored, "family");
  auto revision = json::get_int(stored, "revision");
  auto arn = json::get_string(stored, "arn");
  auto registered_at = get_number(stored, "registeredAt");
  const auto* body = json::get_object(stored, "body");
  if (!family || !revision || !arn || !registered_at || !body) {
    return std::unexpected(corrupt("task definition"));
  }
  definition.family = *family;
  definition.revision = *revision;
  definition.arn = *arn;
  definition.status = json::string_or(stored, "status", "ACTIVE");
  definition.registered_at = from_epoch_seconds(*registered_at);
  definition.registered_by = json::string_or(stored, "registeredBy", "");
  if (auto deregistered_at = get_number(stored, "deregisteredAt")) {
    definition.deregistered_at = from_epoch_seconds(*deregistered_at);
  }
  if (const auto* tags = json::get_array(stored, "tags")) definition.tags = tags_from_json(*tags);
  definition.body = std::move(stored["body"].as_object());
  return definition;
}

bj::object setting_to_wire(const Setting& setting) {
  return bj::object{{"name", setting.name},
                    {"value", setting.value},
                    {"principalArn", setting.principal_arn},
                    {"type", setting.type}};
}

Result<Setting> setting_from_store(bj::object stored) {
  auto name = json::get_string(stored, "name");
  auto value = json::get_string(stored, "value");
  auto principal = json::get_string(stored, "principalArn");
  if (!name || !value || !principal) return std::unexpected(corrupt("account setting"));
  return Setting{*name, *value, *principal, json::string_or(stored, "type", "user")};
}

}  // namespace wharf::ecs
