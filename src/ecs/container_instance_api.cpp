// Container instance operations: RegisterContainerInstance, DeregisterContainerInstance,
// DescribeContainerInstances, ListContainerInstances, UpdateContainerInstancesState, the agent
// heartbeat (DiscoverPollEndpoint) and the attribute operations (Put/Delete/ListAttributes).
#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "common/arn.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "ecs/ecs_api.hpp"
#include "ecs/validation.hpp"
#include "scheduler/query.hpp"

namespace wharf::ecs {

namespace bj = boost::json;

namespace {

constexpr std::size_t kMaxDescribed = 100;
constexpr std::size_t kMaxStateUpdates = 10;

std::string cluster_input(const bj::object& input) {
  return json::string_or(input, "cluster", "default");
}

Result<Attributes> read_reported_attributes(const bj::object& input) {
  Attributes attributes;
  const auto* list = json::get_array(input, "attributes");
  if (list == nullptr) return attributes;
  for (const auto& item : *list) {
    if (!item.is_object()) continue;
    Attribute attribute{json::string_or(item.as_object(), "name", ""),
                        json::get_string(item.as_object(), "value")};
    if (auto status = validate_attribute(attribute); !status) {
      return std::unexpected(status.error());
    }
    put_attribute(attributes, std::move(attribute));
  }
  return attributes;
}

// The instance id in the identity document a registration carries, if any. The document is
// whatever JSON the host offers (EC2's, or the one `wharf agent` writes); only instanceId is
// read.
Result<std::string> ec2_instance_id(const bj::object& input) {
  auto document = json::get_string(input, "instanceIdentityDocument");
  if (!document || document->empty()) return std::string();
  boost::system::error_code ec;
  auto parsed = bj::parse(*document, ec);
  if (ec || !parsed.is_object()) return invalid("instanceIdentityDocument is not a JSON object.");
  return json::string_or(parsed.as_object(), "instanceId", "");
}

bj::object failure(std::string arn, std::string_view reason, std::string detail = {}) {
  bj::object out{{"arn", std::move(arn)}, {"reason", reason}};
  if (!detail.empty()) out["detail"] = std::move(detail);
  return out;
}

// An attribute named in Put/DeleteAttributes, with the instance it is for.
struct TargetedAttribute {
  Attribute attribute;
  std::string target_id;  // as given: an ARN or an id
  bj::object wire;        // as given, with targetType filled in, for the reply
};

Result<std::vector<TargetedAttribute>> read_targeted_attributes(const bj::object& input) {
  std::vector<TargetedAttribute> out;
  const auto* list = json::get_array(input, "attributes");
  if (list == nullptr || list->empty()) return invalid("attributes must name at least one.");
  if (list->size() > kMaxAttributesPerCall) {
    return invalid("At most " + std::to_string(kMaxAttributesPerCall) +
                   " attributes may be given in one call.");
  }
  for (const auto& item : *list) {
    if (!item.is_object()) continue;
    const auto& object = item.as_object();
    TargetedAttribute targeted{
        {json::string_or(object, "name", ""), json::get_string(object, "value")},
        json::string_or(object, "targetId", ""),
        {}};
    if (auto status = validate_attribute(targeted.attribute); !status) {
      return std::unexpected(status.error());
    }
    if (!is_custom_attribute(targeted.attribute.name)) {
      return invalid("Attribute '" + targeted.attribute.name +
                     "': names starting with 'ecs.' are reported by the container agent and "
                     "cannot be changed with the attribute operations.");
    }
    if (targeted.target_id.empty()) {
      return invalid("Attribute '" + targeted.attribute.name +
                     "' needs a targetId: the container instance's ARN or id.");
    }
    auto target_type = json::get_string(object, "targetType");
    if (!target_type && !looks_like_arn(targeted.target_id)) {
      return invalid("Attribute '" + targeted.attribute.name +
                     "' names its target by id, so it needs targetType container-instance.");
    }
    targeted.wire = attribute_to_json(targeted.attribute, targeted.target_id);
    out.push_back(std::move(targeted));
  }
  return out;
}

// The id an instance identifier stands for, when it could name an instance of `cluster` in this
// account and region: "ID", ".../container-instance/ID" or ".../container-instance/CLUSTER/ID".
std::optional<std::string> instance_id_of(const aws::CallContext& context,
                                          std::string_view identifier, const std::string& cluster) {
  if (!looks_like_arn(identifier)) return std::string(identifier);
  auto parsed = parse_arn(identifier);
  if (!parsed || parsed->service != "ecs" || parsed->resource_type() != "container-instance" ||
      parsed->region != context.region || parsed->account != context.account_id) {
    return std::nullopt;
  }
  std::string_view rest = parsed->resource_id();
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return std::string(rest);
  if (rest.substr(0, slash) != cluster) return std::nullopt;
  return std::string(rest.substr(slash + 1));
}

// The key ListAttributes pages by: instance id, then attribute name ('|' is in neither).
std::string attribute_key(const ContainerInstance& instance, const Attribute& attribute) {
  return instance.id + "|" + attribute.name;
}

}  // namespace

Result<ContainerInstance*> EcsApi::find_container_instance(const Context& context,
                                                           RegionState& region,
                                                           const std::string& cluster,
                                                           std::string_view identifier) const {
  auto not_found = [&] {
    return fail(ErrorCode::kNotFound, "Container instance " + std::string(identifier) +
                                          " was not found in cluster " + cluster + ".");
  };
  auto id = instance_id_of(context, identifier, cluster);
  if (!id) return not_found();
  auto instances = region.container_instances.find(cluster);
  if (instances == region.container_instances.end()) return not_found();
  auto found = instances->second.find(*id);
  if (found == instances->second.end()) return not_found();
  return &found->second;
}

void EcsApi::register_container_instance(const Context& context, const Input& input, Reply reply) {
  std::vector<Resource> resources;
  if (const auto* list = json::get_array(input, "totalResources")) {
    resources = resources_from_json(*list);
  }
  if (auto status = validate_total_resources(resources); !status) {
    return reply(std::unexpected(status.error()));
  }
  auto reported = read_reported_attributes(input);
  if (!reported) return reply(std::unexpected(reported.error()));
  auto ec2_id = ec2_instance_id(input);
  if (!ec2_id) return reply(std::unexpected(ec2_id.error()));
  Tags tags;
  if (const auto* list = json::get_array(input, "tags")) tags = tags_from_json(*list);
  if (auto status = validate_tags(tags); !status) return reply(std::unexpected(status.error()));
  auto previous_arn = json::get_string(input, "containerInstanceArn");

  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, cluster_input(input));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  const std::string& cluster_name = (*cluster)->name;

