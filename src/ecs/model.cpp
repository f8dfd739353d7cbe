// Codecs for the ECS model: wire (DescribeX output) and storage forms.
#include "ecs/model.hpp"

#include <algorithm>
#include <charconv>

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

namespace wharf::ecs {

namespace {

bj::object resource_to_json(const Resource& resource) {
  bj::object out{{"name", resource.name},
                 {"type", resource.type},
                 {"doubleValue", resource.double_value},
                 {"longValue", resource.long_value},
                 {"integerValue", resource.integer_value}};
  if (resource.type == "STRINGSET") {
    bj::array values;
    for (const auto& value : resource.string_set_value) values.push_back(bj::string(value));
    out["stringSetValue"] = std::move(values);
  }
  return out;
}

scheduler::InstanceStatus scheduler_status(std::string_view status) {
  if (status == "ACTIVE") return scheduler::InstanceStatus::kActive;
  if (status == "DRAINING") return scheduler::InstanceStatus::kDraining;
  if (status == "REGISTERING") return scheduler::InstanceStatus::kRegistering;
  if (status == "DEREGISTERING") return scheduler::InstanceStatus::kDeregistering;
  if (status == "REGISTRATION_FAILED") return scheduler::InstanceStatus::kRegistrationFailed;
  return scheduler::InstanceStatus::kInactive;
}

std::vector<uint16_t> port_numbers(const std::vector<Resource>& resources, std::string_view name) {
  std::vector<uint16_t> ports;
  const Resource* resource = find_resource(resources, name);
  if (resource == nullptr) return ports;
  for (const auto& text : resource->string_set_value) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (ec == std::errc() && end == text.data() + text.size() && port <= 65535) {
      ports.push_back(static_cast<uint16_t>(port));
    }
  }
  return ports;
}

}  // namespace

bj::array resources_to_json(const std::vector<Resource>& resources) {
  bj::array out;
  for (const auto& resource : resources) out.push_back(resource_to_json(resource));
  return out;
}

std::vector<Resource> resources_from_json(const bj::array& resources) {
  std::vector<Resource> out;
  for (const auto& item : resources) {
    if (!item.is_object()) continue;
    const auto& object = item.as_object();
    Resource resource;
    resource.name = json::string_or(object, "name", "");
    resource.type = json::string_or(object, "type", "");
    resource.integer_value = json::get_int(object, "integerValue").value_or(0);
    resource.long_value = json::get_int(object, "longValue").value_or(0);
    if (const auto* value = json::member(object, "doubleValue"); value && value->is_number()) {
      resource.double_value = value->to_number<double>();
    }
    if (const auto* values = json::get_array(object, "stringSetValue")) {
      for (const auto& value : *values) {
        if (value.is_string()) resource.string_set_value.emplace_back(value.as_string());
      }
    }
    out.push_back(std::move(resource));
  }
  return out;
}

const Resource* find_resource(const std::vector<Resource>& resources, std::string_view name) {
  for (const auto& resource : resources) {
    if (resource.name == name) return &resource;
  }
  return nullptr;
}

void put_attribute(Attributes& attributes, Attribute attribute) {
  auto position = std::lower_bound(
      attributes.begin(), attributes.end(), attribute.name,
      [](const Attribute& existing, const std::string& name) { return existing.name < name; });
  if (position != attributes.end() && position->name == attribute.name) {
    position->value = std::move(attribute.value);
    return;
  }
  attributes.insert(position, std::move(attribute));
}

bj::object attribute_to_json(const Attribute& attribute,
                             std::optional<std::string_view> target_id) {
  bj::object out{{"name", attribute.name}};
  if (attribute.value) out["value"] = *attribute.value;
  if (target_id) {
    out["targetType"] = "container-instance";
    out["targetId"] = *target_id;
  }
  return out;
}

bool is_registered(const ContainerInstance& instance) {
  return instance.status == "ACTIVE" || instance.status == "DRAINING";
}

bj::object container_instance_to_wire(const ContainerInstance& instance, bool include_tags,
                                      TaskCounts counts) {
  bj::array attributes;
  for (const auto& attribute : instance.attributes) {
    attributes.push_back(attribute_to_json(attribute));
  }
  bj::object out{{"containerInstanceArn", instance.arn},
                 {"version", instance.version},
                 {"versionInfo", instance.version_info},
                 {"remainingResources", resources_to_json(instance.remaining_resources)},
                 {"registeredResources", resources_to_json(instance.registered_resources)},
                 {"status", instance.status},
                 {"agentConnected", instance.agent_connected},
                 {"runningTasksCount", counts.running},
                 {"pendingTasksCount", counts.pending},
                 {"attributes", std::move(attributes)},
                 {"registeredAt", epoch_seconds(instance.registered_at)},
                 {"attachments", bj::array{}}};
  if (!instance.ec2_instance_id.empty()) out["ec2InstanceId"] = instance.ec2_instance_id;
  if (!instance.status_reason.empty()) out["statusReason"] = instance.status_reason;
  if (include_tags) out["tags"] = tags_to_json(instance.tags);
  return out;
}