  ContainerInstance instance;
  if (previous_arn && !previous_arn->empty()) {
    // Re-registration after an agent restart: same id, status, custom attributes and tags.
    auto existing = find_container_instance(context, region, cluster_name, *previous_arn);
    if (!existing) {
      return reply(invalid("Container instance " + *previous_arn +
                           " is not registered in cluster " + cluster_name +
                           "; register without containerInstanceArn to join as a new instance."));
    }
    if ((*existing)->status == "INACTIVE") {
      return reply(client_error("Container instance " + *previous_arn +
                                " was deregistered; an agent that should join again must "
                                "register as a new instance (clear its saved state)."));
    }
    instance = **existing;
    ++instance.version;
    std::erase_if(instance.attributes,
                  [](const Attribute& attribute) { return !is_custom_attribute(attribute.name); });
    if (auto status = validate_tags(tags, instance.tags); !status) {
      return reply(std::unexpected(status.error()));
    }
    merge_tags(instance.tags, tags);
  } else {
    instance.id = new_hex_id();
    instance.arn = arn(context, "container-instance/" + cluster_name + "/" + instance.id);
    instance.cluster = cluster_name;
    instance.registered_at = clock_.now();
    instance.tags = std::move(tags);
  }
  for (auto& attribute : *reported) put_attribute(instance.attributes, std::move(attribute));
  if (auto status = validate_custom_attribute_count(instance.attributes); !status) {
    return reply(std::unexpected(status.error()));
  }
  if (!ec2_id->empty()) instance.ec2_instance_id = *ec2_id;
  instance.registered_resources = resources;
  // What the agent registers now, less what the tasks still placed here hold.
  instance.remaining_resources = std::move(resources);
  for (const Task* task : region.tasks_on(instance)) {
    if (!is_stopped(*task)) reserve_on(instance, task->reserved);
  }
  if (const auto* info = json::get_object(input, "versionInfo")) instance.version_info = *info;
  instance.agent_connected = true;
  instance.last_heartbeat = clock_.now();

  auto mutation = EcsState::put(context.region, instance);
  bj::object output{{"containerInstance",
                     container_instance_to_wire(instance, true, region.task_counts(instance))}};
  std::string id = instance.id;
  region.container_instances[cluster_name][id] = std::move(instance);
  commit_then_reply({std::move(mutation)}, std::move(output), std::move(reply));
}

void EcsApi::deregister_container_instance(const Context& context, const Input& input,
                                           Reply reply) {
  std::string identifier = json::string_or(input, "containerInstance", "");
  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, cluster_input(input));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  auto instance = find_container_instance(context, region, (*cluster)->name, identifier);
  if (!instance) return reply(invalid(instance.error().message));
  ContainerInstance& found = **instance;
  if (found.status == "INACTIVE") {
    return reply(bj::object{{"containerInstance", container_instance_to_wire(found, false)}});
  }
  std::vector<Task*> unstopped;
  for (Task* task : region.tasks_on(found)) {
    if (!is_stopped(*task)) unstopped.push_back(task);
  }
  bool force = json::get_bool(input, "force").value_or(false);
  if (!unstopped.empty() && !force) {
    return reply(invalid("The specified container instance has " +
                         std::to_string(unstopped.size()) +
                         " tasks that are not stopped. Stop them first, or deregister with "
                         "force."));
  }
  found.status = "INACTIVE";
  found.agent_connected = false;
  TaskChanges changes;
  changes.resized.insert(&found);  // persisted with its version bumped
  // Its agent will never report these again: they stop here, as the user forced.
  for (Task* task : unstopped) {
    if (task->stop_code.empty()) task->stop_code = "UserInitiated";
    if (task->stopped_reason.empty()) {
      task->stopped_reason = "Container instance deregistered with force.";
    }
    stop_without_agent(region, *task, changes);
  }
  assignments_.retire(found.arn, Error{ErrorCode::kInvalidParameter,
                                       "Container instance " + found.arn +
                                           " was deregistered; register as a new instance."});
  bj::object output{{"containerInstance", container_instance_to_wire(found, false)}};
  commit_task_changes(context, region, std::move(changes), std::move(output), std::move(reply));
}

void EcsApi::describe_container_instances(const Context& context, const Input& input, Reply reply) {
  auto identifiers = json::get_strings(input, "containerInstances");
  if (identifiers.empty()) return reply(invalid("containerInstances must name at least one."));
  if (identifiers.size() > kMaxDescribed) {
    return reply(invalid("DescribeContainerInstances accepts at most 100 container instances."));
  }
  auto include = json::get_strings(input, "include");
  bool include_tags = std::find(include.begin(), include.end(), "TAGS") != include.end();

  // Resolution may create an empty region entry, so this takes the writer lock.
  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, cluster_input(input));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  const std::string& cluster_name = (*cluster)->name;
  bj::array instances;
  bj::array failures;
  for (const auto& identifier : identifiers) {
    auto instance = find_container_instance(context, region, cluster_name, identifier);
    if (!instance) {
      failures.push_back(failure(identifier_arn(context, cluster_name, identifier), "MISSING"));
      continue;
    }
    instances.push_back(
        container_instance_to_wire(**instance, include_tags, region.task_counts(**instance)));
  }
  reply(
      bj::object{{"containerInstances", std::move(instances)}, {"failures", std::move(failures)}});
}

void EcsApi::list_container_instances(const Context& context, const Input& input, Reply reply) {
  std::string cluster_identifier = cluster_input(input);
  auto status_filter = json::get_string(input, "status");
  std::optional<scheduler::Query> query;
  if (auto text = json::get_string(input, "filter"); text && !text->empty()) {
    auto parsed = scheduler::Query::parse(*text);
    if (!parsed) return reply(std::unexpected(parsed.error()));
    query = std::move(*parsed);
  }
  std::string scope = "ListContainerInstances\n" + cluster_identifier + "\n" +
                      status_filter.value_or("") + "\n" +
                      (query ? std::string(query->text()) : std::string());
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 100, 100);
  if (!page) return reply(std::unexpected(page.error()));

  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, cluster_identifier);
  if (!cluster) return reply(std::unexpected(cluster.error()));
  const auto& instances = region.instances_of((*cluster)->name);
  auto wanted = [&](const ContainerInstance& instance) {
    if (status_filter ? instance.status != *status_filter : instance.status == "INACTIVE") {
      return false;
    }
    return !query || query->matches(region.placement_view(instance));
  };
  reply(arn_page(instances, *page, wanted, scope, "containerInstanceArns"));
}