bj::object container_instance_to_store(const ContainerInstance& instance) {
  bj::array attributes;
  for (const auto& attribute : instance.attributes) {
    attributes.push_back(attribute_to_json(attribute));
  }
  return bj::object{{"id", instance.id},
                    {"arn", instance.arn},
                    {"cluster", instance.cluster},
                    {"ec2InstanceId", instance.ec2_instance_id},
                    {"status", instance.status},
                    {"statusReason", instance.status_reason},
                    {"agentConnected", instance.agent_connected},
                    {"version", instance.version},
                    {"versionInfo", instance.version_info},
                    {"registeredResources", resources_to_json(instance.registered_resources)},
                    {"remainingResources", resources_to_json(instance.remaining_resources)},
                    {"attributes", std::move(attributes)},
                    {"registeredAt", epoch_seconds(instance.registered_at)},
                    {"tags", tags_to_json(instance.tags)}};
}

Result<ContainerInstance> container_instance_from_store(bj::object stored) {
  auto id = json::get_string(stored, "id");
  auto arn = json::get_string(stored, "arn");
  auto cluster = json::get_string(stored, "cluster");
  auto registered_at = get_number(stored, "registeredAt");
  if (!id || !arn || !cluster || !registered_at) {
    return std::unexpected(corrupt("container instance"));
  }
  ContainerInstance instance;
  instance.id = *id;
  instance.arn = *arn;
  instance.cluster = *cluster;
  instance.ec2_instance_id = json::string_or(stored, "ec2InstanceId", "");
  instance.status = json::string_or(stored, "status", "ACTIVE");
  instance.status_reason = json::string_or(stored, "statusReason", "");
  instance.agent_connected = json::get_bool(stored, "agentConnected").value_or(false);
  instance.version = json::get_int(stored, "version").value_or(1);
  if (const auto* info = json::get_object(stored, "versionInfo")) instance.version_info = *info;
  if (const auto* resources = json::get_array(stored, "registeredResources")) {
    instance.registered_resources = resources_from_json(*resources);
  }
  if (const auto* resources = json::get_array(stored, "remainingResources")) {
    instance.remaining_resources = resources_from_json(*resources);
  }
  if (const auto* attributes = json::get_array(stored, "attributes")) {
    for (const auto& item : *attributes) {
      if (!item.is_object()) continue;
      put_attribute(instance.attributes, Attribute{json::string_or(item.as_object(), "name", ""),
                                                   json::get_string(item.as_object(), "value")});
    }
  }
  instance.registered_at = from_epoch_seconds(*registered_at);
  if (const auto* tags = json::get_array(stored, "tags")) instance.tags = tags_from_json(*tags);
  return instance;
}

scheduler::ContainerInstance scheduler_view(const ContainerInstance& instance) {
  scheduler::ContainerInstance view;
  view.arn = instance.arn;
  view.ec2_instance_id = instance.ec2_instance_id;
  view.status = scheduler_status(instance.status);
  view.agent_connected = instance.agent_connected;
  view.agent_version = json::string_or(instance.version_info, "agentVersion", "");
  view.registered_at = instance.registered_at;
  if (const auto* cpu = find_resource(instance.remaining_resources, "CPU")) {
    view.remaining.cpu = cpu->integer_value;
  }
  if (const auto* memory = find_resource(instance.remaining_resources, "MEMORY")) {
    view.remaining.memory = memory->integer_value;
  }
  if (const auto* gpu = find_resource(instance.remaining_resources, "GPU")) {
    view.remaining.gpu = gpu->integer_value;
  }
  view.reserved_tcp_ports = port_numbers(instance.remaining_resources, "PORTS");
  view.reserved_udp_ports = port_numbers(instance.remaining_resources, "PORTS_UDP");
  for (const auto& attribute : instance.attributes) {
    view.attributes.push_back(scheduler::Attribute{attribute.name, attribute.value});
  }
  return view;
}

}  // namespace wharf::ecs