void EcsApi::update_container_instances_state(const Context& context, const Input& input,
                                              Reply reply) {
  std::string status = json::string_or(input, "status", "");
  if (status != "ACTIVE" && status != "DRAINING") {
    return reply(invalid("Container instances can be set only to ACTIVE or DRAINING, not '" +
                         status + "'."));
  }
  auto identifiers = json::get_strings(input, "containerInstances");
  if (identifiers.empty()) return reply(invalid("containerInstances must name at least one."));
  if (identifiers.size() > kMaxStateUpdates) {
    return reply(invalid("UpdateContainerInstancesState accepts at most 10 container instances."));
  }

  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, cluster_input(input));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  const std::string& cluster_name = (*cluster)->name;
  bj::array instances;
  bj::array failures;
  std::vector<store::Mutation> mutations;
  std::set<std::string> changed;
  for (const auto& identifier : identifiers) {
    auto instance = find_container_instance(context, region, cluster_name, identifier);
    if (!instance) {
      failures.push_back(failure(identifier_arn(context, cluster_name, identifier), "MISSING"));
      continue;
    }
    ContainerInstance& found = **instance;
    if (found.status == "INACTIVE") {
      failures.push_back(failure(found.arn, "INACTIVE", "The container instance is deregistered."));
      continue;
    }
    if (found.status != status && changed.insert(found.id).second) {
      found.status = status;
      ++found.version;
      mutations.push_back(EcsState::put(context.region, found));
    }
    instances.push_back(container_instance_to_wire(found, false, region.task_counts(found)));
  }
  bj::object output{{"containerInstances", std::move(instances)},
                    {"failures", std::move(failures)}};
  if (mutations.empty()) return reply(std::move(output));
  commit_then_reply(std::move(mutations), std::move(output), std::move(reply));
}

void EcsApi::discover_poll_endpoint(const Context& context, const Input& input, Reply reply) {
  std::string url = endpoint();
  bj::object output{{"endpoint", url}, {"telemetryEndpoint", url}};
  auto identifier = json::get_string(input, "containerInstance");
  if (!identifier || identifier->empty()) return reply(std::move(output));

  // An agent's call is its heartbeat: the instance counts as connected while they keep coming
  // (see AgentMonitor).
  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, cluster_input(input));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  auto instance = find_container_instance(context, region, (*cluster)->name, *identifier);
  if (!instance) return reply(client_error(instance.error().message));
  ContainerInstance& found = **instance;
  if (found.status == "INACTIVE") {
    return reply(client_error("Container instance " + found.arn + " was deregistered."));
  }
  found.last_heartbeat = clock_.now();
  if (found.agent_connected) return reply(std::move(output));
  found.agent_connected = true;
  ++found.version;
  commit_then_reply({EcsState::put(context.region, found)}, std::move(output), std::move(reply));
}

void EcsApi::put_attributes(const Context& context, const Input& input, Reply reply) {
  auto attributes = read_targeted_attributes(input);
  if (!attributes) return reply(std::unexpected(attributes.error()));

  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, cluster_input(input));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  // Changes go to copies first, so a request that breaks a limit changes nothing.
  std::map<std::string, std::pair<ContainerInstance*, Attributes>> changes;  // by id
  bj::array applied;
  for (auto& targeted : *attributes) {
    auto instance = find_container_instance(context, region, (*cluster)->name, targeted.target_id);
    if (!instance || (*instance)->status == "INACTIVE") {
      return reply(fail(ErrorCode::kTargetNotFound, "Could not find container instance " +
                                                        targeted.target_id + " in cluster " +
                                                        (*cluster)->name + "."));
    }
    auto [change, added] = changes.try_emplace((*instance)->id, *instance, (*instance)->attributes);
    put_attribute(change->second.second, targeted.attribute);
    applied.push_back(std::move(targeted.wire));
  }
  std::vector<store::Mutation> mutations;
  for (auto& [id, change] : changes) {
    if (auto status = validate_custom_attribute_count(change.second); !status) {
      return reply(std::unexpected(std::move(status.error()).context(change.first->arn)));
    }
  }
  for (auto& [id, change] : changes) {
    ContainerInstance& instance = *change.first;
    if (instance.attributes == change.second) continue;
    instance.attributes = std::move(change.second);
    ++instance.version;
    mutations.push_back(EcsState::put(context.region, instance));
  }
  bj::object output{{"attributes", std::move(applied)}};
  if (mutations.empty()) return reply(std::move(output));
  commit_then_reply(std::move(mutations), std::move(output), std::move(reply));
}

void EcsApi::delete_attributes(const Context& context, const Input& input, Reply reply) {
  auto attributes = read_targeted_attributes(input);
  if (!attributes) return reply(std::unexpected(attributes.error()));

  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, cluster_input(input));
  if (!cluster) return reply(std::unexpected(cluster.error()));
  // Resolve every target before changing any, so an unknown one changes nothing.
  std::vector<ContainerInstance*> targets;
  for (const auto& targeted : *attributes) {
    auto instance = find_container_instance(context, region, (*cluster)->name, targeted.target_id);
    if (!instance || (*instance)->status == "INACTIVE") {
      return reply(fail(ErrorCode::kTargetNotFound, "Could not find container instance " +
                                                        targeted.target_id + " in cluster " +
                                                        (*cluster)->name + "."));
    }
    targets.push_back(*instance);
  }
  std::set<ContainerInstance*> changed;
  bj::array deleted;
  for (size_t attribute_idx = 0; attribute_idx < attributes->size(); ++attribute_idx) {
    auto& targeted = (*attributes)[attribute_idx];
    ContainerInstance* instance = targets[attribute_idx];
    auto erased = std::erase_if(instance->attributes, [&](const Attribute& attribute) {
      return attribute.name == targeted.attribute.name;
    });
    if (erased > 0) changed.insert(instance);
    deleted.push_back(std::move(targeted.wire));
  }
  std::vector<store::Mutation> mutations;
  for (auto* instance : changed) {
    ++instance->version;
    mutations.push_back(EcsState::put(context.region, *instance));
  }
  bj::object output{{"attributes", std::move(deleted)}};
  if (mutations.empty()) return reply(std::move(output));
  commit_then_reply(std::move(mutations), std::move(output), std::move(reply));
}

void EcsApi::list_attributes(const Context& context, const Input& input, Reply reply) {
  std::string cluster_identifier = cluster_input(input);
  auto name = json::get_string(input, "attributeName");
  auto value = json::get_string(input, "attributeValue");
  if (value && !name) {
    return reply(invalid("attributeValue can be given only together with attributeName."));
  }
  std::string scope = "ListAttributes\n" + cluster_identifier + "\n" + name.value_or("") + "\n" +
                      value.value_or("");
  auto page = aws::read_page_request(tokens_, clock_.now(), input, scope, 100, 100);
  if (!page) return reply(std::unexpected(page.error()));

  std::unique_lock lock(state_.mutex());
  RegionState& region = state_.region(context.region);
  auto cluster = active_cluster(context, region, cluster_identifier);
  if (!cluster) return reply(std::unexpected(cluster.error()));
  const auto& instances = region.instances_of((*cluster)->name);
  bj::array listed;
  bj::object output;
  std::string last_key;
  std::string after = page->after.value_or("");
  std::string after_id = after.substr(0, after.find('|'));
  for (auto instance = instances.lower_bound(after_id); instance != instances.end(); ++instance) {
    if (!is_registered(instance->second)) continue;
    for (const auto& attribute : instance->second.attributes) {
      if (name && attribute.name != *name) continue;
      if (value && attribute.value != *value) continue;
      std::string key = attribute_key(instance->second, attribute);
      if (page->after && key <= after) continue;
      if (listed.size() == static_cast<size_t>(page->max_results)) {
        output["nextToken"] = tokens_.issue(scope, last_key, clock_.now());
        output["attributes"] = std::move(listed);
        return reply(std::move(output));
      }
      listed.push_back(attribute_to_json(attribute, instance->second.arn));
      last_key = std::move(key);
    }
  }
  output["attributes"] = std::move(listed);
  reply(std::move(output));
}

}  // namespace wharf::ecs
